//! The Docker runtime through the real `esb` binary over HTTPS: cold starts into hardened
//! containers, reuse, the `max_capacity` cap, adoption of kept containers after a restart, and a
//! killed busy container. Each test builds its own FROM-scratch image labelled with its run id;
//! drop guards remove its containers and image, pass or fail. Skipped without a Docker engine,
//! failed under `ESB_REQUIRE_DOCKER=1`.

mod support;

use std::collections::BTreeSet;

use std::process::Command;
use std::sync::Barrier;
use std::time::{Duration, Instant, UNIX_EPOCH};

use support::docker::{TEST_RUN_LABEL, docker, engine_answers, static_bins};
use support::{Esb, Response, Setup};

/// One test's namespace in the engine: esb's owner label and the image's run label. Dropping it
/// removes every container of that owner and the image.
struct Run {
    id: String,
    image: String,
}

impl Run {
    fn new() -> Option<Run> {
        if !engine_answers() {
            return None;
        }
        let nanos = UNIX_EPOCH.elapsed().unwrap_or_default().as_nanos();
        let id = format!("esbit{}x{:x}", std::process::id(), nanos & 0xff_ffff);
        let run = Run {
            image: format!("esb-test-echo:{id}"),
            id,
        };
        run.build_image();
        Some(run)
    }

    /// FROM scratch: only the static echo as `/var/task/bootstrap`, the image's command; esb
    /// injects its esb-rie.
    fn build_image(&self) {
        let (_, echo) = static_bins();
        let ctx = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ctx.path().join("var/task")).unwrap();
        std::fs::copy(echo, ctx.path().join("var/task/bootstrap")).unwrap();
        let script = format!(
            "tar -C '{}' -cf - . | docker import -c 'CMD [\"/var/task/bootstrap\"]' -c 'WORKDIR /var/task' -c 'LABEL {TEST_RUN_LABEL}={}' - '{}'",
            ctx.path().display(),
            self.id,
            self.image
        );
        let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        assert!(
            out.status.success(),
            "docker import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Running containers of this run's owner, by id.
    fn containers(&self) -> BTreeSet<String> {
        let owner = format!("label=esb.owner={}", self.id);
        docker(&["ps", "-q", "--no-trunc", "--filter", &owner])
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn setup(&self, max_capacity: u32, docker_lines: &str) -> Setup {
        let (rie, _) = static_bins();
        Setup::new("epoll")
            .functions_yml(&format!(
                "functions:\n  echo:\n    runtime: docker\n    image: \"{}\"\n    timeout: 10\n    memory_size: 128\n    scaling: {{ max_capacity: {max_capacity}, acquire_timeout: 30 }}\n",
                self.image
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
        let _ = docker(&["rmi", "-f", &self.image]);
    }
}

/// A request on a fresh connection that fails (panics) if no answer comes within 30 s.
fn call(esb: &Esb, path: &str) -> Response {
    let mut c = esb.connect();
    c.set_read_timeout(Duration::from_secs(30));
    c.request("GET", path, &[], b"")
}

/// The container (hostname) and process that answered.
fn answered_by(r: &Response) -> (String, u64) {
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    (
        v["env"]["hostname"].as_str().unwrap().trim().to_owned(),
        v["env"]["pid"].as_u64().unwrap(),
    )
}

/// `n` requests at once (handshakes first, then all send together).
fn burst(esb: &Esb, path: &str, n: usize) -> Vec<Response> {
    let barrier = Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    let mut c = esb.connect_checked().expect("handshake");
                    c.set_read_timeout(Duration::from_secs(30));
                    barrier.wait();
                    c.request("GET", path, &[], b"")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// SIGTERM, then waits for esb to exit (it stops or keeps its containers first).
fn stop_gracefully(esb: &mut Esb) {
    let pid = esb.child.pid().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let until = Instant::now() + Duration::from_secs(30);
    let mut pause = Duration::from_millis(5);
    while esb.child.is_running() {
        assert!(Instant::now() < until, "esb did not exit:\n{}", esb.log());
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

fn short(id: &str) -> &str {
    &id[..12]
}

#[test]
fn a_cold_docker_function_starts_one_hardened_container_and_reuses_it() {
    let Some(run) = Run::new() else { return };
    let esb = Esb::start(&run.setup(3, ""));
    let token = esb.login();
    let auth = format!("Bearer {token}");
    assert!(run.containers().is_empty());

    let t = Instant::now();
    let first = esb.get("/echo/cold", &[("authorization", &auth)]);
    let cold = t.elapsed();
    let (host, pid) = answered_by(&first);
    let ids = run.containers();
    assert_eq!(ids.len(), 1, "{}", esb.log());
    let id = ids.first().unwrap();
    assert_eq!(host, short(id), "the echo ran in the container esb started");

    let t = Instant::now();
    let second = esb.get("/echo/warm", &[("authorization", &auth)]);
    let warm = t.elapsed();
    assert_eq!(
        answered_by(&second),
        (host, pid),
        "the warm request reused it"
    );
    assert_eq!(&run.containers(), &ids);
    eprintln!("cold start through esb: first request {cold:?}, warm request {warm:?}");

    let inspect = |fmt: &str| docker(&["inspect", "--format", fmt, id]).unwrap();
    assert_eq!(inspect("{{json .HostConfig.CapDrop}}"), r#"["ALL"]"#);
    assert_eq!(inspect("{{.HostConfig.ReadonlyRootfs}}"), "true");
    assert_eq!(
        inspect("{{.HostConfig.Memory}}"),
        (128u64 << 20).to_string()
    );
    assert_eq!(inspect("{{index .Config.Labels \"esb.function\"}}"), "echo");
    assert_eq!(inspect("{{index .Config.Labels \"esb.managed\"}}"), "true");
}

#[test]
fn thirty_concurrent_requests_use_exactly_max_capacity_containers() {
    let Some(run) = Run::new() else { return };
    let esb = Esb::start(&run.setup(3, ""));
    let answers = burst(&esb, "/public/echo?sleep_ms=200", 30);
    let hosts: BTreeSet<String> = answers.iter().map(|r| answered_by(r).0).collect();
    let ids = run.containers();
    assert_eq!(ids.len(), 3, "{}", esb.log());
    let shorts: BTreeSet<String> = ids.iter().map(|i| short(i).to_owned()).collect();
    assert_eq!(hosts, shorts, "every answer came from one of the three");
}

#[test]
fn kept_containers_are_adopted_by_the_next_esb() {
    let Some(run) = Run::new() else { return };
    let setup = run.setup(3, "keep_on_shutdown = true");
    let mut esb = Esb::start(&setup);
    let first: BTreeSet<String> = burst(&esb, "/public/echo?sleep_ms=300", 3)
        .iter()
        .map(|r| answered_by(r).0)
        .collect();
    let ids = run.containers();
    assert_eq!((first.len(), ids.len()), (3, 3), "{}", esb.log());
    stop_gracefully(&mut esb);
    assert_eq!(run.containers(), ids, "kept running across the restart");

    let esb = Esb::start(&setup);
    esb.wait_for_log("Docker adopt & sync done", Duration::from_secs(30));
    assert!(esb.log().contains("adopted=3"), "{}", esb.log());
    let again: BTreeSet<String> = burst(&esb, "/public/echo?sleep_ms=300", 3)
        .iter()
        .map(|r| answered_by(r).0)
        .collect();
    assert_eq!(again, first, "the same containers answered");
    assert_eq!(run.containers(), ids, "no new container was started");
}

#[test]
fn a_killed_busy_container_fails_its_request_and_the_next_gets_a_fresh_one() {
    let Some(run) = Run::new() else { return };
    let esb = Esb::start(&run.setup(1, ""));
    let (host, _) = answered_by(&call(&esb, "/public/echo"));
    let id = run.containers().pop_first().unwrap();
    assert_eq!(host, short(&id));

    std::thread::scope(|s| {
        let busy = s.spawn(|| call(&esb, "/public/echo?sleep_ms=20000"));
        // Busy once the pool says so.
        let until = Instant::now() + Duration::from_secs(20);
        while esb.admin_pool("echo")["environments"]
            .as_array()
            .is_none_or(|envs| !envs.iter().any(|e| e["state"] == "busy"))
        {
            assert!(Instant::now() < until, "never busy:\n{}", esb.log());
            std::thread::sleep(Duration::from_millis(10));
        }
        docker(&["kill", &id]).unwrap();
        let r = busy.join().unwrap();
        assert_eq!(r.status, 502, "{}", r.text());
    });
    let (fresh, _) = answered_by(&call(&esb, "/public/echo"));
    assert_ne!(fresh, host, "a new container answered");
    let ids = run.containers();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(short(ids.first().unwrap()), fresh);
}
