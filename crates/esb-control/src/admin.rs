//! The admin listener (loopback by default): `GET /admin/pools` answers the pool table as JSON,
//! per function its environments (state, age, last use, pid) and counters. It runs on the
//! control thread, so an operator polling it never takes time from the data plane.

use std::sync::Arc;
use std::time::{Duration, Instant};

use esb_pool::PoolTable;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::control::PidMap;

const MAX_HEAD: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) async fn serve(listener: TcpListener, table: Arc<PoolTable>, pids: Arc<PidMap>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (table, pids) = (table.clone(), pids.clone());
        tokio::task::spawn_local(async move {
            let _ = tokio::time::timeout(READ_TIMEOUT, answer(stream, &table, &pids)).await;
        });
    }
}

async fn answer(mut stream: TcpStream, table: &PoolTable, pids: &PidMap) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let (method, path) = loop {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                break (
                    req.method.unwrap_or("").to_string(),
                    req.path.unwrap_or("").to_string(),
                );
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            _ => return respond(&mut stream, 400, "text/plain", b"bad request\n").await,
        }
    };
    let path = path.split('?').next().unwrap_or("");
    match (method.as_str(), path) {
        ("GET", "/admin/pools") => {
            let body = pools_json(table, pids);
            respond(&mut stream, 200, "application/json", body.as_bytes()).await
        }
        (_, "/admin/pools") => respond(&mut stream, 405, "text/plain", b"GET only\n").await,
        _ => respond(&mut stream, 404, "text/plain", b"not found\n").await,
    }
}

/// The table's snapshot with each ready environment's pid added.
pub(crate) fn pools_json(table: &PoolTable, pids: &PidMap) -> String {
    let mut v = serde_json::to_value(table.snapshot(Instant::now()))
        .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }));
    let pids: std::collections::HashMap<u64, u32> =
        pids.all().into_iter().map(|(e, p)| (e.0, p)).collect();
    if let Some(functions) = v.get_mut("functions").and_then(|f| f.as_array_mut()) {
        for f in functions {
            if let Some(envs) = f.get_mut("environments").and_then(|e| e.as_array_mut()) {
                for e in envs {
                    let pid = e
                        .get("id")
                        .and_then(|i| i.as_u64())
                        .and_then(|i| pids.get(&i));
                    e["pid"] = pid.map_or(serde_json::Value::Null, |p| (*p).into());
                }
            }
        }
    }
    let mut s = v.to_string();
    s.push('\n');
    s
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}
