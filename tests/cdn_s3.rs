//! Upload of compiled files to a real S3-compatible server on loopback (issue 4, moto):
//! every uploadable file lands in the bucket with its body, `Content-Type` and
//! `Cache-Control`; the manifest goes after the files and deletions after the manifest;
//! a rebuild uploads only what changed; assets follow; an upload failure (server
//! unreachable) fails the build, which the queue retries after its backoff and which
//! then catches up; the server wiring (`[cdn.s3]` from the environment, assets route,
//! admin builds view); and the generic `objstore::Bucket` (bytes, small and multipart
//! files with headers, list, get, delete).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use memora::cdn::{
    BuildKind, BuildRecord, BuildState, Builds, Disk, RealDisk, UploadOptions, Uploader, Writer,
};
use memora::content::Catalog;
use memora::objstore::Bucket;
use parking_lot::Mutex;
use reqwest::Method;
use serde_json::{Value, json};

use crate::util::app::TestApp;
use crate::util::fixture;
use crate::util::s3::{Proxy, Recorder, S3Server, assert_manifest_last, skip};

const PREFIX: &str = "site";

fn put_subject(c: &Catalog, doc: &Value) -> Catalog {
    let r = c
        .prepare_subject(doc.to_string().as_bytes())
        .unwrap_or_else(|p| panic!("{p:?}"));
    c.with_subject(r)
}

fn catalog() -> Catalog {
    let mut c = Catalog::default();
    c = put_subject(&c, &fixture("basics.subject.json"));
    c = put_subject(&c, &fixture("chain.subject.json"));
    let r = c
        .prepare_plan(fixture("school.plan.json").to_string().as_bytes())
        .unwrap_or_else(|p| panic!("{p:?}"));
    c.with_plan(r)
}

/// `chain` with its first lesson renamed and the last lesson of its first topic gone.
fn edited(c: &Catalog) -> Catalog {
    let mut doc = fixture("chain.subject.json");
    let lessons = doc["tracks"][0]["units"][0]["topics"][0]["lessons"]
        .as_array_mut()
        .expect("lessons");
    lessons[0]["title"] = json!("Renamed first lesson");
    let gone = lessons.pop().expect("a lesson");
    assert_eq!(gone["id"], "ch-l-050");
    put_subject(c, &doc)
}

fn options() -> UploadOptions {
    UploadOptions {
        concurrency: 8,
        cache_control: "public, max-age=300".into(),
        manifest_cache_control: "no-cache".into(),
    }
}

/// The files an upload must mirror: everything below plans/, lessons/ and assets/
/// except the local `manifest.prev.json`.
fn local_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, rel: &str, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(root.join(rel)) else {
            return;
        };
        for e in entries {
            let e = e.expect("entry");
            let child = format!("{rel}/{}", e.file_name().to_string_lossy());
            if e.file_type().expect("type").is_dir() {
                walk(root, &child, out);
            } else if !child.ends_with("manifest.prev.json") {
                out.insert(child, std::fs::read(e.path()).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    for dir in ["plans", "lessons", "assets"] {
        walk(root, dir, &mut out);
    }
    out
}

/// The bucket holds exactly the local files below the prefix, byte for byte, each with
/// the headers content.md asks for.
async fn assert_mirrors(s3: &S3Server, bucket: &str, root: &Path) {
    let local = local_files(root);
    assert!(local.len() > 10, "a real build has many files");
    let unprefixed = Bucket::open(&S3Server::config(&s3.url, bucket, "")).expect("bucket");
    let remote: Vec<String> = unprefixed
        .list("")
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.key)
        .collect();
    let expected: Vec<String> = local.keys().map(|k| format!("{PREFIX}/{k}")).collect();
    assert_eq!(
        remote, expected,
        "bucket keys = local files under the prefix"
    );
    for (rel, bytes) in &local {
        let (status, ct, cc, body) = s3.get(bucket, &format!("{PREFIX}/{rel}")).await;
        assert_eq!(status, 200, "{rel}");
        assert_eq!(body.as_ref(), bytes.as_slice(), "{rel}: body differs");
        if rel.ends_with(".json") {
            assert_eq!(ct, "application/json; charset=utf-8", "{rel}");
        }
        let cache = if rel.ends_with("/manifest.json") {
            "no-cache"
        } else {
            "public, max-age=300"
        };
        assert_eq!(cc, cache, "{rel}");
    }
}

/// A build service over `root` uploading through `store` (a [`Recorder`] around the
/// real bucket), with a clock the test moves.
fn service(root: &Path, bucket: Bucket) -> Arc<Builds> {
    let uploader = Uploader::new(bucket, root, options()).expect("uploader");
    let writer = Writer::new(root, Arc::new(RealDisk), 0.0);
    Arc::new(Builds::new(writer, Duration::ZERO).with_uploader(uploader))
}

async fn run_now(builds: &Arc<Builds>, c: &Catalog, clock: &Arc<Mutex<Timestamp>>) -> BuildRecord {
    let (builds, c, clock) = (builds.clone(), c.clone(), clock.clone());
    tokio::task::spawn_blocking(move || builds.run_now(&c, "school", "test", &|| *clock.lock()))
        .await
        .expect("join")
}

async fn run_due(
    builds: &Arc<Builds>,
    c: &Catalog,
    clock: &Arc<Mutex<Timestamp>>,
) -> Vec<BuildRecord> {
    let (builds, c, clock) = (builds.clone(), c.clone(), clock.clone());
    tokio::task::spawn_blocking(move || builds.run_due(&c, &|| *clock.lock()))
        .await
        .expect("join")
}

fn start_clock() -> Arc<Mutex<Timestamp>> {
    Arc::new(Mutex::new("2026-11-21T09:00:00Z".parse().expect("ts")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_upload_changed_files_manifest_last_then_deletions() {
    let Some(s3) = S3Server::start().await else {
        return skip("builds_upload_changed_files_manifest_last_then_deletions");
    };
    let bucket_name = s3.new_bucket().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("cdn");
    let real = Bucket::open(&S3Server::config(&s3.url, &bucket_name, PREFIX)).expect("bucket");
    let recorder = Arc::new(Recorder::new(real.store().clone()));
    let builds = service(&root, Bucket::from_store(recorder.clone(), ""));
    let clock = start_clock();

    // First build: the first upload is a full reconciliation of an empty bucket.
    let c1 = catalog();
    let first = run_now(&builds, &c1, &clock).await;
    assert_eq!(first.state, BuildState::Done, "{first:?}");
    let up = first.upload.clone().expect("upload report");
    assert!(up.full_sync);
    assert_eq!(up.uploaded, local_files(&root).len());
    assert_eq!(up.deleted, 0);
    let (puts, _) = assert_manifest_last(&recorder.take());
    assert_eq!(puts.len(), up.uploaded);
    assert!(!puts.iter().any(|k| k.contains("manifest.prev")));
    assert_mirrors(&s3, &bucket_name, &root).await;

    // A rename and a removed lesson: only what the build wrote goes up, the manifest
    // after the files, and the vanished lesson is deleted after the manifest.
    let c2 = edited(&c1);
    *clock.lock() += SignedDuration::from_secs(5);
    let second = run_now(&builds, &c2, &clock).await;
    assert_eq!(second.state, BuildState::Done, "{second:?}");
    let write = second.result.clone().expect("report").write;
    let up = second.upload.clone().expect("upload report");
    assert!(!up.full_sync);
    assert_eq!(
        up.uploaded, write.written,
        "every written file, nothing else"
    );
    assert_eq!(up.deleted, write.deleted);
    let (puts, deletes) = assert_manifest_last(&recorder.take());
    assert!(
        puts.contains(&"lessons/ch-l-001.json".to_owned()),
        "{puts:?}"
    );
    assert!(
        puts.contains(&"plans/school/manifest.json".to_owned()),
        "{puts:?}"
    );
    assert!(
        !puts.contains(&"lessons/ch-l-002.json".to_owned()),
        "unchanged"
    );
    assert_eq!(deletes, vec!["lessons/ch-l-050.json".to_owned()]);
    let (status, ..) = s3
        .get(&bucket_name, &format!("{PREFIX}/lessons/ch-l-050.json"))
        .await;
    assert_eq!(status, 404);
    assert_mirrors(&s3, &bucket_name, &root).await;

    // An asset stored beside the build is uploaded by an upload-only job with its own
    // media type, and deleted remotely once deleted locally.
    let asset = root.join("assets/img/logo.png");
    let png = b"\x89PNG\r\n\x1a\nnot really a png".to_vec();
    RealDisk
        .write_batch(&[(asset.clone(), png.as_slice())])
        .expect("asset");
    builds.files_changed(["assets/img/logo.png".to_owned()], "asset", *clock.lock());
    let ran = run_due(&builds, &c2, &clock).await;
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert_eq!(ran[0].kind, BuildKind::Upload);
    assert_eq!(ran[0].state, BuildState::Done, "{:?}", ran[0]);
    assert_eq!(ran[0].upload.as_ref().map(|u| u.uploaded), Some(1));
    let (status, ct, cc, body) = s3
        .get(&bucket_name, &format!("{PREFIX}/assets/img/logo.png"))
        .await;
    assert_eq!(
        (status, ct.as_str(), cc.as_str()),
        (200, "image/png", "public, max-age=300")
    );
    assert_eq!(body.as_ref(), png.as_slice());
    RealDisk.remove(&asset).expect("remove asset");
    builds.files_changed(["assets/img/logo.png".to_owned()], "asset", *clock.lock());
    let ran = run_due(&builds, &c2, &clock).await;
    assert_eq!(ran[0].upload.as_ref().map(|u| u.deleted), Some(1));
    let (status, ..) = s3
        .get(&bucket_name, &format!("{PREFIX}/assets/img/logo.png"))
        .await;
    assert_eq!(status, 404);
    assert_mirrors(&s3, &bucket_name, &root).await;

    // A restarted server reconciles: identical files (MD5 = ETag) are not put again,
    // a stray object below an uploaded folder is deleted, a local file missing remotely
    // is put.
    real.put(
        "lessons/stray.json",
        bytes::Bytes::from_static(b"{}"),
        &memora::objstore::Headers {
            content_type: "application/json".into(),
            cache_control: None,
        },
    )
    .await
    .expect("stray object");
    real.delete("lessons/ch-l-002.json").await.expect("delete");
    let restarted = Uploader::new(real.clone(), &root, options()).expect("uploader");
    assert!(restarted.needs_full_sync());
    let report = tokio::task::spawn_blocking(move || restarted.flush_blocking())
        .await
        .expect("join")
        .expect("reconcile");
    assert!(report.full_sync);
    assert_eq!((report.uploaded, report.deleted), (1, 1), "{report:?}");
    assert_mirrors(&s3, &bucket_name, &root).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upload_is_retried_after_the_backoff_and_catches_up() {
    let Some(s3) = S3Server::start().await else {
        return skip("a_failed_upload_is_retried_after_the_backoff_and_catches_up");
    };
    let bucket_name = s3.new_bucket().await;
    let proxy = Proxy::start(&s3.url).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("cdn");
    let bucket = Bucket::open(&S3Server::config(&proxy.url, &bucket_name, PREFIX)).expect("bucket");
    let builds = service(&root, bucket);
    let clock = start_clock();
    let c1 = catalog();
    assert_eq!(run_now(&builds, &c1, &clock).await.state, BuildState::Done);
    let manifest_key = format!("{PREFIX}/plans/school/manifest.json");
    let (_, _, _, old_manifest) = s3.get(&bucket_name, &manifest_key).await;

    // The server is unreachable: the build is written locally, its upload fails, and
    // a retry is queued 30 s later. The bucket still serves the previous manifest.
    proxy.set_up(false);
    let c2 = edited(&c1);
    let failed = run_now(&builds, &c2, &clock).await;
    assert_eq!(failed.state, BuildState::Failed, "{failed:?}");
    assert!(
        failed
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("upload:")),
        "{failed:?}"
    );
    assert!(failed.result.as_ref().is_some_and(|r| r.outcome == "built"));
    let view = builds.view();
    assert_eq!(view.queue.len(), 1, "{view:?}");
    let retry = &view.queue[0];
    assert_eq!((retry.attempt, retry.trigger.as_str()), (2, "retry"));
    assert_eq!(
        Some(retry.due_at),
        failed
            .finished_at
            .map(|t| t + SignedDuration::from_secs(30))
    );
    let summary = builds.summary();
    assert_eq!((summary.retrying, summary.dead), (1, 0));
    let pending = summary.upload_pending;
    assert!(pending > 0, "{summary:?}");
    let (_, _, _, still) = s3.get(&bucket_name, &manifest_key).await;
    assert_eq!(still, old_manifest);

    // Not before the backoff has elapsed…
    *clock.lock() = failed.finished_at.expect("finished") + SignedDuration::from_secs(29);
    assert!(run_due(&builds, &c2, &clock).await.is_empty());
    // …then, with the server back, the retry has nothing to rebuild and uploads what
    // the failed attempt left.
    proxy.set_up(true);
    *clock.lock() += SignedDuration::from_secs(1);
    let ran = run_due(&builds, &c2, &clock).await;
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert_eq!(ran[0].state, BuildState::Done, "{:?}", ran[0]);
    assert_eq!(ran[0].result.as_ref().map(|r| r.outcome), Some("unchanged"));
    let up = ran[0].upload.clone().expect("upload");
    assert_eq!(up.uploaded + up.deleted, pending);
    assert_eq!(builds.summary().upload_pending, 0);
    assert_mirrors(&s3, &bucket_name, &root).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_uploads_builds_and_assets_configured_from_the_environment() {
    let Some(s3) = S3Server::start().await else {
        return skip("the_server_uploads_builds_and_assets_configured_from_the_environment");
    };
    let bucket_name = s3.new_bucket().await;
    let app = TestApp::start_with(&[
        ("MEMORA_CDN__S3__ENDPOINT", &s3.url),
        ("MEMORA_CDN__S3__BUCKET", &bucket_name),
        ("MEMORA_CDN__S3__PREFIX", PREFIX),
        ("MEMORA_CDN__S3__ACCESS_KEY_ID", "testing"),
        ("MEMORA_CDN__S3__SECRET_ACCESS_KEY", "testing"),
        ("MEMORA_CONTENT__MIN_FREE_DISK_PERCENT", "0"),
    ])
    .await;
    let admin = app.admin().await;
    app.school("student@test.memora", "UTC").await;
    let (status, body) = app
        .api
        .call(
            Method::POST,
            "/api/v1/admin/plans/school/build",
            Some(&admin),
            None,
        )
        .await
        .expect("build");
    assert_eq!(status, 202);
    assert_eq!(body["build"]["state"], "done", "{body}");
    assert!(
        body["build"]["upload"]["uploaded"].as_u64() > Some(10),
        "{body}"
    );
    let (status, _, cc, _) = s3
        .get(
            &bucket_name,
            &format!("{PREFIX}/plans/school/manifest.json"),
        )
        .await;
    assert_eq!((status, cc.as_str()), (200, "no-cache"));

    // An asset stored through the API is uploaded after the debounce by the
    // background runner (the clock is fake; the runner looks every second).
    let url = format!("{}/api/v1/admin/assets/img/logo.png", app.api.base);
    let res = reqwest::Client::new()
        .put(url)
        .bearer_auth(&admin.token)
        .header("X-Device-ID", &admin.device_id)
        .body(b"\x89PNG fake".to_vec())
        .send()
        .await
        .expect("put asset");
    assert_eq!(res.status().as_u16(), 201);
    app.clock.advance(std::time::Duration::from_secs(3));
    let key = format!("{PREFIX}/assets/img/logo.png");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, ct, _, body) = s3.get(&bucket_name, &key).await;
        if status == 200 {
            assert_eq!(ct, "image/png");
            assert_eq!(body.as_ref(), b"\x89PNG fake");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "asset never uploaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, view) = app
        .api
        .call(Method::GET, "/api/v1/admin/builds", Some(&admin), None)
        .await
        .expect("builds");
    let history = view["history"].as_array().expect("history");
    assert!(
        history
            .iter()
            .any(|r| r["kind"] == "upload" && r["state"] == "done" && r.get("plan_id").is_none()),
        "{view}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_puts_bytes_and_files_with_headers_lists_and_deletes() {
    use memora::objstore::Headers;
    let Some(s3) = S3Server::start().await else {
        return skip("a_bucket_puts_bytes_and_files_with_headers_lists_and_deletes");
    };
    let name = s3.new_bucket().await;
    let bucket = Bucket::open(&S3Server::config(&s3.url, &name, "/backups/")).expect("bucket");
    let headers = |ct: &str| Headers {
        content_type: ct.to_owned(),
        cache_control: Some("private, max-age=60".into()),
    };
    bucket
        .put(
            "notes/a.txt",
            bytes::Bytes::from_static(b"hello"),
            &headers("text/plain"),
        )
        .await
        .expect("put bytes");
    let dir = tempfile::tempdir().expect("tempdir");
    let small = dir.path().join("small.bin");
    std::fs::write(&small, b"small file").expect("write");
    // Above the single-PUT limit (16 MiB): streamed as a multipart upload.
    let large = dir.path().join("large.bin");
    let big: Vec<u8> = (0..17 * 1024 * 1024 + 123)
        .map(|i| (i % 251) as u8)
        .collect();
    std::fs::write(&large, &big).expect("write");
    let sent = bucket
        .put_file(
            "snap/small.bin",
            &small,
            &headers("application/octet-stream"),
        )
        .await
        .expect("small file");
    assert_eq!(sent, 10);
    let sent = bucket
        .put_file("snap/large.bin", &large, &headers("application/zstd"))
        .await
        .expect("large file");
    assert_eq!(sent, big.len() as u64);

    let mut listed: Vec<(String, u64)> = bucket
        .list("snap")
        .await
        .expect("list")
        .into_iter()
        .map(|r| (r.key, r.size))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec![
            ("snap/large.bin".to_owned(), big.len() as u64),
            ("snap/small.bin".to_owned(), 10)
        ]
    );
    assert_eq!(bucket.list("").await.expect("list all").len(), 3);
    let (status, ct, cc, body) = s3.get(&name, "backups/snap/large.bin").await;
    assert_eq!(
        (status, ct.as_str(), cc.as_str()),
        (200, "application/zstd", "private, max-age=60")
    );
    assert!(body.as_ref() == big.as_slice(), "large body differs");
    assert_eq!(
        bucket.get("notes/a.txt").await.expect("get").as_ref(),
        b"hello"
    );
    let (_, ct, ..) = s3.get(&name, "backups/notes/a.txt").await;
    assert_eq!(ct, "text/plain");

    bucket.delete("snap/small.bin").await.expect("delete");
    bucket
        .delete("snap/small.bin")
        .await
        .expect("deleting a missing object is fine");
    assert_eq!(bucket.list("snap").await.expect("list").len(), 1);
    let err = bucket
        .put_file("snap/none.bin", &dir.path().join("none"), &headers("x/y"))
        .await
        .expect_err("missing file");
    assert!(
        matches!(err, memora::objstore::ObjError::Io { .. }),
        "{err}"
    );
}
