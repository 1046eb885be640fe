//! SAM templates: import a `template.yaml` into esb's function, route and authorizer specs, and
//! generate the original ESB's `functions.yml` / `routing.yml` (plus Dockerfiles) from it.
//!
//! The only IO is reading the template file. Parsing keeps every CloudFormation short form
//! (`!Ref`, `!Sub`, `!GetAtt A.B`, ...) as its long form ([`CfnValue`]); `Globals` are merged with
//! SAM's rules; intrinsics are resolved locally with SAM CLI's pseudo-parameter defaults.
//!
//! Policy, in short:
//! - Anything esb cannot emulate fails with [`SamError::Unsupported`] naming the resource and
//!   property. With [`ImportOptions::skip_unsupported`] it becomes a warning instead: an
//!   unsupported property is ignored, and a function that cannot run at all (S3 or inline code,
//!   a runtime esb cannot start) is left out together with its routes.
//! - Code in S3 (`CodeUri: s3://...` or `{Bucket, Key}`) is such a function: it is refused, since
//!   there is nothing local to run.
//! - An environment variable whose value cannot be resolved locally (`!Ref MyTable`) is left out
//!   with a warning naming its path, as SAM CLI blanks it; pass the value another way.
//! - Resources that are not the gateway's business (tables, buckets, roles, layers, ...) are
//!   ignored with a note.
//! - Mappings are read in key order, so functions, events and hence routes come in logical-id
//!   order, not in the order the template lists them.
//! - Function names: `FunctionName` when it is a plain valid name, else the logical id.

mod api;
mod error;
mod function;
mod generate;
mod globals;
mod intrinsics;
mod value;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use error::SamError;
use esb_model::{AuthorizerSpec, CorsPolicy, FunctionName, FunctionSpec, RouteSpec};
pub use generate::{Generated, GeneratedDockerfile, PYTHON, PYTHON_VAR, generate, is_python};
pub use value::{CfnValue, parse_template};

use crate::intrinsics::{Resolver, ResourceRef};

/// How to read a template.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// `Parameters` values, winning over their `Default`s. Keys like `AWS::Region` replace SAM
    /// CLI's pseudo-parameter defaults.
    pub parameter_overrides: BTreeMap<String, String>,
    /// Turn "esb does not support this" refusals into warnings (see the crate docs).
    pub skip_unsupported: bool,
    /// The folder relative `CodeUri`s resolve against. `None`: the template's folder for
    /// [`import_file`], the current folder for [`import_text`].
    pub base_dir: Option<PathBuf>,
}

/// What a template gave.
#[derive(Clone, Debug, Default)]
pub struct Imported {
    pub functions: Vec<FunctionSpec>,
    /// Where each function's code comes from; same order as `functions`.
    pub sources: Vec<FunctionSource>,
    pub routes: Vec<RouteSpec>,
    /// Lambda authorizers referenced by routes (`RouteAuth::Authorizer(name)`).
    pub authorizers: Vec<AuthorizerSpec>,
    /// Every API (explicit and SAM's implicit `ServerlessRestApi` / `ServerlessHttpApi`).
    pub apis: Vec<ApiInfo>,
    /// All APIs' `BinaryMediaTypes`, deduplicated (`~1` already decoded to `/`).
    pub binary_media_types: Vec<String>,
    /// Things that may change behaviour: skipped unsupported parts, unresolved variables.
    pub warnings: Vec<String>,
    /// Harmless: resources ignored because they are not the gateway's business.
    pub notes: Vec<String>,
}

impl Imported {
    pub fn function(&self, name: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.name.as_str() == name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiKind {
    /// `AWS::Serverless::Api`: REST, payload 1.0.
    Rest,
    /// `AWS::Serverless::HttpApi`.
    Http,
}

/// One API Gateway API of the template.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiInfo {
    pub logical_id: String,
    pub kind: ApiKind,
    /// `StageName` (REST default `Prod`, HTTP API default `$default`).
    pub stage: String,
    pub cors: Option<CorsPolicy>,
    pub binary_media_types: Vec<String>,
    /// Cognito (REST) and JWT (HTTP API) authorizers: routes using them get `RouteAuth::Cognito`.
    pub token_authorizers: Vec<CognitoAuthorizer>,
    /// Indexes into [`Imported::routes`] of this API's routes.
    pub routes: Vec<usize>,
}

/// A Cognito user pool or JWT authorizer, served by esb's own token check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CognitoAuthorizer {
    pub name: String,
    /// The header the token is read from (`Identity.Header`, default `Authorization`).
    pub header: String,
    /// `UserPoolArn` or the JWT issuer, when it resolves locally (for messages only).
    pub issuer: Option<String>,
}

/// Where a function's code lives, for image builds.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionSource {
    pub name: FunctionName,
    pub logical_id: String,
    pub code: FunctionCode,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FunctionCode {
    /// `PackageType: Zip` with a local `CodeUri`.
    Zip {
        runtime: String,
        handler: String,
        code_dir: PathBuf,
    },
    /// `PackageType: Image`.
    Image {
        image: String,
        config: ImageConfig,
        /// `Metadata.DockerContext` / `Metadata.Dockerfile`, when the image is built by `sam build`.
        docker_context: Option<PathBuf>,
        dockerfile: Option<String>,
    },
}

/// `ImageConfig`: overrides of the image's own entrypoint, command and working directory.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ImageConfig {
    pub entry_point: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub working_directory: Option<String>,
}

impl ImageConfig {
    pub fn is_empty(&self) -> bool {
        self.entry_point.is_none() && self.command.is_none() && self.working_directory.is_none()
    }
}

/// Reads and imports the template at `path`.
pub fn import_file(path: &Path, opts: &ImportOptions) -> Result<Imported, SamError> {
    let text = std::fs::read_to_string(path).map_err(|source| SamError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let base = match &opts.base_dir {
        Some(b) => b.clone(),
        None => match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        },
    };
    import_with_base(&text, opts, &base)
}

/// Imports template text (YAML or JSON).
pub fn import_text(text: &str, opts: &ImportOptions) -> Result<Imported, SamError> {
    let base = opts.base_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    import_with_base(text, opts, &base)
}

/// Shared state of one import.
pub(crate) struct Ctx<'t> {
    pub(crate) r: Resolver<'t>,
    pub(crate) skip: bool,
    pub(crate) base_dir: PathBuf,
    pub(crate) warnings: RefCell<Vec<String>>,
    /// Logical id → esb function name, for every function of the template.
    pub(crate) function_names: BTreeMap<String, String>,
}

impl Ctx<'_> {
    /// A refusal, or with `skip_unsupported` a warning.
    pub(crate) fn unsupported(&self, at: &str, reason: &str) -> Result<(), SamError> {
        if self.skip {
            self.warn(format!("{at}: not supported by esb, ignored: {reason}"));
            Ok(())
        } else {
            Err(SamError::unsupported(at, reason))
        }
    }

    pub(crate) fn warn(&self, w: String) {
        self.warnings.borrow_mut().push(w);
    }

    /// Resolves `props[key]`; `None` when absent or `AWS::NoValue`.
    pub(crate) fn prop(
        &self,
        props: &BTreeMap<String, CfnValue>,
        key: &str,
        at: &str,
    ) -> Result<Option<CfnValue>, SamError> {
        match props.get(key) {
            None => Ok(None),
            Some(v) => self.r.resolve(v, &format!("{at}.{key}")),
        }
    }

    /// Like [`Ctx::prop`], but resolves only an intrinsic at the top, so a mapping's entries can
    /// be resolved (and fail) one by one, only when read.
    pub(crate) fn prop_shallow(
        &self,
        props: &BTreeMap<String, CfnValue>,
        key: &str,
        at: &str,
    ) -> Result<Option<CfnValue>, SamError> {
        match props.get(key) {
            None => Ok(None),
            Some(v) => self.r.resolve_shallow(v, &format!("{at}.{key}")),
        }
    }

    pub(crate) fn prop_string(
        &self,
        props: &BTreeMap<String, CfnValue>,
        key: &str,
        at: &str,
    ) -> Result<Option<String>, SamError> {
        match props.get(key) {
            None => Ok(None),
            Some(v) => {
                let at = format!("{at}.{key}");
                match self.r.resolve(v, &at)? {
                    None => Ok(None),
                    Some(v) => v
                        .scalar_text()
                        .map(Some)
                        .ok_or_else(|| SamError::invalid(at, "expected a string")),
                }
            }
        }
    }

    pub(crate) fn prop_bool(
        &self,
        props: &BTreeMap<String, CfnValue>,
        key: &str,
        at: &str,
    ) -> Result<Option<bool>, SamError> {
        match self.prop_string(props, key, at)? {
            None => Ok(None),
            Some(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(s) => Err(SamError::invalid(
                format!("{at}.{key}"),
                format!("expected true or false, found {s:?}"),
            )),
        }
    }

    pub(crate) fn prop_u32(
        &self,
        props: &BTreeMap<String, CfnValue>,
        key: &str,
        at: &str,
    ) -> Result<Option<u32>, SamError> {
        match self.prop_string(props, key, at)? {
            None => Ok(None),
            Some(s) => s.trim().parse().map(Some).map_err(|_| {
                SamError::invalid(
                    format!("{at}.{key}"),
                    format!("expected a whole number, found {s:?}"),
                )
            }),
        }
    }

    /// A list of strings (a single string counts as a one-item list).
    pub(crate) fn prop_strings(
        &self,
        props: &BTreeMap<String, CfnValue>,
        key: &str,
        at: &str,
    ) -> Result<Option<Vec<String>>, SamError> {
        let pat = format!("{at}.{key}");
        match self.prop(props, key, at)? {
            None => Ok(None),
            Some(CfnValue::List(l)) => l
                .iter()
                .map(|v| {
                    v.scalar_text()
                        .ok_or_else(|| SamError::invalid(&pat, "expected a list of strings"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => v
                .scalar_text()
                .map(|s| Some(vec![s]))
                .ok_or_else(|| SamError::invalid(&pat, "expected a list of strings")),
        }
    }

    /// Checks a property mapping's keys: `known` are read or harmless; `refused` lists what esb
    /// cannot honour with the reason; anything else is unknown to esb and refused too.
    pub(crate) fn check_keys(
        &self,
        props: &BTreeMap<String, CfnValue>,
        at: &str,
        known: &[&str],
        refused: &[(&str, &str)],
    ) -> Result<(), SamError> {
        for (k, v) in props {
            if known.contains(&k.as_str()) {
                continue;
            }
            // An absent value (`!If [c, x, !Ref AWS::NoValue]`) asks for nothing.
            if v.intrinsic(false).is_some()
                && matches!(self.r.resolve(v, &format!("{at}.{k}")), Ok(None))
            {
                continue;
            }
            let reason = refused
                .iter()
                .find(|(name, _)| name == k)
                .map_or("esb does not know this property", |(_, r)| r);
            self.unsupported(&format!("{at}.{k}"), reason)?;
        }
        Ok(())
    }
}

/// Resource types that are not the gateway's business: ignored with a note.
fn is_ignored_type(ty: &str) -> bool {
    !matches!(
        ty,
        "AWS::Serverless::Function"
            | "AWS::Serverless::Api"
            | "AWS::Serverless::HttpApi"
            | "AWS::Lambda::Function"
            | "AWS::ApiGateway::RestApi"
            | "AWS::ApiGatewayV2::Api"
            | "AWS::Lambda::Url"
    )
}

fn import_with_base(text: &str, opts: &ImportOptions, base: &Path) -> Result<Imported, SamError> {
    let template = parse_template(text)?;
    let top = template
        .as_map()
        .ok_or_else(|| SamError::invalid("(template)", "the template is not a mapping"))?;
    let resources = top
        .get("Resources")
        .and_then(CfnValue::as_map)
        .ok_or_else(|| SamError::invalid("Resources", "a template needs a Resources mapping"))?;

    let mut early_warnings = Vec::new();
    let mut notes = Vec::new();

    // Names first: `Ref` and `Fn::GetAtt` to functions resolve to them.
    let mut refs = BTreeMap::new();
    let mut function_names = BTreeMap::new();
    let mut taken = BTreeSet::new();
    for (id, res) in resources {
        let ty = res.get("Type").and_then(CfnValue::as_str).unwrap_or("");
        if ty == "AWS::Serverless::Function" {
            let name = function::esb_name(id, res);
            if !taken.insert(name.clone()) {
                return Err(SamError::invalid(
                    format!("Resources.{id}.Properties.FunctionName"),
                    format!("function name {name:?} is used twice"),
                ));
            }
            function_names.insert(id.clone(), name.clone());
            refs.insert(id.clone(), ResourceRef::Function(name));
        } else {
            refs.insert(id.clone(), ResourceRef::Other(ty.to_string()));
        }
    }

    let r = Resolver::new(
        &template,
        &opts.parameter_overrides,
        refs,
        &mut early_warnings,
    );
    let ctx = Ctx {
        r,
        skip: opts.skip_unsupported,
        base_dir: base.to_path_buf(),
        warnings: RefCell::new(early_warnings),
        function_names,
    };

    match top.get("Transform") {
        None => {}
        Some(t) => {
            let list = match t {
                CfnValue::List(l) => l.clone(),
                other => vec![other.clone()],
            };
            for t in list {
                match t.as_str() {
                    Some("AWS::Serverless-2016-10-31") => {}
                    Some(other) => ctx.unsupported(
                        "Transform",
                        &format!("macro {other} is not expanded locally"),
                    )?,
                    None => ctx.unsupported("Transform", "only the SAM transform is expanded")?,
                }
            }
        }
    }

    let empty = BTreeMap::new();
    let globals = top
        .get("Globals")
        .and_then(CfnValue::as_map)
        .unwrap_or(&empty);
    let global = |section: &str| globals.get(section).cloned();

    let mut functions = Vec::new();
    let mut apis = api::Apis::new(global("Api"), global("HttpApi"));
    for (id, res) in resources {
        let at = format!("Resources.{id}");
        if id.starts_with("Fn::ForEach") {
            ctx.unsupported(
                &at,
                "Fn::ForEach (AWS::LanguageExtensions) is not expanded locally",
            )?;
            continue;
        }
        let Some(ty) = res.get("Type").and_then(CfnValue::as_str) else {
            // CloudFormation would refuse it; it is nothing esb could serve either way.
            ctx.warn(format!(
                "{at}.Type: missing or not a string; resource ignored"
            ));
            continue;
        };
        if let Some(cond) = res.get("Condition") {
            let name = cond.as_str().ok_or_else(|| {
                SamError::invalid(format!("{at}.Condition"), "expected a condition name")
            })?;
            if !ctx.r.condition(name, &format!("{at}.Condition"))? {
                notes.push(format!("{id}: condition {name} is false; left out"));
                continue;
            }
        }
        match ty {
            "AWS::Serverless::Function" => {
                if res.get("Properties").is_some_and(|p| p.as_map().is_none()) {
                    return Err(SamError::invalid(
                        format!("{at}.Properties"),
                        "expected a mapping",
                    ));
                }
                let props = merged(global("Function"), res.get("Properties"));
                match function::import(&ctx, id, &props, res.get("Metadata")) {
                    Ok(f) => functions.push(f),
                    Err(e @ (SamError::Unsupported { .. } | SamError::Unresolved { .. }))
                        if ctx.skip =>
                    {
                        ctx.warn(format!("{e}; function {id} is left out with its routes"));
                    }
                    Err(e) => return Err(e),
                }
            }
            "AWS::Serverless::Api" | "AWS::Serverless::HttpApi" => {
                apis.declare(&ctx, id, ty, res.get("Properties"))?;
            }
            t if is_ignored_type(t) => {
                notes.push(format!("{id}: {t} is not the gateway's business; ignored"));
            }
            t => ctx.unsupported(
                &format!("{at}.Type"),
                &format!(
                    "{t} resources are not imported (use AWS::Serverless::Function / Api / HttpApi)"
                ),
            )?,
        }
    }

    let imported_fns: BTreeSet<String> = functions
        .iter()
        .map(|f| f.spec.name.as_str().to_string())
        .collect();
    let built = apis.build(&ctx, &functions, &imported_fns)?;

    let mut out = Imported {
        routes: built.routes,
        authorizers: built.authorizers,
        apis: built.apis,
        notes,
        ..Imported::default()
    };
    for f in functions {
        out.functions.push(f.spec);
        out.sources.push(f.source);
    }
    for a in &out.apis {
        for t in &a.binary_media_types {
            if !out.binary_media_types.contains(t) {
                out.binary_media_types.push(t.clone());
            }
        }
    }
    out.warnings = ctx.warnings.into_inner();
    Ok(out)
}

/// A resource's `Properties` with its `Globals` section merged under them.
fn merged(global: Option<CfnValue>, local: Option<&CfnValue>) -> BTreeMap<String, CfnValue> {
    let local = local.cloned().unwrap_or(CfnValue::Map(BTreeMap::new()));
    let v = match global {
        Some(g) => globals::merge(&g, &local),
        None => local,
    };
    match v {
        CfnValue::Map(m) => m,
        _ => BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests;
