//! The route-enumeration security test (issue 3): every route the OpenAPI document lists
//! — not a hand-kept copy — refuses, with the right status and stable code, a request
//! with no credentials, a bad token, an ended or replaced session, a student's missing
//! or unauthorized device, a caller who must change their password first, and a
//! student or teacher on admin routes; and neither a student nor a teacher can reach
//! the data of a student who is not theirs by id (404). Public routes are exempt by an explicit list, so a route that
//! becomes public must be named here. Every code seen must also be one the document
//! lists for that route and status.

use std::collections::HashMap;

use memora::http::openapi::Access;
use reqwest::Method;
use serde_json::{Value, json};

use crate::util::api::Session;
use crate::util::app::{PASSWORD, TestApp};
use crate::util::openapi::{Operation, document, operations};
use crate::util::{device_id_for, fixture, lesson_base_xp};

/// The public routes (api.md "Public"); documented routes without `security` must be
/// among them.
const PUBLIC: [(&str, &str); 7] = [
    ("POST", "/api/v1/auth/login"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/content/{path}"),
];

/// The routes open to a caller who must change their password (players.md).
const BEFORE_PASSWORD_CHANGE: [(&str, &str); 3] = [
    ("POST", "/api/v1/auth/password"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/auth/session"),
];

/// Path parameters of player routes that name catalog items every student shares:
/// nothing of another student can be reached through them.
const SHARED_PARAMS: [&str; 2] = ["subject_id", "lesson_id"];

/// How a request authenticates.
#[derive(Clone)]
enum Creds {
    None,
    /// `Authorization: Bearer <token>`, with `X-Device-ID` if given.
    Bearer(String, Option<String>),
}

impl Creds {
    fn of(s: &Session) -> Creds {
        Creds::Bearer(s.token.clone(), Some(s.device_id.clone()))
    }
}

/// One refusal to check on every route it applies to.
struct Case {
    name: &'static str,
    creds: Creds,
    applies: fn(&Operation) -> bool,
    expect: (u16, &'static str),
}

fn guarded(op: &Operation) -> bool {
    op.access != Access::Public
}

fn staff_only(op: &Operation) -> bool {
    op.access == Access::Staff
}

fn not_teacher(op: &Operation) -> bool {
    op.access == Access::Staff && !op.roles.iter().any(|r| r == "teacher")
}

fn gated_by_password_change(op: &Operation) -> bool {
    guarded(op)
        && !BEFORE_PASSWORD_CHANGE
            .iter()
            .any(|(m, p)| op.method.as_str() == *m && op.path == *p)
}

async fn send(app: &TestApp, op: &Operation, path: &str, creds: &Creds) -> (u16, String, String) {
    let mut req =
        reqwest::Client::new().request(op.method.clone(), format!("{}{path}", app.api.base));
    if let Creds::Bearer(token, device) = creds {
        req = req.bearer_auth(token);
        if let Some(device) = device {
            req = req.header("X-Device-ID", device);
        }
    }
    if let Some((ct, bytes)) = op.placeholder_body() {
        req = req.header("content-type", ct).body(bytes);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    let code = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, code, body)
}

async fn create(app: &TestApp, admin: &Session, body: Value) -> String {
    let (_, v) = app
        .api
        .call(
            Method::POST,
            "/api/v1/admin/players",
            Some(admin),
            Some(&body),
        )
        .await
        .unwrap_or_else(|e| panic!("create {body}: {e}"));
    v["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn every_documented_route_refuses_the_wrong_caller() {
    let app = TestApp::start().await;
    let api = &app.api;
    let admin = app.admin().await;
    // Students: `ana` is the caller, `ben` the other student whose ids must stay out
    // of reach; `cid` will have been replaced, `dan` logged out, `eve` must change her
    // password; `tom` is a teacher.
    let replaced = app.school("cid@test.memora", "UTC").await;
    let ana = app.school("ana@test.memora", "UTC").await;
    let _ = app
        .api
        .login(
            "cid@test.memora",
            PASSWORD,
            &device_id_for("cid@test.memora"),
        )
        .await
        .expect("second login replaces the first session");
    let mut others = HashMap::new();
    for (email, role) in [
        ("ben@test.memora", "student"),
        ("dan@test.memora", "student"),
        ("eve@test.memora", "student"),
        ("tom@test.memora", "teacher"),
    ] {
        let id = create(
            &app,
            &admin,
            json!({"email": email, "password": PASSWORD, "display_name": email, "plan_id": "school", "role": role}),
        )
        .await;
        let session = api
            .login(email, PASSWORD, &device_id_for(email))
            .await
            .unwrap_or_else(|e| panic!("login {email}: {e}"));
        others.insert(email, (id, session));
    }
    let ben = others["ben@test.memora"].1.clone();
    let ended = others["dan@test.memora"].1.clone();
    api.call(Method::POST, "/api/v1/auth/logout", Some(&ended), None)
        .await
        .expect("logout");
    let (eve_id, _) = &others["eve@test.memora"];
    let (_, reset) = api
        .call(
            Method::POST,
            &format!("/api/v1/admin/players/{eve_id}/password-reset"),
            Some(&admin),
            None,
        )
        .await
        .expect("password reset");
    let eve = api
        .login(
            "eve@test.memora",
            reset["password"].as_str().expect("password"),
            &device_id_for("eve@test.memora"),
        )
        .await
        .expect("login with the generated password");
    let teacher = others["tom@test.memora"].1.clone();

    let cases = [
        Case {
            name: "no credentials",
            creds: Creds::None,
            applies: guarded,
            expect: (401, "UNAUTHENTICATED"),
        },
        Case {
            name: "a bad token",
            creds: Creds::Bearer("f".repeat(64), Some(ana.device_id.clone())),
            applies: guarded,
            expect: (401, "UNAUTHENTICATED"),
        },
        Case {
            name: "a replaced session",
            creds: Creds::of(&replaced),
            applies: guarded,
            expect: (401, "SESSION_REPLACED"),
        },
        Case {
            name: "a logged-out session",
            creds: Creds::of(&ended),
            applies: guarded,
            expect: (401, "SESSION_ENDED"),
        },
        Case {
            name: "a student without X-Device-ID",
            creds: Creds::Bearer(ana.token.clone(), None),
            applies: guarded,
            expect: (400, "DEVICE_ID_REQUIRED"),
        },
        Case {
            name: "a student on an unauthorized device",
            creds: Creds::Bearer(
                ana.token.clone(),
                Some("00000000-0000-4000-8000-00000000dead".into()),
            ),
            applies: guarded,
            expect: (403, "DEVICE_NOT_AUTHORIZED"),
        },
        Case {
            name: "a student who must change the password",
            creds: Creds::of(&eve),
            applies: gated_by_password_change,
            expect: (403, "PASSWORD_CHANGE_REQUIRED"),
        },
        Case {
            name: "a student on an admin route",
            creds: Creds::of(&ana),
            applies: staff_only,
            expect: (403, "FORBIDDEN"),
        },
        Case {
            name: "a teacher on an admin-only route",
            creds: Creds::of(&teacher),
            applies: not_teacher,
            expect: (403, "FORBIDDEN"),
        },
    ];

    let doc = document(api).await;
    let ops = operations(&doc);
    // Plausible path values: the other student's ids where a player is named, so a
    // route that forgot its guard would act on a real record.
    let ben_id = others["ben@test.memora"].0.clone();
    let values: HashMap<String, String> = [
        ("id", ben_id.clone()),
        ("player_id", ben_id.clone()),
        ("device_id", ben.device_id.clone()),
        ("subject_id", "bas".to_owned()),
        (
            "lesson_id",
            lesson_base_xp(&fixture("basics.subject.json"))[0].0.clone(),
        ),
        ("path", "img/logo.png".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    let mut failures = Vec::new();
    let mut checked = 0;
    for op in &ops {
        if op.access == Access::Public {
            if !PUBLIC
                .iter()
                .any(|(m, p)| op.method.as_str() == *m && op.path == *p)
            {
                failures.push(format!(
                    "{} is documented as public but is not in PUBLIC",
                    op.label()
                ));
            }
            continue;
        }
        let path = op.fill(&values);
        for case in &cases {
            if !(case.applies)(op) {
                continue;
            }
            checked += 1;
            let (status, code, body) = send(&app, op, &path, &case.creds).await;
            if (status, code.as_str()) != case.expect {
                failures.push(format!(
                    "{} with {}: expected {} {}, got {status} {body}",
                    op.label(),
                    case.name,
                    case.expect.0,
                    case.expect.1
                ));
            } else if !op.codes(status).contains(&code) {
                failures.push(format!(
                    "{}: answers {status} {code} to {}, which the document does not list",
                    op.label(),
                    case.name
                ));
            }
        }
        // A teacher reads only the students of their groups (players.md): on a route
        // open to teachers that names a player, a student outside them is not found.
        if op.roles.iter().any(|r| r == "teacher")
            && op.path.starts_with("/api/v1/admin/players/{id}")
        {
            checked += 1;
            let (status, code, body) = send(&app, op, &path, &Creds::of(&teacher)).await;
            if (status, code.as_str()) != (404, "NOT_FOUND") {
                failures.push(format!(
                    "{} by a teacher for a student outside their groups: expected 404 NOT_FOUND, got {status} {body}",
                    op.label()
                ));
            }
        }
        // Another student's data by id: every path parameter of a player route is
        // either a shared catalog id or something the caller must own.
        if op.access == Access::Player {
            for name in &op.path_params {
                if SHARED_PARAMS.contains(&name.as_str()) {
                    continue;
                }
                match name.as_str() {
                    "player_id" | "device_id" => {
                        checked += 1;
                        let (status, code, body) = send(&app, op, &path, &Creds::of(&ana)).await;
                        if (status, code.as_str()) != (404, "NOT_FOUND") {
                            failures.push(format!(
                                "{} with another student's `{name}`: expected 404 NOT_FOUND, got {status} {body}",
                                op.label()
                            ));
                        }
                    }
                    other => failures.push(format!(
                        "{}: classify the path parameter `{other}` here (a shared catalog id, \
                         or an owned id checked for another student's value)",
                        op.label()
                    )),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every guarded route met at least the seven universal cases.
    let guarded_ops = ops.iter().filter(|o| guarded(o)).count();
    assert!(
        guarded_ops >= 35,
        "only {guarded_ops} guarded routes documented"
    );
    assert!(
        checked >= guarded_ops * 7,
        "{checked} checks for {guarded_ops} routes"
    );
    // Nothing above changed ana's or ben's data: their sessions still work.
    for s in [&ana, &ben] {
        api.call(Method::GET, "/api/v1/auth/session", Some(s), None)
            .await
            .expect("session intact");
    }
}

#[tokio::test]
async fn content_files_need_a_valid_session_when_configured() {
    let app = TestApp::start_with(&[("MEMORA_CONTENT__REQUIRE_AUTH", "true")]).await;
    let ana = app.school("ana@test.memora", "UTC").await;
    let doc = document(&app.api).await;
    let op = operations(&doc)
        .into_iter()
        .find(|o| o.path == "/content/{path}")
        .expect("content documented");
    let path = "/content/plans/school/manifest.json";
    let cases = [
        (Creds::None, (401, "UNAUTHENTICATED")),
        (
            Creds::Bearer("f".repeat(64), None),
            (401, "UNAUTHENTICATED"),
        ),
        (
            Creds::Bearer(ana.token.clone(), None),
            (400, "DEVICE_ID_REQUIRED"),
        ),
        (
            Creds::Bearer(
                ana.token.clone(),
                Some("00000000-0000-4000-8000-00000000dead".into()),
            ),
            (403, "DEVICE_NOT_AUTHORIZED"),
        ),
    ];
    for (creds, expect) in cases {
        let (status, code, body) = send(&app, &op, path, &creds).await;
        assert_eq!((status, code.as_str()), expect, "{body}");
        assert!(op.codes(status).contains(&code), "{code} not documented");
    }
    // With the session, the route answers (the file itself may not be built yet).
    let (status, code, body) = send(&app, &op, path, &Creds::of(&ana)).await;
    assert!(
        status == 200 || (status, code.as_str()) == (404, "NOT_FOUND"),
        "{status} {body}"
    );
}
