//! Measures durable enqueues per second on this machine's disk, with 1 and 4 writers (the second
//! shows group commit). `cargo run --release -p esb-queue --example enqueue_rate [dir]`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use esb_queue::Queue;

fn main() -> anyhow::Result<()> {
    let base = match std::env::args().nth(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join(format!("esb-queue-rate-{}", std::process::id())),
    };
    let payload = vec![b'x'; 300];
    for writers in [1usize, 4] {
        let dir = base.join(format!("w{writers}"));
        let _ = std::fs::remove_dir_all(&dir);
        let (q, _) = Queue::open(&dir)?;
        let q = Arc::new(q);
        let start = Instant::now();
        let handles: Vec<_> = (0..writers)
            .map(|_| {
                let (q, payload) = (Arc::clone(&q), payload.clone());
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while start.elapsed() < Duration::from_secs(3) {
                        let id = q.enqueue("f", &payload, None, None).expect("enqueue");
                        q.complete(id).expect("complete");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let total: u64 = handles.into_iter().map(|h| h.join().expect("writer")).sum();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{writers} writer(s): {:.0} durable enqueues/s (each then completed)",
            total as f64 / secs
        );
    }
    let _ = std::fs::remove_dir_all(&base);
    Ok(())
}
