//! Why a template was refused. Every variant is the template author's to fix (or the reader's, for
//! `Read`); retrying the same input gives the same answer.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SamError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not a valid YAML or JSON template: {reason}")]
    Parse { reason: String },
    #[error("template too large: {reason}")]
    TooLarge { reason: String },
    /// Something esb cannot emulate. `at` names the resource and property, e.g.
    /// `Resources.MyFn.Properties.Layers`.
    #[error("{at}: not supported by esb: {reason}")]
    Unsupported { at: String, reason: String },
    /// The template itself is wrong (a required property missing, a bad value, a dangling name).
    #[error("{at}: {reason}")]
    Invalid { at: String, reason: String },
    /// An intrinsic function whose value is only known inside AWS.
    #[error("{at}: cannot be resolved locally: {reason}")]
    Unresolved { at: String, reason: String },
}

impl SamError {
    /// The template path the error is about (`Resources.X.Properties.Y`), when there is one.
    pub fn at(&self) -> Option<&str> {
        match self {
            SamError::Unsupported { at, .. }
            | SamError::Invalid { at, .. }
            | SamError::Unresolved { at, .. } => Some(at),
            _ => None,
        }
    }

    /// A short category for summaries: `unsupported`, `invalid`, `unresolved`, `parse`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            SamError::Read { .. } => "read",
            SamError::Parse { .. } => "parse",
            SamError::TooLarge { .. } => "too-large",
            SamError::Unsupported { .. } => "unsupported",
            SamError::Invalid { .. } => "invalid",
            SamError::Unresolved { .. } => "unresolved",
        }
    }

    pub(crate) fn unsupported(at: impl Into<String>, reason: impl Into<String>) -> Self {
        SamError::Unsupported {
            at: at.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(at: impl Into<String>, reason: impl Into<String>) -> Self {
        SamError::Invalid {
            at: at.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unresolved(at: impl Into<String>, reason: impl Into<String>) -> Self {
        SamError::Unresolved {
            at: at.into(),
            reason: reason.into(),
        }
    }
}
