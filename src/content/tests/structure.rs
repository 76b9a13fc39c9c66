//! Invariants of the flattened view over random trees: `parent`, `prev_sibling`,
//! `subtree_end`, `children()`, lessons and the dropping of empty containers.

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::content::view::{NO_NODE, NodeKind};

/// A random subject shape: tracks → units → topics → lessons, each node with a
/// published flag; lesson ids are numbered in document order.
type Shape = Vec<(bool, Vec<(bool, Vec<(bool, Vec<bool>)>)>)>;

fn shape() -> impl Strategy<Value = Shape> {
    let lessons = proptest::collection::vec(prop::bool::weighted(0.8), 0..4);
    let topics = proptest::collection::vec((prop::bool::weighted(0.8), lessons), 0..3);
    let units = proptest::collection::vec((prop::bool::weighted(0.8), topics), 0..3);
    proptest::collection::vec((prop::bool::weighted(0.8), units), 0..4)
}

/// The document for `shape`, and the ids of the lessons that must be visible.
fn document(shape: &Shape) -> (Value, Vec<String>) {
    let mut visible = Vec::new();
    let mut n = 0;
    let tracks: Vec<Value> = shape
        .iter()
        .enumerate()
        .map(|(t, (tp, units))| {
            let units: Vec<Value> = units.iter().enumerate().map(|(u, (up, topics))| {
            let topics: Vec<Value> = topics.iter().enumerate().map(|(p, (pp, lessons))| {
                let lessons: Vec<Value> = lessons.iter().map(|lp| {
                    n += 1;
                    let id = format!("l{n}");
                    if *tp && *up && *pp && *lp {
                        visible.push(id.clone());
                    }
                    let mut l = lesson(&id);
                    l["is_published"] = json!(lp);
                    l
                }).collect();
                json!({"id": format!("p{t}-{u}-{p}"), "title": "P", "is_published": pp,
                       "lessons": lessons})
            }).collect();
            json!({"id": format!("u{t}-{u}"), "title": "U", "is_published": up, "topics": topics})
        }).collect();
            json!({"id": format!("t{t}"), "title": "T", "is_published": tp, "units": units})
        })
        .collect();
    let doc = json!({"format": "memora.subject/v1", "id": "s", "title": "S", "tracks": tracks});
    (doc, visible)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn flattened_tree_invariants(shape in shape()) {
        let (doc, visible) = document(&shape);
        let c = import_subject(&Catalog::default(), &doc);
        let c = import_plan(&c, &plan("p", &["s"], json!([])));
        let view = c.plan_view("p").unwrap();
        if visible.is_empty() {
            prop_assert!(view.subjects.is_empty());
            return Ok(());
        }
        let s = &view.subjects[0];
        let nodes = &s.nodes;
        let lesson_ids: Vec<String> =
            s.lessons.iter().map(|&i| nodes[i as usize].id.to_string()).collect();
        prop_assert_eq!(&lesson_ids, &visible);
        prop_assert_eq!(s.visible_bits.len() as usize, visible.len());
        prop_assert_eq!(nodes[0].kind, NodeKind::Subject);
        prop_assert_eq!(nodes[0].parent, NO_NODE);
        prop_assert_eq!(nodes[0].subtree_end as usize, nodes.len());
        for i in 0..nodes.len() as u32 {
            let n = &nodes[i as usize];
            // children() enumerates exactly the nodes whose parent is i, in order.
            let expected: Vec<u32> =
                (0..nodes.len() as u32).filter(|&j| nodes[j as usize].parent == i).collect();
            let children: Vec<u32> = s.children(i).collect();
            prop_assert_eq!(&children, &expected);
            // prev_sibling links the children in order.
            let mut prev = NO_NODE;
            for &c in &children {
                prop_assert_eq!(nodes[c as usize].prev_sibling, prev);
                prev = c;
            }
            // The subtree is contiguous and its nodes descend from i.
            prop_assert!(n.subtree_end > i && n.subtree_end as usize <= nodes.len());
            for j in i + 1..n.subtree_end {
                let mut a = nodes[j as usize].parent;
                while a != NO_NODE && a != i {
                    a = nodes[a as usize].parent;
                }
                prop_assert_eq!(a, i);
            }
            // Lessons are leaves; containers hold at least one lesson.
            if n.kind == NodeKind::Lesson {
                prop_assert_eq!(n.subtree_end, i + 1);
            } else {
                prop_assert!(
                    (i..n.subtree_end).any(|j| nodes[j as usize].kind == NodeKind::Lesson)
                );
            }
        }
    }
}
