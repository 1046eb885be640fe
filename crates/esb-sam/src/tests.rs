//! Unit tests of the import: SAM properties → esb specs, one small template per rule.

use std::path::PathBuf;
use std::time::Duration;

use esb_model::{
    AuthorizerKind, CorsPolicy, IdentitySource, PayloadFormat, RieSource, RouteAuth, RouteMethod,
    RuntimeSpec, ScheduleSpec,
};

use crate::*;

const HEAD: &str = "AWSTemplateFormatVersion: 2010-09-09\nTransform: AWS::Serverless-2016-10-31\n";

fn opts() -> ImportOptions {
    ImportOptions {
        base_dir: Some(PathBuf::from("/tpl")),
        ..ImportOptions::default()
    }
}

fn import(body: &str, o: &ImportOptions) -> Result<Imported, SamError> {
    import_text(&format!("{HEAD}{body}"), o)
}

/// Imports `body` and hands the result to `f`; panics with the error otherwise.
fn check(body: &str, f: impl FnOnce(&Imported)) {
    match import(body, &opts()) {
        Ok(i) => f(&i),
        Err(e) => panic!("import failed: {e}\n{body}"),
    }
}

/// Imports `body` expecting a refusal whose message contains every needle.
fn refused(body: &str, needles: &[&str]) -> SamError {
    match import(body, &opts()) {
        Ok(i) => panic!("expected a refusal containing {needles:?}, got {i:#?}"),
        Err(e) => {
            let msg = e.to_string();
            for n in needles {
                assert!(msg.contains(n), "{msg:?} lacks {n:?}");
            }
            e
        }
    }
}

const PY: &str = "Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: src/\n      Handler: app.handler\n      Runtime: python3.12\n";

fn py(extra: &str) -> String {
    format!("Resources:\n  Fn:\n    {PY}{extra}")
}

#[test]
fn python_zip_runs_as_a_process_in_its_code_folder() {
    check(&py(""), |i| {
        let f = &i.functions[0];
        assert_eq!(f.name.as_str(), "Fn");
        assert_eq!(
            f.runtime,
            RuntimeSpec::Process {
                command: vec![
                    "python3".into(),
                    "-m".into(),
                    "awslambdaric".into(),
                    "app.handler".into()
                ],
                working_dir: Some(PathBuf::from("/tpl/src")),
            }
        );
        assert_eq!(f.timeout, Duration::from_secs(3));
        assert_eq!(f.memory_size, 128);
        assert_eq!(f.scaling, esb_model::ScalingSpec::default());
        assert!(i.routes.is_empty() && i.apis.is_empty());
    });
}

#[test]
fn provided_runtimes_run_the_bootstrap() {
    for rt in ["provided.al2", "provided.al2023"] {
        let t = format!(
            "Resources:\n  Rs:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: ../target/lambda/rs\n      Handler: bootstrap\n      Runtime: {rt}\n"
        );
        check(&t, |i| {
            assert_eq!(
                i.functions[0].runtime,
                RuntimeSpec::Process {
                    command: vec!["/target/lambda/rs/bootstrap".into()],
                    working_dir: Some(PathBuf::from("/target/lambda/rs")),
                }
            );
        });
    }
}

#[test]
fn other_zip_runtimes_and_remote_code_are_refused_naming_the_property() {
    refused(
        &py("      Runtime: nodejs20.x\n").replace("      Runtime: python3.12\n", ""),
        &["Resources.Fn.Properties.Runtime", "nodejs20.x"],
    );
    refused(
        &py("").replace("CodeUri: src/", "CodeUri: s3://bucket/code.zip"),
        &["Resources.Fn.Properties.CodeUri", "S3"],
    );
    refused(
        &py("").replace("CodeUri: src/", "CodeUri: {Bucket: b, Key: k}"),
        &["Resources.Fn.Properties.CodeUri"],
    );
    refused(
        &py("").replace("CodeUri: src/", "InlineCode: 'def h(e, c): pass'"),
        &["Resources.Fn.Properties.InlineCode"],
    );
    let e = refused(
        &py("      Layers: [arn:aws:lambda:x:1:layer:l:1]\n"),
        &["Layers"],
    );
    assert_eq!(e.at(), Some("Resources.Fn.Properties.Layers"));
    assert_eq!(e.kind(), "unsupported");
    refused(
        &py("      Frobnicate: 1\n"),
        &["Resources.Fn.Properties.Frobnicate"],
    );
}

#[test]
fn skip_unsupported_turns_refusals_into_warnings() {
    let o = ImportOptions {
        skip_unsupported: true,
        ..opts()
    };
    // A property esb cannot honour is ignored...
    let i = import(&py("      Layers: [arn:aws:lambda:x:1:layer:l:1]\n"), &o).unwrap();
    assert_eq!(i.functions.len(), 1);
    assert!(
        i.warnings[0].contains("Resources.Fn.Properties.Layers"),
        "{:?}",
        i.warnings
    );
    // ...a function that cannot run is left out, with its routes.
    let t = format!(
        "{}  Node:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: s3://b/k\n      Handler: i.h\n      Runtime: nodejs20.x\n      Events:\n        Get: {{Type: Api, Properties: {{Path: /n, Method: get}}}}\n",
        py("      Events:\n        Get: {Type: Api, Properties: {Path: /p, Method: get}}\n")
    );
    let i = import(&t, &o).unwrap();
    assert_eq!(i.functions.len(), 1);
    assert_eq!(i.routes.len(), 1);
    assert_eq!(i.routes[0].path, "/p");
    assert!(
        i.warnings
            .iter()
            .any(|w| w.contains("Resources.Node.Properties.CodeUri")),
        "{:?}",
        i.warnings
    );
    // Unknown event types are left out, the function stays.
    let i = import(
        &py("      Events:\n        Q: {Type: SQS, Properties: {Queue: arn}}\n"),
        &o,
    )
    .unwrap();
    assert_eq!(i.functions.len(), 1);
    assert!(i.warnings[0].contains("Resources.Fn.Properties.Events.Q"));
    refused(
        &py("      Events:\n        Q: {Type: SQS, Properties: {Queue: arn}}\n"),
        &["Resources.Fn.Properties.Events.Q", "SQS"],
    );
}

#[test]
fn memory_timeout_environment_and_concurrency() {
    let extra = "      MemorySize: 512\n      Timeout: 30\n      ReservedConcurrentExecutions: 4\n      ProvisionedConcurrencyConfig: {ProvisionedConcurrentExecutions: 2}\n      AutoPublishAlias: live\n      Environment:\n        Variables:\n          A: x\n          N: 5\n          B: true\n          REGION: !Ref AWS::Region\n          TABLE: !Ref Table\n  Table:\n    Type: AWS::DynamoDB::Table\n";
    check(&py(extra), |i| {
        let f = &i.functions[0];
        assert_eq!(f.memory_size, 512);
        assert_eq!(f.timeout, Duration::from_secs(30));
        assert_eq!(f.scaling.max_capacity, 4);
        assert_eq!(f.scaling.min_capacity, 2);
        let env: Vec<(&str, &str)> = f
            .environment
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            env,
            [
                ("A", "x"),
                ("B", "true"),
                ("N", "5"),
                ("REGION", "us-east-1")
            ]
        );
        assert_eq!(i.warnings.len(), 1, "{:?}", i.warnings);
        assert!(i.warnings[0].starts_with(
            "Resources.Fn.Properties.Environment.Variables.TABLE: cannot be resolved locally"
        ));
        assert_eq!(
            i.notes,
            ["Table: AWS::DynamoDB::Table is not the gateway's business; ignored"]
        );
    });
    // Provisioned above the default cap raises the cap; above a reservation is an error.
    check(
        &py("      ProvisionedConcurrencyConfig: {ProvisionedConcurrentExecutions: 20}\n"),
        |i| {
            assert_eq!(
                (
                    i.functions[0].scaling.min_capacity,
                    i.functions[0].scaling.max_capacity
                ),
                (20, 20)
            );
        },
    );
    refused(
        &py(
            "      ReservedConcurrentExecutions: 2\n      ProvisionedConcurrencyConfig: {ProvisionedConcurrentExecutions: 3}\n",
        ),
        &["ProvisionedConcurrencyConfig"],
    );
    refused(
        &py("      ReservedConcurrentExecutions: 0\n"),
        &["ReservedConcurrentExecutions"],
    );
    refused(
        &py("      Timeout: 901\n"),
        &["Resources.Fn.Properties.Timeout"],
    );
    refused(
        &py("      MemorySize: 64\n"),
        &["Resources.Fn.Properties.MemorySize"],
    );
    refused(
        &py("      Timeout: soon\n"),
        &["Resources.Fn.Properties.Timeout", "whole number"],
    );
}

#[test]
fn globals_merge_with_sam_rules() {
    let t = format!(
        "Globals:\n  Function:\n    Timeout: 30\n    MemorySize: 256\n    Runtime: python3.11\n    Environment:\n      Variables: {{A: global, B: global}}\n{}",
        py("      MemorySize: 1024\n      Environment:\n        Variables: {B: local, C: local}\n")
    );
    check(&t, |i| {
        let f = &i.functions[0];
        assert_eq!(f.timeout, Duration::from_secs(30));
        assert_eq!(f.memory_size, 1024);
        let env: Vec<(&str, &str)> = f
            .environment
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(env, [("A", "global"), ("B", "local"), ("C", "local")]);
        match &i.sources[0].code {
            FunctionCode::Zip { runtime, .. } => assert_eq!(runtime, "python3.12"),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn image_functions_run_on_docker() {
    let t = "Resources:\n  Img:\n    Type: AWS::Serverless::Function\n    Properties:\n      PackageType: Image\n      ImageUri: !Sub '${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/app:1'\n      ImageConfig:\n        Command: [app.handler]\n        EntryPoint: [/lambda-entrypoint.sh]\n        WorkingDirectory: /var/task\n";
    check(t, |i| {
        assert_eq!(
            i.functions[0].runtime,
            RuntimeSpec::Docker {
                image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1".into(),
                rie: RieSource::Injected
            }
        );
        match &i.sources[0].code {
            FunctionCode::Image { config, .. } => assert_eq!(
                *config,
                ImageConfig {
                    entry_point: Some(vec!["/lambda-entrypoint.sh".into()]),
                    command: Some(vec!["app.handler".into()]),
                    working_directory: Some("/var/task".into()),
                }
            ),
            other => panic!("{other:?}"),
        }
        assert!(i.warnings[0].contains("ImageConfig"));
    });
    // `sam build` metadata wins over ImageUri.
    let t = "Resources:\n  MyImg:\n    Type: AWS::Serverless::Function\n    Properties:\n      PackageType: Image\n      ImageUri: ignored:1\n    Metadata:\n      DockerTag: v2\n      DockerContext: ./app\n      Dockerfile: Dockerfile\n";
    check(t, |i| {
        assert_eq!(
            i.functions[0].runtime,
            RuntimeSpec::Docker {
                image: "myimg:v2".into(),
                rie: RieSource::Injected
            }
        );
        match &i.sources[0].code {
            FunctionCode::Image {
                docker_context,
                dockerfile,
                ..
            } => {
                assert_eq!(
                    docker_context.as_deref(),
                    Some(std::path::Path::new("/tpl/app"))
                );
                assert_eq!(dockerfile.as_deref(), Some("Dockerfile"));
            }
            other => panic!("{other:?}"),
        }
    });
    refused(
        "Resources:\n  Img:\n    Type: AWS::Serverless::Function\n    Properties:\n      PackageType: Image\n",
        &["Resources.Img.Properties.ImageUri"],
    );
}

#[test]
fn function_name_is_used_when_it_is_a_plain_name() {
    check(&py("      FunctionName: lambda-echo\n"), |i| {
        assert_eq!(i.functions[0].name.as_str(), "lambda-echo")
    });
    check(
        &py("      FunctionName: !Sub '${AWS::StackName}-x'\n"),
        |i| assert_eq!(i.functions[0].name.as_str(), "Fn"),
    );
}

#[test]
fn api_events_default_to_the_implicit_rest_api() {
    check(
        &py(
            "      Events:\n        Get: {Type: Api, Properties: {Path: '/users/{id}', Method: get}}\n        Any: {Type: Api, Properties: {Path: '/p/{proxy+}', Method: ANY}}\n",
        ),
        |i| {
            assert_eq!(i.routes.len(), 2);
            let r = &i.routes[1];
            assert_eq!(
                (r.method.clone(), r.path.as_str()),
                (RouteMethod::Only("GET".into()), "/users/{id}")
            );
            assert_eq!(r.auth, RouteAuth::None);
            assert_eq!(r.payload_format, PayloadFormat::V1);
            assert_eq!(i.routes[0].method, RouteMethod::Any);
            assert_eq!(i.apis.len(), 1);
            assert_eq!(i.apis[0].logical_id, "ServerlessRestApi");
            assert_eq!(i.apis[0].stage, "Prod");
            assert_eq!(i.apis[0].kind, ApiKind::Rest);
            assert_eq!(i.apis[0].routes, [0, 1]);
        },
    );
    refused(
        &py(
            "      Events:\n        Get: {Type: Api, Properties: {Path: /x, Method: get, RestApiId: !Ref Nope}}\n",
        ),
        &[
            "Resources.Fn.Properties.Events.Get.Properties.RestApiId",
            "Nope",
        ],
    );
    refused(
        &py("      Events:\n        Get: {Type: Api, Properties: {Path: x, Method: get}}\n"),
        &["Events.Get.Properties.Path"],
    );
    refused(
        &py("      Events:\n        Get: {Type: Api, Properties: {Path: /x, Method: fetch}}\n"),
        &["Events.Get.Properties.Method"],
    );
    refused(
        &py(
            "      Events:\n        A: {Type: Api, Properties: {Path: /x, Method: get}}\n        B: {Type: Api, Properties: {Path: /x, Method: GET}}\n",
        ),
        &[
            "Events.B",
            "also defined by Resources.Fn.Properties.Events.A",
        ],
    );
}

#[test]
fn http_api_events_use_v2_unless_told() {
    check(
        &py(
            "      Events:\n        A: {Type: HttpApi, Properties: {Path: /a, Method: post}}\n        B: {Type: HttpApi, Properties: {Path: /b, Method: get, PayloadFormatVersion: '1.0'}}\n        C: {Type: HttpApi}\n",
        ),
        |i| {
            let got: Vec<(String, &str, PayloadFormat)> = i
                .routes
                .iter()
                .map(|r| (r.method.to_string(), r.path.as_str(), r.payload_format))
                .collect();
            assert_eq!(
                got,
                [
                    ("POST".to_string(), "/a", PayloadFormat::V2),
                    ("GET".to_string(), "/b", PayloadFormat::V1),
                    ("ANY".to_string(), "/", PayloadFormat::V2),
                    ("ANY".to_string(), "/{proxy+}", PayloadFormat::V2),
                ]
            );
            assert_eq!(i.apis[0].logical_id, "ServerlessHttpApi");
            assert_eq!(i.apis[0].stage, "$default");
        },
    );
}

#[test]
fn schedules() {
    check(
        &py(
            "      Events:\n        A: {Type: Schedule, Properties: {Schedule: rate(5 minutes)}}\n        B: {Type: Schedule, Properties: {Schedule: 'cron(0 12 * * ? *)', Input: '{\"k\": 1}', Enabled: false}}\n        C: {Type: Schedule, Properties: {Schedule: rate(1 hour), State: DISABLED}}\n        D: {Type: ScheduleV2, Properties: {ScheduleExpression: rate(1 day), Input: {k: v}, State: ENABLED}}\n",
        ),
        |i| {
            let s = |e: &str, input: Option<&str>, enabled| ScheduleSpec {
                expression: e.into(),
                input: input.map(str::to_string),
                enabled,
            };
            assert_eq!(
                i.functions[0].schedules,
                [
                    s("rate(5 minutes)", None, true),
                    s("cron(0 12 * * ? *)", Some("{\"k\": 1}"), false),
                    s("rate(1 hour)", None, false),
                    s("rate(1 day)", Some("{\"k\":\"v\"}"), true),
                ]
            );
        },
    );
    refused(
        &py(
            "      Events:\n        A: {Type: Schedule, Properties: {Schedule: rate(5 minutes), Enabled: true, State: ENABLED}}\n",
        ),
        &["Events.A.Properties.State", "cannot both"],
    );
    refused(
        &py(
            "      Events:\n        A: {Type: ScheduleV2, Properties: {ScheduleExpression: 'at(2030-01-01T00:00:00)'}}\n",
        ),
        &["Events.A.Properties.ScheduleExpression", "at("],
    );
    refused(
        &py(
            "      Events:\n        A: {Type: ScheduleV2, Properties: {ScheduleExpression: rate(1 day), ScheduleExpressionTimezone: Asia/Tokyo}}\n",
        ),
        &["ScheduleExpressionTimezone"],
    );
    refused(
        &py("      Events:\n        A: {Type: Schedule, Properties: {Schedule: often}}\n"),
        &["Events.A.Properties.Schedule"],
    );
}

const AUTH_API: &str = "  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
      BinaryMediaTypes: ['image~1png', '*~1*']
      Cors:
        AllowOrigin: \"'https://a.example'\"
        AllowMethods: \"'GET,POST'\"
        AllowHeaders: \"'Content-Type,Authorization'\"
        MaxAge: \"'600'\"
      Auth:
        DefaultAuthorizer: Pool
        Authorizers:
          Pool:
            UserPoolArn: !GetAtt UserPool.Arn
            Identity: {Header: X-Token}
          Tok:
            FunctionArn: !GetAtt AuthFn.Arn
            Identity: {Header: X-Auth, ValidationExpression: '^Bearer .+$', ReauthorizeEvery: 60}
          Req:
            FunctionArn: !GetAtt AuthFn.Arn
            FunctionPayloadType: REQUEST
            Identity: {Headers: [X-A], QueryStrings: [q], StageVariables: [s], Context: [identity.sourceIp]}
  UserPool:
    Type: AWS::Cognito::UserPool
  AuthFn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: auth/, Handler: auth.handler, Runtime: python3.12}
";

fn auth_event(name: &str, extra: &str) -> String {
    format!(
        "        {name}: {{Type: Api, Properties: {{RestApiId: !Ref Api, Path: /{name}, Method: get{extra}}}}}\n"
    )
}

#[test]
fn rest_api_auth_cors_and_binary_types() {
    let events = [
        auth_event("default", ""),
        auth_event("none", ", Auth: {Authorizer: NONE}"),
        auth_event("tok", ", Auth: {Authorizer: Tok}"),
        auth_event("req", ", Auth: {Authorizer: Req}"),
        auth_event("key", ", Auth: {Authorizer: NONE, ApiKeyRequired: true}"),
    ]
    .concat();
    let t = format!("{}{AUTH_API}", py(&format!("      Events:\n{events}")));
    check(&t, |i| {
        let auth: Vec<(&str, RouteAuth)> = i
            .routes
            .iter()
            .map(|r| (r.path.as_str(), r.auth.clone()))
            .collect();
        assert_eq!(
            auth,
            [
                ("/default", RouteAuth::Cognito),
                ("/key", RouteAuth::ApiKey),
                ("/none", RouteAuth::None),
                ("/req", RouteAuth::Authorizer("Req".into())),
                ("/tok", RouteAuth::Authorizer("Tok".into())),
            ]
        );
        assert_eq!(i.authorizers.len(), 2);
        let req = &i.authorizers[0];
        assert_eq!(
            (req.name.as_str(), req.kind),
            ("Req", AuthorizerKind::Request)
        );
        assert_eq!(req.function.as_str(), "AuthFn");
        assert_eq!(
            req.identity_sources,
            [
                IdentitySource::Header("X-A".into()),
                IdentitySource::QueryString("q".into()),
                IdentitySource::StageVariable("s".into()),
                IdentitySource::Context("identity.sourceIp".into()),
            ]
        );
        assert_eq!(req.ttl, Duration::from_secs(300));
        let tok = &i.authorizers[1];
        assert_eq!(
            (tok.name.as_str(), tok.kind),
            ("Tok", AuthorizerKind::Token)
        );
        assert_eq!(
            tok.identity_sources,
            [IdentitySource::Header("X-Auth".into())]
        );
        assert_eq!(tok.validation_expression.as_deref(), Some("^Bearer .+$"));
        assert_eq!(tok.ttl, Duration::from_secs(60));
        assert_eq!(
            (tok.payload_format, tok.simple_responses),
            (PayloadFormat::V1, false)
        );

        let api = i.apis.iter().find(|a| a.logical_id == "Api").unwrap();
        assert_eq!(api.stage, "v1");
        assert_eq!(
            api.token_authorizers,
            [CognitoAuthorizer {
                name: "Pool".into(),
                header: "X-Token".into(),
                issuer: None
            }]
        );
        assert_eq!(
            api.cors,
            Some(CorsPolicy {
                allow_origins: vec!["https://a.example".into()],
                allow_methods: vec!["GET".into(), "POST".into()],
                allow_headers: vec!["Content-Type".into(), "Authorization".into()],
                max_age: Some(600),
                ..CorsPolicy::default()
            })
        );
        assert_eq!(i.binary_media_types, ["image/png", "*/*"]);
    });
    let t = format!(
        "{}{AUTH_API}",
        py(&format!(
            "      Events:\n{}",
            auth_event("iam", ", Auth: {Authorizer: AWS_IAM}")
        ))
    );
    refused(&t, &["Events.iam.Properties.Auth", "AWS_IAM"]);
    let t = format!(
        "{}{AUTH_API}",
        py(&format!(
            "      Events:\n{}",
            auth_event("x", ", Auth: {Authorizer: Nope}")
        ))
    );
    refused(&t, &["Events.x.Properties.Auth.Authorizer", "Nope"]);
    let t = format!(
        "{}{AUTH_API}",
        py(&format!(
            "      Events:\n{}",
            auth_event("x", ", Auth: {Authorizer: Tok, ApiKeyRequired: true}")
        ))
    );
    refused(&t, &["Events.x.Properties.Auth", "ApiKeyRequired"]);
    refused(
        &format!(
            "{}{}",
            py(""),
            AUTH_API.replace("StageName: v1", "StageName: v1\n      DefinitionBody: {}")
        ),
        &["Resources.Api.Properties.DefinitionBody", "OpenAPI"],
    );
}

#[test]
fn http_api_auth_and_cors() {
    let t = format!(
        "{}  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      CorsConfiguration: {{AllowOrigins: ['*'], AllowMethods: [GET], MaxAge: 60, AllowCredentials: false}}
      Auth:
        DefaultAuthorizer: Lam
        Authorizers:
          Lam:
            FunctionArn: !GetAtt AuthFn.Arn
            AuthorizerPayloadFormatVersion: '2.0'
            EnableSimpleResponses: true
            Identity: {{Headers: [Authorization], ReauthorizeEvery: 30}}
          Jwt:
            IdentitySource: $request.header.X-Jwt
            JwtConfiguration: {{issuer: 'https://issuer.example', audience: [a]}}
  AuthFn:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: auth/, Handler: auth.handler, Runtime: python3.12}}
",
        py("      Events:\n        A: {Type: HttpApi, Properties: {ApiId: !Ref Http, Path: /a, Method: get}}\n        B: {Type: HttpApi, Properties: {ApiId: !Ref Http, Path: /b, Method: get, Auth: {Authorizer: Jwt}}}\n        C: {Type: HttpApi, Properties: {ApiId: !Ref Http, Path: /c, Method: get, Auth: {Authorizer: NONE}}}\n")
    );
    check(&t, |i| {
        let auth: Vec<RouteAuth> = i.routes.iter().map(|r| r.auth.clone()).collect();
        assert_eq!(
            auth,
            [
                RouteAuth::Authorizer("Lam".into()),
                RouteAuth::Cognito,
                RouteAuth::None
            ]
        );
        let a = &i.authorizers[0];
        assert_eq!(
            (a.kind, a.payload_format, a.simple_responses),
            (AuthorizerKind::Request, PayloadFormat::V2, true)
        );
        assert_eq!(a.ttl, Duration::from_secs(30));
        assert_eq!(
            a.identity_sources,
            [IdentitySource::Header("Authorization".into())]
        );
        let api = &i.apis[0];
        assert_eq!(
            api.token_authorizers,
            [CognitoAuthorizer {
                name: "Jwt".into(),
                header: "X-Jwt".into(),
                issuer: Some("https://issuer.example".into())
            }]
        );
        assert_eq!(
            api.cors,
            Some(CorsPolicy {
                allow_origins: vec!["*".into()],
                allow_methods: vec!["GET".into()],
                max_age: Some(60),
                ..CorsPolicy::default()
            })
        );
    });
}

#[test]
fn conditions_and_parameters_pick_resources_and_values() {
    let t = format!(
        "Parameters:\n  Env: {{Type: String, Default: dev}}\nConditions:\n  IsProd: !Equals [!Ref Env, prod]\n{}      MemorySize: !If [IsProd, 1024, 256]\n  Extra:\n    Type: AWS::Serverless::Function\n    Condition: IsProd\n    Properties: {{CodeUri: x/, Handler: a.b, Runtime: python3.12}}\n",
        py("")
    );
    check(&t, |i| {
        assert_eq!(i.functions.len(), 1);
        assert_eq!(i.functions[0].memory_size, 256);
        assert!(i.notes[0].contains("condition IsProd is false"));
    });
    let o = ImportOptions {
        parameter_overrides: [("Env".to_string(), "prod".to_string())].into(),
        ..opts()
    };
    let i = import(&t, &o).unwrap();
    assert_eq!(i.functions.len(), 2);
    assert_eq!(i.function("Fn").unwrap().memory_size, 1024);
    // An essential property that cannot be resolved is refused with its path.
    refused(
        &py("").replace("Handler: app.handler", "Handler: !ImportValue H"),
        &["Resources.Fn.Properties.Handler: cannot be resolved locally"],
    );
}

#[test]
fn other_resource_types() {
    check(
        &format!(
            "{}  Bucket: {{Type: AWS::S3::Bucket}}\n  Layer: {{Type: AWS::Serverless::LayerVersion}}\n",
            py("")
        ),
        |i| {
            assert_eq!(i.notes.len(), 2);
        },
    );
    refused(
        &format!(
            "{}  Raw: {{Type: AWS::Lambda::Function, Properties: {{}}}}\n",
            py("")
        ),
        &["Resources.Raw.Type", "AWS::Lambda::Function"],
    );
    check("Resources:\n  X: {Properties: {}}\n", |i| {
        assert!(i.warnings[0].starts_with("Resources.X.Type"))
    });
    refused("Foo: 1\n", &["Resources"]);
    refused(
        &format!(
            "{}\nTransform: [AWS::Serverless-2016-10-31, AWS::LanguageExtensions]\n",
            py("")
        )
        .replace(HEAD, ""),
        &["Transform"],
    );
}

#[test]
fn generated_files_round_trip_through_esb_config() {
    // Exercised against esb-config in tests/generate.rs; here: `$` is escaped and defaults written.
    check(
        &py(
            "      Environment:\n        Variables: {PRICE: '$5 ${X}'}\n      Events:\n        A: {Type: Schedule, Properties: {Schedule: 'cron(0 1 * * ? *)'}}\n",
        ),
        |i| {
            let g = generate(i);
            assert!(
                g.functions_yml.contains("PRICE: $$5 $${X}"),
                "{}",
                g.functions_yml
            );
            assert!(
                g.functions_yml
                    .contains("command:\n    - ${ESB_PYTHON:-python3}\n    - -m\n"),
                "{}",
                g.functions_yml
            );
            assert!(
                g.functions_yml.contains("cron: cron(0 1 * * ? *)"),
                "{}",
                g.functions_yml
            );
            assert!(
                g.functions_yml.contains("idle_timeout: 300"),
                "{}",
                g.functions_yml
            );
            assert_eq!(g.dockerfiles.len(), 1);
            assert!(
                g.dockerfiles[0]
                    .text
                    .contains("FROM public.ecr.aws/lambda/python:3.12\n")
            );
            assert!(g.dockerfiles[0].text.contains("CMD [\"app.handler\"]\n"));
            assert_eq!(g.dockerfiles[0].context, PathBuf::from("/tpl/src"));
        },
    );
}

#[test]
fn leniencies_found_in_the_corpus() {
    // Events: null, State in mixed case, numeric payload versions.
    check(&py("      Events:\n"), |i| assert!(i.routes.is_empty()));
    check(
        &py(
            "      Events:\n        A: {Type: Schedule, Properties: {Schedule: rate(1 day), State: Disabled}}\n        B: {Type: HttpApi, Properties: {Path: /b, Method: get, PayloadFormatVersion: 1.0}}\n",
        ),
        |i| {
            assert!(!i.functions[0].schedules[0].enabled);
            assert_eq!(i.routes[0].payload_format, PayloadFormat::V1);
        },
    );
    // Ref to SAM-generated resources (`Fn.Version`) is unknown locally, not a template error.
    check(
        &py("      Environment:\n        Variables: {V: !Ref Fn.Version}\n"),
        |i| {
            assert!(
                i.warnings[0].contains("Variables.V: cannot be resolved locally"),
                "{:?}",
                i.warnings
            );
        },
    );
    // A Cors mapping without AllowOrigin allows every origin, as SAM does.
    let t = format!(
        "Globals:\n  Api:\n    Cors: {{MaxAge: 60}}\n{}",
        py("      Events:\n        A: {Type: Api, Properties: {Path: /a, Method: get}}\n")
    );
    check(&t, |i| {
        assert_eq!(i.apis[0].cors.as_ref().unwrap().allow_origins, ["*"])
    });
}

#[test]
fn routes_behind_a_refused_authorizer_are_left_out_not_opened() {
    let t = format!(
        "{}  Api:\n    Type: AWS::Serverless::Api\n    Properties:\n      StageName: p\n      Auth:\n        Authorizers:\n          Ext: {{FunctionArn: 'arn:aws:lambda:us-east-1:1:function:elsewhere'}}\n",
        py(
            "      Events:\n        A: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /a, Method: get, Auth: {Authorizer: Ext}}}\n        B: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /b, Method: get}}\n"
        )
    );
    refused(
        &t,
        &[
            "Auth.Authorizers.Ext.FunctionArn",
            "not a function of this template",
        ],
    );
    let o = ImportOptions {
        skip_unsupported: true,
        ..opts()
    };
    let i = import(&t, &o).unwrap();
    let paths: Vec<&str> = i.routes.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/b"]);
    assert!(
        i.warnings
            .iter()
            .any(|w| w.contains("Events.A.Properties.Auth") && w.contains("left out")),
        "{:?}",
        i.warnings
    );
}

#[test]
fn a_refused_property_that_resolves_to_nothing_is_fine() {
    let t = format!(
        "Conditions:\n  No: !Equals [a, b]\n{}",
        py(
            "      FunctionUrlConfig: !If [No, {AuthType: NONE}, !Ref AWS::NoValue]\n      Layers: !If [No, [x], []]\n"
        )
    );
    check(&t, |i| assert!(i.warnings.is_empty(), "{:?}", i.warnings));
}
