//! Admin player routes of listing and privacy (api.md "Admin … players", players.md
//! "Privacy"): `GET /api/v1/admin/players` (filtered, paginated), `GET
//! /api/v1/admin/players/{id}/export`, `DELETE /api/v1/admin/players/{id}` (erasure) and
//! `POST /api/v1/admin/players/{id}/progress/reset`. Thin: parse, call the engine, render.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::engine::privacy::{PlayerFilter, ResetBody};
use crate::error::ApiError;
use crate::players::account::Role;

use super::extract::{AdminAuth, StaffAuth, StrictJson};
use super::{AppState, detached, json, problem};

/// The routes of this module (merged into the main table; the list and the erasure share
/// their paths with other methods there).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_players))
        .routes(routes!(erase_player))
        .routes(routes!(export_player))
        .routes(routes!(reset_progress))
}

/// `GET /api/v1/admin/players` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PlayerParams {
    /// Only this plan.
    pub plan_id: Option<String>,
    /// Only this grade.
    pub grade: Option<String>,
    /// `student`, `teacher` or `admin`.
    pub role: Option<String>,
    /// `true` or `false`.
    pub disabled: Option<String>,
    /// Substring of the email or display name (case-insensitive).
    pub q: Option<String>,
    /// 1–500, default 50.
    pub limit: Option<String>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

fn player_filter(p: PlayerParams) -> Result<PlayerFilter, ApiError> {
    let mut problems = Vec::new();
    let limit = match p.limit.as_deref().map(str::parse::<usize>) {
        None => 50,
        Some(Ok(n)) if (1..=500).contains(&n) => n,
        Some(_) => {
            problems.extend(ApiError::field("/limit", "must be an integer from 1 to 500").errors);
            50
        }
    };
    let role = match p.role.as_deref() {
        None => None,
        Some("student") => Some(Role::Student),
        Some("teacher") => Some(Role::Teacher),
        Some("admin") => Some(Role::Admin),
        Some(_) => {
            problems.extend(ApiError::field("/role", "must be student, teacher or admin").errors);
            None
        }
    };
    let disabled = match p.disabled.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            problems.extend(ApiError::field("/disabled", "must be true or false").errors);
            None
        }
    };
    let after = match p.cursor.as_deref() {
        None => None,
        Some(c) => {
            let id = hex::decode(c).ok().and_then(|b| String::from_utf8(b).ok());
            if id.is_none() {
                problems.extend(ApiError::field("/cursor", "not a cursor of this listing").errors);
            }
            id
        }
    };
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    Ok(PlayerFilter {
        plan_id: p.plan_id,
        grade: p.grade,
        role,
        disabled,
        q: p.q.filter(|q| !q.is_empty()),
        limit,
        after,
    })
}

/// `GET /api/v1/admin/players?plan_id=&grade=&role=&disabled=&q=&limit=&cursor=` →
/// `{items, next_cursor}`, ordered by id.
#[utoipa::path(
    get,
    path = "/api/v1/admin/players",
    tag = "admin: players",
    summary = "List players (filters, pagination)",
    security(("bearer" = ["admin"]), ("bearer" = ["teacher"])),
    params(PlayerParams),
    responses(
        (status = 200, description = "`{items, next_cursor}`", body = Object),
        (status = 422, description = "`VALIDATION_FAILED`: a bad filter, limit or cursor"),
    )
)]
pub async fn list_players(
    State(state): State<AppState>,
    StaffAuth(_, scope): StaffAuth,
    query: Result<Query<PlayerParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return problem(ApiError::field("", "unknown or malformed query parameters"));
    };
    match player_filter(q) {
        Ok(filter) => {
            let mut page = state.engine.list_players(&filter);
            // A teacher sees the students of their groups only.
            page.items.retain(|p| scope.allows(&p.id));
            // Opaque to clients: the last id, hex-encoded.
            page.next_cursor = page.next_cursor.map(hex::encode);
            json(StatusCode::OK, &page)
        }
        Err(e) => problem(e),
    }
}

/// `GET /api/v1/admin/players/{id}/export`: everything stored about the player (JSON).
#[utoipa::path(
    get,
    path = "/api/v1/admin/players/{id}/export",
    tag = "admin: players",
    summary = "Everything stored about a player (privacy export)",
    security(("bearer" = ["admin"]), ("bearer" = ["teacher"])),
    params(("id" = String, Path, description = "Player id")),
    responses(
        (status = 200, description = "The export", body = Object),
        (status = 404, description = "`NOT_FOUND`: no such player"),
    )
)]
pub async fn export_player(
    State(state): State<AppState>,
    StaffAuth(_, scope): StaffAuth,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = scope.check(&id) {
        return problem(e);
    }
    match state.engine.export_player(&id).await {
        Ok(export) => json(StatusCode::OK, &export),
        Err(e) => problem(e),
    }
}

/// `DELETE /api/v1/admin/players/{id}`: erase the player (personal data, devices and
/// sessions deleted; progress kept anonymised).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/players/{id}",
    tag = "admin: players",
    summary = "Erase a player (personal data deleted, progress anonymised)",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Player id")),
    responses(
        (status = 200, description = "What was erased", body = Object),
        (status = 404, description = "`NOT_FOUND`: no such player"),
        (status = 409, description = "`CONFLICT`: yourself or the last enabled admin"),
    )
)]
pub async fn erase_player(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    Path(id): Path<String>,
) -> Response {
    let engine = state.engine.clone();
    match detached(async move { engine.erase_player(&id, &admin).await }).await {
        Ok(view) => json(StatusCode::OK, &view),
        Err(e) => problem(e),
    }
}

/// `POST /api/v1/admin/players/{id}/progress/reset` `{subject_id, reason}`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/players/{id}/progress/reset",
    tag = "admin: players",
    summary = "Reset a player's progress in one subject (audited)",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Player id")),
    request_body = ResetBody,
    responses(
        (status = 200, description = "The reset", body = Object),
        (status = 404, description = "`NOT_FOUND`: no such player"),
        (status = 422, description = "`VALIDATION_FAILED` or `INVALID_SUBJECT`"),
    )
)]
pub async fn reset_progress(
    State(state): State<AppState>,
    AdminAuth(_): AdminAuth,
    Path(id): Path<String>,
    StrictJson(body): StrictJson<ResetBody>,
) -> Response {
    let engine = state.engine.clone();
    match detached(async move { engine.reset_progress(&id, &body).await }).await {
        Ok(view) => json(StatusCode::OK, &view),
        Err(e) => problem(e),
    }
}
