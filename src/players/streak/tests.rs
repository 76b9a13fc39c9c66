//! Streak and wallet-view tests: every action, DST days, zones far from UTC, and
//! time-zone changes (players.md "Streaks").

use jiff::Timestamp;
use jiff::civil::{Date, date};
use jiff::tz::TimeZone;

use super::*;
use crate::players::wallet::{Wallet, WalletRecord, apply_streak, view};

fn tz(name: &str) -> TimeZone {
    TimeZone::get(name).expect("bundled tzdb")
}

fn at(rfc3339: &str) -> Timestamp {
    rfc3339.parse().expect("valid timestamp")
}

fn wallet(streak: u32, longest: u32, last: Option<Date>) -> Wallet {
    Wallet {
        total_xp: 0,
        current_streak: streak,
        longest_streak: longest,
        last_success_date: last,
        last_played_at_ms: None,
    }
}

#[test]
fn every_action() {
    let today = date(2026, 11, 21);
    let first = record_success(&Wallet::default(), today);
    assert_eq!(
        (
            first.action,
            first.old_streak,
            first.new_streak,
            first.longest_streak
        ),
        (StreakAction::FirstCompletion, 0, 1, 1)
    );
    assert_eq!(first.last_success_date, Some(today));

    let same_day = record_success(&wallet(3, 7, Some(today)), today);
    assert_eq!(
        (
            same_day.action,
            same_day.new_streak,
            same_day.longest_streak
        ),
        (StreakAction::Maintained, 3, 7)
    );

    let next_day = record_success(&wallet(3, 3, Some(date(2026, 11, 20))), today);
    assert_eq!(
        (
            next_day.action,
            next_day.old_streak,
            next_day.new_streak,
            next_day.longest_streak
        ),
        (StreakAction::Incremented, 3, 4, 4)
    );
    assert_eq!(next_day.last_success_date, Some(today));

    let missed = record_success(&wallet(9, 9, Some(date(2026, 11, 19))), today);
    assert_eq!(
        (
            missed.action,
            missed.old_streak,
            missed.new_streak,
            missed.longest_streak
        ),
        (StreakAction::Reset, 9, 1, 9)
    );

    let w = wallet(4, 6, Some(date(2026, 11, 2)));
    let none = no_update(&w);
    assert_eq!(
        (
            none.action,
            none.old_streak,
            none.new_streak,
            none.last_success_date
        ),
        (StreakAction::NoUpdate, 4, 4, Some(date(2026, 11, 2)))
    );
}

#[test]
fn increments_across_month_and_year_ends() {
    let w = wallet(1, 1, Some(date(2026, 12, 31)));
    assert_eq!(
        record_success(&w, date(2027, 1, 1)).action,
        StreakAction::Incremented
    );
    let w = wallet(1, 1, Some(date(2028, 2, 28)));
    assert_eq!(
        record_success(&w, date(2028, 2, 29)).action,
        StreakAction::Incremented
    );
    assert_eq!(
        record_success(&w, date(2028, 3, 1)).action,
        StreakAction::Reset
    );
}

#[test]
fn reset_never_goes_to_zero_and_apply_is_idempotent() {
    let mut w = wallet(0, 5, Some(date(2020, 1, 1)));
    let outcome = record_success(&w, date(2026, 11, 21));
    assert_eq!(outcome.new_streak, 1);
    apply_streak(&mut w, &outcome);
    let once = w.clone();
    apply_streak(&mut w, &outcome);
    assert_eq!(w, once);
    assert_eq!(
        (w.current_streak, w.longest_streak, w.last_success_date),
        (1, 5, Some(date(2026, 11, 21)))
    );
    let none = no_update(&w);
    apply_streak(&mut w, &none);
    assert_eq!(w, once);
}

#[test]
fn today_follows_the_student_zone_across_dst_changes() {
    let ny = tz("America/New_York");
    // Spring forward, 2026-03-08: 02:00 EST becomes 03:00 EDT.
    assert_eq!(today_in(&ny, at("2026-03-08T04:59:59Z")), date(2026, 3, 7)); // 23:59:59 EST
    assert_eq!(today_in(&ny, at("2026-03-08T05:00:00Z")), date(2026, 3, 8)); // 00:00 EST
    assert_eq!(today_in(&ny, at("2026-03-09T03:59:59Z")), date(2026, 3, 8)); // 23:59:59 EDT
    assert_eq!(today_in(&ny, at("2026-03-09T04:00:00Z")), date(2026, 3, 9));
    // Fall back, 2026-11-01: 02:00 EDT becomes 01:00 EST; the day lasts 25 hours.
    assert_eq!(
        today_in(&ny, at("2026-11-01T03:59:59Z")),
        date(2026, 10, 31)
    );
    assert_eq!(today_in(&ny, at("2026-11-01T04:00:00Z")), date(2026, 11, 1));
    assert_eq!(today_in(&ny, at("2026-11-02T04:59:59Z")), date(2026, 11, 1)); // 23:59:59 EST
    assert_eq!(today_in(&ny, at("2026-11-02T05:00:00Z")), date(2026, 11, 2));

    // A success at 23:30 local on the short day and one at 00:30 local the next day are
    // one calendar day apart although only an hour apart in UTC.
    let w = record_success(
        &Wallet::default(),
        today_in(&ny, at("2026-03-09T03:30:00Z")),
    );
    let mut wallet = Wallet::default();
    apply_streak(&mut wallet, &w);
    let next = record_success(&wallet, today_in(&ny, at("2026-03-09T04:30:00Z")));
    assert_eq!(
        (next.action, next.new_streak),
        (StreakAction::Incremented, 2)
    );
    // Two successes 24 h apart in UTC on the long day: 00:30 on Nov 1 and 23:30 on Nov 1.
    let mut wallet = Wallet::default();
    let first = record_success(&wallet, today_in(&ny, at("2026-11-01T04:30:00Z")));
    apply_streak(&mut wallet, &first);
    let later = record_success(&wallet, today_in(&ny, at("2026-11-02T04:30:00Z")));
    assert_eq!(later.action, StreakAction::Maintained);
}

#[test]
fn the_same_instant_is_a_different_day_far_from_utc() {
    let instant = at("2026-11-21T11:30:00Z");
    assert_eq!(
        today_in(&tz("Pacific/Kiritimati"), instant),
        date(2026, 11, 22)
    ); // +14
    assert_eq!(
        today_in(&tz("Pacific/Pago_Pago"), instant),
        date(2026, 11, 21)
    ); // −11
    assert_eq!(today_in(&TimeZone::UTC, instant), date(2026, 11, 21));
    let late = at("2026-11-21T10:30:00Z");
    assert_eq!(
        today_in(&tz("Pacific/Kiritimati"), late),
        date(2026, 11, 22)
    );
    assert_eq!(today_in(&tz("Pacific/Pago_Pago"), late), date(2026, 11, 20));
}

#[test]
fn a_time_zone_change_that_puts_the_last_success_in_the_future_maintains() {
    let instant = at("2026-11-21T11:30:00Z");
    let mut w = Wallet::default();
    // Succeeds in Kiritimati (Nov 22 there), then moves to Pago Pago (Nov 21 there).
    let first = record_success(&w, today_in(&tz("Pacific/Kiritimati"), instant));
    apply_streak(&mut w, &first);
    let moved = record_success(&w, today_in(&tz("Pacific/Pago_Pago"), instant));
    assert_eq!(
        (moved.action, moved.new_streak),
        (StreakAction::Maintained, 1)
    );
    assert_eq!(
        moved.last_success_date,
        Some(date(2026, 11, 22)),
        "never moves backwards"
    );
    apply_streak(&mut w, &moved);
    // Moving back the same day counts nothing more.
    let back = record_success(&w, today_in(&tz("Pacific/Kiritimati"), instant));
    assert_eq!(back.action, StreakAction::Maintained);
    // The wallet does not read 0 nor "at risk" while the stored day is ahead.
    let v = view(&w, date(2026, 11, 21));
    assert_eq!((v.current_streak, v.streak_at_risk), (1, false));
}

#[test]
fn wallet_view_reads_zero_after_a_missed_day_and_flags_risk() {
    let w = wallet(5, 8, Some(date(2026, 11, 20)));
    let v = view(&w, date(2026, 11, 20));
    assert_eq!((v.current_streak, v.streak_at_risk), (5, false));
    let v = view(&w, date(2026, 11, 21));
    assert_eq!((v.current_streak, v.streak_at_risk), (5, true));
    let v = view(&w, date(2026, 11, 22));
    assert_eq!(
        (v.current_streak, v.streak_at_risk, v.longest_streak),
        (0, false, 8)
    );
    let v = view(&Wallet::default(), date(2026, 11, 22));
    assert_eq!(
        (v.current_streak, v.streak_at_risk, v.last_success_date),
        (0, false, None)
    );
}

#[test]
fn json_shapes() {
    let outcome = record_success(&wallet(3, 3, Some(date(2026, 11, 20))), date(2026, 11, 21));
    assert_eq!(
        serde_json::to_value(outcome).expect("serializes"),
        serde_json::json!({"old_streak": 3, "new_streak": 4, "action": "incremented", "last_success_date": "2026-11-21"})
    );
    let mut w = wallet(4, 9, Some(date(2026, 11, 21)));
    w.total_xp = 1250;
    w.last_played_at_ms = Some(at("2026-11-22T14:25:00Z").as_millisecond());
    assert_eq!(
        serde_json::to_value(view(&w, date(2026, 11, 22))).expect("serializes"),
        serde_json::json!({"total_xp": 1250, "current_streak": 4, "longest_streak": 9,
            "last_success_date": "2026-11-21", "streak_at_risk": true,
            "last_played_at": "2026-11-22T14:25:00Z"})
    );
    let v = view(&Wallet::default(), date(2026, 11, 22));
    let json = serde_json::to_value(v).expect("serializes");
    assert_eq!(json["last_success_date"], serde_json::Value::Null);
    assert_eq!(json["last_played_at"], serde_json::Value::Null);
}

#[test]
fn wallet_record_round_trips_through_bincode() {
    let config = bincode::config::standard();
    for last in [
        None,
        Some(date(1970, 1, 1)),
        Some(date(1969, 12, 31)),
        Some(date(2026, 11, 21)),
        Some(date(9999, 12, 31)),
        Some(date(-9999, 1, 1)),
    ] {
        let mut w = wallet(4, 9, last);
        w.total_xp = -35;
        w.last_played_at_ms = Some(1_795_283_100_000);
        let record = w.to_record();
        let bytes = bincode::serde::encode_to_vec(record, config).expect("encode");
        let (decoded, _): (WalletRecord, usize) =
            bincode::serde::decode_from_slice(&bytes, config).expect("decode");
        assert_eq!(Wallet::from_record(&decoded), Ok(w));
    }
    assert_eq!(
        wallet(1, 1, Some(date(1970, 1, 2)))
            .to_record()
            .last_success_day,
        Some(1)
    );
    assert_eq!(
        wallet(1, 1, Some(date(1969, 12, 31)))
            .to_record()
            .last_success_day,
        Some(-1)
    );
    let mut bad = Wallet::default().to_record();
    bad.last_success_day = Some(i32::MAX);
    assert!(Wallet::from_record(&bad).is_err());
    bad.version = 9;
    assert!(Wallet::from_record(&bad).is_err());
}

proptest::proptest! {
    #[test]
    fn a_success_always_leaves_a_positive_streak_within_the_longest(
        streak in 0u32..1000, longest in 0u32..1000, offset in proptest::option::of(-3i64..400), day in 0i32..20_000,
    ) {
        let today = crate::players::wallet::epoch_day_to_date(day).expect("in range");
        let last = offset.map(|o| today.checked_sub(jiff::Span::new().days(o)).expect("in range"));
        let w = wallet(streak, longest.max(streak), last);
        let outcome = record_success(&w, today);
        proptest::prop_assert!(outcome.new_streak >= 1);
        proptest::prop_assert!(outcome.longest_streak >= outcome.new_streak);
        proptest::prop_assert!(outcome.longest_streak >= w.longest_streak);
        proptest::prop_assert!(outcome.last_success_date >= Some(today));
        let expected = match offset {
            None => StreakAction::FirstCompletion,
            Some(o) if o <= 0 => StreakAction::Maintained,
            Some(1) => StreakAction::Incremented,
            Some(_) => StreakAction::Reset,
        };
        proptest::prop_assert_eq!(outcome.action, expected);
        let mut applied = w.clone();
        apply_streak(&mut applied, &outcome);
        // The day of the success never reads 0 nor "at risk".
        let v = view(&applied, today);
        proptest::prop_assert_eq!((v.current_streak, v.streak_at_risk), (outcome.new_streak, false));
    }
}
