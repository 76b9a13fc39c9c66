//! Daily streaks (players.md "Streaks"): which day "today" is for a student, and how a
//! counted activity moves the streak.
//!
//! "Today" is the server's clock in the student's time zone; the clock is read by the
//! engine and passed in, so these functions are pure.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::wallet::Wallet;

/// What a counted (or uncounted) activity did to the streak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StreakAction {
    /// No previous success: the streak starts at 1.
    FirstCompletion,
    /// Already counted today (or on a later day, after a time-zone change): unchanged.
    Maintained,
    /// Last success was yesterday: +1.
    Incremented,
    /// Last success is older than yesterday: back to 1.
    Reset,
    /// The activity does not count (e.g. a review with no correct answer).
    NoUpdate,
}

/// The streak part of a response, and what [`super::wallet::apply_streak`] writes.
///
/// Serializes as `{old_streak, new_streak, action, last_success_date}` (the date as
/// `"YYYY-MM-DD"` or null); `longest_streak` is not part of the response shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreakOutcome {
    /// The stored streak before the event.
    pub old_streak: u32,
    /// The streak after the event.
    pub new_streak: u32,
    /// The longest streak after the event (not serialized; `apply_streak` also takes
    /// the maximum itself, so a deserialized 0 is harmless).
    #[serde(skip)]
    pub longest_streak: u32,
    /// What happened.
    pub action: StreakAction,
    /// The last success date after the event.
    pub last_success_date: Option<Date>,
}

/// The calendar date of instant `now` in time zone `tz`.
pub fn today_in(tz: &TimeZone, now: Timestamp) -> Date {
    tz.to_datetime(now).date()
}

/// The streak after a counted activity on `today` (the student's date).
///
/// The last success date never moves backwards: after a time-zone change that puts
/// the stored date "in the future", the activity is `maintained` and the stored date
/// is kept, so switching zones back and forth cannot count one day twice.
pub fn record_success(wallet: &Wallet, today: Date) -> StreakOutcome {
    let old = wallet.current_streak;
    let (action, new_streak, last) = match wallet.last_success_date {
        None => (StreakAction::FirstCompletion, 1, today),
        Some(last) if last >= today => (StreakAction::Maintained, old.max(1), last),
        Some(last) if today.yesterday().ok() == Some(last) => {
            (StreakAction::Incremented, old.saturating_add(1), today)
        }
        Some(_) => (StreakAction::Reset, 1, today),
    };
    StreakOutcome {
        old_streak: old,
        new_streak,
        longest_streak: wallet.longest_streak.max(new_streak),
        action,
        last_success_date: Some(last),
    }
}

/// The outcome of an activity that does not count: nothing changes.
pub fn no_update(wallet: &Wallet) -> StreakOutcome {
    StreakOutcome {
        old_streak: wallet.current_streak,
        new_streak: wallet.current_streak,
        longest_streak: wallet.longest_streak,
        action: StreakAction::NoUpdate,
        last_success_date: wallet.last_success_date,
    }
}

#[cfg(test)]
mod tests;
