//! The student's main job: read a subject's progress, complete a lesson, read the wallet
//! (progress.md, players.md "Wallet"). Decisions come from the pure `progress` and
//! `players` modules; this file orders, journals and applies them.

use std::sync::Arc;

use serde::Serialize;

use crate::content::view::{PlanView, SubjectView};
use crate::error::{ApiError, Code};
use crate::players::account::PlayerRecord;
use crate::players::streak::{self, StreakOutcome};
use crate::players::wallet::{self, WalletView};
use crate::progress::completion::{self, CompletionError, XpRules};
use crate::progress::state::SubjectProgress;
use crate::progress::status::{self, Status, Summary};
use crate::progress::tree::ProgressTree;

use super::accounts::Caller;
use super::event::LessonCompleted;
use super::idempotency::{IdemRequest, Replied};
use super::srs_ops::{Answer, LessonCompletedV2};
use super::{Engine, Event, students};
use crate::players::audit::{AuditKind, RESULT_OK};

/// The fields of `GET /api/v1/subjects/{id}/progress` before `root` (progress.md
/// "Reading progress"); `root` is appended by [`ProgressTree::write_json`].
#[derive(Serialize)]
pub struct ProgressHead<'a> {
    /// Subject id.
    pub subject_id: &'a str,
    /// The student's plan.
    pub plan_id: &'a str,
    /// passed / total × 100, 2 decimals.
    pub completion_percentage: f64,
    /// Visible lessons.
    pub total_lessons: u32,
    /// Visible passed lessons.
    pub passed_lessons: u32,
    /// XP earned in this subject.
    pub total_xp_earned: u64,
    /// First unlocked, accessible lesson in order.
    pub suggested_next_lesson_id: Option<&'a str>,
}

/// `progress` block of a completion answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProgressBrief {
    /// Visible passed lessons.
    pub passed_lessons: u32,
    /// Visible lessons.
    pub total_lessons: u32,
    /// Percentage, 2 decimals.
    pub completion_percentage: f64,
    /// Next lesson.
    pub suggested_next_lesson_id: Option<String>,
}

/// `POST /api/v1/lessons/{id}/complete` answer (progress.md).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CompletionResponse {
    /// Lesson id.
    pub lesson_id: String,
    /// Subject id.
    pub subject_id: String,
    /// First time this lesson was passed.
    pub is_first_completion: bool,
    /// Hearts beat the previous best.
    pub is_new_record: bool,
    /// XP awarded by this request.
    pub xp_earned: u32,
    /// Best hearts after this request.
    pub best_hearts: u8,
    /// Wallet XP total after this request.
    pub new_total_xp: i64,
    /// Streak update.
    pub streak: StreakOutcome,
    /// Subject summary after this request.
    pub progress: ProgressBrief,
    /// With `answers`: true when no season is active so no card was created (issue 6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srs_skipped: Option<bool>,
}

/// The student's plan view and the subject's view, or the right error.
fn enrolled_subject(
    plan: Option<&Arc<PlanView>>,
    player: &PlayerRecord,
    subject_id: &str,
) -> Result<(Arc<PlanView>, Arc<SubjectView>), ApiError> {
    let not_enrolled = || {
        ApiError::new(
            Code::NotEnrolled,
            format!("subject `{subject_id}` is not part of your plan"),
        )
    };
    let plan = match (plan, &player.plan_id) {
        (Some(plan), Some(_)) => plan.clone(),
        _ => return Err(not_enrolled()),
    };
    let subject = plan.subject(subject_id).cloned();
    Ok((plan, subject.ok_or_else(not_enrolled)?))
}

fn has_grant(player: &PlayerRecord) -> impl Fn(&str) -> bool + '_ {
    move |item: &str| player.grants.iter().any(|g| g.eq_ignore_ascii_case(item))
}

fn brief(
    view: &SubjectView,
    progress: &SubjectProgress,
    player: &PlayerRecord,
    scratch: &mut Vec<Status>,
) -> ProgressBrief {
    let Summary {
        passed_lessons,
        total_lessons,
        completion_percentage,
    } = status::summary(view, &progress.passed);
    status::compute_statuses(view, &progress.passed, scratch);
    let grant = has_grant(player);
    let next = status::suggested_next_lesson(view, scratch, |a| a.allows(&grant));
    ProgressBrief {
        passed_lessons,
        total_lessons,
        completion_percentage,
        suggested_next_lesson_id: next.map(|i| view.nodes[i as usize].id.to_string()),
    }
}

impl Engine {
    /// Renders a student's progress in a subject as JSON bytes.
    ///
    /// # Errors
    /// 404 `INVALID_SUBJECT` (unknown, or hidden in the plan), 403 `NOT_ENROLLED`.
    pub fn progress_json(&self, caller: &Caller, subject_id: &str) -> Result<Vec<u8>, ApiError> {
        let player = &caller.player;
        let catalog = self.catalog();
        let plan = player.plan_id.as_deref().and_then(|p| catalog.plan_view(p));
        let (plan, view) = match enrolled_subject(plan, player, subject_id) {
            Ok(found) => found,
            Err(e) => {
                // Unknown or hidden subjects are INVALID_SUBJECT; a real subject outside
                // the plan is NOT_ENROLLED.
                let in_plan_doc = plan_lists_subject(&catalog, player, subject_id);
                if catalog.subject(subject_id).is_none() || in_plan_doc {
                    return Err(ApiError::new(
                        Code::InvalidSubject,
                        format!("no subject `{subject_id}` in your plan"),
                    ));
                }
                return Err(e);
            }
        };
        let student = self.student(&player.id)?;
        let state = student.state.read();
        let key = view.subject_id().to_ascii_lowercase();
        let empty = SubjectProgress::default();
        let progress = state.subjects.get(key.as_str()).unwrap_or(&empty);
        let mut statuses = Vec::with_capacity(view.nodes.len());
        status::compute_statuses(&view, &progress.passed, &mut statuses);
        let grant = has_grant(player);
        let next = status::suggested_next_lesson(&view, &statuses, |a| a.allows(&grant));
        let summary = status::summary(&view, &progress.passed);
        let head = ProgressHead {
            subject_id: view.subject_id(),
            plan_id: &plan.plan_id,
            completion_percentage: summary.completion_percentage,
            total_lessons: summary.total_lessons,
            passed_lessons: summary.passed_lessons,
            total_xp_earned: progress.total_xp_earned,
            suggested_next_lesson_id: next.map(|i| &*view.nodes[i as usize].id),
        };
        let tree = ProgressTree {
            view: &view,
            statuses: &statuses,
            progress,
            grants: &grant,
        };
        // About 150 bytes per node: one allocation instead of a dozen regrowths.
        let mut out = Vec::with_capacity(view.nodes.len() * 160 + 256);
        serde_json::to_writer(&mut out, &head).map_err(ApiError::internal)?;
        // `{…head…}` → `{…head…,"root":<tree>}`
        out.pop();
        out.extend_from_slice(br#","root":"#);
        tree.write_json(&mut out);
        out.push(b'}');
        Ok(out)
    }

    /// Completes a lesson (progress.md "Completing a lesson"): checks in the spec's order,
    /// decides XP and streak, journals one event, applies it, answers.
    ///
    /// # Errors
    /// 422 `VALIDATION_FAILED` / `NO_HEARTS`, 404 `INVALID_LESSON`, 403 `NOT_ENROLLED` /
    /// `ACCESS_DENIED`, 409 `NOT_UNLOCKED`, 503 `STORAGE_UNAVAILABLE`.
    pub async fn complete_lesson(
        &self,
        caller: &Caller,
        lesson_id: &str,
        hearts: i64,
    ) -> Result<CompletionResponse, ApiError> {
        match self
            .complete_lesson_with(caller, lesson_id, hearts, &[], None)
            .await?
        {
            Replied::Fresh(answer) => Ok(answer),
            Replied::Stored { .. } => Err(ApiError::internal("stored answer without a key")),
        }
    }

    /// [`Engine::complete_lesson`] with SRS `answers` (cards created in the active
    /// season, in the same event) and an optional idempotency key (the answer stored in
    /// the same event; a stored one is returned without applying anything).
    ///
    /// # Errors
    /// As [`Engine::complete_lesson`], plus 422 `INVALID_QUESTION` /
    /// `IDEMPOTENCY_KEY_REUSED`.
    pub async fn complete_lesson_with(
        &self,
        caller: &Caller,
        lesson_id: &str,
        hearts: i64,
        answers: &[Answer],
        idem: Option<&IdemRequest>,
    ) -> Result<Replied<CompletionResponse>, ApiError> {
        let max = self.config().progress.max_hearts;
        if !(0..=i64::from(max)).contains(&hearts) {
            return Err(ApiError::field(
                "/hearts",
                format!("must be an integer from 0 to {max}"),
            ));
        }
        let hearts = hearts as u8;
        let catalog = self.catalog();
        let Some(owner) = catalog.lesson_subject(lesson_id).map(str::to_owned) else {
            return Err(ApiError::new(
                Code::InvalidLesson,
                format!("no lesson `{lesson_id}`"),
            ));
        };
        let player_id = caller.player.id.clone();
        let student = self.student(&player_id)?;
        let _order = student.write.lock().await;
        if let Some((status, body)) = self.idempotency_recheck(&student, idem)? {
            return Ok(Replied::Stored { status, body });
        }
        // Re-read the player under the order lock: grants or plan may have changed.
        let player = self.player(&player_id).ok_or_else(super::privacy::erased)?;
        let plan = player.plan_id.as_deref().and_then(|p| catalog.plan_view(p));
        let in_plan = plan_lists_subject(&catalog, &player, &owner);
        if !in_plan {
            return Err(ApiError::new(
                Code::NotEnrolled,
                format!("lesson `{lesson_id}` is not part of your plan"),
            ));
        }
        let invalid = || {
            ApiError::new(
                Code::InvalidLesson,
                format!("no lesson `{lesson_id}` in your plan"),
            )
        };
        let view = plan
            .and_then(|p| p.subject(&owner).cloned())
            .ok_or_else(invalid)?;
        let node = view.lesson_node(lesson_id).ok_or_else(invalid)?;
        let lesson = &view.nodes[node as usize];
        let grant = has_grant(&player);
        if !lesson.access.allows(&grant) {
            return Err(ApiError::new(
                Code::AccessDenied,
                format!("lesson `{lesson_id}` needs a grant your account does not have"),
            ));
        }
        let rules = XpRules {
            per_heart: self.config().progress.per_heart_xp,
            max_hearts: max,
        };
        let subject_key = view.subject_id().to_ascii_lowercase();
        let now = self.now();
        let srs = self.decide_lesson_cards(&student, &view, node, answers, now.as_millisecond())?;
        let tz = jiff::tz::TimeZone::get(&player.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        let today = streak::today_in(&tz, now);
        let mut scratch = Vec::with_capacity(view.nodes.len());
        let (decision, streak_outcome, wallet_total_xp) = {
            let state = student.state.read();
            let empty = SubjectProgress::default();
            let progress = state.subjects.get(subject_key.as_str()).unwrap_or(&empty);
            let decision =
                completion::decide_completion(&view, node, progress, hearts, &rules, &mut scratch)
                    .map_err(|e| match e {
                        CompletionError::NotUnlocked => ApiError::new(
                            Code::NotUnlocked,
                            format!(
                                "lesson `{lesson_id}` is locked: pass the lessons before it first"
                            ),
                        ),
                        CompletionError::NoHearts => ApiError::new(
                            Code::NoHearts,
                            "A lesson completed with 0 hearts does not count",
                        ),
                    })?;
            let outcome = streak::record_success(&state.wallet, today);
            let total = state.wallet.total_xp + i64::from(decision.xp_earned);
            (decision, outcome, total)
        };
        // The summary after the change, decided before it (the answer may be journaled
        // with the change, for idempotent retries).
        let progress_brief = {
            let state = student.state.read();
            let mut after = state
                .subjects
                .get(subject_key.as_str())
                .cloned()
                .unwrap_or_default();
            drop(state);
            completion::apply_completion(&mut after, &decision, &lesson.id, now.as_millisecond());
            brief(&view, &after, &player, &mut scratch)
        };
        let mut wallet_after = crate::players::wallet::Wallet::default();
        wallet::apply_streak(&mut wallet_after, &streak_outcome);
        let event = LessonCompleted {
            player_id: player_id.clone(),
            subject_key: subject_key.clone(),
            lesson_id: lesson.id.to_string(),
            at_ms: now.as_millisecond(),
            decision: decision.clone(),
            wallet_total_xp,
            streak: students::streak_of(&wallet_after),
        };
        let answer = CompletionResponse {
            lesson_id: lesson.id.to_string(),
            subject_id: view.subject_id().to_string(),
            is_first_completion: decision.is_first_completion,
            is_new_record: decision.is_new_record,
            xp_earned: decision.xp_earned,
            best_hearts: decision.best_hearts,
            new_total_xp: wallet_total_xp,
            streak: streak_outcome,
            progress: progress_brief,
            srs_skipped: srs.skipped,
        };
        let idempotency = match idem {
            Some(req) => Some(req.record(
                200,
                serde_json::to_vec(&answer).map_err(ApiError::internal)?,
                now.as_millisecond(),
            )),
            None => None,
        };
        // The original event when there is nothing of issue 6 to carry, so plain
        // completions keep their journal shape.
        let event = if srs.cards.is_empty() && idempotency.is_none() {
            Event::LessonCompleted(Box::new(event))
        } else {
            Event::LessonCompletedV2(Box::new(LessonCompletedV2 {
                completion: event,
                season: srs.season,
                cards: srs.cards,
                idempotency,
            }))
        };
        let audit = self
            .audit_record(AuditKind::LessonAttempt, RESULT_OK)
            .player(&player_id)
            .detail("lesson_id", &answer.lesson_id)
            .detail("subject_id", &answer.subject_id)
            .detail("hearts", hearts)
            .detail("xp_earned", answer.xp_earned)
            .detail("first_completion", answer.is_first_completion);
        self.commit_audited(event, vec![audit]).await?;
        Ok(Replied::Fresh(answer))
    }

    /// The wallet as it reads now (streak 0 after a missed day, `streak_at_risk`).
    ///
    /// # Errors
    /// 500 when the student's rows cannot be loaded.
    pub fn wallet(&self, caller: &Caller) -> Result<WalletView, ApiError> {
        let student = self.student(&caller.player.id)?;
        let tz =
            jiff::tz::TimeZone::get(&caller.player.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        let today = streak::today_in(&tz, self.now());
        let state = student.state.read();
        Ok(wallet::view(&state.wallet, today))
    }
}

/// Whether the player's plan document lists the subject (visible or not).
fn plan_lists_subject(
    catalog: &crate::content::catalog::Catalog,
    player: &PlayerRecord,
    subject_id: &str,
) -> bool {
    let Some(plan_id) = player.plan_id.as_deref() else {
        return false;
    };
    catalog
        .plan_subject_ids(plan_id)
        .is_some_and(|ids| ids.iter().any(|s| s.eq_ignore_ascii_case(subject_id)))
}
