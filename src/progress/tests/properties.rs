//! Property tests of the rules against an independent recursive oracle.

use super::*;

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
    fn fast_tree_writer_matches_serde_byte_for_byte(
        view in view_strategy(), passed in passed_strategy(), granted in any::<bool>(),
        hearts in 1u8..=5
    ) {
        let s = statuses(&view, &passed);
        let mut progress = crate::progress::state::SubjectProgress::default();
        for bit in &passed {
            progress.passed.insert(bit);
            progress.best_hearts.set(bit, hearts);
        }
        let grants = move |item: &str| granted && item == PAID_ITEM;
        let tree = crate::progress::tree::ProgressTree {
            view: &view,
            statuses: &s,
            progress: &progress,
            grants: &grants,
        };
        let mut fast = Vec::new();
        tree.write_json(&mut fast);
        let reference = serde_json::to_vec(&tree).expect("serde");
        prop_assert_eq!(String::from_utf8_lossy(&fast), String::from_utf8_lossy(&reference));
        // A second write uses the cached fragments and gives the same bytes.
        let mut again = Vec::new();
        tree.write_json(&mut again);
        prop_assert_eq!(again, fast);
    }

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
