//! Event benches: building REST v1 / HTTP API v2 events for a ~1 KB request, and the JSON writer
//! comparison (hand writer vs serde_json vs sonic-rs) behind esb-event's choice.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use esb_bench::{REQUEST_BODY, SerdeContext, SerdeV1, request_headers};
use esb_event::{ApiContext, Authorizer, EventWriter, RequestView};
use serde_json::json;

const TOKEN: &str = "Bearer eyJraWQiOiJrMS1pZCIsImFsZyI6IlJTMjU2In0.eyJzdWIiOiJhYWFhYWFhYS1iYmJiLWNjY2MtZGRkZC1lZWVlZWVlZWVlZWUiLCJjb2duaXRvOnVzZXJuYW1lIjoiZGVtbyIsImF1ZCI6ImVzYi1jbGllbnQiLCJ0b2tlbl91c2UiOiJpZCIsImV4cCI6MTcwMDAwMzYwMCwiaWF0IjoxNzAwMDAwMDAwfQ.c2lnbmF0dXJlLXBsYWNlaG9sZGVyLWZvci1iZW5jaGVzLW9ubHktbm90LWEtcmVhbC1zaWduYXR1cmUtYWJjZGVmZ2hpams";

fn api() -> ApiContext {
    ApiContext {
        account_id: "123456789012".into(),
        api_id: "esb".into(),
        binary_media_types: vec![],
    }
}

fn view<'a>(
    headers: &'a [(&'a str, &'a str)],
    authorizer: Authorizer<'a>,
    stage: &'a str,
) -> RequestView<'a, (&'a str, &'a str)> {
    RequestView {
        method: "POST",
        path: "/users/42/orders",
        query: "expand=items&expand=customer&limit=10",
        headers,
        body: REQUEST_BODY,
        source_ip: "203.0.113.7",
        user_agent: Some(headers[1].1),
        request_id: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        request_time_ms: 1_744_202_096_000,
        stage,
        resource: "/users/{id}/orders",
        route_method: "POST",
        path_params: &[("id", "42")],
        domain_name: "api.example.com",
        protocol: "HTTP/1.1",
        scheme: "https",
        port: 443,
        authorizer,
    }
}

fn serde_event<'a>(req: &RequestView<'a, (&'a str, &'a str)>) -> SerdeV1<'a> {
    let mut headers = BTreeMap::new();
    let mut multi: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (n, v) in req.headers {
        headers.insert(*n, *v);
        multi.entry(*n).or_default().push(*v);
    }
    let mut q = BTreeMap::new();
    let mut mq: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for pair in req.query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        q.insert(k, v);
        mq.entry(k).or_default().push(v);
    }
    let identity = [
        "accessKey",
        "accountId",
        "apiKey",
        "apiKeyId",
        "caller",
        "cognitoAuthenticationProvider",
        "cognitoAuthenticationType",
        "cognitoIdentityId",
        "cognitoIdentityPoolId",
        "principalOrgId",
        "user",
        "userArn",
        "clientCert",
    ]
    .into_iter()
    .map(|k| (k, None))
    .chain([
        ("sourceIp", Some(req.source_ip)),
        ("userAgent", req.user_agent),
    ])
    .collect();
    SerdeV1 {
        resource: req.resource,
        path: req.path,
        http_method: req.method,
        headers,
        multi_value_headers: multi,
        query_string_parameters: Some(q),
        multi_value_query_string_parameters: Some(mq),
        path_parameters: Some(req.path_params.iter().copied().collect()),
        stage_variables: None,
        request_context: SerdeContext {
            account_id: "123456789012",
            api_id: "esb",
            resource_id: "abc123",
            resource_path: req.resource,
            http_method: req.method,
            path: format!("/{}{}", req.stage, req.path),
            stage: req.stage,
            request_id: req.request_id,
            extended_request_id: req.request_id,
            request_time: "09/Apr/2025:12:34:56 +0000",
            request_time_epoch: req.request_time_ms,
            protocol: req.protocol,
            domain_name: req.domain_name,
            domain_prefix: "api",
            identity,
            authorizer: json!({"claims": null, "scopes": null}),
        },
        body: std::str::from_utf8(req.body).ok(),
        is_base64_encoded: false,
    }
}

fn bench(c: &mut Criterion) {
    let headers = request_headers(TOKEN);
    let claims = json!({
        "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "cognito:username": "demo", "email": "demo@example.com",
        "email_verified": true, "aud": "esb-client", "token_use": "id", "auth_time": 1744200000u64,
        "iss": "https://cognito-idp.ap-northeast-1.amazonaws.com/ap-northeast-1_esb",
        "exp": 1744206000u64, "iat": 1744202400u64, "jti": "5f1c9a2e-7b61-11e6-9a41-93e8deadbeef"
    })
    .as_object()
    .unwrap()
    .clone();
    let cognito = Authorizer::Cognito {
        claims: &claims,
        username: "demo",
    };
    let api = api();
    let mut writer = EventWriter::new();
    let mut out = Vec::with_capacity(8192);

    let v1 = view(&headers, cognito, "prod");
    c.bench_function("event/v1_build_1k", |b| {
        b.iter(|| {
            out.clear();
            writer.write_v1(black_box(&v1), &api, &mut out);
            out.len()
        })
    });
    let v2 = view(&headers, cognito, "$default");
    c.bench_function("event/v2_build_1k", |b| {
        b.iter(|| {
            out.clear();
            writer.write_v2(black_box(&v2), &api, &mut out);
            out.len()
        })
    });

    // The same event without claims, three ways.
    let plain = view(&headers, Authorizer::None, "prod");
    out.clear();
    writer.write_v1(&plain, &api, &mut out);
    eprintln!(
        "event size (hand writer, v1 without claims): {} bytes",
        out.len()
    );
    c.bench_function("event/writer_hand", |b| {
        b.iter(|| {
            out.clear();
            writer.write_v1(black_box(&plain), &api, &mut out);
            out.len()
        })
    });
    let prebuilt = serde_event(&plain);
    c.bench_function("event/writer_serde_json", |b| {
        b.iter(|| {
            out.clear();
            serde_json::to_writer(&mut out, black_box(&prebuilt)).unwrap();
            out.len()
        })
    });
    c.bench_function("event/writer_sonic_rs", |b| {
        b.iter(|| {
            out.clear();
            sonic_rs::to_writer(&mut out, black_box(&prebuilt)).unwrap();
            out.len()
        })
    });
    c.bench_function("event/writer_serde_json_with_build", |b| {
        b.iter(|| {
            out.clear();
            let ev = serde_event(black_box(&plain));
            serde_json::to_writer(&mut out, &ev).unwrap();
            out.len()
        })
    });
    c.bench_function("event/writer_sonic_rs_with_build", |b| {
        b.iter(|| {
            out.clear();
            let ev = serde_event(black_box(&plain));
            sonic_rs::to_writer(&mut out, &ev).unwrap();
            out.len()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
