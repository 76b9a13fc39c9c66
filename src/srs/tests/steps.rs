//! The step rules, `days_elapsed`, counters, legacy ratings and config validation, by
//! hand (py-fsrs 6.3.2 semantics, srs.md).

use super::{MINUTE, T0, no_fuzz, replay, scheduler};
use crate::srs::scheduler::DAY_MS;
use crate::srs::{Card, CardState, Rating, SchedulerConfig};

use Rating::{Again, Easy, Good, Hard};

fn after(card: &Card) -> i64 {
    card.due_ms - card.last_review_ms.expect("reviewed")
}

#[test]
fn a_card_starts_in_learning_step_zero() {
    let s = no_fuzz();
    let again = s.review(None, Again, T0, "q");
    assert_eq!(
        (again.state, again.step, after(&again)),
        (CardState::Learning, 0, MINUTE)
    );
    let hard = s.review(None, Hard, T0, "q");
    // Hard at the first step waits the mean of the first two steps: 5.5 min.
    assert_eq!(
        (hard.state, hard.step, after(&hard)),
        (CardState::Learning, 0, 330_000)
    );
    let good = s.review(None, Good, T0, "q");
    assert_eq!(
        (good.state, good.step, after(&good)),
        (CardState::Learning, 1, 10 * MINUTE)
    );
    let easy = s.review(None, Easy, T0, "q");
    // Easy graduates at once: round(8.2956) = 8 days.
    assert_eq!(
        (easy.state, easy.step, after(&easy)),
        (CardState::Review, 0, 8 * DAY_MS)
    );
    for card in [again, hard, good, easy] {
        assert_eq!(
            (card.reps, card.lapses, card.last_review_ms),
            (1, 0, Some(T0))
        );
    }
}

#[test]
fn later_learning_steps() {
    let s = no_fuzz();
    let step1 = replay(&s, &[(Good, T0)]);
    let hard = s.review(Some(&step1), Hard, T0 + 10 * MINUTE, "q");
    assert_eq!(
        (hard.state, hard.step, after(&hard)),
        (CardState::Learning, 1, 10 * MINUTE)
    );
    let again = s.review(Some(&step1), Again, T0 + 10 * MINUTE, "q");
    assert_eq!(
        (again.state, again.step, after(&again)),
        (CardState::Learning, 0, MINUTE)
    );
    let good = s.review(Some(&step1), Good, T0 + 10 * MINUTE, "q");
    assert_eq!((good.state, good.step), (CardState::Review, 0));
    assert!(after(&good) >= DAY_MS);
}

#[test]
fn hard_at_a_single_step_waits_one_and_a_half_steps() {
    let s = scheduler(SchedulerConfig {
        learning_steps_secs: vec![600],
        enable_fuzz: false,
        ..SchedulerConfig::default()
    });
    let card = s.review(None, Hard, T0, "q");
    assert_eq!(
        (card.state, after(&card)),
        (CardState::Learning, 15 * MINUTE)
    );
}

#[test]
fn again_in_review_relearns_and_counts_a_lapse() {
    let s = no_fuzz();
    let review = replay(&s, &[(Easy, T0)]);
    let at = review.due_ms;
    let lapsed = s.review(Some(&review), Again, at, "q");
    assert_eq!(
        (
            lapsed.state,
            lapsed.step,
            after(&lapsed),
            lapsed.lapses,
            lapsed.reps
        ),
        (CardState::Relearning, 0, 10 * MINUTE, 1, 2)
    );
    // One relearning step: hard waits 1.5 steps, again restarts, good graduates.
    let hard = s.review(Some(&lapsed), Hard, at + 10 * MINUTE, "q");
    assert_eq!(
        (hard.state, after(&hard)),
        (CardState::Relearning, 15 * MINUTE)
    );
    let again = s.review(Some(&lapsed), Again, at + 10 * MINUTE, "q");
    assert_eq!(
        (again.state, again.step, again.lapses),
        (CardState::Relearning, 0, 1)
    );
    let good = s.review(Some(&lapsed), Good, at + 10 * MINUTE, "q");
    assert_eq!(
        (good.state, good.lapses, good.reps),
        (CardState::Review, 1, 3)
    );
    assert!(after(&good) >= DAY_MS);
}

#[test]
fn without_steps_cards_go_straight_to_review() {
    let s = scheduler(SchedulerConfig {
        learning_steps_secs: vec![],
        relearning_steps_secs: vec![],
        enable_fuzz: false,
        ..SchedulerConfig::default()
    });
    let first = s.review(None, Again, T0, "q");
    assert_eq!(first.state, CardState::Review);
    assert!(after(&first) >= DAY_MS);
    let lapsed = s.review(Some(&first), Again, first.due_ms, "q");
    assert_eq!((lapsed.state, lapsed.lapses), (CardState::Review, 1));
}

#[test]
fn a_step_past_the_configured_steps_graduates() {
    let s = no_fuzz();
    let mut card = replay(&s, &[(Good, T0)]);
    card.step = 7;
    let next = s.review(Some(&card), Hard, T0 + MINUTE, "q");
    assert_eq!(next.state, CardState::Review);
    let next = s.review(Some(&card), Again, T0 + MINUTE, "q");
    assert_eq!((next.state, next.step), (CardState::Learning, 0));
}

#[test]
fn days_elapsed_counts_whole_24_hour_periods() {
    let s = no_fuzz();
    let review = replay(&s, &[(Easy, T0)]);
    let same_day = s.review(Some(&review), Good, T0 + DAY_MS - 1, "q");
    let a_minute_later = s.review(Some(&review), Good, T0 + MINUTE, "q");
    let next_day = s.review(Some(&review), Good, T0 + DAY_MS, "q");
    // Short-term stability for both reviews under 24 h, long-term from 24 h on.
    assert_eq!(same_day.stability, a_minute_later.stability);
    assert_ne!(same_day.stability, next_day.stability);
    // A clock going backwards counts as the same day.
    let earlier = s.review(Some(&review), Good, T0 - DAY_MS * 3, "q");
    assert_eq!(earlier.stability, a_minute_later.stability);
}

#[test]
fn same_day_hard_does_not_lower_stability() {
    let s = scheduler(SchedulerConfig {
        learning_steps_secs: vec![],
        ..SchedulerConfig::default()
    });
    let card = s.review(None, Good, T0, "q");
    let hard = s.review(Some(&card), Hard, T0 + MINUTE, "q");
    assert_eq!(hard.stability, card.stability);
}

#[test]
fn maximum_interval_caps_review_intervals() {
    for enable_fuzz in [false, true] {
        let s = scheduler(SchedulerConfig {
            maximum_interval_days: 100,
            enable_fuzz,
            ..SchedulerConfig::default()
        });
        let mut card = s.review(None, Easy, T0, "q");
        for rating in [Good, Easy, Good, Easy, Easy] {
            assert!(after(&card) <= 100 * DAY_MS);
            card = s.review(Some(&card), rating, card.due_ms, "q");
        }
        assert!(after(&card) <= 100 * DAY_MS);
        if !enable_fuzz {
            assert_eq!(after(&card), 100 * DAY_MS);
        }
    }
}

#[test]
fn a_never_reviewed_card_is_treated_as_new() {
    let s = no_fuzz();
    let mut blank = s.review(None, Good, T0, "q");
    blank.last_review_ms = None;
    blank.reps = 0;
    assert_eq!(
        s.review(Some(&blank), Easy, T0, "q"),
        s.review(None, Easy, T0, "q")
    );
}

#[test]
fn legacy_ratings() {
    let cases = [
        (false, 500, Again),
        (false, 10_000, Again),
        (true, 0, Easy),
        (true, 1_999, Easy),
        (true, 2_000, Good),
        (true, 6_000, Good),
        (true, 6_001, Hard),
    ];
    for (is_correct, ms, rating) in cases {
        assert_eq!(
            Rating::from_legacy(is_correct, ms),
            rating,
            "{is_correct} {ms}"
        );
    }
}

#[test]
fn ratings_serialize_as_numbers() {
    assert_eq!(serde_json::to_string(&Rating::Hard).expect("json"), "2");
    assert_eq!(
        serde_json::from_str::<Rating>("4").expect("json"),
        Rating::Easy
    );
    assert!(serde_json::from_str::<Rating>("5").is_err());
    assert!(serde_json::from_str::<Rating>("0").is_err());
}

#[test]
fn cards_round_trip_through_bincode() {
    let s = no_fuzz();
    let card = replay(&s, &[(Good, T0), (Again, T0 + DAY_MS * 3)]);
    let config = bincode::config::standard();
    let bytes = bincode::serde::encode_to_vec(card, config).expect("encode");
    let (back, _): (Card, usize) =
        bincode::serde::decode_from_slice(&bytes, config).expect("decode");
    assert_eq!(back, card);
}

#[test]
fn invalid_configs_report_every_problem() {
    let mut parameters = fsrs::DEFAULT_PARAMETERS;
    parameters[6] = 100.0;
    parameters[10] = -42.0;
    let err = crate::srs::Scheduler::new(SchedulerConfig {
        parameters,
        desired_retention: 1.0,
        maximum_interval_days: 0,
        learning_steps_secs: vec![60, 0],
        ..SchedulerConfig::default()
    })
    .expect_err("invalid");
    assert_eq!(err.problems.len(), 5, "{err}");
    assert!(crate::srs::Scheduler::new(SchedulerConfig::default()).is_ok());
}
