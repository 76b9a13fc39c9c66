//! SRS through HTTP (srs.md, api.md idempotency): seasons, cards created by lesson
//! answers, the due listing, review sessions with XP/combo/streak, the admin card
//! listing, idempotent retries, and cards surviving checkpoints and restarts. Uses the
//! in-process `TestApp` of `http.rs` and its fake clock to make cards due.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::util::api::{Api, CallError, Session};
use crate::util::app::TestApp;

const ACTIVE_2026: &str = "2026";

async fn call(
    api: &Api,
    method: Method,
    path: &str,
    s: &Session,
    body: Option<Value>,
) -> (u16, Value) {
    match api.call(method, path, Some(s), body.as_ref()).await {
        Ok((status, v)) => (status, v),
        Err(CallError::Status { status, code, .. }) => (status, json!({ "code": code })),
        Err(e) => panic!("{e}"),
    }
}

/// A POST with an `Idempotency-Key`: status and raw body bytes.
async fn post_keyed(api: &Api, path: &str, s: &Session, key: &str, body: &Value) -> (u16, Vec<u8>) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", api.base))
        .bearer_auth(&s.token)
        .header("X-Device-ID", &s.device_id)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.bytes().await.expect("body").to_vec())
}

async fn season(app: &TestApp, admin: &Session, id: &str, active: bool) -> (u16, Value) {
    call(
        &app.api,
        Method::POST,
        "/api/v1/admin/seasons",
        admin,
        Some(
            json!({"id": id, "title": format!("Season {id}"), "start_date": "2026-09-01",
                     "end_date": "2027-06-30", "is_active": active}),
        ),
    )
    .await
}

async fn complete(app: &TestApp, s: &Session, lesson: &str, answers: Value) -> (u16, Value) {
    call(
        &app.api,
        Method::POST,
        &format!("/api/v1/lessons/{lesson}/complete"),
        s,
        Some(json!({"hearts": 3, "answers": answers})),
    )
    .await
}

async fn due(app: &TestApp, s: &Session, query: &str) -> (u16, Value) {
    call(
        &app.api,
        Method::GET,
        &format!("/api/v1/reviews/due{query}"),
        s,
        None,
    )
    .await
}

async fn review(app: &TestApp, s: &Session, body: Value) -> (u16, Value) {
    call(&app.api, Method::POST, "/api/v1/reviews", s, Some(body)).await
}

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["question_id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn seasons_are_validated_single_active_and_durable() {
    let mut app = TestApp::start().await;
    let admin = app.admin().await;
    let (status, created) = season(&app, &admin, ACTIVE_2026, true).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["is_active"], true);
    assert_eq!(
        season(&app, &admin, ACTIVE_2026, false).await.0,
        409,
        "id taken"
    );
    let (status, v) = season(&app, &admin, "2027", true).await;
    assert_eq!((status, v["code"].as_str()), (409, Some("CONFLICT")));
    let bad = json!({"id": "bad id", "title": "x", "start_date": "2026-09-01",
                     "end_date": "2026-08-01", "is_active": true, "auto_archive": true});
    let (status, v) = call(
        &app.api,
        Method::POST,
        "/api/v1/admin/seasons",
        &admin,
        Some(bad),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("VALIDATION_FAILED"))
    );
    assert_eq!(season(&app, &admin, "2027", false).await.0, 201);
    let path = "/api/v1/admin/seasons/2027";
    let (status, _) = call(
        &app.api,
        Method::PATCH,
        path,
        &admin,
        Some(json!({"id": "2028"})),
    )
    .await;
    assert_eq!(status, 422, "ids are never renamed");
    let (status, _) = call(
        &app.api,
        Method::PATCH,
        path,
        &admin,
        Some(json!({"is_active": true})),
    )
    .await;
    assert_eq!(status, 409, "another season is active");
    let (status, _) = call(
        &app.api,
        Method::PATCH,
        "/api/v1/admin/seasons/2026",
        &admin,
        Some(json!({"is_active": false})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, v) = call(
        &app.api,
        Method::PATCH,
        path,
        &admin,
        Some(json!({"is_active": true, "title": "Next year"})),
    )
    .await;
    assert_eq!((status, v["title"].as_str()), (200, Some("Next year")));
    assert_eq!(
        call(
            &app.api,
            Method::GET,
            "/api/v1/admin/seasons/nope",
            &admin,
            None
        )
        .await
        .0,
        404
    );
    app.restart().await;
    let admin = app.admin().await;
    let (_, list) = call(&app.api, Method::GET, "/api/v1/admin/seasons", &admin, None).await;
    let active: Vec<_> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|s| s["is_active"] == true)
        .map(|s| s["id"].clone())
        .collect();
    assert_eq!(active, vec![json!("2027")]);
}

#[tokio::test]
async fn answers_create_cards_and_reviews_earn_xp() {
    let mut app = TestApp::start().await;
    let admin = app.admin().await;
    let s = app.school("srs@test.memora", "UTC").await;

    // Without an active season: completion works, SRS is skipped, reviews refuse.
    let (status, v) = complete(
        &app,
        &s,
        "bas-l-001",
        json!([{"question_id": "bas-q-001", "rating": 3}]),
    )
    .await;
    assert_eq!((status, &v["srs_skipped"]), (200, &json!(true)), "{v}");
    let (status, v) = due(&app, &s, "").await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("NO_ACTIVE_SEASON"))
    );
    let (status, _) = review(
        &app,
        &s,
        json!({"responses": [{"question_id": "bas-q-001", "rating": 3}]}),
    )
    .await;
    assert_eq!(status, 409);

    assert_eq!(season(&app, &admin, ACTIVE_2026, true).await.0, 201);
    // A question of another lesson, or twice the same one: INVALID_QUESTION / 422.
    let (status, v) = complete(
        &app,
        &s,
        "bas-l-002",
        json!([{"question_id": "bas-q-003", "rating": 3}]),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("INVALID_QUESTION"))
    );
    for (lesson, q) in [
        ("bas-l-001", "bas-q-001"),
        ("bas-l-002", "bas-q-002"),
        ("bas-l-003", "bas-q-003"),
    ] {
        let (status, v) =
            complete(&app, &s, lesson, json!([{"question_id": q, "rating": 3}])).await;
        assert_eq!((status, &v["srs_skipped"]), (200, &json!(false)), "{v}");
    }
    // Learning step 1 (10 min): nothing due yet.
    let (status, v) = due(&app, &s, "").await;
    assert_eq!(
        (status, &v["total_due"], &v["season"]),
        (200, &json!(0), &json!("2026")),
        "{v}"
    );
    assert_eq!(v["is_degraded"], false);

    app.clock.advance(Duration::from_secs(3600));
    let (_, v) = due(&app, &s, "?limit=2").await;
    assert_eq!(v["total_due"], 3);
    assert_eq!(ids(&v), ["bas-q-001", "bas-q-002"], "by (due, question id)");
    assert_eq!(v["items"][0]["lesson_id"], "bas-l-001");
    assert_eq!(v["items"][0]["topic_id"], "bas-tp-hello");
    assert_eq!(v["items"][0]["subject_id"], "bas");
    assert_eq!(v["items"][0]["state"], "learning");
    assert_eq!(due(&app, &s, "?subject_id=chain").await.1["total_due"], 0);
    assert_eq!(
        due(&app, &s, "?topic_id=bas-tp-hello").await.1["total_due"],
        3
    );
    assert_eq!(
        due(&app, &s, "?topic_id=bas-tp-vars").await.1["total_due"],
        0
    );
    assert_eq!(due(&app, &s, "?limit=51").await.0, 422);

    let xp_before = app.api.wallet(&s).await.expect("wallet")["total_xp"]
        .as_i64()
        .expect("xp");
    let responses = json!([{"question_id": "bas-q-001", "rating": 3},
                           {"question_id": "bas-q-002", "is_correct": false, "response_time_ms": 4000}]);
    let (status, v) = review(&app, &s, json!({"responses": responses, "combo": 2})).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("VALIDATION_FAILED")),
        "combo > correct"
    );
    let (status, v) = review(
        &app,
        &s,
        json!({"responses": [{"question_id": "bas-q-030", "rating": 3}]}),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("INVALID_QUESTION")),
        "no card"
    );
    let (status, v) = review(&app, &s, json!({"responses": responses, "combo": 1})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["processed"].as_i64(), v["xp_earned"].as_i64()),
        (Some(2), Some(12))
    );
    assert_eq!(v["new_total_xp"].as_i64(), Some(xp_before + 12));
    assert_eq!(v["streak"]["action"], "maintained");
    assert_eq!(
        v["items"][0]["state"], "review",
        "good at the last step graduates"
    );
    assert!(v["items"][0]["interval_days"].as_i64().expect("days") >= 1);
    assert_eq!(v["items"][1]["state"], "learning");
    let wallet = app.api.wallet(&s).await.expect("wallet");
    assert_eq!(wallet["total_xp"].as_i64(), Some(xp_before + 12));
    assert_eq!(
        due(&app, &s, "").await.1["total_due"],
        1,
        "only bas-q-003 still due"
    );

    // Early answer (not due): scheduled, no XP, streak untouched.
    let (status, v) = review(
        &app,
        &s,
        json!({"responses": [{"question_id": "bas-q-001", "rating": 4}]}),
    )
    .await;
    assert_eq!((status, v["xp_earned"].as_i64()), (200, Some(0)), "{v}");
    assert_eq!(v["streak"]["action"], "no_update");

    // The admin listing, paginated.
    let path = format!("/api/v1/admin/players/{}/cards?limit=2", s.player_id);
    let (status, page) = call(&app.api, Method::GET, &path, &admin, None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page), ["bas-q-001", "bas-q-002"]);
    assert_eq!(page["items"][0]["reps"], 3);
    let cursor = page["next_cursor"].as_str().expect("cursor").to_owned();
    let (_, page) = call(
        &app.api,
        Method::GET,
        &format!("{path}&cursor={cursor}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (ids(&page), &page["next_cursor"]),
        (vec!["bas-q-003".to_owned()], &Value::Null)
    );

    // Cards survive a checkpoint and a restart.
    let (_, before) = call(
        &app.api,
        Method::GET,
        &path.replace("limit=2", "limit=50"),
        &admin,
        None,
    )
    .await;
    call(
        &app.api,
        Method::POST,
        "/api/v1/admin/checkpoint",
        &admin,
        None,
    )
    .await;
    app.restart().await;
    let admin = app.admin().await;
    let (_, after) = call(
        &app.api,
        Method::GET,
        &path.replace("limit=2", "limit=50"),
        &admin,
        None,
    )
    .await;
    assert_eq!(before, after);
}

#[tokio::test]
async fn idempotent_retries_apply_once_even_across_restarts() {
    let mut app = TestApp::start().await;
    let admin = app.admin().await;
    let s = app.school("idem@test.memora", "UTC").await;
    assert_eq!(season(&app, &admin, ACTIVE_2026, true).await.0, 201);
    let body = json!({"hearts": 3, "answers": [{"question_id": "bas-q-001", "rating": 3}]});
    let path = "/api/v1/lessons/bas-l-001/complete";
    let (status, first) = post_keyed(&app.api, path, &s, "key-1", &body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&first));
    let xp = app.api.wallet(&s).await.expect("wallet")["total_xp"].clone();
    let (status, again) = post_keyed(&app.api, path, &s, "key-1", &body).await;
    assert_eq!((status, &again), (200, &first), "identical answer");
    assert_eq!(
        app.api.wallet(&s).await.expect("wallet")["total_xp"],
        xp,
        "applied once"
    );
    let other = json!({"hearts": 2});
    let (status, v) = post_keyed(&app.api, path, &s, "key-1", &other).await;
    assert_eq!(status, 422);
    assert!(String::from_utf8_lossy(&v).contains("IDEMPOTENCY_KEY_REUSED"));
    // The same key on another path is another scope.
    let (status, _) = post_keyed(
        &app.api,
        "/api/v1/lessons/bas-l-002/complete",
        &s,
        "key-1",
        &other,
    )
    .await;
    assert_eq!(status, 200);

    app.clock.advance(Duration::from_secs(3600));
    let reviews = json!({"responses": [{"question_id": "bas-q-001", "rating": 3}], "combo": 1});
    let (status, first_review) = post_keyed(&app.api, "/api/v1/reviews", &s, "r-1", &reviews).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&first_review));
    let xp = app.api.wallet(&s).await.expect("wallet")["total_xp"].clone();

    // Across a restart (the stored answers are checkpointed and loaded with the student).
    app.restart().await;
    let s = app
        .api
        .login("idem@test.memora", "password-1234", &s.device_id)
        .await
        .expect("login");
    let (status, again) = post_keyed(&app.api, path, &s, "key-1", &body).await;
    assert_eq!((status, &again), (200, &first));
    let (status, again) = post_keyed(&app.api, "/api/v1/reviews", &s, "r-1", &reviews).await;
    assert_eq!((status, &again), (200, &first_review));
    assert_eq!(app.api.wallet(&s).await.expect("wallet")["total_xp"], xp);
    // A malformed key is refused.
    let (status, _) = post_keyed(&app.api, "/api/v1/reviews", &s, "", &reviews).await;
    assert_eq!(status, 422);

    // After 24 h the key is forgotten: the request is evaluated afresh (and the card,
    // now in review for days, is not due, so the combo is refused).
    app.clock.advance(Duration::from_secs(25 * 3600));
    let (status, v) = post_keyed(&app.api, "/api/v1/reviews", &s, "r-1", &reviews).await;
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&v));
    assert!(String::from_utf8_lossy(&v).contains("/combo"));
}

/// Checkpoints far apart, so that every record of the crash test stays in the journal.
const QUIET_CHECKPOINTS: &str =
    "[checkpoint]\nprogress_interval_secs = 3600\nwallet_interval_secs = 3600\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_and_stored_answers_survive_kill_9_through_the_journal() {
    use crate::util::{Server, scenario};
    use tokio::task::block_in_place;

    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = block_in_place(|| Server::start(&tmp.path().join("data"), QUIET_CHECKPOINTS));
    let api = Api::new(&server.url);
    let admin = scenario::import_school(&api).await;
    let email = "crash-srs@test.local";
    let s = scenario::new_student(&api, &admin, email).await;
    let (status, _) = call(
        &api,
        Method::POST,
        "/api/v1/admin/seasons",
        &admin,
        Some(
            json!({"id": "2026", "title": "S", "start_date": "2026-01-01",
                     "end_date": "2026-12-31", "is_active": true}),
        ),
    )
    .await;
    assert_eq!(status, 201);
    let body = json!({"hearts": 4, "answers": [{"question_id": "bas-q-001", "is_correct": true, "response_time_ms": 3000}]});
    let path = "/api/v1/lessons/bas-l-001/complete";
    let (status, first) = post_keyed(&api, path, &s, "crash-key", &body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&first));
    let cards_path = format!("/api/v1/admin/players/{}/cards", s.player_id);
    let (_, before) = call(&api, Method::GET, &cards_path, &admin, None).await;
    assert_eq!(ids(&before), ["bas-q-001"]);

    block_in_place(|| server.kill9());
    block_in_place(|| server.restart());
    let api = Api::new(&server.url);
    let admin = api
        .login(
            crate::util::ADMIN_EMAIL,
            crate::util::ADMIN_PASSWORD,
            &crate::util::device_id_for(crate::util::ADMIN_EMAIL),
        )
        .await
        .expect("admin login");
    let s = scenario::login(&api, email).await;
    let (_, after) = call(&api, Method::GET, &cards_path, &admin, None).await;
    assert_eq!(before, after, "the card was replayed from the journal");
    let xp = api.wallet(&s).await.expect("wallet")["total_xp"].clone();
    let (status, again) = post_keyed(&api, path, &s, "crash-key", &body).await;
    assert_eq!(
        (status, &again),
        (200, &first),
        "the stored answer was replayed"
    );
    assert_eq!(api.wallet(&s).await.expect("wallet")["total_xp"], xp);
}
