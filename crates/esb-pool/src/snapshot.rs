//! The pool table as data, for `GET /admin/pools`: per function its environments, their state,
//! age and last use, and the counters.

use std::net::SocketAddr;

use crate::EnvId;

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PoolSnapshot {
    pub functions: Vec<FunctionSnapshot>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FunctionSnapshot {
    pub name: String,
    /// `managed` (started on demand) or `static` (fixed endpoints).
    pub kind: &'static str,
    pub max_capacity: u32,
    pub min_capacity: u32,
    /// Environments counted against `max_capacity` (starting, idle, busy).
    pub live: u32,
    pub starting: u32,
    /// Requests waiting for an environment.
    pub waiting: u32,
    /// `closed`, `open` or `half_open`.
    pub breaker: &'static str,
    pub environments: Vec<EnvSnapshot>,
    pub counters: CountersSnapshot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvState {
    Starting,
    Idle,
    Busy,
    /// Out of the pool, being stopped.
    Draining,
    /// Its process died; it leaves the pool when next touched.
    Dead,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EnvSnapshot {
    pub id: EnvId,
    pub state: EnvState,
    pub addr: Option<SocketAddr>,
    /// Since it was started (ready, for static endpoints: since the table was built).
    pub age_ms: u64,
    /// Idle: since its last use. Draining: since it left the pool.
    pub idle_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CountersSnapshot {
    pub cold_starts: u64,
    pub start_failures: u64,
    pub reaps: u64,
    /// Requests answered "at capacity" (at once or after their wait ran out).
    pub rejections: u64,
    pub crashes: u64,
    /// Environments destroyed after an invocation (timeout, fault, abandoned lease).
    pub destroyed: u64,
    pub circuit_opens: u64,
    /// Requests that had to queue.
    pub waits: u64,
}
