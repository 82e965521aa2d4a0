//! Tests of the plan: every rule of the seed, one by one.

use ferry_api::Edition;
use ferry_package::ObjectType::{self, *};
use serde_json::json;

use crate::testutil::{Obj, Setup, obj};
use crate::{Action, Phase, Rule, naming, records, work};

fn spec_str(p: &crate::PlannedObject, key: &str) -> Option<String> {
    p.spec.get(key).and_then(|v| v.as_str().map(String::from))
}

fn names(plan: &crate::Plan) -> Vec<String> {
    plan.objects
        .iter()
        .map(|o| format!("{}/{}", o.object_type, o.name))
        .collect()
}

// ---- compute-resource mapping -------------------------------------------

#[test]
fn unmapped_compute_resource_is_an_error_naming_it_and_its_use() {
    let e = Setup::new(vec![Obj::task("a"), Obj::task("b")])
        .task(json!({"computeResourceMapping": [{"source": "sales_holo_dev", "destination": "sales_holo_prod"}]}))
        .err();
    assert!(e.has(Rule::ComputeResourceUnmapped));
    assert!(
        e.to_string().contains(
            r#"compute resource "sales_mc_dev" (MaxCompute) used by 2 objects has no entry in spec.computeResourceMapping"#
        ),
        "{e}"
    );
}

#[test]
fn mapping_matches_display_names_not_projects() {
    let e = Setup::new(vec![Obj::task("a")])
        .task(json!({"computeResourceMapping": [{"source": "sales_mc_dev", "destination": "sales_prod_mc"}]}))
        .err();
    assert!(e.has(Rule::ComputeResourceNotFound));
    let msg = e.to_string();
    assert!(
        msg.contains(r#"maps "sales_mc_dev" to "sales_prod_mc""#),
        "{msg}"
    );
    assert!(
        msg.contains(r#"is the project of "sales_mc_prod""#),
        "{msg}"
    );
}

/// The seed audit: "`computeResourceMapping` is required only when the
/// package uses compute resources (a package with none needs no invented
/// entry and gets no warning)."
#[test]
fn a_package_that_uses_no_compute_resource_needs_no_compute_mapping_and_gets_no_warning() {
    let p = Setup::new(vec![
        obj(FileResource, "dim.csv"),
        obj(Function, "to_date_cn"),
    ])
    .task(json!({"computeResourceMapping": []}))
    .ok();
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert!(
        p.objects
            .iter()
            .all(|o| o.action == Action::Create && o.warnings.is_empty()),
        "{:?}",
        p.objects
    );
    // With a scheduled task on a compute resource, the empty list fails.
    let e = Setup::new(vec![obj(FileResource, "dim.csv"), Obj::task("load")])
        .task(json!({"computeResourceMapping": []}))
        .err();
    assert!(
        e.to_string().contains(
            "spec.computeResourceMapping is empty, but the package uses compute resources"
        ),
        "{e}"
    );
}

#[test]
fn mapped_compute_resource_is_written_into_the_spec() {
    let p = Setup::new(vec![Obj::task("a")]).ok();
    assert_eq!(
        spec_str(&p.objects[0], "computeResource").as_deref(),
        Some("sales_mc_prod")
    );
    assert_eq!(p.compute_mapping["sales_mc_dev"], "sales_mc_prod");
}

#[test]
fn type_mismatch_names_both_types() {
    let e = Setup::new(vec![Obj::task("a")])
        .task(json!({"computeResourceMapping": [{"source": "sales_mc_dev", "destination": "sales_holo_prod"}]}))
        .err();
    assert!(e.has(Rule::ComputeResourceTypeMismatch));
    assert!(
        e.to_string()
            .contains(r#""sales_mc_dev" (MaxCompute) to "sales_holo_prod" (Hologres)"#),
        "{e}"
    );
}

#[test]
fn several_types_into_a_single_type_workspace_fails_as_the_seed_says() {
    let e = Setup::new(vec![
        Obj::task("a"),
        obj(Table, "t").compute("sales_holo_dev"),
    ])
    .ws(json!({"computeResources": [{"name": "sales_mc_prod", "type": "MaxCompute"}]}))
    .task(json!({"computeResourceMapping": [
        {"source": "sales_mc_dev", "destination": "sales_mc_prod"},
        {"source": "sales_holo_dev", "destination": "sales_mc_prod"}
    ]}))
    .err();
    assert!(e.has(Rule::ComputeResourceTypesMissing));
    let msg = e.to_string();
    assert!(
        msg.contains("has only MaxCompute: it lacks Hologres"),
        "{msg}"
    );
}

#[test]
fn flowspec_engine_names_are_normalised_before_comparing() {
    let p = Setup::new(vec![obj(Table, "t").compute_typed("sales_mc_dev", "odps")]).ok();
    assert_eq!(p.objects[0].action, Action::Create);
}

#[test]
fn unused_mapping_entries_are_warnings() {
    let p = Setup::new(vec![Obj::task("a")]).ok();
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("\"sales_holo_dev\", which no object of the package uses")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn duplicate_mapping_sources_are_errors() {
    let e = Setup::new(vec![Obj::task("a")])
        .task(json!({"computeResourceMapping": [
            {"source": "sales_mc_dev", "destination": "sales_mc_prod"},
            {"source": "sales_mc_dev", "destination": "sales_holo_prod"}
        ]}))
        .err();
    assert!(e.has(Rule::DuplicateMapping));
}

#[test]
fn every_problem_is_reported_at_once() {
    let e = Setup::new(vec![
        Obj::task("a").group("dev_exclusive"),
        obj(Function, "f").compute("sales_emr_dev"),
        obj(Table, "new_one").new_studio(),
    ])
    .ws(json!({"resourceGroups": []}))
    .task(json!({"dryRun": {"tasks": ["nope"]}, "changeOwner": {"mode": "Specify"}}))
    .err();
    for rule in [
        Rule::ComputeResourceUnmapped,
        Rule::ComputeResourceTypesMissing,
        Rule::ResourceGroupUnmapped,
        Rule::DryRunTaskNotFound,
        Rule::NewStudioObject,
        Rule::OwnerMissing,
    ] {
        assert!(e.has(rule), "{rule:?} missing from {e}");
    }
    assert!(e.to_string().starts_with("6 problems:"), "{e}");
}

// ---- package checks ---------------------------------------------------------

#[test]
fn new_studio_objects_are_refused_by_name() {
    let e = Setup::new(vec![Obj::task("a"), Obj::task("studio2_task").new_studio()]).err();
    assert!(e.has(Rule::NewStudioObject));
    assert!(e.to_string().contains("ScheduledTask/studio2_task"), "{e}");
    assert!(!e.to_string().contains("ScheduledTask/a,"), "{e}");
}

#[test]
fn duplicate_real_names_are_refused() {
    let e = Setup::new(vec![Obj::task("a"), Obj::task("a")]).err();
    assert!(e.has(Rule::DuplicateObject));
}

#[test]
fn nameless_objects_are_skipped_with_a_reason() {
    let p = Setup::new(vec![obj(Table, ""), obj(Table, "t")]).ok();
    let skipped = &p.objects[0];
    assert_eq!(skipped.action, Action::Skip);
    assert!(skipped.message.as_deref().unwrap().contains("no name"));
    assert!(!skipped.delivery.commit);
    assert_eq!(p.summary(5).skip, 1);
}

// ---- resource groups ---------------------------------------------------------

#[test]
fn explicit_group_mapping_wins() {
    let p = Setup::new(vec![Obj::task("a").group("dev_serverless")])
        .task(json!({"resourceGroupMapping": [{"source": "dev_serverless", "destination": "serverless_default"}]}))
        .ok();
    assert_eq!(
        spec_str(&p.objects[0], "resourceGroup").as_deref(),
        Some("serverless_default")
    );
}

#[test]
fn unmapped_group_keeps_its_name_when_the_destination_has_it() {
    let p = Setup::new(vec![Obj::task("a")]).ok();
    assert_eq!(
        spec_str(&p.objects[0], "resourceGroup").as_deref(),
        Some("serverless_default")
    );
}

#[test]
fn resource_group_mapping_is_optional_an_unmapped_group_gets_the_default_group_with_a_warning() {
    // The seed: "Resource Group Mapping (optional)".
    let p = Setup::new(vec![
        Obj::task("a").group("dev_exclusive_01"),
        Obj::task("b").group("serverless_default"),
    ])
    .ws(json!({"resourceGroups": [
        {"name": "serverless_default", "type": "Serverless"},
        {"name": "prod_exclusive", "type": "Scheduling"}
    ], "defaultResourceGroup": "prod_exclusive"}))
    .ok();
    let a = p.get(ScheduledTask, "a").unwrap();
    assert_eq!(
        spec_str(a, "resourceGroup").as_deref(),
        Some("prod_exclusive")
    );
    assert!(
        a.warnings[0].contains(r#"resource group "dev_exclusive_01""#),
        "{:?}",
        a.warnings
    );
    assert!(a.warnings[0].contains(r#"default group "prod_exclusive""#));
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains(r#""dev_exclusive_01" used by 1 object"#)
                && w.contains("spec.defaultResourceGroup")),
        "{:?}",
        p.warnings
    );
    let b = p.get(ScheduledTask, "b").unwrap();
    assert_eq!(
        spec_str(b, "resourceGroup").as_deref(),
        Some("serverless_default")
    );
    assert!(b.warnings.is_empty());
}

#[test]
fn without_a_default_group_the_first_listed_group_is_used() {
    let p = Setup::new(vec![Obj::task("a").group("dev_exclusive_01")]).ok();
    assert_eq!(
        spec_str(&p.objects[0], "resourceGroup").as_deref(),
        Some("serverless_default")
    );
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("its first resource group"))
    );
}

#[test]
fn between_workspaces_of_one_tenant_the_compute_mapping_alone_is_enough() {
    // The seed: "configuring computing resource mappings is sufficient",
    // even when the destination names its groups differently.
    let p = Setup::new(vec![
        Obj::task("a").group("dev_serverless"),
        Obj::task("b").inputs(&["sales_dev.a"]),
    ])
    .ws(json!({"resourceGroups": [{"name": "prod_serverless", "type": "Serverless"}]}))
    .ok();
    assert_eq!(p.counts().create, 2);
}

#[test]
fn a_workspace_without_any_group_fails_naming_the_group() {
    let e = Setup::new(vec![Obj::task("a").group("dev_exclusive_01")])
        .ws(json!({"resourceGroups": []}))
        .err();
    assert!(e.has(Rule::ResourceGroupUnmapped));
    assert!(
        e.to_string()
            .contains(r#"resource group "dev_exclusive_01" used by 1 object"#)
    );
    assert!(e.to_string().contains("no resource group at all"));
}

#[test]
fn group_mapped_to_a_missing_group_is_an_error() {
    let e = Setup::new(vec![Obj::task("a").group("g")])
        .task(json!({"resourceGroupMapping": [{"source": "g", "destination": "nope"}]}))
        .err();
    assert!(e.has(Rule::ResourceGroupNotFound));
}

// ---- dependency mapping --------------------------------------------------------

#[test]
fn dependency_mapping_replaces_all_occurrences_of_the_source_project_name() {
    // The seed: "The system replaces all occurrences of the source
    // workspace name in the imported tasks" (code, input parameters, output
    // names): the root node and longer names included.
    let p = Setup::new(vec![
        Obj::task("load")
            .inputs(&["sales_dev_root", "sales_dev.up", "sales_dev_backup.x"])
            .set(
                "parameters",
                json!(["project=sales_dev", "bak=sales_dev_backup"]),
            )
            .set(
                "crossCycleDependencies",
                json!([{"type": "CrossCycleDependsOnSelf", "output": "sales_dev.load"}, {"type": "CrossCycleDependsOnChildren"}]),
            )
            .script("INSERT INTO sales_dev.load SELECT * FROM xsales_dev.t JOIN sales_dev.u JOIN SALES_DEV.v;"),
        Obj::task("up"),
        obj(Table, "sales_dev")
            .compute("sales_mc_dev")
            .set("guid", "odps.sales_dev.orders")
            .set("ddl", "CREATE TABLE sales_dev.orders (a STRING);"),
        obj(QualityRule, "r")
            .set("table", "orders")
            .set("scheduledTaskOutput", "sales_dev.load"),
        obj(ServiceApi, "api")
            .compute("sales_holo_dev")
            .script("SELECT * FROM sales_dev.orders"),
    ])
    .task(
        json!({"dependencyMapping": [{"sourceProject": "sales_dev", "newProject": "sales_prod"}]}),
    )
    .ok();
    let task = p.get(ScheduledTask, "load").unwrap();
    assert_eq!(
        task.spec.value()["inputs"],
        json!(["sales_prod_root", "sales_prod.up", "sales_prod_backup.x"])
    );
    assert_eq!(task.spec.value()["outputs"], json!(["sales_prod.load"]));
    assert_eq!(
        task.spec.value()["crossCycleDependencies"],
        json!([{"type": "CrossCycleDependsOnSelf", "output": "sales_prod.load"}, {"type": "CrossCycleDependsOnChildren"}])
    );
    assert_eq!(
        task.spec.value()["parameters"],
        json!(["project=sales_prod", "bak=sales_prod_backup"])
    );
    assert_eq!(
        task.spec.value()["script"]["content"],
        "INSERT INTO sales_prod.load SELECT * FROM xsales_prod.t JOIN sales_prod.u JOIN SALES_DEV.v;",
        "every occurrence, case-sensitively"
    );
    let table = p.get(Table, "sales_dev").unwrap();
    assert_eq!(
        spec_str(table, "name").as_deref(),
        Some("sales_dev"),
        "names are not renamed"
    );
    assert_eq!(
        spec_str(table, "guid").as_deref(),
        Some("odps.sales_prod.orders")
    );
    assert_eq!(
        spec_str(table, "ddl").as_deref(),
        Some("CREATE TABLE sales_prod.orders (a STRING);")
    );
    let rule = p.get(QualityRule, "r").unwrap();
    assert_eq!(
        spec_str(rule, "scheduledTaskOutput").as_deref(),
        Some("sales_prod.load")
    );
    assert_eq!(rule.rule.as_ref().unwrap().associated_tasks, ["load"]);
    let api = p.get(ServiceApi, "api").unwrap();
    assert_eq!(
        api.spec.value()["script"]["content"],
        "SELECT * FROM sales_prod.orders"
    );
    assert_eq!(p.renames["sales_dev"], "sales_prod");

    // Every replacement is recorded: object, field, before -> after, count.
    let replacements = p.replacements();
    assert_eq!(replacements.len(), p.replacement_count());
    let rec = |t, n: &str, field: &str| {
        replacements
            .iter()
            .find(|r| r.object_type == t && r.name == n && r.replacement.field == field)
            .unwrap_or_else(|| panic!("no record for {t}/{n} {field}: {replacements:#?}"))
    };
    let root = rec(ScheduledTask, "load", "inputs[0]");
    assert_eq!(
        (
            root.replacement.before.as_str(),
            root.replacement.after.as_str(),
            root.replacement.count
        ),
        ("sales_dev_root", "sales_prod_root", 1)
    );
    let bak = rec(ScheduledTask, "load", "parameters[1]");
    assert_eq!(bak.replacement.after, "sales_prod_backup");
    let code: Vec<_> = replacements
        .iter()
        .filter(|r| r.name == "load" && r.replacement.field == "script.content")
        .map(|r| (r.replacement.before.as_str(), r.replacement.count))
        .collect();
    assert_eq!(
        code,
        [
            ("sales_dev.load", 1),
            ("sales_dev.u", 1),
            ("xsales_dev.t", 1)
        ]
    );
    assert_eq!(
        rec(Table, "sales_dev", "guid").replacement.after,
        "odps.sales_prod.orders"
    );
    // The per-object list is the same data.
    assert_eq!(
        task.replacements.len(),
        replacements.iter().filter(|r| r.name == "load").count()
    );
}

#[test]
fn the_flowspec_document_gets_the_same_mappings_as_the_interpreted_fields() {
    let doc = json!({
        "version": "1.1.0",
        "kind": "CycleWorkflow",
        "spec": {
            "datasources": [{"id": "ds", "name": "sales_mc_dev", "type": "odps"}],
            "runtimeResources": [{"id": "rg", "resourceGroup": "dev_serverless"}],
            "scripts": [{"id": "s", "language": "odps-sql",
                         "content": "INSERT INTO sales_dev.load SELECT 1 FROM sales_dev_backup.t;"}],
            "nodes": [{
                "id": "n1", "name": "load", "recurrence": "Normal",
                "script": "{{scripts.s}}", "datasource": "{{datasources.ds}}",
                "runtimeResource": "{{runtimeResources.rg}}",
                "outputs": {"nodeOutputs": [{"data": "sales_dev.load"}]}
            }],
            "flow": [{"nodeId": "{{n1}}", "depends": [{"output": "sales_dev_root"}]}]
        }
    });
    let mut o = Obj::task("load")
        .group("dev_serverless")
        .inputs(&["sales_dev_root"]);
    o.0.flow_spec = doc.into();
    let p = Setup::new(vec![o])
        .ws(json!({"resourceGroups": [{"name": "prod_serverless", "type": "Serverless"}]}))
        .task(json!({
            "dependencyMapping": [{"sourceProject": "sales_dev", "newProject": "sales_prod"}],
            "dryRun": {"tasks": ["load"]}
        }))
        .ok();
    let t = p.get(ScheduledTask, "load").unwrap();
    let s = t.spec.value();
    let f = &s["flowSpec"]["spec"];
    assert_eq!(s["computeResource"], "sales_mc_prod");
    assert_eq!(f["datasources"][0]["name"], "sales_mc_prod");
    assert_eq!(s["resourceGroup"], "prod_serverless");
    assert_eq!(f["runtimeResources"][0]["resourceGroup"], "prod_serverless");
    assert_eq!(s["recurrence"], "Skip");
    assert_eq!(f["nodes"][0]["recurrence"], "Skip");
    assert_eq!(s["outputs"], json!(["sales_prod.load"]));
    assert_eq!(
        f["nodes"][0]["outputs"]["nodeOutputs"][0]["data"],
        "sales_prod.load"
    );
    assert_eq!(
        f["scripts"][0]["content"],
        "INSERT INTO sales_prod.load SELECT 1 FROM sales_prod_backup.t;"
    );
    assert_eq!(f["flow"][0]["depends"][0]["output"], "sales_prod_root");
    assert_eq!(f["flow"][0]["nodeId"], "{{n1}}", "references are kept");
    assert_eq!(f["nodes"][0]["name"], "load", "names are kept");
    assert!(
        t.replacements
            .iter()
            .any(|r| r.field == "flowSpec.spec.scripts[0].content"
                && r.before == "sales_dev_backup.t")
    );
}

#[test]
fn a_dependency_outside_the_package_is_mapped_and_a_warning_when_it_resolves_to_nothing() {
    let p = Setup::new(vec![Obj::task("report").inputs(&[
        "sales_dev_root",
        "sales_dev.load",
        "sales_dev.not_exported",
        "sales_dev.orders",
    ])])
    .existing(ScheduledTask, "load")
    .existing(Table, "orders")
    .task(
        json!({"dependencyMapping": [{"sourceProject": "sales_dev", "newProject": "sales_prod"}]}),
    )
    .ok();
    let t = p.get(ScheduledTask, "report").unwrap();
    assert_eq!(t.action, Action::Create, "imported all the same");
    // The root node and the destination's own task and table resolve.
    assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
    assert!(t.warnings[0].contains(r#"input "sales_prod.not_exported""#));
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("1 task input resolves to nothing"))
    );
    // Without a mapping the source's names resolve to nothing either.
    let p = Setup::new(vec![Obj::task("report").inputs(&["sales_dev_root"])]).ok();
    assert_eq!(p.objects[0].warnings.len(), 1);
}

/// The seed audit: "after mapping, a dependency that resolves to nothing in
/// the package or in the destination is listed in the plan and the report
/// as a warning for that task, and the import goes on." The destination's
/// tasks count by the outputs they declare, whatever those are called.
#[test]
fn a_dependency_on_an_output_a_destination_task_declares_is_not_warned_about() {
    let p = Setup::new(vec![
        Obj::task("report").inputs(&["sales_dev.orders_daily_v2", "sales_dev.nothing_makes_this"]),
    ])
    .existing_task_with_outputs("load_orders", &["sales_prod.orders_daily_v2"])
    .task(
        json!({"dependencyMapping": [{"sourceProject": "sales_dev", "newProject": "sales_prod"}]}),
    )
    .ok();
    let t = p.get(ScheduledTask, "report").unwrap();
    assert_eq!(t.action, Action::Create, "imported all the same");
    assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
    assert!(
        t.warnings[0].contains(r#"input "sales_prod.nothing_makes_this""#),
        "{:?}",
        t.warnings
    );
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("1 task input resolves to nothing")),
        "{:?}",
        p.warnings
    );
    // Without the destination's task, both are warned about.
    let p = Setup::new(vec![
        Obj::task("report").inputs(&["sales_dev.orders_daily_v2"]),
    ])
    .task(
        json!({"dependencyMapping": [{"sourceProject": "sales_dev", "newProject": "sales_prod"}]}),
    )
    .ok();
    assert_eq!(
        p.objects[0].warnings.len(),
        1,
        "{:?}",
        p.objects[0].warnings
    );
}

#[test]
fn a_new_project_that_is_not_the_destinations_is_flagged() {
    let p = Setup::new(vec![Obj::task("load")])
        .task(json!({"dependencyMapping": [{"sourceProject": "sales_dev", "newProject": "sales_test"}]}))
        .ok();
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains(r#"maps "sales_dev" to "sales_test", which is not the project of workspace "sales-prod" ("sales_prod")"#)),
        "{:?}",
        p.warnings
    );
    let p = Setup::new(vec![Obj::task("load")])
        .task(json!({"dependencyMapping": [{"sourceProject": "sales_dev", "newProject": "sales_prod"}]}))
        .ok();
    assert!(!p.warnings.iter().any(|w| w.contains("not the project")));
}

#[test]
fn no_rename_unless_asked_and_no_warning_inside_one_tenant_and_region() {
    let p = Setup::new(vec![Obj::task("load")]).ok();
    assert_eq!(
        p.objects[0].spec.value()["outputs"],
        json!(["sales_dev.load"])
    );
    assert!(p.renames.is_empty());
    assert!(
        !p.warnings.iter().any(|w| w.contains("dependencyMapping")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn across_tenants_a_missing_rename_is_a_warning_not_a_guess() {
    let mut s = Setup::new(vec![Obj::task("load")]);
    s.tenant = "other".into();
    let p = s.ok();
    assert_eq!(
        p.objects[0].spec.value()["outputs"],
        json!(["sales_dev.load"])
    );
    assert!(p.warnings.iter().any(|w| w.contains("dependencyMapping")));
}

// ---- dry-run ---------------------------------------------------------------------

#[test]
fn dry_run_by_name_sets_recurrence_skip() {
    let p = Setup::new(vec![Obj::task("a"), Obj::task("b")])
        .task(json!({"dryRun": {"tasks": ["a"]}}))
        .ok();
    let a = p.get(ScheduledTask, "a").unwrap();
    assert!(a.dry_run);
    assert_eq!(spec_str(a, "recurrence").as_deref(), Some("Skip"));
    let b = p.get(ScheduledTask, "b").unwrap();
    assert!(!b.dry_run && b.spec.get("recurrence").is_none());
}

#[test]
fn dry_run_must_name_a_scheduled_task_of_the_package() {
    let e = Setup::new(vec![
        Obj::task("a"),
        obj(Table, "t").compute("sales_mc_dev"),
    ])
    .task(json!({"dryRun": {"tasks": ["t", "missing"]}}))
    .err();
    assert_eq!(e.problems.len(), 2, "{e}");
    assert!(
        e.to_string()
            .contains(r#"names "t", which is not a scheduled task"#)
    );
}

#[test]
fn dry_run_by_selector_matches_flowspec_labels() {
    let p = Setup::new(vec![
        Obj::task("a").labels(json!({"layer": "ods"})),
        Obj::task("b").labels(json!({"layer": "dws"})),
        Obj::task("c"),
    ])
    .task(json!({"dryRun": {"selector": {"matchLabels": {"layer": "ods"}}}}))
    .ok();
    let dry: Vec<&str> = p
        .objects
        .iter()
        .filter(|o| o.dry_run)
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(dry, ["a"]);
}

#[test]
fn empty_selector_sets_nothing_to_dry_run() {
    let p = Setup::new(vec![Obj::task("a").labels(json!({"x": "y"}))])
        .task(json!({"dryRun": {"selector": {}}}))
        .ok();
    assert!(!p.objects[0].dry_run);
}

// ---- DataService, owners ---------------------------------------------------------

#[test]
fn data_service_mapping_moves_business_processes() {
    let p = Setup::new(vec![
        obj(ServiceApi, "a").set("businessProcess", "sales_api"),
        obj(ServiceApi, "b").set("businessProcess", "ops_api"),
    ])
    .task(json!({"dataServiceMapping": [{"source": "sales_api", "destination": "sales_api_prod"}]}))
    .ok();
    assert_eq!(
        spec_str(p.get(ServiceApi, "a").unwrap(), "businessProcess").as_deref(),
        Some("sales_api_prod")
    );
    assert_eq!(
        spec_str(p.get(ServiceApi, "b").unwrap(), "businessProcess").as_deref(),
        Some("ops_api")
    );
}

#[test]
fn not_modify_keeps_owners_and_gives_ownerless_objects_the_creator() {
    let p = Setup::new(vec![
        Obj::task("owned"),
        obj(Table, "ownerless"),
        obj(Table, "blank").owner(""),
    ])
    .ok();
    assert_eq!(
        spec_str(p.get(ScheduledTask, "owned").unwrap(), "owner").as_deref(),
        Some("1001")
    );
    assert_eq!(
        spec_str(p.get(Table, "ownerless").unwrap(), "owner").as_deref(),
        Some("creator-42")
    );
    assert_eq!(
        spec_str(p.get(Table, "blank").unwrap(), "owner").as_deref(),
        Some("creator-42")
    );
}

#[test]
fn not_modify_with_an_unknown_creator_refuses_naming_the_ownerless_objects_and_the_fix() {
    let mut s = Setup::new(vec![Obj::task("owned"), obj(Table, "ownerless")]);
    s.creator = String::new();
    let e = s.err();
    assert!(e.has(Rule::CreatorUnknown));
    let msg = e.to_string();
    assert!(msg.contains("Table/ownerless"), "{msg}");
    assert!(!msg.contains("owned"), "{msg}");
    assert!(msg.contains("mode: Specify"), "{msg}");
    assert!(msg.contains("Kubernetes 1.36"), "{msg}");
    // Every object owned, or Specify: no creator needed.
    let mut s = Setup::new(vec![Obj::task("owned")]);
    s.creator = String::new();
    s.ok();
    let mut s = Setup::new(vec![obj(Table, "ownerless")])
        .task(json!({"changeOwner": {"mode": "Specify", "owner": "777"}}));
    s.creator = String::new();
    s.ok();
}

#[test]
fn specify_sets_every_owner() {
    let p = Setup::new(vec![Obj::task("owned"), obj(Table, "ownerless")])
        .task(json!({"changeOwner": {"mode": "Specify", "owner": "777"}}))
        .ok();
    assert!(
        p.objects
            .iter()
            .all(|o| spec_str(o, "owner").as_deref() == Some("777"))
    );
}

// ---- conflicts, updates -------------------------------------------------------------

/// The seed audit: "In Editing, the plan shows every object (type, real
/// name, action, dry-run, owner after import, replacements) — in status for
/// the first N". Status lists the first 20; conflicts show no owner (they
/// are not imported).
#[test]
fn status_lists_the_first_objects_with_action_dry_run_owner_and_replacements() {
    let mut objects = vec![Obj::task("a").inputs(&["sales_dev_root"]), Obj::task("b")];
    objects.extend((0..30).map(|i| Obj::task(&format!("t{i}"))));
    let p = Setup::new(objects)
        .existing(ScheduledTask, "b")
        .task(json!({
            "dryRun": {"tasks": ["a"]},
            "changeOwner": {"mode": "Specify", "owner": "owner-7"},
            "dependencyMapping": [{"sourceProject": "sales_dev", "newProject": "sales_prod"}]
        }))
        .ok();
    let s = p.summary(10);
    assert_eq!(s.first_objects.len(), crate::plan::FIRST_OBJECTS);
    let line = |name: &str| s.first_objects.iter().find(|o| o.name == name).unwrap();
    let a = line("a");
    assert_eq!(
        (
            a.type_.as_str(),
            a.action.as_str(),
            a.dry_run,
            a.owner.as_deref()
        ),
        ("ScheduledTask", "Create", true, Some("owner-7"))
    );
    assert!(a.replacements >= 1, "{a:?}");
    let b = line("b");
    assert_eq!((b.action.as_str(), b.owner.as_deref()), ("Conflict", None));
}

#[test]
fn same_named_objects_conflict_and_are_never_committed() {
    let p = Setup::new(vec![Obj::task("a"), Obj::task("b")])
        .existing(ScheduledTask, "b")
        .existing(Table, "a")
        .ok();
    let a = p.get(ScheduledTask, "a").unwrap();
    assert_eq!(a.action, Action::Create, "conflicts are judged per type");
    let b = p.get(ScheduledTask, "b").unwrap();
    assert_eq!(b.action, Action::Conflict);
    assert!(!b.delivery.commit && !b.delivery.deploy);
    assert!(b.message.as_deref().unwrap().contains("not overwritten"));
    let s = p.summary(10);
    assert_eq!((s.create, s.conflict, s.skip), (1, 1, 0));
    assert_eq!(s.first_conflicts, ["ScheduledTask/b"]);
    assert!(
        work(&p, Phase::Importing)
            .write
            .iter()
            .all(|o| o.name != "b")
    );
}

#[test]
fn conflicts_are_case_sensitive_real_names() {
    let p = Setup::new(vec![Obj::task("Load")])
        .existing(ScheduledTask, "load")
        .ok();
    assert_eq!(p.objects[0].action, Action::Create);
}

#[test]
fn existing_rules_are_updated_when_the_package_holds_rules_and_tasks() {
    let p = Setup::new(vec![
        Obj::task("a"),
        obj(QualityRule, "r").set("table", "t"),
    ])
    .existing(QualityRule, "r")
    .ok();
    let r = p.get(QualityRule, "r").unwrap();
    assert_eq!(r.action, Action::Update);
    assert!(r.delivery.commit);
    assert_eq!(p.summary(5).create, 2);
    assert_eq!(work(&p, Phase::ImportingRules).write.len(), 1);
}

#[test]
fn existing_rules_conflict_when_the_package_holds_no_tasks() {
    let p = Setup::new(vec![obj(QualityRule, "r").set("table", "t")])
        .existing(QualityRule, "r")
        .ok();
    assert_eq!(p.objects[0].action, Action::Conflict);
}

// ---- committing rules and editions -----------------------------------------------------

#[test]
fn committing_rules_per_type() {
    let objects = || {
        vec![
            obj(FileResource, "lib.jar").compute("sales_mc_dev"),
            obj(Function, "f").compute("sales_mc_dev"),
            obj(Table, "t").compute("sales_mc_dev"),
            Obj::task("a"),
        ]
    };
    let p = Setup::new(objects())
        .task(json!({"committingRules": {"fileResources": "DoNotCommit", "functions": "Commit", "tables": {"development": true, "production": false}}}))
        .ok();
    let d = |t: ObjectType, n: &str| p.get(t, n).unwrap().delivery.clone();
    assert!(!d(FileResource, "lib.jar").commit);
    assert!(
        d(FileResource, "lib.jar")
            .note
            .unwrap()
            .contains("fileResources is DoNotCommit")
    );
    assert!(d(Function, "f").commit && d(Function, "f").deploy);
    assert!(d(Table, "t").commit && !d(Table, "t").deploy);
    assert!(d(ScheduledTask, "a").commit && d(ScheduledTask, "a").deploy);
    let commit: Vec<_> = work(&p, Phase::Committing)
        .commit
        .iter()
        .map(|o| o.name.clone())
        .collect();
    assert_eq!(commit, ["f", "t", "a"]);
    let deploy: Vec<_> = work(&p, Phase::Deploying)
        .deploy
        .iter()
        .map(|o| o.name.clone())
        .collect();
    assert_eq!(deploy, ["f", "a"]);

    let p = Setup::new(objects())
        .task(json!({"committingRules": {"tables": {"development": false, "production": false}}}))
        .ok();
    assert!(!p.get(Table, "t").unwrap().delivery.commit);
    let p = Setup::new(objects())
        .task(json!({"committingRules": {"tables": {"development": false, "production": true}}}))
        .ok();
    let t = p.get(Table, "t").unwrap();
    assert!(t.delivery.commit && t.delivery.deploy);
}

#[test]
fn basic_and_standard_editions_commit_and_deploy_nothing_and_say_so() {
    for edition in [Edition::Basic, Edition::Standard] {
        let p = Setup::new(vec![Obj::task("a"), obj(Table, "t")])
            .edition(edition)
            .ok();
        assert!(!p.auto_commit_and_deploy);
        assert!(work(&p, Phase::Committing).is_empty());
        assert!(work(&p, Phase::Deploying).is_empty());
        assert_eq!(work(&p, Phase::Importing).write.len(), 2);
        for r in records(&p) {
            assert!(!r.committed && !r.deployed);
            assert!(
                r.message
                    .as_deref()
                    .unwrap()
                    .contains("does not commit or deploy automatically"),
                "{r:?}"
            );
        }
    }
    for edition in [Edition::Professional, Edition::Enterprise] {
        let p = Setup::new(vec![Obj::task("a")]).edition(edition).ok();
        assert_eq!(work(&p, Phase::Committing).commit.len(), 1);
    }
}

// ---- quality rules ---------------------------------------------------------------------

#[test]
fn rules_import_last_after_tasks_and_attach_to_known_tables() {
    let mut s = Setup::new(vec![
        obj(QualityRule, "r_pkg")
            .set("table", "t")
            .set("scheduledTaskOutput", "sales_dev.a"),
        obj(QualityRule, "r_dest").set("table", "dest_only"),
        obj(QualityRule, "r_engine").set("table", "engine_only"),
        obj(QualityRule, "r_missing").set("table", "nowhere"),
        obj(Table, "t"),
        Obj::task("a"),
        Obj::task("b").outputs(&["sales_dev.a", "sales_dev.b"]),
    ])
    .existing(Table, "dest_only");
    s.existing_tables.insert("engine_only".into());
    let p = s.ok();
    assert_eq!(p.objects.last().unwrap().object_type, QualityRule);
    let link = |n: &str| p.get(QualityRule, n).unwrap().rule.clone().unwrap();
    assert!(link("r_pkg").attached);
    assert_eq!(link("r_pkg").associated_tasks, ["a", "b"]);
    assert!(link("r_dest").attached && link("r_engine").attached);
    let missing = link("r_missing");
    assert!(!missing.attached);
    assert!(missing.notes[0].contains(r#"table "nowhere" is neither in the package"#));
    let rec = records(&p)
        .into_iter()
        .find(|r| r.name == "r_missing")
        .unwrap();
    assert_eq!(rec.attached, Some(false));
    assert!(
        rec.message
            .unwrap()
            .contains("attaches when the table appears")
    );
    // Rules wait for tasks: none in Importing, all in ImportingRules.
    assert!(
        work(&p, Phase::Importing)
            .write
            .iter()
            .all(|o| o.object_type != QualityRule)
    );
    assert_eq!(work(&p, Phase::ImportingRules).write.len(), 4);
    assert_eq!(work(&p, Phase::ImportingRules).deploy.len(), 4);
}

#[test]
fn alert_configurations_attached_to_monitoring_rules_are_not_imported() {
    // The real rule shape (dqc.yaml of the FlowSpec examples) with alert
    // settings a third-party package might carry beside it.
    let bytes = include_bytes!("../../ferry-package/tests/flowspec/dqc.yaml");
    let mut doc = ferry_package::flowspec::parse_document("dqc.yaml", bytes).unwrap();
    let clean = doc.clone();
    doc["spec"]["dqcRules"][0]["alertConfig"] = json!({"receivers": ["ops"], "channels": ["Mail"]});
    doc["spec"]["dqcRules"][0]["notifications"] = json!([{"type": "DingTalk"}]);
    let mut o = obj(QualityRule, "rule1")
        .set("table", "test_table")
        .set(
            "ruleConfig",
            clean["spec"]["dqcRules"][0]["ruleConfig"].clone(),
        )
        .set("alertReceivers", "ops");
    o.0.flow_spec = doc.into();
    let p = Setup::new(vec![o]).ok();
    let spec = p.objects[0].spec.value();
    assert!(!spec.contains_key("alertReceivers"));
    assert_eq!(
        spec["ruleConfig"],
        clean["spec"]["dqcRules"][0]["ruleConfig"]
    );
    assert_eq!(
        spec["flowSpec"], clean,
        "the document loses exactly its alert settings"
    );
}

#[test]
fn rules_without_tasks_import_without_association() {
    let p = Setup::new(vec![
        obj(Table, "t"),
        obj(QualityRule, "r")
            .set("table", "t")
            .set("scheduledTaskOutput", "sales_dev.a"),
    ])
    .ok();
    let link = p.objects[1].rule.clone().unwrap();
    assert!(link.attached && link.associated_tasks.is_empty());
    assert!(link.notes[0].contains("without task association"));
    assert!(!p.has_tasks && p.has_rules);
}

// ---- ordering --------------------------------------------------------------------------

#[test]
fn steps_follow_type_order_and_task_dependencies() {
    let p = Setup::new(vec![
        obj(QualityRule, "r").set("table", "t"),
        obj(ServiceApi, "api"),
        Obj::task("a_report").inputs(&["sales_dev.z_load"]),
        Obj::task("z_load").inputs(&["sales_dev_root"]),
        obj(Table, "t"),
        obj(Function, "f"),
        obj(FileResource, "lib.jar"),
    ])
    .ok();
    assert_eq!(
        names(&p),
        [
            "FileResource/lib.jar",
            "Function/f",
            "Table/t",
            "ScheduledTask/z_load",
            "ScheduledTask/a_report",
            "ServiceApi/api",
            "QualityRule/r"
        ]
    );
}

#[test]
fn task_cycles_are_refused() {
    let e = Setup::new(vec![
        Obj::task("a").inputs(&["sales_dev.b"]),
        Obj::task("b").inputs(&["sales_dev.a"]),
    ])
    .err();
    assert!(e.has(Rule::DependencyCycle));
}

// ---- names, labels, digests --------------------------------------------------------------

#[test]
fn objects_carry_kube_names_labels_and_digests() {
    let s = Setup::new(vec![Obj::task("Load_Orders"), Obj::task("加载订单")]);
    let p = s.ok();
    for o in &p.objects {
        assert!(naming::is_dns1123_label(&o.kube_name), "{}", o.kube_name);
        let labels = o.labels();
        assert_eq!(
            labels[naming::LABEL_IMPORT_TASK_UID],
            "0b9f7c1e-7d3a-4a8e-9d55-1b2c3d4e5f60"
        );
        let d = &labels[naming::LABEL_CONTENT_DIGEST];
        assert!(naming::is_label_value(d));
        assert!(o.content_digest.starts_with(d.as_str()));
        assert_eq!(o.annotations()[naming::ANNOTATION_REAL_NAME], o.name);
        assert!(labels.values().all(|v| naming::is_label_value(v)));
    }
    // Deterministic: planning again gives the same plan.
    assert_eq!(s.ok(), p);
    // The digest follows the content.
    let renamed = Setup::new(vec![Obj::task("Load_Orders"), Obj::task("加载订单")])
        .task(json!({"dependencyMapping": [{"sourceProject": "sales_dev", "newProject": "x"}]}))
        .ok();
    assert_ne!(
        renamed.objects[0].content_digest,
        p.objects[0].content_digest
    );
}

#[test]
fn planned_specs_deserialize_into_the_crd_types() {
    let p = Setup::new(vec![
        obj(FileResource, "lib.jar")
            .compute("sales_mc_dev")
            .set("type", "jar"),
        obj(Function, "f")
            .compute("sales_mc_dev")
            .set("resources", json!(["lib.jar"])),
        obj(Table, "t"),
        obj(ScheduledTask, "bare"),
        obj(ServiceApi, "api"),
        obj(QualityRule, "no_table"),
    ])
    .ok();
    crate::fixture_tests::assert_typed(&p);
}

// ---- inner nodes of container tasks ---------------------------------------

/// A do-while task on `sales_mc_dev` whose inner node runs on
/// `sales_holo_dev` in group `inner_dev_group`, read as the package reader
/// reads it.
fn do_while_task() -> Obj {
    let doc = json!({
        "version": "1.1.0",
        "kind": "CycleWorkflow",
        "spec": {"nodes": [{
            "id": "1", "name": "loop",
            "datasource": {"name": "sales_mc_dev", "type": "odps"},
            "script": {"runtime": {"command": "CONTROLLER_CYCLE"}},
            "runtimeResource": {"resourceGroup": "serverless_default"},
            "outputs": {"nodeOutputs": [{"data": "sales_dev.loop"}]},
            "do-while": {
                "nodes": [{
                    "id": "2", "name": "inner_sql",
                    "datasource": {"name": "sales_holo_dev", "type": "holo"},
                    "script": {"runtime": {"command": "HOLOGRES_SQL"}},
                    "runtimeResource": {"resourceGroup": "inner_dev_group"}
                }],
                "while": {"id": "3", "name": "end", "script": {"runtime": {"command": "CONTROLLER_CYCLE_END"}}}
            }
        }]}
    });
    let x = ferry_package::flowspec::extract_objects(&doc).remove(0);
    let mut o = Obj::task("loop");
    o.0.inner_compute = x.inner_compute;
    o.0.inner_resource_groups = x.inner_resource_groups;
    o.0.flow_spec = doc.into();
    o
}

#[test]
fn an_inner_nodes_compute_resource_needs_a_mapping_like_any_other() {
    let e = Setup::new(vec![do_while_task()])
        .task(json!({"computeResourceMapping": [{"source": "sales_mc_dev", "destination": "sales_mc_prod"}]}))
        .err();
    assert!(e.has(Rule::ComputeResourceUnmapped));
    assert!(
        e.to_string().contains(
            r#"compute resource "sales_holo_dev" (Hologres) used by 1 object has no entry in spec.computeResourceMapping"#
        ),
        "{e}"
    );
    // And its type is checked like a task's own.
    let e = Setup::new(vec![do_while_task()])
        .task(json!({"computeResourceMapping": [
            {"source": "sales_mc_dev", "destination": "sales_mc_prod"},
            {"source": "sales_holo_dev", "destination": "sales_mc_prod"}
        ]}))
        .err();
    assert!(e.has(Rule::ComputeResourceTypeMismatch), "{e}");
}

#[test]
fn an_inner_nodes_resources_are_mapped_in_the_flowspec_document() {
    let p = Setup::new(vec![do_while_task()])
        .task(json!({"resourceGroupMapping": [{"source": "inner_dev_group", "destination": "serverless_default"}]}))
        .ok();
    assert_eq!(p.compute_mapping["sales_holo_dev"], "sales_holo_prod");
    assert_eq!(
        p.resource_group_mapping["inner_dev_group"],
        "serverless_default"
    );
    let s = p.get(ScheduledTask, "loop").unwrap().spec.value();
    assert_eq!(s["computeResource"], "sales_mc_prod");
    let inner = &s["flowSpec"]["spec"]["nodes"][0]["do-while"]["nodes"][0];
    assert_eq!(inner["datasource"]["name"], "sales_holo_prod");
    assert_eq!(
        inner["runtimeResource"]["resourceGroup"],
        "serverless_default"
    );
}
