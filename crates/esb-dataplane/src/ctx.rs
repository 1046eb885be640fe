//! Per-request context: the request id, the peer, the arrival time.
//!
//! Hot path: the id lives inline (no allocation). An incoming `X-Request-Id` that is short and
//! plain is kept as the request's id (echoed back and put into the event), so callers can trace a
//! request through esb; otherwise a UUID v4 is made, as API Gateway does.

use std::cell::Cell;
use std::net::SocketAddr;
use std::time::SystemTime;

use esb_http1::RequestHead;

const MAX_ID: usize = 128;

/// What every part of one request's handling may need to know about it.
pub struct RequestCtx {
    id: [u8; MAX_ID],
    id_len: u8,
    ip: [u8; 46],
    ip_len: u8,
    /// The id came from the client's `X-Request-Id` (echo it under that name too).
    echoed: bool,
    pub peer: SocketAddr,
    pub received: SystemTime,
}

impl RequestCtx {
    pub fn new(
        head: &RequestHead<'_, '_>,
        peer: SocketAddr,
        received: SystemTime,
        ids: &IdGen,
    ) -> Self {
        let mut ctx = RequestCtx {
            id: [0; MAX_ID],
            id_len: 0,
            ip: [0; 46],
            ip_len: 0,
            echoed: false,
            peer,
            received,
        };
        ctx.format_ip();
        match head.header("x-request-id").filter(|v| valid_id(v)) {
            Some(v) => {
                ctx.id[..v.len()].copy_from_slice(v);
                ctx.id_len = v.len() as u8;
                ctx.echoed = true;
            }
            None => ctx.set_uuid(ids.next_uuid()),
        }
        ctx
    }

    /// A context for an answer to bytes that never became a request (framing errors).
    pub fn anonymous() -> Self {
        let mut ctx = RequestCtx {
            id: [0; MAX_ID],
            id_len: 0,
            ip: [0; 46],
            ip_len: 0,
            echoed: false,
            peer: SocketAddr::from(([0, 0, 0, 0], 0)),
            received: SystemTime::UNIX_EPOCH,
        };
        ctx.fresh_id();
        ctx
    }

    fn fresh_id(&mut self) {
        self.set_uuid(uuid::Uuid::new_v4());
    }

    fn set_uuid(&mut self, id: uuid::Uuid) {
        let n = id.hyphenated().encode_lower(&mut self.id[..]).len();
        self.id_len = n as u8;
    }

    fn format_ip(&mut self) {
        use std::io::Write as _;
        let mut cur = std::io::Cursor::new(&mut self.ip[..]);
        if write!(cur, "{}", self.peer.ip()).is_ok() {
            self.ip_len = cur.position() as u8;
        }
    }

    /// The client's address as text (`requestContext.identity.sourceIp`).
    pub fn source_ip(&self) -> &str {
        std::str::from_utf8(&self.ip[..self.ip_len as usize]).unwrap_or("")
    }

    /// When the request arrived, epoch milliseconds.
    pub fn epoch_ms(&self) -> u64 {
        self.received
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    /// When the request arrived, epoch seconds (token checks).
    pub fn epoch_secs(&self) -> u64 {
        self.epoch_ms() / 1000
    }

    pub fn id(&self) -> &str {
        // Only ASCII ever goes in (valid_id / a UUID).
        std::str::from_utf8(&self.id[..self.id_len as usize]).unwrap_or("")
    }

    /// The headers that carry the id on every answer.
    pub fn id_headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let id = &self.id[..self.id_len as usize];
        let names: [&str; 2] = ["x-amzn-RequestId", "X-Request-Id"];
        names
            .into_iter()
            .take(1 + usize::from(self.echoed))
            .map(move |n| (n, id))
    }
}

/// Per-core source of request ids: UUID v4 layout over a xorshift64* stream seeded once from the
/// OS. Ids must be unique, not secret, and a syscall per request (what `Uuid::new_v4` costs)
/// showed up in the /health profile.
pub struct IdGen(Cell<u64>);

impl Default for IdGen {
    fn default() -> Self {
        IdGen(Cell::new(uuid::Uuid::new_v4().as_u64_pair().0 | 1))
    }
}

impl IdGen {
    fn next(&self) -> u64 {
        let mut x = self.0.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn next_uuid(&self) -> uuid::Uuid {
        let bits = (u128::from(self.next()) << 64) | u128::from(self.next());
        uuid::Builder::from_random_bytes(bits.to_be_bytes()).into_uuid()
    }
}

/// A request id we are willing to adopt: 1–128 bytes of letters, digits and `-_.:/+=`.
fn valid_id(v: &[u8]) -> bool {
    !v.is_empty()
        && v.len() <= MAX_ID
        && v.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuids_or_adopted() {
        assert!(valid_id(b"abc-123"));
        assert!(!valid_id(b""));
        assert!(!valid_id(b"a b"));
        assert!(!valid_id(&[b'a'; 129]));
        let a = RequestCtx::anonymous();
        assert_eq!(a.id().len(), 36);
        assert_eq!(a.id().matches('-').count(), 4);
        assert_ne!(a.id(), RequestCtx::anonymous().id());
        assert_eq!(a.id_headers().count(), 1);
        let ids = IdGen::default();
        let (x, y) = (ids.next_uuid(), ids.next_uuid());
        assert_ne!(x, y);
        assert_eq!(x.get_version_num(), 4);
        assert_eq!(x.get_variant(), uuid::Variant::RFC4122);
    }
}
