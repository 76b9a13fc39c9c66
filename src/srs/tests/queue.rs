//! Due-queue properties against a `BTreeMap` model: exactly the due cards, in (due,
//! question) order with the caller's tie order, none lost or duplicated across
//! upserts and removals; and the memory budget.

use std::cmp::{Ordering, Reverse};
use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::srs::queue::QUEUE_EPOCH_MS;
use crate::srs::{Card, CardState, DueQueue, QuestionKey};

/// A card due `due_secs` seconds after 2026-01-01 (whole seconds, as the queue keeps).
fn card(due_secs: i64, reps: u32) -> Card {
    let base = 1_767_225_600_000;
    Card {
        state: CardState::Review,
        step: 0,
        stability: 3.5,
        difficulty: 5.25,
        due_ms: base + due_secs * 1000,
        last_review_ms: Some(base - 86_400_000),
        reps,
        lapses: reps / 3,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Upsert(QuestionKey, i64),
    Remove(QuestionKey),
    Due(i64, usize),
}

fn op() -> impl Strategy<Value = Op> {
    // Few distinct due seconds, so ties are common.
    prop_oneof![
        4 => (0u32..60, 0i64..20).prop_map(|(q, d)| Op::Upsert(q, d)),
        1 => (0u32..60).prop_map(Op::Remove),
        2 => (-1i64..22, 0usize..12).prop_map(|(n, l)| Op::Due(n, l)),
    ]
}

/// Ties are broken by descending key here, to prove the caller's order is used.
fn tie_order(a: QuestionKey, b: QuestionKey) -> Ordering {
    b.cmp(&a)
}

proptest! {
    #[test]
    fn queue_matches_a_model(ops in prop::collection::vec(op(), 1..200)) {
        let mut queue = DueQueue::new();
        let mut model: BTreeMap<QuestionKey, Card> = BTreeMap::new();
        for (n, op) in ops.into_iter().enumerate() {
            match op {
                Op::Upsert(q, d) => {
                    let c = card(d, u32::try_from(n).unwrap_or(0));
                    prop_assert_eq!(queue.upsert(q, &c), model.insert(q, c));
                }
                Op::Remove(q) => prop_assert_eq!(queue.remove(q), model.remove(&q)),
                Op::Due(now, limit) => {
                    let now_ms = card(now, 0).due_ms + 999;
                    let filter = |q: QuestionKey| q % 7 != 3;
                    let report = queue.due(now_ms, filter, limit, tie_order);
                    let mut expected: Vec<(QuestionKey, Card)> = model
                        .iter()
                        .filter(|(q, c)| c.due_ms <= now_ms && filter(**q))
                        .map(|(q, c)| (*q, *c))
                        .collect();
                    prop_assert_eq!(report.total_due, expected.len());
                    expected.sort_by_key(|(q, c)| (c.due_ms, Reverse(*q)));
                    expected.truncate(limit);
                    prop_assert_eq!(report.items, expected);
                }
            }
            prop_assert_eq!(queue.len(), model.len());
        }
        let all: Vec<(QuestionKey, Card)> = queue.iter().collect();
        let want: Vec<(QuestionKey, Card)> = model.iter().map(|(q, c)| (*q, *c)).collect();
        prop_assert_eq!(&all, &want);
        let mut by_due: Vec<(QuestionKey, Card)> = queue.iter_by_due().collect();
        prop_assert!(by_due.windows(2).all(|w| (w[0].1.due_ms, w[0].0) < (w[1].1.due_ms, w[1].0)));
        by_due.sort_by_key(|(q, _)| *q);
        prop_assert_eq!(&by_due, &want);
        let rebuilt = DueQueue::from_cards(all.iter().copied());
        prop_assert_eq!(rebuilt.iter().collect::<Vec<_>>(), want);
    }
}

#[test]
fn times_are_kept_to_the_second() {
    let mut queue = DueQueue::new();
    let mut c = card(5, 1);
    c.due_ms += 999;
    c.last_review_ms = Some(QUEUE_EPOCH_MS - 5);
    queue.upsert(1, &c);
    let back = queue.get(1).expect("stored");
    assert_eq!(back.due_ms, card(5, 1).due_ms);
    // Before the epoch clamps to it.
    assert_eq!(back.last_review_ms, Some(QUEUE_EPOCH_MS));
    c.last_review_ms = None;
    queue.upsert(1, &c);
    assert_eq!(queue.get(1).expect("stored").last_review_ms, None);
    assert_eq!(queue.next_due_ms(), Some(card(5, 1).due_ms));
}

#[test]
fn from_cards_keeps_the_last_duplicate() {
    let queue = DueQueue::from_cards([(3, card(1, 1)), (2, card(2, 2)), (3, card(9, 9))]);
    assert_eq!(queue.len(), 2);
    assert_eq!(queue.get(3), Some(card(9, 9)));
}

#[test]
fn counters_saturate() {
    let mut queue = DueQueue::new();
    let mut c = card(0, 0);
    c.reps = 100_000;
    c.lapses = 70_000;
    queue.upsert(0, &c);
    let back = queue.get(0).expect("stored");
    assert_eq!((back.reps, back.lapses), (65_535, 65_535));
}

/// The memory budget (≤ 32 bytes per card, queue included) holds for queues grown one
/// card at a time and for queues loaded in bulk.
#[test]
fn at_most_32_bytes_per_card() {
    for size in [1usize, 10, 100, 1_000, 10_000] {
        let mut grown = DueQueue::new();
        for q in 0..size {
            let q = u32::try_from(q).expect("small");
            grown.upsert(q, &card(i64::from(q % 97), 1));
        }
        let loaded = DueQueue::from_cards(grown.iter());
        let per_card = |q: &DueQueue| (q.heap_bytes() + size_of::<DueQueue>()) as f64 / size as f64;
        // Below ~100 cards the queue's own 48-byte header dominates.
        if size >= 100 {
            assert!(per_card(&loaded) <= 31.0, "{size}: {}", per_card(&loaded));
            assert!(per_card(&grown) <= 32.0, "{size}: {}", per_card(&grown));
        }
    }
}
