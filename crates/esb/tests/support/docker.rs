//! Docker helpers shared by the Docker test binaries: the `docker` CLI, the engine check
//! (`ESB_REQUIRE_DOCKER=1` fails instead of skipping) and the static binaries for test images.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Label on the test images, valued with the run id (as in `docker.rs` and esb-docker's tests).
pub const TEST_RUN_LABEL: &str = "esb.test-run";

pub fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("docker {args:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!(
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether an engine answers; `ESB_REQUIRE_DOCKER=1` turns "skip" into a failure.
pub fn engine_answers() -> bool {
    match docker(&["version", "--format", "{{.Server.Version}}"]) {
        Ok(_) => true,
        Err(e) if std::env::var("ESB_REQUIRE_DOCKER").as_deref() == Ok("1") => {
            panic!("ESB_REQUIRE_DOCKER=1 but no Docker engine answers: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: no Docker engine ({e}); set ESB_REQUIRE_DOCKER=1 to fail instead");
            false
        }
    }
}

/// The static `esb-rie` and `echo` (scripts/build-static.sh), built once per test process.
pub fn static_bins() -> &'static (PathBuf, PathBuf) {
    static BINS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BINS.get_or_init(|| {
        let root = esb_testkit::workspace_root();
        let out = Command::new("bash")
            .arg(root.join("scripts/build-static.sh"))
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", esb_testkit::target_dir())
            .output()
            .expect("run build-static.sh");
        assert!(
            out.status.success(),
            "build-static.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = esb_testkit::target_dir().join("x86_64-unknown-linux-gnu/release");
        (dir.join("esb-rie"), dir.join("echo"))
    })
}
