//! What a run records (latency histogram, outcomes) and the JSON report made from it.
//!
//! Each thread records into its own [`Recorder`]; the recorders are merged (histograms added,
//! never percentiles averaged) before the report is built.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::client::Failure;

/// Latencies are recorded in microseconds, from 1 µs to 10 minutes, 3 significant digits.
const MAX_LATENCY_US: u64 = 600_000_000;

/// One thread's (or, merged, the run's) observations of the measured window.
#[derive(Clone, Debug)]
pub struct Recorder {
    /// Latency of the 2xx/3xx responses.
    pub ok: Histogram<u64>,
    /// Latency of all responses, errors included (a fast 502 is not a fast success).
    pub all: Histogram<u64>,
    /// Open model: how late the load generator itself sent requests whose connection was free
    /// at the intended time. Large values mean the generator, not the server, was behind.
    pub send_lag: Histogram<u64>,
    pub status: BTreeMap<u16, u64>,
    pub connect_errors: u64,
    pub io_errors: u64,
    pub timeouts: u64,
    /// Scheduled in the measured window but not sent before the run's hard deadline.
    pub unsent: u64,
    /// Offset from the start at which the last measured response arrived.
    pub last_done: Duration,
}

impl Default for Recorder {
    fn default() -> Recorder {
        let hist =
            || Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds");
        Recorder {
            ok: hist(),
            all: hist(),
            send_lag: hist(),
            status: BTreeMap::new(),
            connect_errors: 0,
            io_errors: 0,
            timeouts: 0,
            unsent: 0,
            last_done: Duration::ZERO,
        }
    }
}

impl Recorder {
    /// A response arrived `latency` after the request was meant (open) or sent (closed).
    pub fn response(&mut self, status: u16, latency: Duration, done_at: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        self.all.saturating_record(us);
        if (200..400).contains(&status) {
            self.ok.saturating_record(us);
        }
        *self.status.entry(status).or_default() += 1;
        self.last_done = self.last_done.max(done_at);
    }

    /// A send that left `lag` after its intended time on a connection that was free by then.
    pub fn send_lag(&mut self, lag: Duration) {
        self.send_lag
            .saturating_record((lag.as_micros() as u64).clamp(1, MAX_LATENCY_US));
    }

    /// The request failed without a response.
    pub fn failure(&mut self, failure: Failure, done_at: Duration) {
        match failure {
            Failure::Connect => self.connect_errors += 1,
            Failure::Io => self.io_errors += 1,
            Failure::Timeout => self.timeouts += 1,
        }
        self.last_done = self.last_done.max(done_at);
    }

    pub fn merge(&mut self, other: &Recorder) {
        self.ok.add(&other.ok).expect("same bounds");
        self.all.add(&other.all).expect("same bounds");
        self.send_lag.add(&other.send_lag).expect("same bounds");
        for (status, n) in &other.status {
            *self.status.entry(*status).or_default() += n;
        }
        self.connect_errors += other.connect_errors;
        self.io_errors += other.io_errors;
        self.timeouts += other.timeouts;
        self.unsent += other.unsent;
        self.last_done = self.last_done.max(other.last_done);
    }

    fn ok_count(&self) -> u64 {
        self.ok.len()
    }

    fn error_count(&self) -> u64 {
        let bad_status: u64 = self
            .status
            .iter()
            .filter(|(s, _)| !(200..400).contains(*s))
            .map(|(_, n)| n)
            .sum();
        bad_status + self.connect_errors + self.io_errors + self.timeouts + self.unsent
    }
}

/// How the run was set up, copied into the report.
#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    pub label: String,
    pub urls: Vec<String>,
    /// `open` (constant rate), `closed` (back to back) or `burst`.
    pub model: &'static str,
    pub connections: usize,
    pub threads: usize,
    pub cores: Vec<usize>,
    /// Requested total rate (open model), requests/s.
    pub rate_requested: Option<f64>,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub tls: bool,
    pub login: bool,
    pub method: String,
    pub body_bytes: usize,
    pub started_unix_ms: u128,
}

/// Latency summary in microseconds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub stdev: f64,
    pub p50: u64,
    pub p75: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub p99_99: u64,
    pub max: u64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency {
                count: 0,
                min: 0,
                mean: 0.0,
                stdev: 0.0,
                p50: 0,
                p75: 0,
                p90: 0,
                p99: 0,
                p99_9: 0,
                p99_99: 0,
                max: 0,
            };
        }
        let q = |p: f64| h.value_at_quantile(p);
        Latency {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            stdev: h.stdev(),
            p50: q(0.5),
            p75: q(0.75),
            p90: q(0.9),
            p99: q(0.99),
            p99_9: q(0.999),
            p99_99: q(0.9999),
            max: h.max(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Errors {
    /// Responses with a status outside 2xx/3xx, by status.
    pub status: BTreeMap<String, u64>,
    pub connect: u64,
    pub io: u64,
    pub timeout: u64,
    pub unsent: u64,
}

/// The JSON document one run writes.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub info: RunInfo,
    /// Responses (any status) per second over the measured window.
    pub rate_achieved: f64,
    /// Requests the measured window scheduled (open) or sent (closed/burst).
    pub requests: u64,
    pub ok: u64,
    pub errors_total: u64,
    pub error_rate: f64,
    pub errors: Errors,
    /// All statuses seen, successes included.
    pub status_counts: BTreeMap<String, u64>,
    /// Latency of successful responses, µs.
    pub latency_us: Latency,
    /// Latency of all responses (errors included), µs.
    pub latency_all_us: Latency,
    /// Open model: the load generator's own lateness on free connections, µs (see
    /// [`Recorder::send_lag`]); empty for the closed and burst models.
    pub send_lag_us: Latency,
    /// Wall time from the first send to the last response (burst model), ms.
    pub time_to_last_response_ms: Option<f64>,
    /// The `.hgrm`-style percentile spectrum of successful responses:
    /// `[value_us, percentile, total_count]`, 5 ticks per half distance.
    pub spectrum: Vec<(u64, f64, u64)>,
    /// The raw histogram of successful responses (`[value_us, count]` per non-empty bucket), so
    /// runs can be merged losslessly later.
    pub histogram: Vec<(u64, u64)>,
}

impl Report {
    /// `scheduled` is how many requests the measured window held; `window` is the measured
    /// window's nominal length.
    pub fn build(info: RunInfo, rec: &Recorder, scheduled: u64, window: Duration) -> Report {
        let responses: u64 = rec.status.values().sum();
        // A server that falls behind finishes the window's requests late; divide by the real time.
        let elapsed = window
            .max(
                rec.last_done
                    .saturating_sub(Duration::from_secs_f64(info.warmup_s)),
            )
            .as_secs_f64();
        let errors_total = rec.error_count();
        let attempts = responses + rec.connect_errors + rec.io_errors + rec.timeouts;
        let requests = scheduled.max(attempts + rec.unsent);
        let spectrum = rec
            .ok
            .iter_quantiles(5)
            .map(|v| {
                (
                    rec.ok.highest_equivalent(v.value_iterated_to()),
                    v.quantile_iterated_to() * 100.0,
                    v.count_since_last_iteration(),
                )
            })
            .scan(0u64, |total, (value, pct, n)| {
                *total += n;
                Some((value, pct, *total))
            })
            .collect();
        let histogram = rec
            .ok
            .iter_recorded()
            .map(|v| {
                (
                    rec.ok.highest_equivalent(v.value_iterated_to()),
                    v.count_at_value(),
                )
            })
            .collect();
        let status_counts = rec
            .status
            .iter()
            .map(|(s, n)| (s.to_string(), *n))
            .collect();
        Report {
            rate_achieved: if elapsed > 0.0 {
                responses as f64 / elapsed
            } else {
                0.0
            },
            requests,
            ok: rec.ok_count(),
            errors_total,
            error_rate: if requests > 0 {
                errors_total as f64 / requests as f64
            } else {
                0.0
            },
            errors: Errors {
                status: rec
                    .status
                    .iter()
                    .filter(|(s, _)| !(200..400).contains(*s))
                    .map(|(s, n)| (s.to_string(), *n))
                    .collect(),
                connect: rec.connect_errors,
                io: rec.io_errors,
                timeout: rec.timeouts,
                unsent: rec.unsent,
            },
            status_counts,
            latency_us: Latency::of(&rec.ok),
            latency_all_us: Latency::of(&rec.all),
            send_lag_us: Latency::of(&rec.send_lag),
            time_to_last_response_ms: None,
            spectrum,
            histogram,
            info,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RunInfo {
        RunInfo {
            label: "t".into(),
            urls: vec![],
            model: "open",
            connections: 1,
            threads: 1,
            cores: vec![],
            rate_requested: Some(100.0),
            warmup_s: 1.0,
            duration_s: 1.0,
            tls: false,
            login: false,
            method: "GET".into(),
            body_bytes: 0,
            started_unix_ms: 0,
        }
    }

    #[test]
    fn merged_recorders_add_counts_and_keep_the_tail() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        for _ in 0..99 {
            a.response(200, Duration::from_micros(100), Duration::from_secs(1));
        }
        b.response(200, Duration::from_millis(50), Duration::from_secs(2));
        b.response(503, Duration::from_micros(10), Duration::from_secs(2));
        b.failure(Failure::Timeout, Duration::from_secs(2));
        a.merge(&b);
        assert_eq!(a.ok.len(), 100);
        assert_eq!(a.all.len(), 101);
        assert_eq!(a.error_count(), 2);
        assert_eq!(a.last_done, Duration::from_secs(2));
        let lat = Latency::of(&a.ok);
        assert_eq!(lat.p50, 100);
        // The one slow response is the top 1%: p99 is still fast, p99.9 and max see it.
        assert!(lat.p99_9 >= 49_000 && lat.max >= 49_000, "{lat:?}");
    }

    #[test]
    fn report_counts_errors_by_kind_and_rate_over_the_real_window() {
        let mut r = Recorder::default();
        for i in 0..90 {
            r.response(
                200,
                Duration::from_micros(200 + i),
                Duration::from_millis(1500),
            );
        }
        for _ in 0..8 {
            r.response(429, Duration::from_micros(50), Duration::from_millis(1900));
        }
        r.failure(Failure::Io, Duration::from_millis(1900));
        r.unsent = 1;
        let rep = Report::build(info(), &r, 100, Duration::from_secs(1));
        assert_eq!(rep.requests, 100);
        assert_eq!(rep.ok, 90);
        assert_eq!(rep.errors_total, 10);
        assert!((rep.error_rate - 0.1).abs() < 1e-9);
        assert_eq!(rep.errors.status["429"], 8);
        assert_eq!(rep.errors.io, 1);
        assert_eq!(rep.status_counts["200"], 90);
        assert!((rep.rate_achieved - 98.0).abs() < 1e-9);
        assert_eq!(rep.histogram.iter().map(|(_, n)| n).sum::<u64>(), 90);
        let last = rep.spectrum.last().unwrap();
        assert_eq!(last.2, 90);
        assert!((last.1 - 100.0).abs() < 1e-9);

        // Responses that finish after the window stretch the divisor.
        let mut late = Recorder::default();
        late.response(200, Duration::from_secs(1), Duration::from_secs(3));
        let rep = Report::build(info(), &late, 1, Duration::from_secs(1));
        assert!((rep.rate_achieved - 0.5).abs() < 1e-9);
    }
}
