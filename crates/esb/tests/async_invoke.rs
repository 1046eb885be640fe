//! Durable Event invocations and chained invocation through the real `esb` binary (issue #6): a
//! Python function (awslambdaric under esb-rie) records each event's id in a file; esb is killed
//! with SIGKILL while accepting them and restarted on the same state; every id that got a 202
//! must run. And a function calls another through esb's Invoke API with plain boto3 over HTTPS.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Esb, Setup};

const DRIVER: &str = "epoll";
const MAX_CAPACITY: usize = 4;

fn python() -> PathBuf {
    esb_testkit::install::awslambdaric_python()
}

fn python_dir() -> PathBuf {
    esb_testkit::workspace_root().join("tests/functions/python")
}

/// esb with `record` (and the Rust `echo`) on the process runtime, its state and queue in `state`.
fn setup(state: &Path, record_file: &Path) -> Setup {
    setup_with(state, record_file, "")
}

/// [`setup`] with more lines for the `[async]` section.
fn setup_with(state: &Path, record_file: &Path, async_extra: &str) -> Setup {
    let functions = format!(
        "functions:\n  echo:\n    runtime: process\n    command: [{echo:?}]\n    timeout: 10\n  record:\n    runtime: process\n    command: [{py:?}, \"-m\", \"awslambdaric\", \"async_record.record\"]\n    working_dir: {dir:?}\n    timeout: 10\n    environment: {{ RECORD_FILE: {file:?} }}\n    scaling: {{ max_capacity: {MAX_CAPACITY}, acquire_timeout: 10 }}\n",
        echo = esb_testkit::cargo_bin("esb-echo", "echo").to_str().unwrap(),
        py = python().to_str().unwrap(),
        dir = python_dir().to_str().unwrap(),
        file = record_file.to_str().unwrap(),
    );
    Setup::new(DRIVER)
        .runtime(&format!(
            "rie_binary = {:?}\nstate_dir = {:?}",
            esb_testkit::cargo_bin("esb-rie", "esb-rie")
                .to_str()
                .unwrap(),
            state.join("state").to_str().unwrap()
        ))
        .toml(&format!(
            "[async]\nqueue_dir = {:?}\n{async_extra}\n",
            state.join("queue").to_str().unwrap()
        ))
        .functions_yml(&functions)
}

/// One Event invocation of `record` with `body` on `conn`; `None` when esb is gone.
fn send_event(conn: &mut support::Conn, body: &str) -> Option<u16> {
    let req = format!(
        "POST /2015-03-31/functions/record/invocations HTTP/1.1\r\nHost: localhost\r\nX-Amz-Invocation-Type: Event\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.try_send(req.as_bytes()).ok()?;
    conn.try_read_response().map(|r| r.status)
}

fn recorded(file: &Path) -> HashMap<usize, usize> {
    let mut seen = HashMap::new();
    for line in std::fs::read_to_string(file).unwrap_or_default().lines() {
        *seen
            .entry(line.trim().parse::<usize>().unwrap())
            .or_insert(0) += 1;
    }
    seen
}

#[test]
fn every_accepted_event_runs_across_a_kill_9() {
    const TOTAL: usize = 1000;
    const KILL_AFTER: usize = 400;
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("recorded.txt");
    let setup = setup(state.path(), &file);
    let mut esb = Esb::start(&setup);

    // Four clients accept ids from a shared counter; the main thread kills esb mid-stream.
    let next = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let gone = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (next, accepted, gone) = (next.clone(), accepted.clone(), gone.clone());
            let mut conn = esb.connect();
            std::thread::spawn(move || {
                while !gone.load(Ordering::Relaxed) {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    if id >= TOTAL {
                        return;
                    }
                    match send_event(&mut conn, &format!("{{\"id\": {id}}}")) {
                        Some(202) => accepted.lock().unwrap().push(id),
                        Some(other) => panic!("id {id}: status {other}"),
                        None => return,
                    }
                }
            })
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(60);
    while accepted.lock().unwrap().len() < KILL_AFTER {
        assert!(Instant::now() < until, "esb accepted too slowly");
        std::thread::sleep(Duration::from_millis(2));
    }
    esb.child.kill();
    gone.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    let accept_secs = started.elapsed().as_secs_f64();
    let before_restart = recorded(&file);
    eprintln!(
        "accepted {} Event invocations in {accept_secs:.2}s before kill -9; {} had run",
        accepted.len(),
        before_restart.len()
    );

    let esb = Esb::start(&setup);
    let until = Instant::now() + Duration::from_secs(180);
    loop {
        let seen = recorded(&file);
        let missing = accepted.iter().filter(|id| !seen.contains_key(id)).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < until,
            "{missing} accepted ids never ran\n{}",
            esb.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        esb.log().contains("will run again"),
        "the restart recovered nothing?\n{}",
        esb.log()
    );
    // At least once: only invocations in an environment at the instant of the kill (at most the
    // function's capacity) may have run twice; the function never fails here.
    let seen = recorded(&file);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.len() <= MAX_CAPACITY, "ran more than once: {twice:?}");
    eprintln!(
        "after restart: {} distinct ids ran, {} twice",
        seen.len(),
        twice.len()
    );
}

/// A failing Event invocation is tried once and retried twice (Lambda's policy, here with short
/// delays from `[async] retry_delays_secs`), then lands in the dead-letter file with the last error;
/// a succeeding one beside it runs exactly once and is not dead-lettered.
#[test]
fn a_failing_event_is_retried_twice_then_dead_lettered() {
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("recorded.txt");
    let setup = setup_with(state.path(), &file, "retry_delays_secs = [0.2, 0.4]");
    let esb = Esb::start(&setup);
    let mut conn = esb.connect();
    let doomed = r#"{"id": 7, "fail": true}"#;
    for body in [doomed, r#"{"id": 8}"#] {
        assert_eq!(send_event(&mut conn, body), Some(202));
    }
    let dead_letters = state.path().join("queue/dead-letter.jsonl");
    let started = Instant::now();
    let letters = loop {
        let text = std::fs::read_to_string(&dead_letters).unwrap_or_default();
        if !text.is_empty() && recorded(&file).contains_key(&8) {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no dead letter and record of 8 yet; log:\n{}",
            esb.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let lines: Vec<serde_json::Value> = letters
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{letters}");
    let letter = &lines[0];
    assert_eq!(letter["function"], "record", "{letter}");
    assert_eq!(letter["attempts"], 3, "one try and two retries: {letter}");
    assert_eq!(letter["payload"], doomed, "{letter}");
    assert!(
        letter["error"]
            .as_str()
            .unwrap()
            .contains("asked to fail: 7"),
        "{letter}"
    );
    assert_eq!(recorded(&file), HashMap::from([(8, 1)]));
}

#[test]
fn a_function_calls_another_with_plain_boto3_over_https() {
    // boto3 must be importable by the functions' python; the awslambdaric venv gets it once.
    let py = python();
    let has_boto3 = std::process::Command::new(&py)
        .args(["-c", "import boto3"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_boto3 {
        let out = std::process::Command::new("bash")
            .args([
                "-c",
                &format!(
                    "exec 9>\"{py}.boto3.lock\"; flock 9; \"{py}\" -m pip install --quiet --disable-pip-version-check boto3",
                    py = py.display()
                ),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "installing boto3 failed (is PyPI reachable?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("unused.txt");
    let mut setup = setup(state.path(), &file);
    setup.functions_yml = Some(format!(
        "{}  chain:\n    runtime: process\n    command: [{py:?}, \"-m\", \"awslambdaric\", \"async_record.chain\"]\n    working_dir: {dir:?}\n    timeout: 20\n",
        setup.functions_yml.clone().unwrap(),
        py = py.to_str().unwrap(),
        dir = python_dir().to_str().unwrap(),
    ));
    let esb = Esb::start(&setup);
    let mut conn = esb.connect();
    conn.set_read_timeout(Duration::from_secs(60));
    let r = conn.request(
        "POST",
        "/2015-03-31/functions/chain/invocations",
        &[(
            "X-Amzn-Trace-Id",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
        )],
        br#"{"target": "echo", "payload": {"hello": "chained"}}"#,
    );
    assert_eq!(r.status, 200, "{}\n{}", r.text(), esb.log());
    assert_eq!(r.header("x-amz-function-error"), None, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["function_error"], serde_json::Value::Null, "{v}");
    // echo answers in API Gateway's proxy shape, the event inside `body`.
    let body: serde_json::Value =
        serde_json::from_str(v["payload"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["event"]["hello"], "chained", "{v}");
    assert_eq!(body["context"]["function_name"], "echo", "{v}");
    // The outer trace id reached the inner invocation (RIE → _X_AMZN_TRACE_ID → boto3).
    assert_eq!(
        body["context"]["xray_trace_id"], "Root=1-5759e988-bd862e3fe1be46a994272793",
        "{v}"
    );
    assert_eq!(
        v["endpoint"],
        format!("https://127.0.0.1:{}", esb.port),
        "{v}"
    );
}
