//! `AWS::Serverless::Api` / `HttpApi` (explicit and implicit): stages, `Auth`, CORS, binary media
//! types, and the routes the functions' `Api` / `HttpApi` events put on them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use esb_model::{
    AuthorizerKind, AuthorizerSpec, CorsPolicy, FunctionName, IdentitySource, PayloadFormat,
    RouteAuth, RouteMethod, RouteSpec,
};

use crate::error::SamError;
use crate::function::{ApiEvent, ImportedFunction};
use crate::value::CfnValue;
use crate::{ApiInfo, ApiKind, CognitoAuthorizer, Ctx};

const IMPLICIT_REST: &str = "ServerlessRestApi";
const IMPLICIT_HTTP: &str = "ServerlessHttpApi";

/// REST Lambda authorizers cache for 300 s unless told otherwise; HTTP API ones do not cache.
const REST_AUTH_TTL: u32 = 300;

const REST_KNOWN: &[&str] = &[
    "StageName",
    "Auth",
    "Cors",
    "BinaryMediaTypes",
    "Name",
    "Description",
    "CacheClusterEnabled",
    "CacheClusterSize",
    "EndpointConfiguration",
    "MethodSettings",
    "MinimumCompressionSize",
    "AccessLogSetting",
    "CanarySetting",
    "TracingEnabled",
    "OpenApiVersion",
    "Domain",
    "AlwaysDeploy",
    "PropagateTags",
    "Tags",
    "Models",
    "MergeDefinitions",
    "DisableExecuteApiEndpoint",
    "FailOnWarnings",
    "Mode",
    "ApiKeySourceType",
    "SecurityPolicy",
    "EndpointAccessMode",
    "Policy",
    "Variables",
];

const HTTP_KNOWN: &[&str] = &[
    "StageName",
    "Auth",
    "CorsConfiguration",
    "Name",
    "Description",
    "AccessLogSettings",
    "Tags",
    "DefaultRouteSettings",
    "RouteSettings",
    "Domain",
    "FailOnWarnings",
    "PropagateTags",
    "DisableExecuteApiEndpoint",
    "StageVariables",
];

const DEFINITION: &str =
    "OpenAPI definitions are not read; the routes and auth they declare would be missing";

const API_REFUSED: &[(&str, &str)] = &[
    ("DefinitionBody", DEFINITION),
    ("DefinitionUri", DEFINITION),
    (
        "GatewayResponses",
        "custom gateway responses are not served",
    ),
];

enum AuthDef {
    /// Cognito (REST) or JWT (HTTP API): esb's own token check.
    Token(CognitoAuthorizer),
    Lambda(AuthorizerSpec),
}

struct ApiDef {
    http: bool,
    stage: String,
    cors: Option<CorsPolicy>,
    binary: Vec<String>,
    default_authorizer: Option<String>,
    api_key_required: bool,
    authorizers: BTreeMap<String, AuthDef>,
    /// Authorizers refused under skip_unsupported: routes using them are left out.
    refused_authorizers: BTreeSet<String>,
}

pub(crate) struct Apis {
    global_rest: Option<CfnValue>,
    global_http: Option<CfnValue>,
    defs: BTreeMap<String, ApiDef>,
}

pub(crate) struct Built {
    pub(crate) routes: Vec<RouteSpec>,
    pub(crate) authorizers: Vec<AuthorizerSpec>,
    pub(crate) apis: Vec<ApiInfo>,
}

impl Apis {
    pub(crate) fn new(global_rest: Option<CfnValue>, global_http: Option<CfnValue>) -> Self {
        Self {
            global_rest,
            global_http,
            defs: BTreeMap::new(),
        }
    }

    pub(crate) fn declare(
        &mut self,
        ctx: &Ctx<'_>,
        id: &str,
        ty: &str,
        props: Option<&CfnValue>,
    ) -> Result<(), SamError> {
        let http = ty == "AWS::Serverless::HttpApi";
        let global = if http {
            &self.global_http
        } else {
            &self.global_rest
        };
        let at = format!("Resources.{id}.Properties");
        if let Some(p) = props
            && p.as_map().is_none()
        {
            return Err(SamError::invalid(at, "expected a mapping"));
        }
        let props = crate::merged(global.clone(), props);
        let def = parse_api(ctx, &props, &at, http)?;
        self.defs.insert(id.to_string(), def);
        Ok(())
    }

    /// The implicit API SAM creates for events without `RestApiId` / `ApiId`.
    fn implicit(&mut self, ctx: &Ctx<'_>, http: bool) -> Result<(), SamError> {
        let id = if http { IMPLICIT_HTTP } else { IMPLICIT_REST };
        if self.defs.contains_key(id) {
            return Ok(());
        }
        let global = if http {
            &self.global_http
        } else {
            &self.global_rest
        };
        let props = crate::merged(global.clone(), None);
        let at = if http {
            "Globals.HttpApi"
        } else {
            "Globals.Api"
        };
        let def = parse_api(ctx, &props, at, http)?;
        self.defs.insert(id.to_string(), def);
        Ok(())
    }

    pub(crate) fn build(
        mut self,
        ctx: &Ctx<'_>,
        functions: &[ImportedFunction],
        imported: &BTreeSet<String>,
    ) -> Result<Built, SamError> {
        // Events first reveal which implicit APIs exist.
        for f in functions {
            for e in &f.events {
                if e.api == IMPLICIT_REST || e.api == IMPLICIT_HTTP {
                    self.implicit(ctx, e.api == IMPLICIT_HTTP)?;
                }
            }
        }

        let names = authorizer_names(&self.defs);
        let mut authorizers = Vec::new();
        for (api_id, def) in &self.defs {
            for (name, a) in &def.authorizers {
                if let AuthDef::Lambda(spec) = a {
                    if !imported.contains(spec.function.as_str()) {
                        // Only reachable with skip_unsupported: the function was left out.
                        continue;
                    }
                    let mut spec = spec.clone();
                    spec.name = names[&(api_id.clone(), name.clone())].clone();
                    if !authorizers.contains(&spec) {
                        authorizers.push(spec);
                    }
                }
            }
        }

        let mut routes: Vec<RouteSpec> = Vec::new();
        let mut route_api: Vec<String> = Vec::new();
        let mut seen: HashMap<(RouteMethod, String), (String, String)> = HashMap::new();
        for f in functions {
            for e in &f.events {
                let Some(def) = self.defs.get(&e.api) else {
                    let key = if e.http { "ApiId" } else { "RestApiId" };
                    let at = format!("{}.Properties.{key}", e.at);
                    let what = if e.http {
                        "AWS::Serverless::HttpApi"
                    } else {
                        "AWS::Serverless::Api"
                    };
                    return Err(SamError::invalid(
                        at,
                        format!("{} is not an {what} of this template", e.api),
                    ));
                };
                if def.http != e.http {
                    return Err(SamError::invalid(
                        &e.at,
                        format!(
                            "{} event attached to {}, which is an {}",
                            if e.http { "an HttpApi" } else { "an Api" },
                            e.api,
                            if def.http { "HttpApi" } else { "Api" }
                        ),
                    ));
                }
                let Some(auth) = route_auth(ctx, e, def, imported, &names)? else {
                    continue;
                };
                let key = (e.method.clone(), e.path.clone());
                if let Some((other_at, other_api)) = seen.get(&key) {
                    let msg = format!("{} {} is also defined by {other_at}", e.method, e.path);
                    if *other_api == e.api {
                        return Err(SamError::invalid(&e.at, msg));
                    }
                    ctx.unsupported(
                        &e.at,
                        &format!("{msg}; esb serves all APIs from one route table"),
                    )?;
                    continue;
                }
                seen.insert(key, (e.at.clone(), e.api.clone()));
                routes.push(RouteSpec {
                    method: e.method.clone(),
                    path: e.path.clone(),
                    function: f.spec.name.clone(),
                    auth,
                    payload_format: e.payload_format,
                });
                route_api.push(e.api.clone());
            }
        }

        let apis = self
            .defs
            .into_iter()
            .map(|(id, d)| ApiInfo {
                routes: (0..routes.len()).filter(|&i| route_api[i] == id).collect(),
                logical_id: id,
                kind: if d.http { ApiKind::Http } else { ApiKind::Rest },
                stage: d.stage,
                cors: d.cors,
                binary_media_types: d.binary,
                token_authorizers: d
                    .authorizers
                    .into_values()
                    .filter_map(|a| match a {
                        AuthDef::Token(t) => Some(t),
                        AuthDef::Lambda(_) => None,
                    })
                    .collect(),
            })
            .collect();
        Ok(Built {
            routes,
            authorizers,
            apis,
        })
    }
}

/// esb's authorizer names: the template's, or `Api-Name` where two APIs define the same name
/// differently.
fn authorizer_names(defs: &BTreeMap<String, ApiDef>) -> BTreeMap<(String, String), String> {
    let mut by_name: BTreeMap<&str, Vec<(&str, &AuthorizerSpec)>> = BTreeMap::new();
    for (api, d) in defs {
        for (name, a) in &d.authorizers {
            if let AuthDef::Lambda(spec) = a {
                by_name.entry(name).or_default().push((api, spec));
            }
        }
    }
    let mut out = BTreeMap::new();
    for (name, defs) in by_name {
        let same = defs.windows(2).all(|w| w[0].1 == w[1].1);
        for (api, _) in defs {
            let esb = if same {
                name.to_string()
            } else {
                format!("{api}-{name}")
            };
            out.insert((api.to_string(), name.to_string()), esb);
        }
    }
    out
}

/// The route's auth, or `None` when the route must be left out (only with skip_unsupported:
/// an auth esb cannot enforce never silently becomes a public route).
fn route_auth(
    ctx: &Ctx<'_>,
    e: &ApiEvent,
    def: &ApiDef,
    imported: &BTreeSet<String>,
    names: &BTreeMap<(String, String), String>,
) -> Result<Option<RouteAuth>, SamError> {
    let auth_at = format!("{}.Properties.Auth", e.at);
    let refuse = |reason: &str| -> Result<Option<RouteAuth>, SamError> {
        ctx.unsupported(&auth_at, &format!("{reason}; the route is left out"))?;
        Ok(None)
    };
    let name = e
        .authorizer
        .clone()
        .or_else(|| def.default_authorizer.clone());
    let api_key = e.api_key_required.unwrap_or(def.api_key_required);
    let by_authorizer = match name.as_deref() {
        None | Some("NONE") => None,
        Some("AWS_IAM") => return refuse("AWS_IAM (SigV4) authorization is not checked"),
        Some(n) => match def.authorizers.get(n) {
            Some(AuthDef::Token(_)) => Some(RouteAuth::Cognito),
            Some(AuthDef::Lambda(spec)) => {
                if !imported.contains(spec.function.as_str()) {
                    return refuse(&format!(
                        "authorizer {n}'s function {} was left out",
                        spec.function
                    ));
                }
                Some(RouteAuth::Authorizer(
                    names[&(e.api.clone(), n.to_string())].clone(),
                ))
            }
            None if def.refused_authorizers.contains(n) => {
                return refuse(&format!("authorizer {n} was refused"));
            }
            None => {
                return Err(SamError::invalid(
                    format!("{auth_at}.Authorizer"),
                    format!("{n} is not defined in {}'s Auth.Authorizers", e.api),
                ));
            }
        },
    };
    Ok(Some(match (by_authorizer, api_key) {
        (Some(_), true) => {
            return refuse(
                "an authorizer together with ApiKeyRequired (esb checks one or the other)",
            );
        }
        (Some(a), false) => a,
        (None, true) => RouteAuth::ApiKey,
        (None, false) => RouteAuth::None,
    }))
}

fn parse_api(
    ctx: &Ctx<'_>,
    props: &BTreeMap<String, CfnValue>,
    at: &str,
    http: bool,
) -> Result<ApiDef, SamError> {
    ctx.check_keys(
        props,
        at,
        if http { HTTP_KNOWN } else { REST_KNOWN },
        API_REFUSED,
    )?;
    for k in ["Variables", "StageVariables"] {
        if props.contains_key(k) {
            ctx.warn(format!(
                "{at}.{k}: stage variables are not passed to functions"
            ));
        }
    }
    let stage = ctx
        .prop_string(props, "StageName", at)?
        .unwrap_or_else(|| if http { "$default" } else { "Prod" }.into());
    let cors = if http {
        http_cors(ctx, props, at)?
    } else {
        rest_cors(ctx, props, at)?
    };
    let binary = if http {
        Vec::new()
    } else {
        ctx.prop_strings(props, "BinaryMediaTypes", at)?
            .unwrap_or_default()
            .into_iter()
            // SAM writes `/` as `~1` (JSON pointer escaping) in BinaryMediaTypes.
            .map(|t| t.replace("~1", "/"))
            .collect()
    };
    let mut def = ApiDef {
        http,
        stage,
        cors,
        binary,
        default_authorizer: None,
        api_key_required: false,
        authorizers: BTreeMap::new(),
        refused_authorizers: BTreeSet::new(),
    };
    if let Some(auth) = ctx.prop_shallow(props, "Auth", at)? {
        let aat = format!("{at}.Auth");
        let m = auth
            .as_map()
            .ok_or_else(|| SamError::invalid(&aat, "expected a mapping"))?;
        parse_auth(ctx, m, &aat, &mut def)?;
    }
    Ok(def)
}

fn parse_auth(
    ctx: &Ctx<'_>,
    m: &BTreeMap<String, CfnValue>,
    at: &str,
    def: &mut ApiDef,
) -> Result<(), SamError> {
    if def.http {
        ctx.check_keys(
            m,
            at,
            &["Authorizers", "DefaultAuthorizer", "EnableIamAuthorizer"],
            &[],
        )?;
    } else {
        ctx.check_keys(
            m,
            at,
            &[
                "Authorizers",
                "DefaultAuthorizer",
                "ApiKeyRequired",
                "AddDefaultAuthorizerToCorsPreflight",
                "AddApiKeyRequiredToCorsPreflight",
                "InvokeRole",
                "UsagePlan",
            ],
            &[("ResourcePolicy", "resource policies are not enforced")],
        )?;
        if m.contains_key("UsagePlan") {
            ctx.warn(format!(
                "{at}.UsagePlan: usage plans (quotas, throttling) are not enforced"
            ));
        }
        def.api_key_required = ctx.prop_bool(m, "ApiKeyRequired", at)?.unwrap_or(false);
    }
    def.default_authorizer = ctx.prop_string(m, "DefaultAuthorizer", at)?;
    if let Some(list) = ctx.prop_shallow(m, "Authorizers", at)? {
        let lat = format!("{at}.Authorizers");
        let list = list
            .as_map()
            .ok_or_else(|| SamError::invalid(&lat, "expected a mapping"))?;
        for (name, a) in list {
            let nat = format!("{lat}.{name}");
            let a = a
                .as_map()
                .ok_or_else(|| SamError::invalid(&nat, "expected a mapping"))?;
            let parsed = if def.http {
                http_authorizer(ctx, name, a, &nat)?
            } else {
                rest_authorizer(ctx, name, a, &nat)?
            };
            match parsed {
                Some(p) => {
                    def.authorizers.insert(name.clone(), p);
                }
                None => {
                    def.refused_authorizers.insert(name.clone());
                }
            }
        }
    }
    Ok(())
}

fn rest_authorizer(
    ctx: &Ctx<'_>,
    name: &str,
    a: &BTreeMap<String, CfnValue>,
    at: &str,
) -> Result<Option<AuthDef>, SamError> {
    let identity = identity_map(ctx, a, at)?;
    let iat = format!("{at}.Identity");
    if a.contains_key("UserPoolArn") {
        ctx.check_keys(
            a,
            at,
            &["UserPoolArn", "AuthorizationScopes", "Identity"],
            &[],
        )?;
        ctx.check_keys(
            &identity,
            &iat,
            &["Header", "ValidationExpression", "ReauthorizeEvery"],
            &[],
        )?;
        scopes(ctx, a, at)?;
        let issuer = ctx
            .prop(a, "UserPoolArn", at)
            .ok()
            .flatten()
            .and_then(|v| match v {
                CfnValue::List(l) => l.first().and_then(CfnValue::scalar_text),
                other => other.scalar_text(),
            });
        return Ok(Some(AuthDef::Token(CognitoAuthorizer {
            name: name.to_string(),
            header: ctx
                .prop_string(&identity, "Header", &iat)?
                .unwrap_or_else(|| "Authorization".into()),
            issuer,
        })));
    }
    ctx.check_keys(
        a,
        at,
        &[
            "FunctionArn",
            "FunctionInvokeRole",
            "FunctionPayloadType",
            "Identity",
            "DisableFunctionDefaultPermissions",
        ],
        &[],
    )?;
    let Some(function) = authorizer_function(ctx, a, at)? else {
        return Ok(None);
    };
    let kind = match ctx.prop_string(a, "FunctionPayloadType", at)?.as_deref() {
        None | Some("TOKEN") => AuthorizerKind::Token,
        Some("REQUEST") => AuthorizerKind::Request,
        Some(other) => {
            return Err(SamError::invalid(
                format!("{at}.FunctionPayloadType"),
                format!("expected TOKEN or REQUEST, not {other:?}"),
            ));
        }
    };
    let (identity_sources, validation_expression) = if kind == AuthorizerKind::Token {
        ctx.check_keys(
            &identity,
            &iat,
            &["Header", "ValidationExpression", "ReauthorizeEvery"],
            &[],
        )?;
        let header = ctx
            .prop_string(&identity, "Header", &iat)?
            .unwrap_or_else(|| "Authorization".into());
        (
            vec![IdentitySource::Header(header)],
            ctx.prop_string(&identity, "ValidationExpression", &iat)?,
        )
    } else {
        (request_identity(ctx, &identity, &iat)?, None)
    };
    Ok(Some(AuthDef::Lambda(AuthorizerSpec {
        name: name.to_string(),
        function,
        kind,
        identity_sources,
        validation_expression,
        ttl: ttl(ctx, &identity, &iat, REST_AUTH_TTL)?,
        payload_format: PayloadFormat::V1,
        simple_responses: false,
    })))
}

fn http_authorizer(
    ctx: &Ctx<'_>,
    name: &str,
    a: &BTreeMap<String, CfnValue>,
    at: &str,
) -> Result<Option<AuthDef>, SamError> {
    if a.contains_key("JwtConfiguration") {
        ctx.check_keys(
            a,
            at,
            &["JwtConfiguration", "IdentitySource", "AuthorizationScopes"],
            &[],
        )?;
        scopes(ctx, a, at)?;
        let source = ctx
            .prop_string(a, "IdentitySource", at)?
            .unwrap_or_else(|| "$request.header.Authorization".into());
        let header = match source.strip_prefix("$request.header.") {
            Some(h) => h.to_string(),
            None => {
                ctx.unsupported(
                    &format!("{at}.IdentitySource"),
                    "JWTs are read from a header only",
                )?;
                "Authorization".to_string()
            }
        };
        let issuer = ctx
            .prop(a, "JwtConfiguration", at)
            .ok()
            .flatten()
            .and_then(|j| j.get("issuer").and_then(CfnValue::scalar_text));
        return Ok(Some(AuthDef::Token(CognitoAuthorizer {
            name: name.to_string(),
            header,
            issuer,
        })));
    }
    if !a.contains_key("FunctionArn") {
        return Err(SamError::invalid(
            at,
            "an HttpApi authorizer needs JwtConfiguration or FunctionArn",
        ));
    }
    ctx.check_keys(
        a,
        at,
        &[
            "FunctionArn",
            "AuthorizerPayloadFormatVersion",
            "EnableSimpleResponses",
            "FunctionInvokeRole",
            "EnableFunctionDefaultPermissions",
            "Identity",
        ],
        &[],
    )?;
    let Some(function) = authorizer_function(ctx, a, at)? else {
        return Ok(None);
    };
    let payload_format = match ctx
        .prop_string(a, "AuthorizerPayloadFormatVersion", at)?
        .as_deref()
    {
        // A YAML `1.0` is a number, which reads back as "1".
        Some("1.0" | "1") => PayloadFormat::V1,
        Some("2.0" | "2") => PayloadFormat::V2,
        Some(other) => {
            return Err(SamError::invalid(
                format!("{at}.AuthorizerPayloadFormatVersion"),
                format!("expected 1.0 or 2.0, not {other:?}"),
            ));
        }
        None => {
            return Err(SamError::invalid(
                format!("{at}.AuthorizerPayloadFormatVersion"),
                "a Lambda authorizer of an HttpApi needs AuthorizerPayloadFormatVersion",
            ));
        }
    };
    let simple_responses = ctx
        .prop_bool(a, "EnableSimpleResponses", at)?
        .unwrap_or(false);
    if simple_responses && payload_format == PayloadFormat::V1 {
        return Err(SamError::invalid(
            format!("{at}.EnableSimpleResponses"),
            "simple responses need AuthorizerPayloadFormatVersion 2.0",
        ));
    }
    let identity = identity_map(ctx, a, at)?;
    let iat = format!("{at}.Identity");
    Ok(Some(AuthDef::Lambda(AuthorizerSpec {
        name: name.to_string(),
        function,
        kind: AuthorizerKind::Request,
        identity_sources: request_identity(ctx, &identity, &iat)?,
        validation_expression: None,
        ttl: ttl(ctx, &identity, &iat, 0)?,
        payload_format,
        simple_responses,
    })))
}

fn identity_map(
    ctx: &Ctx<'_>,
    a: &BTreeMap<String, CfnValue>,
    at: &str,
) -> Result<BTreeMap<String, CfnValue>, SamError> {
    match ctx.prop(a, "Identity", at)? {
        None => Ok(BTreeMap::new()),
        Some(CfnValue::Map(m)) => Ok(m),
        Some(_) => Err(SamError::invalid(
            format!("{at}.Identity"),
            "expected a mapping",
        )),
    }
}

type MakeSource = fn(String) -> IdentitySource;

fn request_identity(
    ctx: &Ctx<'_>,
    identity: &BTreeMap<String, CfnValue>,
    at: &str,
) -> Result<Vec<IdentitySource>, SamError> {
    ctx.check_keys(
        identity,
        at,
        &[
            "Headers",
            "QueryStrings",
            "StageVariables",
            "Context",
            "ReauthorizeEvery",
        ],
        &[],
    )?;
    let mut out = Vec::new();
    let kinds: [(&str, MakeSource); 4] = [
        ("Headers", IdentitySource::Header),
        ("QueryStrings", IdentitySource::QueryString),
        ("StageVariables", IdentitySource::StageVariable),
        ("Context", IdentitySource::Context),
    ];
    for (key, make) in kinds {
        for v in ctx.prop_strings(identity, key, at)?.unwrap_or_default() {
            out.push(make(v));
        }
    }
    Ok(out)
}

fn ttl(
    ctx: &Ctx<'_>,
    identity: &BTreeMap<String, CfnValue>,
    at: &str,
    default: u32,
) -> Result<Duration, SamError> {
    let secs = ctx
        .prop_u32(identity, "ReauthorizeEvery", at)?
        .unwrap_or(default);
    if secs > 3600 {
        return Err(SamError::invalid(
            format!("{at}.ReauthorizeEvery"),
            format!("at most 3600 seconds, not {secs}"),
        ));
    }
    Ok(Duration::from_secs(u64::from(secs)))
}

fn scopes(ctx: &Ctx<'_>, a: &BTreeMap<String, CfnValue>, at: &str) -> Result<(), SamError> {
    if let Some(s) = ctx.prop_strings(a, "AuthorizationScopes", at)?
        && !s.is_empty()
    {
        ctx.unsupported(
            &format!("{at}.AuthorizationScopes"),
            "OAuth scopes are not checked",
        )?;
    }
    Ok(())
}

/// The template function an authorizer's `FunctionArn` (usually `!GetAtt Fn.Arn`) names.
/// `None` when refused under skip_unsupported.
fn authorizer_function(
    ctx: &Ctx<'_>,
    a: &BTreeMap<String, CfnValue>,
    at: &str,
) -> Result<Option<FunctionName>, SamError> {
    let fat = format!("{at}.FunctionArn");
    let arn = ctx
        .prop_string(a, "FunctionArn", at)?
        .ok_or_else(|| SamError::invalid(&fat, "a Lambda authorizer needs FunctionArn"))?;
    let name = arn
        .split_once(":function:")
        .map(|(_, rest)| rest.split(':').next().unwrap_or(rest))
        .unwrap_or(&arn);
    if ctx.function_names.values().any(|n| n == name) {
        Ok(Some(FunctionName::new(name)))
    } else {
        ctx.unsupported(&fat, &format!("{arn} is not a function of this template"))?;
        Ok(None)
    }
}

/// REST `Cors`: a quoted origin string, or `{AllowOrigin, AllowMethods, AllowHeaders, MaxAge,
/// AllowCredentials}` whose values are quoted strings (`"'GET,POST'"`).
fn rest_cors(
    ctx: &Ctx<'_>,
    props: &BTreeMap<String, CfnValue>,
    at: &str,
) -> Result<Option<CorsPolicy>, SamError> {
    let cat = format!("{at}.Cors");
    let Some(c) = ctx.prop(props, "Cors", at)? else {
        return Ok(None);
    };
    let mut p = CorsPolicy::default();
    match c {
        CfnValue::Map(m) => {
            ctx.check_keys(
                &m,
                &cat,
                &[
                    "AllowOrigin",
                    "AllowMethods",
                    "AllowHeaders",
                    "MaxAge",
                    "AllowCredentials",
                ],
                &[],
            )?;
            // SAM's CorsProperties default the origin to `'*'`.
            let origin = ctx
                .prop_string(&m, "AllowOrigin", &cat)?
                .unwrap_or_else(|| "'*'".into());
            p.allow_origins = split_quoted(&origin);
            p.allow_methods = ctx
                .prop_string(&m, "AllowMethods", &cat)?
                .map_or_else(Vec::new, |s| split_quoted(&s));
            p.allow_headers = ctx
                .prop_string(&m, "AllowHeaders", &cat)?
                .map_or_else(Vec::new, |s| split_quoted(&s));
            if let Some(age) = ctx.prop_string(&m, "MaxAge", &cat)? {
                p.max_age = Some(unquote(&age).parse().map_err(|_| {
                    SamError::invalid(format!("{cat}.MaxAge"), format!("{age:?} is not a number"))
                })?);
            }
            p.allow_credentials = ctx
                .prop_bool(&m, "AllowCredentials", &cat)?
                .unwrap_or(false);
            if p.allow_credentials && p.allow_origins.iter().any(|o| o == "*") {
                return Err(SamError::invalid(
                    format!("{cat}.AllowCredentials"),
                    "credentials cannot be allowed for the '*' origin; name the origins",
                ));
            }
        }
        other => match other.scalar_text() {
            Some(origin) => p.allow_origins = split_quoted(&origin),
            None => return Err(SamError::invalid(cat, "expected a string or a mapping")),
        },
    }
    Ok(Some(p))
}

fn http_cors(
    ctx: &Ctx<'_>,
    props: &BTreeMap<String, CfnValue>,
    at: &str,
) -> Result<Option<CorsPolicy>, SamError> {
    let cat = format!("{at}.CorsConfiguration");
    let Some(c) = ctx.prop(props, "CorsConfiguration", at)? else {
        return Ok(None);
    };
    let all = || vec!["*".to_string()];
    match c {
        CfnValue::Bool(false) => Ok(None),
        CfnValue::String(ref t) if t.eq_ignore_ascii_case("false") => Ok(None),
        CfnValue::String(ref t) if t.eq_ignore_ascii_case("true") => Ok(Some(CorsPolicy {
            allow_origins: all(),
            allow_methods: all(),
            allow_headers: all(),
            ..CorsPolicy::default()
        })),
        CfnValue::Bool(true) => Ok(Some(CorsPolicy {
            allow_origins: all(),
            allow_methods: all(),
            allow_headers: all(),
            ..CorsPolicy::default()
        })),
        CfnValue::Map(m) => {
            ctx.check_keys(
                &m,
                &cat,
                &[
                    "AllowOrigins",
                    "AllowMethods",
                    "AllowHeaders",
                    "ExposeHeaders",
                    "MaxAge",
                    "AllowCredentials",
                ],
                &[],
            )?;
            let list = |k: &str| -> Result<Vec<String>, SamError> {
                Ok(ctx.prop_strings(&m, k, &cat)?.unwrap_or_default())
            };
            Ok(Some(CorsPolicy {
                allow_origins: list("AllowOrigins")?,
                allow_methods: list("AllowMethods")?,
                allow_headers: list("AllowHeaders")?,
                expose_headers: list("ExposeHeaders")?,
                max_age: ctx.prop_u32(&m, "MaxAge", &cat)?,
                allow_credentials: ctx
                    .prop_bool(&m, "AllowCredentials", &cat)?
                    .unwrap_or(false),
            }))
        }
        _ => Err(SamError::invalid(cat, "expected true, false or a mapping")),
    }
}

fn unquote(s: &str) -> &str {
    let t = s.trim();
    t.strip_prefix('\'')
        .and_then(|x| x.strip_suffix('\''))
        .unwrap_or(t)
}

fn split_quoted(s: &str) -> Vec<String> {
    unquote(s)
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}
