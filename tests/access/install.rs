//! `helm install` into the control plane, and what it installed.

use std::time::{Duration, Instant};

use ferry::testenv::User;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;

use crate::support::{
    OPERATOR_SA, RELEASE, RELEASE_NS, client, cp, env, helm, operator_user, text,
};

const POLICIES: [&str; 4] = [
    "ferry-importtask-references",
    "ferry-migrationpackage-references",
    "ferry-chunk-configmaps",
    "ferry-operator-scope",
];

#[tokio::test]
async fn helm_install_deploys_the_release() {
    let env = env();
    assert!(
        env.install_output.contains("STATUS: deployed"),
        "{}",
        env.install_output
    );
    let out = helm(cp(), &["status", RELEASE, "-n", RELEASE_NS, "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["info"]["status"], "deployed", "{status:#}");
}

#[tokio::test]
async fn every_crd_is_established() {
    env();
    let api: Api<CustomResourceDefinition> = Api::all(client(User::Admin).await);
    let deadline = Instant::now() + Duration::from_secs(60);
    for crd in ferry::api::all_crds() {
        let name = crd.metadata.name.unwrap();
        loop {
            let current = api
                .get_opt(&name)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("helm install did not create CRD {name}"));
            let established = current
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            assert!(Instant::now() < deadline, "CRD {name} not Established");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn managed_by_helm(meta: &kube::api::ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get("app.kubernetes.io/managed-by"))
        .is_some_and(|v| v == "Helm")
}

#[tokio::test]
async fn the_operator_objects_and_access_roles_exist() {
    env();
    let c = client(User::Admin).await;
    let roles: Api<ClusterRole> = Api::all(c.clone());
    for name in [
        "ferry-workspace-admin",
        "ferry-workspace-viewer",
        "ferry-tenant-owner",
        "ferry-operator",
    ] {
        let role = roles
            .get_opt(name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no ClusterRole {name}"));
        assert!(
            managed_by_helm(&role.metadata),
            "{name}: {:?}",
            role.metadata
        );
        assert!(
            !role.rules.unwrap_or_default().is_empty(),
            "{name} has rules"
        );
    }
    let crb = Api::<ClusterRoleBinding>::all(c.clone())
        .get("ferry-operator")
        .await
        .unwrap();
    assert_eq!(crb.role_ref.name, "ferry-operator");
    let subjects = crb.subjects.unwrap();
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(subjects[0].name, OPERATOR_SA);
    assert_eq!(subjects[0].namespace.as_deref(), Some(RELEASE_NS));

    Api::<ServiceAccount>::namespaced(c.clone(), RELEASE_NS)
        .get(OPERATOR_SA)
        .await
        .expect("the operator's ServiceAccount");
    Api::<Role>::namespaced(c.clone(), RELEASE_NS)
        .get("ferry-leader-election")
        .await
        .expect("the leader-election Role");
    let rb = Api::<RoleBinding>::namespaced(c.clone(), RELEASE_NS)
        .get("ferry-leader-election")
        .await
        .expect("the leader-election RoleBinding");
    assert_eq!(rb.subjects.unwrap()[0].name, OPERATOR_SA);
    let deploy = Api::<Deployment>::namespaced(c.clone(), RELEASE_NS)
        .get(RELEASE)
        .await
        .expect("the operator Deployment");
    let pod = deploy.spec.template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some(OPERATOR_SA));
    assert_eq!(pod.containers[0].image.as_deref(), Some("ferry:0.1.0"));
    Api::<Service>::namespaced(c.clone(), RELEASE_NS)
        .get(RELEASE)
        .await
        .expect("the operator Service");
    Api::<PersistentVolumeClaim>::namespaced(c, RELEASE_NS)
        .get("ferry-artifacts")
        .await
        .expect("the artifact store's claim");
}

#[tokio::test]
async fn admission_policies_are_installed_and_bound() {
    env();
    let c = client(User::Admin).await;
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(c.clone());
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(c);
    for name in POLICIES {
        let binding = bindings
            .get_opt(name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no ValidatingAdmissionPolicyBinding {name}"));
        let spec = binding.spec;
        assert_eq!(spec.policy_name, name);
        assert_eq!(spec.validation_actions, ["Deny"]);
        let policy = policies.get(name).await.unwrap();
        assert!(managed_by_helm(&policy.metadata));
        let spec = policy.spec.unwrap();
        assert_eq!(spec.failure_policy.as_deref(), Some("Fail"));
        // The operator's own updates are not checked again.
        let conditions = spec.match_conditions.unwrap_or_default();
        assert!(
            conditions
                .iter()
                .any(|c| c.expression.contains(&format!("'{}'", operator_user()))),
            "{name}: {conditions:?}"
        );
        // (The policy's status.typeChecking is written by
        // kube-controller-manager, which this control plane does not run;
        // the people tests show each validation at work.)
    }
}
