//! Field-level syntax shared by the request and response sides: tokens, lists, Content-Length,
//! Transfer-Encoding, Host.
//!
//! Hot path: called for every header of every request; no allocation.

use crate::HttpError;

/// `tchar` of RFC 9110 §5.6.2.
pub(crate) fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
        | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
        | b'`' | b'|' | b'~')
}

pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// A field value byte we are willing to write or accept: HTAB, SP, VCHAR, obs-text. Everything
/// else (CR, LF, NUL, other controls, DEL) would split or truncate the message somewhere.
pub(crate) fn is_field_vchar(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80
}

/// Splits a `#rule` list on commas, trimming optional whitespace; empty elements are kept so
/// callers can decide whether `a,,b` is acceptable.
pub(crate) fn list_items(v: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    v.split(|&b| b == b',').map(trim_ows)
}

pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// `Content-Length = 1*DIGIT`, read strictly: digits only (no sign, no `0x`, no `_`, no list, no
/// inner whitespace), no leading zero unless the value is `0`, and no overflow. A general integer
/// parser accepted `+3` in hyper (CVE-2021-32715); this one has no such corner.
pub(crate) fn parse_content_length(v: &[u8]) -> Option<u64> {
    match v {
        [] => None,
        [b'0'] => Some(0),
        [b'0', ..] => None,
        _ => v.iter().try_fold(0u64, |acc, &b| {
            if !b.is_ascii_digit() {
                return None;
            }
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        }),
    }
}

/// Outcome of reading a `Transfer-Encoding` value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TransferCoding {
    Chunked,
    /// Well-formed, but some coding other than a single final `chunked` (gzip, identity, ...).
    Unsupported,
}

/// Reads `Transfer-Encoding` strictly for requests: exactly one coding, `chunked`, compared
/// case-insensitively (RFC 9112 §7: coding names are case-insensitive tokens). Lists are refused
/// even when they end in `chunked`: nothing esb talks to needs one, and every smuggling variant in
/// the checklist (A5) is a list or a near-miss of `chunked`.
pub(crate) fn request_transfer_coding(v: &[u8]) -> Result<TransferCoding, HttpError> {
    let mut items = 0usize;
    let mut chunked_at = None;
    for (i, item) in list_items(v).enumerate() {
        if !is_token(item) {
            return Err(HttpError::BadRequest("malformed transfer-encoding"));
        }
        if item.eq_ignore_ascii_case(b"chunked") {
            if chunked_at.is_some() {
                return Err(HttpError::BadRequest("chunked applied twice"));
            }
            chunked_at = Some(i);
        }
        items += 1;
    }
    match (items, chunked_at) {
        (1, Some(_)) => Ok(TransferCoding::Chunked),
        // `chunked` present but not alone: either not last (the message cannot be framed) or
        // combined with another coding we would have to undo; both are classic smuggling shapes.
        (_, Some(_)) => Err(HttpError::BadRequest("transfer-encoding list with chunked")),
        _ => Ok(TransferCoding::Unsupported),
    }
}

/// Validates a `Host` value (RFC 9110 §7.2: `uri-host [ ":" port ]`), more narrowly than the URI
/// grammar: a reg-name may only use letters, digits, `-`, `.`, `_`, `~`, and an IP literal only
/// hex digits, `:` and `.`. Userinfo, paths, lists, percent-encoding and sub-delims are refused:
/// no real host name needs them and each has been used to confuse routing.
pub(crate) fn is_valid_host(h: &[u8]) -> bool {
    let (host, port) = match h {
        [b'[', rest @ ..] => {
            let Some(close) = rest.iter().position(|&b| b == b']') else {
                return false;
            };
            let literal = &rest[..close];
            if literal.is_empty()
                || !literal
                    .iter()
                    .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            {
                return false;
            }
            match &rest[close + 1..] {
                [] => return true,
                [b':', port @ ..] => (&[][..], Some(port)),
                _ => return false,
            }
        }
        _ => match h.iter().position(|&b| b == b':') {
            Some(colon) => (&h[..colon], Some(&h[colon + 1..])),
            None => (h, None),
        },
    };
    let host_ok = host
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        && (h.first() == Some(&b'[') || !host.is_empty());
    let port_ok = match port {
        None => true,
        // Digits only, no leading zero, at most 65535 (the Content-Length reader is that).
        Some(p) => p.len() <= 5 && parse_content_length(p).is_some_and(|n| n <= 65535),
    };
    host_ok && port_ok
}

/// Whether `name` is a hop-by-hop header (RFC 9110 §7.6.1 plus the de-facto ones) that must never
/// be forwarded into an event or copied from a function's response. Headers nominated in the
/// request's `Connection` field are hop-by-hop too: see [`crate::RequestHead::is_nominated`].
pub fn is_hop_by_hop(name: &str) -> bool {
    const HOP: [&str; 9] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ];
    HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_accepts_only_plain_decimal() {
        let check = |v: &str, want: Option<u64>| {
            assert_eq!(parse_content_length(v.as_bytes()), want, "{v:?}");
        };
        check("0", Some(0));
        check("5", Some(5));
        check("18446744073709551615", Some(u64::MAX));
        for bad in [
            "",
            "+1",
            "+3",
            "-1",
            "-48",
            "0x10",
            "010",
            "00",
            "1Z",
            " 5",
            "5 ",
            "1 0",
            "1_0",
            "+1_0",
            "5, 5",
            "5,5",
            "99999999999999999999999",
            "18446744073709551616",
            "\u{661}",
        ] {
            check(bad, None);
        }
    }

    #[test]
    fn transfer_coding_is_exactly_chunked() {
        use TransferCoding::*;
        let check = |v: &str, want: Result<TransferCoding, u16>| {
            let got = request_transfer_coding(v.as_bytes()).map_err(|e| e.status());
            assert_eq!(got, want, "{v:?}");
        };
        check("chunked", Ok(Chunked));
        check("Chunked", Ok(Chunked));
        check("CHUNKED", Ok(Chunked));
        check("gzip", Ok(Unsupported));
        check("identity", Ok(Unsupported));
        check("xchunked", Ok(Unsupported));
        check("chunked, chunked", Err(400));
        check("gzip, chunked", Err(400));
        check("chunked, gzip", Err(400));
        check(",chunked", Err(400));
        check("chunked,", Err(400));
        check("chunked;q=1", Err(400));
        check("\"chunked\"", Err(400));
        check("", Err(400));
    }

    #[test]
    fn host_values() {
        for good in [
            "a",
            "example.com",
            "example.com:443",
            "EXAMPLE.com:8080",
            "127.0.0.1",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8443",
            "my_host",
            "h:0",
        ] {
            assert!(is_valid_host(good.as_bytes()), "{good:?}");
        }
        for bad in [
            "",
            "a, b",
            "a,b",
            "user@host",
            "host/path",
            "host:",
            "host:abc",
            "host:65536",
            "host:123456",
            ":80",
            "[::1",
            "[]",
            "[::1]x",
            "a b",
            "h%41",
            "a\u{a0}",
            "a:1:2",
        ] {
            assert!(!is_valid_host(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn hop_by_hop_names() {
        assert!(is_hop_by_hop("Connection"));
        assert!(is_hop_by_hop("TE"));
        assert!(is_hop_by_hop("upgrade"));
        assert!(!is_hop_by_hop("x-api-key"));
        assert!(!is_hop_by_hop("content-length"));
    }
}
