//! The reconcilers. Each drives pure logic (checks, the edition table, later
//! the import engine) and persists what it concluded in status.

mod context;
mod error;
mod export;
pub mod import;
pub mod package;
mod remote;
mod status;
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
pub(crate) fn error_policy<K: kube::Resource>(
    obj: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    let key = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
    let attempts = ctx.failed(&key);
    tracing::warn!(object = %key, reason = error.reason(), attempts, error = %error, "reconcile failed");
    match error.retry_after(attempts) {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    }
}
