//! The invoke path of the real `esb` binary: route → event → esb-rie + `echo` → response, over
//! TLS on both IO drivers, with the function's failure modes (checklist A38, "Done when").

mod support;

use serde_json::json;
use support::{DEV_KEY, DRIVERS, Esb, Rie, Setup};

/// The echoed event of a 200 answer from `echo`.
fn event(r: &support::Response) -> serde_json::Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["event"].clone()
}

#[test]
fn public_route_gets_a_rest_event_with_query_path_and_request_id() {
    let rie = Rie::start();
    for driver in DRIVERS {
        let esb = Esb::start(&Setup::new(driver).rie(rie.port));
        let mut c = esb.connect();
        let r = c.request(
            "GET",
            "/public/echo?x=1&x=2&y=a%20b",
            &[("X-Request-Id", "req-7")],
            b"",
        );
        let e = event(&r);
        assert_eq!(e["multiValueQueryStringParameters"]["x"], json!(["1", "2"]));
        assert_eq!(e["queryStringParameters"]["x"], json!("2"));
        assert_eq!(e["queryStringParameters"]["y"], json!("a b"));
        assert_eq!(e["resource"], json!("/public/echo"));
        assert_eq!(e["path"], json!("/public/echo"));
        assert_eq!(e["httpMethod"], json!("GET"));
        assert_eq!(e["pathParameters"], json!(null));
        assert_eq!(e["requestContext"]["stage"], json!("prod"));
        assert_eq!(e["requestContext"]["path"], json!("/prod/public/echo"));
        assert_eq!(e["requestContext"]["requestId"], json!("req-7"));
        assert_eq!(e["headers"]["X-Request-Id"], json!("req-7"));
        assert_eq!(
            e["requestContext"]["identity"]["sourceIp"],
            json!("127.0.0.1")
        );
        assert_eq!(r.header("x-amzn-RequestId"), Some("req-7"));
        assert_eq!(r.header("X-Request-Id"), Some("req-7"));
        // Same connection, a POST with a body: the body arrives as a string.
        let r = c.request(
            "POST",
            "/public/echo",
            &[("content-type", "application/json")],
            br#"{"k":[1,2]}"#,
        );
        let e = event(&r);
        assert_eq!(e["body"], json!(r#"{"k":[1,2]}"#));
        assert_eq!(e["isBase64Encoded"], json!(false));
        // Chunked request bodies are decoded before the event is built.
        c.send(b"POST /public/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
        assert_eq!(event(&c.read_response())["body"], json!("abcde"));
        // HTTP API (2.0): path parameters, comma-joined duplicates, the $default stage.
        let r = c.request("GET", "/v2/public/a/b?x=1&x=2", &[], b"");
        let e = event(&r);
        assert_eq!(e["version"], json!("2.0"));
        assert_eq!(e["rawPath"], json!("/v2/public/a/b"));
        assert_eq!(e["pathParameters"]["proxy"], json!("a/b"));
        assert_eq!(e["queryStringParameters"]["x"], json!("1,2"));
        assert_eq!(e["requestContext"]["stage"], json!("$default"));
        assert_eq!(e["routeKey"], json!("ANY /v2/public/{proxy+}"));
    }
}

#[test]
fn expect_100_continue_is_answered_once_the_request_is_accepted() {
    let rie = Rie::start();
    for driver in DRIVERS {
        let esb = Esb::start(&Setup::new(driver).rie(rie.port));
        let mut c = esb.connect();
        c.send(b"POST /public/echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
        let interim = c.read_response();
        assert_eq!(interim.status, 100);
        c.send(b"hello");
        let r = c.read_response();
        assert_eq!(event(&r)["body"], json!("hello"));
    }
}

#[test]
fn api_key_routes_are_403_forbidden_without_the_key() {
    let rie = Rie::start();
    for driver in DRIVERS {
        let esb = Esb::start(&Setup::new(driver).rie(rie.port));
        let mut c = esb.connect();
        for key in [
            None,
            Some("wrong"),
            Some("dev-api-key-change-in-productioN"),
            Some("dev-api-key-change-in-production2"),
        ] {
            let headers: Vec<(&str, &str)> = key.map(|k| ("x-api-key", k)).into_iter().collect();
            let r = c.request("GET", "/keyed/echo", &headers, b"");
            assert_eq!(r.status, 403, "{key:?}");
            assert_eq!(r.json(), json!({"message": "Forbidden"}));
        }
        let r = c.request("GET", "/keyed/echo", &[("x-api-key", DEV_KEY)], b"");
        assert_eq!(event(&r)["resource"], json!("/keyed/echo"));
        // Two keys: refused whatever they are (checklist B26, §2.6), and the connection closes.
        let r = c.request(
            "GET",
            "/keyed/echo",
            &[("x-api-key", DEV_KEY), ("x-api-key", DEV_KEY)],
            b"",
        );
        assert_eq!(r.status, 400);
    }
}

#[test]
fn a38_function_failures_map_to_api_gateway_errors() {
    let rie = Rie::start();
    for driver in DRIVERS {
        let esb = Esb::start(&Setup::new(driver).rie(rie.port));
        let mut c = esb.connect();
        let v1_err = json!({"message": "Internal server error"});
        let v2_err = json!({"message": "Internal Server Error"});
        for q in [
            "malformed=1",
            "fail=1",
            "status=99",
            "status=1000",
            "big=7000000",
        ] {
            let r = c.request("GET", &format!("/public/echo?{q}"), &[], b"");
            assert_eq!((r.status, r.json()), (502, v1_err.clone()), "v1 {q}");
            let r = c.request("GET", &format!("/v2/public/x?{q}"), &[], b"");
            assert_eq!((r.status, r.json()), (500, v2_err.clone()), "v2 {q}");
        }
        // The connection survived all of it.
        let r = c.request("GET", "/public/echo?status=201", &[], b"");
        assert_eq!(r.status, 201);
        let r = c.request("GET", "/public/echo?big=10", &[], b"");
        assert_eq!((r.status, r.body.len()), (200, 10));
    }
}

#[test]
fn a_function_slower_than_its_timeout_is_504() {
    for driver in DRIVERS {
        // A RIE per driver: the timed-out invocation keeps the first one busy for a while.
        let rie = Rie::start();
        let esb = Esb::start(&Setup::new(driver).rie(rie.port).fn_timeout(1.0));
        let started = std::time::Instant::now();
        let r = esb.get("/public/echo?sleep_ms=3000", &[]);
        assert_eq!(r.status, 504, "{}", r.text());
        assert_eq!(r.json(), json!({"message": "Endpoint request timed out"}));
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_millis(2500), "{took:?}");
    }
}

#[test]
fn a25_an_11_mb_body_is_413_before_it_is_read() {
    let rie = Rie::start();
    for driver in DRIVERS {
        let esb = Esb::start(&Setup::new(driver).rie(rie.port));
        let mut c = esb.connect();
        let body = vec![b'a'; 11 * 1024 * 1024];
        c.send(
            format!(
                "POST /public/echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        // The answer comes before (and whether or not) the body is sent.
        let r = c.read_response();
        assert_eq!(r.status, 413);
        assert_eq!(r.header("connection"), Some("close"));
        let _ = c.try_send(&body[..1024 * 1024]);
        assert!(c.try_read_response().is_none());
        // Under API Gateway's 10 MB but over the function's 6 MB event limit: 413, and the
        // connection (whose body was read in full) stays usable.
        let mut c = esb.connect();
        let r = c.request("POST", "/public/echo", &[], &vec![b'a'; 7 * 1024 * 1024]);
        assert_eq!(
            (r.status, r.json()),
            (413, json!({"message": "Request Too Long"}))
        );
        let r = c.request(
            "POST",
            "/public/echo?big=3",
            &[],
            &vec![b'a'; 5 * 1024 * 1024],
        );
        assert_eq!((r.status, r.text().as_str()), (200, "xxx"));
    }
}

#[test]
fn a_busy_function_answers_503_with_retry_after_when_it_may_not_queue() {
    let rie = Rie::start();
    let setup = Setup::new("io_uring")
        .rie(rie.port)
        .function("    scaling: { max_capacity: 1, acquire_timeout: 0 }\n");
    let esb = Esb::start(&setup);
    let mut slow = esb.connect();
    slow.send(b"GET /public/echo?sleep_ms=800 HTTP/1.1\r\nHost: x\r\n\r\n");
    // The only environment is busy once the RIE has started the slow invocation.
    let start = std::time::Instant::now();
    while !rie.child.log().contains("START") {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "{}",
            rie.child.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let r = esb.get("/public/echo", &[]);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json(), json!({"message": "Service Unavailable"}));
    let after: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(after >= 1, "{after}");
    assert_eq!(slow.read_response().status, 200);
}
