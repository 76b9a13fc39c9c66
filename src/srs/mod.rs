//! Spaced repetition (srs.md): the FSRS-6 scheduler around the `fsrs` crate's memory
//! model, and the compact per-(student, season) due queue. Pure domain code: no I/O,
//! no locks, no clock reads — the current time is always passed in (UTC milliseconds).

pub mod fuzz;
pub mod import;
pub mod queue;
pub mod rating;
pub mod scheduler;
pub mod settings;

pub use queue::{DueQueue, DueReport, QuestionKey};
pub use rating::Rating;
pub use scheduler::{Card, CardState, ConfigError, DAY_MS, Scheduler, SchedulerConfig};

#[cfg(test)]
mod tests;
