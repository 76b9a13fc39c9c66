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

use serde::Serialize;
use utoipa::ToSchema;

use crate::cdn::queue::{BuildRecord, BuildsView};
use crate::error::{ApiError, Code};

use super::extract::{AdminAuth, Auth, StaffAuth};
use super::{AppState, json, problem};

/// The 202 answer of a build request: the build doubles as the job.
#[derive(Debug, Serialize, ToSchema)]
pub struct BuildStarted {
    /// The build's id.
    pub job_id: String,
    /// The build record.
    pub build: BuildRecord,
}

/// `POST /api/v1/admin/plans/{id}/build`: builds the plan now (the build runs on a
/// blocking thread; the request waits for it) and answers 202 `{job_id, build}` where
/// `build` is the finished build record (state `done`, or `failed` with a retry queued).
#[utoipa::path(
    post,
    path = "/api/v1/admin/plans/{id}/build",
    tag = "admin: content",
    summary = "Build a plan's compiled files now",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Plan id")),
    responses(
        (status = 202, description = "The finished build (`done`, or `failed` with a retry queued)", body = BuildStarted),
        (status = 404, description = "`NOT_FOUND`: no such plan"),
    )
)]
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
            &BuildStarted {
                job_id: record.id.clone(),
                build: record,
            },
        ),
        Err(e) => problem(ApiError::internal(e)),
    }
}

/// `GET /api/v1/admin/builds`: `{queue, history, dead}`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/builds",
    tag = "admin: content",
    summary = "The build queue, recent history and dead builds",
    security(("bearer" = ["admin"]), ("bearer" = ["teacher"])),
    responses((status = 200, description = "The builds", body = BuildsView))
)]
pub async fn list_builds(State(state): State<AppState>, _: StaffAuth) -> Response {
    json(StatusCode::OK, &state.engine.builds().view())
}

/// `POST /api/v1/admin/builds/{id}/retry`: requeues a dead build (202 with the queued
/// record), 404 if no dead build has that id.
#[utoipa::path(
    post,
    path = "/api/v1/admin/builds/{id}/retry",
    tag = "admin: content",
    summary = "Queue a dead build again",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Build id (`b-…`)")),
    responses(
        (status = 202, description = "Queued", body = BuildStarted),
        (status = 404, description = "`NOT_FOUND`: no dead build has that id"),
    )
)]
pub async fn retry_build(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Response {
    match state.engine.builds().retry(&id, state.engine.now()) {
        Some(record) => json(
            StatusCode::ACCEPTED,
            &BuildStarted {
                job_id: record.id.clone(),
                build: record,
            },
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
#[utoipa::path(
    get,
    path = "/content/{*path}",
    operation_id = "content_file",
    tag = "content",
    summary = "A compiled curriculum file",
    description = "Files of the content output root (plan manifests, topic files, \
assets), with `ETag`/`If-None-Match`, gzip and `Cache-Control`. Public unless \
`content.require_auth` is set (then a session is required as on student routes).",
    params(("path" = String, Path, description = "Path below the output root, e.g. `plans/school/manifest.json`")),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 400, description = "`DEVICE_ID_REQUIRED`: only with `content.require_auth`, a student sent no `X-Device-ID`"),
        (status = 401, description = "`UNAUTHENTICATED`, `SESSION_REPLACED`, `SESSION_ENDED`: only with `content.require_auth`, no valid session"),
        (status = 403, description = "`DEVICE_NOT_AUTHORIZED`, `PASSWORD_CHANGE_REQUIRED`: only with `content.require_auth`"),
        (status = 404, description = "`NOT_FOUND`: no such file"),
    )
)]
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
