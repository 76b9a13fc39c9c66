//! Roster imports through HTTP and the CLI (players.md, api.md): the dry run reports
//! and changes nothing; the commit applies every row or none as a background job;
//! generated passwords are shown once to the admin who started it and must be changed;
//! idempotent replays; the commit's differences from its dry run; `memora admin
//! import-roster`. Also two login properties of issue 3: unknown emails and wrong
//! passwords take similar time, and no password or token reaches the logs.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::task::block_in_place;

use crate::util::api::{Api, CallError, Session};
use crate::util::app::{PASSWORD, TestApp};
use crate::util::{Server, device_id_for, memora};

const IMPORT: &str = "/api/v1/admin/players/import";

/// `POST /api/v1/admin/players/import[?commit=true]` with a CSV body.
async fn post_csv(
    api: &Api,
    s: &Session,
    csv: &str,
    commit: bool,
    key: Option<&str>,
) -> (u16, Value) {
    let query = if commit { "?commit=true" } else { "" };
    let mut req = reqwest::Client::new()
        .post(format!("{}{IMPORT}{query}", api.base))
        .bearer_auth(&s.token)
        .header("X-Device-ID", &s.device_id)
        .header("Content-Type", "text/csv")
        .body(csv.to_owned());
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    let resp = req.send().await.expect("send roster");
    let status = resp.status().as_u16();
    let body = resp.bytes().await.expect("roster answer");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn get(api: &Api, s: &Session, path: &str) -> Value {
    match api.call(Method::GET, path, Some(s), None).await {
        Ok((_, v)) => v,
        Err(e) => panic!("GET {path}: {e}"),
    }
}

/// Polls a job as `s` until it is done or failed (the first finished read is returned:
/// for its owner, that is the read that shows generated passwords).
async fn finished(api: &Api, s: &Session, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = get(api, s, &format!("/api/v1/admin/jobs/{id}")).await;
        if view["state"] == "done" || view["state"] == "failed" {
            return view;
        }
        assert!(Instant::now() < deadline, "job {id} did not finish: {view}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn second_admin(app: &TestApp) -> Session {
    let admin = app.admin().await;
    app.api
        .call(
            Method::POST,
            "/api/v1/admin/players",
            Some(&admin),
            Some(
                &json!({"email": "other-admin@test.memora", "password": PASSWORD,
                "display_name": "Other", "role": "admin"}),
            ),
        )
        .await
        .expect("second admin");
    app.api
        .login("other-admin@test.memora", PASSWORD, &device_id_for("x"))
        .await
        .expect("second admin login")
}

fn code(r: Result<(u16, Value), CallError>) -> (u16, String) {
    match r {
        Ok((status, _)) => (status, String::new()),
        Err(CallError::Status { status, code, .. }) => (status, code),
        Err(e) => panic!("transport: {e}"),
    }
}

#[tokio::test]
async fn a_dry_run_reports_every_row_and_changes_nothing() {
    let app = TestApp::start().await;
    let bo = app.school("bo@test.memora", "UTC").await;
    let admin = app.admin().await;
    let csv = "email,display_name,plan_id,grade,timezone,password\n\
               ana@test.memora,Ana,school,7,Europe/Paris,\n\
               BO@test.memora,Bo,SCHOOL,8,,\n\
               cy@test.memora,Cy,nope,7,Mars/Base,short\n\
               Ana@Test.memora,Ana again,,,,\n";
    let (status, report) = post_csv(&app.api, &admin, csv, false, None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["commit"], false);
    assert_eq!(
        report["summary"],
        json!({"rows": 4, "create": 1, "update": 1, "unchanged": 0, "error_rows": 2})
    );
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows[0]["action"], "create");
    assert_eq!(rows[0]["email"], "ana@test.memora");
    assert_eq!(rows[0]["password"], "generated");
    assert_eq!(rows[1]["action"], "update");
    assert_eq!(rows[1]["player_id"], json!(bo.player_id));
    assert_eq!(rows[1]["password"], "kept");
    let changed: Vec<&str> = rows[1]["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["field"].as_str().expect("field"))
        .collect();
    assert_eq!(changed, ["display_name", "grade"], "{report}");
    assert_eq!(rows[1]["changes"][1]["to"], "8");
    assert_eq!(rows[2]["action"], "error");
    assert_eq!(rows[3]["action"], "error");
    let mut problems: Vec<(i64, String)> = report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["row"].as_i64().expect("row"),
                e["column"].as_str().expect("column").to_owned(),
            )
        })
        .collect();
    problems.sort();
    assert_eq!(
        problems,
        [
            (4, "password".into()),
            (4, "plan_id".into()),
            (4, "timezone".into()),
            (5, "email".into())
        ]
    );

    // Nothing changed: the student keeps their fields, nobody new can log in.
    let view = get(
        &app.api,
        &admin,
        &format!("/api/v1/admin/players/{}", bo.player_id),
    )
    .await;
    assert_eq!(view["display_name"], "Student");
    assert_eq!(view["grade"], Value::Null);
    let err = app
        .api
        .login("ana@test.memora", PASSWORD, &device_id_for("ana"))
        .await
        .expect_err("not created");
    assert_eq!(err.code(), Some("INVALID_CREDENTIALS"));
    assert!(
        app.api.wallet(&bo).await.is_ok(),
        "the student's session ended"
    );

    // Only admins, only CSV.
    let (status, body) = post_csv(&app.api, &bo, csv, false, None).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("FORBIDDEN")));
    let wrong = app
        .api
        .call(
            Method::POST,
            IMPORT,
            Some(&admin),
            Some(&json!({"rows": []})),
        )
        .await;
    assert_eq!(code(wrong), (415, "VALIDATION_FAILED".into()));
}

#[tokio::test]
async fn a_commit_applies_every_row_or_none_as_a_job() {
    let app = TestApp::start().await;
    let _ = app.school("bo@test.memora", "UTC").await;
    let admin = app.admin().await;
    let bad = "email,display_name,plan_id,password\n\
               ana@test.memora,Ana,school,ana-password-1\n\
               cy@test.memora,Cy,school,cy-password-1\n\
               dee@test.memora,Dee,no-such-plan,dee-password-1\n";
    let (status, problem) = post_csv(&app.api, &admin, bad, true, None).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "VALIDATION_FAILED");
    assert_eq!(problem["errors"][0]["pointer"], "/rows/4/plan_id");
    for (email, pw) in [
        ("ana@test.memora", "ana-password-1"),
        ("cy@test.memora", "cy-password-1"),
    ] {
        let err = app
            .api
            .login(email, pw, &device_id_for(email))
            .await
            .expect_err("one bad row: nothing applied");
        assert_eq!(err.code(), Some("INVALID_CREDENTIALS"));
    }

    let good = bad.replace("no-such-plan", "school");
    let (status, accepted) = post_csv(&app.api, &admin, &good, true, None).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["job_id"].as_str().expect("job_id").to_owned();
    assert_eq!(accepted["id"], json!(id));
    assert_eq!(accepted["kind"], "roster_import");
    let job = finished(&app.api, &admin, &id).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["progress"], json!({"done": 3, "total": 3}));
    assert!(job["started_at"].is_string() && job["finished_at"].is_string());
    let result = &job["result"];
    assert_eq!(result["commit"], true);
    assert_eq!(result["summary"]["create"], 3);
    assert_eq!(result["generated_passwords"], json!([]));
    let dee_id = result["rows"][2]["player_id"].as_str().expect("new id");
    let dee = app
        .api
        .login("dee@test.memora", "dee-password-1", &device_id_for("dee"))
        .await
        .expect("created with the given password");
    assert_eq!(dee.player_id, dee_id);
    let me = get(&app.api, &dee, "/api/v1/me").await;
    assert_eq!(me["player"]["plan_id"], "school");
    assert_eq!(me["player"]["role"], "student");

    // The state survives a restart (journal and checkpoint).
    let mut app = app;
    app.restart().await;
    assert!(
        app.api
            .login("cy@test.memora", "cy-password-1", &device_id_for("cy"))
            .await
            .is_ok()
    );
    let admin = app.admin().await;
    let gone = app
        .api
        .call(
            Method::GET,
            "/api/v1/admin/jobs/job_unknown",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(code(gone), (404, "NOT_FOUND".into()));
}

/// The `admin_action` records about `player` (newest first).
async fn admin_actions(api: &Api, admin: &Session, player: &str) -> Vec<Value> {
    let page = get(
        api,
        admin,
        &format!("/api/v1/admin/audit?player_id={player}&type=admin_action"),
    )
    .await;
    page["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_commit_is_audited_and_imported_students_are_exported_and_erased_like_others() {
    let app = TestApp::start().await;
    let bo = app.school("bo@test.memora", "UTC").await;
    let admin = app.admin().await;
    let csv = "email,display_name,grade,password\n\
               ana@test.memora,Ana,7,ana-password-1\n\
               bo@test.memora,Student,9,\n";
    let (status, accepted) = post_csv(&app.api, &admin, csv, true, None).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["job_id"].as_str().expect("job_id").to_owned();
    let job = finished(&app.api, &admin, &id).await;
    assert_eq!(job["state"], "done", "{job}");
    let ana_id = job["result"]["rows"][0]["player_id"]
        .as_str()
        .expect("new id")
        .to_owned();

    // One record per student the import touched, journaled with it, naming the admin
    // and the request; and one of the import itself.
    let about_ana = admin_actions(&app.api, &admin, &ana_id).await;
    let created: Vec<&Value> = about_ana
        .iter()
        .filter(|r| r["detail"]["action"] == "roster_create")
        .collect();
    assert_eq!(created.len(), 1, "{about_ana:?}");
    assert_eq!(created[0]["actor_id"], json!(admin.player_id));
    assert_eq!(created[0]["endpoint"], "POST /api/v1/admin/players/import");
    assert_eq!(created[0]["detail"]["row"], "2");
    assert_eq!(created[0]["result"], "ok");
    let about_bo = admin_actions(&app.api, &admin, &bo.player_id).await;
    let updated: Vec<&Value> = about_bo
        .iter()
        .filter(|r| r["detail"]["action"] == "roster_update")
        .collect();
    assert_eq!(updated.len(), 1, "{about_bo:?}");
    assert_eq!(updated[0]["detail"]["fields"], "grade");
    let by_admin = admin_actions(&app.api, &admin, &admin.player_id).await;
    let import = by_admin
        .iter()
        .find(|r| r["detail"]["action"] == "roster_import")
        .expect("the import's record");
    assert_eq!(
        (
            &import["detail"]["rows"],
            &import["detail"]["created"],
            &import["detail"]["updated"]
        ),
        (&json!("2"), &json!("1"), &json!("1"))
    );

    // A commit that applies nothing is audited with its code.
    let bad = "email,display_name\nbo@test.memora,\n";
    let (status, _) = post_csv(&app.api, &admin, bad, true, None).await;
    assert_eq!(status, 422);
    let refused = admin_actions(&app.api, &admin, &admin.player_id).await;
    assert!(
        refused.iter().any(|r| r["result"] == "VALIDATION_FAILED"
            && r["endpoint"] == "POST /api/v1/admin/players/import"),
        "{refused:?}"
    );

    // An imported student is an ordinary player: exported with the import's record...
    let export = get(
        &app.api,
        &admin,
        &format!("/api/v1/admin/players/{ana_id}/export"),
    )
    .await;
    assert_eq!(export["player"]["email"], "ana@test.memora");
    assert_eq!(export["player"]["grade"], "7");
    assert!(
        export["audit"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["detail"]["action"] == "roster_create"),
        "{export}"
    );
    // ... and erased: the login stops working, the records no longer name them, and the
    // email is free for the next roster.
    let (status, erased) = app
        .api
        .call(
            Method::DELETE,
            &format!("/api/v1/admin/players/{ana_id}"),
            Some(&admin),
            None,
        )
        .await
        .expect("erase");
    assert_eq!((status, &erased["erased"]), (200, &json!(true)));
    let (status, err) = code(
        app.api
            .call(
                Method::GET,
                &format!("/api/v1/admin/players/{ana_id}"),
                Some(&admin),
                None,
            )
            .await,
    );
    assert_eq!((status, err.as_str()), (404, "NOT_FOUND"));
    let err = app
        .api
        .login("ana@test.memora", "ana-password-1", &device_id_for("ana"))
        .await
        .expect_err("erased");
    assert_eq!(err.code(), Some("INVALID_CREDENTIALS"));
    assert!(admin_actions(&app.api, &admin, &ana_id).await.is_empty());
    let (status, report) = post_csv(&app.api, &admin, csv, false, None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rows"][0]["action"], "create", "{report}");
}

#[tokio::test]
async fn generated_passwords_are_shown_once_to_their_admin_and_must_be_changed() {
    let app = TestApp::start().await;
    let bo = app.school("bo@test.memora", "UTC").await;
    let owner = app.admin().await;
    let other = second_admin(&app).await;
    let csv = "email,display_name,password,reset_password\n\
               ana@test.memora,Ana,,\n\
               bo@test.memora,Student,,yes\n\
               cy@test.memora,Cy,cy-password-1,\n";
    let (status, accepted) = post_csv(&app.api, &owner, csv, true, None).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["job_id"].as_str().expect("job id");
    // Another admin sees the finished job with the passwords redacted…
    let seen_by_other = finished(&app.api, &other, id).await;
    assert_eq!(seen_by_other["state"], "done");
    let redacted = &seen_by_other["result"]["generated_passwords"];
    assert_eq!(
        redacted.as_array().map(Vec::len),
        Some(2),
        "{seen_by_other}"
    );
    assert!(
        redacted
            .as_array()
            .expect("list")
            .iter()
            .all(|g| g["password"] == "[redacted]")
    );
    assert_eq!(seen_by_other["result"]["passwords_redacted"], true);
    // …the owner sees them once…
    let first = get(&app.api, &owner, &format!("/api/v1/admin/jobs/{id}")).await;
    assert_eq!(first["result"]["passwords_redacted"], false);
    let generated = first["result"]["generated_passwords"]
        .as_array()
        .expect("list")
        .clone();
    assert_eq!(generated.len(), 2);
    let password_of = |email: &str| {
        generated
            .iter()
            .find(|g| g["email"] == email)
            .and_then(|g| g["password"].as_str())
            .expect("generated password")
            .to_owned()
    };
    let (ana_pw, bo_pw) = (
        password_of("ana@test.memora"),
        password_of("bo@test.memora"),
    );
    assert!(ana_pw.len() >= 12 && ana_pw != bo_pw);
    // …and never again.
    let again = get(&app.api, &owner, &format!("/api/v1/admin/jobs/{id}")).await;
    assert_eq!(
        again["result"]["generated_passwords"][0]["password"],
        "[redacted]"
    );

    // A reset ends the student's session at once, like an admin password reset.
    assert_eq!(
        code(
            app.api
                .call(Method::GET, "/api/v1/wallet", Some(&bo), None)
                .await
        ),
        (401, "SESSION_ENDED".into())
    );
    let err = app
        .api
        .login("bo@test.memora", PASSWORD, &bo.device_id)
        .await
        .expect_err("old password");
    assert_eq!(err.code(), Some("INVALID_CREDENTIALS"));

    // Generated passwords must be changed before anything else.
    let ana = app
        .api
        .login("ana@test.memora", &ana_pw, &device_id_for("ana"))
        .await
        .expect("generated password works");
    let session = get(&app.api, &ana, "/api/v1/auth/session").await;
    assert_eq!(session["must_change_password"], true);
    for path in ["/api/v1/me", "/api/v1/wallet"] {
        assert_eq!(
            code(app.api.call(Method::GET, path, Some(&ana), None).await),
            (403, "PASSWORD_CHANGE_REQUIRED".into()),
            "{path}"
        );
    }
    app.api
        .call(
            Method::POST,
            "/api/v1/auth/password",
            Some(&ana),
            Some(&json!({"current_password": ana_pw, "new_password": "my-own-password-1"})),
        )
        .await
        .expect("change password");
    assert!(app.api.me(&ana).await.is_ok());
    let bo = app
        .api
        .login("bo@test.memora", &bo_pw, &bo.device_id)
        .await
        .expect("reset password works");
    assert_eq!(
        code(
            app.api
                .call(Method::GET, "/api/v1/me", Some(&bo), None)
                .await
        ),
        (403, "PASSWORD_CHANGE_REQUIRED".into())
    );
    // A password given in the file is the student's own: no change required.
    let cy = app
        .api
        .login("cy@test.memora", "cy-password-1", &device_id_for("cy"))
        .await
        .expect("given password");
    assert!(app.api.me(&cy).await.is_ok());
}

#[tokio::test]
async fn a_commit_with_an_idempotency_key_is_applied_once() {
    let mut app = TestApp::start().await;
    let _ = app.school("bo@test.memora", "UTC").await;
    let admin = app.admin().await;
    let csv = "email,display_name\nana@test.memora,Ana\ncy@test.memora,Cy\n";
    let (status, accepted) = post_csv(&app.api, &admin, csv, true, Some("roster-1")).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["job_id"].as_str().expect("id").to_owned();
    let job = finished(&app.api, &admin, &id).await;
    let ana_pw = job["result"]["generated_passwords"][0]["password"]
        .as_str()
        .expect("shown once")
        .to_owned();

    // Same key, same body: the first answer (finished, redacted), nothing applied again
    // (a second evaluation would find both students unchanged).
    for round in 0..2 {
        let (status, replay) = post_csv(&app.api, &admin, csv, true, Some("roster-1")).await;
        assert_eq!(status, 202, "{replay}");
        assert_eq!(replay["job_id"], json!(id), "round {round}");
        assert_eq!(replay["state"], "done");
        assert_eq!(replay["result"]["summary"]["create"], 2);
        assert_eq!(replay["result"]["passwords_redacted"], true);
        assert_eq!(
            replay["result"]["generated_passwords"][0]["password"],
            "[redacted]"
        );
        // Durable: the stored answer survives a restart.
        app.restart().await;
    }
    let admin = app.admin().await;
    let (status, reused) = post_csv(
        &app.api,
        &admin,
        &csv.replace("Cy", "Cyril"),
        true,
        Some("roster-1"),
    )
    .await;
    assert_eq!(
        (status, reused["code"].as_str()),
        (422, Some("IDEMPOTENCY_KEY_REUSED"))
    );
    let ana = app
        .api
        .login("ana@test.memora", &ana_pw, &device_id_for("ana"))
        .await
        .expect("the first commit's password is still the one");
    assert_eq!(
        get(&app.api, &ana, "/api/v1/auth/session").await["must_change_password"],
        true
    );
}

#[tokio::test]
async fn a_commit_reports_what_changed_since_its_dry_run() {
    let app = TestApp::start().await;
    let _ = app.school("bo@test.memora", "UTC").await;
    let admin = app.admin().await;
    let csv = "email,display_name,grade\nana@test.memora,Ana,7\ndee@test.memora,Dee,7\n";
    let (status, dry) = post_csv(&app.api, &admin, csv, false, None).await;
    assert_eq!(status, 200);
    assert_eq!(dry["summary"]["create"], 2);
    // Meanwhile another admin creates one of the students.
    app.api
        .call(
            Method::POST,
            "/api/v1/admin/players",
            Some(&admin),
            Some(&json!({"email": "dee@test.memora", "password": PASSWORD, "display_name": "Dee"})),
        )
        .await
        .expect("create dee");
    let (_, accepted) = post_csv(&app.api, &admin, csv, true, None).await;
    let job = finished(&app.api, &admin, accepted["job_id"].as_str().expect("id")).await;
    let result = &job["result"];
    assert_eq!(result["dry_run"]["found"], true, "{job}");
    assert!(result["dry_run"]["at"].is_string());
    assert_eq!(
        result["dry_run"]["differences"],
        json!([{"row": 3, "email": "dee@test.memora",
            "dry_run": {"action": "create", "fields": []},
            "commit": {"action": "update", "fields": ["grade"]}}])
    );
    assert_eq!(result["summary"]["create"], 1);
    // Dee kept her own password (blank cell, existing student).
    assert!(
        app.api
            .login("dee@test.memora", PASSWORD, &device_id_for("dee"))
            .await
            .is_ok()
    );
    // A file never dry-run has nothing to compare with.
    let (_, accepted) = post_csv(
        &app.api,
        &admin,
        "email,display_name\neve@test.memora,Eve\n",
        true,
        None,
    )
    .await;
    let job = finished(&app.api, &admin, accepted["job_id"].as_str().expect("id")).await;
    assert_eq!(job["result"]["dry_run"]["found"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_imports_a_roster_offline_and_refuses_while_a_server_runs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = block_in_place(|| Server::start(&tmp.path().join("data"), ""));
    let config = server.config_path().to_path_buf();
    let file = tmp.path().join("roster.csv");
    std::fs::write(
        &file,
        "email,display_name,grade,password\nana@test.local,Ana,7,\ncy@test.local,Cy,8,cy-password-1\n",
    )
    .expect("write roster");
    let args = |commit: bool| {
        let mut a = vec![
            "admin".into(),
            "import-roster".into(),
            file.clone().into_os_string(),
        ];
        if commit {
            a.push("--commit".into());
        }
        a
    };
    let refused = block_in_place(|| memora(Some(&config), &args(true), &[]));
    assert!(!refused.status.success(), "{refused}");
    assert!(
        refused.all().contains("POST /api/v1/admin/players/import"),
        "the refusal does not name the HTTP call:\n{refused}"
    );
    let _ = block_in_place(|| server.terminate());

    let dry = block_in_place(|| memora(Some(&config), &args(false), &[]));
    assert!(dry.status.success(), "{dry}");
    assert!(
        dry.stdout
            .contains("row 2: create ana@test.local (password generated)"),
        "{dry}"
    );
    assert!(dry.stdout.contains("nothing was changed"), "{dry}");

    let commit = block_in_place(|| memora(Some(&config), &args(true), &[]));
    assert!(commit.status.success(), "{commit}");
    assert!(commit.stdout.contains("imported 2 rows"), "{commit}");
    // Not a terminal: plain progress lines instead of a bar.
    assert!(commit.stderr.contains("importing: 2/2 rows"), "{commit}");
    let line = commit
        .stdout
        .lines()
        .find(|l| l.starts_with("ana@test.local,"))
        .unwrap_or_else(|| panic!("no generated password printed:\n{commit}"));
    let ana_pw = line.trim_start_matches("ana@test.local,").to_owned();
    assert!(
        !commit.stdout.contains("cy-password-1"),
        "a given password was printed"
    );

    // Twice is harmless: the same file now changes nothing.
    let again = block_in_place(|| memora(Some(&config), &args(false), &[]));
    assert!(
        again.stdout.contains("row 2: unchanged ana@test.local")
            && again.stdout.contains("row 3: unchanged cy@test.local"),
        "a re-import would change passwords:\n{again}"
    );
    // A bad row: non-zero exit naming row and column; nothing imported.
    std::fs::write(
        &file,
        "email,display_name,timezone\nzed@test.local,Zed,Mars/Base\n",
    )
    .expect("write");
    let bad = block_in_place(|| memora(Some(&config), &args(true), &[]));
    assert!(!bad.status.success(), "{bad}");
    assert!(bad.all().contains("row 2, timezone"), "{bad}");

    block_in_place(|| server.restart());
    let api = Api::new(&server.url);
    let ana = api
        .login("ana@test.local", &ana_pw, &device_id_for("ana"))
        .await
        .expect("printed password works");
    assert_eq!(
        api.call(Method::GET, "/api/v1/auth/session", Some(&ana), None)
            .await
            .expect("session")
            .1["must_change_password"],
        true
    );
    assert!(
        api.login("cy@test.local", "cy-password-1", &device_id_for("cy"))
            .await
            .is_ok()
    );
    let err = api
        .login("zed@test.local", "whatever-pw-1", &device_id_for("zed"))
        .await
        .expect_err("not imported");
    assert_eq!(err.code(), Some("INVALID_CREDENTIALS"));
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// players.md: "same answer and similar timing for unknown email and wrong password".
/// With a hash cost that dominates a login (4 MiB, 2 passes), an unknown email is
/// verified against a dummy hash; without it, it would answer many times faster. An
/// account whose generated password is still unchanged has a cheaper hash
/// (`PasswordCost::for_generated`): its check is padded to the full cost.
#[tokio::test]
async fn unknown_emails_and_wrong_passwords_take_similar_time() {
    let app = TestApp::start_with(&[
        ("MEMORA_AUTH__ARGON2_MEMORY_KIB", "4096"),
        ("MEMORA_AUTH__ARGON2_ITERATIONS", "2"),
        ("MEMORA_RATE_LIMITS__ENABLED", "false"),
    ])
    .await;
    let _ = app.school("bo@test.memora", "UTC").await;
    let admin = app.admin().await;
    let (status, accepted) = post_csv(
        &app.api,
        &admin,
        "email,display_name\ngen@test.memora,Gen\n",
        true,
        None,
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let job = finished(&app.api, &admin, accepted["job_id"].as_str().expect("id")).await;
    assert_eq!(job["state"], "done", "{job}");
    let device = device_id_for("bo@test.memora");
    let attempt = |email: &'static str| {
        let api = app.api.clone();
        let device = device.clone();
        async move {
            let started = Instant::now();
            let err = api
                .login(email, "not-the-password", &device)
                .await
                .expect_err("refused");
            assert_eq!(err.code(), Some("INVALID_CREDENTIALS"));
            started.elapsed()
        }
    };
    // Warm up (the dummy hash is made on first use).
    for _ in 0..2 {
        attempt("nobody@test.memora").await;
        attempt("bo@test.memora").await;
    }
    let (mut unknown, mut wrong, mut generated) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..9 {
        unknown.push(attempt("nobody@test.memora").await);
        wrong.push(attempt("bo@test.memora").await);
        generated.push(attempt("gen@test.memora").await);
    }
    let (u, w, g) = (median(unknown), median(wrong), median(generated));
    let ratio = |a: Duration, b: Duration| {
        a.as_secs_f64().max(b.as_secs_f64()) / a.as_secs_f64().min(b.as_secs_f64())
    };
    assert!(
        ratio(u, w) < 3.0,
        "unknown email {u:?} vs wrong password {w:?} (medians of 9): ratio {:.2}",
        ratio(u, w)
    );
    assert!(
        ratio(u, g) < 3.0,
        "unknown email {u:?} vs an unchanged generated password {g:?} (medians of 9): ratio {:.2}",
        ratio(u, g)
    );
}

/// operations.md: request log lines carry no tokens or passwords — also for rosters
/// (given passwords in the CSV, generated ones in the job result).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_passwords_and_tokens_never_reach_the_logs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server =
        block_in_place(|| Server::start(&tmp.path().join("data"), "[log]\nlevel = \"debug\"\n"));
    let api = Api::new(&server.url);
    let admin = api
        .login(
            crate::util::ADMIN_EMAIL,
            crate::util::ADMIN_PASSWORD,
            &device_id_for("admin"),
        )
        .await
        .expect("admin login");
    let given = "csv-Given-Secret-4711";
    let csv =
        format!("email,display_name,password\nana@test.local,Ana,\ncy@test.local,Cy,{given}\n");
    let (_, dry) = post_csv(&api, &admin, &csv, false, None).await;
    assert_eq!(dry["summary"]["create"], 2, "{dry}");
    let (status, accepted) = post_csv(&api, &admin, &csv, true, Some("log-key")).await;
    assert_eq!(status, 202, "{accepted}");
    let job = finished(&api, &admin, accepted["job_id"].as_str().expect("id")).await;
    let generated = job["result"]["generated_passwords"][0]["password"]
        .as_str()
        .expect("generated")
        .to_owned();
    let ana = api
        .login("ana@test.local", &generated, &device_id_for("ana"))
        .await
        .expect("login");
    let cy = api
        .login("cy@test.local", given, &device_id_for("cy"))
        .await
        .expect("login");
    api.call(Method::GET, "/api/v1/auth/session", Some(&ana), None)
        .await
        .expect("session");
    api.call(Method::GET, "/api/v1/me", Some(&cy), None)
        .await
        .expect("me");

    let log = server.log_since(0);
    assert!(
        log.contains("answered") && log.contains(IMPORT),
        "the request log is missing:\n{log}"
    );
    for needle in [
        given,
        generated.as_str(),
        crate::util::ADMIN_PASSWORD,
        admin.token.as_str(),
        ana.token.as_str(),
        cy.token.as_str(),
    ] {
        assert!(
            !log.contains(needle),
            "`{needle}` appears in the server log"
        );
    }
}
