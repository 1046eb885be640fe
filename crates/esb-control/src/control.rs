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
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::ControlSettings;
use crate::runtime::{Instance, Runtime, StartRequest};

pub(crate) struct Control<R: Runtime> {
    pub(crate) table: Arc<PoolTable>,
    pub(crate) functions: Vec<FunctionSpec>,
    pub(crate) runtime: R,
    pub(crate) settings: Rc<ControlSettings>,
    /// Ready environments: how to tell each one's task to stop it (or that it died).
    stoppers: RefCell<HashMap<EnvId, oneshot::Sender<Signal>>>,
    /// Environments that were running before the control plane knew them (adopted containers),
    /// already in the table: the loop watches them like the ones it started.
    adopted_tx: mpsc::UnboundedSender<Adopted<R::Instance>>,
    adopted_rx: RefCell<Option<mpsc::UnboundedReceiver<Adopted<R::Instance>>>>,
    /// Pids of ready environments, for the admin view and tests.
    pub(crate) pids: Arc<PidMap>,
    shutting_down: Cell<bool>,
    last_reap: Cell<Instant>,
}

/// What an environment's task is told from outside.
enum Signal {
    /// Stop it with this grace.
    Stop(Duration),
    /// It is gone or unusable (the runtime noticed before the instance did): report a death
    /// and remove what is left of it.
    Died(String),
}

/// An environment that was already running, registered in the table as `env` of `function`.
pub(crate) struct Adopted<I> {
    pub(crate) function: FunctionId,
    pub(crate) env: EnvId,
    pub(crate) instance: I,
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
        let (adopted_tx, adopted_rx) = mpsc::unbounded_channel();
        Self {
            table,
            functions,
            runtime,
            settings,
            stoppers: RefCell::default(),
            adopted_tx,
            adopted_rx: RefCell::new(Some(adopted_rx)),
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
        let mut adopted = self
            .adopted_rx
            .borrow_mut()
            .take()
            .expect("the control loop runs once");
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
                Some(a) = adopted.recv() => {
                    let this = Rc::clone(&self);
                    tasks.spawn_local(async move { this.adopted(a).await });
                }
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
            let _ = tx.send(Signal::Stop(grace));
        }
    }

    /// `env` is gone or unusable, as its runtime found out (e.g. a Docker event): it leaves the
    /// pool as a crash and whatever is left of it is removed. Unknown environments are ignored.
    pub(crate) fn retire(&self, env: EnvId, why: String) {
        if let Some(tx) = self.stoppers.borrow_mut().remove(&env) {
            let _ = tx.send(Signal::Died(why));
        }
    }

    /// Hands an already-running environment, registered with [`PoolTable::adopt`], to the loop.
    pub(crate) fn adopt(&self, function: FunctionId, env: EnvId, instance: R::Instance) {
        let _ = self.adopted_tx.send(Adopted {
            function,
            env,
            instance,
        });
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.get()
    }

    async fn adopted(self: Rc<Self>, a: Adopted<R::Instance>) {
        let (tx, rx) = oneshot::channel();
        self.stoppers.borrow_mut().insert(a.env, tx);
        if self.shutting_down.get() {
            self.stoppers.borrow_mut().remove(&a.env);
            a.instance.stop(self.settings.stop_grace).await;
            self.table.env_died(a.function, a.env, Instant::now());
            return;
        }
        self.watch(a.function, a.env, a.instance, rx).await;
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
        let inst = match started.await {
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
        tracing::info!(
            function = %spec.name, %env, addr = %inst.addr(), pid = inst.pid(),
            ms = began.elapsed().as_millis() as u64, "environment ready"
        );
        self.watch(f, env, inst, rx).await;
    }

    /// Watches a ready environment until it dies or is told to stop.
    async fn watch(
        &self,
        f: FunctionId,
        env: EnvId,
        mut inst: R::Instance,
        rx: oneshot::Receiver<Signal>,
    ) {
        let spec = &self.functions[f.0 as usize];
        let pid = inst.pid();
        if let Some(pid) = pid {
            self.pids.insert(env, pid);
        }
        tokio::select! {
            // A death and a stop both pending: report the death (the counters say "crash").
            biased;
            how = inst.exited() => {
                self.stoppers.borrow_mut().remove(&env);
                tracing::warn!(function = %spec.name, %env, pid, "environment died: {how}");
                self.table.env_died(f, env, Instant::now());
            }
            signal = rx => match signal.unwrap_or(Signal::Stop(self.settings.stop_grace)) {
                Signal::Stop(grace) => {
                    inst.stop(grace).await;
                    self.table.env_stopped(f, env);
                }
                Signal::Died(how) => {
                    tracing::warn!(function = %spec.name, %env, pid, "environment died: {how}");
                    self.table.env_died(f, env, Instant::now());
                    inst.stop(Duration::ZERO).await;
                }
            },
        }
        self.pids.remove(env);
    }

    async fn stop_everything(&self, deadline: Instant, tasks: &mut JoinSet<()>) {
        self.shutting_down.set(true);
        self.runtime.closing();
        self.table.close();
        let grace = deadline.saturating_duration_since(Instant::now());
        let stoppers: Vec<_> = self.stoppers.borrow_mut().drain().collect();
        let n = stoppers.len();
        for (_, tx) in stoppers {
            let _ = tx.send(Signal::Stop(grace));
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
        self.runtime.closed().await;
    }
}
