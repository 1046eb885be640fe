//! Tests of the table: the acquire/release protocol driven by hand (one thread, explicit time,
//! the control plane played by the test), then multi-threaded races with a tiny executor.

use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use super::*;

// ---------------------------------------------------------------------- harness

/// A waker that counts its wakes (single-threaded tests).
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counter() -> (Arc<Count>, Waker) {
    let c = Arc::new(Count(AtomicUsize::new(0)));
    (c.clone(), Waker::from(c))
}

fn poll<F: Future + Unpin>(f: &mut F, w: &Waker) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(w))
}

/// Unparks a thread (multi-threaded tests).
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `fut` on this thread until it completes, or until `limit` passes (then drops it, the way
/// a data-plane timer does) and returns None.
fn block_on<F: Future>(fut: F, limit: Duration) -> Option<F::Output> {
    let deadline = Instant::now() + limit;
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Some(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        thread::park_timeout(deadline - now);
    }
}

struct Harness {
    table: Arc<PoolTable>,
    rx: RefCell<ControlReceiver>,
    t0: Instant,
}

impl Harness {
    fn new(specs: Vec<PoolSpec>) -> Self {
        let (tx, rx) = control_channel();
        let t0 = Instant::now();
        Self {
            table: PoolTable::new(specs, tx, t0),
            rx: RefCell::new(rx),
            t0,
        }
    }

    fn one(spec: PoolSpec) -> Self {
        Self::new(vec![spec])
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn commands(&self) -> Vec<ControlCommand> {
        let mut out = Vec::new();
        while let Ok(c) = self.rx.borrow_mut().try_recv() {
            out.push(c);
        }
        out
    }

    /// The envs of the Start commands sent since the last call (panics on anything else).
    fn starts(&self) -> Vec<EnvId> {
        self.starts_of(self.commands())
    }

    fn starts_of(&self, cmds: Vec<ControlCommand>) -> Vec<EnvId> {
        cmds.into_iter()
            .map(|c| match c {
                ControlCommand::Start { env, .. } => env,
                other => panic!("expected Start, got {other:?}"),
            })
            .collect()
    }

    fn f(&self) -> FunctionId {
        FunctionId(0)
    }

    fn fn_snapshot(&self) -> FunctionSnapshot {
        self.table
            .snapshot(self.t0)
            .functions
            .into_iter()
            .next()
            .unwrap()
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn spec(max: u32) -> PoolSpec {
    PoolSpec::managed("fn", max)
}

fn ready(h: &Harness, env: EnvId, port: u16) {
    assert!(h.table.env_ready(h.f(), env, addr(port), h.t0));
}

/// Warms `n` environments (ports 9000..) and leaves them idle.
fn warm(h: &Harness, n: u32) -> Vec<EnvId> {
    let (_, w) = counter();
    let mut futs: Vec<_> = (0..n).map(|_| h.table.acquire(h.f())).collect();
    for f in &mut futs {
        assert!(poll(f, &w).is_pending());
    }
    let envs = h.starts();
    assert_eq!(envs.len(), n as usize);
    for (i, e) in envs.iter().enumerate() {
        ready(h, *e, 9000 + i as u16);
    }
    for f in &mut futs {
        match poll(f, &w) {
            Poll::Ready(Ok(lease)) => lease.release(Outcome::Reuse),
            other => panic!("{other:?}"),
        }
    }
    envs
}

fn expect_lease<'t>(p: Poll<Result<Lease<'t>, AcquireError>>) -> Lease<'t> {
    match p {
        Poll::Ready(Ok(l)) => l,
        other => panic!("expected a lease, got {other:?}"),
    }
}

fn expect_err(p: Poll<Result<Lease<'_>, AcquireError>>) -> AcquireError {
    match p {
        Poll::Ready(Err(e)) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------- protocol

#[test]
fn cold_start_then_warm_reuse() {
    let h = Harness::one(spec(2));
    let (wakes, w) = counter();
    let mut a = h.table.acquire(h.f());
    assert!(poll(&mut a, &w).is_pending());
    let envs = h.starts();
    assert_eq!(envs.len(), 1);
    ready(&h, envs[0], 9000);
    assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
    let lease = expect_lease(poll(&mut a, &w));
    assert_eq!((lease.env(), lease.addr()), (envs[0], addr(9000)));
    lease.release(Outcome::Reuse);

    // Warm: no command, same environment, at once.
    let lease = expect_lease(poll(&mut h.table.acquire(h.f()), &w));
    assert_eq!(lease.env(), envs[0]);
    assert!(h.commands().is_empty());
    drop(a);
    lease.release(Outcome::Reuse);
    let s = h.fn_snapshot();
    assert_eq!((s.live, s.starting, s.waiting), (1, 0, 0));
    assert_eq!(s.counters.cold_starts, 1);
    assert_eq!(s.environments[0].state, EnvState::Idle);
}

#[test]
fn try_acquire_never_starts() {
    let h = Harness::one(spec(2));
    assert!(h.table.try_acquire(h.f()).is_none());
    assert!(h.commands().is_empty());
    warm(&h, 1);
    let l = h.table.try_acquire(h.f()).expect("warm");
    assert!(h.table.try_acquire(h.f()).is_none());
    l.release(Outcome::Reuse);
}

#[test]
fn concurrent_cold_starts_are_coalesced_and_capped() {
    let h = Harness::one(spec(2));
    let (_, w) = counter();
    let mut futs: Vec<_> = (0..5).map(|_| h.table.acquire(h.f())).collect();
    for f in &mut futs {
        assert!(poll(f, &w).is_pending());
    }
    let envs = h.starts();
    assert_eq!(envs.len(), 2, "capacity 2: two starts for five waiters");
    assert_eq!(h.fn_snapshot().waiting, 5);

    // The oldest two get the two environments, in order.
    ready(&h, envs[1], 9001);
    ready(&h, envs[0], 9000);
    let first = expect_lease(poll(&mut futs[0], &w));
    let second = expect_lease(poll(&mut futs[1], &w));
    assert_eq!(first.env(), envs[1]);
    assert_eq!(second.env(), envs[0]);
    for f in &mut futs[2..] {
        assert!(poll(f, &w).is_pending());
    }
    // A release goes straight to the next waiter (FIFO), never via idle.
    second.release(Outcome::Reuse);
    assert!(poll(&mut futs[3], &w).is_pending());
    let third = expect_lease(poll(&mut futs[2], &w));
    assert_eq!(third.env(), envs[0]);
    assert!(h.commands().is_empty(), "no start beyond capacity");
    third.release(Outcome::Reuse);
    first.release(Outcome::Reuse);
}

#[test]
fn each_waiter_gets_one_start_while_below_capacity() {
    let h = Harness::one(spec(20));
    let (_, w) = counter();
    let mut futs: Vec<_> = (0..20).map(|_| h.table.acquire(h.f())).collect();
    for f in &mut futs {
        assert!(poll(f, &w).is_pending());
    }
    let envs = h.starts();
    assert_eq!(envs.len(), 20);
    // One ready environment serves one waiter; when it comes back, the waiter it would have
    // served already has its own start in flight, so nothing more is started.
    ready(&h, envs[0], 9000);
    let lease = expect_lease(poll(&mut futs[0], &w));
    lease.release(Outcome::Reuse);
    assert!(h.commands().is_empty());
    assert_eq!(expect_lease(poll(&mut futs[1], &w)).env(), envs[0]);
}

#[test]
fn no_wait_rejects_the_surplus_at_once_with_the_chosen_status() {
    for status in [503, 429] {
        let h = Harness::one(PoolSpec {
            acquire_timeout: Duration::ZERO,
            reject_status: status,
            ..spec(2)
        });
        let (_, w) = counter();
        let mut futs: Vec<_> = (0..5).map(|_| h.table.acquire(h.f())).collect();
        assert!(poll(&mut futs[0], &w).is_pending());
        assert!(poll(&mut futs[1], &w).is_pending());
        for f in &mut futs[2..] {
            let e = expect_err(poll(f, &w));
            assert_eq!(e.status(), status);
            assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
        }
        assert_eq!(h.starts().len(), 2);
        assert_eq!(h.fn_snapshot().counters.rejections, 3);
        // The waits it does allow are bounded by the start deadline.
        assert_eq!(h.table.wait_limit(h.f()), DEFAULT_START_TIMEOUT);
    }
}

#[test]
fn timed_out_counts_and_answers_at_capacity() {
    let h = Harness::one(PoolSpec {
        reject_status: 429,
        ..spec(1)
    });
    assert_eq!(h.table.wait_limit(h.f()), Duration::from_secs(30));
    assert_eq!(
        h.table.timed_out(h.f()),
        AcquireError::AtCapacity {
            status: 429,
            retry_after: Duration::from_secs(1)
        }
    );
    assert_eq!(h.fn_snapshot().counters.rejections, 1);
    assert_eq!(
        h.table.timed_out(FunctionId(7)),
        AcquireError::UnknownFunction
    );
}

#[test]
fn dropped_waiter_leaves_the_queue_and_its_start_goes_idle() {
    let h = Harness::one(spec(1));
    let (_, w) = counter();
    let mut a = h.table.acquire(h.f());
    assert!(poll(&mut a, &w).is_pending());
    let envs = h.starts();
    drop(a);
    assert_eq!(h.fn_snapshot().waiting, 0);
    ready(&h, envs[0], 9000);
    let s = h.fn_snapshot();
    assert_eq!(s.environments[0].state, EnvState::Idle);
    assert_eq!(
        expect_lease(poll(&mut h.table.acquire(h.f()), &w)).env(),
        envs[0]
    );
}

#[test]
fn environment_handed_to_a_waiter_that_left_goes_to_the_next() {
    let h = Harness::one(spec(1));
    let (_, w) = counter();
    let mut a = h.table.acquire(h.f());
    let mut b = h.table.acquire(h.f());
    assert!(poll(&mut a, &w).is_pending());
    assert!(poll(&mut b, &w).is_pending());
    let envs = h.starts();
    assert_eq!(envs.len(), 1);
    ready(&h, envs[0], 9000); // granted to `a`, which is never polled again
    drop(a);
    let b = expect_lease(poll(&mut b, &w));
    assert_eq!(b.env(), envs[0]);
    // Granted to `c`, which leaves: with nobody else waiting, back to idle.
    let mut c = h.table.acquire(h.f());
    assert!(poll(&mut c, &w).is_pending());
    b.release(Outcome::Reuse);
    drop(c);
    let s = h.fn_snapshot();
    assert_eq!((s.live, s.waiting), (1, 0));
    assert_eq!(s.environments[0].state, EnvState::Idle);
    assert!(h.commands().is_empty());
}

#[test]
fn many_cancelled_waiters_do_not_grow_the_queue() {
    let h = Harness::one(spec(1));
    warm(&h, 1);
    let (_, w) = counter();
    let held = expect_lease(poll(&mut h.table.acquire(h.f()), &w));
    for _ in 0..1000 {
        let mut a = h.table.acquire(h.f());
        assert!(poll(&mut a, &w).is_pending());
    }
    let inner = h.table.pools[0].inner.lock();
    assert!(inner.queue.len() <= 40, "{}", inner.queue.len());
    assert!(inner.waiters.is_empty());
    drop(inner);
    held.release(Outcome::Reuse);
}

#[test]
fn timeout_destroys_and_the_next_request_cold_starts() {
    let h = Harness::one(spec(2));
    let envs = warm(&h, 1);
    let (_, w) = counter();
    let lease = expect_lease(poll(&mut h.table.acquire(h.f()), &w));
    lease.release(Outcome::Destroy(StopReason::Timeout));
    assert_eq!(
        h.commands(),
        vec![ControlCommand::Stop {
            function: h.f(),
            env: envs[0],
            reason: StopReason::Timeout
        }]
    );
    let s = h.fn_snapshot();
    assert_eq!((s.live, s.counters.destroyed), (0, 1));
    assert_eq!(s.environments[0].state, EnvState::Draining);
    h.table.env_stopped(h.f(), envs[0]);
    assert!(h.fn_snapshot().environments.is_empty());

    let mut a = h.table.acquire(h.f());
    assert!(poll(&mut a, &w).is_pending());
    let fresh = h.starts();
    assert_eq!(fresh.len(), 1);
    assert_ne!(fresh[0], envs[0]);
}

#[test]
fn dropped_lease_is_destroyed_and_waiters_get_a_replacement() {
    let h = Harness::one(spec(1));
    let envs = warm(&h, 1);
    let (_, w) = counter();
    let lease = expect_lease(poll(&mut h.table.acquire(h.f()), &w));
    let mut waiting = h.table.acquire(h.f());
    assert!(poll(&mut waiting, &w).is_pending());
    assert!(h.commands().is_empty(), "at capacity: nothing to start yet");
    drop(lease);
    let cmds = h.commands();
    assert_eq!(
        cmds[0],
        ControlCommand::Stop {
            function: h.f(),
            env: envs[0],
            reason: StopReason::Abandoned
        }
    );
    let ControlCommand::Start {
        env,
        prewarm: false,
        ..
    } = cmds[1]
    else {
        panic!("{cmds:?}")
    };
    ready(&h, env, 9005);
    assert_eq!(expect_lease(poll(&mut waiting, &w)).addr(), addr(9005));
}

#[test]
fn failed_start_fails_its_waiter_and_the_breaker_opens_then_half_opens() {
    let h = Harness::one(PoolSpec {
        breaker: BreakerSpec {
            failure_threshold: 2,
            cooldown: Duration::from_secs(10),
        },
        ..spec(3)
    });
    let (_, w) = counter();
    let f = h.f();
    for i in 0..2 {
        let mut a = h.table.acquire(f);
        assert!(poll(&mut a, &w).is_pending());
        let env = h.starts()[0];
        h.table.start_failed(f, env, "exec: no such file", h.at(i));
        let e = expect_err(poll(&mut a, &w));
        assert_eq!(e.status(), 502);
        assert!(
            matches!(e, AcquireError::StartFailed { ref reason } if &**reason == "exec: no such file")
        );
    }
    // Open: fail fast, nothing started.
    h.table.tick(h.at(1000));
    let e = expect_err(poll(&mut h.table.acquire(f), &w));
    assert_eq!(
        e,
        AcquireError::CircuitOpen {
            retry_after: Duration::from_millis(9001)
        }
    );
    assert!(h.commands().is_empty());
    // After the cool-down: exactly one trial, even for several waiters.
    h.table.tick(h.at(11_000));
    let mut a = h.table.acquire(f);
    let mut b = h.table.acquire(f);
    assert!(poll(&mut a, &w).is_pending());
    assert!(poll(&mut b, &w).is_pending());
    let trial = h.starts();
    assert_eq!(trial.len(), 1);
    h.table.env_ready(f, trial[0], addr(9000), h.at(11_500));
    let l = expect_lease(poll(&mut a, &w));
    // Closed again: the second waiter gets its own start.
    h.table.tick(h.at(11_600));
    assert_eq!(h.starts().len(), 1);
    l.release(Outcome::Reuse);
    expect_lease(poll(&mut b, &w)).release(Outcome::Reuse);
    let s = h.fn_snapshot();
    assert_eq!(
        (
            s.breaker,
            s.counters.start_failures,
            s.counters.circuit_opens
        ),
        ("closed", 2, 1)
    );
}

#[test]
fn open_breaker_fails_waiters_only_when_nothing_can_serve_them() {
    let h = Harness::one(PoolSpec {
        breaker: BreakerSpec {
            failure_threshold: 1,
            cooldown: Duration::from_secs(10),
        },
        ..spec(3)
    });
    let (_, w) = counter();
    let f = h.f();
    let mut a = h.table.acquire(f);
    let mut b = h.table.acquire(f);
    assert!(poll(&mut a, &w).is_pending());
    assert!(poll(&mut b, &w).is_pending());
    let envs = h.starts();
    assert_eq!(envs.len(), 2);
    h.table.start_failed(f, envs[0], "boom", h.at(5));
    // `a` got the failure; `b` is still covered by the other start.
    assert!(matches!(
        expect_err(poll(&mut a, &w)),
        AcquireError::StartFailed { .. }
    ));
    assert!(poll(&mut b, &w).is_pending());
    h.table.start_failed(f, envs[1], "boom", h.at(6));
    assert!(matches!(
        expect_err(poll(&mut b, &w)),
        AcquireError::StartFailed { .. }
    ));
    // A third waiter behind a busy environment is not failed by the open circuit.
    let mut c = h.table.acquire(f);
    assert!(matches!(
        expect_err(poll(&mut c, &w)),
        AcquireError::CircuitOpen { .. }
    ));
}

#[test]
fn idle_environment_that_dies_leaves_the_pool() {
    let h = Harness::one(spec(2));
    let envs = warm(&h, 2);
    h.table.env_died(h.f(), envs[1], h.at(10));
    let s = h.fn_snapshot();
    assert_eq!((s.live, s.counters.crashes), (1, 1));
    let (_, w) = counter();
    let a = expect_lease(poll(&mut h.table.acquire(h.f()), &w));
    assert_eq!(a.env(), envs[0]);
    let mut b = h.table.acquire(h.f());
    assert!(poll(&mut b, &w).is_pending());
    assert_eq!(
        h.starts().len(),
        1,
        "a fresh environment replaces the dead one"
    );
    drop(b);
    a.release(Outcome::Reuse);
}

#[test]
fn busy_environment_that_dies_is_not_reused() {
    let h = Harness::one(spec(1));
    let envs = warm(&h, 1);
    let (_, w) = counter();
    let lease = expect_lease(poll(&mut h.table.acquire(h.f()), &w));
    h.table.env_died(h.f(), envs[0], h.at(10));
    assert_eq!(h.fn_snapshot().environments[0].state, EnvState::Dead);
    // The data plane did not notice (say the response had already arrived): still not reused.
    lease.release(Outcome::Reuse);
    assert!(
        h.commands().is_empty(),
        "no Stop for a process that is gone"
    );
    let mut a = h.table.acquire(h.f());
    assert!(poll(&mut a, &w).is_pending());
    let fresh = h.starts();
    assert_eq!(fresh.len(), 1);
    ready(&h, fresh[0], 9001);
    assert_eq!(expect_lease(poll(&mut a, &w)).addr(), addr(9001));
}

#[test]
fn busy_environment_that_dies_with_waiters_is_replaced() {
    let h = Harness::one(spec(1));
    let envs = warm(&h, 1);
    let (_, w) = counter();
    let lease = expect_lease(poll(&mut h.table.acquire(h.f()), &w));
    let mut waiting = h.table.acquire(h.f());
    assert!(poll(&mut waiting, &w).is_pending());
    h.table.env_died(h.f(), envs[0], h.at(10));
    lease.release(Outcome::Destroy(StopReason::Faulty));
    let starts = h.starts();
    assert_eq!(starts.len(), 1);
    ready(&h, starts[0], 9009);
    assert_eq!(expect_lease(poll(&mut waiting, &w)).addr(), addr(9009));
}

#[test]
fn death_while_starting_is_a_failed_start() {
    let h = Harness::one(spec(1));
    let (_, w) = counter();
    let mut a = h.table.acquire(h.f());
    assert!(poll(&mut a, &w).is_pending());
    let env = h.starts()[0];
    h.table.env_died(h.f(), env, h.at(1));
    assert!(matches!(
        expect_err(poll(&mut a, &w)),
        AcquireError::StartFailed { .. }
    ));
    assert_eq!(h.fn_snapshot().live, 0);
}

#[test]
fn reaper_takes_expired_idle_environments_above_min_capacity_and_never_busy_ones() {
    let h = Harness::one(PoolSpec {
        idle_timeout: Duration::from_secs(2),
        min_capacity: 1,
        ..spec(4)
    });
    let f = h.f();
    let envs = warm(&h, 3); // last used at t=0
    let (_, w) = counter();
    let busy = expect_lease(poll(&mut h.table.acquire(f), &w));
    assert_eq!(busy.env(), envs[2], "most recently used first");
    assert!(h.table.idle_to_reap(h.at(1999)).is_empty());
    let mut reaped = h.table.idle_to_reap(h.at(5000));
    reaped.sort();
    // live 3 (one busy), min 1: both idle ones go; the busy one stays.
    assert_eq!(reaped, vec![(f, envs[0]), (f, envs[1])]);
    let s = h.fn_snapshot();
    assert_eq!((s.live, s.counters.reaps), (1, 2));
    assert!(h.commands().is_empty(), "the reaper's caller stops them");
    // The busy one, released now, is not expired; later it is kept by min_capacity.
    h.table.tick(h.at(6000));
    busy.release(Outcome::Reuse);
    assert!(h.table.idle_to_reap(h.at(60_000)).is_empty());
}

#[test]
fn reaper_keeps_recently_used_ones() {
    let h = Harness::one(PoolSpec {
        idle_timeout: Duration::from_secs(2),
        ..spec(2)
    });
    let f = h.f();
    let envs = warm(&h, 2);
    h.table.tick(h.at(1500));
    let (_, w) = counter();
    expect_lease(poll(&mut h.table.acquire(f), &w)).release(Outcome::Reuse);
    assert_eq!(h.table.idle_to_reap(h.at(2500)), vec![(f, envs[0])]);
    assert_eq!(h.table.idle_to_reap(h.at(3500)), vec![(f, envs[1])]);
    assert_eq!(h.fn_snapshot().live, 0);
}

#[test]
fn tick_prewarms_min_capacity_once() {
    let h = Harness::one(PoolSpec {
        min_capacity: 2,
        ..spec(4)
    });
    h.table.tick(h.at(0));
    let cmds = h.commands();
    assert!(
        cmds.iter()
            .all(|c| matches!(c, ControlCommand::Start { prewarm: true, .. }))
    );
    let envs = h.starts_of(cmds);
    assert_eq!(envs.len(), 2);
    h.table.tick(h.at(100));
    assert!(h.commands().is_empty(), "starting ones count");
    for (i, e) in envs.iter().enumerate() {
        ready(&h, *e, 9000 + i as u16);
    }
    h.table.tick(h.at(200));
    assert!(h.commands().is_empty());
    // A crash below min_capacity is made good at the next tick.
    h.table.env_died(h.f(), envs[0], h.at(300));
    h.table.tick(h.at(400));
    assert_eq!(h.starts().len(), 1);
}

#[test]
fn static_endpoints_are_leased_one_at_a_time_and_never_started() {
    let h = Harness::one(PoolSpec {
        kind: PoolKind::Static(vec![addr(7000)]),
        ..spec(1)
    });
    let f = h.f();
    let (_, w) = counter();
    let a = expect_lease(poll(&mut h.table.acquire(f), &w));
    assert_eq!(a.addr(), addr(7000));
    let mut b = h.table.acquire(f);
    assert!(poll(&mut b, &w).is_pending());
    // A static endpoint cannot be replaced: even "destroy" hands it on.
    a.release(Outcome::Destroy(StopReason::Timeout));
    let b = expect_lease(poll(&mut b, &w));
    assert_eq!(b.addr(), addr(7000));
    drop(b);
    h.table.tick(h.at(10_000_000));
    assert!(h.table.idle_to_reap(h.at(10_000_000)).is_empty());
    assert!(h.commands().is_empty());
    let s = h.fn_snapshot();
    assert_eq!(
        (s.kind, s.live, s.environments[0].state),
        ("static", 1, EnvState::Idle)
    );
}

#[test]
fn close_fails_waiters_and_refuses_late_environments() {
    let h = Harness::one(spec(1));
    let (_, w) = counter();
    let mut a = h.table.acquire(h.f());
    assert!(poll(&mut a, &w).is_pending());
    let env = h.starts()[0];
    h.table.close();
    assert_eq!(expect_err(poll(&mut a, &w)), AcquireError::Closed);
    assert!(!h.table.env_ready(h.f(), env, addr(9000), h.t0));
    assert_eq!(
        expect_err(poll(&mut h.table.acquire(h.f()), &w)),
        AcquireError::Closed
    );
    assert_eq!(h.fn_snapshot().live, 0);
}

#[test]
fn a_closed_table_hands_out_no_warm_environment_and_takes_none_back() {
    let h = Harness::one(spec(2));
    let envs = warm(&h, 2);
    let (_, w) = counter();
    let held = expect_lease(poll(&mut h.table.acquire(h.f()), &w));
    h.table.close();
    assert_eq!(
        expect_err(poll(&mut h.table.acquire(h.f()), &w)),
        AcquireError::Closed
    );
    assert!(h.table.try_acquire(h.f()).is_none());
    held.release(Outcome::Reuse);
    assert_eq!(
        h.commands(),
        vec![ControlCommand::Stop {
            function: h.f(),
            env: envs[1],
            reason: StopReason::Unwanted
        }]
    );
}

#[test]
fn a_stopped_control_plane_fails_requests_instead_of_hanging_them() {
    let h = Harness::one(spec(1));
    let f = h.f();
    let Harness { table, rx, .. } = h;
    drop(rx.into_inner());
    let (wakes, w) = counter();
    let mut a = table.acquire(f);
    assert!(poll(&mut a, &w).is_pending());
    assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
    let e = expect_err(poll(&mut a, &w));
    assert!(
        matches!(e, AcquireError::StartFailed { .. } | AcquireError::Closed),
        "{e:?}"
    );
    assert!(table.is_closed());
}

#[test]
fn unknown_function_and_lookup_by_name() {
    let h = Harness::new(vec![spec(1), PoolSpec::managed("other", 1)]);
    assert_eq!(h.table.function_id("other"), Some(FunctionId(1)));
    assert_eq!(h.table.function_id("nope"), None);
    let (_, w) = counter();
    assert_eq!(
        expect_err(poll(&mut h.table.acquire(FunctionId(9)), &w)),
        AcquireError::UnknownFunction
    );
}

#[test]
fn snapshot_serializes_for_the_admin_endpoint() {
    let h = Harness::one(spec(2));
    warm(&h, 1);
    let json = serde_json::to_value(h.table.snapshot(h.at(1500))).unwrap();
    let f = &json["functions"][0];
    assert_eq!(f["name"], "fn");
    assert_eq!(f["breaker"], "closed");
    assert_eq!(f["counters"]["cold_starts"], 1);
    let e = &f["environments"][0];
    assert_eq!(e["state"], "idle");
    assert_eq!(e["addr"], "127.0.0.1:9000");
    assert_eq!(e["age_ms"], 1500);
    assert_eq!(e["idle_ms"], 1500);
}

#[test]
fn pool_spec_from_config() {
    let mut f = esb_model::FunctionSpec {
        name: esb_model::FunctionName::new("echo"),
        runtime: esb_model::RuntimeSpec::Endpoint { addr: addr(9000) },
        timeout: Duration::from_secs(3),
        memory_size: 128,
        environment: Default::default(),
        scaling: esb_model::ScalingSpec {
            max_capacity: 1,
            reject_status: 429,
            ..Default::default()
        },
        schedules: vec![],
    };
    let s = PoolSpec::from_function(&f);
    assert_eq!(s.kind, PoolKind::Static(vec![addr(9000)]));
    assert_eq!((s.max_capacity, s.reject_status), (1, 429));
    f.runtime = esb_model::RuntimeSpec::Process {
        command: vec!["x".into()],
        working_dir: None,
    };
    assert_eq!(PoolSpec::from_function(&f).kind, PoolKind::Managed);
}

// ---------------------------------------------------------------------- threads

/// Plays the control plane on its own thread: every Start becomes ready after `delay`. It ends
/// when the table (which holds the channel's sender) is dropped.
fn fake_control(
    table: &Arc<PoolTable>,
    mut rx: ControlReceiver,
    delay: Duration,
) -> thread::JoinHandle<Vec<ControlCommand>> {
    let table = Arc::downgrade(table);
    thread::spawn(move || {
        let mut seen = Vec::new();
        let mut port = 10_000u16;
        while let Some(cmd) = rx.blocking_recv() {
            if let (ControlCommand::Start { function, env, .. }, Some(table)) =
                (&cmd, table.upgrade())
            {
                thread::sleep(delay);
                port += 1;
                table.env_ready(*function, *env, addr(port), Instant::now());
            }
            seen.push(cmd);
        }
        seen
    })
}

/// `n` threads each doing one acquire (with a wait limit) + a short "invocation" + release.
fn burst(
    table: &Arc<PoolTable>,
    n: usize,
    hold: Duration,
    limit: Duration,
) -> Vec<Result<EnvId, AcquireError>> {
    let in_use: Arc<parking_lot::Mutex<std::collections::HashSet<EnvId>>> = Default::default();
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (table, in_use) = (table.clone(), in_use.clone());
            thread::spawn(
                move || match block_on(table.acquire(FunctionId(0)), limit) {
                    Some(Ok(lease)) => {
                        assert!(
                            in_use.lock().insert(lease.env()),
                            "two requests on one environment"
                        );
                        thread::sleep(hold);
                        in_use.lock().remove(&lease.env());
                        let env = lease.env();
                        lease.release(Outcome::Reuse);
                        Ok(env)
                    }
                    Some(Err(e)) => Err(e),
                    None => Err(table.timed_out(FunctionId(0))),
                },
            )
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn starts_in(cmds: &[ControlCommand]) -> usize {
    cmds.iter()
        .filter(|c| matches!(c, ControlCommand::Start { .. }))
        .count()
}

#[test]
fn fifty_requests_on_two_environments_all_succeed_with_exactly_two_starts() {
    let (tx, rx) = control_channel();
    let table = PoolTable::new(vec![spec(2)], tx, Instant::now());
    let control = fake_control(&table, rx, Duration::from_millis(20));
    let results = burst(
        &table,
        50,
        Duration::from_millis(2),
        Duration::from_secs(10),
    );
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let snap = table.snapshot(Instant::now()).functions.remove(0);
    assert_eq!(snap.counters.cold_starts, 2);
    assert_eq!((snap.live, snap.waiting), (2, 0));
    drop(table);
    assert_eq!(starts_in(&control.join().unwrap()), 2);
}

#[test]
fn without_waiting_the_surplus_is_rejected_at_once() {
    let (tx, rx) = control_channel();
    let table = PoolTable::new(
        vec![PoolSpec {
            acquire_timeout: Duration::ZERO,
            ..spec(2)
        }],
        tx,
        Instant::now(),
    );
    let control = fake_control(&table, rx, Duration::from_millis(50));
    let started = Instant::now();
    let results = burst(
        &table,
        50,
        Duration::from_millis(200),
        Duration::from_secs(10),
    );
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let rejected = results
        .iter()
        .filter(|r| matches!(r, Err(AcquireError::AtCapacity { status: 503, .. })))
        .count();
    assert_eq!(ok + rejected, 50, "{results:?}");
    assert!(ok >= 2, "{results:?}");
    // Nobody queued behind a busy environment (each holds it 200 ms).
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(table);
    assert_eq!(starts_in(&control.join().unwrap()), 2);
}

#[test]
fn twenty_cold_requests_start_at_most_twenty() {
    let (tx, rx) = control_channel();
    let table = PoolTable::new(vec![spec(20)], tx, Instant::now());
    let control = fake_control(&table, rx, Duration::from_millis(5));
    let results = burst(
        &table,
        20,
        Duration::from_millis(50),
        Duration::from_secs(10),
    );
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let snap = table.snapshot(Instant::now()).functions.remove(0);
    assert!(snap.counters.cold_starts <= 20);
    assert_eq!(snap.live as u64, snap.counters.cold_starts);
    drop(table);
    assert!(starts_in(&control.join().unwrap()) <= 20);
}

#[test]
fn hammering_warm_environments_never_shares_one_and_loses_none() {
    // 8 threads, 3 environments: warm acquire/release races with hand-offs to waiters, plus
    // waiters that give up (their futures dropped) at random points.
    let h = Harness::one(spec(3));
    warm(&h, 3);
    let table = h.table.clone();
    let owner: Arc<Vec<AtomicBool>> = Arc::new((0..64).map(|_| AtomicBool::new(false)).collect());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (table, owner) = (table.clone(), owner.clone());
            thread::spawn(move || {
                let mut served = 0;
                for i in 0..3000 {
                    // Every 7th request gives up almost at once.
                    let limit = if (i + t) % 7 == 0 {
                        Duration::from_micros(1)
                    } else {
                        Duration::from_secs(10)
                    };
                    if let Some(Ok(lease)) = block_on(table.acquire(FunctionId(0)), limit) {
                        let flag = &owner[lease.env().0 as usize];
                        assert!(
                            !flag.swap(true, Ordering::SeqCst),
                            "{:?} leased twice",
                            lease.env()
                        );
                        std::hint::spin_loop();
                        flag.store(false, Ordering::SeqCst);
                        lease.release(Outcome::Reuse);
                        served += 1;
                    }
                }
                served
            })
        })
        .collect();
    let served: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(served > 8 * 3000 * 6 / 7 - 100, "{served}");
    let s = h.fn_snapshot();
    assert_eq!((s.live, s.waiting, s.starting), (3, 0, 0));
    assert!(
        s.environments.iter().all(|e| e.state == EnvState::Idle),
        "{s:?}"
    );
    assert!(
        h.commands().is_empty(),
        "warm traffic never starts or stops anything"
    );
}

#[test]
fn crashes_racing_with_traffic_leave_a_consistent_pool() {
    let h = Harness::one(spec(4));
    let envs = warm(&h, 4);
    let table = h.table.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (table, stop) = (table.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(lease) = table.try_acquire(FunctionId(0)) {
                        lease.release(Outcome::Reuse);
                    }
                }
            })
        })
        .collect();
    for (i, e) in envs.iter().enumerate() {
        table.env_died(FunctionId(0), *e, h.at(i as u64));
        thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    // Dead slots met by the workers were freed; the rest go at the next sweep.
    table.idle_to_reap(h.at(10));
    let s = h.fn_snapshot();
    assert_eq!(s.live, 0, "{s:?}");
    assert!(
        s.environments.iter().all(|e| e.state == EnvState::Draining) || s.environments.is_empty()
    );
    assert!(starts_in(&h.commands()) <= 4);
}

#[test]
fn adopted_environments_are_idle_count_toward_capacity_and_reap() {
    let mut sp = spec(2);
    sp.idle_timeout = Duration::from_secs(1);
    let h = Harness::one(sp);
    let (_, w) = counter();
    let a = h.table.adopt(h.f(), addr(9100), h.t0).unwrap();
    let b = h.table.adopt(h.f(), addr(9101), h.t0).unwrap();
    assert_ne!(a, b);
    // Full: a third is refused, and nothing was asked of the control plane.
    assert_eq!(h.table.adopt(h.f(), addr(9102), h.t0), None);
    assert!(h.commands().is_empty());
    let lease = expect_lease(poll(&mut h.table.acquire(h.f()), &w));
    assert!([a, b].contains(&lease.env()));
    assert!(h.commands().is_empty());
    lease.release(Outcome::Reuse);
    let s = h.fn_snapshot();
    assert_eq!((s.live, s.starting, s.counters.cold_starts), (2, 0, 0));
    // A death frees the slot like any other environment's.
    h.table.env_died(h.f(), a, h.at(10));
    let reaped = h.table.idle_to_reap(h.at(5_000));
    assert_eq!(reaped, vec![(h.f(), b)]);
    assert_eq!(h.fn_snapshot().live, 0);
}

#[test]
fn an_adopted_environment_goes_to_a_waiter_and_closed_tables_refuse() {
    let h = Harness::one(spec(2));
    let (_, w) = counter();
    let mut waiting = h.table.acquire(h.f());
    assert!(poll(&mut waiting, &w).is_pending());
    let started = h.starts();
    assert_eq!(started.len(), 1);
    let env = h.table.adopt(h.f(), addr(9200), h.t0).unwrap();
    let lease = expect_lease(poll(&mut waiting, &w));
    assert_eq!((lease.env(), lease.addr()), (env, addr(9200)));
    lease.release(Outcome::Reuse);
    h.table.close();
    assert_eq!(h.table.adopt(h.f(), addr(9201), h.t0), None);
}
