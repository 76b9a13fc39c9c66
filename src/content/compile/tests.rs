//! Unit tests of the compiler: file set and order, hashes stable across stamps, renames
//! only in plan files, sharding threshold.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::*;
use crate::content::tests::{import_plan, import_subject, plan, simple_subject};

fn parse(f: &CompiledFile) -> Value {
    serde_json::from_slice(&f.stamped(&Stamp::at(1_800_000_000))).unwrap()
}

fn file<'p>(p: &'p CompiledPlan, path: &str) -> &'p CompiledFile {
    p.files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no {path}"))
}

fn catalog() -> Catalog {
    let c = import_subject(
        &Catalog::default(),
        &simple_subject("S1", &["L1", "l2", "l3"]),
    );
    import_plan(
        &c,
        &plan(
            "P1",
            &["S1"],
            json!([{"target": "l2", "action": "rename", "value": "Renamed"},
                   {"target": "l3", "action": "hide"}]),
        ),
    )
}

#[test]
fn a_plan_compiles_to_the_six_kinds_with_the_manifest_last() {
    let c = catalog();
    let p = compile_plan(
        &c,
        "p1",
        &Stamp::at(1_800_000_000),
        &mut DocCache::default(),
    )
    .unwrap();
    let paths: Vec<&str> = p.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "lessons/l1.json",
            "lessons/l2.json",
            "plans/p1/topics/s1-p.json",
            "plans/p1/s1_h.json",
            "plans/p1/s1_b.json",
            "plans/p1/search_index.json",
            "plans/p1/manifest.json",
        ]
    );
    let m = parse(p.manifest().unwrap());
    assert_eq!(m["version"], 1_800_000_000);
    assert_eq!(m["generated_at"], "2027-01-15T08:00:00Z");
    let h = file(&p, "plans/p1/s1_h.json");
    assert_eq!(
        m["subjects"][0]["hierarchy_url"],
        format!("plans/p1/s1_h.json?v={}", h.hash)
    );
    let topic = parse(file(&p, "plans/p1/topics/s1-p.json"));
    assert_eq!(topic["lessons"][1]["title"], "Renamed");
    assert_eq!(topic["lessons"].as_array().unwrap().len(), 2);
    let lesson = parse(file(&p, "lessons/l2.json"));
    assert_eq!(
        lesson["title"], "Lesson l2",
        "rename stays out of lesson files"
    );
    assert!(lesson.get("access").is_none());
    assert_eq!(lesson["stages"][1]["idx"], 2);
    let bits = parse(file(&p, "plans/p1/s1_b.json"));
    assert_eq!(
        bits["mappings"]["L1"],
        json!({"bit_index": 0, "topic_id": "S1-p"})
    );
}

#[test]
fn hashes_ignore_the_stamp() {
    let c = catalog();
    let mut docs = DocCache::default();
    let a = compile_plan(&c, "P1", &Stamp::at(100), &mut docs).unwrap();
    let b = compile_plan(&c, "P1", &Stamp::at(200), &mut docs).unwrap();
    for (x, y) in a.files.iter().zip(&b.files) {
        assert_eq!(x.hash, y.hash, "{}", x.path);
        let (sx, sy) = (x.stamped(&a.stamp), y.stamped(&b.stamp));
        assert_ne!(sx, sy);
        assert_eq!(ContentHash::of_stamped(&sy), Some(y.hash));
    }
}

#[test]
fn the_search_index_shards_from_500_lessons() {
    let ids: Vec<String> = (0..500).map(|i| format!("x{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let c = import_subject(&Catalog::default(), &simple_subject("big", &refs));
    let c = import_plan(&c, &plan("p", &["big"], json!([])));
    let p = compile_plan(&c, "p", &Stamp::at(1), &mut DocCache::default()).unwrap();
    let index = parse(file(&p, "plans/p/search_index.json"));
    assert_eq!(index["is_sharded"], true);
    assert_eq!(index["shards"][0]["lesson_count"], 500);
    let shard = parse(file(&p, "plans/p/search/big.json"));
    assert_eq!(shard["entries"].as_array().unwrap().len(), 500);
}

#[test]
fn unpublished_and_unknown_plans_do_not_compile() {
    let c = catalog();
    let mut doc = plan("hidden", &["S1"], json!([]));
    doc["is_published"] = json!(false);
    let c = import_plan(&c, &doc);
    let mut docs = DocCache::default();
    assert!(matches!(
        compile_plan(&c, "hidden", &Stamp::at(1), &mut docs),
        Err(CompileError::Unpublished(_))
    ));
    assert!(matches!(
        compile_plan(&c, "nope", &Stamp::at(1), &mut docs),
        Err(CompileError::UnknownPlan(_))
    ));
    assert_eq!(
        live_lesson_paths(&c).into_iter().collect::<Vec<_>>(),
        ["lessons/l1.json", "lessons/l2.json"]
    );
}
