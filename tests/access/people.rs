//! The seed's access rule with the chart's roles and admission policies:
//! only a tenant owner or a workspace administrator creates import and
//! export work; everyone else can only view it. The three static-token
//! users act on the real API server: `victor` (viewer), `alice` (workspace
//! administrator of one workspace, then tenant owner of two).
//!
//! The access ClusterRoles are bound directly: their aggregation into the
//! built-in admin/edit/view roles needs kube-controller-manager, which this
//! control plane does not run. Each test uses namespaces of its own.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry::api::{ImportTask, MigrationPackage};
use ferry::testenv::User;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Api;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};

use crate::support::{
    assert_policy_refused, assert_rbac_refused, bind, can, client, env, impersonating, namespace,
    operator, wait_can,
};

const TASK_POLICY: &str = "ferry-importtask-references";
const PACKAGE_POLICY: &str = "ferry-migrationpackage-references";
const CHUNK_POLICY: &str = "ferry-chunk-configmaps";

fn task(name: &str, package: &str, package_ns: Option<&str>) -> ImportTask {
    let mut package_ref = serde_json::json!({"name": package});
    if let Some(ns) = package_ns {
        package_ref["namespace"] = ns.into();
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ImportTask", "metadata": {"name": name},
        "spec": {
            "importName": "sales.q4_import",
            "packageRef": package_ref,
            "suspend": true,
            "computeResourceMapping": [{"source": "sales_mc_dev", "destination": "sales_mc_prod"}]
        }
    }))
    .unwrap()
}

fn package(name: &str, source: serde_json::Value) -> MigrationPackage {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "MigrationPackage", "metadata": {"name": name},
        "spec": {"source": source}
    }))
    .unwrap()
}

fn from_config_map(cm: &str) -> serde_json::Value {
    serde_json::json!({"configMap": {"name": cm, "key": "package.zip"}})
}

fn config_map(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        binary_data: Some(BTreeMap::from([(
            "package.zip".to_string(),
            ByteString(
                ferry_package::fixtures::FixtureSpec::new()
                    .tasks(1)
                    .to_bytes(),
            ),
        )])),
        ..Default::default()
    }
}

/// As the admin: a ConfigMap with a package zip and a MigrationPackage
/// reading it, in `ns`.
async fn admin_package(ns: &str, name: &str) {
    let admin = client(User::Admin).await;
    let cm = format!("{name}-zip");
    Api::<ConfigMap>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &config_map(&cm, &[]))
        .await
        .unwrap();
    Api::<MigrationPackage>::namespaced(admin, ns)
        .create(&PostParams::default(), &package(name, from_config_map(&cm)))
        .await
        .unwrap();
}

fn pp() -> PostParams {
    PostParams::default()
}

#[tokio::test]
async fn a_viewer_reads_import_work_and_reports_but_changes_nothing() {
    env();
    operator();
    let (ns, other) = ("view-a", "view-b");
    namespace(ns).await;
    namespace(other).await;
    let admin = client(User::Admin).await;
    admin_package(ns, "q4").await;
    Api::<ImportTask>::namespaced(admin.clone(), ns)
        .create(&pp(), &task("q4-import", "q4", None))
        .await
        .unwrap();
    // A report shard, as the operator writes them.
    Api::<ConfigMap>::namespaced(admin.clone(), ns)
        .create(
            &pp(),
            &config_map(
                "q4-import-report-0",
                &[("ferry.dev/import-task", "q4-import")],
            ),
        )
        .await
        .unwrap();
    bind(ns, "ferry-workspace-viewer", User::Viewer).await;
    let victor = client(User::Viewer).await;
    wait_can(&victor, "list", "ferry.dev", "importtasks", ns).await;

    // Reads: tasks, their status, packages, reports.
    let tasks: Api<ImportTask> = Api::namespaced(victor.clone(), ns);
    let pkgs: Api<MigrationPackage> = Api::namespaced(victor.clone(), ns);
    let cms: Api<ConfigMap> = Api::namespaced(victor.clone(), ns);
    assert_eq!(
        tasks
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    tasks.get("q4-import").await.unwrap();
    tasks.get_status("q4-import").await.unwrap();
    assert_eq!(
        pkgs.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    pkgs.get("q4").await.unwrap();
    pkgs.get_status("q4").await.unwrap();
    let reports = cms
        .list(&ListParams::default().labels("ferry.dev/import-task=q4-import"))
        .await
        .unwrap();
    assert_eq!(reports.items.len(), 1);
    cms.get("q4-import-report-0").await.unwrap();
    assert!(can(&victor, "watch", "ferry.dev", "importtasks", ns, "").await);
    assert!(can(&victor, "watch", "ferry.dev", "migrationpackages", ns, "").await);

    // Every change is refused by RBAC.
    let v = User::Viewer;
    assert_rbac_refused(
        tasks.create(&pp(), &task("mine", "q4", None)).await,
        v,
        "create",
        "importtasks",
    );
    assert_rbac_refused(
        pkgs.create(&pp(), &package("mine", from_config_map("q4-zip")))
            .await,
        v,
        "create",
        "migrationpackages",
    );
    assert_rbac_refused(
        cms.create(&pp(), &config_map("mine", &[])).await,
        v,
        "create",
        "configmaps",
    );
    let mut current = tasks.get("q4-import").await.unwrap();
    current.spec.suspend = false;
    assert_rbac_refused(
        tasks.replace("q4-import", &pp(), &current).await,
        v,
        "update",
        "importtasks",
    );
    let unsuspend = Patch::Merge(serde_json::json!({"spec": {"suspend": false}}));
    assert_rbac_refused(
        tasks
            .patch("q4-import", &PatchParams::default(), &unsuspend)
            .await,
        v,
        "patch",
        "importtasks",
    );
    let again = Patch::Merge(serde_json::json!({
        "metadata": {"annotations": {"ferry.dev/requested-at": "2025-01-01T00:00:00Z"}}
    }));
    assert_rbac_refused(
        tasks
            .patch("q4-import", &PatchParams::default(), &again)
            .await,
        v,
        "patch",
        "importtasks",
    );
    assert_rbac_refused(
        tasks
            .patch_status(
                "q4-import",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"status": {"message": "done"}})),
            )
            .await,
        v,
        "patch",
        "importtasks/status",
    );
    let mut pkg = pkgs.get("q4").await.unwrap();
    pkg.metadata
        .labels
        .get_or_insert_default()
        .insert("x".into(), "y".into());
    assert_rbac_refused(
        pkgs.replace("q4", &pp(), &pkg).await,
        v,
        "update",
        "migrationpackages",
    );
    assert_rbac_refused(
        tasks.delete("q4-import", &DeleteParams::default()).await,
        v,
        "delete",
        "importtasks",
    );
    assert_rbac_refused(
        tasks
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await,
        v,
        "deletecollection",
        "importtasks",
    );
    assert_rbac_refused(
        pkgs.delete("q4", &DeleteParams::default()).await,
        v,
        "delete",
        "migrationpackages",
    );
    assert_rbac_refused(
        cms.delete("q4-import-report-0", &DeleteParams::default())
            .await,
        v,
        "delete",
        "configmaps",
    );
    // Nor does the viewer read Secrets, nor anything outside its namespace.
    assert_rbac_refused(
        Api::<Secret>::namespaced(victor.clone(), ns)
            .list(&ListParams::default())
            .await,
        v,
        "list",
        "secrets",
    );
    assert_rbac_refused(
        Api::<ImportTask>::namespaced(victor.clone(), other)
            .list(&ListParams::default())
            .await,
        v,
        "list",
        "importtasks",
    );
    // Everything is still there.
    assert!(
        Api::<ImportTask>::namespaced(admin, ns)
            .get("q4-import")
            .await
            .unwrap()
            .spec
            .suspend
    );
}

#[tokio::test]
async fn a_workspace_admin_of_a_cannot_import_into_b_nor_read_bs_packages() {
    env();
    operator();
    let (a, b) = ("adm-a", "adm-b");
    namespace(a).await;
    namespace(b).await;
    admin_package(b, "pkg-b").await;
    let admin = client(User::Admin).await;
    Api::<ConfigMap>::namespaced(admin.clone(), a)
        .create(&pp(), &config_map("pkg-a-zip", &[]))
        .await
        .unwrap();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("pkg-secret".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Secret>::namespaced(admin.clone(), a)
        .create(&pp(), &secret)
        .await
        .unwrap();
    bind(a, "ferry-workspace-admin", User::WorkspaceAdmin).await;
    let alice = client(User::WorkspaceAdmin).await;
    wait_can(&alice, "create", "ferry.dev", "importtasks", a).await;
    wait_can(&alice, "create", "ferry.dev", "migrationpackages", a).await;
    let w = User::WorkspaceAdmin;
    let tasks_a: Api<ImportTask> = Api::namespaced(alice.clone(), a);
    let pkgs_a: Api<MigrationPackage> = Api::namespaced(alice.clone(), a);

    // In her workspace: packages from what she can read, tasks, changes.
    pkgs_a
        .create(&pp(), &package("pkg-a", from_config_map("pkg-a-zip")))
        .await
        .expect("a package from a ConfigMap alice can read");
    tasks_a
        .create(&pp(), &task("import-a", "pkg-a", None))
        .await
        .expect("a task in alice's workspace");
    tasks_a
        .create(&pp(), &task("import-a-explicit", "pkg-a", Some(a)))
        .await
        .expect("a task naming its own namespace");
    tasks_a
        .patch(
            "import-a",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"note": "hi"}}})),
        )
        .await
        .expect("alice updates her task");

    // Not into workspace B.
    assert_rbac_refused(
        Api::<ImportTask>::namespaced(alice.clone(), b)
            .create(&pp(), &task("import-b", "pkg-b", None))
            .await,
        w,
        "create",
        "importtasks",
    );
    assert_rbac_refused(
        Api::<MigrationPackage>::namespaced(alice.clone(), b)
            .get("pkg-b")
            .await,
        w,
        "get",
        "migrationpackages",
    );
    // Nor B's package through a reference: the operator would read it for
    // her (a confused deputy).
    assert_policy_refused(
        tasks_a
            .create(&pp(), &task("import-from-b", "pkg-b", Some(b)))
            .await,
        TASK_POLICY,
        &[
            "spec.packageRef",
            "user \"alice\"",
            "MigrationPackage adm-b/pkg-b",
        ],
    );
    // Nor by changing the reference of an accepted task.
    let retarget = Patch::Merge(serde_json::json!({
        "spec": {"packageRef": {"name": "pkg-b", "namespace": b}}
    }));
    assert_policy_refused(
        tasks_a
            .patch("import-a", &PatchParams::default(), &retarget)
            .await,
        TASK_POLICY,
        &["spec.packageRef", "MigrationPackage adm-b/pkg-b"],
    );
    // (Nor export workspace B: the operator refuses that, with or without
    // policies; see cross_tenant.rs.)
    // Nor have the operator read a Secret she may not read.
    assert_policy_refused(
        pkgs_a
            .create(
                &pp(),
                &package(
                    "from-secret",
                    serde_json::json!({"secret": {"name": "pkg-secret", "key": "package.zip"}}),
                ),
            )
            .await,
        PACKAGE_POLICY,
        &["spec.source.secret", "Secret adm-a/pkg-secret"],
    );
    assert_policy_refused(
        pkgs_a
            .create(
                &pp(),
                &package(
                    "from-url",
                    serde_json::json!({"url": {"url": "https://example.com/p.zip", "secretRef": {"name": "pkg-secret"}}}),
                ),
            )
            .await,
        PACKAGE_POLICY,
        &["spec.source.url.secretRef", "Secret adm-a/pkg-secret"],
    );
    assert_policy_refused(
        pkgs_a
            .create(
                &pp(),
                &package(
                    "from-store",
                    serde_json::json!({"objectStore": {"endpoint": "https://oss.example.com", "bucket": "b", "key": "p.zip",
                                       "credentialsSecretRef": {"name": "pkg-secret"}}}),
                ),
            )
            .await,
        PACKAGE_POLICY,
        &["spec.source.objectStore.credentialsSecretRef", "Secret adm-a/pkg-secret"],
    );
    // She writes and removes the chunk ConfigMaps that carry a package
    // through the API server (kubectl migrate upload: labelled, owned by the
    // package), in her namespace only, and may not change a ConfigMap once
    // written, nor create or delete (so replace) any other ConfigMap.
    let cms_a = Api::<ConfigMap>::namespaced(alice.clone(), a);
    let pkg_a = pkgs_a.get("pkg-a").await.unwrap();
    let mut chunk = config_map("upload-chunk", &[("ferry.dev/upload", "pkg-a")]);
    chunk.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "ferry.dev/v1alpha1".into(),
            kind: "MigrationPackage".into(),
            name: "pkg-a".into(),
            uid: pkg_a.metadata.uid.clone().unwrap(),
            ..Default::default()
        },
    ]);
    cms_a
        .create(&pp(), &chunk)
        .await
        .expect("alice creates an upload chunk in her namespace");
    assert!(!can(&alice, "update", "", "configmaps", a, "").await);
    assert!(!can(&alice, "patch", "", "configmaps", a, "").await);
    cms_a
        .delete("upload-chunk", &DeleteParams::default())
        .await
        .expect("alice deletes her chunk");
    assert_policy_refused(
        cms_a.create(&pp(), &config_map("app-config", &[])).await,
        CHUNK_POLICY,
        &["user \"alice\"", "ConfigMap app-config is not one"],
    );
    assert_policy_refused(
        cms_a
            .create(
                &pp(),
                &config_map("labelled-only", &[("ferry.dev/upload", "x")]),
            )
            .await,
        CHUNK_POLICY,
        &["ConfigMap labelled-only is not one"],
    );
    assert_policy_refused(
        cms_a.delete("pkg-a-zip", &DeleteParams::default()).await,
        CHUNK_POLICY,
        &["may delete only package chunk ConfigMaps", "pkg-a-zip"],
    );
    assert_rbac_refused(
        Api::<ConfigMap>::namespaced(alice.clone(), b)
            .create(&pp(), &config_map("upload", &[]))
            .await,
        w,
        "create",
        "configmaps",
    );
    // And she may remove her own work.
    tasks_a
        .delete("import-a-explicit", &DeleteParams::default())
        .await
        .expect("alice deletes her task");
}

#[tokio::test]
async fn a_tenant_owner_imports_across_the_tenants_workspaces_and_exports_them() {
    env();
    operator();
    let (a, b, elsewhere) = ("own-a", "own-b", "own-other-tenant");
    for ns in [a, b, elsewhere] {
        namespace(ns).await;
    }
    admin_package(b, "pkg-b").await;
    admin_package(elsewhere, "pkg-x").await;
    // The README's recipe for a cluster shared by tenants: ferry-tenant-owner
    // bound in each of the tenant's namespaces, and read on the tenant's
    // Workspaces by name.
    for ns in [a, b] {
        bind(ns, "ferry-tenant-owner", User::WorkspaceAdmin).await;
    }
    let admin = client(User::Admin).await;
    let reader: ClusterRole = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "acme-workspaces-reader"},
        "rules": [{"apiGroups": ["ferry.dev"], "resources": ["workspaces"], "resourceNames": [a, b], "verbs": ["get"]}]
    }))
    .unwrap();
    Api::<ClusterRole>::all(admin.clone())
        .create(&pp(), &reader)
        .await
        .unwrap();
    let binding: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "acme-workspaces-reader-alice"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "acme-workspaces-reader"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(admin)
        .create(&pp(), &binding)
        .await
        .unwrap();
    let alice = client(User::WorkspaceAdmin).await;
    for ns in [a, b] {
        wait_can(&alice, "create", "ferry.dev", "importtasks", ns).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !can(&alice, "get", "ferry.dev", "workspaces", "", b).await {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Imports into both workspaces, reads B's package, imports it into A.
    Api::<ImportTask>::namespaced(alice.clone(), b)
        .create(&pp(), &task("import-b", "pkg-b", None))
        .await
        .expect("the tenant owner imports into B");
    Api::<MigrationPackage>::namespaced(alice.clone(), b)
        .get("pkg-b")
        .await
        .expect("the tenant owner reads B's package");
    let tasks_a: Api<ImportTask> = Api::namespaced(alice.clone(), a);
    tasks_a
        .create(&pp(), &task("import-b-into-a", "pkg-b", Some(b)))
        .await
        .expect("the tenant owner imports B's package into A");
    // Exports workspace B into a package in A.
    let pkgs_a: Api<MigrationPackage> = Api::namespaced(alice.clone(), a);
    pkgs_a
        .create(
            &pp(),
            &package("export-b", serde_json::json!({"export": {"workspace": b}})),
        )
        .await
        .expect("the tenant owner exports B");

    // Still nothing of another tenant.
    assert_policy_refused(
        tasks_a
            .create(&pp(), &task("import-other", "pkg-x", Some(elsewhere)))
            .await,
        TASK_POLICY,
        &["MigrationPackage own-other-tenant/pkg-x"],
    );
    // (Exporting another tenant's workspace is refused by the operator:
    // cross_tenant.rs.)
    assert_rbac_refused(
        Api::<ImportTask>::namespaced(alice, elsewhere)
            .create(&pp(), &task("import-x", "pkg-x", None))
            .await,
        User::WorkspaceAdmin,
        "create",
        "importtasks",
    );
}

#[tokio::test]
async fn a_tenant_owner_of_a_single_tenant_cluster_is_bound_once() {
    env();
    operator();
    let (a, b) = ("one-a", "one-b");
    for ns in [a, b] {
        namespace(ns).await;
    }
    admin_package(b, "pkg-b").await;
    // The README's recipe for a cluster holding one tenant: one
    // ClusterRoleBinding, here for a group of owners. (A user outside the
    // token file, reached by impersonation.)
    let binding: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "ferry-tenant-owner-acme"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ferry-tenant-owner"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "acme:owners"}]
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(client(User::Admin).await)
        .create(&pp(), &binding)
        .await
        .unwrap();
    let tina = impersonating("tina", &["acme:owners"]).await;
    wait_can(&tina, "create", "ferry.dev", "importtasks", a).await;

    Api::<ferry::api::Tenant>::all(tina.clone())
        .list(&ListParams::default())
        .await
        .expect("the tenant owner sees the tenant");
    Api::<ferry::api::Workspace>::all(tina.clone())
        .list(&ListParams::default())
        .await
        .expect("the tenant owner sees the workspaces");
    Api::<ImportTask>::namespaced(tina.clone(), b)
        .create(&pp(), &task("import-b", "pkg-b", None))
        .await
        .expect("the tenant owner imports into B");
    Api::<ImportTask>::namespaced(tina.clone(), a)
        .create(&pp(), &task("import-b-into-a", "pkg-b", Some(b)))
        .await
        .expect("the tenant owner imports B's package into A");
    Api::<MigrationPackage>::namespaced(tina.clone(), a)
        .create(
            &pp(),
            &package("export-b", serde_json::json!({"export": {"workspace": b}})),
        )
        .await
        .expect("the tenant owner exports B");
    // The role grants no more than Ferry's objects and reports.
    assert!(!can(&tina, "get", "", "secrets", a, "").await);
    // ConfigMaps: written and deleted (upload and download chunks), never changed.
    assert!(can(&tina, "create", "", "configmaps", a, "").await);
    assert!(!can(&tina, "update", "", "configmaps", a, "").await);
    assert!(!can(&tina, "create", "ferry.dev", "workspaces", "", "").await);
    assert!(!can(&tina, "update", "ferry.dev", "tenants", "", "").await);
    assert!(can(&tina, "delete", "ferry.dev", "migrationpackages", b, "").await);
}
