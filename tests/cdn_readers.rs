//! Atomicity of builds as a reader sees it (content.md "Build rules", issue 4): while a
//! plan is rebuilt over and over with lessons hidden and shown again (files written and
//! deleted), a concurrent reader that loads the manifest and follows every URL it links
//! never finds a file missing **while that manifest is still the current one**. (A
//! reader still holding a manifest that a newer build replaced may find files of
//! vanished nodes deleted: content.md deletes them after the new manifest is in place.)

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use memora::cdn::{RealDisk, Writer, build_plan};
use memora::content::Catalog;
use serde_json::{Value, json};

use crate::util::fixture;

fn with_plan(base: &Catalog, hidden: &[&str]) -> Catalog {
    let overrides: Vec<Value> = hidden
        .iter()
        .map(|id| json!({"target": id, "action": "hide"}))
        .collect();
    let plan = json!({
        "format": "memora.plan/v1", "id": "live", "title": "Live plan",
        "subjects": ["bas"], "overrides": overrides
    });
    let record = base
        .prepare_plan(plan.to_string().as_bytes())
        .unwrap_or_else(|p| panic!("{p:?}"));
    base.with_plan(record)
}

/// Every URL reachable from the manifest (hierarchy, bitmap, search index, topics,
/// lessons), without the `?v=` query.
fn urls_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k.ends_with("_url") || k == "url" {
                    if let Some(u) = v.as_str() {
                        out.push(u.split('?').next().unwrap_or(u).to_owned());
                    }
                } else {
                    urls_in(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| urls_in(v, out)),
        _ => {}
    }
}

/// What one pass of the reader found.
enum Pass {
    /// Every reachable file was there; how many were read.
    Whole(usize),
    /// A file was missing but a newer manifest had replaced the one being followed.
    Superseded,
}

/// Loads the manifest and every file it reaches. A missing file is an error only if the
/// manifest is still the one that pointed at it.
fn read_whole_plan(root: &Path) -> Result<Pass, String> {
    let manifest_path = root.join("plans/live/manifest.json");
    let Ok(bytes) = std::fs::read(&manifest_path) else {
        return Ok(Pass::Whole(0)); // not built yet
    };
    match follow(root, &bytes) {
        Ok(n) => Ok(Pass::Whole(n)),
        Err(missing) if std::fs::read(&manifest_path).ok().as_deref() == Some(&bytes[..]) => {
            Err(missing)
        }
        Err(_) => Ok(Pass::Superseded),
    }
}

fn follow(root: &Path, bytes: &[u8]) -> Result<usize, String> {
    let manifest: Value = serde_json::from_slice(bytes).map_err(|e| format!("manifest: {e}"))?;
    let mut queue = VecDeque::new();
    let mut first = Vec::new();
    urls_in(&manifest, &mut first);
    queue.extend(first);
    let mut read = 0;
    while let Some(url) = queue.pop_front() {
        let bytes = std::fs::read(root.join(&url)).map_err(|e| format!("{url}: {e}"))?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| format!("{url}: {e}"))?;
        let mut more = Vec::new();
        urls_in(&value, &mut more);
        queue.extend(more);
        read += 1;
    }
    Ok(read)
}

#[test]
fn a_reader_never_sees_a_manifest_pointing_at_a_missing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_owned();
    let mut base = Catalog::default();
    let record = base
        .prepare_subject(fixture("basics.subject.json").to_string().as_bytes())
        .unwrap_or_else(|p| panic!("{p:?}"));
    base = base.with_subject(record);
    // Alternating shapes: whole units and single lessons appear and disappear, so each
    // build writes some files and deletes others.
    let shapes: [&[&str]; 3] = [
        &[],
        &["bas-u-flow", "bas-l-003"],
        &["bas-tp-vars", "bas-l-017"],
    ];
    let catalogs: Vec<Catalog> = shapes.iter().map(|h| with_plan(&base, h)).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let (root, stop, reads) = (root.clone(), stop.clone(), reads.clone());
        std::thread::spawn(move || -> Result<(), String> {
            while !stop.load(Ordering::Relaxed) {
                if let Pass::Whole(n) = read_whole_plan(&root)?
                    && n > 0
                {
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        })
    };
    let mut writer = Writer::new(&root, Arc::new(RealDisk), 0.0);
    let mut now: jiff::Timestamp = "2026-11-21T09:00:00Z".parse().expect("ts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut builds = 0;
    while builds < 60 && std::time::Instant::now() < deadline {
        let report = build_plan(&mut writer, &catalogs[builds % 3], "live", now).expect("build");
        assert!(
            report.write.written > 0,
            "every build changes files: {report:?}"
        );
        builds += 1;
        now += jiff::SignedDuration::from_secs(1);
    }
    stop.store(true, Ordering::Relaxed);
    let result = reader.join().expect("reader thread");
    assert_eq!(
        result,
        Ok(()),
        "a reader saw a manifest pointing at a missing file"
    );
    assert!(builds >= 6, "only {builds} builds ran");
    assert!(
        reads.load(Ordering::Relaxed) > 0,
        "the reader never completed a pass"
    );
    // And the final state is whole.
    assert!(matches!(read_whole_plan(&root), Ok(Pass::Whole(n)) if n > 5));
}
