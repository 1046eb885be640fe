//! The environment variables an execution environment starts with: what AWS's RIE and Lambda
//! set (aws-compat §1.3), esb's endpoints for the AWS SDKs, and the function's own variables.

use std::collections::BTreeMap;

use esb_model::FunctionSpec;

use crate::ControlSettings;

/// Marks every process of an environment (RIE and the runtime inherit it), so leftovers of a
/// killed esb can be found in `/proc` at the next start; the value is the state directory.
pub const STATE_MARKER: &str = "ESB_STATE_DIR";
/// Names the environment inside the processes of it, e.g. `env-7`.
pub const ENV_MARKER: &str = "ESB_ENV_ID";

/// Builds the full environment of one execution environment, in precedence order:
/// 1. the variables esb passes through from its own environment (`PATH`, `HOME`, ...);
/// 2. esb's defaults a function may override (`AWS_ENDPOINT_URL_*`, `AWS_DEFAULT_REGION`);
/// 3. the function's `environment` (with `defaults.environment` already merged in);
/// 4. what Lambda reserves and a function cannot change (name, timeout, memory, region, ...).
pub fn build(
    function: &FunctionSpec,
    settings: &ControlSettings,
    env_id: &str,
    provisioned: bool,
) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = settings.base_env.iter().cloned().collect();
    let mut set = |k: &str, v: &str| {
        env.insert(k.to_string(), v.to_string());
    };
    set("AWS_DEFAULT_REGION", &settings.region);
    for (k, v) in [
        ("AWS_ENDPOINT_URL_S3", &settings.s3_endpoint),
        ("AWS_ENDPOINT_URL_DYNAMODB", &settings.dynamodb_endpoint),
        ("AWS_ENDPOINT_URL_LAMBDA", &settings.lambda_endpoint),
    ] {
        if let Some(v) = v {
            set(k, v);
        }
    }
    for (k, v) in &function.environment {
        set(k, v);
    }
    let name = function.name.as_str();
    // RIE parses the timeout as an integer and panics on anything else: whole seconds, rounded up.
    let timeout = function.timeout.as_millis().div_ceil(1000).max(1);
    set("AWS_LAMBDA_FUNCTION_NAME", name);
    set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
    set(
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        &function.memory_size.to_string(),
    );
    set("AWS_LAMBDA_FUNCTION_TIMEOUT", &timeout.to_string());
    set("AWS_LAMBDA_LOG_GROUP_NAME", &format!("/aws/lambda/{name}"));
    set("AWS_LAMBDA_LOG_STREAM_NAME", "$LATEST");
    set(
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        if provisioned {
            "provisioned-concurrency"
        } else {
            "on-demand"
        },
    );
    set("AWS_REGION", &settings.region);
    set("AWS_ACCOUNT_ID", &settings.account_id);
    set(STATE_MARKER, &settings.state_dir.to_string_lossy());
    set(ENV_MARKER, env_id);
    env
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use esb_model::{FunctionName, RuntimeSpec, ScalingSpec};

    use super::*;

    fn function() -> FunctionSpec {
        FunctionSpec {
            name: FunctionName::new("orders"),
            runtime: RuntimeSpec::Process {
                command: vec!["./bootstrap".into()],
                working_dir: None,
            },
            timeout: Duration::from_millis(2500),
            memory_size: 256,
            environment: [
                ("TABLE", "t1"),
                ("AWS_ENDPOINT_URL_S3", "http://mine:9000"),
                ("AWS_LAMBDA_FUNCTION_NAME", "spoofed"),
                ("PATH", "/opt/bin"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            scaling: ScalingSpec::default(),
            schedules: vec![],
        }
    }

    fn settings() -> ControlSettings {
        ControlSettings {
            base_env: vec![
                ("PATH".into(), "/usr/bin".into()),
                ("HOME".into(), "/root".into()),
            ],
            s3_endpoint: Some("http://127.0.0.1:9000".into()),
            dynamodb_endpoint: Some("http://127.0.0.1:8001".into()),
            ..ControlSettings::new("/usr/bin/esb-rie".into(), "/run/esb".into())
        }
    }

    #[test]
    fn lambda_variables_user_variables_and_precedence() {
        let env = build(&function(), &settings(), "env-3", false);
        let get = |k: &str| env.get(k).map(String::as_str);
        assert_eq!(get("AWS_LAMBDA_FUNCTION_NAME"), Some("orders"), "reserved");
        assert_eq!(get("AWS_LAMBDA_FUNCTION_TIMEOUT"), Some("3"), "rounded up");
        assert_eq!(get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), Some("256"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_VERSION"), Some("$LATEST"));
        assert_eq!(get("AWS_LAMBDA_LOG_GROUP_NAME"), Some("/aws/lambda/orders"));
        assert_eq!(get("AWS_LAMBDA_INITIALIZATION_TYPE"), Some("on-demand"));
        assert_eq!(get("AWS_REGION"), Some("ap-northeast-1"));
        assert_eq!(get("AWS_DEFAULT_REGION"), Some("ap-northeast-1"));
        assert_eq!(get("AWS_ACCOUNT_ID"), Some("123456789012"));
        assert_eq!(get("TABLE"), Some("t1"));
        assert_eq!(
            get("AWS_ENDPOINT_URL_S3"),
            Some("http://mine:9000"),
            "function wins"
        );
        assert_eq!(
            get("AWS_ENDPOINT_URL_DYNAMODB"),
            Some("http://127.0.0.1:8001")
        );
        assert_eq!(get("AWS_ENDPOINT_URL_LAMBDA"), None);
        assert_eq!(
            get("PATH"),
            Some("/opt/bin"),
            "function wins over esb's own"
        );
        assert_eq!(get("HOME"), Some("/root"));
        assert_eq!(get(STATE_MARKER), Some("/run/esb"));
        assert_eq!(get(ENV_MARKER), Some("env-3"));
        let pre = build(&function(), &settings(), "env-4", true);
        assert_eq!(
            pre["AWS_LAMBDA_INITIALIZATION_TYPE"],
            "provisioned-concurrency"
        );
    }
}
