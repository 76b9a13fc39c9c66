//! Unit and property tests of the progress rules (progress.md).

use proptest::prelude::*;
use roaring::RoaringBitmap;
use serde_json::json;

use super::testing::{PAID_ITEM, Shape, ViewBuilder, from_shape, paid, realistic};
use super::*;
use crate::content::view::{NO_NODE, NodeKind, SubjectView};

use Status::{Locked, Passed, Unlocked};

fn bits(list: &[u32]) -> RoaringBitmap {
    list.iter().copied().collect()
}

fn statuses(view: &SubjectView, passed: &RoaringBitmap) -> Vec<Status> {
    let mut out = Vec::new();
    compute_statuses(view, passed, &mut out);
    out
}

/// Statuses of the lessons only, in document order.
fn lesson_statuses(view: &SubjectView, passed: &RoaringBitmap) -> Vec<Status> {
    let all = statuses(view, passed);
    view.lessons.iter().map(|&i| all[i as usize]).collect()
}

/// subject(non-linear) > topic `t` (linear or not) > lessons a, b, c, d (bits 0..4).
fn one_topic(linear: bool) -> SubjectView {
    let mut b = ViewBuilder::new("s", false);
    b.open(NodeKind::Topic, "t", linear);
    for id in ["a", "b", "c", "d"] {
        b.lesson(id);
    }
    b.build()
}

#[test]
fn linear_topic_unlocks_one_lesson_at_a_time() {
    let view = one_topic(true);
    assert_eq!(
        lesson_statuses(&view, &bits(&[])),
        [Unlocked, Locked, Locked, Locked]
    );
    assert_eq!(
        lesson_statuses(&view, &bits(&[0])),
        [Passed, Unlocked, Locked, Locked]
    );
    assert_eq!(
        lesson_statuses(&view, &bits(&[0, 1])),
        [Passed, Passed, Unlocked, Locked]
    );
}

#[test]
fn linear_order_looks_at_the_immediately_previous_sibling_only() {
    let view = one_topic(true);
    // b passed out of order: a is still open (first child), c opens because b is
    // passed, d stays locked because c is not.
    assert_eq!(
        lesson_statuses(&view, &bits(&[1])),
        [Unlocked, Passed, Unlocked, Locked]
    );
    // Passed beats locked: c passed while b is not.
    assert_eq!(
        lesson_statuses(&view, &bits(&[2])),
        [Unlocked, Locked, Passed, Unlocked]
    );
}

#[test]
fn non_linear_topic_unlocks_every_lesson() {
    let view = one_topic(false);
    assert_eq!(lesson_statuses(&view, &bits(&[])), [Unlocked; 4]);
    assert_eq!(
        lesson_statuses(&view, &bits(&[2])),
        [Unlocked, Unlocked, Passed, Unlocked]
    );
}

/// subject(linear) > t1 (linear: a, b) , t2 (non-linear: c, d).
fn two_topics() -> SubjectView {
    let mut b = ViewBuilder::new("s", true);
    b.open(NodeKind::Topic, "t1", true)
        .lesson("a")
        .lesson("b")
        .close();
    b.open(NodeKind::Topic, "t2", false)
        .lesson("c")
        .lesson("d")
        .close();
    b.build()
}

#[test]
fn children_of_a_locked_container_are_locked_even_when_it_is_not_linear() {
    let view = two_topics();
    let s = statuses(&view, &bits(&[0]));
    // nodes: 0 s, 1 t1, 2 a, 3 b, 4 t2, 5 c, 6 d
    assert_eq!(
        s,
        [Unlocked, Unlocked, Passed, Unlocked, Locked, Locked, Locked]
    );
}

#[test]
fn a_container_is_passed_when_all_its_children_are() {
    let view = two_topics();
    let s = statuses(&view, &bits(&[0, 1]));
    assert_eq!(
        s,
        [
            Unlocked, Passed, Passed, Passed, Unlocked, Unlocked, Unlocked
        ]
    );
    let s = statuses(&view, &bits(&[0, 1, 2, 3]));
    assert_eq!(s, [Passed; 7]);
    // Passed beats locked for containers too: t2 done while t1 is not.
    let s = statuses(&view, &bits(&[2, 3]));
    assert_eq!(
        s,
        [Unlocked, Unlocked, Unlocked, Locked, Passed, Passed, Passed]
    );
}

#[test]
fn a_container_without_children_is_never_passed() {
    let mut b = ViewBuilder::new("s", false);
    b.open(NodeKind::Topic, "empty", false).close();
    b.open(NodeKind::Topic, "t", false).lesson("a").close();
    let view = b.build();
    assert_eq!(
        statuses(&view, &bits(&[0])),
        [Unlocked, Unlocked, Passed, Passed]
    );
}

#[test]
fn output_buffer_is_resized_and_reused() {
    let view = one_topic(false);
    let mut out = vec![Passed; 40];
    compute_statuses(&view, &bits(&[]), &mut out);
    assert_eq!(out.len(), view.nodes.len());
    assert!(out.iter().all(|&s| s == Unlocked));
}

#[test]
fn suggested_lesson_skips_passed_locked_and_inaccessible_lessons() {
    let mut b = ViewBuilder::new("s", false);
    b.open(NodeKind::Topic, "t1", true)
        .lesson("a")
        .lesson("b")
        .close();
    b.open(NodeKind::Topic, "t2", false)
        .lesson("p")
        .access(paid("x"))
        .lesson("q")
        .close();
    let view = b.build();
    let any = |_: &crate::content::view::Access| true;
    let s = statuses(&view, &bits(&[]));
    assert_eq!(suggested_next_lesson(&view, &s, any), view.lesson_node("a"));
    let s = statuses(&view, &bits(&[0]));
    assert_eq!(suggested_next_lesson(&view, &s, any), view.lesson_node("b"));
    let s = statuses(&view, &bits(&[0, 1]));
    assert_eq!(suggested_next_lesson(&view, &s, any), view.lesson_node("p"));
    let no_grant = |a: &crate::content::view::Access| a.allows(|_| false);
    assert_eq!(
        suggested_next_lesson(&view, &s, no_grant),
        view.lesson_node("q")
    );
    let s = statuses(&view, &bits(&[0, 1, 3]));
    assert_eq!(suggested_next_lesson(&view, &s, no_grant), None);
    let s = statuses(&view, &bits(&[0, 1, 2, 3]));
    assert_eq!(suggested_next_lesson(&view, &s, any), None);
}

#[test]
fn summary_ignores_bits_of_invisible_lessons() {
    let mut b = ViewBuilder::new("s", false);
    b.open(NodeKind::Topic, "t", false);
    b.lesson("a").skip_bits(2).lesson("b").lesson("c");
    let view = b.build();
    // Bits 1 and 2 belong to hidden lessons, 99 to a removed one.
    let passed = bits(&[0, 1, 2, 4, 99]);
    let got = summary(&view, &passed);
    assert_eq!(
        got,
        Summary {
            passed_lessons: 2,
            total_lessons: 3,
            completion_percentage: 66.67
        }
    );
    assert_eq!(lesson_statuses(&view, &passed), [Passed, Unlocked, Passed]);
}

#[test]
fn percentage_rounds_to_two_decimals() {
    use status::percentage;
    assert_eq!(percentage(0, 0), 0.0);
    assert_eq!(percentage(0, 7), 0.0);
    assert_eq!(percentage(7, 7), 100.0);
    assert_eq!(percentage(1, 3), 33.33);
    assert_eq!(percentage(2, 3), 66.67);
    assert_eq!(percentage(1, 8), 12.5);
    assert_eq!(percentage(1, 800), 0.13);
    assert_eq!(percentage(12, 40), 30.0);
    assert_eq!(percentage(321, 643), 49.92);
    assert_eq!(percentage(999, 1000), 99.9);
    assert_eq!(percentage(9_999, 10_000), 99.99);
    assert_eq!(percentage(99_999, 100_000), 100.0);
}

// ----- completion -----

fn complete(
    view: &SubjectView,
    progress: &mut SubjectProgress,
    id: &str,
    hearts: u8,
) -> Result<CompletionDecision, CompletionError> {
    let node = view.lesson_node(id).expect("lesson exists");
    let decision = decide_completion(
        view,
        node,
        progress,
        hearts,
        &XpRules::default(),
        &mut Vec::new(),
    )?;
    apply_completion(progress, &decision, id, 1_000);
    Ok(decision)
}

#[test]
fn first_completion_and_replays_follow_the_xp_rules() {
    let view = one_topic(true); // base_xp 20, per_heart 10
    let mut p = SubjectProgress::new();
    let d = complete(&view, &mut p, "a", 3).expect("unlocked");
    assert_eq!(
        (
            d.is_first_completion,
            d.is_new_record,
            d.xp_earned,
            d.best_hearts,
            d.new_subject_xp
        ),
        (true, true, 50, 3, 50)
    );
    let d = complete(&view, &mut p, "a", 2).expect("passed");
    assert_eq!(
        (
            d.is_first_completion,
            d.is_new_record,
            d.xp_earned,
            d.best_hearts
        ),
        (false, false, 0, 3)
    );
    let d = complete(&view, &mut p, "a", 5).expect("passed");
    assert_eq!(
        (
            d.is_new_record,
            d.xp_earned,
            d.best_hearts,
            d.new_subject_xp
        ),
        (true, 20, 5, 70)
    );
    let d = complete(&view, &mut p, "a", 5).expect("passed");
    assert_eq!((d.is_new_record, d.xp_earned), (false, 0));
    assert_eq!(p.total_xp_earned, 70);
    assert_eq!(p.best_hearts.get(0), 5);
    assert_eq!(p.last_lesson_completed.as_deref(), Some("a"));
}

#[test]
fn not_unlocked_is_checked_before_no_hearts() {
    let view = one_topic(true);
    let p = SubjectProgress::new();
    let rules = XpRules::default();
    let mut scratch = Vec::new();
    let b = view.lesson_node("b").expect("b");
    let a = view.lesson_node("a").expect("a");
    assert_eq!(
        decide_completion(&view, b, &p, 0, &rules, &mut scratch),
        Err(CompletionError::NotUnlocked)
    );
    assert_eq!(
        decide_completion(&view, b, &p, 4, &rules, &mut scratch),
        Err(CompletionError::NotUnlocked)
    );
    assert_eq!(
        decide_completion(&view, a, &p, 0, &rules, &mut scratch),
        Err(CompletionError::NoHearts)
    );
    // A container or an index outside the view is no lesson to complete.
    assert_eq!(
        decide_completion(&view, 1, &p, 3, &rules, &mut scratch),
        Err(CompletionError::NotUnlocked)
    );
    assert_eq!(
        decide_completion(&view, 99, &p, 3, &rules, &mut scratch),
        Err(CompletionError::NotUnlocked)
    );
}

#[test]
fn a_passed_lesson_can_be_replayed_even_where_the_structure_would_lock_it() {
    let view = one_topic(true);
    let mut p = SubjectProgress::new();
    // c (bit 2) passed out of order, e.g. before the plan made the topic linear.
    p.passed.insert(2);
    p.best_hearts.set(2, 1);
    let d = complete(&view, &mut p, "c", 4).expect("passed beats locked");
    assert_eq!((d.is_first_completion, d.xp_earned), (false, 30));
}

#[test]
fn hearts_above_the_maximum_are_clamped() {
    let view = one_topic(false);
    let mut p = SubjectProgress::new();
    let d = complete(&view, &mut p, "a", 200).expect("unlocked");
    assert_eq!((d.best_hearts, d.xp_earned), (5, 70));
}

// ----- state and storage -----

#[test]
fn best_hearts_packs_two_values_per_byte() {
    let mut h = BestHearts::new();
    assert_eq!(h.get(7), 0);
    h.set(0, 3);
    h.set(1, 5);
    h.set(6, 15);
    assert_eq!((h.get(0), h.get(1), h.get(5), h.get(6)), (3, 5, 0, 15));
    assert_eq!(h.heap_bytes(), 4);
    h.set(1, 20);
    assert_eq!(h.get(1), 15, "saturated to a nibble");
    h.set(6, 0);
    assert_eq!(h.heap_bytes(), 1, "trailing zero bytes trimmed");
    h.set(1000, 0);
    assert_eq!(h.heap_bytes(), 1, "clearing an absent bit does not grow");
    assert_eq!(h.iter().collect::<Vec<_>>(), [(0, 3), (1, 15)]);
}

#[test]
fn progress_record_round_trips_through_bincode() {
    let view = realistic(120);
    let mut p = SubjectProgress::new();
    for (n, &node) in view.lessons.iter().take(45).enumerate() {
        let id = view.nodes[node as usize].id.to_string();
        complete(&view, &mut p, &id, (n % 5 + 1) as u8).expect("in order");
    }
    let record = p.to_record();
    let config = bincode::config::standard();
    let bytes = bincode::serde::encode_to_vec(&record, config).expect("encode");
    let (decoded, _): (ProgressRecord, usize) =
        bincode::serde::decode_from_slice(&bytes, config).expect("decode");
    assert_eq!(decoded, record);
    let back = SubjectProgress::from_record(&decoded).expect("valid");
    assert_eq!(back, p);
}

#[test]
fn progress_record_rejects_unknown_versions_and_corrupt_bitmaps() {
    let mut record = SubjectProgress::new().to_record();
    record.version = 2;
    assert!(matches!(
        SubjectProgress::from_record(&record),
        Err(RecordError::UnsupportedVersion(2))
    ));
    record.version = 1;
    record.passed = vec![1, 2, 3];
    assert!(matches!(
        SubjectProgress::from_record(&record),
        Err(RecordError::Bitmap(_))
    ));
}

/// Deterministic scattered bits (a 64-bit LCG), distinct, below `range`.
fn scattered(count: usize, range: u32) -> Vec<u32> {
    let mut seen = RoaringBitmap::new();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    while (seen.len() as usize) < count {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        seen.insert(((state >> 33) % u64::from(range)) as u32);
    }
    seen.iter().collect()
}

#[test]
fn memory_of_a_thousand_passed_lessons() {
    let mut in_order = SubjectProgress::new();
    for bit in 0..1000 {
        let d = CompletionDecision {
            bit_index: bit,
            is_first_completion: true,
            is_new_record: true,
            xp_earned: 0,
            best_hearts: 3,
            new_subject_xp: 0,
        };
        apply_completion(&mut in_order, &d, "x", 0);
    }
    let mut spread = SubjectProgress::new();
    for bit in scattered(1000, 5000) {
        spread.passed.insert(bit);
        spread.best_hearts.set(bit, 3);
    }
    spread.passed.optimize();
    let in_order_bitmap = in_order.passed.serialized_size();
    let spread_bitmap = spread.passed.serialized_size();
    println!(
        "memory: bitmap 1,000 in order = {in_order_bitmap} B, 1,000 scattered over 5,000 = \
         {spread_bitmap} B; best hearts in order = {} B, scattered = {} B",
        in_order.best_hearts.heap_bytes(),
        spread.best_hearts.heap_bytes()
    );
    assert!(
        in_order_bitmap <= 150,
        "in-order bitmap {in_order_bitmap} B > 150 B"
    );
    assert_eq!(in_order.best_hearts.heap_bytes(), 500);
    assert_eq!(in_order.heap_bytes(), in_order_bitmap + 500);
}

// ----- the progress tree -----

#[test]
fn progress_tree_serializes_nested_nodes() {
    let mut b = ViewBuilder::new("js", true);
    b.open(NodeKind::Topic, "t", true);
    b.lesson("a").lesson("b").access(paid("js-pro")).lesson("c");
    let view = b.build();
    let mut p = SubjectProgress::new();
    p.passed.insert(0);
    p.best_hearts.set(0, 4);
    let s = statuses(&view, &p.passed);
    let no_grants = |_: &str| false;
    let tree = ProgressTree {
        view: &view,
        statuses: &s,
        progress: &p,
        grants: &no_grants,
    };
    let value = serde_json::to_value(tree).expect("serializes");
    let lesson = |id: &str, status: &str, bit: u32, level: &str, accessible: bool| {
        json!({"id": id, "type": "lesson", "title": format!("Title of {id}"), "status": status,
               "access_level": level, "is_accessible": accessible, "bit_index": bit})
    };
    let mut a = lesson("a", "passed", 0, "public", true);
    a["best_hearts"] = json!(4);
    let expected = json!({
        "id": "js", "type": "subject", "title": "Title of js", "status": "unlocked",
        "is_linear": true, "access_level": "public", "is_accessible": true,
        "children": [{
            "id": "t", "type": "topic", "title": "Title of t", "status": "unlocked",
            "is_linear": true, "access_level": "public", "is_accessible": true,
            "children": [a, lesson("b", "unlocked", 1, "paid", false), lesson("c", "locked", 2, "public", true)]
        }]
    });
    assert_eq!(value, expected);
    // Field order is part of the contract's readability.
    let text = serde_json::to_string(&tree).expect("serializes");
    assert!(text.starts_with(r#"{"id":"js","type":"subject","title":"Title of js","status":"unlocked","is_linear":true"#), "{text}");
    let grants = |item: &str| item == "js-pro";
    let tree = ProgressTree {
        grants: &grants,
        ..tree
    };
    let value = serde_json::to_value(tree).expect("serializes");
    assert_eq!(
        value["children"][0]["children"][1]["is_accessible"],
        json!(true)
    );
}

#[test]
fn progress_tree_of_a_realistic_subject_has_every_lesson_once() {
    let view = realistic(643);
    let p = SubjectProgress::new();
    let s = statuses(&view, &p.passed);
    let tree = ProgressTree {
        view: &view,
        statuses: &s,
        progress: &p,
        grants: &|_| true,
    };
    let value = serde_json::to_value(tree).expect("serializes");
    fn count(v: &serde_json::Value) -> usize {
        let own = usize::from(v["type"] == "lesson");
        own + v
            .get("children")
            .and_then(|c| c.as_array())
            .map_or(0, |c| c.iter().map(count).sum())
    }
    assert_eq!(count(&value), 643);
}

// ----- properties -----

/// Statuses from the rules' text, recursively and with allocation: the oracle.
fn reference_statuses(view: &SubjectView, passed: &RoaringBitmap) -> Vec<Status> {
    fn is_passed(view: &SubjectView, passed: &RoaringBitmap, i: u32) -> bool {
        let node = &view.nodes[i as usize];
        if node.kind == NodeKind::Lesson {
            return passed.contains(node.bit_index);
        }
        let children: Vec<u32> = view.children(i).collect();
        !children.is_empty() && children.iter().all(|&c| is_passed(view, passed, c))
    }
    fn walk(
        view: &SubjectView,
        passed: &RoaringBitmap,
        i: u32,
        status: Status,
        out: &mut [Status],
    ) {
        out[i as usize] = status;
        let linear = view.nodes[i as usize].is_linear;
        let mut prev_passed = None;
        for c in view.children(i) {
            let child_passed = is_passed(view, passed, c);
            let s = if child_passed {
                Passed
            } else if status == Locked {
                Locked
            } else if !linear || prev_passed.is_none_or(|p| p) {
                Unlocked
            } else {
                Locked
            };
            walk(view, passed, c, s, out);
            prev_passed = Some(child_passed);
        }
    }
    let mut out = vec![Locked; view.nodes.len()];
    let root = if is_passed(view, passed, 0) {
        Passed
    } else {
        Unlocked
    };
    walk(view, passed, 0, root, &mut out);
    out
}

fn shape() -> impl Strategy<Value = Shape> {
    let leaf = prop::bool::weighted(0.2).prop_map(|paid| Shape::Lesson { paid });
    leaf.prop_recursive(3, 80, 6, |inner| {
        (any::<bool>(), prop::collection::vec(inner, 0..6))
            .prop_map(|(linear, children)| Shape::Container { linear, children })
    })
}

fn view_strategy() -> impl Strategy<Value = SubjectView> {
    (any::<bool>(), prop::collection::vec(shape(), 1..5), 0u32..4)
        .prop_filter_map("subject without lessons", |(linear, children, skip)| {
            from_shape(linear, &children, skip)
        })
}

fn passed_strategy() -> impl Strategy<Value = RoaringBitmap> {
    prop::collection::vec(0u32..120, 0..100).prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn statuses_match_the_reference(view in view_strategy(), passed in passed_strategy()) {
        prop_assert_eq!(statuses(&view, &passed), reference_statuses(&view, &passed));
    }

    #[test]
    fn structural_invariants_hold(view in view_strategy(), passed in passed_strategy()) {
        let s = statuses(&view, &passed);
        for (i, node) in view.nodes.iter().enumerate() {
            let children: Vec<u32> = view.children(i as u32).collect();
            if node.kind == NodeKind::Lesson {
                prop_assert_eq!(s[i] == Passed, passed.contains(node.bit_index));
            } else if s[i] == Passed {
                // A passed container has only passed children (and at least one).
                prop_assert!(!children.is_empty());
                prop_assert!(children.iter().all(|&c| s[c as usize] == Passed));
            }
            if s[i] == Locked {
                // Every child of a locked node is locked (or passed: passed beats locked).
                prop_assert!(children.iter().all(|&c| s[c as usize] != Unlocked));
            }
            if node.parent == NO_NODE {
                prop_assert!(s[i] != Locked);
            }
        }
    }

    #[test]
    fn suggested_lesson_is_the_first_unlocked_accessible_one(
        view in view_strategy(), passed in passed_strategy(), granted in any::<bool>()
    ) {
        let s = statuses(&view, &passed);
        let allowed = |a: &crate::content::view::Access| a.allows(|item| granted && item == PAID_ITEM);
        let got = suggested_next_lesson(&view, &s, allowed);
        let expected = view.lessons.iter().copied().find(|&i| {
            s[i as usize] == Unlocked && allowed(&view.nodes[i as usize].access)
        });
        prop_assert_eq!(got, expected);
        if let Some(i) = got {
            prop_assert_eq!(s[i as usize], Unlocked);
            prop_assert!(allowed(&view.nodes[i as usize].access));
            prop_assert_eq!(view.nodes[i as usize].kind, NodeKind::Lesson);
        }
    }

    #[test]
    fn summary_counts_visible_passed_lessons(view in view_strategy(), passed in passed_strategy()) {
        let got = summary(&view, &passed);
        let expected = view.lessons.iter()
            .filter(|&&i| passed.contains(view.nodes[i as usize].bit_index))
            .count() as u32;
        prop_assert_eq!(got.passed_lessons, expected);
        prop_assert_eq!(got.total_lessons, view.lessons.len() as u32);
        prop_assert!((0.0..=100.0).contains(&got.completion_percentage));
    }

    #[test]
    fn completions_respect_the_xp_bound_and_apply_is_idempotent(
        view in view_strategy(),
        attempts in prop::collection::vec((any::<prop::sample::Index>(), 0u8..=6), 1..60),
    ) {
        let rules = XpRules::default();
        let mut progress = SubjectProgress::new();
        let mut scratch = Vec::new();
        let mut xp_per_bit = std::collections::HashMap::<u32, u64>::new();
        for (pick, hearts) in attempts {
            let node = view.lessons[pick.index(view.lessons.len())];
            let lesson = &view.nodes[node as usize];
            let locked = statuses(&view, &progress.passed)[node as usize] == Locked;
            match decide_completion(&view, node, &progress, hearts, &rules, &mut scratch) {
                Err(CompletionError::NotUnlocked) => prop_assert!(locked),
                Err(CompletionError::NoHearts) => prop_assert!(!locked && hearts == 0),
                Ok(d) => {
                    prop_assert!(!locked && hearts > 0);
                    prop_assert_eq!(d.is_first_completion, !progress.passed.contains(lesson.bit_index));
                    let mut once = progress.clone();
                    apply_completion(&mut once, &d, &lesson.id, 7);
                    apply_completion(&mut progress, &d, &lesson.id, 7);
                    apply_completion(&mut progress, &d, &lesson.id, 7);
                    prop_assert_eq!(&once, &progress);
                    *xp_per_bit.entry(lesson.bit_index).or_default() += u64::from(d.xp_earned);
                }
            }
        }
        for &node in &view.lessons {
            let lesson = &view.nodes[node as usize];
            let earned = xp_per_bit.get(&lesson.bit_index).copied().unwrap_or(0);
            let best = u64::from(progress.best_hearts.get(lesson.bit_index));
            let bound = if progress.passed.contains(lesson.bit_index) {
                u64::from(lesson.base_xp) + best * u64::from(rules.per_heart)
            } else {
                0
            };
            prop_assert!(earned <= bound, "lesson {} earned {} > {}", lesson.id, earned, bound);
            prop_assert!(best <= u64::from(rules.max_hearts));
        }
        prop_assert_eq!(progress.total_xp_earned, xp_per_bit.values().sum::<u64>());
    }

    #[test]
    fn best_hearts_round_trip(entries in prop::collection::vec((0u32..3000, 0u8..=15), 0..200)) {
        let mut table = BestHearts::new();
        let mut model = std::collections::BTreeMap::new();
        for (bit, hearts) in entries {
            table.set(bit, hearts);
            model.insert(bit, hearts);
        }
        model.retain(|_, h| *h > 0);
        let listed: Vec<(u32, u8)> = table.iter().collect();
        prop_assert_eq!(&listed, &model.iter().map(|(&b, &h)| (b, h)).collect::<Vec<_>>());
        for (&bit, &hearts) in &model {
            prop_assert_eq!(table.get(bit), hearts);
        }
        let back = BestHearts::from_bytes(&table.to_bytes());
        prop_assert_eq!(&back, &table);
        prop_assert_eq!(back.heap_bytes(), model.keys().next_back().map_or(0, |&b| b as usize / 2 + 1));
    }
}
