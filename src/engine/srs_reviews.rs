//! Review sessions (srs.md "Review sessions"): what is due, answering due (or early)
//! cards with XP and the streak in one event, and the admin's full card listing.
//!
//! A card is listed only while its question is visible in the student's plan and its
//! lesson accessible with the student's grants; subject, topic and lesson are resolved
//! from the current curriculum, never stored with the card.

use std::sync::Arc;

use serde::Serialize;

use crate::content::view::{PlanView, SubjectView};
use crate::error::{ApiError, Code, FieldProblem};
use crate::players::account::PlayerRecord;
use crate::players::streak::{self, StreakOutcome};
use crate::players::wallet;
use crate::srs::{Card, CardState, QuestionKey};

use super::accounts::{Caller, rfc3339};
use super::idempotency::{IdemRequest, Replied};
use super::srs_ops::{Answer, CardWrite, ReviewsSubmitted, invalid_questions, on_seconds};
use super::{Engine, Event, students};
use crate::players::audit::{AuditKind, RESULT_OK};

/// XP per correct answer on a due card.
pub const XP_PER_CORRECT: i64 = 10;
/// XP per combo step.
pub const XP_PER_COMBO: i64 = 2;

/// Where a question sits in a student's plan.
struct Place<'a> {
    subject: &'a SubjectView,
    lesson: u32,
}

impl Place<'_> {
    fn ids(&self) -> (&str, &str, &str) {
        let lesson = self.subject.node(self.lesson);
        let topic = self.subject.node(lesson.parent);
        (self.subject.subject_id(), &topic.id, &lesson.id)
    }
}

/// The visible, accessible place of `question` (lowercased) in `plan`, optionally only
/// in `subject`.
fn place<'a>(
    plan: Option<&'a PlanView>,
    player: &PlayerRecord,
    subject: Option<&'a SubjectView>,
    question: &str,
) -> Option<Place<'a>> {
    let found = match subject {
        Some(s) => s.question_node(question).map(|n| (s, n)),
        None => plan?
            .subjects
            .iter()
            .find_map(|s| s.question_node(question).map(|n| (&**s, n))),
    }?;
    let (subject, lesson) = found;
    let grant = |item: &str| player.grants.iter().any(|g| g.eq_ignore_ascii_case(item));
    subject
        .node(lesson)
        .access
        .allows(grant)
        .then_some(Place { subject, lesson })
}

/// One item of `GET /api/v1/reviews/due`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DueItem {
    /// Question id.
    pub question_id: String,
    /// Lesson holding it.
    pub lesson_id: String,
    /// Its topic.
    pub topic_id: String,
    /// Its subject.
    pub subject_id: String,
    /// Card state.
    pub state: CardState,
    /// RFC 3339.
    pub due: String,
    /// Days.
    pub stability: f32,
    /// 1–10.
    pub difficulty: f32,
    /// Reviews.
    pub reps: u32,
    /// Lapses.
    pub lapses: u32,
}

/// `GET /api/v1/reviews/due` answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DueAnswer {
    /// The active season.
    pub season: String,
    /// Degraded mode (srs.md); always false until degraded mode exists.
    pub is_degraded: bool,
    /// Every listable due card matching the filter.
    pub total_due: usize,
    /// At most `limit`, by (due, question id).
    pub items: Vec<DueItem>,
}

/// One item of a review answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReviewItem {
    /// Question id.
    pub question_id: String,
    /// New state.
    pub state: CardState,
    /// Next due, RFC 3339.
    pub due: String,
    /// Whole days from now to due.
    pub interval_days: i64,
    /// New stability.
    pub stability: f32,
    /// New difficulty.
    pub difficulty: f32,
}

/// `POST /api/v1/reviews` answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReviewAnswer {
    /// Responses processed.
    pub processed: usize,
    /// XP earned.
    pub xp_earned: i64,
    /// Wallet total after.
    pub new_total_xp: i64,
    /// Streak update.
    pub streak: StreakOutcome,
    /// Updated cards in request order.
    pub items: Vec<ReviewItem>,
}

/// One card of the admin listing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AdminCard {
    /// Question id.
    pub question_id: String,
    /// Resolved from the player's plan; null when not visible there.
    pub subject_id: Option<String>,
    /// Resolved topic.
    pub topic_id: Option<String>,
    /// Resolved lesson.
    pub lesson_id: Option<String>,
    /// State.
    pub state: CardState,
    /// Learning/relearning step.
    pub step: u8,
    /// Stability.
    pub stability: f32,
    /// Difficulty.
    pub difficulty: f32,
    /// Next due.
    pub due: String,
    /// Last review.
    pub last_review: Option<String>,
    /// Reviews.
    pub reps: u32,
    /// Lapses.
    pub lapses: u32,
}

/// `GET /api/v1/admin/players/{id}/cards` filters.
#[derive(Debug, Clone, Default)]
pub struct CardFilter {
    /// Season (default: the active one).
    pub season_id: Option<String>,
    /// Only cards of this subject (as resolved).
    pub subject_id: Option<String>,
    /// Only cards in this state.
    pub state: Option<CardState>,
    /// Only cards due at now.
    pub due_only: bool,
    /// Page size 1–500 (default 50).
    pub limit: usize,
    /// Question id after which to continue.
    pub after: Option<String>,
}

/// `GET /api/v1/admin/players/{id}/cards` answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CardsPage {
    /// The player.
    pub player_id: String,
    /// The season listed.
    pub season: String,
    /// Cards by question id.
    pub items: Vec<AdminCard>,
    /// The last question id of a full page, to pass as `cursor`.
    pub next_cursor: Option<String>,
}

fn no_active_season() -> ApiError {
    ApiError::new(
        Code::NoActiveSeason,
        "No season is active: an administrator must activate one",
    )
}

impl Engine {
    /// The student's due cards (srs.md): listable, matching the filters, by (due,
    /// question id), at most `limit` (1–50), with the total count.
    ///
    /// # Errors
    /// 409 `NO_ACTIVE_SEASON`, 404 `INVALID_SUBJECT` (subject not in the plan), 500.
    pub fn reviews_due(
        &self,
        caller: &Caller,
        subject_id: Option<&str>,
        topic_id: Option<&str>,
        limit: usize,
    ) -> Result<DueAnswer, ApiError> {
        let season = self.active_season().ok_or_else(no_active_season)?;
        let player = &caller.player;
        let catalog = self.catalog();
        let plan = player
            .plan_id
            .as_deref()
            .and_then(|p| catalog.plan_view(p))
            .map(|p| &**p);
        let subject = match subject_id {
            Some(id) => Some(&**plan.and_then(|p| p.subject(id)).ok_or_else(|| {
                ApiError::new(
                    Code::InvalidSubject,
                    format!("no subject `{id}` in your plan"),
                )
            })?),
            None => None,
        };
        let student = self.student(&player.id)?;
        let questions = self.inner().srs.questions.read();
        let state = student.state.read();
        let now_ms = self.now().as_millisecond();
        let empty = crate::srs::DueQueue::new();
        let queue = state.srs.queues.get(season.id.as_str()).unwrap_or(&empty);
        let listable = |key: QuestionKey| {
            place(plan, player, subject, questions.name(key))
                .is_some_and(|p| topic_id.is_none_or(|t| p.ids().1.eq_ignore_ascii_case(t)))
        };
        let report = queue.due(now_ms, listable, limit, |a, b| {
            questions.name(a).cmp(questions.name(b))
        });
        let items = report
            .items
            .iter()
            .filter_map(|(key, card)| {
                let name = questions.name(*key);
                let p = place(plan, player, subject, name)?;
                let (subject_id, topic_id, lesson_id) = p.ids();
                Some(DueItem {
                    question_id: name.to_owned(),
                    lesson_id: lesson_id.to_owned(),
                    topic_id: topic_id.to_owned(),
                    subject_id: subject_id.to_owned(),
                    state: card.state,
                    due: rfc3339(card.due_ms),
                    stability: card.stability,
                    difficulty: card.difficulty,
                    reps: card.reps,
                    lapses: card.lapses,
                })
            })
            .collect();
        Ok(DueAnswer {
            season: season.id,
            is_degraded: self.is_degraded(),
            total_due: report.total_due,
            items,
        })
    }

    /// Answers review cards (srs.md): every question must have a listable card in the
    /// active season; each card is rescheduled at the server's now; XP counts correct
    /// answers on cards that were due, plus the combo (≤ that count); XP and streak go
    /// to the wallet in the same event.
    ///
    /// # Errors
    /// 409 `NO_ACTIVE_SEASON`, 422 `INVALID_QUESTION` / `VALIDATION_FAILED` /
    /// `IDEMPOTENCY_KEY_REUSED`, 503 `STORAGE_UNAVAILABLE`.
    pub async fn submit_reviews(
        &self,
        caller: &Caller,
        responses: &[Answer],
        combo: i64,
        idem: Option<&IdemRequest>,
    ) -> Result<Replied<ReviewAnswer>, ApiError> {
        let season = self.active_season().ok_or_else(no_active_season)?;
        let player_id = caller.player.id.clone();
        let student = self.student(&player_id)?;
        let _order = student.write.lock().await;
        if let Some((status, body)) = self.idempotency_recheck(&student, idem)? {
            return Ok(Replied::Stored { status, body });
        }
        let player = self.player(&player_id).ok_or_else(super::privacy::erased)?;
        let catalog = self.catalog();
        let plan = player
            .plan_id
            .as_deref()
            .and_then(|p| catalog.plan_view(p))
            .map(|p| &**p);
        let now = self.now();
        let now_ms = now.as_millisecond();
        let tz = jiff::tz::TimeZone::get(&player.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        let scheduler = &self.inner().srs.scheduler;
        let (writes, items, correct, streak_outcome, total_before) = {
            let questions = self.inner().srs.questions.read();
            let state = student.state.read();
            let queue = state.srs.queues.get(season.id.as_str());
            let mut problems = Vec::new();
            let mut writes = Vec::with_capacity(responses.len());
            let mut items = Vec::with_capacity(responses.len());
            let mut correct = 0i64;
            for (i, r) in responses.iter().enumerate() {
                let card = questions
                    .key(&r.question_id)
                    .and_then(|k| queue.and_then(|q| q.get(k)))
                    .filter(|_| place(plan, &player, None, &r.question_id).is_some());
                let Some(card) = card else {
                    problems.push(FieldProblem {
                        pointer: format!("/responses/{i}/question_id"),
                        message: format!("no card for `{}` to review", r.question_id),
                    });
                    continue;
                };
                if card.due_ms <= now_ms && r.rating.is_recalled() {
                    correct += 1;
                }
                let next: Card =
                    on_seconds(scheduler.review(Some(&card), r.rating, now_ms, &r.question_id));
                items.push(ReviewItem {
                    question_id: r.question_id.clone(),
                    state: next.state,
                    due: rfc3339(next.due_ms),
                    interval_days: next.interval_days(),
                    stability: next.stability,
                    difficulty: next.difficulty,
                });
                writes.push(CardWrite {
                    question_id: r.question_id.clone(),
                    card: next,
                });
            }
            if !problems.is_empty() {
                return Err(invalid_questions(problems));
            }
            if combo > correct {
                return Err(ApiError::field(
                    "/combo",
                    format!(
                        "must be at most the number of correct answers on due cards ({correct})"
                    ),
                ));
            }
            let today = streak::today_in(&tz, now);
            let outcome = if correct > 0 {
                streak::record_success(&state.wallet, today)
            } else {
                streak::no_update(&state.wallet)
            };
            (writes, items, correct, outcome, state.wallet.total_xp)
        };
        let xp_earned = correct * XP_PER_CORRECT + combo * XP_PER_COMBO;
        let new_total_xp = total_before + xp_earned;
        let streak_after = {
            let state = student.state.read();
            let mut w = state.wallet.clone();
            wallet::apply_streak(&mut w, &streak_outcome);
            students::streak_of(&w)
        };
        let answer = ReviewAnswer {
            processed: writes.len(),
            xp_earned,
            new_total_xp,
            streak: streak_outcome,
            items,
        };
        let idempotency = match idem {
            Some(req) => Some(req.record(
                200,
                serde_json::to_vec(&answer).map_err(ApiError::internal)?,
                now_ms,
            )),
            None => None,
        };
        let audit = responses
            .iter()
            .zip(&answer.items)
            .map(|(r, item)| {
                self.audit_record(AuditKind::ReviewAnswer, RESULT_OK)
                    .player(&player_id)
                    .detail("question_id", &r.question_id)
                    .detail("rating", format!("{:?}", r.rating).to_lowercase())
                    .detail("state_after", format!("{:?}", item.state).to_lowercase())
                    .detail("due", &item.due)
            })
            .collect();
        let event = ReviewsSubmitted {
            player_id,
            season: season.id,
            at_ms: now_ms,
            cards: writes,
            wallet_total_xp: new_total_xp,
            streak: streak_after,
            idempotency,
        };
        self.commit_audited(Event::ReviewsSubmitted(Box::new(event)), audit)
            .await?;
        Ok(Replied::Fresh(answer))
    }

    /// A player's cards with their full state (srs.md "Review history import"), by
    /// question id, paginated.
    ///
    /// # Errors
    /// 404 `NOT_FOUND` (player or season), 409 `NO_ACTIVE_SEASON` when no season is
    /// given and none is active, 500.
    pub fn player_cards(
        &self,
        player_id: &str,
        filter: &CardFilter,
    ) -> Result<CardsPage, ApiError> {
        let player = self
            .player(player_id)
            .ok_or_else(|| ApiError::new(Code::NotFound, format!("no player `{player_id}`")))?;
        let season = match &filter.season_id {
            Some(id) => self.season(id)?,
            None => self.active_season().ok_or_else(no_active_season)?,
        };
        let catalog = self.catalog();
        let plan: Option<Arc<PlanView>> = player
            .plan_id
            .as_deref()
            .and_then(|p| catalog.plan_view(p))
            .cloned();
        let student = self.student(player_id)?;
        let questions = self.inner().srs.questions.read();
        let state = student.state.read();
        let now_ms = self.now().as_millisecond();
        let mut cards: Vec<(&str, Card)> = state
            .srs
            .queues
            .get(season.id.as_str())
            .map(|q| q.iter().map(|(k, c)| (questions.name(k), c)).collect())
            .unwrap_or_default();
        cards.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut items = Vec::new();
        let mut more = false;
        for (name, card) in cards {
            if filter.after.as_deref().is_some_and(|after| name <= after)
                || filter.state.is_some_and(|s| s != card.state)
                || (filter.due_only && card.due_ms > now_ms)
            {
                continue;
            }
            let found = plan
                .as_deref()
                .and_then(|p| {
                    p.subjects
                        .iter()
                        .find_map(|s| s.question_node(name).map(|n| (&**s, n)))
                })
                .map(|(subject, lesson)| Place { subject, lesson });
            let ids = found.as_ref().map(Place::ids);
            let wanted = filter
                .subject_id
                .as_deref()
                .is_none_or(|want| ids.is_some_and(|(s, _, _)| s.eq_ignore_ascii_case(want)));
            if !wanted {
                continue;
            }
            if items.len() == filter.limit {
                more = true;
                break;
            }
            items.push(AdminCard {
                question_id: name.to_owned(),
                subject_id: ids.map(|i| i.0.to_owned()),
                topic_id: ids.map(|i| i.1.to_owned()),
                lesson_id: ids.map(|i| i.2.to_owned()),
                state: card.state,
                step: card.step,
                stability: card.stability,
                difficulty: card.difficulty,
                due: rfc3339(card.due_ms),
                last_review: card.last_review_ms.map(rfc3339),
                reps: card.reps,
                lapses: card.lapses,
            });
        }
        let next_cursor = more
            .then(|| items.last().map(|c: &AdminCard| c.question_id.clone()))
            .flatten();
        Ok(CardsPage {
            player_id: player_id.to_owned(),
            season: season.id,
            items,
            next_cursor,
        })
    }
}
