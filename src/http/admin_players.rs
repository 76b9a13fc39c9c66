//! Player management routes (api.md "Admin … players"): devices, "log out everywhere",
//! edits, password reset, grants, XP adjustment — and the caller's own password change
//! (`POST /api/v1/auth/password`). Thin: parse, call the engine, render.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::engine::accounts::PlayerView;
use crate::engine::admin_players::{NewDevice, PlayerPatch};
use crate::error::ApiError;

use super::extract::{AdminAuth, Auth, StaffAuth, StrictJson};
use super::{AppState, detached, json, problem};

fn answer<T: serde::Serialize>(status: StatusCode, result: Result<T, ApiError>) -> Response {
    match result {
        Ok(value) => json(status, &value),
        Err(e) => problem(e),
    }
}

/// `GET /api/v1/admin/players/{id}/devices` (R: a teacher reads the students of their
/// groups).
pub async fn list_devices(
    State(state): State<AppState>,
    StaffAuth(_, scope): StaffAuth,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = scope.check(&id) {
        return problem(e);
    }
    answer(
        StatusCode::OK,
        state
            .engine
            .list_devices(&id)
            .map(|devices| serde_json::json!({ "devices": devices })),
    )
}

/// `POST /api/v1/admin/players/{id}/devices` `{device_id, device_name}` → 201.
pub async fn add_device(
    State(state): State<AppState>,
    AdminAuth(_): AdminAuth,
    Path(id): Path<String>,
    StrictJson(body): StrictJson<NewDevice>,
) -> Response {
    let engine = state.engine.clone();
    answer(
        StatusCode::CREATED,
        detached(async move { engine.add_device(&id, body).await }).await,
    )
}

/// `DELETE /api/v1/admin/players/{id}/devices/{device_id}` → 204; ends the sessions
/// bound to the device.
pub async fn remove_device(
    State(state): State<AppState>,
    AdminAuth(_): AdminAuth,
    Path((id, device_id)): Path<(String, String)>,
) -> Response {
    let engine = state.engine.clone();
    match detached(async move { engine.remove_device(&id, &device_id).await }).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => problem(e),
    }
}

/// `POST /api/v1/admin/players/{id}/logout`: end every session → `{sessions_ended}`.
pub async fn logout_everywhere(
    State(state): State<AppState>,
    AdminAuth(_): AdminAuth,
    Path(id): Path<String>,
) -> Response {
    let engine = state.engine.clone();
    answer(
        StatusCode::OK,
        detached(async move { engine.logout_everywhere(&id).await })
            .await
            .map(|n| serde_json::json!({ "sessions_ended": n })),
    )
}

/// `PATCH /api/v1/admin/players/{id}`.
pub async fn patch_player(
    State(state): State<AppState>,
    AdminAuth(_): AdminAuth,
    Path(id): Path<String>,
    StrictJson(body): StrictJson<PlayerPatch>,
) -> Response {
    let engine = state.engine.clone();
    answer(
        StatusCode::OK,
        detached(async move { engine.patch_player(&id, body).await }).await,
    )
}

/// `POST /api/v1/admin/players/{id}/password-reset` → `{password, must_change_password}`;
/// the generated password is shown this once.
pub async fn reset_password(
    State(state): State<AppState>,
    AdminAuth(_): AdminAuth,
    Path(id): Path<String>,
) -> Response {
    let engine = state.engine.clone();
    answer(
        StatusCode::OK,
        detached(async move { engine.reset_password(&id).await })
            .await
            .map(
                |password| serde_json::json!({"password": password, "must_change_password": true}),
            ),
    )
}

/// `PUT /api/v1/admin/players/{id}/grants` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantsBody {
    /// The complete new set of item codes.
    pub grants: Vec<String>,
}

/// `PUT /api/v1/admin/players/{id}/grants` → the player.
pub async fn put_grants(
    State(state): State<AppState>,
    AdminAuth(_): AdminAuth,
    Path(id): Path<String>,
    StrictJson(body): StrictJson<GrantsBody>,
) -> Response {
    let engine = state.engine.clone();
    answer::<PlayerView>(
        StatusCode::OK,
        detached(async move { engine.put_grants(&id, body.grants).await }).await,
    )
}

/// `POST /api/v1/admin/players/{id}/xp` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XpBody {
    /// −100000…100000, not 0.
    pub amount: i64,
    /// Why (1–500 characters), kept in the journal for the audit.
    pub reason: String,
}

/// `POST /api/v1/admin/players/{id}/xp` → `{player_id, amount, total_xp}`.
pub async fn adjust_xp(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    Path(id): Path<String>,
    StrictJson(body): StrictJson<XpBody>,
) -> Response {
    let engine = state.engine.clone();
    let player = id.clone();
    answer(
        StatusCode::OK,
        detached(async move { engine.adjust_xp(&id, body.amount, &body.reason, &admin).await })
            .await
            .map(|total| serde_json::json!({"player_id": player, "amount": body.amount, "total_xp": total})),
    )
}

/// `POST /api/v1/auth/password` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    /// The password in use.
    pub current_password: String,
    /// The new one (8–256 characters).
    pub new_password: String,
}

impl std::fmt::Debug for PasswordBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordBody { <redacted> }")
    }
}

/// `POST /api/v1/auth/password`: change one's own password; every other session of the
/// account ends, this one stays.
pub async fn change_password(
    State(state): State<AppState>,
    Auth(caller): Auth,
    StrictJson(body): StrictJson<PasswordBody>,
) -> Response {
    if let Err(denied) = state.limits.check_account(&caller.player.email) {
        // Guessing the current password is limited like logins of the account.
        return denied.into_response();
    }
    let engine = state.engine.clone();
    let result = detached(async move {
        engine
            .change_password(&caller, &body.current_password, &body.new_password)
            .await
    })
    .await;
    match result {
        Ok(()) => json(
            StatusCode::OK,
            &serde_json::json!({"status": "password_changed", "must_change_password": false}),
        ),
        Err(e) => problem(e),
    }
}
