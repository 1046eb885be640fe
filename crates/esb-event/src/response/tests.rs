//! Response mapping tests: each case is `(payload, expected rendering)`; checklist A38 included.

use super::*;

/// Renders an outcome as `STATUS [name: value]... | body` or `ERR reason`.
fn render(r: Result<HttpResponse<'_>, ResponseError>) -> String {
    match r {
        Ok(r) => {
            let mut s = r.status.to_string();
            for (n, v) in &r.headers {
                s.push_str(&format!(" [{n}: {v}]"));
            }
            s.push_str(" | ");
            s.push_str(&String::from_utf8_lossy(&r.body));
            s
        }
        Err(ResponseError::Malformed(_)) => "ERR malformed".into(),
        Err(e) => format!("ERR {e}"),
    }
}

fn check_v1(payload: &str, expected: &str) {
    assert_eq!(
        render(map_v1(payload.as_bytes(), false)),
        expected,
        "{payload}"
    );
}

fn check_v2(payload: &str, expected: &str) {
    assert_eq!(
        render(map_v2(payload.as_bytes(), false)),
        expected,
        "{payload}"
    );
}

const JSON: &str = "[Content-Type: application/json]";

#[test]
fn v1_basics() {
    check_v1(
        r#"{"statusCode":201,"headers":{"X-A":"1"},"body":"hi"}"#,
        &format!("201 [X-A: 1] {JSON} | hi"),
    );
    check_v1("{}", &format!("200 {JSON} | "));
    check_v1(r#"{"statusCode":"404"}"#, &format!("404 {JSON} | "));
    check_v1(
        r#"{"statusCode":200,"headers":null,"multiValueHeaders":null,"body":null,"isBase64Encoded":null}"#,
        &format!("200 {JSON} | "),
    );
    check_v1(
        r#"{"headers":{"content-type":"text/plain","X-Flag":true,"X-N":5},"body":"é\n"}"#,
        "200 [content-type: text/plain] [X-Flag: true] [X-N: 5] | é\n",
    );
}

#[test]
fn v1_merges_headers_and_multi_value_headers() {
    check_v1(
        r#"{"headers":{"Set-Cookie":"a=1","X":"s"},"multiValueHeaders":{"Set-Cookie":["a=1","b=2"],"Y":["1","2"]}}"#,
        &format!("200 [Set-Cookie: a=1] [Set-Cookie: b=2] [Y: 1] [Y: 2] [X: s] {JSON} | "),
    );
    check_v1(
        r#"{"headers":{"x":"1"},"multiValueHeaders":{"X":["2"]}}"#,
        &format!("200 [X: 2] [x: 1] {JSON} | "),
    );
    check_v1(
        r#"{"multiValueHeaders":{"X":null}}"#,
        &format!("200 {JSON} | "),
    );
}

#[test]
fn v1_malformed_a38() {
    for bad in [
        "not json",
        "",
        "[]",
        "[200]",
        r#""a string""#,
        r#"{"statusCode":200,"extra":1}"#,
        r#"{"statusCode":200,"cookies":["a=b"]}"#,
        r#"{"statusCode":99}"#,
        r#"{"statusCode":600}"#,
        r#"{"statusCode":1000}"#,
        r#"{"statusCode":-200}"#,
        r#"{"statusCode":200.5}"#,
        r#"{"statusCode":"abc"}"#,
        r#"{"statusCode":true}"#,
        r#"{"body":{"a":1}}"#,
        r#"{"body":5}"#,
        r#"{"headers":{"X":null}}"#,
        r#"{"headers":{"X":["a"]}}"#,
        r#"{"headers":{"X":{"a":1}}}"#,
        r#"{"headers":["X"]}"#,
        r#"{"multiValueHeaders":{"X":"a"}}"#,
        r#"{"isBase64Encoded":true,"body":"***"}"#,
        r#"{"isBase64Encoded":"yes"}"#,
        r#"{"headers":{"X":"a\r\nSet-Cookie: x"}}"#,
        r#"{"headers":{"X":"a\nb"}}"#,
        r#"{"headers":{"X":"a\u0000b"}}"#,
        r#"{"headers":{"X Y":"a"}}"#,
        r#"{"headers":{"X:Y":"a"}}"#,
        r#"{"headers":{"":"a"}}"#,
        r#"{"headers":{"Bad\r\nName":"a"}}"#,
        r#"{"statusCode":200}trailing"#,
    ] {
        check_v1(bad, "ERR malformed");
    }
}

#[test]
fn framing_and_hop_by_hop_headers_from_the_function_are_dropped_a38() {
    check_v1(
        r#"{"headers":{"Content-Length":"999","Transfer-Encoding":"chunked","Connection":"close","Keep-Alive":"x","Upgrade":"h2c","TE":"trailers","Trailer":"X","Proxy-Authenticate":"x","Proxy-Whatever":"y","X-Ok":"1"},"body":"ab"}"#,
        &format!("200 [X-Ok: 1] {JSON} | ab"),
    );
    check_v2(
        r#"{"statusCode":200,"headers":{"content-length":"1","x-ok":"1"},"body":"ab"}"#,
        &format!("200 [x-ok: 1] {JSON} | ab"),
    );
}

#[test]
fn too_many_headers_a38() {
    let many: Vec<String> = (0..10_000).map(|i| format!("\"h{i}\":\"v\"")).collect();
    check_v1(
        &format!("{{\"headers\":{{{}}}}}", many.join(",")),
        "ERR malformed",
    );
    let many: Vec<String> = (0..300).map(|i| format!("\"h{i}\":[\"v\"]")).collect();
    check_v1(
        &format!("{{\"multiValueHeaders\":{{{}}}}}", many.join(",")),
        "ERR malformed",
    );
}

#[test]
fn oversized_response_a38() {
    let body = "a".repeat(MAX_RESPONSE_BYTES);
    let payload = format!("{{\"body\":\"{body}\"}}");
    assert_eq!(
        map_v1(payload.as_bytes(), false),
        Err(ResponseError::TooLarge(payload.len()))
    );
    assert_eq!(
        map_v2(payload.as_bytes(), false),
        Err(ResponseError::TooLarge(payload.len()))
    );
}

#[test]
fn nesting_scan() {
    assert!(nesting_within(b"[[[]]]", 3));
    assert!(!nesting_within(b"[[[[]]]]", 3));
    assert!(nesting_within(br#"{"a":"[[[[[[\"[[[["}"#, 1));
    assert!(!nesting_within(br#"{"a":"\\",[[]]}"#, 2));
    assert!(nesting_within(&b"{".repeat(64)[..], 64));
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    // sonic-rs skips ignored values recursively without a depth limit: this once overflowed.
    let error_shape = format!(
        "{{\"errorType\":\"T\",\"errorMessage\":\"m\",\"x\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(!is_error_shape(error_shape.as_bytes()));
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    check_v2(&deep, "ERR malformed");
    check_v1(&format!("{{\"x\":{deep}}}"), "ERR malformed");
    check_v2(&format!("{{\"x\":{deep}}}"), "ERR malformed");
}

#[test]
fn base64_bodies_decode() {
    check_v1(
        r#"{"isBase64Encoded":true,"body":"aGVsbG8=","headers":{"Content-Type":"image/png"}}"#,
        "200 [Content-Type: image/png] | hello",
    );
    check_v1(
        r#"{"base64Encoded":true,"body":"aGk="}"#,
        &format!("200 {JSON} | hi"),
    );
    check_v2(
        r#"{"statusCode":200,"isBase64Encoded":true,"body":"aGk="}"#,
        &format!("200 {JSON} | hi"),
    );
    check_v2(
        r#"{"statusCode":200,"isBase64Encoded":true,"body":"%%"}"#,
        "ERR malformed",
    );
}

#[test]
fn v2_structured() {
    check_v2(
        r#"{"statusCode":302,"headers":{"Location":"/x"},"cookies":["a=1; Path=/","b=2"],"body":"","unknown":{"ignored":[1,2]}}"#,
        &format!("302 [Location: /x] [Set-Cookie: a=1; Path=/] [Set-Cookie: b=2] {JSON} | "),
    );
    check_v2(r#"{"statusCode":"201"}"#, &format!("201 {JSON} | "));
    check_v2(
        r#"{"statusCode":null,"body":"x"}"#,
        &format!("200 {JSON} | x"),
    );
    check_v2(r#"{"statusCode":700}"#, "ERR malformed");
    check_v2(r#"{"statusCode":200,"body":{"a":1}}"#, "ERR malformed");
    check_v2(
        r#"{"statusCode":200,"headers":{"x":"a\rb"}}"#,
        "ERR malformed",
    );
    check_v2(
        r#"{"statusCode":200,"cookies":["a=1\r\nX: y"]}"#,
        "ERR malformed",
    );
}

#[test]
fn v2_inference_without_status_code() {
    check_v2(
        r#""Hello from Lambda!""#,
        &format!("200 {JSON} | Hello from Lambda!"),
    );
    check_v2(
        r#"{ "message": "Hello from Lambda!" }"#,
        &format!(r#"200 {JSON} | {{ "message": "Hello from Lambda!" }}"#),
    );
    // Known keys with other types are just part of the body when there is no statusCode.
    check_v2(
        r#"{"headers":5,"body":{"a":1}}"#,
        &format!(r#"200 {JSON} | {{"headers":5,"body":{{"a":1}}}}"#),
    );
    check_v2(" [1,2] ", &format!("200 {JSON} | [1,2]"));
    check_v2("42", &format!("200 {JSON} | 42"));
    check_v2("null", &format!("200 {JSON} | null"));
    check_v2(r#""esc\"aped""#, &format!("200 {JSON} | esc\"aped"));
    check_v2("not json", "ERR malformed");
    check_v2("", "ERR malformed");
    check_v2("{", "ERR malformed");
}

#[test]
fn function_errors() {
    let rie_error =
        r#"{"errorMessage":"boom","errorType":"Exception","requestId":"r","stackTrace":[]}"#;
    assert_eq!(
        map_v1(rie_error.as_bytes(), false),
        Err(ResponseError::FunctionError)
    );
    assert_eq!(
        map_v2(rie_error.as_bytes(), false),
        Err(ResponseError::FunctionError)
    );
    assert_eq!(
        map_v2(b"{\"statusCode\":200}", true),
        Err(ResponseError::FunctionError)
    );
    let e = ResponseError::FunctionError;
    assert_eq!(
        (e.status(false), e.body(false)),
        (502, r#"{"message": "Internal server error"}"#)
    );
    assert_eq!(
        (e.status(true), e.body(true)),
        (500, r#"{"message":"Internal Server Error"}"#)
    );
}

#[test]
fn sam_error_shape_heuristic() {
    let check = |p: &str, want: bool| assert_eq!(is_error_shape(p.as_bytes()), want, "{p}");
    check(r#"{"errorMessage":"m","errorType":"T"}"#, true);
    check(
        r#"{"errorMessage":"m","errorType":"T","stackTrace":[],"cause":{}}"#,
        true,
    );
    check(
        r#"{"errorMessage":"m","errorType":"T","requestId":"r"}"#,
        true,
    );
    check(r#"{"errorMessage":"m","errorType":"T","a":1,"b":2}"#, false);
    check(
        r#"{"errorMessage":"m","errorType":"T","requestId":"r","stackTrace":[]}"#,
        true,
    );
    check(r#"{"errorMessage":"m"}"#, false);
    check(
        r#"{"statusCode":200,"body":"{\"errorMessage\":\"m\",\"errorType\":\"T\"}"}"#,
        false,
    );
    check("Task timed out after 3.00 seconds", false);
}

#[test]
fn strings_borrow_from_the_payload() {
    let p = br#"{"statusCode":200,"headers":{"X":"v"},"body":"plain"}"#;
    let r = map_v1(p, false).unwrap();
    assert!(matches!(r.body, Cow::Borrowed(_)));
    assert!(matches!(r.headers[0].1, Cow::Borrowed(_)));
}
