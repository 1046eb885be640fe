//! esb's data plane: per-core monoio workers that terminate TLS and HTTP/1.1, authorize, route,
//! build API Gateway events and invoke functions over per-core keep-alive connections.
//!
//! [`DataPlane::start`] binds one `SO_REUSEPORT` listener per worker, starts the worker threads
//! (each its own monoio runtime, io_uring or epoll) and returns once all of them run.
//! [`DataPlane::shutdown`] stops accepting, lets in-flight requests finish, and [`DataPlane::join`]
//! waits for the threads.
//!
//! Code map: `listener` (sockets), `runtime` (drivers), `tls` (certificates), `worker` (accept
//! loop, per-core state), `conn` (one connection: framing, timeouts, early answers), `handler`
//! (the request pipeline), `front` (immutable front-door state), `upstream` (invoking RIE),
//! `errors` (every error → its response), `blocking` (argon2 off the IO cores).

pub mod blocking;
mod conn;
mod ctx;
pub mod errors;
pub mod events;
mod front;
mod handler;
mod lambda_api;
pub mod listener;
mod logs;
pub mod runtime;
pub mod tls;
mod upstream;
mod worker;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;

use esb_config::Config;
use esb_pool::PoolTable;
use tokio::sync::watch;

pub use events::AsyncInvocations;
pub use runtime::ChosenDriver;

/// Why the data plane could not start. Always a setup problem the operator must fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("tls: {0}")]
    Tls(String),
    #[error("cannot start worker threads: {0}")]
    Threads(std::io::Error),
    #[error("worker {worker} cannot start its runtime ({driver:?}): {source}")]
    Runtime {
        worker: usize,
        driver: esb_config::Driver,
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
}

/// The running data plane.
pub struct DataPlane {
    addr: SocketAddr,
    drivers: Vec<ChosenDriver>,
    fingerprint: Option<String>,
    certificate_pem: String,
    stop: watch::Sender<bool>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane")
            .field("addr", &self.addr)
            .field("drivers", &self.drivers)
            .finish_non_exhaustive()
    }
}

/// Threads verifying passwords (argon2) off the IO cores, and their queue.
const BLOCKING_THREADS: usize = 2;
const BLOCKING_QUEUE: usize = 256;

impl DataPlane {
    /// Starts the workers on `cfg.server.listen` (already overridden by the command line).
    /// Event invocations are refused (no durable queue); see [`DataPlane::start_with_events`].
    pub fn start(cfg: &Config, pool: Arc<PoolTable>) -> Result<DataPlane, StartError> {
        Self::start_with_events(cfg, pool, None)
    }

    /// Like [`DataPlane::start`], accepting Event invocations of the Invoke API into `events`.
    pub fn start_with_events(
        cfg: &Config,
        pool: Arc<PoolTable>,
        events: Option<Arc<dyn AsyncInvocations>>,
    ) -> Result<DataPlane, StartError> {
        let tls = tls::setup(&cfg.tls)?;
        let workers = match cfg.server.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let (listeners, addr) = listener::bind_all(cfg.server.listen, workers, 1024)?;
        let l = &cfg.limits;
        let shared = Arc::new(worker::Shared {
            limits: l.clone(),
            http_limits: esb_http1::Limits {
                max_head_bytes: l.max_head_bytes,
                max_headers: l.max_headers.min(conn::MAX_HEADERS),
                max_body_bytes: l.max_body_bytes as u64,
                ..esb_http1::Limits::default()
            },
            tls: tls.config.clone(),
            port: addr.port(),
            front: front::FrontDoor::new(cfg, &pool)?,
            pool,
            blocking: blocking::BlockingPool::new(BLOCKING_THREADS, BLOCKING_QUEUE)
                .map_err(StartError::Threads)?,
            events: events
                .map(events::Events::new)
                .transpose()
                .map_err(StartError::Threads)?,
        });
        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let driver = cfg.server.driver;
        let mut threads = Vec::with_capacity(workers);
        for (id, listener) in listeners.into_iter().enumerate() {
            let shared = shared.clone();
            let stop_rx = stop_rx.clone();
            let ready = ready_tx.clone();
            let t = std::thread::Builder::new()
                .name(format!("esb-worker-{id}"))
                .spawn(move || {
                    let ran = runtime::run(driver, |chosen| {
                        let _ = ready.send((id, Ok(chosen)));
                        let w = Rc::new(worker::Worker {
                            id,
                            acceptor: monoio_rustls::TlsAcceptor::from(shared.tls.clone()),
                            shared,
                            upstream: upstream::Upstream::default(),
                            buffers: worker::BufPool::default(),
                            active: Cell::new(0),
                            draining: Cell::new(false),
                            stop: stop_rx,
                            local: RefCell::new(front::Local::default()),
                            ids: ctx::IdGen::default(),
                        });
                        worker::run(listener, w)
                    });
                    if let Err(e) = ran {
                        let _ = ready.send((id, Err(e)));
                    }
                })
                .map_err(StartError::Threads)?;
            threads.push(t);
        }
        drop(ready_tx);
        let mut drivers = vec![ChosenDriver::Epoll; threads.len()];
        for _ in 0..threads.len() {
            match ready_rx.recv() {
                Ok((id, Ok(chosen))) => drivers[id] = chosen,
                Ok((worker, Err(source))) => {
                    let _ = stop.send(true);
                    return Err(StartError::Runtime {
                        worker,
                        driver,
                        source,
                    });
                }
                Err(_) => return Err(StartError::Setup("a worker died while starting".into())),
            }
        }
        Ok(DataPlane {
            addr,
            drivers,
            fingerprint: tls.self_signed_fingerprint,
            certificate_pem: tls.certificate_pem,
            stop,
            threads,
        })
    }

    /// The address the workers listen on (the real port if the config said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The driver each worker runs on.
    pub fn drivers(&self) -> &[ChosenDriver] {
        &self.drivers
    }

    /// The PEM certificate chain clients are shown (the self-signed one made at start, or the
    /// configured one), for the binary to hand to functions as a CA bundle.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// SHA-256 fingerprint of the self-signed certificate made at start, if one was.
    pub fn self_signed_fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }

    /// Stops accepting connections and requests; requests in flight finish (bounded by
    /// [`worker::DRAIN_GRACE`]); idle keep-alive connections close.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits for every worker thread to end.
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Loud warnings about a configuration that is fine on a laptop and dangerous on a network: the
/// development API key or the development user, or an unauthenticated Invoke API, on a
/// non-loopback listen address.
pub fn security_warnings(cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if cfg.server.listen.ip().is_loopback() {
        return out;
    }
    if cfg.invoke.auth == esb_config::InvokeAuth::None {
        out.push(format!(
            "SECURITY: the Lambda Invoke API (POST /2015-03-31/functions/{{name}}/invocations) needs no credentials and {} is not loopback: anyone who reaches it can run every function; set [invoke] auth = \"sigv4\" with credentials",
            cfg.server.listen
        ));
    }
    if cfg.auth.api_key == esb_config::DEV_API_KEY {
        out.push(format!(
            "SECURITY: the development API key {:?} is in use on {}, which is not loopback; set auth.api_key",
            esb_config::DEV_API_KEY,
            cfg.server.listen
        ));
    }
    for u in cfg.auth.users.iter().filter(|u| u.username == DEV_USER) {
        out.push(format!(
            "SECURITY: the development user {:?} is enabled on {}, which is not loopback; remove it from auth.users",
            u.username, cfg.server.listen
        ));
    }
    out
}

/// The example config's development user.
pub const DEV_USER: &str = "demo";

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str, key: &str, user: &str) -> Config {
        let toml = format!(
            "[server]\nlisten = \"{listen}\"\n[auth]\napi_key = \"{key}\"\n[[auth.users]]\nusername = \"{user}\"\npassword_hash = \"$argon2id$v=19$m=19456,t=2,p=1$w0hSAQZv0lW3erifmUhn+g$J/Jf3lMgyXSst6PShBhOebtFMp/sgM82Ega9+VgqcyU\"\n"
        );
        Config::from_toml_text(
            std::path::Path::new("esb.toml"),
            &toml,
            std::path::Path::new("."),
            &|_| None,
        )
        .unwrap()
    }

    #[test]
    fn dev_credentials_off_loopback_are_warned_about() {
        let dev = esb_config::DEV_API_KEY;
        assert!(security_warnings(&config("127.0.0.1:8443", dev, DEV_USER)).is_empty());
        assert!(security_warnings(&config("[::1]:8443", dev, DEV_USER)).is_empty());
        let w = security_warnings(&config("0.0.0.0:8443", dev, DEV_USER));
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("Invoke API"), "{w:?}");
        assert!(w[1].contains("development API key"), "{w:?}");
        assert!(w[2].contains("development user"), "{w:?}");
        let w = security_warnings(&config("0.0.0.0:8443", "a-real-key-0123456789", "alice"));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("[invoke] auth"), "{w:?}");
    }
}
