//! The pool table: every function's execution environments, shared by the data plane (monoio
//! workers acquire and release them) and the control plane (one tokio thread starts, stops and
//! reaps them).
//!
//! Lambda semantics: one request at a time per environment, many environments per function,
//! started on demand and reaped when idle. The table is runtime-agnostic: its futures use std
//! `Waker`s and its commands to the control plane go over a tokio `sync` channel, which works from
//! any thread.
//!
//! How it fits together:
//! - [`PoolTable::acquire`] takes an idle environment with one CAS on a per-function lock-free
//!   stack; no lock at all on that path. Only when nothing is idle does it take the function's
//!   lock, queue the request (FIFO) and, if the function is below `max_capacity`, ask the control
//!   plane for cold starts ([`ControlCommand::Start`]), coalesced so N waiters cause at most N.
//! - [`Lease::release`] puts the environment back with one CAS, or hands it straight to the
//!   oldest waiter; [`Outcome::Destroy`] (a timed-out or broken invocation) removes it instead.
//! - The control plane answers with [`PoolTable::env_ready`] / [`PoolTable::start_failed`],
//!   reports deaths with [`PoolTable::env_died`], reaps with [`PoolTable::idle_to_reap`] and calls
//!   [`PoolTable::tick`] a few times a second: it advances the table's coarse clock, pre-warms
//!   `min_capacity` and re-plans after the circuit breaker's cool-down.
//! - The decisions themselves (how many to start, whom to reject, what to reap, the breaker) are
//!   plain functions in [`decide`], tested without threads.
//!
//! Time: the table reads no clock. The control plane passes `now` in and the table keeps a
//! coarse "now" (milliseconds since its epoch) that the data plane's calls use for last-use stamps.

pub mod decide;
mod snapshot;
mod stack;
mod table;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use esb_model::{FunctionName, FunctionSpec, RuntimeSpec};

pub use snapshot::{CountersSnapshot, EnvSnapshot, EnvState, FunctionSnapshot, PoolSnapshot};
pub use table::{Acquire, Lease, PoolTable};

/// A function's index in the table (the order of the `PoolSpec`s it was built from).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct FunctionId(pub u32);

/// One execution environment. Never reused within a table's life, so it can key per-core
/// upstream connections without confusing a new environment that got an old one's port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct EnvId(pub u64);

impl fmt::Display for EnvId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "env-{}", self.0)
    }
}

/// How one function's environments come to exist, as far as the table cares.
#[derive(Clone, Debug, PartialEq)]
pub enum PoolKind {
    /// Started and stopped by the control plane on demand (process and Docker runtimes).
    Managed,
    /// Fixed RIE endpoints (`runtime: endpoint`): one environment each, always there, never
    /// started, stopped or reaped.
    Static(Vec<SocketAddr>),
}

/// The circuit breaker over a function's cold starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerSpec {
    /// Consecutive failed starts that open the circuit; 0 disables the breaker.
    pub failure_threshold: u32,
    /// How long an open circuit answers 502 at once before one trial start is allowed.
    pub cooldown: Duration,
}

impl Default for BreakerSpec {
    fn default() -> Self {
        // The original ESB's values (CIRCUIT_BREAKER_THRESHOLD, RECOVERY_TIMEOUT).
        Self {
            failure_threshold: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// What the table needs to know about one function.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolSpec {
    pub name: FunctionName,
    pub kind: PoolKind,
    pub max_capacity: u32,
    pub min_capacity: u32,
    pub idle_timeout: Duration,
    /// How long a request may wait for an environment; see [`PoolTable::wait_limit`].
    pub acquire_timeout: Duration,
    /// At most this many requests wait for a busy environment; see [`decide::admit`].
    pub max_queue: u32,
    /// 503 or 429, the status of "at capacity".
    pub reject_status: u16,
    /// The control plane's deadline for a cold start; bounds the wait of a request that is not
    /// allowed to queue (`acquire_timeout: 0`) but is waiting for the start it caused.
    pub start_timeout: Duration,
    pub breaker: BreakerSpec,
}

/// Default cold-start deadline (process spawn + readiness).
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30);

impl PoolSpec {
    /// How many requests may wait for a busy environment: `max_queue`, or none when the function
    /// does not let requests wait at all (`acquire_timeout: 0`).
    pub fn queue_room(&self) -> u32 {
        if self.acquire_timeout.is_zero() {
            0
        } else {
            self.max_queue
        }
    }

    /// The pool of a configured function.
    pub fn from_function(f: &FunctionSpec) -> Self {
        let s = &f.scaling;
        let kind = match &f.runtime {
            RuntimeSpec::Endpoint { addr } => PoolKind::Static(vec![*addr]),
            RuntimeSpec::Process { .. } | RuntimeSpec::Docker { .. } => PoolKind::Managed,
        };
        Self {
            name: f.name.clone(),
            kind,
            max_capacity: s.max_capacity,
            min_capacity: s.min_capacity,
            idle_timeout: s.idle_timeout,
            acquire_timeout: s.acquire_timeout,
            max_queue: s.max_queue,
            reject_status: s.reject_status,
            start_timeout: DEFAULT_START_TIMEOUT,
            breaker: BreakerSpec::default(),
        }
    }

    /// A managed pool with Lambda-ish defaults, for tests and benches.
    pub fn managed(name: &str, max_capacity: u32) -> Self {
        Self {
            name: FunctionName::new(name),
            kind: PoolKind::Managed,
            max_capacity,
            min_capacity: 0,
            idle_timeout: Duration::from_secs(300),
            acquire_timeout: Duration::from_secs(30),
            max_queue: esb_model::DEFAULT_MAX_QUEUE,
            reject_status: 503,
            start_timeout: DEFAULT_START_TIMEOUT,
            breaker: BreakerSpec::default(),
        }
    }

    /// The number of slots: environments that may exist at once.
    fn capacity(&self) -> u32 {
        match &self.kind {
            PoolKind::Managed => self.max_capacity,
            PoolKind::Static(addrs) => u32::try_from(addrs.len()).unwrap_or(u32::MAX),
        }
    }
}

/// Why an environment is being stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The invocation outlived the function's timeout: the environment's state is unknown.
    Timeout,
    /// The environment misbehaved (connection refused or reset, garbled response).
    Faulty,
    /// A lease was dropped without being released (the request task died mid-invocation).
    Abandoned,
    /// Idle past `idle_timeout`.
    Idle,
    /// It became ready after nobody needed it any more (the table was closed).
    Unwanted,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::Timeout => "timed out",
            StopReason::Faulty => "faulty",
            StopReason::Abandoned => "lease abandoned",
            StopReason::Idle => "idle",
            StopReason::Unwanted => "unwanted",
        })
    }
}

/// How an invocation left its environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Healthy: back to the pool (or straight to the next waiter).
    Reuse,
    /// Remove it from the pool and have the control plane stop it.
    Destroy(StopReason),
}

/// Messages from the table to the control plane. A closed set: each has exactly one answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlCommand {
    /// Start environment `env` of `function`; answer with [`PoolTable::env_ready`] or
    /// [`PoolTable::start_failed`]. `prewarm`: for `min_capacity`, nobody is waiting for it.
    Start {
        function: FunctionId,
        env: EnvId,
        prewarm: bool,
    },
    /// Stop `env`, already out of the pool; answer with [`PoolTable::env_stopped`] when gone.
    Stop {
        function: FunctionId,
        env: EnvId,
        reason: StopReason,
    },
}

/// The table's end of the channel to the control plane. Sending never blocks, from any thread.
#[derive(Clone, Debug)]
pub struct ControlSender(tokio::sync::mpsc::UnboundedSender<ControlCommand>);

/// The control plane's end.
pub type ControlReceiver = tokio::sync::mpsc::UnboundedReceiver<ControlCommand>;

impl ControlSender {
    pub fn new(tx: tokio::sync::mpsc::UnboundedSender<ControlCommand>) -> Self {
        Self(tx)
    }

    fn send(&self, cmd: ControlCommand) -> Result<(), ControlCommand> {
        self.0.send(cmd).map_err(|e| e.0)
    }
}

/// A new table-to-control channel.
pub fn control_channel() -> (ControlSender, ControlReceiver) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (ControlSender(tx), rx)
}

/// Why no environment could be had. Never the client's fault; whether to retry is in each variant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AcquireError {
    /// Every environment is busy and the wait ran out (or the function does not let requests
    /// wait). Retry after `retry_after`.
    #[error("the function is at capacity")]
    AtCapacity { status: u16, retry_after: Duration },
    /// The cold start this request waited for failed. A retry may start a new one.
    #[error("the execution environment failed to start: {reason}")]
    StartFailed { reason: Arc<str> },
    /// Cold starts keep failing: answered at once until the cool-down ends.
    #[error("cold starts of this function keep failing; not retrying for now")]
    CircuitOpen { retry_after: Duration },
    /// No such function in the table: a routing bug, not a runtime condition.
    #[error("no such function in the pool table")]
    UnknownFunction,
    /// esb is shutting down.
    #[error("shutting down")]
    Closed,
}

impl AcquireError {
    /// The HTTP status a gateway answers with.
    pub fn status(&self) -> u16 {
        match self {
            AcquireError::AtCapacity { status, .. } => *status,
            AcquireError::StartFailed { .. } | AcquireError::CircuitOpen { .. } => 502,
            AcquireError::UnknownFunction => 500,
            AcquireError::Closed => 503,
        }
    }

    /// The `Retry-After` to send, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AcquireError::AtCapacity { retry_after, .. }
            | AcquireError::CircuitOpen { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
