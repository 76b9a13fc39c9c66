//! Background jobs and scheduled-task runs (api.md "Long operations", operations.md
//! "Runtime behaviour"): long admin operations answer 202 with a job id and run in a
//! task of their own; `GET /api/v1/admin/jobs/{id}` reports their state, progress and
//! result. Periodic tasks (checkpoints, mirror, builds, archive, retention…) record their
//! last run here for `GET /api/v1/admin/engine`.
//!
//! Jobs live in memory: a job's *effects* are journaled events like any other write, so a
//! restart loses only the job's status record (a `GET` then answers 404), never its
//! acknowledged changes. Finished jobs are kept [`KEEP_FINISHED`] and at most
//! [`MAX_FINISHED`] of them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;

use crate::clock::Clock;
use crate::engine::accounts::rfc3339;
use crate::error::{ApiError, Code};

/// How long a finished job's record is kept.
pub const KEEP_FINISHED: Duration = Duration::from_secs(7 * 24 * 3600);
/// At most this many finished jobs are kept (the oldest go first).
pub const MAX_FINISHED: usize = 1000;

/// The life of a job: `queued → running → done | failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Accepted, not started.
    Queued,
    /// Running.
    Running,
    /// Finished; `result` holds the outcome.
    Done,
    /// Finished with an error; `error` holds the problem.
    Failed,
}

/// Progress of a job in work units of its own (rows, cards, files…).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct JobProgress {
    /// Units done.
    pub done: u64,
    /// Units in all; `None` while unknown.
    pub total: Option<u64>,
}

/// What a finished job hands back.
#[derive(Debug, Clone, Default)]
pub struct JobOutput {
    /// The result every reader sees.
    pub result: serde_json::Value,
    /// A result shown once, to the player who started the job, on their first read
    /// after it finished (e.g. generated passwords, players.md); later reads get
    /// `result`.
    pub reveal_once: Option<serde_json::Value>,
}

impl JobOutput {
    /// An output without a one-time part.
    pub fn of(result: impl Serialize) -> Self {
        JobOutput {
            result: serde_json::to_value(result).unwrap_or(serde_json::Value::Null),
            reveal_once: None,
        }
    }
}

/// The answer of `GET /api/v1/admin/jobs/{id}` (api.md), and of the 202 that started it
/// (`job_id` repeats `id` there for clients that read only that field).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobView {
    /// Same as `id`.
    pub job_id: String,
    /// The job's id.
    pub id: String,
    /// What the job does: `roster_import`, `archive`, `review_import`, `snapshot`, …
    pub kind: String,
    /// Its state.
    pub state: JobState,
    /// Its progress.
    pub progress: JobProgress,
    /// The outcome once `done` (kind-specific object), else `null`.
    pub result: serde_json::Value,
    /// The problem once `failed` (`{code, detail}`), else `null`.
    pub error: Option<JobError>,
    /// When it was accepted (RFC 3339 UTC).
    pub created_at: String,
    /// When it started running.
    pub started_at: Option<String>,
    /// When it finished.
    pub finished_at: Option<String>,
}

/// Why a job failed: the problem's stable code and detail.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobError {
    /// Stable error code (api.md).
    pub code: Code,
    /// Human-readable detail.
    pub detail: String,
}

struct JobEntry {
    id: String,
    kind: String,
    owner: String,
    state: JobState,
    progress: JobProgress,
    output: Option<JobOutput>,
    error: Option<JobError>,
    created_ms: i64,
    started_ms: Option<i64>,
    finished_ms: Option<i64>,
    finished_at: Option<Instant>,
}

impl JobEntry {
    fn view(&self, result: serde_json::Value) -> JobView {
        JobView {
            job_id: self.id.clone(),
            id: self.id.clone(),
            kind: self.kind.clone(),
            state: self.state,
            progress: self.progress,
            result,
            error: self.error.clone(),
            created_at: rfc3339(self.created_ms),
            started_at: self.started_ms.map(rfc3339),
            finished_at: self.finished_ms.map(rfc3339),
        }
    }
}

/// One periodic task's last run (operations.md: "Each job's last run, duration and
/// result are visible in `GET /api/v1/admin/engine`").
#[derive(Debug, Clone, Serialize)]
pub struct TaskRun {
    /// When the last run started (RFC 3339 UTC).
    pub last_run_at: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// Whether it succeeded.
    pub ok: bool,
    /// A one-line summary of its result or error.
    pub result: String,
    /// Runs since the process started.
    pub runs: u64,
    /// Failed runs since the process started.
    pub failures: u64,
}

#[derive(Default)]
struct Registry {
    jobs: HashMap<String, JobEntry>,
    finished: VecDeque<String>,
    tasks: BTreeMap<String, TaskRun>,
}

/// The job registry: cheap to clone.
#[derive(Clone)]
pub struct Jobs {
    registry: Arc<Mutex<Registry>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").finish_non_exhaustive()
    }
}

/// Handed to a running job to report progress.
#[derive(Clone)]
pub struct JobHandle {
    id: String,
    registry: Arc<Mutex<Registry>>,
}

impl std::fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle").field("id", &self.id).finish()
    }
}

impl JobHandle {
    /// The job's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Sets the total number of work units.
    pub fn set_total(&self, total: u64) {
        if let Some(job) = self.registry.lock().jobs.get_mut(&self.id) {
            job.progress.total = Some(total);
        }
    }

    /// Sets the number of units done.
    pub fn set_done(&self, done: u64) {
        if let Some(job) = self.registry.lock().jobs.get_mut(&self.id) {
            job.progress.done = done;
        }
    }

    /// Adds `n` units done.
    pub fn advance(&self, n: u64) {
        if let Some(job) = self.registry.lock().jobs.get_mut(&self.id) {
            job.progress.done += n;
        }
    }
}

impl Jobs {
    /// An empty registry reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Jobs {
            registry: Arc::default(),
            clock,
        }
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().as_millisecond()
    }

    /// Starts `work` in a task of its own for `owner` (a player id) and returns its view
    /// (state `running`). The work gets a [`JobHandle`] to report progress; its `Ok`
    /// becomes `result`, its `Err` the job's `error`. A panic fails the job with
    /// `INTERNAL`.
    pub fn spawn<F, Fut>(&self, kind: &str, owner: &str, work: F) -> JobView
    where
        F: FnOnce(JobHandle) -> Fut + Send + 'static,
        Fut: Future<Output = Result<JobOutput, ApiError>> + Send + 'static,
    {
        let id = format!("job_{}", uuid::Uuid::new_v4().simple());
        let now = self.now_ms();
        let entry = JobEntry {
            id: id.clone(),
            kind: kind.to_owned(),
            owner: owner.to_owned(),
            state: JobState::Running,
            progress: JobProgress::default(),
            output: None,
            error: None,
            created_ms: now,
            started_ms: Some(now),
            finished_ms: None,
            finished_at: None,
        };
        let view = entry.view(serde_json::Value::Null);
        self.registry.lock().jobs.insert(id.clone(), entry);
        let handle = JobHandle {
            id: id.clone(),
            registry: self.registry.clone(),
        };
        let jobs = self.clone();
        tokio::spawn(async move {
            let outcome = tokio::spawn(work(handle)).await;
            let outcome = match outcome {
                Ok(r) => r,
                Err(e) => Err(ApiError::internal(format!("job panicked: {e}"))),
            };
            jobs.finish(&id, outcome);
        });
        view
    }

    fn finish(&self, id: &str, outcome: Result<JobOutput, ApiError>) {
        let now = self.now_ms();
        let mut reg = self.registry.lock();
        if let Some(job) = reg.jobs.get_mut(id) {
            job.finished_ms = Some(now);
            job.finished_at = Some(Instant::now());
            match outcome {
                Ok(output) => {
                    job.state = JobState::Done;
                    if let Some(total) = job.progress.total {
                        job.progress.done = total;
                    }
                    job.output = Some(output);
                }
                Err(e) => {
                    job.state = JobState::Failed;
                    job.error = Some(JobError {
                        code: e.code,
                        detail: e.detail.clone(),
                    });
                }
            }
            reg.finished.push_back(id.to_owned());
        }
        Self::prune(&mut reg);
    }

    fn prune(reg: &mut Registry) {
        while let Some(oldest) = reg.finished.front() {
            let expired = reg
                .jobs
                .get(oldest)
                .and_then(|j| j.finished_at)
                .is_none_or(|at| at.elapsed() > KEEP_FINISHED);
            if reg.finished.len() > MAX_FINISHED || expired {
                if let Some(id) = reg.finished.pop_front() {
                    reg.jobs.remove(&id);
                }
            } else {
                break;
            }
        }
    }

    /// The job `id` as `reader` sees it: the one-time part of the result is shown to
    /// its owner on the first read after it finished, then dropped.
    ///
    /// # Errors
    /// 404 `NOT_FOUND` for an unknown (or expired, or pre-restart) job.
    pub fn read(&self, id: &str, reader: &str) -> Result<JobView, ApiError> {
        let mut reg = self.registry.lock();
        let job = reg
            .jobs
            .get_mut(id)
            .ok_or_else(|| ApiError::new(Code::NotFound, format!("No job {id}")))?;
        let result = match job.output.as_mut() {
            None => serde_json::Value::Null,
            Some(output) if job.owner == reader => match output.reveal_once.take() {
                Some(once) => once,
                None => output.result.clone(),
            },
            Some(output) => output.result.clone(),
        };
        Ok(job.view(result))
    }

    /// The player who started job `id`, while the job is known.
    pub fn owner(&self, id: &str) -> Option<String> {
        self.registry.lock().jobs.get(id).map(|j| j.owner.clone())
    }

    /// Waits until job `id` finishes or `timeout` passes; for tests and for commands
    /// that want a synchronous answer. Returns the view as an anonymous reader sees it
    /// (no one-time part).
    ///
    /// # Errors
    /// 404 for an unknown job.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<JobView, ApiError> {
        let deadline = Instant::now() + timeout;
        loop {
            let view = self.read(id, "")?;
            if matches!(view.state, JobState::Done | JobState::Failed) || Instant::now() >= deadline
            {
                return Ok(view);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Jobs not yet finished, for `GET /api/v1/admin/engine`.
    pub fn active(&self) -> Vec<JobView> {
        let reg = self.registry.lock();
        let mut views: Vec<JobView> = reg
            .jobs
            .values()
            .filter(|j| matches!(j.state, JobState::Queued | JobState::Running))
            .map(|j| j.view(serde_json::Value::Null))
            .collect();
        views.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        views
    }

    /// Records a run of the periodic task `name` that started at `started_ms` (Unix
    /// milliseconds) and took `took`.
    pub fn record_run(
        &self,
        name: &str,
        started_ms: i64,
        took: Duration,
        result: Result<String, String>,
    ) {
        let mut reg = self.registry.lock();
        let run = reg.tasks.entry(name.to_owned()).or_insert(TaskRun {
            last_run_at: String::new(),
            duration_ms: 0,
            ok: true,
            result: String::new(),
            runs: 0,
            failures: 0,
        });
        run.last_run_at = rfc3339(started_ms);
        run.duration_ms = took.as_millis() as u64;
        run.runs += 1;
        match result {
            Ok(summary) => {
                run.ok = true;
                run.result = summary;
            }
            Err(e) => {
                run.ok = false;
                run.failures += 1;
                run.result = e;
            }
        }
    }

    /// Runs `task` as periodic task `name`, timing it and recording the outcome.
    pub fn timed<T>(
        &self,
        name: &str,
        task: impl FnOnce() -> Result<T, String>,
        summary: impl FnOnce(&T) -> String,
    ) -> Result<T, String> {
        let started_ms = self.now_ms();
        let started = Instant::now();
        let outcome = task();
        let recorded = match &outcome {
            Ok(value) => Ok(summary(value)),
            Err(e) => Err(e.clone()),
        };
        self.record_run(name, started_ms, started.elapsed(), recorded);
        outcome
    }

    /// Every periodic task's last run, by name.
    pub fn task_runs(&self) -> BTreeMap<String, TaskRun> {
        self.registry.lock().tasks.clone()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    fn jobs() -> Jobs {
        Jobs::new(Arc::new(SystemClock))
    }

    #[tokio::test]
    async fn a_job_runs_reports_progress_and_finishes() {
        let jobs = jobs();
        let view = jobs.spawn("test", "p1", |h| async move {
            h.set_total(3);
            h.advance(2);
            Ok(JobOutput::of(serde_json::json!({"rows": 3})))
        });
        assert_eq!(view.state, JobState::Running);
        assert_eq!(view.id, view.job_id);
        let done = jobs.wait(&view.id, Duration::from_secs(5)).await.unwrap();
        assert_eq!(done.state, JobState::Done);
        assert_eq!(done.progress.done, 3);
        assert_eq!(done.progress.total, Some(3));
        assert_eq!(done.result["rows"], 3);
        assert!(done.finished_at.is_some());
    }

    #[tokio::test]
    async fn a_failing_or_panicking_job_is_failed_with_its_code() {
        let jobs = jobs();
        let failing = jobs.spawn("test", "p1", |_| async move {
            Err(ApiError::new(Code::Conflict, "busy"))
        });
        let view = jobs
            .wait(&failing.id, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(view.state, JobState::Failed);
        let error = view.error.unwrap();
        assert_eq!(error.code, Code::Conflict);
        assert_eq!(error.detail, "busy");

        let panicking = jobs.spawn("test", "p1", |_| async move {
            if true {
                panic!("boom");
            }
            Ok(JobOutput::default())
        });
        let view = jobs
            .wait(&panicking.id, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(view.state, JobState::Failed);
        assert_eq!(view.error.unwrap().code, Code::Internal);
    }

    #[tokio::test]
    async fn the_one_time_result_is_shown_once_and_only_to_the_owner() {
        let jobs = jobs();
        let view = jobs.spawn("test", "owner", |_| async move {
            Ok(JobOutput {
                result: serde_json::json!({"password": "[redacted]"}),
                reveal_once: Some(serde_json::json!({"password": "s3cret"})),
            })
        });
        jobs.wait(&view.id, Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            jobs.read(&view.id, "other").unwrap().result["password"],
            "[redacted]"
        );
        assert_eq!(
            jobs.read(&view.id, "owner").unwrap().result["password"],
            "s3cret"
        );
        assert_eq!(
            jobs.read(&view.id, "owner").unwrap().result["password"],
            "[redacted]"
        );
    }

    #[test]
    fn unknown_jobs_are_not_found() {
        let err = jobs().read("job_nope", "p1").unwrap_err();
        assert_eq!(err.code, Code::NotFound);
    }

    #[test]
    fn task_runs_count_runs_and_failures() {
        let jobs = jobs();
        let _ = jobs.timed("checkpoint", || Ok::<_, String>(4), |n| format!("{n} rows"));
        let _ = jobs.timed(
            "checkpoint",
            || Err::<u8, _>("disk".to_owned()),
            |_| String::new(),
        );
        let runs = jobs.task_runs();
        let run = &runs["checkpoint"];
        assert_eq!(run.runs, 2);
        assert_eq!(run.failures, 1);
        assert!(!run.ok);
        assert_eq!(run.result, "disk");
    }
}
