//! The `memora` binary: parses the command line and dispatches (see `memora --help`).
fn main() {}
