//! Unit and property tests of the progress rules (progress.md).

use proptest::prelude::*;
use roaring::RoaringBitmap;
use serde_json::json;

use super::testing::{PAID_ITEM, Shape, ViewBuilder, from_shape, paid, realistic};
use super::*;
use crate::content::view::{NO_NODE, NodeKind, SubjectView};

use Status::{Locked, Passed, Unlocked};

fn bits(list: &[u32]) -> RoaringBitmap {
    list.iter().copied().collect()
}

fn statuses(view: &SubjectView, passed: &RoaringBitmap) -> Vec<Status> {
    let mut out = Vec::new();
    compute_statuses(view, passed, &mut out);
    out
}

/// Statuses of the lessons only, in document order.
fn lesson_statuses(view: &SubjectView, passed: &RoaringBitmap) -> Vec<Status> {
    let all = statuses(view, passed);
    view.lessons.iter().map(|&i| all[i as usize]).collect()
}

/// subject(non-linear) > topic `t` (linear or not) > lessons a, b, c, d (bits 0..4).
fn one_topic(linear: bool) -> SubjectView {
    let mut b = ViewBuilder::new("s", false);
    b.open(NodeKind::Topic, "t", linear);
    for id in ["a", "b", "c", "d"] {
        b.lesson(id);
    }
    b.build()
}

mod completion;
mod properties;
mod state;
mod status;
mod tree;
