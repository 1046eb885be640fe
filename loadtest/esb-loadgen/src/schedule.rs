//! The open-model send schedule (wrk2-style): when each request of each connection is meant
//! to leave, as an offset from the start, and which phase (warm-up, measured) it belongs to.
//!
//! Requests are spread evenly over time and interleaved across connections, so `N` connections
//! at total rate `R` send request `k` of connection `i` at `(i + k*N) / R` seconds. A connection
//! that falls behind sends its overdue requests back to back; their latency still counts from
//! these intended times, which is what keeps coordinated omission out of the figures.

use std::time::Duration;

/// The phase a request belongs to, by its intended send time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Warmup,
    Measured,
    /// At or after the end of the measured window: not sent.
    Done,
}

/// The run's timing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// Requests per second over all connections.
    pub rate: f64,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

impl Schedule {
    /// When request `k` of connection `conn` is meant to leave, from the start.
    pub fn intended(&self, conn: usize, k: u64) -> Duration {
        let slot = conn as f64 + k as f64 * self.connections as f64;
        Duration::from_secs_f64(slot / self.rate)
    }

    /// Which phase an intended (or, in the closed model, actual) send offset falls in.
    pub fn phase(&self, offset: Duration) -> Phase {
        if offset < self.warmup {
            Phase::Warmup
        } else if offset < self.warmup + self.duration {
            Phase::Measured
        } else {
            Phase::Done
        }
    }

    /// How many requests the measured window holds, over all connections.
    pub fn measured_requests(&self) -> u64 {
        (0..self.connections)
            .map(|conn| {
                let mut n = 0;
                let mut k = 0;
                loop {
                    match self.phase(self.intended(conn, k)) {
                        Phase::Warmup => {}
                        Phase::Measured => n += 1,
                        Phase::Done => break n,
                    }
                    k += 1;
                }
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(rate: f64, connections: usize, warmup_ms: u64, duration_ms: u64) -> Schedule {
        Schedule {
            rate,
            connections,
            warmup: Duration::from_millis(warmup_ms),
            duration: Duration::from_millis(duration_ms),
        }
    }

    #[test]
    fn sends_interleave_evenly_across_connections() {
        let s = schedule(1000.0, 4, 0, 1000);
        // Global slots are 1 ms apart; connection 1 owns slots 1, 5, 9, ...
        assert_eq!(s.intended(0, 0), Duration::ZERO);
        assert_eq!(s.intended(1, 0), Duration::from_millis(1));
        assert_eq!(s.intended(1, 1), Duration::from_millis(5));
        assert_eq!(s.intended(3, 2), Duration::from_millis(11));
    }

    #[test]
    fn the_measured_window_holds_rate_times_duration() {
        assert_eq!(schedule(1000.0, 4, 500, 2000).measured_requests(), 2000);
        assert_eq!(schedule(300.0, 7, 1000, 3000).measured_requests(), 900);
        assert_eq!(schedule(10.0, 1, 0, 1000).measured_requests(), 10);
    }

    #[test]
    fn phases_split_at_warmup_and_end() {
        let s = schedule(100.0, 1, 1000, 2000);
        assert_eq!(s.phase(Duration::from_millis(999)), Phase::Warmup);
        assert_eq!(s.phase(Duration::from_millis(1000)), Phase::Measured);
        assert_eq!(s.phase(Duration::from_millis(2999)), Phase::Measured);
        assert_eq!(s.phase(Duration::from_millis(3000)), Phase::Done);
    }
}
