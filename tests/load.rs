//! Behaviour under concurrent load, black-box: identical completions racing each other
//! (progress.md "Two identical requests racing: exactly one is the first completion"),
//! and SIGTERM while clients are completing lessons (persistence.md "A clean shutdown
//! … exits 0. A restart after a clean shutdown replays nothing").

use std::time::Duration;

use serde_json::Value;
use tokio::task::block_in_place;

use crate::util::api::i64_field;
use crate::util::scenario::{self, Acked};
use crate::util::{Api, CallError, Server, Session, fixture, lesson_base_xp, suggested_next};

/// Racing requests in the identical-completion test.
const RACERS: usize = 16;
/// Clients completing lessons while SIGTERM arrives.
const CLIENTS: usize = 8;
/// XP per heart (progress.md default).
const PER_HEART: i64 = 10;

/// Awaits spawned tasks in order (no `futures` dependency for one helper).
async fn join_all<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identical_first_completions_racing_award_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = block_in_place(|| Server::start(&tmp.path().join("data"), ""));
    let api = Api::new(&server.url);
    let admin = scenario::import_school(&api).await;
    let student = scenario::new_student(&api, &admin, "race@test.local").await;
    let lesson = suggested_next(&api.progress(&student, "chain").await.expect("progress"))
        .expect("a first lesson");
    let base = lesson_base_xp(&fixture("chain.subject.json"))
        .into_iter()
        .find(|(id, _)| *id == lesson)
        .map(|(_, xp)| xp)
        .expect("lesson in the fixture");

    // All racers wait on one barrier so that the requests leave together.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks = (0..RACERS)
        .map(|_| {
            let (api, student, lesson, barrier) = (
                api.clone(),
                student.clone(),
                lesson.clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                api.complete(&student, &lesson, 3).await
            })
        })
        .collect();
    let answers: Vec<Value> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("a racing completion failed: {e}")))
        .collect();

    let firsts = answers
        .iter()
        .filter(|v| v["is_first_completion"] == Value::Bool(true))
        .count();
    assert_eq!(firsts, 1, "answers: {answers:#?}");
    let awarded: i64 = answers.iter().map(|v| i64_field(v, "xp_earned")).sum();
    let once = base + 3 * PER_HEART;
    assert_eq!(awarded, once, "XP awarded more than once: {answers:#?}");
    for v in &answers {
        assert_eq!(i64_field(v, "new_total_xp"), once, "{v}");
    }
    let wallet = api.wallet(&student).await.expect("wallet");
    assert_eq!(i64_field(&wallet, "total_xp"), once);
    let progress = api.progress(&student, "chain").await.expect("progress");
    assert_eq!(i64_field(&progress, "total_xp_earned"), once);
    assert_eq!(i64_field(&progress, "passed_lessons"), 1);
}

/// Completes lessons along the suggested path until the server stops answering;
/// returns what was acknowledged and any answer that was neither 2xx nor a dropped
/// connection.
async fn complete_until_gone(api: Api, student: Session) -> (Session, Vec<Acked>, Vec<String>) {
    let mut acked = Vec::new();
    let mut errors = Vec::new();
    let mut next = match api.progress(&student, "chain").await {
        Ok(p) => suggested_next(&p),
        Err(e) => return (student, acked, vec![format!("progress: {e}")]),
    };
    while let Some(lesson) = next.take() {
        match api.complete(&student, &lesson, 2).await {
            Ok(v) => {
                next = suggested_next(&v);
                acked.push(Acked {
                    lesson,
                    hearts: 2,
                    new_total_xp: i64_field(&v, "new_total_xp"),
                });
            }
            Err(CallError::Transport(_)) => break,
            // A request arriving after the shutdown began may be refused as unavailable;
            // it was not acknowledged, so it must simply not count.
            Err(CallError::Status { status: 503, .. }) => break,
            Err(e) => {
                errors.push(format!("complete {lesson}: {e}"));
                break;
            }
        }
    }
    (student, acked, errors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_exits_zero_keeps_every_ack_and_replays_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = block_in_place(|| Server::start(&tmp.path().join("data"), ""));
    let api = Api::new(&server.url);
    let admin = scenario::import_school(&api).await;
    let mut students = Vec::new();
    for i in 0..CLIENTS {
        let email = format!("load-{i}@test.local");
        students.push((
            email.clone(),
            scenario::new_student(&api, &admin, &email).await,
        ));
    }
    let tasks = students
        .iter()
        .map(|(_, s)| tokio::spawn(complete_until_gone(api.clone(), s.clone())))
        .collect();

    // SIGTERM once every client has had some completions acknowledged.
    let wallets_moving = async {
        loop {
            let mut all = true;
            for (_, s) in &students {
                let w = api.wallet(s).await.expect("wallet");
                all &= i64_field(&w, "total_xp") > 0;
            }
            if all {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wallets_moving)
        .await
        .expect("the clients never got going");
    let status = block_in_place(|| server.terminate());
    let runs = join_all(tasks).await;
    assert!(
        status.success(),
        "SIGTERM under load exited with {status}; log:\n{}",
        server.log_tail()
    );
    let errors: Vec<&String> = runs.iter().flat_map(|(_, _, e)| e).collect();
    assert!(
        errors.is_empty(),
        "unexpected answers during shutdown: {errors:?}"
    );
    let total: usize = runs.iter().map(|(_, a, _)| a.len()).sum();
    assert!(total >= CLIENTS, "only {total} completions before SIGTERM");

    let log_at = server.log_len();
    block_in_place(|| server.restart());
    let log = server.log_since(log_at);
    assert!(
        log.contains("recovered replayed=0 "),
        "the restart after a clean shutdown replayed the journal; log:\n{log}"
    );
    let api = Api::new(&server.url);
    for ((email, _), (old, acked, _)) in students.iter().zip(&runs) {
        let session = match api.me(old).await {
            Ok(_) => old.clone(),
            Err(_) => scenario::login(&api, email).await,
        };
        scenario::assert_acked_present(&api, &session, "chain", acked, email).await;
    }
    println!("SIGTERM under load: {total} acknowledged completions kept");
}
