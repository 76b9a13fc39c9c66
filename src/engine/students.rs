//! Per-student state in memory: progress per subject and the wallet, loaded lazily from
//! redb on first access, plus the per-student write lock that orders one student's
//! requests across the journal's fsync wait (architecture.md).

use std::collections::HashMap;
use std::sync::Arc;

use crate::players::wallet::{self, Wallet};
use crate::progress::state::SubjectProgress;
use parking_lot::RwLock;

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
    /// Cards per season and idempotency records (issue 6).
    pub srs: super::srs_ops::StudentSrs,
}

/// The streak fields of a wallet as absolute values.
pub fn streak_of(w: &Wallet) -> StreakState {
    StreakState {
        current: w.current_streak,
        longest: w.longest_streak,
        last_success_day: w.last_success_date.map(wallet::date_to_epoch_day),
    }
}

/// Sets a wallet's streak fields from absolute values.
pub fn set_streak(w: &mut Wallet, s: &StreakState) {
    w.current_streak = s.current;
    w.longest_streak = s.longest;
    w.last_success_date = s.last_success_day.and_then(wallet::epoch_day_to_date);
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

    /// Removes a student from memory (an erased player); returns it.
    pub fn remove(&self, player_id: &str) -> Option<Arc<Student>> {
        self.shard(player_id).write().remove(player_id)
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
