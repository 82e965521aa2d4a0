//! The Tenant controller: shows the edition's limits in status.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde::Serialize;

use super::{Context, Error, apply_status, publish_if_changed};
use crate::api::{EditionLimits, Tenant};
use crate::conditions::{Outcome, summarise};
use crate::edition;

/// The part of the status this controller owns. `exportedPackages` is not
/// here: the export path owns that counter, and server-side apply leaves
/// fields of other managers alone.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TenantStatusPatch {
    observed_generation: Option<i64>,
    limits: EditionLimits,
    conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
}

#[tracing::instrument(skip_all, fields(tenant = %tenant.name_any()))]
async fn reconcile(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action, Error> {
    let limits = edition::limits(tenant.spec.edition);
    let before = tenant
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let outcome = Outcome::ready(
        "EditionApplied",
        format!("{:?} edition limits apply", tenant.spec.edition),
    );
    let generation = tenant.metadata.generation;
    let conditions = summarise(&before, &outcome, generation, Timestamp::now());
    let api: Api<Tenant> = Api::all(ctx.client.clone());
    apply_status(
        &api,
        tenant.as_ref(),
        TenantStatusPatch {
            observed_generation: generation,
            limits,
            conditions: conditions.clone(),
        },
    )
    .await?;
    publish_if_changed(&ctx, tenant.as_ref(), &before, &conditions).await;
    Ok(Action::await_change())
}

/// Runs the Tenant controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<Tenant> = Api::all(ctx.client.clone());
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(
            |obj, ctx| async move {
                let c = ctx.clone();
                let key = obj.clone();
                super::counted(
                    &c,
                    key.as_ref(),
                    super::timed(&c, "tenant", reconcile(obj, ctx)),
                )
                .await
            },
            super::error_policy,
            ctx,
        )
        .for_each(|_| async {})
        .await;
}
