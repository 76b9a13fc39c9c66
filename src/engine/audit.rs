//! The audit and interaction logs in the engine (players.md "Audit and interaction
//! logs"): who did what, from where, with which result — made durable through the
//! journal and checkpointed into redb (`persist::audit`).
//!
//! Two paths, so that no request ever waits for an fsync because of the log:
//! - a **successful write** carries its records in the same journal record as the change
//!   ([`Event::Audited`]), so the change and its record are durable together;
//! - records of **anonymous or failing requests** (failed logins, refused devices,
//!   replayed sessions, rate limits, failed lesson attempts) go to an in-memory buffer
//!   that a background task journals as one [`Event::AuditBatch`] every
//!   `audit.flush_interval_ms` or every `audit.batch_max_records` records. A crash can
//!   lose at most that window of them.
//!
//! Record ids derive from the journal sequence of the event carrying them, so replay
//! gives the same keys. Applied records wait in memory (`AuditState`) until the next
//! progress checkpoint writes them; queries read both.
//!
//! The request's context (client IP, endpoint, device header, authenticated caller)
//! reaches the engine through a task-local [`AuditContext`] set by the HTTP layer.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{ApiError, Code};
use crate::persist::audit::{AuditBatch, AuditMarks};
use crate::players::audit::{
    AuditKind, AuditRecord, MAX_RECORDS_PER_EVENT, record_id, split_time_key, time_key,
};

use super::{Engine, Event, Parts};

/// What the HTTP layer knows about the request being served.
#[derive(Debug, Default)]
pub struct AuditContext {
    /// The client IP (socket peer, or trusted proxy header).
    pub client_ip: Option<String>,
    /// `METHOD /route/pattern`.
    pub endpoint: Option<String>,
    /// The raw `X-Device-ID` header.
    pub device_header: Option<String>,
    /// The authenticated caller, once known.
    actor: OnceLock<String>,
    /// Whether the request journaled a record of its own (set by the engine).
    recorded: AtomicBool,
}

impl AuditContext {
    /// A context for one request.
    pub fn new(
        client_ip: Option<String>,
        endpoint: Option<String>,
        device_header: Option<String>,
    ) -> AuditContext {
        AuditContext {
            client_ip,
            endpoint,
            device_header,
            ..AuditContext::default()
        }
    }

    /// The authenticated caller's id, if any.
    pub fn actor(&self) -> Option<&str> {
        self.actor.get().map(String::as_str)
    }

    /// Whether the request journaled an audit record with its change.
    pub fn recorded(&self) -> bool {
        self.recorded.load(Ordering::Relaxed)
    }
}

tokio::task_local! {
    static CONTEXT: Arc<AuditContext>;
}

/// The context of the request served by the current task, if any.
pub fn current() -> Option<Arc<AuditContext>> {
    CONTEXT.try_with(Arc::clone).ok()
}

/// Runs `fut` with `ctx` as its request context (or without one).
pub async fn scope<F: Future>(ctx: Option<Arc<AuditContext>>, fut: F) -> F::Output {
    match ctx {
        Some(ctx) => CONTEXT.scope(ctx, fut).await,
        None => fut.await,
    }
}

/// Remembers the authenticated caller in the current request's context.
pub(crate) fn set_actor(player_id: &str) {
    if let Some(ctx) = current() {
        let _ = ctx.actor.set(player_id.to_owned());
    }
}

/// The stable name of an error code (`NOT_UNLOCKED`).
pub fn code_name(code: Code) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{code:?}"))
}

/// Records applied but not yet checkpointed, and the retention and erasure marks the
/// next checkpoint carries out in redb.
#[derive(Debug, Default)]
struct Pending {
    records: BTreeMap<[u8; 16], AuditRecord>,
    erase: Vec<(String, String)>,
    /// Mirror queue keys of rows deleted by erasures (so MariaDB drops them too).
    mirror_gone: Vec<String>,
    delete_before_ms: Option<i64>,
    clear_ip_before_ms: Option<i64>,
    /// Cutoffs in force (stored marks and every applied retention event).
    deleted_before_ms: i64,
    ip_cleared_before_ms: i64,
}

/// The engine's audit state.
#[derive(Debug)]
pub(crate) struct AuditState {
    buffer: Mutex<Vec<AuditRecord>>,
    wake: tokio::sync::Notify,
    dropped: AtomicU64,
    flush_lock: tokio::sync::Mutex<()>,
    pending: Mutex<Pending>,
}

impl AuditState {
    /// Empty state with the retention marks read from redb.
    pub fn new(marks: AuditMarks) -> AuditState {
        AuditState {
            buffer: Mutex::new(Vec::new()),
            wake: tokio::sync::Notify::new(),
            dropped: AtomicU64::new(0),
            flush_lock: tokio::sync::Mutex::new(()),
            pending: Mutex::new(Pending {
                deleted_before_ms: marks.deleted_before_ms,
                ip_cleared_before_ms: marks.ip_cleared_before_ms,
                ..Pending::default()
            }),
        }
    }
}

/// What a retention run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RetentionReport {
    /// Records older than this were deleted (RFC 3339).
    pub deleted_before: String,
    /// Client IPs of records older than this were cleared (RFC 3339).
    pub ip_cleared_before: String,
    /// Whether anything had to be done (an event was journaled).
    pub changed: bool,
}

const DAY_MS: i64 = 86_400_000;

/// A record as stored: the actor is kept only when someone else than the player.
fn compact(mut record: AuditRecord) -> AuditRecord {
    if record.actor_id.is_some() && record.actor_id == record.player_id {
        record.actor_id = None;
    }
    record
}

/// Records with their storage keys.
pub(super) type Keyed = Vec<([u8; 16], AuditRecord)>;

impl Engine {
    /// A record of `kind` with `result`, stamped now and filled from the request
    /// context: client IP, endpoint, device header and the acting caller (who is also
    /// the player concerned unless [`AuditRecord::player`] says otherwise).
    pub fn audit_record(&self, kind: AuditKind, result: &str) -> AuditRecord {
        let mut record = AuditRecord::new(kind, self.now().as_millisecond(), result);
        match current() {
            Some(ctx) => {
                record.client_ip = ctx.client_ip.clone();
                record.endpoint = ctx.endpoint.clone();
                let device = ctx.device_header.as_deref().map(|raw| {
                    super::accounts::parse_device_id(Some(raw)).unwrap_or_else(|| raw.to_owned())
                });
                record = record.device(device.as_deref());
                if let Some(actor) = ctx.actor() {
                    record.actor_id = Some(actor.to_owned());
                    record.player_id = Some(actor.to_owned());
                }
            }
            None => record.endpoint = Some("cli".to_owned()),
        }
        record
    }

    /// A record of an action by the current caller on `player_id` (an admin's action on
    /// a student): the caller stays the actor, the device header is not the player's.
    pub(crate) fn audit_action(&self, kind: AuditKind, player_id: &str) -> AuditRecord {
        let mut record = self
            .audit_record(kind, crate::players::audit::RESULT_OK)
            .player(player_id);
        if record.actor_id.as_deref() != Some(player_id) {
            record.device_id = None;
        }
        record
    }

    /// Buffers a record of an anonymous or failing request; it is journaled with
    /// others within `audit.flush_interval_ms`. Never waits.
    pub fn audit_later(&self, record: AuditRecord) {
        let record = compact(record);
        let cfg = &self.config().audit;
        let state = &self.inner().audit;
        let mut buffer = state.buffer.lock();
        if buffer.len() >= cfg.buffer_max_records {
            drop(buffer);
            let n = state.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "audit buffer full: records dropped");
            }
            return;
        }
        buffer.push(record);
        let full = buffer.len() >= cfg.batch_max_records;
        drop(buffer);
        if full {
            state.wake.notify_one();
        }
    }

    /// Journals `event` with `records` in the same journal record, then applies it.
    pub(crate) async fn commit_audited(
        &self,
        event: Event,
        records: Vec<AuditRecord>,
    ) -> Result<(), ApiError> {
        if records.is_empty() {
            return self.commit_and_apply(event).await;
        }
        self.commit_and_apply(Event::Audited {
            event: Box::new(event),
            records: records.into_iter().map(compact).collect(),
        })
        .await?;
        if let Some(ctx) = current() {
            ctx.recorded.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Number of records waiting in the buffer.
    pub fn audit_buffered(&self) -> usize {
        self.inner().audit.buffer.lock().len()
    }

    /// Records dropped since the start because the buffer was full (the journal failing
    /// for a long time).
    pub fn audit_dropped(&self) -> u64 {
        self.inner().audit.dropped.load(Ordering::Relaxed)
    }

    /// Journals every buffered record now (in events of at most
    /// `audit.batch_max_records`); returns how many. Used by the background task, by
    /// readers of the log (so they see what happened before their request) and at
    /// shutdown.
    ///
    /// # Errors
    /// 503 when the journal fails; the records stay buffered then.
    pub async fn flush_audit(&self) -> Result<usize, ApiError> {
        let state = &self.inner().audit;
        let max = self.config().audit.batch_max_records.max(1);
        let _one = state.flush_lock.lock().await;
        let mut total = 0;
        loop {
            let chunk: Vec<AuditRecord> = {
                let mut buffer = state.buffer.lock();
                let n = buffer.len().min(max);
                buffer.drain(..n).collect()
            };
            if chunk.is_empty() {
                return Ok(total);
            }
            let n = chunk.len();
            let event = Event::AuditBatch(chunk);
            match self.commit(&event).await {
                Ok(committed) => {
                    if let Err(e) = self.apply(&event, Parts::ALL) {
                        tracing::error!(error = %e, "audit batch not applied");
                    }
                    self.apply_audit(&event, committed.seq, Parts::ALL);
                    drop(committed);
                    total += n;
                }
                Err(e) => {
                    if let Event::AuditBatch(chunk) = event {
                        let mut buffer = state.buffer.lock();
                        let newer = std::mem::replace(&mut *buffer, chunk);
                        buffer.extend(newer);
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Adds the records an event carries to the pending set (live and replay), keyed by
    /// the event's journal sequence. Records older than the retention cutoffs in force
    /// are dropped or lose their IP at once.
    pub(super) fn apply_audit(&self, event: &Event, seq: u64, parts: Parts) {
        if !parts.main {
            return;
        }
        let records = match event {
            Event::Audited { records, .. } | Event::AuditBatch(records) => records,
            _ => return,
        };
        let mut pending = self.inner().audit.pending.lock();
        for (i, record) in records.iter().enumerate().take(MAX_RECORDS_PER_EVENT) {
            if record.at_ms < pending.deleted_before_ms {
                continue;
            }
            let mut record = record.clone();
            if record.at_ms < pending.ip_cleared_before_ms {
                record.clear_ip();
            }
            pending
                .records
                .insert(time_key(record.at_ms, record_id(seq, i)), record);
        }
    }

    /// Applies a retention event: pending records are expired now, redb ones by the next
    /// checkpoint.
    pub(super) fn apply_audit_expired(&self, delete_before_ms: i64, clear_ip_before_ms: i64) {
        let mut pending = self.inner().audit.pending.lock();
        let p = &mut *pending;
        p.deleted_before_ms = p.deleted_before_ms.max(delete_before_ms);
        p.ip_cleared_before_ms = p.ip_cleared_before_ms.max(clear_ip_before_ms);
        let cut = time_key(p.deleted_before_ms, 0);
        p.records = p.records.split_off(&cut);
        let ip_cut = time_key(p.ip_cleared_before_ms, 0);
        for (_, record) in p.records.range_mut(..ip_cut) {
            record.clear_ip();
        }
        p.delete_before_ms = Some(p.deleted_before_ms);
        p.clear_ip_before_ms = Some(p.ip_cleared_before_ms);
    }

    /// Anonymises an erased player's records: pending ones now, stored ones by the next
    /// checkpoint.
    pub(super) fn apply_audit_erase(
        &self,
        player_id: &str,
        anon_id: &str,
        mirror_gone: Vec<String>,
    ) {
        let mut pending = self.inner().audit.pending.lock();
        pending.mirror_gone.extend(mirror_gone);
        for record in pending.records.values_mut() {
            record.anonymise(player_id, anon_id);
        }
        pending
            .erase
            .push((player_id.to_owned(), anon_id.to_owned()));
    }

    /// What the next checkpoint writes to the audit tables (a copy: the records stay
    /// readable from memory until written), and the mirror keys of erased rows.
    pub(super) fn audit_for_checkpoint(&self) -> (AuditBatch, Vec<String>) {
        let mut pending = self.inner().audit.pending.lock();
        let mirror_gone = std::mem::take(&mut pending.mirror_gone);
        let batch = AuditBatch {
            records: pending
                .records
                .iter()
                .filter_map(|(k, r)| split_time_key(k).map(|(_, id)| (id, r.clone())))
                .collect(),
            erase: std::mem::take(&mut pending.erase),
            delete_before_ms: pending.delete_before_ms.take(),
            clear_ip_before_ms: pending.clear_ip_before_ms.take(),
        };
        (batch, mirror_gone)
    }

    /// After a checkpoint: forgets the pending records it wrote (unless changed since),
    /// or, when it failed, puts its marks back.
    pub(super) fn audit_checkpointed(
        &self,
        batch: AuditBatch,
        mirror_gone: Vec<String>,
        written: bool,
    ) {
        let mut pending = self.inner().audit.pending.lock();
        if written {
            for (id, record) in &batch.records {
                let key = time_key(record.at_ms, *id);
                if pending.records.get(&key) == Some(record) {
                    pending.records.remove(&key);
                }
            }
        } else {
            let mut erase = batch.erase;
            erase.append(&mut pending.erase);
            pending.erase = erase;
            let mut gone = mirror_gone;
            gone.append(&mut pending.mirror_gone);
            pending.mirror_gone = gone;
            pending.delete_before_ms = pending.delete_before_ms.max(batch.delete_before_ms);
            pending.clear_ip_before_ms = pending.clear_ip_before_ms.max(batch.clear_ip_before_ms);
        }
    }

    /// Pending records with keys in `[lo, hi)` (newest first, at most `max`) that `want`
    /// accepts, plus the pending versions of `keys` (which may have changed since they
    /// were stored).
    pub(super) fn audit_pending(
        &self,
        lo: [u8; 16],
        hi: [u8; 16],
        max: usize,
        want: &dyn Fn(&AuditRecord) -> bool,
        keys: &[[u8; 16]],
    ) -> (Keyed, Keyed) {
        let pending = self.inner().audit.pending.lock();
        let matching = if lo < hi {
            pending
                .records
                .range(lo..hi)
                .rev()
                .filter(|(_, r)| want(r))
                .take(max)
                .map(|(k, r)| (*k, r.clone()))
                .collect()
        } else {
            Vec::new()
        };
        let overlay = keys
            .iter()
            .filter_map(|k| pending.records.get(k).map(|r| (*k, r.clone())))
            .collect();
        (matching, overlay)
    }

    /// A stored record as it reads now: retention cutoffs and erasures that the next
    /// checkpoint will carry out in redb are applied already; `None` when expired.
    pub(super) fn audit_present(&self, mut record: AuditRecord) -> Option<AuditRecord> {
        let pending = self.inner().audit.pending.lock();
        if record.at_ms < pending.deleted_before_ms {
            return None;
        }
        if record.at_ms < pending.ip_cleared_before_ms {
            record.clear_ip();
        }
        for (player, anon) in &pending.erase {
            record.anonymise(player, anon);
        }
        Some(record)
    }

    /// Runs the retention job once: deletes records older than `audit.retention_days`
    /// and clears client IPs older than `audit.ip_retention_days` (one journaled
    /// [`Event::AuditExpired`], carried out in redb by a checkpoint run right away).
    /// Nothing is journaled when nothing has expired. Recorded as the periodic task
    /// `audit_retention`.
    ///
    /// # Errors
    /// The journal's or the checkpoint's error, as text.
    pub async fn audit_retention(&self) -> Result<RetentionReport, String> {
        let started_ms = self.now().as_millisecond();
        let started = Instant::now();
        let result = self.audit_retention_inner(started_ms).await;
        let summary = match &result {
            Ok(r) if r.changed => Ok(format!(
                "deleted records before {}, cleared IPs before {}",
                r.deleted_before, r.ip_cleared_before
            )),
            Ok(_) => Ok("nothing expired".to_owned()),
            Err(e) => Err(e.clone()),
        };
        self.jobs()
            .record_run("audit_retention", started_ms, started.elapsed(), summary);
        result
    }

    async fn audit_retention_inner(&self, now_ms: i64) -> Result<RetentionReport, String> {
        let cfg = &self.config().audit;
        let delete_before = now_ms.saturating_sub(i64::from(cfg.retention_days) * DAY_MS);
        let clear_ip_before = now_ms.saturating_sub(i64::from(cfg.ip_retention_days) * DAY_MS);
        let (deleted_mark, ip_mark, pending_expired) = {
            let p = self.inner().audit.pending.lock();
            let expired = p.records.iter().any(|(_, r)| {
                r.at_ms < delete_before || (r.at_ms < clear_ip_before && r.client_ip.is_some())
            });
            (p.deleted_before_ms, p.ip_cleared_before_ms, expired)
        };
        let engine = self.clone();
        let stored_expired = tokio::task::spawn_blocking(move || {
            let store = &engine.inner().store;
            let any_old = delete_before > deleted_mark
                && crate::persist::audit::any_between(store, i64::MIN, delete_before, false)?;
            let any_ip = clear_ip_before > ip_mark
                && crate::persist::audit::any_between(store, ip_mark, clear_ip_before, true)?;
            Ok::<_, crate::persist::store::StoreError>(any_old || any_ip)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let rfc = super::accounts::rfc3339;
        let mut report = RetentionReport {
            deleted_before: rfc(delete_before),
            ip_cleared_before: rfc(clear_ip_before),
            changed: false,
        };
        if !pending_expired && !stored_expired {
            return Ok(report);
        }
        self.commit_and_apply(Event::AuditExpired {
            delete_before_ms: delete_before,
            clear_ip_before_ms: clear_ip_before,
        })
        .await
        .map_err(|e| e.detail)?;
        report.changed = true;
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.checkpoint(true, false))
            .await
            .map_err(|e| e.to_string())??;
        Ok(report)
    }

    /// Runs the audit background work until `shutdown`: flushes the buffer every
    /// `audit.flush_interval_ms` (or when `batch_max_records` wait), runs the retention
    /// job every `retention_interval_secs`, and flushes a last time before returning.
    pub async fn run_audit(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let cfg = self.config().audit.clone();
        let mut flush_tick =
            tokio::time::interval(Duration::from_millis(cfg.flush_interval_ms.max(1)));
        flush_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let every = Duration::from_secs(cfg.retention_interval_secs.max(60));
        let first = tokio::time::Instant::now() + every.min(Duration::from_secs(60));
        let mut retention_tick = tokio::time::interval_at(first, every);
        retention_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = flush_tick.tick() => {}
                _ = self.inner().audit.wake.notified() => {}
                _ = retention_tick.tick() => {
                    if let Err(e) = self.audit_retention().await {
                        tracing::error!(error = %e, "audit retention failed");
                    }
                    continue;
                }
                _ = shutdown.changed() => {
                    if let Err(e) = self.flush_audit().await {
                        tracing::error!(error = %e, "final audit flush failed");
                    }
                    return;
                }
            }
            let started_ms = self.now().as_millisecond();
            let started = Instant::now();
            match self.flush_audit().await {
                Ok(0) => {}
                Ok(n) => self.jobs().record_run(
                    "audit_flush",
                    started_ms,
                    started.elapsed(),
                    Ok(format!("{n} records journaled")),
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "audit flush failed; records stay buffered");
                    self.jobs().record_run(
                        "audit_flush",
                        started_ms,
                        started.elapsed(),
                        Err(e.detail),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::event::{LessonCompleted, StreakState};
    use crate::persist::codec;
    use crate::progress::completion::CompletionDecision;

    fn completion() -> Event {
        Event::LessonCompleted(Box::new(LessonCompleted {
            player_id: "p_abcdefghijklmnopqrst".into(),
            subject_key: "fcc-responsive-web-design".into(),
            lesson_id: "fcc-rwd-l-0123".into(),
            at_ms: 1_795_000_000_000,
            decision: CompletionDecision {
                bit_index: 123,
                is_first_completion: true,
                is_new_record: true,
                xp_earned: 50,
                best_hearts: 4,
                new_subject_xp: 1234,
            },
            wallet_total_xp: 12_345,
            streak: StreakState {
                current: 3,
                longest: 5,
                last_success_day: Some(20_500),
            },
        }))
    }

    fn attempt() -> AuditRecord {
        let mut r = AuditRecord::new(AuditKind::LessonAttempt, 1_795_000_000_000, "ok")
            .player("p_abcdefghijklmnopqrst")
            .device(Some("10f4d4e6-5b32-4478-90c5-4f928bf31094"))
            .detail("lesson_id", "fcc-rwd-l-0123")
            .detail("subject_id", "fcc-responsive-web-design")
            .detail("hearts", 4)
            .detail("xp_earned", 50)
            .detail("first_completion", true);
        r.client_ip = Some("203.0.113.45".into());
        r.endpoint = Some("POST /api/v1/lessons/{lesson_id}/complete".into());
        r
    }

    /// The journal bytes a completion's interaction record adds (BENCHMARKS.md §9):
    /// a budget, so that a record growing by accident is noticed.
    #[test]
    fn an_audited_completion_stays_within_its_journal_budget() {
        let plain = codec::encode(&completion()).len();
        let audited = codec::encode(&Event::Audited {
            event: Box::new(completion()),
            records: vec![attempt()],
        })
        .len();
        assert!(plain < 128, "{plain}");
        assert!(audited - plain < 300, "{plain} → {audited}");
        let back: Event = codec::decode(&codec::encode(&Event::Audited {
            event: Box::new(completion()),
            records: vec![attempt()],
        }))
        .expect("decode");
        assert!(matches!(back, Event::Audited { ref records, .. } if records[0] == attempt()));
    }

    #[test]
    fn actors_are_kept_only_when_someone_else() {
        let mut own = attempt();
        own.actor_id = own.player_id.clone();
        assert_eq!(compact(own).actor_id, None);
        let mut admin = attempt();
        admin.actor_id = Some("p_admin".into());
        assert_eq!(compact(admin).actor_id.as_deref(), Some("p_admin"));
    }
}
