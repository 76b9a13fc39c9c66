//! The fcc-2018 data set (7 subjects, 1 plan, 1,409 lessons), when present.

use std::path::Path;
use std::time::Instant;

use super::*;

#[test]
fn imports_the_fcc_2018_set() {
    // `../shared` next to the project (or next to a worktree's parent).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(dir) = ["../shared/data/fcc-2018", "../../shared/data/fcc-2018"]
        .iter()
        .map(|rel| root.join(rel))
        .find(|d| d.is_dir())
    else {
        println!("skip: ../shared/data/fcc-2018 not found");
        return;
    };
    let entries = std::fs::read_dir(&dir).unwrap();
    let mut subjects = Vec::new();
    let mut plans = Vec::new();
    for e in entries {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let body = std::fs::read(&path).unwrap();
        if name.ends_with(".subject.json") {
            subjects.push(body);
        } else if name.ends_with(".plan.json") {
            plans.push(body);
        }
    }
    let started = Instant::now();
    let mut c = Catalog::default();
    for body in &subjects {
        c = c.with_subject(c.prepare_subject(body).unwrap());
    }
    for body in &plans {
        c = c.with_plan(c.prepare_plan(body).unwrap());
    }
    println!(
        "fcc-2018: imported {} subjects and {} plan(s) in {:?}",
        subjects.len(),
        plans.len(),
        started.elapsed()
    );
    assert_eq!((subjects.len(), plans.len()), (7, 1));
    let stats = c.stats();
    assert_eq!((stats.subjects, stats.plans, stats.lessons), (7, 1, 1409));
    let view = c.plan_view("fcc-2018").unwrap();
    assert_eq!(view.subjects.len(), 7);
    let total: u32 = view.subjects.iter().map(|s| s.total_lessons()).sum();
    assert_eq!(total, 1409);
    let questions: usize = view.subjects.iter().map(|s| s.question_lesson.len()).sum();
    assert_eq!(questions, 1409);
    // Re-importing every subject is idempotent for the bit indexes.
    let started = Instant::now();
    for body in &subjects {
        let r = c.prepare_subject(body).unwrap();
        assert_eq!(Some(&r), c.subject(&r.id));
        c = c.with_subject(r);
    }
    println!("fcc-2018: re-imported in {:?}", started.elapsed());
}
