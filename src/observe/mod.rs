//! Observability (operations.md "Observability"): the process-wide Prometheus recorder
//! behind `GET /metrics`, the metric names, the small recording helpers the journal,
//! checkpoints, builds, rate limits and the HTTP middleware call, and the engine-state
//! gauges that are set from the engine at scrape time.
//!
//! The `metrics` facade has one global recorder per process. It is installed lazily,
//! once ([`install`]); every engine in the process (tests open many) records into it.
//! Counters and histograms are therefore process-wide; gauges describing an engine's
//! state (students in memory, cards, journal size, mirror lag…) are set from the engine
//! being scraped right before rendering ([`render`]), so they always describe it.
//! Recording before [`install`] (or if another recorder won the race) is a cheap no-op.

pub mod ready;
pub mod report;

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::engine::Engine;
use crate::engine::degraded::Reason;

/// Metric names. Units are part of the names (`_seconds`, `_bytes`, `_total`…).
pub mod names {
    /// Counter: HTTP requests answered, by `route` (the matched route pattern, or
    /// `unmatched`), `method` and `status` class (`2xx`…`5xx`).
    pub const HTTP_REQUESTS: &str = "memora_http_requests_total";
    /// Histogram: HTTP request latency, same labels as [`HTTP_REQUESTS`].
    pub const HTTP_DURATION: &str = "memora_http_request_duration_seconds";
    /// Histogram: duration of one journal fsync.
    pub const JOURNAL_FSYNC: &str = "memora_journal_fsync_duration_seconds";
    /// Histogram: records per journal batch (group commit).
    pub const JOURNAL_BATCH: &str = "memora_journal_batch_records";
    /// Counter: events made durable by the journal (`rate()` = events per second).
    pub const EVENTS: &str = "memora_events_total";
    /// Counter: journal batches refused after an I/O error.
    pub const JOURNAL_FAILED_BATCHES: &str = "memora_journal_failed_batches_total";
    /// Gauge: bytes in the journal's live segments.
    pub const JOURNAL_BYTES: &str = "memora_journal_bytes";
    /// Gauge: live journal segment files.
    pub const JOURNAL_SEGMENTS: &str = "memora_journal_segments";
    /// Histogram: checkpoint wall time, by `stream` (`progress`, `wallets`, `all`).
    pub const CHECKPOINT_DURATION: &str = "memora_checkpoint_duration_seconds";
    /// Histogram: rows written by a checkpoint, by `stream`.
    pub const CHECKPOINT_ROWS: &str = "memora_checkpoint_rows";
    /// Histogram: encoded bytes of the rows written by a checkpoint, by `stream`.
    pub const CHECKPOINT_BYTES: &str = "memora_checkpoint_bytes";
    /// Counter: checkpoints, by `stream` and `result` (`ok`, `error`).
    pub const CHECKPOINTS: &str = "memora_checkpoints_total";
    /// Gauge: students whose state is in memory.
    pub const STUDENTS: &str = "memora_students_in_memory";
    /// Gauge: SRS cards in memory, by `season`.
    pub const CARDS: &str = "memora_cards_in_memory";
    /// Gauge: estimated bytes of the students' state in memory (see the engine report
    /// for the method).
    pub const MEMORY_ESTIMATE: &str = "memora_memory_estimate_bytes";
    /// Gauge: resident set size of the process (Linux; absent elsewhere).
    pub const RESIDENT: &str = "memora_process_resident_bytes";
    /// Gauge: bytes of the redb file.
    pub const REDB_BYTES: &str = "memora_redb_file_bytes";
    /// Gauge: 1 when a MariaDB mirror is configured.
    pub const MIRROR_ENABLED: &str = "memora_mirror_enabled";
    /// Gauge: 1 while the mirror cannot reach MariaDB.
    pub const MIRROR_UNREACHABLE: &str = "memora_mirror_unreachable";
    /// Gauge: age of the oldest checkpointed change not yet in MariaDB.
    pub const MIRROR_LAG_SECONDS: &str = "memora_mirror_lag_seconds";
    /// Gauge: checkpointed rows not yet in MariaDB.
    pub const MIRROR_LAG_ROWS: &str = "memora_mirror_lag_rows";
    /// Counter: content builds finished, by `result` (`done`, `failed`, `dead`).
    pub const BUILDS: &str = "memora_content_builds_total";
    /// Histogram: content build wall time.
    pub const BUILD_DURATION: &str = "memora_content_build_duration_seconds";
    /// Gauge: content builds by `state` (`queued`, `running`, `retrying`, `dead`).
    pub const BUILD_QUEUE: &str = "memora_content_builds";
    /// Gauge: compiled files waiting to be uploaded to `[cdn.s3]`.
    pub const UPLOAD_PENDING: &str = "memora_content_upload_pending_files";
    /// Gauge: 1 while the engine is degraded (writes refused: srs.md "Degraded mode").
    pub const DEGRADED: &str = "memora_degraded";
    /// Gauge: 1 for each current reason of the degraded state, by `reason`
    /// (`journal_failing`, `low_disk`, `checkpoints_failing`).
    pub const DEGRADED_REASON: &str = "memora_degraded_reason";
    /// Gauge: free bytes on the data directory's file system at the last check.
    pub const DISK_FREE: &str = "memora_data_disk_free_bytes";
    /// Counter: reconciliation runs.
    pub const RECONCILE_RUNS: &str = "memora_reconcile_runs_total";
    /// Counter: discrepancies found by reconciliations.
    pub const RECONCILE_DISCREPANCIES: &str = "memora_reconcile_discrepancies_total";
    /// Gauge: discrepancy (mismatch) rate of the last reconciliation (0–1; 0 before the
    /// first run).
    pub const RECONCILE_RATE: &str = "memora_reconcile_discrepancy_rate";
    /// Gauge: 1 once recovery finished.
    pub const READY: &str = "memora_ready";
    /// Counter: requests refused by a rate limit, by `limit` (`login_ip`,
    /// `login_account`, `completions`, `reviews`, `reads`, and `cold_load` for the
    /// loads of students from redb refused while degraded).
    pub const RATE_LIMITED: &str = "memora_rate_limit_rejections_total";
    /// Gauge: background jobs running.
    pub const JOBS_ACTIVE: &str = "memora_jobs_active";
}

/// Latency buckets (seconds) of HTTP requests and builds: 100 µs … 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];
/// fsync buckets (seconds): 20 µs (a write-back cache) … 1 s (a sick disk).
const FSYNC_BUCKETS: &[f64] = &[
    0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    1.0,
];
/// Records per group-commit batch: powers of two up to the writer's cap (4,096).
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];
/// Rows per checkpoint.
const ROWS_BUCKETS: &[f64] = &[0.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0];
/// Bytes per checkpoint.
const BYTES_BUCKETS: &[f64] = &[
    0.0,
    1_024.0,
    16_384.0,
    131_072.0,
    1_048_576.0,
    8_388_608.0,
    67_108_864.0,
    536_870_912.0,
];
/// Checkpoint durations (seconds).
const CHECKPOINT_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

fn build_recorder() -> Option<PrometheusHandle> {
    let with = |b: PrometheusBuilder, name: &str, buckets: &[f64]| {
        b.set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets)
    };
    let builder = [
        (names::HTTP_DURATION, LATENCY_BUCKETS),
        (names::BUILD_DURATION, LATENCY_BUCKETS),
        (names::JOURNAL_FSYNC, FSYNC_BUCKETS),
        (names::JOURNAL_BATCH, BATCH_BUCKETS),
        (names::CHECKPOINT_DURATION, CHECKPOINT_BUCKETS),
        (names::CHECKPOINT_ROWS, ROWS_BUCKETS),
        (names::CHECKPOINT_BYTES, BYTES_BUCKETS),
    ]
    .into_iter()
    .try_fold(PrometheusBuilder::new(), |b, (name, buckets)| {
        with(b, name, buckets)
    });
    let recorder = match builder {
        Ok(b) => b.build_recorder(),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot configure the recorder; /metrics is empty");
            return None;
        }
    };
    let handle = recorder.handle();
    if let Err(e) = metrics::set_global_recorder(recorder) {
        tracing::warn!(error = %e, "metrics: another recorder is installed; /metrics is empty");
        return None;
    }
    describe();
    Some(handle)
}

fn describe() {
    use names::*;
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route, method and status class"
    );
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "HTTP request latency");
    describe_histogram!(
        JOURNAL_FSYNC,
        Unit::Seconds,
        "Duration of one journal fsync"
    );
    describe_histogram!(
        JOURNAL_BATCH,
        Unit::Count,
        "Records per journal group-commit batch"
    );
    describe_counter!(
        EVENTS,
        "Events made durable by the journal (rate() = events per second)"
    );
    describe_counter!(
        JOURNAL_FAILED_BATCHES,
        "Journal batches refused after an I/O error"
    );
    describe_gauge!(
        JOURNAL_BYTES,
        Unit::Bytes,
        "Bytes in the live journal segments"
    );
    describe_gauge!(JOURNAL_SEGMENTS, "Live journal segment files");
    describe_histogram!(
        CHECKPOINT_DURATION,
        Unit::Seconds,
        "Checkpoint wall time, by stream"
    );
    describe_histogram!(
        CHECKPOINT_ROWS,
        Unit::Count,
        "Rows written per checkpoint, by stream"
    );
    describe_histogram!(
        CHECKPOINT_BYTES,
        Unit::Bytes,
        "Encoded bytes written per checkpoint, by stream"
    );
    describe_counter!(CHECKPOINTS, "Checkpoints by stream and result");
    describe_gauge!(STUDENTS, "Students whose state is in memory");
    describe_gauge!(CARDS, "SRS cards in memory, by season");
    describe_gauge!(
        MEMORY_ESTIMATE,
        Unit::Bytes,
        "Estimated bytes of the students' state in memory"
    );
    describe_gauge!(RESIDENT, Unit::Bytes, "Resident set size of the process");
    describe_gauge!(REDB_BYTES, Unit::Bytes, "Size of the redb file");
    describe_gauge!(MIRROR_ENABLED, "1 when a MariaDB mirror is configured");
    describe_gauge!(
        MIRROR_UNREACHABLE,
        "1 while the mirror cannot reach MariaDB"
    );
    describe_gauge!(
        MIRROR_LAG_SECONDS,
        Unit::Seconds,
        "Age of the oldest checkpointed change not yet in MariaDB"
    );
    describe_gauge!(
        MIRROR_LAG_ROWS,
        Unit::Count,
        "Checkpointed rows not yet in MariaDB"
    );
    describe_counter!(BUILDS, "Content builds finished, by result");
    describe_histogram!(BUILD_DURATION, Unit::Seconds, "Content build wall time");
    describe_gauge!(
        BUILD_QUEUE,
        "Content builds by state (queued, running, retrying, dead)"
    );
    describe_gauge!(UPLOAD_PENDING, "Compiled files waiting to be uploaded");
    describe_gauge!(
        DEGRADED,
        "1 while storage cannot make writes durable (writes refused)"
    );
    describe_gauge!(
        DEGRADED_REASON,
        "1 for each current reason of degraded mode"
    );
    describe_gauge!(
        DISK_FREE,
        Unit::Bytes,
        "Free bytes on the data directory's file system"
    );
    describe_counter!(RECONCILE_RUNS, "Reconciliation runs");
    describe_counter!(
        RECONCILE_DISCREPANCIES,
        "Discrepancies found by reconciliations"
    );
    describe_gauge!(
        RECONCILE_RATE,
        "Discrepancy rate of the last reconciliation (0-1)"
    );
    describe_gauge!(READY, "1 once recovery finished");
    describe_counter!(RATE_LIMITED, "Requests refused by a rate limit, by limit");
    describe_gauge!(JOBS_ACTIVE, "Background jobs running");
    // Counters with a known label set start at 0, so every series exists from the
    // first scrape (an alert on `increase()` sees the first event).
    for limit in [
        "login_ip",
        "login_account",
        "completions",
        "reviews",
        "reads",
        "cold_load",
    ] {
        metrics::counter!(RATE_LIMITED, "limit" => limit).increment(0);
    }
    for result in ["done", "failed", "dead"] {
        metrics::counter!(BUILDS, "result" => result).increment(0);
    }
    for stream in ["progress", "wallets", "all"] {
        for result in ["ok", "error"] {
            metrics::counter!(CHECKPOINTS, "stream" => stream, "result" => result).increment(0);
        }
    }
    metrics::counter!(EVENTS).increment(0);
    metrics::counter!(JOURNAL_FAILED_BATCHES).increment(0);
    metrics::counter!(RECONCILE_RUNS).increment(0);
    metrics::counter!(RECONCILE_DISCREPANCIES).increment(0);
}

/// Installs the process-wide recorder on first call; later calls do nothing. Returns
/// the handle, or `None` if the recorder could not be installed (then every recording
/// is a no-op and `/metrics` is empty).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE.get_or_init(build_recorder).as_ref()
}

/// Drains histogram samples into their buckets so memory stays bounded between
/// scrapes; the server calls it every few seconds. Does nothing (and installs nothing)
/// before [`install`].
pub fn upkeep() {
    if let Some(Some(handle)) = HANDLE.get() {
        handle.run_upkeep();
    }
}

/// Runs [`upkeep`] every 5 s until `shutdown` changes.
pub async fn run_upkeep(mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tick.tick() => upkeep(),
            _ = shutdown.changed() => return,
        }
    }
}

/// The Prometheus text exposition: engine gauges set from `engine` first.
pub fn render(engine: &Engine) -> String {
    let Some(handle) = install() else {
        return String::new();
    };
    set_engine_gauges(engine);
    handle.render()
}

fn set_engine_gauges(engine: &Engine) {
    use metrics::gauge;
    use names::*;
    let census = engine.census();
    gauge!(STUDENTS).set(census.students as f64);
    gauge!(MEMORY_ESTIMATE).set(census.estimated_bytes as f64);
    for season in engine.seasons() {
        let n = census.cards_by_season.get(&season.id).copied().unwrap_or(0);
        gauge!(CARDS, "season" => season.id).set(n as f64);
    }
    if let Some(rss) = report::resident_bytes() {
        gauge!(RESIDENT).set(rss as f64);
    }
    if let Some(bytes) = report::redb_bytes(engine) {
        gauge!(REDB_BYTES).set(bytes as f64);
    }
    let journal = engine.journal_stats();
    gauge!(JOURNAL_BYTES).set(journal.bytes as f64);
    gauge!(JOURNAL_SEGMENTS).set(journal.segments as f64);
    gauge!(DEGRADED).set(if engine.is_degraded() { 1.0 } else { 0.0 });
    let degraded = engine.degraded_status();
    for reason in [
        Reason::JournalFailing,
        Reason::LowDisk,
        Reason::CheckpointsFailing,
    ] {
        let on = degraded.reasons.contains(&reason);
        gauge!(DEGRADED_REASON, "reason" => reason.as_str()).set(if on { 1.0 } else { 0.0 });
    }
    if let Some(free) = degraded.free_bytes {
        gauge!(DISK_FREE).set(free as f64);
    }
    gauge!(READY).set(if engine.is_ready() { 1.0 } else { 0.0 });
    let mirror = engine.mirror_status();
    gauge!(MIRROR_ENABLED).set(if mirror.is_some() { 1.0 } else { 0.0 });
    let (lag_s, lag_rows, unreachable) = mirror.as_ref().map_or((0, 0, false), |m| {
        (m.lag_seconds, m.lag_rows, m.state == "unreachable")
    });
    gauge!(MIRROR_LAG_SECONDS).set(lag_s as f64);
    gauge!(MIRROR_LAG_ROWS).set(lag_rows as f64);
    gauge!(MIRROR_UNREACHABLE).set(if unreachable { 1.0 } else { 0.0 });
    let builds = engine.builds().summary();
    gauge!(BUILD_QUEUE, "state" => "queued").set(builds.queued as f64);
    gauge!(BUILD_QUEUE, "state" => "running").set(builds.running as f64);
    gauge!(BUILD_QUEUE, "state" => "retrying").set(builds.retrying as f64);
    gauge!(BUILD_QUEUE, "state" => "dead").set(builds.dead as f64);
    gauge!(UPLOAD_PENDING).set(builds.upload_pending as f64);
    let rate = engine
        .last_reconcile()
        .map_or(0.0, |last| last.discrepancy_rate);
    gauge!(RECONCILE_RATE).set(rate);
    gauge!(JOBS_ACTIVE).set(engine.jobs().active().len() as f64);
}

/// Methods with a label of their own; anything else is `OTHER`.
const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "OTHER",
];
/// Status classes, by `status / 100 - 1` (anything else counts as `5xx`).
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The counter and histogram of one (route, method, status class), created on first use.
type Slot = OnceLock<(metrics::Counter, metrics::Histogram)>;

/// One route's handles for every method and status class.
struct RouteHandles {
    slots: [[Slot; CLASSES.len()]; METHODS.len()],
}

/// Handles per matched route pattern. Looking a handle up here costs one hash of the
/// route and a shared lock; going through the `metrics` macros instead costs building
/// and hashing a labelled key and three allocations per request (the `observe`
/// benchmark measures both sides of the middleware).
static ROUTES: std::sync::LazyLock<
    parking_lot::RwLock<std::collections::HashMap<Box<str>, std::sync::Arc<RouteHandles>>>,
> = std::sync::LazyLock::new(Default::default);

fn route_handles(route: &str) -> std::sync::Arc<RouteHandles> {
    if let Some(h) = ROUTES.read().get(route) {
        return h.clone();
    }
    ROUTES
        .write()
        .entry(route.into())
        .or_insert_with(|| {
            std::sync::Arc::new(RouteHandles {
                slots: std::array::from_fn(|_| std::array::from_fn(|_| OnceLock::new())),
            })
        })
        .clone()
}

/// Records one answered HTTP request: `route` is the matched route pattern (never the
/// raw path, so the label set stays bounded).
pub fn http_request(route: &str, method: &str, status: u16, took: Duration) {
    let m = METHODS
        .iter()
        .position(|x| *x == method)
        .unwrap_or(METHODS.len() - 1);
    let c = usize::from(status / 100)
        .saturating_sub(1)
        .min(CLASSES.len() - 1);
    let handles = route_handles(route);
    let (counter, histogram) = handles.slots[m][c].get_or_init(|| {
        let labels = [
            metrics::Label::new("route", route.to_owned()),
            metrics::Label::from_static_parts("method", METHODS[m]),
            metrics::Label::from_static_parts("status", CLASSES[c]),
        ];
        (
            metrics::counter!(names::HTTP_REQUESTS, labels.iter()),
            metrics::histogram!(names::HTTP_DURATION, labels.iter()),
        )
    });
    counter.increment(1);
    histogram.record(took.as_secs_f64());
}

/// Records one journal batch of `records` made durable.
pub fn journal_batch(records: usize) {
    metrics::counter!(names::EVENTS).increment(records as u64);
    metrics::histogram!(names::JOURNAL_BATCH).record(records as f64);
}

/// Records one journal fsync.
pub fn journal_fsync(took: Duration) {
    metrics::histogram!(names::JOURNAL_FSYNC).record(took.as_secs_f64());
}

/// Records a journal batch refused after an I/O error.
pub fn journal_failed_batch() {
    metrics::counter!(names::JOURNAL_FAILED_BATCHES).increment(1);
}

/// The `stream` label of a checkpoint.
pub fn checkpoint_stream(progress: bool, wallets: bool) -> &'static str {
    match (progress, wallets) {
        (true, true) => "all",
        (true, false) => "progress",
        (false, true) => "wallets",
        (false, false) => "none",
    }
}

/// Records a checkpoint: `Ok((rows, bytes))` or a failure.
pub fn checkpoint(stream: &'static str, took: Duration, written: Option<(usize, u64)>) {
    let result = if written.is_some() { "ok" } else { "error" };
    metrics::counter!(names::CHECKPOINTS, "stream" => stream, "result" => result).increment(1);
    if let Some((rows, bytes)) = written {
        metrics::histogram!(names::CHECKPOINT_DURATION, "stream" => stream)
            .record(took.as_secs_f64());
        metrics::histogram!(names::CHECKPOINT_ROWS, "stream" => stream).record(rows as f64);
        metrics::histogram!(names::CHECKPOINT_BYTES, "stream" => stream).record(bytes as f64);
    }
}

/// Records a finished content build (`result`: `done`, `failed` or `dead`).
pub fn content_build(result: &'static str, took: Duration) {
    metrics::counter!(names::BUILDS, "result" => result).increment(1);
    metrics::histogram!(names::BUILD_DURATION).record(took.as_secs_f64());
}

/// Records a finished reconciliation.
pub fn reconcile(summary: &crate::engine::reconcile::ReconcileSummary) {
    metrics::counter!(names::RECONCILE_RUNS).increment(1);
    metrics::counter!(names::RECONCILE_DISCREPANCIES).increment(summary.discrepancies_found as u64);
    metrics::gauge!(names::RECONCILE_RATE).set(summary.discrepancy_rate);
}

/// Records a request refused by the rate limit `limit`.
pub fn rate_limited(limit: &'static str) {
    metrics::counter!(names::RATE_LIMITED, "limit" => limit).increment(1);
}
