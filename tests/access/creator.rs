//! Who created an ImportTask: the seed's "if you select Not Modify for
//! Change Owner and the node has no owner, you are automatically assigned as
//! the owner after import". The operator reads the creator from the
//! annotation `ferry.dev/created-by`; the chart's MutatingAdmissionPolicy
//! `ferry-importtask-creator` sets it to the requesting user on CREATE,
//! whatever the request claimed, and the ValidatingAdmissionPolicy of the
//! same name refuses changing it afterwards, to everyone.
//!
//! (`ready.rs` shows the operator giving an ownerless object to the
//! recorded creator.)

use std::time::{Duration, Instant};

use ferry::api::ImportTask;
use ferry::testenv::User;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingAdmissionPolicy, MutatingAdmissionPolicyBinding, ValidatingAdmissionPolicy,
    ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

use crate::support::{
    CREATED_BY, assert_policy_refused, bind, client, env, impersonating, namespace, wait_can,
};

const POLICY: &str = "ferry-importtask-creator";

fn task(name: &str, annotations: serde_json::Value) -> ImportTask {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ImportTask",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "importName": "sales.q4_import",
            // A package of the task's namespace: the references policy asks
            // whether the user may get it, not whether it exists.
            "packageRef": {"name": "q4"},
            "suspend": true,
            "changeOwner": {"mode": "NotModify"},
            "computeResourceMapping": [{"source": "sales_mc_dev", "destination": "sales_mc_prod"}]
        }
    }))
    .unwrap()
}

fn creator(t: &ImportTask) -> Option<&str> {
    t.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CREATED_BY))
        .map(String::as_str)
}

fn set_creator(who: Option<&str>) -> Patch<serde_json::Value> {
    Patch::Merge(serde_json::json!({"metadata": {"annotations": {CREATED_BY: who}}}))
}

/// The policies load from an informer: waits until a dry-run change of the
/// creator is refused (the creation probe in `support.rs` only shows the
/// mutating policy in force).
async fn wait_refused(tasks: &Api<ImportTask>, name: &str) {
    let dry = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while tasks
        .patch(name, &dry, &set_creator(Some("mallory")))
        .await
        .is_ok()
    {
        assert!(
            Instant::now() < deadline,
            "{POLICY} does not refuse changes after 60s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_creator_policies_are_installed_and_bound() {
    // `auto`: helm found admissionregistration.k8s.io/v1
    // MutatingAdmissionPolicy served, and says so.
    let notes = &env().install_output;
    assert!(
        notes.contains("The policies ferry-importtask-creator record who created each ImportTask"),
        "{notes}"
    );
    assert!(!notes.contains("WARNING"), "{notes}");
    let c = client(User::Admin).await;
    let map = Api::<MutatingAdmissionPolicy>::all(c.clone())
        .get(POLICY)
        .await
        .expect("the MutatingAdmissionPolicy (admissionregistration.k8s.io/v1)");
    let spec = map.spec.unwrap();
    assert_eq!(spec.failure_policy.as_deref(), Some("Fail"));
    let rules = spec.match_constraints.unwrap().resource_rules.unwrap();
    assert_eq!(
        rules[0].operations.as_deref(),
        Some(&["CREATE".to_string()][..])
    );
    assert_eq!(
        rules[0].resources.as_deref(),
        Some(&["importtasks".to_string()][..])
    );
    let binding = Api::<MutatingAdmissionPolicyBinding>::all(c.clone())
        .get(POLICY)
        .await
        .expect("its binding");
    assert_eq!(binding.spec.unwrap().policy_name.as_deref(), Some(POLICY));
    let vap = Api::<ValidatingAdmissionPolicy>::all(c.clone())
        .get(POLICY)
        .await
        .expect("the ValidatingAdmissionPolicy");
    assert_eq!(vap.spec.unwrap().failure_policy.as_deref(), Some("Fail"));
    let binding = Api::<ValidatingAdmissionPolicyBinding>::all(c)
        .get(POLICY)
        .await
        .expect("its binding");
    assert_eq!(binding.spec.policy_name, POLICY);
    assert_eq!(binding.spec.validation_actions, ["Deny"]);
}

#[tokio::test]
async fn the_creator_is_who_created_the_task_and_stays_so() {
    env();
    let ns = "creator-a";
    namespace(ns).await;
    bind(ns, "ferry-workspace-admin", User::WorkspaceAdmin).await;
    let alice = client(User::WorkspaceAdmin).await;
    wait_can(&alice, "create", "ferry.dev", "importtasks", ns).await;
    let tasks: Api<ImportTask> = Api::namespaced(alice.clone(), ns);

    // alice claims mallory created her task: the API server records alice,
    // and keeps her other annotations.
    let created = tasks
        .create(
            &PostParams::default(),
            &task(
                "q4-import",
                serde_json::json!({CREATED_BY: "mallory", "team": "sales"}),
            ),
        )
        .await
        .expect("alice creates a task");
    assert_eq!(creator(&created), Some("alice"));
    let stored = Api::<ImportTask>::namespaced(client(User::Admin).await, ns)
        .get("q4-import")
        .await
        .unwrap();
    assert_eq!(creator(&stored), Some("alice"), "{:?}", stored.metadata);
    assert_eq!(
        stored.metadata.annotations.as_ref().unwrap()["team"],
        "sales"
    );
    // Sending no annotation at all records her just the same.
    let plain = tasks
        .create(
            &PostParams::default(),
            &task("q4-plain", serde_json::json!({})),
        )
        .await
        .unwrap();
    assert_eq!(creator(&plain), Some("alice"));

    // Afterwards nobody changes it: not alice, by patch, removal or replace.
    wait_refused(&tasks, "q4-import").await;
    let pp = PatchParams::default();
    assert_policy_refused(
        tasks
            .patch("q4-import", &pp, &set_creator(Some("mallory")))
            .await,
        POLICY,
        &[
            "metadata.annotations[\"ferry.dev/created-by\"]",
            "ImportTask creator-a/q4-import",
            "(\"alice\")",
            "(to \"mallory\")",
            "user \"alice\"",
        ],
    );
    assert_policy_refused(
        tasks.patch("q4-import", &pp, &set_creator(None)).await,
        POLICY,
        &["ImportTask creator-a/q4-import", "(to \"\")"],
    );
    // A replace carries the resourceVersion it read; the operator's status
    // writes move it on, so a 409 only means "read again".
    let replaced = loop {
        let mut replaced = tasks.get("q4-import").await.unwrap();
        replaced
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(CREATED_BY.into(), "mallory".into());
        match tasks
            .replace("q4-import", &PostParams::default(), &replaced)
            .await
        {
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            other => break other,
        }
    };
    assert_policy_refused(replaced, POLICY, &["(to \"mallory\")"]);
    // Not another workspace administrator (bob), not even the cluster admin.
    bind_impersonated(ns, "bob").await;
    let bob = impersonating("bob", &[]).await;
    wait_can(&bob, "patch", "ferry.dev", "importtasks", ns).await;
    assert_policy_refused(
        Api::<ImportTask>::namespaced(bob.clone(), ns)
            .patch("q4-import", &pp, &set_creator(Some("bob")))
            .await,
        POLICY,
        &["(to \"bob\")", "user \"bob\""],
    );
    assert_policy_refused(
        Api::<ImportTask>::namespaced(client(User::Admin).await, ns)
            .patch("q4-import", &pp, &set_creator(Some("bob")))
            .await,
        POLICY,
        &["user \"admin\""],
    );
    // bob's own task is his.
    let his = Api::<ImportTask>::namespaced(bob, ns)
        .create(
            &PostParams::default(),
            &task("bobs-import", serde_json::json!({CREATED_BY: "alice"})),
        )
        .await
        .expect("bob creates a task");
    assert_eq!(creator(&his), Some("bob"));

    // Other changes go on as before: Import Again, other annotations, spec.
    let again = Patch::Merge(serde_json::json!({
        "metadata": {"annotations": {"ferry.dev/requested-at": "2025-01-01T00:00:00Z", "team": "bi"}},
        "spec": {"importName": "sales.q4_import_2"}
    }));
    let updated = tasks
        .patch("q4-import", &pp, &again)
        .await
        .expect("alice updates her task");
    assert_eq!(creator(&updated), Some("alice"));
    // Sending the recorded value back unchanged is no change (read again
    // on 409: the operator's status writes move the resourceVersion on).
    let same = loop {
        let mut same = tasks.get("q4-import").await.unwrap();
        same.metadata
            .annotations
            .get_or_insert_default()
            .insert("team".into(), "ops".into());
        match tasks
            .replace("q4-import", &PostParams::default(), &same)
            .await
        {
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            other => break other.expect("a replace keeping the creator"),
        }
    };
    assert_eq!(creator(&same), Some("alice"));
}

/// Binds a user outside the token file (reached by impersonation) to
/// `ferry-workspace-admin` in `ns`.
async fn bind_impersonated(ns: &str, user: &str) {
    let rb: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("ferry-workspace-admin-{user}"), "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ferry-workspace-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(client(User::Admin).await, ns)
        .create(&PostParams::default(), &rb)
        .await
        .unwrap();
}
