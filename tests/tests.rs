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
mod format_v2;

mod cdn;

mod assets;

mod deploy;

mod cdn_readers;

mod cdn_queue;
mod cdn_s3;
mod degraded;
mod groups;

mod mirror;
mod observe;
mod openapi;
mod reconcile;
mod roster;
mod route_security;
mod srs;
mod srs_archive;
mod srs_archive_props;

mod audit;
mod snapshots;
