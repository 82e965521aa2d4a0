//! The same cross-tenant attempts, run twice: by `tests/access` with the
//! chart's admission policies in force, and by `tests/tenancy` with the
//! chart installed without them (`admissionPolicy.enabled=false`, as on a
//! cluster older than 1.30 or with the policies in Warn mode). Every attempt
//! is refused both times: by a policy at admission where one applies and is
//! installed, otherwise by the operator itself, which acts for a namespace
//! only with the rights of that namespace's workspace identity (the
//! ServiceAccount `<namespace>/ferry-workspace`, impersonated).
//!
//! alice administers workspace `xt-red` of tenant red. Tenant blue has
//! workspace `xt-blue`, with a verified package.

use std::time::Duration;

use ferry::api::{ImportTask, MigrationPackage, ScheduledTask, Tenant, Workspace};
use ferry::conditions::{READY, find, is_true};
use ferry::testenv::User;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::PostParams;

use crate::support::{
    assert_policy_refused, assert_rbac_refused, bind, client, env, operator, wait_can, wait_for,
};

const RED: &str = "xt-red";
const BLUE: &str = "xt-blue";

fn pp() -> PostParams {
    PostParams::default()
}

/// A Tenant, its Workspace (namespace of the same name) once Ready, and one
/// task in it, so that an export of it has something to carry.
async fn tenant_and_workspace(tenant: &str, ws: &str, project: &str) {
    let admin = client(User::Admin).await;
    let t: Tenant = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": tenant},
        "spec": {"edition": "Enterprise"}
    }))
    .unwrap();
    Api::<Tenant>::all(admin.clone())
        .create(&pp(), &t)
        .await
        .unwrap();
    let w: Workspace = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Workspace", "metadata": {"name": ws},
        "spec": {"tenant": tenant, "namespace": ws, "projectName": project,
                 "region": "cn-shanghai", "mode": "Standard",
                 "computeResources": [{"name": "sales_mc_prod", "type": "MaxCompute", "project": "p"}],
                 "resourceGroups": [{"name": "serverless_default", "type": "Serverless"}]}
    }))
    .unwrap();
    let api: Api<Workspace> = Api::all(admin.clone());
    api.create(&pp(), &w).await.unwrap();
    wait_for(&api, ws, Duration::from_secs(60), |w| {
        w.status
            .as_ref()
            .is_some_and(|s| is_true(&s.conditions, READY))
    })
    .await;
    let task: ScheduledTask = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ScheduledTask", "metadata": {"name": "load-orders"},
        "spec": {"name": "load_orders", "owner": "1234567", "computeResource": "sales_mc_prod",
                 "script": {"language": "odps-sql", "content": "SELECT 1;"}, "trigger": {"cron": "00 00 02 * * ?"},
                 "outputs": [format!("{project}.load_orders")]}
    }))
    .unwrap();
    Api::<ScheduledTask>::namespaced(admin, ws)
        .create(&pp(), &task)
        .await
        .unwrap();
}

fn package(name: &str, source: serde_json::Value) -> MigrationPackage {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "MigrationPackage", "metadata": {"name": name},
        "spec": {"source": source}
    }))
    .unwrap()
}

fn task(name: &str, package: &str, package_ns: &str) -> ImportTask {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ImportTask", "metadata": {"name": name},
        "spec": {"importName": "red.import", "packageRef": {"name": package, "namespace": package_ns},
                 "suspend": true,
                 "computeResourceMapping": [{"source": "sales_mc_dev", "destination": "sales_mc_prod"}]}
    }))
    .unwrap()
}

/// Waits for the package's Ready condition to be False with `reason`, and
/// returns its message.
async fn refused_package(ns: &str, name: &str, reason: &str) -> String {
    let api: Api<MigrationPackage> = Api::namespaced(client(User::Admin).await, ns);
    let pkg = wait_for(&api, name, Duration::from_secs(60), |p| {
        p.status
            .as_ref()
            .and_then(|s| find(&s.conditions, READY))
            .is_some_and(|c| c.status == "False" && c.reason == reason)
    })
    .await;
    let status = pkg.status.unwrap();
    assert!(status.artifact.is_none(), "{name}: {status:?}");
    find(&status.conditions, READY).unwrap().message.clone()
}

/// Waits until the task's Ready condition message contains `needle`.
async fn task_says(ns: &str, name: &str, needle: &str) -> ImportTask {
    let api: Api<ImportTask> = Api::namespaced(client(User::Admin).await, ns);
    wait_for(&api, name, Duration::from_secs(60), |t| {
        t.status
            .as_ref()
            .and_then(|s| find(&s.conditions, READY))
            .is_some_and(|c| c.message.contains(needle))
    })
    .await
}

/// As an administrator of `ns`: lets `from`'s workspace identity `verbs`
/// `resources` (of `group`) there.
async fn grant(ns: &str, from: &str, name: &str, group: &str, resources: &[&str], verbs: &[&str]) {
    let admin = client(User::Admin).await;
    ferry::testenv::fixtures::grant_identity(
        &admin,
        ns,
        from,
        name,
        (group, resources, verbs, &[]),
    )
    .await;
}

/// Creates `obj` as alice. With the policies installed, `policy` (when
/// given) refuses it at admission and `None` is returned; otherwise the API
/// server accepts it and the operator must refuse it.
async fn attempt<K>(api: &Api<K>, obj: &K, policy: Option<(&str, &[&str])>) -> Option<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let result = api.create(&pp(), obj).await;
    match policy.filter(|_| crate::POLICIES) {
        Some((policy, needles)) => {
            assert_policy_refused(result, policy, needles);
            None
        }
        None => Some(result.expect("accepted at admission: the operator decides")),
    }
}

#[tokio::test]
async fn every_cross_tenant_attempt_is_refused() {
    env();
    operator();
    tenant_and_workspace("red", RED, "xt_red").await;
    tenant_and_workspace("blue", BLUE, "xt_blue").await;
    let admin = client(User::Admin).await;
    // Blue's verified package, and a Secret in red that alice may not read.
    let zip = ferry_package::fixtures::FixtureSpec::new()
        .tasks(1)
        .to_bytes();
    let cm: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "blue-zip"}})).unwrap();
    let cm = ConfigMap {
        binary_data: Some([("package.zip".to_string(), ByteString(zip.clone()))].into()),
        ..cm
    };
    Api::<ConfigMap>::namespaced(admin.clone(), BLUE)
        .create(&pp(), &cm)
        .await
        .unwrap();
    let blue_pkgs: Api<MigrationPackage> = Api::namespaced(admin.clone(), BLUE);
    blue_pkgs
        .create(
            &pp(),
            &package(
                "pkg-blue",
                serde_json::json!({"configMap": {"name": "blue-zip", "key": "package.zip"}}),
            ),
        )
        .await
        .unwrap();
    wait_for(&blue_pkgs, "pkg-blue", Duration::from_secs(60), |p| {
        p.status
            .as_ref()
            .is_some_and(|s| is_true(&s.conditions, READY))
    })
    .await;
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("red-secret".into()),
            ..Default::default()
        },
        data: Some([("package.zip".to_string(), ByteString(zip))].into()),
        ..Default::default()
    };
    Api::<Secret>::namespaced(admin.clone(), RED)
        .create(&pp(), &secret)
        .await
        .unwrap();

    bind(RED, "ferry-workspace-admin", User::WorkspaceAdmin).await;
    let alice = client(User::WorkspaceAdmin).await;
    wait_can(&alice, "create", "ferry.dev", "importtasks", RED).await;
    wait_can(&alice, "create", "ferry.dev", "migrationpackages", RED).await;
    let tasks: Api<ImportTask> = Api::namespaced(alice.clone(), RED);
    let pkgs: Api<MigrationPackage> = Api::namespaced(alice.clone(), RED);

    // 1. Import blue's package into red.
    if attempt(
        &tasks,
        &task("import-blue", "pkg-blue", BLUE),
        Some((
            "ferry-importtask-references",
            &["MigrationPackage xt-blue/pkg-blue"],
        )),
    )
    .await
    .is_some()
    {
        let t = task_says(
            RED,
            "import-blue",
            "may not read MigrationPackage xt-blue/pkg-blue",
        )
        .await;
        let status = t.status.unwrap();
        assert!(
            status.plan.is_none(),
            "nothing of blue's package was planned: {status:?}"
        );
        assert!(
            find(&status.conditions, READY)
                .unwrap()
                .message
                .contains("system:serviceaccount:xt-red:ferry-workspace"),
            "the refusal names the identity: {status:?}"
        );
    }

    // 2. Export blue's workspace into a package in red (no policy can check
    // this one: the operator refuses it in both runs).
    attempt(
        &pkgs,
        &package(
            "export-blue",
            serde_json::json!({"export": {"workspace": BLUE}}),
        ),
        None,
    )
    .await;
    let why = refused_package(RED, "export-blue", "ExportForbidden").await;
    assert!(
        why.contains("namespace xt-blue, which namespace xt-red does not administer"),
        "{why}"
    );
    let blue = Api::<Tenant>::all(admin.clone()).get("blue").await.unwrap();
    assert_eq!(
        blue.status.map(|s| s.exported_packages).unwrap_or(0),
        0,
        "a refused export counts nothing"
    );

    // 3. Have the operator read a Secret she may not read: as the package's
    // zip, as a URL's headers, as object-store credentials.
    let secret_sources = [
        (
            "from-secret",
            serde_json::json!({"secret": {"name": "red-secret", "key": "package.zip"}}),
            "spec.source.secret",
        ),
        (
            "from-url",
            serde_json::json!({"url": {"url": "https://example.com/p.zip", "secretRef": {"name": "red-secret"}}}),
            "spec.source.url.secretRef",
        ),
        (
            "from-store",
            serde_json::json!({"objectStore": {"endpoint": "https://oss.example.com", "bucket": "b", "key": "p.zip",
                               "credentialsSecretRef": {"name": "red-secret"}}}),
            "spec.source.objectStore.credentialsSecretRef",
        ),
    ];
    for (name, source, field) in &secret_sources {
        if attempt(
            &pkgs,
            &package(name, source.clone()),
            Some((
                "ferry-migrationpackage-references",
                &[field, "Secret xt-red/red-secret"],
            )),
        )
        .await
        .is_some()
        {
            let why = refused_package(RED, name, "SourceForbidden").await;
            assert!(
                why.contains(field) && why.contains("may not get Secret xt-red/red-secret"),
                "{name}: {why}"
            );
        }
    }

    // 4. Write into blue: RBAC refuses her task there outright, so the
    // operator never writes into a namespace she does not administer
    // (imports write only into their task's namespace).
    assert_rbac_refused(
        Api::<ImportTask>::namespaced(alice.clone(), BLUE)
            .create(&pp(), &task("import-into-blue", "pkg-blue", BLUE))
            .await,
        User::WorkspaceAdmin,
        "create",
        "importtasks",
    );

    // What she may do, with no cluster-level binding: export her own
    // workspace.
    pkgs.create(
        &pp(),
        &package(
            "export-red",
            serde_json::json!({"export": {"workspace": RED}}),
        ),
    )
    .await
    .expect("alice exports her own workspace");
    wait_for(
        &Api::<MigrationPackage>::namespaced(admin.clone(), RED),
        "export-red",
        Duration::from_secs(60),
        |p| {
            p.status
                .as_ref()
                .is_some_and(|s| is_true(&s.conditions, READY))
        },
    )
    .await;

    // Once blue's administrators grant red's identity, the operator acts
    // (objects made by the cluster admin, whom no policy stops, so that
    // only the operator decides).
    grant(
        BLUE,
        RED,
        "red-reads-packages",
        "ferry.dev",
        &["migrationpackages"],
        &["get"],
    )
    .await;
    grant(
        BLUE,
        RED,
        "red-exports",
        "ferry.dev",
        &["importtasks"],
        &["create"],
    )
    .await;
    let admin_tasks: Api<ImportTask> = Api::namespaced(admin.clone(), RED);
    admin_tasks
        .create(&pp(), &task("import-blue-granted", "pkg-blue", BLUE))
        .await
        .unwrap();
    let admin_pkgs: Api<MigrationPackage> = Api::namespaced(admin.clone(), RED);
    admin_pkgs
        .create(
            &pp(),
            &package(
                "export-blue-granted",
                serde_json::json!({"export": {"workspace": BLUE}}),
            ),
        )
        .await
        .unwrap();
    wait_for(
        &admin_pkgs,
        "export-blue-granted",
        Duration::from_secs(60),
        |p| {
            p.status
                .as_ref()
                .is_some_and(|s| is_true(&s.conditions, READY))
        },
    )
    .await;
    // Read and pinned: the package was allowed.
    wait_for(
        &admin_tasks,
        "import-blue-granted",
        Duration::from_secs(60),
        |t| {
            t.status
                .as_ref()
                .is_some_and(|s| s.package_digest.is_some())
        },
    )
    .await;
}
