//! [`DockerRuntime`]: cold starts, stops, listing, adoption and shutdown through bollard.
//!
//! Every method must run on the control plane's tokio thread (bollard needs a tokio context);
//! the data plane never calls this. Clones share one client and one bookkeeping table.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use bollard::Docker;
use bollard::models::{ContainerInspectResponse, ContainerSummary, ContainerSummaryStateEnum};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
    WaitContainerOptionsBuilder,
};
use esb_model::{FunctionName, FunctionSpec, RuntimeSpec};
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::error::DockerError;
use crate::options::DockerOptions;
use crate::ready;
use crate::spec::{
    self, ContainerSpec, ImageDefaults, LABEL_CONFIG_HASH, LABEL_FUNCTION, LABEL_INSTANCE,
    LABEL_MANAGED, LABEL_OWNER, RIE_PORT, RIE_PORT_KEY,
};

/// A container whose RIE answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Started {
    pub container_id: String,
    /// Where to send invocations: `127.0.0.1:<published port>` or `<container IP>:8080`.
    pub addr: SocketAddr,
    pub timings: StartTimings,
}

/// Where a cold start's time went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StartTimings {
    /// `docker image inspect` (the image's entrypoint and command, and whether it exists).
    pub inspect_image: Duration,
    pub create: Duration,
    /// `docker start` plus reading back the published port.
    pub start: Duration,
    /// From started until the RIE answered.
    pub ready: Duration,
}

impl StartTimings {
    pub fn total(&self) -> Duration {
        self.inspect_image + self.create + self.start + self.ready
    }
}

/// How a container ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    pub exit_code: Option<i64>,
    /// The kernel killed it at its memory limit (Lambda's `Runtime.OutOfMemory`).
    pub oom_killed: bool,
    /// It was removed (behind esb's back) before its exit could be read.
    pub removed: bool,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.oom_killed {
            f.write_str("OOMKilled")?;
            if let Some(c) = self.exit_code {
                write!(f, " (exit status {c})")?;
            }
            Ok(())
        } else if let Some(c) = self.exit_code {
            write!(f, "exit status {c}")
        } else if self.removed {
            f.write_str("container removed")
        } else {
            f.write_str("exited")
        }
    }
}

/// The lifecycle state Docker reports for a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Removing,
    Dead,
    Other,
}

impl From<Option<ContainerSummaryStateEnum>> for ContainerState {
    fn from(s: Option<ContainerSummaryStateEnum>) -> Self {
        use ContainerSummaryStateEnum as S;
        match s {
            Some(S::CREATED) => Self::Created,
            Some(S::RUNNING) => Self::Running,
            Some(S::PAUSED) => Self::Paused,
            Some(S::RESTARTING) => Self::Restarting,
            Some(S::EXITED) => Self::Exited,
            Some(S::REMOVING) => Self::Removing,
            Some(S::DEAD) => Self::Dead,
            _ => Self::Other,
        }
    }
}

/// One container carrying this esb's owner label, as `docker ps -a` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedContainer {
    pub id: String,
    pub name: String,
    /// From the labels; `None` when a label is missing or unreadable (then it is not trusted).
    pub function: Option<FunctionName>,
    pub instance: Option<u64>,
    pub config_hash: Option<String>,
    pub state: ContainerState,
    pub image_id: Option<String>,
    /// Where its RIE would answer, if it has an address.
    pub addr: Option<SocketAddr>,
    /// A cold start of this esb is still working on it: not a stranger, not yet an environment.
    pub starting: bool,
}

/// A running, current, answering container taken over as an idle environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adopted {
    pub function: FunctionName,
    pub instance: u64,
    pub container_id: String,
    pub addr: SocketAddr,
}

/// Why adoption removed a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoveReason {
    /// Not running (created but never started after a crash, exited, dead, paused, ...).
    NotRunning(ContainerState),
    /// No function of that name is configured for Docker any more (or the labels are unreadable).
    UnknownFunction,
    /// The function's configuration changed since the container was made.
    StaleConfig,
    /// The function's image tag now points at another image.
    StaleImage,
    /// Running, but its RIE does not answer.
    Unhealthy,
}

/// What adoption found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdoptReport {
    pub adopted: Vec<Adopted>,
    pub removed: Vec<(ManagedContainer, RemoveReason)>,
    /// Removals that failed; the next sync tries again.
    pub errors: Vec<String>,
}

struct Inner {
    docker: Docker,
    opts: DockerOptions,
    /// Different per esb process, so container names never collide with a predecessor's.
    nonce: String,
    /// Size and mtime of the injected esb-rie, part of every config hash.
    rie_fingerprint: String,
    /// Names of containers a cold start is working on.
    starting: Mutex<HashSet<String>>,
    /// Set by a `keep_on_shutdown` shutdown: dropped handles leave their containers running.
    keeping: AtomicBool,
}

/// The Docker runtime. Cheap to clone; all clones share the client.
#[derive(Clone)]
pub struct DockerRuntime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRuntime")
            .field("host", &self.inner.opts.host)
            .field("owner", &self.inner.opts.owner)
            .finish_non_exhaustive()
    }
}

impl DockerRuntime {
    /// Connects to the engine and checks it answers. Fails fast with
    /// [`DockerError::Unavailable`] when it does not; the caller retries with backoff.
    pub async fn connect(mut opts: DockerOptions) -> Result<Self, DockerError> {
        // bollard counts its request timeout in whole seconds (a 500 ms one would be 0 s and
        // fail every call at once), so round the deadlines up to whole seconds, at least one.
        opts.api_timeout = whole_secs(opts.api_timeout);
        opts.load_timeout = whole_secs(opts.load_timeout);
        let rie_fingerprint = match &opts.rie_binary {
            Some(path) => fingerprint(path)?,
            None => String::new(),
        };
        let host = opts.host.clone();
        let secs = opts.api_timeout.as_secs();
        let docker = if let Some(path) = host.strip_prefix("unix://") {
            // connect_with_socket checks the path exists: a clear error instead of a hang.
            Docker::connect_with_socket(path, secs, bollard::API_DEFAULT_VERSION)
        } else {
            Docker::connect_with_host(&host)
        }
        .map_err(|e| DockerError::from_bollard("connect", &host, opts.api_timeout, e))?
        .with_timeout(opts.api_timeout);
        let nonce = format!(
            "{:x}",
            (UNIX_EPOCH.elapsed().unwrap_or_default().as_nanos() as u64
                ^ u64::from(std::process::id()))
                & 0xff_ffff
        );
        let rt = DockerRuntime {
            inner: Arc::new(Inner {
                docker,
                opts,
                nonce,
                rie_fingerprint,
                starting: Mutex::new(HashSet::new()),
                keeping: AtomicBool::new(false),
            }),
        };
        let version = rt
            .inner
            .docker
            .version()
            .await
            .map_err(|e| rt.err("version", e))?;
        tracing::info!(
            host = %rt.inner.opts.host,
            engine = version.version.as_deref().unwrap_or("?"),
            api = version.api_version.as_deref().unwrap_or("?"),
            owner = %rt.inner.opts.owner,
            "connected to the Docker engine"
        );
        Ok(rt)
    }

    pub fn options(&self) -> &DockerOptions {
        &self.inner.opts
    }

    /// The bollard client, for callers that need an API this runtime does not wrap (tests).
    pub fn client(&self) -> &Docker {
        &self.inner.docker
    }

    /// Whether the engine answers right now.
    pub async fn ping(&self) -> Result<(), DockerError> {
        self.inner
            .docker
            .ping()
            .await
            .map(drop)
            .map_err(|e| self.err("ping", e))
    }

    /// The spec of environment `instance` of `f` (`provisioned`: pre-warmed for
    /// `min_capacity`, Lambda's `AWS_LAMBDA_INITIALIZATION_TYPE`).
    pub fn spec(
        &self,
        f: &FunctionSpec,
        instance: u64,
        provisioned: bool,
    ) -> Result<ContainerSpec, DockerError> {
        ContainerSpec::for_function(
            f,
            instance,
            provisioned,
            &self.inner.opts,
            &self.inner.rie_fingerprint,
        )
    }

    /// The config hash containers of `f` must carry to be adopted; `None` for non-Docker functions.
    pub fn config_hash(&self, f: &FunctionSpec) -> Option<String> {
        spec::config_hash(f, &self.inner.opts, &self.inner.rie_fingerprint).ok()
    }

    /// Checks that every Docker function's image is present, so a missing one is reported at
    /// start, naming the image, rather than at the first request.
    pub async fn check_images(
        &self,
        functions: &[FunctionSpec],
    ) -> Vec<(FunctionName, DockerError)> {
        let mut out = Vec::new();
        for f in functions {
            if let RuntimeSpec::Docker { image, .. } = &f.runtime
                && let Err(e) = self.image_defaults(image).await
            {
                out.push((f.name.clone(), e));
            }
        }
        out
    }

    /// The image's entrypoint and command; [`DockerError::ImageMissing`] when it is absent.
    pub async fn image_defaults(&self, image: &str) -> Result<ImageDefaults, DockerError> {
        let info = self
            .inner
            .docker
            .inspect_image(image)
            .await
            .map_err(|e| match e {
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                } => DockerError::ImageMissing {
                    image: image.to_owned(),
                },
                e => self.err("inspect image", e),
            })?;
        let cfg = info.config.unwrap_or_default();
        Ok(ImageDefaults {
            entrypoint: cfg.entrypoint.unwrap_or_default(),
            cmd: cfg.cmd.unwrap_or_default(),
        })
    }

    async fn image_id(&self, image: &str) -> Option<String> {
        self.inner.docker.inspect_image(image).await.ok()?.id
    }

    /// Cold start: create and start a hardened container for `spec` and wait until its RIE
    /// answers. A container that exits or never answers is removed and reported; so is one
    /// whose start is abandoned (the future dropped).
    pub async fn start(&self, spec: &ContainerSpec) -> Result<Started, DockerError> {
        let docker = &self.inner.docker;
        let opts = &self.inner.opts;
        let mut timings = StartTimings::default();

        let t = Instant::now();
        let image = self.image_defaults(&spec.image).await?;
        timings.inspect_image = t.elapsed();

        let body = spec::create_body(spec, &image, opts)?;
        let name = spec::container_name(spec, &opts.owner, &self.inner.nonce);
        let _starting = StartingMark::new(self, &name);

        let t = Instant::now();
        let created = docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                body,
            )
            .await
            .map_err(|e| match e {
                // The image vanished between inspect and create.
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                } => DockerError::ImageMissing {
                    image: spec.image.clone(),
                },
                e => self.err("create container", e),
            })?;
        timings.create = t.elapsed();
        let mut guard = RemoveOnDrop::new(docker.clone(), created.id.clone());
        let id = created.id;

        let t = Instant::now();
        docker
            .start_container(&id, None::<StartContainerOptions>)
            .await
            .map_err(|e| self.err("start container", e))?;
        let info = docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
            .map_err(|e| self.err("inspect container", e))?;
        // None also when it already exited: Docker drops the port bindings of a stopped container.
        let addr = rie_addr(&info, opts.network.as_deref());
        timings.start = t.elapsed();

        let t = Instant::now();
        let deadline = t + opts.ready_timeout;
        let ready = match addr {
            Some(addr) => {
                let exited = async {
                    let mut wait = docker.wait_container(
                        &id,
                        Some(
                            WaitContainerOptionsBuilder::default()
                                .condition("not-running")
                                .build(),
                        ),
                    );
                    match wait.next().await {
                        // A zero exit is Ok, a non-zero one is a DockerContainerWaitError: both mean exited.
                        Some(Ok(_))
                        | Some(Err(bollard::errors::Error::DockerContainerWaitError { .. })) => {}
                        // The wait itself failed (engine trouble): leave it to the readiness deadline.
                        _ => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    ok = ready::wait_ready(addr, deadline) => ok.then_some(addr),
                    () = exited => None,
                }
            }
            None => None,
        };
        timings.ready = t.elapsed();

        if let Some(addr) = ready {
            guard.disarm();
            tracing::debug!(function = %spec.function, instance = spec.instance, container = short(&id), %addr, ?timings, "container ready");
            return Ok(Started {
                container_id: id,
                addr,
                timings,
            });
        }

        // Why it failed: exited (maybe OOM-killed), or still running but silent.
        let state = docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
            .ok()
            .and_then(|i| i.state);
        let logs = self.logs_tail(&id, 20).await;
        let running = state.as_ref().and_then(|s| s.running).unwrap_or(false);
        guard.disarm();
        self.remove(&id).await;
        if running && addr.is_none() {
            return Err(DockerError::NoAddress {
                container_id: id,
                network: opts.network.clone(),
            });
        }
        if running {
            tracing::warn!(function = %spec.function, container = short(&id), "RIE never answered; container removed");
            Err(DockerError::NotReady {
                function: spec.function.clone(),
                container_id: id,
                waited: opts.ready_timeout,
                logs,
            })
        } else {
            let oom_killed = state.as_ref().and_then(|s| s.oom_killed).unwrap_or(false);
            if oom_killed {
                tracing::warn!(function = %spec.function, container = short(&id), "OOMKilled during start");
            }
            Err(DockerError::ExitedDuringStart {
                function: spec.function.clone(),
                container_id: id,
                exit_code: state.as_ref().and_then(|s| s.exit_code),
                oom_killed,
                logs,
            })
        }
    }

    /// Stops and removes a container. A container that is already gone is not an error (it was
    /// removed behind esb's back, or by an earlier attempt).
    pub async fn stop(&self, container_id: &str) -> Result<(), DockerError> {
        match self
            .inner
            .docker
            .remove_container(
                container_id,
                Some(
                    RemoveContainerOptionsBuilder::default()
                        .force(true)
                        .v(true)
                        .build(),
                ),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            // 409 "removal already in progress": someone else is removing it.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                message,
            }) if message.contains("in progress") => Ok(()),
            Err(e) => Err(self.err("remove container", e)),
        }
    }

    /// Sends SIGTERM, gives the container `grace` to exit, then removes it (SIGKILL if needed).
    pub async fn stop_with_grace(
        &self,
        container_id: &str,
        grace: Duration,
    ) -> Result<(), DockerError> {
        let secs = i32::try_from(grace.as_millis().div_ceil(1000)).unwrap_or(i32::MAX);
        if secs > 0 {
            // The engine answers only after the grace period: the call needs a longer deadline.
            let docker = self
                .inner
                .docker
                .clone()
                .with_timeout(self.inner.opts.api_timeout + grace);
            let opts = bollard::query_parameters::StopContainerOptionsBuilder::default()
                .t(secs)
                .build();
            match docker.stop_container(container_id, Some(opts)).await {
                // 304: already stopped; 404: already gone.
                Ok(())
                | Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 304 | 404,
                    ..
                }) => {}
                Err(e) => {
                    tracing::debug!(container = short(container_id), error = %e, "graceful stop failed; forcing");
                }
            }
        }
        self.stop(container_id).await
    }

    /// Resolves when the container is no longer running, with how it ended. Cancel-safe, so
    /// the control loop can race it with a stop. If the engine cannot be asked (it restarts),
    /// it keeps trying with backoff: a lost engine is reported by the events stream instead.
    pub async fn wait_exit(&self, container_id: &str) -> Exit {
        let docker = &self.inner.docker;
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut wait = docker.wait_container(
                container_id,
                Some(
                    WaitContainerOptionsBuilder::default()
                        .condition("not-running")
                        .build(),
                ),
            );
            match wait.next().await {
                Some(Ok(_))
                | Some(Err(bollard::errors::Error::DockerContainerWaitError { .. })) => break,
                Some(Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    ..
                })) => {
                    return Exit {
                        exit_code: None,
                        oom_killed: false,
                        removed: true,
                    };
                }
                _ => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        match docker
            .inspect_container(container_id, None::<InspectContainerOptions>)
            .await
        {
            Ok(info) => {
                let state = info.state.unwrap_or_default();
                let oom_killed = state.oom_killed.unwrap_or(false);
                if oom_killed {
                    tracing::warn!(container = short(container_id), "container OOMKilled");
                }
                Exit {
                    exit_code: state.exit_code,
                    oom_killed,
                    removed: false,
                }
            }
            Err(_) => Exit {
                exit_code: None,
                oom_killed: false,
                removed: true,
            },
        }
    }

    async fn remove(&self, id: &str) {
        if let Err(e) = self.stop(id).await {
            tracing::warn!(container = short(id), error = %e, "could not remove container");
        }
    }

    /// The last `lines` lines a container printed (stdout and stderr), for error reports.
    pub async fn logs_tail(&self, container_id: &str, lines: usize) -> String {
        let mut out = String::new();
        let mut logs = self.inner.docker.logs(
            container_id,
            Some(
                LogsOptionsBuilder::default()
                    .stdout(true)
                    .stderr(true)
                    .tail(&lines.to_string())
                    .build(),
            ),
        );
        let read = async {
            while let Some(Ok(chunk)) = logs.next().await {
                out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                if out.len() > 8192 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(self.inner.opts.api_timeout, read).await;
        out
    }

    /// Every container (running or not) labelled with this esb's owner id.
    pub async fn list_managed(&self) -> Result<Vec<ManagedContainer>, DockerError> {
        let owner = format!("{LABEL_OWNER}={}", self.inner.opts.owner);
        let managed = format!("{LABEL_MANAGED}=true");
        let filters = HashMap::from([("label", vec![managed.as_str(), owner.as_str()])]);
        let list = self
            .inner
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(|e| self.err("list containers", e))?;
        let starting = self.lock_starting().clone();
        Ok(list
            .into_iter()
            .filter_map(|c| managed_from_summary(c, self.inner.opts.network.as_deref(), &starting))
            .collect())
    }

    /// "Adopt & Sync" at start: running containers of a configured Docker function with the
    /// current config hash and image, whose RIE answers, are adopted as idle environments;
    /// every other container of this owner is removed. Foreign owners are never touched.
    pub async fn adopt(&self, functions: &[FunctionSpec]) -> Result<AdoptReport, DockerError> {
        let mut expected: HashMap<&str, (String, Option<String>)> = HashMap::new();
        for f in functions {
            if let (RuntimeSpec::Docker { image, .. }, Some(hash)) =
                (&f.runtime, self.config_hash(f))
            {
                let image_id = self.image_id(image).await;
                expected.insert(f.name.as_str(), (hash, image_id));
            }
        }
        let mut report = AdoptReport::default();
        for c in self.list_managed().await? {
            if c.starting {
                continue;
            }
            let verdict = match (&c.function, &c.instance, c.state) {
                (_, _, state) if state != ContainerState::Running => {
                    Err(RemoveReason::NotRunning(state))
                }
                (Some(function), Some(instance), _) => match expected.get(function.as_str()) {
                    None => Err(RemoveReason::UnknownFunction),
                    Some((hash, _)) if c.config_hash.as_deref() != Some(hash.as_str()) => {
                        Err(RemoveReason::StaleConfig)
                    }
                    Some((_, Some(image_id)))
                        if c.image_id.as_deref() != Some(image_id.as_str()) =>
                    {
                        Err(RemoveReason::StaleImage)
                    }
                    Some(_) => match c.addr {
                        Some(addr) if ready::probe(addr, Duration::from_secs(2)).await => {
                            Ok(Adopted {
                                function: function.clone(),
                                instance: *instance,
                                container_id: c.id.clone(),
                                addr,
                            })
                        }
                        _ => Err(RemoveReason::Unhealthy),
                    },
                },
                _ => Err(RemoveReason::UnknownFunction),
            };
            match verdict {
                Ok(a) => {
                    tracing::info!(function = %a.function, instance = a.instance, container = short(&a.container_id), addr = %a.addr, "adopted container");
                    report.adopted.push(a);
                }
                Err(reason) => {
                    tracing::info!(container = short(&c.id), name = %c.name, ?reason, "removing container at sync");
                    match self.stop(&c.id).await {
                        Ok(()) => report.removed.push((c, reason)),
                        Err(e) => report.errors.push(format!("{}: {e}", c.name)),
                    }
                }
            }
        }
        Ok(report)
    }

    /// Removes every container of this owner. Returns how many were removed.
    pub async fn remove_owned(&self) -> Result<usize, DockerError> {
        let mut n = 0;
        for c in self.list_managed().await? {
            self.stop(&c.id).await?;
            n += 1;
        }
        Ok(n)
    }

    /// At shutdown: remove this owner's containers unless configured to keep them for adoption
    /// (then dropped [`crate::Container`] handles leave theirs running too).
    pub async fn shutdown(&self) -> Result<usize, DockerError> {
        if self.inner.opts.keep_on_shutdown {
            self.inner.keeping.store(true, Ordering::Relaxed);
            tracing::info!("keeping containers for the next start to adopt");
            return Ok(0);
        }
        // Environments are stopped one by one before this; the sweep catches what escaped them
        // (a start still in flight), so 0 is the usual, healthy answer.
        let n = self.remove_owned().await?;
        tracing::info!(
            leftovers_removed = n,
            "no container of this esb is left running"
        );
        Ok(n)
    }

    /// Whether a `keep_on_shutdown` shutdown has begun.
    pub(crate) fn keeping(&self) -> bool {
        self.inner.keeping.load(Ordering::Relaxed)
    }

    pub(crate) fn err(&self, op: &'static str, e: bollard::errors::Error) -> DockerError {
        DockerError::from_bollard(op, &self.inner.opts.host, self.inner.opts.api_timeout, e)
    }

    fn lock_starting(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.inner
            .starting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// Marks a container name as "being started" for as long as the cold start runs.
struct StartingMark<'a> {
    rt: &'a DockerRuntime,
    name: String,
}

impl<'a> StartingMark<'a> {
    fn new(rt: &'a DockerRuntime, name: &str) -> Self {
        rt.lock_starting().insert(name.to_owned());
        Self {
            rt,
            name: name.to_owned(),
        }
    }
}

impl Drop for StartingMark<'_> {
    fn drop(&mut self) {
        self.rt.lock_starting().remove(&self.name);
    }
}

/// Removes a created container if its cold start does not finish (an error, or the start
/// future dropped): no half-started container outlives its request.
struct RemoveOnDrop {
    docker: Docker,
    id: Option<String>,
}

impl RemoveOnDrop {
    fn new(docker: Docker, id: String) -> Self {
        Self {
            docker,
            id: Some(id),
        }
    }

    fn disarm(&mut self) {
        self.id = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                container = short(&id),
                "cannot remove an abandoned container outside tokio; the next sync will"
            );
            return;
        };
        let docker = self.docker.clone();
        handle.spawn(async move {
            let opts = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
            if let Err(e) = docker.remove_container(&id, Some(opts)).await {
                tracing::warn!(container = short(&id), error = %e, "could not remove an abandoned container");
            }
        });
    }
}

fn whole_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_millis().div_ceil(1000).max(1) as u64)
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// `size:mtime` of a file, so a rebuilt esb-rie changes the config hash.
fn fingerprint(path: &std::path::Path) -> Result<String, DockerError> {
    let meta = std::fs::metadata(path).map_err(|e| DockerError::RieBinary {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if !meta.is_file() {
        return Err(DockerError::RieBinary {
            path: path.to_owned(),
            reason: "not a file".into(),
        });
    }
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    Ok(format!("{}:{}", meta.len(), mtime.as_nanos()))
}

/// Where a started container's RIE answers: the published loopback port, or its IP on the
/// configured network.
fn rie_addr(info: &ContainerInspectResponse, network: Option<&str>) -> Option<SocketAddr> {
    let ns = info.network_settings.as_ref()?;
    match network {
        None => {
            let binding = ns.ports.as_ref()?.get(RIE_PORT_KEY)?.as_ref()?.first()?;
            let port = binding.host_port.as_deref()?.parse::<u16>().ok()?;
            Some(SocketAddr::from(([127, 0, 0, 1], port)))
        }
        Some(net) => {
            let ip = ns.networks.as_ref()?.get(net)?.ip_address.as_deref()?;
            Some(SocketAddr::new(ip.parse::<IpAddr>().ok()?, RIE_PORT))
        }
    }
}

fn managed_from_summary(
    c: ContainerSummary,
    network: Option<&str>,
    starting: &HashSet<String>,
) -> Option<ManagedContainer> {
    let id = c.id?;
    let labels = c.labels.unwrap_or_default();
    let name = c
        .names
        .as_ref()
        .and_then(|n| n.first())
        .map(|n| n.trim_start_matches('/').to_owned())
        .unwrap_or_default();
    let addr = match network {
        None => c.ports.as_ref().and_then(|ports| {
            ports
                .iter()
                .find(|p| p.private_port == RIE_PORT && p.public_port.is_some())
                .and_then(|p| p.public_port)
                .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
        }),
        Some(net) => c
            .network_settings
            .as_ref()
            .and_then(|ns| ns.networks.as_ref())
            .and_then(|n| n.get(net))
            .and_then(|e| e.ip_address.as_deref())
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, RIE_PORT)),
    };
    Some(ManagedContainer {
        starting: starting.contains(&name),
        id,
        name,
        function: labels
            .get(LABEL_FUNCTION)
            .filter(|f| !f.is_empty())
            .map(|f| FunctionName::new(f.as_str())),
        instance: labels.get(LABEL_INSTANCE).and_then(|i| i.parse().ok()),
        config_hash: labels.get(LABEL_CONFIG_HASH).cloned(),
        state: c.state.into(),
        image_id: c.image_id,
        addr,
    })
}
