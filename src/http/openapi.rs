//! The OpenAPI 3.1 document (api.md): generated from the handlers' `#[utoipa::path]`
//! attributes as the router registers them (`utoipa_axum::routes!`), completed here
//! with what every route shares — the security schemes, the problem+json answers and
//! their stable codes — and served at `GET /openapi.json`.
//!
//! Conventions the handlers' attributes follow (and [`finish`] relies on):
//! - `security(...)` absent: a public route. Student routes (staff use them too) say
//!   `security(("bearer" = [], "device_id" = []), ("bearer" = []))`; admin routes say
//!   `security(("bearer" = ["admin"]))` (OpenAPI 3.1 allows role names there), and the
//!   read-only ones teachers may use `security(("bearer" = ["admin"]), ("bearer" =
//!   ["teacher"]))`.
//! - An error response's description starts with its stable codes in backticks
//!   (`` `NOT_FOUND`: no such player ``); [`finish`] gives it the problem+json body
//!   whose `code` is restricted to those codes. The answers every guarded route shares
//!   (401, 403, 400 device, 413/415/422 for bodies, 500, 503) are added here.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use crate::error::{Code, FieldProblem, Problem};

/// Name of the bearer-token security scheme.
pub const BEARER: &str = "bearer";
/// Name of the `X-Device-ID` security scheme (students).
pub const DEVICE: &str = "device_id";
/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/openapi.json";

/// The static part of the document: info, tags, the shared schemas.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Memora API",
        description = "Self-hosted learning engine: curriculum, progress, XP, streaks and \
spaced repetition. JSON over HTTP under `/api/v1/`; errors are RFC 9457 \
`application/problem+json` documents with a stable `code`. Students send \
`Authorization: Bearer <token>` and `X-Device-ID: <uuid>`; teachers and admins send the \
bearer token only. The interactive reference is served at `/docs`.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
    ),
    components(schemas(Problem, FieldProblem, Code)),
    tags(
        (name = "health", description = "Liveness and readiness (public)"),
        (name = "auth", description = "Login, session, logout, own password (players.md)"),
        (name = "student", description = "The student's own data and play (progress.md)"),
        (name = "reviews", description = "Spaced-repetition reviews (srs.md)"),
        (name = "content", description = "Compiled curriculum files (content.md)"),
        (name = "admin: content", description = "Subjects, plans, builds and assets"),
        (name = "admin: players", description = "Accounts, devices, sessions, grants, XP"),
        (name = "admin: seasons", description = "SRS seasons and cards"),
        (name = "admin: engine", description = "Checkpoints and background jobs"),
    )
)]
pub struct ApiDoc;

/// Codes every guarded route may answer with, by status: (status, codes, why).
const GUARDED: [(u16, &[Code], &str); 2] = [
    (
        401,
        &[
            Code::Unauthenticated,
            Code::SessionReplaced,
            Code::SessionEnded,
        ],
        "no or unknown token, a session replaced by a newer login, or an ended session",
    ),
    (
        403,
        &[Code::PasswordChangeRequired, Code::DeviceNotAuthorized],
        "the password must be changed first, or the device is not authorized",
    ),
];

/// Headers of a 429 (the first also comes with a 503).
const RATE_LIMIT_HEADERS: [(&str, &str); 4] = [
    ("Retry-After", "Seconds to wait before retrying"),
    ("X-RateLimit-Limit", "Requests allowed per window"),
    ("X-RateLimit-Remaining", "Requests left in the window"),
    (
        "X-RateLimit-Reset",
        "Seconds until the bucket is full again",
    ),
];

/// Completes the generated document: wildcard path templates in OpenAPI syntax, the
/// security schemes, and problem+json bodies on every error answer (see the module
/// docs). Returns it as JSON.
pub fn finish(doc: utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(doc).unwrap_or_else(|_| json!({}));
    doc["components"]["securitySchemes"] = json!({
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": "The token of `POST /api/v1/auth/login`. Role names in a \
                            requirement (`admin`) are the roles the route accepts."
        },
        DEVICE: {
            "type": "apiKey",
            "in": "header",
            "name": "X-Device-ID",
            "description": "Students: the UUID of the device the session was opened on \
                            (400 `DEVICE_ID_REQUIRED` without it, 403 \
                            `DEVICE_NOT_AUTHORIZED` for another device)."
        }
    });
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        let old = std::mem::take(paths);
        for (path, mut item) in old {
            if let Some(ops) = item.as_object_mut() {
                for (method, op) in ops.iter_mut() {
                    if is_method(method) {
                        complete_operation(method, op);
                    }
                }
            }
            paths.insert(openapi_template(&path), item);
        }
    }
    doc
}

/// The HTTP methods of a path item (other keys are `parameters`, `summary`, …).
pub fn is_method(key: &str) -> bool {
    matches!(
        key,
        "get" | "put" | "post" | "delete" | "patch" | "head" | "options" | "trace"
    )
}

/// axum's catch-all `{*rest}` is OpenAPI's `{rest}` (which may hold slashes here).
pub fn openapi_template(axum_path: &str) -> String {
    axum_path.replace("{*", "{")
}

/// Who may call an operation, read from its `security` requirements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No requirement, or an empty one.
    Public,
    /// Students (bearer + device) and staff (bearer).
    Player,
    /// Bearer with the roles named in the requirement.
    Staff,
}

/// The [`Access`] of an operation of the finished (or generated) document.
pub fn access(operation: &Value) -> Access {
    let Some(reqs) = operation.get("security").and_then(Value::as_array) else {
        return Access::Public;
    };
    if reqs.is_empty() || reqs.iter().any(|r| r.as_object().is_none_or(Map::is_empty)) {
        return Access::Public;
    }
    if reqs.iter().any(|r| r.get(DEVICE).is_some()) {
        Access::Player
    } else {
        Access::Staff
    }
}

/// The roles a staff operation names (`["admin"]`), empty for the others.
pub fn roles(operation: &Value) -> Vec<String> {
    operation
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get(BEARER).and_then(Value::as_array))
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect()
}

/// Raw bytes: utoipa describes `Vec<u8>` as an array of integers; on the wire it is the
/// file itself.
fn binary_bodies(op: &mut Value) {
    fn fix(content: Option<&mut Value>) {
        if let Some(media) = content.and_then(|c| c.get_mut("application/octet-stream")) {
            media["schema"] = json!({"type": "string", "format": "binary"});
        }
    }
    fix(op.get_mut("requestBody").and_then(|b| b.get_mut("content")));
    if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
        for response in responses.values_mut() {
            fix(response.get_mut("content"));
        }
    }
}

fn complete_operation(method: &str, op: &mut Value) {
    binary_bodies(op);
    let access = access(op);
    let has_body = op.get("requestBody").is_some();
    let Some(responses) = op.as_object_mut().and_then(|o| {
        o.entry("responses")
            .or_insert_with(|| json!({}))
            .as_object_mut()
    }) else {
        return;
    };
    let mut shared: Vec<(u16, Vec<Code>, String)> = Vec::new();
    if access != Access::Public {
        for (status, codes, why) in GUARDED {
            shared.push((status, codes.to_vec(), why.to_owned()));
        }
        shared.push((
            400,
            vec![Code::DeviceIdRequired],
            "a student sent no `X-Device-ID` header".into(),
        ));
        if access == Access::Staff {
            shared.push((
                403,
                vec![Code::Forbidden],
                "the caller's role may not use this route".into(),
            ));
        }
    }
    if has_body {
        shared.push((
            400,
            vec![Code::ValidationFailed],
            "the body is not JSON".into(),
        ));
        shared.push((
            413,
            vec![Code::PayloadTooLarge],
            "the body is over the limit".into(),
        ));
        shared.push((
            415,
            vec![Code::ValidationFailed],
            "the content type is not JSON".into(),
        ));
        shared.push((
            422,
            vec![Code::ValidationFailed],
            "the JSON does not fit the schema (unknown fields included); `errors` lists \
             the fields"
                .into(),
        ));
    }
    if method != "get" {
        shared.push((
            503,
            vec![Code::StorageUnavailable],
            "the change could not be stored durably and was not applied".into(),
        ));
    }
    shared.push((
        500,
        vec![Code::Internal],
        "an internal error (logged)".into(),
    ));
    for (status, codes, why) in shared {
        let entry = responses
            .entry(status.to_string())
            .or_insert_with(|| json!({"description": ""}));
        let description = entry
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut added = Vec::new();
        for code in &codes {
            let tick = format!("`{}`", code_name(*code));
            if !description.contains(&tick) {
                added.push(tick);
            }
        }
        if !added.is_empty() {
            let line = format!("{}: {why}", added.join(", "));
            entry["description"] = Value::String(if description.is_empty() {
                line
            } else {
                format!("{description}; {line}")
            });
        }
    }
    responses.sort_keys();
    for (status, response) in responses.iter_mut() {
        let headers = match status.as_str() {
            "429" => &RATE_LIMIT_HEADERS[..],
            "503" => &RATE_LIMIT_HEADERS[..1],
            _ => &[],
        };
        for (name, description) in headers {
            response["headers"][*name] =
                json!({"description": description, "schema": {"type": "integer"}});
        }
        let is_error = status.parse::<u16>().is_ok_and(|s| s >= 400);
        if is_error && response.get("content").is_none() {
            let codes = codes_in(
                response
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            );
            response["content"] = json!({
                "application/problem+json": {"schema": problem_schema(&codes)}
            });
        }
    }
}

/// The stable name of a code (`NOT_FOUND`).
pub fn code_name(code: Code) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Every stable code named in backticks in `text`, in order, without repeats.
pub fn codes_in(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, part) in text.split('`').enumerate() {
        let is_code = i % 2 == 1
            && !part.is_empty()
            && part.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
            && all_codes().iter().any(|c| c == part);
        if is_code && !out.iter().any(|c| c == part) {
            out.push(part.to_owned());
        }
    }
    out
}

/// Every stable code (api.md), as the `Code` schema lists them.
pub fn all_codes() -> Vec<String> {
    let schema =
        serde_json::to_value(<Code as utoipa::PartialSchema>::schema()).unwrap_or(Value::Null);
    schema["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect()
}

fn problem_schema(codes: &[String]) -> Value {
    if codes.is_empty() {
        return json!({"$ref": "#/components/schemas/Problem"});
    }
    json!({
        "allOf": [
            {"$ref": "#/components/schemas/Problem"},
            {"properties": {"code": {"enum": codes}}}
        ]
    })
}

/// `GET /openapi.json`: the finished document (serialized once).
pub fn routes<S: Clone + Send + Sync + 'static>(document: &Value) -> Router<S> {
    let bytes = axum::body::Bytes::from(serde_json::to_vec(document).unwrap_or_default());
    Router::new().route(
        DOCUMENT_PATH,
        get(move || {
            let bytes = bytes.clone();
            async move {
                let mut response = (StatusCode::OK, bytes).into_response();
                let headers = response.headers_mut();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                response
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_from_descriptions() {
        assert_eq!(
            codes_in("`NOT_FOUND`: no player; `CONFLICT` or `NOPE`, `x`"),
            vec!["NOT_FOUND".to_owned(), "CONFLICT".to_owned()]
        );
        assert!(codes_in("no codes here").is_empty());
    }

    #[test]
    fn every_code_is_listed() {
        let codes = all_codes();
        assert!(codes.len() >= 25, "{codes:?}");
        assert!(codes.contains(&code_name(Code::IdempotencyKeyReused)));
    }

    #[test]
    fn wildcards_become_openapi_templates() {
        assert_eq!(
            openapi_template("/api/v1/admin/assets/{*path}"),
            "/api/v1/admin/assets/{path}"
        );
        assert_eq!(openapi_template("/a/{id}/b"), "/a/{id}/b");
    }

    #[test]
    fn access_follows_the_security_requirements() {
        assert_eq!(access(&json!({})), Access::Public);
        assert_eq!(access(&json!({"security": [{}]})), Access::Public);
        let player = json!({"security": [{"bearer": [], "device_id": []}, {"bearer": []}]});
        assert_eq!(access(&player), Access::Player);
        let admin = json!({"security": [{"bearer": ["admin"]}]});
        assert_eq!(access(&admin), Access::Staff);
        assert_eq!(roles(&admin), vec!["admin".to_owned()]);
    }

    #[test]
    fn guarded_operations_get_the_shared_problem_answers() {
        let mut op = json!({
            "security": [{"bearer": ["admin"]}],
            "requestBody": {"content": {}},
            "responses": {"404": {"description": "`NOT_FOUND`: no such player"}}
        });
        complete_operation("post", &mut op);
        let r = &op["responses"];
        for status in [
            "400", "401", "403", "404", "413", "415", "422", "500", "503",
        ] {
            assert!(
                r[status]["content"]["application/problem+json"].is_object(),
                "{status}: {r}"
            );
        }
        assert!(r["503"]["headers"]["Retry-After"].is_object(), "{r}");
        let forbidden = r["403"]["description"].as_str().unwrap_or_default();
        assert!(forbidden.contains("`FORBIDDEN`"), "{forbidden}");
        let enum_404 = &r["404"]["content"]["application/problem+json"]["schema"]["allOf"][1];
        assert_eq!(enum_404["properties"]["code"]["enum"], json!(["NOT_FOUND"]));
    }
}
