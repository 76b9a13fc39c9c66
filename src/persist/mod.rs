//! Persistence: the write-ahead journal, redb checkpoints, recovery (persistence.md).

pub mod audit;
pub mod codec;
pub mod journal;
pub mod mirror;
pub mod store;
