//! Content: the curriculum model, import formats and validation, bit index assignment,
//! access levels and plan overrides, and the per-plan visible tree (content.md).
//!
//! Pure domain code: no I/O, no locks, no clock reads.

pub mod access;
pub mod catalog;
pub mod compile;
pub mod model;
pub mod plan_view;
pub mod problem;
pub mod tree;
pub mod validate;
pub mod view;
pub mod view_ext;

pub use catalog::{Catalog, CatalogStats, DeleteError, PlanRecord, SubjectRecord};
pub use problem::Problem;

#[cfg(test)]
mod tests;
