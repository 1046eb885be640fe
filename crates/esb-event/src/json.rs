//! The hand-written JSON writer the event builders use: string escaping and small helpers over a
//! reused `Vec<u8>`.
//!
//! Hot path: no allocation beyond growing the caller's buffer. Chosen over serde_json/sonic-rs
//! because the events are written straight from borrowed request parts (grouping headers and
//! query parameters on the fly) with exact null/absent control; `esb-bench`'s `event/writer_*`
//! benches keep that choice honest.

/// Escapes for bytes < 0x20, `"` and `\`; 0 means "copy as is".
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends the JSON-escaped contents of `s` (no quotes).
#[inline]
pub fn escape_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if esc == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', esc]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends `"s"` escaped.
#[inline]
pub fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_into(out, s);
    out.push(b'"');
}

/// Appends raw bytes as a JSON string: UTF-8 as is, anything else read as ISO-8859-1 (the
/// historical charset of HTTP header values), so the output is always valid JSON.
#[inline]
pub fn bytes_string(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'"');
    bytes_escape_into(out, b);
    out.push(b'"');
}

/// [`bytes_string`] without the quotes.
#[inline]
pub fn bytes_escape_into(out: &mut Vec<u8>, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(s) => escape_into(out, s),
        Err(_) => {
            let mut tmp = [0u8; 4];
            for &c in b {
                escape_into(out, char::from(c).encode_utf8(&mut tmp));
            }
        }
    }
}

/// Appends `"key":`.
#[inline]
pub fn key(out: &mut Vec<u8>, k: &str) {
    string(out, k);
    out.push(b':');
}

/// Appends an unsigned integer.
#[inline]
pub fn uint(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends a `serde_json::Value` (authorizer context, claims kept typed).
pub fn value(out: &mut Vec<u8>, v: &serde_json::Value) {
    // Writing to a Vec cannot fail, and a Value always serializes.
    let _ = serde_json::to_writer(&mut *out, v);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &[u8], expected: &str) {
        let mut out = Vec::new();
        bytes_string(&mut out, input);
        assert_eq!(std::str::from_utf8(&out).unwrap(), expected);
        // Whatever we write must parse back as a JSON string.
        let _: String = serde_json::from_slice(&out).unwrap();
    }

    #[test]
    fn escapes() {
        check(b"plain", r#""plain""#);
        check(b"a\"b\\c", r#""a\"b\\c""#);
        check(b"\r\n\t\x08\x0c", r#""\r\n\t\b\f""#);
        check(b"\x00\x01\x1f\x7f", "\"\\u0000\\u0001\\u001f\x7f\"");
        check("日本 é".as_bytes(), "\"日本 é\"");
        check(b"", r#""""#);
    }

    #[test]
    fn non_utf8_is_latin1() {
        check(b"caf\xe9", "\"café\"");
        check(b"\xff\"", "\"ÿ\\\"\"");
    }
}
