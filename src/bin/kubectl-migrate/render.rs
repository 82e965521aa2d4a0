//! What each command shows, as plain data (the `-o json|yaml` output) and as
//! text (the default). Pure: no I/O, so the text is checked against golden
//! files in `tests/cli/golden/`.

use std::fmt::Write as _;

use ferry::api::{
    Artifact, ChangeOwner, ChangeOwnerMode, CommitRule, CommittingRules, DependencyMapping, DryRun,
    ImportPhase, ImportTask, ImportTaskSpec, MigrationPackage, NameMapping, PackageSummary,
    PlanSummary, Progress, TypeResult,
};
use ferry::conditions::{self, READY, STALLED};
use ferry_engine::Record;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use serde::Serialize;
use serde_json::Value;

use crate::table::Table;

// ---------------------------------------------------------------- packages

/// Where a package is: verified, refused, or not judged yet.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackageState {
    Ready,
    Refused,
    Pending,
}

/// `preview PKG`: the seed's "Preview File".
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PackageView {
    pub name: String,
    pub namespace: String,
    pub state: PackageState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<PackageSummary>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl PackageView {
    pub fn of(pkg: &MigrationPackage) -> Self {
        let status = pkg.status.clone().unwrap_or_default();
        let current = status.observed_generation.is_some()
            && status.observed_generation == pkg.metadata.generation;
        let ready = conditions::find(&status.conditions, READY);
        let state = if !current {
            PackageState::Pending
        } else if conditions::is_true(&status.conditions, READY) {
            PackageState::Ready
        } else if conditions::is_true(&status.conditions, STALLED) {
            PackageState::Refused
        } else {
            PackageState::Pending
        };
        PackageView {
            name: pkg.name_any(),
            namespace: pkg.namespace().unwrap_or_default(),
            state,
            reason: ready.map(|c| c.reason.clone()).filter(|r| !r.is_empty()),
            message: ready.map(|c| c.message.clone()).filter(|m| !m.is_empty()),
            source_kind: status.source_kind,
            artifact: status.artifact,
            summary: status.summary,
            problems: status.problems,
        }
    }
}

/// `1 conflict`, `2 conflicts`.
pub fn plural(n: u64, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// `1.2 MiB (1234567 bytes)`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {} ({bytes} bytes)", UNITS[unit])
}

fn or_dash(v: Option<&str>) -> &str {
    v.filter(|s| !s.is_empty()).unwrap_or("-")
}

/// Aligned `Key:  value` lines, indented.
fn fields(out: &mut String, indent: &str, rows: &[(&str, String)]) {
    let w = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (k, v) in rows {
        let line = format!("{indent}{:<w$}  {v}", format!("{k}:"), w = w + 1);
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn indented(out: &mut String, indent: &str, text: &str) {
    for line in text.lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "{indent}{line}");
        }
    }
}

pub fn preview(v: &PackageView) -> String {
    let mut out = String::new();
    let state = match v.state {
        PackageState::Ready => "Ready".to_string(),
        PackageState::Refused => "Refused".to_string(),
        PackageState::Pending => "not verified yet".to_string(),
    };
    let reason = v
        .reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Package {} in namespace {}: {state}{reason}",
        v.name, v.namespace
    );
    match v.state {
        PackageState::Refused => {
            if v.problems.is_empty() {
                let _ = writeln!(out, "  {}", or_dash(v.message.as_deref()));
            } else {
                let _ = writeln!(out, "\nProblems ({}):", v.problems.len());
                for p in &v.problems {
                    let _ = writeln!(out, "  - {p}");
                }
            }
            let advice = if v.reason.as_deref() == Some("EditionLimitReached") {
                "Nothing was stored. Upgrade the tenant's edition to export more packages."
            } else if v.source_kind.as_deref() == Some("Export") {
                "Nothing was stored, and a failed export does not count against the tenant's export limit. Fix the cause above (the source workspace's objects or the export settings), then create the package again under a new name (the source is immutable)."
            } else {
                "Nothing was stored. Fix the package and create it again under a new name (the source is immutable)."
            };
            let _ = writeln!(out, "\n{advice}");
            return out;
        }
        PackageState::Pending => {
            if let Some(m) = &v.message {
                let _ = writeln!(out, "  {m}");
            }
            let _ = writeln!(
                out,
                "\nRun `kubectl migrate preview {} -n {} --wait` to wait for verification.",
                v.name, v.namespace
            );
            return out;
        }
        PackageState::Ready => {}
    }
    let s = v.summary.clone().unwrap_or_default();
    out.push('\n');
    let mut rows = vec![
        (
            "Source tenant",
            or_dash(s.source_tenant.as_deref()).to_string(),
        ),
        (
            "Source workspace",
            or_dash(s.source_workspace.as_deref()).to_string(),
        ),
        (
            "Source project",
            or_dash(s.source_project.as_deref()).to_string(),
        ),
        (
            "Source region",
            or_dash(s.source_region.as_deref()).to_string(),
        ),
    ];
    if let Some(kind) = &v.source_kind {
        rows.push(("Brought in from", kind.clone()));
    }
    if let Some(a) = &v.artifact {
        rows.push(("Digest", a.digest.clone()));
        rows.push(("Size", size(a.size)));
    }
    rows.push(("Objects", s.total_objects.to_string()));
    fields(&mut out, "", &rows);

    out.push_str("\nObjects per type\n");
    let mut t = Table::new(&["TYPE", "OBJECTS"]).right(&[1]);
    for (ty, n) in &s.objects {
        t.row([ty.clone(), n.to_string()]);
    }
    if t.is_empty() {
        out.push_str("  (none)\n");
    } else {
        indented(&mut out, "  ", &t.render());
    }

    out.push_str("\nCompute resources (map each with computeResourceMapping)\n");
    let mut t = Table::new(&["NAME", "TYPE"]);
    for c in &s.compute_resources {
        t.row([c.name.clone(), c.type_.clone()]);
    }
    if t.is_empty() {
        out.push_str("  (none)\n");
    } else {
        indented(&mut out, "  ", &t.render());
    }

    out.push_str("\nResource groups\n");
    if s.resource_groups.is_empty() {
        out.push_str("  (none)\n");
    } else {
        for g in &s.resource_groups {
            let _ = writeln!(out, "  {g}");
        }
    }
    if s.skipped_objects > 0 {
        let _ = writeln!(
            out,
            "\nSkipped at export ({})",
            plural(s.skipped_objects, "object")
        );
        for line in &s.skipped {
            let _ = writeln!(out, "  {line}");
        }
        let more = s.skipped_objects.saturating_sub(s.skipped.len() as u64);
        if more > 0 {
            let _ = writeln!(out, "  ... and {more} more");
        }
    }
    out
}

// -------------------------------------------------------------------- plan

/// The Ready reason of a task held in Editing whose settings cannot be
/// planned.
const INVALID_SETTINGS: &str = "InvalidSettings";

/// `plan TASK`: what the import will do.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlanView {
    pub name: String,
    pub namespace: String,
    pub import_name: String,
    pub package: String,
    pub suspend: bool,
    pub phase: Option<ImportPhase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Whether the task is stuck on something a person must fix (a mapping
    /// error, for example): then starting it would not help.
    #[serde(skip)]
    pub stalled: bool,
    /// With `--details`: every object's record, from the report ConfigMaps
    /// (a suspended task's report is its preview).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects: Option<Vec<Record>>,
}

impl PlanView {
    pub fn of(task: &ImportTask) -> Self {
        let status = task.status.clone();
        let ready_message = status
            .as_ref()
            .and_then(|s| conditions::find(&s.conditions, READY))
            .map(|c| c.message.clone())
            .filter(|m| !m.is_empty());
        PlanView {
            name: task.name_any(),
            namespace: task.namespace().unwrap_or_default(),
            import_name: task.spec.import_name.clone(),
            package: task.spec.package_ref.name.clone(),
            suspend: task.spec.suspend,
            phase: status.as_ref().map(|s| s.phase),
            plan: status.as_ref().and_then(|s| s.plan.clone()),
            // Stalled, or held in Editing with settings that cannot be
            // planned (a mapping error): starting would not help.
            stalled: status.as_ref().is_some_and(|s| {
                conditions::is_true(&s.conditions, STALLED)
                    || conditions::find(&s.conditions, READY)
                        .is_some_and(|c| c.reason == INVALID_SETTINGS)
            }),
            message: status.and_then(|s| s.message).or(ready_message),
            objects: None,
        }
    }
}

/// The seed's words for what happens to an object.
fn plan_action(a: ferry_engine::Action) -> &'static str {
    match a {
        ferry_engine::Action::Create => "create",
        ferry_engine::Action::Update => "update rule",
        ferry_engine::Action::Conflict => "conflict",
        ferry_engine::Action::Skip => "skip",
    }
}

/// `plan --details`: every object, then every replacement.
fn plan_objects(out: &mut String, v: &PlanView, records: &[Record]) {
    if records.is_empty() {
        let _ = writeln!(
            out,
            "\nObjects: none listed yet: the per-object plan is written to the task's report when the plan is made (kubectl migrate plan {} -n {} --details again then).",
            v.name, v.namespace
        );
        return;
    }
    let _ = writeln!(out, "\nObjects ({}):", records.len());
    let mut t = Table::new(&[
        "TYPE",
        "NAME",
        "ACTION",
        "DRY-RUN",
        "OWNER",
        "REPLACEMENTS",
        "NOTES",
    ])
    .right(&[5]);
    for r in records {
        let replaced: u64 = r.replacements.iter().map(|x| x.count).sum();
        t.row([
            r.object_type.to_string(),
            r.name.clone(),
            plan_action(r.action).to_string(),
            if r.dry_run { "yes" } else { "-" }.to_string(),
            // Owner after import: of objects the import writes.
            r.owner
                .clone()
                .filter(|_| r.action.writes())
                .unwrap_or_else(|| "-".into()),
            replaced.to_string(),
            r.reason().unwrap_or_default(),
        ]);
    }
    indented(out, "  ", &t.render());
    if records.iter().any(|r| !r.replacements.is_empty()) {
        let _ = writeln!(out, "\nReplacements:");
        let mut t = Table::new(&["OBJECT", "FIELD", "BEFORE", "AFTER", "COUNT"]).right(&[4]);
        for r in records {
            for x in r.replacements.iter() {
                t.row([
                    format!("{}/{}", r.object_type, r.name),
                    x.field.clone(),
                    x.before.clone(),
                    x.after.clone(),
                    x.count.to_string(),
                ]);
            }
        }
        indented(out, "  ", &t.render());
    }
}

pub fn plan(v: &PlanView) -> String {
    let mut out = String::new();
    let phase = v
        .phase
        .map(|p| format!("{p:?}"))
        .unwrap_or_else(|| "not started".into());
    let _ = writeln!(
        out,
        "Import task {} ({}) in namespace {}: {phase}",
        v.name, v.import_name, v.namespace
    );
    let _ = writeln!(out, "Package: {}", v.package);
    match &v.plan {
        None if v.stalled => {
            out.push_str(
                "\nNo plan: the settings cannot be planned as they are (see the message).\n",
            );
        }
        None => {
            out.push_str("\nNo plan yet: the plan appears once the package is verified and the settings are read.\n");
        }
        Some(p) => {
            out.push('\n');
            let mut t = Table::new(&["ACTION", "OBJECTS", "MEANING"]).right(&[1]);
            t.row([
                "create",
                &p.create.to_string(),
                "written to the destination",
            ]);
            if p.update > 0 {
                t.row([
                    "update",
                    &p.update.to_string(),
                    "existing quality rules replaced in place (counted in create too)",
                ]);
            }
            t.row([
                "conflict",
                &p.conflict.to_string(),
                "name taken in the destination: not overwritten, not committed",
            ]);
            t.row([
                "skip",
                &p.skip.to_string(),
                "not imported; the report says why",
            ]);
            out.push_str(&t.render());
            if !p.first_conflicts.is_empty() {
                let more = p.conflict.saturating_sub(p.first_conflicts.len() as u64);
                let _ = writeln!(out, "\nConflicts:");
                for c in &p.first_conflicts {
                    let _ = writeln!(out, "  {c}");
                }
                if more > 0 {
                    let _ = writeln!(out, "  ... and {more} more (see the report)");
                }
            }
            if p.replacements > 0 {
                let _ = writeln!(
                    out,
                    "\nProject-name replacements: {} (each with its field, before and after, in the report: `kubectl migrate report {} -n {} --details -o json`)",
                    p.replacements, v.name, v.namespace
                );
            }
            if p.warning_count > 0 {
                let _ = writeln!(out, "\nWarnings ({}):", p.warning_count);
                for w in &p.warnings {
                    let _ = writeln!(out, "  {w}");
                }
                let more = p.warning_count.saturating_sub(p.warnings.len() as u64);
                if more > 0 {
                    let _ = writeln!(out, "  ... and {more} more (see the report)");
                }
            }
        }
    }
    if let Some(records) = &v.objects {
        plan_objects(&mut out, v, records);
    } else if let Some(p) = &v.plan {
        if !p.first_objects.is_empty() {
            let total = p.create + p.conflict + p.skip;
            let _ = writeln!(
                out,
                "\nFirst {} of {}:",
                p.first_objects.len(),
                plural(total, "object")
            );
            let mut t = Table::new(&["TYPE", "NAME", "ACTION", "DRY-RUN", "OWNER", "REPLACEMENTS"])
                .right(&[5]);
            for o in &p.first_objects {
                t.row([
                    o.type_.clone(),
                    o.name.clone(),
                    match o.action.as_str() {
                        "Update" => "update rule".to_string(),
                        a => a.to_lowercase(),
                    },
                    if o.dry_run { "yes" } else { "-" }.to_string(),
                    o.owner.clone().unwrap_or_else(|| "-".into()),
                    o.replacements.to_string(),
                ]);
            }
            indented(&mut out, "  ", &t.render());
        }
        let _ = writeln!(
            out,
            "\nEvery object (type, name, action, dry-run, owner, replacements): `kubectl migrate plan {} -n {} --details`.",
            v.name, v.namespace
        );
    }
    if let Some(m) = &v.message {
        let _ = writeln!(out, "\nMessage: {m}");
    }
    if v.stalled {
        let _ = writeln!(
            out,
            "\nFix what the message says (`kubectl edit importtask {} -n {}`); the plan is made again when the settings change.",
            v.name, v.namespace
        );
    } else if v.suspend && v.phase == Some(ImportPhase::Editing) && v.plan.is_some() {
        let _ = writeln!(
            out,
            "\nStart the import with `kubectl migrate start {} -n {} --wait`.",
            v.name, v.namespace
        );
    }
    out
}

// ---------------------------------------------------------------- progress

/// One line of `--wait` output: the phase and, when known, done/total.
pub fn progress_line(phase: ImportPhase, progress: Option<&Progress>) -> String {
    match progress {
        Some(p) if p.total > 0 => format!("{phase:?} {}/{}", p.done, p.total),
        _ => format!("{phase:?}"),
    }
}

/// A progress bar of `width` cells: `[#####-----] 5/10`.
pub fn progress_bar(progress: &Progress, width: usize) -> String {
    let filled = if progress.total == 0 {
        0
    } else {
        ((progress.done.min(progress.total) as u128 * width as u128) / progress.total as u128)
            as usize
    };
    format!(
        "[{}{}] {}/{}",
        "#".repeat(filled),
        "-".repeat(width - filled),
        progress.done,
        progress.total
    )
}

/// The end of `start --wait` / `import-again --wait`.
pub fn outcome(task: &ImportTask) -> String {
    let mut out = String::new();
    let Some(s) = task.status.as_ref() else {
        return out;
    };
    let ns = task.namespace().unwrap_or_default();
    let name = task.name_any();
    match s.phase {
        ImportPhase::Completed => {
            let total = |f: fn(&TypeResult) -> u64| s.results.iter().map(f).sum::<u64>();
            let _ = writeln!(
                out,
                "Completed: {} created, {} updated, {}, {} skipped, {} failed; {} committed, {} deployed.",
                total(|r| r.created),
                total(|r| r.updated),
                plural(total(|r| r.conflict), "conflict"),
                total(|r| r.skipped),
                total(|r| r.failed),
                total(|r| r.committed),
                total(|r| r.deployed),
            );
            if let Some(c) =
                conditions::find(&s.conditions, "PartiallyImported").filter(|c| c.status == "True")
            {
                let _ = writeln!(out, "Partially imported: {}", c.message);
            }
            let _ = writeln!(
                out,
                "Read the report with `kubectl migrate report {name} -n {ns} --details`."
            );
        }
        ImportPhase::ImportFailed => {
            let failed = s
                .failed_phase
                .map(|p| format!("{p:?}"))
                .unwrap_or_else(|| "an unknown phase".into());
            let _ = writeln!(
                out,
                "ImportFailed in phase {failed}: {}",
                or_dash(s.message.as_deref())
            );
            let _ = writeln!(
                out,
                "Fix the cause (for settings: `kubectl edit importtask {name} -n {ns}`), then run `kubectl migrate import-again {name} -n {ns} --wait`."
            );
        }
        other => {
            let _ = writeln!(out, "{other:?}");
        }
    }
    out
}

// ------------------------------------------------------------------ report

/// `report TASK`: the four sections of the seed's import report.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReportView {
    pub basic_information: BasicInformation,
    pub import_results: Vec<TypeResult>,
    /// Present with `--details`: every record of the report ConfigMaps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<Record>>,
    pub import_settings: ImportSettings,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BasicInformation {
    pub import_task: String,
    pub namespace: String,
    pub import_name: String,
    pub package: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<ImportPhase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_phase: Option<ImportPhase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partially_imported: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_commit_and_deploy: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phase_timings: Vec<PhaseTimingView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PhaseTimingView {
    pub phase: ImportPhase,
    pub started_at: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<i64>,
}

/// The settings the import ran with.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImportSettings {
    pub compute_resource_mapping: Vec<NameMapping>,
    pub resource_group_mapping: Vec<NameMapping>,
    pub dependency_mapping: Vec<DependencyMapping>,
    pub data_service_mapping: Vec<NameMapping>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<DryRun>,
    pub committing_rules: CommittingRules,
    pub change_owner: ChangeOwner,
}

impl ImportSettings {
    pub fn of(spec: &ImportTaskSpec) -> Self {
        ImportSettings {
            compute_resource_mapping: spec.compute_resource_mapping.clone(),
            resource_group_mapping: spec.resource_group_mapping.clone(),
            dependency_mapping: spec.dependency_mapping.clone(),
            data_service_mapping: spec.data_service_mapping.clone(),
            dry_run: spec.dry_run.clone(),
            committing_rules: spec.committing_rules.clone(),
            change_owner: spec.change_owner.clone(),
        }
    }
}

fn seconds_between(a: &Time, b: &Time) -> i64 {
    b.0.duration_since(a.0).as_secs()
}

/// `42s`, `3m05s`, `1h02m`.
pub fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// Builds the report from the task, shard 0's `basic.json` and
/// `settings.json` when present, and the records when asked for.
pub fn report_view(
    task: &ImportTask,
    basic: Option<&Value>,
    settings: Option<&ImportTaskSpec>,
    details: Option<Vec<Record>>,
) -> ReportView {
    let status = task.status.clone().unwrap_or_default();
    let basic_str = |k: &str| {
        basic
            .and_then(|b| b.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let warnings = basic
        .and_then(|b| b.get("warnings"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let phase_timings = status
        .phase_timings
        .iter()
        .map(|t| PhaseTimingView {
            phase: t.phase,
            started_at: t.started_at.clone(),
            completed_at: t.completed_at.clone(),
            seconds: t
                .completed_at
                .as_ref()
                .map(|c| seconds_between(&t.started_at, c)),
        })
        .collect();
    let partially_imported = conditions::find(&status.conditions, "PartiallyImported")
        .filter(|c| c.status == "True")
        .map(|c| c.message.clone());
    let duration_seconds = match (&status.started_at, &status.completed_at) {
        (Some(a), Some(b)) => Some(seconds_between(a, b)),
        _ => None,
    };
    ReportView {
        basic_information: BasicInformation {
            import_task: task.name_any(),
            namespace: task.namespace().unwrap_or_default(),
            import_name: task.spec.import_name.clone(),
            package: task.spec.package_ref.name.clone(),
            package_digest: basic_str("packageDigest"),
            description: task.spec.description.clone(),
            creator: status.creator.clone(),
            started_at: status.started_at.clone(),
            completed_at: status.completed_at.clone(),
            duration_seconds,
            phase: task.status.as_ref().map(|s| s.phase),
            failed_phase: status.failed_phase,
            message: status.message.clone(),
            partially_imported,
            edition: basic_str("edition"),
            auto_commit_and_deploy: basic
                .and_then(|b| b.get("autoCommitAndDeploy"))
                .and_then(Value::as_bool),
            warnings,
            phase_timings,
            records: status.report.as_ref().map(|r| r.records),
        },
        import_results: status.results.clone(),
        details,
        import_settings: ImportSettings::of(settings.unwrap_or(&task.spec)),
    }
}

fn time(t: Option<&Time>) -> String {
    t.map(|t| t.0.to_string()).unwrap_or_else(|| "-".into())
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn commit_rule(r: CommitRule) -> &'static str {
    match r {
        CommitRule::Commit => "Commit",
        CommitRule::DoNotCommit => "Do Not Commit",
    }
}

fn mapping_table(
    out: &mut String,
    title: &str,
    header: [&str; 2],
    rows: &[(String, String)],
    empty: &str,
) {
    let _ = writeln!(out, "  {title}:");
    if rows.is_empty() {
        let _ = writeln!(out, "    {empty}");
        return;
    }
    let mut t = Table::new(&header);
    for (a, b) in rows {
        t.row([a, b]);
    }
    indented(out, "    ", &t.render());
}

pub fn report(v: &ReportView) -> String {
    let b = &v.basic_information;
    let mut out = String::new();

    out.push_str("Basic Information\n");
    let mut rows = vec![
        ("Import name", b.import_name.clone()),
        (
            "Import task",
            format!("{} (namespace {})", b.import_task, b.namespace),
        ),
        ("Package", b.package.clone()),
    ];
    if let Some(d) = &b.package_digest {
        rows.push(("Package digest", d.clone()));
    }
    if let Some(d) = &b.description {
        rows.push(("Remarks", d.clone()));
    }
    rows.push(("Creator", or_dash(b.creator.as_deref()).to_string()));
    rows.push(("Started", time(b.started_at.as_ref())));
    rows.push(("Completed", time(b.completed_at.as_ref())));
    if let Some(s) = b.duration_seconds {
        rows.push(("Duration", duration(s)));
    }
    let phase = match (b.phase, b.failed_phase) {
        (Some(ImportPhase::ImportFailed), Some(f)) => format!("ImportFailed (in {f:?})"),
        (Some(p), _) => format!("{p:?}"),
        (None, _) => "not started".into(),
    };
    rows.push(("Phase", phase));
    if let Some(m) = &b.message {
        rows.push(("Message", m.clone()));
    }
    if let Some(p) = &b.partially_imported {
        rows.push(("Partially imported", p.clone()));
    }
    if let Some(e) = &b.edition {
        let auto = match b.auto_commit_and_deploy {
            Some(true) => " (commits and deploys automatically)",
            Some(false) => " (commit and deploy by hand: kubectl migrate commit)",
            None => "",
        };
        rows.push(("Edition", format!("{e}{auto}")));
    }
    if !b.phase_timings.is_empty() {
        let phases: Vec<String> = b
            .phase_timings
            .iter()
            .map(|t| match t.seconds {
                Some(s) => format!("{:?} {}", t.phase, duration(s)),
                None => format!("{:?} (running)", t.phase),
            })
            .collect();
        rows.push(("Phases", phases.join(", ")));
    }
    fields(&mut out, "  ", &rows);
    for w in &b.warnings {
        let _ = writeln!(out, "  Warning: {w}");
    }

    out.push_str("\nImport Results\n");
    if v.import_results.is_empty() {
        out.push_str("  (no results yet)\n");
    } else {
        let mut t = Table::new(&[
            "TYPE",
            "CREATED",
            "UPDATED",
            "CONFLICT",
            "SKIPPED",
            "FAILED",
            "COMMITTED",
            "DEPLOYED",
        ])
        .right(&[1, 2, 3, 4, 5, 6, 7]);
        let mut total = TypeResult {
            type_: "Total".into(),
            ..Default::default()
        };
        for r in &v.import_results {
            t.row([
                r.type_.clone(),
                r.created.to_string(),
                r.updated.to_string(),
                r.conflict.to_string(),
                r.skipped.to_string(),
                r.failed.to_string(),
                r.committed.to_string(),
                r.deployed.to_string(),
            ]);
            total.created += r.created;
            total.updated += r.updated;
            total.conflict += r.conflict;
            total.skipped += r.skipped;
            total.failed += r.failed;
            total.committed += r.committed;
            total.deployed += r.deployed;
        }
        if v.import_results.len() > 1 {
            t.row([
                total.type_,
                total.created.to_string(),
                total.updated.to_string(),
                total.conflict.to_string(),
                total.skipped.to_string(),
                total.failed.to_string(),
                total.committed.to_string(),
                total.deployed.to_string(),
            ]);
        }
        indented(&mut out, "  ", &t.render());
    }

    out.push_str("\nDetails\n");
    match &v.details {
        None => {
            let n = b
                .records
                .map(|n| format!("{n} records; "))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  ({n}show them with `kubectl migrate report {} -n {} --details`)",
                b.import_task, b.namespace
            );
        }
        Some(records) if records.is_empty() => out
            .push_str("  (no records yet: the report is written when the plan is made and after every phase)\n"),
        Some(records) => {
            let mut t = Table::new(&[
                "TYPE",
                "NAME",
                "ACTION",
                "OUTCOME",
                "COMMITTED",
                "DEPLOYED",
                "MESSAGE",
            ]);
            for r in records {
                let mut message = r.reason().unwrap_or_default();
                if r.dry_run {
                    message = join_note(message, "dry-run");
                }
                if r.attached == Some(false) {
                    message = join_note(message, "waiting for its table");
                }
                t.row([
                    r.object_type.to_string(),
                    r.name.clone(),
                    json_word(&r.action),
                    json_word(&r.outcome),
                    yes_no(r.committed).to_string(),
                    yes_no(r.deployed).to_string(),
                    message,
                ]);
            }
            indented(&mut out, "  ", &t.render());
        }
    }

    out.push_str("\nImport Settings\n");
    let s = &v.import_settings;
    let pairs = |m: &[NameMapping]| -> Vec<(String, String)> {
        m.iter()
            .map(|m| (m.source.clone(), m.destination.clone()))
            .collect()
    };
    mapping_table(
        &mut out,
        "Compute resource mapping",
        ["SOURCE", "DESTINATION"],
        &pairs(&s.compute_resource_mapping),
        "(none)",
    );
    mapping_table(
        &mut out,
        "Resource group mapping",
        ["SOURCE", "DESTINATION"],
        &pairs(&s.resource_group_mapping),
        "(none: groups keep their names)",
    );
    mapping_table(
        &mut out,
        "Dependency mapping",
        ["SOURCE PROJECT", "NEW PROJECT"],
        &s.dependency_mapping
            .iter()
            .map(|d| (d.source_project.clone(), d.new_project.clone()))
            .collect::<Vec<_>>(),
        "(none: project names unchanged)",
    );
    mapping_table(
        &mut out,
        "DataService Studio mapping",
        ["SOURCE", "DESTINATION"],
        &pairs(&s.data_service_mapping),
        "(none)",
    );
    let dry_run = match &s.dry_run {
        Some(d) if !d.tasks.is_empty() || d.selector.is_some() => {
            let mut parts = Vec::new();
            if !d.tasks.is_empty() {
                parts.push(d.tasks.join(", "));
            }
            if d.selector.is_some() {
                parts.push("tasks matching a label selector".into());
            }
            parts.join("; ")
        }
        _ => "(none)".into(),
    };
    let r = &s.committing_rules;
    let owner = match (&s.change_owner.mode, &s.change_owner.owner) {
        (ChangeOwnerMode::NotModify, _) => {
            "Not Modify (objects without an owner get the creator)".to_string()
        }
        (ChangeOwnerMode::Specify, Some(o)) => format!("Specify: {o}"),
        (ChangeOwnerMode::Specify, None) => "Specify".to_string(),
    };
    fields(
        &mut out,
        "  ",
        &[
            ("Dry-run tasks", dry_run),
            (
                "Commit file resources",
                commit_rule(r.file_resources).into(),
            ),
            ("Commit functions", commit_rule(r.functions).into()),
            (
                "Commit tables",
                format!(
                    "development {}, production {}",
                    yes_no(r.tables.development),
                    yes_no(r.tables.production)
                ),
            ),
            ("Change owner", owner),
        ],
    );
    out
}

fn join_note(message: String, note: &str) -> String {
    if message.is_empty() {
        note.to_string()
    } else {
        format!("{message}; {note}")
    }
}

/// An enum as its JSON word (`Create`, `Conflict`, ...).
fn json_word<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}
