//! The control plane with the process runtime, end to end against real `esb-rie` + `echo`
//! children: the pool table's scaling promises, reaping, crash handling, shutdown and leftovers.
//! Requests go through the table exactly as the data plane does (acquire raced with
//! `wait_limit`, invoke over HTTP, release), without the HTTPS front.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use esb_control::environ::STATE_MARKER;
use esb_control::{ControlHandle, ControlSettings};
use esb_model::{FunctionName, FunctionSpec, RuntimeSpec, ScalingSpec};
use esb_pool::{
    AcquireError, BreakerSpec, EnvId, EnvState, FunctionId, FunctionSnapshot, Outcome, PoolSpec,
    PoolTable, StopReason, control_channel,
};

const INVOKE: &str = "/2015-03-31/functions/function/invocations";
const F: FunctionId = FunctionId(0);

struct Setup {
    table: Arc<PoolTable>,
    control: Option<ControlHandle>,
    state: tempfile::TempDir,
}

struct Options {
    scaling: ScalingSpec,
    rie: Option<PathBuf>,
    breaker: BreakerSpec,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            scaling: ScalingSpec {
                acquire_timeout: Duration::from_secs(10),
                ..ScalingSpec::default()
            },
            rie: None,
            breaker: BreakerSpec::default(),
        }
    }
}

fn scaling(max: u32) -> ScalingSpec {
    ScalingSpec {
        max_capacity: max,
        acquire_timeout: Duration::from_secs(10),
        ..ScalingSpec::default()
    }
}

fn setup(opts: Options) -> Setup {
    let rie = opts
        .rie
        .unwrap_or_else(|| esb_testkit::cargo_bin("esb-rie", "esb-rie"));
    let echo = esb_testkit::cargo_bin("esb-echo", "echo");
    let function = FunctionSpec {
        name: FunctionName::new("echo"),
        runtime: RuntimeSpec::Process {
            command: vec![echo.to_string_lossy().into_owned()],
            working_dir: None,
        },
        timeout: Duration::from_secs(10),
        memory_size: 128,
        environment: BTreeMap::from([("GREETING".into(), "hi".into())]),
        scaling: opts.scaling,
        schedules: vec![],
    };
    let pool = PoolSpec {
        start_timeout: Duration::from_secs(10),
        breaker: opts.breaker,
        ..PoolSpec::from_function(&function)
    };
    let (tx, rx) = control_channel();
    let table = PoolTable::new(vec![pool], tx, Instant::now());
    let state = tempfile::tempdir().unwrap();
    let settings = ControlSettings {
        tick: Duration::from_millis(50),
        reap_interval: Duration::from_millis(200),
        start_timeout: Duration::from_secs(10),
        stop_grace: Duration::from_secs(2),
        s3_endpoint: Some("http://127.0.0.1:9000".into()),
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..ControlSettings::new(rie, state.path().to_path_buf())
    };
    let control = esb_control::spawn(settings, vec![function], table.clone(), rx).unwrap();
    Setup {
        table,
        control: Some(control),
        state,
    }
}

impl Setup {
    fn snapshot(&self) -> FunctionSnapshot {
        self.table.snapshot(Instant::now()).functions.remove(0)
    }

    fn control(&self) -> &ControlHandle {
        self.control.as_ref().unwrap()
    }

    fn shutdown(&mut self) {
        self.control
            .take()
            .unwrap()
            .shutdown(Instant::now() + Duration::from_secs(3));
    }
}

/// One request the way the data plane makes it: the answer's status, or the acquire error.
/// A broken connection counts as the gateway's 502 and destroys the environment.
fn request(table: &PoolTable, body: &str) -> Result<(EnvId, u16), AcquireError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let lease = match tokio::time::timeout(table.wait_limit(F), table.acquire(F)).await {
            Err(_) => return Err(table.timed_out(F)),
            Ok(r) => r?,
        };
        let env = lease.env();
        match esb_testkit::http::post(lease.addr().port(), INVOKE, &[], body.as_bytes()) {
            Ok(r) => {
                lease.release(Outcome::Reuse);
                Ok((env, r.status))
            }
            Err(_) => {
                lease.release(Outcome::Destroy(StopReason::Faulty));
                Ok((env, 502))
            }
        }
    })
}

fn burst(table: &Arc<PoolTable>, n: usize, body: &str) -> Vec<Result<(EnvId, u16), AcquireError>> {
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (table, body) = (table.clone(), body.to_string());
            thread::spawn(move || request(&table, &body))
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Polls `cond` (1 ms doubling to 50 ms) until it holds or `limit` passes.
fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

fn alive(pid: u32) -> bool {
    // A zombie is dead for our purposes (its parent reaps it a moment later).
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// Pids of every live process carrying `dir` as its state marker.
fn marked(dir: &Path) -> Vec<u32> {
    let marker = format!("{STATE_MARKER}={}", dir.canonicalize().unwrap().display());
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(env) = std::fs::read(e.path().join("environ"))
            && env.split(|&b| b == 0).any(|v| v == marker.as_bytes())
            && alive(pid)
        {
            out.push(pid);
        }
    }
    out
}

fn environ_of(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap()
        .split(|&b| b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

#[test]
fn fifty_requests_on_max_capacity_two_start_exactly_two_and_all_succeed() {
    let mut s = setup(Options {
        scaling: scaling(2),
        ..Options::default()
    });
    let results = burst(&s.table, 50, r#"{"sleep_ms": 20}"#);
    assert!(
        results.iter().all(|r| matches!(r, Ok((_, 200)))),
        "{results:?}"
    );
    let snap = s.snapshot();
    assert_eq!(snap.counters.cold_starts, 2, "{snap:?}");
    assert_eq!(s.control().pids().len(), 2);

    // The admin view agrees, pids included.
    let admin = s.control().admin_addr().unwrap();
    let mut client = esb_testkit::http::Client::connect_addr(admin).unwrap();
    let r = client.get("/admin/pools").unwrap();
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let f = &v["functions"][0];
    assert_eq!(f["name"], "echo");
    assert_eq!(f["counters"]["cold_starts"], 2);
    let envs = f["environments"].as_array().unwrap();
    assert_eq!(envs.len(), 2);
    for e in envs {
        assert_eq!(e["state"], "idle");
        assert!(e["pid"].as_u64().is_some(), "{e}");
        assert!(e["idle_ms"].as_u64().is_some(), "{e}");
    }
    let r = esb_testkit::http::post(admin.port(), "/admin/pools", &[], b"").unwrap();
    assert_eq!(r.status, 405);
    // The function's environment, as aws-compat §1.3 and the config say.
    let (_, pid) = s.control().pids()[0];
    let env = environ_of(pid);
    for want in [
        "AWS_LAMBDA_FUNCTION_NAME=echo",
        "AWS_LAMBDA_FUNCTION_TIMEOUT=10",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
        "AWS_ENDPOINT_URL_S3=http://127.0.0.1:9000",
        "GREETING=hi",
    ] {
        assert!(env.iter().any(|v| v == want), "{want} missing from {env:?}");
    }
    s.shutdown();
}

#[test]
fn without_waiting_the_surplus_gets_503_at_once_and_nothing_hangs() {
    let mut s = setup(Options {
        scaling: ScalingSpec {
            acquire_timeout: Duration::ZERO,
            ..scaling(2)
        },
        ..Options::default()
    });
    let began = Instant::now();
    let results = burst(&s.table, 50, r#"{"sleep_ms": 1500}"#);
    let ok = results.iter().filter(|r| matches!(r, Ok((_, 200)))).count();
    let rejected = results
        .iter()
        .filter(|r| matches!(r, Err(AcquireError::AtCapacity { status: 503, .. })))
        .count();
    assert_eq!(ok + rejected, 50, "{results:?}");
    assert!(ok >= 2 && rejected > 0, "{results:?}");
    // Two rounds of 1.5 s at most would mean somebody queued; the rejections were immediate.
    assert!(
        began.elapsed() < Duration::from_secs(8),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(s.snapshot().counters.cold_starts, 2);
    s.shutdown();
}

#[test]
fn twenty_cold_requests_start_at_most_twenty_environments() {
    let mut s = setup(Options {
        scaling: scaling(20),
        ..Options::default()
    });
    let results = burst(&s.table, 20, r#"{"sleep_ms": 300}"#);
    assert!(
        results.iter().all(|r| matches!(r, Ok((_, 200)))),
        "{results:?}"
    );
    let snap = s.snapshot();
    assert!(snap.counters.cold_starts <= 20, "{snap:?}");
    assert_eq!(u64::from(snap.live), snap.counters.cold_starts);
    s.shutdown();
}

#[test]
fn idle_environments_are_reaped_but_min_capacity_stays_and_busy_ones_are_kept() {
    let mut s = setup(Options {
        scaling: ScalingSpec {
            idle_timeout: Duration::from_secs(1),
            min_capacity: 1,
            ..scaling(3)
        },
        ..Options::default()
    });
    // min_capacity is started at boot.
    wait_until(
        Duration::from_secs(10),
        "the pre-warmed environment",
        || {
            s.snapshot()
                .environments
                .iter()
                .any(|e| e.state == EnvState::Idle)
        },
    );
    let results = burst(&s.table, 3, r#"{"sleep_ms": 300}"#);
    assert!(
        results.iter().all(|r| matches!(r, Ok((_, 200)))),
        "{results:?}"
    );
    let pids: Vec<u32> = s.control().pids().into_iter().map(|(_, p)| p).collect();
    assert_eq!(pids.len(), 3);

    // A request busy for three idle timeouts keeps its environment.
    let table = s.table.clone();
    let long = thread::spawn(move || request(&table, r#"{"sleep_ms": 3000}"#));
    wait_until(Duration::from_secs(10), "the surplus reaped", || {
        s.snapshot().live == 1
    });
    let snap = s.snapshot();
    assert_eq!(
        snap.environments
            .iter()
            .filter(|e| e.state == EnvState::Busy)
            .count(),
        1
    );
    assert_eq!(long.join().unwrap().map(|(_, st)| st), Ok(200));
    wait_until(Duration::from_secs(10), "reaped processes gone", || {
        pids.iter().filter(|p| alive(**p)).count() == 1
    });
    // Long idle now, and still kept: min_capacity.
    thread::sleep(Duration::from_millis(1500));
    let snap = s.snapshot();
    assert_eq!(snap.live, 1, "{snap:?}");
    assert!(snap.counters.reaps >= 2);
    s.shutdown();
}

#[test]
fn kill_9_mid_request_fails_that_request_and_the_next_gets_a_fresh_environment() {
    let mut s = setup(Options {
        scaling: scaling(1),
        ..Options::default()
    });
    let (first, _) = request(&s.table, "{}").unwrap();
    let (_, pid) = s.control().pids()[0];
    let table = s.table.clone();
    let victim = thread::spawn(move || request(&table, r#"{"sleep_ms": 5000}"#));
    wait_until(Duration::from_secs(10), "the request in flight", || {
        s.snapshot()
            .environments
            .iter()
            .any(|e| e.state == EnvState::Busy)
    });
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert_eq!(victim.join().unwrap(), Ok((first, 502)));
    let (next, status) = request(&s.table, "{}").unwrap();
    assert_eq!(status, 200);
    assert_ne!(next, first);
    assert!(!s.control().pids().iter().any(|(_, p)| *p == pid));
    assert!(!alive(pid));
    s.shutdown();
}

#[test]
fn an_idle_environment_that_is_killed_leaves_the_pool_by_itself() {
    let mut s = setup(Options {
        scaling: scaling(1),
        ..Options::default()
    });
    let (first, _) = request(&s.table, "{}").unwrap();
    let (_, pid) = s.control().pids()[0];
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    wait_until(Duration::from_secs(10), "the death noticed", || {
        s.snapshot().live == 0
    });
    let (next, status) = request(&s.table, "{}").unwrap();
    assert_eq!(status, 200);
    assert_ne!(next, first);
    s.shutdown();
}

#[test]
fn shutdown_leaves_no_process_behind() {
    let mut s = setup(Options {
        scaling: scaling(3),
        ..Options::default()
    });
    let results = burst(&s.table, 3, r#"{"sleep_ms": 200}"#);
    assert!(
        results.iter().all(|r| matches!(r, Ok((_, 200)))),
        "{results:?}"
    );
    // esb-rie and the echo runtimes it started.
    let before = marked(s.state.path());
    assert!(before.len() >= 3, "{before:?}");
    s.shutdown();
    assert!(marked(s.state.path()).is_empty());
    assert!(before.iter().all(|p| !alive(*p)));
    assert_eq!(
        request(&s.table, "{}").unwrap_err(),
        AcquireError::Closed,
        "the table refuses work after shutdown"
    );
}

#[test]
fn failing_cold_starts_answer_502_then_open_the_circuit() {
    let mut s = setup(Options {
        scaling: scaling(2),
        rie: Some("/nonexistent/esb-rie".into()),
        breaker: BreakerSpec {
            failure_threshold: 2,
            cooldown: Duration::from_secs(60),
        },
    });
    for _ in 0..2 {
        match request(&s.table, "{}") {
            Err(e @ AcquireError::StartFailed { .. }) => {
                assert_eq!(e.status(), 502);
                assert!(e.to_string().contains("/nonexistent/esb-rie"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }
    // Refused by the breaker itself, not by another failed start.
    assert!(matches!(
        request(&s.table, "{}"),
        Err(AcquireError::CircuitOpen { .. })
    ));
    assert_eq!(s.snapshot().breaker, "open");
    s.shutdown();
}

#[test]
fn leftovers_of_a_killed_esb_are_killed_at_the_next_start() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().canonicalize().unwrap();
    let mut leftover = Command::new("sleep")
        .arg("600")
        .env(STATE_MARKER, &dir)
        .spawn()
        .unwrap();
    // spawn() returns once exec has begun, before the kernel has laid out the new image's
    // environment: until then /proc shows none, and the sweep could not see the marker.
    wait_until(
        Duration::from_secs(10),
        "the leftover's environment",
        || marked(&dir).contains(&leftover.id()),
    );
    let (tx, rx) = control_channel();
    let table = PoolTable::new(vec![], tx, Instant::now());
    let settings = ControlSettings::new("/nonexistent".into(), dir.clone());
    let control = esb_control::spawn(settings, vec![], table, rx).unwrap();
    assert_eq!(control.leftovers_killed(), 1);
    let status = leftover.wait().unwrap();
    assert!(!status.success());
    // And the directory is now ours alone.
    let (tx, rx) = control_channel();
    let table = PoolTable::new(vec![], tx, Instant::now());
    let again = esb_control::spawn(ControlSettings::new("/x".into(), dir), vec![], table, rx);
    assert!(
        matches!(again, Err(esb_control::ControlError::StateDirBusy(_))),
        "{again:?}"
    );
    control.shutdown(Instant::now() + Duration::from_secs(1));
}

#[test]
fn aws_own_rie_works_as_the_rie_binary_and_leaves_nothing_behind() {
    let mut s = setup(Options {
        scaling: scaling(2),
        rie: Some(esb_testkit::install::aws_rie()),
        ..Options::default()
    });
    let results = burst(&s.table, 4, r#"{"sleep_ms": 100}"#);
    assert!(
        results.iter().all(|r| matches!(r, Ok((_, 200)))),
        "{results:?}"
    );
    assert!(!marked(s.state.path()).is_empty());
    s.shutdown();
    assert!(
        marked(s.state.path()).is_empty(),
        "{:?}",
        marked(s.state.path())
    );
}

#[test]
fn a_timed_out_invocation_destroys_its_environment() {
    let mut s = setup(Options {
        scaling: scaling(1),
        ..Options::default()
    });
    let (first, _) = request(&s.table, "{}").unwrap();
    let (_, pid) = s.control().pids()[0];
    // The data plane's function timeout fires while the function still sleeps.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let lease = s.table.acquire(F).await.unwrap();
        let addr = lease.addr();
        let call = tokio::task::spawn_blocking(move || {
            esb_testkit::http::post(addr.port(), INVOKE, &[], br#"{"sleep_ms": 10000}"#)
        });
        let timed_out = tokio::time::timeout(Duration::from_millis(300), call).await;
        assert!(
            timed_out.is_err(),
            "the function answered before its timeout"
        );
        lease.release(Outcome::Destroy(StopReason::Timeout));
    });
    wait_until(Duration::from_secs(10), "the environment stopped", || {
        !alive(pid)
    });
    let (next, status) = request(&s.table, "{}").unwrap();
    assert_eq!(status, 200);
    assert_ne!(next, first);
    let snap = s.snapshot();
    assert_eq!((snap.counters.destroyed, snap.counters.cold_starts), (1, 2));
    s.shutdown();
}
