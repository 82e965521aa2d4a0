//! The operator's ServiceAccount holds exactly the permissions the chart's
//! README documents: every documented verb is allowed, every other verb on a
//! documented resource is refused, a sample of what it must never do is
//! refused, and `kubectl auth can-i --list` shows nothing undocumented.

use std::collections::{BTreeMap, BTreeSet};

use ferry::testenv::User;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;

use crate::support::{
    OPERATOR_SA, RELEASE_NS, client, cp, env, kubectl, operator_user, repo, text,
};

/// Every verb RBAC knows for resources, besides the special ones.
const VERBS: [&str; 8] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

/// A resource as `kubectl auth can-i --list` and the README name it:
/// `resource[.group][/subresource]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Res {
    group: String,
    resource: String,
    subresource: String,
}

impl Res {
    fn parse(name: &str) -> Res {
        let (main, sub) = name.split_once('/').unwrap_or((name, ""));
        let (resource, group) = main.split_once('.').unwrap_or((main, ""));
        Res {
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
        }
    }
}

/// The README's "Operator permissions" tables: (cluster-wide, in the
/// release namespace), resource name to verbs.
type Documented = BTreeMap<String, BTreeSet<String>>;

fn documented() -> (Documented, Documented) {
    let readme = std::fs::read_to_string(repo().join("charts/ferry/README.md")).unwrap();
    let start = readme.find("## Operator permissions").unwrap();
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").unwrap() + 3];
    let (cluster, namespaced) = section
        .split_once("In the release namespace only")
        .expect("the README's release-namespace table");
    let table = |text: &str| -> Documented {
        let mut out = Documented::new();
        for line in text.lines().filter(|l| l.starts_with("| `")) {
            let cols: Vec<&str> = line.split('|').map(str::trim).collect();
            let verbs: BTreeSet<String> = cols[2].split(", ").map(String::from).collect();
            for name in cols[1].split(", ") {
                let name = name.trim_matches('`').to_string();
                out.entry(name).or_default().extend(verbs.iter().cloned());
            }
        }
        assert!(!out.is_empty(), "no permission rows in:\n{text}");
        out
    };
    (table(cluster), table(namespaced))
}

/// May the operator's ServiceAccount `verb` `res` in `ns` (all namespaces
/// when empty), optionally one object `name`? Asked with a
/// SubjectAccessReview, as the API server's authorizer would decide.
async fn operator_may(c: &kube::Client, verb: &str, res: &Res, ns: &str, name: &str) -> bool {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(operator_user()),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{RELEASE_NS}"),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(res.group.clone()),
                resource: Some(res.resource.clone()),
                subresource: Some(res.subresource.clone()),
                namespace: Some(ns.into()),
                name: Some(name.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<SubjectAccessReview>::all(c.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap()
        .status
        .is_some_and(|s| s.allowed)
}

#[tokio::test]
async fn documented_cluster_permissions_are_granted_and_nothing_more() {
    env();
    let c = client(User::Admin).await;
    let (cluster, _) = documented();
    let mut wrong = Vec::new();
    for (name, verbs) in &cluster {
        let res = Res::parse(name);
        for verb in VERBS {
            let expected = verbs.contains(verb);
            // Cluster-wide: in every namespace, and in one picked at random.
            for ns in ["", "some-workspace"] {
                if operator_may(&c, verb, &res, ns, "").await != expected {
                    wrong.push(format!(
                        "{verb} {name} in {ns:?}: expected allowed={expected}"
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn leader_election_is_limited_to_its_lease_in_the_release_namespace() {
    env();
    let c = client(User::Admin).await;
    let (_, namespaced) = documented();
    assert_eq!(
        namespaced.keys().collect::<Vec<_>>(),
        ["leases.coordination.k8s.io"]
    );
    let leases = Res::parse("leases.coordination.k8s.io");
    let documented = &namespaced["leases.coordination.k8s.io"];
    assert_eq!(
        documented
            .iter()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        BTreeSet::from(["create", "get", "update", "patch"])
    );
    let mut wrong = Vec::new();
    for verb in VERBS {
        let cases = [
            // The Lease itself, in the release namespace.
            (RELEASE_NS, "ferry-leader", documented.contains(verb)),
            // Creating it: a create request has no name.
            (RELEASE_NS, "", verb == "create"),
            // Any other Lease there: only create, which RBAC cannot limit
            // to a name.
            (RELEASE_NS, "someone-elses-lease", verb == "create"),
            // Leases anywhere else.
            ("kube-system", "ferry-leader", false),
            ("", "", false),
        ];
        for (ns, name, expected) in cases {
            if operator_may(&c, verb, &leases, ns, name).await != expected {
                wrong.push(format!(
                    "{verb} lease {name:?} in {ns:?}: expected allowed={expected}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn what_the_operator_must_never_do_is_refused() {
    env();
    let c = client(User::Admin).await;
    let never: &[(&str, &str)] = &[
        // Ferry never deletes a workspace object nor its own resources.
        ("delete", "scheduledtasks.ferry.dev"),
        ("deletecollection", "tables.ferry.dev"),
        ("delete", "importtasks.ferry.dev"),
        ("delete", "migrationpackages.ferry.dev"),
        ("delete", "workspaces.ferry.dev"),
        ("create", "tenants.ferry.dev"),
        ("update", "workspaces.ferry.dev"),
        // No Secrets at all: they are read as the workspace identity.
        ("get", "secrets"),
        ("list", "secrets"),
        ("watch", "secrets"),
        ("create", "secrets"),
        ("update", "secrets"),
        ("delete", "secrets"),
        // No workloads.
        ("get", "pods"),
        ("create", "pods"),
        ("create", "pods/exec"),
        ("get", "pods/log"),
        ("create", "deployments.apps"),
        ("update", "deployments.apps"),
        ("create", "jobs.batch"),
        ("get", "persistentvolumeclaims"),
        ("get", "nodes"),
        // No RBAC, no escalation, no impersonation, no tokens.
        ("create", "clusterroles.rbac.authorization.k8s.io"),
        ("escalate", "clusterroles.rbac.authorization.k8s.io"),
        ("bind", "clusterroles.rbac.authorization.k8s.io"),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
        ("create", "rolebindings.rbac.authorization.k8s.io"),
        ("bind", "roles.rbac.authorization.k8s.io"),
        ("impersonate", "users"),
        ("impersonate", "groups"),
        ("impersonate", "serviceaccounts"),
        ("create", "serviceaccounts/token"),
        ("create", "serviceaccounts"),
        // No webhooks, policies or CRDs.
        (
            "delete",
            "validatingadmissionpolicies.admissionregistration.k8s.io",
        ),
        (
            "update",
            "validatingadmissionpolicybindings.admissionregistration.k8s.io",
        ),
        (
            "create",
            "mutatingwebhookconfigurations.admissionregistration.k8s.io",
        ),
        ("update", "customresourcedefinitions.apiextensions.k8s.io"),
        // Namespaces are created and labelled, never deleted or replaced.
        ("delete", "namespaces"),
        ("update", "namespaces"),
        ("update", "namespaces/finalize"),
    ];
    let mut wrong = Vec::new();
    for (verb, name) in never {
        for ns in ["", "some-workspace", RELEASE_NS] {
            if operator_may(&c, verb, &Res::parse(name), ns, "").await {
                wrong.push(format!("{verb} {name} in {ns:?} is allowed"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The operator impersonates workspace identities (`<ns>/ferry-workspace`)
/// and nobody else: not another ServiceAccount of the same namespace, not
/// its own, not a user or a group.
#[tokio::test]
async fn the_operator_impersonates_only_workspace_identities() {
    env();
    let c = client(User::Admin).await;
    let sa = Res::parse("serviceaccounts");
    for ns in ["some-workspace", "kube-system", RELEASE_NS] {
        assert!(
            operator_may(&c, "impersonate", &sa, ns, "ferry-workspace").await,
            "{ns}"
        );
        for other in ["default", OPERATOR_SA, "ferry-workspace-x"] {
            assert!(
                !operator_may(&c, "impersonate", &sa, ns, other).await,
                "impersonate {ns}/{other} is allowed"
            );
        }
    }
    for (res, name) in [("users", "admin"), ("groups", "system:masters")] {
        assert!(
            !operator_may(&c, "impersonate", &Res::parse(res), "", name).await,
            "{res}"
        );
    }
}

/// A row of `kubectl auth can-i --list`: resource, non-resource URLs,
/// resource names, verbs.
type Row = (String, String, String, BTreeSet<String>);

/// `kubectl auth can-i --list --as=USER -n NS`, as the admin: one row per
/// (resource, resource names, non-resource URLs) with its verbs.
fn can_i_list(user: &str, ns: &str) -> (String, BTreeSet<Row>) {
    let out = kubectl(
        &cp().kubeconfig(User::Admin),
        &["auth", "can-i", "--list", &format!("--as={user}"), "-n", ns],
    );
    assert!(out.status.success(), "{}", text(&out));
    let listing = String::from_utf8(out.stdout).unwrap();
    let mut rows = BTreeSet::new();
    for line in listing.lines().skip(1) {
        // Resources   Non-Resource URLs   Resource Names   Verbs
        let (resource, rest) = match line.find('[') {
            Some(i) => (line[..i].trim(), &line[i..]),
            None => panic!("unexpected line {line:?} in\n{listing}"),
        };
        // `[]` `[ferry-leader]` `[get update patch]`
        let brackets: Vec<&str> = rest
            .split('[')
            .skip(1)
            .map(|s| s.split(']').next().unwrap_or_default())
            .collect();
        assert_eq!(brackets.len(), 3, "unexpected line {line:?} in\n{listing}");
        let verbs = brackets[2].split_whitespace().map(String::from).collect();
        rows.insert((
            resource.to_string(),
            brackets[0].to_string(),
            brackets[1].to_string(),
            verbs,
        ));
    }
    (listing, rows)
}

#[tokio::test]
async fn kubectl_auth_can_i_list_shows_only_documented_permissions() {
    env();
    let (cluster, namespaced) = documented();
    for ns in ["some-workspace", RELEASE_NS] {
        // What every ServiceAccount may do by Kubernetes' default roles
        // (discovery, self reviews, cluster trust bundles, ...): a
        // ServiceAccount of the same namespace that nothing binds.
        let (_, baseline) = can_i_list(&format!("system:serviceaccount:{RELEASE_NS}:nobody"), ns);
        let (listing, rows) = can_i_list(&operator_user(), ns);
        let mut seen = BTreeSet::new();
        for row in rows.difference(&baseline) {
            let (resource, urls, _names, verbs) = row;
            assert!(
                !resource.is_empty(),
                "{OPERATOR_SA} in {ns}: non-resource URLs {urls} beyond the defaults\n{listing}"
            );
            let allowed = cluster
                .get(resource)
                .into_iter()
                .chain(if ns == RELEASE_NS {
                    namespaced.get(resource)
                } else {
                    None
                })
                .flatten()
                .cloned()
                .collect::<BTreeSet<String>>();
            assert!(
                verbs.is_subset(&allowed) && !verbs.is_empty(),
                "{OPERATOR_SA} in {ns}: {resource} {verbs:?} is not documented (README: {allowed:?})\n{listing}"
            );
            seen.insert(resource.to_string());
        }
        // And everything documented shows up.
        let mut expected: BTreeSet<String> = cluster.keys().cloned().collect();
        if ns == RELEASE_NS {
            expected.extend(namespaced.keys().cloned());
        }
        assert_eq!(seen, expected, "{listing}");
    }
}

fn refused<T>(r: &kube::Result<T>) -> bool {
    matches!(r, Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("ferry-operator-scope"))
}

/// `ferry-operator-scope` narrows the operator's cluster-wide ConfigMap and
/// Namespace verbs: ConfigMaps only in workspace namespaces, a namespace
/// created only with the workspace label, no other label changed. Tried as
/// the operator's ServiceAccount (the admin impersonating it), dry-run.
#[tokio::test]
async fn the_operator_writes_configmaps_only_in_workspace_namespaces() {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use kube::api::{Patch, PatchParams};
    env();
    let admin = client(User::Admin).await;
    crate::support::namespace("scope-plain").await;
    crate::support::namespace("scope-ws").await;
    let label = Patch::Merge(
        serde_json::json!({"metadata": {"labels": {"ferry.dev/workspace": "scope-ws"}}}),
    );
    Api::<Namespace>::all(admin.clone())
        .patch("scope-ws", &PatchParams::default(), &label)
        .await
        .unwrap();
    let operator = crate::support::impersonating(
        &operator_user(),
        &[
            "system:serviceaccounts",
            &format!("system:serviceaccounts:{RELEASE_NS}"),
            "system:authenticated",
        ],
    )
    .await;
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let cm: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "report"}})).unwrap();
    // The policy is loaded from an informer: wait until it refuses.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let r: kube::Result<ConfigMap> = Api::namespaced(operator.clone(), "scope-plain")
            .create(&dry, &cm)
            .await;
        if refused(&r) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not refused: {r:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Api::<ConfigMap>::namespaced(operator.clone(), "scope-ws")
        .create(&dry, &cm)
        .await
        .expect("a ConfigMap in a workspace namespace");
    let namespaces: Api<Namespace> = Api::all(operator.clone());
    let plain: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "scope-new"}})).unwrap();
    assert!(refused(&namespaces.create(&dry, &plain).await));
    let labelled: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "scope-new", "labels": {"ferry.dev/workspace": "w"}}
    }))
    .unwrap();
    namespaces
        .create(&dry, &labelled)
        .await
        .expect("a workspace namespace");
    let dry_patch = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    let psa = Patch::Merge(
        serde_json::json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}),
    );
    assert!(refused(
        &namespaces.patch("scope-ws", &dry_patch, &psa).await
    ));
    // Never a system namespace or its own, even by its label alone: the
    // operator could otherwise label kube-system first and write there next.
    let adopt =
        Patch::Merge(serde_json::json!({"metadata": {"labels": {"ferry.dev/workspace": "w"}}}));
    for ns in ["kube-system", RELEASE_NS] {
        assert!(
            refused(&namespaces.patch(ns, &dry_patch, &adopt).await),
            "{ns} labelled"
        );
        let r: kube::Result<ConfigMap> = Api::namespaced(operator.clone(), ns)
            .create(&dry, &cm)
            .await;
        assert!(refused(&r), "ConfigMap in {ns}: {r:?}");
    }
    let relabel =
        Patch::Merge(serde_json::json!({"metadata": {"labels": {"ferry.dev/workspace": "other"}}}));
    namespaces
        .patch("scope-ws", &dry_patch, &relabel)
        .await
        .expect("the workspace label itself");
}
