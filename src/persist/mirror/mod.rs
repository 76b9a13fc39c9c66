//! The optional MariaDB reporting mirror (persistence.md; design in docs/mirror.md).
//!
//! The engine's only part is cheap and never waits: a checkpoint queues the keys of the
//! rows it wrote in redb (same transaction, [`log`]) and then calls
//! [`Feed::checkpoint_written`], which bumps counters and wakes the mirror task. The
//! task ([`run`]) re-reads those rows from redb, upserts them into MariaDB in batches,
//! and records its position in MariaDB in the same transaction. MariaDB being down or
//! slow only makes the queue longer; nothing in the request path depends on it.

pub mod log;
pub mod read;
pub mod rows;
pub mod sql;
mod task;

use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::Notify;

pub use task::run;

const STARTING: u8 = 0;
const OK: u8 = 1;
const CATCHING_UP: u8 = 2;
const UNREACHABLE: u8 = 3;

/// Shared between the engine (producer of work) and the mirror task (consumer).
#[derive(Debug)]
pub struct Feed {
    enabled: bool,
    notify: Notify,
    pending_rows: AtomicU64,
    /// Unix ms since which the mirror has been behind; 0 when caught up.
    behind_since_ms: AtomicI64,
    state: AtomicU8,
    mirrored_rows: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// The mirror's state for `/readyz` and the engine report.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct MirrorStatus {
    /// `starting`, `ok`, `catching_up` or `unreachable`.
    pub state: &'static str,
    /// Seconds since the oldest change not yet in MariaDB was checkpointed (0 when
    /// caught up).
    pub lag_seconds: u64,
    /// Checkpointed rows not yet in MariaDB.
    pub lag_rows: u64,
    /// Rows sent since start.
    pub mirrored_rows: u64,
    /// The last MariaDB error, while failing.
    pub last_error: Option<String>,
}

impl Feed {
    /// A feed; `enabled` = a mirror URL is configured.
    pub fn new(enabled: bool) -> Feed {
        Feed {
            enabled,
            notify: Notify::new(),
            pending_rows: AtomicU64::new(0),
            behind_since_ms: AtomicI64::new(0),
            state: AtomicU8::new(STARTING),
            mirrored_rows: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// Whether a mirror is configured (checkpoints queue keys only then).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Called after a checkpoint committed `rows` queued keys, at `now_ms`. Never blocks.
    pub fn checkpoint_written(&self, rows: u64, now_ms: i64) {
        if !self.enabled || rows == 0 {
            return;
        }
        self.pending_rows.fetch_add(rows, Ordering::Relaxed);
        let _ = self.behind_since_ms.compare_exchange(
            0,
            now_ms.max(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        self.notify.notify_one();
    }

    /// The status at `now_ms`; `None` when no mirror is configured.
    pub fn status(&self, now_ms: i64) -> Option<MirrorStatus> {
        if !self.enabled {
            return None;
        }
        let since = self.behind_since_ms.load(Ordering::Relaxed);
        let lag_rows = self.pending_rows.load(Ordering::Relaxed);
        let state = match self.state.load(Ordering::Relaxed) {
            STARTING => "starting",
            UNREACHABLE => "unreachable",
            _ if lag_rows > 0 => "catching_up",
            CATCHING_UP => "catching_up",
            _ => "ok",
        };
        Some(MirrorStatus {
            state,
            lag_seconds: if since == 0 || lag_rows == 0 {
                0
            } else {
                ((now_ms - since).max(0) / 1000) as u64
            },
            lag_rows,
            mirrored_rows: self.mirrored_rows.load(Ordering::Relaxed),
            last_error: self.last_error.lock().clone(),
        })
    }

    fn set_state(&self, state: u8) {
        self.state.store(state, Ordering::Relaxed);
        if state != UNREACHABLE {
            *self.last_error.lock() = None;
        }
    }

    fn failed(&self, error: String) {
        self.state.store(UNREACHABLE, Ordering::Relaxed);
        *self.last_error.lock() = Some(error);
    }

    fn sent(&self, queued: u64, rows: u64) {
        let _ = self
            .pending_rows
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                Some(p.saturating_sub(queued))
            });
        self.mirrored_rows.fetch_add(rows, Ordering::Relaxed);
    }

    fn reset_pending(&self, rows: u64, now_ms: i64) {
        self.pending_rows.store(rows, Ordering::Relaxed);
        self.behind_since_ms
            .store(if rows == 0 { 0 } else { now_ms.max(1) }, Ordering::Relaxed);
    }

    fn caught_up(&self) {
        if self.pending_rows.load(Ordering::Relaxed) == 0 {
            self.behind_since_ms.store(0, Ordering::Relaxed);
        }
    }
}
