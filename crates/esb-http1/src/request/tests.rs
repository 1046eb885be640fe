//! Request-head tests, one per codec-decidable row of the reliability checklist §7 A (named
//! `a<N>_...`), plus the shapes real clients send. Every `check` also feeds the input byte by
//! byte and requires the same answer (A24).

use super::*;
use crate::EMPTY_HEADER;

fn limits() -> Limits {
    Limits {
        max_head_bytes: 4096,
        max_headers: 20,
        max_body_bytes: 1 << 20,
        max_uri_bytes: 1024,
        underscore_headers: UnderscoreHeaders::Reject,
    }
}

/// What a test needs to know about a parsed head, owned so results of different parses compare.
#[derive(Debug, Clone, PartialEq)]
struct Summary {
    method: Method,
    target: String,
    path: String,
    query: Option<String>,
    version: Version,
    framing: BodyFraming,
    keep_alive: bool,
    expect_continue: bool,
    host: Option<String>,
    head_len: usize,
    headers: Vec<(String, Vec<u8>)>,
    nominated: Vec<String>,
}

fn parse_with(input: &[u8], limits: &Limits) -> Result<Option<Summary>, HttpError> {
    let mut scratch = [EMPTY_HEADER; 128];
    let head = parse_request_head(input, limits, &mut scratch)?;
    Ok(head.map(|h| {
        assert!(h.head_len <= input.len() && h.head_len <= limits.max_head_bytes);
        assert!(input[..h.head_len].ends_with(b"\r\n\r\n"));
        Summary {
            method: h.method,
            target: h.target.into(),
            path: h.path.into(),
            query: h.query.map(Into::into),
            version: h.version,
            framing: h.framing,
            keep_alive: h.keep_alive,
            expect_continue: h.expect_continue,
            host: h.host.map(Into::into),
            head_len: h.head_len,
            headers: h
                .headers
                .iter()
                .map(|f| (f.name.to_string(), f.value.to_vec()))
                .collect(),
            nominated: h.connection_options().map(Into::into).collect(),
        }
    }))
}

/// Parses `input` in one piece and byte by byte; both must agree. Returns the one-piece result.
fn parse_both_ways(input: &[u8], limits: &Limits) -> Result<Option<Summary>, HttpError> {
    let whole = parse_with(input, limits);
    let mut first_answer = None;
    for end in 0..=input.len() {
        match parse_with(&input[..end], limits) {
            Ok(None) => continue,
            answer => {
                first_answer = Some((end, answer));
                break;
            }
        }
    }
    match (&whole, first_answer) {
        (Ok(None), None) => {}
        (_, Some((end, answer))) => assert_eq!(
            answer, whole,
            "{input:?}: fed byte by byte, the answer after {end} bytes differs from one read"
        ),
        (_, None) => panic!("{input:?}: byte by byte never answered, one read gave {whole:?}"),
    }
    whole
}

/// `Ok(framing)` for an accepted head, `Err(error)` for a refused one.
fn check(input: impl AsRef<[u8]>, expected: Result<BodyFraming, HttpError>) {
    check_with(input, &limits(), expected);
}

fn check_with(input: impl AsRef<[u8]>, limits: &Limits, expected: Result<BodyFraming, HttpError>) {
    let input = input.as_ref();
    let got = parse_both_ways(input, limits).map(|s| s.map(|s| s.framing));
    match (&got, &expected) {
        (Ok(Some(g)), Ok(e)) if g == e => {}
        (Err(g), Err(e)) if g == e => assert!(g.must_close()),
        _ => panic!(
            "{:?}\n  got      {got:?}\n  expected {expected:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

fn partial(input: impl AsRef<[u8]>) {
    assert_eq!(parse_both_ways(input.as_ref(), &limits()), Ok(None));
}

fn head(input: impl AsRef<[u8]>) -> Summary {
    match parse_both_ways(input.as_ref(), &limits()) {
        Ok(Some(s)) => s,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input.as_ref())),
    }
}

fn bad(why: &'static str) -> Result<BodyFraming, HttpError> {
    Err(HttpError::BadRequest(why))
}

/// `POST / HTTP/1.1` with Host and the given extra header lines (each without CRLF).
fn post(lines: &[&str]) -> String {
    let mut s = String::from("POST / HTTP/1.1\r\nHost: a\r\n");
    for l in lines {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s
}

const NONE: Result<BodyFraming, HttpError> = Ok(BodyFraming::None);

// === Shapes real clients send ===

#[test]
fn browser_request_parses_every_field() {
    let input = "GET /api/items/42?expand=owner&x=%20y HTTP/1.1\r\n\
                 Host: api.example.com\r\n\
                 User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0\r\n\
                 Accept: application/json, text/plain, */*\r\n\
                 Accept-Language: en-US,en;q=0.5\r\n\
                 Accept-Encoding: gzip, deflate, br\r\n\
                 Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig\r\n\
                 Cookie: a=1; b=2\r\n\
                 Connection: keep-alive\r\n\r\nNEXT";
    let h = head(input);
    assert_eq!(h.method, Method::Get);
    assert_eq!(h.target, "/api/items/42?expand=owner&x=%20y");
    assert_eq!(h.path, "/api/items/42");
    assert_eq!(h.query.as_deref(), Some("expand=owner&x=%20y"));
    assert_eq!(h.version, Version::Http11);
    assert_eq!(h.framing, BodyFraming::None);
    assert!(h.keep_alive);
    assert!(!h.expect_continue);
    assert_eq!(h.host.as_deref(), Some("api.example.com"));
    assert_eq!(h.head_len, input.len() - 4);
    assert_eq!(h.headers.len(), 8);
    assert_eq!(
        h.headers[2],
        (
            "Accept".into(),
            b"application/json, text/plain, */*".to_vec()
        )
    );
    assert_eq!(h.nominated, ["keep-alive"]);
}

#[test]
fn post_with_length_and_utf8_values() {
    let h = head(
        "POST /fn HTTP/1.1\r\nHost: h:8443\r\nContent-Type: application/json\r\nX-Name: caf\u{e9}\r\nContent-Length: 11\r\n\r\n{\"a\":true}\n",
    );
    assert_eq!(h.framing, BodyFraming::Length(11));
    assert_eq!(h.host.as_deref(), Some("h:8443"));
    assert_eq!(h.headers[2].1, "caf\u{e9}".as_bytes());
    check(post(&["Content-Length:7"]), Ok(BodyFraming::Length(7)));
    check(post(&["Content-Length:\t7"]), Ok(BodyFraming::Length(7)));
    check(post(&["content-length: 0"]), NONE);
    check(
        post(&["Transfer-Encoding: chunked"]),
        Ok(BodyFraming::Chunked),
    );
}

#[test]
fn http10_keep_alive_rules() {
    let h = head("GET / HTTP/1.0\r\n\r\n");
    assert_eq!(
        (h.version, h.keep_alive, h.host),
        (Version::Http10, false, None)
    );
    let h = head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert!(h.keep_alive);
    let h = head("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert!(!h.keep_alive);
    let h =
        head("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n");
    assert!(!h.keep_alive);
    check(
        "POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
        Ok(BodyFraming::Length(3)),
    );

    let mut scratch = [EMPTY_HEADER; 8];
    let input = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    let h = parse_request_head(input, &limits(), &mut scratch)
        .unwrap()
        .unwrap();
    assert_eq!(h.response_connection(), Connection::KeepAliveHttp10);
    let input = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let h = parse_request_head(input, &limits(), &mut scratch)
        .unwrap()
        .unwrap();
    assert_eq!(h.response_connection(), Connection::KeepAlive);
    assert_eq!(h.header("HOST"), Some(&b"a"[..]));
    assert_eq!(h.header("x-missing"), None);
}

#[test]
fn every_served_method() {
    for m in [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Options,
    ] {
        let h = head(format!("{} /x HTTP/1.1\r\nHost: a\r\n\r\n", m.as_str()));
        assert_eq!(h.method, m);
    }
}

#[test]
fn split_target_without_decoding() {
    assert_eq!(split_target("/a/b?x=1&y"), ("/a/b", Some("x=1&y")));
    assert_eq!(split_target("/a?"), ("/a", Some("")));
    assert_eq!(split_target("/a?b?c"), ("/a", Some("b?c")));
    assert_eq!(split_target("/%2F%3F"), ("/%2F%3F", None));
}

#[test]
fn head_end_hint() {
    let req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    assert!(may_contain_full_head(req, 0));
    assert!(!may_contain_full_head(&req[..req.len() - 2], 0));
    // The terminator straddles two reads.
    assert!(may_contain_full_head(req, req.len() - 2));
    assert!(!may_contain_full_head(b"GET / HTTP/1.1\r\nHost", 0));
    assert!(may_contain_full_head(b"GET / HTTP/1.1\n\n", 10));
    assert!(!may_contain_full_head(b"", 5));
    // Whenever a parse finds a complete head, the hint said so.
    for cut in 0..=req.len() {
        let mut scratch = [EMPTY_HEADER; 4];
        if let Ok(Some(_)) = parse_request_head(&req[..cut], &limits(), &mut scratch) {
            assert!(may_contain_full_head(&req[..cut], cut.saturating_sub(1)));
        }
    }
}

#[test]
fn empty_and_leading_empty_lines() {
    partial("");
    partial("\r\n");
    partial("\r\n\r\n");
    // RFC 9112 §2.2: a server SHOULD ignore empty lines before the request line.
    let h = head("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(h.head_len, 29);
    partial("GET / HTTP/1.1\r\nHost: a\r\n");
}

// === Checklist §7 A ===

#[test]
fn a1_cl_and_te_rejected() {
    let both = bad("content-length with transfer-encoding");
    check(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 23\r\nTransfer-Encoding: chunked\r\n\r\nD\r\nhello-bananas\r\n0\r\n\r\n",
        both,
    );
    check(
        post(&["Transfer-Encoding: chunked", "Content-Length: 5"]),
        both,
    );
    check(
        post(&["Content-Length: 0", "Transfer-Encoding: chunked"]),
        both,
    );
    // Even when the coding is one esb would refuse anyway, the double framing is named.
    check(
        post(&["Content-Length: 5", "Transfer-Encoding: gzip"]),
        both,
    );
}

#[test]
fn a2_differing_content_lengths_rejected() {
    let repeated = bad("repeated content-length");
    check(post(&["Content-Length: 1", "Content-Length: 0"]), repeated);
    check(post(&["Content-Length: 0", "Content-Length: 1"]), repeated);
    check(
        post(&["Content-Length: 1", "X: y", "content-length: 2"]),
        repeated,
    );
}

#[test]
fn a3_identical_content_lengths_rejected() {
    // Decision: repeated or listed lengths are refused even when they agree (see
    // `parse_request_head`), so no pair of parsers can read them differently.
    check(
        post(&["Content-Length: 5", "Content-Length: 5"]),
        bad("repeated content-length"),
    );
    check(
        post(&["Content-Length: 5, 5"]),
        bad("malformed content-length"),
    );
    check(
        post(&["Content-Length: 5,5"]),
        bad("malformed content-length"),
    );
}

#[test]
fn a4_malformed_content_length_rejected() {
    for v in [
        "+1_0",
        "+3",
        "-48",
        "-1",
        "0x10",
        "010",
        "1Z",
        "1 0",
        "1_0",
        "99999999999999999999999",
        "18446744073709551616",
        "5;",
        "\"5\"",
    ] {
        check(
            post(&[&format!("Content-Length: {v}")]),
            bad("malformed content-length"),
        );
    }
    // Empty, and whitespace beyond the single optional SP/HTAB after the colon.
    check(post(&["Content-Length:"]), bad("malformed content-length"));
    check(post(&["Content-Length: "]), bad("malformed content-length"));
    check(
        post(&["Content-Length:  5"]),
        bad("malformed content-length"),
    );
    check(
        post(&["Content-Length: \t5"]),
        bad("malformed content-length"),
    );
    check(
        post(&["Content-Length: 5 "]),
        bad("malformed content-length"),
    );
    check(
        post(&["Content-Length: 5\t"]),
        bad("malformed content-length"),
    );
    // A negative length must not be read as "until close" or loop: it is refused like the rest.
    check(
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        bad("malformed content-length"),
    );
}

#[test]
fn a5_transfer_encoding_variants() {
    check(
        post(&["Transfer-Encoding: chunked"]),
        Ok(BodyFraming::Chunked),
    );
    check(
        post(&["Transfer-Encoding: Chunked"]),
        Ok(BodyFraming::Chunked),
    );
    check(
        post(&["transfer-encoding:CHUNKED"]),
        Ok(BodyFraming::Chunked),
    );
    for list in [
        "chunked, chunked",
        "gzip, chunked",
        "chunked, gzip",
        ",chunked",
        "chunked,",
        "chunked;a=b",
    ] {
        assert_eq!(
            parse_both_ways(
                post(&[&format!("Transfer-Encoding: {list}")]).as_bytes(),
                &limits()
            )
            .map_err(|e| e.status()),
            Err(400),
            "{list}"
        );
    }
    let not_impl = Err(HttpError::NotImplemented(
        "transfer coding other than chunked",
    ));
    check(post(&["Transfer-Encoding: gzip"]), not_impl);
    check(post(&["Transfer-Encoding: identity"]), not_impl);
    check(post(&["Transfer-Encoding: xchunked"]), not_impl);
    check(
        post(&["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"]),
        bad("repeated transfer-encoding"),
    );
    check(
        post(&["Transfer-Encoding: gzip", "Transfer-Encoding: chunked"]),
        bad("repeated transfer-encoding"),
    );
    check(
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        bad("transfer-encoding on HTTP/1.0"),
    );
    check(
        "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        bad("transfer-encoding on HTTP/1.0"),
    );
}

#[test]
fn a6_transfer_encoding_obfuscation_rejected() {
    // defparam/smuggler's byte list, at every place it puts them, next to a Content-Length:
    // whatever happens, the body must neither be read as chunked nor by the length.
    const BYTES: [u8; 13] = [
        0x01, 0x04, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1f, 0x20, 0x7f, 0xa0, 0xff,
    ];
    let mut cases = 0;
    for b in BYTES {
        let b = [b];
        let te = |parts: &[&[u8]]| -> Vec<u8> {
            let mut s = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n".to_vec();
            for p in parts {
                s.extend_from_slice(p);
            }
            s.extend_from_slice(b"\r\n\r\nhello");
            s
        };
        for input in [
            te(&[&b, b"Transfer-Encoding: chunked"]),
            te(&[b"Transfer-Encoding", &b, b": chunked"]),
            te(&[b"Transfer-Encoding:", &b, b"chunked"]),
            te(&[b"Transfer-Encoding: ", &b, b"chunked"]),
            te(&[b"Transfer-Encoding: chunked", &b]),
            te(&[b"Transfer-Encoding: chunk", &b, b"ed"]),
            te(&[b"Transfer-", &b, b"Encoding: chunked"]),
        ] {
            // `Transfer-Encoding:\tchunked` / `Transfer-Encoding: chunked` (one OWS) is the
            // plain header, and with the CL present it is still refused as double framing.
            let got = parse_both_ways(&input, &limits());
            assert!(
                matches!(&got, Err(e) if e.status() == 400),
                "{:?} → {got:?}",
                String::from_utf8_lossy(&input)
            );
            cases += 1;
        }
    }
    assert_eq!(cases, 91);
    check(
        post(&["Transfer-Encoding : chunked"]),
        bad("invalid header name"),
    );
    check(
        "POST / HTTP/1.1\r\n\tTransfer-Encoding: chunked\r\nHost: a\r\n\r\n",
        bad("invalid header name"),
    );
    check(
        "POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: a\r\n\r\n",
        bad("invalid header name"),
    );
}

#[test]
fn a10_cl0_extra_bytes_start_the_next_request() {
    let input = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\nX";
    let h = head(input);
    assert_eq!(
        (h.framing, h.head_len),
        (BodyFraming::None, input.len() - 1)
    );
    // The `X` is the start of the next request, not body: alone it is incomplete, and glued to
    // the probe it is an unknown method, which closes the connection.
    let rest = &input[h.head_len..];
    partial(rest);
    let mut next = rest.to_vec();
    next.extend_from_slice(b"GET /probe HTTP/1.1\r\nHost: x\r\n\r\n");
    check(next, Err(HttpError::NotImplemented("unknown method")));
}

#[test]
fn a11_get_with_body_is_framed_by_its_length() {
    let input = b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n1234567890GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
    let first = head(input);
    assert_eq!(first.framing, BodyFraming::Length(10));
    let second = head(&input[first.head_len + 10..]);
    assert_eq!(second.path, "/next");
}

#[test]
fn a12_expect_continue_is_reported_not_answered() {
    let h = head(post(&["Expect: 100-continue", "Content-Length: 1000000"]));
    assert!(h.expect_continue);
    assert_eq!(h.framing, BodyFraming::Length(1_000_000));
    assert!(head(post(&["Expect: 100-Continue"])).expect_continue);
    assert!(!head(post(&["Expect: something-else"])).expect_continue);
    // HTTP/1.0 clients cannot use it (RFC 9110 §10.1.1).
    assert!(!head("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expect_continue);
}

#[test]
fn a13_pipelined_heads_parse_in_order() {
    let input = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nPOST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nokGET /4";
    let mut at = 0;
    let mut paths = Vec::new();
    let mut scratch = [EMPTY_HEADER; 8];
    while let Some(h) = parse_request_head(&input[at..], &limits(), &mut scratch).unwrap() {
        paths.push(h.path.to_string());
        at += h.head_len;
        if let BodyFraming::Length(n) = h.framing {
            at += n as usize;
        }
    }
    assert_eq!(paths, ["/1", "/2", "/3"]);
    assert_eq!(&input[at..], b"GET /4");

    // Two valid, then an invalid one: the first two are served, the third refused.
    let input = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
    let first = head(input);
    let second = head(&input[first.head_len..]);
    assert_eq!(second.path, "/2");
    check(
        &input[first.head_len + second.head_len..],
        bad("repeated host"),
    );
}

#[test]
fn a14_bare_lf_and_cr_rejected() {
    check("GET / HTTP/1.1\nHost: a\n\n", bad("bare CR or LF"));
    check("GET / HTTP/1.1\r\nHost: a\n\r\n", bad("bare CR or LF"));
    check("GET / HTTP/1.1\r\nHost: a\r\n\n", bad("bare CR or LF"));
    check("GET / HTTP/1.1\nHost: a\r\n\r\n", bad("bare CR or LF"));
    check("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", bad("bare CR or LF"));
    check(
        "GET / HTTP/1.1\r\nHost: a\r\nVisible: :/\rSmuggled: :)\r\n\r\n",
        bad("invalid byte in header value"),
    );
    check(
        "GET / HTTP/1.1\r\nHost: a\r\n\rX",
        bad("invalid line ending"),
    );
    check(
        "GET / HTTP/1.1\r\rHost: a\r\n\r\n",
        bad("invalid line ending"),
    );
    check(
        "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("invalid request line"),
    );
    check(
        "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("invalid line ending"),
    );
}

#[test]
fn a15_nul_control_and_8bit_bytes_rejected() {
    check(
        b"GET / HTTP/1.1\r\nHost: a\x00.evil\r\n\r\n",
        bad("invalid byte in header value"),
    );
    check(
        b"GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("invalid request line"),
    );
    check(
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
        bad("invalid byte in header value"),
    );
    for c in (0u8..0x20).chain([0x7f]) {
        if c == b'\t' {
            continue;
        }
        let mut name = b"GET / HTTP/1.1\r\nHost: a\r\nX".to_vec();
        name.extend_from_slice(&[c, b'Y', b':', b' ', b'1', b'\r', b'\n', b'\r', b'\n']);
        let got = parse_both_ways(&name, &limits());
        assert!(
            matches!(&got, Err(e) if e.status() == 400),
            "name byte {c:#x}: {got:?}"
        );
        if c == b'\r' || c == b'\n' {
            continue;
        }
        let mut value = b"GET / HTTP/1.1\r\nHost: a\r\nX: a".to_vec();
        value.extend_from_slice(&[c, b'b', b'\r', b'\n', b'\r', b'\n']);
        check(&value, bad("invalid byte in header value"));
    }
    check(
        b"GET / HTTP/1.1\r\nHost: a\r\nX\xef: 1\r\n\r\n",
        bad("invalid header name"),
    );
    // Lone obs-text bytes (not UTF-8) are refused, never trimmed as whitespace.
    check(
        b"GET / HTTP/1.1\r\nHost: a\r\nX: \xa0a\r\n\r\n",
        bad("header value is not UTF-8"),
    );
    check(
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x85\r\n\r\n",
        bad("header value is not UTF-8"),
    );
    check(
        b"GET / HTTP/1.1\r\nHost: a\r\nX: \xff\r\n\r\n",
        bad("header value is not UTF-8"),
    );
    // A UTF-8 NBSP is data: kept, not trimmed.
    let h = head("GET / HTTP/1.1\r\nHost: a\r\nX: \u{a0}a\u{a0}\r\n\r\n");
    assert_eq!(h.headers[1].1, "\u{a0}a\u{a0}".as_bytes());
    check(
        b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("invalid byte in request target"),
    );
    check(
        b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("invalid request line"),
    );
}

#[test]
fn a16_header_name_and_colon_edge_cases() {
    check(post(&["Content-Length : 5"]), bad("invalid header name"));
    check(post(&[": value"]), bad("invalid header name"));
    check(post(&["Header-no-colon"]), bad("invalid header name"));
    check(post(&["Content-Length 10"]), bad("invalid header name"));
    check(post(&["X-A: 1", " folded"]), bad("invalid header name"));
    check(post(&["X-A: 1", "\tfolded"]), bad("invalid header name"));
    check(
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-\r\nEncoding: chunked\r\n\r\n",
        bad("invalid header name"),
    );
    check(post(&["X(A): 1"]), bad("invalid header name"));
    check(post(&["X-Empty:"]), NONE);
}

#[test]
fn a17_request_line() {
    check(
        "G=\":<>(e),[T];?\" /get HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("invalid request line"),
    );
    check(
        "GET ! HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("request target is not origin-form"),
    );
    check(
        "GET /test HTTP/1.32\r\nHost: a\r\n\r\n",
        bad("invalid http version"),
    );
    check(
        "GET /test HTTP/4294967295.255\r\nHost: a\r\n\r\n",
        bad("invalid http version"),
    );
    check(
        "GET /test HTTP/1.1.1\r\nHost: a\r\n\r\n",
        bad("invalid line ending"),
    );
    check(
        "GET /test HTTP/1.10\r\nHost: a\r\n\r\n",
        bad("invalid line ending"),
    );
    check(
        "GET /test http/1.1\r\nHost: a\r\n\r\n",
        bad("invalid http version"),
    );
    check(
        "GET /test HTTP/2.0\r\nHost: a\r\n\r\n",
        Err(HttpError::VersionNotSupported),
    );
    check(
        "GET /test HTTP/1.2\r\nHost: a\r\n\r\n",
        Err(HttpError::VersionNotSupported),
    );
    check(
        "GET /test HTTP/0.9\r\n\r\n",
        Err(HttpError::VersionNotSupported),
    );
    check("GET /test\r\n\r\n", bad("invalid request line"));
    check(
        b"\x00 / HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("invalid request line"),
    );
    check(
        "GET /\nHTTP/1.1\r\nHost: a\r\n\r\n",
        bad("invalid request line"),
    );
    check(
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("invalid request line"),
    );
    check(
        "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
        bad("invalid line ending"),
    );
    check(
        "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("asterisk-form target"),
    );
    check(
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("asterisk-form target"),
    );
    check(
        "OPTIONS */test HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("request target is not origin-form"),
    );
    check(
        "GET admin HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("request target is not origin-form"),
    );
    check(
        "GET haproxy.org:80 HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("request target is not origin-form"),
    );
    check(
        "GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("invalid byte in request target"),
    );
    check(
        "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
        Err(HttpError::MethodNotAllowed),
    );
    check(
        "CONNECT host HTTP/1.1\r\nHost: h\r\n\r\n",
        Err(HttpError::MethodNotAllowed),
    );
    check(
        "TRACE / HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(HttpError::MethodNotAllowed),
    );
    check(
        "get / HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(HttpError::NotImplemented("unknown method")),
    );
    check(
        "PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(HttpError::NotImplemented("unknown method")),
    );
    assert_eq!(
        HttpError::MethodNotAllowed.allow(),
        Some("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
    );
}

#[test]
fn a17_absolute_form_only_when_it_matches_host() {
    let h = head("GET http://api.example.com/a/b?c=1 HTTP/1.1\r\nHost: API.example.com\r\n\r\n");
    assert_eq!(
        (h.target.as_str(), h.path.as_str(), h.query.as_deref()),
        ("/a/b?c=1", "/a/b", Some("c=1"))
    );
    assert_eq!(h.host.as_deref(), Some("API.example.com"));
    let h = head("GET HTTPS://a:8443 HTTP/1.1\r\nHost: a:8443\r\n\r\n");
    assert_eq!((h.target.as_str(), h.path.as_str()), ("/", "/"));
    // HTTP/1.0 without Host: the authority is the host.
    let h = head("GET http://a/x HTTP/1.0\r\n\r\n");
    assert_eq!(h.host.as_deref(), Some("a"));
    check(
        "GET http://evil/admin HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("absolute-form target does not match host"),
    );
    check(
        "GET http://a:81/ HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("absolute-form target does not match host"),
    );
    check(
        "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("invalid authority in absolute-form target"),
    );
    check(
        "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("invalid authority in absolute-form target"),
    );
    check(
        "GET http://a?x HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("absolute-form target without a path"),
    );
    check(
        "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
        bad("request target is not origin-form"),
    );
}

#[test]
fn a18_host_header() {
    check("GET / HTTP/1.1\r\n\r\n", bad("missing host"));
    check(
        "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        bad("repeated host"),
    );
    check(
        "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
        bad("repeated host"),
    );
    for v in ["a, b", "u@a", "a/b", "a b", "a:", "a:x"] {
        check(
            format!("GET / HTTP/1.1\r\nHost: {v}\r\n\r\n"),
            bad("invalid host"),
        );
    }
    check("GET / HTTP/1.1\r\nHost:\r\n\r\n", bad("invalid host"));
    check("GET / HTTP/1.1\r\nHost: \r\n\r\n", bad("invalid host"));
    check(
        "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
        bad("repeated host"),
    );
    assert_eq!(
        head("GET / HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n")
            .host
            .as_deref(),
        Some("[::1]:8443")
    );
}

#[test]
fn a19_connection_nominations_are_listed() {
    let h = head(post(&["Connection: close, X-Api-Key"]));
    assert!(!h.keep_alive);
    assert_eq!(h.nominated, ["close", "X-Api-Key"]);
    let h = head(post(&[
        "Connection: X-Amzn-Trace-Id, X-Forwarded-For",
        "Connection: ,Upgrade,",
    ]));
    assert!(h.keep_alive);
    assert_eq!(
        h.nominated,
        ["X-Amzn-Trace-Id", "X-Forwarded-For", "Upgrade"]
    );

    let mut scratch = [EMPTY_HEADER; 8];
    let input = post(&["Connection: keep-alive, x-api-key"]);
    let h = parse_request_head(input.as_bytes(), &limits(), &mut scratch)
        .unwrap()
        .unwrap();
    assert!(h.is_nominated("X-API-Key"));
    assert!(!h.is_nominated("authorization"));

    check(
        post(&["Connection: Host"]),
        bad("connection nominates a framing field"),
    );
    check(
        post(&["Connection: close, content-length"]),
        bad("connection nominates a framing field"),
    );
    check(
        post(&["Connection: Transfer-Encoding"]),
        bad("connection nominates a framing field"),
    );
    check(post(&["Connection: a b"]), bad("malformed connection"));
    check(
        post(&["Connection: \"close\""]),
        bad("malformed connection"),
    );
}

#[test]
fn a21_underscore_header_names_rejected() {
    check(post(&["X_Api_Key: k"]), bad("underscore in header name"));
    check(
        post(&["X-Api-Key: k", "X_Api_Key: k"]),
        bad("underscore in header name"),
    );
    let allow = Limits {
        underscore_headers: UnderscoreHeaders::Allow,
        ..limits()
    };
    check_with(post(&["X_Api_Key: k"]), &allow, NONE);
    let h = parse_with(post(&["X-Api-Key: a", "X_Api_Key: b"]).as_bytes(), &allow)
        .unwrap()
        .unwrap();
    // Distinct names, never folded together.
    assert_eq!(h.headers[1], ("X-Api-Key".into(), b"a".to_vec()));
    assert_eq!(h.headers[2], ("X_Api_Key".into(), b"b".to_vec()));
}

#[test]
fn a22_upgrade_is_ignored() {
    let input = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n";
    let h = head(input);
    assert_eq!((h.framing, h.keep_alive), (BodyFraming::None, true));
    assert_eq!(h.nominated, ["Upgrade"]);
    // The bytes after the head are the next request, not a tunnel.
    assert_eq!(head(&input[h.head_len..]).path, "/next");
    check(
        post(&[
            "Upgrade: h2c",
            "Connection: Upgrade, HTTP2-Settings",
            "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA",
        ]),
        NONE,
    );
}

#[test]
fn a23_oversized_heads() {
    let defaults = Limits::default();
    let line = |target_len: usize| {
        format!(
            "GET /{} HTTP/1.1\r\nHost: a\r\n\r\n",
            "a".repeat(target_len - 1)
        )
    };
    // Request line of 9 KB → 414 (default target limit 8 KiB), at exactly the limit → fine.
    check_with(line(9 * 1024), &defaults, Err(HttpError::UriTooLong));
    check_with(line(8 * 1024), &defaults, NONE);
    check_with(line(8 * 1024 + 1), &defaults, Err(HttpError::UriTooLong));
    // One 64 KB header → 431.
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "b".repeat(64 * 1024)
    );
    check_with(&big, &defaults, Err(HttpError::HeadTooLarge));
    // 100 fields are fine, 101 and 1000 are not.
    let fields = |n: usize| {
        let mut s = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 1..n {
            s.push_str(&format!("X-{i}: v\r\n"));
        }
        s + "\r\n"
    };
    let mut scratch = [EMPTY_HEADER; 100];
    assert!(matches!(
        parse_request_head(fields(100).as_bytes(), &defaults, &mut scratch),
        Ok(Some(_))
    ));
    check_with(fields(101), &defaults, Err(HttpError::TooManyHeaders));
    check_with(fields(1000), &defaults, Err(HttpError::TooManyHeaders));
    // A scratch smaller than the limit is the limit.
    let mut small = [EMPTY_HEADER; 10];
    assert_eq!(
        parse_request_head(fields(11).as_bytes(), &defaults, &mut small).err(),
        Some(HttpError::TooManyHeaders)
    );
    // Total head 1 MB (many small fields, under the count limit per scan window) → 431.
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nCookie: {}\r\n\r\n",
        "c=1; ".repeat(200_000)
    );
    assert_eq!(
        parse_with(huge.as_bytes(), &defaults),
        Err(HttpError::HeadTooLarge)
    );
    // Exactly at the head limit is accepted; one byte more is not.
    let exact = |total: usize| {
        let fixed = "GET / HTTP/1.1\r\nHost: a\r\nX: \r\n\r\n".len();
        format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "x".repeat(total - fixed)
        )
    };
    check(exact(4096), NONE);
    check(exact(4097), Err(HttpError::HeadTooLarge));
}

#[test]
fn a24_fragmented_heads_hit_the_same_limits() {
    // `check` feeds every input byte by byte; here the hyper #4081 shape: 7 KB then 5 KB.
    let defaults = Limits {
        max_head_bytes: 8 * 1024,
        ..Limits::default()
    };
    let input = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "b".repeat(12 * 1024)
    );
    let bytes = input.as_bytes();
    let mut scratch = [EMPTY_HEADER; 100];
    assert!(matches!(
        parse_request_head(&bytes[..7 * 1024], &defaults, &mut scratch),
        Ok(None)
    ));
    assert_eq!(
        parse_request_head(bytes, &defaults, &mut scratch).err(),
        Some(HttpError::HeadTooLarge)
    );
    check_with(bytes, &defaults, Err(HttpError::HeadTooLarge));
    // Driven by the head-end hint, as the IO side does: same answer.
    let mut buf = Vec::new();
    let mut answer = None;
    for piece in bytes.chunks(1000) {
        let before = buf.len();
        buf.extend_from_slice(piece);
        if may_contain_full_head(&buf, before) || buf.len() > defaults.max_head_bytes {
            answer = Some(parse_request_head(&buf, &defaults, &mut scratch).map(|h| h.is_some()));
            break;
        }
    }
    assert_eq!(answer, Some(Err(HttpError::HeadTooLarge)));
}

#[test]
fn a25_body_too_large_is_refused_before_reading_it() {
    let defaults = Limits::default();
    let cl = |n: u64| format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {n}\r\n\r\n");
    check_with(cl(7_000_000), &defaults, Err(HttpError::PayloadTooLarge));
    check_with(cl(11_000_000), &defaults, Err(HttpError::PayloadTooLarge));
    check_with(
        cl((1 << 63) - 1),
        &defaults,
        Err(HttpError::PayloadTooLarge),
    );
    check_with(cl(u64::MAX), &defaults, Err(HttpError::PayloadTooLarge));
    check_with(
        cl(6 * 1024 * 1024),
        &defaults,
        Ok(BodyFraming::Length(6 * 1024 * 1024)),
    );
    check_with(
        cl(6 * 1024 * 1024 + 1),
        &defaults,
        Err(HttpError::PayloadTooLarge),
    );
}

#[test]
fn a34_garbage_and_http2_preface() {
    check(
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        bad("HTTP/2 preface on an HTTP/1.1 port"),
    );
    check(" \r\n\r\n", bad("invalid request line"));
    check("\t\r\n", bad("invalid request line"));
    check(
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        bad("invalid request line"),
    );
    check("SSH-2.0-OpenSSH_9.6\r\n", bad("invalid request line"));
    partial("");
}
