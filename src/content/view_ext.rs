//! Convenience lookups on the fixed view types of view.rs (kept separate so that
//! view.rs stays the unchanged contract other modules code against).

use std::sync::Arc;

use super::view::{NodeKind, PlanView, SubjectView, ViewNode};

impl SubjectView {
    /// The visible lesson holding a question id (case-insensitive), as an index into
    /// `nodes`.
    pub fn question_node(&self, question_id: &str) -> Option<u32> {
        self.question_lesson
            .get(question_id.to_ascii_lowercase().as_str())
            .copied()
    }

    /// A node by index.
    pub fn node(&self, i: u32) -> &ViewNode {
        &self.nodes[i as usize]
    }
}

impl PlanView {
    /// A visible lesson by id (case-insensitive): its subject view and node index.
    pub fn lesson(&self, lesson_id: &str) -> Option<(&Arc<SubjectView>, u32)> {
        let key = lesson_id.to_ascii_lowercase();
        self.subjects
            .iter()
            .find_map(|s| s.lesson_by_id.get(key.as_str()).map(|&i| (s, i)))
    }

    /// Number of visible lessons over all subjects of the plan.
    pub fn total_lessons(&self) -> u32 {
        self.subjects.iter().map(|s| s.total_lessons()).sum()
    }
}

impl ViewNode {
    /// Whether the node is a lesson.
    pub fn is_lesson(&self) -> bool {
        self.kind == NodeKind::Lesson
    }
}
