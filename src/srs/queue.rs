//! The due queue of one (student, season) (srs.md, "Cards and queues"): every card of
//! the student in the season, ordered by (due, question) so that "what is due now" is
//! a binary search plus a walk over the due prefix, never a scan of all cards.
//!
//! Memory is a first-class metric (≤ 32 bytes per card, queue included). Layout:
//! - `cards`: packed 26-byte records sorted by question key — the lookup by question
//!   is a binary search, no hash map;
//! - `by_due`: 4-byte positions into `cards`, sorted by (due, question key);
//! - both grow by 1/16 of their length (at least 4 slots) instead of doubling.
//!
//! Questions are interned per installation to [`QuestionKey`]s (`u32`) by the caller.
//! Times are kept to the second: due and last review are stored as whole seconds since
//! [`QUEUE_EPOCH_MS`] (2020-01-01T00:00:00Z, good until 2156), rounded down, so a card
//! read back has `due_ms` and `last_review_ms` on whole seconds; `reps` and `lapses`
//! saturate at 65,535.

use std::cmp::Ordering;

use super::scheduler::{Card, CardState};

/// A question interned to a number, per installation.
pub type QuestionKey = u32;

/// The instant stored times count seconds from: 2020-01-01T00:00:00Z in UTC ms.
pub const QUEUE_EPOCH_MS: i64 = 1_577_836_800_000;

/// Stored in place of the last review time of a card never reviewed.
const NEVER: u32 = u32::MAX;

/// One card as stored: 26 bytes, no padding.
#[derive(Debug, Clone, Copy)]
#[repr(C, packed)]
struct Packed {
    question: u32,
    /// Seconds since [`QUEUE_EPOCH_MS`].
    due: u32,
    /// Seconds since [`QUEUE_EPOCH_MS`], or [`NEVER`].
    last_review: u32,
    stability: f32,
    difficulty: f32,
    reps: u16,
    lapses: u16,
    state: u8,
    step: u8,
}

impl Packed {
    fn new(question: QuestionKey, card: &Card) -> Packed {
        Packed {
            question,
            due: to_secs(card.due_ms),
            last_review: card.last_review_ms.map_or(NEVER, to_secs),
            stability: card.stability,
            difficulty: card.difficulty,
            reps: u16::try_from(card.reps).unwrap_or(u16::MAX),
            lapses: u16::try_from(card.lapses).unwrap_or(u16::MAX),
            state: card.state.as_u8(),
            step: card.step,
        }
    }

    fn card(self) -> Card {
        let last_review = self.last_review;
        Card {
            state: CardState::from_u8(self.state).unwrap_or(CardState::Review),
            step: self.step,
            stability: self.stability,
            difficulty: self.difficulty,
            due_ms: from_secs(self.due),
            last_review_ms: (last_review != NEVER).then(|| from_secs(last_review)),
            reps: u32::from(self.reps),
            lapses: u32::from(self.lapses),
        }
    }

    fn key(self) -> (u32, u32) {
        (self.due, self.question)
    }
}

/// UTC ms → whole seconds since the queue epoch, rounded down, clamped to the `u32`
/// range below [`NEVER`].
fn to_secs(ms: i64) -> u32 {
    let secs = ms.saturating_sub(QUEUE_EPOCH_MS).div_euclid(1000);
    u32::try_from(secs.clamp(0, i64::from(NEVER - 1))).unwrap_or(NEVER - 1)
}

fn from_secs(secs: u32) -> i64 {
    QUEUE_EPOCH_MS + i64::from(secs) * 1000
}

/// What [`DueQueue::due`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct DueReport {
    /// At most `limit` due cards, ordered by (due, question).
    pub items: Vec<(QuestionKey, Card)>,
    /// How many cards are due and pass the filter (not capped by `limit`).
    pub total_due: usize,
}

/// The cards of one (student, season), ordered by due time (module documentation).
#[derive(Debug, Clone, Default)]
pub struct DueQueue {
    /// Sorted by `question`, unique.
    cards: Vec<Packed>,
    /// Positions into `cards`, sorted by (due, question).
    by_due: Vec<u32>,
}

impl DueQueue {
    /// An empty queue.
    #[must_use]
    pub fn new() -> DueQueue {
        DueQueue::default()
    }

    /// A queue holding `cards` with no spare capacity (as after loading a checkpoint);
    /// when a question appears twice the last card wins.
    #[must_use]
    pub fn from_cards(cards: impl IntoIterator<Item = (QuestionKey, Card)>) -> DueQueue {
        let mut packed: Vec<Packed> = cards
            .into_iter()
            .map(|(question, card)| Packed::new(question, &card))
            .collect();
        // Stable sort, then keep the last of each run of equal questions.
        packed.sort_by_key(|p| p.question);
        packed.reverse();
        packed.dedup_by_key(|p| p.question);
        packed.reverse();
        packed.shrink_to_fit();
        let mut by_due: Vec<u32> = (0..position(packed.len())).collect();
        by_due.sort_unstable_by_key(|&p| packed[p as usize].key());
        by_due.shrink_to_fit();
        DueQueue {
            cards: packed,
            by_due,
        }
    }

    /// Number of cards.
    #[must_use]
    pub fn len(&self) -> usize {
        self.cards.len()
    }

    /// Whether the queue holds no card.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.cards.is_empty()
    }

    /// The card of `question`, if any.
    #[must_use]
    pub fn get(&self, question: QuestionKey) -> Option<Card> {
        self.find(question).ok().map(|pos| self.cards[pos].card())
    }

    /// Stores `card` for `question`, replacing and returning the previous card if any.
    pub fn upsert(&mut self, question: QuestionKey, card: &Card) -> Option<Card> {
        let packed = Packed::new(question, card);
        match self.find(question) {
            Ok(pos) => {
                let old = self.cards[pos];
                if old.key() != packed.key() {
                    let from = self.due_index(old.key());
                    self.by_due.remove(from);
                    self.cards[pos] = packed;
                    let to = self.due_insertion_point(packed.key());
                    self.by_due.insert(to, position(pos));
                } else {
                    self.cards[pos] = packed;
                }
                Some(old.card())
            }
            Err(pos) => {
                reserve_one(&mut self.cards);
                self.cards.insert(pos, packed);
                let inserted = position(pos);
                for entry in &mut self.by_due {
                    if *entry >= inserted {
                        *entry += 1;
                    }
                }
                let to = self.due_insertion_point(packed.key());
                reserve_one(&mut self.by_due);
                self.by_due.insert(to, inserted);
                None
            }
        }
    }

    /// Removes and returns the card of `question`, if any.
    pub fn remove(&mut self, question: QuestionKey) -> Option<Card> {
        let pos = self.find(question).ok()?;
        let old = self.cards[pos];
        let from = self.due_index(old.key());
        self.by_due.remove(from);
        self.cards.remove(pos);
        let removed = position(pos);
        for entry in &mut self.by_due {
            if *entry > removed {
                *entry -= 1;
            }
        }
        Some(old.card())
    }

    /// Every card, by ascending question key.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (QuestionKey, Card)> + '_ {
        self.cards.iter().map(|p| (p.question, p.card()))
    }

    /// Every card, by ascending (due, question key).
    pub fn iter_by_due(&self) -> impl ExactSizeIterator<Item = (QuestionKey, Card)> + '_ {
        self.by_due.iter().map(|&p| {
            let packed = self.cards[p as usize];
            (packed.question, packed.card())
        })
    }

    /// When the earliest card is due (UTC ms, on a whole second), if any.
    #[must_use]
    pub fn next_due_ms(&self) -> Option<i64> {
        self.by_due
            .first()
            .map(|&p| from_secs(self.cards[p as usize].due))
    }

    /// The cards due at `now_ms` (UTC ms; due means due time ≤ now) whose question
    /// passes `filter`: at most `limit` of them, ordered by due time and, within one
    /// due second, by `question_order` (the caller's order of question *ids*, which
    /// interned keys do not follow), plus the count of all of them.
    ///
    /// Cost: a binary search, then one `filter` call per due card.
    pub fn due(
        &self,
        now_ms: i64,
        filter: impl Fn(QuestionKey) -> bool,
        limit: usize,
        question_order: impl Fn(QuestionKey, QuestionKey) -> Ordering,
    ) -> DueReport {
        let now_secs = now_ms.saturating_sub(QUEUE_EPOCH_MS).div_euclid(1000);
        let cards = &self.cards;
        let end = self
            .by_due
            .partition_point(|&p| i64::from(cards[p as usize].due) <= now_secs);
        let mut picked: Vec<Packed> = Vec::with_capacity(limit.min(end));
        let mut total_due = 0;
        for &p in &self.by_due[..end] {
            let packed = cards[p as usize];
            if !filter(packed.question) {
                continue;
            }
            total_due += 1;
            // Past the limit, keep only cards sharing the last picked due second: the
            // question order may move them ahead of it.
            let tie = picked.len() >= limit
                && picked
                    .last()
                    .is_some_and(|last| { last.due } == { packed.due });
            if picked.len() < limit || tie {
                picked.push(packed);
            }
        }
        picked.sort_by(|a, b| {
            let (a_due, b_due) = (a.due, b.due);
            a_due
                .cmp(&b_due)
                .then_with(|| question_order(a.question, b.question))
        });
        picked.truncate(limit);
        DueReport {
            items: picked.into_iter().map(|p| (p.question, p.card())).collect(),
            total_due,
        }
    }

    /// Heap bytes held by this queue (allocated capacity, not just length).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.cards.capacity() * size_of::<Packed>() + self.by_due.capacity() * size_of::<u32>()
    }

    /// Releases spare capacity (e.g. after a bulk change).
    pub fn shrink_to_fit(&mut self) {
        self.cards.shrink_to_fit();
        self.by_due.shrink_to_fit();
    }

    fn find(&self, question: QuestionKey) -> Result<usize, usize> {
        self.cards.binary_search_by_key(&question, |p| p.question)
    }

    /// Index in `by_due` of the card with `key`, which must be stored.
    fn due_index(&self, key: (u32, u32)) -> usize {
        let cards = &self.cards;
        self.by_due
            .binary_search_by(|&p| cards[p as usize].key().cmp(&key))
            .unwrap_or_else(|i| i)
    }

    fn due_insertion_point(&self, key: (u32, u32)) -> usize {
        let cards = &self.cards;
        self.by_due
            .partition_point(|&p| cards[p as usize].key() < key)
    }
}

/// A position in `cards` as stored in `by_due` (queues hold far fewer than 2³² cards).
fn position(pos: usize) -> u32 {
    u32::try_from(pos).unwrap_or(u32::MAX)
}

/// Makes room for one more element, growing by 1/16 (at least 4) rather than doubling.
fn reserve_one<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        v.reserve_exact((v.len() / 16).max(4));
    }
}
