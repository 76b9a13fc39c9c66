//! `memora compact` (persistence.md): gives the free pages of the redb file back to the
//! file system. redb grows its file and reuses freed pages but never shrinks it by
//! itself; compaction rewrites it densely. Offline only: it needs the exclusive lock.

use std::path::Path;
use std::time::Instant;

use redb::{Database, DatabaseError};

use super::store::StoreError;

/// What a compaction did.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct CompactReport {
    /// File size before, bytes.
    pub bytes_before: u64,
    /// File size after, bytes.
    pub bytes_after: u64,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
}

/// Compacts the redb file at `path`.
///
/// # Errors
/// [`StoreError::Locked`] while a server holds it, [`StoreError::Redb`] otherwise (also
/// for a missing file).
pub fn compact(path: &Path) -> Result<CompactReport, StoreError> {
    let started = Instant::now();
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len());
    let bytes_before =
        size(path).map_err(|e| StoreError::Redb(format!("{}: {e}", path.display())))?;
    let mut db = match Database::open(path) {
        Ok(db) => db,
        Err(DatabaseError::DatabaseAlreadyOpen) => {
            return Err(StoreError::Locked {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(StoreError::Redb(format!("{}: {e}", path.display()))),
    };
    // One call compacts as far as it can; a second finds nothing more to move.
    while db
        .compact()
        .map_err(|e| StoreError::Redb(format!("{}: {e}", path.display())))?
    {}
    drop(db);
    let bytes_after =
        size(path).map_err(|e| StoreError::Redb(format!("{}: {e}", path.display())))?;
    Ok(CompactReport {
        bytes_before,
        bytes_after,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::persist::store::{Batch, Store};

    #[test]
    fn compaction_shrinks_a_file_with_deleted_rows_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memora.redb");
        {
            let store = Store::open(&path).unwrap();
            let big = vec![7u8; 4096];
            let players: Vec<(String, Vec<u8>)> = (0..2000)
                .map(|i| (format!("p{i:05}"), big.clone()))
                .collect();
            store
                .commit(&Batch {
                    progress_seq: Some(1),
                    players,
                    ..Batch::default()
                })
                .unwrap();
            store
                .commit(&Batch {
                    replace_subjects: Some(vec![("s".into(), vec![1])]),
                    ..Batch::default()
                })
                .unwrap();
        }
        // Drop most players by rewriting the file through redb directly.
        {
            let db = Database::open(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(redb::TableDefinition::<&str, &[u8]>::new("players"))
                .unwrap()
                .retain(|k, _| k < "p00010")
                .unwrap();
            txn.commit().unwrap();
        }
        let report = compact(&path).unwrap();
        assert!(report.bytes_after < report.bytes_before / 2, "{report:?}");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.players().unwrap().len(), 10);
        assert_eq!(store.meta().unwrap().progress_seq, 1);
        let locked = compact(&path).unwrap_err();
        assert!(matches!(locked, StoreError::Locked { .. }), "{locked}");
    }
}
