//! Builds a plan's [`PlanView`] from its document and its subjects' [`ContentTree`]s:
//! hides, decides access (access.rs), applies `set_linear` and `rename`, drops containers
//! without a visible lesson, and flattens each subject in pre-order (view.rs).

use std::collections::HashMap;
use std::sync::Arc;

use roaring::RoaringBitmap;

use super::access::{Inherited, NodeOverrides, decide, overrides_by_target};
use super::model::Plan;
use super::tree::ContentTree;
use super::view::{NO_NODE, NodeKind, PlanView, SubjectView, ViewNode};

/// Builds the view of `plan`; `subject(id)` finds a stored subject (case-insensitive).
/// Subjects the catalog does not hold, or with no visible lesson, are absent.
pub fn build_plan_view<'c>(
    plan: &Plan,
    subject: impl Fn(&str) -> Option<&'c ContentTree>,
) -> PlanView {
    let overrides = overrides_by_target(plan);
    let mut subjects = Vec::new();
    let mut subject_by_id = HashMap::new();
    for id in &plan.subjects {
        let Some(tree) = subject(id) else { continue };
        let Some(view) = build_subject_view(tree, &overrides) else {
            continue;
        };
        let key: Box<str> = view.nodes[0].id.to_ascii_lowercase().into();
        if subject_by_id.contains_key(&key) {
            continue;
        }
        subject_by_id.insert(key, subjects.len());
        subjects.push(Arc::new(view));
    }
    PlanView {
        plan_id: plan.id.as_str().into(),
        title: plan.title.as_str().into(),
        subjects,
        subject_by_id,
    }
}

/// Builds one subject's visible tree, or `None` when nothing of it is visible.
pub fn build_subject_view(
    tree: &ContentTree,
    overrides: &HashMap<Box<str>, NodeOverrides>,
) -> Option<SubjectView> {
    if tree.nodes.is_empty() {
        return None;
    }
    let mut b = Builder {
        tree,
        overrides,
        view: SubjectView {
            nodes: Vec::with_capacity(tree.nodes.len()),
            lessons: Vec::new(),
            visible_bits: RoaringBitmap::new(),
            lesson_by_id: HashMap::new(),
            question_lesson: HashMap::new(),
            json: std::sync::OnceLock::new(),
        },
    };
    b.visit(0, NO_NODE, &[])?;
    Some(b.view)
}

struct Builder<'a> {
    tree: &'a ContentTree,
    overrides: &'a HashMap<Box<str>, NodeOverrides>,
    view: SubjectView,
}

impl Builder<'_> {
    /// Emits node `i` (and its visible subtree) under output node `parent`; returns its
    /// output index, or `None` when it is hidden or holds no visible lesson.
    fn visit(&mut self, i: u32, parent: u32, nearest_items: &[Arc<str>]) -> Option<u32> {
        let node = &self.tree.nodes[i as usize];
        let ov = self.overrides.get(node.id.to_ascii_lowercase().as_str());
        if !node.is_published || ov.is_some_and(|o| o.hide) {
            return None;
        }
        let is_lesson = node.kind == NodeKind::Lesson;
        let bit_index = match (is_lesson, node.bit_index) {
            (true, None) => return None,
            (_, b) => b.unwrap_or(0),
        };
        let decision = {
            let parent_access =
                (parent != NO_NODE).then(|| &self.view.nodes[parent as usize].access);
            decide(
                node,
                ov,
                &Inherited {
                    parent: parent_access,
                    nearest_items,
                },
            )
        };
        let out = self.view.nodes.len() as u32;
        self.view.nodes.push(ViewNode {
            kind: node.kind,
            id: node.id.clone(),
            title: ov
                .and_then(|o| o.rename.clone())
                .unwrap_or_else(|| node.title.clone()),
            description: node.description.clone(),
            is_linear: !is_lesson && ov.and_then(|o| o.linear).unwrap_or(node.is_linear),
            access: decision.access,
            parent,
            prev_sibling: NO_NODE,
            subtree_end: out + 1,
            bit_index,
            base_xp: node.base_xp,
            stage_count: node.stage_count,
        });
        if is_lesson {
            let v = &mut self.view;
            v.lessons.push(out);
            v.visible_bits.insert(bit_index);
            v.lesson_by_id
                .insert(node.id.to_ascii_lowercase().into(), out);
            for q in &node.questions {
                v.question_lesson.insert(q.clone(), out);
            }
            return Some(out);
        }
        let lessons_before = self.view.lessons.len();
        let mut prev = NO_NODE;
        let tree = self.tree;
        for child in tree.children(i) {
            if let Some(c) = self.visit(child, out, &decision.nearest_items) {
                self.view.nodes[c as usize].prev_sibling = prev;
                prev = c;
            }
        }
        if self.view.lessons.len() == lessons_before {
            // No visible lesson below: every child was already dropped.
            self.view.nodes.truncate(out as usize);
            return None;
        }
        self.view.nodes[out as usize].subtree_end = self.view.nodes.len() as u32;
        Some(out)
    }
}
