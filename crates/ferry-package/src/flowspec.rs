//! Reading and writing FlowSpec documents (DataWorks' open spec format).
//!
//! Reading is lenient on purpose: real documents carry flaws Ferry need not
//! interpret (a `ruleConfig` that is not valid JSON, empty names, unknown
//! fields), and those travel untouched in the verbatim document. Only a
//! document that is not valid YAML/JSON at all is an error, reported with
//! file, line and column.
//!
//! Layouts: `spec.nodes[]` + `spec.flow[]` (FlowSpec 1.1), `spec.workflows[]`
//! (each with `nodes[]` and `dependencies[]`), and FlowSpec 1.0.0 documents
//! with the sections at the top level. Anything else is refused with an
//! `unsupported-layout` issue naming what the document has.
//!
//! References: a field may hold an inline definition or a reference string
//! `"{{section.id}}"` / `"{{id}}"` to a definition anywhere in the same
//! document (every list or mapping entry with an `id` is indexed under its
//! section: `scripts`, `triggers`, `runtimeResources`, `variables`,
//! `artifacts.*`, `tables`, `files.*`, `fileResources`, `nodes` including
//! inner nodes, ...). Both forms resolve to the same thing here; a reference
//! to nothing is an `unresolved-reference` issue, never a literal name.
//!
//! Dependencies: flow entries name nodes by `{{...}}` reference or by plain
//! id (DataWorks' own exports), and depend on a node or an `output`. A
//! dependency on a node is a dependency on its output: the first declared
//! one (`outputs.nodeOutputs[]`, `outputs.outputs[]`; the one marked
//! `isDefault` if any), else DataWorks' default output `<project>.<name>`.
//! Every edge is accounted for in [`Reading::edges`]: imported, internal to a
//! container node, or unresolved with an issue.
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

use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

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
    /// Compute resources of the inner nodes of a do-while, for-each or
    /// combined node (the container is one task; its inner nodes run on
    /// their own resources, which a mapping must cover too). Sorted, each
    /// once, without [`Self::compute`].
    pub inner_compute: Vec<ComputeRef>,
    /// Resource groups of those inner nodes, sorted, each once, without
    /// [`Self::resource_group`].
    pub inner_resource_groups: Vec<String>,
}

/// How a document lays out its sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// FlowSpec 1.1: `spec.nodes[]` and `spec.flow[]` (and the other
    /// sections) under `spec`.
    SpecNodes,
    /// `spec.workflows[]`, each with its `nodes[]` and `dependencies[]`.
    SpecWorkflows,
    /// FlowSpec 1.0.0: the sections at the top level, no `spec`.
    TopLevel,
}

impl Layout {
    pub fn describe(self) -> &'static str {
        match self {
            Layout::SpecNodes => "spec.nodes[] + spec.flow[]",
            Layout::SpecWorkflows => "spec.workflows[] (nodes + dependencies)",
            Layout::TopLevel => "FlowSpec 1.0.0 top-level sections",
        }
    }
}

/// Whether an issue refuses the document or only warns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// Something in a document Ferry could not read faithfully. Never silent:
/// every unresolved reference and dependency is one of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// A stable code, one of [`ISSUE_RULES`].
    pub rule: &'static str,
    pub severity: Severity,
    /// What it concerns: `ScheduledTask "sql"`, or `document`.
    pub subject: String,
    /// Where in the document (`spec.flow[1].depends[0]`).
    pub at: String,
    pub detail: String,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: {} (rule: {})",
            self.subject, self.at, self.detail, self.rule
        )
    }
}

/// The rule codes of [`Issue`]s.
pub const ISSUE_RULES: [&str; 4] = [
    "unsupported-layout",
    "unresolved-reference",
    "unresolved-dependency",
    "unknown-dependency-type",
];

/// The dependency types of FlowSpec (`depends[].type`).
pub const DEPENDENCY_TYPES: [&str; 4] = [
    "Normal",
    "CrossCycleDependsOnSelf",
    "CrossCycleDependsOnChildren",
    "CrossCycleDependsOnOtherNode",
];

/// What became of one dependency edge of a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EdgeOutcome {
    /// On the task: a `Normal` edge is in `spec.inputs`, any other type in
    /// `spec.crossCycleDependencies` (output `None`: the type alone says
    /// what it depends on, as for CrossCycleDependsOnChildren).
    Imported {
        output: Option<String>,
        dependency_type: String,
    },
    /// Between the inner nodes of a do-while, for-each or combined node:
    /// resolved, and kept in that task's FlowSpec document.
    Internal,
    /// Resolved to nothing: there is an [`Issue`] for it.
    Unresolved,
}

/// One dependency edge of a document: a `depends[]` entry of a flow, or an
/// entry of a node's `inputs.nodeOutputs[]`, `inputs.outputs[]` or
/// `inputs.tables[]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// The downstream task's name (for inner edges, the container's).
    pub task: String,
    /// Where in the document.
    pub at: String,
    pub outcome: EdgeOutcome,
}

/// Options for [`read_document`].
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// The source project. A node without declared outputs has DataWorks'
    /// default output `<project>.<task name>`; without a project (here or
    /// in the document's metadata) it is the bare task name.
    pub project: Option<String>,
}

/// Everything read from one document.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    /// `None` when the document has no layout Ferry reads (there is an
    /// `unsupported-layout` issue naming what it has).
    pub layout: Option<Layout>,
    pub objects: Vec<Extracted>,
    /// Every dependency edge of the document: each task's (its declared
    /// inputs, then its flow entries), then those that belong to no task
    /// and those inside container nodes. The order is stable.
    pub edges: Vec<Edge>,
    pub issues: Vec<Issue>,
}

impl Reading {
    /// The issues that refuse the document.
    pub fn errors(&self) -> impl Iterator<Item = &Issue> {
        self.issues.iter().filter(|i| i.severity == Severity::Error)
    }

    /// Edges with each outcome: (imported, internal, unresolved).
    pub fn edge_counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for e in &self.edges {
            match e.outcome {
                EdgeOutcome::Imported { .. } => c.0 += 1,
                EdgeOutcome::Internal => c.1 += 1,
                EdgeOutcome::Unresolved => c.2 += 1,
            }
        }
        c
    }
}

/// Every object a document defines: auto-triggered nodes (not `reference`
/// nodes, which point at tasks elsewhere), tables with a definition (`name`
/// or `ddl`, not bare references), file resources, functions, quality rules
/// and DataService APIs. Issues are dropped here: use [`read_document`]
/// wherever they can be reported.
pub fn extract_objects(doc: &Value) -> Vec<Extracted> {
    read_document(doc, &ReadOptions::default()).objects
}

/// Reads a document: its objects, every dependency edge and what became of
/// it, and every issue (see docs/package-format.md).
pub fn read_document(doc: &Value, opts: &ReadOptions) -> Reading {
    let d = Doc::new(doc, opts);
    let Some(layout) = d.layout else {
        let issue = d.unsupported(None);
        return Reading {
            layout: None,
            objects: Vec::new(),
            edges: Vec::new(),
            issues: vec![issue],
        };
    };
    let mut out = Vec::new();
    let scopes = d.scopes();
    let mut edges = Vec::new();
    for scope in &scopes {
        if scope.inner {
            continue;
        }
        for node in &scope.nodes {
            if node.get("reference").is_some() {
                continue;
            }
            let (task, task_edges) = d.task(node, scope);
            edges.extend(task_edges);
            out.push(task);
        }
    }
    edges.extend(d.unowned_flow_edges(&scopes));
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
    if out.is_empty() {
        let issue = d.unsupported(Some(layout));
        d.issues.borrow_mut().push(issue);
    }
    Reading {
        layout: Some(layout),
        objects: out,
        edges,
        issues: d.issues.into_inner(),
    }
}

/// Sections a document may hold, at `spec` or (FlowSpec 1.0.0) at the top.
const SECTIONS: [&str; 16] = [
    "nodes",
    "flow",
    "workflows",
    "scripts",
    "triggers",
    "variables",
    "artifacts",
    "files",
    "datasources",
    "runtimeResources",
    "fileResources",
    "functions",
    "dqcRules",
    "apis",
    "components",
    "calcEngines",
];

/// Keys of a node holding an inner workflow.
const CONTAINER_KEYS: [&str; 6] = [
    "do-while", "doWhile", "for-each", "foreach", "forEach", "combined",
];

/// A set of nodes and the flow among them: `spec`, one workflow of
/// `spec.workflows[]`, or the inner workflow of a container node.
struct Scope<'a> {
    /// Path of the scope's flow in the document, for messages.
    path: String,
    nodes: Vec<&'a Value>,
    flow: Vec<&'a Value>,
    /// The workflow (for `spec.workflows[]` scopes): owner and trigger
    /// defaults of its nodes.
    workflow: Option<&'a Value>,
    /// Inside a container node: its edges are internal to that task.
    inner: bool,
    /// For inner scopes: the container node.
    container: Option<&'a Value>,
    /// Flow entry indices by the address of the node they are about,
    /// built once on first use (a workflow of thousands of nodes would
    /// otherwise scan its whole flow for each node).
    targets: OnceCell<BTreeMap<usize, Vec<usize>>>,
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
    layout: Option<Layout>,
    /// (section, id) -> definition. Sections: the key of the array (or
    /// mapping) a definition sits in, and its dotted path from the nearest
    /// enclosing list item or `spec` (`artifacts.tables`, `artifacts`).
    defs: BTreeMap<(String, String), &'a Value>,
    /// id -> definitions in document order, for unqualified references.
    by_id: BTreeMap<String, Vec<(String, &'a Value)>>,
    /// Every node (top-level, in workflows, inner) by id.
    nodes: BTreeMap<String, &'a Value>,
    project: Option<String>,
    issues: RefCell<Vec<Issue>>,
    /// The object being read, for issues.
    subject: RefCell<String>,
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

/// How deep the definition index descends (documents are untrusted).
const MAX_INDEX_DEPTH: usize = 48;

/// A field's value after resolving references.
enum Lookup<'a> {
    Absent,
    Def(&'a Value),
    /// A plain scalar (not a `{{...}}` reference, not a mapping).
    Plain(String),
    /// A `{{...}}` reference to nothing in the document.
    Unresolved(String),
}

impl<'a> Doc<'a> {
    fn new(doc: &'a Value, opts: &ReadOptions) -> Self {
        let (spec, layout) = match doc.get("spec") {
            Some(Value::Object(spec)) => {
                let layout = if spec.get("workflows").is_some_and(Value::is_array) {
                    Layout::SpecWorkflows
                } else {
                    Layout::SpecNodes
                };
                (spec, Some(layout))
            }
            None | Some(Value::Null) => match doc.as_object() {
                Some(root) if SECTIONS.iter().any(|s| root.contains_key(*s)) => {
                    (root, Some(Layout::TopLevel))
                }
                _ => (&*EMPTY, None),
            },
            Some(_) => (&*EMPTY, None),
        };
        let project = opts.project.clone().or_else(|| {
            let m = doc.get("metadata");
            m.and_then(|m| m.get("projectIdentifier"))
                .or_else(|| {
                    m.and_then(|m| m.get("project"))
                        .and_then(|p| p.get("projectIdentifier"))
                })
                .and_then(scalar)
        });
        let mut d = Doc {
            doc,
            spec,
            layout,
            defs: BTreeMap::new(),
            by_id: BTreeMap::new(),
            nodes: BTreeMap::new(),
            project,
            issues: RefCell::new(Vec::new()),
            subject: RefCell::new("document".into()),
        };
        if layout.is_some() {
            d.index_map(spec, &mut Vec::new(), 0);
            d.index_nodes();
        }
        d
    }

    /// Indexes every definition with an `id` under `map`. `path` is the
    /// keys from the nearest enclosing list item (or `spec`), a stack reused
    /// all the way down: this runs for every document of every package.
    fn index_map(&mut self, map: &'a Map<String, Value>, path: &mut Vec<&'a str>, depth: usize) {
        if depth > MAX_INDEX_DEPTH {
            return;
        }
        for (key, value) in map {
            match value {
                Value::Array(items) => {
                    path.push(key);
                    for item in items {
                        if let Value::Object(m) = item {
                            if m.contains_key("id") {
                                self.register(path, item);
                            }
                            // Below a list item, paths start afresh.
                            let mut inner = Vec::new();
                            self.index_map(m, &mut inner, depth + 1);
                        }
                    }
                    path.pop();
                }
                Value::Object(m) => {
                    path.push(key);
                    if m.contains_key("id") {
                        self.register(path, value);
                    }
                    self.index_map(m, path, depth + 1);
                    path.pop();
                }
                _ => {}
            }
        }
    }

    fn register(&mut self, path: &[&str], item: &'a Value) {
        let Some(id) = item.get("id").and_then(scalar) else {
            return;
        };
        let mut add = |section: String| {
            self.defs
                .entry((section.clone(), id.clone()))
                .or_insert(item);
            let v = self.by_id.entry(id.clone()).or_default();
            if !v
                .iter()
                .any(|(sec, d)| *sec == section && std::ptr::eq(*d, item))
            {
                v.push((section, item));
            }
        };
        if let Some(last) = path.last() {
            add((*last).to_string());
        }
        for i in (0..path.len().saturating_sub(1)).rev() {
            add(path[i..].join("."));
            add(path[..=i].join("."));
        }
    }

    fn index_nodes(&mut self) {
        let mut all = Vec::new();
        for scope in self.scopes() {
            all.extend(scope.nodes);
        }
        for n in all {
            if let Some(id) = n.get("id").and_then(scalar) {
                self.nodes.entry(id).or_insert(n);
            }
        }
    }

    /// The scopes: `spec` (or the top level), each workflow, and the inner
    /// workflows of container nodes, recursively.
    fn scopes(&self) -> Vec<Scope<'a>> {
        let mut out = vec![Scope {
            path: "spec".into(),
            nodes: self.items("nodes"),
            flow: self.items("flow"),
            workflow: None,
            inner: false,
            container: None,
            targets: OnceCell::new(),
        }];
        if self.layout == Some(Layout::TopLevel) {
            out[0].path = "(top level)".into();
        }
        for (i, w) in self.items("workflows").into_iter().enumerate() {
            let mut flow = self.list(w.get("dependencies"));
            flow.extend(self.list(w.get("flow")));
            out.push(Scope {
                path: format!("spec.workflows[{i}]"),
                nodes: self.list(w.get("nodes")),
                flow,
                workflow: Some(w),
                inner: false,
                container: None,
                targets: OnceCell::new(),
            });
        }
        let mut i = 0;
        while i < out.len() {
            let mut inner = Vec::new();
            for (n, node) in out[i].nodes.iter().enumerate() {
                for key in CONTAINER_KEYS {
                    let Some(c) = node.get(key).filter(|c| c.is_object()) else {
                        continue;
                    };
                    let mut nodes = self.list(c.get("nodes"));
                    for w in ["while", "specWhile"] {
                        if let Some(x) = c.get(w).filter(|x| x.is_object()) {
                            nodes.push(x);
                        }
                    }
                    if out.len() + inner.len() > 10_000 {
                        break;
                    }
                    inner.push(Scope {
                        path: format!("{}.nodes[{n}].{key}", out[i].path),
                        nodes,
                        flow: self.list(c.get("flow")),
                        workflow: None,
                        inner: true,
                        container: Some(node),
                        targets: OnceCell::new(),
                    });
                }
            }
            out.extend(inner);
            i += 1;
        }
        out
    }

    fn unsupported(&self, layout: Option<Layout>) -> Issue {
        let kind = self.kind();
        let kind = if kind.is_empty() { "(none)" } else { kind };
        let sections = |m: &Map<String, Value>| {
            let keys: Vec<&str> = m.keys().map(String::as_str).collect();
            if keys.is_empty() {
                "no sections".to_string()
            } else {
                format!("sections {}", keys.join(", "))
            }
        };
        let detail = match (layout, self.doc.get("spec")) {
            (Some(l), _) => format!(
                "kind {kind:?}, layout {}: {} hold no object Ferry imports (nodes, tables, file resources, functions, quality rules, APIs)",
                l.describe(),
                sections(self.spec)
            ),
            (None, Some(s)) if !s.is_object() && !s.is_null() => format!(
                "kind {kind:?}: `spec` is a {}, not a mapping; supported layouts: {}, {}, {}",
                json_type(s),
                Layout::SpecNodes.describe(),
                Layout::SpecWorkflows.describe(),
                Layout::TopLevel.describe()
            ),
            _ => format!(
                "kind {kind:?}: neither `spec` nor top-level FlowSpec sections ({}); supported layouts: {}, {}, {}",
                self.doc
                    .as_object()
                    .map(sections)
                    .unwrap_or_else(|| "not a mapping".into()),
                Layout::SpecNodes.describe(),
                Layout::SpecWorkflows.describe(),
                Layout::TopLevel.describe()
            ),
        };
        Issue {
            rule: "unsupported-layout",
            severity: Severity::Error,
            subject: "document".into(),
            at: "(document)".into(),
            detail,
        }
    }

    fn issue(&self, rule: &'static str, severity: Severity, at: &str, detail: String) {
        self.issues.borrow_mut().push(Issue {
            rule,
            severity,
            subject: self.subject.borrow().clone(),
            at: at.to_string(),
            detail,
        });
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

    /// Looks a field up: an inline definition, a `{{section.id}}` /
    /// `{{id}}` reference (unqualified ones prefer `prefer`, then any
    /// section), or a plain scalar.
    fn lookup(&self, v: Option<&'a Value>, prefer: &str) -> Lookup<'a> {
        let Some(v) = v else {
            return Lookup::Absent;
        };
        match v {
            Value::Object(_) => Lookup::Def(v),
            Value::Null => Lookup::Absent,
            Value::String(s) => match reference(s) {
                Some(r) => match self.find(r, prefer) {
                    Some(d) => Lookup::Def(d),
                    None => Lookup::Unresolved(r.to_string()),
                },
                None if s.is_empty() => Lookup::Absent,
                None => Lookup::Plain(s.clone()),
            },
            other => match scalar(other) {
                Some(s) => Lookup::Plain(s),
                None => Lookup::Absent,
            },
        }
    }

    fn find(&self, r: &str, prefer: &str) -> Option<&'a Value> {
        // `section.id`, where the section may be dotted itself
        // (`artifacts.outputs.out_b`).
        for (i, _) in r.match_indices('.') {
            if let Some(def) = self.defs.get(&(r[..i].to_string(), r[i + 1..].to_string())) {
                return Some(def);
            }
        }
        let candidates = self.by_id.get(r)?;
        candidates
            .iter()
            .find(|(s, _)| s == prefer)
            .or_else(|| candidates.first())
            .map(|(_, d)| *d)
    }

    /// Resolves a field that must be an inline definition or a reference;
    /// a reference to nothing, or a plain value naming no definition, is
    /// an `unresolved-reference` issue.
    fn resolve_at(&self, v: Option<&'a Value>, prefer: &str, at: &str) -> Option<&'a Value> {
        match self.lookup(v, prefer) {
            Lookup::Def(d) => Some(d),
            Lookup::Absent => None,
            Lookup::Unresolved(r) => {
                self.issue(
                    "unresolved-reference",
                    Severity::Error,
                    at,
                    format!("reference \"{{{{{r}}}}}\" resolves to nothing in the document"),
                );
                None
            }
            Lookup::Plain(p) => match self.find(&p, prefer) {
                Some(d) => Some(d),
                None => {
                    self.issue(
                        "unresolved-reference",
                        Severity::Error,
                        at,
                        format!("{p:?} is neither a definition nor a reference to one ({prefer})"),
                    );
                    None
                }
            },
        }
    }

    fn resolve(&self, v: Option<&'a Value>, prefer: &str) -> Option<&'a Value> {
        self.resolve_at(v, prefer, prefer)
    }

    fn owner(&self, item: &Value, workflow: Option<&Value>) -> Option<String> {
        item.get("owner")
            .and_then(scalar)
            .or_else(|| {
                item.get("metadata")
                    .and_then(|m| m.get("owner"))
                    .and_then(scalar)
            })
            .or_else(|| workflow.and_then(|w| w.get("owner")).and_then(scalar))
            .or_else(|| self.spec.get("owner").and_then(scalar))
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

    fn compute(&self, item: &'a Value, script: Option<&'a Value>) -> Option<ComputeRef> {
        let ds = self
            .resolve_at(item.get("datasource"), "datasources", "datasource")
            .or_else(|| {
                script.and_then(|s| {
                    self.resolve_at(s.get("datasource"), "datasources", "script.datasource")
                })
            })?;
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

    fn resource_group(&self, item: &'a Value, key: &str) -> Option<String> {
        self.resolve_at(item.get(key), "runtimeResources", key)
            .and_then(|r| r.get("resourceGroup"))
            .and_then(scalar)
    }

    /// The output name of an artifact entry (a node output, an output, a
    /// table): its `data`, else `guid`, else `name`; a plain string is the
    /// name itself. `None` (with an issue) for a reference to nothing.
    fn artifact_name(&self, v: &'a Value, at: &str) -> Option<String> {
        match self.lookup(Some(v), "artifacts") {
            Lookup::Def(def) => {
                let name = def
                    .get("data")
                    .and_then(scalar)
                    .or_else(|| def.get("guid").and_then(scalar))
                    .or_else(|| def.get("name").and_then(scalar));
                if name.is_none() {
                    self.issue(
                        "unresolved-dependency",
                        Severity::Error,
                        at,
                        "the artifact has no data, guid or name to depend on".into(),
                    );
                }
                name
            }
            Lookup::Plain(p) => Some(p),
            Lookup::Unresolved(r) => {
                self.issue(
                    "unresolved-reference",
                    Severity::Error,
                    at,
                    format!("reference \"{{{{{r}}}}}\" resolves to nothing in the document"),
                );
                None
            }
            Lookup::Absent => {
                self.issue(
                    "unresolved-dependency",
                    Severity::Error,
                    at,
                    "an empty entry names no output".into(),
                );
                None
            }
        }
    }

    /// The declared output names of a node: `outputs.nodeOutputs[]`,
    /// `outputs.outputs[]` (artifactType Output), then `outputs.tables[]`.
    /// The first is the node's own output (the one marked `isDefault: true`
    /// if any). Issues are recorded at `at`.
    fn declared_outputs(&self, node: &'a Value, at: &str) -> (Vec<String>, Option<String>) {
        let mut out = Vec::new();
        let mut primary = None;
        let mut primary_is_default = false;
        let Some(io) = node.get("outputs") else {
            return (out, None);
        };
        for key in ["nodeOutputs", "outputs", "tables"] {
            for (i, item) in io
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                if let Some(n) = self.artifact_name(item, &format!("{at}.outputs.{key}[{i}]")) {
                    if key != "tables" {
                        let def = match self.lookup(Some(item), "artifacts") {
                            Lookup::Def(d) => Some(d),
                            _ => None,
                        };
                        let is_default = def
                            .and_then(|d| d.get("isDefault"))
                            .and_then(Value::as_bool)
                            == Some(true);
                        // The first output marked default, else the first.
                        if primary.is_none() || (is_default && !primary_is_default) {
                            primary = Some(n.clone());
                            primary_is_default = is_default;
                        }
                    }
                    push_unique(&mut out, n);
                }
            }
        }
        (out, primary)
    }

    /// A node's name: its `name`, else its script's name, else its id.
    fn node_name(&self, node: &'a Value) -> String {
        node.get("name")
            .and_then(scalar)
            .or_else(|| {
                match self.lookup(node.get("script"), "scripts") {
                    Lookup::Def(s) => Some(s),
                    _ => None,
                }
                .and_then(|s| s.get("name"))
                .and_then(scalar)
            })
            .or_else(|| node.get("id").and_then(scalar))
            .unwrap_or_default()
    }

    /// What a dependency on `node` depends on: a reference node's output,
    /// else the node's own declared output, else DataWorks' default output.
    fn output_of(&self, node: &'a Value) -> String {
        if let Some(o) = node
            .get("reference")
            .and_then(|r| r.get("output"))
            .and_then(scalar)
        {
            return o;
        }
        let saved = self.issues.borrow().len();
        let (_, primary) = self.declared_outputs(node, "outputs");
        // Reported where the node itself is read.
        self.issues.borrow_mut().truncate(saved);
        primary.unwrap_or_else(|| self.default_output(node))
    }

    fn default_output(&self, node: &'a Value) -> String {
        let name = self.node_name(node);
        match &self.project {
            Some(p) if !p.is_empty() => format!("{p}.{name}"),
            _ => name,
        }
    }

    /// An output name as a dependency: DataWorks' exports name a node's
    /// output by the node's id, so a name that is the id of a node of the
    /// document means that node's output (which may be its default one).
    fn output_named(&self, name: String) -> String {
        match self.nodes.get(&name) {
            Some(n) => self.output_of(n),
            None => name,
        }
    }

    /// The node a flow entry's `nodeId` names: a `{{...}}` reference or a
    /// plain id.
    fn node_ref(&self, v: Option<&'a Value>) -> Lookup<'a> {
        match self.lookup(v, "nodes") {
            Lookup::Plain(p) => match self.nodes.get(&p) {
                Some(n) => Lookup::Def(n),
                None => Lookup::Unresolved(p),
            },
            other => other,
        }
    }

    /// The edges of one `depends[]` entry of a flow entry whose node is
    /// `node` (None: the flow entry's node is unknown).
    fn depend_edge(
        &self,
        dep: &'a Value,
        node: &'a Value,
        at: &str,
    ) -> Result<(Option<String>, String), ()> {
        let dtype = dep
            .get("type")
            .and_then(scalar)
            .unwrap_or_else(|| "Normal".into());
        if !DEPENDENCY_TYPES.contains(&dtype.as_str()) {
            self.issue(
                "unknown-dependency-type",
                Severity::Error,
                &format!("{at}.type"),
                format!(
                    "dependency type {dtype:?} is not one of {}",
                    DEPENDENCY_TYPES.join(", ")
                ),
            );
            return Err(());
        }
        let up = match self.node_ref(dep.get("nodeId")) {
            Lookup::Def(n) => Some(self.output_of(n)),
            Lookup::Absent => None,
            Lookup::Unresolved(r) => {
                if dep.get("output").is_none() {
                    self.issue(
                        "unresolved-dependency",
                        Severity::Error,
                        &format!("{at}.nodeId"),
                        format!(
                            "node {r:?} is not defined in the document and the entry names no output"
                        ),
                    );
                    return Err(());
                }
                None
            }
            Lookup::Plain(_) => unreachable!("node_ref resolves plain ids"),
        };
        if let Some(o) = up {
            return Ok((Some(o), dtype));
        }
        match dep.get("output") {
            Some(o) if !o.is_null() => match self.artifact_name(o, &format!("{at}.output")) {
                Some(name) => Ok((Some(self.output_named(name)), dtype)),
                None => Err(()),
            },
            _ => match dtype.as_str() {
                // Its own previous cycle.
                "CrossCycleDependsOnSelf" => Ok((Some(self.output_of(node)), dtype)),
                // The type says it all: its children's previous cycle.
                "CrossCycleDependsOnChildren" => Ok((None, dtype)),
                _ => {
                    self.issue(
                        "unresolved-dependency",
                        Severity::Error,
                        at,
                        "the entry names neither a node nor an output".into(),
                    );
                    Err(())
                }
            },
        }
    }

    /// The flow entries of `scope` about `node`.
    fn flow_of(&self, scope: &Scope<'a>, node: &'a Value) -> Vec<(usize, &'a Value)> {
        let targets = scope.targets.get_or_init(|| {
            let mut m: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
            for (i, f) in scope.flow.iter().enumerate() {
                if let Lookup::Def(n) = self.node_ref(f.get("nodeId")) {
                    m.entry(n as *const Value as usize).or_default().push(i);
                }
            }
            m
        });
        targets
            .get(&(node as *const Value as usize))
            .map(|ix| ix.iter().map(|&i| (i, scope.flow[i])).collect())
            .unwrap_or_default()
    }

    /// Flow entries whose node is not a task here: unknown nodes and
    /// reference nodes (their edges are unresolved, with an issue), and
    /// every edge of inner scopes (internal when they resolve).
    fn unowned_flow_edges(&self, scopes: &[Scope<'a>]) -> Vec<Edge> {
        let mut edges = Vec::new();
        for scope in scopes {
            let container_name = scope.container.map(|c| self.node_name(c));
            if let Some(c) = scope.container {
                *self.subject.borrow_mut() = format!("ScheduledTask {:?}", self.node_name(c));
            } else {
                *self.subject.borrow_mut() = "document".into();
            }
            let flow_key = if scope.workflow.is_some() {
                "dependencies"
            } else {
                "flow"
            };
            for (i, f) in scope.flow.iter().enumerate() {
                let at = format!("{}.{flow_key}[{i}]", scope.path);
                let target = self.node_ref(f.get("nodeId"));
                let deps = self.list(f.get("depends"));
                match target {
                    Lookup::Def(n) if scope.inner => {
                        for (j, dep) in deps.iter().enumerate() {
                            let at = format!("{at}.depends[{j}]");
                            let outcome = match self.depend_edge(dep, n, &at) {
                                Ok(_) => EdgeOutcome::Internal,
                                Err(()) => EdgeOutcome::Unresolved,
                            };
                            edges.push(Edge {
                                task: container_name.clone().unwrap_or_default(),
                                at,
                                outcome,
                            });
                        }
                    }
                    Lookup::Def(n) if n.get("reference").is_some() => {
                        for (j, _) in deps.iter().enumerate() {
                            let at = format!("{at}.depends[{j}]");
                            self.issue(
                                "unresolved-dependency",
                                Severity::Warning,
                                &at,
                                format!(
                                    "node {:?} is a reference to a task elsewhere: its own dependencies are that task's, not imported here",
                                    self.node_name(n)
                                ),
                            );
                            edges.push(Edge {
                                task: self.node_name(n),
                                at,
                                outcome: EdgeOutcome::Unresolved,
                            });
                        }
                    }
                    Lookup::Def(_) => {} // a task's edge, read with the task
                    other => {
                        let what = match other {
                            Lookup::Unresolved(r) => format!("node {r:?}"),
                            _ => "no node".into(),
                        };
                        for (j, _) in deps.iter().enumerate() {
                            let at = format!("{at}.depends[{j}]");
                            self.issue(
                                "unresolved-dependency",
                                Severity::Error,
                                &at,
                                format!(
                                    "the flow entry names {what}, which the document does not define, so this dependency belongs to no task"
                                ),
                            );
                            edges.push(Edge {
                                task: container_name.clone().unwrap_or_default(),
                                at,
                                outcome: EdgeOutcome::Unresolved,
                            });
                        }
                    }
                }
            }
            if !scope.inner {
                // A reference node stands for a task elsewhere; what it
                // declares as inputs is that task's business.
                for (n, node) in scope.nodes.iter().enumerate() {
                    if node.get("reference").is_none() {
                        continue;
                    }
                    *self.subject.borrow_mut() = "document".into();
                    for (at, _) in self.input_entries(node, &format!("{}.nodes[{n}]", scope.path)) {
                        self.issue(
                            "unresolved-dependency",
                            Severity::Warning,
                            &at,
                            "an input of a reference node (a task elsewhere) is not imported"
                                .into(),
                        );
                        edges.push(Edge {
                            task: self.node_name(node),
                            at,
                            outcome: EdgeOutcome::Unresolved,
                        });
                    }
                }
            }
            if scope.inner {
                // Inner nodes' declared inputs are internal edges too.
                for (n, node) in scope.nodes.iter().enumerate() {
                    for (at, name) in
                        self.input_entries(node, &format!("{}.nodes[{n}]", scope.path))
                    {
                        edges.push(Edge {
                            task: container_name.clone().unwrap_or_default(),
                            at,
                            outcome: if name.is_some() {
                                EdgeOutcome::Internal
                            } else {
                                EdgeOutcome::Unresolved
                            },
                        });
                    }
                }
            }
        }
        edges
    }

    /// A node's declared inputs: (location, output name or None when
    /// unresolved) for `inputs.nodeOutputs[]`, `inputs.outputs[]` and
    /// `inputs.tables[]`.
    fn input_entries(&self, node: &'a Value, at: &str) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        if let Some(io) = node.get("inputs") {
            for key in ["nodeOutputs", "outputs", "tables"] {
                for (i, item) in io
                    .get(key)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let at = format!("{at}.inputs.{key}[{i}]");
                    let name = self.artifact_name(item, &at);
                    let name = match key {
                        "tables" => name,
                        _ => name.map(|n| self.output_named(n)),
                    };
                    out.push((at, name));
                }
            }
        }
        out
    }

    /// Compute resources and resource groups of a node's inner nodes,
    /// recursively.
    fn inner_resources(
        &self,
        node: &'a Value,
        compute: &mut BTreeSet<ComputeRef>,
        groups: &mut BTreeSet<String>,
        depth: usize,
    ) {
        if depth > MAX_INDEX_DEPTH {
            return;
        }
        for key in CONTAINER_KEYS {
            let Some(c) = node.get(key).filter(|c| c.is_object()) else {
                continue;
            };
            let mut inner = self.list(c.get("nodes"));
            for w in ["while", "specWhile"] {
                if let Some(x) = c.get(w).filter(|x| x.is_object()) {
                    inner.push(x);
                }
            }
            for n in inner {
                let script = self.resolve_at(n.get("script"), "scripts", "script");
                if let Some(cr) = self.compute(n, script) {
                    compute.insert(cr);
                }
                if let Some(g) = self.resource_group(n, "runtimeResource") {
                    groups.insert(g);
                }
                self.inner_resources(n, compute, groups, depth + 1);
            }
        }
    }

    fn task(&self, node: &'a Value, scope: &Scope<'a>) -> (Extracted, Vec<Edge>) {
        let name = self.node_name(node);
        *self.subject.borrow_mut() = format!("ScheduledTask {name:?}");
        let node_at = match node.get("id").and_then(scalar) {
            Some(id) => format!("node {id:?}"),
            None => format!("node {name:?}"),
        };
        let script = self.resolve_at(node.get("script"), "scripts", &format!("{node_at}.script"));
        let mut spec = self.common_in(node, &name, scope.workflow);
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
        let trigger = match node.get("trigger") {
            Some(t) => self.resolve_at(Some(t), "triggers", &format!("{node_at}.trigger")),
            // A workflow's nodes run on its trigger unless they have their own.
            None => scope
                .workflow
                .and_then(|w| self.resolve_at(w.get("trigger"), "triggers", "workflow.trigger")),
        };
        if let Some(t) = trigger
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
        let mut edges = Vec::new();
        let mut inputs = Vec::new();
        let mut cross: Vec<Value> = Vec::new();
        for (at, name_) in self.input_entries(node, &node_at) {
            let outcome = match name_ {
                Some(o) => {
                    push_unique(&mut inputs, o.clone());
                    EdgeOutcome::Imported {
                        output: Some(o),
                        dependency_type: "Normal".into(),
                    }
                }
                None => EdgeOutcome::Unresolved,
            };
            edges.push(Edge {
                task: name.clone(),
                at,
                outcome,
            });
        }
        let flow_key = if scope.workflow.is_some() {
            "dependencies"
        } else {
            "flow"
        };
        for (i, f) in self.flow_of(scope, node) {
            for (j, dep) in self.list(f.get("depends")).into_iter().enumerate() {
                let at = format!("{}.{flow_key}[{i}].depends[{j}]", scope.path);
                let outcome = match self.depend_edge(dep, node, &at) {
                    Ok((output, dtype)) => {
                        if dtype == "Normal" {
                            if let Some(o) = &output {
                                push_unique(&mut inputs, o.clone());
                            }
                        } else {
                            let mut c = Map::new();
                            c.insert("type".into(), dtype.clone().into());
                            if let Some(o) = &output {
                                c.insert("output".into(), o.clone().into());
                            }
                            let c = Value::Object(c);
                            if !cross.contains(&c) {
                                cross.push(c);
                            }
                        }
                        EdgeOutcome::Imported {
                            output,
                            dependency_type: dtype,
                        }
                    }
                    Err(()) => EdgeOutcome::Unresolved,
                };
                edges.push(Edge {
                    task: name.clone(),
                    at,
                    outcome,
                });
            }
        }
        put_list(&mut spec, "inputs", inputs);
        if !cross.is_empty() {
            spec.insert("crossCycleDependencies".into(), Value::Array(cross));
        }
        let (mut outputs, primary) = self.declared_outputs(node, &node_at);
        if primary.is_none() {
            // DataWorks gives every node an output; depending on the node
            // means depending on it.
            outputs.insert(0, self.default_output(node));
        }
        put_list(&mut spec, "outputs", outputs);
        put_list(&mut spec, "parameters", self.parameters(script));
        let mut inner_compute = BTreeSet::new();
        let mut inner_groups = BTreeSet::new();
        self.inner_resources(node, &mut inner_compute, &mut inner_groups, 0);
        if let Some(c) = &compute {
            inner_compute.remove(c);
        }
        if let Some(g) = &resource_group {
            inner_groups.remove(g);
        }
        (
            Extracted {
                object_type: ObjectType::ScheduledTask,
                name,
                studio: self.studio(node),
                spec,
                compute,
                resource_group,
                inline_code,
                inner_compute: inner_compute.into_iter().collect(),
                inner_resource_groups: inner_groups.into_iter().collect(),
            },
            edges,
        )
    }

    fn common(&self, item: &Value, name: &str) -> Map<String, Value> {
        *self.subject.borrow_mut() = format!("object {name:?}");
        self.common_in(item, name, None)
    }

    fn common_in(&self, item: &Value, name: &str, workflow: Option<&Value>) -> Map<String, Value> {
        let mut spec = Map::new();
        spec.insert("name".into(), name.into());
        put_opt(&mut spec, "owner", self.owner(item, workflow));
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
            match self.lookup(Some(p), "variables") {
                Lookup::Def(var) => {
                    let name = var.get("name").and_then(scalar).unwrap_or_default();
                    match var.get("value").and_then(scalar) {
                        Some(value) => out.push(format!("{name}={value}")),
                        None => out.push(name),
                    }
                }
                Lookup::Plain(s) => out.push(s),
                Lookup::Unresolved(r) => self.issue(
                    "unresolved-reference",
                    Severity::Error,
                    "script.parameters",
                    format!("reference \"{{{{{r}}}}}\" resolves to nothing in the document"),
                ),
                Lookup::Absent => {}
            }
        }
        out
    }

    fn table(&self, t: &'a Value) -> Extracted {
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
            inner_compute: Vec::new(),
            inner_resource_groups: Vec::new(),
        }
    }

    fn file_resource(&self, r: &'a Value) -> Extracted {
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
            inner_compute: Vec::new(),
            inner_resource_groups: Vec::new(),
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
            let n = match self.lookup(Some(r), "fileResources") {
                Lookup::Def(def) => def.get("name").and_then(scalar),
                Lookup::Plain(p) => Some(p),
                Lookup::Unresolved(_) => {
                    self.resolve_at(Some(r), "fileResources", "fileResources");
                    None
                }
                Lookup::Absent => None,
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
            inner_compute: Vec::new(),
            inner_resource_groups: Vec::new(),
        }
    }

    fn quality_rule(&self, r: &'a Value) -> Extracted {
        let name = r
            .get("name")
            .and_then(scalar)
            .or_else(|| r.get("id").and_then(scalar))
            .unwrap_or_default();
        let mut spec = self.common(r, &name);
        let table_name = match self.lookup(r.get("table"), "artifacts") {
            Lookup::Def(t) => t.get("name").and_then(scalar).or_else(|| {
                t.get("guid")
                    .and_then(scalar)
                    .and_then(|g| g.rsplit('.').next().map(str::to_string))
            }),
            Lookup::Plain(p) => Some(p),
            Lookup::Unresolved(_) => {
                self.resolve_at(r.get("table"), "artifacts", "table");
                None
            }
            Lookup::Absent => None,
        };
        spec.insert("table".into(), table_name.unwrap_or_default().into());
        put_opt(
            &mut spec,
            "partitionExpression",
            r.get("partitionExpression").and_then(scalar),
        );
        let sched = match self.lookup(r.get("schedulerNode"), "nodes") {
            Lookup::Def(n) => n
                .get("output")
                .and_then(scalar)
                .or_else(|| Some(self.output_of(n))),
            Lookup::Plain(p) => match self.nodes.get(&p) {
                Some(n) => Some(self.output_of(n)),
                None => Some(p),
            },
            Lookup::Unresolved(_) => {
                self.resolve_at(r.get("schedulerNode"), "nodes", "schedulerNode");
                None
            }
            Lookup::Absent => None,
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
            inner_compute: Vec::new(),
            inner_resource_groups: Vec::new(),
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
            inner_compute: Vec::new(),
            inner_resource_groups: Vec::new(),
        }
    }
}

/// The section a field's references point into.
fn section_of(key: &str) -> &str {
    match key {
        "script" => "scripts",
        "trigger" => "triggers",
        "runtimeResource" => "runtimeResources",
        "datasource" => "datasources",
        "parameters" | "variables" => "variables",
        "table" | "tables" | "nodeOutputs" | "outputs" | "inputs" => "artifacts",
        "fileResources" => "fileResources",
        "functions" => "functions",
        "schedulerNode" | "nodes" => "nodes",
        other => other,
    }
}

/// The JSON type of a value, for messages.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
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
/// When the spec carries the object's FlowSpec document (`flowSpec`, as
/// imported objects do), that document is the base: every field Ferry does
/// not interpret is kept, alert settings are stripped (they never leave the
/// source workspace), and the interpreted fields that differ from it (a
/// mapped compute resource or resource group, renamed outputs, a dry-run's
/// recurrence, ...) are written into it. Only when the result would not read
/// back as the spec says is a fresh document built instead.
///
/// `compute_type` is the engine type of `spec.computeResource` (the spec map
/// only holds the display name).
pub fn build_document(
    object_type: ObjectType,
    spec: &Map<String, Value>,
    code_in_file: bool,
    compute_type: Option<&str>,
) -> (Value, Option<(String, Vec<u8>)>) {
    if let Some(rebuilt) = rebuild_document(object_type, spec, code_in_file, compute_type) {
        return rebuilt;
    }
    fresh_document(object_type, spec, code_in_file, compute_type)
}

/// Removes alert settings (any key starting with `alert`, any case) at every
/// depth: the seed says they never leave the source workspace.
pub fn strip_alerts(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.to_ascii_lowercase().starts_with("alert"));
            for x in m.values_mut() {
                strip_alerts(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_alerts),
        _ => {}
    }
}

/// The keys of an object's spec map that come from its document (what a
/// rebuilt document must read back as).
fn interpreted(t: ObjectType, spec: &Map<String, Value>, code_in_file: bool) -> Map<String, Value> {
    let mut m = spec.clone();
    for k in ["flowSpec", "studio"] {
        m.remove(k);
    }
    if t == ObjectType::FileResource {
        // From the package's resource file, not from the document.
        m.remove("path");
        m.remove("contentDigest");
    }
    if code_in_file && let Some(Value::Object(s)) = m.get_mut("script") {
        s.remove("content");
    }
    if t == ObjectType::QualityRule {
        m.retain(|k, _| !k.to_ascii_lowercase().starts_with("alert"));
    }
    // Absent and empty lists are the same thing.
    m.retain(|_, v| !matches!(v, Value::Array(a) if a.is_empty()) && !v.is_null());
    m
}

/// The document's one item of type `t`, mutable.
fn item_mut(doc: &mut Value, t: ObjectType) -> Option<&mut Map<String, Value>> {
    let spec = if doc.get("spec").is_some_and(Value::is_object) {
        doc.get_mut("spec")?
    } else {
        doc
    };
    let list = match t {
        ObjectType::ScheduledTask => {
            if spec.get("workflows").is_some_and(Value::is_array) {
                spec.get_mut("workflows")?
                    .as_array_mut()?
                    .iter_mut()
                    .find_map(|w| w.get_mut("nodes"))?
            } else {
                spec.get_mut("nodes")?
            }
        }
        ObjectType::Table => spec.get_mut("artifacts")?.get_mut("tables")?,
        ObjectType::FileResource => spec.get_mut("fileResources")?,
        ObjectType::Function => spec.get_mut("functions")?,
        ObjectType::QualityRule => spec.get_mut("dqcRules")?,
        ObjectType::ServiceApi => spec.get_mut("apis")?,
    };
    list.as_array_mut()?
        .iter_mut()
        .filter(|i| i.get("reference").is_none())
        .find_map(Value::as_object_mut)
}

/// A built document and its code file `(name, bytes)`, if any.
type Built = (Value, Option<(String, Vec<u8>)>);

/// See [`build_document`]: the object's own FlowSpec document with the
/// interpreted fields written in, or `None` when that cannot be done
/// faithfully.
fn rebuild_document(
    t: ObjectType,
    spec: &Map<String, Value>,
    code_in_file: bool,
    compute_type: Option<&str>,
) -> Option<Built> {
    let mut doc = spec.get("flowSpec").filter(|d| d.is_object())?.clone();
    strip_alerts(&mut doc);
    let opts = ReadOptions::default();
    let read_one = |doc: &Value| -> Option<Extracted> {
        let r = read_document(doc, &opts);
        if r.errors().next().is_some() {
            return None;
        }
        let mut x: Vec<Extracted> = r
            .objects
            .into_iter()
            .filter(|o| o.object_type == t)
            .collect();
        (x.len() == 1).then(|| x.remove(0))
    };
    let before = read_one(&doc)?;
    // Definitions the item points to by reference, inlined where a field
    // behind one must change.
    let resolved: BTreeMap<&str, Value> = {
        let d = Doc::new(&doc, &opts);
        let mut out = BTreeMap::new();
        let item = match t {
            ObjectType::ScheduledTask => d
                .scopes()
                .into_iter()
                .filter(|s| !s.inner)
                .flat_map(|s| s.nodes)
                .find(|n| n.get("reference").is_none()),
            _ => None,
        };
        if let Some(item) = item {
            for (key, prefer) in [
                ("script", "scripts"),
                ("trigger", "triggers"),
                ("runtimeResource", "runtimeResources"),
                ("datasource", "datasources"),
            ] {
                if let Lookup::Def(v) = d.lookup(item.get(key), prefer) {
                    out.insert(key, v.clone());
                }
            }
        }
        out
    };
    let want = interpreted(t, spec, code_in_file);
    let have = interpreted(t, &before.spec, code_in_file);
    let differs = |k: &str| want.get(k) != have.get(k);
    let mut code = None;
    {
        let item = item_mut(&mut doc, t)?;
        let name_key = if t == ObjectType::ServiceApi {
            "apiName"
        } else {
            "name"
        };
        if differs("name") {
            item.insert(
                name_key.into(),
                want.get("name").cloned().unwrap_or_default(),
            );
        }
        if differs("owner") {
            match want.get("owner") {
                Some(o) => item.insert("owner".into(), o.clone()),
                None => item.remove("owner"),
            };
        }
        if differs("computeResource") {
            let mut ds = resolved
                .get("datasource")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            ds.remove("id");
            match want.get("computeResource") {
                Some(c) => {
                    ds.insert("name".into(), c.clone());
                    if let Some(ty) = compute_type {
                        ds.insert("type".into(), ty.into());
                    }
                    item.insert("datasource".into(), Value::Object(ds));
                }
                None => {
                    item.remove("datasource");
                }
            }
        }
        if t == ObjectType::ScheduledTask {
            if differs("resourceGroup") {
                let mut rr = resolved
                    .get("runtimeResource")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                rr.remove("id");
                match want.get("resourceGroup") {
                    Some(g) => {
                        rr.insert("resourceGroup".into(), g.clone());
                        item.insert("runtimeResource".into(), Value::Object(rr));
                    }
                    None => {
                        item.remove("runtimeResource");
                    }
                }
            }
            if differs("recurrence") {
                item.insert(
                    "recurrence".into(),
                    want.get("recurrence").cloned().unwrap_or("Normal".into()),
                );
            }
            if differs("trigger") {
                let mut tr = resolved
                    .get("trigger")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                tr.remove("id");
                if let Some(Value::Object(w)) = want.get("trigger") {
                    for k in ["cron", "startTime", "endTime"] {
                        match w.get(k) {
                            Some(v) => tr.insert(k.into(), v.clone()),
                            None => tr.remove(k),
                        };
                    }
                    item.insert("trigger".into(), Value::Object(tr));
                }
            }
            if differs("rerun") {
                let r = want.get("rerun").and_then(Value::as_object);
                for (k, from, scale) in [
                    ("rerunMode", "mode", 1),
                    ("rerunTimes", "times", 1),
                    ("rerunInterval", "intervalSeconds", 1000),
                ] {
                    match r.and_then(|r| r.get(from)) {
                        Some(Value::Number(n)) if scale > 1 => {
                            item.insert(k.into(), (n.as_u64().unwrap_or(0) * scale).into())
                        }
                        Some(v) => item.insert(k.into(), v.clone()),
                        None => item.remove(k),
                    };
                }
            }
            if differs("outputs") {
                let outs: Vec<Value> = strings_of(want.get("outputs"))
                    .into_iter()
                    .map(|o| json!({ "data": o, "artifactType": "NodeOutput" }))
                    .collect();
                item.insert("outputs".into(), json!({ "nodeOutputs": outs }));
            }
        }
        // Script: the code goes to its file, or inline.
        if matches!(t, ObjectType::ScheduledTask | ObjectType::ServiceApi)
            && let Some(Value::Object(ws)) = spec.get("script")
        {
            let mut def = resolved
                .get("script")
                .and_then(Value::as_object)
                .cloned()
                .or_else(|| item.get("script").and_then(Value::as_object).cloned())
                .unwrap_or_default();
            let content = ws
                .get("content")
                .and_then(Value::as_str)
                .unwrap_or_default();
            def.remove("code");
            if code_in_file {
                def.remove("content");
                let file = format!("code.{}", code_extension(get_str(ws, "language")));
                code = Some((file, content.as_bytes().to_vec()));
            } else {
                def.insert("content".into(), content.into());
            }
            if differs("script") {
                for (k, v) in ws {
                    if k == "content" {
                        continue;
                    }
                    if k == "command" {
                        let rt = def.entry("runtime").or_insert_with(|| json!({}));
                        if let Value::Object(rt) = rt {
                            rt.insert("command".into(), v.clone());
                        }
                        continue;
                    }
                    def.insert(k.clone(), v.clone());
                }
            }
            if item.get("script").is_some() || !def.is_empty() {
                item.insert("script".into(), Value::Object(def));
            }
        }
        for (k, field) in match t {
            ObjectType::Table => &[("ddl", "ddl"), ("guid", "guid")][..],
            ObjectType::FileResource => &[("type", "type")][..],
            ObjectType::Function => &[("className", "className")][..],
            ObjectType::QualityRule => &[
                ("partitionExpression", "partitionExpression"),
                ("ruleConfig", "ruleConfig"),
            ][..],
            ObjectType::ServiceApi => &[
                ("businessProcess", "businessProcess"),
                ("path", "apiPath"),
                ("method", "apiMethod"),
            ][..],
            ObjectType::ScheduledTask => &[][..],
        } {
            if differs(k) {
                match want.get(*k) {
                    Some(v) => item.insert((*field).into(), v.clone()),
                    None => item.remove(*field),
                };
            }
        }
        if t == ObjectType::QualityRule {
            if differs("table") {
                item.insert(
                    "table".into(),
                    json!({ "name": want.get("table").cloned().unwrap_or_default() }),
                );
            }
            if differs("scheduledTaskOutput") {
                match want.get("scheduledTaskOutput") {
                    Some(o) => item.insert("schedulerNode".into(), json!({ "output": o })),
                    None => item.remove("schedulerNode"),
                };
            }
        }
    }
    if t == ObjectType::ScheduledTask && (differs("inputs") || differs("crossCycleDependencies")) {
        // Dependencies as the names the spec holds: declared inputs plus a
        // flow entry for the cross-cycle ones.
        let spec_v = if doc.get("spec").is_some_and(Value::is_object) {
            doc.get_mut("spec")?
        } else {
            &mut doc
        };
        if let Some(Value::Array(ws)) = spec_v.get_mut("workflows") {
            for w in ws.iter_mut().filter_map(Value::as_object_mut) {
                w.remove("dependencies");
                w.remove("flow");
            }
        }
        if let Some(m) = spec_v.as_object_mut() {
            m.remove("flow");
        }
        let item = item_mut(&mut doc, t)?;
        let ins: Vec<Value> = strings_of(want.get("inputs"))
            .into_iter()
            .map(|o| json!({ "data": o, "artifactType": "NodeOutput" }))
            .collect();
        let mut inputs = item
            .get("inputs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for k in ["nodeOutputs", "outputs", "tables"] {
            inputs.remove(k);
        }
        if !ins.is_empty() {
            inputs.insert("nodeOutputs".into(), Value::Array(ins));
        }
        item.insert("inputs".into(), Value::Object(inputs));
        let id = item
            .get("id")
            .cloned()
            .unwrap_or_else(|| want.get("name").cloned().unwrap_or_default());
        item.insert("id".into(), id.clone());
        let cross = want
            .get("crossCycleDependencies")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !cross.is_empty() {
            let entry = json!([{ "nodeId": id, "depends": cross }]);
            let spec_v = if doc.get("spec").is_some_and(Value::is_object) {
                doc.get_mut("spec")?
            } else {
                &mut doc
            };
            match spec_v
                .get_mut("workflows")
                .and_then(Value::as_array_mut)
                .and_then(|w| w.first_mut())
            {
                Some(w) => {
                    w.as_object_mut()?.insert("dependencies".into(), entry);
                }
                None => {
                    spec_v.as_object_mut()?.insert("flow".into(), entry);
                }
            }
        }
    }
    // Faithful or nothing: the document must read back as the spec says.
    let after = read_one(&doc)?;
    (interpreted(t, &after.spec, code_in_file) == want).then_some((doc, code))
}

fn strings_of(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A document built from the spec map alone.
fn fresh_document(
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
            if let Some(Value::Array(cross)) = spec.get("crossCycleDependencies")
                && !cross.is_empty()
            {
                doc_spec.insert(
                    "flow".into(),
                    json!([{ "nodeId": "node_1", "depends": cross }]),
                );
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

/// One object of a document, as a document of its own.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitObject {
    pub object: Extracted,
    /// A self-contained FlowSpec document describing exactly this object:
    /// references resolved inline, its dependencies written as the output
    /// names they resolved to, its outputs explicit.
    pub document: Value,
}

/// Splits a document into one self-contained document per object (what a
/// package needs: see `kubectl migrate pack`). Refused, with every issue,
/// when the document has errors; the returned reading has the edges and
/// warnings.
pub fn split_document(
    doc: &Value,
    opts: &ReadOptions,
) -> Result<(Vec<SplitObject>, Reading), Reading> {
    let reading = read_document(doc, opts);
    if reading.errors().next().is_some() {
        return Err(reading);
    }
    let d = Doc::new(doc, opts);
    let mut out = Vec::new();
    let mut objects = reading.objects.iter();
    let mut header = Map::new();
    for key in ["version", "kind", "metadata"] {
        if let Some(v) = doc.get(key) {
            header.insert(key.into(), v.clone());
        }
    }
    let wrap = |sections: Map<String, Value>| -> Value {
        let mut m = header.clone();
        if d.layout == Some(Layout::TopLevel) {
            m.extend(sections);
        } else {
            m.insert("spec".into(), Value::Object(sections));
        }
        Value::Object(m)
    };
    for scope in d.scopes() {
        if scope.inner {
            continue;
        }
        for node in &scope.nodes {
            if node.get("reference").is_some() {
                continue;
            }
            let object = objects.next().expect("the reading has this task").clone();
            let mut n = d.inline(node, 0);
            let id = node
                .get("id")
                .and_then(scalar)
                .unwrap_or_else(|| object.name.clone());
            n.insert("id".into(), id.clone().into());
            // Inputs as the names they resolved to: the nodes they named
            // are not in this document.
            if let Some(Value::Object(inputs)) = n.get_mut("inputs") {
                for key in ["nodeOutputs", "outputs"] {
                    let Some(Value::Array(items)) = inputs.get_mut(key) else {
                        continue;
                    };
                    let originals = node["inputs"][key].as_array().cloned().unwrap_or_default();
                    for (item, orig) in items.iter_mut().zip(originals.iter()) {
                        let name = d
                            .artifact_name(orig, "inputs")
                            .map(|x| d.output_named(x))
                            .unwrap_or_default();
                        let mut m = match item {
                            Value::Object(m) => m.clone(),
                            _ => Map::new(),
                        };
                        m.remove("id");
                        m.insert("data".into(), name.into());
                        *item = Value::Object(m);
                    }
                }
            }
            // Outputs explicit, so any reader finds the same names.
            let (_, primary) = d.declared_outputs(node, "outputs");
            if primary.is_none() {
                let outputs = n
                    .entry("outputs")
                    .or_insert_with(|| Value::Object(Map::new()));
                if !outputs.is_object() {
                    *outputs = Value::Object(Map::new());
                }
                let list = outputs
                    .as_object_mut()
                    .expect("made a mapping")
                    .entry("nodeOutputs")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(list) = list {
                    list.insert(
                        0,
                        json!({"data": d.default_output(node), "artifactType": "NodeOutput", "isDefault": true}),
                    );
                }
            }
            // The node's flow entries, each dependency as the output it
            // resolved to.
            let mut depends = Vec::new();
            for (_, f) in d.flow_of(&scope, node) {
                for dep in d.list(f.get("depends")) {
                    let mut m = dep.as_object().cloned().unwrap_or_default();
                    if let Ok((output, _)) = d.depend_edge(dep, node, "") {
                        m.remove("nodeId");
                        match output {
                            Some(o) => m.insert("output".into(), o.into()),
                            None => m.remove("output"),
                        };
                    }
                    depends.push(Value::Object(m));
                }
            }
            let mut sections = Map::new();
            let flow = if depends.is_empty() {
                Vec::new()
            } else {
                vec![json!({"nodeId": id, "depends": depends})]
            };
            match scope.workflow {
                Some(w) => {
                    let mut wf = d.inline(w, 0);
                    wf.remove("nodes");
                    wf.remove("flow");
                    wf.insert("nodes".into(), Value::Array(vec![Value::Object(n)]));
                    if !flow.is_empty() {
                        wf.insert("dependencies".into(), Value::Array(flow));
                    } else {
                        wf.remove("dependencies");
                    }
                    sections.insert("workflows".into(), Value::Array(vec![Value::Object(wf)]));
                }
                None => {
                    sections.insert("nodes".into(), Value::Array(vec![Value::Object(n)]));
                    if !flow.is_empty() {
                        sections.insert("flow".into(), Value::Array(flow));
                    }
                }
            }
            // The workflow's own settings (name, id, owner, strategy, ...),
            // which its nodes inherit or keep as their structure.
            for (k, v) in d.spec {
                if !SECTIONS.contains(&k.as_str())
                    && !["version", "kind", "metadata"].contains(&k.as_str())
                {
                    sections.insert(k.clone(), v.clone());
                }
            }
            out.push(SplitObject {
                object,
                document: wrap(sections),
            });
        }
    }
    let single = |section: &str, item: Map<String, Value>| -> Map<String, Value> {
        let mut m = Map::new();
        if section == "tables" {
            m.insert("artifacts".into(), json!({ "tables": [item] }));
        } else {
            m.insert(section.into(), Value::Array(vec![Value::Object(item)]));
        }
        m
    };
    let mut push =
        |section: &str, item: &'_ Value, fix: &dyn Fn(&mut Map<String, Value>, &Extracted)| {
            let object = objects.next().expect("the reading has this object").clone();
            let mut m = d.inline(item, 0);
            fix(&mut m, &object);
            out.push(SplitObject {
                document: wrap(single(section, m)),
                object,
            });
        };
    let none = |_: &mut Map<String, Value>, _: &Extracted| {};
    for t in d.list(d.spec.get("artifacts").and_then(|a| a.get("tables"))) {
        if t.get("name").is_some() || t.get("ddl").is_some() {
            push("tables", t, &none);
        }
    }
    for r in d.items("fileResources") {
        if r.get("reference").is_none() {
            push("fileResources", r, &none);
        }
    }
    for f in d.items("functions") {
        if f.get("className").is_some() || d.kind() != "DataserviceOrchestrationSpec" {
            push("functions", f, &none);
        }
    }
    for r in d.items("dqcRules") {
        // The task is not in this document: name its output.
        push("dqcRules", r, &|m, o| {
            if let Some(out) = o.spec.get("scheduledTaskOutput") {
                m.insert("schedulerNode".into(), json!({ "output": out }));
            }
        });
    }
    for a in d.items("apis") {
        push("apis", a, &none);
    }
    Ok((out, reading))
}

impl<'a> Doc<'a> {
    /// A copy of `item` with every `{{...}}` reference replaced by the
    /// definition it resolves to (flows and node ids excepted: they name
    /// nodes, which stay where they are).
    fn inline(&self, item: &'a Value, depth: usize) -> Map<String, Value> {
        match self.inline_value(item, "", depth) {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// `prefer`: the section the field points into (an unqualified
    /// reference may name definitions in several: a node and its script
    /// often share an id).
    fn inline_value(&self, v: &'a Value, prefer: &str, depth: usize) -> Value {
        if depth > 16 {
            return v.clone();
        }
        match v {
            Value::String(s) => match reference(s).and_then(|r| self.find(r, prefer)) {
                Some(def) if !std::ptr::eq(def, v) => self.inline_value(def, prefer, depth + 1),
                _ => v.clone(),
            },
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| self.inline_value(x, prefer, depth + 1))
                    .collect(),
            ),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| {
                        let x = if matches!(k.as_str(), "flow" | "dependencies" | "nodeId") {
                            x.clone()
                        } else {
                            self.inline_value(x, section_of(k), depth + 1)
                        };
                        (k.clone(), x)
                    })
                    .collect(),
            ),
            _ => v.clone(),
        }
    }
}
