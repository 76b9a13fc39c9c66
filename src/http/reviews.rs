//! SRS student routes (srs.md "Review sessions"): `GET /api/v1/reviews/due`, `POST
//! /api/v1/reviews`, and the idempotency-key handling (api.md) shared with lesson
//! completion.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::engine::idempotency::{Begin, IdemRequest, InFlight, Replied};
use crate::engine::srs_ops::{AnswerInput, parse_answers};
use crate::engine::srs_reviews::{DueAnswer, ReviewAnswer};
use crate::error::ApiError;

use super::extract::Auth;
use super::extract::JsonWithBytes;
use super::{AppState, detached, json, json_bytes, problem};

/// Header carrying an idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// What an idempotent write handler goes on with: the key (if any) and the in-flight
/// mark, which must live until the write is finished.
pub struct Idempotent {
    /// The request's key and body hash.
    pub request: Option<IdemRequest>,
    /// Held while the write runs.
    pub guard: Option<InFlight>,
}

/// Reads the `Idempotency-Key` header of a POST to `uri` by `player_id` and runs the fast
/// check.
///
/// # Errors
/// The response to send instead (boxed: it is large): the stored first answer, or a
/// problem (malformed key, key reused with another body, duplicate in flight).
pub fn idempotent(
    state: &AppState,
    player_id: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Idempotent, Box<Response>> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(Idempotent {
            request: None,
            guard: None,
        });
    };
    let key = value.to_str().unwrap_or("\u{7f}");
    let request =
        IdemRequest::new("POST", uri.path(), key, body).map_err(|e| Box::new(problem(e)))?;
    match state.engine.idempotency_begin(player_id, &request) {
        Ok(Begin::Proceed(guard)) => Ok(Idempotent {
            request: Some(request),
            guard: Some(guard),
        }),
        Ok(Begin::Stored { status, body }) => Err(Box::new(stored(status, body))),
        Err(e) => Err(Box::new(problem(e))),
    }
}

/// A stored first answer, sent again.
pub fn stored(status: u16, body: Vec<u8>) -> Response {
    json_bytes(StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body)
}

/// Renders an engine answer that may have been replayed.
pub fn replied<T: serde::Serialize>(result: Result<Replied<T>, ApiError>) -> Response {
    match result {
        Ok(Replied::Fresh(answer)) => json(StatusCode::OK, &answer),
        Ok(Replied::Stored { status, body }) => stored(status, body),
        Err(e) => problem(e),
    }
}

/// `GET /api/v1/reviews/due` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DueParams {
    /// Only this subject.
    pub subject_id: Option<String>,
    /// Only this topic.
    pub topic_id: Option<String>,
    /// 1–50, default 20.
    pub limit: Option<String>,
}

/// `GET /api/v1/reviews/due`.
#[utoipa::path(
    get,
    path = "/api/v1/reviews/due",
    operation_id = "reviews_due",
    tag = "reviews",
    summary = "The caller's cards due now in the active season",
    security(("bearer" = [], "device_id" = []), ("bearer" = [])),
    params(DueParams),
    responses(
        (status = 200, description = "Due cards, by due time", body = DueAnswer),
        (status = 404, description = "`INVALID_SUBJECT`: the subject filter names no subject of the caller's plan"),
        (status = 409, description = "`NO_ACTIVE_SEASON`: no season is active"),
        (status = 422, description = "`VALIDATION_FAILED`: an unknown or malformed query parameter"),
        (status = 429, description = "`RATE_LIMITED`: too many reads (`Retry-After`)"),
    )
)]
pub async fn due(
    State(state): State<AppState>,
    Auth(caller): Auth,
    query: Result<Query<DueParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return problem(ApiError::field("", "unknown or malformed query parameters"));
    };
    let limit = match q.limit.as_deref().map(str::parse::<usize>) {
        None => 20,
        Some(Ok(n)) if (1..=50).contains(&n) => n,
        Some(_) => return problem(ApiError::field("/limit", "must be an integer from 1 to 50")),
    };
    match state.engine.reviews_due(
        &caller,
        q.subject_id.as_deref(),
        q.topic_id.as_deref(),
        limit,
    ) {
        Ok(answer) => json(StatusCode::OK, &answer),
        Err(e) => problem(e),
    }
}

/// `POST /api/v1/reviews` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    /// 1–50 responses.
    pub responses: Vec<AnswerInput>,
    /// Combo bonus count (0 ≤ combo ≤ correct due answers).
    #[serde(default)]
    pub combo: Option<i64>,
}

/// `POST /api/v1/reviews`.
#[utoipa::path(
    post,
    path = "/api/v1/reviews",
    operation_id = "submit_reviews",
    tag = "reviews",
    summary = "Submit a review session",
    description = "Reschedules each answered card (FSRS), awards XP and counts the day for \
the streak when a due card was answered correctly (srs.md). Accepts an `Idempotency-Key` \
(api.md).",
    security(("bearer" = [], "device_id" = []), ("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 printable ASCII characters; a retry with the same key and body gets the first answer")),
    request_body = ReviewBody,
    responses(
        (status = 200, description = "The rescheduled cards and the wallet", body = ReviewAnswer),
        (status = 409, description = "`NO_ACTIVE_SEASON`, `CONFLICT`: no season is active, or the same idempotency key is in flight"),
        (status = 422, description = "`INVALID_QUESTION`, `IDEMPOTENCY_KEY_REUSED`, `VALIDATION_FAILED`: a response names no card of the caller, a key reused with another body, or a malformed session"),
        (status = 429, description = "`RATE_LIMITED`: too many submissions (`Retry-After`)"),
    )
)]
pub async fn submit(
    State(state): State<AppState>,
    Auth(caller): Auth,
    uri: Uri,
    headers: HeaderMap,
    JsonWithBytes(parsed, body): JsonWithBytes<ReviewBody>,
) -> Response {
    if !(1..=50).contains(&parsed.responses.len()) {
        return problem(ApiError::field("/responses", "send 1 to 50 responses"));
    }
    let combo = parsed.combo.unwrap_or(0);
    if combo < 0 {
        return problem(ApiError::field("/combo", "must not be negative"));
    }
    let responses = match parse_answers(&parsed.responses, "/responses") {
        Ok(r) => r,
        Err(e) => return problem(e),
    };
    let idem = match idempotent(&state, &caller.player.id, &uri, &headers, &body) {
        Ok(i) => i,
        Err(response) => return *response,
    };
    let engine = state.engine.clone();
    replied(
        detached(async move {
            let Idempotent { request, guard } = idem;
            let result = engine
                .submit_reviews(&caller, &responses, combo, request.as_ref())
                .await;
            drop(guard);
            result
        })
        .await,
    )
}
