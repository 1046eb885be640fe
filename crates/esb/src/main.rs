//! The `esb` binary: command line, config, logging, starting the planes and waiting for signals.
//! No request logic lives here; it only wires the crates together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use esb_config::Config;
use esb_dataplane::DataPlane;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[derive(Parser)]
#[command(
    name = "esb",
    version,
    about = "Edge Serverless Box: API Gateway + Lambda on your own box"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTPS until SIGTERM/SIGINT.
    Serve {
        /// esb.toml to load [default: config/esb.toml, or none with --template].
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        template: TemplateArgs,
        /// HTTPS listen address (overrides `server.listen`).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Admin listen address (overrides `server.admin_listen`).
        #[arg(long)]
        admin_listen: Option<SocketAddr>,
    },
    /// Write functions.yml, routing.yml, Dockerfiles and an esb.toml from a SAM template.
    Generate {
        #[command(flatten)]
        template: TemplateArgs,
        /// Folder to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Overwrite files that already exist.
        #[arg(long)]
        force: bool,
    },
    /// Read a password from stdin and print its argon2 PHC string (for `auth.users`).
    HashPassword,
}

#[derive(clap::Args)]
struct TemplateArgs {
    /// A SAM template to serve (replaces esb.toml's functions/routing/template).
    #[arg(long)]
    template: Option<PathBuf>,
    /// Template parameter values, `Key=Value` (several after one flag, or the flag repeated).
    #[arg(long, num_args = 1.., value_parser = parse_parameter)]
    parameter_overrides: Vec<(String, String)>,
    /// Leave out what esb cannot emulate (with a warning) instead of refusing the template.
    #[arg(long)]
    skip_unsupported: bool,
}

impl TemplateArgs {
    fn overrides(&self) -> esb_config::TemplateOverrides {
        esb_config::TemplateOverrides {
            template: self.template.clone(),
            parameter_overrides: self.parameter_overrides.iter().cloned().collect(),
            skip_unsupported: self.skip_unsupported,
        }
    }
}

fn parse_parameter(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not Key=Value")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            template,
            listen,
            admin_listen,
        } => serve(config, &template, listen, admin_listen),
        Command::Generate {
            template,
            out,
            force,
        } => generate(&template, &out, force),
        Command::HashPassword => match hash_password() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn serve(
    path: Option<PathBuf>,
    template: &TemplateArgs,
    listen: Option<SocketAddr>,
    admin: Option<SocketAddr>,
) -> ExitCode {
    let _log = init_tracing();
    let lookup = |name: &str| std::env::var(name).ok();
    let path = match (path, &template.template) {
        (Some(p), _) => Some(p),
        (None, Some(_)) => None,
        (None, None) => Some(PathBuf::from("config/esb.toml")),
    };
    let mut cfg = match Config::load_with(path.as_deref(), &template.overrides(), &lookup) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(a) = listen {
        cfg.server.listen = a;
    }
    if let Some(a) = admin {
        cfg.server.admin_listen = a;
    }
    match run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cfg: Config) -> anyhow::Result<()> {
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    for w in esb_dataplane::security_warnings(&cfg) {
        tracing::warn!("{w}");
    }
    let specs = cfg
        .functions
        .iter()
        .map(esb_pool::PoolSpec::from_function)
        .collect();
    let (control_tx, control_rx) = esb_pool::control_channel();
    let pool = esb_pool::PoolTable::new(specs, control_tx, std::time::Instant::now());

    let mut signals = Signals::new([SIGTERM, SIGINT]).context("installing signal handlers")?;
    let state_dir = cfg
        .runtime
        .state_dir
        .clone()
        .unwrap_or_else(|| default_state_dir(&cfg));
    // Opened first: it takes the queue directory's lock, so a second esb on the same state stops
    // here, before it listens.
    let queue = open_async_queue(&cfg, &state_dir)?;
    let sink: Arc<dyn esb_dataplane::AsyncInvocations> = Arc::new(QueueSink(queue.submitter()));
    // The data plane starts before the control plane so functions can be told its real port (the
    // config may say 0) and its certificate; requests that arrive meanwhile wait in the pool
    // table for the control plane like any cold start.
    let plane = DataPlane::start_with_events(&cfg, Arc::clone(&pool), Some(sink))
        .context("starting the data plane")?;
    let control = match chained_invocation_env(&cfg, &plane, &state_dir)
        .and_then(|chained| start_control(&cfg, Arc::clone(&pool), control_rx, chained))
    {
        Ok(c) => c,
        Err(e) => {
            plane.shutdown();
            plane.join();
            return Err(e);
        }
    };
    let asynchronous = queue
        .start(&cfg.functions, Arc::clone(&pool))
        .context("starting async invocations")?;
    let drivers: Vec<&str> = plane.drivers().iter().map(|d| d.as_str()).collect();
    tracing::info!(
        workers = drivers.len(),
        driver = drivers.first().copied().unwrap_or("none"),
        functions = cfg.functions.len(),
        routes = cfg.routes.len(),
        "esb listening on https://{}",
        plane.local_addr()
    );
    if let Some(fp) = plane.self_signed_fingerprint() {
        tracing::info!("self-signed certificate for localhost/127.0.0.1, SHA-256 fingerprint {fp}");
    }

    if let Some(sig) = signals.forever().next() {
        tracing::info!(signal = sig, "shutting down: finishing requests in flight");
    }
    plane.shutdown();
    // A second signal means "now".
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            std::process::exit(130);
        }
    });
    pool.close();
    plane.join();
    // Invocations already in an environment finish; the rest stay queued for the next start.
    asynchronous.shutdown(std::time::Instant::now() + SHUTDOWN_GRACE);
    control.shutdown(std::time::Instant::now() + SHUTDOWN_GRACE);
    tracing::info!("stopped");
    Ok(())
}

/// How long environments get to stop after the data plane drained.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Variables of esb's own environment that functions inherit; nothing else of it leaks to them.
const PASSED_THROUGH: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"];

/// The data plane's door to the durable async queue.
struct QueueSink(esb_async::Submitter);

impl esb_dataplane::AsyncInvocations for QueueSink {
    fn accept(
        &self,
        function: &str,
        payload: &[u8],
        client_context: Option<&str>,
        trace_id: Option<&str>,
    ) -> Result<(), String> {
        self.0
            .submit(function, payload, client_context, trace_id)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

fn open_async_queue(
    cfg: &Config,
    state_dir: &std::path::Path,
) -> anyhow::Result<esb_async::Opened> {
    let dir = cfg
        .asynchronous
        .queue_dir
        .clone()
        .unwrap_or_else(|| state_dir.join("async-queue"));
    let mut settings = esb_async::AsyncSettings {
        region: cfg.api.region.clone(),
        account_id: cfg.api.account_id.clone(),
        ..esb_async::AsyncSettings::new(dir.clone())
    };
    if let Some(delays) = cfg.asynchronous.retry_delays() {
        settings.retry.delays = delays;
    }
    let opened = esb_async::open(settings, &cfg.functions)
        .with_context(|| format!("opening the async queue in {}", dir.display()))?;
    if opened.recovered() > 0 {
        tracing::info!(
            count = opened.recovered(),
            "async invocations accepted before the last stop will run again"
        );
    }
    Ok(opened)
}

/// What functions need to call other functions through esb with unmodified AWS SDKs: the Invoke
/// API's URL (unless the config names one), dummy credentials (`[invoke] auth = "none"` checks
/// none; with SigV4 the function's own `environment` provides real ones and wins), and a CA bundle
/// with esb's certificate so the SDK verifies TLS. A function's `environment` overrides each.
struct ChainedEnv {
    lambda_endpoint: String,
    vars: Vec<(String, String)>,
}

fn chained_invocation_env(
    cfg: &Config,
    plane: &DataPlane,
    state_dir: &std::path::Path,
) -> anyhow::Result<ChainedEnv> {
    let addr = plane.local_addr();
    let host = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() || ip.is_loopback() => {
            "127.0.0.1".to_string()
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() || ip.is_loopback() => "[::1]".to_string(),
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let lambda_endpoint = cfg
        .runtime
        .lambda_endpoint
        .clone()
        .unwrap_or_else(|| format!("https://{host}:{}", addr.port()));
    // esb's certificate plus the system's roots, so calls to real AWS endpoints still verify.
    let mut bundle = plane.certificate_pem().to_string();
    for system in [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ] {
        if let Ok(roots) = std::fs::read_to_string(system) {
            bundle.push_str(&roots);
            break;
        }
    }
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating the state directory {}", state_dir.display()))?;
    let path = state_dir.join("esb-ca.pem");
    let tmp = state_dir.join("esb-ca.pem.tmp");
    std::fs::write(&tmp, bundle)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("writing {}", path.display()))?;
    let vars = vec![
        (
            "AWS_CA_BUNDLE".to_string(),
            path.to_string_lossy().into_owned(),
        ),
        ("AWS_ACCESS_KEY_ID".to_string(), "esb-local".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), "esb-local".to_string()),
    ];
    Ok(ChainedEnv {
        lambda_endpoint,
        vars,
    })
}

fn start_control(
    cfg: &Config,
    pool: Arc<esb_pool::PoolTable>,
    commands: esb_pool::ControlReceiver,
    chained: ChainedEnv,
) -> anyhow::Result<esb_control::ControlHandle> {
    let exe = std::env::current_exe().context("locating the esb binary")?;
    let rie = esb_control::process::default_rie_binary(&exe);
    let mut base_env: Vec<(String, String)> = PASSED_THROUGH
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    base_env.extend(chained.vars);
    let mut settings =
        esb_control::ControlSettings::from_config(cfg, rie, default_state_dir(cfg), base_env);
    settings.lambda_endpoint = Some(chained.lambda_endpoint);
    // Like the docker CLI: `[docker] socket` wins, then DOCKER_HOST, then the default socket.
    if cfg.docker.socket.is_none()
        && let Ok(host) = std::env::var("DOCKER_HOST")
        && !host.is_empty()
    {
        settings.docker.options.host = host;
    }
    let control = esb_control::spawn(settings, cfg.functions.clone(), pool, commands)
        .context("starting the control plane")?;
    if control.leftovers_killed() > 0 {
        tracing::warn!(
            killed = control.leftovers_killed(),
            "stopped environments left behind by a previous esb that was killed"
        );
    }
    if let Some(addr) = control.admin_addr() {
        tracing::info!("admin endpoint on http://{addr}/admin/pools");
    }
    Ok(control)
}

/// One state directory per deployment (config file + listen address), so restarts of the same
/// esb find their leftovers while independent instances never share one.
fn default_state_dir(cfg: &Config) -> std::path::PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::fs::canonicalize(&cfg.source)
        .unwrap_or_else(|_| cfg.source.clone())
        .hash(&mut h);
    cfg.server.listen.hash(&mut h);
    let user = std::env::var("USER").unwrap_or_else(|_| "esb".into());
    std::env::temp_dir()
        .join(format!("esb-{user}"))
        .join(format!("{:016x}", h.finish()))
}

fn init_tracing() -> tracing_appender::non_blocking::WorkerGuard {
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .init();
    guard
}

/// `esb generate`: exit 2 for a template esb refuses or files that are in the way.
fn generate(template: &TemplateArgs, out: &std::path::Path, force: bool) -> ExitCode {
    let Some(path) = &template.template else {
        eprintln!("error: esb generate needs --template");
        return ExitCode::from(2);
    };
    let src = esb_config::TemplateSource {
        path: path.clone(),
        parameter_overrides: template.parameter_overrides.iter().cloned().collect(),
        skip_unsupported: template.skip_unsupported,
    };
    let imported = match esb_config::import_template(&src) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for w in &imported.warnings {
        eprintln!("warning: {}: {w}", path.display());
    }
    let g = esb_config::generate_from_template(&imported);
    let mut files = vec![
        (out.join("functions.yml"), g.functions_yml),
        (out.join("routing.yml"), g.routing_yml),
    ];
    for d in g.dockerfiles {
        files.push((out.join(d.function.as_str()).join("Dockerfile"), d.text));
    }
    let toml = out.join("esb.toml");
    if toml.exists() {
        eprintln!(
            "note: {} exists and is left as is; it must name functions.yml and routing.yml{}",
            toml.display(),
            if imported.authorizers.is_empty() {
                String::new()
            } else {
                " and declare the template's [[authorizers]]".to_string()
            }
        );
    } else {
        files.push((toml, g.esb_toml));
    }
    if !force {
        let existing: Vec<String> = files
            .iter()
            .filter(|(p, _)| p.exists())
            .map(|(p, _)| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            eprintln!(
                "error: would overwrite {} (pass --force to overwrite)",
                existing.join(", ")
            );
            return ExitCode::from(2);
        }
    }
    for (p, text) in &files {
        let written = p
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(p, text));
        if let Err(e) = written {
            eprintln!("error: writing {}: {e}", p.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", p.display());
    }
    ExitCode::SUCCESS
}

/// Reads one password (the first line of stdin, without its line ending) and prints its argon2id
/// PHC string.
fn hash_password() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    anyhow::ensure!(!password.is_empty(), "empty password on stdin");
    println!("{}", esb_auth::hash_password(password)?);
    Ok(())
}
