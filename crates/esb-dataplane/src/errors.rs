//! Every client-visible error, and the one function that turns it into a response.
//!
//! Hot path: error answers are static bodies and headers; no allocation except `Retry-After`.
//!
//! [`respond`] decides status, body, `x-amzn-ErrorType`, extra headers and whether the connection
//! must close, in this fixed priority order (the first that applies wins, since a request that
//! broke framing cannot be trusted about anything else):
//! 1. framing and limits ([`RequestError::Http`]): 400/405/413/414/431/501/505, always close;
//! 2. the gateway's own front door: route ([`RequestError::NoRoute`]), authorization
//!    ([`RequestError::Unauthorized`], [`RequestError::Forbidden`]), login ([`RequestError::Login`]),
//!    load shedding ([`RequestError::Busy`]);
//! 3. capacity ([`RequestError::Acquire`]): 503/429 with `Retry-After`, or 502;
//! 4. the function ([`RequestError::Timeout`], [`RequestError::Function`]): 504, or 502 (REST v1)
//!    / 500 (HTTP API v2) in API Gateway's exact words;
//! 5. esb's own bugs ([`RequestError::Internal`]): 500.
//!
//! Bodies follow API Gateway's gateway responses (`{"message": ...}`) and, on the login path,
//! Cognito's JSON error shape (`__type`, `message`).

use std::borrow::Cow;

use esb_http1::HttpError;
use esb_model::PayloadFormat;
use esb_pool::AcquireError;

/// Whose fault an error is, for logs and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The client sent something esb refuses.
    Client,
    /// Not enough capacity right now; retrying later may work.
    Capacity,
    /// The function (tenant code or its runtime) failed or answered garbage.
    Function,
    /// esb itself.
    Gateway,
}

/// Why an invocation produced no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionFailure {
    /// The function reported an error (`X-Amz-Function-Error`, or AWS RIE's error shape).
    Error,
    /// The function's answer is not a valid Lambda proxy response.
    Malformed,
    /// The environment could not be reached, or its HTTP answer was broken or too big.
    Unreachable,
}

/// Why a login failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// `x-api-key` missing or wrong: the caller is not even a known client.
    ApiKey,
    /// Unknown user or wrong password.
    Credentials,
    /// The body is not an InitiateAuth request esb understands.
    BadRequest(&'static str),
    /// The flow is well-formed but not one esb implements.
    UnsupportedFlow,
}

/// A request that ends in a gateway-made answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The request broke HTTP/1.1 framing or a size limit; the connection cannot be trusted.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// No route for this method and path (API Gateway says "Missing Authentication Token").
    #[error("no route")]
    NoRoute,
    /// A `cognito` route without a valid token. The reason is for logs only.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// An `api_key` route without the right `x-api-key`.
    #[error("forbidden: missing or invalid API key")]
    Forbidden,
    /// The login endpoint refused.
    #[error("login refused: {0:?}")]
    Login(LoginFailure),
    /// The event built from the request exceeds the function's 6 MB payload limit.
    #[error("event larger than the function's payload limit")]
    EventTooLarge,
    /// A bounded internal queue (password hashing) is full.
    #[error("too many requests")]
    Busy,
    /// No execution environment could be had.
    #[error(transparent)]
    Acquire(#[from] AcquireError),
    /// The function did not answer within its timeout.
    #[error("function timed out")]
    Timeout,
    /// The invocation failed; the format picks API Gateway's REST or HTTP API wording.
    #[error("function failed: {0:?}")]
    Function(FunctionFailure, PayloadFormat),
    /// A bug or an impossible state in esb.
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// The Lambda Invoke API refused or failed, answered in botocore's terms (its own status,
    /// `x-amzn-ErrorType` and body shape) rather than API Gateway's.
    #[error("invoke api: {0}")]
    Invoke(esb_invoke::InvokeError),
    /// A Lambda authorizer refused the request (or failed); answered in API Gateway's words
    /// for the route's kind of API.
    #[error("lambda authorizer: {0}")]
    Authorizer(esb_authorizer::Refusal, esb_authorizer::ApiKind),
}

/// Everything a connection needs to answer an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    pub status: u16,
    /// Static for every gateway answer; built only for Invoke API errors.
    pub body: Cow<'static, str>,
    pub content_type: &'static str,
    /// `x-amzn-ErrorType`, as API Gateway and Cognito send it.
    pub error_type: &'static str,
    /// Extra headers (`Retry-After`, `PADMA_USER_AUTHORIZED`).
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
    /// The connection must close after this answer whatever the request's body state.
    pub close: bool,
    pub fault: Fault,
}

const JSON: &str = "application/json";
const AMZ_JSON: &str = "application/x-amz-json-1.1";

impl RequestError {
    pub fn fault(&self) -> Fault {
        respond(self).fault
    }
}

/// The answer for `err` (see the module doc for the order of the cases).
pub fn respond(err: &RequestError) -> ErrorResponse {
    let simple = |status, body: &'static str, error_type, fault| ErrorResponse {
        status,
        body: Cow::Borrowed(body),
        content_type: JSON,
        error_type,
        headers: Vec::new(),
        close: false,
        fault,
    };
    match err {
        // 1. Framing and limits.
        RequestError::Http(e) => {
            let (body, error_type) = match e.status() {
                413 => (
                    r#"{"message":"Request Too Long"}"#,
                    "RequestTooLargeException",
                ),
                414 => (
                    r#"{"message":"Request-URI Too Long"}"#,
                    "BadRequestException",
                ),
                431 => (
                    r#"{"message":"Request Header Fields Too Large"}"#,
                    "RequestHeaderFieldsTooLargeException",
                ),
                405 => (r#"{"message":"Method Not Allowed"}"#, "BadRequestException"),
                501 => (r#"{"message":"Not Implemented"}"#, "BadRequestException"),
                505 => (
                    r#"{"message":"HTTP Version Not Supported"}"#,
                    "BadRequestException",
                ),
                _ => (r#"{"message":"Bad Request"}"#, "BadRequestException"),
            };
            let mut r = simple(e.status(), body, error_type, Fault::Client);
            if let Some(allow) = e.allow() {
                r.headers.push(("allow", Cow::Borrowed(allow)));
            }
            r.close = e.must_close();
            r
        }
        // 2. The front door.
        RequestError::NoRoute => simple(
            403,
            r#"{"message":"Missing Authentication Token"}"#,
            "MissingAuthenticationTokenException",
            Fault::Client,
        ),
        RequestError::Unauthorized(_) => simple(
            401,
            r#"{"message":"Unauthorized"}"#,
            "UnauthorizedException",
            Fault::Client,
        ),
        RequestError::Forbidden => simple(
            403,
            r#"{"message":"Forbidden"}"#,
            "ForbiddenException",
            Fault::Client,
        ),
        RequestError::Login(why) => {
            let (status, error_type, body, key_ok) = match why {
                LoginFailure::ApiKey => (
                    401,
                    "NotAuthorizedException",
                    r#"{"__type":"NotAuthorizedException","message":"Missing or invalid x-api-key."}"#,
                    false,
                ),
                LoginFailure::Credentials => (
                    401,
                    "NotAuthorizedException",
                    r#"{"__type":"NotAuthorizedException","message":"Incorrect username or password."}"#,
                    true,
                ),
                LoginFailure::BadRequest(_) => (
                    400,
                    "InvalidParameterException",
                    r#"{"__type":"InvalidParameterException","message":"Missing required parameter USERNAME or PASSWORD."}"#,
                    true,
                ),
                LoginFailure::UnsupportedFlow => (
                    400,
                    "InvalidParameterException",
                    r#"{"__type":"InvalidParameterException","message":"Only USER_PASSWORD_AUTH is supported."}"#,
                    true,
                ),
            };
            let mut r = simple(status, body, error_type, Fault::Client);
            r.content_type = AMZ_JSON;
            if key_ok {
                // The original ESB's marker: the API key was accepted, whatever the user did.
                r.headers
                    .push(("PADMA_USER_AUTHORIZED", Cow::Borrowed("true")));
            }
            r
        }
        RequestError::EventTooLarge => simple(
            413,
            r#"{"message":"Request Too Long"}"#,
            "RequestTooLargeException",
            Fault::Client,
        ),
        RequestError::Busy => {
            let mut r = simple(
                429,
                r#"{"__type":"TooManyRequestsException","message":"Too many requests."}"#,
                "TooManyRequestsException",
                Fault::Capacity,
            );
            r.headers.push(("retry-after", Cow::Borrowed("1")));
            r
        }
        // 3. Capacity.
        RequestError::Acquire(e) => {
            let status = e.status();
            let (body, error_type, fault) = match status {
                429 => (
                    r#"{"message":"Too Many Requests"}"#,
                    "TooManyRequestsException",
                    Fault::Capacity,
                ),
                503 => (
                    r#"{"message":"Service Unavailable"}"#,
                    "ServiceUnavailableException",
                    Fault::Capacity,
                ),
                502 => (
                    r#"{"message":"Internal server error"}"#,
                    "InternalServerErrorException",
                    Fault::Function,
                ),
                _ => (
                    r#"{"message":"Internal server error"}"#,
                    "InternalServerErrorException",
                    Fault::Gateway,
                ),
            };
            let mut r = simple(status, body, error_type, fault);
            if let Some(after) = e.retry_after() {
                // Whole seconds, rounded up: "Retry-After: 0" would invite a hot retry loop.
                let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
                r.headers
                    .push(("retry-after", Cow::Owned(secs.max(1).to_string())));
            }
            r
        }
        // 4. The function.
        RequestError::Timeout => simple(
            504,
            r#"{"message": "Endpoint request timed out"}"#,
            "IntegrationTimeoutException",
            Fault::Function,
        ),
        RequestError::Function(_, PayloadFormat::V1) => simple(
            502,
            r#"{"message": "Internal server error"}"#,
            "InternalServerErrorException",
            Fault::Function,
        ),
        RequestError::Function(_, PayloadFormat::V2) => simple(
            500,
            r#"{"message":"Internal Server Error"}"#,
            "InternalServerErrorException",
            Fault::Function,
        ),
        // 5. esb itself.
        RequestError::Internal(_) => {
            let mut r = simple(
                500,
                r#"{"message":"Internal server error"}"#,
                "InternalServerErrorException",
                Fault::Gateway,
            );
            r.close = true;
            r
        }
        RequestError::Authorizer(refusal, api) => {
            use esb_authorizer::Refusal;
            let (status, _, body) = refusal.response(*api);
            let (error_type, fault) = match refusal {
                Refusal::Unauthorized => ("UnauthorizedException", Fault::Client),
                Refusal::ExplicitDeny | Refusal::NotAllowed => {
                    ("AccessDeniedException", Fault::Client)
                }
                Refusal::Misconfigured(_) => ("AuthorizerConfigurationException", Fault::Function),
            };
            ErrorResponse {
                status,
                body: Cow::Owned(String::from_utf8_lossy(&body).into_owned()),
                content_type: JSON,
                error_type,
                headers: Vec::new(),
                close: false,
                fault,
            }
        }
        RequestError::Invoke(e) => {
            let status = e.status();
            let fault = match status {
                429 => Fault::Capacity,
                s if s >= 500 => Fault::Gateway,
                _ => Fault::Client,
            };
            let mut headers = Vec::new();
            if let esb_invoke::InvokeError::TooManyRequests {
                retry_after_seconds: Some(s),
                ..
            } = e
            {
                headers.push(("retry-after", Cow::Owned(s.to_string())));
            }
            ErrorResponse {
                status,
                // The shapes' members are all strings: always valid UTF-8.
                body: Cow::Owned(String::from_utf8_lossy(&e.body()).into_owned()),
                content_type: JSON,
                error_type: e.error_type(),
                headers,
                close: false,
                fault,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn check(err: RequestError, status: u16, body: &str, close: bool) -> ErrorResponse {
        let r = respond(&err);
        assert_eq!(
            (r.status, r.body.as_ref(), r.close),
            (status, body, close),
            "{err:?}"
        );
        serde_json::from_str::<serde_json::Value>(&r.body).expect("bodies are JSON");
        r
    }

    #[test]
    fn the_table() {
        check(
            HttpError::PayloadTooLarge.into(),
            413,
            r#"{"message":"Request Too Long"}"#,
            true,
        );
        check(
            HttpError::TooManyHeaders.into(),
            431,
            r#"{"message":"Request Header Fields Too Large"}"#,
            true,
        );
        check(
            HttpError::BadRequest("x").into(),
            400,
            r#"{"message":"Bad Request"}"#,
            true,
        );
        let r = check(
            HttpError::MethodNotAllowed.into(),
            405,
            r#"{"message":"Method Not Allowed"}"#,
            true,
        );
        assert_eq!(r.headers[0].0, "allow");
        check(
            RequestError::NoRoute,
            403,
            r#"{"message":"Missing Authentication Token"}"#,
            false,
        );
        check(
            RequestError::Unauthorized("x"),
            401,
            r#"{"message":"Unauthorized"}"#,
            false,
        );
        check(
            RequestError::Forbidden,
            403,
            r#"{"message":"Forbidden"}"#,
            false,
        );
        check(
            RequestError::Timeout,
            504,
            r#"{"message": "Endpoint request timed out"}"#,
            false,
        );
        for f in [
            FunctionFailure::Error,
            FunctionFailure::Malformed,
            FunctionFailure::Unreachable,
        ] {
            check(
                RequestError::Function(f, PayloadFormat::V1),
                502,
                r#"{"message": "Internal server error"}"#,
                false,
            );
            check(
                RequestError::Function(f, PayloadFormat::V2),
                500,
                r#"{"message":"Internal Server Error"}"#,
                false,
            );
        }
        check(
            RequestError::Internal("x"),
            500,
            r#"{"message":"Internal server error"}"#,
            true,
        );
    }

    #[test]
    fn login_failures_mark_padma_only_when_the_key_was_right() {
        let padma = |r: &ErrorResponse| {
            r.headers
                .iter()
                .any(|(n, v)| *n == "PADMA_USER_AUTHORIZED" && v == "true")
        };
        let key = respond(&RequestError::Login(LoginFailure::ApiKey));
        assert_eq!(key.status, 401);
        assert!(!padma(&key));
        assert!(key.body.contains(r#""__type":"NotAuthorizedException""#));
        let cred = respond(&RequestError::Login(LoginFailure::Credentials));
        assert_eq!(cred.status, 401);
        assert!(padma(&cred));
        assert!(cred.body.contains("Incorrect username or password."));
        let bad = respond(&RequestError::Login(LoginFailure::BadRequest("x")));
        assert_eq!(bad.status, 400);
    }

    #[test]
    fn capacity_answers_carry_retry_after() {
        let r = respond(&RequestError::Acquire(AcquireError::AtCapacity {
            status: 429,
            retry_after: Duration::from_millis(1500),
        }));
        assert_eq!(r.status, 429);
        assert_eq!(r.headers, vec![("retry-after", Cow::Owned("2".into()))]);
        let r = respond(&RequestError::Acquire(AcquireError::AtCapacity {
            status: 503,
            retry_after: Duration::ZERO,
        }));
        assert_eq!((r.status, r.headers[0].1.as_ref()), (503, "1"));
        let r = respond(&RequestError::Acquire(AcquireError::StartFailed {
            reason: "boom".into(),
        }));
        assert_eq!((r.status, r.headers.len()), (502, 0));
    }
}
