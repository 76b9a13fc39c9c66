//! HTTP: the axum router (one readable route table), problem+json errors, request
//! logging, body limits and timeouts (api.md). Handlers are thin: parse, call the
//! engine, render.

pub mod admin;
pub mod admin_jobs;
pub mod admin_players;
pub mod admin_seasons;
pub mod assets;
pub mod content;
pub mod extract;
pub mod rate_limit;
pub mod reviews;
pub mod roster;
pub mod student;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use parking_lot::Mutex;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::engine::Engine;
use crate::engine::content_ops::DocKind;
use crate::error::{ApiError, Code};

/// Shared state of every handler: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The engine.
    pub engine: Engine,
    /// Pre-serialized progress answers for the benchmark baseline route, keyed by
    /// (player id, subject id).
    pub bench_cache: Arc<Mutex<HashMap<(String, String), axum::body::Bytes>>>,
    /// Rate limiters (players.md "Rate limits").
    pub limits: Arc<rate_limit::RateLimits>,
}

/// Player id of an authenticated request, recorded for the request log.
#[derive(Debug, Clone)]
pub struct PlayerId(pub String);

/// Where the auth extractor leaves the caller's id so the request log can name the
/// player (extractors see the request, the log sees the response).
#[derive(Debug, Clone, Default)]
pub struct PlayerSlot(pub Arc<std::sync::OnceLock<String>>);

async fn record_player(mut req: Request<Body>, next: axum::middleware::Next) -> Response {
    let slot = PlayerSlot::default();
    req.extensions_mut().insert(slot.clone());
    let mut res = next.run(req).await;
    if let Some(id) = slot.0.get() {
        res.extensions_mut().insert(PlayerId(id.clone()));
    }
    res
}

/// Renders an [`ApiError`] as `application/problem+json` (RFC 9457).
pub fn problem(err: ApiError) -> Response {
    let status =
        StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&err.problem()).unwrap_or_default();
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if let Some(secs) = err.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        problem(self)
    }
}

/// Turns axum's body rejections (too large, unreadable) into problems.
pub fn body_rejection(rejection: Response) -> Response {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        problem(ApiError::new(
            Code::PayloadTooLarge,
            "The request body is larger than this route accepts",
        ))
    } else {
        problem(ApiError {
            status: Some(400),
            ..ApiError::new(Code::ValidationFailed, "The request body could not be read")
        })
    }
}

/// A JSON answer with a status.
pub fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => json_bytes(status, bytes),
        Err(e) => problem(ApiError::internal(e)),
    }
}

/// Pre-serialized JSON bytes with a status.
pub fn json_bytes(status: StatusCode, bytes: impl Into<Body>) -> Response {
    let mut response = (status, bytes.into()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Runs a write in a task of its own, so a client hanging up cannot cancel it between
/// its fsync and its application to memory (engine module docs).
pub async fn detached<T, F>(fut: F) -> Result<T, ApiError>
where
    F: std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
    T: Send + 'static,
{
    tokio::spawn(fut).await.map_err(ApiError::internal)?
}

/// The whole router.
pub fn router(engine: Engine) -> Router {
    let config = engine.config().clone();
    let state = AppState {
        limits: Arc::new(rate_limit::RateLimits::new(
            &config,
            engine.inner().clock.clone(),
        )),
        engine,
        bench_cache: Arc::new(Mutex::new(HashMap::new())),
    };
    let admin_content = Router::new()
        .route(
            "/api/v1/admin/subjects/{id}",
            admin::document_routes(DocKind::Subject),
        )
        .route(
            "/api/v1/admin/plans/{id}",
            admin::document_routes(DocKind::Plan),
        )
        .route(
            "/api/v1/admin/assets/{*path}",
            put(assets::put_asset).delete(assets::delete_asset),
        )
        .layer(DefaultBodyLimit::max(config.http.admin_body_limit_bytes));
    let mut api = Router::new()
        .route("/healthz", get(health))
        .route("/readyz", get(ready))
        .route("/api/v1/auth/login", post(student::login))
        .route("/api/v1/auth/logout", post(student::logout))
        .route("/api/v1/auth/session", get(student::session))
        .route("/api/v1/me", get(student::me))
        .route(
            "/api/v1/auth/password",
            post(admin_players::change_password),
        )
        .route(
            "/api/v1/wallet",
            get(student::wallet).route_layer(from_fn_with_state(state.clone(), rate_limit::reads)),
        )
        .route(
            "/api/v1/subjects/{subject_id}/progress",
            get(student::progress)
                .route_layer(from_fn_with_state(state.clone(), rate_limit::reads)),
        )
        .route(
            "/api/v1/lessons/{lesson_id}/complete",
            post(student::complete)
                .route_layer(from_fn_with_state(state.clone(), rate_limit::completions)),
        )
        .route("/api/v1/admin/players", post(admin::create_player))
        .route(
            "/api/v1/admin/players/{id}",
            get(admin::get_player).patch(admin_players::patch_player),
        )
        .route(
            "/api/v1/admin/players/{id}/devices",
            get(admin_players::list_devices).post(admin_players::add_device),
        )
        .route(
            "/api/v1/admin/players/{id}/devices/{device_id}",
            axum::routing::delete(admin_players::remove_device),
        )
        .route(
            "/api/v1/admin/players/{id}/logout",
            post(admin_players::logout_everywhere),
        )
        .route(
            "/api/v1/admin/players/{id}/password-reset",
            post(admin_players::reset_password),
        )
        .route(
            "/api/v1/admin/players/{id}/grants",
            axum::routing::put(admin_players::put_grants),
        )
        .route(
            "/api/v1/admin/players/{id}/xp",
            post(admin_players::adjust_xp),
        )
        .route("/api/v1/admin/checkpoint", post(admin::checkpoint))
        // SRS (issue 6).
        .route(
            "/api/v1/reviews/due",
            get(reviews::due).route_layer(from_fn_with_state(state.clone(), rate_limit::reads)),
        )
        .route(
            "/api/v1/reviews",
            post(reviews::submit)
                .route_layer(from_fn_with_state(state.clone(), rate_limit::reviews)),
        )
        .route(
            "/api/v1/admin/seasons",
            post(admin_seasons::create).get(admin_seasons::list),
        )
        .route(
            "/api/v1/admin/seasons/{id}",
            get(admin_seasons::get).merge(patch(admin_seasons::patch)),
        )
        .route(
            "/api/v1/admin/players/{id}/cards",
            get(admin_seasons::player_cards),
        )
        // Compiled content (issue 4).
        .route("/api/v1/admin/plans/{id}/build", post(content::build_plan))
        .route("/api/v1/admin/builds", get(content::list_builds))
        .route(
            "/api/v1/admin/builds/{id}/retry",
            post(content::retry_build),
        )
        .route(
            "/content/{*path}",
            get(content::serve).layer(tower_http::compression::CompressionLayer::new()),
        )
        .merge(admin_jobs::routes())
        .merge(roster::routes())
        .layer(DefaultBodyLimit::max(config.http.body_limit_bytes))
        .merge(admin_content);
    if config.http.bench_routes {
        api = api.route(
            "/api/v1/bench/subjects/{subject_id}/progress",
            get(student::bench_progress),
        );
    }
    api.fallback(not_found)
        .with_state(state)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(axum::middleware::from_fn(record_player))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(config.http.request_timeout_ms),
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<Body>| {
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
                })
                .on_request(())
                .on_response(|res: &Response, latency: Duration, _span: &tracing::Span| {
                    let player = res.extensions().get::<PlayerId>().map(|p| p.0.as_str()).unwrap_or("-");
                    tracing::info!(status = res.status().as_u16(), latency_us = latency.as_micros() as u64, player, "answered");
                }),
        )
}

/// The router answering while the engine recovers: `/healthz` 200, `/readyz` 503
/// `recovering`, everything else 503 with `Retry-After` (api.md: `/readyz` turns true only
/// after recovery).
pub fn recovering_router() -> Router {
    Router::new()
        .route("/healthz", get(health))
        .route(
            "/readyz",
            get(|| async {
                json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &serde_json::json!({"status": "recovering"}),
                )
            }),
        )
        .fallback(|| async {
            problem(ApiError {
                retry_after: Some(1),
                ..ApiError::new(
                    Code::StorageUnavailable,
                    "The server is replaying its journal after a restart; retry shortly",
                )
            })
        })
}

async fn not_found() -> Response {
    problem(ApiError::new(Code::NotFound, "No such route"))
}

async fn health() -> Response {
    json(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

async fn ready(State(state): State<AppState>) -> Response {
    let engine = &state.engine;
    let journal_ok = engine.journal_healthy();
    let ready = engine.is_ready();
    let status = match (ready, journal_ok) {
        (false, _) => "recovering",
        (true, true) => "ready",
        (true, false) => "degraded",
    };
    // The mirror is a warning component: it never makes the server unready.
    let mirror = engine.mirror_status();
    let mirror_component = match &mirror {
        None => "disabled",
        Some(m) if m.state == "unreachable" => "unreachable",
        Some(m) if m.lag_rows > 0 => "lagging",
        Some(_) => "ok",
    };
    let body = serde_json::json!({
        "status": status,
        "components": {
            "journal": if journal_ok { "ok" } else { "failing" },
            "redb": "ok",
            "mirror": mirror_component,
        },
        "mirror": mirror,
        "recovery": engine.recovery(),
    });
    json(
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &body,
    )
}
