//! Completion checks, XP of first completions and replays.

use super::*;

pub(super) fn complete(
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
