//! The answer of `GET /api/v1/admin/engine` (api.md "engine", operations.md "Runtime
//! behaviour"): what is in memory and how big it is, the journal, the last checkpoints,
//! the mirror and its lag, the degraded state, the build queue, running background jobs
//! and each periodic task's last run (checkpoints, mirror, builds, storage probe,
//! reconciliation, audit retention) — read from the engine's accessors, changing
//! nothing.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cdn::BuildsSummary;
use crate::engine::checkpoint::CheckpointHistory;
use crate::engine::degraded::DegradedStatus;
use crate::engine::jobs::{JobView, TaskRun};
use crate::engine::reconcile::ReconcileSummary;
use crate::engine::{Engine, REDB_FILE, RecoveryReport};
use crate::persist::journal::FsyncLatency;
use crate::persist::mirror::MirrorStatus;

/// `GET /api/v1/admin/engine`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EngineReport {
    /// When the report was made (RFC 3339 UTC).
    pub generated_at: String,
    /// Whether recovery finished.
    pub ready: bool,
    /// Whether the engine refuses writes (storage cannot make them durable), why and
    /// since when (srs.md "Degraded mode").
    pub degraded: DegradedStatus,
    /// Students whose state is in memory.
    pub students_in_memory: u64,
    /// The size of what is in memory.
    pub memory: MemoryReport,
    /// SRS cards in memory per season (every known season, 0 when none are loaded).
    pub cards_by_season: BTreeMap<String, u64>,
    /// The write-ahead journal.
    pub journal: JournalReport,
    /// The redb file.
    pub redb: RedbReport,
    /// The last checkpoint of each stream, and failures.
    pub checkpoints: CheckpointsReport,
    /// The MariaDB mirror; `null` when none is configured.
    pub mirror: Option<MirrorStatus>,
    /// Content builds waiting, running, retrying and dead, and pending uploads.
    pub builds: BuildsSummary,
    /// The figures of the last reconciliation (memory, redb and mirror compared);
    /// `null` before the first run.
    pub reconcile: Option<ReconcileSummary>,
    /// Background jobs not finished yet.
    pub jobs: Vec<JobView>,
    /// Each periodic task's last run, duration and result, by name
    /// (`checkpoint_progress`, `checkpoint_wallets`, `mirror`, `content_builds`,
    /// `storage_probe`, `reconcile`, `audit_retention`, …); a task appears after its
    /// first run.
    pub tasks: BTreeMap<String, TaskRun>,
    /// What recovery did at start.
    pub recovery: RecoveryReport,
}

/// Memory figures.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemoryReport {
    /// Estimated bytes of the students' state in memory.
    pub estimated_bytes: u64,
    /// How the estimate is made.
    pub estimate_method: &'static str,
    /// (student, subject) progress states in memory.
    pub subject_states: u64,
    /// SRS cards in memory, all seasons.
    pub cards: u64,
    /// Stored idempotent answers in memory.
    pub idempotency_records: u64,
    /// The process's resident set size (Linux `/proc/self/status`), for comparison;
    /// `null` where unavailable.
    pub process_resident_bytes: Option<u64>,
}

/// Journal figures.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JournalReport {
    /// `strict` or `relaxed`.
    pub durability: &'static str,
    /// False after an I/O error until a later batch succeeds.
    pub healthy: bool,
    /// Bytes in the live segment files.
    pub bytes: u64,
    /// Live segment files.
    pub segments: usize,
    /// Highest acknowledged sequence.
    pub durable_seq: u64,
    /// Batches written since start.
    pub batches: u64,
    /// Records (events) written since start.
    pub records: u64,
    /// Batches refused after an I/O error since start.
    pub failed_batches: u64,
    /// Most records in one batch.
    pub max_batch: usize,
    /// fsyncs since start.
    pub fsyncs: u64,
    /// Duration of the last fsync, µs.
    pub fsync_last_micros: u64,
    /// Exponentially weighted mean fsync duration (weight 1/8), µs.
    pub fsync_ewma_micros: u64,
    /// Percentiles of the most recent fsyncs.
    pub fsync_recent: FsyncLatency,
    /// Longest fsync since start, µs.
    pub fsync_max_micros: u64,
}

/// The redb file.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RedbReport {
    /// Its size in bytes; `null` if it cannot be read.
    pub file_bytes: Option<u64>,
}

/// Checkpoints.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckpointsReport {
    /// Seconds between progress checkpoints.
    pub progress_interval_secs: u64,
    /// Seconds between wallet checkpoints.
    pub wallet_interval_secs: u64,
    /// The last checkpoints and failures.
    #[serde(flatten)]
    pub history: CheckpointHistory,
}

/// The resident set size of this process, from `/proc/self/status` (Linux).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The size of the engine's redb file.
pub fn redb_bytes(engine: &Engine) -> Option<u64> {
    let path = engine.config().storage.data_dir.join(REDB_FILE);
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// Builds the report.
pub fn engine_report(engine: &Engine) -> EngineReport {
    let census = engine.census();
    let mut cards_by_season: BTreeMap<String, u64> =
        engine.seasons().into_iter().map(|s| (s.id, 0)).collect();
    for (season, n) in &census.cards_by_season {
        cards_by_season.insert(season.clone(), *n);
    }
    let stats = engine.journal_stats();
    let config = engine.config();
    EngineReport {
        generated_at: engine.now().to_string(),
        ready: engine.is_ready(),
        degraded: engine.degraded_status(),
        students_in_memory: census.students,
        memory: MemoryReport {
            estimated_bytes: census.estimated_bytes,
            estimate_method: crate::engine::census::ESTIMATE_METHOD,
            subject_states: census.subject_states,
            cards: census.cards,
            idempotency_records: census.idempotency_records,
            process_resident_bytes: resident_bytes(),
        },
        cards_by_season,
        journal: JournalReport {
            durability: match config.journal.durability {
                crate::config::DurabilityMode::Strict => "strict",
                crate::config::DurabilityMode::Relaxed => "relaxed",
            },
            healthy: stats.healthy,
            bytes: stats.bytes,
            segments: stats.segments,
            durable_seq: stats.durable_seq,
            batches: stats.batches,
            records: stats.records,
            failed_batches: stats.failed_batches,
            max_batch: stats.max_batch,
            fsyncs: stats.fsyncs,
            fsync_last_micros: stats.last_fsync_micros,
            fsync_ewma_micros: stats.fsync_micros_ewma,
            fsync_recent: engine.journal_recent_fsyncs(),
            fsync_max_micros: stats.max_fsync_micros,
        },
        redb: RedbReport {
            file_bytes: redb_bytes(engine),
        },
        checkpoints: CheckpointsReport {
            progress_interval_secs: config.checkpoint.progress_interval_secs,
            wallet_interval_secs: config.checkpoint.wallet_interval_secs,
            history: engine.checkpoint_history(),
        },
        mirror: engine.mirror_status(),
        builds: engine.builds().summary(),
        reconcile: engine.last_reconcile(),
        jobs: engine.jobs().active(),
        tasks: engine.jobs().task_runs(),
        recovery: engine.recovery().clone(),
    }
}
