//! Hot path: the runtime's stdout and stderr, piped through esb-rie so they still reach
//! esb-rie's own stdout/stderr (the container or process log) and, for an invoke that asked for
//! `X-Amz-Log-Type: Tail`, are also kept as that invocation's log lines.
//!
//! An invoke without `Tail` pays one uncontended lock per chunk read; nothing is copied.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// What `X-Amz-Log-Result` carries: the last 4 KB of the invocation's log, like Lambda.
pub const TAIL_BYTES: usize = 4096;

#[derive(Clone, Copy)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// The read ends of the current runtime generation's pipes.
#[derive(Clone)]
pub struct Pipes {
    out: Arc<AsyncFd<File>>,
    err: Arc<AsyncFd<File>>,
}

impl Pipes {
    /// `out` and `err` must be non-blocking.
    pub fn new(out: File, err: File) -> std::io::Result<Pipes> {
        Ok(Pipes {
            out: Arc::new(register(out)?),
            err: Arc::new(register(err)?),
        })
    }
}

fn register(file: File) -> std::io::Result<AsyncFd<File>> {
    // SAFETY: the `File` owns its descriptor and lives inside the `AsyncFd`, so the descriptor
    // stays open and the same for the `AsyncFd`'s whole life.
    Ok(unsafe { AsyncFd::register_with_interest(file, Interest::READABLE) }?)
}

/// The log being kept for one invocation (at most one is in flight).
pub struct Capture {
    slot: Mutex<Option<Kept>>,
}

struct Kept {
    request_id: String,
    log: Vec<u8>,
}

impl Default for Capture {
    fn default() -> Self {
        Capture {
            slot: Mutex::new(None),
        }
    }
}

impl Capture {
    fn slot(&self) -> MutexGuard<'_, Option<Kept>> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts keeping lines for `request_id` (dropping whatever an earlier invocation left).
    pub fn begin(&self, request_id: &str) {
        *self.slot() = Some(Kept {
            request_id: request_id.to_owned(),
            log: Vec::new(),
        });
    }

    /// Whether `request_id`'s lines are being kept.
    pub fn keeps(&self, request_id: &str) -> bool {
        self.slot()
            .as_ref()
            .is_some_and(|k| k.request_id == request_id)
    }

    /// Appends to the invocation being kept, if any.
    pub fn push(&self, bytes: &[u8]) {
        if let Some(kept) = self.slot().as_mut() {
            push_bounded(&mut kept.log, bytes);
        }
    }

    /// Stops keeping and returns `request_id`'s log, if it was the one kept.
    pub fn finish(&self, request_id: &str) -> Option<Vec<u8>> {
        let mut slot = self.slot();
        if slot.as_ref()?.request_id != request_id {
            return None;
        }
        slot.take().map(|k| k.log)
    }
}

/// Only the end of the log is ever returned, so everything before the last [`TAIL_BYTES`] can
/// go; trimming at twice that keeps the copying amortised.
fn push_bounded(log: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.len() >= TAIL_BYTES {
        log.clear();
        log.extend_from_slice(&bytes[bytes.len() - TAIL_BYTES..]);
        return;
    }
    log.extend_from_slice(bytes);
    if log.len() > 2 * TAIL_BYTES {
        log.drain(..log.len() - TAIL_BYTES);
    }
}

/// The last [`TAIL_BYTES`] of `log`, starting on a UTF-8 character boundary.
pub fn tail(log: &[u8]) -> &[u8] {
    let mut start = log.len().saturating_sub(TAIL_BYTES);
    while start > 0 && start < log.len() && (log[start] & 0xC0) == 0x80 {
        start += 1;
    }
    &log[start..]
}

/// Forwards one pipe until the runtime (and everything it started) closed it.
pub async fn forward(pipes: Pipes, stream: Stream, capture: Arc<Capture>) {
    let fd = match stream {
        Stream::Stdout => pipes.out,
        Stream::Stderr => pipes.err,
    };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let Ok(mut guard) = fd.readable().await else {
            return;
        };
        match guard.try_io(|f| f.get_ref().read(&mut buf)) {
            Ok(Ok(0)) => return,
            Ok(Ok(n)) => deliver(stream, &buf[..n], &capture),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Ok(Err(e)) => {
                tracing::debug!("runtime output pipe: {e}");
                return;
            }
            Err(_would_block) => {}
        }
    }
}

/// Reads whatever the runtime already wrote. Called when an invocation completes: a runtime
/// writes its log lines before it posts the result, so they are in the pipe by then, and this
/// takes them without waiting for the forwarding task's turn.
pub fn drain(pipes: &Pipes, capture: &Capture) {
    let mut buf = [0u8; 8 * 1024];
    for (fd, stream) in [(&pipes.out, Stream::Stdout), (&pipes.err, Stream::Stderr)] {
        loop {
            match fd.get_ref().read(&mut buf) {
                Ok(0) => break,
                Ok(n) => deliver(stream, &buf[..n], capture),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // WouldBlock: empty for now; the forwarding task's next try sees the same.
                Err(_) => break,
            }
        }
    }
}

fn deliver(stream: Stream, bytes: &[u8], capture: &Capture) {
    // Nobody reading esb-rie's own output must not stop the function.
    let _ = match stream {
        Stream::Stdout => std::io::stdout().lock().write_all(bytes),
        Stream::Stderr => std::io::stderr().lock().write_all(bytes),
    };
    capture.push(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_invocation_gets_its_lines() {
        let c = Capture::default();
        c.push(b"before any invocation\n");
        c.begin("a");
        c.push(b"one\n");
        c.push(b"two\n");
        assert_eq!(c.finish("b"), None, "another invocation's id");
        assert_eq!(c.finish("a").as_deref(), Some(&b"one\ntwo\n"[..]));
        c.push(b"after\n");
        assert_eq!(c.finish("a"), None, "finished once");
    }

    #[test]
    fn a_long_log_keeps_its_last_4_kb() {
        let c = Capture::default();
        c.begin("a");
        let mut all = Vec::new();
        for i in 0..2000 {
            let line = format!("line {i}\n");
            all.extend_from_slice(line.as_bytes());
            c.push(line.as_bytes());
        }
        let big = vec![b'x'; 5000];
        all.extend_from_slice(&big);
        c.push(&big);
        c.push(b"THE END\n");
        all.extend_from_slice(b"THE END\n");
        let kept = c.finish("a").unwrap();
        assert!(kept.len() <= 2 * TAIL_BYTES);
        assert_eq!(tail(&kept), &all[all.len() - TAIL_BYTES..]);
    }

    #[test]
    fn the_tail_starts_on_a_character() {
        let mut log = "é".repeat(3000).into_bytes();
        log.extend_from_slice(b"!");
        let t = tail(&log);
        assert!(t.len() <= TAIL_BYTES && t.len() >= TAIL_BYTES - 1);
        assert!(std::str::from_utf8(t).unwrap().ends_with("é!"));
    }
}
