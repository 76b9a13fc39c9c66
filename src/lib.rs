//! Memora: a self-hosted learning engine — the library behind the `memora` binary.
//!
//! See `ARCHITECTURE.md` for the bird's-eye view, the code map and the invariants.

pub mod clock;
pub mod config;
pub mod content;
pub mod persist;
pub mod players;
pub mod progress;
