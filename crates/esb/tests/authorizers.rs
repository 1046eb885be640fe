//! Lambda authorizers on routes of the real `esb` binary (aws-compat §4.1-§4.4): a Python
//! TOKEN authorizer (awslambdaric under esb-rie) allowing `allow-*` tokens and a REQUEST one
//! allowing `x-tenant: ok-*` (IAM policy on REST, simple responses on HTTP API 2.0); their
//! context reaches the function's event, refusals are API Gateway's 401/403/500, and cached
//! decisions do not invoke them again within the TTL.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use esb_testkit::{Child, free_port, wait_for_port};
use serde_json::json;
use support::{Esb, Rie, Setup};

/// esb-rie running `tests/functions/python/<handler>` (`authorizer.handler` logs tokens,
/// `request_authorizer.handler` events, one per line to `log`).
fn authorizer_rie(log: &Path, handler: &str) -> (u16, Child) {
    let port = free_port();
    let mut cmd = Command::new(esb_testkit::cargo_bin("esb-rie", "esb-rie"));
    cmd.arg("--runtime-interface-emulator-address")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--runtime-api-address")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg(esb_testkit::install::awslambdaric_python())
        .args(["-m", "awslambdaric", handler])
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
    let (auth_port, auth_child) = authorizer_rie(&log, "authorizer.handler");
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

fn events(log: &Path) -> Vec<serde_json::Value> {
    invocations(log)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn request_authorizers_allow_by_header_cache_per_identity_and_refuse_missing_sources() {
    let rie = Rie::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.log");
    let (auth_port, auth_child) = authorizer_rie(&log, "request_authorizer.handler");
    let setup = Setup::new("epoll")
        .rie(rie.port)
        .functions(&format!(
            "  auth:\n    runtime: endpoint\n    endpoint: \"http://127.0.0.1:{auth_port}\"\n    timeout: 10\n"
        ))
        .toml(concat!(
            "[[authorizers]]\nname = \"tenants\"\nfunction = \"auth\"\ntype = \"REQUEST\"\n",
            "identity_sources = [\"method.request.header.X-Tenant\"]\nttl_secs = 300\n",
            "[[authorizers]]\nname = \"tenants_v2\"\nfunction = \"auth\"\ntype = \"REQUEST\"\n",
            "identity_sources = [\"$request.header.X-Tenant\", \"$request.querystring.region\"]\n",
            "payload_format = \"2.0\"\nsimple_responses = true\nttl_secs = 300\n",
        ))
        .routes(concat!(
            "  - path: \"/rest/{id}\"\n    method: ANY\n    function: echo\n    auth: { authorizer: tenants }\n",
            "  - path: \"/v2/{id}\"\n    method: GET\n    function: echo\n    auth: { authorizer: tenants_v2 }\n    payload_format: \"2.0\"\n",
        ));
    let esb = Esb::start(&setup);
    let mut c = esb.connect();

    // REST: allowed, the policy's principal and context reach requestContext.authorizer.
    let r = c.request("GET", "/rest/7?x=1", &[("X-Tenant", "ok-acme")], b"");
    assert_eq!(
        r.status,
        200,
        "{}\n{}\n{}",
        r.text(),
        esb.log(),
        auth_child.log()
    );
    let a = r.json()["event"]["requestContext"]["authorizer"].clone();
    assert_eq!(a["principalId"], "tenant-ok-acme", "{a}");
    assert_eq!(a["tenant"], "ok-acme");
    // The REST REQUEST event: the request without its body, plus type and methodArn.
    let seen = events(&log);
    assert_eq!(seen.len(), 1);
    let e = &seen[0];
    assert_eq!(e["type"], "REQUEST", "{e}");
    assert!(
        e["methodArn"].as_str().unwrap().ends_with("/GET/rest/7"),
        "{e}"
    );
    assert_eq!(e["resource"], "/rest/{id}");
    assert_eq!(e["path"], "/rest/7");
    assert_eq!(e["httpMethod"], "GET");
    assert_eq!(e["pathParameters"]["id"], "7");
    assert_eq!(e["queryStringParameters"]["x"], "1");
    assert!(e.get("body").is_none() && e.get("version").is_none(), "{e}");

    // Cached per identity: the same tenant on another method and path does not invoke again.
    let r = c.request("POST", "/rest/8", &[("X-Tenant", "ok-acme")], b"{}");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(events(&log).len(), 1);
    // Another identity is invoked; its explicit Deny is 403, and cached too.
    for _ in 0..2 {
        let r = c.request("GET", "/rest/7", &[("X-Tenant", "bad-corp")], b"");
        assert_eq!(r.status, 403, "{}", r.text());
        assert_eq!(
            r.json(),
            json!({"Message": "User is not authorized to access this resource with an explicit deny"})
        );
    }
    assert_eq!(events(&log).len(), 2);
    // A missing or empty identity source: 401 without invoking.
    for headers in [&[][..], &[("X-Tenant", "")][..]] {
        let r = c.request("GET", "/rest/7", headers, b"");
        assert_eq!(
            (r.status, r.json()),
            (401, json!({"message": "Unauthorized"}))
        );
    }
    assert_eq!(events(&log).len(), 2);

    // HTTP API 2.0 with simple responses: any JSON context under authorizer.lambda.
    let r = c.request("GET", "/v2/5?region=eu", &[("X-Tenant", "ok-acme")], b"");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), esb.log());
    let lambda = r.json()["event"]["requestContext"]["authorizer"]["lambda"].clone();
    assert_eq!(lambda["tenant"], "ok-acme", "{lambda}");
    assert_eq!(lambda["tags"], json!(["a", "b"]));
    assert_eq!(lambda["seen"]["routeKey"], "GET /v2/{id}");
    let seen = events(&log);
    assert_eq!(seen.len(), 3);
    let e = &seen[2];
    assert_eq!(
        (&e["version"], &e["type"]),
        (&json!("2.0"), &json!("REQUEST")),
        "{e}"
    );
    assert!(
        e["routeArn"]
            .as_str()
            .unwrap()
            .ends_with("/$default/GET/v2/5"),
        "{e}"
    );
    assert_eq!(e["identitySource"], json!(["ok-acme", "eu"]));
    assert_eq!(e["routeKey"], "GET /v2/{id}");
    assert_eq!(e["rawPath"], "/v2/5");
    assert_eq!(e["rawQueryString"], "region=eu");
    assert_eq!(e["queryStringParameters"]["region"], "eu");
    assert_eq!(e["pathParameters"]["id"], "5");
    assert!(
        e.get("body").is_none() && e.get("methodArn").is_none(),
        "{e}"
    );

    // The cache key is every identity source: same values → cached, another region → invoked.
    let r = c.request("GET", "/v2/6?region=eu", &[("X-Tenant", "ok-acme")], b"");
    assert_eq!(r.status, 200);
    assert_eq!(events(&log).len(), 3);
    let r = c.request("GET", "/v2/6?region=us", &[("X-Tenant", "ok-acme")], b"");
    assert_eq!(r.status, 200);
    assert_eq!(events(&log).len(), 4);
    // isAuthorized false: HTTP API's 403.
    let r = c.request("GET", "/v2/5?region=eu", &[("X-Tenant", "nope-x")], b"");
    assert_eq!((r.status, r.json()), (403, json!({"message": "Forbidden"})));
    assert_eq!(events(&log).len(), 5);
    // A missing query identity source: 401 without invoking.
    let r = c.request("GET", "/v2/5", &[("X-Tenant", "ok-acme")], b"");
    assert_eq!(
        (r.status, r.json()),
        (401, json!({"message": "Unauthorized"}))
    );
    assert_eq!(events(&log).len(), 5);
}
