//! `rie-compare`: invocations/s and latency percentiles of one warm `esb-rie` + `echo` against
//! AWS's RIE + `echo`, on the same machine, with the same client, in one run.
//!
//! Both emulators host the same release-built `echo` (lambda_runtime). The client is one
//! keep-alive connection sending invokes back to back (the way a gateway drives one
//! environment), so throughput is 1 / per-invoke latency and the figures compare the emulators'
//! own overhead.
//!
//! ```text
//! cargo run --release -p rie-compare -- [--invokes N] [--warmup N] [--rounds N] [--connections N]
//! ```

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use esb_testkit::{Child, Profile, cargo_bin_with, free_port, install, wait_for_port};
use hdrhistogram::Histogram;

const INVOKE: &str = "/2015-03-31/functions/function/invocations";

struct Args {
    invokes: u64,
    warmup: u64,
    rounds: u32,
    /// Keep-alive connections used in strict rotation (2 = the HAProxy pattern that crashed AWS's
    /// RIE: the next invoke on another connection right after the previous answer).
    connections: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        invokes: 20_000,
        warmup: 2_000,
        rounds: 1,
        connections: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || -> anyhow::Result<u64> {
            it.next()
                .with_context(|| format!("{flag} needs a value"))?
                .parse()
                .with_context(|| format!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--invokes" => args.invokes = value()?,
            "--warmup" => args.warmup = value()?,
            "--rounds" => args.rounds = u32::try_from(value()?)?,
            "--connections" => args.connections = usize::try_from(value()?)?.max(1),
            "-h" | "--help" => {
                println!("rie-compare [--invokes N] [--warmup N] [--rounds N] [--connections N]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(args)
}

struct Measured {
    name: &'static str,
    per_sec: f64,
    hist: Histogram<u64>,
}

fn measure(
    name: &'static str,
    emulator: &PathBuf,
    echo: &PathBuf,
    args: &Args,
) -> anyhow::Result<Measured> {
    let port = free_port();
    let runtime_port = free_port();
    let mut cmd = Command::new(emulator);
    cmd.arg("--runtime-interface-emulator-address")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--runtime-api-address")
        .arg(format!("127.0.0.1:{runtime_port}"))
        .arg("--log-level")
        .arg("error")
        .arg(echo)
        .env("AWS_LAMBDA_FUNCTION_TIMEOUT", "30");
    let child = Child::spawn(name, cmd)?;
    wait_for_port(port, Duration::from_secs(30))?;
    let mut clients = (0..args.connections)
        .map(|_| esb_testkit::http::Client::connect(port))
        .collect::<Result<Vec<_>, _>>()?;
    let body = br#"{"path":"/bench","httpMethod":"GET","queryStringParameters":{"q":"1"}}"#;
    let mut turn = 0;
    let mut invoke = || -> anyhow::Result<()> {
        turn = (turn + 1) % clients.len();
        let r = clients[turn]
            .post(INVOKE, &[], body)
            .with_context(|| format!("{name} invoke failed\n{}", child.log()))?;
        if r.status != 200 {
            bail!("{name}: status {}: {}\n{}", r.status, r.text(), child.log());
        }
        Ok(())
    };
    for _ in 0..args.warmup {
        invoke()?;
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let start = Instant::now();
    for _ in 0..args.invokes {
        let t = Instant::now();
        invoke()?;
        hist.record(t.elapsed().as_micros().max(1) as u64)?;
    }
    let elapsed = start.elapsed();
    Ok(Measured {
        name,
        per_sec: args.invokes as f64 / elapsed.as_secs_f64(),
        hist,
    })
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    eprintln!("building release esb-rie and echo, installing AWS's RIE ...");
    let esb = cargo_bin_with("esb-rie", "esb-rie", Profile::Release);
    let echo = cargo_bin_with("esb-echo", "echo", Profile::Release);
    let aws = install::aws_rie();
    println!(
        "{:<8} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "emulator", "inv/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    let mut results = Vec::new();
    for _ in 0..args.rounds {
        // AWS first, then esb-rie: any warm-up advantage of the machine goes to AWS.
        for (name, bin) in [("aws-rie", &aws), ("esb-rie", &esb)] {
            let m = measure(name, bin, &echo, &args)?;
            let q = |p: f64| m.hist.value_at_quantile(p) as f64 / 1000.0;
            println!(
                "{:<8} {:>10.0} {:>10.3} {:>10.3} {:>10.3} {:>10.3}",
                m.name,
                m.per_sec,
                q(0.5),
                q(0.9),
                q(0.99),
                m.hist.max() as f64 / 1000.0
            );
            results.push(m);
        }
    }
    let mean = |name: &str| {
        let rs: Vec<_> = results.iter().filter(|m| m.name == name).collect();
        let per_sec = rs.iter().map(|m| m.per_sec).sum::<f64>() / rs.len() as f64;
        let p99 = rs
            .iter()
            .map(|m| m.hist.value_at_quantile(0.99) as f64 / 1000.0)
            .sum::<f64>()
            / rs.len() as f64;
        (per_sec, p99)
    };
    let (aws_rate, aws_p99) = mean("aws-rie");
    let (esb_rate, esb_p99) = mean("esb-rie");
    println!(
        "esb-rie/aws-rie throughput: {:.2}x; p99 {:.3} ms vs {:.3} ms",
        esb_rate / aws_rate,
        esb_p99,
        aws_p99
    );
    Ok(())
}
