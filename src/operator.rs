//! Runs every controller of the operator against one client.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use kube::Client;

use crate::artifact::ArtifactStore;
use crate::controller::{self, Context};
use crate::metrics::Metrics;
use crate::server::{self, Readiness};

/// How the operator runs.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Where verified packages are stored.
    pub storage_dir: std::path::PathBuf,
    /// The base URL artifacts are served under, shown in package status.
    pub artifact_base_url: Option<String>,
    /// Where `/metrics` is served; not served when `None`.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Where artifacts are served for download and upload; not served when `None`.
    pub artifact_addr: Option<std::net::SocketAddr>,
    /// How the artifact endpoint serves: limits, timeouts, TLS, audiences.
    pub artifact_server: crate::artifact_server::ServerSettings,
    /// Where `/healthz` and `/readyz` are served; not served when `None`.
    pub health_addr: Option<std::net::SocketAddr>,
    /// Run only while holding this Lease, so two replicas never both act.
    pub leader_election: Option<LeaderElection>,
    /// Which addresses URL and object-store sources may reach.
    pub source_network: SourceNetwork,
    /// The most bytes a URL or object-store source may bring into the
    /// artifact store; `None` keeps the verifier's bound. The chart derives
    /// it from the volume size, so one package cannot fill the store.
    pub max_remote_bytes: Option<u64>,
    /// How often a package answers a new download request (chunks through
    /// the API server); `None` keeps [`crate::controller::chunks::DOWNLOAD_INTERVAL`].
    pub download_interval: Option<std::time::Duration>,
    /// The ServiceAccount name each namespace acts through; `None` keeps
    /// [`crate::controller::tenancy::DEFAULT_WORKSPACE_SERVICE_ACCOUNT`].
    pub workspace_service_account: Option<String>,
}

/// Which addresses URL and object-store sources may reach. By default only
/// public ones: a tenant's URL must not turn the operator into a client of
/// the apiserver on loopback, the cloud metadata service or a cluster
/// Service.
#[derive(Clone, Debug, Default)]
pub struct SourceNetwork {
    /// Also allow loopback, link-local, private and other non-public
    /// addresses (`--allow-private-sources`; tests and `dev-up` serve
    /// packages from 127.0.0.1).
    pub allow_private: bool,
    /// Further ranges refused even when public, such as a cluster's
    /// Service and Pod CIDRs when those are not private ranges.
    pub denied: Vec<ipnet::IpNet>,
}

/// The Lease that elects the one active replica.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub namespace: String,
    pub lease_name: String,
    /// This replica's identity (its pod name).
    pub identity: String,
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
    let metrics = Arc::new(Metrics::default());
    let readiness = Readiness::default();
    if let Some(addr) = settings.metrics_addr {
        tokio::spawn(log_failure(server::serve(
            addr,
            server::metrics_routes(metrics.clone()),
        )));
    }
    if let Some(addr) = settings.health_addr {
        tokio::spawn(log_failure(server::serve(
            addr,
            server::health_routes(readiness.clone()),
        )));
    }
    let mut ctx = Context::new(
        client.clone(),
        store,
        settings.artifact_base_url.clone(),
        metrics,
    );
    ctx.source_network = Arc::new(settings.source_network.clone());
    if let Some(max) = settings.max_remote_bytes {
        ctx.max_remote_bytes = max;
    }
    if let Some(interval) = settings.download_interval {
        ctx.download_interval = interval;
    }
    if let Some(name) = &settings.workspace_service_account {
        ctx.workspace_service_account = name.clone();
    }
    let ctx = Arc::new(ctx);
    if let Some(addr) = settings.artifact_addr {
        // A bad certificate is a configuration error: refuse to start.
        let guard = settings.artifact_server.guard()?;
        tokio::spawn(log_failure(server::serve_guarded(
            addr,
            crate::artifact_server::routes(ctx.clone(), settings.artifact_server.clone()),
            guard,
        )));
    }
    let shutdown: Shared<BoxFuture<'static, ()>> = shutdown.boxed().shared();
    // A standby replica is alive and ready; it only does not act.
    readiness.set(true);
    let (lost, lease): (Shared<BoxFuture<'static, ()>>, _) = match &settings.leader_election {
        None => (futures::future::pending().boxed().shared(), None),
        Some(le) => match leader::acquire(client, le, shutdown.clone()).await? {
            None => return Ok(()), // asked to stop before becoming leader
            Some((lost, lease)) => (lost.boxed().shared(), Some(lease)),
        },
    };
    let shutdown: Shared<BoxFuture<'static, ()>> = futures::future::select(shutdown, lost.clone())
        .map(|_| ())
        .boxed()
        .shared();
    tracing::info!("controllers starting");
    futures::join!(
        controller::tenant::run(ctx.clone(), shutdown.clone()),
        controller::workspace::run(ctx.clone(), shutdown.clone()),
        controller::package::run(ctx.clone(), shutdown.clone()),
        controller::import::run(ctx.clone(), shutdown.clone()),
        controller::objects::run(ctx.clone(), shutdown.clone()),
        collect_garbage(ctx.clone(), shutdown.clone()),
    );
    tracing::info!("controllers stopped");
    let was_lost = lost.peek().is_some();
    if let Some(lease) = lease {
        // Every holder of the lease watch is gone once these are: the lease
        // manager then gives the lease up, so a standby takes over at once
        // instead of after the lease expires.
        drop(shutdown);
        drop(lost);
        leader::release(lease).await;
    }
    if was_lost {
        // Another replica may act now: stop here, as controller-runtime does,
        // and let the pod restart as a standby.
        anyhow::bail!("lost the leader lease");
    }
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

async fn log_failure(f: impl std::future::Future<Output = anyhow::Result<()>>) {
    if let Err(e) = f.await {
        tracing::error!(error = %e, "server failed");
    }
}

mod leader {
    use futures::future::{BoxFuture, Shared};
    use kube::{Api, Client};
    use kube_lease_manager::LeaseManagerBuilder;

    use super::LeaderElection;

    /// The lease manager's task: it renews the lease while a receiver of its
    /// watch lives, and releases it when the last one is dropped.
    pub type Lease =
        tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>;

    /// How long a stopping replica waits for the lease to be given up.
    const RELEASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

    /// Waits until the lease manager has given the lease up (the caller
    /// dropped every receiver first).
    pub async fn release(lease: Lease) {
        match tokio::time::timeout(RELEASE_TIMEOUT, lease).await {
            Ok(Ok(Ok(_))) => tracing::info!("released the leader lease"),
            Ok(Ok(Err(e))) => {
                tracing::warn!(error = %e, "releasing the leader lease failed; a standby takes over when it expires")
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "the leader election task failed"),
            Err(_) => tracing::warn!(
                "releasing the leader lease timed out; a standby takes over when it expires"
            ),
        }
    }

    /// How often a standby looks whether the leader gave the lease up. The
    /// lease manager itself sleeps until the lease would expire (15 s after
    /// the last renewal); a replica stopping cleanly releases it, and this
    /// look lets the standby take it within a couple of seconds instead.
    const STANDBY_LOOK: std::time::Duration = std::time::Duration::from_secs(2);

    /// Waits until this replica holds the lease. Returns a future that
    /// resolves when the lease is lost and the lease manager's task, or
    /// `None` if `shutdown` came first.
    pub async fn acquire(
        client: Client,
        le: &LeaderElection,
        shutdown: Shared<BoxFuture<'static, ()>>,
    ) -> anyhow::Result<
        Option<(
            impl std::future::Future<Output = ()> + Send + 'static,
            Lease,
        )>,
    > {
        let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
            Api::namespaced(client.clone(), &le.namespace);
        tracing::info!(lease = %le.lease_name, identity = %le.identity, "waiting for the leader lease");
        'manager: loop {
            let manager = LeaseManagerBuilder::new(client.clone(), &le.lease_name)
                .with_namespace(&le.namespace)
                .with_identity(&le.identity)
                .with_duration(15)
                .with_grace(5)
                .build()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "leader election on Lease {}/{}: {e}",
                        le.namespace,
                        le.lease_name
                    )
                })?;
            let (mut rx, task) = manager.watch().await;
            loop {
                if *rx.borrow_and_update() {
                    tracing::info!("acquired the leader lease");
                    return Ok(Some((
                        async move {
                            loop {
                                if rx.changed().await.is_err() || !*rx.borrow() {
                                    tracing::error!("lost the leader lease");
                                    return;
                                }
                            }
                        },
                        task,
                    )));
                }
                tokio::select! {
                    changed = rx.changed() => changed.map_err(|_| anyhow::anyhow!("leader election stopped"))?,
                    _ = shutdown.clone() => return Ok(None),
                    _ = tokio::time::sleep(STANDBY_LOOK) => {
                        let holder = leases
                            .get_opt(&le.lease_name)
                            .await
                            .ok()
                            .flatten()
                            .and_then(|l| l.spec)
                            .and_then(|s| s.holder_identity)
                            .filter(|h| !h.is_empty());
                        if holder.is_none() {
                            // Given up by its holder: a new manager locks a
                            // free lease at once (the current one sleeps
                            // until the old holder's lease would expire).
                            tracing::info!("the leader lease is free; taking it");
                            task.abort();
                            continue 'manager;
                        }
                    }
                }
            }
        }
    }
}

/// Every ten minutes, deletes stored artifacts nothing uses any more, abandoned
/// transfers in the store's `incoming/`, and download chunks no client
/// claimed within ten minutes. An artifact is kept while a MigrationPackage's
/// status names it, while an ImportTask that is not finished names it in its
/// status (the package may be gone, the import still reads it), for an hour
/// after an upload (so that the package naming it can be created), and for
/// [`GC_GRACE`] after it was committed (verified, its status not yet written).
async fn collect_garbage(ctx: Arc<Context>, shutdown: Shared<BoxFuture<'static, ()>>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {},
            _ = shutdown.clone() => return,
        }
        match crate::controller::chunks::remove_stale_downloads(
            &ctx.client,
            crate::controller::chunks::DOWNLOAD_TTL,
        )
        .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "unclaimed download chunks removed"),
            Err(e) => tracing::warn!(error = %e, "download chunk collection failed"),
        }
        let keep = match in_use(&ctx.client).await {
            Ok(keep) => keep,
            Err(e) => {
                // Not knowing what is in use, remove nothing.
                tracing::warn!(error = %e, "artifact garbage collection skipped");
                continue;
            }
        };
        let mut keep = keep;
        keep.extend(
            ctx.store
                .recent_uploads(std::time::Duration::from_secs(3600)),
        );
        match ctx
            .store
            .collect_garbage(&keep, GC_GRACE, ABANDONED_TRANSFER)
        {
            Ok(sweep) if sweep == Default::default() => {}
            Ok(sweep) => tracing::info!(
                removed = sweep.removed,
                incoming_removed = sweep.incoming_removed,
                failed = sweep.failed,
                "artifact garbage collected"
            ),
            Err(e) => tracing::warn!(error = %e, "artifact garbage collection failed"),
        }
    }
}

/// How long a committed artifact is kept although nothing names it yet:
/// longer than any verification-to-status window.
pub const GC_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);
/// A file in `incoming/` untouched this long is an abandoned transfer: every
/// transfer writes at least every 30 s and ends within 5 minutes, and a
/// package's verification finishes well within the hour.
pub const ABANDONED_TRANSFER: std::time::Duration = std::time::Duration::from_secs(3600);

/// The digests packages and unfinished imports use.
pub async fn in_use(client: &Client) -> Result<std::collections::HashSet<String>, kube::Error> {
    use kube::Api;
    let packages = Api::<crate::api::MigrationPackage>::all(client.clone())
        .list(&Default::default())
        .await?;
    let mut keep: std::collections::HashSet<String> = packages
        .items
        .iter()
        .filter_map(|p| {
            p.status
                .as_ref()?
                .artifact
                .as_ref()
                .map(|a| a.digest.clone())
        })
        .collect();
    // Read as plain JSON: whatever field of an unfinished task's status
    // names a digest (the package it imports) keeps that artifact.
    let tasks = Api::<kube::api::DynamicObject>::all_with(
        client.clone(),
        &kube::api::ApiResource::erase::<crate::api::ImportTask>(&()),
    )
    .list(&Default::default())
    .await?;
    for task in tasks.items {
        let status = task.data.get("status");
        let phase = status
            .and_then(|s| s.get("phase"))
            .and_then(|p| p.as_str())
            .unwrap_or("Pending");
        if matches!(phase, "Completed" | "ImportFailed") {
            continue;
        }
        if let Some(status) = status {
            digests_in(status, &mut keep);
        }
    }
    Ok(keep)
}

/// Every `sha256:<64 hex>` string in `value`.
fn digests_in(value: &serde_json::Value, out: &mut std::collections::HashSet<String>) {
    match value {
        serde_json::Value::String(s) => {
            let hex = s.strip_prefix("sha256:").unwrap_or_default();
            if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                out.insert(s.clone());
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| digests_in(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| digests_in(v, out)),
        _ => {}
    }
}
