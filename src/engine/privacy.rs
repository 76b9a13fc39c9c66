//! Admin player management beyond single-record edits (players.md "Privacy", api.md
//! "Admin … players"): the filtered player list, the export of everything stored about a
//! student, erasure, and the per-subject progress reset — each change one journaled
//! event carrying its audit record.
//!
//! Erasure deletes the account, its devices and sessions, and keeps progress, cards and
//! wallet only under a random anonymous id that nothing links back to the player; the
//! player's audit records are anonymised the same way (player replaced by the anonymous
//! id, device, client IP and typed email dropped).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Code, FieldProblem};
use crate::players::account::Role;
use crate::players::audit::AuditKind;
use crate::players::{streak, wallet};
use crate::progress::state::SubjectProgress;

use super::accounts::{Caller, PlayerView, rfc3339};
use super::audit_query::{AuditFilter, AuditItem};
use super::event::{PlayerErased, ProgressReset};
use super::{Engine, Event, OpenError, Parts};

/// The error of a request whose account was erased while it waited.
pub(crate) fn erased() -> ApiError {
    ApiError::new(Code::SessionEnded, "This account no longer exists")
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(Code::NotFound, format!("no player `{id}`"))
}

/// Filters of `GET /api/v1/admin/players`.
#[derive(Debug, Clone, Default)]
pub struct PlayerFilter {
    /// Only players on this plan (case-insensitive).
    pub plan_id: Option<String>,
    /// Only this grade (exact).
    pub grade: Option<String>,
    /// Only this role.
    pub role: Option<Role>,
    /// Only disabled (`true`) or enabled (`false`) players.
    pub disabled: Option<bool>,
    /// Case-insensitive substring of the email or the display name.
    pub q: Option<String>,
    /// Page size, 1–500.
    pub limit: usize,
    /// Only ids after this one (from the previous page's cursor).
    pub after: Option<String>,
}

/// A page of players, ordered by id.
#[derive(Debug, Clone, Serialize)]
pub struct PlayersPage {
    /// The players.
    pub items: Vec<PlayerView>,
    /// The last id of a full page, to pass (hex-encoded by the HTTP layer) as `cursor`.
    pub next_cursor: Option<String>,
}

/// `POST /api/v1/admin/players/{id}/progress/reset` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    /// The subject whose progress is cleared.
    pub subject_id: String,
    /// Why (1–500 characters), kept in the audit log.
    pub reason: String,
}

/// The answer of a progress reset.
#[derive(Debug, Clone, Serialize)]
pub struct ResetView {
    /// The student.
    pub player_id: String,
    /// The subject.
    pub subject_id: String,
    /// Passed lessons before the reset.
    pub passed_lessons_before: u64,
    /// Subject XP before the reset (the wallet keeps its XP).
    pub total_xp_earned_before: u64,
}

/// The answer of an erasure.
#[derive(Debug, Clone, Serialize)]
pub struct ErasedView {
    /// The erased player's former id.
    pub player_id: String,
    /// Always true.
    pub erased: bool,
    /// Sessions deleted (open or remembered).
    pub sessions_deleted: usize,
    /// Devices deleted.
    pub devices_deleted: usize,
    /// Subjects whose progress was kept anonymised.
    pub subjects_anonymised: usize,
    /// Cards kept anonymised.
    pub cards_anonymised: usize,
}

/// One subject's progress in an export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedProgress {
    /// Subject id.
    pub subject_id: String,
    /// Ids of passed lessons (`bit:N` for a bit whose lesson id is unknown).
    pub passed_lessons: Vec<String>,
    /// Best hearts per passed lesson.
    pub best_hearts: serde_json::Map<String, serde_json::Value>,
    /// XP earned in the subject.
    pub total_xp_earned: u64,
    /// Last lesson completed.
    pub last_lesson_completed: Option<String>,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

/// One card in an export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedCard {
    /// Season.
    pub season_id: String,
    /// Question.
    pub question_id: String,
    /// Card state.
    pub state: crate::srs::CardState,
    /// Learning step.
    pub step: u8,
    /// FSRS stability (days).
    pub stability: f32,
    /// FSRS difficulty.
    pub difficulty: f32,
    /// Next due (RFC 3339).
    pub due: String,
    /// Last review (RFC 3339).
    pub last_review: Option<String>,
    /// Reviews.
    pub reps: u32,
    /// Lapses.
    pub lapses: u32,
}

/// One session in an export (never its token or token hash).
#[derive(Debug, Clone, Serialize)]
pub struct ExportedSession {
    /// The device it is bound to (students).
    pub device_id: Option<String>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Ended (RFC 3339), if it ended.
    pub ended_at: Option<String>,
    /// `replaced` or `ended`.
    pub end_reason: Option<String>,
    /// Latest request since the server started (RFC 3339).
    pub last_seen: Option<String>,
}

/// Everything stored about a player (`GET /api/v1/admin/players/{id}/export`).
#[derive(Debug, Clone, Serialize)]
pub struct PlayerExport {
    /// When the export was made (RFC 3339).
    pub exported_at: String,
    /// The profile.
    pub player: PlayerView,
    /// Whether a password change is pending.
    pub must_change_password: bool,
    /// Devices with last-seen times.
    pub devices: Vec<super::admin_players::DeviceInfo>,
    /// Sessions.
    pub sessions: Vec<ExportedSession>,
    /// The wallet as it reads now.
    pub wallet: wallet::WalletView,
    /// Progress per subject.
    pub progress: Vec<ExportedProgress>,
    /// Cards of every season.
    pub cards: Vec<ExportedCard>,
    /// Audit and interaction records about the player, newest first.
    pub audit: Vec<AuditItem>,
}

fn len_problem(pointer: &str, value: &str, min: usize, max: usize) -> Option<FieldProblem> {
    let n = value.trim().chars().count();
    (n < min || n > max).then(|| FieldProblem {
        pointer: pointer.to_owned(),
        message: format!("must be {min} to {max} characters"),
    })
}

impl Engine {
    /// Players matching `filter`, ordered by id, one page.
    pub fn list_players(&self, filter: &PlayerFilter) -> PlayersPage {
        let q = filter.q.as_deref().map(str::to_lowercase);
        let accounts = self.inner().accounts.read();
        let mut matching: Vec<&Arc<crate::players::account::PlayerRecord>> = accounts
            .players()
            .filter(|p| filter.after.as_deref().is_none_or(|a| p.id.as_str() > a))
            .filter(|p| {
                filter.plan_id.as_deref().is_none_or(|want| {
                    p.plan_id
                        .as_deref()
                        .is_some_and(|id| id.eq_ignore_ascii_case(want))
                })
            })
            .filter(|p| {
                filter
                    .grade
                    .as_deref()
                    .is_none_or(|g| p.grade.as_deref() == Some(g))
            })
            .filter(|p| filter.role.is_none_or(|r| p.role == r))
            .filter(|p| filter.disabled.is_none_or(|d| p.disabled == d))
            .filter(|p| {
                q.as_deref().is_none_or(|q| {
                    p.email.contains(q) || p.display_name.to_lowercase().contains(q)
                })
            })
            .collect();
        matching.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let more = matching.len() > filter.limit;
        matching.truncate(filter.limit);
        let items: Vec<PlayerView> = matching.iter().map(|p| PlayerView::of(p)).collect();
        PlayersPage {
            next_cursor: more.then(|| items.last().map(|p| p.id.clone())).flatten(),
            items,
        }
    }

    /// Everything stored about a player: profile, devices, sessions (no token hashes),
    /// wallet, progress per subject, cards of every season and audit records.
    ///
    /// # Errors
    /// 404 `NOT_FOUND`; 500 when stored rows cannot be read.
    pub async fn export_player(&self, player_id: &str) -> Result<PlayerExport, ApiError> {
        let player = self.player(player_id).ok_or_else(|| not_found(player_id))?;
        // Records still buffered belong in the export too.
        let _ = self.flush_audit().await;
        let engine = self.clone();
        let id = player_id.to_owned();
        let audit = tokio::task::spawn_blocking(move || {
            let mut all = Vec::new();
            let mut filter = AuditFilter {
                player_id: Some(id),
                limit: 500,
                ..AuditFilter::default()
            };
            loop {
                let page = engine.audit_page_now(&filter)?;
                all.extend(page.items);
                match page.next_key {
                    Some(key) => filter.before = Some(key),
                    None => return Ok::<_, ApiError>(all),
                }
            }
        })
        .await
        .map_err(ApiError::internal)??;
        let devices = self.list_devices(player_id)?;
        let sessions = self
            .inner()
            .accounts
            .read()
            .sessions_of(player_id)
            .into_iter()
            .map(|(s, last_seen)| ExportedSession {
                device_id: s.device_id,
                created_at: rfc3339(s.created_at_ms),
                ended_at: s.ended.as_ref().map(|e| rfc3339(e.at_ms)),
                end_reason: s
                    .ended
                    .as_ref()
                    .map(|e| format!("{:?}", e.reason).to_lowercase()),
                last_seen: (last_seen > 0).then(|| rfc3339(last_seen)),
            })
            .collect();
        let student = self.student(player_id)?;
        let catalog = self.catalog();
        let tz = jiff::tz::TimeZone::get(&player.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        let today = streak::today_in(&tz, self.now());
        let questions = self.inner().srs.questions.read();
        let state = student.state.read();
        let mut progress: Vec<ExportedProgress> = state
            .subjects
            .iter()
            .map(|(key, p)| export_progress(catalog.subject(key), key, p))
            .collect();
        progress.sort_by(|a, b| a.subject_id.cmp(&b.subject_id));
        let mut cards: Vec<ExportedCard> = state
            .srs
            .queues
            .iter()
            .flat_map(|(season, queue)| {
                let questions = &questions;
                queue.iter().map(move |(k, c)| ExportedCard {
                    season_id: season.to_string(),
                    question_id: questions.name(k).to_owned(),
                    state: c.state,
                    step: c.step,
                    stability: c.stability,
                    difficulty: c.difficulty,
                    due: rfc3339(c.due_ms),
                    last_review: c.last_review_ms.map(rfc3339),
                    reps: c.reps,
                    lapses: c.lapses,
                })
            })
            .collect();
        cards.sort_by(|a, b| (&a.season_id, &a.question_id).cmp(&(&b.season_id, &b.question_id)));
        Ok(PlayerExport {
            exported_at: rfc3339(self.now().as_millisecond()),
            player: PlayerView::of(&player),
            must_change_password: player.must_change_password,
            devices,
            sessions,
            wallet: wallet::view(&state.wallet, today),
            progress,
            cards,
            audit,
        })
    }

    /// Erases a player (players.md "Privacy"): account, devices and sessions deleted at
    /// once (their token answers 401 `UNAUTHENTICATED`, their login 401
    /// `INVALID_CREDENTIALS`); progress, cards and wallet kept under a random anonymous
    /// id; audit records anonymised. A checkpoint follows at once, so the personal data
    /// also leaves the redb file (the journal segment holding the erase event is deleted
    /// once checkpoints cover it).
    ///
    /// # Errors
    /// 404 `NOT_FOUND`, 409 `CONFLICT` (one's own account, the last enabled admin), 503.
    pub async fn erase_player(&self, player_id: &str, by: &Caller) -> Result<ErasedView, ApiError> {
        if by.player.id == player_id {
            return Err(ApiError::new(
                Code::Conflict,
                "You cannot erase your own account",
            ));
        }
        if self.player(player_id).is_none() {
            return Err(not_found(player_id));
        }
        // Buffered records of the player are anonymised with the stored ones.
        let _ = self.flush_audit().await;
        let _admin = self.inner().admin_write.lock().await;
        let student = self.student(player_id)?;
        let _order = student.write.lock().await;
        let player = self.player(player_id).ok_or_else(|| not_found(player_id))?;
        if player.role == Role::Admin
            && !player.disabled
            && self.inner().accounts.read().active_admins() <= 1
        {
            return Err(ApiError::new(
                Code::Conflict,
                "This is the last enabled admin: create or enable another first",
            ));
        }
        let anon_id = format!("anon_{}", uuid::Uuid::new_v4().simple());
        let sessions_deleted = self.inner().accounts.read().sessions_of(player_id).len();
        let (subjects_anonymised, cards_anonymised) = {
            let state = student.state.read();
            (
                state.subjects.len(),
                state.srs.queues.values().map(|q| q.len()).sum::<usize>(),
            )
        };
        let audit = self
            .audit_action(AuditKind::AdminAction, &anon_id)
            .detail("action", "player_erased")
            .detail("role", format!("{:?}", player.role).to_lowercase());
        self.commit_audited(
            Event::PlayerErased(Box::new(PlayerErased {
                player_id: player_id.to_owned(),
                anon_id,
                at_ms: self.now().as_millisecond(),
            })),
            vec![audit],
        )
        .await?;
        drop(_order);
        // The admin lock is held until the erasure is checkpointed: an SRS archive batch
        // (which takes it too) reads students not in memory from redb, and must not see
        // the erased player's cards there and archive them under the erased id.
        self.purge_journal_after_erasure().await;
        drop(_admin);
        Ok(ErasedView {
            player_id: player_id.to_owned(),
            erased: true,
            sessions_deleted,
            devices_deleted: player.devices.len(),
            subjects_anonymised,
            cards_anonymised,
        })
    }

    /// Carries an erasure out on disk: the journal's active segment still holds the
    /// player's records (their email in account events, their attempts), and checkpoints
    /// delete only *closed* segments, so it could keep them until it fills (64 MiB). So:
    /// roll to a new segment and write one record into it (a storage probe event, which
    /// changes nothing), then checkpoint the progress stream. The closed segments go at
    /// the next checkpoint that covers both streams — the wallet checkpoint, within
    /// `checkpoint.wallet_interval_secs` (15 min by default). Failures are logged: the
    /// journal holds the erasure, and later checkpoints carry it out.
    async fn purge_journal_after_erasure(&self) {
        self.inner().journal.request_roll();
        let marker = Event::StorageProbe {
            at_ms: self.now().as_millisecond(),
        };
        if let Err(e) = self.commit_and_apply(marker).await {
            tracing::warn!(error = %e.detail, "journal roll after an erasure failed");
        }
        let engine = self.clone();
        match tokio::task::spawn_blocking(move || engine.checkpoint(true, false)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "checkpoint after an erasure failed"),
            Err(e) => tracing::warn!(error = %e, "checkpoint after an erasure failed"),
        }
    }

    /// Resets a student's progress in one subject (passed lessons, best hearts, subject
    /// XP); the wallet keeps its XP and streak, cards stay. Audited with the reason.
    ///
    /// # Errors
    /// 422 `VALIDATION_FAILED` (unknown subject, reason not 1–500 characters), 404
    /// `NOT_FOUND`, 503.
    pub async fn reset_progress(
        &self,
        player_id: &str,
        body: &ResetBody,
    ) -> Result<ResetView, ApiError> {
        let mut problems = Vec::new();
        let subject = self
            .catalog()
            .subject(&body.subject_id)
            .map(|s| s.id.clone());
        if subject.is_none() {
            problems.push(FieldProblem {
                pointer: "/subject_id".into(),
                message: format!("no subject `{}`", body.subject_id),
            });
        }
        problems.extend(len_problem("/reason", &body.reason, 1, 500));
        let Some(subject_id) = subject.filter(|_| problems.is_empty()) else {
            return Err(ApiError::validation(problems));
        };
        if self.player(player_id).is_none() {
            return Err(not_found(player_id));
        }
        let student = self.student(player_id)?;
        let _order = student.write.lock().await;
        if self.player(player_id).is_none() {
            return Err(not_found(player_id));
        }
        let subject_key = subject_id.to_ascii_lowercase();
        let (passed, xp) = student
            .state
            .read()
            .subjects
            .get(subject_key.as_str())
            .map_or((0, 0), |p| (p.passed.len(), p.total_xp_earned));
        let audit = self
            .audit_action(AuditKind::AdminAction, player_id)
            .detail("action", "progress_reset")
            .detail("subject_id", &subject_id)
            .detail("reason", body.reason.trim())
            .detail("passed_lessons_before", passed)
            .detail("total_xp_earned_before", xp);
        self.commit_audited(
            Event::ProgressReset(Box::new(ProgressReset {
                player_id: player_id.to_owned(),
                subject_key,
                at_ms: self.now().as_millisecond(),
            })),
            vec![audit],
        )
        .await?;
        Ok(ResetView {
            player_id: player_id.to_owned(),
            subject_id,
            passed_lessons_before: passed,
            total_xp_earned_before: xp,
        })
    }

    /// Applies a progress reset (main stream): the subject's state becomes empty.
    pub(super) fn apply_progress_reset(&self, reset: &ProgressReset) -> Result<(), OpenError> {
        let inner = self.inner();
        let student = match inner.students.get(&reset.player_id) {
            Some(s) => s,
            None => self.load_student(&reset.player_id)?,
        };
        student.state.write().subjects.insert(
            reset.subject_key.clone().into_boxed_str(),
            SubjectProgress {
                updated_at_ms: reset.at_ms,
                ..SubjectProgress::default()
            },
        );
        inner.dirty.lock().progress.insert((
            Arc::from(reset.player_id.as_str()),
            reset.subject_key.clone().into_boxed_str(),
        ));
        Ok(())
    }

    /// Applies an erasure (live and replay). Main stream: the account and its sessions
    /// leave memory, progress and cards move to the anonymous id, the stored rows and
    /// audit records are marked for the next checkpoint. Wallet stream: the wallet moves
    /// to the anonymous id. Either way the student leaves memory, so nothing is ever
    /// written under the erased id again.
    pub(super) fn apply_player_erased(
        &self,
        erased: &PlayerErased,
        parts: Parts,
    ) -> Result<(), OpenError> {
        if !parts.main && !parts.wallet {
            return Ok(());
        }
        if parts.main {
            self.forget_group_member(&erased.player_id);
        }
        let inner = self.inner();
        let old = match inner.students.get(&erased.player_id) {
            Some(s) => s,
            None => self.load_student(&erased.player_id)?,
        };
        let (subjects, queues, wallet) = {
            let mut state = old.state.write();
            let subjects = if parts.main {
                std::mem::take(&mut state.subjects)
            } else {
                Default::default()
            };
            let queues = if parts.main {
                std::mem::take(&mut state.srs.queues)
            } else {
                Default::default()
            };
            let wallet = parts.wallet.then(|| std::mem::take(&mut state.wallet));
            (subjects, queues, wallet)
        };
        inner.students.remove(&erased.player_id);
        let anon = match inner.students.get(&erased.anon_id) {
            Some(s) => s,
            None => self.load_student(&erased.anon_id)?,
        };
        let key: Arc<str> = Arc::from(erased.anon_id.as_str());
        let mut mirror_gone = Vec::new();
        {
            use crate::persist::mirror::log;
            let mut state = anon.state.write();
            let mut dirty = inner.dirty.lock();
            if parts.main {
                mirror_gone.push(log::player_key(&erased.player_id));
                mirror_gone.push(log::wallet_key(&erased.player_id));
                // Live card rows under the erased id go, archive rows move to `anon_id`.
                mirror_gone.push(log::cards_rekeyed_key(&erased.player_id, &erased.anon_id));
                let mut srs_dirty = inner.srs.dirty.lock();
                for (subject, progress) in subjects {
                    mirror_gone.push(log::progress_key(&erased.player_id, &subject));
                    dirty.progress.insert((key.clone(), subject.clone()));
                    state.subjects.insert(subject, progress);
                }
                for (season, queue) in queues {
                    for (question, _) in queue.iter() {
                        srs_dirty
                            .cards
                            .insert((key.clone(), season.clone(), question));
                    }
                    state.srs.queues.insert(season, queue);
                }
            }
            if let Some(wallet) = wallet
                && wallet != crate::players::wallet::Wallet::default()
            {
                state.wallet = wallet;
                dirty.wallets.insert(key.clone());
            }
        }
        if parts.main {
            let hashes = inner.accounts.write().remove_player(&erased.player_id);
            let mut dirty = inner.dirty.lock();
            dirty.sessions.extend(hashes);
            dirty.players.remove(&erased.player_id);
            drop(dirty);
            self.apply_audit_erase(&erased.player_id, &erased.anon_id, mirror_gone);
        }
        Ok(())
    }
}

fn export_progress(
    record: Option<&crate::content::catalog::SubjectRecord>,
    key: &str,
    progress: &SubjectProgress,
) -> ExportedProgress {
    let name_of = |bit: u32| -> String {
        record
            .and_then(|r| r.bit_indexes.iter().find(|(_, b)| *b == bit))
            .map_or_else(|| format!("bit:{bit}"), |(id, _)| id.clone())
    };
    ExportedProgress {
        subject_id: record.map_or_else(|| key.to_owned(), |r| r.id.clone()),
        passed_lessons: progress.passed.iter().map(name_of).collect(),
        best_hearts: progress
            .best_hearts
            .iter()
            .map(|(bit, hearts)| (name_of(bit), serde_json::Value::from(hearts)))
            .collect(),
        total_xp_earned: progress.total_xp_earned,
        last_lesson_completed: progress.last_lesson_completed.clone(),
        updated_at: rfc3339(progress.updated_at_ms),
    }
}
