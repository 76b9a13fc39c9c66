//! The `memora` command line, black-box (operations.md "Configuration", "CLI";
//! persistence.md "CLI commands … refuse with a message naming the admin API call"):
//! print-config, invalid configuration, offline import, check, refusal while a server
//! holds the data dir, and `serve --demo` started twice.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tokio::task::block_in_place;

use crate::util::api::{i64_field, str_field};
use crate::util::server::config_text;
use crate::util::{Api, CliRun, Server, device_id_for, fixture_path, memora, suggested_next};

/// Writes the standard test config for `data_dir` next to it and returns its path.
fn write_config(dir: &Path, data_dir: &Path) -> PathBuf {
    let path = dir.join("memora.toml");
    fs::write(&path, config_text(data_dir, "")).expect("write config");
    path
}

fn assert_ok(run: &CliRun, what: &str) {
    assert!(run.status.success(), "{what} failed:\n{run}");
}

fn assert_refused(run: &CliRun, what: &str, needle: &str) {
    assert!(!run.status.success(), "{what} succeeded:\n{run}");
    assert!(
        run.all().contains(needle),
        "{what}: message lacks `{needle}`:\n{run}"
    );
}

/// Every file under `dir` with its bytes.
fn tree_bytes(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            out.extend(tree_bytes(&path));
        } else {
            out.insert(path.clone(), fs::read(&path).expect("read file"));
        }
    }
    out
}

#[test]
fn print_config_shows_every_section_and_environment_overrides() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = write_config(tmp.path(), &tmp.path().join("data"));
    let sections = [
        "http",
        "storage",
        "journal",
        "checkpoint",
        "progress",
        "players",
        "auth",
        "rate_limits",
        "log",
    ];
    let parse = |run: &CliRun| -> toml::Table {
        run.stdout
            .parse()
            .unwrap_or_else(|e| panic!("print-config is not TOML: {e}\n{run}"))
    };

    let plain = memora(Some(&config), &["print-config"], &[]);
    assert_ok(&plain, "print-config");
    let table = parse(&plain);
    for section in sections {
        assert!(
            table.contains_key(section),
            "section [{section}] missing:\n{plain}"
        );
    }
    assert_eq!(table["journal"]["durability"].as_str(), Some("strict"));
    assert_eq!(
        table["storage"]["data_dir"].as_str(),
        Some(tmp.path().join("data").to_str().expect("utf8")),
        "the file's data_dir is not the effective one"
    );

    let env = [
        ("MEMORA_JOURNAL__DURABILITY", "relaxed"),
        ("MEMORA_TEST_SOMETHING", "ignored: not a configuration key"),
    ];
    let overridden = memora(Some(&config), &["print-config"], &env);
    assert_ok(&overridden, "print-config with an override");
    assert_eq!(
        parse(&overridden)["journal"]["durability"].as_str(),
        Some("relaxed"),
        "MEMORA_JOURNAL__DURABILITY did not override:\n{overridden}"
    );
}

#[test]
fn invalid_configuration_fails_naming_the_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = write_config(tmp.path(), &tmp.path().join("data"));
    let out_of_range = memora(
        Some(&config),
        &["print-config"],
        &[("MEMORA_JOURNAL__FSYNC_INTERVAL_MS", "0")],
    );
    assert_refused(
        &out_of_range,
        "fsync_interval_ms = 0",
        "journal.fsync_interval_ms",
    );
    let wrong_variant = memora(
        Some(&config),
        &["check"],
        &[("MEMORA_JOURNAL__DURABILITY", "sometimes")],
    );
    assert_refused(&wrong_variant, "durability = sometimes", "durability");
    let typo = tmp.path().join("typo.toml");
    fs::write(&typo, "[checkpoint]\nprogress_interval_sec = 5\n").expect("write");
    assert_refused(
        &memora(Some(&typo), &["print-config"], &[]),
        "a misspelt key",
        "progress_interval_sec",
    );
    assert!(
        !tmp.path().join("data").exists(),
        "a command with an invalid configuration touched the data dir"
    );
}

#[test]
fn import_reports_counts_and_a_bad_document_stores_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = write_config(tmp.path(), &tmp.path().join("data"));

    // A bad subject: a lesson without stages and a duplicate id.
    let mut bad: Value = serde_json::from_str(
        &fs::read_to_string(fixture_path("basics.subject.json")).expect("fixture"),
    )
    .expect("fixture JSON");
    bad["id"] = json!("broken");
    let lessons = &mut bad["tracks"][0]["units"][0]["topics"][0]["lessons"];
    lessons[0]["stages"] = json!([]);
    let first_id = lessons[0]["id"].clone();
    lessons[1]["id"] = first_id;
    let bad_path = tmp.path().join("broken.subject.json");
    fs::write(&bad_path, serde_json::to_vec(&bad).expect("json")).expect("write");

    let rejected = memora(
        Some(&config),
        &["import".as_ref(), bad_path.as_os_str()],
        &[],
    );
    assert!(
        !rejected.status.success(),
        "a bad document was accepted:\n{rejected}"
    );
    assert!(
        rejected.all().contains("broken.subject.json")
            && rejected
                .all()
                .contains("/tracks/0/units/0/topics/0/lessons/"),
        "the rejection does not list the problems with their places:\n{rejected}"
    );
    assert!(rejected.all().contains("imported 0 of 1"), "{rejected}");
    let check = memora(Some(&config), &["check"], &[]);
    assert_ok(&check, "check after a rejected import");
    assert!(
        check.stdout.contains("0 subjects, 0 plans"),
        "a rejected document left something behind:\n{check}"
    );

    let files = [
        fixture_path("school.plan.json"),
        fixture_path("basics.subject.json"),
        fixture_path("chain.subject.json"),
    ];
    let mut args = vec!["import".as_ref()];
    args.extend(files.iter().map(|p| p.as_os_str()));
    let imported = memora(Some(&config), &args, &[]);
    assert_ok(&imported, "import of the fixtures");
    for line in [
        "created subject bas (30 lessons)",
        "created subject chain (200 lessons)",
        "created plan school",
        "imported 3 of 3 documents",
    ] {
        assert!(
            imported.all().contains(line),
            "import output lacks `{line}`:\n{imported}"
        );
    }

    let check = memora(Some(&config), &["check"], &[]);
    assert_ok(&check, "check after the import");
    assert!(
        check.stdout.contains("2 subjects, 1 plans"),
        "check does not count the imported documents:\n{check}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_refuse_while_a_server_holds_the_data_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = block_in_place(|| Server::start(&tmp.path().join("data"), ""));
    let config = server.config_path().to_path_buf();
    let password = tmp.path().join("pw");
    fs::write(&password, "another-admin-pw-1").expect("write");

    let admin = block_in_place(|| {
        memora(
            Some(&config),
            &[
                "admin".as_ref(),
                "create".as_ref(),
                "--email".as_ref(),
                "second@test.local".as_ref(),
                "--password-file".as_ref(),
                password.as_os_str(),
            ],
            &[],
        )
    });
    assert_refused(&admin, "admin create", "POST /api/v1/admin/players");
    let plan = fixture_path("school.plan.json");
    let import =
        block_in_place(|| memora(Some(&config), &["import".as_ref(), plan.as_os_str()], &[]));
    assert_refused(&import, "import", "PUT /api/v1/admin/subjects/{id}");
    let check = block_in_place(|| memora(Some(&config), &["check"], &[]));
    assert_refused(&check, "check", "GET /readyz");

    // The refusals did not disturb the server.
    let api = Api::new(&server.url);
    assert_eq!(api.status_of("/readyz").await, 200);
    assert!(
        api.login(
            "second@test.local",
            "another-admin-pw-1",
            &device_id_for("x")
        )
        .await
        .is_err(),
        "the refused admin create created an account"
    );

    let status = block_in_place(|| server.terminate());
    assert!(status.success(), "SIGTERM exit {status}");
    let before = tree_bytes(&server.data_dir);
    let check = block_in_place(|| memora(Some(&config), &["check"], &[]));
    assert_ok(&check, "check on the stopped server");
    for line in ["redb", ": ok", "1 players", "journal", "record(s)"] {
        assert!(
            check.stdout.contains(line),
            "check output lacks `{line}`:\n{check}"
        );
    }
    assert!(
        before == tree_bytes(&server.data_dir),
        "check modified the data dir it checked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_twice_is_idempotent() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server =
        block_in_place(|| Server::start_with_args(&tmp.path().join("data"), "", &["--demo"]));
    let api = Api::new(&server.url);
    let demo = |api: &Api| {
        let api = api.clone();
        async move {
            let admin = api
                .login(
                    memora::demo::ADMIN_EMAIL,
                    memora::demo::PASSWORD,
                    &device_id_for(memora::demo::ADMIN_EMAIL),
                )
                .await
                .expect("demo admin login");
            let student = api
                .login(
                    memora::demo::STUDENT_EMAIL,
                    memora::demo::PASSWORD,
                    &device_id_for(memora::demo::STUDENT_EMAIL),
                )
                .await
                .expect("demo student login");
            let get = |path: String| {
                let api = api.clone();
                let admin = admin.clone();
                async move {
                    api.call(reqwest::Method::GET, &path, Some(&admin), None)
                        .await
                        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
                        .1
                }
            };
            let plan = get("/api/v1/admin/plans/demo".into()).await;
            let subject_id = plan["subjects"][0]
                .as_str()
                .expect("a demo subject")
                .to_owned();
            let subject = get(format!("/api/v1/admin/subjects/{subject_id}")).await;
            let player = get(format!("/api/v1/admin/players/{}", student.player_id)).await;
            (student, subject_id, plan, subject, player)
        }
    };
    let (student, subject_id, plan, subject, player) = demo(&api).await;
    let progress = api.progress(&student, &subject_id).await.expect("progress");
    let first = suggested_next(&progress).expect("a first demo lesson");
    let done = api.complete(&student, &first, 4).await.expect("complete");
    let xp = i64_field(&done, "new_total_xp");
    assert!(xp > 0);

    let status = block_in_place(|| server.terminate());
    assert!(status.success(), "SIGTERM exit {status}");
    block_in_place(|| server.restart());
    let api = Api::new(&server.url);
    let (student2, subject_id2, plan2, subject2, player2) = demo(&api).await;
    assert_eq!(subject_id2, subject_id);
    assert_eq!(plan2, plan, "the demo plan changed on the second start");
    assert_eq!(
        subject2, subject,
        "the demo subject changed on the second start"
    );
    assert_eq!(
        student2.player_id, student.player_id,
        "the demo student was created again"
    );
    assert_eq!(str_field(&player2, "id"), str_field(&player, "id"));
    let progress = api
        .progress(&student2, &subject_id)
        .await
        .expect("progress");
    let states = crate::util::lesson_states(&progress);
    assert_eq!(
        states.get(&first).map(|(s, h)| (s.as_str(), *h)),
        Some(("passed", 4)),
        "the demo student's progress did not survive the second start"
    );
    let wallet = api.wallet(&student2).await.expect("wallet");
    assert_eq!(i64_field(&wallet, "total_xp"), xp);

    let status = block_in_place(|| server.terminate());
    assert!(status.success(), "SIGTERM exit {status}");
    let check = block_in_place(|| memora(Some(server.config_path()), &["check"], &[]));
    assert_ok(&check, "check after two demo starts");
    // The test admin of the harness plus the demo admin and student: nothing doubled.
    assert!(
        check.stdout.contains("1 subjects, 1 plans, 3 players"),
        "demo content or accounts were duplicated:\n{check}"
    );
}
