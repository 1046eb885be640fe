//! The codec's errors: what the peer did wrong, which status answers it, and that the connection
//! is closed afterwards.

/// Whose fault an error is, so the caller can log and count it on the right side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The client sent something we refuse (4xx/5xx answer, then close).
    Client,
    /// The upstream (RIE, i.e. tenant code) answered something unusable (the client gets 502).
    Upstream,
}

/// A message esb refuses to process. Every variant ends the connection it arrived on: after a
/// framing error nothing that follows on that connection can be trusted (checklist A1, A9).
///
/// None of these are retryable: the same bytes would fail the same way, and for
/// [`HttpError::BadGateway`] the function may already have run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// 400: the message is malformed or ambiguous; the text says which rule it broke.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// 405: a method esb never serves (`CONNECT`, `TRACE`); answer with [`HttpError::allow`].
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 413: the declared or decoded body exceeds [`crate::Limits::max_body_bytes`].
    #[error("body larger than the limit")]
    PayloadTooLarge,
    /// 414: the request target exceeds [`crate::Limits::max_uri_bytes`].
    #[error("request target longer than the limit")]
    UriTooLong,
    /// 431: the head exceeds [`crate::Limits::max_head_bytes`].
    #[error("request head larger than the limit")]
    HeadTooLarge,
    /// 431: more header fields than [`crate::Limits::max_headers`].
    #[error("too many header fields")]
    TooManyHeaders,
    /// 431: the trailers of a chunked body exceed their bound.
    #[error("chunked trailers larger than the limit")]
    TrailersTooLarge,
    /// 501: a well-formed feature esb does not implement (unknown method, transfer coding other
    /// than `chunked`); the text says which.
    #[error("not implemented: {0}")]
    NotImplemented(&'static str),
    /// 505: a well-formed HTTP version other than 1.0 and 1.1.
    #[error("HTTP version not supported")]
    VersionNotSupported,
    /// 502: the upstream's response head or body is malformed or over a limit.
    #[error("bad upstream response: {0}")]
    BadGateway(&'static str),
}

impl HttpError {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::BadRequest(_) => 400,
            HttpError::MethodNotAllowed => 405,
            HttpError::PayloadTooLarge => 413,
            HttpError::UriTooLong => 414,
            HttpError::HeadTooLarge | HttpError::TooManyHeaders | HttpError::TrailersTooLarge => {
                431
            }
            HttpError::NotImplemented(_) => 501,
            HttpError::VersionNotSupported => 505,
            HttpError::BadGateway(_) => 502,
        }
    }

    /// A short, fixed description for logs and error bodies (never contains peer bytes).
    pub fn reason(&self) -> &'static str {
        match self {
            HttpError::BadRequest(why) | HttpError::NotImplemented(why) => why,
            HttpError::BadGateway(why) => why,
            HttpError::MethodNotAllowed => "method not allowed",
            HttpError::PayloadTooLarge => "body too large",
            HttpError::UriTooLong => "request target too long",
            HttpError::HeadTooLarge => "request head too large",
            HttpError::TooManyHeaders => "too many header fields",
            HttpError::TrailersTooLarge => "trailers too large",
            HttpError::VersionNotSupported => "http version not supported",
        }
    }

    /// Always true: the answer must carry `connection: close` and the connection must be closed
    /// after it, because the rest of the byte stream cannot be framed safely.
    pub fn must_close(&self) -> bool {
        true
    }

    /// Who caused the error.
    pub fn fault(&self) -> Fault {
        match self {
            HttpError::BadGateway(_) => Fault::Upstream,
            _ => Fault::Client,
        }
    }

    /// The `Allow` header value that must accompany a 405.
    pub fn allow(&self) -> Option<&'static str> {
        match self {
            HttpError::MethodNotAllowed => Some("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
            _ => None,
        }
    }
}

/// A head esb was asked to write contains something that cannot go on the wire. The values come
/// from function output or configuration, so this is the gateway's (or the function's) fault:
/// answer 502/500 instead. The output buffer is left as it was before the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The status is outside 200..=599 (1xx are interim and written with constants).
    #[error("status {0} cannot be written as a final response")]
    Status(u16),
    /// The reason phrase contains a control byte (CR, LF, NUL, ...).
    #[error("reason phrase contains a control byte")]
    Reason,
    /// Header number `n` (0-based, in the caller's order) has a name that is not a token.
    #[error("header #{0} has an invalid name")]
    HeaderName(usize),
    /// Header number `n` has a value with CR, LF, NUL or another control byte.
    #[error("header #{0} has a value with a control byte")]
    HeaderValue(usize),
    /// The request line (method, path or host) of an upstream request is invalid.
    #[error("invalid request line: {0}")]
    RequestLine(&'static str),
    /// A body was announced for a status that cannot carry one (204, 304).
    #[error("status {0} cannot carry a body")]
    BodyNotAllowed(u16),
}
