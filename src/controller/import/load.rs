//! Reading what an import needs: the verified package from the artifact
//! store, and the destination's existing objects.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufReader;

use ferry_package::{Manifest, ObjectType, PackageObject, PackageReader};
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::{Api, ResourceExt};

use crate::artifact::ArtifactStore;
use crate::controller::Context;

/// The package's manifest and objects, scripts filled in from code files.
pub struct LoadedPackage {
    pub manifest: Manifest,
    pub objects: Vec<PackageObject>,
}

/// Reads and re-verifies the stored package (a stored artifact is verified
/// again on read: the digest pins the content, and the check is cheap next
/// to the import).
pub fn read_package(store: &ArtifactStore, digest: &str) -> Result<LoadedPackage, String> {
    let file = store
        .open_artifact(digest)
        .map_err(|e| format!("artifact {digest} is not in the store: {e}"))?;
    let limits = ferry_package::Limits {
        max_package_bytes: u64::MAX,
        ..Default::default()
    };
    let mut reader =
        PackageReader::open(BufReader::new(file), &limits).map_err(|e| e.to_string())?;
    let mut objects = reader.take_objects();
    for o in &mut objects {
        reader.fill_code(o).map_err(|e| {
            format!(
                "reading the code of {}/{}: {e}",
                o.object_type.as_str(),
                o.name
            )
        })?;
    }
    let (manifest, _) = reader.into_parts();
    Ok(LoadedPackage { manifest, objects })
}

/// The API resource holding objects of a type.
pub fn api_resource(t: ObjectType) -> ApiResource {
    use crate::api::{FileResource, Function, QualityRule, ScheduledTask, ServiceApi, Table};
    match t {
        ObjectType::FileResource => ApiResource::erase::<FileResource>(&()),
        ObjectType::Function => ApiResource::erase::<Function>(&()),
        ObjectType::Table => ApiResource::erase::<Table>(&()),
        ObjectType::ScheduledTask => ApiResource::erase::<ScheduledTask>(&()),
        ObjectType::ServiceApi => ApiResource::erase::<ServiceApi>(&()),
        ObjectType::QualityRule => ApiResource::erase::<QualityRule>(&()),
    }
}

/// What the destination holds: real names per type with the `metadata.name`
/// each is stored under (objects this task wrote itself left out, so a
/// resumed import does not see its own objects as conflicts), table names,
/// the outputs its scheduled tasks declare (what an imported task's
/// dependency may resolve to), and this task's objects by kube name with
/// their content-digest label and generation.
#[derive(Default)]
pub struct Destination {
    pub existing: ferry_engine::Existing,
    pub tables: BTreeSet<String>,
    pub outputs: BTreeSet<String>,
    pub ours: BTreeMap<(ObjectType, String), Ours>,
}

/// An object this task already wrote.
pub struct Ours {
    pub digest_label: Option<String>,
    pub generation: Option<i64>,
}

/// One list per type (paged), whatever the package size.
pub async fn read_destination(
    ctx: &Context,
    ns: &str,
    task_uid: &str,
) -> Result<Destination, kube::Error> {
    let mut d = Destination::default();
    for t in ObjectType::IMPORT_ORDER {
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), ns, &api_resource(t));
        let names = d.existing.entry(t).or_default();
        let mut params = ListParams::default().limit(500);
        loop {
            let page = api.list(&params).await?;
            for obj in &page.items {
                let real = obj
                    .data
                    .get("spec")
                    .and_then(|s| s.get("name"))
                    .and_then(|n| n.as_str())
                    .unwrap_or_default();
                if t == ObjectType::Table {
                    d.tables.insert(real.to_string());
                }
                if t == ObjectType::ScheduledTask {
                    let outputs = obj
                        .data
                        .get("spec")
                        .and_then(|s| s.get("outputs"))
                        .and_then(|o| o.as_array());
                    d.outputs.extend(
                        outputs
                            .into_iter()
                            .flatten()
                            .filter_map(|o| o.as_str())
                            .map(str::to_string),
                    );
                }
                let labels = obj.labels();
                let ours = labels
                    .get(ferry_engine::naming::LABEL_IMPORT_TASK_UID)
                    .map(String::as_str)
                    == Some(task_uid);
                // A rule this task updated in place keeps its own name: on
                // a new plan it is still an existing rule to update, not a
                // name to create anew.
                if ours && obj.name_any() != ferry_engine::kube_name(t, real) {
                    names.insert(real.to_string(), obj.name_any());
                }
                if ours {
                    d.ours.insert(
                        (t, obj.name_any()),
                        Ours {
                            digest_label: labels
                                .get(ferry_engine::naming::LABEL_CONTENT_DIGEST)
                                .cloned(),
                            generation: obj.metadata.generation,
                        },
                    );
                } else {
                    names.insert(real.to_string(), obj.name_any());
                }
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
    }
    Ok(d)
}

/// This task's objects in the destination, by metadata only and selected by
/// the task-UID label on the server: what a phase after planning needs
/// (content digests and generations), without reading every object's spec.
pub async fn read_ours(
    ctx: &Context,
    ns: &str,
    task_uid: &str,
) -> Result<BTreeMap<(ObjectType, String), Ours>, kube::Error> {
    let mut ours = BTreeMap::new();
    let selector = format!("{}={task_uid}", ferry_engine::naming::LABEL_IMPORT_TASK_UID);
    for t in ObjectType::IMPORT_ORDER {
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), ns, &api_resource(t));
        let mut params = ListParams::default().labels(&selector).limit(500);
        loop {
            let page = api.list_metadata(&params).await?;
            for obj in &page.items {
                ours.insert(
                    (t, obj.name_any()),
                    Ours {
                        digest_label: obj
                            .labels()
                            .get(ferry_engine::naming::LABEL_CONTENT_DIGEST)
                            .cloned(),
                        generation: obj.metadata.generation,
                    },
                );
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
    }
    Ok(ours)
}
