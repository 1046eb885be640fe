//! How esb talks to Docker and how hard its function containers are locked down.

use std::path::PathBuf;
use std::time::Duration;

/// Everything the Docker runtime is configured with. Trusted input only: containers are built
/// from these and the function specs, never from anything a caller sends.
#[derive(Clone, Debug, PartialEq)]
pub struct DockerOptions {
    /// The engine: `unix:///var/run/docker.sock` (default), `tcp://...`, `http://...`.
    pub host: String,
    /// This esb instance's id, the `esb.owner` label. Adoption, reaping and shutdown act only on
    /// containers carrying exactly this owner, so two esb instances can share one engine.
    pub owner: String,
    /// The static `esb-rie` on the Docker host, bind-mounted read-only into injected-RIE
    /// containers. Required only when some function uses `rie: injected`.
    pub rie_binary: Option<PathBuf>,
    /// A Docker network to attach containers to; esb then reaches them by container IP. `None`
    /// publishes the RIE port on `127.0.0.1` only, for an esb running on the host.
    pub network: Option<String>,
    pub hardening: Hardening,
    /// What every function sees besides its own environment.
    pub platform: PlatformEnv,
    /// Deadline for one Docker API call to answer (response headers). Whole seconds: bollard
    /// counts in seconds, so it is rounded up (at least 1 s).
    pub api_timeout: Duration,
    /// Deadline for `docker load` of one preload archive (whole seconds, like `api_timeout`).
    pub load_timeout: Duration,
    /// How long a started container may take until its RIE answers.
    pub ready_timeout: Duration,
    /// On shutdown, leave the containers running for the next esb to adopt.
    pub keep_on_shutdown: bool,
}

impl Default for DockerOptions {
    fn default() -> Self {
        Self {
            host: "unix:///var/run/docker.sock".into(),
            owner: "esb".into(),
            rie_binary: None,
            network: None,
            hardening: Hardening::default(),
            platform: PlatformEnv::default(),
            api_timeout: Duration::from_secs(10),
            load_timeout: Duration::from_secs(1800),
            ready_timeout: Duration::from_secs(10),
            keep_on_shutdown: false,
        }
    }
}

/// Limits and privileges of function containers (OWASP Docker rules 3, 4, 7, 8).
#[derive(Clone, Debug, PartialEq)]
pub struct Hardening {
    /// `user:group` the container runs as; `None` keeps the image's user. Lambda runs
    /// functions as a non-root user, so images made for it work unprivileged.
    pub user: Option<String>,
    /// CPU quota in billionths of a CPU (`--cpus`); 0 leaves CPU unlimited.
    pub nano_cpus: i64,
    /// `--pids-limit`: Lambda allows 1024 processes and threads per environment.
    pub pids_limit: i64,
    /// `--ulimit nofile`: Lambda's 1024.
    pub nofile: i64,
    /// Size of the `/tmp` tmpfs in MB (Lambda's default ephemeral storage is 512 MB).
    pub tmp_size_mb: u32,
    /// Mount `/tmp` `noexec`. Off by default: Lambda lets functions run and `dlopen` files they
    /// unpack into /tmp (JNI libraries, downloaded tools), and the root is read-only anyway.
    pub tmp_noexec: bool,
    /// json-file log rotation, so a chatty function cannot fill the disk.
    pub log_max_size: String,
    pub log_max_files: u32,
    /// Run Docker's init as PID 1 to reap zombies and forward signals.
    pub init: bool,
}

impl Default for Hardening {
    fn default() -> Self {
        Self {
            user: Some("1000:1000".into()),
            nano_cpus: 1_000_000_000,
            pids_limit: 1024,
            nofile: 1024,
            tmp_size_mb: 512,
            tmp_noexec: false,
            log_max_size: "10m".into(),
            log_max_files: 3,
            init: true,
        }
    }
}

/// Values every function container gets in its environment, from esb's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct PlatformEnv {
    pub region: String,
    pub account_id: String,
    /// `AWS_ENDPOINT_URL_S3`, `..._DYNAMODB`, `..._LAMBDA`: esb's data services and Invoke API.
    pub s3_endpoint: Option<String>,
    pub dynamodb_endpoint: Option<String>,
    pub lambda_endpoint: Option<String>,
}

impl Default for PlatformEnv {
    fn default() -> Self {
        Self {
            region: "ap-northeast-1".into(),
            account_id: "123456789012".into(),
            s3_endpoint: None,
            dynamodb_endpoint: None,
            lambda_endpoint: None,
        }
    }
}
