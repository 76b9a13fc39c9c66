//! Classes, teacher scoping and progress reports through HTTP (players.md "Classes",
//! api.md "classes" and "reports"): group CRUD and its validation, groups surviving
//! checkpoints and restarts, teachers reading only the students of their groups (404
//! outside, 403 on writes), staff holding several sessions with an idle timeout that a
//! restart does not reset, and the progress report (JSON pages and CSV) equal to what
//! the students' own routes read after a small workload.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::util::api::{Api, CallError, Session, str_field};
use crate::util::app::{ADMIN, PASSWORD, TestApp};
use crate::util::{device_id_for, fixture};

/// `(status, body or {"code": …})` of a call.
async fn call(
    api: &Api,
    method: Method,
    path: &str,
    s: Option<&Session>,
    body: Option<Value>,
) -> (u16, Value) {
    match api.call(method, path, s, body.as_ref()).await {
        Ok((status, v)) => (status, v),
        Err(CallError::Status { status, code, body }) => {
            let mut v: Value = serde_json::from_str(&body).unwrap_or(json!({}));
            v["code"] = json!(code);
            (status, v)
        }
        Err(e) => panic!("{e}"),
    }
}

async fn ok(api: &Api, method: Method, path: &str, s: &Session, body: Option<Value>) -> Value {
    let (status, v) = call(api, method.clone(), path, Some(s), body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {v}"
    );
    v
}

fn code(r: &(u16, Value)) -> (u16, &str) {
    (r.0, r.1["code"].as_str().unwrap_or(""))
}

fn pointers(v: &Value) -> Vec<String> {
    v["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| str_field(e, "pointer")).collect())
        .unwrap_or_default()
}

/// Imports the school fixtures (plan `school`: subjects `bas` and `chain`).
async fn content(app: &TestApp, admin: &Session) {
    for name in ["basics.subject.json", "chain.subject.json"] {
        app.api
            .put_subject(admin, &fixture(name))
            .await
            .expect("subject");
    }
    app.api
        .put_plan(admin, &fixture("school.plan.json"))
        .await
        .expect("plan");
}

/// Creates a player with `role` and returns its id.
async fn player(app: &TestApp, admin: &Session, email: &str, role: &str) -> String {
    let v = ok(
        &app.api,
        Method::POST,
        "/api/v1/admin/players",
        admin,
        Some(json!({"email": email, "password": PASSWORD, "display_name": email,
                    "role": role, "plan_id": if role == "student" { json!("school") } else { Value::Null },
                    "timezone": "UTC"})),
    )
    .await;
    str_field(&v, "id")
}

async fn login(app: &TestApp, email: &str) -> Session {
    app.api
        .login(email, PASSWORD, &device_id_for(email))
        .await
        .expect("login")
}

async fn new_group(
    app: &TestApp,
    admin: &Session,
    name: &str,
    students: &[&str],
    teachers: &[&str],
) -> String {
    let v = ok(
        &app.api,
        Method::POST,
        "/api/v1/admin/groups",
        admin,
        Some(json!({"name": name, "student_ids": students, "teacher_ids": teachers})),
    )
    .await;
    str_field(&v, "id")
}

fn ids(v: &Value, key: &str) -> Vec<String> {
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| str_field(i, key))
        .collect()
}

#[tokio::test]
async fn groups_are_validated_and_survive_checkpoints_and_restarts() {
    let mut app = TestApp::start().await;
    let admin = app.admin().await;
    content(&app, &admin).await;
    let ana = player(&app, &admin, "ana@test.memora", "student").await;
    let ben = player(&app, &admin, "ben@test.memora", "student").await;
    let tea = player(&app, &admin, "tea@test.memora", "teacher").await;
    let api = app.api.clone();

    // Created with its members; read back as created.
    let (status, g) = call(
        &api,
        Method::POST,
        "/api/v1/admin/groups",
        Some(&admin),
        Some(json!({"name": " 10 A ", "student_ids": [ana], "teacher_ids": [tea]})),
    )
    .await;
    assert_eq!(status, 201, "{g}");
    let g1 = str_field(&g, "id");
    assert!(g1.starts_with("g_"), "{g1}");
    assert_eq!(g["name"], "10 A");
    assert_eq!(g["student_ids"], json!([ana]));
    assert_eq!(g["teacher_ids"], json!([tea]));
    let read = ok(
        &api,
        Method::GET,
        &format!("/api/v1/admin/groups/{g1}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(read, g);

    // Every member problem is reported with its pointer, and nothing is created.
    let bad = call(
        &api,
        Method::POST,
        "/api/v1/admin/groups",
        Some(&admin),
        Some(
            json!({"name": "", "student_ids": [ana, tea, "p_nobody", ana],
                    "teacher_ids": [ben, "p_ghost"]}),
        ),
    )
    .await;
    assert_eq!(code(&bad), (422, "VALIDATION_FAILED"));
    assert_eq!(
        pointers(&bad.1),
        [
            "/name",
            "/student_ids/1",
            "/student_ids/2",
            "/student_ids/3",
            "/teacher_ids/0",
            "/teacher_ids/1"
        ]
    );
    let unknown_field = call(
        &api,
        Method::POST,
        "/api/v1/admin/groups",
        Some(&admin),
        Some(json!({"name": "x", "members": []})),
    )
    .await;
    assert_eq!(code(&unknown_field), (422, "VALIDATION_FAILED"));
    assert_eq!(
        code(
            &call(
                &api,
                Method::POST,
                "/api/v1/admin/groups",
                Some(&admin),
                Some(json!({"name": "10 a"}))
            )
            .await
        ),
        (409, "CONFLICT"),
        "names are unique regardless of case"
    );
    let list = ok(&api, Method::GET, "/api/v1/admin/groups", &admin, None).await;
    assert_eq!(ids(&list, "id"), [g1.as_str()]);

    // PATCH replaces the lists sent and checks only them.
    let patched = ok(
        &api,
        Method::PATCH,
        &format!("/api/v1/admin/groups/{g1}"),
        &admin,
        Some(json!({"student_ids": [ben, ana]})),
    )
    .await;
    assert_eq!(patched["student_ids"], json!([ben, ana]));
    assert_eq!(patched["teacher_ids"], json!([tea]));
    assert_eq!(patched["name"], "10 A");
    let bad_patch = call(
        &api,
        Method::PATCH,
        &format!("/api/v1/admin/groups/{g1}"),
        Some(&admin),
        Some(json!({"teacher_ids": [ana]})),
    )
    .await;
    assert_eq!(code(&bad_patch), (422, "VALIDATION_FAILED"));
    assert_eq!(pointers(&bad_patch.1), ["/teacher_ids/0"]);
    assert_eq!(
        code(
            &call(
                &api,
                Method::PATCH,
                "/api/v1/admin/groups/g_unknown",
                Some(&admin),
                Some(json!({"name": "x"}))
            )
            .await
        ),
        (404, "NOT_FOUND")
    );

    // g1 reaches redb through a checkpoint, g2 only the journal; both survive a restart.
    ok(&api, Method::POST, "/api/v1/admin/checkpoint", &admin, None).await;
    let g2 = new_group(&app, &admin, "10 B", &[&ana], &[]).await;
    app.restart().await;
    let admin = app.admin().await;
    let api = app.api.clone();
    let list = ok(&api, Method::GET, "/api/v1/admin/groups", &admin, None).await;
    let mut want = vec![g1.clone(), g2.clone()];
    want.sort();
    assert_eq!(ids(&list, "id"), want);
    let read = ok(
        &api,
        Method::GET,
        &format!("/api/v1/admin/groups/{g1}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(read, patched);

    // Pagination: one per page, in id order.
    let first = ok(
        &api,
        Method::GET,
        "/api/v1/admin/groups?limit=1",
        &admin,
        None,
    )
    .await;
    assert_eq!(ids(&first, "id"), [want[0].clone()]);
    let cursor = str_field(&first, "next_cursor");
    let second = ok(
        &api,
        Method::GET,
        &format!("/api/v1/admin/groups?limit=1&cursor={cursor}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(ids(&second, "id"), [want[1].clone()]);
    assert!(second["next_cursor"].is_null());

    // Deleted groups are gone after a checkpoint and a restart too.
    let (status, _) = call(
        &api,
        Method::DELETE,
        &format!("/api/v1/admin/groups/{g1}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 204);
    ok(&api, Method::POST, "/api/v1/admin/checkpoint", &admin, None).await;
    app.restart().await;
    let admin = app.admin().await;
    let list = ok(&app.api, Method::GET, "/api/v1/admin/groups", &admin, None).await;
    assert_eq!(ids(&list, "id"), [g2.as_str()]);
    assert_eq!(
        code(
            &call(
                &app.api,
                Method::GET,
                &format!("/api/v1/admin/groups/{g1}"),
                Some(&admin),
                None
            )
            .await
        ),
        (404, "NOT_FOUND")
    );
}

#[tokio::test]
async fn teachers_read_the_students_of_their_groups_and_nothing_else() {
    let app = TestApp::start().await;
    let admin = app.admin().await;
    content(&app, &admin).await;
    let ana = player(&app, &admin, "ana@test.memora", "student").await;
    let ben = player(&app, &admin, "ben@test.memora", "student").await;
    let tea_id = player(&app, &admin, "tea@test.memora", "teacher").await;
    let other_teacher = player(&app, &admin, "tom@test.memora", "teacher").await;
    let g1 = new_group(&app, &admin, "10 A", &[&ana], &[&tea_id]).await;
    let g2 = new_group(&app, &admin, "10 B", &[&ben], &[&other_teacher]).await;
    let student = login(&app, "ana@test.memora").await;
    let tea = login(&app, "tea@test.memora").await;
    let api = &app.api;
    ok(
        api,
        Method::POST,
        "/api/v1/admin/seasons",
        &admin,
        Some(
            json!({"id": "2026", "title": "2026", "start_date": "2026-09-01",
                    "end_date": "2027-06-30", "is_active": true}),
        ),
    )
    .await;

    // Reads about a student of the teacher's group are allowed.
    for path in [
        format!("/api/v1/admin/players/{ana}"),
        format!("/api/v1/admin/players/{ana}/devices"),
        format!("/api/v1/admin/players/{ana}/cards"),
    ] {
        let (status, v) = call(api, Method::GET, &path, Some(&tea), None).await;
        assert_eq!(status, 200, "{path}: {v}");
    }
    // A student outside their groups reads exactly like an unknown id: 404.
    for suffix in ["", "/devices", "/cards"] {
        let outside = call(
            api,
            Method::GET,
            &format!("/api/v1/admin/players/{ben}{suffix}"),
            Some(&tea),
            None,
        )
        .await;
        assert_eq!(code(&outside), (404, "NOT_FOUND"), "{suffix}");
        let unknown = call(
            api,
            Method::GET,
            &format!("/api/v1/admin/players/p_nobody{suffix}"),
            Some(&tea),
            None,
        )
        .await;
        assert_eq!(code(&unknown), (404, "NOT_FOUND"));
        assert_eq!(
            outside.1["detail"].as_str().map(|d| d.replace(&ben, "ID")),
            unknown.1["detail"]
                .as_str()
                .map(|d| d.replace("p_nobody", "ID")),
            "no existence oracle"
        );
        // Other staff accounts are not students of the group either.
        let staff = call(
            api,
            Method::GET,
            &format!("/api/v1/admin/players/{other_teacher}{suffix}"),
            Some(&tea),
            None,
        )
        .await;
        assert_eq!(code(&staff), (404, "NOT_FOUND"));
    }
    // Admins read everyone.
    ok(
        api,
        Method::GET,
        &format!("/api/v1/admin/players/{ben}"),
        &admin,
        None,
    )
    .await;

    // Read-only routes that are not about students are open to teachers.
    for path in [
        "/api/v1/admin/subjects/bas",
        "/api/v1/admin/plans/school",
        "/api/v1/admin/builds",
        "/api/v1/admin/seasons",
        "/api/v1/admin/seasons/2026",
    ] {
        let (status, v) = call(api, Method::GET, path, Some(&tea), None).await;
        assert_eq!(status, 200, "{path}: {v}");
    }
    // Jobs: only their own (a teacher starts none), else the 404 of an unknown job.
    assert_eq!(
        code(
            &call(
                api,
                Method::GET,
                "/api/v1/admin/jobs/job_x",
                Some(&tea),
                None
            )
            .await
        ),
        (404, "NOT_FOUND")
    );

    // Groups: a teacher lists and reads the groups they teach only.
    let list = ok(api, Method::GET, "/api/v1/admin/groups", &tea, None).await;
    assert_eq!(ids(&list, "id"), [g1.as_str()]);
    assert_eq!(
        code(
            &call(
                api,
                Method::GET,
                &format!("/api/v1/admin/groups/{g2}"),
                Some(&tea),
                None
            )
            .await
        ),
        (404, "NOT_FOUND")
    );

    // Every write stays admin-only, even about the teacher's own students.
    let writes: Vec<(Method, String, Value)> = vec![
        (
            Method::PUT,
            "/api/v1/admin/subjects/bas".into(),
            fixture("basics.subject.json"),
        ),
        (
            Method::DELETE,
            "/api/v1/admin/plans/school".into(),
            json!(null),
        ),
        (
            Method::POST,
            "/api/v1/admin/players".into(),
            json!({"email": "x@test.memora", "password": PASSWORD, "display_name": "x"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/players/{ana}"),
            json!({"display_name": "Changed"}),
        ),
        (
            Method::POST,
            format!("/api/v1/admin/players/{ana}/devices"),
            json!({"device_id": "00000000-0000-4000-8000-000000000009", "device_name": "Lab PC"}),
        ),
        (
            Method::POST,
            format!("/api/v1/admin/players/{ana}/logout"),
            json!(null),
        ),
        (
            Method::POST,
            format!("/api/v1/admin/players/{ana}/xp"),
            json!({"amount": 10, "reason": "bonus"}),
        ),
        (
            Method::POST,
            "/api/v1/admin/groups".into(),
            json!({"name": "Mine"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/groups/{g1}"),
            json!({"student_ids": [ana, ben]}),
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/groups/{g1}"),
            json!(null),
        ),
        (
            Method::POST,
            "/api/v1/admin/seasons".into(),
            json!({"id": "x", "title": "x", "start_date": "2026-01-01", "end_date": "2026-02-01"}),
        ),
        (Method::POST, "/api/v1/admin/checkpoint".into(), json!(null)),
    ];
    for (method, path, body) in &writes {
        let body = (!body.is_null()).then(|| body.clone());
        let r = call(api, method.clone(), path, Some(&tea), body).await;
        assert_eq!(code(&r), (403, "FORBIDDEN"), "{method} {path}");
    }
    let unchanged = ok(
        api,
        Method::GET,
        &format!("/api/v1/admin/groups/{g1}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(unchanged["student_ids"], json!([ana]));

    // Students get 403 on the staff reads.
    for path in [
        format!("/api/v1/admin/players/{ana}"),
        "/api/v1/admin/groups".to_string(),
        "/api/v1/admin/reports/progress".to_string(),
        "/api/v1/admin/subjects/bas".to_string(),
    ] {
        let r = call(api, Method::GET, &path, Some(&student), None).await;
        assert_eq!(code(&r), (403, "FORBIDDEN"), "{path}");
    }

    // Membership changes apply to the next request.
    ok(
        api,
        Method::PATCH,
        &format!("/api/v1/admin/groups/{g1}"),
        &admin,
        Some(json!({"student_ids": [ben]})),
    )
    .await;
    let r = call(
        api,
        Method::GET,
        &format!("/api/v1/admin/players/{ben}"),
        Some(&tea),
        None,
    )
    .await;
    assert_eq!(r.0, 200);
    let r = call(
        api,
        Method::GET,
        &format!("/api/v1/admin/players/{ana}"),
        Some(&tea),
        None,
    )
    .await;
    assert_eq!(code(&r), (404, "NOT_FOUND"));
    // A member promoted to teacher is no longer a student the teacher may read.
    ok(
        api,
        Method::PATCH,
        &format!("/api/v1/admin/players/{ben}"),
        &admin,
        Some(json!({"role": "teacher"})),
    )
    .await;
    let r = call(
        api,
        Method::GET,
        &format!("/api/v1/admin/players/{ben}"),
        Some(&tea),
        None,
    )
    .await;
    assert_eq!(code(&r), (404, "NOT_FOUND"));
}

/// A login without `X-Device-ID` (staff need none).
async fn staff_login(api: &Api, email: &str) -> Session {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", api.base))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["is_first_device"], false);
    Session {
        token: str_field(&v, "token"),
        player_id: str_field(&v, "player_id"),
        device_id: String::new(),
    }
}

/// `GET /api/v1/auth/session` without a device header: `(status, code)`.
async fn session_status(api: &Api, s: &Session) -> (u16, String) {
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/auth/session", api.base))
        .bearer_auth(&s.token)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap_or(json!({}));
    (status, str_field(&v, "code"))
}

#[tokio::test]
async fn staff_hold_several_sessions_that_expire_when_idle_even_across_restarts() {
    let mut app = TestApp::start().await;
    let admin = app.admin().await;
    content(&app, &admin).await;
    player(&app, &admin, "tea@test.memora", "teacher").await;
    player(&app, &admin, "ana@test.memora", "student").await;
    let hours = |h: u64| Duration::from_secs(h * 3600);

    // A teacher logs in from two browsers, without a device id; both sessions work.
    let browser1 = staff_login(&app.api, "tea@test.memora").await;
    let browser2 = staff_login(&app.api, "tea@test.memora").await;
    assert_eq!(
        session_status(&app.api, &browser1).await,
        (200, String::new())
    );
    assert_eq!(
        session_status(&app.api, &browser2).await,
        (200, String::new())
    );
    // A student's second login replaces the first.
    let first = login(&app, "ana@test.memora").await;
    let second = login(&app, "ana@test.memora").await;
    assert_eq!(me(&app.api, &second).await, 200);
    let replaced = call(&app.api, Method::GET, "/api/v1/me", Some(&first), None).await;
    assert_eq!(code(&replaced), (401, "SESSION_REPLACED"));
    // Students must send their device.
    let no_device = Session {
        device_id: String::new(),
        ..second.clone()
    };
    let r = call(&app.api, Method::GET, "/api/v1/me", Some(&no_device), None).await;
    assert_eq!(code(&r), (400, "DEVICE_ID_REQUIRED"));

    // Idle timeout (12 h by default): browser2 is kept alive, browser1 left idle.
    app.clock.advance(hours(11));
    assert_eq!(session_status(&app.api, &browser2).await.0, 200);
    app.clock.advance(hours(1) + Duration::from_secs(1));
    assert_eq!(
        session_status(&app.api, &browser1).await,
        (401, "SESSION_ENDED".into())
    );
    assert_eq!(session_status(&app.api, &browser2).await.0, 200);

    // A restart does not give idle sessions a fresh start: browser2 was last used just
    // before it; unused for 12 h after it, it has ended. A session used after the
    // restart keeps going.
    let admin_browser = staff_login(&app.api, ADMIN).await;
    app.restart().await;
    app.clock.advance(hours(6));
    assert_eq!(session_status(&app.api, &admin_browser).await.0, 200);
    app.clock.advance(hours(6) + Duration::from_secs(1));
    assert_eq!(
        session_status(&app.api, &browser2).await,
        (401, "SESSION_ENDED".into())
    );
    assert_eq!(session_status(&app.api, &admin_browser).await.0, 200);
    // Student sessions have no idle timeout by default.
    assert_eq!(me(&app.api, &second).await, 200);
}

async fn me(api: &Api, s: &Session) -> u16 {
    call(api, Method::GET, "/api/v1/me", Some(s), None).await.0
}

/// A report as JSON, following every page.
async fn report_pages(api: &Api, s: &Session, query: &str, limit: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor = String::new();
    loop {
        let path = format!(
            "/api/v1/admin/reports/progress?{query}&limit={limit}{}",
            if cursor.is_empty() {
                String::new()
            } else {
                format!("&cursor={cursor}")
            }
        );
        let v = ok(api, Method::GET, &path, s, None).await;
        let page = v["items"].as_array().expect("items").clone();
        assert!(page.len() <= limit);
        items.extend(page);
        match v["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => return items,
        }
    }
}

/// A report as CSV: status, content type and the parsed records (header first).
async fn report_csv(api: &Api, s: &Session, query: &str) -> (u16, String, Vec<Vec<String>>) {
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/admin/reports/progress?{query}",
            api.base
        ))
        .bearer_auth(&s.token)
        .header("Accept", "text/csv")
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = resp.bytes().await.expect("body");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body.as_ref());
    let records = reader
        .records()
        .map(|r| r.expect("csv record").iter().map(str::to_owned).collect())
        .collect();
    (status, ct, records)
}

/// What a student's own routes say, as the report should show it: passed and total
/// over `subjects`, the subjects' XP, and the wallet.
async fn expected_row(api: &Api, s: &Session, subjects: &[&str]) -> Value {
    let (mut passed, mut total, mut xp) = (0, 0, 0);
    for subject in subjects {
        let p = api.progress(s, subject).await.expect("progress");
        passed += p["passed_lessons"].as_i64().expect("passed");
        total += p["total_lessons"].as_i64().expect("total");
        xp += p["total_xp_earned"].as_i64().expect("xp");
    }
    let w = api.wallet(s).await.expect("wallet");
    json!({
        "player_id": s.player_id, "passed_lessons": passed, "total_lessons": total,
        "xp_earned": xp, "total_xp": w["total_xp"], "current_streak": w["current_streak"],
        "longest_streak": w["longest_streak"], "streak_at_risk": w["streak_at_risk"],
        "last_success_date": w["last_success_date"],
    })
}

/// The fields of `expected_row` taken from a report item, with the percentage checked.
fn comparable(item: &Value) -> Value {
    let passed = item["passed_lessons"].as_f64().expect("passed");
    let total = item["total_lessons"].as_f64().expect("total");
    let pct = if total == 0.0 {
        0.0
    } else {
        (passed / total * 10_000.0).round() / 100.0
    };
    assert_eq!(item["completion_percentage"].as_f64(), Some(pct), "{item}");
    let mut out = json!({});
    for key in [
        "player_id",
        "passed_lessons",
        "total_lessons",
        "xp_earned",
        "total_xp",
        "current_streak",
        "longest_streak",
        "streak_at_risk",
        "last_success_date",
    ] {
        out[key] = item[key].clone();
    }
    // `last_played_at` is left out: the students' own reads that build the expected row
    // move it (it follows every guarded request); the report's value is checked
    // against the completions separately.
    out
}

/// A JSON item rendered as the CSV would render it (strings as is, null as empty).
fn as_csv_record(item: &Value, header: &[String]) -> Vec<String> {
    header
        .iter()
        .map(|k| match &item[k.as_str()] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

#[tokio::test]
async fn progress_reports_match_what_students_read_as_json_and_csv() {
    let mut app = TestApp::start().await;
    let admin = app.admin().await;
    content(&app, &admin).await;
    let emails = ["ana@test.memora", "ben@test.memora", "cy@test.memora"];
    let mut students = Vec::new();
    for e in emails {
        player(&app, &admin, e, "student").await;
        students.push(login(&app, e).await);
    }
    let ids: Vec<&str> = students.iter().map(|s| s.player_id.as_str()).collect();
    player(&app, &admin, "tea@test.memora", "teacher").await;
    let tea = login(&app, "tea@test.memora").await;
    new_group(&app, &admin, "10 A", &[ids[0], ids[1]], &[&tea.player_id]).await;
    let g2 = new_group(&app, &admin, "10 B", &[ids[2]], &[]).await;
    // A display name a spreadsheet would run as a formula.
    ok(
        &app.api,
        Method::PATCH,
        &format!("/api/v1/admin/players/{}", ids[1]),
        &admin,
        Some(json!({"display_name": "=1+2"})),
    )
    .await;

    // Workload: ana plays on two days, ben once in each subject, cy never.
    for lesson in ["bas-l-001", "bas-l-002", "bas-l-003"] {
        app.api
            .complete(&students[0], lesson, 4)
            .await
            .expect("complete");
    }
    app.clock.advance(Duration::from_secs(24 * 3600));
    app.api
        .complete(&students[0], "bas-l-004", 5)
        .await
        .expect("complete");
    app.api
        .complete(&students[1], "bas-l-001", 3)
        .await
        .expect("complete");
    app.api
        .complete(&students[1], "ch-l-001", 2)
        .await
        .expect("complete");

    let check = |items: Vec<Value>, want: Vec<Value>| {
        let got: Vec<Value> = items.iter().map(comparable).collect();
        assert_eq!(got, want);
    };
    let mut sorted: Vec<usize> = (0..3).collect();
    sorted.sort_by_key(|&i| ids[i]);

    // Read as it stands, then after a missed day (the streak reads 0), and finally
    // after a restart (students then come from redb, not memory).
    for stage in ["now", "missed", "restarted"] {
        match stage {
            "missed" => app.clock.advance(Duration::from_secs(2 * 24 * 3600)),
            "restarted" => app.restart().await,
            _ => {}
        }
        let admin = app.admin().await;
        let tea = login(&app, "tea@test.memora").await;
        let api = app.api.clone();
        // The report first: reading the students' own routes loads them into memory.
        let all = report_pages(&api, &admin, "", 2).await;
        let bas_only = report_pages(&api, &admin, "subject_id=bas&plan_id=school", 50).await;
        let of_g2 = report_pages(&api, &admin, &format!("group_id={g2}"), 50).await;
        let teacher_view = report_pages(&api, &tea, "group_id=", 50).await;
        let (status, ct, csv) = report_csv(&api, &admin, "").await;
        let (_, _, teacher_csv) = report_csv(&api, &tea, "subject_id=chain").await;
        let mut sessions = Vec::new();
        for e in emails {
            sessions.push(login(&app, e).await);
        }
        let mut want_all = Vec::new();
        let mut want_bas = Vec::new();
        for &i in &sorted {
            want_all.push(expected_row(&api, &sessions[i], &["bas", "chain"]).await);
            want_bas.push(expected_row(&api, &sessions[i], &["bas"]).await);
        }
        if stage == "now" {
            assert_eq!(
                want_all[sorted.iter().position(|&i| i == 0).expect("ana")]["current_streak"],
                2
            );
        } else {
            assert_eq!(
                want_all[sorted.iter().position(|&i| i == 0).expect("ana")]["current_streak"],
                0
            );
        }
        check(all.clone(), want_all.clone());
        // Before any student read (first stage), who played has a last_played_at and cy,
        // who never did, none.
        for item in all.iter().filter(|_| stage == "now") {
            let played = item["total_xp"].as_i64().unwrap_or(0) > 0;
            assert_eq!(item["last_played_at"].is_string(), played, "{item}");
        }
        check(bas_only, want_bas);
        check(
            of_g2,
            vec![want_all[sorted.iter().position(|&i| i == 2).expect("cy")].clone()],
        );
        let in_g1: Vec<Value> = want_all
            .iter()
            .filter(|r| r["player_id"] == ids[0] || r["player_id"] == ids[1])
            .cloned()
            .collect();
        check(teacher_view, in_g1);

        // The CSV holds the same rows as the JSON, header first, formulas neutralized.
        assert_eq!((status, ct.as_str()), (200, "text/csv; charset=utf-8"));
        let header = csv[0].clone();
        let json_keys: Vec<String> = all[0]
            .as_object()
            .expect("object")
            .keys()
            .cloned()
            .collect();
        assert_eq!(header, json_keys);
        let mut want_csv: Vec<Vec<String>> = all
            .iter()
            .map(|item| as_csv_record(item, &header))
            .collect();
        let name_col = header
            .iter()
            .position(|h| h == "display_name")
            .expect("col");
        for rec in &mut want_csv {
            if rec[name_col] == "=1+2" {
                rec[name_col] = "'=1+2".into();
            }
        }
        assert_eq!(csv[1..].to_vec(), want_csv);
        assert!(csv.iter().any(|r| r[name_col] == "'=1+2"));
        // The teacher's CSV: their two students only, chain counted.
        let teacher_ids: Vec<&str> = teacher_csv[1..].iter().map(|r| r[0].as_str()).collect();
        let mut want_ids = vec![ids[0], ids[1]];
        want_ids.sort();
        assert_eq!(teacher_ids, want_ids);
        let total_col = header
            .iter()
            .position(|h| h == "total_lessons")
            .expect("col");
        let chain_total =
            api.progress(&sessions[0], "chain").await.expect("progress")["total_lessons"]
                .to_string();
        assert!(teacher_csv[1..].iter().all(|r| r[total_col] == chain_total));
    }

    // Filter problems.
    let admin = app.admin().await;
    let tea = login(&app, "tea@test.memora").await;
    let api = &app.api;
    let bad = call(
        api,
        Method::GET,
        "/api/v1/admin/reports/progress?plan_id=nope&subject_id=nope",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(code(&bad), (422, "VALIDATION_FAILED"));
    assert_eq!(pointers(&bad.1), ["/plan_id", "/subject_id"]);
    for query in ["group_id=g_unknown".to_string(), format!("group_id={g2}")] {
        let r = call(
            api,
            Method::GET,
            &format!("/api/v1/admin/reports/progress?{query}"),
            Some(&tea),
            None,
        )
        .await;
        assert_eq!(code(&r), (404, "NOT_FOUND"), "{query}");
    }
    let r = call(
        api,
        Method::GET,
        "/api/v1/admin/reports/progress?limit=0",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(pointers(&r.1), ["/limit"]);
    let r = call(
        api,
        Method::GET,
        "/api/v1/admin/reports/progress?sort=name",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(code(&r), (422, "VALIDATION_FAILED"));
    // A teacher without groups sees an empty report.
    player(&app, &admin, "tom@test.memora", "teacher").await;
    let tom = login(&app, "tom@test.memora").await;
    let v = ok(
        api,
        Method::GET,
        "/api/v1/admin/reports/progress",
        &tom,
        None,
    )
    .await;
    assert_eq!(v["items"], json!([]));
}
