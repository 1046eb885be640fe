//! Installers for things the tests need that are not crates: AWS's real RIE binary and a Python
//! venv with `awslambdaric`. Both run the repo's `scripts/install-*.sh` (idempotent, locked,
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

fn run_script(name: &str) -> PathBuf {
    let script = workspace_root().join("scripts").join(name);
    let out = Command::new("bash")
        .arg(&script)
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
