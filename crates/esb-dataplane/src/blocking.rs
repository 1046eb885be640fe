//! A small std-thread pool for CPU-heavy work that must never run on an IO core: argon2 password
//! verification takes tens of milliseconds, which would stall every connection of a worker.
//!
//! Jobs go in over a bounded crossbeam channel; each answer comes back through a tokio `oneshot`
//! that the monoio worker awaits (monoio's `sync` feature makes the cross-thread wake-up work).
//! A full queue is refused at once rather than queued without bound (login floods → 429).

use std::thread::JoinHandle;

use crossbeam::channel::{Sender, TrySendError, bounded};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The pool; dropping it lets the threads finish the queued jobs and exit.
pub struct BlockingPool {
    tx: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingPool")
            .field("threads", &self.threads.len())
            .finish()
    }
}

/// The queue is full: the caller answers 429 (it is load, not a fault; retry later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password verification queue is full")]
pub struct Busy;

impl BlockingPool {
    /// `threads` workers (at least one) sharing a queue of `queue` pending jobs.
    pub fn new(threads: usize, queue: usize) -> std::io::Result<BlockingPool> {
        let (tx, rx) = bounded::<Job>(queue.max(1));
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("esb-blocking-{i}"))
                    .spawn(move || {
                        while let Ok(job) = rx.recv() {
                            job();
                        }
                    })?,
            );
        }
        Ok(BlockingPool {
            tx: Some(tx),
            threads: handles,
        })
    }

    /// Queues `f`; its result arrives on the returned receiver (an error there means the pool
    /// was shut down before running it).
    pub fn spawn<T, F>(&self, f: F) -> Result<oneshot::Receiver<T>, Busy>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            // The requester may have gone (connection closed); nothing to do then.
            let _ = reply.send(f());
        });
        match self.tx.as_ref().map(|tx| tx.try_send(job)) {
            Some(Ok(())) => Ok(rx),
            Some(Err(TrySendError::Full(_))) | Some(Err(TrySendError::Disconnected(_))) | None => {
                Err(Busy)
            }
        }
    }
}

impl Drop for BlockingPool {
    fn drop(&mut self) {
        self.tx = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_reach_a_monoio_worker_on_both_drivers() {
        let pool = BlockingPool::new(2, 8).unwrap();
        for driver in [esb_config::Driver::Epoll, esb_config::Driver::Auto] {
            let got = crate::runtime::run(driver, |_| async {
                let a = pool.spawn(|| 20 + 1).unwrap();
                let b = pool
                    .spawn(|| std::thread::current().name().map(str::to_owned))
                    .unwrap();
                (a.await.unwrap(), b.await.unwrap())
            })
            .unwrap();
            assert_eq!(got.0, 21);
            assert!(got.1.unwrap().starts_with("esb-blocking-"));
        }
    }

    #[test]
    fn a_full_queue_is_refused_not_grown() {
        let pool = BlockingPool::new(1, 1).unwrap();
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        // Occupy the only thread, then fill the one queue slot.
        let first = pool
            .spawn(move || {
                started_tx.send(()).unwrap();
                gate_rx.recv().unwrap();
            })
            .unwrap();
        started_rx.recv().unwrap();
        let second = pool.spawn(|| ()).unwrap();
        assert_eq!(pool.spawn(|| ()).unwrap_err(), Busy);
        gate_tx.send(()).unwrap();
        drop(pool);
        assert!(first.blocking_recv().is_ok());
        assert!(second.blocking_recv().is_ok());
    }
}
