//! The build queue (content.md "Build rules", issue 4): plans waiting to be built, the
//! history of recent builds, retries with backoff (30 s, 1 min, 2 min, 5 min, 15 min)
//! and dead builds an admin can retry. The engine enqueues plans after content changes
//! and runs due builds on a blocking thread after a debounce (`engine::builds`).
//!
//! With an [`Uploader`] (`[cdn.s3]`), a build is done only once its files are in the
//! bucket: an upload failure fails the build, which is retried like any other (the
//! retry finds nothing to rebuild and pushes what is still dirty). Asset changes and
//! the start of the server queue upload-only jobs (`kind: upload`).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use parking_lot::Mutex;
use serde::Serialize;

use crate::content::Catalog;

use super::upload::{UploadReport, Uploader};
use super::{BuildReport, Writer, build_plan};

/// Delay before each retry of a failed build; after the last one the build is dead.
pub const BACKOFF_SECS: [i64; 5] = [30, 60, 120, 300, 900];

/// Finished builds kept in the history.
const HISTORY: usize = 100;

/// Queue key of the upload-only job (plan keys are never empty).
const UPLOAD_KEY: &str = "";

/// What a queued job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BuildKind {
    /// Build a plan (then upload, when configured).
    Plan,
    /// Only upload what changed (assets, the reconciliation at start).
    Upload,
}

/// Where a build stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BuildState {
    /// Waiting (maybe for its retry time).
    Queued,
    /// Being built.
    Running,
    /// Built.
    Done,
    /// Failed; a retry is queued.
    Failed,
    /// Failed after every retry; an admin can retry it.
    Dead,
}

/// One build of one plan, as shown by `GET /api/v1/admin/builds`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BuildRecord {
    /// `b-{n}`, unique per process.
    pub id: String,
    /// A plan build or an upload-only job.
    pub kind: BuildKind,
    /// The plan (absent for upload-only jobs).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub plan_id: String,
    /// Why it runs: `content`, `api`, `cli`, `retry`, `startup`.
    pub trigger: String,
    /// State.
    pub state: BuildState,
    /// 1 for the first try.
    pub attempt: u32,
    /// When it was queued.
    pub queued_at: Timestamp,
    /// Not before this instant (debounce or backoff).
    pub due_at: Timestamp,
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// The report of the local build (also kept when only its upload failed).
    pub result: Option<BuildReport>,
    /// What the upload did (`[cdn.s3]` configured and the upload succeeded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadReport>,
    /// Why it failed.
    pub error: Option<String>,
}

/// The queue, recent history and dead builds.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BuildsView {
    /// Waiting builds, by plan.
    pub queue: Vec<BuildRecord>,
    /// Finished builds, newest first.
    pub history: Vec<BuildRecord>,
    /// Builds that failed every retry.
    pub dead: Vec<BuildRecord>,
}

#[derive(Default)]
struct QueueState {
    /// Lowercased plan id → waiting build (one per plan).
    pending: BTreeMap<String, BuildRecord>,
    history: VecDeque<BuildRecord>,
    dead: BTreeMap<String, BuildRecord>,
    next_id: u64,
}

/// Counts for health checks (`/readyz`, `/metrics`): see [`Builds::summary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildsSummary {
    /// Jobs waiting (debounce or retry backoff).
    pub queued: usize,
    /// Jobs waiting for a retry after a failure.
    pub retrying: usize,
    /// Dead builds (failed every retry; an admin can retry them).
    pub dead: usize,
    /// Whether uploads to `[cdn.s3]` are configured.
    pub upload_enabled: bool,
    /// Paths not uploaded yet.
    pub upload_pending: usize,
}

/// The build service: the writer (one build at a time), the queue and the optional
/// uploader.
pub struct Builds {
    writer: Mutex<Writer>,
    uploader: Option<Uploader>,
    state: Mutex<QueueState>,
    notify: tokio::sync::Notify,
    debounce: Duration,
}

impl std::fmt::Debug for Builds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builds").finish_non_exhaustive()
    }
}

impl Builds {
    /// A service writing through `writer`, running queued builds `debounce` after the
    /// last change.
    pub fn new(writer: Writer, debounce: Duration) -> Builds {
        Builds {
            writer: Mutex::new(writer),
            uploader: None,
            state: Mutex::new(QueueState::default()),
            notify: tokio::sync::Notify::new(),
            debounce,
        }
    }

    /// The same service, uploading every build's changes with `uploader`.
    pub fn with_uploader(mut self, uploader: Uploader) -> Builds {
        self.uploader = Some(uploader);
        self
    }

    /// The uploader, when `[cdn.s3]` is configured.
    pub fn uploader(&self) -> Option<&Uploader> {
        self.uploader.as_ref()
    }

    /// The debounce delay.
    pub fn debounce(&self) -> Duration {
        self.debounce
    }

    /// Resolves when something was enqueued.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        st: &mut QueueState,
        kind: BuildKind,
        plan_id: &str,
        trigger: &str,
        attempt: u32,
        now: Timestamp,
        due_at: Timestamp,
    ) -> BuildRecord {
        st.next_id += 1;
        BuildRecord {
            id: format!("b-{}", st.next_id),
            kind,
            plan_id: plan_id.to_owned(),
            trigger: trigger.to_owned(),
            state: BuildState::Queued,
            attempt,
            queued_at: now,
            due_at,
            started_at: None,
            finished_at: None,
            result: None,
            upload: None,
            error: None,
        }
    }

    /// Queues builds of `plan_ids`, due after the debounce; a plan already waiting (also
    /// for a retry) is simply made due again.
    pub fn enqueue(
        &self,
        plan_ids: impl IntoIterator<Item = String>,
        trigger: &str,
        now: Timestamp,
    ) {
        let due = now + SignedDuration::try_from(self.debounce).unwrap_or_default();
        let mut st = self.state.lock();
        for id in plan_ids {
            let key = id.to_ascii_lowercase();
            let record = Self::record(&mut st, BuildKind::Plan, &id, trigger, 1, now, due);
            st.pending.insert(key, record);
        }
        drop(st);
        self.notify.notify_one();
    }

    /// Marks files below the output root (e.g. `assets/img/a.png`) changed or deleted
    /// outside a build and queues an upload-only job after the debounce. Nothing
    /// without an uploader.
    pub fn files_changed(
        &self,
        paths: impl IntoIterator<Item = String>,
        trigger: &str,
        now: Timestamp,
    ) {
        let Some(uploader) = &self.uploader else {
            return;
        };
        uploader.mark(paths);
        self.enqueue_upload(trigger, now);
    }

    /// Queues an upload-only job after the debounce (unless one is waiting already).
    /// Nothing without an uploader.
    pub fn enqueue_upload(&self, trigger: &str, now: Timestamp) {
        if self.uploader.is_none() {
            return;
        }
        let due = now + SignedDuration::try_from(self.debounce).unwrap_or_default();
        let mut st = self.state.lock();
        if !st.pending.contains_key(UPLOAD_KEY) {
            let record = Self::record(&mut st, BuildKind::Upload, "", trigger, 1, now, due);
            st.pending.insert(UPLOAD_KEY.to_owned(), record);
        }
        drop(st);
        self.notify.notify_one();
    }

    /// The earliest due time of a waiting build.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.state.lock().pending.values().map(|r| r.due_at).min()
    }

    /// Runs every waiting build due at `now()` (blocking: call from a blocking thread).
    pub fn run_due(&self, catalog: &Catalog, now: &dyn Fn() -> Timestamp) -> Vec<BuildRecord> {
        let due: Vec<BuildRecord> = {
            let mut st = self.state.lock();
            let t = now();
            let keys: Vec<String> = st
                .pending
                .iter()
                .filter(|(_, r)| r.due_at <= t)
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter().filter_map(|k| st.pending.remove(k)).collect()
        };
        due.into_iter().map(|r| self.run(catalog, r, now)).collect()
    }

    /// Builds a plan now (blocking), outside the queue's debounce: the admin API and
    /// tests. A failure is queued for retry like any other.
    pub fn run_now(
        &self,
        catalog: &Catalog,
        plan_id: &str,
        trigger: &str,
        now: &dyn Fn() -> Timestamp,
    ) -> BuildRecord {
        let record = {
            let mut st = self.state.lock();
            let t = now();
            st.pending.remove(&plan_id.to_ascii_lowercase());
            Self::record(&mut st, BuildKind::Plan, plan_id, trigger, 1, t, t)
        };
        self.run(catalog, record, now)
    }

    fn run(
        &self,
        catalog: &Catalog,
        mut record: BuildRecord,
        now: &dyn Fn() -> Timestamp,
    ) -> BuildRecord {
        record.state = BuildState::Running;
        record.started_at = Some(now());
        let outcome = {
            let mut writer = self.writer.lock();
            let built = match record.kind {
                BuildKind::Plan => {
                    build_plan(&mut writer, catalog, &record.plan_id, now()).map(Some)
                }
                BuildKind::Upload => Ok(None),
            };
            let changes = writer.take_changes();
            // Still under the writer's lock: no build rewrites a manifest mid-upload.
            match (&self.uploader, built) {
                (Some(up), Ok(report)) => {
                    up.mark(changes);
                    record.result = report;
                    up.flush_blocking()
                        .map(|u| record.upload = Some(u))
                        .map_err(|e| format!("upload: {e}"))
                }
                (Some(up), Err(e)) => {
                    up.mark(changes);
                    Err(e.to_string())
                }
                (None, built) => built.map(|r| record.result = r).map_err(|e| e.to_string()),
            }
        };
        let finished = now();
        record.finished_at = Some(finished);
        let mut st = self.state.lock();
        let what = if record.kind == BuildKind::Upload {
            "upload"
        } else {
            record.plan_id.as_str()
        };
        match outcome {
            Ok(()) => {
                match (&record.result, &record.upload) {
                    (Some(r), _) => {
                        tracing::info!(plan = %record.plan_id, outcome = r.outcome, written = r.write.written, deleted = r.write.deleted, ms = r.duration_ms, uploaded = record.upload.as_ref().map(|u| u.uploaded), "content build")
                    }
                    (None, Some(u)) => tracing::info!(
                        uploaded = u.uploaded,
                        deleted = u.deleted,
                        full = u.full_sync,
                        ms = u.duration_ms,
                        "content upload"
                    ),
                    (None, None) => {}
                }
                record.state = BuildState::Done;
                if self.uploader.as_ref().is_some_and(|u| u.pending() == 0) {
                    // Everything is uploaded: a dead upload-only job has nothing left.
                    st.dead.retain(|_, r| r.kind != BuildKind::Upload);
                }
            }
            Err(e) => {
                record.error = Some(e.clone());
                let key = if record.kind == BuildKind::Upload {
                    UPLOAD_KEY.to_owned()
                } else {
                    record.plan_id.to_ascii_lowercase()
                };
                match BACKOFF_SECS.get(record.attempt as usize - 1) {
                    Some(&secs) => {
                        tracing::warn!(job = what, attempt = record.attempt, retry_in_s = secs, error = %e, "content build failed");
                        record.state = BuildState::Failed;
                        if !st.pending.contains_key(&key) {
                            let mut retry = Self::record(
                                &mut st,
                                record.kind,
                                &record.plan_id,
                                "retry",
                                record.attempt + 1,
                                finished,
                                finished + SignedDuration::from_secs(secs),
                            );
                            retry.error = record.error.clone();
                            st.pending.insert(key, retry);
                        }
                    }
                    None => {
                        tracing::error!(job = what, attempts = record.attempt, error = %e, "content build dead after every retry");
                        record.state = BuildState::Dead;
                        st.dead.insert(record.id.clone(), record.clone());
                    }
                }
            }
        }
        st.history.push_front(record.clone());
        st.history.truncate(HISTORY);
        record
    }

    /// Requeues a dead build (due now). `None` if no dead build has that id.
    pub fn retry(&self, id: &str, now: Timestamp) -> Option<BuildRecord> {
        let mut st = self.state.lock();
        let dead = st.dead.remove(id)?;
        let record = Self::record(&mut st, dead.kind, &dead.plan_id, "retry", 1, now, now);
        st.pending
            .insert(dead.plan_id.to_ascii_lowercase(), record.clone());
        drop(st);
        self.notify.notify_one();
        Some(record)
    }

    /// Counts for health checks: queued, retrying and dead jobs, and pending uploads.
    pub fn summary(&self) -> BuildsSummary {
        let st = self.state.lock();
        BuildsSummary {
            queued: st.pending.len(),
            retrying: st.pending.values().filter(|r| r.attempt > 1).count(),
            dead: st.dead.len(),
            upload_enabled: self.uploader.is_some(),
            upload_pending: self.uploader.as_ref().map_or(0, Uploader::pending),
        }
    }

    /// The queue, history and dead builds.
    pub fn view(&self) -> BuildsView {
        let st = self.state.lock();
        BuildsView {
            queue: st.pending.values().cloned().collect(),
            history: st.history.iter().cloned().collect(),
            dead: st.dead.values().cloned().collect(),
        }
    }
}
