//! The client side towards RIE endpoints (plain HTTP/1.1 over per-core keep-alive connections):
//! request heads out, response heads in.
//!
//! Hot path: once per invocation. The peer is AWS's RIE (Go net/http) or esb-rie (hyper), but it
//! runs tenant code, so its answers are parsed as untrusted input: bounded, and any framing
//! ambiguity is a 502 rather than a guess.

use httparse::Header;

use crate::fields::{is_token, is_valid_host, list_items, parse_content_length};
use crate::response::write_fields;
use crate::{BodyFraming, HttpError, Limits, Version, WriteError};

/// Appends an upstream request head to `out`:
/// `<method> <path> HTTP/1.1`, `host`, the caller's headers, `content-length: <body_len>`.
///
/// The connection stays persistent (HTTP/1.1's default). `method` must be a token, `path` an
/// origin-form target of printable ASCII, `host` a valid `host[:port]`; caller headers follow
/// the rules of [`crate::write_response_head`] (framing and connection fields and `host` are
/// dropped, control bytes are an error). On error `out` is left as it was.
pub fn write_request_head<'a>(
    out: &mut Vec<u8>,
    method: &str,
    path: &str,
    host: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    body_len: usize,
) -> Result<(), WriteError> {
    if !is_token(method.as_bytes()) {
        return Err(WriteError::RequestLine("method is not a token"));
    }
    if !path.starts_with('/') || !path.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
        return Err(WriteError::RequestLine(
            "path is not origin-form printable ASCII",
        ));
    }
    if !is_valid_host(host.as_bytes()) {
        return Err(WriteError::RequestLine("invalid host"));
    }
    let start = out.len();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Err(e) = write_fields(out, headers, "host") {
        out.truncate(start);
        return Err(e);
    }
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(itoa::Buffer::new().format(body_len).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    Ok(())
}

/// A parsed upstream response head, borrowing from the read buffer and the header scratch.
#[derive(Debug, Clone, Copy)]
pub struct ResponseHead<'b, 'h> {
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: Version,
    /// The status code (100..=599, never 101).
    pub status: u16,
    /// The reason phrase (empty if it had non-ASCII bytes; esb never forwards it).
    pub reason: &'b str,
    /// Header fields in arrival order, values trimmed.
    pub headers: &'h [Header<'b>],
    /// Bytes taken by the head: the body starts at `buf[head_len..]`.
    pub head_len: usize,
    /// How the body is delimited (RFC 9112 §6.3 for a response to a non-HEAD request).
    pub framing: BodyFraming,
    /// Whether the connection can carry another request after this body.
    pub keep_alive: bool,
}

impl<'b> ResponseHead<'b, '_> {
    /// A 1xx interim response: skip `head_len` bytes and parse the next head.
    pub fn is_interim(&self) -> bool {
        self.status < 200
    }

    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// Parses an upstream response head at the start of `buf`: `Ok(None)` = read more.
///
/// Bounded by `limits.max_head_bytes` and `limits.max_headers`; a `Content-Length` above
/// `limits.max_body_bytes` is refused up front. Lenient where well-behaved servers differ
/// (repeated identical `Content-Length`, case and lists in `Transfer-Encoding` and `Connection`),
/// strict where a guess could desync the pooled connection: `Content-Length` with
/// `Transfer-Encoding`, differing or malformed lengths, and `101 Switching Protocols` (esb never
/// asks for an upgrade) are errors. Every error is [`HttpError::BadGateway`]: answer 502 and
/// discard the connection.
///
/// The request that caused the response must not have been `HEAD` (esb only sends `POST`/`GET`
/// upstream); 1xx, 204 and 304 have no body. A response with neither length nor chunking runs
/// until close and makes the connection unusable.
pub fn parse_response_head<'b, 'h>(
    buf: &'b [u8],
    limits: &Limits,
    headers_scratch: &'h mut [Header<'b>],
) -> Result<Option<ResponseHead<'b, 'h>>, HttpError> {
    let window = &buf[..buf.len().min(limits.max_head_bytes)];
    let cap = headers_scratch.len().min(limits.max_headers);
    let mut resp = httparse::Response::new(&mut headers_scratch[..cap]);
    let head_len = match resp.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > limits.max_head_bytes => {
            return Err(HttpError::BadGateway("response head too large"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::BadGateway("too many response header fields"));
        }
        Err(_) => return Err(HttpError::BadGateway("malformed response head")),
    };
    let (Some(version), Some(status), Some(reason)) = (resp.version, resp.code, resp.reason) else {
        return Err(HttpError::BadGateway("malformed response head"));
    };
    let headers: &'h [Header<'b>] = resp.headers;
    let version = if version == 1 {
        Version::Http11
    } else {
        Version::Http10
    };
    if status == 101 {
        return Err(HttpError::BadGateway("unrequested protocol switch"));
    }
    if !(100..=599).contains(&status) {
        return Err(HttpError::BadGateway("invalid status code"));
    }

    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut chunked_last = false;
    let mut close = false;
    let mut keep_alive_option = false;
    for field in headers {
        let name = field.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = parse_content_length(field.value)
                .ok_or(HttpError::BadGateway("malformed content-length"))?;
            if content_length.is_some_and(|seen| seen != n) {
                return Err(HttpError::BadGateway("conflicting content-length"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            // Across repeated fields the codings concatenate; only the last one frames.
            if let Some(last) = list_items(field.value).rfind(|c| !c.is_empty()) {
                chunked_last = last.eq_ignore_ascii_case(b"chunked");
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for option in list_items(field.value) {
                close |= option.eq_ignore_ascii_case(b"close");
                keep_alive_option |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }

    let framing = if status < 200 || status == 204 || status == 304 {
        BodyFraming::None
    } else if transfer_encoding {
        if content_length.is_some() {
            return Err(HttpError::BadGateway(
                "content-length with transfer-encoding",
            ));
        }
        if chunked_last {
            BodyFraming::Chunked
        } else {
            BodyFraming::UntilClose
        }
    } else {
        match content_length {
            Some(n) if n > limits.max_body_bytes => {
                return Err(HttpError::BadGateway("response body larger than the limit"));
            }
            Some(0) => BodyFraming::None,
            Some(n) => BodyFraming::Length(n),
            None => BodyFraming::UntilClose,
        }
    };
    let keep_alive = framing != BodyFraming::UntilClose
        && !close
        && (version == Version::Http11 || keep_alive_option);
    Ok(Some(ResponseHead {
        version,
        status,
        reason,
        headers,
        head_len,
        framing,
        keep_alive,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EMPTY_HEADER;

    #[derive(Debug, PartialEq)]
    struct Got {
        status: u16,
        framing: BodyFraming,
        keep_alive: bool,
        head_len: usize,
    }

    fn parse(input: &[u8]) -> Result<Option<Got>, HttpError> {
        let mut scratch = [EMPTY_HEADER; 16];
        let limits = Limits {
            max_headers: 16,
            max_head_bytes: 1024,
            max_body_bytes: 1000,
            ..Limits::default()
        };
        parse_response_head(input, &limits, &mut scratch).map(|o| {
            o.map(|h| Got {
                status: h.status,
                framing: h.framing,
                keep_alive: h.keep_alive,
                head_len: h.head_len,
            })
        })
    }

    fn check(input: &str, expected: Result<(u16, BodyFraming, bool), &str>) {
        let got = parse(input.as_bytes());
        match (got, expected) {
            (Ok(Some(g)), Ok((status, framing, keep_alive))) => {
                assert_eq!(
                    (g.status, g.framing, g.keep_alive),
                    (status, framing, keep_alive),
                    "{input:?}"
                );
                assert!(
                    input[..g.head_len].ends_with("\r\n\r\n")
                        || input[..g.head_len].ends_with("\n\n")
                );
            }
            (Err(e), Err(why)) => {
                assert_eq!(e.status(), 502, "{input:?}");
                assert_eq!(e.reason(), why, "{input:?}");
            }
            (got, expected) => panic!("{input:?}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn go_net_http_responses() {
        // Shapes Go's net/http writes for RIE: fixed length, and chunked for streamed bodies.
        check(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Sun, 22 Nov 2026 07:00:00 GMT\r\nContent-Length: 13\r\n\r\n{\"ok\":true}xx",
            Ok((200, BodyFraming::Length(13), true)),
        );
        check(
            "HTTP/1.1 200 OK\r\nLambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\nTrailer: Lambda-Runtime-Function-Error-Type\r\n\r\n",
            Ok((200, BodyFraming::Chunked, true)),
        );
        check(
            "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
            Ok((202, BodyFraming::None, true)),
        );
    }

    #[test]
    fn hyper_responses() {
        check(
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ndate: Sun, 22 Nov 2026 07:00:00 GMT\r\n\r\nok",
            Ok((200, BodyFraming::Length(2), true)),
        );
        check(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            Ok((200, BodyFraming::Chunked, true)),
        );
    }

    #[test]
    fn framing_rules() {
        check(
            "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
            Ok((204, BodyFraming::None, true)),
        );
        check(
            "HTTP/1.1 304 Not Modified\r\n\r\n",
            Ok((304, BodyFraming::None, true)),
        );
        check(
            "HTTP/1.1 100 Continue\r\n\r\n",
            Ok((100, BodyFraming::None, true)),
        );
        check(
            "HTTP/1.1 200 OK\r\n\r\n",
            Ok((200, BodyFraming::UntilClose, false)),
        );
        check(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            Ok((200, BodyFraming::UntilClose, false)),
        );
        check(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, CHUNKED\r\n\r\n",
            Ok((200, BodyFraming::Chunked, true)),
        );
        check(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
            Ok((200, BodyFraming::Length(3), true)),
        );
        check(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n",
            Ok((200, BodyFraming::Length(3), false)),
        );
        check(
            "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n",
            Ok((200, BodyFraming::Length(3), false)),
        );
        check(
            "HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: Keep-Alive\r\n\r\n",
            Ok((200, BodyFraming::Length(3), true)),
        );
        check(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            Err("conflicting content-length"),
        );
        check(
            "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n",
            Err("malformed content-length"),
        );
        check(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            Err("content-length with transfer-encoding"),
        );
        check(
            "HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\n",
            Err("response body larger than the limit"),
        );
        check(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            Err("unrequested protocol switch"),
        );
        check("HTTP/1.1 099 X\r\n\r\n", Err("invalid status code"));
        check("HTTP/1.1 600 X\r\n\r\n", Err("invalid status code"));
        check(
            "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n",
            Err("malformed response head"),
        );
        check("HTTP/2 200\r\n\r\n", Err("malformed response head"));
    }

    #[test]
    fn partial_and_limits() {
        assert_eq!(parse(b"HTTP/1.1 200 OK\r\nContent-Len"), Ok(None));
        assert_eq!(parse(b""), Ok(None));
        let big = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(2000));
        assert_eq!(
            parse(big.as_bytes()),
            Err(HttpError::BadGateway("response head too large"))
        );
        let many: String = (0..17).map(|i| format!("X{i}: a\r\n")).collect();
        let many = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        assert_eq!(
            parse(many.as_bytes()),
            Err(HttpError::BadGateway("too many response header fields"))
        );
    }

    #[test]
    fn request_heads_for_rie() {
        let mut out = Vec::new();
        write_request_head(
            &mut out,
            "POST",
            "/2015-03-31/functions/function/invocations",
            "127.0.0.1:9001",
            [
                ("content-type", &b"application/json"[..]),
                ("Host", b"evil"),
                ("Content-Length", b"1"),
            ],
            42,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /2015-03-31/functions/function/invocations HTTP/1.1\r\nhost: 127.0.0.1:9001\r\ncontent-type: application/json\r\ncontent-length: 42\r\n\r\n"
        );
        let mut out = b"keep".to_vec();
        let none: [(&str, &[u8]); 0] = [];
        assert_eq!(
            write_request_head(&mut out, "PO ST", "/", "h", none, 0),
            Err(WriteError::RequestLine("method is not a token"))
        );
        assert_eq!(
            write_request_head(&mut out, "POST", "x", "h", none, 0),
            Err(WriteError::RequestLine(
                "path is not origin-form printable ASCII"
            ))
        );
        assert_eq!(
            write_request_head(&mut out, "POST", "/a b", "h", none, 0),
            Err(WriteError::RequestLine(
                "path is not origin-form printable ASCII"
            ))
        );
        assert_eq!(
            write_request_head(&mut out, "POST", "/", "h\r\nx", none, 0),
            Err(WriteError::RequestLine("invalid host"))
        );
        assert_eq!(
            write_request_head(&mut out, "POST", "/", "h", [("x", &b"\n"[..])], 0),
            Err(WriteError::HeaderValue(0))
        );
        assert_eq!(out, b"keep");
    }
}
