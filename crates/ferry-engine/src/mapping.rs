//! Compute-resource, resource-group and DataService mappings: resolving the
//! task's mapping lists against what the package uses and what the
//! destination workspace has.
//!
//! Problems are pushed, never returned early, so a user sees every missing
//! entry at once. Entries for things the package does not use are harmless
//! leftovers (a task reused for another package): warnings, not errors.

use std::collections::{BTreeMap, BTreeSet};

use ferry_api::{NameMapping, WorkspaceSpec};
use ferry_package::PackageObject;
use ferry_package::flowspec::normalize_engine;
use serde_json::Value;

use crate::error::{Problem, Rule};

/// A compute resource or resource group the package uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Engine type, normalised (`MaxCompute`, ...); empty when no object says.
    pub type_: String,
    /// How many objects use it.
    pub objects: usize,
}

/// The compute resource an object uses: the package's reference, else the
/// spec's `computeResource` (type unknown then).
pub(crate) fn compute_of(o: &PackageObject) -> Option<(String, String)> {
    match &o.compute {
        Some(c) if !c.name.is_empty() => Some((c.name.clone(), normalize_engine(&c.type_))),
        _ => o
            .spec_str("computeResource")
            .filter(|s| !s.is_empty())
            .map(|s| (s.to_string(), String::new())),
    }
}

/// The resource group an object runs on.
pub(crate) fn group_of(o: &PackageObject) -> Option<String> {
    o.resource_group
        .clone()
        .or_else(|| o.spec_str("resourceGroup").map(str::to_string))
        .filter(|s| !s.is_empty())
}

/// Compute resources used by the package, by display name: the objects'
/// own and those of the inner nodes of do-while, for-each and combined
/// tasks (an object counts once per resource).
pub fn compute_usage(objects: &[PackageObject]) -> BTreeMap<String, Usage> {
    let mut out: BTreeMap<String, Usage> = BTreeMap::new();
    for o in objects {
        let own = compute_of(o);
        let inner = o
            .inner_compute
            .iter()
            .filter(|c| !c.name.is_empty())
            .map(|c| (c.name.clone(), normalize_engine(&c.type_)));
        let mut seen = BTreeSet::new();
        for (name, type_) in own.into_iter().chain(inner) {
            let u = out.entry(name.clone()).or_default();
            if seen.insert(name) {
                u.objects += 1;
            }
            if u.type_.is_empty() {
                u.type_ = type_;
            }
        }
    }
    out
}

/// Resource groups used by the package (inner nodes' included, an object
/// counting once per group).
pub fn group_usage(objects: &[PackageObject]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for o in objects {
        let groups: BTreeSet<String> = group_of(o)
            .into_iter()
            .chain(o.inner_resource_groups.iter().cloned())
            .filter(|g| !g.is_empty())
            .collect();
        for g in groups {
            *out.entry(g).or_default() += 1;
        }
    }
    out
}

/// A mapping list as a map, reporting duplicate sources.
fn index(
    list: &[NameMapping],
    field: &str,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for m in list {
        if let Some(prev) = out.insert(m.source.clone(), m.destination.clone())
            && prev != m.destination
        {
            problems.push(Problem::new(
                Rule::DuplicateMapping,
                format!(
                    "spec.{field} maps {:?} twice (to {prev:?} and to {:?})",
                    m.source, m.destination
                ),
            ));
        }
    }
    out
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// Resolves `spec.computeResourceMapping`: source display name to
/// destination display name, for every resource the package uses.
///
/// Rules: every used resource needs an entry; the destination is matched by
/// display name (`name`), never by project, and a name that is some
/// resource's project gets a hint saying so; source and destination types
/// must agree; and (the seed) when the package uses types the destination
/// has none of, the import fails naming the missing types, because the
/// destination cannot create nodes of those types.
pub fn resolve_compute(
    objects: &[PackageObject],
    mapping: &[NameMapping],
    ws_name: &str,
    ws: &WorkspaceSpec,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let used = compute_usage(objects);
    let entries = index(mapping, "computeResourceMapping", problems);
    let dest: BTreeMap<&str, String> = ws
        .compute_resources
        .iter()
        .map(|c| (c.name.as_str(), normalize_engine(&c.type_)))
        .collect();
    let dest_names = || {
        let names: Vec<&str> = dest.keys().copied().collect();
        if names.is_empty() {
            "it has none".to_string()
        } else {
            format!("it has {}", names.join(", "))
        }
    };

    // The seed's rule first: it explains a whole class of mismatches at once.
    let used_types: BTreeSet<&str> = used
        .values()
        .map(|u| u.type_.as_str())
        .filter(|t| !t.is_empty())
        .collect();
    let dest_types: BTreeSet<&str> = dest.values().map(String::as_str).collect();
    let missing: Vec<&str> = used_types.difference(&dest_types).copied().collect();
    if !missing.is_empty() && !dest.is_empty() {
        let has = dest_types.iter().copied().collect::<Vec<_>>().join(", ");
        let only = if dest_types.len() == 1 { "only " } else { "" };
        problems.push(Problem::new(
            Rule::ComputeResourceTypesMissing,
            format!(
                "the package uses compute-resource types {} but workspace {ws_name:?} has {only}{has}: it lacks {}, so nodes of those types cannot be created there",
                used_types.iter().copied().collect::<Vec<_>>().join(", "),
                missing.join(", ")
            ),
        ));
    }

    if mapping.is_empty() && !used.is_empty() {
        // One sentence for the common mistake, instead of one per resource.
        let list: Vec<String> = used
            .iter()
            .map(|(n, u)| format!("{n:?} ({})", plural(u.objects, "object")))
            .collect();
        problems.push(Problem::new(
            Rule::ComputeResourceUnmapped,
            format!(
                "spec.computeResourceMapping is empty, but the package uses compute resources {}: it is required then, one entry per resource naming a compute resource of workspace {ws_name:?} by display name ({})",
                list.join(", "),
                dest_names()
            ),
        ));
        return BTreeMap::new();
    }
    let mut out = BTreeMap::new();
    for (name, usage) in &used {
        let shown_type = if usage.type_.is_empty() {
            "type unknown"
        } else {
            usage.type_.as_str()
        };
        let by = plural(usage.objects, "object");
        let Some(target) = entries.get(name) else {
            problems.push(Problem::new(
                Rule::ComputeResourceUnmapped,
                format!(
                    "compute resource {name:?} ({shown_type}) used by {by} has no entry in spec.computeResourceMapping"
                ),
            ));
            continue;
        };
        let Some(target_type) = dest.get(target.as_str()) else {
            let hint = ws
                .compute_resources
                .iter()
                .find(|c| c.project.as_deref() == Some(target.as_str()))
                .map(|c| {
                    format!(
                        " ({target:?} is the project of {:?}; mappings match display names)",
                        c.name
                    )
                })
                .unwrap_or_default();
            problems.push(Problem::new(
                Rule::ComputeResourceNotFound,
                format!(
                    "spec.computeResourceMapping maps {name:?} to {target:?}, which is not a compute resource of workspace {ws_name:?}{hint}; {}",
                    dest_names()
                ),
            ));
            continue;
        };
        if !usage.type_.is_empty() && usage.type_ != *target_type {
            problems.push(Problem::new(
                Rule::ComputeResourceTypeMismatch,
                format!(
                    "spec.computeResourceMapping maps {name:?} ({}) to {target:?} ({target_type}): a mapping must pair resources of the same type",
                    usage.type_
                ),
            ));
            continue;
        }
        out.insert(name.clone(), target.clone());
    }
    for source in entries.keys().filter(|s| !used.contains_key(*s)) {
        warnings.push(format!(
            "spec.computeResourceMapping has an entry for {source:?}, which no object of the package uses"
        ));
    }
    out
}

/// Resolves resource groups (the seed: the mapping is optional). An explicit
/// entry wins (its destination must exist); a group with no entry keeps its
/// name when the destination has a group of that name (what keeps objects
/// working between workspaces of one tenant and region); otherwise it falls
/// back to the destination's `defaultResourceGroup`, else its first listed
/// group, with a warning, and the source group is added to `defaulted`.
/// Only a destination with no group at all fails the import.
pub fn resolve_groups(
    objects: &[PackageObject],
    mapping: &[NameMapping],
    ws_name: &str,
    ws: &WorkspaceSpec,
    defaulted: &mut BTreeSet<String>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let used = group_usage(objects);
    let entries = index(mapping, "resourceGroupMapping", problems);
    let dest: BTreeSet<&str> = ws.resource_groups.iter().map(|g| g.name.as_str()).collect();
    let fallback = ws
        .default_resource_group
        .as_deref()
        .filter(|g| dest.contains(g))
        .or_else(|| ws.resource_groups.first().map(|g| g.name.as_str()));
    let mut out = BTreeMap::new();
    for (name, n) in &used {
        let by = plural(*n, "object");
        match entries.get(name) {
            Some(target) if dest.contains(target.as_str()) => {
                out.insert(name.clone(), target.clone());
            }
            Some(target) => problems.push(Problem::new(
                Rule::ResourceGroupNotFound,
                format!(
                    "spec.resourceGroupMapping maps {name:?} to {target:?}, which is not a resource group of workspace {ws_name:?}"
                ),
            )),
            None if dest.contains(name.as_str()) => {
                out.insert(name.clone(), name.clone());
            }
            None => match fallback {
                Some(d) => {
                    let which = if ws.default_resource_group.as_deref() == Some(d) {
                        "its spec.defaultResourceGroup"
                    } else {
                        "its first resource group (it sets no spec.defaultResourceGroup)"
                    };
                    warnings.push(format!(
                        "resource group {name:?} used by {by} has no entry in spec.resourceGroupMapping and workspace {ws_name:?} has no group of that name: {} run on {d:?}, {which}",
                        if *n == 1 { "it" } else { "they" }
                    ));
                    defaulted.insert(name.clone());
                    out.insert(name.clone(), d.to_string());
                }
                None => problems.push(Problem::new(
                    Rule::ResourceGroupUnmapped,
                    format!(
                        "resource group {name:?} used by {by} has no entry in spec.resourceGroupMapping and workspace {ws_name:?} has no resource group at all to run it on: add one to the Workspace's spec.resourceGroups"
                    ),
                )),
            },
        }
    }
    for source in entries.keys().filter(|s| !used.contains_key(*s)) {
        warnings.push(format!(
            "spec.resourceGroupMapping has an entry for {source:?}, which no object of the package uses"
        ));
    }
    out
}

/// Applies the compute-resource and resource-group mappings to a FlowSpec
/// document, so it names what the interpreted fields name: a datasource
/// (`datasource` objects and the `datasources` section) whose `name` is a
/// mapped compute resource gets the destination's display name, and every
/// `resourceGroup` string gets its mapped group. Anything else is left as
/// it came.
pub fn map_document(
    doc: &mut Value,
    compute: &BTreeMap<String, String>,
    groups: &BTreeMap<String, String>,
) {
    fn rename_datasource(v: &mut Value, compute: &BTreeMap<String, String>) {
        if let Some(Value::String(n)) = v.get_mut("name")
            && let Some(d) = compute.get(n.as_str())
        {
            *n = d.clone();
        }
    }
    match doc {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                match (k.as_str(), &mut *v) {
                    ("datasource", Value::Object(_)) => rename_datasource(v, compute),
                    ("datasources", Value::Array(items)) => {
                        for item in items.iter_mut() {
                            rename_datasource(item, compute);
                        }
                    }
                    ("computeResource", Value::String(n)) => {
                        if let Some(d) = compute.get(n.as_str()) {
                            *n = d.clone();
                        }
                        continue;
                    }
                    ("resourceGroup", Value::String(g)) => {
                        if let Some(d) = groups.get(g.as_str()) {
                            *g = d.clone();
                        }
                        continue;
                    }
                    _ => {}
                }
                map_document(v, compute, groups);
            }
        }
        Value::Array(items) => {
            for item in items {
                map_document(item, compute, groups);
            }
        }
        _ => {}
    }
}

/// Resolves DataService business processes: mapped ones change, others keep
/// their name (the destination's processes are not modelled, so there is
/// nothing to check them against).
pub fn resolve_business_processes(
    objects: &[PackageObject],
    mapping: &[NameMapping],
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let entries = index(mapping, "dataServiceMapping", problems);
    let used: BTreeSet<&str> = objects
        .iter()
        .filter_map(|o| o.spec_str("businessProcess"))
        .collect();
    for source in entries.keys().filter(|s| !used.contains(s.as_str())) {
        warnings.push(format!(
            "spec.dataServiceMapping has an entry for {source:?}, which no API of the package uses"
        ));
    }
    entries
}
