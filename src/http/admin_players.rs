//! Player management routes (api.md "Admin … players"): devices, "log out everywhere",
//! edits, password reset, grants, XP adjustment — and the caller's own password change
//! (`POST /api/v1/auth/password`). Thin: parse, call the engine, render.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::engine::accounts::PlayerView;
use crate::engine::admin_players::{DeviceInfo, NewDevice, PlayerPatch};
use crate::error::ApiError;

use super::extract::{AdminAuth, Auth, StaffAuth, StrictJson};
use super::{AppState, detached, json, problem};

fn answer<T: serde::Serialize>(status: StatusCode, result: Result<T, ApiError>) -> Response {
    match result {
        Ok(value) => json(status, &value),
        Err(e) => problem(e),
    }
}

/// `GET /api/v1/admin/players/{id}/devices` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct DevicesAnswer {
    /// The student's authorized devices.
    pub devices: Vec<DeviceInfo>,
}

/// `GET /api/v1/admin/players/{id}/devices`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/players/{id}/devices",
    tag = "admin: players",
    summary = "A player's devices, with when each was added and last seen",
    security(("bearer" = ["admin"]), ("bearer" = ["teacher"])),
    params(("id" = String, Path, description = "Player id")),
    responses(
        (status = 200, description = "The devices", body = DevicesAnswer),
        (status = 404, description = "`NOT_FOUND`: no such player"),
    )
)]
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
            .map(|devices| DevicesAnswer { devices }),
    )
}

/// `POST /api/v1/admin/players/{id}/devices` `{device_id, device_name}` → 201.
#[utoipa::path(
    post,
    path = "/api/v1/admin/players/{id}/devices",
    tag = "admin: players",
    summary = "Authorize another device for a student",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Player id")),
    request_body = NewDevice,
    responses(
        (status = 201, description = "Authorized", body = DeviceInfo),
        (status = 404, description = "`NOT_FOUND`: no such player"),
        (status = 409, description = "`DEVICE_LIMIT`, `CONFLICT`: the student has `players.max_devices` devices, the device is already authorized, or the player is not a student"),
    )
)]
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
#[utoipa::path(
    delete,
    path = "/api/v1/admin/players/{id}/devices/{device_id}",
    tag = "admin: players",
    summary = "Remove a device (ends its session)",
    security(("bearer" = ["admin"])),
    params(
        ("id" = String, Path, description = "Player id"),
        ("device_id" = String, Path, description = "Device UUID"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "`NOT_FOUND`: no such player or device"),
    )
)]
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

/// `POST /api/v1/admin/players/{id}/logout` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsEnded {
    /// How many sessions ended.
    pub sessions_ended: usize,
}

/// `POST /api/v1/admin/players/{id}/logout`: end every session → `{sessions_ended}`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/players/{id}/logout",
    tag = "admin: players",
    summary = "Log a player out everywhere",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Player id")),
    responses(
        (status = 200, description = "Sessions ended", body = SessionsEnded),
        (status = 404, description = "`NOT_FOUND`: no such player"),
    )
)]
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
            .map(|sessions_ended| SessionsEnded { sessions_ended }),
    )
}

/// `PATCH /api/v1/admin/players/{id}`.
#[utoipa::path(
    patch,
    path = "/api/v1/admin/players/{id}",
    tag = "admin: players",
    summary = "Edit a player (plan, grade, stream, time zone, name, role, disabled)",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Player id")),
    request_body = PlayerPatch,
    responses(
        (status = 200, description = "The player after the change", body = PlayerView),
        (status = 404, description = "`NOT_FOUND`: no such player"),
        (status = 409, description = "`CONFLICT`: this would leave no enabled admin"),
    )
)]
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

/// `POST /api/v1/admin/players/{id}/password-reset` answer.
#[derive(Serialize, ToSchema)]
pub struct PasswordReset {
    /// The generated password, shown this once.
    pub password: String,
    /// Always true: the player must change it at the next login.
    pub must_change_password: bool,
}

impl std::fmt::Debug for PasswordReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordReset { <redacted> }")
    }
}

/// `POST /api/v1/admin/players/{id}/password-reset` → `{password, must_change_password}`;
/// the generated password is shown this once.
#[utoipa::path(
    post,
    path = "/api/v1/admin/players/{id}/password-reset",
    tag = "admin: players",
    summary = "Reset a password (a generated one, shown once)",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Player id")),
    responses(
        (status = 200, description = "The new password", body = PasswordReset),
        (status = 404, description = "`NOT_FOUND`: no such player"),
    )
)]
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
            .map(|password| PasswordReset {
                password,
                must_change_password: true,
            }),
    )
}

/// `PUT /api/v1/admin/players/{id}/grants` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantsBody {
    /// The complete new set of item codes.
    pub grants: Vec<String>,
}

/// `PUT /api/v1/admin/players/{id}/grants` → the player.
#[utoipa::path(
    put,
    path = "/api/v1/admin/players/{id}/grants",
    tag = "admin: players",
    summary = "Replace a player's grants (item codes of paid content)",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Player id")),
    request_body = GrantsBody,
    responses(
        (status = 200, description = "The player after the change", body = PlayerView),
        (status = 404, description = "`NOT_FOUND`: no such player"),
    )
)]
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct XpBody {
    /// −100000…100000, not 0.
    pub amount: i64,
    /// Why (1–500 characters), kept in the journal for the audit.
    pub reason: String,
}

/// `POST /api/v1/admin/players/{id}/xp` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct XpAnswer {
    /// The player.
    pub player_id: String,
    /// The adjustment applied.
    pub amount: i64,
    /// Their XP total after it.
    pub total_xp: i64,
}

/// `POST /api/v1/admin/players/{id}/xp` → `{player_id, amount, total_xp}`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/players/{id}/xp",
    tag = "admin: players",
    summary = "Adjust a player's XP (audited, with a reason)",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Player id")),
    request_body = XpBody,
    responses(
        (status = 200, description = "Adjusted", body = XpAnswer),
        (status = 404, description = "`NOT_FOUND`: no such player"),
    )
)]
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
        detached(async move {
            engine
                .adjust_xp(&id, body.amount, &body.reason, &admin)
                .await
        })
        .await
        .map(|total_xp| XpAnswer {
            player_id: player,
            amount: body.amount,
            total_xp,
        }),
    )
}

/// `POST /api/v1/auth/password` body.
#[derive(Deserialize, ToSchema)]
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
#[utoipa::path(
    post,
    path = "/api/v1/auth/password",
    tag = "auth",
    summary = "Change one's own password",
    description = "Ends every other session of the account. Open to a caller who must \
change their password (every other route answers 403 `PASSWORD_CHANGE_REQUIRED` until \
then).",
    security(("bearer" = [], "device_id" = []), ("bearer" = [])),
    request_body = PasswordBody,
    responses(
        (status = 200, description = "Changed", body = super::student::StatusAnswer),
        (status = 409, description = "`CONFLICT`: the password was changed meanwhile"),
        (status = 422, description = "`VALIDATION_FAILED`: the current password does not match, or the new one is not 8–256 characters"),
        (status = 429, description = "`RATE_LIMITED`: too many attempts for the account (`Retry-After`)"),
    )
)]
pub async fn change_password(
    State(state): State<AppState>,
    Auth(caller): Auth,
    StrictJson(body): StrictJson<PasswordBody>,
) -> Response {
    if let Err(denied) = state.limits.check_account(&caller.player.email) {
        // Guessing the current password is limited like logins of the account.
        let engine = &state.engine;
        engine.audit_later(
            engine
                .audit_record(
                    crate::players::audit::AuditKind::RateLimited,
                    "RATE_LIMITED",
                )
                .detail("group", "password"),
        );
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
            &super::student::StatusAnswer {
                status: "password_changed",
                must_change_password: Some(false),
            },
        ),
        Err(e) => problem(e),
    }
}
