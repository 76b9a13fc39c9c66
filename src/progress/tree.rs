//! The `root` tree of `GET /api/v1/subjects/{id}/progress` (progress.md "Reading
//! progress"), serialized straight from the flat pre-order view.
//!
//! Nesting is produced by serializing a node and then its children found by hopping
//! `subtree_end`, so no intermediate tree is allocated and the recursion depth is the
//! tree's depth (five levels).

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::content::view::{NodeJson, NodeKind, SubjectView};

use super::state::SubjectProgress;
use super::status::Status;

/// A subject's progress tree for one student, ready to serialize.
///
/// Each node is `{id, type, title, status, is_linear (containers), access_level,
/// is_accessible, bit_index (lessons), best_hearts (passed lessons), children
/// (containers)}`; `is_accessible` is `access.allows(grants)`.
#[derive(Clone, Copy)]
pub struct ProgressTree<'a> {
    /// The plan's visible tree of the subject.
    pub view: &'a SubjectView,
    /// Statuses from `compute_statuses` on `view` and `progress.passed`.
    pub statuses: &'a [Status],
    /// The student's state in the subject.
    pub progress: &'a SubjectProgress,
    /// Whether the student holds a grant for an item code.
    pub grants: &'a dyn Fn(&str) -> bool,
}

impl std::fmt::Debug for ProgressTree<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressTree")
            .field("subject", self.view.subject_id())
            .field("nodes", &self.view.nodes.len())
            .finish_non_exhaustive()
    }
}

impl Serialize for ProgressTree<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        NodeSer {
            tree: self,
            index: 0,
        }
        .serialize(serializer)
    }
}

/// One node of the tree and, through [`ChildrenSer`], its subtree.
struct NodeSer<'t, 'a> {
    tree: &'t ProgressTree<'a>,
    index: u32,
}

impl Serialize for NodeSer<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let tree = self.tree;
        let node = &tree.view.nodes[self.index as usize];
        // A short statuses slice would be a caller bug; reading it as locked keeps
        // serialization total.
        let status = tree
            .statuses
            .get(self.index as usize)
            .copied()
            .unwrap_or(Status::Locked);
        let is_lesson = node.kind == NodeKind::Lesson;
        let best_hearts = if is_lesson && status == Status::Passed {
            Some(tree.progress.best_hearts.get(node.bit_index))
        } else {
            None
        };
        let len = 6 + if is_lesson {
            1 + usize::from(best_hearts.is_some())
        } else {
            2
        };
        let mut map = serializer.serialize_map(Some(len))?;
        map.serialize_entry("id", &*node.id)?;
        map.serialize_entry("type", &node.kind)?;
        map.serialize_entry("title", &*node.title)?;
        map.serialize_entry("status", &status)?;
        if !is_lesson {
            map.serialize_entry("is_linear", &node.is_linear)?;
        }
        map.serialize_entry("access_level", &node.access.level)?;
        map.serialize_entry("is_accessible", &node.access.allows(tree.grants))?;
        if is_lesson {
            map.serialize_entry("bit_index", &node.bit_index)?;
            if let Some(hearts) = best_hearts {
                map.serialize_entry("best_hearts", &hearts)?;
            }
        } else {
            map.serialize_entry(
                "children",
                &ChildrenSer {
                    tree,
                    parent: self.index,
                },
            )?;
        }
        map.end()
    }
}

/// The children of a container, in order.
struct ChildrenSer<'t, 'a> {
    tree: &'t ProgressTree<'a>,
    parent: u32,
}

impl Serialize for ChildrenSer<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.tree.view.children(self.parent).map(|index| NodeSer {
            tree: self.tree,
            index,
        }))
    }
}

/// The fixed JSON fragments of every node of `view` (see [`NodeJson`]), built once per
/// view and cached in it.
fn templates(view: &SubjectView) -> &[NodeJson] {
    view.json.get_or_init(|| {
        view.nodes
            .iter()
            .map(|node| {
                let is_lesson = node.kind == NodeKind::Lesson;
                let string = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
                let kind = serde_json::to_string(&node.kind).unwrap_or_default();
                let level = serde_json::to_string(&node.access.level).unwrap_or_default();
                let head = format!(
                    r#"{{"id":{},"type":{kind},"title":{},"status":""#,
                    string(&node.id),
                    string(&node.title)
                );
                let mid = if is_lesson {
                    format!(r#"","access_level":{level},"is_accessible":"#)
                } else {
                    format!(
                        r#"","is_linear":{},"access_level":{level},"is_accessible":"#,
                        node.is_linear
                    )
                };
                let tail = if is_lesson {
                    format!(r#","bit_index":{}"#, node.bit_index)
                } else {
                    String::new()
                };
                NodeJson {
                    head: head.into_bytes().into_boxed_slice(),
                    mid: mid.into_bytes().into_boxed_slice(),
                    tail: tail.into_bytes().into_boxed_slice(),
                }
            })
            .collect()
    })
}

fn status_str(status: Status) -> &'static [u8] {
    match status {
        Status::Locked => b"locked",
        Status::Unlocked => b"unlocked",
        Status::Passed => b"passed",
    }
}

impl ProgressTree<'_> {
    /// Appends exactly the bytes `serde_json::to_vec(self)` would produce, several times
    /// faster: the fixed fields of every node are escaped once per view (cached in it)
    /// and only `status`, `is_accessible` and `best_hearts` are written per request.
    /// The walk is iterative over the pre-order array, closing containers as their
    /// `subtree_end` is reached.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let view = self.view;
        let templates = templates(view);
        let mut open: Vec<u32> = Vec::with_capacity(8);
        let mut itoa = itoa::Buffer::new();
        for (i, (node, t)) in view.nodes.iter().zip(templates).enumerate() {
            let i = i as u32;
            while let Some(&top) = open.last() {
                if i < view.nodes[top as usize].subtree_end {
                    break;
                }
                out.extend_from_slice(b"]}");
                open.pop();
            }
            if node.prev_sibling != crate::content::view::NO_NODE {
                out.push(b',');
            }
            let status = self
                .statuses
                .get(i as usize)
                .copied()
                .unwrap_or(Status::Locked);
            out.extend_from_slice(&t.head);
            out.extend_from_slice(status_str(status));
            out.extend_from_slice(&t.mid);
            out.extend_from_slice(if node.access.allows(self.grants) {
                b"true"
            } else {
                b"false"
            });
            out.extend_from_slice(&t.tail);
            if node.kind == NodeKind::Lesson {
                if status == Status::Passed {
                    out.extend_from_slice(br#","best_hearts":"#);
                    out.extend_from_slice(
                        itoa.format(self.progress.best_hearts.get(node.bit_index))
                            .as_bytes(),
                    );
                }
                out.push(b'}');
            } else {
                out.extend_from_slice(br#","children":["#);
                open.push(i);
            }
        }
        for _ in open {
            out.extend_from_slice(b"]}");
        }
    }
}
