//! The redb file (`memora.redb`): checkpointed state, written in one transaction per
//! checkpoint and read at start (content, accounts) or lazily (a student's progress and
//! wallet on first access). See `docs/storage.md` for the tables and the commit protocol.
//!
//! The store deals in encoded bytes; the engine decides what they mean (`codec`).

use std::path::{Path, PathBuf};

use redb::{
    Database, DatabaseError, ReadOnlyDatabase, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableDefinition,
};

/// Format version of the redb layout (tables and key shapes) and of the journal's event
/// set. Bumped on layout changes and when events are added; a newer binary migrates
/// older files on open, an older one refuses newer files (persistence.md "Data-format
/// policy") — before it reads a journal whose events it would not know.
///
/// - 1: the first release (content, accounts, progress, wallets).
/// - 2: SRS seasons, cards and idempotency records, audit, groups, the SRS archive, the
///   mirror queue, and their events. Migration from 1: the new tables are created
///   empty (and `card_counts` built), nothing else changes.
pub const STORE_FORMAT: u64 = 2;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const SUBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("subjects");
const PLANS: TableDefinition<&str, &[u8]> = TableDefinition::new("plans");
const PLAYERS: TableDefinition<&str, &[u8]> = TableDefinition::new("players");
const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions");
/// Key: `"{player_id}\x1f{subject_id lowercased}"` (ids never contain U+001F), so one
/// student's rows are one contiguous range.
const PROGRESS: TableDefinition<&str, &[u8]> = TableDefinition::new("progress");
const WALLETS: TableDefinition<&str, &[u8]> = TableDefinition::new("wallets");
// --- SRS (issue 6) ---
const SEASONS: TableDefinition<&str, &[u8]> = TableDefinition::new("seasons");
/// Key: `"{player_id}\x1f{season_id}\x1f{question id lowercased}"`, so one student's
/// cards are one contiguous range.
const CARDS: TableDefinition<&str, &[u8]> = TableDefinition::new("cards");
/// Key: `"{player_id}\x1f{scope}"`; value: `[at_ms: i64 big-endian][record]`.
const IDEMPOTENCY: TableDefinition<&str, &[u8]> = TableDefinition::new("idempotency");
/// Key: `[at_ms: i64 big-endian][idempotency key]`, value empty: the expiry order.
const IDEMPOTENCY_EXPIRY: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("idempotency_expiry");
// --- end SRS ---
/// Classes (groups), key: group id; replaced as a whole on change.
const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("groups");

const KEY_FORMAT: &str = "format";
const KEY_PROGRESS_SEQ: &str = "progress_seq";
const KEY_WALLET_SEQ: &str = "wallet_seq";

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (a running server) holds the file.
    #[error(
        "{path} is in use by another Memora process (a running server holds it); stop the server first, or use the admin API of the running server instead"
    )]
    Locked {
        /// The redb file.
        path: PathBuf,
    },
    /// Written by a newer binary.
    #[error(
        "{path} has storage format {found}, newer than this binary supports ({STORE_FORMAT}); upgrade Memora"
    )]
    NewerFormat {
        /// The redb file.
        path: PathBuf,
        /// The format found.
        found: u64,
    },
    /// Any redb error (I/O, corruption), with context.
    #[error("redb: {0}")]
    Redb(String),
}

fn redb_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Redb(e.to_string())
}

/// The checkpoint sequences recorded in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meta {
    /// Journal sequence covered by the last progress/content/accounts checkpoint.
    pub progress_seq: u64,
    /// Journal sequence covered by the last wallet checkpoint.
    pub wallet_seq: u64,
}

/// Everything one checkpoint writes, applied in one redb transaction.
#[derive(Debug, Default)]
pub struct Batch {
    /// New progress checkpoint sequence, if this batch is a progress checkpoint.
    pub progress_seq: Option<u64>,
    /// New wallet checkpoint sequence, if this batch is a wallet checkpoint.
    pub wallet_seq: Option<u64>,
    /// Replace the whole subjects table (content changes are rare and small).
    pub replace_subjects: Option<Vec<(String, Vec<u8>)>>,
    /// Replace the whole plans table.
    pub replace_plans: Option<Vec<(String, Vec<u8>)>>,
    /// Upserted players.
    pub players: Vec<(String, Vec<u8>)>,
    /// Upserted sessions, keyed by token hash.
    pub sessions: Vec<([u8; 32], Vec<u8>)>,
    /// Removed sessions.
    pub sessions_deleted: Vec<[u8; 32]>,
    /// Upserted progress rows: (player id, lowercased subject id, record).
    pub progress: Vec<(String, String, Vec<u8>)>,
    /// Upserted wallets.
    pub wallets: Vec<(String, Vec<u8>)>,
    // --- SRS (issue 6) ---
    /// Replace the whole seasons table (seasons are few).
    pub replace_seasons: Option<Vec<(String, Vec<u8>)>>,
    /// Upserted cards: (player id, season id, lowercased question id, record).
    pub cards: Vec<(String, String, String, Vec<u8>)>,
    /// Removed cards: (player id, season id, lowercased question id).
    pub cards_deleted: Vec<(String, String, String)>,
    /// Upserted idempotency records: (player id, scope, recorded at in unix ms, record).
    pub idempotency: Vec<(String, String, i64, Vec<u8>)>,
    /// Removes idempotency records recorded before this instant (unix ms).
    pub idempotency_expire_before_ms: Option<i64>,
    /// Cards moved from the live table to the archive (`persist::srs_archive`).
    pub archive_moves: Vec<super::srs_archive::ArchiveMove>,
    /// New retention cutoff: archived cards before it are eligible for deletion.
    pub archive_eligible_before_ms: Option<i64>,
    /// Deletions of archived cards.
    pub archive_purges: Vec<super::srs_archive::ArchivePurge>,
    // --- end SRS ---
    /// Mirror queue keys of the rows above (`persist::mirror::log`), when the MariaDB
    /// mirror is on; `None` when it is off (the checkpoint is then marked unlogged).
    pub mirror_keys: Option<Vec<String>>,
    // --- audit and privacy (issue 3) ---
    /// Audit records, erasures and retention (`persist::audit`).
    pub audit: crate::persist::audit::AuditBatch,
    /// Erased players: their player, wallet, progress, card and idempotency rows are
    /// deleted (written before the rows above, so rows re-keyed to an anonymous id in the
    /// same batch survive).
    pub erased_players: Vec<String>,
    // --- end audit ---
    /// Replace the whole groups table (groups are few).
    pub replace_groups: Option<Vec<(String, Vec<u8>)>>,
}

impl Batch {
    /// Number of rows written (for logs and metrics).
    pub fn rows(&self) -> usize {
        self.replace_subjects.as_ref().map_or(0, Vec::len)
            + self.replace_plans.as_ref().map_or(0, Vec::len)
            + self.players.len()
            + self.sessions.len()
            + self.sessions_deleted.len()
            + self.progress.len()
            + self.wallets.len()
            + self.replace_seasons.as_ref().map_or(0, Vec::len)
            + self.cards.len()
            + self.cards_deleted.len()
            + self.idempotency.len()
            + self.archive_moves.len()
            + usize::from(self.archive_eligible_before_ms.is_some())
            + self.archive_purges.len()
            + self.erased_players.len()
            + self.replace_groups.as_ref().map_or(0, Vec::len)
            + self.audit.records.len()
            + usize::from(self.audit.delete_before_ms.is_some())
            + usize::from(self.audit.clear_ip_before_ms.is_some())
    }
}

/// One student's checkpointed rows: (lowercased subject id, progress record) pairs and
/// the wallet record, all still encoded.
pub type StudentRows = (Vec<(String, Vec<u8>)>, Option<Vec<u8>>);

/// Row counts, for `memora check` and the engine report.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Counts {
    /// Subjects.
    pub subjects: u64,
    /// Plans.
    pub plans: u64,
    /// Players.
    pub players: u64,
    /// Sessions.
    pub sessions: u64,
    /// (student, subject) progress rows.
    pub progress: u64,
    /// Wallets.
    pub wallets: u64,
}

/// The open redb file.
pub struct Store {
    db: Db,
    path: PathBuf,
}

/// The redb handle, replaceable: a failed redb commit poisons the handle until it is
/// reopened (persistence.md), and leaving degraded mode reopens it. Transactions are
/// begun exactly as on [`Database`].
pub(crate) struct Db {
    handle: parking_lot::RwLock<Option<Database>>,
}

impl Db {
    fn new(db: Database) -> Self {
        Db {
            handle: parking_lot::RwLock::new(Some(db)),
        }
    }

    /// [`Database::begin_write`].
    pub(crate) fn begin_write(&self) -> Result<redb::WriteTransaction, redb::TransactionError> {
        match &*self.handle.read() {
            Some(db) => db.begin_write(),
            None => Err(redb::TransactionError::Storage(
                redb::StorageError::DatabaseClosed,
            )),
        }
    }

    /// [`ReadableDatabase::begin_read`].
    pub(crate) fn begin_read(&self) -> Result<redb::ReadTransaction, redb::TransactionError> {
        match &*self.handle.read() {
            Some(db) => db.begin_read(),
            None => Err(redb::TransactionError::Storage(
                redb::StorageError::DatabaseClosed,
            )),
        }
    }

    /// The database while it is open.
    pub(crate) fn get(&self) -> Option<parking_lot::MappedRwLockReadGuard<'_, Database>> {
        parking_lot::RwLockReadGuard::try_map(self.handle.read(), Option::as_ref).ok()
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn progress_key(player_id: &str, subject_key: &str) -> String {
    format!("{player_id}\u{1f}{subject_key}")
}

/// One student's checkpointed cards: (season id, lowercased question id, record).
pub type CardRows = Vec<(String, String, Vec<u8>)>;

/// One student's SRS rows: cards, and idempotency records as (scope, record).
pub type StudentSrsRows = (CardRows, Vec<(String, Vec<u8>)>);

impl Store {
    /// Opens (or creates) the redb file at `path`, creating every table and stamping the
    /// format on a new file.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another process holds it, [`StoreError::NewerFormat`]
    /// for a file from a newer binary, [`StoreError::Redb`] otherwise.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Redb(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let db = match Database::create(path) {
            Ok(db) => db,
            Err(DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::Locked {
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(StoreError::Redb(format!("{}: {e}", path.display()))),
        };
        let store = Store {
            db: Db::new(db),
            path: path.to_owned(),
        };
        store.init()?;
        Ok(store)
    }

    fn init(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(redb_err)?;
        {
            let mut meta = txn.open_table(META).map_err(redb_err)?;
            let found = meta.get(KEY_FORMAT).map_err(redb_err)?.map(|v| v.value());
            match found {
                None => {
                    meta.insert(KEY_FORMAT, STORE_FORMAT).map_err(redb_err)?;
                }
                Some(f) if f > STORE_FORMAT => {
                    return Err(StoreError::NewerFormat {
                        path: self.path.clone(),
                        found: f,
                    });
                }
                // Format 1 → 2: the tables of format 2 are created just below.
                Some(f) if f < STORE_FORMAT => {
                    tracing::info!(
                        path = %self.path.display(),
                        from = f,
                        to = STORE_FORMAT,
                        "migrating the storage format"
                    );
                    meta.insert(KEY_FORMAT, STORE_FORMAT).map_err(redb_err)?;
                }
                Some(_) => {}
            }
            txn.open_table(SUBJECTS).map_err(redb_err)?;
            txn.open_table(PLANS).map_err(redb_err)?;
            txn.open_table(PLAYERS).map_err(redb_err)?;
            txn.open_table(SESSIONS).map_err(redb_err)?;
            txn.open_table(PROGRESS).map_err(redb_err)?;
            txn.open_table(WALLETS).map_err(redb_err)?;
            txn.open_table(SEASONS).map_err(redb_err)?;
            txn.open_table(CARDS).map_err(redb_err)?;
            txn.open_table(IDEMPOTENCY).map_err(redb_err)?;
            txn.open_table(IDEMPOTENCY_EXPIRY).map_err(redb_err)?;
            crate::persist::audit::create_tables(&txn)?;
            txn.open_table(GROUPS).map_err(redb_err)?;
        }
        super::srs_archive::init(&txn)?;
        txn.commit().map_err(redb_err)
    }

    /// The redb handle, for the mirror's queue (`persist::mirror::log`).
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// Closes and reopens the redb file (after a failed commit poisoned the handle).
    /// Readers and writers wait meanwhile.
    ///
    /// # Errors
    /// [`StoreError::Redb`] when the file cannot be opened again; the handle is closed
    /// then and the next call retries.
    pub fn reopen(&self) -> Result<(), StoreError> {
        let mut handle = self.db.handle.write();
        drop(handle.take());
        let db = Database::create(&self.path)
            .map_err(|e| StoreError::Redb(format!("{}: {e}", self.path.display())))?;
        *handle = Some(db);
        tracing::info!(path = %self.path.display(), "redb reopened");
        Ok(())
    }

    fn open_db(&self) -> Result<parking_lot::MappedRwLockReadGuard<'_, Database>, StoreError> {
        self.db
            .get()
            .ok_or_else(|| StoreError::Redb("redb is closed (being reopened)".to_owned()))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The checkpoint sequences.
    ///
    /// # Errors
    /// [`StoreError::Redb`].
    pub fn meta(&self) -> Result<Meta, StoreError> {
        read_meta(&*self.open_db()?)
    }

    fn scan(
        &self,
        def: TableDefinition<&str, &[u8]>,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(redb_err)?;
        let table = txn.open_table(def).map_err(redb_err)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(redb_err)? {
            let (k, v) = row.map_err(redb_err)?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Every stored subject record.
    ///
    /// # Errors
    /// [`StoreError::Redb`].
    pub fn subjects(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.scan(SUBJECTS)
    }

    /// Every stored plan record.
    ///
    /// # Errors
    /// [`StoreError::Redb`].
    pub fn plans(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.scan(PLANS)
    }

    /// Every stored player record.
    ///
    /// # Errors
    /// [`StoreError::Redb`].
    pub fn players(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.scan(PLAYERS)
    }

    /// Every stored session record.
    ///
    /// # Errors
    /// [`StoreError::Redb`].
    pub fn sessions(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(redb_err)?;
        let table = txn.open_table(SESSIONS).map_err(redb_err)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(redb_err)? {
            let (_, v) = row.map_err(redb_err)?;
            out.push(v.value().to_vec());
        }
        Ok(out)
    }

    /// One student's checkpointed progress rows (lowercased subject id, record) and wallet.
    ///
    /// # Errors
    /// [`StoreError::Redb`].
    pub fn student(&self, player_id: &str) -> Result<StudentRows, StoreError> {
        let txn = self.db.begin_read().map_err(redb_err)?;
        student_rows(&txn, player_id)
    }

    /// Several students' checkpointed rows (as [`Store::student`]), in the order of
    /// `player_ids`, read in one transaction (reports).
    ///
    /// # Errors
    /// [`StoreError::Redb`].
    pub fn students(&self, player_ids: &[&str]) -> Result<Vec<StudentRows>, StoreError> {
        let txn = self.db.begin_read().map_err(redb_err)?;
        player_ids.iter().map(|id| student_rows(&txn, id)).collect()
    }

    /// Every stored group record.
    ///
    /// # Errors
    /// [`StoreError::Redb`].
    pub fn groups(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.scan(GROUPS)
    }

    /// Every stored season record.
    ///
    /// # Errors
    /// [`StoreError::Redb`].
    pub fn seasons(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.scan(SEASONS)
    }

    /// One student's checkpointed cards of every season, and idempotency records
    /// (scope, record), all still encoded.
    ///
    /// # Errors
    /// [`StoreError::Redb`].
    pub fn student_srs(&self, player_id: &str) -> Result<StudentSrsRows, StoreError> {
        let txn = self.db.begin_read().map_err(redb_err)?;
        let start = format!("{player_id}\u{1f}");
        let end = format!("{player_id}\u{20}");
        let cards = txn.open_table(CARDS).map_err(redb_err)?;
        let mut card_rows = Vec::new();
        for row in cards
            .range(start.as_str()..end.as_str())
            .map_err(redb_err)?
        {
            let (k, v) = row.map_err(redb_err)?;
            let rest = &k.value()[start.len()..];
            if let Some((season, question)) = rest.split_once('\u{1f}') {
                card_rows.push((season.to_owned(), question.to_owned(), v.value().to_vec()));
            }
        }
        let idem = txn.open_table(IDEMPOTENCY).map_err(redb_err)?;
        let mut idem_rows = Vec::new();
        for row in idem.range(start.as_str()..end.as_str()).map_err(redb_err)? {
            let (k, v) = row.map_err(redb_err)?;
            let value = v.value();
            if value.len() >= 8 {
                idem_rows.push((k.value()[start.len()..].to_owned(), value[8..].to_vec()));
            }
        }
        Ok((card_rows, idem_rows))
    }

    /// Writes one checkpoint batch in one durable transaction. Returns how many mirror
    /// queue keys it added beyond `batch.mirror_keys` (audit records rewritten by
    /// erasures, the retention marks).
    ///
    /// # Errors
    /// [`StoreError::Redb`]; nothing of the batch is visible then.
    pub fn commit(&self, batch: &Batch) -> Result<usize, StoreError> {
        let txn = self.db.begin_write().map_err(redb_err)?;
        let mut extra_keys = 0;
        {
            erase_players(&txn, &batch.erased_players)?;
            if let Some(subjects) = &batch.replace_subjects {
                replace_all(&txn, SUBJECTS, subjects)?;
            }
            if let Some(plans) = &batch.replace_plans {
                replace_all(&txn, PLANS, plans)?;
            }
            let mut players = txn.open_table(PLAYERS).map_err(redb_err)?;
            for (id, rec) in &batch.players {
                players
                    .insert(id.as_str(), rec.as_slice())
                    .map_err(redb_err)?;
            }
            let mut sessions = txn.open_table(SESSIONS).map_err(redb_err)?;
            for (hash, rec) in &batch.sessions {
                sessions
                    .insert(hash.as_slice(), rec.as_slice())
                    .map_err(redb_err)?;
            }
            for hash in &batch.sessions_deleted {
                sessions.remove(hash.as_slice()).map_err(redb_err)?;
            }
            let mut progress = txn.open_table(PROGRESS).map_err(redb_err)?;
            for (player, subject, rec) in &batch.progress {
                progress
                    .insert(progress_key(player, subject).as_str(), rec.as_slice())
                    .map_err(redb_err)?;
            }
            let mut wallets = txn.open_table(WALLETS).map_err(redb_err)?;
            for (player, rec) in &batch.wallets {
                wallets
                    .insert(player.as_str(), rec.as_slice())
                    .map_err(redb_err)?;
            }
            commit_srs(&txn, batch)?;
            let rewritten = crate::persist::audit::commit(&txn, &batch.audit)?;
            if let Some(groups) = &batch.replace_groups {
                replace_all(&txn, GROUPS, groups)?;
            }
            // Mirror queue (issue 5): same transaction, so a checkpoint and its queue
            // entries are durable together.
            // Audit records rewritten by erasures and the retention marks are only known
            // here: their keys join the checkpoint's.
            if batch.rows() > 0 {
                use crate::persist::mirror::log;
                let mut extra: Vec<String> = rewritten.iter().map(log::audit_key).collect();
                if batch.audit.delete_before_ms.is_some()
                    || batch.audit.clear_ip_before_ms.is_some()
                {
                    extra.push(log::AUDIT_RETENTION.to_owned());
                }
                log::append(&txn, batch.mirror_keys.as_deref(), &extra).map_err(redb_err)?;
                if batch.mirror_keys.is_some() {
                    extra_keys = extra.len();
                }
            }
            let mut meta = txn.open_table(META).map_err(redb_err)?;
            if let Some(seq) = batch.progress_seq {
                meta.insert(KEY_PROGRESS_SEQ, seq).map_err(redb_err)?;
            }
            if let Some(seq) = batch.wallet_seq {
                meta.insert(KEY_WALLET_SEQ, seq).map_err(redb_err)?;
            }
        }
        txn.commit().map_err(redb_err)?;
        Ok(extra_keys)
    }

    /// Row counts of every table.
    ///
    /// # Errors
    /// [`StoreError::Redb`].
    pub fn counts(&self) -> Result<Counts, StoreError> {
        read_counts(&*self.open_db()?)
    }
}

/// What a read-only look at the redb file found ([`inspect`]).
#[derive(Debug, Clone, Copy)]
pub enum Inspection {
    /// There is no file yet (nothing was ever stored).
    Absent,
    /// The file was not closed cleanly (a crash): redb must repair it, which the next
    /// start does; a read-only look cannot read it meanwhile.
    NeedsRepair,
    /// The file is readable: its checkpoint sequences and row counts.
    Readable(Meta, Counts),
}

/// Opens the redb file at `path` read-only, for `memora check`: reads the format,
/// checkpoint sequences and row counts and modifies nothing (not even redb's own
/// bookkeeping, which a write-mode open updates).
///
/// # Errors
/// [`StoreError::Locked`] while a server holds the file, [`StoreError::NewerFormat`],
/// [`StoreError::Redb`] for anything else.
pub fn inspect(path: &Path) -> Result<Inspection, StoreError> {
    if !path.exists() {
        return Ok(Inspection::Absent);
    }
    let db = match ReadOnlyDatabase::open(path) {
        Ok(db) => db,
        Err(DatabaseError::DatabaseAlreadyOpen) => {
            return Err(StoreError::Locked {
                path: path.to_owned(),
            });
        }
        Err(DatabaseError::RepairAborted) => return Ok(Inspection::NeedsRepair),
        Err(e) => return Err(StoreError::Redb(format!("{}: {e}", path.display()))),
    };
    let format = {
        let txn = db.begin_read().map_err(redb_err)?;
        match txn.open_table(META) {
            Ok(meta) => meta.get(KEY_FORMAT).map_err(redb_err)?.map(|v| v.value()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(redb_err(e)),
        }
    };
    if let Some(found) = format.filter(|&f| f > STORE_FORMAT) {
        return Err(StoreError::NewerFormat {
            path: path.to_owned(),
            found,
        });
    }
    Ok(Inspection::Readable(read_meta(&db)?, read_counts(&db)?))
}

fn read_meta(db: &impl ReadableDatabase) -> Result<Meta, StoreError> {
    let txn = db.begin_read().map_err(redb_err)?;
    let meta = txn.open_table(META).map_err(redb_err)?;
    let get = |k: &str| -> Result<u64, StoreError> {
        Ok(meta.get(k).map_err(redb_err)?.map_or(0, |v| v.value()))
    };
    Ok(Meta {
        progress_seq: get(KEY_PROGRESS_SEQ)?,
        wallet_seq: get(KEY_WALLET_SEQ)?,
    })
}

fn read_counts(db: &impl ReadableDatabase) -> Result<Counts, StoreError> {
    let txn = db.begin_read().map_err(redb_err)?;
    let n = |def: TableDefinition<&str, &[u8]>| -> Result<u64, StoreError> {
        txn.open_table(def)
            .map_err(redb_err)?
            .len()
            .map_err(redb_err)
    };
    Ok(Counts {
        subjects: n(SUBJECTS)?,
        plans: n(PLANS)?,
        players: n(PLAYERS)?,
        sessions: txn
            .open_table(SESSIONS)
            .map_err(redb_err)?
            .len()
            .map_err(redb_err)?,
        progress: n(PROGRESS)?,
        wallets: n(WALLETS)?,
    })
}

/// The SRS part of a checkpoint batch (seasons, cards, idempotency records and their
/// expiry).
fn commit_srs(txn: &redb::WriteTransaction, batch: &Batch) -> Result<(), StoreError> {
    if let Some(seasons) = &batch.replace_seasons {
        replace_all(txn, SEASONS, seasons)?;
    }
    // Cards, archive moves, counts, retention cutoff and purges.
    super::srs_archive::write(txn, batch)?;
    let mut idem = txn.open_table(IDEMPOTENCY).map_err(redb_err)?;
    let mut expiry = txn.open_table(IDEMPOTENCY_EXPIRY).map_err(redb_err)?;
    for (player, scope, at_ms, rec) in &batch.idempotency {
        let key = progress_key(player, scope);
        let mut value = at_ms.to_be_bytes().to_vec();
        value.extend_from_slice(rec);
        idem.insert(key.as_str(), value.as_slice())
            .map_err(redb_err)?;
        let mut order = at_ms.to_be_bytes().to_vec();
        order.extend_from_slice(key.as_bytes());
        expiry
            .insert(order.as_slice(), [].as_slice())
            .map_err(redb_err)?;
    }
    if let Some(cutoff) = batch.idempotency_expire_before_ms {
        let end = cutoff.to_be_bytes();
        let mut expired = Vec::new();
        for row in expiry.range(..end.as_slice()).map_err(redb_err)? {
            let (k, _) = row.map_err(redb_err)?;
            expired.push(k.value().to_vec());
        }
        for order in expired {
            expiry.remove(order.as_slice()).map_err(redb_err)?;
            let Ok(key) = std::str::from_utf8(&order[8..]) else {
                continue;
            };
            // A newer record under the same key has its own expiry entry: keep it.
            let stale = idem
                .get(key)
                .map_err(redb_err)?
                .is_some_and(|v| v.value().get(..8).is_some_and(|at| at < end.as_slice()));
            if stale {
                idem.remove(key).map_err(redb_err)?;
            }
        }
    }
    Ok(())
}

/// Deletes every row keyed by an erased player (players.md "Privacy"): the player, the
/// wallet, and the progress, card and idempotency ranges. Sessions are deleted through
/// `sessions_deleted`.
fn erase_players(txn: &redb::WriteTransaction, ids: &[String]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut players = txn.open_table(PLAYERS).map_err(redb_err)?;
    let mut wallets = txn.open_table(WALLETS).map_err(redb_err)?;
    for id in ids {
        players.remove(id.as_str()).map_err(redb_err)?;
        wallets.remove(id.as_str()).map_err(redb_err)?;
    }
    for def in [PROGRESS, CARDS, IDEMPOTENCY] {
        let mut table = txn.open_table(def).map_err(redb_err)?;
        for id in ids {
            let start = format!("{id}\u{1f}");
            let end = format!("{id}\u{20}");
            let mut doomed = Vec::new();
            for row in table
                .range(start.as_str()..end.as_str())
                .map_err(redb_err)?
            {
                doomed.push(row.map_err(redb_err)?.0.value().to_owned());
            }
            for key in doomed {
                table.remove(key.as_str()).map_err(redb_err)?;
            }
        }
    }
    Ok(())
}

/// One student's progress rows and wallet within a read transaction.
fn student_rows(txn: &redb::ReadTransaction, player_id: &str) -> Result<StudentRows, StoreError> {
    let progress = txn.open_table(PROGRESS).map_err(redb_err)?;
    let start = format!("{player_id}\u{1f}");
    let end = format!("{player_id}\u{20}");
    let mut rows = Vec::new();
    for row in progress
        .range(start.as_str()..end.as_str())
        .map_err(redb_err)?
    {
        let (k, v) = row.map_err(redb_err)?;
        let subject = k.value()[start.len()..].to_owned();
        rows.push((subject, v.value().to_vec()));
    }
    let wallets = txn.open_table(WALLETS).map_err(redb_err)?;
    let wallet = wallets
        .get(player_id)
        .map_err(redb_err)?
        .map(|v| v.value().to_vec());
    Ok((rows, wallet))
}

fn replace_all(
    txn: &redb::WriteTransaction,
    def: TableDefinition<&str, &[u8]>,
    rows: &[(String, Vec<u8>)],
) -> Result<(), StoreError> {
    let mut table = txn.open_table(def).map_err(redb_err)?;
    table.retain(|_, _| false).map_err(redb_err)?;
    for (k, v) in rows {
        table.insert(k.as_str(), v.as_slice()).map_err(redb_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopen_keeps_the_data_and_the_handle_works_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("memora.redb")).expect("open");
        let batch = Batch {
            progress_seq: Some(5),
            players: vec![("p_a".into(), vec![1])],
            ..Batch::default()
        };
        store.commit(&batch).expect("commit");
        store.reopen().expect("reopen");
        assert_eq!(store.meta().expect("meta").progress_seq, 5);
        assert_eq!(store.players().expect("players").len(), 1);
        let next = Batch {
            progress_seq: Some(6),
            ..Batch::default()
        };
        store.commit(&next).expect("commit after reopen");
        assert_eq!(store.meta().expect("meta").progress_seq, 6);
    }

    #[test]
    fn checkpoint_rows_round_trip_and_lock_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("memora.redb");
        let store = Store::open(&path).expect("open");
        assert_eq!(store.meta().expect("meta"), Meta::default());
        let batch = Batch {
            progress_seq: Some(41),
            wallet_seq: Some(7),
            replace_subjects: Some(vec![("s1".into(), vec![1, 2])]),
            players: vec![("p_a".into(), vec![9])],
            sessions: vec![([3u8; 32], vec![4])],
            progress: vec![
                ("p_a".into(), "s1".into(), vec![5]),
                ("p_a".into(), "s2".into(), vec![6]),
                ("p_ab".into(), "s1".into(), vec![7]),
            ],
            wallets: vec![("p_a".into(), vec![8])],
            ..Batch::default()
        };
        store.commit(&batch).expect("commit");
        assert_eq!(
            store.meta().expect("meta"),
            Meta {
                progress_seq: 41,
                wallet_seq: 7
            }
        );
        let (rows, wallet) = store.student("p_a").expect("student");
        assert_eq!(
            rows,
            vec![("s1".to_string(), vec![5]), ("s2".to_string(), vec![6])]
        );
        assert_eq!(wallet, Some(vec![8]));
        assert_eq!(store.sessions().expect("sessions"), vec![vec![4]]);
        // Replacing subjects drops the ones not listed.
        store
            .commit(&Batch {
                replace_subjects: Some(vec![("s2".into(), vec![1])]),
                sessions_deleted: vec![[3u8; 32]],
                ..Batch::default()
            })
            .expect("commit");
        assert_eq!(
            store.subjects().expect("subjects"),
            vec![("s2".into(), vec![1])]
        );
        assert!(store.sessions().expect("sessions").is_empty());
        let counts = store.counts().expect("counts");
        assert_eq!((counts.progress, counts.players), (3, 1));
    }

    #[test]
    fn newer_format_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("memora.redb");
        {
            let store = Store::open(&path).expect("open");
            let txn = store.db.begin_write().expect("txn");
            txn.open_table(META)
                .expect("meta")
                .insert(KEY_FORMAT, STORE_FORMAT + 1)
                .expect("insert");
            txn.commit().expect("commit");
        }
        let err = Store::open(&path).expect_err("newer format must be refused");
        assert!(matches!(err, StoreError::NewerFormat { .. }), "{err}");
    }

    #[test]
    fn older_format_is_migrated_on_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("memora.redb");
        {
            let store = Store::open(&path).expect("open");
            let txn = store.db.begin_write().expect("txn");
            txn.open_table(META)
                .expect("meta")
                .insert(KEY_FORMAT, 1)
                .expect("insert");
            txn.commit().expect("commit");
        }
        let store = Store::open(&path).expect("format 1 opens");
        let txn = store.db.begin_read().expect("txn");
        let found = txn
            .open_table(META)
            .expect("meta")
            .get(KEY_FORMAT)
            .expect("get")
            .map(|v| v.value());
        assert_eq!(found, Some(STORE_FORMAT));
        assert_eq!(STORE_FORMAT, 2);
    }
}
