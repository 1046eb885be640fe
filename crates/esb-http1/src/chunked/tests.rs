//! Chunked-body tests: checklist A7 (chunk-size abuse), A8 (trailers), A25 (limit mid-stream),
//! each fed in one piece, in every two-piece split and byte by byte.

use super::*;

/// Decodes `input` fed as `pieces`; returns the body and the bytes consumed, or the error.
fn decode_pieces(pieces: &[&[u8]], max_body: usize) -> Result<(Vec<u8>, usize, bool), HttpError> {
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut consumed = 0;
    for piece in pieces {
        let r = d.decode(piece, &mut out, max_body)?;
        consumed += r.consumed;
        if r.done {
            assert!(d.is_done());
            assert_eq!(d.body_len(), out.len() as u64);
            return Ok((out, consumed, true));
        }
        assert_eq!(
            r.consumed,
            piece.len(),
            "an unfinished body takes all input"
        );
    }
    Ok((out, consumed, false))
}

/// `Ok((body, consumed))` for a complete body; the same must come out of every split.
fn check(input: impl AsRef<[u8]>, expected: Result<(&str, usize), HttpError>) {
    check_max(input, 1 << 20, expected);
}

fn check_max(input: impl AsRef<[u8]>, max_body: usize, expected: Result<(&str, usize), HttpError>) {
    let input = input.as_ref();
    let expected = expected.map(|(body, consumed)| (body.as_bytes().to_vec(), consumed, true));
    let whole = decode_pieces(&[input], max_body);
    assert_eq!(whole, expected, "{:?}", String::from_utf8_lossy(input));
    for cut in 0..=input.len() {
        let (a, b) = input.split_at(cut);
        assert_eq!(decode_pieces(&[a, b], max_body), expected, "split at {cut}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(decode_pieces(&bytes, max_body), expected, "byte by byte");
}

fn bad(why: &'static str) -> Result<(&'static str, usize), HttpError> {
    Err(HttpError::BadRequest(why))
}

#[test]
fn decodes_chunks_and_stops_at_the_end() {
    check(
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        Ok(("hello world", 26)),
    );
    check("0\r\n\r\n", Ok(("", 5)));
    check(
        "A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n",
        Ok(("0123456789abcdefghij", 35)),
    );
    // Leading zeros within the 16-digit bound are plain hex.
    check("0005\r\nhello\r\n0000\r\n\r\n", Ok(("hello", 21)));
    // The next pipelined request is left alone.
    check("1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n", Ok(("x", 11)));
}

#[test]
fn incomplete_bodies_wait_for_more() {
    for input in [
        "",
        "5",
        "5\r",
        "5\r\nhel",
        "5\r\nhello",
        "5\r\nhello\r",
        "5\r\nhello\r\n0\r\n",
        "0\r\nX: y\r\n",
    ] {
        assert_eq!(
            decode_pieces(&[input.as_bytes()], 100).map(|(_, c, done)| (c, done)),
            Ok((input.len(), false)),
            "{input:?}"
        );
    }
}

#[test]
fn a7_chunk_size_abuse_rejected() {
    check("0_2e\r\n\r\n", bad("invalid chunk size"));
    check("0x0\r\n\r\n", bad("invalid chunk size"));
    check("-0\r\n\r\n", bad("invalid chunk size"));
    check("+1\r\nx\r\n0\r\n\r\n", bad("invalid chunk size"));
    check(
        "1these-bytes-are-not-hex\r\nx\r\n0\r\n\r\n",
        bad("invalid chunk size"),
    );
    check(" 0\r\n\r\n", bad("invalid chunk size"));
    check("0 \r\n\r\n", bad("invalid chunk size"));
    check("0\t\r\n\r\n", bad("invalid chunk size"));
    check("1 ;ext\r\nx\r\n0\r\n\r\n", bad("invalid chunk size"));
    check("\r\n\r\n", bad("invalid chunk size"));
    check("\r\nx\r\n0\r\n\r\n", bad("invalid chunk size"));
    check("FFFFFFFFFFFFFFFFFF\r\n", bad("chunk size overflows"));
    check("00000000000000000\r\n\r\n", bad("chunk size overflows"));
    check(
        "1;ext\r\r\nx\r\n0\r\n\r\n",
        bad("chunk framing without CRLF"),
    );
    check("1\nx\r\n0\r\n\r\n", bad("invalid chunk size"));
    check("1\r\nx\n0\r\n\r\n", bad("chunk framing without CRLF"));
    check("1\r\nx\r\n0\n\n", bad("invalid chunk size"));
    check("1\r\nx\r\n0\r\n\n", bad("invalid trailer field"));
    check("1\r\nx\rX0\r\n\r\n", bad("chunk framing without CRLF"));
    check("1\r\nxy\r\n0\r\n\r\n", bad("chunk framing without CRLF"));
    check("1\r\nx0\r\n\r\n", bad("chunk framing without CRLF"));
    check("1\rX", bad("chunk framing without CRLF"));
    check("\u{661}\r\n", bad("invalid chunk size"));
    // Extensions: ignored when well-formed, bounded in total, no control bytes.
    check("1;name=value;x=\"q\"\r\nx\r\n0;last\r\n\r\n", Ok(("x", 33)));
    check("1;a\nb\r\nx\r\n0\r\n\r\n", bad("invalid chunk extension"));
    check("1;a\0\r\nx\r\n0\r\n\r\n", bad("invalid chunk extension"));
    let long = format!(
        "1;{}\r\nx\r\n0\r\n\r\n",
        "e".repeat(ChunkedDecoder::DEFAULT_MAX_EXTENSION_BYTES + 1)
    );
    let mut d = ChunkedDecoder::new();
    assert_eq!(
        d.decode(long.as_bytes(), &mut Vec::new(), 100),
        Err(HttpError::BadRequest("chunk extensions too long"))
    );
    // The bound is for the whole body, so many small extensions cannot add up unchecked.
    let many = "1;abcdefghij\r\nx\r\n".repeat(200) + "0\r\n\r\n";
    let mut d = ChunkedDecoder::new();
    assert_eq!(
        d.decode(many.as_bytes(), &mut Vec::new(), 1000),
        Err(HttpError::BadRequest("chunk extensions too long"))
    );
}

#[test]
fn a8_trailers_are_discarded() {
    let body = "5\r\nhello\r\n0\r\nContent-Length: 5\r\nTransfer-Encoding: x\r\nHost: evil\r\nAuthorization: Bearer evil\r\nX-Api-Key: k\r\n\r\n";
    check(body, Ok(("hello", body.len())));
    // Malformed trailers are errors, not guesses.
    check("0\r\n bad: fold\r\n\r\n", bad("invalid trailer field"));
    check("0\r\nNo-Colon\r\n\r\n", bad("invalid trailer field"));
    check("0\r\nX : y\r\n\r\n", bad("invalid trailer field"));
    check("0\r\nX: a\0b\r\n\r\n", bad("invalid trailer field"));
    check("0\r\nX: a\nb\r\n\r\n", bad("invalid trailer field"));
    check("0\r\nX: a\r\r\n\r\n", bad("chunk framing without CRLF"));
    // Bounded: more than the trailer budget is 431.
    let big = format!("0\r\nX: {}\r\n\r\n", "v".repeat(100));
    let mut d = ChunkedDecoder::with_limits(16, 64);
    assert_eq!(
        d.decode(big.as_bytes(), &mut Vec::new(), 10),
        Err(HttpError::TrailersTooLarge)
    );
    let mut d = ChunkedDecoder::with_limits(16, 105);
    assert!(d.decode(big.as_bytes(), &mut Vec::new(), 10).unwrap().done);
}

#[test]
fn a25_body_over_the_limit_mid_stream() {
    // The oversized chunk is refused on its size line, before its data is read.
    check_max("5\r\nhello\r\n", 4, Err(HttpError::PayloadTooLarge));
    check_max(
        "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        4,
        Err(HttpError::PayloadTooLarge),
    );
    check_max("3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n", 4, Ok(("abcd", 19)));
    check_max(
        "7FFFFFFFFFFFFFFF\r\n",
        6 << 20,
        Err(HttpError::PayloadTooLarge),
    );
    check_max(
        "FFFFFFFFFFFFFFFF;x\r\n",
        1 << 30,
        Err(HttpError::PayloadTooLarge),
    );
    // The limit counts decoded bytes across calls, whatever the caller does with `out`.
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    d.decode(b"3\r\nabc\r\n", &mut out, 5).unwrap();
    out.clear();
    assert_eq!(
        d.decode(b"3\r\n", &mut out, 5),
        Err(HttpError::PayloadTooLarge)
    );
}

#[test]
fn errors_are_sticky_and_done_consumes_nothing() {
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    assert!(d.decode(b"x", &mut out, 10).is_err());
    assert_eq!(
        d.decode(b"0\r\n\r\n", &mut out, 10),
        Err(HttpError::BadRequest("invalid chunk size"))
    );

    let mut d = ChunkedDecoder::default();
    assert_eq!(
        d.decode(b"0\r\n\r\n", &mut out, 10),
        Ok(Decoded {
            consumed: 5,
            done: true
        })
    );
    assert_eq!(
        d.decode(b"more", &mut out, 10),
        Ok(Decoded {
            consumed: 0,
            done: true
        })
    );
    assert!(out.is_empty());
}
