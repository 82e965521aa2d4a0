//! A real control plane on loopback: etcd and kube-apiserver, started the way
//! controller-runtime's envtest does, for the integration tests and for
//! `ferry-dev up`. Not used by the operator itself.
//!
//! Processes are started under a small guard (`bash`) that holds a pipe from
//! this process: when this process ends, however it ends (a test panics, the
//! runner is killed), the pipe closes and the guard stops its child and
//! removes the work directory. No process outlives the run.

pub mod faults;
pub mod operator_process;
pub mod serve;

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

/// The users of the static token file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum User {
    /// `admin`, in `system:masters`: may do anything.
    Admin,
    /// `alice`: a workspace administrator, once bound to `ferry-workspace-admin`.
    WorkspaceAdmin,
    /// `victor`: a viewer, once bound to `ferry-workspace-viewer`.
    Viewer,
}

impl User {
    pub const ALL: [User; 3] = [User::Admin, User::WorkspaceAdmin, User::Viewer];

    /// The user name the API server sees.
    pub fn name(self) -> &'static str {
        match self {
            User::Admin => "admin",
            User::WorkspaceAdmin => "alice",
            User::Viewer => "victor",
        }
    }

    fn groups(self) -> &'static str {
        match self {
            User::Admin => "system:masters",
            User::WorkspaceAdmin => "ferry:workspace-admins",
            User::Viewer => "ferry:viewers",
        }
    }
}

/// A running etcd and kube-apiserver.
pub struct ControlPlane {
    dir: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub server: String,
    /// Keeps the guards' pipes open; dropping them stops the processes.
    guards: Vec<Child>,
    keep_dir: bool,
}

/// Where the control plane's binaries are: `FERRY_TOOLS_BIN`, or whatever
/// `hack/install-tools.sh` prints (it builds them once and caches them).
pub fn tools_bin() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("FERRY_TOOLS_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("hack/install-tools.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed; see its output above", script.display());
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The guard: runs "$@", stops it when stdin reaches end of file, then
/// removes `FERRY_GUARD_CLEANUP` if set.
const GUARD: &str = r#"
exec 3<&0
"$@" </dev/null &
child=$!
( read -r _ <&3; kill -TERM "$child" 2>/dev/null; sleep 10; kill -KILL "$child" 2>/dev/null ) &
watcher=$!
wait "$child"; status=$?
kill "$watcher" 2>/dev/null
if [ -n "${FERRY_GUARD_CLEANUP:-}" ]; then rm -rf "$FERRY_GUARD_CLEANUP"; fi
exit "$status"
"#;

fn spawn_guarded(
    program: &Path,
    args: &[String],
    log: &Path,
    cleanup: Option<&Path>,
) -> anyhow::Result<Child> {
    let log = fs::File::create(log)?;
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(GUARD)
        .arg("ferry-guard")
        .arg(program)
        .args(args);
    cmd.stdin(Stdio::piped())
        .stdout(log.try_clone()?)
        .stderr(log);
    if let Some(dir) = cleanup {
        cmd.env("FERRY_GUARD_CLEANUP", dir);
    }
    cmd.spawn()
        .with_context(|| format!("starting {}", program.display()))
}

/// Options for [`ControlPlane::start`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Work directory; a fresh temporary one when `None`. A given directory
    /// is kept after stop (for `ferry-dev`, whose kubeconfig lives there).
    pub dir: Option<PathBuf>,
    /// Fixed apiserver port; a free one when `None`.
    pub port: Option<u16>,
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver, waits for `/readyz`, and writes a
    /// kubeconfig per [`User`].
    pub async fn start(opts: Options) -> anyhow::Result<Self> {
        let bin = tools_bin()?;
        let keep_dir = opts.dir.is_some();
        let dir = match opts.dir {
            Some(d) => d,
            None => std::env::temp_dir().join(format!(
                "ferry-cp-{}-{}",
                std::process::id(),
                free_port()?
            )),
        };
        fs::create_dir_all(dir.join("certs"))?;
        let etcd_port = free_port()?;
        let peer_port = free_port()?;
        let port = match opts.port {
            Some(p) => p,
            None => free_port()?,
        };

        // Fresh random tokens per run, even on loopback.
        let mut tokens = String::new();
        for user in User::ALL {
            tokens.push_str(&format!(
                "{},{},{},\"{}\"\n",
                random_token()?,
                user.name(),
                user.name(),
                user.groups()
            ));
        }
        fs::write(dir.join("tokens.csv"), &tokens)?;
        let sa_key = dir.join("sa.key");
        let status = Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&sa_key)
            .arg("2048")
            .stderr(Stdio::null())
            .status()
            .context("running openssl to make the service-account signing key")?;
        if !status.success() {
            bail!("openssl genrsa failed");
        }

        let mut guards = Vec::new();
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let etcd_args: Vec<String> = vec![
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=default={peer_url}"),
            // Tests never need durability across a machine crash.
            "--unsafe-no-fsync".into(),
            // The benchmark writes and deletes tens of thousands of objects
            // per writer; etcd's default 2 GiB quota would be the first
            // limit it met, not the apiserver.
            "--quota-backend-bytes=8589934592".into(),
            "--log-level=warn".into(),
        ];
        let cleanup = (!keep_dir).then_some(dir.as_path());
        guards.push(spawn_guarded(
            &bin.join("etcd"),
            &etcd_args,
            &dir.join("etcd.log"),
            cleanup,
        )?);

        let apiserver_args: Vec<String> = vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", dir.join("certs").display()),
            format!("--token-auth-file={}", dir.join("tokens.csv").display()),
            "--authorization-mode=RBAC".into(),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", sa_key.display()),
            format!("--service-account-signing-key-file={}", sa_key.display()),
            "--allow-privileged=true".into(),
            // The endpoint reconciler refuses loopback advertise addresses;
            // nothing here needs the `kubernetes` Service's endpoints.
            "--endpoint-reconciler-type=none".into(),
            "--v=0".into(),
        ];
        guards.push(spawn_guarded(
            &bin.join("kube-apiserver"),
            &apiserver_args,
            &dir.join("kube-apiserver.log"),
            None,
        )?);

        let mut cp = ControlPlane {
            dir,
            server: format!("https://127.0.0.1:{port}"),
            guards,
            keep_dir,
        };
        for (i, user) in User::ALL.into_iter().enumerate() {
            let token = tokens
                .lines()
                .nth(i)
                .and_then(|l| l.split(',').next())
                .unwrap_or_default();
            cp.write_kubeconfig(user, token)?;
        }
        cp.wait_ready().await?;
        Ok(cp)
    }

    /// The work directory (logs, certificates, kubeconfigs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The kubeconfig file of `user`.
    pub fn kubeconfig(&self, user: User) -> PathBuf {
        self.dir.join(format!("{}.kubeconfig", user.name()))
    }

    fn write_kubeconfig(&self, user: User, token: &str) -> anyhow::Result<()> {
        let ca = self.dir.join("certs/apiserver.crt");
        let yaml = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: ferry-test\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n- name: {name}\n  user:\n    token: {token}\ncontexts:\n- name: {name}@ferry-test\n  context:\n    cluster: ferry-test\n    user: {name}\n    namespace: default\ncurrent-context: {name}@ferry-test\n",
            server = self.server,
            ca = ca.display(),
            name = user.name(),
        );
        let path = self.kubeconfig(user);
        let mut f = fs::File::create(&path)?;
        f.write_all(yaml.as_bytes())?;
        Ok(())
    }

    /// A client acting as `user`.
    pub async fn client(&self, user: User) -> anyhow::Result<Client> {
        let kubeconfig = Kubeconfig::read_from(self.kubeconfig(user))?;
        let config =
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(Client::try_from(config)?)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut last = String::new();
        loop {
            // The serving certificate only exists once the apiserver wrote it.
            if self.dir.join("certs/apiserver.crt").exists() {
                match self.client(User::Admin).await {
                    Ok(client) => {
                        let req = http::Request::get("/readyz").body(Vec::new())?;
                        match client.request_text(req).await {
                            Ok(body) if body.trim() == "ok" => return Ok(()),
                            Ok(body) => last = body,
                            Err(e) => last = e.to_string(),
                        }
                    }
                    Err(e) => last = e.to_string(),
                }
            }
            for (guard, name) in self.guards.iter_mut().zip(["etcd", "kube-apiserver"]) {
                if let Some(status) = guard.try_wait()? {
                    let log = fs::read_to_string(self.dir.join(format!("{name}.log")))
                        .unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(5).collect();
                    bail!(
                        "{name} exited ({status}) before the control plane was ready; last log lines:\n{}",
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "kube-apiserver not ready after 120s (last: {last}); logs in {}",
                    self.dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Installs `crds` with server-side apply and waits until each is Established.
    pub async fn install_crds(&self, crds: &[CustomResourceDefinition]) -> anyhow::Result<()> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client(User::Admin).await?);
        let params = PatchParams::apply("ferry-testenv").force();
        for crd in crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            api.patch(&name, &params, &Patch::Apply(crd))
                .await
                .with_context(|| format!("applying CRD {name}"))?;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        for crd in crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            loop {
                let current = api.get(&name).await?;
                let established = current
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                if established {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("CRD {name} not Established after 60s");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // Closing the guards' stdin stops the processes; the etcd guard
        // removes a temporary work directory once etcd has exited.
        for guard in &mut self.guards {
            drop(guard.stdin.take());
        }
        for guard in self.guards.iter_mut().rev() {
            let _ = guard.wait();
        }
        if !self.keep_dir {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    use std::io::Read;
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Builders the test binaries share: tenants and workspaces named after the
/// fixture generator's development resources (`ferry_package::fixtures`)
/// and their production counterparts, so every mapping has work to do.
pub mod fixtures {
    use std::time::{Duration, Instant};

    use kube::api::PostParams;
    use kube::{Api, Client};

    use crate::api::*;

    /// A workspace spec with the fixture generator's development compute
    /// resources and resource groups (what packages it generates use).
    pub fn development_workspace(tenant: &str, ns: &str) -> WorkspaceSpec {
        WorkspaceSpec {
            compute_resources: ferry_package::fixtures::COMPUTE
                .iter()
                .map(|(name, type_, ..)| ComputeResource {
                    name: name.to_string(),
                    type_: type_.to_string(),
                    project: None,
                })
                .collect(),
            resource_groups: ferry_package::fixtures::RESOURCE_GROUPS
                .iter()
                .map(|g| ResourceGroup {
                    name: g.to_string(),
                    type_: ResourceGroupType::Serverless,
                })
                .collect(),
            ..production_workspace(tenant, ns)
        }
    }

    /// A workspace spec whose compute resources and resource group have
    /// production names: `sales_mc_prod` (MaxCompute), `sales_holo`
    /// (Hologres), `sales_emr` (EMR), `serverless_default`.
    pub fn production_workspace(tenant: &str, ns: &str) -> WorkspaceSpec {
        WorkspaceSpec {
            tenant: tenant.into(),
            namespace: ns.into(),
            project_name: ns.replace('-', "_"),
            region: Some("cn-shanghai".into()),
            mode: WorkspaceMode::Standard,
            compute_resources: vec![
                ComputeResource {
                    name: "sales_mc_prod".into(),
                    type_: "MaxCompute".into(),
                    project: Some("sales_prod_mc".into()),
                },
                ComputeResource {
                    name: "sales_holo".into(),
                    type_: "Hologres".into(),
                    project: None,
                },
                ComputeResource {
                    name: "sales_emr".into(),
                    type_: "EMR".into(),
                    project: None,
                },
            ],
            resource_groups: vec![ResourceGroup {
                name: "serverless_default".into(),
                type_: ResourceGroupType::Serverless,
            }],
            default_resource_group: None,
        }
    }

    /// Creates a ConfigMap `<name>-zip` holding `bytes` and a MigrationPackage
    /// `name` whose source is that ConfigMap (a local upload).
    pub async fn config_map_package(c: &Client, ns: &str, name: &str, bytes: Vec<u8>) {
        use std::collections::BTreeMap;

        use k8s_openapi::ByteString;
        use k8s_openapi::api::core::v1::ConfigMap;
        use kube::api::ObjectMeta;

        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(format!("{name}-zip")),
                ..Default::default()
            },
            binary_data: Some(BTreeMap::from([(
                "package.zip".to_string(),
                ByteString(bytes),
            )])),
            ..Default::default()
        };
        Api::<ConfigMap>::namespaced(c.clone(), ns)
            .create(&PostParams::default(), &cm)
            .await
            .expect("create ConfigMap");
        let pkg: MigrationPackage = serde_json::from_value(serde_json::json!({
            "apiVersion": "ferry.dev/v1alpha1", "kind": "MigrationPackage", "metadata": {"name": name},
            "spec": {"source": {"configMap": {"name": format!("{name}-zip"), "key": "package.zip"}}}
        }))
        .expect("a well-formed package");
        Api::<MigrationPackage>::namespaced(c.clone(), ns)
            .create(&PostParams::default(), &pkg)
            .await
            .expect("create package");
    }

    /// An ImportTask that maps every compute resource and resource group of
    /// the fixtures, and commits tables to production too, so that on a
    /// Professional tenant every object ends Deployed.
    pub fn full_import_task(name: &str, package: &str) -> ImportTask {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "ferry.dev/v1alpha1", "kind": "ImportTask",
            "metadata": {"name": name, "annotations": {"ferry.dev/created-by": "7654321"}},
            "spec": {
                "importName": "sales.resume_import",
                "packageRef": {"name": package},
                "computeResourceMapping": [
                    {"source": "sales_mc_dev", "destination": "sales_mc_prod"},
                    {"source": "sales_holo_dev", "destination": "sales_holo"},
                    {"source": "sales_emr_dev", "destination": "sales_emr"}
                ],
                "resourceGroupMapping": [
                    {"source": "dev_serverless", "destination": "serverless_default"},
                    {"source": "dev_exclusive_01", "destination": "serverless_default"}
                ],
                "dependencyMapping": [{"sourceProject": "sales_dev", "newProject": "sales_prod"}],
                "committingRules": {"tables": {"development": true, "production": true}}
            }
        }))
        .expect("a well-formed import task")
    }

    /// Creates the tenant unless it exists.
    pub async fn ensure_tenant(c: &Client, name: &str, edition: Edition) {
        let tenants: Api<Tenant> = Api::all(c.clone());
        if tenants.get_opt(name).await.expect("get tenant").is_none() {
            let tenant = Tenant::new(
                name,
                TenantSpec {
                    edition,
                    display_name: None,
                },
            );
            tenants
                .create(&PostParams::default(), &tenant)
                .await
                .expect("create tenant");
        }
    }

    /// Creates the workspace and waits until a running operator reports it Ready.
    pub async fn ready_workspace(c: &Client, name: &str, spec: WorkspaceSpec) {
        let api: Api<Workspace> = Api::all(c.clone());
        api.create(&PostParams::default(), &Workspace::new(name, spec))
            .await
            .expect("create workspace");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ws = api.get(name).await.expect("get workspace");
            if ws.status.is_some_and(|s| {
                crate::conditions::is_true(&s.conditions, crate::conditions::READY)
            }) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "workspace {name} not Ready within 60s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// As an administrator of namespace `ns`: lets the workspace identity of
    /// namespace `from` (the ServiceAccount `<from>/ferry-workspace`, which
    /// the operator impersonates for it; docs/tenancy.md) `verbs` the
    /// `resources` of API `group` there, only those `names` when given. A
    /// Role and a RoleBinding, both named `name`.
    pub async fn grant_identity(
        c: &Client,
        ns: &str,
        from: &str,
        name: &str,
        rule: (&str, &[&str], &[&str], &[&str]),
    ) {
        use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
        let (group, resources, verbs, names) = rule;
        let mut rule =
            serde_json::json!({"apiGroups": [group], "resources": resources, "verbs": verbs});
        if !names.is_empty() {
            rule["resourceNames"] = serde_json::json!(names);
        }
        let role: Role = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns}, "rules": [rule]
        }))
        .expect("a Role");
        let binding: RoleBinding = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount",
                          "name": crate::controller::tenancy::DEFAULT_WORKSPACE_SERVICE_ACCOUNT,
                          "namespace": from}]
        }))
        .expect("a RoleBinding");
        Api::<Role>::namespaced(c.clone(), ns)
            .create(&PostParams::default(), &role)
            .await
            .expect("creating the Role");
        Api::<RoleBinding>::namespaced(c.clone(), ns)
            .create(&PostParams::default(), &binding)
            .await
            .expect("creating the RoleBinding");
    }
}
