//! Runs every controller of the operator against one client.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::Shared;
use kube::Client;

use crate::controller::{self, Context};

/// Runs all controllers until `shutdown` resolves, then lets in-flight
/// reconciles finish (so no status write is cut in half) and returns.
pub async fn run(
    client: Client,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let ctx = Arc::new(Context::new(client));
    let shutdown: Shared<_> = shutdown.boxed().shared();
    tracing::info!("controllers starting");
    futures::join!(
        controller::tenant::run(ctx.clone(), shutdown.clone()),
        controller::workspace::run(ctx.clone(), shutdown.clone()),
    );
    tracing::info!("controllers stopped");
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
