//! A data-plane worker: one thread, one monoio runtime, one `SO_REUSEPORT` listener, and the
//! per-core state every connection of that core shares (`Rc`, never `Send`).
//!
//! Shared across cores are only [`Shared`] (immutable after start, behind an `Arc`) and the pool
//! table inside it (esb-pool's lock-light table).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use esb_pool::PoolTable;
use monoio::net::TcpListener;
use tokio::sync::watch;

use crate::blocking::BlockingPool;
use crate::front::FrontDoor;
use crate::upstream::Upstream;

/// Immutable state every worker reads.
pub struct Shared {
    pub limits: esb_config::Limits,
    /// The same limits in esb-http1's terms.
    pub http_limits: esb_http1::Limits,
    pub tls: Arc<rustls::ServerConfig>,
    /// The port clients connect to (`X-Forwarded-Port` in events).
    pub port: u16,
    pub front: FrontDoor,
    pub pool: Arc<PoolTable>,
    /// Off-core password verification.
    pub blocking: BlockingPool,
    /// The durable queue of Event invocations, when the binary provides one.
    pub events: Option<crate::events::Events>,
}

/// Per-core state.
pub struct Worker {
    pub id: usize,
    pub shared: Arc<Shared>,
    pub acceptor: monoio_rustls::TlsAcceptor,
    pub upstream: Upstream,
    /// Reused event / response buffers (taken for one request, given back after).
    pub buffers: BufPool,
    /// Open connections on this core.
    pub active: Cell<usize>,
    /// Set once shutdown began: no new requests on existing connections.
    pub draining: Cell<bool>,
    /// Fires when the binary asks the data plane to stop.
    pub stop: watch::Receiver<bool>,
    /// Request ids.
    pub ids: crate::ctx::IdGen,
    /// Per-core verified-token cache and other per-core state of the front door.
    pub local: RefCell<crate::front::Local>,
}

/// A free list of byte buffers, per core. A request takes what it needs and gives it back, so
/// the steady state allocates nothing; oversized buffers are dropped instead of kept.
#[derive(Default)]
pub struct BufPool {
    free: RefCell<Vec<Vec<u8>>>,
}

impl BufPool {
    const KEEP: usize = 64;
    const MAX_KEPT_CAPACITY: usize = 256 * 1024;

    pub fn take(&self) -> Vec<u8> {
        self.free.borrow_mut().pop().unwrap_or_default()
    }

    pub fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() > Self::MAX_KEPT_CAPACITY {
            return;
        }
        let mut free = self.free.borrow_mut();
        if free.len() < Self::KEEP {
            buf.clear();
            free.push(buf);
        }
    }
}

/// How long a stopping worker waits for in-flight requests before dropping them.
pub const DRAIN_GRACE: Duration = Duration::from_secs(30);

/// Closes upstream connections nobody used for a while, until the worker drains.
async fn sweep_upstream(w: Rc<Worker>) {
    while !w.draining.get() {
        monoio::time::sleep(crate::upstream::IDLE_UPSTREAM / 3).await;
        if let Some(cutoff) = std::time::Instant::now().checked_sub(crate::upstream::IDLE_UPSTREAM)
        {
            w.upstream.sweep(cutoff);
        }
    }
}

/// Runs the accept loop until `stop` fires, then lets in-flight requests finish (bounded).
pub async fn run(listener: std::net::TcpListener, w: Rc<Worker>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(worker = w.id, error = %e, "cannot use the listener");
            return;
        }
    };
    monoio::spawn(sweep_upstream(w.clone()));
    let max_conns = w.shared.limits.max_connections_per_worker;
    let mut stop = w.stop.clone();
    loop {
        if *stop.borrow() {
            break;
        }
        let accepted = monoio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => break,
        };
        match accepted {
            Ok((tcp, peer)) => {
                if w.active.get() >= max_conns {
                    // Over the cap: close at once; existing connections keep being served.
                    drop(tcp);
                    continue;
                }
                w.active.set(w.active.get() + 1);
                let conn_w = w.clone();
                monoio::spawn(async move {
                    crate::conn::serve(tcp, peer, conn_w.clone()).await;
                    conn_w.active.set(conn_w.active.get() - 1);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning on a full fd table.
                tracing::warn!(worker = w.id, error = %e, "accept failed");
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    w.draining.set(true);
    let deadline = monoio::time::Instant::now() + DRAIN_GRACE;
    while w.active.get() > 0 && monoio::time::Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    tracing::debug!(worker = w.id, left = w.active.get(), "worker stopped");
}
