//! The control plane's state directory: a lock so two esb never share it, and the sweep that
//! kills environments left behind by an esb that was killed.
//!
//! Children normally die with esb (PR_SET_PDEATHSIG), but not always: a grandchild of a RIE that
//! does not set it (AWS's own), or a process that was mid-fork. Every process of an environment
//! carries `ESB_STATE_DIR=<this directory>` in its environment (RIE and the runtime inherit it),
//! so the next esb using the directory finds them in `/proc` without trusting any pid file that
//! may be stale and point at an unrelated process by now.
#![allow(unsafe_code)]

use std::fs::{File, TryLockError};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::ControlError;
use crate::environ::STATE_MARKER;

#[derive(Debug)]
pub(crate) struct StateDir {
    path: PathBuf,
    /// Held (flock) for the life of the control plane.
    _lock: File,
}

impl StateDir {
    /// Creates and locks `path`; fails if another live esb holds it.
    pub(crate) fn open(path: &Path) -> Result<StateDir, ControlError> {
        let io = |e| ControlError::StateDir(path.to_path_buf(), e);
        std::fs::create_dir_all(path).map_err(io)?;
        let path = path.canonicalize().map_err(io)?;
        let mut lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join("esb.lock"))
            .map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(ControlError::StateDirBusy(path)),
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // For people: which esb holds it.
        lock.set_len(0).map_err(io)?;
        writeln!(lock, "{}", std::process::id()).map_err(io)?;
        Ok(StateDir { path, _lock: lock })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Kills every process that carries this directory's marker; returns their pids.
    pub(crate) fn kill_leftovers(&self) -> Vec<u32> {
        let marker = format!("{STATE_MARKER}={}", self.path.to_string_lossy());
        let me = std::process::id();
        let mut killed = Vec::new();
        let Ok(proc) = std::fs::read_dir("/proc") else {
            return killed;
        };
        for entry in proc.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == me {
                continue;
            }
            // Other users' processes are unreadable (EACCES) and not ours anyway.
            let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
                continue;
            };
            if environ
                .split(|&b| b == 0)
                .any(|var| var == marker.as_bytes())
            {
                kill(pid, libc::SIGKILL);
                killed.push(pid);
            }
        }
        killed
    }
}

/// Sends `sig` to a process (`pid` > 0) or a process group (`-pgid`).
pub(crate) fn kill(pid: impl TryInto<libc::pid_t>, sig: libc::c_int) -> bool {
    let Ok(pid) = pid.try_into() else {
        return false;
    };
    if pid == 0 || pid == -1 {
        // 0 and -1 mean "my group" and "everyone": never what a caller here wants.
        return false;
    }
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    unsafe { libc::kill(pid, sig) == 0 }
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::{Duration, Instant};

    use super::*;

    /// A child between fork and exec holds a copy of every descriptor, the lock's included, so
    /// a test that spawns would keep the lock alive for a moment after the holder test drops it.
    static NO_SPAWN_DURING_LOCK_TEST: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn a_second_holder_is_refused() {
        let _quiet = NO_SPAWN_DURING_LOCK_TEST.lock().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let first = StateDir::open(dir.path()).unwrap();
        let again = StateDir::open(dir.path());
        assert!(
            matches!(again, Err(ControlError::StateDirBusy(_))),
            "{again:?}"
        );
        drop(first);
        StateDir::open(dir.path()).unwrap();
    }

    #[test]
    fn leftovers_carrying_the_marker_are_killed_and_others_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().canonicalize().unwrap();
        let other = tempfile::tempdir().unwrap();
        let spawn = |marker: &Path| {
            Command::new("sleep")
                .arg("600")
                .env(STATE_MARKER, marker)
                .spawn()
                .unwrap()
        };
        let spawning = NO_SPAWN_DURING_LOCK_TEST.lock().unwrap();
        let mut ours = spawn(&path);
        let mut theirs = spawn(&other.path().canonicalize().unwrap());
        drop(spawning);
        // spawn() returns once exec has begun, before the kernel has laid out the new image's
        // environment; wait until both are visible so the sweep sees what the test means.
        let deadline = Instant::now() + Duration::from_secs(10);
        for child in [&ours, &theirs] {
            let environ = format!("/proc/{}/environ", child.id());
            while !std::fs::read(&environ)
                .unwrap()
                .windows(STATE_MARKER.len())
                .any(|w| w == STATE_MARKER.as_bytes())
            {
                assert!(Instant::now() < deadline, "no environment in {environ}");
                std::thread::yield_now();
            }
        }
        let state = StateDir::open(&path).unwrap();
        let killed = state.kill_leftovers();
        assert_eq!(killed, vec![ours.id()]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while ours.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "leftover survived");
            std::thread::yield_now();
        }
        assert!(
            theirs.try_wait().unwrap().is_none(),
            "an unrelated process was killed"
        );
        theirs.kill().unwrap();
        theirs.wait().unwrap();
    }

    #[test]
    fn kill_refuses_the_dangerous_pids() {
        assert!(!kill(0, 0));
        assert!(!kill(-1, 0));
        assert!(kill(std::process::id(), 0));
    }
}
