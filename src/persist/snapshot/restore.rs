//! Restoring a snapshot into a stopped data directory, atomically, keeping the previous
//! state aside.
//!
//! The state of a data directory is its redb file plus its journal. Both cannot be
//! swapped in one step, so the restored redb file is stamped with checkpoint sequences
//! at or above every sequence the old journal used: the journal then holds nothing
//! newer than the checkpoints, and the next start ignores it (and deletes it). The swap
//! itself is one `rename` over `memora.redb`, so a crash at any point leaves either the
//! old state or the restored one, never a mixture. The old redb file and journal are
//! moved to `pre-restore-<UTC time>/` in the data directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use redb::{Database, DatabaseError, ReadableDatabase, TableDefinition};

use super::file::{extract, sync_dir, verify};
use super::header::Header;
use super::tables::meta_value;
use super::{Progress, SnapshotError, redb_err};
use crate::persist::journal;

/// What [`restore`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreReport {
    /// The snapshot restored.
    pub file: PathBuf,
    /// Its header.
    pub header: Header,
    /// The checkpoint sequence stamped on the restored state: the snapshot's, or higher
    /// when the replaced journal had gone further (so that it is never replayed).
    pub restored_seq: u64,
    /// Where the previous redb file and journal were moved, if there were any.
    pub previous: Option<PathBuf>,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
}

/// The old state's sequences and mirror head, read while it is locked.
fn old_state(db: &Database) -> Result<(u64, u64), SnapshotError> {
    let txn = db.begin_read().map_err(redb_err)?;
    let seq = meta_value(&txn, "progress_seq")?.max(meta_value(&txn, "wallet_seq")?);
    drop(txn);
    let head = crate::persist::mirror::log::meta(db)
        .map_err(redb_err)?
        .head;
    Ok((seq, head))
}

/// A fresh directory name `pre-restore-<time>` (with `-2`, `-3`… if taken).
fn aside_dir(data_dir: &Path, now: jiff::Timestamp) -> PathBuf {
    let base = format!("pre-restore-{}", now.strftime("%Y%m%dT%H%M%SZ"));
    let mut candidate = data_dir.join(&base);
    let mut n = 2;
    while candidate.exists() {
        candidate = data_dir.join(format!("{base}-{n}"));
        n += 1;
    }
    candidate
}

/// Restores the snapshot `file` into the data directory whose redb file is
/// `redb_path` and journal `journal_dir`, at `now` (names the aside folder).
///
/// The snapshot is verified completely first; nothing in the data directory changes
/// unless it passes and no server holds the redb file.
///
/// # Errors
/// The verification's errors (corrupted, truncated, newer format…),
/// [`SnapshotError::Locked`] while a server runs on the data directory,
/// [`SnapshotError::Io`] / [`SnapshotError::Redb`] otherwise.
pub fn restore(
    redb_path: &Path,
    journal_dir: &Path,
    file: &Path,
    now: jiff::Timestamp,
    progress: &dyn Progress,
) -> Result<RestoreReport, SnapshotError> {
    let started = Instant::now();
    let verified = verify(file, progress)?;
    let data_dir = redb_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&data_dir).map_err(|e| SnapshotError::io(&data_dir, e))?;

    // Hold the old file's lock until the swap: a server starting meanwhile is refused.
    let old = if redb_path.exists() {
        match Database::create(redb_path) {
            Ok(db) => Some(db),
            Err(DatabaseError::DatabaseAlreadyOpen) => {
                return Err(SnapshotError::Locked {
                    path: redb_path.to_owned(),
                });
            }
            Err(e) => {
                tracing::warn!(path = %redb_path.display(), error = %e,
                    "the current redb file cannot be opened; it is moved aside as it is");
                None
            }
        }
    } else {
        None
    };
    let (old_seq, old_head) = match &old {
        Some(db) => old_state(db).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the current checkpoint sequences");
            (0, 0)
        }),
        None => (0, 0),
    };
    let journal_last = match journal::scan(journal_dir) {
        Ok(report) => report.last_seq.unwrap_or(0),
        Err(_) => journal::last_seq_bound(journal_dir)
            .map_err(|e| SnapshotError::io(journal_dir, std::io::Error::other(e.to_string())))?,
    };
    let restored_seq = verified.header.seq.max(old_seq).max(journal_last);

    let tmp = data_dir.join(format!(".restore-{}.redb", uuid::Uuid::new_v4().simple()));
    let prepared = (|| {
        extract(&verified, &tmp, progress)?;
        let db = Database::create(&tmp).map_err(redb_err)?;
        let txn = db.begin_write().map_err(redb_err)?;
        {
            let mut meta = txn
                .open_table(TableDefinition::<&str, u64>::new("meta"))
                .map_err(redb_err)?;
            meta.insert("progress_seq", restored_seq)
                .map_err(redb_err)?;
            meta.insert("wallet_seq", restored_seq).map_err(redb_err)?;
        }
        crate::persist::mirror::log::mark_restored(&txn, old_head).map_err(redb_err)?;
        txn.commit().map_err(redb_err)?;
        Ok::<_, SnapshotError>(db)
    })();
    let new = match prepared {
        Ok(db) => db,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };

    let mut previous = None;
    if redb_path.exists() || journal_dir.exists() {
        let aside = aside_dir(&data_dir, now);
        std::fs::create_dir_all(&aside).map_err(|e| SnapshotError::io(&aside, e))?;
        if redb_path.exists() {
            let kept = aside.join(redb_path.file_name().unwrap_or_default());
            if std::fs::hard_link(redb_path, &kept).is_err() {
                std::fs::copy(redb_path, &kept).map_err(|e| SnapshotError::io(&kept, e))?;
            }
        }
        sync_dir(&aside)?;
        previous = Some(aside);
    }
    // The swap: from here on the data directory holds the restored state.
    std::fs::rename(&tmp, redb_path).map_err(|e| SnapshotError::io(redb_path, e))?;
    sync_dir(&data_dir)?;
    if let Some(aside) = &previous
        && journal_dir.exists()
    {
        let target = aside.join(journal_dir.file_name().unwrap_or_default());
        std::fs::rename(journal_dir, &target).map_err(|e| SnapshotError::io(journal_dir, e))?;
        sync_dir(&data_dir)?;
    }
    drop(new);
    drop(old);
    Ok(RestoreReport {
        file: file.to_owned(),
        header: verified.header,
        restored_seq,
        previous,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}
