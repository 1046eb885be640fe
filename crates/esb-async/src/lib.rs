//! Durable asynchronous (`Event`) invocations and schedules.
//!
//! The data plane accepts an Event invocation by calling [`Submitter::submit`] on a blocking
//! thread: it returns once the record is fsynced in the [`esb_queue::Queue`], and only then is the
//! 202 sent. This crate's own thread (a current-thread tokio runtime, never on the request path)
//! runs what was accepted:
//!
//! 1. at start, every record a previous esb left pending (a `kill -9` included) is run again;
//! 2. each invocation waits for a permit of its function (at most `max_capacity` async
//!    invocations of a function at once), acquires an environment from the pool table, POSTs the
//!    payload to its RIE, and releases the lease;
//! 3. success → `complete`; a function error (`X-Amz-Function-Error`, SAM's error-shape test, a
//!    crash or a timeout) → `fail_attempt`, which retries twice with backoff (Lambda's policy) and
//!    then writes the invocation to `dead-letter.jsonl` in the queue directory;
//! 4. no environment to be had (throttled, cold starts failing) is not an attempt: the invocation
//!    waits and tries again, as Lambda retries throttles and system errors.
//!
//! Delivery is at least once, like Lambda's: an invocation that ran but whose completion had not
//! reached the log when esb died runs again.
//!
//! **Schedules** (`events: [{schedule: ...}]` in functions.yml) fire from timers on the same thread
//! and go through the same queue as Event invocations, with the EventBridge scheduled event or
//! their `input` verbatim. The firing rules (no replay of fires missed while esb was down, no
//! pile-up behind a slow function) are in [`timers`].

mod consumer;
pub mod rie;
pub mod timers;

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use esb_model::FunctionSpec;
use esb_pool::PoolTable;
use esb_queue::{Pending, Queue, QueueError, RetryPolicy};
use esb_schedule::Schedule;
use tokio::sync::{mpsc, oneshot};

/// What the consumer needs besides the functions and the table; the binary fills it from the
/// config.
#[derive(Debug, Clone)]
pub struct AsyncSettings {
    pub queue_dir: PathBuf,
    /// Delays between attempts after a function error (Lambda: about 1 and 2 minutes).
    pub retry: RetryPolicy,
    /// How long to wait before trying again when no environment could be had.
    pub busy_backoff: Duration,
    /// For the scheduled event's `account`, `region` and rule ARN.
    pub region: String,
    pub account_id: String,
}

impl AsyncSettings {
    pub fn new(queue_dir: PathBuf) -> Self {
        AsyncSettings {
            queue_dir,
            retry: RetryPolicy::default(),
            busy_backoff: Duration::from_secs(1),
            region: "ap-northeast-1".into(),
            account_id: "123456789012".into(),
        }
    }
}

/// Why async invocations cannot start. The operator's to fix.
#[derive(Debug, thiserror::Error)]
pub enum AsyncError {
    #[error("async queue: {0}")]
    Queue(#[from] QueueError),
    #[error("function {function}: {source}")]
    Schedule {
        function: String,
        source: esb_schedule::ScheduleError,
    },
    #[error("cannot start the async thread: {0}")]
    Thread(std::io::Error),
}

/// An accepted invocation on its way to the consumer thread.
#[derive(Debug)]
pub(crate) struct Job {
    pub id: u64,
    pub function: String,
    pub payload: Vec<u8>,
    pub client_context: Option<String>,
    pub trace_id: Option<String>,
    pub not_before: Option<SystemTime>,
}

impl From<Pending> for Job {
    fn from(p: Pending) -> Job {
        Job {
            id: p.id.0,
            function: p.function,
            payload: p.payload,
            client_context: p.client_context,
            trace_id: p.trace_id,
            not_before: p.not_before,
        }
    }
}

/// Accepts Event invocations. Cheap to clone; call [`Submitter::submit`] from a thread that may
/// block (it waits for an fsync).
#[derive(Debug, Clone)]
pub struct Submitter {
    queue: Arc<Queue>,
    jobs: mpsc::UnboundedSender<Job>,
}

impl Submitter {
    /// Makes the invocation durable and hands it to the consumer; returns its queue id. Once this
    /// returned `Ok`, the invocation will run (at least once) even if esb dies the next instant.
    pub fn submit(
        &self,
        function: &str,
        payload: &[u8],
        client_context: Option<&str>,
        trace_id: Option<&str>,
    ) -> Result<u64, QueueError> {
        let id = self
            .queue
            .enqueue(function, payload, client_context, trace_id)?;
        // A consumer already gone (shutting down) finds the record in the log at the next start.
        let _ = self.jobs.send(Job {
            id: id.0,
            function: function.to_string(),
            payload: payload.to_vec(),
            client_context: client_context.map(str::to_string),
            trace_id: trace_id.map(str::to_string),
            not_before: None,
        });
        Ok(id.0)
    }

    /// Invocations accepted and not yet completed or dead-lettered.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

/// The opened queue, before its consumer runs: open it early (it takes the directory's lock, so a
/// second esb on the same state fails here), hand [`Opened::submitter`] to the data plane, then
/// [`Opened::start`] once the control plane runs.
#[derive(Debug)]
pub struct Opened {
    settings: AsyncSettings,
    queue: Arc<Queue>,
    pending: Vec<Pending>,
    submitter: Submitter,
    jobs: mpsc::UnboundedReceiver<Job>,
    schedules: Vec<ScheduleEntry>,
}

#[derive(Debug, Clone)]
pub(crate) struct ScheduleEntry {
    pub function: String,
    pub rule_name: String,
    pub schedule: Schedule,
    pub input: Option<String>,
}

/// Opens the queue in `settings.queue_dir` (recovering what a previous esb left) and checks every
/// enabled schedule of `functions`.
pub fn open(settings: AsyncSettings, functions: &[FunctionSpec]) -> Result<Opened, AsyncError> {
    let mut schedules = Vec::new();
    for f in functions {
        for (i, s) in f.schedules.iter().enumerate() {
            let schedule =
                Schedule::parse(&s.expression).map_err(|source| AsyncError::Schedule {
                    function: f.name.as_str().to_string(),
                    source,
                })?;
            if s.enabled {
                schedules.push(ScheduleEntry {
                    function: f.name.as_str().to_string(),
                    rule_name: format!("esb-{}-schedule-{}", f.name.as_str(), i + 1),
                    schedule,
                    input: s.input.clone(),
                });
            }
        }
    }
    let (queue, pending) = Queue::open_with(
        &settings.queue_dir,
        esb_queue::Options {
            retry: settings.retry.clone(),
            ..esb_queue::Options::default()
        },
    )?;
    let queue = Arc::new(queue);
    let (tx, rx) = mpsc::unbounded_channel();
    Ok(Opened {
        submitter: Submitter {
            queue: Arc::clone(&queue),
            jobs: tx,
        },
        settings,
        queue,
        pending,
        jobs: rx,
        schedules,
    })
}

impl Opened {
    pub fn submitter(&self) -> Submitter {
        self.submitter.clone()
    }

    /// Invocations recovered from the log, to run first.
    pub fn recovered(&self) -> usize {
        self.pending.len()
    }

    /// Starts the consumer thread for `functions` (the table's functions, by name).
    pub fn start(
        self,
        functions: &[FunctionSpec],
        table: Arc<PoolTable>,
    ) -> Result<AsyncHandle, AsyncError> {
        let (stop_tx, stop_rx) = oneshot::channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(AsyncError::Thread)?;
        let consumer =
            consumer::Consumer::new(self.settings, Arc::clone(&self.queue), functions, table);
        let (pending, jobs, schedules) = (self.pending, self.jobs, self.schedules);
        let thread = std::thread::Builder::new()
            .name("esb-async".into())
            .spawn(move || {
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, consumer.run(pending, jobs, schedules, stop_rx));
            })
            .map_err(AsyncError::Thread)?;
        Ok(AsyncHandle {
            stop: Some(stop_tx),
            thread: Some(thread),
            submitter: self.submitter,
        })
    }
}

/// The running consumer. Dropping it stops it at once.
#[derive(Debug)]
pub struct AsyncHandle {
    stop: Option<oneshot::Sender<Instant>>,
    thread: Option<JoinHandle<()>>,
    submitter: Submitter,
}

impl AsyncHandle {
    pub fn submitter(&self) -> Submitter {
        self.submitter.clone()
    }

    /// Stops taking work, lets invocations already sent to an environment finish until
    /// `deadline`, and returns. Everything not completed stays in the queue for the next start.
    pub fn shutdown(mut self, deadline: Instant) {
        self.stop(deadline);
    }

    fn stop(&mut self, deadline: Instant) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(deadline);
        }
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the async thread panicked");
        }
    }
}

impl Drop for AsyncHandle {
    fn drop(&mut self) {
        self.stop(Instant::now());
    }
}

#[cfg(test)]
mod tests;
