//! Per-student state in memory: progress per subject and the wallet, loaded lazily from
//! redb on first access, plus the per-student write lock that orders one student's
//! requests across the journal's fsync wait (architecture.md).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::players::wallet::Wallet;
use crate::progress::state::SubjectProgress;

use super::event::StreakState;

/// Number of shards of the student map (a power of two).
pub const SHARDS: usize = 64;

/// One student's state.
///
/// `write` is held by a write operation from its decision until its event is durable and
/// applied, so the next request of the same student decides on the state the previous
/// one left. `state` is only ever locked briefly (never across an `.await`); readers
/// take it alone and never wait behind an fsync, and they never see a change that is
/// not durable yet, because changes are applied only after the journal acknowledged them.
#[derive(Debug, Default)]
pub struct Student {
    /// Orders this student's writes.
    pub write: tokio::sync::Mutex<()>,
    /// The state.
    pub state: RwLock<StudentState>,
}

/// Progress per (lowercased) subject id and the wallet.
#[derive(Debug, Default)]
pub struct StudentState {
    /// Progress per lowercased subject id.
    pub subjects: HashMap<Box<str>, SubjectProgress>,
    /// XP and streak.
    pub wallet: Wallet,
}

/// The wallet as stored in redb (format byte + bincode via `codec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletRow {
    /// XP total.
    pub total_xp: i64,
    /// Streak, absolute.
    pub streak: StreakState,
    /// Last guarded request, unix ms.
    pub last_played_at_ms: Option<i64>,
}

/// Days since 1970-01-01 of a civil date.
pub fn day_number(date: jiff::civil::Date) -> i32 {
    let epoch = jiff::civil::date(1970, 1, 1);
    (date - epoch).get_days()
}

/// The civil date of a day number.
pub fn day_date(day: i32) -> Option<jiff::civil::Date> {
    jiff::civil::date(1970, 1, 1)
        .checked_add(jiff::Span::new().days(i64::from(day)))
        .ok()
}

impl WalletRow {
    /// Captures a wallet.
    pub fn from_wallet(w: &Wallet) -> Self {
        WalletRow {
            total_xp: w.total_xp,
            streak: streak_of(w),
            last_played_at_ms: w.last_played_at_ms,
        }
    }

    /// Rebuilds the wallet.
    pub fn into_wallet(self) -> Wallet {
        let mut w = Wallet {
            total_xp: self.total_xp,
            last_played_at_ms: self.last_played_at_ms,
            ..Wallet::default()
        };
        set_streak(&mut w, &self.streak);
        w
    }
}

/// The streak fields of a wallet as absolute values.
pub fn streak_of(w: &Wallet) -> StreakState {
    StreakState {
        current: w.current_streak,
        longest: w.longest_streak,
        last_success_day: w.last_success_date.map(day_number),
    }
}

/// Sets a wallet's streak fields from absolute values.
pub fn set_streak(w: &mut Wallet, s: &StreakState) {
    w.current_streak = s.current;
    w.longest_streak = s.longest;
    w.last_success_date = s.last_success_day.and_then(day_date);
}

/// The sharded map of students in memory.
#[derive(Debug)]
pub struct StudentMap {
    shards: Vec<RwLock<HashMap<Arc<str>, Arc<Student>>>>,
}

impl Default for StudentMap {
    fn default() -> Self {
        StudentMap {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
        }
    }
}

impl StudentMap {
    fn shard(&self, player_id: &str) -> &RwLock<HashMap<Arc<str>, Arc<Student>>> {
        // FNV-1a: cheap and good enough to spread server-assigned random ids.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in player_id.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        &self.shards[(h as usize) & (SHARDS - 1)]
    }

    /// The student if in memory.
    pub fn get(&self, player_id: &str) -> Option<Arc<Student>> {
        self.shard(player_id).read().get(player_id).cloned()
    }

    /// Inserts a freshly loaded student unless another load won the race; returns the
    /// one in the map.
    pub fn insert_if_absent(&self, player_id: &str, student: Student) -> Arc<Student> {
        let mut shard = self.shard(player_id).write();
        shard
            .entry(Arc::from(player_id))
            .or_insert_with(|| Arc::new(student))
            .clone()
    }

    /// Number of students in memory.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    /// Whether no student is in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_round_trip() {
        let d = jiff::civil::date(2026, 11, 21);
        let n = day_number(d);
        assert_eq!(day_date(n), Some(d));
        assert_eq!(day_number(jiff::civil::date(1970, 1, 2)), 1);
        assert_eq!(day_number(jiff::civil::date(1969, 12, 31)), -1);
    }
}
