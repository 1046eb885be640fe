//! Lambda proxy response -> HTTP response, for REST (payload 1.0) and HTTP API (payload 2.0).
//!
//! Hot path. The function's answer is untrusted input: it is size-capped before parsing, parsed
//! with sonic-rs (depth-limited) into borrowed fields (no copy unless a string has escapes or
//! the body is base64), and every header is validated before anything reaches the client.
//!
//! Rules (spec §2.3, §3.2, checklist A38):
//! - REST: all keys optional; unknown keys, a non-object, a non-string body, a bad statusCode or
//!   a header value of the wrong type are malformed. `headers` and `multiValueHeaders` merge,
//!   identical pairs once. `null` maps and fields count as absent.
//! - HTTP API: an object with `statusCode` is a structured response (unknown keys ignored,
//!   `cookies` become `Set-Cookie`); any other valid JSON is the body itself with status 200
//!   (a JSON string is unwrapped).
//! - Both: statusCode is an integer or a numeric string in 100..=599; `isBase64Encoded: true`
//!   always decodes the body (REST also honours the legacy `base64Encoded`), and invalid base64 is
//!   malformed. REST on AWS decodes only when the client's `Accept` matches `binaryMediaTypes`;
//!   esb always decodes, which is what a function setting the flag means. Header names must be
//!   HTTP tokens and values free of CR, LF, NUL and other controls; framing and hop-by-hop
//!   headers from the function are dropped (the data plane frames the response itself). Without
//!   a `Content-Type` the response gets `application/json`.
//! - A function error (the `X-Amz-Function-Error` header, or the error shape AWS's RIE returns
//!   with a 200, see [`is_error_shape`]) and every malformed response become the gateway's error:
//!   REST 502 `{"message": "Internal server error"}`, HTTP API 500
//!   `{"message":"Internal Server Error"}` ([`ResponseError::status`], [`ResponseError::body`]).

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

/// Lambda's synchronous response limit (6 MB); anything larger is refused unparsed.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// At most this many response headers (after merging); more is treated as malformed.
pub const MAX_RESPONSE_HEADERS: usize = 256;

/// Deepest JSON nesting accepted in a response. sonic-rs skips ignored values recursively with no
/// depth limit, so deeper payloads are refused before parsing rather than risking the stack.
pub const MAX_RESPONSE_DEPTH: usize = 64;

/// An HTTP response to send to the client. Strings borrow the function's payload when they can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse<'a> {
    pub status: u16,
    /// In order; a name may repeat (`Set-Cookie`). Never contains framing or hop-by-hop headers.
    pub headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub body: Cow<'a, [u8]>,
}

/// Why a function's answer cannot be passed on. Always the function's fault; retrying the same
/// invocation is not useful. The client sees only [`Self::status`] and [`Self::body`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The function failed (header or error-shaped payload).
    #[error("function error")]
    FunctionError,
    /// Larger than [`MAX_RESPONSE_BYTES`].
    #[error("response of {0} bytes exceeds the 6 MB limit")]
    TooLarge(usize),
    /// Not a valid Lambda proxy response; the reason is for logs.
    #[error("malformed Lambda proxy response: {0}")]
    Malformed(Cow<'static, str>),
}

impl ResponseError {
    /// API Gateway's status for this failure: 502 (REST) or 500 (HTTP API).
    pub fn status(&self, v2: bool) -> u16 {
        if v2 { 500 } else { 502 }
    }

    /// API Gateway's exact body for this failure.
    pub fn body(&self, v2: bool) -> &'static str {
        if v2 {
            r#"{"message":"Internal Server Error"}"#
        } else {
            r#"{"message": "Internal server error"}"#
        }
    }
}

fn malformed(reason: &'static str) -> ResponseError {
    ResponseError::Malformed(Cow::Borrowed(reason))
}

fn parse_error(e: impl fmt::Display) -> ResponseError {
    ResponseError::Malformed(Cow::Owned(e.to_string()))
}

// ---------------------------------------------------------------- raw shapes

/// A JSON string, borrowed from the payload when it has no escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CowStr<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = CowStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// A header value: a string, or a boolean/number API Gateway turns into text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderValue<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for HeaderValue<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = HeaderValue<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, boolean or number header value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(HeaderValue(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(HeaderValue(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(HeaderValue(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(HeaderValue(Cow::Borrowed(if v { "true" } else { "false" })))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(HeaderValue(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(HeaderValue(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(HeaderValue(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `{"name": value}` in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap<'a>(pub Vec<(CowStr<'a>, HeaderValue<'a>)>);

/// `{"name": [values]}` in document order; a `null` list counts as empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultiHeaderMap<'a>(pub Vec<(CowStr<'a>, Vec<HeaderValue<'a>>)>);

impl<'de: 'a, 'a> Deserialize<'de> for HeaderMap<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = HeaderMap<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of header values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(kv) = m.next_entry()? {
                    if out.len() >= MAX_RESPONSE_HEADERS {
                        return Err(de::Error::custom("too many headers"));
                    }
                    out.push(kv);
                }
                Ok(HeaderMap(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for MultiHeaderMap<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = MultiHeaderMap<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of header value lists")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                let mut total = 0;
                while let Some((k, v)) =
                    m.next_entry::<CowStr<'a>, Option<Vec<HeaderValue<'a>>>>()?
                {
                    let v = v.unwrap_or_default();
                    total += v.len();
                    if total > MAX_RESPONSE_HEADERS {
                        return Err(de::Error::custom("too many headers"));
                    }
                    out.push((k, v));
                }
                Ok(MultiHeaderMap(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// `statusCode`: an integer, or a string holding one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusCode(pub i64);

impl<'de> Deserialize<'de> for StatusCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = StatusCode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer status code")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v)
                    .map(StatusCode)
                    .map_err(|_| E::custom("statusCode out of range"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(StatusCode(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse()
                    .map(StatusCode)
                    .map_err(|_| E::custom("statusCode is not an integer"))
            }
        }
        d.deserialize_any(V)
    }
}

/// The REST (1.0) response object, exactly; any other key is an error.
#[doc(hidden)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawV1<'a> {
    #[serde(rename = "statusCode", default)]
    status_code: Option<StatusCode>,
    #[serde(borrow, default)]
    headers: Option<HeaderMap<'a>>,
    #[serde(rename = "multiValueHeaders", borrow, default)]
    multi_value_headers: Option<MultiHeaderMap<'a>>,
    #[serde(borrow, default)]
    body: Option<CowStr<'a>>,
    #[serde(rename = "isBase64Encoded", default)]
    is_base64_encoded: Option<bool>,
    /// Legacy key REST still honours (SAM: "undocumented behaviour").
    #[serde(rename = "base64Encoded", default)]
    base64_encoded: Option<bool>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The HTTP API (2.0) structured response; unknown keys are ignored.
#[doc(hidden)]
#[derive(Debug, Deserialize)]
pub struct RawV2<'a> {
    /// `Some(None)` is `"statusCode": null`: still a structured response.
    #[serde(rename = "statusCode", default, deserialize_with = "present")]
    status_code: Option<Option<StatusCode>>,
    #[serde(borrow, default)]
    headers: Option<HeaderMap<'a>>,
    #[serde(borrow, default)]
    cookies: Option<Vec<CowStr<'a>>>,
    #[serde(borrow, default)]
    body: Option<CowStr<'a>>,
    #[serde(rename = "isBase64Encoded", default)]
    is_base64_encoded: Option<bool>,
}

impl RawV2<'_> {
    #[doc(hidden)]
    pub fn is_structured(&self) -> bool {
        self.status_code.is_some()
    }
}

/// Parses a REST response object with sonic-rs (what [`map_v1`] does), for benches and tests.
#[doc(hidden)]
pub fn parse_v1(payload: &[u8]) -> Result<RawV1<'_>, ResponseError> {
    // serde would also build the struct from a JSON array (`[]`): only objects are responses.
    if payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(malformed("not a JSON object"));
    }
    sonic_rs::from_slice(payload).map_err(parse_error)
}

// ---------------------------------------------------------------- mapping

/// Maps a REST (payload 1.0) proxy response. `function_error` is whether the invoke answer
/// carried `X-Amz-Function-Error`.
pub fn map_v1(payload: &[u8], function_error: bool) -> Result<HttpResponse<'_>, ResponseError> {
    precheck(payload, function_error)?;
    let raw = parse_v1(payload)?;
    map_raw_v1(raw)
}

/// The mapping half of [`map_v1`], for a `RawV1` parsed by any serde backend.
#[doc(hidden)]
pub fn map_raw_v1(raw: RawV1<'_>) -> Result<HttpResponse<'_>, ResponseError> {
    let status = status(raw.status_code)?;
    let mut headers = Vec::new();
    if let Some(multi) = raw.multi_value_headers {
        for (name, values) in multi.0 {
            for v in values {
                push_header(&mut headers, name.0.clone(), v.0)?;
            }
        }
    }
    if let Some(single) = raw.headers {
        for (name, v) in single.0 {
            // "only the values from multiValueHeaders will appear" for a pair in both.
            let dup = headers
                .iter()
                .any(|(n, hv): &(Cow<'_, str>, Cow<'_, str>)| {
                    n.eq_ignore_ascii_case(&name.0) && *hv == v.0
                });
            if !dup {
                push_header(&mut headers, name.0, v.0)?;
            }
        }
    }
    let base64 = raw
        .is_base64_encoded
        .or(raw.base64_encoded)
        .unwrap_or(false);
    let body = body(raw.body, base64)?;
    finish(status, headers, body)
}

/// Maps an HTTP API (payload 2.0) response. `function_error` as for [`map_v1`].
pub fn map_v2(payload: &[u8], function_error: bool) -> Result<HttpResponse<'_>, ResponseError> {
    precheck(payload, function_error)?;
    let start = payload.iter().position(|b| !b.is_ascii_whitespace());
    match start.map(|i| payload[i]) {
        Some(b'{') => match sonic_rs::from_slice::<RawV2<'_>>(payload) {
            Ok(raw) if raw.is_structured() => map_raw_v2(raw),
            Ok(_) => Ok(default_v2(Cow::Borrowed(trim_json(payload)))),
            Err(e) => {
                // Known keys with odd types are fine when there is no statusCode: then the
                // whole object is the body.
                #[derive(Deserialize)]
                struct Probe {
                    #[serde(rename = "statusCode", default, deserialize_with = "present")]
                    status_code: Option<IgnoredAny>,
                }
                match sonic_rs::from_slice::<Probe>(payload) {
                    Ok(p) if p.status_code.is_none() => {
                        Ok(default_v2(Cow::Borrowed(trim_json(payload))))
                    }
                    _ => Err(parse_error(e)),
                }
            }
        },
        Some(b'"') => {
            let s: CowStr<'_> = sonic_rs::from_slice(payload).map_err(parse_error)?;
            Ok(default_v2(match s.0 {
                Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                Cow::Owned(s) => Cow::Owned(s.into_bytes()),
            }))
        }
        Some(_) => {
            sonic_rs::from_slice::<IgnoredAny>(payload).map_err(parse_error)?;
            Ok(default_v2(Cow::Borrowed(trim_json(payload))))
        }
        None => Err(malformed("empty response")),
    }
}

/// The mapping half of [`map_v2`] for a structured response.
#[doc(hidden)]
pub fn map_raw_v2(raw: RawV2<'_>) -> Result<HttpResponse<'_>, ResponseError> {
    let status = status(raw.status_code.flatten())?;
    let mut headers = Vec::new();
    if let Some(h) = raw.headers {
        for (name, v) in h.0 {
            push_header(&mut headers, name.0, v.0)?;
        }
    }
    for c in raw.cookies.unwrap_or_default() {
        push_header(&mut headers, Cow::Borrowed("Set-Cookie"), c.0)?;
    }
    let body = body(raw.body, raw.is_base64_encoded.unwrap_or(false))?;
    finish(status, headers, body)
}

/// Whether an invoke answer is a function error: the header, or (for AWS's RIE, which never sends
/// it) SAM CLI's test on the body: a JSON object with `errorMessage` and `errorType` whose keys
/// are all from {errorMessage, errorType, stackTrace, cause}, or that has exactly three keys.
/// esb also allows `requestId` in that set: the Python runtime's errors carry it, and SAM's test
/// misses them (a 4-key error would otherwise be an HTTP API 200 body).
pub fn is_function_error(function_error_header: bool, payload: &[u8]) -> bool {
    function_error_header || is_error_shape(payload)
}

/// SAM CLI's error-shape test (see [`is_function_error`]). Cheap when the payload is not one.
pub fn is_error_shape(payload: &[u8]) -> bool {
    let starts_obj = payload
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{');
    if !starts_obj
        || !contains(payload, b"\"errorType\"")
        || !contains(payload, b"\"errorMessage\"")
        || !nesting_within(payload, MAX_RESPONSE_DEPTH)
    {
        return false;
    }
    struct Keys {
        count: usize,
        only_error_keys: bool,
        has_message: bool,
        has_type: bool,
    }
    impl<'de> Deserialize<'de> for Keys {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Keys;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Keys, A::Error> {
                    let mut k = Keys {
                        count: 0,
                        only_error_keys: true,
                        has_message: false,
                        has_type: false,
                    };
                    while let Some((key, _)) = m.next_entry::<CowStr<'de>, IgnoredAny>()? {
                        k.count += 1;
                        match &*key.0 {
                            "errorMessage" => k.has_message = true,
                            "errorType" => k.has_type = true,
                            "stackTrace" | "cause" | "requestId" => {}
                            _ => k.only_error_keys = false,
                        }
                    }
                    Ok(k)
                }
            }
            d.deserialize_map(V)
        }
    }
    match sonic_rs::from_slice::<Keys>(payload) {
        Ok(k) => k.has_message && k.has_type && (k.only_error_keys || k.count == 3),
        Err(_) => false,
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    // memmem, not `windows().any()`: on a 5 KB answer the naive scan cost ~96,000 instructions
    // per request, 37% of a whole authenticated request (callgrind, docs/performance.md).
    memchr::memmem::find(hay, needle).is_some()
}

/// Whether `payload`'s arrays/objects nest at most `max` deep (strings are skipped).
///
/// Our own check because sonic-rs still recurses without a bound on some paths (cloudwego/sonic-rs
/// #232, #239): a hostile answer must become a 502, not a stack overflow. The slow path stays a
/// plain byte loop: jumping between quotes and backslashes with memchr2 was 15% slower on a 16 KB
/// escaped JSON body (`response/map_v1_16k`), where a backslash comes every few bytes.
fn nesting_within(payload: &[u8], max: usize) -> bool {
    // Fast path: few brackets at all cannot nest deeply (memchr2 skips the rest with SIMD; a
    // byte-by-byte count cost ~18,000 instructions per 5 KB answer).
    if memchr::memchr2_iter(b'[', b'{', payload)
        .take(max + 1)
        .count()
        <= max
    {
        return true;
    }
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for &b in payload {
        if in_str {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

fn precheck(payload: &[u8], function_error: bool) -> Result<(), ResponseError> {
    if payload.len() > MAX_RESPONSE_BYTES {
        return Err(ResponseError::TooLarge(payload.len()));
    }
    if !nesting_within(payload, MAX_RESPONSE_DEPTH) {
        return Err(malformed("JSON nested too deeply"));
    }
    if is_function_error(function_error, payload) {
        return Err(ResponseError::FunctionError);
    }
    Ok(())
}

fn trim_json(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |e| e + 1);
    &b[s..e]
}

fn default_v2(body: Cow<'_, [u8]>) -> HttpResponse<'_> {
    HttpResponse {
        status: 200,
        headers: vec![(
            Cow::Borrowed("Content-Type"),
            Cow::Borrowed("application/json"),
        )],
        body,
    }
}

fn status(code: Option<StatusCode>) -> Result<u16, ResponseError> {
    match code {
        None => Ok(200),
        Some(StatusCode(c)) if (100..=599).contains(&c) => Ok(c as u16),
        Some(_) => Err(malformed("statusCode outside 100..=599")),
    }
}

fn body(body: Option<CowStr<'_>>, base64: bool) -> Result<Cow<'_, [u8]>, ResponseError> {
    let Some(CowStr(s)) = body else {
        return Ok(Cow::Borrowed(&[]));
    };
    if base64 {
        return base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(Cow::Owned)
            .map_err(|_| malformed("isBase64Encoded body is not valid base64"));
    }
    Ok(match s {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    })
}

/// Headers a function must not set: the data plane owns framing and the connection. Every
/// `Proxy-*` header is dropped as well.
const DROPPED: [&str; 7] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
];

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_field_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

fn push_header<'a>(
    headers: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>,
    name: Cow<'a, str>,
    value: Cow<'a, str>,
) -> Result<(), ResponseError> {
    if !is_token(&name) {
        return Err(malformed("header name is not an HTTP token"));
    }
    if !is_field_value(&value) {
        return Err(malformed(
            "header value contains CR, LF, NUL or another control",
        ));
    }
    let proxy = name.len() > 6 && name.as_bytes()[..6].eq_ignore_ascii_case(b"proxy-");
    if proxy || DROPPED.iter().any(|d| d.eq_ignore_ascii_case(&name)) {
        return Ok(());
    }
    if headers.len() >= MAX_RESPONSE_HEADERS {
        return Err(malformed("too many headers"));
    }
    headers.push((name, value));
    Ok(())
}

fn finish<'a>(
    status: u16,
    mut headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    body: Cow<'a, [u8]>,
) -> Result<HttpResponse<'a>, ResponseError> {
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        headers.push((
            Cow::Borrowed("Content-Type"),
            Cow::Borrowed("application/json"),
        ));
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests;
