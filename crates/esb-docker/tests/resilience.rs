//! The engine going away and coming back, without touching the real daemon: esb talks to it
//! through a Unix-socket proxy the test can cut (checklist C20/C23 in miniature). Cold starts
//! fail fast while it is away; the events stream reconnects and asks for a re-list.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{TestRun, engine, function};
use esb_docker::{ContainerEvent, DockerError, DockerRuntime, Fault};
use esb_model::RieSource;
use futures_util::StreamExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

/// A proxy in front of the real Docker socket whose connections can all be cut at once.
struct SocketProxy {
    path: PathBuf,
    accept: Option<JoinHandle<()>>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
}

impl SocketProxy {
    fn start(path: &Path) -> Self {
        let mut p = SocketProxy {
            path: path.to_owned(),
            accept: None,
            conns: Default::default(),
        };
        p.up();
        p
    }

    /// Listening again (the daemon came back).
    fn up(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let listener = UnixListener::bind(&self.path).unwrap();
        let conns = self.conns.clone();
        let upstream = common::docker_host();
        self.accept = Some(tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let upstream = upstream.trim_start_matches("unix://").to_owned();
                let h = tokio::spawn(async move {
                    if let Ok(mut server) = UnixStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns.lock().unwrap().push(h);
            }
        }));
    }

    /// Gone: no socket, and every open connection cut (the daemon died).
    fn down(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
        }
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }

    /// Cuts open connections but keeps listening (an events stream dropped by a proxy).
    fn cut(&mut self) {
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

impl Drop for SocketProxy {
    fn drop(&mut self) {
        self.down();
    }
}

async fn next_non_resync(
    events: &mut (impl futures_util::Stream<Item = ContainerEvent> + Unpin),
) -> ContainerEvent {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(30), events.next())
            .await
            .expect("an event within 30 s")
            .expect("endless stream");
        if ev != ContainerEvent::Resync {
            return ev;
        }
    }
}

async fn expect_resync(
    events: &mut (impl futures_util::Stream<Item = ContainerEvent> + Unpin),
    when: &str,
) {
    let ev = tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .unwrap_or_else(|_| panic!("a resync within 30 s {when}"));
    assert_eq!(ev, Some(ContainerEvent::Resync));
}

#[tokio::test(flavor = "current_thread")]
async fn an_engine_that_goes_away_fails_cold_starts_fast_and_the_stream_resyncs_when_it_returns() {
    let Some(docker) = engine().await else { return };
    let run = TestRun::new(&docker);
    let image = run.echo_image().await;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("docker.sock");
    let mut proxy = SocketProxy::start(&sock);

    let mut opts = run.options();
    opts.host = format!("unix://{}", sock.display());
    opts.api_timeout = Duration::from_secs(5);
    let rt = DockerRuntime::connect(opts).await.unwrap();
    let mut events = Box::pin(rt.events());
    expect_resync(&mut events, "at first").await;

    // A container event proves the subscription is live (the stream subscribes lazily).
    let f = function("echo", &image, RieSource::Injected);
    let a = rt.start(&rt.spec(&f, 1, false).unwrap()).await.unwrap();
    match next_non_resync(&mut events).await {
        ContainerEvent::Started(c) => assert_eq!(c.id, a.container_id),
        other => panic!("{other:?}"),
    }

    // The events connection drops (proxy cut): the stream reconnects and asks for a re-list,
    // and is live again afterwards (the replayed start of `a` may come first).
    proxy.cut();
    expect_resync(&mut events, "after a cut").await;
    let b = rt.start(&rt.spec(&f, 2, false).unwrap()).await.unwrap();
    loop {
        match next_non_resync(&mut events).await {
            ContainerEvent::Started(c) if c.id == b.container_id => break,
            ContainerEvent::Started(c) if c.id == a.container_id => {}
            other => panic!("{other:?}"),
        }
    }

    // The engine disappears: a cold start fails at once with a daemon error, not a hang.
    proxy.down();
    let t = std::time::Instant::now();
    let err = rt.start(&rt.spec(&f, 3, false).unwrap()).await.unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(matches!(err, DockerError::Unavailable { .. }), "{err:?}");
    assert_eq!(err.fault(), Fault::Daemon);
    assert!(err.retryable());
    assert!(rt.ping().await.is_err());

    // It comes back: the same runtime works again and the stream re-subscribes with a resync.
    proxy.up();
    expect_resync(&mut events, "after the engine returned").await;
    rt.ping().await.unwrap();
    let mut listed: Vec<String> = rt
        .list_managed()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    listed.sort();
    let mut want = vec![a.container_id.clone(), b.container_id.clone()];
    want.sort();
    assert_eq!(listed, want);
    rt.stop(&b.container_id).await.unwrap();
    // The re-subscription replays a little history, so the starts may be heard again first.
    loop {
        match next_non_resync(&mut events).await {
            ContainerEvent::Died { container, .. } => {
                assert_eq!(container.id, b.container_id);
                break;
            }
            ContainerEvent::Started(_) => {}
            other => panic!("{other:?}"),
        }
    }
}
