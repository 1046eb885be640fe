//! The invariants of docs/ARCHITECTURE.md, checked over `cargo tree` and the source tree.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn workspace_crates() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `(package, enabled features)` for everything `package` pulls in as a normal dependency, with
/// features resolved as if only `package` were built.
fn normal_deps(package: &str) -> Vec<(String, Vec<String>)> {
    let out = Command::new(env!("CARGO"))
        .current_dir(root())
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-f",
            "{p}|{f}",
            "-p",
            package,
        ])
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            // cargo tree marks an already-printed subtree with " (*)".
            let l = l.trim_end_matches(" (*)");
            let (p, f) = l.split_once('|')?;
            let name = p.split_whitespace().next()?.to_string();
            let feats = f
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            Some((name, feats))
        })
        .collect()
}

/// Crates that run on the monoio workers, or that the workers link.
const DATA_PLANE: &[&str] = &[
    "esb-dataplane",
    "esb-pool",
    "esb-router",
    "esb-auth",
    "esb-event",
    "esb-http1",
    "esb-model",
    "esb-config",
    "esb-invoke",
    "esb-authorizer",
    "esb-sigv4",
    "esb-schedule",
];

/// Logic crates: no runtime, no sockets (time is an argument).
const LOGIC: &[&str] = &[
    "esb-http1",
    "esb-router",
    "esb-auth",
    "esb-event",
    "esb-runtime-api",
    "esb-model",
];

fn existing(list: &[&'static str]) -> Vec<&'static str> {
    let have = workspace_crates();
    list.iter()
        .copied()
        .filter(|c| have.iter().any(|h| h == c))
        .collect()
}

#[test]
fn data_plane_never_links_the_control_planes_runtime() {
    for krate in existing(DATA_PLANE) {
        for (dep, feats) in normal_deps(krate) {
            assert!(
                dep != "bollard",
                "{krate} pulls in bollard: only esb-control may talk to Docker"
            );
            assert!(dep != "esb-control", "{krate} depends on the control plane");
            if dep == "tokio" {
                let runtime: Vec<_> = feats.iter().filter(|f| f.as_str() != "sync").collect();
                assert!(
                    runtime.is_empty(),
                    "{krate} pulls in tokio with {runtime:?}: the data plane may use tokio's `sync` only"
                );
            }
        }
    }
}

#[test]
fn control_plane_never_links_monoio() {
    for krate in existing(&["esb-control", "esb-async", "esb-docker"]) {
        for (dep, _) in normal_deps(krate) {
            assert!(
                !dep.starts_with("monoio"),
                "{krate} pulls in {dep}: the control plane runs on tokio only"
            );
        }
    }
}

#[test]
fn logic_crates_have_no_runtime_and_no_sockets() {
    const IO: &[&str] = &[
        "tokio", "monoio", "mio", "socket2", "hyper", "bollard", "io-uring",
    ];
    for krate in existing(LOGIC) {
        for (dep, feats) in normal_deps(krate) {
            if dep == "tokio" && feats.iter().all(|f| f == "sync") {
                continue;
            }
            assert!(
                !IO.contains(&dep.as_str()),
                "logic crate {krate} pulls in {dep}"
            );
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()) {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_source_file_says_what_it_is_for() {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    let missing: Vec<_> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!"))
        .collect();
    assert!(
        missing.is_empty(),
        "files without a leading //! line: {missing:?}"
    );
}

#[test]
fn logic_crates_read_no_clock_and_no_environment() {
    // `Instant::now()`/`SystemTime::now()` and `std::env` belong to the binaries and the planes.
    const FORBIDDEN: &[&str] = &[
        "Instant::now",
        "SystemTime::now",
        "std::env::var",
        "env::var(",
    ];
    for krate in existing(LOGIC) {
        let mut files = Vec::new();
        rust_files(&root().join("crates").join(krate).join("src"), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            // Unit tests may use the clock to make fixtures.
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for bad in FORBIDDEN {
                assert!(
                    !code.contains(bad),
                    "{} uses {bad}: logic crates take time and settings as arguments",
                    f.display()
                );
            }
        }
    }
}

#[test]
fn cargo_tree_is_read_correctly() {
    // Guards the checks above against passing vacuously on unparsed output.
    let deps = normal_deps("esb-config");
    assert!(deps.iter().any(|(d, _)| d == "serde_yaml_ng"), "{deps:?}");
    let serde = deps.iter().find(|(d, _)| d == "serde").expect("serde");
    assert!(serde.1.iter().any(|f| f == "derive"), "{serde:?}");
}
