//! The Workspace controller: checks the spec, makes sure the namespace that
//! holds the workspace's objects exists and is claimed by this workspace, and
//! copies the tenant's edition into status.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde::Serialize;

use super::{Context, Error, FIELD_MANAGER, apply_status, publish_if_changed};
use crate::api::{Edition, Tenant, Workspace, WorkspaceSpec};
use crate::conditions::{Outcome, summarise};

/// The label that ties a namespace to the workspace whose objects it holds.
pub const WORKSPACE_LABEL: &str = "ferry.dev/workspace";

/// Problems in a workspace spec that the schema cannot express (the schema
/// already refuses duplicate names; this also guards CRDs installed without
/// it and gives one message listing every problem).
pub fn check_spec(spec: &WorkspaceSpec) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for r in &spec.compute_resources {
        if !seen.insert(r.name.as_str()) {
            problems.push(format!(
                "spec.computeResources: the name {:?} is used more than once; names must be unique",
                r.name
            ));
        }
    }
    let mut seen = HashSet::new();
    for g in &spec.resource_groups {
        if !seen.insert(g.name.as_str()) {
            problems.push(format!(
                "spec.resourceGroups: the name {:?} is used more than once; names must be unique",
                g.name
            ));
        }
    }
    problems
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WorkspaceStatusPatch {
    observed_generation: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    edition: Option<Edition>,
    conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
}

#[tracing::instrument(skip_all, fields(workspace = %ws.name_any()))]
async fn reconcile(ws: Arc<Workspace>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (outcome, edition) = match ensure(&ws, &ctx).await {
        Ok(edition) => (
            Outcome::ready(
                "WorkspaceReady",
                format!(
                    "namespace {} holds the workspace's objects",
                    ws.spec.namespace
                ),
            ),
            Some(edition),
        ),
        Err(Error::Stalled { reason, message }) => (Outcome::stalled(reason, message), None),
        Err(e) => return Err(e),
    };
    let before = ws
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let generation = ws.metadata.generation;
    let conditions = summarise(&before, &outcome, generation, Timestamp::now());
    let api: Api<Workspace> = Api::all(ctx.client.clone());
    apply_status(
        &api,
        ws.as_ref(),
        WorkspaceStatusPatch {
            observed_generation: generation,
            edition,
            conditions: conditions.clone(),
        },
    )
    .await?;
    publish_if_changed(&ctx, ws.as_ref(), &before, &conditions).await;
    Ok(Action::await_change())
}

/// Checks the spec, the tenant and the namespace; returns the tenant's edition.
async fn ensure(ws: &Workspace, ctx: &Context) -> Result<Edition, Error> {
    let problems = check_spec(&ws.spec);
    if !problems.is_empty() {
        return Err(Error::Stalled {
            reason: "InvalidSpec",
            message: problems.join("; "),
        });
    }
    let tenants: Api<Tenant> = Api::all(ctx.client.clone());
    let Some(tenant) = tenants.get_opt(&ws.spec.tenant).await? else {
        return Err(Error::Stalled {
            reason: "TenantNotFound",
            message: format!(
                "spec.tenant: Tenant {:?} does not exist; create it or correct the name",
                ws.spec.tenant
            ),
        });
    };
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let name = ws.name_any();
    let existing = namespaces.get_opt(&ws.spec.namespace).await?;
    let claimed_by = existing
        .as_ref()
        .and_then(|ns| ns.labels().get(WORKSPACE_LABEL))
        .filter(|owner| **owner != name);
    if let Some(owner) = claimed_by {
        return Err(Error::Stalled {
            reason: "NamespaceClaimed",
            message: format!(
                "spec.namespace: namespace {:?} already holds workspace {owner:?}",
                ws.spec.namespace
            ),
        });
    }
    // Server-side apply creates the namespace when missing and otherwise only
    // adds our label, leaving everything else on it alone.
    let patch = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": ws.spec.namespace, "labels": { WORKSPACE_LABEL: name } },
    });
    namespaces
        .patch(
            &ws.spec.namespace,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&patch),
        )
        .await?;
    Ok(tenant.spec.edition)
}

/// Runs the Workspace controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let controller = Controller::new(
        Api::<Workspace>::all(client.clone()),
        watcher::Config::default(),
    );
    let store = controller.store();
    controller
        // A tenant appearing or changing edition re-checks its workspaces.
        .watches(
            Api::<Tenant>::all(client.clone()),
            watcher::Config::default(),
            move |tenant| {
                let name = tenant.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|ws| ws.spec.tenant == name)
                    .map(|ws| ObjectRef::from_obj(ws.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        // A workspace namespace deleted or relabelled is noticed.
        .watches(
            Api::<Namespace>::all(client),
            watcher::Config::default().labels(WORKSPACE_LABEL),
            |ns| {
                ns.labels()
                    .get(WORKSPACE_LABEL)
                    .map(|ws| ObjectRef::<Workspace>::new(ws))
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(
            |obj, ctx| async move {
                let c = ctx.clone();
                let key = obj.clone();
                super::counted(
                    &c,
                    key.as_ref(),
                    super::timed(&c, "workspace", reconcile(obj, ctx)),
                )
                .await
            },
            super::error_policy,
            ctx,
        )
        .for_each(|_| async {})
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ComputeResource, ResourceGroup, ResourceGroupType, WorkspaceMode};

    fn spec() -> WorkspaceSpec {
        WorkspaceSpec {
            tenant: "acme".into(),
            namespace: "sales-prod".into(),
            project_name: "sales_prod".into(),
            region: None,
            mode: WorkspaceMode::Standard,
            compute_resources: vec![],
            resource_groups: vec![],
            default_resource_group: None,
        }
    }
    fn compute(name: &str) -> ComputeResource {
        ComputeResource {
            name: name.into(),
            type_: "MaxCompute".into(),
            project: None,
        }
    }

    #[test]
    fn unique_names_pass() {
        let mut s = spec();
        s.compute_resources = vec![compute("a"), compute("b")];
        assert!(check_spec(&s).is_empty());
    }

    #[test]
    fn duplicate_compute_and_group_names_are_each_reported() {
        let mut s = spec();
        s.compute_resources = vec![compute("a"), compute("a")];
        s.resource_groups = vec![
            ResourceGroup {
                name: "g".into(),
                type_: ResourceGroupType::Serverless,
            },
            ResourceGroup {
                name: "g".into(),
                type_: ResourceGroupType::Scheduling,
            },
        ];
        let problems = check_spec(&s);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("spec.computeResources") && problems[0].contains("\"a\""));
        assert!(problems[1].contains("spec.resourceGroups"));
    }
}
