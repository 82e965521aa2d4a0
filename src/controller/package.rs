//! The MigrationPackage controller: fetch the package from its source,
//! verify it before anything uses it, store it by digest, and summarise it.
//!
//! The pass is an ordered chain: resolve the tenant's edition, check the
//! source against the edition, fetch into the store's incoming area, verify,
//! commit under the digest, summarise. Whatever happens, status is written
//! once at the end.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde::Serialize;

use super::status::{MAX_CONDITION_MESSAGE_BYTES, MAX_LISTED_PROBLEMS, bounded_problems, truncate};
use super::workspace::WORKSPACE_LABEL;
use super::{Context, Error, apply_status, chunks, publish_if_changed};
use crate::api::{
    Artifact, ComputeResource, EditionLimits, MigrationPackage, PackageSummary, Tenant, Workspace,
};
use crate::artifact::{ReceiveError, Stored};
use crate::conditions::{Outcome, READY, summarise};
use crate::edition;

/// The status this controller writes.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct PackageStatusPatch {
    observed_generation: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact: Option<Artifact>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<PackageSummary>,
    problems: Vec<String>,
    conditions: Vec<Condition>,
}

/// Records a verification in progress: `<generation>/<instance>`. Set when
/// verification starts (after the fetch, which streams to disk with bounded
/// memory and is simply done again after a crash), removed once the result
/// is in status. Found on a package by another operator process,
/// for the same generation, it means that process stopped (crashed, or was
/// killed for memory) in the middle: the package is then refused instead of
/// verified again, or one package could crash-loop the operator for every
/// tenant. An export (written by the operator from the workspace's own
/// objects, so an operator restart is the likely cause) is tried once more,
/// marked `<generation>/<instance>/again`, and refused only if that attempt
/// is interrupted too.
pub const VERIFYING: &str = "ferry.dev/verification-started";

/// This operator process, told apart from earlier ones (restarts keep the
/// pod's hostname and often the pid, not the start time).
fn instance() -> &'static str {
    static INSTANCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    INSTANCE.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{}-{nanos}", std::process::id())
    })
}

/// The marker value of this process for the package's generation.
fn our_marker(pkg: &MigrationPackage) -> String {
    format!("{}/{}", pkg.metadata.generation.unwrap_or(0), instance())
}

/// Writes the marker before the work starts; refuses the package when the
/// marker says an earlier process started on this generation and never
/// recorded a result.
async fn begin_verification(ctx: &Context, pkg: &MigrationPackage) -> Result<(), PackageError> {
    let mut ours = our_marker(pkg);
    match pkg.annotations().get(VERIFYING) {
        // This process's own earlier pass (it is alive: nothing crashed).
        Some(v) if is_ours(pkg, v) => return Ok(()),
        Some(v) if interrupted(pkg, v) => {
            let export = pkg.spec.source.export.is_some();
            if export && !v.ends_with(AGAIN) {
                ours.push_str(AGAIN);
            } else {
                return Err(refused(INTERRUPTED, interrupted_message(pkg, v)));
            }
        }
        _ => {}
    }
    set_marker(ctx, pkg, Some(&ours)).await?;
    Ok(())
}

/// The suffix of the marker of an export's second attempt.
const AGAIN: &str = "/again";

fn interrupted_message(pkg: &MigrationPackage, v: &str) -> String {
    let generation = pkg.metadata.generation.unwrap_or(0);
    if pkg.spec.source.export.is_some() {
        format!(
            "an export of generation {generation} was started twice ({VERIFYING}: {v}) and never recorded a result: the operator stopped or ran out of memory while writing or verifying it both times. It is not tried a third time, so that it cannot take the operator down again; it holds no export slot. Delete and re-create this MigrationPackage to export again (a Custom export of fewer objects is smaller)"
        )
    } else {
        format!(
            "a verification of generation {generation} started ({VERIFYING}: {v}) and never recorded a result: the operator stopped or ran out of memory while verifying this package. It is not tried again, so that it cannot take the operator down again: fix the package, then delete and re-create this MigrationPackage"
        )
    }
}

/// The generation and the process of marker `v`.
fn marker_parts(v: &str) -> Option<(&str, &str)> {
    let (generation, who) = v.split_once('/')?;
    Some((generation, who.strip_suffix(AGAIN).unwrap_or(who)))
}

/// Whether marker `v` is this process's attempt at this generation.
fn is_ours(pkg: &MigrationPackage, v: &str) -> bool {
    let generation = pkg.metadata.generation.unwrap_or(0).to_string();
    marker_parts(v).is_some_and(|(g, who)| g == generation && who == instance())
}

/// The reason of a package whose verification was interrupted.
const INTERRUPTED: &str = "VerificationInterrupted";

/// Whether marker `v` is another process's attempt at this generation.
fn interrupted(pkg: &MigrationPackage, v: &str) -> bool {
    let generation = pkg.metadata.generation.unwrap_or(0).to_string();
    marker_parts(v).is_some_and(|(g, who)| g == generation && who != instance())
}

async fn set_marker(
    ctx: &Context,
    pkg: &MigrationPackage,
    value: Option<&str>,
) -> Result<(), kube::Error> {
    let api: Api<MigrationPackage> =
        Api::namespaced(ctx.client.clone(), &pkg.namespace().unwrap_or_default());
    api.patch(
        &pkg.name_any(),
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(serde_json::json!({
            "metadata": {"annotations": {VERIFYING: value}}
        })),
    )
    .await?;
    Ok(())
}

/// The source kind, as status and printer columns show it.
pub fn source_kind(pkg: &MigrationPackage) -> &'static str {
    let s = &pkg.spec.source;
    if s.config_map.is_some() {
        "ConfigMap"
    } else if s.secret.is_some() {
        "Secret"
    } else if s.url.is_some() {
        "URL"
    } else if s.object_store.is_some() {
        "ObjectStore"
    } else if s.export.is_some() {
        "Export"
    } else if s.upload.is_some() {
        "Upload"
    } else {
        "None"
    }
}

/// Whether the edition allows this kind of source, and the size limit that
/// applies. Pure: the seed's table decides.
pub fn source_allowance(
    kind: &str,
    limits: &EditionLimits,
    edition: crate::api::Edition,
) -> Result<u64, String> {
    let verify_bound = ferry_package::Limits::default().max_uncompressed_bytes;
    match kind {
        "ConfigMap" | "Secret" | "Upload" => {
            match (limits.local_upload, limits.max_local_upload_bytes) {
                (true, Some(max)) => Ok(max),
                _ => Err(format!(
                    "the {edition:?} edition does not offer local upload: a {edition:?} tenant imports only packages exported inside the same tenant (use spec.source.export, or upgrade the edition)"
                )),
            }
        }
        "URL" | "ObjectStore" => {
            if limits.object_store_sources {
                Ok(verify_bound)
            } else if limits.local_upload {
                Err(format!(
                    "the {edition:?} edition does not allow object-store or URL sources; Professional and Enterprise do (upgrade the edition, or upload the package locally)"
                ))
            } else {
                // No local upload either: only the same tenant's exports.
                Err(format!(
                    "the {edition:?} edition does not allow object-store or URL sources; Professional and Enterprise do (upgrade the edition, or export the objects from one of the tenant's workspaces with spec.source.export)"
                ))
            }
        }
        "Export" => Ok(verify_bound),
        other => Err(format!("spec.source: unknown source kind {other}")),
    }
}

/// The tenant of the workspace whose namespace holds `ns`.
pub async fn tenant_of_namespace(ctx: &Context, ns: &str) -> Result<(Workspace, Tenant), Error> {
    let namespace = Api::<Namespace>::all(ctx.client.clone())
        .get_opt(ns)
        .await?;
    let Some(ws_name) = namespace
        .as_ref()
        .and_then(|n| n.labels().get(WORKSPACE_LABEL).cloned())
    else {
        // The Workspace controller labels its namespace shortly after the
        // Workspace appears: wait for that rather than stall.
        return Err(Error::Waiting {
            reason: "NoWorkspace",
            message: format!(
                "namespace {ns} belongs to no Workspace (no {WORKSPACE_LABEL} label): create the Workspace first"
            ),
            retry_after: std::time::Duration::from_secs(5),
        });
    };
    let Some(ws) = Api::<Workspace>::all(ctx.client.clone())
        .get_opt(&ws_name)
        .await?
    else {
        return Err(Error::Stalled {
            reason: "NoWorkspace",
            message: format!("Workspace {ws_name} of namespace {ns} does not exist"),
        });
    };
    // The label is a hint anyone who may label namespaces can write; the
    // Workspace says which namespace is its own. A namespace labelled with
    // another namespace's workspace would borrow that tenant's edition.
    if ws.spec.namespace != ns {
        return Err(Error::Stalled {
            reason: "NoWorkspace",
            message: format!(
                "namespace {ns} is labelled {WORKSPACE_LABEL}={ws_name}, but Workspace {ws_name} holds namespace {}: this namespace belongs to no Workspace; remove the label, or create a Workspace for it",
                ws.spec.namespace
            ),
        });
    }
    let Some(tenant) = Api::<Tenant>::all(ctx.client.clone())
        .get_opt(&ws.spec.tenant)
        .await?
    else {
        return Err(Error::Stalled {
            reason: "TenantNotFound",
            message: format!(
                "Tenant {} of Workspace {ws_name} does not exist",
                ws.spec.tenant
            ),
        });
    };
    Ok((ws, tenant))
}

#[tracing::instrument(skip_all, fields(package = %pkg.name_any(), namespace = pkg.namespace().unwrap_or_default()))]
async fn reconcile(pkg: Arc<MigrationPackage>, ctx: Arc<Context>) -> Result<Action, Error> {
    let generation = pkg.metadata.generation;
    let status = pkg.status.clone().unwrap_or_default();
    let done = status.observed_generation == generation
        && crate::conditions::is_true(&status.conditions, READY)
        && status
            .artifact
            .as_ref()
            .is_some_and(|a| ctx.store.path(&a.digest).is_some_and(|p| p.exists()));
    if done {
        // Upload chunks go only once status records the artifact (a crash
        // before that must find them again); this finishes a deletion an
        // earlier pass did not get to.
        chunks::delete_upload_chunks(&ctx, &pkg).await?;
        // A Ready package answers a download request (chunks through the
        // API server) once per annotation value.
        let requested = pkg.annotations().get(chunks::DOWNLOAD_REQUESTED);
        if let (Some(request), Some(artifact)) = (requested, status.artifact.as_ref())
            && status.download.as_ref().map(|d| d.request.as_str()) != Some(request.as_str())
        {
            chunks::answer_download(&ctx, &pkg, artifact, request).await?;
        }
        // Status records the result for this generation: a marker left by a
        // pass that stopped before removing it is stale, whoever wrote it.
        if pkg.annotations().contains_key(VERIFYING) {
            set_marker(&ctx, pkg.as_ref(), None).await?;
        }
        return Ok(Action::await_change());
    }
    let kind = source_kind(&pkg);
    let mut patch = PackageStatusPatch {
        observed_generation: generation,
        source_kind: Some(kind.into()),
        ..Default::default()
    };
    let mut requeue = None;
    // Whether the result of this pass may clear the verification marker:
    // not while waiting (the work is not done), not when the pass refused
    // the package for an interrupted verification (the marker is the record).
    let mut clear_marker = true;
    let mut began = false;
    let outcome = match build(&pkg, &ctx, kind, &mut began).await {
        Ok((artifact, mut summary)) => {
            let mut msg = format!(
                "verified {} objects, stored as {}",
                summary.total_objects, artifact.digest
            );
            // One entry per distinct value in the package: bounded like
            // problems, and the message says what was left out.
            let (computes, groups) = (
                summary.compute_resources.len(),
                summary.resource_groups.len(),
            );
            if computes > MAX_LISTED_PROBLEMS || groups > MAX_LISTED_PROBLEMS {
                summary.compute_resources.truncate(MAX_LISTED_PROBLEMS);
                summary.resource_groups.truncate(MAX_LISTED_PROBLEMS);
                msg.push_str(&format!(
                    "; the summary lists the first {MAX_LISTED_PROBLEMS} of {computes} compute resources and of {groups} resource groups"
                ));
            }
            patch.artifact = Some(artifact);
            patch.summary = Some(summary);
            Outcome::ready("Verified", msg)
        }
        Err(PackageError::Refused { reason, problems }) => {
            clear_marker = reason != INTERRUPTED;
            let (listed, message) = bounded_problems(&problems);
            patch.problems = listed;
            Outcome::stalled(reason, message)
        }
        Err(PackageError::Other(Error::Stalled { reason, message })) => {
            Outcome::stalled(reason, truncate(&message, MAX_CONDITION_MESSAGE_BYTES))
        }
        // Something that comes by itself (upload chunks still arriving):
        // say so in the conditions and look again.
        Err(PackageError::Other(Error::Waiting {
            reason,
            message,
            retry_after,
        })) => {
            requeue = Some(retry_after);
            clear_marker = false;
            Outcome::progressing(reason, truncate(&message, MAX_CONDITION_MESSAGE_BYTES))
        }
        Err(PackageError::Other(e)) => return Err(e),
    };
    let before = status.conditions.clone();
    patch.conditions = summarise(&before, &outcome, generation, Timestamp::now());
    let api: Api<MigrationPackage> =
        Api::namespaced(ctx.client.clone(), &pkg.namespace().unwrap_or_default());
    let mut after = patch.conditions.clone();
    let mut stored = patch.artifact.is_some();
    match apply_status(&api, pkg.as_ref(), patch).await {
        Ok(()) => {}
        // The status computed from the package was refused by the CRD's
        // schema: retried, it would be refused forever with nothing shown.
        // Say so in a status that holds only the refusal.
        Err(kube::Error::Api(s)) if s.code == 422 => {
            tracing::error!(package = %pkg.name_any(), error = %s.message, "the package's status was refused");
            let outcome = Outcome::stalled(
                "StatusRejected",
                truncate(
                    &format!(
                        "the API server refused the status Ferry computed for this package ({}); nothing was recorded. This is a defect of Ferry or of an outdated CRD: report it with this message",
                        s.message
                    ),
                    MAX_CONDITION_MESSAGE_BYTES,
                ),
            );
            after = summarise(&before, &outcome, generation, Timestamp::now());
            stored = false;
            let fallback = PackageStatusPatch {
                observed_generation: generation,
                source_kind: Some(kind.into()),
                conditions: after.clone(),
                ..Default::default()
            };
            apply_status(&api, pkg.as_ref(), fallback).await?;
        }
        Err(e) => return Err(e.into()),
    }
    if stored {
        chunks::delete_upload_chunks(&ctx, &pkg).await?;
    }
    // The result is recorded: the attempt is over. Only this process's
    // marker is removed; the one of an interrupted attempt stays with its
    // refusal (the source is immutable: a new attempt is a new object).
    let marked = pkg
        .annotations()
        .get(VERIFYING)
        .is_some_and(|v| !interrupted(&pkg, v));
    if clear_marker && (marked || began) {
        set_marker(&ctx, pkg.as_ref(), None).await?;
    }
    publish_if_changed(&ctx, pkg.as_ref(), &before, &after).await;
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// A package refused for good, with every problem found.
pub(super) enum PackageError {
    Refused {
        reason: &'static str,
        problems: Vec<String>,
    },
    Other(Error),
}

impl From<Error> for PackageError {
    fn from(e: Error) -> Self {
        PackageError::Other(e)
    }
}
impl From<kube::Error> for PackageError {
    fn from(e: kube::Error) -> Self {
        PackageError::Other(Error::Kube(e))
    }
}

pub(super) fn refused(reason: &'static str, problem: impl Into<String>) -> PackageError {
    PackageError::Refused {
        reason,
        problems: vec![problem.into()],
    }
}

/// `began` is set once the verification marker is written.
async fn build(
    pkg: &MigrationPackage,
    ctx: &Context,
    kind: &'static str,
    began: &mut bool,
) -> Result<(Artifact, PackageSummary), PackageError> {
    let built = build_once(pkg, ctx, kind, began).await;
    if built.is_err()
        && let Some(export) = &pkg.spec.source.export
    {
        // The seed counts only successful exports: whatever failed (the
        // source, the writing, verification, storage), this package holds
        // no slot. A no-op unless an earlier attempt had claimed one.
        super::export::release(ctx, pkg, export).await?;
    }
    built
}

async fn build_once(
    pkg: &MigrationPackage,
    ctx: &Context,
    kind: &'static str,
    began: &mut bool,
) -> Result<(Artifact, PackageSummary), PackageError> {
    let ns = pkg.namespace().unwrap_or_default();
    let (_workspace, tenant) = tenant_of_namespace(ctx, &ns).await?;
    let limits = edition::limits(tenant.spec.edition);
    let max_bytes = source_allowance(kind, &limits, tenant.spec.edition)
        .map_err(|m| refused("EditionLimit", m))?;

    let mut skipped = Vec::new();
    let fetched = match &pkg.spec.source.export {
        Some(export) => {
            let exported = super::export::export_package(ctx, pkg, export).await?;
            skipped = exported.skipped;
            Fetched::Bytes(exported.bytes)
        }
        None => fetch(pkg, ctx, &ns, kind, max_bytes).await?,
    };
    let fetched = match fetched {
        Fetched::Bytes(bytes) => {
            if bytes.len() as u64 > max_bytes {
                return Err(refused(
                    "PackageTooLarge",
                    format!(
                        "the package is {} bytes; a {kind} source allows at most {max_bytes} bytes on the {:?} edition",
                        bytes.len(),
                        tenant.spec.edition
                    ),
                ));
            }
            Fetched::Bytes(bytes)
        }
        received => received,
    };
    begin_verification(ctx, pkg).await?;
    *began = true;
    let store = ctx.store.clone();
    let verified = tokio::task::spawn_blocking(move || verify(&store, fetched, max_bytes))
        .await
        .map_err(|e| Error::Stalled {
            reason: "InternalError",
            message: format!("verification task failed: {e}"),
        })?;
    let (file, stored, mut summary) = verified?;
    if let Some(export) = &pkg.spec.source.export {
        // Verified: only now does the export count (the seed: "each
        // successful export task generates one package"). Claimed before
        // the artifact is stored, so an export refused at the limit
        // leaves nothing behind.
        super::export::claim(ctx, pkg, export).await?;
        summary.skipped_objects = skipped.len() as u64;
        summary.skipped = super::export::first_lines(skipped);
    }
    ctx.store
        .commit(file, &stored)
        .map_err(|e| refused("StorageFailed", e.to_string()))?;
    // Upload chunks are deleted by the caller once the status recording
    // the artifact is written (a crash before that finds them again).
    let url = ctx
        .artifact_base_url
        .as_ref()
        .map(|base| format!("{base}/{ns}/{}", pkg.name_any()));
    Ok((
        Artifact {
            digest: stored.digest,
            size: stored.size,
            url,
        },
        summary,
    ))
}

/// Receives and verifies the whole package; the caller stores it (commits
/// the file under its digest) only after this succeeds, so nothing
/// unverified ever lands under a digest.
fn verify(
    store: &crate::artifact::ArtifactStore,
    fetched: Fetched,
    max_bytes: u64,
) -> Result<(tempfile::NamedTempFile, Stored, PackageSummary), PackageError> {
    let (file, stored) = match fetched {
        Fetched::Bytes(bytes) => store.receive(&bytes[..], max_bytes).map_err(|e| match e {
            ReceiveError::TooLarge { limit } => refused(
                "PackageTooLarge",
                format!("the package is larger than {limit} bytes"),
            ),
            ReceiveError::Io(e) => refused("StorageFailed", format!("artifact store: {e}")),
        })?,
        Fetched::Chunks(received) => (received.file, received.stored),
    };
    let limits = ferry_package::Limits {
        max_package_bytes: max_bytes,
        ..Default::default()
    };
    let reader =
        std::fs::File::open(file.path()).map_err(|e| refused("StorageFailed", e.to_string()))?;
    let reader = ferry_package::PackageReader::open(std::io::BufReader::new(reader), &limits)
        .map_err(|e| PackageError::Refused {
            reason: "VerificationFailed",
            problems: e.problems.iter().map(ToString::to_string).collect(),
        })?;
    let summary = to_status_summary(&reader.summary());
    Ok((file, stored, summary))
}

/// The package crate's summary in the CRD's shape.
pub fn to_status_summary(s: &ferry_package::PackageSummary) -> PackageSummary {
    let non_empty = |v: &str| (!v.is_empty()).then(|| v.to_string());
    PackageSummary {
        source_tenant: s.source.tenant.as_deref().and_then(non_empty),
        source_workspace: s.source.workspace.as_deref().and_then(non_empty),
        source_project: s.source.project_name.as_deref().and_then(non_empty),
        source_region: s.source.region.as_deref().and_then(non_empty),
        total_objects: s.total_objects,
        objects: s
            .objects
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
        compute_resources: s
            .compute_resources
            .iter()
            .map(|c| ComputeResource {
                name: c.name.clone(),
                type_: c.type_.clone(),
                project: None,
            })
            .collect(),
        resource_groups: s.resource_groups.clone(),
        skipped: Vec::new(),
        skipped_objects: 0,
    }
}

/// A package's bytes as its source gave them.
enum Fetched {
    /// In memory.
    Bytes(Vec<u8>),
    /// Already streamed into the store's incoming area (upload chunks, a
    /// URL, an object store).
    Chunks(chunks::Received),
}

/// The package's bytes from its source.
async fn fetch(
    pkg: &MigrationPackage,
    ctx: &Context,
    ns: &str,
    kind: &str,
    max_bytes: u64,
) -> Result<Fetched, PackageError> {
    let source = &pkg.spec.source;
    if let Some(upload) = &source.upload
        && let Some(parts) = &upload.chunks
    {
        let received = chunks::receive_upload(ctx, pkg, upload, parts, max_bytes).await?;
        return Ok(Fetched::Chunks(received));
    }
    // Streamed into the store's incoming area, never whole into memory.
    if let Some(url) = &source.url {
        let received = super::remote::fetch_url(ctx, ns, url, max_bytes).await?;
        return Ok(Fetched::Chunks(received));
    }
    if let Some(store) = &source.object_store {
        let received = super::remote::fetch_object_store(ctx, ns, store, max_bytes).await?;
        return Ok(Fetched::Chunks(received));
    }
    fetch_in_memory(pkg, ctx, ns, kind)
        .await
        .map(Fetched::Bytes)
}

async fn fetch_in_memory(
    pkg: &MigrationPackage,
    ctx: &Context,
    ns: &str,
    kind: &str,
) -> Result<Vec<u8>, PackageError> {
    let source = &pkg.spec.source;
    if let Some(sel) = &source.config_map {
        check_object_name("spec.source.configMap.name", &sel.name)?;
        let cm = Api::<ConfigMap>::namespaced(ctx.client.clone(), ns)
            .get_opt(&sel.name)
            .await?;
        let Some(cm) = cm else {
            return Err(refused(
                "SourceNotFound",
                format!(
                    "spec.source.configMap: ConfigMap {ns}/{} does not exist",
                    sel.name
                ),
            ));
        };
        let binary = cm
            .binary_data
            .as_ref()
            .and_then(|d| d.get(&sel.key))
            .map(|b| b.0.clone());
        let text = cm
            .data
            .as_ref()
            .and_then(|d| d.get(&sel.key))
            .map(|s| s.clone().into_bytes());
        return binary.or(text).ok_or_else(|| {
            refused(
                "SourceNotFound",
                format!(
                    "spec.source.configMap: ConfigMap {ns}/{} has no key {:?}",
                    sel.name, sel.key
                ),
            )
        });
    }
    if let Some(sel) = &source.secret {
        check_object_name("spec.source.secret.name", &sel.name)?;
        // Read as the namespace's workspace identity: the operator itself
        // may read no Secret (see `tenancy`).
        let secret = Api::<Secret>::namespaced(super::tenancy::client_as(ctx, ns), ns)
            .get_opt(&sel.name)
            .await
            .map_err(|e| {
                super::tenancy::forbidden_or(ctx, ns, "spec.source.secret", "Secret", &sel.name, e)
            })?;
        let Some(secret) = secret else {
            return Err(refused(
                "SourceNotFound",
                format!(
                    "spec.source.secret: Secret {ns}/{} does not exist",
                    sel.name
                ),
            ));
        };
        return secret
            .data
            .as_ref()
            .and_then(|d| d.get(&sel.key))
            .map(|b| b.0.clone())
            .ok_or_else(|| {
                refused(
                    "SourceNotFound",
                    format!(
                        "spec.source.secret: Secret {ns}/{} has no key {:?}",
                        sel.name, sel.key
                    ),
                )
            });
    }
    if let Some(upload) = &source.upload {
        if !ctx.store.was_uploaded(ns, &upload.digest) {
            return Err(refused(
                "SourceNotFound",
                format!(
                    "spec.source.upload: no package with digest {} was uploaded from namespace {ns}; upload it first (kubectl migrate upload)",
                    upload.digest
                ),
            ));
        }
        let mut file = ctx
            .store
            .open_artifact(&upload.digest)
            .map_err(|e| refused("SourceNotFound", format!("spec.source.upload: {e}")))?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes)
            .map_err(|e| refused("StorageFailed", e.to_string()))?;
        return Ok(bytes);
    }
    Err(refused(
        "SourceNotSupported",
        format!("{kind} sources are not supported by this operator version yet"),
    ))
}

/// Security review 2.4: names go unencoded into API request paths, so
/// `../../kube-system/secrets/x` must never reach one (a path-normalising
/// proxy in front of the apiserver would follow it with the operator's
/// rights). ConfigMap and Secret names are DNS-1123 subdomains; the rule is
/// a few lines, written out here rather than pulled in with a crate.
pub(super) fn check_object_name(field: &str, name: &str) -> Result<(), PackageError> {
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 253
        && alnum(b[0])
        && alnum(b[b.len() - 1])
        && b.iter().all(|&c| alnum(c) || c == b'-' || c == b'.');
    if ok {
        return Ok(());
    }
    Err(refused(
        "InvalidName",
        format!(
            "{field} {:?}: not a valid object name (DNS-1123 subdomain: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters)",
            truncate(name, 300)
        ),
    ))
}

pub(super) use PackageError as Refusal;
pub(super) use refused as refuse;

/// What makes a package worth another pass: its identity, its spec
/// (generation) and its download request. Status writes and the
/// verification marker change nothing the controller acts on; reacting to
/// them would verify a refused package again after every pass.
fn worth_a_pass(pkg: &MigrationPackage) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    pkg.metadata.uid.hash(&mut h);
    pkg.metadata.generation.hash(&mut h);
    pkg.annotations()
        .get(chunks::DOWNLOAD_REQUESTED)
        .hash(&mut h);
    Some(h.finish())
}

/// Runs the MigrationPackage controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    use kube::runtime::WatchStreamExt;
    let (reader, writer) = kube::runtime::reflector::store::<MigrationPackage>();
    let changes = watcher(
        Api::<MigrationPackage>::all(ctx.client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(writer)
    .applied_objects()
    .predicate_filter(worth_a_pass, Default::default());
    Controller::for_stream(changes, reader)
        .graceful_shutdown_on(shutdown)
        .run(
            |obj, ctx| async move {
                let c = ctx.clone();
                let key = obj.clone();
                super::counted(
                    &c,
                    key.as_ref(),
                    super::timed(&c, "package", reconcile(obj, ctx)),
                )
                .await
            },
            super::error_policy,
            ctx,
        )
        .for_each(|_| async {})
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Edition;

    #[test]
    fn local_upload_is_refused_on_basic_and_limited_to_30_mb_elsewhere() {
        let basic = source_allowance(
            "ConfigMap",
            &edition::limits(Edition::Basic),
            Edition::Basic,
        )
        .unwrap_err();
        assert!(basic.contains("does not offer local upload"), "{basic}");
        for e in [
            Edition::Standard,
            Edition::Professional,
            Edition::Enterprise,
        ] {
            assert_eq!(
                source_allowance("Secret", &edition::limits(e), e),
                Ok(30 * 1024 * 1024)
            );
        }
    }

    #[test]
    fn source_names_must_be_dns_1123_subdomains() {
        for good in ["zips", "a", "q4.zip-2", &"a".repeat(253)] {
            assert!(check_object_name("f", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../../kube-system/secrets/x",
            "a/b",
            "Zips",
            "-a",
            "a.",
            "a%2fb",
            &"a".repeat(254),
        ] {
            let Err(PackageError::Refused { reason, problems }) =
                check_object_name("spec.source.secret.name", bad)
            else {
                panic!("{bad:?} accepted");
            };
            assert_eq!(reason, "InvalidName");
            assert!(
                problems[0].starts_with("spec.source.secret.name "),
                "{problems:?}"
            );
        }
    }

    #[test]
    fn object_store_sources_need_professional_or_enterprise() {
        for e in [Edition::Basic, Edition::Standard] {
            let err = source_allowance("ObjectStore", &edition::limits(e), e).unwrap_err();
            assert!(err.contains("upgrade the edition"), "{err}");
        }
        for e in [Edition::Professional, Edition::Enterprise] {
            assert!(source_allowance("ObjectStore", &edition::limits(e), e).is_ok());
        }
    }
}
