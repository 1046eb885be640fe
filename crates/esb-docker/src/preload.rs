//! Image preloading: `docker load` every image archive in a directory at start, streamed from
//! disk (never whole in memory), with progress in the log. esb never pulls from a registry.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bollard::query_parameters::ImportImageOptionsBuilder;
use futures_util::StreamExt;
use tokio::time::Instant;
use tokio_util::io::ReaderStream;

use crate::error::DockerError;
use crate::runtime::DockerRuntime;

/// One archive loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedArchive {
    pub path: PathBuf,
    /// `repo:tag` (or image ids) the engine reported.
    pub images: Vec<String>,
    pub bytes: u64,
    pub took: Duration,
}

/// What a preload did.
#[derive(Debug, Default)]
pub struct PreloadReport {
    pub loaded: Vec<LoadedArchive>,
    pub failed: Vec<(PathBuf, DockerError)>,
}

/// Archive names `docker load` understands (plain or compressed `docker save` output).
fn is_archive(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    [".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

impl DockerRuntime {
    /// Loads every image archive in `dir` (sorted by name; other files are ignored). One bad
    /// archive does not stop the others: it is reported in [`PreloadReport::failed`]. Only an
    /// unreadable directory is an error.
    pub async fn preload(&self, dir: &Path) -> Result<PreloadReport, DockerError> {
        let io = |e| DockerError::Io {
            path: dir.to_owned(),
            source: e,
        };
        let mut entries = tokio::fs::read_dir(dir).await.map_err(io)?;
        let mut archives = Vec::new();
        while let Some(e) = entries.next_entry().await.map_err(io)? {
            let path = e.path();
            if is_archive(&path) && e.file_type().await.map(|t| !t.is_dir()).unwrap_or(false) {
                archives.push(path);
            }
        }
        archives.sort();
        tracing::info!(dir = %dir.display(), archives = archives.len(), "preloading images");
        let mut report = PreloadReport::default();
        for path in archives {
            match self.load_archive(&path).await {
                Ok(a) => report.loaded.push(a),
                Err(e) => {
                    tracing::error!(archive = %path.display(), error = %e, "image archive not loaded");
                    report.failed.push((path, e));
                }
            }
        }
        Ok(report)
    }

    /// `docker load` of one archive.
    pub async fn load_archive(&self, path: &Path) -> Result<LoadedArchive, DockerError> {
        let io = |e| DockerError::Io {
            path: path.to_owned(),
            source: e,
        };
        let file = tokio::fs::File::open(path).await.map_err(io)?;
        let total = file.metadata().await.map_err(io)?.len();
        let started = Instant::now();
        tracing::info!(archive = %path.display(), mb = total / (1 << 20), "loading image archive");

        // Count bytes as the engine takes them and log every quarter, so a big load shows life.
        let sent = Arc::new(AtomicU64::new(0));
        let logged = Arc::new(AtomicU64::new(0));
        let (sent2, logged2, name) = (sent.clone(), logged.clone(), path.display().to_string());
        let body = ReaderStream::with_capacity(file, 256 * 1024).inspect(move |chunk| {
            if let Ok(b) = chunk {
                let now = sent2.fetch_add(b.len() as u64, Ordering::Relaxed) + b.len() as u64;
                let quarter = (now * 4).checked_div(total).unwrap_or(4);
                if quarter > logged2.load(Ordering::Relaxed) && quarter < 4 {
                    logged2.store(quarter, Ordering::Relaxed);
                    tracing::info!(archive = %name, percent = quarter * 25, "loading image archive");
                }
            }
        });

        // Loading a large archive takes longer than an API call may; give it its own deadline.
        let docker = self
            .client()
            .clone()
            .with_timeout(self.options().load_timeout);
        let mut out = docker.import_image_stream(
            ImportImageOptionsBuilder::default().quiet(true).build(),
            body,
            None,
        );
        let mut images = Vec::new();
        let fail = |message: String| DockerError::Load {
            path: path.to_owned(),
            message,
        };
        let drain = async {
            while let Some(item) = out.next().await {
                let info = item.map_err(|e| fail(self.err("load image", e).to_string()))?;
                if let Some(line) = info.stream.as_deref() {
                    let line = line.trim();
                    for prefix in ["Loaded image: ", "Loaded image ID: "] {
                        if let Some(img) = line.strip_prefix(prefix) {
                            tracing::info!(archive = %path.display(), image = img, "loaded image");
                            images.push(img.to_owned());
                        }
                    }
                }
            }
            Ok::<(), DockerError>(())
        };
        tokio::time::timeout(self.options().load_timeout, drain)
            .await
            .map_err(|_| DockerError::Timeout {
                op: "load image",
                timeout: self.options().load_timeout,
            })??;
        if images.is_empty() {
            return Err(fail("the engine reported no image in it".into()));
        }
        let took = started.elapsed();
        tracing::info!(archive = %path.display(), images = ?images, ?took, "image archive loaded");
        Ok(LoadedArchive {
            path: path.to_owned(),
            images,
            bytes: sent.load(Ordering::Relaxed),
            took,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names() {
        for yes in [
            "a.tar",
            "b.TAR",
            "c.tar.gz",
            "d.tgz",
            "e.tar.xz",
            "f.tar.bz2",
        ] {
            assert!(is_archive(Path::new(yes)), "{yes}");
        }
        for no in ["a.txt", "tar", "a.tar.zst", "README", "x.tar.part"] {
            assert!(!is_archive(Path::new(no)), "{no}");
        }
    }
}
