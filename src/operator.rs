//! Runs every controller of the operator against one client.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::Shared;
use kube::Client;

use crate::artifact::ArtifactStore;
use crate::controller::{self, Context};

/// How the operator runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where verified packages are stored.
    pub storage_dir: std::path::PathBuf,
    /// The base URL artifacts are served under, shown in package status.
    pub artifact_base_url: Option<String>,
}

/// Runs all controllers until `shutdown` resolves, then lets in-flight
/// reconciles finish (so no status write is cut in half) and returns.
pub async fn run(
    client: Client,
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let store = ArtifactStore::open(&settings.storage_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot open the artifact store at {}: {e}",
            settings.storage_dir.display()
        )
    })?;
    let ctx = Arc::new(Context::new(
        client,
        store,
        settings.artifact_base_url.clone(),
    ));
    let shutdown: Shared<_> = shutdown.boxed().shared();
    tracing::info!("controllers starting");
    futures::join!(
        controller::tenant::run(ctx.clone(), shutdown.clone()),
        controller::workspace::run(ctx.clone(), shutdown.clone()),
        controller::package::run(ctx.clone(), shutdown.clone()),
        controller::import::run(ctx.clone(), shutdown.clone()),
    );
    tracing::info!("controllers stopped");
    Ok(())
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
