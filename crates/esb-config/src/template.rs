//! SAM templates as the source of functions, routes and Lambda authorizers (`template = ...` in
//! esb.toml, `esb serve --template`), and the files `esb generate` writes from one.
//!
//! esb-sam reads the template; this module adds what serving needs on top: errors as
//! [`ConfigError`]s with the template's file and line, esb.toml's rules for REQUEST authorizers
//! (an authorizer breaking them is refused or, with `skip_unsupported`, left out together with its
//! routes), and the python interpreter taken from `ESB_PYTHON` the same way the generated files do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use esb_model::{AuthorizerKind, AuthorizerSpec, FunctionSpec, RouteAuth, RouteSpec, RuntimeSpec};
use esb_sam::{GeneratedDockerfile, ImportOptions, Imported, SamError};
use serde::Deserialize;

use crate::error::{ConfigError, find_line};
use crate::interpolate::Interpolator;

/// A template to serve and how to read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateSource {
    pub path: PathBuf,
    /// `Parameters` values, winning over the template's `Default`s.
    pub parameter_overrides: BTreeMap<String, String>,
    /// Turn "esb does not support this" refusals into warnings (the part is left out).
    pub skip_unsupported: bool,
}

/// What the command line adds to esb.toml: `--template` replaces its function source,
/// `--parameter-overrides` win over its `parameter_overrides`, `--skip-unsupported` turns it on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateOverrides {
    /// Relative to the current folder (as typed on the command line).
    pub template: Option<PathBuf>,
    pub parameter_overrides: BTreeMap<String, String>,
    pub skip_unsupported: bool,
}

/// `template = "template.yaml"` or `[template]` with `path`, `parameter_overrides`,
/// `skip_unsupported`.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum TemplateToml {
    Path(PathBuf),
    Table(TemplateTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TemplateTable {
    path: PathBuf,
    #[serde(default)]
    parameter_overrides: BTreeMap<String, String>,
    #[serde(default)]
    skip_unsupported: bool,
}

/// The template to serve, if any: esb.toml's, with the command line's overrides applied.
/// `has_files` says esb.toml also names functions.yml/routing.yml.
pub(crate) fn choose(
    source: &Path,
    text: &str,
    base_dir: &Path,
    raw: Option<TemplateToml>,
    has_files: bool,
    ov: &TemplateOverrides,
    warnings: &mut Vec<String>,
) -> Result<Option<TemplateSource>, ConfigError> {
    let from_toml = raw.map(|t| match t {
        TemplateToml::Path(path) => TemplateSource {
            path: base_dir.join(path),
            ..TemplateSource::default()
        },
        TemplateToml::Table(t) => TemplateSource {
            path: base_dir.join(t.path),
            parameter_overrides: t.parameter_overrides,
            skip_unsupported: t.skip_unsupported,
        },
    });
    if from_toml.is_some() && has_files {
        return Err(ConfigError::new(
            source,
            find_line(text, &["template"]),
            "template cannot be combined with functions/routing: the template defines the functions and routes",
        ));
    }
    let mut chosen = match (&ov.template, from_toml) {
        (Some(path), _) => {
            if has_files {
                warnings.push(format!(
                    "{}: functions/routing are ignored: --template {} defines the functions and routes",
                    source.display(),
                    path.display()
                ));
            }
            TemplateSource {
                path: path.clone(),
                ..TemplateSource::default()
            }
        }
        (None, Some(t)) => t,
        (None, None) => {
            if !ov.parameter_overrides.is_empty() || ov.skip_unsupported {
                return Err(ConfigError::new(
                    source,
                    None,
                    "--parameter-overrides and --skip-unsupported need a template (--template or `template` in esb.toml)",
                ));
            }
            return Ok(None);
        }
    };
    chosen
        .parameter_overrides
        .extend(ov.parameter_overrides.clone());
    chosen.skip_unsupported |= ov.skip_unsupported;
    Ok(Some(chosen))
}

/// Reads a template with esb's serving policy (see the module docs). The specs are as the
/// template gave them; [`load`] applies the interpreter from the environment.
pub fn import(src: &TemplateSource) -> Result<Imported, ConfigError> {
    let text = std::fs::read_to_string(&src.path)
        .map_err(|e| ConfigError::new(&src.path, None, format!("cannot read: {e}")))?;
    // Absolute, so code folders stay right in files generated elsewhere.
    let absolute = std::path::absolute(&src.path).unwrap_or_else(|_| src.path.clone());
    let base_dir = match absolute.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let opts = ImportOptions {
        parameter_overrides: src.parameter_overrides.clone(),
        skip_unsupported: src.skip_unsupported,
        base_dir: Some(base_dir),
    };
    let mut imported =
        esb_sam::import_text(&text, &opts).map_err(|e| sam_error(&src.path, &text, &e))?;

    // REQUEST authorizers get the rules esb.toml's get: identity sources esb has no value for
    // (stage variables, other `context.X`) are refused, or with skip_unsupported left out with
    // their routes; so is caching without an identity (SAM refuses that one too).
    let refused: Vec<(String, String)> = imported
        .authorizers
        .iter()
        .filter(|a| a.kind == AuthorizerKind::Request)
        .filter_map(|a| {
            crate::request_authorizer_rules(
                &a.name,
                &a.validation_expression,
                a.ttl.as_secs(),
                &a.identity_sources,
            )
            .err()
            .map(|why| (a.name.clone(), why))
        })
        .collect();
    for (name, why) in refused {
        let uses = |r: &RouteSpec| matches!(&r.auth, RouteAuth::Authorizer(n) if *n == name);
        let routes: Vec<String> = imported
            .routes
            .iter()
            .filter(|r| uses(r))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        if !src.skip_unsupported {
            return Err(ConfigError::new(
                &src.path,
                find_line(&text, &[&format!("{name}:")]),
                format!(
                    "{why} (used by {}); --skip-unsupported leaves those routes out",
                    routes.join(", ")
                ),
            ));
        }
        imported.warnings.push(format!(
            "{why}; left out with its routes ({})",
            routes.join(", ")
        ));
        // Left out rather than opened: a route behind an authorizer must never become public.
        imported.routes.retain(|r| !uses(r));
        imported.authorizers.retain(|a| a.name != name);
        // Route indexes in `apis` no longer line up; nothing here reads them.
        for api in &mut imported.apis {
            api.routes.clear();
        }
    }
    crate::check_routes(
        &src.path,
        &text,
        &imported.routes,
        &imported.functions,
        &imported.authorizers,
    )?;
    Ok(imported)
}

/// A template's functions, routes and authorizers ready to serve.
pub(crate) struct Loaded {
    pub functions: Vec<FunctionSpec>,
    pub routes: Vec<RouteSpec>,
    pub authorizers: Vec<AuthorizerSpec>,
    pub binary_media_types: Vec<String>,
    pub warnings: Vec<String>,
}

pub(crate) fn load(src: &TemplateSource, interp: &Interpolator<'_>) -> Result<Loaded, ConfigError> {
    let imported = import(src)?;
    let python = interp
        .expand(&format!(
            "${{{}:-{}}}",
            esb_sam::PYTHON_VAR,
            esb_sam::PYTHON
        ))
        .map_err(|e| ConfigError::new(&src.path, None, e))?;
    let mut functions = imported.functions.clone();
    for f in &mut functions {
        if let RuntimeSpec::Process { command, .. } = &mut f.runtime
            && esb_sam::is_python(&imported, &f.name)
            && command.first().map(String::as_str) == Some(esb_sam::PYTHON)
        {
            command[0] = python.clone();
        }
    }
    Ok(Loaded {
        functions,
        routes: imported.routes,
        authorizers: imported.authorizers,
        binary_media_types: imported.binary_media_types,
        warnings: imported
            .warnings
            .into_iter()
            .map(|w| format!("{}: {w}", src.path.display()))
            .collect(),
    })
}

/// A template's error as a config error: the template file, the line of the resource (or of the
/// deepest part of the path found), and esb-sam's message, which names the resource and property.
fn sam_error(path: &Path, text: &str, e: &SamError) -> ConfigError {
    let line = e.at().and_then(|at| {
        // `Resources.Fn.Properties.Layers`: the line of `Fn:`, refined to `Layers:` below it.
        let parts: Vec<&str> = at.split('.').collect();
        let mut line = None;
        let mut from = 0;
        for part in parts.iter().skip(1) {
            let needle = format!("{part}:");
            match text
                .lines()
                .enumerate()
                .skip(from)
                .find(|(_, l)| l.trim_start().starts_with(&needle))
            {
                Some((i, _)) => {
                    line = Some(i + 1);
                    from = i + 1;
                }
                None => break,
            }
        }
        line
    });
    ConfigError::new(path, line, e.to_string())
}

/// The files `esb generate` writes.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratedFiles {
    pub functions_yml: String,
    pub routing_yml: String,
    /// Points at the two files above; carries the template's Lambda authorizers (TOKEN and
    /// REQUEST) and binary media types.
    pub esb_toml: String,
    pub dockerfiles: Vec<GeneratedDockerfile>,
}

/// The files that serve like `template = ...` does (loaded with the same environment).
pub fn generate(imported: &Imported) -> GeneratedFiles {
    let g = esb_sam::generate(imported);
    let mut toml = String::from(
        "# Generated by esb from a SAM template; edit the template and generate again.\n\
         functions = \"functions.yml\"\n\
         routing = \"routing.yml\"\n",
    );
    if !imported.binary_media_types.is_empty() {
        toml.push_str(&format!(
            "\n[api]\nbinary_media_types = {}\n",
            toml_strings(&imported.binary_media_types)
        ));
    }
    for a in &imported.authorizers {
        toml.push_str(&format!(
            "\n[[authorizers]]\nname = {}\nfunction = {}\ntype = \"{}\"\n",
            toml_str(&a.name),
            toml_str(a.function.as_str()),
            match a.kind {
                AuthorizerKind::Token => "TOKEN",
                AuthorizerKind::Request => "REQUEST",
            }
        ));
        let sources: Vec<String> = a
            .identity_sources
            .iter()
            .map(|s| match s {
                esb_model::IdentitySource::Header(h) => format!("method.request.header.{h}"),
                esb_model::IdentitySource::QueryString(q) => {
                    format!("method.request.querystring.{q}")
                }
                esb_model::IdentitySource::StageVariable(v) => format!("stageVariables.{v}"),
                esb_model::IdentitySource::Context(c) => format!("context.{c}"),
            })
            .collect();
        toml.push_str(&format!("identity_sources = {}\n", toml_strings(&sources)));
        if let Some(v) = &a.validation_expression {
            toml.push_str(&format!("validation_expression = {}\n", toml_str(v)));
        }
        toml.push_str(&format!(
            "ttl_secs = {}\npayload_format = \"{}\"\n",
            a.ttl.as_secs(),
            a.payload_format.as_str()
        ));
        if a.simple_responses {
            toml.push_str("simple_responses = true\n");
        }
    }
    GeneratedFiles {
        functions_yml: g.functions_yml,
        routing_yml: g.routing_yml,
        esb_toml: toml,
        dockerfiles: g.dockerfiles,
    }
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn toml_strings(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    const TEMPLATE: &str = "\
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src
      Handler: app.handler
      Runtime: python3.12
      Events:
        Get: {Type: Api, Properties: {Path: /a, Method: get, Auth: {Authorizer: NONE}}}
";

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(d.path().join(name), text).unwrap();
        }
        d
    }

    fn load(
        d: &tempfile::TempDir,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Config::load(&d.path().join("esb.toml"), lookup)
    }

    #[test]
    fn template_in_esb_toml_serves_its_functions_and_routes() {
        let d = dir_with(&[
            (
                "esb.toml",
                "template = \"template.yaml\"\n[api]\nstage = \"x\"\n",
            ),
            ("template.yaml", TEMPLATE),
        ]);
        let cfg = load(&d, &|_| None).unwrap();
        assert_eq!(cfg.functions.len(), 1);
        assert_eq!(cfg.routes.len(), 1);
        assert_eq!(cfg.routes[0].path, "/a");
        assert_eq!(cfg.routes[0].auth, RouteAuth::None);
        assert_eq!(cfg.api.stage, "x", "the rest of esb.toml still applies");
        match &cfg.functions[0].runtime {
            RuntimeSpec::Process {
                command,
                working_dir,
            } => {
                assert_eq!(command[0], "python3");
                let abs = std::path::absolute(d.path()).unwrap();
                assert_eq!(working_dir.as_deref(), Some(abs.join("src").as_path()));
            }
            other => panic!("{other:?}"),
        }
        // The interpreter comes from ESB_PYTHON, like `${ESB_PYTHON:-python3}` in generated files.
        let cfg = load(&d, &|k| {
            (k == "ESB_PYTHON").then(|| "/venv/bin/python".into())
        })
        .unwrap();
        match &cfg.functions[0].runtime {
            RuntimeSpec::Process { command, .. } => assert_eq!(command[0], "/venv/bin/python"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn template_and_functions_together_are_refused_with_the_line() {
        let d = dir_with(&[
            (
                "esb.toml",
                "functions = \"f.yml\"\n\ntemplate = \"template.yaml\"\n",
            ),
            ("template.yaml", TEMPLATE),
        ]);
        let e = load(&d, &|_| None).unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.reason.contains("cannot be combined"), "{e}");
    }

    #[test]
    fn an_unsupported_property_names_the_template_resource_and_line() {
        let t = TEMPLATE.replace(
            "      Runtime: python3.12\n",
            "      Runtime: python3.12\n      Layers: [arn:x]\n",
        );
        let d = dir_with(&[
            ("esb.toml", "template = \"template.yaml\"\n"),
            ("template.yaml", &t),
        ]);
        let e = load(&d, &|_| None).unwrap_err();
        assert_eq!(e.file, d.path().join("template.yaml"));
        assert_eq!(e.line, Some(9), "{e}");
        assert!(e.reason.contains("Resources.Fn.Properties.Layers"), "{e}");
        // Skipping turns it into a warning naming the same path.
        let d2 = dir_with(&[
            (
                "esb.toml",
                "[template]\npath = \"template.yaml\"\nskip_unsupported = true\n",
            ),
            ("template.yaml", &t),
        ]);
        let cfg = load(&d2, &|_| None).unwrap();
        assert!(
            cfg.warnings
                .iter()
                .any(|w| w.contains("Resources.Fn.Properties.Layers")),
            "{:?}",
            cfg.warnings
        );
    }

    /// An HttpApi route behind a REQUEST authorizer `Req` with the given `Identity`.
    fn with_request_authorizer(identity: &str) -> String {
        format!(
            "{TEMPLATE}        Guarded: {{Type: HttpApi, Properties: {{ApiId: !Ref H, Path: /g, Method: get, Auth: {{Authorizer: Req}}}}}}\n  H:\n    Type: AWS::Serverless::HttpApi\n    Properties:\n      Auth:\n        Authorizers:\n          Req:\n            FunctionArn: !GetAtt Fn.Arn\n            AuthorizerPayloadFormatVersion: '2.0'\n            EnableSimpleResponses: true\n            Identity: {identity}\n"
        )
    }

    #[test]
    fn request_authorizers_are_served_with_their_identity_sources() {
        let t = with_request_authorizer(
            "{Headers: [X-T], QueryStrings: [region], Context: [routeKey], ReauthorizeEvery: 30}",
        );
        let d = dir_with(&[("template.yaml", &t)]);
        let ov = TemplateOverrides {
            template: Some(d.path().join("template.yaml")),
            ..TemplateOverrides::default()
        };
        let cfg = Config::load_with(None, &ov, &|_| None).unwrap();
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
        let g = cfg.routes.iter().find(|r| r.path == "/g").unwrap();
        assert_eq!(g.auth, RouteAuth::Authorizer("Req".into()));
        let [a] = &cfg.authorizers[..] else {
            panic!("{:?}", cfg.authorizers)
        };
        assert_eq!(a.kind, AuthorizerKind::Request);
        assert_eq!(
            a.identity_sources,
            [
                esb_model::IdentitySource::Header("X-T".into()),
                esb_model::IdentitySource::QueryString("region".into()),
                esb_model::IdentitySource::Context("routeKey".into()),
            ]
        );
        assert_eq!(a.ttl.as_secs(), 30);
        assert_eq!(a.payload_format, esb_model::PayloadFormat::V2);
        assert!(a.simple_responses);
    }

    #[test]
    fn request_authorizers_esb_cannot_serve_are_refused_or_left_out_with_their_routes() {
        let t = with_request_authorizer("{Headers: [X-T], StageVariables: [v]}");
        let d = dir_with(&[("template.yaml", &t)]);
        let path = d.path().join("template.yaml");
        let ov = TemplateOverrides {
            template: Some(path.clone()),
            ..TemplateOverrides::default()
        };
        let e = Config::load_with(None, &ov, &|_| None).unwrap_err();
        assert_eq!(e.file, path);
        assert_eq!(e.line, Some(17), "{e}");
        assert!(
            e.reason.contains("stageVariables.v") && e.reason.contains("GET /g"),
            "{e}"
        );
        let ov = TemplateOverrides {
            skip_unsupported: true,
            ..ov
        };
        let cfg = Config::load_with(None, &ov, &|_| None).unwrap();
        let paths: Vec<&str> = cfg.routes.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["/a"], "never opened");
        assert!(cfg.authorizers.is_empty());
        assert!(
            cfg.warnings.iter().any(|w| w.contains("Req")),
            "{:?}",
            cfg.warnings
        );
        // Caching needs an identity to key on, as in esb.toml (SAM refuses it too).
        let t = with_request_authorizer("{ReauthorizeEvery: 60}");
        std::fs::write(&path, t).unwrap();
        let ov = TemplateOverrides {
            skip_unsupported: false,
            ..ov
        };
        let e = Config::load_with(None, &ov, &|_| None).unwrap_err();
        assert!(e.reason.contains("needs identity_sources"), "{e}");
    }

    #[test]
    fn command_line_overrides_extend_esb_toml() {
        let t = format!(
            "Parameters:\n  Stage: {{Type: String, Default: dev}}\n  Other: {{Type: String, Default: o}}\n{}",
            TEMPLATE.replace(
                "      Runtime: python3.12\n",
                "      Runtime: python3.12\n      Environment: {Variables: {S: !Ref Stage, O: !Ref Other}}\n"
            )
        );
        let d = dir_with(&[
            (
                "esb.toml",
                "[template]\npath = \"template.yaml\"\nparameter_overrides = { Stage = \"toml\", Other = \"toml\" }\n",
            ),
            ("template.yaml", &t),
        ]);
        let ov = TemplateOverrides {
            parameter_overrides: [("Stage".to_string(), "cli".to_string())].into(),
            ..TemplateOverrides::default()
        };
        let cfg = Config::load_with(Some(&d.path().join("esb.toml")), &ov, &|_| None).unwrap();
        let env = &cfg.functions[0].environment;
        assert_eq!(env["S"], "cli");
        assert_eq!(env["O"], "toml");
        // Without any template they are a mistake, not silently ignored.
        let plain = dir_with(&[("esb.toml", "")]);
        assert!(Config::load_with(Some(&plain.path().join("esb.toml")), &ov, &|_| None).is_err());
    }

    #[test]
    fn generated_files_load_like_the_template() {
        let t = format!(
            "{TEMPLATE}        Tok: {{Type: Api, Properties: {{RestApiId: !Ref R, Path: /t, Method: get, Auth: {{Authorizer: T}}}}}}\n  R:\n    Type: AWS::Serverless::Api\n    Properties:\n      StageName: p\n      BinaryMediaTypes: ['image~1png']\n      Auth:\n        Authorizers:\n          T:\n            FunctionArn: !GetAtt Fn.Arn\n            Identity: {{Header: X-T, ValidationExpression: '^a', ReauthorizeEvery: 30}}\n          Q:\n            FunctionArn: !GetAtt Fn.Arn\n            FunctionPayloadType: REQUEST\n            Identity: {{Headers: [X-T], QueryStrings: [q], Context: [httpMethod]}}\n"
        ).replace(
            "Path: /t, Method: get, Auth: {Authorizer: T}}}",
            "Path: /t, Method: get, Auth: {Authorizer: T}}}\n        Req: {Type: Api, Properties: {RestApiId: !Ref R, Path: /q, Method: get, Auth: {Authorizer: Q}}}",
        );
        let d = dir_with(&[("template.yaml", &t)]);
        let src = TemplateSource {
            path: d.path().join("template.yaml"),
            ..TemplateSource::default()
        };
        let g = generate(&import(&src).unwrap());
        let out = tempfile::tempdir().unwrap();
        for (n, text) in [
            ("esb.toml", &g.esb_toml),
            ("functions.yml", &g.functions_yml),
            ("routing.yml", &g.routing_yml),
        ] {
            std::fs::write(out.path().join(n), text).unwrap();
        }
        let lookup = |k: &str| (k == "ESB_PYTHON").then(|| "/py".to_string());
        let a = Config::load(&out.path().join("esb.toml"), &lookup).unwrap();
        let ov = TemplateOverrides {
            template: Some(src.path.clone()),
            ..TemplateOverrides::default()
        };
        let b = Config::load_with(None, &ov, &lookup).unwrap();
        assert_eq!(a.functions, b.functions);
        assert_eq!(a.routes, b.routes);
        assert_eq!(a.authorizers, b.authorizers);
        assert_eq!(a.authorizers.len(), 2);
        assert_eq!(a.routes.len(), 3);
        assert_eq!(a.api.binary_media_types, b.api.binary_media_types);
        assert_eq!(a.api.binary_media_types, ["image/png"]);
    }
}
