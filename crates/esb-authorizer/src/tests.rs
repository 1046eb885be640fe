//! Authorizer answers, pre-checks and refusals as API Gateway gives them, and one request's whole
//! path through the cache.

use super::*;
use std::rc::Rc;
use std::time::{Duration, Instant};

const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/users/42";
const REST: ResponseFormat = ResponseFormat::Policy { flat_context: true };

fn allow_all(principal: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "principalId": principal,
        "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": "Allow",
             "Resource": "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/*"}]},
        "context": {"tenant": "acme", "admin": true, "level": 3}
    }))
    .unwrap()
}

/// `result` under `format` for `ARN` ends as `want` (`Ok(principal)` or a refusal).
#[track_caller]
fn check(result: FunctionResult<'_>, format: ResponseFormat, want: Result<Option<&str>, Refusal>) {
    let got = parse_result(result, format).and_then(|g| g.decide(ARN));
    match (got, want) {
        (Ok(a), Ok(p)) => assert_eq!(a.principal_id.as_deref(), p),
        (Err(Refusal::Misconfigured(_)), Err(Refusal::Misconfigured(_))) => {}
        (got, want) => assert_eq!(
            got.map(|a| a.principal_id),
            want.map(|p| p.map(str::to_string))
        ),
    }
}

fn misconfigured() -> Refusal {
    Refusal::Misconfigured(String::new())
}

#[test]
fn function_results() {
    use FunctionResult::*;
    check(Returned(&allow_all("user-1")), REST, Ok(Some("user-1")));
    // Thrown "Unauthorized" (Node's callback("Unauthorized"), Python's raise) is 401.
    check(
        Failed(br#"{"errorMessage":"Unauthorized","errorType":"Error"}"#),
        REST,
        Err(Refusal::Unauthorized),
    );
    check(
        Returned(br#""Unauthorized""#),
        REST,
        Err(Refusal::Unauthorized),
    );
    // Any other failure, no invocation, or an answer that is not a policy: 500.
    check(
        Failed(br#"{"errorMessage":"KeyError: 'x'","errorType":"KeyError"}"#),
        REST,
        Err(misconfigured()),
    );
    check(Failed(b"garbage"), REST, Err(misconfigured()));
    check(NotInvoked, REST, Err(misconfigured()));
    check(Returned(b"not json"), REST, Err(misconfigured()));
    check(Returned(br#""Allow""#), REST, Err(misconfigured()));
    check(Returned(b"{}"), REST, Err(misconfigured()));
    // Simple responses.
    check(
        Returned(br#"{"isAuthorized": true}"#),
        ResponseFormat::Simple,
        Ok(None),
    );
    check(
        Returned(br#"{"isAuthorized": false}"#),
        ResponseFormat::Simple,
        Err(Refusal::NotAllowed),
    );
    check(
        Returned(&allow_all("u")),
        ResponseFormat::Simple,
        Err(misconfigured()),
    );
    // An HTTP API 1.0 policy may carry nested context; REST's may not.
    let nested = serde_json::to_vec(&json!({
        "principalId": "u",
        "policyDocument": {"Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}]},
        "context": {"groups": ["a", "b"]}
    }))
    .unwrap();
    check(Returned(&nested), REST, Err(misconfigured()));
    check(
        Returned(&nested),
        ResponseFormat::Policy {
            flat_context: false,
        },
        Ok(Some("u")),
    );
}

#[track_caller]
fn check_response(r: Refusal, api: ApiKind, status: u16, error_type: Option<&str>, body: Value) {
    let (s, headers, b) = r.response(api);
    assert_eq!(s, status);
    assert_eq!(
        headers
            .iter()
            .find(|(k, _)| *k == "x-amzn-ErrorType")
            .map(|(_, v)| v.as_str()),
        error_type
    );
    assert_eq!(serde_json::from_slice::<Value>(&b).unwrap(), body);
}

#[test]
fn refusals_as_api_gateway_words_them() {
    use ApiKind::*;
    check_response(
        Refusal::Unauthorized,
        Rest,
        401,
        Some("UnauthorizedException"),
        json!({"message": "Unauthorized"}),
    );
    check_response(
        Refusal::ExplicitDeny,
        Rest,
        403,
        Some("AccessDeniedException"),
        json!({"Message": "User is not authorized to access this resource with an explicit deny"}),
    );
    check_response(
        Refusal::NotAllowed,
        Rest,
        403,
        Some("AccessDeniedException"),
        json!({"Message": "User is not authorized to access this resource"}),
    );
    check_response(
        Refusal::Misconfigured("secret detail".into()),
        Rest,
        500,
        Some("AuthorizerConfigurationException"),
        json!({"message": null}),
    );
    check_response(
        Refusal::Unauthorized,
        Http,
        401,
        None,
        json!({"message": "Unauthorized"}),
    );
    check_response(
        Refusal::ExplicitDeny,
        Http,
        403,
        None,
        json!({"message": "Forbidden"}),
    );
    check_response(
        Refusal::NotAllowed,
        Http,
        403,
        None,
        json!({"message": "Forbidden"}),
    );
    check_response(
        Refusal::Misconfigured("x".into()),
        Http,
        500,
        None,
        json!({"message": "Internal Server Error"}),
    );
}

#[test]
fn token_pre_checks() {
    let any = TokenCheck::new(None).unwrap();
    assert_eq!(any.check(Some("abc")), Ok("abc"));
    assert_eq!(any.check(None), Err(Refusal::Unauthorized));
    assert_eq!(any.check(Some("")), Err(Refusal::Unauthorized));
    // The expression must match the whole token.
    let bearer = TokenCheck::new(Some(r"Bearer [A-Za-z0-9._-]+")).unwrap();
    assert_eq!(bearer.check(Some("Bearer ey.J0-_")), Ok("Bearer ey.J0-_"));
    assert_eq!(
        bearer.check(Some("Bearer ey J0")),
        Err(Refusal::Unauthorized)
    );
    assert_eq!(
        bearer.check(Some("xBearer abc")),
        Err(Refusal::Unauthorized)
    );
    let alt = TokenCheck::new(Some("allow|deny")).unwrap();
    assert_eq!(alt.check(Some("deny")), Ok("deny"));
    assert_eq!(alt.check(Some("allowdeny")), Err(Refusal::Unauthorized));
    assert!(TokenCheck::new(Some("(")).is_err());
}

#[test]
fn identity_sources() {
    let sources = [
        IdentitySource::Header("Auth".into()),
        IdentitySource::QueryString("tenant".into()),
    ];
    let lookup = |h: Option<&str>, q: Option<&str>| {
        let (h, q) = (h.map(str::to_string), q.map(str::to_string));
        move |s: &IdentitySource| match s {
            IdentitySource::Header(_) => h.clone(),
            IdentitySource::QueryString(_) => q.clone(),
            _ => None,
        }
    };
    assert_eq!(
        identity_values(&sources, lookup(Some("t1"), Some("acme"))),
        Ok(vec!["t1".to_string(), "acme".to_string()])
    );
    assert_eq!(
        identity_values(&sources, lookup(Some("t1"), None)),
        Err(Refusal::Unauthorized)
    );
    assert_eq!(
        identity_values(&sources, lookup(Some(""), Some("acme"))),
        Err(Refusal::Unauthorized)
    );
    assert_eq!(identity_values(&[], lookup(None, None)), Ok(vec![]));
    // Different value lists never share a key.
    let k = |v: &[&str]| cache_key(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_ne!(k(&["a,b", "c"]), k(&["a", "b,c"]));
    assert_ne!(k(&["ab", ""]), k(&["a", "b"]));
    assert_eq!(k(&["tok"]), k(&["tok"]));
}

#[test]
fn request_context_shapes() {
    let g = parse_result(FunctionResult::Returned(&allow_all("user-123")), REST).unwrap();
    let a = g.decide(ARN).unwrap();
    assert_eq!(
        a.request_context(PayloadFormat::V1, 12),
        json!({"principalId": "user-123", "tenant": "acme", "admin": true, "level": 3,
               "integrationLatency": 12})
    );
    assert_eq!(
        a.request_context(PayloadFormat::V2, 12),
        json!({"lambda": {"tenant": "acme", "admin": true, "level": 3}})
    );
}

#[test]
fn method_arn_and_token_event() {
    let arn = method_arn(
        "us-east-1",
        "123456789012",
        "abc123",
        "prod",
        "GET",
        "/users/42",
    );
    assert_eq!(arn, ARN);
    assert_eq!(
        serde_json::from_slice::<Value>(&token_event("Bearer x", &arn)).unwrap(),
        json!({"type": "TOKEN", "authorizationToken": "Bearer x", "methodArn": ARN})
    );
}

/// One authorizer with a 300 s cache: the function runs once per token per TTL, and its cached
/// policy is evaluated afresh for each method.
#[test]
fn cached_policies_are_reevaluated_per_method() {
    let t0 = Instant::now();
    let mut cache = DecisionCache::new(Duration::from_secs(300), 1000);
    let check = TokenCheck::new(None).unwrap();
    let mut invocations = 0;
    let mut authorize = |token: Option<&str>, method: &str, now: Instant| {
        let token = check.check(token)?;
        let grant = match cache.get(token, now) {
            Some(g) => g,
            None => {
                invocations += 1;
                let g = Rc::new(parse_result(
                    FunctionResult::Returned(&allow_all(token)),
                    REST,
                )?);
                cache.insert(token.to_string(), Rc::clone(&g), now);
                g
            }
        };
        let arn = method_arn(
            "us-east-1",
            "123456789012",
            "abc123",
            "prod",
            method,
            "/users/42",
        );
        grant.decide(&arn)
    };
    assert!(authorize(Some("alice"), "GET", t0).is_ok());
    assert_eq!(
        authorize(Some("alice"), "DELETE", t0),
        Err(Refusal::NotAllowed)
    );
    assert!(authorize(Some("alice"), "GET", t0 + Duration::from_secs(299)).is_ok());
    assert_eq!(authorize(None, "GET", t0), Err(Refusal::Unauthorized));

    assert_eq!(invocations, 1);
}

#[test]
fn request_events_keep_the_request_and_drop_body_and_authorizer() {
    let v1 = json!({
        "resource": "/items/{id}", "path": "/items/7", "httpMethod": "GET",
        "headers": {"x-tenant": "ok-a"}, "multiValueHeaders": {"x-tenant": ["ok-a"]},
        "queryStringParameters": {"q": "1"}, "multiValueQueryStringParameters": {"q": ["1"]},
        "pathParameters": {"id": "7"}, "stageVariables": null,
        "requestContext": {"stage": "prod", "authorizer": {"claims": null}},
        "body": "secret", "isBase64Encoded": false,
    });
    let arn = "arn:aws:execute-api:us-east-1:1:api/prod/GET/items/7";
    let ids = ["ok-a".to_string(), "1".to_string()];
    let raw = serde_json::to_vec(&v1).unwrap();
    let rest: Value =
        serde_json::from_slice(&request_event(&raw, RequestShape::Rest, arn, &ids).unwrap())
            .unwrap();
    assert_eq!(rest["type"], "REQUEST");
    assert_eq!(rest["methodArn"], arn);
    assert_eq!(rest["headers"]["x-tenant"], "ok-a");
    assert_eq!(rest["pathParameters"]["id"], "7");
    assert_eq!(rest["requestContext"]["stage"], "prod");
    for gone in ["body", "isBase64Encoded", "version", "identitySource"] {
        assert!(rest.get(gone).is_none(), "{gone}: {rest}");
    }
    assert!(rest["requestContext"].get("authorizer").is_none());

    let h1: Value =
        serde_json::from_slice(&request_event(&raw, RequestShape::HttpV1, arn, &ids).unwrap())
            .unwrap();
    assert_eq!(h1["version"], "1.0");
    assert_eq!(h1["identitySource"], "ok-a,1");
    assert_eq!(h1["authorizationToken"], "ok-a,1");

    let v2 = json!({
        "version": "2.0", "routeKey": "GET /items/{id}", "rawPath": "/items/7",
        "rawQueryString": "q=1", "cookies": ["a=b"], "headers": {"x-tenant": "ok-a"},
        "queryStringParameters": {"q": "1"}, "pathParameters": {"id": "7"},
        "requestContext": {"routeKey": "GET /items/{id}"}, "body": "x", "isBase64Encoded": false,
    });
    let raw = serde_json::to_vec(&v2).unwrap();
    let h2: Value =
        serde_json::from_slice(&request_event(&raw, RequestShape::HttpV2, arn, &ids).unwrap())
            .unwrap();
    assert_eq!(h2["version"], "2.0");
    assert_eq!(h2["type"], "REQUEST");
    assert_eq!(h2["routeArn"], arn);
    assert_eq!(h2["identitySource"], json!(["ok-a", "1"]));
    assert_eq!(h2["routeKey"], "GET /items/{id}");
    assert_eq!(h2["cookies"], json!(["a=b"]));
    assert!(h2.get("body").is_none() && h2.get("methodArn").is_none());
    assert!(request_event(b"not json", RequestShape::Rest, arn, &ids).is_err());
}

#[test]
fn query_values_are_decoded_and_the_last_one_wins() {
    assert_eq!(
        query_value("a=1&tenant=ok%2Dx&b", "tenant").as_deref(),
        Some("ok-x")
    );
    assert_eq!(query_value("t=1&t=2", "t").as_deref(), Some("2"));
    assert_eq!(query_value("b", "b").as_deref(), Some(""));
    assert_eq!(query_value("ab=1", "a"), None);
    assert_eq!(query_value("", "a"), None);
    assert_eq!(query_value("my%20key=v", "my key").as_deref(), Some("v"));
}
