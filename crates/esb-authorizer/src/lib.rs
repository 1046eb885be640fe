//! API Gateway Lambda authorizers (aws-compat §4): everything but invoking the function.
//! No IO and no clock (cache time is an argument).
//!
//! One request through a Lambda authorizer:
//! 1. TOKEN: [`TokenCheck::check`] the header (missing, empty or failing the validation regex →
//!    401 without invoking). REQUEST: [`identity_values`] (a missing source → 401).
//! 2. Look the identity's [`cache_key`] up in the [`DecisionCache`]; on a miss, invoke the
//!    authorizer function and [`parse_result`] its answer into a [`Grant`], and cache it.
//! 3. [`Grant::decide`] for this request's method ARN: an [`Allowed`] (its
//!    [`Allowed::request_context`] goes into the event's `requestContext.authorizer`) or a
//!    [`Refusal`], answered with [`Refusal::response`].
//!
//! What is cached is the whole answer, not the decision, so one cached policy serves every
//! method and path of the API the way API Gateway reuses it.

mod cache;
mod policy;

pub use cache::DecisionCache;
pub use policy::{Allowed, Effect, Grant, Statement, wildcard_match};

use esb_model::{IdentitySource, PayloadFormat};
use regex::Regex;
use serde_json::{Map, Value, json};

/// Which kind of API answers: REST and HTTP APIs word their refusals differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKind {
    Rest,
    Http,
}

/// Why a request is not let through. The client's fault except `Misconfigured`, which is the
/// authorizer's (its owner must fix it; retrying does not help).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 401: no or malformed identity, or the authorizer said `Unauthorized`.
    #[error("unauthorized")]
    Unauthorized,
    /// 403: a matching statement denies the method.
    #[error("explicitly denied")]
    ExplicitDeny,
    /// 403: no statement allows the method (or a simple response said no).
    #[error("not allowed")]
    NotAllowed,
    /// 500: the authorizer failed, could not be invoked, or answered something invalid.
    #[error("authorizer misconfigured: {0}")]
    Misconfigured(String),
}

impl Refusal {
    /// Status, headers and body as API Gateway answers (aws-compat §4.3, §4.4).
    pub fn response(&self, api: ApiKind) -> (u16, Vec<(&'static str, String)>, Vec<u8>) {
        let json = |v: Value| serde_json::to_vec(&v).expect("literal JSON serializes");
        let typed = |t: &str| {
            vec![
                ("Content-Type", "application/json".to_string()),
                ("x-amzn-ErrorType", t.to_string()),
            ]
        };
        let plain = || vec![("Content-Type", "application/json".to_string())];
        match (self, api) {
            (Refusal::Unauthorized, ApiKind::Rest) => (
                401,
                typed("UnauthorizedException"),
                json(json!({"message": "Unauthorized"})),
            ),
            (Refusal::Unauthorized, ApiKind::Http) => {
                (401, plain(), json(json!({"message": "Unauthorized"})))
            }
            (Refusal::ExplicitDeny, ApiKind::Rest) => (
                403,
                typed("AccessDeniedException"),
                json(json!({"Message":
                    "User is not authorized to access this resource with an explicit deny"})),
            ),
            (Refusal::NotAllowed, ApiKind::Rest) => (
                403,
                typed("AccessDeniedException"),
                json(json!({"Message": "User is not authorized to access this resource"})),
            ),
            (Refusal::ExplicitDeny | Refusal::NotAllowed, ApiKind::Http) => {
                (403, plain(), json(json!({"message": "Forbidden"})))
            }
            // API Gateway's default AUTHORIZER_CONFIGURATION_ERROR response; the reason stays in
            // esb's log, never in the client's answer.
            (Refusal::Misconfigured(_), ApiKind::Rest) => (
                500,
                typed("AuthorizerConfigurationException"),
                json(json!({"message": null})),
            ),
            (Refusal::Misconfigured(_), ApiKind::Http) => (
                500,
                plain(),
                json(json!({"message": "Internal Server Error"})),
            ),
        }
    }
}

/// How the authorizer function's invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionResult<'a> {
    /// It returned this payload.
    Returned(&'a [u8]),
    /// It failed (`X-Amz-Function-Error`) with this error payload.
    Failed(&'a [u8]),
    /// It could not be invoked (no environment, timeout, crash).
    NotInvoked,
}

/// The answer format the authorizer is configured for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// An IAM policy. `flat_context`: REST's rule that context values are strings, numbers or
    /// booleans (HTTP API 1.0 policies do not have it).
    Policy { flat_context: bool },
    /// HTTP API 2.0 with `enableSimpleResponses`: `{"isAuthorized": bool, "context": {...}}`.
    Simple,
}

/// Turns the function's answer into a [`Grant`]. `Unauthorized` (thrown, or returned as the
/// string) is 401; any other failure or an invalid answer is 500.
pub fn parse_result(result: FunctionResult<'_>, format: ResponseFormat) -> Result<Grant, Refusal> {
    let payload = match result {
        FunctionResult::NotInvoked => {
            return Err(Refusal::Misconfigured(
                "the authorizer function could not be invoked".into(),
            ));
        }
        FunctionResult::Failed(err) => {
            // `callback("Unauthorized")` / `raise Exception("Unauthorized")` arrive as the error
            // object's errorMessage.
            let message = serde_json::from_slice::<Value>(err).ok().and_then(|v| {
                v.get("errorMessage")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
            return Err(match message.as_deref() {
                Some("Unauthorized") => Refusal::Unauthorized,
                _ => Refusal::Misconfigured(format!(
                    "the authorizer function failed: {}",
                    message.unwrap_or_else(|| String::from_utf8_lossy(err).into_owned())
                )),
            });
        }
        FunctionResult::Returned(p) => p,
    };
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| Refusal::Misconfigured(format!("the authorizer's answer is not JSON: {e}")))?;
    if value.as_str() == Some("Unauthorized") {
        return Err(Refusal::Unauthorized);
    }
    match format {
        ResponseFormat::Policy { flat_context } => policy::parse_policy(&value, flat_context),
        ResponseFormat::Simple => policy::parse_simple(&value),
    }
}

/// A TOKEN authorizer's pre-check of its header, before any invocation.
#[derive(Debug, Clone)]
pub struct TokenCheck {
    validation: Option<Regex>,
}

impl TokenCheck {
    /// `validation_expression` must match the whole token (API Gateway's
    /// `identityValidationExpression`).
    pub fn new(validation_expression: Option<&str>) -> Result<TokenCheck, regex::Error> {
        let validation = validation_expression
            .map(|e| Regex::new(&format!("^(?:{e})$")))
            .transpose()?;
        Ok(TokenCheck { validation })
    }

    /// The token header's value, or 401 when it is missing, empty or does not validate.
    pub fn check<'a>(&self, header: Option<&'a str>) -> Result<&'a str, Refusal> {
        let token = header
            .filter(|t| !t.is_empty())
            .ok_or(Refusal::Unauthorized)?;
        if let Some(re) = &self.validation
            && !re.is_match(token)
        {
            return Err(Refusal::Unauthorized);
        }
        Ok(token)
    }
}

/// The values of a REQUEST authorizer's identity sources, in order; any missing or empty one is
/// a 401 without invoking (API Gateway's rule when sources are configured).
pub fn identity_values(
    sources: &[IdentitySource],
    mut value_of: impl FnMut(&IdentitySource) -> Option<String>,
) -> Result<Vec<String>, Refusal> {
    sources
        .iter()
        .map(|s| {
            value_of(s)
                .filter(|v| !v.is_empty())
                .ok_or(Refusal::Unauthorized)
        })
        .collect()
}

/// The cache key for identity values: length-prefixed, so no two different value lists share one.
pub fn cache_key(values: &[String]) -> String {
    let mut key = String::new();
    for v in values {
        key.push_str(&v.len().to_string());
        key.push(':');
        key.push_str(v);
    }
    key
}

/// `arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{METHOD}{path}` with the request's
/// actual path (`/users/42`), as API Gateway and SAM build it.
pub fn method_arn(
    region: &str,
    account: &str,
    api_id: &str,
    stage: &str,
    method: &str,
    path: &str,
) -> String {
    format!("arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{method}{path}")
}

/// The REST TOKEN authorizer's event (aws-compat §4.1).
pub fn token_event(token: &str, method_arn: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "type": "TOKEN",
        "authorizationToken": token,
        "methodArn": method_arn,
    }))
    .expect("literal JSON serializes")
}

/// Which REQUEST authorizer event to build (aws-compat §4.2, §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestShape {
    /// REST: the proxy request shape plus `type` and `methodArn`.
    Rest,
    /// HTTP API, payload format 1.0: the REST shape plus `version`, and the identity values
    /// comma-joined as `identitySource` and `authorizationToken`.
    HttpV1,
    /// HTTP API, payload format 2.0: the 2.0 request shape plus `type`, `routeArn` and the
    /// identity values as the `identitySource` list.
    HttpV2,
}

/// A REQUEST authorizer's event, made from the proxy event of the same request (1.0 for
/// [`RequestShape::Rest`] and [`RequestShape::HttpV1`], 2.0 for [`RequestShape::HttpV2`]): the
/// authorizer sees the request without its body, and no `requestContext.authorizer` yet.
pub fn request_event(
    proxy_event: &[u8],
    shape: RequestShape,
    arn: &str,
    identity: &[String],
) -> Result<Vec<u8>, serde_json::Error> {
    let mut event: Map<String, Value> = serde_json::from_slice(proxy_event)?;
    event.remove("body");
    event.remove("isBase64Encoded");
    if let Some(Value::Object(rc)) = event.get_mut("requestContext") {
        rc.remove("authorizer");
    }
    event.insert("type".into(), json!("REQUEST"));
    match shape {
        RequestShape::Rest => {
            event.insert("methodArn".into(), json!(arn));
        }
        RequestShape::HttpV1 => {
            let joined = identity.join(",");
            event.insert("methodArn".into(), json!(arn));
            event.insert("version".into(), json!("1.0"));
            event.insert("identitySource".into(), json!(joined));
            event.insert("authorizationToken".into(), json!(joined));
        }
        RequestShape::HttpV2 => {
            event.insert("version".into(), json!("2.0"));
            event.insert("routeArn".into(), json!(arn));
            event.insert("identitySource".into(), json!(identity));
        }
    }
    serde_json::to_vec(&event)
}

/// The percent-decoded value of query parameter `name` in a raw query string (the last one when
/// it repeats, as `queryStringParameters` keeps it), for `method.request.querystring.X`.
pub fn query_value(raw_query: &str, name: &str) -> Option<String> {
    raw_query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_encoding::percent_decode_str(k).decode_utf8_lossy() == name).then_some(v)
        })
        .next_back()
        .map(|v| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
}

impl Allowed {
    /// `requestContext.authorizer` for the integration's event format: REST (1.0) gets the
    /// context keys beside `principalId` and `integrationLatency`; HTTP API 2.0 gets
    /// `{"lambda": context}`.
    pub fn request_context(&self, format: PayloadFormat, integration_latency_ms: u64) -> Value {
        match format {
            PayloadFormat::V1 => {
                let mut m: Map<String, Value> = self.context.clone();
                if let Some(p) = &self.principal_id {
                    m.insert("principalId".into(), Value::String(p.clone()));
                }
                m.insert("integrationLatency".into(), json!(integration_latency_ms));
                Value::Object(m)
            }
            PayloadFormat::V2 => json!({"lambda": Value::Object(self.context.clone())}),
        }
    }
}

#[cfg(test)]
mod tests;
