//! The workspace's own objects: what migrates.
//!
//! Each carries its real name in `spec.name` (names Kubernetes does not
//! allow: underscores, capitals, Chinese characters), who owns it, where it
//! was authored, and its FlowSpec document verbatim in `spec.flowSpec`, so
//! fields Ferry does not interpret travel with it. Their status is the
//! object's lifecycle: where it came from, committed and deployed revisions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ObjectState, Studio, preserve_unknown_object};

/// The fields every workspace object has.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectCommon {
    /// The object's real name, unique per type within the workspace.
    /// `metadata.name` is derived from it.
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    /// The owner's account ID. Empty: no owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Where the object was authored. Objects of the new-version Data Studio
    /// cannot be exported or imported.
    #[serde(default)]
    pub studio: Studio,
    /// The object's FlowSpec document. An import applies its mappings here
    /// too (project renames, compute resources, resource groups, dry-run)
    /// and removes a quality rule's alert settings, so the document agrees
    /// with the fields above; everything else travels as it came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub flow_spec: Option<serde_json::Value>,
}

#[doc = "An auto-triggered (scheduled) task of a workspace."]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "ferry.dev",
    version = "v1alpha1",
    kind = "ScheduledTask",
    namespaced,
    status = "ObjectStatus",
    shortname = "stask",
    category = "ferry",
    doc = "An auto-triggered (scheduled) task of a workspace.",
    printcolumn(
        name = "Real Name",
        type_ = "string",
        json_path = ".spec.name",
        description = "The object's real name"
    ),
    printcolumn(name = "Owner", type_ = "string", json_path = ".spec.owner"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(
        name = "Import",
        type_ = "string",
        json_path = ".status.origin.importTask",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledTaskSpec {
    /// Name, owner, origin and FlowSpec document.
    #[serde(flatten)]
    pub common: ObjectCommon,
    /// Display name of the compute resource the task runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_resource: Option<String>,
    /// The resource group the task is scheduled on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_group: Option<String>,
    /// The task's code.
    pub script: Script,
    /// When the task runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// `Normal` runs; `Skip` is a dry-run (scheduled, succeeds without
    /// running); `Pause` is scheduled but frozen.
    #[serde(default)]
    pub recurrence: Recurrence,
    /// Whether and how the task may rerun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun: Option<RerunPolicy>,
    /// Upstream output names the task depends on in the same cycle (FlowSpec
    /// dependencies of type `Normal`, and the node's declared inputs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    /// Dependencies on an earlier cycle (FlowSpec `depends[].type` other
    /// than `Normal`), kept with their type. They are not in `inputs`: a
    /// task waiting for its own previous run is no cycle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cross_cycle_dependencies: Vec<CrossCycleDependency>,
    /// Output names the task produces (what downstream tasks depend on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
    /// Parameters passed to the script (`name=value`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<String>,
}

#[doc = "A table of a workspace."]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "ferry.dev",
    version = "v1alpha1",
    kind = "Table",
    namespaced,
    status = "ObjectStatus",
    shortname = "ftbl",
    category = "ferry",
    doc = "A table of a workspace.",
    printcolumn(
        name = "Real Name",
        type_ = "string",
        json_path = ".spec.name",
        description = "The object's real name"
    ),
    printcolumn(name = "Owner", type_ = "string", json_path = ".spec.owner"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(
        name = "Import",
        type_ = "string",
        json_path = ".status.origin.importTask",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct TableSpec {
    /// Name, owner, origin and FlowSpec document.
    #[serde(flatten)]
    pub common: ObjectCommon,
    /// Display name of the compute resource holding the table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_resource: Option<String>,
    /// The table's DDL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ddl: Option<String>,
    /// The table's globally unique name (for example `odps.project.table`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guid: Option<String>,
}

#[doc = "A file resource (a JAR, a Python file, an archive) of a workspace."]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "ferry.dev",
    version = "v1alpha1",
    kind = "FileResource",
    namespaced,
    status = "ObjectStatus",
    shortname = "fres",
    category = "ferry",
    doc = "A file resource (a JAR, a Python file, an archive) of a workspace.",
    printcolumn(
        name = "Real Name",
        type_ = "string",
        json_path = ".spec.name",
        description = "The object's real name"
    ),
    printcolumn(name = "Owner", type_ = "string", json_path = ".spec.owner"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(
        name = "Import",
        type_ = "string",
        json_path = ".status.origin.importTask",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct FileResourceSpec {
    /// Name, owner, origin and FlowSpec document.
    #[serde(flatten)]
    pub common: ObjectCommon,
    /// The resource's kind: `jar`, `python`, `file`, `archive`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Display name of the compute resource the resource is registered in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_resource: Option<String>,
    /// The file's path in the package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `sha256:<hex>` of the file's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<String>,
}

#[doc = "A user-defined function of a workspace."]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "ferry.dev",
    version = "v1alpha1",
    kind = "Function",
    namespaced,
    status = "ObjectStatus",
    shortname = "ffn",
    category = "ferry",
    doc = "A user-defined function of a workspace.",
    printcolumn(
        name = "Real Name",
        type_ = "string",
        json_path = ".spec.name",
        description = "The object's real name"
    ),
    printcolumn(name = "Owner", type_ = "string", json_path = ".spec.owner"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(
        name = "Import",
        type_ = "string",
        json_path = ".status.origin.importTask",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct FunctionSpec {
    /// Name, owner, origin and FlowSpec document.
    #[serde(flatten)]
    pub common: ObjectCommon,
    /// Display name of the compute resource the function is registered in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_resource: Option<String>,
    /// The implementing class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// Names of the file resources the function is built from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
}

#[doc = "A data-quality monitoring rule of a workspace. Alert settings never migrate."]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "ferry.dev",
    version = "v1alpha1",
    kind = "QualityRule",
    namespaced,
    status = "QualityRuleStatus",
    shortname = "qrule",
    category = "ferry",
    doc = "A data-quality monitoring rule of a workspace. Alert settings never migrate.",
    printcolumn(
        name = "Real Name",
        type_ = "string",
        json_path = ".spec.name",
        description = "The object's real name"
    ),
    printcolumn(name = "Owner", type_ = "string", json_path = ".spec.owner"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(
        name = "Attached",
        type_ = "boolean",
        json_path = ".status.attached",
        description = "Whether the monitored table exists: an unattached rule is not active"
    ),
    printcolumn(
        name = "Import",
        type_ = "string",
        json_path = ".status.origin.importTask",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct QualityRuleSpec {
    /// Name, owner, origin and FlowSpec document.
    #[serde(flatten)]
    pub common: ObjectCommon,
    /// Real name of the table the rule monitors.
    pub table: String,
    /// The partition the rule checks, for example `dt=$[yyyyMMdd]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_expression: Option<String>,
    /// Output name of the scheduled task that triggers the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_task_output: Option<String>,
    /// The rule's configuration, kept as the text it came as (real documents
    /// carry configurations that are not valid JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_config: Option<String>,
}

#[doc = "A DataService Studio API of a workspace."]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "ferry.dev",
    version = "v1alpha1",
    kind = "ServiceApi",
    namespaced,
    status = "ObjectStatus",
    shortname = "fapi",
    category = "ferry",
    doc = "A DataService Studio API of a workspace.",
    printcolumn(
        name = "Real Name",
        type_ = "string",
        json_path = ".spec.name",
        description = "The object's real name"
    ),
    printcolumn(name = "Owner", type_ = "string", json_path = ".spec.owner"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(
        name = "Import",
        type_ = "string",
        json_path = ".status.origin.importTask",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceApiSpec {
    /// Name, owner, origin and FlowSpec document.
    #[serde(flatten)]
    pub common: ObjectCommon,
    /// The DataService business process (group) the API belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_process: Option<String>,
    /// The API's request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The API's HTTP method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Display name of the compute resource (data source) the API reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_resource: Option<String>,
    /// The API's query or script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<Script>,
}

/// A task's code.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Script {
    /// The language, for example `odps-sql`, `python`, `sh`, `json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The engine command, for example `ODPS_SQL`, `PY_ODPS`, `DI`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The code.
    #[serde(default)]
    pub content: String,
    /// The script's path in the workspace's folder tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A cron trigger.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    /// Quartz-style cron with seconds, for example `00 00 02 * * ?`.
    #[schemars(length(min = 1, max = 128))]
    pub cron: String,
    /// First time the trigger may fire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// Last time the trigger may fire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
}

/// FlowSpec's recurrence.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Recurrence {
    /// Scheduled and run.
    #[default]
    Normal,
    /// Dry-run: scheduled, succeeds without running or producing data.
    Skip,
    /// Scheduled, frozen.
    Pause,
}

/// A dependency of a scheduled task on an earlier cycle.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrossCycleDependency {
    /// FlowSpec's dependency type.
    #[serde(rename = "type")]
    pub type_: CrossCycleType,
    /// The upstream output name. Absent for `CrossCycleDependsOnChildren`
    /// given without one: the type alone says what it waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// FlowSpec's cross-cycle dependency types.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum CrossCycleType {
    /// On the task's own previous cycle.
    CrossCycleDependsOnSelf,
    /// On the previous cycle of the task's direct children.
    CrossCycleDependsOnChildren,
    /// On the previous cycle of another task (`output`).
    CrossCycleDependsOnOtherNode,
}

/// Rerun policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RerunPolicy {
    /// When a rerun is allowed.
    #[serde(default)]
    pub mode: RerunMode,
    /// How many automatic reruns after a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10))]
    pub times: Option<u32>,
    /// Seconds between automatic reruns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 86400))]
    pub interval_seconds: Option<u32>,
}

/// FlowSpec's rerunMode.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RerunMode {
    /// Rerun allowed whether the run failed or succeeded.
    #[default]
    Allowed,
    /// Rerun allowed only after a failure.
    FailureAllowed,
    /// Rerun not allowed.
    Denied,
}

/// Where an imported object came from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectOrigin {
    /// The ImportTask that created the object.
    pub import_task: String,
    /// That task's UID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_task_uid: Option<String>,
    /// `sha256:<hex>` of the package it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_digest: Option<String>,
}

/// The lifecycle of a workspace object.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    /// Saved, committed or deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ObjectState>,
    /// Set when the object was imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<ObjectOrigin>,
    /// The revision last committed (the object's `metadata.generation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_revision: Option<i64>,
    /// The revision last deployed to production.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_revision: Option<i64>,
    /// For tables: committed to the development environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_development: Option<bool>,
    /// For tables: committed to the production environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_production: Option<bool>,
    /// When the state last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

/// The lifecycle of a quality rule, plus whether it is attached.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QualityRuleStatus {
    /// Saved, committed or deployed.
    #[serde(flatten)]
    pub lifecycle: ObjectStatus,
    /// Whether the rule is attached to its table (the table exists). A rule
    /// whose table is missing waits and attaches when the table appears.
    #[serde(default)]
    pub attached: bool,
    /// Names of the scheduled tasks associated with the rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub associated_tasks: Vec<String>,
}
