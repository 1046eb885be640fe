//! The front door's immutable state, built once at start from the config and shared by every
//! core behind an `Arc`: built-in paths, the API key, routes, token keys, users, functions.

use std::time::Duration;

use esb_config::Config;
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
}

/// Everything the request pipeline reads but never changes.
pub struct FrontDoor {
    pub api_key: String,
    pub login_paths: Vec<String>,
    pub routes: RouteTable<RouteTarget>,
    /// REST (v1) stage; HTTP API (v2) events always say `$default`.
    pub stage: String,
    /// `requestContext.domainName`; empty means the request's Host.
    pub domain_name: String,
    pub api: esb_event::ApiContext,
}

/// Per-core mutable state of the front door (the verified-token cache, the event writer).
#[derive(Default)]
pub struct Local {
    pub events: esb_event::EventWriter,
}

impl FrontDoor {
    pub fn new(cfg: &Config, pool: &PoolTable) -> Result<FrontDoor, StartError> {
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
                    auth: r.auth.clone(),
                    format: r.payload_format,
                    timeout: f.timeout,
                },
            });
        }
        let routes = RouteTable::new(defs).map_err(|e| StartError::Setup(e.to_string()))?;
        Ok(FrontDoor {
            api_key: cfg.auth.api_key.clone(),
            login_paths: cfg.auth.login_paths.clone(),
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

    /// Constant-time comparison of a presented `x-api-key` with the configured one.
    pub fn api_key_ok(&self, presented: Option<&[u8]>) -> bool {
        let Some(p) = presented else { return false };
        let want = self.api_key.as_bytes();
        // Length is not secret; the content is compared without an early exit.
        p.len() == want.len() && p.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}
