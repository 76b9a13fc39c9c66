//! `GET /readyz` (api.md): recovery done, and the status of each component — journal,
//! redb, disk, mirror, content build. Only a failing journal makes a recovered server
//! unready (503): it cannot acknowledge writes then. Everything else is a warning that
//! an operator should look at while the server keeps serving: redb refusing checkpoints
//! (the journal keeps every change meanwhile), free disk below the threshold, a lagging
//! or unreachable mirror, dead content builds.

use serde::Serialize;

use crate::engine::{Engine, RecoveryReport};

/// The mirror is reported as lagging once its oldest unsent change is this old.
pub const MIRROR_LAG_WARNING_SECS: u64 = 120;

/// Status of one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Working.
    Ok,
    /// Working with a problem to look at; never makes the server unready.
    Warning,
    /// Not working.
    Failing,
    /// Not configured.
    Disabled,
}

/// One component's status and a one-line explanation when it is not `ok`.
#[derive(Debug, Clone, Serialize)]
pub struct Component {
    /// Its status.
    pub status: Status,
    /// Why, when not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Component-specific figures.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
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
#[derive(Debug, Clone, Serialize)]
pub struct Components {
    /// The write-ahead journal: `failing` makes the server unready.
    pub journal: Component,
    /// The redb file: readable, and checkpoints succeeding.
    pub redb: Component,
    /// Free disk space of the data directory and the content output directory against
    /// `content.min_free_disk_percent`.
    pub disk: Component,
    /// The MariaDB mirror.
    pub mirror: Component,
    /// The content build queue (dead builds are a warning).
    pub content_build: Component,
}

/// The body of `/readyz`.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    /// `ready`, `degraded` (journal failing) or `recovering`.
    pub status: &'static str,
    /// Per component.
    pub components: Components,
    /// The `detail` of every component that is not `ok` or `disabled`.
    pub warnings: Vec<String>,
    /// What recovery did.
    pub recovery: RecoveryReport,
}

impl Readiness {
    /// Whether `/readyz` answers 200: recovered and the journal accepts writes.
    pub fn is_ready(&self) -> bool {
        self.status == "ready"
    }
}

fn journal(engine: &Engine) -> Component {
    let stats = engine.journal_stats();
    let figures = serde_json::json!({
        "bytes": stats.bytes,
        "segments": stats.segments,
        "failed_batches": stats.failed_batches,
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

fn redb(engine: &Engine) -> Component {
    let history = engine.checkpoint_history();
    let figures = serde_json::json!({
        "file_bytes": super::report::redb_bytes(engine),
        "checkpoint_failures": history.failures,
    });
    if let Err(e) = engine.redb_probe() {
        return Component::new(
            Status::Failing,
            Some(format!("redb: cannot read: {e}")),
            figures,
        );
    }
    if history.consecutive_failures > 0 {
        let error = history.last_error.unwrap_or_default();
        return Component::new(
            Status::Failing,
            Some(format!(
                "redb: the last {} checkpoint(s) failed ({error}); the journal keeps the changes",
                history.consecutive_failures
            )),
            figures,
        );
    }
    Component::new(Status::Ok, None, figures)
}

fn disk(engine: &Engine) -> Component {
    use crate::cdn::Disk as _;
    let config = engine.config();
    let threshold = config.content.min_free_disk_percent;
    let probe = |path: &std::path::Path| crate::cdn::RealDisk.free_percent(path).ok();
    let data = probe(&config.storage.data_dir);
    let content = probe(&config.content.output_dir);
    let round = |p: Option<f64>| p.map(|p| (p * 10.0).round() / 10.0);
    let figures = serde_json::json!({
        "threshold_percent": threshold,
        "data_dir_free_percent": round(data),
        "content_dir_free_percent": round(content),
    });
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

fn mirror(engine: &Engine) -> Component {
    let Some(m) = engine.mirror_status() else {
        return Component::new(Status::Disabled, None, serde_json::Value::Null);
    };
    let figures = serde_json::json!({
        "state": m.state,
        "lag_seconds": m.lag_seconds,
        "lag_rows": m.lag_rows,
    });
    if m.state == "unreachable" {
        let error = m.last_error.unwrap_or_default();
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

fn content_build(engine: &Engine) -> Component {
    let counts = engine.builds().counts();
    let figures = serde_json::to_value(counts).unwrap_or_default();
    if counts.dead == 0 {
        return Component::new(Status::Ok, None, figures);
    }
    let dead: Vec<String> = engine
        .builds()
        .view()
        .dead
        .iter()
        .map(|b| format!("{} (plan {})", b.id, b.plan_id))
        .collect();
    Component::new(
        Status::Warning,
        Some(format!(
            "content build: {} dead build(s): {}; retry with POST /api/v1/admin/builds/{{id}}/retry",
            counts.dead,
            dead.join(", ")
        )),
        figures,
    )
}

/// The readiness of `engine`.
pub fn readiness(engine: &Engine) -> Readiness {
    let components = Components {
        journal: journal(engine),
        redb: redb(engine),
        disk: disk(engine),
        mirror: mirror(engine),
        content_build: content_build(engine),
    };
    let status = if !engine.is_ready() {
        "recovering"
    } else if components.journal.status == Status::Failing {
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
        recovery: engine.recovery().clone(),
    }
}
