//! Student routes: login, session, me, wallet, progress, lesson completion (api.md).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::engine::accounts::{PlayerView, rfc3339};
use crate::error::ApiError;

use crate::engine::srs_ops::{AnswerInput, parse_answers};

use super::extract::JsonWithBytes;
use super::extract::{Auth, DEVICE_HEADER, StrictJson};
use super::reviews::{Idempotent, idempotent, replied};
use super::{AppState, detached, json, json_bytes, problem};

/// `POST /api/v1/auth/login` body (its `Debug` hides the password).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// Login email.
    pub email: String,
    /// Password.
    pub password: String,
    /// Name for a first device.
    #[serde(default)]
    pub device_name: Option<String>,
}

impl std::fmt::Debug for LoginBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginBody")
            .field("email", &self.email)
            .field("device_name", &self.device_name)
            .finish_non_exhaustive()
    }
}

/// `POST /api/v1/auth/login` (rate limited per client IP and per account).
pub async fn login(
    State(state): State<AppState>,
    super::rate_limit::ClientIp(ip): super::rate_limit::ClientIp,
    headers: HeaderMap,
    StrictJson(body): StrictJson<LoginBody>,
) -> Response {
    if let Err(limited) = state.limits.check_login(ip, &body.email) {
        let engine = &state.engine;
        let record = engine
            .audit_record(
                crate::players::audit::AuditKind::RateLimited,
                "RATE_LIMITED",
            )
            .detail("group", "login");
        engine.audit_later(match engine.player_by_email(&body.email) {
            Some(p) => record.player(&p.id),
            None => record.detail("email", body.email.trim()),
        });
        return limited.into_response();
    }
    let device = headers
        .get(DEVICE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let engine = state.engine.clone();
    let result = detached(async move {
        engine
            .login(
                &body.email,
                &body.password,
                device.as_deref(),
                body.device_name.as_deref(),
            )
            .await
    })
    .await;
    match result {
        Ok(answer) => json(StatusCode::OK, &answer),
        Err(e) => problem(e),
    }
}

/// `POST /api/v1/auth/logout`.
pub async fn logout(State(state): State<AppState>, Auth(caller): Auth) -> Response {
    let engine = state.engine.clone();
    match detached(async move { engine.logout(&caller).await }).await {
        Ok(()) => json(StatusCode::OK, &serde_json::json!({"status": "logged_out"})),
        Err(e) => problem(e),
    }
}

#[derive(Serialize)]
struct SessionAnswer {
    player_id: String,
    role: crate::players::account::Role,
    device_id: Option<String>,
    created_at: String,
    must_change_password: bool,
}

/// `GET /api/v1/auth/session`.
pub async fn session(Auth(caller): Auth) -> Response {
    json(
        StatusCode::OK,
        &SessionAnswer {
            player_id: caller.player.id.clone(),
            role: caller.player.role,
            device_id: caller.device_id.clone(),
            created_at: rfc3339(caller.session_created_at_ms),
            must_change_password: caller.player.must_change_password,
        },
    )
}

/// `GET /api/v1/me`: profile, plan, enrolled subjects, wallet, devices.
pub async fn me(State(state): State<AppState>, Auth(caller): Auth) -> Response {
    let engine = &state.engine;
    let catalog = engine.catalog();
    let plan = caller
        .player
        .plan_id
        .as_deref()
        .and_then(|p| catalog.plan_view(p));
    let subjects: Vec<serde_json::Value> = plan
        .map(|p| {
            p.subjects
                .iter()
                .map(|s| serde_json::json!({"id": &*s.nodes[0].id, "title": &*s.nodes[0].title, "total_lessons": s.total_lessons()}))
                .collect()
        })
        .unwrap_or_default();
    let wallet = match engine.wallet(&caller) {
        Ok(w) => w,
        Err(e) => return problem(e),
    };
    json(
        StatusCode::OK,
        &serde_json::json!({
            "player": PlayerView::of(&caller.player),
            "plan": plan.map(|p| serde_json::json!({"id": &*p.plan_id, "title": &*p.title})),
            "subjects": subjects,
            "wallet": wallet,
        }),
    )
}

/// `GET /api/v1/wallet`.
pub async fn wallet(State(state): State<AppState>, Auth(caller): Auth) -> Response {
    match state.engine.wallet(&caller) {
        Ok(w) => json(StatusCode::OK, &w),
        Err(e) => problem(e),
    }
}

/// `GET /api/v1/subjects/{subject_id}/progress`.
pub async fn progress(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(subject_id): Path<String>,
) -> Response {
    match state.engine.progress_json(&caller, &subject_id) {
        Ok(bytes) => json_bytes(StatusCode::OK, bytes),
        Err(e) => problem(e),
    }
}

/// `GET /api/v1/bench/subjects/{subject_id}/progress` (only with `http.bench_routes`):
/// the same bytes as the progress route, computed once per (student, subject) and then
/// served from memory — the baseline of quality.md's progress-read target.
pub async fn bench_progress(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(subject_id): Path<String>,
) -> Response {
    let key = (caller.player.id.clone(), subject_id.clone());
    if let Some(bytes) = state.bench_cache.lock().get(&key) {
        return json_bytes(StatusCode::OK, bytes.clone());
    }
    match state.engine.progress_json(&caller, &subject_id) {
        Ok(bytes) => {
            let bytes = axum::body::Bytes::from(bytes);
            state.bench_cache.lock().insert(key, bytes.clone());
            json_bytes(StatusCode::OK, bytes)
        }
        Err(e) => problem(e),
    }
}

/// `POST /api/v1/lessons/{id}/complete` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteBody {
    /// Hearts left at the end of the lesson (0–max).
    pub hearts: i64,
    /// Question results: each creates the question's card in the active season.
    #[serde(default)]
    pub answers: Option<Vec<AnswerInput>>,
}

/// `POST /api/v1/lessons/{lesson_id}/complete`.
pub async fn complete(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(lesson_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    JsonWithBytes(body, raw): JsonWithBytes<CompleteBody>,
) -> Response {
    let answers = body.answers.unwrap_or_default();
    if answers.len() > 200 {
        return problem(ApiError::field("/answers", "at most 200 answers"));
    }
    let answers = match parse_answers(&answers, "/answers") {
        Ok(a) => a,
        Err(e) => return problem(e),
    };
    let idem = match idempotent(&state, &caller.player.id, &uri, &headers, &raw) {
        Ok(i) => i,
        Err(response) => return *response,
    };
    let engine = state.engine.clone();
    replied(
        detached(async move {
            let Idempotent { request, guard } = idem;
            let result = engine
                .complete_lesson_with(&caller, &lesson_id, body.hearts, &answers, request.as_ref())
                .await;
            drop(guard);
            result
        })
        .await,
    )
}
