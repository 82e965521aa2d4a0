//! `upload` and `download`: a package's bytes to and from the operator.
//!
//! By default through the API server alone, in chunk ConfigMaps (see
//! `ferry::controller::chunks` and docs/cli.md): nothing but the kubeconfig
//! and namespace RBAC is needed. With `--endpoint`, to and from the
//! operator's artifact endpoint (a port-forward, an Ingress or the Service's
//! address), which checks the caller's own bearer token (TokenReview) and
//! rights in the namespace (SubjectAccessReview), so the CLI sends the token
//! of the kubeconfig's user and nothing else.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use ferry::api::{MigrationPackage, Workspace};
use ferry::controller::chunks;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::cluster::Cluster;
use crate::commands::package_subject;
use crate::failure::{Failure, Subject};

/// The largest local upload any edition allows; the endpoint enforces the
/// tenant's own edition exactly (Basic offers none).
pub const MAX_UPLOAD_BYTES: u64 = ferry::edition::LOCAL_UPLOAD_LIMIT_BYTES;

fn token(c: &Cluster) -> Result<String, Failure> {
    c.token.as_ref().map(|t| t.expose_secret().to_string()).ok_or_else(|| {
        Failure::usage("upload and download send your bearer token to the artifact endpoint, and this kubeconfig user has none (use a token-based user)")
    })
}

/// Your bearer token goes to `--endpoint`: only over HTTPS, or over plain
/// HTTP to this machine (a `kubectl port-forward`), never in the clear
/// across a network (security review 3.2).
fn check_endpoint(endpoint: &str) -> Result<(), Failure> {
    let url = reqwest::Url::parse(endpoint)
        .map_err(|e| Failure::usage(format!("--endpoint {endpoint:?}: not a URL: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(Failure::usage(format!(
            "--endpoint {endpoint}: refusing to send your bearer token over plain HTTP to {}; use https:// (the chart's artifactServer.tls), or kubectl port-forward -n ferry-system svc/ferry 9090 and --endpoint http://127.0.0.1:9090",
            url.host_str().unwrap_or_default()
        ))),
        other => Err(Failure::usage(format!(
            "--endpoint {endpoint}: scheme {other} is not http or https"
        ))),
    }
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
    check_endpoint(endpoint)?;
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
    check_endpoint(endpoint)?;
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

/// Progress of a transfer on stderr: a bar on a terminal, a line per
/// quarter otherwise.
struct Progress {
    verb: &'static str,
    total: usize,
    done: usize,
    tty: bool,
    last_quarter: usize,
}

impl Progress {
    fn new(verb: &'static str, total: usize) -> Self {
        use std::io::IsTerminal;
        Progress {
            verb,
            total: total.max(1),
            done: 0,
            tty: std::io::stderr().is_terminal(),
            last_quarter: 0,
        }
    }

    fn advance(&mut self, n: usize) {
        self.done += n;
        let (done, total, verb) = (self.done, self.total, self.verb);
        let percent = (done * 100 / total).min(100);
        if self.tty {
            let filled = percent / 5;
            eprint!(
                "\r[{}{}] {percent:3}% {done}/{total} bytes",
                "#".repeat(filled),
                " ".repeat(20 - filled)
            );
            if done >= total {
                eprintln!();
            }
        } else if percent / 25 > self.last_quarter {
            self.last_quarter = percent / 25;
            eprintln!("{verb} {percent}% ({done}/{total} bytes)");
        }
    }
}

/// The file in 256 KiB chunks, reporting progress on stderr as they go.
fn progress_chunks(bytes: Vec<u8>) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    const CHUNK: usize = 256 * 1024;
    let mut progress = Progress::new("uploaded", bytes.len());
    let chunks: Vec<Vec<u8>> = bytes.chunks(CHUNK).map(<[u8]>::to_vec).collect();
    futures::stream::iter(chunks.into_iter().map(move |chunk| {
        progress.advance(chunk.len());
        Ok(chunk)
    }))
}

// ------------------------------------------- through the API server, in chunks

fn chunk_subject<'a>(c: &'a Cluster, name: &'a str) -> Subject<'a> {
    Subject {
        kind: "configmap",
        plural: "configmaps",
        name,
        namespace: Some(&c.namespace),
    }
}

/// The local-upload limit of the namespace's workspace, from its edition
/// (`status.edition` of the Workspace whose namespace this is). A user who
/// may not read Workspaces (cluster-scoped) gets the largest limit any
/// edition allows; the operator enforces the exact one.
async fn upload_limit(c: &Cluster) -> Result<u64, Failure> {
    let workspaces: Api<Workspace> = Api::all(c.client.clone());
    let list = match workspaces.list(&ListParams::default()).await {
        Ok(list) => list,
        Err(kube::Error::Api(s)) if s.code == 403 => return Ok(MAX_UPLOAD_BYTES),
        Err(e) => return Err(crate::failure::unreachable_server(e)),
    };
    let Some(ws) = list
        .items
        .into_iter()
        .find(|w| w.spec.namespace == c.namespace)
    else {
        return Err(Failure::usage(format!(
            "namespace {} belongs to no Workspace: upload into the namespace of the destination workspace (-n); nothing was sent",
            c.namespace
        )));
    };
    let Some(edition) = ws.status.as_ref().and_then(|s| s.edition) else {
        return Ok(MAX_UPLOAD_BYTES);
    };
    let limits = ferry::edition::limits(edition);
    match (limits.local_upload, limits.max_local_upload_bytes) {
        (true, Some(max)) => Ok(max),
        _ => Err(Failure::usage(format!(
            "workspace {} is on the {edition:?} edition, which does not offer local upload (it imports only packages exported inside the same tenant): nothing was sent; use kubectl migrate export, or upgrade the edition",
            ws.name_any()
        ))),
    }
}

/// Uploads `file` through the API server: creates the MigrationPackage
/// `name` naming the chunks, then one ConfigMap per chunk, owned by the
/// package. Refuses a file over the edition's limit before anything is
/// created. Returns the digest and the number of chunks.
pub async fn upload_chunks(c: &Cluster, file: &Path, name: &str) -> Result<(String, u32), Failure> {
    chunks::check_package_name(name).map_err(Failure::usage)?;
    let bytes = std::fs::read(file)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
    let size = bytes.len() as u64;
    if size == 0 {
        return Err(Failure::usage(format!(
            "{} is empty: nothing was sent",
            file.display()
        )));
    }
    let limit = upload_limit(c).await?;
    if size > limit {
        return Err(Failure::usage(format!(
            "{} is {size} bytes, larger than the {limit}-byte local-upload limit of this workspace's edition: nothing was sent; put larger packages in an object store (spec.source.objectStore, Professional and Enterprise)",
            file.display()
        )));
    }
    let digest = chunks::sha256(&bytes);
    let count = chunks::chunk_count(size);
    // The package first: a taken name or missing rights stop the upload
    // before any chunk is written, and the chunks can be owned by it.
    let package: MigrationPackage = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "MigrationPackage",
        "metadata": {"name": name, "namespace": c.namespace},
        "spec": {"source": {"upload": {"digest": digest, "chunks": {"count": count, "size": size}}}}
    }))
    .expect("a well-formed package");
    let packages = Api::<MigrationPackage>::namespaced(c.client.clone(), &c.namespace);
    let created = packages
        .create(&PostParams::default(), &package)
        .await
        .map_err(|e| package_subject(c, name).error("create", e))?;
    let uid = created.uid().unwrap_or_default();
    let owner = chunks::owner(&created);
    let labels = chunks::upload_labels(name);
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), &c.namespace);
    eprintln!(
        "uploading {} ({size} bytes) as {} of migrationpackage {name} in namespace {}",
        file.display(),
        ferry_engine::ledger::plural(count as usize, "chunk", "chunks"),
        c.namespace
    );
    let mut progress = Progress::new("uploaded", bytes.len());
    for (index, piece) in (0u32..).zip(bytes.chunks(chunks::CHUNK_BYTES)) {
        let cm_name = chunks::upload_chunk_name(name, &uid, index);
        let cm = chunks::chunk(cm_name.clone(), labels.clone(), owner.clone(), index, piece);
        match cms.create(&PostParams::default(), &cm).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => {
                let f = chunk_subject(c, &cm_name).error("create", e);
                // Leave nothing half-done behind: the package goes, and with
                // it (ownerReferences) any chunk already written.
                let cleanup = packages.delete(name, &DeleteParams::default()).await;
                delete_named(
                    &cms,
                    (0..index).map(|i| chunks::upload_chunk_name(name, &uid, i)),
                )
                .await;
                let after = match cleanup {
                    Ok(_) => format!("migrationpackage {name} and its chunks were deleted again"),
                    Err(_) => format!(
                        "delete migrationpackage {name} with kubectl delete migrationpackage {name} -n {}",
                        c.namespace
                    ),
                };
                return Err(crate::failure::Failure::new(
                    f.code,
                    format!("uploading chunk {index} of {count}: {}; {after}", f.message),
                ));
            }
        }
        progress.advance(piece.len());
    }
    Ok((digest, count))
}

async fn delete_named(cms: &Api<ConfigMap>, names: impl Iterator<Item = String>) -> usize {
    let mut failed = 0;
    for n in names {
        match cms.delete(&n, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(_) => failed += 1,
        }
    }
    failed
}

/// Downloads a package's artifact through the API server: asks the operator
/// for download chunks (annotation `ferry.dev/download-requested-at`), waits
/// for them, writes `file` while hashing, compares with
/// `status.artifact.digest`, and deletes the chunks.
pub async fn download_chunks(
    c: &Cluster,
    package: &str,
    file: &Path,
    timeout: Duration,
) -> Result<(String, u32), Failure> {
    chunks::check_package_name(package).map_err(Failure::usage)?;
    let subject = package_subject(c, package);
    let packages = Api::<MigrationPackage>::namespaced(c.client.clone(), &c.namespace);
    let pkg = packages
        .get(package)
        .await
        .map_err(|e| subject.error("get", e))?;
    let expected = pkg
        .status
        .and_then(|s| s.artifact)
        .ok_or_else(|| Failure::failed(format!("migrationpackage {package} has no verified artifact yet; see kubectl migrate preview {package} -n {}", c.namespace)))?;
    let request = format!(
        "{}-{}",
        k8s_openapi::jiff::Timestamp::now(),
        std::process::id()
    );
    packages
        .patch(
            package,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {chunks::DOWNLOAD_REQUESTED: request}}})),
        )
        .await
        .map_err(|e| subject.error("patch", e))?;
    eprintln!(
        "requested migrationpackage {package} as download chunks ({}={request}); waiting for the operator",
        chunks::DOWNLOAD_REQUESTED
    );
    let until = (!timeout.is_zero()).then(|| Instant::now() + timeout);
    let answer = loop {
        let pkg = packages
            .get(package)
            .await
            .map_err(|e| subject.error("get", e))?;
        if let Some(d) = pkg
            .status
            .and_then(|s| s.download)
            .filter(|d| d.request == request)
        {
            break d;
        }
        if until.is_some_and(|u| Instant::now() >= u) {
            return Err(Failure::failed(format!(
                "the operator did not answer the download request for migrationpackage {package} within {}s; is it running? (kubectl describe migrationpackage {package} -n {})",
                timeout.as_secs(),
                c.namespace
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if let Some(message) = answer.message {
        return Err(Failure::failed(format!(
            "the operator refused to download migrationpackage {package}: {message}"
        )));
    }
    if answer.digest.as_deref() != Some(expected.digest.as_str()) {
        return Err(Failure::failed(format!(
            "the operator wrote chunks of {:?}, but migrationpackage {package} is {}: nothing written; try again",
            answer.digest, expected.digest
        )));
    }
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), &c.namespace);
    let names: Vec<String> = (0..answer.chunks)
        .map(|i| chunks::download_chunk_name(package, &request, i))
        .collect();
    let part = file.with_extension("zip.part");
    let result = async {
        let mut out = std::fs::File::create(&part)
            .map_err(|e| Failure::usage(format!("cannot write {}: {e}", part.display())))?;
        let mut hasher = Sha256::new();
        let mut progress = Progress::new("downloaded", expected.size as usize);
        for (index, cm_name) in (0u32..).zip(&names) {
            let cm = cms
                .get(cm_name)
                .await
                .map_err(|e| chunk_subject(c, cm_name).error("get", e))?;
            let bytes = chunks::chunk_bytes(&cm, index).map_err(Failure::failed)?;
            hasher.update(bytes);
            out.write_all(bytes)
                .map_err(|e| Failure::usage(format!("cannot write {}: {e}", part.display())))?;
            progress.advance(bytes.len());
        }
        out.flush()
            .map_err(|e| Failure::usage(format!("cannot write {}: {e}", part.display())))?;
        let got = format!("sha256:{}", hex(&hasher.finalize()));
        if got != expected.digest {
            return Err(Failure::failed(format!(
                "the chunks add up to {got}, but migrationpackage {package}'s digest is {}: nothing written",
                expected.digest
            )));
        }
        std::fs::rename(&part, file)
            .map_err(|e| Failure::usage(format!("cannot write {}: {e}", file.display())))?;
        Ok(got)
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    // Claimed (or failed): the chunks go either way; the operator removes
    // any this user may not delete after a while.
    if delete_named(&cms, names.iter().cloned()).await > 0 {
        eprintln!(
            "warning: could not delete the download chunks (label {}={package}); the operator removes them within {} minutes",
            chunks::DOWNLOAD_LABEL,
            chunks::DOWNLOAD_TTL.as_secs() / 60 * 2
        );
    }
    result.map(|d| (d, answer.chunks))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::check_endpoint;

    #[test]
    fn the_token_goes_only_over_https_or_to_this_machine() {
        for ok in [
            "https://ferry.example.com",
            "https://10.0.0.7:9090",
            "http://127.0.0.1:9090",
            "http://localhost:9090/",
            "http://[::1]:9090",
        ] {
            assert!(check_endpoint(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://ferry.example.com",
            "http://10.0.0.7:9090",
            "ftp://127.0.0.1",
            "not a url",
        ] {
            let e = check_endpoint(bad).expect_err(bad);
            assert!(e.message.contains("--endpoint"), "{bad}: {}", e.message);
        }
    }
}
