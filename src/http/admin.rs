//! Admin routes of the foundation: content import/read/delete, player creation and read,
//! an on-demand checkpoint (api.md "Admin").

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::engine::accounts::{NewPlayer, PlayerView};
use crate::engine::checkpoint::CheckpointReport;
use crate::engine::content_ops::{DocKind, PutOutcome};
use crate::error::{ApiError, Code};

use super::extract::{AdminAuth, StaffAuth, StrictJson, check_json_content_type};
use super::{AppState, detached, json, json_bytes, problem};

fn put_answer(result: Result<PutOutcome, ApiError>) -> Response {
    match result {
        Ok(outcome) => json(
            if outcome.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            &outcome,
        ),
        Err(e) => problem(e),
    }
}

async fn put_document(
    state: AppState,
    kind: DocKind,
    id: String,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = check_json_content_type(&headers) {
        return problem(e);
    }
    let engine = state.engine.clone();
    put_answer(detached(async move { engine.put_document(kind, Some(&id), &body).await }).await)
}

fn get_document(state: &AppState, kind: DocKind, id: &str) -> Response {
    match state.engine.document(kind, id) {
        Ok(doc) => json_bytes(StatusCode::OK, doc),
        Err(e) => problem(e),
    }
}

async fn delete_document(state: AppState, kind: DocKind, id: String) -> Response {
    let engine = state.engine.clone();
    match detached(async move { engine.delete_document(kind, &id).await }).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => problem(e),
    }
}

/// `PUT /api/v1/admin/subjects/{id}`: import or replace a subject (201/200).
#[utoipa::path(
    put,
    path = "/api/v1/admin/subjects/{id}",
    tag = "admin: content",
    summary = "Import or replace a subject",
    description = "A `memora.subject/v1` document (content.md); every problem of the \
document is reported at once (422 with `errors`). The body limit is \
`http.admin_body_limit_bytes`.",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Subject id; must equal the document's `id`")),
    request_body(content = Object, description = "A `memora.subject/v1` document (content.md)"),
    responses(
        (status = 200, description = "Replaced", body = PutOutcome),
        (status = 201, description = "Created", body = PutOutcome),
    )
)]
pub async fn put_subject(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    put_document(state, DocKind::Subject, id, headers, body).await
}

/// `GET /api/v1/admin/subjects/{id}`: the stored document.
#[utoipa::path(
    get,
    path = "/api/v1/admin/subjects/{id}",
    tag = "admin: content",
    summary = "Read a subject document",
    security(("bearer" = ["admin"]), ("bearer" = ["teacher"])),
    params(("id" = String, Path, description = "Subject id")),
    responses(
        (status = 200, description = "The stored `memora.subject/v1` document", body = Object),
        (status = 404, description = "`NOT_FOUND`: no such subject"),
    )
)]
pub async fn get_subject(
    State(state): State<AppState>,
    _: StaffAuth,
    Path(id): Path<String>,
) -> Response {
    get_document(&state, DocKind::Subject, &id)
}

/// `DELETE /api/v1/admin/subjects/{id}` (409 while a plan uses it).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/subjects/{id}",
    tag = "admin: content",
    summary = "Delete a subject",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Subject id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`NOT_FOUND`: no such subject"),
        (status = 409, description = "`CONFLICT`: a plan still includes it"),
    )
)]
pub async fn delete_subject(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Response {
    delete_document(state, DocKind::Subject, id).await
}

/// `PUT /api/v1/admin/plans/{id}`: import or replace a plan (201/200).
#[utoipa::path(
    put,
    path = "/api/v1/admin/plans/{id}",
    tag = "admin: content",
    summary = "Import or replace a plan",
    description = "A `memora.plan/v1` document (content.md); every problem is reported at \
once (422 with `errors`).",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Plan id; must equal the document's `id`")),
    request_body(content = Object, description = "A `memora.plan/v1` document (content.md)"),
    responses(
        (status = 200, description = "Replaced", body = PutOutcome),
        (status = 201, description = "Created", body = PutOutcome),
    )
)]
pub async fn put_plan(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    put_document(state, DocKind::Plan, id, headers, body).await
}

/// `GET /api/v1/admin/plans/{id}`: the stored document.
#[utoipa::path(
    get,
    path = "/api/v1/admin/plans/{id}",
    tag = "admin: content",
    summary = "Read a plan document",
    security(("bearer" = ["admin"]), ("bearer" = ["teacher"])),
    params(("id" = String, Path, description = "Plan id")),
    responses(
        (status = 200, description = "The stored `memora.plan/v1` document", body = Object),
        (status = 404, description = "`NOT_FOUND`: no such plan"),
    )
)]
pub async fn get_plan(
    State(state): State<AppState>,
    _: StaffAuth,
    Path(id): Path<String>,
) -> Response {
    get_document(&state, DocKind::Plan, &id)
}

/// `DELETE /api/v1/admin/plans/{id}` (409 while students are assigned to it).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/plans/{id}",
    tag = "admin: content",
    summary = "Delete a plan",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Plan id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`NOT_FOUND`: no such plan"),
        (status = 409, description = "`CONFLICT`: students are assigned to it"),
    )
)]
pub async fn delete_plan(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Response {
    delete_document(state, DocKind::Plan, id).await
}

/// `POST /api/v1/admin/players`: create a player (201).
#[utoipa::path(
    post,
    path = "/api/v1/admin/players",
    tag = "admin: players",
    summary = "Create a player",
    security(("bearer" = ["admin"])),
    request_body = NewPlayer,
    responses(
        (status = 201, description = "Created", body = PlayerView),
        (status = 409, description = "`CONFLICT`: the email is taken"),
    )
)]
pub async fn create_player(
    State(state): State<AppState>,
    AdminAuth(_): AdminAuth,
    StrictJson(body): StrictJson<NewPlayer>,
) -> Response {
    let engine = state.engine.clone();
    match detached(async move { engine.create_player(body).await }).await {
        Ok(view) => json(StatusCode::CREATED, &view),
        Err(e) => problem(e),
    }
}

/// `GET /api/v1/admin/players/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/players/{id}",
    tag = "admin: players",
    summary = "Read a player",
    security(("bearer" = ["admin"]), ("bearer" = ["teacher"])),
    params(("id" = String, Path, description = "Player id")),
    responses(
        (status = 200, description = "The player", body = PlayerView),
        (status = 404, description = "`NOT_FOUND`: no such player"),
    )
)]
pub async fn get_player(
    State(state): State<AppState>,
    StaffAuth(_, scope): StaffAuth,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = scope.check(&id) {
        return problem(e);
    }
    match state.engine.player(&id) {
        Some(p) => json(StatusCode::OK, &PlayerView::of(&p)),
        None => problem(ApiError::new(Code::NotFound, format!("no player `{id}`"))),
    }
}

/// `POST /api/v1/admin/checkpoint`: write a checkpoint of every stream now.
#[utoipa::path(
    post,
    path = "/api/v1/admin/checkpoint",
    tag = "admin: engine",
    summary = "Write a checkpoint now",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "What the checkpoint wrote", body = CheckpointReport))
)]
pub async fn checkpoint(State(state): State<AppState>, AdminAuth(_): AdminAuth) -> Response {
    let engine = state.engine.clone();
    match tokio::task::spawn_blocking(move || engine.checkpoint(true, true)).await {
        Ok(Ok(report)) => json(StatusCode::OK, &report),
        Ok(Err(e)) => problem(ApiError::storage(e)),
        Err(e) => problem(ApiError::internal(e)),
    }
}
