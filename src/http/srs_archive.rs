//! Admin SRS archive, retention and import routes (srs.md "Archive and retention",
//! "Review history import"; api.md "Long operations"):
//! - `POST /api/v1/admin/seasons/{id}/archive` `{"confirm": true}` → 202 job `archive`;
//! - `GET /api/v1/admin/seasons/{id}/archive-status`;
//! - `POST /api/v1/admin/archive/purge` `{"confirm": true, "season_id"?}`;
//! - `POST /api/v1/admin/players/{id}/reviews/import?season_id=` (CSV body) → 202 job
//!   `review_import`.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use crate::engine::jobs::JobOutput;
use crate::engine::srs_retention::PurgeRequest;
use crate::error::{ApiError, Code};

use super::admin_jobs::accepted;
use super::extract::{AdminAuth, check_json_content_type, parse_json};
use super::{AppState, detached, json, problem};

/// This module's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/seasons/{id}/archive", post(archive))
        .route("/api/v1/admin/seasons/{id}/archive-status", get(status))
        .route("/api/v1/admin/archive/purge", post(purge))
        .route(
            "/api/v1/admin/players/{id}/reviews/import",
            post(import_reviews),
        )
}

/// `POST /api/v1/admin/seasons/{id}/archive` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchiveRequest {
    #[serde(default)]
    confirm: bool,
}

/// A JSON body that may be empty (then `T::default()`), with the usual checks.
fn optional_json<T: serde::de::DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    check_json_content_type(headers)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(body)
    }
}

/// `POST /api/v1/admin/seasons/{id}/archive`: 202 with the job; 422 without
/// `confirm: true`; 404 unknown season; 409 active, or already being archived.
async fn archive(
    State(state): State<AppState>,
    AdminAuth(caller): AdminAuth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: ArchiveRequest = match optional_json(&headers, &body) {
        Ok(r) => r,
        Err(e) => return problem(e),
    };
    if !request.confirm {
        return problem(ApiError::field(
            "/confirm",
            "must be true: archiving moves every card of the season out of the live tables",
        ));
    }
    let engine = state.engine.clone();
    let ticket = match engine.begin_archive(&id).await {
        Ok(t) => t,
        Err(e) => return problem(e),
    };
    let runner = engine.clone();
    let view = engine
        .jobs()
        .spawn("archive", &caller.player.id, move |handle| async move {
            runner
                .run_archive(ticket, Some(handle))
                .await
                .map(JobOutput::of)
        });
    engine.set_archive_job(&id, &view.id);
    accepted(&view)
}

/// `GET /api/v1/admin/seasons/{id}/archive-status`.
async fn status(
    State(state): State<AppState>,
    AdminAuth(_): AdminAuth,
    Path(id): Path<String>,
) -> Response {
    let engine = state.engine.clone();
    match tokio::task::spawn_blocking(move || engine.archive_status(&id)).await {
        Ok(Ok(s)) => json(StatusCode::OK, &s),
        Ok(Err(e)) => problem(e),
        Err(e) => problem(ApiError::internal(e)),
    }
}

/// `POST /api/v1/admin/archive/purge`: `{season_id, purged_cards, archived_before}`.
async fn purge(
    State(state): State<AppState>,
    AdminAuth(caller): AdminAuth,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: PurgeRequest = match optional_json(&headers, &body) {
        Ok(r) => r,
        Err(e) => return problem(e),
    };
    let engine = state.engine.clone();
    let by = caller.player.id.clone();
    match detached(async move { engine.purge_archive(request, &by).await }).await {
        Ok(outcome) => json(StatusCode::OK, &outcome),
        Err(e) => problem(e),
    }
}

/// `POST /api/v1/admin/players/{id}/reviews/import` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportParams {
    season_id: Option<String>,
}

/// Accepted content types of a history file (or none).
fn check_csv_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let mime = ct
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if ["text/csv", "text/plain", "application/csv"].contains(&mime.as_str()) {
        Ok(())
    } else {
        Err(ApiError {
            status: Some(415),
            ..ApiError::new(
                Code::ValidationFailed,
                format!(
                    "expected Content-Type: text/csv, got `{}`",
                    ct.to_str().unwrap_or("?")
                ),
            )
        })
    }
}

/// `POST /api/v1/admin/players/{id}/reviews/import?season_id=`: a CSV body (up to
/// `http.admin_body_limit_bytes`); 422 with a pointer per bad cell (nothing changed),
/// else 202 with the job (result `{player_id, season, reviews, cards, duration_ms}`).
async fn import_reviews(
    State(state): State<AppState>,
    AdminAuth(caller): AdminAuth,
    Path(id): Path<String>,
    query: Result<Query<ImportParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(Query(params)) = query else {
        return problem(ApiError::field("", "unknown or malformed query parameters"));
    };
    if let Err(e) = check_csv_content_type(&headers) {
        return problem(e);
    }
    let limit = state.engine.config().http.admin_body_limit_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return problem(ApiError::new(
                Code::PayloadTooLarge,
                format!("The history file is larger than {limit} bytes"),
            ));
        }
    };
    let engine = state.engine.clone();
    let prepared = match engine.prepare_review_import(
        &id,
        params.season_id.as_deref(),
        &bytes,
        &caller.player.id,
    ) {
        Ok(p) => p,
        Err(e) => return problem(e),
    };
    let runner = engine.clone();
    let view = engine.jobs().spawn(
        "review_import",
        &caller.player.id,
        move |handle| async move {
            runner
                .run_review_import(prepared, Some(handle))
                .await
                .map(JobOutput::of)
        },
    );
    accepted(&view)
}
