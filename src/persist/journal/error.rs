//! Error types of the journal: what a submit, an open and a recovery scan can fail with.

use std::path::PathBuf;

/// Why a submitted record was not acknowledged, or why a journal operation failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum JournalError {
    /// The write or fsync of the record's batch failed (or the journal could not be
    /// repaired after an earlier failure): nothing in that batch is durable. The text is
    /// the underlying I/O error.
    #[error("journal I/O failed: {0}")]
    Io(String),
    /// The journal was shut down (or its writer thread is gone); nothing was written.
    #[error("journal is closed")]
    Closed,
    /// The payload is larger than [`MAX_PAYLOAD_BYTES`](super::MAX_PAYLOAD_BYTES); it
    /// was refused before reaching the writer.
    #[error("journal payload of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Size of the refused payload, in bytes.
        len: usize,
        /// The limit, in bytes.
        max: usize,
    },
}

/// The journal on disk is damaged in a way that must not be repaired silently. Every
/// variant names the file and, where it applies, the byte offset inside it.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CorruptionError {
    /// A record's CRC32 does not match its contents, and valid records follow it (or it
    /// is not in the last segment), so it is not a torn tail.
    #[error("{}: bad checksum in record at byte offset {offset}", path.display())]
    BadChecksum {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record's first byte (its length field).
        offset: u64,
    },
    /// A record's length field is impossible (shorter than the fixed fields or longer
    /// than the limit), and it is not a torn tail.
    #[error("{}: bad record length {len} at byte offset {offset}", path.display())]
    BadLength {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record's length field.
        offset: u64,
        /// The length read, in bytes.
        len: u32,
    },
    /// A record with a valid checksum carries a format version this binary does not know
    /// (written by a newer Memora).
    #[error(
        "{}: record at byte offset {offset} has unknown format version {version} (this binary reads version {known}; upgrade Memora)",
        path.display()
    )]
    UnknownVersion {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// The version byte read.
        version: u8,
        /// The version this binary writes and reads.
        known: u8,
    },
    /// Sequence numbers are not consecutive: a record (or a segment's first sequence) is
    /// not the one expected, so records are missing or duplicated.
    #[error(
        "{}: sequence gap at byte offset {offset}: expected sequence {expected}, found {found}",
        path.display()
    )]
    SequenceGap {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record (or 0 for a segment's header).
        offset: u64,
        /// The sequence number that should have been there.
        expected: u64,
        /// The sequence number found.
        found: u64,
    },
    /// A segment's header is damaged, of an unknown version, or disagrees with the
    /// file's name.
    #[error("{}: bad segment header: {reason}", path.display())]
    BadHeader {
        /// The segment file.
        path: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// A file named like a segment (`journal-*.wal`) whose name does not parse.
    #[error("{}: not a valid journal segment name", path.display())]
    BadFileName {
        /// The file.
        path: PathBuf,
    },
}

/// Why [`Journal::open`](super::Journal::open) or [`scan`](super::scan) failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Reading, creating or repairing the journal directory failed.
    #[error("journal I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The journal is damaged; the engine must not start (persistence.md).
    #[error(transparent)]
    Corruption(#[from] CorruptionError),
}

impl OpenError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
