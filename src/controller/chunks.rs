//! Packages carried through the API server in chunks, for users who have a
//! kubeconfig and namespace RBAC but no network path to the operator (see
//! docs/cli.md, "Upload and download").
//!
//! - Upload: `kubectl migrate upload` creates the MigrationPackage
//!   (`spec.source.upload` with `chunks: {count, size}` and the zip's
//!   digest), then one ConfigMap per chunk of about 700 KiB, owned by the
//!   package. The operator waits until every chunk is there, checks each
//!   chunk's digest, streams them in order into the artifact store while
//!   hashing, compares the total digest and size, verifies the package like
//!   any other, and deletes the chunks.
//! - Download: the annotation `ferry.dev/download-requested-at` asks the
//!   operator to write a Ready package's artifact back as chunk ConfigMaps
//!   owned by the package; `status.download` says when they are there. The
//!   CLI reads, checks and deletes them; chunks nobody claimed are removed
//!   after [`DOWNLOAD_TTL`]. A package has one set at a time: a new request
//!   deletes the previous set first, is answered at most once per
//!   [`DOWNLOAD_INTERVAL`] (by default), and only for artifacts up to
//!   [`MAX_DOWNLOAD_BYTES`], so annotation patches cannot fill etcd.
//!
//! The names, labels and checks here are shared by the operator and the CLI.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use sha2::{Digest, Sha256};

use super::package::{PackageError, refused};
use super::{Context, Error};
use crate::api::{Artifact, MigrationPackage, PackageDownload, UploadChunks, UploadSource};
use crate::artifact::{ReceiveError, Stored};

/// Label of upload chunks: the package's name.
pub const UPLOAD_LABEL: &str = "ferry.dev/upload";
/// Label of download chunks: the package's name.
pub const DOWNLOAD_LABEL: &str = "ferry.dev/download";
/// Label of download chunks: [`request_id`] of the request they answer.
pub const DOWNLOAD_REQUEST_LABEL: &str = "ferry.dev/download-request";
/// Label of every chunk: its index, from 0.
pub const INDEX_LABEL: &str = "ferry.dev/chunk";
/// Annotation of every chunk: `sha256:<hex>` of its bytes.
pub const CHUNK_DIGEST: &str = "ferry.dev/chunk-sha256";
/// Annotation on a package asking for its artifact as download chunks.
pub const DOWNLOAD_REQUESTED: &str = "ferry.dev/download-requested-at";
/// The `binaryData` key holding a chunk's bytes.
pub const CHUNK_KEY: &str = "chunk";
/// Bytes per chunk: a ConfigMap stays under the API server's 1 MiB object
/// limit after base64 (700 KiB × 4/3 ≈ 933 KiB, plus metadata).
pub const CHUNK_BYTES: usize = 700 * 1024;
/// Package names are label values when chunks carry them.
pub const MAX_PACKAGE_NAME: usize = 63;
/// Download chunks nobody deleted are removed after this long.
pub const DOWNLOAD_TTL: Duration = Duration::from_secs(600);
/// The largest artifact answered as download chunks (about 94 ConfigMaps):
/// every byte goes through etcd. Larger ones download from the artifact
/// endpoint.
pub const MAX_DOWNLOAD_BYTES: u64 = 64 * 1024 * 1024;
/// A package answers at most one new download request per this long (by
/// default; `Context::download_interval`); a newer one waits (each answer
/// writes the whole artifact into etcd).
pub const DOWNLOAD_INTERVAL: Duration = Duration::from_secs(10);
/// An upload with missing chunks and no new chunk for this long is refused.
pub const UPLOAD_STALL: Duration = Duration::from_secs(600);
/// How often the operator looks for missing upload chunks.
const POLL: Duration = Duration::from_secs(2);
/// The field manager of `status.download` (the package reconciler's own
/// apply owns the rest of status and must not remove it).
const DOWNLOAD_MANAGER: &str = "ferry-download";

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How many chunks `size` bytes take.
pub fn chunk_count(size: u64) -> u32 {
    size.div_ceil(CHUNK_BYTES as u64).max(1) as u32
}

/// The name of upload chunk `index` of the package with `uid`: stable, so a
/// retried create is answered "already exists", and distinct for a package
/// re-created under the same name.
pub fn upload_chunk_name(package: &str, uid: &str, index: u32) -> String {
    format!("{package}-upload-{}-{index:04}", short(uid))
}

/// A label-safe identifier of a download request's annotation value.
pub fn request_id(request: &str) -> String {
    hex(&Sha256::digest(request.as_bytes()))[..16].to_string()
}

/// The name of download chunk `index` answering `request`.
pub fn download_chunk_name(package: &str, request: &str, index: u32) -> String {
    format!(
        "{package}-download-{}-{index:04}",
        &request_id(request)[..8]
    )
}

fn short(uid: &str) -> &str {
    let end = uid.len().min(8);
    uid.get(..end).unwrap_or(uid)
}

/// Why a package name cannot carry chunks, if it cannot.
pub fn check_package_name(package: &str) -> Result<(), String> {
    if package.len() > MAX_PACKAGE_NAME {
        return Err(format!(
            "migrationpackage name {package} is {} characters; a package uploaded or downloaded in chunks needs a name of at most {MAX_PACKAGE_NAME} (it is a label value on its chunks)",
            package.len()
        ));
    }
    Ok(())
}

/// The labels of upload chunks of `package`.
pub fn upload_labels(package: &str) -> BTreeMap<String, String> {
    [(UPLOAD_LABEL.to_string(), package.to_string())].into()
}

/// The labels of download chunks of `package` answering `request`.
pub fn download_labels(package: &str, request: &str) -> BTreeMap<String, String> {
    [
        (DOWNLOAD_LABEL.to_string(), package.to_string()),
        (DOWNLOAD_REQUEST_LABEL.to_string(), request_id(request)),
    ]
    .into()
}

/// An ownerReference to `pkg`: deleting the package deletes its chunks.
pub fn owner(pkg: &MigrationPackage) -> OwnerReference {
    OwnerReference {
        api_version: MigrationPackage::api_version(&()).into_owned(),
        kind: MigrationPackage::kind(&()).into_owned(),
        name: pkg.name_any(),
        uid: pkg.uid().unwrap_or_default(),
        ..Default::default()
    }
}

/// Chunk `index` holding `bytes`.
pub fn chunk(
    name: String,
    mut labels: BTreeMap<String, String>,
    owner: OwnerReference,
    index: u32,
    bytes: &[u8],
) -> ConfigMap {
    labels.insert(INDEX_LABEL.into(), index.to_string());
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name),
            labels: Some(labels),
            annotations: Some([(CHUNK_DIGEST.to_string(), sha256(bytes))].into()),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        binary_data: Some([(CHUNK_KEY.to_string(), ByteString(bytes.to_vec()))].into()),
        ..Default::default()
    }
}

/// A chunk's bytes, once they match the digest it was written with; the
/// refusal names the ConfigMap, its index and the rule.
pub fn chunk_bytes(cm: &ConfigMap, index: u32) -> Result<&[u8], String> {
    let ns = cm.namespace().unwrap_or_default();
    let name = cm.name_any();
    let bytes = cm
        .binary_data
        .as_ref()
        .and_then(|d| d.get(CHUNK_KEY))
        .map(|b| b.0.as_slice())
        .ok_or_else(|| {
            format!("chunk {index} (ConfigMap {ns}/{name}) has no binaryData key {CHUNK_KEY:?}")
        })?;
    let Some(want) = cm.annotations().get(CHUNK_DIGEST) else {
        return Err(format!(
            "chunk {index} (ConfigMap {ns}/{name}) has no {CHUNK_DIGEST} annotation: every chunk must name the digest of its bytes"
        ));
    };
    let got = sha256(bytes);
    if &got != want {
        return Err(format!(
            "chunk {index} (ConfigMap {ns}/{name}) holds {got}, but its {CHUNK_DIGEST} annotation says {want}: the chunk changed after it was written"
        ));
    }
    Ok(bytes)
}

/// A received package (upload chunks, a URL, an object store): the file in
/// the store's incoming area and its identity.
pub(super) struct Received {
    pub file: tempfile::NamedTempFile,
    pub stored: Stored,
}

/// Reassembles the upload chunks of `pkg` into the store's incoming area.
/// Missing chunks (the client is still uploading) are a wait, not a failure;
/// anything inconsistent is a refusal naming the chunk and the rule.
pub(super) async fn receive_upload(
    ctx: &Context,
    pkg: &MigrationPackage,
    upload: &UploadSource,
    chunks: &UploadChunks,
    max_bytes: u64,
) -> Result<Received, PackageError> {
    let ns = pkg.namespace().unwrap_or_default();
    let name = pkg.name_any();
    let uid = pkg.uid().unwrap_or_default();
    if chunks.size > max_bytes {
        return Err(refused(
            "PackageTooLarge",
            format!(
                "spec.source.upload.chunks.size is {} bytes; a local upload allows at most {max_bytes} bytes on this tenant's edition",
                chunks.size
            ),
        ));
    }
    let expected = chunk_count(chunks.size);
    if chunks.count != expected {
        return Err(refused(
            "ChunksInvalid",
            format!(
                "spec.source.upload.chunks: {} bytes come in {expected} chunks of {CHUNK_BYTES} bytes, not {}",
                chunks.size, chunks.count
            ),
        ));
    }
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let listed = api
        .list_metadata(&ListParams::default().labels(&format!("{UPLOAD_LABEL}={name}")))
        .await?;
    // Only chunks owned by this very package (not by an earlier package of
    // the same name) count.
    let mut by_index: BTreeMap<u32, String> = BTreeMap::new();
    let mut newest = pkg.creation_timestamp().map(|t| t.0);
    for meta in listed.items {
        if !meta.owner_references().iter().any(|o| o.uid == uid) {
            continue;
        }
        let cm_name = meta.name_any();
        let index = meta
            .labels()
            .get(INDEX_LABEL)
            .and_then(|i| i.parse::<u32>().ok())
            .filter(|i| *i < chunks.count)
            .ok_or_else(|| {
                refused(
                    "ChunksInvalid",
                    format!(
                        "ConfigMap {ns}/{cm_name} is an upload chunk of migrationpackage {name} without a {INDEX_LABEL} label from 0 to {}",
                        chunks.count - 1
                    ),
                )
            })?;
        if let Some(other) = by_index.insert(index, cm_name.clone()) {
            return Err(refused(
                "ChunksInvalid",
                format!(
                    "ConfigMaps {ns}/{other} and {ns}/{cm_name} are both chunk {index} of migrationpackage {name}"
                ),
            ));
        }
        if let Some(t) = meta.creation_timestamp() {
            newest = newest.max(Some(t.0));
        }
    }
    let missing: Vec<u32> = (0..chunks.count)
        .filter(|i| !by_index.contains_key(i))
        .collect();
    if !missing.is_empty() {
        let have = chunks.count as usize - missing.len();
        let list = missing
            .iter()
            .take(10)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let more = if missing.len() > 10 { ", ..." } else { "" };
        let chunk = if missing.len() == 1 {
            "chunk"
        } else {
            "chunks"
        };
        if have == 0
            && pkg
                .status
                .as_ref()
                .and_then(|s| s.artifact.as_ref())
                .is_some_and(|a| a.digest == upload.digest)
        {
            return Err(refused(
                "ArtifactLost",
                format!(
                    "the upload's chunks were consumed when migrationpackage {name} was stored as {}, and the artifact store no longer has it: upload the package again under a new name",
                    upload.digest
                ),
            ));
        }
        let idle = newest
            .map(|t| Timestamp::now().duration_since(t).unsigned_abs())
            .unwrap_or_default();
        if idle > UPLOAD_STALL {
            return Err(refused(
                "UploadIncomplete",
                format!(
                    "{have} of {} upload chunks arrived and none for {} minutes; missing {chunk} {list}{more}: delete migrationpackage {name} and upload again",
                    chunks.count,
                    UPLOAD_STALL.as_secs() / 60
                ),
            ));
        }
        return Err(PackageError::Other(Error::Waiting {
            reason: "WaitingForChunks",
            message: format!(
                "received {have} of {} upload chunks; waiting for {chunk} {list}{more}",
                chunks.count
            ),
            retry_after: POLL,
        }));
    }

    // Every chunk is there: stream them in order, each checked on its own.
    let mut receiver = ctx
        .store
        .receiver(max_bytes)
        .map_err(|e| refused("StorageFailed", e.to_string()))?;
    for (index, cm_name) in &by_index {
        let Some(cm) = api.get_opt(cm_name).await? else {
            return Err(PackageError::Other(Error::Waiting {
                reason: "WaitingForChunks",
                message: format!(
                    "chunk {index} (ConfigMap {ns}/{cm_name}) disappeared; looking again"
                ),
                retry_after: POLL,
            }));
        };
        let bytes = chunk_bytes(&cm, *index).map_err(|m| refused("ChunkDigestMismatch", m))?;
        receiver.write(bytes).map_err(|e| match e {
            ReceiveError::TooLarge { limit } => refused(
                "PackageTooLarge",
                format!(
                    "the chunks of migrationpackage {name} add up to more than {limit} bytes (at chunk {index})"
                ),
            ),
            ReceiveError::Io(e) => refused("StorageFailed", format!("artifact store: {e}")),
        })?;
    }
    let (file, stored) = receiver
        .finish()
        .map_err(|e| refused("StorageFailed", e.to_string()))?;
    if stored.size != chunks.size || stored.digest != upload.digest {
        return Err(refused(
            "UploadDigestMismatch",
            format!(
                "the {} chunks of migrationpackage {name} add up to {} bytes with digest {}, but spec.source.upload says {} bytes with digest {}: upload the package again",
                chunks.count, stored.size, stored.digest, chunks.size, upload.digest
            ),
        ));
    }
    Ok(Received { file, stored })
}

/// Deletes the upload chunks of `pkg` (those it owns; already gone is
/// fine). Called only once status records the artifact: chunks deleted
/// before that, followed by a failed status write or a crash, would leave a
/// package that can neither find its chunks nor show its artifact. Nothing
/// to do, and no request, for a package not uploaded in chunks.
pub(super) async fn delete_upload_chunks(
    ctx: &Context,
    pkg: &MigrationPackage,
) -> Result<(), Error> {
    let chunked = pkg
        .spec
        .source
        .upload
        .as_ref()
        .is_some_and(|u| u.chunks.is_some());
    if !chunked {
        return Ok(());
    }
    let ns = pkg.namespace().unwrap_or_default();
    let name = pkg.name_any();
    let uid = pkg.uid().unwrap_or_default();
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let listed = api
        .list_metadata(&ListParams::default().labels(&format!("{UPLOAD_LABEL}={name}")))
        .await?;
    for meta in listed.items {
        if !meta.owner_references().iter().any(|o| o.uid == uid) {
            continue;
        }
        match api.delete(&meta.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Answers a download request: writes `artifact` as chunk ConfigMaps owned
/// by `pkg`, then records the answer in `status.download`.
pub(super) async fn answer_download(
    ctx: &Context,
    pkg: &MigrationPackage,
    artifact: &Artifact,
    request: &str,
) -> Result<(), Error> {
    let ns = pkg.namespace().unwrap_or_default();
    let name = pkg.name_any();
    let answer = match write_download(ctx, pkg, artifact, request).await {
        Ok(chunks) => {
            tracing::info!(namespace = %ns, package = %name, chunks, "download chunks written");
            PackageDownload {
                request: request.to_string(),
                chunks,
                digest: Some(artifact.digest.clone()),
                size: Some(artifact.size),
                message: None,
            }
        }
        Err(DownloadError::Kube(e)) => return Err(e.into()),
        Err(DownloadError::Wait(after)) => {
            return Err(Error::Waiting {
                reason: "DownloadRateLimited",
                message: format!(
                    "migrationpackage {ns}/{name} answered a download request less than {} s ago; this one is answered in {} s",
                    ctx.download_interval.as_secs(),
                    after.as_secs().max(1)
                ),
                retry_after: after,
            });
        }
        Err(DownloadError::Refused(message)) => PackageDownload {
            request: request.to_string(),
            chunks: 0,
            digest: None,
            size: None,
            message: Some(message),
        },
    };
    let patch = serde_json::json!({
        "apiVersion": MigrationPackage::api_version(&()),
        "kind": MigrationPackage::kind(&()),
        "status": {"download": answer},
    });
    Api::<MigrationPackage>::namespaced(ctx.client.clone(), &ns)
        .patch_status(
            &name,
            &PatchParams::apply(DOWNLOAD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    Ok(())
}

enum DownloadError {
    Kube(kube::Error),
    Refused(String),
    /// Rate-limited: answer after this long.
    Wait(Duration),
}

async fn write_download(
    ctx: &Context,
    pkg: &MigrationPackage,
    artifact: &Artifact,
    request: &str,
) -> Result<u32, DownloadError> {
    let ns = pkg.namespace().unwrap_or_default();
    let name = pkg.name_any();
    let uid = pkg.uid().unwrap_or_default();
    check_package_name(&name).map_err(DownloadError::Refused)?;
    if artifact.size > MAX_DOWNLOAD_BYTES {
        return Err(DownloadError::Refused(format!(
            "the artifact is {} bytes; downloads through the API server carry at most {MAX_DOWNLOAD_BYTES} bytes: download it from the artifact endpoint (kubectl migrate download --endpoint)",
            artifact.size
        )));
    }
    let path = ctx
        .store
        .path(&artifact.digest)
        .ok_or_else(|| DownloadError::Refused(format!("malformed digest {}", artifact.digest)))?;

    // One set per package: an earlier request's chunks go first. A package
    // answers one new request per interval (the operator remembers when it
    // last answered; a restart forgets, which costs at most one more).
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let listed = api
        .list_metadata(&ListParams::default().labels(&format!("{DOWNLOAD_LABEL}={name}")))
        .await
        .map_err(DownloadError::Kube)?;
    let this = request_id(request);
    let answered_already = listed.items.iter().any(|meta| {
        meta.owner_references().iter().any(|o| o.uid == uid)
            && meta.labels().get(DOWNLOAD_REQUEST_LABEL) == Some(&this)
    });
    if !answered_already && let Some(wait) = ctx.download_wait(&uid) {
        return Err(DownloadError::Wait(wait));
    }
    for meta in &listed.items {
        let ours = meta.owner_references().iter().any(|o| o.uid == uid);
        if ours && meta.labels().get(DOWNLOAD_REQUEST_LABEL) != Some(&this) {
            match api.delete(&meta.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(DownloadError::Kube(e)),
            }
        }
    }

    // The stored file, one chunk in memory at a time: hashed whole first
    // (nothing is written for an artifact that does not match its digest).
    let check = path.clone();
    let digest = tokio::task::spawn_blocking(move || -> std::io::Result<(String, u64)> {
        let mut file = std::fs::File::open(check)?;
        let mut hasher = Sha256::new();
        let size = std::io::copy(&mut file, &mut hasher)?;
        Ok((format!("sha256:{}", hex(&hasher.finalize())), size))
    })
    .await
    .map_err(|e| DownloadError::Refused(format!("reading the artifact failed: {e}")))?
    .map_err(|e| {
        DownloadError::Refused(format!(
            "artifact {} is not in the store: {e}",
            artifact.digest
        ))
    })?;
    if digest.0 != artifact.digest {
        return Err(DownloadError::Refused(format!(
            "the stored artifact does not match its digest {}; nothing written",
            artifact.digest
        )));
    }
    let labels = download_labels(&name, request);
    let count = chunk_count(digest.1);
    let mut file = tokio::fs::File::open(&path).await.map_err(|e| {
        DownloadError::Refused(format!(
            "artifact {} is not in the store: {e}",
            artifact.digest
        ))
    })?;
    let mut piece = vec![0u8; CHUNK_BYTES];
    for index in 0..count {
        let n = read_full(&mut file, &mut piece).await.map_err(|e| {
            DownloadError::Refused(format!("reading artifact {} failed: {e}", artifact.digest))
        })?;
        let cm = chunk(
            download_chunk_name(&name, request, index),
            labels.clone(),
            owner(pkg),
            index,
            &piece[..n],
        );
        match api.create(&PostParams::default(), &cm).await {
            Ok(_) => {}
            // Written by an earlier pass for the same request and artifact.
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(DownloadError::Kube(e)),
        }
    }
    Ok(count)
}

/// Fills `buf` from `file` unless the file ends first; returns the bytes read.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    use tokio::io::AsyncReadExt;
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Removes download chunks older than `older_than` in every namespace:
/// those a client never claimed. Only ConfigMaps a MigrationPackage owns
/// count: the label alone is anyone's to set. Returns how many it removed.
pub async fn remove_stale_downloads(
    client: &Client,
    older_than: Duration,
) -> Result<usize, kube::Error> {
    let listed = Api::<ConfigMap>::all(client.clone())
        .list_metadata(&ListParams::default().labels(DOWNLOAD_LABEL))
        .await?;
    let mut removed = 0;
    for meta in listed.items {
        let old = meta
            .creation_timestamp()
            .is_some_and(|t| Timestamp::now().duration_since(t.0).unsigned_abs() >= older_than);
        let chunk_of_package = meta
            .owner_references()
            .iter()
            .any(|o| o.kind == "MigrationPackage" && o.api_version.starts_with(crate::api::GROUP));
        if !old || !chunk_of_package {
            continue;
        }
        let ns = meta.namespace().unwrap_or_default();
        match Api::<ConfigMap>::namespaced(client.clone(), &ns)
            .delete(&meta.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => removed += 1,
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_30_mb_package_takes_44_chunks_each_under_the_object_limit() {
        assert_eq!(chunk_count(1), 1);
        assert_eq!(chunk_count(CHUNK_BYTES as u64), 1);
        assert_eq!(chunk_count(CHUNK_BYTES as u64 + 1), 2);
        assert_eq!(chunk_count(30 * 1024 * 1024), 44);
        // base64 of a full chunk, with room for metadata, under 1 MiB.
        assert!(CHUNK_BYTES.div_ceil(3) * 4 + 16 * 1024 < 1024 * 1024);
    }

    #[test]
    fn chunk_names_are_stable_and_distinct_per_package_and_request() {
        let a = upload_chunk_name("q4", "0123456789abcdef", 7);
        assert_eq!(a, "q4-upload-01234567-0007");
        assert_ne!(a, upload_chunk_name("q4", "fedcba9876543210", 7));
        let r1 = download_chunk_name("q4", "2026-01-01T00:00:00Z", 0);
        let r2 = download_chunk_name("q4", "2026-01-01T00:00:01Z", 0);
        assert_ne!(r1, r2);
        assert_eq!(r1, download_chunk_name("q4", "2026-01-01T00:00:00Z", 0));
        assert_eq!(request_id("x").len(), 16);
        assert!(check_package_name(&"a".repeat(63)).is_ok());
        assert!(
            check_package_name(&"a".repeat(64))
                .unwrap_err()
                .contains("at most 63")
        );
    }

    #[test]
    fn a_changed_chunk_is_refused_naming_it() {
        let mut cm = chunk(
            "q4-upload-01234567-0003".into(),
            upload_labels("q4"),
            OwnerReference::default(),
            3,
            b"original",
        );
        cm.metadata.namespace = Some("sales".into());
        assert_eq!(chunk_bytes(&cm, 3).unwrap(), b"original");
        assert_eq!(cm.labels()[INDEX_LABEL], "3");
        cm.binary_data
            .as_mut()
            .unwrap()
            .insert(CHUNK_KEY.into(), ByteString(b"tampered".to_vec()));
        let e = chunk_bytes(&cm, 3).unwrap_err();
        assert!(
            e.contains("chunk 3 (ConfigMap sales/q4-upload-01234567-0003)")
                && e.contains("changed after it was written"),
            "{e}"
        );
        cm.metadata.annotations = None;
        assert!(chunk_bytes(&cm, 3).unwrap_err().contains(CHUNK_DIGEST));
    }
}
