//! The build queue (content.md "Build rules", issue 4): plans waiting to be built, the
//! history of recent builds, retries with backoff (30 s, 1 min, 2 min, 5 min, 15 min)
//! and dead builds an admin can retry. The engine enqueues plans after content changes
//! and runs due builds on a blocking thread after a debounce (`engine::builds`).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use parking_lot::Mutex;
use serde::Serialize;

use crate::content::Catalog;

use super::{BuildReport, Writer, build_plan};

/// Delay before each retry of a failed build; after the last one the build is dead.
pub const BACKOFF_SECS: [i64; 5] = [30, 60, 120, 300, 900];

/// Finished builds kept in the history.
const HISTORY: usize = 100;

/// Where a build stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
pub struct BuildRecord {
    /// `b-{n}`, unique per process.
    pub id: String,
    /// The plan.
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
    /// The report of a successful build.
    pub result: Option<BuildReport>,
    /// Why it failed.
    pub error: Option<String>,
}

/// The queue, recent history and dead builds.
#[derive(Debug, Clone, Serialize)]
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
    /// Builds started and not yet finished (waiting for the writer or writing).
    running: usize,
}

/// How many builds wait, run and are dead (`/readyz`, metrics, the engine report).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BuildCounts {
    /// Waiting (debounce or retry backoff).
    pub queued: usize,
    /// Running.
    pub running: usize,
    /// Dead (failed every retry).
    pub dead: usize,
}

/// The build service: the writer (one build at a time) and the queue.
pub struct Builds {
    writer: Mutex<Writer>,
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
            state: Mutex::new(QueueState::default()),
            notify: tokio::sync::Notify::new(),
            debounce,
        }
    }

    /// The debounce delay.
    pub fn debounce(&self) -> Duration {
        self.debounce
    }

    /// Resolves when something was enqueued.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    fn record(
        st: &mut QueueState,
        plan_id: &str,
        trigger: &str,
        attempt: u32,
        now: Timestamp,
        due_at: Timestamp,
    ) -> BuildRecord {
        st.next_id += 1;
        BuildRecord {
            id: format!("b-{}", st.next_id),
            plan_id: plan_id.to_owned(),
            trigger: trigger.to_owned(),
            state: BuildState::Queued,
            attempt,
            queued_at: now,
            due_at,
            started_at: None,
            finished_at: None,
            result: None,
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
            let record = Self::record(&mut st, &id, trigger, 1, now, due);
            st.pending.insert(key, record);
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
            Self::record(&mut st, plan_id, trigger, 1, t, t)
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
        self.state.lock().running += 1;
        let clock = std::time::Instant::now();
        let result = {
            let mut writer = self.writer.lock();
            build_plan(&mut writer, catalog, &record.plan_id, now())
        };
        let finished = now();
        record.finished_at = Some(finished);
        let mut st = self.state.lock();
        st.running = st.running.saturating_sub(1);
        match result {
            Ok(report) => {
                tracing::info!(plan = %record.plan_id, outcome = report.outcome, written = report.write.written, deleted = report.write.deleted, ms = report.duration_ms, "content build");
                record.state = BuildState::Done;
                record.result = Some(report);
            }
            Err(e) => {
                record.error = Some(e.to_string());
                let key = record.plan_id.to_ascii_lowercase();
                match BACKOFF_SECS.get(record.attempt as usize - 1) {
                    Some(&secs) => {
                        tracing::warn!(plan = %record.plan_id, attempt = record.attempt, retry_in_s = secs, error = %e, "content build failed");
                        record.state = BuildState::Failed;
                        if !st.pending.contains_key(&key) {
                            let mut retry = Self::record(
                                &mut st,
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
                        tracing::error!(plan = %record.plan_id, attempts = record.attempt, error = %e, "content build dead after every retry");
                        record.state = BuildState::Dead;
                        st.dead.insert(record.id.clone(), record.clone());
                    }
                }
            }
        }
        st.history.push_front(record.clone());
        st.history.truncate(HISTORY);
        drop(st);
        let outcome = match record.state {
            BuildState::Done => "done",
            BuildState::Dead => "dead",
            _ => "failed",
        };
        crate::observe::content_build(outcome, clock.elapsed());
        record
    }

    /// Requeues a dead build (due now). `None` if no dead build has that id.
    pub fn retry(&self, id: &str, now: Timestamp) -> Option<BuildRecord> {
        let mut st = self.state.lock();
        let dead = st.dead.remove(id)?;
        let record = Self::record(&mut st, &dead.plan_id, "retry", 1, now, now);
        st.pending
            .insert(dead.plan_id.to_ascii_lowercase(), record.clone());
        drop(st);
        self.notify.notify_one();
        Some(record)
    }

    /// How many builds wait, run and are dead.
    pub fn counts(&self) -> BuildCounts {
        let st = self.state.lock();
        BuildCounts {
            queued: st.pending.len(),
            running: st.running,
            dead: st.dead.len(),
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
