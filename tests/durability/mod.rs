//! Durability, black-box (quality.md): students complete lessons against a real
//! `memora serve` child process, the process is `kill -9`ed at a random moment and
//! restarted on the same data dir, and every acknowledged completion must still be
//! there with consistent XP. A second test checks that SIGTERM exits 0 and that a
//! restart shows exactly the same state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::task::block_in_place;

use crate::util::api::i64_field;
use crate::util::{
    ADMIN_EMAIL, ADMIN_PASSWORD, Api, CallError, Server, Session, device_id_for, fixture,
    lesson_base_xp, lesson_states, suggested_next,
};

/// Concurrent students in the crash test.
const STUDENTS: usize = 8;
/// Kill/restart cycles, unless the time budget runs out first.
const CYCLES: usize = 5;
/// Wall-clock budget for the crash cycles (setup and the last check come on top).
const BUDGET: Duration = Duration::from_secs(45);
/// XP per heart (progress.md default).
const PER_HEART: i64 = 10;
const PASSWORD: &str = "student-password-1";
/// The subject the students walk, and every subject of the plan (for XP sums).
const CHAIN: &str = "chain";
const SUBJECTS: [&str; 2] = ["bas", "chain"];

/// One acknowledged (2xx) completion.
#[derive(Debug, Clone)]
struct Ack {
    lesson: String,
    hearts: u8,
    new_total_xp: i64,
}

/// What a student's driver knows, refreshed from the server after every restart.
#[derive(Debug, Clone)]
struct Student {
    email: String,
    session: Session,
    /// Best hearts per passed lesson of `chain`.
    best: HashMap<String, u8>,
    /// Passed lessons in the order they were first seen, for picking replays.
    passed: Vec<String>,
    next: Option<String>,
    total_xp: i64,
}

/// The end of one driver task: its student, what the server acknowledged, and any
/// rule violations seen in the answers.
struct Run {
    student: Student,
    acks: Vec<Ack>,
    violations: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_never_loses_an_acknowledged_completion() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = tmp.path().join("data");
    let mut server =
        block_in_place(|| Server::start(&data_dir, "[journal]\ndurability = \"strict\"\n"));
    let api = Api::new(&server.url);
    let mut students = setup(&api, STUDENTS, "crash").await;
    let base_xp: Arc<HashMap<String, i64>> = Arc::new(
        lesson_base_xp(&fixture("chain.subject.json"))
            .into_iter()
            .collect(),
    );

    let seed: u64 = rand::rng().random();
    println!("crash test seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut total_acks = 0;
    for cycle in 1..=CYCLES {
        if started.elapsed() > BUDGET {
            println!("time budget spent after {} cycles", cycle - 1);
            break;
        }
        let api = Api::new(&server.url);
        let tasks: Vec<_> = students
            .drain(..)
            .map(|s| {
                let api = api.clone();
                let base_xp = Arc::clone(&base_xp);
                let seed = rng.random();
                tokio::spawn(drive(api, s, base_xp, seed))
            })
            .collect();
        let delay = Duration::from_millis(rng.random_range(100..=1500));
        tokio::time::sleep(delay).await;
        block_in_place(|| server.kill9());

        let mut acks: Vec<Vec<Ack>> = Vec::new();
        let mut violations = Vec::new();
        for task in tasks {
            let run = task.await.expect("driver task");
            students.push(run.student);
            acks.push(run.acks);
            violations.extend(run.violations);
        }
        assert!(
            violations.is_empty(),
            "cycle {cycle}: answers broke the rules:\n{}\nserver log:\n{}",
            violations.join("\n"),
            server.log_tail()
        );

        let ready = block_in_place(|| server.restart());
        let api = Api::new(&server.url);
        let t = Instant::now();
        assert!(
            api.wait_ready(Duration::from_secs(20)).await,
            "/readyz never answered 200 after restart"
        );
        let readyz = ready + t.elapsed();
        let mut kept_sessions = 0;
        for (student, acked) in students.iter_mut().zip(&acks) {
            kept_sessions += usize::from(refresh(&api, student).await);
            check_acknowledged(&api, student, acked, cycle).await;
        }
        let acked: usize = acks.iter().map(Vec::len).sum();
        total_acks += acked;
        println!(
            "cycle {cycle}: killed after {} ms, {acked} acked completions, listening after \
             {ready:?}, ready after {readyz:?}, sessions kept {kept_sessions}/{}",
            delay.as_millis(),
            students.len()
        );
    }
    println!(
        "crash test: {total_acks} acknowledged completions checked in {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_zero_and_restart_shows_the_same_state() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = tmp.path().join("data");
    let mut server =
        block_in_place(|| Server::start(&data_dir, "[journal]\ndurability = \"relaxed\"\n"));
    let api = Api::new(&server.url);
    let mut students = setup(&api, 2, "term").await;
    let mut rng = StdRng::seed_from_u64(7);
    for s in &mut students {
        for i in 0..30 {
            let lesson = match (&s.next, i % 7 == 6) {
                (Some(next), false) => next.clone(),
                _ => s.passed[rng.random_range(0..s.passed.len())].clone(),
            };
            let v = api
                .complete(&s.session, &lesson, rng.random_range(1..=5))
                .await
                .unwrap_or_else(|e| panic!("complete {lesson}: {e}"));
            if !s.passed.contains(&lesson) {
                s.passed.push(lesson);
            }
            s.next = suggested_next(&v);
        }
    }
    let before = snapshot(&api, &students).await;

    let status = block_in_place(|| server.terminate());
    assert!(
        status.success(),
        "SIGTERM exit: {status}; log:\n{}",
        server.log_tail()
    );
    block_in_place(|| server.restart());
    let api = Api::new(&server.url);
    assert!(api.wait_ready(Duration::from_secs(20)).await);
    for s in &mut students {
        refresh(&api, s).await;
    }
    let after = snapshot(&api, &students).await;
    assert_eq!(before, after, "state changed across a clean restart");
}

/// Logs in as admin, imports both fixtures and the plan, creates `n` students
/// (`{prefix}-{i}@test.local`) and logs them in.
async fn setup(api: &Api, n: usize, prefix: &str) -> Vec<Student> {
    let admin = api
        .login(ADMIN_EMAIL, ADMIN_PASSWORD, &device_id_for(ADMIN_EMAIL))
        .await
        .expect("admin login");
    for name in ["basics.subject.json", "chain.subject.json"] {
        let status = api.put_subject(&admin, &fixture(name)).await;
        assert!(matches!(status, Ok(200 | 201)), "import {name}: {status:?}");
    }
    let status = api.put_plan(&admin, &fixture("school.plan.json")).await;
    assert!(matches!(status, Ok(200 | 201)), "import plan: {status:?}");
    let mut students = Vec::new();
    for i in 0..n {
        let email = format!("{prefix}-{i}@test.local");
        api.create_student(&admin, &email, PASSWORD, "school")
            .await
            .unwrap_or_else(|e| panic!("create {email}: {e}"));
        let session = api
            .login(&email, PASSWORD, &device_id_for(&email))
            .await
            .unwrap_or_else(|e| panic!("login {email}: {e}"));
        let mut student = Student {
            email,
            session,
            best: HashMap::new(),
            passed: Vec::new(),
            next: None,
            total_xp: 0,
        };
        refresh(api, &mut student).await;
        assert!(student.next.is_some(), "a new student has a first lesson");
        students.push(student);
    }
    students
}

/// Completes lessons as one student until the server stops answering: the next lesson
/// is the one the server suggested, with random hearts and some replays (only replays
/// once the chain is done). Checks every answer's XP against the student's model.
async fn drive(api: Api, mut s: Student, base_xp: Arc<HashMap<String, i64>>, seed: u64) -> Run {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut acks = Vec::new();
    let mut violations = Vec::new();
    loop {
        let replay = s.next.is_none() || (!s.passed.is_empty() && rng.random_bool(0.15));
        let lesson = match (&s.next, replay) {
            (Some(next), false) => next.clone(),
            _ if s.passed.is_empty() => break,
            _ => s.passed[rng.random_range(0..s.passed.len())].clone(),
        };
        let hearts: u8 = rng.random_range(1..=5);
        match api.complete(&s.session, &lesson, hearts).await {
            Ok(v) => {
                let earned = i64_field(&v, "xp_earned");
                let new_total = i64_field(&v, "new_total_xp");
                let h = i64::from(hearts);
                let expected = match s.best.get(&lesson).copied() {
                    None => base_xp.get(&lesson).copied().unwrap_or(10) + h * PER_HEART,
                    Some(best) if hearts > best => (h - i64::from(best)) * PER_HEART,
                    Some(_) => 0,
                };
                if earned != expected || new_total != s.total_xp + earned {
                    violations.push(format!(
                        "{}: {lesson} hearts {hearts} (best {:?}, total {}): got xp {earned} \
                         total {new_total}, expected xp {expected}",
                        s.email,
                        s.best.get(&lesson),
                        s.total_xp
                    ));
                    break;
                }
                if v.get("is_first_completion").and_then(Value::as_bool)
                    != Some(!s.best.contains_key(&lesson))
                {
                    violations.push(format!("{}: {lesson}: wrong is_first_completion", s.email));
                }
                let best = s.best.entry(lesson.clone()).or_insert(0);
                if *best == 0 {
                    s.passed.push(lesson.clone());
                }
                *best = (*best).max(hearts);
                s.total_xp = new_total;
                s.next = suggested_next(&v);
                acks.push(Ack {
                    lesson,
                    hearts,
                    new_total_xp: new_total,
                });
            }
            Err(CallError::Transport(_)) => break,
            Err(e) => {
                violations.push(format!("{}: complete {lesson}: {e}", s.email));
                break;
            }
        }
    }
    Run {
        student: s,
        acks,
        violations,
    }
}

/// Reloads the student's model from the server (re-logging in if the session did not
/// survive). Returns whether the old session was still valid.
async fn refresh(api: &Api, s: &mut Student) -> bool {
    let mut kept = true;
    let progress = match api.progress(&s.session, CHAIN).await {
        Ok(p) => p,
        Err(CallError::Status { status: 401, .. }) => {
            kept = false;
            s.session = api
                .login(&s.email, PASSWORD, &s.session.device_id)
                .await
                .unwrap_or_else(|e| panic!("re-login {}: {e}", s.email));
            api.progress(&s.session, CHAIN)
                .await
                .unwrap_or_else(|e| panic!("progress {}: {e}", s.email))
        }
        Err(e) => panic!("progress {}: {e}", s.email),
    };
    let states = lesson_states(&progress);
    s.best = states
        .iter()
        .filter(|(_, (status, _))| status == "passed")
        .map(|(id, (_, best))| (id.clone(), *best))
        .collect();
    s.passed.retain(|id| s.best.contains_key(id));
    for id in s.best.keys() {
        if !s.passed.contains(id) {
            s.passed.push(id.clone());
        }
    }
    s.next = suggested_next(&progress);
    let wallet = api
        .wallet(&s.session)
        .await
        .unwrap_or_else(|e| panic!("wallet {}: {e}", s.email));
    s.total_xp = i64_field(&wallet, "total_xp");
    kept
}

/// After a restart: every acknowledged lesson is passed with at least the acknowledged
/// hearts, the wallet holds at least the last acknowledged total, the wallet equals the
/// sum of the subjects' XP, and the chain's XP equals what its best hearts are worth.
async fn check_acknowledged(api: &Api, s: &Student, acks: &[Ack], cycle: usize) {
    let who = format!("cycle {cycle}, {}", s.email);
    let mut subject_xp = 0;
    for subject in SUBJECTS {
        let p = api
            .progress(&s.session, subject)
            .await
            .unwrap_or_else(|e| panic!("{who}: progress {subject}: {e}"));
        subject_xp += i64_field(&p, "total_xp_earned");
        if subject == CHAIN {
            let states = lesson_states(&p);
            for ack in acks {
                let state = states.get(&ack.lesson);
                assert!(
                    matches!(state, Some((status, best)) if status == "passed" && *best >= ack.hearts),
                    "{who}: acknowledged {} with {} hearts, now {state:?}",
                    ack.lesson,
                    ack.hearts
                );
            }
            let base: HashMap<String, i64> = lesson_base_xp(&fixture("chain.subject.json"))
                .into_iter()
                .collect();
            let worth: i64 = states
                .iter()
                .filter(|(_, (status, _))| status == "passed")
                .map(|(id, (_, best))| base[id] + i64::from(*best) * PER_HEART)
                .sum();
            assert_eq!(
                i64_field(&p, "total_xp_earned"),
                worth,
                "{who}: chain XP is not base + best hearts × {PER_HEART} over passed lessons"
            );
        }
    }
    let wallet = api
        .wallet(&s.session)
        .await
        .unwrap_or_else(|e| panic!("{who}: wallet: {e}"));
    let total = i64_field(&wallet, "total_xp");
    let max_acked = acks.iter().map(|a| a.new_total_xp).max().unwrap_or(0);
    assert!(
        total >= max_acked,
        "{who}: wallet {total} XP < acknowledged {max_acked}"
    );
    assert_eq!(
        total, subject_xp,
        "{who}: wallet XP differs from the sum of subject XP"
    );
}

/// The observable state of every student: both subjects' progress and the wallet
/// without `last_played_at` (reads may touch it).
async fn snapshot(api: &Api, students: &[Student]) -> Vec<Value> {
    let mut out = Vec::new();
    for s in students {
        for subject in SUBJECTS {
            out.push(api.progress(&s.session, subject).await.expect("progress"));
        }
        let mut wallet = api.wallet(&s.session).await.expect("wallet");
        if let Some(w) = wallet.as_object_mut() {
            w.remove("last_played_at");
        }
        out.push(wallet);
    }
    out
}
