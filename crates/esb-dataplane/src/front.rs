//! The front door's immutable state, built once at start from the config and shared by every
//! core behind an `Arc`: built-in paths, the API key, routes, token keys, users, functions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use esb_auth::{ApiKey, TokenCache, TokenService, TokenSettings, User, UserStore};
use esb_config::{Config, InvokeAuth, TokenAlgorithm};
use esb_model::{PayloadFormat, RouteAuth};
use esb_pool::{FunctionId, PoolTable};
use esb_router::{RouteDef, RouteTable};

use crate::StartError;

/// What a matched route leads to.
#[derive(Debug, Clone)]
pub struct RouteTarget {
    pub function: FunctionId,
    pub auth: RouteAuth,
    pub format: PayloadFormat,
    /// The function's timeout: the invocation's deadline.
    pub timeout: Duration,
    /// Index into [`FrontDoor::authorizers`] for `auth: {authorizer: NAME}` routes.
    pub authorizer: Option<usize>,
}

/// A TOKEN Lambda authorizer, ready to run.
pub struct AuthorizerFront {
    pub name: String,
    pub identity: AuthorizerIdentity,
    pub function: FunctionId,
    pub timeout: Duration,
    pub format: esb_authorizer::ResponseFormat,
    /// How long a decision is cached per token per core; zero disables caching.
    pub ttl: Duration,
}

/// Where an authorizer's identity (and cache key) comes from, and which event it gets.
pub enum AuthorizerIdentity {
    /// TOKEN: one header, checked before invoking.
    Token {
        header: String,
        check: esb_authorizer::TokenCheck,
    },
    /// REQUEST: every source must be present; the event is the request itself.
    Request {
        sources: Vec<esb_model::IdentitySource>,
        /// The authorizer's payload format (REST authorizers are 1.0).
        format: PayloadFormat,
    },
}

/// Everything the request pipeline reads but never changes.
pub struct FrontDoor {
    pub api_key: ApiKey,
    pub login_paths: Vec<String>,
    /// Shared with the password threads, which verify and sign off the IO cores.
    pub tokens: Arc<TokenService>,
    pub users: Arc<UserStore>,
    /// `/.well-known/jwks.json`, made once.
    pub jwks: String,
    pub routes: RouteTable<RouteTarget>,
    /// REST (v1) stage; HTTP API (v2) events always say `$default`.
    pub stage: String,
    /// `requestContext.domainName`; empty means the request's Host.
    pub domain_name: String,
    pub api: esb_event::ApiContext,
    /// Every function by name, for the Invoke API: its pool id and timeout.
    pub functions: HashMap<String, (FunctionId, Duration)>,
    pub invoke: InvokeFront,
    pub authorizers: Vec<AuthorizerFront>,
}

/// The Invoke API's settings.
pub struct InvokeFront {
    /// `Some` when callers must sign with SigV4 (`[invoke] auth = "sigv4"`).
    pub sigv4: Option<SigV4>,
    /// For ARNs in messages.
    pub region: String,
    pub account_id: String,
}

/// A SigV4 verifier and the accepted access keys.
pub struct SigV4 {
    pub verifier: esb_sigv4::Verifier,
    /// access key id → secret access key.
    pub secrets: HashMap<String, String>,
}

/// Per-core mutable state of the front door (the verified-token cache, the event writer).
pub struct Local {
    pub events: esb_event::EventWriter,
    pub tokens: TokenCache,
    /// Lambda authorizer decisions, per authorizer index, made on first use.
    pub decisions: HashMap<usize, esb_authorizer::DecisionCache>,
}

/// Verified tokens kept per core.
const TOKEN_CACHE_ENTRIES: usize = 10_000;

impl Default for Local {
    fn default() -> Self {
        Local {
            events: esb_event::EventWriter::new(),
            tokens: TokenCache::new(TOKEN_CACHE_ENTRIES),
            decisions: HashMap::new(),
        }
    }
}

impl FrontDoor {
    pub fn new(cfg: &Config, pool: &PoolTable) -> Result<FrontDoor, StartError> {
        let mut authorizers = Vec::with_capacity(cfg.authorizers.len());
        for a in &cfg.authorizers {
            let setup = |why: String| StartError::Setup(format!("authorizer {}: {why}", a.name));
            let identity = match a.kind {
                esb_model::AuthorizerKind::Token => {
                    let [esb_model::IdentitySource::Header(header)] = &a.identity_sources[..]
                    else {
                        return Err(setup("a TOKEN authorizer needs one header".into()));
                    };
                    AuthorizerIdentity::Token {
                        header: header.clone(),
                        check: esb_authorizer::TokenCheck::new(a.validation_expression.as_deref())
                            .map_err(|e| setup(format!("validation_expression: {e}")))?,
                    }
                }
                esb_model::AuthorizerKind::Request => {
                    if a.identity_sources.is_empty() && !a.ttl.is_zero() {
                        return Err(setup("caching needs identity sources".into()));
                    }
                    AuthorizerIdentity::Request {
                        sources: a.identity_sources.clone(),
                        format: a.payload_format,
                    }
                }
            };
            let f = cfg
                .function(a.function.as_str())
                .ok_or_else(|| setup("unknown function".into()))?;
            let function = pool
                .function_id(a.function.as_str())
                .ok_or_else(|| setup("function not in the pool table".into()))?;
            authorizers.push(AuthorizerFront {
                name: a.name.clone(),
                identity,
                function,
                timeout: f.timeout,
                format: if a.simple_responses {
                    esb_authorizer::ResponseFormat::Simple
                } else {
                    esb_authorizer::ResponseFormat::Policy {
                        flat_context: a.payload_format == PayloadFormat::V1,
                    }
                },
                ttl: a.ttl,
            });
        }
        let mut defs = Vec::with_capacity(cfg.routes.len());
        for r in &cfg.routes {
            let f = cfg
                .function(r.function.as_str())
                .ok_or_else(|| StartError::Setup(format!("route {}: unknown function", r.path)))?;
            let function = pool.function_id(r.function.as_str()).ok_or_else(|| {
                StartError::Setup(format!("function {} is not in the pool table", r.function))
            })?;
            let method = esb_router::Method::parse(&r.method.to_string())
                .ok_or_else(|| StartError::Setup(format!("route {}: bad method", r.path)))?;
            defs.push(RouteDef {
                method,
                template: r.path.clone(),
                value: RouteTarget {
                    function,
                    authorizer: match &r.auth {
                        RouteAuth::Authorizer(name) => Some(
                            authorizers
                                .iter()
                                .position(|a| &a.name == name)
                                .ok_or_else(|| {
                                    StartError::Setup(format!(
                                        "route {}: unknown authorizer {name}",
                                        r.path
                                    ))
                                })?,
                        ),
                        _ => None,
                    },
                    auth: r.auth.clone(),
                    format: r.payload_format,
                    timeout: f.timeout,
                },
            });
        }
        let routes = RouteTable::new(defs).map_err(|e| StartError::Setup(e.to_string()))?;
        let tokens = Arc::new(token_service(&cfg.auth)?);
        let users = UserStore::new(cfg.auth.users.iter().map(|u| User {
            username: u.username.clone(),
            password_hash: u.password_hash.clone(),
            email: u.email.clone(),
            groups: u.groups.clone(),
        }))
        .map_err(|e| StartError::Setup(format!("auth.users: {e}")))?;
        let mut functions = HashMap::with_capacity(cfg.functions.len());
        for f in &cfg.functions {
            let id = pool.function_id(f.name.as_str()).ok_or_else(|| {
                StartError::Setup(format!("function {} is not in the pool table", f.name))
            })?;
            functions.insert(f.name.as_str().to_string(), (id, f.timeout));
        }
        let sigv4 = match cfg.invoke.auth {
            InvokeAuth::None => None,
            InvokeAuth::Sigv4 => Some(SigV4 {
                verifier: esb_sigv4::Verifier::new("lambda"),
                secrets: cfg
                    .invoke
                    .credentials
                    .iter()
                    .map(|c| (c.access_key_id.clone(), c.secret_access_key.clone()))
                    .collect(),
            }),
        };
        Ok(FrontDoor {
            authorizers,
            functions,
            invoke: InvokeFront {
                sigv4,
                region: cfg.api.region.clone(),
                account_id: cfg.api.account_id.clone(),
            },
            api_key: ApiKey::new(&cfg.auth.api_key),
            login_paths: cfg.auth.login_paths.clone(),
            jwks: tokens.jwks_json(),
            tokens,
            users: Arc::new(users),
            routes,
            stage: cfg.api.stage.clone(),
            domain_name: cfg.api.domain_name.clone(),
            api: esb_event::ApiContext {
                account_id: cfg.api.account_id.clone(),
                api_id: cfg.api.api_id.clone(),
                binary_media_types: cfg.api.binary_media_types.clone(),
            },
        })
    }

    pub fn is_login_path(&self, path: &str) -> bool {
        self.login_paths.iter().any(|p| p == path)
    }

    /// Constant-time check of a presented `x-api-key`.
    pub fn api_key_ok(&self, presented: Option<&[u8]>) -> bool {
        presented.is_some_and(|p| self.api_key.matches(p))
    }
}

/// The token signer/verifier: RS256 with the configured PEM key (or one generated now, so
/// tokens die with the process), or HS256 with the configured secret. Its self-test runs here,
/// so a broken key fails the start, not the first request (checklist B30).
fn token_service(auth: &esb_config::AuthConfig) -> Result<TokenService, StartError> {
    let mut settings = TokenSettings::new(auth.issuer.clone(), auth.audience.clone());
    settings.token_ttl_secs = auth.token_ttl.as_secs();
    settings.leeway_secs = auth.leeway.as_secs();
    let bad = |e: esb_auth::KeyError| StartError::Setup(format!("auth: {e}"));
    match auth.algorithm {
        TokenAlgorithm::HS256 => {
            let secret = auth.hs256_secret.as_deref().unwrap_or("");
            TokenService::hs256(secret.as_bytes(), settings).map_err(bad)
        }
        TokenAlgorithm::RS256 => {
            let pem = match &auth.rsa_private_key {
                Some(path) => std::fs::read(path).map_err(|e| {
                    StartError::Setup(format!("auth.rsa_private_key {}: {e}", path.display()))
                })?,
                None => esb_auth::generate_rsa_pem().map_err(bad)?.into_bytes(),
            };
            TokenService::rs256_from_pem(&pem, settings).map_err(bad)
        }
    }
}
