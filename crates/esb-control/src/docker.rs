//! The Docker runtime behind the control loop's [`Runtime`] seam, and [`Runtimes`], which picks
//! the process or the Docker runtime per function (`runtime: docker` functions go to Docker).
//!
//! The engine is connected to only when some function needs it, by [`supervise`]: connect (retry
//! with backoff), preload image archives, check images, subscribe to events, then "Adopt &
//! Sync" (running containers of a known function with the current config hash become idle
//! environments, the rest are removed). Only then do Docker cold starts proceed; until the
//! first attempt is over they wait, after a failed one they fail at once (502) while esb keeps
//! serving process functions and the supervisor keeps reconnecting.
//!
//! Reconciliation: a container's death is seen by its instance (`docker wait`) and by the
//! events stream (`die`, `oom`, `destroy`), and a periodic re-list catches whatever both miss;
//! each retires the environment through [`Control::retire`].

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use esb_docker::{Container, ContainerEvent, DockerError, DockerOptions, DockerRuntime};
use esb_model::{FunctionSpec, RuntimeSpec};
use esb_pool::EnvId;
use futures_util::StreamExt as _;
use tokio::sync::watch;

use crate::control::Control;
use crate::process::{ProcessInstance, ProcessRuntime};
use crate::runtime::{Instance, Runtime, StartError, StartRequest};

/// How the Docker runtime is set up (from `[docker]` in esb.toml).
#[derive(Clone, Debug)]
pub struct DockerSettings {
    pub options: DockerOptions,
    /// `docker save` archives loaded at start.
    pub preload_dir: Option<PathBuf>,
    /// How often the containers are re-listed against the pool (besides every events resync).
    pub resync_interval: Duration,
}

impl Default for DockerSettings {
    fn default() -> Self {
        Self {
            options: DockerOptions::default(),
            preload_dir: None,
            resync_interval: Duration::from_secs(10),
        }
    }
}

/// Where the connection to the engine stands.
#[derive(Clone, Debug)]
enum Link {
    /// The first attempt (with adoption) is not over: cold starts wait for it.
    Connecting,
    Up(DockerRuntime),
    /// Not reachable; the supervisor is retrying. Cold starts fail at once with this reason.
    Down(String),
}

/// The Docker side's state shared by the runtime, its instances and the supervisor.
pub(crate) struct DockerSide {
    settings: DockerSettings,
    link: watch::Sender<Link>,
    /// Containers that are environments in the pool: id → (environment, when it became one).
    known: RefCell<HashMap<String, (EnvId, Instant)>>,
    /// Shutdown with `keep_on_shutdown`: stopping an instance leaves its container running.
    keep: Cell<bool>,
}

impl DockerSide {
    pub(crate) fn new(settings: DockerSettings) -> Rc<Self> {
        Rc::new(Self {
            settings,
            link: watch::Sender::new(Link::Connecting),
            known: RefCell::default(),
            keep: Cell::new(false),
        })
    }

    /// The engine, once the first connection (and adoption) is over; an error at once while
    /// it is down.
    async fn runtime(&self) -> Result<DockerRuntime, StartError> {
        let mut rx = self.link.subscribe();
        let link = rx
            .wait_for(|l| !matches!(l, Link::Connecting))
            .await
            .map(|l| l.clone())
            .unwrap_or_else(|_| Link::Down("the Docker supervisor has stopped".into()));
        match link {
            Link::Up(rt) => Ok(rt),
            Link::Down(why) => Err(StartError::Docker(why)),
            Link::Connecting => unreachable!("waited for it to end"),
        }
    }

    fn instance(self: &Rc<Self>, c: Container, env: EnvId) -> DockerInstance {
        self.known
            .borrow_mut()
            .insert(c.id().to_owned(), (env, Instant::now()));
        DockerInstance {
            container: Some(c),
            side: Rc::clone(self),
        }
    }
}

/// The runtimes of one control plane: processes always, Docker if some function needs it.
pub struct Runtimes {
    pub(crate) process: ProcessRuntime,
    pub(crate) docker: Option<Rc<DockerSide>>,
}

/// An environment of either runtime.
pub enum AnyInstance {
    Process(ProcessInstance),
    Docker(DockerInstance),
}

impl Runtime for Runtimes {
    type Instance = AnyInstance;

    async fn start(&self, req: StartRequest<'_>) -> Result<AnyInstance, StartError> {
        if !matches!(req.function.runtime, RuntimeSpec::Docker { .. }) {
            return self.process.start(req).await.map(AnyInstance::Process);
        }
        let Some(side) = &self.docker else {
            return Err(StartError::Unsupported("docker"));
        };
        let rt = side.runtime().await?;
        let spec = rt
            .spec(req.function, req.env.0, req.provisioned)
            .map_err(docker_error)?;
        let c = rt.start_owned(&spec).await.map_err(docker_error)?;
        let t = c.timings();
        tracing::debug!(
            function = %req.function.name, env = %req.env, container = %short(c.id()),
            inspect_ms = t.inspect_image.as_millis() as u64, create_ms = t.create.as_millis() as u64,
            start_ms = t.start.as_millis() as u64, ready_ms = t.ready.as_millis() as u64,
            "container started"
        );
        Ok(AnyInstance::Docker(side.instance(c, req.env)))
    }

    fn closing(&self) {
        if let Some(side) = &self.docker {
            side.keep.set(side.settings.options.keep_on_shutdown);
        }
    }

    async fn closed(&self) {
        let Some(side) = &self.docker else { return };
        let rt = match &*side.link.borrow() {
            Link::Up(rt) => rt.clone(),
            _ => return,
        };
        // Removes whatever is left of this owner's containers (or marks them kept).
        match rt.shutdown().await {
            Ok(n) if n > 0 => tracing::info!(removed = n, "removed leftover containers"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not remove this esb's containers"),
        }
    }
}

fn docker_error(e: DockerError) -> StartError {
    StartError::Docker(e.to_string())
}

impl Instance for AnyInstance {
    fn addr(&self) -> SocketAddr {
        match self {
            AnyInstance::Process(p) => p.addr(),
            AnyInstance::Docker(d) => d.addr(),
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            AnyInstance::Process(p) => p.pid(),
            AnyInstance::Docker(_) => None,
        }
    }

    async fn exited(&mut self) -> String {
        match self {
            AnyInstance::Process(p) => p.exited().await,
            AnyInstance::Docker(d) => d.exited().await,
        }
    }

    async fn health(&self) -> bool {
        match self {
            AnyInstance::Process(p) => p.health().await,
            AnyInstance::Docker(d) => d.health().await,
        }
    }

    async fn stop(self, grace: Duration) {
        match self {
            AnyInstance::Process(p) => p.stop(grace).await,
            AnyInstance::Docker(d) => d.stop(grace).await,
        }
    }
}

/// One function container. Dropping it removes the container (unless esb keeps them).
pub struct DockerInstance {
    container: Option<Container>,
    side: Rc<DockerSide>,
}

impl DockerInstance {
    fn container(&self) -> &Container {
        self.container.as_ref().expect("present until stopped")
    }

    pub fn id(&self) -> &str {
        self.container().id()
    }

    fn addr(&self) -> SocketAddr {
        self.container().addr()
    }

    async fn exited(&mut self) -> String {
        self.container().exited().await.to_string()
    }

    async fn health(&self) -> bool {
        self.container().health().await
    }

    async fn stop(mut self, grace: Duration) {
        let Some(c) = self.container.take() else {
            return;
        };
        self.side.known.borrow_mut().remove(c.id());
        if self.side.keep.get() {
            let s = c.detach();
            tracing::info!(container = %short(&s.container_id), "keeping container for the next esb");
            return;
        }
        let id = c.id().to_owned();
        if let Err(e) = c.stop(grace).await {
            tracing::warn!(container = %short(&id), error = %e, "could not remove container");
        }
    }
}

impl Drop for DockerInstance {
    fn drop(&mut self) {
        if let Some(c) = &self.container {
            self.side.known.borrow_mut().remove(c.id());
        }
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Connects to the engine (retrying with backoff), preloads, adopts, then reconciles for as long
/// as the control loop runs. Spawned on the control thread's `LocalSet`.
pub(crate) async fn supervise(control: Rc<Control<Runtimes>>, side: Rc<DockerSide>) {
    let mut backoff = BACKOFF_MIN;
    let rt = loop {
        match DockerRuntime::connect(side.settings.options.clone()).await {
            Ok(rt) => break rt,
            Err(e) => {
                let why = e.to_string();
                if !matches!(&*side.link.borrow(), Link::Down(w) if *w == why) {
                    tracing::error!(error = %why, retry_in = ?backoff, "Docker functions cannot start until the engine answers");
                }
                side.link.send_replace(Link::Down(why));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    };
    let functions: Vec<FunctionSpec> = control
        .functions
        .iter()
        .filter(|f| matches!(f.runtime, RuntimeSpec::Docker { .. }))
        .cloned()
        .collect();
    if let Some(dir) = &side.settings.preload_dir {
        match rt.preload(dir).await {
            Ok(r) => tracing::info!(dir = %dir.display(), report = ?r, "preloaded images"),
            Err(e) => tracing::error!(dir = %dir.display(), error = %e, "preloading images failed"),
        }
    }
    for (f, e) in rt.check_images(&functions).await {
        tracing::error!(function = %f, error = %e, "this function cannot start");
    }
    // Subscribed before adopting, so nothing that happens meanwhile is missed.
    let mut events = std::pin::pin!(rt.events());
    adopt(&control, &side, &rt, &functions).await;
    side.link.send_replace(Link::Up(rt.clone()));

    let expected: HashMap<String, String> = functions
        .iter()
        .filter_map(|f| Some((f.name.as_str().to_owned(), rt.config_hash(f)?)))
        .collect();
    let mut resync = tokio::time::interval(side.settings.resync_interval);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    resync.tick().await;
    loop {
        tokio::select! {
            ev = events.next() => match ev {
                Some(ContainerEvent::Resync) => reconcile(&control, &side, &rt, &expected).await,
                Some(ContainerEvent::Died { container, exit_code, oom_killed }) => {
                    let how = if oom_killed {
                        "OOMKilled".to_owned()
                    } else {
                        exit_code.map_or_else(|| "exited".to_owned(), |c| format!("exit status {c}"))
                    };
                    retire(&control, &side, &container.id, how);
                }
                // The runtime process may be gone while the container runs on: Lambda resets
                // such an environment.
                Some(ContainerEvent::OomKilled(c)) => retire(&control, &side, &c.id, "OOMKilled".into()),
                Some(ContainerEvent::Destroyed(c)) => retire(&control, &side, &c.id, "container removed".into()),
                Some(ContainerEvent::Paused(c)) => retire(&control, &side, &c.id, "container paused".into()),
                Some(_) => {}
                None => return,
            },
            _ = resync.tick() => reconcile(&control, &side, &rt, &expected).await,
        }
    }
}

fn retire(control: &Control<Runtimes>, side: &DockerSide, id: &str, how: String) {
    let env = side.known.borrow().get(id).map(|(env, _)| *env);
    if let Some(env) = env {
        control.retire(env, how);
    }
}

/// "Adopt & Sync": running, current, answering containers of this owner become idle
/// environments; everything else of this owner is removed.
async fn adopt(
    control: &Rc<Control<Runtimes>>,
    side: &Rc<DockerSide>,
    rt: &DockerRuntime,
    functions: &[FunctionSpec],
) {
    let report = match rt.adopt(functions).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "adopting containers failed; the next sync removes strays");
            return;
        }
    };
    let mut adopted = 0;
    for a in &report.adopted {
        let c = rt.own_adopted(a);
        let env = control
            .table
            .function_id(a.function.as_str())
            .and_then(|f| Some((f, control.table.adopt(f, a.addr, Instant::now())?)));
        match env {
            Some((f, env)) => {
                tracing::info!(function = %a.function, %env, container = %short(&a.container_id), addr = %a.addr, "adopted a running container as an idle environment");
                let inst = side.instance(c, env);
                control.adopt(f, env, AnyInstance::Docker(inst));
                adopted += 1;
            }
            // No room (max_capacity shrank): the handle's drop removes it.
            None => {
                tracing::info!(function = %a.function, container = %short(&a.container_id), "no room for an adopted container; removing it")
            }
        }
    }
    tracing::info!(
        adopted,
        removed = report.removed.len(),
        errors = report.errors.len(),
        "Docker adopt & sync done"
    );
}

/// The periodic (and on every events resync) re-list: environments whose container is gone or
/// stopped leave the pool; containers of this owner the pool does not hold are removed.
async fn reconcile(
    control: &Control<Runtimes>,
    side: &DockerSide,
    rt: &DockerRuntime,
    expected: &HashMap<String, String>,
) {
    if control.is_shutting_down() {
        return;
    }
    let listed_at = Instant::now();
    let listed = match rt.list_managed().await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "re-listing containers failed");
            return;
        }
    };
    // Taken after the listing, so a container that became an environment meanwhile is not a
    // stranger; only those known before the listing can be missing from it.
    let known_now = side.known.borrow().clone();
    let known: HashSet<String> = known_now.keys().cloned().collect();
    let diff = esb_docker::reconcile::diff(&known, &listed, expected);
    for id in diff.lost {
        if let Some((_, since)) = known_now.get(&id)
            && *since < listed_at
        {
            retire(control, side, &id, "container gone or stopped".into());
        }
    }
    for c in diff.remove.iter().chain(&diff.adoptable) {
        // Kept containers leave `known` at shutdown: they are not strangers.
        if control.is_shutting_down() {
            return;
        }
        tracing::info!(container = %short(&c.id), name = %c.name, state = ?c.state, "removing a container the pool does not hold");
        if let Err(e) = rt.stop(&c.id).await {
            tracing::warn!(container = %short(&c.id), error = %e, "could not remove container");
        }
    }
}
