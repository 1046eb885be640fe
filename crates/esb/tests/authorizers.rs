//! Lambda authorizers on routes of the real `esb` binary (aws-compat §4.1, §4.3): a Python
//! TOKEN authorizer (awslambdaric under esb-rie) allowing `allow-*` tokens; its context reaches
//! the function's event, refusals are API Gateway's 401/403/500, and cached decisions do not
//! invoke it again within the TTL.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use esb_testkit::{Child, free_port, wait_for_port};
use serde_json::json;
use support::{Esb, Rie, Setup};

/// esb-rie running `tests/functions/python/authorizer.py`, logging tokens to `log`.
fn authorizer_rie(log: &Path) -> (u16, Child) {
    let port = free_port();
    let mut cmd = Command::new(esb_testkit::cargo_bin("esb-rie", "esb-rie"));
    cmd.arg("--runtime-interface-emulator-address")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--runtime-api-address")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg(esb_testkit::install::awslambdaric_python())
        .args(["-m", "awslambdaric", "authorizer.handler"])
        .current_dir(esb_testkit::workspace_root().join("tests/functions/python"))
        .env("AUTHORIZER_LOG", log);
    let child = Child::spawn("authorizer-rie", cmd).unwrap();
    if let Err(e) = wait_for_port(port, Duration::from_secs(30)) {
        panic!("authorizer RIE did not listen: {e}\n{}", child.log());
    }
    (port, child)
}

fn invocations(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_token_authorizer_allows_denies_and_caches_per_token() {
    let rie = Rie::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tokens.log");
    let (auth_port, auth_child) = authorizer_rie(&log);
    let setup = Setup::new("epoll")
        .rie(rie.port)
        .functions(&format!(
            "  auth:\n    runtime: endpoint\n    endpoint: \"http://127.0.0.1:{auth_port}\"\n    timeout: 10\n"
        ))
        .toml(
            "[[authorizers]]\nname = \"tokens\"\nfunction = \"auth\"\nidentity_sources = [\"method.request.header.X-Token\"]\nvalidation_expression = \"[a-z-]+\"\nttl_secs = 300\n",
        )
        .routes(
            "  - path: \"/guarded/echo\"\n    method: ANY\n    function: echo\n    auth: { authorizer: tokens }\n  - path: \"/v2/guarded\"\n    method: GET\n    function: echo\n    auth: { authorizer: tokens }\n    payload_format: \"2.0\"\n",
        );
    let esb = Esb::start(&setup);
    let mut c = esb.connect();

    // Allowed: the authorizer's principal and context are in requestContext.authorizer.
    let r = c.request("GET", "/guarded/echo", &[("X-Token", "allow-alice")], b"");
    assert_eq!(
        r.status,
        200,
        "{}\n{}\n{}",
        r.text(),
        esb.log(),
        auth_child.log()
    );
    let event = r.json()["event"].clone();
    let a = &event["requestContext"]["authorizer"];
    assert_eq!(a["principalId"], "user-allow-alice", "{a}");
    assert_eq!(a["tenant"], "acme");
    assert_eq!(a["level"], 3);
    assert_eq!(a["admin"], true);
    assert!(a["integrationLatency"].is_u64(), "{a}");
    assert_eq!(invocations(&log), ["allow-alice"]);

    // Cached: the same token again, on another method and route, does not invoke it again.
    let r = c.request(
        "POST",
        "/guarded/echo",
        &[("X-Token", "allow-alice")],
        b"{}",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c.request("GET", "/v2/guarded", &[("X-Token", "allow-alice")], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["event"]["requestContext"]["authorizer"]["lambda"]["tenant"],
        "acme"
    );
    assert_eq!(invocations(&log), ["allow-alice"]);

    // Denied: 403 with API Gateway's explicit-deny message; cached too.
    for _ in 0..2 {
        let r = c.request("GET", "/guarded/echo", &[("X-Token", "mallory")], b"");
        assert_eq!(r.status, 403, "{}", r.text());
        assert_eq!(
            r.json(),
            json!({"Message": "User is not authorized to access this resource with an explicit deny"})
        );
    }
    assert_eq!(invocations(&log), ["allow-alice", "mallory"]);

    // No token, or one failing the validation regex: 401 without invoking.
    let r = c.request("GET", "/guarded/echo", &[], b"");
    assert_eq!(
        (r.status, r.json()),
        (401, json!({"message": "Unauthorized"}))
    );
    let r = c.request("GET", "/guarded/echo", &[("X-Token", "Not Valid!")], b"");
    assert_eq!(r.status, 401);
    assert_eq!(invocations(&log).len(), 2);

    // The authorizer raising "Unauthorized" is 401; another error is 500.
    let r = c.request("GET", "/guarded/echo", &[("X-Token", "unauthorized")], b"");
    assert_eq!(r.status, 401, "{}", r.text());
    let r = c.request("GET", "/guarded/echo", &[("X-Token", "broken")], b"");
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(
        r.header("x-amzn-ErrorType"),
        Some("AuthorizerConfigurationException")
    );
    // Errors are not cached: each try invokes again.
    let r = c.request("GET", "/guarded/echo", &[("X-Token", "broken")], b"");
    assert_eq!(r.status, 500);
    assert_eq!(
        invocations(&log),
        ["allow-alice", "mallory", "unauthorized", "broken", "broken"]
    );
}
