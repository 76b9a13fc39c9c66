//! Fuzz: deterministic, within the reference ranges, off when disabled or under 2.5
//! days.

use super::{T0, scheduler};
use crate::srs::fuzz::{fuzz_interval, fuzz_range, unit_draw};
use crate::srs::scheduler::DAY_MS;
use crate::srs::{CardState, Rating, SchedulerConfig};

#[test]
fn ranges_match_py_fsrs() {
    // Worked by hand from py-fsrs's FUZZ_RANGES.
    assert_eq!(fuzz_range(3, 36_500), (2, 4));
    assert_eq!(fuzz_range(8, 36_500), (6, 10));
    assert_eq!(fuzz_range(30, 36_500), (27, 33));
    assert_eq!(fuzz_range(100, 36_500), (93, 107));
    assert_eq!(fuzz_range(100, 101), (93, 101));
}

#[test]
fn short_intervals_are_not_fuzzed() {
    for q in 0..200 {
        let id = format!("q{q}");
        assert_eq!(fuzz_interval(1, 36_500, &id, 3), 1);
        assert_eq!(fuzz_interval(2, 36_500, &id, 3), 2);
    }
}

#[test]
fn draws_are_deterministic_and_cover_the_range() {
    let mut seen = std::collections::BTreeSet::new();
    for q in 0..2_000 {
        let id = format!("js-q-{q:03}");
        let u = unit_draw(&id, 4);
        assert!((0.0..1.0).contains(&u));
        assert_eq!(u, unit_draw(&id, 4));
        let days = fuzz_interval(30, 36_500, &id, 4);
        // py-fsrs's rounding lets the draw reach max + 1.
        assert!((27..=34).contains(&days), "{days}");
        seen.insert(days);
    }
    assert!(seen.len() >= 7, "{seen:?}");
    assert_ne!(unit_draw("a", 1), unit_draw("a", 2));
    assert_ne!(unit_draw("a", 1), unit_draw("b", 1));
}

#[test]
fn the_scheduler_fuzzes_review_intervals_only_when_enabled() {
    let on = scheduler(SchedulerConfig::default());
    let off = scheduler(SchedulerConfig {
        enable_fuzz: false,
        ..SchedulerConfig::default()
    });
    let mut differs = 0;
    for q in 0..100 {
        let id = format!("q{q}");
        let base = off.review(None, Rating::Easy, T0, &id);
        let fuzzed = on.review(None, Rating::Easy, T0, &id);
        assert_eq!(fuzzed, on.review(None, Rating::Easy, T0, &id));
        assert_eq!(fuzzed.state, CardState::Review);
        let (lo, hi) = fuzz_range(8, 36_500);
        let days = (fuzzed.due_ms - T0) / DAY_MS;
        assert!((i64::from(lo)..=i64::from(hi) + 1).contains(&days));
        differs += usize::from(fuzzed.due_ms != base.due_ms);
        // Learning steps are never fuzzed.
        assert_eq!(
            on.review(None, Rating::Good, T0, &id),
            off.review(None, Rating::Good, T0, &id)
        );
    }
    assert!(differs > 50, "{differs}");
}
