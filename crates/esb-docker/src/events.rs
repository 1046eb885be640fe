//! The Docker events stream of this esb's containers, kept alive across engine restarts.
//!
//! Events are the fast path of reconciliation; the periodic re-list ([`crate::reconcile`]) is
//! the safety net, because a stream can drop events (kubelet's PLEG lesson). Every time the
//! stream (re)connects it yields [`ContainerEvent::Resync`], which tells the consumer to re-list.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::models::EventMessage;
use bollard::query_parameters::EventsOptionsBuilder;
use bollard::query_parameters::InspectContainerOptions;
use esb_model::FunctionName;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::runtime::DockerRuntime;
use crate::spec::{LABEL_CONFIG_HASH, LABEL_FUNCTION, LABEL_INSTANCE, LABEL_MANAGED, LABEL_OWNER};

/// Which container an event is about, from its labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRef {
    pub id: String,
    pub function: Option<FunctionName>,
    pub instance: Option<u64>,
    pub config_hash: Option<String>,
}

/// Something happened to one of this esb's containers (or to the stream itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerEvent {
    /// The stream is (re)connected: anything may have been missed, re-list now.
    Resync,
    /// A container started, by esb or behind its back: trust it only if its config hash matches.
    Started(ContainerRef),
    /// The container's process exited (crash, `docker kill`, OOM kill, stop).
    Died {
        container: ContainerRef,
        exit_code: Option<i64>,
        oom_killed: bool,
    },
    /// The kernel OOM-killed a process in the container. With the injected RIE the container
    /// may keep running with its runtime dead: Lambda resets such an environment, so should esb.
    OomKilled(ContainerRef),
    /// The container is gone (removed by esb or behind its back).
    Destroyed(ContainerRef),
    /// Frozen: it cannot answer until unpaused.
    Paused(ContainerRef),
    Unpaused(ContainerRef),
}

/// How far the subscription reaches back on (re)connect, so nothing falls in the gap between
/// subscribing and the consumer's re-list. Events may repeat; consumers must be idempotent.
const REPLAY: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl DockerRuntime {
    /// This owner's container events, forever: the stream reconnects with backoff (100 ms to
    /// 5 s) when the engine goes away, and yields [`ContainerEvent::Resync`] on every
    /// (re)connect, starting with the first. Dropping the stream stops the background task.
    pub fn events(&self) -> impl Stream<Item = ContainerEvent> + Send + 'static + use<> {
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(pump(self.clone(), tx));
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
    }
}

async fn pump(rt: DockerRuntime, tx: mpsc::Sender<ContainerEvent>) {
    let owner = format!("{LABEL_OWNER}={}", rt.options().owner);
    let managed = format!("{LABEL_MANAGED}=true");
    let filters = HashMap::from([
        ("type", vec!["container"]),
        ("label", vec![managed.as_str(), owner.as_str()]),
    ]);
    let mut backoff = BACKOFF_MIN;
    loop {
        // Only a live engine earns a Resync: re-listing against a dead one is pointless.
        if let Err(e) = rt.ping().await {
            if tx.is_closed() {
                return;
            }
            tracing::debug!(error = %e, retry_in = ?backoff, "Docker engine not answering");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
            continue;
        }
        let since = SystemTime::now()
            .checked_sub(REPLAY)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        let since = format!("{}.{:09}", since.as_secs(), since.subsec_nanos());
        let mut stream = rt.client().events(Some(
            EventsOptionsBuilder::default()
                .since(&since)
                .filters(&filters)
                .build(),
        ));
        if tx.send(ContainerEvent::Resync).await.is_err() {
            return;
        }
        let why = loop {
            let Some(item) = stream.next().await else {
                break "the engine closed the events stream".to_owned();
            };
            match item {
                Ok(msg) => {
                    backoff = BACKOFF_MIN;
                    if let Some(ev) = map_event(&rt, msg).await
                        && tx.send(ev).await.is_err()
                    {
                        return;
                    }
                }
                Err(e) => break rt.err("events", e).to_string(),
            }
        };
        if tx.is_closed() {
            return;
        }
        tracing::warn!(reason = %why, retry_in = ?backoff, "Docker events stream lost; reconnecting");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn map_event(rt: &DockerRuntime, msg: EventMessage) -> Option<ContainerEvent> {
    let action = msg.action.as_deref()?;
    let actor = msg.actor?;
    let id = actor.id?;
    let attrs = actor.attributes.unwrap_or_default();
    let container = ContainerRef {
        id,
        function: attrs
            .get(LABEL_FUNCTION)
            .map(|f| FunctionName::new(f.as_str())),
        instance: attrs.get(LABEL_INSTANCE).and_then(|i| i.parse().ok()),
        config_hash: attrs.get(LABEL_CONFIG_HASH).cloned(),
    };
    // Actions may carry a suffix ("exec_start: sh"); only the verb matters.
    match action.split(':').next().unwrap_or(action) {
        "start" => Some(ContainerEvent::Started(container)),
        "die" => {
            let exit_code = attrs.get("exitCode").and_then(|c| c.parse().ok());
            // The die event does not say why; the container's state does (until it is removed).
            let oom_killed = rt
                .client()
                .inspect_container(&container.id, None::<InspectContainerOptions>)
                .await
                .ok()
                .and_then(|i| i.state)
                .and_then(|s| s.oom_killed)
                .unwrap_or(false);
            if oom_killed {
                tracing::warn!(container = %short(&container.id), function = ?container.function, "container OOMKilled");
            } else {
                tracing::info!(container = %short(&container.id), function = ?container.function, ?exit_code, "container died");
            }
            Some(ContainerEvent::Died {
                container,
                exit_code,
                oom_killed,
            })
        }
        "oom" => {
            tracing::warn!(container = %short(&container.id), function = ?container.function, "OOMKilled: a process in the container hit its memory limit");
            Some(ContainerEvent::OomKilled(container))
        }
        "destroy" => Some(ContainerEvent::Destroyed(container)),
        "pause" => Some(ContainerEvent::Paused(container)),
        "unpause" => Some(ContainerEvent::Unpaused(container)),
        _ => None,
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
