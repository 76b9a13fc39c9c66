//! Admin SRS archive, retention and import routes (srs.md "Archive and retention",
//! "Review history import"; api.md "Long operations"):
//! - `POST /api/v1/admin/seasons/{id}/archive` `{"confirm": true}` → 202 job `archive`;
//! - `GET /api/v1/admin/seasons/{id}/archive-status` (R);
//! - `POST /api/v1/admin/archive/purge` `{"confirm": true, "season_id"?}`;
//! - `POST /api/v1/admin/players/{id}/reviews/import?season_id=` (CSV body) → 202 job
//!   `review_import`.
//!
//! The jobs run in a copy of the request's audit context (`engine::audit`), so the
//! changes they journal are recorded as the admin's actions.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::engine::audit;
use crate::engine::jobs::JobOutput;
use crate::engine::srs_retention::{ArchiveStatus, PurgeOutcome, PurgeRequest};
use crate::error::{ApiError, Code};

use super::admin_jobs::accepted;
use super::extract::{AdminAuth, StaffAuth, check_json_content_type, parse_json};
use super::{AppState, detached, json, problem};

/// This module's routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(archive))
        .routes(routes!(status))
        .routes(routes!(purge))
        .routes(routes!(import_reviews))
}

/// `POST /api/v1/admin/seasons/{id}/archive` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveRequest {
    /// Must be `true`: archiving moves every card of the season out of the live tables.
    #[serde(default)]
    pub confirm: bool,
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
#[utoipa::path(
    post,
    path = "/api/v1/admin/seasons/{id}/archive",
    operation_id = "archive_season",
    tag = "admin: seasons",
    summary = "Move every card of an inactive season to the archive (a job)",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Season id")),
    request_body(content = ArchiveRequest, description = "`{\"confirm\": true}`"),
    responses(
        (status = 202, description = "The job (kind `archive`); its result is `{season, archived_cards, duration_ms}`", body = crate::engine::jobs::JobView),
        (status = 404, description = "`NOT_FOUND`: no such season"),
        (status = 409, description = "`CONFLICT`: the season is active, already being archived, or a review import into it is running"),
        (status = 422, description = "`VALIDATION_FAILED`: `confirm` is not `true`"),
    )
)]
pub async fn archive(
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
    let ctx = audit::current_for_job();
    let view = engine
        .jobs()
        .spawn("archive", &caller.player.id, move |handle| {
            audit::scope(ctx, async move {
                runner
                    .run_archive(ticket, Some(handle))
                    .await
                    .map(JobOutput::of)
            })
        });
    engine.set_archive_job(&id, &view.id);
    accepted(&view)
}

/// `GET /api/v1/admin/seasons/{id}/archive-status` (R).
#[utoipa::path(
    get,
    path = "/api/v1/admin/seasons/{id}/archive-status",
    operation_id = "season_archive_status",
    tag = "admin: seasons",
    summary = "Live, archived and deletable card counts of a season",
    security(("bearer" = ["admin"]), ("bearer" = ["teacher"])),
    params(("id" = String, Path, description = "Season id")),
    responses(
        (status = 200, description = "The counts", body = ArchiveStatus),
        (status = 404, description = "`NOT_FOUND`: no such season"),
    )
)]
pub async fn status(
    State(state): State<AppState>,
    _: StaffAuth,
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
#[utoipa::path(
    post,
    path = "/api/v1/admin/archive/purge",
    operation_id = "purge_archive",
    tag = "admin: seasons",
    summary = "Delete the archived cards flagged eligible for deletion",
    security(("bearer" = ["admin"])),
    request_body(content = PurgeRequest, description = "`{\"confirm\": true, \"season_id\"?}`"),
    responses(
        (status = 200, description = "What was deleted", body = PurgeOutcome),
        (status = 404, description = "`NOT_FOUND`: no such season"),
        (status = 422, description = "`VALIDATION_FAILED`: `confirm` is not `true`"),
    )
)]
pub async fn purge(
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
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// The season imported into (default: the active one).
    pub season_id: Option<String>,
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
#[utoipa::path(
    post,
    path = "/api/v1/admin/players/{id}/reviews/import",
    operation_id = "import_reviews",
    tag = "admin: seasons",
    summary = "Import a student's review history (CSV) and rebuild those cards (a job)",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Player id"), ImportParams),
    request_body(content = String, content_type = "text/csv", description = "Header `question_id,rating,reviewed_at,duration_ms`; `reviewed_at` RFC 3339 or unix ms; `duration_ms` may be empty"),
    responses(
        (status = 202, description = "The job (kind `review_import`); its result is `{player_id, season, reviews, cards, duration_ms}`", body = crate::engine::jobs::JobView),
        (status = 404, description = "`NOT_FOUND`: no such player or season"),
        (status = 409, description = "`NO_ACTIVE_SEASON`: no season given and none is active; `CONFLICT`: the season is being archived"),
        (status = 415, description = "`VALIDATION_FAILED`: the content type is not CSV"),
        (status = 422, description = "`VALIDATION_FAILED`: bad cells, each with its `/rows/{i}/{column}` pointer; nothing was imported"),
    )
)]
pub async fn import_reviews(
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
    let ctx = audit::current_for_job();
    let view = engine
        .jobs()
        .spawn("review_import", &caller.player.id, move |handle| {
            audit::scope(ctx, async move {
                runner
                    .run_review_import(prepared, Some(handle))
                    .await
                    .map(JobOutput::of)
            })
        });
    accepted(&view)
}
