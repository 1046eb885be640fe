//! The pool's decisions as plain functions of counts and time: cold starts, admission, reaping and
//! the circuit breaker. No threads, no clock: `now` is milliseconds since the table's epoch.

/// Whether the breaker lets a function start environments now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartPermit {
    /// Closed circuit: start as many as needed.
    Any,
    /// Half-open: exactly one trial start may go.
    Trial,
    /// Open circuit (or a trial is already out): no start until `retry_after_ms` have passed.
    Denied { retry_after_ms: u64 },
}

impl StartPermit {
    fn cap(self, n: u32) -> u32 {
        match self {
            StartPermit::Any => n,
            StartPermit::Trial => n.min(1),
            StartPermit::Denied { .. } => 0,
        }
    }
}

/// What the table knows about one function when it decides, all taken under its lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    /// Requests waiting for an environment (not counting one being admitted).
    pub queued: u32,
    /// Environments requested from the control plane and not yet ready or failed.
    pub starting: u32,
    /// Environments that count against `max_capacity`: starting, idle and busy.
    pub live: u32,
    pub max_capacity: u32,
}

impl Counts {
    /// Environments that exist and will be released some day (so a waiter can be served).
    fn running(&self) -> u32 {
        self.live - self.starting
    }
}

/// How many environments to start so that every queued request is covered by exactly one start
/// in flight, within `max_capacity`. This is the coalescing rule: N waiters never cause more
/// than N starts, however many of them ask at once.
pub fn starts_needed(c: Counts, permit: StartPermit) -> u32 {
    let need = c.queued.saturating_sub(c.starting);
    let room = c.max_capacity.saturating_sub(c.live);
    permit.cap(need.min(room))
}

/// The verdict on a request that found no idle environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Queue it, after asking for `start` new environments.
    Wait { start: u32 },
    /// At capacity and the function does not let requests wait (`acquire_timeout: 0`).
    Reject,
    /// Nothing runs, nothing is starting and the breaker forbids starting: fail fast.
    CircuitOpen { retry_after_ms: u64 },
}

/// Admits one more request that found nothing idle.
///
/// `queue_room` is how many requests may wait for a *busy* environment to come free
/// ([`crate::PoolSpec::queue_room`]). A request covered by a cold
/// start (started for it, or already in flight) always waits for that start; one that would wait
/// behind busy environments is admitted only while fewer than `queue_room` already do, so an
/// overload is refused at once instead of piling up connections and memory.
pub fn admit(c: Counts, permit: StartPermit, queue_room: u32) -> Admission {
    let with_me = Counts {
        queued: c.queued + 1,
        ..c
    };
    let start = starts_needed(with_me, permit);
    let behind_busy = with_me.queued.saturating_sub(c.starting + start);
    if behind_busy == 0 {
        return Admission::Wait { start };
    }
    if let StartPermit::Denied { retry_after_ms } = permit
        && c.running() == 0
        && c.starting == 0
    {
        return Admission::CircuitOpen { retry_after_ms };
    }
    if behind_busy <= queue_room {
        Admission::Wait { start }
    } else {
        Admission::Reject
    }
}

/// The re-plan after something changed (a release that destroyed, a failed start, a death, time
/// passing): new starts for waiters, and how many of the newest waiters cannot be served at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replan {
    pub start: u32,
    /// Waiters (counted from the back of the queue) to fail with "circuit open": nothing runs,
    /// nothing that is starting can cover them, and nothing may be started.
    pub fail_newest: u32,
}

pub fn replan(c: Counts, permit: StartPermit) -> Replan {
    let start = starts_needed(c, permit);
    let fail_newest = match permit {
        StartPermit::Denied { .. } if c.running() == 0 => c.queued.saturating_sub(c.starting),
        _ => 0,
    };
    Replan { start, fail_newest }
}

/// Environments to start so at least `min_capacity` exist (pre-warming).
pub fn prewarm_needed(c: Counts, min_capacity: u32, permit: StartPermit) -> u32 {
    permit.cap(min_capacity.saturating_sub(c.live))
}

/// One idle environment as the reaper sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdleEnv {
    /// The table's handle for it (opaque here).
    pub key: u32,
    pub last_use_ms: u64,
}

/// The idle environments to reap at `now_ms`: idle for at least `idle_timeout_ms`, least recently
/// used first, never taking `live` below `min_capacity`. Busy environments are never offered.
pub fn select_reaps(
    idle: &[IdleEnv],
    live: u32,
    min_capacity: u32,
    idle_timeout_ms: u64,
    now_ms: u64,
) -> Vec<u32> {
    let budget = live.saturating_sub(min_capacity) as usize;
    let mut expired: Vec<IdleEnv> = idle
        .iter()
        .copied()
        .filter(|e| now_ms.saturating_sub(e.last_use_ms) >= idle_timeout_ms)
        .collect();
    expired.sort_by_key(|e| e.last_use_ms);
    expired.truncate(budget);
    expired.into_iter().map(|e| e.key).collect()
}

/// A per-function circuit breaker over cold starts: `threshold` consecutive failures open it for
/// `cooldown_ms`; then one trial start is allowed (half-open); its success closes the circuit and
/// its failure opens it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breaker {
    threshold: u32,
    cooldown_ms: u64,
    state: BreakerState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed { failures: u32 },
    Open { until_ms: u64 },
    HalfOpen { trial_out: bool },
}

/// How long a request told "no trial slot free" should wait before retrying.
const TRIAL_RETRY_MS: u64 = 1000;

impl Breaker {
    /// `threshold` 0 disables the breaker.
    pub fn new(threshold: u32, cooldown_ms: u64) -> Self {
        Self {
            threshold,
            cooldown_ms,
            state: BreakerState::Closed { failures: 0 },
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// The permit at `now_ms`; moves an expired open circuit to half-open.
    pub fn permit(&mut self, now_ms: u64) -> StartPermit {
        match self.state {
            BreakerState::Closed { .. } => StartPermit::Any,
            BreakerState::Open { until_ms } if now_ms >= until_ms => {
                self.state = BreakerState::HalfOpen { trial_out: false };
                StartPermit::Trial
            }
            BreakerState::Open { until_ms } => StartPermit::Denied {
                retry_after_ms: until_ms - now_ms,
            },
            BreakerState::HalfOpen { trial_out: false } => StartPermit::Trial,
            BreakerState::HalfOpen { trial_out: true } => StartPermit::Denied {
                retry_after_ms: TRIAL_RETRY_MS,
            },
        }
    }

    /// Records that `n` starts were sent under the permit just returned.
    pub fn started(&mut self, n: u32) {
        if n > 0
            && let BreakerState::HalfOpen { trial_out } = &mut self.state
        {
            *trial_out = true;
        }
    }

    pub fn on_success(&mut self) {
        self.state = BreakerState::Closed { failures: 0 };
    }

    /// Records a failed start; true when this failure opened the circuit.
    pub fn on_failure(&mut self, now_ms: u64) -> bool {
        let open = match self.state {
            BreakerState::Closed { failures } => {
                let failures = failures + 1;
                if self.threshold == 0 || failures < self.threshold {
                    self.state = BreakerState::Closed { failures };
                    false
                } else {
                    true
                }
            }
            BreakerState::HalfOpen { .. } => true,
            // A start sent before the circuit opened failed late: it is already open.
            BreakerState::Open { .. } => false,
        };
        if open {
            self.state = BreakerState::Open {
                until_ms: now_ms + self.cooldown_ms,
            };
        }
        open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNBOUNDED: u32 = u32::MAX;

    fn counts(queued: u32, starting: u32, live: u32, max_capacity: u32) -> Counts {
        Counts {
            queued,
            starting,
            live,
            max_capacity,
        }
    }

    #[test]
    fn starts_cover_each_waiter_once_within_capacity() {
        let any = StartPermit::Any;
        assert_eq!(starts_needed(counts(1, 0, 0, 2), any), 1);
        assert_eq!(starts_needed(counts(5, 0, 0, 2), any), 2);
        // Two waiters, one start already in flight: one more.
        assert_eq!(starts_needed(counts(2, 1, 1, 20), any), 1);
        // Covered already.
        assert_eq!(starts_needed(counts(3, 3, 3, 20), any), 0);
        // Busy environments do not cover waiters: scale out while there is room.
        assert_eq!(starts_needed(counts(2, 0, 5, 20), any), 2);
        assert_eq!(starts_needed(counts(2, 0, 20, 20), any), 0);
        assert_eq!(starts_needed(counts(9, 0, 0, 20), StartPermit::Trial), 1);
        let denied = StartPermit::Denied { retry_after_ms: 5 };
        assert_eq!(starts_needed(counts(9, 0, 0, 20), denied), 0);
    }

    #[test]
    fn twenty_arrivals_start_twenty_and_no_more() {
        // Admitting requests one by one, as the table does under its lock.
        let mut c = counts(0, 0, 0, 20);
        let mut started = 0;
        for _ in 0..25 {
            match admit(c, StartPermit::Any, UNBOUNDED) {
                Admission::Wait { start } => {
                    started += start;
                    c.queued += 1;
                    c.starting += start;
                    c.live += start;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(started, 20);
    }

    #[test]
    fn admission_without_waiting_rejects_only_what_no_start_covers() {
        let any = StartPermit::Any;
        assert_eq!(
            admit(counts(0, 0, 0, 2), any, 0),
            Admission::Wait { start: 1 }
        );
        assert_eq!(
            admit(counts(1, 1, 1, 2), any, 0),
            Admission::Wait { start: 1 }
        );
        assert_eq!(admit(counts(2, 2, 2, 2), any, 0), Admission::Reject);
        // Two busy, nothing queued: at capacity.
        assert_eq!(admit(counts(0, 0, 2, 2), any, 0), Admission::Reject);
        assert_eq!(
            admit(counts(0, 0, 2, 2), any, UNBOUNDED),
            Admission::Wait { start: 0 }
        );
    }

    #[test]
    fn at_most_max_queue_requests_wait_behind_busy_environments() {
        let any = StartPermit::Any;
        // Two busy of two, one already waiting: room for two means one more may wait...
        assert_eq!(
            admit(counts(1, 0, 2, 2), any, 2),
            Admission::Wait { start: 0 }
        );
        // ...and a third is refused at once.
        assert_eq!(admit(counts(2, 0, 2, 2), any, 2), Admission::Reject);
        // Waiters covered by cold starts do not use the room: ten starting for ten waiters,
        // capacity twenty, an eleventh arrival starts its own even with no room to queue.
        assert_eq!(
            admit(counts(10, 10, 10, 20), any, 0),
            Admission::Wait { start: 1 }
        );
        // At capacity with every start spoken for, the room counts only the uncovered ones.
        assert_eq!(
            admit(counts(12, 10, 20, 20), any, 3),
            Admission::Wait { start: 0 }
        );
        assert_eq!(admit(counts(13, 10, 20, 20), any, 3), Admission::Reject);
    }

    #[test]
    fn open_circuit_fails_fast_only_when_nothing_can_serve() {
        let denied = StartPermit::Denied {
            retry_after_ms: 700,
        };
        assert_eq!(
            admit(counts(0, 0, 0, 4), denied, UNBOUNDED),
            Admission::CircuitOpen {
                retry_after_ms: 700
            }
        );
        // A busy environment will be released: wait for it (or reject at capacity).
        assert_eq!(
            admit(counts(0, 0, 1, 4), denied, UNBOUNDED),
            Admission::Wait { start: 0 }
        );
        assert_eq!(admit(counts(0, 0, 1, 4), denied, 0), Admission::Reject);
        // A trial is in flight: wait for it.
        assert_eq!(
            admit(counts(0, 1, 1, 4), denied, UNBOUNDED),
            Admission::Wait { start: 0 }
        );
        assert_eq!(
            admit(counts(0, 0, 0, 4), StartPermit::Trial, 0),
            Admission::Wait { start: 1 }
        );
    }

    #[test]
    fn replan_restarts_for_uncovered_waiters_and_fails_hopeless_ones() {
        let any = StartPermit::Any;
        assert_eq!(
            replan(counts(3, 1, 1, 4), any),
            Replan {
                start: 2,
                fail_newest: 0
            }
        );
        let denied = StartPermit::Denied { retry_after_ms: 1 };
        assert_eq!(
            replan(counts(3, 1, 1, 4), denied),
            Replan {
                start: 0,
                fail_newest: 2
            }
        );
        assert_eq!(
            replan(counts(3, 0, 2, 4), denied),
            Replan {
                start: 0,
                fail_newest: 0
            }
        );
    }

    #[test]
    fn prewarm_fills_up_to_min_capacity() {
        assert_eq!(prewarm_needed(counts(0, 0, 0, 5), 2, StartPermit::Any), 2);
        assert_eq!(prewarm_needed(counts(0, 1, 1, 5), 2, StartPermit::Any), 1);
        assert_eq!(prewarm_needed(counts(0, 0, 3, 5), 2, StartPermit::Any), 0);
        assert_eq!(prewarm_needed(counts(0, 0, 0, 5), 2, StartPermit::Trial), 1);
    }

    fn idle(key: u32, last_use_ms: u64) -> IdleEnv {
        IdleEnv { key, last_use_ms }
    }

    #[test]
    fn reaps_expired_least_recently_used_first_above_min_capacity() {
        let envs = [idle(0, 500), idle(1, 100), idle(2, 9_000), idle(3, 300)];
        // timeout 1 s at t=2 s: keys 0, 1, 3 expired.
        assert_eq!(select_reaps(&envs, 4, 0, 1000, 2000), vec![1, 3, 0]);
        // live 4, min 2: at most 2.
        assert_eq!(select_reaps(&envs, 4, 2, 1000, 2000), vec![1, 3]);
        // Busy environments count in `live`, so they protect idle ones from min_capacity.
        assert_eq!(select_reaps(&envs, 6, 2, 1000, 2000), vec![1, 3, 0]);
        assert_eq!(select_reaps(&envs, 1, 1, 1000, 2000), Vec::<u32>::new());
        // Exactly at the timeout is expired; a millisecond before is not.
        assert_eq!(select_reaps(&[idle(7, 1000)], 1, 0, 1000, 2000), vec![7]);
        assert!(select_reaps(&[idle(7, 1001)], 1, 0, 1000, 2000).is_empty());
        // A last use "in the future" (coarse clock) is never expired.
        assert!(select_reaps(&[idle(7, 5000)], 1, 0, 1000, 2000).is_empty());
    }

    #[test]
    fn breaker_opens_after_threshold_then_half_opens_for_one_trial() {
        let mut b = Breaker::new(3, 10_000);
        assert_eq!(b.permit(0), StartPermit::Any);
        assert!(!b.on_failure(1));
        assert!(!b.on_failure(2));
        assert!(b.on_failure(3));
        assert_eq!(
            b.permit(4),
            StartPermit::Denied {
                retry_after_ms: 9_999
            }
        );
        assert_eq!(b.permit(10_003), StartPermit::Trial);
        b.started(1);
        assert_eq!(
            b.permit(10_004),
            StartPermit::Denied {
                retry_after_ms: TRIAL_RETRY_MS
            }
        );
        // The trial fails: open again for a full cool-down.
        assert!(b.on_failure(10_500));
        assert_eq!(b.state(), BreakerState::Open { until_ms: 20_500 });
        assert_eq!(b.permit(20_500), StartPermit::Trial);
        b.started(1);
        b.on_success();
        assert_eq!(b.permit(20_501), StartPermit::Any);
    }

    #[test]
    fn breaker_success_resets_the_failure_count_and_zero_disables_it() {
        let mut b = Breaker::new(2, 1000);
        assert!(!b.on_failure(0));
        b.on_success();
        assert!(!b.on_failure(1));
        assert_eq!(b.permit(2), StartPermit::Any);
        let mut off = Breaker::new(0, 1000);
        for t in 0..100 {
            assert!(!off.on_failure(t));
        }
        assert_eq!(off.permit(100), StartPermit::Any);
        // Late failures while open do not extend the cool-down.
        let mut b = Breaker::new(1, 1000);
        assert!(b.on_failure(0));
        assert!(!b.on_failure(500));
        assert_eq!(b.state(), BreakerState::Open { until_ms: 1000 });
    }
}
