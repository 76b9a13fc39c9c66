//! SRS in the engine (srs.md): the installation-wide state (seasons, the question
//! interner, the scheduler, dirty marks), the per-student cards (one [`DueQueue`] per
//! season), the cards a lesson completion creates, and how SRS events are applied,
//! lazily loaded and checkpointed. Review sessions are in `srs_reviews.rs`.
//!
//! Events carry the decided card states (absolute, [`CardWrite`]), so replay never runs
//! the scheduler. Question ids are lowercased (as the curriculum index keeps them) and
//! interned per installation to [`QuestionKey`]s in memory only; on disk and in events
//! they are strings.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::content::view::SubjectView;
use crate::error::{ApiError, Code, FieldProblem};
use crate::persist::codec;
use crate::persist::store::Batch;
use crate::srs::{Card, DueQueue, QuestionKey, Rating, Scheduler, SchedulerConfig};

use super::event::{LessonCompleted, StreakState};
use super::idempotency::IdemRecord;
use super::seasons::{SeasonRecord, Seasons};
use super::students::{Student, StudentState};
use super::{Engine, OpenError, Parts, decode, students};

/// Question ids interned to numbers, per installation (memory only).
#[derive(Debug, Default)]
pub struct Interner {
    keys: HashMap<Arc<str>, QuestionKey>,
    names: Vec<Arc<str>>,
}

impl Interner {
    /// The key of `id` (lowercased), if interned.
    pub fn key(&self, id: &str) -> Option<QuestionKey> {
        self.keys.get(id).copied()
    }

    /// The key of `id` (lowercased), interning it on first use.
    pub fn intern(&mut self, id: &str) -> QuestionKey {
        if let Some(k) = self.keys.get(id) {
            return *k;
        }
        let key = QuestionKey::try_from(self.names.len()).unwrap_or(QuestionKey::MAX);
        let name: Arc<str> = Arc::from(id);
        self.names.push(name.clone());
        self.keys.insert(name, key);
        key
    }

    /// The id of `key`.
    pub fn name(&self, key: QuestionKey) -> &str {
        self.names.get(key as usize).map_or("", |n| n)
    }
}

/// What the next checkpoint must write for SRS.
#[derive(Debug, Default)]
pub(crate) struct SrsDirty {
    pub seasons: bool,
    /// (player, season, question).
    pub cards: HashSet<(Arc<str>, Box<str>, QuestionKey)>,
    /// (player, scope).
    pub idempotency: HashSet<(Arc<str>, Box<str>)>,
}

/// The installation-wide SRS state.
#[derive(Debug)]
pub(crate) struct SrsState {
    pub seasons: RwLock<Seasons>,
    pub questions: RwLock<Interner>,
    pub scheduler: Scheduler,
    pub dirty: Mutex<SrsDirty>,
}

impl SrsState {
    /// Empty state with the default scheduler.
    pub fn new() -> SrsState {
        SrsState {
            seasons: RwLock::new(Seasons::default()),
            questions: RwLock::new(Interner::default()),
            scheduler: Scheduler::new(SchedulerConfig::default())
                .unwrap_or_else(|e| unreachable!("the default scheduler settings are valid: {e}")),
            dirty: Mutex::new(SrsDirty::default()),
        }
    }
}

/// One student's SRS state: cards per season, stored idempotent answers, and the
/// idempotency scopes currently in flight.
#[derive(Debug, Default)]
pub struct StudentSrs {
    /// Cards per season id.
    pub queues: HashMap<Box<str>, DueQueue>,
    /// Stored first answers by scope.
    pub idempotency: HashMap<Box<str>, IdemRecord>,
    /// Scopes of requests being processed.
    pub in_flight: HashSet<Box<str>>,
}

/// A decided card state, as journaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardWrite {
    /// Lowercased question id.
    pub question_id: String,
    /// The card after the answer (times on whole seconds).
    pub card: Card,
}

/// A lesson completion with the cards its answers created and the idempotency record
/// (replaces [`LessonCompleted`] when either is present; bincode is positional, so the
/// old variant keeps its shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LessonCompletedV2 {
    /// The completion itself.
    pub completion: LessonCompleted,
    /// The season the cards belong to (the active one), if any.
    pub season: Option<String>,
    /// Cards created by the answers.
    pub cards: Vec<CardWrite>,
    /// The stored answer of an idempotent request.
    pub idempotency: Option<IdemRecord>,
}

/// A review session: updated cards, wallet XP and streak in one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewsSubmitted {
    /// The student.
    pub player_id: String,
    /// The season.
    pub season: String,
    /// When, unix ms.
    pub at_ms: i64,
    /// The updated cards.
    pub cards: Vec<CardWrite>,
    /// Wallet XP total after the event.
    pub wallet_total_xp: i64,
    /// Streak after the event.
    pub streak: StreakState,
    /// The stored answer of an idempotent request.
    pub idempotency: Option<IdemRecord>,
}

/// One answer as sent: `{question_id, rating}` or `{question_id, is_correct,
/// response_time_ms}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerInput {
    /// The question.
    pub question_id: String,
    /// 1–4.
    #[serde(default)]
    pub rating: Option<i64>,
    /// Legacy form.
    #[serde(default)]
    pub is_correct: Option<bool>,
    /// Legacy form, milliseconds.
    #[serde(default)]
    pub response_time_ms: Option<i64>,
}

/// A validated answer: lowercased question id and rating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Lowercased question id.
    pub question_id: String,
    /// The rating.
    pub rating: Rating,
}

/// Validates answers' shapes (every problem at once); `pointer` is the array's JSON
/// pointer. A question may appear once.
///
/// # Errors
/// 422 `VALIDATION_FAILED`.
pub fn parse_answers(items: &[AnswerInput], pointer: &str) -> Result<Vec<Answer>, ApiError> {
    let mut problems = Vec::new();
    let mut out = Vec::with_capacity(items.len());
    let mut seen = HashSet::new();
    for (i, a) in items.iter().enumerate() {
        let at = |field: &str, message: &str| FieldProblem {
            pointer: format!("{pointer}/{i}{field}"),
            message: message.to_owned(),
        };
        let rating = match (a.rating, a.is_correct, a.response_time_ms) {
            (Some(r), None, None) => {
                match u8::try_from(r).ok().and_then(|r| Rating::try_from(r).ok()) {
                    Some(r) => Some(r),
                    None => {
                        problems.push(at(
                            "/rating",
                            "must be 1 (again), 2 (hard), 3 (good) or 4 (easy)",
                        ));
                        None
                    }
                }
            }
            (None, Some(ok), Some(ms)) if ms >= 0 => Some(Rating::from_legacy(ok, ms as u64)),
            (None, Some(_), Some(_)) => {
                problems.push(at("/response_time_ms", "must not be negative"));
                None
            }
            _ => {
                problems.push(at(
                    "",
                    "send either `rating` or both `is_correct` and `response_time_ms`",
                ));
                None
            }
        };
        let question_id = a.question_id.to_ascii_lowercase();
        if !seen.insert(question_id.clone()) {
            problems.push(at("/question_id", "a question may appear once per request"));
        }
        if let Some(rating) = rating {
            out.push(Answer {
                question_id,
                rating,
            });
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(ApiError::validation(problems))
    }
}

/// 422 `INVALID_QUESTION` listing the offending answers.
pub(crate) fn invalid_questions(problems: Vec<FieldProblem>) -> ApiError {
    ApiError {
        errors: problems,
        ..ApiError::new(
            Code::InvalidQuestion,
            "Some questions cannot be answered here (see `errors`)",
        )
    }
}

/// A card's times floored to whole seconds, as the due queue stores them, so that what
/// is journaled, answered and read back agree.
pub(crate) fn on_seconds(mut card: Card) -> Card {
    card.due_ms = card.due_ms.div_euclid(1000) * 1000;
    card.last_review_ms = card.last_review_ms.map(|t| t.div_euclid(1000) * 1000);
    card
}

/// The SRS part of a lesson completion.
#[derive(Debug, Default)]
pub(crate) struct LessonCards {
    pub season: Option<String>,
    pub cards: Vec<CardWrite>,
    /// `Some(true)` when answers were sent but no season is active.
    pub skipped: Option<bool>,
}

impl Engine {
    /// Decides the cards a completion's `answers` create: each must be one of the
    /// lesson's own questions (at `node` of `view`); questions that already have a card
    /// in the active season keep it. Without an active season nothing is created.
    ///
    /// # Errors
    /// 422 `INVALID_QUESTION`.
    pub(crate) fn decide_lesson_cards(
        &self,
        student: &Student,
        view: &SubjectView,
        node: u32,
        answers: &[Answer],
        now_ms: i64,
    ) -> Result<LessonCards, ApiError> {
        if answers.is_empty() {
            return Ok(LessonCards::default());
        }
        let problems: Vec<FieldProblem> = answers
            .iter()
            .enumerate()
            .filter(|(_, a)| view.question_node(&a.question_id) != Some(node))
            .map(|(i, a)| FieldProblem {
                pointer: format!("/answers/{i}/question_id"),
                message: format!("`{}` is not a question of this lesson", a.question_id),
            })
            .collect();
        if !problems.is_empty() {
            return Err(invalid_questions(problems));
        }
        let Some(season) = self.active_season() else {
            return Ok(LessonCards {
                skipped: Some(true),
                ..LessonCards::default()
            });
        };
        let srs = &self.inner().srs;
        let questions = srs.questions.read();
        let state = student.state.read();
        let queue = state.srs.queues.get(season.id.as_str());
        let cards = answers
            .iter()
            .filter(|a| {
                let existing = questions
                    .key(&a.question_id)
                    .and_then(|k| queue.and_then(|q| q.get(k)));
                existing.is_none()
            })
            .map(|a| CardWrite {
                question_id: a.question_id.clone(),
                card: on_seconds(srs.scheduler.review(None, a.rating, now_ms, &a.question_id)),
            })
            .collect();
        Ok(LessonCards {
            season: Some(season.id),
            cards,
            skipped: Some(false),
        })
    }

    /// Applies card writes and an idempotency record of one student (main stream).
    pub(super) fn apply_srs_writes(
        &self,
        player_id: &str,
        season: Option<&str>,
        cards: &[CardWrite],
        idempotency: Option<&IdemRecord>,
    ) -> Result<(), OpenError> {
        if cards.is_empty() && idempotency.is_none() {
            return Ok(());
        }
        let srs = &self.inner().srs;
        // Intern before taking the student's lock (lock order: never both at once).
        let keys: Vec<QuestionKey> = {
            let mut questions = srs.questions.write();
            cards
                .iter()
                .map(|c| questions.intern(&c.question_id))
                .collect()
        };
        let student = self.student_for_replay(player_id)?;
        let player: Arc<str> = Arc::from(player_id);
        let mut state = student.state.write();
        if let Some(season) = season.filter(|_| !cards.is_empty()) {
            let queue = state.srs.queues.entry(season.into()).or_default();
            for (c, key) in cards.iter().zip(&keys) {
                queue.upsert(*key, &c.card);
            }
            let mut dirty = srs.dirty.lock();
            for key in &keys {
                dirty.cards.insert((player.clone(), season.into(), *key));
            }
        }
        if let Some(record) = idempotency {
            self.apply_idempotency(&player, &mut state, record);
        }
        Ok(())
    }

    /// Applies a durable [`ReviewsSubmitted`].
    pub(super) fn apply_reviews(
        &self,
        r: &ReviewsSubmitted,
        parts: Parts,
    ) -> Result<(), OpenError> {
        if parts.main {
            self.apply_srs_writes(
                &r.player_id,
                Some(&r.season),
                &r.cards,
                r.idempotency.as_ref(),
            )?;
        }
        if parts.wallet {
            let student = self.student_for_replay(&r.player_id)?;
            let mut state = student.state.write();
            state.wallet.total_xp = r.wallet_total_xp;
            students::set_streak(&mut state.wallet, &r.streak);
            state.wallet.last_played_at_ms = Some(r.at_ms);
            drop(state);
            self.inner()
                .dirty
                .lock()
                .wallets
                .insert(Arc::from(r.player_id.as_str()));
        }
        Ok(())
    }

    fn student_for_replay(&self, player_id: &str) -> Result<Arc<Student>, OpenError> {
        match self.inner().students.get(player_id) {
            Some(s) => Ok(s),
            None => self.load_student(player_id),
        }
    }

    /// Loads a student's checkpointed cards and idempotency records into `state`.
    pub(super) fn load_student_srs(
        &self,
        player_id: &str,
        state: &mut StudentState,
    ) -> Result<(), OpenError> {
        let (cards, records) = self.inner().store.student_srs(player_id)?;
        let mut by_season: HashMap<String, Vec<(QuestionKey, Card)>> = HashMap::new();
        {
            let mut questions = self.inner().srs.questions.write();
            for (season, question, bytes) in cards {
                let card: Card = decode(&format!("card {player_id}/{season}/{question}"), &bytes)?;
                by_season
                    .entry(season)
                    .or_default()
                    .push((questions.intern(&question), card));
            }
        }
        for (season, cards) in by_season {
            state
                .srs
                .queues
                .insert(season.into_boxed_str(), DueQueue::from_cards(cards));
        }
        for (scope, bytes) in records {
            let record: IdemRecord = decode(&format!("idempotency {player_id}"), &bytes)?;
            state.srs.idempotency.insert(scope.into_boxed_str(), record);
        }
        Ok(())
    }

    /// Loads the seasons at start.
    pub(super) fn load_seasons(&self) -> Result<(), OpenError> {
        let mut seasons = self.inner().srs.seasons.write();
        for (id, bytes) in self.inner().store.seasons()? {
            let record: SeasonRecord = decode(&format!("season {id}"), &bytes)?;
            seasons.put(record);
        }
        Ok(())
    }

    /// Takes the SRS dirty marks (checkpoint step 2, progress stream).
    pub(super) fn take_srs_dirty(&self) -> SrsDirty {
        std::mem::take(&mut *self.inner().srs.dirty.lock())
    }

    /// Puts taken marks back after a failed checkpoint.
    pub(super) fn restore_srs_dirty(&self, taken: SrsDirty) {
        let mut dirty = self.inner().srs.dirty.lock();
        dirty.seasons |= taken.seasons;
        dirty.cards.extend(taken.cards);
        dirty.idempotency.extend(taken.idempotency);
    }

    /// Copies what `taken` names into the checkpoint batch (checkpoint step 3).
    pub(super) fn fill_srs_batch(&self, taken: &SrsDirty, batch: &mut Batch) {
        let inner = self.inner();
        if taken.seasons {
            batch.replace_seasons = Some(
                inner
                    .srs
                    .seasons
                    .read()
                    .all()
                    .map(|s| (s.id.clone(), codec::encode(s)))
                    .collect(),
            );
        }
        let names: HashMap<QuestionKey, String> = {
            let questions = inner.srs.questions.read();
            taken
                .cards
                .iter()
                .map(|(_, _, k)| (*k, questions.name(*k).to_owned()))
                .collect()
        };
        for (player, season, key) in &taken.cards {
            let Some(student) = inner.students.get(player) else {
                continue;
            };
            let card = student
                .state
                .read()
                .srs
                .queues
                .get(season)
                .and_then(|q| q.get(*key));
            let question = names.get(key).cloned().unwrap_or_default();
            match card {
                Some(card) => batch.cards.push((
                    player.to_string(),
                    season.to_string(),
                    question,
                    codec::encode(&card),
                )),
                None => {
                    batch
                        .cards_deleted
                        .push((player.to_string(), season.to_string(), question))
                }
            }
        }
        for (player, scope) in &taken.idempotency {
            let Some(student) = inner.students.get(player) else {
                continue;
            };
            if let Some(r) = student.state.read().srs.idempotency.get(scope) {
                batch.idempotency.push((
                    player.to_string(),
                    scope.to_string(),
                    r.at_ms,
                    codec::encode(r),
                ));
            }
        }
        batch.idempotency_expire_before_ms =
            Some(self.now().as_millisecond() - super::idempotency::IDEMPOTENCY_TTL_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(q: &str, rating: Option<i64>, legacy: Option<(bool, i64)>) -> AnswerInput {
        AnswerInput {
            question_id: q.into(),
            rating,
            is_correct: legacy.map(|l| l.0),
            response_time_ms: legacy.map(|l| l.1),
        }
    }

    #[test]
    fn answers_take_either_form_once() {
        let ok = parse_answers(
            &[
                input("Q-1", Some(3), None),
                input("q-2", None, Some((true, 1500))),
            ],
            "/answers",
        )
        .expect("valid");
        assert_eq!(ok[0].question_id, "q-1");
        assert_eq!(ok[1].rating, Rating::Easy);
        let e = parse_answers(
            &[
                input("a", Some(5), None),
                input("b", Some(3), Some((true, 1))),
                input("A", Some(1), None),
            ],
            "/responses",
        )
        .expect_err("invalid");
        let pointers: Vec<_> = e.errors.iter().map(|p| p.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/responses/0/rating",
                "/responses/1",
                "/responses/2/question_id"
            ]
        );
    }

    #[test]
    fn interner_is_stable() {
        let mut i = Interner::default();
        let a = i.intern("q-a");
        let b = i.intern("q-b");
        assert_eq!(i.intern("q-a"), a);
        assert_ne!(a, b);
        assert_eq!(i.name(b), "q-b");
        assert_eq!(i.key("q-c"), None);
    }
}
