//! A subject document flattened into one uniform pre-order node list.
//!
//! The document model has one struct per level; plan validation (resolving override
//! targets, walking ancestors) and the view builder want one node type and indexes.
//! A [`ContentTree`] is built once per stored subject and shared by every plan view.

use std::collections::HashMap;
use std::sync::Arc;

use super::model::{Lesson, StageType, Subject};
use super::view::{NO_NODE, NodeKind};

/// One node of a subject document, level-independent.
#[derive(Debug, Clone)]
pub struct TreeNode {
    /// Level.
    pub kind: NodeKind,
    /// Id as written.
    pub id: Arc<str>,
    /// Title as written.
    pub title: Arc<str>,
    /// Description as written.
    pub description: Option<Arc<str>>,
    /// Document `is_published`.
    pub is_published: bool,
    /// Document `is_free_preview`.
    pub is_free_preview: bool,
    /// Document `is_linear` (false for lessons).
    pub is_linear: bool,
    /// Document `required_item` (subjects and tracks; never empty).
    pub item: Option<Arc<str>>,
    /// Tracks: `is_sold_separately`.
    pub sold_separately: bool,
    /// Tracks: `parent_item_required`.
    pub parent_item_required: bool,
    /// Index of the parent, [`NO_NODE`] for the subject.
    pub parent: u32,
    /// One past the last index of the subtree.
    pub subtree_end: u32,
    /// Lessons: bit index (`None` if the record lacks one: the lesson is then hidden).
    pub bit_index: Option<u32>,
    /// Lessons: `base_xp`.
    pub base_xp: u32,
    /// Lessons: number of stages.
    pub stage_count: u32,
    /// Lessons: question ids (lowercased).
    pub questions: Vec<Box<str>>,
}

/// A subject flattened in pre-order, with an id index.
#[derive(Debug, Clone, Default)]
pub struct ContentTree {
    /// Nodes in pre-order; `nodes[0]` is the subject.
    pub nodes: Vec<TreeNode>,
    /// Lowercased node id → index.
    pub by_id: HashMap<Box<str>, u32>,
    /// Number of lessons (published or not).
    pub lesson_count: u32,
}

impl ContentTree {
    /// Flattens `subject`, taking bit indexes from `bits` (lowercased lesson id → index).
    pub fn build(subject: &Subject, bits: impl Fn(&str) -> Option<u32>) -> Self {
        let mut t = ContentTree::default();
        let s = t.push(
            NodeKind::Subject,
            NO_NODE,
            (&subject.id, &subject.title, &subject.description),
            subject.is_published,
            subject.is_free_preview,
            subject.is_linear,
        );
        t.nodes[s as usize].item = subject.required_item.as_deref().map(Arc::from);
        for track in &subject.tracks {
            let tr = t.push(
                NodeKind::Track,
                s,
                (&track.id, &track.title, &track.description),
                track.is_published,
                track.is_free_preview,
                track.is_linear,
            );
            let n = &mut t.nodes[tr as usize];
            n.item = track.required_item.as_deref().map(Arc::from);
            n.sold_separately = track.is_sold_separately;
            n.parent_item_required = track.parent_item_required;
            for unit in &track.units {
                let u = t.push(
                    NodeKind::Unit,
                    tr,
                    (&unit.id, &unit.title, &unit.description),
                    unit.is_published,
                    unit.is_free_preview,
                    unit.is_linear,
                );
                for topic in &unit.topics {
                    let tp = t.push(
                        NodeKind::Topic,
                        u,
                        (&topic.id, &topic.title, &topic.description),
                        topic.is_published,
                        topic.is_free_preview,
                        topic.is_linear,
                    );
                    for lesson in &topic.lessons {
                        t.push_lesson(lesson, tp, &bits);
                    }
                    t.close(tp);
                }
                t.close(u);
            }
            t.close(tr);
        }
        t.close(s);
        t
    }

    fn push(
        &mut self,
        kind: NodeKind,
        parent: u32,
        (id, title, description): (&str, &str, &Option<String>),
        is_published: bool,
        is_free_preview: bool,
        is_linear: bool,
    ) -> u32 {
        let i = self.nodes.len() as u32;
        self.by_id.insert(id.to_ascii_lowercase().into(), i);
        self.nodes.push(TreeNode {
            kind,
            id: id.into(),
            title: title.into(),
            description: description.as_deref().map(Arc::from),
            is_published,
            is_free_preview,
            is_linear,
            item: None,
            sold_separately: false,
            parent_item_required: false,
            parent,
            subtree_end: i + 1,
            bit_index: None,
            base_xp: 0,
            stage_count: 0,
            questions: Vec::new(),
        });
        i
    }

    fn push_lesson(&mut self, lesson: &Lesson, parent: u32, bits: &impl Fn(&str) -> Option<u32>) {
        let lower = lesson.id.to_ascii_lowercase();
        let i = self.push(
            NodeKind::Lesson,
            parent,
            (&lesson.id, &lesson.title, &lesson.description),
            lesson.is_published,
            lesson.is_free_preview,
            false,
        );
        self.lesson_count += 1;
        let n = &mut self.nodes[i as usize];
        n.bit_index = bits(&lower);
        n.base_xp = lesson.base_xp;
        n.stage_count = lesson.stages.len() as u32;
        n.questions = lesson
            .stages
            .iter()
            .filter(|s| s.kind == StageType::Question)
            .filter_map(|s| s.id.as_deref())
            .map(|q| q.to_ascii_lowercase().into())
            .collect();
    }

    fn close(&mut self, i: u32) {
        self.nodes[i as usize].subtree_end = self.nodes.len() as u32;
    }

    /// Children of node `i`, in order.
    pub fn children(&self, i: u32) -> impl Iterator<Item = u32> + '_ {
        let end = self.nodes[i as usize].subtree_end;
        let mut next = i + 1;
        std::iter::from_fn(move || {
            (next < end).then(|| {
                let child = next;
                next = self.nodes[child as usize].subtree_end;
                child
            })
        })
    }

    /// Whether node `i` or one of its ancestors carries a document item.
    pub fn has_item_at_or_above(&self, mut i: u32) -> bool {
        while i != NO_NODE {
            let n = &self.nodes[i as usize];
            if n.item.is_some() {
                return true;
            }
            i = n.parent;
        }
        false
    }

    /// Lowercased ids of the ancestors of node `i`, nearest first.
    pub fn ancestor_ids(&self, i: u32) -> Vec<String> {
        let mut out = Vec::new();
        let mut p = self.nodes[i as usize].parent;
        while p != NO_NODE {
            out.push(self.nodes[p as usize].id.to_ascii_lowercase());
            p = self.nodes[p as usize].parent;
        }
        out
    }
}
