//! Media referenced by content (`image`, `badge_image`, files in stage configs):
//! `PUT|DELETE /api/v1/admin/assets/{path}` stores them under the output root's
//! `assets/` folder, where `/content/assets/{path}` serves them and uploads pick them up
//! with the rest (content.md "Compiled files"; a change queues an upload-only job when
//! `[cdn.s3]` is configured). Builds never touch `assets/`.

use std::path::PathBuf;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::cdn::disk::{Disk, RealDisk};
use crate::error::{ApiError, Code};

use super::content::{content_type, safe_relative};
use super::extract::AdminAuth;
use super::{AppState, json, problem};

/// Folder of assets inside the output root.
pub const ASSETS_DIR: &str = "assets";

/// Longest accepted asset path, in bytes.
const MAX_PATH: usize = 512;

/// Answer of a stored asset.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssetAnswer {
    /// The asset's path below `assets/`.
    pub path: String,
    /// Its URL relative to the output root (as used inside compiled files).
    pub url: String,
    /// Size in bytes.
    pub bytes: usize,
    /// The `Content-Type` it is served with.
    pub content_type: &'static str,
}

/// Checks an asset path: plain segments only (no `..`, `.`, hidden or empty segments,
/// no backslash or NUL), at most 512 bytes, and an extension with a known media type.
///
/// # Errors
/// 422 `VALIDATION_FAILED` naming the problem.
pub fn validate_path(path: &str) -> Result<(PathBuf, &'static str), ApiError> {
    let bad = |message: &str| ApiError::field("/path", message);
    if path.is_empty() || path.len() > MAX_PATH {
        return Err(bad("must be 1 to 512 bytes"));
    }
    let rel = safe_relative(path).ok_or_else(|| {
        bad("must be plain path segments: no `..`, `.`, empty or hidden segments, backslashes or NUL")
    })?;
    if path.chars().any(char::is_control) {
        return Err(bad("must not contain control characters"));
    }
    let kind = content_type(path);
    if kind == "application/octet-stream" || kind.starts_with("application/json") {
        return Err(bad(
            "the extension must be an image, audio, video, PDF or text type (png, jpg, jpeg, gif, webp, svg, mp3, mp4, webm, pdf, txt)",
        ));
    }
    Ok((rel, kind))
}

/// `PUT /api/v1/admin/assets/{*path}`: stores the body as the asset (201 new, 200
/// replaced), written atomically (temp file, fsync, rename). The size limit is
/// `http.admin_body_limit_bytes` (413 beyond).
#[utoipa::path(
    put,
    path = "/api/v1/admin/assets/{*path}",
    tag = "admin: content",
    summary = "Store a media file referenced by content",
    description = "Stored under the output root's `assets/` (served at \
`/content/assets/{path}`). The extension must be an image, audio, video, PDF or text \
type. The size limit is `http.admin_body_limit_bytes`.",
    security(("bearer" = ["admin"])),
    params(("path" = String, Path, description = "Path below `assets/`, e.g. `img/logo.png` (may hold slashes)")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes"),
    responses(
        (status = 200, description = "Replaced", body = AssetAnswer),
        (status = 201, description = "Created", body = AssetAnswer),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: over `http.admin_body_limit_bytes`"),
        (status = 422, description = "`VALIDATION_FAILED`: a bad path or extension, or an empty body"),
    )
)]
pub async fn put_asset(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(path): Path<String>,
    body: Bytes,
) -> Response {
    let (rel, kind) = match validate_path(&path) {
        Ok(v) => v,
        Err(e) => return problem(e),
    };
    if body.is_empty() {
        return problem(ApiError::field("", "an asset must not be empty"));
    }
    let full = state
        .engine
        .config()
        .content
        .output_dir
        .join(ASSETS_DIR)
        .join(rel);
    let len = body.len();
    let written = tokio::task::spawn_blocking(move || {
        let existed = full.is_file();
        RealDisk
            .write_batch(&[(full, body.as_ref())])
            .map(|()| existed)
    })
    .await;
    if matches!(written, Ok(Ok(_))) {
        uploaded_later(&state, &path);
    }
    match written {
        Ok(Ok(existed)) => json(
            if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            },
            &AssetAnswer {
                url: format!("{ASSETS_DIR}/{path}"),
                path,
                bytes: len,
                content_type: kind,
            },
        ),
        Ok(Err(e)) => problem(ApiError::storage(e)),
        Err(e) => problem(ApiError::internal(e)),
    }
}

/// `DELETE /api/v1/admin/assets/{*path}`: 204, or 404 when there is no such asset.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/assets/{*path}",
    tag = "admin: content",
    summary = "Delete a media file",
    security(("bearer" = ["admin"])),
    params(("path" = String, Path, description = "Path below `assets/` (may hold slashes)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`NOT_FOUND`: no such asset"),
        (status = 422, description = "`VALIDATION_FAILED`: a bad path"),
    )
)]
pub async fn delete_asset(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(path): Path<String>,
) -> Response {
    let (rel, _) = match validate_path(&path) {
        Ok(v) => v,
        Err(e) => return problem(e),
    };
    let full = state
        .engine
        .config()
        .content
        .output_dir
        .join(ASSETS_DIR)
        .join(rel);
    let removed = tokio::task::spawn_blocking(move || {
        if !full.is_file() {
            return Ok(false);
        }
        RealDisk.remove(&full).map(|()| true)
    })
    .await;
    if matches!(removed, Ok(Ok(true))) {
        uploaded_later(&state, &path);
    }
    match removed {
        Ok(Ok(true)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Ok(false)) => problem(ApiError::new(Code::NotFound, format!("no asset `{path}`"))),
        Ok(Err(e)) => problem(ApiError::storage(e)),
        Err(e) => problem(ApiError::internal(e)),
    }
}

/// Queues the asset's upload (or remote deletion) when `[cdn.s3]` is configured.
fn uploaded_later(state: &AppState, path: &str) {
    state.engine.builds().files_changed(
        [format!("{ASSETS_DIR}/{path}")],
        "asset",
        state.engine.now(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_paths_are_checked() {
        assert_eq!(
            validate_path("img/logo.png").ok(),
            Some((PathBuf::from("img/logo.png"), "image/png"))
        );
        for bad in [
            "",
            "../etc/passwd.png",
            "img/../../x.png",
            "/abs.png",
            "img//x.png",
            ".hidden.png",
            "a\\b.png",
            "nul\0.png",
            "ctl\u{7}.png",
            "x.exe",
            "x.json",
            "no-extension",
        ] {
            assert!(validate_path(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(validate_path(&format!("{}.png", "a".repeat(600))).is_err());
    }
}
