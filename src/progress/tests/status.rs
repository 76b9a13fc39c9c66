//! Hand-written cases of the status rules, the next lesson and the summary.

use super::*;

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
    use crate::progress::status::percentage;
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
