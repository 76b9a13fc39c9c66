//! Completing a lesson: the unlock and hearts checks, XP and best hearts
//! (progress.md "Completing a lesson").
//!
//! Completion is split in two so that the journal can record a decision and replay
//! it: [`decide_completion`] reads the state and returns absolute values;
//! [`apply_completion`] writes them and is idempotent.

use serde::{Deserialize, Serialize};

use crate::content::view::{NodeKind, SubjectView};

use super::state::{MAX_STORABLE_HEARTS, SubjectProgress};
use super::status::{Status, compute_statuses};

/// XP configuration of completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct XpRules {
    /// XP per heart (default 10).
    pub per_heart: u32,
    /// Highest hearts value a request may send (default 5, at most 15).
    pub max_hearts: u8,
}

impl Default for XpRules {
    fn default() -> Self {
        Self {
            per_heart: 10,
            max_hearts: 5,
        }
    }
}

/// Why a completion is refused after the request was validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CompletionError {
    /// The lesson is locked (neither unlocked nor passed): `NOT_UNLOCKED` (409).
    #[error("the lesson is not unlocked yet")]
    NotUnlocked,
    /// The attempt ended with no hearts left: `NO_HEARTS` (422).
    #[error("a lesson finished with 0 hearts does not count")]
    NoHearts,
}

/// The outcome of a valid completion, in absolute values so that applying it is
/// idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionDecision {
    /// The lesson's bit index.
    pub bit_index: u32,
    /// Whether the bit was not set before.
    pub is_first_completion: bool,
    /// Whether the hearts beat the previous best (always true on first completion).
    pub is_new_record: bool,
    /// XP earned by this completion.
    pub xp_earned: u32,
    /// Best hearts for the lesson after this completion.
    pub best_hearts: u8,
    /// The subject's `total_xp_earned` after this completion.
    pub new_subject_xp: u64,
}

/// Decides a completion of the lesson at `lesson_node` with `hearts`.
///
/// Hearts above `rules.max_hearts` are the caller's validation error; should one slip
/// through it is clamped to `max_hearts` (and to 15) so the XP bound still holds.
/// `scratch` is a reusable status buffer.
///
/// # Errors
/// [`CompletionError::NotUnlocked`] when the lesson is locked (also for an index that
/// is not a lesson of `view`), checked before [`CompletionError::NoHearts`] for 0 hearts.
pub fn decide_completion(
    view: &SubjectView,
    lesson_node: u32,
    progress: &SubjectProgress,
    hearts: u8,
    rules: &XpRules,
    scratch: &mut Vec<Status>,
) -> Result<CompletionDecision, CompletionError> {
    let node = match view.nodes.get(lesson_node as usize) {
        Some(node) if node.kind == NodeKind::Lesson => node,
        _ => return Err(CompletionError::NotUnlocked),
    };
    compute_statuses(view, &progress.passed, scratch);
    if scratch[lesson_node as usize] == Status::Locked {
        return Err(CompletionError::NotUnlocked);
    }
    if hearts == 0 {
        return Err(CompletionError::NoHearts);
    }
    let hearts = hearts.min(rules.max_hearts).clamp(1, MAX_STORABLE_HEARTS);
    let bit = node.bit_index;
    let per_heart = rules.per_heart;
    let (is_first_completion, is_new_record, xp_earned, best_hearts) =
        if !progress.passed.contains(bit) {
            let xp = node
                .base_xp
                .saturating_add(u32::from(hearts).saturating_mul(per_heart));
            (true, true, xp, hearts)
        } else {
            let best = progress.best_hearts.get(bit);
            if hearts > best {
                (
                    false,
                    true,
                    u32::from(hearts - best).saturating_mul(per_heart),
                    hearts,
                )
            } else {
                (false, false, 0, best)
            }
        };
    Ok(CompletionDecision {
        bit_index: bit,
        is_first_completion,
        is_new_record,
        xp_earned,
        best_hearts,
        new_subject_xp: progress
            .total_xp_earned
            .saturating_add(u64::from(xp_earned)),
    })
}

/// Writes a decision into `progress`: sets the bit (re-optimizing the bitmap when it
/// changed), stores the best hearts and the subject XP as given, and records
/// `lesson_id` and `at_ms` (milliseconds since the Unix epoch). Applying the same
/// decision twice leaves the same state as applying it once.
pub fn apply_completion(
    progress: &mut SubjectProgress,
    decision: &CompletionDecision,
    lesson_id: &str,
    at_ms: i64,
) {
    if progress.passed.insert(decision.bit_index) {
        // In-order completion then collapses into run containers (a few bytes).
        progress.passed.optimize();
    }
    progress
        .best_hearts
        .set(decision.bit_index, decision.best_hearts);
    progress.total_xp_earned = decision.new_subject_xp;
    if progress.last_lesson_completed.as_deref() != Some(lesson_id) {
        progress.last_lesson_completed = Some(lesson_id.to_owned());
    }
    progress.updated_at_ms = at_ms;
}
