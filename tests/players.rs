//! Players through HTTP (players.md): admin device management and the device limit,
//! replaced vs ended sessions, "log out everywhere", disabling and editing players,
//! staff sessions and idle timeouts, the password lifecycle and its gate, rate limits
//! with their headers, grants and XP adjustments — and no secrets in the logs.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::task::block_in_place;

use crate::util::api::{Api, CallError, Session, call, ok, outcome};
use crate::util::app::{ADMIN, PASSWORD, TestApp};
use crate::util::{Server, device_id_for};

const STUDENT: &str = "ana@test.memora";

fn on_device(s: &Session, device: &str) -> Session {
    Session {
        device_id: device.to_owned(),
        ..s.clone()
    }
}

fn uuid(n: u8) -> String {
    format!("00000000-0000-4000-8000-0000000000{n:02x}")
}

#[tokio::test]
async fn devices_are_managed_by_admins_within_the_limit() {
    let app = TestApp::start().await;
    let student = app.school(STUDENT, "UTC").await;
    let admin = app.admin().await;
    let api = &app.api;
    let base = format!("/api/v1/admin/players/{}/devices", student.player_id);

    let list = ok(api, Method::GET, &base, &admin, None).await;
    let devices = list["devices"].as_array().expect("devices");
    assert_eq!(devices.len(), 1, "{list}");
    assert_eq!(devices[0]["device_id"], json!(student.device_id));
    assert!(devices[0]["added_on"].is_string() && devices[0]["last_seen"].is_string());

    // Validation reports every problem; a student may not manage devices.
    let bad = api
        .call(
            Method::POST,
            &base,
            Some(&admin),
            Some(&json!({"device_id": "nope", "device_name": "x"})),
        )
        .await
        .expect_err("invalid");
    match bad {
        CallError::Status {
            status: 422, body, ..
        } => {
            assert!(
                body.contains("/device_id") && body.contains("/device_name"),
                "{body}"
            );
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        call(api, Method::GET, &base, Some(&student), None).await,
        (403, "FORBIDDEN".into())
    );

    let second = uuid(2);
    let added = api
        .call(
            Method::POST,
            &base,
            Some(&admin),
            Some(&json!({"device_id": second, "device_name": "Lab PC 2"})),
        )
        .await
        .expect("second device");
    assert_eq!(added.0, 201);
    assert_eq!(
        call(
            api,
            Method::POST,
            &base,
            Some(&admin),
            Some(json!({"device_id": second, "device_name": "Again"}))
        )
        .await,
        (409, "CONFLICT".into())
    );
    assert_eq!(
        call(
            api,
            Method::POST,
            &base,
            Some(&admin),
            Some(json!({"device_id": uuid(3), "device_name": "Third"}))
        )
        .await,
        (409, "DEVICE_LIMIT".into())
    );

    // Logging in on the second device replaces the first session.
    let on_second = api
        .login(STUDENT, PASSWORD, &second)
        .await
        .expect("login on device 2");
    assert_eq!(
        call(api, Method::GET, "/api/v1/me", Some(&student), None).await,
        (401, "SESSION_REPLACED".into())
    );
    assert_eq!(
        call(api, Method::GET, "/api/v1/me", Some(&on_second), None)
            .await
            .0,
        200
    );
    // A session is bound to its device, even an authorized one.
    assert_eq!(
        call(
            api,
            Method::GET,
            "/api/v1/me",
            Some(&on_device(&on_second, &student.device_id)),
            None
        )
        .await,
        (403, "DEVICE_NOT_AUTHORIZED".into())
    );

    // Removing the device ends its session at once: the device check answers first…
    let device_path = format!("{base}/{second}");
    assert_eq!(
        call(api, Method::DELETE, &device_path, Some(&admin), None)
            .await
            .0,
        204
    );
    assert_eq!(
        call(api, Method::GET, "/api/v1/me", Some(&on_second), None).await,
        (403, "DEVICE_NOT_AUTHORIZED".into())
    );
    assert_eq!(
        outcome(
            api.login(STUDENT, PASSWORD, &second)
                .await
                .map(|_| (200, Value::Null))
        ),
        (403, "DEVICE_NOT_AUTHORIZED".into())
    );
    assert_eq!(
        call(api, Method::DELETE, &device_path, Some(&admin), None).await,
        (404, "NOT_FOUND".into())
    );
    // …and re-authorizing the device does not revive the old session.
    api.call(
        Method::POST,
        &base,
        Some(&admin),
        Some(&json!({"device_id": second, "name": "Lab PC 2"})),
    )
    .await
    .expect("re-add");
    assert_eq!(
        call(api, Method::GET, "/api/v1/me", Some(&on_second), None).await,
        (401, "SESSION_ENDED".into())
    );
    assert_eq!(
        call(
            api,
            Method::GET,
            "/api/v1/admin/players/p_nobody/devices",
            Some(&admin),
            None
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn admins_end_sessions_disable_and_edit_players() {
    let app = TestApp::start().await;
    let student = app.school(STUDENT, "UTC").await;
    let admin = app.admin().await;
    let api = &app.api;
    let player = format!("/api/v1/admin/players/{}", student.player_id);

    let ended = ok(api, Method::POST, &format!("{player}/logout"), &admin, None).await;
    assert_eq!(ended["sessions_ended"], 1);
    assert_eq!(
        call(api, Method::GET, "/api/v1/me", Some(&student), None).await,
        (401, "SESSION_ENDED".into())
    );

    let student = api
        .login(STUDENT, PASSWORD, &student.device_id)
        .await
        .expect("login again");
    let disabled = ok(
        api,
        Method::PATCH,
        &player,
        &admin,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(disabled["disabled"], true);
    assert_eq!(
        call(api, Method::GET, "/api/v1/me", Some(&student), None).await,
        (401, "SESSION_ENDED".into())
    );
    assert_eq!(
        outcome(
            api.login(STUDENT, PASSWORD, &student.device_id)
                .await
                .map(|_| (200, Value::Null))
        ),
        (401, "INVALID_CREDENTIALS".into())
    );
    ok(
        api,
        Method::PATCH,
        &player,
        &admin,
        Some(json!({"disabled": false})),
    )
    .await;
    let student = api
        .login(STUDENT, PASSWORD, &student.device_id)
        .await
        .expect("re-enabled");

    // Every problem at once; unknown fields refused; nothing applied.
    let bad = api
        .call(
            Method::PATCH,
            &player,
            Some(&admin),
            Some(&json!({"timezone": "Mars/Base", "plan_id": "nope", "display_name": ""})),
        )
        .await
        .expect_err("invalid patch");
    match bad {
        CallError::Status {
            status: 422, body, ..
        } => {
            for pointer in ["/timezone", "/plan_id", "/display_name"] {
                assert!(body.contains(pointer), "{pointer} missing: {body}");
            }
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        call(
            api,
            Method::PATCH,
            &player,
            Some(&admin),
            Some(json!({"email": "x@y.z"}))
        )
        .await
        .0,
        422
    );
    let edited = ok(
        api,
        Method::PATCH,
        &player,
        &admin,
        Some(json!({"grade": "7", "stream": null, "timezone": "Europe/Paris", "display_name": "Ana B."})),
    )
    .await;
    assert_eq!(
        (edited["grade"].as_str(), edited["stream"].as_str()),
        (Some("7"), None)
    );
    assert_eq!(edited["timezone"], "Europe/Paris");
    // An edit that is not about access keeps the session.
    assert_eq!(
        call(api, Method::GET, "/api/v1/me", Some(&student), None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(
            api,
            Method::PATCH,
            "/api/v1/admin/players/p_nobody",
            Some(&admin),
            Some(json!({}))
        )
        .await
        .0,
        404
    );

    // The last enabled admin cannot be demoted or disabled; staff hold several sessions.
    let me = ok(api, Method::GET, "/api/v1/auth/session", &admin, None).await;
    let admin_path = format!(
        "/api/v1/admin/players/{}",
        me["player_id"].as_str().expect("id")
    );
    assert_eq!(
        call(
            api,
            Method::PATCH,
            &admin_path,
            Some(&admin),
            Some(json!({"role": "student"}))
        )
        .await,
        (409, "CONFLICT".into())
    );
    let second_browser = app.admin().await;
    assert_eq!(
        call(api, Method::GET, "/api/v1/auth/session", Some(&admin), None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(
            api,
            Method::GET,
            "/api/v1/auth/session",
            Some(&second_browser),
            None
        )
        .await
        .0,
        200
    );
}

#[tokio::test]
async fn staff_sessions_expire_when_idle_and_student_sessions_do_not_by_default() {
    let app = TestApp::start().await;
    let student = app.school(STUDENT, "UTC").await;
    let admin = app.admin().await;
    let api = &app.api;
    let hours = |h: u64| Duration::from_secs(h * 3600);
    app.clock.advance(hours(11));
    assert_eq!(
        call(api, Method::GET, "/api/v1/auth/session", Some(&admin), None)
            .await
            .0,
        200
    );
    app.clock.advance(hours(11));
    assert_eq!(
        call(api, Method::GET, "/api/v1/auth/session", Some(&admin), None)
            .await
            .0,
        200
    );
    app.clock.advance(hours(12) + Duration::from_secs(1));
    assert_eq!(
        call(api, Method::GET, "/api/v1/auth/session", Some(&admin), None).await,
        (401, "SESSION_ENDED".into())
    );
    assert_eq!(
        call(api, Method::GET, "/api/v1/me", Some(&student), None)
            .await
            .0,
        200
    );

    let app = TestApp::start_with(&[("MEMORA_PLAYERS__SESSION_IDLE_TIMEOUT", "1h")]).await;
    let student = app.school(STUDENT, "UTC").await;
    app.clock.advance(Duration::from_secs(59 * 60));
    assert_eq!(
        call(&app.api, Method::GET, "/api/v1/me", Some(&student), None)
            .await
            .0,
        200
    );
    app.clock.advance(Duration::from_secs(61 * 60));
    assert_eq!(
        call(&app.api, Method::GET, "/api/v1/me", Some(&student), None).await,
        (401, "SESSION_ENDED".into())
    );
}

#[tokio::test]
async fn password_changes_resets_and_the_change_gate() {
    let app = TestApp::start().await;
    let student = app.school(STUDENT, "UTC").await;
    let api = &app.api;
    let change = "/api/v1/auth/password";

    // Staff: changing the password ends the other sessions, keeps this one.
    let first = app.admin().await;
    let second = app.admin().await;
    assert_eq!(
        call(
            api,
            Method::POST,
            change,
            Some(&first),
            Some(json!({"current_password": "wrong-password", "new_password": "new-password-1"}))
        )
        .await,
        (422, "VALIDATION_FAILED".into())
    );
    assert_eq!(
        call(
            api,
            Method::POST,
            change,
            Some(&first),
            Some(json!({"current_password": PASSWORD, "new_password": "short"}))
        )
        .await,
        (422, "VALIDATION_FAILED".into())
    );
    // Password changes share the account's login bucket (5 a minute): let it refill.
    app.clock.advance(Duration::from_secs(60));
    ok(
        api,
        Method::POST,
        change,
        &first,
        Some(json!({"current_password": PASSWORD, "new_password": "new-password-1"})),
    )
    .await;
    assert_eq!(
        call(api, Method::GET, "/api/v1/auth/session", Some(&first), None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(
            api,
            Method::GET,
            "/api/v1/auth/session",
            Some(&second),
            None
        )
        .await,
        (401, "SESSION_ENDED".into())
    );
    assert_eq!(
        outcome(
            api.login(ADMIN, PASSWORD, &device_id_for(ADMIN))
                .await
                .map(|_| (200, Value::Null))
        ),
        (401, "INVALID_CREDENTIALS".into())
    );
    let admin = api
        .login(ADMIN, "new-password-1", &device_id_for(ADMIN))
        .await
        .expect("new password");

    // Reset: a generated password shown once, every session ended, change required.
    let reset = ok(
        api,
        Method::POST,
        &format!("/api/v1/admin/players/{}/password-reset", student.player_id),
        &admin,
        None,
    )
    .await;
    let generated = reset["password"].as_str().expect("password").to_owned();
    assert!(generated.len() >= 12 && reset["must_change_password"] == true);
    assert_eq!(
        call(api, Method::GET, "/api/v1/me", Some(&student), None).await,
        (401, "SESSION_ENDED".into())
    );
    let login = api
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Some(&student),
            Some(&json!({"email": STUDENT, "password": generated})),
        )
        .await
        .expect("login with the generated password")
        .1;
    assert_eq!(login["must_change_password"], true);
    let student = Session {
        token: login["token"].as_str().expect("token").to_owned(),
        ..student
    };
    for (method, path) in [
        (Method::GET, "/api/v1/me"),
        (Method::GET, "/api/v1/wallet"),
        (Method::GET, "/api/v1/subjects/bas/progress"),
    ] {
        assert_eq!(
            call(api, method, path, Some(&student), None).await,
            (403, "PASSWORD_CHANGE_REQUIRED".into()),
            "{path}"
        );
    }
    let session = ok(api, Method::GET, "/api/v1/auth/session", &student, None).await;
    assert_eq!(session["must_change_password"], true);
    ok(
        api,
        Method::POST,
        change,
        &student,
        Some(json!({"current_password": generated, "new_password": "student-chosen-1"})),
    )
    .await;
    assert_eq!(
        call(api, Method::GET, "/api/v1/me", Some(&student), None)
            .await
            .0,
        200
    );
    let session = ok(api, Method::GET, "/api/v1/auth/session", &student, None).await;
    assert_eq!(session["must_change_password"], false);
    // Logout stays open under the gate too (checked on a fresh reset).
    ok(
        api,
        Method::POST,
        &format!("/api/v1/admin/players/{}/password-reset", student.player_id),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        call(
            api,
            Method::POST,
            "/api/v1/auth/logout",
            Some(&student),
            None
        )
        .await,
        (401, "SESSION_ENDED".into())
    );
}

/// One raw request, for the rate-limit headers.
async fn raw(api: &Api, method: Method, path: &str, s: &Session) -> reqwest::Response {
    reqwest::Client::new()
        .request(method, format!("{}{path}", api.base))
        .bearer_auth(&s.token)
        .header("X-Device-ID", &s.device_id)
        .header("Content-Type", "application/json")
        .body(r#"{"hearts": 3}"#)
        .send()
        .await
        .expect("request")
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[tokio::test]
async fn rate_limits_answer_429_with_headers_and_exempt_admins() {
    let app = TestApp::start().await;
    let student = app.school(STUDENT, "UTC").await;
    let admin = app.admin().await;
    let api = &app.api;

    for i in 0..60u32 {
        let r = raw(api, Method::GET, "/api/v1/wallet", &student).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-ratelimit-limit").as_deref(), Some("60"));
        assert_eq!(
            header(&r, "x-ratelimit-remaining"),
            Some((59 - i).to_string())
        );
    }
    // Wallet and progress reads share one bucket.
    let r = raw(api, Method::GET, "/api/v1/subjects/bas/progress", &student).await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after").as_deref(), Some("1"));
    assert_eq!(header(&r, "x-ratelimit-remaining").as_deref(), Some("0"));
    assert!(
        header(&r, "x-ratelimit-reset").is_some_and(|v| v.parse::<u64>().is_ok_and(|s| s >= 1))
    );
    let body: Value = r.json().await.expect("problem");
    assert_eq!(body["code"], "RATE_LIMITED");
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(
        raw(api, Method::GET, "/api/v1/wallet", &student)
            .await
            .status(),
        200
    );
    assert_eq!(
        raw(api, Method::GET, "/api/v1/wallet", &student)
            .await
            .status(),
        429
    );

    // Completions: 10 a minute, counted even when the lesson is unknown.
    for _ in 0..10 {
        assert_eq!(
            raw(
                api,
                Method::POST,
                "/api/v1/lessons/no-such-lesson/complete",
                &student
            )
            .await
            .status(),
            404
        );
    }
    let r = raw(
        api,
        Method::POST,
        "/api/v1/lessons/no-such-lesson/complete",
        &student,
    )
    .await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after").as_deref(), Some("6"));

    // Admins are exempt from all but login.
    for _ in 0..100 {
        let r = raw(api, Method::GET, "/api/v1/wallet", &admin).await;
        assert_eq!(r.status(), 200);
        assert!(header(&r, "x-ratelimit-limit").is_none());
    }

    // Login: 5 attempts a minute per account, whatever their outcome.
    let device = student.device_id.clone();
    for _ in 0..3 {
        assert_eq!(
            outcome(
                api.login(STUDENT, "wrong-password", &device)
                    .await
                    .map(|_| (200, Value::Null))
            ),
            (401, "INVALID_CREDENTIALS".into())
        );
    }
    // (school() logged the student in once; that was the first attempt.)
    assert_eq!(
        outcome(
            api.login(STUDENT, PASSWORD, &device)
                .await
                .map(|_| (200, Value::Null))
        )
        .0,
        200
    );
    assert_eq!(
        outcome(
            api.login("ANA@test.memora", PASSWORD, &device)
                .await
                .map(|_| (200, Value::Null))
        ),
        (429, "RATE_LIMITED".into())
    );
    app.clock.advance(Duration::from_secs(12));
    assert_eq!(
        outcome(
            api.login(STUDENT, PASSWORD, &device)
                .await
                .map(|_| (200, Value::Null))
        )
        .0,
        200
    );
}

#[tokio::test]
async fn login_is_limited_per_client_ip_and_limits_can_be_switched_off() {
    let app = TestApp::start_with(&[("MEMORA_RATE_LIMITS__LOGIN_PER_IP_PER_MINUTE", "8")]).await;
    let api = &app.api;
    let device = uuid(9);
    for i in 0..8 {
        let email = format!("nobody{i}@test.memora");
        assert_eq!(
            outcome(
                api.login(&email, PASSWORD, &device)
                    .await
                    .map(|_| (200, Value::Null))
            ),
            (401, "INVALID_CREDENTIALS".into())
        );
    }
    assert_eq!(
        outcome(
            api.login("someone-else@test.memora", PASSWORD, &device)
                .await
                .map(|_| (200, Value::Null))
        ),
        (429, "RATE_LIMITED".into())
    );

    let app = TestApp::start_with(&[("MEMORA_RATE_LIMITS__ENABLED", "false")]).await;
    let student = app.school(STUDENT, "UTC").await;
    for _ in 0..80 {
        let r = raw(&app.api, Method::GET, "/api/v1/wallet", &student).await;
        assert_eq!(r.status(), 200);
        assert!(header(&r, "x-ratelimit-limit").is_none());
    }
    for _ in 0..8 {
        app.api
            .login(ADMIN, PASSWORD, &device_id_for(ADMIN))
            .await
            .expect("unlimited logins");
    }
}

#[tokio::test]
async fn grants_and_xp_adjustments_are_journaled() {
    let mut app = TestApp::start().await;
    let student = app.school(STUDENT, "UTC").await;
    let admin = app.admin().await;
    let api = &app.api;
    let player = format!("/api/v1/admin/players/{}", student.player_id);

    let view = ok(
        api,
        Method::PUT,
        &format!("{player}/grants"),
        &admin,
        Some(json!({"grants": ["PREMIUM", "PREMIUM", "MATH-7"]})),
    )
    .await;
    assert_eq!(view["grants"], json!(["PREMIUM", "MATH-7"]));
    assert_eq!(
        call(
            api,
            Method::PUT,
            &format!("{player}/grants"),
            Some(&admin),
            Some(json!({"grants": [""]}))
        )
        .await
        .0,
        422
    );
    let xp = format!("{player}/xp");
    let adjusted = ok(
        api,
        Method::POST,
        &xp,
        &admin,
        Some(json!({"amount": 250, "reason": "Olympiad"})),
    )
    .await;
    assert_eq!(adjusted["total_xp"], 250);
    let adjusted = ok(
        api,
        Method::POST,
        &xp,
        &admin,
        Some(json!({"amount": -50, "reason": "Correction"})),
    )
    .await;
    assert_eq!(adjusted["total_xp"], 200);
    for body in [
        json!({"amount": 0, "reason": "x"}),
        json!({"amount": 100001, "reason": "x"}),
        json!({"amount": 5, "reason": ""}),
    ] {
        assert_eq!(
            call(api, Method::POST, &xp, Some(&admin), Some(body))
                .await
                .0,
            422
        );
    }
    assert_eq!(
        call(
            api,
            Method::POST,
            &xp,
            Some(&student),
            Some(json!({"amount": 5, "reason": "me"}))
        )
        .await,
        (403, "FORBIDDEN".into())
    );
    let wallet = ok(api, Method::GET, "/api/v1/wallet", &student, None).await;
    assert_eq!(wallet["total_xp"], 200);

    app.restart().await;
    let student = app
        .api
        .login(STUDENT, PASSWORD, &student.device_id)
        .await
        .expect("login");
    let wallet = ok(&app.api, Method::GET, "/api/v1/wallet", &student, None).await;
    assert_eq!(wallet["total_xp"], 200);
    let admin = app.admin().await;
    let view = ok(&app.api, Method::GET, &player, &admin, None).await;
    assert_eq!(view["grants"], json!(["PREMIUM", "MATH-7"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_and_tokens_never_reach_the_logs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server =
        block_in_place(|| Server::start(&tmp.path().join("data"), "[log]\nlevel = \"debug\"\n"));
    let api = Api::new(&server.url);
    let admin = api
        .login(
            crate::util::ADMIN_EMAIL,
            crate::util::ADMIN_PASSWORD,
            &uuid(1),
        )
        .await
        .expect("admin login");
    let secret = "s3cret-Password-that-must-not-leak";
    api.call(
        Method::POST,
        "/api/v1/admin/players",
        Some(&admin),
        Some(&json!({"email": "leak@test.local", "password": secret, "display_name": "Leak"})),
    )
    .await
    .expect("student");
    let _ = api
        .login("leak@test.local", "wrong-and-also-secret", &uuid(2))
        .await;
    let student = api
        .login("leak@test.local", secret, &uuid(2))
        .await
        .expect("login");
    ok(&api, Method::GET, "/api/v1/me", &student, None).await;
    ok(
        &api,
        Method::POST,
        "/api/v1/auth/password",
        &student,
        Some(json!({"current_password": secret, "new_password": "another-secret-99"})),
    )
    .await;
    ok(&api, Method::POST, "/api/v1/auth/logout", &student, None).await;

    let log = server.log_since(0);
    assert!(
        log.contains("answered"),
        "the request log is missing:\n{log}"
    );
    for needle in [
        secret,
        "wrong-and-also-secret",
        "another-secret-99",
        crate::util::ADMIN_PASSWORD,
        student.token.as_str(),
        admin.token.as_str(),
    ] {
        assert!(
            !log.contains(needle),
            "`{needle}` appears in the server log"
        );
    }
}
