//! Observability through HTTP (operations.md "Observability", api.md): `/metrics` in
//! Prometheus text format with every series after a small workload, `GET
//! /api/v1/admin/engine` with the figures of that workload, and `/readyz` with its
//! components, including a dead content build as a warning and a disk under
//! `storage.min_free_bytes` as degraded (200, not 503).
//!
//! The metrics recorder is process-wide and tests run in parallel, so counters are
//! compared as "grew by at least what this test did", and the tests that scrape take
//! one lock (the engine gauges are set from the scraped engine right before rendering).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::util::api::{Api, CallError, Session};
use crate::util::app::{PASSWORD, TestApp};
use crate::util::{device_id_for, fixture};

static SCRAPE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One sample line: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A strict parser of the Prometheus text format (0.0.4) as far as the exporter uses
/// it: `# HELP`/`# TYPE` lines and `name{label="value",...} value` samples. Panics on
/// anything else, naming the line.
fn parse(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
    let mut samples = Vec::new();
    let mut types = BTreeMap::new();
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(valid_name(name), "bad name in {line:?}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "bad type in {line:?}"
            );
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment {line:?}");
        let (series, value) = line.rsplit_once(' ').expect("series value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = BTreeMap::new();
                let mut rest = body;
                while !rest.is_empty() {
                    let (key, after) = rest.split_once("=\"").expect("label=\"");
                    assert!(valid_name(key), "bad label name in {line:?}");
                    // Values here never contain escaped quotes.
                    let (value, after) = after.split_once('"').expect("closing quote");
                    labels.insert(key.to_owned(), value.to_owned());
                    rest = after.strip_prefix(',').unwrap_or(after);
                }
                (name, labels)
            }
        };
        assert!(valid_name(name), "bad name in {line:?}");
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    (samples, types)
}

async fn scrape(api: &Api) -> (Vec<Sample>, BTreeMap<String, String>) {
    let resp = reqwest::get(format!("{}/metrics", api.base))
        .await
        .expect("GET /metrics");
    assert_eq!(resp.status(), 200);
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    parse(&resp.text().await.expect("body"))
}

/// The value of the sample `name` whose labels include `labels` (0 when absent).
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

async fn call(
    api: &Api,
    method: Method,
    path: &str,
    s: &Session,
    body: Option<Value>,
) -> (u16, Value) {
    match api.call(method, path, Some(s), body.as_ref()).await {
        Ok((status, v)) => (status, v),
        Err(CallError::Status { status, code, .. }) => (status, json!({ "code": code })),
        Err(e) => panic!("{e}"),
    }
}

/// A season, a student with one completed lesson (one card) and a few reads.
async fn workload(app: &TestApp) -> (Session, Session) {
    let student = app.school("observe@test.memora", "UTC").await;
    let admin = app.admin().await;
    let season = json!({"id": "2026", "title": "Season 2026", "start_date": "2026-09-01",
                        "end_date": "2027-06-30", "is_active": true});
    let (status, v) = call(
        &app.api,
        Method::POST,
        "/api/v1/admin/seasons",
        &admin,
        Some(season),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let body = json!({"hearts": 3, "answers": [{"question_id": "bas-q-001", "rating": 3}]});
    let (status, v) = call(
        &app.api,
        Method::POST,
        "/api/v1/lessons/bas-l-001/complete",
        &student,
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    (student, admin)
}

#[tokio::test]
async fn metrics_expose_every_series_after_a_workload() {
    let app = TestApp::start_with(&[("MEMORA_RATE_LIMITS__READS_PER_MINUTE", "2")]).await;
    let (student, admin) = workload(&app).await;
    let _scrape = SCRAPE.lock().await;
    let (before, _) = scrape(&app.api).await;

    // Three progress reads: two allowed, the third refused by the reads limit.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, _) = call(
            &app.api,
            Method::GET,
            "/api/v1/subjects/bas/progress",
            &student,
            None,
        )
        .await;
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 429]);
    let (status, _) = call(
        &app.api,
        Method::POST,
        "/api/v1/admin/checkpoint",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(app.api.status_of("/no/such/route").await, 404);

    let (after, types) = scrape(&app.api).await;
    let route = [
        ("route", "/api/v1/subjects/{subject_id}/progress"),
        ("method", "GET"),
    ];
    let ok = [route[0], route[1], ("status", "2xx")];
    let limited = [route[0], route[1], ("status", "4xx")];
    let grew = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert!(grew("memora_http_requests_total", &ok) >= 2.0);
    assert!(grew("memora_http_requests_total", &limited) >= 1.0);
    assert!(grew("memora_http_request_duration_seconds_count", &ok) >= 2.0);
    assert!(
        grew(
            "memora_http_requests_total",
            &[("route", "unmatched"), ("status", "4xx")]
        ) >= 1.0,
        "the fallback is counted under one label"
    );
    assert!(
        after
            .iter()
            .all(|s| s.labels.get("route").is_none_or(|r| !r.contains("no/such"))),
        "raw paths never become labels"
    );
    assert!(grew("memora_rate_limit_rejections_total", &[("limit", "reads")]) >= 1.0);
    assert!(
        grew(
            "memora_checkpoints_total",
            &[("stream", "all"), ("result", "ok")]
        ) >= 1.0
    );
    assert!(
        grew(
            "memora_checkpoint_duration_seconds_count",
            &[("stream", "all")]
        ) >= 1.0
    );
    assert!(value(&after, "memora_checkpoint_rows_sum", &[("stream", "all")]) >= 1.0);
    assert!(value(&after, "memora_checkpoint_bytes_sum", &[("stream", "all")]) >= 1.0);
    assert!(value(&after, "memora_events_total", &[]) >= 1.0);
    assert!(value(&after, "memora_journal_fsync_duration_seconds_count", &[]) >= 1.0);
    assert!(value(&after, "memora_journal_batch_records_count", &[]) >= 1.0);

    // Gauges describe this engine: the same figures as its engine report.
    let (_, report) = call(&app.api, Method::GET, "/api/v1/admin/engine", &admin, None).await;
    let students = report["students_in_memory"].as_f64().expect("students");
    assert!(students >= 1.0);
    assert_eq!(value(&after, "memora_students_in_memory", &[]), students);
    assert_eq!(
        value(&after, "memora_cards_in_memory", &[("season", "2026")]),
        1.0
    );
    assert!(value(&after, "memora_memory_estimate_bytes", &[]) > 0.0);
    assert!(value(&after, "memora_journal_bytes", &[]) > 0.0);
    assert!(value(&after, "memora_journal_segments", &[]) >= 1.0);
    assert!(value(&after, "memora_redb_file_bytes", &[]) > 0.0);
    assert_eq!(value(&after, "memora_degraded", &[]), 0.0);
    assert_eq!(value(&after, "memora_ready", &[]), 1.0);
    assert_eq!(value(&after, "memora_mirror_enabled", &[]), 0.0);
    for name in [
        "memora_mirror_lag_seconds",
        "memora_mirror_lag_rows",
        "memora_mirror_unreachable",
    ] {
        assert_eq!(value(&after, name, &[]), 0.0, "{name}");
        assert_eq!(types.get(name).map(String::as_str), Some("gauge"), "{name}");
    }
    for state in ["queued", "running", "retrying", "dead"] {
        assert!(
            after.iter().any(|s| s.name == "memora_content_builds"
                && s.labels.get("state").map(String::as_str) == Some(state)),
            "build gauge {state}"
        );
    }

    // Declared types, and histograms that add up.
    for (name, kind) in [
        ("memora_http_requests_total", "counter"),
        ("memora_http_request_duration_seconds", "histogram"),
        ("memora_journal_fsync_duration_seconds", "histogram"),
        ("memora_journal_batch_records", "histogram"),
        ("memora_events_total", "counter"),
        ("memora_checkpoint_duration_seconds", "histogram"),
        ("memora_checkpoint_rows", "histogram"),
        ("memora_checkpoint_bytes", "histogram"),
        ("memora_students_in_memory", "gauge"),
        ("memora_cards_in_memory", "gauge"),
        ("memora_memory_estimate_bytes", "gauge"),
        ("memora_degraded", "gauge"),
        ("memora_rate_limit_rejections_total", "counter"),
        ("memora_content_builds", "gauge"),
        ("memora_degraded_reason", "gauge"),
        ("memora_mirror_lag_seconds", "gauge"),
        ("memora_mirror_lag_rows", "gauge"),
        ("memora_content_builds_total", "counter"),
        ("memora_reconcile_runs_total", "counter"),
        ("memora_reconcile_discrepancies_total", "counter"),
        ("memora_reconcile_discrepancy_rate", "gauge"),
    ] {
        assert_eq!(types.get(name).map(String::as_str), Some(kind), "{name}");
    }
    let inf = value(
        &after,
        "memora_journal_fsync_duration_seconds_bucket",
        &[("le", "+Inf")],
    );
    assert_eq!(
        inf,
        value(&after, "memora_journal_fsync_duration_seconds_count", &[])
    );
    let mut buckets: Vec<(f64, f64)> = after
        .iter()
        .filter(|s| s.name == "memora_journal_fsync_duration_seconds_bucket")
        .map(|s| {
            let le = s.labels["le"].as_str();
            (
                if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().expect("le")
                },
                s.value,
            )
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() > 5);
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "cumulative buckets"
    );
}

#[tokio::test]
async fn engine_report_shows_the_workload() {
    let app = TestApp::start().await;
    let (student, admin) = workload(&app).await;
    let (status, _) = call(
        &app.api,
        Method::GET,
        "/api/v1/admin/engine",
        &student,
        None,
    )
    .await;
    assert_eq!(status, 403, "staff only");
    assert_eq!(app.api.status_of("/api/v1/admin/engine").await, 401);

    let (status, before) = call(&app.api, Method::GET, "/api/v1/admin/engine", &admin, None).await;
    assert_eq!(status, 200, "{before}");
    assert!(before["checkpoints"]["progress"].is_null(), "{before}");
    let (status, checkpoint) = call(
        &app.api,
        Method::POST,
        "/api/v1/admin/checkpoint",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (_, report) = call(&app.api, Method::GET, "/api/v1/admin/engine", &admin, None).await;

    assert_eq!(report["ready"], true);
    assert_eq!(report["degraded"]["degraded"], false);
    assert_eq!(report["degraded"]["reasons"], json!([]));
    // A student's state is loaded on first access: one more student reading progress
    // is one more in memory.
    let loaded = report["students_in_memory"].as_u64().expect("students");
    assert!(loaded >= 1, "{report}");
    app.api
        .create_student(&admin, "second@test.memora", PASSWORD, "school")
        .await
        .expect("second student");
    let second = app
        .api
        .login(
            "second@test.memora",
            PASSWORD,
            &device_id_for("second@test.memora"),
        )
        .await
        .expect("login");
    app.api.progress(&second, "bas").await.expect("progress");
    let (_, later) = call(&app.api, Method::GET, "/api/v1/admin/engine", &admin, None).await;
    assert_eq!(later["students_in_memory"], loaded + 1, "{later}");
    assert_eq!(report["cards_by_season"], json!({"2026": 1}));
    let memory = &report["memory"];
    assert_eq!(memory["cards"], 1);
    assert_eq!(memory["subject_states"], 1);
    assert!(
        memory["estimated_bytes"].as_u64().expect("bytes") > 100,
        "{memory}"
    );
    assert!(
        memory["estimate_method"]
            .as_str()
            .expect("method")
            .contains("bitmap")
    );

    let journal = &report["journal"];
    assert_eq!(journal["healthy"], true);
    assert_eq!(journal["durability"], "strict");
    assert!(journal["bytes"].as_u64().expect("bytes") > 0);
    assert!(journal["segments"].as_u64().expect("segments") >= 1);
    // Players, sessions, content, season, completion: at least five events.
    assert!(
        journal["records"].as_u64().expect("records") >= 5,
        "{journal}"
    );
    let fsync = &journal["fsync_recent"];
    assert!(fsync["samples"].as_u64().expect("samples") >= 1);
    assert!(
        fsync["p50_micros"].as_u64().expect("p50") <= fsync["p99_micros"].as_u64().expect("p99")
    );

    // The checkpoint just written is the last of both streams.
    let checkpoints = &report["checkpoints"];
    for stream in ["progress", "wallets"] {
        assert_eq!(
            checkpoints[stream]["seq"], checkpoint["seq"],
            "{checkpoints}"
        );
        assert_eq!(checkpoints[stream]["rows"], checkpoint["rows"]);
    }
    assert!(checkpoint["rows"].as_u64().expect("rows") >= 3);
    assert!(checkpoint["bytes"].as_u64().expect("bytes") > 0);
    assert_eq!(checkpoints["failures"], 0);
    assert_eq!(checkpoints["progress_interval_secs"], 30);

    assert!(report["mirror"].is_null());
    assert!(report["reconcile"].is_null(), "no reconciliation ran");
    assert_eq!(report["builds"]["dead"], 0);
    assert!(report["jobs"].is_array());
    assert!(report["redb"]["file_bytes"].as_u64().expect("redb") > 0);
    assert!(report["tasks"].is_object());
}

#[tokio::test]
async fn periodic_tasks_record_their_runs() {
    // Checkpoints every second; the report shows the loop's runs.
    let app = TestApp::start_with(&[
        ("MEMORA_CHECKPOINT__PROGRESS_INTERVAL_SECS", "1"),
        ("MEMORA_CHECKPOINT__WALLET_INTERVAL_SECS", "1"),
    ])
    .await;
    let admin = app.admin().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, report) = call(&app.api, Method::GET, "/api/v1/admin/engine", &admin, None).await;
        let tasks = &report["tasks"];
        let done = ["checkpoint_progress", "checkpoint_wallets"]
            .iter()
            .all(|t| tasks[*t]["runs"].as_u64().unwrap_or(0) >= 1);
        if done {
            let run = &tasks["checkpoint_progress"];
            assert_eq!(run["ok"], true, "{run}");
            assert!(
                run["result"].as_str().expect("result").contains("rows"),
                "{run}"
            );
            assert!(run["last_run_at"].as_str().expect("at").ends_with('Z'));
            assert!(!report["checkpoints"]["progress"].is_null());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no task runs: {report}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn readyz_lists_components_and_a_dead_build_is_a_warning() {
    // Builds are refused below 99.99% free disk: every build fails, and after its
    // retries (30 s … 15 min of the fake clock) it is dead.
    let app = TestApp::start_with(&[
        ("MEMORA_CONTENT__MIN_FREE_DISK_PERCENT", "99.99"),
        ("MEMORA_CONTENT__BUILD_DEBOUNCE_MS", "0"),
    ])
    .await;
    let resp = reqwest::get(format!("{}/readyz", app.api.base))
        .await
        .expect("readyz");
    assert_eq!(resp.status(), 200);
    let ready: Value = resp.json().await.expect("json");
    assert_eq!(ready["status"], "ready");
    let components = &ready["components"];
    assert_eq!(components["journal"]["status"], "ok");
    assert_eq!(components["redb"]["status"], "ok");
    assert_eq!(components["mirror"]["status"], "disabled");
    assert_eq!(components["content_build"]["status"], "ok");
    assert_eq!(components["disk"]["status"], "warning", "{ready}");
    assert_eq!(components["disk"]["figures"]["threshold_percent"], 99.99);

    let admin = app.admin().await;
    for name in ["basics.subject.json", "chain.subject.json"] {
        app.api
            .put_subject(&admin, &fixture(name))
            .await
            .expect("subject");
    }
    app.api
        .put_plan(&admin, &fixture("school.plan.json"))
        .await
        .expect("plan");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, builds) = call(&app.api, Method::GET, "/api/v1/admin/builds", &admin, None).await;
        if !builds["dead"].as_array().expect("dead").is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dead build: {builds}"
        );
        // Past any retry's backoff; the build loop wakes at least every second.
        app.clock.advance(Duration::from_secs(901));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let resp = reqwest::get(format!("{}/readyz", app.api.base))
        .await
        .expect("readyz");
    assert_eq!(
        resp.status(),
        200,
        "a dead build never makes the server unready"
    );
    let ready: Value = resp.json().await.expect("json");
    let build = &ready["components"]["content_build"];
    assert_eq!(build["status"], "warning", "{ready}");
    assert_eq!(build["figures"]["dead"], 1);
    let warnings = ready["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.contains("dead build") && w.contains("school"))),
        "{ready}"
    );

    let (_, report) = call(&app.api, Method::GET, "/api/v1/admin/engine", &admin, None).await;
    assert_eq!(report["builds"]["dead"], 1);
    let run = &report["tasks"]["content_builds"];
    assert_eq!(run["ok"], false, "{report}");
    assert!(run["failures"].as_u64().expect("failures") >= 1);
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let app = TestApp::start_with(&[("MEMORA_METRICS__ENABLED", "false")]).await;
    assert_eq!(app.api.status_of("/metrics").await, 404);
    // The engine report and /readyz do not depend on it.
    let admin = app.admin().await;
    let (status, _) = call(&app.api, Method::GET, "/api/v1/admin/engine", &admin, None).await;
    assert_eq!(status, 200);
    assert_eq!(app.api.status_of("/readyz").await, 200);
}

#[tokio::test]
async fn low_disk_is_degraded_in_readyz_metrics_and_the_engine_report() {
    let mut app = TestApp::start().await;
    let admin = app.admin().await;
    // Restart with a threshold no disk meets: degraded from the start.
    app.set_env("MEMORA_STORAGE__MIN_FREE_BYTES", "1000000000000000000");
    app.restart().await;

    let resp = reqwest::get(format!("{}/readyz", app.api.base))
        .await
        .expect("readyz");
    assert_eq!(resp.status(), 200, "degraded is not unready");
    let ready: Value = resp.json().await.expect("json");
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["components"]["disk"]["status"], "failing", "{ready}");
    assert_eq!(ready["components"]["journal"]["status"], "ok");
    assert_eq!(ready["degraded"]["reasons"], json!(["low_disk"]));
    assert!(ready["builds"]["queued"].is_u64(), "{ready}");
    assert!(
        ready["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("min_free_bytes"))),
        "{ready}"
    );

    let (status, report) = call(&app.api, Method::GET, "/api/v1/admin/engine", &admin, None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["degraded"]["degraded"], true);
    assert_eq!(report["degraded"]["reasons"], json!(["low_disk"]));

    let _scrape = SCRAPE.lock().await;
    let (samples, types) = scrape(&app.api).await;
    assert_eq!(value(&samples, "memora_degraded", &[]), 1.0);
    assert_eq!(
        value(
            &samples,
            "memora_degraded_reason",
            &[("reason", "low_disk")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "memora_degraded_reason",
            &[("reason", "journal_failing")]
        ),
        0.0
    );
    assert_eq!(
        types.get("memora_degraded_reason").map(String::as_str),
        Some("gauge")
    );
}
