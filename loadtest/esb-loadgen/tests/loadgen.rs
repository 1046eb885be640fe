//! End-to-end checks of the `esb-loadgen` binary against small HTTP/1.1 servers on loopback:
//! request counts match the open-model schedule, errors are split by status, connections are
//! spread over the URLs, and a stalled server shows up in many samples (no coordinated omission).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

/// A keep-alive server: `/fail` answers 503, and the request numbered `stall_at` (counting
/// from 1 over the whole server) is answered after `stall`. Counts the requests it served.
struct Server {
    port: u16,
    served: Arc<AtomicU64>,
}

fn server(stall_at: u64, stall: Duration) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let counter = counter.clone();
            std::thread::spawn(move || serve(stream, &counter, stall_at, stall));
        }
    });
    Server { port, served }
}

fn serve(stream: TcpStream, served: &AtomicU64, stall_at: u64, stall: Duration) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let n = served.fetch_add(1, Ordering::SeqCst) + 1;
        if n == stall_at {
            std::thread::sleep(stall);
        }
        let status = if request_line.contains("/fail") {
            "503 Service Unavailable"
        } else {
            "200 OK"
        };
        let response = format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok");
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn loadgen(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_esb-loadgen"))
        .args(args)
        .args(["--cores", "none"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn open_model_sends_the_scheduled_requests_over_every_url() {
    let (a, b) = (server(0, Duration::ZERO), server(0, Duration::ZERO));
    let ua = format!("http://127.0.0.1:{}/ok", a.port);
    let ub = format!("http://127.0.0.1:{}/fail", b.port);
    let r = loadgen(&[
        "run",
        "--url",
        &ua,
        "--url",
        &ub,
        "--connections",
        "4",
        "--rate",
        "400",
        "--warmup",
        "0.25",
        "--duration",
        "1",
        "--method",
        "POST",
        "--body",
        "{}",
    ]);
    assert_eq!(r["model"], "open");
    assert_eq!(r["requests"], 400);
    // Connections alternate between the URLs, so each server got half of everything sent.
    assert_eq!(r["ok"], 200);
    assert_eq!(r["errors"]["status"]["503"], 200);
    assert_eq!(r["errors_total"], 200);
    assert_eq!(a.served.load(Ordering::SeqCst), 250);
    assert_eq!(b.served.load(Ordering::SeqCst), 250);
    let achieved = r["rate_achieved"].as_f64().unwrap();
    assert!((380.0..=420.0).contains(&achieved), "{achieved}");
    let hist: u64 = r["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_u64().unwrap())
        .sum();
    assert_eq!(hist, 200);
}

#[test]
fn a_stall_counts_against_every_request_it_delayed() {
    // One connection at 100/s: a 300 ms stall delays about 30 scheduled requests.
    let s = server(20, Duration::from_millis(300));
    let url = format!("http://127.0.0.1:{}/", s.port);
    let open = loadgen(&[
        "run",
        "--url",
        &url,
        "--rate",
        "100",
        "--warmup",
        "0",
        "--duration",
        "1.5",
    ]);
    let slow: u64 = open["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p[0].as_u64().unwrap() > 100_000)
        .map(|p| p[1].as_u64().unwrap())
        .sum();
    assert!(slow >= 15, "only {slow} samples above 100 ms: {open}");
    assert!(
        open["latency_us"]["p90"].as_u64().unwrap() > 100_000,
        "{open}"
    );
    // ...while the generator's own lateness on free connections stays small: the stall was the
    // server's.
    assert!(
        open["send_lag_us"]["p50"].as_u64().unwrap() < 5_000,
        "{open}"
    );

    // The closed model, measuring from the actual send, sees the stall once (a little slack for
    // a busy machine's own hiccups).
    let s = server(20, Duration::from_millis(300));
    let url = format!("http://127.0.0.1:{}/", s.port);
    let closed = loadgen(&["run", "--url", &url, "--warmup", "0", "--duration", "1"]);
    let slow: u64 = closed["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p[0].as_u64().unwrap() > 100_000)
        .map(|p| p[1].as_u64().unwrap())
        .sum();
    assert!((1..=3).contains(&slow), "{slow} slow samples: {closed}");
}

#[test]
fn burst_sends_one_request_per_connection_at_once() {
    let s = server(0, Duration::ZERO);
    let url = format!("http://127.0.0.1:{}/", s.port);
    let r = loadgen(&["burst", "--url", &url, "--connections", "20"]);
    assert_eq!(r["model"], "burst");
    assert_eq!(r["ok"], 20);
    assert!(r["time_to_last_response_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(s.served.load(Ordering::SeqCst), 20);
}

#[test]
fn login_token_goes_into_authorization_and_non_loopback_is_refused() {
    // A login endpoint that hands out a token, and a target that demands it.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let stream = stream.unwrap();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut head = Vec::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push(line);
                    }
                    let length = head
                        .iter()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let (status, reply) = if head[0].starts_with("POST /login") {
                        let good = head
                            .iter()
                            .any(|l| l.eq_ignore_ascii_case("x-api-key: k\r\n"))
                            && body == b"{\"u\":1}";
                        if good {
                            ("200 OK", r#"{"AuthenticationResult":{"IdToken":"tok123"}}"#)
                        } else {
                            ("400 Bad Request", "{}")
                        }
                    } else if head
                        .iter()
                        .any(|l| l.eq_ignore_ascii_case("authorization: Bearer tok123\r\n"))
                    {
                        ("200 OK", "{}")
                    } else {
                        ("401 Unauthorized", "{}")
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{reply}",
                        reply.len()
                    );
                    if writer.write_all(response.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let base = format!("http://127.0.0.1:{port}");
    let r = loadgen(&[
        "burst",
        "--url",
        &format!("{base}/api"),
        "--connections",
        "3",
        "--login-url",
        &format!("{base}/login"),
        "--login-header",
        "x-api-key: k",
        "--login-body",
        "{\"u\":1}",
    ]);
    assert_eq!(r["ok"], 3, "{r}");
    assert_eq!(r["login"], true);

    let out = Command::new(env!("CARGO_BIN_EXE_esb-loadgen"))
        .args(["burst", "--url", "http://192.0.2.1:80/", "--cores", "none"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback address"));
}
