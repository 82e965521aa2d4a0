//! ImportTask end to end on the real apiserver: phases, mappings, conflicts,
//! suspend, editions, Import Again.

use std::time::Duration;

use ferry::api::*;
use ferry::conditions::{self, READY, STALLED};
use ferry::testenv::User;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};

use crate::support::{client, operator, wait_for};

pub(crate) const WAIT: Duration = Duration::from_secs(90);

/// A destination workspace whose compute resources and groups have
/// production names, so every mapping has work to do.
pub(crate) async fn destination(c: &Client, tenant: &str, edition: Edition, ws: &str) {
    use ferry::testenv::fixtures;
    fixtures::ensure_tenant(c, tenant, edition).await;
    operator();
    fixtures::ready_workspace(c, ws, fixtures::production_workspace(tenant, ws)).await;
}

/// A MigrationPackage from a ConfigMap holding the zip (a local upload).
pub(crate) async fn package_from(c: &Client, ns: &str, name: &str, bytes: Vec<u8>) {
    ferry::testenv::fixtures::config_map_package(c, ns, name, bytes).await;
}

pub(crate) fn task(name: &str, package: &str, suspend: bool) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ImportTask",
        "metadata": {"name": name, "annotations": {"ferry.dev/created-by": "7654321"}},
        "spec": {
            "importName": "sales.q4_import",
            "packageRef": {"name": package},
            "suspend": suspend,
            "computeResourceMapping": [
                {"source": "sales_mc_dev", "destination": "sales_mc_prod"},
                {"source": "sales_holo_dev", "destination": "sales_holo"},
                {"source": "sales_emr_dev", "destination": "sales_emr"}
            ],
            "resourceGroupMapping": [
                {"source": "dev_serverless", "destination": "serverless_default"},
                {"source": "dev_exclusive_01", "destination": "serverless_default"}
            ],
            "dependencyMapping": [{"sourceProject": "sales_dev", "newProject": "sales_prod"}]
        }
    })
}

pub(crate) fn finished(t: &ImportTask) -> bool {
    t.status
        .as_ref()
        .is_some_and(|s| s.phase.is_terminal() && s.observed_generation == t.metadata.generation)
}

pub(crate) async fn create_task(c: &Client, ns: &str, body: serde_json::Value) -> Api<ImportTask> {
    let api: Api<ImportTask> = Api::namespaced(c.clone(), ns);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(body).unwrap(),
    )
    .await
    .unwrap();
    api
}

#[tokio::test]
async fn a_full_import_maps_everything_commits_deploys_and_reports() {
    let c = client(User::Admin).await;
    destination(&c, "t-imp-pro", Edition::Professional, "imp-full").await;
    let fixture = ferry_package::fixtures::FixtureSpec::new()
        .tasks(30)
        .tables(6)
        .quality_rules(3)
        .service_apis(2);
    package_from(&c, "imp-full", "q4", fixture.to_bytes()).await;
    let api = create_task(&c, "imp-full", task("q4-import", "q4", false)).await;
    let t = wait_for(&api, "q4-import", WAIT, finished).await;
    let status = t.status.clone().unwrap();
    assert_eq!(status.phase, ImportPhase::Completed, "{:?}", status.message);
    assert!(conditions::is_true(&status.conditions, READY));
    assert!(!conditions::is_true(
        &status.conditions,
        "PartiallyImported"
    ));
    let phases: Vec<ImportPhase> = status.phase_timings.iter().map(|p| p.phase).collect();
    assert_eq!(
        phases,
        [
            ImportPhase::Pending,
            ImportPhase::Verifying,
            ImportPhase::Mapping,
            ImportPhase::Importing,
            ImportPhase::Committing,
            ImportPhase::Deploying,
            ImportPhase::ImportingRules
        ]
    );

    // Every scheduled task arrived, mapped, renamed, committed and deployed.
    let tasks: Vec<ScheduledTask> = Api::<ScheduledTask>::namespaced(c.clone(), "imp-full")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(tasks.len(), 30);
    for t in &tasks {
        let cr = t.spec.compute_resource.as_deref().unwrap_or_default();
        assert!(
            ["sales_mc_prod", "sales_holo", "sales_emr"].contains(&cr),
            "compute resource mapped: {cr}"
        );
        assert_eq!(t.spec.resource_group.as_deref(), Some("serverless_default"));
        assert!(
            t.spec.outputs.iter().all(|o| !o.starts_with("sales_dev.")),
            "outputs renamed: {:?}",
            t.spec.outputs
        );
        assert!(
            !t.spec.script.content.contains("sales_dev."),
            "code renamed"
        );
        let st = t.status.clone().unwrap();
        assert_eq!(st.state, Some(ObjectState::Deployed));
        assert_eq!(st.origin.unwrap().import_task, "q4-import");
    }
    let rules = Api::<QualityRule>::namespaced(c.clone(), "imp-full")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(rules.len(), 3);

    // Results in status, full report in ConfigMaps.
    let st_tasks = status
        .results
        .iter()
        .find(|r| r.type_ == "ScheduledTask")
        .unwrap();
    assert_eq!(
        (st_tasks.created, st_tasks.committed, st_tasks.deployed),
        (30, 30, 30)
    );
    let report = status.report.unwrap();
    let cm = Api::<ConfigMap>::namespaced(c, "imp-full")
        .get(&report.config_maps[0])
        .await
        .unwrap();
    let shard = &cm.binary_data.unwrap()["records.jsonl.gz"].0;
    let records = ferry::controller::import::report::read_shard(shard).unwrap();
    assert_eq!(records.len() as u64, report.records);
    assert!(cm.data.as_ref().unwrap().contains_key("settings.json"));
    // Deleting the task deletes its report (owner reference, collected by
    // the cluster's garbage collector) and never the imported objects (none).
    let owner = &cm.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("ImportTask", "q4-import", Some(true))
    );
    assert_eq!(Some(owner.uid.clone()), t.metadata.uid);
    assert!(
        tasks.iter().all(|o| o.metadata.owner_references.is_none()),
        "imported objects are not owned by the task"
    );
}

#[tokio::test]
async fn a_same_named_object_is_a_conflict_and_the_import_is_partial() {
    let c = client(User::Admin).await;
    destination(&c, "t-imp-conf", Edition::Professional, "imp-conflict").await;
    let fixture = ferry_package::fixtures::FixtureSpec::new()
        .tasks(5)
        .quality_rules(0);
    let taken = fixture.task_name(0);
    let existing: ScheduledTask = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ScheduledTask", "metadata": {"name": "already-here"},
        "spec": {"name": taken, "owner": "1", "script": {"content": "SELECT 'mine';"}}
    }))
    .unwrap();
    let objects: Api<ScheduledTask> = Api::namespaced(c.clone(), "imp-conflict");
    objects
        .create(&PostParams::default(), &existing)
        .await
        .unwrap();
    package_from(&c, "imp-conflict", "p", fixture.to_bytes()).await;
    let api = create_task(&c, "imp-conflict", task("conf", "p", false)).await;
    let t = wait_for(&api, "conf", WAIT, finished).await;
    let status = t.status.unwrap();
    assert_eq!(status.phase, ImportPhase::Completed);
    assert!(conditions::is_true(&status.conditions, READY));
    let partial = conditions::find(&status.conditions, "PartiallyImported").unwrap();
    assert_eq!(partial.status, "True");
    assert!(partial.message.contains(&taken), "{}", partial.message);
    // Not overwritten.
    let mine = objects.get("already-here").await.unwrap();
    assert_eq!(mine.spec.script.content, "SELECT 'mine';");
    let r = status
        .results
        .iter()
        .find(|r| r.type_ == "ScheduledTask")
        .unwrap();
    assert_eq!((r.created, r.conflict), (4, 1));
}

#[tokio::test]
async fn suspend_shows_the_plan_in_editing_and_unsuspending_imports() {
    let c = client(User::Admin).await;
    destination(&c, "t-imp-susp", Edition::Standard, "imp-suspend").await;
    package_from(
        &c,
        "imp-suspend",
        "p",
        ferry_package::fixtures::FixtureSpec::new()
            .tasks(4)
            .to_bytes(),
    )
    .await;
    let api = create_task(&c, "imp-suspend", task("held", "p", true)).await;
    let t = wait_for(&api, "held", WAIT, |t| {
        t.status
            .as_ref()
            .is_some_and(|s| s.phase == ImportPhase::Editing && s.plan.is_some())
    })
    .await;
    let status = t.status.unwrap();
    assert!(status.plan.unwrap().create > 0);
    let ready = conditions::find(&status.conditions, READY).unwrap();
    assert_eq!(ready.reason, "Suspended");
    assert!(
        Api::<ScheduledTask>::namespaced(c.clone(), "imp-suspend")
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "Editing writes nothing"
    );

    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"suspend": false}})),
    )
    .await
    .unwrap();
    let t = wait_for(&api, "held", WAIT, finished).await;
    let status = t.status.unwrap();
    assert_eq!(status.phase, ImportPhase::Completed, "{:?}", status.message);
    // Standard edition: imported, not committed or deployed.
    let tasks = Api::<ScheduledTask>::namespaced(c, "imp-suspend")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(tasks.len(), 4);
    assert!(
        tasks
            .iter()
            .all(|t| t.status.as_ref().and_then(|s| s.state) == Some(ObjectState::Saved))
    );
    let r = status
        .results
        .iter()
        .find(|r| r.type_ == "ScheduledTask")
        .unwrap();
    assert_eq!((r.created, r.committed, r.deployed), (4, 0, 0));
}

#[tokio::test]
async fn a_missing_mapping_fails_in_mapping_and_import_again_finishes_after_the_fix() {
    let c = client(User::Admin).await;
    destination(&c, "t-imp-again", Edition::Professional, "imp-again").await;
    package_from(
        &c,
        "imp-again",
        "p",
        ferry_package::fixtures::FixtureSpec::new()
            .tasks(6)
            .to_bytes(),
    )
    .await;
    let mut body = task("again", "p", false);
    body["spec"]["computeResourceMapping"] =
        serde_json::json!([{"source": "sales_mc_dev", "destination": "sales_mc_prod"}]);
    let api = create_task(&c, "imp-again", body).await;
    let t = wait_for(&api, "again", WAIT, finished).await;
    let status = t.status.unwrap();
    assert_eq!(
        (status.phase, status.failed_phase),
        (ImportPhase::ImportFailed, Some(ImportPhase::Mapping))
    );
    assert!(conditions::is_true(&status.conditions, STALLED));
    let message = status.message.unwrap();
    assert!(
        message.contains("sales_holo_dev") && message.contains("computeResourceMapping"),
        "{message}"
    );
    assert!(
        Api::<ScheduledTask>::namespaced(c.clone(), "imp-again")
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "nothing written"
    );

    // Fix the mapping, then ask for Import Again.
    let fix = serde_json::json!({
        "metadata": {"annotations": {"ferry.dev/requested-at": "2026-11-25T10:00:00Z"}},
        "spec": {"computeResourceMapping": task("x", "p", false)["spec"]["computeResourceMapping"].clone()}
    });
    api.patch("again", &PatchParams::default(), &Patch::Merge(fix))
        .await
        .unwrap();
    let t = wait_for(&api, "again", WAIT, |t| {
        finished(t)
            && t.status
                .as_ref()
                .is_some_and(|s| s.phase == ImportPhase::Completed)
    })
    .await;
    assert!(conditions::is_true(&t.status.unwrap().conditions, READY));
    assert_eq!(
        Api::<ScheduledTask>::namespaced(c, "imp-again")
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        6
    );
}

/// A package of one quality rule whose table exists nowhere yet.
fn lonely_rule_package() -> Vec<u8> {
    use ferry_package::{ExportMode, ExportedObject, ObjectType, PackageWriter, SourceInfo};
    let source = SourceInfo {
        tenant: Some("acme".into()),
        workspace: Some("sales-dev".into()),
        project_name: Some("sales_dev".into()),
        region: Some("cn-shanghai".into()),
    };
    let mut w = PackageWriter::new(
        std::io::Cursor::new(Vec::new()),
        source,
        "2026-11-01T00:00:00Z",
        ExportMode::Custom,
    );
    let spec = serde_json::json!({
        "name": "later_not_null", "owner": "1", "table": "later_table",
        "ruleConfig": "{not json, carried as is", "computeResource": "sales_mc_dev"
    });
    w.add(&ExportedObject::from_spec(
        ObjectType::QualityRule,
        spec.as_object().unwrap(),
        false,
        Some("MaxCompute"),
    ))
    .unwrap();
    w.finish().unwrap().0.into_inner()
}

#[tokio::test]
async fn a_rule_whose_table_is_missing_waits_inactive_and_becomes_deployed_when_the_table_appears()
{
    let c = client(User::Admin).await;
    destination(&c, "t-imp-rule", Edition::Professional, "imp-rule").await;
    package_from(&c, "imp-rule", "p", lonely_rule_package()).await;
    let mut body = task("rule", "p", false);
    body["spec"]["computeResourceMapping"] =
        serde_json::json!([{"source": "sales_mc_dev", "destination": "sales_mc_prod"}]);
    body["spec"]["resourceGroupMapping"] = serde_json::json!([]);
    let api = create_task(&c, "imp-rule", body).await;
    let t = wait_for(&api, "rule", WAIT, finished).await;
    let status = t.status.unwrap();
    assert_eq!(status.phase, ImportPhase::Completed, "{:?}", status.message);
    let rules: Api<QualityRule> = Api::namespaced(c.clone(), "imp-rule");
    let rule = rules
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .remove(0);
    let status = rule.status.clone().unwrap();
    assert!(!status.attached, "no table yet");
    assert_eq!(
        status.lifecycle.state,
        Some(ObjectState::WaitingForTable),
        "a rule without its table is not active"
    );
    assert_eq!(status.lifecycle.deployed_revision, None);
    assert!(
        status.associated_tasks.is_empty(),
        "no tasks in the package"
    );
    assert_eq!(
        rule.spec.rule_config.as_deref(),
        Some("{not json, carried as is")
    );

    let table: Table = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Table", "metadata": {"name": "later"},
        "spec": {"name": "later_table", "computeResource": "sales_mc_prod"}
    }))
    .unwrap();
    Api::<Table>::namespaced(c.clone(), "imp-rule")
        .create(&PostParams::default(), &table)
        .await
        .unwrap();
    let name = rule.metadata.name.clone().unwrap();
    let rule = wait_for(&rules, &name, WAIT, |r| {
        r.status.as_ref().is_some_and(|s| s.attached)
    })
    .await;
    let status = rule.status.unwrap();
    assert_eq!(
        status.lifecycle.state,
        Some(ObjectState::Deployed),
        "the table's appearance activates the rule"
    );
    assert_eq!(status.lifecycle.deployed_revision, rule.metadata.generation);
}

#[tokio::test]
async fn on_standard_an_imported_object_is_committed_by_annotation() {
    let c = client(User::Admin).await;
    destination(&c, "t-imp-manual", Edition::Standard, "imp-manual").await;
    package_from(
        &c,
        "imp-manual",
        "p",
        ferry_package::fixtures::FixtureSpec::new()
            .tasks(2)
            .quality_rules(0)
            .to_bytes(),
    )
    .await;
    let api = create_task(&c, "imp-manual", task("manual", "p", false)).await;
    wait_for(&api, "manual", WAIT, finished).await;
    let tasks: Api<ScheduledTask> = Api::namespaced(c, "imp-manual");
    let t = tasks
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .remove(0);
    let name = t.metadata.name.clone().unwrap();
    assert_eq!(t.status.as_ref().unwrap().state, Some(ObjectState::Saved));
    let ask = serde_json::json!({"metadata": {"annotations": {"ferry.dev/commit-requested-at": "2026-11-25T12:00:00Z"}}});
    tasks
        .patch(&name, &PatchParams::default(), &Patch::Merge(ask))
        .await
        .unwrap();
    let t = wait_for(&tasks, &name, WAIT, |t| {
        t.status
            .as_ref()
            .is_some_and(|s| s.state == Some(ObjectState::Committed))
    })
    .await;
    let st = t.status.unwrap();
    assert_eq!(st.committed_revision, t.metadata.generation);
    assert_eq!(
        st.origin.unwrap().import_task,
        "manual",
        "the import's origin is kept"
    );
}

#[tokio::test]
async fn a_compute_type_mismatch_fails_in_mapping_naming_both_types() {
    let c = client(User::Admin).await;
    destination(&c, "t-imp-type", Edition::Professional, "imp-type").await;
    package_from(
        &c,
        "imp-type",
        "p",
        ferry_package::fixtures::FixtureSpec::new()
            .tasks(6)
            .to_bytes(),
    )
    .await;
    let mut body = task("mismatch", "p", false);
    body["spec"]["computeResourceMapping"][1] =
        serde_json::json!({"source": "sales_holo_dev", "destination": "sales_mc_prod"});
    let api = create_task(&c, "imp-type", body).await;
    let t = wait_for(&api, "mismatch", WAIT, finished).await;
    let status = t.status.unwrap();
    assert_eq!(
        (status.phase, status.failed_phase),
        (ImportPhase::ImportFailed, Some(ImportPhase::Mapping))
    );
    let message = status.message.unwrap();
    assert!(
        message.contains("Hologres")
            && message.contains("MaxCompute")
            && message.contains("sales_holo_dev"),
        "{message}"
    );
    assert!(
        Api::<ScheduledTask>::namespaced(c, "imp-type")
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "nothing written"
    );
}

/// Basic tenants import only packages exported inside the tenant, and their
/// objects land uncommitted.
#[tokio::test]
async fn on_basic_an_exported_package_imports_uncommitted() {
    let c = client(User::Admin).await;
    destination(&c, "t-imp-basic", Edition::Basic, "imp-basic").await;
    // The source workspace, same tenant, with the fixture's development names.
    crate::support::tenant_and_workspace(
        &c,
        "t-imp-basic",
        Edition::Basic,
        "basic-src",
        "basic-src",
    )
    .await;
    let tasks: Api<ScheduledTask> = Api::namespaced(c.clone(), "basic-src");
    for (i, cr) in ["sales_mc_dev", "sales_holo_dev"].iter().enumerate() {
        let t: ScheduledTask = serde_json::from_value(serde_json::json!({
            "apiVersion": "ferry.dev/v1alpha1", "kind": "ScheduledTask", "metadata": {"name": format!("job-{i}")},
            "spec": {"name": format!("job_{i}"), "computeResource": cr, "resourceGroup": "dev_serverless",
                     "script": {"content": "SELECT * FROM basic_src.orders;"}, "outputs": [format!("basic_src.job_{i}")]}
        }))
        .unwrap();
        tasks.create(&PostParams::default(), &t).await.unwrap();
    }
    let pkg: MigrationPackage = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "MigrationPackage", "metadata": {"name": "exp"},
        "spec": {"source": {"export": {"workspace": "basic-src"}}}
    }))
    .unwrap();
    crate::support::grant_export(&c, "basic-src", "imp-basic").await;
    Api::<MigrationPackage>::namespaced(c.clone(), "imp-basic")
        .create(&PostParams::default(), &pkg)
        .await
        .unwrap();
    let mut body = task("basic", "exp", false);
    body["spec"]["computeResourceMapping"] = serde_json::json!([
        {"source": "sales_mc_dev", "destination": "sales_mc_prod"},
        {"source": "sales_holo_dev", "destination": "sales_holo"}
    ]);
    body["spec"]["resourceGroupMapping"] =
        serde_json::json!([{"source": "dev_serverless", "destination": "serverless_default"}]);
    body["spec"]["dependencyMapping"] =
        serde_json::json!([{"sourceProject": "basic_src", "newProject": "imp_basic"}]);
    let api = create_task(&c, "imp-basic", body).await;
    let t = wait_for(&api, "basic", WAIT, finished).await;
    let status = t.status.unwrap();
    assert_eq!(status.phase, ImportPhase::Completed, "{:?}", status.message);
    let r = status
        .results
        .iter()
        .find(|r| r.type_ == "ScheduledTask")
        .unwrap();
    assert_eq!(
        (r.created, r.committed, r.deployed),
        (2, 0, 0),
        "Basic does not commit or deploy automatically"
    );
    let imported = Api::<ScheduledTask>::namespaced(c, "imp-basic")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert!(
        imported
            .iter()
            .all(|t| t.status.as_ref().and_then(|s| s.state) == Some(ObjectState::Saved))
    );
    assert!(
        imported
            .iter()
            .all(|t| t.spec.script.content.contains("imp_basic.orders")),
        "project renamed in code"
    );
}

/// The seed audit: "A task waiting for a package that is refused or stuck
/// for a reason other than verification (no Workspace in its namespace, for
/// example) shows that reason, not just 'waiting to be verified'." The
/// package sits in a namespace no Workspace owns; once one does, the package
/// is verified and the import goes on. Its False `Stalled` condition says
/// why it is False all along ("a false Stalled/Reconciling condition carries
/// a real reason").
#[tokio::test]
async fn a_task_waiting_for_a_package_stuck_for_another_reason_shows_that_reason() {
    use k8s_openapi::api::core::v1::Namespace;
    let c = client(User::Admin).await;
    destination(&c, "t-imp-wait", Edition::Professional, "imp-wait").await;
    Api::<Namespace>::all(c.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "imp-wait-pkgs"}}))
                .unwrap(),
        )
        .await
        .unwrap();
    package_from(
        &c,
        "imp-wait-pkgs",
        "p",
        ferry_package::fixtures::FixtureSpec::new()
            .tasks(2)
            .to_bytes(),
    )
    .await;
    // Allowed to read it (docs/tenancy.md): what it waits for is the package.
    crate::support::grant_packages(&c, "imp-wait-pkgs", "imp-wait").await;
    let mut body = task("waits", "p", false);
    body["spec"]["packageRef"]["namespace"] = "imp-wait-pkgs".into();
    let api = create_task(&c, "imp-wait", body).await;
    let t = wait_for(&api, "waits", WAIT, |t| {
        t.status
            .as_ref()
            .and_then(|s| s.message.as_deref())
            .is_some_and(|m| m.contains("NoWorkspace"))
    })
    .await;
    let status = t.status.unwrap();
    assert_eq!(status.phase, ImportPhase::Verifying);
    let message = status.message.unwrap();
    assert!(
        message.contains("MigrationPackage imp-wait-pkgs/p")
            && message.contains("belongs to no Workspace")
            && !message.contains("to be verified"),
        "{message}"
    );
    let ready = conditions::find(&status.conditions, READY).unwrap();
    assert_eq!(ready.status, "False");
    assert!(ready.message.contains("NoWorkspace"), "{ready:?}");
    let stalled = conditions::find(&status.conditions, STALLED).unwrap();
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("False", "Progressing"),
        "{stalled:?}"
    );

    // A Workspace for the package's namespace: the package is verified and
    // the import goes on to the end.
    ferry::testenv::fixtures::ready_workspace(
        &c,
        "imp-wait-pkgs",
        ferry::testenv::fixtures::development_workspace("t-imp-wait", "imp-wait-pkgs"),
    )
    .await;
    let t = wait_for(&api, "waits", WAIT, finished).await;
    let status = t.status.unwrap();
    assert_eq!(status.phase, ImportPhase::Completed, "{:?}", status.message);
    // The task, its package, the Workspace and the Tenant: every False
    // Reconciling/Stalled condition says why.
    let pkg = Api::<MigrationPackage>::namespaced(c.clone(), "imp-wait-pkgs")
        .get("p")
        .await
        .unwrap();
    let ws = Api::<Workspace>::all(c.clone())
        .get("imp-wait")
        .await
        .unwrap();
    let tenant = Api::<Tenant>::all(c.clone())
        .get("t-imp-wait")
        .await
        .unwrap();
    for (what, conds) in [
        ("ImportTask", status.conditions),
        ("MigrationPackage", pkg.status.unwrap().conditions),
        ("Workspace", ws.status.unwrap().conditions),
        ("Tenant", tenant.status.unwrap().conditions),
    ] {
        for type_ in [conditions::RECONCILING, STALLED] {
            let c = conditions::find(&conds, type_).unwrap();
            assert_eq!(
                (c.status.as_str(), c.reason.as_str()),
                ("False", "Succeeded"),
                "{what}: {c:?}"
            );
            assert!(!c.message.is_empty(), "{what}: {c:?}");
        }
    }
}
