//! Snapshot files: a consistent point-in-time copy of the whole state in one file,
//! checked before anything reads it, and restored into a data directory atomically
//! (persistence.md "Snapshots, backup and restore"; design in `docs/snapshots.md`).
//!
//! This module deals with files and redb only. How the engine obtains a copy that is
//! consistent at one journal sequence while writes continue is in
//! `engine/snapshots.rs`.
//!
//! A snapshot file is a small header followed by a complete redb file (the payload):
//!
//! ```text
//! "MEMORASN"  u32 LE format  u32 LE header length N  header (JSON, N bytes)
//! u32 LE CRC32 of everything before it          payload (a redb file, closed cleanly)
//! ```
//!
//! The header names the journal sequence the state stands for, when it was taken, the
//! row counts and the payload's length and SHA-256. The payload is opened in place,
//! read-only, through a storage backend that reads the file from the payload's offset,
//! so verifying needs no extra disk space.

mod backend;
mod file;
mod header;
mod names;
mod restore;
mod tables;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use file::{Verified, open_payload, verify, write_file};
pub use header::{Header, MAGIC, SNAPSHOT_FORMAT};
pub use names::{EXTENSION, SnapshotName, file_name, list, prune};
pub use restore::{RestoreReport, restore};
pub use tables::{copy_tables, count, unknown_tables};

/// Row counts of a snapshot (in its header, and printed by `memora verify`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    /// Player accounts (students, teachers, admins).
    pub players: u64,
    /// Distinct students with at least one progress row.
    pub students_with_progress: u64,
    /// (student, subject) progress rows.
    pub progress_rows: u64,
    /// Wallets.
    pub wallets: u64,
    /// SRS cards of every season.
    pub cards: u64,
    /// Seasons.
    pub seasons: u64,
    /// Sessions (live and ended ones still kept).
    pub sessions: u64,
    /// Subjects.
    pub subjects: u64,
    /// Plans.
    pub plans: u64,
    /// Stored idempotency records.
    pub idempotency_records: u64,
    /// Groups (classes).
    pub groups: u64,
    /// Audit and interaction log records.
    pub audit_records: u64,
    /// Archived SRS cards (srs.md "Archive").
    pub archived_cards: u64,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} players, {} students with progress ({} progress rows), {} wallets, {} cards, {} seasons, {} sessions, {} subjects, {} plans, {} idempotency records, {} groups, {} audit records, {} archived cards",
            self.players,
            self.students_with_progress,
            self.progress_rows,
            self.wallets,
            self.cards,
            self.seasons,
            self.sessions,
            self.subjects,
            self.plans,
            self.idempotency_records,
            self.groups,
            self.audit_records,
            self.archived_cards
        )
    }
}

/// Why a snapshot could not be written, read or restored. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A file-system error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file does not start like a snapshot.
    #[error("{}: not a Memora snapshot file (wrong magic bytes)", path.display())]
    NotASnapshot {
        /// The file.
        path: PathBuf,
    },
    /// Written by a newer Memora (its container or its redb layout).
    #[error(
        "{}: {what} format {found} is newer than this binary supports ({supported}); restore it with a newer Memora",
        path.display()
    )]
    NewerFormat {
        /// The file.
        path: PathBuf,
        /// "snapshot" or "storage".
        what: &'static str,
        /// The version found.
        found: u64,
        /// The newest version this binary reads.
        supported: u64,
    },
    /// The file is shorter than its header says: a copy was cut off.
    #[error(
        "{}: truncated: the header announces {expected} bytes but the file has {found}; the copy is incomplete",
        path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Length the header announces.
        expected: u64,
        /// Actual length.
        found: u64,
    },
    /// Damaged: bad header checksum, payload checksum mismatch, trailing bytes, counts
    /// that do not match the payload, a payload redb cannot open.
    #[error("{}: corrupted: {reason}", path.display())]
    Corrupted {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The data directory is held by a running server.
    #[error(
        "{}: a running Memora server holds this data directory; stop it first (`memora restore` works on a stopped server only)",
        path.display()
    )]
    Locked {
        /// The redb file.
        path: PathBuf,
    },
    /// A redb error while copying or reading state.
    #[error("redb: {0}")]
    Redb(String),
    /// Another snapshot is being written by this server.
    #[error("another snapshot is being written; try again when it has finished")]
    Busy,
    /// The snapshot cannot run now: storage is degraded in a way it depends on, or the
    /// disk lacks the space it needs. Nothing was written.
    #[error("snapshot refused: {0}")]
    Unavailable(String),
    /// The engine could not give a consistent copy (its checkpoint failed, or replaying
    /// the journal tail into the copy failed).
    #[error("{0}")]
    Engine(String),
}

impl SnapshotError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SnapshotError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupted(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        SnapshotError::Corrupted {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

pub(crate) fn redb_err(e: impl std::fmt::Display) -> SnapshotError {
    SnapshotError::Redb(e.to_string())
}

/// Progress of a long step, reported in units of its own (rows, bytes): a terminal
/// progress bar in the CLI, a job's progress in the API.
pub trait Progress: Sync {
    /// A new stage named `what` with `total` units begins.
    fn stage(&self, what: &str, total: u64);
    /// `n` more units of the current stage are done.
    fn advance(&self, n: u64);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
}
