//! SRS archive, retention and review history import (srs.md "Archive and retention",
//! "Review history import"): archiving with and without `confirm`, job progress and
//! status counts, cards leaving the due queues for the archive, the daily auto-archive
//! and weekly retention flagging driven by the fake clock, the purge, imports equal to
//! replaying the history through the scheduler, bad files refused with cell pointers,
//! and the archive in degraded mode. The property test across checkpoints, restarts and archives is in
//! `srs_archive_props.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use memora::engine::accounts::rfc3339;
use memora::srs::Card;
use memora::srs::import::replay;
use memora::srs::settings::SrsSettings;
use reqwest::Method;
use serde_json::{Value, json};

use crate::util::api::{Api, Session};
use crate::util::app::TestApp;

/// 2026-11-21T09:00:00Z, the test apps' start time, in unix ms.
pub(crate) const START_MS: i64 = 1_795_251_600_000;
pub(crate) const DAY_MS: i64 = 86_400_000;

/// Any request: status and JSON body (problem bodies included).
async fn send(
    api: &Api,
    method: Method,
    path: &str,
    s: &Session,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", api.base))
        .bearer_auth(&s.token)
        .header("X-Device-ID", &s.device_id);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A CSV upload.
async fn import_csv(
    api: &Api,
    admin: &Session,
    player: &str,
    query: &str,
    csv: &str,
    content_type: &str,
) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/admin/players/{player}/reviews/import{query}",
            api.base
        ))
        .bearer_auth(&admin.token)
        .header("X-Device-ID", &admin.device_id)
        .header("Content-Type", content_type)
        .body(csv.to_owned())
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Waits for a job to finish and returns its final view.
async fn finished(api: &Api, admin: &Session, accepted: &Value) -> Value {
    let id = accepted["job_id"].as_str().expect("job id").to_owned();
    for _ in 0..2000 {
        let (status, v) = send(
            api,
            Method::GET,
            &format!("/api/v1/admin/jobs/{id}"),
            admin,
            None,
        )
        .await;
        assert_eq!(status, 200, "{v}");
        if v["state"] == "done" || v["state"] == "failed" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} did not finish");
}

async fn create_season(app: &TestApp, admin: &Session, body: Value) {
    let (status, v) = send(
        &app.api,
        Method::POST,
        "/api/v1/admin/seasons",
        admin,
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{v}");
}

pub(crate) fn season_body(id: &str, end: &str, active: bool, auto_archive: bool) -> Value {
    json!({"id": id, "title": format!("Season {id}"), "start_date": "2025-09-01",
           "end_date": end, "is_active": active, "auto_archive": auto_archive})
}

async fn status_of(app: &TestApp, admin: &Session, season: &str) -> Value {
    let (status, v) = send(
        &app.api,
        Method::GET,
        &format!("/api/v1/admin/seasons/{season}/archive-status"),
        admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v
}

fn counts(v: &Value) -> (i64, i64, i64) {
    let n = |k: &str| v[k].as_i64().unwrap_or(-1);
    (
        n("live_cards"),
        n("archived_cards"),
        n("eligible_for_deletion"),
    )
}

/// A history of `n` questions `imp-q-{i}`, two or three reviews each, in shuffled
/// row order, all before the test apps' start time.
fn history(n: usize, salt: u64) -> String {
    let mut rows = Vec::new();
    for i in 0..n {
        let base = START_MS - 40 * DAY_MS + (i as i64) * 3_600_000;
        let r = |k: u64| 1 + ((i as u64 * 7 + salt + k * 3) % 4);
        rows.push(format!("imp-q-{i},{},{},", r(0), rfc3339(base)));
        rows.push(format!(
            "imp-q-{i},{},{},1500",
            r(1),
            base + 2 * DAY_MS + 1234
        ));
        if i % 2 == 0 {
            rows.push(format!(
                "imp-q-{i},{},{},",
                r(2),
                rfc3339(base + 9 * DAY_MS)
            ));
        }
    }
    // Reverse: the import must order by time, not by file position.
    rows.reverse();
    format!(
        "question_id,rating,reviewed_at,duration_ms\n{}\n",
        rows.join("\n")
    )
}

async fn cards_of(app: &TestApp, admin: &Session, player: &str, season: &str) -> Vec<Value> {
    let (status, v) = send(
        &app.api,
        Method::GET,
        &format!("/api/v1/admin/players/{player}/cards?season_id={season}&limit=500"),
        admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["items"].as_array().expect("items").clone()
}

#[tokio::test]
async fn archiving_needs_confirm_and_moves_cards_out_of_the_queues() {
    let mut app = TestApp::start().await;
    let admin = app.admin().await;
    let s = app.school("archive@test.memora", "UTC").await;
    create_season(&app, &admin, season_body("2025", "2026-06-30", true, false)).await;
    for (lesson, q) in [("bas-l-001", "bas-q-001"), ("bas-l-002", "bas-q-002")] {
        let (status, v) = send(
            &app.api,
            Method::POST,
            &format!("/api/v1/lessons/{lesson}/complete"),
            &s,
            Some(json!({"hearts": 3, "answers": [{"question_id": q, "rating": 1}]})),
        )
        .await;
        assert_eq!(status, 200, "{v}");
    }
    let (status, job) = import_csv(
        &app.api,
        &admin,
        &s.player_id,
        "",
        &history(30, 1),
        "text/csv",
    )
    .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(finished(&app.api, &admin, &job).await["state"], "done");
    let path = "/api/v1/admin/seasons/2025/archive";
    let (status, v) = send(
        &app.api,
        Method::POST,
        path,
        &admin,
        Some(json!({"confirm": true})),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("CONFLICT")),
        "the active season"
    );

    send(
        &app.api,
        Method::PATCH,
        "/api/v1/admin/seasons/2025",
        &admin,
        Some(json!({"is_active": false})),
    )
    .await;
    create_season(&app, &admin, season_body("2026", "2027-06-30", true, false)).await;
    let (status, v) = send(
        &app.api,
        Method::POST,
        "/api/v1/lessons/bas-l-003/complete",
        &s,
        Some(json!({"hearts": 3, "answers": [{"question_id": "bas-q-003", "rating": 1}]})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(counts(&status_of(&app, &admin, "2025").await), (32, 0, 0));

    for body in [None, Some(json!({})), Some(json!({"confirm": false}))] {
        let (status, v) = send(&app.api, Method::POST, path, &admin, body).await;
        assert_eq!(status, 422, "{v}");
        assert_eq!(v["errors"][0]["pointer"], "/confirm");
    }
    let (status, _) = send(
        &app.api,
        Method::POST,
        "/api/v1/admin/seasons/nope/archive",
        &admin,
        Some(json!({"confirm": true})),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        counts(&status_of(&app, &admin, "2025").await),
        (32, 0, 0),
        "nothing moved"
    );

    let (status, job) = send(
        &app.api,
        Method::POST,
        path,
        &admin,
        Some(json!({"confirm": true})),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["kind"], "archive");
    let done = finished(&app.api, &admin, &job).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["result"]["season"], "2025");
    assert_eq!(done["result"]["archived_cards"], 32);
    assert!(done["result"]["duration_ms"].is_u64());
    assert_eq!(done["progress"], json!({"done": 32, "total": 32}));

    let status = status_of(&app, &admin, "2025").await;
    assert_eq!(counts(&status), (0, 32, 0), "{status}");
    assert_eq!(
        (
            &status["season"],
            &status["is_active"],
            &status["auto_archive"],
            &status["end_date"]
        ),
        (
            &json!("2025"),
            &json!(false),
            &json!(false),
            &json!("2026-06-30")
        )
    );
    assert!(
        cards_of(&app, &admin, &s.player_id, "2025")
            .await
            .is_empty()
    );
    // The active season is untouched and still reviewable.
    assert_eq!(cards_of(&app, &admin, &s.player_id, "2026").await.len(), 1);
    app.clock.advance(Duration::from_secs(3600));
    let (_, due) = send(&app.api, Method::GET, "/api/v1/reviews/due", &s, None).await;
    assert_eq!(due["total_due"], 1, "{due}");

    // Nothing comes back after a checkpoint and a restart.
    send(
        &app.api,
        Method::POST,
        "/api/v1/admin/checkpoint",
        &admin,
        None,
    )
    .await;
    app.restart().await;
    let admin = app.admin().await;
    assert_eq!(counts(&status_of(&app, &admin, "2025").await), (0, 32, 0));
    assert!(
        cards_of(&app, &admin, &s.player_id, "2025")
            .await
            .is_empty()
    );
    // Archiving again finds nothing to move.
    let (_, job) = send(
        &app.api,
        Method::POST,
        path,
        &admin,
        Some(json!({"confirm": true})),
    )
    .await;
    assert_eq!(
        finished(&app.api, &admin, &job).await["result"]["archived_cards"],
        0
    );
}

#[tokio::test]
async fn the_daily_job_archives_ended_auto_archive_seasons_by_the_clock() {
    let app = TestApp::start_with(&[
        ("MEMORA_SRS__MAINTENANCE_POLL_MS", "20"),
        ("MEMORA_PLAYERS__STAFF_SESSION_IDLE_TIMEOUT", "off"),
    ])
    .await;
    let admin = app.admin().await;
    let s = app.school("auto@test.memora", "UTC").await;
    create_season(&app, &admin, season_body("old", "2026-11-25", false, true)).await;
    create_season(
        &app,
        &admin,
        season_body("kept", "2026-11-01", false, false),
    )
    .await;
    create_season(&app, &admin, season_body("now", "2027-06-30", true, false)).await;
    for season in ["old", "kept", "now"] {
        let (status, job) = import_csv(
            &app.api,
            &admin,
            &s.player_id,
            &format!("?season_id={season}"),
            &history(5, 3),
            "text/csv; charset=utf-8",
        )
        .await;
        assert_eq!(status, 202, "{job}");
        assert_eq!(finished(&app.api, &admin, &job).await["state"], "done");
    }
    // On its last day the season is not archived yet.
    app.clock.set("2026-11-25T12:00:00Z".parse().expect("ts"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(counts(&status_of(&app, &admin, "old").await), (5, 0, 0));
    // The next day's run archives it.
    app.clock.set("2026-11-26T03:00:00Z".parse().expect("ts"));
    let mut last = Value::Null;
    for _ in 0..500 {
        last = status_of(&app, &admin, "old").await;
        if counts(&last) == (0, 5, 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counts(&last), (0, 5, 0), "{last}");
    // Not auto_archive, or active: left alone.
    assert_eq!(counts(&status_of(&app, &admin, "kept").await), (5, 0, 0));
    assert_eq!(counts(&status_of(&app, &admin, "now").await), (5, 0, 0));
}

/// Degraded mode (srs.md): a manual archive is refused with 503 while writes are, and
/// the daily run due meanwhile is postponed, not skipped — it archives the season once
/// the probe has brought storage back.
#[tokio::test]
async fn the_archive_waits_out_degraded_mode() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    let storage = memora::persist::journal::FaultyStorage::default();
    let app = TestApp::start_with_storage(
        &[
            ("MEMORA_SRS__MAINTENANCE_POLL_MS", "20"),
            ("MEMORA_STORAGE__PROBE_INTERVAL_MS", "50"),
            ("MEMORA_PLAYERS__STAFF_SESSION_IDLE_TIMEOUT", "off"),
        ],
        Some(Arc::new(storage.clone())),
    )
    .await;
    let admin = app.admin().await;
    let s = app.school("degraded-archive@test.memora", "UTC").await;
    create_season(&app, &admin, season_body("old", "2026-11-25", false, true)).await;
    let (status, job) = import_csv(
        &app.api,
        &admin,
        &s.player_id,
        "?season_id=old",
        &history(3, 1),
        "text/csv",
    )
    .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(finished(&app.api, &admin, &job).await["state"], "done");

    storage.faults.fail_syncs.store(u32::MAX, Ordering::SeqCst);
    // The first write after the fault fails in the journal and degrades the engine.
    let (status, v) = send(
        &app.api,
        Method::PATCH,
        "/api/v1/admin/seasons/old",
        &admin,
        Some(json!({"title": "Old"})),
    )
    .await;
    assert_eq!(status, 503, "{v}");
    let (status, v) = send(
        &app.api,
        Method::POST,
        "/api/v1/admin/seasons/old/archive",
        &admin,
        Some(json!({"confirm": true})),
    )
    .await;
    assert_eq!(
        (status, &v["code"]),
        (503, &json!("STORAGE_UNAVAILABLE")),
        "{v}"
    );
    // The season ends; the daily run is due but storage is not back.
    app.clock.set("2026-11-26T03:00:00Z".parse().expect("ts"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(counts(&status_of(&app, &admin, "old").await), (3, 0, 0));

    storage.faults.fail_syncs.store(0, Ordering::SeqCst);
    let mut last = Value::Null;
    for _ in 0..500 {
        last = status_of(&app, &admin, "old").await;
        if counts(&last) == (0, 3, 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        counts(&last),
        (0, 3, 0),
        "archived once storage is back: {last}"
    );
}

#[tokio::test]
async fn retention_flags_old_archives_weekly_and_purge_deletes_them() {
    let mut app = TestApp::start_with(&[
        ("MEMORA_SRS__MAINTENANCE_POLL_MS", "20"),
        ("MEMORA_SRS__RETENTION_DAYS", "30"),
        ("MEMORA_PLAYERS__STAFF_SESSION_IDLE_TIMEOUT", "off"),
    ])
    .await;
    let admin = app.admin().await;
    let s = app.school("retention@test.memora", "UTC").await;
    for id in ["y1", "y2"] {
        create_season(&app, &admin, season_body(id, "2026-06-30", false, false)).await;
        let (_, job) = import_csv(
            &app.api,
            &admin,
            &s.player_id,
            &format!("?season_id={id}"),
            &history(4, 5),
            "text/csv",
        )
        .await;
        assert_eq!(finished(&app.api, &admin, &job).await["state"], "done");
    }
    let archive = |season: &'static str| {
        let api = app.api.clone();
        let admin = admin.clone();
        async move {
            let (status, job) = send(
                &api,
                Method::POST,
                &format!("/api/v1/admin/seasons/{season}/archive"),
                &admin,
                Some(json!({"confirm": true})),
            )
            .await;
            assert_eq!(status, 202, "{job}");
            finished(&api, &admin, &job).await
        }
    };
    assert_eq!(archive("y1").await["result"]["archived_cards"], 4);
    let purge = "/api/v1/admin/archive/purge";
    let (status, v) = send(&app.api, Method::POST, purge, &admin, Some(json!({}))).await;
    assert_eq!(
        (status, &v["errors"][0]["pointer"]),
        (422, &json!("/confirm"))
    );
    let (status, v) = send(
        &app.api,
        Method::POST,
        purge,
        &admin,
        Some(json!({"confirm": true})),
    )
    .await;
    assert_eq!(
        (status, &v["purged_cards"]),
        (200, &json!(0)),
        "nothing eligible yet: {v}"
    );

    // 20 days later y2 is archived; 35 days after y1, the weekly run flags y1 only.
    app.clock.set("2026-12-11T09:00:00Z".parse().expect("ts"));
    assert_eq!(archive("y2").await["result"]["archived_cards"], 4);
    app.clock.set("2026-12-29T09:00:00Z".parse().expect("ts"));
    let mut last = Value::Null;
    for _ in 0..500 {
        last = status_of(&app, &admin, "y1").await;
        if counts(&last) == (0, 4, 4) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counts(&last), (0, 4, 4), "{last}");
    assert_eq!(counts(&status_of(&app, &admin, "y2").await), (0, 4, 0));

    let (status, v) = send(
        &app.api,
        Method::POST,
        purge,
        &admin,
        Some(json!({"confirm": true, "season_id": "nope"})),
    )
    .await;
    assert_eq!(status, 404, "{v}");
    let (status, v) = send(
        &app.api,
        Method::POST,
        purge,
        &admin,
        Some(json!({"confirm": true, "season_id": "y1"})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (&v["purged_cards"], &v["season_id"]),
        (&json!(4), &json!("y1"))
    );
    assert_eq!(counts(&status_of(&app, &admin, "y1").await), (0, 0, 0));
    assert_eq!(counts(&status_of(&app, &admin, "y2").await), (0, 4, 0));
    app.restart().await;
    let admin = app.admin().await;
    assert_eq!(counts(&status_of(&app, &admin, "y1").await), (0, 0, 0));
    assert_eq!(counts(&status_of(&app, &admin, "y2").await), (0, 4, 0));
}

/// The cards a direct replay of `csv` through the default scheduler gives.
fn expected_cards(csv: &str) -> BTreeMap<String, Card> {
    let reviews = memora::srs::import::parse_history(csv.as_bytes(), START_MS).expect("valid");
    let scheduler = SrsSettings::default().scheduler().expect("scheduler");
    replay(&scheduler, &reviews)
        .into_iter()
        .map(|(q, card, _)| (q, card))
        .collect()
}

fn assert_card(item: &Value, card: &Card) {
    let state = serde_json::to_value(card.state).expect("state");
    assert_eq!(item["state"], state, "{item}");
    assert_eq!(item["step"], card.step, "{item}");
    assert_eq!(item["reps"], card.reps, "{item}");
    assert_eq!(item["lapses"], card.lapses, "{item}");
    assert_eq!(item["due"], rfc3339(card.due_ms), "{item}");
    assert_eq!(
        item["last_review"],
        json!(card.last_review_ms.map(rfc3339)),
        "{item}"
    );
    let f = |k: &str| item[k].as_f64().expect("number") as f32;
    assert_eq!(f("stability"), card.stability, "{item}");
    assert_eq!(f("difficulty"), card.difficulty, "{item}");
}

#[tokio::test]
async fn an_import_equals_replaying_the_history_through_the_scheduler() {
    let app = TestApp::start().await;
    let admin = app.admin().await;
    let s = app.school("import@test.memora", "UTC").await;
    create_season(&app, &admin, season_body("2026", "2027-06-30", true, false)).await;
    // A card from a lesson, replaced by the import; another one left alone.
    for (lesson, q) in [("bas-l-001", "bas-q-001"), ("bas-l-002", "bas-q-002")] {
        send(
            &app.api,
            Method::POST,
            &format!("/api/v1/lessons/{lesson}/complete"),
            &s,
            Some(json!({"hearts": 3, "answers": [{"question_id": q, "rating": 4}]})),
        )
        .await;
    }
    let before = cards_of(&app, &admin, &s.player_id, "2026").await;
    let kept = before
        .iter()
        .find(|c| c["question_id"] == "bas-q-002")
        .expect("card")
        .clone();
    let mut csv = history(12, 9);
    csv.push_str(&format!(
        "BAS-Q-001,1,{},\nbas-q-001,3,{},\n",
        START_MS - 3 * DAY_MS,
        rfc3339(START_MS - 2 * DAY_MS)
    ));
    let (status, job) = import_csv(
        &app.api,
        &admin,
        &s.player_id,
        "?season_id=2026",
        &csv,
        "text/csv",
    )
    .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["kind"], "review_import");
    let done = finished(&app.api, &admin, &job).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(
        (
            &done["result"]["reviews"],
            &done["result"]["cards"],
            &done["result"]["season"]
        ),
        (&json!(32), &json!(13), &json!("2026"))
    );
    let expected = expected_cards(&csv);
    assert_eq!(expected.len(), 13);
    let cards = cards_of(&app, &admin, &s.player_id, "2026").await;
    assert_eq!(cards.len(), 14);
    for item in &cards {
        let q = item["question_id"].as_str().expect("id");
        match expected.get(q) {
            Some(card) => assert_card(item, card),
            None => assert_eq!(item, &kept, "not imported: untouched"),
        }
    }
    let imported = cards
        .iter()
        .find(|c| c["question_id"] == "bas-q-001")
        .expect("card");
    assert_eq!(imported["reps"], 2, "the lesson's card was replaced");
    assert_eq!(imported["lesson_id"], "bas-l-001");
    // Filters and pagination of the listing.
    let (_, page) = send(
        &app.api,
        Method::GET,
        &format!("/api/v1/admin/players/{}/cards?subject_id=bas", s.player_id),
        &admin,
        None,
    )
    .await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2), "{page}");
    let by_state = |state: &str| cards.iter().filter(|c| c["state"] == state).count();
    for state in ["learning", "review", "relearning"] {
        let (_, page) = send(
            &app.api,
            Method::GET,
            &format!(
                "/api/v1/admin/players/{}/cards?state={state}&limit=500",
                s.player_id
            ),
            &admin,
            None,
        )
        .await;
        assert_eq!(
            page["items"].as_array().map(Vec::len),
            Some(by_state(state)),
            "{state}"
        );
    }
}

#[tokio::test]
async fn a_bad_history_is_refused_with_cell_pointers_and_changes_nothing() {
    let app = TestApp::start().await;
    let admin = app.admin().await;
    let s = app.school("badimport@test.memora", "UTC").await;
    let good = history(2, 0);
    let (status, v) = import_csv(&app.api, &admin, &s.player_id, "", &good, "text/csv").await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("NO_ACTIVE_SEASON"))
    );
    create_season(&app, &admin, season_body("2026", "2027-06-30", true, false)).await;
    let (_, job) = import_csv(&app.api, &admin, &s.player_id, "", &good, "text/csv").await;
    assert_eq!(finished(&app.api, &admin, &job).await["state"], "done");
    let before = cards_of(&app, &admin, &s.player_id, "2026").await;
    assert_eq!(before.len(), 2);

    let bad = format!(
        "question_id,rating,reviewed_at,duration_ms\n\
         imp-q-0,3,{},\n\
         imp-q-1,0,{},\n\
         ,3,2030-01-01T00:00:00Z,x\n",
        rfc3339(START_MS - DAY_MS),
        START_MS - DAY_MS
    );
    let (status, v) = import_csv(&app.api, &admin, &s.player_id, "", &bad, "text/csv").await;
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("VALIDATION_FAILED")),
        "{v}"
    );
    let pointers: Vec<&str> = v["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["pointer"].as_str().expect("pointer"))
        .collect();
    assert_eq!(
        pointers,
        [
            "/rows/1/rating",
            "/rows/2/question_id",
            "/rows/2/reviewed_at",
            "/rows/2/duration_ms"
        ]
    );
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("line 3:")),
        "{v}"
    );
    let (status, v) = import_csv(
        &app.api,
        &admin,
        &s.player_id,
        "",
        "question_id,stars\n",
        "text/csv",
    )
    .await;
    assert_eq!(
        (status, &v["errors"][0]["pointer"]),
        (422, &json!("/header"))
    );
    let (status, _) = import_csv(
        &app.api,
        &admin,
        &s.player_id,
        "",
        &good,
        "application/json",
    )
    .await;
    assert_eq!(status, 415);
    let (status, _) = import_csv(&app.api, &admin, "nobody", "", &good, "text/csv").await;
    assert_eq!(status, 404);
    let (status, _) = import_csv(
        &app.api,
        &admin,
        &s.player_id,
        "?season_id=nope",
        &good,
        "text/csv",
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = import_csv(
        &app.api,
        &admin,
        &s.player_id,
        "?season=2026",
        &good,
        "text/csv",
    )
    .await;
    assert_eq!(status, 422, "unknown query parameter");
    // A student may not import.
    let (status, _) = import_csv(&app.api, &s, &s.player_id, "", &good, "text/csv").await;
    assert_eq!(status, 403);
    assert_eq!(
        cards_of(&app, &admin, &s.player_id, "2026").await,
        before,
        "nothing changed"
    );
}
