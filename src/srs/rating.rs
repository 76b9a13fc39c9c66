//! The four FSRS answer grades, and the original design's `{is_correct,
//! response_time_ms}` form mapped onto them (srs.md, "Scheduling").

use serde::{Deserialize, Serialize};

/// How well a question was recalled: `1 = again` (forgotten) … `4 = easy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
#[repr(u8)]
pub enum Rating {
    /// Forgotten.
    Again = 1,
    /// Recalled with serious difficulty.
    Hard = 2,
    /// Recalled.
    Good = 3,
    /// Recalled effortlessly.
    Easy = 4,
}

/// Answers faster than this (milliseconds) and correct count as [`Rating::Easy`].
pub const LEGACY_EASY_BELOW_MS: u64 = 2_000;
/// Answers slower than this (milliseconds) and correct count as [`Rating::Hard`].
pub const LEGACY_HARD_ABOVE_MS: u64 = 6_000;

impl Rating {
    /// All four ratings, worst first.
    pub const ALL: [Rating; 4] = [Rating::Again, Rating::Hard, Rating::Good, Rating::Easy];

    /// Maps the original design's answer form: wrong → again; correct in under 2 s →
    /// easy; correct in over 6 s → hard; otherwise good. `response_time_ms` is in
    /// milliseconds; exactly 2,000 and exactly 6,000 are good.
    #[must_use]
    pub fn from_legacy(is_correct: bool, response_time_ms: u64) -> Rating {
        if !is_correct {
            Rating::Again
        } else if response_time_ms < LEGACY_EASY_BELOW_MS {
            Rating::Easy
        } else if response_time_ms > LEGACY_HARD_ABOVE_MS {
            Rating::Hard
        } else {
            Rating::Good
        }
    }

    /// The grade as FSRS numbers it (1–4).
    #[must_use]
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Whether the answer counts as recalled (hard, good or easy): srs.md's "correct".
    #[must_use]
    pub fn is_recalled(self) -> bool {
        self != Rating::Again
    }
}

/// A rating outside 1–4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rating must be 1 (again), 2 (hard), 3 (good) or 4 (easy), got {0}")]
pub struct InvalidRating(
    /// The rejected value.
    pub u8,
);

impl TryFrom<u8> for Rating {
    type Error = InvalidRating;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        match value {
            1 => Ok(Rating::Again),
            2 => Ok(Rating::Hard),
            3 => Ok(Rating::Good),
            4 => Ok(Rating::Easy),
            other => Err(InvalidRating(other)),
        }
    }
}

impl From<Rating> for u8 {
    fn from(rating: Rating) -> u8 {
        rating as u8
    }
}
