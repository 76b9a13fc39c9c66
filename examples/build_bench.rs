//! Measures compiled-content builds (issue 4, quality.md targets): a full build of
//! fcc-2018 (if `/work/shared/data/fcc-2018` or `$FCC_DIR` exists) and of a generated
//! 16,000-lesson curriculum, a no-change rebuild, and a rebuild after one lesson changed.
//!
//! `cargo run --release --example build_bench [OUT_DIR]` (OUT_DIR defaults to a temp dir).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use memora::cdn::{RealDisk, Writer, build_all};
use memora::content::Catalog;
use serde_json::{Value, json};

fn import(c: &Catalog, doc: &[u8]) -> Catalog {
    match c.prepare_subject(doc) {
        Ok(r) => c.with_subject(r),
        Err(_) => {
            let r = c.prepare_plan(doc).expect("valid document");
            c.with_plan(r)
        }
    }
}

fn measure(name: &str, catalog: &Catalog, out: &Path, change: impl Fn(&Catalog) -> Catalog) {
    let _ = std::fs::remove_dir_all(out);
    let now = jiff::Timestamp::now();
    let mut w = Writer::new(out, Arc::new(RealDisk), 0.0);
    let t = Instant::now();
    let r = build_all(&mut w, catalog, now, |_| {}).expect("full build");
    let files: usize = r.iter().map(|r| r.write.written).sum();
    let bytes: u64 = r.iter().map(|r| r.write.bytes_written).sum();
    println!(
        "{name}: full build {} ms ({files} files, {:.1} MB)",
        t.elapsed().as_millis(),
        bytes as f64 / 1e6
    );
    let t = Instant::now();
    build_all(&mut w, catalog, now, |_| {}).expect("rebuild");
    println!(
        "{name}: rebuild, nothing changed {} ms",
        t.elapsed().as_millis()
    );
    let changed = change(catalog);
    let t = Instant::now();
    let r = build_all(&mut w, &changed, now, |_| {}).expect("rebuild");
    let written: usize = r.iter().map(|r| r.write.written).sum();
    println!(
        "{name}: rebuild after one lesson changed {} ms ({written} files written, warm writer)",
        t.elapsed().as_millis()
    );
    let mut cold = Writer::new(out, Arc::new(RealDisk), 0.0);
    let changed2 = change(&changed);
    let t = Instant::now();
    build_all(&mut cold, &changed2, now, |_| {}).expect("rebuild");
    println!(
        "{name}: rebuild after one lesson changed {} ms (cold writer: scans the output first)",
        t.elapsed().as_millis()
    );
}

/// Re-imports `subject` with the first stage title of its first lesson suffixed.
fn touch_first_lesson(c: &Catalog, subject: &str) -> Catalog {
    let mut doc: Value =
        serde_json::from_str(&c.subject(subject).expect("subject").doc_json).expect("json");
    let stage = doc["tracks"][0]["units"][0]["topics"][0]["lessons"][0]["stages"][0]["title"]
        .as_str()
        .unwrap_or("x")
        .to_owned();
    doc["tracks"][0]["units"][0]["topics"][0]["lessons"][0]["stages"][0]["title"] =
        json!(format!("{stage}+"));
    import(c, doc.to_string().as_bytes())
}

fn generated(subjects: usize, lessons_per_topic: usize) -> Catalog {
    let mut c = Catalog::default();
    let mut ids = Vec::new();
    for s in 0..subjects {
        let sid = format!("gen{s}");
        let tracks: Vec<Value> = (0..4).map(|t| json!({
            "id": format!("{sid}-t{t}"), "title": format!("Track {t}"),
            "units": (0..5).map(|u| json!({
                "id": format!("{sid}-t{t}-u{u}"), "title": format!("Unit {u}"), "badge_image": "assets/badge.png",
                "topics": (0..5).map(|p| json!({
                    "id": format!("{sid}-t{t}-u{u}-p{p}"), "title": format!("Topic {p}"),
                    "lessons": (0..lessons_per_topic).map(|l| {
                        let lid = format!("{sid}-t{t}-u{u}-p{p}-l{l}");
                        json!({"id": lid, "title": format!("Lesson {l} of topic {p}"), "stages": [
                            {"type": "text", "title": "Read", "config": {"html": "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit. </p>".repeat(12)}},
                            {"type": "video", "title": "Watch", "config": {"url": "https://example.invalid/v.mp4"}, "target_time": 120},
                            {"type": "question", "id": format!("q-{lid}"), "title": "Check", "config": {"question": "Which?", "options": ["a", "b", "c", "d"], "correct_answer": 2}}
                        ]})
                    }).collect::<Vec<_>>()
                })).collect::<Vec<_>>()
            })).collect::<Vec<_>>()
        })).collect();
        let doc = json!({"format": "memora.subject/v1", "id": sid, "title": format!("Subject {s}"), "color_code": "#112233", "tracks": tracks});
        c = import(&c, doc.to_string().as_bytes());
        ids.push(sid);
    }
    let plan =
        json!({"format": "memora.plan/v1", "id": "gen", "title": "Generated", "subjects": ids});
    import(&c, plan.to_string().as_bytes())
}

fn main() {
    let out: PathBuf = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("memora-build-bench"));
    let fcc = std::env::var("FCC_DIR").unwrap_or_else(|_| "/work/shared/data/fcc-2018".into());
    if let Ok(entries) = std::fs::read_dir(&fcc) {
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort_by_key(|p| p.to_string_lossy().contains(".plan."));
        let mut c = Catalog::default();
        for p in paths {
            c = import(&c, &std::fs::read(&p).expect("read"));
        }
        let lessons: u32 = c
            .plans()
            .filter_map(|p| c.plan_view(&p.id))
            .map(|v| v.subjects.iter().map(|s| s.total_lessons()).sum::<u32>())
            .sum();
        println!("fcc-2018: {lessons} visible lessons");
        let first = c.subjects().next().expect("a subject").id.clone();
        measure("fcc-2018", &c, &out.join("fcc"), |c| {
            touch_first_lesson(c, &first)
        });
    }
    let t = Instant::now();
    let c = generated(8, 20);
    println!(
        "generated: 16000 lessons imported in {} ms",
        t.elapsed().as_millis()
    );
    measure("generated-16k", &c, &out.join("gen"), |c| {
        touch_first_lesson(c, "gen3")
    });
    let _ = std::fs::remove_dir_all(&out);
}
