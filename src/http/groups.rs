//! Classes routes (api.md "classes"): `POST|GET /api/v1/admin/groups`, `GET|PATCH|DELETE
//! /api/v1/admin/groups/{id}`. Reads are R (a teacher lists and reads the groups they
//! teach); writes are for admins. Also the `limit`/`cursor` parsing of admin lists.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::engine::groups::{GroupPatch, GroupView, NewGroup};
use crate::error::ApiError;

use super::extract::{AdminAuth, StaffAuth, StrictJson};
use super::{AppState, detached, json, problem};

/// This module's routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, patch, delete))
}

/// `limit` and `cursor` of a paginated admin list (api.md): `limit` 1–500, default 50;
/// the cursor is opaque to clients (the hex of the last id of the previous page).
///
/// # Errors
/// 422 `VALIDATION_FAILED` with pointer `/limit` or `/cursor`.
pub fn page_params(
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<(usize, Option<String>), ApiError> {
    let limit = match limit.filter(|s| !s.is_empty()).map(str::parse::<usize>) {
        None => 50,
        Some(Ok(n)) if (1..=500).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::field(
                "/limit",
                "must be an integer from 1 to 500",
            ));
        }
    };
    let after = match cursor.filter(|s| !s.is_empty()) {
        None => None,
        Some(c) => Some(
            hex::decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::field("/cursor", "not a cursor of this listing"))?,
        ),
    };
    Ok((limit, after))
}

/// The opaque cursor after `last_id` (see [`page_params`]).
pub fn cursor_after(last_id: &str) -> String {
    hex::encode(last_id)
}

/// `GET /api/v1/admin/groups` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1–500, default 50.
    pub limit: Option<String>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// `GET /api/v1/admin/groups` (R): `{items, next_cursor}` by id; a teacher sees the
/// groups they teach.
#[utoipa::path(
    get,
    path = "/api/v1/admin/groups",
    operation_id = "list_groups",
    tag = "admin: groups",
    summary = "List groups (a teacher: the groups they teach)",
    security(("bearer" = ["admin"]), ("bearer" = ["teacher"])),
    params(ListParams),
    responses(
        (status = 200, description = "`{items, next_cursor}`", body = Object),
        (status = 422, description = "`VALIDATION_FAILED`: a bad limit or cursor"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    StaffAuth(caller, _): StaffAuth,
    query: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return problem(ApiError::field("", "unknown or malformed query parameters"));
    };
    let (limit, after) = match page_params(q.limit.as_deref(), q.cursor.as_deref()) {
        Ok(p) => p,
        Err(e) => return problem(e),
    };
    let groups = state.engine.groups_for(&caller);
    let rest: Vec<_> = groups
        .iter()
        .filter(|g| after.as_deref().is_none_or(|a| g.id.as_str() > a))
        .collect();
    let page = &rest[..rest.len().min(limit)];
    let next_cursor = (rest.len() > limit)
        .then(|| page.last().map(|g| cursor_after(&g.id)))
        .flatten();
    let items: Vec<GroupView> = page.iter().map(|g| GroupView::of(g)).collect();
    json(
        StatusCode::OK,
        &serde_json::json!({"items": items, "next_cursor": next_cursor}),
    )
}

/// `POST /api/v1/admin/groups` `{name, student_ids, teacher_ids}` → 201 with the group.
#[utoipa::path(
    post,
    path = "/api/v1/admin/groups",
    operation_id = "create_group",
    tag = "admin: groups",
    summary = "Create a group (class) with its students and teachers",
    security(("bearer" = ["admin"])),
    request_body = NewGroup,
    responses(
        (status = 201, description = "Created", body = GroupView),
        (status = 409, description = "`CONFLICT`: the name is taken"),
        (status = 422, description = "`VALIDATION_FAILED`: unknown ids or wrong roles, with pointers"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    AdminAuth(_): AdminAuth,
    StrictJson(body): StrictJson<NewGroup>,
) -> Response {
    let engine = state.engine.clone();
    match detached(async move { engine.create_group(body).await }).await {
        Ok(g) => json(StatusCode::CREATED, &GroupView::of(&g)),
        Err(e) => problem(e),
    }
}

/// `GET /api/v1/admin/groups/{id}` (R): 404 for a group a teacher does not teach.
#[utoipa::path(
    get,
    path = "/api/v1/admin/groups/{id}",
    operation_id = "get_group",
    tag = "admin: groups",
    summary = "Read a group",
    security(("bearer" = ["admin"]), ("bearer" = ["teacher"])),
    params(("id" = String, Path, description = "Group id")),
    responses(
        (status = 200, description = "The group", body = GroupView),
        (status = 404, description = "`NOT_FOUND`: no such group (or not taught by the caller)"),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    StaffAuth(caller, _): StaffAuth,
    Path(id): Path<String>,
) -> Response {
    match state.engine.group_for(&caller, &id) {
        Ok(g) => json(StatusCode::OK, &GroupView::of(&g)),
        Err(e) => problem(e),
    }
}

/// `PATCH /api/v1/admin/groups/{id}`: the fields sent replace the stored ones.
#[utoipa::path(
    patch,
    path = "/api/v1/admin/groups/{id}",
    operation_id = "patch_group",
    tag = "admin: groups",
    summary = "Change a group's name, students or teachers",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Group id")),
    request_body = GroupPatch,
    responses(
        (status = 200, description = "The group after the change", body = GroupView),
        (status = 404, description = "`NOT_FOUND`: no such group"),
        (status = 409, description = "`CONFLICT`: the name is taken"),
        (status = 422, description = "`VALIDATION_FAILED`: unknown ids or wrong roles, with pointers"),
    )
)]
pub async fn patch(
    State(state): State<AppState>,
    AdminAuth(_): AdminAuth,
    Path(id): Path<String>,
    StrictJson(body): StrictJson<GroupPatch>,
) -> Response {
    let engine = state.engine.clone();
    match detached(async move { engine.patch_group(&id, body).await }).await {
        Ok(g) => json(StatusCode::OK, &GroupView::of(&g)),
        Err(e) => problem(e),
    }
}

/// `DELETE /api/v1/admin/groups/{id}` → 204 (the players stay).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/groups/{id}",
    operation_id = "delete_group",
    tag = "admin: groups",
    summary = "Delete a group",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Group id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`NOT_FOUND`: no such group"),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    AdminAuth(_): AdminAuth,
    Path(id): Path<String>,
) -> Response {
    let engine = state.engine.clone();
    match detached(async move { engine.delete_group(&id).await }).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => problem(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_parameters_are_checked_and_cursors_round_trip() {
        assert_eq!(page_params(None, None).expect("defaults"), (50, None));
        assert_eq!(page_params(Some(""), Some("")).expect("empty"), (50, None));
        let cursor = cursor_after("g_abc");
        assert_eq!(
            page_params(Some("500"), Some(&cursor)).expect("max"),
            (500, Some("g_abc".to_owned()))
        );
        for bad in ["0", "501", "x", "-1"] {
            let e = page_params(Some(bad), None).expect_err(bad);
            assert_eq!(e.errors[0].pointer, "/limit");
        }
        let e = page_params(None, Some("zz")).expect_err("cursor");
        assert_eq!(e.errors[0].pointer, "/cursor");
    }
}
