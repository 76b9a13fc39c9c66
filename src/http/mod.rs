//! HTTP: the axum router (one readable route table), problem+json errors, request
//! logging, body limits and timeouts (api.md). Handlers are thin: parse, call the
//! engine, render.

pub mod admin;
pub mod admin_jobs;
pub mod admin_players;
pub mod admin_privacy;
pub mod admin_reconcile;
pub mod admin_seasons;
pub mod admin_snapshots;
pub mod assets;
pub mod audit;
pub mod content;
pub mod docs;
pub mod extract;
pub mod groups;
pub mod observe;
pub mod openapi;
pub mod rate_limit;
pub mod reports;
pub mod reviews;
pub mod roster;
pub mod srs_archive;
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
use axum::routing::get;
use parking_lot::Mutex;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::engine::Engine;
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

/// Header set on every response while the engine is degraded (srs.md).
pub const DEGRADED_HEADER: &str = "x-memora-degraded";

/// Adds `X-Memora-Degraded: 1` to every response while storage is unavailable.
async fn mark_degraded(
    State(engine): State<Engine>,
    req: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    let mut res = next.run(req).await;
    if engine.is_degraded() {
        res.headers_mut()
            .insert(DEGRADED_HEADER, HeaderValue::from_static("1"));
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
    // For the audit middleware: the stable code of a refused request.
    response.extensions_mut().insert(err.code);
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
    // The request's audit context follows the write into its task.
    let ctx = crate::engine::audit::current();
    tokio::spawn(crate::engine::audit::scope(ctx, fut))
        .await
        .map_err(ApiError::internal)?
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
    // Every route is registered with `routes!`, which takes its path, method and
    // documentation from the handler's `#[utoipa::path]`: an undocumented route cannot
    // be added here (tests/openapi.rs checks the few plain `.route` calls left).
    let reads = || from_fn_with_state(state.clone(), rate_limit::reads);
    let admin_content = OpenApiRouter::new()
        .routes(routes!(
            admin::put_subject,
            admin::get_subject,
            admin::delete_subject
        ))
        .routes(routes!(
            admin::put_plan,
            admin::get_plan,
            admin::delete_plan
        ))
        .routes(routes!(assets::put_asset, assets::delete_asset))
        .layer(DefaultBodyLimit::max(config.http.admin_body_limit_bytes));
    let engine_for_layers = state.engine.clone();
    let (mut api, document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(student::login))
        .routes(routes!(student::logout))
        .routes(routes!(student::session))
        .routes(routes!(student::me))
        .routes(routes!(admin_players::change_password))
        .routes(routes!(student::wallet).map(|r| r.route_layer(reads())))
        .routes(routes!(student::progress).map(|r| r.route_layer(reads())))
        .routes(
            routes!(student::complete)
                .map(|r| r.route_layer(from_fn_with_state(state.clone(), rate_limit::completions))),
        )
        .routes(routes!(admin::create_player))
        .routes(routes!(admin::get_player, admin_players::patch_player))
        .routes(routes!(
            admin_players::list_devices,
            admin_players::add_device
        ))
        .routes(routes!(admin_players::remove_device))
        .routes(routes!(admin_players::logout_everywhere))
        .routes(routes!(admin_players::reset_password))
        .routes(routes!(admin_players::put_grants))
        .routes(routes!(admin_players::adjust_xp))
        .routes(routes!(admin::checkpoint))
        // SRS (issue 6).
        .routes(routes!(reviews::due).map(|r| r.route_layer(reads())))
        .routes(
            routes!(reviews::submit)
                .map(|r| r.route_layer(from_fn_with_state(state.clone(), rate_limit::reviews))),
        )
        .routes(routes!(admin_seasons::create, admin_seasons::list))
        .routes(routes!(admin_seasons::get, admin_seasons::patch))
        .routes(routes!(admin_seasons::player_cards))
        // Compiled content (issue 4).
        .routes(routes!(content::build_plan))
        .routes(routes!(content::list_builds))
        .routes(routes!(content::retry_build))
        .routes(routes!(content::serve).layer(tower_http::compression::CompressionLayer::new()))
        .merge(admin_jobs::routes())
        .merge(admin_snapshots::routes())
        .merge(srs_archive::routes())
        .merge(admin_reconcile::routes())
        .merge(audit::routes())
        .merge(admin_privacy::routes())
        .merge(groups::routes())
        .merge(reports::routes())
        .merge(observe::routes())
        .merge(roster::routes())
        .layer(DefaultBodyLimit::max(config.http.body_limit_bytes))
        .merge(admin_content)
        .split_for_parts();
    let document = openapi::finish(document);
    api = api.merge(openapi::routes(&document)).merge(docs::routes());
    if config.http.bench_routes {
        // Benchmark baseline only (off by default): deliberately not documented.
        api = api.route(
            "/api/v1/bench/subjects/{subject_id}/progress",
            get(student::bench_progress),
        );
    }
    // Every request runs with its audit context (client IP, endpoint, device).
    api = api.layer(from_fn_with_state(state.clone(), audit::context));
    let api = api
        .fallback(not_found)
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
        .layer(from_fn_with_state(engine_for_layers, mark_degraded))
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
        );
    // Request metrics are the outermost layer: they also count timeouts (408).
    if config.metrics.enabled {
        api.layer(observe::TrackLayer)
    } else {
        api
    }
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

/// The `detail` of the 404 answered when no route matches (tests tell it from a
/// handler's own 404 by this text).
pub const NO_ROUTE: &str = "No such route";

async fn not_found() -> Response {
    problem(ApiError::new(Code::NotFound, NO_ROUTE))
}

/// `GET /healthz` answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

/// `GET /healthz`: the process is alive.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    summary = "Liveness",
    responses((status = 200, description = "Alive", body = Health))
)]
async fn health() -> Response {
    json(StatusCode::OK, &Health { status: "ok" })
}
