//! GitOps: `kubectl wait --for=condition=Ready importtask/NAME` returns once
//! the operator (running as the chart's ServiceAccount, with only the
//! chart's permissions) has carried out the import a workspace
//! administrator asked for. The objects it imports that had no owner get
//! the one who created the task (change owner "Not Modify"), as the chart's
//! creator policy recorded them.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry::api::*;
use ferry::testenv::User;
use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ListParams, ObjectMeta, PostParams};

use crate::support::{
    CREATED_BY, RELEASE_NS, bind, client, cp, env, kubectl, operator, text, wait_can, wait_for,
};

const WS: &str = "acc-ready";

/// A Professional tenant and a Ready workspace whose compute resources and
/// resource groups have production names.
async fn destination(c: &kube::Client) {
    let tenant = Tenant::new(
        "acc-pro",
        TenantSpec {
            edition: Edition::Professional,
            display_name: None,
        },
    );
    Api::<Tenant>::all(c.clone())
        .create(&PostParams::default(), &tenant)
        .await
        .unwrap();
    let spec: WorkspaceSpec = serde_json::from_value(serde_json::json!({
        "tenant": "acc-pro", "namespace": WS, "projectName": "acc_ready",
        "region": "cn-shanghai", "mode": "Standard",
        "computeResources": [
            {"name": "sales_mc_prod", "type": "MaxCompute", "project": "sales_prod_mc"},
            {"name": "sales_holo", "type": "Hologres"},
            {"name": "sales_emr", "type": "EMR"}
        ],
        "resourceGroups": [{"name": "serverless_default", "type": "Serverless"}]
    }))
    .unwrap();
    let api: Api<Workspace> = Api::all(c.clone());
    api.create(&PostParams::default(), &Workspace::new(WS, spec))
        .await
        .unwrap();
    wait_for(&api, WS, Duration::from_secs(60), |w| {
        w.status
            .as_ref()
            .is_some_and(|s| ferry::conditions::is_true(&s.conditions, ferry::conditions::READY))
    })
    .await;
}

#[tokio::test]
async fn kubectl_wait_for_ready_returns_once_the_import_completes() {
    env();
    operator();
    let admin = client(User::Admin).await;
    // The operator creates the workspace's namespace.
    destination(&admin).await;

    // alice administers the workspace, victor views it.
    bind(WS, "ferry-workspace-admin", User::WorkspaceAdmin).await;
    bind(WS, "ferry-workspace-viewer", User::Viewer).await;
    let alice = client(User::WorkspaceAdmin).await;
    let victor = client(User::Viewer).await;
    wait_can(&alice, "create", "ferry.dev", "importtasks", WS).await;
    wait_can(&alice, "create", "ferry.dev", "migrationpackages", WS).await;
    wait_can(&victor, "watch", "ferry.dev", "importtasks", WS).await;

    // The package upload (a ConfigMap: another role's right, here the
    // admin's), then alice's package and task. Task 4 of the fixture has
    // no owner.
    let fixture = ferry_package::fixtures::FixtureSpec::new().tasks(5);
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("q4-zip".into()),
            ..Default::default()
        },
        binary_data: Some(BTreeMap::from([(
            "package.zip".to_string(),
            ByteString(fixture.to_bytes()),
        )])),
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(admin.clone(), WS)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let pkg: MigrationPackage = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "MigrationPackage", "metadata": {"name": "q4"},
        "spec": {"source": {"configMap": {"name": "q4-zip", "key": "package.zip"}}}
    }))
    .unwrap();
    Api::<MigrationPackage>::namespaced(alice.clone(), WS)
        .create(&PostParams::default(), &pkg)
        .await
        .expect("alice creates the package");
    // Claiming someone else as the creator does not make them the owner of
    // the ownerless objects: the chart records who really created the task.
    let task: ImportTask = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ImportTask",
        "metadata": {"name": "q4-import", "annotations": {CREATED_BY: "mallory"}},
        "spec": {
            "importName": "sales.q4_import",
            "packageRef": {"name": "q4"},
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
    }))
    .unwrap();
    Api::<ImportTask>::namespaced(alice, WS)
        .create(&PostParams::default(), &task)
        .await
        .expect("alice creates the import task");

    // What a GitOps pipeline runs, as the viewer.
    let kubeconfig = cp().kubeconfig(User::Viewer);
    let out = tokio::task::spawn_blocking(move || {
        kubectl(
            &kubeconfig,
            &[
                "wait",
                "--for=condition=Ready",
                "importtask/q4-import",
                "-n",
                WS,
                "--timeout=60s",
            ],
        )
    })
    .await
    .unwrap();
    let t = Api::<ImportTask>::namespaced(admin.clone(), WS)
        .get("q4-import")
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl wait failed: {}\ntask: {:#?}",
        text(&out),
        t.status
    );
    assert!(
        text(&out).contains("importtask.ferry.dev/q4-import condition met"),
        "{}",
        text(&out)
    );
    let status = t.status.unwrap();
    assert_eq!(status.phase, ImportPhase::Completed, "{:?}", status.message);
    assert_eq!(status.creator.as_deref(), Some("alice"));

    // The imported objects exist, and the viewer reads them and the report.
    let tasks = Api::<ScheduledTask>::namespaced(victor.clone(), WS)
        .list(&Default::default())
        .await
        .unwrap();
    assert_eq!(tasks.items.len(), 5);
    // Owners kept ("Not Modify"), and the ownerless task is alice's now.
    let owners: BTreeMap<String, Option<String>> = tasks
        .items
        .iter()
        .map(|t| (t.spec.common.name.clone(), t.spec.common.owner.clone()))
        .collect();
    let ownerless = fixture.task_name(4);
    assert_eq!(owners[&ownerless].as_deref(), Some("alice"), "{owners:?}");
    for (name, owner) in &owners {
        if *name != ownerless {
            assert!(
                owner.as_deref().is_some_and(|o| o.starts_with("123456")),
                "{name} kept its owner: {owners:?}"
            );
        }
    }
    let reports = Api::<ConfigMap>::namespaced(victor, WS)
        .list(&ListParams::default().labels("ferry.dev/import-task=q4-import"))
        .await
        .unwrap();
    assert!(!reports.items.is_empty(), "the import report is readable");

    // The operator did it as the chart's ServiceAccount, holding the
    // chart's Lease, and reported it with events.
    let lease = Api::<Lease>::namespaced(admin.clone(), RELEASE_NS)
        .get("ferry-leader")
        .await
        .expect("the operator's Lease");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("ferry-access-test")
    );
    let events = Api::<Event>::namespaced(admin, WS)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        events
            .items
            .iter()
            .any(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("q4-import")),
        "no event about the task: {:#?}",
        events.items
    );

    // And a jsonpath wait on the phase works the same way.
    let kubeconfig = cp().kubeconfig(User::Viewer);
    let out = tokio::task::spawn_blocking(move || {
        kubectl(
            &kubeconfig,
            &[
                "wait",
                "--for=jsonpath={.status.phase}=Completed",
                "importtask/q4-import",
                "-n",
                WS,
                "--timeout=10s",
            ],
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}
