//! `POST /api/v1/admin/reconcile` through HTTP without a mirror (srs.md
//! "Reconciliation"; the MariaDB part is in `mirror.rs`): a job whose result compares the
//! students in memory with redb and finds nothing after a normal workload; bad sample
//! sizes are refused; students cannot start it.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::util::api::CallError;
use crate::util::app::TestApp;

#[tokio::test]
async fn reconcile_runs_as_a_job_and_finds_nothing_after_a_normal_workload() {
    let app = TestApp::start().await;
    let student = app.school("rec@test.memora", "UTC").await;
    app.api
        .complete(&student, "bas-l-001", 3)
        .await
        .expect("complete");
    let admin = app.admin().await;
    let (status, started) = app
        .api
        .call(
            Method::POST,
            "/api/v1/admin/reconcile",
            Some(&admin),
            Some(&json!({"sample_size": 100})),
        )
        .await
        .expect("start");
    assert_eq!(status, 202);
    let id = started["job_id"].as_str().expect("job id").to_owned();
    assert_eq!(started["kind"], "reconcile");
    let mut job = Value::Null;
    for _ in 0..200 {
        let (_, j) = app
            .api
            .call(
                Method::GET,
                &format!("/api/v1/admin/jobs/{id}"),
                Some(&admin),
                None,
            )
            .await
            .expect("job");
        job = j;
        if job["state"] == "done" || job["state"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(job["state"], "done", "{job}");
    let report = &job["result"];
    assert_eq!(report["mirror"], "not_configured");
    assert_eq!(
        report["sample_size"], 1,
        "one progress row exists: {report}"
    );
    assert_eq!(report["compared_memory"], 1);
    assert_eq!(report["discrepancies_found"], 0);
    assert_eq!(report["alert_triggered"], false);

    let err = app
        .api
        .call(
            Method::POST,
            "/api/v1/admin/reconcile",
            Some(&admin),
            Some(&json!({"sample_size": 0})),
        )
        .await
        .expect_err("bad size");
    assert!(
        matches!(err, CallError::Status { status: 422, .. }),
        "{err}"
    );
    let err = app
        .api
        .call(
            Method::POST,
            "/api/v1/admin/reconcile",
            Some(&student),
            None,
        )
        .await
        .expect_err("student");
    assert_eq!(err.code(), Some("FORBIDDEN"));
}
