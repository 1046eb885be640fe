//! Pool table benches: a warm acquire + release on 1, 2 and 8 threads hammering one function,
//! against the obvious alternative, a `Mutex<Vec>` of idle environments (std and parking_lot).
//!
//! Each thread does `iters` acquire/release pairs at once with the others, so the figure is the
//! time of one pair on one thread under that much contention. There are as many environments as
//! threads: nobody ever has to wait for a busy one, only the data structure is measured.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use esb_pool::{ControlCommand, FunctionId, Outcome, PoolSpec, PoolTable, control_channel};

const THREADS: [usize; 3] = [1, 2, 8];

/// Runs `op` `iters` times on each of `threads` threads started together; the wall time.
fn contended(threads: usize, iters: u64, op: impl Fn() + Sync) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..iters {
                    op();
                }
            });
        }
        barrier.wait();
        let start = Instant::now();
        // Scope end joins the threads.
        start
    })
    .elapsed()
}

/// A table for one function with `n` warm environments.
fn warm_table(n: u32) -> Arc<PoolTable> {
    let (tx, mut rx) = control_channel();
    let now = Instant::now();
    let table = PoolTable::new(vec![PoolSpec::managed("bench", n)], tx, now);
    let f = FunctionId(0);
    let waker = Waker::noop();
    let mut held = Vec::new();
    let mut futs: Vec<_> = (0..n).map(|_| Box::pin(table.acquire(f))).collect();
    for fut in &mut futs {
        assert!(
            fut.as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_pending()
        );
    }
    let mut port = 9000;
    while let Ok(ControlCommand::Start { function, env, .. }) = rx.try_recv() {
        port += 1;
        table.env_ready(function, env, ([127, 0, 0, 1], port).into(), now);
    }
    for fut in &mut futs {
        match fut.as_mut().poll(&mut Context::from_waker(waker)) {
            Poll::Ready(Ok(lease)) => held.push(lease),
            _ => panic!("environment not ready"),
        }
    }
    for lease in held {
        lease.release(Outcome::Reuse);
    }
    drop(futs);
    table
}

fn acquire_release(table: &PoolTable) {
    let f = FunctionId(0);
    let mut fut = pin!(table.acquire(f));
    let mut cx = Context::from_waker(Waker::noop());
    // Almost always ready at once; a pop racing a release can queue for a moment.
    let lease = loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(lease)) => break lease,
            Poll::Ready(Err(e)) => panic!("{e}"),
            Poll::Pending => std::hint::spin_loop(),
        }
    };
    black_box(lease.addr());
    lease.release(Outcome::Reuse);
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("pool");
    for threads in THREADS {
        let id = format!("{threads}_threads");
        let table = warm_table(threads as u32);
        g.bench_function(BenchmarkId::new("acquire_release", &id), |b| {
            b.iter_custom(|iters| contended(threads, iters, || acquire_release(&table)))
        });

        let std_vec = std::sync::Mutex::new((0..threads as u32).collect::<Vec<_>>());
        g.bench_function(BenchmarkId::new("mutex_vec_std", &id), |b| {
            b.iter_custom(|iters| {
                contended(threads, iters, || {
                    let env = std_vec.lock().unwrap().pop().expect("one per thread");
                    black_box(env);
                    std_vec.lock().unwrap().push(env);
                })
            })
        });

        let pl_vec = parking_lot::Mutex::new((0..threads as u32).collect::<Vec<_>>());
        g.bench_function(BenchmarkId::new("mutex_vec_parking_lot", &id), |b| {
            b.iter_custom(|iters| {
                contended(threads, iters, || {
                    let env = pl_vec.lock().pop().expect("one per thread");
                    black_box(env);
                    pl_vec.lock().push(env);
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
