//! The applied watermark: which durable records the engine has also applied to memory,
//! so that a checkpoint never claims to cover a record that is not in memory yet.

use std::collections::VecDeque;
use std::sync::Arc;

use super::Shared;

/// Durable and applied progress, guarded by one lock so that a reader never sees a
/// record counted as durable but missing from the in-flight window.
#[derive(Debug)]
pub(crate) struct Progress {
    /// Highest acknowledged sequence (strict: fsynced; relaxed: written).
    pub durable_seq: u64,
    /// Sequence of `pending[0]`; everything below it is durable and applied.
    base: u64,
    /// One flag per durable record from `base` on: `true` once its guard was dropped.
    /// Records are appended in batches, so this is a sliding window with no per-record
    /// allocation.
    pending: VecDeque<bool>,
}

impl Progress {
    /// Everything up to and including `last_seq` counts as durable and applied (the
    /// engine replays recovered records before it checkpoints).
    pub fn new(last_seq: u64) -> Self {
        Self {
            durable_seq: last_seq,
            base: last_seq + 1,
            pending: VecDeque::new(),
        }
    }

    /// Records `first..first + n` became durable; their guards are about to be handed out.
    pub fn publish(&mut self, first: u64, n: usize) {
        debug_assert_eq!(first, self.base + self.pending.len() as u64);
        self.pending.extend(std::iter::repeat_n(false, n));
        self.durable_seq = first + n as u64 - 1;
    }

    /// The guard of `seq` was dropped.
    pub fn mark_applied(&mut self, seq: u64) {
        let Some(idx) = seq.checked_sub(self.base) else {
            return;
        };
        if let Some(slot) = self.pending.get_mut(idx as usize) {
            *slot = true;
        }
        while self.pending.front() == Some(&true) {
            self.pending.pop_front();
            self.base += 1;
        }
    }

    /// The largest sequence S such that every record ≤ S is durable and applied.
    pub fn watermark(&self) -> u64 {
        self.base - 1
    }
}

/// Held by the caller while it applies a committed record to memory; dropping it marks
/// the record applied (see [`Journal::applied_watermark`](super::Journal::applied_watermark)).
/// If the submit future is dropped before it resolves, the guard is dropped with it, so
/// an abandoned record never holds the watermark back.
#[must_use = "dropping the guard marks the record applied: hold it until the change is in memory"]
pub struct Applied {
    pub(crate) shared: Arc<Shared>,
    pub(crate) seq: u64,
}

impl std::fmt::Debug for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applied").field("seq", &self.seq).finish()
    }
}

impl Drop for Applied {
    fn drop(&mut self) {
        self.shared.progress.lock().mark_applied(self.seq);
    }
}
