//! Writing planned objects into the destination namespace: server-side apply
//! of the spec with one field manager, then the lifecycle in status.
//!
//! Two requests per object: the spec apply, then one status write with the
//! lifecycle the object ends in (saved when it will not be committed,
//! committed when it is committed but not deployed, deployed, which records
//! the commit too, when it is deployed). Every write is idempotent, so a phase
//! interrupted by a restart is simply run again; objects whose spec (by
//! digest) or state is already what the phase would write are skipped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_engine::PlannedObject;
use ferry_engine::naming::{DIGEST_LABEL_LEN, LABEL_CONTENT_DIGEST};
use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

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

/// A lifecycle step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Write the spec; record `Saved` when the object will not be committed.
    Write,
    Commit,
    Deploy,
    /// Quality rules: write the spec, then their final state in one patch.
    WriteRule,
}

/// Runs `step` on every object, `CONCURRENCY` at a time, counting progress
/// in `done`. Returns the failures.
pub async fn run_step(
    ctx: &Context,
    target: &Target<'_>,
    step: Step,
    objects: &[&PlannedObject],
    done: Arc<AtomicU64>,
) -> Vec<Failure> {
    // Indices, not references, flow through the stream: borrowed items make
    // the future's lifetimes too specific for the controller's Send bound.
    futures::stream::iter(0..objects.len())
        .map(|i| {
            let done = done.clone();
            let obj = objects[i];
            async move {
                // Held for this object's requests; the semaphore is never
                // closed, so acquiring cannot fail.
                let _slot = ctx.write_slots.acquire().await.ok();
                let r = one(ctx, target, step, obj).await;
                done.fetch_add(1, Ordering::Relaxed);
                r.err().map(|(message, transient)| Failure {
                    index: i,
                    message,
                    transient,
                })
            }
        })
        .buffer_unordered(CONCURRENCY)
        .filter_map(|r| async move { r })
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
}

async fn one(
    ctx: &Context,
    target: &Target<'_>,
    step: Step,
    obj: &PlannedObject,
) -> Result<(), (String, bool)> {
    let Target {
        ns,
        dest,
        origin,
        tables: (tables_dev, tables_prod),
    } = *target;
    let ar = api_resource(obj.object_type);
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &ar);
    let ours = dest.ours.get(&(obj.object_type, obj.kube_name.clone()));
    let is_table = obj.object_type == ferry_package::ObjectType::Table;
    let now = Timestamp::now().to_string();
    let describe = |e: kube::Error| {
        let transient = match &e {
            // The apiserver refused the object itself: retrying will not help.
            kube::Error::Api(s) => !(400..500).contains(&s.code) || s.code == 409 || s.code == 429,
            _ => true,
        };
        (
            format!(
                "{} {:?} ({}): {}",
                obj.object_type.as_str(),
                obj.name,
                obj.kube_name,
                short(&e)
            ),
            transient,
        )
    };
    let params = write_params();
    match step {
        Step::Write | Step::WriteRule => {
            let digest_label =
                &obj.content_digest[..DIGEST_LABEL_LEN.min(obj.content_digest.len())];
            let current = ours.and_then(|o| o.digest_label.as_deref()) == Some(digest_label);
            let mut generation = ours.and_then(|o| o.generation);
            if !current {
                let mut labels = serde_json::to_value(&obj.labels).unwrap_or_default();
                labels[LABEL_CONTENT_DIGEST] = json!(digest_label);
                let body = ApplyBody {
                    api_version: &ar.api_version,
                    kind: &ar.kind,
                    metadata: json!({"name": obj.kube_name, "labels": labels, "annotations": obj.annotations}),
                    spec: obj.spec.raw(),
                };
                let req = kube::core::Request::new(api.resource_url())
                    .patch(&obj.kube_name, &params, &Patch::Apply(&body))
                    .map_err(|e| describe(kube::Error::BuildRequest(e)))?;
                let written: Written = ctx.client.request(req).await.map_err(describe)?;
                generation = written.metadata.generation;
            }
            let status = if step == Step::WriteRule {
                // Rules take their whole lifecycle in one status write.
                let link = obj.rule.clone().unwrap_or_default();
                let state = if obj.delivery.commit && obj.delivery.deploy {
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
                if obj.delivery.commit && obj.delivery.deploy {
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
    Ok(())
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

/// An object a step could not write.
#[derive(Clone, Debug)]
pub struct Failure {
    /// Index in the step's objects.
    pub index: usize,
    pub message: String,
    /// The apiserver was unavailable or busy (retry the phase), rather than
    /// refusing the object (fail the import).
    pub transient: bool,
}
