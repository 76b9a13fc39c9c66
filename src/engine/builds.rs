//! The engine's side of compiled-content builds: which plans a content event affects
//! (a subject change → every plan listing it; a plan change → that plan), and the
//! background task that runs queued builds after the debounce, off the async threads,
//! so that a build never blocks request handling. With `[cdn.s3]`, builds upload what
//! they changed (`cdn::upload`), and the task's first job is a full reconciliation of
//! the bucket.

use std::sync::Arc;
use std::time::Duration;

use crate::cdn::{BuildRecord, Builds, RealDisk, UploadOptions, Uploader, Writer};
use crate::config::Config;
use crate::objstore::Bucket;

use super::{Engine, Event};

/// The build service of a configuration: a writer of `content.output_dir` on the real
/// disk, and an uploader when `[cdn.s3]` names a bucket.
pub(crate) fn service(config: &Config) -> Arc<Builds> {
    let writer = Writer::new(
        config.content.output_dir.clone(),
        Arc::new(RealDisk),
        config.content.min_free_disk_percent,
    );
    let builds = Builds::new(
        writer,
        Duration::from_millis(config.content.build_debounce_ms),
    );
    Arc::new(match uploader(config) {
        Some(Ok(up)) => builds.with_uploader(up),
        Some(Err(e)) => {
            // Unreachable in practice: config validation opened the same bucket.
            tracing::error!(error = %e, "cdn.s3: cannot set up uploads; uploads are off");
            builds
        }
        None => builds,
    })
}

/// The uploader of `[cdn.s3]` (`None` when no bucket is configured).
///
/// # Errors
/// When the bucket client or the upload runtime cannot be created.
pub fn uploader(config: &Config) -> Option<Result<Uploader, String>> {
    if !config.cdn.s3.enabled() {
        return None;
    }
    Some(
        Bucket::open(&config.cdn.s3)
            .map_err(|e| e.to_string())
            .and_then(|bucket| {
                Uploader::new(
                    bucket,
                    config.content.output_dir.clone(),
                    UploadOptions {
                        concurrency: config.cdn.upload_concurrency,
                        cache_control: config.cdn.cache_control.clone(),
                        manifest_cache_control: config.cdn.manifest_cache_control.clone(),
                    },
                )
                .map_err(|e| e.to_string())
            }),
    )
}

impl Engine {
    /// The build queue and writer.
    pub fn builds(&self) -> &Arc<Builds> {
        &self.inner().builds
    }

    /// Queues the plans a content event affects (called once the event is applied).
    pub(crate) fn enqueue_builds(&self, event: &Event) {
        let plans: Vec<String> = match event {
            Event::SubjectPut(record) => {
                let catalog = self.catalog();
                catalog
                    .plans()
                    .filter(|p| {
                        catalog
                            .plan_subject_ids(&p.id)
                            .is_some_and(|s| s.iter().any(|s| s.eq_ignore_ascii_case(&record.id)))
                    })
                    .map(|p| p.id.clone())
                    .collect()
            }
            Event::PlanPut(record) => vec![record.id.clone()],
            Event::PlanDeleted { id } => vec![id.clone()],
            _ => return,
        };
        if !plans.is_empty() {
            self.builds().enqueue(plans, "content", self.now());
        }
    }

    /// Builds `plan_id` now on a blocking thread and returns its record (admin API).
    ///
    /// # Errors
    /// Only if the blocking task panicked.
    pub async fn build_now(&self, plan_id: &str, trigger: &str) -> Result<BuildRecord, String> {
        let engine = self.clone();
        let plan_id = plan_id.to_owned();
        let trigger = trigger.to_owned();
        tokio::task::spawn_blocking(move || {
            let catalog = engine.catalog();
            let now = || engine.now();
            engine.builds().run_now(&catalog, &plan_id, &trigger, &now)
        })
        .await
        .map_err(|e| e.to_string())
    }

    /// Runs queued builds when they are due until `shutdown` changes: woken by new
    /// work, and at least every second for retries whose backoff has elapsed.
    pub async fn run_builds(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        // Reconcile the bucket with the output root (what changed while the server was
        // down, or was built but not uploaded before a crash).
        self.builds().enqueue_upload("startup", self.now());
        loop {
            let wait = match self.builds().next_due() {
                Some(due) => {
                    let ms = due.as_millisecond() - self.now().as_millisecond();
                    Duration::from_millis(ms.clamp(0, 1000) as u64)
                }
                None => Duration::from_secs(1),
            };
            tokio::select! {
                _ = self.builds().notified() => continue,
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            if self.builds().next_due().is_none_or(|d| d > self.now()) {
                continue;
            }
            let engine = self.clone();
            let _ = tokio::task::spawn_blocking(move || {
                let catalog = engine.catalog();
                let now = || engine.now();
                engine.builds().run_due(&catalog, &now)
            })
            .await;
        }
    }
}
