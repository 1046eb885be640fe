//! Hot path: the START / END / REPORT lines RIE prints on stdout for every invocation.
//!
//! Each call is one `write_all` on stdout so lines from overlapping work never interleave.

use std::io::Write as _;
use std::time::Duration;

use esb_runtime_api::Outcome;

/// `START RequestId: <id> Version: <version>`, printed before the invocation is dispatched.
/// Returns the line, for an invocation whose log is kept.
pub fn start(request_id: &str, version: &str) -> String {
    let line = format!("START RequestId: {request_id} Version: {version}\n");
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
    line
}

/// `END` and `REPORT` in RIE's format (Init Duration before Duration, Billed = ceil(Duration)).
/// Returns the lines, for an invocation whose log is kept.
pub fn end_report(
    request_id: &str,
    init: Option<Duration>,
    elapsed: Duration,
    memory_mb: &str,
    outcome: &Outcome,
) -> String {
    let init = init
        .map(|d| format!("Init Duration: {:.2} ms\t", ms(d)))
        .unwrap_or_default();
    let duration = ms(elapsed);
    let status = match outcome {
        Outcome::Timeout { .. } => "Status: timeout\t",
        Outcome::RuntimeExit { .. } | Outcome::InitError { .. } => "Status: error\t",
        _ => "",
    };
    let lines = format!(
        "END RequestId: {request_id}\nREPORT RequestId: {request_id}\t{init}Duration: {duration:.2} ms\tBilled Duration: {:.0} ms\tMemory Size: {memory_mb} MB\tMax Memory Used: {memory_mb} MB\t{status}\n",
        duration.ceil()
    );
    let _ = std::io::stdout().lock().write_all(lines.as_bytes());
    lines
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
