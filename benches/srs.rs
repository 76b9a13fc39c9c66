//! Criterion micro-benchmarks of the SRS core: the due query of one student with
//! 10,000 cards (target ≤ 50 µs, quality.md), one review through the scheduler, and
//! one queue update; plus a printout of RAM per card, queue included, at 1 and 10
//! million cards (target ≤ 32 bytes).
//!
//! Run: `cargo bench --bench srs -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::Criterion;

use memora::srs::{Card, CardState, DueQueue, QuestionKey, Rating, Scheduler, SchedulerConfig};

/// 2026-06-01T00:00:00Z in UTC ms: "now" for the benchmarks.
const NOW: i64 = 1_780_272_000_000;
const DAY_MS: i64 = 86_400_000;

/// A student's queue of `n` review cards with dues spread over ±`n` minutes around
/// `NOW` (about half due), a few hundred cards per due minute at most.
fn student(n: u32, salt: u32) -> DueQueue {
    DueQueue::from_cards((0..n).map(|q| {
        let spread = i64::from(q.wrapping_mul(2_654_435_761).wrapping_add(salt) % (2 * n));
        let card = Card {
            state: CardState::Review,
            step: 0,
            stability: 12.5,
            difficulty: 5.1,
            due_ms: NOW + (spread - i64::from(n)) * 60_000,
            last_review_ms: Some(NOW - 10 * DAY_MS),
            reps: 4,
            lapses: 0,
        };
        (q, card)
    }))
}

/// Bytes per card, queue header and the engine's map entry (key + pointer, about 32
/// bytes per student) included, for `students` queues of `cards_each` cards.
fn bytes_per_card(students: u32, cards_each: u32) {
    let queues: Vec<DueQueue> = (0..students).map(|s| student(cards_each, s)).collect();
    let heap: usize = queues.iter().map(DueQueue::heap_bytes).sum();
    let headers = queues.len() * (size_of::<DueQueue>() + 32);
    let cards = f64::from(students) * f64::from(cards_each);
    println!(
        "srs memory: {students} students x {cards_each} cards = {cards:.0} cards: {:.2} bytes/card \
         (heap {:.2}, headers {:.2})",
        (heap + headers) as f64 / cards,
        heap as f64 / cards,
        headers as f64 / cards,
    );
    // Grown one card at a time rather than loaded: the 1/16 growth slack.
    let mut grown = DueQueue::new();
    for (q, card) in queues[0].iter() {
        grown.upsert(q, &card);
    }
    println!(
        "srs memory: one queue of {cards_each} grown card by card: {:.2} bytes/card",
        (grown.heap_bytes() + size_of::<DueQueue>() + 32) as f64 / f64::from(cards_each)
    );
}

fn main() {
    bytes_per_card(100, 10_000);
    bytes_per_card(1_000, 10_000);
    bytes_per_card(100_000, 100);

    let mut c = Criterion::default().configure_from_args();
    let queue = student(10_000, 7);
    let report = queue.due(NOW, |_| true, 20, |a, b| a.cmp(&b));
    println!(
        "srs due query: {} cards, {} due, {} listed",
        queue.len(),
        report.total_due,
        report.items.len()
    );
    c.bench_function("srs/due 10k cards, limit 20, no filter", |b| {
        b.iter(|| black_box(queue.due(black_box(NOW), |_| true, 20, |a, b| a.cmp(&b))));
    });
    c.bench_function("srs/due 10k cards, limit 50, half filtered out", |b| {
        b.iter(|| {
            black_box(queue.due(
                black_box(NOW),
                |q: QuestionKey| q.is_multiple_of(2),
                50,
                |a, b| a.cmp(&b),
            ))
        });
    });

    let scheduler = Scheduler::new(SchedulerConfig::default()).expect("default config");
    let card = queue.get(42).expect("card 42");
    c.bench_function("srs/review one card (fsrs + steps + fuzz)", |b| {
        b.iter(|| {
            black_box(scheduler.review(Some(black_box(&card)), Rating::Good, NOW, "js-q-042"))
        });
    });

    let mut updated = queue.clone();
    let mut tick = 0i64;
    c.bench_function("srs/queue upsert (moves in due order), 10k cards", |b| {
        b.iter(|| {
            tick += 1;
            let mut next = card;
            next.due_ms = NOW + (tick % 5_000) * 60_000;
            black_box(updated.upsert(42, &next))
        });
    });
    c.final_summary();
}
