//! Observability routes (operations.md "Observability", api.md): `GET /metrics`
//! (Prometheus text), `GET /api/v1/admin/engine` (the engine report), `GET /readyz`
//! (per-component readiness), and the layer that counts and times every request by
//! matched route.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, State};
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, Code};
use crate::observe::ready::Readiness;
use crate::observe::report::EngineReport;

use super::extract::StaffAuth;
use super::{AppState, json, problem};

/// The content type of the Prometheus text exposition format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// This module's routes. `/metrics` is always routed (and documented); with
/// `metrics.enabled = false` it answers 404.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ready))
        .routes(routes!(metrics))
        .routes(routes!(engine))
}

/// `GET /metrics`: the Prometheus text exposition (format 0.0.4).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    summary = "Prometheus metrics",
    description = "The Prometheus text exposition (format 0.0.4): requests and latency per \
route, journal fsync latency and batch size, events, checkpoint duration and size, \
students and cards in memory, memory estimate, mirror lag (seconds and rows), builds, \
degraded state, reconciliation discrepancy rate, rate-limit rejections (README \
\"Monitoring\" lists every series). Public like `/healthz`: restrict it at the reverse \
proxy if needed.",
    responses(
        (status = 200, description = "The metrics", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        (status = 404, description = "`NOT_FOUND`: metrics are turned off (`metrics.enabled = false`)"),
    )
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    if !state.engine.config().metrics.enabled {
        return problem(ApiError::new(
            Code::NotFound,
            "Metrics are turned off (metrics.enabled = false)",
        ));
    }
    let engine = state.engine.clone();
    // The census walks every student in memory: keep it off the async threads.
    let body = match tokio::task::spawn_blocking(move || crate::observe::render(&engine)).await {
        Ok(body) => body,
        Err(e) => return problem(ApiError::internal(e)),
    };
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROMETHEUS_TEXT),
    );
    response
}

/// `GET /api/v1/admin/engine`: students in memory, memory estimate, cards by season,
/// journal (size, fsync latency), checkpoints, mirror and its lag, degraded state,
/// build queue, reconciliation, jobs and each periodic task's last run.
#[utoipa::path(
    get,
    path = "/api/v1/admin/engine",
    tag = "admin: engine",
    summary = "The engine report: memory, journal, checkpoints, mirror, degraded state, tasks",
    security(("bearer" = ["admin"]), ("bearer" = ["teacher"])),
    responses((status = 200, description = "The report", body = EngineReport))
)]
pub async fn engine(State(state): State<AppState>, _: StaffAuth) -> Response {
    let engine = state.engine.clone();
    match tokio::task::spawn_blocking(move || crate::observe::report::engine_report(&engine)).await
    {
        Ok(report) => json(StatusCode::OK, &report),
        Err(e) => problem(ApiError::internal(e)),
    }
}

/// `GET /readyz`: 200 once recovered — with `"status": "degraded"` while writes are
/// refused — and 503 only while recovering; the body lists every component's status
/// and the warnings.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    summary = "Readiness, per component",
    description = "`status` is `ready`, `degraded` (storage cannot make writes durable: \
writes are refused with 503, reads are served) or `recovering`. Each component (journal, \
redb, disk, mirror, content build) is `ok`, `warning`, `failing` or `disabled`, with a \
`detail` when not `ok` and its figures; only recovery makes the answer 503.",
    responses(
        (status = 200, description = "Ready, or degraded", body = Readiness),
        (status = 503, description = "Recovering: the journal is being replayed", body = Object, content_type = "application/json"),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Response {
    let readiness = crate::observe::ready::readiness(&state.engine);
    json(
        if readiness.is_ready() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &readiness,
    )
}

/// The request-metrics layer: counts and times each request by matched route pattern
/// (`unmatched` for the fallback, so unknown paths cannot grow the label set), method
/// and status class. A request whose future is dropped before it answers (the client
/// went away) is counted with status 499. A plain tower layer rather than
/// `middleware::from_fn`, which boxes the inner service and its future on every request
/// (the `observe` benchmark measures both).
#[derive(Debug, Clone, Copy, Default)]
pub struct TrackLayer;

impl<S> Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track { inner }
    }
}

/// The service of [`TrackLayer`].
#[derive(Debug, Clone)]
pub struct Track<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for Track<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = TrackFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let route = req.extensions().get::<MatchedPath>().cloned();
        let method = req.method().clone();
        TrackFuture {
            inner: self.inner.call(req),
            route,
            method,
            started: Instant::now(),
            answered: false,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Track`]: the inner future, recording when it answers (or is
    /// dropped unanswered).
    pub struct TrackFuture<F> {
        #[pin]
        inner: F,
        route: Option<MatchedPath>,
        method: Method,
        started: Instant,
        answered: bool,
    }

    impl<F> PinnedDrop for TrackFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if !*this.answered {
                record(this.route.as_ref(), this.method, CLIENT_CLOSED, this.started);
            }
        }
    }
}

/// The status recorded for a request abandoned before it answered (nginx's 499).
const CLIENT_CLOSED: u16 = 499;

fn record(route: Option<&MatchedPath>, method: &Method, status: u16, started: &Instant) {
    crate::observe::http_request(
        route.map_or("unmatched", MatchedPath::as_str),
        method.as_str(),
        status,
        started.elapsed(),
    );
}

impl<F, E> Future for TrackFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = std::task::ready!(this.inner.poll(cx));
        *this.answered = true;
        let status = match &output {
            Ok(response) => response.status().as_u16(),
            Err(_) => 500,
        };
        record(this.route.as_ref(), this.method, status, this.started);
        Poll::Ready(output)
    }
}
