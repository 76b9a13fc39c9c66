//! The one integration-test binary: one module per area (ripgrep's layout).

// Shared support; not every test uses every helper.
#[allow(dead_code)]
mod util;

mod durability;

mod http;

mod recovery;

mod cli;

mod architecture;

mod load;

mod format;

mod cdn;

mod mirror;
