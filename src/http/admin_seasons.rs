//! Admin SRS routes: seasons (`POST|GET /api/v1/admin/seasons`, `GET|PATCH
//! /api/v1/admin/seasons/{id}`) and a player's cards (`GET
//! /api/v1/admin/players/{id}/cards`), srs.md.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::engine::seasons::{NewSeason, SeasonPatch, SeasonView};
use crate::engine::srs_reviews::{CardFilter, CardsPage};
use crate::error::ApiError;
use crate::srs::CardState;

use super::extract::{AdminAuth, StaffAuth, StrictJson};
use super::{AppState, detached, json, problem};

/// `POST /api/v1/admin/seasons` (201).
#[utoipa::path(
    post,
    path = "/api/v1/admin/seasons",
    operation_id = "create_season",
    tag = "admin: seasons",
    summary = "Create a season",
    security(("bearer" = ["admin"])),
    request_body = NewSeason,
    responses(
        (status = 201, description = "Created", body = SeasonView),
        (status = 409, description = "`CONFLICT`: the id exists, or another season is active"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    AdminAuth(_): AdminAuth,
    StrictJson(body): StrictJson<NewSeason>,
) -> Response {
    let engine = state.engine.clone();
    match detached(async move { engine.create_season(body).await }).await {
        Ok(r) => json(StatusCode::CREATED, &SeasonView::of(&r)),
        Err(e) => problem(e),
    }
}

/// `GET /api/v1/admin/seasons` answer (one page holds every season).
#[derive(Debug, Serialize, ToSchema)]
pub struct SeasonList {
    /// The seasons.
    pub items: Vec<SeasonView>,
    /// Always null: seasons fit one page.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/admin/seasons`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/seasons",
    operation_id = "list_seasons",
    tag = "admin: seasons",
    summary = "List the seasons",
    security(("bearer" = ["admin"]), ("bearer" = ["teacher"])),
    responses((status = 200, description = "The seasons", body = SeasonList))
)]
pub async fn list(State(state): State<AppState>, _: StaffAuth) -> Response {
    let items: Vec<SeasonView> = state.engine.seasons().iter().map(SeasonView::of).collect();
    json(
        StatusCode::OK,
        &SeasonList {
            items,
            next_cursor: None,
        },
    )
}

/// `GET /api/v1/admin/seasons/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/seasons/{id}",
    operation_id = "get_season",
    tag = "admin: seasons",
    summary = "Read a season",
    security(("bearer" = ["admin"]), ("bearer" = ["teacher"])),
    params(("id" = String, Path, description = "Season id")),
    responses(
        (status = 200, description = "The season", body = SeasonView),
        (status = 404, description = "`NOT_FOUND`: no such season"),
    )
)]
pub async fn get(State(state): State<AppState>, _: StaffAuth, Path(id): Path<String>) -> Response {
    match state.engine.season(&id) {
        Ok(r) => json(StatusCode::OK, &SeasonView::of(&r)),
        Err(e) => problem(e),
    }
}

/// `PATCH /api/v1/admin/seasons/{id}`.
#[utoipa::path(
    patch,
    path = "/api/v1/admin/seasons/{id}",
    operation_id = "patch_season",
    tag = "admin: seasons",
    summary = "Edit or (de)activate a season",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Season id")),
    request_body = SeasonPatch,
    responses(
        (status = 200, description = "The season after the change", body = SeasonView),
        (status = 404, description = "`NOT_FOUND`: no such season"),
        (status = 409, description = "`CONFLICT`: another season is active"),
    )
)]
pub async fn patch(
    State(state): State<AppState>,
    AdminAuth(_): AdminAuth,
    Path(id): Path<String>,
    StrictJson(body): StrictJson<SeasonPatch>,
) -> Response {
    let engine = state.engine.clone();
    match detached(async move { engine.patch_season(&id, body).await }).await {
        Ok(r) => json(StatusCode::OK, &SeasonView::of(&r)),
        Err(e) => problem(e),
    }
}

/// `GET /api/v1/admin/players/{id}/cards` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CardParams {
    /// Season (default: the active one).
    pub season_id: Option<String>,
    /// Only this subject.
    pub subject_id: Option<String>,
    /// `learning`, `review` or `relearning`.
    pub state: Option<String>,
    /// `true`: only cards due now.
    pub due: Option<String>,
    /// 1–500, default 50.
    pub limit: Option<String>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

fn card_filter(q: CardParams) -> Result<CardFilter, ApiError> {
    let limit = match q.limit.as_deref().map(str::parse::<usize>) {
        None => 50,
        Some(Ok(n)) if (1..=500).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::field(
                "/limit",
                "must be an integer from 1 to 500",
            ));
        }
    };
    let state = match q.state.as_deref() {
        None => None,
        Some("learning") => Some(CardState::Learning),
        Some("review") => Some(CardState::Review),
        Some("relearning") => Some(CardState::Relearning),
        Some(_) => {
            return Err(ApiError::field(
                "/state",
                "must be learning, review or relearning",
            ));
        }
    };
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            hex::decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::field("/cursor", "not a cursor of this listing"))?,
        ),
    };
    Ok(CardFilter {
        season_id: q.season_id,
        subject_id: q.subject_id,
        state,
        due_only: q.due.as_deref() == Some("true"),
        limit,
        after,
    })
}

/// `GET /api/v1/admin/players/{id}/cards`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/players/{id}/cards",
    tag = "admin: seasons",
    summary = "Every card of a player in a season, with its full state (paginated)",
    security(("bearer" = ["admin"]), ("bearer" = ["teacher"])),
    params(("id" = String, Path, description = "Player id"), CardParams),
    responses(
        (status = 200, description = "One page of cards", body = CardsPage),
        (status = 404, description = "`NOT_FOUND`: no such player"),
        (status = 409, description = "`NO_ACTIVE_SEASON`: no season given and none is active"),
        (status = 422, description = "`VALIDATION_FAILED`: an unknown or malformed query parameter"),
    )
)]
pub async fn player_cards(
    State(state): State<AppState>,
    StaffAuth(_, scope): StaffAuth,
    Path(id): Path<String>,
    query: Result<Query<CardParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(e) = scope.check(&id) {
        return problem(e);
    }
    let Ok(Query(q)) = query else {
        return problem(ApiError::field("", "unknown or malformed query parameters"));
    };
    let filter = match card_filter(q) {
        Ok(f) => f,
        Err(e) => return problem(e),
    };
    match state.engine.player_cards(&id, &filter) {
        Ok(mut page) => {
            // The cursor is opaque to clients: the last question id, hex-encoded.
            page.next_cursor = page.next_cursor.map(hex::encode);
            json(StatusCode::OK, &page)
        }
        Err(e) => problem(e),
    }
}
