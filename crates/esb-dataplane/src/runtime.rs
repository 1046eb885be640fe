//! One monoio runtime per worker thread, on the configured IO driver.
//!
//! io_uring is set up with COOP_TASKRUN + SINGLE_ISSUER + TASKRUN_FLAG: with default flags it
//! measured 10–25% slower than epoll on this kind of machine, with them it matches or beats it
//! (spec/crates.md §2). Kernels older than those flags (5.19/6.0) get a default ring, and a
//! kernel or seccomp profile without io_uring (Docker ≥ 25 blocks it) gets epoll under `auto`.

use std::future::Future;
use std::io;

use esb_config::Driver;
use monoio::time::TimeDriver;
use monoio::{IoUringDriver, LegacyDriver, Runtime, RuntimeBuilder};

/// The driver a worker actually runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChosenDriver {
    /// io_uring with the tuned setup flags.
    IoUring,
    /// io_uring with default flags (the kernel refused the tuned ones).
    IoUringPlain,
    Epoll,
}

impl ChosenDriver {
    pub fn as_str(self) -> &'static str {
        match self {
            ChosenDriver::IoUring => "io_uring",
            ChosenDriver::IoUringPlain => "io_uring (default flags)",
            ChosenDriver::Epoll => "epoll",
        }
    }
}

/// Submission queue entries per ring.
const URING_ENTRIES: u32 = 4096;

enum AnyRuntime {
    Uring(Runtime<TimeDriver<IoUringDriver>>),
    Legacy(Runtime<TimeDriver<LegacyDriver>>),
}

fn uring(tuned: bool) -> io::Result<Runtime<TimeDriver<IoUringDriver>>> {
    let mut urb = io_uring::IoUring::builder();
    if tuned {
        urb.setup_coop_taskrun()
            .setup_single_issuer()
            .setup_taskrun_flag();
    }
    RuntimeBuilder::<IoUringDriver>::new()
        .with_entries(URING_ENTRIES)
        .uring_builder(urb)
        .enable_timer()
        .build()
}

fn legacy() -> io::Result<Runtime<TimeDriver<LegacyDriver>>> {
    RuntimeBuilder::<LegacyDriver>::new().enable_timer().build()
}

fn build(driver: Driver) -> io::Result<(AnyRuntime, ChosenDriver)> {
    let try_uring = || -> io::Result<(AnyRuntime, ChosenDriver)> {
        match uring(true) {
            Ok(rt) => Ok((AnyRuntime::Uring(rt), ChosenDriver::IoUring)),
            Err(_) => uring(false).map(|rt| (AnyRuntime::Uring(rt), ChosenDriver::IoUringPlain)),
        }
    };
    match driver {
        Driver::IoUring => try_uring(),
        Driver::Epoll => legacy().map(|rt| (AnyRuntime::Legacy(rt), ChosenDriver::Epoll)),
        Driver::Auto => {
            if monoio::utils::detect_uring()
                && let Ok(found) = try_uring()
            {
                return Ok(found);
            }
            legacy().map(|rt| (AnyRuntime::Legacy(rt), ChosenDriver::Epoll))
        }
    }
}

/// Builds a runtime on the calling thread and runs `make(chosen)` to completion on it. Call it
/// from the worker thread itself: a SINGLE_ISSUER ring belongs to the thread that made it.
pub fn run<F, Fut>(driver: Driver, make: F) -> io::Result<Fut::Output>
where
    F: FnOnce(ChosenDriver) -> Fut,
    Fut: Future,
{
    let (rt, chosen) = build(driver)?;
    Ok(match rt {
        AnyRuntime::Uring(mut rt) => rt.block_on(make(chosen)),
        AnyRuntime::Legacy(mut rt) => rt.block_on(make(chosen)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_driver_runs_timers_and_reports_itself() {
        let got = run(Driver::Epoll, |d| async move {
            monoio::time::sleep(std::time::Duration::from_millis(1)).await;
            d
        })
        .unwrap();
        assert_eq!(got, ChosenDriver::Epoll);
        if monoio::utils::detect_uring() {
            let got = run(Driver::IoUring, |d| async move {
                monoio::time::sleep(std::time::Duration::from_millis(1)).await;
                d
            })
            .unwrap();
            assert_ne!(got, ChosenDriver::Epoll);
            let auto = run(Driver::Auto, |d| async move { d }).unwrap();
            assert_ne!(auto, ChosenDriver::Epoll);
        }
    }
}
