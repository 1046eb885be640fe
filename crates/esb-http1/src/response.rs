//! Response heads towards clients, written into a reused buffer.
//!
//! Hot path: one call per response; no allocation beyond growing the caller's buffer. Header
//! names and values come from function output (untrusted): they are validated, and framing
//! headers are always esb's own.

use crate::WriteError;
use crate::fields::{is_field_vchar, is_token};

/// The interim response sent before reading a body announced with `Expect: 100-continue`.
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What the response says about the connection after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Keep the connection for another request; HTTP/1.1's default, so nothing is written.
    KeepAlive,
    /// Keep the connection with an HTTP/1.0 client that asked for it: writes
    /// `connection: keep-alive` (without it the client closes).
    KeepAliveHttp10,
    /// Writes `connection: close`; the caller closes after the body.
    Close,
}

/// The standard reason phrase for `status`, or `""` for codes without one here.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Header names a caller may never set: esb computes framing and connection management itself,
/// and a function must not be able to desync the client connection or open a tunnel.
pub(crate) fn is_reserved(name: &str) -> bool {
    const RESERVED: [&str; 8] = [
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "upgrade",
        "te",
        "trailer",
    ];
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name))
}

/// Appends `name: value\r\n` for each caller header except the reserved ones (and `also_drop`),
/// validating both.
pub(crate) fn write_fields<'a>(
    out: &mut Vec<u8>,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    also_drop: &str,
) -> Result<(), WriteError> {
    for (i, (name, value)) in headers.into_iter().enumerate() {
        if !is_token(name.as_bytes()) {
            return Err(WriteError::HeaderName(i));
        }
        if !value.iter().all(|&b| is_field_vchar(b)) {
            return Err(WriteError::HeaderValue(i));
        }
        if is_reserved(name) || name.eq_ignore_ascii_case(also_drop) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    Ok(())
}

/// Appends a response head to `out`: `HTTP/1.1 <status> <reason>`, the caller's headers in order,
/// `content-length: <body_len>`, `connection: close` or `connection: keep-alive` as `connection`
/// says, and the empty line. The body is the caller's to write.
///
/// `reason` of `None` uses [`reason_phrase`]. Caller headers named `content-length`,
/// `transfer-encoding`, `connection`, `keep-alive`, `proxy-connection`, `upgrade`, `te` or
/// `trailer` (any case) are dropped: they are untrusted function output. An invalid name (not a
/// token) or a value with a control byte (CR, LF, NUL, DEL, ...) is an error, and then `out` is
/// left as it was (answer 502 instead).
///
/// `status` must be 200..=599. For 204 and 304 no `content-length` is written and `body_len`
/// must be 0. For a `HEAD` request pass the length the `GET` would have had and send no body.
pub fn write_response_head<'a>(
    out: &mut Vec<u8>,
    status: u16,
    reason: Option<&str>,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    body_len: usize,
    connection: Connection,
) -> Result<(), WriteError> {
    if !(200..=599).contains(&status) {
        return Err(WriteError::Status(status));
    }
    let bodyless = status == 204 || status == 304;
    if bodyless && body_len != 0 {
        return Err(WriteError::BodyNotAllowed(status));
    }
    let reason = reason.unwrap_or_else(|| reason_phrase(status));
    if !reason.bytes().all(is_field_vchar) {
        return Err(WriteError::Reason);
    }
    let start = out.len();
    let mut itoa = itoa::Buffer::new();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa.format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Err(e) = write_fields(out, headers, "") {
        out.truncate(start);
        return Err(e);
    }
    if !bodyless {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa.format(body_len).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match connection {
        Connection::KeepAlive => {}
        Connection::KeepAliveHttp10 => out.extend_from_slice(b"connection: keep-alive\r\n"),
        Connection::Close => out.extend_from_slice(b"connection: close\r\n"),
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(
        status: u16,
        reason: Option<&str>,
        headers: &[(&str, &[u8])],
        body_len: usize,
        connection: Connection,
    ) -> Result<String, WriteError> {
        let mut out = b"prefix|".to_vec();
        let r = write_response_head(
            &mut out,
            status,
            reason,
            headers.iter().copied(),
            body_len,
            connection,
        );
        let text = String::from_utf8(out).unwrap();
        match r {
            Ok(()) => Ok(text.strip_prefix("prefix|").unwrap().to_string()),
            Err(e) => {
                assert_eq!(text, "prefix|", "buffer must be restored on error");
                Err(e)
            }
        }
    }

    #[test]
    fn writes_status_headers_length_and_close() {
        let got = write(
            200,
            None,
            &[("Content-Type", b"application/json"), ("x-a", b"1")],
            13,
            Connection::KeepAlive,
        );
        assert_eq!(
            got.unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-a: 1\r\ncontent-length: 13\r\n\r\n"
        );
        let got = write(404, Some("Nope"), &[], 0, Connection::Close);
        assert_eq!(
            got.unwrap(),
            "HTTP/1.1 404 Nope\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        let got = write(200, None, &[], 2, Connection::KeepAliveHttp10);
        assert_eq!(
            got.unwrap(),
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\n"
        );
        let got = write(299, None, &[], 0, Connection::KeepAlive);
        assert_eq!(got.unwrap(), "HTTP/1.1 299 \r\ncontent-length: 0\r\n\r\n");
    }

    #[test]
    fn caller_framing_headers_are_dropped() {
        let got = write(
            200,
            None,
            &[
                ("Content-Length", b"999"),
                ("transfer-encoding", b"chunked"),
                ("Connection", b"keep-alive"),
                ("Keep-Alive", b"timeout=5"),
                ("Upgrade", b"websocket"),
                ("TE", b"trailers"),
                ("Trailer", b"x"),
                ("Proxy-Connection", b"x"),
                ("set-cookie", b"a=b"),
            ],
            3,
            Connection::KeepAlive,
        );
        assert_eq!(
            got.unwrap(),
            "HTTP/1.1 200 OK\r\nset-cookie: a=b\r\ncontent-length: 3\r\n\r\n"
        );
    }

    #[test]
    fn response_splitting_is_refused() {
        use WriteError::*;
        let h = |name: &'static str, value: &'static [u8]| [("ok", &b"1"[..]), (name, value)];
        assert_eq!(
            write(
                200,
                None,
                &h("x", b"a\r\nSet-Cookie: x"),
                0,
                Connection::KeepAlive
            ),
            Err(HeaderValue(1))
        );
        assert_eq!(
            write(200, None, &h("x", b"a\nb"), 0, Connection::KeepAlive),
            Err(HeaderValue(1))
        );
        assert_eq!(
            write(200, None, &h("x", b"a\0b"), 0, Connection::KeepAlive),
            Err(HeaderValue(1))
        );
        assert_eq!(
            write(200, None, &h("x", b"a\x7fb"), 0, Connection::KeepAlive),
            Err(HeaderValue(1))
        );
        assert_eq!(
            write(200, None, &h("x y", b"1"), 0, Connection::KeepAlive),
            Err(HeaderName(1))
        );
        assert_eq!(
            write(200, None, &h("x:", b"1"), 0, Connection::KeepAlive),
            Err(HeaderName(1))
        );
        assert_eq!(
            write(200, None, &h("", b"1"), 0, Connection::KeepAlive),
            Err(HeaderName(1))
        );
        // Even a reserved name is validated: a malformed one means the producer is broken.
        assert_eq!(
            write(
                200,
                None,
                &h("connection", b"a\rb"),
                0,
                Connection::KeepAlive
            ),
            Err(HeaderValue(1))
        );
        assert_eq!(
            write(200, Some("OK\r\nX: y"), &[], 0, Connection::KeepAlive),
            Err(Reason)
        );
        // UTF-8 values (obs-text on the wire) and tabs are fine.
        assert!(
            write(
                200,
                None,
                &h("x", "caf\u{e9}\tok".as_bytes()),
                0,
                Connection::KeepAlive
            )
            .is_ok()
        );
    }

    #[test]
    fn status_rules() {
        assert_eq!(
            write(100, None, &[], 0, Connection::KeepAlive),
            Err(WriteError::Status(100))
        );
        assert_eq!(
            write(101, None, &[], 0, Connection::KeepAlive),
            Err(WriteError::Status(101))
        );
        assert_eq!(
            write(600, None, &[], 0, Connection::KeepAlive),
            Err(WriteError::Status(600))
        );
        assert_eq!(
            write(204, None, &[], 1, Connection::KeepAlive),
            Err(WriteError::BodyNotAllowed(204))
        );
        assert_eq!(
            write(204, None, &[], 0, Connection::Close).unwrap(),
            "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"
        );
        assert_eq!(
            write(304, None, &[("etag", b"\"x\"")], 0, Connection::KeepAlive).unwrap(),
            "HTTP/1.1 304 Not Modified\r\netag: \"x\"\r\n\r\n"
        );
    }

    #[test]
    fn every_error_status_has_a_reason_phrase() {
        for s in [400, 405, 413, 414, 431, 501, 502, 505] {
            assert!(!reason_phrase(s).is_empty(), "{s}");
        }
        assert_eq!(CONTINUE_100, b"HTTP/1.1 100 Continue\r\n\r\n");
    }
}
