//! Every validation rule, with the pointer it reports; several problems at once.

use serde_json::json;

use super::*;
use crate::content::problem::is_valid_id;

fn subject_problems(c: &Catalog, doc: &Value) -> Vec<crate::content::Problem> {
    c.prepare_subject(doc.to_string().as_bytes()).unwrap_err()
}

fn plan_problems(c: &Catalog, doc: &Value) -> Vec<crate::content::Problem> {
    c.prepare_plan(doc.to_string().as_bytes()).unwrap_err()
}

fn has(problems: &[crate::content::Problem], pointer: &str) -> bool {
    problems.iter().any(|p| p.pointer == pointer)
}

#[test]
fn id_syntax() {
    for ok in ["a", "A9", "js-l-001", "x.y_z-1", &"a".repeat(128)] {
        assert!(is_valid_id(ok), "{ok}");
    }
    for bad in ["", "-a", "_a", ".a", "a b", "é", "a/b", &"a".repeat(129)] {
        assert!(!is_valid_id(bad), "{bad}");
    }
}

#[test]
fn syntax_error_is_one_problem_at_the_root() {
    let p = Catalog::default()
        .prepare_subject(b"{\"format\": ")
        .unwrap_err();
    assert_eq!(pointers(&p), vec![""]);
    let p = Catalog::default().prepare_plan(b"[1,").unwrap_err();
    assert_eq!(pointers(&p), vec![""]);
}

#[test]
fn a_good_document_passes_and_round_trips() {
    let c = import_subject(&Catalog::default(), &simple_subject("s1", &["l1", "l2"]));
    let r = c.subject("S1").unwrap();
    let doc: crate::content::model::Subject = serde_json::from_str(&r.doc_json).unwrap();
    assert_eq!(doc.tracks[0].units[0].topics[0].lessons[1].base_xp, 10);
    assert!(doc.is_published && doc.is_linear && !doc.is_free_preview);
    let stage = &doc.tracks[0].units[0].topics[0].lessons[0].stages[0];
    assert_eq!(
        (stage.weight, stage.target_time, stage.is_skippable),
        (1.0, 0, false)
    );
}

#[test]
fn a_bad_subject_lists_every_problem() {
    let doc = json!({
        "format": "memora.subject/v2",
        "id": "s1", "title": "S", "colour": "red", "color_code": "#12345G",
        "is_linear": "yes",
        "tracks": [{
            "id": "-bad", "units": [{
                "id": "u1", "title": "U", "topics": [{
                    "id": "P1", "title": "P", "lessons": [
                        {"id": "p1", "title": "dup of topic id, other case"},
                        {"id": "l2", "title": "L", "base_xp": 10001, "stages": [
                            {"type": "question", "title": "no id"},
                            {"type": "quiz", "title": "bad type"},
                            {"type": "text", "title": "t", "weight": -1, "target_time": -5,
                             "config": []},
                            {"type": "text", "title": "t", "config": {}, "extra": 1}
                        ]},
                        {"id": "l3", "title": 3, "stages": "none"}
                    ]
                }]
            }]
        }]
    });
    let p = subject_problems(&Catalog::default(), &doc);
    let lessons = "/tracks/0/units/0/topics/0/lessons";
    for expected in [
        "/format".to_owned(),
        "/colour".into(),
        "/color_code".into(),
        "/is_linear".into(),
        "/tracks/0/id".into(),
        "/tracks/0/title".into(),
        format!("{lessons}/0/id"),
        format!("{lessons}/1/base_xp"),
        format!("{lessons}/1/stages/0/id"),
        format!("{lessons}/1/stages/1/type"),
        format!("{lessons}/1/stages/2/weight"),
        format!("{lessons}/1/stages/2/target_time"),
        format!("{lessons}/1/stages/2/config"),
        format!("{lessons}/1/stages/3/extra"),
        format!("{lessons}/2/title"),
        format!("{lessons}/2/stages"),
    ] {
        assert!(has(&p, &expected), "missing {expected} in {p:#?}");
    }
    assert_eq!(p.len(), 16, "{p:#?}");
}

#[test]
fn required_fields_and_pointer_escaping() {
    let doc = json!({"format": "memora.subject/v1", "a/b~c": 1});
    let p = subject_problems(&Catalog::default(), &doc);
    for ptr in ["/a~1b~0c", "/id", "/title", "/tracks"] {
        assert!(has(&p, ptr), "missing {ptr} in {p:#?}");
    }
    let p = subject_problems(
        &Catalog::default(),
        &json!({"id": "x", "title": "x", "tracks": []}),
    );
    assert_eq!(pointers(&p), vec!["/format"]);
    let p = subject_problems(&Catalog::default(), &json!(["not an object"]));
    assert_eq!(pointers(&p), vec![""]);
}

#[test]
fn ids_are_unique_across_the_installation() {
    let c = import_subject(&Catalog::default(), &simple_subject("s1", &["l1", "l2"]));
    // Another subject may not reuse a lesson id, a question id or a container id.
    let mut other = simple_subject("s2", &["L1", "q-L2", "s1-U"]);
    other["tracks"][0]["units"][0]["topics"][0]["lessons"][2]["stages"] = json!([]);
    let p = subject_problems(&c, &other);
    let lessons = "/tracks/0/units/0/topics/0/lessons";
    assert!(has(&p, &format!("{lessons}/0/id")), "{p:#?}");
    assert!(has(&p, &format!("{lessons}/0/stages/1/id")), "q-L1 {p:#?}");
    assert!(has(&p, &format!("{lessons}/1/id")), "{p:#?}");
    assert!(has(&p, &format!("{lessons}/2/id")), "{p:#?}");
    // A subject id equal to another subject's node id is a conflict too.
    let p = subject_problems(&c, &simple_subject("l1", &["zz"]));
    assert!(has(&p, "/id"), "{p:#?}");
    // Re-importing the same subject (any case) keeps its own ids.
    let again = import_subject(&c, &simple_subject("S1", &["l2", "l1"]));
    assert_eq!(again.stats().subjects, 1);
    assert_eq!(again.lesson_subject("L1"), Some("S1"));
    // After a removal, ids are free again.
    let freed = again.without_subject("s1");
    import_subject(&freed, &simple_subject("s2", &["l1"]));
}

#[test]
fn stage_ids_other_than_questions_may_repeat() {
    let mut doc = simple_subject("s1", &["l1", "l2"]);
    for l in 0..2 {
        doc["tracks"][0]["units"][0]["topics"][0]["lessons"][l]["stages"][0]["id"] = json!("intro");
    }
    import_subject(&Catalog::default(), &doc);
    doc["tracks"][0]["units"][0]["topics"][0]["lessons"][0]["stages"][0]["id"] = json!("in tro");
    let p = subject_problems(&Catalog::default(), &doc);
    assert_eq!(
        pointers(&p),
        vec!["/tracks/0/units/0/topics/0/lessons/0/stages/0/id"]
    );
}

fn two_subjects() -> Catalog {
    let mut s1 = simple_subject("s1", &["l1", "l2"]);
    s1["required_item"] = json!("ITEM-S1");
    let c = import_subject(&Catalog::default(), &s1);
    import_subject(&c, &simple_subject("s2", &["m1"]))
}

#[test]
fn a_bad_plan_lists_every_problem() {
    let c = two_subjects();
    let doc = json!({
        "format": "memora.plan/v1", "id": "p 1", "subjects": ["s1", "nope", "S1", 7],
        "color": 1,
        "overrides": [
            {"target": "ghost", "action": "hide"},
            {"target": "l1", "action": "explode"},
            {"target": "l1", "action": "set_linear", "value": true},
            {"target": "s1-u", "action": "set_sold_separately", "value": "X"},
            {"target": "s1-t", "action": "set_access_level", "value": "vip"},
            {"target": "s1-t", "action": "set_linear", "value": "no"},
            {"target": "s1-p", "action": "set_free"},
            {"target": "s1-p", "action": "set_access_level", "value": "public"},
            {"target": "s1-p", "action": "rename", "value": "A"},
            {"target": "S1-P", "action": "rename", "value": "B"},
            {"target": "l2", "action": "hide"},
            {"target": "l2", "action": "rename", "value": "C"},
            {"target": "m1", "action": "hide", "value": 1},
            {"target": "s1", "target2": 1, "action": "set_free"}
        ]
    });
    let p = plan_problems(&c, &doc);
    for expected in [
        "/id",
        "/title",
        "/color",
        "/subjects/1",
        "/subjects/2",
        "/subjects/3",
        "/overrides/0/target",
        "/overrides/1/action",
        "/overrides/2/action",
        "/overrides/3/action",
        "/overrides/4/value",
        "/overrides/5/value",
        "/overrides/7",
        "/overrides/9",
        "/overrides/11",
        "/overrides/12/value",
        "/overrides/13/target2",
    ] {
        assert!(has(&p, expected), "missing {expected} in {p:#?}");
    }
    // m1 is in s2, which this plan does not list.
    assert!(!has(&p, "/overrides/12/target"), "{p:#?}");
    assert_eq!(p.len(), 17, "{p:#?}");
}

#[test]
fn override_targets_must_be_in_the_plans_subjects() {
    let c = two_subjects();
    let p = plan_problems(
        &c,
        &plan("p1", &["s1"], json!([{"target": "m1", "action": "hide"}])),
    );
    assert_eq!(pointers(&p), vec!["/overrides/0/target"]);
}

#[test]
fn paid_needs_an_item_at_or_above() {
    let c = two_subjects();
    // s1 carries an item: fine on its lessons.
    import_plan(
        &c,
        &plan(
            "p1",
            &["s1"],
            json!([{"target": "l1", "action": "set_access_level", "value": "paid"}]),
        ),
    );
    // s2 has none.
    let bad = plan(
        "p2",
        &["s2"],
        json!([{"target": "m1", "action": "set_access_level", "value": "paid"}]),
    );
    assert_eq!(
        pointers(&plan_problems(&c, &bad)),
        vec!["/overrides/0/value"]
    );
    // An island made by the same plan counts.
    import_plan(
        &c,
        &plan(
            "p3",
            &["s2"],
            json!([
                {"target": "m1", "action": "set_access_level", "value": "paid"},
                {"target": "s2-t", "action": "set_sold_separately", "value": "X"}
            ]),
        ),
    );
}

#[test]
fn plan_defaults_and_deletes() {
    let c = two_subjects();
    let c = import_plan(
        &c,
        &json!({"format": "memora.plan/v1", "id": "P1", "title": "t",
                                     "subjects": ["s2"]}),
    );
    assert!(c.plan("p1").is_some());
    assert!(c.plan_view("P1").is_some());
    assert!(matches!(
        c.check_delete_subject("S2"),
        Err(crate::content::DeleteError::Referenced(ids)) if ids == vec!["P1".to_owned()]
    ));
    assert!(c.check_delete_subject("s1").is_ok());
    assert!(matches!(
        c.check_delete_subject("zz"),
        Err(crate::content::DeleteError::NotFound)
    ));
    assert!(matches!(
        c.check_delete_plan("zz"),
        Err(crate::content::DeleteError::NotFound)
    ));
    assert!(c.check_delete_plan("p1").is_ok());
    let c = c.without_plan("p1");
    assert!(c.plan("p1").is_none() && c.plan_view("p1").is_none());
    assert!(c.check_delete_subject("s2").is_ok());
    assert_eq!(c.stats().plans, 0);
}
