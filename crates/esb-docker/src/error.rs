//! Typed errors of the Docker runtime: whose fault each one is and whether a retry can help.

use std::path::PathBuf;
use std::time::Duration;

use esb_model::FunctionName;

/// Who has to act to make an error go away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The configuration or the operator: a missing image, a missing `esb-rie`, a refused setting.
    User,
    /// The Docker engine: unreachable, hung, or failing internally.
    Daemon,
    /// The function's image or code: it exited while starting, or its RIE never answered.
    Function,
}

/// Everything the Docker runtime can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine cannot be reached (no socket, connection refused, restarting).
    #[error("the Docker engine at {host} is unreachable: {reason}")]
    Unavailable { host: String, reason: String },
    /// The engine accepted the connection but did not answer in time (hung or overloaded).
    #[error("the Docker engine did not answer {op} within {timeout:?}")]
    Timeout { op: &'static str, timeout: Duration },
    /// The function's image is not in the engine; esb never pulls.
    #[error(
        "image {image:?} is not present in the Docker engine; build it, `docker load` it, or put its tar in the preload directory"
    )]
    ImageMissing { image: String },
    /// The function does not run on Docker (a wiring bug in the caller).
    #[error("function {function} is not a Docker function")]
    NotDocker { function: FunctionName },
    /// An injected-RIE function needs the static `esb-rie` binary on the host.
    #[error("function {function} uses the injected RIE, but no esb-rie binary is configured")]
    NoRieBinary { function: FunctionName },
    /// The configured `esb-rie` binary is unusable.
    #[error("esb-rie binary {}: {reason}", path.display())]
    RieBinary { path: PathBuf, reason: String },
    /// The container stopped before its RIE answered: a broken image, entrypoint or init.
    #[error(
        "function {function}: container {} exited during start (exit code {}{}){}",
        short(container_id),
        exit_code.map_or_else(|| "unknown".to_owned(), |c| c.to_string()),
        if *oom_killed { ", OOMKilled" } else { "" },
        logs_suffix(logs)
    )]
    ExitedDuringStart {
        function: FunctionName,
        container_id: String,
        exit_code: Option<i64>,
        oom_killed: bool,
        /// The last lines the container printed.
        logs: String,
    },
    /// The container kept running but its RIE did not answer within the readiness deadline.
    #[error(
        "function {function}: the RIE in container {} did not answer within {waited:?}{}",
        short(container_id),
        logs_suffix(logs)
    )]
    NotReady {
        function: FunctionName,
        container_id: String,
        waited: Duration,
        logs: String,
    },
    /// The engine refused a request (a 4xx other than a missing image, or a 5xx).
    #[error("Docker refused {op} ({status}): {message}")]
    Rejected {
        op: &'static str,
        status: u16,
        message: String,
    },
    /// A started container has no address for the RIE port (network misconfiguration).
    #[error("container {} has no address for port 8080/tcp{}", short(container_id), network.as_deref().map(|n| format!(" on network {n:?}")).unwrap_or_default())]
    NoAddress {
        container_id: String,
        network: Option<String>,
    },
    /// A local file could not be read (a preload archive, the esb-rie binary).
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `docker load` of one archive failed.
    #[error("loading {}: {message}", path.display())]
    Load { path: PathBuf, message: String },
    /// Any other client-side failure of the Docker API client.
    #[error("Docker API {op}: {message}")]
    Client { op: &'static str, message: String },
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

fn logs_suffix(logs: &str) -> String {
    if logs.trim().is_empty() {
        String::new()
    } else {
        format!("; last output:\n{}", logs.trim_end())
    }
}

impl DockerError {
    /// Whose fault it is.
    pub fn fault(&self) -> Fault {
        match self {
            DockerError::Unavailable { .. }
            | DockerError::Timeout { .. }
            | DockerError::NoAddress { .. }
            | DockerError::Client { .. } => Fault::Daemon,
            DockerError::Rejected { status, .. } if *status >= 500 => Fault::Daemon,
            DockerError::Rejected { .. }
            | DockerError::ImageMissing { .. }
            | DockerError::NotDocker { .. }
            | DockerError::NoRieBinary { .. }
            | DockerError::RieBinary { .. }
            | DockerError::Io { .. }
            | DockerError::Load { .. } => Fault::User,
            DockerError::ExitedDuringStart { .. } | DockerError::NotReady { .. } => Fault::Function,
        }
    }

    /// Whether trying the same thing again soon may succeed. A function that fails to start is
    /// not retryable here: the pool's circuit breaker decides when to try again.
    pub fn retryable(&self) -> bool {
        match self {
            DockerError::Unavailable { .. }
            | DockerError::Timeout { .. }
            | DockerError::NoAddress { .. } => true,
            // 409: a name or state conflict that a fresh attempt avoids.
            DockerError::Rejected { status, .. } => *status >= 500 || *status == 409,
            _ => false,
        }
    }

    /// Maps a bollard error of operation `op` against engine `host` (whose client gives up after
    /// `timeout`).
    pub(crate) fn from_bollard(
        op: &'static str,
        host: &str,
        timeout: Duration,
        e: bollard::errors::Error,
    ) -> Self {
        use bollard::errors::Error as E;
        match e {
            E::DockerResponseServerError {
                status_code,
                message,
            } => DockerError::Rejected {
                op,
                status: status_code,
                message,
            },
            E::SocketNotFoundError(path) => DockerError::Unavailable {
                host: host.to_owned(),
                reason: format!("no socket at {path}"),
            },
            E::RequestTimeoutError => DockerError::Timeout { op, timeout },
            E::HyperLegacyError { .. } | E::IOError { .. } | E::HyperResponseError { .. } => {
                DockerError::Unavailable {
                    host: host.to_owned(),
                    reason: error_chain(&e),
                }
            }
            other => DockerError::Client {
                op,
                message: error_chain(&other),
            },
        }
    }
}

/// An error and its sources on one line (hyper hides the useful part in `source()`).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status: u16) -> bollard::errors::Error {
        bollard::errors::Error::DockerResponseServerError {
            status_code: status,
            message: "m".into(),
        }
    }

    #[test]
    fn faults_and_retries() {
        let t = Duration::from_secs(3);
        let e = DockerError::from_bollard("x", "unix:///s", t, server(500));
        assert_eq!((e.fault(), e.retryable()), (Fault::Daemon, true));
        let e = DockerError::from_bollard("x", "unix:///s", t, server(400));
        assert_eq!((e.fault(), e.retryable()), (Fault::User, false));
        let e = DockerError::from_bollard("x", "unix:///s", t, server(409));
        assert!(e.retryable());
        let e = DockerError::from_bollard(
            "list",
            "unix:///s",
            t,
            bollard::errors::Error::RequestTimeoutError,
        );
        assert_eq!(
            e.to_string(),
            "the Docker engine did not answer list within 3s"
        );
        assert_eq!((e.fault(), e.retryable()), (Fault::Daemon, true));
        let e = DockerError::from_bollard(
            "connect",
            "unix:///nope",
            t,
            bollard::errors::Error::SocketNotFoundError("/nope".into()),
        );
        assert!(matches!(e, DockerError::Unavailable { .. }));
        assert_eq!(
            e.to_string(),
            "the Docker engine at unix:///nope is unreachable: no socket at /nope"
        );
        let e = DockerError::ImageMissing {
            image: "a:b".into(),
        };
        assert_eq!((e.fault(), e.retryable()), (Fault::User, false));
        let e = DockerError::ExitedDuringStart {
            function: FunctionName::new("f"),
            container_id: "0123456789abcdef".into(),
            exit_code: Some(137),
            oom_killed: true,
            logs: "boom\n".into(),
        };
        assert_eq!((e.fault(), e.retryable()), (Fault::Function, false));
        assert_eq!(
            e.to_string(),
            "function f: container 0123456789ab exited during start (exit code 137, OOMKilled); last output:\nboom"
        );
    }
}
