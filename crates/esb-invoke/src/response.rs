//! The success side of an Invoke response: status and the `X-Amz-*` headers boto3 reads, and the
//! `X-Amz-Log-Result` tail. Hot path: once per Invoke response.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::{InvocationType, LogType};

/// How much of the end of the log `X-Amz-Log-Result` carries.
pub const LOG_TAIL_BYTES: usize = 4096;

/// `X-Amz-Log-Result`: base64 of the last 4 KB of `log`, starting on a UTF-8 character boundary
/// so the tail decodes as text.
pub fn log_result(log: &[u8]) -> String {
    let mut start = log.len().saturating_sub(LOG_TAIL_BYTES);
    // Skip continuation bytes (10xxxxxx) of a character cut by the 4 KB boundary; at most 3.
    while start < log.len() && start > 0 && (log[start] & 0xC0) == 0x80 {
        start += 1;
    }
    STANDARD.encode(&log[start..])
}

/// What a synchronous invocation produced, for its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome<'a> {
    /// The function failed (its payload is the error object).
    pub function_error: bool,
    /// `$LATEST` or the version number that ran.
    pub executed_version: &'a str,
    /// The invocation's log lines, for `X-Amz-Log-Type: Tail`.
    pub log: &'a [u8],
}

/// The status and headers of a successful Invoke answer. `outcome` is the sync result (ignored
/// for Event and DryRun, which have no body and no function result).
pub fn success_head(
    kind: InvocationType,
    log_type: LogType,
    outcome: Option<&SyncOutcome<'_>>,
) -> (u16, Vec<(&'static str, String)>) {
    let mut headers = Vec::new();
    if let (InvocationType::RequestResponse, Some(o)) = (kind, outcome) {
        headers.push(("Content-Type", "application/json".to_string()));
        headers.push(("X-Amz-Executed-Version", o.executed_version.to_string()));
        if o.function_error {
            headers.push(("X-Amz-Function-Error", "Unhandled".to_string()));
        }
        if log_type == LogType::Tail {
            headers.push(("X-Amz-Log-Result", log_result(o.log)));
        }
    }
    (kind.status(), headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> Vec<u8> {
        STANDARD.decode(s).unwrap()
    }

    #[test]
    fn short_logs_are_whole() {
        assert_eq!(log_result(b""), "");
        let log = b"START RequestId: 1\nhello\nEND RequestId: 1\n";
        assert_eq!(decode(&log_result(log)), log);
    }

    #[test]
    fn long_logs_keep_the_last_4k() {
        let mut log = b"head-that-is-cut ".repeat(300);
        log.extend_from_slice(b"THE END");
        let tail = decode(&log_result(&log));
        assert_eq!(tail.len(), 4096);
        assert!(tail.ends_with(b"THE END"));
        assert_eq!(tail, &log[log.len() - 4096..]);
    }

    #[test]
    fn the_cut_never_splits_a_character() {
        // 'é' is 2 bytes, '€' 3, '𝄞' 4: try every alignment of the 4 KB boundary.
        for ch in ["é", "€", "𝄞"] {
            for pad in 0..4 {
                let mut log = "x".repeat(pad).into_bytes();
                log.extend_from_slice(ch.repeat(3000).as_bytes());
                let tail = decode(&log_result(&log));
                assert!(tail.len() <= 4096 && tail.len() > 4096 - 4, "{ch} {pad}");
                let text = std::str::from_utf8(&tail).expect("tail is UTF-8");
                assert!(text.chars().all(|c| c.to_string() == ch));
                assert!(log.ends_with(&tail));
            }
        }
    }

    #[test]
    fn heads_per_invocation_type() {
        let ok = SyncOutcome {
            function_error: false,
            executed_version: "$LATEST",
            log: b"line\n",
        };
        let (status, h) = success_head(InvocationType::RequestResponse, LogType::None, Some(&ok));
        assert_eq!(status, 200);
        assert_eq!(
            h,
            vec![
                ("Content-Type", "application/json".to_string()),
                ("X-Amz-Executed-Version", "$LATEST".to_string())
            ]
        );
        let failed = SyncOutcome {
            function_error: true,
            executed_version: "3",
            ..ok.clone()
        };
        let (_, h) = success_head(
            InvocationType::RequestResponse,
            LogType::Tail,
            Some(&failed),
        );
        assert!(h.contains(&("X-Amz-Function-Error", "Unhandled".to_string())));
        assert!(h.contains(&("X-Amz-Executed-Version", "3".to_string())));
        assert!(h.contains(&("X-Amz-Log-Result", "bGluZQo=".to_string())));
        assert_eq!(
            success_head(InvocationType::Event, LogType::Tail, Some(&ok)),
            (202, vec![])
        );
        assert_eq!(
            success_head(InvocationType::DryRun, LogType::None, None),
            (204, vec![])
        );
    }
}
