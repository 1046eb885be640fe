//! Request -> API Gateway event: REST proxy (payload 1.0) and HTTP API (payload 2.0) JSON, written
//! by hand into the caller's reused buffer.
//!
//! Hot path: after warm-up no allocation happens here; the decoded query string and the header
//! classification live in [`EventWriter`]'s scratch buffers, which are reused across requests.
//!
//! Header rules (this crate is the last place headers pass before a function sees them, so the
//! sanitising lives here and cannot be forgotten by a caller):
//! - hop-by-hop headers (`Connection`, `Keep-Alive`, `TE`, `Trailer`, `Transfer-Encoding`,
//!   `Upgrade`, `Proxy-*`) and every header nominated in a `Connection` header are dropped
//!   (checklist A19);
//! - headers the gateway owns are dropped when the client sends them (`X-Forwarded-For`,
//!   `X-Forwarded-Proto`, `X-Forwarded-Port`, `Forwarded`, `X-Real-IP`, `X-Amzn-RequestId`,
//!   `X-Amzn-Trace-Id`), and `X-Forwarded-For`/`-Port`/`-Proto` are then added from what the
//!   gateway saw (A20);
//! - REST (v1) also drops `Content-Length`, as AWS does, and Title-Cases `authorization` and
//!   `user-agent` names as AWS does; HTTP API (v2) lower-cases every name and moves `Cookie`
//!   headers into `cookies`.

use base64::Engine as _;
use percent_encoding::percent_decode;

use crate::json;
use crate::time;

/// One request header as the HTTP layer parsed it.
pub trait HeaderPair {
    fn name(&self) -> &[u8];
    fn value(&self) -> &[u8];
}

impl HeaderPair for (&[u8], &[u8]) {
    fn name(&self) -> &[u8] {
        self.0
    }
    fn value(&self) -> &[u8] {
        self.1
    }
}

impl HeaderPair for (&str, &str) {
    fn name(&self) -> &[u8] {
        self.0.as_bytes()
    }
    fn value(&self) -> &[u8] {
        self.1.as_bytes()
    }
}

impl HeaderPair for (&str, &[u8]) {
    fn name(&self) -> &[u8] {
        self.0.as_bytes()
    }
    fn value(&self) -> &[u8] {
        self.1
    }
}

impl<H: HeaderPair> HeaderPair for &H {
    fn name(&self) -> &[u8] {
        (**self).name()
    }
    fn value(&self) -> &[u8] {
        (**self).value()
    }
}

impl HeaderPair for httparse::Header<'_> {
    fn name(&self) -> &[u8] {
        self.name.as_bytes()
    }
    fn value(&self) -> &[u8] {
        self.value
    }
}

/// Who the authorizer said the caller is.
#[derive(Debug, Clone, Copy, Default)]
pub enum Authorizer<'a> {
    /// Public route (or API key only).
    #[default]
    None,
    /// A verified Cognito-style token: its claims exactly as verified, and the username.
    Cognito {
        claims: &'a serde_json::Map<String, serde_json::Value>,
        username: &'a str,
    },
    /// A Lambda authorizer's answer: `principalId` and its `context`.
    Lambda {
        principal_id: &'a str,
        context: &'a serde_json::Map<String, serde_json::Value>,
        integration_latency_ms: u64,
    },
}

/// Everything about one request an event needs, borrowed from the data plane's buffers.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a, H = (&'a [u8], &'a [u8])> {
    /// As received, e.g. `GET`.
    pub method: &'a str,
    /// Raw path without the query string, still percent-encoded, e.g. `/users/42`.
    pub path: &'a str,
    /// Raw query string without `?`; empty when there is none.
    pub query: &'a str,
    /// Headers in arrival order, unfiltered: the rules in this module's doc apply.
    pub headers: &'a [H],
    pub body: &'a [u8],
    pub source_ip: &'a str,
    pub user_agent: Option<&'a str>,
    pub request_id: &'a str,
    /// Epoch milliseconds when the request arrived (passed in: this crate reads no clock).
    pub request_time_ms: u64,
    /// `prod` for REST, `$default` for HTTP API.
    pub stage: &'a str,
    /// The route template (`/users/{id}`), or `$default`.
    pub resource: &'a str,
    /// The route's configured method, `ANY` or e.g. `GET` (HTTP API `routeKey`).
    pub route_method: &'a str,
    /// Raw (percent-encoded) path parameters, as the router returns them.
    pub path_params: &'a [(&'a str, &'a str)],
    /// `requestContext.domainName`; its first label is `domainPrefix`.
    pub domain_name: &'a str,
    /// `HTTP/1.1`.
    pub protocol: &'a str,
    /// The scheme and port the client connected to (`X-Forwarded-Proto`/`-Port`).
    pub scheme: &'a str,
    pub port: u16,
    pub authorizer: Authorizer<'a>,
}

/// Per-API settings that do not change per request.
#[derive(Debug, Clone, Default)]
pub struct ApiContext {
    pub account_id: String,
    pub api_id: String,
    /// API Gateway `binaryMediaTypes`: `image/png`, `image/*`, `*/*`. A request body with a
    /// matching `Content-Type` is passed base64-encoded; so is any body that is not UTF-8.
    pub binary_media_types: Vec<String>,
}

/// Builds events into a caller-provided buffer. One per core; its scratch buffers are reused.
#[derive(Debug, Default)]
pub struct EventWriter {
    /// Per header: `KEEP`, or why it is dropped.
    class: Vec<u8>,
    /// Decoded query keys and values, back to back.
    qbuf: Vec<u8>,
    /// `(key start, key end, value end)` into `qbuf`; a value starts where its key ends.
    qidx: Vec<(u32, u32, u32)>,
    /// Scratch for one decoded path parameter.
    pbuf: Vec<u8>,
}

const KEEP: u8 = 0;
const DROP: u8 = 1;
/// v2 only: a `Cookie` header, written to `cookies`.
const COOKIE: u8 = 2;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    V1,
    V2,
}

/// Hop-by-hop headers (RFC 9110 §7.6.1); every `Proxy-*` header is dropped as well.
const HOP_BY_HOP: [&[u8]; 6] = [
    b"connection",
    b"keep-alive",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
];

fn is_proxy_header(name: &[u8]) -> bool {
    name.len() > 6 && name[..6].eq_ignore_ascii_case(b"proxy-")
}

/// Set by the gateway; a client's copy would let it spoof its address or the request id.
const GATEWAY_OWNED: [&[u8]; 7] = [
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-port",
    b"forwarded",
    b"x-real-ip",
    b"x-amzn-requestid",
    b"x-amzn-trace-id",
];

fn is_one_of(name: &[u8], list: &[&[u8]]) -> bool {
    list.iter().any(|h| h.eq_ignore_ascii_case(name))
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// Whether some `Connection` header lists `name`.
fn nominated<H: HeaderPair>(connection: impl Iterator<Item = H>, name: &[u8]) -> bool {
    connection.into_iter().any(|h| {
        h.value()
            .split(|&b| b == b',')
            .any(|t| trim(t).eq_ignore_ascii_case(name))
    })
}

/// Whether `content_type` matches one of API Gateway's `binaryMediaTypes` patterns.
pub fn is_binary_media_type(content_type: &[u8], patterns: &[String]) -> bool {
    let media = trim(content_type.split(|&b| b == b';').next().unwrap_or(b""));
    patterns.iter().any(|p| {
        let p = p.as_bytes();
        if p == b"*/*" {
            return true;
        }
        match p.strip_suffix(b"*") {
            Some(prefix) => {
                media.len() >= prefix.len() && media[..prefix.len()].eq_ignore_ascii_case(prefix)
            }
            None => media.eq_ignore_ascii_case(p),
        }
    })
}

/// `+` as space and `%XX` decoded, as for `application/x-www-form-urlencoded`; API Gateway
/// decodes query values this way (`?sort=-+createdAt` arrives as `- createdAt`). Bad escapes stay
/// literal.
fn form_decode_into(out: &mut Vec<u8>, raw: &[u8]) {
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < raw.len() => match (hex(raw[i + 1]), hex(raw[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl EventWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a REST API (payload format 1.0) proxy event for `req` to `out`.
    pub fn write_v1<H: HeaderPair>(
        &mut self,
        req: &RequestView<'_, H>,
        api: &ApiContext,
        out: &mut Vec<u8>,
    ) {
        self.classify(req.headers, Format::V1);
        self.parse_query(req.query);

        out.extend_from_slice(b"{\"resource\":");
        json::string(out, req.resource);
        out.extend_from_slice(b",\"path\":");
        json::string(out, req.path);
        out.extend_from_slice(b",\"httpMethod\":");
        json::string(out, req.method);

        // headers: last value wins; multiValueHeaders: all, in arrival order.
        out.extend_from_slice(b",\"headers\":{");
        let mut first = true;
        self.each_header_name(req.headers, |i, name| {
            sep(out, &mut first);
            v1_header_name(out, name);
            out.push(b':');
            let last = (i..req.headers.len())
                .rev()
                .find(|&j| {
                    self.class[j] == KEEP && req.headers[j].name().eq_ignore_ascii_case(name)
                })
                .unwrap_or(i);
            json::bytes_string(out, req.headers[last].value());
        });
        forwarded_headers(out, &mut first, req, Format::V1, false);
        out.extend_from_slice(b"},\"multiValueHeaders\":{");
        let mut first = true;
        self.each_header_name(req.headers, |i, name| {
            sep(out, &mut first);
            v1_header_name(out, name);
            out.extend_from_slice(b":[");
            let mut first_v = true;
            for j in i..req.headers.len() {
                if self.class[j] == KEEP && req.headers[j].name().eq_ignore_ascii_case(name) {
                    sep(out, &mut first_v);
                    json::bytes_string(out, req.headers[j].value());
                }
            }
            out.push(b']');
        });
        forwarded_headers(out, &mut first, req, Format::V1, true);
        out.push(b'}');

        // Query: null when there is none; single map keeps the last value.
        out.extend_from_slice(b",\"queryStringParameters\":");
        if self.qidx.is_empty() {
            out.extend_from_slice(b"null");
        } else {
            out.push(b'{');
            let mut first = true;
            for k in 0..self.qidx.len() {
                if !self.first_of_key(k) {
                    continue;
                }
                sep(out, &mut first);
                json::bytes_string(out, self.qkey(k));
                out.push(b':');
                let last = (k..self.qidx.len())
                    .rev()
                    .find(|&j| self.qkey(j) == self.qkey(k))
                    .unwrap_or(k);
                json::bytes_string(out, self.qval(last));
            }
            out.push(b'}');
        }
        out.extend_from_slice(b",\"multiValueQueryStringParameters\":");
        if self.qidx.is_empty() {
            out.extend_from_slice(b"null");
        } else {
            out.push(b'{');
            let mut first = true;
            for k in 0..self.qidx.len() {
                if !self.first_of_key(k) {
                    continue;
                }
                sep(out, &mut first);
                json::bytes_string(out, self.qkey(k));
                out.extend_from_slice(b":[");
                let mut first_v = true;
                for j in k..self.qidx.len() {
                    if self.qkey(j) == self.qkey(k) {
                        sep(out, &mut first_v);
                        json::bytes_string(out, self.qval(j));
                    }
                }
                out.push(b']');
            }
            out.push(b'}');
        }

        // REST hands path parameters over undecoded, like `path`.
        out.extend_from_slice(b",\"pathParameters\":");
        if req.path_params.is_empty() {
            out.extend_from_slice(b"null");
        } else {
            out.push(b'{');
            let mut first = true;
            for (k, v) in req.path_params {
                sep(out, &mut first);
                json::key(out, k);
                json::string(out, v);
            }
            out.push(b'}');
        }
        out.extend_from_slice(b",\"stageVariables\":null");

        out.extend_from_slice(b",\"requestContext\":{\"accountId\":");
        json::string(out, &api.account_id);
        out.extend_from_slice(b",\"apiId\":");
        json::string(out, &api.api_id);
        out.extend_from_slice(b",\"resourceId\":\"");
        resource_id(out, req.resource);
        out.extend_from_slice(b"\",\"resourcePath\":");
        json::string(out, req.resource);
        out.extend_from_slice(b",\"httpMethod\":");
        json::string(out, req.method);
        out.extend_from_slice(b",\"path\":\"");
        if !req.stage.is_empty() && req.stage != "$default" {
            out.push(b'/');
            json::escape_into(out, req.stage);
        }
        json::escape_into(out, req.path);
        out.extend_from_slice(b"\",\"stage\":");
        json::string(out, req.stage);
        out.extend_from_slice(b",\"requestId\":");
        json::string(out, req.request_id);
        out.extend_from_slice(b",\"extendedRequestId\":");
        json::string(out, req.request_id);
        out.extend_from_slice(b",\"requestTime\":\"");
        time::clf(out, req.request_time_ms);
        out.extend_from_slice(b"\",\"requestTimeEpoch\":");
        json::uint(out, req.request_time_ms);
        out.extend_from_slice(b",\"protocol\":");
        json::string(out, req.protocol);
        out.extend_from_slice(b",\"domainName\":");
        json::string(out, req.domain_name);
        out.extend_from_slice(b",\"domainPrefix\":");
        json::string(out, domain_prefix(req.domain_name));
        out.extend_from_slice(
            b",\"identity\":{\"accessKey\":null,\"accountId\":null,\"apiKey\":null,\"apiKeyId\":null,\
\"caller\":null,\"cognitoAuthenticationProvider\":null,\"cognitoAuthenticationType\":null,\
\"cognitoIdentityId\":null,\"cognitoIdentityPoolId\":null,\"principalOrgId\":null,\"sourceIp\":",
        );
        json::string(out, req.source_ip);
        out.extend_from_slice(b",\"user\":null,\"userAgent\":");
        match req.user_agent {
            Some(ua) => json::string(out, ua),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"userArn\":null,\"clientCert\":null},\"authorizer\":");
        match req.authorizer {
            // The shape AWS documents for an API without an authorizer.
            Authorizer::None => out.extend_from_slice(b"{\"claims\":null,\"scopes\":null}"),
            Authorizer::Cognito { claims, username } => {
                out.extend_from_slice(b"{\"claims\":");
                claims_as_strings(out, claims, Format::V1);
                // The original ESB's functions read the username here as well.
                out.extend_from_slice(b",\"cognito:username\":");
                json::string(out, username);
                out.push(b'}');
            }
            Authorizer::Lambda {
                principal_id,
                context,
                integration_latency_ms,
            } => {
                out.extend_from_slice(b"{\"principalId\":");
                json::string(out, principal_id);
                for (k, v) in context {
                    if k == "principalId" || k == "integrationLatency" {
                        continue;
                    }
                    out.push(b',');
                    json::key(out, k);
                    json::value(out, v);
                }
                out.extend_from_slice(b",\"integrationLatency\":");
                json::uint(out, integration_latency_ms);
                out.push(b'}');
            }
        }
        out.push(b'}');

        self.body(out, req, api, true);
        out.push(b'}');
    }

    /// Appends an HTTP API (payload format 2.0) event for `req` to `out`.
    pub fn write_v2<H: HeaderPair>(
        &mut self,
        req: &RequestView<'_, H>,
        api: &ApiContext,
        out: &mut Vec<u8>,
    ) {
        self.classify(req.headers, Format::V2);
        self.parse_query(req.query);

        out.extend_from_slice(b"{\"version\":\"2.0\",\"routeKey\":\"");
        route_key(out, req);
        out.extend_from_slice(b"\",\"rawPath\":");
        json::string(out, req.path);
        out.extend_from_slice(b",\"rawQueryString\":");
        json::string(out, req.query);

        // cookies: every `name=value` of every Cookie header, in order; omitted when none.
        let mut first = true;
        for (i, h) in req.headers.iter().enumerate() {
            if self.class[i] != COOKIE {
                continue;
            }
            for c in h.value().split(|&b| b == b';') {
                let c = trim(c);
                if c.is_empty() {
                    continue;
                }
                if first {
                    out.extend_from_slice(b",\"cookies\":[");
                    first = false;
                } else {
                    out.push(b',');
                }
                json::bytes_string(out, c);
            }
        }
        if !first {
            out.push(b']');
        }

        // headers: lower-case names, duplicates joined with commas.
        out.extend_from_slice(b",\"headers\":{");
        let mut first = true;
        self.each_header_name(req.headers, |i, name| {
            sep(out, &mut first);
            out.push(b'"');
            lower_escape(out, name);
            out.extend_from_slice(b"\":\"");
            let mut first_v = true;
            for j in i..req.headers.len() {
                if self.class[j] == KEEP && req.headers[j].name().eq_ignore_ascii_case(name) {
                    if !first_v {
                        out.push(b',');
                    }
                    first_v = false;
                    json::bytes_escape_into(out, req.headers[j].value());
                }
            }
            out.push(b'"');
        });
        forwarded_headers(out, &mut first, req, Format::V2, false);
        out.push(b'}');

        if !self.qidx.is_empty() {
            out.extend_from_slice(b",\"queryStringParameters\":{");
            let mut first = true;
            for k in 0..self.qidx.len() {
                if !self.first_of_key(k) {
                    continue;
                }
                sep(out, &mut first);
                json::bytes_string(out, self.qkey(k));
                out.extend_from_slice(b":\"");
                let mut first_v = true;
                for j in k..self.qidx.len() {
                    if self.qkey(j) == self.qkey(k) {
                        if !first_v {
                            out.push(b',');
                        }
                        first_v = false;
                        json::bytes_escape_into(out, self.qval(j));
                    }
                }
                out.push(b'"');
            }
            out.push(b'}');
        }

        // HTTP APIs hand path parameters over percent-decoded.
        if !req.path_params.is_empty() {
            out.extend_from_slice(b",\"pathParameters\":{");
            let mut first = true;
            for (k, v) in req.path_params {
                sep(out, &mut first);
                json::key(out, k);
                self.pbuf.clear();
                self.pbuf.extend(percent_decode(v.as_bytes()));
                json::bytes_string(out, &self.pbuf);
            }
            out.push(b'}');
        }

        out.extend_from_slice(b",\"requestContext\":{\"accountId\":");
        json::string(out, &api.account_id);
        out.extend_from_slice(b",\"apiId\":");
        json::string(out, &api.api_id);
        match req.authorizer {
            Authorizer::None => {}
            Authorizer::Cognito { claims, .. } => {
                out.extend_from_slice(b",\"authorizer\":{\"jwt\":{\"claims\":");
                claims_as_strings(out, claims, Format::V2);
                out.extend_from_slice(b",\"scopes\":");
                match claims.get("scope").and_then(|s| s.as_str()) {
                    Some(scope) => {
                        out.push(b'[');
                        let mut first = true;
                        for s in scope.split_ascii_whitespace() {
                            sep(out, &mut first);
                            json::string(out, s);
                        }
                        out.push(b']');
                    }
                    None => out.extend_from_slice(b"null"),
                }
                out.extend_from_slice(b"}}");
            }
            Authorizer::Lambda { context, .. } => {
                out.extend_from_slice(b",\"authorizer\":{\"lambda\":{");
                let mut first = true;
                for (k, v) in context {
                    sep(out, &mut first);
                    json::key(out, k);
                    json::value(out, v);
                }
                out.extend_from_slice(b"}}");
            }
        }
        out.extend_from_slice(b",\"domainName\":");
        json::string(out, req.domain_name);
        out.extend_from_slice(b",\"domainPrefix\":");
        json::string(out, domain_prefix(req.domain_name));
        out.extend_from_slice(b",\"http\":{\"method\":");
        json::string(out, req.method);
        out.extend_from_slice(b",\"path\":");
        json::string(out, req.path);
        out.extend_from_slice(b",\"protocol\":");
        json::string(out, req.protocol);
        out.extend_from_slice(b",\"sourceIp\":");
        json::string(out, req.source_ip);
        out.extend_from_slice(b",\"userAgent\":");
        json::string(out, req.user_agent.unwrap_or(""));
        out.extend_from_slice(b"},\"requestId\":");
        json::string(out, req.request_id);
        out.extend_from_slice(b",\"routeKey\":\"");
        route_key(out, req);
        out.extend_from_slice(b"\",\"stage\":");
        json::string(out, req.stage);
        out.extend_from_slice(b",\"time\":\"");
        time::clf(out, req.request_time_ms);
        out.extend_from_slice(b"\",\"timeEpoch\":");
        json::uint(out, req.request_time_ms);
        out.push(b'}');

        self.body(out, req, api, false);
        out.push(b'}');
    }

    fn classify<H: HeaderPair>(&mut self, headers: &[H], format: Format) {
        self.class.clear();
        // Where the Connection headers are (almost always none or one), so checking each header
        // for nomination does not rescan the whole list.
        let mut conn = [0usize; 4];
        let mut n_conn = 0;
        let mut many_conn = false;
        for (i, h) in headers.iter().enumerate() {
            if h.name().eq_ignore_ascii_case(b"connection") {
                if n_conn < conn.len() {
                    conn[n_conn] = i;
                    n_conn += 1;
                } else {
                    many_conn = true;
                }
            }
        }
        let connection = || {
            let few = conn[..n_conn].iter().map(|&i| &headers[i]);
            let rest = headers
                .iter()
                .filter(move |h| many_conn && h.name().eq_ignore_ascii_case(b"connection"));
            few.chain(rest)
        };
        let has_connection = n_conn > 0;
        for h in headers {
            let n = h.name();
            let c = if is_one_of(n, &HOP_BY_HOP)
                || is_proxy_header(n)
                || is_one_of(n, &GATEWAY_OWNED)
                || (has_connection && nominated(connection(), n))
                || (format == Format::V1 && n.eq_ignore_ascii_case(b"content-length"))
            {
                DROP
            } else if format == Format::V2 && n.eq_ignore_ascii_case(b"cookie") {
                COOKIE
            } else {
                KEEP
            };
            self.class.push(c);
        }
    }

    /// Calls `f(i, name)` once per kept header name (case-insensitively), at its first occurrence.
    fn each_header_name<H: HeaderPair>(&self, headers: &[H], mut f: impl FnMut(usize, &[u8])) {
        for (i, h) in headers.iter().enumerate() {
            if self.class[i] != KEEP {
                continue;
            }
            let name = h.name();
            let seen = headers[..i]
                .iter()
                .enumerate()
                .any(|(j, o)| self.class[j] == KEEP && o.name().eq_ignore_ascii_case(name));
            if !seen {
                f(i, name);
            }
        }
    }

    fn parse_query(&mut self, raw: &str) {
        self.qbuf.clear();
        self.qidx.clear();
        for pair in raw.as_bytes().split(|&b| b == b'&') {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &b""[..]),
            };
            let ks = self.qbuf.len() as u32;
            form_decode_into(&mut self.qbuf, k);
            let ke = self.qbuf.len() as u32;
            form_decode_into(&mut self.qbuf, v);
            self.qidx.push((ks, ke, self.qbuf.len() as u32));
        }
    }

    fn qkey(&self, k: usize) -> &[u8] {
        let (s, e, _) = self.qidx[k];
        &self.qbuf[s as usize..e as usize]
    }

    fn qval(&self, k: usize) -> &[u8] {
        let (_, s, e) = self.qidx[k];
        &self.qbuf[s as usize..e as usize]
    }

    fn first_of_key(&self, k: usize) -> bool {
        !(0..k).any(|j| self.qkey(j) == self.qkey(k))
    }

    fn body<H: HeaderPair>(
        &self,
        out: &mut Vec<u8>,
        req: &RequestView<'_, H>,
        api: &ApiContext,
        v1: bool,
    ) {
        if req.body.is_empty() {
            if v1 {
                out.extend_from_slice(b",\"body\":null");
            }
            out.extend_from_slice(b",\"isBase64Encoded\":false");
            return;
        }
        let content_type = req
            .headers
            .iter()
            .find(|h| h.name().eq_ignore_ascii_case(b"content-type"))
            .map(|h| h.value())
            .unwrap_or(b"");
        let text = match std::str::from_utf8(req.body) {
            Ok(s) if !is_binary_media_type(content_type, &api.binary_media_types) => Some(s),
            _ => None,
        };
        out.extend_from_slice(b",\"body\":\"");
        match text {
            Some(s) => {
                json::escape_into(out, s);
                out.extend_from_slice(b"\",\"isBase64Encoded\":false");
            }
            None => {
                let start = out.len();
                let n = base64::encoded_len(req.body.len(), true).unwrap_or(0);
                out.resize(start + n, 0);
                let written = base64::engine::general_purpose::STANDARD
                    .encode_slice(req.body, &mut out[start..])
                    .unwrap_or(0);
                out.truncate(start + written);
                out.extend_from_slice(b"\",\"isBase64Encoded\":true");
            }
        }
    }
}

fn sep(out: &mut Vec<u8>, first: &mut bool) {
    if *first {
        *first = false;
    } else {
        out.push(b',');
    }
}

/// v1 keeps the client's spelling except for the two names AWS Title-Cases.
fn v1_header_name(out: &mut Vec<u8>, name: &[u8]) {
    if name.eq_ignore_ascii_case(b"authorization") {
        out.extend_from_slice(b"\"Authorization\"");
    } else if name.eq_ignore_ascii_case(b"user-agent") {
        out.extend_from_slice(b"\"User-Agent\"");
    } else {
        json::bytes_string(out, name);
    }
}

fn lower_escape(out: &mut Vec<u8>, name: &[u8]) {
    let start = out.len();
    json::bytes_escape_into(out, name);
    out[start..].make_ascii_lowercase();
}

/// The gateway's own `X-Forwarded-*` headers, appended after the client's (which were dropped).
fn forwarded_headers<H: HeaderPair>(
    out: &mut Vec<u8>,
    first: &mut bool,
    req: &RequestView<'_, H>,
    format: Format,
    multi: bool,
) {
    let names: [&str; 3] = match format {
        Format::V1 => ["X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto"],
        Format::V2 => ["x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"],
    };
    let mut port = itoa::Buffer::new();
    let values = [req.source_ip, port.format(req.port), req.scheme];
    for (n, v) in names.iter().zip(values) {
        sep(out, first);
        json::key(out, n);
        if multi {
            out.push(b'[');
        }
        json::string(out, v);
        if multi {
            out.push(b']');
        }
    }
}

fn route_key<H: HeaderPair>(out: &mut Vec<u8>, req: &RequestView<'_, H>) {
    if req.resource == "$default" {
        out.extend_from_slice(b"$default");
    } else {
        json::escape_into(out, req.route_method);
        out.push(b' ');
        json::escape_into(out, req.resource);
    }
}

fn domain_prefix(domain: &str) -> &str {
    domain.split('.').next().unwrap_or("")
}

/// A stable 6-character id per resource template (AWS's `resourceId` is an opaque short id).
fn resource_id(out: &mut Vec<u8>, resource: &str) {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in resource.as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    for _ in 0..6 {
        out.push(ALPHABET[(h % 36) as usize]);
        h /= 36;
    }
}

/// Claims as API Gateway shows them to functions: every value a string. REST renders `exp` and
/// `iat` as Java dates; arrays become `[a b]` (Go's `%v`), as both APIs do.
fn claims_as_strings(
    out: &mut Vec<u8>,
    claims: &serde_json::Map<String, serde_json::Value>,
    format: Format,
) {
    use serde_json::Value;
    out.push(b'{');
    let mut first = true;
    for (k, v) in claims {
        sep(out, &mut first);
        json::key(out, k);
        match v {
            Value::String(s) => json::string(out, s),
            Value::Number(n) if format == Format::V1 && (k == "exp" || k == "iat") => {
                match n.as_i64() {
                    Some(secs) => {
                        out.push(b'"');
                        time::java_date(out, secs);
                        out.push(b'"');
                    }
                    None => {
                        out.push(b'"');
                        json::value(out, v);
                        out.push(b'"');
                    }
                }
            }
            Value::Array(items) => {
                out.push(b'"');
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    match item {
                        Value::String(s) => json::escape_into(out, s),
                        other => plain_escaped(out, other),
                    }
                }
                out.push(b']');
                out.push(b'"');
            }
            other => {
                out.push(b'"');
                plain_escaped(out, other);
                out.push(b'"');
            }
        }
    }
    out.push(b'}');
}

/// A non-string JSON value's text, escaped for use inside a JSON string.
fn plain_escaped(out: &mut Vec<u8>, v: &serde_json::Value) {
    let text = v.to_string();
    json::escape_into(out, &text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let check = |raw: &str, want: &str| {
            let mut out = Vec::new();
            form_decode_into(&mut out, raw.as_bytes());
            assert_eq!(String::from_utf8_lossy(&out), want, "{raw}");
        };
        check("a+b", "a b");
        check("a%20b%2Bc", "a b+c");
        check("%", "%");
        check("%4", "%4");
        check("%zz", "%zz");
        check("100%", "100%");
        check("%E6%97%A5", "日");
    }

    #[test]
    fn binary_media_types() {
        let pats = vec![
            "image/*".to_string(),
            "application/octet-stream".to_string(),
        ];
        assert!(is_binary_media_type(b"image/png", &pats));
        assert!(is_binary_media_type(
            b"Application/Octet-Stream; x=1",
            &pats
        ));
        assert!(!is_binary_media_type(b"application/json", &pats));
        assert!(is_binary_media_type(b"text/plain", &["*/*".to_string()]));
        assert!(!is_binary_media_type(b"", &pats));
    }

    #[test]
    fn resource_ids_are_stable_and_short() {
        let mut a = Vec::new();
        resource_id(&mut a, "/users/{id}");
        let mut b = Vec::new();
        resource_id(&mut b, "/users/{id}");
        assert_eq!(a, b);
        assert_eq!(a.len(), 6);
    }
}
