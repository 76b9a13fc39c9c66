//! The one integration-test binary: one module per area (ripgrep's layout).

// Shared support; not every test uses every helper.
#[allow(dead_code)]
mod util;

mod durability;

mod http;

mod players;

mod recovery;

mod cli;

mod architecture;

mod load;

mod format;

mod cdn;

mod assets;

mod deploy;

mod cdn_readers;

mod mirror;
mod roster;
mod srs;
