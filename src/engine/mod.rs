//! The engine: the only module that owns shared state and locks. It decides with the pure
//! domain modules, journals the decided [`Event`], applies it to memory once durable,
//! checkpoints to redb and recovers on start (architecture.md, persistence.md).
//!
//! Write path of every mutation:
//! 1. take the ordering lock (a student's `write` mutex, or the admin lock);
//! 2. decide from the current state with the domain functions → an [`Event`];
//! 3. hand it to the journal and await durability (group commit);
//! 4. apply it to memory, mark what it dirtied, drop the journal's `Applied` guard;
//! 5. release the ordering lock and answer.
//!
//! Write operations are meant to run in a task of their own (`tokio::spawn`), so that a
//! client hanging up cannot cancel a write between its fsync and its application.

pub mod accounts;
pub mod admin_players;
pub mod audit;
pub mod audit_query;
pub mod builds;
pub mod census;
pub mod checkpoint;
pub mod content_ops;
pub mod degraded;
pub mod event;
pub mod groups;
pub mod idempotency;
pub mod jobs;
pub mod play;
pub mod privacy;
pub mod reconcile;
pub mod reports;
pub mod roster;
pub mod roster_report;
pub mod seasons;
pub mod snapshots;
pub mod srs_archive;
pub mod srs_archive_ops;
pub mod srs_import;
pub mod srs_maintenance;
pub mod srs_ops;
pub mod srs_retention;
pub mod srs_reviews;
pub mod students;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::clock::Clock;
use crate::config::{Config, DurabilityMode};
use crate::content::catalog::Catalog;
use crate::error::ApiError;
use crate::persist::codec;
use crate::persist::journal::{self, Journal, JournalConfig};
use crate::persist::store::{Store, StoreError};
use crate::progress::state::{ProgressRecord, SubjectProgress};

pub use accounts::Accounts;
pub use event::Event;
use students::{Student, StudentMap, StudentState};

/// File name of the redb file inside the data directory.
pub const REDB_FILE: &str = "memora.redb";
/// Directory of journal segments inside the data directory.
pub const JOURNAL_DIR: &str = "journal";

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The redb file could not be opened (locked, newer format, I/O).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The journal is corrupt or unreadable.
    #[error("journal: {0}")]
    Journal(String),
    /// A stored record could not be decoded.
    #[error("{what}: {message}")]
    Decode {
        /// Which record.
        what: String,
        /// Why.
        message: String,
    },
}

/// What recovery did, for logs and `/readyz`.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct RecoveryReport {
    /// Journal records replayed.
    pub replayed: u64,
    /// Bytes of torn tail truncated.
    pub truncated_tail_bytes: u64,
    /// Sequence of the last journal record.
    pub last_seq: u64,
    /// Milliseconds from open to ready.
    pub duration_ms: u64,
}

/// Which checkpoint streams a replayed event still has to update.
#[derive(Debug, Clone, Copy)]
struct Parts {
    main: bool,
    wallet: bool,
}

impl Parts {
    const ALL: Parts = Parts {
        main: true,
        wallet: true,
    };
}

/// What the next checkpoint must write.
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    pub progress: HashSet<(Arc<str>, Box<str>)>,
    pub wallets: HashSet<Arc<str>>,
    pub players: HashSet<String>,
    pub sessions: HashSet<[u8; 32]>,
    pub catalog: bool,
}

/// The engine handle: cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub journal: Journal,
    pub store: Store,
    pub catalog: RwLock<Arc<Catalog>>,
    pub accounts: RwLock<Accounts>,
    pub students: StudentMap,
    pub dirty: Mutex<Dirty>,
    /// Orders admin writes (content, accounts) across their fsync wait.
    pub admin_write: tokio::sync::Mutex<()>,
    /// One checkpoint at a time.
    pub checkpoint_lock: Mutex<()>,
    pub ready: AtomicBool,
    pub recovery: RecoveryReport,
    pub completions: AtomicU64,
    pub last_checkpoint: Mutex<Option<checkpoint::CheckpointReport>>,
    /// The last checkpoint of each stream (observability).
    pub checkpoints: Mutex<checkpoint::CheckpointHistory>,
    /// The figures of the last reconciliation (observability).
    pub last_reconcile: Mutex<Option<reconcile::ReconcileSummary>>,
    /// A hash verified against for unknown emails (same cost as real ones).
    pub dummy_hash: std::sync::OnceLock<String>,
    /// Compiled-content builds (engine/builds.rs).
    pub builds: Arc<crate::cdn::Builds>,
    /// Seasons, question interner, scheduler, SRS dirty marks (engine/srs_ops.rs).
    pub srs: srs_ops::SrsState,
    /// Hand-off to the MariaDB mirror task (persist/mirror).
    pub mirror: Arc<crate::persist::mirror::Feed>,
    /// Background jobs and periodic task runs (engine/jobs.rs).
    pub jobs: jobs::Jobs,
    /// Roster dry runs remembered for their commits (engine/roster.rs).
    pub roster_dry_runs: roster_report::DryRuns,
    /// Degraded-mode flags and cold-load limiters (engine/degraded.rs).
    pub health: degraded::Health,
    /// Audit and interaction logs waiting for the journal or a checkpoint.
    pub audit: audit::AuditState,
    /// Classes (engine/groups.rs).
    pub groups: groups::GroupsState,
    /// When this engine opened, unix ms: the idle clock of sessions not used since.
    pub opened_at_ms: i64,
    /// Set while a snapshot is being written: one at a time (engine/snapshots.rs).
    pub snapshot_busy: AtomicBool,
}

impl Engine {
    /// Opens the data directory: redb, then the journal; loads content and accounts;
    /// replays the journal after the checkpoints. Ready when this returns.
    ///
    /// # Errors
    /// [`OpenError`] when the store is locked or newer, or the journal is corrupt.
    pub fn open(config: Config, clock: Arc<dyn Clock>) -> Result<Engine, OpenError> {
        Self::open_with_storage(config, clock, Arc::new(journal::FileStorage))
    }

    /// [`Engine::open`] with the journal's segment I/O going through `storage` (tests
    /// inject faults with [`journal::FaultyStorage`]).
    ///
    /// # Errors
    /// As [`Engine::open`].
    pub fn open_with_storage(
        config: Config,
        clock: Arc<dyn Clock>,
        storage: Arc<dyn journal::Storage>,
    ) -> Result<Engine, OpenError> {
        let started = Instant::now();
        if config.metrics.enabled {
            crate::observe::install();
        }
        let data_dir = config.storage.data_dir.clone();
        let store = Store::open(&data_dir.join(REDB_FILE))?;
        let meta = store.meta()?;

        let mut catalog = Catalog::default();
        for (id, bytes) in store.subjects()? {
            catalog = catalog.with_subject(decode(&format!("subject {id}"), &bytes)?);
        }
        for (id, bytes) in store.plans()? {
            catalog = catalog.with_plan(decode(&format!("plan {id}"), &bytes)?);
        }
        let mut accounts = Accounts::default();
        for (id, bytes) in store.players()? {
            accounts.put_player(decode(&format!("player {id}"), &bytes)?);
        }
        for bytes in store.sessions()? {
            accounts.load_session(decode("session", &bytes)?);
        }

        let audit_marks = crate::persist::audit::marks(&store)?;
        let after = meta.progress_seq.min(meta.wallet_seq);
        let (journal, recovered) =
            Journal::open_with_storage(journal_config(&config, &data_dir), after, storage)
                .map_err(|e| OpenError::Journal(e.to_string()))?;
        let builds = builds::service(&config);
        let mirror = Arc::new(crate::persist::mirror::Feed::new(config.mirror.enabled()));
        let srs = srs_ops::SrsState::new(&config.srs);
        let inner = Inner {
            groups: groups::GroupsState::default(),
            opened_at_ms: clock.now().as_millisecond(),
            jobs: jobs::Jobs::new(clock.clone()),
            roster_dry_runs: roster_report::DryRuns::default(),
            health: degraded::Health::new(config.storage.checkpoint_failures_before_degraded),
            audit: audit::AuditState::new(audit_marks),
            builds,
            mirror,
            config,
            clock,
            journal,
            store,
            catalog: RwLock::new(Arc::new(catalog)),
            accounts: RwLock::new(accounts),
            students: StudentMap::default(),
            dirty: Mutex::new(Dirty::default()),
            admin_write: tokio::sync::Mutex::new(()),
            checkpoint_lock: Mutex::new(()),
            ready: AtomicBool::new(false),
            recovery: RecoveryReport::default(),
            completions: AtomicU64::new(0),
            last_checkpoint: Mutex::new(None),
            checkpoints: Mutex::new(checkpoint::CheckpointHistory::default()),
            last_reconcile: Mutex::new(None),
            dummy_hash: std::sync::OnceLock::new(),
            srs,
            snapshot_busy: AtomicBool::new(false),
        };
        let mut engine = Engine {
            inner: Arc::new(inner),
        };
        engine.load_seasons()?;
        engine.load_groups()?;
        let mut replayed = 0u64;
        for (seq, payload) in &recovered.records {
            let event: Event = codec::decode(payload).map_err(|e| OpenError::Decode {
                what: format!("journal record {seq}"),
                message: e.to_string(),
            })?;
            let parts = Parts {
                main: *seq > meta.progress_seq,
                wallet: *seq > meta.wallet_seq,
            };
            engine.apply(&event, parts).map_err(|e| OpenError::Decode {
                what: format!("journal record {seq}"),
                message: e.to_string(),
            })?;
            engine.apply_audit(&event, *seq, parts);
            replayed += 1;
        }
        let report = RecoveryReport {
            replayed,
            truncated_tail_bytes: recovered.truncated_tail_bytes,
            last_seq: recovered.last_seq,
            duration_ms: started.elapsed().as_millis() as u64,
        };
        if let Some(inner) = Arc::get_mut(&mut engine.inner) {
            inner.recovery = report;
        }
        engine.check_disk();
        engine.inner.ready.store(true, Ordering::SeqCst);
        Ok(engine)
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Now, from the injected clock.
    pub fn now(&self) -> jiff::Timestamp {
        self.inner.clock.now()
    }

    /// Whether recovery finished.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst)
    }

    /// What recovery did.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.inner.recovery
    }

    /// The current catalog snapshot.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.inner.catalog.read().clone()
    }

    /// Whether the journal is currently accepting durable writes.
    pub fn journal_healthy(&self) -> bool {
        self.inner.journal.is_healthy()
    }

    /// Journal statistics.
    pub fn journal_stats(&self) -> journal::JournalStats {
        self.inner.journal.stats()
    }

    /// The MariaDB mirror's state and lag; `None` when no mirror is configured.
    pub fn mirror_status(&self) -> Option<crate::persist::mirror::MirrorStatus> {
        self.inner.mirror.status(self.now().as_millisecond())
    }

    /// The hand-off between checkpoints and the mirror task.
    pub fn mirror_feed(&self) -> &Arc<crate::persist::mirror::Feed> {
        &self.inner.mirror
    }

    /// Background jobs (api.md "Long operations") and periodic task runs.
    pub fn jobs(&self) -> &jobs::Jobs {
        &self.inner.jobs
    }

    /// Number of students whose state is in memory.
    pub fn students_in_memory(&self) -> usize {
        self.inner.students.len()
    }

    /// Journals `event` and waits until it is durable; the caller applies it next.
    ///
    /// # Errors
    /// 503 `STORAGE_UNAVAILABLE` when the journal could not make it durable; nothing was
    /// applied then.
    pub(crate) async fn commit(&self, event: &Event) -> Result<journal::Committed, ApiError> {
        self.check_writable()?;
        let payload = codec::encode(event);
        self.inner
            .journal
            .submit(payload)
            .await
            .map_err(ApiError::storage)
    }

    /// Journals, then applies (steps 3 and 4 of the write path).
    pub(crate) async fn commit_and_apply(&self, event: Event) -> Result<(), ApiError> {
        let committed = self.commit(&event).await?;
        let result = self.apply(&event, Parts::ALL);
        self.apply_audit(&event, committed.seq, Parts::ALL);
        drop(committed);
        result.map_err(ApiError::internal)
    }

    /// The student's state, loading it from redb on first access.
    ///
    /// # Errors
    /// 500 when the stored rows cannot be read or decoded.
    pub(crate) fn student(&self, player_id: &str) -> Result<Arc<Student>, ApiError> {
        if let Some(s) = self.inner.students.get(player_id) {
            return Ok(s);
        }
        self.admit_cold_load(player_id)?;
        self.load_student(player_id).map_err(ApiError::internal)
    }

    fn load_student(&self, player_id: &str) -> Result<Arc<Student>, OpenError> {
        // A checkpoint that writes archive moves during the read makes the read stale:
        // read again (engine/srs_archive.rs, "Loads"; rare and bounded by checkpoints).
        loop {
            if let Some(student) = self.load_student_once(player_id)? {
                return Ok(student);
            }
        }
    }

    fn load_student_once(&self, player_id: &str) -> Result<Option<Arc<Student>>, OpenError> {
        let (rows, wallet) = self.inner.store.student(player_id)?;
        let mut state = decode_student(player_id, rows, wallet)?;
        self.load_student_srs(player_id, &mut state)?;
        let student = Student {
            write: tokio::sync::Mutex::new(()),
            state: RwLock::new(state),
        };
        Ok(self.insert_loaded_student(player_id, student))
    }

    /// Applies a durable event to memory and marks what it dirtied. Used by the live
    /// write path and by replay; it never decides anything.
    fn apply(&self, event: &Event, parts: Parts) -> Result<(), OpenError> {
        let inner = &self.inner;
        match event {
            Event::SubjectPut(record) if parts.main => {
                let mut catalog = inner.catalog.write();
                *catalog = Arc::new(catalog.with_subject(record.clone()));
                inner.dirty.lock().catalog = true;
            }
            Event::SubjectDeleted { id } if parts.main => {
                let mut catalog = inner.catalog.write();
                *catalog = Arc::new(catalog.without_subject(id));
                inner.dirty.lock().catalog = true;
            }
            Event::PlanPut(record) if parts.main => {
                let mut catalog = inner.catalog.write();
                *catalog = Arc::new(catalog.with_plan(record.clone()));
                inner.dirty.lock().catalog = true;
            }
            Event::PlanDeleted { id } if parts.main => {
                let mut catalog = inner.catalog.write();
                *catalog = Arc::new(catalog.without_plan(id));
                inner.dirty.lock().catalog = true;
            }
            Event::PlayerPut(record) if parts.main => {
                let id = record.id.clone();
                inner.accounts.write().put_player((**record).clone());
                inner.dirty.lock().players.insert(id);
            }
            Event::SessionCreated {
                session,
                new_device,
                replaces,
            } if parts.main => {
                let mut accounts = inner.accounts.write();
                let touched =
                    accounts.apply_session_created(session, new_device.as_ref(), *replaces);
                drop(accounts);
                let mut dirty = inner.dirty.lock();
                dirty.sessions.insert(session.token_hash);
                dirty.sessions.extend(*replaces);
                if touched {
                    dirty.players.insert(session.player_id.clone());
                }
            }
            Event::SessionEnded { token_hash, at_ms } if parts.main => {
                inner.accounts.write().end_session(token_hash, *at_ms);
                inner.dirty.lock().sessions.insert(*token_hash);
            }
            Event::LessonCompleted(done) => self.apply_lesson_completed(done, parts)?,
            // --- SRS (issue 6) ---
            Event::SeasonPut(record) if parts.main => self.apply_season_put(record),
            Event::LessonCompletedV2(done) => {
                self.apply_lesson_completed(&done.completion, parts)?;
                if parts.main {
                    self.apply_srs_writes(
                        &done.completion.player_id,
                        done.season.as_deref(),
                        &done.cards,
                        done.idempotency.as_ref(),
                    )?;
                }
            }
            Event::PlayerUpdated { .. } | Event::SessionsEnded { .. } | Event::XpAdjusted(_) => {
                self.apply_player_admin(event, parts)?;
            }
            Event::ReviewsSubmitted(reviews) => self.apply_reviews(reviews, parts)?,
            Event::CardsArchived(archived) if parts.main => self.apply_cards_archived(archived),
            Event::ArchiveFlagged(flagged) if parts.main => self.apply_archive_flagged(flagged),
            Event::ArchivePurged(purged) if parts.main => self.apply_archive_purged(purged),
            Event::CardsImported(imported) if parts.main => self.apply_srs_writes(
                &imported.player_id,
                Some(&imported.season),
                &imported.cards,
                None,
            )?,
            // --- end SRS ---
            // --- audit and privacy (issue 3) ---
            Event::Audited { event, .. } => self.apply(event, parts)?,
            Event::AuditExpired {
                delete_before_ms,
                clear_ip_before_ms,
            } if parts.main => self.apply_audit_expired(*delete_before_ms, *clear_ip_before_ms),
            Event::PlayerErased(erased) => self.apply_player_erased(erased, parts)?,
            Event::ProgressReset(reset) if parts.main => self.apply_progress_reset(reset)?,
            // --- end audit ---
            Event::GroupPut(record) if parts.main => self.apply_group_put(record),
            Event::GroupDeleted { id } if parts.main => self.apply_group_deleted(id),
            Event::RosterImported(roster) if parts.main => self.apply_roster(roster)?,
            // Events already covered by the checkpoint of their stream.
            _ => {}
        }
        if parts.main {
            self.enqueue_builds(event);
        }
        Ok(())
    }

    /// Applies a lesson completion's progress (main stream) and wallet parts.
    fn apply_lesson_completed(
        &self,
        done: &event::LessonCompleted,
        parts: Parts,
    ) -> Result<(), OpenError> {
        let inner = &self.inner;
        if !parts.main && !parts.wallet {
            return Ok(());
        }
        let student = match inner.students.get(&done.player_id) {
            Some(s) => s,
            None => self.load_student(&done.player_id)?,
        };
        let mut state = student.state.write();
        if parts.main {
            let progress = state
                .subjects
                .entry(done.subject_key.clone().into_boxed_str())
                .or_default();
            crate::progress::completion::apply_completion(
                progress,
                &done.decision,
                &done.lesson_id,
                done.at_ms,
            );
        }
        if parts.wallet {
            state.wallet.total_xp = done.wallet_total_xp;
            students::set_streak(&mut state.wallet, &done.streak);
            state.wallet.last_played_at_ms = Some(done.at_ms);
        }
        drop(state);
        let key: Arc<str> = Arc::from(done.player_id.as_str());
        let mut dirty = inner.dirty.lock();
        if parts.main {
            dirty
                .progress
                .insert((key.clone(), done.subject_key.clone().into_boxed_str()));
        }
        if parts.wallet {
            dirty.wallets.insert(key);
        }
        inner.completions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Stops the journal writer after flushing, then writes a final checkpoint of every
    /// stream, so that a restart replays nothing (persistence.md "clean shutdown").
    ///
    /// # Errors
    /// The checkpoint's error; the journal still holds everything then.
    pub fn shutdown(&self) -> Result<(), String> {
        self.inner.journal.shutdown();
        self.checkpoint(true, true).map(|_| ())
    }
}

fn journal_config(config: &Config, data_dir: &Path) -> JournalConfig {
    JournalConfig {
        dir: data_dir.join(JOURNAL_DIR),
        durability: match config.journal.durability {
            DurabilityMode::Strict => journal::Durability::Strict,
            DurabilityMode::Relaxed => journal::Durability::Relaxed,
        },
        fsync_interval: Duration::from_millis(config.journal.fsync_interval_ms),
        segment_bytes: config.journal.segment_bytes,
    }
}

/// The journal directory of a data directory (for `memora check`).
pub fn journal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(JOURNAL_DIR)
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, OpenError> {
    codec::decode(bytes).map_err(|e| OpenError::Decode {
        what: what.to_owned(),
        message: e.to_string(),
    })
}

/// A student's progress and wallet from their checkpointed rows (lowercased subject id,
/// record) and wallet record, without the SRS part.
fn decode_student(
    player_id: &str,
    rows: Vec<(String, Vec<u8>)>,
    wallet: Option<Vec<u8>>,
) -> Result<StudentState, OpenError> {
    let mut state = StudentState::default();
    for (subject, bytes) in rows {
        let record: ProgressRecord = decode(&format!("progress {player_id}/{subject}"), &bytes)?;
        let progress = SubjectProgress::from_record(&record).map_err(|e| OpenError::Decode {
            what: format!("progress {player_id}/{subject}"),
            message: e.to_string(),
        })?;
        state.subjects.insert(subject.into_boxed_str(), progress);
    }
    if let Some(bytes) = wallet {
        let record: crate::players::wallet::WalletRecord =
            decode(&format!("wallet {player_id}"), &bytes)?;
        state.wallet = crate::players::wallet::Wallet::from_record(&record).map_err(|e| {
            OpenError::Decode {
                what: format!("wallet {player_id}"),
                message: e.to_string(),
            }
        })?;
    }
    Ok(state)
}
