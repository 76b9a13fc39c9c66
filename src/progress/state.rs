//! The stored state of one (student, subject) pair and its storage record
//! (progress.md "State per (student, subject)").
//!
//! Passed lessons are a roaring bitmap kept optimized (in-order completion collapses
//! into run containers); best hearts are packed four bits per bit index. The record
//! form is what the journal and checkpoints encode (bincode 2 through serde), so it
//! uses only plain fields and carries a version byte.

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

/// The highest hearts value a nibble can hold; `XpRules::max_hearts` must not exceed it.
pub const MAX_STORABLE_HEARTS: u8 = 15;

/// Best hearts per bit index, packed two per byte (low nibble = even index); 0 = none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BestHearts {
    nibbles: Vec<u8>,
}

impl BestHearts {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The best hearts recorded for `bit`, 0 if none.
    pub fn get(&self, bit: u32) -> u8 {
        match self.nibbles.get((bit / 2) as usize) {
            Some(byte) if bit.is_multiple_of(2) => byte & 0x0f,
            Some(byte) => byte >> 4,
            None => 0,
        }
    }

    /// Records `hearts` for `bit` (values above [`MAX_STORABLE_HEARTS`] are saturated;
    /// 0 clears). Grows the table up to the bit's byte only when storing a non-zero value.
    pub fn set(&mut self, bit: u32, hearts: u8) {
        let hearts = hearts.min(MAX_STORABLE_HEARTS);
        let byte = (bit / 2) as usize;
        if byte >= self.nibbles.len() {
            if hearts == 0 {
                return;
            }
            self.nibbles.resize(byte + 1, 0);
        }
        let slot = &mut self.nibbles[byte];
        *slot = if bit.is_multiple_of(2) {
            (*slot & 0xf0) | hearts
        } else {
            (*slot & 0x0f) | (hearts << 4)
        };
        if hearts == 0 {
            self.trim();
        }
    }

    fn trim(&mut self) {
        while self.nibbles.last() == Some(&0) {
            self.nibbles.pop();
        }
    }

    /// Every `(bit, hearts)` with hearts > 0, in increasing bit order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u8)> + '_ {
        self.nibbles.iter().enumerate().flat_map(|(i, &byte)| {
            let even = (i as u32 * 2, byte & 0x0f);
            let odd = (i as u32 * 2 + 1, byte >> 4);
            [even, odd].into_iter().filter(|&(_, hearts)| hearts > 0)
        })
    }

    /// Bytes of the packed table (its length, i.e. what storing it costs).
    pub fn heap_bytes(&self) -> usize {
        self.nibbles.len()
    }

    /// The packed table for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.nibbles.clone()
    }

    /// A table from [`BestHearts::to_bytes`] output; any byte string is valid.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut table = Self {
            nibbles: bytes.to_vec(),
        };
        table.trim();
        table
    }
}

/// Progress of one student in one subject.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubjectProgress {
    /// Bit indexes of passed lessons; never cleared by play.
    pub passed: RoaringBitmap,
    /// Best hearts per passed bit index.
    pub best_hearts: BestHearts,
    /// XP earned in this subject.
    pub total_xp_earned: u64,
    /// Id of the lesson completed last.
    pub last_lesson_completed: Option<String>,
    /// When the state last changed, milliseconds since the Unix epoch (UTC).
    pub updated_at_ms: i64,
}

/// Current version of [`ProgressRecord`].
pub const PROGRESS_RECORD_VERSION: u8 = 1;

/// Storage form of [`SubjectProgress`] (bincode 2 through serde: plain fields only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressRecord {
    /// [`PROGRESS_RECORD_VERSION`] when written by this code.
    pub version: u8,
    /// The bitmap in roaring's portable serialization.
    pub passed: Vec<u8>,
    /// [`BestHearts::to_bytes`].
    pub best_hearts: Vec<u8>,
    /// XP earned in the subject.
    pub total_xp_earned: u64,
    /// Id of the last lesson completed.
    pub last_lesson_completed: Option<String>,
    /// Last change, milliseconds since the Unix epoch.
    pub updated_at_ms: i64,
}

/// Why a [`ProgressRecord`] cannot be decoded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Written by a newer version of the program.
    #[error("unsupported progress record version {0}")]
    UnsupportedVersion(u8),
    /// The bitmap bytes are not a valid portable roaring bitmap.
    #[error("corrupt passed-lessons bitmap: {0}")]
    Bitmap(#[source] std::io::Error),
}

impl SubjectProgress {
    /// Empty progress.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes this state costs in storage: the bitmap's portable serialized size (call
    /// after `optimize`, as completion does) plus the packed best hearts.
    pub fn heap_bytes(&self) -> usize {
        self.passed.serialized_size() + self.best_hearts.heap_bytes()
    }

    /// The storage record.
    pub fn to_record(&self) -> ProgressRecord {
        let mut passed = Vec::with_capacity(self.passed.serialized_size());
        // Writing into a Vec cannot fail.
        let _ = self.passed.serialize_into(&mut passed);
        ProgressRecord {
            version: PROGRESS_RECORD_VERSION,
            passed,
            best_hearts: self.best_hearts.to_bytes(),
            total_xp_earned: self.total_xp_earned,
            last_lesson_completed: self.last_lesson_completed.clone(),
            updated_at_ms: self.updated_at_ms,
        }
    }

    /// The state from a storage record.
    ///
    /// # Errors
    /// [`RecordError::UnsupportedVersion`] for an unknown version,
    /// [`RecordError::Bitmap`] when the bitmap bytes are corrupt.
    pub fn from_record(record: &ProgressRecord) -> Result<Self, RecordError> {
        if record.version != PROGRESS_RECORD_VERSION {
            return Err(RecordError::UnsupportedVersion(record.version));
        }
        let mut passed = RoaringBitmap::deserialize_from(record.passed.as_slice())
            .map_err(RecordError::Bitmap)?;
        passed.optimize();
        Ok(Self {
            passed,
            best_hearts: BestHearts::from_bytes(&record.best_hearts),
            total_xp_earned: record.total_xp_earned,
            last_lesson_completed: record.last_lesson_completed.clone(),
            updated_at_ms: record.updated_at_ms,
        })
    }
}
