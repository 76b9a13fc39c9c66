//! Progress: lesson and container statuses, the suggested next lesson, completion and XP
//! (progress.md). Pure domain code: no I/O, no locks, no clock reads.
