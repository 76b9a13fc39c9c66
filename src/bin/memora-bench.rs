//! `memora-bench`: the load generator (placeholder until written).
fn main() {}
