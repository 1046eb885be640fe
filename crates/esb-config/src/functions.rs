//! `functions.yml`: the original ESB's format (`defaults` + `functions.<name>`) plus esb's runtime keys.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use esb_model::{FunctionName, FunctionSpec, RieSource, RuntimeSpec, ScalingSpec, ScheduleSpec};
use serde::Deserialize;

use crate::error::{ConfigError, find_line};
use crate::interpolate::Interpolator;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FunctionsFile {
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    functions: BTreeMap<String, FunctionEntry>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Defaults {
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    scaling: ScalingEntry,
    timeout: Option<Seconds>,
    memory_size: Option<u32>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct ScalingEntry {
    max_capacity: Option<u32>,
    min_capacity: Option<u32>,
    idle_timeout: Option<Seconds>,
    acquire_timeout: Option<Seconds>,
    max_queue: Option<u32>,
    reject_status: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionEntry {
    runtime: Option<RuntimeKind>,
    image: Option<String>,
    command: Option<Command>,
    working_dir: Option<PathBuf>,
    endpoint: Option<String>,
    rie: Option<RieKind>,
    timeout: Option<Seconds>,
    memory_size: Option<u32>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    scaling: ScalingEntry,
    #[serde(default)]
    events: Vec<EventEntry>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RuntimeKind {
    Process,
    Docker,
    Endpoint,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RieKind {
    Injected,
    Image,
}

/// `command: "python3 -m awslambdaric app.handler"` or `command: [python3, -m, ...]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Command {
    Line(String),
    Argv(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventEntry {
    schedule: ScheduleEntry,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleEntry {
    rate: Option<String>,
    cron: Option<String>,
    /// The original ESB wrote the event as a JSON string; a YAML mapping is accepted too.
    input: Option<serde_yaml_ng::Value>,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

/// Seconds as an integer or a float (`acquire_timeout: 30.0` in the original templates).
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
enum Seconds {
    Int(u64),
    Float(f64),
}

impl Seconds {
    fn to_duration(self) -> Result<Duration, String> {
        match self {
            Seconds::Int(s) => Ok(Duration::from_secs(s)),
            Seconds::Float(s) if (0.0..1e9).contains(&s) => Ok(Duration::from_secs_f64(s)),
            Seconds::Float(s) => Err(format!("{s} is not a valid number of seconds")),
        }
    }
}

/// Lambda's defaults where functions.yml says nothing.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
const DEFAULT_MEMORY_MB: u32 = 128;

pub(crate) fn parse(
    file: &Path,
    text: &str,
    base_dir: &Path,
    env: &Interpolator<'_>,
) -> Result<Vec<FunctionSpec>, ConfigError> {
    let raw: FunctionsFile = if text.trim().is_empty() {
        FunctionsFile::default()
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| ConfigError::from_yaml(file, &e))?
    };
    let mut out = Vec::with_capacity(raw.functions.len());
    for (name, entry) in raw.functions {
        let at = |reason: String| {
            ConfigError::new(
                file,
                find_line(text, &[&format!("{name}:")]),
                format!("function {name}: {reason}"),
            )
        };
        out.push(build_function(&name, entry, &raw.defaults, base_dir, env).map_err(at)?);
    }
    Ok(out)
}

fn build_function(
    name: &str,
    entry: FunctionEntry,
    defaults: &Defaults,
    base_dir: &Path,
    env: &Interpolator<'_>,
) -> Result<FunctionSpec, String> {
    validate_name(name)?;
    let runtime = build_runtime(&entry, base_dir, env)?;

    let mut environment = BTreeMap::new();
    for (k, v) in defaults.environment.iter().chain(entry.environment.iter()) {
        environment.insert(
            k.clone(),
            env.expand(v).map_err(|e| format!("environment {k}: {e}"))?,
        );
    }

    let d = &defaults.scaling;
    let s = &entry.scaling;
    let base = ScalingSpec::default();
    let dur = |v: Option<Seconds>, dv: Option<Seconds>, fallback: Duration, what: &str| {
        v.or(dv)
            .map(Seconds::to_duration)
            .transpose()
            .map(|d| d.unwrap_or(fallback))
            .map_err(|e| format!("scaling.{what}: {e}"))
    };
    let scaling = ScalingSpec {
        max_capacity: s
            .max_capacity
            .or(d.max_capacity)
            .unwrap_or(base.max_capacity),
        min_capacity: s
            .min_capacity
            .or(d.min_capacity)
            .unwrap_or(base.min_capacity),
        idle_timeout: dur(
            s.idle_timeout,
            d.idle_timeout,
            base.idle_timeout,
            "idle_timeout",
        )?,
        acquire_timeout: dur(
            s.acquire_timeout,
            d.acquire_timeout,
            base.acquire_timeout,
            "acquire_timeout",
        )?,
        max_queue: s.max_queue.or(d.max_queue).unwrap_or(base.max_queue),
        reject_status: s
            .reject_status
            .or(d.reject_status)
            .unwrap_or(base.reject_status),
    };
    if scaling.max_capacity == 0 {
        return Err("scaling.max_capacity must be at least 1".into());
    }
    if scaling.min_capacity > scaling.max_capacity {
        return Err(format!(
            "scaling.min_capacity ({}) is above max_capacity ({})",
            scaling.min_capacity, scaling.max_capacity
        ));
    }
    if !matches!(scaling.reject_status, 429 | 503) {
        return Err(format!(
            "scaling.reject_status must be 503 or 429, not {}",
            scaling.reject_status
        ));
    }

    let timeout = entry
        .timeout
        .or(defaults.timeout)
        .map(Seconds::to_duration)
        .transpose()
        .map_err(|e| format!("timeout: {e}"))?
        .unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() || timeout > Duration::from_secs(900) {
        return Err("timeout must be between 1 and 900 seconds (Lambda's range)".into());
    }
    let memory_size = entry
        .memory_size
        .or(defaults.memory_size)
        .unwrap_or(DEFAULT_MEMORY_MB);
    if !(128..=10240).contains(&memory_size) {
        return Err(format!(
            "memory_size must be between 128 and 10240 MB (Lambda's range), not {memory_size}"
        ));
    }

    let mut schedules = Vec::new();
    for (i, ev) in entry.events.into_iter().enumerate() {
        let sch = ev.schedule;
        let expression = match (sch.rate, sch.cron) {
            (Some(r), None) => normalise_expr(&r, "rate"),
            (None, Some(c)) => normalise_expr(&c, "cron"),
            _ => {
                return Err(format!(
                    "events[{i}].schedule needs exactly one of rate or cron"
                ));
            }
        };
        let input = match sch.input {
            None | Some(serde_yaml_ng::Value::Null) => None,
            Some(serde_yaml_ng::Value::String(s)) => Some(s),
            Some(other) => Some(yaml_to_json(&other).map_err(|e| format!("events[{i}]: {e}"))?),
        };
        schedules.push(ScheduleSpec {
            expression,
            input,
            enabled: sch.enabled,
        });
    }

    Ok(FunctionSpec {
        name: FunctionName::new(name),
        runtime,
        timeout,
        memory_size,
        environment,
        scaling,
        schedules,
    })
}

fn validate_name(name: &str) -> Result<(), String> {
    // Lambda's own rule; it also keeps names safe in ARNs, container names and URLs.
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err("names may only contain letters, digits, '-' and '_' (at most 64)".into())
    }
}

/// `rate: "5 minutes"` and `rate: "rate(5 minutes)"` both mean the latter.
fn normalise_expr(expr: &str, kind: &str) -> String {
    let e = expr.trim();
    if e.starts_with(&format!("{kind}(")) {
        e.to_string()
    } else {
        format!("{kind}({e})")
    }
}

fn build_runtime(
    entry: &FunctionEntry,
    base_dir: &Path,
    env: &Interpolator<'_>,
) -> Result<RuntimeSpec, String> {
    let kind = match entry.runtime {
        Some(k) => k,
        None if entry.endpoint.is_some() => RuntimeKind::Endpoint,
        None if entry.command.is_some() => RuntimeKind::Process,
        None if entry.image.is_some() => RuntimeKind::Docker,
        None => {
            return Err(
                "say how to run it: `command` (process), `image` (docker) or `endpoint`".into(),
            );
        }
    };
    match kind {
        RuntimeKind::Process => {
            let argv = match &entry.command {
                Some(Command::Argv(v)) => v.clone(),
                Some(Command::Line(l)) => l.split_whitespace().map(str::to_string).collect(),
                None => return Err("runtime process needs `command`".into()),
            };
            let mut argv = argv
                .iter()
                .map(|a| env.expand(a))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("command: {e}"))?;
            if argv.is_empty() {
                return Err("command is empty".into());
            }
            // A relative program path is relative to the config folder, so a copied folder works.
            if argv[0].starts_with("./") || argv[0].starts_with("../") {
                argv[0] = base_dir.join(&argv[0]).to_string_lossy().into_owned();
            }
            let working_dir = entry.working_dir.as_ref().map(|d| base_dir.join(d));
            Ok(RuntimeSpec::Process {
                command: argv,
                working_dir,
            })
        }
        RuntimeKind::Docker => {
            let image = entry.image.as_ref().ok_or("runtime docker needs `image`")?;
            let image = env.expand(image).map_err(|e| format!("image: {e}"))?;
            let rie = match entry.rie {
                Some(RieKind::Image) => RieSource::Image,
                Some(RieKind::Injected) | None => RieSource::Injected,
            };
            Ok(RuntimeSpec::Docker { image, rie })
        }
        RuntimeKind::Endpoint => {
            let url = entry
                .endpoint
                .as_ref()
                .ok_or("runtime endpoint needs `endpoint: http://HOST:PORT`")?;
            let url = env.expand(url).map_err(|e| format!("endpoint: {e}"))?;
            Ok(RuntimeSpec::Endpoint {
                addr: parse_endpoint(&url)?,
            })
        }
    }
}

/// `http://127.0.0.1:9000` (a path, if any, must be RIE's invoke path or empty).
fn parse_endpoint(url: &str) -> Result<SocketAddr, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("endpoint {url:?} must start with http:// (RIE speaks plain HTTP)")
    })?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if !(path.is_empty() || path == "/" || path == "/2015-03-31/functions/function/invocations") {
        return Err(format!("endpoint {url:?}: unexpected path {path:?}"));
    }
    hostport
        .to_socket_addrs()
        .map_err(|e| format!("endpoint {url:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("endpoint {url:?} resolves to no address"))
}

fn yaml_to_json(v: &serde_yaml_ng::Value) -> Result<String, String> {
    serde_json::to_string(v).map_err(|e| format!("input is not representable as JSON: {e}"))
}
