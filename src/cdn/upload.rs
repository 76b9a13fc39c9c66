//! Upload of the output root to S3-compatible storage (content.md "Compiled files",
//! `[cdn.s3]`): after a build, the files it wrote or deleted (and assets changed through
//! the admin API) are pushed to the bucket — changed files first, then the manifests,
//! then the deletions, so that a client reading the bucket never meets a manifest that
//! points at a file not uploaded yet, nor loses a file a live manifest still names.
//!
//! What still has to go is kept as a set of dirty paths: a failed upload leaves them
//! there for the build queue's retry. The set lives in memory, so the first upload after
//! a start is a full reconciliation instead (list the bucket, compare each file's MD5
//! with the object's ETag, push the differences, delete what is gone locally): a crash
//! between a build and its upload loses nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use md5::{Digest, Md5};
use parking_lot::Mutex;
use serde::Serialize;

use crate::objstore::{Bucket, Headers, ObjError};

use super::disk::TEMP_MARK;
use super::writer::PREV_MANIFEST;

/// Folders of the output root that are uploaded (and, in the bucket, mirrored).
pub const UPLOADED_DIRS: [&str; 3] = ["plans", "lessons", "assets"];

/// How files are uploaded (`[cdn]`).
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// `Cache-Control` of every file but the manifests.
    pub cache_control: String,
    /// `Cache-Control` of `plans/{plan}/manifest.json`.
    pub manifest_cache_control: String,
}

/// What one upload did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UploadReport {
    /// Whether it was a full reconciliation (the first upload after a start).
    pub full_sync: bool,
    /// Objects put.
    pub uploaded: usize,
    /// Objects deleted.
    pub deleted: usize,
    /// Bytes put.
    pub bytes: u64,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
}

/// Why an upload did not complete; the paths not done stay dirty for the next try.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// An object operation failed.
    #[error("{op} {key}: {source} ({left} files still to upload)")]
    Object {
        /// `put` or `delete`.
        op: &'static str,
        /// The key (relative to the prefix).
        key: String,
        /// The cause.
        source: ObjError,
        /// Dirty paths left.
        left: usize,
    },
    /// The output root or the bucket could not be listed.
    #[error("scan for the full upload: {0}")]
    Scan(String),
}

/// Pending paths, each with the generation of its last mark (so that a path marked
/// again during an upload stays dirty after it).
#[derive(Default)]
struct Dirty {
    generation: u64,
    paths: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Put(String),
    Delete(String),
}

impl Op {
    fn key(&self) -> &str {
        match self {
            Op::Put(k) | Op::Delete(k) => k,
        }
    }
}

/// Uploads the output root's changes to a bucket. Uploads run on the uploader's own
/// small runtime ([`Uploader::flush_blocking`]), so builds call it from a blocking
/// thread whatever the caller's context.
pub struct Uploader {
    bucket: Bucket,
    root: PathBuf,
    options: UploadOptions,
    dirty: Mutex<Dirty>,
    synced: AtomicBool,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Uploader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploader")
            .field("root", &self.root)
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}

impl Drop for Uploader {
    fn drop(&mut self) {
        // `Runtime`'s own drop blocks, which panics inside an async context.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn is_manifest(rel: &str) -> bool {
    rel.starts_with("plans/") && rel.ends_with("/manifest.json")
}

/// Whether a path below the output root is one to upload: in an uploaded folder, no
/// hidden segment (temp files), not the local `manifest.prev.json`.
fn uploadable(rel: &str) -> bool {
    UPLOADED_DIRS
        .iter()
        .any(|d| rel.strip_prefix(d).is_some_and(|r| r.starts_with('/')))
        && !rel.split('/').any(|s| s.is_empty() || s.starts_with('.'))
        && !rel.contains(TEMP_MARK)
        && !rel.ends_with(PREV_MANIFEST)
}

impl Uploader {
    /// An uploader of the output root `root` to `bucket`.
    ///
    /// # Errors
    /// When its runtime cannot be started.
    pub fn new(
        bucket: Bucket,
        root: impl Into<PathBuf>,
        options: UploadOptions,
    ) -> io::Result<Uploader> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("memora-upload")
            .build()?;
        Ok(Uploader {
            bucket,
            root: root.into(),
            options,
            dirty: Mutex::new(Dirty::default()),
            synced: AtomicBool::new(false),
            runtime: Some(runtime),
        })
    }

    /// Marks paths (relative to the output root) to upload, or to delete remotely when
    /// they no longer exist locally. Paths that are never uploaded are ignored.
    pub fn mark(&self, paths: impl IntoIterator<Item = String>) {
        let mut d = self.dirty.lock();
        d.generation += 1;
        let generation = d.generation;
        for p in paths.into_iter().filter(|p| uploadable(p)) {
            d.paths.insert(p, generation);
        }
    }

    /// Paths waiting to be uploaded or deleted.
    pub fn pending(&self) -> usize {
        self.dirty.lock().paths.len()
    }

    /// Whether the next upload is a full reconciliation.
    pub fn needs_full_sync(&self) -> bool {
        !self.synced.load(Ordering::Acquire)
    }

    /// [`Uploader::flush`] on the uploader's runtime; call from a blocking thread (or
    /// outside any runtime), never from async code.
    ///
    /// # Errors
    /// As [`Uploader::flush`].
    pub fn flush_blocking(&self) -> Result<UploadReport, UploadError> {
        match &self.runtime {
            Some(rt) => rt.block_on(self.flush()),
            None => Err(UploadError::Scan("upload runtime is shut down".into())),
        }
    }

    /// Pushes the dirty paths (everything that differs, the first time): puts of files
    /// other than manifests, then puts of manifests, then deletions of manifests, then
    /// the other deletions — each phase starting only once the previous one fully
    /// succeeded. Done paths leave the dirty set; failed ones stay.
    ///
    /// # Errors
    /// [`UploadError`] for the first failed operation of the failing phase.
    pub async fn flush(&self) -> Result<UploadReport, UploadError> {
        let started = Instant::now();
        let full = self.needs_full_sync();
        let snapshot: BTreeMap<String, u64> = self.dirty.lock().paths.clone();
        let mut todo: BTreeSet<String> = snapshot.keys().cloned().collect();
        if full {
            todo.extend(self.differences().await?);
        }
        let mut puts = (Vec::new(), Vec::new());
        let mut deletes = (Vec::new(), Vec::new());
        for rel in todo {
            let manifest = is_manifest(&rel);
            let (target, op) = if self.root.join(&rel).is_file() {
                (&mut puts, Op::Put(rel))
            } else {
                (&mut deletes, Op::Delete(rel))
            };
            if manifest {
                &mut target.1
            } else {
                &mut target.0
            }
            .push(op);
        }
        let mut report = UploadReport {
            full_sync: full,
            ..UploadReport::default()
        };
        for phase in [puts.0, puts.1, deletes.1, deletes.0] {
            self.phase(phase, &snapshot, &mut report).await?;
        }
        if full {
            self.synced.store(true, Ordering::Release);
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }

    async fn phase(
        &self,
        ops: Vec<Op>,
        snapshot: &BTreeMap<String, u64>,
        report: &mut UploadReport,
    ) -> Result<(), UploadError> {
        let mut results = futures_util::stream::iter(ops.into_iter().map(|op| async move {
            let result = self.apply(&op).await;
            (op, result)
        }))
        .buffer_unordered(self.options.concurrency.max(1));
        let mut failed = None;
        while let Some((op, result)) = results.next().await {
            match result {
                Ok(sent) => {
                    match &op {
                        Op::Put(_) => {
                            report.uploaded += 1;
                            report.bytes += sent;
                        }
                        Op::Delete(_) => report.deleted += 1,
                    }
                    let mut d = self.dirty.lock();
                    if d.paths.get(op.key()) == snapshot.get(op.key()) {
                        d.paths.remove(op.key());
                    }
                }
                Err(source) => {
                    // Marked (again) so that the retry pushes it even after a full sync.
                    self.mark([op.key().to_owned()]);
                    failed.get_or_insert((op, source));
                }
            }
        }
        match failed {
            None => Ok(()),
            Some((op, source)) => Err(UploadError::Object {
                op: match op {
                    Op::Put(_) => "put",
                    Op::Delete(_) => "delete",
                },
                key: op.key().to_owned(),
                source,
                left: self.pending(),
            }),
        }
    }

    fn headers(&self, rel: &str) -> Headers {
        Headers {
            content_type: crate::http::content::content_type(rel).to_owned(),
            cache_control: Some(if is_manifest(rel) {
                self.options.manifest_cache_control.clone()
            } else {
                self.options.cache_control.clone()
            }),
        }
    }

    /// One operation; returns the bytes put.
    async fn apply(&self, op: &Op) -> Result<u64, ObjError> {
        match op {
            Op::Put(rel) => match tokio::fs::read(self.root.join(rel)).await {
                Ok(bytes) => {
                    let len = bytes.len() as u64;
                    self.bucket
                        .put(rel, Bytes::from(bytes), &self.headers(rel))
                        .await?;
                    Ok(len)
                }
                // Deleted since it was classified (an asset): delete it remotely too.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.bucket.delete(rel).await.map(|()| 0)
                }
                Err(source) => Err(ObjError::Io {
                    path: rel.clone(),
                    source,
                }),
            },
            Op::Delete(rel) => self.bucket.delete(rel).await.map(|()| 0),
        }
    }

    /// Paths whose local and remote versions differ: local files missing remotely or
    /// with another MD5 than the object's ETag, and remote objects gone locally.
    async fn differences(&self) -> Result<BTreeSet<String>, UploadError> {
        let root = self.root.clone();
        let local = tokio::task::spawn_blocking(move || local_digests(&root))
            .await
            .map_err(|e| UploadError::Scan(e.to_string()))?
            .map_err(|e| UploadError::Scan(format!("read the output root: {e}")))?;
        let mut remote = BTreeMap::new();
        for dir in UPLOADED_DIRS {
            for object in self
                .bucket
                .list(dir)
                .await
                .map_err(|e| UploadError::Scan(format!("list the bucket: {e}")))?
            {
                remote.insert(object.key, object.e_tag);
            }
        }
        let mut out = BTreeSet::new();
        for (rel, md5) in &local {
            if remote.get(rel).and_then(Option::as_deref) != Some(md5.as_str()) {
                out.insert(rel.clone());
            }
        }
        out.extend(
            remote
                .into_keys()
                .filter(|k| !local.contains_key(k) && uploadable(k)),
        );
        Ok(out)
    }
}

/// Every uploadable file of the output root with its MD5 (hex).
fn local_digests(root: &Path) -> io::Result<BTreeMap<String, String>> {
    fn walk(root: &Path, rel: &str, out: &mut BTreeMap<String, String>) -> io::Result<()> {
        let entries = match std::fs::read_dir(root.join(rel)) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = format!("{rel}/{name}");
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(root, &child, out)?;
            } else if kind.is_file() && uploadable(&child) {
                let bytes = std::fs::read(entry.path())?;
                out.insert(child, hex::encode(Md5::digest(&bytes)));
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    for dir in UPLOADED_DIRS {
        walk(root, dir, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_published_files_are_uploadable() {
        for ok in [
            "plans/p/manifest.json",
            "plans/p/topics/t.json",
            "lessons/l.json",
            "assets/img/a.png",
        ] {
            assert!(uploadable(ok), "{ok}");
        }
        for no in [
            "plans/p/manifest.prev.json",
            "plans/p/.manifest.json.tmp-1-2",
            "memora.redb",
            "planss/x.json",
            "plans",
            "assets//a.png",
        ] {
            assert!(!uploadable(no), "{no}");
        }
        assert!(is_manifest("plans/p/manifest.json"));
        assert!(!is_manifest("lessons/manifest.json"));
    }
}
