//! The container a function environment runs in, as plain data: labels, environment, hardening,
//! port publishing and the RIE entrypoint. No IO, so every flag is unit-tested.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, PortBinding,
    ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum,
};
use esb_model::{FunctionName, FunctionSpec, RieSource, RuntimeSpec};
use sha2::{Digest, Sha256};

use crate::error::DockerError;
use crate::options::DockerOptions;

/// Label keys on every container esb creates.
pub const LABEL_MANAGED: &str = "esb.managed";
pub const LABEL_FUNCTION: &str = "esb.function";
pub const LABEL_CONFIG_HASH: &str = "esb.config-hash";
/// The pool's environment id.
pub const LABEL_INSTANCE: &str = "esb.instance";
/// The esb instance that created the container.
pub const LABEL_OWNER: &str = "esb.owner";

/// The RIE's invoke port inside every container, and its Docker port key.
pub const RIE_PORT: u16 = 8080;
pub const RIE_PORT_KEY: &str = "8080/tcp";
/// Where the injected `esb-rie` appears inside containers (SAM CLI uses `/var/rapid` too).
pub const INJECTED_RIE_PATH: &str = "/var/rapid/esb-rie";

/// Bump when [`create_body`] changes what a container looks like, so a new esb does not adopt
/// containers an older one built differently.
const BUILDER_VERSION: &str = "esb-docker/1";

/// Variables a function's own environment may not set. The Lambda ones are reserved there too;
/// `AWS_LAMBDA_RUNTIME_API` is the RIE's to set for the runtime, and set from outside it would make
/// an AWS base image's entrypoint skip its bundled RIE.
const RESERVED: [&str; 1] = ["AWS_LAMBDA_RUNTIME_API"];

/// One execution environment of one function, ready to be created.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerSpec {
    pub function: FunctionName,
    /// The pool's environment id (`esb.instance`).
    pub instance: u64,
    pub image: String,
    pub rie: RieSource,
    pub memory_mb: u32,
    /// The complete environment: platform variables, then the function's own.
    pub environment: BTreeMap<String, String>,
    /// `esb.config-hash`: what adoption compares to decide whether a container is current.
    pub config_hash: String,
}

impl ContainerSpec {
    /// The spec of environment `instance` of `f`; `provisioned` when pre-warmed for
    /// `min_capacity` rather than for a waiting request. `rie_fingerprint` identifies the
    /// injected `esb-rie` build (size and mtime), so replacing it makes old containers stale.
    pub fn for_function(
        f: &FunctionSpec,
        instance: u64,
        provisioned: bool,
        opts: &DockerOptions,
        rie_fingerprint: &str,
    ) -> Result<Self, DockerError> {
        let RuntimeSpec::Docker { image, rie } = &f.runtime else {
            return Err(DockerError::NotDocker {
                function: f.name.clone(),
            });
        };
        if *rie == RieSource::Injected && opts.rie_binary.is_none() {
            return Err(DockerError::NoRieBinary {
                function: f.name.clone(),
            });
        }
        Ok(Self {
            function: f.name.clone(),
            instance,
            image: image.clone(),
            rie: *rie,
            memory_mb: f.memory_size,
            environment: lambda_environment(f, opts, provisioned),
            config_hash: config_hash(f, opts, rie_fingerprint)?,
        })
    }
}

/// The environment of a function's containers, in precedence order (the process runtime's
/// order too, so a function sees the same on both):
/// 1. esb's defaults a function may override (`AWS_ENDPOINT_URL_*`, `AWS_DEFAULT_REGION`);
/// 2. the function's `environment`;
/// 3. what Lambda reserves (aws-compat §1.3): name, version, memory, timeout, log names,
///    initialization type, region, account.
pub fn lambda_environment(
    f: &FunctionSpec,
    opts: &DockerOptions,
    provisioned: bool,
) -> BTreeMap<String, String> {
    let p = &opts.platform;
    let name = f.name.as_str();
    let mut env = BTreeMap::new();
    env.insert("AWS_DEFAULT_REGION".to_owned(), p.region.clone());
    for (k, v) in [
        ("AWS_ENDPOINT_URL_S3", &p.s3_endpoint),
        ("AWS_ENDPOINT_URL_DYNAMODB", &p.dynamodb_endpoint),
        ("AWS_ENDPOINT_URL_LAMBDA", &p.lambda_endpoint),
    ] {
        if let Some(v) = v {
            env.insert(k.to_owned(), v.clone());
        }
    }
    for (k, v) in &f.environment {
        if RESERVED.contains(&k.as_str()) {
            tracing::warn!(function = name, variable = %k, "ignoring a reserved variable in the function's environment");
            continue;
        }
        env.insert(k.clone(), v.clone());
    }
    // RIE parses the timeout with ParseInt and panics on anything else: whole seconds, rounded up.
    let timeout_secs = f.timeout.as_millis().div_ceil(1000).max(1);
    let init_type = if provisioned {
        "provisioned-concurrency"
    } else {
        "on-demand"
    };
    for (k, v) in [
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", f.memory_size.to_string()),
        ("AWS_LAMBDA_FUNCTION_TIMEOUT", timeout_secs.to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "$LATEST".to_owned()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", init_type.to_owned()),
        ("AWS_REGION", p.region.clone()),
        ("AWS_ACCOUNT_ID", p.account_id.clone()),
    ] {
        env.insert(k.to_owned(), v);
    }
    env
}

/// The `esb.config-hash` of `f`'s containers: everything that shapes them (image reference,
/// RIE mode, memory, timeout, environment, hardening, network, the injected RIE build).
/// Short hex; it only has to tell configurations apart.
pub fn config_hash(
    f: &FunctionSpec,
    opts: &DockerOptions,
    rie_fingerprint: &str,
) -> Result<String, DockerError> {
    let RuntimeSpec::Docker { image, rie } = &f.runtime else {
        return Err(DockerError::NotDocker {
            function: f.name.clone(),
        });
    };
    let h = &opts.hardening;
    let canonical = serde_json::json!({
        "builder": BUILDER_VERSION,
        "image": image,
        "rie": match rie { RieSource::Injected => "injected", RieSource::Image => "image" },
        "rie_binary": opts.rie_binary.as_ref().map(|p| p.to_string_lossy().into_owned()),
        "rie_fingerprint": rie_fingerprint,
        "memory_mb": f.memory_size,
        // On-demand always: how an environment was started does not make it stale.
        "environment": lambda_environment(f, opts, false),
        "network": opts.network,
        "user": h.user,
        "nano_cpus": h.nano_cpus,
        "pids_limit": h.pids_limit,
        "nofile": h.nofile,
        "tmp_size_mb": h.tmp_size_mb,
        "tmp_noexec": h.tmp_noexec,
        "log": [&h.log_max_size, &h.log_max_files.to_string()],
        "init": h.init,
    });
    // serde_json's map is ordered (BTreeMap), so the text is canonical.
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    Ok(hex::encode(&digest[..8]))
}

/// The image's own entrypoint and command (`docker image inspect`), which the injected RIE runs
/// as the bootstrap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageDefaults {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

/// The labels of a spec's container.
pub fn labels(spec: &ContainerSpec, owner: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_MANAGED.to_owned(), "true".to_owned()),
        (LABEL_FUNCTION.to_owned(), spec.function.as_str().to_owned()),
        (LABEL_CONFIG_HASH.to_owned(), spec.config_hash.clone()),
        (LABEL_INSTANCE.to_owned(), spec.instance.to_string()),
        (LABEL_OWNER.to_owned(), owner.to_owned()),
    ])
}

/// A container name that says what it is and cannot collide: `nonce` differs per esb process,
/// so a crashed predecessor's half-created container never causes a 409.
pub fn container_name(spec: &ContainerSpec, owner: &str, nonce: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    format!(
        "esb-{}-{}-{}-{}",
        clean(owner),
        clean(spec.function.as_str()),
        spec.instance,
        clean(nonce)
    )
}

/// The create request for `spec`: hardened, labelled, and wired for the chosen RIE.
pub fn create_body(
    spec: &ContainerSpec,
    image: &ImageDefaults,
    opts: &DockerOptions,
) -> Result<ContainerCreateBody, DockerError> {
    let h = &opts.hardening;
    let memory = i64::from(spec.memory_mb) << 20;

    let (entrypoint, cmd, mounts) = match spec.rie {
        RieSource::Injected => {
            let rie = opts
                .rie_binary
                .as_ref()
                .ok_or_else(|| DockerError::NoRieBinary {
                    function: spec.function.clone(),
                })?;
            let entrypoint = vec![
                INJECTED_RIE_PATH.to_owned(),
                "--runtime-interface-emulator-address".to_owned(),
                format!("0.0.0.0:{RIE_PORT}"),
                "--runtime-api-address".to_owned(),
                "127.0.0.1:9001".to_owned(),
                // The image's arguments may look like RIE flags; they belong to the bootstrap.
                "--".to_owned(),
            ];
            let bootstrap: Vec<String> = image
                .entrypoint
                .iter()
                .chain(image.cmd.iter())
                .cloned()
                .collect();
            let mount = Mount {
                target: Some(INJECTED_RIE_PATH.to_owned()),
                source: Some(rie.to_string_lossy().into_owned()),
                typ: Some(MountType::BIND),
                read_only: Some(true),
                ..Default::default()
            };
            // An explicit (possibly empty) Cmd: with Entrypoint overridden, Docker would drop the
            // image's Cmd anyway; being explicit keeps `docker inspect` honest.
            (Some(entrypoint), Some(bootstrap), Some(vec![mount]))
        }
        // The image's own entrypoint starts its own RIE.
        RieSource::Image => (None, None, None),
    };

    let mut tmp = format!("rw,nosuid,nodev,size={}m,mode=1777", h.tmp_size_mb);
    if h.tmp_noexec {
        tmp.push_str(",noexec");
    }

    let port_bindings = match &opts.network {
        Some(_) => None,
        None => Some(HashMap::from([(
            RIE_PORT_KEY.to_owned(),
            Some(vec![PortBinding {
                // Never 0.0.0.0: the invoke endpoint has no authentication (OWASP rule 5a).
                host_ip: Some("127.0.0.1".to_owned()),
                host_port: Some("0".to_owned()),
            }]),
        )])),
    };

    let host_config = HostConfig {
        memory: Some(memory),
        // Equal to memory: no swap, so the OOM killer fires at the limit like Lambda.
        memory_swap: Some(memory),
        nano_cpus: (h.nano_cpus > 0).then_some(h.nano_cpus),
        pids_limit: Some(h.pids_limit),
        ulimits: Some(vec![ResourcesUlimits {
            name: Some("nofile".to_owned()),
            soft: Some(h.nofile),
            hard: Some(h.nofile),
        }]),
        cap_drop: Some(vec!["ALL".to_owned()]),
        security_opt: Some(vec!["no-new-privileges:true".to_owned()]),
        privileged: Some(false),
        readonly_rootfs: Some(true),
        tmpfs: Some(HashMap::from([("/tmp".to_owned(), tmp)])),
        init: Some(h.init),
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".to_owned()),
            config: Some(HashMap::from([
                ("max-size".to_owned(), h.log_max_size.clone()),
                ("max-file".to_owned(), h.log_max_files.to_string()),
            ])),
        }),
        mounts,
        network_mode: opts.network.clone(),
        port_bindings,
        // esb decides about restarts and removal; it must see OOMKilled and the exit code.
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        auto_remove: Some(false),
        ..Default::default()
    };

    Ok(ContainerCreateBody {
        image: Some(spec.image.clone()),
        env: Some(
            spec.environment
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
        ),
        labels: Some(labels(spec, &opts.owner)),
        exposed_ports: Some(vec![RIE_PORT_KEY.to_owned()]),
        user: opts.hardening.user.clone(),
        entrypoint,
        cmd,
        host_config: Some(host_config),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use esb_model::ScalingSpec;

    use super::*;

    fn function(rie: RieSource) -> FunctionSpec {
        FunctionSpec {
            name: FunctionName::new("orders"),
            runtime: RuntimeSpec::Docker {
                image: "esb-echo:dev".into(),
                rie,
            },
            timeout: Duration::from_millis(2500),
            memory_size: 256,
            environment: [
                ("TABLE", "t1"),
                ("AWS_ENDPOINT_URL_S3", "http://mine:9000"),
                ("AWS_LAMBDA_FUNCTION_NAME", "spoofed"),
                ("AWS_REGION", "us-west-2"),
                ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:1"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            scaling: ScalingSpec::default(),
            schedules: vec![],
        }
    }

    fn opts() -> DockerOptions {
        DockerOptions {
            owner: "edge-1".into(),
            rie_binary: Some(PathBuf::from("/opt/esb/esb-rie")),
            platform: crate::PlatformEnv {
                s3_endpoint: Some("http://10.0.0.1:9000".into()),
                dynamodb_endpoint: Some("http://10.0.0.1:8001".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn image() -> ImageDefaults {
        ImageDefaults {
            entrypoint: vec!["/lambda-entrypoint.sh".into()],
            cmd: vec!["app.handler".into()],
        }
    }

    fn body(rie: RieSource, opts: &DockerOptions) -> ContainerCreateBody {
        let spec = ContainerSpec::for_function(&function(rie), 7, false, opts, "fp").unwrap();
        create_body(&spec, &image(), opts).unwrap()
    }

    #[test]
    fn labels_name_the_function_instance_owner_and_config() {
        let o = opts();
        let b = body(RieSource::Injected, &o);
        let labels = b.labels.unwrap();
        assert_eq!(labels[LABEL_MANAGED], "true");
        assert_eq!(labels[LABEL_FUNCTION], "orders");
        assert_eq!(labels[LABEL_INSTANCE], "7");
        assert_eq!(labels[LABEL_OWNER], "edge-1");
        let hash = config_hash(&function(RieSource::Injected), &o, "fp").unwrap();
        assert_eq!(labels[LABEL_CONFIG_HASH], hash);
        assert_eq!(hash.len(), 16);
        assert_eq!(labels.len(), 5);
    }

    #[test]
    fn environment_is_lambdas_with_reserved_names_protected() {
        let env: Vec<String> = body(RieSource::Injected, &opts()).env.unwrap();
        let get = |k: &str| {
            env.iter()
                .find_map(|e| e.strip_prefix(&format!("{k}=")).map(str::to_owned))
        };
        assert_eq!(get("AWS_LAMBDA_FUNCTION_NAME").as_deref(), Some("orders"));
        assert_eq!(
            get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").as_deref(),
            Some("256")
        );
        assert_eq!(
            get("AWS_LAMBDA_FUNCTION_TIMEOUT").as_deref(),
            Some("3"),
            "rounded up"
        );
        assert_eq!(
            get("AWS_LAMBDA_FUNCTION_VERSION").as_deref(),
            Some("$LATEST")
        );
        assert_eq!(
            get("AWS_LAMBDA_LOG_GROUP_NAME").as_deref(),
            Some("/aws/lambda/orders")
        );
        assert_eq!(
            get("AWS_LAMBDA_INITIALIZATION_TYPE").as_deref(),
            Some("on-demand")
        );
        assert_eq!(
            get("AWS_REGION").as_deref(),
            Some("ap-northeast-1"),
            "reserved"
        );
        assert_eq!(get("AWS_DEFAULT_REGION").as_deref(), Some("ap-northeast-1"));
        assert_eq!(get("AWS_ACCOUNT_ID").as_deref(), Some("123456789012"));
        assert_eq!(get("TABLE").as_deref(), Some("t1"));
        assert_eq!(
            get("AWS_ENDPOINT_URL_S3").as_deref(),
            Some("http://mine:9000"),
            "a function may point the SDK elsewhere"
        );
        assert_eq!(
            get("AWS_ENDPOINT_URL_DYNAMODB").as_deref(),
            Some("http://10.0.0.1:8001")
        );
        assert_eq!(get("AWS_ENDPOINT_URL_LAMBDA"), None);
        assert_eq!(
            get("AWS_LAMBDA_RUNTIME_API"),
            None,
            "never set from outside"
        );
        let mut sorted = env.clone();
        sorted.sort();
        assert_eq!(env, sorted, "deterministic order");
    }

    #[test]
    fn provisioned_environments_say_so_without_changing_the_hash() {
        let o = opts();
        let f = function(RieSource::Injected);
        let a = ContainerSpec::for_function(&f, 1, false, &o, "fp").unwrap();
        let b = ContainerSpec::for_function(&f, 2, true, &o, "fp").unwrap();
        assert_eq!(
            b.environment["AWS_LAMBDA_INITIALIZATION_TYPE"],
            "provisioned-concurrency"
        );
        assert_eq!(a.config_hash, b.config_hash);
    }

    #[test]
    fn hardening_flags() {
        let b = body(RieSource::Injected, &opts());
        let h = b.host_config.unwrap();
        assert_eq!(h.memory, Some(256 << 20));
        assert_eq!(h.memory_swap, Some(256 << 20), "no swap beyond memory");
        assert_eq!(h.nano_cpus, Some(1_000_000_000));
        assert_eq!(h.pids_limit, Some(1024));
        let ul = &h.ulimits.unwrap()[0];
        assert_eq!(
            (ul.name.as_deref(), ul.soft, ul.hard),
            (Some("nofile"), Some(1024), Some(1024))
        );
        assert_eq!(h.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(h.cap_add, None);
        assert_eq!(
            h.security_opt,
            Some(vec!["no-new-privileges:true".to_owned()])
        );
        assert_eq!(h.privileged, Some(false));
        assert_eq!(h.readonly_rootfs, Some(true));
        let tmpfs = h.tmpfs.unwrap();
        assert_eq!(tmpfs.len(), 1);
        assert_eq!(tmpfs["/tmp"], "rw,nosuid,nodev,size=512m,mode=1777");
        assert_eq!(h.init, Some(true));
        let log = h.log_config.unwrap();
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        let lc = log.config.unwrap();
        assert_eq!(
            (lc["max-size"].as_str(), lc["max-file"].as_str()),
            ("10m", "3")
        );
        assert_eq!(h.auto_remove, Some(false));
        assert_eq!(
            h.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::NO)
        );
        for absent in [&h.pid_mode, &h.ipc_mode, &h.uts_mode, &h.userns_mode] {
            assert_eq!(*absent, None, "no host namespaces");
        }
        assert_eq!(h.devices, None);
        assert_eq!(h.binds, None);
        assert_eq!(b.user.as_deref(), Some("1000:1000"));
    }

    #[test]
    fn tmp_noexec_and_keeping_the_images_user_are_options() {
        let mut o = opts();
        o.hardening.tmp_noexec = true;
        o.hardening.user = None;
        o.hardening.tmp_size_mb = 64;
        let b = body(RieSource::Injected, &o);
        assert_eq!(
            b.host_config.unwrap().tmpfs.unwrap()["/tmp"],
            "rw,nosuid,nodev,size=64m,mode=1777,noexec"
        );
        assert_eq!(b.user, None);
    }

    #[test]
    fn without_a_network_the_rie_port_is_published_on_loopback_only() {
        let b = body(RieSource::Injected, &opts());
        assert_eq!(b.exposed_ports, Some(vec!["8080/tcp".to_owned()]));
        let h = b.host_config.unwrap();
        assert_eq!(h.network_mode, None);
        assert_eq!(h.publish_all_ports, None);
        let ports = h.port_bindings.unwrap();
        assert_eq!(ports.len(), 1);
        let bindings = ports["8080/tcp"].clone().unwrap();
        assert_eq!(bindings.len(), 1);
        assert_eq!(bindings[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(bindings[0].host_port.as_deref(), Some("0"));
    }

    #[test]
    fn on_a_network_nothing_is_published() {
        let mut o = opts();
        o.network = Some("esb-functions".into());
        let h = body(RieSource::Injected, &o).host_config.unwrap();
        assert_eq!(h.network_mode.as_deref(), Some("esb-functions"));
        assert_eq!(h.port_bindings, None);
    }

    #[test]
    fn injected_rie_wraps_the_images_entrypoint_and_command() {
        let b = body(RieSource::Injected, &opts());
        assert_eq!(
            b.entrypoint.unwrap(),
            [
                "/var/rapid/esb-rie",
                "--runtime-interface-emulator-address",
                "0.0.0.0:8080",
                "--runtime-api-address",
                "127.0.0.1:9001",
                "--",
            ]
        );
        assert_eq!(b.cmd.unwrap(), ["/lambda-entrypoint.sh", "app.handler"]);
        let mounts = b.host_config.unwrap().mounts.unwrap();
        assert_eq!(mounts.len(), 1);
        let m = &mounts[0];
        assert_eq!(m.typ, Some(MountType::BIND));
        assert_eq!(m.source.as_deref(), Some("/opt/esb/esb-rie"));
        assert_eq!(m.target.as_deref(), Some(INJECTED_RIE_PATH));
        assert_eq!(m.read_only, Some(true));
    }

    #[test]
    fn injected_rie_with_an_image_without_entrypoint_or_command_searches_for_bootstrap() {
        let o = opts();
        let spec =
            ContainerSpec::for_function(&function(RieSource::Injected), 1, false, &o, "").unwrap();
        let b = create_body(&spec, &ImageDefaults::default(), &o).unwrap();
        assert_eq!(b.entrypoint.unwrap().last().map(String::as_str), Some("--"));
        assert_eq!(b.cmd, Some(vec![]), "explicitly empty, not the image's");
    }

    #[test]
    fn image_rie_keeps_the_images_entrypoint_and_command_and_mounts_nothing() {
        let b = body(RieSource::Image, &opts());
        assert_eq!(b.entrypoint, None);
        assert_eq!(b.cmd, None);
        assert_eq!(b.host_config.unwrap().mounts, None);
    }

    #[test]
    fn injected_rie_needs_the_binary() {
        let mut o = opts();
        o.rie_binary = None;
        let err = ContainerSpec::for_function(&function(RieSource::Injected), 1, false, &o, "")
            .unwrap_err();
        assert!(matches!(err, DockerError::NoRieBinary { .. }), "{err}");
        // The image's own RIE needs none.
        ContainerSpec::for_function(&function(RieSource::Image), 1, false, &o, "").unwrap();
    }

    #[test]
    fn non_docker_functions_are_refused() {
        let mut f = function(RieSource::Injected);
        f.runtime = RuntimeSpec::Process {
            command: vec!["x".into()],
            working_dir: None,
        };
        let err = ContainerSpec::for_function(&f, 1, false, &opts(), "").unwrap_err();
        assert!(matches!(err, DockerError::NotDocker { .. }));
    }

    #[test]
    fn config_hash_changes_with_what_shapes_the_container_only() {
        let o = opts();
        let f = function(RieSource::Injected);
        let base = config_hash(&f, &o, "fp").unwrap();
        assert_eq!(base, config_hash(&f, &o, "fp").unwrap(), "stable");
        let mut changed = Vec::new();
        let mut g = f.clone();
        g.memory_size = 512;
        changed.push(config_hash(&g, &o, "fp").unwrap());
        let mut g = f.clone();
        g.environment.insert("NEW".into(), "1".into());
        changed.push(config_hash(&g, &o, "fp").unwrap());
        let mut g = f.clone();
        g.timeout = Duration::from_secs(10);
        changed.push(config_hash(&g, &o, "fp").unwrap());
        changed.push(config_hash(&function(RieSource::Image), &o, "fp").unwrap());
        changed.push(config_hash(&f, &o, "rebuilt-rie").unwrap());
        let mut p = o.clone();
        p.hardening.pids_limit = 64;
        changed.push(config_hash(&f, &p, "fp").unwrap());
        let mut p = o.clone();
        p.network = Some("n".into());
        changed.push(config_hash(&f, &p, "fp").unwrap());
        for (i, h) in changed.iter().enumerate() {
            assert_ne!(h, &base, "change {i} must change the hash");
        }
        // Scaling does not shape a container.
        let mut g = f.clone();
        g.scaling.max_capacity = 99;
        assert_eq!(config_hash(&g, &o, "fp").unwrap(), base);
        // Nor does the owner: a renamed instance still adopts by owner label.
        let mut p = o.clone();
        p.keep_on_shutdown = true;
        assert_eq!(config_hash(&f, &p, "fp").unwrap(), base);
    }

    #[test]
    fn container_names_are_docker_safe_and_distinct() {
        let o = opts();
        let spec =
            ContainerSpec::for_function(&function(RieSource::Injected), 42, false, &o, "").unwrap();
        assert_eq!(
            container_name(&spec, "edge 1/a", "9f3"),
            "esb-edge-1-a-orders-42-9f3"
        );
    }
}
