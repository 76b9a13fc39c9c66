//! Admin SRS routes: seasons (`POST|GET /api/v1/admin/seasons`, `GET|PATCH
//! /api/v1/admin/seasons/{id}`) and a player's cards (`GET
//! /api/v1/admin/players/{id}/cards`), srs.md.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::engine::seasons::{NewSeason, SeasonPatch, SeasonView};
use crate::engine::srs_reviews::CardFilter;
use crate::error::ApiError;
use crate::srs::CardState;

use super::extract::{AdminAuth, StaffAuth, StrictJson};
use super::{AppState, detached, json, problem};

/// `POST /api/v1/admin/seasons` (201).
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

/// `GET /api/v1/admin/seasons` (R).
pub async fn list(State(state): State<AppState>, _: StaffAuth) -> Response {
    let items: Vec<SeasonView> = state.engine.seasons().iter().map(SeasonView::of).collect();
    json(
        StatusCode::OK,
        &serde_json::json!({"items": items, "next_cursor": null}),
    )
}

/// `GET /api/v1/admin/seasons/{id}` (R).
pub async fn get(State(state): State<AppState>, _: StaffAuth, Path(id): Path<String>) -> Response {
    match state.engine.season(&id) {
        Ok(r) => json(StatusCode::OK, &SeasonView::of(&r)),
        Err(e) => problem(e),
    }
}

/// `PATCH /api/v1/admin/seasons/{id}`.
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
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

/// `GET /api/v1/admin/players/{id}/cards` (R: a teacher reads the students of their
/// groups).
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
