//! Conformance: the same scenarios against esb-rie and AWS's real RIE, hosting the same Rust
//! (lambda_runtime) and Python (awslambdaric) functions. Status and body must be identical
//! (request ids normalised); the documented differences are asserted explicitly.

mod common;

use std::thread;
use std::time::Duration;

use common::{Emulator, Env, Function, INVOKE, echo_body, without_uuids};
use esb_testkit::http::Response;

const ARN: &str = "arn:aws:lambda:us-east-1:012345678912:function:test_function";

/// Runs `scenario` against both emulators (concurrently) and returns (esb, aws).
fn both<T: Send>(scenario: impl Fn(Emulator) -> T + Sync) -> (T, T) {
    thread::scope(|s| {
        let aws = s.spawn(|| scenario(Emulator::Aws));
        let esb = scenario(Emulator::Esb);
        (esb, aws.join().expect("AWS RIE scenario panicked"))
    })
}

/// Status and normalised body must match.
fn assert_same(what: &str, esb: &Response, aws: &Response) {
    assert_eq!(
        (esb.status, without_uuids(&esb.text())),
        (aws.status, without_uuids(&aws.text())),
        "{what}: esb-rie (left) and AWS RIE (right) differ"
    );
}

/// esb-rie adds `X-Amz-Function-Error: Unhandled`; AWS's RIE never sends it.
fn assert_function_error_header(esb: &Response, aws: &Response, expected_on_esb: bool) {
    assert_eq!(
        esb.header("x-amz-function-error"),
        expected_on_esb.then_some("Unhandled"),
        "esb-rie X-Amz-Function-Error"
    );
    assert_eq!(
        aws.header("x-amz-function-error"),
        None,
        "AWS RIE never sends it"
    );
}

#[test]
fn rust_echo_success_is_the_same() {
    let (esb, aws) = both(|emu| {
        let env = Env::start(emu, Function::RustEcho, 10);
        env.invoke(&[], br#"{"hello":"world","n":[1,2]}"#)
    });
    assert_eq!((esb.status, aws.status), (200, 200));
    let (esb_outer, esb_inner) = echo_body(&esb);
    let (aws_outer, aws_inner) = echo_body(&aws);
    assert_eq!(esb_outer["statusCode"], 200);
    assert_eq!(esb_outer["headers"], aws_outer["headers"]);
    assert_eq!(
        esb_inner["event"],
        serde_json::json!({"hello":"world","n":[1,2]})
    );
    assert_eq!(esb_inner["event"], aws_inner["event"]);
    for key in [
        "invoked_function_arn",
        "function_name",
        "memory",
        "version",
        "log_stream",
        "log_group",
        "client_context",
        "identity",
        "xray_trace_id",
    ] {
        assert_eq!(
            esb_inner["context"][key], aws_inner["context"][key],
            "context.{key}"
        );
    }
    assert_eq!(esb_inner["context"]["invoked_function_arn"], ARN);
    assert_eq!(esb_inner["context"]["memory"], 3008);
    // Deadline = invoke time + timeout, in epoch ms.
    for inner in [&esb_inner, &aws_inner] {
        let id = inner["context"]["request_id"].as_str().unwrap();
        assert_eq!(without_uuids(id), "<uuid>");
        assert!(inner["context"]["deadline"].as_u64().unwrap() > 1_700_000_000_000);
    }
    // Documented difference: the runtime's Content-Type reaches the caller.
    assert_eq!(esb.header("content-type"), Some("application/json"));
    assert_eq!(
        aws.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_function_error_header(&esb, &aws, false);
}

#[test]
fn python_echo_is_byte_identical() {
    let body = br#"{"a": 1, "b": [true, null, "x"], "c": {"d": 1.5}}"#;
    let (esb, aws) = both(|emu| {
        let env = Env::start(emu, Function::Python("handler.echo"), 10);
        (env.invoke(&[], body), env.invoke(&[], b"\"just a string\""))
    });
    assert_same("python echo", &esb.0, &aws.0);
    assert_eq!(esb.0.status, 200);
    assert_eq!(
        esb.0.text(),
        r#"{"a": 1, "b": [true, null, "x"], "c": {"d": 1.5}}"#
    );
    assert_same("python echo of a string", &esb.1, &aws.1);
}

#[test]
fn function_errors_are_the_same_but_flagged_by_esb() {
    let (esb, aws) = both(|emu| {
        let rust = Env::start(emu, Function::RustEcho, 10);
        let py = Env::start(emu, Function::Python("handler.error"), 10);
        (rust.invoke(&[], br#"{"fail":1}"#), py.invoke(&[], b"{}"))
    });
    assert_same("rust function error", &esb.0, &aws.0);
    assert_eq!(esb.0.status, 200);
    assert!(
        esb.0.text().contains("echo was asked to fail"),
        "{}",
        esb.0.text()
    );
    assert_function_error_header(&esb.0, &aws.0, true);
    assert_same("python function error", &esb.1, &aws.1);
    assert!(
        esb.1.text().contains("boom from python"),
        "{}",
        esb.1.text()
    );
    assert_function_error_header(&esb.1, &aws.1, true);
}

#[test]
fn timeout_then_reinitialise() {
    let (esb, aws) = both(|emu| {
        let env = Env::start(emu, Function::RustEcho, 1);
        let warm = env.invoke(&[], b"{}");
        let timed_out = env.invoke(&[], br#"{"sleep_ms":3000}"#);
        let after = env.invoke(&[], b"{}");
        (warm, timed_out, after)
    });
    assert_same("timeout", &esb.1, &aws.1);
    assert_eq!(esb.1.status, 200);
    assert_eq!(esb.1.text(), "Task timed out after 1.00 seconds");
    assert_function_error_header(&esb.1, &aws.1, true);
    for (name, (warm, _, after)) in [("esb", &esb), ("aws", &aws)] {
        assert_eq!(after.status, 200, "{name} after timeout: {}", after.text());
        let pid_before = echo_body(warm).1["env"]["pid"].clone();
        let pid_after = echo_body(after).1["env"]["pid"].clone();
        assert_ne!(
            pid_before, pid_after,
            "{name}: the runtime was not re-initialised"
        );
    }
}

#[test]
fn python_timeout_is_the_same() {
    let (esb, aws) = both(|emu| {
        let env = Env::start(emu, Function::Python("handler.sleep"), 1);
        let timed_out = env.invoke(&[], br#"{"sleep_ms": 2500}"#);
        let after = env.invoke(&[], br#"{"sleep_ms": 1}"#);
        (timed_out, after)
    });
    assert_same("python timeout", &esb.0, &aws.0);
    assert_same("python after timeout", &esb.1, &aws.1);
    assert_eq!(esb.1.text(), r#"{"slept_ms": 1}"#);
}

#[test]
fn crash_is_a_502_exit_error_then_reinitialise() {
    let (esb, aws) = both(|emu| {
        let env = Env::start(emu, Function::RustEcho, 10);
        let crashed = env.invoke(&[], br#"{"crash":1}"#);
        let after = env.invoke(&[], b"{}");
        (crashed, after)
    });
    assert_same("crash", &esb.0, &aws.0);
    assert_eq!(esb.0.status, 502);
    assert_eq!(
        without_uuids(&esb.0.text()),
        r#"{"errorType":"Runtime.ExitError","errorMessage":"RequestId: <uuid> Error: Runtime exited with error: exit status 1"}"#
    );
    assert_function_error_header(&esb.0, &aws.0, true);
    assert_eq!((esb.1.status, aws.1.status), (200, 200));
}

#[test]
fn oversized_response_is_refused_the_same_way() {
    let (esb, aws) = both(|emu| {
        let env = Env::start(emu, Function::RustEcho, 20);
        let big = env.invoke(&[], br#"{"big":7000000}"#);
        let after = env.invoke(&[], b"{}");
        (big, after)
    });
    assert_same("oversized response", &esb.0, &aws.0);
    assert_eq!(esb.0.status, 200);
    assert!(
        esb.0.text().contains("Function.ResponseSizeTooLarge"),
        "{}",
        esb.0.text()
    );
    assert_function_error_header(&esb.0, &aws.0, true);
    assert_eq!((esb.1.status, aws.1.status), (200, 200));
}

#[test]
fn large_response_under_the_limit_passes() {
    let (esb, aws) = both(|emu| {
        let env = Env::start(emu, Function::RustEcho, 20);
        env.invoke(&[], br#"{"big":6000000}"#)
    });
    assert_same("6 MB response", &esb, &aws);
    assert_eq!(
        echo_body(&esb).0["body"].as_str().map(str::len),
        Some(6_000_000)
    );
}

#[test]
fn empty_body_is_passed_as_empty() {
    let (esb, aws) = both(|emu| {
        let rust = Env::start(emu, Function::RustEcho, 10);
        let py = Env::start(emu, Function::Python("handler.echo"), 10);
        (rust.invoke(&[], b""), py.invoke(&[], b""))
    });
    // Neither runtime accepts an empty event: both answer with their unmarshal error.
    assert_same("rust empty body", &esb.0, &aws.0);
    assert_same("python empty body", &esb.1, &aws.1);
    assert!(
        esb.1.text().contains("Runtime.UnmarshalError"),
        "{}",
        esb.1.text()
    );
}

#[test]
fn client_context_is_decoded_and_invalid_base64_is_a_500() {
    // {"custom":{"k":"v"},"env":{"e":"1"}} in base64.
    let ctx = "eyJjdXN0b20iOnsiayI6InYifSwiZW52Ijp7ImUiOiIxIn19";
    let (esb, aws) = both(|emu| {
        let env = Env::start(emu, Function::RustEcho, 10);
        let good = env.invoke(&[("X-Amz-Client-Context", ctx)], b"{}");
        let bad = env.invoke(&[("X-Amz-Client-Context", "!!not base64!!")], b"{}");
        (good, bad)
    });
    assert_eq!((esb.0.status, aws.0.status), (200, 200));
    let cc = |r: &Response| echo_body(r).1["context"]["client_context"].clone();
    assert_eq!(cc(&esb.0), cc(&aws.0));
    assert_eq!(cc(&esb.0)["custom"]["k"], "v");
    assert_same("invalid client context", &esb.1, &aws.1);
    assert_eq!((esb.1.status, esb.1.body.len()), (500, 0));
}

#[test]
fn unknown_paths_get_gos_404() {
    let (esb, aws) = both(|emu| {
        let env = Env::start(emu, Function::Idle, 10);
        let mut c = env.client();
        let a = c
            .post("/2015-03-31/functions/other/invocations", &[], b"{}")
            .unwrap();
        let b = c.get("/").unwrap();
        let mut r = env.runtime();
        let d = r.get("/2018-06-01/runtime/invocation/nxt").unwrap();
        let e = r.get("/2018-06-01/ping").unwrap();
        (a, b, d, e)
    });
    assert_same("wrong function name", &esb.0, &aws.0);
    assert_eq!(esb.0.text(), "404 page not found\n");
    assert_same("root", &esb.1, &aws.1);
    assert_same("unknown runtime API path", &esb.2, &aws.2);
    assert_same("ping", &esb.3, &aws.3);
}

/// Plays the runtime's first `GET /next`. Both emulators start the runtime (and AWS's RIE its
/// Runtime API) only when an invoke arrives, so poll with backoff until the invocation is handed
/// out.
fn first_next(env: &Env) -> (esb_testkit::http::Client, Response) {
    let mut pause = Duration::from_millis(1);
    for _ in 0..200 {
        if let Ok(mut rt) = esb_testkit::http::Client::connect(env.runtime_port)
            && let Ok(res) = rt.get("/2018-06-01/runtime/invocation/next")
            && res.status == 200
        {
            return (rt, res);
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    panic!(
        "{:?}: no invocation on /next\n{}",
        env.emulator,
        env.child.log()
    );
}

/// What the test saw while playing the runtime.
struct RuntimeSide {
    next_headers: Vec<(String, String)>,
    next_body: Vec<u8>,
    wrong_id: Response,
    accepted: Response,
    second_response: Response,
    error_after: Response,
    caller: Response,
}

fn play_runtime(emu: Emulator) -> RuntimeSide {
    let env = Env::start(emu, Function::Idle, 10);
    let port = env.port;
    let caller = thread::spawn(move || {
        esb_testkit::http::post(
            port,
            INVOKE,
            &[
                ("X-Amz-Client-Context", "eyJhIjoxfQ=="),
                ("Content-Type", "text/foo"),
            ],
            br#"{"x":1}"#,
        )
        .unwrap()
    });
    let (mut rt, next) = first_next(&env);
    let id = next
        .header("lambda-runtime-aws-request-id")
        .expect("request id header")
        .to_owned();
    let base = "/2018-06-01/runtime/invocation";
    let wrong_id = rt
        .post(&format!("{base}/bogus/response"), &[], b"x")
        .unwrap();
    let accepted = rt
        .post(
            &format!("{base}/{id}/response"),
            &[("Content-Type", "application/x-custom")],
            br#"{"ok":true}"#,
        )
        .unwrap();
    let second_response = rt
        .post(&format!("{base}/{id}/response"), &[], b"x")
        .unwrap();
    let error_after = rt.post(&format!("{base}/{id}/error"), &[], b"x").unwrap();
    // AWS's RIE answers the caller only once the runtime asks for the next event.
    let mut rt2 = env.runtime();
    let _parked = thread::spawn(move || rt2.get("/2018-06-01/runtime/invocation/next"));
    let caller = caller.join().unwrap();
    RuntimeSide {
        next_headers: next.headers,
        next_body: next.body,
        wrong_id,
        accepted,
        second_response,
        error_after,
        caller,
    }
}

#[test]
fn runtime_api_matches_when_the_test_plays_the_runtime() {
    let (esb, aws) = both(play_runtime);
    assert_eq!(esb.next_body, br#"{"x":1}"#);
    assert_eq!(esb.next_body, aws.next_body);
    // Same /next headers, same names and case, same values except the request id and deadline.
    let shape = |h: &[(String, String)]| {
        let mut v: Vec<(String, String)> = h
            .iter()
            .filter(|(n, _)| n != "Date" && n != "Content-Length")
            .map(|(n, v)| {
                let v = match n.as_str() {
                    "Lambda-Runtime-Deadline-Ms" => "<deadline>".to_owned(),
                    _ => without_uuids(v),
                };
                (n.clone(), v)
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(shape(&esb.next_headers), shape(&aws.next_headers));
    assert!(
        shape(&esb.next_headers).contains(&(
            "Lambda-Runtime-Client-Context".to_owned(),
            r#"{"a":1}"#.to_owned()
        )),
        "{:?}",
        esb.next_headers
    );
    assert_same("wrong request id", &esb.wrong_id, &aws.wrong_id);
    assert_eq!(esb.wrong_id.status, 400);
    assert_same("202", &esb.accepted, &aws.accepted);
    assert_eq!(esb.accepted.status, 202);
    assert_same(
        "second response",
        &esb.second_response,
        &aws.second_response,
    );
    assert_eq!(esb.second_response.status, 403);
    assert_same("error after response", &esb.error_after, &aws.error_after);
    assert_same("caller", &esb.caller, &aws.caller);
    assert_eq!(esb.caller.text(), r#"{"ok":true}"#);
    // Documented difference: the runtime's Content-Type passes through.
    assert_eq!(
        esb.caller.header("content-type"),
        Some("application/x-custom")
    );
    assert_eq!(
        aws.caller.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
}

#[test]
fn runtime_api_size_limit_is_6_mib_plus_100() {
    let limit = 6 * 1024 * 1024 + 100;
    let run = |emu: Emulator| {
        let env = Env::start(emu, Function::Idle, 10);
        let mut results = Vec::new();
        type Polled = std::io::Result<(esb_testkit::http::Client, Response)>;
        let mut parked: Option<thread::JoinHandle<Polled>> = None;
        for size in [limit, limit + 1] {
            let port = env.port;
            let caller =
                thread::spawn(move || esb_testkit::http::post(port, INVOKE, &[], b"{}").unwrap());
            // The first invocation starts the runtime; later ones go to the poll parked after
            // the previous response (AWS's RIE answers the caller only once that poll arrives).
            let (mut rt, next) = match parked.take() {
                None => first_next(&env),
                Some(p) => p.join().unwrap().expect("parked /next"),
            };
            let id = next
                .header("lambda-runtime-aws-request-id")
                .unwrap()
                .to_owned();
            let res = rt
                .post(
                    &format!("/2018-06-01/runtime/invocation/{id}/response"),
                    &[],
                    &vec![b'b'; size],
                )
                .unwrap();
            let mut rt2 = env.runtime();
            parked = Some(thread::spawn(move || {
                // The last poll ends with the emulator: an error then is expected.
                rt2.get("/2018-06-01/runtime/invocation/next")
                    .map(|next| (rt2, next))
            }));
            results.push((res, caller.join().unwrap()));
        }
        results
    };
    let (esb, aws) = both(run);
    for (i, ((er, ec), (ar, ac))) in esb.iter().zip(aws.iter()).enumerate() {
        assert_same(&format!("runtime side #{i}"), er, ar);
        assert_eq!(ec.status, ac.status, "caller side #{i}");
        assert_eq!(ec.body, ac.body, "caller side #{i}");
    }
    assert_eq!(esb[0].0.status, 202);
    assert_eq!(esb[0].1.body.len(), limit);
    assert_eq!(esb[1].0.status, 413);
    assert!(esb[1].1.text().contains("Function.ResponseSizeTooLarge"));
}

#[test]
fn init_error_is_reported_the_same_way() {
    // broken.py raises at import: awslambdaric posts /runtime/init/error and exits; the waiting
    // invoke gets 502 with the runtime's error body, and every invoke re-initialises.
    let (esb, aws) = both(|emu| {
        let env = Env::start(emu, Function::Python("broken.fn"), 10);
        (env.invoke(&[], b"{}"), env.invoke(&[], b"{}"))
    });
    assert_same("init error", &esb.0, &aws.0);
    assert_eq!(esb.0.status, 502);
    assert!(
        esb.0.text().contains("broken on purpose"),
        "{}",
        esb.0.text()
    );
    assert_function_error_header(&esb.0, &aws.0, true);
    assert_same("init error again", &esb.1, &aws.1);
}

#[test]
fn documented_difference_overlapping_invokes() {
    // esb-rie: the second concurrent invoke gets a 429 with an error object and the first one
    // completes. AWS's RIE crashes here (nil-pointer panic), so only esb-rie is exercised.
    let env = Env::start(Emulator::Esb, Function::RustEcho, 10);
    env.invoke(&[], b"{}");
    let port = env.port;
    let slow = thread::spawn(move || {
        // A probe may hold the slot at the moment this arrives: retry until it runs.
        loop {
            let r = esb_testkit::http::post(port, INVOKE, &[], br#"{"sleep_ms":1500}"#).unwrap();
            if r.status != 429 {
                return r;
            }
        }
    });
    // Probe until the slow invoke is in flight: only then is a probe refused.
    let since = std::time::Instant::now();
    let rejected = loop {
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "no probe was refused"
        );
        let r = env.invoke(&[], b"{}");
        if r.status == 429 {
            break r;
        }
        assert!(r.status == 200 || r.status == 429, "{}", r.text());
    };
    let body: serde_json::Value = serde_json::from_slice(&rejected.body).unwrap();
    assert_eq!(body["errorType"], "TooManyRequestsException");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("one invocation at a time")
    );
    assert_eq!(
        rejected.header("x-amzn-errortype"),
        Some("TooManyRequestsException")
    );
    assert_eq!(rejected.header("x-amz-function-error"), None);
    let slow = slow.join().unwrap();
    assert_eq!(slow.status, 200, "{}", slow.text());
    assert_eq!(echo_body(&slow).1["event"]["sleep_ms"], 1500);
}

#[test]
fn documented_difference_aws_rie_dies_on_an_overlapping_invoke() {
    // The defect esb-rie fixes, shown on the real binary: a second invoke while one is in flight
    // makes AWS's RIE panic (nil pointer after ReserveFailed), dropping both callers.
    let mut env = Env::start(Emulator::Aws, Function::RustEcho, 10);
    let port = env.port;
    let first =
        thread::spawn(move || esb_testkit::http::post(port, INVOKE, &[], br#"{"sleep_ms":3000}"#));
    // START is printed before the invocation is dispatched; the function then sleeps 3 s.
    let mut pause = Duration::from_millis(1);
    let since = std::time::Instant::now();
    while !env.child.log().contains("START RequestId") {
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "{}",
            env.child.log()
        );
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    let second = esb_testkit::http::post(port, INVOKE, &[], b"{}");
    assert!(
        second.is_err(),
        "AWS RIE answered an overlapping invoke: {second:?}"
    );
    assert!(
        first.join().unwrap().is_err(),
        "the in-flight caller survived"
    );
    let mut pause = Duration::from_millis(1);
    let since = std::time::Instant::now();
    while env.child.is_running() {
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "AWS RIE kept running"
        );
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    let log = env.child.log();
    assert!(log.contains("ReserveFailed: AlreadyReserved"), "{log}");
    assert!(log.contains("nil pointer dereference"), "{log}");
}

#[test]
fn documented_difference_trace_id_and_request_id_headers() {
    let env = Env::start(Emulator::Esb, Function::RustEcho, 10);
    let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let r = env.invoke(&[("X-Amzn-Trace-Id", trace)], b"{}");
    assert_eq!(echo_body(&r).1["context"]["xray_trace_id"], trace);
    let id = echo_body(&r).1["context"]["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(r.header("x-amzn-requestid"), Some(id.as_str()));
}

#[test]
fn esb_answers_the_caller_on_response_without_waiting_for_next() {
    // AWS's RIE holds the answer until the runtime asks for the next event; esb-rie answers as
    // soon as the runtime posts it (as Lambda does), which is what makes back-to-back invokes
    // race-free and fast.
    let env = Env::start(Emulator::Esb, Function::Idle, 10);
    let port = env.port;
    let caller = thread::spawn(move || esb_testkit::http::post(port, INVOKE, &[], b"{}").unwrap());
    let (mut rt, next) = first_next(&env);
    let id = next
        .header("lambda-runtime-aws-request-id")
        .unwrap()
        .to_owned();
    rt.post(
        &format!("/2018-06-01/runtime/invocation/{id}/response"),
        &[],
        b"\"done\"",
    )
    .unwrap();
    let res = caller.join().unwrap();
    assert_eq!((res.status, res.text().as_str()), (200, "\"done\""));
}

#[test]
fn a_caller_hanging_up_does_not_wedge_esb_rie() {
    // The hung-up invocation still runs to its end (or its timeout); the slot is then free.
    let env = Env::start(Emulator::Esb, Function::RustEcho, 10);
    {
        let mut c = env.client();
        c.send_raw(
            format!(
                "POST {INVOKE} HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n\r\n{{\"sleep_ms\":300}}"
            )
            .as_bytes(),
        )
        .unwrap();
    }
    let since = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let r = env.invoke(&[], br#"{"after":1}"#);
        if r.status == 200 {
            assert_eq!(echo_body(&r).1["event"]["after"], 1);
            break;
        }
        assert_eq!(r.status, 429, "{}", r.text());
        assert!(since.elapsed() < Duration::from_secs(30), "still refused");
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[test]
fn oversized_request_is_truncated_the_same_way() {
    // Both emulators cut the event at 6 MiB + 100 bytes without telling anyone; the truncated
    // JSON then fails to parse in the runtime, identically.
    let mut body = Vec::with_capacity(7_000_002);
    body.push(b'"');
    body.resize(7_000_001, b'a');
    body.push(b'"');
    let (esb, aws) = both(|emu| {
        let rust = Env::start(emu, Function::RustEcho, 20);
        let py = Env::start(emu, Function::Python("handler.echo"), 20);
        (rust.invoke(&[], &body), py.invoke(&[], &body))
    });
    assert_same("rust, 7 MB event", &esb.0, &aws.0);
    assert_same("python, 7 MB event", &esb.1, &aws.1);
    assert!(
        esb.1.text().contains("Runtime.UnmarshalError"),
        "{}",
        esb.1.text()
    );
}

#[test]
fn documented_difference_log_type_tail_returns_the_invocations_log() {
    use base64::Engine as _;
    let decode = |r: &Response| -> Option<String> {
        let b64 = r.header("x-amz-log-result")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("X-Amz-Log-Result is base64");
        Some(String::from_utf8(bytes).expect("the tail is UTF-8"))
    };
    let (esb, aws) = both(|emu| {
        let env = Env::start(emu, Function::Python("handler.chatty"), 10);
        let tail = [("X-Amz-Log-Type", "Tail")];
        let first = env.invoke(&tail, br#"{"marker":"m-one"}"#);
        let plain = env.invoke(&[], br#"{"marker":"m-plain"}"#);
        let second = env.invoke(&tail, br#"{"marker":"m-two"}"#);
        (first, plain, second, env.child.log())
    });
    // AWS's RIE ignores the header.
    for r in [&aws.0, &aws.1, &aws.2] {
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-amz-log-result"), None);
    }
    let (first, plain, second, log) = esb;
    assert_eq!((first.status, plain.status, second.status), (200, 200, 200));
    assert_eq!(first.text(), aws.0.text());
    assert_eq!(
        plain.header("x-amz-log-result"),
        None,
        "only when asked for"
    );
    for (r, marker, other) in [(&first, "m-one", "m-two"), (&second, "m-two", "m-one")] {
        let text = decode(r).expect("esb-rie answers Tail with X-Amz-Log-Result");
        let id = r.header("x-amzn-requestid").unwrap();
        assert!(
            text.starts_with(&format!("START RequestId: {id} Version: $LATEST\n")),
            "{text}"
        );
        assert!(text.contains(&format!("stdout says {marker}\n")), "{text}");
        assert!(text.contains(&format!("stderr says {marker}\n")), "{text}");
        assert!(text.contains(&format!("\nEND RequestId: {id}\n")), "{text}");
        assert!(
            text.contains(&format!("\nREPORT RequestId: {id}\t")),
            "{text}"
        );
        assert!(text.ends_with("\t\n"), "REPORT is the last line: {text}");
        assert!(!text.contains(other) && !text.contains("m-plain"), "{text}");
    }
    // The runtime's output still reaches esb-rie's own stdout/stderr.
    assert!(log.contains("stdout says m-one\n"), "{log}");
    assert!(log.contains("stderr says m-one\n"), "{log}");
}
