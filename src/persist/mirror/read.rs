//! Reads the current checkpointed rows the mirror sends, straight from redb (a state
//! mirror re-reads rows rather than replaying changes). The table definitions repeat
//! `persist::store`'s by name and type; redb checks both when a table is opened.

use redb::{Database, ReadableDatabase, TableDefinition};

const SUBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("subjects");
const PLAYERS: TableDefinition<&str, &[u8]> = TableDefinition::new("players");
const PROGRESS: TableDefinition<&str, &[u8]> = TableDefinition::new("progress");
const WALLETS: TableDefinition<&str, &[u8]> = TableDefinition::new("wallets");
const SEASONS: TableDefinition<&str, &[u8]> = TableDefinition::new("seasons");
const CARDS: TableDefinition<&str, &[u8]> = TableDefinition::new("cards");

/// A table the mirror copies whole during a full resynchronization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `players`.
    Players,
    /// `wallets`.
    Wallets,
    /// `progress`, keys `player␟subject`.
    Progress,
    /// `cards`, keys `player␟season␟question`.
    Cards,
}

impl Table {
    fn def(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Table::Players => PLAYERS,
            Table::Wallets => WALLETS,
            Table::Progress => PROGRESS,
            Table::Cards => CARDS,
        }
    }
}

/// Every stored subject record (key, bytes).
///
/// # Errors
/// The redb error.
pub fn subjects(db: &Database) -> Result<Vec<(String, Vec<u8>)>, redb::Error> {
    chunk(db, SUBJECTS, None, usize::MAX)
}

/// Every stored season id.
///
/// # Errors
/// The redb error.
pub fn season_ids(db: &Database) -> Result<Vec<String>, redb::Error> {
    Ok(chunk(db, SEASONS, None, usize::MAX)?
        .into_iter()
        .map(|(k, _)| k)
        .collect())
}

/// Up to `limit` rows of `table` after key `after` (from the start when `None`).
///
/// # Errors
/// The redb error.
pub fn scan(
    db: &Database,
    table: Table,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, Vec<u8>)>, redb::Error> {
    chunk(db, table.def(), after, limit)
}

fn chunk(
    db: &Database,
    def: TableDefinition<&str, &[u8]>,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, Vec<u8>)>, redb::Error> {
    let txn = db.begin_read()?;
    let table = txn.open_table(def)?;
    let start = match after {
        Some(k) => std::ops::Bound::Excluded(k),
        None => std::ops::Bound::Unbounded,
    };
    let mut out = Vec::new();
    for row in table.range::<&str>((start, std::ops::Bound::Unbounded))? {
        if out.len() >= limit {
            break;
        }
        let (k, v) = row?;
        out.push((k.value().to_owned(), v.value().to_vec()));
    }
    Ok(out)
}

/// Current rows of the given keys: `(key, Some(bytes))`, or `None` when the row is gone.
/// Progress keys are `player␟subject`.
///
/// # Errors
/// The redb error.
#[allow(clippy::type_complexity)]
pub fn rows(
    db: &Database,
    table: Table,
    keys: &[String],
) -> Result<Vec<(String, Option<Vec<u8>>)>, redb::Error> {
    let txn = db.begin_read()?;
    let t = txn.open_table(table.def())?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let value = t.get(key.as_str())?.map(|v| v.value().to_vec());
        out.push((key.clone(), value));
    }
    Ok(out)
}
