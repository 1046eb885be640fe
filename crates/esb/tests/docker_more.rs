//! More of the Docker runtime through the real `esb` binary: idle reaping, containers removed
//! behind esb's back, images carrying AWS's real RIE under load (injected esb-rie and `rie:
//! image`), and images preloaded from a `docker save` archive. Like `docker.rs`, each test
//! imports its own FROM-scratch image labelled with its run id, and drop guards remove its
//! containers and images. Skipped without a Docker engine, failed under `ESB_REQUIRE_DOCKER=1`.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::Value;
use support::docker::{TEST_RUN_LABEL, docker, engine_answers, static_bins};
use support::{Esb, Response, Setup};

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

    /// Laid out like AWS's base images: AWS's real RIE at `/usr/local/bin/aws-lambda-rie` and
    /// `/lambda-entrypoint.sh` as the entrypoint, which starts that RIE unless
    /// `AWS_LAMBDA_RUNTIME_API` says a Runtime API is already there (the injected esb-rie's).
    /// The script runs under the host's `dash` and the libraries `ldd` names for it.
    fn aws_rie_image(&self) -> String {
        let (_, echo) = static_bins();
        let aws = esb_testkit::install::aws_rie();
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("lambda-entrypoint.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\nif [ -z \"${AWS_LAMBDA_RUNTIME_API}\" ]; then\n  exec /usr/local/bin/aws-lambda-rie \"$@\"\nelse\n  exec \"$@\"\nfi\n",
        )
        .unwrap();
        let exec = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&script, exec).unwrap();
        let dash = PathBuf::from("/bin/dash");
        let ldd = Command::new("ldd").arg(&dash).output().unwrap();
        let libs: Vec<PathBuf> = String::from_utf8_lossy(&ldd.stdout)
            .split_whitespace()
            .filter(|w| w.starts_with('/'))
            .map(PathBuf::from)
            .collect();
        assert!(!libs.is_empty(), "ldd /bin/dash named no libraries");
        let lib_paths: Vec<String> = libs
            .iter()
            .map(|l| l.to_string_lossy().into_owned())
            .collect();
        let mut files: Vec<(&str, &Path)> = vec![
            ("/var/task/bootstrap", echo),
            ("/usr/local/bin/aws-lambda-rie", &aws),
            ("/lambda-entrypoint.sh", &script),
            ("/bin/sh", &dash),
        ];
        files.extend(lib_paths.iter().map(|p| (p.as_str(), Path::new(p))));
        self.import(
            "awsrie",
            &files,
            &[
                r#"ENTRYPOINT ["/lambda-entrypoint.sh"]"#,
                r#"CMD ["/var/task/bootstrap"]"#,
                "WORKDIR /var/task",
            ],
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

    fn remove_containers(&self) {
        let owner = format!("label=esb.owner={}", self.id);
        if let Ok(ids) = docker(&["ps", "-aq", "--filter", &owner]) {
            for id in ids.lines() {
                let _ = docker(&["rm", "-f", "-v", id]);
            }
        }
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
        self.remove_containers();
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

/// Requests per mode in the load test: `ESB_DOCKER_LOAD_REQUESTS`, else the default.
fn load_requests() -> usize {
    std::env::var("ESB_DOCKER_LOAD_REQUESTS")
        .ok()
        .map(|v| v.parse().expect("ESB_DOCKER_LOAD_REQUESTS: a number"))
        .unwrap_or(DEFAULT_LOAD_REQUESTS)
}

/// What the issue asks for; a debug build serves it in ~32 s (injected) and ~47 s (`rie: image`)
/// on the 2-core test machine.
const DEFAULT_LOAD_REQUESTS: usize = 50_000;

/// `n` requests from 4 client threads over keep-alive connections as fast as answers come;
/// returns the failures (status or connection), each described.
fn hammer(esb: &Esb, n: usize) -> Vec<String> {
    const CLIENTS: usize = 4;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let share = n / CLIENTS + usize::from(i < n % CLIENTS);
                s.spawn(move || {
                    let mut failures = Vec::new();
                    let mut conn = esb.connect();
                    conn.set_read_timeout(Duration::from_secs(30));
                    for k in 0..share {
                        let r = conn.try_request("GET", "/public/echo");
                        let close = r.as_ref().is_none_or(|r| {
                            r.header("connection")
                                .is_some_and(|c| c.eq_ignore_ascii_case("close"))
                        });
                        match r {
                            Some(r) if r.status == 200 => {}
                            Some(r) => failures.push(format!("#{k}: {} {}", r.status, r.text())),
                            None => failures.push(format!("#{k}: connection closed unannounced")),
                        }
                        // esb ends a connection after `max_requests_per_connection`, saying so.
                        if close {
                            conn = esb.connect();
                            conn.set_read_timeout(Duration::from_secs(30));
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

#[test]
fn an_image_with_awss_rie_serves_a_load_without_failures_injected_and_as_image_rie() {
    let Some(run) = Run::new() else { return };
    let image = run.aws_rie_image();
    let n = load_requests();
    for (mode, rie_line) in [("injected", ""), ("image", "    rie: image\n")] {
        let mut setup = run.setup(
            &image,
            &format!("{rie_line}    scaling: {{ max_capacity: 2, acquire_timeout: 30 }}\n"),
            "",
        );
        setup.workers = std::thread::available_parallelism().map_or(2, |p| p.get());
        let esb = Esb::start(&setup);
        let first = call(&esb, "/public/echo");
        assert_eq!(
            first.status,
            200,
            "rie {mode}: {}\n{}",
            first.text(),
            esb.log()
        );
        let t = Instant::now();
        let failures = hammer(&esb, n);
        let took = t.elapsed();
        assert!(
            failures.is_empty(),
            "rie {mode}: {} of {n} failed, first: {:?}\n{}",
            failures.len(),
            &failures[..failures.len().min(5)],
            esb.log()
        );
        let pool = esb.admin_pool("echo");
        assert!(counter(&pool, "cold_starts") <= 2, "{pool:#}");
        assert_eq!(counter(&pool, "crashes"), 0, "{pool:#}");
        assert_eq!(counter(&pool, "start_failures"), 0, "{pool:#}");
        let ids = run.containers(false);
        assert!((1..=2).contains(&ids.len()), "{ids:?}");
        if mode == "image" {
            // AWS's RIE is the container's own entrypoint, not esb-rie bind-mounted over it.
            let id = ids.first().unwrap();
            let path = docker(&["inspect", "--format", "{{.Path}}", id]).unwrap();
            assert_eq!(path, "/lambda-entrypoint.sh");
        }
        eprintln!(
            "rie {mode}: {n} requests in {took:?} ({:.0}/s), {} containers",
            n as f64 / took.as_secs_f64(),
            ids.len()
        );
        // The next mode starts from an empty pool (esb's drop kills it without a shutdown).
        drop(esb);
        run.remove_containers();
    }
}

#[test]
fn an_image_archive_in_preload_dir_is_loaded_at_start_and_serves() {
    let Some(run) = Run::new() else { return };
    let echo = run.echo_image();
    let tag = format!("esb-test-preloaded:{}", run.id);
    docker(&["tag", &echo, &tag]).unwrap();
    run.images.borrow_mut().push(tag.clone());
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("preloaded.tar");
    docker(&["save", "-o", tar.to_str().unwrap(), &tag]).unwrap();
    docker(&["rmi", &tag]).unwrap();
    assert!(
        docker(&["image", "inspect", &tag]).is_err(),
        "{tag} is gone before esb starts"
    );

    let esb = Esb::start(&run.setup(
        &tag,
        "    scaling: { max_capacity: 1 }\n",
        &format!("preload_dir = \"{}\"", dir.path().display()),
    ));
    esb.wait_for_log("preloaded images", Duration::from_secs(30));
    assert!(docker(&["image", "inspect", &tag]).is_ok(), "{}", esb.log());
    let host = answered_by(&call(&esb, "/public/echo"));
    let id = run.containers(false).pop_first().unwrap();
    assert_eq!(host, short(&id));
    let image = docker(&["inspect", "--format", "{{.Config.Image}}", &id]).unwrap();
    assert_eq!(image, tag);
}
