//! The build queue's retries on a fake clock (issue 4, content.md "Build rules"): a
//! failing build is retried 30 s, 1 min, 2 min, 5 min and 15 min after each failure —
//! not a second earlier — then marked dead; an admin's retry requeues it and it builds.
//! Over HTTP: the dead build shows in `GET /api/v1/admin/builds` and
//! `POST /api/v1/admin/builds/{id}/retry` requeues it (404 for an unknown id).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use memora::cdn::queue::BACKOFF_SECS;
use memora::cdn::{BuildState, Builds, Disk, RealDisk, Writer};
use memora::content::Catalog;
use reqwest::Method;
use serde_json::Value;

use crate::util::app::TestApp;
use crate::util::fixture;

/// The real disk, reporting a full disk while `full` is set (builds are then refused).
struct FillableDisk {
    full: AtomicBool,
}

impl Disk for FillableDisk {
    fn write_batch(&self, files: &[(PathBuf, &[u8])]) -> io::Result<()> {
        RealDisk.write_batch(files)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        RealDisk.remove(path)
    }
    fn free_percent(&self, _: &Path) -> io::Result<f64> {
        Ok(if self.full.load(Ordering::SeqCst) {
            1.0
        } else {
            50.0
        })
    }
}

fn catalog() -> Catalog {
    let mut c = Catalog::default();
    for name in ["basics.subject.json", "chain.subject.json"] {
        let r = c
            .prepare_subject(fixture(name).to_string().as_bytes())
            .unwrap_or_else(|p| panic!("{p:?}"));
        c = c.with_subject(r);
    }
    let r = c
        .prepare_plan(fixture("school.plan.json").to_string().as_bytes())
        .unwrap_or_else(|p| panic!("{p:?}"));
    c.with_plan(r)
}

#[test]
fn failed_builds_back_off_30s_1m_2m_5m_15m_then_die_and_an_admin_retry_builds() {
    assert_eq!(
        BACKOFF_SECS,
        [30, 60, 120, 300, 900],
        "content.md's schedule"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = Arc::new(FillableDisk {
        full: AtomicBool::new(true),
    });
    let writer = Writer::new(dir.path(), disk.clone(), 10.0);
    let builds = Builds::new(writer, Duration::from_secs(2));
    let c = catalog();
    let t0: Timestamp = "2026-11-21T09:00:00Z".parse().expect("ts");
    let clock = parking_lot::Mutex::new(t0);
    let now = || *clock.lock();
    let run = |at: Timestamp| {
        *clock.lock() = at;
        builds.run_due(&c, &now)
    };

    builds.enqueue(["school".to_owned()], "content", t0);
    // The debounce first.
    assert!(run(t0 + SignedDuration::from_millis(1999)).is_empty());
    let mut ran = run(t0 + SignedDuration::from_secs(2));
    for (expected_attempt, secs) in (1..).zip(BACKOFF_SECS) {
        assert_eq!(ran.len(), 1, "{ran:?}");
        let failed = &ran[0];
        assert_eq!(failed.attempt, expected_attempt);
        assert_eq!(failed.state, BuildState::Failed, "{failed:?}");
        assert!(
            failed
                .error
                .as_deref()
                .is_some_and(|e| e.contains("free disk space"))
        );
        let finished = failed.finished_at.expect("finished");
        let due = finished + SignedDuration::from_secs(secs);
        let queued = builds.view().queue;
        assert_eq!(queued.len(), 1);
        assert_eq!(
            queued[0].due_at, due,
            "retry {expected_attempt} after {secs} s"
        );
        assert_eq!(builds.summary().retrying, 1);
        assert!(
            run(due - SignedDuration::from_secs(1)).is_empty(),
            "too early"
        );
        ran = run(due);
    }
    // The sixth failure is final.
    assert_eq!(ran.len(), 1);
    assert_eq!((ran[0].attempt, ran[0].state), (6, BuildState::Dead));
    let view = builds.view();
    assert!(view.queue.is_empty(), "{view:?}");
    assert_eq!(view.dead.len(), 1);
    let dead_id = view.dead[0].id.clone();
    assert_eq!(view.history.len(), 6);
    let later = now() + SignedDuration::from_secs(3600);
    assert!(
        run(later).is_empty(),
        "a dead build is not retried on its own"
    );
    assert_eq!(builds.summary().dead, 1);

    // Space is back; an admin retries: due at once, and it builds.
    disk.full.store(false, Ordering::SeqCst);
    assert!(builds.retry("b-nope", later).is_none());
    let queued = builds.retry(&dead_id, later).expect("dead build");
    assert_eq!((queued.attempt, queued.trigger.as_str()), (1, "retry"));
    assert!(builds.view().dead.is_empty());
    let ran = run(later);
    assert_eq!(ran.len(), 1);
    assert_eq!(ran[0].state, BuildState::Done, "{:?}", ran[0]);
    assert!(dir.path().join("plans/school/manifest.json").is_file());
    assert_eq!(builds.summary().queued, 0);
}

fn by_attempt(view: &Value, attempt: u64) -> Option<&Value> {
    view["history"]
        .as_array()
        .expect("history")
        .iter()
        .find(|r| r["attempt"] == attempt)
}

#[tokio::test]
async fn dead_builds_show_in_the_admin_api_and_can_be_retried() {
    // No file system is this empty: every build is refused for low disk space.
    let app = TestApp::start_with(&[("MEMORA_CONTENT__MIN_FREE_DISK_PERCENT", "99.999")]).await;
    let admin = app.admin().await;
    app.school("student@test.memora", "UTC").await;
    let (status, body) = app
        .api
        .call(
            Method::POST,
            "/api/v1/admin/plans/school/build",
            Some(&admin),
            None,
        )
        .await
        .expect("build");
    assert_eq!(status, 202);
    assert_eq!(body["build"]["state"], "failed", "{body}");

    let builds = || async {
        app.api
            .call(Method::GET, "/api/v1/admin/builds", Some(&admin), None)
            .await
            .expect("builds")
            .1
    };
    // The background runner retries once the fake clock passes each backoff.
    for (attempt, secs) in (2..).zip(BACKOFF_SECS) {
        app.clock.advance(Duration::from_secs(secs as u64));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let view = builds().await;
            if by_attempt(&view, attempt).is_some() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no attempt {attempt}: {view}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let view = builds().await;
    let dead = view["dead"].as_array().expect("dead");
    assert_eq!(dead.len(), 1, "{view}");
    assert_eq!(dead[0]["state"], "dead");
    assert_eq!(dead[0]["attempt"], 6);
    assert_eq!(dead[0]["plan_id"], "school");
    assert!(
        dead[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("threshold"))
    );
    let id = dead[0]["id"].as_str().expect("id").to_owned();

    let err = app
        .api
        .call(
            Method::POST,
            "/api/v1/admin/builds/b-999999/retry",
            Some(&admin),
            None,
        )
        .await
        .expect_err("unknown build");
    assert!(
        matches!(err, crate::util::CallError::Status { status: 404, .. }),
        "{err:?}"
    );
    let (status, body) = app
        .api
        .call(
            Method::POST,
            &format!("/api/v1/admin/builds/{id}/retry"),
            Some(&admin),
            None,
        )
        .await
        .expect("retry");
    assert_eq!(status, 202);
    assert_eq!(body["build"]["state"], "queued");
    assert_eq!(body["build"]["trigger"], "retry");
    let view = builds().await;
    assert!(view["dead"].as_array().expect("dead").is_empty(), "{view}");
    // The retried build runs (and, the disk still "full", starts a new retry cycle).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let view = builds().await;
        let rerun = view["history"]
            .as_array()
            .expect("history")
            .iter()
            .any(|r| r["trigger"] == "retry" && r["attempt"] == 1 && r["state"] == "failed");
        if rerun {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "retry never ran: {view}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
