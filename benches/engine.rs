//! Criterion micro-benchmarks of the engine's hot paths: the progress state of a
//! subject (statuses, summary, suggested next lesson), the progress tree's JSON, and a
//! completion decision; plus a printout of per-(student, subject) memory.
//!
//! Run: `cargo bench --bench engine -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion};
use roaring::RoaringBitmap;

use memora::content::view::SubjectView;
use memora::progress::testing::{PAID_ITEM, realistic};
use memora::progress::{
    CompletionDecision, ProgressTree, Status, SubjectProgress, XpRules, apply_completion,
    compute_statuses, decide_completion, suggested_next_lesson, summary,
};

/// Sizes quoted in the targets: a median subject (643 lessons) and a large one (1,000).
const SIZES: [u32; 2] = [643, 1000];

/// A subject with its first half of lessons (document order) passed with 1–5 hearts.
fn half_passed(n: u32) -> (SubjectView, SubjectProgress) {
    let view = realistic(n);
    let mut progress = SubjectProgress::new();
    for (k, &node) in view.lessons.iter().take(view.lessons.len() / 2).enumerate() {
        let lesson = &view.nodes[node as usize];
        let decision = CompletionDecision {
            bit_index: lesson.bit_index,
            is_first_completion: true,
            is_new_record: true,
            xp_earned: 0,
            best_hearts: (k % 5 + 1) as u8,
            new_subject_xp: 0,
        };
        apply_completion(&mut progress, &decision, &lesson.id, 0);
    }
    (view, progress)
}

fn progress_state(c: &mut Criterion) {
    let mut group = c.benchmark_group("progress_state");
    for n in SIZES {
        let (view, progress) = half_passed(n);
        let mut statuses: Vec<Status> = Vec::with_capacity(view.nodes.len());
        group.bench_with_input(BenchmarkId::new("statuses+summary+next", n), &n, |b, _| {
            b.iter(|| {
                compute_statuses(&view, black_box(&progress.passed), &mut statuses);
                let s = summary(&view, &progress.passed);
                let next =
                    suggested_next_lesson(&view, &statuses, |a| a.allows(|i| i == PAID_ITEM));
                black_box((s, next))
            })
        });
        group.bench_with_input(BenchmarkId::new("statuses_only", n), &n, |b, _| {
            b.iter(|| {
                compute_statuses(&view, black_box(&progress.passed), &mut statuses);
                black_box(statuses.len())
            })
        });
    }
    group.finish();
}

fn progress_tree_json(c: &mut Criterion) {
    let mut group = c.benchmark_group("progress_tree_json");
    for n in SIZES {
        let (view, progress) = half_passed(n);
        let mut statuses = Vec::new();
        compute_statuses(&view, &progress.passed, &mut statuses);
        let grants = |item: &str| item == PAID_ITEM;
        let mut buffer = Vec::with_capacity(256 * 1024);
        let tree = ProgressTree {
            view: &view,
            statuses: &statuses,
            progress: &progress,
            grants: &grants,
        };
        group.bench_with_input(BenchmarkId::new("serde", n), &n, |b, _| {
            b.iter(|| {
                buffer.clear();
                serde_json::to_writer(&mut buffer, black_box(&tree)).expect("serializes");
                black_box(buffer.len())
            })
        });
        // What the server uses: fixed fields pre-escaped once per view.
        group.bench_with_input(BenchmarkId::new("templated", n), &n, |b, _| {
            b.iter(|| {
                buffer.clear();
                black_box(&tree).write_json(&mut buffer);
                black_box(buffer.len())
            })
        });
        println!(
            "progress tree of {n} lessons: {} bytes of JSON",
            buffer.len()
        );
    }
    group.finish();
}

fn completion(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide_completion");
    let rules = XpRules::default();
    for n in SIZES {
        let (view, progress) = half_passed(n);
        let mut scratch = Vec::with_capacity(view.nodes.len());
        // The next lesson in order: a first completion.
        let node = view.lessons[view.lessons.len() / 2];
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                black_box(decide_completion(
                    &view,
                    node,
                    &progress,
                    4,
                    &rules,
                    &mut scratch,
                ))
            })
        });
    }
    group.finish();
}

/// Deterministic distinct bits below `range` (a 64-bit LCG).
fn scattered(count: u64, range: u32) -> RoaringBitmap {
    let mut bits = RoaringBitmap::new();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    while bits.len() < count {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        bits.insert(((state >> 33) % u64::from(range)) as u32);
    }
    bits
}

fn print_memory() {
    let (_, in_order) = half_passed(2000); // the first 1,000 lessons, in order
    let mut spread = SubjectProgress::new();
    spread.passed = scattered(1000, 5000);
    spread.passed.optimize();
    for bit in spread.passed.iter() {
        spread.best_hearts.set(bit, 3);
    }
    println!(
        "memory per (student, subject), 1,000 lessons passed:\n  \
         bitmap in order (run containers): {} B\n  \
         bitmap scattered over 5,000 bits: {} B\n  \
         best hearts in order:             {} B\n  \
         best hearts scattered:            {} B",
        in_order.passed.serialized_size(),
        spread.passed.serialized_size(),
        in_order.best_hearts.heap_bytes(),
        spread.best_hearts.heap_bytes(),
    );
}

fn main() {
    print_memory();
    let mut c = Criterion::default().configure_from_args();
    progress_state(&mut c);
    progress_tree_json(&mut c);
    completion(&mut c);
    c.final_summary();
}
