//! Invoking a function: `POST /2015-03-31/functions/function/invocations` to its RIE over a
//! per-core pool of plain-TCP keep-alive connections.
//!
//! Hot path: one call per invocation. Connections are keyed by environment id (never reused by
//! the pool table, so a new environment on an old port never gets a stale connection), kept in a
//! `RefCell` owned by the worker: no locks, nothing shared across cores. The RIE runs tenant
//! code, so its answer is parsed as untrusted input (esb-http1's upstream parser, a 6 MB body
//! cap) and any doubt discards the connection.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use esb_http1::{BodyFraming, ChunkedDecoder, EMPTY_HEADER, HttpError, parse_response_head};
use esb_pool::EnvId;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

/// The Lambda invoke path every RIE serves.
pub const INVOKE_PATH: &str = "/2015-03-31/functions/function/invocations";

/// Lambda's synchronous response payload limit (6 MB); a bigger answer is a 502.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

const UPSTREAM_LIMITS: esb_http1::Limits = esb_http1::Limits {
    max_head_bytes: 32 * 1024,
    max_headers: 64,
    max_body_bytes: MAX_RESPONSE_BYTES as u64,
    max_uri_bytes: 8 * 1024,
    underscore_headers: esb_http1::UnderscoreHeaders::Allow,
};

/// Idle connections kept per environment (a static endpoint serves one request at a time, a
/// managed environment too; a few spare cover quick release/re-acquire).
const MAX_IDLE_PER_ENV: usize = 4;

/// Why an invocation produced no answer. The environment is suspect after any of them.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("connection to the environment failed: {0}")]
    Io(std::io::Error),
    #[error("the environment closed the connection before answering")]
    Closed,
    #[error(transparent)]
    Http(#[from] HttpError),
}

/// What the RIE answered.
#[derive(Debug)]
pub struct Invoked {
    pub status: u16,
    /// `X-Amz-Function-Error` was present (esb-rie and Lambda's Invoke API set it).
    pub function_error: bool,
    /// `X-Amz-Log-Result` (base64), which esb-rie sends only when asked with `X-Amz-Log-Type:
    /// Tail`; so this allocates only then.
    pub log_result: Option<String>,
}

/// The per-core connection pool.
#[derive(Default)]
pub struct Upstream {
    /// Idle connections per environment, with when each was last used (newest last).
    idle: RefCell<HashMap<EnvId, Vec<(TcpStream, Instant)>>>,
}

/// An idle upstream connection unused this long is closed by [`Upstream::sweep`]. Environments
/// that were reaped or died never come back under the same id, so without this their sockets
/// would stay open on every core forever.
pub const IDLE_UPSTREAM: Duration = Duration::from_secs(30);

impl Upstream {
    fn take(&self, env: EnvId) -> Option<TcpStream> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(&env)?;
        let conn = list.pop().map(|(c, _)| c);
        if list.is_empty() {
            idle.remove(&env);
        }
        conn
    }

    fn put(&self, env: EnvId, conn: TcpStream) {
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(env).or_default();
        if list.len() < MAX_IDLE_PER_ENV {
            list.push((conn, Instant::now()));
        }
    }

    /// Drops the idle connections of `env` (after a timeout or a broken answer, its state is
    /// unknown).
    pub fn forget(&self, env: EnvId) {
        self.idle.borrow_mut().remove(&env);
    }

    /// Closes idle connections last used before `cutoff`; returns how many are left.
    pub fn sweep(&self, cutoff: Instant) -> usize {
        let mut idle = self.idle.borrow_mut();
        idle.retain(|_, list| {
            list.retain(|(_, used)| *used >= cutoff);
            !list.is_empty()
        });
        idle.values().map(Vec::len).sum()
    }

    /// POSTs `event` (with `extra` headers, e.g. `X-Amz-Client-Context`) to the environment and
    /// reads the answer's body into `body` (cleared first). `scratch` is a reused buffer for the
    /// request head and the response bytes.
    ///
    /// Not bounded in time: the caller races it with the function's timeout and, on expiry,
    /// drops this future, which drops (closes) the connection in use.
    pub async fn invoke(
        &self,
        env: EnvId,
        addr: SocketAddr,
        event: &[u8],
        extra: &[(&str, &[u8])],
        scratch: &mut Vec<u8>,
        body: &mut Vec<u8>,
    ) -> Result<Invoked, InvokeError> {
        // A pooled connection may have been closed by the RIE since (restart, idle timeout).
        // Only then is a retry safe: nothing came back, and a RIE that closes an idle socket did
        // not start an invocation on it. A fresh connection is never retried.
        if let Some(conn) = self.take(env) {
            match self
                .exchange(env, conn, addr, event, extra, scratch, body)
                .await
            {
                Err(Attempt::Stale) => {}
                Err(Attempt::Failed(e)) => return Err(e),
                Ok(done) => return Ok(done),
            }
        }
        let conn = TcpStream::connect(addr)
            .await
            .map_err(|source| InvokeError::Connect { addr, source })?;
        let _ = conn.set_nodelay(true);
        match self
            .exchange(env, conn, addr, event, extra, scratch, body)
            .await
        {
            Ok(done) => Ok(done),
            Err(Attempt::Stale) => Err(InvokeError::Closed),
            Err(Attempt::Failed(e)) => Err(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self,
        env: EnvId,
        mut conn: TcpStream,
        addr: SocketAddr,
        event: &[u8],
        extra: &[(&str, &[u8])],
        scratch: &mut Vec<u8>,
        body: &mut Vec<u8>,
    ) -> Result<Invoked, Attempt> {
        let mut out = std::mem::take(scratch);
        out.clear();
        let host = addr.to_string();
        esb_http1::write_request_head(
            &mut out,
            "POST",
            INVOKE_PATH,
            &host,
            [("content-type", &b"application/json"[..])]
                .into_iter()
                .chain(extra.iter().copied()),
            event.len(),
        )
        .map_err(|_| {
            Attempt::Failed(InvokeError::Http(HttpError::BadGateway("bad request head")))
        })?;
        out.extend_from_slice(event);
        let (res, out) = conn.write_all(out).await;
        *scratch = out;
        if res.is_err() {
            // Nothing was answered; the write failing means the peer was gone.
            return Err(Attempt::Stale);
        }

        // Read the answer: head first, then the body as its framing says.
        let mut buf = std::mem::take(scratch);
        buf.clear();
        let mut got_any = false;
        let result = loop {
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(16 * 1024);
            }
            let len = buf.len();
            let cap = buf.capacity();
            let (res, slice) = conn
                .read(monoio::buf::IoBufMut::slice_mut(buf, len..cap))
                .await;
            buf = slice.into_inner();
            match res {
                Ok(0) if !got_any => break Err(Attempt::Stale),
                Ok(0) => break Err(Attempt::Failed(InvokeError::Closed)),
                Ok(_) => got_any = true,
                Err(e) if !got_any && is_reset(&e) => break Err(Attempt::Stale),
                Err(e) => break Err(Attempt::Failed(InvokeError::Io(e))),
            }
            let mut headers = [EMPTY_HEADER; 64];
            match parse_response_head(&buf, &UPSTREAM_LIMITS, &mut headers) {
                Ok(None) => continue,
                Err(e) => break Err(Attempt::Failed(e.into())),
                Ok(Some(head)) if head.is_interim() => {
                    let n = head.head_len;
                    buf.drain(..n);
                    continue;
                }
                Ok(Some(head)) => {
                    let status = head.status;
                    let function_error = head.header("x-amz-function-error").is_some();
                    let log_result = head
                        .header("x-amz-log-result")
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .map(str::to_owned);
                    let keep_alive = head.keep_alive;
                    let framing = head.framing;
                    let head_len = head.head_len;
                    break Ok((
                        status,
                        function_error,
                        log_result,
                        keep_alive,
                        framing,
                        head_len,
                    ));
                }
            }
        };
        let (status, function_error, log_result, keep_alive, framing, head_len) = match result {
            Ok(v) => v,
            Err(e) => {
                *scratch = buf;
                return Err(e);
            }
        };
        body.clear();
        let reusable = match read_body(&mut conn, &mut buf, head_len, framing, body).await {
            Ok(clean) => clean && keep_alive,
            Err(e) => {
                *scratch = buf;
                return Err(Attempt::Failed(e));
            }
        };
        *scratch = buf;
        if reusable {
            self.put(env, conn);
        }
        Ok(Invoked {
            status,
            function_error,
            log_result,
        })
    }
}

enum Attempt {
    /// The connection was dead before anything came back: safe to retry on a new one.
    Stale,
    Failed(InvokeError),
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionAborted
    )
}

/// Reads the response body into `body`. `buf[head_len..]` holds bytes already read. Returns
/// whether the connection ended exactly at the body's end (so it may be reused).
async fn read_body(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
    head_len: usize,
    framing: BodyFraming,
    body: &mut Vec<u8>,
) -> Result<bool, InvokeError> {
    match framing {
        BodyFraming::None => Ok(buf.len() == head_len),
        BodyFraming::Length(n) => {
            let n = usize::try_from(n).map_err(|_| HttpError::BadGateway("body too large"))?;
            let have = &buf[head_len..];
            if have.len() > n {
                // More than announced: the peer is confused; answer from what we have, never
                // reuse the connection.
                body.extend_from_slice(&have[..n]);
                return Ok(false);
            }
            body.reserve(n);
            body.extend_from_slice(have);
            while body.len() < n {
                let len = body.len();
                let (res, slice) = conn
                    .read(monoio::buf::IoBufMut::slice_mut(
                        std::mem::take(body),
                        len..n,
                    ))
                    .await;
                *body = slice.into_inner();
                match res {
                    Ok(0) => return Err(InvokeError::Closed),
                    Ok(_) => {}
                    Err(e) => return Err(InvokeError::Io(e)),
                }
            }
            Ok(true)
        }
        BodyFraming::Chunked => {
            let mut dec = ChunkedDecoder::new();
            let mut start = head_len;
            loop {
                let d = dec.decode(&buf[start..], body, MAX_RESPONSE_BYTES)?;
                if d.done {
                    return Ok(start + d.consumed == buf.len());
                }
                buf.clear();
                start = 0;
                if buf.capacity() < 16 * 1024 {
                    buf.reserve(16 * 1024);
                }
                let cap = buf.capacity();
                let (res, slice) = conn
                    .read(monoio::buf::IoBufMut::slice_mut(
                        std::mem::take(buf),
                        0..cap,
                    ))
                    .await;
                *buf = slice.into_inner();
                match res {
                    Ok(0) => return Err(InvokeError::Closed),
                    Ok(_) => {}
                    Err(e) => return Err(InvokeError::Io(e)),
                }
            }
        }
        BodyFraming::UntilClose => {
            body.extend_from_slice(&buf[head_len..]);
            loop {
                if body.len() > MAX_RESPONSE_BYTES {
                    return Err(HttpError::BadGateway("body too large").into());
                }
                body.reserve(16 * 1024);
                let len = body.len();
                let cap = body.capacity();
                let (res, slice) = conn
                    .read(monoio::buf::IoBufMut::slice_mut(
                        std::mem::take(body),
                        len..cap,
                    ))
                    .await;
                *body = slice.into_inner();
                match res {
                    Ok(0) => return Ok(false),
                    Ok(_) => {}
                    Err(e) => return Err(InvokeError::Io(e)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A scripted RIE: for each accepted connection, answers `per_conn` requests with the next
    /// canned responses, then closes. Returns its address and the accept counter.
    fn fake_rie(answers: Vec<&'static [u8]>, per_conn: usize) -> (SocketAddr, Arc<AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let counter = accepts.clone();
        std::thread::spawn(move || {
            let mut answers = answers.into_iter();
            while let Ok((mut s, _)) = l.accept() {
                counter.fetch_add(1, Ordering::SeqCst);
                for _ in 0..per_conn {
                    if !read_request(&mut s) {
                        break;
                    }
                    match answers.next() {
                        Some(a) => s.write_all(a).unwrap(),
                        None => return,
                    }
                }
            }
        });
        (addr, accepts)
    }

    /// Reads one request (head + Content-Length body); false on EOF.
    fn read_request(s: &mut std::net::TcpStream) -> bool {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            match s.read(&mut byte) {
                Ok(1) => buf.push(byte[0]),
                _ => return false,
            }
        }
        let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |v| v.trim().parse().unwrap());
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).is_ok()
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
    const CHUNKED: &[u8] =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
    const FN_ERROR: &[u8] =
        b"HTTP/1.1 200 OK\r\nX-Amz-Function-Error: Unhandled\r\nContent-Length: 2\r\n\r\n{}";
    const HUGE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 7340032\r\n\r\n";

    /// Runs `n` invocations on one per-core pool, on `driver`.
    fn invoke_on(
        driver: esb_config::Driver,
        addr: SocketAddr,
        n: usize,
    ) -> Vec<Result<(Invoked, Vec<u8>), InvokeError>> {
        let mut out = Vec::new();
        crate::runtime::run(driver, |_| async {
            let up = Upstream::default();
            let (mut scratch, mut body) = (Vec::new(), Vec::new());
            for _ in 0..n {
                let r = up
                    .invoke(EnvId(1), addr, b"{}", &[], &mut scratch, &mut body)
                    .await;
                out.push(r.map(|i| (i, body.clone())));
            }
        })
        .unwrap();
        out
    }

    /// epoll, and io_uring where the kernel allows it.
    fn drivers() -> Vec<esb_config::Driver> {
        let mut d = vec![esb_config::Driver::Epoll];
        if monoio::utils::detect_uring() {
            d.push(esb_config::Driver::IoUring);
        }
        d
    }

    #[test]
    fn keep_alive_reuses_one_connection_for_length_and_chunked_bodies() {
        for d in drivers() {
            let (addr, accepts) = fake_rie(vec![OK, CHUNKED, FN_ERROR], 3);
            let ok: Vec<_> = invoke_on(d, addr, 3)
                .into_iter()
                .map(Result::unwrap)
                .collect();
            assert_eq!(ok[0].1, b"{}");
            assert_eq!(ok[1].1, br#"{"a":1}"#);
            assert!(!ok[0].0.function_error && ok[2].0.function_error);
            assert_eq!(accepts.load(Ordering::SeqCst), 1, "{d:?}");
        }
    }

    #[test]
    fn sweep_closes_connections_idle_past_the_cutoff() {
        let (addr, _) = fake_rie(vec![OK], 1);
        crate::runtime::run(esb_config::Driver::Epoll, |_| async {
            let up = Upstream::default();
            let (mut scratch, mut body) = (Vec::new(), Vec::new());
            up.invoke(EnvId(7), addr, b"{}", &[], &mut scratch, &mut body)
                .await
                .unwrap();
            let long_ago = Instant::now().checked_sub(Duration::from_secs(60));
            assert_eq!(up.sweep(long_ago.unwrap_or_else(Instant::now)), 1);
            assert_eq!(up.sweep(Instant::now() + Duration::from_secs(1)), 0);
            assert!(up.take(EnvId(7)).is_none());
        })
        .unwrap();
    }

    #[test]
    fn a_pooled_connection_the_rie_closed_is_retried_once_on_a_new_one() {
        for d in drivers() {
            // One answer per connection: the second invoke finds its pooled connection closed.
            let (addr, accepts) = fake_rie(vec![OK, OK], 1);
            let got = invoke_on(d, addr, 2);
            assert!(got.iter().all(Result::is_ok), "{d:?} {got:?}");
            assert_eq!(accepts.load(Ordering::SeqCst), 2);
        }
    }

    #[test]
    fn oversized_and_broken_answers_are_errors() {
        for d in drivers() {
            let (addr, _) = fake_rie(vec![HUGE], 1);
            let got = invoke_on(d, addr, 1);
            assert!(
                matches!(got[0], Err(InvokeError::Http(HttpError::BadGateway(_)))),
                "{got:?}"
            );
            let (addr, _) = fake_rie(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"], 1);
            let got = invoke_on(d, addr, 1);
            assert!(matches!(got[0], Err(InvokeError::Closed)), "{got:?}");
            let (addr, _) = fake_rie(vec![b"garbage\r\n\r\n"], 1);
            let got = invoke_on(d, addr, 1);
            assert!(matches!(got[0], Err(InvokeError::Http(_))), "{got:?}");
            // Nothing listening.
            let free = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap();
            let got = invoke_on(d, free, 1);
            assert!(
                matches!(got[0], Err(InvokeError::Connect { .. })),
                "{got:?}"
            );
        }
    }
}
