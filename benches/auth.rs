//! Criterion micro-benchmark of the per-request auth check (players.md: "The check is an
//! in-memory lookup"): `Engine::authenticate` for a student (token, device, single
//! session) and a staff member among 10,000 logged-in students, an unknown token, and
//! the SHA-256 of the token alone (the floor of any check that stores only hashes). It
//! also prints the time of one argon2id hash at the shipped cost.
//!
//! The students are created by a roster import, so the setup also prints the dry run
//! and the commit of 10,000 rows at a cheap argon2 cost: the import's own overhead
//! (parsing, planning, one journal event, applying), without the hashing that dominates
//! it at the configured cost (see `benches/roster.py` for that).
//!
//! Run: `cargo bench --bench auth -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::Criterion;

use memora::clock::SystemClock;
use memora::config::Config;
use memora::engine::Engine;
use memora::engine::accounts::NewPlayer;
use memora::engine::roster::file_sha;
use memora::players::account::{Role, token_hash};

const STUDENTS: usize = 10_000;
const PASSWORD: &str = "bench-password-1";

fn device(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012x}")
}

/// Milliseconds per argon2id hash at the shipped cost (19 MiB, 2 passes, 1 lane), one
/// thread: what a login and each roster row cost in CPU.
fn argon2_ms() -> f64 {
    let cost = memora::players::account::PasswordCost {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };
    let mut times: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            black_box(memora::players::account::hash_password("bench-password-1", cost).ok());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    println!(
        "argon2id at 19 MiB, 2 passes: {:.1} ms per hash (median of 7)",
        argon2_ms()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config::load(
        None,
        [
            (
                "MEMORA_STORAGE__DATA_DIR",
                dir.path().to_str().expect("utf8"),
            ),
            ("MEMORA_AUTH__ARGON2_MEMORY_KIB", "64"),
            ("MEMORA_AUTH__ARGON2_ITERATIONS", "1"),
            ("MEMORA_JOURNAL__DURABILITY", "relaxed"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .expect("config");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let engine = Engine::open(config, Arc::new(SystemClock)).expect("engine");

    let mut csv = String::from("email,display_name,grade,password\n");
    for i in 0..STUDENTS {
        csv.push_str(&format!("s{i}@bench.local,Student {i},7,{PASSWORD}\n"));
    }
    let t = Instant::now();
    let dry = engine.roster_dry_run(csv.as_bytes(), "bench");
    println!(
        "roster dry run, {} rows: {:.1} ms",
        dry.summary.rows,
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let parsed = engine
        .roster_validate(csv.as_bytes())
        .expect("valid roster");
    let report = rt
        .block_on(engine.roster_commit(
            Arc::new(parsed),
            file_sha(csv.as_bytes()),
            "bench",
            None,
            &|_| {},
        ))
        .expect("commit");
    println!(
        "roster commit, {} rows created, argon2 at 64 KiB/1 pass: {:.1} ms",
        report.summary.create,
        t.elapsed().as_secs_f64() * 1e3
    );

    let t = Instant::now();
    let students: Vec<(String, String)> = rt.block_on(async {
        let mut out = Vec::with_capacity(STUDENTS);
        for i in 0..STUDENTS {
            let login = engine
                .login(
                    &format!("s{i}@bench.local"),
                    PASSWORD,
                    Some(&device(i)),
                    None,
                )
                .await
                .expect("student login");
            out.push((login.token, device(i)));
        }
        out
    });
    println!(
        "{STUDENTS} student logins: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let staff = rt.block_on(async {
        engine
            .create_player(NewPlayer {
                email: "admin@bench.local".into(),
                password: PASSWORD.into(),
                display_name: "Admin".into(),
                role: Some(Role::Admin),
                plan_id: None,
                grade: None,
                stream: None,
                timezone: None,
                grants: vec![],
            })
            .await
            .expect("admin");
        engine
            .login("admin@bench.local", PASSWORD, None, None)
            .await
            .expect("admin login")
            .token
    });

    assert!(
        students
            .iter()
            .all(|(token, device)| engine.authenticate(token, Some(device)).is_ok())
            && engine.authenticate(&staff, None).is_ok(),
        "a session does not authenticate"
    );

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("auth_check");
    let mut i = 0usize;
    group.bench_function("student (token, device, session), 10k sessions", |b| {
        b.iter(|| {
            let (token, device) = &students[i % STUDENTS];
            i = i.wrapping_add(7919);
            black_box(engine.authenticate(black_box(token), Some(device)).is_ok())
        })
    });
    group.bench_function("staff (token)", |b| {
        b.iter(|| black_box(engine.authenticate(black_box(&staff), None).is_ok()))
    });
    let unknown = "f".repeat(64);
    group.bench_function("unknown token", |b| {
        b.iter(|| black_box(engine.authenticate(black_box(&unknown), None).is_err()))
    });
    group.bench_function("sha-256 of the token only", |b| {
        b.iter(|| black_box(token_hash(black_box(&staff))))
    });
    group.finish();
    c.final_summary();
    let _ = engine.shutdown();
}
