//! `POST /api/v1/admin/reconcile` (srs.md "Reconciliation"): starts a sampled
//! comparison of memory, redb and the mirror as a background job (api.md: 202 + job).

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::engine::jobs::JobOutput;
use crate::engine::reconcile::{ReconcileRequest, check_sample_size};

use super::extract::{AdminAuth, check_json_content_type, parse_json};
use super::{AppState, admin_jobs, problem};

/// This module's routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(start))
}

/// `POST /api/v1/admin/reconcile {sample_size?}` → 202 with the job; its result is the
/// report `{sample_size, discrepancies_found, discrepancy_rate, auto_corrected,
/// alert_triggered, …}`. An empty body uses `reconcile.sample_size`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/reconcile",
    tag = "admin: engine",
    summary = "Compare a sample of memory, redb and the mirror; fix the mirror (a job)",
    security(("bearer" = ["admin"])),
    request_body(content = ReconcileRequest, description = "Optional; `{}` or empty uses the configured sample size"),
    responses(
        (status = 202, description = "The job; its result is a ReconcileReport", body = crate::engine::jobs::JobView),
        (status = 422, description = "`VALIDATION_FAILED`: sample_size outside 1–1,000,000"),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    AdminAuth(caller): AdminAuth,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let request = if body.is_empty() {
        ReconcileRequest::default()
    } else {
        if let Err(e) = check_json_content_type(&headers) {
            return problem(e);
        }
        match parse_json::<ReconcileRequest>(&body) {
            Ok(r) => r,
            Err(e) => return problem(e),
        }
    };
    if let Err(e) = check_sample_size(request.sample_size) {
        return problem(e);
    }
    let engine = state.engine.clone();
    let view =
        state
            .engine
            .jobs()
            .spawn("reconcile", &caller.player.id, move |handle| async move {
                let report = engine.reconcile(request.sample_size, Some(&handle)).await?;
                Ok(JobOutput::of(report))
            });
    admin_jobs::accepted(&view)
}
