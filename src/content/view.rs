//! The per-plan visible tree: the shape every progress computation walks.
//!
//! A [`PlanView`] is derived from the catalog (subjects + a plan document) once per
//! content change and shared immutably (`Arc`) by all requests. Hidden and unpublished
//! nodes are absent, containers left without a visible lesson are dropped, overrides
//! (`set_linear`, `rename`, access-level overrides) are already applied, and order is
//! the document order (content.md "Access levels and plan overrides", progress.md).
//!
//! Each subject's tree is flattened in pre-order so that the two status passes of
//! progress.md are two linear scans over a `Vec` (no pointer chasing, no recursion).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use roaring::RoaringBitmap;
use serde::Serialize;

/// Sentinel for "no node" in [`ViewNode::parent`] and [`ViewNode::prev_sibling`].
pub const NO_NODE: u32 = u32::MAX;

/// The four node levels of content.md, plus lessons. Stages are not nodes of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// The root of a subject tree.
    Subject,
    /// Child of a subject.
    Track,
    /// Child of a track.
    Unit,
    /// Child of a unit; parent of lessons.
    Topic,
    /// A leaf: what a student completes.
    Lesson,
}

/// Access levels of content.md, decided per node and per plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessLevel {
    /// Anyone, even without a session.
    Public,
    /// Any logged-in student of the plan.
    Authenticated,
    /// Needs a grant for the effective item(s).
    Paid,
    /// Open to every student of the plan although an ancestor may be paid.
    FreePreview,
}

/// The decided access of one node: its level and, for `Paid`, the item codes a student's
/// grants must **all** hold (one item, or two under `parent_item_required`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The decided level.
    pub level: AccessLevel,
    /// Items a grant must hold when `level == Paid`; empty otherwise.
    pub items: Vec<Arc<str>>,
}

impl Access {
    /// Whether a student holding `grants` may open this node (content.md "Enforcement").
    pub fn allows(&self, mut has_grant: impl FnMut(&str) -> bool) -> bool {
        match self.level {
            AccessLevel::Public | AccessLevel::Authenticated | AccessLevel::FreePreview => true,
            AccessLevel::Paid => self.items.iter().all(|item| has_grant(item)),
        }
    }

    /// The item shown to clients as `required_item` (the first effective item), if paid.
    pub fn required_item(&self) -> Option<&str> {
        match self.level {
            AccessLevel::Paid => self.items.first().map(|s| &**s),
            _ => None,
        }
    }
}

/// One visible node of a subject tree, stored in pre-order in [`SubjectView::nodes`].
#[derive(Debug, Clone)]
pub struct ViewNode {
    /// Level of the node.
    pub kind: NodeKind,
    /// The node's id as written by the author (original case).
    pub id: Arc<str>,
    /// Title after a plan's `rename` override.
    pub title: Arc<str>,
    /// Optional description from the document.
    pub description: Option<Arc<str>>,
    /// Whether this node's children must be passed in order (after `set_linear`).
    /// Always `false` for lessons.
    pub is_linear: bool,
    /// The access decided for this node in this plan.
    pub access: Access,
    /// Index of the parent in `nodes`, or [`NO_NODE`] for the subject (index 0).
    pub parent: u32,
    /// Index of the immediately previous visible sibling, or [`NO_NODE`] for a first child.
    pub prev_sibling: u32,
    /// One past the last index of this node's subtree (pre-order), so the subtree of
    /// node `i` is `i..subtree_end` and its children are found by hopping `subtree_end`.
    pub subtree_end: u32,
    /// Lessons only: the lesson's bit index in the (student, subject) bitmap.
    pub bit_index: u32,
    /// Lessons only: XP for a first completion before hearts (`base_xp`).
    pub base_xp: u32,
    /// Lessons only: number of stages (for compiled files).
    pub stage_count: u32,
}

/// One visible subject of a plan, flattened.
#[derive(Debug, Clone)]
pub struct SubjectView {
    /// Nodes in pre-order; `nodes[0]` is the subject itself. Never empty: a subject with
    /// no visible lesson is not part of the plan view at all.
    pub nodes: Vec<ViewNode>,
    /// Indices into `nodes` of the lessons, in document order.
    pub lessons: Vec<u32>,
    /// Bit indexes of the visible lessons (`passed_lessons = |passed ∩ visible_bits|`).
    pub visible_bits: RoaringBitmap,
    /// Lowercased lesson id → index into `nodes`.
    pub lesson_by_id: HashMap<Box<str>, u32>,
    /// Lowercased question id → index into `nodes` of the lesson that holds it.
    pub question_lesson: HashMap<Box<str>, u32>,
    /// Pre-escaped JSON of each node's fixed fields, filled on first use by
    /// `progress::tree` (the per-student fields are written around them per request).
    pub json: OnceLock<Vec<NodeJson>>,
}

/// The fixed parts of one node's JSON in a progress answer, already escaped: everything
/// but `status`, `is_accessible` and `best_hearts`, which depend on the student.
#[derive(Debug, Clone, Default)]
pub struct NodeJson {
    /// `{"id":…,"type":…,"title":…,"status":"`
    pub head: Box<[u8]>,
    /// `","is_linear":…,"access_level":…,"is_accessible":`
    pub mid: Box<[u8]>,
    /// Lessons: `,"bit_index":N`; containers: empty.
    pub tail: Box<[u8]>,
}

impl SubjectView {
    /// The subject's id (original case).
    pub fn subject_id(&self) -> &Arc<str> {
        &self.nodes[0].id
    }

    /// Number of visible lessons.
    pub fn total_lessons(&self) -> u32 {
        self.lessons.len() as u32
    }

    /// Index of a visible lesson by id (case-insensitive).
    pub fn lesson_node(&self, lesson_id: &str) -> Option<u32> {
        self.lesson_by_id
            .get(lesson_id.to_ascii_lowercase().as_str())
            .copied()
    }

    /// The children of node `i`, in order.
    pub fn children(&self, i: u32) -> impl Iterator<Item = u32> + '_ {
        let end = self.nodes[i as usize].subtree_end;
        let mut next = i + 1;
        std::iter::from_fn(move || {
            if next >= end {
                return None;
            }
            let child = next;
            next = self.nodes[child as usize].subtree_end;
            Some(child)
        })
    }
}

/// A published plan as students see it: its visible subjects in plan order.
#[derive(Debug, Clone)]
pub struct PlanView {
    /// The plan's id.
    pub plan_id: Arc<str>,
    /// The plan's title.
    pub title: Arc<str>,
    /// Visible subjects in plan order (hidden or empty subjects are absent).
    pub subjects: Vec<Arc<SubjectView>>,
    /// Lowercased subject id → index into `subjects`.
    pub subject_by_id: HashMap<Box<str>, usize>,
}

impl PlanView {
    /// A visible subject by id (case-insensitive).
    pub fn subject(&self, subject_id: &str) -> Option<&Arc<SubjectView>> {
        self.subject_by_id
            .get(subject_id.to_ascii_lowercase().as_str())
            .map(|&i| &self.subjects[i])
    }
}
