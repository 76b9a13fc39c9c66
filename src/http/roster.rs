//! `POST /api/v1/admin/players/import` (api.md, players.md): a CSV roster, dry run by
//! default (200 with the per-row report), applied with `?commit=true` as a background
//! job (202 with the job; `GET /api/v1/admin/jobs/{id}` shows progress in rows and the
//! result, generated passwords once to the admin who started it). The commit accepts an
//! `Idempotency-Key`; its stored answer is the finished job with passwords redacted.

use axum::extract::{Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::engine::accounts::rfc3339;
use crate::engine::audit;
use crate::engine::jobs::{JobOutput, JobState};
use crate::engine::roster::{IdemAnswer, file_sha};
use crate::engine::roster_report::DryRunReport;
use crate::error::{ApiError, Code};

use super::admin_jobs::accepted;
use super::extract::AdminAuth;
use super::reviews::{Idempotent, idempotent};
use super::{AppState, json, problem};

/// This module's routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(import))
}

/// `POST /api/v1/admin/players/import` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// `true` (or `1`) applies the roster; absent, `false` or `0` is a dry run.
    #[param(value_type = Option<bool>)]
    pub commit: Option<String>,
}

fn check_csv_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "text/csv" || mime == "application/csv" {
        Ok(())
    } else {
        Err(ApiError {
            status: Some(415),
            ..ApiError::new(
                Code::ValidationFailed,
                format!("send the roster as Content-Type: text/csv (got `{ct}`)"),
            )
        })
    }
}

/// `POST /api/v1/admin/players/import[?commit=true]` with a `text/csv` body (up to
/// `http.admin_body_limit_bytes`).
#[utoipa::path(
    post,
    path = "/api/v1/admin/players/import",
    operation_id = "import_roster",
    tag = "admin: players",
    summary = "Import students from a CSV roster (dry run by default; commit as a job)",
    security(("bearer" = ["admin"])),
    params(
        ImportParams,
        ("Idempotency-Key" = Option<String>, Header, description = "Commit only: 1–255 printable ASCII characters; a retry with the same key and file gets the first answer (the finished job, passwords redacted)"),
    ),
    request_body(
        content = String,
        content_type = "text/csv",
        description = "Header row (`email`, `display_name`; optional `plan_id`, `grade`, \
                       `stream`, `timezone`, `password`, `reset_password`), one student per row"
    ),
    responses(
        (status = 200, description = "The dry run: per row what would happen, and every problem; nothing changed", body = DryRunReport),
        (status = 202, description = "The commit's job; its result is the commit report (generated passwords shown once to the admin who started it)", body = crate::engine::jobs::JobView),
        (status = 409, description = "`CONFLICT`: the same Idempotency-Key is in flight"),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: over `http.admin_body_limit_bytes`"),
        (status = 415, description = "`VALIDATION_FAILED`: the content type is not text/csv"),
        (status = 422, description = "`VALIDATION_FAILED`, `IDEMPOTENCY_KEY_REUSED`: a bad `commit` value, or (commit) every problem of the roster as `/rows/{row}/{column}`; an Idempotency-Key used with another file"),
        (status = 503, description = "`STORAGE_UNAVAILABLE`: writes are paused (degraded mode); nothing was imported"),
    )
)]
pub async fn import(
    State(state): State<AppState>,
    AdminAuth(caller): AdminAuth,
    query: Result<Query<ImportParams>, axum::extract::rejection::QueryRejection>,
    uri: Uri,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let commit = match query {
        Ok(Query(ImportParams { commit: None })) => false,
        Ok(Query(ImportParams { commit: Some(v) })) => match v.as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return problem(ApiError::field("/commit", "must be true or false")),
        },
        Err(_) => return problem(ApiError::field("", "the only query parameter is `commit`")),
    };
    if let Err(e) = check_csv_content_type(&headers) {
        return problem(e);
    }
    let limit = state.engine.config().http.admin_body_limit_bytes;
    let bytes = match axum::body::to_bytes(request.into_body(), limit).await {
        Ok(b) => b,
        Err(_) => {
            return problem(ApiError::new(
                Code::PayloadTooLarge,
                format!("the roster is larger than {limit} bytes (http.admin_body_limit_bytes)"),
            ));
        }
    };
    let engine = state.engine.clone();
    let by = caller.player.id.clone();
    if !commit {
        let body = bytes.clone();
        return match tokio::task::spawn_blocking(move || engine.roster_dry_run(&body, &by)).await {
            Ok(report) => json(StatusCode::OK, &report),
            Err(e) => problem(ApiError::internal(e)),
        };
    }
    // Degraded mode answers 503 now rather than from a job.
    if let Err(e) = engine.check_writable() {
        return problem(e);
    }
    let Idempotent { request, guard } =
        match idempotent(&state, &caller.player.id, &uri, &headers, &bytes) {
            Ok(i) => i,
            Err(response) => return *response,
        };
    let checked = {
        let engine = engine.clone();
        let body = bytes.clone();
        tokio::task::spawn_blocking(move || engine.roster_validate(&body)).await
    };
    let parsed = match checked {
        Ok(Ok(parsed)) => std::sync::Arc::new(parsed),
        Ok(Err(e)) => return problem(e),
        Err(e) => return problem(ApiError::internal(e)),
    };
    let sha = file_sha(&bytes);
    let total = parsed.rows.len() as u64;
    // The commit is an audited admin action: the job journals its records with the
    // request's context (client IP, endpoint, acting admin).
    let ctx = audit::current();
    let view = state
        .engine
        .jobs()
        .spawn("roster_import", &caller.player.id, move |handle| {
            audit::scope(ctx, async move {
                handle.set_total(total);
                let idem = request.map(|request| {
                    let jobs = engine.jobs().clone();
                    let id = handle.id().to_owned();
                    let clock = engine.clone();
                    IdemAnswer {
                        request,
                        // The replay answer: this job as it reads once finished, with the
                        // passwords redacted.
                        answer: Box::new(move |report| {
                            let body = jobs.read(&id, "").map(|mut view| {
                                view.state = JobState::Done;
                                view.progress.done = total;
                                view.result =
                                    serde_json::to_value(report).unwrap_or(serde_json::Value::Null);
                                view.finished_at = Some(rfc3339(clock.now().as_millisecond()));
                                serde_json::to_vec(&view).unwrap_or_default()
                            });
                            (202, body.unwrap_or_default())
                        }),
                    }
                });
                let progress = {
                    let handle = handle.clone();
                    move |n: u64| handle.advance(n)
                };
                let result = engine
                    .roster_commit(parsed, sha, &by, idem, &progress)
                    .await;
                drop(guard);
                let report = result?;
                // A result of 10,000 rows is megabytes of JSON: not on the async threads.
                tokio::task::spawn_blocking(move || {
                    let result =
                        serde_json::to_value(report.redacted()).map_err(ApiError::internal)?;
                    let reveal_once = if report.generated_passwords.is_empty() {
                        None
                    } else {
                        Some(serde_json::to_value(&report).map_err(ApiError::internal)?)
                    };
                    Ok(JobOutput {
                        result,
                        reveal_once,
                    })
                })
                .await
                .map_err(ApiError::internal)?
            })
        });
    accepted(&view)
}
