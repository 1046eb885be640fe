//! More of the Docker runtime through the real `esb` binary: idle reaping, containers removed
//! behind esb's back, images carrying AWS's real RIE under load (injected esb-rie and `rie:
//! image`), and images preloaded from a `docker save` archive. Like `docker.rs`, each test
//! imports its own FROM-scratch image labelled with its run id, and drop guards remove its
//! containers and images. Skipped without a Docker engine, failed under `ESB_REQUIRE_DOCKER=1`.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::Value;
use support::{Esb, Response, Setup};

/// Label on the test images, valued with the run id (as in `docker.rs` and esb-docker's tests).
const TEST_RUN_LABEL: &str = "esb.test-run";

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("docker {args:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!(
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether an engine answers; `ESB_REQUIRE_DOCKER=1` turns "skip" into a failure.
fn engine_answers() -> bool {
    match docker(&["version", "--format", "{{.Server.Version}}"]) {
        Ok(_) => true,
        Err(e) if std::env::var("ESB_REQUIRE_DOCKER").as_deref() == Ok("1") => {
            panic!("ESB_REQUIRE_DOCKER=1 but no Docker engine answers: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: no Docker engine ({e}); set ESB_REQUIRE_DOCKER=1 to fail instead");
            false
        }
    }
}

/// The static `esb-rie` and `echo` (scripts/build-static.sh), built once per test process.
fn static_bins() -> &'static (PathBuf, PathBuf) {
    static BINS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BINS.get_or_init(|| {
        let root = esb_testkit::workspace_root();
        let out = Command::new("bash")
            .arg(root.join("scripts/build-static.sh"))
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", esb_testkit::target_dir())
            .output()
            .expect("run build-static.sh");
        assert!(
            out.status.success(),
            "build-static.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = esb_testkit::target_dir().join("x86_64-unknown-linux-gnu/release");
        (dir.join("esb-rie"), dir.join("echo"))
    })
}

/// One test's namespace in the engine: esb's owner label and the images tagged with its id.
/// Dropping it removes every container of that owner and every image it made.
struct Run {
    id: String,
    images: std::cell::RefCell<Vec<String>>,
}

impl Run {
    fn new() -> Option<Run> {
        if !engine_answers() {
            return None;
        }
        let nanos = UNIX_EPOCH.elapsed().unwrap_or_default().as_nanos();
        Some(Run {
            id: format!("esbit{}x{:x}", std::process::id(), nanos & 0xff_ffff),
            images: Default::default(),
        })
    }

    /// `docker import` of a FROM-scratch image holding `files` (path in image, host file) with
    /// the given Dockerfile `changes`, labelled with this run. Returns its tag.
    fn import(&self, what: &str, files: &[(&str, &Path)], changes: &[&str]) -> String {
        let tag = format!("esb-test-{what}:{}", self.id);
        let ctx = tempfile::tempdir().unwrap();
        for (inside, host) in files {
            let dest = ctx.path().join(inside.trim_start_matches('/'));
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(host, &dest).unwrap();
        }
        // The context folder first, then import's `-c` changes; the tar comes on stdin.
        let script = r#"dir="$1"; shift; tar -C "$dir" -cf - . | docker import "$@" - "$TAG""#;
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script).arg("sh").arg(ctx.path());
        cmd.arg("-c")
            .arg(format!("LABEL {TEST_RUN_LABEL}={}", self.id));
        for c in changes {
            cmd.arg("-c").arg(c);
        }
        let out = cmd.env("TAG", &tag).output().unwrap();
        assert!(
            out.status.success(),
            "docker import {tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.images.borrow_mut().push(tag.clone());
        tag
    }

    /// Only the static echo as `/var/task/bootstrap`, the image's command; esb injects esb-rie.
    fn echo_image(&self) -> String {
        let (_, echo) = static_bins();
        self.import(
            "echo",
            &[("/var/task/bootstrap", echo)],
            &[r#"CMD ["/var/task/bootstrap"]"#, "WORKDIR /var/task"],
        )
    }

    /// Containers of this run's owner by id, stopped ones too when `all`.
    fn containers(&self, all: bool) -> BTreeSet<String> {
        let owner = format!("label=esb.owner={}", self.id);
        let flags = if all { "-aq" } else { "-q" };
        docker(&["ps", flags, "--no-trunc", "--filter", &owner])
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// esb with one `echo` Docker function (`extra` = more YAML lines under it, 4-space
    /// indented) and `[docker]` lines.
    fn setup(&self, image: &str, extra: &str, docker_lines: &str) -> Setup {
        let (rie, _) = static_bins();
        Setup::new("epoll")
            .functions_yml(&format!(
                "functions:\n  echo:\n    runtime: docker\n    image: \"{image}\"\n    timeout: 10\n    memory_size: 128\n{extra}"
            ))
            .toml(&format!(
                "[docker]\nowner = \"{}\"\nrie_binary_static = \"{}\"\n{docker_lines}\n",
                self.id,
                rie.display()
            ))
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let owner = format!("label=esb.owner={}", self.id);
        if let Ok(ids) = docker(&["ps", "-aq", "--filter", &owner]) {
            for id in ids.lines() {
                let _ = docker(&["rm", "-f", "-v", id]);
            }
        }
        for image in self.images.borrow().iter() {
            let _ = docker(&["rmi", "-f", image]);
        }
    }
}

/// A request on a fresh connection that fails (panics) if no answer comes within 30 s.
fn call(esb: &Esb, path: &str) -> Response {
    let mut c = esb.connect();
    c.set_read_timeout(Duration::from_secs(30));
    c.request("GET", path, &[], b"")
}

/// The container (hostname) that answered.
fn answered_by(r: &Response) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["env"]["hostname"]
        .as_str()
        .unwrap()
        .trim()
        .to_owned()
}

fn short(id: &str) -> &str {
    &id[..12]
}

/// Polls `check` with a growing pause until it gives a value; panics after `timeout`.
fn poll<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(t) = check() {
            return t;
        }
        assert!(start.elapsed() < timeout, "{what}: not after {timeout:?}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

fn counter(pool: &Value, name: &str) -> u64 {
    pool["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name} in {pool}"))
}

fn environments(pool: &Value) -> usize {
    pool["environments"].as_array().map_or(0, Vec::len)
}

#[test]
fn an_idle_container_is_reaped_after_idle_timeout_but_a_busy_one_is_not() {
    let Some(run) = Run::new() else { return };
    let image = run.echo_image();
    let esb = Esb::start(&run.setup(
        &image,
        "    scaling: { max_capacity: 1, idle_timeout: 3 }\n",
        "",
    ));

    let host = answered_by(&call(&esb, "/public/echo"));
    let ids = run.containers(true);
    assert_eq!(ids.len(), 1, "{}", esb.log());
    assert_eq!(host, short(ids.first().unwrap()));
    let t = Instant::now();
    poll("container removed", Duration::from_secs(30), || {
        run.containers(true).is_empty().then_some(())
    });
    let reaped_after = t.elapsed();
    let pool = esb.admin_pool("echo");
    assert_eq!(counter(&pool, "reaps"), 1, "{pool:#}");
    assert_eq!(environments(&pool), 0, "{pool:#}");
    assert!(
        reaped_after >= Duration::from_secs(2),
        "reaped {reaped_after:?} after the answer, before idle_timeout: 3"
    );
    eprintln!("idle container removed {reaped_after:?} after its answer");

    // Busy for 5 s > idle_timeout: the reaper must leave it alone.
    let t = Instant::now();
    let r = call(&esb, "/public/echo?sleep_ms=5000");
    let took = t.elapsed();
    let host = answered_by(&r);
    assert!(took >= Duration::from_secs(5), "{took:?}");
    let pool = esb.admin_pool("echo");
    assert_eq!(
        counter(&pool, "reaps"),
        1,
        "not reaped while busy: {pool:#}"
    );
    assert_eq!(counter(&pool, "cold_starts"), 2, "{pool:#}");
    let ids = run.containers(false);
    assert_eq!(ids.len(), 1, "still running after its answer: {ids:?}");
    assert_eq!(host, short(ids.first().unwrap()));
}

#[test]
fn an_idle_container_removed_behind_esbs_back_leaves_the_pool_and_is_replaced() {
    let Some(run) = Run::new() else { return };
    let image = run.echo_image();
    let esb = Esb::start(&run.setup(&image, "    scaling: { max_capacity: 1 }\n", ""));
    let host = answered_by(&call(&esb, "/public/echo"));
    let id = run.containers(false).pop_first().unwrap();
    assert_eq!(host, short(&id));
    assert_eq!(environments(&esb.admin_pool("echo")), 1);

    let t = Instant::now();
    docker(&["rm", "-f", &id]).unwrap();
    // One reconciliation period (10 s) plus slack; the events stream usually tells sooner.
    poll("environment dropped", Duration::from_secs(15), || {
        (environments(&esb.admin_pool("echo")) == 0).then_some(())
    });
    eprintln!("removed container left the pool after {:?}", t.elapsed());

    let fresh = answered_by(&call(&esb, "/public/echo"));
    assert_ne!(fresh, host, "a new container answered");
    let ids = run.containers(false);
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(short(ids.first().unwrap()), fresh);
    let pool = esb.admin_pool("echo");
    assert_eq!(counter(&pool, "cold_starts"), 2, "{pool:#}");
}
