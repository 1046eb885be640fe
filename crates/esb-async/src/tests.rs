//! The consumer against a fake RIE (a loopback listener on its own thread): successes complete,
//! function errors are retried then dead-lettered, recovered records run, capacity is respected.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use esb_model::{FunctionName, FunctionSpec, RuntimeSpec, ScalingSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A fake RIE: answers every invocation, reporting its payload on `seen`; payloads containing
/// `fail` get a function error. Each answer waits `delay` (to make invocations overlap).
fn fake_rie(delay: Duration) -> (SocketAddr, std_mpsc::Receiver<String>) {
    let (tx, rx) = std_mpsc::channel();
    let (addr_tx, addr_rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(l.local_addr().unwrap()).unwrap();
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut req = Vec::new();
                    let body = loop {
                        let mut chunk = [0u8; 4096];
                        let n = s.read(&mut chunk).await.unwrap();
                        assert!(n > 0, "client closed early");
                        req.extend_from_slice(&chunk[..n]);
                        let mut h = [httparse::EMPTY_HEADER; 32];
                        let mut r = httparse::Request::new(&mut h);
                        if let Ok(httparse::Status::Complete(at)) = r.parse(&req) {
                            let len: usize = r
                                .headers
                                .iter()
                                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                                .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                                .unwrap();
                            if req.len() >= at + len {
                                break String::from_utf8(req[at..at + len].to_vec()).unwrap();
                            }
                        }
                    };
                    tokio::time::sleep(delay).await;
                    let fail = body.contains("fail");
                    tx.send(body).unwrap();
                    let head = if fail {
                        "HTTP/1.1 200 OK\r\nX-Amz-Function-Error: Unhandled\r\nContent-Length: 2\r\n\r\n{}"
                    } else {
                        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
                    };
                    let _ = s.write_all(head.as_bytes()).await;
                });
            }
        });
    });
    (addr_rx.recv().unwrap(), rx)
}

fn function(addr: SocketAddr) -> FunctionSpec {
    FunctionSpec {
        name: FunctionName::new("f"),
        runtime: RuntimeSpec::Endpoint { addr },
        timeout: Duration::from_secs(5),
        memory_size: 128,
        environment: BTreeMap::new(),
        scaling: ScalingSpec::default(),
        schedules: vec![],
    }
}

fn table(f: &FunctionSpec) -> Arc<PoolTable> {
    let (tx, _rx) = esb_pool::control_channel();
    PoolTable::new(
        vec![esb_pool::PoolSpec::from_function(f)],
        tx,
        Instant::now(),
    )
}

fn settings(dir: &std::path::Path) -> AsyncSettings {
    AsyncSettings {
        retry: RetryPolicy {
            delays: vec![Duration::from_millis(10), Duration::from_millis(20)],
        },
        busy_backoff: Duration::from_millis(10),
        ..AsyncSettings::new(dir.to_path_buf())
    }
}

/// Waits (bounded) until the queue is empty.
fn drained(s: &Submitter) {
    let until = Instant::now() + Duration::from_secs(10);
    while s.queued() > 0 {
        assert!(Instant::now() < until, "{} still queued", s.queued());
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn successes_complete_and_errors_are_retried_twice_then_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, seen) = fake_rie(Duration::ZERO);
    let f = function(addr);
    let opened = open(settings(dir.path()), std::slice::from_ref(&f)).unwrap();
    assert_eq!(opened.recovered(), 0);
    let handle = opened.start(std::slice::from_ref(&f), table(&f)).unwrap();
    let s = handle.submitter();
    s.submit("f", b"{\"n\":1}", None, None).unwrap();
    s.submit("f", b"{\"fail\":true}", None, Some("Root=1-x"))
        .unwrap();
    s.submit("f", b"{\"n\":2}", None, None).unwrap();

    let mut got: Vec<String> = (0..5)
        .map(|_| seen.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "{\"fail\":true}",
            "{\"fail\":true}",
            "{\"fail\":true}",
            "{\"n\":1}",
            "{\"n\":2}"
        ]
    );
    drained(&s);
    let dead = esb_queue::read_dead_letters(&dir.path().join("dead-letter.jsonl")).unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].payload.as_deref(), Some("{\"fail\":true}"));
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].trace_id.as_deref(), Some("Root=1-x"));
    assert!(
        dead[0].error.contains("function error"),
        "{}",
        dead[0].error
    );
    assert!(seen.try_recv().is_err(), "no fourth attempt");
    handle.shutdown(Instant::now());
}

#[test]
fn records_left_by_a_previous_run_run_at_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (q, _) = Queue::open(dir.path()).unwrap();
        for i in 0..3 {
            q.enqueue("f", format!("{{\"left\":{i}}}").as_bytes(), None, None)
                .unwrap();
        }
    }
    let (addr, seen) = fake_rie(Duration::ZERO);
    let f = function(addr);
    let opened = open(settings(dir.path()), std::slice::from_ref(&f)).unwrap();
    assert_eq!(opened.recovered(), 3);
    let handle = opened.start(std::slice::from_ref(&f), table(&f)).unwrap();
    let mut got: Vec<String> = (0..3)
        .map(|_| seen.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    got.sort();
    assert_eq!(got, ["{\"left\":0}", "{\"left\":1}", "{\"left\":2}"]);
    drained(&handle.submitter());
    drop(handle);
    // Completed for good: a reopen finds nothing.
    let (_, pending) = Queue::open(dir.path()).unwrap();
    assert!(pending.is_empty());
}

#[test]
fn a_second_esb_on_the_same_queue_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = function("127.0.0.1:9".parse().unwrap());
    let _first = open(settings(dir.path()), std::slice::from_ref(&f)).unwrap();
    let mut s = settings(dir.path());
    s.queue_dir = dir.path().to_path_buf();
    let err = open(s, std::slice::from_ref(&f)).unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
}

#[test]
fn an_invalid_schedule_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = function("127.0.0.1:9".parse().unwrap());
    f.schedules.push(esb_model::ScheduleSpec {
        expression: "rate(1 minutes)".into(),
        input: None,
        enabled: true,
    });
    let err = open(settings(dir.path()), std::slice::from_ref(&f)).unwrap_err();
    assert!(err.to_string().contains("function f"), "{err}");
}
