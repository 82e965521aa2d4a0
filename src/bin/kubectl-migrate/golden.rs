//! Golden-output tests: each rendering of fixed statuses equals a committed
//! file under `tests/cli/golden/`. After an intended change, regenerate with
//! `FERRY_UPDATE_GOLDEN=1 cargo test --bin kubectl-migrate golden` and review
//! the diff.

use std::path::PathBuf;

use ferry::api::{ImportTask, MigrationPackage};
use ferry_engine::{Action, Outcome, Record};
use ferry_package::ObjectType;
use serde_json::json;

use crate::render::{self, PackageView, PlanView};

fn check(file: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cli/golden")
        .join(file);
    if std::env::var_os("FERRY_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with FERRY_UPDATE_GOLDEN=1 cargo test --bin kubectl-migrate golden",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "{} differs from the rendering.\n--- expected\n{expected}\n--- actual\n{actual}\nIf the change is intended: FERRY_UPDATE_GOLDEN=1 cargo test --bin kubectl-migrate golden",
            path.display()
        );
    }
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> serde_json::Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": "2026-11-25T10:00:00Z", "observedGeneration": 1})
}

fn ready_package() -> MigrationPackage {
    serde_json::from_value(json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "MigrationPackage",
        "metadata": {"name": "sales-q4", "namespace": "sales-prod", "generation": 1},
        "spec": {"source": {"configMap": {"name": "sales-q4-zip", "key": "package.zip"}}},
        "status": {
            "observedGeneration": 1,
            "sourceKind": "ConfigMap",
            "artifact": {"digest": "sha256:5f2b8c0e9a1d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b", "size": 48213},
            "summary": {
                "sourceTenant": "acme", "sourceWorkspace": "sales-dev",
                "sourceProject": "sales_dev", "sourceRegion": "cn-shanghai",
                "totalObjects": 47,
                "objects": {"ScheduledTask": 30, "Table": 6, "QualityRule": 3, "ServiceApi": 2, "FileResource": 4, "Function": 2},
                "computeResources": [
                    {"name": "sales_mc_dev", "type": "MaxCompute"},
                    {"name": "sales_holo_dev", "type": "Hologres"},
                    {"name": "销售_emr", "type": "EMR"}
                ],
                "resourceGroups": ["dev_serverless", "dev_exclusive_01"]
            },
            "conditions": [condition("Ready", "True", "Verified", "verified 47 objects")]
        }
    }))
    .unwrap()
}

fn refused_package() -> MigrationPackage {
    serde_json::from_value(json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "MigrationPackage",
        "metadata": {"name": "bad", "namespace": "sales-prod", "generation": 1},
        "spec": {"source": {"configMap": {"name": "bad-zip", "key": "package.zip"}}},
        "status": {
            "observedGeneration": 1,
            "sourceKind": "ConfigMap",
            "problems": [
                "entry ../etc/passwd: path escapes the package",
                "ScheduledTask \"a\": dependency cycle \"a\" -> \"b\" -> \"a\" (rule: dependency-cycle)"
            ],
            "conditions": [
                condition("Ready", "False", "Invalid", "2 problems"),
                condition("Stalled", "True", "Invalid", "2 problems")
            ]
        }
    }))
    .unwrap()
}

fn exported_package(ready: bool) -> MigrationPackage {
    let status = if ready {
        json!({
            "observedGeneration": 1,
            "sourceKind": "Export",
            "artifact": {"digest": "sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9", "size": 9120},
            "summary": {
                "sourceTenant": "acme", "sourceWorkspace": "sales-dev",
                "sourceProject": "sales_dev", "sourceRegion": "cn-shanghai",
                "totalObjects": 3,
                "objects": {"ScheduledTask": 2, "Table": 1},
                "computeResources": [{"name": "sales_mc_dev", "type": "MaxCompute"}],
                "resourceGroups": ["dev_serverless"],
                "skipped": [
                    "ScheduledTask/新版_job: created in the new-version Data Studio, which cannot be exported",
                    "Table/staging_v2: created in the new-version Data Studio, which cannot be exported"
                ],
                "skippedObjects": 2
            },
            "conditions": [condition("Ready", "True", "Verified", "verified 3 objects")]
        })
    } else {
        json!({
            "observedGeneration": 1,
            "sourceKind": "Export",
            "problems": ["ScheduledTask \"a\": dependency cycle \"a\" -> \"b\" -> \"a\" (rule: dependency-cycle)"],
            "conditions": [
                condition("Ready", "False", "VerificationFailed", "1 problem"),
                condition("Stalled", "True", "VerificationFailed", "1 problem")
            ]
        })
    };
    serde_json::from_value(json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "MigrationPackage",
        "metadata": {"name": "sales-export", "namespace": "sales-dev", "generation": 1},
        "spec": {"source": {"export": {"workspace": "sales-dev"}}},
        "status": status
    }))
    .unwrap()
}

#[test]
fn golden_preview_export_lists_objects_skipped_at_export() {
    check(
        "preview-exported.txt",
        &render::preview(&PackageView::of(&exported_package(true))),
    );
}

#[test]
fn golden_preview_refused_export_is_not_counted() {
    check(
        "preview-export-refused.txt",
        &render::preview(&PackageView::of(&exported_package(false))),
    );
}

fn spec() -> serde_json::Value {
    json!({
        "importName": "sales.q4_import",
        "packageRef": {"name": "sales-q4"},
        "description": "Q4 pipelines",
        "suspend": true,
        "computeResourceMapping": [
            {"source": "sales_mc_dev", "destination": "sales_mc_prod"},
            {"source": "sales_holo_dev", "destination": "sales_holo"}
        ],
        "dependencyMapping": [{"sourceProject": "sales_dev", "newProject": "sales_prod"}],
        "dryRun": {"tasks": ["load_orders"]},
        "committingRules": {"fileResources": "Commit", "functions": "DoNotCommit", "tables": {"development": true, "production": false}},
        "changeOwner": {"mode": "Specify", "owner": "1234567"}
    })
}

fn editing_task() -> ImportTask {
    serde_json::from_value(json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ImportTask",
        "metadata": {"name": "q4", "namespace": "sales-prod", "generation": 1},
        "spec": spec(),
        "status": {
            "observedGeneration": 1,
            "phase": "Editing",
            "plan": {"create": 44, "conflict": 12, "skip": 1,
                     "firstConflicts": ["ScheduledTask/load_orders", "ScheduledTask/load_refunds", "Table/orders"],
                     "firstObjects": [
                        {"type": "Table", "name": "orders", "action": "Conflict"},
                        {"type": "ScheduledTask", "name": "load_orders", "action": "Conflict"},
                        {"type": "ScheduledTask", "name": "汇总_daily", "action": "Create", "dryRun": true, "owner": "1234567", "replacements": 2},
                        {"type": "QualityRule", "name": "orders_not_null", "action": "Update", "owner": "1234567"}
                     ]},
            "conditions": [condition("Ready", "False", "Suspended",
                "plan: 44 to create, 12 conflicts, 1 skipped; set spec.suspend to false to import")]
        }
    }))
    .unwrap()
}

fn completed_task() -> ImportTask {
    let mut spec = spec();
    spec["suspend"] = json!(false);
    serde_json::from_value(json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ImportTask",
        "metadata": {"name": "q4", "namespace": "sales-prod", "generation": 2},
        "spec": spec,
        "status": {
            "observedGeneration": 2,
            "phase": "Completed",
            "creator": "7654321",
            "progress": {"done": 4, "total": 4},
            "plan": {"create": 4, "conflict": 1, "skip": 1, "firstConflicts": ["ScheduledTask/load_refunds"]},
            "results": [
                {"type": "Table", "created": 1, "conflict": 0, "skipped": 0, "failed": 0, "committed": 1, "deployed": 0},
                {"type": "ScheduledTask", "created": 2, "conflict": 1, "skipped": 1, "failed": 0, "committed": 2, "deployed": 2},
                {"type": "QualityRule", "created": 1, "conflict": 0, "skipped": 0, "failed": 0, "committed": 1, "deployed": 1}
            ],
            "report": {"configMaps": ["q4-report-0"], "records": 6},
            "phaseTimings": [
                {"phase": "Pending", "startedAt": "2026-11-25T10:00:00Z", "completedAt": "2026-11-25T10:00:00Z"},
                {"phase": "Verifying", "startedAt": "2026-11-25T10:00:00Z", "completedAt": "2026-11-25T10:00:02Z"},
                {"phase": "Editing", "startedAt": "2026-11-25T10:00:02Z", "completedAt": "2026-11-25T10:05:00Z"},
                {"phase": "Mapping", "startedAt": "2026-11-25T10:05:00Z", "completedAt": "2026-11-25T10:05:01Z"},
                {"phase": "Importing", "startedAt": "2026-11-25T10:05:01Z", "completedAt": "2026-11-25T10:06:16Z"},
                {"phase": "Committing", "startedAt": "2026-11-25T10:06:16Z", "completedAt": "2026-11-25T10:06:20Z"},
                {"phase": "Deploying", "startedAt": "2026-11-25T10:06:20Z", "completedAt": "2026-11-25T10:06:25Z"},
                {"phase": "ImportingRules", "startedAt": "2026-11-25T10:06:25Z", "completedAt": "2026-11-25T10:06:26Z"}
            ],
            "startedAt": "2026-11-25T10:00:00Z",
            "completedAt": "2026-11-25T10:06:26Z",
            "conditions": [
                condition("Ready", "True", "Completed", "imported"),
                condition("PartiallyImported", "True", "Conflicts", "1 object(s) not imported: ScheduledTask/load_refunds")
            ]
        }
    }))
    .unwrap()
}

fn failed_task() -> ImportTask {
    let mut spec = spec();
    spec["suspend"] = json!(false);
    spec["dryRun"] = json!(null);
    spec["changeOwner"] = json!({"mode": "NotModify"});
    serde_json::from_value(json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ImportTask",
        "metadata": {"name": "again", "namespace": "sales-prod", "generation": 1},
        "spec": spec,
        "status": {
            "observedGeneration": 1,
            "phase": "ImportFailed",
            "failedPhase": "Mapping",
            "message": "compute resource sales_emr_dev (EMR) has no entry in computeResourceMapping",
            "creator": "7654321",
            "startedAt": "2026-11-25T10:00:00Z",
            "completedAt": "2026-11-25T10:00:03Z",
            "conditions": [condition("Stalled", "True", "MappingFailed", "Mapping failed")]
        }
    }))
    .unwrap()
}

fn record(
    t: ObjectType,
    name: &str,
    action: Action,
    outcome: Outcome,
    done: (bool, bool),
    message: Option<&str>,
) -> Record {
    Record {
        object_type: t,
        name: name.into(),
        kube_name: name.replace('_', "-"),
        action,
        outcome,
        message: message.map(str::to_string),
        written: outcome != Outcome::Conflict && outcome != Outcome::Skipped,
        committed: done.0,
        deployed: done.1,
        dry_run: false,
        owner: None,
        attached: None,
        associated_tasks: vec![],
        failure: None,
        existing: None,
        previous_spec: None,
        replacements: Default::default(),
        warnings: vec![],
    }
}

fn records() -> Vec<Record> {
    let mut dry = record(
        ObjectType::ScheduledTask,
        "load_orders",
        Action::Create,
        Outcome::Created,
        (true, true),
        None,
    );
    dry.dry_run = true;
    let mut rule = record(
        ObjectType::QualityRule,
        "orders_not_null",
        Action::Create,
        Outcome::Created,
        (true, true),
        Some("associated with load_orders"),
    );
    rule.attached = Some(false);
    vec![
        record(
            ObjectType::Table,
            "orders",
            Action::Create,
            Outcome::Created,
            (true, false),
            Some("committed to development only"),
        ),
        dry,
        record(
            ObjectType::ScheduledTask,
            "汇总_daily",
            Action::Create,
            Outcome::Created,
            (true, true),
            None,
        ),
        record(
            ObjectType::ScheduledTask,
            "load_refunds",
            Action::Conflict,
            Outcome::Conflict,
            (false, false),
            Some(
                "a ScheduledTask named load_refunds exists in the destination: not overwritten, not committed",
            ),
        ),
        record(
            ObjectType::Function,
            "to_date_cn",
            Action::Create,
            Outcome::Created,
            (false, false),
            Some("spec.committingRules.functions is DoNotCommit"),
        ),
        rule,
    ]
}

fn basic() -> serde_json::Value {
    json!({"importName": "sales.q4_import", "package": "sales-q4",
           "packageDigest": "sha256:5f2b8c0e9a1d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b",
           "edition": "Professional", "autoCommitAndDeploy": true,
           "warnings": ["resourceGroupMapping entry dev_unused matches no object"]})
}

#[test]
fn golden_preview_ready() {
    check(
        "preview-ready.txt",
        &render::preview(&PackageView::of(&ready_package())),
    );
}

#[test]
fn golden_preview_refused() {
    check(
        "preview-refused.txt",
        &render::preview(&PackageView::of(&refused_package())),
    );
}

#[test]
fn golden_plan_editing() {
    check(
        "plan-editing.txt",
        &render::plan(&PlanView::of(&editing_task())),
    );
}

/// A task in Editing whose settings cannot be planned: the plan says what
/// to fix and does not suggest starting it.
#[test]
fn golden_plan_mapping_error() {
    let task: ImportTask = serde_json::from_value(json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ImportTask",
        "metadata": {"name": "q4", "namespace": "sales-prod", "generation": 1},
        "spec": spec(),
        "status": {
            "observedGeneration": 1,
            "phase": "Editing",
            "message": "compute resource \"销售_emr\" (EMR) used by 2 objects has no entry in spec.computeResourceMapping",
            // As the operator writes it: held by spec.suspend, the settings
            // cannot be planned, no plan.
            "conditions": [
                condition("Ready", "False", "InvalidSettings",
                    "the import cannot start as set: compute resource \"销售_emr\" (EMR) used by 2 objects has no entry in spec.computeResourceMapping"),
                condition("Reconciling", "False", "Suspended", "held by spec.suspend"),
                condition("Stalled", "False", "Suspended", "held by spec.suspend")
            ]
        }
    }))
    .unwrap();
    check(
        "plan-mapping-error.txt",
        &render::plan(&PlanView::of(&task)),
    );
}

/// `plan --details`: every object of a suspended task's plan, as its
/// report ConfigMaps hold it, with dry-run, owner and replacements.
#[test]
fn golden_plan_details() {
    let planned = |t, name: &str, action, outcome, message: Option<&str>| {
        let mut r = record(t, name, action, outcome, (false, false), message);
        r.written = false;
        r.owner = Some("1234567".into());
        r
    };
    let mut load = planned(
        ObjectType::ScheduledTask,
        "load_orders",
        Action::Create,
        Outcome::Pending,
        Some("1 replacement of the source project name (listed in replacements)"),
    );
    load.dry_run = true;
    load.replacements = vec![ferry_engine::rename::Replacement {
        field: "inputs[0]".into(),
        before: "sales_dev_root".into(),
        after: "sales_prod_root".into(),
        count: 1,
    }]
    .into();
    let mut report = planned(
        ObjectType::ScheduledTask,
        "汇总_daily",
        Action::Create,
        Outcome::Pending,
        Some(
            "input \"sales_prod.not_exported\" of scheduled task \"汇总_daily\" is the output of no task of the package and of nothing known in workspace \"sales-prod\": the task is imported, and waits on that upstream until it exists; 2 replacements of the source project name (listed in replacements)",
        ),
    );
    report.replacements = vec![
        ferry_engine::rename::Replacement {
            field: "script.content".into(),
            before: "sales_dev.orders".into(),
            after: "sales_prod.orders".into(),
            count: 1,
        },
        ferry_engine::rename::Replacement {
            field: "inputs[0]".into(),
            before: "sales_dev.not_exported".into(),
            after: "sales_prod.not_exported".into(),
            count: 1,
        },
    ]
    .into();
    let table = planned(
        ObjectType::Table,
        "orders",
        Action::Conflict,
        Outcome::Conflict,
        Some("a Table named orders exists in the destination: not overwritten, not committed"),
    );
    let rule = planned(
        ObjectType::QualityRule,
        "orders_not_null",
        Action::Update,
        Outcome::Pending,
        Some(
            "the package holds quality rules and scheduled tasks: the existing rule is updated in place",
        ),
    );
    let skipped = planned(
        ObjectType::ServiceApi,
        "orders_api",
        Action::Skip,
        Outcome::Skipped,
        Some("spec.dataServiceMapping has no entry for business process \"sales\""),
    );
    let mut view = PlanView::of(&editing_task());
    view.objects = Some(vec![table, load, report, rule, skipped]);
    check("plan-details.txt", &render::plan(&view));
    check(
        "plan-details.json",
        &format!("{}\n", serde_json::to_string_pretty(&view).unwrap()),
    );
    // Before the plan is written to the report.
    let mut view = PlanView::of(&editing_task());
    view.objects = Some(vec![]);
    assert!(render::plan(&view).contains("none listed yet"));
}

#[test]
fn golden_report_summary() {
    let task = completed_task();
    let view = render::report_view(&task, Some(&basic()), None, None);
    check("report.txt", &render::report(&view));
}

#[test]
fn golden_report_details() {
    let task = completed_task();
    let view = render::report_view(&task, Some(&basic()), None, Some(records()));
    check("report-details.txt", &render::report(&view));
    check(
        "report-details.json",
        &format!("{}\n", serde_json::to_string_pretty(&view).unwrap()),
    );
}

#[test]
fn golden_report_failed() {
    let task = failed_task();
    let view = render::report_view(&task, None, None, Some(vec![]));
    check("report-failed.txt", &render::report(&view));
}

#[test]
fn golden_wait_outcomes() {
    let mut out = String::new();
    for p in [(0, 0), (3, 10), (10, 10)] {
        let progress = ferry::api::Progress {
            done: p.0,
            total: p.1,
        };
        out.push_str(&render::progress_line(
            ferry::api::ImportPhase::Importing,
            Some(&progress),
        ));
        out.push_str("  |  ");
        out.push_str(&render::progress_bar(&progress, 20));
        out.push('\n');
    }
    out.push_str(&render::outcome(&completed_task()));
    out.push_str(&render::outcome(&failed_task()));
    check("wait-outcomes.txt", &out);
}
