//! On-disk format compatibility (STYLE.md rule 8, persistence.md "Data-format policy"):
//! `tests/fixtures/format-v1/data` is a data dir written by the first released format
//! (redb file plus journal). Every build must open it and find the same state, so a
//! format change either stays readable or migrates. The generator below also runs as a
//! test; `MEMORA_TEST_WRITE_FORMAT_FIXTURE=1` makes it rewrite the committed fixture
//! (only do that for a new format version, in a new folder).
//!
//! v1 has no SRS, audit, group or archive data: `tests/format_v2.rs` keeps the second
//! fixture, `tests/fixtures/format-v2/data`, which holds every journal event variant and
//! every redb table added since (issues 3 and 6), in the same style. A later format gets
//! its own `format-vN/` folder and module next to these two.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use memora::clock::FakeClock;
use memora::config::Config;
use memora::engine::Engine;
use memora::engine::accounts::{Caller, NewPlayer};
use memora::players::account::Role;
use serde_json::Value;

use crate::util::fixture_path;

const STUDENT: &str = "format@test.local";
const PASSWORD: &str = "format-password-1";
const DEVICE: &str = "6f1d7a52-3c1e-4b8e-9a44-0d5b2c7e8f10";
/// The plan of the fixture: the `basics` subject only, to keep the files small.
const PLAN: &str = r#"{"format": "memora.plan/v1", "id": "format", "title": "Format fixture",
  "season": "2026", "grade": "10", "stream": "general", "is_published": true,
  "subjects": ["bas"]}"#;
/// The first completion day (the student's zone is UTC).
const DAY_ONE: &str = "2026-03-02T10:00:00Z";
/// Completions the generator makes: `(lesson, hearts)`, three on day one (checkpointed
/// into redb), then two on day two (left in the journal only).
const COMPLETIONS: [(&str, u8); 5] = [
    ("bas-l-001", 5),
    ("bas-l-002", 4),
    ("bas-l-003", 3),
    ("bas-l-004", 5),
    ("bas-l-005", 2),
];
/// `(passed_lessons, total_xp)` after all completions, as the first format recorded it.
const KNOWN: (i64, i64) = (5, 240);

pub(crate) fn fixture_dir() -> PathBuf {
    fixture_path("format-v1/data")
}

fn config(data_dir: &Path) -> Config {
    // Snapshots (tests/snapshots.rs) go next to the data dir, never into the repository.
    let snapshots = data_dir.with_file_name("snapshots");
    Config::load(
        None,
        [
            (
                "MEMORA_STORAGE__DATA_DIR",
                data_dir.to_str().expect("utf8 path"),
            ),
            (
                "MEMORA_STORAGE__SNAPSHOTS_DIR",
                snapshots.to_str().expect("utf8 path"),
            ),
            ("MEMORA_AUTH__ARGON2_MEMORY_KIB", "64"),
            ("MEMORA_AUTH__ARGON2_ITERATIONS", "1"),
            ("MEMORA_CHECKPOINT__PROGRESS_INTERVAL_SECS", "3600"),
            ("MEMORA_CHECKPOINT__WALLET_INTERVAL_SECS", "3600"),
            ("MEMORA_LOG__LEVEL", "warn"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .expect("test config")
}

async fn student(engine: &Engine) -> Caller {
    let login = engine
        .login(STUDENT, PASSWORD, Some(DEVICE), Some("fixture device"))
        .await
        .unwrap_or_else(|e| panic!("login: {e}"));
    engine
        .authenticate(&login.token, Some(DEVICE))
        .unwrap_or_else(|e| panic!("authenticate: {e}"))
}

/// Writes the fixture's state into the empty `data_dir` with this binary's formats.
async fn generate(data_dir: &Path) {
    let clock = FakeClock::new(DAY_ONE.parse().expect("timestamp"));
    let engine = Engine::open(config(data_dir), Arc::new(clock.clone())).expect("engine");
    let read = |name: &str| std::fs::read(fixture_path(name)).expect("fixture");
    engine
        .put_subject(None, &read("basics.subject.json"))
        .await
        .expect("import basics");
    engine
        .put_plan(None, PLAN.as_bytes())
        .await
        .expect("import plan");
    engine
        .create_player(NewPlayer {
            email: STUDENT.into(),
            password: PASSWORD.into(),
            display_name: "Format Fixture".into(),
            role: Some(Role::Student),
            plan_id: Some("format".into()),
            grade: None,
            stream: None,
            timezone: Some("UTC".into()),
            grants: Vec::new(),
        })
        .await
        .expect("create student");
    let caller = student(&engine).await;
    for (i, (lesson, hearts)) in COMPLETIONS.iter().enumerate() {
        if i == 3 {
            let e = engine.clone();
            tokio::task::spawn_blocking(move || e.checkpoint(true, true))
                .await
                .expect("checkpoint task")
                .expect("checkpoint");
            clock.advance(Duration::from_secs(24 * 3600));
        }
        engine
            .complete_lesson(&caller, lesson, i64::from(*hearts))
            .await
            .unwrap_or_else(|e| panic!("complete {lesson}: {e}"));
    }
    // Dropping the only handle flushes the journal and closes redb cleanly, without the
    // final checkpoint of a shutdown: the last completions stay in the journal only.
    drop(caller);
    drop(engine);
    // Keep the committed file small: redb preallocates; compaction gives the space back.
    let mut db = redb::Database::open(data_dir.join("memora.redb")).expect("reopen redb");
    db.compact().expect("compact redb");
}

/// Opens `data_dir` with the clock on the day the known state is checked (day two).
pub(crate) fn open_on_day_two(data_dir: &Path) -> Engine {
    let day_two = DAY_ONE
        .parse::<jiff::Timestamp>()
        .expect("timestamp")
        .checked_add(jiff::SignedDuration::from_hours(26))
        .expect("day two");
    Engine::open(config(data_dir), Arc::new(FakeClock::new(day_two)))
        .unwrap_or_else(|e| panic!("open {}: {e}", data_dir.display()))
}

/// Opens `data_dir` and checks the state the generator wrote.
async fn assert_known_state(data_dir: &Path) {
    let engine = open_on_day_two(data_dir);
    assert!(
        engine.recovery().replayed >= 2,
        "the journal part of the fixture was not replayed: {:?}",
        engine.recovery()
    );
    check_known_state(&engine, &data_dir.display().to_string()).await;
}

/// Checks the state the generator wrote in an open engine (`what` names it in
/// messages); also used by the snapshot fixture (tests/snapshots.rs).
pub(crate) async fn check_known_state(engine: &Engine, what: &str) {
    let caller = student(engine).await;
    let progress: Value =
        serde_json::from_slice(&engine.progress_json(&caller, "bas").expect("progress"))
            .expect("progress JSON");
    let states = crate::util::lesson_states(&progress);
    for (lesson, hearts) in COMPLETIONS {
        assert_eq!(
            states.get(lesson).map(|(s, h)| (s.as_str(), *h)),
            Some(("passed", hearts)),
            "{lesson} in {what}"
        );
    }
    let passed = progress["passed_lessons"].as_i64().unwrap_or(-1);
    let subject_xp = progress["total_xp_earned"].as_i64().unwrap_or(-1);
    assert_eq!(
        (passed, subject_xp),
        KNOWN,
        "progress of the fixture student"
    );
    let wallet = engine.wallet(&caller).expect("wallet");
    assert_eq!(wallet.total_xp, KNOWN.1);
    assert_eq!((wallet.current_streak, wallet.longest_streak), (2, 2));
    assert_eq!(
        wallet.last_success_date.map(|d| d.to_string()).as_deref(),
        Some("2026-03-03")
    );
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let path = entry.expect("dir entry").path();
        let target = to.join(path.file_name().expect("file name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy file");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_v1_fixture_opens_with_its_known_state() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = tmp.path().join("data");
    copy_dir(&fixture_dir(), &data_dir);
    assert!(
        data_dir.join("memora.redb").exists() && data_dir.join("journal").exists(),
        "the fixture lacks its redb file or journal"
    );
    assert_known_state(&data_dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_v1_generator_writes_the_known_state() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = tmp.path().join("data");
    generate(&data_dir).await;
    if std::env::var_os("MEMORA_TEST_WRITE_FORMAT_FIXTURE").is_some() {
        let target = fixture_dir();
        let _ = std::fs::remove_dir_all(&target);
        copy_dir(&data_dir, &target);
        println!("wrote {}", target.display());
    }
    assert_known_state(&data_dir).await;
}
