//! One control plane per test binary with the chart installed by the real
//! `helm install`, and the operator running as the chart's ServiceAccount.
//!
//! Everything people do in these tests goes through the RBAC objects and
//! admission policies the chart installed, and everything the operator does
//! goes through the operator's own ClusterRole: its client carries a token
//! of the ServiceAccount `ferry-system/ferry`, issued by the API server's
//! TokenRequest API (no kube-controller-manager needed).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ferry::testenv::{ControlPlane, Options, User};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

/// The release, its namespace and the operator's ServiceAccount.
pub const RELEASE: &str = "ferry";
pub const RELEASE_NS: &str = "ferry-system";
pub const OPERATOR_SA: &str = "ferry";

/// The annotation naming who created an ImportTask, which the chart's
/// policies set on CREATE and keep from changing.
pub const CREATED_BY: &str = ferry::controller::import::CREATED_BY;

/// The user name the API server gives the operator's ServiceAccount.
pub fn operator_user() -> String {
    format!("system:serviceaccount:{RELEASE_NS}:{OPERATOR_SA}")
}

pub struct Env {
    pub cp: ControlPlane,
    /// `helm install`'s output.
    pub install_output: String,
}

static ENV: OnceLock<Env> = OnceLock::new();
static OPERATOR: OnceLock<()> = OnceLock::new();

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tool(name: &str) -> PathBuf {
    let bin = ferry::testenv::tools_bin().expect("tools");
    let path = bin.join(name);
    assert!(path.exists(), "no {name} at {}", path.display());
    path
}

/// The shared control plane, started on first use, with the chart installed
/// and its admission policies in force.
pub fn env() -> &'static Env {
    ENV.get_or_init(|| {
        std::thread::spawn(|| {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let cp = ControlPlane::start(Options::default())
                    .await
                    .expect("starting the control plane");
                let chart = repo().join("charts/ferry");
                let mut args = vec![
                    "install",
                    RELEASE,
                    chart.to_str().unwrap(),
                    "-n",
                    RELEASE_NS,
                    "--create-namespace",
                    "--set",
                    "image.repository=ferry",
                    "--wait=false",
                ];
                // tests/tenancy: the chart without its admission policies,
                // where the operator alone enforces tenancy.
                if !crate::POLICIES {
                    args.extend(["--set", "admissionPolicy.enabled=false"]);
                }
                let out = helm(&cp, &args);
                let install_output = text(&out);
                assert!(
                    out.status.success(),
                    "helm install failed:\n{install_output}"
                );
                let env = Env { cp, install_output };
                if crate::POLICIES {
                    policies_in_force(&env).await;
                }
                env
            })
        })
        .join()
        .expect("control plane start panicked")
    })
}

pub fn cp() -> &'static ControlPlane {
    &env().cp
}

/// Runs the real `helm` against the control plane as the admin.
pub fn helm(cp: &ControlPlane, args: &[&str]) -> Output {
    let home = cp.dir().join("helm");
    Command::new(tool("helm"))
        .args(args)
        .arg("--kubeconfig")
        .arg(cp.kubeconfig(User::Admin))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("running helm")
}

/// Runs the real `kubectl` with `kubeconfig`.
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(tool("kubectl"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("running kubectl")
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A client acting as `user`, for the calling test's runtime.
pub async fn client(user: User) -> Client {
    cp().client(user).await.expect("client")
}

/// A client of a user outside the static token file: the admin
/// impersonating `user` in `groups`. RBAC and the admission policies see
/// the impersonated user, exactly as if it had logged in.
pub async fn impersonating(user: &str, groups: &[&str]) -> Client {
    let mut kc = kube::config::Kubeconfig::read_from(cp().kubeconfig(User::Admin)).unwrap();
    for auth in &mut kc.auth_infos {
        if let Some(info) = auth.auth_info.as_mut() {
            info.impersonate = Some(user.into());
            info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
        }
    }
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

async fn client_from(path: &Path) -> Client {
    let kc = kube::config::Kubeconfig::read_from(path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// A kubeconfig for the operator's ServiceAccount, with a token from
/// `kubectl create token` (the TokenRequest API).
fn operator_kubeconfig(cp: &ControlPlane) -> PathBuf {
    let out = kubectl(
        &cp.kubeconfig(User::Admin),
        &[
            "create",
            "token",
            OPERATOR_SA,
            "-n",
            RELEASE_NS,
            "--duration=2h",
        ],
    );
    assert!(out.status.success(), "kubectl create token: {}", text(&out));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: ferry-test\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n- name: operator\n  user:\n    token: {token}\ncontexts:\n- name: operator\n  context: {{cluster: ferry-test, user: operator}}\ncurrent-context: operator\n",
        server = cp.server,
        ca = cp.dir().join("certs/apiserver.crt").display(),
    );
    let path = cp.dir().join("operator.kubeconfig");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Starts the operator once, on its own thread and runtime, as the chart's
/// ServiceAccount.
pub fn operator() {
    OPERATOR.get_or_init(|| {
        let cp = cp();
        let kubeconfig = operator_kubeconfig(cp);
        let settings = ferry::operator::Settings {
            storage_dir: cp.dir().join("artifacts"),
            // The chart's Lease and its leader-election Role.
            leader_election: Some(ferry::operator::LeaderElection {
                namespace: RELEASE_NS.into(),
                lease_name: "ferry-leader".into(),
                identity: "ferry-access-test".into(),
            }),
            ..Default::default()
        };
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let client = client_from(&kubeconfig).await;
                ferry::operator::run(client, settings, std::future::pending())
                    .await
                    .expect("operator");
            })
        });
    });
}

/// Polls `name` until `ready` holds, or panics after `timeout` showing the
/// last state seen.
pub async fn wait_for<K, F>(api: &Api<K>, name: &str, timeout: Duration, ready: F) -> K
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    F: Fn(&K) -> bool,
{
    let deadline = Instant::now() + timeout;
    loop {
        let current = api.get_opt(name).await.expect("get");
        if let Some(obj) = current.as_ref().filter(|obj| ready(obj)) {
            return obj.clone();
        }
        if Instant::now() > deadline {
            panic!(
                "{name} did not reach the expected state within {timeout:?}; last seen: {current:#?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates namespace `ns` as the admin (if missing).
pub async fn namespace(ns: &str) {
    let api: Api<Namespace> = Api::all(client(User::Admin).await);
    if api.get_opt(ns).await.unwrap().is_none() {
        let obj = Namespace {
            metadata: ObjectMeta {
                name: Some(ns.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        api.create(&PostParams::default(), &obj).await.unwrap();
    }
}

/// Binds `user` to ClusterRole `role` in namespace `ns` with a RoleBinding,
/// as the chart's README shows.
pub async fn bind(ns: &str, role: &str, user: User) {
    let rb = RoleBinding {
        metadata: ObjectMeta {
            name: Some(format!("{role}-{}", user.name())),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: role.into(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "User".into(),
            name: user.name().into(),
            namespace: None,
        }]),
    };
    Api::<RoleBinding>::namespaced(client(User::Admin).await, ns)
        .create(&PostParams::default(), &rb)
        .await
        .unwrap();
}

/// What the API server answers when the client's user asks whether it may
/// `verb` `group/resource` (object `name`, any when empty) in `ns`
/// (SelfSubjectAccessReview).
pub async fn can(
    c: &Client,
    verb: &str,
    group: &str,
    resource: &str,
    ns: &str,
    name: &str,
) -> bool {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                namespace: Some(ns.into()),
                name: Some(name.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SelfSubjectAccessReview>::all(c.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    answer.status.is_some_and(|s| s.allowed)
}

/// Waits until a binding just made is seen by the authorizer (it reads
/// RBAC objects from an informer cache).
pub async fn wait_can(c: &Client, verb: &str, group: &str, resource: &str, ns: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !can(c, verb, group, resource, ns, "").await {
        assert!(
            Instant::now() < deadline,
            "never allowed to {verb} {resource}.{group} in {ns}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The API error of a request expected to be refused.
pub fn refusal<T: std::fmt::Debug>(result: kube::Result<T>, what: &str) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

/// Asserts `result` is RBAC's 403 for `user` and `verb` on `resource`.
pub fn assert_rbac_refused<T: std::fmt::Debug>(
    result: kube::Result<T>,
    user: User,
    verb: &str,
    resource: &str,
) {
    let what = format!("{} {verb} {resource}", user.name());
    let s = refusal(result, &what);
    assert_eq!(s.code, 403, "{what}: {s:?}");
    assert_eq!(s.reason, "Forbidden", "{what}: {s:?}");
    let expected = format!(
        "User \"{}\" cannot {verb} resource \"{resource}\"",
        user.name()
    );
    assert!(
        s.message.contains(&expected),
        "{what}: refused, but not by RBAC ({expected:?} missing): {}",
        s.message
    );
}

/// Asserts `result` is a refusal by the admission policy `policy` whose
/// message contains every one of `needles`.
pub fn assert_policy_refused<T: std::fmt::Debug>(
    result: kube::Result<T>,
    policy: &str,
    needles: &[&str],
) {
    let s = refusal(result, policy);
    assert_eq!(s.code, 403, "{s:?}");
    assert!(
        s.message
            .contains(&format!("ValidatingAdmissionPolicy '{policy}'")),
        "refused, but not by {policy}: {}",
        s.message
    );
    for needle in needles {
        assert!(
            s.message.contains(needle),
            "{policy}'s message lacks {needle:?}: {}",
            s.message
        );
    }
}

/// The API server loads admission policies from an informer: a policy just
/// installed is not enforced at once. Probe both reference policies with
/// dry-run requests of a workspace administrator until each refuses, and
/// the creator policy until a dry-run task claiming another creator comes
/// back with alice's name, so that tests see them in force.
async fn policies_in_force(env: &Env) {
    let admin = env.cp.client(User::Admin).await.unwrap();
    let ns = "access-probe";
    let nss: Api<Namespace> = Api::all(admin.clone());
    let obj = Namespace {
        metadata: ObjectMeta {
            name: Some(ns.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    nss.create(&PostParams::default(), &obj).await.unwrap();
    let rb: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "probe", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ferry-workspace-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(admin, ns)
        .create(&PostParams::default(), &rb)
        .await
        .unwrap();
    let alice = env.cp.client(User::WorkspaceAdmin).await.unwrap();
    wait_can(&alice, "create", "ferry.dev", "importtasks", ns).await;
    wait_can(&alice, "create", "ferry.dev", "migrationpackages", ns).await;
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let task: ferry::api::ImportTask = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ImportTask", "metadata": {"name": "probe"},
        "spec": {"importName": "probe", "packageRef": {"name": "p", "namespace": RELEASE_NS},
                 "computeResourceMapping": [{"source": "a", "destination": "b"}]}
    }))
    .unwrap();
    let pkg: ferry::api::MigrationPackage = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "MigrationPackage", "metadata": {"name": "probe"},
        "spec": {"source": {"secret": {"name": "probe", "key": "package.zip"}}}
    }))
    .unwrap();
    // A ConfigMap that is no package chunk.
    let plain: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "probe"}, "data": {"a": "b"}
    }))
    .unwrap();
    // A package of her own namespace (it need not exist: the policy asks
    // whether she may get it), and a claimed creator.
    let claimed: ferry::api::ImportTask = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ImportTask",
        "metadata": {"name": "probe-creator", "annotations": {CREATED_BY: "mallory"}},
        "spec": {"importName": "probe", "packageRef": {"name": "p"},
                 "computeResourceMapping": [{"source": "a", "destination": "b"}]}
    }))
    .unwrap();
    let tasks: Api<ferry::api::ImportTask> = Api::namespaced(alice.clone(), ns);
    let pkgs: Api<ferry::api::MigrationPackage> = Api::namespaced(alice.clone(), ns);
    let cms: Api<ConfigMap> = Api::namespaced(alice, ns);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = tasks.create(&dry, &task).await;
        let p = pkgs.create(&dry, &pkg).await;
        let c = tasks.create(&dry, &claimed).await;
        let m = cms.create(&dry, &plain).await;
        let creator = c
            .as_ref()
            .ok()
            .and_then(|t| t.metadata.annotations.as_ref())
            .and_then(|a| a.get(CREATED_BY))
            .cloned();
        if refused_by(&t, "ferry-importtask-references")
            && refused_by(&p, "ferry-migrationpackage-references")
            && refused_by(&m, "ferry-chunk-configmaps")
            && creator.as_deref() == Some(User::WorkspaceAdmin.name())
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the chart's admission policies are not in force after 60s: task {t:?}, package {p:?}, claimed creator {c:?}, plain ConfigMap {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn refused_by<T>(r: &kube::Result<T>, policy: &str) -> bool {
    matches!(r, Err(kube::Error::Api(s)) if s.message.contains(policy))
}
