//! Student routes: login, session, me, wallet, progress, lesson completion (api.md).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::engine::accounts::{LoginResponse, PlayerView, rfc3339};
use crate::engine::play::CompletionResponse;
use crate::error::ApiError;
use crate::players::wallet::WalletView;

use crate::engine::srs_ops::{AnswerInput, parse_answers};

use super::extract::JsonWithBytes;
use super::extract::{Auth, DEVICE_HEADER, StrictJson};
use super::reviews::{Idempotent, idempotent, replied};
use super::{AppState, detached, json, json_bytes, problem};

/// `POST /api/v1/auth/login` body (its `Debug` hides the password).
#[derive(Deserialize, ToSchema)]
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
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    summary = "Log in",
    description = "Checks the password; students also send `X-Device-ID` (their first device \
is authorized automatically, later ones only by an admin). The new session replaces a \
student's previous one (last login wins). The token is shown once.",
    params(("X-Device-ID" = Option<String>, Header, description = "Students: the device's UUID")),
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 400, description = "`DEVICE_ID_REQUIRED`: a student sent no UUID in `X-Device-ID`"),
        (status = 401, description = "`INVALID_CREDENTIALS`: unknown email, wrong password or disabled account"),
        (status = 403, description = "`DEVICE_NOT_AUTHORIZED`: a student's device that an admin has not authorized"),
        (status = 429, description = "`RATE_LIMITED`: too many attempts for the account or the client IP (`Retry-After`)"),
    )
)]
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

/// `{"status": …}` answers (logout, password change).
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusAnswer {
    /// What happened: `logged_out`, `password_changed`.
    pub status: &'static str,
    /// After a password change: always false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub must_change_password: Option<bool>,
}

/// `POST /api/v1/auth/logout`.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    summary = "End this session",
    security(("bearer" = [], "device_id" = []), ("bearer" = [])),
    responses((status = 200, description = "`{\"status\": \"logged_out\"}`", body = StatusAnswer))
)]
pub async fn logout(State(state): State<AppState>, Auth(caller): Auth) -> Response {
    let engine = state.engine.clone();
    match detached(async move { engine.logout(&caller).await }).await {
        Ok(()) => json(
            StatusCode::OK,
            &StatusAnswer {
                status: "logged_out",
                must_change_password: None,
            },
        ),
        Err(e) => problem(e),
    }
}

/// `GET /api/v1/auth/session` answer (players.md).
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionAnswer {
    /// The caller.
    pub player_id: String,
    /// Their role.
    pub role: crate::players::account::Role,
    /// The device the session is bound to (students), else null.
    pub device_id: Option<String>,
    /// When the session was opened (RFC 3339).
    pub created_at: String,
    /// Whether the password must be changed before anything else.
    pub must_change_password: bool,
}

/// `GET /api/v1/auth/session`.
#[utoipa::path(
    get,
    path = "/api/v1/auth/session",
    tag = "auth",
    summary = "The current session",
    security(("bearer" = [], "device_id" = []), ("bearer" = [])),
    responses((status = 200, description = "The session", body = SessionAnswer))
)]
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

/// The plan part of `GET /api/v1/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanRef {
    /// Plan id.
    pub id: String,
    /// Its title.
    pub title: String,
}

/// An enrolled subject in `GET /api/v1/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectRef {
    /// Subject id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Lessons in it.
    pub total_lessons: u32,
}

/// `GET /api/v1/me` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeAnswer {
    /// The caller's profile (with devices).
    pub player: PlayerView,
    /// Their plan, if any.
    pub plan: Option<PlanRef>,
    /// The plan's subjects.
    pub subjects: Vec<SubjectRef>,
    /// Their wallet as it reads now.
    pub wallet: WalletView,
}

/// `GET /api/v1/me`: profile, plan, enrolled subjects, wallet, devices.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "student",
    summary = "Profile, plan, enrolled subjects, wallet and devices",
    security(("bearer" = [], "device_id" = []), ("bearer" = [])),
    responses((status = 200, description = "The caller", body = MeAnswer))
)]
pub async fn me(State(state): State<AppState>, Auth(caller): Auth) -> Response {
    let engine = &state.engine;
    let catalog = engine.catalog();
    let plan = caller
        .player
        .plan_id
        .as_deref()
        .and_then(|p| catalog.plan_view(p));
    let subjects: Vec<SubjectRef> = plan
        .map(|p| {
            p.subjects
                .iter()
                .map(|s| SubjectRef {
                    id: s.nodes[0].id.to_string(),
                    title: s.nodes[0].title.to_string(),
                    total_lessons: s.total_lessons(),
                })
                .collect()
        })
        .unwrap_or_default();
    let wallet = match engine.wallet(&caller) {
        Ok(w) => w,
        Err(e) => return problem(e),
    };
    json(
        StatusCode::OK,
        &MeAnswer {
            player: PlayerView::of(&caller.player),
            plan: plan.map(|p| PlanRef {
                id: p.plan_id.to_string(),
                title: p.title.to_string(),
            }),
            subjects,
            wallet,
        },
    )
}

/// `GET /api/v1/wallet`.
#[utoipa::path(
    get,
    path = "/api/v1/wallet",
    tag = "student",
    summary = "XP and streak as they read now",
    security(("bearer" = [], "device_id" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The wallet", body = WalletView),
        (status = 429, description = "`RATE_LIMITED`: too many reads (`Retry-After`)"),
    )
)]
pub async fn wallet(State(state): State<AppState>, Auth(caller): Auth) -> Response {
    match state.engine.wallet(&caller) {
        Ok(w) => json(StatusCode::OK, &w),
        Err(e) => problem(e),
    }
}

/// `GET /api/v1/subjects/{subject_id}/progress`.
#[utoipa::path(
    get,
    path = "/api/v1/subjects/{subject_id}/progress",
    tag = "student",
    summary = "The student's progress tree of one subject",
    description = "`{subject_id, plan_id, completion_percentage, total_lessons, \
passed_lessons, total_xp_earned, suggested_next_lesson_id, root}` where `root` is the \
subject's tree of tracks, units, topics and lessons with each node's status \
(progress.md \"Reading progress\").",
    security(("bearer" = [], "device_id" = []), ("bearer" = [])),
    params(("subject_id" = String, Path, description = "A subject of the caller's plan")),
    responses(
        (status = 200, description = "The progress tree (progress.md)", body = Object),
        (status = 403, description = "`NOT_ENROLLED`: the subject is not in the caller's plan"),
        (status = 404, description = "`INVALID_SUBJECT`: no such subject"),
        (status = 429, description = "`RATE_LIMITED`: too many reads (`Retry-After`)"),
    )
)]
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteBody {
    /// Hearts left at the end of the lesson (0–max).
    pub hearts: i64,
    /// Question results: each creates the question's card in the active season.
    #[serde(default)]
    pub answers: Option<Vec<AnswerInput>>,
}

/// `POST /api/v1/lessons/{lesson_id}/complete`.
#[utoipa::path(
    post,
    path = "/api/v1/lessons/{lesson_id}/complete",
    tag = "student",
    summary = "Complete a lesson",
    description = "Records the attempt; with hearts > 0 the lesson is passed (XP, streak, \
unlocks) and each answer creates its question's card in the active season (progress.md, \
srs.md). Accepts an `Idempotency-Key` (api.md).",
    security(("bearer" = [], "device_id" = []), ("bearer" = [])),
    params(
        ("lesson_id" = String, Path, description = "A lesson of the caller's plan"),
        ("Idempotency-Key" = Option<String>, Header, description = "1–255 printable ASCII characters; a retry with the same key and body gets the first answer"),
    ),
    request_body = CompleteBody,
    responses(
        (status = 200, description = "The outcome", body = CompletionResponse),
        (status = 403, description = "`NOT_ENROLLED`, `ACCESS_DENIED`: not in the plan, or paid content without the grant"),
        (status = 404, description = "`INVALID_LESSON`: no such lesson"),
        (status = 409, description = "`NOT_UNLOCKED`, `CONFLICT`: the lesson is locked, or the same idempotency key is in flight"),
        (status = 422, description = "`INVALID_QUESTION`, `NO_HEARTS`, `IDEMPOTENCY_KEY_REUSED`, `VALIDATION_FAILED`: an answer names a question outside the lesson, hearts out of range, or a key reused with another body"),
        (status = 429, description = "`RATE_LIMITED`: too many completions (`Retry-After`)"),
    )
)]
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
