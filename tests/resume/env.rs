//! This binary's own control plane, the operator as a child process, and
//! the helpers the scenarios share: a destination workspace, a package
//! served over HTTP from 127.0.0.1, the import task, and listing what landed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ferry::api::*;
use ferry::conditions::{self, READY};
use ferry::testenv::operator_process::OperatorProcess;
use ferry::testenv::{ControlPlane, Options, User};
use ferry_package::ObjectType;
use ferry_package::fixtures::FixtureSpec;
use kube::api::{DynamicObject, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};

static CONTROL_PLANE: OnceLock<ControlPlane> = OnceLock::new();

/// The control plane of this binary, started on first use with Ferry's
/// CRDs installed. Started on a thread of its own so that it belongs to no
/// test's runtime. No operator runs unless a scenario starts one.
pub fn control_plane() -> &'static ControlPlane {
    CONTROL_PLANE.get_or_init(|| {
        std::thread::spawn(|| {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let cp = ControlPlane::start(Options::default())
                    .await
                    .expect("starting the control plane");
                cp.install_crds(&ferry::api::all_crds())
                    .await
                    .expect("installing CRDs");
                cp
            })
        })
        .join()
        .expect("control plane start panicked")
    })
}

pub async fn admin() -> Client {
    control_plane().client(User::Admin).await.expect("client")
}

// ------------------------------------------------------ the operator ----

/// The real `ferry run` binary as a child process, against the admin
/// kubeconfig.
pub struct Operator(OperatorProcess);

impl Operator {
    /// Starts `ferry run --storage-dir <storage>`, logging to `log`.
    pub fn start(storage: &Path, log: &Path) -> Operator {
        let kubeconfig = control_plane().kubeconfig(User::Admin);
        Operator(
            OperatorProcess::start(
                Path::new(env!("CARGO_BIN_EXE_ferry")),
                &kubeconfig,
                storage,
                log,
            )
            .expect("starting the operator"),
        )
    }

    /// SIGKILL: no shutdown, no last status write.
    pub fn kill(self) {
        self.0.kill().expect("killing the operator");
    }

    /// The last lines of the operator's log, for failure messages.
    pub fn tail(&self, n: usize) -> String {
        self.0.tail(n)
    }
}

// ------------------------------------------------------- the import ----

/// A tenant and a Ready destination workspace (namespace = `ws`) whose
/// compute resources and resource group have production names, so the
/// mappings have work to do. Needs a running operator.
pub async fn destination(c: &Client, tenant: &str, edition: Edition, ws: &str) {
    use ferry::testenv::fixtures;
    fixtures::ensure_tenant(c, tenant, edition).await;
    fixtures::ready_workspace(c, ws, fixtures::production_workspace(tenant, ws)).await;
}

/// Serves `body` at `http://127.0.0.1:<port>/package.zip`; returns the URL.
pub async fn serve(body: Vec<u8>) -> String {
    ferry::testenv::serve::serve(body)
        .await
        .expect("serving the package")
}

/// A MigrationPackage `name` in `ns` fetched from `url`; returns once it is
/// verified (Ready), panicking with its status if it is refused.
pub async fn package_from_url(c: &Client, ns: &str, name: &str, url: &str) -> MigrationPackage {
    let pkg: MigrationPackage = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "MigrationPackage", "metadata": {"name": name},
        "spec": {"source": {"url": {"url": url}}}
    }))
    .unwrap();
    let api = Api::<MigrationPackage>::namespaced(c.clone(), ns);
    api.create(&PostParams::default(), &pkg).await.unwrap();
    let p = wait_for(&api, name, Duration::from_secs(180), |p| {
        p.status.as_ref().is_some_and(|s| {
            conditions::is_true(&s.conditions, READY)
                || conditions::is_true(&s.conditions, conditions::STALLED)
        })
    })
    .await;
    let status = p.status.clone().unwrap_or_default();
    assert!(
        conditions::is_true(&status.conditions, READY),
        "package {ns}/{name} from {url} was not verified: {:#?}",
        status.conditions
    );
    p
}

/// The shared ImportTask with every mapping (`testenv::fixtures`).
pub fn task(name: &str, package: &str) -> ImportTask {
    ferry::testenv::fixtures::full_import_task(name, package)
}

pub fn finished(t: &ImportTask) -> bool {
    t.status
        .as_ref()
        .is_some_and(|s| s.phase.is_terminal() && s.observed_generation == t.metadata.generation)
}

/// Polls `name` until `ready` holds; panics after `timeout` with the last
/// state seen.
pub async fn wait_for<K, F>(api: &Api<K>, name: &str, timeout: Duration, ready: F) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
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

// ------------------------------------------------ what the import made ----

pub const KINDS: [ObjectType; 6] = ObjectType::IMPORT_ORDER;

pub use ferry::controller::import::api_resource;

/// One workspace object as the checks see it.
#[derive(Clone, Debug)]
pub struct Landed {
    pub kube_name: String,
    pub real_name: String,
    pub uid: String,
    pub generation: Option<i64>,
    pub state: Option<String>,
}

/// Every object of the six kinds in `ns`, by type (paged lists).
pub async fn landed(c: &Client, ns: &str) -> BTreeMap<ObjectType, Vec<Landed>> {
    let mut out = BTreeMap::new();
    for t in KINDS {
        let api: Api<DynamicObject> = Api::namespaced_with(c.clone(), ns, &api_resource(t));
        let mut items = Vec::new();
        let mut params = ListParams::default().limit(500);
        loop {
            let page = api.list(&params).await.expect("list");
            for o in &page.items {
                let field = |section: &str, key: &str| {
                    o.data
                        .get(section)
                        .and_then(|s| s.get(key))
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                };
                items.push(Landed {
                    kube_name: o.name_any(),
                    real_name: field("spec", "name").unwrap_or_default(),
                    uid: o.uid().unwrap_or_default(),
                    generation: o.metadata.generation,
                    state: field("status", "state"),
                });
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
        out.insert(t, items);
    }
    out
}

/// The package's real names by type.
pub fn planned(fixture: &FixtureSpec) -> BTreeMap<ObjectType, Vec<String>> {
    let mut out: BTreeMap<ObjectType, Vec<String>> = KINDS.iter().map(|t| (*t, vec![])).collect();
    for o in fixture.objects() {
        out.entry(o.object_type).or_default().push(o.name);
    }
    out
}

/// Zero duplicates and zero missing: per type, every planned real name
/// exists exactly once, under its deterministic kube name, and nothing else
/// exists. Returns the problems found (empty when all is well).
pub fn duplicates_and_missing(
    planned: &BTreeMap<ObjectType, Vec<String>>,
    landed: &BTreeMap<ObjectType, Vec<Landed>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for t in KINDS {
        let want = &planned[&t];
        let have = &landed[&t];
        let mut seen: HashMap<&str, Vec<&str>> = HashMap::new();
        for o in have {
            seen.entry(o.real_name.as_str())
                .or_default()
                .push(o.kube_name.as_str());
        }
        let dups: Vec<String> = seen
            .iter()
            .filter(|(_, k)| k.len() > 1)
            .map(|(n, k)| format!("{n} as {k:?}"))
            .collect();
        let missing: Vec<&String> = want
            .iter()
            .filter(|n| !seen.contains_key(n.as_str()))
            .collect();
        let extra: Vec<&str> = seen
            .keys()
            .filter(|n| !want.iter().any(|w| w == *n))
            .copied()
            .collect();
        let misnamed: Vec<String> = have
            .iter()
            .filter(|o| o.kube_name != ferry_engine::naming::kube_name(t, &o.real_name))
            .map(|o| format!("{} as {}", o.real_name, o.kube_name))
            .collect();
        if have.len() != want.len() {
            problems.push(format!(
                "{}: {} objects, the package has {}",
                t.as_str(),
                have.len(),
                want.len()
            ));
        }
        for (what, list) in [
            ("duplicated", dups),
            (
                "missing",
                missing.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            ),
            (
                "not in the package",
                extra.iter().map(|s| s.to_string()).collect(),
            ),
            ("not under their deterministic name", misnamed),
        ] {
            if !list.is_empty() {
                problems.push(format!(
                    "{}: {} {what}, first: {:?}",
                    t.as_str(),
                    list.len(),
                    &list[..list.len().min(5)]
                ));
            }
        }
    }
    problems
}

/// Objects per second, for the closing note.
pub fn rate(objects: usize, elapsed: Duration) -> f64 {
    objects as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// `PhaseTiming`s as `Phase 1.2s, ...`.
pub fn phase_durations(status: &ImportTaskStatus) -> String {
    status
        .phase_timings
        .iter()
        .map(|t| {
            let d = t
                .completed_at
                .as_ref()
                .map(|end| {
                    let ms = end.0.as_millisecond() - t.started_at.0.as_millisecond();
                    format!("{:.1}s", ms as f64 / 1000.0)
                })
                .unwrap_or_else(|| "-".into());
            format!("{:?} {d}", t.phase)
        })
        .collect::<Vec<_>>()
        .join(", ")
}
