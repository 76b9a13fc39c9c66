//! Admin routes of the foundation: content import/read/delete, player creation and read,
//! an on-demand checkpoint (api.md "Admin").

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, put};

use crate::engine::accounts::{NewPlayer, PlayerView};
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

/// `PUT|GET|DELETE /api/v1/admin/{subjects,plans}/{id}`: import or replace (201/200),
/// read the stored document (R: teachers too), delete (409 while still in use).
pub fn document_routes(kind: DocKind) -> MethodRouter<AppState> {
    put(
        move |State(state): State<AppState>,
              _: AdminAuth,
              Path(id): Path<String>,
              headers: HeaderMap,
              body: Bytes| async move {
            if let Err(e) = check_json_content_type(&headers) {
                return problem(e);
            }
            let engine = state.engine.clone();
            put_answer(
                detached(async move { engine.put_document(kind, Some(&id), &body).await }).await,
            )
        },
    )
    .get(
        move |State(state): State<AppState>, _: StaffAuth, Path(id): Path<String>| async move {
            match state.engine.document(kind, &id) {
                Ok(doc) => json_bytes(StatusCode::OK, doc),
                Err(e) => problem(e),
            }
        },
    )
    .delete(
        move |State(state): State<AppState>, _: AdminAuth, Path(id): Path<String>| async move {
            let engine = state.engine.clone();
            match detached(async move { engine.delete_document(kind, &id).await }).await {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => problem(e),
            }
        },
    )
}

/// `POST /api/v1/admin/players`: create a player (201).
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

/// `GET /api/v1/admin/players/{id}` (R: a teacher reads the students of their groups).
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
pub async fn checkpoint(State(state): State<AppState>, AdminAuth(_): AdminAuth) -> Response {
    let engine = state.engine.clone();
    match tokio::task::spawn_blocking(move || engine.checkpoint(true, true)).await {
        Ok(Ok(report)) => json(StatusCode::OK, &report),
        Ok(Err(e)) => problem(ApiError::storage(e)),
        Err(e) => problem(ApiError::internal(e)),
    }
}
