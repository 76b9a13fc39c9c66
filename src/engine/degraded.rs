//! Degraded mode (srs.md "Degraded mode", persistence.md): when storage cannot make
//! writes durable — the journal fails to write or fsync, checkpoints keep failing, or
//! free disk is under `storage.min_free_bytes` — writes are refused with 503
//! `STORAGE_UNAVAILABLE` before anything is decided, reads go on from memory (flagged
//! `X-Memora-Degraded: 1`), loading a student from redb is rate limited, and a probe
//! loop leaves the mode by itself once a probe write succeeds.
//!
//! Why refusing is safe: a write is applied to memory only after the journal
//! acknowledged it (engine module docs), so a refused or failed write was never visible
//! to any reader and nothing acknowledged can be lost.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;
use serde::Serialize;

use crate::engine::accounts::rfc3339;
use crate::error::{ApiError, Code};

use super::{Engine, Event};

/// Seconds a refused writer is told to wait (`Retry-After`).
pub const RETRY_AFTER_SECS: u64 = 5;
/// Cold loads allowed per minute across all students while degraded (srs.md).
pub const COLD_LOADS_PER_MINUTE: u32 = 500;
/// Seconds between two cold loads of one student while degraded (srs.md).
pub const COLD_LOAD_PERIOD_SECS: u64 = 30;

/// Why storage is unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The journal could not write or fsync a batch.
    JournalFailing,
    /// Free disk space under `storage.min_free_bytes`.
    LowDisk,
    /// `storage.checkpoint_failures_before_degraded` checkpoints failed in a row.
    CheckpointsFailing,
}

impl Reason {
    fn describe(self) -> &'static str {
        match self {
            Reason::JournalFailing => "the journal cannot make writes durable",
            Reason::LowDisk => "free disk space is below storage.min_free_bytes",
            Reason::CheckpointsFailing => "checkpoints to redb keep failing",
        }
    }
}

/// The degraded state as `/readyz` and `GET /api/v1/admin/engine` show it.
#[derive(Debug, Clone, Serialize)]
pub struct DegradedStatus {
    /// Whether writes are being refused.
    pub degraded: bool,
    /// Every current reason (empty when healthy).
    pub reasons: Vec<Reason>,
    /// Since when (RFC 3339 UTC), while degraded.
    pub since: Option<String>,
    /// Free bytes on the data dir's file system at the last check.
    pub free_bytes: Option<u64>,
    /// Consecutive failed checkpoints.
    pub checkpoint_failures: u32,
    /// Times the engine entered degraded mode since start.
    pub episodes: u64,
}

/// Health flags and the cold-load limiters. Lives in the engine's `Inner`.
pub(crate) struct Health {
    low_disk: AtomicBool,
    free_bytes: AtomicU64,
    checkpoint_failures: AtomicU32,
    failures_limit: u32,
    /// Whether the engine was degraded at the last evaluation (for logging once per
    /// state change) and since when.
    state: Mutex<(bool, Option<i64>)>,
    episodes: AtomicU64,
    /// The redb handle failed a commit and must be reopened before the next checkpoint.
    redb_poisoned: AtomicBool,
    cold_global: DefaultDirectRateLimiter,
    cold_per_student: DefaultKeyedRateLimiter<String>,
}

impl Health {
    pub(crate) fn new(failures_limit: u32) -> Self {
        let per_minute = NonZeroU32::new(COLD_LOADS_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        let per_student = Quota::with_period(Duration::from_secs(COLD_LOAD_PERIOD_SECS))
            .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN));
        Health {
            low_disk: AtomicBool::new(false),
            free_bytes: AtomicU64::new(u64::MAX),
            checkpoint_failures: AtomicU32::new(0),
            failures_limit: failures_limit.max(1),
            state: Mutex::new((false, None)),
            episodes: AtomicU64::new(0),
            redb_poisoned: AtomicBool::new(false),
            cold_global: RateLimiter::direct(Quota::per_minute(per_minute)),
            cold_per_student: RateLimiter::keyed(per_student),
        }
    }

    /// Records the outcome of a checkpoint.
    pub(crate) fn on_checkpoint(&self, ok: bool) {
        if ok {
            self.checkpoint_failures.store(0, Ordering::SeqCst);
        } else {
            self.checkpoint_failures.fetch_add(1, Ordering::SeqCst);
            self.redb_poisoned.store(true, Ordering::SeqCst);
        }
    }

    /// Admits one cold load of `player_id` under the degraded-mode limits, or says how
    /// many seconds to wait.
    fn admit_cold_load(&self, player_id: &str) -> Result<(), u64> {
        let clock = DefaultClock::default();
        if let Err(not_until) = self.cold_per_student.check_key(&player_id.to_owned()) {
            return Err(not_until.wait_time_from(clock.now()).as_secs() + 1);
        }
        if let Err(not_until) = self.cold_global.check() {
            return Err(not_until.wait_time_from(clock.now()).as_secs() + 1);
        }
        Ok(())
    }

    fn set_free_bytes(&self, free: u64, min: u64) {
        self.free_bytes.store(free, Ordering::SeqCst);
        self.low_disk.store(free < min, Ordering::SeqCst);
    }
}

impl Engine {
    fn degraded_reasons(&self) -> Vec<Reason> {
        let health = &self.inner().health;
        let mut reasons = Vec::new();
        if !self.journal_healthy() {
            reasons.push(Reason::JournalFailing);
        }
        if health.low_disk.load(Ordering::SeqCst) {
            reasons.push(Reason::LowDisk);
        }
        if health.checkpoint_failures.load(Ordering::SeqCst) >= health.failures_limit {
            reasons.push(Reason::CheckpointsFailing);
        }
        reasons
    }

    /// Whether the engine is in degraded mode (writes refused, reads from memory).
    pub fn is_degraded(&self) -> bool {
        let health = &self.inner().health;
        !self.journal_healthy()
            || health.low_disk.load(Ordering::SeqCst)
            || health.checkpoint_failures.load(Ordering::SeqCst) >= health.failures_limit
    }

    /// The degraded state with its reasons, for `/readyz` and the admin engine route.
    pub fn degraded_status(&self) -> DegradedStatus {
        let reasons = self.degraded_reasons();
        let health = &self.inner().health;
        let state = *health.state.lock();
        let free = health.free_bytes.load(Ordering::SeqCst);
        DegradedStatus {
            degraded: !reasons.is_empty(),
            since: if reasons.is_empty() {
                None
            } else {
                state.1.map(rfc3339)
            },
            reasons,
            free_bytes: (free != u64::MAX).then_some(free),
            checkpoint_failures: health.checkpoint_failures.load(Ordering::SeqCst),
            episodes: health.episodes.load(Ordering::SeqCst),
        }
    }

    /// The write gate: 503 `STORAGE_UNAVAILABLE` with `Retry-After` while degraded.
    /// Called before a write decides anything.
    ///
    /// # Errors
    /// The 503 problem.
    pub(crate) fn check_writable(&self) -> Result<(), ApiError> {
        if !self.is_degraded() {
            return Ok(());
        }
        let reasons = self.degraded_reasons();
        let why = reasons
            .first()
            .map_or("storage is unavailable", |r| r.describe());
        Err(ApiError {
            retry_after: Some(RETRY_AFTER_SECS),
            ..ApiError::new(
                Code::StorageUnavailable,
                format!("Writes are paused: {why}. Reads still work; retry later"),
            )
        })
    }

    /// Admits a load of `player_id` from redb: always while healthy; while degraded at
    /// most [`COLD_LOADS_PER_MINUTE`] in all and one per student per
    /// [`COLD_LOAD_PERIOD_SECS`] (srs.md), else 429 `RATE_LIMITED` with `Retry-After`.
    ///
    /// # Errors
    /// The 429 problem.
    pub(crate) fn admit_cold_load(&self, player_id: &str) -> Result<(), ApiError> {
        if !self.is_degraded() {
            return Ok(());
        }
        self.inner()
            .health
            .admit_cold_load(player_id)
            .map_err(|secs| ApiError {
                retry_after: Some(secs),
                ..ApiError::new(
                    Code::RateLimited,
                    "Storage is degraded: loading this student's state is rate limited; retry later",
                )
            })
    }

    /// Records a checkpoint's outcome (persistence.md: repeated failures → degraded).
    pub(crate) fn note_checkpoint(&self, ok: bool) {
        self.inner().health.on_checkpoint(ok);
        self.log_state_change();
    }

    /// Logs once per transition into or out of degraded mode.
    fn log_state_change(&self) {
        let now = self.is_degraded();
        let health = &self.inner().health;
        let mut state = health.state.lock();
        if state.0 == now {
            return;
        }
        *state = (now, now.then(|| self.now().as_millisecond()));
        drop(state);
        if now {
            health.episodes.fetch_add(1, Ordering::SeqCst);
            let reasons: Vec<&str> = self
                .degraded_reasons()
                .iter()
                .map(|r| r.describe())
                .collect();
            tracing::error!(reasons = ?reasons, "storage unavailable: entering degraded mode (writes refused, reads from memory)");
        } else {
            tracing::warn!("storage works again: leaving degraded mode");
        }
    }

    /// Checks free space on the data dir's file system.
    pub(crate) fn check_disk(&self) {
        let dir = &self.config().storage.data_dir;
        match fs4::available_space(dir) {
            Ok(free) => self
                .inner()
                .health
                .set_free_bytes(free, self.config().storage.min_free_bytes),
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "cannot read free disk space")
            }
        }
    }

    /// One probe round: free space; while degraded, a probe write to the journal (which
    /// clears its failure state when it succeeds) and, after failed checkpoints, a redb
    /// reopen and a checkpoint. Blocking parts run on a blocking thread.
    pub async fn probe_storage(&self) {
        self.check_disk();
        if self.is_degraded() && !self.inner().health.low_disk.load(Ordering::SeqCst) {
            if !self.journal_healthy() {
                let probe = Event::StorageProbe {
                    at_ms: self.now().as_millisecond(),
                };
                let payload = crate::persist::codec::encode(&probe);
                match self.inner().journal.submit(payload).await {
                    Ok(committed) => drop(committed),
                    Err(e) => tracing::debug!(error = %e, "storage probe write failed"),
                }
            }
            let health = &self.inner().health;
            if self.journal_healthy()
                && health.checkpoint_failures.load(Ordering::SeqCst) >= health.failures_limit
            {
                let engine = self.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    if let Err(e) = engine.reopen_store() {
                        tracing::debug!(error = %e, "redb reopen failed");
                        return;
                    }
                    let _ = engine.checkpoint(true, true);
                })
                .await;
            }
        }
        self.log_state_change();
    }

    /// Reopens the redb handle if a failed commit may have poisoned it (persistence.md:
    /// "leaving degraded mode includes reopening it").
    pub(crate) fn reopen_store(&self) -> Result<(), String> {
        let health = &self.inner().health;
        if !health.redb_poisoned.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.inner().store.reopen().map_err(|e| e.to_string())?;
        health.redb_poisoned.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// The probe loop: every `storage.probe_interval_ms` until `shutdown` flips.
    pub async fn run_storage_probe(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let every = Duration::from_millis(self.config().storage.probe_interval_ms);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let started = Instant::now();
            let started_ms = self.now().as_millisecond();
            let was = self.is_degraded();
            self.probe_storage().await;
            if was || self.is_degraded() {
                let outcome = if self.is_degraded() {
                    Err("still degraded".to_owned())
                } else {
                    Ok("storage works again".to_owned())
                };
                self.jobs()
                    .record_run("storage_probe", started_ms, started.elapsed(), outcome);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cold_loads_are_limited_per_student_and_globally() {
        let health = Health::new(3);
        assert_eq!(health.admit_cold_load("a"), Ok(()));
        let wait = health.admit_cold_load("a").expect_err("second load of a");
        assert!((1..=COLD_LOAD_PERIOD_SECS).contains(&wait), "{wait}");
        // Other students still load, up to the global budget.
        for i in 1..COLD_LOADS_PER_MINUTE {
            assert_eq!(health.admit_cold_load(&format!("s{i}")), Ok(()), "load {i}");
        }
        assert!(health.admit_cold_load("one-too-many").is_err());
    }

    #[test]
    fn repeated_checkpoint_failures_count_until_one_succeeds() {
        let health = Health::new(2);
        health.on_checkpoint(false);
        health.on_checkpoint(false);
        assert_eq!(health.checkpoint_failures.load(Ordering::SeqCst), 2);
        assert!(health.redb_poisoned.load(Ordering::SeqCst));
        health.on_checkpoint(true);
        assert_eq!(health.checkpoint_failures.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn free_space_under_the_minimum_sets_low_disk() {
        let health = Health::new(3);
        health.set_free_bytes(10, 100);
        assert!(health.low_disk.load(Ordering::SeqCst));
        health.set_free_bytes(1000, 100);
        assert!(!health.low_disk.load(Ordering::SeqCst));
    }
}
