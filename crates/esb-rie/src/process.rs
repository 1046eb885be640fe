//! Starting and killing the runtime process, and describing its exit the way Go's `os/exec` does.
//!
//! The runtime runs in its own process group so a kill reaches everything a bootstrap script
//! started, and it gets SIGKILL if esb-rie dies, so no runtime outlives its emulator.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};

use tokio::process::{Child, Command};

use crate::capture::Pipes;
use crate::cli::Settings;

/// Spawns the runtime with RIE's environment: everything esb-rie got, RIE's defaults where
/// unset, and the Runtime API address and handler. Its stdout and stderr come back as
/// non-blocking pipes (see `capture`).
pub fn spawn(settings: &Settings, runtime_api: &str) -> std::io::Result<(Child, Pipes)> {
    let mut cmd = Command::new(&settings.command[0]);
    cmd.args(&settings.command[1..])
        .current_dir(&settings.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let defaults = [
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/Functions"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "$LATEST"),
        (
            "AWS_LAMBDA_FUNCTION_VERSION",
            settings.function_version.as_str(),
        ),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            settings.memory_mb.as_str(),
        ),
        ("AWS_LAMBDA_FUNCTION_NAME", settings.function_name.as_str()),
    ];
    for (name, value) in defaults {
        if std::env::var_os(name).is_none() {
            cmd.env(name, value);
        }
    }
    cmd.env("AWS_LAMBDA_RUNTIME_API", runtime_api);
    if let Some(handler) = &settings.handler {
        cmd.env("_HANDLER", handler);
    }
    // SAFETY: the closure runs in the forked child before exec and only calls prctl, which is
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(std::io::Error::other(
            "runtime started without its output pipes",
        ));
    };
    let out = nonblocking(out.into_owned_fd()?)?;
    let err = nonblocking(err.into_owned_fd()?)?;
    Ok((child, Pipes::new(out, err)?))
}

fn nonblocking(fd: OwnedFd) -> std::io::Result<File> {
    // SAFETY: fcntl on a descriptor this function owns; no memory is involved.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0
        // SAFETY: as above.
        || unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(File::from(fd))
}

/// SIGKILLs the runtime's process group (the runtime is its leader).
pub fn kill_group(pid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// `exit status 3`, `signal: killed`: Go's `ProcessState.String()`, which RIE puts into
/// `Runtime.ExitError` messages.
pub fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(sig) => format!("signal: {}", signal_name(sig)),
        None => "exit status unknown".to_owned(),
    }
}

fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "hangup",
        libc::SIGINT => "interrupt",
        libc::SIGQUIT => "quit",
        libc::SIGILL => "illegal instruction",
        libc::SIGTRAP => "trace/breakpoint trap",
        libc::SIGABRT => "aborted",
        libc::SIGBUS => "bus error",
        libc::SIGFPE => "floating point exception",
        libc::SIGKILL => "killed",
        libc::SIGUSR1 => "user defined signal 1",
        libc::SIGSEGV => "segmentation fault",
        libc::SIGUSR2 => "user defined signal 2",
        libc::SIGPIPE => "broken pipe",
        libc::SIGALRM => "alarm clock",
        libc::SIGTERM => "terminated",
        _ => return format!("signal {sig}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_read_like_go() {
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exit status 3");
        assert_eq!(
            describe(ExitStatus::from_raw(libc::SIGKILL)),
            "signal: killed"
        );
        assert_eq!(
            describe(ExitStatus::from_raw(libc::SIGSEGV)),
            "signal: segmentation fault"
        );
    }
}
