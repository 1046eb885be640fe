//! The seam between the control loop and the ways an environment can exist: a [`Runtime`] starts
//! [`Instance`]s, an instance can be watched for its own death, checked and stopped.
//!
//! Everything here runs on the control thread's current-thread runtime, so futures need not be
//! `Send`. The process runtime is the embedded default; Docker plugs in behind the same trait.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use esb_model::FunctionSpec;
use esb_pool::EnvId;

/// What to start.
#[derive(Clone, Copy, Debug)]
pub struct StartRequest<'a> {
    pub function: &'a FunctionSpec,
    pub env: EnvId,
    /// Pre-warmed for `min_capacity` rather than for a waiting request (Lambda's
    /// `AWS_LAMBDA_INITIALIZATION_TYPE`).
    pub provisioned: bool,
}

/// Why an environment did not start. The control loop reports it to the pool table, which
/// answers the waiting request 502 and feeds the function's circuit breaker.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The function's runtime kind is not served by this control plane (a config problem).
    #[error("the {0} runtime is not available in this esb")]
    Unsupported(&'static str),
    /// The RIE binary could not be executed (missing, not executable): operator's fault.
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    /// The function's command cannot be executed (missing, not executable): config's fault,
    /// retrying cannot help until it is fixed.
    #[error("the function's command {program} cannot be run: {reason}")]
    Command { program: String, reason: String },
    /// It started and exited before answering (bad arguments, port taken, crash at start).
    #[error("the environment exited before it was ready ({0})")]
    Exited(String),
    #[error("no free loopback port: {0}")]
    Ports(std::io::Error),
    /// The Docker runtime could not start it: the engine is unreachable or refused, the image is
    /// missing, or the container exited or stayed silent (the message says which).
    #[error("{0}")]
    Docker(String),
}

/// A way to bring environments to life.
pub trait Runtime: 'static {
    type Instance: Instance;

    /// Starts one environment and returns once it answers on its invoke address. The caller
    /// bounds this with the start deadline; dropping the future must leave nothing running.
    fn start(
        &self,
        req: StartRequest<'_>,
    ) -> impl Future<Output = Result<Self::Instance, StartError>>;

    /// Shutdown begins: called before the control loop stops every environment.
    fn closing(&self) {}

    /// Every environment task has ended: release what the runtime holds besides them.
    fn closed(&self) -> impl Future<Output = ()> {
        std::future::ready(())
    }
}

/// One running environment. Dropping it kills whatever is left of it, at once.
pub trait Instance: 'static {
    /// Its RIE invoke endpoint.
    fn addr(&self) -> SocketAddr;

    /// The OS process id of its root process, if it is a process (for the admin view and logs).
    fn pid(&self) -> Option<u32>;

    /// Resolves when the environment ended on its own (crash, `kill -9`), with how it ended.
    /// Cancel-safe: the control loop races it with a stop request.
    fn exited(&mut self) -> impl Future<Output = String>;

    /// Whether it accepts connections now.
    fn health(&self) -> impl Future<Output = bool>;

    /// Asks it to stop, waits up to `grace`, then forces it; returns when it is gone.
    fn stop(self, grace: Duration) -> impl Future<Output = ()>;
}
