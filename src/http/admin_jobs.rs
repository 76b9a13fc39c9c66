//! `GET /api/v1/admin/jobs/{id}` (api.md "Long operations"): the state, progress and
//! result of a background job.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::engine::jobs::JobView;

use crate::error::{ApiError, Code};

use super::extract::StaffAuth;
use super::{AppState, json, problem};

/// This module's routes (each registered with its documentation).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_job))
}

/// `GET /api/v1/admin/jobs/{id}`: `{id, kind, state, progress, result, error,
/// started_at, finished_at}`; 404 for an unknown job.
#[utoipa::path(
    get,
    path = "/api/v1/admin/jobs/{id}",
    tag = "admin: engine",
    summary = "A background job's state, progress and result",
    security(("bearer" = ["admin"]), ("bearer" = ["teacher"])),
    params(("id" = String, Path, description = "Job id (from a 202 answer)")),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 404, description = "`NOT_FOUND`: no such job (or not visible to the caller)"),
    )
)]
pub async fn get_job(
    State(state): State<AppState>,
    StaffAuth(caller, scope): StaffAuth,
    Path(id): Path<String>,
) -> Response {
    if !scope.is_all() && state.engine.jobs().owner(&id).as_deref() != Some(&caller.player.id) {
        return problem(ApiError::new(Code::NotFound, format!("No job {id}")));
    }
    match state.engine.jobs().read(&id, &caller.player.id) {
        Ok(view) => json(StatusCode::OK, &view),
        Err(e) => problem(e),
    }
}

/// Renders a just-started job as the 202 answer of the route that started it.
pub fn accepted(view: &crate::engine::jobs::JobView) -> Response {
    json(StatusCode::ACCEPTED, view)
}
