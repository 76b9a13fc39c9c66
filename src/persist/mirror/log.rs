//! The mirror's durable queue inside redb: which rows each checkpoint changed.
//!
//! Every checkpoint that writes rows gets the next *checkpoint number* (`head`), in the
//! same redb transaction as its rows. When the mirror is on, the keys of the rows it
//! wrote are appended under that number; the mirror later re-reads the *current* rows of
//! those keys (it is a state mirror) and removes entries once MariaDB has them. When the
//! mirror is off nothing is queued, and the number is recorded as `unlogged`: a mirror
//! whose position is at or below it must resynchronize fully. See docs/mirror.md.
//!
//! Entry key: 8-byte big-endian checkpoint number, then the row key (`w␟player`,
//! `p␟player␟subject`, `u␟player`, `k␟player␟season␟question`, `a␟<32 hex digits of
//! the audit time key>`, `c` for content, `s` for seasons or `r` for the audit retention
//! marks), so entries sort by checkpoint. The SRS archive adds
//! `v␟player␟season␟question` (an archive row), `e␟cutoff_ms` (retention flagging),
//! `x␟before_ms␟season` (a purge; empty season = all) and `n␟player␟anon` (an erased
//! player's cards).
//! A *position* uses the same encoding: everything at or below it has been mirrored.

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

const LOG: TableDefinition<&[u8], ()> = TableDefinition::new("mirror_log");
const STATE: TableDefinition<&str, u64> = TableDefinition::new("mirror_meta");
const HEAD: &str = "head";
const UNLOGGED: &str = "unlogged";
const PRUNED: &str = "pruned";

/// Key kinds of queued rows.
pub const WALLET: char = 'w';
/// A (player, subject) progress row.
pub const PROGRESS: char = 'p';
/// A player (account) row.
pub const PLAYER: char = 'u';
/// The content tables (subjects and lessons), refreshed whole.
pub const CONTENT: &str = "c";
/// A (player, season, question) SRS card row.
pub const CARD: char = 'k';
/// The seasons changed: make sure `srs_cards` has a partition for each.
pub const SEASONS: &str = "s";
/// An audit record (`security_events` or `interaction_log` row).
pub const AUDIT: char = 'a';
/// The audit retention marks moved: delete expired rows and clear expired client IPs.
pub const AUDIT_RETENTION: &str = "r";

/// A (player, season, question) row of the card archive (`cards_archive`).
pub const ARCHIVED: char = 'v';
/// The retention cutoff was raised: `e␟cutoff_ms` flags the archive rows before it.
pub const ARCHIVE_FLAGGED: char = 'e';
/// A purge: `x␟before_ms␟season` deletes the archive rows before it (empty season: all).
pub const ARCHIVE_PURGED: char = 'x';
/// An erasure: `n␟player␟anon` drops the player's live card rows and moves their
/// archive rows to the anonymous id (the live cards come back under it as `k` keys).
pub const CARDS_REKEYED: char = 'n';

/// Queue key of an archive row (`question` lowercased, as in redb).
pub fn archived_key(player: &str, season: &str, question: &str) -> String {
    format!("{ARCHIVED}\u{1f}{player}\u{1f}{season}\u{1f}{question}")
}

/// Queue key of a raised retention cutoff.
pub fn archive_flagged_key(cutoff_ms: i64) -> String {
    format!("{ARCHIVE_FLAGGED}\u{1f}{cutoff_ms}")
}

/// Queue key of a purge of the archive rows before `before_ms` (of `season`, or all).
pub fn archive_purged_key(before_ms: i64, season: Option<&str>) -> String {
    format!(
        "{ARCHIVE_PURGED}\u{1f}{before_ms}\u{1f}{}",
        season.unwrap_or("")
    )
}

/// Queue key of an erased player's cards (`anon` is the id they are kept under).
pub fn cards_rekeyed_key(player: &str, anon: &str) -> String {
    format!("{CARDS_REKEYED}\u{1f}{player}\u{1f}{anon}")
}

/// Queue key of a wallet row.
pub fn wallet_key(player: &str) -> String {
    format!("{WALLET}\u{1f}{player}")
}

/// Queue key of a progress row (`subject` lowercased, as in redb).
pub fn progress_key(player: &str, subject: &str) -> String {
    format!("{PROGRESS}\u{1f}{player}\u{1f}{subject}")
}

/// Queue key of a card row (`question` lowercased, as in redb).
pub fn card_key(player: &str, season: &str, question: &str) -> String {
    format!("{CARD}\u{1f}{player}\u{1f}{season}\u{1f}{question}")
}

/// Queue key of an audit record, by its redb key (`persist::audit` time key).
pub fn audit_key(time_key: &[u8; 16]) -> String {
    format!("{AUDIT}\u{1f}{}", hex::encode(time_key))
}

/// The audit time key of the rest of an audit queue key (after `a␟`).
pub fn parse_audit_key(hex: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(hex, &mut out).ok()?;
    Some(out)
}

/// Queue key of a player row.
pub fn player_key(player: &str) -> String {
    format!("{PLAYER}\u{1f}{player}")
}

/// The position meaning "every entry of checkpoints below `n` is mirrored".
pub fn position_before(n: u64) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

/// The checkpoint number of a position or entry key (0 for a malformed one).
pub fn checkpoint_of(position: &[u8]) -> u64 {
    position
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

/// The row key of an entry key.
pub fn row_key_of(entry: &[u8]) -> &str {
    entry
        .get(8..)
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or("")
}

/// Counters of the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogMeta {
    /// Number of the last checkpoint that wrote rows.
    pub head: u64,
    /// Number of the last checkpoint written while the mirror was off (0: none).
    pub unlogged: u64,
    /// Entries of checkpoints below this number were removed.
    pub pruned: u64,
}

/// Called by `Store::commit` for a batch with rows: takes the next checkpoint number
/// and queues `keys` and `extra` under it, or marks it unlogged when `keys` is `None`.
///
/// # Errors
/// The redb error (the whole checkpoint transaction then fails).
pub(crate) fn append(
    txn: &WriteTransaction,
    keys: Option<&[String]>,
    extra: &[String],
) -> Result<(), redb::Error> {
    let mut state = txn.open_table(STATE)?;
    let n = state.get(HEAD)?.map_or(0, |v| v.value()) + 1;
    state.insert(HEAD, n)?;
    match keys {
        Some(keys) => {
            let mut log = txn.open_table(LOG)?;
            let mut entry = Vec::with_capacity(64);
            for key in keys.iter().chain(extra) {
                entry.clear();
                entry.extend_from_slice(&n.to_be_bytes());
                entry.extend_from_slice(key.as_bytes());
                log.insert(entry.as_slice(), ())?;
            }
        }
        None => {
            state.insert(UNLOGGED, n)?;
        }
    }
    Ok(())
}

/// The queue's counters.
///
/// # Errors
/// The redb error.
pub fn meta(db: &Database) -> Result<LogMeta, redb::Error> {
    let txn = db.begin_read()?;
    let state = match txn.open_table(STATE) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(LogMeta::default()),
        Err(e) => return Err(e.into()),
    };
    let get = |k: &str| -> Result<u64, redb::Error> { Ok(state.get(k)?.map_or(0, |v| v.value())) };
    Ok(LogMeta {
        head: get(HEAD)?,
        unlogged: get(UNLOGGED)?,
        pruned: get(PRUNED)?,
    })
}

/// Up to `limit` entry keys after `position`, in order.
///
/// # Errors
/// The redb error.
pub fn after(db: &Database, position: &[u8], limit: usize) -> Result<Vec<Vec<u8>>, redb::Error> {
    let txn = db.begin_read()?;
    let log = match txn.open_table(LOG) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    let range = (
        std::ops::Bound::Excluded(position),
        std::ops::Bound::Unbounded,
    );
    for row in log.range::<&[u8]>(range)? {
        if out.len() >= limit {
            break;
        }
        let (k, _) = row?;
        out.push(k.value().to_vec());
    }
    Ok(out)
}

/// Number of entries after `position` (the mirror's lag in rows).
///
/// # Errors
/// The redb error.
pub fn count_after(db: &Database, position: &[u8]) -> Result<u64, redb::Error> {
    let txn = db.begin_read()?;
    let log = match txn.open_table(LOG) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let range = (
        std::ops::Bound::Excluded(position),
        std::ops::Bound::Unbounded,
    );
    let mut n = 0;
    for row in log.range::<&[u8]>(range)? {
        row?;
        n += 1;
    }
    Ok(n)
}

/// Removes the entries of checkpoints below `n` (MariaDB has them) and records `n` as
/// the pruned floor.
///
/// # Errors
/// The redb error.
pub fn prune_below(db: &Database, n: u64) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        let mut state = txn.open_table(STATE)?;
        if state.get(PRUNED)?.map_or(0, |v| v.value()) >= n {
            return Ok(());
        }
        let mut log = txn.open_table(LOG)?;
        let end = n.to_be_bytes();
        log.retain_in::<&[u8], _>(..end.as_slice(), |_, _| false)?;
        state.insert(PRUNED, n)?;
    }
    txn.commit()?;
    Ok(())
}

/// After `memora restore` (persist::snapshot): MariaDB holds rows of a state that no
/// longer exists, so no position it holds may be trusted. Empties the queue and moves
/// `head` past both this file's and the replaced data directory's (`previous_head`),
/// marking it unlogged: every position MariaDB can hold is then at or below `unlogged`
/// and the mirror resynchronizes fully on its next connection.
///
/// # Errors
/// The redb error.
pub(crate) fn mark_restored(txn: &WriteTransaction, previous_head: u64) -> Result<(), redb::Error> {
    let mut state = txn.open_table(STATE)?;
    let head = state.get(HEAD)?.map_or(0, |v| v.value()).max(previous_head) + 1;
    state.insert(HEAD, head)?;
    state.insert(UNLOGGED, head)?;
    let mut log = txn.open_table(LOG)?;
    log.retain(|_, _| false)?;
    Ok(())
}
