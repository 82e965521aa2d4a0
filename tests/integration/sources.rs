//! Remote MigrationPackage sources against real servers on loopback: an
//! HTTP server started by the test for URL sources, and moto's S3 server
//! (PyPI `moto[server]`) for object-store sources.

use std::collections::BTreeMap;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ferry::api::*;
use ferry::conditions::{self, READY, STALLED};
use ferry::testenv::User;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use object_store::ObjectStoreExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{client, tenant_and_workspace, wait_for};

const WAIT: Duration = Duration::from_secs(60);

fn package(name: &str, source: serde_json::Value) -> MigrationPackage {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "MigrationPackage",
        "metadata": {"name": name}, "spec": {"source": source}
    }))
    .unwrap()
}

fn settled(p: &MigrationPackage) -> bool {
    p.status.as_ref().is_some_and(|s| {
        s.observed_generation == p.metadata.generation
            && (conditions::is_true(&s.conditions, READY)
                || conditions::is_true(&s.conditions, STALLED))
    })
}

async fn secret(c: &Client, ns: &str, name: &str, data: &[(&str, &str)]) {
    let s = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    };
    Api::<Secret>::namespaced(c.clone(), ns)
        .create(&PostParams::default(), &s)
        .await
        .unwrap();
    crate::support::grant_secret(c, ns, name).await;
}

/// Creates the package, waits until it settles, returns its status.
async fn settle(
    c: &Client,
    ns: &str,
    name: &str,
    source: serde_json::Value,
) -> MigrationPackageStatus {
    let api: Api<MigrationPackage> = Api::namespaced(c.clone(), ns);
    api.create(&PostParams::default(), &package(name, source))
        .await
        .unwrap();
    wait_for(&api, name, WAIT, settled).await.status.unwrap()
}

fn assert_ready_with(status: &MigrationPackageStatus, bytes: &[u8]) {
    assert!(
        conditions::is_true(&status.conditions, READY),
        "{:#?}",
        status.conditions
    );
    let artifact = status.artifact.as_ref().unwrap();
    let expected = format!("sha256:{}", ferry_package::writer::sha256_hex(bytes));
    assert_eq!(
        (artifact.digest.as_str(), artifact.size),
        (expected.as_str(), bytes.len() as u64)
    );
}

/// The Ready condition's reason and message, and the problems, in one text.
fn refusal(status: &MigrationPackageStatus) -> (String, String) {
    let ready = conditions::find(&status.conditions, READY).expect("a Ready condition");
    assert_eq!(ready.status, "False", "{ready:?}");
    assert!(status.artifact.is_none(), "nothing is stored when refused");
    let message = format!("{} | {}", ready.message, status.problems.join("; "));
    eprintln!("refused: {}: {message}", ready.reason);
    (ready.reason.clone(), message)
}

// ------------------------------------------------------------ URL ----

/// What the test's HTTP server saw: path and the `x-ferry-token` header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A tiny HTTP/1.1 server on 127.0.0.1: `GET /q4.zip` answers `body`,
/// anything else 404. One request per connection.
async fn serve(body: Vec<u8>) -> (u16, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let body = Arc::new(body);
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let mut lines = head.lines();
                let path = lines
                    .next()
                    .and_then(|l| l.split_whitespace().nth(1))
                    .unwrap_or_default()
                    .to_string();
                let token = lines.find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case("x-ferry-token")
                        .then(|| v.trim().to_string())
                });
                log.lock().unwrap().push((path.clone(), token));
                let (status, payload): (&str, &[u8]) = if path == "/q4.zip" {
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
    (port, seen)
}

#[tokio::test]
async fn a_url_package_is_fetched_with_the_secret_headers() {
    let c = client(User::Admin).await;
    tenant_and_workspace(&c, "t-src-url", Edition::Professional, "src-url", "src-url").await;
    let bytes = ferry_package::fixtures::FixtureSpec::new()
        .tasks(5)
        .to_bytes();
    let (port, seen) = serve(bytes.clone()).await;
    let token = "tok-7f3a9c-very-secret";
    secret(
        &c,
        "src-url",
        "url-auth",
        &[(
            "headers",
            &format!("# sent with every request\nX-Ferry-Token: {token}\n"),
        )],
    )
    .await;

    let url = format!("http://127.0.0.1:{port}/q4.zip");
    let status = settle(
        &c,
        "src-url",
        "q4",
        serde_json::json!({"url": {"url": url, "secretRef": {"name": "url-auth"}}}),
    )
    .await;
    assert_ready_with(&status, &bytes);
    assert_eq!(status.source_kind.as_deref(), Some("URL"));
    assert_eq!(
        status
            .summary
            .as_ref()
            .unwrap()
            .objects
            .get("ScheduledTask"),
        Some(&5)
    );
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|(p, t)| p == "/q4.zip" && t.as_deref() == Some(token)),
        "the Secret's header reached the server: {:?}",
        seen.lock().unwrap()
    );

    // A missing file: refused, naming the URL and the answer, and the
    // header value appears nowhere in status.
    let missing = format!("http://127.0.0.1:{port}/gone.zip");
    let status = settle(
        &c,
        "src-url",
        "gone",
        serde_json::json!({"url": {"url": missing, "secretRef": {"name": "url-auth"}}}),
    )
    .await;
    let (reason, message) = refusal(&status);
    assert_eq!(reason, "SourceNotFound", "{message}");
    assert!(
        message.contains(&format!("GET {missing} answered 404 Not Found")),
        "{message}"
    );
    let all = serde_json::to_string(&status).unwrap();
    assert!(
        !all.contains(token),
        "a header value leaked into status: {all}"
    );
}

#[tokio::test]
async fn a_url_package_with_a_malformed_or_missing_secret_is_refused() {
    let c = client(User::Admin).await;
    tenant_and_workspace(
        &c,
        "t-src-url-bad",
        Edition::Enterprise,
        "src-url-bad",
        "src-url-bad",
    )
    .await;
    let (port, _) = serve(Vec::new()).await;
    let url = format!("http://127.0.0.1:{port}/q4.zip");
    secret(
        &c,
        "src-url-bad",
        "bad-headers",
        &[("headers", "Authorization Bearer abc123\n")],
    )
    .await;
    let status = settle(
        &c,
        "src-url-bad",
        "bad-headers",
        serde_json::json!({"url": {"url": url, "secretRef": {"name": "bad-headers"}}}),
    )
    .await;
    let (reason, message) = refusal(&status);
    assert_eq!(reason, "SourceInvalid", "{message}");
    assert!(
        message.contains("Secret src-url-bad/bad-headers key \"headers\" line 1"),
        "{message}"
    );
    assert!(!message.contains("abc123"), "{message}");

    // A Secret the namespace's workspace identity may not read: refused
    // as forbidden, whether it exists or not (no existence oracle).
    let status = settle(
        &c,
        "src-url-bad",
        "no-grant",
        serde_json::json!({"url": {"url": url, "secretRef": {"name": "nowhere"}}}),
    )
    .await;
    let (reason, message) = refusal(&status);
    assert_eq!(reason, "SourceForbidden", "{message}");
    assert!(
        message.contains("spec.source.url.secretRef: the workspace identity of namespace src-url-bad may not get Secret src-url-bad/nowhere")
            && message.contains("system:serviceaccount:src-url-bad:ferry-workspace"),
        "{message}"
    );
    // Granted, but missing.
    crate::support::grant_secret(&c, "src-url-bad", "nowhere").await;
    let status = settle(
        &c,
        "src-url-bad",
        "no-secret",
        serde_json::json!({"url": {"url": url, "secretRef": {"name": "nowhere"}}}),
    )
    .await;
    let (reason, message) = refusal(&status);
    assert_eq!(reason, "SourceNotFound", "{message}");
    assert!(
        message.contains("spec.source.url.secretRef: Secret src-url-bad/nowhere does not exist"),
        "{message}"
    );
}

// --------------------------------------------------- object store ----

/// The moto S3 server, started once per test binary. Its guard (the same
/// pattern as the control plane's) stops it when this process exits, even
/// without unwinding: the guard's stdin pipe closes with the process.
struct S3 {
    endpoint: String,
    _guard: Mutex<Child>,
}

static S3_SERVER: OnceLock<S3> = OnceLock::new();

/// Runs "$@" and stops it when stdin reaches end of file.
const GUARD: &str = r#"
exec 3<&0
"$@" </dev/null &
child=$!
( read -r _ <&3; kill -TERM "$child" 2>/dev/null; sleep 5; kill -KILL "$child" 2>/dev/null ) &
watcher=$!
wait "$child"; status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

/// How to start moto's server: `FERRY_MOTO_SERVER` (a command), or
/// `moto_server` on PATH, or `python3 -m moto.server`, installing
/// `moto[server]` with pip once if Python cannot import it.
fn moto_command() -> Vec<String> {
    if let Ok(cmd) = std::env::var("FERRY_MOTO_SERVER") {
        return cmd.split_whitespace().map(String::from).collect();
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let importable = || {
        Command::new(&python)
            .args(["-c", "import moto.server, flask, werkzeug"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !importable() {
        eprintln!("moto is not installed: pip install 'moto[server]'");
        let ok = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "moto[server]"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok && importable(),
            "installing moto[server] with pip failed; install it (pip install 'moto[server]') or set FERRY_MOTO_SERVER"
        );
    }
    vec![python, "-m".into(), "moto.server".into()]
}

fn s3() -> &'static S3 {
    S3_SERVER.get_or_init(|| {
        let port = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Beside the control plane's logs, removed with its work directory.
        let log: PathBuf = crate::support::control_plane().dir().join("moto.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = moto_command();
        cmd.extend([
            "-H".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ]);
        let child = Command::new("bash")
            .arg("-c")
            .arg(GUARD)
            .arg("ferry-moto-guard")
            .args(&cmd)
            .stdin(Stdio::piped())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("starting moto's server");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("moto's server did not listen on {port} within 60s; its log:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        S3 {
            endpoint: format!("http://127.0.0.1:{port}"),
            _guard: Mutex::new(child),
        }
    })
}

/// Creates `bucket` (object_store has no bucket API: a plain S3
/// CreateBucket, which moto accepts unsigned) and puts `bytes` at `key`
/// with object_store itself, path-style, as a client of the store would.
async fn put_object(bucket: &str, key: &str, bytes: Vec<u8>) {
    let endpoint = &s3().endpoint;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(
        created.status().is_success(),
        "CreateBucket: {}",
        created.status()
    );
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_bucket_name(bucket)
        .with_region("us-east-1")
        .with_access_key_id("AKIAFERRYTEST")
        .with_secret_access_key("ferry-secret-key")
        .with_virtual_hosted_style_request(false)
        .build()
        .unwrap();
    store
        .put(&object_store::path::Path::from(key), bytes.into())
        .await
        .unwrap();
}

#[tokio::test]
async fn an_object_store_package_is_fetched_from_a_real_s3_server() {
    let c = client(User::Admin).await;
    let ns = "src-s3";
    tenant_and_workspace(&c, "t-src-s3", Edition::Professional, ns, ns).await;
    let bytes = ferry_package::fixtures::FixtureSpec::new()
        .tasks(5)
        .to_bytes();
    put_object("pkgs", "exports/q4.zip", bytes.clone()).await;
    let secret_key = "ferry-secret-key";
    secret(
        &c,
        ns,
        "s3-creds",
        &[
            ("accessKeyId", "AKIAFERRYTEST"),
            ("secretAccessKey", secret_key),
        ],
    )
    .await;
    let source = |key: &str, creds: &str| {
        serde_json::json!({"objectStore": {
            "endpoint": s3().endpoint, "bucket": "pkgs", "key": key,
            "region": "us-east-1", "pathStyle": true,
            "credentialsSecretRef": {"name": creds}
        }})
    };

    let status = settle(&c, ns, "q4", source("exports/q4.zip", "s3-creds")).await;
    assert_ready_with(&status, &bytes);
    assert_eq!(status.source_kind.as_deref(), Some("ObjectStore"));

    // A key that is not there.
    let status = settle(&c, ns, "missing", source("exports/q5.zip", "s3-creds")).await;
    let (reason, message) = refusal(&status);
    assert_eq!(reason, "SourceNotFound", "{message}");
    assert!(
        message
            .contains(r#"spec.source.objectStore: bucket "pkgs" key "exports/q5.zip": NoSuchKey"#),
        "{message}"
    );

    // A bucket that is not there.
    let mut no_bucket = source("exports/q4.zip", "s3-creds");
    no_bucket["objectStore"]["bucket"] = "nobucket".into();
    let status = settle(&c, ns, "no-bucket", no_bucket).await;
    let (reason, message) = refusal(&status);
    assert_eq!(reason, "SourceNotFound", "{message}");
    assert!(message.contains("NoSuchBucket"), "{message}");

    // Credentials without the secret key: named, and no value shown.
    secret(&c, ns, "half-creds", &[("accessKeyId", "AKIAFERRYTEST")]).await;
    let status = settle(&c, ns, "half", source("exports/q4.zip", "half-creds")).await;
    let (reason, message) = refusal(&status);
    assert_eq!(reason, "CredentialsInvalid", "{message}");
    assert!(
        message.contains(&format!(
            r#"spec.source.objectStore.credentialsSecretRef: Secret {ns}/half-creds has no key "secretAccessKey""#
        )),
        "{message}"
    );
    for s in [serde_json::to_string(&status).unwrap(), message] {
        assert!(!s.contains(secret_key), "a secret leaked: {s}");
    }
}

#[tokio::test]
async fn standard_tenants_cannot_use_object_store_sources() {
    let c = client(User::Admin).await;
    let ns = "src-s3-std";
    tenant_and_workspace(&c, "t-src-s3-std", Edition::Standard, ns, ns).await;
    let status = settle(
        &c,
        ns,
        "q4",
        serde_json::json!({"objectStore": {
            "endpoint": "http://127.0.0.1:9", "bucket": "pkgs", "key": "q4.zip",
            "pathStyle": true
        }}),
    )
    .await;
    let (reason, message) = refusal(&status);
    assert_eq!(reason, "EditionLimit", "{message}");
    assert!(message.contains("upgrade the edition"), "{message}");
}

/// Security review finding 27: credentials in a URL (`user:password@`)
/// stayed in `spec`, readable by every viewer of the namespace. The API
/// server refuses them now, naming the field; credentials go in the
/// Secret's headers.
#[tokio::test]
async fn credentials_in_a_url_are_refused_by_the_api_server() {
    let c = client(User::Admin).await;
    tenant_and_workspace(
        &c,
        "t-src-userinfo",
        Edition::Professional,
        "src-userinfo",
        "src-userinfo",
    )
    .await;
    let api: Api<MigrationPackage> = Api::namespaced(c.clone(), "src-userinfo");
    let pkg = |name: &str, url: &str| -> MigrationPackage {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "ferry.dev/v1alpha1", "kind": "MigrationPackage", "metadata": {"name": name},
            "spec": {"source": {"url": {"url": url}}}
        }))
        .unwrap()
    };
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let refused = api
        .create(
            &dry,
            &pkg("creds", "https://deploy:s3cret@files.example.com/q4.zip"),
        )
        .await
        .expect_err("a URL with credentials is refused");
    let kube::Error::Api(s) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(s.code, 422, "{s:?}");
    assert!(s.message.contains("spec.source.url.url"), "{}", s.message);
    for ok in [
        "https://files.example.com/q4.zip",
        "https://files.example.com:8443/a/b@c/q4.zip?X-Amz-Signature=abc",
        "http://files.example.com",
    ] {
        api.create(&dry, &pkg("fine", ok))
            .await
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

/// The seed audit: "A Basic tenant refused an object-store source is not
/// told to 'upload locally' (Basic has no local upload either); every
/// refusal's advice must be possible for that edition."
#[tokio::test]
async fn a_basic_tenant_refused_an_object_store_source_is_not_told_to_upload_locally() {
    let c = client(User::Admin).await;
    let ns = "src-s3-basic";
    tenant_and_workspace(&c, "t-src-s3-basic", Edition::Basic, ns, ns).await;
    let status = settle(
        &c,
        ns,
        "q4",
        serde_json::json!({"objectStore": {
            "endpoint": "http://127.0.0.1:9", "bucket": "pkgs", "key": "q4.zip",
            "pathStyle": true
        }}),
    )
    .await;
    let (reason, message) = refusal(&status);
    assert_eq!(reason, "EditionLimit", "{message}");
    assert!(
        message.contains("spec.source.export") && message.contains("upgrade the edition"),
        "{message}"
    );
    assert!(!message.contains("upload"), "{message}");
}
