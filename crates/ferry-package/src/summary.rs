//! What a package holds, for the `MigrationPackage` status and previews,
//! and lookups the import engine needs (by type and name, in import order,
//! task by output name).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::manifest::{ExportMode, Manifest, SourceInfo};
use crate::model::{ComputeRef, ObjectType, PackageObject};

/// The type the summary gives a compute resource no document types.
pub const UNKNOWN_TYPE: &str = "Unknown";

/// The package's summary: the seed's "Preview File". Shaped like the
/// operator's `PackageSummary` status field, plus the export details.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PackageSummary {
    pub source: SourceInfo,
    pub exported_at: String,
    pub export_mode: ExportMode,
    pub total_objects: u64,
    /// Objects per type name, every type present (zero counts included).
    pub objects: BTreeMap<String, u64>,
    /// Compute resources the objects use (the inner nodes of do-while,
    /// for-each and combined tasks included), sorted, each once.
    pub compute_resources: Vec<ComputeRef>,
    /// Resource groups the objects use (inner nodes included), sorted, each
    /// once.
    pub resource_groups: Vec<String>,
}

impl PackageSummary {
    pub fn new(manifest: &Manifest, objects: &[PackageObject]) -> Self {
        let mut counts: BTreeMap<String, u64> = ObjectType::IMPORT_ORDER
            .iter()
            .map(|t| (t.as_str().to_string(), 0))
            .collect();
        let mut compute = BTreeSet::new();
        let mut groups = BTreeSet::new();
        for o in objects {
            *counts
                .entry(o.object_type.as_str().to_string())
                .or_default() += 1;
            // A container task's inner nodes count like the task itself:
            // each needs a mapping, so each is shown.
            compute.extend(o.compute.iter().chain(&o.inner_compute).cloned());
            groups.extend(
                o.resource_group
                    .iter()
                    .chain(&o.inner_resource_groups)
                    .cloned(),
            );
        }
        // A resource whose type no document says (DataWorks' migration
        // tooling writes `datasource: {name}` alone) is listed as such: an
        // empty type is no type at all to a reader of the status.
        let compute: BTreeSet<ComputeRef> = compute
            .into_iter()
            .map(|mut c| {
                if c.type_.is_empty() {
                    c.type_ = UNKNOWN_TYPE.to_string();
                }
                c
            })
            .collect();
        PackageSummary {
            source: manifest.source.clone(),
            exported_at: manifest.exported_at.clone(),
            export_mode: manifest.export_mode,
            total_objects: objects.len() as u64,
            objects: counts,
            compute_resources: compute.into_iter().collect(),
            resource_groups: groups.into_iter().collect(),
        }
    }

    /// Count of one type.
    pub fn count(&self, t: ObjectType) -> u64 {
        self.objects.get(t.as_str()).copied().unwrap_or(0)
    }
}

/// Lookups over a package's objects.
#[derive(Clone, Debug, Default)]
pub struct PackageIndex {
    by_key: HashMap<(ObjectType, String), usize>,
    by_output: HashMap<String, usize>,
    import_order: Vec<usize>,
}

impl PackageIndex {
    pub fn new(objects: &[PackageObject]) -> Self {
        let mut idx = PackageIndex::default();
        for (i, o) in objects.iter().enumerate() {
            idx.by_key.insert((o.object_type, o.name.clone()), i);
            if o.object_type == ObjectType::ScheduledTask {
                for out in o.spec_strings("outputs") {
                    idx.by_output.entry(out.to_string()).or_insert(i);
                }
            }
        }
        idx.import_order = (0..objects.len()).collect();
        // Stable: objects of one type keep the package's order.
        idx.import_order.sort_by_key(|&i| objects[i].object_type);
        idx
    }

    /// Position of the object of this type and real name.
    pub fn get(&self, t: ObjectType, name: &str) -> Option<usize> {
        self.by_key.get(&(t, name.to_string())).copied()
    }

    /// Positions in import order (see [`ObjectType::IMPORT_ORDER`]).
    pub fn import_order(&self) -> &[usize] {
        &self.import_order
    }

    /// The task producing an output name.
    pub fn producer_of(&self, output: &str) -> Option<usize> {
        self.by_output.get(output).copied()
    }
}
