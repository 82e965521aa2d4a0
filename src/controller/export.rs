//! Export: write a package from a workspace's objects, and count it against
//! the tenant's cumulative limit exactly once, and only when it succeeds.
//!
//! The seed: "Each successful export task generates one package", and the
//! edition limit counts packages. So the slot is claimed (`claim`) only
//! after the package is written and verified, right before it is stored;
//! any failure of the package afterwards, or of a later attempt at the
//! same package, releases it (`release`). Both are compare-and-swap writes
//! of the Tenant's status keyed by the package's UID, so they are exact
//! under concurrency and idempotent across operator restarts.

use std::collections::BTreeMap;
use std::io::Cursor;

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, PostParams};
use kube::core::{Selector, SelectorExt};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::Context;
use super::package::{Refusal, refuse};
use crate::api::{
    Edition, ExportMode, ExportSource, FileResource, Function, MigrationPackage, ObjectState,
    ObjectType, QualityRule, ScheduledTask, ServiceApi, Table, Tenant, Workspace,
};
use crate::edition;

/// One workspace object as export sees it.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub object_type: ObjectType,
    pub spec: Map<String, Value>,
    pub labels: BTreeMap<String, String>,
    pub state: ObjectState,
    /// The last time the object changed (created or changed state).
    pub changed_at: Option<Timestamp>,
}

/// Which candidates an export takes, and which it skips with a reason.
/// Pure: the selection rules of `spec.source.export`.
pub fn select(export: &ExportSource, candidates: Vec<Candidate>) -> (Vec<Candidate>, Vec<String>) {
    let mut taken = Vec::new();
    let mut skipped = Vec::new();
    let selector: Option<Selector> = export
        .include
        .as_ref()
        .and_then(|i| i.selector.clone())
        .and_then(|s| Selector::try_from(s).ok());
    for c in candidates {
        let name = c
            .spec
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if c.spec.get("studio").and_then(Value::as_str) == Some("New") {
            // The seed: objects of the new-version Data Studio cannot be exported.
            skipped.push(format!(
                "{}/{name}: created in the new-version Data Studio, which cannot be exported",
                c.object_type
            ));
            continue;
        }
        if !export.object_status.is_empty() && !export.object_status.contains(&c.state) {
            continue;
        }
        let wanted = match export.mode {
            ExportMode::Full => true,
            ExportMode::Incremental => match (&export.since, c.changed_at) {
                (Some(since), Some(at)) => at > since.0,
                _ => true,
            },
            ExportMode::Custom => {
                let include = export.include.clone().unwrap_or_default();
                (include.types.is_empty() || include.types.contains(&c.object_type))
                    && (include.names.is_empty() || include.names.contains(&name))
                    && selector.as_ref().is_none_or(|s| s.matches(&c.labels))
            }
        };
        if wanted {
            taken.push(c);
        }
    }
    (taken, skipped)
}

async fn list<K>(
    ctx: &Context,
    ns: &str,
    object_type: ObjectType,
) -> Result<Vec<Candidate>, kube::Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    let mut out = Vec::new();
    for obj in api.list(&ListParams::default()).await? {
        let value = serde_json::to_value(&obj).unwrap_or_default();
        let spec = value
            .get("spec")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let status = value.get("status");
        let state = status
            .and_then(|s| s.get("state"))
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or(ObjectState::Saved);
        let changed_at = status
            .and_then(|s| s.get("lastTransitionTime"))
            .and_then(Value::as_str)
            .and_then(|t| t.parse().ok())
            .or(obj.meta().creation_timestamp.as_ref().map(|t| t.0));
        out.push(Candidate {
            object_type,
            spec,
            labels: obj.labels().clone(),
            state,
            changed_at,
        });
    }
    Ok(out)
}

/// A written (not yet verified) export.
pub(super) struct Exported {
    pub bytes: Vec<u8>,
    /// One line per object left out, with the reason.
    pub skipped: Vec<String>,
}

/// Most skipped objects listed in a package's status.
const MAX_SKIPPED_LINES: usize = 100;

/// The first lines of `skipped` for status (their count is kept apart).
pub(super) fn first_lines(mut skipped: Vec<String>) -> Vec<String> {
    skipped.truncate(MAX_SKIPPED_LINES);
    skipped
}

/// The source workspace and its tenant.
async fn source_of(ctx: &Context, export: &ExportSource) -> Result<(Workspace, Tenant), Refusal> {
    super::package::check_object_name("spec.source.export.workspace", &export.workspace)?;
    let Some(ws) = Api::<Workspace>::all(ctx.client.clone())
        .get_opt(&export.workspace)
        .await?
    else {
        return Err(refuse(
            "SourceNotFound",
            format!(
                "spec.source.export.workspace: Workspace {:?} does not exist",
                export.workspace
            ),
        ));
    };
    let tenants: Api<Tenant> = Api::all(ctx.client.clone());
    let Some(tenant) = tenants.get_opt(&ws.spec.tenant).await? else {
        return Err(refuse(
            "TenantNotFound",
            format!(
                "Tenant {:?} of Workspace {:?} does not exist",
                ws.spec.tenant,
                ws.name_any()
            ),
        ));
    };
    Ok((ws, tenant))
}

/// Only who administers a workspace exports it. A package exports its own
/// namespace's workspace freely; another workspace only when the package's
/// namespace's workspace identity may start imports there (`create
/// importtasks`), the right that makes someone a workspace administrator.
/// Reading the Workspace object is not enough: viewers of a tenant read
/// every Workspace.
async fn may_export(ctx: &Context, pkg: &MigrationPackage, ws: &Workspace) -> Result<(), Refusal> {
    let ns = pkg.namespace().unwrap_or_default();
    let source = &ws.spec.namespace;
    if *source == ns
        || super::tenancy::identity_may(ctx, &ns, "create", "ferry.dev", "importtasks", source)
            .await?
    {
        return Ok(());
    }
    Err(refuse(
        "ExportForbidden",
        format!(
            "spec.source.export.workspace: Workspace {:?} lives in namespace {source}, which namespace {ns} does not administer. {}",
            ws.name_any(),
            super::tenancy::grant_hint(
                ctx,
                &ns,
                source,
                "ferry-workspace-admin (create on importtasks is what is checked)"
            )
        ),
    ))
}

/// Writes the package of `export`. Refused early when the tenant is already
/// at its limit (the slot itself is claimed after verification).
pub(super) async fn export_package(
    ctx: &Context,
    pkg: &MigrationPackage,
    export: &ExportSource,
) -> Result<Exported, Refusal> {
    let (ws, tenant) = source_of(ctx, export).await?;
    may_export(ctx, pkg, &ws).await?;
    let uid = pkg.uid().unwrap_or_default();
    let exported = tenant
        .status
        .as_ref()
        .map(|s| s.exported_packages)
        .unwrap_or(0);
    let counted = tenant
        .status
        .as_ref()
        .is_some_and(|s| s.counted_exports.contains(&uid));
    if !counted && !edition::may_export(tenant.spec.edition, exported) {
        return Err(limit_reached(&tenant));
    }

    let ns = &ws.spec.namespace;
    let mut candidates = Vec::new();
    candidates.extend(list::<FileResource>(ctx, ns, ObjectType::FileResource).await?);
    candidates.extend(list::<Function>(ctx, ns, ObjectType::Function).await?);
    candidates.extend(list::<Table>(ctx, ns, ObjectType::Table).await?);
    candidates.extend(list::<ScheduledTask>(ctx, ns, ObjectType::ScheduledTask).await?);
    candidates.extend(list::<ServiceApi>(ctx, ns, ObjectType::ServiceApi).await?);
    candidates.extend(list::<QualityRule>(ctx, ns, ObjectType::QualityRule).await?);
    let (taken, skipped) = select(export, candidates);
    let bytes = write_package(&ws, &tenant.name_any(), export.mode, &taken)
        .map_err(|e| refuse("ExportFailed", format!("writing the package failed: {e}")))?;
    Ok(Exported { bytes, skipped })
}

/// Counts the verified export of `pkg` against its source tenant.
pub(super) async fn claim(
    ctx: &Context,
    pkg: &MigrationPackage,
    export: &ExportSource,
) -> Result<(), Refusal> {
    let (_, tenant) = source_of(ctx, export).await?;
    let tenants: Api<Tenant> = Api::all(ctx.client.clone());
    claim_export(&tenants, &tenant.name_any(), &pkg.uid().unwrap_or_default()).await
}

/// Gives back the slot of `pkg`, if it holds one: its export failed.
pub(super) async fn release(
    ctx: &Context,
    pkg: &MigrationPackage,
    export: &ExportSource,
) -> Result<(), Refusal> {
    let Ok((_, tenant)) = source_of(ctx, export).await else {
        // No source workspace or tenant: nothing was ever claimed there.
        return Ok(());
    };
    let tenants: Api<Tenant> = Api::all(ctx.client.clone());
    release_export(&tenants, &tenant.name_any(), &pkg.uid().unwrap_or_default()).await
}

fn write_package(
    ws: &Workspace,
    tenant: &str,
    mode: ExportMode,
    objects: &[Candidate],
) -> Result<Vec<u8>, ferry_package::writer::WriteError> {
    let source = ferry_package::SourceInfo {
        tenant: Some(tenant.into()),
        workspace: Some(ws.name_any()),
        project_name: Some(ws.spec.project_name.clone()),
        region: ws.spec.region.clone(),
    };
    let mode = match mode {
        ExportMode::Full => ferry_package::ExportMode::Full,
        ExportMode::Incremental => ferry_package::ExportMode::Incremental,
        ExportMode::Custom => ferry_package::ExportMode::Custom,
    };
    let now = Timestamp::now().to_string();
    let mut writer = ferry_package::PackageWriter::new(Cursor::new(Vec::new()), source, now, mode);
    for c in objects {
        let compute_type = c
            .spec
            .get("computeResource")
            .and_then(Value::as_str)
            .and_then(|name| ws.spec.compute_resources.iter().find(|r| r.name == name))
            .map(|r| r.type_.as_str());
        let object_type =
            ferry_package::ObjectType::parse(c.object_type.kind()).expect("the six types match");
        let mut spec = c.spec.clone();
        if c.object_type == ObjectType::QualityRule {
            // The seed: "Alert configurations attached to monitoring rules
            // are not exported with the package", wherever they sit (a
            // `ruleConfig` holding JSON included).
            ferry_engine::alerts::strip_map(&mut spec);
        }
        writer.add(&ferry_package::ExportedObject::from_spec(
            object_type,
            &spec,
            true,
            compute_type,
        ))?;
    }
    let (cursor, _) = writer.finish()?;
    Ok(cursor.into_inner())
}

fn limit_reached(tenant: &Tenant) -> Refusal {
    let max = edition::limits(tenant.spec.edition)
        .max_exported_packages
        .unwrap_or(u32::MAX);
    refuse(
        "EditionLimitReached",
        format!(
            "Tenant {:?} has exported {max} packages, the most the {:?} edition allows; upgrade the edition to export more (the limit cannot be bought off)",
            tenant.name_any(),
            tenant.spec.edition
        ),
    )
}

/// Why one compare-and-swap of the Tenant's status did not settle.
enum Attempt {
    /// Someone else wrote the status first (409): read again and retry.
    Conflict,
    Done(Result<(), Refusal>),
}

/// Retries `attempt` on conflicts with jittered exponential backoff, so
/// fifty exports settling at once do not retry in lockstep. After many
/// conflicts in a row the error goes to the controller, which retries the
/// whole reconcile later.
async fn settle<F, Fut>(what: &str, attempt: F) -> Result<(), Refusal>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Attempt>,
{
    let mut attempt = attempt;
    let once = || {
        let fut = attempt();
        async move {
            match fut.await {
                Attempt::Conflict => Err(()),
                Attempt::Done(r) => Ok(r),
            }
        }
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(5))
        .with_max_delay(Duration::from_millis(500))
        .with_max_times(40)
        .with_jitter();
    match once.retry(backoff).await {
        Ok(r) => r,
        Err(()) => Err(Refusal::Other(super::Error::Waiting {
            reason: "TenantBusy",
            message: format!("the Tenant's status kept changing while {what}; trying again"),
            retry_after: Duration::from_secs(1),
        })),
    }
}

fn write_params() -> PostParams {
    PostParams {
        field_manager: Some("ferry-export".into()),
        ..Default::default()
    }
}

/// Counts one export of package `uid` against the tenant, exactly once, with
/// optimistic concurrency: the write carries the tenant's resourceVersion, so
/// of two concurrent claims for the last slot one gets a conflict, re-reads,
/// and is refused.
async fn claim_export(tenants: &Api<Tenant>, name: &str, uid: &str) -> Result<(), Refusal> {
    settle("claiming an export slot", || async {
        let mut tenant = match tenants.get_status(name).await {
            Ok(t) => t,
            Err(e) => return Attempt::Done(Err(e.into())),
        };
        let status = tenant.status.get_or_insert_with(Default::default);
        if status.counted_exports.iter().any(|u| u == uid) {
            return Attempt::Done(Ok(()));
        }
        if !edition::may_export(tenant.spec.edition, status.exported_packages) {
            return Attempt::Done(Err(limit_reached(&tenant)));
        }
        status.exported_packages += 1;
        if tenant.spec.edition != Edition::Enterprise {
            status.counted_exports.push(uid.to_string());
        }
        match tenants.replace_status(name, &write_params(), &tenant).await {
            Ok(_) => Attempt::Done(Ok(())),
            Err(kube::Error::Api(s)) if s.code == 409 => Attempt::Conflict,
            Err(e) => Attempt::Done(Err(e.into())),
        }
    })
    .await
}

/// Takes back the export of package `uid`, if it was counted (Enterprise
/// keeps no list, having no limit: nothing to take back there).
async fn release_export(tenants: &Api<Tenant>, name: &str, uid: &str) -> Result<(), Refusal> {
    settle("releasing an export slot", || async {
        let mut tenant = match tenants.get_status(name).await {
            Ok(t) => t,
            Err(kube::Error::Api(s)) if s.code == 404 => return Attempt::Done(Ok(())),
            Err(e) => return Attempt::Done(Err(e.into())),
        };
        let status = tenant.status.get_or_insert_with(Default::default);
        let Some(i) = status.counted_exports.iter().position(|u| u == uid) else {
            return Attempt::Done(Ok(()));
        };
        status.counted_exports.remove(i);
        status.exported_packages = status.exported_packages.saturating_sub(1);
        match tenants.replace_status(name, &write_params(), &tenant).await {
            Ok(_) => Attempt::Done(Ok(())),
            Err(kube::Error::Api(s)) if s.code == 409 => Attempt::Conflict,
            Err(e) => Attempt::Done(Err(e.into())),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> Workspace {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "ferry.dev/v1alpha1", "kind": "Workspace",
            "metadata": {"name": "sales-dev"},
            "spec": {"tenant": "acme", "namespace": "sales-dev", "projectName": "sales_dev",
                     "computeResources": [{"name": "sales_mc_dev", "type": "MaxCompute"}]}
        }))
        .unwrap()
    }

    #[test]
    fn alert_configurations_attached_to_monitoring_rules_are_not_exported() {
        let spec = serde_json::json!({
            "name": "orders_not_null", "owner": "1234567", "studio": "Legacy",
            "table": "orders",
            "ruleConfig": r#"{"rules":[{"ruleType":"check_null","ruleConfig":{"column":"id"}}],"alertReceivers":["ops"],"notification":{"channels":["Mail"]}}"#
        });
        let rule = Candidate {
            object_type: ObjectType::QualityRule,
            spec: spec.as_object().cloned().unwrap(),
            labels: BTreeMap::new(),
            state: ObjectState::Deployed,
            changed_at: None,
        };
        let bytes = write_package(&workspace(), "acme", ExportMode::Full, &[rule]).unwrap();
        let reader = ferry_package::PackageReader::open(
            Cursor::new(bytes),
            &ferry_package::Limits::default(),
        )
        .unwrap();
        let exported = &reader.objects()[0];
        let config = exported.spec_str("ruleConfig").unwrap();
        let config: Value = serde_json::from_str(config).unwrap();
        assert_eq!(
            config,
            serde_json::json!({"rules":[{"ruleType":"check_null","ruleConfig":{"column":"id"}}]})
        );
        let document = exported.flow_spec.as_str().to_ascii_lowercase();
        assert!(
            !document.contains("alert") && !document.contains("notif"),
            "{document}"
        );
    }

    #[test]
    fn new_studio_objects_are_skipped_with_a_line_each() {
        let c = |name: &str, studio: &str| Candidate {
            object_type: ObjectType::ScheduledTask,
            spec: serde_json::json!({"name": name, "studio": studio})
                .as_object()
                .cloned()
                .unwrap(),
            labels: BTreeMap::new(),
            state: ObjectState::Deployed,
            changed_at: None,
        };
        let export: ExportSource =
            serde_json::from_value(serde_json::json!({"workspace": "sales-dev"})).unwrap();
        let (taken, skipped) = select(&export, vec![c("old", "Legacy"), c("new", "New")]);
        assert_eq!(taken.len(), 1);
        assert_eq!(
            skipped,
            ["ScheduledTask/new: created in the new-version Data Studio, which cannot be exported"]
        );
    }
}
