//! Degraded mode through HTTP with faults injected into the journal's storage (srs.md
//! "Degraded mode", persistence.md): a failing fsync or a full disk refuses writes with
//! 503 `STORAGE_UNAVAILABLE` + `Retry-After`, reads go on from memory flagged
//! `X-Memora-Degraded: 1` (and `is_degraded: true` in the due listing), `/readyz` says
//! degraded with 200, the engine leaves the mode by itself once a probe write succeeds,
//! and no acknowledged write is lost across a restart while no refused one appears.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use memora::persist::journal::FaultyStorage;
use reqwest::Method;
use serde_json::{Value, json};

use crate::util::api::Session;
use crate::util::app::TestApp;

/// A raw request: status, the degraded header, `Retry-After`, and the JSON body.
async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    s: Option<&Session>,
    body: Option<Value>,
) -> (u16, bool, Option<String>, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", app.api.base));
    if let Some(s) = s {
        req = req
            .bearer_auth(&s.token)
            .header("X-Device-ID", &s.device_id);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let degraded = resp
        .headers()
        .get("x-memora-degraded")
        .is_some_and(|v| v == "1");
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let bytes = resp.bytes().await.expect("body");
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, degraded, retry, value)
}

async fn complete(app: &TestApp, s: &Session, lesson: &str) -> (u16, bool, Option<String>, Value) {
    raw(
        app,
        Method::POST,
        &format!("/api/v1/lessons/{lesson}/complete"),
        Some(s),
        Some(json!({"hearts": 3, "answers": [{"question_id": lesson.replace("-l-", "-q-"), "rating": 3}]})),
    )
    .await
}

/// The ids of passed lessons in a progress answer's tree.
fn passed(progress: &Value) -> Vec<String> {
    fn walk(node: &Value, out: &mut Vec<String>) {
        if node["type"] == "lesson" && node["status"] == "passed" {
            out.push(node["id"].as_str().unwrap_or_default().to_owned());
        }
        for child in node["children"].as_array().into_iter().flatten() {
            walk(child, out);
        }
    }
    let mut out = Vec::new();
    walk(&progress["root"], &mut out);
    out.sort();
    out
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Runs the whole degraded episode with `inject` making the journal fail and `heal`
/// repairing it.
async fn episode(inject: impl Fn(&FaultyStorage), heal: impl Fn(&FaultyStorage)) {
    let storage = FaultyStorage::default();
    let mut app = TestApp::start_with_storage(
        &[("MEMORA_STORAGE__PROBE_INTERVAL_MS", "50")],
        Some(Arc::new(storage.clone())),
    )
    .await;
    let student = app.school("degraded@test.memora", "UTC").await;
    let admin = app.admin().await;
    let (status, _, _, _) = raw(
        &app,
        Method::POST,
        "/api/v1/admin/seasons",
        Some(&admin),
        Some(
            json!({"id": "2026", "title": "Season 2026", "start_date": "2026-09-01",
                    "end_date": "2027-06-30", "is_active": true}),
        ),
    )
    .await;
    assert_eq!(status, 201);
    let (status, degraded, _, _) = complete(&app, &student, "bas-l-001").await;
    assert_eq!(status, 200);
    assert!(!degraded, "healthy answers carry no degraded header");

    inject(&storage);
    // The first write after the fault fails in the journal; from then on the gate
    // refuses writes before they reach it.
    for lesson in ["bas-l-002", "bas-l-002", "bas-l-002"] {
        let (status, _, retry, body) = complete(&app, &student, lesson).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["code"], "STORAGE_UNAVAILABLE");
        assert!(retry.is_some(), "503 carries Retry-After");
    }
    let (status, degraded, _, ready) = raw(&app, Method::GET, "/readyz", None, None).await;
    assert_eq!(status, 200, "degraded is not unready: {ready}");
    assert_eq!(ready["status"], "degraded");
    assert!(degraded);
    assert_eq!(ready["degraded"]["reasons"][0], "journal_failing");

    // Reads go on from memory, flagged.
    let (status, degraded, _, progress) = raw(
        &app,
        Method::GET,
        "/api/v1/subjects/bas/progress",
        Some(&student),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(degraded, "reads carry X-Memora-Degraded: 1");
    assert_eq!(
        passed(&progress),
        vec!["bas-l-001".to_owned()],
        "the refused writes are invisible"
    );
    let (status, degraded, _, due) = raw(
        &app,
        Method::GET,
        "/api/v1/reviews/due",
        Some(&student),
        None,
    )
    .await;
    assert_eq!(status, 200, "{due}");
    assert!(degraded);
    assert_eq!(due["is_degraded"], true);
    // Admin writes are refused too.
    let (status, _, _, body) = raw(
        &app,
        Method::POST,
        "/api/v1/admin/players",
        Some(&admin),
        Some(json!({"email": "late@test.memora", "password": "password-1234", "display_name": "Late", "plan_id": "school"})),
    )
    .await;
    assert_eq!(status, 503, "{body}");

    heal(&storage);
    wait_for("the probe to leave degraded mode", async || {
        raw(&app, Method::GET, "/readyz", None, None).await.3["status"] == "ready"
    })
    .await;
    let (status, degraded, _, _) = complete(&app, &student, "bas-l-002").await;
    assert_eq!(status, 200);
    assert!(!degraded);

    // Nothing acknowledged was lost and nothing refused appeared.
    app.restart().await;
    let student = app
        .api
        .login(
            "degraded@test.memora",
            crate::util::app::PASSWORD,
            &student.device_id,
        )
        .await
        .expect("login after restart");
    let progress = app.api.progress(&student, "bas").await.expect("progress");
    assert_eq!(
        passed(&progress),
        vec!["bas-l-001".to_owned(), "bas-l-002".to_owned()]
    );
}

#[tokio::test]
async fn a_failing_fsync_degrades_then_recovers_by_probe() {
    episode(
        |s| s.faults.fail_syncs.store(u32::MAX, Ordering::SeqCst),
        |s| s.faults.fail_syncs.store(0, Ordering::SeqCst),
    )
    .await;
}

#[tokio::test]
async fn a_full_disk_degrades_then_recovers_by_probe() {
    episode(
        |s| s.faults.fail_appends.store(u32::MAX, Ordering::SeqCst),
        |s| s.faults.fail_appends.store(0, Ordering::SeqCst),
    )
    .await;
}

#[tokio::test]
async fn free_space_under_the_minimum_refuses_writes_but_serves_reads() {
    let mut app = TestApp::start().await;
    let student = app.school("lowdisk@test.memora", "UTC").await;
    let (status, _, _, _) = complete(&app, &student, "bas-l-001").await;
    assert_eq!(status, 200);
    // Restart with a threshold no disk meets.
    app.set_env("MEMORA_STORAGE__MIN_FREE_BYTES", "1000000000000000000");
    app.restart().await;
    let (status, _, _, ready) = raw(&app, Method::GET, "/readyz", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(ready["status"], "degraded");
    assert_eq!(ready["components"]["disk"], "low");
    // Logging in is a write: refused.
    let err = app
        .api
        .login(
            "lowdisk@test.memora",
            crate::util::app::PASSWORD,
            &student.device_id,
        )
        .await
        .expect_err("login is a write");
    assert_eq!(err.code(), Some("STORAGE_UNAVAILABLE"));
    // The old session still reads (a cold load of the student, admitted once).
    let (status, degraded, _, progress) = raw(
        &app,
        Method::GET,
        "/api/v1/subjects/bas/progress",
        Some(&student),
        None,
    )
    .await;
    assert_eq!(status, 200, "{progress}");
    assert!(degraded);
    assert_eq!(passed(&progress), vec!["bas-l-001".to_owned()]);
    let (status, _, retry, body) = complete(&app, &student, "bas-l-002").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("STORAGE_UNAVAILABLE"))
    );
    assert_eq!(retry.as_deref(), Some("5"));
}
