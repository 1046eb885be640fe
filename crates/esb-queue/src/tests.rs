//! Queue behaviour across reopen, torn writes, compaction, retries and a real `kill -9`.

use super::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn small() -> Options {
    Options {
        retry: RetryPolicy::default(),
        compact_min_bytes: 2048,
        ..Options::default()
    }
}

fn reopen(dir: &Path) -> (Queue, Vec<Pending>) {
    Queue::open_with(dir, small()).unwrap()
}

fn ids(pending: &[Pending]) -> Vec<u64> {
    pending.iter().map(|p| p.id.0).collect()
}

/// Reopening `dir` yields exactly `want` (ids) as pending.
#[track_caller]
fn check_pending(dir: &Path, want: &[u64]) -> (Queue, Vec<Pending>) {
    let (q, pending) = reopen(dir);
    assert_eq!(ids(&pending), want);
    assert_eq!(q.len(), want.len());
    (q, pending)
}

#[test]
fn accepted_invocations_survive_reopen_with_their_fields() {
    let dir = tempfile::tempdir().unwrap();
    let (q, pending) = reopen(dir.path());
    assert!(pending.is_empty() && q.is_empty());
    let a = q
        .enqueue(
            "orders",
            b"{\"orderId\":7}",
            Some("eyJhIjoxfQ=="),
            Some("Root=1-abc"),
        )
        .unwrap();
    let b = q.enqueue("mail", b"", None, None).unwrap();
    assert_eq!((a, b), (Id(1), Id(2)));
    drop(q);

    let (q, pending) = check_pending(dir.path(), &[1, 2]);
    assert_eq!(
        pending[0],
        Pending {
            id: Id(1),
            function: "orders".into(),
            payload: b"{\"orderId\":7}".to_vec(),
            client_context: Some("eyJhIjoxfQ==".into()),
            trace_id: Some("Root=1-abc".into()),
            attempts: 0,
            not_before: None,
        }
    );
    assert_eq!(pending[1].payload, b"");
    assert_eq!(pending[1].client_context, None);
    assert_eq!(q.torn_bytes(), 0);
    // Ids keep increasing across restarts.
    assert_eq!(q.enqueue("mail", b"x", None, None).unwrap(), Id(3));
}

#[test]
fn completed_invocations_do_not_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let (q, _) = reopen(dir.path());
    for i in 0..5 {
        q.enqueue("f", format!("{i}").as_bytes(), None, None)
            .unwrap();
    }
    q.complete(Id(2)).unwrap();
    q.complete(Id(4)).unwrap();
    assert!(matches!(
        q.complete(Id(4)),
        Err(QueueError::UnknownId(Id(4)))
    ));
    assert!(matches!(
        q.complete(Id(99)),
        Err(QueueError::UnknownId(Id(99)))
    ));
    drop(q);
    let (q, pending) = check_pending(dir.path(), &[1, 3, 5]);
    assert_eq!(pending[1].payload, b"2");
    q.complete(Id(1)).unwrap();
    drop(q);
    check_pending(dir.path(), &[3, 5]);
}

#[test]
fn retries_then_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let (q, _) = reopen(dir.path());
    let id = q
        .enqueue("flaky", b"{\"k\":1}", None, Some("Root=1-t"))
        .unwrap();
    let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    assert_eq!(
        q.fail_attempt(id, t0, "boom 1").unwrap(),
        Outcome::Retry {
            at: t0 + Duration::from_secs(60)
        }
    );
    drop(q);

    // The attempt count and the due time survive a restart.
    let (q, pending) = check_pending(dir.path(), &[1]);
    assert_eq!(pending[0].attempts, 1);
    assert_eq!(pending[0].not_before, Some(t0 + Duration::from_secs(60)));
    let t1 = t0 + Duration::from_secs(61);
    assert_eq!(
        q.fail_attempt(id, t1, "boom 2").unwrap(),
        Outcome::Retry {
            at: t1 + Duration::from_secs(120)
        }
    );
    let t2 = t1 + Duration::from_secs(121);
    assert_eq!(
        q.fail_attempt(id, t2, "boom 3").unwrap(),
        Outcome::DeadLetter
    );
    assert!(matches!(
        q.fail_attempt(id, t2, "again"),
        Err(QueueError::UnknownId(_))
    ));

    let dead = read_dead_letters(&q.dead_letter_path()).unwrap();
    assert_eq!(
        dead,
        vec![DeadLetter {
            id: 1,
            function: "flaky".into(),
            attempts: 3,
            failed_at_ms: to_ms(t2),
            error: "boom 3".into(),
            payload: Some("{\"k\":1}".into()),
            payload_base64: None,
            client_context: None,
            trace_id: Some("Root=1-t".into()),
        }]
    );
    drop(q);
    check_pending(dir.path(), &[]);
}

#[test]
fn dead_letters_keep_binary_payloads_and_survive_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        retry: RetryPolicy { delays: vec![] },
        ..small()
    };
    let (q, _) = Queue::open_with(dir.path(), opts).unwrap();
    let dlq = q.dead_letter_path();
    let a = q.enqueue("bin", &[0xff, 0x00, 0xfe], None, None).unwrap();
    assert_eq!(
        q.fail_attempt(a, UNIX_EPOCH, "e").unwrap(),
        Outcome::DeadLetter
    );
    // A crash mid-line leaves a partial last line; the next entry must still be readable.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&dlq)
        .unwrap()
        .write_all_at(b"{\"id\":9,\"func", std::fs::metadata(&dlq).unwrap().len())
        .unwrap();
    let b = q.enqueue("text", b"hi", None, None).unwrap();
    assert_eq!(
        q.fail_attempt(b, UNIX_EPOCH, "e").unwrap(),
        Outcome::DeadLetter
    );

    let dead = read_dead_letters(&dlq).unwrap();
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].payload, None);
    assert_eq!(dead[0].payload_base64.as_deref(), Some("/wD+"));
    assert_eq!(dead[0].payload_bytes(), vec![0xff, 0x00, 0xfe]);
    assert_eq!(dead[1].payload_bytes(), b"hi");
}

/// Builds a log of three enqueues and a completion of the second, and returns its bytes and the
/// offsets where each record ends.
fn three_records(dir: &Path) -> (Vec<u8>, Vec<u64>) {
    let (q, _) = Queue::open_with(dir, small()).unwrap();
    let mut ends = Vec::new();
    q.enqueue("f", b"{\"n\":1}", None, None).unwrap();
    ends.push(q.log_bytes());
    q.enqueue("f", b"{\"n\":2}", Some("Y2M="), None).unwrap();
    ends.push(q.log_bytes());
    q.complete(Id(2)).unwrap();
    ends.push(q.log_bytes());
    q.enqueue("f", b"{\"n\":3}", None, Some("Root=1")).unwrap();
    ends.push(q.log_bytes());
    drop(q);
    (std::fs::read(dir.join(LOG)).unwrap(), ends)
}

#[test]
fn a_torn_last_record_is_dropped_at_every_byte() {
    let src = tempfile::tempdir().unwrap();
    let (log, ends) = three_records(src.path());
    assert_eq!(*ends.last().unwrap(), log.len() as u64);
    for cut in 0..=log.len() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOG), &log[..cut]).unwrap();
        // What survives is every record wholly before the cut.
        let whole = ends.iter().filter(|&&e| e <= cut as u64).count();
        let want: &[u64] = match whole {
            0 => &[],
            1 => &[1],
            2 => &[1, 2],
            3 => &[1],
            _ => &[1, 3],
        };
        let (q, pending) = check_pending(dir.path(), want);
        let good = if whole == 0 { 0 } else { ends[whole - 1] };
        assert_eq!(q.torn_bytes(), cut as u64 - good, "cut at {cut}");
        // The torn tail was cut off, so a new record is readable after it.
        let id = q.enqueue("f", b"after", None, None).unwrap();
        drop(q);
        let (_, after) = reopen(dir.path());
        assert_eq!(after.last().unwrap().id, id, "cut at {cut}");
        assert_eq!(after.len(), pending.len() + 1);
    }
}

#[test]
fn garbage_after_the_last_record_is_dropped() {
    let src = tempfile::tempdir().unwrap();
    let (log, _) = three_records(src.path());
    for tail in [
        vec![0u8; 100],
        vec![0xffu8; 3],
        b"\x10\0\0\0garbage!".to_vec(),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = log.clone();
        bytes.extend_from_slice(&tail);
        std::fs::write(dir.path().join(LOG), &bytes).unwrap();
        let (q, _) = check_pending(dir.path(), &[1, 3]);
        assert_eq!(q.torn_bytes(), tail.len() as u64);
        assert_eq!(q.log_bytes(), log.len() as u64);
    }
}

#[test]
fn compaction_bounds_the_log_and_keeps_ids_unique() {
    let dir = tempfile::tempdir().unwrap();
    let (q, _) = reopen(dir.path());
    let payload = vec![b'p'; 100];
    let mut max_len = 0;
    for round in 0..50u64 {
        let a = q.enqueue("f", &payload, None, None).unwrap();
        let b = q.enqueue("f", &payload, None, None).unwrap();
        q.complete(a).unwrap();
        if round % 10 != 0 {
            q.complete(b).unwrap();
        }
        max_len = max_len.max(q.log_bytes());
    }
    // 100 enqueues of ~130 bytes would be 13 KB uncompacted; compaction keeps it near 2 KB.
    assert!(max_len < 2048 + 2 * 200, "log grew to {max_len}");
    // Ids 2, 22, 42, 62, 82 were never completed.
    let live = [2, 22, 42, 62, 82];
    assert_eq!(q.len(), 5);
    q.fail_attempt(Id(42), UNIX_EPOCH, "x").unwrap();
    q.compact().unwrap();
    drop(q);
    let (q, pending) = check_pending(dir.path(), &live);
    assert_eq!(
        pending[2].attempts, 1,
        "a failed attempt survives compaction"
    );
    assert!(pending.iter().all(|p| p.payload == payload));
    for id in live {
        q.complete(Id(id)).unwrap();
    }
    q.compact().unwrap();
    drop(q);
    // Every record is gone, but the next id still follows the last one handed out.
    let (q, _) = check_pending(dir.path(), &[]);
    assert_eq!(q.enqueue("f", b"", None, None).unwrap(), Id(101));
}

#[test]
fn a_crashed_compaction_leaves_the_old_log_in_charge() {
    let dir = tempfile::tempdir().unwrap();
    let (q, _) = reopen(dir.path());
    q.enqueue("f", b"1", None, None).unwrap();
    drop(q);
    std::fs::write(dir.path().join(COMPACT_TMP), b"half a compaction").unwrap();
    check_pending(dir.path(), &[1]);
    assert!(!dir.path().join(COMPACT_TMP).exists());
}

#[test]
fn one_process_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (q, _) = reopen(dir.path());
    let no_wait = Options {
        lock_wait: Duration::ZERO,
        ..small()
    };
    assert!(matches!(
        Queue::open_with(dir.path(), no_wait.clone()),
        Err(QueueError::Locked(_))
    ));
    let started = std::time::Instant::now();
    let waiting = Options {
        lock_wait: Duration::from_millis(50),
        ..small()
    };
    assert!(matches!(
        Queue::open_with(dir.path(), waiting),
        Err(QueueError::Locked(_))
    ));
    assert!(started.elapsed() >= Duration::from_millis(50));
    drop(q);
    assert!(Queue::open(dir.path()).is_ok());
}

#[test]
fn concurrent_enqueues_are_all_durable_and_distinct() {
    let dir = tempfile::tempdir().unwrap();
    let (q, _) = reopen(dir.path());
    let q = Arc::new(q);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| {
                        let payload = format!("{t}-{i}");
                        (
                            q.enqueue("f", payload.as_bytes(), None, None).unwrap(),
                            payload,
                        )
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut acked = BTreeMap::new();
    for t in threads {
        for (id, payload) in t.join().unwrap() {
            assert!(
                acked.insert(id.0, payload).is_none(),
                "id {id} handed out twice"
            );
        }
    }
    drop(q);
    let (_, pending) = reopen(dir.path());
    let got: BTreeMap<u64, String> = pending
        .into_iter()
        .map(|p| (p.id.0, String::from_utf8(p.payload).unwrap()))
        .collect();
    assert_eq!(got, acked);
}

const CHILD_DIR: &str = "ESB_QUEUE_KILL9_CHILD_DIR";

/// Not a test: the body of the child process `kill9_loses_no_acknowledged_invocation` starts
/// (this test binary, re-executed). It enqueues forever, printing `ACK id payload` after each
/// enqueue returned and `DONE id` after completing two of every three, with a tiny compaction threshold
/// so the kill also lands inside compactions.
#[test]
#[ignore = "child process entry point of kill9_loses_no_acknowledged_invocation"]
fn kill9_child_entry() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let opts = Options {
        compact_min_bytes: 16 << 10,
        ..Options::default()
    };
    let (q, _) = Queue::open_with(Path::new(&dir), opts).unwrap();
    for n in 0u64.. {
        let payload = format!(
            "{{\"n\":{n},\"pad\":\"{}\"}}",
            "x".repeat((n % 200) as usize)
        );
        let id = q.enqueue("f", payload.as_bytes(), None, None).unwrap();
        println!("ACK {id} {payload}");
        // Two of three complete, so most of the log is dead and compaction runs often.
        if id.0 % 3 != 0 {
            q.complete(id).unwrap();
            println!("DONE {id}");
        }
    }
}

#[test]
fn kill9_loses_no_acknowledged_invocation() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: BTreeMap<u64, String> = BTreeMap::new();
    let mut done: BTreeSet<u64> = BTreeSet::new();
    let mut unacked: BTreeSet<u64> = BTreeSet::new();
    // Kill after different amounts of work so the kill lands at different points.
    for kill_after in [150usize, 400, 777] {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "tests::kill9_child_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut seen = 0;
        let mut killed = false;
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            // libtest prints `test name ... ` without a newline before the child's first line.
            let line = line.rsplit(" ... ").next().unwrap_or_default();
            if let Some(rest) = line.strip_prefix("ACK ") {
                let (id, payload) = rest.split_once(' ').unwrap();
                acked.insert(id.parse().unwrap(), payload.to_string());
                seen += 1;
            } else if let Some(id) = line.strip_prefix("DONE ") {
                done.insert(id.parse().unwrap());
            }
            if seen >= kill_after && !killed {
                child.kill().unwrap(); // SIGKILL
                killed = true;
            }
        }
        let status = child.wait().unwrap();
        assert!(killed, "child exited by itself: {status:?}");

        let (q, pending) = reopen(dir.path());
        // Where the kill landed, for a reader running with --nocapture.
        eprintln!(
            "killed after {kill_after} acks: {} pending, {} torn bytes cut",
            pending.len(),
            q.torn_bytes()
        );
        let got: BTreeMap<u64, String> = pending
            .iter()
            .map(|p| (p.id.0, String::from_utf8(p.payload.clone()).unwrap()))
            .collect();
        for (id, payload) in &acked {
            if done.contains(id) {
                assert!(!got.contains_key(id), "completed {id} came back");
            } else {
                assert_eq!(got.get(id), Some(payload), "acknowledged {id} lost");
            }
        }
        // Anything else pending was enqueued but killed before its ACK was printed: the
        // newest few ids only.
        let max_acked = *acked.keys().last().unwrap();
        for id in got.keys().filter(|id| !acked.contains_key(id)) {
            assert!(
                *id > max_acked || unacked.contains(id),
                "unexplained pending id {id}"
            );
            unacked.insert(*id);
        }
        drop(q);
    }
    assert!(acked.len() >= 150 + 400 + 777);
}
