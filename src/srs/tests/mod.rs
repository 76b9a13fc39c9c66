//! Unit tests of the SRS core: the reference implementations' published vectors, the
//! step rules by hand, fuzz, the legacy rating form, queue properties and the py-fsrs
//! cross-check.

mod crosscheck;
mod fuzz;
mod queue;
mod steps;
mod vectors;

use super::{Card, Rating, Scheduler, SchedulerConfig};

/// 2022-11-29T12:30:00Z, the reference tests' start instant, in UTC ms.
const T0: i64 = 1_669_725_000_000;
const MINUTE: i64 = 60_000;

fn scheduler(config: SchedulerConfig) -> Scheduler {
    Scheduler::new(config).expect("valid test config")
}

fn no_fuzz() -> Scheduler {
    scheduler(SchedulerConfig {
        enable_fuzz: false,
        ..SchedulerConfig::default()
    })
}

/// Replays `(rating, at_ms)` answers on one card from scratch.
fn replay(s: &Scheduler, answers: &[(Rating, i64)]) -> Card {
    let mut card: Option<Card> = None;
    for &(rating, at) in answers {
        card = Some(s.review(card.as_ref(), rating, at, "q"));
    }
    card.expect("at least one answer")
}
