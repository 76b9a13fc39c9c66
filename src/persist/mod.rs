//! Persistence: the write-ahead journal, redb checkpoints, recovery (persistence.md).

pub mod journal;
