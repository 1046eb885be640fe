//! Invoke API errors rendered exactly as botocore parses them: status, `x-amzn-ErrorType` (the
//! modeled shape name, so `client.exceptions.X` matches) and the JSON body members of that shape.
//! Hot path for refused requests (throttling): a few small allocations per error.

use serde_json::{Map, Value};

/// `TooManyRequestsException.Reason` (botocore's `ThrottleReason` enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleReason {
    ConcurrentInvocationLimitExceeded,
    FunctionInvocationRateLimitExceeded,
    ReservedFunctionConcurrentInvocationLimitExceeded,
    ReservedFunctionInvocationRateLimitExceeded,
    CallerRateLimitExceeded,
}

impl ThrottleReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConcurrentInvocationLimitExceeded => "ConcurrentInvocationLimitExceeded",
            Self::FunctionInvocationRateLimitExceeded => "FunctionInvocationRateLimitExceeded",
            Self::ReservedFunctionConcurrentInvocationLimitExceeded => {
                "ReservedFunctionConcurrentInvocationLimitExceeded"
            }
            Self::ReservedFunctionInvocationRateLimitExceeded => {
                "ReservedFunctionInvocationRateLimitExceeded"
            }
            Self::CallerRateLimitExceeded => "CallerRateLimitExceeded",
        }
    }
}

/// An Invoke API error. Each variant says whose fault it is through its status (4xx: the
/// caller's; 5xx: esb's) and, for 429, when a retry may succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// 404: no such function (or qualifier). The message names the full ARN, as AWS does.
    #[error("{message}")]
    ResourceNotFound { message: String },
    /// 429: the function is at its concurrency limit; retry after `retry_after_seconds`.
    #[error("Rate Exceeded.")]
    TooManyRequests {
        reason: ThrottleReason,
        retry_after_seconds: Option<u32>,
    },
    /// 413: the payload is over the limit for this invocation type.
    #[error("{message}")]
    RequestTooLarge { message: String },
    /// 400: the payload is not JSON, or the client context is not base64 JSON.
    #[error("{message}")]
    InvalidRequestContent { message: String },
    /// 400: a parameter is inconsistent (e.g. two different qualifiers).
    #[error("{message}")]
    InvalidParameterValue { message: String },
    /// 400: a parameter fails its modeled constraint (pattern, enum, length). Not a Lambda shape,
    /// so botocore raises a plain `ClientError` with this code, as it does against AWS.
    #[error("{message}")]
    Validation { message: String },
    /// 500: esb failed internally.
    #[error("{message}")]
    Service { message: String },
    /// 502: the function's execution environment could not be reached or started.
    #[error("{message}")]
    ResourceNotReady { message: String },
    /// 403: the request's signature was refused; `error_type` comes from `esb-sigv4`.
    #[error("{message}")]
    Auth {
        error_type: &'static str,
        message: String,
    },
}

/// A rendered error: status, headers and body, ready to be written by the gateway (which adds
/// `x-amzn-RequestId` and the framing headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl InvokeError {
    pub fn status(&self) -> u16 {
        match self {
            InvokeError::ResourceNotFound { .. } => 404,
            InvokeError::TooManyRequests { .. } => 429,
            InvokeError::RequestTooLarge { .. } => 413,
            InvokeError::InvalidRequestContent { .. }
            | InvokeError::InvalidParameterValue { .. }
            | InvokeError::Validation { .. } => 400,
            InvokeError::Service { .. } => 500,
            InvokeError::ResourceNotReady { .. } => 502,
            InvokeError::Auth { .. } => 403,
        }
    }

    /// The `x-amzn-ErrorType` value: the exact shape name botocore maps to an exception class.
    pub fn error_type(&self) -> &'static str {
        match self {
            InvokeError::ResourceNotFound { .. } => "ResourceNotFoundException",
            InvokeError::TooManyRequests { .. } => "TooManyRequestsException",
            InvokeError::RequestTooLarge { .. } => "RequestTooLargeException",
            InvokeError::InvalidRequestContent { .. } => "InvalidRequestContentException",
            InvokeError::InvalidParameterValue { .. } => "InvalidParameterValueException",
            InvokeError::Validation { .. } => "ValidationException",
            InvokeError::Service { .. } => "ServiceException",
            InvokeError::ResourceNotReady { .. } => "ResourceNotReadyException",
            InvokeError::Auth { error_type, .. } => error_type,
        }
    }

    /// The JSON body with the members of the error's shape. The message member's case differs
    /// per shape (`Message` for ResourceNotFound and Service, `message` elsewhere); botocore reads
    /// either, but tools that read the body as AWS sends it expect the modeled one.
    pub fn body(&self) -> Vec<u8> {
        let mut m = Map::new();
        let mut put = |k: &str, v: &str| {
            m.insert(k.to_string(), Value::String(v.to_string()));
        };
        let msg = self.to_string();
        match self {
            InvokeError::ResourceNotFound { .. } => {
                put("Type", "User");
                put("Message", &msg);
            }
            InvokeError::Service { .. } => {
                put("Type", "Service");
                put("Message", &msg);
            }
            InvokeError::ResourceNotReady { .. } => {
                put("Type", "Service");
                put("message", &msg);
            }
            InvokeError::TooManyRequests { reason, .. } => {
                put("Reason", reason.as_str());
                put("Type", "User");
                put("message", &msg);
            }
            InvokeError::RequestTooLarge { .. }
            | InvokeError::InvalidRequestContent { .. }
            | InvokeError::InvalidParameterValue { .. } => {
                put("Type", "User");
                put("message", &msg);
            }
            InvokeError::Validation { .. } | InvokeError::Auth { .. } => put("message", &msg),
        }
        serde_json::to_vec(&m).expect("a map of strings always serializes")
    }

    pub fn response(&self) -> ErrorResponse {
        let mut headers = vec![
            ("x-amzn-ErrorType", self.error_type().to_string()),
            ("Content-Type", "application/json".to_string()),
        ];
        if let InvokeError::TooManyRequests {
            retry_after_seconds: Some(s),
            ..
        } = self
        {
            headers.push(("Retry-After", s.to_string()));
        }
        ErrorResponse {
            status: self.status(),
            headers,
            body: self.body(),
        }
    }

    /// 404 for `function` as the caller named it (`arn` is its full ARN).
    pub fn function_not_found(arn: &str) -> InvokeError {
        InvokeError::ResourceNotFound {
            message: format!("Function not found: {arn}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `e` renders as `status`, `x-amzn-ErrorType: ty` and exactly the JSON body `body`.
    #[track_caller]
    fn check(e: InvokeError, status: u16, ty: &str, body: &str) {
        let r = e.response();
        assert_eq!(r.status, status);
        assert_eq!(r.headers[0], ("x-amzn-ErrorType", ty.to_string()));
        assert_eq!(
            r.headers[1],
            ("Content-Type", "application/json".to_string())
        );
        let got: Value = serde_json::from_slice(&r.body).unwrap();
        let want: Value = serde_json::from_str(body).unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn bodies_match_the_modeled_shapes_and_aws_captures() {
        // aws-compat §5.3, real AWS.
        check(
            InvokeError::function_not_found(
                "arn:aws:lambda:us-west-2:123456789012:function:MyFunction1",
            ),
            404,
            "ResourceNotFoundException",
            r#"{"Type":"User","Message":"Function not found: arn:aws:lambda:us-west-2:123456789012:function:MyFunction1"}"#,
        );
        check(
            InvokeError::TooManyRequests {
                reason: ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded,
                retry_after_seconds: None,
            },
            429,
            "TooManyRequestsException",
            r#"{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}"#,
        );
        check(
            InvokeError::RequestTooLarge {
                message: "too big".into(),
            },
            413,
            "RequestTooLargeException",
            r#"{"Type":"User","message":"too big"}"#,
        );
        check(
            InvokeError::InvalidRequestContent {
                message: "bad json".into(),
            },
            400,
            "InvalidRequestContentException",
            r#"{"Type":"User","message":"bad json"}"#,
        );
        check(
            InvokeError::InvalidParameterValue {
                message: "p".into(),
            },
            400,
            "InvalidParameterValueException",
            r#"{"Type":"User","message":"p"}"#,
        );
        check(
            InvokeError::Validation {
                message: "v".into(),
            },
            400,
            "ValidationException",
            r#"{"message":"v"}"#,
        );
        check(
            InvokeError::Service {
                message: "s".into(),
            },
            500,
            "ServiceException",
            r#"{"Type":"Service","Message":"s"}"#,
        );
        check(
            InvokeError::ResourceNotReady {
                message: "r".into(),
            },
            502,
            "ResourceNotReadyException",
            r#"{"Type":"Service","message":"r"}"#,
        );
        check(
            InvokeError::Auth {
                error_type: "InvalidSignatureException",
                message: "sig".into(),
            },
            403,
            "InvalidSignatureException",
            r#"{"message":"sig"}"#,
        );
    }

    #[test]
    fn throttles_say_when_to_retry() {
        let r = InvokeError::TooManyRequests {
            reason: ThrottleReason::ConcurrentInvocationLimitExceeded,
            retry_after_seconds: Some(2),
        }
        .response();
        assert_eq!(r.headers.last().unwrap(), &("Retry-After", "2".to_string()));
    }
}
