//! Catalog snapshots: records survive bincode, old snapshots are untouched by changes,
//! and applying records is infallible (journal replay).

use serde_json::json;

use super::*;
use crate::content::{PlanRecord, SubjectRecord};

#[test]
fn records_round_trip_through_bincode() {
    let c = import_subject(&Catalog::default(), &simple_subject("s", &["a", "b"]));
    let c = import_plan(
        &c,
        &plan(
            "p",
            &["s"],
            json!([{"target": "a", "action": "rename", "value": "A"}]),
        ),
    );
    let cfg = bincode::config::standard();
    let s = c.subject("s").unwrap();
    let bytes = bincode::serde::encode_to_vec(s, cfg).unwrap();
    let (back, _): (SubjectRecord, usize) = bincode::serde::decode_from_slice(&bytes, cfg).unwrap();
    assert_eq!(&back, s);
    let p = c.plan("p").unwrap();
    let bytes = bincode::serde::encode_to_vec(p, cfg).unwrap();
    let (back, _): (PlanRecord, usize) = bincode::serde::decode_from_slice(&bytes, cfg).unwrap();
    assert_eq!(&back, p);
    // Replaying the records into an empty catalog gives the same view.
    let replayed = Catalog::default()
        .with_subject(c.subject("s").unwrap().clone())
        .with_plan(c.plan("p").unwrap().clone());
    let (a, b) = (c.plan_view("p").unwrap(), replayed.plan_view("p").unwrap());
    assert_eq!(a.total_lessons(), b.total_lessons());
    assert_eq!(
        &*b.subjects[0].nodes[b.lesson("a").unwrap().1 as usize].title,
        "A"
    );
}

#[test]
fn snapshots_are_immutable() {
    let old = import_subject(&Catalog::default(), &simple_subject("s", &["a", "b"]));
    let old = import_plan(&old, &plan("p", &["s"], json!([])));
    let new = import_subject(&old, &simple_subject("s", &["a"]));
    let new = import_subject(&new, &simple_subject("t", &["c"]));
    assert_eq!(old.plan_view("p").unwrap().total_lessons(), 2);
    assert_eq!(new.plan_view("p").unwrap().total_lessons(), 1);
    assert_eq!(old.stats().subjects, 1);
    assert_eq!(new.stats().subjects, 2);
    assert_eq!(old.lesson_subject("b"), Some("s"));
    assert_eq!(new.lesson_subject("b"), None);
    assert_eq!(new.lesson_subject("c"), Some("t"));
    assert_eq!(
        new.lesson_subject("s-t"),
        None,
        "containers are not lessons"
    );
    assert_eq!(new.subjects().count(), 2);
    assert_eq!(new.plans().count(), 1);
}

#[test]
fn applying_a_broken_record_does_not_panic() {
    let c = Catalog::default().with_subject(SubjectRecord {
        id: "x".into(),
        doc_json: "not json".into(),
        bit_indexes: vec![],
        next_bit_index: 0,
    });
    assert!(c.subject("x").is_some());
    let c = c.with_plan(PlanRecord {
        id: "p".into(),
        doc_json: "{".into(),
    });
    assert!(c.plan("p").is_none());
    // A plan naming a subject that is not stored simply shows nothing of it.
    let p = PlanRecord {
        id: "p".into(),
        doc_json: json!({"id": "p", "title": "P", "subjects": ["ghost"]}).to_string(),
    };
    let c = c.with_plan(p);
    assert!(c.plan_view("p").unwrap().subjects.is_empty());
}
