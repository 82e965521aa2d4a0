//! What the operator reaches, and what reaches it, with the operator run as
//! in production (no `--allow-private-sources`) against a real control
//! plane:
//! - URL and object-store sources that lead to the apiserver on loopback,
//!   the metadata service or a local name are refused with a clear reason,
//!   and no connection is made;
//! - the artifact endpoint answers a large unauthenticated PUT before
//!   reading its body, refuses a declared oversize body before reading it,
//!   and serves TLS with a certificate from files.

use std::io::{Read, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ferry::api::*;
use ferry::conditions::{self, READY, STALLED};
use ferry::testenv::{ControlPlane, Options, User, fixtures};
use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};

static CONTROL_PLANE: OnceLock<ControlPlane> = OnceLock::new();
static ARTIFACT_PORT: OnceLock<u16> = OnceLock::new();

const WAIT: Duration = Duration::from_secs(60);
/// How often a package answers a download request, in this binary.
const DOWNLOAD_INTERVAL: Duration = Duration::from_secs(3);

fn control_plane() -> &'static ControlPlane {
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

/// Starts the operator once, with production defaults for sources and the
/// artifact endpoint; returns the endpoint's port.
fn operator() -> u16 {
    *ARTIFACT_PORT.get_or_init(|| {
        let cp = control_plane();
        let kubeconfig = cp.kubeconfig(User::Admin);
        let port = free_port();
        let settings = ferry::operator::Settings {
            storage_dir: cp.dir().join("artifacts"),
            artifact_addr: Some(([127, 0, 0, 1], port).into()),
            download_interval: Some(DOWNLOAD_INTERVAL),
            ..Default::default()
        };
        assert!(!settings.source_network.allow_private);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let client = client_from(&kubeconfig).await;
                ferry::operator::run(client, settings, std::future::pending())
                    .await
                    .expect("operator");
            })
        });
        port
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn client_from(path: &std::path::Path) -> Client {
    let kc = kube::config::Kubeconfig::read_from(path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

async fn admin() -> Client {
    control_plane().client(User::Admin).await.expect("client")
}

/// The admin's bearer token, from its kubeconfig.
fn admin_token() -> String {
    let kubeconfig = std::fs::read_to_string(control_plane().kubeconfig(User::Admin)).unwrap();
    kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap()
        .to_string()
}

async fn workspace(c: &Client, tenant: &str, ns: &str) {
    fixtures::ensure_tenant(c, tenant, Edition::Professional).await;
    operator();
    fixtures::ready_workspace(c, ns, fixtures::development_workspace(tenant, ns)).await;
}

/// Creates a package with `source`, waits until it settles, returns the
/// Ready condition's reason and message.
async fn settle(c: &Client, ns: &str, name: &str, source: serde_json::Value) -> (String, String) {
    let api: Api<MigrationPackage> = Api::namespaced(c.clone(), ns);
    let pkg: MigrationPackage = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "MigrationPackage",
        "metadata": {"name": name}, "spec": {"source": source}
    }))
    .unwrap();
    api.create(&PostParams::default(), &pkg).await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let p = api.get(name).await.unwrap();
        if let Some(s) = &p.status
            && s.observed_generation == p.metadata.generation
            && (conditions::is_true(&s.conditions, READY)
                || conditions::is_true(&s.conditions, STALLED))
        {
            let ready = conditions::find(&s.conditions, READY).unwrap();
            assert!(s.artifact.is_none(), "{name} was stored: {s:#?}");
            return (ready.reason.clone(), ready.message.clone());
        }
        assert!(Instant::now() < deadline, "{name} did not settle: {p:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sources_leading_into_the_cluster_or_the_machine_are_refused_without_the_flag() {
    let c = admin().await;
    let ns = "net-src";
    workspace(&c, "t-net-src", ns).await;
    let apiserver = control_plane().server.clone();

    // A listener on loopback that must never see a connection.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let trap_port = trap.local_addr().unwrap().port();

    let cases = [
        (
            "apiserver",
            serde_json::json!({"url": {"url": format!("{apiserver}/api/v1/namespaces/kube-system/secrets")}}),
            "127.0.0.1 is a loopback address",
        ),
        (
            "trap",
            serde_json::json!({"url": {"url": format!("http://127.0.0.1:{trap_port}/p.zip")}}),
            "127.0.0.1 is a loopback address",
        ),
        (
            "localhost",
            serde_json::json!({"url": {"url": format!("http://localhost:{trap_port}/p.zip")}}),
            "localhost is a cluster-internal or local host name",
        ),
        (
            "metadata",
            serde_json::json!({"url": {"url": "http://169.254.169.254/latest/meta-data/iam/"}}),
            "169.254.169.254 is a link-local address",
        ),
        (
            "metadata-v6",
            serde_json::json!({"url": {"url": "http://[fd00:ec2::254]/latest/meta-data/"}}),
            "is a unique-local (private) address",
        ),
        (
            "service",
            serde_json::json!({"url": {"url": "https://kubernetes.default.svc/api"}}),
            "kubernetes.default.svc is a cluster-internal or local host name",
        ),
        (
            "store",
            serde_json::json!({"objectStore": {
                "endpoint": format!("http://127.0.0.1:{trap_port}"), "bucket": "pkgs",
                "key": "q4.zip", "pathStyle": true
            }}),
            "spec.source.objectStore.endpoint",
        ),
    ];
    for (name, source, says) in cases {
        let (reason, message) = settle(&c, ns, name, source).await;
        eprintln!("{name}: {reason}: {message}");
        assert_eq!(reason, "SourceNotAllowed", "{name}: {message}");
        assert!(message.contains(says), "{name}: {message}");
        assert!(
            message.contains("--allow-private-sources"),
            "{name}: the message names the flag: {message}"
        );
        assert!(!message.contains("answered"), "{name}: {message}");
    }
    match trap.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the operator connected to a refused address: {other:?}"),
    }
}

/// The resident set of this process (the operator runs in it), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Sends a PUT announcing `declared` bytes with `token`, then streams zeros
/// until the server answers or stops reading. Returns the status code and
/// how many body bytes went out before the answer.
fn put_until_answered(port: u16, path: &str, token: Option<&str>, declared: u64) -> (u16, u64) {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        conn,
        "PUT {path} HTTP/1.1\r\nHost: ferry\r\n{auth}Content-Type: application/zip\r\nContent-Length: {declared}\r\n\r\n"
    )
    .unwrap();
    let mut reader = conn.try_clone().unwrap();
    let answer = std::thread::spawn(move || {
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&head).to_string()
    });
    let piece = vec![0u8; 1 << 20];
    let mut sent = 0u64;
    while sent < declared && !answer.is_finished() {
        match conn.write(&piece[..piece.len().min((declared - sent) as usize)]) {
            Ok(n) => sent += n as u64,
            Err(_) => break,
        }
    }
    let head = answer.join().unwrap();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {head:?}"));
    (code, sent)
}

#[tokio::test]
async fn a_large_unauthenticated_put_is_refused_before_its_body_is_read() {
    let c = admin().await;
    let ns = "net-put";
    workspace(&c, "t-net-put", ns).await;
    let port = operator();
    const DECLARED: u64 = 200 * 1024 * 1024;

    let before = rss_kib();
    let (code, sent) = tokio::task::spawn_blocking(move || {
        put_until_answered(port, &format!("/packages/{ns}/big"), None, DECLARED)
    })
    .await
    .unwrap();
    let after = rss_kib();
    eprintln!(
        "unauthenticated PUT of {DECLARED} bytes: answered {code} after {sent} body bytes were sent; RSS {before} KiB -> {after} KiB"
    );
    assert_eq!(code, 401);
    // What the socket buffers took before the answer came: far from all.
    assert!(
        sent < DECLARED / 4,
        "{sent} bytes went out before the answer"
    );
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );

    // Authorized, but announcing more than the edition's local-upload
    // limit: refused from the header, before the body.
    let token = admin_token();
    let (code, sent) = tokio::task::spawn_blocking(move || {
        put_until_answered(port, &format!("/packages/{ns}/big"), Some(&token), DECLARED)
    })
    .await
    .unwrap();
    eprintln!("authorized PUT declaring {DECLARED} bytes: answered {code} after {sent} body bytes");
    assert_eq!(code, 413);
    assert!(
        sent < DECLARED / 4,
        "{sent} bytes went out before the answer"
    );

    // A path that is not a namespace and a name: refused before any review.
    let (code, _) = tokio::task::spawn_blocking(move || {
        put_until_answered(port, "/packages/Not_A_Namespace/x", None, 10)
    })
    .await
    .unwrap();
    assert_eq!(code, 400);
}

#[tokio::test]
async fn the_artifact_endpoint_serves_tls_with_a_certificate_from_files() {
    let cp = control_plane();
    operator();
    // The apiserver's self-signed serving certificate (for 127.0.0.1) and
    // key stand in for the chart's Secret.
    let cert = cp.dir().join("certs/apiserver.crt");
    let key = cp.dir().join("certs/apiserver.key");
    let settings = ferry::artifact_server::ServerSettings {
        tls: Some((cert.clone(), key)),
        ..Default::default()
    };
    let guard = settings.guard().expect("TLS configuration from the files");
    let client = admin().await;
    let store = ferry::artifact::ArtifactStore::open(cp.dir().join("tls-artifacts")).unwrap();
    let ctx = std::sync::Arc::new(ferry::controller::Context::new(
        client,
        store,
        None,
        Default::default(),
    ));
    let port = free_port();
    let routes = ferry::artifact_server::routes(ctx, settings);
    tokio::spawn(ferry::server::serve_guarded(
        ([127, 0, 0, 1], port).into(),
        routes,
        guard,
    ));

    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let https = reqwest::Client::builder()
        .tls_certs_merge([ca])
        .no_proxy()
        .build()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let answer = loop {
        match https
            .get(format!("https://127.0.0.1:{port}/packages/net-tls/q4"))
            .send()
            .await
        {
            Ok(r) => break r,
            Err(e) if Instant::now() < deadline && e.is_connect() => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("HTTPS request failed: {e:?}"),
        }
    };
    assert_eq!(
        answer.status(),
        401,
        "over TLS, the endpoint asks for a token"
    );

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let err = plain
        .get(format!("http://127.0.0.1:{port}/packages/net-tls/q4"))
        .send()
        .await;
    assert!(err.is_err(), "plain HTTP was answered: {err:?}");
}

/// A token for ServiceAccount `sa` in `ns`, requested for `audiences`
/// (empty: the apiserver's own).
async fn service_account_token(c: &Client, ns: &str, sa: &str, audiences: &[&str]) -> String {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: (!audiences.is_empty())
                .then(|| audiences.iter().map(|a| a.to_string()).collect()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let answer: TokenRequest = Api::<ServiceAccount>::namespaced(c.clone(), ns)
        .create_subresource("token", sa, &PostParams::default(), &request)
        .await
        .unwrap();
    answer.status.unwrap().token.unwrap()
}

#[tokio::test]
async fn with_audiences_set_only_tokens_for_them_are_accepted() {
    use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
    let cp = control_plane();
    let c = admin().await;
    let ns = "net-aud";
    Api::<Namespace>::all(c.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
    Api::<ServiceAccount>::namespaced(c.clone(), ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "uploader"}})).unwrap(),
        )
        .await
        .unwrap();
    let for_ferry = service_account_token(&c, ns, "uploader", &["ferry"]).await;
    let for_apiserver = service_account_token(&c, ns, "uploader", &[]).await;

    let settings = ferry::artifact_server::ServerSettings {
        audiences: vec!["ferry".into()],
        ..Default::default()
    };
    let guard = settings.guard().unwrap();
    let store = ferry::artifact::ArtifactStore::open(cp.dir().join("aud-artifacts")).unwrap();
    let ctx = std::sync::Arc::new(ferry::controller::Context::new(
        c.clone(),
        store,
        None,
        Default::default(),
    ));
    let port = free_port();
    tokio::spawn(ferry::server::serve_guarded(
        ([127, 0, 0, 1], port).into(),
        ferry::artifact_server::routes(ctx, settings),
        guard,
    ));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = |token: String| {
        let http = http.clone();
        async move {
            let deadline = Instant::now() + WAIT;
            loop {
                match http
                    .get(format!("http://127.0.0.1:{port}/packages/{ns}/q4"))
                    .bearer_auth(&token)
                    .send()
                    .await
                {
                    Ok(r) => {
                        let code = r.status().as_u16();
                        return (code, r.text().await.unwrap());
                    }
                    Err(e) if e.is_connect() && Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("{e:?}"),
                }
            }
        }
    };
    // The admin's static token and a token for the apiserver: not for us.
    for token in [admin_token(), for_apiserver] {
        let (code, text) = get(token).await;
        assert_eq!(code, 401, "{text}");
        assert!(text.contains("for audience ferry"), "{text}");
    }
    // A token for "ferry": authenticated; the ServiceAccount may not read
    // packages, so the SubjectAccessReview refuses it.
    let (code, text) = get(for_ferry).await;
    assert_eq!(code, 403, "{text}");
    assert!(
        text.contains("system:serviceaccount:net-aud:uploader may not get migrationpackages"),
        "{text}"
    );
}

#[tokio::test]
async fn a_package_keeps_one_set_of_download_chunks_and_answers_at_most_once_an_interval() {
    use ferry::controller::chunks;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{ListParams, Patch, PatchParams};

    let c = admin().await;
    let ns = "net-dl";
    workspace(&c, "t-net-dl", ns).await;
    let bytes = ferry_package::fixtures::FixtureSpec::new()
        .tasks(3)
        .to_bytes();
    fixtures::config_map_package(&c, ns, "q4", bytes).await;
    let packages: Api<MigrationPackage> = Api::namespaced(c.clone(), ns);
    let deadline = Instant::now() + WAIT;
    while !packages
        .get("q4")
        .await
        .unwrap()
        .status
        .is_some_and(|s| conditions::is_true(&s.conditions, READY))
    {
        assert!(Instant::now() < deadline, "q4 not Ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let request = |value: &'static str| {
        let packages = packages.clone();
        async move {
            let patch = serde_json::json!({"metadata": {"annotations": {chunks::DOWNLOAD_REQUESTED: value}}});
            packages
                .patch("q4", &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
    };
    let answered = |value: &'static str| {
        let packages = packages.clone();
        async move {
            let deadline = Instant::now() + WAIT;
            loop {
                let p = packages.get("q4").await.unwrap();
                let download = p.status.and_then(|s| s.download);
                if let Some(d) = download.filter(|d| d.request == value) {
                    assert_eq!(d.message, None, "{d:?}");
                    return (Instant::now(), d.chunks);
                }
                assert!(Instant::now() < deadline, "request {value} not answered");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), ns);
    let sets = || {
        let cms = cms.clone();
        async move {
            let listed = cms
                .list_metadata(
                    &ListParams::default().labels(&format!("{}=q4", chunks::DOWNLOAD_LABEL)),
                )
                .await
                .unwrap();
            let mut by_request: std::collections::BTreeMap<String, u32> = Default::default();
            for m in listed.items {
                let id = m
                    .labels()
                    .get(chunks::DOWNLOAD_REQUEST_LABEL)
                    .cloned()
                    .unwrap_or_default();
                *by_request.entry(id).or_default() += 1;
            }
            by_request
        }
    };

    request("first").await;
    let (first_at, first_chunks) = answered("first").await;
    assert_eq!(
        sets().await,
        [(chunks::request_id("first"), first_chunks)].into()
    );
    // A second request right away waits out the interval, then replaces
    // the first set: one set at a time.
    request("second").await;
    let (second_at, second_chunks) = answered("second").await;
    let gap = second_at - first_at;
    eprintln!("second request answered {gap:?} after the first (interval {DOWNLOAD_INTERVAL:?})");
    assert!(
        gap >= DOWNLOAD_INTERVAL - Duration::from_millis(500),
        "answered {gap:?} after the first"
    );
    assert_eq!(
        sets().await,
        [(chunks::request_id("second"), second_chunks)].into()
    );
}

#[tokio::test]
async fn garbage_collection_keeps_the_artifacts_packages_name() {
    let c = admin().await;
    let ns = "net-gc";
    workspace(&c, "t-net-gc", ns).await;
    let bytes = ferry_package::fixtures::FixtureSpec::new()
        .seed(4242)
        .tasks(2)
        .to_bytes();
    fixtures::config_map_package(&c, ns, "kept", bytes).await;
    let packages: Api<MigrationPackage> = Api::namespaced(c.clone(), ns);
    let deadline = Instant::now() + WAIT;
    let digest = loop {
        let status = packages.get("kept").await.unwrap().status;
        if let Some(a) = status.and_then(|s| s.artifact) {
            break a.digest;
        }
        assert!(Instant::now() < deadline, "kept not stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Read from the real apiserver: packages and (unfinished) import tasks.
    let keep = ferry::operator::in_use(&c).await.unwrap();
    assert!(keep.contains(&digest), "{digest} not kept: {keep:?}");
    packages.delete("kept", &Default::default()).await.unwrap();
    let deadline = Instant::now() + WAIT;
    while packages.get_opt("kept").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "kept not deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let keep = ferry::operator::in_use(&c).await.unwrap();
    assert!(
        !keep.contains(&digest),
        "{digest} still kept after its package went"
    );
}
