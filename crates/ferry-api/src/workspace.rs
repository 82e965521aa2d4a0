use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::conditions_schema;

/// A data-development workspace: the namespace holding its objects, its
/// compute resources and resource groups.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ferry.dev",
    version = "v1alpha1",
    kind = "Workspace",
    status = "WorkspaceStatus",
    shortname = "fws",
    category = "ferry",
    doc = "A data-development workspace: its tenant, the namespace holding its objects, its compute resources and resource groups.",
    printcolumn(name = "Tenant", type_ = "string", json_path = ".spec.tenant"),
    printcolumn(name = "Namespace", type_ = "string", json_path = ".spec.namespace"),
    printcolumn(name = "Project", type_ = "string", json_path = ".spec.projectName"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.defaultResourceGroup) || (has(self.resourceGroups) && self.resourceGroups.exists(g, g.name == self.defaultResourceGroup))").message("defaultResourceGroup must name one of resourceGroups"))]
pub struct WorkspaceSpec {
    /// Name of the Tenant the workspace belongs to.
    #[schemars(length(min = 1, max = 253))]
    pub tenant: String,
    /// The namespace that holds the workspace's objects (scheduled tasks,
    /// tables, ...) and its import tasks. Created when missing.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    #[x_kube(validation = Rule::new("self == oldSelf").message("namespace is immutable: a workspace's objects live there"))]
    pub namespace: String,
    /// The project name that code and output names use (for example
    /// `sales_prod`); dependency mapping replaces it.
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z][A-Za-z0-9_]*$")
    )]
    pub project_name: String,
    /// The region the workspace lives in (for example `cn-shanghai`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// `Basic`: production only. `Standard`: development and production.
    #[serde(default)]
    pub mode: WorkspaceMode,
    /// Compute resources bound to the workspace. Mappings match them by
    /// display name (`name`), never by the underlying project.
    #[serde(default)]
    #[schemars(length(max = 256), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub compute_resources: Vec<ComputeResource>,
    /// Resource groups available to the workspace's tasks.
    #[serde(default)]
    #[schemars(length(max = 256), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub resource_groups: Vec<ResourceGroup>,
    /// The group an imported object runs on when its source group has no
    /// entry in the ImportTask's `resourceGroupMapping` and this workspace
    /// has no group of the same name. Must be one of `resourceGroups`. When
    /// unset, the first of `resourceGroups` is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub default_resource_group: Option<String>,
}

/// Whether a workspace separates development from production.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum WorkspaceMode {
    /// Production only.
    Basic,
    /// Development and production environments.
    #[default]
    Standard,
}

/// A compute resource bound to a workspace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComputeResource {
    /// Display name: what users see and what mappings match.
    #[schemars(length(min = 1, max = 128))]
    pub name: String,
    /// Engine type, as FlowSpec names it: `MaxCompute`, `Hologres`, `EMR`,
    /// `AnalyticDB`, `StarRocks`, `Flink`, ... A mapping may only pair
    /// resources of the same type.
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 64))]
    pub type_: String,
    /// The underlying project or instance the resource was created with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// A resource group tasks run on.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceGroup {
    /// Name of the resource group.
    #[schemars(length(min = 1, max = 128))]
    pub name: String,
    /// What the group is for.
    #[serde(rename = "type", default)]
    pub type_: ResourceGroupType,
}

/// Kinds of resource group.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum ResourceGroupType {
    /// A general-purpose serverless group: scheduling and data integration.
    #[default]
    Serverless,
    /// An exclusive group for scheduling.
    Scheduling,
    /// An exclusive group for data integration.
    DataIntegration,
}

/// Observed state of a workspace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The tenant's edition, copied here so importers need one read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edition: Option<crate::Edition>,
    /// `Ready`, `Reconciling` and `Stalled`, as kstatus reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}
