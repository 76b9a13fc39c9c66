//! The JSON shape of the progress tree.

use super::*;

#[test]
fn progress_tree_serializes_nested_nodes() {
    let mut b = ViewBuilder::new("js", true);
    b.open(NodeKind::Topic, "t", true);
    b.lesson("a").lesson("b").access(paid("js-pro")).lesson("c");
    let view = b.build();
    let mut p = SubjectProgress::new();
    p.passed.insert(0);
    p.best_hearts.set(0, 4);
    let s = statuses(&view, &p.passed);
    let no_grants = |_: &str| false;
    let tree = ProgressTree {
        view: &view,
        statuses: &s,
        progress: &p,
        grants: &no_grants,
    };
    let value = serde_json::to_value(tree).expect("serializes");
    let lesson = |id: &str, status: &str, bit: u32, level: &str, accessible: bool| {
        json!({"id": id, "type": "lesson", "title": format!("Title of {id}"), "status": status,
               "access_level": level, "is_accessible": accessible, "bit_index": bit})
    };
    let mut a = lesson("a", "passed", 0, "public", true);
    a["best_hearts"] = json!(4);
    let expected = json!({
        "id": "js", "type": "subject", "title": "Title of js", "status": "unlocked",
        "is_linear": true, "access_level": "public", "is_accessible": true,
        "children": [{
            "id": "t", "type": "topic", "title": "Title of t", "status": "unlocked",
            "is_linear": true, "access_level": "public", "is_accessible": true,
            "children": [a, lesson("b", "unlocked", 1, "paid", false), lesson("c", "locked", 2, "public", true)]
        }]
    });
    assert_eq!(value, expected);
    // Field order is part of the contract's readability.
    let text = serde_json::to_string(&tree).expect("serializes");
    assert!(text.starts_with(r#"{"id":"js","type":"subject","title":"Title of js","status":"unlocked","is_linear":true"#), "{text}");
    let grants = |item: &str| item == "js-pro";
    let tree = ProgressTree {
        grants: &grants,
        ..tree
    };
    let value = serde_json::to_value(tree).expect("serializes");
    assert_eq!(
        value["children"][0]["children"][1]["is_accessible"],
        json!(true)
    );
}

#[test]
fn progress_tree_of_a_realistic_subject_has_every_lesson_once() {
    let view = realistic(643);
    let p = SubjectProgress::new();
    let s = statuses(&view, &p.passed);
    let tree = ProgressTree {
        view: &view,
        statuses: &s,
        progress: &p,
        grants: &|_| true,
    };
    let value = serde_json::to_value(tree).expect("serializes");
    fn count(v: &serde_json::Value) -> usize {
        let own = usize::from(v["type"] == "lesson");
        own + v
            .get("children")
            .and_then(|c| c.as_array())
            .map_or(0, |c| c.iter().map(count).sum())
    }
    assert_eq!(count(&value), 643);
}

#[test]
fn fast_writer_escapes_titles_like_serde() {
    let mut b = ViewBuilder::new("js", false);
    b.open(NodeKind::Topic, "t", false);
    b.lesson("a").lesson("b");
    let mut view = b.build();
    view.nodes[1].title = "Quotes \" and \\ back\u{1}slash — Ünïcode 📚 \n".into();
    view.nodes[2].title = "</script>".into();
    let mut p = SubjectProgress::new();
    p.passed.insert(0);
    p.best_hearts.set(0, 3);
    let s = statuses(&view, &p.passed);
    let no_grants = |_: &str| false;
    let tree = ProgressTree {
        view: &view,
        statuses: &s,
        progress: &p,
        grants: &no_grants,
    };
    let mut fast = Vec::new();
    tree.write_json(&mut fast);
    assert_eq!(fast, serde_json::to_vec(&tree).expect("serializes"));
    let parsed: serde_json::Value = serde_json::from_slice(&fast).expect("valid JSON");
    assert_eq!(parsed["children"][0]["title"], view.nodes[1].title.as_ref());
}
