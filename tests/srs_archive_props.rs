//! Property test of the SRS archive (srs.md "Archive and retention"; issue 6: "no card
//! is lost or duplicated across checkpoints, restarts and archive"): random sequences
//! of history imports, checkpoints, clean restarts, crashes (the engine dropped without
//! a checkpoint), archives, crashes in the middle of an archive job and lazy loads, run
//! against the engine in-process and compared with a model after each check: every card
//! is live or archived, never both or neither, with the state the scheduler gave it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use memora::clock::FakeClock;
use memora::config::Config;
use memora::engine::Engine;
use memora::engine::accounts::{NewPlayer, rfc3339};
use memora::engine::srs_reviews::CardFilter;
use memora::srs::import::{ImportedReview, replay};
use memora::srs::settings::SrsSettings;
use memora::srs::{Card, Rating};
use proptest::prelude::*;

use crate::srs_archive::{DAY_MS, START_MS, season_body};

const PLAYERS: usize = 3;
const QUESTIONS: usize = 6;
const SEASONS: [&str; 2] = ["sa", "sb"];

#[derive(Debug, Clone)]
enum Op {
    /// Import reviews of some questions (bit mask) for a player into a season.
    Import {
        player: usize,
        season: usize,
        mask: u8,
        salt: u8,
    },
    Checkpoint,
    /// Drop the engine without a checkpoint (everything since is replayed).
    Crash,
    /// Shutdown (journal flushed, final checkpoint) and reopen.
    Restart,
    Archive {
        season: usize,
    },
    /// Start archiving, then drop the engine mid-way (a crash during the job).
    CrashDuringArchive {
        season: usize,
        after_us: u16,
    },
    /// Load a player into memory (lazy load) by reading their cards.
    Touch {
        player: usize,
    },
    /// Compare the engine with the model (this loads every player).
    Check,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..PLAYERS, 0..SEASONS.len(), 1u8..64, any::<u8>())
            .prop_map(|(player, season, mask, salt)| Op::Import { player, season, mask, salt }),
        2 => Just(Op::Checkpoint),
        1 => Just(Op::Crash),
        1 => Just(Op::Restart),
        2 => (0..SEASONS.len()).prop_map(|season| Op::Archive { season }),
        1 => (0..SEASONS.len(), 0u16..3000)
            .prop_map(|(season, after_us)| Op::CrashDuringArchive { season, after_us }),
        1 => (0..PLAYERS).prop_map(|player| Op::Touch { player }),
        2 => Just(Op::Check),
    ]
}

fn engine_config(dir: &std::path::Path) -> Config {
    Config::load(
        None,
        [
            ("MEMORA_STORAGE__DATA_DIR", dir.to_str().expect("utf8")),
            ("MEMORA_AUTH__ARGON2_MEMORY_KIB", "64"),
            ("MEMORA_AUTH__ARGON2_ITERATIONS", "1"),
            ("MEMORA_LOG__LEVEL", "warn"),
            // Small batches: an archive takes several events and checkpoints.
            ("MEMORA_SRS__ARCHIVE_BATCH_CARDS", "4"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .expect("config")
}

type Key = (usize, usize, String);

/// Imported reviews of the questions in `mask`, 1–2 reviews each.
fn import_rows(mask: u8, salt: u8) -> Vec<ImportedReview> {
    let mut rows = Vec::new();
    for q in 0..QUESTIONS {
        if mask & (1 << q) == 0 {
            continue;
        }
        let seed = u64::from(salt) * 31 + q as u64;
        for k in 0..(1 + seed % 2) {
            rows.push(ImportedReview {
                question_id: format!("q{q}"),
                rating: Rating::ALL[((seed + k) % 4) as usize],
                reviewed_at_ms: START_MS
                    - (10 - 3 * k as i64) * DAY_MS
                    - (seed as i64 % 7) * 60_000,
                duration_ms: None,
            });
        }
    }
    rows
}

fn csv_of(rows: &[ImportedReview]) -> String {
    let mut csv = String::from("question_id,rating,reviewed_at,duration_ms\n");
    for r in rows {
        csv.push_str(&format!(
            "{},{},{},\n",
            r.question_id,
            r.rating.as_u8(),
            r.reviewed_at_ms
        ));
    }
    csv
}

struct World {
    dir: tempfile::TempDir,
    clock: FakeClock,
    engine: Option<Engine>,
    players: Vec<String>,
    live: BTreeMap<Key, Card>,
    archived: BTreeMap<Key, Card>,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = FakeClock::new(jiff::Timestamp::from_millisecond(START_MS).expect("ts"));
        let engine =
            Engine::open(engine_config(dir.path()), Arc::new(clock.clone())).expect("open");
        let mut players = Vec::new();
        for i in 0..PLAYERS {
            let view = engine
                .create_player(NewPlayer {
                    email: format!("p{i}@prop.memora"),
                    password: "password-1234".into(),
                    display_name: format!("P{i}"),
                    role: None,
                    plan_id: None,
                    grade: None,
                    stream: None,
                    timezone: None,
                    grants: vec![],
                })
                .await
                .expect("player");
            players.push(view.id);
        }
        for season in SEASONS {
            engine
                .create_season(
                    serde_json::from_value(season_body(season, "2026-06-30", false, false))
                        .expect("season"),
                )
                .await
                .expect("season");
        }
        World {
            dir,
            clock,
            engine: Some(engine),
            players,
            live: BTreeMap::new(),
            archived: BTreeMap::new(),
        }
    }

    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("engine")
    }

    /// Opens the data directory again, waiting for a dropped engine's last blocking
    /// task (a checkpoint of an aborted archive) to release the redb file.
    async fn reopen(&mut self) {
        for _ in 0..500 {
            match Engine::open(engine_config(self.dir.path()), Arc::new(self.clock.clone())) {
                Ok(engine) => {
                    self.engine = Some(engine);
                    return;
                }
                Err(memora::engine::OpenError::Store(
                    memora::persist::store::StoreError::Locked { .. },
                )) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(e) => panic!("reopen: {e}"),
            }
        }
        panic!("the redb file stayed locked");
    }

    async fn run(&mut self, op: &Op) {
        match op {
            Op::Import {
                player,
                season,
                mask,
                salt,
            } => {
                let rows = import_rows(*mask, *salt);
                let engine = self.engine().clone();
                let prepared = engine
                    .prepare_review_import(
                        &self.players[*player],
                        Some(SEASONS[*season]),
                        csv_of(&rows).as_bytes(),
                        "admin",
                    )
                    .expect("valid import");
                engine
                    .run_review_import(prepared, None)
                    .await
                    .expect("import");
                let scheduler = SrsSettings::default().scheduler().expect("scheduler");
                for (q, card, _) in replay(&scheduler, &rows) {
                    self.live.insert((*player, *season, q), card);
                }
            }
            Op::Checkpoint => {
                let engine = self.engine().clone();
                tokio::task::spawn_blocking(move || engine.checkpoint(true, true))
                    .await
                    .expect("join")
                    .expect("checkpoint");
            }
            Op::Crash => {
                self.engine = None;
                self.reopen().await;
            }
            Op::Restart => {
                let engine = self.engine.take().expect("engine");
                tokio::task::spawn_blocking(move || engine.shutdown())
                    .await
                    .expect("join")
                    .expect("shutdown");
                self.reopen().await;
            }
            Op::Archive { season } => {
                let engine = self.engine().clone();
                let ticket = engine
                    .begin_archive(SEASONS[*season])
                    .await
                    .expect("ticket");
                let outcome = engine.run_archive(ticket, None).await.expect("archive");
                let moving: Vec<Key> = self
                    .live
                    .keys()
                    .filter(|k| k.1 == *season)
                    .cloned()
                    .collect();
                assert_eq!(outcome.archived_cards, moving.len() as u64);
                for key in moving {
                    let card = self.live.remove(&key).expect("card");
                    self.archived.insert(key, card);
                }
            }
            Op::CrashDuringArchive { season, after_us } => {
                let engine = self.engine.take().expect("engine");
                let ticket = engine
                    .begin_archive(SEASONS[*season])
                    .await
                    .expect("ticket");
                let job = tokio::spawn(async move { engine.run_archive(ticket, None).await });
                tokio::time::sleep(Duration::from_micros(u64::from(*after_us))).await;
                job.abort();
                let _ = job.await;
                self.reopen().await;
                // Each card of the season is now live or archived, whichever the crash
                // left: a card no longer live must have been archived (check() then
                // verifies that the archive holds it, with its state, and the rest).
                let moving: Vec<Key> = self
                    .live
                    .keys()
                    .filter(|k| k.1 == *season)
                    .cloned()
                    .collect();
                for key in moving {
                    if !self.live_cards(key.0, key.1).contains_key(&key.2) {
                        let card = self.live.remove(&key).expect("card");
                        self.archived.insert(key, card);
                    }
                }
                self.check();
            }
            Op::Touch { player } => {
                self.live_cards(*player, 0);
            }
            Op::Check => self.check(),
        }
    }

    fn live_cards(&self, player: usize, season: usize) -> BTreeMap<String, (String, u32, String)> {
        let page = self
            .engine()
            .player_cards(
                &self.players[player],
                &CardFilter {
                    season_id: Some(SEASONS[season].to_owned()),
                    limit: 500,
                    ..CardFilter::default()
                },
            )
            .expect("cards");
        page.items
            .into_iter()
            .map(|c| {
                let state = serde_json::to_value(c.state).expect("state").to_string();
                (c.question_id, (state, c.reps, c.due))
            })
            .collect()
    }

    /// Every card is live or archived exactly as the model says; counts agree.
    fn check(&self) {
        for (season, season_id) in SEASONS.iter().enumerate() {
            let mut live_total = 0;
            let mut archived_total = 0;
            for player in 0..PLAYERS {
                let expected: BTreeMap<String, (String, u32, String)> = self
                    .live
                    .iter()
                    .filter(|((p, s, _), _)| *p == player && *s == season)
                    .map(|((_, _, q), c)| {
                        let state = serde_json::to_value(c.state).expect("state").to_string();
                        (q.clone(), (state, c.reps, rfc3339(c.due_ms)))
                    })
                    .collect();
                live_total += expected.len();
                assert_eq!(
                    self.live_cards(player, season),
                    expected,
                    "live {player}/{season}"
                );
                let archived: BTreeMap<String, Card> = self
                    .engine()
                    .archived_cards_of(&self.players[player], season_id)
                    .expect("archived")
                    .into_iter()
                    .map(|(q, _, card)| (q, card))
                    .collect();
                let expected: BTreeMap<String, Card> = self
                    .archived
                    .iter()
                    .filter(|((p, s, _), _)| *p == player && *s == season)
                    .map(|((_, _, q), c)| (q.clone(), *c))
                    .collect();
                archived_total += expected.len();
                assert_eq!(archived, expected, "archived {player}/{season}");
            }
            let status = self.engine().archive_status(season_id).expect("status");
            assert_eq!(
                (status.live_cards, status.archived_cards),
                (live_total as u64, archived_total as u64),
                "counts of {}",
                *season_id
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn no_card_is_lost_or_duplicated_across_checkpoints_restarts_and_archives(
        ops in prop::collection::vec(op(), 1..16)
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut world = World::new().await;
            for op in &ops {
                world.run(op).await;
            }
            world.check();
            // And once more from disk alone.
            world.run(&Op::Crash).await;
            world.check();
        });
    }
}
