//! The Helm chart in `charts/ferry`, checked with the real `helm` binary:
//! it lints, renders the expected objects, and its values schema refuses bad
//! values. Also: the chart's copies of the CRDs are the canonical ones.
//!
//! `helm` comes from `FERRY_TOOLS_BIN` or, when that is unset, from the
//! directory `hack/install-tools.sh` prints (built once, then cached).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde::Deserialize;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    repo().join("charts/ferry")
}

fn helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let bin = match std::env::var("FERRY_TOOLS_BIN") {
            Ok(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => {
                let out = Command::new("bash")
                    .arg(repo().join("hack/install-tools.sh"))
                    .output()
                    .expect("running hack/install-tools.sh");
                assert!(
                    out.status.success(),
                    "hack/install-tools.sh failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
            }
        };
        let helm = bin.join("helm");
        assert!(helm.exists(), "no helm at {}", helm.display());
        helm
    })
}

fn run_helm(args: &[&str]) -> Output {
    Command::new(helm())
        .args(args)
        // Keep helm away from the user's repositories, cache and plugins.
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("ferry-helm-test/cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("ferry-helm-test/config"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("ferry-helm-test/data"),
        )
        .output()
        .expect("running helm")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `helm template` with the release name and namespace a user would use.
fn template(extra: &[&str]) -> Output {
    let chart = chart();
    let mut args = vec![
        "template",
        "ferry",
        chart.to_str().unwrap(),
        "--namespace",
        "ferry-system",
        "--include-crds",
    ];
    args.extend_from_slice(extra);
    run_helm(&args)
}

/// Renders and parses every document.
fn render(extra: &[&str]) -> Vec<serde_json::Value> {
    let out = template(extra);
    assert!(
        out.status.success(),
        "helm template failed:\n{}",
        text(&out)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&stdout)
        .map(|doc| serde_json::Value::deserialize(doc).expect("rendered YAML parses"))
        .filter(|v| !v.is_null())
        .collect()
}

fn find<'a>(docs: &'a [serde_json::Value], kind: &str, name: &str) -> &'a serde_json::Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

fn kinds(docs: &[serde_json::Value]) -> BTreeSet<String> {
    docs.iter()
        .map(|d| d["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn chart_crds_are_the_canonical_crds() {
    let names = |dir: &Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .collect()
    };
    let canonical = repo().join("crds");
    let copies = chart().join("crds");
    let mut problems = Vec::new();
    let (want, have) = (names(&canonical), names(&copies));
    for missing in want.difference(&have) {
        problems.push(format!("charts/ferry/crds/{missing} is missing"));
    }
    for stray in have.difference(&want) {
        problems.push(format!(
            "charts/ferry/crds/{stray} has no counterpart in crds/ (remove it)"
        ));
    }
    for name in want.intersection(&have) {
        if std::fs::read(canonical.join(name)).unwrap() != std::fs::read(copies.join(name)).unwrap()
        {
            problems.push(format!("charts/ferry/crds/{name} differs from crds/{name}"));
        }
    }
    assert!(
        problems.is_empty(),
        "the chart's CRDs are out of sync with crds/:\n  {}\nsync them with `cp crds/*.yaml charts/ferry/crds/` \
         (and `rm` any stray file) and commit the result",
        problems.join("\n  ")
    );
}

#[test]
fn helm_lint_passes() {
    let out = run_helm(&["lint", "--strict", chart().to_str().unwrap()]);
    assert!(out.status.success(), "helm lint failed:\n{}", text(&out));
}

#[test]
fn template_renders_every_expected_kind() {
    let docs = render(&["--set", "image.repository=registry.example/ferry"]);
    let want: BTreeSet<String> = [
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "PersistentVolumeClaim",
        "Service",
        "Deployment",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let have = kinds(&docs);
    assert_eq!(
        have, want,
        "rendered kinds differ (the ServiceMonitor is off by default)"
    );
    let crds = docs
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .count();
    assert_eq!(crds, 10, "every Ferry CRD is installed");
    for name in [
        "ferry-operator",
        "ferry-workspace-admin",
        "ferry-workspace-viewer",
        "ferry-tenant-owner",
    ] {
        find(&docs, "ClusterRole", name);
    }
    for name in [
        "ferry-importtask-references",
        "ferry-migrationpackage-references",
        "ferry-chunk-configmaps",
        "ferry-operator-scope",
    ] {
        find(&docs, "ValidatingAdmissionPolicy", name);
        let binding = find(&docs, "ValidatingAdmissionPolicyBinding", name);
        assert_eq!(binding["spec"]["policyName"], name);
        assert_eq!(
            binding["spec"]["validationActions"],
            serde_json::json!(["Deny"])
        );
    }
}

#[test]
fn deployment_is_hardened_and_wired_to_the_operator_flags() {
    let docs = render(&["--set", "image.repository=registry.example/ferry"]);
    let deploy = find(&docs, "Deployment", "ferry");
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "ferry");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "registry.example/ferry:0.1.0");
    assert_eq!(c["command"], serde_json::json!(["/usr/local/bin/ferry"]));
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for want in [
        "run",
        "--log-format=text",
        "--metrics-bind-address=0.0.0.0:8080",
        "--health-bind-address=0.0.0.0:8081",
        "--artifact-bind-address=0.0.0.0:9090",
        "--storage-dir=/var/lib/ferry/artifacts",
    ] {
        assert!(args.contains(&want), "args {args:?} lack {want}");
    }
    assert!(
        !args.contains(&"--leader-elect"),
        "one replica needs no election"
    );
    let env: BTreeSet<&str> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for want in [
        "POD_NAME",
        "POD_NAMESPACE",
        "FERRY_LOG_FORMAT",
        "FERRY_WORKSPACE_SERVICE_ACCOUNT",
    ] {
        assert!(env.contains(want), "env lacks {want}");
    }
    let service = find(&docs, "Service", "ferry");
    let ports: BTreeSet<(String, u64)> = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["port"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        BTreeSet::from([("artifacts".into(), 9090), ("metrics".into(), 8080)])
    );
}

#[test]
fn more_than_one_replica_turns_leader_election_on() {
    let docs = render(&[
        "--set",
        "replicas=2",
        "--set",
        "persistence.accessModes={ReadWriteMany}",
        "--set",
        "logFormat=json",
    ]);
    let c = &find(&docs, "Deployment", "ferry")["spec"]["template"]["spec"]["containers"][0];
    let args = c["args"].as_array().unwrap();
    assert!(args.contains(&serde_json::json!("--leader-elect")));
    assert!(args.contains(&serde_json::json!("--log-format=json")));
    find(&docs, "Role", "ferry-leader-election");
}

#[test]
fn more_than_one_replica_on_a_read_write_once_store_is_refused() {
    let out = template(&["--set", "replicas=2"]);
    assert!(!out.status.success(), "rendered:\n{}", text(&out));
    assert!(
        text(&out).contains("ReadWriteMany"),
        "message says what to do:\n{}",
        text(&out)
    );
}

#[test]
fn options_render_what_they_promise() {
    let docs = render(&[
        "--set",
        "serviceMonitor.enabled=true",
        "--set",
        "persistence.existingClaim=my-artifacts",
        "--set",
        "admissionPolicy.enabled=false",
    ]);
    let have = kinds(&docs);
    assert!(have.contains("ServiceMonitor"));
    assert!(!have.contains("PersistentVolumeClaim"));
    assert!(!have.contains("ValidatingAdmissionPolicy"));
    let volumes = &find(&docs, "Deployment", "ferry")["spec"]["template"]["spec"]["volumes"];
    assert_eq!(
        volumes[0]["persistentVolumeClaim"]["claimName"],
        "my-artifacts"
    );
    let monitor = find(&docs, "ServiceMonitor", "ferry");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
}

/// Editors are not workspace administrators: ferry-workspace-admin joins the
/// built-in admin role, and edit only when asked; the operator impersonates
/// only the configured workspace identity.
#[test]
fn workspace_admin_is_aggregated_into_admin_not_edit_by_default() {
    let labels = |docs: &[serde_json::Value]| {
        find(docs, "ClusterRole", "ferry-workspace-admin")["metadata"]["labels"].clone()
    };
    let default = labels(&render(&[]));
    assert_eq!(
        default["rbac.authorization.k8s.io/aggregate-to-admin"],
        "true"
    );
    assert!(
        default
            .get("rbac.authorization.k8s.io/aggregate-to-edit")
            .is_none()
    );
    let edit = labels(&render(&["--set", "rbac.aggregateToEdit=true"]));
    assert_eq!(edit["rbac.authorization.k8s.io/aggregate-to-edit"], "true");

    let docs = render(&["--set", "tenancy.workspaceServiceAccount=tenant-id"]);
    let rules = find(&docs, "ClusterRole", "ferry-operator")["rules"]
        .as_array()
        .unwrap()
        .clone();
    let impersonate: Vec<_> = rules
        .iter()
        .filter(|r| {
            r["verbs"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("impersonate"))
        })
        .collect();
    assert_eq!(impersonate.len(), 1, "{rules:#?}");
    assert_eq!(
        impersonate[0]["resources"],
        serde_json::json!(["serviceaccounts"])
    );
    assert_eq!(
        impersonate[0]["resourceNames"],
        serde_json::json!(["tenant-id"])
    );
    assert!(
        !rules.iter().any(|r| r["resources"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("secrets"))),
        "no Secret rights: {rules:#?}"
    );
}

#[test]
fn values_schema_refuses_bad_values() {
    for (set, expect) in [
        ("replicas=0", "replicas"),
        ("replicas=1.5", "replicas"),
        ("logFormat=yaml", "logFormat"),
        ("persistence.size=lots", "size"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        (
            "admissionPolicy.validationActions={Allow}",
            "validationActions",
        ),
        ("unknownValue=1", "unknownValue"),
    ] {
        let out = template(&["--set", set]);
        let msg = text(&out);
        assert!(!out.status.success(), "--set {set} was accepted");
        assert!(
            msg.contains("values don't meet the specifications of the schema")
                && msg.contains(expect),
            "--set {set}: the error should be a schema error naming {expect}:\n{msg}"
        );
    }
}

/// Every rule of the operator's ClusterRole and Role is listed in the
/// chart's README, so the documented list and the granted list cannot drift.
#[test]
fn readme_documents_every_operator_permission() {
    let docs = render(&[]);
    let readme =
        std::fs::read_to_string(chart().join("README.md")).expect("charts/ferry/README.md");
    for (kind, name) in [
        ("ClusterRole", "ferry-operator"),
        ("Role", "ferry-leader-election"),
    ] {
        for rule in find(&docs, kind, name)["rules"].as_array().unwrap() {
            let list = |key: &str| -> Vec<String> {
                rule[key]
                    .as_array()
                    .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default()
            };
            for group in list("apiGroups") {
                for resource in list("resources") {
                    // `tenants/status` in `ferry.dev` is written `tenants.ferry.dev/status`.
                    let (base, sub) = match resource.split_once('/') {
                        Some((base, sub)) => (base.to_string(), format!("/{sub}")),
                        None => (resource.clone(), String::new()),
                    };
                    let qualified = if group.is_empty() {
                        resource.clone()
                    } else {
                        format!("{base}.{group}{sub}")
                    };
                    let row = readme
                        .lines()
                        .find(|l| {
                            // The first column names the resources of the row.
                            l.split('|')
                                .nth(1)
                                .is_some_and(|first| first.contains(&format!("`{qualified}`")))
                        })
                        .unwrap_or_else(|| {
                            panic!(
                                "README.md has no permission row for `{qualified}` ({kind} {name})"
                            )
                        });
                    for verb in list("verbs") {
                        assert!(
                            row.contains(&verb),
                            "README.md's row for `{qualified}` does not list verb {verb}: {row}"
                        );
                    }
                }
            }
        }
    }
}
