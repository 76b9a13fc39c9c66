//! Snapshots of the whole state, consistent at one journal sequence while writes go on
//! (persistence.md "Snapshots"; the argument is written out in `docs/snapshots.md`):
//!
//! 1. under the checkpoint lock: a full checkpoint at the applied watermark `W`, then
//!    `S` ← the journal's durable sequence, a redb read transaction, and the journal
//!    records `(W, S]` read into memory — then the lock is released (requests never
//!    wait for it; checkpoints wait for a few milliseconds);
//! 2. the read transaction's tables are copied into a fresh redb file. Its rows hold
//!    every change up to `W` and possibly some of `(W, S]` (rows copied while writes
//!    were applied): not yet one instant;
//! 3. the records `(W, S]` are replayed into that copy by a second engine opened on it
//!    — replay sets absolute values, so every row ends exactly at `S` — whose shutdown
//!    checkpoint stamps it with `S`;
//! 4. the copy is compacted, counted and packed into a snapshot file
//!    (`persist::snapshot`), verified, older files pruned, and the upload hook called.
//!
//! Every change is applied to memory only after it is durable, so a row copied in step
//! 2 holds no change beyond `S`; every change up to `S` is either in the row or replayed
//! in step 3. The result is the state after exactly the records `1..=S`.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use redb::{Database, ReadableDatabase};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Code};
use crate::persist::journal;
use crate::persist::snapshot::{self, Counts, NoProgress, Progress, SnapshotError};

use super::jobs::{JobHandle, JobOutput, JobView};
use super::{Engine, JOURNAL_DIR, REDB_FILE};

/// What one snapshot did (the job's result, and the CLI's report).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotReport {
    /// The snapshot file written.
    pub file: PathBuf,
    /// Its file name.
    pub name: String,
    /// The journal sequence it stands for.
    pub seq: u64,
    /// When it was taken (RFC 3339 UTC).
    pub created_at: String,
    /// Size of the file, bytes.
    pub bytes: u64,
    /// Row counts.
    pub counts: Counts,
    /// The sequence of the full checkpoint it started from.
    pub checkpoint_seq: u64,
    /// Journal records written while that checkpoint ran, replayed into the copy.
    pub replayed: u64,
    /// How long the checkpoint lock was held (checkpoint plus reading the tail), ms.
    /// Requests never take that lock.
    pub checkpoint_ms: u64,
    /// Wall time of the whole snapshot, ms.
    pub duration_ms: u64,
    /// Whether the file was read back and checked (`snapshots.verify`).
    pub verified: bool,
    /// Older snapshot files deleted to keep `snapshots.keep`.
    pub pruned: Vec<String>,
    /// Where the file was uploaded (`snapshots.upload`), if it was.
    pub uploaded: Option<String>,
    /// Why the upload failed, if it did (the local file is kept).
    pub upload_error: Option<String>,
}

/// Marks the engine busy with a snapshot; clears the mark when dropped.
struct Busy<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// A job's progress as snapshot progress: each stage restarts the count.
struct JobProgress(JobHandle);

impl Progress for JobProgress {
    fn stage(&self, _: &str, total: u64) {
        self.0.set_total(total);
        self.0.set_done(0);
    }

    fn advance(&self, n: u64) {
        self.0.advance(n);
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |e| SnapshotError::io(path, e)
}

/// Removes what a snapshot that a crash interrupted left: its working folder and a
/// half-written file (`….snap.tmp`).
fn remove_stale_work(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_str().unwrap_or_default();
        let removed = if name.starts_with(".tmp-") {
            std::fs::remove_dir_all(entry.path())
        } else if name.ends_with(".snap.tmp") {
            std::fs::remove_file(entry.path())
        } else {
            continue;
        };
        if let Err(e) = removed {
            tracing::warn!(path = %entry.path().display(), error = %e,
                "cannot remove what an interrupted snapshot left");
        }
    }
}

impl Engine {
    /// Whether a snapshot is being written.
    pub fn snapshot_running(&self) -> bool {
        self.inner().snapshot_busy.load(Ordering::SeqCst)
    }

    /// Writes a snapshot into `storage.snapshots_dir`, then verifies it (if
    /// `snapshots.verify`), prunes to `snapshots.keep` and uploads it (if
    /// `[snapshots.upload]` names a bucket). Blocking: call it from a blocking thread.
    /// Writes go on meanwhile.
    ///
    /// # Errors
    /// [`SnapshotError::Busy`] while another snapshot runs;
    /// [`SnapshotError::Unavailable`] when [`Engine::snapshot_precheck`] refuses; any
    /// error of the steps (the working folder is removed, earlier snapshots are
    /// untouched).
    pub fn snapshot(&self, progress: &dyn Progress) -> Result<SnapshotReport, SnapshotError> {
        let busy = &self.inner().snapshot_busy;
        if busy
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(SnapshotError::Busy);
        }
        let _busy = Busy(busy);
        let started = Instant::now();
        let dir = self.config().storage.snapshots_dir.clone();
        if let Err(e) = self.snapshot_precheck() {
            tracing::error!(error = %e, "snapshot refused");
            return Err(e);
        }
        remove_stale_work(&dir);
        let work = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&work).map_err(io(&work))?;
        let result = self.snapshot_into(&dir, &work, progress, started);
        if let Err(e) = std::fs::remove_dir_all(&work) {
            tracing::warn!(path = %work.display(), error = %e, "cannot remove a snapshot's working folder");
        }
        match &result {
            Ok(r) => tracing::info!(file = %r.file.display(), seq = r.seq, bytes = r.bytes,
                replayed = r.replayed, checkpoint_ms = r.checkpoint_ms, duration_ms = r.duration_ms,
                "snapshot written"),
            Err(e) => tracing::error!(error = %e, "snapshot failed"),
        }
        result
    }

    /// Whether a snapshot can run now. A snapshot only reads the state, so it runs in
    /// degraded mode while the journal is failing (writes are refused then, the state
    /// holds still, and a copy is what an operator wants). It is refused when:
    ///
    /// - checkpoints keep failing: a snapshot starts with a full checkpoint to redb;
    /// - the snapshot directory lacks the space a snapshot may need (twice the redb
    ///   file: the working copy and the file), keeping `storage.min_free_bytes` free
    ///   when it shares the data directory's file system — a snapshot must not push the
    ///   server into degraded mode by filling the disk (so: always refused there while
    ///   free space is already under that minimum).
    ///
    /// Creates the snapshot directory.
    ///
    /// # Errors
    /// [`SnapshotError::Unavailable`] saying why; [`SnapshotError::Io`].
    pub fn snapshot_precheck(&self) -> Result<(), SnapshotError> {
        use super::degraded::Reason;
        let status = self.degraded_status();
        if status.reasons.contains(&Reason::CheckpointsFailing) {
            return Err(SnapshotError::Unavailable(format!(
                "storage is degraded: {} checkpoints to redb failed in a row, and a snapshot starts with one; retry once GET /readyz reports \"ready\"",
                status.checkpoint_failures
            )));
        }
        let storage = &self.config().storage;
        let dir = &storage.snapshots_dir;
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let redb = storage.data_dir.join(REDB_FILE);
        let needed = 2 * std::fs::metadata(&redb).map_err(io(&redb))?.len();
        let free = fs4::available_space(dir).map_err(io(dir))?;
        let reserve = if same_file_system(dir, &storage.data_dir) {
            storage.min_free_bytes
        } else {
            0
        };
        if free < needed.saturating_add(reserve) {
            let kept = if reserve > 0 {
                format!(
                    ", and {reserve} bytes must stay free on the data directory's disk (storage.min_free_bytes)"
                )
            } else {
                String::new()
            };
            return Err(SnapshotError::Unavailable(format!(
                "not enough disk space: {} has {free} bytes free; a snapshot needs up to {needed} (twice {REDB_FILE}){kept}",
                dir.display()
            )));
        }
        Ok(())
    }

    fn snapshot_into(
        &self,
        dir: &Path,
        work: &Path,
        progress: &dyn Progress,
        started: Instant,
    ) -> Result<SnapshotReport, SnapshotError> {
        let inner = self.inner();
        let payload = work.join(REDB_FILE);

        // 1. A consistent starting point, under the checkpoint lock.
        progress.stage("checkpoint", 1);
        let locked_at = Instant::now();
        let lock = inner.checkpoint_lock.lock();
        let checkpoint = self
            .checkpoint_locked(true, true)
            .map_err(|e| SnapshotError::Engine(format!("the snapshot's checkpoint failed: {e}")))?;
        let w = checkpoint.seq;
        let s = inner.journal.durable_seq();
        let txn = inner.store.db().begin_read().map_err(snapshot::redb_err)?;
        let tail = journal::read_range(inner.journal.dir(), w, s).map_err(|e| {
            SnapshotError::Engine(format!("cannot read the journal tail {w}..{s}: {e}"))
        })?;
        drop(lock);
        let checkpoint_ms = locked_at.elapsed().as_millis() as u64;
        progress.advance(1);

        // 2. Copy the checkpointed tables.
        {
            let copy = Database::create(&payload).map_err(snapshot::redb_err)?;
            snapshot::copy_tables(&txn, &copy, progress)?;
        }
        drop(txn);

        // 3. Bring every row to exactly `s`.
        let seq = if tail.is_empty() {
            w
        } else {
            progress.stage("replaying the journal tail", tail.len() as u64);
            journal::write_segment(&work.join(JOURNAL_DIR), &tail).map_err(io(work))?;
            let replayed_to = self.replay_into(work)?;
            if replayed_to != s {
                return Err(SnapshotError::Engine(format!(
                    "the copy was replayed to sequence {replayed_to}, expected {s}"
                )));
            }
            progress.advance(tail.len() as u64);
            s
        };

        // 4. Compact, count, pack, verify, prune, upload.
        progress.stage("compacting", 1);
        let counts = {
            let mut db = Database::open(&payload).map_err(snapshot::redb_err)?;
            while db.compact().map_err(snapshot::redb_err)? {}
            let txn = db.begin_read().map_err(snapshot::redb_err)?;
            snapshot::count(&txn)?
        };
        progress.advance(1);
        let now = self.now();
        let name = snapshot::file_name(now, seq);
        let target = dir.join(&name);
        let created_at = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        snapshot::write_file(&payload, &target, seq, &created_at, counts, progress)?;
        let cfg = &self.config().snapshots;
        if cfg.verify {
            snapshot::verify(&target, progress)?;
        }
        let bytes = std::fs::metadata(&target).map_err(io(&target))?.len();
        let pruned = snapshot::prune(dir, cfg.keep)?
            .iter()
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
            .collect();
        let (uploaded, upload_error) = match self.upload_snapshot(&target) {
            Ok(location) => (location, None),
            Err(e) => {
                tracing::error!(file = %target.display(), error = %e, "snapshot upload failed");
                (None, Some(e))
            }
        };
        Ok(SnapshotReport {
            file: target,
            name,
            seq,
            created_at,
            bytes,
            counts,
            checkpoint_seq: w,
            replayed: tail.len() as u64,
            checkpoint_ms,
            duration_ms: started.elapsed().as_millis() as u64,
            verified: cfg.verify,
            pruned,
            uploaded,
            upload_error,
        })
    }

    /// Opens a second engine on the copy in `work` (its redb file and the journal tail
    /// written next to it), which replays the tail, and shuts it down, which writes a
    /// checkpoint of every stream at the tail's last sequence. Returns that sequence.
    fn replay_into(&self, work: &Path) -> Result<u64, SnapshotError> {
        let mut config = self.config().clone();
        config.storage.data_dir = work.to_path_buf();
        config.content.output_dir = work.join("cdn");
        config.mirror.url.clear();
        config.cdn.s3.bucket.clear();
        config.snapshots.upload.bucket.clear();
        let copy = Engine::open(config, self.inner().clock.clone()).map_err(|e| {
            SnapshotError::Engine(format!("replaying the journal tail into the copy: {e}"))
        })?;
        let seq = copy.recovery().last_seq;
        copy.shutdown()
            .map_err(|e| SnapshotError::Engine(format!("checkpointing the copy: {e}")))?;
        Ok(seq)
    }

    /// Copies `file` off the machine when `[snapshots.upload]` names a bucket: to
    /// `{prefix}/{file name}` through `objstore` (one `PUT`, or a multipart upload for a
    /// file above 16 MiB). `Ok(None)` when off, else the object's location
    /// (`s3://bucket/key`). Blocking: it runs the upload on a runtime of its own, so call
    /// it from a blocking thread (as [`Engine::snapshot`] is), never from async code.
    ///
    /// # Errors
    /// Why the upload failed; the local snapshot stays.
    pub fn upload_snapshot(&self, file: &Path) -> Result<Option<String>, String> {
        let cfg = &self.config().snapshots.upload;
        if !cfg.enabled() {
            return Ok(None);
        }
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{}: not a snapshot file name", file.display()))?;
        let bucket = crate::objstore::Bucket::open(cfg).map_err(|e| e.to_string())?;
        let headers = crate::objstore::Headers {
            content_type: "application/octet-stream".into(),
            cache_control: None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("memora-snapshot-upload")
            .build()
            .map_err(|e| format!("cannot start the upload runtime: {e}"))?;
        let started = Instant::now();
        let sent = runtime
            .block_on(bucket.put_file(name, file, &headers))
            .map_err(|e| e.to_string())?;
        let prefix = cfg.prefix.trim_matches('/');
        let key = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        };
        let location = format!("s3://{}/{key}", cfg.bucket.trim());
        tracing::info!(%location, bytes = sent, duration_ms = started.elapsed().as_millis() as u64,
            "snapshot uploaded");
        Ok(Some(location))
    }

    /// Starts a snapshot as a background job of `owner` (`POST /api/v1/admin/snapshots`).
    ///
    /// # Errors
    /// 409 `CONFLICT` while a snapshot is being written.
    pub fn start_snapshot_job(&self, owner: &str) -> Result<JobView, ApiError> {
        if self.snapshot_running() {
            return Err(busy_error());
        }
        self.snapshot_precheck().map_err(api_error)?;
        let engine = self.clone();
        Ok(self
            .jobs()
            .spawn("snapshot", owner, move |handle| async move {
                let progress = JobProgress(handle);
                let outcome = tokio::task::spawn_blocking(move || engine.snapshot(&progress))
                    .await
                    .map_err(ApiError::internal)?;
                outcome.map(JobOutput::of).map_err(api_error)
            }))
    }

    /// Writes a snapshot every `snapshots.interval` until `shutdown` resolves (nothing
    /// when the interval is "off"), recording each run as periodic task `snapshot`. A
    /// snapshot in progress is finished before this returns.
    pub async fn run_snapshots(&self, shutdown: tokio::sync::watch::Receiver<bool>) {
        let Some(every) = self.config().snapshots.interval() else {
            return;
        };
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut shutdown = shutdown;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let started_ms = self.now().as_millisecond();
            let started = Instant::now();
            let engine = self.clone();
            let outcome = tokio::task::spawn_blocking(move || engine.snapshot(&NoProgress)).await;
            let summary = match outcome {
                Ok(Ok(r)) => match r.upload_error {
                    None => Ok(format!(
                        "{} ({} bytes, {} ms)",
                        r.name, r.bytes, r.duration_ms
                    )),
                    Some(e) => Err(format!("{} written; upload failed: {e}", r.name)),
                },
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(format!("snapshot task failed: {e}")),
            };
            self.jobs()
                .record_run("snapshot", started_ms, started.elapsed(), summary);
        }
    }
}

/// Whether `a` and `b` are on one file system (assumed when unknown).
fn same_file_system(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev(),
            _ => true,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        true
    }
}

/// The API answer for a snapshot that could not run or failed.
fn api_error(e: SnapshotError) -> ApiError {
    match e {
        SnapshotError::Busy => busy_error(),
        SnapshotError::Unavailable(why) => ApiError {
            retry_after: Some(super::degraded::RETRY_AFTER_SECS),
            ..ApiError::new(Code::StorageUnavailable, format!("Snapshot refused: {why}"))
        },
        e => ApiError::new(Code::Internal, e.to_string()),
    }
}

fn busy_error() -> ApiError {
    ApiError::new(
        Code::Conflict,
        "A snapshot is already being written; wait for its job to finish",
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::SystemClock;
    use crate::config::Config;

    #[tokio::test]
    async fn one_snapshot_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let vars = [
            ("MEMORA_STORAGE__DATA_DIR", dir.path().join("data")),
            ("MEMORA_STORAGE__SNAPSHOTS_DIR", dir.path().join("snaps")),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_string_lossy().into_owned()));
        let engine =
            Engine::open(Config::load(None, vars).unwrap(), Arc::new(SystemClock)).unwrap();
        engine.inner().snapshot_busy.store(true, Ordering::SeqCst);
        assert!(matches!(
            engine.snapshot(&NoProgress),
            Err(SnapshotError::Busy)
        ));
        let err = engine.start_snapshot_job("p_admin").unwrap_err();
        assert_eq!(err.code, Code::Conflict);
        engine.inner().snapshot_busy.store(false, Ordering::SeqCst);
        let view = engine.start_snapshot_job("p_admin").unwrap();
        let done = engine
            .jobs()
            .wait(&view.id, std::time::Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(done.state, crate::engine::jobs::JobState::Done, "{done:?}");
        assert!(!engine.snapshot_running(), "the busy mark is cleared");
        assert_eq!(done.result["seq"], 0);
        assert!(
            std::path::Path::new(done.result["file"].as_str().unwrap()).exists(),
            "{done:?}"
        );
    }

    #[tokio::test]
    async fn refused_while_checkpoints_keep_failing() {
        let dir = tempfile::tempdir().unwrap();
        let vars = [
            ("MEMORA_STORAGE__DATA_DIR", dir.path().join("data")),
            ("MEMORA_STORAGE__SNAPSHOTS_DIR", dir.path().join("snaps")),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_string_lossy().into_owned()));
        let engine =
            Engine::open(Config::load(None, vars).unwrap(), Arc::new(SystemClock)).unwrap();
        let limit = engine.config().storage.checkpoint_failures_before_degraded;
        for _ in 0..limit {
            engine.note_checkpoint(false);
        }
        assert!(engine.is_degraded());
        let err = engine.snapshot(&NoProgress).unwrap_err();
        assert!(matches!(err, SnapshotError::Unavailable(_)), "{err}");
        assert!(
            err.to_string().contains("checkpoints to redb failed"),
            "{err}"
        );
        let api = engine.start_snapshot_job("p_admin").unwrap_err();
        assert_eq!(api.code, Code::StorageUnavailable);
        assert!(!engine.snapshot_running(), "the busy mark is cleared");
        assert!(
            snapshot::list(&dir.path().join("snaps"))
                .unwrap()
                .is_empty()
        );
    }
}
