//! `esb-loadgen`: the load generator behind `loadtest/run.sh`.
//!
//! `run` drives N keep-alive connections (round-robin over one or more URLs) either at a fixed
//! total rate (open model, latency counted from each request's intended send time, so a stalled
//! server cannot hide its stall) or back to back (closed model). `burst` sends one request per
//! connection all at once (cold-start storms). Each thread runs its share of the connections on
//! its own single-threaded runtime, pinned to a chosen core; histograms are merged at the end and
//! the report is JSON with the full percentile spectrum and errors by kind and status.

mod client;
mod pacer;
mod schedule;
mod stats;

use std::cell::RefCell;
use std::net::TcpListener;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use http::{HeaderValue, header::AUTHORIZATION};
use tokio::task::LocalSet;
use tokio_rustls::TlsConnector;

use client::{Conn, Failure, RequestTemplate, Target};
use pacer::Pacer;
use schedule::{Phase, Schedule};
use stats::{Recorder, Report, RunInfo};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Load generator for esb's load tests (loopback targets only)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Open model with --rate, closed model without it.
    Run(RunArgs),
    /// One request per connection, all sent at the same moment (connections are opened first).
    Burst(Common),
    /// Prints N distinct free TCP ports on 127.0.0.1, one a line.
    FreePorts { n: usize },
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// Total requests per second over all connections (open model). Absent: closed model.
    #[arg(long)]
    rate: Option<f64>,
    /// Measured window, seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up before the measured window, seconds (sent, not recorded).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// After the window, how long connections that fell behind may still send their overdue
    /// requests, seconds; what is left then counts as `unsent`.
    #[arg(long, default_value_t = 2.0)]
    drain: f64,
}

#[derive(Args, Debug)]
struct Common {
    /// Target URL; repeat it to spread connections round-robin over several targets.
    #[arg(long = "url", required = true)]
    urls: Vec<String>,
    /// Connections (default: one per URL).
    #[arg(short, long)]
    connections: Option<usize>,
    #[arg(long, default_value = "GET")]
    method: String,
    /// Request header `name: value`; repeatable.
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// Request body.
    #[arg(long, conflicts_with = "body_file")]
    body: Option<String>,
    /// Request body from a file.
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// Log in first: POST this URL and send the token it returns as `Authorization`.
    #[arg(long)]
    login_url: Option<String>,
    #[arg(long, default_value = "")]
    login_body: String,
    /// Header for the login request `name: value`; repeatable.
    #[arg(long)]
    login_header: Vec<String>,
    /// JSON pointer of the token in the login response.
    #[arg(long, default_value = "/AuthenticationResult/IdToken")]
    token_pointer: String,
    /// Scheme put before the token in `Authorization` ("" sends the bare token).
    #[arg(long, default_value = "Bearer")]
    auth_scheme: String,
    /// The last stretch before each send, in µs, spent yielding instead of sleeping on a timerfd.
    /// Spinning keeps the thread runnable, so on a core shared with other work the scheduler
    /// preempts it for whole slices; 0 (the default) only sleeps.
    #[arg(long, default_value_t = 0)]
    spin_us: u64,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// Threads, each with its own runtime and share of the connections.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Cores to pin the threads to, comma-separated, used in turn; "none" to not pin.
    #[arg(long, default_value = "1")]
    cores: String,
    /// Name for this run in the report.
    #[arg(long, default_value = "run")]
    label: String,
    /// Write the JSON report here (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => {
            let report = run(&args)?;
            emit(&report, args.common.out.as_ref())
        }
        Command::Burst(common) => {
            let report = burst(&common)?;
            emit(&report, common.out.as_ref())
        }
        Command::FreePorts { n } => {
            let listeners = (0..n)
                .map(|_| TcpListener::bind("127.0.0.1:0"))
                .collect::<Result<Vec<_>, _>>()?;
            for l in &listeners {
                println!("{}", l.local_addr()?.port());
            }
            Ok(())
        }
    }
}

/// Everything a connection task needs, shared within one thread.
struct Plan {
    targets: Vec<Target>,
    template: RequestTemplate,
    tls: TlsConnector,
    timeout: Duration,
    connections: usize,
    spin: Duration,
}

impl Plan {
    fn new(common: &Common) -> anyhow::Result<(Plan, bool)> {
        let targets = common
            .urls
            .iter()
            .map(|u| Target::parse(u))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let body = match (&common.body, &common.body_file) {
            (Some(b), _) => Bytes::from(b.clone()),
            (None, Some(path)) => Bytes::from(
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
            ),
            (None, None) => Bytes::new(),
        };
        let mut template = RequestTemplate::new(&common.method, &common.headers, body)?;
        let tls = client::tls_connector()?;
        let timeout = Duration::from_secs_f64(common.timeout);
        let logged_in = if let Some(url) = &common.login_url {
            let token = login(common, url, &tls, timeout)?;
            let value = if common.auth_scheme.is_empty() {
                token
            } else {
                format!("{} {token}", common.auth_scheme)
            };
            template
                .headers
                .insert(AUTHORIZATION, HeaderValue::from_str(&value)?);
            true
        } else {
            false
        };
        let connections = common.connections.unwrap_or(targets.len()).max(1);
        Ok((
            Plan {
                targets,
                template,
                tls,
                timeout,
                connections,
                spin: Duration::from_micros(common.spin_us),
            },
            logged_in,
        ))
    }

    fn target(&self, conn: usize) -> &Target {
        &self.targets[conn % self.targets.len()]
    }

    fn info(&self, common: &Common, model: &'static str, logged_in: bool) -> RunInfo {
        RunInfo {
            label: common.label.clone(),
            urls: common.urls.clone(),
            model,
            connections: self.connections,
            threads: common.threads.max(1),
            cores: parse_cores(&common.cores).unwrap_or_default(),
            rate_requested: None,
            warmup_s: 0.0,
            duration_s: 0.0,
            tls: self.targets.iter().any(|t| t.https),
            login: logged_in,
            method: self.template.method.to_string(),
            body_bytes: self.template.body.len(),
            started_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
        }
    }
}

/// POSTs the login request and returns the token found at `--token-pointer`.
fn login(
    common: &Common,
    url: &str,
    tls: &TlsConnector,
    timeout: Duration,
) -> anyhow::Result<String> {
    let target = Target::parse(url)?;
    let mut headers = common.login_header.clone();
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("content-type"))
    {
        headers.push("content-type: application/x-amz-json-1.1".into());
    }
    let template = RequestTemplate::new("POST", &headers, Bytes::from(common.login_body.clone()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = LocalSet::new().block_on(&rt, async {
        let mut conn = Conn::open(&target, tls).await?;
        conn.exchange(&target, &template, timeout).await
    });
    let (status, body) = result.map_err(|f| anyhow::anyhow!("login request failed: {f:?}"))?;
    if status != 200 {
        bail!(
            "login answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let json: serde_json::Value =
        serde_json::from_slice(&body).context("login response is not JSON")?;
    json.pointer(&common.token_pointer)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .with_context(|| {
            format!(
                "no string at {} in the login response",
                common.token_pointer
            )
        })
}

fn parse_cores(spec: &str) -> anyhow::Result<Vec<usize>> {
    if spec == "none" || spec.is_empty() {
        return Ok(Vec::new());
    }
    spec.split(',')
        .map(|c| c.trim().parse().with_context(|| format!("bad core {c:?}")))
        .collect()
}

/// Runs `work(thread_index, local_connection_indices)` on each thread, pinned, and merges what
/// they record. Connections are opened before the shared start instant, which `work` receives.
fn on_threads<F, Fut>(common: &Common, plan: Arc<Plan>, work: F) -> anyhow::Result<Recorder>
where
    F: Fn(Arc<Plan>, Vec<(usize, Option<Conn>)>, Instant, Rc<RefCell<Recorder>>) -> Fut
        + Send
        + Sync
        + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let cores = parse_cores(&common.cores)?;
    // The main thread only waits, but it should not wake up on the servers' core either.
    if let Some(&id) = cores.first() {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
    let threads = common.threads.max(1);
    let barrier = Arc::new(Barrier::new(threads));
    let start = Arc::new(OnceLock::<Instant>::new());
    let work = Arc::new(work);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let core = (!cores.is_empty()).then(|| cores[t % cores.len()]);
            let (barrier, start, work, plan) =
                (barrier.clone(), start.clone(), work.clone(), plan.clone());
            std::thread::Builder::new()
                .name(format!("loadgen-{t}"))
                .spawn(move || -> anyhow::Result<Recorder> {
                    if let Some(id) = core
                        && !core_affinity::set_for_current(core_affinity::CoreId { id })
                    {
                        eprintln!("esb-loadgen: could not pin thread {t} to core {id}");
                    }
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    let local = LocalSet::new();
                    let mine: Vec<usize> = (t..plan.connections).step_by(threads).collect();
                    let conns = local.block_on(&rt, async {
                        let mut conns = Vec::new();
                        for i in mine {
                            let target = plan.target(i);
                            let conn =
                                tokio::time::timeout(plan.timeout, Conn::open(target, &plan.tls))
                                    .await
                                    .ok()
                                    .and_then(Result::ok);
                            conns.push((i, conn));
                        }
                        conns
                    });
                    barrier.wait();
                    let start = *start.get_or_init(|| Instant::now() + Duration::from_millis(5));
                    let rec = Rc::new(RefCell::new(Recorder::default()));
                    local.block_on(&rt, work(plan, conns, start, rec.clone()));
                    // Let hyper's connection tasks see their senders dropped before the runtime goes.
                    drop(local);
                    Ok(rec.take())
                })
                .map_err(anyhow::Error::from)
        })
        .collect::<anyhow::Result<_>>()?;
    let mut merged = Recorder::default();
    for h in handles {
        let rec = h
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
        merged.merge(&rec);
    }
    Ok(merged)
}

/// Sends one request on `conn`, opening it first if needed; drops it when it breaks.
async fn attempt(plan: &Plan, i: usize, conn: &mut Option<Conn>) -> Result<u16, Failure> {
    if conn.as_ref().is_some_and(Conn::is_closed) {
        *conn = None;
    }
    let target = plan.target(i);
    let c = match conn {
        Some(c) => c,
        None => {
            let opened = tokio::time::timeout(plan.timeout, Conn::open(target, &plan.tls))
                .await
                .unwrap_or(Err(Failure::Connect))?;
            conn.insert(opened)
        }
    };
    let result = c.exchange(target, &plan.template, plan.timeout).await;
    if result.is_err() {
        *conn = None;
    }
    result.map(|(status, _body)| status)
}

fn run(args: &RunArgs) -> anyhow::Result<Report> {
    let common = &args.common;
    let (plan, logged_in) = Plan::new(common)?;
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a positive number");
    }
    let warmup = Duration::from_secs_f64(args.warmup);
    let duration = Duration::from_secs_f64(args.duration);
    let drain = Duration::from_secs_f64(args.drain);
    let schedule = args.rate.map(|rate| Schedule {
        rate,
        connections: plan.connections,
        warmup,
        duration,
    });
    let mut info = plan.info(
        common,
        if schedule.is_some() { "open" } else { "closed" },
        logged_in,
    );
    info.rate_requested = args.rate;
    info.warmup_s = args.warmup;
    info.duration_s = args.duration;
    let handle = Arc::new(plan);
    let rec = match schedule {
        Some(schedule) => on_threads(common, handle, move |plan, conns, start, rec| {
            open_model(plan, conns, start, rec, schedule, drain)
        })?,
        None => on_threads(common, handle, move |plan, conns, start, rec| {
            closed_model(plan, conns, start, rec, warmup, duration)
        })?,
    };
    let scheduled = schedule.map_or(0, |s| s.measured_requests());
    let report = Report::build(info, &rec, scheduled, duration);
    Ok(report)
}

async fn open_model(
    plan: Arc<Plan>,
    conns: Vec<(usize, Option<Conn>)>,
    start: Instant,
    rec: Rc<RefCell<Recorder>>,
    schedule: Schedule,
    drain: Duration,
) {
    let deadline = start + schedule.warmup + schedule.duration + drain;
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|(i, mut conn)| {
            let (plan, rec) = (plan.clone(), rec.clone());
            tokio::task::spawn_local(async move {
                let pacer = Pacer::new(plan.spin);
                let mut free_since = start;
                for k in 0.. {
                    let offset = schedule.intended(i, k);
                    let phase = schedule.phase(offset);
                    if phase == Phase::Done {
                        break;
                    }
                    let intended = start + offset;
                    if Instant::now() >= deadline {
                        // Hopelessly behind: count what this connection never got to send.
                        let left = (k..)
                            .map(|k| schedule.phase(schedule.intended(i, k)))
                            .take_while(|p| *p != Phase::Done)
                            .filter(|p| *p == Phase::Measured)
                            .count();
                        rec.borrow_mut().unsent += left as u64;
                        break;
                    }
                    pacer.wait_until(intended).await;
                    let sent = Instant::now();
                    let result = attempt(&plan, i, &mut conn).await;
                    let done = Instant::now();
                    if phase == Phase::Measured {
                        let mut rec = rec.borrow_mut();
                        if free_since <= intended {
                            rec.send_lag(sent - intended);
                        }
                        match result {
                            Ok(status) => rec.response(status, done - intended, done - start),
                            Err(f) => rec.failure(f, done - start),
                        }
                    }
                    free_since = done;
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

async fn closed_model(
    plan: Arc<Plan>,
    conns: Vec<(usize, Option<Conn>)>,
    start: Instant,
    rec: Rc<RefCell<Recorder>>,
    warmup: Duration,
    duration: Duration,
) {
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|(i, mut conn)| {
            let (plan, rec) = (plan.clone(), rec.clone());
            tokio::task::spawn_local(async move {
                Pacer::new(plan.spin).wait_until(start).await;
                loop {
                    let sent = Instant::now();
                    let offset = sent - start;
                    if offset >= warmup + duration {
                        break;
                    }
                    let result = attempt(&plan, i, &mut conn).await;
                    let done = Instant::now();
                    if offset >= warmup {
                        let mut rec = rec.borrow_mut();
                        match result {
                            Ok(status) => rec.response(status, done - sent, done - start),
                            Err(f) => rec.failure(f, done - start),
                        }
                    }
                    if result == Err(Failure::Connect) {
                        // A dead server would otherwise turn this loop into a connect flood.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

fn burst(common: &Common) -> anyhow::Result<Report> {
    let (plan, logged_in) = Plan::new(common)?;
    let mut info = plan.info(common, "burst", logged_in);
    let connections = plan.connections;
    let handle = Arc::new(plan);
    let rec = on_threads(common, handle, |plan, conns, start, rec| async move {
        let tasks: Vec<_> = conns
            .into_iter()
            .map(|(i, mut conn)| {
                let (plan, rec) = (plan.clone(), rec.clone());
                tokio::task::spawn_local(async move {
                    Pacer::new(plan.spin).wait_until(start).await;
                    let result = attempt(&plan, i, &mut conn).await;
                    let done = Instant::now();
                    let mut rec = rec.borrow_mut();
                    match result {
                        Ok(status) => rec.response(status, done - start, done - start),
                        Err(f) => rec.failure(f, done - start),
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    })?;
    let window = rec.last_done.max(Duration::from_micros(1));
    info.duration_s = window.as_secs_f64();
    let mut report = Report::build(info, &rec, connections as u64, window);
    report.time_to_last_response_ms = Some(rec.last_done.as_secs_f64() * 1000.0);
    Ok(report)
}

/// Writes the JSON report and a one-line summary on stderr.
fn emit(report: &Report, out: Option<&PathBuf>) -> anyhow::Result<()> {
    let l = &report.latency_us;
    eprintln!(
        "{}: {} {} conns, rate {} -> {:.1}/s, ok {}, errors {} ({:.3}%) {:?}, p50 {} p90 {} p99 {} p99.9 {} max {} us; own send lag p99 {} us",
        report.info.label,
        report.info.model,
        report.info.connections,
        report
            .info
            .rate_requested
            .map_or("max".to_owned(), |r| format!("{r}/s")),
        report.rate_achieved,
        report.ok,
        report.errors_total,
        report.error_rate * 100.0,
        report.errors.status,
        l.p50,
        l.p90,
        l.p99,
        l.p99_9,
        l.max,
        report.send_lag_us.p99
    );
    let json = serde_json::to_string(report)?;
    match out {
        Some(path) => std::fs::write(path, json + "\n")
            .with_context(|| format!("writing {}", path.display()))?,
        None => println!("{json}"),
    }
    Ok(())
}
