//! The Docker runtime of esb's control plane: function environments as hardened containers.
//!
//! Runs only on the control plane's tokio thread (bollard needs tokio); the monoio data plane
//! never links it. What it does:
//! - **Cold start** ([`DockerRuntime::start`]): create and start a container from the
//!   function's image with Lambda's environment, memory = swap = `memory_size`, CPU/pids/nofile
//!   limits, `cap-drop ALL`, `no-new-privileges`, a read-only root with a size-capped `/tmp`,
//!   capped logs and esb's labels; reach it on `127.0.0.1:<published>` or its IP on a configured
//!   network; wait until its RIE answers HTTP. A container that exits or stays silent is
//!   removed and reported with its last output.
//! - **RIE**: by default the static `esb-rie` is bind-mounted read-only and made the entrypoint,
//!   with the image's entrypoint and command as the bootstrap (what SAM CLI does); with
//!   `rie: image` the image's own RIE runs (the pool guarantees one lease per environment).
//! - **Adopt & Sync** ([`DockerRuntime::adopt`]) at start, **reconciliation** ([`reconcile::diff`]
//!   over [`DockerRuntime::list_managed`]) periodically, and the **events** stream
//!   ([`DockerRuntime::events`]) for deaths, OOM kills and removals behind esb's back.
//! - **Preloading** ([`DockerRuntime::preload`]) `docker load`s image archives at start.
//! - **Shutdown** ([`DockerRuntime::shutdown`]) removes this esb's containers, or keeps them.
//!
//! Every container carries `esb.managed`, `esb.function`, `esb.config-hash`, `esb.instance` and
//! `esb.owner`; esb only ever touches containers with its own owner label.
//!
//! Wiring into the control loop (its `Runtime`/`Instance` traits):
//! 1. at start: [`DockerRuntime::connect`] (retry with backoff on [`DockerError::Unavailable`]),
//!    [`DockerRuntime::preload`], [`DockerRuntime::check_images`] (log each missing image);
//! 2. subscribe [`DockerRuntime::events`] *before* adopting, then [`DockerRuntime::adopt`] and
//!    take each adopted container with [`DockerRuntime::own_adopted`];
//! 3. a cold start is `rt.spec(function, env_id, provisioned)` then
//!    [`DockerRuntime::start_owned`]: a [`Container`] has the address, a cancel-safe
//!    [`Container::exited`], [`Container::health`], [`Container::stop`], and is removed when
//!    dropped;
//! 4. on every [`ContainerEvent::Resync`] and on a timer, [`DockerRuntime::list_managed`] +
//!    [`reconcile::diff`]; `Died`/`OomKilled`/`Destroyed` events retire environments at once;
//! 5. at exit [`DockerRuntime::shutdown`] (removes, or keeps with `keep_on_shutdown`).

mod container;
mod error;
mod events;
mod options;
mod preload;
mod ready;
pub mod reconcile;
mod runtime;
pub mod spec;

pub use container::Container;
pub use error::{DockerError, Fault};
pub use events::{ContainerEvent, ContainerRef};
pub use options::{DockerOptions, Hardening, PlatformEnv};
pub use preload::{LoadedArchive, PreloadReport};
pub use ready::{probe, wait_ready};
pub use runtime::{
    AdoptReport, Adopted, ContainerState, DockerRuntime, Exit, ManagedContainer, RemoveReason,
    StartTimings, Started,
};
pub use spec::{ContainerSpec, ImageDefaults};
