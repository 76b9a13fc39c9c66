//! Test support: hand-built [`SubjectView`]s for unit tests, property tests and benches.
//!
//! The real views are derived from documents by the content module; progress code only
//! reads them, so its tests build the flat pre-order array directly with
//! [`ViewBuilder`], from a nested [`Shape`], or as a generated [`realistic`] subject.
//! This module is public (benches link the library without `cfg(test)`) but hidden
//! from the docs: it is not part of the product's API.

use std::collections::HashMap;
use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::content::view::{Access, AccessLevel, NO_NODE, NodeKind, SubjectView, ViewNode};

/// Base XP given to lessons added with [`ViewBuilder::lesson`].
pub const DEFAULT_BASE_XP: u32 = 20;

/// The access of a public node.
pub fn public() -> Access {
    Access {
        level: AccessLevel::Public,
        items: Vec::new(),
    }
}

/// The access of a paid node requiring `item`.
pub fn paid(item: &str) -> Access {
    Access {
        level: AccessLevel::Paid,
        items: vec![Arc::from(item)],
    }
}

/// Builds a [`SubjectView`] in document order: `open` a container, add its children,
/// `close` it. Bit indexes are assigned in order unless given explicitly; containers
/// must not be left empty (the content builder drops them).
#[derive(Debug)]
pub struct ViewBuilder {
    nodes: Vec<ViewNode>,
    /// Open containers with the index of their last child so far.
    open: Vec<(u32, u32)>,
    lessons: Vec<u32>,
    visible_bits: RoaringBitmap,
    lesson_by_id: HashMap<Box<str>, u32>,
    next_bit: u32,
}

impl ViewBuilder {
    /// Starts a subject whose root is `id`, linear or not.
    pub fn new(id: &str, linear: bool) -> Self {
        let mut builder = Self {
            nodes: Vec::new(),
            open: Vec::new(),
            lessons: Vec::new(),
            visible_bits: RoaringBitmap::new(),
            lesson_by_id: HashMap::new(),
            next_bit: 0,
        };
        builder.open(NodeKind::Subject, id, linear);
        builder
    }

    fn push(&mut self, kind: NodeKind, id: &str, linear: bool) -> u32 {
        let index = self.nodes.len() as u32;
        let (parent, prev_sibling) = match self.open.last_mut() {
            Some((parent, last_child)) => {
                let prev = *last_child;
                *last_child = index;
                (*parent, prev)
            }
            None => (NO_NODE, NO_NODE),
        };
        self.nodes.push(ViewNode {
            kind,
            id: Arc::from(id),
            title: Arc::from(format!("Title of {id}")),
            description: None,
            is_linear: linear,
            access: public(),
            parent,
            prev_sibling,
            subtree_end: index + 1,
            bit_index: 0,
            base_xp: 0,
            stage_count: 0,
        });
        index
    }

    /// Opens a container of `kind` as the next child of the current container.
    pub fn open(&mut self, kind: NodeKind, id: &str, linear: bool) -> &mut Self {
        let index = self.push(kind, id, linear);
        self.open.push((index, NO_NODE));
        self
    }

    /// Closes the current container.
    pub fn close(&mut self) -> &mut Self {
        if let Some((index, _)) = self.open.pop() {
            self.nodes[index as usize].subtree_end = self.nodes.len() as u32;
        }
        self
    }

    /// Adds a public lesson with the next bit index and [`DEFAULT_BASE_XP`].
    pub fn lesson(&mut self, id: &str) -> &mut Self {
        let bit = self.next_bit;
        self.lesson_with(id, bit, DEFAULT_BASE_XP)
    }

    /// Adds a lesson with an explicit bit index and base XP.
    pub fn lesson_with(&mut self, id: &str, bit: u32, base_xp: u32) -> &mut Self {
        let index = self.push(NodeKind::Lesson, id, false);
        let node = &mut self.nodes[index as usize];
        node.bit_index = bit;
        node.base_xp = base_xp;
        node.stage_count = 3;
        self.next_bit = self.next_bit.max(bit + 1);
        self.lessons.push(index);
        self.visible_bits.insert(bit);
        self.lesson_by_id
            .insert(id.to_ascii_lowercase().into_boxed_str(), index);
        self
    }

    /// Leaves `n` bit indexes unused, as hidden or removed lessons would.
    pub fn skip_bits(&mut self, n: u32) -> &mut Self {
        self.next_bit += n;
        self
    }

    /// Sets the access of the node added last.
    pub fn access(&mut self, access: Access) -> &mut Self {
        if let Some(node) = self.nodes.last_mut() {
            node.access = access;
        }
        self
    }

    /// Closes every open container and returns the view.
    pub fn build(&mut self) -> SubjectView {
        while !self.open.is_empty() {
            self.close();
        }
        SubjectView {
            nodes: std::mem::take(&mut self.nodes),
            lessons: std::mem::take(&mut self.lessons),
            visible_bits: std::mem::take(&mut self.visible_bits),
            lesson_by_id: std::mem::take(&mut self.lesson_by_id),
            question_lesson: HashMap::new(),
            json: std::sync::OnceLock::new(),
        }
    }
}

/// A nested description of a subject's children, for property tests.
#[derive(Debug, Clone)]
pub enum Shape {
    /// A lesson, paid (item `"item-paid"`) or public.
    Lesson {
        /// Whether the lesson needs a grant.
        paid: bool,
    },
    /// A container (track, unit or topic by depth).
    Container {
        /// Whether its children must be passed in order.
        linear: bool,
        /// Its children in order.
        children: Vec<Shape>,
    },
}

impl Shape {
    fn has_lesson(&self) -> bool {
        match self {
            Shape::Lesson { .. } => true,
            Shape::Container { children, .. } => children.iter().any(Shape::has_lesson),
        }
    }
}

/// The item code of paid lessons built from a [`Shape`].
pub const PAID_ITEM: &str = "item-paid";

/// Builds a subject from shapes, dropping containers without any lesson (as the content
/// builder does). Every `skip_every`-th lesson bit is left unused to mimic invisible
/// lessons (0 = none skipped). Returns `None` when no lesson remains.
pub fn from_shape(root_linear: bool, children: &[Shape], skip_every: u32) -> Option<SubjectView> {
    fn add(b: &mut ViewBuilder, shape: &Shape, depth: usize, counter: &mut u32, skip_every: u32) {
        match shape {
            Shape::Lesson { paid: is_paid } => {
                *counter += 1;
                if skip_every > 0 && (*counter).is_multiple_of(skip_every) {
                    b.skip_bits(1);
                }
                b.lesson(&format!("l{counter}"));
                if *is_paid {
                    b.access(paid(PAID_ITEM));
                }
            }
            Shape::Container { linear, children } if shape.has_lesson() => {
                let kind = match depth {
                    1 => NodeKind::Track,
                    2 => NodeKind::Unit,
                    _ => NodeKind::Topic,
                };
                let id = format!("c{}", b.nodes.len());
                b.open(kind, &id, *linear);
                for child in children {
                    add(b, child, depth + 1, counter, skip_every);
                }
                b.close();
            }
            Shape::Container { .. } => {}
        }
    }
    if !children.iter().any(Shape::has_lesson) {
        return None;
    }
    let mut b = ViewBuilder::new("subject", root_linear);
    let mut counter = 0;
    for child in children {
        add(&mut b, child, 1, &mut counter, skip_every);
    }
    Some(b.build())
}

/// A generated subject of `n_lessons` lessons with a realistic shape: tracks of 4 units
/// of 4 topics of 10 lessons (the last ones partial), the subject and tracks linear,
/// every other unit and two topics in three linear, one topic in seven paid.
pub fn realistic(n_lessons: u32) -> SubjectView {
    const PER_TOPIC: u32 = 10;
    const TOPICS_PER_UNIT: u32 = 4;
    const UNITS_PER_TRACK: u32 = 4;
    let mut b = ViewBuilder::new("generated-subject", true);
    let mut lesson = 0;
    let (mut track, mut unit, mut topic) = (0, 0, 0);
    while lesson < n_lessons {
        b.open(NodeKind::Track, &format!("track-{track}"), true);
        for _ in 0..UNITS_PER_TRACK {
            if lesson >= n_lessons {
                break;
            }
            b.open(NodeKind::Unit, &format!("unit-{unit}"), unit % 2 == 0);
            for _ in 0..TOPICS_PER_UNIT {
                if lesson >= n_lessons {
                    break;
                }
                b.open(NodeKind::Topic, &format!("topic-{topic}"), topic % 3 != 2);
                if topic % 7 == 6 {
                    b.access(paid(PAID_ITEM));
                }
                for _ in 0..PER_TOPIC {
                    if lesson >= n_lessons {
                        break;
                    }
                    b.lesson(&format!("lesson-{lesson:04}"));
                    if topic % 7 == 6 {
                        b.access(paid(PAID_ITEM));
                    }
                    lesson += 1;
                }
                b.close();
                topic += 1;
            }
            b.close();
            unit += 1;
        }
        b.close();
        track += 1;
    }
    b.build()
}
