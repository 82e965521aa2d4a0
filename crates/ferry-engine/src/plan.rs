//! The plan: for every object of the package, its action and its final
//! content after every mapping, in import order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ferry_api::{ChangeOwnerMode, CommitRule, Edition, ImportTaskSpec, PlanSummary, WorkspaceSpec};
use ferry_package::{FileEntry, ObjectType, PackageObject, SourceInfo, Studio};
use serde_json::{Map, Value};

use crate::error::{PlanError, Problem, Rule};
use crate::mapping::{compute_of, group_of};
use crate::naming::{self, kube_name};
use crate::order::{Node, import_order};
use crate::rename::{Renamer, Replacement};
use crate::spec_doc::SpecDoc;
use crate::{alerts, dryrun, mapping};

/// The destination workspace.
#[derive(Clone, Copy, Debug)]
pub struct Destination<'a> {
    /// The Workspace's `metadata.name`.
    pub name: &'a str,
    pub workspace: &'a WorkspaceSpec,
    /// The destination tenant's name.
    pub tenant: &'a str,
    /// The destination tenant's edition (decides auto commit and deploy).
    pub edition: Edition,
}

/// Who is importing, for labels and annotations.
#[derive(Clone, Copy, Debug, Default)]
pub struct TaskIdentity<'a> {
    /// The ImportTask's `metadata.name`.
    pub name: &'a str,
    /// Its `metadata.uid`.
    pub uid: &'a str,
    /// `sha256:<hex>` of the package.
    pub package_digest: &'a str,
}

/// [`TaskIdentity`], owned: kept once per plan, shared by its objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnerIdentity {
    pub name: String,
    pub uid: String,
    pub package_digest: String,
}

impl From<&TaskIdentity<'_>> for OwnerIdentity {
    fn from(id: &TaskIdentity<'_>) -> Self {
        OwnerIdentity {
            name: id.name.to_string(),
            uid: id.uid.to_string(),
            package_digest: id.package_digest.to_string(),
        }
    }
}

/// Everything the plan depends on. Scripts should have their content filled
/// in from code files (`PackageReader::with_code`) so that the project
/// rename reaches the code and the planned spec carries it.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    pub objects: &'a [PackageObject],
    /// The manifest's source (tenant, region, project name).
    pub source: &'a SourceInfo,
    pub destination: Destination<'a>,
    /// Objects already in the destination, per type: real name to
    /// `metadata.name` (what a conflict names, and where an updated quality
    /// rule is written: a hand-made rule keeps its own `metadata.name`).
    pub existing: &'a Existing,
    /// Tables that exist for the destination beyond its Table objects (for
    /// attaching quality rules).
    pub existing_tables: &'a BTreeSet<String>,
    /// The outputs the destination's scheduled tasks declare
    /// (`spec.outputs`): what a dependency of an imported task may resolve
    /// to besides the package's own tasks.
    pub existing_outputs: &'a BTreeSet<String>,
    pub task: &'a ImportTaskSpec,
    /// The user who created the ImportTask.
    pub creator: &'a str,
    pub identity: TaskIdentity<'a>,
}

/// The destination's objects per type, real name to `metadata.name`.
pub type Existing = BTreeMap<ObjectType, BTreeMap<String, String>>;

/// What happens to an object.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Action {
    /// Written to the destination.
    Create,
    /// Overwrites the destination's object of the same name. Only quality
    /// rules, when the package holds rules and scheduled tasks (the seed's
    /// one exception to "never overwrite").
    Update,
    /// A same-named object exists in the destination: not overwritten, not
    /// committed, reported.
    Conflict,
    /// Not imported, for the reason in the message.
    Skip,
}

impl Action {
    /// Whether the object is written to the destination.
    pub fn writes(self) -> bool {
        matches!(self, Action::Create | Action::Update)
    }
}

/// Whether an object is committed and deployed after it is written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Committed in the Committing phase. For tables: committed when either
    /// `committingRules.tables.development` or `.production` is set.
    pub commit: bool,
    /// Deployed to production in the Deploying phase. For tables: only with
    /// `committingRules.tables.production`.
    pub deploy: bool,
    /// Why it is not committed or deployed, when it is not.
    pub note: Option<String>,
}

/// How a quality rule relates to its table and tasks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleLink {
    /// Real name of the monitored table.
    pub table: String,
    /// Whether the table exists (in the package or the destination). A rule
    /// that is not attached is imported anyway and attaches when the table
    /// appears.
    pub attached: bool,
    /// Scheduled tasks of the package whose outputs include the rule's
    /// `scheduledTaskOutput`, by real name, sorted.
    pub associated_tasks: Vec<String>,
    /// Why the rule is unattached or has no task, if so.
    pub notes: Vec<String>,
}

/// One object of the plan.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedObject {
    pub object_type: ObjectType,
    /// The real name.
    pub name: String,
    /// `metadata.name`: derived from the real name (see [`kube_name`]), or,
    /// for an updated quality rule, the existing rule's own name.
    pub kube_name: String,
    /// For conflicts and updates: the destination's object of this real
    /// name, as it is named there.
    pub existing: Option<crate::report::ExistingObject>,
    pub action: Action,
    /// Why the action (for conflicts, skips and updates).
    pub message: Option<String>,
    /// The final spec, in the shape of the type's `XxxSpec` (camelCase,
    /// `flowSpec` included), after every mapping, as compact JSON text.
    pub spec: SpecDoc,
    /// `spec.inputs` and `spec.outputs` (scheduled tasks): what ordering
    /// and rule association read, kept beside the text.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// SHA-256 (hex) of `spec`.
    pub content_digest: String,
    /// Who is importing: the same for every object of the plan (shared),
    /// the source of [`PlannedObject::labels`] and
    /// [`PlannedObject::annotations`], which are built when the object is
    /// written rather than kept (two maps per object were ~10 MiB of a
    /// 10,000-object plan).
    pub importer: Arc<OwnerIdentity>,
    pub delivery: Delivery,
    /// A scheduled task set to dry-run (recurrence `Skip`).
    pub dry_run: bool,
    /// `spec.owner` after import (Change Owner applied; none when the
    /// object has no owner field).
    pub owner: Option<String>,
    /// For quality rules.
    pub rule: Option<RuleLink>,
    /// The object's files in the package (code and resource binaries).
    pub files: Vec<FileEntry>,
    /// Position of the object in `Inputs::objects`.
    pub source_index: usize,
    /// Every project-name replacement made in this object's spec and
    /// FlowSpec document (spec.dependencyMapping), field by field. Shared
    /// with the object's ledger record (one copy for the plan and the
    /// report).
    pub replacements: Arc<[Replacement]>,
    /// What the user should know about this object although the import
    /// goes on: a dependency that resolves to nothing, a resource group
    /// that fell back to the destination's default.
    pub warnings: Vec<String>,
}

/// A replacement with the object it was made in, for the plan-wide list.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReplacement {
    #[serde(rename = "type")]
    pub object_type: ObjectType,
    /// The object's real name.
    pub name: String,
    #[serde(flatten)]
    pub replacement: Replacement,
}

/// Counts per action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActionCounts {
    pub create: u64,
    pub update: u64,
    pub conflict: u64,
    pub skip: u64,
}

/// The whole plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Every object, in import order (see [`crate::order`]).
    pub objects: Vec<PlannedObject>,
    /// Harmless oddities worth showing (unused mapping entries, ...).
    pub warnings: Vec<String>,
    /// Source compute resource to destination, by display name.
    pub compute_mapping: BTreeMap<String, String>,
    /// Source resource group to destination.
    pub resource_group_mapping: BTreeMap<String, String>,
    /// Source business process to destination (unmapped ones keep their name).
    pub business_process_mapping: BTreeMap<String, String>,
    /// Project renames applied.
    pub renames: BTreeMap<String, String>,
    pub edition: Edition,
    /// Whether the edition commits and deploys automatically.
    pub auto_commit_and_deploy: bool,
    pub has_tasks: bool,
    pub has_rules: bool,
}

impl PlannedObject {
    /// Labels to put on the object.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "app.kubernetes.io/managed-by".to_string(),
                "ferry".to_string(),
            ),
            (
                naming::LABEL_IMPORT_TASK_UID.to_string(),
                self.importer.uid.clone(),
            ),
            (
                naming::LABEL_CONTENT_DIGEST.to_string(),
                self.content_digest[..naming::DIGEST_LABEL_LEN.min(self.content_digest.len())]
                    .to_string(),
            ),
        ])
    }

    /// Annotations to put on the object.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                naming::ANNOTATION_IMPORT_TASK.to_string(),
                self.importer.name.clone(),
            ),
            (
                naming::ANNOTATION_PACKAGE_DIGEST.to_string(),
                self.importer.package_digest.clone(),
            ),
            (naming::ANNOTATION_REAL_NAME.to_string(), self.name.clone()),
        ])
    }
}

impl Plan {
    /// Every replacement the project renames made, object by object and
    /// field by field, in import order: built on demand from each object's
    /// [`PlannedObject::replacements`] (a plan keeps one copy: a large
    /// package's replacements are tens of MiB).
    pub fn replacements(&self) -> Vec<ObjectReplacement> {
        self.objects
            .iter()
            .flat_map(|o| {
                o.replacements.iter().map(|r| ObjectReplacement {
                    object_type: o.object_type,
                    name: o.name.clone(),
                    replacement: r.clone(),
                })
            })
            .collect()
    }

    /// How many replacements the project renames made.
    pub fn replacement_count(&self) -> usize {
        self.objects.iter().map(|o| o.replacements.len()).sum()
    }

    /// The object of this type and real name.
    pub fn get(&self, t: ObjectType, name: &str) -> Option<&PlannedObject> {
        self.objects
            .iter()
            .find(|o| o.object_type == t && o.name == name)
    }

    pub fn counts(&self) -> ActionCounts {
        let mut c = ActionCounts::default();
        for o in &self.objects {
            match o.action {
                Action::Create => c.create += 1,
                Action::Update => c.update += 1,
                Action::Conflict => c.conflict += 1,
                Action::Skip => c.skip += 1,
            }
        }
        c
    }

    /// The summary for `status.plan`: `create` counts every object that will
    /// be written (updated quality rules included), and the first
    /// `max_conflicts` conflicts are listed as `Type/name`.
    pub fn summary(&self, max_conflicts: usize) -> PlanSummary {
        let c = self.counts();
        let warnings = self
            .warnings
            .iter()
            .cloned()
            .chain(self.objects.iter().flat_map(|o| {
                o.warnings
                    .iter()
                    .map(move |w| format!("{}/{}: {w}", o.object_type, o.name))
            }));
        let warning_count =
            self.warnings.len() + self.objects.iter().map(|o| o.warnings.len()).sum::<usize>();
        PlanSummary {
            replacements: self.replacement_count() as u64,
            warnings: warnings.take(max_conflicts).collect(),
            warning_count: warning_count as u64,
            create: c.create + c.update,
            update: c.update,
            conflict: c.conflict,
            skip: c.skip,
            first_conflicts: self
                .objects
                .iter()
                .filter(|o| o.action == Action::Conflict)
                .take(max_conflicts)
                .map(|o| format!("{}/{}", o.object_type, o.name))
                .collect(),
            first_objects: self
                .objects
                .iter()
                .take(FIRST_OBJECTS)
                .map(|o| ferry_api::PlannedObjectLine {
                    type_: o.object_type.to_string(),
                    name: o.name.clone(),
                    action: format!("{:?}", o.action),
                    dry_run: o.dry_run,
                    owner: o.owner.clone().filter(|_| o.action.writes()),
                    replacements: o.replacements.iter().map(|r| r.count).sum(),
                })
                .collect(),
        }
    }
}

/// Objects of the plan listed in status (`PlanSummary::first_objects`).
pub const FIRST_OBJECTS: usize = 20;

/// Most names listed in one problem message.
const MAX_LISTED: usize = 20;

fn listed(items: &[String]) -> String {
    let mut s = items
        .iter()
        .take(MAX_LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > MAX_LISTED {
        s.push_str(&format!(" and {} more", items.len() - MAX_LISTED));
    }
    s
}

/// Computes the plan, or every problem that prevents it.
pub fn plan(inp: &Inputs<'_>) -> Result<Plan, PlanError> {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let objs = inp.objects;
    let dest = inp.destination;
    let ws = dest.workspace;
    let spec = inp.task;

    check_package(objs, &mut problems);
    let compute = mapping::resolve_compute(
        objs,
        &spec.compute_resource_mapping,
        dest.name,
        ws,
        &mut problems,
        &mut warnings,
    );
    let mut defaulted_groups = BTreeSet::new();
    let groups = mapping::resolve_groups(
        objs,
        &spec.resource_group_mapping,
        dest.name,
        ws,
        &mut defaulted_groups,
        &mut problems,
        &mut warnings,
    );
    let processes = mapping::resolve_business_processes(
        objs,
        &spec.data_service_mapping,
        &mut problems,
        &mut warnings,
    );
    let renamer = Renamer::new(
        spec.dependency_mapping
            .iter()
            .map(|d| (d.source_project.clone(), d.new_project.clone())),
    );
    warn_on_missing_rename(inp, &renamer, &mut warnings);
    warn_on_foreign_new_project(inp, &mut warnings);
    let dry = dry_run_tasks(objs, spec, &mut problems);
    let owner = match spec.change_owner.mode {
        ChangeOwnerMode::NotModify => {
            check_creator_known(inp, &mut problems);
            None
        }
        ChangeOwnerMode::Specify => match spec.change_owner.owner.as_deref() {
            Some(o) if !o.is_empty() => Some(o),
            _ => {
                problems.push(Problem::new(
                    Rule::OwnerMissing,
                    "spec.changeOwner.mode is Specify but spec.changeOwner.owner is empty",
                ));
                None
            }
        },
    };
    let auto = ferry_api::edition::limits(dest.edition).auto_commit_and_deploy;
    let present = |t: ObjectType| {
        objs.iter()
            .any(|o| o.object_type == t && o.studio == Studio::Legacy && !o.name.trim().is_empty())
    };
    let has_tasks = present(ObjectType::ScheduledTask);
    let has_rules = present(ObjectType::QualityRule);

    let ctx = Ctx {
        inp,
        compute: &compute,
        groups: &groups,
        defaulted_groups: &defaulted_groups,
        processes: &processes,
        renamer: &renamer,
        owner,
        auto,
        has_tasks,
        has_rules,
    };
    let mut planned: Vec<PlannedObject> = objs
        .iter()
        .enumerate()
        .filter(|(_, o)| o.studio == Studio::Legacy)
        .map(|(i, o)| ctx.object(i, o, dry.contains(&i)))
        .collect();
    link_rules(&mut planned, inp);
    warn_on_unresolved_dependencies(&mut planned, inp, &mut warnings);
    let owner = Arc::new(OwnerIdentity::from(&inp.identity));
    for p in &mut planned {
        finish(p, &owner);
    }

    let order = {
        let nodes: Vec<Node<'_>> = planned
            .iter()
            .map(|p| Node {
                object_type: p.object_type,
                name: &p.name,
                inputs: p.inputs.iter().map(String::as_str).collect(),
                outputs: p.outputs.iter().map(String::as_str).collect(),
            })
            .collect();
        import_order(&nodes)
    };
    let order = match order {
        Ok(o) => o,
        Err(stuck) => {
            problems.push(Problem::new(
                Rule::DependencyCycle,
                format!(
                    "scheduled tasks {} depend on each other in a cycle (through their inputs and outputs)",
                    listed(&stuck)
                ),
            ));
            Vec::new()
        }
    };
    if !problems.is_empty() {
        return Err(PlanError { problems });
    }
    let objects = permute(planned, &order);
    Ok(Plan {
        objects,
        warnings,
        compute_mapping: compute,
        resource_group_mapping: groups,
        business_process_mapping: processes,
        renames: renamer.pairs().clone(),
        edition: dest.edition,
        auto_commit_and_deploy: auto,
        has_tasks,
        has_rules,
    })
}

fn strings<'m>(m: &'m Map<String, Value>, key: &str) -> Vec<&'m str> {
    m.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The seed: objects of the new-version Data Studio cannot be imported, and
/// a package carrying them is refused naming them. Real names are unique per
/// type (conflicts and kube names rely on it).
fn check_package(objs: &[PackageObject], problems: &mut Vec<Problem>) {
    let new: Vec<String> = objs
        .iter()
        .filter(|o| o.studio == Studio::New)
        .map(|o| format!("{}/{}", o.object_type, o.name))
        .collect();
    if !new.is_empty() {
        problems.push(Problem::new(
            Rule::NewStudioObject,
            format!(
                "the package carries {} authored in the new-version Data Studio, which cannot be imported: {}",
                if new.len() == 1 { "1 object".to_string() } else { format!("{} objects", new.len()) },
                listed(&new)
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut dups = BTreeSet::new();
    for o in objs {
        if !o.name.is_empty() && !seen.insert((o.object_type, o.name.as_str())) {
            dups.insert((o.object_type, o.name.as_str()));
        }
    }
    for (t, n) in dups {
        problems.push(Problem::new(
            Rule::DuplicateObject,
            format!(
                "the package holds several {t} objects named {n:?}: real names are unique per type"
            ),
        ));
    }
}

/// Between tenants or regions, references to the source project usually do
/// not resolve; say so when no rename was asked for (but do not invent one:
/// the seed renames only when asked).
fn warn_on_missing_rename(inp: &Inputs<'_>, renamer: &Renamer, warnings: &mut Vec<String>) {
    let src = inp.source;
    let ws = inp.destination.workspace;
    let Some(project) = src.project_name.as_deref() else {
        return;
    };
    let same_tenant = src
        .tenant
        .as_deref()
        .is_none_or(|t| t == inp.destination.tenant);
    let same_region = match (src.region.as_deref(), ws.region.as_deref()) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    if renamer.is_empty() && project != ws.project_name && !(same_tenant && same_region) {
        warnings.push(format!(
            "the package comes from project {project:?} of another tenant or region and spec.dependencyMapping is empty: references to {project:?} in code, parameters and outputs are kept as they are"
        ));
    }
}

/// The seed maps dependencies to "the destination workspace name": a
/// `newProject` that is some other project is allowed (a task may read a
/// third workspace's tables) but worth a second look.
fn warn_on_foreign_new_project(inp: &Inputs<'_>, warnings: &mut Vec<String>) {
    let dest = inp.destination;
    for m in &inp.task.dependency_mapping {
        if m.new_project != dest.workspace.project_name && m.new_project != m.source_project {
            warnings.push(format!(
                "spec.dependencyMapping maps {:?} to {:?}, which is not the project of workspace {:?} ({:?}): references will point at another workspace",
                m.source_project, m.new_project, dest.name, dest.workspace.project_name
            ));
        }
    }
}

/// The seed: with Change Owner "Not Modify", an object that has no owner
/// gets the user who created the import. When that user is unknown (no
/// `ferry.dev/created-by` was recorded, which takes the creator admission
/// policy of Kubernetes 1.36 or later), importing would leave such objects
/// ownerless: refuse instead, naming them and the two ways out.
fn check_creator_known(inp: &Inputs<'_>, problems: &mut Vec<Problem>) {
    if !inp.creator.is_empty() {
        return;
    }
    let ownerless: Vec<String> = inp
        .objects
        .iter()
        .filter(|o| o.studio == Studio::Legacy && !o.name.trim().is_empty())
        .filter(|o| o.spec_str("owner").is_none_or(str::is_empty))
        .map(|o| format!("{}/{}", o.object_type, o.name))
        .collect();
    if ownerless.is_empty() {
        return;
    }
    problems.push(Problem::new(
        Rule::CreatorUnknown,
        format!(
            "spec.changeOwner.mode is NotModify and {} {} no owner, which then goes to the user who created the import task, but that user is not known (the task has no ferry.dev/created-by record: the creator admission policy needs Kubernetes 1.36 or later): set spec.changeOwner to {{mode: Specify, owner: <account>}}, or have the policy installed and create the task again; ownerless: {}",
            ownerless.len(),
            if ownerless.len() == 1 { "object has" } else { "objects have" },
            listed(&ownerless)
        ),
    ));
}

/// After mapping, every scheduled task's input should be the output of a
/// task of the package or something the destination has; one that resolves
/// to nothing is a warning on that task (its upstream must be imported or
/// created before it can run), never a refusal: partial exports (Custom,
/// Incremental) routinely depend on nodes outside the package.
///
/// What the destination has, as far as the engine is told: its root node
/// (`<project>_root`), its tables, the outputs its scheduled tasks declare,
/// and `<project>.<task>` for each of its scheduled tasks (the usual
/// DataWorks output name).
fn warn_on_unresolved_dependencies(
    planned: &mut [PlannedObject],
    inp: &Inputs<'_>,
    warnings: &mut Vec<String>,
) {
    let project = &inp.destination.workspace.project_name;
    let root = format!("{project}_root");
    let tasks = inp.existing.get(&ObjectType::ScheduledTask);
    let tables = inp.existing.get(&ObjectType::Table);
    let produced: BTreeSet<String> = planned
        .iter()
        .filter(|p| p.object_type == ObjectType::ScheduledTask && p.action != Action::Skip)
        .flat_map(|p| p.outputs.iter().cloned())
        .collect();
    let in_destination = |input: &str| {
        input == root
            || inp.existing_outputs.contains(input)
            || inp.existing_tables.contains(input)
            || tables.is_some_and(|t| t.contains_key(input))
            || input
                .strip_prefix(project.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|n| {
                    tasks.is_some_and(|t| t.contains_key(n))
                        || inp.existing_tables.contains(n)
                        || tables.is_some_and(|t| t.contains_key(n))
                })
    };
    let mut unresolved = 0;
    for p in planned
        .iter_mut()
        .filter(|p| p.object_type == ObjectType::ScheduledTask && p.action.writes())
    {
        for input in &p.inputs {
            if !produced.contains(input) && !in_destination(input) {
                unresolved += 1;
                p.warnings.push(format!(
                    "input {input:?} of scheduled task {:?} is the output of no task of the package and of nothing known in workspace {:?}: the task is imported, and waits on that upstream until it exists",
                    p.name, inp.destination.name
                ));
            }
        }
    }
    if unresolved > 0 {
        warnings.push(format!(
            "{unresolved} task {} to nothing in the package or workspace {:?}: see the tasks' warnings",
            if unresolved == 1 { "input resolves" } else { "inputs resolve" },
            inp.destination.name
        ));
    }
}

/// Positions of the tasks to import as dry-run: named ones (each must be a
/// scheduled task of the package) and those whose labels match the selector.
fn dry_run_tasks(
    objs: &[PackageObject],
    spec: &ImportTaskSpec,
    problems: &mut Vec<Problem>,
) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    let Some(dry) = &spec.dry_run else {
        return out;
    };
    let tasks: BTreeMap<&str, usize> = objs
        .iter()
        .enumerate()
        .filter(|(_, o)| o.object_type == ObjectType::ScheduledTask)
        .map(|(i, o)| (o.name.as_str(), i))
        .collect();
    for name in &dry.tasks {
        match tasks.get(name.as_str()) {
            Some(&i) => {
                out.insert(i);
            }
            None => problems.push(Problem::new(
                Rule::DryRunTaskNotFound,
                format!(
                    "spec.dryRun.tasks names {name:?}, which is not a scheduled task of the package"
                ),
            )),
        }
    }
    if let Some(sel) = &dry.selector {
        for &i in tasks.values() {
            match dryrun::matches(sel, &dryrun::object_labels(&objs[i])) {
                Ok(true) => {
                    out.insert(i);
                }
                Ok(false) => {}
                Err(msg) => {
                    problems.push(Problem::new(Rule::InvalidSelector, msg));
                    break;
                }
            }
        }
    }
    out
}

/// What every object's planning shares.
struct Ctx<'c, 'a> {
    inp: &'c Inputs<'a>,
    compute: &'c BTreeMap<String, String>,
    groups: &'c BTreeMap<String, String>,
    /// Source groups that fell back to the destination's default group.
    defaulted_groups: &'c BTreeSet<String>,
    processes: &'c BTreeMap<String, String>,
    renamer: &'c Renamer,
    owner: Option<&'c str>,
    auto: bool,
    has_tasks: bool,
    has_rules: bool,
}

impl Ctx<'_, '_> {
    fn object(&self, index: usize, o: &PackageObject, dry_run: bool) -> PlannedObject {
        let t = o.object_type;
        let (action, message) = self.action(o);
        let mut replacements = Vec::new();
        let mut warnings = Vec::new();
        let spec = self.spec(o, dry_run, &mut replacements, &mut warnings);
        let delivery = self.delivery(t, action);
        let owned = |key| strings(&spec, key).into_iter().map(String::from).collect();
        let existing = self
            .inp
            .existing
            .get(&t)
            .and_then(|names| names.get(&o.name))
            .filter(|_| action != Action::Skip)
            .map(|kube| crate::report::ExistingObject {
                kube_name: kube.clone(),
                name: o.name.clone(),
                import_task: None,
            });
        let kube_name = match (&existing, action) {
            (Some(e), Action::Update) => e.kube_name.clone(),
            _ => kube_name(t, &o.name),
        };
        PlannedObject {
            object_type: t,
            name: o.name.clone(),
            kube_name,
            existing,
            action,
            message,
            inputs: owned("inputs"),
            outputs: owned("outputs"),
            spec: SpecDoc::new(&spec),
            content_digest: String::new(),
            importer: Arc::default(),
            delivery,
            dry_run,
            owner: spec.get("owner").and_then(Value::as_str).map(String::from),
            rule: None,
            files: o.files.clone(),
            source_index: index,
            replacements: replacements.into(),
            warnings,
        }
    }

    fn action(&self, o: &PackageObject) -> (Action, Option<String>) {
        let t = o.object_type;
        if o.name.trim().is_empty() {
            return (
                Action::Skip,
                Some(format!("the {t} has no name, so it cannot be created")),
            );
        }
        let Some(in_the_way) = self
            .inp
            .existing
            .get(&t)
            .and_then(|names| names.get(&o.name))
        else {
            return (Action::Create, None);
        };
        let ws = self.inp.destination.name;
        if t == ObjectType::QualityRule && self.has_rules && self.has_tasks {
            return (
                Action::Update,
                Some(format!(
                    "quality rule {:?} exists in workspace {ws:?} as {in_the_way}: its content is replaced by the package's, because the package holds quality rules and scheduled tasks",
                    o.name
                )),
            );
        }
        (
            Action::Conflict,
            Some(format!(
                "a {t} named {:?} already exists in workspace {ws:?} as {in_the_way}: not overwritten, not committed",
                o.name
            )),
        )
    }

    fn spec(
        &self,
        o: &PackageObject,
        dry_run: bool,
        reps: &mut Vec<Replacement>,
        warnings: &mut Vec<String>,
    ) -> Map<String, Value> {
        let t = o.object_type;
        let r = self.renamer;
        let mut s = o.spec.clone();
        s.insert("name".into(), o.name.clone().into());
        s.insert("studio".into(), "Legacy".into());
        // The FlowSpec document gets the same mappings as the interpreted
        // fields (project renames, compute resources, resource groups,
        // dry-run; alert settings removed), so the two never disagree about
        // what the destination holds. Everything else in it travels as it
        // came. The package keeps it as text; it is parsed here, one object
        // at a time.
        let mut flow_spec = o.flow_spec.to_value();
        if !flow_spec.is_null() {
            self.map_document(o, &mut flow_spec, dry_run, reps);
            s.insert("flowSpec".into(), flow_spec);
        }
        if let Some(g) = group_of(o)
            && self.defaulted_groups.contains(&g)
            && let Some(d) = self.groups.get(&g)
        {
            warnings.push(format!(
                "resource group {g:?} has no entry in spec.resourceGroupMapping and workspace {:?} has no group of that name: the {t} runs on the workspace's default group {d:?}",
                self.inp.destination.name
            ));
        }
        let owner = match self.owner {
            Some(owner) => Some(owner.to_string()),
            None => match s.get("owner").and_then(Value::as_str) {
                Some(o) if !o.is_empty() => Some(o.to_string()),
                _ => Some(self.inp.creator.to_string()).filter(|c| !c.is_empty()),
            },
        };
        match owner {
            Some(owner) => s.insert("owner".into(), owner.into()),
            None => s.remove("owner"),
        };
        if t != ObjectType::QualityRule
            && let Some((c, _)) = compute_of(o)
            && let Some(d) = self.compute.get(&c)
        {
            s.insert("computeResource".into(), d.clone().into());
        }
        match t {
            ObjectType::ScheduledTask => {
                if let Some(g) = group_of(o)
                    && let Some(d) = self.groups.get(&g)
                {
                    s.insert("resourceGroup".into(), d.clone().into());
                }
                s.entry("script")
                    .or_insert_with(|| Value::Object(Map::new()));
                r.apply_script(&mut s, reps);
                for key in ["inputs", "outputs", "parameters"] {
                    r.apply_list(&mut s, key, reps);
                }
                // Cross-cycle dependencies name outputs too.
                if let Some(Value::Array(deps)) = s.get_mut("crossCycleDependencies") {
                    for (i, d) in deps.iter_mut().enumerate() {
                        if let Some(d) = d.as_object_mut() {
                            let field = format!("crossCycleDependencies[{i}].output");
                            r.apply_at(d, "output", &field, reps);
                        }
                    }
                }
                if dry_run {
                    s.insert("recurrence".into(), "Skip".into());
                }
            }
            ObjectType::Table => {
                r.apply_field(&mut s, "guid", reps);
                r.apply_field(&mut s, "ddl", reps);
            }
            ObjectType::QualityRule => {
                s.entry("table").or_insert_with(|| "".into());
                r.apply_field(&mut s, "scheduledTaskOutput", reps);
                // The seed: alert settings never leave the source workspace.
                // The document's own copy is stripped in `map_document`.
                alerts::strip_map(&mut s);
            }
            ObjectType::ServiceApi => {
                r.apply_script(&mut s, reps);
                if let Some(bp) = s.get("businessProcess").and_then(Value::as_str)
                    && let Some(d) = self.processes.get(bp)
                {
                    s.insert("businessProcess".into(), d.clone().into());
                }
            }
            ObjectType::FileResource | ObjectType::Function => {}
        }
        s
    }

    /// Applies the task's mappings to the object's FlowSpec document:
    /// project renames (recorded), compute resources by display name in its
    /// datasources, resource groups, dry-run on the task's node, and the
    /// removal of quality rules' alert settings.
    fn map_document(
        &self,
        o: &PackageObject,
        doc: &mut Value,
        dry_run: bool,
        reps: &mut Vec<Replacement>,
    ) {
        self.renamer.apply_document(doc, reps);
        mapping::map_document(doc, self.compute, self.groups);
        if dry_run {
            dryrun::mark_document(doc, &o.name);
        }
        if o.object_type == ObjectType::QualityRule {
            alerts::strip_document(doc);
        }
    }

    fn delivery(&self, t: ObjectType, action: Action) -> Delivery {
        if !action.writes() {
            let why = match action {
                Action::Conflict => {
                    "conflict: the destination's object is kept, nothing is committed"
                }
                _ => "skipped: not imported",
            };
            return Delivery {
                note: Some(why.into()),
                ..Delivery::default()
            };
        }
        if !self.auto {
            return Delivery {
                note: Some(format!(
                    "the {:?} edition does not commit or deploy automatically: the object is saved uncommitted; commit and deploy it by hand",
                    self.inp.destination.edition
                )),
                ..Delivery::default()
            };
        }
        let rules = &self.inp.task.committing_rules;
        let by_rule = |rule: CommitRule, field: &str| {
            let yes = rule == CommitRule::Commit;
            Delivery {
                commit: yes,
                deploy: yes,
                note: (!yes).then(|| format!("spec.committingRules.{field} is DoNotCommit")),
            }
        };
        match t {
            ObjectType::FileResource => by_rule(rules.file_resources, "fileResources"),
            ObjectType::Function => by_rule(rules.functions, "functions"),
            ObjectType::Table => {
                let (dev, prod) = (rules.tables.development, rules.tables.production);
                Delivery {
                    commit: dev || prod,
                    deploy: prod,
                    note: match (dev, prod) {
                        (false, false) => Some(
                            "spec.committingRules.tables commits to neither development nor production"
                                .into(),
                        ),
                        (true, false) => Some(
                            "spec.committingRules.tables.production is false: committed to development only"
                                .into(),
                        ),
                        _ => None,
                    },
                }
            }
            ObjectType::ScheduledTask | ObjectType::ServiceApi | ObjectType::QualityRule => {
                Delivery {
                    commit: true,
                    deploy: true,
                    note: None,
                }
            }
        }
    }
}

/// Attaches each quality rule to its table (when the table is in the package
/// or the destination) and associates it with the package's tasks whose
/// outputs include its `scheduledTaskOutput`.
fn link_rules(planned: &mut [PlannedObject], inp: &Inputs<'_>) {
    let mut producers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut tables: BTreeSet<String> = inp.existing_tables.clone();
    if let Some(t) = inp.existing.get(&ObjectType::Table) {
        tables.extend(t.keys().cloned());
    }
    let mut has_tasks = false;
    for p in planned.iter().filter(|p| p.action != Action::Skip) {
        match p.object_type {
            ObjectType::ScheduledTask => {
                has_tasks = true;
                for out in &p.outputs {
                    producers
                        .entry(out.to_string())
                        .or_default()
                        .insert(p.name.clone());
                }
            }
            ObjectType::Table => {
                tables.insert(p.name.clone());
            }
            _ => {}
        }
    }
    let ws = inp.destination.name;
    for p in planned
        .iter_mut()
        .filter(|p| p.object_type == ObjectType::QualityRule)
    {
        let spec = p.spec.value();
        let table = spec
            .get("table")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut link = RuleLink {
            attached: !table.is_empty() && tables.contains(&table),
            table: table.clone(),
            ..RuleLink::default()
        };
        if !link.attached {
            link.notes.push(if table.is_empty() {
                "the rule names no table: it is imported unattached".to_string()
            } else {
                format!(
                    "table {table:?} is neither in the package nor in workspace {ws:?}: the rule is imported unattached and attaches when the table appears"
                )
            });
        }
        let output = spec.get("scheduledTaskOutput").and_then(Value::as_str);
        if !has_tasks {
            link.notes.push(
                "the package holds no scheduled tasks: the rule is imported without task association"
                    .into(),
            );
        } else if let Some(out) = output {
            match producers.get(out) {
                Some(names) => link.associated_tasks = names.iter().cloned().collect(),
                None => link.notes.push(format!(
                    "no scheduled task of the package outputs {out:?}: the rule is associated with no task"
                )),
            }
        }
        p.rule = Some(link);
    }
}

/// `items` in `order` (`order[k]` is the index of the item that goes to
/// position `k`; a permutation), moved in place: a second vector of planned
/// objects would exist beside the first at the plan's memory peak.
fn permute<T>(mut items: Vec<T>, order: &[usize]) -> Vec<T> {
    assert_eq!(items.len(), order.len(), "the order is a permutation");
    // where_is[i]: the position of the item first at i; at[p]: which item
    // is at position p.
    let mut where_is: Vec<usize> = (0..items.len()).collect();
    let mut at = where_is.clone();
    for (k, &i) in order.iter().enumerate() {
        let from = where_is[i];
        debug_assert!(from >= k, "the order is a permutation");
        items.swap(k, from);
        at.swap(k, from);
        where_is[at[k]] = k;
        where_is[at[from]] = from;
    }
    items
}

/// Digest and owner (labels and annotations), once the spec is final.
fn finish(p: &mut PlannedObject, owner: &Arc<OwnerIdentity>) {
    p.content_digest = p.spec.digest();
    p.importer = owner.clone();
}

#[cfg(test)]
mod permute_tests {
    use super::permute;

    #[test]
    fn permute_moves_every_item_to_its_place() {
        let orders: [&[usize]; 5] = [&[], &[0], &[2, 0, 1], &[3, 2, 1, 0], &[1, 4, 0, 2, 5, 3]];
        for order in orders {
            let items: Vec<String> = (0..order.len()).map(|i| format!("o{i}")).collect();
            let want: Vec<String> = order.iter().map(|&i| items[i].clone()).collect();
            assert_eq!(permute(items, order), want, "{order:?}");
        }
    }
}
