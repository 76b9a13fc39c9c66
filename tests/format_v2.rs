//! On-disk format compatibility, second fixture (STYLE.md rule 8, persistence.md
//! "Data-format policy"): `tests/fixtures/format-v2/data` is a data dir written after
//! issues 3 and 6 added their journal events and redb tables (audit, groups, privacy,
//! roster import, seasons, cards, idempotency, the card archive, the mirror queue).
//! Every build must open it and find the same state. See
//! `tests/fixtures/format-v2/README.md` for what it holds.
//!
//! The generator below also runs as a test (into a temporary directory, then the same
//! checks); `MEMORA_TEST_WRITE_FORMAT_V2_FIXTURE=1` makes it rewrite the committed
//! fixture. Never do that once it is committed: a new format version gets a new folder
//! (`format-v3/`) and generator, and this fixture keeps opening.
//!
//! The fixture has three parts, so that opening it exercises both the redb tables and
//! replay:
//! 1. day one: content, players, seasons, completions with answers, an import, groups,
//!    admin actions; then a checkpoint of **both** streams (the wallet checkpoint stays
//!    there, so every later record is decoded on open and its wallet part replayed);
//! 2. day one to three: archives, retention flagging, a purge, an erasure, the audit
//!    retention, a progress reset, an idempotent completion; then a progress-stream
//!    checkpoint (several of these operations checkpoint by themselves);
//! 3. day three: reviews with an idempotency key, more completions, an import, account,
//!    content, season and group changes, a journal failure and its storage probe, a
//!    roster import — in the journal only.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use memora::clock::FakeClock;
use memora::config::Config;
use memora::engine::accounts::{Caller, NewPlayer};
use memora::engine::admin_players::PlayerPatch;
use memora::engine::audit::{AuditContext, scope};
use memora::engine::audit_query::AuditFilter;
use memora::engine::content_ops::DocKind;
use memora::engine::groups::{GroupPatch, NewGroup};
use memora::engine::idempotency::{Begin, IdemRequest, Replied};
use memora::engine::privacy::ResetBody;
use memora::engine::roster::{IdemAnswer, file_sha};
use memora::engine::roster_report::CommitReport;
use memora::engine::seasons::{NewSeason, SeasonPatch};
use memora::engine::srs_ops::Answer;
use memora::engine::srs_retention::PurgeRequest;
use memora::engine::{Engine, Event};
use memora::persist::journal::FaultyStorage;
use memora::players::account::Role;
use memora::srs::Rating;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle};
use serde_json::{Value, json};

use crate::format::copy_dir;
use crate::util::fixture_path;

const PASSWORD: &str = "format-v2-password";
const ADMIN: &str = "admin@format2.test";
const TEACHER: &str = "teacher@format2.test";
/// The student whose state is checked in detail.
const STUDENT: &str = "student@format2.test";
/// A student erased on day three.
const ERASED: &str = "erased@format2.test";
/// A student whose progress is reset, edited, logged out everywhere.
const OTHER: &str = "other@format2.test";
/// A student created in the journal-only part.
const LATE: &str = "late@format2.test";
/// A student created by the roster import.
const ROSTERED: &str = "roster@format2.test";
const STUDENT_DEVICE: &str = "2b9c6f0e-5d41-4a57-8c3e-71f0a9d2e6b4";
const ERASED_DEVICE: &str = "8e0d4c7a-1f23-4b9e-a6d5-3c2b1a0f9e87";
const OTHER_DEVICE: &str = "c4a1e9b2-7d36-4f08-9b5c-e2d7f1a03c69";
const ROSTERED_DEVICE: &str = "5f3b8d21-9a0c-4e6f-b7d4-2c1e8a9f0b35";
/// The client address of every request the generator makes.
const CLIENT_IP: &str = "203.0.113.20";

/// The plan of the fixture: the `basics` subject only, to keep the files small.
const PLAN: &str = r#"{"format": "memora.plan/v1", "id": "format2", "title": "Format v2 fixture",
  "season": "2026", "grade": "10", "stream": "general", "is_published": true,
  "subjects": ["bas"]}"#;
/// A plan imported and deleted again (`PlanPut`, `PlanDeleted`).
const SPARE_PLAN: &str = r#"{"format": "memora.plan/v1", "id": "spare", "title": "Spare plan",
  "season": "2026", "grade": "11", "stream": "general", "is_published": false,
  "subjects": ["bas"]}"#;
/// A subject imported and deleted again (`SubjectPut`, `SubjectDeleted`).
const SPARE_SUBJECT: &str = r##"{"format": "memora.subject/v1", "id": "spare", "title": "Spare",
  "description": "Imported and deleted by the format-v2 generator.", "is_linear": true,
  "color_code": "#996633", "tracks": [{"id": "spare-t", "title": "Track", "is_linear": true,
  "units": [{"id": "spare-u", "title": "Unit", "is_linear": true, "topics": [{"id": "spare-tp",
  "title": "Topic", "is_linear": true, "lessons": [{"id": "spare-l-001", "title": "Only",
  "base_xp": 10, "stages": [{"type": "text", "title": "Read",
  "config": {"html": "<p>Spare.</p>"}}]}]}]}]}]}"##;

/// Day one, 10:00 UTC (every player's zone is UTC).
const DAY_ONE: &str = "2026-03-02T10:00:00Z";
/// When the known state is checked: day three, 18:00 (within 24 h of the stored
/// idempotent answers).
const CHECK_AT: &str = "2026-03-04T18:00:00Z";

/// A review history (srs.md "Review history import") of two questions of `bas`.
const HISTORY_STUDENT: &str = "question_id,rating,reviewed_at,duration_ms
bas-q-020,3,2026-02-01T09:00:00Z,4000
bas-q-020,4,2026-02-03T09:30:00Z,
bas-q-021,1,2026-02-02T08:00:00Z,2500
bas-q-021,3,2026-02-02T08:10:00Z,3100
bas-q-021,3,1770800000000,
";
/// A review history imported for the other student in the journal-only part.
const HISTORY_OTHER: &str = "question_id,rating,reviewed_at,duration_ms
bas-q-025,2,2026-01-20T12:00:00Z,
bas-q-025,3,2026-01-25T12:00:00Z,5000
";

/// The idempotent review submission of part 3 (key and exact body bytes).
const REVIEW_KEY: &str = "format-v2-review-1";
const REVIEW_BODY: &str = r#"{"responses":[{"question_id":"bas-q-003","rating":3},{"question_id":"bas-q-004","rating":1}],"combo":1}"#;
/// The roster import of part 3 (`RosterImported`): a new student, a change of another.
const ROSTER: &str = "email,display_name,plan_id,grade,timezone,password
roster@format2.test,Roster Student,format2,10,UTC,format-v2-password
late@format2.test,Late Student (roster),format2,12,UTC,
";
const ROSTER_KEY: &str = "format-v2-roster-1";
/// The idempotent completion of part 2.
const COMPLETE_KEY: &str = "format-v2-complete-6";
const COMPLETE_BODY: &str = r#"{"hearts":4,"answers":[{"question_id":"bas-q-006","rating":4}]}"#;

pub(crate) fn fixture_dir() -> PathBuf {
    fixture_path("format-v2/data")
}

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().expect("timestamp")
}

fn config(data_dir: &Path, mirror: bool) -> Config {
    let snapshots = data_dir.with_file_name("snapshots");
    let mut env: Vec<(&str, &str)> = vec![
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
        // Archived cards become eligible for deletion after a day, client IPs are
        // cleared after a day: both happen within the fixture's three days.
        ("MEMORA_SRS__RETENTION_DAYS", "1"),
        ("MEMORA_AUDIT__IP_RETENTION_DAYS", "1"),
        ("MEMORA_LOG__LEVEL", "warn"),
    ];
    if mirror {
        // A mirror that is never reachable (nothing runs it here): checkpoints queue
        // their rows in `mirror_log`, as on a server whose MariaDB is down.
        env.push((
            "MEMORA_MIRROR__URL",
            "mysql://memora:fixture@127.0.0.1:9/memora_reports",
        ));
    }
    Config::load(
        None,
        env.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .expect("test config")
}

/// Runs `fut` as a request of the fixture's client to `endpoint`: the audit context
/// the HTTP layer would set (client IP, route, device header).
async fn request<T>(endpoint: &str, device: Option<&str>, fut: impl Future<Output = T>) -> T {
    let ctx = AuditContext::new(
        Some(CLIENT_IP.to_owned()),
        Some(endpoint.to_owned()),
        device.map(str::to_owned),
    );
    scope(Some(Arc::new(ctx)), fut).await
}

/// A logged-in player: token and device, authenticated again in each request (which
/// names the caller in that request's audit context).
#[derive(Clone)]
struct Session {
    token: String,
    device: Option<&'static str>,
}

impl Session {
    fn caller(&self, engine: &Engine) -> Caller {
        engine
            .authenticate(&self.token, self.device)
            .unwrap_or_else(|e| panic!("authenticate: {e}"))
    }
}

async fn login(engine: &Engine, email: &str, device: Option<&'static str>) -> Session {
    let answer = request("POST /api/v1/auth/login", device, async {
        engine
            .login(email, PASSWORD, device, device.map(|_| "fixture device"))
            .await
    })
    .await
    .unwrap_or_else(|e| panic!("login {email}: {e}"));
    Session {
        token: answer.token,
        device,
    }
}

fn new_player(email: &str, name: &str, role: Role, plan: Option<&str>) -> NewPlayer {
    NewPlayer {
        email: email.into(),
        password: PASSWORD.into(),
        display_name: name.into(),
        role: Some(role),
        plan_id: plan.map(str::to_owned),
        grade: None,
        stream: None,
        timezone: Some("UTC".into()),
        grants: Vec::new(),
    }
}

fn answer(question: &str, rating: Rating) -> Answer {
    Answer {
        question_id: question.to_owned(),
        rating,
    }
}

fn player_id(engine: &Engine, email: &str) -> String {
    engine
        .player_by_email(email)
        .unwrap_or_else(|| panic!("no player {email}"))
        .id
        .clone()
}

async fn checkpoint(engine: &Engine, progress: bool, wallets: bool) {
    let e = engine.clone();
    tokio::task::spawn_blocking(move || e.checkpoint(progress, wallets))
        .await
        .expect("checkpoint task")
        .expect("checkpoint");
}

/// Waits until a progress checkpoint covers `seq` (one a write started by itself).
async fn await_progress_checkpoint(engine: &Engine, seq: u64) {
    for _ in 0..500 {
        if engine
            .checkpoint_history()
            .progress
            .is_some_and(|c| c.seq >= seq)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no progress checkpoint covered sequence {seq}");
}

/// The generator's engine: real files, with a journal failure injected once.
struct Generator {
    engine: Engine,
    clock: FakeClock,
    storage: FaultyStorage,
}

/// Lesson completion by `who` through the engine, as `POST /api/v1/lessons/{id}/complete`.
async fn complete(
    engine: &Engine,
    who: &Session,
    lesson: &str,
    hearts: i64,
    answers: &[Answer],
    idem: Option<&IdemRequest>,
) -> Replied<memora::engine::play::CompletionResponse> {
    request(
        "POST /api/v1/lessons/{lesson_id}/complete",
        who.device,
        async {
            let caller = who.caller(engine);
            engine
                .complete_lesson_with(&caller, lesson, hearts, answers, idem)
                .await
        },
    )
    .await
    .unwrap_or_else(|e| panic!("complete {lesson}: {e}"))
}

/// Writes the fixture's state into the empty `data_dir` with this binary's formats.
async fn generate(data_dir: &Path) {
    let clock = FakeClock::new(ts(DAY_ONE));
    let storage = FaultyStorage::default();
    let engine = Engine::open_with_storage(
        config(data_dir, true),
        Arc::new(clock.clone()),
        Arc::new(storage.clone()),
    )
    .expect("engine");
    let g = Generator {
        engine,
        clock,
        storage,
    };
    part_one(&g).await;
    part_two(&g).await;
    part_three(&g).await;
    // Dropping the only handle flushes the journal and closes redb cleanly, without the
    // final checkpoint of a shutdown: part 3 stays in the journal only.
    let Generator { engine, .. } = g;
    drop(engine);
    // Keep the committed file small: redb preallocates; compaction gives the space back.
    let mut db = redb::Database::open(data_dir.join("memora.redb")).expect("reopen redb");
    db.compact().expect("compact redb");
}

/// Day one: content, players, three seasons in turn (cards in each), an import, groups,
/// admin actions, a failed login; then a checkpoint of both streams.
async fn part_one(g: &Generator) {
    let e = &g.engine;
    let basics = std::fs::read(fixture_path("basics.subject.json")).expect("fixture");
    e.put_subject(None, &basics).await.expect("import basics");
    e.put_plan(None, PLAN.as_bytes())
        .await
        .expect("import plan");
    // The first admin, as `memora admin create` makes it (no request context).
    e.create_player(new_player(ADMIN, "Fixture Admin", Role::Admin, None))
        .await
        .expect("create admin");
    let admin = &login(e, ADMIN, None).await;
    request("POST /api/v1/admin/players", None, async {
        admin.caller(e);
        for (email, name, role, plan) in [
            (TEACHER, "Fixture Teacher", Role::Teacher, None),
            (STUDENT, "Fixture Student", Role::Student, Some("format2")),
            (ERASED, "Erased Student", Role::Student, Some("format2")),
            (OTHER, "Other Student", Role::Student, Some("format2")),
        ] {
            e.create_player(new_player(email, name, role, plan))
                .await
                .unwrap_or_else(|err| panic!("create {email}: {err}"));
        }
    })
    .await;
    let student = login(e, STUDENT, Some(STUDENT_DEVICE)).await;
    let erased = login(e, ERASED, Some(ERASED_DEVICE)).await;
    let other = login(e, OTHER, Some(OTHER_DEVICE)).await;
    let teacher = login(e, TEACHER, None).await;

    // Season 2024, then 2025, then 2026 active in turn: cards in each.
    let season = |id: &str| NewSeason {
        id: id.to_owned(),
        title: format!("Season {id}"),
        start_date: format!("{id}-09-01"),
        end_date: format!("{}-06-30", id.parse::<i32>().expect("year") + 1),
        is_active: true,
        auto_archive: false,
    };
    let deactivate = |id: &'static str| async move {
        request("PATCH /api/v1/admin/seasons/{id}", None, async {
            admin.caller(e);
            e.patch_season(
                id,
                SeasonPatch {
                    is_active: Some(false),
                    ..SeasonPatch::default()
                },
            )
            .await
        })
        .await
        .unwrap_or_else(|err| panic!("deactivate {id}: {err}"));
    };
    let create_season = |id: &'static str| {
        let new = season(id);
        async move {
            request("POST /api/v1/admin/seasons", None, async {
                admin.caller(e);
                e.create_season(new).await
            })
            .await
            .unwrap_or_else(|err| panic!("season {id}: {err}"));
        }
    };
    create_season("2024").await;
    complete(
        e,
        &student,
        "bas-l-001",
        5,
        &[answer("bas-q-001", Rating::Good)],
        None,
    )
    .await;
    deactivate("2024").await;
    create_season("2025").await;
    complete(
        e,
        &student,
        "bas-l-002",
        4,
        &[answer("bas-q-002", Rating::Hard)],
        None,
    )
    .await;
    complete(
        e,
        &erased,
        "bas-l-001",
        3,
        &[answer("bas-q-001", Rating::Good)],
        None,
    )
    .await;
    deactivate("2025").await;
    create_season("2026").await;
    g.clock.advance(Duration::from_secs(600));
    complete(
        e,
        &student,
        "bas-l-003",
        3,
        &[answer("bas-q-003", Rating::Good)],
        None,
    )
    .await;
    complete(
        e,
        &student,
        "bas-l-004",
        5,
        &[answer("bas-q-004", Rating::Easy)],
        None,
    )
    .await;
    complete(
        e,
        &erased,
        "bas-l-002",
        2,
        &[answer("bas-q-002", Rating::Again)],
        None,
    )
    .await;

    // A review history import for the student into the active season.
    let student_id = player_id(e, STUDENT);
    request(
        "POST /api/v1/admin/players/{id}/reviews/import",
        None,
        async {
            let by = admin.caller(e);
            let prepared = e
                .prepare_review_import(&student_id, None, HISTORY_STUDENT.as_bytes(), &by.player.id)
                .expect("prepare import");
            e.run_review_import(prepared, None).await
        },
    )
    .await
    .expect("import history");

    // A failed login (buffered, journaled as an `AuditBatch`).
    let failed = request("POST /api/v1/auth/login", Some(OTHER_DEVICE), async {
        e.login(OTHER, "not-the-password", Some(OTHER_DEVICE), None)
            .await
    })
    .await;
    assert!(failed.is_err(), "a wrong password logs in");
    e.flush_audit().await.expect("flush audit");

    // Groups: two created, one renamed, one deleted.
    let teacher_id = player_id(e, TEACHER);
    let other_id = player_id(e, OTHER);
    let erased_id = player_id(e, ERASED);
    let (class_a, class_b) = request("POST /api/v1/admin/groups", None, async {
        admin.caller(e);
        let a = e
            .create_group(NewGroup {
                name: "Class A".into(),
                student_ids: vec![student_id.clone(), erased_id.clone()],
                teacher_ids: vec![teacher_id.clone()],
            })
            .await
            .expect("group A");
        let b = e
            .create_group(NewGroup {
                name: "Class B".into(),
                student_ids: vec![other_id.clone()],
                teacher_ids: Vec::new(),
            })
            .await
            .expect("group B");
        (a, b)
    })
    .await;
    request("PATCH /api/v1/admin/groups/{id}", None, async {
        admin.caller(e);
        e.patch_group(
            &class_a.id,
            GroupPatch {
                name: Some("Class A1".into()),
                ..GroupPatch::default()
            },
        )
        .await
    })
    .await
    .expect("rename group");
    request("DELETE /api/v1/admin/groups/{id}", None, async {
        admin.caller(e);
        e.delete_group(&class_b.id).await
    })
    .await
    .expect("delete group");

    // Admin actions on the other student and the student.
    request("PATCH /api/v1/admin/players/{id}", None, async {
        admin.caller(e);
        e.patch_player(
            &other_id,
            PlayerPatch {
                display_name: Some("Other Student (edited)".into()),
                ..PlayerPatch::default()
            },
        )
        .await
    })
    .await
    .expect("patch player");
    request("PUT /api/v1/admin/players/{id}/grants", None, async {
        admin.caller(e);
        e.put_grants(&other_id, vec!["BAS-EXTRA".into(), "BAS-EXTRA".into()])
            .await
    })
    .await
    .expect("grants");
    request("POST /api/v1/admin/players/{id}/xp", None, async {
        let by = admin.caller(e);
        e.adjust_xp(&student_id, 50, "Fixture bonus", &by).await
    })
    .await
    .expect("adjust xp");
    // The teacher logs out (`SessionEnded`).
    request("POST /api/v1/auth/logout", None, async {
        let caller = teacher.caller(e);
        e.logout(&caller).await
    })
    .await
    .expect("logout");
    drop(other);

    checkpoint(e, true, true).await;
}

/// Days one to three: archives, flagging, purge, erasure, audit retention, a reset and
/// an idempotent completion; then a progress checkpoint.
async fn part_two(g: &Generator) {
    let e = &g.engine;
    let admin = login(e, ADMIN, None).await;
    g.clock.advance(Duration::from_secs(1800));
    for season in ["2024", "2025"] {
        request("POST /api/v1/admin/seasons/{id}/archive", None, async {
            admin.caller(e);
            let ticket = e.begin_archive(season).await?;
            e.run_archive(ticket, None).await
        })
        .await
        .unwrap_or_else(|err| panic!("archive {season}: {err}"));
    }

    // Day two: the student keeps her streak; the other student completes two lessons
    // without answers (plain `LessonCompleted`).
    g.clock.set(ts("2026-03-03T10:00:00Z"));
    let student = login(e, STUDENT, Some(STUDENT_DEVICE)).await;
    let other = login(e, OTHER, Some(OTHER_DEVICE)).await;
    complete(
        e,
        &student,
        "bas-l-005",
        2,
        &[answer("bas-q-005", Rating::Good)],
        None,
    )
    .await;
    complete(e, &other, "bas-l-001", 5, &[], None).await;
    complete(e, &other, "bas-l-002", 5, &[], None).await;

    // Day three (staff sessions end after 12 idle hours: log in again).
    g.clock.set(ts("2026-03-04T10:00:00Z"));
    let admin = login(e, ADMIN, None).await;
    // The weekly retention flagging (a job: no request context).
    let flagged = e.flag_retention().await.expect("flag retention");
    assert_eq!(flagged.eligible_cards, 3, "archived cards eligible");
    let purged = request("POST /api/v1/admin/archive/purge", None, async {
        let by = admin.caller(e);
        e.purge_archive(
            PurgeRequest {
                confirm: true,
                season_id: Some("2024".into()),
            },
            &by.player.id,
        )
        .await
    })
    .await
    .expect("purge");
    assert_eq!(purged.purged_cards, 1);
    // The purge starts a checkpoint of its own: let it finish before writing on.
    await_progress_checkpoint(e, e.journal_stats().durable_seq).await;

    let erased_id = player_id(e, ERASED);
    request("DELETE /api/v1/admin/players/{id}", None, async {
        let by = admin.caller(e);
        e.erase_player(&erased_id, &by).await
    })
    .await
    .expect("erase");
    let retention = e.audit_retention().await.expect("audit retention");
    assert!(retention.changed, "day-one client IPs are cleared");

    let other_id = player_id(e, OTHER);
    request(
        "POST /api/v1/admin/players/{id}/progress/reset",
        None,
        async {
            admin.caller(e);
            e.reset_progress(
                &other_id,
                &ResetBody {
                    subject_id: "bas".into(),
                    reason: "Fixture reset".into(),
                },
            )
            .await
        },
    )
    .await
    .expect("reset progress");

    let idem = IdemRequest::new(
        "POST",
        "/api/v1/lessons/bas-l-006/complete",
        COMPLETE_KEY,
        COMPLETE_BODY.as_bytes(),
    )
    .expect("idempotency key");
    let first = complete(
        e,
        &student,
        "bas-l-006",
        4,
        &[answer("bas-q-006", Rating::Easy)],
        Some(&idem),
    )
    .await;
    assert!(matches!(first, Replied::Fresh(_)));
    drop(other);
    checkpoint(e, true, false).await;
}

/// Day three, journal only: reviews with an idempotency key, completions, an import,
/// account, content, season and group changes, a journal failure and its probe, a
/// roster import.
async fn part_three(g: &Generator) {
    let e = &g.engine;
    g.clock.set(ts("2026-03-04T12:00:00Z"));
    let admin = login(e, ADMIN, None).await;
    let student = login(e, STUDENT, Some(STUDENT_DEVICE)).await;
    let other = login(e, OTHER, Some(OTHER_DEVICE)).await;

    let idem = IdemRequest::new(
        "POST",
        "/api/v1/reviews",
        REVIEW_KEY,
        REVIEW_BODY.as_bytes(),
    )
    .expect("idempotency key");
    let answers = [
        answer("bas-q-003", Rating::Good),
        answer("bas-q-004", Rating::Again),
    ];
    let reviewed = request("POST /api/v1/reviews", student.device, async {
        let caller = student.caller(e);
        e.submit_reviews(&caller, &answers, 1, Some(&idem)).await
    })
    .await
    .expect("reviews");
    assert!(matches!(reviewed, Replied::Fresh(_)));
    complete(
        e,
        &student,
        "bas-l-007",
        3,
        &[answer("bas-q-007", Rating::Good)],
        None,
    )
    .await;

    // A failed login, then a journal failure: one refused write, the probe that heals.
    let failed = request("POST /api/v1/auth/login", None, async {
        e.login(ADMIN, "not-the-password", None, None).await
    })
    .await;
    assert!(failed.is_err(), "a wrong password logs in");
    e.flush_audit().await.expect("flush audit");
    g.storage.faults.fail_syncs.store(1, Ordering::SeqCst);
    let refused = request(
        "POST /api/v1/lessons/{lesson_id}/complete",
        other.device,
        async {
            let caller = other.caller(e);
            e.complete_lesson(&caller, "bas-l-001", 4).await
        },
    )
    .await;
    assert!(
        refused.is_err(),
        "a write the journal failed was acknowledged"
    );
    assert!(e.is_degraded());
    e.probe_storage().await;
    assert!(!e.is_degraded(), "the probe did not heal the journal");
    complete(e, &other, "bas-l-001", 4, &[], None).await;

    let other_id = player_id(e, OTHER);
    request(
        "POST /api/v1/admin/players/{id}/reviews/import",
        None,
        async {
            let by = admin.caller(e);
            let prepared = e
                .prepare_review_import(&other_id, None, HISTORY_OTHER.as_bytes(), &by.player.id)
                .expect("prepare import");
            e.run_review_import(prepared, None).await
        },
    )
    .await
    .expect("import history");
    request("PATCH /api/v1/admin/players/{id}", None, async {
        admin.caller(e);
        e.patch_player(
            &other_id,
            PlayerPatch {
                grade: Some(Some("11".into())),
                ..PlayerPatch::default()
            },
        )
        .await
    })
    .await
    .expect("patch player");
    request("PUT /api/v1/admin/players/{id}/grants", None, async {
        admin.caller(e);
        e.put_grants(&other_id, vec!["BAS-EXTRA".into(), "BAS-MORE".into()])
            .await
    })
    .await
    .expect("grants");
    request("POST /api/v1/admin/players/{id}/logout", None, async {
        admin.caller(e);
        e.logout_everywhere(&other_id).await
    })
    .await
    .expect("logout everywhere");
    let student_id = player_id(e, STUDENT);
    request("POST /api/v1/admin/players/{id}/xp", None, async {
        let by = admin.caller(e);
        e.adjust_xp(&student_id, -20, "Fixture correction", &by)
            .await
    })
    .await
    .expect("adjust xp");
    request("POST /api/v1/admin/players", None, async {
        admin.caller(e);
        e.create_player(new_player(
            LATE,
            "Late Student",
            Role::Student,
            Some("format2"),
        ))
        .await
    })
    .await
    .expect("create late student");

    request("POST /api/v1/admin/seasons", None, async {
        admin.caller(e);
        e.create_season(NewSeason {
            id: "2027".into(),
            title: "Season 2027".into(),
            start_date: "2027-09-01".into(),
            end_date: "2028-06-30".into(),
            is_active: false,
            auto_archive: true,
        })
        .await
    })
    .await
    .expect("season 2027");
    request("PUT /api/v1/admin/subjects/{id}", None, async {
        admin.caller(e);
        e.put_subject(None, SPARE_SUBJECT.as_bytes()).await?;
        e.put_plan(None, SPARE_PLAN.as_bytes()).await?;
        e.delete_document(DocKind::Plan, "spare").await?;
        e.delete_document(DocKind::Subject, "spare").await
    })
    .await
    .expect("spare content");
    let late_id = player_id(e, LATE);
    request("POST /api/v1/admin/groups", None, async {
        admin.caller(e);
        let c = e
            .create_group(NewGroup {
                name: "Class C".into(),
                student_ids: vec![other_id.clone()],
                teacher_ids: Vec::new(),
            })
            .await?;
        e.patch_group(
            &c.id,
            GroupPatch {
                student_ids: Some(vec![other_id.clone(), late_id.clone()]),
                ..GroupPatch::default()
            },
        )
        .await?;
        let d = e
            .create_group(NewGroup {
                name: "Class D".into(),
                student_ids: Vec::new(),
                teacher_ids: Vec::new(),
            })
            .await?;
        e.delete_group(&d.id).await
    })
    .await
    .expect("groups");

    // A roster import: one `RosterImported` event, with the stored answer of its
    // idempotency key (the admin's).
    request("POST /api/v1/admin/players/import", None, async {
        let by = admin.caller(e);
        let parsed = Arc::new(e.roster_validate(ROSTER.as_bytes())?);
        let idem = IdemAnswer {
            request: roster_request(),
            answer: Box::new(|report: &CommitReport| {
                let body = serde_json::to_vec(&report.redacted()).expect("report JSON");
                (202, body)
            }),
        };
        e.roster_commit(
            parsed,
            file_sha(ROSTER.as_bytes()),
            &by.player.id,
            Some(idem),
            &|_| {},
        )
        .await
    })
    .await
    .expect("roster import");
    e.flush_audit().await.expect("flush audit");
}

/// The idempotent roster request of part 3.
fn roster_request() -> IdemRequest {
    IdemRequest::new(
        "POST",
        "/api/v1/admin/players/import",
        ROSTER_KEY,
        ROSTER.as_bytes(),
    )
    .expect("idempotency key")
}

/// Every record of the journal in `data_dir`, decoded.
fn journal_events(data_dir: &Path) -> Vec<(u64, Event)> {
    let dir = memora::engine::journal_dir(data_dir);
    let report = memora::persist::journal::scan(&dir).expect("scan journal");
    assert_eq!(report.torn_tail_bytes, 0, "the journal has a torn tail");
    assert_eq!(
        report.first_seq,
        Some(1),
        "the journal keeps every record since the start"
    );
    let last = report.last_seq.expect("records");
    memora::persist::journal::read_range(&dir, 0, last)
        .expect("read journal")
        .into_iter()
        .map(|(seq, payload)| {
            let event = memora::persist::codec::decode::<Event>(&payload)
                .unwrap_or_else(|e| panic!("journal record {seq} does not decode: {e}"));
            (seq, event)
        })
        .collect()
}

/// The variant name of an event (`Audited` also names the event it carries).
fn variant_names(event: &Event, out: &mut BTreeSet<String>) {
    let debug = format!("{event:?}");
    let name: String = debug
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    out.insert(name);
    if let Event::Audited { event, .. } = event {
        variant_names(event, out);
    }
}

/// Every journal event variant the fixture holds (all of them when it was written).
const VARIANTS: &[&str] = &[
    "SubjectPut",
    "SubjectDeleted",
    "PlanPut",
    "PlanDeleted",
    "PlayerPut",
    "SessionCreated",
    "SessionEnded",
    "LessonCompleted",
    "PlayerUpdated",
    "SessionsEnded",
    "XpAdjusted",
    "SeasonPut",
    "LessonCompletedV2",
    "ReviewsSubmitted",
    "StorageProbe",
    "Audited",
    "AuditBatch",
    "AuditExpired",
    "PlayerErased",
    "ProgressReset",
    "GroupPut",
    "GroupDeleted",
    "CardsArchived",
    "ArchiveFlagged",
    "ArchivePurged",
    "CardsImported",
    "RosterImported",
];

/// Rows of every redb table, by name.
fn table_rows(db: &redb::Database) -> BTreeMap<String, u64> {
    let txn = db.begin_read().expect("read txn");
    txn.list_tables()
        .expect("tables")
        .map(|handle| {
            let name = handle.name().to_owned();
            let table = txn.open_untyped_table(handle).expect("open table");
            (name, table.len().expect("len"))
        })
        .collect()
}

/// Every table of the fixture's `memora.redb` with its key and value types (as
/// `persist::snapshot::tables` lists them), with its rows as (key bytes, value bytes).
fn raw_rows(db: &redb::Database) -> BTreeMap<&'static str, Vec<RawRow>> {
    fn rows<K: redb::Key + 'static, V: redb::Value + 'static>(
        txn: &redb::ReadTransaction,
        name: &str,
    ) -> Vec<RawRow> {
        let def: TableDefinition<K, V> = TableDefinition::new(name);
        let table = txn
            .open_table(def)
            .unwrap_or_else(|e| panic!("open table {name}: {e}"));
        table
            .iter()
            .expect("iter")
            .map(|row| {
                let (k, v) = row.expect("row");
                (
                    K::as_bytes(&k.value()).as_ref().to_vec(),
                    V::as_bytes(&v.value()).as_ref().to_vec(),
                )
            })
            .collect()
    }
    type S = &'static str;
    type B = &'static [u8];
    let txn = db.begin_read().expect("read txn");
    let mut out = BTreeMap::new();
    for name in [
        "subjects",
        "plans",
        "players",
        "progress",
        "wallets",
        "seasons",
        "groups",
        "cards",
        "idempotency",
        "cards_archive",
    ] {
        out.insert(name, rows::<S, B>(&txn, name));
    }
    for name in ["sessions", "idempotency_expiry", "audit", "audit_index"] {
        out.insert(name, rows::<B, B>(&txn, name));
    }
    for name in ["meta", "card_counts", "mirror_meta"] {
        out.insert(name, rows::<S, u64>(&txn, name));
    }
    for name in ["audit_meta", "srs_archive_meta"] {
        out.insert(name, rows::<S, i64>(&txn, name));
    }
    out.insert("mirror_log", rows::<B, ()>(&txn, "mirror_log"));
    out.insert(
        "cards_archive_counts",
        rows::<B, u64>(&txn, "cards_archive_counts"),
    );
    out
}

/// A row as bytes: (key, value).
type RawRow = (Vec<u8>, Vec<u8>);

/// Rows of `table` whose key has `id` as one of its U+001F-separated parts.
fn keys_naming(raw: &BTreeMap<&'static str, Vec<RawRow>>, table: &str, id: &str) -> usize {
    raw[table]
        .iter()
        .filter(|(k, _)| {
            String::from_utf8_lossy(k)
                .split('\u{1f}')
                .any(|part| part == id)
        })
        .count()
}

/// The tables (of `raw`) whose keys or values contain `needle`.
fn tables_containing(raw: &BTreeMap<&'static str, Vec<RawRow>>, needle: &str) -> Vec<String> {
    let needle = needle.as_bytes();
    let holds = |bytes: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    raw.iter()
        .filter(|(_, rows)| rows.iter().any(|(k, v)| holds(k) || holds(v)))
        .map(|(name, _)| (*name).to_owned())
        .collect()
}

/// Kinds of the queued mirror rows (the character after the 8-byte checkpoint number).
fn mirror_kinds(raw: &BTreeMap<&'static str, Vec<RawRow>>) -> BTreeMap<String, u64> {
    let mut kinds = BTreeMap::new();
    for (key, _) in &raw["mirror_log"] {
        let kind = key.get(8).map_or('?', |b| char::from(*b));
        *kinds.entry(kind.to_string()).or_insert(0) += 1;
    }
    kinds
}

/// What the files hold, read without the engine: the journal's events, the checkpoint
/// sequences, the rows of every table and the anonymised rows of the erased student.
fn check_files(data_dir: &Path) -> FileFacts {
    let events = journal_events(data_dir);
    let mut names = BTreeSet::new();
    for (_, event) in &events {
        variant_names(event, &mut names);
    }
    let erasure = events
        .iter()
        .find_map(|(seq, e)| match e {
            Event::Audited { event, .. } => match &**event {
                Event::PlayerErased(erased) => Some((*seq, (**erased).clone())),
                _ => None,
            },
            _ => None,
        })
        .expect("the journal holds the erasure");
    let store = memora::persist::store::inspect(&data_dir.join("memora.redb"));
    let meta = match store {
        Ok(memora::persist::store::Inspection::Readable(meta, _)) => meta,
        other => panic!("memora.redb is not readable: {other:?}"),
    };
    let db = redb::Database::open(data_dir.join("memora.redb")).expect("open redb");
    let rows = table_rows(&db);
    let raw = raw_rows(&db);
    let listed: BTreeSet<&str> = raw.keys().copied().collect();
    let found: BTreeSet<&str> = rows.keys().map(String::as_str).collect();
    assert_eq!(found, listed, "tables of memora.redb");
    let (erased_id, anon_id) = (&erasure.1.player_id, &erasure.1.anon_id);
    let anonymised: BTreeMap<&str, usize> = [
        "players",
        "progress",
        "wallets",
        "cards",
        "cards_archive",
        "card_counts",
        "idempotency",
    ]
    .into_iter()
    .map(|table| (table, keys_naming(&raw, table, anon_id)))
    .collect();
    FileFacts {
        summary: json!({
            "journal_records": events.len(),
            "progress_seq": meta.progress_seq,
            "wallet_seq": meta.wallet_seq,
            "erased_at_seq": erasure.0,
            "table_rows": rows,
            "rows_under_anonymous_id": anonymised,
            // The queued erasure names the player for MariaDB (`n` key); nothing else.
            "tables_naming_erased_id": tables_containing(&raw, erased_id),
            "tables_naming_erased_email": tables_containing(&raw, ERASED),
            "mirror_queue_kinds": mirror_kinds(&raw),
        }),
        variants: names,
        erased_id: erasure.1.player_id,
        anon_id: erasure.1.anon_id,
    }
}

struct FileFacts {
    summary: Value,
    variants: BTreeSet<String>,
    erased_id: String,
    anon_id: String,
}

fn card_json(c: &memora::engine::privacy::ExportedCard) -> Value {
    json!({
        "season": c.season_id,
        "question": c.question_id,
        "state": format!("{:?}", c.state).to_lowercase(),
        "step": c.step,
        "stability": format!("{:.4}", c.stability),
        "difficulty": format!("{:.4}", c.difficulty),
        "due": c.due,
        "last_review": c.last_review,
        "reps": c.reps,
        "lapses": c.lapses,
    })
}

/// The state the engine shows after opening the data dir (at [`CHECK_AT`]).
async fn engine_state(engine: &Engine, files: &FileFacts) -> Value {
    let student_id = player_id(engine, STUDENT);
    // The audit log, every record (before the logins below add theirs).
    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    let (mut total, mut with_ip, mut anonymised, mut of_student) = (0u64, 0u64, 0u64, 0u64);
    let mut filter = AuditFilter {
        limit: 500,
        ..AuditFilter::default()
    };
    loop {
        let page = engine.audit_page(filter.clone()).await.expect("audit page");
        for item in &page.items {
            total += 1;
            let kind = serde_json::to_value(item.kind).expect("kind");
            *by_kind
                .entry(kind.as_str().unwrap_or("?").to_owned())
                .or_insert(0) += 1;
            with_ip += u64::from(item.client_ip.is_some());
            anonymised += u64::from(item.player_id.as_deref() == Some(files.anon_id.as_str()));
            of_student += u64::from(item.player_id.as_deref() == Some(student_id.as_str()));
            assert_ne!(
                item.player_id.as_deref(),
                Some(files.erased_id.as_str()),
                "an audit record still names the erased player"
            );
        }
        match page.next_key {
            Some(key) => filter.before = Some(key),
            None => break,
        }
    }

    let admin = login(engine, ADMIN, None).await.caller(engine);
    let student = login(engine, STUDENT, Some(STUDENT_DEVICE))
        .await
        .caller(engine);
    let progress: Value =
        serde_json::from_slice(&engine.progress_json(&student, "bas").expect("progress"))
            .expect("progress JSON");
    let passed: BTreeMap<String, u8> = crate::util::lesson_states(&progress)
        .into_iter()
        .filter(|(_, (status, _))| status == "passed")
        .map(|(id, (_, hearts))| (id, hearts))
        .collect();
    let wallet = engine.wallet(&student).expect("wallet");
    let export = engine.export_player(&student_id).await.expect("export");
    let cards: Vec<Value> = export.cards.iter().map(card_json).collect();
    let mut archived = BTreeMap::new();
    for season in ["2024", "2025"] {
        let rows = engine
            .archived_cards_of(&student_id, season)
            .expect("archived cards");
        archived.insert(
            season,
            rows.iter()
                .map(|(q, at, card)| {
                    json!({"question": q, "archived_at": memora::engine::accounts::rfc3339(*at),
                           "due": memora::engine::accounts::rfc3339(card.due_ms),
                           "reps": card.reps})
                })
                .collect::<Vec<_>>(),
        );
    }
    let mut status = BTreeMap::new();
    for season in engine.seasons() {
        let s = engine.archive_status(&season.id).expect("archive status");
        status.insert(
            season.id.clone(),
            json!({"active": s.is_active, "auto_archive": s.auto_archive, "live": s.live_cards,
                   "archived": s.archived_cards, "eligible": s.eligible_for_deletion}),
        );
    }

    let email_of = |id: &String| {
        engine
            .player(id)
            .map_or_else(|| format!("<{id}>"), |p| p.email.clone())
    };
    let groups: Vec<Value> = {
        let mut groups = engine.groups_for(&admin);
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        groups
            .iter()
            .map(|g| {
                json!({"name": g.name,
                       "students": g.student_ids.iter().map(email_of).collect::<Vec<_>>(),
                       "teachers": g.teacher_ids.iter().map(email_of).collect::<Vec<_>>()})
            })
            .collect()
    };

    let other_id = player_id(engine, OTHER);
    let other = engine.export_player(&other_id).await.expect("export other");
    let other_cards: Vec<Value> = other.cards.iter().map(card_json).collect();
    let erased_export = engine.export_player(&files.erased_id).await;
    let erased_login = engine
        .login(ERASED, PASSWORD, Some(ERASED_DEVICE), None)
        .await;
    let late = engine.player_by_email(LATE).expect("late student");
    let rostered = engine.player_by_email(ROSTERED).expect("roster student");
    let rostered_login = engine
        .login(ROSTERED, PASSWORD, Some(ROSTERED_DEVICE), None)
        .await
        .map_or_else(
            |e| memora::engine::audit::code_name(e.code),
            |_| "ok".to_owned(),
        );
    let catalog = engine.catalog();
    let mut players: Vec<String> = engine
        .list_players(&memora::engine::privacy::PlayerFilter {
            limit: 100,
            ..Default::default()
        })
        .items
        .iter()
        .map(|p| p.email.clone())
        .collect();
    players.sort();

    json!({
        "student": {
            "passed": passed,
            "passed_lessons": progress["passed_lessons"],
            "subject_xp": progress["total_xp_earned"],
            "wallet": {
                "total_xp": wallet.total_xp,
                "current_streak": wallet.current_streak,
                "longest_streak": wallet.longest_streak,
                "last_success_date": wallet.last_success_date.map(|d| d.to_string()),
            },
            "cards": cards,
            "archived": archived,
            "audit_records": of_student,
        },
        "other": {
            "display_name": other.player.display_name,
            "grade": other.player.grade,
            "grants": other.player.grants,
            "progress": other.progress.iter().map(|p| json!([p.subject_id, p.passed_lessons, p.total_xp_earned])).collect::<Vec<_>>(),
            "wallet_xp": other.wallet.total_xp,
            "cards": other_cards,
            "open_sessions": other.sessions.iter().filter(|s| s.ended_at.is_none()).count(),
        },
        "erased": {
            "export": erased_export.err().map(|e| memora::engine::audit::code_name(e.code)),
            "login": erased_login.err().map(|e| memora::engine::audit::code_name(e.code)),
            "audit_records_anonymised": anonymised,
        },
        "roster": {
            "late": [late.display_name, late.grade, late.must_change_password],
            "created": [rostered.display_name, rostered.plan_id, rostered.grade, rostered.timezone],
            "login": rostered_login,
        },
        "archive_status": status,
        "audit": {"total": total, "with_client_ip": with_ip, "by_kind": by_kind},
        "groups": groups,
        "players": players,
        "seasons": engine.seasons().iter().map(|s| json!([s.id, s.is_active])).collect::<Vec<_>>(),
        "subjects": catalog.subjects().map(|s| s.id.clone()).collect::<Vec<_>>(),
        "plans": catalog.plans().map(|p| p.id.clone()).collect::<Vec<_>>(),
    })
}

/// A stored answer as `{status, body}`.
fn stored<T>(replied: Replied<T>, what: &str) -> Value {
    match replied {
        Replied::Stored { status, body } => {
            let body: Value = serde_json::from_slice(&body).expect("stored JSON");
            json!({"status": status, "body": body})
        }
        Replied::Fresh(_) => panic!("the stored {what} answer was not replayed"),
    }
}

/// The idempotent answers stored in the fixture (a review session, a completion) are
/// answered again as stored, without journaling anything.
async fn check_replays(engine: &Engine) {
    let student = login(engine, STUDENT, Some(STUDENT_DEVICE)).await;
    let caller = student.caller(engine);
    let before = engine.journal_stats().durable_seq;
    let idem = IdemRequest::new(
        "POST",
        "/api/v1/reviews",
        REVIEW_KEY,
        REVIEW_BODY.as_bytes(),
    )
    .expect("key");
    let answers = [
        answer("bas-q-003", Rating::Good),
        answer("bas-q-004", Rating::Again),
    ];
    let review = engine
        .submit_reviews(&caller, &answers, 1, Some(&idem))
        .await
        .expect("replayed review");
    let review = stored(review, "review");
    let idem = IdemRequest::new(
        "POST",
        "/api/v1/lessons/bas-l-006/complete",
        COMPLETE_KEY,
        COMPLETE_BODY.as_bytes(),
    )
    .expect("key");
    let completion = engine
        .complete_lesson_with(
            &caller,
            "bas-l-006",
            4,
            &[answer("bas-q-006", Rating::Easy)],
            Some(&idem),
        )
        .await
        .expect("replayed completion");
    let completion = stored(completion, "completion");
    let admin = player_id(engine, ADMIN);
    let roster = match engine
        .idempotency_begin(&admin, &roster_request())
        .expect("roster replay")
    {
        Begin::Stored { status, body } => {
            let body: Value = serde_json::from_slice(&body).expect("stored JSON");
            json!({"status": status, "commit": body["commit"], "summary": body["summary"],
                   "passwords_redacted": body["passwords_redacted"]})
        }
        Begin::Proceed(_) => panic!("the stored roster answer was not replayed"),
    };
    assert_eq!(
        engine.journal_stats().durable_seq,
        before,
        "a replayed answer journaled something"
    );
    assert_json(
        "the stored answers",
        &json!({"review": review, "completion": completion, "roster": roster}),
        &known_replays(),
    );
}

/// The stored idempotent answers (see [`check_replays`]).
fn known_replays() -> Value {
    json!({
      "review": {
        "status": 200,
        "body": {
          "processed": 2,
          "xp_earned": 12,
          "new_total_xp": 352,
          "streak": {
            "old_streak": 3,
            "new_streak": 3,
            "action": "maintained",
            "last_success_date": "2026-03-04"
          },
          "items": [
            {
              "question_id": "bas-q-003",
              "state": "review",
              "due": "2026-03-14T12:00:00Z",
              "interval_days": 10,
              "stability": 10.964341,
              "difficulty": 2.1112142
            },
            {
              "question_id": "bas-q-004",
              "state": "relearning",
              "due": "2026-03-04T12:10:00Z",
              "interval_days": 0,
              "stability": 1.2468487,
              "difficulty": 7.0269895
            }
          ]
        }
      },
      "completion": {
        "status": 200,
        "body": {
          "lesson_id": "bas-l-006",
          "subject_id": "bas",
          "is_first_completion": true,
          "is_new_record": true,
          "xp_earned": 50,
          "best_hearts": 4,
          "new_total_xp": 340,
          "streak": {
            "old_streak": 2,
            "new_streak": 3,
            "action": "incremented",
            "last_success_date": "2026-03-04"
          },
          "progress": {
            "passed_lessons": 6,
            "total_lessons": 29,
            "completion_percentage": 20.69,
            "suggested_next_lesson_id": "bas-l-007"
          },
          "srs_skipped": false
        }
      },
      "roster": {
        "status": 202,
        "commit": true,
        "summary": {
          "rows": 2,
          "create": 1,
          "update": 1,
          "unchanged": 0,
          "error_rows": 0
        },
        "passwords_redacted": true
      }
    })
}

/// `memora check` on `data_dir` reports no problem.
fn check_cli(data_dir: &Path) {
    let run = crate::util::memora::<&str>(
        None,
        &["check"],
        &[
            ("MEMORA_STORAGE__DATA_DIR", data_dir.to_str().expect("utf8")),
            ("MEMORA_LOG__LEVEL", "warn"),
        ],
    );
    assert!(run.status.success(), "memora check failed:\n{run}");
    assert!(
        run.stdout.matches(": ok").count() == 2 && run.stdout.contains("torn tail 0 bytes"),
        "memora check did not find the redb file and the journal sound:\n{run}"
    );
}

/// Differences between `actual` and `expected` as `pointer: found …, expected …` lines.
fn json_diff(path: &str, actual: Option<&Value>, expected: Option<&Value>, out: &mut Vec<String>) {
    match (actual, expected) {
        (Some(Value::Object(a)), Some(Value::Object(e))) => {
            let keys: BTreeSet<&String> = a.keys().chain(e.keys()).collect();
            for key in keys {
                json_diff(&format!("{path}/{key}"), a.get(key), e.get(key), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(e))) if a.len() == e.len() => {
            for (i, (a, e)) in a.iter().zip(e).enumerate() {
                json_diff(&format!("{path}/{i}"), Some(a), Some(e), out);
            }
        }
        (a, e) if a == e => {}
        (a, e) => {
            let show =
                |v: Option<&Value>| v.map_or_else(|| "(absent)".to_owned(), Value::to_string);
            out.push(format!("{path}: found {}, expected {}", show(a), show(e)));
        }
    }
}

fn assert_json(what: &str, actual: &Value, expected: &Value) {
    let mut diff = Vec::new();
    json_diff("", Some(actual), Some(expected), &mut diff);
    assert!(
        diff.is_empty(),
        "{what} differ from the known state:\n{}\n--- found:\n{}",
        diff.join("\n"),
        serde_json::to_string_pretty(actual).unwrap_or_default()
    );
}

/// Checks the files, `memora check`, then opens `data_dir` and checks the known state.
async fn assert_known_state(data_dir: &Path) {
    let files = check_files(data_dir);
    let missing: Vec<&&str> = VARIANTS
        .iter()
        .filter(|v| !files.variants.contains(**v))
        .collect();
    assert!(missing.is_empty(), "journal variants missing: {missing:?}");
    assert_json("the files", &files.summary, &known_files());
    check_cli(data_dir);
    let engine = Engine::open(
        config(data_dir, false),
        Arc::new(FakeClock::new(ts(CHECK_AT))),
    )
    .unwrap_or_else(|e| panic!("open {}: {e}", data_dir.display()));
    let recovery = engine.recovery().clone();
    let mut state = engine_state(&engine, &files).await;
    state["recovery"] = json!({
        "replayed": recovery.replayed,
        "last_seq": recovery.last_seq,
        "truncated_tail_bytes": recovery.truncated_tail_bytes,
    });
    assert_json("the engine's state", &state, &known_state());
    check_replays(&engine).await;
}

/// What the files hold (see [`check_files`]).
fn known_files() -> Value {
    json!({
      "journal_records": 73,
      "progress_seq": 49,
      "wallet_seq": 33,
      "erased_at_seq": 45,
      "table_rows": {
        "audit": 40,
        "audit_index": 80,
        "audit_meta": 2,
        "card_counts": 2,
        "cards": 7,
        "cards_archive": 2,
        "cards_archive_counts": 1,
        "groups": 1,
        "idempotency": 1,
        "idempotency_expiry": 1,
        "meta": 3,
        "mirror_log": 86,
        "mirror_meta": 1,
        "plans": 1,
        "players": 4,
        "progress": 3,
        "seasons": 3,
        "sessions": 8,
        "srs_archive_meta": 2,
        "subjects": 1,
        "wallets": 2
      },
      "rows_under_anonymous_id": {
        "card_counts": 1,
        "cards": 1,
        "cards_archive": 1,
        "idempotency": 0,
        "players": 0,
        "progress": 1,
        "wallets": 1
      },
      "tables_naming_erased_id": [
        "mirror_log"
      ],
      "tables_naming_erased_email": [],
      "mirror_queue_kinds": {
        "a": 45,
        "c": 1,
        "e": 1,
        "k": 14,
        "n": 1,
        "p": 8,
        "r": 1,
        "s": 1,
        "u": 6,
        "v": 3,
        "w": 4,
        "x": 1
      }
    })
}

/// What the engine shows (see [`engine_state`]).
fn known_state() -> Value {
    json!({
      "student": {
        "passed": {
          "bas-l-001": 5,
          "bas-l-002": 4,
          "bas-l-003": 3,
          "bas-l-004": 5,
          "bas-l-005": 2,
          "bas-l-006": 4,
          "bas-l-007": 3
        },
        "passed_lessons": 7,
        "subject_xp": 330,
        "wallet": {
          "total_xp": 372,
          "current_streak": 3,
          "longest_streak": 3,
          "last_success_date": "2026-03-04"
        },
        "cards": [
          {
            "season": "2026",
            "question": "bas-q-003",
            "state": "review",
            "step": 0,
            "stability": "10.9643",
            "difficulty": "2.1112",
            "due": "2026-03-14T12:00:00Z",
            "last_review": "2026-03-04T12:00:00Z",
            "reps": 2,
            "lapses": 0
          },
          {
            "season": "2026",
            "question": "bas-q-004",
            "state": "relearning",
            "step": 0,
            "stability": "1.2468",
            "difficulty": "7.0270",
            "due": "2026-03-04T12:10:00Z",
            "last_review": "2026-03-04T12:00:00Z",
            "reps": 2,
            "lapses": 1
          },
          {
            "season": "2026",
            "question": "bas-q-005",
            "state": "learning",
            "step": 1,
            "stability": "2.3065",
            "difficulty": "2.1181",
            "due": "2026-03-03T10:10:00Z",
            "last_review": "2026-03-03T10:00:00Z",
            "reps": 1,
            "lapses": 0
          },
          {
            "season": "2026",
            "question": "bas-q-006",
            "state": "review",
            "step": 0,
            "stability": "8.2956",
            "difficulty": "1.0000",
            "due": "2026-03-11T10:00:00Z",
            "last_review": "2026-03-04T10:00:00Z",
            "reps": 1,
            "lapses": 0
          },
          {
            "season": "2026",
            "question": "bas-q-007",
            "state": "learning",
            "step": 1,
            "stability": "2.3065",
            "difficulty": "2.1181",
            "due": "2026-03-04T12:10:00Z",
            "last_review": "2026-03-04T12:00:00Z",
            "reps": 1,
            "lapses": 0
          },
          {
            "season": "2026",
            "question": "bas-q-020",
            "state": "review",
            "step": 0,
            "stability": "18.5218",
            "difficulty": "1.0000",
            "due": "2026-02-23T09:30:00Z",
            "last_review": "2026-02-03T09:30:00Z",
            "reps": 2,
            "lapses": 0
          },
          {
            "season": "2026",
            "question": "bas-q-021",
            "state": "review",
            "step": 0,
            "stability": "4.0101",
            "difficulty": "6.3909",
            "due": "2026-02-15T08:53:20Z",
            "last_review": "2026-02-11T08:53:20Z",
            "reps": 3,
            "lapses": 0
          }
        ],
        "archived": {
          "2024": [],
          "2025": [
            {
              "question": "bas-q-002",
              "archived_at": "2026-03-02T10:40:00Z",
              "due": "2026-03-02T10:05:30Z",
              "reps": 1
            }
          ]
        },
        "audit_records": 19
      },
      "other": {
        "display_name": "Other Student (edited)",
        "grade": "11",
        "grants": [
          "BAS-EXTRA",
          "BAS-MORE"
        ],
        "progress": [
          [
            "bas",
            [
              "bas-l-001"
            ],
            50
          ]
        ],
        "wallet_xp": 170,
        "cards": [
          {
            "season": "2026",
            "question": "bas-q-025",
            "state": "learning",
            "step": 1,
            "stability": "10.1294",
            "difficulty": "5.1023",
            "due": "2026-01-25T12:10:00Z",
            "last_review": "2026-01-25T12:00:00Z",
            "reps": 2,
            "lapses": 0
          }
        ],
        "open_sessions": 0
      },
      "erased": {
        "export": "NOT_FOUND",
        "login": "INVALID_CREDENTIALS",
        "audit_records_anonymised": 6
      },
      "roster": {
        "late": [
          "Late Student (roster)",
          "12",
          false
        ],
        "created": [
          "Roster Student",
          "format2",
          "10",
          "UTC"
        ],
        "login": "ok"
      },
      "archive_status": {
        "2024": {
          "active": false,
          "auto_archive": false,
          "live": 0,
          "archived": 0,
          "eligible": 0
        },
        "2025": {
          "active": false,
          "auto_archive": false,
          "live": 0,
          "archived": 2,
          "eligible": 2
        },
        "2026": {
          "active": true,
          "auto_archive": false,
          "live": 9,
          "archived": 0,
          "eligible": 0
        },
        "2027": {
          "active": false,
          "auto_archive": true,
          "live": 0,
          "archived": 0,
          "eligible": 0
        }
      },
      "audit": {
        "total": 59,
        "with_client_ip": 31,
        "by_kind": {
          "admin_action": 23,
          "device_added": 3,
          "lesson_attempt": 12,
          "login_failed": 2,
          "login_success": 12,
          "logout": 1,
          "review_answer": 2,
          "session_replaced": 4
        }
      },
      "groups": [
        {
          "name": "Class A1",
          "students": [
            "student@format2.test"
          ],
          "teachers": [
            "teacher@format2.test"
          ]
        },
        {
          "name": "Class C",
          "students": [
            "other@format2.test",
            "late@format2.test"
          ],
          "teachers": []
        }
      ],
      "players": [
        "admin@format2.test",
        "late@format2.test",
        "other@format2.test",
        "roster@format2.test",
        "student@format2.test",
        "teacher@format2.test"
      ],
      "seasons": [
        [
          "2024",
          false
        ],
        [
          "2025",
          false
        ],
        [
          "2026",
          true
        ],
        [
          "2027",
          false
        ]
      ],
      "subjects": [
        "bas"
      ],
      "plans": [
        "format2"
      ],
      "recovery": {
        "replayed": 40,
        "last_seq": 73,
        "truncated_tail_bytes": 0
      }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_v2_fixture_opens_with_its_known_state() {
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
async fn format_v2_generator_writes_the_known_state() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = tmp.path().join("data");
    generate(&data_dir).await;
    if std::env::var_os("MEMORA_TEST_WRITE_FORMAT_V2_FIXTURE").is_some() {
        let target = fixture_dir();
        let _ = std::fs::remove_dir_all(&target);
        copy_dir(&data_dir, &target);
        println!("wrote {}", target.display());
    }
    // The checks work on a copy: opening replays and may write.
    let copy = tmp.path().join("copy");
    copy_dir(&data_dir, &copy);
    assert_known_state(&copy).await;
}
