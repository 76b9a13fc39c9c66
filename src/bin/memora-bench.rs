//! `memora-bench`: the load generator that ships with Memora (like `redis-benchmark`
//! with Redis). It simulates N students on C connections against a running server —
//! progress reads, the pre-serialized baseline, completions in unlock order, a mix,
//! or logins — and prints throughput and latency percentiles per operation, plus a
//! JSON line for BENCHMARKS.md. See `memora-bench --help`.

#[path = "memora-bench/args.rs"]
mod args;
#[path = "memora-bench/client.rs"]
mod client;
#[path = "memora-bench/report.rs"]
mod report;
#[path = "memora-bench/reviews.rs"]
mod reviews;
#[path = "memora-bench/setup.rs"]
mod setup;
#[path = "memora-bench/stats.rs"]
mod stats;
#[path = "memora-bench/workers.rs"]
mod workers;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;

use crate::args::{Args, Scenario};
use crate::client::Http;
use crate::stats::OpStats;
use crate::workers::Run;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memora-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Setup, load, report.
async fn run(args: Args) -> anyhow::Result<()> {
    let connections = args.connections as usize;
    let http = Http::new(args.base_url(), connections)?;
    let health = http
        .send(reqwest::Method::GET, "/healthz", None, None)
        .await;
    if !health.is_ok() {
        bail!(
            "{}/healthz answered {}",
            args.base_url(),
            health.error_key()
        );
    }
    let admin = setup::admin_token(&http, &args).await?;
    if args.setup {
        let admin = admin
            .as_deref()
            .context("--setup needs --admin-email and --admin-password")?;
        let t = Instant::now();
        let (created, existing) = setup::create_students(&http, admin, &args).await?;
        eprintln!(
            "setup: {created} students created, {existing} existed ({:.1}s)",
            t.elapsed().as_secs_f64()
        );
    }
    let t = Instant::now();
    let students = setup::login_all(&http, &args).await?;
    eprintln!(
        "login: {} students ({:.1}s)",
        students.len(),
        t.elapsed().as_secs_f64()
    );
    let subjects = match args.scenario {
        Scenario::Login => Vec::new(),
        Scenario::Content => setup::content_paths(&http, &args.plan).await?,
        _ => setup::subjects(&http, &args, admin.as_deref(), students.first()).await?,
    };
    if !subjects.is_empty() {
        eprintln!("subjects: {}", subjects.join(", "));
    }

    let questions = if matches!(args.scenario, Scenario::Reviews | Scenario::Due) {
        let admin = admin
            .as_deref()
            .context("the review scenarios need --admin-email and --admin-password")?;
        let t = Instant::now();
        let questions = reviews::setup(&http, admin, &args, &subjects, &students).await?;
        eprintln!(
            "reviews: {} due cards for each of {} students ({:.1}s)",
            questions.len(),
            students.len(),
            t.elapsed().as_secs_f64()
        );
        questions
    } else {
        Vec::new()
    };
    let start = Instant::now();
    let measure_from = start + args.warmup();
    let run = Arc::new(Run {
        scenario: args.scenario,
        questions,
        subjects,
        password: args.student_password.clone(),
        measure_from,
        end: measure_from + args.duration(),
    });
    let seed = args.seed.unwrap_or_else(rand::random);
    eprintln!(
        "running {} for {}s after {}s warmup (seed {seed})",
        args.scenario.name(),
        args.duration,
        args.warmup
    );
    let tasks: Vec<_> = workers::deal(&students, connections)
        .into_iter()
        .enumerate()
        .map(|(i, share)| {
            tokio::spawn(workers::worker(
                http.clone(),
                share,
                Arc::clone(&run),
                i,
                seed,
            ))
        })
        .collect();
    let mut merged: BTreeMap<&'static str, OpStats> = BTreeMap::new();
    for task in tasks {
        for (name, st) in task.await.context("worker task")? {
            merged.entry(name).or_default().merge(st);
        }
    }
    let window = args.duration();
    let ops = merged
        .into_iter()
        .map(|(name, st)| (name, st.summarize(window)))
        .collect();
    print!("{}", report::render(&args, &ops));
    Ok(())
}
