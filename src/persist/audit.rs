//! The audit tables of the redb file (players.md "Audit and interaction logs"): records
//! keyed by time, an index by player and by kind, and the retention marks. Written only
//! by checkpoints (one transaction with the rest of the checkpoint), read by the admin
//! audit listing and the export.
//!
//! Tables:
//! - `audit`: [`time_key`] (time, then record id; 16 bytes) → encoded [`AuditRecord`];
//! - `audit_index`: `b'p' ++ player_id ++ 0x1f ++ time_key` and `b'k' ++ kind ++
//!   time_key` → empty, so one player's or one kind's records are one contiguous range;
//! - `audit_meta`: `deleted_before_ms`, `ip_cleared_before_ms` (retention progress).

use redb::{ReadableTable, TableDefinition, TableError, WriteTransaction};

use crate::persist::codec;
use crate::persist::store::{Store, StoreError};
use crate::players::audit::{AuditKind, AuditRecord, time_key};

const AUDIT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("audit");
const AUDIT_INDEX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("audit_index");
const AUDIT_META: TableDefinition<&str, i64> = TableDefinition::new("audit_meta");

const KEY_DELETED_BEFORE: &str = "deleted_before_ms";
const KEY_IP_CLEARED_BEFORE: &str = "ip_cleared_before_ms";

fn redb_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Redb(e.to_string())
}

/// What a checkpoint writes to the audit tables.
#[derive(Debug, Default, Clone)]
pub struct AuditBatch {
    /// New records: (record id, record).
    pub records: Vec<(u64, AuditRecord)>,
    /// Erased players: (player id, anonymous id) — their records are re-keyed and
    /// anonymised.
    pub erase: Vec<(String, String)>,
    /// Delete every record older than this (unix ms).
    pub delete_before_ms: Option<i64>,
    /// Forget the client IP of every record older than this (unix ms).
    pub clear_ip_before_ms: Option<i64>,
}

impl AuditBatch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.erase.is_empty()
            && self.delete_before_ms.is_none()
            && self.clear_ip_before_ms.is_none()
    }
}

/// Retention progress stored in `audit_meta`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditMarks {
    /// Records older than this were deleted (unix ms; 0 = never).
    pub deleted_before_ms: i64,
    /// Client IPs of records older than this were cleared (unix ms; 0 = never).
    pub ip_cleared_before_ms: i64,
}

fn player_index(player: &str, key: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(player.len() + 18);
    out.push(b'p');
    out.extend_from_slice(player.as_bytes());
    out.push(0x1f);
    out.extend_from_slice(key);
    out
}

fn kind_index(kind: AuditKind, key: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(18);
    out.push(b'k');
    out.push(kind.index());
    out.extend_from_slice(key);
    out
}

fn index_keys(record: &AuditRecord, key: &[u8; 16]) -> Vec<Vec<u8>> {
    let mut keys = vec![kind_index(record.kind, key)];
    if let Some(player) = &record.player_id {
        keys.push(player_index(player, key));
    }
    keys
}

/// Creates the tables (at open, in the store's init transaction).
///
/// # Errors
/// [`StoreError::Redb`].
pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(AUDIT).map_err(redb_err)?;
    txn.open_table(AUDIT_INDEX).map_err(redb_err)?;
    txn.open_table(AUDIT_META).map_err(redb_err)?;
    Ok(())
}

fn decode_record(bytes: &[u8]) -> Result<AuditRecord, StoreError> {
    codec::decode(bytes).map_err(|e| StoreError::Redb(format!("audit record: {e}")))
}

/// Writes an audit batch inside a checkpoint's transaction: new records, then erasures,
/// then retention (so a record written and expired in one batch is gone).
///
/// # Errors
/// [`StoreError::Redb`]; the whole checkpoint transaction is abandoned then.
pub(crate) fn commit(txn: &WriteTransaction, batch: &AuditBatch) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut main = txn.open_table(AUDIT).map_err(redb_err)?;
    let mut index = txn.open_table(AUDIT_INDEX).map_err(redb_err)?;
    for (id, record) in &batch.records {
        let key = time_key(record.at_ms, *id);
        main.insert(key.as_slice(), codec::encode(record).as_slice())
            .map_err(redb_err)?;
        for k in index_keys(record, &key) {
            index
                .insert(k.as_slice(), [].as_slice())
                .map_err(redb_err)?;
        }
    }
    for (player, anon) in &batch.erase {
        let lo = player_index(player, &[0; 16]);
        let hi = player_index(player, &[0xff; 16]);
        let mut keys = Vec::new();
        for row in index
            .range(lo.as_slice()..=hi.as_slice())
            .map_err(redb_err)?
        {
            let (k, _) = row.map_err(redb_err)?;
            keys.push(k.value().to_vec());
        }
        for k in keys {
            index.remove(k.as_slice()).map_err(redb_err)?;
            let Some(time) = k
                .get(k.len() - 16..)
                .and_then(|t| <[u8; 16]>::try_from(t).ok())
            else {
                continue;
            };
            let found = main
                .get(time.as_slice())
                .map_err(redb_err)?
                .map(|v| v.value().to_vec());
            let Some(bytes) = found else { continue };
            let mut record = decode_record(&bytes)?;
            record.anonymise(player, anon);
            main.insert(time.as_slice(), codec::encode(&record).as_slice())
                .map_err(redb_err)?;
            index
                .insert(player_index(anon, &time).as_slice(), [].as_slice())
                .map_err(redb_err)?;
        }
    }
    let mut meta = txn.open_table(AUDIT_META).map_err(redb_err)?;
    if let Some(cutoff) = batch.delete_before_ms {
        let end = time_key(cutoff, 0);
        let mut doomed = Vec::new();
        for row in main.range(..end.as_slice()).map_err(redb_err)? {
            let (k, v) = row.map_err(redb_err)?;
            doomed.push((k.value().to_vec(), decode_record(v.value())?));
        }
        for (k, record) in doomed {
            main.remove(k.as_slice()).map_err(redb_err)?;
            if let Ok(key) = <[u8; 16]>::try_from(k.as_slice()) {
                for ik in index_keys(&record, &key) {
                    index.remove(ik.as_slice()).map_err(redb_err)?;
                }
            }
        }
        let old = meta
            .get(KEY_DELETED_BEFORE)
            .map_err(redb_err)?
            .map_or(0, |v| v.value());
        meta.insert(KEY_DELETED_BEFORE, old.max(cutoff))
            .map_err(redb_err)?;
    }
    if let Some(cutoff) = batch.clear_ip_before_ms {
        let from = meta
            .get(KEY_IP_CLEARED_BEFORE)
            .map_err(redb_err)?
            .map_or(i64::MIN, |v| v.value());
        if cutoff > from {
            let lo = time_key(from, 0);
            let hi = time_key(cutoff, 0);
            let mut changed = Vec::new();
            for row in main.range(lo.as_slice()..hi.as_slice()).map_err(redb_err)? {
                let (k, v) = row.map_err(redb_err)?;
                let mut record = decode_record(v.value())?;
                if record.clear_ip() {
                    changed.push((k.value().to_vec(), codec::encode(&record)));
                }
            }
            for (k, v) in changed {
                main.insert(k.as_slice(), v.as_slice()).map_err(redb_err)?;
            }
            meta.insert(KEY_IP_CLEARED_BEFORE, cutoff)
                .map_err(redb_err)?;
        }
    }
    Ok(())
}

/// Which records a scan walks.
#[derive(Debug, Clone, Copy)]
pub enum ScanIndex<'a> {
    /// Every record, by time.
    Time,
    /// One player's records, by time.
    Player(&'a str),
    /// One kind's records, by time.
    Kind(AuditKind),
}

/// Reads up to `max` records with keys in `[lo, hi)`, newest first, keeping those for
/// which `want` (given the record) is true: `(key, record)`.
///
/// # Errors
/// [`StoreError::Redb`], or a record that does not decode.
pub fn scan(
    store: &Store,
    by: ScanIndex<'_>,
    lo: [u8; 16],
    hi: [u8; 16],
    max: usize,
    mut want: impl FnMut(&AuditRecord) -> bool,
) -> Result<Vec<([u8; 16], AuditRecord)>, StoreError> {
    let txn = store.db().begin_read().map_err(redb_err)?;
    let main = match txn.open_table(AUDIT) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(redb_err(e)),
    };
    let mut out = Vec::new();
    if max == 0 || lo >= hi {
        return Ok(out);
    }
    let mut keep = |key: [u8; 16], bytes: &[u8]| -> Result<bool, StoreError> {
        let record = decode_record(bytes)?;
        if want(&record) {
            out.push((key, record));
        }
        Ok(out.len() >= max)
    };
    match by {
        ScanIndex::Time => {
            for row in main
                .range(lo.as_slice()..hi.as_slice())
                .map_err(redb_err)?
                .rev()
            {
                let (k, v) = row.map_err(redb_err)?;
                let Ok(key) = <[u8; 16]>::try_from(k.value()) else {
                    continue;
                };
                if keep(key, v.value())? {
                    break;
                }
            }
        }
        ScanIndex::Player(_) | ScanIndex::Kind(_) => {
            let (from, to) = match by {
                ScanIndex::Player(p) => (player_index(p, &lo), player_index(p, &hi)),
                ScanIndex::Kind(k) => (kind_index(k, &lo), kind_index(k, &hi)),
                ScanIndex::Time => unreachable!("handled above"),
            };
            let index = txn.open_table(AUDIT_INDEX).map_err(redb_err)?;
            for row in index
                .range(from.as_slice()..to.as_slice())
                .map_err(redb_err)?
                .rev()
            {
                let (k, _) = row.map_err(redb_err)?;
                let k = k.value();
                let Some(key) = k
                    .get(k.len().saturating_sub(16)..)
                    .and_then(|t| <[u8; 16]>::try_from(t).ok())
                else {
                    continue;
                };
                let Some(v) = main.get(key.as_slice()).map_err(redb_err)? else {
                    continue;
                };
                if keep(key, v.value())? {
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// The retention marks.
///
/// # Errors
/// [`StoreError::Redb`].
pub fn marks(store: &Store) -> Result<AuditMarks, StoreError> {
    let txn = store.db().begin_read().map_err(redb_err)?;
    let meta = match txn.open_table(AUDIT_META) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(AuditMarks::default()),
        Err(e) => return Err(redb_err(e)),
    };
    let get = |k: &str| -> Result<i64, StoreError> {
        Ok(meta.get(k).map_err(redb_err)?.map_or(0, |v| v.value()))
    };
    Ok(AuditMarks {
        deleted_before_ms: get(KEY_DELETED_BEFORE)?,
        ip_cleared_before_ms: get(KEY_IP_CLEARED_BEFORE)?,
    })
}

/// Whether any stored record has a time in `[from_ms, to_ms)` and, when `with_ip`, a
/// client IP still — how the retention job decides that there is nothing to do. Stops
/// at the first match; without `with_ip` reads one row.
///
/// # Errors
/// [`StoreError::Redb`].
pub fn any_between(
    store: &Store,
    from_ms: i64,
    to_ms: i64,
    with_ip: bool,
) -> Result<bool, StoreError> {
    let found = scan(
        store,
        ScanIndex::Time,
        time_key(from_ms, 0),
        time_key(to_ms, 0),
        1,
        |r| !with_ip || r.client_ip.is_some(),
    )?;
    Ok(!found.is_empty())
}

/// Number of stored records.
///
/// # Errors
/// [`StoreError::Redb`].
pub fn count(store: &Store) -> Result<u64, StoreError> {
    use redb::ReadableTableMetadata;
    let txn = store.db().begin_read().map_err(redb_err)?;
    match txn.open_table(AUDIT) {
        Ok(t) => t.len().map_err(redb_err),
        Err(TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(redb_err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: AuditKind, at: i64, player: Option<&str>) -> AuditRecord {
        let mut r = AuditRecord::new(kind, at, "ok");
        if let Some(p) = player {
            r = r.player(p);
        }
        r.client_ip = Some("192.0.2.1".into());
        r
    }

    fn commit_batch(store: &Store, batch: AuditBatch) {
        let txn = store.db().begin_write().expect("txn");
        commit(&txn, &batch).expect("commit");
        txn.commit().expect("commit txn");
    }

    fn all(store: &Store, by: ScanIndex<'_>) -> Vec<(i64, Option<String>, Option<String>)> {
        scan(store, by, [0; 16], [0xff; 16], usize::MAX, |_| true)
            .expect("scan")
            .into_iter()
            .map(|(_, r)| (r.at_ms, r.player_id, r.client_ip))
            .collect()
    }

    #[test]
    fn records_are_indexed_erased_and_expired() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("memora.redb")).expect("open");
        commit_batch(
            &store,
            AuditBatch {
                records: vec![
                    (1, record(AuditKind::LoginSuccess, 100, Some("p_a"))),
                    (2, record(AuditKind::LoginFailed, 200, Some("p_b"))),
                    (3, record(AuditKind::LoginFailed, 300, None)),
                    (4, record(AuditKind::Logout, 400, Some("p_a"))),
                ],
                ..AuditBatch::default()
            },
        );
        assert_eq!(count(&store).expect("count"), 4);
        // Newest first; by player; by kind.
        let times = |v: Vec<(i64, Option<String>, Option<String>)>| {
            v.into_iter().map(|t| t.0).collect::<Vec<_>>()
        };
        assert_eq!(
            times(all(&store, ScanIndex::Time)),
            vec![400, 300, 200, 100]
        );
        assert_eq!(times(all(&store, ScanIndex::Player("p_a"))), vec![400, 100]);
        assert_eq!(
            times(all(&store, ScanIndex::Kind(AuditKind::LoginFailed))),
            vec![300, 200]
        );
        // A player whose id is a prefix of another's does not see the other's records.
        assert!(all(&store, ScanIndex::Player("p_")).is_empty());
        // Bounds and limits.
        let some = scan(
            &store,
            ScanIndex::Time,
            time_key(150, 0),
            time_key(400, 0),
            1,
            |_| true,
        )
        .expect("scan");
        assert_eq!(some.len(), 1);
        assert_eq!(some[0].1.at_ms, 300);

        commit_batch(
            &store,
            AuditBatch {
                erase: vec![("p_a".into(), "anon_1".into())],
                clear_ip_before_ms: Some(250),
                ..AuditBatch::default()
            },
        );
        assert!(all(&store, ScanIndex::Player("p_a")).is_empty());
        assert_eq!(
            all(&store, ScanIndex::Player("anon_1")),
            vec![
                (400, Some("anon_1".into()), None),
                (100, Some("anon_1".into()), None)
            ]
        );
        assert_eq!(
            all(&store, ScanIndex::Player("p_b")),
            vec![(200, Some("p_b".into()), None)]
        );
        assert_eq!(
            all(&store, ScanIndex::Kind(AuditKind::LoginFailed))[0],
            (300, None, Some("192.0.2.1".into()))
        );
        assert!(any_between(&store, 250, 1000, true).expect("any"));
        assert!(!any_between(&store, 0, 250, true).expect("any"));

        commit_batch(
            &store,
            AuditBatch {
                delete_before_ms: Some(300),
                ..AuditBatch::default()
            },
        );
        assert_eq!(times(all(&store, ScanIndex::Time)), vec![400, 300]);
        assert!(all(&store, ScanIndex::Player("p_b")).is_empty());
        assert_eq!(
            times(all(&store, ScanIndex::Kind(AuditKind::LoginFailed))),
            vec![300]
        );
        assert_eq!(
            marks(&store).expect("marks"),
            AuditMarks {
                deleted_before_ms: 300,
                ip_cleared_before_ms: 250
            }
        );
    }
}
