//! The Lambda Invoke API as a built-in endpoint: `POST /2015-03-31/functions/{FunctionName}/invocations`,
//! answered the way boto3's `lambda.invoke` expects (esb-invoke does the wire rules, esb-sigv4 the
//! signatures; the function runs through the same pool and upstream path as routes).
//!
//! Hot path. [`plan`] decides from the head (refusing before the body is read whenever it can);
//! with `[invoke] auth = "sigv4"` every other answer waits until the signature, which covers the
//! body, was verified, so an unsigned caller learns nothing (not even which functions exist).

use std::borrow::Cow;
use std::time::Duration;

use base64::Engine as _;
use esb_http1::{BodyFraming, Connection, Method, RequestHead};
use esb_invoke::{
    ClientContext, InvocationType, InvokeError, LogType, SyncOutcome, ThrottleReason,
};
use esb_pool::{AcquireError, FunctionId};

use crate::ctx::RequestCtx;
use crate::errors::RequestError;
use crate::handler::{CallError, call_function, settle};
use crate::upstream::InvokeError as UpstreamError;
use crate::worker::Worker;

/// An Invoke API request, as far as the head tells.
pub struct LambdaCall {
    /// The checked request, or the error to answer once the caller is authenticated.
    resolved: Result<Resolved, InvokeError>,
}

struct Resolved {
    function: FunctionId,
    timeout: Duration,
    kind: InvocationType,
    log_type: LogType,
    client_context: Option<ClientContext>,
}

/// The `{FunctionName}` segment of an Invoke API request, or `None` for any other request.
pub fn segment<'b>(head: &RequestHead<'b, '_>) -> Option<&'b str> {
    if head.method != Method::Post {
        return None;
    }
    esb_invoke::function_segment(head.path)
}

/// Checks what the head alone can tell. Without signatures every error is answered now; with
/// them only a missing signature and an oversized payload are (the body is never read for
/// those), everything else after [`run`] verified the signature.
pub fn plan(
    w: &Worker,
    head: &RequestHead<'_, '_>,
    segment: &str,
) -> Result<LambdaCall, RequestError> {
    let resolved = resolve(w, head, segment);
    if w.shared.front.invoke.sigv4.is_none() {
        return Ok(LambdaCall {
            resolved: Ok(resolved.map_err(RequestError::Invoke)?),
        });
    }
    if head.header("authorization").is_none() {
        return Err(auth_error(&esb_sigv4::SigV4Error::Missing));
    }
    if let Err(e @ InvokeError::RequestTooLarge { .. }) = resolved {
        return Err(RequestError::Invoke(e));
    }
    Ok(LambdaCall { resolved })
}

fn resolve(w: &Worker, head: &RequestHead<'_, '_>, segment: &str) -> Result<Resolved, InvokeError> {
    let text = |name| head.header(name).and_then(|v| std::str::from_utf8(v).ok());
    let target = esb_invoke::parse_target(segment, head.query.unwrap_or(""))?;
    let kind = InvocationType::parse(text("x-amz-invocation-type"))?;
    let log_type = LogType::parse(text("x-amz-log-type"))?;
    let client_context = text("x-amz-client-context")
        .map(ClientContext::parse)
        .transpose()?;
    if let BodyFraming::Length(n) = head.framing {
        esb_invoke::check_payload_size(kind, usize::try_from(n).unwrap_or(usize::MAX))?;
    }
    let front = &w.shared.front;
    // Only `$LATEST` exists: esb has no published versions or aliases.
    let found = match target.qualifier.as_deref() {
        None | Some("$LATEST") => front.functions.get(&target.name),
        Some(_) => None,
    };
    let Some(&(function, timeout)) = found else {
        let arn = target.arn(&front.invoke.region, &front.invoke.account_id);
        return Err(InvokeError::function_not_found(&arn));
    };
    if kind == InvocationType::Event && w.shared.events.is_none() {
        // Accepting an Event promises it will run; without a durable queue that would be a lie.
        return Err(InvokeError::Service {
            message: "Event (asynchronous) invocations are not available on this esb yet: it has \
                      no durable queue for them. Use RequestResponse."
                .into(),
        });
    }
    Ok(Resolved {
        function,
        timeout,
        kind,
        log_type,
        client_context,
    })
}

fn auth_error(e: &esb_sigv4::SigV4Error) -> RequestError {
    RequestError::Invoke(InvokeError::Auth {
        error_type: e.error_type(),
        message: e.message(),
    })
}

/// Verifies the signature (when required), then invokes and writes the answer into `out`.
pub async fn run(
    w: &Worker,
    call: LambdaCall,
    head: &RequestHead<'_, '_>,
    ctx: &RequestCtx,
    body: &[u8],
    out: &mut Vec<u8>,
    connection: Connection,
) -> Result<(), RequestError> {
    if let Some(sig) = &w.shared.front.invoke.sigv4 {
        let headers: Vec<(&str, &[u8])> = head.headers.iter().map(|h| (h.name, h.value)).collect();
        let req = esb_sigv4::Request {
            method: head.method.as_str(),
            path: head.path,
            query: head.query.unwrap_or(""),
            headers: &headers,
            body,
        };
        sig.verifier
            .verify(&req, |key| sig.secrets.get(key), ctx.received)
            .map_err(|e| auth_error(&e))?;
    }
    let r = call.resolved.map_err(RequestError::Invoke)?;
    let payload = esb_invoke::payload(r.kind, body).map_err(RequestError::Invoke)?;
    if r.kind == InvocationType::DryRun {
        let (status, headers) = esb_invoke::success_head(r.kind, LogType::None, None);
        write(out, ctx, status, &headers, b"", settle(w, connection));
        return Ok(());
    }

    if r.kind == InvocationType::Event {
        accept_event(w, &r, head, payload).await?;
        let (status, headers) = esb_invoke::success_head(r.kind, LogType::None, None);
        write(out, ctx, status, &headers, b"", settle(w, connection));
        return Ok(());
    }

    let mut scratch = w.buffers.take();
    let mut answer = w.buffers.take();
    // The trace header goes on so a function calling another carries the caller's trace (the
    // RIE hands it to the runtime as `_X_AMZN_TRACE_ID`, which the AWS SDKs send back).
    let extra: Vec<(&str, &[u8])> = r
        .client_context
        .iter()
        .map(|c| ("x-amz-client-context", c.base64.as_bytes()))
        .chain(trace_header(head).map(|v| ("x-amzn-trace-id", v)))
        .chain((r.log_type == LogType::Tail).then_some(("x-amz-log-type", &b"Tail"[..])))
        .collect();
    let called = call_function(
        w,
        r.function,
        r.timeout,
        payload,
        &extra,
        &mut scratch,
        &mut answer,
        ctx,
    )
    .await;
    let result = answer_sync(w, ctx, &r, called, &answer, out, connection);
    w.buffers.give(scratch);
    w.buffers.give(answer);
    result
}

/// The caller's `X-Amzn-Trace-Id`, if it is plain X-Ray text (anything else is not passed on).
fn trace_header<'h>(head: &RequestHead<'h, '_>) -> Option<&'h [u8]> {
    head.header("x-amzn-trace-id")
        .filter(|v| v.len() <= 256 && v.iter().all(|b| b.is_ascii_graphic()))
}

/// Makes an Event invocation durable (fsync on the blocking pool, never on this core); the 202
/// may be sent once this returned `Ok`.
async fn accept_event(
    w: &Worker,
    r: &Resolved,
    head: &RequestHead<'_, '_>,
    payload: &[u8],
) -> Result<(), RequestError> {
    let Some(events) = &w.shared.events else {
        return Err(RequestError::Invoke(InvokeError::Service {
            message: "esb has no queue for Event invocations".into(),
        }));
    };
    let function = w
        .shared
        .pool
        .spec(r.function)
        .map(|s| s.name.as_str().to_string())
        .unwrap_or_default();
    let trace_id = trace_header(head)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_string);
    let client_context = r.client_context.as_ref().map(|c| c.base64.clone());
    let payload = payload.to_vec();
    let sink = std::sync::Arc::clone(&events.sink);
    let job = move || {
        sink.accept(
            &function,
            &payload,
            client_context.as_deref(),
            trace_id.as_deref(),
        )
    };
    let Ok(done) = events.pool.spawn(job) else {
        // Every queue thread is busy with an fsync and the backlog is full: back off.
        return Err(RequestError::Invoke(InvokeError::TooManyRequests {
            reason: ThrottleReason::CallerRateLimitExceeded,
            retry_after_seconds: Some(1),
        }));
    };
    match done.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::error!("async queue refused an Event invocation: {e}");
            Err(RequestError::Invoke(InvokeError::Service {
                message: "esb could not store the Event invocation.".into(),
            }))
        }
        Err(_) => Err(RequestError::Invoke(InvokeError::Service {
            message: "esb is shutting down.".into(),
        })),
    }
}

/// Writes a RequestResponse answer. Function failures (errors, crashes, timeouts) are 200 with
/// `X-Amz-Function-Error: Unhandled`, as Lambda answers them; only esb's own refusals are errors.
fn answer_sync(
    w: &Worker,
    ctx: &RequestCtx,
    r: &Resolved,
    called: Result<crate::upstream::Invoked, CallError>,
    answer: &[u8],
    out: &mut Vec<u8>,
    connection: Connection,
) -> Result<(), RequestError> {
    let id = ctx.id();
    let log = match &called {
        Ok(invoked) if r.log_type == LogType::Tail => invoked
            .log_result
            .as_deref()
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok()),
        _ => None,
    };
    let (function_error, payload): (bool, Cow<'_, [u8]>) = match called {
        Ok(invoked) if invoked.status == 200 || invoked.function_error => (
            esb_event::is_function_error(invoked.function_error, answer),
            Cow::Borrowed(answer),
        ),
        // The RIE itself failed (AWS's answers 502 when the runtime died).
        Ok(_) => (
            true,
            runtime_error(
                "Runtime.ExitError",
                id,
                "Runtime exited without providing a reason",
            ),
        ),
        Err(CallError::Timeout) => (
            true,
            runtime_error(
                "Sandbox.Timedout",
                id,
                &format!(
                    "Task timed out after {:.2} seconds",
                    r.timeout.as_secs_f64()
                ),
            ),
        ),
        Err(CallError::Unreachable(UpstreamError::Connect { .. })) => {
            return Err(RequestError::Invoke(InvokeError::ResourceNotReady {
                message: "The function's execution environment could not be reached.".into(),
            }));
        }
        Err(CallError::Unreachable(UpstreamError::Http(esb_http1::HttpError::BadGateway(
            "body too large",
        )))) => (
            true,
            runtime_error(
                "Function.ResponseSizeTooLarge",
                id,
                "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
            ),
        ),
        Err(CallError::Unreachable(_)) => (
            true,
            runtime_error(
                "Runtime.ExitError",
                id,
                "Runtime exited without providing a reason",
            ),
        ),
        Err(CallError::Acquire(e)) => return Err(RequestError::Invoke(acquire_error(&e))),
    };
    let outcome = SyncOutcome {
        function_error,
        executed_version: "$LATEST",
        log: log.as_deref().unwrap_or_default(),
    };
    // The tail comes from esb-rie (docs/esb-rie.md); AWS's RIE sends none, and then there is no
    // `X-Amz-Log-Result` at all rather than an empty or made-up one.
    let log_type = if log.is_some() {
        LogType::Tail
    } else {
        LogType::None
    };
    let (status, headers) = esb_invoke::success_head(r.kind, log_type, Some(&outcome));
    write(out, ctx, status, &headers, &payload, settle(w, connection));
    Ok(())
}

/// The error object Lambda returns for a failure outside the handler.
fn runtime_error(error_type: &str, request_id: &str, what: &str) -> Cow<'static, [u8]> {
    let v = serde_json::json!({
        "errorType": error_type,
        "errorMessage": format!("RequestId: {request_id} Error: {what}"),
    });
    Cow::Owned(serde_json::to_vec(&v).unwrap_or_default())
}

/// No environment: throttling is the caller's cue to back off; start failures are esb's.
fn acquire_error(e: &AcquireError) -> InvokeError {
    let secs = |d: Duration| (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1) as u32;
    match e {
        AcquireError::AtCapacity { retry_after, .. } => InvokeError::TooManyRequests {
            // `max_capacity` is the function's reserved concurrency.
            reason: ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded,
            retry_after_seconds: Some(secs(*retry_after)),
        },
        AcquireError::StartFailed { .. } | AcquireError::CircuitOpen { .. } => {
            InvokeError::ResourceNotReady {
                message: format!("The function's execution environment could not start: {e}"),
            }
        }
        AcquireError::UnknownFunction | AcquireError::Closed => InvokeError::Service {
            message: format!("esb could not run the function: {e}"),
        },
    }
}

fn write(
    out: &mut Vec<u8>,
    ctx: &RequestCtx,
    status: u16,
    headers: &[(&'static str, String)],
    body: &[u8],
    connection: Connection,
) {
    let headers = headers
        .iter()
        .map(|(n, v)| -> (&str, &[u8]) { (n, v.as_bytes()) })
        .chain(ctx.id_headers());
    // esb's own names, and values that are versions, fixed words or base64.
    let _ = esb_http1::write_response_head(out, status, None, headers, body.len(), connection);
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_carry_a_reason_and_whole_seconds() {
        let e = acquire_error(&AcquireError::AtCapacity {
            status: 503,
            retry_after: Duration::from_millis(1500),
        });
        let r = e.response();
        assert_eq!(r.status, 429);
        assert!(r.headers.contains(&("Retry-After", "2".to_string())));
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body["Reason"],
            "ReservedFunctionConcurrentInvocationLimitExceeded"
        );
        let e = acquire_error(&AcquireError::StartFailed {
            reason: "exec failed".into(),
        });
        assert_eq!(e.status(), 502);
    }

    #[test]
    fn runtime_errors_have_the_lambda_error_shape() {
        let b = runtime_error(
            "Sandbox.Timedout",
            "r-1",
            "Task timed out after 1.00 seconds",
        );
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["errorType"], "Sandbox.Timedout");
        assert_eq!(
            v["errorMessage"],
            "RequestId: r-1 Error: Task timed out after 1.00 seconds"
        );
        assert!(esb_event::is_error_shape(&b));
    }
}
