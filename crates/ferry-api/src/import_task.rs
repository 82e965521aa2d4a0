use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions_schema;

/// One import of one package into the workspace whose namespace holds the
/// task, with its mappings and settings. Its status is the state machine and
/// the summary report; the per-object report lives in ConfigMaps it owns.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ferry.dev",
    version = "v1alpha1",
    kind = "ImportTask",
    namespaced,
    status = "ImportTaskStatus",
    shortname = "imp",
    category = "ferry",
    doc = "Imports a MigrationPackage into the workspace of this namespace, in ordered phases, and keeps a report.",
    // The spec a task runs is the spec it was planned with: once it has left
    // Editing, only `suspend` may change (and, after a failure, anything:
    // Import Again then runs the new spec). Kept in one line: the derive
    // takes a literal.
    validation = Rule::new("!has(oldSelf.status) || !has(oldSelf.status.phase) || oldSelf.status.phase in ['Pending', 'Verifying', 'Editing', 'ImportFailed'] || ((has(self.spec.importName) == has(oldSelf.spec.importName) && (!has(self.spec.importName) || self.spec.importName == oldSelf.spec.importName)) && (has(self.spec.packageRef) == has(oldSelf.spec.packageRef) && (!has(self.spec.packageRef) || self.spec.packageRef == oldSelf.spec.packageRef)) && (has(self.spec.description) == has(oldSelf.spec.description) && (!has(self.spec.description) || self.spec.description == oldSelf.spec.description)) && (has(self.spec.computeResourceMapping) == has(oldSelf.spec.computeResourceMapping) && (!has(self.spec.computeResourceMapping) || self.spec.computeResourceMapping == oldSelf.spec.computeResourceMapping)) && (has(self.spec.resourceGroupMapping) == has(oldSelf.spec.resourceGroupMapping) && (!has(self.spec.resourceGroupMapping) || self.spec.resourceGroupMapping == oldSelf.spec.resourceGroupMapping)) && (has(self.spec.dependencyMapping) == has(oldSelf.spec.dependencyMapping) && (!has(self.spec.dependencyMapping) || self.spec.dependencyMapping == oldSelf.spec.dependencyMapping)) && (has(self.spec.dryRun) == has(oldSelf.spec.dryRun) && (!has(self.spec.dryRun) || self.spec.dryRun == oldSelf.spec.dryRun)) && (has(self.spec.dataServiceMapping) == has(oldSelf.spec.dataServiceMapping) && (!has(self.spec.dataServiceMapping) || self.spec.dataServiceMapping == oldSelf.spec.dataServiceMapping)) && (has(self.spec.committingRules) == has(oldSelf.spec.committingRules) && (!has(self.spec.committingRules) || self.spec.committingRules == oldSelf.spec.committingRules)) && (has(self.spec.changeOwner) == has(oldSelf.spec.changeOwner) && (!has(self.spec.changeOwner) || self.spec.changeOwner == oldSelf.spec.changeOwner)))").message("the import has started: its settings cannot change (only spec.suspend); after ImportFailed, edit and request Import Again, or create a new ImportTask"),
    printcolumn(name = "Import", type_ = "string", json_path = ".spec.importName"),
    printcolumn(
        name = "Package",
        type_ = "string",
        json_path = ".spec.packageRef.name"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Done", type_ = "integer", json_path = ".status.progress.done"),
    printcolumn(
        name = "Total",
        type_ = "integer",
        json_path = ".status.progress.total"
    ),
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
pub struct ImportTaskSpec {
    /// The import's name as users know it (the seed's "Import Package
    /// Name"): letters, digits, underscores and periods.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9_.]+$"))]
    pub import_name: String,
    /// The MigrationPackage to import.
    pub package_ref: PackageReference,
    /// Remarks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    /// While true the task stays in `Editing` and its status shows the plan
    /// (what would be created, what conflicts, what is skipped). Set it to
    /// false to start the import.
    #[serde(default)]
    pub suspend: bool,
    /// One entry per compute resource the package uses, pairing it with a
    /// destination compute resource of the same type, by display name.
    /// Required when the package uses compute resources (the import fails in
    /// Mapping naming each unmapped one); a package that uses none needs no
    /// entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["source"]))]
    pub compute_resource_mapping: Vec<NameMapping>,
    /// Optional: resource groups to use in the destination. A source group
    /// with no entry keeps its name when the destination has a group of that
    /// name; otherwise it gets the destination Workspace's
    /// `spec.defaultResourceGroup` (else its first listed group), with a
    /// warning in the plan and the report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["source"]))]
    pub resource_group_mapping: Vec<NameMapping>,
    /// Project names to replace: every occurrence of `sourceProject` (also
    /// inside longer names, such as the root node `sales_dev_root`; matched
    /// case-sensitively) in code, parameters, inputs, output names and the
    /// FlowSpec document, each replacement listed in the plan and the
    /// report. `newProject` is normally the destination workspace's project;
    /// another project is flagged in the plan. Not needed between
    /// workspaces of one tenant in one region.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["sourceProject"]))]
    pub dependency_mapping: Vec<DependencyMapping>,
    /// Tasks to import as dry-run: scheduled, but succeed without running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<DryRun>,
    /// DataService Studio business processes to use in the destination.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["source"]))]
    pub data_service_mapping: Vec<NameMapping>,
    /// Which imported objects are committed.
    #[serde(default)]
    pub committing_rules: CommittingRules,
    /// Who owns the imported objects.
    #[serde(default)]
    pub change_owner: ChangeOwner,
}

/// A reference to a MigrationPackage.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PackageReference {
    /// Name of the MigrationPackage.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Its namespace; defaults to the task's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Pairs a name in the source workspace with one in the destination.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NameMapping {
    /// Name in the source workspace.
    #[schemars(length(min = 1, max = 128))]
    pub source: String,
    /// Name in the destination workspace (for compute resources: the
    /// display name).
    #[schemars(length(min = 1, max = 128))]
    pub destination: String,
}

/// Replaces a project name.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DependencyMapping {
    /// The project name used in the source workspace.
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z][A-Za-z0-9_]*$")
    )]
    pub source_project: String,
    /// The name that replaces it.
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z][A-Za-z0-9_]*$")
    )]
    pub new_project: String,
}

/// Tasks to import as dry-run: by name (one at a time) and by label (in batch).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    /// Real names of scheduled tasks to set to dry-run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<String>,
    /// Scheduled tasks whose package labels match are set to dry-run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// Whether objects of a type are committed after import.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum CommitRule {
    #[default]
    Commit,
    DoNotCommit,
}

/// Committing rules per object type.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommittingRules {
    /// File resources.
    #[serde(default)]
    pub file_resources: CommitRule,
    /// Functions.
    #[serde(default)]
    pub functions: CommitRule,
    /// Tables, per environment.
    #[serde(default)]
    pub tables: TableCommitRule,
}

impl Default for CommittingRules {
    fn default() -> Self {
        CommittingRules {
            file_resources: CommitRule::Commit,
            functions: CommitRule::Commit,
            tables: TableCommitRule::default(),
        }
    }
}

/// Where tables are committed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableCommitRule {
    /// Commit tables to the development environment.
    #[serde(default = "yes")]
    pub development: bool,
    /// Commit tables to the production environment.
    #[serde(default)]
    pub production: bool,
}

fn yes() -> bool {
    true
}

impl Default for TableCommitRule {
    fn default() -> Self {
        TableCommitRule {
            development: true,
            production: false,
        }
    }
}

/// Who owns the imported objects.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode == 'Specify' ? has(self.owner) : !has(self.owner)").message("owner is set exactly when mode is Specify"))]
pub struct ChangeOwner {
    /// `NotModify`: objects keep their owner; one without an owner gets the
    /// user who created the import task. `Specify`: every object gets `owner`.
    #[serde(default)]
    pub mode: ChangeOwnerMode,
    /// The owner to give every object, with mode `Specify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub owner: Option<String>,
}

/// See `ChangeOwner`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ChangeOwnerMode {
    #[default]
    NotModify,
    Specify,
}

/// The phases of an import, in order. `Completed` is final. `ImportFailed`
/// rests until Import Again is requested (`ferry.dev/requested-at`): it
/// resumes the failed phase, or verifies and plans again when the spec was
/// edited after the failure. Once an import has left `Editing`, its
/// settings cannot change except `suspend` (a schema rule refuses the edit),
/// so `Ready` and `observedGeneration` always describe the settings that ran.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    JsonSchema,
)]
pub enum ImportPhase {
    #[default]
    Pending,
    Verifying,
    Editing,
    Mapping,
    Importing,
    Committing,
    Deploying,
    ImportingRules,
    Completed,
    ImportFailed,
}

impl ImportPhase {
    /// Whether the task rests in this phase until a person acts.
    pub fn is_terminal(self) -> bool {
        matches!(self, ImportPhase::Completed | ImportPhase::ImportFailed)
    }
}

/// Observed state of an import: the state machine and the summary report.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportTaskStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the import is.
    #[serde(default)]
    pub phase: ImportPhase,
    /// With `ImportFailed`: the phase that failed; Import Again resumes there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_phase: Option<ImportPhase>,
    /// Why the import failed, or what it waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `sha256:<hex>` of the package the import was planned from, pinned
    /// when it was verified: a package replaced under a running import stops
    /// it (Import Again then verifies and plans the new content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_digest: Option<String>,
    /// The user who created the task (owner of objects that arrive with none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    /// Objects done out of the total in the current phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// What the import will do, counted per action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanSummary>,
    /// Outcomes per object type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<TypeResult>,
    /// ConfigMaps holding the full per-object report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportRef>,
    /// When each phase started and ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phase_timings: Vec<PhaseTiming>,
    /// When the import started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the import finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// The last `ferry.dev/requested-at` annotation value acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_request: Option<String>,
    /// `Ready`, `Reconciling`, `Stalled` and `PartiallyImported`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// Progress within a phase.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// The plan, counted.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanSummary {
    /// Objects that will be written: created, plus existing quality rules
    /// updated in place (counted again in `update`).
    pub create: u64,
    /// Existing quality rules that will be updated in place.
    #[serde(default)]
    pub update: u64,
    /// Objects whose name is taken in the destination: not overwritten, not committed.
    pub conflict: u64,
    /// Objects that will be skipped, with a reason in the report.
    pub skip: u64,
    /// Project-name replacements the dependency mapping makes; the report
    /// lists every one, object by object (field, before, after, count).
    #[serde(default)]
    pub replacements: u64,
    /// Warnings (the plan's, then each object's as `Type/name: warning`):
    /// the first ten; the report has them all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// How many warnings there are in all.
    #[serde(default)]
    pub warning_count: u64,
    /// The first conflicts, as `Type/name`, so they show without the report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub first_conflicts: Vec<String>,
    /// The first 20 objects of the plan, in the order the report lists them, so a small plan
    /// shows whole in status. Every object is in the report ConfigMaps
    /// (`status.report.configMaps`) and in `kubectl migrate plan --details`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub first_objects: Vec<PlannedObjectLine>,
}

/// One object of the plan, as status shows it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedObjectLine {
    /// The object type (`ScheduledTask`, `Table`, ...).
    #[serde(rename = "type")]
    pub type_: String,
    /// The real name.
    pub name: String,
    /// `Create`, `Update` (an existing quality rule updated in place),
    /// `Conflict` or `Skip`.
    pub action: String,
    /// A scheduled task imported as dry-run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// The owner after import, for objects the import writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Project-name replacements the dependency mapping makes in it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replacements: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Outcomes for one object type.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypeResult {
    /// The object type.
    #[serde(rename = "type")]
    pub type_: String,
    pub created: u64,
    /// Existing quality rules updated in place (the seed's one exception to
    /// "never overwrite").
    #[serde(default)]
    pub updated: u64,
    pub conflict: u64,
    pub skipped: u64,
    pub failed: u64,
    pub committed: u64,
    pub deployed: u64,
}

/// Where the full report is.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportRef {
    /// ConfigMaps, in order, each holding a gzip-compressed shard.
    pub config_maps: Vec<String>,
    /// Records in the report.
    pub records: u64,
}

/// When a phase ran.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseTiming {
    pub phase: ImportPhase,
    pub started_at: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
}
