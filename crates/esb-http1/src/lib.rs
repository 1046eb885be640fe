//! Sans-IO HTTP/1.1 codec for esb's front door and its upstream (RIE) connections.
//!
//! Hot path: every request head, chunked body and response head of the data plane goes through
//! this crate, so nothing here allocates except into buffers the caller owns and reuses.
//!
//! No sockets and no clock: the IO side (`esb-dataplane`) reads bytes into a per-connection
//! buffer, calls [`parse_request_head`] until it returns a head (or an error), reads the body as
//! [`RequestHead::framing`] says (with [`ChunkedDecoder`] for chunked bodies), and writes answers
//! with [`write_response_head`]. Towards RIE it writes [`write_request_head`] and parses the
//! answer with [`parse_response_head`].
//!
//! The request side is strict on purpose (checklist §7 A): every ambiguity that proxies have been
//! desynchronised by (CL+TE, duplicate or odd Content-Length, Transfer-Encoding lists, bare CR/LF,
//! control bytes, whitespace before the colon, obs-fold, underscores in names, odd targets) is an
//! error, and every error closes the connection ([`HttpError::must_close`]). The upstream side is
//! lenient where Go's net/http and hyper legitimately differ, but still bounded.
//!
//! The decisions taken on the cases RFC 9110/9112 leave open are listed on [`parse_request_head`].

#![warn(missing_docs)]

mod chunked;
mod error;
mod fields;
mod request;
mod response;
mod upstream;

#[cfg(test)]
mod fuzz_tests;

pub use chunked::{ChunkedDecoder, Decoded};
pub use error::{Fault, HttpError, WriteError};
pub use fields::is_hop_by_hop;
pub use httparse::{EMPTY_HEADER, Header};
pub use request::{
    ConnectionOptions, Method, RequestHead, may_contain_full_head, parse_request_head, split_target,
};
pub use response::{CONTINUE_100, Connection, reason_phrase, write_response_head};
pub use upstream::{ResponseHead, parse_response_head, write_request_head};

/// Size and count limits for one message head and body; the defaults follow the reliability
/// checklist §1.1 (head ≤ 16–32 KiB, ≤ 100 fields, body ≤ 6 MiB before the event is built).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes a head may take, request line and final empty line included; more → 431.
    pub max_head_bytes: usize,
    /// Most header fields in one head; more → 431. The `headers_scratch` slice passed to the
    /// parsers should hold at least this many entries: a shorter slice is a lower limit.
    pub max_headers: usize,
    /// Largest body accepted: a larger `Content-Length` → 413 before any body byte is read,
    /// and the chunked decoder stops with 413 once the decoded body would exceed it.
    pub max_body_bytes: u64,
    /// Longest request target (the URI in the request line); longer → 414.
    pub max_uri_bytes: usize,
    /// What to do with header names containing `_` (see [`UnderscoreHeaders`]).
    pub underscore_headers: UnderscoreHeaders,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_head_bytes: 32 * 1024,
            max_headers: 100,
            max_body_bytes: 6 * 1024 * 1024,
            max_uri_bytes: 8 * 1024,
            underscore_headers: UnderscoreHeaders::Reject,
        }
    }
}

/// Policy for header names that contain an underscore.
///
/// Names such as `X_Api_Key` are valid tokens, but CGI-style stacks (and some of the functions
/// behind esb) fold `-` and `_` together, so a client could shadow a header the gateway checks
/// (checklist A21). The default is Envoy's `headers_with_underscores_action: REJECT_REQUEST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnderscoreHeaders {
    /// Answer 400 and close (the default).
    #[default]
    Reject,
    /// Accept the name as a distinct header (never as an alias of the `-` spelling).
    Allow,
}

/// HTTP version of a parsed message; only 1.0 and 1.1 exist on the wire here (anything else in a
/// request is a 505 or a 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `HTTP/1.0`: close after the response unless `Connection: keep-alive`; no chunked bodies.
    Http10,
    /// `HTTP/1.1`: persistent unless `Connection: close`; `Host` required.
    Http11,
}

impl Version {
    /// The version as written in a start line, e.g. `"HTTP/1.1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// How the body after a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: no framing header, `Content-Length: 0`, or a response that cannot have one
    /// (1xx, 204, 304).
    None,
    /// Exactly this many bytes follow (never 0: that is [`BodyFraming::None`]).
    Length(u64),
    /// `Transfer-Encoding: chunked`: decode with [`ChunkedDecoder`].
    Chunked,
    /// Responses only: the body runs until the peer closes the connection (no length, no
    /// chunking); such a connection cannot be reused.
    UntilClose,
}
