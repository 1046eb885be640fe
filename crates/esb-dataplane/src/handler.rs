//! The request pipeline: what to do with a parsed request (built-in endpoints, login, or route →
//! authorize → invoke), split in two halves around the body read.
//!
//! Hot path. [`plan`] decides from the head alone, so refusals happen before any body byte is
//! read; [`run`] does the work once the body is in and writes the whole answer into `out`.

use std::borrow::Cow;
use std::rc::Rc;
use std::time::Duration;

use esb_auth::{UserClaims, VerifiedToken};
use esb_event::{Authorizer, RequestView, ResponseError};
use esb_http1::{Connection, Method, RequestHead};
use esb_model::{IdentitySource, PayloadFormat, RouteAuth};
use esb_pool::{AcquireError, FunctionId, Outcome, StopReason};
use esb_router::PathParams;
use monoio::time::timeout;

use crate::errors::{FunctionFailure, LoginFailure, RequestError};
use crate::front::{AuthorizerIdentity, RouteTarget};
use crate::worker::Worker;

pub use crate::ctx::RequestCtx;

/// What a request will get, decided before its body is read.
// The big variant holds the path parameters inline; boxing it would allocate per request.
#[allow(clippy::large_enum_variant)]
pub enum Plan<'w, 'b> {
    Health,
    Jwks,
    Login,
    /// The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`).
    Lambda(crate::lambda_api::LambdaCall),
    Invoke(Invoke<'w, 'b>),
}

/// A routed, authorized request.
pub struct Invoke<'w, 'b> {
    pub target: &'w RouteTarget,
    pub resource: &'w str,
    pub route_method: &'w str,
    pub params: PathParams<'w, 'b>,
    /// The caller's verified token on a `cognito` route.
    pub token: Option<Rc<VerifiedToken>>,
    /// What a Lambda authorizer allowed, and how long it took (ms, 0 when cached).
    pub lambda: Option<(esb_authorizer::Allowed, u64)>,
}

/// Decides from the head: built-in endpoints first, then the routes.
pub fn plan<'w, 'b>(
    w: &'w Worker,
    head: &RequestHead<'b, '_>,
    ctx: &RequestCtx,
) -> Result<Plan<'w, 'b>, RequestError> {
    let front = &w.shared.front;
    let path = head.path;
    let readonly = matches!(head.method, Method::Get | Method::Head);
    if path == "/health" && readonly {
        return Ok(Plan::Health);
    }
    if path == "/.well-known/jwks.json" && readonly {
        return Ok(Plan::Jwks);
    }
    if head.method == Method::Post && front.is_login_path(path) {
        if !front.api_key_ok(single(head, "x-api-key")?) {
            return Err(RequestError::Login(LoginFailure::ApiKey));
        }
        return Ok(Plan::Login);
    }
    if let Some(segment) = crate::lambda_api::segment(head) {
        return crate::lambda_api::plan(w, head, segment).map(Plan::Lambda);
    }
    let m = front
        .routes
        .route(head.method.as_str(), path)
        .map_err(|_| RequestError::NoRoute)?;
    let mut token = None;
    match &m.value.auth {
        RouteAuth::None => {}
        RouteAuth::ApiKey => {
            if !front.api_key_ok(single(head, "x-api-key")?) {
                return Err(RequestError::Forbidden);
            }
        }
        RouteAuth::Cognito => {
            // Raw token or `Bearer <token>` (API Gateway's Cognito authorizer takes both).
            let value =
                single(head, "authorization")?.ok_or(RequestError::Unauthorized("no token"))?;
            let value = std::str::from_utf8(value)
                .map_err(|_| RequestError::Unauthorized("token is not text"))?;
            let verified = w
                .local
                .borrow_mut()
                .tokens
                .verify(&front.tokens, value, ctx.epoch_secs())
                .map_err(|e| RequestError::Unauthorized(e.reason()))?;
            token = Some(verified);
        }
        // Needs an invocation: [`authorize`] runs it before the body is read.
        RouteAuth::Authorizer(_) => {}
    }
    Ok(Plan::Invoke(Invoke {
        target: m.value,
        resource: m.resource,
        route_method: m.method.as_str(),
        params: m.params,
        token,
        lambda: None,
    }))
}

/// Runs the route's Lambda authorizer, if it has one (aws-compat §4.1-§4.4): the token header
/// or REQUEST identity sources are checked (401 without invoking when missing, or not matching
/// the validation regex), the
/// decision comes from this core's cache or from invoking the authorizer function through the
/// pool, and the policy is evaluated for this request's method ARN. Runs before the body is read.
pub async fn authorize<'w, 'b>(
    w: &'w Worker,
    plan: Plan<'w, 'b>,
    head: &RequestHead<'b, '_>,
    ctx: &RequestCtx,
) -> Result<Plan<'w, 'b>, RequestError> {
    let Plan::Invoke(mut inv) = plan else {
        return Ok(plan);
    };
    let Some(idx) = inv.target.authorizer else {
        return Ok(Plan::Invoke(inv));
    };
    let front = &w.shared.front;
    let a = &front.authorizers[idx];
    let api = match inv.target.format {
        PayloadFormat::V1 => esb_authorizer::ApiKind::Rest,
        PayloadFormat::V2 => esb_authorizer::ApiKind::Http,
    };
    let refused = |r| RequestError::Authorizer(r, api);
    let identity = match &a.identity {
        AuthorizerIdentity::Token { header, check } => {
            let header = single(head, header)?.and_then(|v| std::str::from_utf8(v).ok());
            Identity::Token(check.check(header).map_err(refused)?)
        }
        AuthorizerIdentity::Request { sources, format } => {
            let values =
                esb_authorizer::identity_values(sources, |s| identity_value(&inv, head, s))
                    .map_err(refused)?;
            Identity::Request(values, *format)
        }
    };
    let key: Cow<'_, str> = match &identity {
        Identity::Token(token) => Cow::Borrowed(token),
        Identity::Request(values, _) => Cow::Owned(esb_authorizer::cache_key(values)),
    };
    let stage = match inv.target.format {
        PayloadFormat::V1 => front.stage.as_str(),
        PayloadFormat::V2 => "$default",
    };
    let arn = esb_authorizer::method_arn(
        &front.invoke.region,
        &front.api.account_id,
        &front.api.api_id,
        stage,
        head.method.as_str(),
        head.path,
    );
    let now = std::time::Instant::now();
    let cached = if a.ttl.is_zero() {
        None
    } else {
        w.local
            .borrow_mut()
            .decisions
            .entry(idx)
            .or_insert_with(|| esb_authorizer::DecisionCache::new(a.ttl, DECISIONS_PER_AUTHORIZER))
            .get(&key, now)
    };
    let (grant, latency_ms) = match cached {
        Some(g) => (g, 0),
        None => {
            let event = match &identity {
                Identity::Token(token) => esb_authorizer::token_event(token, &arn),
                Identity::Request(values, format) => {
                    request_event(w, &inv, head, ctx, &arn, values, *format)?
                }
            };
            let mut scratch = w.buffers.take();
            let mut answer = w.buffers.take();
            let called = call_function(
                w,
                a.function,
                a.timeout,
                &event,
                &[],
                &mut scratch,
                &mut answer,
                ctx,
            )
            .await;
            let result = match &called {
                Ok(i) if esb_event::is_function_error(i.function_error, &answer) => {
                    esb_authorizer::FunctionResult::Failed(&answer)
                }
                Ok(i) if i.status == 200 => esb_authorizer::FunctionResult::Returned(&answer),
                _ => esb_authorizer::FunctionResult::NotInvoked,
            };
            let parsed = esb_authorizer::parse_result(result, a.format);
            w.buffers.give(scratch);
            w.buffers.give(answer);
            let grant = match parsed {
                Ok(g) => Rc::new(g),
                Err(r) => {
                    if let (esb_authorizer::Refusal::Misconfigured(why), Some(dropped)) =
                        (&r, crate::logs::allow())
                    {
                        tracing::warn!(
                            request_id = ctx.id(),
                            authorizer = a.name,
                            error = why,
                            dropped,
                            "authorizer failed"
                        );
                    }
                    return Err(refused(r));
                }
            };
            if !a.ttl.is_zero()
                && let Some(cache) = w.local.borrow_mut().decisions.get_mut(&idx)
            {
                cache.insert(key.into_owned(), grant.clone(), now);
            }
            (grant, now.elapsed().as_millis() as u64)
        }
    };
    let allowed = grant.decide(&arn).map_err(refused)?;
    inv.lambda = Some((allowed, latency_ms));
    Ok(Plan::Invoke(inv))
}

/// A Lambda authorizer's identity for one request.
enum Identity<'b> {
    Token(&'b str),
    /// The identity sources' values, and the authorizer's payload format.
    Request(Vec<String>, PayloadFormat),
}

/// One REQUEST identity source's value (`None` when the request lacks it): a header's values
/// comma-joined, the last value of a query parameter, or a fact about the route.
fn identity_value(
    inv: &Invoke<'_, '_>,
    head: &RequestHead<'_, '_>,
    source: &IdentitySource,
) -> Option<String> {
    match source {
        IdentitySource::Header(name) => {
            let mut joined: Option<String> = None;
            for h in head
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
            {
                let v = String::from_utf8_lossy(h.value);
                match &mut joined {
                    Some(j) => {
                        j.push(',');
                        j.push_str(&v);
                    }
                    None => joined = Some(v.into_owned()),
                }
            }
            joined
        }
        IdentitySource::QueryString(name) => {
            esb_authorizer::query_value(head.query.unwrap_or(""), name)
        }
        IdentitySource::Context(c) => match c.as_str() {
            "httpMethod" => Some(head.method.as_str().to_string()),
            "resourcePath" => Some(inv.resource.to_string()),
            "routeKey" => Some(format!("{} {}", inv.route_method, inv.resource)),
            _ => None,
        },
        // esb has no stage variables (esb-config refuses them as identity sources).
        IdentitySource::StageVariable(_) => None,
    }
}

/// A REQUEST authorizer's event: the request as the integration would see it (in the
/// authorizer's payload format, without the body), plus the ARN and identity.
fn request_event(
    w: &Worker,
    inv: &Invoke<'_, '_>,
    head: &RequestHead<'_, '_>,
    ctx: &RequestCtx,
    arn: &str,
    identity: &[String],
    format: PayloadFormat,
) -> Result<Vec<u8>, RequestError> {
    use esb_authorizer::RequestShape;
    let shape = match (format, inv.target.format) {
        (PayloadFormat::V2, _) => RequestShape::HttpV2,
        (PayloadFormat::V1, PayloadFormat::V2) => RequestShape::HttpV1,
        (PayloadFormat::V1, PayloadFormat::V1) => RequestShape::Rest,
    };
    let mut proxy = w.buffers.take();
    proxy.clear();
    build_event(w, inv, head, ctx, b"", format, &mut proxy)?;
    let event = esb_authorizer::request_event(&proxy, shape, arn, identity);
    w.buffers.give(proxy);
    event.map_err(|e| {
        // esb-event wrote it, so this is esb's bug, never the caller's.
        RequestError::Authorizer(
            esb_authorizer::Refusal::Misconfigured(format!("REQUEST authorizer event: {e}")),
            match inv.target.format {
                PayloadFormat::V1 => esb_authorizer::ApiKind::Rest,
                PayloadFormat::V2 => esb_authorizer::ApiKind::Http,
            },
        )
    })
}

/// Cached decisions per authorizer per core.
const DECISIONS_PER_AUTHORIZER: usize = 10_000;

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

/// The connection handling to announce now: `connection`, unless shutdown began meanwhile.
pub fn settle(w: &Worker, connection: Connection) -> Connection {
    if w.draining.get() {
        Connection::Close
    } else {
        connection
    }
}

/// Carries out `plan` with the body read; writes the full answer into `out`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    w: &Worker,
    plan: Plan<'_, '_>,
    head: &RequestHead<'_, '_>,
    ctx: &RequestCtx,
    body: &[u8],
    out: &mut Vec<u8>,
    connection: Connection,
) -> Result<(), RequestError> {
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
        Plan::Jwks => {
            let jwks = w.shared.front.jwks.as_bytes();
            write_json(out, head, ctx, 200, &[], jwks, connection);
            Ok(())
        }
        Plan::Login => login(w, head, ctx, body, out, connection).await,
        Plan::Lambda(call) => {
            crate::lambda_api::run(w, call, head, ctx, body, out, connection).await
        }
        Plan::Invoke(inv) => invoke(w, inv, head, ctx, body, out, connection).await,
    }
}

async fn invoke(
    w: &Worker,
    inv: Invoke<'_, '_>,
    head: &RequestHead<'_, '_>,
    ctx: &RequestCtx,
    body: &[u8],
    out: &mut Vec<u8>,
    connection: Connection,
) -> Result<(), RequestError> {
    let mut event = w.buffers.take();
    let mut scratch = w.buffers.take();
    let mut answer = w.buffers.take();
    let result = match build_event(w, &inv, head, ctx, body, inv.target.format, &mut event) {
        Err(e) => Err(e),
        // Lambda's synchronous payload limit: API Gateway accepts 10 MB, the function 6 MB.
        Ok(()) if event.len() > MAX_EVENT_BYTES => Err(RequestError::EventTooLarge),
        Ok(()) => {
            call(
                w,
                &inv,
                head,
                ctx,
                &event,
                &mut scratch,
                &mut answer,
                out,
                connection,
            )
            .await
        }
    };
    w.buffers.give(event);
    w.buffers.give(scratch);
    w.buffers.give(answer);
    result
}

/// The largest event a function accepts (Lambda's 6 MB synchronous invocation payload).
const MAX_EVENT_BYTES: usize = 6 * 1024 * 1024;

/// Acquires an environment, invokes it within the function's timeout, and maps the answer.
#[allow(clippy::too_many_arguments)]
async fn call(
    w: &Worker,
    inv: &Invoke<'_, '_>,
    head: &RequestHead<'_, '_>,
    ctx: &RequestCtx,
    event: &[u8],
    scratch: &mut Vec<u8>,
    answer: &mut Vec<u8>,
    out: &mut Vec<u8>,
    connection: Connection,
) -> Result<(), RequestError> {
    let target = inv.target;
    let called = call_function(
        w,
        target.function,
        target.timeout,
        event,
        &[],
        scratch,
        answer,
        ctx,
    )
    .await;
    match called {
        Ok(invoked) => map_response(inv, head, ctx, invoked, answer, out, settle(w, connection)),
        Err(CallError::Acquire(e)) => Err(e.into()),
        Err(CallError::Timeout) => Err(RequestError::Timeout),
        Err(CallError::Unreachable(_)) => Err(RequestError::Function(
            FunctionFailure::Unreachable,
            target.format,
        )),
    }
}

/// Why [`call_function`] got no answer from the function.
#[derive(Debug)]
pub enum CallError {
    /// No environment could be had.
    Acquire(AcquireError),
    /// The function did not answer within its timeout; its environment was destroyed.
    Timeout,
    /// The environment could not be reached or its answer was broken; it was destroyed.
    Unreachable(crate::upstream::InvokeError),
}

/// The one way to run a function: acquire an environment of `f` from the pool table (bounded by
/// the function's acquire wait), POST `event` to it within `limit`, release it (reuse, or destroy
/// after a timeout or a broken exchange). The answer's body is left in `answer`. Routes, the
/// Invoke API and Lambda authorizers all come through here.
#[allow(clippy::too_many_arguments)]
pub async fn call_function(
    w: &Worker,
    f: FunctionId,
    limit: Duration,
    event: &[u8],
    extra: &[(&str, &[u8])],
    scratch: &mut Vec<u8>,
    answer: &mut Vec<u8>,
    ctx: &RequestCtx,
) -> Result<crate::upstream::Invoked, CallError> {
    let pool = &w.shared.pool;
    let lease = match timeout(pool.wait_limit(f), pool.acquire(f)).await {
        Ok(Ok(lease)) => lease,
        Ok(Err(e)) => return Err(CallError::Acquire(e)),
        Err(_) => return Err(CallError::Acquire(pool.timed_out(f))),
    };
    let env = lease.env();
    let invoking = w
        .upstream
        .invoke(env, lease.addr(), event, extra, scratch, answer);
    match timeout(limit, invoking).await {
        Err(_) => {
            // The connection in use was dropped with the future; the environment's state is
            // unknown.
            w.upstream.forget(env);
            lease.release(Outcome::Destroy(StopReason::Timeout));
            Err(CallError::Timeout)
        }
        Ok(Err(e)) => {
            if let Some(dropped) = crate::logs::allow() {
                tracing::warn!(request_id = ctx.id(), error = %e, dropped, "invocation failed");
            }
            w.upstream.forget(env);
            lease.release(Outcome::Destroy(StopReason::Faulty));
            Err(CallError::Unreachable(e))
        }
        Ok(Ok(invoked)) => {
            lease.release(Outcome::Reuse);
            Ok(invoked)
        }
    }
}

/// Writes the API Gateway event for this request into `out` (esb-event does the sanitising).
fn build_event(
    w: &Worker,
    inv: &Invoke<'_, '_>,
    head: &RequestHead<'_, '_>,
    ctx: &RequestCtx,
    body: &[u8],
    format: PayloadFormat,
    out: &mut Vec<u8>,
) -> Result<(), RequestError> {
    let front = &w.shared.front;
    let v2 = format == PayloadFormat::V2;
    let domain = if front.domain_name.is_empty() {
        host_without_port(head.host.unwrap_or(""))
    } else {
        front.domain_name.as_str()
    };
    let user_agent = head
        .header("user-agent")
        .and_then(|v| std::str::from_utf8(v).ok());
    let req = RequestView {
        method: head.method.as_str(),
        path: head.path,
        query: head.query.unwrap_or(""),
        headers: head.headers,
        body,
        source_ip: ctx.source_ip(),
        user_agent,
        request_id: ctx.id(),
        request_time_ms: ctx.epoch_ms(),
        stage: if v2 { "$default" } else { front.stage.as_str() },
        resource: inv.resource,
        route_method: inv.route_method,
        path_params: inv.params.as_slice(),
        domain_name: domain,
        protocol: head.version.as_str(),
        scheme: "https",
        port: w.shared.port,
        authorizer: match (&inv.token, &inv.lambda) {
            (Some(t), _) => Authorizer::Cognito {
                claims: &t.claims,
                username: &t.username,
            },
            (None, Some((allowed, latency))) => Authorizer::Lambda {
                principal_id: allowed.principal_id.as_deref().unwrap_or(""),
                context: &allowed.context,
                integration_latency_ms: *latency,
            },
            (None, None) => Authorizer::None,
        },
    };
    let mut local = w.local.borrow_mut();
    if v2 {
        local.events.write_v2(&req, &front.api, out);
    } else {
        local.events.write_v1(&req, &front.api, out);
    }
    Ok(())
}

/// `example.com:8443` → `example.com`, `[::1]:8443` → `[::1]` (the Host was validated).
fn host_without_port(host: &str) -> &str {
    match host.strip_prefix('[') {
        Some(rest) => rest.find(']').map_or(host, |i| &host[..i + 2]),
        None => host.split(':').next().unwrap_or(host),
    }
}

/// Turns the function's answer into the client's response (esb-event validates it).
#[allow(clippy::too_many_arguments)]
fn map_response(
    inv: &Invoke<'_, '_>,
    head: &RequestHead<'_, '_>,
    ctx: &RequestCtx,
    invoked: crate::upstream::Invoked,
    answer: &[u8],
    out: &mut Vec<u8>,
    connection: Connection,
) -> Result<(), RequestError> {
    let format = inv.target.format;
    let fail = |f| RequestError::Function(f, format);
    if invoked.status != 200 && !invoked.function_error {
        // The RIE itself failed (AWS's answers 502 for a crashed runtime).
        return Err(fail(FunctionFailure::Error));
    }
    let function_error = esb_event::is_function_error(invoked.function_error, answer);
    let mapped = match format {
        PayloadFormat::V1 => esb_event::map_v1(answer, function_error),
        PayloadFormat::V2 => esb_event::map_v2(answer, function_error),
    };
    let resp = match mapped {
        Ok(r) => r,
        Err(ResponseError::FunctionError) => return Err(fail(FunctionFailure::Error)),
        Err(e) => {
            // Parser messages quote the payload; keep the log to one line.
            let why = e.to_string();
            let why = why.lines().next().unwrap_or("");
            if crate::logs::allow().is_some() {
                tracing::info!(
                    request_id = ctx.id(),
                    error = why,
                    "function answer refused"
                );
            }
            return Err(fail(FunctionFailure::Malformed));
        }
    };
    let headers = resp
        .headers
        .iter()
        .map(|(n, v)| -> (&str, &[u8]) { (n, v.as_bytes()) })
        .chain(ctx.id_headers());
    let body: &[u8] = &resp.body;
    if esb_http1::write_response_head(out, resp.status, None, headers, body.len(), connection)
        .is_err()
    {
        return Err(fail(FunctionFailure::Malformed));
    }
    if head.method != Method::Head {
        out.extend_from_slice(body);
    }
    Ok(())
}

/// Cognito's `InitiateAuth` request, as much of it as esb reads. The original ESB's body is
/// just `{"AuthParameters": {...}}`; Cognito clients also send `AuthFlow` and `ClientId`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InitiateAuth {
    auth_flow: Option<String>,
    auth_parameters: Option<AuthParameters>,
}

#[derive(serde::Deserialize)]
struct AuthParameters {
    #[serde(rename = "USERNAME")]
    username: Option<String>,
    #[serde(rename = "PASSWORD")]
    password: Option<String>,
}

/// `POST /user/auth/v1`: the key was checked in [`plan`]; the password is verified and the
/// tokens are signed on the blocking pool (argon2 and RSA signing take milliseconds).
async fn login(
    w: &Worker,
    head: &RequestHead<'_, '_>,
    ctx: &RequestCtx,
    body: &[u8],
    out: &mut Vec<u8>,
    connection: Connection,
) -> Result<(), RequestError> {
    let bad = |why| RequestError::Login(LoginFailure::BadRequest(why));
    let req: InitiateAuth =
        serde_json::from_slice(body).map_err(|_| bad("body is not an InitiateAuth request"))?;
    if let Some(flow) = &req.auth_flow
        && flow != "USER_PASSWORD_AUTH"
        && flow != "ADMIN_USER_PASSWORD_AUTH"
    {
        return Err(RequestError::Login(LoginFailure::UnsupportedFlow));
    }
    let params = req
        .auth_parameters
        .ok_or_else(|| bad("no AuthParameters"))?;
    let (Some(username), Some(password)) = (params.username, params.password) else {
        return Err(bad("USERNAME or PASSWORD missing"));
    };
    let front = &w.shared.front;
    let (users, tokens, now) = (front.users.clone(), front.tokens.clone(), ctx.epoch_secs());
    let pending = w
        .shared
        .blocking
        .spawn(move || {
            let user = users
                .verify_password(&username, &password)
                .map_err(|_| RequestError::Login(LoginFailure::Credentials))?;
            let claims = UserClaims {
                username: &user.username,
                email: user.email.as_deref(),
                groups: &user.groups,
            };
            tokens
                .issue(&claims, now, now, None)
                .map_err(|_| RequestError::Internal("token signing failed"))
        })
        .map_err(|_| RequestError::Busy)?;
    let issued = pending
        .await
        .map_err(|_| RequestError::Internal("password pool stopped"))??;
    let answer = serde_json::json!({
        "AuthenticationResult": {
            "AccessToken": issued.access_token,
            "ExpiresIn": issued.expires_in,
            "IdToken": issued.id_token,
            "RefreshToken": issued.refresh_token,
            "TokenType": "Bearer",
        },
        "ChallengeParameters": {},
    });
    let bytes = serde_json::to_vec(&answer).map_err(|_| RequestError::Internal("json"))?;
    let extra: [(&str, &[u8]); 1] = [("PADMA_USER_AUTHORIZED", b"true")];
    write_json(out, head, ctx, 200, &extra, &bytes, settle(w, connection));
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(host_without_port("example.com:8443"), "example.com");
        assert_eq!(host_without_port("example.com"), "example.com");
        assert_eq!(host_without_port("[::1]:8443"), "[::1]");
        assert_eq!(host_without_port("[::1]"), "[::1]");
        assert_eq!(host_without_port(""), "");
    }
}
