//! Shared black-box test support: a `memora serve` child process ([`server`]), an
//! HTTP client for the contract ([`api`]), fixture loading and readers for the
//! progress tree, and a CLI runner. Used by every test that talks to a real server
//! process or runs the binary.

pub mod api;
pub mod app;
pub mod cli;
pub mod openapi;
pub mod s3;
pub mod scenario;
pub mod server;

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;

pub use api::{Api, CallError, Session};
pub use cli::{CliRun, memora};
pub use server::{ADMIN_EMAIL, ADMIN_PASSWORD, Server};

/// Parses `tests/fixtures/{name}`.
///
/// # Panics
/// If the file is missing or not JSON: fixtures are part of the repository.
pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse fixture {name}: {e}"))
}

/// The path of `tests/fixtures/{name}`.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Every lesson id of a subject document with its `base_xp` (default 10), in
/// document order.
pub fn lesson_base_xp(subject_doc: &Value) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for track in array(subject_doc, "tracks") {
        for unit in array(track, "units") {
            for topic in array(unit, "topics") {
                for lesson in array(topic, "lessons") {
                    let id = api::str_field(lesson, "id");
                    let xp = lesson.get("base_xp").and_then(Value::as_i64).unwrap_or(10);
                    out.push((id, xp));
                }
            }
        }
    }
    out
}

/// The lesson nodes of a progress answer's `root`, by id: `(status, best_hearts)`
/// where `best_hearts` is 0 when absent.
pub fn lesson_states(progress: &Value) -> HashMap<String, (String, u8)> {
    fn walk(node: &Value, out: &mut HashMap<String, (String, u8)>) {
        if node.get("type").and_then(Value::as_str) == Some("lesson") {
            let best = node.get("best_hearts").and_then(Value::as_u64).unwrap_or(0);
            out.insert(
                api::str_field(node, "id"),
                (
                    api::str_field(node, "status"),
                    u8::try_from(best).unwrap_or(u8::MAX),
                ),
            );
        }
        for child in array(node, "children") {
            walk(child, out);
        }
    }
    let mut out = HashMap::new();
    if let Some(root) = progress.get("root") {
        walk(root, &mut out);
    }
    out
}

/// `progress.suggested_next_lesson_id` (at the top level, or inside a completion
/// answer's `progress` object).
pub fn suggested_next(v: &Value) -> Option<String> {
    let direct = v.get("suggested_next_lesson_id");
    let nested = v
        .get("progress")
        .and_then(|p| p.get("suggested_next_lesson_id"));
    direct
        .or(nested)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// A stable device id for a test account: students may only add their first device
/// themselves, so every login of one account must reuse it.
pub fn device_id_for(email: &str) -> String {
    // FNV-1a over the email, spread to 16 bytes, then stamped as a v4 UUID.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in email.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let lo = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&h.to_le_bytes());
    bytes[8..].copy_from_slice(&lo.to_le_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

#[test]
fn fixtures_have_unique_ids_and_expected_sizes() {
    let mut seen = std::collections::HashSet::new();
    fn ids(v: &Value, out: &mut Vec<String>) {
        if let Some(id) = v.get("id").and_then(Value::as_str) {
            out.push(id.to_lowercase());
        }
        for key in ["tracks", "units", "topics", "lessons", "stages"] {
            for c in array(v, key) {
                ids(c, out);
            }
        }
    }
    for name in ["basics.subject.json", "chain.subject.json"] {
        let doc = fixture(name);
        assert_eq!(doc["format"], "memora.subject/v1");
        let mut all = Vec::new();
        ids(&doc, &mut all);
        for id in all {
            assert!(seen.insert(id.clone()), "duplicate id {id} in {name}");
        }
    }
    assert_eq!(lesson_base_xp(&fixture("basics.subject.json")).len(), 30);
    assert_eq!(lesson_base_xp(&fixture("chain.subject.json")).len(), 200);
    let plan = fixture("school.plan.json");
    assert_eq!(plan["format"], "memora.plan/v1");
    assert_eq!(plan["subjects"], serde_json::json!(["bas", "chain"]));
}

#[test]
fn device_ids_are_stable_v4_uuids() {
    let a = device_id_for("a@test.local");
    assert_eq!(a, device_id_for("a@test.local"));
    assert_ne!(a, device_id_for("b@test.local"));
    let parsed = uuid::Uuid::parse_str(&a).expect("a UUID");
    assert_eq!(parsed.get_version_num(), 4);
}
