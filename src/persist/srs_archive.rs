//! redb side of SRS archive and retention (srs.md "Archive and retention"): the archive
//! table, live-card counts per (season, player), archived-card counts per (season,
//! archive time), and the retention cutoff. Written only inside a checkpoint
//! transaction (`Store::commit` → [`write`]), read by the engine for archive status and
//! to enumerate a season's cards without scanning every card.
//!
//! Tables (all new; `cards` is the live table of `store.rs`):
//! - `cards_archive`: `"{season}␟{player}␟{question}"` → `[archived_at_ms: i64 BE][card]`;
//!   one row per card (archiving a card again replaces its row).
//! - `card_counts`: `"{season}␟{player}"` → live rows in `cards`; built once from `cards`
//!   when a file written before it existed is opened.
//! - `cards_archive_counts`: `season ‖ 0x1F ‖ archived_at_ms (i64 BE)` → rows archived at
//!   that instant (one entry per archive batch), so counts and the eligible part are
//!   sums over a few entries, never scans.
//! - `srs_archive_meta`: `counts_built`, `eligible_before_ms` (archived cards with
//!   `archived_at` before it are `eligible_for_deletion`; it only grows).

use std::collections::{BTreeSet, HashMap};

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::store::{Batch, Store, StoreError};

/// The live cards table (same definition as in `store.rs`).
const CARDS: TableDefinition<&str, &[u8]> = TableDefinition::new("cards");
const ARCHIVE: TableDefinition<&str, &[u8]> = TableDefinition::new("cards_archive");
const CARD_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("card_counts");
const ARCHIVE_COUNTS: TableDefinition<&[u8], u64> = TableDefinition::new("cards_archive_counts");
const META: TableDefinition<&str, i64> = TableDefinition::new("srs_archive_meta");

const COUNTS_BUILT: &str = "counts_built";
const ELIGIBLE_BEFORE: &str = "eligible_before_ms";
const SEP: char = '\u{1f}';

/// One player's checkpointed cards of one season: (lowercased question id, encoded
/// card).
pub type SeasonCards = Vec<(String, Vec<u8>)>;

/// One card moved from the live table to the archive.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveMove {
    /// Player id.
    pub player_id: String,
    /// Season id.
    pub season: String,
    /// Lowercased question id.
    pub question: String,
    /// When it was archived (unix ms).
    pub archived_at_ms: i64,
    /// The encoded card (`codec`), as in the live table.
    pub card: Vec<u8>,
}

/// A deletion of archived cards: those archived before `before_ms`, of one season or of
/// all (`season: None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivePurge {
    /// One season, or every season.
    pub season: Option<String>,
    /// Rows archived strictly before this instant (unix ms) are deleted.
    pub before_ms: i64,
}

/// Archived-card counts of one season at one archive instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveCount {
    /// When (unix ms).
    pub archived_at_ms: i64,
    /// Rows.
    pub cards: u64,
}

fn redb_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Redb(e.to_string())
}

fn card_key(player: &str, season: &str, question: &str) -> String {
    format!("{player}{SEP}{season}{SEP}{question}")
}

fn archive_key(season: &str, player: &str, question: &str) -> String {
    format!("{season}{SEP}{player}{SEP}{question}")
}

fn count_key(season: &str, player: &str) -> String {
    format!("{season}{SEP}{player}")
}

fn archive_count_key(season: &str, at_ms: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(season.len() + 9);
    key.extend_from_slice(season.as_bytes());
    key.push(0x1f);
    key.extend_from_slice(&at_ms.to_be_bytes());
    key
}

/// Splits an `archive_count_key` back into (season, at).
fn split_archive_count_key(key: &[u8]) -> Option<(&str, i64)> {
    let (season, rest) = key.split_at(key.len().checked_sub(9)?);
    let at = <[u8; 8]>::try_from(rest.get(1..)?).ok()?;
    Some((std::str::from_utf8(season).ok()?, i64::from_be_bytes(at)))
}

/// The archive time stored in front of an archive row.
fn archived_at(value: &[u8]) -> i64 {
    value
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(i64::MIN, i64::from_be_bytes)
}

/// Creates the tables and, for a file whose live cards predate `card_counts`, builds the
/// counts from `cards` once (a migration, logged).
///
/// # Errors
/// [`StoreError::Redb`].
pub(crate) fn init(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(ARCHIVE).map_err(redb_err)?;
    txn.open_table(ARCHIVE_COUNTS).map_err(redb_err)?;
    let mut meta = txn.open_table(META).map_err(redb_err)?;
    if meta.get(COUNTS_BUILT).map_err(redb_err)?.is_some() {
        txn.open_table(CARD_COUNTS).map_err(redb_err)?;
        return Ok(());
    }
    let mut counts: HashMap<String, u64> = HashMap::new();
    {
        let cards = txn.open_table(CARDS).map_err(redb_err)?;
        for row in cards.iter().map_err(redb_err)? {
            let (k, _) = row.map_err(redb_err)?;
            let mut parts = k.value().splitn(3, SEP);
            if let (Some(player), Some(season), Some(_)) =
                (parts.next(), parts.next(), parts.next())
            {
                *counts.entry(count_key(season, player)).or_default() += 1;
            }
        }
    }
    if !counts.is_empty() {
        tracing::info!(
            keys = counts.len(),
            "migrating the redb file: counting live SRS cards per season and player"
        );
    }
    let mut table = txn.open_table(CARD_COUNTS).map_err(redb_err)?;
    for (key, n) in counts {
        table.insert(key.as_str(), n).map_err(redb_err)?;
    }
    meta.insert(COUNTS_BUILT, 1).map_err(redb_err)?;
    Ok(())
}

/// Writes the card part of a checkpoint batch: archive moves first (a card re-created
/// after its move, in the same batch, is then written live again), then live upserts and
/// deletions, keeping `card_counts` exact; then the retention cutoff and purges.
///
/// # Errors
/// [`StoreError::Redb`]; the whole checkpoint transaction fails then.
pub(crate) fn write(txn: &WriteTransaction, batch: &Batch) -> Result<(), StoreError> {
    // Erased players' live cards were deleted by `Store::commit` already (their cards
    // come back under the anonymous id below, as ordinary upserts).
    forget_erased_counts(txn, &batch.audit.erase)?;
    let mut live_delta: HashMap<String, i64> = HashMap::new();
    let mut cards = txn.open_table(CARDS).map_err(redb_err)?;
    if !batch.archive_moves.is_empty() {
        let mut archive = txn.open_table(ARCHIVE).map_err(redb_err)?;
        let mut archive_delta: HashMap<Vec<u8>, i64> = HashMap::new();
        let mut value = Vec::new();
        for m in &batch.archive_moves {
            let live = card_key(&m.player_id, &m.season, &m.question);
            if cards.remove(live.as_str()).map_err(redb_err)?.is_some() {
                *live_delta
                    .entry(count_key(&m.season, &m.player_id))
                    .or_default() -= 1;
            }
            value.clear();
            value.extend_from_slice(&m.archived_at_ms.to_be_bytes());
            value.extend_from_slice(&m.card);
            let key = archive_key(&m.season, &m.player_id, &m.question);
            let old = archive
                .insert(key.as_str(), value.as_slice())
                .map_err(redb_err)?
                .map(|v| archived_at(v.value()));
            if let Some(old_at) = old {
                *archive_delta
                    .entry(archive_count_key(&m.season, old_at))
                    .or_default() -= 1;
            }
            *archive_delta
                .entry(archive_count_key(&m.season, m.archived_at_ms))
                .or_default() += 1;
        }
        let mut counts = txn.open_table(ARCHIVE_COUNTS).map_err(redb_err)?;
        for (key, delta) in archive_delta {
            let now = counts
                .get(key.as_slice())
                .map_err(redb_err)?
                .map_or(0, |v| v.value());
            let new = now.saturating_add_signed(delta);
            if new == 0 {
                counts.remove(key.as_slice()).map_err(redb_err)?;
            } else {
                counts.insert(key.as_slice(), new).map_err(redb_err)?;
            }
        }
    }
    for (player, season, question, rec) in &batch.cards {
        let key = card_key(player, season, question);
        if cards
            .insert(key.as_str(), rec.as_slice())
            .map_err(redb_err)?
            .is_none()
        {
            *live_delta.entry(count_key(season, player)).or_default() += 1;
        }
    }
    for (player, season, question) in &batch.cards_deleted {
        let key = card_key(player, season, question);
        if cards.remove(key.as_str()).map_err(redb_err)?.is_some() {
            *live_delta.entry(count_key(season, player)).or_default() -= 1;
        }
    }
    if !live_delta.is_empty() {
        let mut counts = txn.open_table(CARD_COUNTS).map_err(redb_err)?;
        for (key, delta) in live_delta {
            let now = counts
                .get(key.as_str())
                .map_err(redb_err)?
                .map_or(0, |v| v.value());
            let new = now.saturating_add_signed(delta);
            if new == 0 {
                counts.remove(key.as_str()).map_err(redb_err)?;
            } else {
                counts.insert(key.as_str(), new).map_err(redb_err)?;
            }
        }
    }
    if let Some(cutoff) = batch.archive_eligible_before_ms {
        let mut meta = txn.open_table(META).map_err(redb_err)?;
        let now = meta
            .get(ELIGIBLE_BEFORE)
            .map_err(redb_err)?
            .map(|v| v.value());
        if now.is_none_or(|n| n < cutoff) {
            meta.insert(ELIGIBLE_BEFORE, cutoff).map_err(redb_err)?;
        }
    }
    for purge in &batch.archive_purges {
        purge_rows(txn, purge)?;
    }
    rekey_erased_archive(txn, &batch.audit.erase)?;
    Ok(())
}

/// Drops the live-card counts of erased players (players.md "Privacy").
fn forget_erased_counts(
    txn: &WriteTransaction,
    erase: &[(String, String)],
) -> Result<(), StoreError> {
    if erase.is_empty() {
        return Ok(());
    }
    let mut counts = txn.open_table(CARD_COUNTS).map_err(redb_err)?;
    let mut doomed = Vec::new();
    for row in counts.iter().map_err(redb_err)? {
        let (k, _) = row.map_err(redb_err)?;
        let key = k.value();
        if let Some((_, player)) = key.split_once(SEP)
            && erase.iter().any(|(p, _)| p == player)
        {
            doomed.push(key.to_owned());
        }
    }
    for key in doomed {
        counts.remove(key.as_str()).map_err(redb_err)?;
    }
    Ok(())
}

/// Moves erased players' archive rows to their anonymous ids, as their live cards are
/// (nothing keyed by an erased id stays; the archive counts do not change).
fn rekey_erased_archive(
    txn: &WriteTransaction,
    erase: &[(String, String)],
) -> Result<(), StoreError> {
    if erase.is_empty() {
        return Ok(());
    }
    let mut seasons: BTreeSet<String> = BTreeSet::new();
    {
        let counts = txn.open_table(ARCHIVE_COUNTS).map_err(redb_err)?;
        for row in counts.iter().map_err(redb_err)? {
            let (k, _) = row.map_err(redb_err)?;
            if let Some((season, _)) = split_archive_count_key(k.value()) {
                seasons.insert(season.to_owned());
            }
        }
    }
    let mut archive = txn.open_table(ARCHIVE).map_err(redb_err)?;
    for season in &seasons {
        for (player, anon) in erase {
            let start = format!("{season}{SEP}{player}{SEP}");
            let end = format!("{season}{SEP}{player}\u{20}");
            let mut rows = Vec::new();
            for row in archive
                .range(start.as_str()..end.as_str())
                .map_err(redb_err)?
            {
                let (k, v) = row.map_err(redb_err)?;
                rows.push((k.value()[start.len()..].to_owned(), v.value().to_vec()));
            }
            for (question, value) in rows {
                archive
                    .remove(format!("{start}{question}").as_str())
                    .map_err(redb_err)?;
                archive
                    .insert(
                        archive_key(season, anon, &question).as_str(),
                        value.as_slice(),
                    )
                    .map_err(redb_err)?;
            }
        }
    }
    Ok(())
}

/// Deletes the archive rows a purge names and their count entries.
fn purge_rows(txn: &WriteTransaction, purge: &ArchivePurge) -> Result<(), StoreError> {
    let mut counts = txn.open_table(ARCHIVE_COUNTS).map_err(redb_err)?;
    let mut doomed: Vec<Vec<u8>> = Vec::new();
    let mut seasons: BTreeSet<String> = BTreeSet::new();
    for row in counts.iter().map_err(redb_err)? {
        let (k, _) = row.map_err(redb_err)?;
        let Some((season, at)) = split_archive_count_key(k.value()) else {
            continue;
        };
        if at < purge.before_ms && purge.season.as_deref().is_none_or(|s| s == season) {
            doomed.push(k.value().to_vec());
            seasons.insert(season.to_owned());
        }
    }
    let mut archive = txn.open_table(ARCHIVE).map_err(redb_err)?;
    for season in &seasons {
        let start = format!("{season}{SEP}");
        let end = format!("{season}\u{20}");
        archive
            .retain_in(start.as_str()..end.as_str(), |_, v| {
                archived_at(v) >= purge.before_ms
            })
            .map_err(redb_err)?;
    }
    for key in doomed {
        counts.remove(key.as_slice()).map_err(redb_err)?;
    }
    Ok(())
}

impl Store {
    /// Live (checkpointed) card counts of `season`, by player.
    ///
    /// # Errors
    /// [`StoreError::Redb`].
    pub fn season_live_counts(&self, season: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let txn = self.db().begin_read().map_err(redb_err)?;
        let table = txn.open_table(CARD_COUNTS).map_err(redb_err)?;
        let start = format!("{season}{SEP}");
        let end = format!("{season}\u{20}");
        let mut out = Vec::new();
        for row in table
            .range(start.as_str()..end.as_str())
            .map_err(redb_err)?
        {
            let (k, v) = row.map_err(redb_err)?;
            out.push((k.value()[start.len()..].to_owned(), v.value()));
        }
        Ok(out)
    }

    /// The checkpointed cards of `season` of each of `players` (lowercased question id,
    /// encoded card), read in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Redb`].
    pub fn season_cards(
        &self,
        players: &[String],
        season: &str,
    ) -> Result<Vec<SeasonCards>, StoreError> {
        let txn = self.db().begin_read().map_err(redb_err)?;
        let table = txn.open_table(CARDS).map_err(redb_err)?;
        let mut out = Vec::with_capacity(players.len());
        for player in players {
            let start = format!("{player}{SEP}{season}{SEP}");
            let end = format!("{player}{SEP}{season}\u{20}");
            let mut rows = Vec::new();
            for row in table
                .range(start.as_str()..end.as_str())
                .map_err(redb_err)?
            {
                let (k, v) = row.map_err(redb_err)?;
                rows.push((k.value()[start.len()..].to_owned(), v.value().to_vec()));
            }
            out.push(rows);
        }
        Ok(out)
    }

    /// Archived-card counts of every season: (season, count at one archive instant).
    ///
    /// # Errors
    /// [`StoreError::Redb`].
    pub fn archive_counts(&self) -> Result<Vec<(String, ArchiveCount)>, StoreError> {
        let txn = self.db().begin_read().map_err(redb_err)?;
        let table = txn.open_table(ARCHIVE_COUNTS).map_err(redb_err)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(redb_err)? {
            let (k, v) = row.map_err(redb_err)?;
            if let Some((season, at)) = split_archive_count_key(k.value()) {
                out.push((
                    season.to_owned(),
                    ArchiveCount {
                        archived_at_ms: at,
                        cards: v.value(),
                    },
                ));
            }
        }
        Ok(out)
    }

    /// The retention cutoff: archived cards with `archived_at` before it are eligible
    /// for deletion; `None` until the first flagging.
    ///
    /// # Errors
    /// [`StoreError::Redb`].
    pub fn archive_eligible_before(&self) -> Result<Option<i64>, StoreError> {
        let txn = self.db().begin_read().map_err(redb_err)?;
        let table = txn.open_table(META).map_err(redb_err)?;
        Ok(table
            .get(ELIGIBLE_BEFORE)
            .map_err(redb_err)?
            .map(|v| v.value()))
    }

    /// The archive time of each (player, lowercased question) card of `season` that has
    /// an archive row, read in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Redb`].
    pub fn archived_at_of(
        &self,
        season: &str,
        cards: &[(String, String)],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let txn = self.db().begin_read().map_err(redb_err)?;
        let table = txn.open_table(ARCHIVE).map_err(redb_err)?;
        cards
            .iter()
            .map(|(player, question)| {
                let key = archive_key(season, player, question);
                Ok(table
                    .get(key.as_str())
                    .map_err(redb_err)?
                    .map(|v| archived_at(v.value())))
            })
            .collect()
    }

    /// One player's archived cards of `season`: (lowercased question id, archived at,
    /// encoded card).
    ///
    /// # Errors
    /// [`StoreError::Redb`].
    pub fn archived_cards(
        &self,
        season: &str,
        player: &str,
    ) -> Result<Vec<(String, i64, Vec<u8>)>, StoreError> {
        let txn = self.db().begin_read().map_err(redb_err)?;
        let table = txn.open_table(ARCHIVE).map_err(redb_err)?;
        let start = format!("{season}{SEP}{player}{SEP}");
        let end = format!("{season}{SEP}{player}\u{20}");
        let mut out = Vec::new();
        for row in table
            .range(start.as_str()..end.as_str())
            .map_err(redb_err)?
        {
            let (k, v) = row.map_err(redb_err)?;
            let value = v.value();
            out.push((
                k.value()[start.len()..].to_owned(),
                archived_at(value),
                value.get(8..).unwrap_or_default().to_vec(),
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("memora.redb")).expect("open");
        (dir, store)
    }

    fn cards(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String, Vec<u8>)> {
        rows.iter()
            .map(|(p, s, q)| (p.to_string(), s.to_string(), q.to_string(), vec![1, 2]))
            .collect()
    }

    fn mv(p: &str, s: &str, q: &str, at: i64) -> ArchiveMove {
        ArchiveMove {
            player_id: p.into(),
            season: s.into(),
            question: q.into(),
            archived_at_ms: at,
            card: vec![7],
        }
    }

    #[test]
    fn counts_follow_upserts_deletes_moves_and_purges() {
        let (_dir, store) = store();
        store
            .commit(&Batch {
                cards: cards(&[
                    ("p1", "s", "q1"),
                    ("p1", "s", "q2"),
                    ("p2", "s", "q1"),
                    ("p1", "t", "q1"),
                ]),
                ..Batch::default()
            })
            .expect("commit");
        // Upserting an existing card does not count it twice.
        store
            .commit(&Batch {
                cards: cards(&[("p1", "s", "q1")]),
                cards_deleted: vec![("p2".into(), "s".into(), "q9".into())],
                ..Batch::default()
            })
            .expect("commit");
        assert_eq!(
            store.season_live_counts("s").expect("counts"),
            vec![("p1".to_owned(), 2), ("p2".to_owned(), 1)]
        );
        let rows = store
            .season_cards(&["p1".into(), "p3".into()], "s")
            .expect("rows");
        assert_eq!(rows[0].len(), 2);
        assert!(rows[1].is_empty());

        store
            .commit(&Batch {
                archive_moves: vec![mv("p1", "s", "q1", 100), mv("p2", "s", "q1", 200)],
                ..Batch::default()
            })
            .expect("moves");
        assert_eq!(
            store.season_live_counts("s").expect("counts"),
            vec![("p1".to_owned(), 1)]
        );
        let counts = store.archive_counts().expect("archive counts");
        assert_eq!(counts.len(), 2);
        assert_eq!(counts.iter().map(|c| c.1.cards).sum::<u64>(), 2);
        assert_eq!(
            store.archived_cards("s", "p1").expect("archived"),
            vec![("q1".to_owned(), 100, vec![7])]
        );
        // Archiving the same card again replaces its row and moves its count.
        store
            .commit(&Batch {
                archive_moves: vec![mv("p1", "s", "q1", 300)],
                archive_eligible_before_ms: Some(250),
                ..Batch::default()
            })
            .expect("again");
        let counts = store.archive_counts().expect("archive counts");
        assert_eq!(
            counts
                .iter()
                .map(|(_, c)| (c.archived_at_ms, c.cards))
                .collect::<Vec<_>>(),
            [(200, 1), (300, 1)]
        );
        assert_eq!(store.archive_eligible_before().expect("cutoff"), Some(250));
        // The cutoff only grows.
        store
            .commit(&Batch {
                archive_eligible_before_ms: Some(10),
                cards: cards(&[("p9", "x", "q")]),
                ..Batch::default()
            })
            .expect("cutoff");
        assert_eq!(store.archive_eligible_before().expect("cutoff"), Some(250));
        store
            .commit(&Batch {
                archive_purges: vec![ArchivePurge {
                    season: None,
                    before_ms: 250,
                }],
                ..Batch::default()
            })
            .expect("purge");
        assert!(store.archived_cards("s", "p2").expect("purged").is_empty());
        assert_eq!(store.archived_cards("s", "p1").expect("kept").len(), 1);
        assert_eq!(store.archive_counts().expect("counts").len(), 1);
    }

    #[test]
    fn counts_are_built_for_files_that_predate_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("memora.redb");
        {
            let store = Store::open(&path).expect("open");
            store
                .commit(&Batch {
                    cards: cards(&[("p1", "s", "q1"), ("p1", "s", "q2")]),
                    ..Batch::default()
                })
                .expect("commit");
            // Simulate an older file: no counts, no marker.
            let txn = store.db().begin_write().expect("txn");
            txn.delete_table(CARD_COUNTS).expect("drop counts");
            txn.open_table(META)
                .expect("meta")
                .remove(COUNTS_BUILT)
                .expect("unmark");
            txn.commit().expect("commit");
        }
        let store = Store::open(&path).expect("reopen");
        assert_eq!(
            store.season_live_counts("s").expect("counts"),
            vec![("p1".to_owned(), 2)]
        );
    }
}
