//! The seed's mapping rules on the real apiserver: dependency mapping,
//! optional resource groups, and the owner of ownerless objects. Each test is
//! named after the seed sentence it checks.

use std::io::Cursor;
use std::time::Duration;

use ferry::api::*;
use ferry::conditions::{self, READY};
use ferry::testenv::User;
use ferry_package::fixtures::FixtureSpec;
use ferry_package::{ExportMode, ExportedObject, PackageWriter};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};

use crate::support::{client, operator, wait_for};

const WAIT: Duration = Duration::from_secs(90);

/// A destination of `tenant` (Professional) named `ws`, with the production
/// names of `fixtures::production_workspace`, changed by `edit`.
async fn destination(c: &Client, tenant: &str, ws: &str, edit: impl FnOnce(&mut WorkspaceSpec)) {
    use ferry::testenv::fixtures;
    fixtures::ensure_tenant(c, tenant, Edition::Professional).await;
    operator();
    let mut spec = fixtures::production_workspace(tenant, ws);
    edit(&mut spec);
    fixtures::ready_workspace(c, ws, spec).await;
}

fn write(fixture: &FixtureSpec, objects: &[ExportedObject]) -> Vec<u8> {
    let mut w = PackageWriter::new(
        Cursor::new(Vec::new()),
        fixture.source(),
        "2026-10-01T00:00:00Z",
        ExportMode::Custom,
    );
    for o in objects {
        w.add(o).unwrap();
    }
    w.finish().unwrap().0.into_inner()
}

fn compute_mapping() -> serde_json::Value {
    serde_json::json!([
        {"source": "sales_mc_dev", "destination": "sales_mc_prod"},
        {"source": "sales_holo_dev", "destination": "sales_holo"},
        {"source": "sales_emr_dev", "destination": "sales_emr"}
    ])
}

async fn import(
    c: &Client,
    ns: &str,
    name: &str,
    spec: serde_json::Value,
    created_by: bool,
) -> ImportTask {
    let mut body = serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ImportTask",
        "metadata": {"name": name},
        "spec": spec
    });
    if created_by {
        body["metadata"]["annotations"] = serde_json::json!({"ferry.dev/created-by": "7654321"});
    }
    let api: Api<ImportTask> = Api::namespaced(c.clone(), ns);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(body).unwrap(),
    )
    .await
    .unwrap();
    wait_for(&api, name, WAIT, |t| {
        t.status.as_ref().is_some_and(|s| {
            s.phase.is_terminal() && s.observed_generation == t.metadata.generation
        })
    })
    .await
}

async fn tasks_of(c: &Client, ns: &str) -> Vec<ScheduledTask> {
    Api::<ScheduledTask>::namespaced(c.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

/// "If any tasks to import reference the source workspace name in their
/// code, input parameters, or output names, set New Project Name to the
/// destination workspace name. The system replaces all occurrences of the
/// source workspace name in the imported tasks." Here with a Custom-export
/// style package whose tasks depend on upstream tasks left out of it (which
/// verification no longer refuses), and no resource-group mapping (the seed:
/// optional), on a destination that lacks the source's groups.
#[tokio::test]
async fn the_system_replaces_all_occurrences_of_the_source_workspace_name_in_the_imported_tasks() {
    let c = client(User::Admin).await;
    let ns = "map-dep";
    destination(&c, "t-map-dep", ns, |_| {}).await;
    let fixture = FixtureSpec::new().tasks(6).layers(2);
    // Tasks 1 and 2 (layer 0) stay behind in the source, as in a Custom
    // export; the layer-1 tasks read their outputs.
    let left_out = [fixture.task_name(1), fixture.task_name(2)];
    let objects: Vec<ExportedObject> = fixture
        .objects()
        .into_iter()
        .filter(|o| !left_out.contains(&o.name))
        .collect();
    let depends_on_left_out = objects.iter().any(|o| {
        let doc = o.document.to_string();
        left_out
            .iter()
            .any(|n| doc.contains(&format!("sales_dev.{n}")))
    });
    assert!(
        depends_on_left_out,
        "the package must depend on a task outside it"
    );
    ferry::testenv::fixtures::config_map_package(&c, ns, "partial", write(&fixture, &objects))
        .await;

    let t = import(
        &c,
        ns,
        "renamed",
        serde_json::json!({
            "importName": "sales.partial",
            "packageRef": {"name": "partial"},
            "computeResourceMapping": compute_mapping(),
            "dependencyMapping": [{"sourceProject": "sales_dev", "newProject": "sales_prod"}]
        }),
        true,
    )
    .await;
    let status = t.status.unwrap();
    assert_eq!(status.phase, ImportPhase::Completed, "{:?}", status.message);

    let written = tasks_of(&c, ns).await;
    assert_eq!(written.len(), 4);
    for task in &written {
        let spec = serde_json::to_string(&task.spec).unwrap();
        assert!(
            !spec.contains("sales_dev"),
            "{}: the source project is left in {spec}",
            task.spec.common.name
        );
        // The FlowSpec document agrees with the fields.
        let doc = serde_json::to_string(&task.spec.common.flow_spec).unwrap();
        assert!(doc.contains("sales_prod"), "{doc}");
        assert_eq!(
            task.spec.resource_group.as_deref(),
            Some("serverless_default")
        );
        assert!(
            !doc.contains("dev_serverless") && !doc.contains("dev_exclusive_01"),
            "{doc}"
        );
    }
    let root = written
        .iter()
        .find(|t| t.spec.common.name == fixture.task_name(0))
        .unwrap();
    assert!(
        root.spec.inputs.contains(&"sales_prod_root".to_string()),
        "the root node input is renamed too: {:?}",
        root.spec.inputs
    );
}

/// "If you are migrating objects between workspaces in the same region under
/// the same tenant, configuring computing resource mappings is sufficient."
/// The destination names its groups differently; unmapped groups go to its
/// `defaultResourceGroup`.
#[tokio::test]
async fn configuring_computing_resource_mappings_is_sufficient() {
    let c = client(User::Admin).await;
    let ns = "map-groups";
    destination(&c, "t-map-groups", ns, |ws| {
        ws.resource_groups.push(ResourceGroup {
            name: "prod_exclusive".into(),
            type_: ResourceGroupType::Scheduling,
        });
        ws.default_resource_group = Some("prod_exclusive".into());
    })
    .await;
    let fixture = FixtureSpec::new().tasks(4);
    ferry::testenv::fixtures::config_map_package(&c, ns, "p", fixture.to_bytes()).await;
    let t = import(
        &c,
        ns,
        "compute-only",
        serde_json::json!({
            "importName": "sales.compute_only",
            "packageRef": {"name": "p"},
            "computeResourceMapping": compute_mapping()
        }),
        true,
    )
    .await;
    let status = t.status.unwrap();
    assert_eq!(status.phase, ImportPhase::Completed, "{:?}", status.message);
    let written = tasks_of(&c, ns).await;
    assert_eq!(written.len(), 4);
    for task in written {
        assert_eq!(task.spec.resource_group.as_deref(), Some("prod_exclusive"));
        let doc = serde_json::to_string(&task.spec.common.flow_spec).unwrap();
        assert!(doc.contains("prod_exclusive"), "{doc}");
    }
}

/// "If you select Not Modify for Change Owner and the node has no owner, you
/// are automatically assigned as the owner after import." When who "you"
/// are is not known (no creator record, as on a cluster without the creator
/// admission policy), the import fails in Mapping saying so and how to go
/// on, and writes nothing.
#[tokio::test]
async fn not_modify_and_no_owner_without_a_known_creator_fails_saying_how_to_fix_it() {
    let c = client(User::Admin).await;
    let ns = "map-owner";
    destination(&c, "t-map-owner", ns, |_| {}).await;
    let fixture = FixtureSpec::new().tasks(2);
    let mut objects = fixture.objects();
    let mut ownerless = serde_json::json!({
        "name": "ownerless_orders", "studio": "Legacy", "computeResource": "sales_mc_dev",
        "ddl": "CREATE TABLE ownerless_orders (id BIGINT);"
    });
    ownerless.as_object_mut().unwrap().remove("owner");
    objects.push(ExportedObject::from_spec(
        ferry_package::ObjectType::Table,
        ownerless.as_object().unwrap(),
        true,
        Some("MaxCompute"),
    ));
    ferry::testenv::fixtures::config_map_package(&c, ns, "p", write(&fixture, &objects)).await;
    let t = import(
        &c,
        ns,
        "no-creator",
        serde_json::json!({
            "importName": "sales.no_creator",
            "packageRef": {"name": "p"},
            "computeResourceMapping": compute_mapping()
        }),
        false,
    )
    .await;
    let status = t.status.unwrap();
    assert_eq!(status.phase, ImportPhase::ImportFailed);
    let ready = conditions::find(&status.conditions, READY).unwrap();
    let msg = status.message.clone().unwrap_or(ready.message.clone());
    assert!(msg.contains("Table/ownerless_orders"), "{msg}");
    assert!(msg.contains("mode: Specify"), "{msg}");
    assert!(tasks_of(&c, ns).await.is_empty(), "nothing is written");
}

/// Issue 13: "Inner nodes of do-while, for-each and combined nodes: their
/// compute resources and resource groups appear in the package summary and
/// are mapped like any other." A do-while task on `sales_mc_dev` whose inner
/// node runs on `loop_holo_dev` in group `loop_dev_group`: the package's
/// summary lists both; an import without an entry for the inner resource
/// fails naming it; with one, the task's FlowSpec names the destination's
/// resource and group in the inner node.
#[tokio::test]
async fn inner_nodes_compute_resources_appear_in_the_summary_and_are_mapped_like_any_other() {
    use ferry_package::{DocFormat, ObjectType};
    let c = client(User::Admin).await;
    let ns = "map-inner";
    destination(&c, "t-map-inner", ns, |_| {}).await;
    let document = serde_json::json!({
        "version": "1.1.0", "kind": "CycleWorkflow", "metadata": {"owner": "1001"},
        "spec": {"nodes": [{
            "id": "10", "name": "loop_partitions",
            "datasource": {"name": "sales_mc_dev", "type": "odps"},
            "script": {"runtime": {"command": "CONTROLLER_CYCLE"}},
            "runtimeResource": {"resourceGroup": "serverless_default"},
            "trigger": {"type": "Scheduler", "cron": "00 00 02 * * ?"},
            "outputs": {"nodeOutputs": [{"data": "sales_dev.loop_partitions"}]},
            "do-while": {
                "nodes": [{
                    "id": "11", "name": "sql_in_loop",
                    "datasource": {"name": "loop_holo_dev", "type": "holo"},
                    "script": {"language": "hologres-sql", "content": "SELECT 1;",
                               "runtime": {"command": "HOLOGRES_SQL"}},
                    "runtimeResource": {"resourceGroup": "loop_dev_group"}
                }],
                "while": {"id": "12", "name": "cycle_end",
                          "script": {"runtime": {"command": "CONTROLLER_CYCLE_END"}}},
                "flow": [{"nodeId": "12", "depends": [{"type": "Normal", "nodeId": "11"}]}]
            }
        }]}
    });
    let fixture = FixtureSpec::new();
    let package = write(
        &fixture,
        &[ExportedObject {
            object_type: ObjectType::ScheduledTask,
            name: "loop_partitions".into(),
            document,
            format: DocFormat::Yaml,
            files: Vec::new(),
        }],
    );
    ferry::testenv::fixtures::config_map_package(&c, ns, "loop", package).await;
    let packages: Api<MigrationPackage> = Api::namespaced(c.clone(), ns);
    let pkg = wait_for(&packages, "loop", WAIT, |p| {
        p.status
            .as_ref()
            .and_then(|s| conditions::find(&s.conditions, READY))
            .is_some_and(|r| r.status == "True")
    })
    .await;
    let summary = pkg.status.unwrap().summary.unwrap();
    let listed: Vec<(String, String)> = summary
        .compute_resources
        .iter()
        .map(|r| (r.name.clone(), r.type_.clone()))
        .collect();
    assert_eq!(
        listed,
        [
            ("loop_holo_dev".to_string(), "Hologres".to_string()),
            ("sales_mc_dev".to_string(), "MaxCompute".to_string()),
        ]
    );
    assert_eq!(
        summary.resource_groups,
        ["loop_dev_group", "serverless_default"]
    );

    // Only the task's own resource mapped: refused, naming the inner one.
    let t = import(
        &c,
        ns,
        "outer-only",
        serde_json::json!({
            "importName": "sales.outer_only",
            "packageRef": {"name": "loop"},
            "computeResourceMapping": [{"source": "sales_mc_dev", "destination": "sales_mc_prod"}]
        }),
        true,
    )
    .await;
    let status = t.status.unwrap();
    assert_eq!(status.phase, ImportPhase::ImportFailed);
    let msg = status.message.clone().unwrap_or_default();
    assert!(
        msg.contains(r#"compute resource "loop_holo_dev" (Hologres) used by 1 object has no entry in spec.computeResourceMapping"#),
        "{msg}"
    );
    assert!(tasks_of(&c, ns).await.is_empty(), "nothing is written");

    // Mapped: the inner node names the destination's resource and group.
    let t = import(
        &c,
        ns,
        "inner-mapped",
        serde_json::json!({
            "importName": "sales.inner_mapped",
            "packageRef": {"name": "loop"},
            "computeResourceMapping": [
                {"source": "sales_mc_dev", "destination": "sales_mc_prod"},
                {"source": "loop_holo_dev", "destination": "sales_holo"}
            ],
            "resourceGroupMapping": [{"source": "loop_dev_group", "destination": "serverless_default"}]
        }),
        true,
    )
    .await;
    let status = t.status.unwrap();
    assert_eq!(status.phase, ImportPhase::Completed, "{:?}", status.message);
    let written = tasks_of(&c, ns).await;
    assert_eq!(written.len(), 1);
    let task = &written[0].spec;
    assert_eq!(task.common.name, "loop_partitions");
    assert_eq!(task.compute_resource.as_deref(), Some("sales_mc_prod"));
    let doc = serde_json::to_value(&task.common.flow_spec).unwrap();
    let node = &doc["spec"]["nodes"][0];
    assert_eq!(node["datasource"]["name"], "sales_mc_prod");
    let inner = &node["do-while"]["nodes"][0];
    assert_eq!(inner["datasource"]["name"], "sales_holo", "{doc}");
    assert_eq!(
        inner["runtimeResource"]["resourceGroup"],
        "serverless_default"
    );
    assert!(!doc.to_string().contains("loop_holo_dev"), "{doc}");
    assert!(!doc.to_string().contains("loop_dev_group"), "{doc}");
}

/// The seed audit: "after mapping, a dependency that resolves to nothing in
/// the package or in the destination is listed in the plan and the report
/// as a warning for that task, and the import goes on." The destination's
/// own task declares an output under a name of its own (not
/// `<project>.<task>`): an imported task depending on it is not warned
/// about; its dependency on nothing is.
#[tokio::test]
async fn a_dependency_that_resolves_to_nothing_in_the_package_or_the_destination_is_a_warning() {
    let c = client(User::Admin).await;
    let ns = "map-unresolved";
    destination(&c, "t-map-unresolved", ns, |_| {}).await;
    let hand_made: ScheduledTask = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ScheduledTask", "metadata": {"name": "by-hand"},
        "spec": {"name": "make_orders", "owner": "1234567", "computeResource": "sales_mc_prod",
                  "script": {"language": "odps-sql", "content": "SELECT 1;"}, "trigger": {"cron": "00 00 02 * * ?"},
                  "inputs": ["sales_prod_root"], "outputs": ["sales_prod.orders_daily_v2"]}
    }))
    .unwrap();
    Api::<ScheduledTask>::namespaced(c.clone(), ns)
        .create(&PostParams::default(), &hand_made)
        .await
        .unwrap();
    let spec = serde_json::json!({
        "name": "report", "owner": "1234567", "computeResource": "sales_mc_dev",
        "script": {"language": "odps-sql", "content": "SELECT * FROM sales_dev.orders;"},
        "trigger": {"cron": "00 00 03 * * ?"},
        "inputs": ["sales_dev.orders_daily_v2", "sales_dev.nothing_makes_this"],
        "outputs": ["sales_dev.report"]
    });
    let object = ExportedObject::from_spec(
        ferry_package::ObjectType::ScheduledTask,
        spec.as_object().unwrap(),
        true,
        Some("MaxCompute"),
    );
    let fixture = FixtureSpec::new();
    ferry::testenv::fixtures::config_map_package(&c, ns, "dangling", write(&fixture, &[object]))
        .await;
    let t = import(
        &c,
        ns,
        "dangling",
        serde_json::json!({
            "importName": "sales.dangling",
            "packageRef": {"name": "dangling"},
            "computeResourceMapping": compute_mapping(),
            "dependencyMapping": [{"sourceProject": "sales_dev", "newProject": "sales_prod"}]
        }),
        true,
    )
    .await;
    let status = t.status.clone().unwrap();
    assert_eq!(status.phase, ImportPhase::Completed, "{:?}", status.message);
    let plan = status.plan.unwrap();
    let dangling: Vec<&String> = plan
        .warnings
        .iter()
        .filter(|w| w.contains("resolve"))
        .collect();
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("1 task input resolves to nothing")),
        "{:?}",
        plan.warnings
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.starts_with("ScheduledTask/report: ")
                && w.contains(r#"input "sales_prod.nothing_makes_this""#)),
        "{:?}",
        plan.warnings
    );
    assert!(
        !dangling.iter().any(|w| w.contains("orders_daily_v2")),
        "the destination's task declares that output: {dangling:?}"
    );
    // The report says the same, on the task's record.
    let names = status.report.unwrap().config_maps;
    let cm = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(c.clone(), ns)
        .get(&names[0])
        .await
        .unwrap();
    let records = ferry::controller::import::report::read_shard(
        &cm.binary_data.unwrap()[ferry::controller::import::report::RECORDS_KEY].0,
    )
    .unwrap();
    let report = records.iter().find(|r| r.name == "report").unwrap();
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(report.warnings[0].contains("sales_prod.nothing_makes_this"));
    let written = tasks_of(&c, ns).await;
    let imported = written
        .iter()
        .find(|t| t.spec.common.name == "report")
        .expect("the import goes on");
    assert_eq!(
        imported.spec.inputs,
        vec![
            "sales_prod.orders_daily_v2",
            "sales_prod.nothing_makes_this"
        ]
    );
}

/// The seed audit: "A dependencyMapping.newProject that is not the
/// destination workspace's project is flagged in the plan." Seen in Editing,
/// before anything is written; a mapping to the destination's own project
/// is not flagged.
#[tokio::test]
async fn a_new_project_that_is_not_the_destination_workspaces_project_is_flagged_in_the_plan() {
    let c = client(User::Admin).await;
    let ns = "map-newproj";
    destination(&c, "t-map-newproj", ns, |_| {}).await;
    let fixture = FixtureSpec::new().tasks(2);
    ferry::testenv::fixtures::config_map_package(&c, ns, "p", fixture.to_bytes()).await;
    let api: Api<ImportTask> = Api::namespaced(c.clone(), ns);
    for (name, project) in [("elsewhere", "sales_test"), ("here", "map_newproj")] {
        let body = serde_json::json!({
            "apiVersion": "ferry.dev/v1alpha1", "kind": "ImportTask",
            "metadata": {"name": name, "annotations": {"ferry.dev/created-by": "7654321"}},
            "spec": {
                "importName": "sales.newproj",
                "packageRef": {"name": "p"},
                "suspend": true,
                "computeResourceMapping": compute_mapping(),
                "dependencyMapping": [{"sourceProject": "sales_dev", "newProject": project}]
            }
        });
        api.create(
            &PostParams::default(),
            &serde_json::from_value(body).unwrap(),
        )
        .await
        .unwrap();
    }
    let flagged = |name: &'static str| {
        let api = api.clone();
        async move {
            let t = wait_for(&api, name, WAIT, |t| {
                t.status
                    .as_ref()
                    .is_some_and(|s| s.phase == ImportPhase::Editing && s.plan.is_some())
            })
            .await;
            t.status.unwrap().plan.unwrap().warnings
        }
    };
    let warnings = flagged("elsewhere").await;
    assert!(
        warnings.iter().any(|w| w.contains(
            r#"maps "sales_dev" to "sales_test", which is not the project of workspace "map-newproj" ("map_newproj")"#
        )),
        "{warnings:?}"
    );
    let warnings = flagged("here").await;
    assert!(
        !warnings.iter().any(|w| w.contains("not the project")),
        "{warnings:?}"
    );
}
