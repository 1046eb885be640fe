//! The command line and environment of AWS's RIE (classic mode), parsed into [`Settings`].
//!
//! Parsing mirrors RIE's go-flags setup with `IgnoreUnknown`: known options are taken wherever
//! they appear, unknown ones stay in the bootstrap command, `--` ends option parsing.

use std::path::PathBuf;

/// Everything esb-rie needs to run, from the command line and the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub emulator_address: String,
    pub runtime_api_address: String,
    pub log_level: String,
    /// The runtime command; the first element is the program.
    pub command: Vec<String>,
    pub cwd: PathBuf,
    pub handler: Option<String>,
    pub timeout_secs: u64,
    pub memory_mb: String,
    pub function_name: String,
    pub function_version: String,
}

pub const USAGE: &str = "\
usage: esb-rie [--log-level LEVEL] [--runtime-api-address HOST:PORT]
               [--runtime-interface-emulator-address HOST:PORT] [bootstrap-cmd [args...] [handler]]

A drop-in for AWS's Lambda Runtime Interface Emulator.
  --runtime-interface-emulator-address  invoke endpoint listener (default 0.0.0.0:8080)
  --runtime-api-address                 Runtime API listener for the runtime (default 127.0.0.1:9001)
  --log-level                           error, warn, info (default), debug, trace; overrides LOG_LEVEL
With no bootstrap command, the first of /var/task/bootstrap, /opt/bootstrap, /var/runtime/bootstrap
that exists runs in /var/task. With two or more arguments, the last one is the handler.
Environment: AWS_LAMBDA_FUNCTION_TIMEOUT (s, default 300), AWS_LAMBDA_FUNCTION_MEMORY_SIZE (3008),
AWS_LAMBDA_FUNCTION_NAME (test_function), AWS_LAMBDA_FUNCTION_VERSION ($LATEST),
AWS_LAMBDA_FUNCTION_HANDLER or _HANDLER (override the handler argument).
";

/// Where RIE looks for a bootstrap when no command is given, in order.
pub const BOOTSTRAP_SEARCH: [&str; 3] = [
    "/var/task/bootstrap",
    "/opt/bootstrap",
    "/var/runtime/bootstrap",
];

/// Why the command line was not accepted (the user's fault).
#[derive(Debug, PartialEq, Eq)]
pub enum CliError {
    Help,
    MissingValue(String),
    BadEnv { name: &'static str, value: String },
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Help => f.write_str(USAGE),
            CliError::MissingValue(flag) => write!(f, "option {flag} needs a value\n\n{USAGE}"),
            CliError::BadEnv { name, value } => {
                write!(f, "{name}={value:?} is not a whole number of seconds")
            }
        }
    }
}

/// Parses `args` (without the program name). `env` looks up an environment variable;
/// `exists` says whether a file exists; `cwd` is the current directory.
pub fn parse(
    args: impl IntoIterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
    exists: impl Fn(&str) -> bool,
    cwd: PathBuf,
) -> Result<Settings, CliError> {
    let mut emulator_address = "0.0.0.0:8080".to_owned();
    let mut runtime_api_address = "127.0.0.1:9001".to_owned();
    let mut log_level = None;
    let mut positional = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--" {
            positional.extend(args.by_ref());
            break;
        }
        if arg == "-h" || arg == "--help" {
            return Err(CliError::Help);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let slot = match name.as_str() {
            "--runtime-interface-emulator-address" => &mut emulator_address,
            "--runtime-api-address" => &mut runtime_api_address,
            "--log-level" => log_level.insert(String::new()),
            // Accepted for compatibility; esb-rie has no init snapshotting.
            "--enable-init-caching" => continue,
            _ => {
                positional.push(arg);
                continue;
            }
        };
        *slot = match inline {
            Some(v) => v,
            None => args
                .next()
                .ok_or_else(|| CliError::MissingValue(name.clone()))?,
        };
    }

    let (command, cwd, arg_handler) = if positional.is_empty() {
        let bootstrap = BOOTSTRAP_SEARCH
            .iter()
            .find(|p| exists(p))
            .unwrap_or(&BOOTSTRAP_SEARCH[0]);
        (
            vec![bootstrap.to_string()],
            PathBuf::from("/var/task"),
            None,
        )
    } else {
        let handler = (positional.len() >= 2).then(|| positional[positional.len() - 1].clone());
        (positional, cwd, handler)
    };
    let handler = env("AWS_LAMBDA_FUNCTION_HANDLER")
        .or_else(|| env("_HANDLER"))
        .or(arg_handler);
    let timeout_secs = match env("AWS_LAMBDA_FUNCTION_TIMEOUT") {
        None => 300,
        Some(v) => v.trim().parse().map_err(|_| CliError::BadEnv {
            name: "AWS_LAMBDA_FUNCTION_TIMEOUT",
            value: v.clone(),
        })?,
    };
    Ok(Settings {
        emulator_address,
        runtime_api_address,
        log_level: log_level
            .or_else(|| env("LOG_LEVEL"))
            .unwrap_or_else(|| "info".to_owned())
            .to_lowercase(),
        command,
        cwd,
        handler,
        timeout_secs,
        memory_mb: env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").unwrap_or_else(|| "3008".to_owned()),
        function_name: env("AWS_LAMBDA_FUNCTION_NAME")
            .unwrap_or_else(|| "test_function".to_owned()),
        function_version: env("AWS_LAMBDA_FUNCTION_VERSION")
            .unwrap_or_else(|| "$LATEST".to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(args: &[&str], env: &[(&str, &str)]) -> Result<Settings, CliError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(
            args.iter().map(|s| s.to_string()),
            |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            |p| p == "/opt/bootstrap",
            PathBuf::from("/here"),
        )
    }

    #[test]
    fn defaults_search_for_a_bootstrap() {
        let s = parse_with(&[], &[]).unwrap();
        assert_eq!(s.emulator_address, "0.0.0.0:8080");
        assert_eq!(s.runtime_api_address, "127.0.0.1:9001");
        assert_eq!(s.command, vec!["/opt/bootstrap"]);
        assert_eq!(s.cwd, PathBuf::from("/var/task"));
        assert_eq!(s.handler, None);
        assert_eq!(s.timeout_secs, 300);
        assert_eq!(s.memory_mb, "3008");
        assert_eq!(s.function_name, "test_function");
        assert_eq!(s.function_version, "$LATEST");
        assert_eq!(s.log_level, "info");
    }

    #[test]
    fn flags_command_and_last_argument_as_handler() {
        let s = parse_with(
            &[
                "--log-level",
                "DEBUG",
                "--runtime-api-address=127.0.0.1:1",
                "--runtime-interface-emulator-address",
                "127.0.0.1:2",
                "python3",
                "-m",
                "awslambdaric",
                "handler.echo",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(s.log_level, "debug");
        assert_eq!(s.runtime_api_address, "127.0.0.1:1");
        assert_eq!(s.emulator_address, "127.0.0.1:2");
        assert_eq!(
            s.command,
            vec!["python3", "-m", "awslambdaric", "handler.echo"]
        );
        assert_eq!(s.cwd, PathBuf::from("/here"));
        assert_eq!(s.handler.as_deref(), Some("handler.echo"));
    }

    #[test]
    fn a_single_argument_is_not_a_handler() {
        let s = parse_with(&["./bootstrap"], &[]).unwrap();
        assert_eq!(s.handler, None);
    }

    #[test]
    fn handler_precedence_is_env_then_underscore_env_then_argument() {
        let both = [("AWS_LAMBDA_FUNCTION_HANDLER", "a.b"), ("_HANDLER", "c.d")];
        assert_eq!(
            parse_with(&["x", "e.f"], &both).unwrap().handler.as_deref(),
            Some("a.b")
        );
        assert_eq!(
            parse_with(&["x", "e.f"], &both[1..])
                .unwrap()
                .handler
                .as_deref(),
            Some("c.d")
        );
    }

    #[test]
    fn unknown_flags_stay_in_the_command_and_double_dash_ends_options() {
        let s = parse_with(
            &["--enable-init-caching", "--weird", "x", "--", "--log-level"],
            &[],
        )
        .unwrap();
        assert_eq!(s.command, vec!["--weird", "x", "--log-level"]);
        assert_eq!(s.log_level, "info");
    }

    #[test]
    fn environment_settings() {
        let s = parse_with(
            &[],
            &[
                ("AWS_LAMBDA_FUNCTION_TIMEOUT", "3"),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
                ("AWS_LAMBDA_FUNCTION_NAME", "fn"),
                ("AWS_LAMBDA_FUNCTION_VERSION", "7"),
                ("LOG_LEVEL", "warn"),
            ],
        )
        .unwrap();
        assert_eq!(
            (
                s.timeout_secs,
                s.memory_mb.as_str(),
                s.function_name.as_str()
            ),
            (3, "128", "fn")
        );
        assert_eq!(s.function_version, "7");
        assert_eq!(s.log_level, "warn");
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(
            parse_with(&["--log-level"], &[]),
            Err(CliError::MissingValue("--log-level".into()))
        );
        assert!(matches!(
            parse_with(&[], &[("AWS_LAMBDA_FUNCTION_TIMEOUT", "3s")]),
            Err(CliError::BadEnv { .. })
        ));
        assert_eq!(parse_with(&["-h"], &[]), Err(CliError::Help));
    }
}
