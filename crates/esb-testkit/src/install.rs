//! Installers for things the tests need that are not crates: AWS's real RIE binary, a Python
//! venv with `awslambdaric`, and Pythons with real AWS clients (boto3, botocore). Both run the repo's `scripts/install-*.sh` (idempotent, locked,
//! cached under `target/`), once per test process; they need PyPI the first time.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::{target_dir, workspace_root};

/// Path of AWS's Lambda RIE binary (`aws-lambda-rie-<arch>` from the pinned aws-sam-cli wheel).
/// Panics with the script's output if it cannot be installed.
pub fn aws_rie() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| run_script("install-aws-rie.sh"))
        .clone()
}

/// Path of a `python3` whose environment has `awslambdaric` installed.
/// Panics with the script's output if it cannot be installed.
pub fn awslambdaric_python() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| run_script("install-awslambdaric.sh"))
        .clone()
}

/// A `python3` that can `import module`: the system one when it can, else a venv under `target/`
/// with `package` from PyPI (`scripts/install-python-venv.sh`). Panics if neither works.
pub fn python_with(module: &str, package: &str) -> PathBuf {
    static PATHS: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut paths = PATHS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = paths.iter().find(|(m, _)| m == module) {
        return p.clone();
    }
    let imports = |py: &std::path::Path| {
        Command::new(py)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let py = if imports(std::path::Path::new("python3")) {
        PathBuf::from("python3")
    } else {
        let py = run_script_with("install-python-venv.sh", &[package]);
        assert!(imports(&py), "{} cannot import {module}", py.display());
        py
    };
    paths.push((module.to_string(), py.clone()));
    py
}

fn run_script(name: &str) -> PathBuf {
    run_script_with(name, &[])
}

fn run_script_with(name: &str, args: &[&str]) -> PathBuf {
    let script = workspace_root().join("scripts").join(name);
    let out = Command::new("bash")
        .arg(&script)
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed (is PyPI reachable?):\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        path.exists(),
        "{} printed {}, which does not exist",
        name,
        path.display()
    );
    path
}
