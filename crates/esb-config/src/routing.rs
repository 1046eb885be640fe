//! `routing.yml`: the original ESB's `routes: [{path, method, function}]` plus `auth` and `payload_format`.

use std::path::Path;

use esb_model::{FunctionName, PayloadFormat, RouteAuth, RouteMethod, RouteSpec};
use serde::Deserialize;

use crate::error::{ConfigError, find_line};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RoutingFile {
    #[serde(default)]
    routes: Vec<RouteEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteEntry {
    #[serde(default)]
    path: String,
    #[serde(default)]
    method: String,
    /// `target_container` is the earliest ESB spelling of `function`.
    #[serde(alias = "target_container")]
    function: String,
    auth: Option<AuthEntry>,
    payload_format: Option<FormatEntry>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AuthEntry {
    Kind(AuthKind),
    Authorizer { authorizer: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum AuthKind {
    Cognito,
    None,
    ApiKey,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FormatEntry {
    Text(String),
    Number(f64),
}

/// Methods API Gateway accepts in a route (plus `ANY`).
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

pub(crate) fn parse(file: &Path, text: &str) -> Result<Vec<RouteSpec>, ConfigError> {
    let raw: RoutingFile = if text.trim().is_empty() {
        RoutingFile::default()
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| ConfigError::from_yaml(file, &e))?
    };
    let mut out = Vec::with_capacity(raw.routes.len());
    for (i, r) in raw.routes.into_iter().enumerate() {
        // The original generator emits `path: "", method: ""` for schedule-only functions.
        if r.path.is_empty() && r.method.is_empty() {
            continue;
        }
        let err = |reason: String| {
            let line = find_line(text, &[&r.path]).filter(|_| !r.path.is_empty());
            ConfigError::new(
                file,
                line,
                format!("routes[{i}] ({} {}): {reason}", r.method, r.path),
            )
        };
        if !r.path.starts_with('/') {
            return Err(err("path must start with '/'".into()));
        }
        let method = match r.method.to_ascii_uppercase().as_str() {
            "ANY" | "*" => RouteMethod::Any,
            m if METHODS.contains(&m) => RouteMethod::Only(m.to_string()),
            "" => return Err(err("method is missing".into())),
            m => return Err(err(format!("unknown method {m:?}"))),
        };
        let auth = match r.auth {
            None | Some(AuthEntry::Kind(AuthKind::Cognito)) => RouteAuth::Cognito,
            Some(AuthEntry::Kind(AuthKind::None)) => RouteAuth::None,
            Some(AuthEntry::Kind(AuthKind::ApiKey)) => RouteAuth::ApiKey,
            Some(AuthEntry::Authorizer { authorizer }) => RouteAuth::Authorizer(authorizer),
        };
        let payload_format = match r.payload_format {
            None => PayloadFormat::V1,
            Some(FormatEntry::Text(t)) if t == "1.0" || t == "1" => PayloadFormat::V1,
            Some(FormatEntry::Text(t)) if t == "2.0" || t == "2" => PayloadFormat::V2,
            Some(FormatEntry::Number(1.0)) => PayloadFormat::V1,
            Some(FormatEntry::Number(2.0)) => PayloadFormat::V2,
            Some(_) => return Err(err("payload_format must be \"1.0\" or \"2.0\"".into())),
        };
        out.push(RouteSpec {
            method,
            path: r.path.clone(),
            function: FunctionName::new(r.function.as_str()),
            auth,
            payload_format,
        });
    }
    Ok(out)
}
