//! Pool behaviour of the process runtime end to end (issue #4): the real `esb` binary running
//! `esb-rie` + the `echo` test function, driven over HTTPS and observed through `/admin/pools`.
//! Every wait polls the admin endpoint or the process table with a deadline; nothing sleeps to
//! synchronise.

mod support;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Esb, Response, Setup};

const DRIVER: &str = "epoll";

fn rie_binary() -> PathBuf {
    esb_testkit::cargo_bin("esb-rie", "esb-rie")
}

fn echo_binary() -> PathBuf {
    esb_testkit::cargo_bin("esb-echo", "echo")
}

/// One `runtime: process` function entry of functions.yml.
fn process_fn(name: &str, command: &str, scaling: &str) -> String {
    format!(
        "  {name}:\n    runtime: process\n    command: [{command:?}]\n    timeout: 10\n    scaling: {{ {scaling} }}\n"
    )
}

/// esb serving `echo` on the process runtime with `scaling` (YAML flow-mapping body).
fn start_echo(scaling: &str) -> Esb {
    start_with(&process_fn(
        "echo",
        echo_binary().to_str().unwrap(),
        scaling,
    ))
}

/// esb with `functions` (entries under `functions:`) and the default routes (all to `echo`).
fn start_with(functions: &str) -> Esb {
    Esb::start(&setup(functions))
}

fn setup(functions: &str) -> Setup {
    Setup::new(DRIVER)
        .runtime(&format!(
            "rie_binary = {:?}",
            rie_binary().to_str().unwrap()
        ))
        .functions_yml(&format!("functions:\n{functions}"))
}

/// A request on a fresh connection that fails (panics) if no answer comes within `timeout`.
fn call(esb: &Esb, path: &str, timeout: Duration) -> Response {
    let mut c = esb.connect();
    c.set_read_timeout(timeout);
    c.request("GET", path, &[], b"")
}

/// The `env.pid` of the echo process that answered.
fn echo_pid(r: &Response) -> u64 {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["env"]["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("no env.pid in {}", r.text()))
}

/// `paths.len()` requests at once: every connection completes its handshake, then all send
/// together. Answers come back in the order of `paths`.
fn burst(esb: &Esb, paths: &[String], timeout: Duration) -> Vec<Response> {
    let barrier = Barrier::new(paths.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .iter()
            .map(|path| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut c = esb
                        .connect_checked()
                        .expect("TLS handshake with esb failed");
                    c.set_read_timeout(timeout);
                    barrier.wait();
                    c.request("GET", path, &[], b"")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Polls `check` on the function's admin entry until it returns `Some` (panics after `timeout`).
fn poll_pool<T>(
    esb: &Esb,
    function: &str,
    timeout: Duration,
    what: &str,
    mut check: impl FnMut(&Value) -> Option<T>,
) -> T {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        let pool = esb.admin_pool(function);
        if let Some(t) = check(&pool) {
            return t;
        }
        assert!(
            start.elapsed() < timeout,
            "{what}: not reached after {timeout:?}; admin: {pool:#}\nlog:\n{}",
            esb.log()
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

fn counter(pool: &Value, name: &str) -> u64 {
    pool["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name} in {pool}"))
}

fn environments(pool: &Value) -> &Vec<Value> {
    pool["environments"].as_array().unwrap()
}

/// Pids of the function's environments in `state` (only those that have one).
fn pids_in_state(pool: &Value, state: &str) -> Vec<u32> {
    environments(pool)
        .iter()
        .filter(|e| e["state"] == state)
        .filter_map(|e| e["pid"].as_u64())
        .map(|p| p as u32)
        .collect()
}

fn proc_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The value of `ESB_STATE_DIR` in `pid`'s environment.
fn state_dir_of(pid: u32) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ
        .split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix("ESB_STATE_DIR=").map(str::to_owned))
}

/// Every process whose environment carries `ESB_STATE_DIR=<dir>`.
fn processes_marked(dir: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| state_dir_of(*pid).as_deref() == Some(dir))
        .collect()
}

fn send_signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Done when 1: the first request cold-starts, the next reuse the same environment.
#[test]
fn first_request_cold_starts_and_the_next_reuse_it() {
    let esb =
        start_echo("max_capacity: 2, min_capacity: 0, idle_timeout: 300, acquire_timeout: 10");
    let t = Duration::from_secs(20);
    let first = echo_pid(&call(&esb, "/public/echo", t));
    let second = echo_pid(&call(&esb, "/public/echo", t));
    let third = echo_pid(&call(&esb, "/public/echo?n=3", t));
    assert_eq!(
        (first, first),
        (second, third),
        "a warm environment must be reused"
    );

    let pool = esb.admin_pool("echo");
    assert_eq!(pool["kind"], "managed");
    assert_eq!(counter(&pool, "cold_starts"), 1, "{pool:#}");
    assert_eq!(counter(&pool, "start_failures"), 0, "{pool:#}");
    assert_eq!(pool["live"], 1, "{pool:#}");
    assert_eq!(pids_in_state(&pool, "idle").len(), 1, "{pool:#}");
}

/// Done when 2: 50 concurrent requests against `max_capacity: 2` queue and all succeed on exactly
/// two environments.
#[test]
fn fifty_concurrent_requests_share_two_environments() {
    let esb =
        start_echo("max_capacity: 2, min_capacity: 0, idle_timeout: 300, acquire_timeout: 10");
    let paths: Vec<String> = (0..50)
        .map(|i| format!("/public/echo?sleep_ms=50&n={i}"))
        .collect();
    let answers = burst(&esb, &paths, Duration::from_secs(30));
    let mut pids = HashSet::new();
    for (i, r) in answers.iter().enumerate() {
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
        assert_eq!(
            r.json()["event"]["queryStringParameters"]["n"],
            i.to_string(),
            "request {i} got another request's answer"
        );
        pids.insert(echo_pid(r));
    }
    assert_eq!(pids.len(), 2, "pids {pids:?}");

    let pool = esb.admin_pool("echo");
    assert_eq!(counter(&pool, "cold_starts"), 2, "{pool:#}");
    assert_eq!(counter(&pool, "rejections"), 0, "{pool:#}");
    assert_eq!(pool["live"], 2, "{pool:#}");
    assert_eq!(pool["waiting"], 0, "{pool:#}");
}

/// Done when 3: with `acquire_timeout: 0` a function at capacity answers 503 at once instead of
/// queueing, and nothing hangs.
#[test]
fn at_capacity_without_queueing_answers_503_with_retry_after() {
    let esb = start_echo("max_capacity: 1, min_capacity: 0, idle_timeout: 300, acquire_timeout: 0");
    let paths: Vec<String> = (0..10)
        .map(|i| format!("/public/echo?sleep_ms=300&n={i}"))
        .collect();
    let answers = burst(&esb, &paths, Duration::from_secs(15));
    let (mut ok, mut rejected) = (0u64, 0u64);
    for (i, r) in answers.iter().enumerate() {
        match r.status {
            200 => {
                assert_eq!(
                    r.json()["event"]["queryStringParameters"]["n"],
                    i.to_string()
                );
                ok += 1;
            }
            503 => {
                assert_eq!(
                    r.json(),
                    serde_json::json!({"message": "Service Unavailable"})
                );
                let retry = r.header("retry-after").expect("503 without Retry-After");
                assert!(retry.parse::<u64>().is_ok(), "Retry-After {retry:?}");
                rejected += 1;
            }
            s => panic!("request {i}: status {s}: {}", r.text()),
        }
    }
    assert!(ok >= 1 && rejected >= 1, "{ok} × 200, {rejected} × 503");

    let pool = esb.admin_pool("echo");
    assert_eq!(counter(&pool, "rejections"), rejected, "{pool:#}");
    assert_eq!(counter(&pool, "cold_starts"), 1, "{pool:#}");
    assert_eq!(pool["live"], 1, "{pool:#}");
}

/// At capacity, at most `max_queue` requests wait for a busy environment; the next one gets 503
/// with `Retry-After` at once (the queue is still full when it is answered), and each queued one
/// is served its own answer once the environment frees up.
#[test]
fn past_max_queue_requests_are_refused_at_once_and_the_queue_is_served() {
    let esb = start_echo(
        "max_capacity: 1, min_capacity: 0, idle_timeout: 300, acquire_timeout: 30, max_queue: 2",
    );
    let t = Duration::from_secs(30);
    std::thread::scope(|s| {
        // The busy one holds the only environment while the test queues two and sees the third
        // refused; echo has no "hold until told", so 8 s (under the 10 s function timeout) is
        // the margin for those few local round trips.
        let busy = s.spawn(|| call(&esb, "/public/echo?sleep_ms=8000&n=busy", t));
        poll_pool(&esb, "echo", t, "one busy environment", |p| {
            (pids_in_state(p, "busy").len() == 1).then_some(())
        });
        let queued: Vec<_> = (0..2)
            .map(|i| {
                let esb = &esb;
                s.spawn(move || call(esb, &format!("/public/echo?n=q{i}"), t))
            })
            .collect();
        poll_pool(&esb, "echo", t, "two requests waiting", |p| {
            (p["waiting"] == 2).then_some(())
        });
        let refused = call(&esb, "/public/echo?n=refused", t);
        assert_eq!(refused.status, 503, "{}", refused.text());
        assert_eq!(
            refused.json(),
            serde_json::json!({"message": "Service Unavailable"})
        );
        assert!(refused.header("retry-after").is_some());
        let pool = esb.admin_pool("echo");
        assert_eq!(pool["waiting"], 2, "refused without waiting: {pool:#}");
        assert_eq!(counter(&pool, "rejections"), 1, "{pool:#}");

        assert_eq!(busy.join().unwrap().status, 200);
        for (i, q) in queued.into_iter().enumerate() {
            let r = q.join().unwrap();
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(
                r.json()["event"]["queryStringParameters"]["n"],
                format!("q{i}")
            );
        }
    });
    let pool = esb.admin_pool("echo");
    assert_eq!(counter(&pool, "cold_starts"), 1, "{pool:#}");
    assert_eq!(counter(&pool, "rejections"), 1, "{pool:#}");
}

/// Done when 4: a cold storm of 20 requests on `max_capacity: 20` gets 20 answers, one each,
/// and never more environments than the cap.
#[test]
fn cold_storm_is_answered_once_each_within_the_cap() {
    let esb =
        start_echo("max_capacity: 20, min_capacity: 0, idle_timeout: 300, acquire_timeout: 10");
    let paths: Vec<String> = (0..20).map(|i| format!("/public/echo?n={i}")).collect();
    let answers = burst(&esb, &paths, Duration::from_secs(30));
    let mut ids = HashSet::new();
    for (i, r) in answers.iter().enumerate() {
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
        let v = r.json();
        assert_eq!(v["event"]["queryStringParameters"]["n"], i.to_string());
        let id = v["context"]["request_id"].as_str().unwrap().to_string();
        assert!(ids.insert(id), "request id seen twice: {v}");
    }

    let pool = esb.admin_pool("echo");
    let cold = counter(&pool, "cold_starts");
    let live = pool["live"].as_u64().unwrap();
    assert!((1..=20).contains(&cold), "cold_starts {cold}: {pool:#}");
    assert!((1..=20).contains(&live), "live {live}: {pool:#}");
    assert_eq!(counter(&pool, "start_failures"), 0, "{pool:#}");
    assert_eq!(counter(&pool, "rejections"), 0, "{pool:#}");
    assert_eq!(environments(&pool).len() as u64, live, "{pool:#}");
}

/// Done when 5: idle environments above `min_capacity` are reaped after `idle_timeout`, the
/// minimum stays, and a busy environment is never reaped however long it runs.
#[test]
fn idle_environments_are_reaped_down_to_min_capacity_but_busy_ones_never() {
    let echo = echo_binary();
    let echo = echo.to_str().unwrap();
    let scaling = |min: u32| {
        format!("max_capacity: 2, min_capacity: {min}, idle_timeout: 2, acquire_timeout: 10")
    };
    let functions = [
        process_fn("echo", echo, &scaling(0)),
        process_fn("a", echo, &scaling(0)),
        process_fn("b", echo, &scaling(1)),
    ]
    .concat();
    let routes = "routes:\n".to_string()
        + &["echo", "a", "b"]
            .iter()
            .map(|f| format!("  - path: \"/public/{f}\"\n    method: ANY\n    function: {f}\n    auth: none\n"))
            .collect::<String>();
    let esb = Esb::start(&setup(&functions).routing_yml(&routes));
    let t = Duration::from_secs(20);

    // Start the long request first so it is busy for longer than idle_timeout while a is reaped.
    std::thread::scope(|s| {
        let busy = s.spawn(|| call(&esb, "/public/echo?sleep_ms=5000", t));
        let busy_pid = poll_pool(&esb, "echo", t, "echo busy", |p| {
            pids_in_state(p, "busy").first().copied()
        });

        echo_pid(&call(&esb, "/public/a", t));
        echo_pid(&call(&esb, "/public/b", t));
        let reaped = poll_pool(&esb, "a", t, "a reaped", |p| {
            environments(p).is_empty().then(|| p.clone())
        });
        assert_eq!(counter(&reaped, "reaps"), 1, "{reaped:#}");
        assert_eq!(reaped["live"], 0, "{reaped:#}");

        let b = esb.admin_pool("b");
        assert_eq!(environments(&b).len(), 1, "{b:#}");
        assert_eq!(b["live"], 1, "{b:#}");
        assert_eq!(counter(&b, "reaps"), 0, "{b:#}");

        let r = busy.join().unwrap();
        echo_pid(&r);
        let pool = esb.admin_pool("echo");
        assert_eq!(counter(&pool, "reaps"), 0, "{pool:#}");
        assert_eq!(counter(&pool, "destroyed"), 0, "{pool:#}");
        let ids: Vec<_> = environments(&pool)
            .iter()
            .map(|e| e["pid"].clone())
            .collect();
        assert_eq!(ids, vec![Value::from(busy_pid)], "{pool:#}");
    });
}

/// Done when 6: an environment killed mid-request turns that request into a 502, and the next
/// request gets a fresh environment.
#[test]
fn environment_killed_mid_request_gives_502_then_a_fresh_environment() {
    let esb =
        start_echo("max_capacity: 1, min_capacity: 0, idle_timeout: 300, acquire_timeout: 10");
    let t = Duration::from_secs(20);
    let before = echo_pid(&call(&esb, "/public/echo", t));

    let (killed, answer) = std::thread::scope(|s| {
        let slow = s.spawn(|| call(&esb, "/public/echo?sleep_ms=3000", t));
        let pid = poll_pool(&esb, "echo", t, "echo busy", |p| {
            pids_in_state(p, "busy").first().copied()
        });
        send_signal(pid, "KILL");
        (pid, slow.join().unwrap())
    });
    assert_eq!(answer.status, 502, "{}", answer.text());

    let after = call(&esb, "/public/echo", t);
    assert_ne!(
        echo_pid(&after),
        before,
        "answered by the killed environment's runtime"
    );
    let pool = esb.admin_pool("echo");
    let pids = pids_in_state(&pool, "idle");
    assert_eq!(pids.len(), 1, "{pool:#}");
    assert_ne!(pids[0], killed, "{pool:#}");
    assert_eq!(counter(&pool, "cold_starts"), 2, "{pool:#}");
    assert_eq!(pool["live"], 1, "{pool:#}");
}

/// Done when 7: SIGTERM stops esb and every environment it started, leaving no process behind.
#[test]
fn sigterm_leaves_no_environment_process() {
    let mut esb =
        start_echo("max_capacity: 2, min_capacity: 2, idle_timeout: 300, acquire_timeout: 10");
    let t = Duration::from_secs(20);
    let pids = poll_pool(&esb, "echo", t, "2 idle environments", |p| {
        let pids = pids_in_state(p, "idle");
        (pids.len() == 2).then_some(pids)
    });
    let dir = state_dir_of(pids[0]).expect("environment without ESB_STATE_DIR");
    assert_eq!(state_dir_of(pids[1]).as_deref(), Some(dir.as_str()));
    let marked = processes_marked(&dir);
    assert!(
        pids.iter().all(|p| marked.contains(p)) && marked.len() >= 2,
        "marked {marked:?}, environments {pids:?}"
    );

    send_signal(esb.child.pid(), "TERM");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = esb.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < t,
            "esb still running {t:?} after SIGTERM:\n{}",
            esb.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "esb exited with {status}:\n{}", esb.log());

    let alive: Vec<_> = pids.iter().filter(|p| proc_exists(**p)).collect();
    assert!(alive.is_empty(), "environments still exist: {alive:?}");
    let left = processes_marked(&dir);
    assert!(
        left.is_empty(),
        "processes with ESB_STATE_DIR={dir} left: {left:?}"
    );
}

/// Done when 8: a function that cannot start fails fast with 502, and after repeated failures
/// the breaker opens and answers 502 without trying.
#[test]
fn unstartable_function_fails_fast_and_opens_the_breaker() {
    let esb = start_with(&process_fn(
        "echo",
        "/nonexistent",
        "max_capacity: 2, min_capacity: 0, idle_timeout: 300, acquire_timeout: 10",
    ));
    let t = Duration::from_secs(10);
    let mut tries = 0;
    while esb.admin_pool("echo")["breaker"] != "open" {
        tries += 1;
        assert!(
            tries <= 5,
            "breaker still closed after 5 failed starts: {:#}\n{}",
            esb.admin_pool("echo"),
            esb.log()
        );
        let start = Instant::now();
        let r = call(&esb, "/public/echo", t);
        assert_eq!(r.status, 502, "{}", r.text());
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "502 took {:?}",
            start.elapsed()
        );
    }
    let pool = esb.admin_pool("echo");
    assert_eq!(counter(&pool, "start_failures"), 5, "{pool:#}");
    assert_eq!(counter(&pool, "circuit_opens"), 1, "{pool:#}");
    // Every failed attempt was a cold start begun.
    assert_eq!(counter(&pool, "cold_starts"), 5, "{pool:#}");
    assert_eq!(pool["live"], 0, "{pool:#}");

    // Open: answered without another start.
    let r = call(&esb, "/public/echo", t);
    assert_eq!(r.status, 502, "{}", r.text());
    let pool = esb.admin_pool("echo");
    assert_eq!(counter(&pool, "cold_starts"), 5, "{pool:#}");
    assert_eq!(counter(&pool, "start_failures"), 5, "{pool:#}");
    assert_eq!(pool["breaker"], "open", "{pool:#}");
}

/// Checklist C6: a Python function whose module fails at import answers API Gateway's 502, and
/// each request initialises the runtime exactly once: no tight re-init loop, and the environment
/// itself (esb-rie) stays up and is reused. (The error body at the RIE is esb-rie's conformance
/// test `init_error_is_reported_the_same_way`.)
#[test]
fn a_function_failing_at_import_answers_502_with_one_init_per_request() {
    let py = esb_testkit::install::awslambdaric_python();
    let dir = esb_testkit::workspace_root().join("tests/functions/python");
    let broken = format!(
        "  broken:\n    runtime: process\n    command: [{py:?}, \"-m\", \"awslambdaric\", \"broken.fn\"]\n    working_dir: {dir:?}\n    timeout: 10\n    scaling: {{ max_capacity: 1 }}\n",
    );
    let functions =
        process_fn("echo", echo_binary().to_str().unwrap(), "max_capacity: 1") + &broken;
    let esb =
        Esb::start(&setup(&functions).routes(
            "  - path: \"/broken\"\n    method: ANY\n    function: broken\n    auth: none\n",
        ));
    let t = Duration::from_secs(30);
    for _ in 0..3 {
        let r = call(&esb, "/broken", t);
        assert_eq!(r.status, 502, "{}", r.text());
        assert_eq!(
            r.json(),
            serde_json::json!({"message": "Internal server error"})
        );
    }
    let log = esb.log();
    let inits = log
        .lines()
        .filter(|l| l.contains("exec '") && l.contains("handler=broken.fn"))
        .count();
    assert_eq!(inits, 3, "one init per request:\n{log}");
    let pool = esb.admin_pool("broken");
    assert_eq!(counter(&pool, "cold_starts"), 1, "{pool:#}");
    assert_eq!(counter(&pool, "crashes"), 0, "{pool:#}");
}
