//! The nine access rules and every override kind, as seen in built plan views.

use serde_json::json;

use super::*;
use crate::content::view::AccessLevel::{Authenticated, FreePreview, Paid, Public};

/// One track/unit/topic chain with the given lessons; `track` extra fields merged in.
fn track(t: &str, extra: Value, lessons: Value) -> Value {
    let mut v = json!({"id": t, "title": t, "units": [{"id": format!("{t}-u"), "title": "U",
        "topics": [{"id": format!("{t}-p"), "title": "P", "lessons": lessons}]}]});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

fn l(id: &str) -> Value {
    lesson(id)
}

/// Subject `s` with: t1 (plain: a1, a2 free preview, a3 unpublished), t2 (island T2:
/// c1), t3 (required_item T3: d1), t4 (only an unpublished lesson: dropped).
fn catalog(subject_item: Option<&str>, parent_item_required: bool) -> Catalog {
    let mut a2 = l("a2");
    a2["is_free_preview"] = json!(true);
    let mut a3 = l("a3");
    a3["is_published"] = json!(false);
    let mut e1 = l("e1");
    e1["is_published"] = json!(false);
    let doc = json!({
        "format": "memora.subject/v1", "id": "s", "title": "S", "required_item": subject_item,
        "tracks": [
            track("t1", json!({}), json!([l("a1"), a2, a3])),
            track("t2", json!({"is_sold_separately": true, "required_item": "T2",
                               "parent_item_required": parent_item_required}), json!([l("c1")])),
            track("t3", json!({"required_item": "T3"}), json!([l("d1")])),
            track("t4", json!({}), json!([e1])),
        ]
    });
    import_subject(&Catalog::default(), &doc)
}

fn view(c: &Catalog, overrides: Value) -> std::sync::Arc<PlanView> {
    let c = import_plan(c, &plan("p", &["s"], overrides));
    c.plan_view("p").unwrap().clone()
}

fn paid(items: &[&str]) -> (AccessLevel, Vec<String>) {
    (Paid, items.iter().map(|s| s.to_string()).collect())
}

fn free(level: AccessLevel) -> (AccessLevel, Vec<String>) {
    (level, vec![])
}

#[test]
fn rule1_unpublished_and_empty_containers_are_absent() {
    let v = view(&catalog(None, false), json!([]));
    assert!(find(&v, "a3").is_none());
    assert!(find(&v, "t4").is_none() && find(&v, "t4-u").is_none() && find(&v, "t4-p").is_none());
    assert!(find(&v, "a1").is_some());
    // Hiding every lesson drops the subject from the plan view.
    let v = view(
        &catalog(None, false),
        json!([{"target": "t1", "action": "hide"}, {"target": "t2-p", "action": "hide"},
               {"target": "d1", "action": "hide"}]),
    );
    assert!(v.subjects.is_empty() && v.subject("s").is_none());
    // Hiding the subject itself.
    let v = view(
        &catalog(None, false),
        json!([{"target": "s", "action": "hide"}]),
    );
    assert!(v.subjects.is_empty());
}

#[test]
fn default_levels_without_items() {
    let v = view(&catalog(None, false), json!([]));
    assert_eq!(access_of(&v, "s"), free(Authenticated)); // rule 9
    assert_eq!(access_of(&v, "a1"), free(Authenticated));
    assert_eq!(access_of(&v, "a2"), free(FreePreview)); // rule 3
    assert_eq!(access_of(&v, "t2"), paid(&["T2"])); // rule 4, parent not paid: own only
    assert_eq!(access_of(&v, "c1"), paid(&["T2"])); // rule 7
    assert_eq!(access_of(&v, "t3"), paid(&["T3"])); // rule 6
    assert_eq!(access_of(&v, "d1"), paid(&["T3"])); // rule 7
}

#[test]
fn paid_subject_flows_down_and_islands_keep_their_own_item() {
    let v = view(&catalog(Some("S"), false), json!([]));
    assert_eq!(access_of(&v, "s"), paid(&["S"]));
    assert_eq!(access_of(&v, "a1"), paid(&["S"]));
    assert_eq!(access_of(&v, "a2"), free(FreePreview));
    assert_eq!(access_of(&v, "t2"), paid(&["T2"]));
    assert_eq!(access_of(&v, "c1"), paid(&["T2"]));
    assert_eq!(access_of(&v, "t3"), paid(&["T3"]));
    // parent_item_required: both items.
    let v = view(&catalog(Some("S"), true), json!([]));
    assert_eq!(access_of(&v, "t2"), paid(&["T2", "S"]));
    assert_eq!(access_of(&v, "c1"), paid(&["T2", "S"]));
}

#[test]
fn free_preview_flows_down_but_not_into_islands() {
    let c = catalog(Some("S"), false);
    let mut doc: Value = serde_json::from_str(&c.subject("s").unwrap().doc_json).unwrap();
    doc["is_free_preview"] = json!(true);
    let c = import_subject(&c, &doc);
    let v = view(&c, json!([]));
    assert_eq!(access_of(&v, "s"), free(FreePreview)); // rule 3
    assert_eq!(access_of(&v, "a1"), free(FreePreview)); // rule 5
    assert_eq!(access_of(&v, "t3"), free(FreePreview)); // rule 5 beats own required_item
    assert_eq!(access_of(&v, "d1"), free(FreePreview));
    assert_eq!(access_of(&v, "t2"), paid(&["T2"])); // island
    assert_eq!(access_of(&v, "c1"), paid(&["T2"]));
}

#[test]
fn level_deciding_overrides() {
    let c = catalog(Some("S"), false);
    let v = view(
        &c,
        json!([
            {"target": "t1-u", "action": "set_free"},
            {"target": "t3", "action": "set_access_level", "value": "public"},
            {"target": "d1", "action": "set_access_level", "value": "authenticated"},
            {"target": "t2", "action": "set_sold_separately", "value": "NEW"},
            {"target": "s", "action": "set_access_level", "value": "free_preview"},
        ]),
    );
    assert_eq!(access_of(&v, "s"), free(FreePreview));
    assert_eq!(access_of(&v, "t1"), free(FreePreview)); // rule 5 from the subject
    assert_eq!(access_of(&v, "t1-u"), free(FreePreview));
    assert_eq!(access_of(&v, "a1"), free(FreePreview));
    assert_eq!(access_of(&v, "t3"), free(Public));
    assert_eq!(access_of(&v, "t3-u"), free(Public)); // rule 8
    assert_eq!(access_of(&v, "d1"), free(Authenticated));
    assert_eq!(access_of(&v, "t2"), paid(&["NEW"])); // override island: free preview stays out
    assert_eq!(access_of(&v, "c1"), paid(&["NEW"]));
}

#[test]
fn set_access_level_paid_takes_the_nearest_item() {
    let c = catalog(Some("S"), false);
    let v = view(
        &c,
        json!([
            {"target": "a2", "action": "set_access_level", "value": "paid"},
            {"target": "t1-u", "action": "set_free"},
            {"target": "t1-p", "action": "set_access_level", "value": "paid"},
            {"target": "t3-p", "action": "set_access_level", "value": "paid"},
        ]),
    );
    assert_eq!(access_of(&v, "t1-u"), free(FreePreview));
    assert_eq!(access_of(&v, "t1-p"), paid(&["S"]));
    assert_eq!(access_of(&v, "a1"), paid(&["S"]));
    assert_eq!(access_of(&v, "a2"), paid(&["S"])); // override beats own is_free_preview
    assert_eq!(access_of(&v, "t3-p"), paid(&["T3"]));
}

#[test]
fn set_linear_and_rename_apply_in_the_view() {
    let c = catalog(None, false);
    let v = view(
        &c,
        json!([
            {"target": "t1-p", "action": "set_linear", "value": false},
            {"target": "s", "action": "set_linear", "value": false},
            {"target": "s", "action": "rename", "value": "Renamed"},
            {"target": "a1", "action": "rename", "value": "First"},
            {"target": "t1-p", "action": "set_free"},
        ]),
    );
    let (s, i) = find(&v, "t1-p").unwrap();
    assert!(!s.nodes[i].is_linear);
    assert_eq!(s.nodes[i].access.level, FreePreview);
    assert!(s.nodes[find(&v, "t1-u").unwrap().1].is_linear);
    assert!(!s.nodes[0].is_linear);
    assert_eq!(&*s.nodes[0].title, "Renamed");
    let a1 = find(&v, "a1").unwrap().1;
    assert_eq!(&*s.nodes[a1].title, "First");
    assert!(!s.nodes[a1].is_linear);
    assert_eq!(s.nodes[a1].stage_count, 2);
    assert_eq!(s.nodes[a1].base_xp, 10);
    assert_eq!(s.question_lesson.get("q-a1"), Some(&(a1 as u32)));
    assert_eq!(s.lesson_node("A1"), Some(a1 as u32));
}

#[test]
fn views_follow_subject_changes() {
    let c = catalog(None, false);
    let c = import_plan(&c, &plan("p", &["s"], json!([])));
    assert_eq!(c.plan_view("p").unwrap().subjects[0].total_lessons(), 4);
    let c = import_subject(&c, &simple_subject("s", &["a1"]));
    assert_eq!(c.plan_view("p").unwrap().subjects[0].total_lessons(), 1);
    let c = c.without_subject("s");
    assert!(c.plan_view("p").unwrap().subjects.is_empty());
    assert_eq!(c.lesson_subject("a1"), None);
}
