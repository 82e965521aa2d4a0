//! The reconcilers. Each drives pure logic (checks, the edition table, later
//! the import engine) and persists what it concluded in status.

pub mod chunks;
mod context;
mod error;
mod export;
pub mod import;
pub mod objects;
pub mod package;
mod remote;
mod status;
pub mod tenancy;
pub mod tenant;
pub mod workspace;

pub use context::Context;
pub use error::Error;
pub use status::{FIELD_MANAGER, apply_status, publish_if_changed};

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::controller::Action;

/// Logs the failure and decides when to come back: backoff for API errors,
/// the stated delay when waiting, nothing (a watch brings it back) when stalled.
pub(crate) fn error_policy<K: kube::Resource<DynamicType = ()>>(
    obj: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    ctx.metrics
        .failed(controller_name(&K::kind(&())), error.reason());
    let key = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
    let attempts = ctx.failed(obj.as_ref());
    tracing::warn!(object = %key, reason = error.reason(), attempts, error = %error, "reconcile failed");
    match error.retry_after(attempts) {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    }
}

/// The metrics label of the controller of a kind (a fixed set).
pub(crate) fn controller_name(kind: &str) -> &'static str {
    match kind {
        "Tenant" => "tenant",
        "Workspace" => "workspace",
        "MigrationPackage" => "package",
        "ImportTask" => "import",
        "QualityRule" => "qualityrule",
        _ => "other",
    }
}

/// Runs one reconcile of `obj`. A pass that got through forgets the
/// object's failures, so its next failure backs off from the start: the one
/// place every controller resets what [`error_policy`] counts.
pub(crate) async fn counted<K, F>(ctx: &Context, obj: &K, reconcile: F) -> Result<Action, Error>
where
    K: kube::Resource<DynamicType = ()>,
    F: std::future::Future<Output = Result<Action, Error>>,
{
    let out = reconcile.await;
    if out.is_ok() {
        ctx.succeeded(obj);
    }
    out
}

/// Runs `reconcile` and records its duration under `controller`.
pub(crate) async fn timed<F, T>(ctx: &Context, controller: &'static str, reconcile: F) -> T
where
    F: std::future::Future<Output = T>,
{
    let start = std::time::Instant::now();
    let out = reconcile.await;
    ctx.metrics.reconciled(controller, start);
    out
}
