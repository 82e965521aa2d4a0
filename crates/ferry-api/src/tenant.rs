use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions_schema;

/// A tenant (an account) and its edition. The edition decides the limits
/// Ferry enforces: packages exported, local upload size, object-store
/// sources, automatic commit and deploy.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "ferry.dev",
    version = "v1alpha1",
    kind = "Tenant",
    status = "TenantStatus",
    shortname = "ften",
    category = "ferry",
    doc = "A tenant (account) and its edition, whose limits Ferry enforces.",
    printcolumn(name = "Edition", type_ = "string", json_path = ".spec.edition"),
    printcolumn(
        name = "Exported",
        type_ = "integer",
        json_path = ".status.exportedPackages",
        description = "Packages exported so far (cumulative)"
    ),
    printcolumn(
        name = "Limit",
        type_ = "string",
        json_path = ".status.limits.maxExportedPackages",
        description = "Most packages the edition may export; empty means no limit"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct TenantSpec {
    /// The tenant's DataWorks edition.
    pub edition: Edition,
    /// A human-readable name for the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// The four editions of the seed's edition table.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum Edition {
    Basic,
    Standard,
    Professional,
    Enterprise,
}

/// What the tenant's edition allows. Computed from the edition table in code,
/// never set by hand.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EditionLimits {
    /// Most packages the tenant may export, counted cumulatively. Absent: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_exported_packages: Option<u32>,
    /// Whether packages may be uploaded from a local file (a ConfigMap, a
    /// Secret or the upload endpoint). Not offered on Basic, which imports
    /// only packages exported inside the same tenant.
    pub local_upload: bool,
    /// Largest local upload in bytes, when local upload is offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_local_upload_bytes: Option<u64>,
    /// Whether packages may come from an S3-compatible object store (OSS).
    pub object_store_sources: bool,
    /// Whether imported objects are committed and deployed automatically.
    pub auto_commit_and_deploy: bool,
}

/// Observed state of a tenant.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// What the edition allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<EditionLimits>,
    /// Packages exported so far. Cumulative: deleting a package does not
    /// give its slot back (the seed: "each successful export task generates
    /// one package").
    #[serde(default)]
    pub exported_packages: u32,
    /// UIDs of the packages counted, so an export retried after an operator
    /// restart is never counted twice. Kept only while the edition has a limit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counted_exports: Vec<String>,
    /// `Ready`, `Reconciling` and `Stalled`, as kstatus reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}
