//! HTTP tests against the real router on an ephemeral port with a temporary data dir and
//! a fake clock: content import, login and devices, progress, completion and XP, streaks,
//! bad input, and state surviving a restart.

use std::sync::Arc;

use memora::clock::FakeClock;
use memora::config::Config;
use memora::engine::Engine;
use memora::engine::accounts::NewPlayer;
use memora::players::account::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::util::api::{Api, CallError, Session};
use crate::util::{device_id_for, fixture};

const ADMIN: &str = "admin@test.memora";
const PASSWORD: &str = "password-1234";

/// A server running in this process.
pub(crate) struct TestApp {
    pub(crate) api: Api,
    pub(crate) clock: FakeClock,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    dir: tempfile::TempDir,
}

fn config(dir: &std::path::Path) -> Config {
    Config::load(
        None,
        [
            ("MEMORA_STORAGE__DATA_DIR", dir.to_str().expect("utf8 path")),
            ("MEMORA_HTTP__ADDR", "127.0.0.1:0"),
            ("MEMORA_AUTH__ARGON2_MEMORY_KIB", "64"),
            ("MEMORA_AUTH__ARGON2_ITERATIONS", "1"),
            ("MEMORA_LOG__LEVEL", "warn"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .expect("test config")
}

impl TestApp {
    pub(crate) async fn start() -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = FakeClock::new("2026-11-21T09:00:00Z".parse().expect("ts"));
        let mut app = TestApp {
            api: Api::new("http://127.0.0.1:1"),
            clock,
            stop: None,
            handle: None,
            dir,
        };
        app.boot(true).await;
        app
    }

    async fn boot(&mut self, first: bool) {
        let engine =
            Engine::open(config(self.dir.path()), Arc::new(self.clock.clone())).expect("engine");
        if first {
            engine
                .create_player(NewPlayer {
                    email: ADMIN.into(),
                    password: PASSWORD.into(),
                    display_name: "Admin".into(),
                    role: Some(Role::Admin),
                    plan_id: None,
                    grade: None,
                    stream: None,
                    timezone: None,
                    grants: vec![],
                })
                .await
                .expect("admin");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.handle = Some(tokio::spawn(memora::app::serve(
            engine,
            listener,
            async move {
                let _ = rx.await;
            },
        )));
        self.stop = Some(tx);
        self.api = Api::new(&format!("http://{addr}"));
    }

    /// Graceful shutdown then a fresh engine on the same data dir.
    pub(crate) async fn restart(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("join").expect("clean shutdown");
        }
        self.boot(false).await;
    }

    pub(crate) async fn admin(&self) -> Session {
        self.api
            .login(ADMIN, PASSWORD, &device_id_for(ADMIN))
            .await
            .expect("admin login")
    }

    /// Imports the fixtures (basics + chain + plan `school`) and creates a student.
    pub(crate) async fn school(&self, email: &str, tz: &str) -> Session {
        let admin = self.admin().await;
        for name in ["basics.subject.json", "chain.subject.json"] {
            let status = self
                .api
                .put_subject(&admin, &fixture(name))
                .await
                .expect("subject");
            assert!(status == 201 || status == 200);
        }
        self.api
            .put_plan(&admin, &fixture("school.plan.json"))
            .await
            .expect("plan");
        self.api
            .call(
                Method::POST,
                "/api/v1/admin/players",
                Some(&admin),
                Some(&json!({"email": email, "password": PASSWORD, "display_name": "Student", "plan_id": "school", "timezone": tz})),
            )
            .await
            .expect("student");
        self.api
            .login(email, PASSWORD, &device_id_for(email))
            .await
            .expect("student login")
    }
}

async fn complete(api: &Api, s: &Session, lesson: &str, hearts: i64) -> Result<Value, CallError> {
    api.call(
        Method::POST,
        &format!("/api/v1/lessons/{lesson}/complete"),
        Some(s),
        Some(&json!({ "hearts": hearts })),
    )
    .await
    .map(|(_, v)| v)
}

fn code(r: Result<Value, CallError>) -> (u16, String) {
    match r {
        Ok(v) => (200, format!("ok: {v}")),
        Err(CallError::Status { status, code, .. }) => (status, code),
        Err(e) => (0, e.to_string()),
    }
}

fn find<'a>(node: &'a Value, id: &str) -> Option<&'a Value> {
    if node["id"] == id {
        return Some(node);
    }
    node["children"]
        .as_array()?
        .iter()
        .find_map(|c| find(c, id))
}

#[tokio::test]
async fn content_import_validation_and_delete_rules() {
    let app = TestApp::start().await;
    let admin = app.admin().await;
    let doc = fixture("basics.subject.json");
    assert_eq!(app.api.put_subject(&admin, &doc).await.expect("put"), 201);
    assert_eq!(
        app.api.put_subject(&admin, &doc).await.expect("put again"),
        200
    );

    // A document with several problems reports all of them, and stores nothing.
    let mut bad = doc.clone();
    bad["id"] = json!("new-subject");
    bad["tracks"][0]["id"] = json!("bad id!");
    bad["tracks"][0]["units"][0]["topics"][0]["lessons"][0]["stages"] =
        json!([{"type": "question", "title": "no id"}]);
    bad["unknown_field"] = json!(1);
    let err = app
        .api
        .call(
            Method::PUT,
            "/api/v1/admin/subjects/new-subject",
            Some(&admin),
            Some(&bad),
        )
        .await
        .expect_err("invalid");
    let CallError::Status { status, code, body } = err else {
        panic!("transport")
    };
    assert_eq!((status, code.as_str()), (422, "VALIDATION_FAILED"));
    let problems: Value = serde_json::from_str(&body).expect("problem json");
    let pointers: Vec<&str> = problems["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["pointer"].as_str())
        .collect();
    assert!(pointers.len() >= 3, "{pointers:?}");
    assert!(pointers.contains(&"/tracks/0/id"), "{pointers:?}");
    let (status, _) = code_of(
        app.api
            .call(
                Method::GET,
                "/api/v1/admin/subjects/new-subject",
                Some(&admin),
                None,
            )
            .await,
    );
    assert_eq!(status, 404, "nothing stored");

    // The URL id must match the document id.
    let (status, _) = code_of(
        app.api
            .call(
                Method::PUT,
                "/api/v1/admin/subjects/other",
                Some(&admin),
                Some(&doc),
            )
            .await,
    );
    assert_eq!(status, 422);

    // A subject referenced by a plan cannot be deleted; a plan with students neither.
    app.api
        .put_subject(&admin, &fixture("chain.subject.json"))
        .await
        .expect("chain");
    app.api
        .put_plan(&admin, &fixture("school.plan.json"))
        .await
        .expect("plan");
    let (status, code) = code_of(
        app.api
            .call(
                Method::DELETE,
                "/api/v1/admin/subjects/bas",
                Some(&admin),
                None,
            )
            .await,
    );
    assert_eq!((status, code.as_str()), (409, "CONFLICT"));
    let (_, got) = app
        .api
        .call(
            Method::GET,
            "/api/v1/admin/plans/school",
            Some(&admin),
            None,
        )
        .await
        .expect("get plan");
    assert_eq!(got["id"], "school");
}

fn code_of(r: Result<(u16, Value), CallError>) -> (u16, String) {
    code(r.map(|(_, v)| v))
}

#[tokio::test]
async fn progress_completion_and_xp_rules() {
    let app = TestApp::start().await;
    let s = app.school("ana@test.memora", "UTC").await;

    let p = app.api.progress(&s, "bas").await.expect("progress");
    assert_eq!(p["subject_id"], "bas");
    assert_eq!(p["plan_id"], "school");
    assert_eq!(p["passed_lessons"], 0);
    // 30 lessons minus one unpublished (bas-l-011) and one hidden by the plan (bas-l-016).
    assert_eq!(p["total_lessons"], 28);
    assert_eq!(p["suggested_next_lesson_id"], "bas-l-001");
    assert_eq!(p["root"]["title"], "Basics for school", "rename override");
    assert!(
        find(&p["root"], "bas-l-016").is_none(),
        "hidden lesson absent"
    );
    assert_eq!(
        find(&p["root"], "bas-l-002").expect("lesson")["status"],
        "locked"
    );

    // First completion: base 10 + 3 hearts × 10.
    let r = complete(&app.api, &s, "bas-l-001", 3)
        .await
        .expect("complete");
    assert_eq!(r["is_first_completion"], true);
    assert_eq!(r["xp_earned"], 40);
    assert_eq!(r["new_total_xp"], 40);
    assert_eq!(r["streak"]["action"], "first_completion");
    assert_eq!(r["progress"]["suggested_next_lesson_id"], "bas-l-002");
    // Replays: fewer hearts earn nothing, more hearts earn the difference only.
    let r = complete(&app.api, &s, "bas-l-001", 2)
        .await
        .expect("replay");
    assert_eq!(
        (r["xp_earned"].as_i64(), r["is_new_record"].as_bool()),
        (Some(0), Some(false))
    );
    let r = complete(&app.api, &s, "bas-l-001", 5)
        .await
        .expect("record");
    assert_eq!(
        (r["xp_earned"].as_i64(), r["best_hearts"].as_i64()),
        (Some(20), Some(5))
    );
    assert_eq!(r["new_total_xp"], 60);

    // Errors, in the spec's order.
    assert_eq!(
        code(complete(&app.api, &s, "bas-l-003", 3).await),
        (409, "NOT_UNLOCKED".into())
    );
    assert_eq!(
        code(complete(&app.api, &s, "bas-l-002", 0).await),
        (422, "NO_HEARTS".into())
    );
    assert_eq!(
        code(complete(&app.api, &s, "bas-l-002", 6).await).1,
        "VALIDATION_FAILED"
    );
    assert_eq!(
        code(complete(&app.api, &s, "nope", 3).await),
        (404, "INVALID_LESSON".into())
    );
    assert_eq!(
        code(complete(&app.api, &s, "bas-l-016", 3).await),
        (404, "INVALID_LESSON".into())
    );
    let (status, code_) = code(app.api.progress(&s, "nope").await);
    assert_eq!((status, code_.as_str()), (404, "INVALID_SUBJECT"));

    let w = app.api.wallet(&s).await.expect("wallet");
    assert_eq!(w["total_xp"], 60);
    assert_eq!(w["current_streak"], 1);
    let p = app.api.progress(&s, "bas").await.expect("progress");
    assert_eq!(p["passed_lessons"], 1);
    assert_eq!(p["total_xp_earned"], 60);
    assert_eq!(
        find(&p["root"], "bas-l-001").expect("lesson")["best_hearts"],
        5
    );
    assert_eq!(
        find(&p["root"], "bas-l-002").expect("lesson")["status"],
        "unlocked"
    );
}

#[tokio::test]
async fn streaks_follow_the_students_calendar() {
    let app = TestApp::start().await;
    // 09:00 UTC on 2026-11-21 is already 2026-11-21 23:00 in Kiritimati (UTC+14).
    let s = app.school("kiri@test.memora", "Pacific/Kiritimati").await;
    let r = complete(&app.api, &s, "bas-l-001", 3).await.expect("day 1");
    assert_eq!(r["streak"]["last_success_date"], "2026-11-21");
    // Two hours later it is the next day there.
    app.clock.advance(std::time::Duration::from_secs(2 * 3600));
    let r = complete(&app.api, &s, "bas-l-002", 3).await.expect("day 2");
    assert_eq!(
        (
            r["streak"]["action"].as_str(),
            r["streak"]["new_streak"].as_i64()
        ),
        (Some("incremented"), Some(2))
    );
    // Three days later the streak reads 0 until the next success, which resets it to 1.
    app.clock
        .advance(std::time::Duration::from_secs(3 * 86_400));
    let w = app.api.wallet(&s).await.expect("wallet");
    assert_eq!(
        (w["current_streak"].as_i64(), w["longest_streak"].as_i64()),
        (Some(0), Some(2))
    );
    let r = complete(&app.api, &s, "bas-l-003", 3)
        .await
        .expect("after a gap");
    assert_eq!(
        (
            r["streak"]["action"].as_str(),
            r["streak"]["new_streak"].as_i64()
        ),
        (Some("reset"), Some(1))
    );
}

#[tokio::test]
async fn sessions_devices_and_roles() {
    let app = TestApp::start().await;
    let s = app.school("dev@test.memora", "UTC").await;
    let none = Session {
        token: String::new(),
        device_id: s.device_id.clone(),
        player_id: String::new(),
    };
    assert_eq!(
        code(app.api.wallet(&none).await),
        (401, "UNAUTHENTICATED".into())
    );
    let no_device = Session {
        device_id: String::new(),
        ..s.clone()
    };
    assert_eq!(
        code(app.api.wallet(&no_device).await),
        (400, "DEVICE_ID_REQUIRED".into())
    );
    let other_device = Session {
        device_id: uuid::Uuid::new_v4().to_string(),
        ..s.clone()
    };
    assert_eq!(
        code(app.api.wallet(&other_device).await),
        (403, "DEVICE_NOT_AUTHORIZED".into())
    );
    // A login from an unknown second device is refused; from the same device it replaces.
    let err = app
        .api
        .login(
            "dev@test.memora",
            PASSWORD,
            &uuid::Uuid::new_v4().to_string(),
        )
        .await
        .expect_err("second device");
    assert_eq!(err.code(), Some("DEVICE_NOT_AUTHORIZED"));
    let s2 = app
        .api
        .login("dev@test.memora", PASSWORD, &s.device_id)
        .await
        .expect("relogin");
    assert_eq!(
        code(app.api.wallet(&s).await),
        (401, "SESSION_REPLACED".into())
    );
    assert!(app.api.wallet(&s2).await.is_ok());
    // Students are not admins; wrong passwords and unknown emails look the same.
    assert_eq!(
        code_of(
            app.api
                .call(
                    Method::POST,
                    "/api/v1/admin/players",
                    Some(&s2),
                    Some(&json!({}))
                )
                .await
        ),
        (403, "FORBIDDEN".into())
    );
    let a = app
        .api
        .login("dev@test.memora", "wrong-password", &s.device_id)
        .await
        .expect_err("bad pw");
    let b = app
        .api
        .login("nobody@test.memora", "wrong-password", &s.device_id)
        .await
        .expect_err("no user");
    assert_eq!(
        (a.code(), b.code()),
        (Some("INVALID_CREDENTIALS"), Some("INVALID_CREDENTIALS"))
    );
    // Logout ends the session.
    app.api
        .call(Method::POST, "/api/v1/auth/logout", Some(&s2), None)
        .await
        .expect("logout");
    assert_eq!(
        code(app.api.wallet(&s2).await),
        (401, "SESSION_ENDED".into())
    );
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx() {
    let app = TestApp::start().await;
    let s = app.school("bad@test.memora", "UTC").await;
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/lessons/bas-l-001/complete", app.api.base);
    let send = |body: Vec<u8>, ct: &'static str| {
        client
            .post(&url)
            .bearer_auth(&s.token)
            .header("x-device-id", &s.device_id)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let r = send(b"{".to_vec(), "application/json").await.expect("send");
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = send(br#"{"hearts": 3, "bonus": 1}"#.to_vec(), "application/json")
        .await
        .expect("send");
    assert_eq!(r.status(), 422);
    let r = send(br#"{"hearts": "three"}"#.to_vec(), "application/json")
        .await
        .expect("send");
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["errors"][0]["pointer"], "/hearts");
    let r = send(br#"{"hearts": 3}"#.to_vec(), "text/plain")
        .await
        .expect("send");
    assert_eq!(r.status(), 415);
    let r = send(vec![b' '; 2 * 1024 * 1024], "application/json")
        .await
        .expect("send");
    assert_eq!(r.status(), 413);
    for path in [
        "/api/v1/lessons/..%2F..%2Fetc/complete",
        "/api/v1/lessons/%00/complete",
    ] {
        let r = client
            .post(format!("{}{path}", app.api.base))
            .bearer_auth(&s.token)
            .header("x-device-id", &s.device_id)
            .json(&json!({"hearts": 3}))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 404, "{path}");
    }
    // Nothing of that changed the student's state.
    let p = app.api.progress(&s, "bas").await.expect("progress");
    assert_eq!(p["passed_lessons"], 0);
    assert_eq!(app.api.status_of("/no/such/route").await, 404);
}

#[tokio::test]
async fn state_survives_a_restart() {
    let mut app = TestApp::start().await;
    let s = app.school("keep@test.memora", "UTC").await;
    for lesson in ["bas-l-001", "bas-l-002", "bas-l-003"] {
        complete(&app.api, &s, lesson, 4).await.expect("complete");
    }
    app.restart().await;
    // The session, the progress and the wallet are all back.
    let p = app
        .api
        .progress(&s, "bas")
        .await
        .expect("progress after restart");
    assert_eq!(p["passed_lessons"], 3);
    assert_eq!(app.api.wallet(&s).await.expect("wallet")["total_xp"], 150);
    assert_eq!(app.api.status_of("/readyz").await, 200);
}
