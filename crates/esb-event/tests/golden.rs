//! Golden tests: events built for fixed requests, compared structurally with checked-in JSON
//! under `tests/golden/`, deserialized with `aws_lambda_events`, and checked against the shape of
//! AWS's own sample events in the shared corpus.
//!
//! `ESB_UPDATE_GOLDEN=1 cargo test -p esb-event --test golden` rewrites the fixtures; review the
//! diff before committing it.

use std::path::PathBuf;

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use esb_event::{ApiContext, Authorizer, EventWriter, RequestView};
use serde_json::{Map, Value, json};

type H<'a> = (&'a str, &'a str);

fn api() -> ApiContext {
    ApiContext {
        account_id: "123456789012".into(),
        api_id: "abc123".into(),
        binary_media_types: vec!["image/*".into()],
    }
}

fn base<'a>(headers: &'a [H<'a>]) -> RequestView<'a, H<'a>> {
    RequestView {
        method: "GET",
        path: "/",
        query: "",
        headers,
        body: b"",
        source_ip: "203.0.113.7",
        user_agent: None,
        request_id: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        request_time_ms: 1_744_202_096_000,
        stage: "prod",
        resource: "/",
        route_method: "GET",
        path_params: &[],
        domain_name: "abc123.execute-api.us-east-1.amazonaws.com",
        protocol: "HTTP/1.1",
        scheme: "https",
        port: 443,
        authorizer: Authorizer::None,
    }
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn corpus(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/events")
        .join(name);
    serde_json::from_str(
        &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

fn build(req: &RequestView<'_, H<'_>>, v2: bool) -> Value {
    let mut w = EventWriter::new();
    let mut out = b"stale bytes from the previous request".to_vec();
    out.clear();
    if v2 {
        w.write_v2(req, &api(), &mut out);
    } else {
        w.write_v1(req, &api(), &mut out);
    }
    let text = std::str::from_utf8(&out).expect("events are UTF-8");
    let event: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("invalid JSON {e}: {text}"));
    // Every event must be readable by the Rust runtime's types.
    if v2 {
        serde_json::from_str::<ApiGatewayV2httpRequest>(text).expect("aws_lambda_events v2");
    } else {
        serde_json::from_str::<ApiGatewayProxyRequest>(text).expect("aws_lambda_events v1");
    }
    event
}

/// Builds the event for `req` and compares it with `tests/golden/<name>.json`.
fn check(name: &str, req: &RequestView<'_, H<'_>>, v2: bool) -> Value {
    let event = build(req, v2);
    let path = golden_dir().join(format!("{name}.json"));
    if std::env::var_os("ESB_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&event).unwrap() + "\n").unwrap();
    }
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap();
    assert_eq!(
        event,
        expected,
        "{name}: got\n{}",
        serde_json::to_string_pretty(&event).unwrap()
    );
    event
}

fn cognito_claims() -> Map<String, Value> {
    json!({
        "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "aud": "7abc1234example", "email_verified": true,
        "token_use": "id", "auth_time": 1744200000u64,
        "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
        "cognito:username": "janedoe", "cognito:groups": ["admin", "dev"],
        "exp": 1744206000u64, "iat": 1744202400u64, "email": "jane@example.com"
    })
    .as_object()
    .unwrap()
    .clone()
}

#[test]
fn v1_get_with_cognito_claims() {
    let headers = [
        ("Accept", "*/*"),
        ("authorization", "eyJraWQi.example.token"),
        ("Host", "abc123.execute-api.us-east-1.amazonaws.com"),
        ("user-agent", "curl/8.5.0"),
        ("X-Multi", "1"),
        ("x-multi", "2"),
    ];
    let claims = cognito_claims();
    let req = RequestView {
        path: "/users/42",
        query: "tag=a&tag=b&q=hello+world%21&flag&=empty",
        resource: "/users/{id}",
        path_params: &[("id", "42")],
        user_agent: Some("curl/8.5.0"),
        authorizer: Authorizer::Cognito {
            claims: &claims,
            username: "janedoe",
        },
        ..base(&headers)
    };
    let e = check("v1_get_cognito", &req, false);
    // The decisions this fixture pins, spelled out.
    assert_eq!(
        e["requestContext"]["authorizer"]["claims"]["exp"],
        "Wed Apr 09 13:40:00 UTC 2025"
    );
    assert_eq!(
        e["requestContext"]["authorizer"]["claims"]["auth_time"],
        "1744200000"
    );
    assert_eq!(
        e["requestContext"]["authorizer"]["claims"]["email_verified"],
        "true"
    );
    assert_eq!(
        e["requestContext"]["authorizer"]["claims"]["cognito:groups"],
        "[admin dev]"
    );
    assert_eq!(
        e["requestContext"]["authorizer"]["cognito:username"],
        "janedoe"
    );
    assert_eq!(e["queryStringParameters"]["tag"], "b");
    assert_eq!(
        e["multiValueQueryStringParameters"]["tag"],
        json!(["a", "b"])
    );
    assert_eq!(e["queryStringParameters"]["q"], "hello world!");
    assert_eq!(e["headers"]["X-Multi"], "2");
    assert_eq!(e["multiValueHeaders"]["X-Multi"], json!(["1", "2"]));
    assert_eq!(e["headers"]["Authorization"], "eyJraWQi.example.token");
    assert_eq!(e["requestContext"]["path"], "/prod/users/42");
    assert_eq!(e["body"], Value::Null);
}

#[test]
fn v1_sanitises_headers_and_base64_encodes_binary() {
    let headers = [
        ("Host", "abc123.execute-api.us-east-1.amazonaws.com"),
        ("Content-Type", "image/png"),
        ("Content-Length", "4"),
        ("Transfer-Encoding", "chunked"),
        ("Connection", "keep-alive, X-Secret, x-api-key"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Upgrade", "websocket"),
        ("Proxy-Authorization", "Basic abc"),
        ("Proxy-Foo", "x"),
        ("X-Secret", "hop"),
        ("X-Api-Key", "nominated away"),
        ("X-Forwarded-For", "10.0.0.1"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Port", "80"),
        ("Forwarded", "for=10.0.0.1"),
        ("X-Amzn-RequestId", "spoofed"),
        ("X-Amzn-Trace-Id", "Root=spoofed"),
        ("X-Kept", "yes"),
    ];
    let req = RequestView {
        method: "POST",
        path: "/upload/a%20b/c",
        resource: "/upload/{proxy+}",
        route_method: "ANY",
        path_params: &[("proxy", "a%20b/c")],
        body: &[0x89, b'P', b'N', b'G'],
        ..base(&headers)
    };
    let e = check("v1_post_binary", &req, false);
    let names: Vec<&String> = e["headers"].as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        [
            "Content-Type",
            "Host",
            "X-Forwarded-For",
            "X-Forwarded-Port",
            "X-Forwarded-Proto",
            "X-Kept"
        ]
    );
    assert_eq!(e["headers"]["X-Forwarded-For"], "203.0.113.7");
    assert_eq!(e["isBase64Encoded"], true);
    assert_eq!(e["body"], "iVBORw==");
    // REST: path and path parameters stay percent-encoded.
    assert_eq!(e["pathParameters"]["proxy"], "a%20b/c");
}

#[test]
fn v1_root_without_auth_and_text_body() {
    let headers = [("Content-Type", "application/json"), ("Host", "h")];
    let req = RequestView {
        method: "POST",
        body: br#"{"a":"\u00e9\n"}"#,
        ..base(&headers)
    };
    let e = check("v1_root_no_auth", &req, false);
    assert_eq!(
        e["requestContext"]["authorizer"],
        json!({"claims": null, "scopes": null})
    );
    assert_eq!(e["queryStringParameters"], Value::Null);
    assert_eq!(e["pathParameters"], Value::Null);
    assert_eq!(e["isBase64Encoded"], false);
}

#[test]
fn v1_lambda_authorizer_context() {
    let headers = [("Host", "h")];
    let ctx = json!({"tenant": "acme", "admin": true, "level": 3})
        .as_object()
        .unwrap()
        .clone();
    let req = RequestView {
        authorizer: Authorizer::Lambda {
            principal_id: "user-123",
            context: &ctx,
            integration_latency_ms: 17,
        },
        ..base(&headers)
    };
    let e = build(&req, false);
    assert_eq!(
        e["requestContext"]["authorizer"],
        json!({"principalId": "user-123", "admin": true, "level": 3, "tenant": "acme", "integrationLatency": 17})
    );
    let e = build(&req, true);
    assert_eq!(
        e["requestContext"]["authorizer"],
        json!({"lambda": {"admin": true, "level": 3, "tenant": "acme"}})
    );
}

#[test]
fn v2_get_with_jwt_claims_and_cookies() {
    let headers = [
        ("Accept", "*/*"),
        ("Authorization", "Bearer eyJ.example"),
        ("Cookie", "session=abc; theme=dark"),
        ("cookie", "third=3"),
        ("Host", "abc123.execute-api.us-east-1.amazonaws.com"),
        ("User-Agent", "curl/8.5.0"),
        ("X-Dup", "1"),
        ("x-dup", "2"),
        ("Content-Length", "0"),
        ("Connection", "close"),
    ];
    let claims = cognito_claims();
    let req = RequestView {
        path: "/users/a%2Fb",
        query: "tag=a&tag=b&q=x+y",
        stage: "$default",
        resource: "/users/{id}",
        path_params: &[("id", "a%2Fb")],
        user_agent: Some("curl/8.5.0"),
        authorizer: Authorizer::Cognito {
            claims: &claims,
            username: "janedoe",
        },
        ..base(&headers)
    };
    let e = check("v2_get_jwt", &req, true);
    assert_eq!(e["routeKey"], "GET /users/{id}");
    assert_eq!(
        e["cookies"],
        json!(["session=abc", "theme=dark", "third=3"])
    );
    assert!(e["headers"].get("cookie").is_none());
    assert_eq!(e["headers"]["x-dup"], "1,2");
    assert_eq!(e["headers"]["content-length"], "0");
    assert_eq!(
        e["queryStringParameters"],
        json!({"tag": "a,b", "q": "x y"})
    );
    assert_eq!(e["rawQueryString"], "tag=a&tag=b&q=x+y");
    // HTTP API: path parameters decoded, rawPath untouched.
    assert_eq!(e["pathParameters"]["id"], "a/b");
    assert_eq!(e["rawPath"], "/users/a%2Fb");
    let jwt = &e["requestContext"]["authorizer"]["jwt"];
    assert_eq!(jwt["claims"]["exp"], "1744206000");
    assert_eq!(jwt["scopes"], Value::Null);
    assert!(e.get("body").is_none());
}

#[test]
fn v2_default_route_minimal() {
    let headers = [("Host", "h"), ("User-Agent", "curl/7.58.0")];
    let req = RequestView {
        stage: "$default",
        resource: "$default",
        route_method: "ANY",
        user_agent: Some("curl/7.58.0"),
        body: "héllo".as_bytes(),
        ..base(&headers)
    };
    let e = check("v2_default_minimal", &req, true);
    assert_eq!(e["routeKey"], "$default");
    assert_eq!(e["requestContext"]["routeKey"], "$default");
    assert_eq!(e["body"], "héllo");
    for absent in [
        "cookies",
        "queryStringParameters",
        "pathParameters",
        "stageVariables",
    ] {
        assert!(e.get(absent).is_none(), "{absent} must be omitted");
    }
    assert!(e["requestContext"].get("authorizer").is_none());
}

#[test]
fn escaping_and_non_utf8_header_values() {
    let headers: [(&[u8], &[u8]); 2] = [(b"X-Quote", b"a\"b\\c\td"), (b"X-Latin1", b"caf\xe9")];
    let req = RequestView {
        method: "GET",
        path: "/\"x\"",
        query: "k%22=%0A&bad=%FF",
        headers: &headers,
        body: b"",
        source_ip: "::1",
        user_agent: None,
        request_id: "r",
        request_time_ms: 0,
        stage: "prod",
        resource: "/{proxy+}",
        route_method: "ANY",
        path_params: &[("proxy", "\"x\"")],
        domain_name: "localhost",
        protocol: "HTTP/1.1",
        scheme: "https",
        port: 8443,
        authorizer: Authorizer::None,
    };
    let mut out = Vec::new();
    EventWriter::new().write_v1(&req, &api(), &mut out);
    let e: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(e["headers"]["X-Quote"], "a\"b\\c\td");
    assert_eq!(e["headers"]["X-Latin1"], "café");
    assert_eq!(e["queryStringParameters"]["k\""], "\n");
    assert_eq!(e["queryStringParameters"]["bad"], "ÿ");
    assert_eq!(e["requestContext"]["identity"]["userAgent"], Value::Null);
    assert_eq!(e["headers"]["X-Forwarded-Port"], "8443");
    assert_eq!(
        e["requestContext"]["requestTime"],
        "01/Jan/1970:00:00:00 +0000"
    );
    let mut out2 = Vec::new();
    EventWriter::new().write_v2(&req, &api(), &mut out2);
    let e2: Value = serde_json::from_slice(&out2).unwrap();
    assert_eq!(e2["headers"]["x-latin1"], "café");
}

/// Keys of `aws` missing from `ours`, at `path`, except `allowed`.
fn missing_keys(aws: &Value, ours: &Value, path: &str, allowed: &[&str], out: &mut Vec<String>) {
    let (Some(a), Some(o)) = (aws.as_object(), ours.as_object()) else {
        return;
    };
    for (k, v) in a {
        let p = format!("{path}.{k}");
        if allowed.contains(&p.as_str()) {
            continue;
        }
        match o.get(k) {
            None => out.push(p),
            // Maps keyed by header/parameter names are data, not shape.
            Some(ov)
                if ![
                    "headers",
                    "multiValueHeaders",
                    "queryStringParameters",
                    "multiValueQueryStringParameters",
                    "pathParameters",
                    "claims",
                    "stageVariables",
                ]
                .contains(&k.as_str()) =>
            {
                missing_keys(v, ov, &p, allowed, out)
            }
            Some(_) => {}
        }
    }
}

fn assert_same_shape(aws: &Value, ours: &Value, allowed: &[&str]) {
    let mut missing = Vec::new();
    missing_keys(aws, ours, "", allowed, &mut missing);
    assert!(
        missing.is_empty(),
        "keys AWS sends that we do not: {missing:?}"
    );
    // And nothing extra at the top level: functions that check key sets see AWS's.
    let extra: Vec<&String> = ours
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| aws.get(k.as_str()).is_none())
        .collect();
    assert!(
        extra
            .iter()
            .all(|k| ["isBase64Encoded"].contains(&k.as_str())),
        "extra top-level keys: {extra:?}"
    );
}

#[test]
fn shape_matches_aws_rest_sample() {
    let aws = corpus("apigw-request.json");
    let headers = [
        ("Content-Type", "application/json"),
        ("User-Agent", "PostmanRuntime/2.4.5"),
    ];
    let ctx = json!({"clientId": 1, "clientName": "Exata"})
        .as_object()
        .unwrap()
        .clone();
    let req = RequestView {
        authorizer: Authorizer::Lambda {
            principal_id: "admin",
            context: &ctx,
            integration_latency_ms: 0,
        },
        method: "POST",
        path: "/hello/world",
        query: "name=me",
        resource: "/{proxy+}",
        route_method: "ANY",
        path_params: &[("proxy", "hello/world")],
        user_agent: Some("PostmanRuntime/2.4.5"),
        body: b"{\r\n\t\"a\": 1\r\n}",
        ..base(&headers)
    };
    let ours = build(&req, false);
    // The sample has stage variables, which esb does not support (always null).
    assert_same_shape(&aws, &ours, &[]);
    let aws_auth = &aws["requestContext"]["authorizer"];
    for k in ["principalId", "clientId", "clientName"] {
        assert_eq!(aws_auth[k], ours["requestContext"]["authorizer"][k], "{k}");
    }
    assert_eq!(ours["stageVariables"], Value::Null);
    // Same null/absent conventions where the request agrees.
    for k in ["resource", "path", "httpMethod", "body"] {
        assert_eq!(aws[k], ours[k], "{k}");
    }
    assert_eq!(aws["pathParameters"], ours["pathParameters"]);
    assert_eq!(aws["queryStringParameters"], ours["queryStringParameters"]);
    assert_eq!(
        aws["multiValueQueryStringParameters"],
        ours["multiValueQueryStringParameters"]
    );
}

#[test]
fn shape_matches_aws_http_api_samples() {
    // GET / with no query, cookies, parameters, body or authorizer.
    let aws = corpus("apigw-v2-request-no-authorizer.json");
    let headers = [
        ("accept", "*/*"),
        ("content-length", "0"),
        ("host", "aaaaaaaaaa.execute-api.us-west-2.amazonaws.com"),
        ("user-agent", "curl/7.58.0"),
    ];
    let req = RequestView {
        stage: "$default",
        resource: "$default",
        route_method: "ANY",
        user_agent: Some("curl/7.58.0"),
        ..base(&headers)
    };
    let ours = build(&req, true);
    // `authentication` is the mTLS client certificate, which esb does not do.
    assert_same_shape(&aws, &ours, &[".requestContext.authentication"]);
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&aws), keys(&ours));
    assert_eq!(
        keys(&aws["requestContext"]["http"]),
        keys(&ours["requestContext"]["http"])
    );
    for k in [
        "version",
        "routeKey",
        "rawPath",
        "rawQueryString",
        "isBase64Encoded",
    ] {
        assert_eq!(aws[k], ours[k], "{k}");
    }
    assert_eq!(
        aws["headers"]["x-forwarded-port"],
        ours["headers"]["x-forwarded-port"]
    );

    // Everything present: cookies, query, path parameters, body, JWT authorizer.
    let aws = corpus("apigw-v2-request-jwt-authorizer.json");
    let headers = [
        ("Header1", "value1"),
        ("Header2", "value2"),
        ("Cookie", "cookie1; cookie2"),
    ];
    let claims = json!({"claim1": "value1", "claim2": "value2", "scope": "scope1 scope2"})
        .as_object()
        .unwrap()
        .clone();
    let req = RequestView {
        path: "/my/path",
        query: "parameter1=value1&parameter1=value2&parameter2=value",
        stage: "$default",
        resource: "$default",
        route_method: "ANY",
        path_params: &[("proxy", "hello/world")],
        body: b"{\r\n\t\"a\": 1\r\n}",
        authorizer: Authorizer::Cognito {
            claims: &claims,
            username: "u",
        },
        ..base(&headers)
    };
    let ours = build(&req, true);
    assert_same_shape(
        &aws,
        &ours,
        &[".requestContext.authentication", ".stageVariables"],
    );
    for k in [
        "cookies",
        "queryStringParameters",
        "pathParameters",
        "rawQueryString",
        "body",
        "isBase64Encoded",
    ] {
        assert_eq!(aws[k], ours[k], "{k}");
    }
    assert_eq!(
        aws["requestContext"]["authorizer"]["jwt"]["scopes"],
        ours["requestContext"]["authorizer"]["jwt"]["scopes"]
    );
}
