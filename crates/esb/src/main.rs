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
        /// esb.toml to load.
        #[arg(long, default_value = "config/esb.toml")]
        config: PathBuf,
        /// HTTPS listen address (overrides `server.listen`).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Admin listen address (overrides `server.admin_listen`).
        #[arg(long)]
        admin_listen: Option<SocketAddr>,
    },
    /// Read a password from stdin and print its argon2 PHC string (for `auth.users`).
    HashPassword,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            listen,
            admin_listen,
        } => serve(&config, listen, admin_listen),
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
    path: &std::path::Path,
    listen: Option<SocketAddr>,
    admin: Option<SocketAddr>,
) -> ExitCode {
    let _log = init_tracing();
    let lookup = |name: &str| std::env::var(name).ok();
    let mut cfg = match Config::load(path, &lookup) {
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
    let control = start_control(&cfg, Arc::clone(&pool), control_rx)?;
    let plane = DataPlane::start(&cfg, Arc::clone(&pool)).context("starting the data plane")?;
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
    control.shutdown(std::time::Instant::now() + SHUTDOWN_GRACE);
    tracing::info!("stopped");
    Ok(())
}

/// How long environments get to stop after the data plane drained.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Variables of esb's own environment that functions inherit; nothing else of it leaks to them.
const PASSED_THROUGH: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"];

fn start_control(
    cfg: &Config,
    pool: Arc<esb_pool::PoolTable>,
    commands: esb_pool::ControlReceiver,
) -> anyhow::Result<esb_control::ControlHandle> {
    let exe = std::env::current_exe().context("locating the esb binary")?;
    let rie = esb_control::process::default_rie_binary(&exe);
    let base_env = PASSED_THROUGH
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    let mut settings =
        esb_control::ControlSettings::from_config(cfg, rie, default_state_dir(cfg), base_env);
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
