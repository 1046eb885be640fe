//! The Lambda Invoke API's wire layer (`POST /2015-03-31/functions/{FunctionName}/invocations`),
//! as boto3's `lambda.invoke` speaks it: parsing the target and the `X-Amz-*` headers, checking
//! the payload, and rendering successes and errors exactly as botocore parses them. No IO.
//!
//! The gateway's order of work for one request:
//! 1. [`function_segment`] + [`parse_target`] (404-worthy names are the caller's lookup);
//! 2. [`InvocationType::parse`], [`LogType::parse`], [`ClientContext::parse`];
//! 3. [`check_payload_size`] on `Content-Length`, then [`payload`] on the body;
//! 4. run, then [`success_head`] (with [`log_result`] for `Tail`), or an [`InvokeError`]'s
//!    [`InvokeError::response`].

mod error;
mod request;
mod response;

pub use error::{ErrorResponse, InvokeError, ThrottleReason};
pub use request::{
    CLIENT_CONTEXT_LIMIT, ClientContext, EVENT_PAYLOAD_LIMIT, InvocationType, LogType,
    SYNC_PAYLOAD_LIMIT, Target, check_payload_size, function_segment, parse_target, payload,
};
pub use response::{LOG_TAIL_BYTES, SyncOutcome, log_result, success_head};

#[cfg(test)]
mod botocore_tests;
