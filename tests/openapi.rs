//! The OpenAPI document against the router (api.md: "a test fails if the document
//! drifts from the routes"): every documented (method, path) is served; no route is
//! registered outside `utoipa_axum::routes!` except an explicit allow-list (so a route
//! cannot exist undocumented); the document is complete (security, parameters, problem
//! answers with stable codes, valid schemas); real answers fit their documented
//! schemas; and `/docs` is served from the binary without loading anything from the
//! internet.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use memora::http::openapi::{self as doc, Access};
use memora::http::{NO_ROUTE, docs};
use reqwest::Method;
use serde_json::{Value, json};

use crate::util::api::Session;
use crate::util::app::TestApp;
use crate::util::openapi::{Operation, document, operations, template_params};
use crate::util::{device_id_for, fixture};

/// The plain `.route(` registrations allowed outside the documented router, by their
/// first argument: the recovering router's health routes, the metrics endpoint, the
/// document and reference page themselves, and the benchmark-only baseline route.
/// Anything else must be registered with `routes!` (see README "API reference").
const PLAIN_ROUTES: [&str; 8] = [
    "\"/healthz\"",
    "\"/readyz\"",
    "\"/metrics\"",
    "DOCUMENT_PATH",
    "PAGE_PATH",
    "SCRIPT_PATH",
    "LICENSE_PATH",
    "\"/api/v1/bench/subjects/{subject_id}/progress\"",
];

/// Router calls that add routes without documentation; none is allowed.
const UNDOCUMENTED_REGISTRATIONS: [&str; 4] = [
    ".route_service(",
    ".nest(",
    ".nest_service(",
    ".fallback_service(",
];

/// A plausible value for any path parameter (what is there does not matter to these
/// checks: no credentials are sent).
fn any_value(name: &str) -> String {
    match name {
        "path" => "img/logo-1.png".into(),
        "device_id" => "00000000-0000-4000-8000-000000000001".into(),
        other => format!("{other}-1"),
    }
}

/// Sends `method url` with an optional body and no credentials; `(status, body)`.
async fn send(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    body: Option<(String, Vec<u8>)>,
) -> (u16, String) {
    let mut req = http.request(method, url);
    if let Some((ct, bytes)) = body {
        req = req.header("content-type", ct).body(bytes);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// Whether an answer came from the router (no route, wrong method) rather than from a
/// handler or its extractors.
fn unrouted(status: u16, body: &str) -> bool {
    let fallback = status == 404
        && serde_json::from_str::<Value>(body)
            .is_ok_and(|v| v["detail"].as_str() == Some(NO_ROUTE));
    fallback || status == 405
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let app = TestApp::start().await;
    let doc = document(&app.api).await;
    let ops = operations(&doc);
    assert!(ops.len() >= 40, "only {} operations documented", ops.len());
    let http = reqwest::Client::new();
    let mut unserved = Vec::new();
    for op in &ops {
        let values: HashMap<String, String> = op
            .path_params
            .iter()
            .map(|p| (p.clone(), any_value(p)))
            .collect();
        let url = format!("{}{}", app.api.base, op.fill(&values));
        let (status, body) = send(&http, op.method.clone(), &url, op.placeholder_body()).await;
        if unrouted(status, &body) {
            unserved.push(format!("{} → {status} {body}", op.label()));
        }
    }
    assert!(
        unserved.is_empty(),
        "documented but not served by the router:\n{}",
        unserved.join("\n")
    );
    // The detector itself can fail: an unknown path and a wrong method are unrouted.
    let (status, body) = send(
        &http,
        Method::GET,
        &format!("{}/api/v1/nope", app.api.base),
        None,
    )
    .await;
    assert!(unrouted(status, &body), "{status} {body}");
    let (status, body) = send(
        &http,
        Method::DELETE,
        &format!("{}/api/v1/wallet", app.api.base),
        None,
    )
    .await;
    assert!(unrouted(status, &body), "{status} {body}");
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without `//` comments (line by line; good enough: no string literal in
/// `src/` holding a route call contains `//`).
fn code_only(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `.route(` call in `code` with its first argument (a literal or a name).
fn route_calls(code: &str) -> Vec<String> {
    code.match_indices(".route(")
        .map(|(i, m)| {
            let rest = code[i + m.len()..].trim_start();
            if let Some(lit) = rest.strip_prefix('"') {
                format!("\"{}\"", lit.split('"').next().unwrap_or_default())
            } else {
                rest.split(|c: char| c == ',' || c == ')' || c.is_whitespace())
                    .next()
                    .unwrap_or_default()
                    .rsplit("::")
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            }
        })
        .collect()
}

#[test]
fn routes_are_registered_only_with_their_documentation() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut violations = Vec::new();
    let mut allowed_seen = BTreeSet::new();
    for path in &files {
        let code = code_only(&fs::read_to_string(path).expect("read source"));
        let name = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string();
        for first in route_calls(&code) {
            if PLAIN_ROUTES.contains(&first.as_str()) {
                allowed_seen.insert(first);
            } else {
                violations.push(format!("{name}: `.route({first}, …)`"));
            }
        }
        for call in UNDOCUMENTED_REGISTRATIONS {
            if code.contains(call) {
                violations.push(format!("{name}: `{call}…)`"));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "routes registered without documentation — give the handler a \
         `#[utoipa::path(...)]` and register it with `OpenApiRouter::routes(routes!(handler))` \
         (README \"API reference\"):\n{}",
        violations.join("\n")
    );
    // The scan sees the calls it allows, so it is not looking at the wrong files.
    for expected in ["DOCUMENT_PATH", "PAGE_PATH", "\"/healthz\""] {
        assert!(
            allowed_seen.contains(expected),
            "no `.route({expected}` found"
        );
    }
    // And it recognizes a violation.
    assert_eq!(
        route_calls("r.route(\n    \"/api/v1/x\",\n get(h)).route(docs::PAGE_PATH, get(p))"),
        vec!["\"/api/v1/x\"".to_owned(), "PAGE_PATH".to_owned()]
    );
    assert_eq!(code_only("a // .route(\"/x\""), "a ");
}

/// The answers of `op` with a status ≥ 400.
fn error_statuses(op: &Operation) -> Vec<u16> {
    op.doc["responses"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(s, _)| s.parse::<u16>().ok())
        .filter(|s| *s >= 400)
        .collect()
}

#[tokio::test]
async fn the_document_is_complete_and_consistent() {
    let app = TestApp::start().await;
    let doc = document(&app.api).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes[doc::BEARER]["scheme"], "bearer");
    assert_eq!(schemes[doc::DEVICE]["name"], "X-Device-ID");
    let all_codes = doc::all_codes();
    let mut operation_ids = BTreeSet::new();
    let mut problems = Vec::new();
    for op in operations(&doc) {
        let label = op.label();
        let id = op.doc["operationId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if !operation_ids.insert(id.clone()) {
            problems.push(format!("{label}: operationId `{id}` is used twice"));
        }
        // Security follows the URL space: admin routes need a role, the rest of
        // /api/v1 a session, except login.
        let expected = if op.path.starts_with("/api/v1/admin/") {
            Some(Access::Staff)
        } else if op.path.starts_with("/api/v1/") && op.path != "/api/v1/auth/login" {
            Some(Access::Player)
        } else {
            None
        };
        if let Some(expected) = expected
            && op.access != expected
        {
            problems.push(format!(
                "{label}: documented as {:?}, expected {expected:?} (its `security(...)`)",
                op.access
            ));
        }
        if op.access == Access::Staff && op.roles.is_empty() {
            problems.push(format!("{label}: a staff route names no role"));
        }
        // Path parameters: each template name is declared, and nothing else.
        let declared: BTreeSet<String> = op.doc["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect();
        let template: BTreeSet<String> = template_params(&op.path).into_iter().collect();
        if declared != template {
            problems.push(format!(
                "{label}: path parameters {declared:?} ≠ template {template:?}"
            ));
        }
        // Answers: a success, and problem+json with stable codes for every error.
        let responses = op.doc["responses"].as_object().cloned().unwrap_or_default();
        if !responses.keys().any(|s| s.starts_with('2')) {
            problems.push(format!("{label}: no 2xx answer documented"));
        }
        for status in error_statuses(&op) {
            let content = &responses[&status.to_string()]["content"];
            if content.get("application/problem+json").is_none()
                && content.get("application/json").is_some()
            {
                // A documented non-problem answer (`/readyz` while recovering).
                continue;
            }
            let codes = op.codes(status);
            if codes.is_empty() {
                problems.push(format!("{label}: {status} names no stable code"));
            }
            for code in &codes {
                if !all_codes.contains(code) {
                    problems.push(format!("{label}: {status} names unknown code {code}"));
                }
            }
            let media = &responses[&status.to_string()]["content"]["application/problem+json"];
            if !media["schema"].is_object() {
                problems.push(format!("{label}: {status} is not problem+json"));
            }
        }
        if op.access != Access::Public {
            for status in [401, 403] {
                if !error_statuses(&op).contains(&status) {
                    problems.push(format!("{label}: guarded but no {status} documented"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Every component schema is a valid JSON Schema (2020-12, OpenAPI 3.1's dialect).
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        if let Err(e) = jsonschema::draft202012::meta::validate(schema) {
            panic!("schema {name} is not valid JSON Schema: {e}");
        }
    }
}

/// Checks `body` against the documented schema of `op`'s `status` answer.
fn assert_fits(doc: &Value, op: &Operation, status: u16, body: &Value) {
    let content = &op.doc["responses"][status.to_string()]["content"];
    let schema = content
        .as_object()
        .and_then(|c| c.values().next())
        .map(|m| m["schema"].clone())
        .unwrap_or_else(|| panic!("{}: no schema documented for {status}", op.label()));
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::draft202012::new(&root)
        .unwrap_or_else(|e| panic!("{}: schema does not compile: {e}", op.label()));
    if let Err(e) = validator.validate(body) {
        panic!(
            "{} {status}: the answer does not fit its documented schema: {e}\n{body}",
            op.label()
        );
    }
}

/// Calls `method path` as `session` and checks the answer against the document; returns
/// the body.
async fn checked(
    app: &TestApp,
    doc: &Value,
    ops: &[Operation],
    (method, template, path): (Method, &str, &str),
    session: Option<&Session>,
    body: Option<Value>,
) -> Value {
    let op = ops
        .iter()
        .find(|o| o.method == method && o.path == template)
        .unwrap_or_else(|| panic!("{method} {template} is not documented"));
    let (status, value, code) = match app.api.call(method, path, session, body.as_ref()).await {
        Ok((status, value)) => (status, value, String::new()),
        Err(crate::util::CallError::Status { status, code, body }) => (
            status,
            serde_json::from_str(&body).unwrap_or(Value::Null),
            code,
        ),
        Err(e) => panic!("{}: {e}", op.label()),
    };
    if status >= 400 {
        assert!(
            op.codes(status).contains(&code),
            "{}: answered {status} {code}, which the document does not list",
            op.label()
        );
    }
    if status != 204 {
        assert_fits(doc, op, status, &value);
    }
    value
}

/// (method, documented template, concrete path), caller, body.
type Call<'a> = (
    (Method, &'a str, String),
    Option<&'a Session>,
    Option<Value>,
);

#[tokio::test]
async fn real_answers_fit_their_documented_schemas() {
    let app = TestApp::start().await;
    let doc = document(&app.api).await;
    let ops = operations(&doc);
    let student = app.school("shape@test.memora", "Europe/Paris").await;
    let admin = app.admin().await;
    let (s, a) = (Some(&student), Some(&admin));
    let id = student.player_id.clone();
    let players = format!("/api/v1/admin/players/{id}");
    let lesson = crate::util::lesson_base_xp(&fixture("basics.subject.json"))[0]
        .0
        .clone();
    let complete = format!("/api/v1/lessons/{lesson}/complete");
    let device = "00000000-0000-4000-8000-00000000abcd";
    let calls: Vec<Call<'_>> = vec![
        ((Method::GET, "/healthz", "/healthz".to_owned()), None, None),
        ((Method::GET, "/readyz", "/readyz".to_owned()), None, None),
        (
            (
                Method::GET,
                "/api/v1/auth/session",
                "/api/v1/auth/session".to_owned(),
            ),
            s,
            None,
        ),
        (
            (Method::GET, "/api/v1/me", "/api/v1/me".to_owned()),
            s,
            None,
        ),
        (
            (Method::GET, "/api/v1/wallet", "/api/v1/wallet".to_owned()),
            s,
            None,
        ),
        (
            (
                Method::GET,
                "/api/v1/subjects/{subject_id}/progress",
                "/api/v1/subjects/bas/progress".to_owned(),
            ),
            s,
            None,
        ),
        (
            (
                Method::GET,
                "/api/v1/subjects/{subject_id}/progress",
                "/api/v1/subjects/nope/progress".to_owned(),
            ),
            s,
            None,
        ),
        (
            (
                Method::POST,
                "/api/v1/lessons/{lesson_id}/complete",
                complete.clone(),
            ),
            s,
            Some(json!({"hearts": 3})),
        ),
        (
            (
                Method::POST,
                "/api/v1/lessons/{lesson_id}/complete",
                complete.clone(),
            ),
            s,
            Some(json!({"hearts": 3, "extra": 1})),
        ),
        (
            (
                Method::GET,
                "/api/v1/reviews/due",
                "/api/v1/reviews/due".to_owned(),
            ),
            s,
            None,
        ),
        (
            (
                Method::POST,
                "/api/v1/admin/seasons",
                "/api/v1/admin/seasons".to_owned(),
            ),
            a,
            Some(
                json!({"id": "s1", "title": "Year", "start_date": "2026-09-01", "end_date": "2027-07-01", "is_active": true}),
            ),
        ),
        (
            (
                Method::GET,
                "/api/v1/admin/seasons",
                "/api/v1/admin/seasons".to_owned(),
            ),
            a,
            None,
        ),
        (
            (
                Method::GET,
                "/api/v1/admin/seasons/{id}",
                "/api/v1/admin/seasons/s1".to_owned(),
            ),
            a,
            None,
        ),
        (
            (
                Method::GET,
                "/api/v1/reviews/due",
                "/api/v1/reviews/due?limit=5".to_owned(),
            ),
            s,
            None,
        ),
        (
            (Method::GET, "/api/v1/admin/players/{id}", players.clone()),
            a,
            None,
        ),
        (
            (
                Method::GET,
                "/api/v1/admin/players/{id}",
                "/api/v1/admin/players/nobody".to_owned(),
            ),
            a,
            None,
        ),
        (
            (Method::PATCH, "/api/v1/admin/players/{id}", players.clone()),
            a,
            Some(json!({"grade": "7", "stream": null})),
        ),
        (
            (
                Method::PUT,
                "/api/v1/admin/players/{id}/grants",
                format!("{players}/grants"),
            ),
            a,
            Some(json!({"grants": ["gold"]})),
        ),
        (
            (
                Method::POST,
                "/api/v1/admin/players/{id}/xp",
                format!("{players}/xp"),
            ),
            a,
            Some(json!({"amount": 5, "reason": "bonus"})),
        ),
        (
            (
                Method::POST,
                "/api/v1/admin/players/{id}/devices",
                format!("{players}/devices"),
            ),
            a,
            Some(json!({"device_id": device, "device_name": "Lab PC"})),
        ),
        (
            (
                Method::GET,
                "/api/v1/admin/players/{id}/devices",
                format!("{players}/devices"),
            ),
            a,
            None,
        ),
        (
            (
                Method::GET,
                "/api/v1/admin/players/{id}/cards",
                format!("{players}/cards"),
            ),
            a,
            None,
        ),
        (
            (
                Method::GET,
                "/api/v1/admin/builds",
                "/api/v1/admin/builds".to_owned(),
            ),
            a,
            None,
        ),
        (
            (
                Method::POST,
                "/api/v1/admin/plans/{id}/build",
                "/api/v1/admin/plans/school/build".to_owned(),
            ),
            a,
            None,
        ),
        (
            (
                Method::GET,
                "/api/v1/admin/plans/{id}",
                "/api/v1/admin/plans/school".to_owned(),
            ),
            a,
            None,
        ),
        (
            (
                Method::PUT,
                "/api/v1/admin/subjects/{id}",
                "/api/v1/admin/subjects/bas".to_owned(),
            ),
            a,
            Some(fixture("basics.subject.json")),
        ),
        (
            (
                Method::POST,
                "/api/v1/admin/checkpoint",
                "/api/v1/admin/checkpoint".to_owned(),
            ),
            a,
            None,
        ),
        (
            (
                Method::POST,
                "/api/v1/admin/players",
                "/api/v1/admin/players".to_owned(),
            ),
            a,
            Some(
                json!({"email": "shape2@test.memora", "password": "password-1234", "display_name": "Two"}),
            ),
        ),
        (
            (
                Method::POST,
                "/api/v1/admin/players/{id}/password-reset",
                format!("{players}/password-reset"),
            ),
            a,
            None,
        ),
        (
            (
                Method::GET,
                "/api/v1/admin/jobs/{id}",
                "/api/v1/admin/jobs/none".to_owned(),
            ),
            a,
            None,
        ),
        (
            (
                Method::POST,
                "/api/v1/auth/logout",
                "/api/v1/auth/logout".to_owned(),
            ),
            a,
            None,
        ),
    ];
    let mut seen = BTreeSet::new();
    for ((method, template, path), session, body) in calls {
        seen.insert(format!("{method} {template}"));
        checked(&app, &doc, &ops, (method, template, &path), session, body).await;
    }
    assert!(seen.len() >= 25, "{seen:?}");
    // The login answer too (its client helper does not return the body).
    let op = ops
        .iter()
        .find(|o| o.path == "/api/v1/auth/login")
        .expect("login documented");
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", app.api.base))
        .header("X-Device-ID", device_id_for("shape2@test.memora"))
        .json(&json!({"email": "shape2@test.memora", "password": "password-1234"}))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.expect("login JSON");
    assert_fits(&doc, op, 200, &body);
}

#[tokio::test]
async fn the_reference_page_is_served_from_the_binary() {
    let app = TestApp::start().await;
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{}{}", app.api.base, docs::PAGE_PATH))
        .send()
        .await
        .expect("GET /docs");
    assert_eq!(page.status().as_u16(), 200);
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // The browser may load nothing from another origin.
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
    ] {
        assert!(csp.contains(directive), "CSP lacks {directive}: {csp}");
    }
    assert!(!csp.contains("http"), "{csp}");
    let html = page.text().await.expect("page");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    assert!(html.contains("spec-url=\"openapi.json\"") && html.contains("load-fonts=\"false\""));
    // The script the page names (relative to /docs) is served, gzipped when accepted.
    let src = html
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a script src");
    assert_eq!(format!("/{src}"), docs::SCRIPT_PATH);
    let vendored =
        fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vendor/rapidoc/rapidoc-min.js"))
            .expect("vendored script");
    let plain = http
        .get(format!("{}/{src}", app.api.base))
        .header("accept-encoding", "identity")
        .send()
        .await
        .expect("script");
    assert_eq!(plain.status().as_u16(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(
        plain.bytes().await.expect("bytes").as_ref(),
        vendored.as_slice()
    );
    let gz = http
        .get(format!("{}/{src}", app.api.base))
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .expect("script");
    assert_eq!(
        gz.headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    assert!(gz.bytes().await.expect("bytes").starts_with(&[0x1f, 0x8b]));
    let licenses = http
        .get(format!("{}{}", app.api.base, docs::LICENSE_PATH))
        .send()
        .await
        .expect("licenses");
    assert!(licenses.text().await.expect("text").contains("MIT License"));
}
