//! `upload` and `download`: a package's bytes to and from the operator's
//! artifact endpoint, given by `--endpoint` (a port-forward, an Ingress or
//! the Service's address). The endpoint checks the caller's own bearer token
//! (TokenReview) and rights in the namespace (SubjectAccessReview), so the
//! CLI sends the token of the kubeconfig's user and nothing else.

use std::path::Path;

use ferry::api::MigrationPackage;
use kube::Api;
use kube::api::PostParams;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::cluster::Cluster;
use crate::failure::Failure;

/// The largest local upload any edition allows; the endpoint enforces the
/// tenant's own edition exactly (Basic offers none).
pub const MAX_UPLOAD_BYTES: u64 = ferry::edition::LOCAL_UPLOAD_LIMIT_BYTES;

fn token(c: &Cluster) -> Result<String, Failure> {
    c.token.as_ref().map(|t| t.expose_secret().to_string()).ok_or_else(|| {
        Failure::usage("upload and download send your bearer token to the artifact endpoint, and this kubeconfig user has none (use a token-based user)")
    })
}

fn http_failure(what: &str, url: &str, e: reqwest::Error) -> Failure {
    Failure::api(format!(
        "{what} {url}: {e}; check --endpoint (for example kubectl port-forward -n ferry-system svc/ferry 9090)"
    ))
}

async fn refusal(what: &str, resp: reqwest::Response) -> Failure {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let message = format!("{what}: {status}: {}", body.trim());
    match status.as_u16() {
        401 | 403 | 404 | 409 | 410 => Failure::api(message),
        _ => Failure::failed(message),
    }
}

/// Uploads `file` and creates the MigrationPackage `name` that names it.
/// Refuses a file over the limit before a byte is sent.
pub async fn upload(
    c: &Cluster,
    endpoint: &str,
    file: &Path,
    name: &str,
) -> Result<String, Failure> {
    let size = std::fs::metadata(file)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?
        .len();
    if size > MAX_UPLOAD_BYTES {
        return Err(Failure::usage(format!(
            "{} is {size} bytes; local uploads are limited to {MAX_UPLOAD_BYTES} bytes (30 MB): put larger packages in an object store (spec.source.objectStore, Professional and Enterprise)",
            file.display()
        )));
    }
    let bytes = std::fs::read(file)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
    let url = format!(
        "{}/packages/{}/{name}",
        endpoint.trim_end_matches('/'),
        c.namespace
    );
    eprintln!("uploading {} ({size} bytes) to {url}", file.display());
    let resp = reqwest::Client::new()
        .put(&url)
        .bearer_auth(token(c)?)
        .header(reqwest::header::CONTENT_LENGTH, size)
        .body(reqwest::Body::wrap_stream(progress_chunks(bytes)))
        .send()
        .await
        .map_err(|e| http_failure("PUT", &url, e))?;
    if !resp.status().is_success() {
        return Err(refusal("upload refused", resp).await);
    }
    let answer: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap_or_default())
        .map_err(|e| {
            Failure::failed(format!(
                "the endpoint answered something else than JSON: {e}"
            ))
        })?;
    let digest = answer["digest"].as_str().unwrap_or_default().to_string();
    let package: MigrationPackage = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "MigrationPackage",
        "metadata": {"name": name, "namespace": c.namespace},
        "spec": {"source": {"upload": {"digest": digest}}}
    }))
    .expect("a well-formed package");
    Api::<MigrationPackage>::namespaced(c.client.clone(), &c.namespace)
        .create(&PostParams::default(), &package)
        .await
        .map_err(|e| Failure::api(format!("uploaded as {digest}, but creating migrationpackage {name} in namespace {} failed: {e}", c.namespace)))?;
    Ok(digest)
}

/// Downloads a package's artifact into `file`, checked against its digest.
pub async fn download(
    c: &Cluster,
    endpoint: &str,
    package: &str,
    file: &Path,
) -> Result<String, Failure> {
    let pkg = Api::<MigrationPackage>::namespaced(c.client.clone(), &c.namespace)
        .get_opt(package)
        .await
        .map_err(|e| Failure::api(e.to_string()))?
        .ok_or_else(|| Failure::api(format!("migrationpackage {package} not found in namespace {}; list them with kubectl get migrationpackages -n {}", c.namespace, c.namespace)))?;
    let expected = pkg
        .status
        .and_then(|s| s.artifact)
        .map(|a| a.digest)
        .ok_or_else(|| Failure::failed(format!("migrationpackage {package} has no verified artifact yet; see kubectl migrate preview {package}")))?;
    let url = format!(
        "{}/packages/{}/{package}",
        endpoint.trim_end_matches('/'),
        c.namespace
    );
    let resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token(c)?)
        .send()
        .await
        .map_err(|e| http_failure("GET", &url, e))?;
    if !resp.status().is_success() {
        return Err(refusal("download refused", resp).await);
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| http_failure("GET", &url, e))?;
    let got = format!("sha256:{}", hex(&Sha256::digest(&bytes)));
    if got != expected {
        return Err(Failure::failed(format!(
            "downloaded {got}, but the package's digest is {expected}: nothing written"
        )));
    }
    std::fs::write(file, &bytes)
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", file.display())))?;
    Ok(got)
}

/// The file in 256 KiB chunks, reporting progress on stderr as they go (a
/// bar on a terminal, a line per quarter otherwise).
fn progress_chunks(bytes: Vec<u8>) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    use std::io::IsTerminal;
    const CHUNK: usize = 256 * 1024;
    let total = bytes.len().max(1);
    let tty = std::io::stderr().is_terminal();
    let chunks: Vec<Vec<u8>> = bytes.chunks(CHUNK).map(<[u8]>::to_vec).collect();
    let mut sent = 0usize;
    let mut last_quarter = 0;
    futures::stream::iter(chunks.into_iter().map(move |chunk| {
        sent += chunk.len();
        let percent = sent * 100 / total;
        if tty {
            let filled = percent / 5;
            eprint!(
                "\r[{}{}] {percent:3}% {sent}/{total} bytes",
                "#".repeat(filled),
                " ".repeat(20 - filled)
            );
            if sent >= total {
                eprintln!();
            }
        } else if percent / 25 > last_quarter {
            last_quarter = percent / 25;
            eprintln!("uploaded {percent}% ({sent}/{total} bytes)");
        }
        Ok(chunk)
    }))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
