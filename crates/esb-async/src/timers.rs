//! When a `functions.yml` schedule fires, decided without a clock: the loop in `consumer.rs`
//! passes `now` in, so every rule below is a unit test.
//!
//! Rules (documented in the crate docs too):
//! - a rate schedule counts from esb's start (AWS counts from the rule's creation, which esb's
//!   start stands in for), so `rate(1 minute)` first fires a minute after start;
//! - fires missed while esb was down are not replayed, and a loop that woke late (a suspended
//!   machine) fires once for the latest due instant, never once per missed one;
//! - a fire is skipped while the previous fire of the same schedule is still queued (waiting or
//!   running), so a slow function never accumulates fires beyond the one it is working on.

use chrono::{DateTime, Utc};
use esb_schedule::Schedule;

/// One schedule's firing state.
#[derive(Debug, Clone)]
pub struct Timer {
    schedule: Schedule,
    next: Option<DateTime<Utc>>,
    /// The queue id of the last fire, while it may still be queued.
    outstanding: Option<u64>,
}

/// What [`Timer::tick`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Nothing is due before this instant.
    Wait(DateTime<Utc>),
    /// Fire now; `time` is the scheduled instant (the event's `time`). Report the queue id with
    /// [`Timer::fired`].
    Fire { time: DateTime<Utc> },
    /// Due, but the previous fire (`outstanding`) is still queued.
    Skip {
        time: DateTime<Utc>,
        outstanding: u64,
    },
    /// The schedule never fires again (a cron whose years are over).
    Done,
}

impl Timer {
    /// A timer for `schedule` as of esb's start at `started`: nothing before `started` fires.
    pub fn new(schedule: Schedule, started: DateTime<Utc>) -> Timer {
        let schedule = schedule.anchored_at(started);
        let next = schedule.next_after(started);
        Timer {
            schedule,
            next,
            outstanding: None,
        }
    }

    /// The next due instant, if any.
    pub fn next(&self) -> Option<DateTime<Utc>> {
        self.next
    }

    /// Decides what to do at `now`; `is_queued(id)` says whether an earlier fire is still in the
    /// queue.
    pub fn tick(&mut self, now: DateTime<Utc>, is_queued: impl Fn(u64) -> bool) -> Tick {
        let Some(due) = self.next else {
            return Tick::Done;
        };
        if now < due {
            return Tick::Wait(due);
        }
        // From `now`, not from `due`: instants missed in between collapse into this one fire.
        self.next = self.schedule.next_after(now);
        if let Some(prev) = self.outstanding.filter(|&id| is_queued(id)) {
            return Tick::Skip {
                time: due,
                outstanding: prev,
            };
        }
        self.outstanding = None;
        Tick::Fire { time: due }
    }

    /// Records the queue id of the fire [`Timer::tick`] asked for.
    pub fn fired(&mut self, id: u64) {
        self.outstanding = Some(id);
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};

    use super::*;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 5, 6, h, m, s).unwrap()
    }

    #[test]
    fn a_rate_counts_from_the_start_and_fires_once_per_period() {
        let mut t = Timer::new(Schedule::parse("rate(1 minute)").unwrap(), at(10, 0, 30));
        assert_eq!(t.next(), Some(at(10, 1, 30)));
        assert_eq!(t.tick(at(10, 1, 29), |_| false), Tick::Wait(at(10, 1, 30)));
        assert_eq!(
            t.tick(at(10, 1, 30), |_| false),
            Tick::Fire {
                time: at(10, 1, 30)
            }
        );
        t.fired(1);
        assert_eq!(t.next(), Some(at(10, 2, 30)));
        // Not due yet: the same answer however often the loop wakes.
        assert_eq!(t.tick(at(10, 2, 0), |_| false), Tick::Wait(at(10, 2, 30)));
        assert_eq!(
            t.tick(at(10, 2, 31), |_| false),
            Tick::Fire {
                time: at(10, 2, 30)
            }
        );
    }

    #[test]
    fn fires_before_the_start_are_not_replayed() {
        // Every minute on the minute; esb starts at 10:00:30 after being down since 09:00.
        let t = Timer::new(Schedule::parse("cron(* * * * ? *)").unwrap(), at(10, 0, 30));
        assert_eq!(t.next(), Some(at(10, 1, 0)));
    }

    #[test]
    fn a_late_wake_fires_once_not_once_per_missed_instant() {
        let mut t = Timer::new(Schedule::parse("rate(1 minute)").unwrap(), at(10, 0, 0));
        // The loop was suspended for ten minutes.
        assert_eq!(
            t.tick(at(10, 10, 5), |_| false),
            Tick::Fire { time: at(10, 1, 0) }
        );
        t.fired(1);
        assert_eq!(t.next(), Some(at(10, 11, 0)));
        assert_eq!(t.tick(at(10, 10, 6), |_| false), Tick::Wait(at(10, 11, 0)));
    }

    #[test]
    fn a_fire_is_skipped_while_the_previous_one_is_queued() {
        let mut t = Timer::new(Schedule::parse("rate(5 minutes)").unwrap(), at(10, 0, 0));
        assert_eq!(
            t.tick(at(10, 5, 0), |_| true),
            Tick::Fire { time: at(10, 5, 0) }
        );
        t.fired(7);
        // The function is slow: id 7 is still queued at the next two instants.
        let queued = |id| id == 7;
        assert_eq!(
            t.tick(at(10, 10, 0), queued),
            Tick::Skip {
                time: at(10, 10, 0),
                outstanding: 7
            }
        );
        assert_eq!(
            t.tick(at(10, 15, 0), queued),
            Tick::Skip {
                time: at(10, 15, 0),
                outstanding: 7
            }
        );
        // Done now: the next instant fires again.
        assert_eq!(
            t.tick(at(10, 20, 0), |_| false),
            Tick::Fire {
                time: at(10, 20, 0)
            }
        );
        t.fired(8);
        assert_eq!(t.next(), Some(at(10, 25, 0)));
    }

    #[test]
    fn a_cron_whose_years_are_over_is_done() {
        let start = Utc.with_ymd_and_hms(2031, 1, 1, 0, 0, 0).unwrap();
        let mut t = Timer::new(Schedule::parse("cron(0 12 * * ? 2030)").unwrap(), start);
        assert_eq!(t.next(), None);
        assert_eq!(t.tick(start + TimeDelta::days(400), |_| false), Tick::Done);
    }

    #[test]
    fn cron_fires_at_its_instants_in_utc() {
        let mut t = Timer::new(
            Schedule::parse("cron(0/15 10 * * ? *)").unwrap(),
            at(10, 7, 0),
        );
        assert_eq!(t.next(), Some(at(10, 15, 0)));
        assert_eq!(
            t.tick(at(10, 15, 0), |_| false),
            Tick::Fire {
                time: at(10, 15, 0)
            }
        );
        assert_eq!(t.next(), Some(at(10, 30, 0)));
    }
}
