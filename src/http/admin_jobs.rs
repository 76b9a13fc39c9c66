//! `GET /api/v1/admin/jobs/{id}` (api.md "Long operations"): the state, progress and
//! result of a background job.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use crate::error::{ApiError, Code};

use super::extract::StaffAuth;
use super::{AppState, json, problem};

/// This module's routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/admin/jobs/{id}", get(get_job))
}

/// `GET /api/v1/admin/jobs/{id}`: `{id, kind, state, progress, result, error,
/// started_at, finished_at}`; 404 for an unknown job. R: a teacher reads only the jobs
/// they started (a job's result may name students outside their groups), and gets the
/// same 404 for the others.
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
