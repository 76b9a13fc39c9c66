//! Compiled curriculum on disk: builds a plan's files with the pure compiler
//! (`content::compile`) and writes them incrementally and atomically under the output
//! root ([`Writer`]); the build queue with debounce, retries and history ([`Builds`]);
//! the optional upload of the output root to S3-compatible storage ([`Uploader`]).
//!
//! This is I/O and lives outside the domain folders: the compiler decides the bytes,
//! this module decides the version (`max(now, previous + 1)`) and touches the disk.

pub mod disk;
pub mod queue;
pub mod upload;
pub mod writer;

use std::collections::BTreeSet;
use std::time::Instant;

use jiff::Timestamp;
use serde::Serialize;

use crate::content::Catalog;
use crate::content::compile::{Stamp, compile_plan, is_published, live_lesson_paths};

pub use disk::{Disk, RealDisk};
pub use queue::{BuildKind, BuildRecord, BuildState, Builds, BuildsSummary, BuildsView};
pub use upload::{UploadError, UploadOptions, UploadReport, Uploader};
pub use writer::{BuildError, WriteReport, Writer};

/// What a build of one plan did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BuildReport {
    /// The plan id as asked.
    pub plan_id: String,
    /// `built` (a new manifest), `unchanged` (nothing to write) or `removed` (the plan
    /// is unpublished or gone: its files were deleted).
    pub outcome: &'static str,
    /// The manifest's version after the build (`None` when removed).
    pub version: Option<i64>,
    /// File counts.
    #[serde(flatten)]
    pub write: WriteReport,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
}

/// Builds one plan: compiles it at version `max(now, previous + 1)` and writes what
/// changed; an unknown or unpublished plan has its files removed instead.
///
/// # Errors
/// [`BuildError`]: low disk, an I/O error (the previous manifest then stays valid), or a
/// stored document that does not parse.
pub fn build_plan(
    writer: &mut Writer,
    catalog: &Catalog,
    plan_id: &str,
    now: Timestamp,
) -> Result<BuildReport, BuildError> {
    let started = Instant::now();
    let live = live_lesson_paths(catalog);
    build_with_live(writer, catalog, plan_id, now, &live, started)
}

fn build_with_live(
    writer: &mut Writer,
    catalog: &Catalog,
    plan_id: &str,
    now: Timestamp,
    live: &BTreeSet<String>,
    started: Instant,
) -> Result<BuildReport, BuildError> {
    if catalog.plan(plan_id).is_none() || !is_published(catalog, plan_id) {
        let write = writer.remove_plan(plan_id, live)?;
        return Ok(BuildReport {
            plan_id: plan_id.to_owned(),
            outcome: "removed",
            version: None,
            write,
            duration_ms: started.elapsed().as_millis() as u64,
        });
    }
    let previous = writer.previous_version(plan_id);
    let version = previous.map_or(now.as_second(), |p| now.as_second().max(p + 1));
    let compiled = compile_plan(catalog, plan_id, &Stamp::at(version), &mut writer.docs)?;
    let write = writer.apply(&compiled, live)?;
    Ok(BuildReport {
        plan_id: compiled.plan_id.clone(),
        outcome: if write.manifest_written {
            "built"
        } else {
            "unchanged"
        },
        version: if write.manifest_written {
            Some(version)
        } else {
            previous
        },
        write,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// The plans a full build covers: every stored plan, plus plan directories on disk whose
/// plan is gone (so that their files are removed).
///
/// # Errors
/// When the output root cannot be scanned.
pub fn all_plan_ids(writer: &mut Writer, catalog: &Catalog) -> Result<Vec<String>, BuildError> {
    let mut ids: Vec<String> = catalog.plans().map(|p| p.id.clone()).collect();
    let mut on_disk: BTreeSet<String> = BTreeSet::new();
    for path in writer.known_paths()? {
        if let Some(rest) = path.strip_prefix("plans/")
            && let Some((dir, _)) = rest.split_once('/')
        {
            on_disk.insert(dir.to_owned());
        }
    }
    for dir in on_disk {
        if catalog.plan(&dir).is_none() {
            ids.push(dir);
        }
    }
    Ok(ids)
}

/// Builds every plan (see [`all_plan_ids`]), calling `progress` after each.
///
/// # Errors
/// The first plan's [`BuildError`]; plans before it are built.
pub fn build_all(
    writer: &mut Writer,
    catalog: &Catalog,
    now: Timestamp,
    mut progress: impl FnMut(&BuildReport),
) -> Result<Vec<BuildReport>, BuildError> {
    let live = live_lesson_paths(catalog);
    let mut reports = Vec::new();
    for id in all_plan_ids(writer, catalog)? {
        let report = build_with_live(writer, catalog, &id, now, &live, Instant::now())?;
        progress(&report);
        reports.push(report);
    }
    Ok(reports)
}
