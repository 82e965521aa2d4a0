use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Context;
use crate::conditions::READY;

/// The one field manager Ferry writes with.
pub const FIELD_MANAGER: &str = "ferry";

/// Writes `status` with server-side apply on the status subresource.
pub async fn apply_status<K>(
    api: &Api<K>,
    obj: &K,
    status: impl Serialize,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// Publishes an event when the `Ready` condition changed status or reason:
/// events mark changes, not every pass.
pub async fn publish_if_changed<K>(
    ctx: &Context,
    obj: &K,
    before: &[Condition],
    after: &[Condition],
) where
    K: Resource<DynamicType = ()>,
{
    let key = |c: &[Condition]| {
        crate::conditions::find(c, READY).map(|r| (r.status.clone(), r.reason.clone()))
    };
    let Some((status, reason)) = key(after) else {
        return;
    };
    if key(before) == Some((status.clone(), reason.clone())) {
        return;
    }
    let note = crate::conditions::find(after, READY).map(|c| c.message.clone());
    let event = Event {
        type_: if status == "True" {
            EventType::Normal
        } else {
            EventType::Warning
        },
        reason,
        note,
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, "could not publish event");
    }
}
