//! Compiled curriculum over HTTP: `/content/**` serves the output root (ETag and
//! `If-None-Match`, gzip, `Cache-Control`, JSON as `application/json; charset=utf-8`, no
//! directory listing, no path traversal, optional session), and the admin build routes
//! (`POST /api/v1/admin/plans/{id}/build`, `GET /api/v1/admin/builds`,
//! `POST /api/v1/admin/builds/{id}/retry`).

use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, Code};

use super::extract::{AdminAuth, Auth, StaffAuth};
use super::{AppState, json, problem};

/// `POST /api/v1/admin/plans/{id}/build`: builds the plan now (the build runs on a
/// blocking thread; the request waits for it) and answers 202 `{job_id, build}` where
/// `build` is the finished build record (state `done`, or `failed` with a retry queued).
pub async fn build_plan(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Response {
    if state.engine.catalog().plan(&id).is_none() {
        return problem(ApiError::new(Code::NotFound, format!("no plan `{id}`")));
    }
    match state.engine.build_now(&id, "api").await {
        Ok(record) => json(
            StatusCode::ACCEPTED,
            &serde_json::json!({"job_id": record.id, "build": record}),
        ),
        Err(e) => problem(ApiError::internal(e)),
    }
}

/// `GET /api/v1/admin/builds`: `{queue, history, dead}`.
pub async fn list_builds(State(state): State<AppState>, _: StaffAuth) -> Response {
    json(StatusCode::OK, &state.engine.builds().view())
}

/// `POST /api/v1/admin/builds/{id}/retry`: requeues a dead build (202 with the queued
/// record), 404 if no dead build has that id.
pub async fn retry_build(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Response {
    match state.engine.builds().retry(&id, state.engine.now()) {
        Some(record) => json(
            StatusCode::ACCEPTED,
            &serde_json::json!({"job_id": record.id, "build": record}),
        ),
        None => problem(ApiError::new(
            Code::NotFound,
            format!("no dead build `{id}`"),
        )),
    }
}

/// The relative path if every segment is a plain name: no `..`, `.`, empty or hidden
/// segment (temp files start with a dot), no backslash or NUL.
pub(crate) fn safe_relative(path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for seg in path.split('/') {
        if seg.is_empty() || seg.starts_with('.') || seg.contains(['\\', '\0']) {
            return None;
        }
        out.push(seg);
    }
    Some(out)
}

pub(crate) fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("json") => "application/json; charset=utf-8",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("svg") => "image/svg+xml",
        Some("mp4") => "video/mp4",
        Some("webm") => "video/webm",
        Some("mp3") => "audio/mpeg",
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn not_found() -> Response {
    problem(ApiError::new(Code::NotFound, "No such content file"))
}

/// `GET /content/{*path}`: a file of the output root.
pub async fn serve(State(state): State<AppState>, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    if state.engine.config().content.require_auth
        && let Err(rejection) = Auth::from_request_parts(&mut parts, &state).await
    {
        return rejection;
    }
    let Some(rel) = parts
        .uri
        .path()
        .strip_prefix("/content/")
        .and_then(percent_decode)
    else {
        return not_found();
    };
    let Some(rel_path) = safe_relative(&rel) else {
        return not_found();
    };
    let full = state.engine.config().content.output_dir.join(rel_path);
    let Ok(meta) = tokio::fs::metadata(&full).await else {
        return not_found();
    };
    if !meta.is_file() {
        return not_found();
    }
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    // Weak: the same tag covers the gzip and identity representations.
    let etag = format!("W/\"{:x}-{:x}\"", meta.len(), mtime);
    let cache = if rel.ends_with("manifest.json") {
        "no-cache"
    } else {
        "public, max-age=300"
    };
    let matches = parts
        .headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == "*" || t == etag.trim_start_matches("W/"))
        });
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match tokio::fs::read(&full).await {
            Ok(bytes) => (StatusCode::OK, bytes).into_response(),
            Err(_) => return not_found(),
        }
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if !matches {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(&rel)),
        );
    }
    response
}

/// Decodes `%XX` escapes; `None` on a bad escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
