//! Content: the curriculum model, import formats and validation, bit index assignment,
//! access levels and plan overrides, and the per-plan visible tree (content.md).
//!
//! Pure domain code: no I/O, no locks, no clock reads.

pub mod view;
