//! Dry-run (the seed's "Set to Dry-run" and "Batch Set to Dry-run"): tasks
//! named in `spec.dryRun.tasks`, and tasks whose labels match
//! `spec.dryRun.selector`, are imported with recurrence `Skip`: scheduled,
//! succeeding without running.
//!
//! Where a package object's labels come from: FlowSpec has no labels field
//! of its own, so Ferry reads `metadata.labels` (a map of strings) of the
//! object's FlowSpec document, merged with `metadata.labels` of the
//! document's items (under `spec.*`) whose `name` is the object's real name
//! (item labels win). Non-string values are ignored.
//!
//! An empty selector (`selector: {}`) matches nothing here, unlike
//! Kubernetes' convention where it matches everything: turning every task of
//! a package into a dry-run by an empty placeholder would be a silent,
//! costly surprise. Use `matchExpressions` with `Exists` on a common label to
//! mean "all".

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;

use ferry_package::PackageObject;

/// An object's labels (see the module documentation).
pub fn object_labels(o: &PackageObject) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut take = |v: Option<&Value>| {
        if let Some(Value::Object(m)) = v.and_then(|m| m.get("labels")) {
            for (k, v) in m {
                if let Value::String(s) = v {
                    out.insert(k.clone(), s.clone());
                }
            }
        }
    };
    let doc = o.flow_spec.to_value();
    take(doc.get("metadata"));
    if let Some(Value::Object(spec)) = doc.get("spec") {
        for section in spec.values() {
            for item in section.as_array().into_iter().flatten() {
                if item.get("name").and_then(Value::as_str) == Some(o.name.as_str()) {
                    take(item.get("metadata"));
                }
            }
        }
    }
    out
}

/// Marks the task's node in its FlowSpec document as dry-run
/// (`recurrence: Skip`), so the document and the interpreted `recurrence`
/// agree. The node is the one of `spec.nodes` (reference nodes left out)
/// named `task` (by `name`, else `id`), or the document's only node when
/// none is named so (a node may take its name from its script). Returns
/// whether a node was marked.
pub fn mark_document(doc: &mut Value, task: &str) -> bool {
    let Some(Value::Array(nodes)) = doc.pointer_mut("/spec/nodes") else {
        return false;
    };
    let own: Vec<&mut Value> = nodes
        .iter_mut()
        .filter(|n| n.is_object() && n.get("reference").is_none())
        .collect();
    let named = |n: &Value, key: &str| n.get(key).and_then(Value::as_str) == Some(task);
    let pos = own
        .iter()
        .position(|n| named(n, "name"))
        .or_else(|| own.iter().position(|n| named(n, "id")))
        .or_else(|| (own.len() == 1).then_some(0));
    match pos.and_then(|i| own.into_iter().nth(i)) {
        Some(Value::Object(node)) => {
            node.insert("recurrence".into(), "Skip".into());
            true
        }
        _ => false,
    }
}

/// Whether `labels` match `selector`. `Err` names an operator that is not
/// `In`, `NotIn`, `Exists` or `DoesNotExist`.
pub fn matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> Result<bool, String> {
    let exprs = selector.match_expressions.as_deref().unwrap_or_default();
    let wanted = selector.match_labels.as_ref();
    if exprs.is_empty() && wanted.is_none_or(BTreeMap::is_empty) {
        return Ok(false);
    }
    let mut ok = wanted
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    for e in exprs {
        let values = e.values.as_deref().unwrap_or_default();
        let have = labels.get(&e.key);
        let m = match e.operator.as_str() {
            "In" => have.is_some_and(|v| values.contains(v)),
            "NotIn" => have.is_none_or(|v| !values.contains(v)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            other => {
                return Err(format!(
                    "spec.dryRun.selector uses operator {other:?} on key {:?}; use In, NotIn, Exists or DoesNotExist",
                    e.key
                ));
            }
        };
        ok &= m;
    }
    Ok(ok)
}

#[cfg(test)]
mod document_tests {
    use serde_json::json;

    use super::mark_document;

    #[test]
    fn the_tasks_node_is_marked_by_name_id_or_as_the_only_node() {
        let mut doc = json!({"spec": {"nodes": [
            {"id": "n0", "reference": {"output": "up"}},
            {"id": "n1", "name": "other"},
            {"id": "n2", "name": "load", "recurrence": "Normal"}
        ]}});
        assert!(mark_document(&mut doc, "load"));
        assert_eq!(doc["spec"]["nodes"][2]["recurrence"], "Skip");
        assert!(doc["spec"]["nodes"][1].get("recurrence").is_none());
        let mut by_id = json!({"spec": {"nodes": [{"id": "a"}, {"id": "load"}]}});
        assert!(mark_document(&mut by_id, "load"));
        assert_eq!(by_id["spec"]["nodes"][1]["recurrence"], "Skip");
        let mut only = json!({"spec": {"nodes": [{"id": "x", "script": {"name": "load"}}]}});
        assert!(mark_document(&mut only, "load"));
        assert_eq!(only["spec"]["nodes"][0]["recurrence"], "Skip");
        let mut none = json!({"spec": {"nodes": [{"id": "a"}, {"id": "b"}]}});
        assert!(!mark_document(&mut none, "load"));
        assert!(!mark_document(&mut json!({"kind": "x"}), "load"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(v: Value) -> LabelSelector {
        serde_json::from_value(v).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn match_labels_and_expressions() {
        let l = labels(&[("layer", "ods"), ("team", "sales")]);
        assert!(matches(&sel(json!({"matchLabels": {"layer": "ods"}})), &l).unwrap());
        assert!(!matches(&sel(json!({"matchLabels": {"layer": "dws"}})), &l).unwrap());
        let in_ = json!({"matchExpressions": [{"key": "layer", "operator": "In", "values": ["ods", "dwd"]}]});
        assert!(matches(&sel(in_), &l).unwrap());
        let notin =
            json!({"matchExpressions": [{"key": "layer", "operator": "NotIn", "values": ["ods"]}]});
        assert!(!matches(&sel(notin), &l).unwrap());
        let exists = json!({"matchExpressions": [{"key": "team", "operator": "Exists"}]});
        assert!(matches(&sel(exists), &l).unwrap());
        let dne = json!({"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]});
        assert!(!matches(&sel(dne), &l).unwrap());
        let both = json!({"matchLabels": {"team": "sales"}, "matchExpressions": [{"key": "layer", "operator": "In", "values": ["dws"]}]});
        assert!(!matches(&sel(both), &l).unwrap());
    }

    #[test]
    fn empty_selector_matches_nothing() {
        let l = labels(&[("a", "b")]);
        assert!(!matches(&sel(json!({})), &l).unwrap());
        assert!(!matches(&sel(json!({"matchLabels": {}})), &l).unwrap());
    }

    #[test]
    fn unknown_operator_is_an_error() {
        let s = sel(json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}));
        assert!(matches(&s, &BTreeMap::new()).unwrap_err().contains("Gt"));
    }

    #[test]
    fn labels_come_from_document_and_named_items() {
        let o = PackageObject {
            object_type: ferry_package::ObjectType::ScheduledTask,
            name: "load".into(),
            spec: Default::default(),
            flow_spec: json!({
                "metadata": {"labels": {"team": "sales", "layer": "raw", "n": 3}},
                "spec": {"nodes": [
                    {"name": "load", "metadata": {"labels": {"layer": "ods"}}},
                    {"name": "other", "metadata": {"labels": {"x": "y"}}}
                ]}
            })
            .into(),
            spec_path: String::new(),
            files: vec![],
            studio: Default::default(),
            compute: None,
            resource_group: None,
            inner_compute: vec![],
            inner_resource_groups: vec![],
        };
        assert_eq!(
            object_labels(&o),
            labels(&[("layer", "ods"), ("team", "sales")])
        );
    }
}
