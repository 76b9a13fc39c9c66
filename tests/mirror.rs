//! The MariaDB reporting mirror against a real server (`MEMORA_TEST_MARIADB_URL`, set by
//! `.ci/run` when MariaDB answers; otherwise each test prints one skip line): migrations
//! from empty, mirror rows equal engine state after a workload (bitmaps decoded),
//! idempotent re-send, an outage through a TCP proxy the test switches off and on (the
//! engine keeps its latency; the mirror catches up), and throughput for 50,000 wallets
//! plus their progress rows. Every test uses its own database, dropped at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use memora::clock::FakeClock;
use memora::config::Config;
use memora::engine::Engine;
use memora::engine::accounts::{Caller, NewPlayer};
use memora::players::account::Role;
use roaring::RoaringBitmap;
use sqlx::{Connection, MySqlConnection, Row};

use crate::util::fixture;

fn base_url() -> Option<String> {
    match std::env::var("MEMORA_TEST_MARIADB_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            eprintln!("skipped: MEMORA_TEST_MARIADB_URL is not set (no MariaDB)");
            None
        }
    }
}

/// A database of its own on the test server, dropped by [`TestDb::drop_db`].
struct TestDb {
    server: String,
    name: String,
}

impl TestDb {
    async fn create(base: &str) -> TestDb {
        let server = base.rsplit_once('/').map_or(base, |(s, _)| s).to_owned();
        let name = format!("memora_test_{}", uuid::Uuid::new_v4().simple());
        let mut c = MySqlConnection::connect(base)
            .await
            .expect("connect to MariaDB");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .expect("create database");
        TestDb { server, name }
    }

    /// The URL of this database via `host` (e.g. a proxy's `127.0.0.1:port`).
    fn url_via(&self, host: Option<&str>) -> String {
        match host {
            None => format!("{}/{}", self.server, self.name),
            Some(h) => {
                let (scheme_user, _) = self.server.rsplit_once('@').expect("user@host in URL");
                format!("{scheme_user}@{h}/{}", self.name)
            }
        }
    }

    async fn conn(&self) -> MySqlConnection {
        MySqlConnection::connect(&self.url_via(None))
            .await
            .expect("connect to test database")
    }

    async fn drop_db(self) {
        let mut c = self.conn().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {}", self.name)))
            .execute(&mut c)
            .await
            .expect("drop database");
    }
}

fn config(dir: &std::path::Path, mirror_url: &str) -> Config {
    Config::load(
        None,
        [
            ("MEMORA_STORAGE__DATA_DIR", dir.to_str().expect("utf8 path")),
            ("MEMORA_AUTH__ARGON2_MEMORY_KIB", "64"),
            ("MEMORA_AUTH__ARGON2_ITERATIONS", "1"),
            ("MEMORA_LOG__LEVEL", "warn"),
            ("MEMORA_MIRROR__URL", mirror_url),
            ("MEMORA_MIRROR__BACKOFF_INITIAL_MS", "50"),
            ("MEMORA_MIRROR__BACKOFF_MAX_MS", "400"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .expect("test config")
}

/// The mirror task of `engine`, stoppable.
struct MirrorTask {
    stop: tokio::sync::watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
}

impl MirrorTask {
    fn start(engine: &Engine) -> MirrorTask {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let handle = tokio::spawn(memora::persist::mirror::run(engine.clone(), rx));
        MirrorTask { stop, handle }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        self.handle.await.expect("mirror task");
    }
}

async fn checkpoint(engine: &Engine) {
    let e = engine.clone();
    tokio::task::spawn_blocking(move || e.checkpoint(true, true))
        .await
        .expect("join")
        .expect("checkpoint");
}

/// Waits until the mirror reports no lag (panics after `limit`).
async fn caught_up(engine: &Engine, limit: Duration) {
    let started = Instant::now();
    loop {
        let s = engine.mirror_status().expect("mirror configured");
        if s.state == "ok" && s.lag_rows == 0 {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "mirror did not catch up in {limit:?}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn school(engine: &Engine, students: usize) -> Vec<Caller> {
    for name in ["basics.subject.json", "chain.subject.json"] {
        let body = serde_json::to_vec(&fixture(name)).expect("json");
        engine.put_subject(None, &body).await.expect("subject");
    }
    let plan = serde_json::to_vec(&fixture("school.plan.json")).expect("json");
    engine.put_plan(None, &plan).await.expect("plan");
    let mut callers = Vec::new();
    for i in 0..students {
        let view = engine
            .create_player(NewPlayer {
                email: format!("s{i}@school.test"),
                password: "password-1234".into(),
                display_name: format!("Student {i}"),
                role: Some(Role::Student),
                plan_id: Some("school".into()),
                grade: Some("7".into()),
                stream: None,
                timezone: None,
                grants: vec![],
            })
            .await
            .expect("student");
        let player = engine.player(&view.id).expect("player");
        callers.push(Caller {
            player,
            token_hash: [0; 32],
            device_id: None,
            session_created_at_ms: 0,
        });
    }
    callers
}

/// Student `i` completes the first `1 + i % 3` lessons of `bas`, with `i % 4 + 1` hearts.
async fn play(engine: &Engine, callers: &[Caller]) {
    for (i, c) in callers.iter().enumerate() {
        for l in 1..=(1 + i % 3) {
            engine
                .complete_lesson(c, &format!("bas-l-{l:03}"), (i % 4 + 1) as i64)
                .await
                .expect("complete");
        }
    }
}

/// Wallets and progress in MariaDB equal the engine's, bitmap decoded.
async fn assert_mirror_equals_engine(engine: &Engine, callers: &[Caller], db: &TestDb) {
    let mut conn = db.conn().await;
    let catalog = engine.catalog();
    let bas = catalog.subject("bas").expect("bas");
    for (i, c) in callers.iter().enumerate() {
        let wallet = engine.wallet(c).expect("wallet");
        let row = sqlx::query("SELECT total_xp, longest_streak FROM wallets WHERE player_id = ?")
            .bind(&c.player.id)
            .fetch_one(&mut conn)
            .await
            .expect("wallet row");
        assert_eq!(row.get::<i64, _>(0), wallet.total_xp, "wallet of {i}");
        assert_eq!(row.get::<u32, _>(1), wallet.longest_streak);
        let row = sqlx::query(
            "SELECT passed_bitmap, passed_lessons, total_lessons, best_hearts, \
             CAST(completion_percentage AS DOUBLE) FROM subject_progress \
             WHERE player_id = ? AND subject_id = 'bas'",
        )
        .bind(&c.player.id)
        .fetch_one(&mut conn)
        .await
        .expect("progress row");
        let bitmap =
            RoaringBitmap::deserialize_from(row.get::<Vec<u8>, _>(0).as_slice()).expect("bitmap");
        let expected: RoaringBitmap = (1..=(1 + i % 3))
            .map(|l| bas.bit_index(&format!("bas-l-{l:03}")).expect("bit"))
            .collect();
        assert_eq!(bitmap, expected, "bitmap of {i}");
        assert_eq!(row.get::<u32, _>(1) as usize, 1 + i % 3);
        let total = catalog.subject_lesson_count("bas").expect("count");
        assert_eq!(row.get::<u32, _>(2) as usize, total);
        let hearts: serde_json::Value =
            serde_json::from_str(&row.get::<String, _>(3)).expect("json");
        assert_eq!(hearts["bas-l-001"], serde_json::json!(i % 4 + 1));
        let pct = row.get::<f64, _>(4);
        assert!((pct - ((1 + i % 3) as f64 * 100.0 / total as f64)).abs() < 0.01);
    }
    let players: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM players")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(players as usize, callers.len());
    let lessons: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM content_lessons")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(lessons as usize, catalog.stats().lessons);
}

/// Every mirrored row except the `synced_at` stamps, for idempotence checks.
async fn dump(db: &TestDb) -> Vec<String> {
    let mut conn = db.conn().await;
    let mut out = Vec::new();
    for q in [
        "SELECT CONCAT_WS('|', id, email, role, plan_id, created_at, disabled) FROM players ORDER BY id",
        "SELECT CONCAT_WS('|', player_id, total_xp, current_streak, last_success_date, last_played_at) FROM wallets ORDER BY player_id",
        "SELECT CONCAT_WS('|', player_id, subject_id, passed_lessons, HEX(passed_bitmap), best_hearts, updated_at) FROM subject_progress ORDER BY player_id, subject_id",
        "SELECT CONCAT_WS('|', id, subject_id, bit_index) FROM content_lessons ORDER BY id",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(q)
            .fetch_all(&mut conn)
            .await
            .expect("dump");
        out.extend(rows);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_workload_and_idempotent_resend() {
    let Some(base) = base_url() else { return };
    let db = TestDb::create(&base).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = FakeClock::new("2026-11-21T09:00:00Z".parse().expect("ts"));
    let engine =
        Engine::open(config(dir.path(), &db.url_via(None)), Arc::new(clock)).expect("engine");
    let mirror = MirrorTask::start(&engine);
    let callers = school(&engine, 12).await;
    play(&engine, &callers).await;
    checkpoint(&engine).await;
    caught_up(&engine, Duration::from_secs(30)).await;

    // Migrations from empty: every table, InnoDB, the partitioned SRS table.
    let mut conn = db.conn().await;
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name, engine FROM information_schema.tables \
         WHERE table_schema = DATABASE() ORDER BY table_name",
    )
    .fetch_all(&mut conn)
    .await
    .expect("tables");
    let names: Vec<&str> = tables.iter().map(|t| t.0.as_str()).collect();
    for t in [
        "content_lessons",
        "content_subjects",
        "mirror_state",
        "players",
        "srs_cards",
        "srs_cards_archive",
        "subject_progress",
        "wallets",
    ] {
        assert!(names.contains(&t), "table {t} missing: {names:?}");
    }
    assert!(
        tables
            .iter()
            .filter(|t| t.0 != "_sqlx_migrations")
            .all(|t| t.1 == "InnoDB")
    );
    let partitions: Vec<String> = sqlx::query_scalar(
        "SELECT partition_name FROM information_schema.partitions \
         WHERE table_schema = DATABASE() AND table_name = 'srs_cards'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("partitions");
    assert_eq!(partitions, vec!["pdefault".to_string()]);

    assert_mirror_equals_engine(&engine, &callers, &db).await;
    let status = engine.mirror_status().expect("status");
    assert_eq!((status.state, status.lag_rows), ("ok", 0));

    // More play: only changed rows travel, and the result still matches.
    play(&engine, &callers[..4]).await;
    checkpoint(&engine).await;
    caught_up(&engine, Duration::from_secs(30)).await;
    let before = dump(&db).await;

    // Idempotent re-send: forget the position, so the next start copies everything
    // again; the rows are the same.
    mirror.stop().await;
    sqlx::query("DELETE FROM mirror_state")
        .execute(&mut conn)
        .await
        .expect("forget position");
    let mirror = MirrorTask::start(&engine);
    tokio::time::sleep(Duration::from_millis(100)).await;
    caught_up(&engine, Duration::from_secs(30)).await;
    let pos: Option<u64> = sqlx::query_scalar("SELECT checkpoint_no FROM mirror_state")
        .fetch_optional(&mut conn)
        .await
        .expect("position");
    assert!(pos.is_some(), "position rewritten after the resend");
    assert_eq!(dump(&db).await, before);
    mirror.stop().await;
    engine.shutdown().expect("shutdown");
    drop(conn);
    db.drop_db().await;
}

/// A TCP forwarder the test can switch off (closing every connection) and on.
struct Proxy {
    addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let up = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (u, c, target) = (up.clone(), conns.clone(), target.to_owned());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !u.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                c.lock().push(tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                }));
            }
        });
        Proxy { addr, up, conns }
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            for h in self.conns.lock().drain(..) {
                h.abort();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_never_slows_the_engine_and_the_mirror_catches_up() {
    let Some(base) = base_url() else { return };
    let db = TestDb::create(&base).await;
    let host = base
        .rsplit_once('@')
        .and_then(|(_, h)| h.split('/').next())
        .expect("host:port in URL")
        .to_owned();
    let proxy = Proxy::start(&host).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = FakeClock::new("2026-11-21T09:00:00Z".parse().expect("ts"));
    let url = db.url_via(Some(&proxy.addr.to_string()));
    let engine = Engine::open(config(dir.path(), &url), Arc::new(clock)).expect("engine");
    let mirror = MirrorTask::start(&engine);
    let callers = school(&engine, 8).await;
    checkpoint(&engine).await;
    caught_up(&engine, Duration::from_secs(30)).await;

    // Outage: every completion still answers quickly while the mirror fails.
    proxy.set_up(false);
    let mut worst = Duration::ZERO;
    for (i, c) in callers.iter().enumerate() {
        for l in 1..=(1 + i % 3) {
            let t = Instant::now();
            engine
                .complete_lesson(c, &format!("bas-l-{l:03}"), (i % 4 + 1) as i64)
                .await
                .expect("complete during outage");
            worst = worst.max(t.elapsed());
        }
        let t = Instant::now();
        checkpoint(&engine).await;
        worst = worst.max(t.elapsed());
    }
    eprintln!("mirror outage: slowest completion or checkpoint {worst:?}");
    assert!(
        worst < Duration::from_millis(500),
        "engine stalled: {worst:?}"
    );
    let started = Instant::now();
    loop {
        let s = engine.mirror_status().expect("status");
        if s.state == "unreachable" {
            assert!(s.lag_rows > 0, "{s:?}");
            assert!(s.last_error.is_some());
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Back: the mirror catches up from redb.
    proxy.set_up(true);
    caught_up(&engine, Duration::from_secs(30)).await;
    assert_mirror_equals_engine(&engine, &callers, &db).await;
    mirror.stop().await;
    engine.shutdown().expect("shutdown");
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_of_50000_wallets_and_their_progress_rows() {
    use memora::persist::codec;
    use memora::persist::mirror::{log, sql};
    use memora::persist::store::{Batch, Store};
    use memora::players::wallet::{WALLET_RECORD_VERSION, WalletRecord};
    use memora::progress::state::{PROGRESS_RECORD_VERSION, ProgressRecord};

    let Some(base) = base_url() else { return };
    let db = TestDb::create(&base).await;
    let dir = tempfile::tempdir().expect("tempdir");
    const N: usize = 50_000;
    // One checkpoint's worth of changed rows, written as the engine would, queued.
    {
        let store = Store::open(&dir.path().join(memora::engine::REDB_FILE)).expect("store");
        let mut batch = Batch {
            progress_seq: Some(0),
            wallet_seq: Some(0),
            ..Batch::default()
        };
        let mut keys = Vec::new();
        for i in 0..N {
            let id = format!("p_bench{i:015}");
            let mut passed = RoaringBitmap::new();
            passed.insert_range(0..(i % 40) as u32);
            let mut bytes = Vec::new();
            passed.serialize_into(&mut bytes).expect("bitmap");
            let progress = ProgressRecord {
                version: PROGRESS_RECORD_VERSION,
                passed: bytes,
                best_hearts: vec![0x35; (i % 40) / 2],
                total_xp_earned: i as u64,
                last_lesson_completed: Some("bas-l-001".into()),
                updated_at_ms: 1_790_000_000_000,
            };
            let wallet = WalletRecord {
                version: WALLET_RECORD_VERSION,
                total_xp: i as i64,
                current_streak: 3,
                longest_streak: 9,
                last_success_day: Some(20_000),
                last_played_at_ms: Some(1_790_000_000_000),
            };
            keys.push(log::wallet_key(&id));
            keys.push(log::progress_key(&id, "bas"));
            batch
                .progress
                .push((id.clone(), "bas".into(), codec::encode(&progress)));
            batch.wallets.push((id, codec::encode(&wallet)));
        }
        batch.mirror_keys = Some(keys);
        store.commit(&batch).expect("commit");
    }
    // MariaDB already has everything before checkpoint 1: only the queue travels.
    {
        let mut conn = db.conn().await;
        sql::MIGRATOR
            .run_direct(None, &mut conn, false)
            .await
            .expect("migrate");
        sql::set_position(&mut conn, 1, &log::position_before(1))
            .await
            .expect("position");
    }
    let engine = Engine::open(
        config(dir.path(), &db.url_via(None)),
        Arc::new(FakeClock::new("2026-11-21T09:00:00Z".parse().expect("ts"))),
    )
    .expect("engine");
    let started = Instant::now();
    let mirror = MirrorTask::start(&engine);
    tokio::time::sleep(Duration::from_millis(50)).await;
    caught_up(&engine, Duration::from_secs(120)).await;
    let took = started.elapsed();
    let rows = 2 * N;
    eprintln!(
        "mirror throughput: {N} wallets + {N} progress rows in {:.2} s = {:.0} rows/s",
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64()
    );
    let mut conn = db.conn().await;
    let (w, p): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM wallets), (SELECT COUNT(*) FROM subject_progress)",
    )
    .fetch_one(&mut conn)
    .await
    .expect("counts");
    assert_eq!((w as usize, p as usize), (N, N));
    assert!(took < Duration::from_secs(60), "spec: well under a minute");
    mirror.stop().await;
    engine.shutdown().expect("shutdown");
    drop(conn);
    db.drop_db().await;
}

/// SRS cards reach `srs_cards`, each season gets its own `LIST COLUMNS` partition (also
/// for a season created while the mirror runs), the rows land in their season's
/// partition with the engine's card state, and a full re-send leaves them unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_reach_their_season_partition() {
    use memora::engine::seasons::NewSeason;
    use memora::engine::srs_ops::Answer;
    use memora::srs::Rating;

    let Some(base) = base_url() else { return };
    let db = TestDb::create(&base).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = FakeClock::new("2026-11-21T09:00:00Z".parse().expect("ts"));
    let engine =
        Engine::open(config(dir.path(), &db.url_via(None)), Arc::new(clock)).expect("engine");
    let season = |id: &str, active: bool| NewSeason {
        id: id.to_owned(),
        title: format!("Season {id}"),
        start_date: "2026-09-01".to_owned(),
        end_date: "2027-06-30".to_owned(),
        is_active: active,
        auto_archive: false,
    };
    engine
        .create_season(season("2025", false))
        .await
        .expect("season 2025");
    let mirror = MirrorTask::start(&engine);
    let callers = school(&engine, 6).await;
    // A season created after the mirror started.
    engine
        .create_season(season("2026-27_main", true))
        .await
        .expect("active season");
    for (i, c) in callers.iter().enumerate() {
        let answers = [Answer {
            question_id: "bas-q-001".to_owned(),
            rating: Rating::ALL[i % 4],
        }];
        engine
            .complete_lesson_with(c, "bas-l-001", 3, &answers, None)
            .await
            .expect("complete with an answer");
    }
    checkpoint(&engine).await;
    caught_up(&engine, Duration::from_secs(30)).await;

    let mut conn = db.conn().await;
    let partitions: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT partition_name, partition_description FROM information_schema.partitions \
         WHERE table_schema = DATABASE() AND table_name = 'srs_cards' \
         ORDER BY partition_ordinal_position",
    )
    .fetch_all(&mut conn)
    .await
    .expect("partitions");
    let names: Vec<&str> = partitions.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(names, vec!["p1", "p2", "pdefault"], "{partitions:?}");
    let active_partition = partitions
        .iter()
        .find(|p| p.1.as_deref().is_some_and(|d| d.contains("2026-27_main")))
        .map(|p| p.0.clone())
        .expect("a partition for the active season");
    let in_partition: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM srs_cards PARTITION ({active_partition})"
    )))
    .fetch_one(&mut conn)
    .await
    .expect("count");
    assert_eq!(in_partition as usize, callers.len());

    for c in &callers {
        let filter = memora::engine::srs_reviews::CardFilter {
            season_id: None,
            subject_id: None,
            state: None,
            due_only: false,
            limit: 50,
            after: None,
        };
        let page = engine.player_cards(&c.player.id, &filter).expect("cards");
        let card = serde_json::to_value(&page).expect("json")["items"][0].clone();
        let row = sqlx::query(
            "SELECT question_id, subject_id, topic_id, season_id, state, stability, reps \
             FROM srs_cards WHERE player_id = ?",
        )
        .bind(&c.player.id)
        .fetch_one(&mut conn)
        .await
        .expect("card row");
        assert_eq!(row.get::<String, _>(0), "bas-q-001");
        assert_eq!(row.get::<String, _>(1), "bas");
        assert_eq!(
            row.get::<Option<String>, _>(2).as_deref(),
            Some("bas-tp-hello")
        );
        assert_eq!(row.get::<String, _>(3), "2026-27_main");
        let stability = card["stability"].as_f64().expect("stability");
        assert!((row.get::<f64, _>(5) - stability).abs() < 1e-3, "{card}");
        assert_eq!(
            u64::from(row.get::<u32, _>(6)),
            card["reps"].as_u64().expect("reps")
        );
    }

    // A full re-send changes nothing.
    let dump_cards = "SELECT CONCAT_WS('|', player_id, season_id, question_id, state, \
                      stability, difficulty, due, last_review, reps, lapses) FROM srs_cards \
                      ORDER BY player_id, question_id";
    let before: Vec<String> = sqlx::query_scalar(dump_cards)
        .fetch_all(&mut conn)
        .await
        .expect("dump");
    mirror.stop().await;
    sqlx::query("DELETE FROM mirror_state")
        .execute(&mut conn)
        .await
        .expect("forget position");
    let mirror = MirrorTask::start(&engine);
    tokio::time::sleep(Duration::from_millis(100)).await;
    caught_up(&engine, Duration::from_secs(30)).await;
    let after: Vec<String> = sqlx::query_scalar(dump_cards)
        .fetch_all(&mut conn)
        .await
        .expect("dump");
    assert_eq!(after, before);
    mirror.stop().await;
    engine.shutdown().expect("shutdown");
    drop(conn);
    db.drop_db().await;
}

/// Reconciliation (srs.md): after a workload nothing differs; rows changed behind the
/// mirror's back (a wrong progress count, a deleted card, a stray card) are found,
/// rewritten from redb, and the next run finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_finds_and_fixes_mirror_drift() {
    use memora::engine::seasons::NewSeason;
    use memora::engine::srs_ops::Answer;
    use memora::srs::Rating;

    let Some(base) = base_url() else { return };
    let db = TestDb::create(&base).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = FakeClock::new("2026-11-21T09:00:00Z".parse().expect("ts"));
    let engine =
        Engine::open(config(dir.path(), &db.url_via(None)), Arc::new(clock)).expect("engine");
    engine
        .create_season(NewSeason {
            id: "2026".into(),
            title: "2026".into(),
            start_date: "2026-09-01".into(),
            end_date: "2027-06-30".into(),
            is_active: true,
            auto_archive: false,
        })
        .await
        .expect("season");
    let mirror = MirrorTask::start(&engine);
    let callers = school(&engine, 8).await;
    for c in &callers {
        let answers = [Answer {
            question_id: "bas-q-001".to_owned(),
            rating: Rating::Good,
        }];
        engine
            .complete_lesson_with(c, "bas-l-001", 3, &answers, None)
            .await
            .expect("complete");
    }
    checkpoint(&engine).await;
    caught_up(&engine, Duration::from_secs(30)).await;

    let clean = engine.reconcile(Some(1000), None).await.expect("reconcile");
    assert_eq!(clean.mirror, "compared");
    assert_eq!(
        clean.sample_size, 16,
        "8 progress rows and 8 cards: {clean:?}"
    );
    assert_eq!(clean.compared_mirror, 16);
    assert!(clean.compared_memory > 0);
    assert_eq!(clean.discrepancies_found, 0, "{clean:?}");
    assert!(!clean.alert_triggered);

    // Drift behind the mirror's back.
    let mut conn = db.conn().await;
    sqlx::query("UPDATE subject_progress SET passed_lessons = 99 WHERE player_id = ?")
        .bind(&callers[0].player.id)
        .execute(&mut conn)
        .await
        .expect("corrupt progress");
    sqlx::query("DELETE FROM srs_cards WHERE player_id = ?")
        .bind(&callers[1].player.id)
        .execute(&mut conn)
        .await
        .expect("drop a card");
    sqlx::query(
        "INSERT INTO srs_cards (player_id, season_id, question_id, state, stability, \
         difficulty, due, reps, lapses, subject_id, synced_at) VALUES \
         (?, '2026', 'bas-q-002', 2, 1, 5, UTC_TIMESTAMP(3), 1, 0, 'bas', UTC_TIMESTAMP(3))",
    )
    .bind(&callers[2].player.id)
    .execute(&mut conn)
    .await
    .expect("stray card");
    let found = engine.reconcile(Some(1000), None).await.expect("reconcile");
    // The stray card has no redb row, so the sample (drawn from redb) cannot see it;
    // the other two are found and fixed.
    assert_eq!(found.discrepancies_found, 2, "{found:?}");
    assert_eq!(found.auto_corrected, 2);
    assert!(found.alert_triggered, "2/16 is above 0.1%");
    assert!(
        found
            .discrepancies
            .iter()
            .all(|d| d.between == "redb_mirror")
    );
    let passed: u32 = sqlx::query_scalar(
        "SELECT passed_lessons FROM subject_progress WHERE player_id = ? AND subject_id = 'bas'",
    )
    .bind(&callers[0].player.id)
    .fetch_one(&mut conn)
    .await
    .expect("fixed row");
    assert_eq!(passed, 1);
    let cards: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM srs_cards WHERE player_id = ?")
        .bind(&callers[1].player.id)
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(cards, 1, "the deleted card is back");
    let again = engine.reconcile(Some(1000), None).await.expect("reconcile");
    assert_eq!(again.discrepancies_found, 0, "{again:?}");

    mirror.stop().await;
    engine.shutdown().expect("shutdown");
    drop(conn);
    db.drop_db().await;
}
