//! Observability routes (operations.md "Observability", api.md): `GET /metrics`
//! (Prometheus text), `GET /api/v1/admin/engine` (the engine report), the `/readyz`
//! handler, and the layer that counts and times every request by matched route.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, State};
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::{Layer, Service};

use super::extract::AdminAuth;
use super::{AppState, json};

/// This module's routes (`/readyz` stays in the main route table); `/metrics` only
/// with `metrics.enabled`.
pub fn routes(metrics_enabled: bool) -> Router<AppState> {
    let router = Router::new().route("/api/v1/admin/engine", get(engine));
    if metrics_enabled {
        router.route("/metrics", get(metrics))
    } else {
        router
    }
}

/// `GET /metrics`: the Prometheus text exposition (format 0.0.4).
pub async fn metrics(State(state): State<AppState>) -> Response {
    let engine = state.engine.clone();
    // The census walks every student in memory: keep it off the async threads.
    let body = match tokio::task::spawn_blocking(move || crate::observe::render(&engine)).await {
        Ok(body) => body,
        Err(e) => return super::problem(crate::error::ApiError::internal(e)),
    };
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// `GET /api/v1/admin/engine`: students in memory, memory estimate, cards by season,
/// journal, checkpoints, mirror, degraded state, build queue, jobs and task runs.
pub async fn engine(State(state): State<AppState>, _: AdminAuth) -> Response {
    let engine = state.engine.clone();
    match tokio::task::spawn_blocking(move || crate::observe::report::engine_report(&engine)).await
    {
        Ok(report) => json(StatusCode::OK, &report),
        Err(e) => super::problem(crate::error::ApiError::internal(e)),
    }
}

/// `GET /readyz`: 200 once recovered while the journal accepts writes, else 503; the
/// body lists every component's status and the warnings.
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
