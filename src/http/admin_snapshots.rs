//! `POST /api/v1/admin/snapshots` (api.md "Admin", persistence.md "Snapshots"): writes a
//! snapshot of the whole state in the background; answers 202 with the job, whose
//! result names the file (`GET /api/v1/admin/jobs/{id}`).

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;

use super::extract::AdminAuth;
use super::{AppState, admin_jobs, problem};

/// This module's routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/admin/snapshots", post(create))
}

/// `POST /api/v1/admin/snapshots`: 202 with the job (`kind: "snapshot"`); 409
/// `CONFLICT` while another snapshot is being written.
pub async fn create(State(state): State<AppState>, AdminAuth(caller): AdminAuth) -> Response {
    match state.engine.start_snapshot_job(&caller.player.id) {
        Ok(view) => admin_jobs::accepted(&view),
        Err(e) => problem(e),
    }
}
