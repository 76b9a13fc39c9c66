//! The incremental, atomic writer of compiled files (content.md "Build rules"): writes
//! only files whose content hash differs from what is on disk, the manifest last (after
//! saving the previous one as `manifest.prev.json`), then deletes the files of vanished
//! nodes; refuses to start below the free-disk threshold.
//!
//! What is on disk is learnt once by scanning the output root (reading each file's
//! stamp-free hash) and then kept in memory, so a rebuild after a one-lesson change reads
//! nothing but the previous manifest's version. Files changed behind the writer's back
//! are noticed only after a restart.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::content::compile::{
    CompileError, CompiledPlan, ContentHash, DocCache, FileKind, hash, manifest_path, plan_dir,
};

use super::disk::{Disk, TEMP_MARK};

/// Name of the previous manifest, kept for diagnosis.
pub const PREV_MANIFEST: &str = "manifest.prev.json";

/// Why a build did not complete.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Free disk space is below `content.min_free_disk_percent`.
    #[error("free disk space is {free:.1}%, below the {threshold}% threshold: not building")]
    LowDisk {
        /// Free space, percent.
        free: f64,
        /// The configured threshold, percent.
        threshold: f64,
    },
    /// The plan cannot be compiled.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> BuildError {
    let what = what.into();
    move |source| BuildError::Io { what, source }
}

/// Counts of what one plan's write did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WriteReport {
    /// Files of the plan (manifest included).
    pub files: usize,
    /// Files written (manifest included).
    pub written: usize,
    /// Files left alone because their content was unchanged.
    pub unchanged: usize,
    /// Files deleted (vanished nodes, or the whole plan).
    pub deleted: usize,
    /// Bytes written.
    pub bytes_written: u64,
    /// Whether a new manifest was written.
    pub manifest_written: bool,
}

/// The writer of one output root. Not thread-safe by design: one build at a time.
pub struct Writer {
    root: PathBuf,
    disk: Arc<dyn Disk>,
    min_free_percent: f64,
    /// Relative path → hash of the file on disk (`None`: not a file a build wrote).
    known: Option<HashMap<String, Option<ContentHash>>>,
    /// Parsed subject documents, reused across builds.
    pub docs: DocCache,
    /// Relative paths written or deleted since the last [`Writer::take_changes`] (the
    /// upload's to-do list; `manifest.prev.json` is local only and not listed).
    changes: Vec<String>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("root", &self.root)
            .field("known", &self.known.as_ref().map(HashMap::len))
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// A writer of `root` through `disk`, refusing to build below `min_free_percent`.
    pub fn new(root: impl Into<PathBuf>, disk: Arc<dyn Disk>, min_free_percent: f64) -> Writer {
        Writer {
            root: root.into(),
            disk,
            min_free_percent,
            known: None,
            docs: DocCache::default(),
            changes: Vec::new(),
        }
    }

    /// The relative paths written or deleted since the last call, in that order.
    pub fn take_changes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.changes)
    }

    /// The output root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Forgets what is on disk: the next build rescans.
    pub fn forget(&mut self) {
        self.known = None;
    }

    fn abs(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Refuses when free space is below the threshold.
    ///
    /// # Errors
    /// [`BuildError::LowDisk`], or the `statvfs` error.
    pub fn check_space(&self) -> Result<(), BuildError> {
        let free = self
            .disk
            .free_percent(&self.root)
            .map_err(io_err("free disk space"))?;
        if free < self.min_free_percent {
            return Err(BuildError::LowDisk {
                free,
                threshold: self.min_free_percent,
            });
        }
        Ok(())
    }

    /// The highest version the plan's manifests on disk carry.
    pub fn previous_version(&self, plan_id: &str) -> Option<i64> {
        let dir = self.abs(&plan_dir(plan_id));
        ["manifest.json", PREV_MANIFEST]
            .iter()
            .filter_map(|name| fs::read(dir.join(name)).ok())
            .filter_map(|bytes| hash::stamped_version(&bytes))
            .max()
    }

    /// Relative paths of the files on disk (scanned on first use).
    ///
    /// # Errors
    /// When the output root cannot be read.
    pub fn known_paths(&mut self) -> Result<Vec<String>, BuildError> {
        Ok(self.known()?.keys().cloned().collect())
    }

    fn known(&mut self) -> Result<&mut HashMap<String, Option<ContentHash>>, BuildError> {
        if self.known.is_none() {
            let mut map = HashMap::new();
            for top in ["plans", "lessons"] {
                scan(&self.root, Path::new(top), &mut map)
                    .map_err(io_err(format!("scan {}", self.root.join(top).display())))?;
            }
            self.known = Some(map);
        }
        Ok(self.known.get_or_insert_with(HashMap::new))
    }

    /// Writes a compiled plan: changed files, then `manifest.prev.json` and the manifest,
    /// then deletes the plan's vanished files and lesson files outside `live_lessons`.
    ///
    /// # Errors
    /// [`BuildError::LowDisk`] before writing anything, or the first I/O error (the
    /// manifest on disk is then still the previous one).
    pub fn apply(
        &mut self,
        plan: &CompiledPlan,
        live_lessons: &BTreeSet<String>,
    ) -> Result<WriteReport, BuildError> {
        self.check_space()?;
        let known = self.known()?;
        let mut report = WriteReport {
            files: plan.files.len(),
            ..WriteReport::default()
        };
        let mut changed = Vec::new();
        let mut manifest = None;
        for f in &plan.files {
            let same = known.get(&f.path) == Some(&Some(f.hash));
            match (f.kind, same) {
                (FileKind::Manifest, _) => manifest = Some((f, same)),
                (_, true) => report.unchanged += 1,
                (_, false) => changed.push(f),
            }
        }
        let stamped: Vec<(PathBuf, Vec<u8>)> = changed
            .iter()
            .map(|f| (self.abs(&f.path), f.stamped(&plan.stamp)))
            .collect();
        let batch: Vec<(PathBuf, &[u8])> = stamped
            .iter()
            .map(|(p, b)| (p.clone(), b.as_slice()))
            .collect();
        self.disk
            .write_batch(&batch)
            .map_err(io_err(format!("write files of plan {}", plan.plan_id)))?;
        let known = self.known()?;
        for (f, (_, bytes)) in changed.iter().zip(&stamped) {
            known.insert(f.path.clone(), Some(f.hash));
            report.written += 1;
            report.bytes_written += bytes.len() as u64;
        }
        self.changes.extend(changed.iter().map(|f| f.path.clone()));
        if let Some((m, same)) = manifest {
            if same && changed.is_empty() {
                report.unchanged += 1;
            } else {
                let bytes = m.stamped(&plan.stamp);
                self.write_manifest(m.path.as_str(), &bytes, m.hash)?;
                report.written += 1;
                report.bytes_written += bytes.len() as u64;
                report.manifest_written = true;
            }
        }
        let wanted: BTreeSet<&str> = plan.files.iter().map(|f| f.path.as_str()).collect();
        let prefix = format!("{}/", plan_dir(&plan.plan_id));
        let prev = format!("{prefix}{PREV_MANIFEST}");
        let stale: Vec<String> = self
            .known()?
            .keys()
            .filter(|p| {
                (p.starts_with(&prefix) && **p != prev && !wanted.contains(p.as_str()))
                    || (p.starts_with("lessons/") && !live_lessons.contains(*p))
            })
            .cloned()
            .collect();
        report.deleted = self.delete(&stale)?;
        Ok(report)
    }

    fn write_manifest(
        &mut self,
        rel: &str,
        bytes: &[u8],
        hash: ContentHash,
    ) -> Result<(), BuildError> {
        let path = self.abs(rel);
        let prev_path = path.with_file_name(PREV_MANIFEST);
        match fs::read(&path) {
            Ok(old) => {
                self.disk
                    .write_batch(&[(prev_path, old.as_slice())])
                    .map_err(io_err(format!("save {PREV_MANIFEST} of {rel}")))?;
                let prev_rel = rel.replace("manifest.json", PREV_MANIFEST);
                let old_hash = ContentHash::of_stamped(&old);
                self.known()?.insert(prev_rel, old_hash);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(format!("read {rel}"))(e)),
        }
        self.disk
            .write_batch(&[(path, bytes)])
            .map_err(io_err(format!("write {rel}")))?;
        self.known()?.insert(rel.to_owned(), Some(hash));
        self.changes.push(rel.to_owned());
        Ok(())
    }

    fn delete(&mut self, rels: &[String]) -> Result<usize, BuildError> {
        for rel in rels {
            self.disk
                .remove(&self.abs(rel))
                .map_err(io_err(format!("delete {rel}")))?;
            self.known()?.remove(rel);
            self.changes.push(rel.clone());
        }
        Ok(rels.len())
    }

    /// Removes every file of a plan (the manifest first, so no reader is left with a
    /// manifest pointing at deleted files) and lesson files outside `live_lessons`.
    ///
    /// # Errors
    /// The first I/O error.
    pub fn remove_plan(
        &mut self,
        plan_id: &str,
        live_lessons: &BTreeSet<String>,
    ) -> Result<WriteReport, BuildError> {
        let manifest = manifest_path(plan_id);
        let prefix = format!("{}/", plan_dir(plan_id));
        let mut doomed: Vec<String> = self
            .known()?
            .keys()
            .filter(|p| {
                (p.starts_with(&prefix) && **p != manifest)
                    || (p.starts_with("lessons/") && !live_lessons.contains(*p))
            })
            .cloned()
            .collect();
        doomed.sort();
        if self.known()?.contains_key(&manifest) {
            doomed.insert(0, manifest);
        }
        let deleted = self.delete(&doomed)?;
        let dir = self.abs(&plan_dir(plan_id));
        for sub in ["topics", "search", ""] {
            let _ = fs::remove_dir(dir.join(sub));
        }
        Ok(WriteReport {
            deleted,
            ..WriteReport::default()
        })
    }
}

/// Records every `.json` file below `root/rel` with its stamp-free hash; deletes temp
/// files left by an interrupted build.
fn scan(root: &Path, rel: &Path, out: &mut HashMap<String, Option<ContentHash>>) -> io::Result<()> {
    let dir = root.join(rel);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = rel.join(&name);
        let kind = entry.file_type()?;
        if kind.is_dir() {
            scan(root, &child, out)?;
        } else if name.contains(TEMP_MARK) {
            let _ = fs::remove_file(entry.path());
        } else if kind.is_file() && name.ends_with(".json") {
            let bytes = fs::read(entry.path())?;
            let key = child.to_string_lossy().replace('\\', "/");
            out.insert(key, ContentHash::of_stamped(&bytes));
        }
    }
    Ok(())
}
