//! Rendered responses fed to a real botocore Lambda client: boto3 code must see the modeled
//! exception classes and fields, and the parsed invoke result, exactly as against AWS.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::*;

/// A Python that imports botocore: the machine's, or a venv under target/ (the test must run,
/// not skip, where botocore is missing).
fn python_with_botocore() -> PathBuf {
    esb_testkit::install::python_with("botocore, urllib3", "botocore")
}

fn case(status: u16, headers: &[(&'static str, String)], body: &[u8]) -> Value {
    json!({
        "status": status,
        "headers": headers.iter().map(|(k, v)| [k.to_string(), v.clone()]).collect::<Vec<_>>(),
        "body_b64": STANDARD.encode(body),
    })
}

fn through_botocore(cases: &[Value]) -> Vec<Value> {
    use std::io::Write as _;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/botocore_parse.py");
    let mut child = Command::new(python_with_botocore())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(cases).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

#[test]
fn boto3_raises_the_modeled_exceptions_with_their_fields() {
    let errors = [
        InvokeError::function_not_found("arn:aws:lambda:us-east-1:123456789012:function:nope"),
        InvokeError::TooManyRequests {
            reason: ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded,
            retry_after_seconds: Some(3),
        },
        check_payload_size(InvocationType::RequestResponse, SYNC_PAYLOAD_LIMIT + 1).unwrap_err(),
        payload(InvocationType::RequestResponse, b"{oops").unwrap_err(),
        ClientContext::parse("%%%").unwrap_err(),
        parse_target("f:a", "Qualifier=b").unwrap_err(),
        InvokeError::Service {
            message: "boom".into(),
        },
        InvokeError::ResourceNotReady {
            message: "env".into(),
        },
        parse_target("bad name", "").unwrap_err(),
        InvokeError::Auth {
            error_type: "InvalidSignatureException",
            message: "sig".into(),
        },
    ];
    let cases: Vec<Value> = errors
        .iter()
        .map(|e| {
            let r = e.response();
            case(r.status, &r.headers, &r.body)
        })
        .collect();
    let got = through_botocore(&cases);
    assert_eq!(got.len(), errors.len());
    for (e, g) in errors.iter().zip(&got) {
        let g = &g["error"];
        assert_eq!(g["Code"], e.error_type(), "{g}");
        assert_eq!(g["HTTPStatusCode"], e.status(), "{g}");
        assert_eq!(g["Message"], e.to_string(), "{g}");
        // Lambda's modeled shapes get their own exception class; the others (as against AWS)
        // a plain ClientError with the code.
        let modeled = !matches!(e, InvokeError::Validation { .. } | InvokeError::Auth { .. });
        assert_eq!(g["modeled"], modeled, "{g}");
        if modeled {
            assert_eq!(g["class"], e.error_type(), "{g}");
        }
    }
    assert_eq!(got[0]["error"]["Type"], "User");
    assert_eq!(
        got[1]["error"]["Reason"],
        "ReservedFunctionConcurrentInvocationLimitExceeded"
    );
    assert_eq!(got[1]["error"]["retryAfterSeconds"], "3");
    assert_eq!(got[6]["error"]["Type"], "Service");
}

#[test]
fn boto3_parses_the_success_heads() {
    let log = "START RequestId: r Version: $LATEST\nboom\nEND RequestId: r\n";
    let failed = SyncOutcome {
        function_error: true,
        executed_version: "$LATEST",
        log: log.as_bytes(),
    };
    let fine = SyncOutcome {
        function_error: false,
        executed_version: "7",
        log: b"",
    };
    let body = br#"{"errorMessage":"boom","errorType":"ValueError"}"#;
    let heads = [
        success_head(
            InvocationType::RequestResponse,
            LogType::Tail,
            Some(&failed),
        ),
        success_head(InvocationType::RequestResponse, LogType::None, Some(&fine)),
        success_head(InvocationType::Event, LogType::None, None),
        success_head(InvocationType::DryRun, LogType::None, None),
    ];
    let bodies: [&[u8]; 4] = [body, b"42", b"", b""];
    let cases: Vec<Value> = heads
        .iter()
        .zip(bodies)
        .map(|((status, headers), b)| case(*status, headers, b))
        .collect();
    let got = through_botocore(&cases);
    assert_eq!(
        got[0]["ok"],
        json!({
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "LogResult": STANDARD.encode(log),
            "ExecutedVersion": "$LATEST",
            "Payload": String::from_utf8_lossy(body),
        })
    );
    assert_eq!(
        got[1]["ok"],
        json!({"StatusCode": 200, "FunctionError": null, "LogResult": null, "ExecutedVersion": "7", "Payload": "42"})
    );
    assert_eq!(got[2]["ok"]["StatusCode"], 202);
    assert_eq!(got[2]["ok"]["Payload"], "");
    assert_eq!(got[3]["ok"]["StatusCode"], 204);
}
