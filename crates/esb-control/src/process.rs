//! The process runtime: each execution environment is an RIE child process (esb's `esb-rie` by
//! default, AWS's `aws-lambda-rie` works too) running the function's command on this host.
//!
//! `<rie> --runtime-interface-emulator-address 127.0.0.1:P --runtime-api-address 127.0.0.1:Q
//! <command...>`, with the environment of [`crate::environ::build`] and no other. The child leads
//! its own process group (a stop reaches everything it started) and gets SIGKILL when the control
//! thread that spawned it dies (PR_SET_PDEATHSIG; the thread lives as long as esb).
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::rc::Rc;
use std::time::Duration;

use esb_model::RuntimeSpec;
use tokio::process::{Child, Command};

use crate::runtime::{Instance, Runtime, StartError, StartRequest};
use crate::state::kill;
use crate::{ControlSettings, environ};

/// A child that exits this soon after starting most likely lost a race for its ports: retry.
const EARLY_EXIT_RETRIES: u32 = 2;

pub struct ProcessRuntime {
    settings: Rc<ControlSettings>,
    /// Loopback ports handed to live environments, so two never get the same one.
    ports: Rc<RefCell<HashSet<u16>>>,
}

impl ProcessRuntime {
    pub(crate) fn new(settings: Rc<ControlSettings>) -> Self {
        Self {
            settings,
            ports: Rc::default(),
        }
    }

    /// A loopback port nobody listens on now and no live environment of ours was given.
    fn port(&self) -> Result<u16, StartError> {
        for _ in 0..64 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .map_err(StartError::Ports)?
                .port();
            if self.ports.borrow_mut().insert(port) {
                return Ok(port);
            }
        }
        Err(StartError::Ports(std::io::Error::other(
            "the kernel keeps handing out ports that are in use",
        )))
    }

    fn spawn(&self, req: &StartRequest<'_>) -> Result<ProcessInstance, StartError> {
        let RuntimeSpec::Process {
            command,
            working_dir,
        } = &req.function.runtime
        else {
            return Err(StartError::Unsupported(req.function.runtime.kind()));
        };
        let mut ports = Ports {
            set: self.ports.clone(),
            taken: Vec::new(),
        };
        let invoke = self.port()?;
        ports.taken.push(invoke);
        let api = self.port()?;
        ports.taken.push(api);

        let environ = environ::build(
            req.function,
            &self.settings,
            &req.env.to_string(),
            req.provisioned,
        );
        let dir = working_dir.as_ref().or(self.settings.working_dir.as_ref());
        // The RIE execs the command only at the first invoke and reports a failure there as an
        // invocation error, so the environment would look ready and the breaker never open.
        if let Some(program) = command.first() {
            runnable(program, dir, environ.get("PATH").map(String::as_str)).map_err(|reason| {
                StartError::Command {
                    program: program.clone(),
                    reason,
                }
            })?;
        }

        let rie = &self.settings.rie_binary;
        let mut cmd = Command::new(rie);
        cmd.arg("--runtime-interface-emulator-address")
            .arg(format!("127.0.0.1:{invoke}"))
            .arg("--runtime-api-address")
            .arg(format!("127.0.0.1:{api}"))
            // No `--`: AWS's RIE would run it as the program. Both RIEs take their own options
            // anywhere on the line, so a function argument spelled like one is theirs (accepted).
            .args(command)
            .env_clear()
            .envs(environ)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .process_group(0);
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        let parent = std::process::id();
        // SAFETY: runs in the forked child before exec; prctl and getppid are async-signal-safe
        // and the closure allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent died between fork and prctl: the signal will never come.
                if libc::getppid() as u32 != parent {
                    return Err(std::io::Error::other("parent exited"));
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|source| StartError::Spawn {
            program: rie.display().to_string(),
            source,
        })?;
        let pid = child.id().unwrap_or(0);
        Ok(ProcessInstance {
            child,
            pid,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, invoke)),
            _ports: ports,
            reaped: false,
        })
    }
}

impl Runtime for ProcessRuntime {
    type Instance = ProcessInstance;

    async fn start(&self, req: StartRequest<'_>) -> Result<ProcessInstance, StartError> {
        let mut attempt = 0;
        loop {
            let mut inst = self.spawn(&req)?;
            match inst.wait_ready().await {
                Ok(()) => return Ok(inst),
                Err(status) if attempt < EARLY_EXIT_RETRIES => {
                    tracing::debug!(env = %req.env, %status, "RIE exited at start; retrying on new ports");
                    attempt += 1;
                }
                Err(status) => return Err(StartError::Exited(status)),
            }
        }
    }
}

/// Returns its ports to the runtime's set when the environment is gone.
struct Ports {
    set: Rc<RefCell<HashSet<u16>>>,
    taken: Vec<u16>,
}

impl Drop for Ports {
    fn drop(&mut self) {
        let mut set = self.set.borrow_mut();
        for p in &self.taken {
            set.remove(p);
        }
    }
}

pub struct ProcessInstance {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    _ports: Ports,
    /// The leader was waited for: its pid may belong to someone else now.
    reaped: bool,
}

impl ProcessInstance {
    /// Polls the invoke port with backoff (1 ms doubling to 50 ms) until it accepts, or returns
    /// how the child ended if it exits first. The caller's deadline bounds it.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let mut pause = Duration::from_millis(1);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.reaped = true;
                return Err(describe(status));
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    fn kill_group(&self, sig: libc::c_int) {
        if !self.reaped {
            kill(-i64::from(self.pid), sig);
        }
    }
}

impl Instance for ProcessInstance {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn pid(&self) -> Option<u32> {
        Some(self.pid)
    }

    async fn exited(&mut self) -> String {
        let how = match self.child.wait().await {
            Ok(status) => describe(status),
            Err(e) => format!("lost track of it: {e}"),
        };
        // Anything it started and left behind in its group goes too (the group id cannot be
        // reused while members remain).
        kill(-i64::from(self.pid), libc::SIGKILL);
        self.reaped = true;
        how
    }

    async fn health(&self) -> bool {
        tokio::net::TcpStream::connect(self.addr).await.is_ok()
    }

    async fn stop(mut self, grace: Duration) {
        self.kill_group(libc::SIGTERM);
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            self.kill_group(libc::SIGKILL);
        }
        // Stragglers that ignored SIGTERM after the leader exited.
        self.kill_group(libc::SIGKILL);
        let _ = self.child.wait().await;
        self.reaped = true;
    }
}

impl Drop for ProcessInstance {
    fn drop(&mut self) {
        // Dropped mid-start (deadline) or at shutdown: nothing may outlive it.
        if !self.reaped && matches!(self.child.try_wait(), Ok(None)) {
            self.kill_group(libc::SIGKILL);
        }
    }
}

/// Like Go's `os/exec` messages: `exit status 1`, `signal: killed`.
/// Whether `program` names an executable file the way exec would find it: a path with a `/`
/// (relative to `dir`), or a name searched on `path`. `Err` says why not.
fn runnable(program: &str, dir: Option<&PathBuf>, path: Option<&str>) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = match dir {
            Some(d) => d.join(program),
            None => PathBuf::from(program),
        };
        return if executable(&p) {
            Ok(())
        } else if p.exists() {
            Err("not an executable file".into())
        } else {
            Err("no such file".into())
        };
    }
    let found = path
        .unwrap_or("")
        .split(':')
        .filter(|d| !d.is_empty())
        .any(|d| executable(&std::path::Path::new(d).join(program)));
    if found {
        Ok(())
    } else {
        Err("not found on PATH".into())
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(libc::SIGKILL)) => "signal: killed".into(),
        (None, Some(libc::SIGTERM)) => "signal: terminated".into(),
        (None, Some(sig)) => format!("signal: {sig}"),
        (None, None) => status.to_string(),
    }
}

/// Where `esb-rie` is expected when the config names no RIE: next to the running binary.
pub fn default_rie_binary(current_exe: &std::path::Path) -> PathBuf {
    current_exe.with_file_name("esb-rie")
}

#[cfg(test)]
mod tests {
    use super::runnable;
    use std::path::PathBuf;

    #[test]
    fn runnable_follows_exec_lookup() {
        assert_eq!(runnable("/bin/sh", None, None), Ok(()));
        assert_eq!(runnable("sh", None, Some("/nowhere:/bin")), Ok(()));
        assert!(runnable("sh", None, Some("/nowhere")).is_err());
        assert!(runnable("sh", None, None).is_err());
        assert!(runnable("/nonexistent", None, None).is_err());
        // Exists but is not executable.
        let plain = tempfile::NamedTempFile::new().unwrap();
        let plain = plain.path().to_str().unwrap();
        assert_eq!(
            runnable(plain, None, None),
            Err("not an executable file".into())
        );
        // Relative to the working directory.
        assert_eq!(runnable("./sh", Some(&PathBuf::from("/bin")), None), Ok(()));
        assert!(runnable("./sh", Some(&PathBuf::from("/etc")), None).is_err());
    }
}
