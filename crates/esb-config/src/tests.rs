//! Unit tests of config loading: defaults, relative paths, and file:line errors.

use std::path::Path;

use esb_model::{PayloadFormat, RouteAuth, RouteMethod, RuntimeSpec};

use super::*;

struct Dir(tempfile::TempDir);

impl Dir {
    fn new(files: &[(&str, &str)]) -> Self {
        let d = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(d.path().join(name), text).unwrap();
        }
        Dir(d)
    }

    fn load(&self) -> Result<Config, ConfigError> {
        let lookup = |k: &str| (k == "REGION").then(|| "ap-northeast-1".to_string());
        Config::load(&self.0.path().join("esb.toml"), &lookup)
    }
}

const ESB: &str = "routing = \"routing.yml\"\nfunctions = \"functions.yml\"\n";

const FUNCTIONS: &str = r#"
defaults:
  environment:
    AWS_DEFAULT_REGION: "${REGION}"
    LOG_LEVEL: "${LOG_LEVEL:-INFO}"
  scaling:
    idle_timeout: 300
    acquire_timeout: 5.0
    max_queue: 50
functions:
  echo:
    command: ["../bin/echo", "--flag"]
    timeout: 30
    environment:
      LOG_LEVEL: DEBUG
    scaling: { max_capacity: 2, min_capacity: 1, max_queue: 7 }
  legacy:
    image: "127.0.0.1:5010/esb-lambda-echo:latest"
    memory_size: 512
    events:
      - schedule: { rate: "rate(1 minute)", input: "{\"scheduled\": true}" }
      - schedule: { cron: "0 12 * * ? *", input: { a: 1 }, enabled: false }
  fixed:
    endpoint: "http://127.0.0.1:9000"
"#;

const ROUTING: &str = r#"
routes:
  - path: "/echo/{proxy+}"
    method: ANY
    function: echo
  - path: "/v2/echo/{proxy+}"
    method: get
    function: echo
    auth: none
    payload_format: "2.0"
  - path: "/legacy"
    method: POST
    target_container: legacy
    auth: api_key
  - path: ""
    method: ""
    function: legacy
"#;

#[test]
fn loads_a_full_config_with_defaults_merged() {
    let d = Dir::new(&[
        ("esb.toml", ESB),
        ("functions.yml", FUNCTIONS),
        ("routing.yml", ROUTING),
    ]);
    let c = d.load().unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8443");
    assert_eq!(c.auth.api_key, DEV_API_KEY);

    let echo = c.function("echo").unwrap();
    assert_eq!(echo.timeout, Duration::from_secs(30));
    assert_eq!(echo.environment["LOG_LEVEL"], "DEBUG");
    assert_eq!(echo.environment["AWS_DEFAULT_REGION"], "ap-northeast-1");
    assert_eq!(echo.scaling.max_capacity, 2);
    assert_eq!(echo.scaling.min_capacity, 1);
    assert_eq!(echo.scaling.acquire_timeout, Duration::from_secs(5));
    assert_eq!(echo.scaling.max_queue, 7);
    assert_eq!(c.asynchronous.retry_delays(), None, "Lambda's defaults");
    assert_eq!(c.function("legacy").unwrap().scaling.max_queue, 50);
    assert_eq!(
        c.function("fixed").unwrap().scaling.max_queue,
        50,
        "defaults apply to every function"
    );
    match &echo.runtime {
        RuntimeSpec::Process { command, .. } => {
            assert!(
                Path::new(&command[0]).starts_with(d.0.path()),
                "{command:?}"
            );
            assert!(command[0].ends_with("bin/echo"));
            assert_eq!(command[1], "--flag");
        }
        other => panic!("{other:?}"),
    }

    let legacy = c.function("legacy").unwrap();
    assert_eq!(
        legacy.timeout,
        Duration::from_secs(3),
        "Lambda's default timeout"
    );
    assert_eq!(legacy.environment["LOG_LEVEL"], "INFO");
    assert!(matches!(legacy.runtime, RuntimeSpec::Docker { .. }));
    assert_eq!(legacy.schedules.len(), 2);
    assert_eq!(legacy.schedules[0].expression, "rate(1 minute)");
    assert_eq!(
        legacy.schedules[0].input.as_deref(),
        Some("{\"scheduled\": true}")
    );
    assert_eq!(legacy.schedules[1].expression, "cron(0 12 * * ? *)");
    assert_eq!(legacy.schedules[1].input.as_deref(), Some("{\"a\":1}"));
    assert!(!legacy.schedules[1].enabled);

    assert!(
        matches!(c.function("fixed").unwrap().runtime, RuntimeSpec::Endpoint { addr } if addr.port() == 9000)
    );

    assert_eq!(
        c.routes.len(),
        3,
        "the empty schedule-only route is skipped"
    );
    assert_eq!(c.routes[0].method, RouteMethod::Any);
    assert_eq!(c.routes[0].auth, RouteAuth::Cognito);
    assert_eq!(c.routes[0].payload_format, PayloadFormat::V1);
    assert_eq!(c.routes[1].method, RouteMethod::Only("GET".into()));
    assert_eq!(c.routes[1].auth, RouteAuth::None);
    assert_eq!(c.routes[1].payload_format, PayloadFormat::V2);
    assert_eq!(c.routes[2].auth, RouteAuth::ApiKey);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

fn check_err(files: &[(&str, &str)], file: &str, line: Option<usize>, reason_part: &str) {
    let d = Dir::new(files);
    let e = d.load().expect_err("config should be rejected");
    assert!(e.file.ends_with(file), "file {:?} in {e}", e.file);
    assert_eq!(e.line, line, "line in {e}");
    assert!(
        e.reason.contains(reason_part),
        "reason {:?} lacks {reason_part:?}",
        e.reason
    );
}

#[test]
fn errors_name_file_line_and_reason() {
    check_err(
        &[(
            "esb.toml",
            "[server]\nlisten = \"127.0.0.1:1\"\nbogus = 1\n",
        )],
        "esb.toml",
        Some(3),
        "unknown field `bogus`",
    );
    check_err(
        &[("esb.toml", "[server]\nlisten = \"nope\"\n")],
        "esb.toml",
        Some(2),
        "",
    );
    check_err(
        &[
            ("esb.toml", ESB),
            ("routing.yml", ROUTING),
            (
                "functions.yml",
                "functions:\n  echo:\n    command: x\n    timout: 3\n",
            ),
        ],
        "functions.yml",
        Some(4),
        "unknown field `timout`",
    );
    check_err(
        &[
            ("esb.toml", ESB),
            ("functions.yml", FUNCTIONS),
            (
                "routing.yml",
                "routes:\n  - path: /a\n    method: GET\n    function: nope\n",
            ),
        ],
        "routing.yml",
        Some(4),
        "unknown function \"nope\"",
    );
    check_err(
        &[
            ("esb.toml", ESB),
            ("functions.yml", FUNCTIONS),
            (
                "routing.yml",
                "routes:\n  - path: /a\n    method: FETCH\n    function: echo\n",
            ),
        ],
        "routing.yml",
        Some(2),
        "unknown method",
    );
    check_err(
        &[
            ("esb.toml", ESB),
            ("routing.yml", ROUTING),
            (
                "functions.yml",
                "functions:\n  echo:\n    command: x\n    scaling: { max_capacity: 1, min_capacity: 2 }\n",
            ),
        ],
        "functions.yml",
        Some(2),
        "min_capacity (2) is above max_capacity (1)",
    );
    for (delays, reason) in [
        (
            "[60, 120, 240]",
            "has 3 entries; Lambda retries at most twice",
        ),
        ("[-1]", "-1 is not between 0 and 86400 seconds"),
    ] {
        check_err(
            &[
                (
                    "esb.toml",
                    &format!("{ESB}\n[async]\nretry_delays_secs = {delays}\n"),
                ),
                ("functions.yml", FUNCTIONS),
                ("routing.yml", ROUTING),
            ],
            "esb.toml",
            Some(5),
            reason,
        );
    }
    check_err(
        &[("esb.toml", "functions = \"missing.yml\"\n")],
        "missing.yml",
        None,
        "cannot read",
    );
    check_err(
        &[("esb.toml", "[auth]\nalgorithm = \"HS256\"\n")],
        "esb.toml",
        Some(2),
        "hs256_secret",
    );
    check_err(
        &[(
            "esb.toml",
            "[[auth.users]]\nusername = \"demo\"\npassword_hash = \"plain\"\n",
        )],
        "esb.toml",
        Some(2),
        "argon2",
    );
}

#[test]
fn unset_variables_are_warnings_not_errors() {
    let d = Dir::new(&[
        ("esb.toml", "functions = \"functions.yml\"\n"),
        (
            "functions.yml",
            "functions:\n  f:\n    command: x\n    environment: { K: \"${NOPE}\" }\n",
        ),
    ]);
    let c = d.load().unwrap();
    assert_eq!(c.function("f").unwrap().environment["K"], "");
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains("${NOPE}"));
}

#[test]
fn the_shipped_example_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/esb.toml");
    let c = Config::load(&path, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.function("echo").is_some());
    assert!(!c.routes.is_empty());
    assert_eq!(c.auth.users[0].username, "demo");
}

#[test]
fn invoke_auth_defaults_to_none_and_sigv4_needs_credentials() {
    let c = Dir::new(&[("esb.toml", "")]).load().unwrap();
    assert_eq!(c.invoke.auth, InvokeAuth::None);
    assert!(c.invoke.credentials.is_empty());

    let toml = "[invoke]\nauth = \"sigv4\"\ncredentials = [{ access_key_id = \"AKID\", secret_access_key = \"s3cret\" }]\n";
    let c = Dir::new(&[("esb.toml", toml)]).load().unwrap();
    assert_eq!(c.invoke.auth, InvokeAuth::Sigv4);
    assert_eq!(c.invoke.credentials[0].access_key_id, "AKID");
    assert!(
        !format!("{:?}", c.invoke).contains("s3cret"),
        "secrets stay out of logs"
    );

    check_err(
        &[("esb.toml", "[invoke]\nauth = \"sigv4\"\n")],
        "esb.toml",
        Some(1),
        "needs at least one entry in invoke.credentials",
    );
    check_err(
        &[("esb.toml", "[invoke]\nauth = \"iam\"\n")],
        "esb.toml",
        Some(2),
        "unknown variant `iam`",
    );
    check_err(
        &[("esb.toml", "[invoke]\nauth = \"none\"\nkeys = []\n")],
        "esb.toml",
        Some(3),
        "unknown field `keys`",
    );
    let dup = "[invoke]\nauth = \"sigv4\"\ncredentials = [\n  { access_key_id = \"A\", secret_access_key = \"x\" },\n  { access_key_id = \"A\", secret_access_key = \"y\" },\n]\n";
    check_err(&[("esb.toml", dup)], "esb.toml", Some(4), "appears twice");
}

#[test]
fn authorizers_are_declared_in_esb_toml_and_routes_may_use_them() {
    let esb = format!(
        "{ESB}\n[[authorizers]]\nname = \"tokens\"\nfunction = \"fixed\"\nvalidation_expression = \"allow-.*\"\nttl_secs = 60\n"
    );
    let routing = "routes:\n  - path: /a\n    method: GET\n    function: echo\n    auth: { authorizer: tokens }\n";
    let d = Dir::new(&[
        ("esb.toml", &esb),
        ("functions.yml", FUNCTIONS),
        ("routing.yml", routing),
    ]);
    let c = d.load().unwrap();
    assert_eq!(c.routes[0].auth, RouteAuth::Authorizer("tokens".into()));
    let a = &c.authorizers[0];
    assert_eq!(a.function.as_str(), "fixed");
    assert_eq!(a.kind, esb_model::AuthorizerKind::Token);
    assert_eq!(
        a.identity_sources,
        vec![esb_model::IdentitySource::Header("Authorization".into())]
    );
    assert_eq!(a.ttl, Duration::from_secs(60));
    assert_eq!(a.validation_expression.as_deref(), Some("allow-.*"));

    // Undefined names are still refused with file:line.
    let other = "routes:\n  - path: /a\n    method: GET\n    function: echo\n    auth: { authorizer: other }\n";
    check_err(
        &[
            ("esb.toml", &esb),
            ("functions.yml", FUNCTIONS),
            ("routing.yml", other),
        ],
        "routing.yml",
        Some(5),
        "unknown authorizer \"other\"",
    );
    let bad_fn = format!("{ESB}\n[[authorizers]]\nname = \"t\"\nfunction = \"ghost\"\n");
    check_err(
        &[("esb.toml", &bad_fn), ("functions.yml", FUNCTIONS)],
        "esb.toml",
        Some(5),
        "unknown function \"ghost\"",
    );
    let long =
        format!("{ESB}\n[[authorizers]]\nname = \"t\"\nfunction = \"fixed\"\nttl_secs = 7200\n");
    check_err(
        &[("esb.toml", &long), ("functions.yml", FUNCTIONS)],
        "esb.toml",
        Some(5),
        "at most 3600",
    );
}

#[test]
fn request_authorizers_take_header_query_and_context_sources() {
    let esb = format!(
        "{ESB}\n[[authorizers]]\nname = \"tenants\"\nfunction = \"fixed\"\ntype = \"REQUEST\"\nidentity_sources = [\"$request.header.X-Tenant\", \"method.request.querystring.region\", \"context.routeKey\"]\npayload_format = \"2.0\"\nsimple_responses = true\n"
    );
    let c = Dir::new(&[
        ("esb.toml", &esb),
        ("functions.yml", FUNCTIONS),
        ("routing.yml", "routes: []\n"),
    ])
    .load()
    .unwrap();
    let a = &c.authorizers[0];
    assert_eq!(a.kind, esb_model::AuthorizerKind::Request);
    assert_eq!(
        a.identity_sources,
        vec![
            esb_model::IdentitySource::Header("X-Tenant".into()),
            esb_model::IdentitySource::QueryString("region".into()),
            esb_model::IdentitySource::Context("routeKey".into()),
        ]
    );
    assert!(a.simple_responses);
    assert_eq!(a.ttl, Duration::from_secs(300));

    let uncached = format!(
        "{ESB}\n[[authorizers]]\nname = \"r\"\nfunction = \"fixed\"\ntype = \"REQUEST\"\nttl_secs = 0\n"
    );
    let c = Dir::new(&[
        ("esb.toml", &uncached),
        ("functions.yml", FUNCTIONS),
        ("routing.yml", "routes: []\n"),
    ])
    .load()
    .unwrap();
    assert!(c.authorizers[0].identity_sources.is_empty());

    for (extra, why) in [
        ("", "needs identity_sources"),
        (
            "identity_sources = [\"method.request.header.A\"]\nvalidation_expression = \"x\"\n",
            "TOKEN authorizers only",
        ),
        (
            "identity_sources = [\"stageVariables.A\"]\n",
            "no stage variables",
        ),
        (
            "identity_sources = [\"context.identity.sourceIp\"]\n",
            "not one of context.httpMethod",
        ),
    ] {
        let esb = format!(
            "{ESB}\n[[authorizers]]\nname = \"r\"\nfunction = \"fixed\"\ntype = \"REQUEST\"\n{extra}"
        );
        check_err(
            &[("esb.toml", &esb), ("functions.yml", FUNCTIONS)],
            "esb.toml",
            Some(5),
            why,
        );
    }
}

#[test]
fn docker_section_defaults_paths_and_errors() {
    let c = Dir::new(&[("esb.toml", "")]).load().unwrap();
    assert_eq!(c.docker, DockerConfig::default());
    assert_eq!((c.docker.cpus, c.docker.pids_limit), (1.0, 1024));
    assert!(!c.docker.keep_on_shutdown);

    let toml = "[docker]\nsocket = \"/run/user/1000/docker.sock\"\nnetwork = \"esb-fn\"\npreload_dir = \"images\"\nkeep_on_shutdown = true\nrie_binary_static = \"bin/esb-rie\"\nowner = \"edge-1\"\ncpus = 0.5\npids_limit = 64\n";
    let d = Dir::new(&[("esb.toml", toml)]);
    let c = d.load().unwrap();
    let base = d.0.path();
    assert_eq!(
        c.docker,
        DockerConfig {
            socket: Some("unix:///run/user/1000/docker.sock".into()),
            network: Some("esb-fn".into()),
            preload_dir: Some(base.join("images")),
            keep_on_shutdown: true,
            rie_binary_static: Some(base.join("bin/esb-rie")),
            owner: Some("edge-1".into()),
            cpus: 0.5,
            pids_limit: 64,
        }
    );
    let c = Dir::new(&[("esb.toml", "[docker]\nsocket = \"tcp://10.0.0.1:2375\"\n")])
        .load()
        .unwrap();
    assert_eq!(c.docker.socket.as_deref(), Some("tcp://10.0.0.1:2375"));

    check_err(
        &[("esb.toml", "[docker]\nsocket = \"docker.sock\"\n")],
        "esb.toml",
        Some(2),
        "docker.socket",
    );
    check_err(
        &[("esb.toml", "[docker]\ncpus = -1\n")],
        "esb.toml",
        Some(2),
        "docker.cpus",
    );
    check_err(
        &[("esb.toml", "[docker]\npids_limit = 0\n")],
        "esb.toml",
        Some(2),
        "docker.pids_limit",
    );
    check_err(
        &[("esb.toml", "[docker]\nowner = \"a b\"\n")],
        "esb.toml",
        Some(2),
        "docker.owner",
    );
    check_err(
        &[("esb.toml", "[docker]\nimage_pull = true\n")],
        "esb.toml",
        Some(2),
        "unknown field `image_pull`",
    );
}

#[test]
fn async_queue_dir_defaults_to_unset_and_resolves_against_the_file() {
    let c = Dir::new(&[("esb.toml", "")]).load().unwrap();
    assert_eq!(c.asynchronous.queue_dir, None);
    let c = Dir::new(&[("esb.toml", "[async]\nqueue_dir = \"q\"\n")])
        .load()
        .unwrap();
    assert_eq!(c.asynchronous.queue_dir, Some(c.base_dir.join("q")));
    check_err(
        &[("esb.toml", "[async]\nqueue = \"q\"\n")],
        "esb.toml",
        Some(2),
        "unknown field `queue`",
    );
}
