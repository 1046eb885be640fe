//! Support for esb-docker's real-Docker tests: engine discovery (skip, or fail under
//! `ESB_REQUIRE_DOCKER=1`), static test binaries, FROM-scratch test images imported through the
//! API, and drop guards that remove every container and image a test made, even when it fails.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use bollard::Docker;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, ListContainersOptionsBuilder, ListImagesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
};
use esb_docker::{DockerOptions, DockerRuntime};
use esb_model::{FunctionName, FunctionSpec, RieSource, RuntimeSpec, ScalingSpec};
use futures_util::StreamExt;

/// Label on every test image, valued with the run id.
pub const TEST_RUN_LABEL: &str = "esb.test-run";

/// The engine the tests use: `DOCKER_HOST` when it names a Unix socket, else the default socket.
pub fn docker_host() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if h.starts_with("unix://") => h,
        _ => "unix:///var/run/docker.sock".to_owned(),
    }
}

/// The static `esb-rie` and `echo` for x86_64 Linux (`+crt-static`), built once per test
/// process into their own target triple directory so host builds are not disturbed.
pub fn static_bins() -> &'static (PathBuf, PathBuf) {
    static BINS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BINS.get_or_init(|| {
        let root = esb_testkit::workspace_root();
        let triple = "x86_64-unknown-linux-gnu";
        let script = root.join("scripts/build-static.sh");
        let dir = esb_testkit::target_dir().join(triple).join("release");
        if script.exists() {
            let out = Command::new("bash")
                .arg(&script)
                .env("CARGO_TARGET_DIR", esb_testkit::target_dir())
                .output()
                .expect("run build-static.sh");
            assert!(
                out.status.success(),
                "build-static.sh failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let out = Command::new(cargo)
                .current_dir(&root)
                .env("RUSTFLAGS", "-C target-feature=+crt-static")
                .args(["build", "--quiet", "--release", "--target", triple])
                .args(["-p", "esb-rie", "-p", "esb-echo"])
                .output()
                .expect("run cargo build");
            assert!(
                out.status.success(),
                "static build of esb-rie and echo failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let (rie, echo) = (dir.join("esb-rie"), dir.join("echo"));
        assert!(
            rie.exists() && echo.exists(),
            "static binaries missing in {}",
            dir.display()
        );
        (rie, echo)
    })
}

/// Whether a Docker engine answers. Without one the test is skipped, unless
/// `ESB_REQUIRE_DOCKER=1` (CI), where it fails.
pub async fn engine() -> Option<Docker> {
    let host = docker_host();
    let reachable = match Docker::connect_with_socket(
        host.trim_start_matches("unix://"),
        10,
        bollard::API_DEFAULT_VERSION,
    ) {
        Ok(d) => match tokio::time::timeout(Duration::from_secs(10), d.ping()).await {
            Ok(Ok(_)) => Ok(d),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("ping timed out".to_owned()),
        },
        Err(e) => Err(e.to_string()),
    };
    match reachable {
        Ok(d) => Some(d),
        Err(e) if std::env::var("ESB_REQUIRE_DOCKER").as_deref() == Ok("1") => {
            panic!("ESB_REQUIRE_DOCKER=1 but no Docker engine answers at {host}: {e}")
        }
        Err(e) => {
            eprintln!(
                "SKIPPED: no Docker engine at {host} ({e}); set ESB_REQUIRE_DOCKER=1 to fail instead"
            );
            None
        }
    }
}

/// One test's namespace in the engine: its owner id, and everything labelled with it. Dropping
/// it removes every container of that owner and every image of that run, pass or fail.
pub struct TestRun {
    pub id: String,
    docker: Docker,
}

impl TestRun {
    pub fn new(docker: &Docker) -> Self {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let nanos = UNIX_EPOCH.elapsed().unwrap_or_default().subsec_nanos();
        let id = format!(
            "esbtest{}x{}x{:x}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            nanos & 0xfff
        );
        Self {
            id,
            docker: docker.clone(),
        }
    }

    /// Options for a runtime owning this run's containers.
    pub fn options(&self) -> DockerOptions {
        DockerOptions {
            host: docker_host(),
            owner: self.id.clone(),
            rie_binary: Some(static_bins().0.clone()),
            ready_timeout: Duration::from_secs(15),
            ..Default::default()
        }
    }

    pub async fn runtime(&self) -> DockerRuntime {
        DockerRuntime::connect(self.options())
            .await
            .expect("connect to Docker")
    }

    /// A tag for an image of this run.
    pub fn tag(&self, what: &str) -> String {
        format!("esb-test-{what}:{}", self.id)
    }

    /// Imports a FROM-scratch image (`docker import`) holding `files` (path in image, host
    /// file, mode 0755), with the given entrypoint and command, labelled with this run.
    pub async fn import_image(
        &self,
        what: &str,
        files: &[(&str, &Path)],
        entrypoint: &[&str],
        cmd: &[&str],
    ) -> String {
        let mut tar = tar::Builder::new(Vec::new());
        for (inside, host) in files {
            let data = std::fs::read(host).unwrap_or_else(|e| panic!("{}: {e}", host.display()));
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, inside.trim_start_matches('/'), data.as_slice())
                .unwrap();
        }
        let rootfs = tar.into_inner().unwrap();
        let tag = self.tag(what);
        let (repo, t) = tag.split_once(':').unwrap();
        let json = |v: &[&str]| serde_json::to_string(v).unwrap();
        let mut changes = vec![format!("LABEL {TEST_RUN_LABEL}={}", self.id)];
        if !entrypoint.is_empty() {
            changes.push(format!("ENTRYPOINT {}", json(entrypoint)));
        }
        if !cmd.is_empty() {
            changes.push(format!("CMD {}", json(cmd)));
        }
        let opts = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(repo)
            .tag(t)
            .changes(changes)
            .build();
        let mut out =
            self.docker
                .create_image(Some(opts), Some(bollard::body_full(rootfs.into())), None);
        while let Some(item) = out.next().await {
            item.unwrap_or_else(|e| panic!("docker import {tag}: {e}"));
        }
        tag
    }

    /// The echo function under the injected RIE: the image holds only the static echo as
    /// `/var/task/bootstrap`, its command.
    pub async fn echo_image(&self) -> String {
        let (_, echo) = static_bins();
        self.import_image(
            "echo",
            &[("/var/task/bootstrap", echo)],
            &[],
            &["/var/task/bootstrap"],
        )
        .await
    }

    /// The echo function behind AWS's real RIE baked in as the image's entrypoint.
    pub async fn aws_rie_image(&self) -> String {
        let (_, echo) = static_bins();
        let aws = esb_testkit::install::aws_rie();
        self.import_image(
            "awsrie",
            &[
                ("/var/task/bootstrap", echo),
                ("/usr/local/bin/aws-lambda-rie", &aws),
            ],
            &["/usr/local/bin/aws-lambda-rie"],
            &["/var/task/bootstrap"],
        )
        .await
    }

    /// A bridge network of this run with inter-container traffic off (what esb recommends for
    /// function containers). Returns its name.
    pub async fn network(&self) -> String {
        let name = format!("esb-test-net-{}", self.id);
        self.docker
            .create_network(bollard::models::NetworkCreateRequest {
                name: name.clone(),
                driver: Some("bridge".into()),
                options: Some(HashMap::from([(
                    "com.docker.network.bridge.enable_icc".to_owned(),
                    "false".to_owned(),
                )])),
                labels: Some(HashMap::from([(
                    TEST_RUN_LABEL.to_owned(),
                    self.id.clone(),
                )])),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("create network {name}: {e}"));
        name
    }

    async fn cleanup(docker: Docker, id: String) {
        let owner = format!("esb.owner={id}");
        let filters = HashMap::from([("label", vec![owner.as_str()])]);
        if let Ok(list) = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
        {
            for c in list {
                if let Some(cid) = c.id {
                    let _ = docker
                        .remove_container(
                            &cid,
                            Some(
                                RemoveContainerOptionsBuilder::default()
                                    .force(true)
                                    .v(true)
                                    .build(),
                            ),
                        )
                        .await;
                }
            }
        }
        let run = format!("{TEST_RUN_LABEL}={id}");
        let filters = HashMap::from([("label", vec![run.as_str()])]);
        if let Ok(nets) = docker
            .list_networks(Some(
                bollard::query_parameters::ListNetworksOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
        {
            for n in nets {
                if let Some(nid) = n.id {
                    let _ = docker.remove_network(&nid).await;
                }
            }
        }
        if let Ok(images) = docker
            .list_images(Some(
                ListImagesOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
        {
            for img in images {
                let _ = docker
                    .remove_image(
                        &img.id,
                        Some(RemoveImageOptionsBuilder::default().force(true).build()),
                        None,
                    )
                    .await;
            }
        }
    }
}

impl Drop for TestRun {
    fn drop(&mut self) {
        let (docker, id) = (self.docker.clone(), self.id.clone());
        // Drop may run inside the test's runtime, which cannot be blocked on: clean up from a
        // thread with its own.
        let done = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime")
                .block_on(TestRun::cleanup(docker, id));
        })
        .join();
        if done.is_err() {
            eprintln!("cleanup of test run {} panicked", self.id);
        }
    }
}

/// A Docker function spec for tests.
pub fn function(name: &str, image: &str, rie: RieSource) -> FunctionSpec {
    FunctionSpec {
        name: FunctionName::new(name),
        runtime: RuntimeSpec::Docker {
            image: image.to_owned(),
            rie,
        },
        timeout: Duration::from_secs(10),
        memory_size: 128,
        environment: BTreeMap::from([("GREETING".to_owned(), "hello".to_owned())]),
        scaling: ScalingSpec::default(),
        schedules: vec![],
    }
}

/// POSTs an event to the RIE at `addr` (blocking client on the blocking pool).
pub async fn invoke(addr: std::net::SocketAddr, event: &str) -> esb_testkit::http::Response {
    let event = event.as_bytes().to_vec();
    tokio::task::spawn_blocking(move || {
        let mut c = esb_testkit::http::Client::connect_addr(addr).expect("connect to RIE");
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        c.post("/2015-03-31/functions/function/invocations", &[], &event)
            .expect("invoke")
    })
    .await
    .unwrap()
}
