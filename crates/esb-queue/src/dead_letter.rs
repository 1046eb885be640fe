//! The dead-letter file: one JSON object per line for each invocation that failed every attempt,
//! written for people and tools to read (and replay) later.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::record::Enqueue;
use crate::{Id, QueueError, io_err};

/// One dead-lettered invocation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    pub id: u64,
    pub function: String,
    /// Attempts made, all failed.
    pub attempts: u32,
    /// When the last attempt failed, in Unix milliseconds.
    pub failed_at_ms: u64,
    /// The last attempt's error, as the caller described it.
    pub error: String,
    /// The payload when it is UTF-8 (it nearly always is JSON)...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// ...and base64 otherwise, so no byte is lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

impl DeadLetter {
    pub(crate) fn new(
        id: Id,
        e: &Enqueue<'_>,
        attempts: u32,
        failed_at_ms: u64,
        error: &str,
    ) -> Self {
        let (payload, payload_base64) = match std::str::from_utf8(e.payload) {
            Ok(s) => (Some(s.to_string()), None),
            Err(_) => (None, Some(STANDARD.encode(e.payload))),
        };
        DeadLetter {
            id: id.0,
            function: e.function.to_string(),
            attempts,
            failed_at_ms,
            error: error.to_string(),
            payload,
            payload_base64,
            client_context: e.client_context.map(str::to_string),
            trace_id: e.trace_id.map(str::to_string),
        }
    }

    /// The payload bytes, whichever way they were stored.
    pub fn payload_bytes(&self) -> Vec<u8> {
        match (&self.payload, &self.payload_base64) {
            (Some(s), _) => s.as_bytes().to_vec(),
            (None, Some(b)) => STANDARD.decode(b).unwrap_or_default(),
            (None, None) => Vec::new(),
        }
    }
}

/// Appends `entry` as one line and fsyncs, so the invocation may then leave the queue.
pub(crate) fn append(path: &Path, entry: &DeadLetter) -> Result<(), QueueError> {
    let mut line = serde_json::to_vec(entry).expect("strings and numbers always serialize");
    line.push(b'\n');
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(io_err(path))?;
    // A line a crash cut short must not swallow this one: start on a fresh line.
    let len = f.metadata().map_err(io_err(path))?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        f.read_exact_at(&mut last, len - 1).map_err(io_err(path))?;
        if last[0] != b'\n' {
            line.insert(0, b'\n');
        }
    }
    // One write call per line: with O_APPEND a line is never interleaved with another.
    f.write_all(&line).map_err(io_err(path))?;
    f.sync_data().map_err(io_err(path))
}

/// Reads a dead-letter file. Lines that do not parse (a line a crash cut short) are skipped; a
/// missing file is no entries.
pub fn read_dead_letters(path: &Path) -> Result<Vec<DeadLetter>, QueueError> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut out = Vec::new();
    for line in BufReader::new(f).lines() {
        let line = line.map_err(io_err(path))?;
        if let Ok(entry) = serde_json::from_str(&line) {
            out.push(entry);
        }
    }
    Ok(out)
}
