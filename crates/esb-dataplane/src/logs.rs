//! A budget for log lines that clients can trigger (failed requests, function errors): each
//! worker thread writes at most [`PER_SECOND`] of them per second and counts the rest, so a
//! flood of bad requests cannot turn into a flood of log IO.

use std::cell::Cell;
use std::time::Instant;

/// Client-triggerable lines per second per worker.
pub const PER_SECOND: u32 = 20;

thread_local! {
    static BUDGET: Cell<(Option<Instant>, u32, u64)> = const { Cell::new((None, 0, 0)) };
}

/// `Some(suppressed)` when a line may be written now (with the number of lines dropped since the
/// last one written, to report alongside), `None` when it must be dropped.
pub fn allow() -> Option<u64> {
    BUDGET.with(|b| {
        let (start, used, dropped) = b.get();
        let now = Instant::now();
        let fresh = start.is_none_or(|s| now.duration_since(s).as_secs() >= 1);
        let (start, used) = if fresh {
            (now, 0)
        } else {
            (start.unwrap_or(now), used)
        };
        if used < PER_SECOND {
            b.set((Some(start), used + 1, 0));
            Some(dropped)
        } else {
            b.set((Some(start), used, dropped + 1));
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_budget_per_second_and_the_rest_is_counted() {
        let allowed = (0..PER_SECOND * 3).filter(|_| allow().is_some()).count();
        assert_eq!(allowed, PER_SECOND as usize);
        assert_eq!(BUDGET.with(|b| b.get().2), u64::from(PER_SECOND) * 2);
    }
}
