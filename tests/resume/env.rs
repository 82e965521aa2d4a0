//! This binary's own control plane, the operator as a child process, and
//! the helpers the scenarios share: a destination workspace, a package
//! served over HTTP from 127.0.0.1, the import task, and listing what landed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ferry::api::*;
use ferry::conditions::{self, READY};
use ferry::testenv::{ControlPlane, Options, User};
use ferry_package::ObjectType;
use ferry_package::fixtures::FixtureSpec;
use kube::api::{ApiResource, DynamicObject, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// Runs "$@" and writes its pid to `FERRY_PID_FILE`; kills it when stdin
/// reaches end of file (this test process ended, however it ended), so no
/// operator outlives the run.
const GUARD: &str = r#"
exec 3<&0
"$@" </dev/null &
child=$!
echo "$child" > "$FERRY_PID_FILE"
( read -r _ <&3; kill -KILL "$child" 2>/dev/null ) &
watcher=$!
wait "$child"; status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

/// The real `ferry run` binary as a child process.
pub struct Operator {
    guard: Child,
    pid: u32,
    pub log: PathBuf,
}

impl Operator {
    /// Starts `ferry run --storage-dir <storage>` against the admin
    /// kubeconfig, logging (RUST_LOG=info) to `log`.
    pub fn start(storage: &Path, log: &Path) -> Operator {
        let cp = control_plane();
        let pid_file = log.with_extension("pid");
        let _ = std::fs::remove_file(&pid_file);
        let out = std::fs::File::create(log).expect("operator log");
        let guard = Command::new("bash")
            .arg("-c")
            .arg(GUARD)
            .arg("ferry-operator-guard")
            .arg(env!("CARGO_BIN_EXE_ferry"))
            .arg("run")
            .arg("--storage-dir")
            .arg(storage)
            .env("KUBECONFIG", cp.kubeconfig(User::Admin))
            .env("RUST_LOG", "info")
            // Not the defaults (0.0.0.0:8080 and 8081): other test runs on
            // this machine may hold them.
            .env("FERRY_METRICS_BIND_ADDRESS", "127.0.0.1:0")
            .env("FERRY_HEALTH_BIND_ADDRESS", "127.0.0.1:0")
            .env("FERRY_ARTIFACT_BIND_ADDRESS", "127.0.0.1:0")
            .env("FERRY_PID_FILE", &pid_file)
            .stdin(Stdio::piped())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("starting the operator");
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
            {
                break pid;
            }
            assert!(Instant::now() < deadline, "the operator guard wrote no pid");
            std::thread::sleep(Duration::from_millis(20));
        };
        Operator {
            guard,
            pid,
            log: log.to_path_buf(),
        }
    }

    /// SIGKILL: no shutdown, no last status write.
    pub fn kill(mut self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -KILL {} failed", self.pid);
        // The guard exits once its child is gone.
        let _ = self.guard.wait();
    }

    /// The last lines of the operator's log, for failure messages.
    pub fn tail(&self, n: usize) -> String {
        tail(&self.log, n)
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        // Closing the guard's stdin kills the operator (no-op after `kill`).
        drop(self.guard.stdin.take());
        let _ = self.guard.wait();
    }
}

pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
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

/// Serves `body` at `http://127.0.0.1:<port>/package.zip` from the calling
/// runtime (HTTP/1.1, one request per connection); returns the URL.
pub async fn serve(body: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = Arc::new(body);
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or_default();
                let (status, payload): (&str, &[u8]) = if path == "/package.zip" {
                    ("200 OK", &body)
                } else {
                    ("404 Not Found", b"not here")
                };
                let header = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/zip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    payload.len()
                );
                let _ = conn.write_all(header.as_bytes()).await;
                let _ = conn.write_all(payload).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    format!("http://127.0.0.1:{port}/package.zip")
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

/// An ImportTask that maps every compute resource and resource group of
/// the fixtures, and commits tables to production too, so that on a
/// Professional tenant every object ends Deployed.
pub fn task(name: &str, package: &str) -> ImportTask {
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
    .unwrap()
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

pub fn api_resource(t: ObjectType) -> ApiResource {
    match t {
        ObjectType::FileResource => ApiResource::erase::<FileResource>(&()),
        ObjectType::Function => ApiResource::erase::<Function>(&()),
        ObjectType::Table => ApiResource::erase::<Table>(&()),
        ObjectType::ScheduledTask => ApiResource::erase::<ScheduledTask>(&()),
        ObjectType::ServiceApi => ApiResource::erase::<ServiceApi>(&()),
        ObjectType::QualityRule => ApiResource::erase::<QualityRule>(&()),
    }
}

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
