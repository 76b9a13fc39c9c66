//! `GET /readyz` (api.md): recovery done, and the status of each component — journal,
//! redb, disk, mirror, content build.
//!
//! Only recovery makes the answer 503: once recovered the server answers 200, with
//! `"status": "degraded"` while storage cannot make writes durable (srs.md "Degraded
//! mode": the journal failing, checkpoints failing repeatedly, free disk under
//! `storage.min_free_bytes`), because reads are still served from memory. Everything
//! else is a warning an operator should look at while the server keeps serving: content
//! output below `content.min_free_disk_percent`, a lagging or unreachable mirror, builds
//! waiting for a retry or dead.

use serde::Serialize;

use crate::cdn::BuildsSummary;
use crate::engine::degraded::{DegradedStatus, Reason};
use crate::engine::{Engine, RecoveryReport};
use crate::persist::mirror::MirrorStatus;

/// The mirror is reported as lagging once its oldest unsent change is this old.
pub const MIRROR_LAG_WARNING_SECS: u64 = 120;

/// Status of one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Working.
    Ok,
    /// Working with a problem to look at; never makes the server unready.
    Warning,
    /// Not working: writes are refused while it lasts (degraded), reads go on.
    Failing,
    /// Not configured.
    Disabled,
}

/// One component's status and a one-line explanation when it is not `ok`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Component {
    /// Its status.
    pub status: Status,
    /// Why, when not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Component-specific figures (`{}` for a disabled component).
    #[schema(value_type = Object)]
    pub figures: serde_json::Value,
}

impl Component {
    fn new(status: Status, detail: Option<String>, figures: serde_json::Value) -> Self {
        Component {
            status,
            detail,
            figures,
        }
    }
}

/// The components.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Components {
    /// The write-ahead journal: `failing` while it cannot make writes durable.
    pub journal: Component,
    /// The redb file: readable, and checkpoints succeeding.
    pub redb: Component,
    /// Free disk space: the data directory against `storage.min_free_bytes` (`failing`
    /// below it), the data and content output directories against
    /// `content.min_free_disk_percent` (`warning` below it).
    pub disk: Component,
    /// The MariaDB mirror.
    pub mirror: Component,
    /// The content build queue (retries and dead builds are warnings).
    pub content_build: Component,
}

/// The body of `/readyz`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready`, `degraded` (writes refused, reads served) or `recovering`.
    pub status: &'static str,
    /// Per component.
    pub components: Components,
    /// The `detail` of every component that is not `ok` or `disabled`.
    pub warnings: Vec<String>,
    /// The build queue's counts.
    pub builds: BuildsSummary,
    /// The degraded state and its reasons.
    pub degraded: DegradedStatus,
    /// The MariaDB mirror; `null` when none is configured.
    pub mirror: Option<MirrorStatus>,
    /// What recovery did.
    pub recovery: RecoveryReport,
}

impl Readiness {
    /// Whether `/readyz` answers 200: recovery finished (degraded is still 200).
    pub fn is_ready(&self) -> bool {
        self.status != "recovering"
    }
}

fn journal(engine: &Engine) -> Component {
    let stats = engine.journal_stats();
    let figures = serde_json::json!({
        "bytes": stats.bytes,
        "segments": stats.segments,
        "failed_batches": stats.failed_batches,
        "last_fsync_micros": stats.last_fsync_micros,
    });
    if stats.healthy {
        Component::new(Status::Ok, None, figures)
    } else {
        Component::new(
            Status::Failing,
            Some("journal: writes cannot be made durable; writes are refused (503)".into()),
            figures,
        )
    }
}

fn redb(engine: &Engine, degraded: &DegradedStatus) -> Component {
    let history = engine.checkpoint_history();
    let figures = serde_json::json!({
        "file_bytes": super::report::redb_bytes(engine),
        "checkpoint_failures": history.failures,
        "consecutive_checkpoint_failures": degraded.checkpoint_failures,
    });
    if let Err(e) = engine.redb_probe() {
        return Component::new(
            Status::Failing,
            Some(format!("redb: cannot read: {e}")),
            figures,
        );
    }
    if degraded.checkpoint_failures > 0 {
        let error = history.last_error.unwrap_or_default();
        let refused = if degraded.reasons.contains(&Reason::CheckpointsFailing) {
            "writes are refused"
        } else {
            "the journal keeps the changes"
        };
        return Component::new(
            Status::Failing,
            Some(format!(
                "redb: the last {} checkpoint(s) failed ({error}); {refused}",
                degraded.checkpoint_failures
            )),
            figures,
        );
    }
    Component::new(Status::Ok, None, figures)
}

fn disk(engine: &Engine, degraded: &DegradedStatus) -> Component {
    use crate::cdn::Disk as _;
    let config = engine.config();
    let threshold = config.content.min_free_disk_percent;
    let probe = |path: &std::path::Path| crate::cdn::RealDisk.free_percent(path).ok();
    let data = probe(&config.storage.data_dir);
    let content = probe(&config.content.output_dir);
    let round = |p: Option<f64>| p.map(|p| (p * 10.0).round() / 10.0);
    let figures = serde_json::json!({
        "free_bytes": degraded.free_bytes,
        "min_free_bytes": config.storage.min_free_bytes,
        "threshold_percent": threshold,
        "data_dir_free_percent": round(data),
        "content_dir_free_percent": round(content),
    });
    if degraded.reasons.contains(&Reason::LowDisk) {
        return Component::new(
            Status::Failing,
            Some(format!(
                "disk: {} bytes free in the data directory, under storage.min_free_bytes \
                 ({}); writes are refused",
                degraded.free_bytes.unwrap_or(0),
                config.storage.min_free_bytes
            )),
            figures,
        );
    }
    let mut low = Vec::new();
    for (name, free) in [("data directory", data), ("content output", content)] {
        match free {
            Some(p) if p < threshold => low.push(format!("{name} {p:.1}% free")),
            Some(_) => {}
            None => low.push(format!("{name}: free space unknown")),
        }
    }
    if low.is_empty() {
        Component::new(Status::Ok, None, figures)
    } else {
        Component::new(
            Status::Warning,
            Some(format!(
                "disk: {} (threshold {threshold}%); content builds are refused below it",
                low.join(", ")
            )),
            figures,
        )
    }
}

fn mirror(status: Option<&MirrorStatus>) -> Component {
    let Some(m) = status else {
        return Component::new(Status::Disabled, None, serde_json::json!({}));
    };
    let figures = serde_json::json!({
        "state": m.state,
        "lag_seconds": m.lag_seconds,
        "lag_rows": m.lag_rows,
    });
    if m.state == "unreachable" {
        let error = m.last_error.clone().unwrap_or_default();
        return Component::new(
            Status::Warning,
            Some(format!(
                "mirror: MariaDB unreachable ({error}); {} rows waiting",
                m.lag_rows
            )),
            figures,
        );
    }
    if m.lag_seconds >= MIRROR_LAG_WARNING_SECS {
        return Component::new(
            Status::Warning,
            Some(format!(
                "mirror: {} s behind ({} rows waiting)",
                m.lag_seconds, m.lag_rows
            )),
            figures,
        );
    }
    Component::new(Status::Ok, None, figures)
}

fn content_build(engine: &Engine, summary: &BuildsSummary) -> Component {
    let figures = serde_json::to_value(summary).unwrap_or_default();
    if summary.dead > 0 {
        let dead: Vec<String> = engine
            .builds()
            .view()
            .dead
            .iter()
            .map(|b| {
                if b.plan_id.is_empty() {
                    format!("{} (upload)", b.id)
                } else {
                    format!("{} (plan {})", b.id, b.plan_id)
                }
            })
            .collect();
        return Component::new(
            Status::Warning,
            Some(format!(
                "content build: {} dead build(s): {}; retry with POST /api/v1/admin/builds/{{id}}/retry",
                summary.dead,
                dead.join(", ")
            )),
            figures,
        );
    }
    if summary.retrying > 0 {
        return Component::new(
            Status::Warning,
            Some(format!(
                "content build: {} build(s) waiting for a retry after a failure",
                summary.retrying
            )),
            figures,
        );
    }
    Component::new(Status::Ok, None, figures)
}

/// The readiness of `engine`.
pub fn readiness(engine: &Engine) -> Readiness {
    let degraded = engine.degraded_status();
    let builds = engine.builds().summary();
    let mirror_status = engine.mirror_status();
    let components = Components {
        journal: journal(engine),
        redb: redb(engine, &degraded),
        disk: disk(engine, &degraded),
        mirror: mirror(mirror_status.as_ref()),
        content_build: content_build(engine, &builds),
    };
    let status = if !engine.is_ready() {
        "recovering"
    } else if degraded.degraded {
        "degraded"
    } else {
        "ready"
    };
    let warnings = [
        &components.journal,
        &components.redb,
        &components.disk,
        &components.mirror,
        &components.content_build,
    ]
    .iter()
    .filter_map(|c| c.detail.clone())
    .collect();
    Readiness {
        status,
        components,
        warnings,
        builds,
        degraded,
        mirror: mirror_status,
        recovery: engine.recovery().clone(),
    }
}
