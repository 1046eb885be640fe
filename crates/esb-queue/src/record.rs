//! The log's record framing: `[len u32 LE][crc32 u32 LE][kind u8][body]`, where `len` and the
//! CRC cover `kind` and `body`. A record that does not check out is where the log ends.

/// Larger than any record esb writes (an async payload is at most a few MB); a larger length is
/// garbage from a torn write, not an allocation to attempt.
pub(crate) const MAX_RECORD: usize = 64 << 20;
pub(crate) const HEADER: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record<'a> {
    /// Written first by compaction so ids are never reused after every record was completed.
    NextId(u64),
    Enqueue(Enqueue<'a>),
    Complete(u64),
    Failed {
        id: u64,
        attempts: u32,
        not_before_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Enqueue<'a> {
    pub id: u64,
    pub function: &'a str,
    pub payload: &'a [u8],
    pub client_context: Option<&'a str>,
    pub trace_id: Option<&'a str>,
}

const NEXT_ID: u8 = 0;
const ENQUEUE: u8 = 1;
const COMPLETE: u8 = 2;
const FAILED: u8 = 3;
const NONE: u32 = u32::MAX;

impl Record<'_> {
    /// The framed bytes, ready to append.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![0u8; HEADER];
        match self {
            Record::NextId(id) => {
                out.push(NEXT_ID);
                out.extend_from_slice(&id.to_le_bytes());
            }
            Record::Enqueue(e) => {
                out.push(ENQUEUE);
                out.extend_from_slice(&e.id.to_le_bytes());
                put_bytes(&mut out, Some(e.function.as_bytes()));
                put_bytes(&mut out, Some(e.payload));
                put_bytes(&mut out, e.client_context.map(str::as_bytes));
                put_bytes(&mut out, e.trace_id.map(str::as_bytes));
            }
            Record::Complete(id) => {
                out.push(COMPLETE);
                out.extend_from_slice(&id.to_le_bytes());
            }
            Record::Failed {
                id,
                attempts,
                not_before_ms,
            } => {
                out.push(FAILED);
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(&attempts.to_le_bytes());
                out.extend_from_slice(&not_before_ms.to_le_bytes());
            }
        }
        let len = (out.len() - HEADER) as u32;
        let crc = crc32fast::hash(&out[HEADER..]);
        out[0..4].copy_from_slice(&len.to_le_bytes());
        out[4..8].copy_from_slice(&crc.to_le_bytes());
        out
    }
}

fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
        None => out.extend_from_slice(&NONE.to_le_bytes()),
    }
}

/// Decodes the record at the start of `buf`, returning it and its framed length, or `None` if
/// `buf` does not start with a whole, intact record (a torn or corrupt tail).
pub(crate) fn decode(buf: &[u8]) -> Option<(Record<'_>, usize)> {
    let len = u32::from_le_bytes(buf.get(0..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(buf.get(4..8)?.try_into().ok()?);
    if len == 0 || len > MAX_RECORD {
        return None;
    }
    let body = buf.get(HEADER..HEADER + len)?;
    if crc32fast::hash(body) != crc {
        return None;
    }
    let mut r = Reader(&body[1..]);
    let rec = match body[0] {
        NEXT_ID => Record::NextId(r.u64()?),
        ENQUEUE => {
            let id = r.u64()?;
            let function = std::str::from_utf8(r.bytes()??).ok()?;
            let payload = r.bytes()??;
            let client_context = r.opt_str()?;
            let trace_id = r.opt_str()?;
            Record::Enqueue(Enqueue {
                id,
                function,
                payload,
                client_context,
                trace_id,
            })
        }
        COMPLETE => Record::Complete(r.u64()?),
        FAILED => Record::Failed {
            id: r.u64()?,
            attempts: r.u32()?,
            not_before_ms: r.u64()?,
        },
        _ => return None,
    };
    // A record with trailing bytes passed its CRC but is not one we wrote.
    if !r.0.is_empty() {
        return None;
    }
    Some((rec, HEADER + len))
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    /// `Some(None)` is an absent optional field; `None` is a malformed record.
    fn bytes(&mut self) -> Option<Option<&'a [u8]>> {
        let n = self.u32()?;
        if n == NONE {
            return Some(None);
        }
        Some(Some(self.take(n as usize)?))
    }
    fn opt_str(&mut self) -> Option<Option<&'a str>> {
        match self.bytes()? {
            None => Some(None),
            Some(b) => Some(Some(std::str::from_utf8(b).ok()?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(rec: Record<'_>) {
        let bytes = rec.encode();
        assert_eq!(decode(&bytes), Some((rec.clone(), bytes.len())));
        // Every strict prefix is a torn record, never a different valid one.
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), None, "{rec:?} cut at {cut}");
        }
        // Every single-bit flip is caught (CRC32 detects all 1-bit errors).
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                if let Some((r, _)) = decode(&b) {
                    panic!("{rec:?} with byte {i} bit {bit} flipped decoded as {r:?}");
                }
            }
        }
    }

    #[test]
    fn round_trips_and_rejects_damage() {
        check(Record::NextId(7));
        check(Record::Complete(u64::MAX - 1));
        check(Record::Failed {
            id: 3,
            attempts: 2,
            not_before_ms: 1_700_000_000_000,
        });
        check(Record::Enqueue(Enqueue {
            id: 42,
            function: "orders",
            payload: b"{\"orderId\": 7}",
            client_context: Some("eyJjdXN0b20iOnt9fQ=="),
            trace_id: None,
        }));
        check(Record::Enqueue(Enqueue {
            id: 1,
            function: "f",
            payload: b"",
            client_context: None,
            trace_id: Some("Root=1-5759e988-bd862e3fe1be46a994272793"),
        }));
    }

    #[test]
    fn zero_fill_and_huge_lengths_end_the_log() {
        // A crash after the file grew but before its data reached the disk reads back as zeros.
        assert_eq!(decode(&[0u8; 64]), None);
        let mut b = Record::Complete(1).encode();
        b[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&b), None);
    }
}
