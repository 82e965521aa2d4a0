use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::{KeySelector, LocalObjectReference, conditions_schema};

/// A migration package: where its bytes come from and, once verified, the
/// stored artifact and a summary of what it holds.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ferry.dev",
    version = "v1alpha1",
    kind = "MigrationPackage",
    namespaced,
    status = "MigrationPackageStatus",
    shortname = "mpkg",
    category = "ferry",
    doc = "A migration package: exported from a workspace or brought in from a ConfigMap, Secret, URL or object store; verified, then stored as a content-addressed artifact.",
    printcolumn(name = "Source", type_ = "string", json_path = ".status.sourceKind"),
    printcolumn(
        name = "Objects",
        type_ = "integer",
        json_path = ".status.summary.totalObjects"
    ),
    printcolumn(name = "Size", type_ = "integer", json_path = ".status.artifact.size"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Digest",
        type_ = "string",
        json_path = ".status.artifact.digest",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct MigrationPackageSpec {
    /// Where the package's bytes come from. Exactly one kind of source.
    #[x_kube(validation = Rule::new("self == oldSelf").message("source is immutable: create a new package instead"))]
    pub source: PackageSource,
}

/// Exactly one of the fields is set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.configMap), has(self.secret), has(self.url), has(self.objectStore), has(self.export), has(self.upload)].filter(x, x).size() == 1").message("set exactly one of configMap, secret, url, objectStore, export, upload"))]
pub struct PackageSource {
    /// A key of a ConfigMap (in `binaryData`) holding the zip: a local upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<KeySelector>,
    /// A key of a Secret holding the zip: a local upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<KeySelector>,
    /// An HTTP or HTTPS URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<UrlSource>,
    /// An object in an S3-compatible object store such as OSS. Professional
    /// and Enterprise editions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_store: Option<ObjectStoreSource>,
    /// Export the objects of a workspace into this package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportSource>,
    /// A package uploaded to the operator's artifact endpoint from this
    /// namespace (`PUT /packages/<namespace>/<name>`, or `kubectl migrate
    /// upload`): a local upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadSource>,
}

/// An uploaded package, by the digest of its zip. Without `chunks`, the zip
/// was uploaded to the operator's artifact endpoint, which answered with the
/// digest. With `chunks`, it comes through the API server as chunk
/// ConfigMaps in the package's namespace (labels `ferry.dev/upload=<package>`
/// and `ferry.dev/chunk=<index>`, owned by the package), which the operator
/// reassembles, checks against `digest`, verifies and deletes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadSource {
    /// `sha256:<hex>` of the uploaded zip.
    #[schemars(regex(pattern = r"^sha256:[0-9a-f]{64}$"))]
    pub digest: String,
    /// The zip comes in chunk ConfigMaps (`kubectl migrate upload` without
    /// `--endpoint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<UploadChunks>,
}

/// The chunk ConfigMaps a package's zip was split into.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadChunks {
    /// How many chunks (indexes `0` to `count - 1`).
    #[schemars(range(min = 1, max = 4096))]
    pub count: u32,
    /// The zip's size in bytes: the chunks' sizes added up.
    #[schemars(range(min = 1))]
    pub size: u64,
}

/// The operator's answer to the latest download request (annotation
/// `ferry.dev/download-requested-at`): the artifact written as chunk
/// ConfigMaps owned by the package, for `kubectl migrate download`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PackageDownload {
    /// The annotation's value this answers.
    pub request: String,
    /// How many chunks were written (labels `ferry.dev/download=<package>`,
    /// `ferry.dev/download-request=<request id>`, `ferry.dev/chunk=<index>`);
    /// 0 when the request was refused.
    pub chunks: u32,
    /// `sha256:<hex>` of the zip the chunks add up to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Size in bytes of the zip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Why the request was refused, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A package fetched over HTTP(S).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UrlSource {
    /// The URL to fetch, `http://` or `https://`, without credentials in it
    /// (`user:password@` is refused: a MigrationPackage's spec is readable by
    /// every viewer of the namespace; put credentials in the Secret's
    /// `headers`, for example `Authorization: Bearer ...`). A presigned
    /// query string is accepted, and readable by those viewers too: prefer a
    /// short expiry.
    #[schemars(regex(pattern = r"^https?://[^/@?#]+([/?#].*)?$"))]
    pub url: String,
    /// A Secret whose `headers` key holds extra request headers (one
    /// `Name: value` per line) and whose `ca.crt` key holds a CA bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
}

/// A package stored in an S3-compatible object store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStoreSource {
    /// The endpoint, for example `https://oss-cn-shanghai.aliyuncs.com`.
    #[schemars(regex(pattern = r"^https?://"))]
    pub endpoint: String,
    /// The bucket.
    #[schemars(length(min = 1, max = 255))]
    pub bucket: String,
    /// The object key of the zip.
    #[schemars(length(min = 1, max = 1024))]
    pub key: String,
    /// The region, when the store needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Address the bucket as a path (`endpoint/bucket/key`) rather than a
    /// virtual host (`bucket.endpoint/key`).
    #[serde(default)]
    pub path_style: bool,
    /// A Secret with keys `accessKeyId` and `secretAccessKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<LocalObjectReference>,
}

/// Export objects of a workspace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode != 'Incremental' || has(self.since)").message("mode Incremental needs since"))]
pub struct ExportSource {
    /// Name of the source Workspace.
    #[schemars(length(min = 1, max = 253))]
    pub workspace: String,
    /// `Full`: every object. `Incremental`: objects changed since `since`.
    /// `Custom`: objects selected by `include`.
    #[serde(default)]
    pub mode: ExportMode,
    /// With `Incremental`: export objects changed after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
    /// With `Custom`: which objects to export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<ExportSelection>,
    /// Export only objects in these states. Empty: every state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub object_status: Vec<ObjectState>,
}

/// How much of a workspace an export takes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ExportMode {
    #[default]
    Full,
    Incremental,
    Custom,
}

/// A custom selection of objects to export. Criteria combine with AND.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportSelection {
    /// Object types to export. Empty: every type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<ObjectType>,
    /// Real names (`spec.name`) of the objects to export. Empty: every name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Labels the exported objects carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// The lifecycle state of a workspace object.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub enum ObjectState {
    /// Saved in development, not committed.
    Saved,
    /// Committed, not deployed.
    Committed,
    /// Deployed to production.
    Deployed,
    /// Quality rules only: imported, committed and meant to be deployed, but
    /// not active because the table it monitors does not exist (the seed: it
    /// does not appear on the Monitoring Rules page). Becomes `Deployed`
    /// when the table appears.
    WaitingForTable,
}

/// The types of workspace object a package carries.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub enum ObjectType {
    FileResource,
    Function,
    Table,
    ScheduledTask,
    ServiceApi,
    QualityRule,
}

impl ObjectType {
    /// Every type, in import order: what others depend on comes first
    /// (resources before the functions built from them, tables before the
    /// tasks that write them, tasks before the APIs and rules that use them).
    pub const ALL: [ObjectType; 6] = [
        ObjectType::FileResource,
        ObjectType::Function,
        ObjectType::Table,
        ObjectType::ScheduledTask,
        ObjectType::ServiceApi,
        ObjectType::QualityRule,
    ];

    /// The kind of the custom resource holding objects of this type.
    pub fn kind(self) -> &'static str {
        match self {
            ObjectType::FileResource => "FileResource",
            ObjectType::Function => "Function",
            ObjectType::Table => "Table",
            ObjectType::ScheduledTask => "ScheduledTask",
            ObjectType::ServiceApi => "ServiceApi",
            ObjectType::QualityRule => "QualityRule",
        }
    }
}

impl std::fmt::Display for ObjectType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

/// Observed state of a package.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationPackageStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Which kind of source the package came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_kind: Option<String>,
    /// The verified, stored package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// What the package holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<PackageSummary>,
    /// Every problem verification found, so all can be fixed at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// The latest download request handled (chunks through the API server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download: Option<PackageDownload>,
    /// `Ready`, `Reconciling` and `Stalled`, as kstatus reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// A stored package.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// `sha256:<hex>` of the zip.
    pub digest: String,
    /// Size of the zip in bytes.
    pub size: u64,
    /// Where the operator serves it for download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// What a package holds: the seed's "Preview File".
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PackageSummary {
    /// Tenant the package was exported from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_tenant: Option<String>,
    /// Workspace the package was exported from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_workspace: Option<String>,
    /// Project name of the source workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_project: Option<String>,
    /// Region of the source workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_region: Option<String>,
    /// Objects in the package.
    pub total_objects: u64,
    /// Objects per type.
    #[serde(default)]
    pub objects: BTreeMap<String, u64>,
    /// Compute resources the objects use, with their types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compute_resources: Vec<crate::ComputeResource>,
    /// Resource groups the objects use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_groups: Vec<String>,
    /// Objects an export left out, one line each (`Type/name: why`):
    /// objects created in the new-version Data Studio cannot be exported.
    /// At most 100 lines; `skippedObjects` counts them all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub skipped: Vec<String>,
    /// How many objects the export left out.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped_objects: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
