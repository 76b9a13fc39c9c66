//! `POST /api/v1/admin/snapshots` (api.md "Admin", persistence.md "Snapshots"): writes a
//! snapshot of the whole state in the background; answers 202 with the job, whose
//! result names the file (`GET /api/v1/admin/jobs/{id}`).

use axum::extract::State;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::AdminAuth;
use super::{AppState, admin_jobs, problem};

/// This module's routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create))
}

/// `POST /api/v1/admin/snapshots`: 202 with the job (`kind: "snapshot"`), whose result
/// is a `SnapshotReport` (file, sequence, size, counts, upload); 409 `CONFLICT` while
/// another snapshot is being written; 503 `STORAGE_UNAVAILABLE` when it cannot run now
/// (checkpoints failing, not enough disk space).
#[utoipa::path(
    post,
    path = "/api/v1/admin/snapshots",
    tag = "admin: engine",
    summary = "Write a snapshot of the whole state (a job)",
    operation_id = "create_snapshot",
    security(("bearer" = ["admin"])),
    responses(
        (status = 202, description = "The job; its result is a SnapshotReport (file, seq, bytes, counts, uploaded)", body = crate::engine::jobs::JobView),
        (status = 409, description = "`CONFLICT`: another snapshot is being written"),
        (status = 503, description = "`STORAGE_UNAVAILABLE`: checkpoints keep failing, or the disk lacks the space a snapshot needs"),
    )
)]
pub async fn create(State(state): State<AppState>, AdminAuth(caller): AdminAuth) -> Response {
    match state.engine.start_snapshot_job(&caller.player.id) {
        Ok(view) => admin_jobs::accepted(&view),
        Err(e) => problem(e),
    }
}
