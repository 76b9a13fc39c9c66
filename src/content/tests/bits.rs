//! Bit index assignment (content.md "Bit indexes"): stable across reorders, retired
//! forever on removal, never given to two ids.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

fn bits(c: &Catalog, subject: &str) -> HashMap<String, u32> {
    c.subject(subject)
        .unwrap()
        .bit_indexes
        .iter()
        .cloned()
        .collect()
}

#[test]
fn new_lessons_get_the_next_index_in_document_order() {
    let c = import_subject(&Catalog::default(), &simple_subject("s", &["b", "a", "c"]));
    let r = c.subject("s").unwrap();
    assert_eq!(
        r.bit_indexes,
        vec![("a".into(), 1), ("b".into(), 0), ("c".into(), 2)]
    );
    assert_eq!(r.next_bit_index, 3);
}

#[test]
fn reorder_keeps_removal_retires_readd_restores() {
    let c = import_subject(&Catalog::default(), &simple_subject("s", &["a", "b", "c"]));
    // Reordered, one removed, one added (case changed on a kept id).
    let c = import_subject(&c, &simple_subject("s", &["C", "d", "a"]));
    let b = bits(&c, "s");
    assert_eq!((b["a"], b["b"], b["c"], b["d"]), (0, 1, 2, 3));
    assert_eq!(c.subject("s").unwrap().next_bit_index, 4);
    // The view carries the kept indexes in the new order.
    let c = import_plan(&c, &plan("p", &["s"], json!([])));
    let view = c.plan_view("p").unwrap();
    let s = &view.subjects[0];
    let order: Vec<(String, u32)> = s
        .lessons
        .iter()
        .map(|&i| {
            (
                s.nodes[i as usize].id.to_string(),
                s.nodes[i as usize].bit_index,
            )
        })
        .collect();
    assert_eq!(
        order,
        vec![("C".into(), 2), ("d".into(), 3), ("a".into(), 0)]
    );
    assert_eq!(s.visible_bits.iter().collect::<Vec<_>>(), vec![0, 2, 3]);
    // "b" comes back: its old index, never a new one.
    let c = import_subject(&c, &simple_subject("s", &["b", "e"]));
    let b = bits(&c, "s");
    assert_eq!((b["b"], b["e"]), (1, 4));
}

#[test]
fn a_lesson_moved_to_another_subject_is_new_there() {
    let c = import_subject(&Catalog::default(), &simple_subject("s1", &["a", "x"]));
    let c = import_subject(&c, &simple_subject("s2", &["b"]));
    let c = import_subject(&c, &simple_subject("s1", &["a"]));
    let c = import_subject(&c, &simple_subject("s2", &["b", "x"]));
    assert_eq!(bits(&c, "s2")["x"], 1);
    assert_eq!(c.lesson_subject("x"), Some("s2"));
    // s1 still remembers x's retired index.
    assert_eq!(bits(&c, "s1")["x"], 1);
}

fn id_sets() -> impl Strategy<Value = Vec<Vec<String>>> {
    let pool: Vec<String> = (0..12).map(|i| format!("l{i}")).collect();
    let one = proptest::sample::subsequence(pool, 0..=12)
        .prop_shuffle()
        .prop_flat_map(|ids| {
            let n = ids.len();
            (Just(ids), proptest::collection::vec(any::<bool>(), n))
        })
        .prop_map(|(ids, upper)| {
            ids.into_iter()
                .zip(upper)
                .map(|(id, u)| if u { id.to_uppercase() } else { id })
                .collect()
        });
    proptest::collection::vec(one, 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn indexes_are_never_reused_or_changed(seq in id_sets()) {
        let mut c = Catalog::default();
        let mut ever: HashMap<String, u32> = HashMap::new();
        let mut last_next = 0;
        for ids in &seq {
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            c = import_subject(&c, &simple_subject("s", &refs));
            let r = c.subject("s").unwrap();
            prop_assert!(r.next_bit_index >= last_next);
            last_next = r.next_bit_index;
            let mut seen_index = std::collections::HashSet::new();
            for (id, index) in &r.bit_indexes {
                prop_assert!(seen_index.insert(*index), "index {} given twice", index);
                prop_assert!(*index < r.next_bit_index);
                if let Some(old) = ever.insert(id.clone(), *index) {
                    prop_assert_eq!(old, *index, "index of {} changed", id);
                }
            }
            // Every id ever seen is still remembered.
            prop_assert_eq!(ever.len(), r.bit_indexes.len());
            prop_assert!(r.bit_indexes.windows(2).all(|w| w[0].0 < w[1].0));
            for id in ids {
                prop_assert!(r.bit_index(&id.to_ascii_lowercase()).is_some());
            }
        }
    }
}
