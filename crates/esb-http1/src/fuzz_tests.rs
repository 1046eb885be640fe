//! Deterministic fuzz-style tests (checklist A34/A37): random bytes and mutations of valid
//! messages never panic, accepted heads always satisfy the framing invariants, and any split of
//! the input gives the answer one read gives. A seeded xorshift keeps every run identical.

use crate::*;

/// xorshift64*: tiny, seeded, good enough to spread mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Bytes that sit on parser decision points.
const INTERESTING: &[u8] = b"\r\n\0 \t:,;_-0123456789aAfF/?#*%\"\x7f\x80\xa0\xff\x0b\x0c";

const REQUESTS: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /api/items/42?expand=owner HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: x\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n",
    b"POST /fn HTTP/1.1\r\nHost: h:8443\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\":true}\n",
    b"POST /fn HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET http://a/x HTTP/1.0\r\nConnection: close, X-Api-Key\r\n\r\n",
    b"DELETE /x HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
];

const RESPONSES: &[&[u8]] = &[
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"ok\":true}..",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n",
];

fn limits() -> Limits {
    Limits {
        max_head_bytes: 512,
        max_headers: 12,
        max_body_bytes: 4096,
        max_uri_bytes: 128,
        underscore_headers: UnderscoreHeaders::Reject,
    }
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if at < v.len() => v[at] = *rng.pick(INTERESTING),
            1 => v.insert(at, *rng.pick(INTERESTING)),
            2 if at < v.len() => {
                v.remove(at);
            }
            3 if at < v.len() => v[at] = rng.next() as u8,
            4 => {
                // Duplicate a line: repeated fields are where framing ambiguity lives.
                let start = v[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let end = v[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(v.len(), |i| at + i + 1);
                let line = v[start..end].to_vec();
                v.splice(end..end, line);
            }
            _ => v.truncate(at),
        }
    }
    v
}

/// What a request parse says, reduced to comparable data (and the invariants checked).
fn request_outcome(input: &[u8]) -> Result<Option<(usize, BodyFraming, bool)>, HttpError> {
    let limits = limits();
    let mut scratch = [EMPTY_HEADER; 16];
    let head = parse_request_head(input, &limits, &mut scratch)?;
    Ok(head.map(|h| {
        assert!(h.head_len <= input.len().min(limits.max_head_bytes));
        let raw = &input[..h.head_len];
        assert!(raw.ends_with(b"\r\n\r\n"));
        assert!(
            raw.windows(2).all(|w| (w[1] == b'\n') == (w[0] == b'\r')),
            "bare CR/LF accepted: {raw:?}"
        );
        assert!(h.target.starts_with('/') && h.target.len() <= limits.max_uri_bytes);
        assert!(h.headers.len() <= limits.max_headers);
        let named = |n: &str| {
            h.headers
                .iter()
                .filter(|f| f.name.eq_ignore_ascii_case(n))
                .count()
        };
        match h.framing {
            BodyFraming::None => assert_eq!(named("transfer-encoding"), 0),
            BodyFraming::Length(n) => {
                assert!(n > 0 && n <= limits.max_body_bytes);
                assert_eq!(
                    (named("content-length"), named("transfer-encoding")),
                    (1, 0)
                );
            }
            BodyFraming::Chunked => {
                assert_eq!(
                    (named("content-length"), named("transfer-encoding")),
                    (0, 1)
                );
                assert_eq!(h.version, Version::Http11);
            }
            BodyFraming::UntilClose => panic!("a request framed until close"),
        }
        assert!(named("content-length") <= 1 && named("host") <= 1);
        for f in h.headers {
            assert!(!f.name.contains('_'));
            assert!(std::str::from_utf8(f.value).is_ok());
            assert!(
                f.value
                    .iter()
                    .all(|&b| b == b'\t' || b >= b' ' && b != 0x7f)
            );
        }
        (h.head_len, h.framing, h.keep_alive)
    }))
}

fn response_outcome(input: &[u8]) -> Result<Option<(usize, BodyFraming, bool)>, HttpError> {
    let mut scratch = [EMPTY_HEADER; 16];
    let head = parse_response_head(input, &limits(), &mut scratch)?;
    Ok(head.map(|h| {
        assert!(h.head_len <= input.len());
        assert!((100..=599).contains(&h.status) && h.status != 101);
        if h.framing == BodyFraming::UntilClose {
            assert!(!h.keep_alive);
        }
        (h.head_len, h.framing, h.keep_alive)
    }))
}

/// The first answer while feeding byte by byte must equal the one-read answer.
fn assert_split_invariant<T: PartialEq + std::fmt::Debug>(
    input: &[u8],
    parse: impl Fn(&[u8]) -> Result<Option<T>, HttpError>,
) {
    let whole = parse(input);
    for end in 0..=input.len() {
        match parse(&input[..end]) {
            Ok(None) => continue,
            first => {
                assert_eq!(first, whole, "{input:?}: answer after {end} bytes differs");
                return;
            }
        }
    }
    assert_eq!(whole, Ok(None), "{input:?}");
}

fn decode_all(input: &[u8], splits: &[usize]) -> Result<(Vec<u8>, usize, bool), HttpError> {
    let mut d = ChunkedDecoder::with_limits(64, 256);
    let mut out = Vec::new();
    let mut consumed = 0;
    let mut prev = 0;
    for &cut in splits.iter().chain([&input.len()]) {
        let cut = cut.clamp(prev, input.len());
        let r = d.decode(&input[prev..cut], &mut out, 4096)?;
        assert!(r.consumed <= cut - prev);
        consumed += r.consumed;
        if r.done {
            return Ok((out, consumed, true));
        }
        prev = cut;
    }
    assert!(out.len() <= 4096);
    Ok((out, consumed, false))
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..20_000 {
        let len = rng.below(300);
        let input: Vec<u8> = (0..len)
            .map(|_| {
                if i % 2 == 0 {
                    rng.next() as u8
                } else {
                    *rng.pick(b"GET POST HTTP/1.1\r\nHost: a:1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n0123456789abcdef;\0_")
                }
            })
            .collect();
        let _ = request_outcome(&input);
        let _ = response_outcome(&input);
        let _ = decode_all(&input, &[rng.below(len + 1)]);
    }
}

#[test]
fn mutated_requests_never_panic_and_split_consistently() {
    let mut rng = Rng(42);
    let mut accepted = 0;
    for i in 0..6_000 {
        let seed: &[u8] = rng.pick::<&[u8]>(REQUESTS);
        let input = mutate(&mut rng, seed);
        if request_outcome(&input).is_ok_and(|o| o.is_some()) {
            accepted += 1;
        }
        if i % 4 == 0 {
            assert_split_invariant(&input, request_outcome);
        }
    }
    // The mutations must leave a fair share valid, or this test would prove little.
    assert!(accepted > 600, "only {accepted} mutants accepted");
}

#[test]
fn mutated_responses_never_panic_and_split_consistently() {
    let mut rng = Rng(7);
    for _ in 0..3_000 {
        let seed: &[u8] = rng.pick::<&[u8]>(RESPONSES);
        let input = mutate(&mut rng, seed);
        assert_split_invariant(&input, response_outcome);
    }
}

#[test]
fn chunked_round_trips_through_random_splits() {
    let mut rng = Rng(2026);
    for _ in 0..2_000 {
        let body: Vec<u8> = (0..rng.below(600)).map(|_| rng.next() as u8).collect();
        let mut wire = Vec::new();
        let mut rest = &body[..];
        while !rest.is_empty() {
            let n = (1 + rng.below(100)).min(rest.len());
            let size = if rng.below(2) == 0 {
                format!("{n:x}")
            } else {
                format!("{n:X}")
            };
            wire.extend_from_slice(size.as_bytes());
            if rng.below(8) == 0 {
                wire.extend_from_slice(b";k=v");
            }
            wire.extend_from_slice(b"\r\n");
            wire.extend_from_slice(&rest[..n]);
            wire.extend_from_slice(b"\r\n");
            rest = &rest[n..];
        }
        wire.extend_from_slice(b"0\r\n");
        if rng.below(4) == 0 {
            wire.extend_from_slice(b"X-Checksum: abc\r\n");
        }
        wire.extend_from_slice(b"\r\n");
        let encoded = wire.len();
        wire.extend_from_slice(b"GET /next");

        let mut splits: Vec<usize> = (0..rng.below(6))
            .map(|_| rng.below(wire.len() + 1))
            .collect();
        splits.sort_unstable();
        assert_eq!(
            decode_all(&wire, &splits),
            Ok((body.clone(), encoded, true))
        );

        // A mutated encoding may fail, but never panics, and a split never changes the answer.
        let mutant = mutate(&mut rng, &wire);
        let one = decode_all(&mutant, &[]);
        assert_eq!(decode_all(&mutant, &splits), one);
    }
}
