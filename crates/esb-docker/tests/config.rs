//! `config/docker/` loads with esb-config, and its function turns into a hardened container
//! spec: the wiring the control plane will do, without an engine.

use std::path::PathBuf;

use esb_docker::spec::{self, ImageDefaults};
use esb_docker::{ContainerSpec, DockerOptions, PlatformEnv};
use esb_model::{RieSource, RuntimeSpec};

fn config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/docker")
}

#[test]
fn the_docker_example_config_loads_and_builds_a_container_spec() {
    let cfg = esb_config::Config::load(&config_dir().join("esb.toml"), &|_| None).unwrap();
    assert!(cfg.needs_docker());
    let echo = cfg.function("echo").expect("echo is configured");
    assert_eq!(
        echo.runtime,
        RuntimeSpec::Docker {
            image: "esb-echo:dev".into(),
            rie: RieSource::Injected
        }
    );
    assert_eq!(echo.memory_size, 128);
    assert_eq!(cfg.routes.len(), 3);
    assert!(cfg.routes.iter().all(|r| r.function.as_str() == "echo"));
    let rie = cfg
        .docker
        .rie_binary_static
        .clone()
        .expect("rie_binary_static is set");
    assert!(
        rie.ends_with("target/x86_64-unknown-linux-gnu/release/esb-rie"),
        "{}",
        rie.display()
    );

    let opts = DockerOptions {
        owner: "edge".into(),
        rie_binary: Some(rie.clone()),
        platform: PlatformEnv {
            region: cfg.api.region.clone(),
            account_id: cfg.api.account_id.clone(),
            s3_endpoint: cfg.runtime.s3_endpoint.clone(),
            dynamodb_endpoint: cfg.runtime.dynamodb_endpoint.clone(),
            lambda_endpoint: cfg.runtime.lambda_endpoint.clone(),
        },
        ..Default::default()
    };
    let spec = ContainerSpec::for_function(echo, 1, false, &opts, "fp").unwrap();
    assert_eq!(spec.environment["AWS_LAMBDA_FUNCTION_TIMEOUT"], "10");
    assert_eq!(
        spec.environment["LOG_LEVEL"], "INFO",
        "defaults.environment applied"
    );
    let image = ImageDefaults {
        entrypoint: vec![],
        cmd: vec!["/var/task/bootstrap".into()],
    };
    let body = spec::create_body(&spec, &image, &opts).unwrap();
    let host = body.host_config.unwrap();
    assert_eq!(host.memory, Some(128 << 20));
    assert_eq!(
        host.mounts.unwrap()[0].source.as_deref(),
        Some(rie.to_string_lossy().as_ref())
    );
    assert_eq!(body.cmd, Some(vec!["/var/task/bootstrap".to_owned()]));
}
