//! Compiled curriculum (issue 4): every URL of every manifest of a two-plan build
//! resolves to a file that parses, carries the hash its URL names and validates against
//! its JSON Schema; overrides and access rules as seen in the files; incremental
//! rebuilds; a build failing half-way leaves the previous manifest valid; low disk is
//! refused; `/content/` serving; debounced automatic rebuilds.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;
use memora::cdn::{BuildError, Disk, RealDisk, Writer, build_all, build_plan};
use memora::content::Catalog;
use memora::content::compile::ContentHash;
use serde_json::{Value, json};

use crate::util::fixture;

const NOW: &str = "2026-11-21T09:00:00Z";

fn now() -> Timestamp {
    NOW.parse().expect("timestamp")
}

/// The second plan: every override kind.
fn plan_b() -> Value {
    json!({
        "format": "memora.plan/v1", "id": "School-B", "title": "Second plan",
        "season": "2027", "subjects": ["bas"],
        "overrides": [
            {"target": "bas-u-data", "action": "hide"},
            {"target": "bas-l-002", "action": "set_free"},
            {"target": "bas-u-flow", "action": "set_access_level", "value": "public"},
            {"target": "bas-t-extra", "action": "set_sold_separately", "value": "ITEM-X"},
            {"target": "bas-l-001", "action": "rename", "value": "Intro"},
            {"target": "bas-t-core", "action": "set_linear", "value": false}
        ]
    })
}

fn put_subject(c: &Catalog, doc: &Value) -> Catalog {
    let r = c
        .prepare_subject(doc.to_string().as_bytes())
        .unwrap_or_else(|p| panic!("{p:?}"));
    c.with_subject(r)
}

fn put_plan(c: &Catalog, doc: &Value) -> Catalog {
    let r = c
        .prepare_plan(doc.to_string().as_bytes())
        .unwrap_or_else(|p| panic!("{p:?}"));
    c.with_plan(r)
}

fn catalog() -> Catalog {
    let mut c = Catalog::default();
    c = put_subject(&c, &fixture("basics.subject.json"));
    c = put_subject(&c, &fixture("chain.subject.json"));
    c = put_plan(&c, &fixture("school.plan.json"));
    put_plan(&c, &plan_b())
}

fn writer(root: &Path) -> Writer {
    Writer::new(root, Arc::new(RealDisk), 0.0)
}

fn schema(kind: &str) -> jsonschema::Validator {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("schemas/{kind}.schema.json"));
    let text = std::fs::read_to_string(&path).expect("schema file");
    jsonschema::validator_for(&serde_json::from_str(&text).expect("schema JSON")).expect("schema")
}

/// Reads `url` (with `?v=`) under `root`: checks the hash and the schema, returns the JSON.
fn follow(root: &Path, url: &str, kind: &str) -> Value {
    let (path, v) = url
        .split_once("?v=")
        .unwrap_or_else(|| panic!("{url} has no ?v="));
    let bytes = std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(
        ContentHash::of_stamped(&bytes)
            .map(|h| h.to_string())
            .as_deref(),
        Some(v),
        "{path}: hash differs from its URL"
    );
    let value: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
    validate(&value, kind, path);
    value
}

fn validate(value: &Value, kind: &str, path: &str) {
    let errors: Vec<String> = schema(kind)
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{path} ({kind}): {errors:#?}");
}

/// Follows every URL from a manifest; returns path (without query) → JSON.
fn walk_plan(root: &Path, plan: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let manifest_path = format!("plans/{plan}/manifest.json");
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(root.join(&manifest_path))
            .unwrap_or_else(|e| panic!("{manifest_path}: {e}")),
    )
    .expect("manifest JSON");
    validate(&manifest, "manifest", &manifest_path);
    let strip = |u: &str| u.split_once('?').map_or(u, |(p, _)| p).to_owned();
    for s in manifest["subjects"].as_array().expect("subjects") {
        let h = follow(root, s["hierarchy_url"].as_str().expect("url"), "hierarchy");
        for t in h["tracks"].as_array().expect("tracks") {
            for u in t["units"].as_array().expect("units") {
                for p in u["topics"].as_array().expect("topics") {
                    let url = p["topic_url"].as_str().expect("topic url");
                    let topic = follow(root, url, "topic");
                    for l in topic["lessons"].as_array().expect("lessons") {
                        let lu = l["lesson_url"].as_str().expect("lesson url");
                        out.insert(strip(lu), follow(root, lu, "lesson"));
                    }
                    out.insert(strip(url), topic);
                }
            }
        }
        out.insert(strip(s["hierarchy_url"].as_str().expect("url")), h);
        let b = s["bitmap_url"].as_str().expect("url");
        out.insert(strip(b), follow(root, b, "bitmap"));
    }
    let su = manifest["search_index_url"].as_str().expect("search url");
    let index = follow(root, su, "search_index");
    for shard in index["shards"].as_array().into_iter().flatten() {
        let u = shard["url"].as_str().expect("shard url");
        out.insert(strip(u), follow(root, u, "search_shard"));
    }
    out.insert(strip(su), index);
    out.insert(manifest_path, manifest);
    out
}

/// Every file under `root` (relative path → bytes).
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn go(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                go(root, &p, out);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .expect("prefix")
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    go(root, root, &mut out);
    out
}

fn access(v: &Value) -> (String, Option<String>) {
    (
        v["access"]["access_level"]
            .as_str()
            .expect("level")
            .to_owned(),
        v["access"]["required_item"].as_str().map(str::to_owned),
    )
}

fn find<'v>(list: &'v Value, id: &str) -> &'v Value {
    list.as_array()
        .expect("array")
        .iter()
        .find(|x| x["id"] == id)
        .unwrap_or_else(|| panic!("{id} missing"))
}

#[test]
fn every_url_of_every_manifest_resolves_and_validates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = catalog();
    let reports = build_all(&mut writer(dir.path()), &c, now(), |_| {}).expect("build");
    assert_eq!(reports.len(), 2);
    let mut reachable = BTreeSet::new();
    for plan in ["school", "school-b"] {
        let files = walk_plan(dir.path(), plan);
        // _b.json mappings are the bit indexes the progress API reports (the view's).
        let view = c.plan_view(plan).expect("view");
        for s in &view.subjects {
            let b = &files[&format!(
                "plans/{plan}/{}_b.json",
                s.subject_id().to_ascii_lowercase()
            )];
            assert_eq!(b["total_lessons"], s.total_lessons());
            for &l in &s.lessons {
                let node = &s.nodes[l as usize];
                assert_eq!(
                    b["mappings"][&*node.id]["bit_index"], node.bit_index,
                    "{}",
                    node.id
                );
                let record = c.subject(s.subject_id()).expect("subject");
                assert_eq!(
                    record.bit_index(&node.id.to_ascii_lowercase()),
                    Some(node.bit_index)
                );
            }
        }
        reachable.extend(files.into_keys());
    }
    // Nothing on disk that no manifest reaches (but the manifests' previous versions).
    let on_disk: BTreeSet<String> = tree(dir.path()).into_keys().collect();
    assert_eq!(on_disk, reachable);
    // School has 228 visible lessons: the index is inline; hidden and unpublished lessons
    // have no file.
    let index: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("plans/school/search_index.json")).expect("index"),
    )
    .expect("json");
    assert_eq!(index["is_sharded"], false);
    assert!(!dir.path().join("lessons/bas-l-011.json").exists());
}

#[test]
fn overrides_and_access_rules_show_in_the_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = catalog();
    build_all(&mut writer(dir.path()), &c, now(), |_| {}).expect("build");
    let a = walk_plan(dir.path(), "school");
    let b = walk_plan(dir.path(), "school-b");

    // rename (plan school: subject; plan B: lesson) only in plan files.
    assert_eq!(
        a["plans/school/manifest.json"]["subjects"][0]["title"],
        "Basics for school"
    );
    assert_eq!(a["plans/school/bas_h.json"]["title"], "Basics for school");
    let hello_b = &b["plans/school-b/topics/bas-tp-hello.json"];
    assert_eq!(find(&hello_b["lessons"], "bas-l-001")["title"], "Intro");
    assert_eq!(b["lessons/bas-l-001.json"]["title"], "First steps");
    assert!(b["lessons/bas-l-001.json"].get("access").is_none());
    // Document is_free_preview, and set_free.
    let hello_a = &a["plans/school/topics/bas-tp-hello.json"];
    assert_eq!(
        access(find(&hello_a["lessons"], "bas-l-001")).0,
        "free_preview"
    );
    assert_eq!(
        access(find(&hello_a["lessons"], "bas-l-002")).0,
        "authenticated"
    );
    assert_eq!(
        access(find(&hello_b["lessons"], "bas-l-002")).0,
        "free_preview"
    );
    // set_access_level flows down to the subtree.
    let h_b = &b["plans/school-b/bas_h.json"];
    let core = find(&h_b["tracks"], "bas-t-core");
    let flow = find(&core["units"], "bas-u-flow");
    assert_eq!(access(flow).0, "public");
    let loops = &b["plans/school-b/topics/bas-tp-loops.json"];
    assert_eq!(access(find(&loops["lessons"], "bas-l-013")).0, "public");
    // set_linear.
    assert_eq!(core["is_linear"], false);
    assert_eq!(
        find(&a["plans/school/bas_h.json"]["tracks"], "bas-t-core")["is_linear"],
        true
    );
    // Document required_item vs set_sold_separately island.
    let extra_a = find(&a["plans/school/bas_h.json"]["tracks"], "bas-t-extra");
    assert_eq!(
        access(extra_a),
        ("paid".into(), Some("ITEM-BAS-EXTRA".into()))
    );
    let extra_b = find(&h_b["tracks"], "bas-t-extra");
    assert_eq!(access(extra_b), ("paid".into(), Some("ITEM-X".into())));
    let func_b = &b["plans/school-b/topics/bas-tp-func.json"];
    assert_eq!(
        access(find(&func_b["lessons"], "bas-l-017")),
        ("paid".into(), Some("ITEM-X".into()))
    );
    // hide: the unit, its topic file and its mappings are gone from plan B only.
    let extra_units: Vec<&Value> = extra_b["units"].as_array().expect("units").iter().collect();
    assert!(extra_units.iter().all(|u| u["id"] != "bas-u-data"));
    assert!(
        !dir.path()
            .join("plans/school-b/topics/bas-tp-arrays.json")
            .exists()
    );
    assert!(
        dir.path()
            .join("plans/school/topics/bas-tp-arrays.json")
            .exists()
    );
    assert!(
        b["plans/school-b/bas_b.json"]["mappings"]
            .get("bas-l-027")
            .is_none()
    );
    // hide in plan school (bas-l-016), unpublished lesson (bas-l-011).
    let loops_a = &a["plans/school/topics/bas-tp-loops.json"];
    assert!(
        loops_a["lessons"]
            .as_array()
            .expect("lessons")
            .iter()
            .all(|l| l["id"] != "bas-l-016")
    );
    assert_eq!(a["plans/school/bas_h.json"]["stats"]["total_lessons"], 28);
    // Manifest fields.
    let m_b = &b["plans/school-b/manifest.json"];
    assert_eq!(m_b["plan_id"], "School-B");
    assert_eq!(m_b["season"], "2027");
    assert_eq!(m_b["grade"], Value::Null);
    assert_eq!(
        a["plans/school/manifest.json"]["subjects"][0]["color_code"],
        "#3366CC"
    );
}

#[test]
fn changing_one_lesson_rewrites_only_what_references_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = catalog();
    let mut w = writer(dir.path());
    build_all(&mut w, &c, now(), |_| {}).expect("build");
    let before = tree(dir.path());
    let version_before = walk_plan(dir.path(), "school")["plans/school/manifest.json"]["version"]
        .as_i64()
        .expect("version");

    // Nothing changed: nothing written, versions kept.
    let again = build_all(&mut w, &c, now(), |_| {}).expect("rebuild");
    assert!(
        again
            .iter()
            .all(|r| r.outcome == "unchanged" && r.write.written == 0)
    );
    assert_eq!(tree(dir.path()), before);

    let mut doc = fixture("basics.subject.json");
    doc["tracks"][0]["units"][0]["topics"][1]["lessons"][0]["stages"][0]["title"] =
        json!("Changed stage");
    assert_eq!(
        doc["tracks"][0]["units"][0]["topics"][1]["lessons"][0]["id"],
        "bas-l-005"
    );
    let c2 = put_subject(&c, &doc);
    // A fresh writer scans the disk: the same result as a warm one. (Only one writer may
    // own an output root: the old one's memory of the disk is stale from here on.)
    let mut w = writer(dir.path());
    let reports = build_all(&mut w, &c2, now(), |_| {}).expect("rebuild");
    let after = tree(dir.path());
    let changed: BTreeSet<&str> = after
        .iter()
        .filter(|(p, bytes)| before.get(*p) != Some(*bytes))
        .map(|(p, _)| p.as_str())
        .collect();
    let expected: BTreeSet<&str> = [
        "lessons/bas-l-005.json",
        "plans/school/topics/bas-tp-vars.json",
        "plans/school/bas_h.json",
        "plans/school/manifest.json",
        "plans/school/manifest.prev.json",
        "plans/school-b/topics/bas-tp-vars.json",
        "plans/school-b/bas_h.json",
        "plans/school-b/manifest.json",
        "plans/school-b/manifest.prev.json",
    ]
    .into();
    assert_eq!(changed, expected);
    assert_eq!(reports[0].write.written + reports[1].write.written, 7);
    assert_eq!(
        after["plans/school/manifest.prev.json"],
        before["plans/school/manifest.json"]
    );
    // The version strictly increases even though the clock did not move.
    let m = walk_plan(dir.path(), "school");
    assert_eq!(
        m["plans/school/manifest.json"]["version"],
        version_before + 1
    );

    // Removing a lesson deletes its file (no other plan shows it) and its mapping.
    let mut doc = fixture("basics.subject.json");
    let lessons = doc["tracks"][0]["units"][0]["topics"][1]["lessons"]
        .as_array_mut()
        .expect("lessons");
    lessons.retain(|l| l["id"] != "bas-l-006");
    let c3 = put_subject(&c2, &doc);
    build_all(&mut w, &c3, now(), |_| {}).expect("rebuild");
    assert!(!dir.path().join("lessons/bas-l-006.json").exists());
    let files = walk_plan(dir.path(), "school");
    assert!(
        files["plans/school/bas_b.json"]["mappings"]
            .get("bas-l-006")
            .is_none()
    );

    // Unpublishing a plan removes its directory.
    let mut p = plan_b();
    p["is_published"] = json!(false);
    let c4 = put_plan(&c3, &p);
    let r = build_plan(&mut w, &c4, "school-b", now()).expect("remove");
    assert_eq!(r.outcome, "removed");
    assert!(!dir.path().join("plans/school-b").exists());
}

/// Writes the first half of every batch, then fails: a build killed half-way.
struct HalfDisk {
    fail: AtomicBool,
    free: f64,
}

impl Disk for HalfDisk {
    fn write_batch(&self, files: &[(PathBuf, &[u8])]) -> io::Result<()> {
        if !self.fail.load(Ordering::SeqCst) {
            return RealDisk.write_batch(files);
        }
        RealDisk.write_batch(&files[..files.len() / 2])?;
        Err(io::Error::other("injected failure"))
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        RealDisk.remove(path)
    }
    fn free_percent(&self, _: &Path) -> io::Result<f64> {
        Ok(self.free)
    }
}

#[test]
fn a_build_failing_half_way_leaves_the_previous_manifest_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = Arc::new(HalfDisk {
        fail: AtomicBool::new(false),
        free: 50.0,
    });
    let mut w = Writer::new(dir.path(), disk.clone(), 10.0);
    let c = catalog();
    build_all(&mut w, &c, now(), |_| {}).expect("build");
    let manifest_before = std::fs::read(dir.path().join("plans/school/manifest.json")).expect("m");

    // Every lesson title of `chain` changes: many files to write.
    let mut doc = fixture("chain.subject.json");
    for l in doc["tracks"][0]["units"][0]["topics"]
        .as_array_mut()
        .expect("topics")
        .iter_mut()
        .flat_map(|t| t["lessons"].as_array_mut().expect("lessons").iter_mut())
    {
        l["title"] = json!(format!("{} (v2)", l["title"].as_str().expect("title")));
    }
    let c2 = put_subject(&c, &doc);
    disk.fail.store(true, Ordering::SeqCst);
    let err = build_plan(&mut w, &c2, "school", now()).expect_err("injected failure");
    assert!(matches!(err, BuildError::Io { .. }), "{err}");
    // The previous manifest is still in place and everything it points to is there.
    assert_eq!(
        std::fs::read(dir.path().join("plans/school/manifest.json")).expect("m"),
        manifest_before
    );
    let m: Value = serde_json::from_slice(&manifest_before).expect("json");
    for s in m["subjects"].as_array().expect("subjects") {
        let h_url = s["hierarchy_url"].as_str().expect("url");
        let h: Value = serde_json::from_slice(
            &std::fs::read(dir.path().join(h_url.split('?').next().expect("path"))).expect("h"),
        )
        .expect("json");
        for t in h["tracks"].as_array().expect("t") {
            for u in t["units"].as_array().expect("u") {
                for p in u["topics"].as_array().expect("p") {
                    let path = p["topic_url"]
                        .as_str()
                        .expect("url")
                        .split('?')
                        .next()
                        .expect("p");
                    let topic: Value = serde_json::from_slice(
                        &std::fs::read(dir.path().join(path)).expect("topic"),
                    )
                    .expect("json");
                    for l in topic["lessons"].as_array().expect("l") {
                        let lp = l["lesson_url"]
                            .as_str()
                            .expect("url")
                            .split('?')
                            .next()
                            .expect("p");
                        assert!(dir.path().join(lp).exists(), "{lp} missing");
                    }
                }
            }
        }
    }
    // No temp file is left visible, and the next build (same writer) completes.
    disk.fail.store(false, Ordering::SeqCst);
    build_plan(&mut w, &c2, "school", now()).expect("retry");
    walk_plan(dir.path(), "school");
    assert!(tree(dir.path()).keys().all(|p| !p.contains(".tmp-")));
}

#[test]
fn builds_are_refused_below_the_free_disk_threshold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = Arc::new(HalfDisk {
        fail: AtomicBool::new(false),
        free: 5.0,
    });
    let mut w = Writer::new(dir.path(), disk, 10.0);
    let err = build_plan(&mut w, &catalog(), "school", now()).expect_err("low disk");
    assert!(matches!(err, BuildError::LowDisk { .. }), "{err}");
    assert!(err.to_string().contains("10% threshold"), "{err}");
    assert!(tree(dir.path()).is_empty());
}

fn engine_config(dir: &Path, debounce_ms: &str) -> memora::config::Config {
    memora::config::Config::load(
        None,
        [
            ("MEMORA_STORAGE__DATA_DIR", dir.to_str().expect("utf8 path")),
            ("MEMORA_AUTH__ARGON2_MEMORY_KIB", "64"),
            ("MEMORA_AUTH__ARGON2_ITERATIONS", "1"),
            ("MEMORA_LOG__LEVEL", "warn"),
            ("MEMORA_CONTENT__BUILD_DEBOUNCE_MS", debounce_ms),
            ("MEMORA_CONTENT__MIN_FREE_DISK_PERCENT", "0"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .expect("test config")
}

async fn import_fixtures(engine: &memora::engine::Engine) {
    for name in ["basics.subject.json", "chain.subject.json"] {
        engine
            .put_subject(None, fixture(name).to_string().as_bytes())
            .await
            .expect("subject");
    }
    engine
        .put_plan(None, fixture("school.plan.json").to_string().as_bytes())
        .await
        .expect("plan");
}

async fn get(
    router: &axum::Router,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, axum::http::HeaderMap, Vec<u8>) {
    use tower::ServiceExt;
    let mut req = axum::http::Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = router
        .clone()
        .oneshot(req.body(axum::body::Body::empty()).expect("request"))
        .await
        .expect("response");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, headers, body.to_vec())
}

#[tokio::test]
async fn content_is_served_with_etags_gzip_and_no_traversal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = memora::engine::Engine::open(
        engine_config(dir.path(), "600000"),
        Arc::new(memora::clock::SystemClock),
    )
    .expect("engine");
    import_fixtures(&engine).await;
    let record = engine.build_now("school", "test").await.expect("build");
    assert_eq!(record.state, memora::cdn::BuildState::Done, "{record:?}");
    let router = memora::http::router(engine.clone());

    let (status, headers, body) = get(&router, "/content/plans/school/manifest.json", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    let manifest: Value = serde_json::from_slice(&body).expect("json");
    let etag = headers["etag"].to_str().expect("etag").to_owned();
    let (status, _, body) = get(
        &router,
        "/content/plans/school/manifest.json",
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(status, 304);
    assert!(body.is_empty());

    let url = format!(
        "/content/{}",
        manifest["subjects"][1]["hierarchy_url"]
            .as_str()
            .expect("url")
    );
    let (status, headers, gz) = get(&router, &url, &[("accept-encoding", "gzip")]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["cache-control"], "public, max-age=300");
    let (_, _, plain) = get(&router, &url, &[]).await;
    assert!(gz.len() < plain.len());

    for bad in [
        "/content/plans",
        "/content/plans/",
        "/content/../config.toml",
        "/content/plans/%2e%2e/%2e%2e/memora.redb",
        "/content/plans/school/..%2f..%2fmemora.redb",
        "/content/plans/school/.manifest.json.tmp-1",
        "/content/nope.json",
    ] {
        let (status, _, _) = get(&router, bad, &[]).await;
        assert_eq!(status, 404, "{bad}");
    }
    let builds = engine.builds().view();
    assert_eq!(builds.history[0].plan_id, "school");
    tokio::task::spawn_blocking(move || engine.shutdown())
        .await
        .expect("join")
        .expect("shutdown");
}

#[tokio::test]
async fn content_changes_trigger_a_debounced_build() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = memora::engine::Engine::open(
        engine_config(dir.path(), "50"),
        Arc::new(memora::clock::SystemClock),
    )
    .expect("engine");
    let (stop, rx) = tokio::sync::watch::channel(false);
    let runner = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.run_builds(rx).await })
    };
    import_fixtures(&engine).await;
    let manifest = dir.path().join("cdn/plans/school/manifest.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !manifest.exists() {
        assert!(std::time::Instant::now() < deadline, "no automatic build");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    walk_plan(&dir.path().join("cdn"), "school");
    let _ = stop.send(true);
    runner.await.expect("runner");
    tokio::task::spawn_blocking(move || engine.shutdown())
        .await
        .expect("join")
        .expect("shutdown");
}

#[test]
fn memora_build_builds_offline_and_then_finds_nothing_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf8");
    // The threshold off: a shared machine's disk may be more than 90% full.
    let env = [
        ("MEMORA_STORAGE__DATA_DIR", data),
        ("MEMORA_LOG__LEVEL", "warn"),
        ("MEMORA_CONTENT__MIN_FREE_DISK_PERCENT", "0"),
    ];
    let files = [
        "basics.subject.json",
        "chain.subject.json",
        "school.plan.json",
    ]
    .map(crate::util::fixture_path);
    let mut args: Vec<std::ffi::OsString> = vec!["import".into()];
    args.extend(files.iter().map(|f| f.clone().into_os_string()));
    let run = crate::util::memora(None, &args, &env);
    assert!(run.status.success(), "{run}");
    let run = crate::util::memora(None, &["build"], &env);
    assert!(run.status.success(), "{run}");
    assert!(run.stdout.contains("built school"), "{run}");
    walk_plan(&dir.path().join("cdn"), "school");
    let run = crate::util::memora(None, &["build", "--plan", "school"], &env);
    assert!(run.stdout.contains("unchanged school"), "{run}");
    let run = crate::util::memora(None, &["build", "--plan", "nope"], &env);
    assert!(
        !run.status.success() && run.all().contains("no plan `nope`"),
        "{run}"
    );
}
