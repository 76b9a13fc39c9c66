//! The audit log over HTTP (players.md "Audit and interaction logs"): the middleware that
//! hands each request's context (client IP, endpoint, device header) to the engine and
//! records what handlers do not record themselves — admin writes (`admin_action`) and
//! failed lesson attempts and review submissions after authentication — and `GET
//! /api/v1/admin/audit`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Query, State};
use axum::http::{Method, Request, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::engine::Engine;
use crate::engine::audit::{self, AuditContext, code_name};
use crate::engine::audit_query::{AuditFilter, parse_cursor};
use crate::error::{ApiError, Code};
use crate::players::audit::{AuditKind, RESULT_OK};

use super::extract::{DEVICE_HEADER, StaffAuth};
use super::rate_limit::client_ip;
use super::{AppState, json, problem};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Middleware: runs the request inside its [`AuditContext`], then records admin writes
/// that journaled no record of their own, and failed lesson attempts and review
/// submissions of authenticated callers (those are buffered: they never wait).
pub async fn context(State(state): State<AppState>, req: Request<Body>, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = client_ip(&state.engine.config().http, peer, req.headers());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let endpoint = format!("{method} {}", route.as_deref().unwrap_or(&path));
    let device = req
        .headers()
        .get(DEVICE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let ctx = Arc::new(AuditContext::new(
        Some(ip.to_string()),
        Some(endpoint),
        device,
    ));
    let scoped = ctx.clone();
    audit::scope(Some(ctx), async move {
        let response = next.run(req).await;
        if let Some(route) = route {
            record_outcome(&state.engine, &scoped, &method, &route, &path, &response);
        }
        response
    })
    .await
}

fn record_outcome(
    engine: &Engine,
    ctx: &AuditContext,
    method: &Method,
    route: &str,
    path: &str,
    response: &Response,
) {
    let Some(actor) = ctx.actor() else {
        // Unauthenticated requests are recorded where they fail (login, device checks).
        return;
    };
    let success = response.status().is_success();
    let code = response.extensions().get::<Code>().copied();
    let result = match (success, code) {
        (true, _) => RESULT_OK.to_owned(),
        (false, Some(code)) => code_name(code),
        (false, None) => format!("HTTP_{}", response.status().as_u16()),
    };
    let is_write = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if route.starts_with("/api/v1/admin/") && is_write && !ctx.recorded() {
        let mut record = engine
            .audit_record(AuditKind::AdminAction, &result)
            .detail("action", format!("{method} {route}"))
            .detail("status", response.status().as_u16());
        // The student acted upon, while it exists (an erased id is not kept).
        record.player_id = match player_in_path(path) {
            Some(id) if engine.player(&id).is_some() => Some(id),
            Some(_) => None,
            None => Some(actor.to_owned()),
        };
        if record.player_id.as_deref() != Some(actor) {
            record.device_id = None;
        }
        engine.audit_later(record);
        return;
    }
    if success || code == Some(Code::RateLimited) || *method != Method::POST {
        return;
    }
    let record = match route {
        "/api/v1/lessons/{lesson_id}/complete" => engine
            .audit_record(AuditKind::LessonAttempt, &result)
            .detail(
                "lesson_id",
                path.trim_start_matches("/api/v1/lessons/")
                    .trim_end_matches("/complete"),
            ),
        "/api/v1/reviews" => engine.audit_record(AuditKind::ReviewAnswer, &result),
        _ => return,
    };
    engine.audit_later(record);
}

/// The `{id}` of `/api/v1/admin/players/{id}[/…]`.
fn player_in_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/api/v1/admin/players/")?;
    let id = rest.split('/').next().filter(|id| !id.is_empty())?;
    (id != "import").then(|| id.to_owned())
}

/// `GET /api/v1/admin/audit` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only this player's records.
    pub player_id: Option<String>,
    /// One kind or several, comma-separated (`login_failed,rate_limited`).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// From (inclusive), RFC 3339.
    pub since: Option<String>,
    /// Until (exclusive), RFC 3339.
    pub until: Option<String>,
    /// 1–500, default 50.
    pub limit: Option<String>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

fn instant(pointer: &str, raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    raw.map(|r| {
        r.parse::<jiff::Timestamp>()
            .map(|t| t.as_millisecond())
            .map_err(|_| ApiError::field(pointer, "must be an RFC 3339 time"))
    })
    .transpose()
}

fn audit_filter(q: AuditParams) -> Result<AuditFilter, ApiError> {
    let mut problems = Vec::new();
    let mut note = |e: ApiError| problems.extend(e.errors);
    let limit = match q.limit.as_deref().map(str::parse::<usize>) {
        None => 50,
        Some(Ok(n)) if (1..=500).contains(&n) => n,
        Some(_) => {
            note(ApiError::field(
                "/limit",
                "must be an integer from 1 to 500",
            ));
            50
        }
    };
    let mut kinds = Vec::new();
    for name in q.kind.as_deref().unwrap_or("").split(',').map(str::trim) {
        match (name, AuditKind::parse(name)) {
            ("", _) => {}
            (_, Some(kind)) => kinds.push(kind),
            (_, None) => note(ApiError::field(
                "/type",
                format!(
                    "unknown type `{name}`; one of: {}",
                    AuditKind::ALL.map(AuditKind::as_str).join(", ")
                ),
            )),
        }
    }
    let since_ms = instant("/since", q.since.as_deref()).unwrap_or_else(|e| {
        note(e);
        None
    });
    let until_ms = instant("/until", q.until.as_deref()).unwrap_or_else(|e| {
        note(e);
        None
    });
    let before = match q.cursor.as_deref() {
        None => None,
        Some(raw) => {
            let parsed = parse_cursor(raw);
            if parsed.is_none() {
                note(ApiError::field("/cursor", "not a cursor of this listing"));
            }
            parsed
        }
    };
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    Ok(AuditFilter {
        player_id: q.player_id.filter(|p| !p.is_empty()),
        kinds,
        since_ms,
        until_ms,
        limit,
        before,
    })
}

/// `GET /api/v1/admin/audit?player_id=&type=&since=&until=&limit=&cursor=`: security
/// events and interaction records, newest first, `{items, next_cursor}`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/audit",
    tag = "admin: players",
    summary = "Security events and the interaction log, newest first (paginated)",
    operation_id = "list_audit",
    security(("bearer" = ["admin"]), ("bearer" = ["teacher"])),
    params(AuditParams),
    responses(
        (status = 200, description = "`{items, next_cursor}`", body = Object),
        (status = 422, description = "`VALIDATION_FAILED`: a bad filter, limit or cursor"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    StaffAuth(_, scope): StaffAuth,
    query: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return problem(ApiError::field("", "unknown or malformed query parameters"));
    };
    let filter = match audit_filter(q) {
        Ok(f) => f,
        Err(e) => return problem(e),
    };
    if let Some(player) = &filter.player_id
        && let Err(e) = scope.check(player)
    {
        return problem(e);
    }
    match state.engine.audit_page(filter).await {
        Ok(mut page) => {
            // A teacher sees records about the students of their groups only.
            if !scope.is_all() {
                page.items
                    .retain(|r| r.player_id.as_deref().is_some_and(|p| scope.allows(p)));
            }
            json(StatusCode::OK, &page)
        }
        Err(e) => problem(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> AuditParams {
        let query = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let uri: axum::http::Uri = format!("/x?{query}").parse().expect("uri");
        Query::<AuditParams>::try_from_uri(&uri).expect("query").0
    }

    #[test]
    fn filters_are_validated_all_at_once() {
        let f = audit_filter(params(&[
            ("type", "login_failed,rate_limited"),
            ("since", "2026-01-01T00:00:00Z"),
            ("limit", "500"),
        ]))
        .expect("valid");
        assert_eq!(
            f.kinds,
            vec![AuditKind::LoginFailed, AuditKind::RateLimited]
        );
        assert_eq!(f.limit, 500);
        assert_eq!(f.since_ms, Some(1_767_225_600_000));
        let e = audit_filter(params(&[
            ("type", "nope"),
            ("since", "yesterday"),
            ("limit", "501"),
            ("cursor", "zz"),
        ]))
        .expect_err("invalid");
        let pointers: Vec<&str> = e.errors.iter().map(|p| p.pointer.as_str()).collect();
        assert_eq!(pointers, vec!["/limit", "/type", "/since", "/cursor"]);
    }

    #[test]
    fn player_ids_are_read_from_admin_player_paths() {
        assert_eq!(
            player_in_path("/api/v1/admin/players/p_1/devices").as_deref(),
            Some("p_1")
        );
        assert_eq!(player_in_path("/api/v1/admin/players/import"), None);
        assert_eq!(player_in_path("/api/v1/admin/subjects/x"), None);
    }
}
