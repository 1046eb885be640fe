//! The SigV4 canonical request: method, double-encoded normalised path, sorted strictly encoded
//! query, canonical headers, signed header list, payload hash.
//! Hot path: built once per signed request, into one buffer.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, percent_encode};

use crate::{Request, SigV4Error};

/// Everything but the unreserved characters `A-Z a-z 0-9 - _ . ~` is encoded.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// As [`STRICT`], keeping `/` (path separators).
const PATH: &AsciiSet = &STRICT.remove(b'/');

/// The canonical URI for a non-S3 service: `path` as received, dot segments and empty segments
/// removed (botocore's `remove_dot_segments`), then percent-encoded once more.
pub fn canonical_uri(path: &str) -> String {
    let segments = path.split('/').fold(Vec::new(), |mut out, seg| {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
        out
    });
    let mut normal = String::with_capacity(path.len() + 1);
    normal.push('/');
    normal.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        normal.push('/');
    }
    percent_encode(normal.as_bytes(), PATH).to_string()
}

/// The canonical query string: each name and value decoded, re-encoded with [`STRICT`], sorted by
/// name then value, joined with `&`. A parameter without `=` has an empty value.
pub fn canonical_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let encode = |s: &str| {
        let raw: Vec<u8> = percent_decode_str(s).collect();
        percent_encode(&raw, STRICT).to_string()
    };
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (encode(k), encode(v))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value with leading/trailing whitespace removed and inner runs collapsed to one space.
fn trim_all(value: &[u8], out: &mut Vec<u8>) {
    let mut first = true;
    for word in value
        .split(|b| b.is_ascii_whitespace() || *b == 0x0b)
        .filter(|w| !w.is_empty())
    {
        if !first {
            out.push(b' ');
        }
        out.extend_from_slice(word);
        first = false;
    }
}

pub(crate) fn canonical_request(
    req: &Request<'_>,
    signed_headers: &[&str],
    payload_hash: &[u8],
) -> Result<Vec<u8>, SigV4Error> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(req.method.to_ascii_uppercase().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(req.path).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(req.query).as_bytes());
    out.push(b'\n');
    for name in signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut found = false;
        for (_, value) in req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            if found {
                out.push(b',');
            }
            trim_all(value, &mut out);
            found = true;
        }
        if !found {
            return Err(SigV4Error::Malformed(format!(
                "signed header {name} is not in the request"
            )));
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_uri(wire: &str, want: &str) {
        assert_eq!(canonical_uri(wire), want, "{wire}");
    }

    #[track_caller]
    fn check_query(wire: &str, want: &str) {
        assert_eq!(canonical_query(wire), want, "{wire}");
    }

    #[test]
    fn paths_are_normalised_then_encoded_again() {
        check_uri("/", "/");
        check_uri("", "/");
        check_uri("//", "/");
        check_uri("/./", "/");
        check_uri("/example/..", "/");
        check_uri("/example1/example2/../..", "/");
        check_uri("/./example", "/example");
        check_uri("//example//", "/example/");
        check_uri("/a/../../b", "/b");
        check_uri(
            "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        );
        // What boto3 sends for an ARN, and what it signs.
        check_uri(
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aorders/invocations",
            "/2015-03-31/functions/arn%253Aaws%253Alambda%253Aus-east-1%253A123456789012%253Afunction%253Aorders/invocations",
        );
        check_uri("/example%20space/", "/example%2520space/");
        // Encoded dots are not dot segments.
        check_uri("/a/%2E%2E/b", "/a/%252E%252E/b");
    }

    #[test]
    fn queries_are_decoded_reencoded_and_sorted() {
        check_query("", "");
        check_query("Param2=value2&Param1=value1", "Param1=value1&Param2=value2");
        check_query("Qualifier=%24LATEST", "Qualifier=%24LATEST");
        check_query("Qualifier=$LATEST", "Qualifier=%24LATEST");
        check_query("a=2&a=1&B=0", "B=0&a=1&a=2");
        check_query("flag", "flag=");
        check_query("%E1%88%B4=bar", "%E1%88%B4=bar");
        check_query("k=a%2fb", "k=a%2Fb");
        check_query("k=a+b", "k=a%2Bb");
        check_query(
            "%40%23%24%25%5E%26%2B=%2F%2C%3F%3E%3C%60%22%3B%3A%5C%7C%5D%5B%7B%7D",
            "%40%23%24%25%5E%26%2B=%2F%2C%3F%3E%3C%60%22%3B%3A%5C%7C%5D%5B%7B%7D",
        );
    }

    #[test]
    fn header_values_are_trimmed_and_joined() {
        let headers: &[(&str, &[u8])] = &[
            ("Host", b"example.amazonaws.com"),
            ("My-Header1", b"  value2 "),
            ("my-header1", b"value1"),
            ("My-Header2", b"\"a   b \t  c\""),
            ("Unsigned", b"x"),
        ];
        let req = Request {
            method: "get",
            path: "/",
            query: "",
            headers,
            body: b"",
        };
        let got = canonical_request(&req, &["host", "my-header1", "my-header2"], b"HASH").unwrap();
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value1\nmy-header2:\"a b c\"\n\nhost;my-header1;my-header2\nHASH"
        );
        assert_eq!(
            canonical_request(&req, &["host", "x-amz-date"], b"H"),
            Err(SigV4Error::Malformed(
                "signed header x-amz-date is not in the request".into()
            ))
        );
    }
}
