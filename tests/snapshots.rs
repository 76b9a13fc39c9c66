//! Snapshots, restore, verify, compact (persistence.md "Snapshots, backup and restore"):
//! a snapshot taken under concurrent writes restores to the state after exactly the
//! journal records up to its sequence (checked against the journal itself); damaged,
//! truncated and newer files are refused and change nothing; a server holding the data
//! directory blocks restore and compaction; the API, the CLI (online and offline) and the
//! schedule write snapshots and keep the newest N; `[snapshots.upload]` copies each one to
//! a real S3-compatible server (moto) and a failed copy keeps the local file; in degraded
//! mode a snapshot runs while the journal fails and is refused on a low disk; the
//! committed snapshot fixture opens.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use memora::clock::FakeClock;
use memora::config::Config;
use memora::engine::Engine;
use memora::engine::accounts::{Caller, NewPlayer};
use memora::engine::event::Event;
use memora::engine::snapshots::SnapshotReport;
use memora::persist::journal::FaultyStorage;
use memora::persist::snapshot::{self, Header, NoProgress, SnapshotError};
use memora::players::account::Role;
use reqwest::Method;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::util::s3::{S3Server, skip as s3_skip};
use crate::util::scenario::{self, Acked};
use crate::util::{Server, fixture_path, memora};

const START: &str = "2026-11-21T09:00:00Z";
const STUDENT_PASSWORD: &str = "student-password-1";

fn config(data_dir: &Path, snapshots: &Path, extra: &[(&str, &str)]) -> Config {
    let base = [
        ("MEMORA_STORAGE__DATA_DIR", data_dir.to_str().expect("utf8")),
        (
            "MEMORA_STORAGE__SNAPSHOTS_DIR",
            snapshots.to_str().expect("utf8"),
        ),
        ("MEMORA_AUTH__ARGON2_MEMORY_KIB", "64"),
        ("MEMORA_AUTH__ARGON2_ITERATIONS", "1"),
        ("MEMORA_CHECKPOINT__PROGRESS_INTERVAL_SECS", "3600"),
        ("MEMORA_CHECKPOINT__WALLET_INTERVAL_SECS", "3600"),
        ("MEMORA_SNAPSHOTS__INTERVAL", "off"),
        ("MEMORA_LOG__LEVEL", "warn"),
    ];
    Config::load(
        None,
        base.iter()
            .chain(extra)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
    .expect("test config")
}

/// A temporary root with `data/` and `snaps/`, and an engine on it.
struct Setup {
    _root: tempfile::TempDir,
    data: PathBuf,
    snaps: PathBuf,
    clock: FakeClock,
}

impl Setup {
    fn new() -> Setup {
        let root = tempfile::tempdir().expect("tempdir");
        Setup {
            data: root.path().join("data"),
            snaps: root.path().join("snaps"),
            _root: root,
            clock: FakeClock::new(START.parse().expect("timestamp")),
        }
    }

    fn config(&self, extra: &[(&str, &str)]) -> Config {
        config(&self.data, &self.snaps, extra)
    }

    fn open(&self, extra: &[(&str, &str)]) -> Engine {
        Engine::open(self.config(extra), Arc::new(self.clock.clone())).expect("engine")
    }

    /// A fresh data directory next to this one, with the same snapshot folder.
    fn other_data_dir(&self, name: &str) -> Config {
        let root = self.data.parent().expect("root");
        config(&root.join(name), &self.snaps, &[])
    }
}

/// Imports the school curriculum and creates `n` students; returns their callers.
async fn school(engine: &Engine, n: usize) -> Vec<Caller> {
    let read = |name: &str| std::fs::read(fixture_path(name)).expect("fixture");
    for name in ["basics.subject.json", "chain.subject.json"] {
        engine
            .put_subject(None, &read(name))
            .await
            .expect("subject");
    }
    engine
        .put_plan(None, &read("school.plan.json"))
        .await
        .expect("plan");
    let mut callers = Vec::new();
    for i in 0..n {
        let view = engine
            .create_player(NewPlayer {
                email: format!("s{i}@snap.test"),
                password: STUDENT_PASSWORD.into(),
                display_name: format!("Student {i}"),
                role: Some(Role::Student),
                plan_id: Some("school".into()),
                grade: None,
                stream: None,
                timezone: Some("UTC".into()),
                grants: Vec::new(),
            })
            .await
            .expect("student");
        callers.push(caller(engine, &view.id));
    }
    callers
}

/// A caller for `player_id` without a login (the engine's reads and writes only look at
/// the player).
fn caller(engine: &Engine, player_id: &str) -> Caller {
    Caller {
        player: engine
            .player(player_id)
            .unwrap_or_else(|| panic!("no player {player_id}")),
        token_hash: [0; 32],
        device_id: None,
        session_created_at_ms: 0,
    }
}

async fn snapshot(engine: &Engine) -> SnapshotReport {
    let e = engine.clone();
    tokio::task::spawn_blocking(move || e.snapshot(&NoProgress))
        .await
        .expect("snapshot task")
        .unwrap_or_else(|e| panic!("snapshot: {e}"))
}

async fn shutdown(engine: Engine) {
    tokio::task::spawn_blocking(move || engine.shutdown())
        .await
        .expect("shutdown task")
        .expect("clean shutdown");
}

fn restore_into(config: &Config, file: &Path) -> Result<snapshot::RestoreReport, SnapshotError> {
    let data = &config.storage.data_dir;
    snapshot::restore(
        &data.join(memora::engine::REDB_FILE),
        &memora::engine::journal_dir(data),
        file,
        START.parse().expect("timestamp"),
        &NoProgress,
    )
}

/// A digest of every file under `dir` (names and contents), to show nothing changed.
fn tree_digest(dir: &Path) -> String {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push((path.clone(), std::fs::read(&path).expect("read")));
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    let mut hasher = Sha256::new();
    for (path, bytes) in files {
        hasher.update(path.to_string_lossy().as_bytes());
        hasher.update(&bytes);
    }
    hex::encode(hasher.finalize())
}

/// One completion as the journal recorded it.
#[derive(Debug, Clone)]
struct Completion {
    seq: u64,
    player: String,
    lesson: String,
    best_hearts: u8,
    subject_xp: u64,
    wallet_xp: i64,
}

/// Every completion in the journal of `data_dir`, up to `through`.
fn journaled_completions(data_dir: &Path, through: u64) -> Vec<Completion> {
    let records =
        memora::persist::journal::read_range(&memora::engine::journal_dir(data_dir), 0, through)
            .expect("the whole journal is still there");
    let mut out = Vec::new();
    for (seq, payload) in records {
        let mut event: Event = memora::persist::codec::decode(&payload).expect("event");
        // A completion travels with its interaction record (audit).
        while let Event::Audited { event: inner, .. } = event {
            event = *inner;
        }
        let done = match event {
            Event::LessonCompleted(done) => *done,
            Event::LessonCompletedV2(v2) => v2.completion,
            _ => continue,
        };
        out.push(Completion {
            seq,
            player: done.player_id,
            lesson: done.lesson_id,
            best_hearts: done.decision.best_hearts,
            subject_xp: done.decision.new_subject_xp,
            wallet_xp: done.wallet_total_xp,
        });
    }
    out
}

/// A student's state after the records up to some sequence.
#[derive(Debug, Default, PartialEq, Eq)]
struct Expected {
    lessons: BTreeMap<String, u8>,
    subject_xp: u64,
    wallet_xp: i64,
}

fn expected_at(completions: &[Completion], seq: u64) -> BTreeMap<String, Expected> {
    let mut out: BTreeMap<String, Expected> = BTreeMap::new();
    for c in completions.iter().filter(|c| c.seq <= seq) {
        let e = out.entry(c.player.clone()).or_default();
        e.lessons.insert(c.lesson.clone(), c.best_hearts);
        e.subject_xp = c.subject_xp;
        e.wallet_xp = c.wallet_xp;
    }
    out
}

/// The restored state of a student, read through the engine (chain subject only).
fn observed(engine: &Engine, player_id: &str) -> Expected {
    let caller = caller(engine, player_id);
    let progress: Value =
        serde_json::from_slice(&engine.progress_json(&caller, "chain").expect("progress"))
            .expect("progress JSON");
    let lessons = crate::util::lesson_states(&progress)
        .into_iter()
        .filter(|(_, (status, _))| status == "passed")
        .map(|(id, (_, hearts))| (id, hearts))
        .collect();
    let wallet = engine.wallet(&caller).expect("wallet");
    Expected {
        lessons,
        subject_xp: progress["total_xp_earned"].as_u64().unwrap_or(u64::MAX),
        wallet_xp: wallet.total_xp,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_under_concurrent_writes_restores_to_exactly_its_sequence() {
    let setup = Setup::new();
    let engine = setup.open(&[]);
    let students = school(&engine, 12).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for caller in &students {
        let caller = caller.clone();
        let engine = engine.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            // Along the chain, then the last lesson again with changing hearts.
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let lesson = format!("ch-l-{:03}", n.min(200));
                let hearts = 1 + (n % 5) as i64;
                engine
                    .complete_lesson(&caller, &lesson, hearts)
                    .await
                    .unwrap_or_else(|e| panic!("complete {lesson}: {e}"));
            }
            n
        }));
    }
    // Let the writers get going, then snapshot several times while they write.
    while engine.journal_stats().durable_seq < 100 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut reports = Vec::new();
    for _ in 0..4 {
        reports.push(snapshot(&engine).await);
        setup.clock.advance(Duration::from_secs(1));
    }
    stop.store(true, Ordering::Relaxed);
    let mut written = 0;
    for w in writers {
        written += w.await.expect("writer");
    }
    let last = engine.journal_stats().durable_seq;
    let completions = journaled_completions(&setup.data, last);
    assert_eq!(
        completions.len() as u64,
        written,
        "every completion is journaled"
    );
    assert!(
        reports.iter().all(|r| r.seq < last),
        "writes went on after every snapshot ({reports:?}, last {last})"
    );
    assert!(
        reports.iter().any(|r| r.replayed > 0),
        "no snapshot caught writes during its checkpoint, so the replay of the tail was not exercised: {reports:?}"
    );
    shutdown(engine).await;

    for (i, report) in reports.iter().enumerate() {
        assert_eq!(report.seq, report.checkpoint_seq + report.replayed);
        let target = setup.other_data_dir(&format!("restored-{i}"));
        let restored = restore_into(&target, &report.file).expect("restore");
        assert_eq!(restored.header.seq, report.seq);
        let engine = Engine::open(target, Arc::new(setup.clock.clone())).expect("open restored");
        assert_eq!(
            engine.recovery().replayed,
            0,
            "a restored state replays nothing"
        );
        let expected = expected_at(&completions, report.seq);
        for student in &students {
            let id = &student.player.id;
            let got = observed(&engine, id);
            let want = expected
                .get(id)
                .map_or_else(Expected::default, |e| Expected {
                    lessons: e.lessons.clone(),
                    subject_xp: e.subject_xp,
                    wallet_xp: e.wallet_xp,
                });
            assert_eq!(
                got, want,
                "student {id} in snapshot {i} (seq {}, checkpoint {}, {} replayed)",
                report.seq, report.checkpoint_seq, report.replayed
            );
            assert_eq!(
                got.wallet_xp,
                i64::try_from(got.subject_xp).expect("xp"),
                "wallet XP equals the XP of the only subject played"
            );
        }
        shutdown(engine).await;
    }
}

/// An engine with a school, two students and a few completions, stopped; returns the
/// snapshot taken after the first three completions and the setup. Two more
/// completions follow the snapshot.
async fn stopped_with_snapshot() -> (Setup, SnapshotReport, Vec<String>) {
    let setup = Setup::new();
    let engine = setup.open(&[]);
    let students = school(&engine, 2).await;
    for lesson in ["ch-l-001", "ch-l-002", "ch-l-003"] {
        engine
            .complete_lesson(&students[0], lesson, 4)
            .await
            .expect("complete");
    }
    let report = snapshot(&engine).await;
    for lesson in ["ch-l-004", "ch-l-005"] {
        engine
            .complete_lesson(&students[0], lesson, 5)
            .await
            .expect("complete");
    }
    let ids = students.iter().map(|c| c.player.id.clone()).collect();
    shutdown(engine).await;
    (setup, report, ids)
}

fn damaged_copy(file: &Path, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = std::fs::read(file).expect("read snapshot");
    edit(&mut bytes);
    let path = file.with_file_name(name);
    std::fs::write(&path, bytes).expect("write copy");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_truncated_and_newer_files_are_refused_and_change_nothing() {
    let (setup, report, ids) = stopped_with_snapshot().await;
    let file = &report.file;
    let (header, offset) = {
        let mut f = std::fs::File::open(file).expect("open");
        let len = f.metadata().expect("len").len();
        Header::read_from(&mut f, file, len).expect("header")
    };
    let flipped = damaged_copy(file, "flipped.snap", |b| {
        let middle = offset as usize + (b.len() - offset as usize) / 2;
        b[middle] ^= 0x40;
    });
    let truncated = damaged_copy(file, "truncated.snap", |b| b.truncate(b.len() - 1000));
    let newer_container = damaged_copy(file, "newer.snap", |b| {
        b[8..12].copy_from_slice(&(snapshot::SNAPSHOT_FORMAT + 1).to_le_bytes());
    });
    let newer_store = damaged_copy(file, "newer-store.snap", |b| {
        let payload = b.split_off(offset as usize);
        b.clear();
        let newer = Header {
            store_format: memora::persist::store::STORE_FORMAT + 1,
            ..header.clone()
        };
        newer.write_to(b).expect("header");
        b.extend_from_slice(&payload);
    });
    let not_a_snapshot = damaged_copy(file, "notes.snap", |b| {
        *b = b"these are not the bytes you are looking for".to_vec();
    });

    let before = tree_digest(&setup.data);
    let newer_store_message = format!(
        "storage format {} is newer",
        memora::persist::store::STORE_FORMAT + 1
    );
    let cases: [(&Path, &str); 5] = [
        (&flipped, "SHA-256 does not match"),
        (&truncated, "truncated"),
        (&newer_container, "snapshot format 2 is newer"),
        (&newer_store, &newer_store_message),
        (&not_a_snapshot, "not a Memora snapshot"),
    ];
    for (path, message) in cases {
        let err = restore_into(&setup.config(&[]), path).expect_err("a bad file must be refused");
        assert!(
            err.to_string().contains(message) && err.to_string().contains(&*path.to_string_lossy()),
            "{}: {err}",
            path.display()
        );
        let cli = memora(None, &[Path::new("verify"), path], &[]);
        assert!(
            !cli.status.success(),
            "verify accepted {}: {cli}",
            path.display()
        );
        assert!(cli.stderr.contains(message), "{cli}");
    }
    assert_eq!(
        tree_digest(&setup.data),
        before,
        "a refused restore changed the data dir"
    );
    assert!(
        std::fs::read_dir(&setup.data)
            .expect("data dir")
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with("pre-restore")),
        "a refused restore moved the state aside"
    );

    // The good file restores: the three completions before it, not the two after.
    let restored = restore_into(&setup.config(&[]), file).expect("restore");
    let previous = restored.previous.expect("previous state kept aside");
    assert!(previous.join("memora.redb").exists() && previous.join("journal").exists());
    // A crash right after the swap would leave the old journal in place: put it back to
    // show that it is never replayed onto the restored state.
    crate::format::copy_dir(
        &previous.join("journal"),
        &memora::engine::journal_dir(&setup.data),
    );
    for _ in 0..2 {
        // Both opens check that the replaced journal is never replayed.
        let engine = setup.open(&[]);
        assert_eq!(engine.recovery().replayed, 0);
        let got = observed(&engine, &ids[0]);
        assert_eq!(
            got.lessons.keys().cloned().collect::<Vec<_>>(),
            ["ch-l-001", "ch-l-002", "ch-l-003"]
        );
        assert_eq!(got.wallet_xp, i64::try_from(got.subject_xp).expect("xp"));
        assert_eq!(observed(&engine, &ids[1]), Expected::default());
        shutdown(engine).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_counts_and_restore_waits_for_the_lock() {
    let (setup, report, _) = stopped_with_snapshot().await;
    let verified = snapshot::verify(&report.file, &NoProgress).expect("verify");
    let c = verified.header.counts;
    assert_eq!(c, report.counts);
    assert_eq!(
        (
            c.players,
            c.students_with_progress,
            c.progress_rows,
            c.wallets,
            c.subjects,
            c.plans
        ),
        (2, 1, 1, 1, 2, 1)
    );
    let cli = memora(None, &[Path::new("verify"), &report.file], &[]);
    assert!(cli.status.success(), "{cli}");
    for line in [
        "players: 2",
        "students with progress: 1 (1 progress rows)",
        "wallets: 1",
        "subjects: 2, plans: 1",
        &format!("seq {}", report.seq),
    ] {
        assert!(cli.stdout.contains(line), "`{line}` missing: {cli}");
    }

    // A running engine holds the data dir: restore is refused, nothing changes.
    let engine = setup.open(&[]);
    let before = tree_digest(&setup.data);
    let err = restore_into(&setup.config(&[]), &report.file).expect_err("locked");
    assert!(matches!(err, SnapshotError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("running Memora server"), "{err}");
    assert_eq!(tree_digest(&setup.data), before);
    shutdown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_keep_the_newest_n() {
    let setup = Setup::new();
    // What a crash in the middle of a snapshot leaves is cleaned up by the next one.
    std::fs::create_dir_all(setup.snaps.join(".tmp-crashed")).expect("stale folder");
    let half = setup
        .snaps
        .join("memora-20261121T000000Z-seq000001.snap.tmp");
    std::fs::write(&half, b"half").expect("stale file");
    let engine = setup.open(&[("MEMORA_SNAPSHOTS__KEEP", "2")]);
    let students = school(&engine, 1).await;
    let mut reports = Vec::new();
    for i in 1..=3 {
        engine
            .complete_lesson(&students[0], &format!("ch-l-{i:03}"), 3)
            .await
            .expect("complete");
        reports.push(snapshot(&engine).await);
        setup.clock.advance(Duration::from_secs(60));
    }
    let left: Vec<PathBuf> = snapshot::list(&setup.snaps)
        .expect("list")
        .into_iter()
        .map(|s| s.path)
        .collect();
    assert_eq!(left, vec![reports[1].file.clone(), reports[2].file.clone()]);
    assert_eq!(reports[2].pruned, vec![reports[0].name.clone()]);
    assert!(reports[..2].iter().all(|r| r.pruned.is_empty()));
    assert!(reports.iter().all(|r| r.verified));
    let names: BTreeSet<&str> = reports.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let entries: Vec<String> = std::fs::read_dir(&setup.snaps)
        .expect("snapshots dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        entries.len(),
        2,
        "only the two snapshots are left: {entries:?}"
    );
    shutdown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_writes_snapshots_and_records_its_runs() {
    let setup = Setup::new();
    let engine = setup.open(&[
        ("MEMORA_SNAPSHOTS__INTERVAL", "1s"),
        ("MEMORA_SNAPSHOTS__KEEP", "2"),
    ]);
    let students = school(&engine, 1).await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.run_snapshots(rx).await })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    loop {
        let runs = engine.jobs().task_runs();
        if runs.get("snapshot").is_some_and(|r| r.runs >= 3) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than 3 scheduled runs in 60 s: {runs:?}"
        );
        // A write between runs, so that runs stand for different sequences.
        n += 1;
        engine
            .complete_lesson(&students[0], &format!("ch-l-{:03}", n.min(200)), 3)
            .await
            .expect("complete");
        setup.clock.advance(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    task.await.expect("schedule task");
    let run = &engine.jobs().task_runs()["snapshot"];
    assert!(run.ok && run.failures == 0, "{run:?}");
    assert!(run.result.contains(".snap"), "{run:?}");
    assert_eq!(snapshot::list(&setup.snaps).expect("list").len(), 2);
    shutdown(engine).await;
}

// --- copies off the machine (`[snapshots.upload]`, a real S3-compatible server) ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_are_copied_to_s3_compatible_storage_and_a_failed_copy_keeps_the_file() {
    let Some(s3) = S3Server::start().await else {
        s3_skip("snapshots_are_copied_to_s3_compatible_storage");
        return;
    };
    let bucket = s3.new_bucket().await;
    let setup = Setup::new();
    let upload = |endpoint: &str| -> Vec<(&'static str, String)> {
        vec![
            ("MEMORA_SNAPSHOTS__UPLOAD__ENDPOINT", endpoint.to_owned()),
            ("MEMORA_SNAPSHOTS__UPLOAD__BUCKET", bucket.clone()),
            (
                "MEMORA_SNAPSHOTS__UPLOAD__PREFIX",
                "backups/memora".to_owned(),
            ),
            (
                "MEMORA_SNAPSHOTS__UPLOAD__ACCESS_KEY_ID",
                "testing".to_owned(),
            ),
            (
                "MEMORA_SNAPSHOTS__UPLOAD__SECRET_ACCESS_KEY",
                "testing".to_owned(),
            ),
        ]
    };
    let vars = upload(&s3.url);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let engine = setup.open(&vars);
    let students = school(&engine, 1).await;
    engine
        .complete_lesson(&students[0], "ch-l-001", 3)
        .await
        .expect("complete");
    let report = snapshot(&engine).await;
    assert_eq!(report.upload_error, None, "{report:?}");
    let key = format!("backups/memora/{}", report.name);
    assert_eq!(
        report.uploaded.as_deref(),
        Some(format!("s3://{bucket}/{key}").as_str())
    );
    let (status, content_type, _, body) = s3.get(&bucket, &key).await;
    assert_eq!(status, 200, "{key}");
    assert_eq!(content_type, "application/octet-stream");
    assert_eq!(
        body.as_ref(),
        std::fs::read(&report.file).expect("local file").as_slice(),
        "the object is the snapshot, byte for byte"
    );
    // The copy is a snapshot in its own right.
    let copy = setup.data.parent().expect("root").join(&report.name);
    std::fs::write(&copy, &body).expect("write the copy");
    let verified = snapshot::verify(&copy, &NoProgress).expect("the copy verifies");
    assert_eq!(verified.header.seq, report.seq);
    shutdown(engine).await;

    // The store unreachable: the snapshot is written and kept, the failure reported.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let vars = upload(&format!("http://{closed}"));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let engine = setup.open(&vars);
    engine
        .complete_lesson(&students[0], "ch-l-002", 3)
        .await
        .expect("complete");
    setup.clock.advance(Duration::from_secs(60));
    let failed = snapshot(&engine).await;
    assert_eq!(failed.uploaded, None);
    let why = failed.upload_error.as_deref().expect("an upload error");
    assert!(!why.is_empty(), "{failed:?}");
    assert!(failed.file.exists(), "the local snapshot is kept");
    snapshot::verify(&failed.file, &NoProgress).expect("and intact");
    shutdown(engine).await;
}

// --- degraded mode (srs.md "Degraded mode") ---

/// A snapshot reads the state, so it runs while the journal fails (writes refused, the
/// state holds still) and restores to exactly the acknowledged writes; it is refused,
/// with the reason, when the disk is under `storage.min_free_bytes` — unless the
/// snapshot folder is on another file system.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_degraded_mode_snapshots_run_while_the_journal_fails_and_are_refused_on_a_low_disk() {
    let setup = Setup::new();
    let storage = FaultyStorage::default();
    let engine = Engine::open_with_storage(
        setup.config(&[]),
        Arc::new(setup.clock.clone()),
        Arc::new(storage.clone()),
    )
    .expect("engine");
    let students = school(&engine, 1).await;
    let id = students[0].player.id.clone();
    for lesson in ["ch-l-001", "ch-l-002"] {
        engine
            .complete_lesson(&students[0], lesson, 4)
            .await
            .expect("complete");
    }
    storage.faults.fail_syncs.store(u32::MAX, Ordering::SeqCst);
    let refused = engine.complete_lesson(&students[0], "ch-l-003", 4).await;
    assert!(refused.is_err(), "the journal fails: {refused:?}");
    assert!(engine.is_degraded());
    let acknowledged = observed(&engine, &id);
    assert_eq!(acknowledged.lessons.len(), 2, "{acknowledged:?}");
    let report = snapshot(&engine).await;
    assert!(engine.is_degraded(), "still degraded");
    storage.faults.fail_syncs.store(0, Ordering::SeqCst);
    engine.probe_storage().await;
    assert!(!engine.is_degraded(), "the probe healed the journal");
    shutdown(engine).await;
    let target = setup.other_data_dir("restored");
    restore_into(&target, &report.file).expect("restore");
    let restored = Engine::open(target, Arc::new(setup.clock.clone())).expect("open restored");
    assert_eq!(
        observed(&restored, &id),
        acknowledged,
        "the snapshot holds exactly the acknowledged writes"
    );
    shutdown(restored).await;

    // Free space under the minimum (a threshold no disk meets).
    let low = [("MEMORA_STORAGE__MIN_FREE_BYTES", "1000000000000000000")];
    let engine = setup.open(&low);
    assert!(engine.is_degraded());
    let before: Vec<_> = snapshot::list(&setup.snaps).expect("list");
    let e = engine.clone();
    let err = tokio::task::spawn_blocking(move || e.snapshot(&NoProgress))
        .await
        .expect("task")
        .expect_err("refused on a low disk");
    assert!(matches!(err, SnapshotError::Unavailable(_)), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("not enough disk space") && message.contains("storage.min_free_bytes"),
        "{message}"
    );
    let api = engine
        .start_snapshot_job("p_admin")
        .expect_err("the job is refused at once");
    assert_eq!(api.code, memora::error::Code::StorageUnavailable);
    assert!(api.detail.contains("not enough disk space"), "{api:?}");
    assert_eq!(
        snapshot::list(&setup.snaps).expect("list").len(),
        before.len(),
        "nothing written"
    );
    shutdown(engine).await;

    // The same, with the snapshot folder on another file system (tmpfs): allowed.
    let shm = Path::new("/dev/shm");
    let other_fs = {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(shm), std::fs::metadata(&setup.data)) {
            (Ok(a), Ok(b)) => a.is_dir() && a.dev() != b.dev(),
            _ => false,
        }
    };
    if other_fs {
        let elsewhere = tempfile::tempdir_in(shm).expect("tmpfs dir");
        let folder = elsewhere.path().to_str().expect("utf8").to_owned();
        let engine = setup.open(&[low[0], ("MEMORA_STORAGE__SNAPSHOTS_DIR", folder.as_str())]);
        let report = snapshot(&engine).await;
        assert!(report.file.starts_with(elsewhere.path()), "{report:?}");
        shutdown(engine).await;
    } else {
        eprintln!("skipping the other-file-system case: /dev/shm is not a separate file system");
    }
}

// --- against a real server process ---

async fn wait_job(api: &crate::util::Api, admin: &crate::util::Session, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, view) = api
            .call(
                Method::GET,
                &format!("/api/v1/admin/jobs/{id}"),
                Some(admin),
                None,
            )
            .await
            .expect("job");
        match view["state"].as_str() {
            Some("done") => return view,
            Some("failed") => panic!("snapshot job failed: {view}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "job still running: {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn passed(progress: &Value) -> Vec<String> {
    let mut lessons: Vec<String> = crate::util::lesson_states(progress)
        .into_iter()
        .filter(|(_, (s, _))| s == "passed")
        .map(|(id, _)| id)
        .collect();
    lessons.sort();
    lessons
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_snapshots_through_the_api_and_the_cli_then_restore_after_stop() {
    let root = tempfile::tempdir().expect("tempdir");
    let snaps = root.path().join("snaps");
    let extra = format!(
        "[storage]\nsnapshots_dir = {:?}\n[snapshots]\ninterval = \"off\"\n\
         [checkpoint]\nprogress_interval_secs = 3600\nwallet_interval_secs = 3600\n\
         [audit]\nflush_interval_ms = 60000\n",
        snaps.to_string_lossy()
    );
    let mut server = Server::start(&root.path().join("data"), &extra);
    let api = crate::util::Api::new(&server.url);
    let admin = scenario::import_school(&api).await;
    let student = scenario::new_student(&api, &admin, "snap@test.local").await;
    let before: Vec<Acked> = scenario::complete_suggested(&api, &student, "chain", 3, 4).await;
    let (status, _) = api
        .call(
            Method::POST,
            "/api/v1/admin/groups",
            Some(&admin),
            Some(&serde_json::json!({"name": "Class A", "student_ids": [student.player_id], "teacher_ids": []})),
        )
        .await
        .expect("group");
    assert_eq!(status, 201);

    // The API: 202 with a job whose result names the file.
    let (status, job) = api
        .call(Method::POST, "/api/v1/admin/snapshots", Some(&admin), None)
        .await
        .expect("POST snapshots");
    assert_eq!(status, 202);
    assert_eq!(job["kind"], "snapshot");
    let done = wait_job(&api, &admin, job["id"].as_str().expect("job id")).await;
    let file = PathBuf::from(done["result"]["file"].as_str().expect("file"));
    assert!(file.starts_with(&snaps) && file.exists(), "{done}");
    let counts = &done["result"]["counts"];
    assert_eq!(counts["students_with_progress"], 1);
    assert_eq!(counts["groups"], 1, "{counts}");
    // Each completion journaled its interaction record with it.
    let audit_records = counts["audit_records"].as_u64().expect("audit_records");
    assert!(audit_records >= 3, "{counts}");
    let run = memora(None, &[Path::new("verify"), file.as_path()], &[]);
    assert!(run.status.success(), "{run}");
    for line in [
        "groups: 1".to_owned(),
        format!("audit records: {audit_records}"),
    ] {
        assert!(run.stdout.contains(&line), "`{line}` missing: {run}");
    }
    // A student may not.
    let refused = api
        .call(
            Method::POST,
            "/api/v1/admin/snapshots",
            Some(&student),
            None,
        )
        .await
        .expect_err("students cannot snapshot");
    assert_eq!(refused.code(), Some("FORBIDDEN"));

    let config = server.config_path().to_path_buf();
    let cfg = Some(config.as_path());
    // While the server runs: restore and compact are refused, snapshot goes online. (The
    // server itself writes nothing meanwhile: its audit records wait for the flush,
    // which this configuration holds off for a minute.)
    let before_digest = tree_digest(&server.data_dir);
    let run = memora(cfg, &[Path::new("restore"), file.as_path()], &[]);
    assert!(!run.status.success(), "{run}");
    assert!(run.stderr.contains("running Memora server"), "{run}");
    let run = memora(cfg, &["compact"], &[]);
    assert!(!run.status.success(), "{run}");
    assert!(
        run.stderr.contains("held by a running Memora server"),
        "{run}"
    );
    let run = memora(cfg, &["snapshot"], &[]);
    assert!(!run.status.success(), "{run}");
    assert!(run.stderr.contains("POST /api/v1/admin/snapshots"), "{run}");
    assert_eq!(tree_digest(&server.data_dir), before_digest);
    // A completion first, so the second snapshot stands for another sequence (two
    // snapshots of the same sequence in the same second have the same name).
    let mut after = scenario::complete_suggested(&api, &student, "chain", 1, 5).await;
    let run = memora(
        cfg,
        &["snapshot", "--url", server.url.as_str()],
        &[("MEMORA_ADMIN_TOKEN", &admin.token)],
    );
    assert!(run.status.success(), "{run}");
    assert!(run.stdout.contains("snapshot written (online)"), "{run}");
    assert_eq!(snapshot::list(&snaps).expect("list").len(), 2);

    // One more completion, then stop and restore the first snapshot.
    after.extend(scenario::complete_suggested(&api, &student, "chain", 1, 5).await);
    assert_eq!(after.len(), 2);
    server.terminate();
    let run = memora(cfg, &[Path::new("restore"), file.as_path()], &[]);
    assert!(run.status.success(), "{run}");
    assert!(run.stdout.contains("previous state was kept in"), "{run}");
    let run = memora(cfg, &["compact"], &[]);
    assert!(run.status.success(), "{run}");

    server.restart();
    let api = crate::util::Api::new(&server.url);
    let student = scenario::login(&api, "snap@test.local").await;
    let progress = api.progress(&student, "chain").await.expect("progress");
    let mut want: Vec<String> = before.iter().map(|a| a.lesson.clone()).collect();
    want.sort();
    assert_eq!(
        passed(&progress),
        want,
        "the restored state is the snapshot's"
    );
    let wallet = api.wallet(&student).await.expect("wallet");
    assert_eq!(
        wallet["total_xp"].as_i64(),
        before.last().map(|a| a.new_total_xp)
    );
    server.terminate();
}

// --- the committed snapshot fixture (persistence.md "Data-format policy") ---

fn snapshot_fixture() -> PathBuf {
    let dir = fixture_path("snapshot-v1");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/snapshot-v1")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "snap"))
        .collect();
    assert_eq!(files.len(), 1, "one snapshot in {}", dir.display());
    files.remove(0)
}

async fn assert_restores_to_the_known_state(file: &Path) {
    let verified = snapshot::verify(file, &NoProgress).expect("verify the fixture");
    let c = verified.header.counts;
    assert_eq!(
        (
            c.players,
            c.students_with_progress,
            c.wallets,
            c.subjects,
            c.plans
        ),
        (1, 1, 1, 1, 1),
        "{}",
        file.display()
    );
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    let report = snapshot::restore(
        &data.join(memora::engine::REDB_FILE),
        &memora::engine::journal_dir(&data),
        file,
        START.parse().expect("timestamp"),
        &NoProgress,
    )
    .expect("restore the fixture");
    assert!(report.previous.is_none());
    let engine = crate::format::open_on_day_two(&data);
    assert_eq!(engine.recovery().replayed, 0);
    crate::format::check_known_state(&engine, &file.display().to_string()).await;
    shutdown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_v1_fixture_verifies_and_restores_to_its_known_state() {
    assert_restores_to_the_known_state(&snapshot_fixture()).await;
}

/// Writes a snapshot of the format-v1 data directory (whose known state it then
/// checks); `MEMORA_TEST_WRITE_SNAPSHOT_FIXTURE=1` replaces the committed fixture
/// (only for a new snapshot format, in a new folder).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_v1_generator_writes_the_known_state() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    crate::format::copy_dir(&crate::format::fixture_dir(), &data);
    let engine = crate::format::open_on_day_two(&data);
    let report = snapshot(&engine).await;
    shutdown(engine).await;
    assert!(
        report.file.starts_with(root.path().join("snapshots")),
        "{report:?}"
    );
    if std::env::var_os("MEMORA_TEST_WRITE_SNAPSHOT_FIXTURE").is_some() {
        let dir = fixture_path("snapshot-v1");
        std::fs::create_dir_all(&dir).expect("fixture dir");
        for old in snapshot::list(&dir).expect("list") {
            std::fs::remove_file(old.path).expect("remove old fixture");
        }
        std::fs::copy(&report.file, dir.join(&report.name)).expect("copy fixture");
        println!("wrote {}", dir.join(&report.name).display());
    }
    assert_restores_to_the_known_state(&report.file).await;
}
