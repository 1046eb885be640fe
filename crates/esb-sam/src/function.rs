//! `AWS::Serverless::Function` → [`FunctionSpec`]: how to run it, its limits, its schedules, and
//! its API events (turned into routes once every API is known).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use esb_model::{
    FunctionName, FunctionSpec, PayloadFormat, RieSource, RouteMethod, RuntimeSpec, ScalingSpec,
    ScheduleSpec,
};

use crate::error::SamError;
use crate::value::CfnValue;
use crate::{Ctx, FunctionCode, FunctionSource, ImageConfig};

/// Lambda's defaults and ranges (`Timeout` defaults to 3 s in SAM and Lambda alike).
const DEFAULT_TIMEOUT_SECS: u32 = 3;
const DEFAULT_MEMORY_MB: u32 = 128;

pub(crate) struct ImportedFunction {
    pub(crate) spec: FunctionSpec,
    pub(crate) source: FunctionSource,
    pub(crate) events: Vec<ApiEvent>,
}

/// An `Api` or `HttpApi` event, before its API's auth rules are applied.
pub(crate) struct ApiEvent {
    /// `Resources.F.Properties.Events.E`, for messages.
    pub(crate) at: String,
    pub(crate) http: bool,
    /// The API's logical id (implicit ones included).
    pub(crate) api: String,
    pub(crate) method: RouteMethod,
    pub(crate) path: String,
    /// `Auth.Authorizer` of the event (a name, `NONE` or `AWS_IAM`).
    pub(crate) authorizer: Option<String>,
    pub(crate) api_key_required: Option<bool>,
    pub(crate) payload_format: PayloadFormat,
}

/// The name esb serves the function under: its `FunctionName` when that is a plain valid name
/// (the original ESB's names come from there), else its logical id (what `sam local` uses).
pub(crate) fn esb_name(logical_id: &str, resource: &CfnValue) -> String {
    resource
        .get("Properties")
        .and_then(|p| p.get("FunctionName"))
        .and_then(CfnValue::as_str)
        .filter(|n| valid_name(n))
        .unwrap_or(logical_id)
        .to_string()
}

/// Lambda's function name rule, also what esb-config accepts.
pub(crate) fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Properties read here, or harmless locally (IAM, deployment, tracing, networking, ...).
const KNOWN: &[&str] = &[
    "PackageType",
    "ImageUri",
    "ImageConfig",
    "CodeUri",
    "Handler",
    "Runtime",
    "MemorySize",
    "Timeout",
    "Environment",
    "ReservedConcurrentExecutions",
    "ProvisionedConcurrencyConfig",
    "Events",
    "FunctionName",
    "Architectures",
    "Description",
    "Role",
    "Policies",
    "Tags",
    "PropagateTags",
    "Tracing",
    "KmsKeyArn",
    "AutoPublishAlias",
    "AutoPublishAliasAllProperties",
    "AutoPublishCodeSha256",
    "VersionDescription",
    "VersionDeletionPolicy",
    "DeploymentPreference",
    "RolePath",
    "PermissionsBoundary",
    "AssumeRolePolicyDocument",
    "CodeSigningConfigArn",
    "DeadLetterQueue",
    "EventInvokeConfig",
    "VpcConfig",
    "SnapStart",
    "EphemeralStorage",
    "RuntimeManagementConfig",
    "LoggingConfig",
    "RecursiveLoop",
    "SourceKMSKeyArn",
    "PublishToLatestPublished",
    "CapacityProviderConfig",
    "FunctionScalingConfig",
    "Connectors",
];

const REFUSED: &[(&str, &str)] = &[
    ("Layers", "layers are not mounted into functions"),
    ("FileSystemConfigs", "EFS file systems are not mounted"),
    ("FunctionUrlConfig", "function URLs are not served"),
    ("InlineCode", "inline code is not run locally"),
    ("DurableConfig", "durable functions are not emulated"),
    ("TenancyConfig", "tenant isolation is not emulated"),
];

pub(crate) fn import(
    ctx: &Ctx<'_>,
    id: &str,
    props: &BTreeMap<String, CfnValue>,
    metadata: Option<&CfnValue>,
) -> Result<ImportedFunction, SamError> {
    let at = format!("Resources.{id}.Properties");
    let name = ctx
        .function_names
        .get(id)
        .cloned()
        .unwrap_or_else(|| id.to_string());

    // Layers or file systems that resolve to nothing ask for nothing.
    let mut props = props.clone();
    for k in ["Layers", "FileSystemConfigs"] {
        if let Some(v) = ctx.prop(&props, k, &at)?
            && matches!(v, CfnValue::List(ref l) if l.is_empty())
        {
            props.remove(k);
        }
    }
    // InlineCode on its own is fatal: there is no code to run.
    if props.contains_key("InlineCode") && !props.contains_key("CodeUri") {
        return Err(SamError::unsupported(
            format!("{at}.InlineCode"),
            "inline code is not run locally (SAM CLI refuses it too); use CodeUri",
        ));
    }
    ctx.check_keys(&props, &at, KNOWN, REFUSED)?;

    let package = ctx
        .prop_string(&props, "PackageType", &at)?
        .unwrap_or_else(|| "Zip".into());
    let (runtime, code) = match package.as_str() {
        "Image" => image_runtime(ctx, id, &props, metadata, &at)?,
        "Zip" => zip_runtime(ctx, &props, &at)?,
        other => {
            return Err(SamError::invalid(
                format!("{at}.PackageType"),
                format!("PackageType must be Zip or Image, not {other:?}"),
            ));
        }
    };

    let timeout = ctx
        .prop_u32(&props, "Timeout", &at)?
        .unwrap_or(DEFAULT_TIMEOUT_SECS);
    if !(1..=900).contains(&timeout) {
        return Err(SamError::invalid(
            format!("{at}.Timeout"),
            format!("Timeout must be between 1 and 900 seconds, not {timeout}"),
        ));
    }
    let memory_size = ctx
        .prop_u32(&props, "MemorySize", &at)?
        .unwrap_or(DEFAULT_MEMORY_MB);
    if !(128..=10240).contains(&memory_size) {
        return Err(SamError::invalid(
            format!("{at}.MemorySize"),
            format!("MemorySize must be between 128 and 10240 MB, not {memory_size}"),
        ));
    }

    let environment = environment(ctx, &props, &at)?;
    let scaling = scaling(ctx, &props, &at)?;

    let mut schedules = Vec::new();
    let mut events = Vec::new();
    if let Some(evs) = props.get("Events").filter(|e| **e != CfnValue::Null) {
        let evs = evs
            .as_map()
            .ok_or_else(|| SamError::invalid(format!("{at}.Events"), "expected a mapping"))?;
        for (ev_id, ev) in evs {
            let eat = format!("{at}.Events.{ev_id}");
            event(ctx, ev, &eat, &mut schedules, &mut events)?;
        }
    }

    let name = FunctionName::new(name);
    Ok(ImportedFunction {
        spec: FunctionSpec {
            name: name.clone(),
            runtime,
            timeout: Duration::from_secs(u64::from(timeout)),
            memory_size,
            environment,
            scaling,
            schedules,
        },
        source: FunctionSource {
            name,
            logical_id: id.to_string(),
            code,
        },
        events,
    })
}

fn zip_runtime(
    ctx: &Ctx<'_>,
    props: &BTreeMap<String, CfnValue>,
    at: &str,
) -> Result<(RuntimeSpec, FunctionCode), SamError> {
    let code_uri = match ctx.prop(props, "CodeUri", at)? {
        // SAM CLI runs a function without CodeUri from the template's folder.
        None => ".".to_string(),
        Some(CfnValue::String(s)) if s.starts_with("s3://") => {
            return Err(SamError::unsupported(
                format!("{at}.CodeUri"),
                format!("code in S3 ({s}) cannot be run locally; point CodeUri at a local folder"),
            ));
        }
        Some(CfnValue::String(s)) => s,
        Some(CfnValue::Map(_)) => {
            return Err(SamError::unsupported(
                format!("{at}.CodeUri"),
                "code in S3 ({Bucket, Key}) cannot be run locally; point CodeUri at a local folder",
            ));
        }
        Some(_) => {
            return Err(SamError::invalid(
                format!("{at}.CodeUri"),
                "expected a path or an S3 location",
            ));
        }
    };
    let handler = ctx.prop_string(props, "Handler", at)?.ok_or_else(|| {
        SamError::invalid(format!("{at}.Handler"), "a Zip function needs Handler")
    })?;
    let runtime = ctx.prop_string(props, "Runtime", at)?.ok_or_else(|| {
        SamError::invalid(format!("{at}.Runtime"), "a Zip function needs Runtime")
    })?;
    let code_dir = normalize(&ctx.base_dir.join(&code_uri));
    let spec = if runtime.starts_with("python3.") {
        RuntimeSpec::Process {
            command: vec![
                crate::PYTHON.into(),
                "-m".into(),
                "awslambdaric".into(),
                handler.clone(),
            ],
            working_dir: Some(code_dir.clone()),
        }
    } else if runtime == "provided.al2" || runtime == "provided.al2023" || runtime == "provided" {
        RuntimeSpec::Process {
            command: vec![code_dir.join("bootstrap").to_string_lossy().into_owned()],
            working_dir: Some(code_dir.clone()),
        }
    } else {
        return Err(SamError::unsupported(
            format!("{at}.Runtime"),
            format!(
                "runtime {runtime} is not run locally (esb runs python3.x and provided.al2/al2023 \
                 Zip functions); package it as an Image"
            ),
        ));
    };
    Ok((
        spec,
        FunctionCode::Zip {
            runtime,
            handler,
            code_dir,
        },
    ))
}

fn image_runtime(
    ctx: &Ctx<'_>,
    id: &str,
    props: &BTreeMap<String, CfnValue>,
    metadata: Option<&CfnValue>,
    at: &str,
) -> Result<(RuntimeSpec, FunctionCode), SamError> {
    let meta = metadata.and_then(CfnValue::as_map);
    let meta_at = format!("Resources.{id}.Metadata");
    let context = match meta {
        Some(m) => ctx.prop_string(m, "DockerContext", &meta_at)?,
        None => None,
    };
    let dockerfile = match meta {
        Some(m) => ctx.prop_string(m, "Dockerfile", &meta_at)?,
        None => None,
    };
    // `sam build` metadata wins over ImageUri; SAM CLI tags such images `<logicalid>:<DockerTag>`.
    let image = if context.is_some() || dockerfile.is_some() {
        let tag = match meta {
            Some(m) => ctx.prop_string(m, "DockerTag", &meta_at)?,
            None => None,
        };
        format!(
            "{}:{}",
            id.to_ascii_lowercase(),
            tag.unwrap_or_else(|| "latest".into())
        )
    } else {
        ctx.prop_string(props, "ImageUri", at)?.ok_or_else(|| {
            SamError::invalid(
                format!("{at}.ImageUri"),
                "an Image function needs ImageUri (or Metadata.DockerContext)",
            )
        })?
    };
    let mut config = ImageConfig::default();
    if let Some(ic) = ctx.prop(props, "ImageConfig", at)? {
        let ic_at = format!("{at}.ImageConfig");
        let m = ic
            .as_map()
            .ok_or_else(|| SamError::invalid(&ic_at, "expected a mapping"))?;
        ctx.check_keys(
            m,
            &ic_at,
            &["EntryPoint", "Command", "WorkingDirectory"],
            &[],
        )?;
        config.entry_point = ctx.prop_strings(m, "EntryPoint", &ic_at)?;
        config.command = ctx.prop_strings(m, "Command", &ic_at)?;
        config.working_directory = ctx.prop_string(m, "WorkingDirectory", &ic_at)?;
    }
    if !config.is_empty() {
        ctx.warn(format!(
            "{at}.ImageConfig: applied only to images built from the generated Dockerfile \
             (esb starts {image} with its own entrypoint)"
        ));
    }
    Ok((
        RuntimeSpec::Docker {
            image: image.clone(),
            rie: RieSource::Injected,
        },
        FunctionCode::Image {
            image,
            config,
            docker_context: context.map(|c| normalize(&ctx.base_dir.join(c))),
            dockerfile,
        },
    ))
}

fn environment(
    ctx: &Ctx<'_>,
    props: &BTreeMap<String, CfnValue>,
    at: &str,
) -> Result<BTreeMap<String, String>, SamError> {
    let mut out = BTreeMap::new();
    let Some(env) = props.get("Environment") else {
        return Ok(out);
    };
    let env_at = format!("{at}.Environment");
    let Some(env) = ctx.r.resolve_shallow(env, &env_at)? else {
        return Ok(out);
    };
    let Some(vars) = env.get("Variables") else {
        return Ok(out);
    };
    let vars_at = format!("{env_at}.Variables");
    let Some(vars) = ctx.r.resolve_shallow(vars, &vars_at)? else {
        return Ok(out);
    };
    let vars = vars
        .as_map()
        .ok_or_else(|| SamError::invalid(&vars_at, "expected a mapping"))?;
    for (k, v) in vars {
        let vat = format!("{vars_at}.{k}");
        match ctx.r.resolve(v, &vat) {
            Ok(None) => {}
            Ok(Some(v)) => match v.scalar_text() {
                Some(s) => {
                    out.insert(k.clone(), s);
                }
                None => ctx.warn(format!(
                    "{vat}: a list or mapping is not a variable value; left out"
                )),
            },
            Err(SamError::Unresolved { at, reason }) => {
                ctx.warn(format!(
                    "{at}: cannot be resolved locally ({reason}); left out"
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn scaling(
    ctx: &Ctx<'_>,
    props: &BTreeMap<String, CfnValue>,
    at: &str,
) -> Result<ScalingSpec, SamError> {
    let mut s = ScalingSpec::default();
    let reserved = ctx.prop_u32(props, "ReservedConcurrentExecutions", at)?;
    if let Some(r) = reserved {
        if r == 0 {
            return Err(SamError::unsupported(
                format!("{at}.ReservedConcurrentExecutions"),
                "0 means the function is throttled off; esb needs at least 1",
            ));
        }
        s.max_capacity = r;
    }
    if let Some(pc) = ctx.prop(props, "ProvisionedConcurrencyConfig", at)? {
        let pat = format!("{at}.ProvisionedConcurrencyConfig");
        let m = pc
            .as_map()
            .ok_or_else(|| SamError::invalid(&pat, "expected a mapping"))?;
        if let Some(n) = ctx.prop_u32(m, "ProvisionedConcurrentExecutions", &pat)? {
            s.min_capacity = n;
        }
    }
    if s.min_capacity > s.max_capacity {
        if reserved.is_some() {
            return Err(SamError::invalid(
                format!("{at}.ProvisionedConcurrencyConfig"),
                format!(
                    "provisioned concurrency {} is above ReservedConcurrentExecutions {}",
                    s.min_capacity, s.max_capacity
                ),
            ));
        }
        // Without a reservation Lambda lets provisioned environments exceed esb's default cap.
        s.max_capacity = s.min_capacity;
    }
    Ok(s)
}

fn event(
    ctx: &Ctx<'_>,
    ev: &CfnValue,
    at: &str,
    schedules: &mut Vec<ScheduleSpec>,
    events: &mut Vec<ApiEvent>,
) -> Result<(), SamError> {
    let m = ev
        .as_map()
        .ok_or_else(|| SamError::invalid(at, "an event is a mapping with Type and Properties"))?;
    let ty = ctx
        .prop_string(m, "Type", at)?
        .ok_or_else(|| SamError::invalid(format!("{at}.Type"), "an event needs a Type"))?;
    let empty = BTreeMap::new();
    let pat = format!("{at}.Properties");
    let props = match m.get("Properties") {
        None => &empty,
        Some(p) => p
            .as_map()
            .ok_or_else(|| SamError::invalid(&pat, "expected a mapping"))?,
    };
    match ty.as_str() {
        "Api" => {
            ctx.check_keys(
                props,
                &pat,
                &[
                    "Path",
                    "Method",
                    "RestApiId",
                    "Auth",
                    "RequestModel",
                    "RequestParameters",
                    "TimeoutInMillis",
                    "ResponseTransferMode",
                ],
                &[],
            )?;
            let api =
                api_ref(props, "RestApiId", &pat)?.unwrap_or_else(|| "ServerlessRestApi".into());
            let path = ctx.prop_string(props, "Path", &pat)?.ok_or_else(|| {
                SamError::invalid(format!("{pat}.Path"), "an Api event needs Path")
            })?;
            let method = ctx.prop_string(props, "Method", &pat)?.ok_or_else(|| {
                SamError::invalid(format!("{pat}.Method"), "an Api event needs Method")
            })?;
            let (authorizer, api_key_required) = event_auth(ctx, props, &pat, false)?;
            events.push(ApiEvent {
                at: at.to_string(),
                http: false,
                api,
                method: method_of(&method, &format!("{pat}.Method"))?,
                path: check_path(path, &format!("{pat}.Path"))?,
                authorizer,
                api_key_required,
                payload_format: PayloadFormat::V1,
            });
        }
        "HttpApi" => {
            ctx.check_keys(
                props,
                &pat,
                &[
                    "Path",
                    "Method",
                    "ApiId",
                    "Auth",
                    "PayloadFormatVersion",
                    "TimeoutInMillis",
                    "RouteSettings",
                ],
                &[],
            )?;
            let api = api_ref(props, "ApiId", &pat)?.unwrap_or_else(|| "ServerlessHttpApi".into());
            let path = ctx.prop_string(props, "Path", &pat)?;
            let method = ctx.prop_string(props, "Method", &pat)?;
            let payload_format = match ctx
                .prop_string(props, "PayloadFormatVersion", &pat)?
                .as_deref()
            {
                // A YAML `1.0` is a number, which reads back as "1".
                None | Some("2.0" | "2") => PayloadFormat::V2,
                Some("1.0" | "1") => PayloadFormat::V1,
                Some(other) => {
                    return Err(SamError::invalid(
                        format!("{pat}.PayloadFormatVersion"),
                        format!("expected 1.0 or 2.0, not {other:?}"),
                    ));
                }
            };
            let (authorizer, _) = event_auth(ctx, props, &pat, true)?;
            // No Path and Method (or `$default`): the catch-all route, which also matches `/`.
            let paths: Vec<(RouteMethod, String)> = match (path.as_deref(), method.as_deref()) {
                (None | Some("$default"), None) | (Some("$default"), _) => vec![
                    (RouteMethod::Any, "/".into()),
                    (RouteMethod::Any, "/{proxy+}".into()),
                ],
                (Some(p), Some(mth)) => vec![(
                    method_of(mth, &format!("{pat}.Method"))?,
                    check_path(p.to_string(), &format!("{pat}.Path"))?,
                )],
                (None, Some(_)) => {
                    return Err(SamError::invalid(
                        format!("{pat}.Path"),
                        "Method without Path",
                    ));
                }
                (Some(_), None) => {
                    return Err(SamError::invalid(
                        format!("{pat}.Method"),
                        "Path without Method",
                    ));
                }
            };
            for (method, path) in paths {
                events.push(ApiEvent {
                    at: at.to_string(),
                    http: true,
                    api: api.clone(),
                    method,
                    path,
                    authorizer: authorizer.clone(),
                    api_key_required: None,
                    payload_format,
                });
            }
        }
        "Schedule" => {
            ctx.check_keys(
                props,
                &pat,
                &[
                    "Schedule",
                    "Enabled",
                    "State",
                    "Input",
                    "Name",
                    "Description",
                    "DeadLetterConfig",
                    "RetryPolicy",
                    "RuleName",
                ],
                &[],
            )?;
            let expr = ctx.prop_string(props, "Schedule", &pat)?.ok_or_else(|| {
                SamError::invalid(format!("{pat}.Schedule"), "a Schedule event needs Schedule")
            })?;
            let enabled = ctx.prop_bool(props, "Enabled", &pat)?;
            let state = ctx.prop_string(props, "State", &pat)?;
            if enabled.is_some() && state.is_some() {
                return Err(SamError::invalid(
                    format!("{pat}.State"),
                    "State and Enabled Properties cannot both be specified",
                ));
            }
            schedules.push(ScheduleSpec {
                expression: check_expression(expr, &format!("{pat}.Schedule"))?,
                input: input(ctx, props, &pat)?,
                enabled: enabled.unwrap_or(true) && state_enabled(state, &pat)?,
            });
        }
        "ScheduleV2" => {
            ctx.check_keys(
                props,
                &pat,
                &[
                    "ScheduleExpression",
                    "Input",
                    "State",
                    "Name",
                    "Description",
                    "FlexibleTimeWindow",
                    "DeadLetterConfig",
                    "RetryPolicy",
                    "RoleArn",
                    "GroupName",
                    "KmsKeyArn",
                    "PermissionsBoundary",
                    "OmitName",
                    "ScheduleExpressionTimezone",
                ],
                &[
                    ("StartDate", "schedule windows are not emulated"),
                    ("EndDate", "schedule windows are not emulated"),
                ],
            )?;
            let expr = ctx
                .prop_string(props, "ScheduleExpression", &pat)?
                .ok_or_else(|| {
                    SamError::invalid(
                        format!("{pat}.ScheduleExpression"),
                        "a ScheduleV2 event needs ScheduleExpression",
                    )
                })?;
            if let Some(tz) = ctx.prop_string(props, "ScheduleExpressionTimezone", &pat)?
                && tz != "UTC"
                && tz != "Etc/UTC"
            {
                ctx.unsupported(
                    &format!("{pat}.ScheduleExpressionTimezone"),
                    &format!("schedules run in UTC; {tz} is not honoured"),
                )?;
            }
            let state = ctx.prop_string(props, "State", &pat)?;
            schedules.push(ScheduleSpec {
                expression: check_expression(expr, &format!("{pat}.ScheduleExpression"))?,
                input: input(ctx, props, &pat)?,
                enabled: state_enabled(state, &pat)?,
            });
        }
        other => {
            ctx.unsupported(
                at,
                &format!("event type {other} is not delivered by esb (only Api, HttpApi, Schedule, ScheduleV2)"),
            )?;
        }
    }
    Ok(())
}

fn state_enabled(state: Option<String>, at: &str) -> Result<bool, SamError> {
    // EventBridge's values are upper case; templates in the wild also write `Enabled`.
    match state.map(|s| s.to_ascii_uppercase()).as_deref() {
        None | Some("ENABLED") => Ok(true),
        Some("DISABLED") => Ok(false),
        Some(other) => Err(SamError::invalid(
            format!("{at}.State"),
            format!("expected ENABLED or DISABLED, not {other:?}"),
        )),
    }
}

/// `Input` is a JSON string in SAM; a mapping is accepted and written as JSON.
fn input(
    ctx: &Ctx<'_>,
    props: &BTreeMap<String, CfnValue>,
    at: &str,
) -> Result<Option<String>, SamError> {
    Ok(match ctx.prop(props, "Input", at)? {
        None | Some(CfnValue::Null) => None,
        Some(CfnValue::String(s)) => Some(s),
        Some(other) => Some(other.to_json().to_string()),
    })
}

fn check_expression(expr: String, at: &str) -> Result<String, SamError> {
    let e = expr.trim();
    if (e.starts_with("rate(") || e.starts_with("cron(")) && e.ends_with(')') {
        Ok(e.to_string())
    } else if e.starts_with("at(") {
        Err(SamError::unsupported(
            at,
            "one-time at(...) schedules are not run",
        ))
    } else {
        Err(SamError::invalid(
            at,
            format!("{e:?} is not a rate(...) or cron(...) expression"),
        ))
    }
}

/// `RestApiId: !Ref MyApi` (or the bare logical id some templates use).
fn api_ref(
    props: &BTreeMap<String, CfnValue>,
    key: &str,
    at: &str,
) -> Result<Option<String>, SamError> {
    match props.get(key) {
        None => Ok(None),
        Some(v) => match (v.intrinsic(false), v) {
            (Some(("Ref", CfnValue::String(id))), _) => Ok(Some(id.clone())),
            (None, CfnValue::String(id)) => Ok(Some(id.clone())),
            _ => Err(SamError::unsupported(
                format!("{at}.{key}"),
                "only `!Ref ApiInTemplate` is understood here",
            )),
        },
    }
}

fn event_auth(
    ctx: &Ctx<'_>,
    props: &BTreeMap<String, CfnValue>,
    at: &str,
    http: bool,
) -> Result<(Option<String>, Option<bool>), SamError> {
    let Some(auth) = ctx.prop(props, "Auth", at)? else {
        return Ok((None, None));
    };
    let aat = format!("{at}.Auth");
    let m = auth
        .as_map()
        .ok_or_else(|| SamError::invalid(&aat, "expected a mapping"))?;
    let known: &[&str] = if http {
        &["Authorizer", "AuthorizationScopes"]
    } else {
        &[
            "Authorizer",
            "ApiKeyRequired",
            "AuthorizationScopes",
            "InvokeRole",
            "OverrideApiAuth",
        ]
    };
    ctx.check_keys(
        m,
        &aat,
        known,
        &[("ResourcePolicy", "resource policies are not enforced")],
    )?;
    if let Some(scopes) = ctx.prop_strings(m, "AuthorizationScopes", &aat)?
        && !scopes.is_empty()
    {
        ctx.unsupported(
            &format!("{aat}.AuthorizationScopes"),
            "OAuth scopes are not checked",
        )?;
    }
    let api_key = if http {
        None
    } else {
        ctx.prop_bool(m, "ApiKeyRequired", &aat)?
    };
    Ok((ctx.prop_string(m, "Authorizer", &aat)?, api_key))
}

fn method_of(m: &str, at: &str) -> Result<RouteMethod, SamError> {
    let up = m.to_ascii_uppercase();
    match up.as_str() {
        "ANY" | "*" | "X-AMAZON-APIGATEWAY-ANY-METHOD" => Ok(RouteMethod::Any),
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => {
            Ok(RouteMethod::Only(up))
        }
        _ => Err(SamError::invalid(at, format!("unknown HTTP method {m:?}"))),
    }
}

fn check_path(p: String, at: &str) -> Result<String, SamError> {
    if p.starts_with('/') {
        Ok(p)
    } else {
        Err(SamError::invalid(
            at,
            format!("path {p:?} must start with '/'"),
        ))
    }
}

/// `a/./b/../c` → `a/c`, without touching the file system (the importer does no IO).
pub(crate) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                let can_pop = matches!(out.components().next_back(), Some(Component::Normal(_)));
                if can_pop {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}
