//! Cost of a progress report over a whole school (api.md "reports"): N students on the
//! test plan (`bas` + `chain`, 229 visible lessons) with 0–7 lessons passed each,
//! checkpointed, the engine reopened so that no student is in memory; then the report
//! of every student read straight from redb (the CSV path), rendered as CSV, one JSON
//! page of 50, and the same report once every student is in memory. Prints medians.
//!
//! Run: `cargo bench --bench reports` (`MEMORA_BENCH_STUDENTS`, default 10000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use memora::clock::SystemClock;
use memora::config::Config;
use memora::engine::Engine;
use memora::engine::accounts::{Caller, NewPlayer};
use memora::engine::content_ops::DocKind;
use memora::engine::groups::StaffScope;
use memora::engine::reports::ReportFilter;
use memora::players::account::Role;

const BAS: [&str; 7] = [
    "bas-l-001",
    "bas-l-002",
    "bas-l-003",
    "bas-l-004",
    "bas-l-005",
    "bas-l-006",
    "bas-l-007",
];

fn config(dir: &std::path::Path) -> Config {
    let data = dir.join("data");
    let out = dir.join("out");
    Config::load(
        None,
        [
            ("MEMORA_STORAGE__DATA_DIR", data.to_str().unwrap_or(".")),
            ("MEMORA_CONTENT__OUTPUT_DIR", out.to_str().unwrap_or(".")),
            ("MEMORA_AUTH__ARGON2_MEMORY_KIB", "64"),
            ("MEMORA_AUTH__ARGON2_ITERATIONS", "1"),
            ("MEMORA_JOURNAL__DURABILITY", "relaxed"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .expect("bench config")
}

fn caller(engine: &Engine, id: &str) -> Caller {
    Caller {
        player: engine.player(id).expect("player"),
        token_hash: [0; 32],
        device_id: None,
        session_created_at_ms: 0,
    }
}

fn new_player(email: String, role: Role) -> NewPlayer {
    NewPlayer {
        email,
        password: "password-1234".into(),
        display_name: "Bench".into(),
        role: Some(role),
        plan_id: (role == Role::Student).then(|| "school".into()),
        grade: None,
        stream: None,
        timezone: None,
        grants: vec![],
    }
}

/// Median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

async fn setup(dir: &std::path::Path, n: usize) -> String {
    let engine = Engine::open(config(dir), Arc::new(SystemClock)).expect("open");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (kind, file) in [
        (DocKind::Subject, "basics.subject.json"),
        (DocKind::Subject, "chain.subject.json"),
        (DocKind::Plan, "school.plan.json"),
    ] {
        let body = std::fs::read(fixtures.join(file)).expect("fixture");
        engine
            .put_document(kind, None, &body)
            .await
            .expect("import");
    }
    let admin = engine
        .create_player(new_player("admin@bench.test".into(), Role::Admin))
        .await
        .expect("admin")
        .id;
    let mut tasks = Vec::new();
    for i in 0..n {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let id = engine
                .create_player(new_player(format!("s{i}@bench.test"), Role::Student))
                .await
                .expect("student")
                .id;
            let who = caller(&engine, &id);
            for lesson in &BAS[..i % 8] {
                engine
                    .complete_lesson(&who, lesson, 1 + (i % 5) as i64)
                    .await
                    .expect("complete");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let e = engine.clone();
    tokio::task::spawn_blocking(move || e.shutdown())
        .await
        .expect("join")
        .expect("shutdown");
    admin
}

fn main() {
    let n: usize = std::env::var("MEMORA_BENCH_STUDENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let admin = rt.block_on(setup(dir.path(), n));
    println!("setup: {n} students in {:.1?}", started.elapsed());

    let engine = Engine::open(config(dir.path()), Arc::new(SystemClock)).expect("reopen");
    let admin = caller(&engine, &admin);
    let all = ReportFilter::default();
    let report = |limit: Option<usize>| {
        engine
            .progress_report(&admin, &StaffScope::All, &all, limit, None)
            .expect("report")
    };
    let rows = report(None).items;
    assert_eq!(rows.len(), n);
    println!(
        "students in memory after a full report: {}",
        engine.students_in_memory()
    );
    let from_redb = median(5, || {
        report(None);
    });
    let page_redb = median(21, || {
        report(Some(50));
    });
    let csv = median(5, || {
        memora::http::reports::to_csv(&rows).expect("csv");
    });
    let bytes = memora::http::reports::to_csv(&rows).expect("csv").len();
    for p in engine
        .report_students(&admin, &StaffScope::All, &all)
        .expect("students")
    {
        engine.wallet(&caller(&engine, &p.id)).expect("load");
    }
    let in_memory = median(5, || {
        report(None);
    });
    let page_memory = median(21, || {
        report(Some(50));
    });
    println!("full report, students read from redb: median {from_redb:.1?} of 5");
    println!("full report, students in memory:      median {in_memory:.1?} of 5");
    println!("first page of 50, from redb:          median {page_redb:.1?} of 21");
    println!("first page of 50, in memory:          median {page_memory:.1?} of 21");
    println!("CSV rendering of {n} rows ({bytes} bytes): median {csv:.1?} of 5");
}
