//! `echo`: a test function on the official `lambda_runtime` crate.
//!
//! It answers with an API Gateway proxy response whose body is
//! `{"event": <event>, "context": {...}, "env": {"pid": .., "hostname": ..}}`, so a test sees exactly
//! what arrived and which process answered. The event drives faults, so they can be triggered over
//! HTTP through the gateway: controls come from `queryStringParameters` (API Gateway v1 or v2
//! events) or, for any other event, from its top-level keys:
//!
//! | control | effect |
//! |---|---|
//! | `sleep_ms=N` | wait N ms before answering (timeouts) |
//! | `fail=1` | return an error (the runtime posts `/error`) |
//! | `crash=1` | exit the process with status 1 mid-invocation |
//! | `big=N` | the body is N bytes of `x` instead of the echo |
//! | `status=N` | `statusCode` N (default 200) |
//! | `malformed=1` | a response API Gateway must reject (bad `statusCode`, non-string body, unknown key) |

use std::sync::OnceLock;
use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Map, Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}

/// The fault controls of one event.
#[derive(Debug, Default, PartialEq, Eq)]
struct Controls {
    sleep_ms: u64,
    fail: bool,
    crash: bool,
    big: Option<usize>,
    status: Option<u16>,
    malformed: bool,
}

impl Controls {
    fn from_event(event: &Value) -> Controls {
        let Some(obj) = event.as_object() else {
            return Controls::default();
        };
        // An API Gateway event (v1 has httpMethod, v2 has rawPath): only its query counts.
        let is_apigw = obj.contains_key("httpMethod")
            || obj.contains_key("rawPath")
            || obj.contains_key("requestContext");
        let source = match obj.get("queryStringParameters") {
            Some(Value::Object(q)) => q,
            _ if is_apigw => return Controls::default(),
            _ => obj,
        };
        let num = |key: &str| -> Option<u64> {
            match source.get(key)? {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.parse().ok(),
                Value::Bool(b) => Some(u64::from(*b)),
                _ => None,
            }
        };
        Controls {
            sleep_ms: num("sleep_ms").unwrap_or(0),
            fail: num("fail") == Some(1),
            crash: num("crash") == Some(1),
            big: num("big").map(|n| n as usize),
            status: num("status").and_then(|n| u16::try_from(n).ok()),
            malformed: num("malformed") == Some(1),
        }
    }
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, ctx) = event.into_parts();
    let controls = Controls::from_event(&payload);
    if controls.sleep_ms > 0 {
        tokio::time::sleep(Duration::from_millis(controls.sleep_ms)).await;
    }
    if controls.crash {
        std::process::exit(1);
    }
    if controls.fail {
        return Err("echo was asked to fail (fail=1)".into());
    }
    if controls.malformed {
        return Ok(json!({
            "statusCode": "teapot",
            "body": {"not": "a string"},
            "unexpectedKey": true,
        }));
    }
    let body = match controls.big {
        Some(n) => "x".repeat(n),
        None => {
            let context = json!({
                "request_id": ctx.request_id,
                "deadline": ctx.deadline,
                "invoked_function_arn": ctx.invoked_function_arn,
                "xray_trace_id": ctx.xray_trace_id,
                "client_context": ctx.client_context.as_ref().and_then(|c| serde_json::to_value(c).ok()),
                "identity": ctx.identity.as_ref().and_then(|i| serde_json::to_value(i).ok()),
                "function_name": ctx.env_config.function_name,
                "memory": ctx.env_config.memory,
                "version": ctx.env_config.version,
                "log_stream": ctx.env_config.log_stream,
                "log_group": ctx.env_config.log_group,
            });
            let mut out = Map::with_capacity(3);
            out.insert("event".into(), payload);
            out.insert("context".into(), context);
            out.insert("env".into(), env_info().clone());
            Value::Object(out).to_string()
        }
    };
    Ok(json!({
        "statusCode": controls.status.unwrap_or(200),
        "headers": {"content-type": "application/json"},
        "body": body,
        "isBase64Encoded": false,
    }))
}

/// What tells one execution environment from another.
fn env_info() -> &'static Value {
    static ENV: OnceLock<Value> = OnceLock::new();
    ENV.get_or_init(|| {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        json!({"pid": std::process::id(), "hostname": hostname})
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(event: Value, expected: Controls) {
        assert_eq!(Controls::from_event(&event), expected, "{event}");
    }

    #[test]
    fn controls_from_raw_events() {
        check(json!({}), Controls::default());
        check(json!("text"), Controls::default());
        check(
            json!({"sleep_ms": 5, "fail": 1, "big": "10", "status": 404}),
            Controls {
                sleep_ms: 5,
                fail: true,
                big: Some(10),
                status: Some(404),
                ..Controls::default()
            },
        );
        check(
            json!({"crash": true, "malformed": "1"}),
            Controls {
                crash: true,
                malformed: true,
                ..Controls::default()
            },
        );
    }

    #[test]
    fn controls_from_api_gateway_queries() {
        // v1 and v2 both carry string maps in queryStringParameters.
        check(
            json!({"httpMethod": "GET", "queryStringParameters": {"fail": "1"}}),
            Controls {
                fail: true,
                ..Controls::default()
            },
        );
        check(
            json!({"rawPath": "/x", "queryStringParameters": {"sleep_ms": "20"}}),
            Controls {
                sleep_ms: 20,
                ..Controls::default()
            },
        );
        // An API Gateway event without a query has no controls, even if its keys look like some.
        check(
            json!({"httpMethod": "GET", "queryStringParameters": null, "fail": 1}),
            Controls::default(),
        );
    }
}
