//! Shared fixtures for esb's criterion benches (one bench file per area under `benches/`):
//! a realistic ~1 KB request, Lambda responses of ~200 B and ~16 KB, and a serde mirror of the
//! REST event for the JSON writer comparison.

use serde::Serialize;
use std::collections::BTreeMap;

/// Headers of a typical browser/API request behind the gateway (~1 KB with the token).
pub fn request_headers(token: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("Host", "api.example.com"),
        (
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        ),
        ("Accept", "application/json, text/plain, */*"),
        ("Accept-Language", "en-US,en;q=0.9,ja;q=0.8"),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("Content-Type", "application/json"),
        ("Content-Length", "64"),
        ("Authorization", token),
        ("Origin", "https://app.example.com"),
        ("Referer", "https://app.example.com/orders/42"),
        ("Cookie", "session=abc123; theme=dark"),
        ("X-Request-Id", "5f1c9a2e-7b61-11e6-9a41-93e8deadbeef"),
        ("Connection", "keep-alive"),
    ]
}

/// A body of the size a small JSON API call has.
pub const REQUEST_BODY: &[u8] =
    br#"{"orderId":42,"items":[{"sku":"A-1","qty":2}],"note":"leave at door"}"#;

/// A ~200 byte REST proxy response.
pub fn response_200b() -> Vec<u8> {
    br#"{"statusCode":200,"headers":{"Content-Type":"application/json","X-Request-Id":"5f1c9a2e"},"multiValueHeaders":{"Set-Cookie":["a=1; Path=/","b=2; Path=/"]},"body":"{\"ok\":true,\"id\":42}","isBase64Encoded":false}"#.to_vec()
}

/// A ~16 KB REST proxy response: a JSON list serialized into `body` (escaped quotes).
pub fn response_16k() -> Vec<u8> {
    let items: Vec<String> = (0..200)
        .map(|i| format!(r#"{{\"id\":{i},\"name\":\"item number {i}\",\"price\":{}.99,\"tags\":[\"a\",\"b\"]}}"#, i % 97))
        .collect();
    let body = format!("[{}]", items.join(","));
    format!(r#"{{"statusCode":200,"headers":{{"Content-Type":"application/json"}},"body":"{body}","isBase64Encoded":false}}"#)
        .into_bytes()
}

/// The REST v1 event as plain serde structs: what a serde-based writer would serialize.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SerdeV1<'a> {
    pub resource: &'a str,
    pub path: &'a str,
    pub http_method: &'a str,
    pub headers: BTreeMap<&'a str, &'a str>,
    pub multi_value_headers: BTreeMap<&'a str, Vec<&'a str>>,
    pub query_string_parameters: Option<BTreeMap<&'a str, &'a str>>,
    pub multi_value_query_string_parameters: Option<BTreeMap<&'a str, Vec<&'a str>>>,
    pub path_parameters: Option<BTreeMap<&'a str, &'a str>>,
    pub stage_variables: Option<()>,
    pub request_context: SerdeContext<'a>,
    pub body: Option<&'a str>,
    pub is_base64_encoded: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SerdeContext<'a> {
    pub account_id: &'a str,
    pub api_id: &'a str,
    pub resource_id: &'a str,
    pub resource_path: &'a str,
    pub http_method: &'a str,
    pub path: String,
    pub stage: &'a str,
    pub request_id: &'a str,
    pub extended_request_id: &'a str,
    pub request_time: &'a str,
    pub request_time_epoch: u64,
    pub protocol: &'a str,
    pub domain_name: &'a str,
    pub domain_prefix: &'a str,
    pub identity: BTreeMap<&'a str, Option<&'a str>>,
    pub authorizer: serde_json::Value,
}
