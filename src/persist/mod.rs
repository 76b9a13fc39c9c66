//! Persistence: the write-ahead journal, redb checkpoints, recovery, snapshots
//! (persistence.md).

pub mod audit;
pub mod codec;
pub mod compact;
pub mod journal;
pub mod mirror;
pub mod snapshot;
pub mod srs_archive;
pub mod store;
