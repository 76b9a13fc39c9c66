//! The tables a snapshot copies, and the counts it reports. redb can only iterate a
//! table through its key and value types, so every table of `memora.redb` is listed
//! here with its types; a table this list does not know makes the snapshot fail
//! loudly rather than be silently left out (a test opens a fresh store and checks that
//! every table it creates is listed).

use redb::{
    Database, MultimapTableHandle, ReadTransaction, ReadableTable, ReadableTableMetadata,
    TableDefinition, TableHandle, WriteTransaction,
};

use super::{Counts, Progress, SnapshotError, redb_err};

/// Key and value types of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `TableDefinition<&str, &[u8]>`
    StrBytes,
    /// `TableDefinition<&[u8], &[u8]>`
    BytesBytes,
    /// `TableDefinition<&str, u64>`
    StrU64,
    /// `TableDefinition<&str, i64>`
    StrI64,
    /// `TableDefinition<&[u8], ()>`
    BytesUnit,
    /// `TableDefinition<&[u8], u64>`
    BytesU64,
}

/// Calls `$body` with `$def` bound to the table definition of `$spec` with its types
/// (redb reads a table only through its key and value types).
macro_rules! with_def {
    ($spec:expr, |$def:ident| $body:expr) => {
        match $spec.kind {
            Kind::StrBytes => {
                let $def = TableDefinition::<&str, &[u8]>::new($spec.name);
                $body
            }
            Kind::BytesBytes => {
                let $def = TableDefinition::<&[u8], &[u8]>::new($spec.name);
                $body
            }
            Kind::StrU64 => {
                let $def = TableDefinition::<&str, u64>::new($spec.name);
                $body
            }
            Kind::StrI64 => {
                let $def = TableDefinition::<&str, i64>::new($spec.name);
                $body
            }
            Kind::BytesUnit => {
                let $def = TableDefinition::<&[u8], ()>::new($spec.name);
                $body
            }
            Kind::BytesU64 => {
                let $def = TableDefinition::<&[u8], u64>::new($spec.name);
                $body
            }
        }
    };
}

/// One table of `memora.redb`: its name, types, and whether a snapshot copies it.
struct Spec {
    name: &'static str,
    kind: Kind,
    /// The mirror's queue and position describe what MariaDB has seen of *this* data
    /// directory; a restore marks the mirror for a full resynchronization instead.
    copied: bool,
}

const fn spec(name: &'static str, kind: Kind, copied: bool) -> Spec {
    Spec { name, kind, copied }
}

/// Every table of `memora.redb` (`persist::store`, `persist::audit`,
/// `persist::mirror::log`), with its types. Add new tables here: the test
/// `every_table_definition_in_the_sources_is_listed` reads `src/` and fails on a
/// `TableDefinition` missing from this list or listed with other types.
const TABLES: &[Spec] = &[
    spec("meta", Kind::StrU64, true),
    spec("subjects", Kind::StrBytes, true),
    spec("plans", Kind::StrBytes, true),
    spec("players", Kind::StrBytes, true),
    spec("sessions", Kind::BytesBytes, true),
    spec("progress", Kind::StrBytes, true),
    spec("wallets", Kind::StrBytes, true),
    spec("seasons", Kind::StrBytes, true),
    spec("groups", Kind::StrBytes, true),
    spec("cards", Kind::StrBytes, true),
    spec("idempotency", Kind::StrBytes, true),
    spec("idempotency_expiry", Kind::BytesBytes, true),
    spec("audit", Kind::BytesBytes, true),
    spec("audit_index", Kind::BytesBytes, true),
    spec("audit_meta", Kind::StrI64, true),
    spec("cards_archive", Kind::StrBytes, true),
    spec("card_counts", Kind::StrU64, true),
    spec("cards_archive_counts", Kind::BytesU64, true),
    spec("srs_archive_meta", Kind::StrI64, true),
    spec("mirror_log", Kind::BytesUnit, false),
    spec("mirror_meta", Kind::StrU64, false),
];

/// Names of tables in `txn`'s database that the list of tables above does not name (and of any
/// multimap table: the store has none).
///
/// # Errors
/// [`SnapshotError::Redb`].
pub fn unknown_tables(txn: &ReadTransaction) -> Result<Vec<String>, SnapshotError> {
    let mut unknown: Vec<String> = txn
        .list_tables()
        .map_err(redb_err)?
        .map(|t| t.name().to_owned())
        .filter(|name| !TABLES.iter().any(|s| s.name == name))
        .collect();
    unknown.extend(
        txn.list_multimap_tables()
            .map_err(redb_err)?
            .map(|t| t.name().to_owned()),
    );
    Ok(unknown)
}

fn len_of(txn: &ReadTransaction, spec: &Spec) -> Result<u64, SnapshotError> {
    fn len<K: redb::Key + 'static, V: redb::Value + 'static>(
        txn: &ReadTransaction,
        def: TableDefinition<K, V>,
    ) -> Result<u64, SnapshotError> {
        match txn.open_table(def) {
            Ok(t) => t.len().map_err(redb_err),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(redb_err(e)),
        }
    }
    with_def!(spec, |def| len(txn, def))
}

/// Rows between two progress reports (a job's progress takes a lock).
const REPORT_EVERY: u64 = 4096;

fn copy<K: redb::Key + 'static, V: redb::Value + 'static>(
    src: &ReadTransaction,
    dst: &WriteTransaction,
    def: TableDefinition<K, V>,
    progress: &dyn Progress,
) -> Result<(), SnapshotError> {
    let from = match src.open_table(def) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(redb_err(e)),
    };
    let mut to = dst.open_table(def).map_err(redb_err)?;
    let mut pending = 0;
    for row in from.iter().map_err(redb_err)? {
        let (k, v) = row.map_err(redb_err)?;
        to.insert(k.value(), v.value()).map_err(redb_err)?;
        pending += 1;
        if pending == REPORT_EVERY {
            progress.advance(pending);
            pending = 0;
        }
    }
    progress.advance(pending);
    Ok(())
}

/// Copies every table a snapshot keeps from `src` into the empty database `dst`, in
/// one transaction; returns the number of rows copied.
///
/// # Errors
/// [`SnapshotError::Redb`], also when `src` holds a table this module does not know.
pub fn copy_tables(
    src: &ReadTransaction,
    dst: &Database,
    progress: &dyn Progress,
) -> Result<u64, SnapshotError> {
    let unknown = unknown_tables(src)?;
    if !unknown.is_empty() {
        return Err(SnapshotError::Redb(format!(
            "table(s) {} are not known to the snapshot writer (src/persist/snapshot/tables.rs); refusing to write an incomplete snapshot",
            unknown.join(", ")
        )));
    }
    let mut total = 0;
    for spec in TABLES.iter().filter(|s| s.copied) {
        total += len_of(src, spec)?;
    }
    progress.stage("copying rows", total);
    let txn = dst.begin_write().map_err(redb_err)?;
    for spec in TABLES.iter().filter(|s| s.copied) {
        with_def!(spec, |def| copy(src, &txn, def, progress))?;
    }
    txn.commit().map_err(redb_err)?;
    Ok(total)
}

/// Row counts of the state in `txn` (a snapshot's payload or a data directory).
///
/// # Errors
/// [`SnapshotError::Redb`].
pub fn count(txn: &ReadTransaction) -> Result<Counts, SnapshotError> {
    let n = |name: &'static str| -> Result<u64, SnapshotError> {
        let spec = TABLES
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| SnapshotError::Redb(format!("no table spec for {name}")))?;
        len_of(txn, spec)
    };
    let mut students = 0;
    match txn.open_table(TableDefinition::<&str, &[u8]>::new("progress")) {
        Ok(progress) => {
            let mut last: Option<String> = None;
            for row in progress.iter().map_err(redb_err)? {
                let (k, _) = row.map_err(redb_err)?;
                let key = k.value();
                let player = key.split('\u{1f}').next().unwrap_or(key);
                if last.as_deref() != Some(player) {
                    students += 1;
                    last = Some(player.to_owned());
                }
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(redb_err(e)),
    }
    Ok(Counts {
        players: n("players")?,
        students_with_progress: students,
        progress_rows: n("progress")?,
        wallets: n("wallets")?,
        cards: n("cards")?,
        seasons: n("seasons")?,
        sessions: n("sessions")?,
        subjects: n("subjects")?,
        plans: n("plans")?,
        idempotency_records: n("idempotency")?,
        groups: n("groups")?,
        audit_records: n("audit")?,
        archived_cards: n("cards_archive")?,
    })
}

/// The `meta` table's value for `key` (0 when absent).
///
/// # Errors
/// [`SnapshotError::Redb`].
pub(crate) fn meta_value(txn: &ReadTransaction, key: &str) -> Result<u64, SnapshotError> {
    match txn.open_table(TableDefinition::<&str, u64>::new("meta")) {
        Ok(meta) => Ok(meta.get(key).map_err(redb_err)?.map_or(0, |v| v.value())),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(redb_err(e)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::persist::snapshot::NoProgress;
    use crate::persist::store::{Batch, Store};
    use redb::ReadableDatabase;

    #[test]
    fn every_table_of_a_fresh_store_is_known() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("memora.redb")).unwrap();
        // A checkpoint with rows creates the mirror's tables too.
        store
            .commit(&Batch {
                progress_seq: Some(1),
                players: vec![("p".into(), vec![1])],
                ..Batch::default()
            })
            .unwrap();
        let txn = store.db().begin_read().unwrap();
        let names: Vec<String> = txn
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_owned())
            .collect();
        assert!(names.iter().any(|n| n == "mirror_meta"), "{names:?}");
        assert_eq!(unknown_tables(&txn).unwrap(), Vec::<String>::new());
    }

    /// Every `TableDefinition::new("…")` in `src/`: (file, table name, key and value
    /// types without spaces, e.g. `&str,&[u8]`).
    fn table_definitions_in_sources() -> Vec<(String, String, String)> {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        /// The text between the `<` at `open` and its matching `>` (without spaces),
        /// and the index just past that `>`.
        fn generics(text: &str, open: usize) -> Option<(String, usize)> {
            let mut depth = 0;
            for (i, c) in text[open..].char_indices() {
                match c {
                    '<' => depth += 1,
                    '>' => {
                        depth -= 1;
                        if depth == 0 {
                            let inner = &text[open + 1..open + i];
                            let inner = inner.chars().filter(|c| !c.is_whitespace()).collect();
                            return Some((inner, open + i + 1));
                        }
                    }
                    _ => {}
                }
            }
            None
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let ty = "TableDefinition";
        let call = concat!("::new", "(");
        let mut found = Vec::new();
        for file in files {
            // Code only: comments may name tables too.
            let text: String = std::fs::read_to_string(&file)
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .map(|l| format!("{l}\n"))
                .collect();
            let mut from = 0;
            while let Some(at) = text[from..].find(ty).map(|i| i + from) {
                from = at + ty.len();
                let rest = &text[from..];
                // `TableDefinition::<K, V>::new("name")` or
                // `const X: TableDefinition<K, V> = TableDefinition::new("name")`.
                let (types, after) = if rest.starts_with("::<") {
                    let (types, end) = generics(&text, from + 2).unwrap();
                    (Some(types), end)
                } else {
                    (None, from)
                };
                let Some(args) = text[after..].strip_prefix(call) else {
                    continue;
                };
                let args = args.trim_start();
                let Some(quoted) = args.strip_prefix('"') else {
                    continue; // a name from a variable (this module's own lookups)
                };
                let name = quoted[..quoted.find('"').unwrap()].to_owned();
                let types = types.unwrap_or_else(|| {
                    // The declared type of the `const` this call initializes.
                    let statement = text[..at].rfind([';', '}', '{']).map_or(0, |i| i + 1);
                    let decl = text[statement..at]
                        .find(concat!("TableDefinition", "<"))
                        .map(|i| statement + i + ty.len())
                        .unwrap_or_else(|| panic!("no declared type for table {name}"));
                    generics(&text, decl).unwrap().0
                });
                let shown = file
                    .strip_prefix(env!("CARGO_MANIFEST_DIR"))
                    .unwrap()
                    .display()
                    .to_string();
                found.push((shown, name, types));
            }
        }
        found
    }

    #[test]
    fn every_table_definition_in_the_sources_is_listed() {
        let types_of = |kind: Kind| match kind {
            Kind::StrBytes => "&str,&[u8]",
            Kind::BytesBytes => "&[u8],&[u8]",
            Kind::StrU64 => "&str,u64",
            Kind::StrI64 => "&str,i64",
            Kind::BytesUnit => "&[u8],()",
            Kind::BytesU64 => "&[u8],u64",
        };
        let found = table_definitions_in_sources();
        for name in ["meta", "audit", "groups", "mirror_meta"] {
            assert!(
                found.iter().any(|f| f.1 == name),
                "scan missed {name}: {found:?}"
            );
        }
        let mut problems = Vec::new();
        for (file, name, types) in &found {
            match TABLES.iter().find(|s| s.name == name) {
                None => problems.push(format!(
                    "{file}: table `{name}` is not in TABLES of src/persist/snapshot/tables.rs (a snapshot would refuse to run)"
                )),
                Some(spec) if types_of(spec.kind) != types => problems.push(format!(
                    "{file}: table `{name}` is <{types}>, TABLES says <{}>",
                    types_of(spec.kind)
                )),
                Some(_) => {}
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        // And nothing listed is stale.
        for spec in TABLES {
            assert!(
                found.iter().any(|f| f.1 == spec.name),
                "TABLES lists `{}`, which no source defines",
                spec.name
            );
        }
    }

    #[test]
    fn copies_rows_and_counts_students() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("memora.redb")).unwrap();
        store
            .commit(&Batch {
                progress_seq: Some(9),
                wallet_seq: Some(9),
                players: vec![("a".into(), vec![1]), ("b".into(), vec![2])],
                progress: vec![
                    ("a".into(), "s1".into(), vec![1]),
                    ("a".into(), "s2".into(), vec![1]),
                    ("b".into(), "s1".into(), vec![1]),
                ],
                wallets: vec![("a".into(), vec![3])],
                sessions: vec![([7; 32], vec![4])],
                ..Batch::default()
            })
            .unwrap();
        let copy = Database::create(dir.path().join("copy.redb")).unwrap();
        let src = store.db().begin_read().unwrap();
        let rows = copy_tables(&src, &copy, &NoProgress).unwrap();
        // meta (format + 2 sequences) + 2 players + 1 session + 3 progress + 1 wallet
        // + the SRS archive's `counts_built` mark (set when the store is created).
        assert_eq!(rows, 11);
        let counts = count(&copy.begin_read().unwrap()).unwrap();
        assert_eq!(counts, count(&src).unwrap());
        assert_eq!(
            (
                counts.players,
                counts.students_with_progress,
                counts.progress_rows,
                counts.wallets,
                counts.sessions
            ),
            (2, 2, 3, 1, 1)
        );
        let txn = copy.begin_read().unwrap();
        assert_eq!(meta_value(&txn, "progress_seq").unwrap(), 9);
        // The mirror's queue is not copied.
        assert!(
            txn.list_tables()
                .unwrap()
                .all(|t| t.name() != "mirror_meta")
        );
    }
}
