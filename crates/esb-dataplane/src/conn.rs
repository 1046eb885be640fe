//! One client connection: TLS handshake, then HTTP/1.1 requests one after another (pipelined
//! bytes are kept for the next round) until close, error, a limit or shutdown.
//!
//! Hot path. Buffers are per connection and reused across its requests; the head is parsed in
//! place (esb-http1) and borrowed, never copied.
//!
//! Timeouts close the connection by dropping the TLS stream with the pending read: a TLS stream
//! whose read was abandoned is never used again (spec/crates.md: io_uring does not cancel the
//! read synchronously, and a later read could see a torn record). That is why an expired head,
//! body or idle timer gets no 408: the socket just closes.
//!
//! Early answers (no route, bad token, bad key, ...) come before the body is read. The body is
//! then either already in the buffer (consumed), small and plainly framed (read and discarded,
//! the connection stays), or anything else (the answer says `connection: close` and the
//! connection closes). No byte of a refused request is ever parsed as the next request
//! (checklist A9), and `100 Continue` is only sent once the request was accepted (A12).

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use esb_http1::{
    BodyFraming, CONTINUE_100, ChunkedDecoder, Connection, EMPTY_HEADER, HttpError, Method,
    RequestHead, parse_request_head,
};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use monoio::time::{Instant, timeout_at};

use crate::errors::{RequestError, respond};
use crate::handler::{self, RequestCtx};
use crate::worker::Worker;

type Tls = monoio_rustls::ServerTlsStream<TcpStream>;

/// Most header fields a head may have, whatever the config says (the scratch array lives in
/// the connection's future).
pub(crate) const MAX_HEADERS: usize = 128;

/// A refused request's body up to this size is read and discarded to keep the connection.
const DRAIN_MAX: u64 = 64 * 1024;

/// How long a closing connection keeps reading (and discarding) what the client still sends,
/// so the kernel does not answer it with a reset that could destroy our last response.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_MAX_BYTES: usize = 16 * 1024 * 1024;

const READ_CHUNK: usize = 16 * 1024;

enum Step {
    /// The request was answered; `consumed` bytes of the read buffer belonged to it.
    Next { consumed: usize },
    /// Close now (the answer, if any, was written).
    Close,
    /// Close after lingering (an answer with `connection: close` was written while the client
    /// may still be sending).
    Linger,
}

/// Serves one accepted connection to its end.
pub(crate) async fn serve(tcp: TcpStream, peer: SocketAddr, w: Rc<Worker>) {
    let _ = tcp.set_nodelay(true);
    let lim = &w.shared.limits;
    let handshake = Instant::now() + ms(lim.handshake_timeout_ms);
    let mut io = match timeout_at(handshake, w.acceptor.accept(tcp)).await {
        Ok(Ok(io)) => io,
        _ => return,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut body: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut carry: Vec<u8> = Vec::new();
    let mut served: u32 = 0;
    loop {
        // Between requests: the idle timer (and shutdown) until a first byte, then the head timer.
        let idle = if served == 0 {
            lim.head_timeout_ms
        } else {
            lim.idle_timeout_ms
        };
        if !wait_head(&w, &mut io, &mut buf, ms(idle)).await {
            return;
        }
        served += 1;
        let mut scratch = [EMPTY_HEADER; MAX_HEADERS];
        let step = match parse_request_head(&buf, &w.shared.http_limits, &mut scratch) {
            Ok(Some(head)) => {
                one_request(
                    &w, &mut io, &head, &buf, &mut body, &mut out, &mut carry, served, peer,
                )
                .await
            }
            // `wait_head` saw a terminator, so the head cannot still be partial.
            Ok(None) => {
                refuse(
                    &w,
                    &mut io,
                    &mut out,
                    HttpError::BadRequest("incomplete head").into(),
                    None,
                )
                .await
            }
            Err(e) => refuse(&w, &mut io, &mut out, e.into(), None).await,
        };
        match step {
            Step::Next { consumed } => {
                buf.drain(..consumed);
                if !carry.is_empty() {
                    buf.extend_from_slice(&carry);
                    carry.clear();
                }
            }
            Step::Close => return,
            Step::Linger => return linger(io).await,
        }
        if body.capacity() > 1024 * 1024 {
            // A big upload should not pin its buffer for the rest of a long keep-alive.
            body = Vec::new();
        }
    }
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Reads until `buf` holds a whole head (a blank line) or more than the head limit. Returns
/// false when the connection must close (EOF, error, timer, shutdown while idle).
async fn wait_head(w: &Worker, io: &mut Tls, buf: &mut Vec<u8>, idle: Duration) -> bool {
    let max = w.shared.limits.max_head_bytes;
    let idle_deadline = Instant::now() + idle;
    let mut head_deadline =
        (!buf.is_empty()).then(|| Instant::now() + ms(w.shared.limits.head_timeout_ms));
    let mut searched = 0;
    loop {
        if has_terminator(buf, searched) || buf.len() > max {
            return true;
        }
        searched = buf.len();
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(READ_CHUNK);
        }
        let len = buf.len();
        let cap = buf.capacity();
        let read = io.read(std::mem::take(buf).slice_mut(len..cap));
        let res = match head_deadline {
            Some(deadline) => timeout_at(deadline, read).await,
            None => {
                if w.draining.get() {
                    return false;
                }
                let mut stop = w.stop.clone();
                monoio::select! {
                    r = timeout_at(idle_deadline, read) => r,
                    _ = stop.changed() => return false,
                }
            }
        };
        match res {
            Ok((Ok(n), slice)) if n > 0 => {
                *buf = slice.into_inner();
                head_deadline
                    .get_or_insert_with(|| Instant::now() + ms(w.shared.limits.head_timeout_ms));
            }
            // EOF, an error, or a timer: the pending read (if any) is dropped with the stream.
            _ => return false,
        }
    }
}

/// Whether `buf` holds the blank line ending a head (CRLF CRLF, or a bare-LF one that the
/// parser will refuse), searching from just before `from`.
fn has_terminator(buf: &[u8], from: usize) -> bool {
    let start = from.saturating_sub(3);
    let tail = &buf[start..];
    // Jumps from LF to LF (memchr) instead of comparing windows at every byte: a 1.3 KB head
    // with a Bearer token cost ~6,000 instructions per request the old way.
    memchr::memchr_iter(b'\n', tail).any(|i| {
        let rest = &tail[i + 1..];
        rest.starts_with(b"\n") || (rest.starts_with(b"\r\n") && i > 0 && tail[i - 1] == b'\r')
    })
}

/// Answers one parsed request and reads exactly its body.
#[allow(clippy::too_many_arguments)]
async fn one_request(
    w: &Worker,
    io: &mut Tls,
    head: &RequestHead<'_, '_>,
    buf: &[u8],
    body: &mut Vec<u8>,
    out: &mut Vec<u8>,
    carry: &mut Vec<u8>,
    served: u32,
    peer: SocketAddr,
) -> Step {
    let ctx = RequestCtx::new(head, peer, SystemTime::now(), &w.ids);
    let keep = head.keep_alive
        && served < w.shared.limits.max_requests_per_connection
        && !w.draining.get();
    let connection = if keep {
        head.response_connection()
    } else {
        Connection::Close
    };

    // Everything that can be decided from the head alone, before any body byte is read.
    let plan = match handler::plan(w, head, &ctx) {
        Ok(plan) => plan,
        Err(e) => return refuse_early(w, io, head, buf, out, e, &ctx).await,
    };
    // A Lambda authorizer runs now, still before the body is read.
    let plan = match handler::authorize(w, plan, head, &ctx).await {
        Ok(plan) => plan,
        Err(e) => return refuse_early(w, io, head, buf, out, e, &ctx).await,
    };

    // The body, now that the request is accepted.
    let after_head = &buf[head.head_len..];
    if head.expect_continue && head.framing != BodyFraming::None && after_head.is_empty() {
        let deadline = Instant::now() + ms(w.shared.limits.body_timeout_ms);
        match timeout_at(deadline, io.write_all(CONTINUE_100)).await {
            Ok((Ok(_), _)) => {}
            _ => return Step::Close,
        }
    }
    body.clear();
    let deadline = Instant::now() + ms(w.shared.limits.body_timeout_ms);
    let consumed = match read_body(w, io, head, buf, body, carry, deadline).await {
        Ok(consumed) => consumed,
        Err(BodyError::Http(e)) => return refuse(w, io, out, e.into(), Some(&ctx)).await,
        Err(BodyError::Gone) => return Step::Close,
    };

    out.clear();
    let result = handler::run(w, plan, head, &ctx, body, out, connection).await;
    // Shutdown may have begun while the function ran: the answer then ends the connection (the
    // handler wrote its head by the same rule, with no await in between).
    let connection = handler::settle(w, connection);
    let connection = match result {
        Ok(()) => connection,
        Err(e) => {
            out.clear();
            write_error(out, &e, &ctx, connection, head.method == Method::Head)
        }
    };
    if !write_out(w, io, out).await {
        return Step::Close;
    }
    if connection == Connection::Close {
        Step::Close
    } else {
        Step::Next { consumed }
    }
}

/// Answers a request refused before its body was read, keeping the connection only when the
/// body is certainly out of the way.
async fn refuse_early(
    w: &Worker,
    io: &mut Tls,
    head: &RequestHead<'_, '_>,
    buf: &[u8],
    out: &mut Vec<u8>,
    err: RequestError,
    ctx: &RequestCtx,
) -> Step {
    let after_head = buf.len() - head.head_len;
    let keep_alive = head.keep_alive && !w.draining.get();
    let mut consumed = None;
    let mut drain = 0u64;
    match head.framing {
        BodyFraming::None => consumed = Some(head.head_len),
        BodyFraming::Length(n) if (after_head as u64) >= n => {
            consumed = Some(head.head_len + n as usize);
        }
        // Never read a body we announced we would not wait for.
        BodyFraming::Length(n) if n <= DRAIN_MAX && !head.expect_continue => {
            drain = n - after_head as u64;
            consumed = Some(buf.len());
        }
        _ => {}
    }
    let connection = match (consumed, keep_alive) {
        (Some(_), true) => head.response_connection(),
        _ => Connection::Close,
    };
    out.clear();
    let connection = write_error(out, &err, ctx, connection, head.method == Method::Head);
    if !write_out(w, io, out).await {
        return Step::Close;
    }
    match consumed {
        Some(n) if connection != Connection::Close => {
            // The answer goes first: a client may wait for it before sending the body. The body
            // still follows (the framing says so) and is dropped before the next head.
            if drain > 0 {
                let deadline = Instant::now() + ms(w.shared.limits.body_timeout_ms);
                if !discard(io, drain, deadline).await {
                    return Step::Close;
                }
            }
            Step::Next { consumed: n }
        }
        Some(_) if drain == 0 => Step::Close,
        _ => Step::Linger,
    }
}

/// Answers an error after which the connection cannot continue (framing, limits, a body that
/// failed half-way).
async fn refuse(
    w: &Worker,
    io: &mut Tls,
    out: &mut Vec<u8>,
    err: RequestError,
    ctx: Option<&RequestCtx>,
) -> Step {
    out.clear();
    let fallback;
    let ctx = match ctx {
        Some(c) => c,
        None => {
            fallback = RequestCtx::anonymous();
            &fallback
        }
    };
    write_error(out, &err, ctx, Connection::Close, false);
    if !write_out(w, io, out).await {
        return Step::Close;
    }
    Step::Linger
}

/// Writes the error answer for `err` into `out`; returns the connection handling it announced
/// (an error may force a close).
pub(crate) fn write_error(
    out: &mut Vec<u8>,
    err: &RequestError,
    ctx: &RequestCtx,
    connection: Connection,
    head_request: bool,
) -> Connection {
    let r = respond(err);
    let connection = if r.close {
        Connection::Close
    } else {
        connection
    };
    let fixed: [(&str, &[u8]); 2] = [
        ("content-type", r.content_type.as_bytes()),
        ("x-amzn-ErrorType", r.error_type.as_bytes()),
    ];
    let extra = r
        .headers
        .iter()
        .map(|(n, v)| -> (&str, &[u8]) { (n, v.as_bytes()) });
    let headers = fixed.into_iter().chain(extra).chain(ctx.id_headers());
    // Only esb's own constant names and values: this cannot fail.
    let _ = esb_http1::write_response_head(out, r.status, None, headers, r.body.len(), connection);
    if !head_request {
        out.extend_from_slice(r.body.as_bytes());
    }
    if r.status >= 500 {
        if let Some(dropped) = crate::logs::allow() {
            tracing::warn!(request_id = ctx.id(), status = r.status, error = %err, dropped, "request failed");
        }
    } else {
        tracing::debug!(request_id = ctx.id(), status = r.status, error = %err, "request refused");
    }
    connection
}

/// Writes `out` (then clears it for reuse). False when the connection must close: a write
/// error, or a client that does not read its answer within the body timeout (slow read, A28);
/// the abandoned TLS stream is then dropped, never written again.
async fn write_out(w: &Worker, io: &mut Tls, out: &mut Vec<u8>) -> bool {
    let deadline = Instant::now() + ms(w.shared.limits.body_timeout_ms);
    match timeout_at(deadline, io.write_all(std::mem::take(out))).await {
        Ok((res, buf)) => {
            *out = buf;
            out.clear();
            res.is_ok()
        }
        Err(_) => false,
    }
}

enum BodyError {
    /// The body broke framing or the size limit: answer, then close.
    Http(HttpError),
    /// EOF, IO error or the body timer: close without an answer.
    Gone,
}

/// Reads the request body into `body` (bounded by the limits and `deadline`). Returns how many
/// bytes of `buf` the request took; bytes read past the body (pipelining after a chunked body)
/// go to `carry`.
async fn read_body(
    w: &Worker,
    io: &mut Tls,
    head: &RequestHead<'_, '_>,
    buf: &[u8],
    body: &mut Vec<u8>,
    carry: &mut Vec<u8>,
    deadline: Instant,
) -> Result<usize, BodyError> {
    let after = &buf[head.head_len..];
    match head.framing {
        BodyFraming::None | BodyFraming::UntilClose => Ok(head.head_len),
        BodyFraming::Length(n) => {
            // esb-http1 already refused lengths over the limit (413) before this point.
            let n = n as usize;
            if after.len() >= n {
                body.extend_from_slice(&after[..n]);
                return Ok(head.head_len + n);
            }
            body.extend_from_slice(after);
            while body.len() < n {
                let len = body.len();
                // Grow with the data, not with the announced length: a client that declares
                // 10 MB and sends slowly must not pin 10 MB per connection up front.
                if body.capacity() == len {
                    body.reserve((n - len).min(256 * 1024));
                }
                let end = body.capacity().min(n);
                // Read at most the rest of this body: later bytes stay in TLS for the next head.
                let read = io.read(std::mem::take(body).slice_mut(len..end));
                match timeout_at(deadline, read).await {
                    Ok((Ok(k), slice)) if k > 0 => *body = slice.into_inner(),
                    _ => return Err(BodyError::Gone),
                }
            }
            Ok(buf.len())
        }
        BodyFraming::Chunked => {
            let max = w.shared.limits.max_body_bytes;
            let mut dec = ChunkedDecoder::new();
            let d = dec.decode(after, body, max).map_err(BodyError::Http)?;
            if d.done {
                return Ok(head.head_len + d.consumed);
            }
            let mut chunk: Vec<u8> = Vec::with_capacity(READ_CHUNK);
            loop {
                chunk.clear();
                let read = io.read(std::mem::take(&mut chunk).slice_mut(0..READ_CHUNK));
                match timeout_at(deadline, read).await {
                    Ok((Ok(k), slice)) if k > 0 => chunk = slice.into_inner(),
                    _ => return Err(BodyError::Gone),
                }
                let d = dec.decode(&chunk, body, max).map_err(BodyError::Http)?;
                if d.done {
                    carry.extend_from_slice(&chunk[d.consumed..]);
                    return Ok(buf.len());
                }
            }
        }
    }
}

/// Reads and drops `n` body bytes. False if the connection ended or the timer fired.
async fn discard(io: &mut Tls, mut n: u64, deadline: Instant) -> bool {
    let mut sink: Vec<u8> = Vec::with_capacity(READ_CHUNK.min(n as usize));
    while n > 0 {
        let want = (n as usize).min(sink.capacity());
        sink.clear();
        let read = io.read(std::mem::take(&mut sink).slice_mut(0..want));
        match timeout_at(deadline, read).await {
            Ok((Ok(k), slice)) if k > 0 => {
                sink = slice.into_inner();
                n -= k as u64;
            }
            _ => return false,
        }
    }
    true
}

/// Closes gracefully after an answer that said `connection: close`: TLS close_notify and a
/// write shutdown, then whatever the client still sends is read and dropped for a moment, so
/// the kernel does not reset the connection (which can destroy the unread answer at the client).
async fn linger(mut io: Tls) {
    let deadline = Instant::now() + LINGER;
    if timeout_at(deadline, io.shutdown()).await.is_err() {
        return;
    }
    let (mut tcp, _session) = io.into_parts();
    let mut sink: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut total = 0usize;
    while total < LINGER_MAX_BYTES {
        sink.clear();
        match timeout_at(deadline, tcp.read(std::mem::take(&mut sink))).await {
            Ok((Ok(k), b)) if k > 0 => {
                sink = b;
                total += k;
            }
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminators() {
        assert!(has_terminator(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0));
        assert!(has_terminator(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 26));
        assert!(!has_terminator(b"GET / HTTP/1.1\r\nHost: a\r\n\r", 0));
        assert!(has_terminator(b"GET / HTTP/1.1\nHost: a\n\n", 0));
        assert!(!has_terminator(b"", 0));
        // A terminator split across reads: only its last byte is new.
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert!(has_terminator(head, head.len() - 1));
        // A bare LF before CRLF is no terminator (the head goes on, or hits its limit).
        assert!(!has_terminator(b"GET / HTTP/1.1\nHost: a\n\r\nX", 0));
        assert!(!has_terminator(b"\n\r\n", 0));
    }
}
