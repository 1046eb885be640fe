//! Hot path: the two HTTP listeners (invoke endpoint, Runtime API) driving one [`Machine`].
//!
//! Everything runs on one current-thread tokio runtime: an invocation crosses no thread, and
//! the machine's mutex is never contended or held across an await. Every transition's effect
//! (answer a caller, answer a parked `/next`, spawn or kill the runtime) is carried out right
//! after the lock is released.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use esb_runtime_api::render::{self, Rendered};
use esb_runtime_api::route::{self, RuntimeRoute};
use esb_runtime_api::{
    ApiError, Completed, Invocation, MAX_PAYLOAD_BYTES, Machine, Next, Outcome, Reserve,
};
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::capture::{self, Capture, Pipes};
use crate::cli::Settings;
use crate::{log, process};

/// The outcome, and the invocation's log lines when the caller asked for `Tail`.
type Finished = (Outcome, Option<Vec<u8>>);
type Caller = oneshot::Sender<Finished>;
type Waiter = oneshot::Sender<Invocation>;
type Body = Full<Bytes>;

/// State shared by both listeners and the process watcher.
pub struct Shared {
    settings: Settings,
    /// `AWS_LAMBDA_RUNTIME_API` as given to the runtime (the bound address).
    runtime_api: String,
    arn: HeaderValue,
    timeout: Duration,
    machine: Mutex<Machine<Caller, Waiter>>,
    procs: Mutex<Procs>,
    capture: Arc<Capture>,
}

/// The runtime process of the current generation.
#[derive(Default)]
struct Procs {
    generation: u64,
    pid: Option<u32>,
    /// A kill asked for before the spawn registered its pid.
    kill_pending: Option<u64>,
    spawned_at: Option<Instant>,
    init_duration: Option<Duration>,
    /// The current generation's stdout/stderr, drained when a kept invocation completes.
    pipes: Option<Pipes>,
}

impl Shared {
    pub fn new(settings: Settings, runtime_api: SocketAddr) -> Arc<Self> {
        let arn = esb_runtime_api::function_arn(&settings.function_name);
        Arc::new(Shared {
            runtime_api: runtime_api.to_string(),
            arn: HeaderValue::try_from(arn).unwrap_or_else(|_| HeaderValue::from_static("invalid")),
            timeout: Duration::from_secs(settings.timeout_secs),
            machine: Mutex::new(Machine::new(settings.timeout_secs)),
            procs: Mutex::new(Procs::default()),
            capture: Arc::new(Capture::default()),
            settings,
        })
    }

    fn machine(&self) -> MutexGuard<'_, Machine<Caller, Waiter>> {
        // A panic while holding the lock leaves a consistent machine (transitions validate
        // before they mutate), so poisoning is ignored.
        self.machine.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn procs(&self) -> MutexGuard<'_, Procs> {
        self.procs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `request_id`'s kept log lines over, after taking what the runtime already wrote.
    fn finish_log(&self, request_id: &str) -> Option<Vec<u8>> {
        if !self.capture.keeps(request_id) {
            return None;
        }
        let pipes = self.procs().pipes.clone();
        if let Some(pipes) = pipes {
            capture::drain(&pipes, &self.capture);
        }
        self.capture.finish(request_id)
    }

    /// Kills the current runtime, for shutdown.
    pub fn kill_runtime(&self) {
        if let Some(pid) = self.procs().pid {
            process::kill_group(pid);
        }
    }
}

#[derive(Clone, Copy)]
pub enum Api {
    Invoke,
    Runtime,
}

/// Accepts connections forever, serving `api` on each.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, api: Api) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning; the listener stays usable.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move {
                    Ok::<_, Infallible>(match api {
                        Api::Invoke => invoke(shared, req).await,
                        Api::Runtime => runtime_api(shared, req).await,
                    })
                }
            });
            let conn = http1::Builder::new()
                // Go writes canonical header names; some runtime clients compare them exactly.
                .title_case_headers(true)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Invoke endpoint

async fn invoke(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    if !route::is_invoke(req.uri().path()) {
        return not_found();
    }
    let headers = req.headers();
    let client_context = match header(headers, "x-amz-client-context") {
        None => None,
        Some(encoded) => match base64::engine::general_purpose::STANDARD.decode(encoded) {
            Ok(decoded) => Some(String::from_utf8_lossy(&decoded).into_owned()),
            // RIE: 500 with an empty body.
            Err(e) => {
                tracing::error!("Failed to decode X-Amz-Client-Context: {e}");
                return plain(StatusCode::INTERNAL_SERVER_ERROR, None, Bytes::new());
            }
        },
    };
    let tenant_id = header(headers, "x-amz-tenant-id").map(str::to_owned);
    let trace_id = header(headers, "x-amzn-trace-id").map(str::to_owned);
    // esb-rie extension (docs/esb-rie.md): AWS's RIE ignores the header.
    let keep_log = header(headers, "x-amz-log-type") == Some("Tail");
    // RIE reads the whole body and silently truncates it to the payload limit.
    let payload = match read_body(req.into_body(), MAX_PAYLOAD_BYTES).await {
        Ok((body, _)) => body,
        Err(e) => {
            tracing::debug!("invoke body: {e}");
            return plain(StatusCode::BAD_REQUEST, None, Bytes::new());
        }
    };

    let request_id = uuid::Uuid::new_v4().to_string();
    let started = Instant::now();
    let deadline_ms = epoch_ms() + shared.timeout.as_millis() as u64;
    let invocation = Invocation {
        request_id: request_id.clone(),
        payload,
        deadline_ms,
        client_context,
        tenant_id,
        trace_id,
    };
    let (tx, rx) = oneshot::channel();
    let reserved = shared.machine().reserve(invocation, tx);
    if let Reserve::Busy { in_flight, .. } = &reserved {
        tracing::info!("ReserveFailed: invocation {in_flight} in progress, answering 429");
        return rendered(render::busy(in_flight), None);
    }
    let start = log::start(&request_id, &shared.settings.function_version);
    if keep_log {
        shared.capture.begin(&request_id);
        shared.capture.push(start.as_bytes());
    }
    let spawned = match reserved {
        Reserve::Spawn { generation } => {
            start_runtime(&shared, generation);
            true
        }
        Reserve::Deliver { waiter, invocation } => {
            if let Err(invocation) = waiter.send(invocation) {
                shared.machine().delivery_failed(invocation);
            }
            false
        }
        Reserve::Queued | Reserve::Busy { .. } => false,
    };
    // The wait runs in its own task so a caller that hangs up cannot cancel the timeout: a hung
    // function is still killed and the environment freed.
    let waiter = tokio::spawn(wait_outcome(
        shared.clone(),
        request_id.clone(),
        rx,
        started,
        spawned,
    ));
    let (outcome, log) = match waiter.await {
        Ok(finished) => finished,
        Err(e) => (
            Outcome::RuntimeExit {
                reason: format!("esb-rie internal error: {e}"),
            },
            None,
        ),
    };
    let mut res = rendered(render::outcome(&request_id, outcome), Some(&request_id));
    if let Some(log) = log {
        let encoded = base64::engine::general_purpose::STANDARD.encode(capture::tail(&log));
        insert(res.headers_mut(), "x-amz-log-result", &encoded);
    }
    res
}

async fn wait_outcome(
    shared: Arc<Shared>,
    request_id: String,
    mut rx: oneshot::Receiver<Finished>,
    started: Instant,
    spawned: bool,
) -> Finished {
    let deadline = tokio::time::Instant::from_std(started + shared.timeout);
    let lost = || {
        let outcome = Outcome::RuntimeExit {
            reason: "esb-rie lost the invocation".to_owned(),
        };
        (outcome, None)
    };
    let (outcome, mut log) = tokio::select! {
        biased;
        done = &mut rx => done.unwrap_or_else(|_| lost()),
        () = tokio::time::sleep_until(deadline) => {
            let timed_out = shared.machine().timeout(&request_id);
            match timed_out {
                Some(t) => {
                    // Its lines up to now; the kill comes after.
                    let log = shared.finish_log(&request_id);
                    if let Some(generation) = t.kill {
                        kill(&shared, generation);
                    }
                    (t.completed.outcome, log)
                }
                // Finished in the same instant: the answer is already in the channel.
                None => rx.await.unwrap_or_else(|_| lost()),
            }
        }
    };
    let elapsed = started.elapsed().min(shared.timeout);
    let init = if spawned {
        shared.procs().init_duration
    } else {
        None
    };
    let lines = log::end_report(
        &request_id,
        init,
        elapsed,
        &shared.settings.memory_mb,
        &outcome,
    );
    if let Some(log) = log.as_mut() {
        log.extend_from_slice(lines.as_bytes());
    }
    (outcome, log)
}

// ---------------------------------------------------------------------------------------------
// Runtime API

async fn runtime_api(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    match route::runtime(req.method().as_str(), &path) {
        RuntimeRoute::Next => next(shared).await,
        RuntimeRoute::Response(id) => response(&shared, id, req).await,
        RuntimeRoute::Error(id) => error(&shared, id, req).await,
        RuntimeRoute::InitError => init_error(&shared, req).await,
        RuntimeRoute::Ping => plain(
            StatusCode::OK,
            Some(render::TEXT),
            Bytes::from_static(b"pong"),
        ),
        RuntimeRoute::MethodNotAllowed => plain(StatusCode::METHOD_NOT_ALLOWED, None, Bytes::new()),
        RuntimeRoute::NotFound => not_found(),
    }
}

async fn next(shared: Arc<Shared>) -> Response<Body> {
    let (tx, rx) = oneshot::channel();
    let polled = shared.machine().next(tx);
    note_initialised(&shared);
    match polled {
        Next::Deliver(invocation) => next_response(&shared, invocation),
        Next::Parked { replaced } => {
            drop(replaced);
            match rx.await {
                Ok(invocation) => next_response(&shared, invocation),
                // The runtime was replaced while this poll was parked; it is being killed.
                Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, None, Bytes::new()),
            }
        }
        Next::Rejected(e) => api_error(&e),
    }
}

fn next_response(shared: &Shared, invocation: Invocation) -> Response<Body> {
    let mut res = Response::new(Full::new(invocation.payload));
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(render::JSON));
    insert(h, "lambda-runtime-aws-request-id", &invocation.request_id);
    h.insert(
        "lambda-runtime-deadline-ms",
        HeaderValue::from(invocation.deadline_ms),
    );
    h.insert("lambda-runtime-invoked-function-arn", shared.arn.clone());
    if let Some(v) = &invocation.client_context {
        insert(h, "lambda-runtime-client-context", v);
    }
    if let Some(v) = &invocation.tenant_id {
        insert(h, "lambda-runtime-aws-tenant-id", v);
    }
    if let Some(v) = &invocation.trace_id {
        insert(h, "lambda-runtime-trace-id", v);
    }
    res
}

async fn response(shared: &Shared, id: &str, req: Request<Incoming>) -> Response<Body> {
    if let Some(mode) = header(req.headers(), "lambda-runtime-function-response-mode")
        && mode != "streaming"
    {
        return api_error(&ApiError::InvalidFunctionResponseMode);
    }
    let content_type = header(req.headers(), CONTENT_TYPE.as_str()).map(str::to_owned);
    let body = match read_body(req.into_body(), MAX_PAYLOAD_BYTES).await {
        Ok((body, false)) => body,
        Ok((_, true)) => {
            let done = shared.machine().response_too_large(id);
            return match done {
                Ok(done) => {
                    complete(shared, done);
                    api_error(&ApiError::PayloadTooLarge)
                }
                Err(e) => api_error(&e),
            };
        }
        Err(e) => {
            tracing::debug!("response body: {e}");
            return plain(StatusCode::BAD_REQUEST, None, Bytes::new());
        }
    };
    let done = shared.machine().response(id, body, content_type);
    match done {
        Ok(done) => {
            complete(shared, done);
            accepted()
        }
        Err(e) => api_error(&e),
    }
}

async fn error(shared: &Shared, id: &str, req: Request<Incoming>) -> Response<Body> {
    let content_type = header(req.headers(), CONTENT_TYPE.as_str()).map(str::to_owned);
    let error_type = header(req.headers(), "lambda-runtime-function-error-type").map(str::to_owned);
    let body = match read_body(req.into_body(), MAX_PAYLOAD_BYTES).await {
        Ok((body, false)) => body,
        Ok((_, true)) => return api_error(&ApiError::PayloadTooLarge),
        Err(_) => return plain(StatusCode::BAD_REQUEST, None, Bytes::new()),
    };
    let done = shared.machine().error(id, body, content_type, error_type);
    match done {
        Ok(done) => {
            complete(shared, done);
            accepted()
        }
        Err(e) => api_error(&e),
    }
}

async fn init_error(shared: &Shared, req: Request<Incoming>) -> Response<Body> {
    let content_type = header(req.headers(), CONTENT_TYPE.as_str()).map(str::to_owned);
    let error_type = header(req.headers(), "lambda-runtime-function-error-type").map(str::to_owned);
    let body = match read_body(req.into_body(), MAX_PAYLOAD_BYTES).await {
        Ok((body, false)) => body,
        Ok((_, true)) => return api_error(&ApiError::PayloadTooLarge),
        Err(_) => return plain(StatusCode::BAD_REQUEST, None, Bytes::new()),
    };
    let reported = shared.machine().init_error(body, content_type, error_type);
    match reported {
        Ok(()) => accepted(),
        Err(e) => api_error(&e),
    }
}

fn complete(shared: &Shared, done: Completed<Caller>) {
    let log = shared.finish_log(&done.request_id);
    // The caller may have hung up; its timeout task still logged END/REPORT.
    let _ = done.caller.send((done.outcome, log));
}

// ---------------------------------------------------------------------------------------------
// Runtime process

fn start_runtime(shared: &Arc<Shared>, generation: u64) {
    let program = &shared.settings.command[0];
    tracing::info!(
        "exec '{program}' (cwd={}, handler={})",
        shared.settings.cwd.display(),
        shared.settings.handler.as_deref().unwrap_or("")
    );
    match process::spawn(&shared.settings, &shared.runtime_api) {
        Ok((mut child, pipes)) => {
            for stream in [capture::Stream::Stdout, capture::Stream::Stderr] {
                tokio::spawn(capture::forward(
                    pipes.clone(),
                    stream,
                    shared.capture.clone(),
                ));
            }
            let pid = child.id();
            let kill_now = {
                let mut procs = shared.procs();
                procs.generation = generation;
                procs.pid = pid;
                procs.spawned_at = Some(Instant::now());
                procs.init_duration = None;
                procs.pipes = Some(pipes);
                procs.kill_pending.take() == Some(generation)
            };
            if kill_now && let Some(pid) = pid {
                process::kill_group(pid);
            }
            let shared = shared.clone();
            tokio::spawn(async move {
                let reason = match child.wait().await {
                    Ok(status) => process::describe(status),
                    Err(e) => format!("wait failed: {e}"),
                };
                tracing::info!("Process runtime-{generation} exited: {reason}");
                runtime_exited(&shared, generation, &reason);
            });
        }
        Err(e) => {
            tracing::error!("cannot start runtime '{program}': {e}");
            runtime_exited(shared, generation, &format!("fork/exec {program}: {e}"));
        }
    }
}

fn runtime_exited(shared: &Arc<Shared>, generation: u64, reason: &str) {
    {
        let mut procs = shared.procs();
        if procs.generation == generation {
            procs.pid = None;
        }
    }
    let exited = shared.machine().runtime_exited(generation, reason);
    drop(exited.dropped_waiter);
    if let Some(done) = exited.completed {
        complete(shared, done);
    }
    if let Some(generation) = exited.spawn {
        start_runtime(shared, generation);
    }
}

fn kill(shared: &Shared, generation: u64) {
    let mut procs = shared.procs();
    match procs.pid {
        Some(pid) if procs.generation == generation => {
            tracing::warn!("Reset initiated: sending SIGKILL to runtime-{generation} ({pid})");
            process::kill_group(pid);
        }
        _ if procs.generation < generation => procs.kill_pending = Some(generation),
        _ => {}
    }
}

fn note_initialised(shared: &Shared) {
    let mut procs = shared.procs();
    if procs.init_duration.is_none()
        && let Some(at) = procs.spawned_at
    {
        procs.init_duration = Some(at.elapsed());
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

/// Reads a body, keeping at most `limit` bytes. Returns the kept bytes and whether more came.
async fn read_body(mut body: Incoming, limit: usize) -> Result<(Bytes, bool), hyper::Error> {
    let mut buf = BytesMut::new();
    let mut over = false;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers
        };
        let room = limit - buf.len();
        if data.len() > room {
            over = true;
            buf.extend_from_slice(&data[..room]);
        } else if buf.is_empty() && !over {
            // The common single-frame body: keep the buffer hyper filled, no copy.
            if body.is_end_stream() {
                return Ok((data, false));
            }
            buf.extend_from_slice(&data);
        } else {
            buf.extend_from_slice(&data);
        }
    }
    Ok((buf.freeze(), over))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::try_from(value) {
        headers.insert(name, v);
    }
}

fn rendered(r: Rendered, request_id: Option<&str>) -> Response<Body> {
    let mut res = Response::new(Full::new(r.body));
    *res.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let h = res.headers_mut();
    insert(h, CONTENT_TYPE.as_str(), &r.content_type);
    if r.function_error {
        h.insert(
            "x-amz-function-error",
            HeaderValue::from_static("Unhandled"),
        );
    }
    if let Some(id) = request_id {
        insert(h, "x-amzn-requestid", id);
    }
    if r.status == 429 {
        h.insert(
            "x-amzn-errortype",
            HeaderValue::from_static(render::BUSY_ERROR_TYPE),
        );
    }
    res
}

fn plain(status: StatusCode, content_type: Option<&'static str>, body: Bytes) -> Response<Body> {
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    if let Some(ct) = content_type {
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    res
}

/// Go's default 404, as RIE serves it for unknown paths.
fn not_found() -> Response<Body> {
    let mut res = plain(
        StatusCode::NOT_FOUND,
        Some(render::TEXT),
        Bytes::from_static(render::NOT_FOUND_BODY),
    );
    res.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    res
}

fn accepted() -> Response<Body> {
    plain(
        StatusCode::ACCEPTED,
        Some(render::JSON),
        Bytes::from_static(render::ACCEPTED_BODY),
    )
}

fn api_error(e: &ApiError) -> Response<Body> {
    plain(
        StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
        Some(render::JSON),
        render::api_error(e),
    )
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
