//! esb's configuration: `esb.toml` plus the `functions.yml` and `routing.yml` it points at.
//!
//! Everything is typed with `deny_unknown_fields`, defaults are applied here once, and every problem
//! is a [`ConfigError`] naming the file, the line and the reason, so a bad config fails at start.
//! Relative paths inside a config file resolve against that file's folder, so a copied config
//! folder works anywhere. The only IO is reading the files named by the config.

mod error;
mod functions;
mod interpolate;
mod routing;
mod template;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::ConfigError;
use esb_model::{
    AuthorizerKind, AuthorizerSpec, FunctionName, FunctionSpec, IdentitySource, PayloadFormat,
    RouteAuth, RouteSpec, RuntimeSpec,
};
pub use interpolate::Interpolator;
use serde::Deserialize;
pub use template::{
    GeneratedFiles, TemplateOverrides, TemplateSource, generate as generate_from_template,
    import as import_template,
};

/// The whole, validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The esb.toml this came from (or `<embedded>`), for messages.
    pub source: PathBuf,
    /// The folder relative paths were resolved against.
    pub base_dir: PathBuf,
    pub server: ServerConfig,
    pub tls: TlsConfig,
    pub limits: Limits,
    pub auth: AuthConfig,
    pub api: ApiConfig,
    pub runtime: RuntimeConfig,
    /// `[docker]`: the Docker runtime (used only when some function has `runtime: docker`).
    pub docker: DockerConfig,
    /// The Lambda Invoke API endpoint (`POST /2015-03-31/functions/{name}/invocations`).
    pub invoke: InvokeConfig,
    /// `[async]`: the durable queue of asynchronous (Event) invocations and schedules.
    pub asynchronous: AsyncConfig,
    pub functions: Vec<FunctionSpec>,
    pub routes: Vec<RouteSpec>,
    /// Lambda authorizers (`[[authorizers]]`), referred to by routes' `auth: {authorizer: NAME}`.
    pub authorizers: Vec<AuthorizerSpec>,
    /// Non-fatal findings (e.g. `${VAR}` that was unset), for the binary to log at start.
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// HTTPS listener.
    pub listen: SocketAddr,
    /// Admin listener (`/admin/pools`, `/metrics`); loopback by default.
    pub admin_listen: SocketAddr,
    /// Data-plane workers; 0 means one per core.
    pub workers: usize,
    pub driver: Driver,
}

/// The monoio IO driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Driver {
    /// io_uring when the kernel allows it, epoll otherwise.
    #[default]
    Auto,
    IoUring,
    Epoll,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct TlsConfig {
    /// PEM certificate chain and private key; both absent means a self-signed localhost
    /// certificate is made at start.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// Connection and request limits of the HTTPS front door.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Request line + headers, bytes (431 past it).
    pub max_head_bytes: usize,
    /// Header count (431 past it).
    pub max_headers: usize,
    /// Request body, bytes (413 past it); API Gateway's limit is 10 MB.
    pub max_body_bytes: usize,
    pub handshake_timeout_ms: u64,
    /// Time to receive a whole request head once its first byte arrived.
    pub head_timeout_ms: u64,
    /// Time to receive a whole request body.
    pub body_timeout_ms: u64,
    /// Keep-alive idle time between requests.
    pub idle_timeout_ms: u64,
    pub max_requests_per_connection: u32,
    /// Open connections per worker; past it new connections are closed at once.
    pub max_connections_per_worker: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_head_bytes: 16 * 1024,
            max_headers: 100,
            max_body_bytes: 10 * 1024 * 1024,
            handshake_timeout_ms: 10_000,
            head_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            max_requests_per_connection: 10_000,
            max_connections_per_worker: 16_384,
        }
    }
}

/// Token signing algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
pub enum TokenAlgorithm {
    #[default]
    RS256,
    /// The original ESB's choice; needs `hs256_secret`.
    HS256,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AuthConfig {
    /// The `x-api-key` the login endpoint (and `auth: api_key` routes) require.
    pub api_key: String,
    /// Login endpoints (the original ESB used both `/user/auth/v1` and `/user/auth/ver1.0`).
    pub login_paths: Vec<String>,
    pub algorithm: TokenAlgorithm,
    pub hs256_secret: Option<String>,
    /// PEM RSA private key for RS256; absent means one is generated at start.
    pub rsa_private_key: Option<PathBuf>,
    pub issuer: String,
    /// App client id: the ID token's `aud`, the access token's `client_id`.
    pub audience: String,
    pub token_ttl: Duration,
    /// Clock skew allowed when checking exp/nbf/iat.
    pub leeway: Duration,
    pub users: Vec<UserEntry>,
}

#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub username: String,
    /// Argon2 PHC string (`esb hash-password`).
    pub password_hash: String,
    pub email: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

impl std::fmt::Debug for UserEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserEntry")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// What the API looks like from a function's point of view (fields of the API Gateway event).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// REST (v1) stage name; HTTP API (v2) routes use `$default`.
    pub stage: String,
    pub api_id: String,
    pub account_id: String,
    pub region: String,
    /// `requestContext.domainName`; empty means the request's Host header.
    pub domain_name: String,
    /// Request content types whose bodies are passed base64-encoded (API Gateway `binaryMediaTypes`).
    pub binary_media_types: Vec<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            stage: "prod".into(),
            api_id: "esb".into(),
            account_id: "123456789012".into(),
            region: "ap-northeast-1".into(),
            domain_name: String::new(),
            binary_media_types: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct RuntimeConfig {
    /// The RIE binary for the process runtime; `None` means the `esb-rie` next to the esb binary.
    pub rie_binary: Option<PathBuf>,
    /// Where runtime state (pid files of child environments) lives.
    pub state_dir: Option<PathBuf>,
    /// Injected into every function as `AWS_ENDPOINT_URL_S3`, `..._DYNAMODB`, `..._LAMBDA`.
    pub s3_endpoint: Option<String>,
    pub dynamodb_endpoint: Option<String>,
    pub lambda_endpoint: Option<String>,
}

/// `[docker]`: how the Docker runtime reaches the engine and shapes function containers.
///
/// Defaults: `socket` unset (esb uses `DOCKER_HOST`, else `unix:///var/run/docker.sock`), no
/// `network` (the RIE port is published on 127.0.0.1), no `preload_dir`, `keep_on_shutdown =
/// false`, `rie_binary_static` unset (the `esb-rie` next to the esb binary, which must then be
/// static), `owner` unset (derived from the deployment: config file and listen address),
/// `cpus = 1.0` (0 = unlimited), `pids_limit = 1024` (Lambda's).
#[derive(Clone, Debug, PartialEq)]
pub struct DockerConfig {
    /// The engine: `unix:///path`, a bare `/path` (a Unix socket), `tcp://` or `http://`.
    pub socket: Option<String>,
    /// Attach containers to this Docker network and reach them by IP instead of publishing
    /// 127.0.0.1 ports (for an esb that itself runs in a container on that network).
    pub network: Option<String>,
    /// Image archives (`docker save` tars) loaded at start.
    pub preload_dir: Option<PathBuf>,
    /// Leave containers running at shutdown; the next esb with the same owner adopts them.
    pub keep_on_shutdown: bool,
    /// The static `esb-rie` bind-mounted into `rie: injected` containers (a path on the Docker
    /// host).
    pub rie_binary_static: Option<PathBuf>,
    /// The `esb.owner` label: esb only ever touches containers carrying its own.
    pub owner: Option<String>,
    /// CPU limit per container, in CPUs; 0 leaves it unlimited.
    pub cpus: f64,
    /// Processes and threads per container.
    pub pids_limit: i64,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            socket: None,
            network: None,
            preload_dir: None,
            keep_on_shutdown: false,
            rie_binary_static: None,
            owner: None,
            cpus: 1.0,
            pids_limit: 1024,
        }
    }
}

/// `[invoke]`: who may call the Lambda Invoke API on the HTTPS listener.
///
/// Defaults: `auth = "none"` (anyone who reaches the listener may invoke any function, which is
/// only sensible on loopback; esb warns loudly otherwise) and no credentials.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct InvokeConfig {
    pub auth: InvokeAuth,
    /// The access keys accepted when `auth = "sigv4"`.
    pub credentials: Vec<InvokeCredential>,
}

/// How Invoke API callers are authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum InvokeAuth {
    /// No check (boto3 with any dummy credentials works).
    #[default]
    None,
    /// AWS Signature Version 4 (service `lambda`) with one of `credentials`.
    Sigv4,
}

/// One access key for SigV4-signed Invoke calls.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvokeCredential {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for InvokeCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvokeCredential")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// `[async]`: where accepted asynchronous (Event) invocations are kept until they ran.
///
/// Defaults: `queue_dir` unset, meaning `async-queue` under esb's state directory;
/// `retry_delays_secs` unset, meaning Lambda's two retries about 1 and 2 minutes apart.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AsyncConfig {
    /// The queue directory (relative to esb.toml); one esb per directory.
    pub queue_dir: Option<PathBuf>,
    /// Seconds before each retry of an invocation whose function failed: at most two entries,
    /// like Lambda's `MaximumRetryAttempts` (0 to 2); `[]` dead-letters at the first failure.
    pub retry_delays_secs: Option<Vec<f64>>,
}

impl AsyncConfig {
    /// The retry delays as durations, `None` for Lambda's defaults.
    pub fn retry_delays(&self) -> Option<Vec<Duration>> {
        self.retry_delays_secs
            .as_ref()
            .map(|v| v.iter().map(|s| Duration::from_secs_f64(*s)).collect())
    }
}

// ---------------------------------------------------------------- the esb.toml file

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EsbToml {
    #[serde(default)]
    server: ServerToml,
    #[serde(default)]
    tls: TlsToml,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    auth: AuthToml,
    #[serde(default)]
    api: ApiConfig,
    #[serde(default)]
    runtime: RuntimeToml,
    #[serde(default)]
    invoke: InvokeConfig,
    #[serde(default, rename = "async")]
    asynchronous: AsyncConfig,
    #[serde(default)]
    docker: DockerToml,
    #[serde(default)]
    authorizers: Vec<AuthorizerToml>,
    /// Path of routing.yml, relative to this file.
    routing: Option<PathBuf>,
    /// Path of functions.yml, relative to this file.
    functions: Option<PathBuf>,
    /// A SAM template (relative to this file) instead of functions/routing.
    template: Option<template::TemplateToml>,
}

/// One `[[authorizers]]` entry. Defaults: `type = "TOKEN"` (or `"REQUEST"`), identity source
/// `method.request.header.Authorization` (TOKEN; REQUEST has none by default), `ttl_secs = 300`
/// (0 disables caching, at most 3600), `payload_format = "1.0"`, `simple_responses = false`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorizerToml {
    name: String,
    /// The authorizer function (defined in functions.yml).
    function: String,
    #[serde(rename = "type", default)]
    kind: AuthorizerKindToml,
    /// `method.request.header.X`, `method.request.querystring.Y` (REST), `$request.header.X`,
    /// `$request.querystring.Y` (HTTP API), `stageVariables.Z`, `context.W`.
    #[serde(default)]
    identity_sources: Vec<String>,
    validation_expression: Option<String>,
    #[serde(default = "default_authorizer_ttl")]
    ttl_secs: u64,
    #[serde(default)]
    payload_format: Option<String>,
    #[serde(default)]
    simple_responses: bool,
}

fn default_authorizer_ttl() -> u64 {
    300
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
enum AuthorizerKindToml {
    #[default]
    #[serde(rename = "TOKEN")]
    Token,
    #[serde(rename = "REQUEST")]
    Request,
}

fn identity_source(s: &str) -> Option<IdentitySource> {
    let name = |rest: &str| (!rest.is_empty()).then(|| rest.to_string());
    if let Some(h) = s
        .strip_prefix("method.request.header.")
        .or_else(|| s.strip_prefix("$request.header."))
    {
        return name(h).map(IdentitySource::Header);
    }
    if let Some(q) = s
        .strip_prefix("method.request.querystring.")
        .or_else(|| s.strip_prefix("$request.querystring."))
    {
        return name(q).map(IdentitySource::QueryString);
    }
    if let Some(v) = s
        .strip_prefix("stageVariables.")
        .or_else(|| s.strip_prefix("$stageVariables."))
    {
        return name(v).map(IdentitySource::StageVariable);
    }
    if let Some(c) = s
        .strip_prefix("context.")
        .or_else(|| s.strip_prefix("$context."))
    {
        return name(c).map(IdentitySource::Context);
    }
    None
}

fn authorizers(
    source: &Path,
    text: &str,
    raw: Vec<AuthorizerToml>,
    functions: &[FunctionSpec],
) -> Result<Vec<AuthorizerSpec>, ConfigError> {
    let mut out: Vec<AuthorizerSpec> = Vec::with_capacity(raw.len());
    for a in raw {
        let at = |reason: String| {
            ConfigError::new(
                source,
                error::find_line(text, &[&format!("\"{}\"", a.name), &a.name]),
                reason,
            )
        };
        if a.name.is_empty() {
            return Err(at("authorizers: name must not be empty".into()));
        }
        if out.iter().any(|o| o.name == a.name) {
            return Err(at(format!("authorizer {:?} is defined twice", a.name)));
        }
        if !functions.iter().any(|f| f.name.as_str() == a.function) {
            return Err(at(format!(
                "authorizer {:?}: unknown function {:?}",
                a.name, a.function
            )));
        }
        let request = a.kind == AuthorizerKindToml::Request;
        let sources = if a.identity_sources.is_empty() && !request {
            vec!["method.request.header.Authorization".to_string()]
        } else {
            a.identity_sources
        };
        let mut identity_sources = Vec::with_capacity(sources.len());
        for s in &sources {
            identity_sources.push(identity_source(s).ok_or_else(|| {
                at(format!(
                    "authorizer {:?}: identity source {s:?} is not method.request.header.X, method.request.querystring.X, stageVariables.X or context.X",
                    a.name
                ))
            })?);
        }
        if !request && !matches!(identity_sources[..], [IdentitySource::Header(_)]) {
            return Err(at(format!(
                "authorizer {:?}: a TOKEN authorizer takes exactly one header identity source",
                a.name
            )));
        }
        if request {
            request_authorizer_rules(
                &a.name,
                &a.validation_expression,
                a.ttl_secs,
                &identity_sources,
            )
            .map_err(at)?;
        }
        if a.ttl_secs > 3600 {
            return Err(at(format!(
                "authorizer {:?}: ttl_secs must be at most 3600 (API Gateway's limit)",
                a.name
            )));
        }
        let payload_format = match a.payload_format.as_deref() {
            None | Some("1.0") => PayloadFormat::V1,
            Some("2.0") => PayloadFormat::V2,
            Some(other) => {
                return Err(at(format!(
                    "authorizer {:?}: payload_format {other:?} is not \"1.0\" or \"2.0\"",
                    a.name
                )));
            }
        };
        if a.simple_responses && payload_format != PayloadFormat::V2 {
            return Err(at(format!(
                "authorizer {:?}: simple_responses needs payload_format \"2.0\"",
                a.name
            )));
        }
        out.push(AuthorizerSpec {
            name: a.name,
            function: FunctionName::new(a.function),
            kind: if request {
                AuthorizerKind::Request
            } else {
                AuthorizerKind::Token
            },
            identity_sources,
            validation_expression: a.validation_expression,
            ttl: Duration::from_secs(a.ttl_secs),
            payload_format,
            simple_responses: a.simple_responses,
        });
    }
    Ok(out)
}

/// The `context.X` identity sources esb can fill in (per request, from the route).
pub const REQUEST_CONTEXT_SOURCES: [&str; 3] = ["httpMethod", "resourcePath", "routeKey"];

/// What a REQUEST authorizer may not have: a token regex (TOKEN only), caching without an
/// identity to key it on (API Gateway requires one), and sources esb has no value for.
fn request_authorizer_rules(
    name: &str,
    validation_expression: &Option<String>,
    ttl_secs: u64,
    sources: &[IdentitySource],
) -> Result<(), String> {
    if validation_expression.is_some() {
        return Err(format!(
            "authorizer {:?}: validation_expression is for TOKEN authorizers only",
            name
        ));
    }
    if sources.is_empty() && ttl_secs > 0 {
        return Err(format!(
            "authorizer {:?}: a cached REQUEST authorizer needs identity_sources (its cache key); add some or set ttl_secs = 0",
            name
        ));
    }
    for s in sources {
        match s {
            IdentitySource::StageVariable(v) => {
                return Err(format!(
                    "authorizer {:?}: identity source stageVariables.{v}: esb has no stage variables",
                    name
                ));
            }
            IdentitySource::Context(c) if !REQUEST_CONTEXT_SOURCES.contains(&c.as_str()) => {
                return Err(format!(
                    "authorizer {:?}: identity source context.{c} is not one of context.{}",
                    name,
                    REQUEST_CONTEXT_SOURCES.join(", context.")
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ServerToml {
    listen: SocketAddr,
    admin_listen: SocketAddr,
    workers: usize,
    driver: Driver,
}

impl Default for ServerToml {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9901)),
            workers: 0,
            driver: Driver::Auto,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TlsToml {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct AuthToml {
    api_key: String,
    login_paths: Vec<String>,
    algorithm: TokenAlgorithm,
    hs256_secret: Option<String>,
    rsa_private_key: Option<PathBuf>,
    issuer: String,
    audience: String,
    token_ttl_secs: u64,
    leeway_secs: u64,
    users: Vec<UserEntry>,
}

/// The original ESB's development key; esb warns loudly when it is used off loopback.
pub const DEV_API_KEY: &str = "dev-api-key-change-in-production";

impl Default for AuthToml {
    fn default() -> Self {
        Self {
            api_key: DEV_API_KEY.into(),
            login_paths: vec!["/user/auth/v1".into()],
            algorithm: TokenAlgorithm::RS256,
            hs256_secret: None,
            rsa_private_key: None,
            issuer: "https://cognito-idp.ap-northeast-1.amazonaws.com/ap-northeast-1_esb".into(),
            audience: "esb-client".into(),
            token_ttl_secs: 3600,
            leeway_secs: 60,
            users: Vec::new(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RuntimeToml {
    rie_binary: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    s3_endpoint: Option<String>,
    dynamodb_endpoint: Option<String>,
    lambda_endpoint: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DockerToml {
    socket: Option<String>,
    network: Option<String>,
    preload_dir: Option<PathBuf>,
    keep_on_shutdown: bool,
    rie_binary_static: Option<PathBuf>,
    owner: Option<String>,
    cpus: f64,
    pids_limit: i64,
}

impl Default for DockerToml {
    fn default() -> Self {
        let d = DockerConfig::default();
        Self {
            socket: d.socket,
            network: d.network,
            preload_dir: d.preload_dir,
            keep_on_shutdown: d.keep_on_shutdown,
            rie_binary_static: d.rie_binary_static,
            owner: d.owner,
            cpus: d.cpus,
            pids_limit: d.pids_limit,
        }
    }
}

impl Config {
    /// Loads `esb.toml` at `path` and the files it names. `lookup` resolves `${VAR}` references
    /// (the binary passes `std::env::var`); only the leaf binary touches the environment.
    pub fn load(
        path: &Path,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let text = read(path)?;
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base_dir = if base_dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base_dir
        };
        Self::from_toml_text(path, &text, &base_dir, lookup)
    }

    /// Like [`Config::load`], with the command line's template settings; `path: None` means every
    /// default (then a template is the only source of functions and routes).
    pub fn load_with(
        path: Option<&Path>,
        overrides: &TemplateOverrides,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        match path {
            Some(path) => {
                let text = read(path)?;
                Self::parse(path, &text, base_dir_of(path), overrides, lookup)
            }
            None => {
                // The template stands in for esb.toml in messages and the state-dir identity.
                let source = overrides
                    .template
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("<defaults>"));
                Self::parse(&source, "", Path::new("."), overrides, lookup)
            }
        }
    }

    /// Parses esb.toml text as if it were the file `source` in `base_dir`.
    pub fn from_toml_text(
        source: &Path,
        text: &str,
        base_dir: &Path,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Self::parse(
            source,
            text,
            base_dir,
            &TemplateOverrides::default(),
            lookup,
        )
    }

    fn parse(
        source: &Path,
        text: &str,
        base_dir: &Path,
        overrides: &TemplateOverrides,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut raw: EsbToml =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(source, text, &e))?;
        let interp = Interpolator::new(lookup);
        let at = |needle: &str, reason: String| {
            ConfigError::new(source, error::find_line(text, &[needle]), reason)
        };

        if let Some(delays) = &raw.asynchronous.retry_delays_secs {
            if delays.len() > 2 {
                return Err(at(
                    "retry_delays_secs",
                    format!(
                        "[async] retry_delays_secs has {} entries; Lambda retries at most twice",
                        delays.len()
                    ),
                ));
            }
            if let Some(bad) = delays.iter().find(|s| !(0.0..=86_400.0).contains(*s)) {
                return Err(at(
                    "retry_delays_secs",
                    format!("[async] retry_delays_secs: {bad} is not between 0 and 86400 seconds"),
                ));
            }
        }

        let mut template_warnings = Vec::new();
        let template = template::choose(
            source,
            text,
            base_dir,
            raw.template.take(),
            raw.functions.is_some() || raw.routing.is_some(),
            overrides,
            &mut template_warnings,
        )?;
        let mut template = match &template {
            Some(t) => Some((t.path.clone(), template::load(t, &interp)?)),
            None => None,
        };
        let (functions, functions_file) = match (&mut template, &raw.functions) {
            (Some((path, t)), _) => (std::mem::take(&mut t.functions), Some(path.clone())),
            (None, Some(p)) => {
                let file = base_dir.join(p);
                let ftext = read(&file)?;
                (
                    functions::parse(&file, &ftext, base_dir_of(&file), &interp)?,
                    Some(file),
                )
            }
            (None, None) => (Vec::new(), None),
        };
        let mut authorizers = authorizers(source, text, raw.authorizers, &functions)?;
        let routes = match (&mut template, &raw.routing) {
            (Some((path, t)), _) => {
                for a in std::mem::take(&mut t.authorizers) {
                    if authorizers.iter().any(|b| b.name == a.name) {
                        return Err(at(
                            &a.name,
                            format!(
                                "authorizer {:?} is defined both here and in {}",
                                a.name,
                                path.display()
                            ),
                        ));
                    }
                    authorizers.push(a);
                }
                for m in std::mem::take(&mut t.binary_media_types) {
                    if !raw.api.binary_media_types.contains(&m) {
                        raw.api.binary_media_types.push(m);
                    }
                }
                template_warnings.append(&mut t.warnings);
                std::mem::take(&mut t.routes)
            }
            (None, Some(p)) => {
                let file = base_dir.join(p);
                let rtext = read(&file)?;
                let routes = routing::parse(&file, &rtext)?;
                check_routes(&file, &rtext, &routes, &functions, &authorizers)?;
                routes
            }
            (None, None) => Vec::new(),
        };

        let tls = match (raw.tls.cert, raw.tls.key) {
            (Some(c), Some(k)) => TlsConfig {
                cert: Some(base_dir.join(c)),
                key: Some(base_dir.join(k)),
            },
            (None, None) => TlsConfig::default(),
            _ => {
                return Err(at(
                    "[tls]",
                    "tls: give both cert and key, or neither".into(),
                ));
            }
        };

        let a = raw.auth;
        if a.api_key.is_empty() {
            return Err(at("api_key", "auth.api_key must not be empty".into()));
        }
        if a.algorithm == TokenAlgorithm::HS256
            && a.hs256_secret.as_deref().is_none_or(|s| s.len() < 32)
        {
            return Err(at(
                "algorithm",
                "auth.algorithm HS256 needs auth.hs256_secret of at least 32 bytes".into(),
            ));
        }
        if a.login_paths.iter().any(|p| !p.starts_with('/')) {
            return Err(at(
                "login_paths",
                "auth.login_paths must start with '/'".into(),
            ));
        }
        if !(300..=86_400).contains(&a.token_ttl_secs) {
            return Err(at(
                "token_ttl_secs",
                "auth.token_ttl_secs must be between 300 and 86400 (Cognito's range)".into(),
            ));
        }
        let mut seen = HashSet::new();
        for u in &a.users {
            if !seen.insert(u.username.as_str()) {
                return Err(at(
                    &u.username,
                    format!("auth.users: {:?} appears twice", u.username),
                ));
            }
            if !u.password_hash.starts_with("$argon2") {
                return Err(at(
                    &u.username,
                    format!(
                        "auth.users {:?}: password_hash must be an argon2 PHC string (make one with `esb hash-password`)",
                        u.username
                    ),
                ));
            }
        }
        let auth = AuthConfig {
            api_key: a.api_key,
            login_paths: a.login_paths,
            algorithm: a.algorithm,
            hs256_secret: a.hs256_secret,
            rsa_private_key: a.rsa_private_key.map(|p| base_dir.join(p)),
            issuer: a.issuer,
            audience: a.audience,
            token_ttl: Duration::from_secs(a.token_ttl_secs),
            leeway: Duration::from_secs(a.leeway_secs),
            users: a.users,
        };

        let invoke = raw.invoke;
        if invoke.auth == InvokeAuth::Sigv4 && invoke.credentials.is_empty() {
            return Err(at(
                "[invoke]",
                "invoke.auth = \"sigv4\" needs at least one entry in invoke.credentials".into(),
            ));
        }
        let mut keys = HashSet::new();
        for c in &invoke.credentials {
            if c.access_key_id.is_empty() || c.secret_access_key.is_empty() {
                return Err(at(
                    "credentials",
                    "invoke.credentials: access_key_id and secret_access_key must not be empty"
                        .into(),
                ));
            }
            if !keys.insert(c.access_key_id.as_str()) {
                return Err(at(
                    &c.access_key_id,
                    format!("invoke.credentials: {:?} appears twice", c.access_key_id),
                ));
            }
        }

        let rt = raw.runtime;
        let runtime = RuntimeConfig {
            rie_binary: rt.rie_binary.map(|p| base_dir.join(p)),
            state_dir: rt.state_dir.map(|p| base_dir.join(p)),
            s3_endpoint: rt.s3_endpoint,
            dynamodb_endpoint: rt.dynamodb_endpoint,
            lambda_endpoint: rt.lambda_endpoint,
        };

        let d = raw.docker;
        let socket = match d.socket {
            Some(s) if s.starts_with('/') => Some(format!("unix://{s}")),
            Some(s)
                if ["unix://", "tcp://", "http://", "https://"]
                    .iter()
                    .any(|p| s.starts_with(p)) =>
            {
                Some(s)
            }
            Some(s) => {
                return Err(at(
                    "socket",
                    format!(
                        "docker.socket {s:?}: give unix:///path, /path, tcp://host:port or http://host:port"
                    ),
                ));
            }
            None => None,
        };
        if !d.cpus.is_finite() || d.cpus < 0.0 {
            return Err(at(
                "cpus",
                "docker.cpus must be a number of CPUs ≥ 0 (0 = unlimited)".into(),
            ));
        }
        if d.pids_limit < 1 {
            return Err(at(
                "pids_limit",
                "docker.pids_limit must be at least 1".into(),
            ));
        }
        if d.owner.as_deref().is_some_and(|o| {
            o.is_empty()
                || !o
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        }) {
            return Err(at(
                "owner",
                "docker.owner must be non-empty letters, digits, '_', '.' or '-'".into(),
            ));
        }
        let docker = DockerConfig {
            socket,
            network: d.network.filter(|n| !n.is_empty()),
            preload_dir: d.preload_dir.map(|p| base_dir.join(p)),
            keep_on_shutdown: d.keep_on_shutdown,
            rie_binary_static: d.rie_binary_static.map(|p| base_dir.join(p)),
            owner: d.owner,
            cpus: d.cpus,
            pids_limit: d.pids_limit,
        };

        let mut warnings: Vec<String> = interp
            .missing
            .borrow()
            .iter()
            .map(|v| {
                format!(
                    "{}: ${{{v}}} is not set; it expands to an empty string",
                    functions_file.as_deref().unwrap_or(source).display()
                )
            })
            .collect();
        warnings.dedup();
        warnings.extend(template_warnings);

        Ok(Config {
            source: source.to_path_buf(),
            base_dir: base_dir.to_path_buf(),
            server: ServerConfig {
                listen: raw.server.listen,
                admin_listen: raw.server.admin_listen,
                workers: raw.server.workers,
                driver: raw.server.driver,
            },
            tls,
            limits: raw.limits,
            auth,
            api: raw.api,
            runtime,
            docker,
            invoke,
            asynchronous: AsyncConfig {
                queue_dir: raw.asynchronous.queue_dir.map(|p| base_dir.join(p)),
                retry_delays_secs: raw.asynchronous.retry_delays_secs,
            },
            functions,
            routes,
            authorizers,
            warnings,
        })
    }

    pub fn function(&self, name: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.name.as_str() == name)
    }

    /// Functions by runtime kind, for start-up logs.
    pub fn runtime_counts(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for f in &self.functions {
            *m.entry(f.runtime.kind()).or_default() += 1;
        }
        m
    }

    /// True when any function needs a Docker engine.
    pub fn needs_docker(&self) -> bool {
        self.functions
            .iter()
            .any(|f| matches!(f.runtime, RuntimeSpec::Docker { .. }))
    }
}

fn base_dir_of(file: &Path) -> &Path {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, None, format!("cannot read: {e}")))
}

fn check_routes(
    file: &Path,
    text: &str,
    routes: &[RouteSpec],
    functions: &[FunctionSpec],
    authorizers: &[AuthorizerSpec],
) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for r in routes {
        let line = error::find_line(text, &[&r.path]);
        if !functions.iter().any(|f| f.name == r.function) {
            return Err(ConfigError::new(
                file,
                error::find_line(text, &[r.function.as_str()]).or(line),
                format!(
                    "route {} {}: unknown function {:?}",
                    r.method,
                    r.path,
                    r.function.as_str()
                ),
            ));
        }
        if !seen.insert((r.method.clone(), r.path.clone())) {
            return Err(ConfigError::new(
                file,
                line,
                format!("route {} {} is defined twice", r.method, r.path),
            ));
        }
        if let RouteAuth::Authorizer(name) = &r.auth
            && !authorizers.iter().any(|a| &a.name == name)
        {
            // Lambda authorizers are declared in esb.toml's [[authorizers]].
            return Err(ConfigError::new(
                file,
                error::find_line(text, &[name.as_str()]).or(line),
                format!("route {} {}: unknown authorizer {name:?}", r.method, r.path),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
