//! The control loop: one task per environment (start, then watch until it dies or is told to
//! stop) and a main task driven only by the pool table's commands and its own ticker (coarse
//! clock, pre-warming, breaker re-plans, reaping). Single-threaded: shared state is `Rc`/`RefCell`
//! and no borrow is held across an await.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use esb_model::FunctionSpec;
use esb_pool::{ControlCommand, ControlReceiver, EnvId, FunctionId, PoolTable};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::ControlSettings;
use crate::runtime::{Instance, Runtime, StartRequest};

pub(crate) struct Control<R: Runtime> {
    pub(crate) table: Arc<PoolTable>,
    pub(crate) functions: Vec<FunctionSpec>,
    pub(crate) runtime: R,
    pub(crate) settings: Rc<ControlSettings>,
    /// Ready environments: how to tell each one's task to stop it, with what grace.
    stoppers: RefCell<HashMap<EnvId, oneshot::Sender<Duration>>>,
    /// Pids of ready environments, for the admin view and tests.
    pub(crate) pids: Arc<PidMap>,
    shutting_down: Cell<bool>,
    last_reap: Cell<Instant>,
}

/// Pids of ready environments, shared with the [`crate::ControlHandle`].
#[derive(Debug, Default)]
pub(crate) struct PidMap(std::sync::Mutex<HashMap<EnvId, u32>>);

impl PidMap {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<EnvId, u32>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, env: EnvId, pid: u32) {
        self.lock().insert(env, pid);
    }

    fn remove(&self, env: EnvId) {
        self.lock().remove(&env);
    }

    pub(crate) fn all(&self) -> Vec<(EnvId, u32)> {
        let mut v: Vec<_> = self.lock().iter().map(|(e, p)| (*e, *p)).collect();
        v.sort();
        v
    }
}

impl<R: Runtime> Control<R> {
    pub(crate) fn new(
        table: Arc<PoolTable>,
        functions: Vec<FunctionSpec>,
        runtime: R,
        settings: Rc<ControlSettings>,
        pids: Arc<PidMap>,
    ) -> Self {
        Self {
            table,
            functions,
            runtime,
            settings,
            stoppers: RefCell::default(),
            pids,
            shutting_down: Cell::new(false),
            last_reap: Cell::new(Instant::now()),
        }
    }

    /// Runs until `shutdown` fires (with the deadline for stopping everything) or the table's
    /// sender is gone; then stops every environment.
    pub(crate) async fn run(
        self: Rc<Self>,
        mut commands: ControlReceiver,
        mut shutdown: oneshot::Receiver<Instant>,
    ) {
        let mut tasks = JoinSet::new();
        let mut ticker = tokio::time::interval(self.settings.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let deadline = loop {
            tokio::select! {
                biased;
                d = &mut shutdown => break d.unwrap_or_else(|_| Instant::now()),
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.handle(cmd, &mut tasks),
                    None => break Instant::now() + self.settings.stop_grace,
                },
                _ = ticker.tick() => self.maintain(),
                // Reap finished tasks so the set does not grow.
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        };
        self.stop_everything(deadline, &mut tasks).await;
    }

    fn handle(self: &Rc<Self>, cmd: ControlCommand, tasks: &mut JoinSet<()>) {
        match cmd {
            ControlCommand::Start {
                function,
                env,
                prewarm,
            } => {
                let this = Rc::clone(self);
                tasks.spawn_local(async move { this.environment(function, env, prewarm).await });
            }
            ControlCommand::Stop { env, reason, .. } => {
                tracing::info!(%env, %reason, "stopping environment");
                self.stop(env, self.settings.stop_grace);
            }
        }
    }

    fn maintain(&self) {
        let now = Instant::now();
        self.table.tick(now);
        if now.duration_since(self.last_reap.get()) < self.settings.reap_interval {
            return;
        }
        self.last_reap.set(now);
        for (f, env) in self.table.idle_to_reap(now) {
            tracing::info!(function = %self.functions[f.0 as usize].name, %env, "reaping idle environment");
            self.stop(env, self.settings.stop_grace);
        }
    }

    fn stop(&self, env: EnvId, grace: Duration) {
        if let Some(tx) = self.stoppers.borrow_mut().remove(&env) {
            let _ = tx.send(grace);
        }
    }

    /// The whole life of one environment: start it, hand it to the table, watch it.
    async fn environment(self: Rc<Self>, f: FunctionId, env: EnvId, provisioned: bool) {
        let spec = &self.functions[f.0 as usize];
        let began = Instant::now();
        let req = StartRequest {
            function: spec,
            env,
            provisioned,
        };
        let started = tokio::time::timeout(self.settings.start_timeout, self.runtime.start(req));
        let mut inst = match started.await {
            Ok(Ok(inst)) => inst,
            Ok(Err(e)) => {
                tracing::warn!(function = %spec.name, %env, error = %e, "cold start failed");
                self.table
                    .start_failed(f, env, &e.to_string(), Instant::now());
                return;
            }
            Err(_) => {
                let why = format!(
                    "not ready within {} s",
                    self.settings.start_timeout.as_secs_f64()
                );
                tracing::warn!(function = %spec.name, %env, "cold start failed: {why}");
                self.table.start_failed(f, env, &why, Instant::now());
                return;
            }
        };
        let (tx, rx) = oneshot::channel();
        // Registered before the table can hand it out, so a Stop for it always finds it.
        self.stoppers.borrow_mut().insert(env, tx);
        if self.shutting_down.get() || !self.table.env_ready(f, env, inst.addr(), Instant::now()) {
            self.stoppers.borrow_mut().remove(&env);
            inst.stop(self.settings.stop_grace).await;
            return;
        }
        let pid = inst.pid();
        if let Some(pid) = pid {
            self.pids.insert(env, pid);
        }
        tracing::info!(
            function = %spec.name, %env, addr = %inst.addr(), pid,
            ms = began.elapsed().as_millis() as u64, "environment ready"
        );
        tokio::select! {
            // A death and a stop both pending: report the death (the counters say "crash").
            biased;
            how = inst.exited() => {
                self.stoppers.borrow_mut().remove(&env);
                tracing::warn!(function = %spec.name, %env, pid, "environment died: {how}");
                self.table.env_died(f, env, Instant::now());
            }
            grace = rx => {
                let grace = grace.unwrap_or(self.settings.stop_grace);
                inst.stop(grace).await;
                self.table.env_stopped(f, env);
            }
        }
        self.pids.remove(env);
    }

    async fn stop_everything(&self, deadline: Instant, tasks: &mut JoinSet<()>) {
        self.shutting_down.set(true);
        self.table.close();
        let grace = deadline.saturating_duration_since(Instant::now());
        let stoppers: Vec<_> = self.stoppers.borrow_mut().drain().collect();
        let n = stoppers.len();
        for (_, tx) in stoppers {
            let _ = tx.send(grace);
        }
        tracing::info!(environments = n, "stopping every environment");
        // Starting ones see `shutting_down` and stop themselves; past the deadline (plus the
        // SIGKILL that follows it) whatever is left is dropped, which kills it.
        let hard = tokio::time::Instant::from_std(deadline) + Duration::from_secs(1);
        while tokio::time::timeout_at(hard, tasks.join_next())
            .await
            .is_ok_and(|r| r.is_some())
        {}
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}
