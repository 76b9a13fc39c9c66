//! Criterion micro-benchmark of the request-metrics layer (`http::observe::TrackLayer`):
//! one request through an axum router with a trivial handler on the progress route's
//! pattern, with and without the layer, so the difference is the middleware's cost per
//! request (matched-route label, counter and histogram); a do-nothing `from_fn`
//! middleware separates axum's share from the recording. Also the cost of rendering
//! `/metrics` once the router has seen a few hundred label sets.
//!
//! First an interleaved measurement (batches of each variant in turn, robust to a
//! machine whose load drifts), then criterion's.
//!
//! Run: `cargo bench --bench observe -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use criterion::Criterion;
use tower::ServiceExt;

/// Which middleware wraps the route.
#[derive(Clone, Copy)]
enum Layer {
    None,
    /// A `from_fn` middleware that only passes the request on: the framework's share.
    Noop,
    /// The request-metrics layer.
    Metrics,
}

async fn noop(req: Request<Body>, next: axum::middleware::Next) -> axum::response::Response {
    next.run(req).await
}

fn router(layer: Layer) -> Router {
    let router = Router::new().route(
        "/api/v1/subjects/{subject_id}/progress",
        get(|| async { "ok" }),
    );
    match layer {
        Layer::None => router,
        Layer::Noop => router.layer(axum::middleware::from_fn(noop)),
        Layer::Metrics => router.layer(memora::http::observe::TrackLayer),
    }
}

fn request() -> Request<Body> {
    Request::get("/api/v1/subjects/front-end-libraries/progress")
        .body(Body::empty())
        .unwrap_or_default()
}

/// Median of `v` (sorted in place).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The three routers in alternating batches (none, noop, metrics, none, …), so that a
/// machine whose load drifts (a shared one) affects all three alike; prints the median
/// ns per request of each and the median per-round difference to the bare router.
fn interleaved(rt: &tokio::runtime::Runtime) {
    const ROUNDS: usize = 40;
    const BATCH: usize = 20_000;
    let layers = [Layer::None, Layer::Noop, Layer::Metrics];
    let apps: Vec<Router> = layers.iter().map(|l| router(*l)).collect();
    let mut ns: [Vec<f64>; 3] = Default::default();
    for _ in 0..ROUNDS {
        for (i, app) in apps.iter().enumerate() {
            let t = std::time::Instant::now();
            rt.block_on(async {
                for _ in 0..BATCH {
                    let _ = black_box(app.clone().oneshot(request()).await);
                }
            });
            ns[i].push(t.elapsed().as_nanos() as f64 / BATCH as f64);
        }
    }
    let mut noop: Vec<f64> = ns[1].iter().zip(&ns[0]).map(|(a, b)| a - b).collect();
    let mut metrics: Vec<f64> = ns[2].iter().zip(&ns[0]).map(|(a, b)| a - b).collect();
    println!(
        "interleaved, {ROUNDS} rounds of {BATCH} requests: median ns/request: bare {:.0}, \
         noop middleware {:.0}, metrics layer {:.0}; median per-round difference to bare: \
         noop {:+.0} ns, metrics {:+.0} ns",
        median(&mut ns[0].clone()),
        median(&mut ns[1].clone()),
        median(&mut ns[2].clone()),
        median(&mut noop),
        median(&mut metrics),
    );
}

fn main() {
    let Some(handle) = memora::observe::install() else {
        eprintln!("observe bench: the metrics recorder could not be installed");
        return;
    };
    let rt = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("observe bench: no runtime: {e}");
            return;
        }
    };
    interleaved(&rt);
    let mut c = Criterion::default().configure_from_args();
    for (name, layer) in [
        ("request/without_metrics", Layer::None),
        ("request/noop_middleware", Layer::Noop),
        ("request/with_metrics", Layer::Metrics),
    ] {
        let app = router(layer);
        c.bench_function(name, |b| {
            b.iter(|| rt.block_on(app.clone().oneshot(black_box(request()))))
        });
    }
    // Rendering with 300 label sets (e.g. 50 routes × 2 methods × 3 status classes).
    for i in 0..300u32 {
        memora::observe::http_request(
            &format!("/api/v1/bench/route/{}", i / 6),
            ["GET", "POST"][(i % 2) as usize],
            [200, 404, 503][(i / 2 % 3) as usize],
            std::time::Duration::from_micros(u64::from(i) * 10),
        );
    }
    c.bench_function("render/300_series", |b| {
        b.iter(|| black_box(handle.render()))
    });
    c.final_summary();
}
