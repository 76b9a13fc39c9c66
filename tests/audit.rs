//! Audit and interaction logs, privacy and admin player management through HTTP
//! (players.md "Audit and interaction logs", "Privacy", "Wallet"; api.md): a record for
//! every security event type with its context, lesson attempts and review answers,
//! coalescing of failing requests (which never write the journal themselves), durability
//! across a clean restart and a `kill -9`, filters and cursor pages, the retention job
//! under the fake clock, the export, erasure, progress reset, the player list, and the
//! wallet's streak and `last_played_at` details.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::util::api::{Api, CallError, Session, call, ok};
use crate::util::app::{PASSWORD, TestApp};

const STUDENT: &str = "ana@test.memora";

fn uuid(n: u8) -> String {
    format!("00000000-0000-4000-8000-0000000000{n:02x}")
}

/// `GET /api/v1/admin/audit?{query}`.
async fn audit(api: &Api, admin: &Session, query: &str) -> Value {
    ok(
        api,
        Method::GET,
        &format!("/api/v1/admin/audit?{query}"),
        admin,
        None,
    )
    .await
}

fn items(page: &Value) -> &[Value] {
    page["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn of_type<'a>(page: &'a Value, kind: &str) -> Vec<&'a Value> {
    items(page).iter().filter(|i| i["type"] == kind).collect()
}

fn detail<'a>(item: &'a Value, key: &str) -> &'a str {
    item["detail"][key].as_str().unwrap_or_default()
}

async fn login_status(api: &Api, email: &str, password: &str, device: &str) -> (u16, String) {
    match api.login(email, password, device).await {
        Ok(_) => (200, String::new()),
        Err(CallError::Status { status, code, .. }) => (status, code),
        Err(e) => panic!("{e}"),
    }
}

fn on_device(s: &Session, device: &str) -> Session {
    Session {
        device_id: device.to_owned(),
        ..s.clone()
    }
}

#[tokio::test]
async fn security_events_are_recorded_with_their_context() {
    let app = TestApp::start().await;
    let s = app.school(STUDENT, "UTC").await;
    let admin = app.admin().await;
    let api = &app.api;

    // Refused logins: wrong password, unknown email, no device, an unknown device.
    assert_eq!(
        login_status(api, STUDENT, "wrong-password", &s.device_id).await,
        (401, "INVALID_CREDENTIALS".into())
    );
    assert_eq!(
        login_status(api, "ghost@test.memora", "whatever-1", &uuid(7)).await,
        (401, "INVALID_CREDENTIALS".into())
    );
    assert_eq!(
        login_status(api, STUDENT, PASSWORD, "").await,
        (400, "DEVICE_ID_REQUIRED".into())
    );
    assert_eq!(
        login_status(api, STUDENT, PASSWORD, &uuid(9)).await,
        (403, "DEVICE_NOT_AUTHORIZED".into())
    );
    // Refused requests: no device header, another device.
    assert_eq!(
        call(
            api,
            Method::GET,
            "/api/v1/wallet",
            Some(&on_device(&s, "")),
            None
        )
        .await,
        (400, "DEVICE_ID_REQUIRED".into())
    );
    assert_eq!(
        call(
            api,
            Method::GET,
            "/api/v1/wallet",
            Some(&on_device(&s, &uuid(9))),
            None
        )
        .await,
        (403, "DEVICE_NOT_AUTHORIZED".into())
    );
    // A new login replaces the session; the old token is then refused.
    let s2 = api
        .login(STUDENT, PASSWORD, &s.device_id)
        .await
        .expect("login");
    assert_eq!(
        call(api, Method::GET, "/api/v1/wallet", Some(&s), None).await,
        (401, "SESSION_REPLACED".into())
    );
    // The account's login bucket (5 per minute) is used up by now.
    assert_eq!(
        login_status(api, STUDENT, PASSWORD, &s.device_id).await,
        (429, "RATE_LIMITED".into())
    );
    // Admin device management, an XP adjustment, a generic admin write, a logout.
    let devices = format!("/api/v1/admin/players/{}/devices", s.player_id);
    let body = json!({"device_id": uuid(2), "device_name": "Lab PC 2"});
    ok(api, Method::POST, &devices, &admin, Some(body)).await;
    ok(
        api,
        Method::DELETE,
        &format!("{devices}/{}", uuid(2)),
        &admin,
        None,
    )
    .await;
    let xp = json!({"amount": 50, "reason": "Science fair"});
    let xp_path = format!("/api/v1/admin/players/{}/xp", s.player_id);
    ok(api, Method::POST, &xp_path, &admin, Some(xp)).await;
    let refused = json!({"device_id": "not-a-uuid", "device_name": "x"});
    assert_eq!(
        call(api, Method::POST, &devices, Some(&admin), Some(refused)).await,
        (422, "VALIDATION_FAILED".into())
    );
    let doc = crate::util::fixture("basics.subject.json");
    api.put_subject(&admin, &doc).await.expect("re-import");
    ok(api, Method::POST, "/api/v1/auth/logout", &s2, None).await;

    let page = audit(api, &admin, &format!("player_id={}&limit=500", s.player_id)).await;
    let count = |kind: &str| of_type(&page, kind).len();
    assert_eq!(count("login_success"), 2, "{page}");
    assert_eq!(count("login_failed"), 1);
    assert_eq!(count("device_id_missing"), 2);
    assert_eq!(count("device_not_authorized"), 2);
    assert_eq!(count("device_added"), 2, "first device and the admin's");
    assert_eq!(count("device_removed"), 1);
    assert_eq!(count("session_replaced"), 2, "at the login and on use");
    assert_eq!(count("logout"), 1);
    assert_eq!(count("rate_limited"), 1);
    assert!(
        items(&page)
            .iter()
            .all(|i| i["player_id"] == s.player_id.as_str())
    );
    // Newest first.
    let times: Vec<&str> = items(&page)
        .iter()
        .filter_map(|i| i["at"].as_str())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    let first_login = of_type(&page, "login_success")[1];
    assert_eq!(first_login["result"], "ok");
    assert_eq!(first_login["client_ip"], "127.0.0.1");
    assert_eq!(first_login["endpoint"], "POST /api/v1/auth/login");
    assert_eq!(first_login["device_id"], s.device_id.as_str());
    assert_eq!(first_login["log"], "security");
    let failed = of_type(&page, "login_failed")[0];
    assert_eq!(
        (failed["result"].as_str(), detail(failed, "reason")),
        (Some("INVALID_CREDENTIALS"), "wrong_password")
    );
    let foreign = of_type(&page, "device_not_authorized");
    assert!(foreign.iter().all(|i| i["device_id"] == uuid(9).as_str()));
    assert!(
        foreign
            .iter()
            .any(|i| i["endpoint"] == "GET /api/v1/wallet")
    );
    let replaced: Vec<&str> = of_type(&page, "session_replaced")
        .iter()
        .filter_map(|i| i["result"].as_str())
        .collect();
    assert_eq!(replaced, vec!["SESSION_REPLACED", "ok"]);
    let by_admin = of_type(&page, "device_added")
        .into_iter()
        .find(|i| i["actor_id"] == admin.player_id.as_str())
        .expect("device added by the admin");
    assert_eq!(
        (by_admin["device_id"].as_str(), detail(by_admin, "name")),
        (Some(uuid(2).as_str()), "Lab PC 2")
    );
    assert_eq!(
        of_type(&page, "device_removed")[0]["actor_id"],
        admin.player_id.as_str()
    );
    let limited = of_type(&page, "rate_limited")[0];
    assert_eq!(
        (limited["result"].as_str(), detail(limited, "group")),
        (Some("RATE_LIMITED"), "login")
    );
    let xp_action = of_type(&page, "admin_action")
        .into_iter()
        .find(|i| detail(i, "action") == "xp_adjusted")
        .expect("xp adjustment audited");
    assert_eq!(
        (detail(xp_action, "amount"), detail(xp_action, "reason")),
        ("50", "Science fair")
    );
    assert_eq!(xp_action["actor_id"], admin.player_id.as_str());
    // A refused admin write is recorded too, with its code.
    let refused = of_type(&page, "admin_action")
        .into_iter()
        .find(|i| i["result"] == "VALIDATION_FAILED")
        .expect("refused admin write audited");
    assert_eq!(
        detail(refused, "action"),
        "POST /api/v1/admin/players/{id}/devices"
    );
    assert_eq!(refused["actor_id"], admin.player_id.as_str());

    // Records about no known account, and admin writes of other routes.
    let failed = audit(api, &admin, "type=login_failed").await;
    let ghost = items(&failed)
        .iter()
        .find(|i| detail(i, "email") == "ghost@test.memora")
        .expect("unknown email recorded");
    assert_eq!(
        (ghost["player_id"].clone(), detail(ghost, "reason")),
        (Value::Null, "unknown_email")
    );
    let admin_page = audit(
        api,
        &admin,
        &format!("type=admin_action&player_id={}", admin.player_id),
    )
    .await;
    assert!(
        items(&admin_page)
            .iter()
            .any(|i| detail(i, "action") == "PUT /api/v1/admin/subjects/{id}"
                && i["result"] == "ok"
                && i["client_ip"] == "127.0.0.1"
                && i["endpoint"] == "PUT /api/v1/admin/subjects/{id}"),
        "{admin_page}"
    );
    // Only admins read the log.
    assert_eq!(
        call(api, Method::GET, "/api/v1/admin/audit", Some(&s2), None)
            .await
            .0,
        401,
        "s2 logged out"
    );
    let s3 = {
        app.clock.advance(Duration::from_secs(61));
        api.login(STUDENT, PASSWORD, &s.device_id)
            .await
            .expect("login")
    };
    assert_eq!(
        call(api, Method::GET, "/api/v1/admin/audit", Some(&s3), None).await,
        (403, "FORBIDDEN".into())
    );
}

async fn complete(api: &Api, s: &Session, lesson: &str, body: Value) -> (u16, String) {
    let path = format!("/api/v1/lessons/{lesson}/complete");
    call(api, Method::POST, &path, Some(s), Some(body)).await
}

#[tokio::test]
async fn lesson_attempts_and_review_answers_go_to_the_interaction_log() {
    let app = TestApp::start().await;
    let s = app.school(STUDENT, "UTC").await;
    let admin = app.admin().await;
    let api = &app.api;
    let season = json!({"id": "2026", "title": "S", "start_date": "2026-09-01",
                        "end_date": "2027-06-30", "is_active": true});
    ok(
        api,
        Method::POST,
        "/api/v1/admin/seasons",
        &admin,
        Some(season),
    )
    .await;

    // A second apart: records of one instant are ordered by their journal position, and
    // failures reach the journal in a later batch than successes.
    let second = Duration::from_secs(1);
    assert_eq!(
        complete(api, &s, "bas-l-001", json!({"hearts": 0})).await,
        (422, "NO_HEARTS".into())
    );
    app.clock.advance(second);
    assert_eq!(
        complete(api, &s, "ch-l-010", json!({"hearts": 3})).await,
        (409, "NOT_UNLOCKED".into())
    );
    app.clock.advance(second);
    assert_eq!(
        complete(api, &s, "no-such-lesson", json!({"hearts": 3})).await,
        (404, "INVALID_LESSON".into())
    );
    app.clock.advance(second);
    let answers = json!({"hearts": 4, "answers": [{"question_id": "bas-q-001", "rating": 3}]});
    assert_eq!(complete(api, &s, "bas-l-001", answers).await.0, 200);
    app.clock.advance(Duration::from_secs(3 * 86_400));
    let review = json!({"responses": [{"question_id": "bas-q-001", "rating": 4}]});
    ok(api, Method::POST, "/api/v1/reviews", &s, Some(review)).await;
    app.clock.advance(second);
    let bad = json!({"responses": [{"question_id": "bas-q-030", "rating": 3}]});
    assert_eq!(
        call(api, Method::POST, "/api/v1/reviews", Some(&s), Some(bad)).await,
        (422, "INVALID_QUESTION".into())
    );

    let admin = app.admin().await;
    let page = audit(
        api,
        &admin,
        &format!(
            "player_id={}&type=lesson_attempt,review_answer",
            s.player_id
        ),
    )
    .await;
    assert!(items(&page).iter().all(|i| i["log"] == "interaction"));
    let attempts: Vec<(String, String)> = of_type(&page, "lesson_attempt")
        .iter()
        .rev()
        .map(|i| {
            (
                detail(i, "lesson_id").to_owned(),
                i["result"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("bas-l-001", "NO_HEARTS"),
        ("ch-l-010", "NOT_UNLOCKED"),
        ("no-such-lesson", "INVALID_LESSON"),
        ("bas-l-001", "ok"),
    ]
    .map(|(l, r)| (l.to_owned(), r.to_owned()));
    assert_eq!(attempts, expected, "{page}");
    let passed = of_type(&page, "lesson_attempt")[0];
    assert_eq!(
        (
            detail(passed, "hearts"),
            detail(passed, "xp_earned"),
            detail(passed, "first_completion")
        ),
        ("4", "50", "true")
    );
    assert_eq!(
        passed["endpoint"],
        "POST /api/v1/lessons/{lesson_id}/complete"
    );
    let reviews = of_type(&page, "review_answer");
    assert_eq!(reviews.len(), 2, "{page}");
    assert_eq!(reviews[0]["result"], "INVALID_QUESTION");
    assert_eq!(
        (
            reviews[1]["result"].as_str(),
            detail(reviews[1], "question_id"),
            detail(reviews[1], "rating")
        ),
        (Some("ok"), "bas-q-001", "easy")
    );
}

#[tokio::test]
async fn failing_requests_are_coalesced_and_never_write_the_journal_themselves() {
    let app = TestApp::start_with(&[
        ("MEMORA_AUDIT__FLUSH_INTERVAL_MS", "60000"),
        ("MEMORA_AUDIT__BATCH_MAX_RECORDS", "64"),
        ("MEMORA_RATE_LIMITS__ENABLED", "false"),
    ])
    .await;
    let admin = app.admin().await;
    let engine = app.engine().clone();
    let api = &app.api;
    let durable = || engine.journal_stats().durable_seq;
    let before = durable();
    for i in 0..40 {
        let email = format!("nobody{i}@test.memora");
        assert_eq!(
            login_status(api, &email, "wrong-password", &uuid(1))
                .await
                .0,
            401
        );
    }
    assert_eq!(
        durable(),
        before,
        "40 refused logins were answered without any journal write"
    );
    assert_eq!(engine.audit_buffered(), 40);
    // A reader first journals what is buffered: one record for the 40.
    let page = audit(api, &admin, "type=login_failed&limit=500").await;
    assert_eq!(items(&page).len(), 40);
    assert_eq!(
        durable(),
        before + 1,
        "one journal record for 40 audit records"
    );
    let mut emails: Vec<&str> = items(&page).iter().map(|i| detail(i, "email")).collect();
    emails.sort_unstable();
    emails.dedup();
    assert_eq!(emails.len(), 40);

    // Reaching `batch_max_records` wakes the background flush without any reader.
    let before = durable();
    for i in 0..64 {
        let email = format!("again{i}@test.memora");
        login_status(api, &email, "wrong-password", &uuid(1)).await;
    }
    // Wait (bounded) for the background flush; nothing here reads the log.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while durable() == before && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(engine.audit_buffered(), 0, "the full buffer was flushed");
    assert!(
        (before + 1..=before + 2).contains(&durable()),
        "64 records in one or two journal records: {} → {}",
        before,
        durable()
    );
}

#[tokio::test]
async fn records_survive_a_clean_restart() {
    let mut app = TestApp::start_with(&[("MEMORA_AUDIT__FLUSH_INTERVAL_MS", "60000")]).await;
    let _ = app.admin().await;
    login_status(&app.api, "late@test.memora", "nope-nope", &uuid(1)).await;
    assert_eq!(app.engine().audit_buffered(), 1);
    // Still buffered at shutdown: the final flush journals it, the last checkpoint
    // stores it.
    app.restart().await;
    let admin = app.admin().await;
    let page = audit(&app.api, &admin, "type=login_failed,login_success").await;
    assert!(
        items(&page)
            .iter()
            .any(|i| detail(i, "email") == "late@test.memora"),
        "{page}"
    );
    assert_eq!(of_type(&page, "login_success").len(), 2, "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_replayed_with_their_ids_after_kill_9() {
    use crate::util::{Server, scenario};
    use tokio::task::block_in_place;

    let tmp = tempfile::tempdir().expect("tempdir");
    let quiet = "[checkpoint]\nprogress_interval_secs = 3600\nwallet_interval_secs = 3600\n";
    let mut server = block_in_place(|| Server::start(&tmp.path().join("data"), quiet));
    let api = Api::new(&server.url);
    let admin = scenario::import_school(&api).await;
    let s = scenario::new_student(&api, &admin, "crash-audit@test.local").await;
    login_status(&api, "crash-audit@test.local", "wrong-one", &s.device_id).await;
    // The read journals the buffered record; nothing is checkpointed before the kill.
    let before = audit(&api, &admin, &format!("player_id={}", s.player_id)).await;
    assert_eq!(of_type(&before, "login_failed").len(), 1, "{before}");
    assert_eq!(of_type(&before, "login_success").len(), 1, "{before}");

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
    let after = audit(&api, &admin, &format!("player_id={}", s.player_id)).await;
    assert_eq!(before["items"], after["items"], "same records, same ids");
}

#[tokio::test]
async fn filters_and_cursor_pages() {
    let app = TestApp::start_with(&[("MEMORA_RATE_LIMITS__ENABLED", "false")]).await;
    let admin = app.admin().await;
    let s = app.school(STUDENT, "UTC").await;
    let api = &app.api;
    for i in 0..7 {
        app.clock.advance(Duration::from_secs(60));
        login_status(
            api,
            &format!("u{i}@test.memora"),
            "wrong-password",
            &uuid(1),
        )
        .await;
    }
    let all = audit(api, &admin, "type=login_failed").await;
    let emails = |page: &Value| -> Vec<String> {
        items(page)
            .iter()
            .map(|i| detail(i, "email").to_owned())
            .collect()
    };
    assert_eq!(
        emails(&all),
        ["u6", "u5", "u4", "u3", "u2", "u1", "u0"].map(|u| format!("{u}@test.memora"))
    );
    assert!(all["next_cursor"].is_null());

    // Pages of 3 walk the same list, newest first, and end with a null cursor.
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("type=login_failed&limit=3&cursor={c}"),
            None => "type=login_failed&limit=3".to_owned(),
        };
        let page = audit(api, &admin, &query).await;
        pages += 1;
        assert!(items(&page).len() <= 3);
        walked.extend(emails(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!((pages, walked), (3, emails(&all)));

    // Time range: since inclusive, until exclusive.
    let at = |email: &str| -> String {
        items(&all)
            .iter()
            .find(|i| detail(i, "email") == email)
            .and_then(|i| i["at"].as_str())
            .expect("at")
            .to_owned()
    };
    let range = audit(
        api,
        &admin,
        &format!(
            "type=login_failed&since={}&until={}",
            at("u2@test.memora"),
            at("u5@test.memora")
        ),
    )
    .await;
    assert_eq!(
        emails(&range),
        ["u4", "u3", "u2"].map(|u| format!("{u}@test.memora"))
    );
    // Several types, one player.
    let mixed = audit(
        api,
        &admin,
        &format!("player_id={}&type=login_success,device_added", s.player_id),
    )
    .await;
    let mut kinds: Vec<&str> = items(&mixed)
        .iter()
        .filter_map(|i| i["type"].as_str())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["device_added", "login_success"]);
    // Without a type filter a player's list holds only their records.
    let own = audit(api, &admin, &format!("player_id={}", s.player_id)).await;
    assert!(!items(&own).is_empty());
    assert!(
        items(&own)
            .iter()
            .all(|i| i["player_id"] == s.player_id.as_str())
    );

    for bad in [
        "type=nope",
        "limit=0",
        "limit=501",
        "since=yesterday",
        "cursor=xyz",
        "colour=blue",
    ] {
        assert_eq!(
            call(
                api,
                Method::GET,
                &format!("/api/v1/admin/audit?{bad}"),
                Some(&admin),
                None
            )
            .await,
            (422, "VALIDATION_FAILED".into()),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn retention_deletes_old_records_and_clears_old_ips() {
    let mut app = TestApp::start().await;
    let day = Duration::from_secs(86_400);
    let _ = app.admin().await;
    login_status(&app.api, "old@test.memora", "wrong-password", &uuid(1)).await;
    app.clock.advance(day * 31);
    let admin = app.admin().await;
    login_status(&app.api, "new@test.memora", "wrong-password", &uuid(1)).await;
    // Let the records reach the journal (the job looks at journaled records).
    audit(&app.api, &admin, "limit=1").await;

    let report = app.engine().audit_retention().await.expect("retention");
    assert!(report.changed);
    let page = audit(&app.api, &admin, "type=login_failed").await;
    let ip_of = |page: &Value, email: &str| -> Option<Value> {
        items(page)
            .iter()
            .find(|i| detail(i, "email") == email)
            .map(|i| i["client_ip"].clone())
    };
    assert_eq!(ip_of(&page, "old@test.memora"), Some(Value::Null));
    assert_eq!(ip_of(&page, "new@test.memora"), Some(json!("127.0.0.1")));

    // Nothing more expired: no journal record.
    let seq = app.engine().journal_stats().durable_seq;
    let report = app.engine().audit_retention().await.expect("retention");
    assert!(!report.changed);
    assert_eq!(app.engine().journal_stats().durable_seq, seq);

    // 366 days after the first records they are deleted; the newer ones stay (IP-less).
    app.clock.advance(day * 335);
    let admin = app.admin().await;
    app.engine().audit_retention().await.expect("retention");
    let page = audit(
        &app.api,
        &admin,
        "type=login_failed,login_success&limit=500",
    )
    .await;
    assert_eq!(ip_of(&page, "old@test.memora"), None, "{page}");
    assert_eq!(ip_of(&page, "new@test.memora"), Some(Value::Null));
    let logins = of_type(&page, "login_success");
    assert_eq!(logins.len(), 2, "the first admin login expired: {page}");
    let runs = app.engine().jobs().task_runs();
    let run = runs.get("audit_retention").expect("run recorded");
    assert!(run.ok && run.runs >= 3, "{run:?}");

    // Deleted records do not come back from the journal after a restart.
    app.restart().await;
    let admin = app.admin().await;
    let page = audit(&app.api, &admin, "type=login_failed").await;
    assert_eq!(ip_of(&page, "old@test.memora"), None);
    assert_eq!(ip_of(&page, "new@test.memora"), Some(Value::Null));
}

#[tokio::test]
async fn export_then_erase_a_student() {
    let mut app = TestApp::start().await;
    let s = app.school(STUDENT, "UTC").await;
    let admin = app.admin().await;
    let api = &app.api;
    let season = json!({"id": "2026", "title": "S", "start_date": "2026-09-01",
                        "end_date": "2027-06-30", "is_active": true});
    ok(
        api,
        Method::POST,
        "/api/v1/admin/seasons",
        &admin,
        Some(season),
    )
    .await;
    let answers = json!({"hearts": 4, "answers": [{"question_id": "bas-q-001", "rating": 3}]});
    assert_eq!(complete(api, &s, "bas-l-001", answers).await.0, 200);

    let export_path = format!("/api/v1/admin/players/{}/export", s.player_id);
    let raw = api
        .call(Method::GET, &export_path, Some(&admin), None)
        .await
        .expect("export");
    let export = raw.1;
    let text = export.to_string();
    assert!(
        !text.contains(&s.token) && !text.contains("token"),
        "no tokens: {text}"
    );
    assert!(!text.contains("password_hash") && !text.contains("argon2"));
    assert_eq!(export["player"]["email"], STUDENT);
    assert_eq!(export["devices"][0]["device_id"], s.device_id.as_str());
    assert_eq!(export["sessions"].as_array().map(Vec::len), Some(1));
    assert_eq!(export["sessions"][0]["device_id"], s.device_id.as_str());
    assert_eq!(export["wallet"]["total_xp"], 50);
    let bas = export["progress"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["subject_id"] == "bas"))
        .expect("bas progress");
    assert_eq!(bas["passed_lessons"], json!(["bas-l-001"]));
    assert_eq!(bas["best_hearts"]["bas-l-001"], 4);
    assert_eq!(export["cards"][0]["question_id"], "bas-q-001");
    assert_eq!(export["cards"][0]["season_id"], "2026");
    let audit_kinds: Vec<&str> = export["audit"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["type"].as_str())
        .collect();
    assert!(audit_kinds.contains(&"login_success") && audit_kinds.contains(&"lesson_attempt"));
    assert_eq!(
        call(
            api,
            Method::GET,
            "/api/v1/admin/players/p_nobody/export",
            Some(&admin),
            None
        )
        .await,
        (404, "NOT_FOUND".into())
    );
    assert_eq!(
        call(api, Method::GET, &export_path, Some(&s), None).await,
        (403, "FORBIDDEN".into())
    );

    // Erasure: not of oneself.
    let me = format!("/api/v1/admin/players/{}", admin.player_id);
    assert_eq!(
        call(api, Method::DELETE, &me, Some(&admin), None).await,
        (409, "CONFLICT".into())
    );
    let player_path = format!("/api/v1/admin/players/{}", s.player_id);
    let erased = ok(api, Method::DELETE, &player_path, &admin, None).await;
    assert_eq!(
        (
            &erased["erased"],
            &erased["devices_deleted"],
            &erased["subjects_anonymised"],
            &erased["cards_anonymised"]
        ),
        (&json!(true), &json!(1), &json!(1), &json!(1))
    );
    // The journal's segments holding the student's records (the email in the account
    // event, their attempts) are gone from disk after the next checkpoint of both
    // streams (the wallet checkpoint, ≤ 15 min), not only when the segment fills.
    ok(api, Method::POST, "/api/v1/admin/checkpoint", &admin, None).await;
    let mut journal = Vec::new();
    for entry in std::fs::read_dir(app.data_dir().join("journal")).expect("journal dir") {
        journal.extend(std::fs::read(entry.expect("entry").path()).expect("segment"));
    }
    for secret in [STUDENT.as_bytes(), s.player_id.as_bytes()] {
        assert!(
            !journal.windows(secret.len()).any(|w| w == secret),
            "the journal still holds {}",
            String::from_utf8_lossy(secret)
        );
    }
    let gone = |app: &TestApp, admin: Session, token: Session| {
        let api = app.api.clone();
        let player_path = player_path.clone();
        let export_path = export_path.clone();
        async move {
            assert_eq!(
                call(&api, Method::GET, "/api/v1/wallet", Some(&token), None).await,
                (401, "UNAUTHENTICATED".into())
            );
            assert_eq!(
                login_status(&api, STUDENT, PASSWORD, &token.device_id).await,
                (401, "INVALID_CREDENTIALS".into())
            );
            for path in [&player_path, &export_path] {
                assert_eq!(
                    call(&api, Method::GET, path, Some(&admin), None).await,
                    (404, "NOT_FOUND".into())
                );
            }
            let own = audit(&api, &admin, &format!("player_id={}", token.player_id)).await;
            assert!(items(&own).is_empty(), "{own}");
            let list = ok(
                &api,
                Method::GET,
                "/api/v1/admin/players?limit=500",
                &admin,
                None,
            )
            .await;
            assert!(
                items(&list)
                    .iter()
                    .all(|p| p["id"] != token.player_id.as_str())
            );
            // The erasure itself is audited under the anonymous id that now holds the
            // student's anonymised records.
            let actions = audit(&api, &admin, "type=admin_action&limit=500").await;
            let erasure = items(&actions)
                .iter()
                .find(|i| detail(i, "action") == "player_erased")
                .expect("erasure audited")
                .clone();
            let anon = erasure["player_id"].as_str().expect("anon id").to_owned();
            assert!(anon.starts_with("anon_"), "{anon}");
            let kept = audit(&api, &admin, &format!("player_id={anon}&limit=500")).await;
            assert!(of_type(&kept, "lesson_attempt").len() == 1, "{kept}");
            assert!(of_type(&kept, "login_success").len() == 1, "{kept}");
            // The student's own records lose device and IP (the erasure keeps the admin's).
            assert!(
                items(&kept)
                    .iter()
                    .filter(|i| detail(i, "action") != "player_erased")
                    .all(|i| i["client_ip"].is_null()
                        && i["device_id"].is_null()
                        && i["detail"]["email"].is_null()),
                "{kept}"
            );
            assert!(!kept.to_string().contains(&token.player_id));
        }
    };
    gone(&app, admin.clone(), s.clone()).await;
    // The email can be given to a new account.
    let again =
        json!({"email": STUDENT, "password": "another-password-9", "display_name": "New Ana"});
    let created = ok(
        api,
        Method::POST,
        "/api/v1/admin/players",
        &admin,
        Some(again),
    )
    .await;
    assert_ne!(created["id"], s.player_id.as_str());
    assert_eq!(
        call(api, Method::DELETE, &player_path, Some(&admin), None).await,
        (404, "NOT_FOUND".into())
    );

    app.restart().await;
    let admin = app.admin().await;
    gone(&app, admin, s).await;
}

#[tokio::test]
async fn progress_reset_is_journaled_and_audited() {
    let mut app = TestApp::start().await;
    let s = app.school(STUDENT, "UTC").await;
    let admin = app.admin().await;
    let api = &app.api;
    assert_eq!(
        complete(api, &s, "bas-l-001", json!({"hearts": 4})).await.0,
        200
    );
    assert_eq!(
        complete(api, &s, "bas-l-002", json!({"hearts": 3})).await.0,
        200
    );
    let xp = api.wallet(&s).await.expect("wallet")["total_xp"].clone();
    let path = format!("/api/v1/admin/players/{}/progress/reset", s.player_id);

    for (body, pointer) in [
        (json!({"subject_id": "nope", "reason": "x"}), "/subject_id"),
        (json!({"subject_id": "bas", "reason": " "}), "/reason"),
    ] {
        match api
            .call(Method::POST, &path, Some(&admin), Some(&body))
            .await
        {
            Err(CallError::Status {
                status: 422, body, ..
            }) => {
                assert!(body.contains(pointer), "{body}");
            }
            other => panic!("{other:?}"),
        }
    }
    let reset = json!({"subject_id": "BAS", "reason": "Retake after a transfer"});
    assert_eq!(
        call(api, Method::POST, &path, Some(&s), Some(reset.clone())).await,
        (403, "FORBIDDEN".into())
    );
    assert_eq!(
        call(
            api,
            Method::POST,
            "/api/v1/admin/players/p_nobody/progress/reset",
            Some(&admin),
            Some(reset.clone())
        )
        .await,
        (404, "NOT_FOUND".into())
    );
    let answer = ok(api, Method::POST, &path, &admin, Some(reset)).await;
    assert_eq!(
        (&answer["subject_id"], &answer["passed_lessons_before"]),
        (&json!("bas"), &json!(2))
    );
    let p = api.progress(&s, "bas").await.expect("progress");
    assert_eq!(
        (&p["passed_lessons"], &p["total_xp_earned"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(
        api.wallet(&s).await.expect("wallet")["total_xp"],
        xp,
        "the wallet keeps its XP"
    );
    let page = audit(
        api,
        &admin,
        &format!("player_id={}&type=admin_action", s.player_id),
    )
    .await;
    let action = items(&page)
        .iter()
        .find(|i| detail(i, "action") == "progress_reset")
        .expect("reset audited");
    assert_eq!(
        (
            detail(action, "subject_id"),
            detail(action, "reason"),
            detail(action, "passed_lessons_before")
        ),
        ("bas", "Retake after a transfer", "2")
    );
    assert_eq!(action["actor_id"], admin.player_id.as_str());

    app.restart().await;
    let s = app
        .api
        .login(STUDENT, PASSWORD, &s.device_id)
        .await
        .expect("login");
    let p = app.api.progress(&s, "bas").await.expect("progress");
    assert_eq!(p["passed_lessons"], 0);
    let (status, _) = complete(&app.api, &s, "bas-l-001", json!({"hearts": 2})).await;
    assert_eq!(status, 200);
    let w = app.api.wallet(&s).await.expect("wallet");
    assert_eq!(w["total_xp"].as_i64(), xp.as_i64().map(|x| x + 10 + 2 * 10));
}

#[tokio::test]
async fn players_are_listed_with_filters_and_pages() {
    let app = TestApp::start_with(&[("MEMORA_RATE_LIMITS__ENABLED", "false")]).await;
    let _first = app.school("first@test.memora", "UTC").await;
    let admin = app.admin().await;
    let api = &app.api;
    let mut ids = Vec::new();
    for (i, grade) in ["7", "7", "8", "9"].into_iter().enumerate() {
        let body = json!({"email": format!("Kid{i}@School.test"), "password": PASSWORD,
                          "display_name": format!("Kid Number {i}"), "grade": grade,
                          "plan_id": if i < 3 { Value::from("school") } else { Value::Null }});
        let v = ok(
            api,
            Method::POST,
            "/api/v1/admin/players",
            &admin,
            Some(body),
        )
        .await;
        ids.push(v["id"].as_str().expect("id").to_owned());
    }
    let disable = json!({"disabled": true});
    ok(
        api,
        Method::PATCH,
        &format!("/api/v1/admin/players/{}", ids[1]),
        &admin,
        Some(disable),
    )
    .await;

    let list = |query: &'static str| {
        let api = api.clone();
        let admin = admin.clone();
        async move {
            let v = ok(
                &api,
                Method::GET,
                &format!("/api/v1/admin/players?{query}"),
                &admin,
                None,
            )
            .await;
            (
                items(&v)
                    .iter()
                    .map(|p| p["id"].as_str().unwrap_or_default().to_owned())
                    .collect::<Vec<_>>(),
                v["next_cursor"].clone(),
            )
        }
    };
    let (all, cursor) = list("").await;
    assert_eq!(all.len(), 6, "admin, first@ and four kids");
    assert!(cursor.is_null());
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "ordered by id");
    let set = |v: &[&String]| {
        let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(list("grade=7").await.0, set(&[&ids[0], &ids[1]]));
    assert_eq!(list("disabled=true").await.0, vec![ids[1].clone()]);
    assert_eq!(list("role=admin").await.0, vec![admin.player_id.clone()]);
    assert_eq!(list("q=kid2").await.0, vec![ids[2].clone()]);
    assert_eq!(list("q=NUMBER%203").await.0, vec![ids[3].clone()]);
    assert_eq!(list("plan_id=SCHOOL&grade=8").await.0, vec![ids[2].clone()]);
    assert_eq!(list("plan_id=school&disabled=false").await.0.len(), 3);

    // Pages of 4 then 2, the cursor opaque.
    let (page1, cursor) = list("limit=4").await;
    let cursor = cursor.as_str().expect("cursor").to_owned();
    let v = ok(
        api,
        Method::GET,
        &format!("/api/v1/admin/players?limit=4&cursor={cursor}"),
        &admin,
        None,
    )
    .await;
    let page2: Vec<String> = items(&v)
        .iter()
        .map(|p| p["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(v["next_cursor"].is_null());
    assert_eq!([page1, page2].concat(), all);

    for bad in [
        "role=king",
        "disabled=maybe",
        "limit=0",
        "cursor=zz",
        "colour=blue",
    ] {
        assert_eq!(
            call(
                api,
                Method::GET,
                &format!("/api/v1/admin/players?{bad}"),
                Some(&admin),
                None
            )
            .await,
            (422, "VALIDATION_FAILED".into()),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn wallet_streak_and_last_played_details() {
    let mut app = TestApp::start().await;
    let s = app.school(STUDENT, "UTC").await;
    let api = &app.api;
    let engine = app.engine().clone();
    let w = api.wallet(&s).await.expect("wallet");
    assert_eq!(w["last_played_at"], "2026-11-21T09:00:00Z");
    assert_eq!(
        complete(api, &s, "bas-l-001", json!({"hearts": 3})).await.0,
        200
    );

    // The next day the streak stands but is at risk.
    app.clock.advance(Duration::from_secs(86_400));
    let w = api.wallet(&s).await.expect("wallet");
    assert_eq!(
        (
            &w["current_streak"],
            &w["longest_streak"],
            &w["streak_at_risk"]
        ),
        (&json!(1), &json!(1), &json!(true))
    );
    assert_eq!(
        complete(api, &s, "bas-l-002", json!({"hearts": 3})).await.0,
        200
    );
    let w = api.wallet(&s).await.expect("wallet");
    assert_eq!(
        (
            &w["current_streak"],
            &w["longest_streak"],
            &w["streak_at_risk"]
        ),
        (&json!(2), &json!(2), &json!(false))
    );

    // Guarded requests move last_played_at at minute precision, without journal records.
    let seq = engine.journal_stats().durable_seq;
    app.clock.advance(Duration::from_secs(90));
    ok(api, Method::GET, "/api/v1/auth/session", &s, None).await;
    let w = api.wallet(&s).await.expect("wallet");
    assert_eq!(w["last_played_at"], "2026-11-22T09:01:00Z");
    app.clock.advance(Duration::from_secs(20));
    let w = api.wallet(&s).await.expect("wallet");
    assert_eq!(w["last_played_at"], "2026-11-22T09:01:00Z", "same minute");
    app.clock.advance(Duration::from_secs(60));
    ok(api, Method::GET, "/api/v1/me", &s, None).await;
    let w = api.wallet(&s).await.expect("wallet");
    assert_eq!(w["last_played_at"], "2026-11-22T09:02:00Z");
    assert_eq!(
        engine.journal_stats().durable_seq,
        seq,
        "no event per request"
    );

    // Two days later (a day missed) the streak reads 0; the longest stays.
    app.clock.advance(Duration::from_secs(2 * 86_400));
    let w = api.wallet(&s).await.expect("wallet");
    assert_eq!(
        (
            &w["current_streak"],
            &w["longest_streak"],
            &w["streak_at_risk"]
        ),
        (&json!(0), &json!(2), &json!(false))
    );
    assert_eq!(w["last_played_at"], "2026-11-24T09:02:00Z");

    // The latest value survives a clean restart (written by the wallet checkpoint).
    drop(engine);
    app.restart().await;
    let admin = app.admin().await;
    let export = ok(
        &app.api,
        Method::GET,
        &format!("/api/v1/admin/players/{}/export", s.player_id),
        &admin,
        None,
    )
    .await;
    assert_eq!(export["wallet"]["last_played_at"], "2026-11-24T09:02:00Z");
    assert_eq!(export["wallet"]["current_streak"], 0);
}

/// Rows of `sql` (one string column) in the mirror database.
async fn mirror_rows(url: &str, sql: &str) -> Vec<String> {
    use sqlx::{Connection, Row};
    let mut c = sqlx::MySqlConnection::connect(url)
        .await
        .expect("connect to the mirror database");
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&mut c)
        .await
        .map(|rows| rows.iter().map(|r| r.get::<String, _>(0)).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn erasure_reaches_the_mariadb_mirror() {
    use sqlx::Connection;
    let Some(base) = std::env::var("MEMORA_TEST_MARIADB_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("skipped: MEMORA_TEST_MARIADB_URL is not set (no MariaDB)");
        return;
    };
    let server = base.rsplit_once('/').map_or(base.as_str(), |(s, _)| s);
    let name = format!("memora_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin_conn = sqlx::MySqlConnection::connect(&base)
        .await
        .expect("connect to MariaDB");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin_conn)
        .await
        .expect("create database");
    let url = format!("{server}/{name}");

    let app = TestApp::start_with(&[("MEMORA_MIRROR__URL", url.as_str())]).await;
    let s = app.school(STUDENT, "UTC").await;
    let admin = app.admin().await;
    let api = &app.api;
    assert_eq!(
        complete(api, &s, "bas-l-001", json!({"hearts": 4})).await.0,
        200
    );
    ok(api, Method::POST, "/api/v1/admin/checkpoint", &admin, None).await;
    let id = s.player_id.clone();
    let rows = |sql: String| {
        let url = url.clone();
        async move { mirror_rows(&url, &sql).await }
    };
    // Polls (bounded) until `done` holds: the mirror runs in the background.
    let wait_for = |sql: String, done: fn(&[String]) -> bool| async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let got = rows(sql.clone()).await;
            if done(&got) || std::time::Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let mine = format!(
        "SELECT CONCAT('players:', id) FROM players WHERE id = '{id}' \
         UNION ALL SELECT CONCAT('wallets:', player_id) FROM wallets WHERE player_id = '{id}' \
         UNION ALL SELECT CONCAT('progress:', subject_id) FROM subject_progress WHERE player_id = '{id}'"
    );
    let mut before = wait_for(mine.clone(), |rows| rows.len() == 3).await;
    before.sort();
    assert_eq!(
        before,
        [
            "players:".to_owned() + &id,
            "progress:bas".to_owned(),
            "wallets:".to_owned() + &id
        ],
        "mirrored before the erasure"
    );

    ok(
        api,
        Method::DELETE,
        &format!("/api/v1/admin/players/{id}"),
        &admin,
        None,
    )
    .await;
    let after = wait_for(mine, |rows| rows.is_empty()).await;
    assert!(
        after.is_empty(),
        "the erased player's rows left MariaDB: {after:?}"
    );
    let anon = wait_for(
        "SELECT player_id FROM subject_progress WHERE player_id LIKE 'anon\\_%'".to_owned(),
        |rows| !rows.is_empty(),
    )
    .await;
    assert_eq!(
        anon.len(),
        1,
        "progress kept under the anonymous id: {anon:?}"
    );

    drop(app);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
        .execute(&mut admin_conn)
        .await
        .expect("drop database");
}
