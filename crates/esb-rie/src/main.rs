//! `esb-rie`: a drop-in for AWS's Lambda Runtime Interface Emulator (classic mode).
//!
//! Same command line, environment, invoke endpoint and Runtime API as AWS's RIE (checked side by
//! side against the real binary in `tests/conformance.rs`), with deliberate differences listed in
//! docs/esb-rie.md. The main ones:
//!
//! - **An overlapping invoke is refused, not fatal.** While one invocation is in flight, another
//!   gets `429 Too Many Requests`, header `X-Amzn-ErrorType: TooManyRequestsException`, body
//!   `{"errorType":"TooManyRequestsException","errorMessage":"esb-rie runs one invocation at a
//!   time, ... invocation <id> is still in progress; retry when it has finished"}`. AWS's RIE
//!   panics and drops both callers.
//! - Function errors, timeouts, crashes and init errors carry `X-Amz-Function-Error: Unhandled`.
//! - The runtime's `Content-Type` reaches the caller.
//! - The caller is answered when the runtime posts `/response` (AWS's RIE waits for the next
//!   `/next`), and the slot is free in that same step, so back-to-back invokes over different
//!   connections never collide.
//!
//! The Runtime API state machine is the IO-free `esb-runtime-api` crate; this binary owns the
//! sockets, timers and processes.

mod capture;
mod cli;
mod log;
mod process;
mod server;

use std::process::ExitCode;

use anyhow::Context as _;
use tokio::net::TcpListener;

fn main() -> ExitCode {
    let settings = match cli::parse(
        std::env::args().skip(1),
        |name| std::env::var(name).ok(),
        |path| std::path::Path::new(path).exists(),
        std::env::current_dir().unwrap_or_else(|_| "/".into()),
    ) {
        Ok(s) => s,
        Err(cli::CliError::Help) => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("esb-rie: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("esb-rie: cannot start the event loop: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("esb-rie: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: cli::Settings) -> anyhow::Result<()> {
    let invoke = TcpListener::bind(&settings.emulator_address)
        .await
        .with_context(|| format!("listen on {}", settings.emulator_address))?;
    let runtime_api = TcpListener::bind(&settings.runtime_api_address)
        .await
        .with_context(|| format!("listen on {}", settings.runtime_api_address))?;
    let runtime_addr = runtime_api.local_addr()?;
    tracing::info!(
        "esb-rie listening: invoke http://{}/2015-03-31/functions/function/invocations, runtime API {}",
        invoke.local_addr()?,
        runtime_addr
    );
    let shared = server::Shared::new(settings, runtime_addr);
    tokio::spawn(server::serve(invoke, shared.clone(), server::Api::Invoke));
    tokio::spawn(server::serve(
        runtime_api,
        shared.clone(),
        server::Api::Runtime,
    ));

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
    shared.kill_runtime();
    Ok(())
}
