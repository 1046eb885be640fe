//! Status codes and bodies, byte-compatible with AWS's RIE where a caller or runtime can see them.
//!
//! Hot path: [`outcome`] runs once per invocation; the success case moves the runtime's bytes.

use bytes::Bytes;

use crate::machine::{ApiError, Outcome};

/// Body of the 202 RIE answers `/response`, `/error` and `/init/error` with (Go's JSON encoder
/// appends the newline).
pub const ACCEPTED_BODY: &[u8] = b"{\"status\":\"OK\"}\n";

/// Body of Go's default 404, which RIE serves for every unknown path.
pub const NOT_FOUND_BODY: &[u8] = b"404 page not found\n";

/// `errorType` of the rejection of an overlapping invoke (esb-rie only; AWS's RIE crashes).
pub const BUSY_ERROR_TYPE: &str = "TooManyRequestsException";

/// The content type esb-rie reports for bodies it writes itself, and for runtime answers that
/// carry none.
pub const JSON: &str = "application/json";

/// Content type of the timeout text (what Go's sniffing gives in RIE).
pub const TEXT: &str = "text/plain; charset=utf-8";

/// What the invoke endpoint answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub status: u16,
    pub body: Bytes,
    pub content_type: String,
    /// Send `X-Amz-Function-Error: Unhandled` (esb-rie improvement).
    pub function_error: bool,
}

/// The caller's answer for a finished invocation. Status and body match RIE's; the content type
/// and the function-error flag are esb-rie's improvements.
pub fn outcome(request_id: &str, outcome: Outcome) -> Rendered {
    let function_error = outcome.is_function_error();
    let (status, body, content_type) = match outcome {
        Outcome::Success { body, content_type } | Outcome::FunctionError { body, content_type, .. } => {
            (200, body, content_type.unwrap_or_else(|| JSON.to_owned()))
        }
        Outcome::ResponseTooLarge => (
            200,
            Bytes::from_static(
                b"{\"errorType\":\"Function.ResponseSizeTooLarge\",\"errorMessage\":\"Response payload size exceeded maximum allowed payload size (6291556 bytes).\"}",
            ),
            JSON.to_owned(),
        ),
        Outcome::Timeout { timeout_secs } => (
            200,
            Bytes::from(format!("Task timed out after {timeout_secs}.00 seconds")),
            TEXT.to_owned(),
        ),
        Outcome::RuntimeExit { reason } => (
            502,
            error_json(
                "Runtime.ExitError",
                &format!("RequestId: {request_id} Error: Runtime exited with error: {reason}"),
            ),
            JSON.to_owned(),
        ),
        Outcome::InitError { body, content_type, error_type } => {
            if body.is_empty() {
                let kind = error_type.as_deref().unwrap_or("Runtime.Unknown");
                let message = format!("RequestId: {request_id} Error: Runtime failed to initialise");
                (502, error_json(kind, &message), JSON.to_owned())
            } else {
                (502, body, content_type.unwrap_or_else(|| JSON.to_owned()))
            }
        }
    };
    Rendered {
        status,
        body,
        content_type,
        function_error,
    }
}

/// 429 for an invoke that overlaps the one in flight (AWS's RIE crashes instead).
pub fn busy(in_flight: &str) -> Rendered {
    let message = format!(
        "esb-rie runs one invocation at a time, like one Lambda execution environment, and invocation {in_flight} is still in progress; retry when it has finished"
    );
    Rendered {
        status: 429,
        body: error_json(BUSY_ERROR_TYPE, &message),
        content_type: JSON.to_owned(),
        function_error: false,
    }
}

/// `{"errorType":..,"errorMessage":..}`, the order RIE uses on the invoke side (no newline).
pub fn error_json(error_type: &str, message: &str) -> Bytes {
    let mut out = String::with_capacity(40 + error_type.len() + message.len());
    out.push_str("{\"errorType\":");
    push_json_string(&mut out, error_type);
    out.push_str(",\"errorMessage\":");
    push_json_string(&mut out, message);
    out.push('}');
    Bytes::from(out)
}

/// A Runtime API error body: `{"errorMessage":..,"errorType":..}` plus Go's trailing newline.
pub fn api_error(err: &ApiError) -> Bytes {
    let message = err.to_string();
    let mut out = String::with_capacity(40 + message.len());
    out.push_str("{\"errorMessage\":");
    push_json_string(&mut out, &message);
    out.push_str(",\"errorType\":");
    push_json_string(&mut out, err.error_type());
    out.push_str("}\n");
    Bytes::from(out)
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(outcome_: Outcome, status: u16, body: &str, function_error: bool) {
        let r = outcome("c8f05b60-52ce-4dd5-a798-940598c0d6f7", outcome_);
        assert_eq!(r.status, status);
        assert_eq!(std::str::from_utf8(&r.body).unwrap(), body);
        assert_eq!(r.function_error, function_error);
    }

    #[test]
    fn bodies_match_the_ones_rie_was_seen_to_send() {
        check(
            Outcome::Success {
                body: Bytes::from_static(b"{\"a\": 1}"),
                content_type: None,
            },
            200,
            "{\"a\": 1}",
            false,
        );
        check(
            Outcome::Timeout { timeout_secs: 3 },
            200,
            "Task timed out after 3.00 seconds",
            true,
        );
        check(
            Outcome::RuntimeExit {
                reason: "exit status 3".into(),
            },
            502,
            "{\"errorType\":\"Runtime.ExitError\",\"errorMessage\":\"RequestId: c8f05b60-52ce-4dd5-a798-940598c0d6f7 Error: Runtime exited with error: exit status 3\"}",
            true,
        );
        check(
            Outcome::ResponseTooLarge,
            200,
            "{\"errorType\":\"Function.ResponseSizeTooLarge\",\"errorMessage\":\"Response payload size exceeded maximum allowed payload size (6291556 bytes).\"}",
            true,
        );
    }

    #[test]
    fn runtime_content_type_passes_through() {
        let r = outcome(
            "id",
            Outcome::FunctionError {
                body: Bytes::from_static(b"x"),
                content_type: Some("application/vnd.aws.lambda.error+json".into()),
                error_type: None,
            },
        );
        assert_eq!(r.content_type, "application/vnd.aws.lambda.error+json");
        assert!(r.function_error);
        assert_eq!(r.status, 200);
    }

    #[test]
    fn api_errors_match_rie() {
        let e = ApiError::InvalidRequestId;
        assert_eq!(e.status(), 400);
        assert_eq!(
            api_error(&e),
            "{\"errorMessage\":\"Invalid request ID\",\"errorType\":\"InvalidRequestID\"}\n"
        );
        let e = ApiError::PayloadTooLarge;
        assert_eq!(e.status(), 413);
        assert_eq!(
            api_error(&e),
            "{\"errorMessage\":\"Exceeded maximum allowed payload size (6291556 bytes).\",\"errorType\":\"RequestEntityTooLarge\"}\n"
        );
        assert_eq!(ACCEPTED_BODY.len(), 16);
    }

    #[test]
    fn busy_is_a_429_with_an_error_object() {
        let r = busy("abc");
        assert_eq!(r.status, 429);
        assert!(!r.function_error);
        let s = std::str::from_utf8(&r.body).unwrap();
        assert!(s.starts_with("{\"errorType\":\"TooManyRequestsException\",\"errorMessage\":\""));
        assert!(s.contains("abc"));
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(
            error_json("T", "a\"b\\c\n\u{1}"),
            "{\"errorType\":\"T\",\"errorMessage\":\"a\\\"b\\\\c\\n\\u0001\"}"
        );
    }
}
