//! Unit tests of the content module: validation problems and their pointers, bit index
//! assignment, the access rules and overrides as seen in built views, the flattened
//! tree's invariants, and (when the shared data set is present) the fcc-2018 import.

#![allow(clippy::unwrap_used)]

mod access;
mod bits;
mod catalog;
mod fcc;
mod structure;
mod validation;

use serde_json::{Value, json};

use super::Catalog;
use super::view::{AccessLevel, PlanView, SubjectView};

/// A lesson with a text stage and a question stage whose id is `q-{id}`.
pub fn lesson(id: &str) -> Value {
    json!({"id": id, "title": format!("Lesson {id}"), "stages": [
        {"type": "text", "title": "Read", "config": {"html": "<p>x</p>"}},
        {"type": "question", "id": format!("q-{id}"), "title": "Check", "config": {}}
    ]})
}

/// A subject with one track/unit/topic (ids derived from the subject id) holding `lessons`.
pub fn simple_subject(id: &str, lessons: &[&str]) -> Value {
    let lessons: Vec<Value> = lessons.iter().map(|l| lesson(l)).collect();
    json!({
        "format": "memora.subject/v1", "id": id, "title": id,
        "tracks": [{"id": format!("{id}-t"), "title": "T", "units": [
            {"id": format!("{id}-u"), "title": "U", "topics": [
                {"id": format!("{id}-p"), "title": "P", "lessons": lessons}
            ]}
        ]}]
    })
}

/// A plan over `subjects` with `overrides`.
pub fn plan(id: &str, subjects: &[&str], overrides: Value) -> Value {
    json!({"format": "memora.plan/v1", "id": id, "title": id, "subjects": subjects,
           "overrides": overrides})
}

/// Imports a subject document, panicking with the problems if it is rejected.
pub fn import_subject(c: &Catalog, doc: &Value) -> Catalog {
    let record = c
        .prepare_subject(doc.to_string().as_bytes())
        .unwrap_or_else(|p| panic!("subject rejected: {p:#?}"));
    c.with_subject(record)
}

/// Imports a plan document, panicking with the problems if it is rejected.
pub fn import_plan(c: &Catalog, doc: &Value) -> Catalog {
    let record = c
        .prepare_plan(doc.to_string().as_bytes())
        .unwrap_or_else(|p| panic!("plan rejected: {p:#?}"));
    c.with_plan(record)
}

/// The pointers of a rejected document's problems.
pub fn pointers(problems: &[super::Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.pointer.as_str()).collect()
}

/// Finds a node by id in a plan view: (subject view, node index).
pub fn find<'v>(view: &'v PlanView, id: &str) -> Option<(&'v SubjectView, usize)> {
    view.subjects.iter().find_map(|s| {
        s.nodes
            .iter()
            .position(|n| n.id.eq_ignore_ascii_case(id))
            .map(|i| (&**s, i))
    })
}

/// The level and items of a node in a plan view.
pub fn access_of(view: &PlanView, id: &str) -> (AccessLevel, Vec<String>) {
    let (s, i) = find(view, id).unwrap_or_else(|| panic!("{id} not in view"));
    let a = &s.nodes[i].access;
    (a.level, a.items.iter().map(|x| x.to_string()).collect())
}
