//! The wallet: XP and streak counters of one player (players.md "Wallet"), its storage
//! record, and how it reads at a given day.
//!
//! The stored streak is only rewritten by a counted activity; reading the wallet
//! derives what the student sees today ([`view`]) without touching storage.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::streak::{StreakAction, StreakOutcome};

/// XP and streak state of one player.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wallet {
    /// XP from completions, reviews and admin adjustments (may go negative by adjustment).
    pub total_xp: i64,
    /// Streak as of `last_success_date` (reads 0 once a day is missed, see [`view`]).
    pub current_streak: u32,
    /// Longest streak ever reached.
    pub longest_streak: u32,
    /// Day of the last counted activity, in the student's time zone then.
    pub last_success_date: Option<Date>,
    /// Last guarded request, milliseconds since the Unix epoch (coarse).
    pub last_played_at_ms: Option<i64>,
}

/// Writes a streak outcome into the wallet (`no_update` changes nothing). Values are
/// absolute, so applying the same outcome twice is the same as once.
pub fn apply_streak(wallet: &mut Wallet, outcome: &StreakOutcome) {
    if outcome.action == StreakAction::NoUpdate {
        return;
    }
    wallet.current_streak = outcome.new_streak;
    wallet.longest_streak = wallet
        .longest_streak
        .max(outcome.longest_streak)
        .max(outcome.new_streak);
    wallet.last_success_date = outcome.last_success_date;
}

/// The wallet as the student sees it on `today` (their time zone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WalletView {
    /// Total XP.
    pub total_xp: i64,
    /// The stored streak if the last success is yesterday or later, else 0.
    pub current_streak: u32,
    /// Longest streak ever reached.
    pub longest_streak: u32,
    /// Day of the last counted activity (`"YYYY-MM-DD"`), or null.
    pub last_success_date: Option<Date>,
    /// True when the last success was yesterday: today's activity keeps the streak.
    pub streak_at_risk: bool,
    /// Last guarded request (RFC 3339, UTC), or null.
    pub last_played_at: Option<Timestamp>,
}

/// Reads `wallet` on `today`: a streak whose last day is older than yesterday shows as
/// 0 (the stored value is kept until the next success), and it is at risk when the
/// last day is yesterday.
pub fn view(wallet: &Wallet, today: Date) -> WalletView {
    let yesterday = today.yesterday().ok();
    let (current_streak, streak_at_risk) = match wallet.last_success_date {
        // Today, or "later" after a time-zone change: the streak stands.
        Some(last) if last >= today => (wallet.current_streak, false),
        Some(last) if Some(last) == yesterday => (wallet.current_streak, wallet.current_streak > 0),
        Some(_) => (0, false),
        None => (wallet.current_streak, false),
    };
    WalletView {
        total_xp: wallet.total_xp,
        current_streak,
        longest_streak: wallet.longest_streak,
        last_success_date: wallet.last_success_date,
        streak_at_risk,
        last_played_at: wallet
            .last_played_at_ms
            .and_then(|ms| Timestamp::from_millisecond(ms).ok()),
    }
}

/// Current version of [`WalletRecord`].
pub const WALLET_RECORD_VERSION: u8 = 1;

/// Storage form of a [`Wallet`] (bincode 2 through serde: plain fields only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletRecord {
    /// [`WALLET_RECORD_VERSION`] when written by this code.
    pub version: u8,
    /// Total XP.
    pub total_xp: i64,
    /// Stored streak.
    pub current_streak: u32,
    /// Longest streak.
    pub longest_streak: u32,
    /// Last success date as days since 1970-01-01.
    pub last_success_day: Option<i32>,
    /// Last played, milliseconds since the Unix epoch.
    pub last_played_at_ms: Option<i64>,
}

/// Why a [`WalletRecord`] cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletRecordError {
    /// Written by a newer version of the program.
    #[error("unsupported wallet record version {0}")]
    UnsupportedVersion(u8),
    /// The day number is outside the supported calendar.
    #[error("wallet last success day {0} is out of range")]
    DayOutOfRange(i32),
}

const EPOCH_DAY: Date = Date::constant(1970, 1, 1);

/// Days from 1970-01-01 to `date` (negative before).
pub fn date_to_epoch_day(date: Date) -> i32 {
    // Date differences default to days as the largest unit, and every civil date
    // (years -9999..=9999) is within ±3.7 million days of the epoch: this cannot fail.
    date.since(EPOCH_DAY).map_or(0, |span| span.get_days())
}

/// The date `days` after 1970-01-01, if within the supported calendar.
pub fn epoch_day_to_date(days: i32) -> Option<Date> {
    EPOCH_DAY
        .checked_add(jiff::Span::new().try_days(i64::from(days)).ok()?)
        .ok()
}

impl Wallet {
    /// The storage record.
    pub fn to_record(&self) -> WalletRecord {
        WalletRecord {
            version: WALLET_RECORD_VERSION,
            total_xp: self.total_xp,
            current_streak: self.current_streak,
            longest_streak: self.longest_streak,
            last_success_day: self.last_success_date.map(date_to_epoch_day),
            last_played_at_ms: self.last_played_at_ms,
        }
    }

    /// The wallet from a storage record.
    ///
    /// # Errors
    /// [`WalletRecordError`] for an unknown version or an out-of-range day.
    pub fn from_record(record: &WalletRecord) -> Result<Self, WalletRecordError> {
        if record.version != WALLET_RECORD_VERSION {
            return Err(WalletRecordError::UnsupportedVersion(record.version));
        }
        let last_success_date = match record.last_success_day {
            Some(days) => {
                Some(epoch_day_to_date(days).ok_or(WalletRecordError::DayOutOfRange(days))?)
            }
            None => None,
        };
        Ok(Self {
            total_xp: record.total_xp,
            current_streak: record.current_streak,
            longest_streak: record.longest_streak,
            last_success_date,
            last_played_at_ms: record.last_played_at_ms,
        })
    }
}
