//! Writing planned objects into the destination namespace, and reporting
//! what each write did to the engine's ledger.
//!
//! Never overwrite: a new object is created only if absent (a `POST`). When
//! its name is taken, the object in the way is read: if this task wrote it
//! (an earlier run of the same phase, before a restart) the write goes on as
//! a server-side apply of our own object; otherwise it is a conflict, named
//! in the report, and nothing is written. That covers an object made by hand
//! after planning, another import writing the same object at the same time,
//! and a different object whose derived `metadata.name` collides.
//!
//! The one exception is an existing quality rule when the package holds rules
//! and tasks (the seed): its spec is replaced (`PUT` with the rule's
//! `resourceVersion`, so a concurrent change is retried, not lost), under its
//! own `metadata.name`, keeping its owner unless Change Owner says otherwise;
//! the spec it had is kept in the ledger.
//!
//! Two requests per object: the spec write, then one status write with the
//! lifecycle the object ends in. Every write is idempotent, so a phase
//! interrupted by a restart is run again; objects whose spec (by digest) or
//! state is already what the phase would write are skipped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_engine::naming::{
    ANNOTATION_IMPORT_TASK, DIGEST_LABEL_LEN, LABEL_CONTENT_DIGEST, LABEL_IMPORT_TASK_UID,
};
use ferry_engine::{ExistingObject, Plan, PlannedObject, Step, WriteResult};
use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::load::{Destination, api_resource};
use crate::controller::{Context, FIELD_MANAGER};

/// Requests in flight at once. The apiserver, not Ferry, should be the limit.
pub const CONCURRENCY: usize = 32;

/// Who wrote the objects.
#[derive(Clone)]
pub struct Origin {
    pub task: String,
    pub task_uid: String,
    pub package_digest: String,
}

impl Origin {
    fn json(&self) -> Value {
        json!({"importTask": self.task, "importTaskUid": self.task_uid, "packageDigest": self.package_digest})
    }
}

/// What one object's step came to.
#[derive(Debug)]
pub enum StepResult {
    /// For the ledger: done, a conflict, or refused.
    Settled(WriteResult),
    /// The apiserver was unavailable or busy: retry the phase later, not
    /// sooner than the server asked (its `Retry-After`).
    Transient(String, Option<std::time::Duration>),
    /// The task was deleted: nothing was attempted.
    Cancelled,
}

/// Runs `step` on the plan's objects at `indices`, `CONCURRENCY` at a time
/// (and within the operator-wide write slots), counting progress in `done`.
/// Returns each object's result with its index into the plan.
pub async fn run_step(
    ctx: &Context,
    target: &Target<'_>,
    step: Step,
    plan: &Plan,
    indices: &[usize],
    done: Arc<AtomicU64>,
) -> Vec<(usize, StepResult)> {
    // Indices, not references, flow through the stream: borrowed items make
    // the future's lifetimes too specific for the controller's Send bound.
    futures::stream::iter(indices.iter().copied())
        .map(|i| {
            let done = done.clone();
            let obj = &plan.objects[i];
            async move {
                if target.cancel.is_cancelled() {
                    return (i, StepResult::Cancelled);
                }
                // Held for this object's requests; the semaphore is never
                // closed, so acquiring cannot fail.
                let _slot = ctx.write_slots.acquire().await.ok();
                if target.cancel.is_cancelled() {
                    return (i, StepResult::Cancelled);
                }
                let r = match one(ctx, target, step, obj).await {
                    Ok(result) => StepResult::Settled(result),
                    Err(Refusal {
                        message,
                        transient,
                        server,
                    }) if transient => StepResult::Transient(
                        format!(
                            "{} {:?} ({}): {message}",
                            obj.object_type.as_str(),
                            obj.name,
                            obj.kube_name
                        ),
                        server,
                    ),
                    Err(Refusal { message, .. }) => {
                        StepResult::Settled(WriteResult::Refused(message))
                    }
                };
                done.fetch_add(1, Ordering::Relaxed);
                (i, r)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await
}

/// The server-side apply body of an object.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct ApplyBody<'a> {
    api_version: &'a str,
    kind: &'a str,
    metadata: Value,
    spec: &'a RawValue,
}

/// Where and for whom a step writes.
pub struct Target<'a> {
    pub ns: &'a str,
    /// The destination as listed when the phase began.
    pub dest: &'a Destination,
    pub origin: &'a Origin,
    /// `committingRules.tables`: (development, production).
    pub tables: (bool, bool),
    /// Change Owner is Not Modify: an updated rule keeps its owner.
    pub keep_owner: bool,
    /// Cancelled when the task is deleted: stop before the next object.
    pub cancel: &'a CancellationToken,
}

/// Why an object's step did not get through.
struct Refusal {
    message: String,
    /// The apiserver was unavailable or busy (retry the phase), rather than
    /// refusing the object (fail the import).
    transient: bool,
    /// How long the apiserver asked us to wait, when it said.
    server: Option<std::time::Duration>,
}

async fn one(
    ctx: &Context,
    target: &Target<'_>,
    step: Step,
    obj: &PlannedObject,
) -> Result<WriteResult, Refusal> {
    let Target {
        ns,
        dest,
        origin,
        tables: (tables_dev, tables_prod),
        ..
    } = *target;
    let ar = api_resource(obj.object_type);
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &ar);
    let ours = dest.ours.get(&(obj.object_type, obj.kube_name.clone()));
    let is_table = obj.object_type == ferry_package::ObjectType::Table;
    let now = Timestamp::now().to_string();
    let describe = |e: kube::Error| describe(obj, e);
    let mut previous_spec = None;
    match step {
        Step::Write | Step::WriteRule => {
            let digest_label =
                &obj.content_digest[..DIGEST_LABEL_LEN.min(obj.content_digest.len())];
            let current = ours.and_then(|o| o.digest_label.as_deref()) == Some(digest_label);
            let mut generation = ours.and_then(|o| o.generation);
            if !current {
                let mut labels = serde_json::to_value(obj.labels()).unwrap_or_default();
                labels[LABEL_CONTENT_DIGEST] = json!(digest_label);
                let body = ApplyBody {
                    api_version: &ar.api_version,
                    kind: &ar.kind,
                    metadata: json!({"name": obj.kube_name, "labels": labels, "annotations": obj.annotations()}),
                    spec: obj.spec.raw(),
                };
                let written = if ours.is_some() {
                    // Our own object, from an earlier plan of this task.
                    apply_ours(ctx, &api, obj, &body).await.map_err(describe)?
                } else if obj.action == ferry_engine::Action::Update {
                    match replace_rule(ctx, &api, target, obj, &body).await? {
                        Replaced::Done {
                            generation,
                            previous,
                        } => {
                            previous_spec = previous;
                            generation
                        }
                        Replaced::Conflict(e) => return Ok(WriteResult::Conflict(e)),
                    }
                } else {
                    match create(ctx, &api, obj, &body).await? {
                        Created::Done(generation) => generation,
                        Created::Conflict(e) => return Ok(WriteResult::Conflict(e)),
                    }
                };
                generation = written;
            }
            let status = if step == Step::WriteRule {
                // Rules take their whole lifecycle in one status write. A
                // rule whose table is missing is not active: it waits, and
                // the rule controller activates it when the table appears.
                let link = obj.rule.clone().unwrap_or_default();
                let deploy = obj.delivery.commit && obj.delivery.deploy;
                let state = if deploy && !link.attached {
                    "WaitingForTable"
                } else if deploy {
                    "Deployed"
                } else if obj.delivery.commit {
                    "Committed"
                } else {
                    "Saved"
                };
                let mut s = json!({"state": state, "origin": origin.json(), "lastTransitionTime": now,
                    "attached": link.attached, "associatedTasks": link.associated_tasks});
                if obj.delivery.commit {
                    s["committedRevision"] = json!(generation);
                }
                if deploy && link.attached {
                    s["deployedRevision"] = json!(generation);
                }
                Some(s)
            } else if !obj.delivery.commit {
                Some(json!({"state": "Saved", "origin": origin.json(), "lastTransitionTime": now}))
            } else {
                None // the commit step records the origin with its state
            };
            if let Some(status) = status {
                patch_status(&api, &ar, &obj.kube_name, status)
                    .await
                    .map_err(describe)?;
            }
        }
        Step::Commit => {
            let generation = ours.and_then(|o| o.generation);
            let mut s = json!({"state": "Committed", "origin": origin.json(), "committedRevision": generation, "lastTransitionTime": now});
            if is_table {
                s["inDevelopment"] = json!(tables_dev);
            }
            patch_status(&api, &ar, &obj.kube_name, s)
                .await
                .map_err(describe)?;
        }
        Step::Deploy => {
            // Server-side apply drops fields this manager set before and
            // leaves out now: the deploy patch restates the commit's fields.
            let generation = ours.and_then(|o| o.generation);
            let mut s = json!({"state": "Deployed", "origin": origin.json(), "committedRevision": generation,
                "deployedRevision": generation, "lastTransitionTime": now});
            if is_table {
                s["inDevelopment"] = json!(tables_dev);
                s["inProduction"] = json!(tables_prod);
            }
            patch_status(&api, &ar, &obj.kube_name, s)
                .await
                .map_err(describe)?;
        }
    }
    Ok(WriteResult::Done { previous_spec })
}

/// A refusal, classified: the apiserver refusing the object itself (4xx
/// but 409 and 429) fails it; anything else is retried. The message is the
/// apiserver's; the ledger's record names the object.
fn describe(_obj: &PlannedObject, e: kube::Error) -> Refusal {
    let transient = match &e {
        kube::Error::Api(s) => !(400..500).contains(&s.code) || s.code == 429 || s.code == 409,
        _ => true,
    };
    Refusal {
        message: short(&e),
        transient,
        server: crate::controller::error::server_retry_after(&e),
    }
}

enum Created {
    Done(Option<i64>),
    Conflict(ExistingObject),
}

/// Creates the object only if its name is free. A taken name is ours (an
/// earlier run of this phase wrote it: apply again) or a conflict.
async fn create(
    ctx: &Context,
    api: &Api<DynamicObject>,
    obj: &PlannedObject,
    body: &ApplyBody<'_>,
) -> Result<Created, Refusal> {
    let describe = |e: kube::Error| describe(obj, e);
    let bytes = serde_json::to_vec(body).expect("apply bodies serialise");
    let mut req = kube::core::Request::new(api.resource_url())
        .create(
            &PostParams {
                field_manager: Some(FIELD_MANAGER.to_string()),
                ..Default::default()
            },
            bytes,
        )
        .map_err(|e| describe(kube::Error::BuildRequest(e)))?;
    skip_field_validation(&mut req);
    match ctx.client.request::<Written>(req).await {
        Ok(w) => Ok(Created::Done(w.metadata.generation)),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let Some(existing) = api.get_opt(&obj.kube_name).await.map_err(describe)? else {
                // Deleted between our create and our read: the next pass
                // of the phase creates it.
                return Err(Refusal {
                    message: "the name was taken, then freed again".into(),
                    transient: true,
                    server: None,
                });
            };
            if written_by_this_task(&existing, obj) {
                let generation = apply_ours(ctx, api, obj, body).await.map_err(describe)?;
                return Ok(Created::Done(generation));
            }
            Ok(Created::Conflict(in_the_way(&existing)))
        }
        Err(e) => Err(describe(e)),
    }
}

enum Replaced {
    Done {
        generation: Option<i64>,
        previous: Option<String>,
    },
    Conflict(ExistingObject),
}

/// Replaces an existing quality rule's spec with the package's (not merged
/// with what other managers wrote), under the rule's own `metadata.name`,
/// with its `resourceVersion` so that a concurrent change makes this a
/// retry rather than a lost update.
async fn replace_rule(
    ctx: &Context,
    api: &Api<DynamicObject>,
    target: &Target<'_>,
    obj: &PlannedObject,
    body: &ApplyBody<'_>,
) -> Result<Replaced, Refusal> {
    let describe = |e: kube::Error| describe(obj, e);
    let Some(mut existing) = api.get_opt(&obj.kube_name).await.map_err(describe)? else {
        // The rule was deleted after planning: create it.
        return Ok(match create(ctx, api, obj, body).await? {
            Created::Done(generation) => Replaced::Done {
                generation,
                previous: None,
            },
            Created::Conflict(e) => Replaced::Conflict(e),
        });
    };
    let real = real_name(&existing);
    if real != obj.name {
        // The name now holds another rule: never overwrite it.
        return Ok(Replaced::Conflict(in_the_way(&existing)));
    }
    let previous = existing.data.get("spec").map(|s| s.to_string());
    let mut spec: Value = serde_json::from_str(obj.spec.raw().get()).unwrap_or_default();
    if target.keep_owner
        && let Some(owner) = existing
            .data
            .get("spec")
            .and_then(|s| s.get("owner"))
            .and_then(Value::as_str)
            .filter(|o| !o.is_empty())
    {
        spec["owner"] = json!(owner);
    }
    let meta = &mut existing.metadata;
    meta.labels
        .get_or_insert_default()
        .extend(body_map(&body.metadata["labels"]));
    meta.annotations
        .get_or_insert_default()
        .extend(body_map(&body.metadata["annotations"]));
    meta.managed_fields = None;
    existing.data["spec"] = spec;
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..Default::default()
    };
    let replaced = api
        .replace(&obj.kube_name, &pp, &existing)
        .await
        .map_err(describe)?;
    Ok(Replaced::Done {
        generation: replaced.metadata.generation,
        previous,
    })
}

fn body_map(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Server-side apply of an object this task wrote before.
async fn apply_ours(
    ctx: &Context,
    api: &Api<DynamicObject>,
    obj: &PlannedObject,
    body: &ApplyBody<'_>,
) -> Result<Option<i64>, kube::Error> {
    let req = kube::core::Request::new(api.resource_url())
        .patch(&obj.kube_name, &write_params(), &Patch::Apply(body))
        .map_err(kube::Error::BuildRequest)?;
    let written: Written = ctx.client.request(req).await?;
    Ok(written.metadata.generation)
}

/// Whether this task wrote `existing`: it carries the task's UID label and
/// the same real name.
fn written_by_this_task(existing: &DynamicObject, obj: &PlannedObject) -> bool {
    let uid = &obj.importer.uid;
    let labels = existing.metadata.labels.as_ref();
    labels.and_then(|l| l.get(LABEL_IMPORT_TASK_UID)) == Some(uid)
        && real_name(existing) == obj.name
}

fn real_name(o: &DynamicObject) -> String {
    o.data
        .get("spec")
        .and_then(|s| s.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The destination's object, named as it is there.
fn in_the_way(o: &DynamicObject) -> ExistingObject {
    ExistingObject {
        kube_name: o.metadata.name.clone().unwrap_or_default(),
        name: real_name(o),
        import_task: o
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_IMPORT_TASK))
            .cloned(),
    }
}

/// Adds `fieldValidation=Ignore` to a create: the bodies are Ferry's own.
fn skip_field_validation(req: &mut http::Request<Vec<u8>>) {
    let uri = req.uri().to_string();
    let sep = if uri.contains('?') { '&' } else { '?' };
    if let Ok(u) = format!("{uri}{sep}fieldValidation=Ignore").parse() {
        *req.uri_mut() = u;
    }
}

async fn patch_status(
    api: &Api<DynamicObject>,
    ar: &kube::api::ApiResource,
    name: &str,
    status: Value,
) -> Result<(), kube::Error> {
    let body = json!({"apiVersion": ar.api_version, "kind": ar.kind, "status": status});
    let req = kube::core::Request::new(api.resource_url())
        .patch_subresource("status", name, &write_params(), &Patch::Apply(&body))
        .map_err(kube::Error::BuildRequest)?;
    let client: kube::Client = api.clone().into_client();
    client.request::<IgnoredAny>(req).await?;
    Ok(())
}

/// Server-side apply as Ferry, taking over fields others changed, without
/// the apiserver's unknown-field detection: the bodies are built from
/// Ferry's own types, and the detection (`Warn`, the default) costs the
/// apiserver CPU on every write while its warnings are never read.
fn write_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER)
        .force()
        .validation_ignore()
}

/// What a write's response is read for: the new generation. The response
/// is the whole object; deserialising only this skips building it.
#[derive(Deserialize)]
struct Written {
    metadata: WrittenMeta,
}

#[derive(Deserialize)]
struct WrittenMeta {
    generation: Option<i64>,
}

fn short(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    }
}
