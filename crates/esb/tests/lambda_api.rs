//! The Lambda Invoke API of the real `esb` binary, driven by boto3 itself (a Python subprocess
//! with `endpoint_url` at esb): payloads, function errors, DryRun, the botocore error classes,
//! and SigV4 with `[invoke] auth = "sigv4"` (aws-compat §5, issue #6).

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use esb_testkit::{Child, free_port, wait_for_port};

use serde_json::{Value, json};
use support::{DRIVERS, Esb, Rie, Setup};

/// Runs each call of `calls` (keyword arguments of `lambda.invoke`, `Payload` as text) through
/// boto3 and returns one result object per call: the parsed response, or the raised exception's
/// class name, code, message, status and body members.
const BOTO3_SCRIPT: &str = r#"
import json, os, sys, warnings
warnings.filterwarnings("ignore")
import boto3, botocore
from botocore.config import Config
c = boto3.client("lambda", endpoint_url=os.environ["ESB_URL"], region_name="us-east-1",
    verify=False, aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"],
    config=Config(retries={"max_attempts": 1, "mode": "standard"}))
out = []
for kw in json.loads(os.environ["CALLS"]):
    if "Payload" in kw:
        kw["Payload"] = kw["Payload"].encode()
    try:
        r = c.invoke(**kw)
        out.append({"StatusCode": r["StatusCode"], "FunctionError": r.get("FunctionError"),
            "ExecutedVersion": r.get("ExecutedVersion"), "LogResult": r.get("LogResult"),
            "Payload": r["Payload"].read().decode(),
            "RequestId": r["ResponseMetadata"].get("RequestId")})
    except botocore.exceptions.ClientError as e:
        out.append({"exception": type(e).__name__, "code": e.response["Error"]["Code"],
            "message": e.response["Error"].get("Message"),
            "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
            "reason": e.response.get("Reason")})
print(json.dumps(out))
"#;

/// A `python3` that can import boto3: the system one if it can, else a venv under `target/`.
fn boto3_python() -> PathBuf {
    esb_testkit::install::python_with("boto3", "boto3")
}

/// boto3 `lambda.invoke` calls against `esb` with the given credentials.
fn boto3(esb: &Esb, key: &str, secret: &str, calls: &Value) -> Vec<Value> {
    let out = Command::new(boto3_python())
        .args(["-c", BOTO3_SCRIPT])
        .env("ESB_URL", format!("https://127.0.0.1:{}", esb.port))
        .env("AK", key)
        .env("SK", secret)
        .env("CALLS", calls.to_string())
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "boto3 script failed:\n{}\nesb log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        esb.log()
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
    });
    v.as_array().unwrap().clone()
}

/// The event `echo` saw, from its proxy-response payload.
fn echoed(r: &Value) -> Value {
    let payload: Value = serde_json::from_str(r["Payload"].as_str().unwrap()).unwrap();
    serde_json::from_str(payload["body"].as_str().unwrap()).unwrap()
}

#[test]
fn boto3_invokes_functions_and_gets_botocore_errors() {
    let rie = Rie::start();
    for driver in DRIVERS {
        let esb = Esb::start(&Setup::new(driver).rie(rie.port));
        let ctx = json!({
            "client": {"installation_id": "i-1", "app_title": "t", "app_version_name": "1",
                       "app_version_code": "1", "app_package_name": "p"},
            "custom": {"tenant": "acme"},
            "env": {"platform": "linux", "make": "m", "model": "x", "platform_version": "1",
                    "locale": "en"}
        });
        let ctx_b64 = base64_encode(ctx.to_string().as_bytes());
        let calls = json!([
            {"FunctionName": "echo", "Payload": "{\"orderId\": 7}"},
            {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:echo",
             "Qualifier": "$LATEST", "Payload": "{}", "ClientContext": ctx_b64},
            {"FunctionName": "echo:$LATEST"},
            {"FunctionName": "nope", "Payload": "{}"},
            {"FunctionName": "echo:live", "Payload": "{}"},
            {"FunctionName": "echo", "Payload": "{\"fail\": 1}"},
            {"FunctionName": "echo", "InvocationType": "DryRun", "Payload": "{}"},
            {"FunctionName": "echo", "Payload": "not json"},
            {"FunctionName": "echo", "InvocationType": "Event", "Payload": "{}"},
            {"FunctionName": "echo", "Payload": "{\"crash\": 1}"},
            {"FunctionName": "echo", "Payload": "{}", "LogType": "Tail"},
        ]);
        let r = boto3(&esb, "dummy", "dummy", &calls);
        let log = esb.log();

        // A plain invoke: 200, the function's raw payload, $LATEST.
        assert_eq!(r[0]["StatusCode"], 200, "{r:?}\n{log}");
        assert_eq!(r[0]["FunctionError"], Value::Null);
        assert_eq!(r[0]["ExecutedVersion"], "$LATEST");
        assert_eq!(echoed(&r[0])["event"], json!({"orderId": 7}));
        assert!(r[0]["RequestId"].as_str().is_some_and(|s| s.len() == 36));
        // ARN + Qualifier, and the client context reaches the function.
        assert_eq!(r[1]["StatusCode"], 200, "{r:?}");
        let seen = echoed(&r[1]);
        assert_eq!(
            seen["context"]["client_context"]["custom"]["tenant"],
            "acme"
        );
        // No payload: the function gets {}.
        assert_eq!(echoed(&r[2])["event"], json!({}));
        // Unknown function and unknown alias: boto3's own exception class.
        assert_eq!(r[3]["exception"], "ResourceNotFoundException", "{r:?}");
        assert_eq!(r[3]["status"], 404);
        assert_eq!(
            r[3]["message"],
            "Function not found: arn:aws:lambda:ap-northeast-1:123456789012:function:nope"
        );
        assert_eq!(r[4]["exception"], "ResourceNotFoundException");
        assert!(r[4]["message"].as_str().unwrap().ends_with(":echo:live"));
        // A function error is a 200 with FunctionError, the error object as payload.
        assert_eq!(r[5]["StatusCode"], 200, "{r:?}");
        assert_eq!(r[5]["FunctionError"], "Unhandled");
        let err: Value = serde_json::from_str(r[5]["Payload"].as_str().unwrap()).unwrap();
        assert!(
            err["errorMessage"].as_str().unwrap().contains("fail=1"),
            "{err}"
        );
        // DryRun: 204, nothing run.
        assert_eq!(r[6]["StatusCode"], 204, "{r:?}");
        assert_eq!(r[6]["Payload"], "");
        // A payload that is not JSON.
        assert_eq!(r[7]["exception"], "InvalidRequestContentException", "{r:?}");
        assert_eq!(r[7]["status"], 400);
        // Event: 202 once durable, empty payload (async.rs covers what runs).
        assert_eq!(r[8]["StatusCode"], 202, "{r:?}");
        assert_eq!(r[8]["Payload"], "");
        // A runtime that dies mid-invocation: Lambda's 200 + Unhandled.
        assert_eq!(r[9]["StatusCode"], 200, "{r:?}");
        assert_eq!(r[9]["FunctionError"], "Unhandled");
        // Tail: esb-rie hands the invocation's log lines back (the echo prints none itself).
        assert_eq!(r[10]["StatusCode"], 200, "{r:?}");
        let tail = decode_log(&r[10]);
        assert!(tail.starts_with("START RequestId: "), "{tail}");
        assert!(tail.contains("\nREPORT RequestId: "), "{tail}");
        assert_eq!(r[0]["LogResult"], Value::Null, "only when asked for");
    }
}

/// `LogResult`, base64-decoded.
fn decode_log(r: &Value) -> String {
    use base64::Engine as _;
    let b64 = r["LogResult"]
        .as_str()
        .unwrap_or_else(|| panic!("no LogResult: {r}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("LogResult is base64");
    String::from_utf8(bytes).expect("LogResult is UTF-8")
}

/// esb-rie running `tests/functions/python/handler.<handler>` on a free port.
fn python_rie(handler: &str) -> (u16, Child) {
    let port = free_port();
    let mut cmd = Command::new(esb_testkit::cargo_bin("esb-rie", "esb-rie"));
    cmd.arg("--runtime-interface-emulator-address")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--runtime-api-address")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg(esb_testkit::install::awslambdaric_python())
        .args(["-m", "awslambdaric", handler])
        .current_dir(esb_testkit::workspace_root().join("tests/functions/python"));
    let child = Child::spawn("python-rie", cmd).unwrap();
    if let Err(e) = wait_for_port(port, Duration::from_secs(30)) {
        panic!("python RIE did not listen: {e}\n{}", child.log());
    }
    (port, child)
}

#[test]
fn boto3_log_type_tail_returns_the_functions_output_and_report() {
    let rie = Rie::start();
    let (port, child) = python_rie("handler.chatty");
    let setup = Setup::new("epoll").rie(rie.port).functions(&format!(
        "  chatty:\n    runtime: endpoint\n    endpoint: \"http://127.0.0.1:{port}\"\n    timeout: 10\n"
    ));
    let esb = Esb::start(&setup);
    let calls = json!([
        {"FunctionName": "chatty", "Payload": "{\"marker\": \"tail-one\"}", "LogType": "Tail"},
        {"FunctionName": "chatty", "Payload": "{\"marker\": \"quiet\"}"},
        {"FunctionName": "chatty", "Payload": "{\"marker\": \"tail-two\"}", "LogType": "Tail"},
    ]);
    let r = boto3(&esb, "dummy", "dummy", &calls);
    for x in &r {
        assert_eq!(
            x["StatusCode"],
            200,
            "{r:?}\n{}\n{}",
            esb.log(),
            child.log()
        );
    }
    assert_eq!(r[1]["LogResult"], Value::Null, "None is the default");
    for (x, marker, other) in [
        (&r[0], "tail-one", "tail-two"),
        (&r[2], "tail-two", "tail-one"),
    ] {
        let tail = decode_log(x);
        assert!(tail.starts_with("START RequestId: "), "{tail}");
        assert!(tail.contains(&format!("stdout says {marker}\n")), "{tail}");
        assert!(tail.contains(&format!("stderr says {marker}\n")), "{tail}");
        assert!(tail.contains("\nREPORT RequestId: "), "{tail}");
        assert!(!tail.contains(other) && !tail.contains("quiet"), "{tail}");
    }
}

#[test]
fn payloads_over_6_mb_are_request_too_large_before_the_body_is_read() {
    let rie = Rie::start();
    let esb = Esb::start(&Setup::new("epoll").rie(rie.port));
    let mut c = esb.connect();
    let len = 6 * 1024 * 1024 + 1;
    c.send(
        format!(
            "POST /2015-03-31/functions/echo/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n"
        )
        .as_bytes(),
    );
    let r = c.read_response();
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(
        r.header("x-amzn-ErrorType"),
        Some("RequestTooLargeException")
    );
    assert_eq!(
        r.json()["message"],
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    );
}

#[test]
fn a_function_at_capacity_is_throttled_with_a_reason() {
    let rie = Rie::start();
    let setup = Setup::new("epoll")
        .rie(rie.port)
        .function("    scaling: { max_capacity: 1, acquire_timeout: 0 }\n");
    let esb = Esb::start(&setup);
    let mut slow = esb.connect();
    let body = br#"{"sleep_ms": 800}"#;
    slow.send(
        format!(
            "POST /2015-03-31/functions/echo/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    slow.send(body);
    let start = std::time::Instant::now();
    while !rie.child.log().contains("START") {
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let r = esb.request("POST", "/2015-03-31/functions/echo/invocations", &[], b"{}");
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(
        r.header("x-amzn-ErrorType"),
        Some("TooManyRequestsException")
    );
    assert_eq!(
        r.json(),
        json!({"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
               "Type": "User", "message": "Rate Exceeded."})
    );
    assert!(r.header("retry-after").is_some());
    assert_eq!(slow.read_response().status, 200);
}

#[test]
fn sigv4_mode_accepts_the_right_secret_and_refuses_others() {
    let rie = Rie::start();
    let setup = Setup::new("io_uring").rie(rie.port).toml(
        "[invoke]\nauth = \"sigv4\"\ncredentials = [{ access_key_id = \"AKIDESB\", secret_access_key = \"right-secret\" }]\n",
    );
    let esb = Esb::start(&setup);
    let calls = json!([
        {"FunctionName": "echo", "Payload": "{\"signed\": true}"},
        {"FunctionName": "nope", "Payload": "{}"},
    ]);
    let ok = boto3(&esb, "AKIDESB", "right-secret", &calls);
    assert_eq!(ok[0]["StatusCode"], 200, "{ok:?}");
    assert_eq!(echoed(&ok[0])["event"], json!({"signed": true}));
    assert_eq!(ok[1]["exception"], "ResourceNotFoundException");

    // A wrong secret, and an unknown key: refused before anything else is said (even that a
    // function does not exist).
    let bad = boto3(&esb, "AKIDESB", "wrong-secret", &calls);
    for r in &bad {
        assert_eq!(r["status"], 403, "{bad:?}");
        assert_eq!(r["code"], "InvalidSignatureException");
        assert!(
            r["message"]
                .as_str()
                .unwrap()
                .contains("signature we calculated")
        );
    }
    let unknown = boto3(&esb, "AKIDOTHER", "right-secret", &calls);
    assert_eq!(
        unknown[0]["code"], "UnrecognizedClientException",
        "{unknown:?}"
    );
    assert_eq!(unknown[0]["status"], 403);

    // No signature at all.
    let r = esb.request("POST", "/2015-03-31/functions/echo/invocations", &[], b"{}");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        r.header("x-amzn-ErrorType"),
        Some("MissingAuthenticationTokenException")
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
