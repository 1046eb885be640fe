//! The control plane: one std thread running a current-thread tokio runtime that owns every
//! execution environment. It is never on the request path: the data plane only talks to the pool
//! table, and the table talks to this thread through [`esb_pool::ControlCommand`]s.
//!
//! What it does:
//! - **Cold starts**: on `Start`, the process runtime ([`process`]) spawns an RIE child on free
//!   loopback ports, polls readiness with backoff under the start deadline, then reports
//!   `env_ready` (or `start_failed`, which feeds the function's circuit breaker).
//! - **Crash detection**: each environment has a task waiting for its process; an exit reports
//!   `env_died` (its in-flight request fails on the broken connection and gets a 502).
//! - **Ticker** (`tick`, 250 ms): advances the table's coarse clock, pre-warms `min_capacity`,
//!   re-plans after a breaker cool-down, and reaps environments idle past `idle_timeout`.
//! - **Stops** (`Stop`, reaping, shutdown): SIGTERM to the process group, SIGKILL after a grace.
//! - **Admin**: `GET /admin/pools` on its own loopback listener ([`admin`](crate::admin)).
//! - **No orphans**: children get PR_SET_PDEATHSIG and their own process group; leftovers of a
//!   killed esb are found by an environment marker and killed at the next start ([`state`]).

mod admin;
mod control;
pub mod docker;
pub mod environ;
pub mod process;
pub mod runtime;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use esb_model::FunctionSpec;
use esb_pool::{ControlReceiver, EnvId, PoolTable};
use tokio::sync::oneshot;

use crate::control::{Control, PidMap};
pub use crate::docker::DockerSettings;
use crate::docker::{DockerSide, Runtimes};
use crate::process::ProcessRuntime;
pub use crate::runtime::{Instance, Runtime, StartError, StartRequest};

/// Everything the control plane needs besides the functions. The binary fills it from the config
/// and its own environment (this crate reads neither).
#[derive(Clone, Debug)]
pub struct ControlSettings {
    /// The RIE each process environment runs: `esb-rie` by default, AWS's `aws-lambda-rie` works.
    pub rie_binary: PathBuf,
    /// Lock + marker for leftover cleanup; one esb per directory.
    pub state_dir: PathBuf,
    /// Variables passed through from esb's own environment (e.g. `PATH`, `HOME`, `LANG`).
    /// Nothing else of esb's environment reaches a function.
    pub base_env: Vec<(String, String)>,
    /// Working directory of functions that set none.
    pub working_dir: Option<PathBuf>,
    pub region: String,
    pub account_id: String,
    pub s3_endpoint: Option<String>,
    pub dynamodb_endpoint: Option<String>,
    pub lambda_endpoint: Option<String>,
    /// Ticker period: pre-warming and breaker re-plans, and the table's clock resolution.
    pub tick: Duration,
    /// How often idle environments are looked for. A sweep briefly empties each function's idle
    /// stack (warm acquires take the locked path meanwhile), so not on every tick.
    pub reap_interval: Duration,
    /// Deadline of one cold start (spawn + readiness); keep it equal to the pool's
    /// `PoolSpec::start_timeout`.
    pub start_timeout: Duration,
    /// SIGTERM → SIGKILL grace when stopping an environment.
    pub stop_grace: Duration,
    /// Where `GET /admin/pools` is served (keep it on loopback); `None` serves nothing.
    pub admin_listen: Option<SocketAddr>,
    /// The Docker runtime; the engine is contacted only if some function has `runtime: docker`.
    /// An empty `options.owner` is derived from the state directory (one per deployment).
    pub docker: DockerSettings,
}

impl ControlSettings {
    pub fn new(rie_binary: PathBuf, state_dir: PathBuf) -> Self {
        Self {
            rie_binary,
            state_dir,
            base_env: Vec::new(),
            working_dir: None,
            region: "ap-northeast-1".into(),
            account_id: "123456789012".into(),
            s3_endpoint: None,
            dynamodb_endpoint: None,
            lambda_endpoint: None,
            tick: Duration::from_millis(250),
            reap_interval: Duration::from_secs(1),
            start_timeout: esb_pool::DEFAULT_START_TIMEOUT,
            stop_grace: Duration::from_secs(2),
            admin_listen: None,
            docker: DockerSettings {
                options: esb_docker::DockerOptions {
                    owner: String::new(),
                    ..Default::default()
                },
                ..Default::default()
            },
        }
    }

    /// From the config; `rie_binary` and `state_dir` apply where the config names none.
    /// `rie_binary` is also the static esb-rie of Docker functions unless
    /// `docker.rie_binary_static` names one. The engine is `docker.socket`, else
    /// `unix:///var/run/docker.sock` (the binary applies `DOCKER_HOST`).
    pub fn from_config(
        cfg: &esb_config::Config,
        rie_binary: PathBuf,
        state_dir: PathBuf,
        base_env: Vec<(String, String)>,
    ) -> Self {
        let rt = &cfg.runtime;
        let d = &cfg.docker;
        let defaults = esb_docker::DockerOptions::default();
        let docker = DockerSettings {
            options: esb_docker::DockerOptions {
                host: d.socket.clone().unwrap_or(defaults.host),
                owner: d.owner.clone().unwrap_or_default(),
                // Docker wants an absolute bind-mount source; a config given as a relative
                // path yields relative paths.
                rie_binary: Some({
                    let p = d
                        .rie_binary_static
                        .clone()
                        .unwrap_or_else(|| rie_binary.clone());
                    std::path::absolute(&p).unwrap_or(p)
                }),
                network: d.network.clone(),
                hardening: esb_docker::Hardening {
                    nano_cpus: (d.cpus * 1e9).round() as i64,
                    pids_limit: d.pids_limit,
                    ..Default::default()
                },
                platform: esb_docker::PlatformEnv {
                    region: cfg.api.region.clone(),
                    account_id: cfg.api.account_id.clone(),
                    s3_endpoint: rt.s3_endpoint.clone(),
                    dynamodb_endpoint: rt.dynamodb_endpoint.clone(),
                    lambda_endpoint: rt.lambda_endpoint.clone(),
                },
                keep_on_shutdown: d.keep_on_shutdown,
                ..defaults
            },
            preload_dir: d.preload_dir.clone(),
            ..Default::default()
        };
        Self {
            docker,
            base_env,
            working_dir: Some(cfg.base_dir.clone()),
            region: cfg.api.region.clone(),
            account_id: cfg.api.account_id.clone(),
            s3_endpoint: rt.s3_endpoint.clone(),
            dynamodb_endpoint: rt.dynamodb_endpoint.clone(),
            lambda_endpoint: rt.lambda_endpoint.clone(),
            admin_listen: Some(cfg.server.admin_listen),
            ..Self::new(
                rt.rie_binary.clone().unwrap_or(rie_binary),
                rt.state_dir.clone().unwrap_or(state_dir),
            )
        }
    }
}

/// Why the control plane could not start. Always an operator problem; retrying as is will not help.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("state directory {0}: {1}")]
    StateDir(PathBuf, std::io::Error),
    #[error("state directory {0} is in use by another esb")]
    StateDirBusy(PathBuf),
    #[error("the pool table does not match the functions: {0}")]
    Mismatch(String),
    #[error("cannot start the control thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot listen on {0} for the admin endpoint: {1}")]
    Admin(SocketAddr, std::io::Error),
}

/// Starts the control thread for `functions` (in the table's order) with the process runtime.
/// Kills leftovers of a previous esb that used the same state directory first.
pub fn spawn(
    settings: ControlSettings,
    functions: Vec<FunctionSpec>,
    table: Arc<PoolTable>,
    commands: ControlReceiver,
) -> Result<ControlHandle, ControlError> {
    for (i, f) in functions.iter().enumerate() {
        let id = esb_pool::FunctionId(i as u32);
        match table.spec(id) {
            Some(s) if s.name == f.name => {}
            other => {
                return Err(ControlError::Mismatch(format!(
                    "function #{i} is {:?} in the config and {:?} in the table",
                    f.name,
                    other.map(|s| &s.name)
                )));
            }
        }
    }
    let admin = match settings.admin_listen {
        Some(addr) => {
            let l = std::net::TcpListener::bind(addr).map_err(|e| ControlError::Admin(addr, e))?;
            l.set_nonblocking(true)
                .map_err(|e| ControlError::Admin(addr, e))?;
            Some(l)
        }
        None => None,
    };
    let admin_addr = admin.as_ref().and_then(|l| l.local_addr().ok());
    let state = state::StateDir::open(&settings.state_dir)?;
    let leftovers = state.kill_leftovers();
    if !leftovers.is_empty() {
        tracing::warn!(pids = ?leftovers, "killed environments left behind by a previous esb");
    }
    let mut settings = ControlSettings {
        state_dir: state.path().to_path_buf(),
        ..settings
    };
    if settings.docker.options.owner.is_empty() {
        settings.docker.options.owner = owner_of(state.path());
    }
    let needs_docker = functions
        .iter()
        .any(|f| matches!(f.runtime, esb_model::RuntimeSpec::Docker { .. }));
    let pids = Arc::new(PidMap::default());
    let (shutdown_tx, shutdown_rx) = oneshot::channel();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ControlError::Thread)?;
    let thread_pids = pids.clone();
    let stop_grace = settings.stop_grace;
    let thread = std::thread::Builder::new()
        .name("esb-control".into())
        .spawn(move || {
            // The lock lives exactly as long as this thread, like the children it guards.
            let settings = Rc::new(settings);
            let docker = needs_docker.then(|| DockerSide::new(settings.docker.clone()));
            let runtime = Runtimes {
                process: ProcessRuntime::new(settings.clone()),
                docker: docker.clone(),
            };
            let local = tokio::task::LocalSet::new();
            if let Some(l) = admin {
                let _guard = rt.enter();
                match tokio::net::TcpListener::from_std(l) {
                    Ok(l) => {
                        local.spawn_local(admin::serve(l, table.clone(), thread_pids.clone()));
                    }
                    Err(e) => tracing::error!("admin listener: {e}"),
                }
            }
            let control = Rc::new(Control::new(
                table,
                functions,
                runtime,
                settings,
                thread_pids,
            ));
            if let Some(side) = docker {
                local.spawn_local(docker::supervise(control.clone(), side));
            }
            local.block_on(&rt, control.run(commands, shutdown_rx));
            // Runtimes in their own process groups (esb-rie puts them there) die by
            // PDEATHSIG a moment after their RIE; return only once nothing of ours is left.
            let until = Instant::now() + Duration::from_secs(2);
            while !state.kill_leftovers().is_empty() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
        })
        .map_err(ControlError::Thread)?;
    Ok(ControlHandle {
        shutdown: Some(shutdown_tx),
        thread: Some(thread),
        pids,
        leftovers_killed: leftovers.len(),
        stop_grace,
        admin_addr,
    })
}

/// The Docker owner label of a deployment: stable across restarts of the same esb (same state
/// directory), different between independent ones sharing an engine.
fn owner_of(state_dir: &std::path::Path) -> String {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    state_dir.hash(&mut h);
    format!("esb-{:012x}", h.finish() & 0xffff_ffff_ffff)
}

/// The running control plane. Dropping it shuts it down too (with the stop grace as deadline).
#[derive(Debug)]
pub struct ControlHandle {
    shutdown: Option<oneshot::Sender<Instant>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pids: Arc<PidMap>,
    leftovers_killed: usize,
    stop_grace: Duration,
    admin_addr: Option<SocketAddr>,
}

impl ControlHandle {
    /// Where `GET /admin/pools` is served (the bound address, so port 0 works).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Process ids of the ready environments.
    pub fn pids(&self) -> Vec<(EnvId, u32)> {
        self.pids.all()
    }

    /// How many leftover processes of a previous esb were killed at start.
    pub fn leftovers_killed(&self) -> usize {
        self.leftovers_killed
    }

    /// Closes the table (waiters get 503), stops every environment (SIGTERM, SIGKILL at
    /// `deadline`) and returns when they are all gone. Call it after the data plane drained.
    pub fn shutdown(mut self, deadline: Instant) {
        self.stop(deadline);
    }

    fn stop(&mut self, deadline: Instant) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(deadline);
        }
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the control thread panicked");
        }
    }
}

impl Drop for ControlHandle {
    fn drop(&mut self) {
        self.stop(Instant::now() + self.stop_grace);
    }
}
