//! Progress: lesson and container statuses, the suggested next lesson, completion and XP
//! (progress.md). Pure domain code: no I/O, no locks, no clock reads.

pub mod completion;
pub mod state;
pub mod status;
#[doc(hidden)]
pub mod testing;
pub mod tree;

pub use completion::{
    CompletionDecision, CompletionError, XpRules, apply_completion, decide_completion,
};
pub use state::{BestHearts, ProgressRecord, RecordError, SubjectProgress};
pub use status::{Status, Summary, compute_statuses, suggested_next_lesson, summary};
pub use tree::ProgressTree;

#[cfg(test)]
mod tests;
