//! Memora: a self-hosted learning engine — the library behind the `memora` binary.
//!
//! See `ARCHITECTURE.md` for the bird's-eye view, the code map and the invariants.

pub mod app;
pub mod cdn;
pub mod cli;
pub mod clock;
pub mod config;
pub mod content;
pub mod demo;
pub mod engine;
pub mod error;
pub mod http;
pub mod objstore;
pub mod persist;
pub mod players;
pub mod progress;
pub mod progress_bar;
pub mod srs;
