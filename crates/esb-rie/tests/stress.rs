//! Stress: the HAProxy pattern that crashed AWS's RIE (the next invoke on another connection
//! microseconds after the previous answer), 100,000 times, plus bursts of truly concurrent
//! invokes. esb-rie must never crash, every sequential invoke must succeed with its own echo,
//! and every overlapping one must get the documented 429.
//! `ESB_RIE_STRESS_INVOKES` overrides the count (default 100,000).

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

use common::{Emulator, Env, Function, INVOKE, echo_body};
use esb_testkit::http::Response;

fn assert_documented_rejection(r: &Response) {
    assert_eq!(r.status, 429, "{}", r.text());
    let body: serde_json::Value = serde_json::from_slice(&r.body).expect("429 body is JSON");
    assert_eq!(body["errorType"], "TooManyRequestsException");
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("TooManyRequestsException")
    );
}

#[test]
fn back_to_back_invokes_on_alternating_connections_and_concurrent_bursts() {
    let invokes: u32 = std::env::var("ESB_RIE_STRESS_INVOKES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut env = Env::start(Emulator::Esb, Function::RustEcho, 30);

    // Two clients, each on its own keep-alive connection, strictly alternating with no pause.
    let mut clients = [env.client(), env.client()];
    let started = Instant::now();
    for i in 0..invokes {
        let body = format!("{{\"i\":{i}}}");
        let r = clients[(i % 2) as usize]
            .post(INVOKE, &[], body.as_bytes())
            .unwrap_or_else(|e| panic!("invoke {i}: {e}\n{}", env.child.log()));
        assert_eq!(r.status, 200, "invoke {i}: {}", r.text());
        // The echo carries the event as an escaped JSON string: check it is this invoke's.
        let needle = format!("\\\"event\\\":{{\\\"i\\\":{i}}}");
        assert!(
            r.text().contains(&needle),
            "invoke {i} got another answer: {}",
            r.text()
        );
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{invokes} alternating invokes in {elapsed:?} ({:.0}/s)",
        f64::from(invokes) / elapsed.as_secs_f64()
    );
    assert!(env.child.is_running(), "esb-rie died\n{}", env.child.log());

    // Bursts of truly concurrent invokes: one runs, the others are refused, none is lost.
    let threads = 8;
    for round in 0..40 {
        let sleep_ms = if round % 2 == 0 { 300 } else { 0 };
        let barrier = Arc::new(Barrier::new(threads));
        let port = env.port;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = barrier.clone();
                thread::spawn(move || {
                    let mut c = esb_testkit::http::Client::connect(port).unwrap();
                    let body = format!("{{\"round\":{round},\"t\":{t},\"sleep_ms\":{sleep_ms}}}");
                    barrier.wait();
                    (t, c.post(INVOKE, &[], body.as_bytes()).unwrap())
                })
            })
            .collect();
        let mut ok = 0;
        for h in handles {
            let (t, r) = h.join().expect("burst client");
            if r.status == 200 {
                ok += 1;
                let event = echo_body(&r).1["event"].clone();
                assert_eq!(event["t"], t, "round {round}: answer for another caller");
                assert_eq!(event["round"], round);
            } else {
                assert_documented_rejection(&r);
            }
        }
        assert!(
            ok >= 1,
            "round {round}: every concurrent invoke was refused"
        );
        if sleep_ms > 0 {
            // All eight arrived within the 300 ms the first one runs: exactly one ran.
            assert_eq!(ok, 1, "round {round}: overlapping invokes ran together");
        }
        // The environment is free again right away.
        let r = env.invoke(&[], b"{\"after\":1}");
        assert_eq!(r.status, 200, "after round {round}: {}", r.text());
    }
    assert!(env.child.is_running(), "esb-rie died\n{}", env.child.log());
}
