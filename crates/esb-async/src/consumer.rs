//! The consumer loop: runs accepted invocations through the pool table and the RIE, records the
//! outcome in the queue, and drives the schedule timers. Everything here runs on one
//! current-thread runtime (`Rc`, `Cell`), so the bookkeeping needs no locks.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use esb_model::FunctionSpec;
use esb_pool::{AcquireError, FunctionId, Outcome, PoolTable, StopReason};
use esb_queue::{Pending, Queue, QueueError};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};

use crate::timers::{Tick, Timer};
use crate::{AsyncSettings, Job, ScheduleEntry, rie};

struct Function {
    id: FunctionId,
    timeout: Duration,
    /// `max_capacity` permits: async invocations never hold more environments than that.
    permits: Semaphore,
}

pub(crate) struct Consumer {
    settings: AsyncSettings,
    queue: Arc<Queue>,
    table: Arc<PoolTable>,
    functions: HashMap<String, Function>,
    /// Ids handed to a task and not yet completed or dead-lettered (the timers' "still queued").
    queued: RefCell<HashSet<u64>>,
    /// Invocations sent to an environment and not answered yet (what shutdown waits for).
    invoking: Cell<usize>,
    idle: Notify,
    stopping: Cell<bool>,
}

impl Consumer {
    pub fn new(
        settings: AsyncSettings,
        queue: Arc<Queue>,
        functions: &[FunctionSpec],
        table: Arc<PoolTable>,
    ) -> Consumer {
        let functions = functions
            .iter()
            .filter_map(|f| {
                let id = table.function_id(f.name.as_str())?;
                let capacity = match table.spec(id).map(|s| &s.kind) {
                    Some(esb_pool::PoolKind::Static(addrs)) => addrs.len() as u32,
                    Some(esb_pool::PoolKind::Managed) => {
                        table.spec(id).map_or(1, |s| s.max_capacity)
                    }
                    None => 1,
                }
                .max(1);
                Some((
                    f.name.as_str().to_string(),
                    Function {
                        id,
                        timeout: f.timeout,
                        permits: Semaphore::new(capacity as usize),
                    },
                ))
            })
            .collect();
        Consumer {
            settings,
            queue,
            table,
            functions,
            queued: RefCell::new(HashSet::new()),
            invoking: Cell::new(0),
            idle: Notify::new(),
            stopping: Cell::new(false),
        }
    }

    pub async fn run(
        self,
        pending: Vec<Pending>,
        mut jobs: mpsc::UnboundedReceiver<Job>,
        schedules: Vec<ScheduleEntry>,
        stop: oneshot::Receiver<Instant>,
    ) {
        let me = Rc::new(self);
        if !pending.is_empty() {
            tracing::info!(
                count = pending.len(),
                "running async invocations accepted before the last stop"
            );
        }
        for p in pending {
            me.dispatch(Job::from(p));
        }
        for s in schedules {
            tokio::task::spawn_local(Rc::clone(&me).timer(s));
        }
        let mut stop = stop;
        let deadline = loop {
            tokio::select! {
                job = jobs.recv() => match job {
                    Some(job) => me.dispatch(job),
                    None => break Instant::now(),
                },
                d = &mut stop => break d.unwrap_or_else(|_| Instant::now()),
            }
        };
        me.stopping.set(true);
        let until = tokio::time::Instant::from_std(deadline);
        while me.invoking.get() > 0 {
            let idle = me.idle.notified();
            if tokio::time::timeout_at(until, idle).await.is_err() {
                tracing::warn!(
                    in_flight = me.invoking.get(),
                    "stopping with async invocations still running; they run again at the next start"
                );
                break;
            }
        }
    }

    fn dispatch(self: &Rc<Self>, job: Job) {
        self.queued.borrow_mut().insert(job.id);
        tokio::task::spawn_local(Rc::clone(self).run_job(job));
    }

    /// Runs one invocation until it succeeded, was dead-lettered, or esb stops.
    async fn run_job(self: Rc<Self>, mut job: Job) {
        loop {
            if let Some(at) = job.not_before.take()
                && let Ok(wait) = at.duration_since(SystemTime::now())
            {
                tokio::time::sleep(wait).await;
            }
            if self.stopping.get() {
                return;
            }
            let Some(f) = self.functions.get(&job.function) else {
                // The function left the config since the invocation was accepted.
                let error = format!("function {:?} is not configured", job.function);
                match self.fail(&job, error).await {
                    Some(at) => {
                        job.not_before = Some(at);
                        continue;
                    }
                    None => return,
                }
            };
            let Ok(_permit) = f.permits.acquire().await else {
                return;
            };
            let limit = self.table.wait_limit(f.id);
            let lease = match tokio::time::timeout(limit, self.table.acquire(f.id)).await {
                Ok(Ok(lease)) => lease,
                Ok(Err(AcquireError::Closed)) => return,
                Ok(Err(e)) => {
                    tracing::debug!(id = job.id, function = %job.function, "async invocation waits: {e}");
                    let wait = e.retry_after().unwrap_or(self.settings.busy_backoff);
                    job.not_before = Some(SystemTime::now() + wait);
                    continue;
                }
                Err(_) => {
                    let e = self.table.timed_out(f.id);
                    tracing::debug!(id = job.id, function = %job.function, "async invocation waits: {e}");
                    job.not_before = Some(SystemTime::now() + self.settings.busy_backoff);
                    continue;
                }
            };

            self.invoking.set(self.invoking.get() + 1);
            let answer = tokio::time::timeout(
                f.timeout,
                rie::invoke(
                    lease.addr(),
                    &job.payload,
                    job.client_context.as_deref(),
                    job.trace_id.as_deref(),
                ),
            )
            .await;
            let (outcome, error) = judge(answer, f.timeout);
            lease.release(outcome);
            self.invoking.set(self.invoking.get() - 1);
            if self.invoking.get() == 0 {
                self.idle.notify_waiters();
            }

            let Some(error) = error else {
                let queue = Arc::clone(&self.queue);
                let id = esb_queue::Id(job.id);
                // Not fsynced, but it may compact the log, which is.
                match tokio::task::spawn_blocking(move || queue.complete(id)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(id = job.id, "async queue: {e}"),
                    Err(e) => tracing::error!(id = job.id, "async queue: {e}"),
                }
                self.queued.borrow_mut().remove(&job.id);
                return;
            };
            tracing::info!(id = job.id, function = %job.function, "async invocation failed: {error}");
            match self.fail(&job, error).await {
                Some(at) => job.not_before = Some(at),
                None => return,
            }
        }
    }

    /// Records a failed attempt; `Some(at)` when it is to be retried then.
    async fn fail(&self, job: &Job, error: String) -> Option<SystemTime> {
        let queue = Arc::clone(&self.queue);
        let id = esb_queue::Id(job.id);
        let failed =
            tokio::task::spawn_blocking(move || queue.fail_attempt(id, SystemTime::now(), &error))
                .await;
        match failed {
            Ok(Ok(esb_queue::Outcome::Retry { at })) => Some(at),
            Ok(Ok(esb_queue::Outcome::DeadLetter)) => {
                tracing::warn!(
                    id = job.id,
                    function = %job.function,
                    path = %self.queue.dead_letter_path().display(),
                    "async invocation failed every attempt; dead-lettered"
                );
                self.queued.borrow_mut().remove(&job.id);
                None
            }
            Ok(Err(e)) => {
                // Left in the log: it runs again at the next start.
                tracing::error!(id = job.id, "async queue: {e}");
                self.queued.borrow_mut().remove(&job.id);
                None
            }
            Err(e) => {
                tracing::error!(id = job.id, "async queue: {e}");
                None
            }
        }
    }

    /// Fires one schedule until esb stops or the schedule has no more instants.
    async fn timer(self: Rc<Self>, s: ScheduleEntry) {
        let mut timer = Timer::new(s.schedule.clone(), now_utc());
        let arn = esb_schedule::rule_arn(
            &self.settings.region,
            &self.settings.account_id,
            &s.rule_name,
        );
        loop {
            let tick = timer.tick(now_utc(), |id| self.queued.borrow().contains(&id));
            match tick {
                Tick::Done => return,
                Tick::Wait(due) => {
                    let wait = (due - now_utc()).to_std().unwrap_or(Duration::ZERO);
                    tokio::time::sleep(wait).await;
                }
                Tick::Skip { time, outstanding } => {
                    tracing::info!(
                        function = %s.function,
                        rule = %s.rule_name,
                        %time,
                        outstanding,
                        "schedule fire skipped: the previous fire is still queued"
                    );
                }
                Tick::Fire { time } => {
                    if self.stopping.get() {
                        return;
                    }
                    let event_id = uuid::Uuid::new_v4().to_string();
                    let payload = esb_schedule::ScheduledEvent {
                        id: &event_id,
                        account: &self.settings.account_id,
                        region: &self.settings.region,
                        rule_arn: &arn,
                        time,
                    }
                    .payload(s.input.as_deref());
                    match self.enqueue(&s.function, payload.clone()).await {
                        Ok(id) => {
                            timer.fired(id);
                            self.dispatch(Job {
                                id,
                                function: s.function.clone(),
                                payload,
                                client_context: None,
                                trace_id: None,
                                not_before: None,
                            });
                        }
                        Err(e) => tracing::error!(
                            function = %s.function,
                            rule = %s.rule_name,
                            "schedule fire lost: the async queue refused it: {e}"
                        ),
                    }
                }
            }
        }
    }

    async fn enqueue(&self, function: &str, payload: Vec<u8>) -> Result<u64, QueueError> {
        let queue = Arc::clone(&self.queue);
        let function = function.to_string();
        tokio::task::spawn_blocking(move || queue.enqueue(&function, &payload, None, None))
            .await
            .map_err(|_| QueueError::Poisoned)?
            .map(|id| id.0)
    }
}

fn now_utc() -> DateTime<Utc> {
    DateTime::<Utc>::from(SystemTime::now())
}

/// What an invocation's answer means for the environment and for the queue (`Some(error)` is a
/// failed attempt). Lambda counts crashes and timeouts as function errors, and retries them.
fn judge(
    answer: Result<Result<rie::Answer, rie::RieError>, tokio::time::error::Elapsed>,
    timeout: Duration,
) -> (Outcome, Option<String>) {
    match answer {
        Ok(Ok(a)) if a.status == 200 || a.function_error => {
            if esb_event::is_function_error(a.function_error, &a.body) {
                let shown = &a.body[..a.body.len().min(1024)];
                (
                    Outcome::Reuse,
                    Some(format!(
                        "function error: {}",
                        String::from_utf8_lossy(shown)
                    )),
                )
            } else {
                (Outcome::Reuse, None)
            }
        }
        Ok(Ok(a)) => (
            Outcome::Destroy(StopReason::Faulty),
            Some(format!(
                "the runtime failed (RIE answered {}): {}",
                a.status,
                String::from_utf8_lossy(&a.body[..a.body.len().min(1024)])
            )),
        ),
        Ok(Err(e)) => (Outcome::Destroy(StopReason::Faulty), Some(e.to_string())),
        Err(_) => (
            Outcome::Destroy(StopReason::Timeout),
            Some(format!(
                "Task timed out after {:.2} seconds",
                timeout.as_secs_f64()
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, function_error: bool, body: &str) -> rie::Answer {
        rie::Answer {
            status,
            function_error,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn success_errors_crashes_and_timeouts() {
        let t = Duration::from_secs(3);
        assert_eq!(
            judge(Ok(Ok(answer(200, false, "{\"ok\":1}"))), t),
            (Outcome::Reuse, None)
        );
        let (o, e) = judge(Ok(Ok(answer(200, true, "{}"))), t);
        assert_eq!(o, Outcome::Reuse);
        assert!(e.unwrap().starts_with("function error"));
        // SAM's heuristic: an error-shaped payload without the header.
        let (_, e) = judge(
            Ok(Ok(answer(
                200,
                false,
                r#"{"errorMessage":"boom","errorType":"ValueError","stackTrace":[]}"#,
            ))),
            t,
        );
        assert!(e.unwrap().contains("boom"));
        let (o, e) = judge(Ok(Ok(answer(502, false, "x"))), t);
        assert_eq!(o, Outcome::Destroy(StopReason::Faulty));
        assert!(e.unwrap().contains("502"));
        let elapsed = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                tokio::time::timeout(
                    Duration::ZERO,
                    std::future::pending::<Result<rie::Answer, rie::RieError>>(),
                )
                .await
            })
            .unwrap_err();
        let (o, e) = judge(Err(elapsed), t);
        assert_eq!(o, Outcome::Destroy(StopReason::Timeout));
        assert_eq!(e.unwrap(), "Task timed out after 3.00 seconds");
    }
}
