//! esb's own realistic template (`tests/sam/template.yaml`) imported with exact expectations, and
//! its generated files loaded back through esb-config.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use esb_model::{
    AuthorizerKind, AuthorizerSpec, CorsPolicy, FunctionName, FunctionSpec, IdentitySource,
    PayloadFormat, RouteAuth, RouteMethod, RouteSpec, RuntimeSpec, ScalingSpec, ScheduleSpec,
};
use esb_sam::{ApiInfo, ApiKind, CognitoAuthorizer, ImportOptions, Imported, import_file};

fn repo() -> PathBuf {
    // Lexically, like the importer, so paths compare equal.
    let p = Path::new(env!("CARGO_MANIFEST_DIR"));
    p.parent().and_then(Path::parent).unwrap().to_path_buf()
}

fn import(opts: &ImportOptions) -> Imported {
    import_file(&repo().join("tests/sam/template.yaml"), opts).unwrap()
}

fn env(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn python(name: &str, handler: &str, timeout: u64, extra_env: &[(&str, &str)]) -> FunctionSpec {
    let mut e = env(&[("LOG_LEVEL", "INFO"), ("STAGE", "dev")]);
    e.extend(env(extra_env));
    FunctionSpec {
        name: FunctionName::new(name),
        runtime: RuntimeSpec::Process {
            command: vec![
                "python3".into(),
                "-m".into(),
                "awslambdaric".into(),
                handler.into(),
            ],
            working_dir: Some(repo().join("tests/functions/python")),
        },
        timeout: Duration::from_secs(timeout),
        memory_size: 256,
        environment: e,
        scaling: ScalingSpec::default(),
        schedules: Vec::new(),
    }
}

fn route(method: &str, path: &str, function: &str, auth: RouteAuth, v: PayloadFormat) -> RouteSpec {
    RouteSpec {
        method: if method == "ANY" {
            RouteMethod::Any
        } else {
            RouteMethod::Only(method.into())
        },
        path: path.into(),
        function: FunctionName::new(function),
        auth,
        payload_format: v,
    }
}

#[test]
fn the_realistic_template_imports_exactly() {
    let i = import(&ImportOptions::default());
    use PayloadFormat::{V1, V2};

    let authorizer = python("AuthorizerFunction", "handler.echo", 10, &[]);
    let mut echo = python(
        "py-echo",
        "handler.echo",
        10,
        &[("GREETING", "hello from us-east-1")],
    );
    echo.scaling.max_capacity = 4;
    let error = python("py-error", "handler.error", 10, &[]);
    let mut sleep = python("py-sleep", "handler.sleep", 5, &[]);
    // Events come in event-id order (Frequent, Nightly), as everything read from a mapping.
    sleep.schedules = vec![
        ScheduleSpec {
            expression: "rate(5 minutes)".into(),
            input: None,
            enabled: false,
        },
        ScheduleSpec {
            expression: "cron(0 3 * * ? *)".into(),
            input: Some(r#"{"sleep_ms": 10}"#.into()),
            enabled: true,
        },
    ];
    let rust_dir = repo().join("target/lambda/echo");
    let rust = FunctionSpec {
        name: FunctionName::new("rust-echo"),
        runtime: RuntimeSpec::Process {
            command: vec![rust_dir.join("bootstrap").to_string_lossy().into_owned()],
            working_dir: Some(rust_dir),
        },
        timeout: Duration::from_secs(10),
        memory_size: 128,
        environment: env(&[("LOG_LEVEL", "INFO"), ("STAGE", "dev")]),
        scaling: ScalingSpec {
            min_capacity: 1,
            ..ScalingSpec::default()
        },
        schedules: Vec::new(),
    };
    assert_eq!(i.functions, [authorizer, echo, error, sleep, rust]);

    assert_eq!(
        i.routes,
        [
            route("GET", "/echo", "py-echo", RouteAuth::Cognito, V1),
            route(
                "GET",
                "/v2/echo",
                "py-echo",
                RouteAuth::Authorizer("RequestAuth".into()),
                V2
            ),
            route("ANY", "/v2/open", "py-echo", RouteAuth::None, V1),
            route("GET", "/keyed", "py-echo", RouteAuth::ApiKey, V1),
            route(
                "POST",
                "/echo/{proxy+}",
                "py-echo",
                RouteAuth::Authorizer("TokenAuth".into()),
                V1
            ),
            route("GET", "/public", "py-echo", RouteAuth::None, V1),
            route("GET", "/error", "py-error", RouteAuth::None, V1),
            route("GET", "/v2/rust/{id}", "rust-echo", RouteAuth::None, V2),
            route("GET", "/rust/{id}", "rust-echo", RouteAuth::Cognito, V1),
        ]
    );

    assert_eq!(
        i.authorizers,
        [
            AuthorizerSpec {
                name: "RequestAuth".into(),
                function: FunctionName::new("AuthorizerFunction"),
                kind: AuthorizerKind::Request,
                identity_sources: vec![IdentitySource::Header("X-Esb-Token".into())],
                validation_expression: None,
                ttl: Duration::ZERO,
                payload_format: V2,
                simple_responses: true,
            },
            AuthorizerSpec {
                name: "TokenAuth".into(),
                function: FunctionName::new("AuthorizerFunction"),
                kind: AuthorizerKind::Token,
                identity_sources: vec![IdentitySource::Header("X-Esb-Token".into())],
                validation_expression: Some("^allow-.+$".into()),
                ttl: Duration::from_secs(60),
                payload_format: V1,
                simple_responses: false,
            },
        ]
    );

    assert_eq!(
        i.apis,
        [
            ApiInfo {
                logical_id: "HttpApi".into(),
                kind: ApiKind::Http,
                stage: "$default".into(),
                cors: Some(CorsPolicy {
                    allow_origins: vec!["*".into()],
                    allow_methods: vec!["GET".into(), "POST".into()],
                    ..CorsPolicy::default()
                }),
                binary_media_types: vec![],
                token_authorizers: vec![],
                routes: vec![1, 2, 7],
            },
            ApiInfo {
                logical_id: "RestApi".into(),
                kind: ApiKind::Rest,
                stage: "dev".into(),
                cors: Some(CorsPolicy {
                    allow_origins: vec!["https://app.example.com".into()],
                    allow_headers: vec!["Content-Type".into(), "Authorization".into()],
                    max_age: Some(600),
                    ..CorsPolicy::default()
                }),
                binary_media_types: vec!["image/png".into()],
                token_authorizers: vec![CognitoAuthorizer {
                    name: "CognitoAuth".into(),
                    header: "Authorization".into(),
                    issuer: None,
                }],
                routes: vec![0, 3, 4, 5, 6, 8],
            },
        ]
    );
    assert_eq!(i.binary_media_types, ["image/png"]);
    assert_eq!(
        i.warnings,
        [
            "Resources.PythonEcho.Properties.Environment.Variables.TABLE_NAME: cannot be resolved \
          locally (Ref to Table (AWS::DynamoDB::Table) names a resource that exists only in AWS); left out"
        ]
    );
    assert_eq!(
        i.notes,
        [
            "ProdOnly: condition IsProd is false; left out",
            "Table: AWS::DynamoDB::Table is not the gateway's business; ignored",
            "UserPool: AWS::Cognito::UserPool is not the gateway's business; ignored",
        ]
    );
}

#[test]
fn parameter_overrides_change_the_result() {
    let opts = ImportOptions {
        parameter_overrides: [("Stage".to_string(), "prod".to_string())].into(),
        ..ImportOptions::default()
    };
    let i = import(&opts);
    assert_eq!(i.functions.len(), 6, "ProdOnly is in");
    let sleep = i.function("py-sleep").unwrap();
    assert_eq!(sleep.memory_size, 1024);
    assert!(
        sleep.schedules[0].enabled,
        "State: !If [IsProd, ENABLED, DISABLED]"
    );
    assert_eq!(i.apis[1].stage, "prod");
}

#[test]
fn generated_files_load_back_through_esb_config() {
    let i = import(&ImportOptions::default());
    // esb-config cannot declare Lambda authorizers yet, so routes using them are refused by name.
    let dir = tempfile::tempdir().unwrap();
    let err = common::load_generated(dir.path(), &esb_sam::generate(&i)).unwrap_err();
    assert!(err.contains("unknown authorizer \"RequestAuth\""), "{err}");

    let mut without = i.clone();
    without
        .routes
        .retain(|r| !matches!(r.auth, RouteAuth::Authorizer(_)));
    assert_eq!(without.routes.len(), 7);
    common::assert_round_trip(&without, "tests/sam/template.yaml");
}

#[test]
fn generated_dockerfiles() {
    let g = esb_sam::generate(&import(&ImportOptions::default()));
    let names: Vec<&str> = g.dockerfiles.iter().map(|d| d.function.as_str()).collect();
    assert_eq!(
        names,
        [
            "AuthorizerFunction",
            "py-echo",
            "py-error",
            "py-sleep",
            "rust-echo"
        ]
    );
    let py = &g.dockerfiles[1];
    assert_eq!(py.context, repo().join("tests/functions/python"));
    assert_eq!(py.image, "esb-py-echo:latest");
    assert!(
        py.text
            .contains("\nFROM public.ecr.aws/lambda/python:3.12\nCOPY . ${LAMBDA_TASK_ROOT}/\n"),
        "{}",
        py.text
    );
    assert!(py.text.ends_with("CMD [\"handler.echo\"]\n"), "{}", py.text);
    let rs = &g.dockerfiles[4];
    assert_eq!(rs.context, repo().join("target/lambda/echo"));
    assert!(
        rs.text
            .contains("\nFROM public.ecr.aws/lambda/provided:al2023\n"),
        "{}",
        rs.text
    );
    assert!(
        rs.text
            .contains("COPY bootstrap ${LAMBDA_RUNTIME_DIR}/bootstrap\n"),
        "{}",
        rs.text
    );
}
