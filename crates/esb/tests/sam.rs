//! SAM templates through the real binary: `esb serve --template` and `esb generate` + `esb serve
//! --config` serve the same thing (tests/sam/template.yaml, the project's realistic template), and
//! `esb generate`'s refusals (existing files, unsupported properties).

mod support;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

use esb_config::{Config, TemplateOverrides};
use support::{Esb, Setup};

fn esb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_esb"))
}

fn template() -> PathBuf {
    esb_testkit::workspace_root().join("tests/sam/template.yaml")
}

fn setup() -> Setup {
    Setup::new("epoll").runtime(&format!(
        "rie_binary = {:?}",
        esb_testkit::cargo_bin("esb-rie", "esb-rie")
            .to_str()
            .unwrap()
    ))
}

/// `esb generate` of the realistic template into `out`: esb serves all of it (its TOKEN and
/// REQUEST Lambda authorizers included), so nothing needs `--skip-unsupported`.
fn generate(out: &Path) {
    let o = esb()
        .arg("generate")
        .arg("--template")
        .arg(template())
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The server sections of the esb.toml `Setup` writes, for the generated esb.toml (one folder
/// down).
fn server_sections(dir: &Path) -> String {
    let toml = std::fs::read_to_string(dir.join("esb.toml")).unwrap();
    let start = toml.find("[server]").unwrap();
    let end = toml.find("[limits]").unwrap();
    let runtime = &toml[toml.find("[runtime]").unwrap()..];
    let runtime = &runtime[..runtime.find("\n\n").unwrap_or(runtime.len())];
    format!("\n{}\n{runtime}\n", &toml[start..end])
        .replace("\"cert.pem\"", "\"../cert.pem\"")
        .replace("\"key.pem\"", "\"../key.pem\"")
}

/// The function behind `GET /public` answers; the table's other routes answer as configured
/// without starting anything.
fn smoke(esb: &Esb) {
    // No such route: API Gateway's 403.
    assert_eq!(esb.get("/nowhere", &[]).status, 403);
    // Cognito by default, the TOKEN authorizer's header missing: refused before any function.
    assert_eq!(esb.get("/echo", &[]).status, 401);
    let r = esb.request("POST", "/echo/x", &[], b"");
    assert_eq!(r.status, 401, "{}", r.text());
    // The REQUEST authorizer's identity source (X-Esb-Token) missing: refused before any function.
    let r = esb.get("/v2/echo", &[]);
    assert_eq!(r.status, 401, "{}", r.text());
    // handler.echo returns the event, which is no REST proxy response: the function ran and
    // esb answers as API Gateway does.
    let r = esb.get("/public", &[]);
    assert_eq!(r.status, 502, "{}\n{}", r.text(), esb.log());
    assert_eq!(r.json()["message"], "Internal server error");
    let pool = esb.admin_pool("py-echo");
    assert_eq!(pool["counters"]["cold_starts"], 1, "{pool:#}");
}

#[test]
fn serving_the_template_and_its_generated_files_is_the_same() {
    let python = esb_testkit::install::awslambdaric_python();
    let lookup = |k: &str| (k == "ESB_PYTHON").then(|| python.to_string_lossy().into_owned());
    let envs: [(&str, &OsStr); 1] = [("ESB_PYTHON", python.as_os_str())];

    let mut from_template = None;
    let a = Esb::start_prepared(&setup(), &envs, |dir| {
        let toml = dir.join("esb.toml");
        let ov = TemplateOverrides {
            template: Some(template()),
            ..TemplateOverrides::default()
        };
        from_template = Some(Config::load_with(Some(&toml), &ov, &lookup).unwrap());
        vec![
            "--config".into(),
            toml.into(),
            "--template".into(),
            template().into(),
        ]
    });
    smoke(&a);
    // The one warning: a Ref to a resource that exists only in AWS, printed at start.
    let warnings = &from_template.as_ref().unwrap().warnings;
    assert!(
        warnings.len() == 1 && warnings[0].contains("TABLE_NAME"),
        "{warnings:?}"
    );
    assert!(
        a.log().contains("TABLE_NAME"),
        "the importer's warnings are printed at start:\n{}",
        a.log()
    );

    let mut from_files = None;
    let b = Esb::start_prepared(&setup(), &envs, |dir| {
        let out = dir.join("gen");
        generate(&out);
        let toml = out.join("esb.toml");
        let mut text = std::fs::read_to_string(&toml).unwrap();
        text.push_str(&server_sections(dir));
        std::fs::write(&toml, text).unwrap();
        from_files = Some(Config::load(&toml, &lookup).unwrap());
        vec![OsString::from("--config"), toml.into()]
    });
    smoke(&b);

    let (t, f) = (from_template.unwrap(), from_files.unwrap());
    assert_eq!(t.routes, f.routes);
    assert_eq!(t.routes.len(), 9, "all of the template's routes");
    assert_eq!(t.functions, f.functions);
    assert_eq!(t.functions.len(), 5);
    assert_eq!(t.authorizers, f.authorizers);
    let mut kinds: Vec<String> = t
        .authorizers
        .iter()
        .map(|a| format!("{} {:?}", a.name, a.kind))
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["RequestAuth Request", "TokenAuth Token"]);
    assert_eq!(t.api.binary_media_types, f.api.binary_media_types);
    assert_eq!(t.api.binary_media_types, ["image/png"]);
}

#[test]
fn generate_refuses_to_overwrite_without_force() {
    let out = tempfile::tempdir().unwrap();
    generate(out.path());
    for f in [
        "functions.yml",
        "routing.yml",
        "esb.toml",
        "py-echo/Dockerfile",
        "rust-echo/Dockerfile",
    ] {
        assert!(out.path().join(f).is_file(), "{f}");
    }
    std::fs::write(out.path().join("routing.yml"), "mine").unwrap();
    let run = |force: bool| {
        let mut c = esb();
        c.arg("generate")
            .arg("--template")
            .arg(template())
            .arg("--out")
            .arg(out.path());
        if force {
            c.arg("--force");
        }
        c.output().unwrap()
    };
    let o = run(false);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("would overwrite") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("routing.yml")).unwrap(),
        "mine"
    );
    let o = run(true);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        std::fs::read_to_string(out.path().join("routing.yml"))
            .unwrap()
            .contains("/public")
    );
}

#[test]
fn an_unsupported_property_exits_2_naming_it_unless_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("template.yaml");
    std::fs::write(
        &t,
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: src\n      Handler: app.handler\n      Runtime: python3.12\n      Layers: [arn:aws:lambda:us-east-1:1:layer:x:1]\n      Events:\n        A: {Type: Api, Properties: {Path: /a, Method: get}}\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let run = |cmd: &str, skip: bool| {
        let mut c = esb();
        c.arg(cmd).arg("--template").arg(&t);
        if cmd == "generate" {
            c.arg("--out").arg(&out);
        } else {
            // A listener that cannot start: the template is read before anything listens.
            c.args(["--listen", "127.0.0.1:1"]);
        }
        if skip {
            c.arg("--skip-unsupported");
        }
        c.output().unwrap()
    };
    for cmd in ["generate", "serve"] {
        let o = run(cmd, false);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&o.stderr);
        let want = format!(
            "error: {}:9: Resources.Fn.Properties.Layers: not supported",
            t.display()
        );
        assert!(err.contains(&want), "{cmd}: {err}");
    }
    assert!(!out.exists(), "nothing written on refusal");
    let o = run("generate", true);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning:") && err.contains("Resources.Fn.Properties.Layers"),
        "{err}"
    );
    assert!(out.join("functions.yml").is_file());
}
