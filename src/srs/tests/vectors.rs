//! The published test vectors of py-fsrs 6.3.2 (`tests/test_basic.py`) and fsrs-rs
//! 6.6 (`src/inference.rs` tests), run through our scheduler.

use super::{T0, no_fuzz, replay, scheduler};
use crate::srs::scheduler::DAY_MS;
use crate::srs::{CardState, Rating, SchedulerConfig};

use Rating::{Again, Easy, Good};

/// again, good × 5 at day offsets 0, 0, 1, 3, 8, 21 (py-fsrs `test_memo_state`,
/// fsrs-rs `test_memory_state`).
fn memo_state(parameters: [f32; 21]) -> (f32, f32) {
    let s = scheduler(SchedulerConfig {
        parameters,
        ..SchedulerConfig::default()
    });
    let ratings = [Again, Good, Good, Good, Good, Good];
    let mut at = T0;
    let answers: Vec<(Rating, i64)> = ratings
        .iter()
        .zip([0, 0, 1, 3, 8, 21])
        .map(|(&r, days)| {
            at += days * DAY_MS;
            (r, at)
        })
        .collect();
    let card = replay(&s, &answers);
    (card.stability, card.difficulty)
}

#[test]
fn memo_state_matches_the_reference() {
    let (stability, difficulty) = memo_state(fsrs::DEFAULT_PARAMETERS);
    assert!((stability - 53.62691).abs() < 1e-4, "stability {stability}");
    assert!(
        (difficulty - 6.3574867).abs() < 1e-4,
        "difficulty {difficulty}"
    );
}

#[test]
fn memo_state_with_short_term_frozen_matches_fsrs_rs() {
    let mut w = fsrs::DEFAULT_PARAMETERS;
    w[17] = 0.0;
    w[18] = 0.0;
    w[19] = 0.0;
    let (stability, difficulty) = memo_state(w);
    assert!(
        (stability - 53.335106).abs() < 1e-4,
        "stability {stability}"
    );
    assert!(
        (difficulty - 6.3574867).abs() < 1e-4,
        "difficulty {difficulty}"
    );
}

/// py-fsrs `test_review_card`: good × 6, again × 2, good × 5, each answered when due.
#[test]
fn interval_history_matches_py_fsrs() {
    let s = no_fuzz();
    let ratings = [
        Good, Good, Good, Good, Good, Good, Again, Again, Good, Good, Good, Good, Good,
    ];
    let mut card = None;
    let mut at = T0;
    let mut history = Vec::new();
    for rating in ratings {
        let next = s.review(card.as_ref(), rating, at, "q");
        history.push((next.due_ms - at) / DAY_MS);
        at = next.due_ms;
        card = Some(next);
    }
    assert_eq!(history, [0, 2, 11, 46, 163, 498, 0, 0, 2, 4, 7, 12, 21]);
}

/// py-fsrs `test_repeated_correct_reviews`: ten easy answers drive difficulty to 1.
#[test]
fn repeated_easy_reaches_minimum_difficulty() {
    let s = no_fuzz();
    let answers: Vec<(Rating, i64)> = (0..10).map(|i| (Easy, T0 + i)).collect();
    assert_eq!(replay(&s, &answers).difficulty, 1.0);
}

/// fsrs-rs `next_states` doc example: the first answer's memory state per rating.
#[test]
fn first_answer_memory_states_match_fsrs_rs() {
    let s = no_fuzz();
    let expected = [
        (Again, 0.212, 6.4133),
        (Rating::Hard, 1.2931, 5.112_170_7),
        (Good, 2.3065, 2.118_104),
        (Easy, 8.2956, 1.0),
    ];
    for (rating, stability, difficulty) in expected {
        let card = s.review(None, rating, T0, "q");
        assert!((card.stability - stability).abs() < 1e-5, "{rating:?}");
        assert!((card.difficulty - difficulty).abs() < 1e-5, "{rating:?}");
        assert_eq!(card.state == CardState::Review, rating == Easy);
    }
}

/// fsrs-rs `test_next_interval`: stability 1 day at retention 0.1 … 0.9.
#[test]
fn intervals_for_retention_match_fsrs_rs() {
    let got: Vec<u32> = (1..=9)
        .map(|i| {
            scheduler(SchedulerConfig {
                desired_retention: i as f32 / 10.0,
                maximum_interval_days: 10_000_000,
                ..SchedulerConfig::default()
            })
            .review_interval_days(1.0)
        })
        .collect();
    assert_eq!(got, [3_116_766, 34_793, 2_508, 387, 90, 27, 9, 3, 1]);
}
