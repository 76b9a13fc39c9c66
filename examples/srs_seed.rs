//! Seeds a stopped server's data directory with many SRS cards in one inactive season,
//! for the archive benchmark (BENCHMARKS.md "SRS archive and reviews over HTTP",
//! `benches/archive.sh`). The cards are written straight into the redb file's live
//! table as a checkpoint would, for players `seed-{i}` (no accounts: the archive
//! works on cards alone), `CARDS_PER_PLAYER` review cards each with spread due times.
//!
//! `cargo run --release --example srs_seed -- DATA_DIR CARDS [CARDS_PER_PLAYER] [SEASON]`
//! (defaults: 100 cards per player, season `seeded`).

use std::path::PathBuf;
use std::time::Instant;

use memora::engine::seasons::SeasonRecord;
use memora::persist::codec;
use memora::persist::store::{Batch, Store};
use memora::srs::{Card, CardState};

/// Cards written per redb transaction.
const PER_COMMIT: u64 = 250_000;
/// 2026-06-01T00:00:00Z in unix ms.
const BASE_MS: i64 = 1_780_272_000_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(cards)) = (
        args.first(),
        args.get(1).and_then(|n| n.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: srs_seed DATA_DIR CARDS [CARDS_PER_PLAYER] [SEASON]");
        std::process::exit(2);
    };
    let per_player: u64 = args
        .get(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100)
        .max(1);
    let season = args.get(3).cloned().unwrap_or_else(|| "seeded".to_owned());
    let path = PathBuf::from(dir).join(memora::engine::REDB_FILE);
    let store = Store::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));

    let mut seasons: Vec<(String, Vec<u8>)> = store.seasons().expect("seasons");
    seasons.retain(|(id, _)| *id != season);
    let record = SeasonRecord {
        id: season.clone(),
        title: format!("Seeded {season}"),
        start_date: "2025-09-01".into(),
        end_date: "2026-06-30".into(),
        is_active: false,
        auto_archive: false,
        created_at_ms: BASE_MS,
        updated_at_ms: BASE_MS,
    };
    seasons.push((season.clone(), codec::encode(&record)));

    let started = Instant::now();
    let mut written = 0u64;
    let mut first = true;
    while written < cards || first {
        let n = PER_COMMIT.min(cards - written);
        let mut batch = Batch {
            replace_seasons: first.then(|| seasons.clone()),
            ..Batch::default()
        };
        first = false;
        for i in written..written + n {
            let player = i / per_player;
            let question = i % per_player;
            let card = Card {
                state: CardState::Review,
                step: 0,
                stability: 5.0 + (i % 97) as f32,
                difficulty: 1.0 + (i % 9) as f32,
                due_ms: BASE_MS + ((i * 7919) % (60 * 86_400)) as i64 * 1000,
                last_review_ms: Some(BASE_MS - 86_400_000),
                reps: 3,
                lapses: (i % 3) as u32,
            };
            batch.cards.push((
                format!("seed-{player:07}"),
                season.clone(),
                format!("seed-q-{question:05}"),
                codec::encode(&card),
            ));
        }
        store.commit(&batch).expect("commit");
        written += n;
        eprintln!(
            "seeded {written} of {cards} cards ({:.1}s)",
            started.elapsed().as_secs_f64()
        );
        if n == 0 {
            break;
        }
    }
    println!(
        "{{\"seeded_cards\":{written},\"players\":{},\"season\":\"{season}\",\"seconds\":{:.1}}}",
        written.div_ceil(per_player),
        started.elapsed().as_secs_f64()
    );
}
