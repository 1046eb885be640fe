//! Request heads from clients: httparse does the tokenising, this file adds the rules httparse
//! leaves to its caller (framing, Host, targets, line endings, limits).
//!
//! Hot path: runs once per request over a ~0.5–2 KiB head; no allocation, a handful of passes.

use httparse::Header;

use crate::fields::{
    TransferCoding, is_tchar, is_token, is_valid_host, list_items, parse_content_length,
    request_transfer_coding, trim_ows,
};
use crate::{BodyFraming, Connection, HttpError, Limits, UnderscoreHeaders, Version};

/// The request methods esb serves: the ones API Gateway routes (`ANY` expands to these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
}

impl Method {
    /// The method as written on the wire, e.g. `"GET"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }

    /// Methods are case-sensitive (RFC 9110 §9.1): `get` is an unknown method, not `GET`.
    fn from_token(token: &str) -> Result<Method, HttpError> {
        Ok(match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            // Known methods that would turn the gateway into a tunnel or reflect credentials.
            "CONNECT" | "TRACE" => return Err(HttpError::MethodNotAllowed),
            _ => return Err(HttpError::NotImplemented("unknown method")),
        })
    }
}

/// A validated request head. Everything borrows from the caller's read buffer (`'b`) and header
/// scratch (`'h`); nothing is copied.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'b, 'h> {
    /// The request method.
    pub method: Method,
    /// The request target in origin-form (`/path?query`), undecoded. For an accepted
    /// absolute-form request this is the origin part of the URI (`/` when it had no path).
    pub target: &'b str,
    /// `target` up to the first `?`, undecoded.
    pub path: &'b str,
    /// `target` after the first `?`, undecoded; `None` when there is no `?`.
    pub query: Option<&'b str>,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: Version,
    /// Every header field in arrival order, names as sent, values with surrounding whitespace
    /// removed. Values are valid UTF-8. Hop-by-hop fields and the ones named in `Connection`
    /// are still here: the event builder drops them ([`crate::is_hop_by_hop`],
    /// [`RequestHead::is_nominated`]).
    pub headers: &'h [Header<'b>],
    /// Bytes taken by the head, final empty line included: the body (or the next pipelined
    /// request) starts at `buf[head_len..]`.
    pub head_len: usize,
    /// How the body is delimited: never [`BodyFraming::UntilClose`] for a request.
    pub framing: BodyFraming,
    /// Whether the connection may carry another request after this one's response (version
    /// default, then `Connection: close` / `keep-alive`).
    pub keep_alive: bool,
    /// `Expect: 100-continue` on HTTP/1.1: send [`crate::CONTINUE_100`] before reading the body,
    /// but only once the request has been authorised (checklist A12), and only when `framing`
    /// announces a body (the flag is reported whatever the framing).
    pub expect_continue: bool,
    /// The `Host` value (validated; for absolute-form the URI's authority, which must match it).
    /// `None` only on HTTP/1.0 without a Host.
    pub host: Option<&'b str>,
}

impl<'b, 'h> RequestHead<'b, 'h> {
    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// The options listed in every `Connection` field, in order, as sent (e.g. `close`,
    /// `keep-alive`, `Upgrade`, `X-Api-Key`). Each names a hop-by-hop header that must not be
    /// forwarded; dropping them must only ever remove client-sent headers, never ones the
    /// gateway adds (Pingora CVE-2026-105299).
    pub fn connection_options(&self) -> ConnectionOptions<'b, 'h> {
        ConnectionOptions {
            headers: self.headers.iter(),
            rest: &[],
        }
    }

    /// Whether `name` is nominated in `Connection` (ASCII case-insensitive).
    pub fn is_nominated(&self, name: &str) -> bool {
        self.connection_options()
            .any(|o| o.eq_ignore_ascii_case(name))
    }

    /// The [`Connection`] to answer this request with when nothing else forces a close.
    pub fn response_connection(&self) -> Connection {
        match (self.keep_alive, self.version) {
            (false, _) => Connection::Close,
            (true, Version::Http11) => Connection::KeepAlive,
            (true, Version::Http10) => Connection::KeepAliveHttp10,
        }
    }
}

/// Iterator over the options of a request's `Connection` fields; see
/// [`RequestHead::connection_options`].
#[derive(Debug, Clone)]
pub struct ConnectionOptions<'b, 'h> {
    headers: std::slice::Iter<'h, Header<'b>>,
    rest: &'b [u8],
}

impl<'b> Iterator for ConnectionOptions<'b, '_> {
    type Item = &'b str;

    fn next(&mut self) -> Option<&'b str> {
        loop {
            if self.rest.is_empty() {
                let field = self
                    .headers
                    .find(|h| h.name.eq_ignore_ascii_case("connection"))?;
                self.rest = field.value;
                continue;
            }
            let (item, rest) = match self.rest.iter().position(|&b| b == b',') {
                Some(comma) => (&self.rest[..comma], &self.rest[comma + 1..]),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            if let Ok(option) = std::str::from_utf8(trim_ows(item))
                && !option.is_empty()
            {
                return Some(option);
            }
        }
    }
}

/// Splits an origin-form target into path and query at the first `?`, without decoding.
///
/// `"/a/b?x=1&y"` → `("/a/b", Some("x=1&y"))`; `"/a?"` → `("/a", Some(""))`; `"/a"` → `("/a", None)`.
pub fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

/// A cheap check the IO side can run after each read, before re-parsing: `false` means the head
/// cannot be complete yet, looking only at the bytes from `searched_from` on (pass the buffer
/// length before the read; the check backs up 3 bytes to catch a terminator split across reads).
///
/// Re-parsing after every read costs O(n²) on a head that trickles in byte by byte (slowloris);
/// with this check a head is parsed once it may be complete, or when `buf.len()` passes
/// `limits.max_head_bytes` (to get the 431). Errors inside an unterminated head then surface as
/// 431 at the limit instead of an earlier 400; both close.
pub fn may_contain_full_head(buf: &[u8], searched_from: usize) -> bool {
    let start = searched_from.saturating_sub(3).min(buf.len());
    buf[start..]
        .windows(2)
        .any(|w| w[0] == b'\n' && (w[1] == b'\n' || w[1] == b'\r'))
}

/// Parses and validates a request head at the start of `buf`.
///
/// Returns `Ok(None)` while the head is incomplete (read more and call again with the grown
/// buffer), `Ok(Some(head))` once it is complete and valid (the body starts at `head.head_len`),
/// and `Err` for anything esb refuses; every error closes the connection after the answer.
/// `headers_scratch` receives the header fields (`[EMPTY_HEADER; N]`, N ≥ `limits.max_headers`).
///
/// Feeding the same bytes in any split gives the same result as one read (checklist A24): the
/// limits look at the bytes, not at how they arrived.
///
/// Rules beyond httparse's tokenising (checklist §7 A), and the choices where RFC 9112 allows
/// several:
/// - Line endings: CRLF only; a bare LF (RFC 9112 §2.2 lets servers accept it) or bare CR → 400.
/// - Request line: method `GET HEAD POST PUT PATCH DELETE OPTIONS`; `CONNECT`/`TRACE` → 405;
///   any other token (methods are case-sensitive) → 501. Version `HTTP/1.0` or `HTTP/1.1`;
///   another `HTTP/d.d` → 505, anything else (incl. `HTTP/1.32`) → 400; the HTTP/2 preface
///   (`PRI * HTTP/2.0`) → 400. Target longer than `max_uri_bytes` → 414.
/// - Target: origin-form (`/...`), printable ASCII only, no `#`. Asterisk-form (`OPTIONS *`,
///   `GET *`) → 400: nothing behind esb can answer for "the server as a whole". Absolute-form
///   (`http[s]://authority/path`, RFC 9112 §3.2.2 says servers MUST accept it) is accepted
///   only when its authority is a valid host without userinfo that equals the Host header
///   (case-insensitive), so the URI and Host can never disagree; otherwise 400.
/// - Header fields: no whitespace before the colon, no obs-fold, no control bytes (httparse);
///   values must be valid UTF-8 (lone obs-text bytes such as `\xa0` or `\x85` → 400); names with
///   `_` → 400 unless [`UnderscoreHeaders::Allow`]; more than `max_headers` → 431; head
///   over `max_head_bytes` → 431.
/// - Host: required on HTTP/1.1; exactly one; a valid `host[:port]` (no userinfo, path, list or
///   empty value) → else 400.
/// - Content-Length: digits only, no leading zero, no overflow. A repeated field or a list is
///   400 even when the values agree (`Content-Length: 5, 5` and two `Content-Length: 5` fields):
///   RFC 9112 §6.3 allows merging them, but nothing legitimate sends them. The value must be
///   written `Content-Length: N` or `Content-Length:N` (at most one SP/HTAB after the colon, none
///   before the CRLF): extra whitespace is how ` 5`-style smuggling probes are shaped.
///   Larger than `max_body_bytes` → 413 before any body byte is read. `0` → no body.
/// - Transfer-Encoding: only on HTTP/1.1 (else 400); never with Content-Length (400, RFC 9112
///   §6.1 leaves "reject" open and it is the only answer that cannot desync); exactly one field
///   whose value is `chunked`, case-insensitive (transfer-coding names are case-insensitive per
///   RFC 9112 §7); lists (`gzip, chunked`, `chunked, chunked`), empty members and parameters
///   → 400; a single other coding (`gzip`, `identity`) → 501. Same whitespace rule as CL.
/// - Connection: a list of tokens (else 400); `close` / `keep-alive` set [`RequestHead::keep_alive`];
///   nominating `Host`, `Content-Length` or `Transfer-Encoding` → 400 (dropping them while
///   forwarding would change the message's meaning).
/// - `Upgrade` is never acted on (no tunnels); `Expect: 100-continue` sets `expect_continue` on
///   HTTP/1.1 and is ignored on 1.0 (RFC 9110 §10.1.1); other expectations are ignored.
pub fn parse_request_head<'b, 'h>(
    buf: &'b [u8],
    limits: &Limits,
    headers_scratch: &'h mut [Header<'b>],
) -> Result<Option<RequestHead<'b, 'h>>, HttpError> {
    // Never let httparse look past the limit: a 1 MiB unterminated head costs one 32 KiB scan.
    let window = &buf[..buf.len().min(limits.max_head_bytes)];
    let over_limit = buf.len() > limits.max_head_bytes;
    let cap = headers_scratch.len().min(limits.max_headers);
    let mut req = httparse::Request::new(&mut headers_scratch[..cap]);
    match req.parse(window) {
        Ok(httparse::Status::Complete(head_len)) => {
            let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version)
            else {
                return Err(HttpError::BadRequest("invalid request line"));
            };
            validate(buf, head_len, method, target, version, req.headers, limits).map(Some)
        }
        Ok(httparse::Status::Partial) => {
            if target_run(window).is_some_and(|(_, len)| len > limits.max_uri_bytes) {
                Err(HttpError::UriTooLong)
            } else if over_limit {
                Err(HttpError::HeadTooLarge)
            } else {
                Ok(None)
            }
        }
        Err(e) => {
            if target_run(window).is_some_and(|(_, len)| len > limits.max_uri_bytes) {
                return Err(HttpError::UriTooLong);
            }
            match e {
                httparse::Error::TooManyHeaders => Err(HttpError::TooManyHeaders),
                httparse::Error::Version => version_error(window, over_limit),
                httparse::Error::HeaderName => Err(HttpError::BadRequest("invalid header name")),
                httparse::Error::HeaderValue => {
                    Err(HttpError::BadRequest("invalid byte in header value"))
                }
                httparse::Error::NewLine => Err(HttpError::BadRequest("invalid line ending")),
                httparse::Error::Token | httparse::Error::Status => {
                    Err(HttpError::BadRequest("invalid request line"))
                }
            }
        }
    }
}

/// Everything httparse accepted but esb still has to check, in an order that makes the answer
/// independent of how the bytes were split into reads (the partial path checks the target
/// length first too).
fn validate<'b, 'h>(
    buf: &'b [u8],
    head_len: usize,
    method: &'b str,
    target: &'b str,
    version: u8,
    headers: &'h [Header<'b>],
    limits: &Limits,
) -> Result<RequestHead<'b, 'h>, HttpError> {
    if target.len() > limits.max_uri_bytes {
        return Err(HttpError::UriTooLong);
    }
    let scan = scan_head(&buf[..head_len]);
    if scan.bare_cr_or_lf {
        return Err(HttpError::BadRequest("bare CR or LF"));
    }
    let version = if version == 1 {
        Version::Http11
    } else {
        Version::Http10
    };
    let method = Method::from_token(method)?;
    // A branch-free fold: the target is often the longest single token of the head.
    let target_ok = target
        .bytes()
        .fold(true, |ok, b| ok & (b'!'..=b'~').contains(&b) & (b != b'#'));
    if !target_ok {
        return Err(HttpError::BadRequest("invalid byte in request target"));
    }
    let (origin, authority) = target_form(target)?;

    let mut content_length = None;
    let mut transfer_encoding = None;
    let mut host: Option<&'b [u8]> = None;
    let mut close = false;
    let mut keep_alive_option = false;
    let mut expect_continue = false;
    for field in headers {
        let name = field.name.as_bytes();
        let value = field.value;
        if limits.underscore_headers == UnderscoreHeaders::Reject && has_underscore(name) {
            return Err(HttpError::BadRequest("underscore in header name"));
        }
        if scan.non_ascii && std::str::from_utf8(value).is_err() {
            return Err(HttpError::BadRequest("header value is not UTF-8"));
        }
        // Dispatch on length first: most names are none of these and fail one compare.
        match name.len() {
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                if content_length.is_some() {
                    return Err(HttpError::BadRequest("repeated content-length"));
                }
                let n = parse_content_length(value)
                    .ok_or(HttpError::BadRequest("malformed content-length"))?;
                if !framing_value_is_canonical(buf, value) {
                    return Err(HttpError::BadRequest("malformed content-length"));
                }
                content_length = Some(n);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                if transfer_encoding.is_some() {
                    return Err(HttpError::BadRequest("repeated transfer-encoding"));
                }
                if !framing_value_is_canonical(buf, value) {
                    return Err(HttpError::BadRequest("malformed transfer-encoding"));
                }
                transfer_encoding = Some(value);
            }
            4 if name.eq_ignore_ascii_case(b"host") => {
                if host.is_some() {
                    return Err(HttpError::BadRequest("repeated host"));
                }
                if !is_valid_host(value) {
                    return Err(HttpError::BadRequest("invalid host"));
                }
                host = Some(value);
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for option in list_items(value).filter(|o| !o.is_empty()) {
                    if !is_token(option) {
                        return Err(HttpError::BadRequest("malformed connection"));
                    }
                    if option.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if option.eq_ignore_ascii_case(b"keep-alive") {
                        keep_alive_option = true;
                    } else if option.eq_ignore_ascii_case(b"host")
                        || option.eq_ignore_ascii_case(b"content-length")
                        || option.eq_ignore_ascii_case(b"transfer-encoding")
                    {
                        return Err(HttpError::BadRequest(
                            "connection nominates a framing field",
                        ));
                    }
                }
            }
            6 if name.eq_ignore_ascii_case(b"expect") => {
                expect_continue |= value.eq_ignore_ascii_case(b"100-continue");
            }
            _ => {}
        }
    }

    let host = match (host, authority) {
        (None, _) if version == Version::Http11 => {
            return Err(HttpError::BadRequest("missing host"));
        }
        (Some(h), Some(a)) if !h.eq_ignore_ascii_case(a.as_bytes()) => {
            return Err(HttpError::BadRequest(
                "absolute-form target does not match host",
            ));
        }
        (Some(h), _) => {
            Some(std::str::from_utf8(h).map_err(|_| HttpError::BadRequest("invalid host"))?)
        }
        (None, a) => a,
    };

    let framing = match (transfer_encoding, content_length) {
        (Some(_), _) if version == Version::Http10 => {
            return Err(HttpError::BadRequest("transfer-encoding on HTTP/1.0"));
        }
        (Some(_), Some(_)) => {
            return Err(HttpError::BadRequest(
                "content-length with transfer-encoding",
            ));
        }
        (Some(te), None) => match request_transfer_coding(te)? {
            TransferCoding::Chunked => BodyFraming::Chunked,
            TransferCoding::Unsupported => {
                return Err(HttpError::NotImplemented(
                    "transfer coding other than chunked",
                ));
            }
        },
        (None, Some(0)) | (None, None) => BodyFraming::None,
        (None, Some(n)) if n > limits.max_body_bytes => return Err(HttpError::PayloadTooLarge),
        (None, Some(n)) => BodyFraming::Length(n),
    };

    let keep_alive = !close && (version == Version::Http11 || keep_alive_option);
    let (path, query) = split_target(origin);
    Ok(RequestHead {
        method,
        target: origin,
        path,
        query,
        version,
        headers,
        head_len,
        framing,
        keep_alive,
        expect_continue: expect_continue && version == Version::Http11,
        host,
    })
}

/// Returns the origin-form part of `target` and, for absolute-form, its authority.
fn target_form(target: &str) -> Result<(&str, Option<&str>), HttpError> {
    if target.starts_with('/') {
        return Ok((target, None));
    }
    if target == "*" {
        return Err(HttpError::BadRequest("asterisk-form target"));
    }
    let after_scheme = strip_prefix_ignore_case(target, "http://")
        .or_else(|| strip_prefix_ignore_case(target, "https://"))
        .ok_or(HttpError::BadRequest("request target is not origin-form"))?;
    let end = after_scheme.find(['/', '?']).unwrap_or(after_scheme.len());
    let (authority, origin) = after_scheme.split_at(end);
    if !is_valid_host(authority.as_bytes()) {
        return Err(HttpError::BadRequest(
            "invalid authority in absolute-form target",
        ));
    }
    match origin.as_bytes().first() {
        None => Ok(("/", Some(authority))),
        Some(b'/') => Ok((origin, Some(authority))),
        // `http://host?q` has no origin-form spelling that borrows from the buffer; nobody
        // sends it.
        Some(_) => Err(HttpError::BadRequest("absolute-form target without a path")),
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

struct HeadScan {
    bare_cr_or_lf: bool,
    non_ascii: bool,
}

/// One pass over the raw head. httparse ends lines at a bare LF too; esb does not (checklist
/// A14). httparse already rejects a bare CR everywhere; the check covers it anyway because it
/// costs nothing in the same pass. Knowing the head is all ASCII (the usual case) spares a UTF-8
/// check per value.
fn scan_head(head: &[u8]) -> HeadScan {
    let (Some(&first), Some(&last)) = (head.first(), head.last()) else {
        return HeadScan {
            bare_cr_or_lf: false,
            non_ascii: false,
        };
    };
    let pairs = head[..head.len() - 1].iter().zip(&head[1..]);
    // Branch-free folds so the compiler can vectorise the scan.
    let (bad_pair, high) = pairs.fold((false, 0u8), |(bad, high), (&a, &b)| {
        (
            bad | ((b == b'\n') & (a != b'\r')) | ((a == b'\r') & (b != b'\n')),
            high | a,
        )
    });
    HeadScan {
        bare_cr_or_lf: bad_pair || first == b'\n' || last == b'\r',
        non_ascii: (high | last) >= 0x80,
    }
}

/// Names are short; a branch-free fold beats `contains` (a call and a branch per byte).
fn has_underscore(name: &[u8]) -> bool {
    name.iter().fold(false, |seen, &b| seen | (b == b'_'))
}

/// `Content-Length` and `Transfer-Encoding` must sit in their field as `name:` + at most one
/// SP/HTAB + value + CRLF. httparse trims any amount of whitespace, which would hide the
/// ` 5`-style probes of checklist A4/A6 that other parsers read differently.
fn framing_value_is_canonical(buf: &[u8], value: &[u8]) -> bool {
    let Some(start) = (value.as_ptr() as usize).checked_sub(buf.as_ptr() as usize) else {
        return false;
    };
    let end = start + value.len();
    if start == 0 || end > buf.len() {
        return false;
    }
    let before_ok = match buf[start - 1] {
        b':' => true,
        b' ' | b'\t' => start >= 2 && buf[start - 2] == b':',
        _ => false,
    };
    before_ok && buf.get(end) == Some(&b'\r')
}

/// Finds the request target the way httparse reads it: after optional empty lines, a token, one
/// SP, then the run of bytes httparse accepts in a URI. Returns `(start, len)` of that run, so a
/// long target is a 414 whether or not the rest of the line has arrived.
fn target_run(window: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    loop {
        match window.get(i..) {
            Some([b'\r', b'\n', ..]) => i += 2,
            Some([b'\n', ..]) => i += 1,
            _ => break,
        }
    }
    let rest = window.get(i..)?;
    let method_len = rest.iter().take_while(|&&b| is_tchar(b)).count();
    if method_len == 0 || rest.get(method_len) != Some(&b' ') {
        return None;
    }
    let start = i + method_len + 1;
    let len = window
        .get(start..)?
        .iter()
        .take_while(|&&b| (b'!'..=b'~').contains(&b) || b >= 0x80)
        .count();
    Some((start, len))
}

/// httparse reports any version other than exactly `HTTP/1.0` / `HTTP/1.1` as one error, and
/// sometimes before the version has fully arrived; tell 505 (a well-formed `HTTP/d.d`) from 400
/// (anything else), waiting for more bytes while the answer is still open.
fn version_error<'b, 'h>(
    window: &[u8],
    over_limit: bool,
) -> Result<Option<RequestHead<'b, 'h>>, HttpError> {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0";
    if window.starts_with(PREFACE) {
        return Err(HttpError::BadRequest("HTTP/2 preface on an HTTP/1.1 port"));
    }
    let Some((start, len)) = target_run(window) else {
        return Err(HttpError::BadRequest("invalid request line"));
    };
    let version_at = start + len + 1;
    let rest = window.get(version_at..).unwrap_or_default();
    let end = rest.iter().position(|&b| b == b'\r' || b == b'\n');
    let token = &rest[..end.unwrap_or(rest.len())];
    let fits = |t: &[u8]| {
        t.len() <= 8
            && t.iter().enumerate().all(|(i, &b)| match i {
                0..=4 => b == b"HTTP/"[i],
                6 => b == b'.',
                _ => b.is_ascii_digit(),
            })
    };
    match end {
        Some(_) if token.len() == 8 && fits(token) => Err(HttpError::VersionNotSupported),
        None if fits(token) && !over_limit => Ok(None),
        None if fits(token) => Err(HttpError::HeadTooLarge),
        _ => Err(HttpError::BadRequest("invalid http version")),
    }
}

#[cfg(test)]
mod tests;
