//! The testable entry point: [`serve`] runs the engine's background jobs and the HTTP
//! router on a given listener until a shutdown future resolves, then shuts down
//! gracefully (drain requests, flush the journal, final checkpoint) — mini-redis' shape.

use std::future::Future;

use tokio::net::TcpListener;

use crate::engine::Engine;

/// Serves `engine` on `listener` until `shutdown` resolves.
///
/// # Errors
/// An I/O error of the listener, or the final checkpoint's error.
pub async fn serve(
    engine: Engine,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let checkpoints = {
        let engine = engine.clone();
        let rx = stop_rx.clone();
        tokio::spawn(async move { engine.run_checkpoints(rx).await })
    };
    let builds = {
        let engine = engine.clone();
        let rx = stop_rx.clone();
        tokio::spawn(async move { engine.run_builds(rx).await })
    };
    let mirror = {
        let engine = engine.clone();
        let rx = stop_rx.clone();
        tokio::spawn(crate::persist::mirror::run(engine, rx))
    };
    let probe = {
        let engine = engine.clone();
        let rx = stop_rx.clone();
        tokio::spawn(async move { engine.run_storage_probe(rx).await })
    };
    let reconcile = {
        let engine = engine.clone();
        let rx = stop_rx.clone();
        tokio::spawn(async move { engine.run_reconcile_schedule(rx).await })
    };
    let audit = {
        let engine = engine.clone();
        let rx = stop_rx.clone();
        tokio::spawn(async move { engine.run_audit(rx).await })
    };
    let app = crate::http::router(engine.clone());
    let result = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: draining requests");
    })
    .await;
    let _ = stop_tx.send(true);
    let _ = checkpoints.await;
    let _ = builds.await;
    let _ = mirror.await;
    let _ = probe.await;
    let _ = reconcile.await;
    // After the last request: the audit task journals what is still buffered.
    let _ = audit.await;
    let engine_for_close = engine.clone();
    let closed = tokio::task::spawn_blocking(move || engine_for_close.shutdown()).await;
    result?;
    match closed {
        Ok(Ok(())) => {
            tracing::info!("journal flushed and final checkpoint written");
            Ok(())
        }
        Ok(Err(e)) => Err(anyhow::anyhow!("final checkpoint failed: {e}")),
        Err(e) => Err(anyhow::anyhow!("shutdown task failed: {e}")),
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
