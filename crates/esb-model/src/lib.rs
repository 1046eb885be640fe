//! esb's vocabulary: the validated function and route specs every other crate speaks.
//!
//! These types are what `esb-config` produces after parsing and validating the user's files, and
//! what the data plane (routing, events, pool) and the control plane (runtimes, schedules) consume.
//! They carry no IO and no defaults of their own: defaults are applied once, in `esb-config`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A function's name as written in `functions.yml` (and as used by the Invoke API).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct FunctionName(Arc<str>);

impl FunctionName {
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl std::borrow::Borrow<str> for FunctionName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Everything esb needs to run one function.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionSpec {
    pub name: FunctionName,
    pub runtime: RuntimeSpec,
    /// Function timeout (Lambda `Timeout`): the invocation deadline, and RIE's `AWS_LAMBDA_FUNCTION_TIMEOUT`.
    pub timeout: Duration,
    /// Lambda `MemorySize` in MB: a container memory limit on Docker, informational elsewhere.
    pub memory_size: u32,
    /// The function's own environment, `defaults.environment` already merged in (function wins).
    pub environment: BTreeMap<String, String>,
    pub scaling: ScalingSpec,
    pub schedules: Vec<ScheduleSpec>,
}

/// How an execution environment of a function comes to exist.
#[derive(Clone, Debug, PartialEq)]
pub enum RuntimeSpec {
    /// An `esb-rie` (or AWS RIE) child process running `command` on this host: the embedded default.
    Process {
        command: Vec<String>,
        working_dir: Option<PathBuf>,
    },
    /// A container from `image`, started through the Docker Engine API.
    Docker { image: String, rie: RieSource },
    /// An RIE that is already running at a fixed address; esb never starts or stops it.
    Endpoint { addr: SocketAddr },
}

impl RuntimeSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            RuntimeSpec::Process { .. } => "process",
            RuntimeSpec::Docker { .. } => "docker",
            RuntimeSpec::Endpoint { .. } => "endpoint",
        }
    }
}

/// Which RIE serves invocations inside a function container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RieSource {
    /// esb bind-mounts its static `esb-rie` and makes it the entrypoint (what SAM CLI does).
    #[default]
    Injected,
    /// Keep the RIE bundled in the image (AWS base images): esb must never overlap invocations.
    Image,
}

/// Pool sizing and back-pressure for one function.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalingSpec {
    /// At most this many execution environments at once (Lambda reserved concurrency).
    pub max_capacity: u32,
    /// Kept warm even when idle, and started at boot (Lambda provisioned concurrency).
    pub min_capacity: u32,
    /// An environment idle this long is reaped.
    pub idle_timeout: Duration,
    /// How long a request waits for an environment at capacity before it is rejected.
    pub acquire_timeout: Duration,
    /// At most this many requests wait for a busy environment at once; more are rejected at
    /// once. Requests waiting for a cold start begun for them do not count.
    pub max_queue: u32,
    /// The status of that rejection: 503 (default) or 429.
    pub reject_status: u16,
}

/// The default `scaling.max_queue`: enough for bursts far above any edge host's environments,
/// small enough that an overload cannot hold unbounded connections and memory.
pub const DEFAULT_MAX_QUEUE: u32 = 1000;

impl Default for ScalingSpec {
    fn default() -> Self {
        Self {
            max_capacity: 10,
            min_capacity: 0,
            idle_timeout: Duration::from_secs(300),
            acquire_timeout: Duration::from_secs(30),
            max_queue: DEFAULT_MAX_QUEUE,
            reject_status: 503,
        }
    }
}

/// A scheduled invocation (`rate(...)` or `cron(...)` in AWS syntax).
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleSpec {
    /// The expression exactly as written, e.g. `rate(5 minutes)` or `cron(0 12 * * ? *)`.
    pub expression: String,
    /// The event to send verbatim; `None` sends the EventBridge scheduled-event JSON.
    pub input: Option<String>,
    pub enabled: bool,
}

/// One API route: method + path template → function.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteSpec {
    pub method: RouteMethod,
    /// API Gateway style template: `/users/{id}`, `/echo/{proxy+}`.
    pub path: String,
    pub function: FunctionName,
    pub auth: RouteAuth,
    pub payload_format: PayloadFormat,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RouteMethod {
    Any,
    /// An upper-case HTTP method token, e.g. `GET`.
    Only(String),
}

impl fmt::Display for RouteMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteMethod::Any => f.write_str("ANY"),
            RouteMethod::Only(m) => f.write_str(m),
        }
    }
}

/// How a route authorizes its callers.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum RouteAuth {
    /// A Cognito-style ID token issued by esb's login endpoint (the original ESB's behaviour).
    #[default]
    Cognito,
    /// Public.
    None,
    /// The configured `x-api-key` only.
    ApiKey,
    /// A Lambda authorizer defined in config, by name.
    Authorizer(String),
}

/// API Gateway payload format: REST proxy (1.0) or HTTP API (2.0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PayloadFormat {
    #[default]
    V1,
    V2,
}

impl PayloadFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadFormat::V1 => "1.0",
            PayloadFormat::V2 => "2.0",
        }
    }
}

/// A Lambda authorizer: a function that decides, per request, whether a route may be called.
/// Routes refer to it by `name` through [`RouteAuth::Authorizer`].
#[derive(Clone, Debug, PartialEq)]
pub struct AuthorizerSpec {
    pub name: String,
    pub function: FunctionName,
    pub kind: AuthorizerKind,
    /// Where the caller's identity comes from. A TOKEN authorizer has exactly one header here;
    /// an empty list on a REQUEST authorizer means "no caching key" (API Gateway then never caches).
    pub identity_sources: Vec<IdentitySource>,
    /// TOKEN only: a regex the token must match, or the request is refused without invoking.
    pub validation_expression: Option<String>,
    /// How long a decision is cached per identity (`ReauthorizeEvery`); zero disables caching.
    pub ttl: Duration,
    /// The authorizer event's format: REST authorizers are 1.0; HTTP API ones say 1.0 or 2.0.
    pub payload_format: PayloadFormat,
    /// HTTP API 2.0 only: the function answers `{"isAuthorized": bool, "context": {...}}`
    /// instead of an IAM policy.
    pub simple_responses: bool,
}

/// API Gateway's two Lambda authorizer event shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthorizerKind {
    /// REST `TOKEN`: the function sees one header value as `authorizationToken`.
    Token,
    /// REST `REQUEST` or any HTTP API Lambda authorizer: the function sees the whole request.
    Request,
}

/// One part of an authorizer's identity (and cache key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentitySource {
    Header(String),
    QueryString(String),
    StageVariable(String),
    Context(String),
}

/// A CORS policy for one API, answered on preflight (`OPTIONS`) requests.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CorsPolicy {
    /// `*` or exact origins.
    pub allow_origins: Vec<String>,
    /// Empty means the methods the requested path has routes for (SAM's default).
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    /// `Access-Control-Max-Age` in seconds, when set.
    pub max_age: Option<u32>,
    pub allow_credentials: bool,
}
