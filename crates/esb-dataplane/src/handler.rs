//! The request pipeline: what to do with a parsed request (built-in endpoints, login, or route →
//! authorize → invoke), split in two halves around the body read.
//!
//! Hot path. [`plan`] decides from the head alone, so refusals happen before any body byte is
//! read; [`run`] does the work once the body is in and writes the whole answer into `out`.

use esb_http1::{Connection, Method, RequestHead};

use crate::errors::{LoginFailure, RequestError};
use crate::worker::Worker;

pub use crate::ctx::RequestCtx;

/// What a request will get, decided before its body is read.
pub enum Plan {
    Health,
    Login,
}

/// Decides from the head: built-in endpoints first, then the routes.
pub fn plan(
    w: &Worker,
    head: &RequestHead<'_, '_>,
    _ctx: &RequestCtx,
) -> Result<Plan, RequestError> {
    let front = &w.shared.front;
    let path = head.path;
    if path == "/health" && matches!(head.method, Method::Get | Method::Head) {
        return Ok(Plan::Health);
    }
    if head.method == Method::Post && front.is_login_path(path) {
        if !front.api_key_ok(single(head, "x-api-key")?) {
            return Err(RequestError::Login(LoginFailure::ApiKey));
        }
        return Ok(Plan::Login);
    }
    Err(RequestError::NoRoute)
}

/// The one value of a header that must not repeat (`x-api-key`, `authorization`): two of them
/// is a client trying its luck (checklist B26, §2.6), answered 400.
fn single<'b>(head: &RequestHead<'b, '_>, name: &str) -> Result<Option<&'b [u8]>, RequestError> {
    let mut found = None;
    for h in head
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
    {
        if found.is_some() {
            return Err(RequestError::Http(esb_http1::HttpError::BadRequest(
                "repeated credential header",
            )));
        }
        found = Some(h.value);
    }
    Ok(found)
}

/// Carries out `plan` with the body read; writes the full answer into `out`.
pub async fn run(
    w: &Worker,
    plan: Plan,
    head: &RequestHead<'_, '_>,
    ctx: &RequestCtx,
    body: &[u8],
    out: &mut Vec<u8>,
    connection: Connection,
) -> Result<(), RequestError> {
    let _ = (w, body);
    match plan {
        Plan::Health => {
            write_json(
                out,
                head,
                ctx,
                200,
                &[],
                br#"{"status":"healthy"}"#,
                connection,
            );
            Ok(())
        }
        Plan::Login => Err(RequestError::Internal("login not wired yet")),
    }
}

/// Writes a JSON answer made by esb itself (constant-safe headers).
pub fn write_json(
    out: &mut Vec<u8>,
    head: &RequestHead<'_, '_>,
    ctx: &RequestCtx,
    status: u16,
    extra: &[(&str, &[u8])],
    body: &[u8],
    connection: Connection,
) {
    let fixed: [(&str, &[u8]); 1] = [("content-type", b"application/json")];
    let headers = fixed
        .into_iter()
        .chain(extra.iter().copied())
        .chain(ctx.id_headers());
    let _ = esb_http1::write_response_head(out, status, None, headers, body.len(), connection);
    if head.method != Method::Head {
        out.extend_from_slice(body);
    }
}
