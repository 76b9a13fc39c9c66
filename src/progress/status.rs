//! Node statuses, the suggested next lesson and the completion summary (progress.md
//! "Status of every node" and "Next lesson and completion").
//!
//! Statuses are recomputed per request from the passed bitmap: two linear scans over
//! the flat pre-order [`SubjectView`], writing into a caller-owned buffer so that the
//! hot path allocates nothing.

use roaring::RoaringBitmap;
use serde::Serialize;

use crate::content::view::{Access, NO_NODE, NodeKind, SubjectView};

/// The status of one node for one student.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not reachable yet: an ancestor is locked or a linear predecessor is not passed.
    Locked,
    /// Open to play and not passed.
    Unlocked,
    /// A lesson whose bit is set, or a container whose children are all passed.
    Passed,
}

/// Computes the status of every node of `view` into `out` (resized to
/// `view.nodes.len()`, indexed like `view.nodes`).
///
/// Pass 1 runs bottom-up (reverse pre-order): a lesson is passed iff its bit is in
/// `passed`; a container is passed iff it has a child and every child is passed. A
/// not-passed node marks its parent not passed, so every node is touched once. Pass 2
/// runs top-down (pre-order), where parents and previous siblings are already final.
/// Bits in `passed` that belong to no visible lesson are never looked at.
pub fn compute_statuses(view: &SubjectView, passed: &RoaringBitmap, out: &mut Vec<Status>) {
    let nodes = &view.nodes;
    out.clear();
    // `Passed` is pass 1's "still passed" mark; `Locked` its "not passed" mark.
    out.resize(nodes.len(), Status::Passed);

    for i in (0..nodes.len()).rev() {
        let node = &nodes[i];
        let is_passed = if node.kind == NodeKind::Lesson {
            passed.contains(node.bit_index)
        } else {
            // Children already marked the container if one of them is not passed;
            // a container without children is never passed.
            out[i] == Status::Passed && node.subtree_end as usize > i + 1
        };
        if !is_passed {
            out[i] = Status::Locked;
            if node.parent != NO_NODE {
                out[node.parent as usize] = Status::Locked;
            }
        }
    }

    for i in 0..nodes.len() {
        if out[i] == Status::Passed {
            continue;
        }
        let node = &nodes[i];
        out[i] = if node.parent == NO_NODE {
            Status::Unlocked
        } else {
            let parent = node.parent as usize;
            match out[parent] {
                Status::Locked => Status::Locked,
                // A passed parent has only passed children, so this arm is an unlocked
                // parent in practice; treating both alike keeps the rule total.
                Status::Unlocked | Status::Passed => {
                    if !nodes[parent].is_linear
                        || node.prev_sibling == NO_NODE
                        || out[node.prev_sibling as usize] == Status::Passed
                    {
                        Status::Unlocked
                    } else {
                        Status::Locked
                    }
                }
            }
        };
    }
}

/// The first lesson, depth-first in document order, that is unlocked and whose access
/// `accessible` allows; locked and passed subtrees are skipped whole. Returns the
/// lesson's index in `view.nodes`, or `None` when every lesson is passed, locked or
/// inaccessible. `statuses` must come from [`compute_statuses`] on the same view.
pub fn suggested_next_lesson(
    view: &SubjectView,
    statuses: &[Status],
    mut accessible: impl FnMut(&Access) -> bool,
) -> Option<u32> {
    let nodes = &view.nodes;
    let mut i = 0usize;
    while i < nodes.len() {
        let node = &nodes[i];
        match statuses.get(i) {
            Some(Status::Unlocked) => {
                if node.kind == NodeKind::Lesson && accessible(&node.access) {
                    return Some(i as u32);
                }
                i += 1;
            }
            Some(Status::Locked | Status::Passed) => i = node.subtree_end as usize,
            None => return None,
        }
    }
    None
}

/// Completion counts of one subject for one student.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Visible lessons whose bit is set.
    pub passed_lessons: u32,
    /// Visible lessons.
    pub total_lessons: u32,
    /// `passed / total × 100`, rounded to 2 decimals (0 when there is no lesson).
    pub completion_percentage: f64,
}

/// Counts visible lessons and the passed ones; bits of invisible lessons are ignored.
pub fn summary(view: &SubjectView, passed: &RoaringBitmap) -> Summary {
    let total_lessons = view.total_lessons();
    // Bits beyond the visible set (hidden, unpublished, removed lessons) do not count.
    let passed_lessons = passed.intersection_len(&view.visible_bits) as u32;
    Summary {
        passed_lessons,
        total_lessons,
        completion_percentage: percentage(passed_lessons, total_lessons),
    }
}

/// `part / total × 100` rounded half away from zero to 2 decimals; 0 for an empty total.
pub fn percentage(part: u32, total: u32) -> f64 {
    if total == 0 {
        return 0.0;
    }
    // Integer arithmetic on hundredths of a percent avoids binary-float surprises
    // such as 1/8 = 12.5 % being printed as 12.499999.
    let hundredths = (u64::from(part) * 20_000 + u64::from(total)) / (2 * u64::from(total));
    hundredths as f64 / 100.0
}
