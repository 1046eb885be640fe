//! The pool table itself: per-function slots, the lock-free idle stack, the FIFO of waiters, and
//! the methods both planes call.
//!
//! Hot path (acquire and release). Design, and why it is correct:
//! - Each function has a fixed array of slots (`max_capacity`, or one per static endpoint). A
//!   slot's `state` is FREE, STARTING, IDLE or BUSY. IDLE slots are on the function's lock-free
//!   stack; a slot is on the stack at most once because only its owner pushes it, and whoever
//!   pops it owns it.
//! - Warm acquire: read `waiting` (0), pop the stack (one CAS), check `dead`, mark BUSY. Warm
//!   release: check `dead`, mark IDLE, push (one CAS), re-read `waiting`. No lock, no allocation,
//!   no shared counter; `state` is written only by the slot's owner, for the admin view.
//! - Everything else takes the function's `inner` lock (never two at once, never across an
//!   await): queueing, cold starts, handing a slot to a waiter, freeing slots, reaping. Slots
//!   change between FREE and anything else only under that lock, so `live`/`starting` are exact.
//! - Lost wake-ups: a releaser pushes then reads `waiting`; a waiter stores `waiting` (under the
//!   lock) then pops. All four are SeqCst, so at least one sees the other: either the waiter pops
//!   the slot itself or the releaser sees a waiter and hands idle slots out under the lock.
//! - FIFO: while anyone waits (`waiting > 0`), acquirers go to the back of the queue and releasers
//!   hand their slot to the oldest waiter under the lock. A newcomer can only overtake a waiter
//!   in the nanoseconds between a waiter registering and a releaser's re-check.
//! - Crashes: the control plane sets the slot's sticky `dead` flag (under the lock); only freeing
//!   the slot clears it, so a death is never lost. Whoever owns the slot next frees it instead of
//!   using it: the holder's release, a pop, or a sweep of the stack. An environment can die just
//!   after any check, so checking before use is all that can be done; its request then fails on
//!   the broken connection, and the release destroys it.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use crossbeam_utils::atomic::AtomicCell;
use parking_lot::Mutex;

use crate::decide::{self, Admission, Breaker, Counts, IdleEnv, StartPermit};
use crate::snapshot::{CountersSnapshot, EnvSnapshot, EnvState, FunctionSnapshot, PoolSnapshot};
use crate::stack::IdleStack;
use crate::{
    AcquireError, ControlCommand, ControlSender, EnvId, FunctionId, Outcome, PoolKind, PoolSpec,
    StopReason,
};

const FREE: u8 = 0;
const STARTING: u8 = 1;
const IDLE: u8 = 2;
const BUSY: u8 = 3;

/// `Retry-After` for "at capacity": environments turn over in about an invocation's time.
const AT_CAPACITY_RETRY: Duration = Duration::from_secs(1);

/// The shared pool table. Build it once, share it as `Arc<PoolTable>`.
pub struct PoolTable {
    pub(crate) pools: Box<[FnPool]>,
    control: ControlSender,
    epoch: Instant,
    /// Coarse "now" in ms since `epoch`, advanced by the control plane ([`PoolTable::tick`]).
    now_ms: AtomicU64,
    next_env: AtomicU64,
    closed: CachePadded<AtomicBool>,
}

pub(crate) struct FnPool {
    id: FunctionId,
    spec: PoolSpec,
    /// Touched by every acquire and release: its own cache line.
    hot: CachePadded<Hot>,
    slots: Box<[CachePadded<Slot>]>,
    pub(crate) inner: Mutex<Inner>,
    counters: Counters,
}

struct Hot {
    idle: IdleStack,
    /// Mirror of `inner.queued`, written under the lock, read lock-free by the warm paths.
    waiting: AtomicU32,
}

struct Slot {
    state: AtomicU8,
    /// Its process is gone. Set by the control plane, cleared only by `free_slot`.
    dead: AtomicBool,
    env: AtomicU64,
    addr: AtomicCell<SocketAddr>,
    next: AtomicU32,
    last_use_ms: AtomicU64,
    born_ms: AtomicU64,
}

pub(crate) struct Inner {
    free: Vec<u32>,
    live: u32,
    starting: u32,
    /// Tickets in arrival order; cancelled ones are skipped lazily.
    pub(crate) queue: VecDeque<u64>,
    pub(crate) waiters: HashMap<u64, Waiter>,
    /// Waiters still without an answer (`waiters` minus answered ones).
    queued: u32,
    next_ticket: u64,
    breaker: Breaker,
    draining: Vec<Draining>,
}

pub(crate) struct Waiter {
    waker: Option<Waker>,
    answer: Option<Result<Grant, AcquireError>>,
}

#[derive(Clone, Copy)]
struct Grant {
    slot: u32,
    env: EnvId,
    addr: SocketAddr,
}

#[derive(Clone, Copy)]
struct Draining {
    env: EnvId,
    since_ms: u64,
    born_ms: u64,
}

#[derive(Default)]
struct Counters {
    cold_starts: AtomicU64,
    start_failures: AtomicU64,
    reaps: AtomicU64,
    rejections: AtomicU64,
    crashes: AtomicU64,
    destroyed: AtomicU64,
    circuit_opens: AtomicU64,
    waits: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Wakers and commands collected under a lock, delivered after it is released.
#[derive(Default)]
struct Effects {
    wake: Vec<Waker>,
    send: Vec<ControlCommand>,
}

impl PoolTable {
    /// Builds the table. `now` is its epoch; static endpoints start idle.
    pub fn new(specs: Vec<PoolSpec>, control: ControlSender, now: Instant) -> Arc<PoolTable> {
        let mut next_env = 1u64;
        let pools = specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| {
                let cap = spec.capacity();
                let slots: Box<[CachePadded<Slot>]> = (0..cap)
                    .map(|_| {
                        CachePadded::new(Slot {
                            state: AtomicU8::new(FREE),
                            dead: AtomicBool::new(false),
                            env: AtomicU64::new(0),
                            addr: AtomicCell::new(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))),
                            next: AtomicU32::new(0),
                            last_use_ms: AtomicU64::new(0),
                            born_ms: AtomicU64::new(0),
                        })
                    })
                    .collect();
                let pool = FnPool {
                    id: FunctionId(i as u32),
                    hot: CachePadded::new(Hot {
                        idle: IdleStack::new(),
                        waiting: AtomicU32::new(0),
                    }),
                    slots,
                    inner: Mutex::new(Inner {
                        free: (0..cap).rev().collect(),
                        live: 0,
                        starting: 0,
                        queue: VecDeque::new(),
                        waiters: HashMap::new(),
                        queued: 0,
                        next_ticket: 0,
                        breaker: Breaker::new(
                            spec.breaker.failure_threshold,
                            millis(spec.breaker.cooldown),
                        ),
                        draining: Vec::new(),
                    }),
                    counters: Counters::default(),
                    spec,
                };
                if let PoolKind::Static(addrs) = &pool.spec.kind {
                    let mut inner = pool.inner.lock();
                    for addr in addrs {
                        let slot = inner.free.pop().expect("one slot per endpoint");
                        let s = &pool.slots[slot as usize];
                        s.env.store(next_env, Ordering::Relaxed);
                        next_env += 1;
                        s.addr.store(*addr);
                        s.state.store(IDLE, Ordering::Relaxed);
                        inner.live += 1;
                        pool.push_idle(slot);
                    }
                }
                pool
            })
            .collect();
        Arc::new(PoolTable {
            pools,
            control,
            epoch: now,
            now_ms: AtomicU64::new(0),
            next_env: AtomicU64::new(next_env),
            closed: CachePadded::new(AtomicBool::new(false)),
        })
    }

    /// The function's id by name (resolve once, at start or when routes are built).
    pub fn function_id(&self, name: &str) -> Option<FunctionId> {
        self.pools
            .iter()
            .find(|p| p.spec.name.as_str() == name)
            .map(|p| p.id)
    }

    pub fn spec(&self, f: FunctionId) -> Option<&PoolSpec> {
        self.pool(f).map(|p| &p.spec)
    }

    pub fn functions(&self) -> impl Iterator<Item = (FunctionId, &PoolSpec)> {
        self.pools.iter().map(|p| (p.id, &p.spec))
    }

    fn pool(&self, f: FunctionId) -> Option<&FnPool> {
        self.pools.get(f.0 as usize)
    }

    fn ms(&self, t: Instant) -> u64 {
        millis(t.saturating_duration_since(self.epoch))
    }

    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }

    /// Waits for an environment of `f`, FIFO behind earlier waiters, cold-starting one if the
    /// function is below `max_capacity`.
    ///
    /// The table has no timer: the caller races this future with its own, of
    /// [`PoolTable::wait_limit`], and on expiry drops it and answers [`PoolTable::timed_out`].
    /// Dropping the future at any point is safe: a queued request leaves the queue, and an
    /// environment already handed to it goes to the next waiter (or back to idle).
    pub fn acquire(&self, f: FunctionId) -> Acquire<'_> {
        Acquire {
            table: self,
            function: f,
            ticket: None,
            done: false,
        }
    }

    /// A warm environment if one is idle and nobody is waiting; never waits or starts anything.
    pub fn try_acquire(&self, f: FunctionId) -> Option<Lease<'_>> {
        let pool = self.pool(f)?;
        if self.is_closed() {
            return None;
        }
        match pool.pop_warm() {
            Warm::Got(slot) => Some(self.lease(pool, slot)),
            Warm::Empty => None,
            Warm::Dead(slot) => {
                let mut fx = Effects::default();
                {
                    let mut inner = pool.inner.lock();
                    pool.free_slot(&mut inner, slot);
                    self.replan(pool, &mut inner, &mut fx);
                }
                self.apply(fx);
                None
            }
        }
    }

    /// How long a request may wait in [`PoolTable::acquire`]: `acquire_timeout`, cold starts
    /// included. With `acquire_timeout: 0` the table itself rejects at capacity, and a request
    /// waiting for the cold start it caused is bounded by the start deadline instead.
    pub fn wait_limit(&self, f: FunctionId) -> Duration {
        match self.pool(f) {
            Some(p) if p.spec.acquire_timeout.is_zero() => p.spec.start_timeout,
            Some(p) => p.spec.acquire_timeout,
            None => Duration::ZERO,
        }
    }

    /// The answer to a request whose wait ran out (counted as a rejection).
    pub fn timed_out(&self, f: FunctionId) -> AcquireError {
        match self.pool(f) {
            Some(p) => {
                bump(&p.counters.rejections);
                p.at_capacity()
            }
            None => AcquireError::UnknownFunction,
        }
    }

    fn lease(&self, pool: &FnPool, slot: u32) -> Lease<'_> {
        let s = &pool.slots[slot as usize];
        Lease {
            table: self,
            function: pool.id,
            env: EnvId(s.env.load(Ordering::Relaxed)),
            addr: s.addr.load(),
            slot,
            armed: true,
        }
    }

    fn lease_from(&self, f: FunctionId, g: Grant) -> Lease<'_> {
        Lease {
            table: self,
            function: f,
            env: g.env,
            addr: g.addr,
            slot: g.slot,
            armed: true,
        }
    }

    // ------------------------------------------------------------------ acquire, slow path

    /// First poll of an acquire that found nothing warm: queue, maybe start, maybe answer now.
    fn enqueue(
        &self,
        pool: &FnPool,
        dead: Option<u32>,
        waker: &Waker,
    ) -> Result<Result<Lease<'_>, AcquireError>, u64> {
        let mut fx = Effects::default();
        let out = {
            let mut inner = pool.inner.lock();
            if let Some(slot) = dead {
                pool.free_slot(&mut inner, slot);
            }
            if self.closed.load(Ordering::SeqCst) {
                Ok(Err(AcquireError::Closed))
            } else {
                // Idle environments nobody picked up (a racing release) go to earlier waiters.
                pool.dispatch_idle(&mut inner, &mut fx);
                match (inner.queued == 0).then(|| pool.pop_locked(&mut inner)) {
                    Some(Some(slot)) => Ok(Ok(self.lease(pool, slot))),
                    _ => self.admit(pool, &mut inner, waker, &mut fx),
                }
            }
        };
        self.apply(fx);
        out
    }

    fn admit(
        &self,
        pool: &FnPool,
        inner: &mut Inner,
        waker: &Waker,
        fx: &mut Effects,
    ) -> Result<Result<Lease<'_>, AcquireError>, u64> {
        let now = self.now_ms();
        let permit = pool.permit(inner, now);
        match decide::admit(pool.counts(inner), permit, pool.spec.queue_room()) {
            Admission::Reject => {
                bump(&pool.counters.rejections);
                Ok(Err(pool.at_capacity()))
            }
            Admission::CircuitOpen { retry_after_ms } => Ok(Err(circuit_open(retry_after_ms))),
            Admission::Wait { start } => {
                let ticket = inner.next_ticket;
                inner.next_ticket += 1;
                inner.queue.push_back(ticket);
                inner.waiters.insert(
                    ticket,
                    Waiter {
                        waker: Some(waker.clone()),
                        answer: None,
                    },
                );
                inner.queued += 1;
                pool.sync_waiting(inner);
                bump(&pool.counters.waits);
                self.start(pool, inner, start, false, fx);
                // The Dekker re-check: a release that pushed before seeing `waiting` is served here.
                pool.dispatch_idle(inner, fx);
                match pool.take_answer(inner, ticket) {
                    Some(answer) => Ok(answer.map(|g| self.lease_from(pool.id, g))),
                    None => Err(ticket),
                }
            }
        }
    }

    fn poll_ticket(
        &self,
        f: FunctionId,
        ticket: u64,
        waker: &Waker,
    ) -> Option<Result<Lease<'_>, AcquireError>> {
        let pool = self.pool(f)?;
        let mut inner = pool.inner.lock();
        if let Some(answer) = pool.take_answer(&mut inner, ticket) {
            return Some(answer.map(|g| self.lease_from(f, g)));
        }
        let Some(w) = inner.waiters.get_mut(&ticket) else {
            // Unreachable: a ticket leaves the map only by being answered or cancelled.
            return Some(Err(AcquireError::Closed));
        };
        match &w.waker {
            Some(old) if old.will_wake(waker) => {}
            _ => w.waker = Some(waker.clone()),
        }
        None
    }

    /// The acquire future was dropped while queued: leave the queue, or pass on what it was given.
    fn cancel(&self, f: FunctionId, ticket: u64) {
        let Some(pool) = self.pool(f) else { return };
        let mut fx = Effects::default();
        {
            let mut inner = pool.inner.lock();
            match inner.waiters.remove(&ticket) {
                Some(Waiter { answer: None, .. }) => {
                    inner.queued -= 1;
                    pool.sync_waiting(&inner);
                    pool.compact_queue(&mut inner);
                }
                Some(Waiter {
                    answer: Some(Ok(g)),
                    ..
                }) => pool.give_back(&mut inner, g.slot, &mut fx),
                Some(Waiter {
                    answer: Some(Err(_)),
                    ..
                })
                | None => {}
            }
        }
        self.apply(fx);
    }

    // ------------------------------------------------------------------ release

    fn finish(&self, f: FunctionId, slot: u32, outcome: Outcome) {
        let Some(pool) = self.pool(f) else { return };
        let s = &pool.slots[slot as usize];
        let outcome = match outcome {
            // After close the control plane stops everything: nothing goes back to the pool.
            Outcome::Reuse if self.is_closed() => Outcome::Destroy(StopReason::Unwanted),
            o => o,
        };
        if let Outcome::Destroy(reason) = outcome
            && matches!(pool.spec.kind, PoolKind::Managed)
        {
            return self.destroy(pool, slot, reason);
        }
        s.last_use_ms.store(self.now_ms(), Ordering::Relaxed);
        if pool.hot.waiting.load(Ordering::SeqCst) == 0 {
            if s.dead.load(Ordering::Acquire) {
                return self.destroy(pool, slot, StopReason::Faulty);
            }
            s.state.store(IDLE, Ordering::Relaxed);
            pool.push_idle(slot);
            // The other half of the Dekker pair (see `admit`).
            if pool.hot.waiting.load(Ordering::SeqCst) == 0 {
                return;
            }
            let mut fx = Effects::default();
            pool.dispatch_idle(&mut pool.inner.lock(), &mut fx);
            return self.apply(fx);
        }
        let mut fx = Effects::default();
        {
            let mut inner = pool.inner.lock();
            if s.dead.load(Ordering::Acquire) {
                pool.free_slot(&mut inner, slot);
                self.replan(pool, &mut inner, &mut fx);
            } else {
                pool.give_back(&mut inner, slot, &mut fx);
            }
        }
        self.apply(fx);
    }

    fn destroy(&self, pool: &FnPool, slot: u32, reason: StopReason) {
        let s = &pool.slots[slot as usize];
        let mut fx = Effects::default();
        {
            let mut inner = pool.inner.lock();
            let env = EnvId(s.env.load(Ordering::Relaxed));
            // A dead one is already gone: nothing to stop.
            let was_alive = !s.dead.load(Ordering::Acquire);
            pool.free_slot(&mut inner, slot);
            if was_alive {
                bump(&pool.counters.destroyed);
                inner.draining.push(Draining {
                    env,
                    since_ms: self.now_ms(),
                    born_ms: s.born_ms.load(Ordering::Relaxed),
                });
                fx.send.push(ControlCommand::Stop {
                    function: pool.id,
                    env,
                    reason,
                });
            }
            self.replan(pool, &mut inner, &mut fx);
        }
        self.apply(fx);
    }

    // ------------------------------------------------------------------ control plane side

    /// Advances the coarse clock, re-plans every function (breaker cool-downs end, waiters left
    /// uncovered get starts) and pre-warms up to `min_capacity`. Call it a few times a second.
    pub fn tick(&self, now: Instant) {
        self.advance(now);
        let mut fx = Effects::default();
        for pool in self.pools.iter() {
            if !matches!(pool.spec.kind, PoolKind::Managed) || self.closed.load(Ordering::SeqCst) {
                continue;
            }
            let mut inner = pool.inner.lock();
            self.replan(pool, &mut inner, &mut fx);
            let permit = pool.permit(&mut inner, self.now_ms());
            let n = decide::prewarm_needed(pool.counts(&inner), pool.spec.min_capacity, permit);
            self.start(pool, &mut inner, n, true, &mut fx);
        }
        self.apply(fx);
    }

    fn advance(&self, now: Instant) {
        self.now_ms.fetch_max(self.ms(now), Ordering::Relaxed);
    }

    /// `env` answers on `addr`. False when nobody wants it any more (stop it).
    pub fn env_ready(&self, f: FunctionId, env: EnvId, addr: SocketAddr, now: Instant) -> bool {
        self.advance(now);
        let Some(pool) = self.pool(f) else {
            return false;
        };
        let mut fx = Effects::default();
        let kept = {
            let mut inner = pool.inner.lock();
            match pool.find(env, STARTING) {
                None => false,
                Some(slot) => {
                    inner.starting -= 1;
                    if self.closed.load(Ordering::SeqCst) {
                        pool.free_slot(&mut inner, slot);
                        false
                    } else {
                        inner.breaker.on_success();
                        let s = &pool.slots[slot as usize];
                        let now_ms = self.now_ms();
                        s.addr.store(addr);
                        s.born_ms.store(now_ms, Ordering::Relaxed);
                        s.last_use_ms.store(now_ms, Ordering::Relaxed);
                        s.state.store(BUSY, Ordering::Release);
                        pool.give_back(&mut inner, slot, &mut fx);
                        true
                    }
                }
            }
        };
        self.apply(fx);
        kept
    }

    /// Registers an environment that is already running (a container kept by a previous esb and
    /// adopted at start) as idle, or straight to the oldest waiter. No `Start` is sent. `None`
    /// when the function is not managed, is at `max_capacity`, or the table is closed: the
    /// caller stops it.
    pub fn adopt(&self, f: FunctionId, addr: SocketAddr, now: Instant) -> Option<EnvId> {
        self.advance(now);
        let pool = self.pool(f)?;
        if !matches!(pool.spec.kind, PoolKind::Managed) || self.closed.load(Ordering::SeqCst) {
            return None;
        }
        let mut fx = Effects::default();
        let env = {
            let mut inner = pool.inner.lock();
            if inner.live >= pool.counts(&inner).max_capacity {
                return None;
            }
            let slot = inner.free.pop()?;
            let env = EnvId(self.next_env.fetch_add(1, Ordering::Relaxed));
            let now_ms = self.now_ms();
            let s = &pool.slots[slot as usize];
            s.env.store(env.0, Ordering::Relaxed);
            s.addr.store(addr);
            s.born_ms.store(now_ms, Ordering::Relaxed);
            s.last_use_ms.store(now_ms, Ordering::Relaxed);
            s.state.store(BUSY, Ordering::Release);
            inner.live += 1;
            pool.give_back(&mut inner, slot, &mut fx);
            env
        };
        self.apply(fx);
        Some(env)
    }

    /// The start of `env` failed. Fails one waiter that was counting on it with `reason`, feeds
    /// the breaker, and re-plans.
    pub fn start_failed(&self, f: FunctionId, env: EnvId, reason: &str, now: Instant) {
        self.advance(now);
        let Some(pool) = self.pool(f) else { return };
        let mut fx = Effects::default();
        {
            let mut inner = pool.inner.lock();
            let Some(slot) = pool.find(env, STARTING) else {
                return;
            };
            let covering = inner.queued >= inner.starting;
            inner.starting -= 1;
            pool.free_slot(&mut inner, slot);
            bump(&pool.counters.start_failures);
            if inner.breaker.on_failure(self.now_ms()) {
                bump(&pool.counters.circuit_opens);
            }
            if covering {
                pool.answer_front(
                    &mut inner,
                    Err(AcquireError::StartFailed {
                        reason: reason.into(),
                    }),
                    &mut fx,
                );
            }
            self.replan(pool, &mut inner, &mut fx);
        }
        self.apply(fx);
    }

    /// `env`'s process (or container) is gone. An idle one leaves the pool now; a busy one is
    /// marked so its lease's release removes it (its request fails on the broken connection).
    pub fn env_died(&self, f: FunctionId, env: EnvId, now: Instant) {
        self.advance(now);
        let Some(pool) = self.pool(f) else { return };
        let mut fx = Effects::default();
        {
            let mut inner = pool.inner.lock();
            let Some(slot) = pool.find_live(env) else {
                return;
            };
            let s = &pool.slots[slot as usize];
            bump(&pool.counters.crashes);
            if s.state.load(Ordering::Acquire) == STARTING {
                drop(inner);
                return self.start_failed(f, env, "the environment exited while starting", now);
            }
            s.dead.store(true, Ordering::SeqCst);
            // Idle (or being released right now): take it off the stack if it is there; if a
            // racing release pushes it after this sweep, the next pop or sweep frees it.
            if s.state.load(Ordering::SeqCst) == IDLE {
                pool.sweep_idle(&mut inner, |_, _| Vec::new(), &mut fx);
            }
            self.replan(pool, &mut inner, &mut fx);
        }
        self.apply(fx);
    }

    /// A stopped environment is gone for good (clears it from the "draining" list).
    pub fn env_stopped(&self, f: FunctionId, env: EnvId) {
        if let Some(pool) = self.pool(f) {
            pool.inner.lock().draining.retain(|d| d.env != env);
        }
    }

    /// Takes the environments idle past their function's `idle_timeout` out of the pool (never a
    /// busy one, never below `min_capacity`). The caller stops them and reports `env_stopped`.
    pub fn idle_to_reap(&self, now: Instant) -> Vec<(FunctionId, EnvId)> {
        self.advance(now);
        let now_ms = self.now_ms();
        let mut out = Vec::new();
        for pool in self.pools.iter() {
            if !matches!(pool.spec.kind, PoolKind::Managed) {
                continue;
            }
            let mut fx = Effects::default();
            {
                let mut inner = pool.inner.lock();
                let timeout = millis(pool.spec.idle_timeout);
                let min = pool.spec.min_capacity;
                let pick = |inner: &Inner, idle: &[IdleEnv]| {
                    decide::select_reaps(idle, inner.live, min, timeout, now_ms)
                };
                for slot in pool.sweep_idle(&mut inner, pick, &mut fx) {
                    let s = &pool.slots[slot as usize];
                    let env = EnvId(s.env.load(Ordering::Relaxed));
                    inner.draining.push(Draining {
                        env,
                        since_ms: now_ms,
                        born_ms: s.born_ms.load(Ordering::Relaxed),
                    });
                    pool.free_slot(&mut inner, slot);
                    bump(&pool.counters.reaps);
                    out.push((pool.id, env));
                }
            }
            self.apply(fx);
        }
        out
    }

    /// Stops serving: every waiter gets [`AcquireError::Closed`], new acquires too, and
    /// environments that become ready are refused. Leases out there can still be released.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        for pool in self.pools.iter() {
            let mut fx = Effects::default();
            {
                let mut inner = pool.inner.lock();
                while pool.answer_front(&mut inner, Err(AcquireError::Closed), &mut fx) {}
            }
            self.apply(fx);
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Every environment that currently exists or is starting, for a last sweep at shutdown.
    pub fn all_envs(&self) -> Vec<(FunctionId, EnvId)> {
        let mut out = Vec::new();
        for pool in self.pools.iter() {
            for s in pool.slots.iter() {
                if s.state.load(Ordering::Acquire) != FREE {
                    out.push((pool.id, EnvId(s.env.load(Ordering::Relaxed))));
                }
            }
        }
        out
    }

    /// A consistent-per-function picture for `/admin/pools`.
    pub fn snapshot(&self, now: Instant) -> PoolSnapshot {
        let now_ms = self.ms(now);
        let functions = self
            .pools
            .iter()
            .map(|pool| {
                let inner = pool.inner.lock();
                let mut environments = Vec::new();
                for s in pool.slots.iter() {
                    let state = match s.state.load(Ordering::Acquire) {
                        FREE => continue,
                        _ if s.dead.load(Ordering::Relaxed) => EnvState::Dead,
                        STARTING => EnvState::Starting,
                        IDLE => EnvState::Idle,
                        _ => EnvState::Busy,
                    };
                    let born = s.born_ms.load(Ordering::Relaxed);
                    let last = s.last_use_ms.load(Ordering::Relaxed);
                    environments.push(EnvSnapshot {
                        id: EnvId(s.env.load(Ordering::Relaxed)),
                        state,
                        addr: (state != EnvState::Starting).then(|| s.addr.load()),
                        age_ms: now_ms.saturating_sub(born),
                        idle_ms: (state == EnvState::Idle).then(|| now_ms.saturating_sub(last)),
                    });
                }
                for d in &inner.draining {
                    environments.push(EnvSnapshot {
                        id: d.env,
                        state: EnvState::Draining,
                        addr: None,
                        age_ms: now_ms.saturating_sub(d.born_ms),
                        idle_ms: Some(now_ms.saturating_sub(d.since_ms)),
                    });
                }
                environments.sort_by_key(|e| e.id);
                let c = &pool.counters;
                let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
                FunctionSnapshot {
                    name: pool.spec.name.to_string(),
                    kind: match pool.spec.kind {
                        PoolKind::Managed => "managed",
                        PoolKind::Static(_) => "static",
                    },
                    max_capacity: pool.spec.max_capacity,
                    min_capacity: pool.spec.min_capacity,
                    live: inner.live,
                    starting: inner.starting,
                    waiting: inner.queued,
                    breaker: match inner.breaker.state() {
                        decide::BreakerState::Closed { .. } => "closed",
                        decide::BreakerState::Open { .. } => "open",
                        decide::BreakerState::HalfOpen { .. } => "half_open",
                    },
                    environments,
                    counters: CountersSnapshot {
                        cold_starts: get(&c.cold_starts),
                        start_failures: get(&c.start_failures),
                        reaps: get(&c.reaps),
                        rejections: get(&c.rejections),
                        crashes: get(&c.crashes),
                        destroyed: get(&c.destroyed),
                        circuit_opens: get(&c.circuit_opens),
                        waits: get(&c.waits),
                    },
                }
            })
            .collect();
        PoolSnapshot { functions }
    }

    // ------------------------------------------------------------------ shared helpers

    /// Sends `n` start commands for `pool`, taking `n` free slots.
    fn start(&self, pool: &FnPool, inner: &mut Inner, n: u32, prewarm: bool, fx: &mut Effects) {
        if n == 0 || !matches!(pool.spec.kind, PoolKind::Managed) {
            return;
        }
        let now_ms = self.now_ms();
        for _ in 0..n {
            let Some(slot) = inner.free.pop() else { break };
            let env = EnvId(self.next_env.fetch_add(1, Ordering::Relaxed));
            let s = &pool.slots[slot as usize];
            s.env.store(env.0, Ordering::Relaxed);
            s.born_ms.store(now_ms, Ordering::Relaxed);
            s.last_use_ms.store(now_ms, Ordering::Relaxed);
            s.state.store(STARTING, Ordering::Release);
            inner.live += 1;
            inner.starting += 1;
            bump(&pool.counters.cold_starts);
            fx.send.push(ControlCommand::Start {
                function: pool.id,
                env,
                prewarm,
            });
        }
        inner.breaker.started(n);
    }

    fn replan(&self, pool: &FnPool, inner: &mut Inner, fx: &mut Effects) {
        if !matches!(pool.spec.kind, PoolKind::Managed) || self.closed.load(Ordering::SeqCst) {
            return;
        }
        let permit = pool.permit(inner, self.now_ms());
        let plan = decide::replan(pool.counts(inner), permit);
        self.start(pool, inner, plan.start, false, fx);
        if plan.fail_newest > 0 {
            let retry_after_ms = match permit {
                StartPermit::Denied { retry_after_ms } => retry_after_ms,
                _ => 0,
            };
            pool.fail_newest(inner, plan.fail_newest, circuit_open(retry_after_ms), fx);
        }
    }

    fn apply(&self, fx: Effects) {
        for cmd in fx.send {
            // The control plane is gone: nothing will ever start, so stop admitting.
            if let Err(ControlCommand::Start { function, env, .. }) = self.control.send(cmd) {
                self.closed.store(true, Ordering::SeqCst);
                let now = self.epoch + Duration::from_millis(self.now_ms());
                self.start_failed(function, env, "the control plane has stopped", now);
                self.close();
            }
        }
        for w in fx.wake {
            w.wake();
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn circuit_open(retry_after_ms: u64) -> AcquireError {
    AcquireError::CircuitOpen {
        retry_after: Duration::from_millis(retry_after_ms.max(1000)),
    }
}

enum Warm {
    Got(u32),
    Empty,
    Dead(u32),
}

impl FnPool {
    fn link<'a>(&'a self) -> impl Fn(u32) -> &'a AtomicU32 + Copy + 'a {
        |i| &self.slots[i as usize].next
    }

    fn push_idle(&self, slot: u32) {
        self.hot.idle.push(slot, self.link());
    }

    /// The lock-free warm acquire.
    fn pop_warm(&self) -> Warm {
        if self.hot.waiting.load(Ordering::SeqCst) != 0 {
            return Warm::Empty;
        }
        match self.hot.idle.pop(self.link()) {
            None => Warm::Empty,
            Some(slot) => {
                let s = &self.slots[slot as usize];
                if s.dead.load(Ordering::Acquire) {
                    Warm::Dead(slot)
                } else {
                    s.state.store(BUSY, Ordering::Relaxed);
                    Warm::Got(slot)
                }
            }
        }
    }

    /// Pop under the lock, freeing dead slots met on the way.
    fn pop_locked(&self, inner: &mut Inner) -> Option<u32> {
        loop {
            let slot = self.hot.idle.pop(self.link())?;
            let s = &self.slots[slot as usize];
            if !s.dead.load(Ordering::Acquire) {
                s.state.store(BUSY, Ordering::Relaxed);
                return Some(slot);
            }
            self.free_slot(inner, slot);
        }
    }

    fn free_slot(&self, inner: &mut Inner, slot: u32) {
        let s = &self.slots[slot as usize];
        if s.state.swap(FREE, Ordering::AcqRel) != FREE {
            s.dead.store(false, Ordering::Relaxed);
            inner.free.push(slot);
            inner.live -= 1;
        }
    }

    fn counts(&self, inner: &Inner) -> Counts {
        Counts {
            queued: inner.queued,
            starting: inner.starting,
            live: inner.live,
            max_capacity: self.spec.max_capacity.min(self.slots.len() as u32),
        }
    }

    fn permit(&self, inner: &mut Inner, now_ms: u64) -> StartPermit {
        inner.breaker.permit(now_ms)
    }

    fn at_capacity(&self) -> AcquireError {
        AcquireError::AtCapacity {
            status: self.spec.reject_status,
            retry_after: AT_CAPACITY_RETRY,
        }
    }

    fn sync_waiting(&self, inner: &Inner) {
        self.hot.waiting.store(inner.queued, Ordering::SeqCst);
    }

    /// Hands idle slots to waiters, oldest first, while both exist.
    fn dispatch_idle(&self, inner: &mut Inner, fx: &mut Effects) {
        while inner.queued > 0 {
            let Some(slot) = self.pop_locked(inner) else {
                return;
            };
            self.give_back(inner, slot, fx);
        }
    }

    /// A BUSY slot the caller owns: to the oldest waiter, else idle.
    fn give_back(&self, inner: &mut Inner, slot: u32, fx: &mut Effects) {
        let s = &self.slots[slot as usize];
        let grant = Grant {
            slot,
            env: EnvId(s.env.load(Ordering::Relaxed)),
            addr: s.addr.load(),
        };
        if !self.answer_front(inner, Ok(grant), fx) {
            s.state.store(IDLE, Ordering::Release);
            self.push_idle(slot);
        }
    }

    /// Answers the oldest unanswered waiter; false if there is none.
    fn answer_front(
        &self,
        inner: &mut Inner,
        answer: Result<Grant, AcquireError>,
        fx: &mut Effects,
    ) -> bool {
        while let Some(ticket) = inner.queue.pop_front() {
            if let Some(w) = inner.waiters.get_mut(&ticket)
                && w.answer.is_none()
            {
                w.answer = Some(answer);
                fx.wake.extend(w.waker.take());
                inner.queued -= 1;
                self.sync_waiting(inner);
                return true;
            }
        }
        false
    }

    /// Fails the `n` newest unanswered waiters with `err`.
    fn fail_newest(&self, inner: &mut Inner, n: u32, err: AcquireError, fx: &mut Effects) {
        let mut left = n;
        while left > 0 {
            let Some(ticket) = inner.queue.pop_back() else {
                break;
            };
            if let Some(w) = inner.waiters.get_mut(&ticket)
                && w.answer.is_none()
            {
                w.answer = Some(Err(err.clone()));
                fx.wake.extend(w.waker.take());
                inner.queued -= 1;
                left -= 1;
            }
        }
        self.sync_waiting(inner);
    }

    fn take_answer(&self, inner: &mut Inner, ticket: u64) -> Option<Result<Grant, AcquireError>> {
        let w = inner.waiters.get_mut(&ticket)?;
        let answer = w.answer.take()?;
        inner.waiters.remove(&ticket);
        Some(answer)
    }

    /// Cancelled tickets stay in `queue` until they reach the front; keep it from growing when
    /// many give up behind a long wait.
    fn compact_queue(&self, inner: &mut Inner) {
        if inner.queue.len() > 2 * inner.queued as usize + 32 {
            let Inner { queue, waiters, .. } = inner;
            queue.retain(|t| waiters.get(t).is_some_and(|w| w.answer.is_none()));
        }
    }

    /// Takes every idle slot off the stack, frees the dead ones, lets `pick` choose some of the
    /// rest (returned, still IDLE, off the stack), and pushes the others back in their order.
    fn sweep_idle(
        &self,
        inner: &mut Inner,
        pick: impl FnOnce(&Inner, &[IdleEnv]) -> Vec<u32>,
        fx: &mut Effects,
    ) -> Vec<u32> {
        let drained = self.hot.idle.drain(self.link());
        let mut idle = Vec::with_capacity(drained.len());
        for &slot in &drained {
            let s = &self.slots[slot as usize];
            if s.dead.load(Ordering::Acquire) {
                self.free_slot(inner, slot);
            } else {
                idle.push(IdleEnv {
                    key: slot,
                    last_use_ms: s.last_use_ms.load(Ordering::Relaxed),
                });
            }
        }
        let picked = pick(inner, &idle);
        // Bottom first, so the stack keeps its most-recently-used-on-top order.
        for e in idle.iter().rev() {
            if !picked.contains(&e.key) {
                self.push_idle(e.key);
            }
        }
        // Waiters may have queued while the stack looked empty.
        self.dispatch_idle(inner, fx);
        picked
    }

    /// The slot of `env` if it is in `state`.
    fn find(&self, env: EnvId, state: u8) -> Option<u32> {
        self.slots
            .iter()
            .position(|s| {
                s.env.load(Ordering::Relaxed) == env.0 && s.state.load(Ordering::Acquire) == state
            })
            .map(|i| i as u32)
    }

    fn find_live(&self, env: EnvId) -> Option<u32> {
        self.slots
            .iter()
            .position(|s| {
                s.env.load(Ordering::Relaxed) == env.0 && s.state.load(Ordering::Acquire) != FREE
            })
            .map(|i| i as u32)
    }
}

/// The future of [`PoolTable::acquire`].
pub struct Acquire<'t> {
    table: &'t PoolTable,
    function: FunctionId,
    ticket: Option<u64>,
    done: bool,
}

impl<'t> Future for Acquire<'t> {
    type Output = Result<Lease<'t>, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let table = this.table;
        if this.done {
            panic!("Acquire polled after completion");
        }
        if let Some(ticket) = this.ticket {
            return match table.poll_ticket(this.function, ticket, cx.waker()) {
                Some(out) => {
                    this.ticket = None;
                    this.done = true;
                    Poll::Ready(out)
                }
                None => Poll::Pending,
            };
        }
        let Some(pool) = table.pool(this.function) else {
            this.done = true;
            return Poll::Ready(Err(AcquireError::UnknownFunction));
        };
        // Read-mostly flag on its own line: costs a load, saves handing out a stopped environment.
        let warm = if table.is_closed() {
            Warm::Empty
        } else {
            pool.pop_warm()
        };
        let dead = match warm {
            Warm::Got(slot) => {
                this.done = true;
                return Poll::Ready(Ok(table.lease(pool, slot)));
            }
            Warm::Empty => None,
            Warm::Dead(slot) => Some(slot),
        };
        match table.enqueue(pool, dead, cx.waker()) {
            Ok(out) => {
                this.done = true;
                Poll::Ready(out)
            }
            Err(ticket) => {
                this.ticket = Some(ticket);
                Poll::Pending
            }
        }
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.table.cancel(self.function, ticket);
        }
    }
}

/// The right to send one invocation to one environment. Give it back with [`Lease::release`];
/// dropping it unreleased destroys the environment, since its state is then unknown.
#[must_use = "release the lease, or the environment is destroyed"]
pub struct Lease<'t> {
    table: &'t PoolTable,
    function: FunctionId,
    env: EnvId,
    addr: SocketAddr,
    slot: u32,
    armed: bool,
}

impl Lease<'_> {
    pub fn function(&self) -> FunctionId {
        self.function
    }

    pub fn env(&self) -> EnvId {
        self.env
    }

    /// The environment's RIE invoke endpoint.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn release(mut self, outcome: Outcome) {
        self.armed = false;
        self.table.finish(self.function, self.slot, outcome);
    }
}

impl std::fmt::Debug for Lease<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("function", &self.function)
            .field("env", &self.env)
            .field("addr", &self.addr)
            .finish()
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.table.finish(
                self.function,
                self.slot,
                Outcome::Destroy(StopReason::Abandoned),
            );
        }
    }
}
