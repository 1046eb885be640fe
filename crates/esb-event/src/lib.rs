//! esb's events: an HTTP request -> the API Gateway event JSON a function receives (REST proxy
//! payload 1.0 or HTTP API payload 2.0), and the function's proxy response -> the HTTP response.
//!
//! No IO and no clock: the request time comes in the [`RequestView`]. Per core, keep one
//! [`EventWriter`] and one output `Vec<u8>` and reuse them:
//!
//! ```
//! use esb_event::{ApiContext, Authorizer, EventWriter, RequestView};
//! let headers: [(&[u8], &[u8]); 1] = [(b"Host", b"api.example.com")];
//! let req = RequestView {
//!     method: "GET", path: "/users/42", query: "tag=a&tag=b", headers: &headers, body: b"",
//!     source_ip: "203.0.113.7", user_agent: None, request_id: "r-1",
//!     request_time_ms: 1_744_202_096_000, stage: "prod", resource: "/users/{id}",
//!     route_method: "GET", path_params: &[("id", "42")], domain_name: "api.example.com",
//!     protocol: "HTTP/1.1", scheme: "https", port: 443, authorizer: Authorizer::None,
//! };
//! let api = ApiContext { account_id: "123456789012".into(), api_id: "esb".into(), ..Default::default() };
//! let (mut writer, mut out) = (EventWriter::new(), Vec::new());
//! writer.write_v1(&req, &api, &mut out);
//! let response = esb_event::map_v1(br#"{"statusCode": 200, "body": "hi"}"#, false).unwrap();
//! assert_eq!(&*response.body, b"hi");
//! ```
//!
//! Decisions are documented in [`request`] (header sanitising, decoding, base64) and
//! [`response`] (what is malformed).

mod json;
pub mod request;
pub mod response;
pub mod time;

pub use request::{
    ApiContext, Authorizer, EventWriter, HeaderPair, RequestView, is_binary_media_type,
};
pub use response::{
    HttpResponse, MAX_RESPONSE_BYTES, MAX_RESPONSE_HEADERS, ResponseError, is_error_shape,
    is_function_error, map_v1, map_v2,
};

/// The hand-written JSON helpers, exposed for `esb-bench`'s writer comparison only.
#[doc(hidden)]
pub mod json_writer {
    pub use crate::json::{bytes_string, escape_into, key, string, uint};
}
