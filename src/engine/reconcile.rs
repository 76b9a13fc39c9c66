//! Reconciliation (srs.md "Reconciliation"): a random sample of progress rows and SRS
//! cards is compared across memory, redb and the MariaDB mirror, all as of one
//! checkpoint, and the copies are fixed from the source of truth (the engine's memory
//! and redb). Runs daily and on demand (`POST /api/v1/admin/reconcile`, a job).
//!
//! How "one checkpoint" is obtained: the run first writes a checkpoint of every stream,
//! then compares each sampled row of a student while holding that student's write lock
//! (so no write of theirs is between decide and apply), skipping rows marked dirty
//! (changed since the checkpoint: memory is newer than redb by design). For the mirror it
//! waits until the mirror has caught up with that checkpoint; a row that differs is
//! re-read once after the mirror caught up again, so normal mirror lag is never counted.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::Connection;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};

use crate::error::ApiError;
use crate::persist::codec;
use crate::persist::mirror::read::{self, Table};
use crate::persist::mirror::{rows, sql};

use super::Engine;
use super::jobs::JobHandle;

/// How long a run waits for the mirror to catch up with its checkpoint.
const MIRROR_WAIT: Duration = Duration::from_secs(60);
/// Most discrepancies listed in a report.
const MAX_LISTED: usize = 20;
/// Keys read from redb per chunk while sampling.
const SCAN_CHUNK: usize = 10_000;

/// `POST /api/v1/admin/reconcile` body.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRequest {
    /// Rows to sample, 1–1,000,000 (default `reconcile.sample_size`).
    #[serde(default)]
    pub sample_size: Option<usize>,
}

/// One row that differed.
#[derive(Debug, Clone, Serialize)]
pub struct Discrepancy {
    /// `progress` or `card`.
    pub kind: &'static str,
    /// The row key: `player␟subject` or `player␟season␟question`.
    pub key: String,
    /// `memory_redb` or `redb_mirror`.
    pub between: &'static str,
    /// What differed.
    pub detail: String,
}

/// A run's result (srs.md: `{sample_size, discrepancies_found, discrepancy_rate,
/// auto_corrected, alert_triggered}`, plus what was compared).
#[derive(Debug, Clone, Serialize)]
pub struct ReconcileReport {
    /// Rows sampled (fewer when the tables hold fewer rows than asked).
    pub sample_size: usize,
    /// Sampled rows of students in memory compared with redb.
    pub compared_memory: usize,
    /// Sampled rows compared with the mirror.
    pub compared_mirror: usize,
    /// `compared` (caught up), `not_configured`, or `lagging` (not caught up within a
    /// minute: skipped).
    pub mirror: &'static str,
    /// Rows that differed somewhere.
    pub discrepancies_found: usize,
    /// `discrepancies_found / sample_size` (0 for an empty sample).
    pub discrepancy_rate: f64,
    /// Discrepancies fixed (mirror rows rewritten; memory rows re-marked for the next
    /// checkpoint).
    pub auto_corrected: usize,
    /// Whether the rate exceeded `reconcile.alert_rate`.
    pub alert_triggered: bool,
    /// The checkpoint's journal sequence the comparison is anchored at.
    pub checkpoint_seq: u64,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
    /// The first discrepancies.
    pub discrepancies: Vec<Discrepancy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Progress,
    Card,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Progress => "progress",
            Kind::Card => "card",
        }
    }

    fn table(self) -> Table {
        match self {
            Kind::Progress => Table::Progress,
            Kind::Card => Table::Cards,
        }
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e)
}

impl Engine {
    /// Runs one reconciliation over `sample_size` rows (default from the config),
    /// reporting progress to `job` if given.
    ///
    /// # Errors
    /// 422 for a sample size out of range; 500 when the checkpoint or redb fails. A
    /// mirror that cannot be reached is reported (`mirror: "lagging"`), not an error.
    pub async fn reconcile(
        &self,
        sample_size: Option<usize>,
        job: Option<&JobHandle>,
    ) -> Result<ReconcileReport, ApiError> {
        let cfg = self.config().reconcile.clone();
        let wanted = sample_size.unwrap_or(cfg.sample_size);
        if !(1..=1_000_000).contains(&wanted) {
            return Err(ApiError::field(
                "/sample_size",
                "must be between 1 and 1000000",
            ));
        }
        let started = Instant::now();
        let engine = self.clone();
        let checkpoint = tokio::task::spawn_blocking(move || engine.checkpoint(true, true))
            .await
            .map_err(internal)?
            .map_err(|e| ApiError::internal(format!("checkpoint before reconciliation: {e}")))?;
        let engine = self.clone();
        let sample = tokio::task::spawn_blocking(move || engine.sample_keys(wanted))
            .await
            .map_err(internal)??;
        if let Some(job) = job {
            job.set_total(sample.len() as u64 * 2);
        }
        let mut found: Vec<Discrepancy> = Vec::new();
        let mut corrected = 0usize;
        let mut compared_memory = 0usize;
        for (kind, key) in &sample {
            if let Some(d) = self
                .compare_memory(*kind, key, &mut compared_memory)
                .await?
            {
                corrected += 1;
                found.push(d);
            }
            if let Some(job) = job {
                job.advance(1);
            }
        }
        let (mirror, compared_mirror) = if self.config().mirror.enabled() {
            self.compare_mirror(&sample, &mut found, &mut corrected, job)
                .await
        } else {
            ("not_configured", 0)
        };
        // Re-marked memory rows reach redb now rather than in up to 30 s.
        if found.iter().any(|d| d.between == "memory_redb") {
            let engine = self.clone();
            let _ = tokio::task::spawn_blocking(move || engine.checkpoint(true, true)).await;
        }
        let discrepancies_found = found.len();
        let rate = if sample.is_empty() {
            0.0
        } else {
            discrepancies_found as f64 / sample.len() as f64
        };
        let alert = rate > cfg.alert_rate;
        if alert {
            tracing::error!(
                rate,
                discrepancies_found,
                sample = sample.len(),
                "reconciliation: discrepancy rate above reconcile.alert_rate"
            );
        }
        found.truncate(MAX_LISTED);
        Ok(ReconcileReport {
            sample_size: sample.len(),
            compared_memory,
            compared_mirror,
            mirror,
            discrepancies_found,
            discrepancy_rate: rate,
            auto_corrected: corrected,
            alert_triggered: alert,
            checkpoint_seq: checkpoint.seq,
            duration_ms: started.elapsed().as_millis() as u64,
            discrepancies: found,
        })
    }

    /// A uniform random sample (reservoir sampling) of progress and card keys in redb.
    fn sample_keys(&self, n: usize) -> Result<Vec<(Kind, String)>, ApiError> {
        let mut rng = rand::rng();
        let mut reservoir: Vec<(Kind, String)> = Vec::with_capacity(n.min(1 << 20));
        let mut seen = 0usize;
        let db = self
            .inner()
            .store
            .db()
            .get()
            .ok_or_else(|| ApiError::internal("redb is closed"))?;
        for kind in [Kind::Progress, Kind::Card] {
            let mut after: Option<String> = None;
            loop {
                let chunk = read::scan(&db, kind.table(), after.as_deref(), SCAN_CHUNK)
                    .map_err(internal)?;
                let Some((last, _)) = chunk.last() else {
                    break;
                };
                after = Some(last.clone());
                for (key, _) in chunk {
                    seen += 1;
                    if reservoir.len() < n {
                        reservoir.push((kind, key));
                    } else {
                        let j = rng.random_range(0..seen);
                        if j < n {
                            reservoir[j] = (kind, key);
                        }
                    }
                }
            }
        }
        Ok(reservoir)
    }

    /// The memory copy of a row (encoded as redb stores it), if the student is loaded
    /// and the row is not dirty; `Err(())` when the row should be skipped.
    fn memory_bytes(&self, kind: Kind, key: &str) -> Result<Option<Vec<u8>>, ()> {
        let inner = self.inner();
        match kind {
            Kind::Progress => {
                let (player, subject) = key.split_once('\u{1f}').ok_or(())?;
                let student = inner.students.get(player).ok_or(())?;
                let dirty = inner
                    .dirty
                    .lock()
                    .progress
                    .iter()
                    .any(|(p, s)| &**p == player && &**s == subject);
                if dirty {
                    return Err(());
                }
                let state = student.state.read();
                Ok(state
                    .subjects
                    .get(subject)
                    .map(|p| codec::encode(&p.to_record())))
            }
            Kind::Card => {
                let mut parts = key.splitn(3, '\u{1f}');
                let (Some(player), Some(season), Some(question)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(());
                };
                let student = inner.students.get(player).ok_or(())?;
                let qkey = inner.srs.questions.read().key(question).ok_or(())?;
                let dirty = inner
                    .srs
                    .dirty
                    .lock()
                    .cards
                    .iter()
                    .any(|(p, s, q)| &**p == player && &**s == season && *q == qkey);
                if dirty {
                    return Err(());
                }
                let state = student.state.read();
                Ok(state
                    .srs
                    .queues
                    .get(season)
                    .and_then(|q| q.get(qkey))
                    .map(|c| codec::encode(&c)))
            }
        }
    }

    /// Compares a sampled row of a student in memory with redb, under the student's
    /// write lock; a difference re-marks the row dirty so the next checkpoint rewrites
    /// redb from memory.
    async fn compare_memory(
        &self,
        kind: Kind,
        key: &str,
        compared: &mut usize,
    ) -> Result<Option<Discrepancy>, ApiError> {
        let player = key.split('\u{1f}').next().unwrap_or_default();
        let Some(student) = self.inner().students.get(player) else {
            return Ok(None);
        };
        let _order = student.write.lock().await;
        let Ok(memory) = self.memory_bytes(kind, key) else {
            return Ok(None);
        };
        let stored = {
            let db = self
                .inner()
                .store
                .db()
                .get()
                .ok_or_else(|| ApiError::internal("redb is closed"))?;
            read::rows(&db, kind.table(), &[key.to_owned()])
                .map_err(internal)?
                .pop()
                .and_then(|(_, v)| v)
        };
        *compared += 1;
        if memory == stored {
            return Ok(None);
        }
        self.mark_dirty(kind, key);
        Ok(Some(Discrepancy {
            kind: kind.name(),
            key: key.to_owned(),
            between: "memory_redb",
            detail: match (&memory, &stored) {
                (Some(_), None) => "missing in redb".to_owned(),
                (None, Some(_)) => "missing in memory".to_owned(),
                _ => "record differs".to_owned(),
            },
        }))
    }

    fn mark_dirty(&self, kind: Kind, key: &str) {
        let inner = self.inner();
        let mut parts = key.splitn(3, '\u{1f}');
        let player: Arc<str> = Arc::from(parts.next().unwrap_or_default());
        match kind {
            Kind::Progress => {
                let subject = parts.next().unwrap_or_default();
                inner.dirty.lock().progress.insert((player, subject.into()));
            }
            Kind::Card => {
                let (Some(season), Some(question)) = (parts.next(), parts.next()) else {
                    return;
                };
                let qkey = inner.srs.questions.write().intern(question);
                inner
                    .srs
                    .dirty
                    .lock()
                    .cards
                    .insert((player, season.into(), qkey));
            }
        }
    }

    /// Waits until the mirror has no lag, up to `limit`.
    async fn mirror_caught_up(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.mirror_status()
                && s.state == "ok"
                && s.lag_rows == 0
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn compare_mirror(
        &self,
        sample: &[(Kind, String)],
        found: &mut Vec<Discrepancy>,
        corrected: &mut usize,
        job: Option<&JobHandle>,
    ) -> (&'static str, usize) {
        if !self.mirror_caught_up(MIRROR_WAIT).await {
            return ("lagging", 0);
        }
        let Ok(options) = MySqlConnectOptions::from_str(&self.config().mirror.url) else {
            return ("lagging", 0);
        };
        let mut conn = match MySqlConnection::connect_with(&options).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "reconciliation: cannot reach the mirror");
                return ("lagging", 0);
            }
        };
        let mut compared = 0usize;
        for (kind, key) in sample {
            match self.compare_mirror_row(&mut conn, *kind, key, true).await {
                Ok(Some(d)) => {
                    found.push(d);
                    *corrected += 1;
                    compared += 1;
                }
                Ok(None) => compared += 1,
                Err(e) => {
                    tracing::warn!(error = %e, "reconciliation: mirror comparison failed");
                    return ("lagging", compared);
                }
            }
            if let Some(job) = job {
                job.advance(1);
            }
        }
        ("compared", compared)
    }

    /// Compares one row of redb with the mirror; on a difference, waits for the mirror
    /// to catch up and looks again (`recheck`), then rewrites the mirror row.
    async fn compare_mirror_row(
        &self,
        conn: &mut MySqlConnection,
        kind: Kind,
        key: &str,
        recheck: bool,
    ) -> Result<Option<Discrepancy>, String> {
        let engine = self.clone();
        let k = key.to_owned();
        let (stored, content) = tokio::task::spawn_blocking(move || {
            let db = engine
                .inner()
                .store
                .db()
                .get()
                .ok_or_else(|| "redb is closed".to_owned())?;
            let stored = read::rows(&db, kind.table(), &[k])
                .map_err(|e| e.to_string())?
                .pop()
                .and_then(|(_, v)| v);
            let subjects = read::subjects(&db).map_err(|e| e.to_string())?;
            Ok::<_, String>((stored, subjects))
        })
        .await
        .map_err(|e| e.to_string())??;
        let content = rows::content(&content).map_err(|e| e.to_string())?;
        let batch = self.config().mirror.batch_rows;
        let detail = match kind {
            Kind::Progress => {
                let (player, subject) = key.split_once('\u{1f}').unwrap_or((key, ""));
                let expected = stored
                    .map(|b| rows::progress(player, subject, &b, &content))
                    .transpose()
                    .map_err(|e| e.to_string())?;
                let subject_id = content
                    .get(subject)
                    .map_or_else(|| subject.to_owned(), |i| i.id.clone());
                let actual = sql::progress_row(conn, player, &subject_id)
                    .await
                    .map_err(|e| e.to_string())?;
                let Some(detail) = progress_difference(expected.as_ref(), actual.as_ref()) else {
                    return Ok(None);
                };
                if recheck {
                    return self.recheck(conn, kind, key).await;
                }
                match &expected {
                    Some(row) => sql::upsert_progress(conn, std::slice::from_ref(row), batch)
                        .await
                        .map_err(|e| e.to_string())?,
                    None => sql::delete_missing(conn, &[], &[], &[(player.to_owned(), subject_id)])
                        .await
                        .map_err(|e| e.to_string())?,
                }
                detail
            }
            Kind::Card => {
                let mut parts = key.splitn(3, '\u{1f}');
                let (player, season, question) = (
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                );
                let expected = stored
                    .map(|b| rows::card(key, &b, &content))
                    .transpose()
                    .map_err(|e| e.to_string())?;
                let actual = sql::card_row(conn, player, season, question)
                    .await
                    .map_err(|e| e.to_string())?;
                let Some(detail) = card_difference(expected.as_ref(), actual.as_ref()) else {
                    return Ok(None);
                };
                if recheck {
                    return self.recheck(conn, kind, key).await;
                }
                match &expected {
                    Some(row) => sql::upsert_cards(conn, std::slice::from_ref(row), batch)
                        .await
                        .map_err(|e| e.to_string())?,
                    None => sql::delete_cards(
                        conn,
                        &[(player.to_owned(), season.to_owned(), question.to_owned())],
                    )
                    .await
                    .map_err(|e| e.to_string())?,
                }
                detail
            }
        };
        Ok(Some(Discrepancy {
            kind: kind.name(),
            key: key.to_owned(),
            between: "redb_mirror",
            detail,
        }))
    }

    /// A row differed: it may just have changed since; let the mirror catch up and
    /// compare again, fixing it if it still differs.
    async fn recheck(
        &self,
        conn: &mut MySqlConnection,
        kind: Kind,
        key: &str,
    ) -> Result<Option<Discrepancy>, String> {
        self.mirror_caught_up(Duration::from_secs(10)).await;
        Box::pin(self.compare_mirror_row(conn, kind, key, false)).await
    }

    /// The daily schedule: a run every `reconcile.interval_hours` (0 = never) until
    /// `shutdown` flips; each run recorded as task `reconcile`.
    pub async fn run_reconcile_schedule(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let hours = self.config().reconcile.interval_hours;
        if hours == 0 {
            return;
        }
        let every = Duration::from_secs(hours * 3600);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let started_ms = self.now().as_millisecond();
            let started = Instant::now();
            let outcome = match self.reconcile(None, None).await {
                Ok(r) => Ok(format!(
                    "{} sampled, {} discrepancies ({:.4}%), {} corrected, mirror {}",
                    r.sample_size,
                    r.discrepancies_found,
                    r.discrepancy_rate * 100.0,
                    r.auto_corrected,
                    r.mirror
                )),
                Err(e) => Err(e.detail),
            };
            self.jobs()
                .record_run("reconcile", started_ms, started.elapsed(), outcome);
        }
    }
}

fn progress_difference(
    expected: Option<&rows::ProgressRow>,
    actual: Option<&rows::ProgressRow>,
) -> Option<String> {
    match (expected, actual) {
        (None, None) => None,
        (Some(_), None) => Some("missing in the mirror".to_owned()),
        (None, Some(_)) => Some("in the mirror but not in redb".to_owned()),
        (Some(e), Some(a)) => {
            let hearts_equal = serde_json::from_str::<serde_json::Value>(&e.best_hearts).ok()
                == serde_json::from_str::<serde_json::Value>(&a.best_hearts).ok();
            let same = e.passed_lessons == a.passed_lessons
                && e.total_lessons == a.total_lessons
                && e.total_xp_earned == a.total_xp_earned
                && e.passed_bitmap == a.passed_bitmap
                && hearts_equal
                && e.last_lesson_completed == a.last_lesson_completed;
            (!same).then(|| {
                format!(
                    "passed {}/{} xp {} in redb, passed {}/{} xp {} in the mirror",
                    e.passed_lessons,
                    e.total_lessons,
                    e.total_xp_earned,
                    a.passed_lessons,
                    a.total_lessons,
                    a.total_xp_earned
                )
            })
        }
    }
}

fn card_difference(
    expected: Option<&rows::CardRow>,
    actual: Option<&rows::CardRow>,
) -> Option<String> {
    match (expected, actual) {
        (None, None) => None,
        (Some(_), None) => Some("missing in the mirror".to_owned()),
        (None, Some(_)) => Some("in the mirror but not in redb".to_owned()),
        (Some(e), Some(a)) => {
            let same = e.state == a.state
                && (e.stability - a.stability).abs() <= 1e-9 * e.stability.abs().max(1.0)
                && (e.difficulty - a.difficulty).abs() <= 1e-9 * e.difficulty.abs().max(1.0)
                && e.due == a.due
                && e.last_review == a.last_review
                && e.reps == a.reps
                && e.lapses == a.lapses;
            (!same).then(|| {
                format!(
                    "state {} due {} reps {} in redb, state {} due {} reps {} in the mirror",
                    e.state, e.due, e.reps, a.state, a.due, a.reps
                )
            })
        }
    }
}

/// Sample size problems as 422 (used by the HTTP handler before starting a job).
///
/// # Errors
/// 422 `VALIDATION_FAILED` with the pointer `/sample_size`.
pub fn check_sample_size(size: Option<usize>) -> Result<(), ApiError> {
    match size {
        Some(n) if !(1..=1_000_000).contains(&n) => {
            Err(ApiError::validation(vec![crate::error::FieldProblem {
                pointer: "/sample_size".to_owned(),
                message: "must be between 1 and 1000000".to_owned(),
            }]))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;

    fn card(stability: f64, due: &str) -> rows::CardRow {
        rows::CardRow {
            player_id: "p".into(),
            season_id: "s".into(),
            question_id: "q".into(),
            state: 2,
            stability,
            difficulty: 5.0,
            due: due.into(),
            last_review: None,
            reps: 3,
            lapses: 0,
            subject_id: "x".into(),
            topic_id: None,
        }
    }

    #[test]
    fn card_differences_are_found_and_equal_rows_pass() {
        let a = card(12.5, "2026-11-21 09:00:00.000");
        assert_eq!(card_difference(Some(&a), Some(&a.clone())), None);
        assert!(card_difference(Some(&a), None).is_some());
        assert!(card_difference(None, Some(&a)).is_some());
        assert!(card_difference(Some(&a), Some(&card(12.6, "2026-11-21 09:00:00.000"))).is_some());
        assert!(card_difference(Some(&a), Some(&card(12.5, "2026-11-22 09:00:00.000"))).is_some());
    }

    #[test]
    fn best_hearts_compare_as_json_not_text() {
        let row = |hearts: &str| rows::ProgressRow {
            player_id: "p".into(),
            subject_id: "s".into(),
            passed_lessons: 1,
            total_lessons: 3,
            completion_percentage: 33.33,
            total_xp_earned: 30,
            passed_bitmap: vec![1, 2],
            best_hearts: hearts.into(),
            last_lesson_completed: None,
            updated_at: String::new(),
        };
        assert_eq!(
            progress_difference(Some(&row(r#"{"a":3}"#)), Some(&row(r#"{"a": 3}"#))),
            None
        );
        assert!(progress_difference(Some(&row(r#"{"a":3}"#)), Some(&row(r#"{"a":2}"#))).is_some());
    }

    #[test]
    fn sample_sizes_out_of_range_are_refused() {
        assert!(check_sample_size(Some(0)).is_err());
        assert!(check_sample_size(Some(1_000_001)).is_err());
        assert!(check_sample_size(Some(10)).is_ok());
        assert!(check_sample_size(None).is_ok());
        assert_eq!(
            check_sample_size(Some(0)).map_err(|e| e.code),
            Err(Code::ValidationFailed)
        );
    }
}
