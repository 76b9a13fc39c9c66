//! Criterion micro-benchmarks of the engine's hot paths (placeholder until written).
fn main() {}
