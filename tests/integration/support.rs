//! One control plane and one operator per test binary, shared by its tests.
//!
//! Measured on the 2-core machine: starting etcd + kube-apiserver and
//! installing the CRDs takes several seconds, so the tests of this binary
//! share one control plane and isolate themselves by name (each test uses
//! its own tenants, workspaces and namespaces). The operator runs once, on
//! its own thread and runtime, exactly as it runs in a cluster.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ferry::testenv::{ControlPlane, Options, User};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

static CONTROL_PLANE: OnceLock<ControlPlane> = OnceLock::new();
static OPERATOR: OnceLock<()> = OnceLock::new();
static ARTIFACT_PORT: OnceLock<u16> = OnceLock::new();
static METRICS_PORT: OnceLock<u16> = OnceLock::new();

/// The in-process operator's metrics, as served on `/metrics`.
#[allow(dead_code)]
pub async fn metrics() -> String {
    operator();
    let port = *METRICS_PORT.get().expect("operator started");
    reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("metrics endpoint")
        .text()
        .await
        .expect("metrics text")
}

/// The port of the in-process operator's artifact endpoint.
#[allow(dead_code)]
pub fn artifact_port() -> u16 {
    operator();
    *ARTIFACT_PORT.get().expect("operator started")
}

/// The bearer token of `user`, from its kubeconfig.
#[allow(dead_code)]
pub fn token(user: User) -> String {
    let kubeconfig = std::fs::read_to_string(control_plane().kubeconfig(user)).unwrap();
    kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap()
        .to_string()
}

/// The shared control plane, started on first use with Ferry's CRDs installed.
pub fn control_plane() -> &'static ControlPlane {
    CONTROL_PLANE.get_or_init(|| {
        // Started on a thread of its own: tests run on their own runtimes,
        // and the control plane must not belong to any one of them.
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

/// Starts the operator once for this test binary.
pub fn operator() {
    OPERATOR.get_or_init(|| {
        // The operator's logs, when asked for (FERRY_TEST_LOG=debug ...).
        if let Ok(filter) = std::env::var("FERRY_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let cp = control_plane();
        let kubeconfig = cp.kubeconfig(User::Admin);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        ARTIFACT_PORT.set(port).unwrap();
        let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        METRICS_PORT.set(metrics_port).unwrap();
        let settings = ferry::operator::Settings {
            storage_dir: cp.dir().join("artifacts"),
            artifact_addr: Some(([127, 0, 0, 1], port).into()),
            metrics_addr: Some(([127, 0, 0, 1], metrics_port).into()),
            artifact_base_url: None,
            // The tests serve packages from 127.0.0.1.
            source_network: ferry::operator::SourceNetwork {
                allow_private: true,
                ..Default::default()
            },
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

async fn client_from(path: &std::path::Path) -> Client {
    let kc = kube::config::Kubeconfig::read_from(path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// A client acting as `user`, for the calling test's runtime.
pub async fn client(user: User) -> Client {
    control_plane().client(user).await.expect("client")
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

/// Creates a tenant and a Ready workspace named after the fixture
/// generator's development resources, whose objects live in namespace `ns`.
#[allow(dead_code)]
pub async fn tenant_and_workspace(
    c: &Client,
    tenant: &str,
    edition: ferry::api::Edition,
    ws: &str,
    ns: &str,
) {
    use ferry::testenv::fixtures;
    fixtures::ensure_tenant(c, tenant, edition).await;
    operator();
    fixtures::ready_workspace(c, ws, fixtures::development_workspace(tenant, ns)).await;
}

pub use ferry::testenv::fixtures::grant_identity;

/// Lets namespace `ns`'s workspace identity read its Secret `name` (the
/// operator reads a package's Secrets only as that identity).
pub async fn grant_secret(c: &Client, ns: &str, name: &str) {
    grant_identity(
        c,
        ns,
        ns,
        &format!("ferry-reads-{name}"),
        ("", &["secrets"], &["get"], &[name]),
    )
    .await;
}

/// Lets packages of namespace `from` export the workspace of namespace `ns`
/// (its identity administers `ns`: may create ImportTasks there).
pub async fn grant_export(c: &Client, ns: &str, from: &str) {
    grant_identity(
        c,
        ns,
        from,
        &format!("ferry-{from}-exports"),
        ("ferry.dev", &["importtasks"], &["create"], &[]),
    )
    .await;
}

/// Lets ImportTasks of namespace `from` read the packages of namespace `ns`.
pub async fn grant_packages(c: &Client, ns: &str, from: &str) {
    grant_identity(
        c,
        ns,
        from,
        &format!("ferry-{from}-reads-packages"),
        ("ferry.dev", &["migrationpackages"], &["get"], &[]),
    )
    .await;
}
