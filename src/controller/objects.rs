//! The workspace objects' own lifecycle, outside imports:
//! - manual commit and deploy (Basic and Standard editions do not commit
//!   imported objects automatically): the annotations
//!   `ferry.dev/commit-requested-at` and `ferry.dev/deploy-requested-at`
//!   commit or deploy the object's current revision;
//! - quality rules imported before their table exists attach to it when the
//!   table appears (a watch on tables, not a poll).

use std::sync::Arc;

use ferry_engine::naming::ANNOTATION_REAL_NAME;
use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{Context, Error};
use crate::api::{
    FileResource, Function, ObjectState, QualityRule, ScheduledTask, ServiceApi, Table,
};

pub const COMMIT_REQUESTED: &str = "ferry.dev/commit-requested-at";
pub const DEPLOY_REQUESTED: &str = "ferry.dev/deploy-requested-at";

/// What a manual request asks of an object's status, given its current
/// status and revision: `None` when nothing is to change. Pure.
pub fn manual_lifecycle(
    status: &Value,
    generation: i64,
    commit: bool,
    deploy: bool,
) -> Option<Value> {
    let committed = status.get("committedRevision").and_then(Value::as_i64);
    let deployed = status.get("deployedRevision").and_then(Value::as_i64);
    let now = Timestamp::now().to_string();
    if deployed == Some(generation) {
        // Deployed at this revision: committed too, nothing to do.
        return None;
    }
    if deploy {
        // Deploying what was never committed commits it too.
        return Some(
            json!({"state": "Deployed", "committedRevision": generation, "deployedRevision": generation, "lastTransitionTime": now}),
        );
    }
    if commit && committed != Some(generation) {
        return Some(
            json!({"state": "Committed", "committedRevision": generation, "lastTransitionTime": now}),
        );
    }
    None
}

/// Handles a manual commit or deploy request. Reconciles see only the
/// object's metadata (the watch is metadata-only: a 10,000-object import
/// must not make the operator hold 10,000 specs); the object itself is read
/// only when its annotations ask for something.
async fn reconcile_object<K>(
    meta: Arc<PartialObjectMeta<K>>,
    ctx: Arc<Context>,
) -> Result<Action, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let annotations = meta.annotations();
    let (commit, deploy) = (
        annotations.contains_key(COMMIT_REQUESTED),
        annotations.contains_key(DEPLOY_REQUESTED),
    );
    if !commit && !deploy {
        return Ok(Action::await_change());
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &meta.namespace().unwrap_or_default());
    let Some(obj) = api.get_opt(&meta.name_any()).await? else {
        return Ok(Action::await_change());
    };
    let value = serde_json::to_value(&obj).unwrap_or_default();
    let status = value.get("status").cloned().unwrap_or(Value::Null);
    let generation = obj.meta().generation.unwrap_or(1);
    if let Some(patch) = manual_lifecycle(&status, generation, commit, deploy) {
        // A merge patch of the lifecycle fields leaves the import's origin alone.
        api.patch_status(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": patch})),
        )
        .await?;
        tracing::info!(kind = %K::kind(&()), name = %obj.name_any(), generation, "manual lifecycle request applied");
    }
    Ok(Action::await_change())
}

/// Managed fields are the bulk of an object's metadata and nothing here
/// reads them: dropped before anything is cached.
fn without_managed_fields<K: Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
}

async fn run_kind<K>(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store::<PartialObjectMeta<K>>();
    // Only an annotation change can carry a request: status writes and
    // spec applies (most events during an import) reconcile nothing.
    let changes = watcher(
        Api::<PartialObjectMeta<K>>::all(ctx.client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(without_managed_fields)
    .reflect(writer)
    .applied_objects()
    .predicate_filter(predicates::annotations, Default::default());
    Controller::for_stream(changes, reader)
        .graceful_shutdown_on(shutdown)
        .run(
            |meta, ctx| async move {
                let c = ctx.clone();
                super::counted(&c, meta.clone().as_ref(), reconcile_object::<K>(meta, ctx)).await
            },
            super::error_policy,
            ctx,
        )
        .for_each(|_| async {})
        .await;
}

/// Attaches a quality rule to its table once the table exists.
async fn reconcile_rule(rule: Arc<QualityRule>, ctx: Arc<Context>) -> Result<Action, Error> {
    if rule.status.as_ref().is_none_or(|s| s.attached) {
        return Ok(Action::await_change());
    }
    let ns = rule.namespace().unwrap_or_default();
    let tables: Api<Table> = Api::namespaced(ctx.client.clone(), &ns);
    let present = tables
        .list(&Default::default())
        .await?
        .items
        .iter()
        .any(|t| t.spec.common.name == rule.spec.table);
    if present {
        let api: Api<QualityRule> = Api::namespaced(ctx.client.clone(), &ns);
        // A rule the import meant to deploy becomes active (Deployed) now
        // that its table exists; any other state stays as it is.
        let waiting = rule
            .status
            .as_ref()
            .is_some_and(|s| s.lifecycle.state == Some(ObjectState::WaitingForTable));
        let patch = if waiting {
            json!({"status": {"attached": true, "state": "Deployed",
                "deployedRevision": rule.metadata.generation,
                "lastTransitionTime": Timestamp::now().to_string()}})
        } else {
            json!({"status": {"attached": true}})
        };
        api.patch_status(
            &rule.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await?;
        tracing::info!(rule = %rule.spec.common.name, table = %rule.spec.table, "quality rule attached to its table");
    }
    Ok(Action::await_change())
}

/// The rules a table's appearance may attach: the unattached rules of its
/// namespace naming it. Tables are watched by metadata only, so the table's
/// name comes from the `ferry.dev/real-name` annotation imports write; a
/// table without it (made by hand) wakes every unattached rule of its
/// namespace, and each rule checks for itself.
fn rules_for_table(
    rules: &[Arc<QualityRule>],
    table: &PartialObjectMeta<Table>,
) -> Vec<ObjectRef<QualityRule>> {
    let ns = table.namespace();
    let name = table.annotations().get(ANNOTATION_REAL_NAME);
    rules
        .iter()
        .filter(|r| r.namespace() == ns)
        .filter(|r| r.status.as_ref().is_some_and(|s| !s.attached))
        .filter(|r| name.is_none_or(|n| *n == r.spec.table))
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

/// Runs the lifecycle controllers until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: futures::future::Shared<futures::future::BoxFuture<'static, ()>>,
) {
    let client = ctx.client.clone();
    let (reader, writer) = reflector::store::<QualityRule>();
    let rules = watcher(
        Api::<QualityRule>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(without_managed_fields)
    .reflect(writer)
    .applied_objects();
    let store = reader.clone();
    let tables = watcher(
        Api::<PartialObjectMeta<Table>>::all(client),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects();
    let attach = Controller::for_stream(rules, reader)
        // A table appearing attaches the rules of its namespace that name it.
        .watches_stream(tables, move |table| rules_for_table(&store.state(), &table))
        .graceful_shutdown_on(shutdown.clone())
        .run(
            |rule, ctx| async move {
                let c = ctx.clone();
                super::counted(&c, rule.clone().as_ref(), reconcile_rule(rule, ctx)).await
            },
            super::error_policy,
            ctx.clone(),
        )
        .for_each(|_| async {});
    futures::join!(
        attach,
        run_kind::<ScheduledTask>(ctx.clone(), shutdown.clone()),
        run_kind::<Table>(ctx.clone(), shutdown.clone()),
        run_kind::<FileResource>(ctx.clone(), shutdown.clone()),
        run_kind::<Function>(ctx.clone(), shutdown.clone()),
        run_kind::<ServiceApi>(ctx.clone(), shutdown.clone()),
        run_kind::<QualityRule>(ctx, shutdown),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_request_commits_the_current_revision_once() {
        let p = manual_lifecycle(&json!({"state": "Saved"}), 3, true, false).unwrap();
        assert_eq!(
            (p["state"].as_str(), p["committedRevision"].as_i64()),
            (Some("Committed"), Some(3))
        );
        assert!(
            manual_lifecycle(
                &json!({"state": "Committed", "committedRevision": 3}),
                3,
                true,
                false
            )
            .is_none()
        );
        // A new revision needs a new commit.
        assert!(
            manual_lifecycle(
                &json!({"state": "Committed", "committedRevision": 3}),
                4,
                true,
                false
            )
            .is_some()
        );
    }

    #[test]
    fn deploy_request_deploys_and_commits() {
        let p = manual_lifecycle(&Value::Null, 2, false, true).unwrap();
        assert_eq!(p["state"], "Deployed");
        assert_eq!(
            (
                p["committedRevision"].as_i64(),
                p["deployedRevision"].as_i64()
            ),
            (Some(2), Some(2))
        );
        assert!(manual_lifecycle(&json!({"deployedRevision": 2}), 2, true, true).is_none());
    }
}
