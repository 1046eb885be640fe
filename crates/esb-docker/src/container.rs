//! [`Container`]: one running function container as an owned handle, the shape the control
//! loop's `Instance` wants: its address, a cancel-safe wait for its death, a health probe, a
//! graceful stop, and removal at once when the handle is dropped.

use std::net::SocketAddr;
use std::time::Duration;

use crate::error::DockerError;
use crate::runtime::{Adopted, DockerRuntime, Exit, StartTimings, Started};

/// A running container that is removed when this handle is dropped (unless the runtime was
/// shut down with `keep_on_shutdown`, or the handle was [detached](Container::detach)).
#[derive(Debug)]
pub struct Container {
    rt: DockerRuntime,
    id: String,
    addr: SocketAddr,
    timings: StartTimings,
    armed: bool,
}

impl Container {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its RIE invoke endpoint.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where its cold start's time went (zero for an adopted container).
    pub fn timings(&self) -> StartTimings {
        self.timings
    }

    /// Resolves when the container stops on its own (crash, `docker kill`, OOM kill) or is
    /// removed behind esb's back. Cancel-safe.
    pub async fn exited(&self) -> Exit {
        self.rt.wait_exit(&self.id).await
    }

    /// Whether its RIE answers HTTP now.
    pub async fn health(&self) -> bool {
        crate::ready::probe(self.addr, Duration::from_secs(1)).await
    }

    /// SIGTERM, up to `grace` to exit, then removal.
    pub async fn stop(mut self, grace: Duration) -> Result<(), DockerError> {
        self.armed = false;
        self.rt.stop_with_grace(&self.id, grace).await
    }

    /// Gives up ownership: the container keeps running after this handle is gone.
    pub fn detach(mut self) -> Started {
        self.armed = false;
        Started {
            container_id: std::mem::take(&mut self.id),
            addr: self.addr,
            timings: self.timings,
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if !self.armed || self.rt.keeping() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(container = %self.id, "container handle dropped outside tokio; the next sync removes it");
            return;
        };
        let (rt, id) = (self.rt.clone(), std::mem::take(&mut self.id));
        handle.spawn(async move {
            if let Err(e) = rt.stop(&id).await {
                tracing::warn!(container = %id, error = %e, "could not remove a dropped container");
            }
        });
    }
}

impl DockerRuntime {
    /// [`DockerRuntime::start`], returning an owned handle.
    pub async fn start_owned(&self, spec: &crate::ContainerSpec) -> Result<Container, DockerError> {
        let s = self.start(spec).await?;
        Ok(self.own(s))
    }

    /// Takes ownership of a started container.
    pub fn own(&self, s: Started) -> Container {
        Container {
            rt: self.clone(),
            id: s.container_id,
            addr: s.addr,
            timings: s.timings,
            armed: true,
        }
    }

    /// Takes ownership of an adopted container.
    pub fn own_adopted(&self, a: &Adopted) -> Container {
        Container {
            rt: self.clone(),
            id: a.container_id.clone(),
            addr: a.addr,
            timings: StartTimings::default(),
            armed: true,
        }
    }
}
