//! The one error type of config loading: always names the file, the line when known, and the reason.

use std::fmt;
use std::path::{Path, PathBuf};

/// A config problem found at start. It is always the user's fault and never worth retrying as is.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line, when the parser or the validator could tell.
    pub line: Option<usize>,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.reason),
            None => write!(f, "{}: {}", self.file.display(), self.reason),
        }
    }
}

impl ConfigError {
    pub fn new(file: &Path, line: Option<usize>, reason: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line,
            reason: reason.into(),
        }
    }

    pub(crate) fn from_yaml(file: &Path, err: &serde_yaml_ng::Error) -> Self {
        let line = err.location().map(|l| l.line());
        // serde_yaml_ng appends "at line N column M" itself; the line is already in our prefix.
        let reason = err.to_string();
        let reason = match reason.find(" at line ") {
            Some(i) => reason[..i].to_string(),
            None => reason,
        };
        Self::new(file, line, reason)
    }

    pub(crate) fn from_toml(file: &Path, text: &str, err: &toml::de::Error) -> Self {
        let line = err.span().map(|s| line_of_offset(text, s.start));
        Self::new(file, line, err.message().to_string())
    }
}

/// 1-based line number of a byte offset.
pub(crate) fn line_of_offset(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Best-effort line of the first line containing all `needles`, for errors found after parsing
/// (serde's data model has no spans, so validation errors locate their subject by its text).
pub(crate) fn find_line(text: &str, needles: &[&str]) -> Option<usize> {
    text.lines()
        .position(|l| needles.iter().all(|n| l.contains(n)))
        .map(|i| i + 1)
}
