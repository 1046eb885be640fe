//! One invocation of an RIE over plain HTTP/1.1: `POST /2015-03-31/functions/function/invocations`
//! on a fresh connection closed after the answer.
//!
//! A connection per invocation (no keep-alive) is deliberate: async invocations are not latency
//! sensitive, the loopback connect costs microseconds next to a function run, and a fresh
//! connection can never carry a previous invocation's leftovers.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// RIE's own cap on a response (6 MiB + 100) plus room for the head.
const MAX_RESPONSE: usize = 6 * 1024 * 1024 + 100 + 16 * 1024;

/// What the RIE answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// `X-Amz-Function-Error` was present.
    pub function_error: bool,
    pub body: Vec<u8>,
}

/// Why no answer came back. The environment is in an unknown state after any of these.
#[derive(Debug, thiserror::Error)]
pub enum RieError {
    #[error("cannot connect to the environment at {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the environment's connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the environment answered malformed HTTP: {0}")]
    Malformed(&'static str),
    #[error("the environment's answer is larger than {MAX_RESPONSE} bytes")]
    TooLarge,
}

/// Invokes the RIE at `addr` with `payload`, passing the client context and trace id on.
pub async fn invoke(
    addr: SocketAddr,
    payload: &[u8],
    client_context: Option<&str>,
    trace_id: Option<&str>,
) -> Result<Answer, RieError> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|source| RieError::Connect { addr, source })?;
    stream.set_nodelay(true)?;
    let mut req = Vec::with_capacity(256 + payload.len());
    req.extend_from_slice(b"POST /2015-03-31/functions/function/invocations HTTP/1.1\r\nHost: ");
    req.extend_from_slice(addr.to_string().as_bytes());
    req.extend_from_slice(b"\r\nContent-Type: application/json\r\nConnection: close\r\n");
    // Both come from the queue, which got them from validated request headers (no CR/LF).
    for (name, value) in [
        ("X-Amz-Client-Context", client_context),
        ("X-Amzn-Trace-Id", trace_id),
    ] {
        if let Some(v) = value.filter(|v| !v.bytes().any(|b| b == b'\r' || b == b'\n')) {
            req.extend_from_slice(format!("{name}: {v}\r\n").as_bytes());
        }
    }
    req.extend_from_slice(format!("Content-Length: {}\r\n\r\n", payload.len()).as_bytes());
    req.extend_from_slice(payload);
    stream.write_all(&req).await?;

    let mut buf = Vec::with_capacity(4096);
    loop {
        if buf.len() > MAX_RESPONSE {
            return Err(RieError::TooLarge);
        }
        buf.reserve(16 * 1024);
        let n = stream.read_buf(&mut buf).await?;
        if n == 0 {
            break;
        }
        if let Some(done) = complete(&buf)? {
            return Ok(done);
        }
    }
    complete_at_eof(&buf)
}

/// The answer if `buf` holds all of it (by Content-Length or a finished chunked body).
fn complete(buf: &[u8]) -> Result<Option<Answer>, RieError> {
    let Some((status, function_error, framing, head_len)) = parse_head(buf)? else {
        return Ok(None);
    };
    let body = &buf[head_len..];
    let body = match framing {
        Framing::Length(n) if body.len() >= n => body[..n].to_vec(),
        Framing::Chunked => match dechunk(body)? {
            Some(b) => b,
            None => return Ok(None),
        },
        Framing::Length(_) | Framing::UntilClose => return Ok(None),
    };
    Ok(Some(Answer {
        status,
        function_error,
        body,
    }))
}

fn complete_at_eof(buf: &[u8]) -> Result<Answer, RieError> {
    let Some((status, function_error, framing, head_len)) = parse_head(buf)? else {
        return Err(RieError::Malformed("connection closed before a whole head"));
    };
    match framing {
        Framing::UntilClose => Ok(Answer {
            status,
            function_error,
            body: buf[head_len..].to_vec(),
        }),
        _ => Err(RieError::Malformed(
            "connection closed before the whole body",
        )),
    }
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

type Head = (u16, bool, Framing, usize);

fn parse_head(buf: &[u8]) -> Result<Option<Head>, RieError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(RieError::Malformed("bad response head")),
    };
    let status = resp.code.unwrap_or(0);
    let mut function_error = false;
    let mut framing = Framing::UntilClose;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("x-amz-function-error") {
            function_error = true;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if h.value.eq_ignore_ascii_case(b"chunked") {
                framing = Framing::Chunked;
            } else {
                return Err(RieError::Malformed("unsupported transfer-encoding"));
            }
        } else if h.name.eq_ignore_ascii_case("content-length")
            && !matches!(framing, Framing::Chunked)
        {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or(RieError::Malformed("bad content-length"))?;
            framing = Framing::Length(n);
        }
    }
    Ok(Some((status, function_error, framing, head_len)))
}

/// The body of a complete chunked encoding, or `None` if more bytes are needed.
fn dechunk(mut b: &[u8]) -> Result<Option<Vec<u8>>, RieError> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&b[..eol])
            .ok()
            .map(|s| s.split(';').next().unwrap_or("").trim())
            .ok_or(RieError::Malformed("bad chunk size"))?;
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| RieError::Malformed("bad chunk size"))?;
        b = &b[eol + 2..];
        if size == 0 {
            // Trailers are ignored; the final CRLF ends the message.
            return Ok(b.windows(2).any(|w| w == b"\r\n").then_some(out));
        }
        if b.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_chunked_and_until_close_bodies() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(complete(r).unwrap().unwrap().body, b"hello");
        assert!(complete(&r[..r.len() - 1]).unwrap().is_none());

        let c = b"HTTP/1.1 200 OK\r\nX-Amz-Function-Error: Unhandled\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        let a = complete(c).unwrap().unwrap();
        assert_eq!(a.body, b"abcde");
        assert!(a.function_error);
        assert!(complete(&c[..c.len() - 2]).unwrap().is_none());

        let u = b"HTTP/1.1 502 Bad Gateway\r\n\r\npartial";
        assert!(complete(u).unwrap().is_none());
        let a = complete_at_eof(u).unwrap();
        assert_eq!((a.status, a.body.as_slice()), (502, &b"partial"[..]));

        assert!(complete_at_eof(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab").is_err());
        assert!(complete(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn posts_the_payload_and_headers_to_the_invoke_path() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = Vec::new();
            // The client sends the whole request, then waits for the answer.
            while !req.ends_with(b"{\"n\":1}") {
                let mut chunk = [0u8; 1024];
                let n = s.read(&mut chunk).await.unwrap();
                assert!(n > 0);
                req.extend_from_slice(&chunk[..n]);
            }
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .unwrap();
            String::from_utf8(req).unwrap()
        });
        let a = invoke(addr, b"{\"n\":1}", Some("e30="), Some("Root=1-abc"))
            .await
            .unwrap();
        assert_eq!(
            (a.status, a.body.as_slice(), a.function_error),
            (200, &b"ok"[..], false)
        );
        let req = server.await.unwrap();
        assert!(
            req.starts_with("POST /2015-03-31/functions/function/invocations HTTP/1.1\r\n"),
            "{req}"
        );
        assert!(req.contains("X-Amz-Client-Context: e30=\r\n"), "{req}");
        assert!(req.contains("X-Amzn-Trace-Id: Root=1-abc\r\n"), "{req}");
        assert!(req.contains("Content-Length: 7\r\n"), "{req}");
    }
}
