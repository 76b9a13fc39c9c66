//! The FSRS-6 scheduler (srs.md, "Scheduling"): the `fsrs` crate computes memory
//! states (stability, difficulty) and raw intervals; this module owns what py-fsrs
//! 6.3.2's `Scheduler.review_card` adds around them — card states, learning and
//! relearning steps, interval rounding, the maximum interval and fuzz — and follows it
//! rule for rule, so that the cross-check in `srs/tests` can hold it to py-fsrs.
//!
//! Known, documented difference: the `fsrs` crate caps stability at 36,500 days while
//! py-fsrs does not; past that cap the interval is the maximum interval either way.

use fsrs::{FSRS, MemoryState, NextStates};
use serde::{Deserialize, Serialize};

use super::fuzz::fuzz_interval;
use super::rating::Rating;

/// One day in milliseconds: `days_elapsed` counts whole 24-hour periods, not calendar
/// days.
pub const DAY_MS: i64 = 86_400_000;

/// Where a card is in its life (py-fsrs `State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum CardState {
    /// Answered for the first time recently: walking the learning steps (minutes).
    Learning = 1,
    /// Graduated: scheduled in whole days by FSRS.
    Review = 2,
    /// Forgotten in review: walking the relearning steps (minutes).
    Relearning = 3,
}

impl CardState {
    /// The state's stable number (1 learning, 2 review, 3 relearning), as stored.
    #[must_use]
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The state with number `value` (see [`CardState::as_u8`]), if any.
    #[must_use]
    pub fn from_u8(value: u8) -> Option<CardState> {
        match value {
            1 => Some(CardState::Learning),
            2 => Some(CardState::Review),
            3 => Some(CardState::Relearning),
            _ => None,
        }
    }
}

/// One student's memory of one question. Serialized as-is (bincode, every field
/// always present); times are UTC milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Card {
    /// Learning, review or relearning.
    pub state: CardState,
    /// Index into the learning or relearning steps; 0 in review.
    pub step: u8,
    /// FSRS stability in days: the interval after which recall probability falls to
    /// 90%.
    pub stability: f32,
    /// FSRS difficulty, in `[1, 10]`.
    pub difficulty: f32,
    /// When the card is next due (UTC ms). A card is due when `due_ms <= now`.
    pub due_ms: i64,
    /// When the card was last reviewed (UTC ms); `None` only for a card never
    /// reviewed, which [`Scheduler::review`] treats as new.
    pub last_review_ms: Option<i64>,
    /// Number of reviews of this card.
    pub reps: u32,
    /// Number of `again` answers given in the review state.
    pub lapses: u32,
}

impl Card {
    /// Whole days from the last review to the due time (0 for minute steps): what
    /// the review endpoint reports as `interval_days`.
    #[must_use]
    pub fn interval_days(&self) -> i64 {
        self.last_review_ms
            .map_or(0, |last| (self.due_ms - last).div_euclid(DAY_MS).max(0))
    }
}

/// Scheduler settings, one set per installation (`[srs]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Target probability of recall at the due time, in `(0, 1)`; default 0.9.
    pub desired_retention: f32,
    /// The 21 FSRS-6 parameters; default the FSRS-6 defaults.
    pub parameters: [f32; 21],
    /// Learning steps in seconds; default `[60, 600]` (1 min, 10 min).
    pub learning_steps_secs: Vec<u32>,
    /// Relearning steps in seconds; default `[600]` (10 min).
    pub relearning_steps_secs: Vec<u32>,
    /// Longest review interval in days; default 36,500.
    pub maximum_interval_days: u32,
    /// Whether review intervals of 2.5 days or more are fuzzed; default true.
    pub enable_fuzz: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            desired_retention: 0.9,
            parameters: fsrs::DEFAULT_PARAMETERS,
            learning_steps_secs: vec![60, 600],
            relearning_steps_secs: vec![600],
            maximum_interval_days: 36_500,
            enable_fuzz: true,
        }
    }
}

/// py-fsrs 6.3.2's accepted range for each parameter (inclusive). The `fsrs` crate
/// would silently clip out-of-range values; refusing them keeps both schedulers on
/// the same parameters.
const PARAMETER_BOUNDS: [(f32, f32); 21] = [
    (0.001, 100.0),
    (0.001, 100.0),
    (0.001, 100.0),
    (0.001, 100.0),
    (1.0, 10.0),
    (0.001, 4.0),
    (0.001, 4.0),
    (0.001, 0.75),
    (0.0, 4.5),
    (0.0, 0.8),
    (0.001, 3.5),
    (0.001, 5.0),
    (0.001, 0.25),
    (0.001, 0.9),
    (0.0, 4.0),
    (0.0, 1.0),
    (1.0, 6.0),
    (0.0, 2.0),
    (0.0, 2.0),
    (0.0, 0.8),
    (0.1, 0.8),
];

/// At most this many learning or relearning steps (the step index is a `u8`).
pub const MAX_STEPS: usize = 255;

/// Why a [`SchedulerConfig`] was refused. [`Scheduler::new`] reports every problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid [srs] settings: {}", .problems.join("; "))]
pub struct ConfigError {
    /// One sentence per problem.
    pub problems: Vec<String>,
}

/// A validated scheduler: [`SchedulerConfig`] plus the `fsrs` model built from it.
#[derive(Debug, Clone)]
pub struct Scheduler {
    config: SchedulerConfig,
    fsrs: FSRS,
}

impl Scheduler {
    /// Validates `config` (parameters within py-fsrs's bounds, retention in `(0, 1)`,
    /// maximum interval ≥ 1 day, steps positive and at most 255 of each).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] listing every problem found.
    pub fn new(config: SchedulerConfig) -> Result<Scheduler, ConfigError> {
        let mut problems = Vec::new();
        for (i, (&w, &(low, high))) in config.parameters.iter().zip(&PARAMETER_BOUNDS).enumerate() {
            if !(low..=high).contains(&w) {
                problems.push(format!(
                    "srs.parameters[{i}] = {w} is outside [{low}, {high}]"
                ));
            }
        }
        if !(config.desired_retention > 0.0 && config.desired_retention < 1.0) {
            problems.push(format!(
                "srs.desired_retention = {} must be strictly between 0 and 1",
                config.desired_retention
            ));
        }
        if config.maximum_interval_days == 0 {
            problems.push("srs.maximum_interval_days must be at least 1".to_owned());
        }
        for (name, steps) in [
            ("learning_steps_secs", &config.learning_steps_secs),
            ("relearning_steps_secs", &config.relearning_steps_secs),
        ] {
            if steps.len() > MAX_STEPS {
                problems.push(format!("srs.{name} has more than {MAX_STEPS} steps"));
            }
            if steps.contains(&0) {
                problems.push(format!("srs.{name} must not contain 0"));
            }
        }
        let fsrs = match FSRS::new(&config.parameters) {
            Ok(fsrs) => Some(fsrs),
            Err(e) => {
                problems.push(format!("srs.parameters refused by fsrs: {e}"));
                None
            }
        };
        match fsrs {
            Some(fsrs) if problems.is_empty() => Ok(Scheduler { config, fsrs }),
            _ => Err(ConfigError { problems }),
        }
    }

    /// The settings this scheduler was built from.
    #[must_use]
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// The card after answering `rating` at `now_ms` (UTC ms), following py-fsrs 6.3.2's
    /// `review_card`: `card` is `None` (or never reviewed) at the first answer, which
    /// starts it in learning step 0; `question_id` and the new review count seed the
    /// fuzz (see [`super::fuzz`]). `reps` always grows by one; `lapses` grows on
    /// `again` in the review state.
    #[must_use]
    pub fn review(
        &self,
        card: Option<&Card>,
        rating: Rating,
        now_ms: i64,
        question_id: &str,
    ) -> Card {
        let previous = card.filter(|c| c.last_review_ms.is_some());
        let (state, step, reps, lapses) = previous.map_or((CardState::Learning, 0, 0, 0), |c| {
            (c.state, c.step, c.reps, c.lapses)
        });
        let memory = self.next_memory(previous, rating, now_ms);
        let reps = reps.saturating_add(1);
        let lapses = if state == CardState::Review && rating == Rating::Again {
            lapses.saturating_add(1)
        } else {
            lapses
        };

        let next = match state {
            CardState::Learning => step_rules(&self.config.learning_steps_secs, step, rating),
            CardState::Relearning => step_rules(&self.config.relearning_steps_secs, step, rating),
            CardState::Review => match self.config.relearning_steps_secs.first() {
                Some(&first) if rating == Rating::Again => Next::Step(0, secs_to_ms(first)),
                _ => Next::Graduate,
            },
        };
        let (state, step, interval_ms) = match next {
            // Review cards answering again enter relearning; the others keep their state.
            Next::Step(step, wait_ms) if state == CardState::Review => {
                (CardState::Relearning, step, wait_ms)
            }
            Next::Step(step, wait_ms) => (state, step, wait_ms),
            Next::Graduate => {
                let mut days = self.review_interval_days(memory.stability);
                if self.config.enable_fuzz {
                    days =
                        fuzz_interval(days, self.config.maximum_interval_days, question_id, reps);
                }
                (CardState::Review, 0, i64::from(days) * DAY_MS)
            }
        };
        Card {
            state,
            step,
            stability: memory.stability,
            difficulty: memory.difficulty,
            due_ms: now_ms.saturating_add(interval_ms),
            last_review_ms: Some(now_ms),
            reps,
            lapses,
        }
    }

    /// The memory state after this answer, from the `fsrs` crate: the initial state at
    /// the first answer; the same-day (short-term) formula when less than one whole
    /// day has passed since the last review; otherwise the long-term one with the
    /// retrievability after the whole days elapsed.
    fn next_memory(&self, previous: Option<&Card>, rating: Rating, now_ms: i64) -> MemoryState {
        let current = previous.map(|c| MemoryState {
            stability: c.stability,
            difficulty: c.difficulty,
        });
        let days_elapsed = previous
            .and_then(|c| c.last_review_ms)
            .map_or(0, |last| whole_days(now_ms, last));
        let pick = |states: NextStates| match rating {
            Rating::Again => states.again.memory,
            Rating::Hard => states.hard.memory,
            Rating::Good => states.good.memory,
            Rating::Easy => states.easy.memory,
        };
        let dr = self.config.desired_retention;
        match self.fsrs.next_states(current, dr, days_elapsed) {
            Ok(states) => pick(states),
            // Only a corrupt (non-finite) stored state gets here: start it afresh.
            Err(_) => match self.fsrs.next_states(None, dr, 0) {
                Ok(states) => pick(states),
                Err(_) => current.unwrap_or(MemoryState {
                    stability: 1.0,
                    difficulty: 5.0,
                }),
            },
        }
    }

    /// The review interval in whole days, before fuzz, for `stability` (days): the
    /// crate's interval for the desired retention, rounded half to even (Python's
    /// `round`), at least 1 and at most the maximum interval.
    #[must_use]
    pub fn review_interval_days(&self, stability: f32) -> u32 {
        let raw = self
            .fsrs
            .next_interval(Some(stability), self.config.desired_retention, 3);
        let days = f64::from(raw)
            .round_ties_even()
            .clamp(1.0, f64::from(self.config.maximum_interval_days));
        if days.is_finite() {
            // A whole number in [1, maximum_interval_days]: the cast is exact.
            days as u32
        } else {
            self.config.maximum_interval_days
        }
    }
}

/// Whole 24-hour periods from `last_ms` to `now_ms`; 0 when `now_ms` is earlier.
fn whole_days(now_ms: i64, last_ms: i64) -> u32 {
    let days = now_ms.saturating_sub(last_ms).div_euclid(DAY_MS).max(0);
    u32::try_from(days).unwrap_or(u32::MAX)
}

/// What the step rules decided.
enum Next {
    /// Stay in (or enter) a step: the step index and the wait in milliseconds.
    Step(u8, i64),
    /// Leave the steps: a review interval in days.
    Graduate,
}

fn secs_to_ms(secs: u32) -> i64 {
    i64::from(secs) * 1000
}

/// py-fsrs's rules for a card at `step` of `steps` (seconds) answering `rating`:
/// no steps, or a step past the end answered hard/good/easy → graduate; again → step 0;
/// hard stays (at step 0: 1.5 × the only step, or the mean of the first two); good
/// moves on or graduates after the last step; easy graduates.
fn step_rules(steps: &[u32], step: u8, rating: Rating) -> Next {
    let at = usize::from(step);
    if steps.is_empty() || (at >= steps.len() && rating != Rating::Again) {
        return Next::Graduate;
    }
    let ms = |i: usize| secs_to_ms(steps[i]);
    match rating {
        Rating::Again => Next::Step(0, ms(0)),
        Rating::Hard => {
            let wait = match (at, steps.len()) {
                (0, 1) => ms(0) * 3 / 2,
                (0, _) => (ms(0) + ms(1)) / 2,
                _ => ms(at),
            };
            Next::Step(step, wait)
        }
        Rating::Good => {
            if at + 1 == steps.len() {
                Next::Graduate
            } else {
                // `at + 1 < steps.len() <= 255`, so the index fits.
                let next = u8::try_from(at + 1).unwrap_or(u8::MAX);
                Next::Step(next, ms(at + 1))
            }
        }
        Rating::Easy => Next::Graduate,
    }
}
