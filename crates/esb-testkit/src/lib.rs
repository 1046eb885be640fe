//! Test support shared by esb's integration tests (a dev-dependency only).
//!
//! - [`cargo_bin`] builds a workspace binary once per test process and returns its path.
//! - [`free_port`] / [`wait_for_port`] pick loopback ports and wait until something listens,
//!   polling with bounded backoff instead of sleeping a fixed time.
//! - [`Child`] spawns a process in its own process group, logs its output to a file under
//!   `target/`, and kills the group and every descendant on drop.
//! - [`http`] is a small blocking HTTP/1.1 client with keep-alive, enough to drive servers.
//! - [`install`] fetches AWS's real RIE binary and a Python venv with `awslambdaric` from PyPI,
//!   idempotently, cached under `target/` (see `scripts/install-*.sh`).
//!
//! ```no_run
//! use esb_testkit::{Child, cargo_bin, free_port, wait_for_port};
//! use std::{process::Command, time::Duration};
//!
//! let port = free_port();
//! let mut cmd = Command::new(cargo_bin("esb-rie", "esb-rie"));
//! cmd.arg("--runtime-interface-emulator-address").arg(format!("127.0.0.1:{port}"));
//! let child = Child::spawn("esb-rie", cmd).unwrap();
//! wait_for_port(port, Duration::from_secs(10)).unwrap();
//! let mut client = esb_testkit::http::Client::connect(port).unwrap();
//! let res = client
//!     .post("/2015-03-31/functions/function/invocations", &[], b"{}")
//!     .unwrap();
//! assert_eq!(res.status, 200, "{}", child.log());
//! ```
#![allow(unsafe_code)]

pub mod http;
pub mod install;

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The workspace root (the folder holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root exists")
}

/// The cargo target directory (`CARGO_TARGET_DIR` or `<root>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// Cargo profile for [`cargo_bin_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    Dev,
    Release,
}

/// Builds `bin` of workspace package `package` in the dev profile (once per test process) and
/// returns its path. Panics with cargo's output if the build fails.
pub fn cargo_bin(package: &str, bin: &str) -> PathBuf {
    cargo_bin_with(package, bin, Profile::Dev)
}

/// [`cargo_bin`] with a chosen profile (benchmarks want `Release`).
pub fn cargo_bin_with(package: &str, bin: &str, profile: Profile) -> PathBuf {
    type Built = HashMap<(String, String, Profile), PathBuf>;
    static BUILT: OnceLock<Mutex<Built>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    // Held across the build so two tests in one process never race the same cargo build.
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    let key = (package.to_owned(), bin.to_owned(), profile);
    if let Some(path) = built.get(&key) {
        return path.clone();
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--quiet", "-p", package, "--bin", bin]);
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    let out = cmd.output().expect("run cargo build");
    assert!(
        out.status.success(),
        "cargo build -p {package} --bin {bin} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = match profile {
        Profile::Dev => "debug",
        Profile::Release => "release",
    };
    let path = target_dir().join(dir).join(bin);
    assert!(path.exists(), "{} missing after build", path.display());
    built.insert(key, path.clone());
    path
}

/// A loopback port that was free a moment ago (bound to port 0, then released). Prefer letting
/// the server bind port 0 itself when it can report the port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

/// Waits until `127.0.0.1:port` accepts a TCP connection, polling with backoff from 1 ms up to
/// 50 ms, for at most `timeout`.
pub fn wait_for_port(port: u16, timeout: Duration) -> io::Result<()> {
    wait_for_addr(SocketAddr::from(([127, 0, 0, 1], port)), timeout)
}

/// [`wait_for_port`] for any address.
pub fn wait_for_addr(addr: SocketAddr, timeout: Duration) -> io::Result<()> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(_) => return Ok(()),
            Err(e) if start.elapsed() >= timeout => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{addr} not accepting after {timeout:?}: {e}"),
                ));
            }
            Err(_) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        }
    }
}

/// A child process that dies with its handle: on drop it SIGKILLs its process group and every
/// descendant that left the group (found through `/proc`), so nothing outlives a test.
/// stdout and stderr go to a log file under `target/esb-testkit/logs/`.
#[derive(Debug)]
pub struct Child {
    child: std::process::Child,
    name: String,
    log_path: PathBuf,
}

impl Child {
    /// Spawns `cmd` (stdin closed, own process group, output to a log file). `name` labels the
    /// log file and messages.
    pub fn spawn(name: &str, mut cmd: Command) -> io::Result<Child> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = target_dir().join("esb-testkit").join("logs");
        std::fs::create_dir_all(&dir)?;
        let log_path = dir.join(format!(
            "{name}-{}-{}.log",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let log = File::create(&log_path)?;
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        let child = cmd.spawn()?;
        Ok(Child {
            child,
            name: name.to_owned(),
            log_path,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where stdout and stderr go.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the child printed so far (lossy UTF-8), for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// `Some(status)` once the child has exited.
    pub fn try_wait(&mut self) -> io::Result<Option<std::process::ExitStatus>> {
        self.child.try_wait()
    }

    /// Whether the child is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the child, its group and its descendants, and reaps it.
    pub fn kill(&mut self) {
        let pid = self.child.id();
        for d in descendants(pid) {
            signal(d as i32, libc::SIGKILL);
        }
        signal(-(pid as i32), libc::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Every process below `pid`, read from `/proc/*/stat` (parent pid is field 4).
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // The command name may contain spaces and parens: fields resume after the last ')'.
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                continue;
            };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
                parent_of.push((p, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for &(p, pp) in &parent_of {
            if pp == parent && !out.contains(&p) {
                out.push(p);
                frontier.push(p);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_for_port_sees_a_listener_and_times_out_without_one() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        wait_for_port(port, Duration::from_secs(5)).unwrap();
        drop(l);
        let err = wait_for_port(port, Duration::from_millis(30)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn dropping_a_child_kills_its_grandchildren() {
        let mut cmd = Command::new("sh");
        // The grandchild moves to its own session, out of the child's process group.
        cmd.args(["-c", "setsid sleep 300 & echo $!; wait"]);
        let child = Child::spawn("sleeper", cmd).unwrap();
        let start = Instant::now();
        let grandchild = loop {
            if let Ok(pid) = child.log().trim().parse::<u32>() {
                break pid;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no pid printed");
            std::thread::sleep(Duration::from_millis(5));
        };
        // Wait until the grandchild is really running before testing its death.
        while !Path::new(&format!("/proc/{grandchild}")).exists() {
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(child);
        let start = Instant::now();
        loop {
            let state = std::fs::read_to_string(format!("/proc/{grandchild}/stat"));
            // Gone, or a zombie waiting for init to reap it.
            if state.map(|s| s.contains(") Z ")).unwrap_or(true) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "grandchild survived"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
