//! Fills a stopped data directory with many students through the engine (no HTTP), for
//! the snapshot benchmarks (`benches/snapshots.sh`): students `pop-{i}@bench.local` on a
//! plan, each completing a few lessons of one of its subjects (round-robin), so each has
//! progress rows and a wallet. Then a clean shutdown checkpoints everything.
//!
//! `cargo run --release --example populate -- CONFIG PLAN STUDENTS LESSONS`
//!
//! The configuration's argon2 cost applies to every student created: use a cheap one.

use std::sync::Arc;
use std::time::Instant;

use memora::clock::SystemClock;
use memora::config::Config;
use memora::engine::Engine;
use memora::engine::accounts::{Caller, NewPlayer};
use memora::players::account::Role;
use tokio::sync::Semaphore;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, config, plan, students, lessons] = args.as_slice() else {
        anyhow::bail!("usage: populate CONFIG PLAN STUDENTS LESSONS");
    };
    let students: usize = students.parse()?;
    let lessons: usize = lessons.parse()?;
    let config = Config::load(Some(config.as_ref()), std::env::vars())?;
    let engine = Engine::open(config, Arc::new(SystemClock))?;
    let catalog = engine.catalog();
    let view = catalog
        .plan_view(plan)
        .ok_or_else(|| anyhow::anyhow!("no plan {plan}: import it first"))?;
    // Lesson ids of each subject in document order (the unlock order of linear topics).
    let subjects: Vec<Vec<String>> = view
        .subjects
        .iter()
        .map(|s| {
            s.lessons
                .iter()
                .map(|&i| s.nodes[i as usize].id.to_string())
                .collect()
        })
        .collect();
    let subjects = Arc::new(subjects);
    let started = Instant::now();
    let limit = Arc::new(Semaphore::new(256));
    let mut tasks = Vec::with_capacity(students);
    for i in 0..students {
        let engine = engine.clone();
        let subjects = subjects.clone();
        let permit = limit.clone().acquire_owned().await?;
        let plan = plan.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let created = engine
                .create_player(NewPlayer {
                    email: format!("pop-{i}@bench.local"),
                    password: "populate-password-1".into(),
                    display_name: format!("Population {i}"),
                    role: Some(Role::Student),
                    plan_id: Some(plan),
                    grade: None,
                    stream: None,
                    timezone: Some("UTC".into()),
                    grants: Vec::new(),
                })
                .await;
            let Ok(view) = created else {
                return 0;
            };
            let Some(player) = engine.player(&view.id) else {
                return 0;
            };
            let caller = Caller {
                player,
                token_hash: [0; 32],
                device_id: None,
                session_created_at_ms: 0,
            };
            let subject = &subjects[i % subjects.len()];
            let mut done = 0;
            for lesson in subject.iter().take(lessons * 3) {
                if done == lessons {
                    break;
                }
                let hearts = 1 + (i + done) as i64 % 5;
                if engine
                    .complete_lesson(&caller, lesson, hearts)
                    .await
                    .is_ok()
                {
                    done += 1;
                }
            }
            done
        }));
        if i % 10_000 == 9_999 {
            eprintln!(
                "{} students queued ({} s)",
                i + 1,
                started.elapsed().as_secs()
            );
        }
    }
    let mut completions = 0;
    for t in tasks {
        completions += t.await?;
    }
    eprintln!(
        "{students} students, {completions} completions in {:.1} s; checkpointing",
        started.elapsed().as_secs_f64()
    );
    let closed = tokio::task::spawn_blocking(move || engine.shutdown()).await?;
    closed.map_err(|e| anyhow::anyhow!(e))?;
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
