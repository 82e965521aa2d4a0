//! Reading and writing FlowSpec documents (DataWorks' open spec format).
//!
//! Reading is lenient on purpose: real documents carry flaws Ferry need not
//! interpret (a `ruleConfig` that is not valid JSON, empty names, unknown
//! fields), and those travel untouched in the verbatim document. Only a
//! document that is not valid YAML/JSON at all is an error, reported with
//! file, line and column.
//!
//! References: a field may hold an inline definition or a reference string
//! `"{{section.id}}"` / `"{{id}}"` to a definition elsewhere in the same
//! document (`scripts`, `triggers`, `runtimeResources`, `variables`,
//! `artifacts.*`, `files.*`, `fileResources`, ...). Both forms resolve to the
//! same thing here.
//!
//! Mapping to Ferry's spec fields (see docs/package-format.md):
//! - name: the item's `name` (`apiName` for APIs), else its script's `name`,
//!   else its `id`.
//! - owner: the item's `owner`, else `metadata.owner` of the item, else of
//!   the document (numbers are turned into text).
//! - studio: `metadata.studio` (`Legacy`/`New`) or `metadata.dataStudioVersion`
//!   (`new`, `v2`, `2` mean New) on the item or the document; default Legacy.
//! - computeResource: the display name in `datasource.name` on the item or its
//!   script; the type comes from `datasource.type` (normalised: `odps` is
//!   `MaxCompute`, `holo` is `Hologres`, ...), else `script.runtime.engine`,
//!   else `calcEngine.type`. An engine alone (`DataIntegration`, `Linux`) names
//!   no compute resource.
//! - resourceGroup: `runtimeResource.resourceGroup` (APIs: `resourceSpec`).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::model::{ComputeRef, ObjectType, Studio};

/// A document that could not be parsed at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", location(*.line, *.column))]
pub struct ParseError {
    pub file: String,
    /// 1-based, when the parser knows it.
    pub line: Option<usize>,
    /// 1-based, when the parser knows it.
    pub column: Option<usize>,
    pub message: String,
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c} (line {l}, column {c})"),
        (Some(l), None) => format!(":{l} (line {l})"),
        _ => String::new(),
    }
}

/// Parses a FlowSpec document: JSON when `file` ends in `.json`, YAML
/// otherwise. The result must be a mapping.
pub fn parse_document(file: &str, bytes: &[u8]) -> Result<Value, ParseError> {
    let err = |line, column, message: String| ParseError {
        file: file.to_string(),
        line,
        column,
        message,
    };
    let value: Value = if file.to_ascii_lowercase().ends_with(".json") {
        serde_json::from_slice(bytes).map_err(|e| {
            let msg = strip_location(&e.to_string());
            err(Some(e.line()), Some(e.column()), msg)
        })?
    } else {
        // Anchors, aliases and deep nesting are refused there (untrusted input).
        crate::yaml::from_slice(bytes).map_err(|e| err(e.line, e.column, e.message))?
    };
    if !value.is_object() {
        return Err(err(
            None,
            None,
            "a FlowSpec document must be a mapping".into(),
        ));
    }
    Ok(value)
}

/// Both parsers append " at line X column Y"; we print the location ourselves.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// One object found in a document.
#[derive(Clone, Debug, PartialEq)]
pub struct Extracted {
    pub object_type: ObjectType,
    pub name: String,
    /// The `XxxSpec` fields, camelCase.
    pub spec: Map<String, Value>,
    pub studio: Studio,
    pub compute: Option<ComputeRef>,
    pub resource_group: Option<String>,
    /// Whether the document carries the script's content inline (false:
    /// the content lives in the object's code file, if any).
    pub inline_code: bool,
}

/// Every object a document defines: auto-triggered nodes (not `reference`
/// nodes, which point at tasks elsewhere), tables with a definition (`name`
/// or `ddl`, not bare references), file resources, functions, quality rules
/// and DataService APIs.
pub fn extract_objects(doc: &Value) -> Vec<Extracted> {
    let d = Doc::new(doc);
    let mut out = Vec::new();
    for node in d.items("nodes") {
        if node.get("reference").is_some() {
            continue;
        }
        out.push(d.task(node));
    }
    for t in d.list(d.spec.get("artifacts").and_then(|a| a.get("tables"))) {
        if t.get("name").is_some() || t.get("ddl").is_some() {
            out.push(d.table(t));
        }
    }
    for r in d.items("fileResources") {
        // Stubs a function document uses to name resources defined elsewhere.
        if r.get("reference").is_some() {
            continue;
        }
        out.push(d.file_resource(r));
    }
    for f in d.items("functions") {
        // DataService orchestrations also have `functions` (data-service
        // functions, not UDFs); only a UDF has a className.
        if f.get("className").is_some() || d.kind() != "DataserviceOrchestrationSpec" {
            out.push(d.function(f));
        }
    }
    for r in d.items("dqcRules") {
        out.push(d.quality_rule(r));
    }
    for a in d.items("apis") {
        out.push(d.service_api(a));
    }
    out
}

/// A parsed document with an index of its definitions by section and id.
///
/// B-tree maps, not hash maps: ids come from untrusted documents (no
/// hash-flooding to worry about), and with thousands of documents read in
/// a row the randomly seeded hash tables made the allocation pattern, and
/// with it the reader's peak RSS, vary from run to run (138 or 420 MiB on the
/// 30 MB benchmark package with glibc's allocator).
struct Doc<'a> {
    doc: &'a Value,
    spec: &'a Map<String, Value>,
    /// (section, id) -> definition. Sections: top-level arrays of `spec`,
    /// plus `artifacts` and `files` for the arrays nested in those maps.
    defs: BTreeMap<(String, String), &'a Value>,
    /// id -> definitions in document order, for unqualified references.
    by_id: BTreeMap<String, Vec<(String, &'a Value)>>,
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl<'a> Doc<'a> {
    fn new(doc: &'a Value) -> Self {
        let spec = doc.get("spec").and_then(Value::as_object).unwrap_or(&EMPTY);
        let mut d = Doc {
            doc,
            spec,
            defs: BTreeMap::new(),
            by_id: BTreeMap::new(),
        };
        for (key, value) in spec {
            match value {
                Value::Array(items) => d.index(key, items),
                Value::Object(groups) if key == "artifacts" || key == "files" => {
                    for (sub, v) in groups {
                        if let Value::Array(items) = v {
                            d.index(key, items);
                            d.index(&format!("{key}.{sub}"), items);
                        }
                    }
                }
                _ => {}
            }
        }
        d
    }

    fn index(&mut self, section: &str, items: &'a [Value]) {
        for item in items {
            if let Some(id) = item.get("id").and_then(scalar) {
                self.defs.insert((section.to_string(), id.clone()), item);
                self.by_id
                    .entry(id)
                    .or_default()
                    .push((section.to_string(), item));
            }
        }
    }

    fn kind(&self) -> &str {
        self.doc.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    fn items(&self, key: &str) -> Vec<&'a Value> {
        self.list(self.spec.get(key))
    }

    fn list(&self, v: Option<&'a Value>) -> Vec<&'a Value> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter(|x| x.is_object()).collect())
            .unwrap_or_default()
    }

    /// Resolves a field that is an inline definition or a `{{ref}}`.
    /// Unqualified references prefer `prefer`, then any section.
    fn resolve(&self, v: Option<&'a Value>, prefer: &str) -> Option<&'a Value> {
        let v = v?;
        match v {
            Value::Object(_) => Some(v),
            Value::String(s) => {
                let r = reference(s)?;
                if let Some((section, id)) = r.split_once('.')
                    && let Some(def) = self.defs.get(&(section.to_string(), id.to_string()))
                {
                    return Some(def);
                }
                let candidates = self.by_id.get(r)?;
                candidates
                    .iter()
                    .find(|(s, _)| s == prefer)
                    .or_else(|| candidates.first())
                    .map(|(_, d)| *d)
            }
            _ => None,
        }
    }

    fn owner(&self, item: &Value) -> Option<String> {
        item.get("owner")
            .and_then(scalar)
            .or_else(|| {
                item.get("metadata")
                    .and_then(|m| m.get("owner"))
                    .and_then(scalar)
            })
            .or_else(|| {
                self.doc
                    .get("metadata")
                    .and_then(|m| m.get("owner"))
                    .and_then(scalar)
            })
    }

    fn studio(&self, item: &Value) -> Studio {
        for m in [item.get("metadata"), Some(item), self.doc.get("metadata")]
            .into_iter()
            .flatten()
        {
            if let Some(s) = m.get("studio").and_then(scalar) {
                return if s.eq_ignore_ascii_case("new") {
                    Studio::New
                } else {
                    Studio::Legacy
                };
            }
            if let Some(s) = m.get("dataStudioVersion").and_then(scalar) {
                let s = s.to_ascii_lowercase();
                return if matches!(s.as_str(), "new" | "v2" | "2" | "2.0") {
                    Studio::New
                } else {
                    Studio::Legacy
                };
            }
        }
        Studio::Legacy
    }

    fn compute(&self, item: &Value, script: Option<&Value>) -> Option<ComputeRef> {
        let ds = self
            .resolve(item.get("datasource"), "datasources")
            .or_else(|| script.and_then(|s| self.resolve(s.get("datasource"), "datasources")))?;
        let name = ds.get("name").and_then(scalar)?;
        let type_ = ds
            .get("type")
            .and_then(scalar)
            .map(|t| normalize_engine(&t))
            .or_else(|| {
                script
                    .and_then(|s| s.get("runtime"))
                    .and_then(|r| r.get("engine"))
                    .and_then(scalar)
            })
            .or_else(|| {
                item.get("calcEngine")
                    .and_then(|c| c.get("type"))
                    .and_then(scalar)
                    .map(|t| normalize_engine(&t))
            })
            .unwrap_or_default();
        Some(ComputeRef { name, type_ })
    }

    fn resource_group(&self, item: &Value, key: &str) -> Option<String> {
        self.resolve(item.get(key), "runtimeResources")
            .and_then(|r| r.get("resourceGroup"))
            .and_then(scalar)
    }

    /// The output name of a node output or table reference.
    fn artifact_name(&self, v: &'a Value) -> Option<String> {
        match self.resolve(Some(v), "artifacts") {
            Some(def) => def
                .get("data")
                .and_then(scalar)
                .or_else(|| def.get("guid").and_then(scalar))
                .or_else(|| def.get("name").and_then(scalar)),
            None => v.as_str().map(|s| reference(s).unwrap_or(s).to_string()),
        }
    }

    fn artifact_list(&self, io: Option<&'a Value>) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(io) = io {
            for key in ["nodeOutputs", "tables"] {
                if let Some(items) = io.get(key).and_then(Value::as_array) {
                    for i in items {
                        if let Some(n) = self.artifact_name(i) {
                            push_unique(&mut out, n);
                        }
                    }
                }
            }
        }
        out
    }

    /// The outputs of a node (for flow dependencies).
    fn node_outputs(&self, node: &'a Value) -> Vec<String> {
        if let Some(o) = node
            .get("reference")
            .and_then(|r| r.get("output"))
            .and_then(scalar)
        {
            return vec![o];
        }
        self.artifact_list(node.get("outputs"))
    }

    fn task(&self, node: &'a Value) -> Extracted {
        let script = self.resolve(node.get("script"), "scripts");
        let name = node
            .get("name")
            .and_then(scalar)
            .or_else(|| script.and_then(|s| s.get("name")).and_then(scalar))
            .or_else(|| node.get("id").and_then(scalar))
            .unwrap_or_default();
        let mut spec = self.common(node, &name);
        let compute = self.compute(node, script);
        if let Some(c) = &compute {
            spec.insert("computeResource".into(), c.name.clone().into());
        }
        let resource_group = self.resource_group(node, "runtimeResource");
        if let Some(rg) = &resource_group {
            spec.insert("resourceGroup".into(), rg.clone().into());
        }
        let (script_value, inline_code) = self.script(script);
        spec.insert("script".into(), script_value);
        if let Some(t) = self.resolve(node.get("trigger"), "triggers")
            && let Some(cron) = t.get("cron").and_then(scalar)
        {
            let mut tr = Map::new();
            tr.insert("cron".into(), cron.into());
            put_opt(&mut tr, "startTime", t.get("startTime").and_then(scalar));
            put_opt(&mut tr, "endTime", t.get("endTime").and_then(scalar));
            spec.insert("trigger".into(), Value::Object(tr));
        }
        let recurrence = node
            .get("recurrence")
            .and_then(Value::as_str)
            .filter(|r| matches!(*r, "Normal" | "Skip" | "Pause"))
            .unwrap_or("Normal");
        spec.insert("recurrence".into(), recurrence.into());
        if let Some(mode) = node
            .get("rerunMode")
            .and_then(Value::as_str)
            .filter(|m| matches!(*m, "Allowed" | "FailureAllowed" | "Denied"))
        {
            let mut rr = Map::new();
            rr.insert("mode".into(), mode.into());
            if let Some(t) = node.get("rerunTimes").and_then(Value::as_u64) {
                rr.insert("times".into(), t.into());
            }
            if let Some(ms) = node.get("rerunInterval").and_then(Value::as_u64) {
                rr.insert("intervalSeconds".into(), (ms / 1000).into());
            }
            spec.insert("rerun".into(), Value::Object(rr));
        }
        let mut inputs = self.artifact_list(node.get("inputs"));
        // `spec.flow[]` dependencies of this node on other nodes of the
        // document (reference nodes stand for tasks elsewhere).
        let node_id = node.get("id").and_then(scalar);
        for f in self.items("flow") {
            let target = self.resolve(f.get("nodeId"), "nodes");
            let is_this = match (target, &node_id) {
                (Some(t), _) => std::ptr::eq(t, node),
                (None, Some(id)) => {
                    f.get("nodeId").and_then(Value::as_str).and_then(reference) == Some(id)
                }
                _ => false,
            };
            if !is_this {
                continue;
            }
            for dep in self.list(f.get("depends")) {
                if let Some(up) = self.resolve(dep.get("nodeId"), "nodes") {
                    for o in self.node_outputs(up) {
                        push_unique(&mut inputs, o);
                    }
                } else if let Some(o) = dep.get("output").and_then(scalar) {
                    push_unique(&mut inputs, o);
                }
            }
        }
        put_list(&mut spec, "inputs", inputs);
        put_list(
            &mut spec,
            "outputs",
            self.artifact_list(node.get("outputs")),
        );
        put_list(&mut spec, "parameters", self.parameters(script));
        Extracted {
            object_type: ObjectType::ScheduledTask,
            name,
            studio: self.studio(node),
            spec,
            compute,
            resource_group,
            inline_code,
        }
    }

    fn common(&self, item: &Value, name: &str) -> Map<String, Value> {
        let mut spec = Map::new();
        spec.insert("name".into(), name.into());
        put_opt(&mut spec, "owner", self.owner(item));
        let studio = match self.studio(item) {
            Studio::Legacy => "Legacy",
            Studio::New => "New",
        };
        spec.insert("studio".into(), studio.into());
        spec
    }

    /// `Script` from a script definition; the bool says whether the content
    /// was inline.
    fn script(&self, script: Option<&Value>) -> (Value, bool) {
        let mut s = Map::new();
        let mut inline = false;
        if let Some(def) = script {
            put_opt(&mut s, "language", def.get("language").and_then(scalar));
            put_opt(
                &mut s,
                "command",
                def.get("runtime")
                    .and_then(|r| r.get("command"))
                    .and_then(scalar)
                    .or_else(|| def.get("command").and_then(scalar)),
            );
            let content = def
                .get("content")
                .and_then(Value::as_str)
                .or_else(|| def.get("code").and_then(Value::as_str));
            inline = content.is_some();
            s.insert("content".into(), content.unwrap_or_default().into());
            put_opt(&mut s, "path", def.get("path").and_then(scalar));
        } else {
            s.insert("content".into(), "".into());
        }
        (Value::Object(s), inline)
    }

    fn parameters(&self, script: Option<&'a Value>) -> Vec<String> {
        let mut out = Vec::new();
        for p in script
            .and_then(|s| s.get("parameters"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match self.resolve(Some(p), "variables") {
                Some(var) => {
                    let name = var.get("name").and_then(scalar).unwrap_or_default();
                    match var.get("value").and_then(scalar) {
                        Some(value) => out.push(format!("{name}={value}")),
                        None => out.push(name),
                    }
                }
                None => {
                    if let Some(s) = scalar(p) {
                        out.push(s);
                    }
                }
            }
        }
        out
    }

    fn table(&self, t: &Value) -> Extracted {
        let guid = t.get("guid").and_then(scalar);
        let name = t
            .get("name")
            .and_then(scalar)
            .or_else(|| {
                guid.as_ref()
                    .and_then(|g| g.rsplit('.').next().map(str::to_string))
            })
            .unwrap_or_default();
        let mut spec = self.common(t, &name);
        let compute = self.compute(t, None);
        if let Some(c) = &compute {
            spec.insert("computeResource".into(), c.name.clone().into());
        }
        put_opt(
            &mut spec,
            "ddl",
            t.get("ddl").and_then(Value::as_str).map(str::to_string),
        );
        put_opt(&mut spec, "guid", guid);
        Extracted {
            object_type: ObjectType::Table,
            name,
            studio: self.studio(t),
            spec,
            compute,
            resource_group: None,
            inline_code: true,
        }
    }

    fn file_resource(&self, r: &Value) -> Extracted {
        let name = r
            .get("name")
            .and_then(scalar)
            .or_else(|| r.get("id").and_then(scalar))
            .unwrap_or_default();
        let mut spec = self.common(r, &name);
        put_opt(&mut spec, "type", r.get("type").and_then(scalar));
        let compute = self.compute(r, None);
        if let Some(c) = &compute {
            spec.insert("computeResource".into(), c.name.clone().into());
        }
        Extracted {
            object_type: ObjectType::FileResource,
            name,
            studio: self.studio(r),
            spec,
            compute,
            resource_group: self.resource_group(r, "runtimeResource"),
            inline_code: true,
        }
    }

    fn function(&self, f: &'a Value) -> Extracted {
        let name = f
            .get("name")
            .and_then(scalar)
            .or_else(|| f.get("id").and_then(scalar))
            .unwrap_or_default();
        let mut spec = self.common(f, &name);
        let compute = self.compute(f, None);
        if let Some(c) = &compute {
            spec.insert("computeResource".into(), c.name.clone().into());
        }
        put_opt(
            &mut spec,
            "className",
            f.get("className")
                .or_else(|| f.get("clazz"))
                .and_then(scalar),
        );
        let mut resources = Vec::new();
        for r in f
            .get("fileResources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let n = match self.resolve(Some(r), "fileResources") {
                Some(def) => def.get("name").and_then(scalar),
                None => r.as_str().map(|s| reference(s).unwrap_or(s).to_string()),
            };
            if let Some(n) = n {
                push_unique(&mut resources, n);
            }
        }
        put_list(&mut spec, "resources", resources);
        Extracted {
            object_type: ObjectType::Function,
            name,
            studio: self.studio(f),
            spec,
            compute,
            resource_group: self.resource_group(f, "runtimeResource"),
            inline_code: true,
        }
    }

    fn quality_rule(&self, r: &'a Value) -> Extracted {
        let name = r
            .get("name")
            .and_then(scalar)
            .or_else(|| r.get("id").and_then(scalar))
            .unwrap_or_default();
        let mut spec = self.common(r, &name);
        let table = self.resolve(r.get("table"), "artifacts");
        let table_name = match table {
            Some(t) => t.get("name").and_then(scalar).or_else(|| {
                t.get("guid")
                    .and_then(scalar)
                    .and_then(|g| g.rsplit('.').next().map(str::to_string))
            }),
            None => r.get("table").and_then(scalar),
        };
        spec.insert("table".into(), table_name.unwrap_or_default().into());
        put_opt(
            &mut spec,
            "partitionExpression",
            r.get("partitionExpression").and_then(scalar),
        );
        let sched = match self.resolve(r.get("schedulerNode"), "nodes") {
            Some(n) => n
                .get("output")
                .and_then(scalar)
                .or_else(|| self.node_outputs(n).into_iter().next()),
            None => None,
        };
        put_opt(&mut spec, "scheduledTaskOutput", sched);
        // Never parsed: real rule configurations are not always valid JSON.
        let rule_config = match r.get("ruleConfig") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        put_opt(&mut spec, "ruleConfig", rule_config);
        Extracted {
            object_type: ObjectType::QualityRule,
            name,
            studio: self.studio(r),
            spec,
            compute: self.compute(r, None),
            resource_group: None,
            inline_code: true,
        }
    }

    fn service_api(&self, a: &'a Value) -> Extracted {
        let name = a
            .get("apiName")
            .and_then(scalar)
            .or_else(|| a.get("name").and_then(scalar))
            .or_else(|| a.get("id").and_then(scalar))
            .unwrap_or_default();
        let mut spec = self.common(a, &name);
        put_opt(
            &mut spec,
            "businessProcess",
            a.get("businessProcess")
                .and_then(scalar)
                .or_else(|| a.get("group").and_then(scalar)),
        );
        put_opt(&mut spec, "path", a.get("apiPath").and_then(scalar));
        let method = a.get("apiMethod").and_then(scalar).or_else(|| {
            // apiConfig is opaque text; read the method from it only when it
            // happens to be JSON.
            a.get("apiConfig")
                .and_then(Value::as_str)
                .and_then(|c| serde_json::from_str::<Value>(c).ok())
                .and_then(|c| c.get("apiMethod").and_then(scalar))
        });
        put_opt(&mut spec, "method", method);
        let script = self.resolve(a.get("script"), "scripts");
        let compute = self.compute(a, script);
        if let Some(c) = &compute {
            spec.insert("computeResource".into(), c.name.clone().into());
        }
        let mut inline_code = true;
        if script.is_some() {
            let (s, inline) = self.script(script);
            inline_code = inline;
            spec.insert("script".into(), s);
        } else if let Some(sql) = a.get("apiSql").and_then(Value::as_str) {
            spec.insert("script".into(), json!({ "content": sql }));
        }
        let resource_group = a
            .get("resourceSpec")
            .and_then(|r| r.get("resourceGroup"))
            .and_then(scalar)
            .or_else(|| self.resource_group(a, "runtimeResource"));
        Extracted {
            object_type: ObjectType::ServiceApi,
            name,
            studio: self.studio(a),
            spec,
            compute,
            resource_group,
            inline_code,
        }
    }
}

/// `"{{ x }}"` -> `Some("x")`.
pub fn reference(s: &str) -> Option<&str> {
    let t = s.trim();
    t.strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        .map(str::trim)
        .filter(|r| !r.is_empty())
}

/// Text of a scalar: strings as they are, numbers and booleans printed;
/// null and empty strings are absent.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// FlowSpec data-source types to the engine names Workspaces use.
pub fn normalize_engine(t: &str) -> String {
    match t.to_ascii_lowercase().as_str() {
        "odps" | "maxcompute" => "MaxCompute".into(),
        "holo" | "hologres" => "Hologres".into(),
        "emr" => "EMR".into(),
        "adb" | "analyticdb" | "analyticdb_for_postgresql" | "analyticdb_for_mysql" => {
            "AnalyticDB".into()
        }
        "starrocks" => "StarRocks".into(),
        "flink" => "Flink".into(),
        "cdh" => "CDH".into(),
        _ => t.to_string(),
    }
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

fn put_opt(m: &mut Map<String, Value>, key: &str, v: Option<String>) {
    if let Some(v) = v {
        m.insert(key.into(), v.into());
    }
}

fn put_list(m: &mut Map<String, Value>, key: &str, v: Vec<String>) {
    if !v.is_empty() {
        m.insert(key.into(), v.into());
    }
}

fn get_str<'m>(m: &'m Map<String, Value>, key: &str) -> Option<&'m str> {
    m.get(key).and_then(Value::as_str)
}

fn get_strings(m: &Map<String, Value>, key: &str) -> Vec<String> {
    m.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The code file's extension for a script language.
pub fn code_extension(language: Option<&str>) -> &'static str {
    match language.unwrap_or("").to_ascii_lowercase().as_str() {
        l if l.contains("sql") => "sql",
        "python" | "python2" | "python3" | "py" => "py",
        "sh" | "shell" | "bash" => "sh",
        "json" => "json",
        _ => "txt",
    }
}

/// Builds a one-object FlowSpec document from a Ferry spec map (the inverse
/// of [`extract_objects`] for the fields Ferry interprets), and the code file
/// `(name, bytes)` when `code_in_file` moves the script out of the document.
///
/// `compute_type` is the engine type of `spec.computeResource` (the spec map
/// only holds the display name).
pub fn build_document(
    object_type: ObjectType,
    spec: &Map<String, Value>,
    code_in_file: bool,
    compute_type: Option<&str>,
) -> (Value, Option<(String, Vec<u8>)>) {
    let name = get_str(spec, "name").unwrap_or_default();
    let mut metadata = Map::new();
    if let Some(o) = get_str(spec, "owner") {
        metadata.insert("owner".into(), o.into());
    }
    if get_str(spec, "studio") == Some("New") {
        metadata.insert("studio".into(), "New".into());
    }
    let datasource = get_str(spec, "computeResource").map(|c| {
        let mut ds = Map::new();
        ds.insert("name".into(), c.into());
        if let Some(t) = compute_type {
            ds.insert("type".into(), t.into());
        }
        Value::Object(ds)
    });
    let mut code = None;
    let mut script_def = |s: Option<&Value>, id: &str| -> Value {
        let s = s.and_then(Value::as_object).cloned().unwrap_or_default();
        let mut def = Map::new();
        def.insert("id".into(), id.into());
        if let Some(p) = get_str(&s, "path") {
            def.insert("path".into(), p.into());
        }
        if let Some(l) = get_str(&s, "language") {
            def.insert("language".into(), l.into());
        }
        if let Some(c) = get_str(&s, "command") {
            def.insert("runtime".into(), json!({ "command": c }));
        }
        let content = get_str(&s, "content").unwrap_or_default();
        if code_in_file {
            let file = format!("code.{}", code_extension(get_str(&s, "language")));
            code = Some((file, content.as_bytes().to_vec()));
        } else {
            def.insert("content".into(), content.into());
        }
        Value::Object(def)
    };
    let mut doc_spec = Map::new();
    let kind = match object_type {
        ObjectType::ScheduledTask => {
            let mut script = script_def(spec.get("script"), "script_1");
            let mut node = Map::new();
            node.insert("id".into(), "node_1".into());
            node.insert("name".into(), name.into());
            node.insert("script".into(), "{{scripts.script_1}}".into());
            if let Some(ds) = datasource {
                node.insert("datasource".into(), ds);
            }
            let params = get_strings(spec, "parameters");
            if !params.is_empty() {
                let mut vars = Vec::new();
                let mut refs = Vec::new();
                for (i, p) in params.iter().enumerate() {
                    let id = format!("param_{}", i + 1);
                    let mut var = json!({"id": id, "scope": "NodeParameter", "type": "Constant"});
                    match p.split_once('=') {
                        Some((n, v)) => {
                            var["name"] = n.into();
                            var["value"] = v.into();
                        }
                        None => var["name"] = p.as_str().into(),
                    }
                    vars.push(var);
                    refs.push(Value::String(format!("{{{{variables.{id}}}}}")));
                }
                doc_spec.insert("variables".into(), Value::Array(vars));
                script
                    .as_object_mut()
                    .expect("built as an object")
                    .insert("parameters".into(), Value::Array(refs));
            }
            doc_spec.insert("scripts".into(), Value::Array(vec![script]));
            if let Some(rg) = get_str(spec, "resourceGroup") {
                doc_spec.insert(
                    "runtimeResources".into(),
                    json!([{ "id": "resgroup_1", "resourceGroup": rg }]),
                );
                node.insert(
                    "runtimeResource".into(),
                    "{{runtimeResources.resgroup_1}}".into(),
                );
            }
            if let Some(t) = spec.get("trigger").and_then(Value::as_object) {
                let mut tr = t.clone();
                tr.insert("id".into(), "trigger_1".into());
                tr.insert("type".into(), "Scheduler".into());
                doc_spec.insert("triggers".into(), Value::Array(vec![Value::Object(tr)]));
                node.insert("trigger".into(), "{{triggers.trigger_1}}".into());
            }
            node.insert(
                "recurrence".into(),
                get_str(spec, "recurrence").unwrap_or("Normal").into(),
            );
            if let Some(r) = spec.get("rerun").and_then(Value::as_object) {
                if let Some(m) = get_str(r, "mode") {
                    node.insert("rerunMode".into(), m.into());
                }
                if let Some(t) = r.get("times").and_then(Value::as_u64) {
                    node.insert("rerunTimes".into(), t.into());
                }
                if let Some(s) = r.get("intervalSeconds").and_then(Value::as_u64) {
                    node.insert("rerunInterval".into(), (s * 1000).into());
                }
            }
            let inputs = get_strings(spec, "inputs");
            if !inputs.is_empty() {
                let outs: Vec<Value> = inputs.iter().map(|i| json!({ "data": i })).collect();
                node.insert("inputs".into(), json!({ "nodeOutputs": outs }));
            }
            let outputs = get_strings(spec, "outputs");
            if !outputs.is_empty() {
                let mut arts = Vec::new();
                let mut refs = Vec::new();
                for (i, o) in outputs.iter().enumerate() {
                    let id = format!("output_{}", i + 1);
                    arts.push(json!({ "id": id, "data": o }));
                    refs.push(Value::String(format!("{{{{artifacts.{id}}}}}")));
                }
                doc_spec.insert("artifacts".into(), json!({ "nodeOutputs": arts }));
                node.insert("outputs".into(), json!({ "nodeOutputs": refs }));
            }
            doc_spec.insert("nodes".into(), Value::Array(vec![Value::Object(node)]));
            "CycleWorkflow"
        }
        ObjectType::Table => {
            let mut t = Map::new();
            t.insert("id".into(), "table_1".into());
            t.insert("name".into(), name.into());
            for key in ["guid", "ddl"] {
                if let Some(v) = get_str(spec, key) {
                    t.insert(key.into(), v.into());
                }
            }
            if let Some(ds) = datasource {
                t.insert("datasource".into(), ds);
            }
            doc_spec.insert("artifacts".into(), json!({ "tables": [t] }));
            "CycleWorkflow"
        }
        ObjectType::FileResource => {
            let mut r = Map::new();
            r.insert("id".into(), "resource_1".into());
            r.insert("name".into(), name.into());
            if let Some(t) = get_str(spec, "type") {
                r.insert("type".into(), t.into());
            }
            if let Some(ds) = datasource {
                r.insert("datasource".into(), ds);
            }
            doc_spec.insert("fileResources".into(), Value::Array(vec![Value::Object(r)]));
            "CycleWorkflow"
        }
        ObjectType::Function => {
            let mut f = Map::new();
            f.insert("id".into(), "function_1".into());
            f.insert("name".into(), name.into());
            if let Some(c) = get_str(spec, "className") {
                f.insert("className".into(), c.into());
            }
            if let Some(ds) = datasource {
                f.insert("datasource".into(), ds);
            }
            let resources = get_strings(spec, "resources");
            if !resources.is_empty() {
                // The resources are objects of their own; the document only
                // names them, through stub definitions the references resolve to.
                let stubs: Vec<Value> = resources
                    .iter()
                    .enumerate()
                    .map(|(i, r)| json!({ "id": format!("ref_resource_{}", i + 1), "name": r, "reference": true }))
                    .collect();
                let refs: Vec<Value> = (1..=resources.len())
                    .map(|i| Value::String(format!("{{{{fileResources.ref_resource_{i}}}}}")))
                    .collect();
                f.insert("fileResources".into(), Value::Array(refs));
                doc_spec.insert("fileResources".into(), Value::Array(stubs));
            }
            doc_spec.insert("functions".into(), Value::Array(vec![Value::Object(f)]));
            "CycleWorkflow"
        }
        ObjectType::QualityRule => {
            let mut r = Map::new();
            r.insert("id".into(), "rule_1".into());
            r.insert("name".into(), name.into());
            r.insert(
                "table".into(),
                json!({ "name": get_str(spec, "table").unwrap_or_default() }),
            );
            if let Some(p) = get_str(spec, "partitionExpression") {
                r.insert("partitionExpression".into(), p.into());
            }
            if let Some(o) = get_str(spec, "scheduledTaskOutput") {
                r.insert("schedulerNode".into(), json!({ "output": o }));
            }
            if let Some(c) = get_str(spec, "ruleConfig") {
                r.insert("ruleConfig".into(), c.into());
            }
            doc_spec.insert("dqcRules".into(), Value::Array(vec![Value::Object(r)]));
            "CycleWorkflow"
        }
        ObjectType::ServiceApi => {
            let mut a = Map::new();
            a.insert("id".into(), "api_1".into());
            a.insert("apiName".into(), name.into());
            for (from, to) in [
                ("businessProcess", "businessProcess"),
                ("path", "apiPath"),
                ("method", "apiMethod"),
            ] {
                if let Some(v) = get_str(spec, from) {
                    a.insert(to.into(), v.into());
                }
            }
            if let Some(ds) = datasource {
                a.insert("datasource".into(), ds);
            }
            if spec.get("script").is_some() {
                let s = script_def(spec.get("script"), "script_1");
                doc_spec.insert("scripts".into(), Value::Array(vec![s]));
                a.insert("script".into(), "{{scripts.script_1}}".into());
            }
            doc_spec.insert("apis".into(), Value::Array(vec![Value::Object(a)]));
            "DataserviceOrchestrationSpec"
        }
    };
    let mut doc = Map::new();
    doc.insert("version".into(), "1.1.0".into());
    doc.insert("kind".into(), kind.into());
    if !metadata.is_empty() {
        doc.insert("metadata".into(), Value::Object(metadata));
    }
    doc.insert("spec".into(), Value::Object(doc_spec));
    (Value::Object(doc), code)
}
