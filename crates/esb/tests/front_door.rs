//! The HTTPS front door of the real `esb` binary, driven over TLS with exact bytes: framing,
//! limits, early answers, pipelining, timeouts (checklist §7 A), on both IO drivers. None of these
//! need a function: they must all be answered before anything is invoked.

mod support;

use std::time::Duration;

use support::{DRIVERS, Esb, Setup};

fn each_driver(limits: &str, test: impl Fn(&Esb)) {
    for driver in DRIVERS {
        let esb = Esb::start(&Setup::new(driver).limits(limits));
        test(&esb);
        assert!(
            esb.log().contains(&format!("driver=\"{driver}\"")),
            "esb did not run on {driver}:\n{}",
            esb.log()
        );
    }
}

/// Sends `bytes` on a fresh connection and expects exactly one response with `status`, then a
/// closed connection (nothing after the bad request is ever parsed).
fn refused_and_closed(esb: &Esb, bytes: &[u8], status: u16) {
    let mut c = esb.connect();
    c.send(bytes);
    let r = c.read_response();
    assert_eq!(
        r.status,
        status,
        "{:?} → {}",
        String::from_utf8_lossy(bytes),
        r.text()
    );
    assert_eq!(
        r.header("connection"),
        Some("close"),
        "{:?}",
        String::from_utf8_lossy(bytes)
    );
    assert!(
        c.is_closed(),
        "still open after {:?}",
        String::from_utf8_lossy(bytes)
    );
}

const PROBE: &[u8] = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: probe\r\n\r\n";

#[test]
fn health_request_ids_and_keep_alive() {
    each_driver("", |esb| {
        let mut c = esb.connect();
        let r = c.request("GET", "/health", &[], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), serde_json::json!({"status": "healthy"}));
        let id = r.header("x-amzn-RequestId").unwrap().to_string();
        assert_eq!(id.len(), 36, "{id}");
        assert!(r.header("x-request-id").is_none());
        // Same connection: a new id, and an incoming X-Request-Id is kept and echoed.
        let r = c.request("GET", "/health", &[("X-Request-Id", "trace-42")], b"");
        assert_eq!(r.header("x-amzn-RequestId"), Some("trace-42"));
        assert_eq!(r.header("X-Request-Id"), Some("trace-42"));
        // An unusable id (spaces) is replaced, not echoed.
        let r = c.request("GET", "/health", &[("X-Request-Id", "a b")], b"");
        assert_ne!(r.header("x-amzn-RequestId"), Some("a b"));
        let r = c.request("HEAD", "/health", &[], b"");
        assert_eq!((r.status, r.body.len()), (200, 0));
    });
}

#[test]
fn unknown_route_is_403_missing_authentication_token_and_keeps_the_connection() {
    each_driver("", |esb| {
        let mut c = esb.connect();
        for path in ["/nope", "/echo", "/health/x", "/"] {
            let r = c.request("GET", path, &[], b"");
            assert_eq!(r.status, 403, "{path}");
            assert_eq!(
                r.json(),
                serde_json::json!({"message": "Missing Authentication Token"})
            );
            assert_eq!(
                r.header("x-amzn-ErrorType"),
                Some("MissingAuthenticationTokenException")
            );
        }
        // A method the route does not have is the same answer (API Gateway does not say 405).
        let r = c.request("DELETE", "/health", &[], b"");
        assert_eq!(r.status, 403);
        assert_eq!(c.request("GET", "/health", &[], b"").status, 200);
    });
}

#[test]
fn a1_a2_a4_a5_framing_ambiguities_are_400_and_close() {
    each_driver("", |esb| {
        // A1: CL + TE, with a smuggled request after it.
        let mut a1 = b"POST /public/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 23\r\nTransfer-Encoding: chunked\r\n\r\nD\r\nhello-bananas\r\n0\r\n\r\n".to_vec();
        a1.extend_from_slice(PROBE);
        refused_and_closed(esb, &a1, 400);
        // A2: differing duplicate Content-Length, both orders.
        refused_and_closed(esb, b"POST /public/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 0\r\n\r\nZ", 400);
        refused_and_closed(esb, b"POST /public/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\nZ", 400);
        // A4: malformed lengths.
        for cl in [
            "+3",
            "-48",
            "0x10",
            "010",
            "1Z",
            "+1_0",
            "99999999999999999999999",
            "1 0",
        ] {
            let req =
                format!("POST /public/echo HTTP/1.1\r\nHost: a\r\nContent-Length: {cl}\r\n\r\n");
            refused_and_closed(esb, req.as_bytes(), 400);
        }
        // A5: transfer codings other than exactly `chunked`.
        for te in [
            "chunked, chunked",
            "gzip, chunked",
            "chunked, gzip",
            ",chunked",
            "chunked,",
        ] {
            let req = format!(
                "POST /public/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {te}\r\n\r\n0\r\n\r\n"
            );
            refused_and_closed(esb, req.as_bytes(), 400);
        }
        for te in ["gzip", "identity", "xchunked"] {
            let req = format!(
                "POST /public/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {te}\r\n\r\n0\r\n\r\n"
            );
            refused_and_closed(esb, req.as_bytes(), 501);
        }
        refused_and_closed(
            esb,
            b"POST /public/echo HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        );
        refused_and_closed(esb, b"POST /public/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
    });
}

#[test]
fn a14_bare_lf_and_cr_and_a18_host_rules() {
    each_driver("", |esb| {
        refused_and_closed(esb, b"GET /health HTTP/1.1\nHost: x\n\n", 400);
        refused_and_closed(
            esb,
            b"GET /health HTTP/1.1\r\nHost: x\r\nVisible: :/\rSmuggled: :)\r\n\r\n",
            400,
        );
        // A18: Host missing, doubled, a list, with userinfo or a path, empty.
        refused_and_closed(esb, b"GET /health HTTP/1.1\r\n\r\n", 400);
        refused_and_closed(
            esb,
            b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            400,
        );
        for host in ["a, b", "user@a", "a/b", ""] {
            let req = format!("GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n");
            refused_and_closed(esb, req.as_bytes(), 400);
        }
    });
}

#[test]
fn a9_early_answers_never_let_the_body_become_a_request() {
    each_driver("", |esb| {
        // The body is a complete request; the route does not exist (403 before the body).
        let smuggled = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: smuggled\r\n\r\n";
        let head = format!(
            "POST /nope HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            smuggled.len()
        );
        // In one write, and with the body in a later write: either way it is consumed.
        for split in [false, true] {
            let mut c = esb.connect();
            if split {
                c.send(head.as_bytes());
                let r = c.read_response();
                assert_eq!(r.status, 403);
                c.send(smuggled);
            } else {
                let mut bytes = head.clone().into_bytes();
                bytes.extend_from_slice(smuggled);
                c.send(&bytes);
                assert_eq!(c.read_response().status, 403);
            }
            c.send(PROBE);
            // Kept alive, the next answer must be the probe's, never the smuggled one's.
            if let Some(r) = c.try_read_response() {
                assert_eq!(r.header("x-request-id"), Some("probe"), "split={split}");
            }
        }
        // Missing token on a Cognito route, and a wrong key on the login path: same rule.
        for (path, hdr) in [
            ("/echo/a", "X-Nothing: 1"),
            ("/user/auth/v1", "x-api-key: wrong"),
        ] {
            let mut bytes = format!(
                "POST {path} HTTP/1.1\r\nHost: a\r\n{hdr}\r\nContent-Length: {}\r\n\r\n",
                smuggled.len()
            )
            .into_bytes();
            bytes.extend_from_slice(smuggled);
            bytes.extend_from_slice(PROBE);
            let mut c = esb.connect();
            c.send(&bytes);
            assert_eq!(c.read_response().status, 401, "{path}");
            let next = c
                .try_read_response()
                .map(|r| r.header("x-request-id").map(str::to_owned));
            assert!(
                matches!(next, None | Some(Some(_))) && next != Some(Some("smuggled".into())),
                "{path}: {next:?}"
            );
        }
        // A big body that is not there yet: answered with close (it is never read).
        let mut c = esb.connect();
        c.send(b"POST /nope HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n");
        let r = c.read_response();
        assert_eq!((r.status, r.header("connection")), (403, Some("close")));
        assert!(c.is_closed());
    });
}

#[test]
fn a12_no_100_continue_for_a_refused_request() {
    each_driver("", |esb| {
        let mut c = esb.connect();
        c.send(b"POST /echo/x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1048576\r\n\r\n");
        let r = c.read_response();
        assert_eq!(r.status, 401, "no 100 Continue first");
        assert_eq!(r.header("connection"), Some("close"));
        // The client sends the body anyway; none of it is parsed as requests.
        let _ = c.try_send(&PROBE.repeat(100));
        assert!(c.try_read_response().is_none());
    });
}

#[test]
fn a13_pipelined_requests_answer_in_order_and_an_invalid_one_closes_after_the_rest() {
    each_driver("", |esb| {
        let mut c = esb.connect();
        let mut bytes = Vec::new();
        for i in 0..3 {
            bytes.extend_from_slice(
                format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: r{i}\r\n\r\n").as_bytes(),
            );
        }
        c.send(&bytes);
        for i in 0..3 {
            let r = c.read_response();
            assert_eq!(
                (r.status, r.header("x-request-id")),
                (200, Some(format!("r{i}").as_str()))
            );
        }
        let mut bytes = Vec::new();
        for i in 0..2 {
            bytes.extend_from_slice(
                format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: s{i}\r\n\r\n").as_bytes(),
            );
        }
        bytes.extend_from_slice(b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n");
        bytes.extend_from_slice(PROBE);
        c.send(&bytes);
        assert_eq!(c.read_response().header("x-request-id"), Some("s0"));
        assert_eq!(c.read_response().header("x-request-id"), Some("s1"));
        let r = c.read_response();
        assert_eq!((r.status, r.header("connection")), (400, Some("close")));
        assert!(c.is_closed());
    });
}

#[test]
fn a23_oversized_heads_and_a25_oversized_bodies() {
    each_driver("max_body_bytes = 10485760", |esb| {
        // A 64 KiB header, 101 and 1000 headers, a 9 KB request line.
        let big = format!(
            "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(64 * 1024)
        );
        refused_and_closed(esb, big.as_bytes(), 431);
        for n in [101, 1000] {
            let mut req = String::from("GET /health HTTP/1.1\r\nHost: x\r\n");
            for i in 0..n {
                req.push_str(&format!("X-H{i}: v\r\n"));
            }
            req.push_str("\r\n");
            refused_and_closed(esb, req.as_bytes(), 431);
        }
        let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9 * 1024));
        refused_and_closed(esb, long.as_bytes(), 414);
        // A25: 11 MB declared → 413 before any body byte is sent; also a huge length.
        for cl in ["11534336", "9223372036854775807"] {
            let req =
                format!("POST /public/echo HTTP/1.1\r\nHost: x\r\nContent-Length: {cl}\r\n\r\n");
            let mut c = esb.connect();
            c.send(req.as_bytes());
            let r = c.read_response();
            assert_eq!(r.status, 413, "{cl}");
            assert_eq!(r.json(), serde_json::json!({"message": "Request Too Long"}));
            assert!(c.is_closed());
        }
    });
    // A chunked body that grows past the limit mid-way.
    each_driver("max_body_bytes = 1000", |esb| {
        let key = format!("x-api-key: {}", support::DEV_KEY);
        let mut c = esb.connect();
        c.send(format!("POST /user/auth/v1 HTTP/1.1\r\nHost: x\r\n{key}\r\nTransfer-Encoding: chunked\r\n\r\n").as_bytes());
        c.send(format!("200\r\n{}\r\n", "a".repeat(0x200)).as_bytes());
        c.send(format!("200\r\n{}\r\n", "a".repeat(0x200)).as_bytes());
        let r = c.read_response();
        assert_eq!((r.status, r.header("connection")), (413, Some("close")));
        assert!(c.is_closed());
    });
}

#[test]
fn a31_handshake_head_and_idle_timers_close_the_connection() {
    let limits = "handshake_timeout_ms = 300\nhead_timeout_ms = 300\nidle_timeout_ms = 300";
    each_driver(limits, |esb| {
        // Idle keep-alive: after one answer the server closes once the idle timer fires.
        let mut c = esb.connect();
        assert_eq!(c.request("GET", "/health", &[], b"").status, 200);
        c.set_read_timeout(Duration::from_secs(10));
        assert!(c.is_closed(), "idle connection not closed");
        // Slowloris: half a head, never finished.
        let mut c = esb.connect();
        c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n");
        assert!(c.is_closed(), "half a head kept open");
        // TLS handshake never started: plain TCP that sends nothing.
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", esb.port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 16];
        let n = std::io::Read::read(&mut tcp, &mut buf).unwrap_or(0);
        assert_eq!(n, 0, "handshake timer did not close the socket");
    });
}

#[test]
fn max_requests_per_connection_closes_after_the_last_one() {
    each_driver("max_requests_per_connection = 3", |esb| {
        let mut c = esb.connect();
        for i in 1..=3 {
            let r = c.request("GET", "/health", &[], b"");
            let close = r.header("connection") == Some("close");
            assert_eq!(close, i == 3, "request {i}");
        }
        assert!(c.is_closed());
    });
}

#[test]
fn a32_connections_over_the_per_worker_cap_are_closed_at_once() {
    each_driver("max_connections_per_worker = 2", |esb| {
        let mut a = esb.connect();
        let mut b = esb.connect();
        assert_eq!(a.request("GET", "/health", &[], b"").status, 200);
        assert_eq!(b.request("GET", "/health", &[], b"").status, 200);
        // The third is closed before its handshake completes.
        let tcp = std::net::TcpStream::connect(("127.0.0.1", esb.port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 16];
        let n = std::io::Read::read(&mut &tcp, &mut buf).unwrap_or(0);
        assert_eq!(n, 0, "over-cap connection was served");
        // The existing ones are still served, and a slot frees up when one closes.
        assert_eq!(a.request("GET", "/health", &[], b"").status, 200);
        drop(b);
        let mut c = None;
        // Poll (bounded, with backoff) until the server has seen the close.
        for attempt in 0..200 {
            let mut conn = esb.connect_checked();
            if let Some(r) = conn.as_mut().and_then(|c| c.try_request("GET", "/health")) {
                assert_eq!(r.status, 200);
                c = conn;
                break;
            }
            std::thread::sleep(Duration::from_millis(1 + attempt / 4));
        }
        assert!(c.is_some(), "no slot freed after a connection closed");
    });
}

#[test]
fn a24_heads_split_across_many_writes_get_the_same_answers() {
    each_driver("", |esb| {
        // A valid head, one TLS record per byte.
        let mut c = esb.connect();
        for b in PROBE {
            c.send(&[*b]);
        }
        let r = c.read_response();
        assert_eq!((r.status, r.header("x-request-id")), (200, Some("probe")));
        // An oversized header delivered in 7 KB + 5 KB + ... pieces still hits the limit.
        let big = format!(
            "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(64 * 1024)
        );
        let mut c = esb.connect();
        for piece in big.as_bytes().chunks(7 * 1024) {
            if c.try_send(piece).is_err() {
                break;
            }
        }
        let r = c.read_response();
        assert_eq!(r.status, 431);
        assert!(c.is_closed());
    });
}
