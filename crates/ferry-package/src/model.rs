//! The in-memory model of a package's objects, shared by the reader (what a
//! package holds) and the writer (what an export puts in one).
//!
//! `spec` maps have the camelCase shape of the operator's `XxxSpec` CRD types
//! (without `flowSpec`, which travels separately as [`PackageObject::flow_spec`],
//! compact JSON text parsed on demand: see [`FlowSpecDoc`]),
//! so the operator can deserialize them directly. This crate does not depend
//! on the operator, hence the untyped map.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The six kinds of workspace object a package carries.
///
/// The declaration order is the import order (see [`ObjectType::IMPORT_ORDER`]),
/// so `Ord` sorts objects the way an import must apply them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectType {
    FileResource,
    Function,
    Table,
    ScheduledTask,
    ServiceApi,
    QualityRule,
}

impl ObjectType {
    /// Import order: what others depend on comes first. File resources
    /// before the functions built from them; tables before the tasks that
    /// write them; tasks before the APIs and quality rules that use them
    /// (the seed: rules import only after tasks are imported, committed and
    /// deployed).
    pub const IMPORT_ORDER: [ObjectType; 6] = [
        ObjectType::FileResource,
        ObjectType::Function,
        ObjectType::Table,
        ObjectType::ScheduledTask,
        ObjectType::ServiceApi,
        ObjectType::QualityRule,
    ];

    /// The name used in manifests and in the CRD kinds.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::FileResource => "FileResource",
            ObjectType::Function => "Function",
            ObjectType::Table => "Table",
            ObjectType::ScheduledTask => "ScheduledTask",
            ObjectType::ServiceApi => "ServiceApi",
            ObjectType::QualityRule => "QualityRule",
        }
    }

    /// Parses the manifest name; `None` for anything else (case matters).
    pub fn parse(s: &str) -> Option<ObjectType> {
        Self::IMPORT_ORDER.into_iter().find(|t| t.as_str() == s)
    }

    /// The folder objects of this type are written under.
    pub fn folder(self) -> &'static str {
        match self {
            ObjectType::FileResource => "file_resources",
            ObjectType::Function => "functions",
            ObjectType::Table => "tables",
            ObjectType::ScheduledTask => "scheduled_tasks",
            ObjectType::ServiceApi => "service_apis",
            ObjectType::QualityRule => "quality_rules",
        }
    }
}

impl std::fmt::Display for ObjectType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an object was authored. The seed: objects of the new-version Data
/// Studio cannot be imported, so a package carrying one is refused.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Studio {
    #[default]
    Legacy,
    New,
}

/// What a file of an object is for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum FileRole {
    /// The object's script (a task's or API's code), kept out of the spec
    /// document so large code streams instead of sitting in the parsed YAML.
    Code,
    /// A resource binary (a JAR, a Python file, an archive).
    Resource,
}

impl FileRole {
    /// `code` or `code.<ext>` is code; anything else is a resource.
    pub fn infer(path: &str) -> FileRole {
        let base = path.rsplit('/').next().unwrap_or(path);
        if base == "code" || base.starts_with("code.") {
            FileRole::Code
        } else {
            FileRole::Resource
        }
    }
}

/// A verified file of an object. Its bytes stay in the archive; ask the
/// reader for them ([`crate::PackageReader::read_file`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Path inside the zip.
    pub path: String,
    /// Lower-case hex SHA-256 (verified).
    pub sha256: String,
    /// Size in bytes (verified).
    pub size: u64,
    pub role: FileRole,
}

impl FileEntry {
    /// `sha256:<hex>`, the form the CRDs use.
    pub fn digest(&self) -> String {
        format!("sha256:{}", self.sha256)
    }
}

/// A compute resource an object uses: its display name and engine type.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComputeRef {
    pub name: String,
    /// Engine type as FlowSpec names it (`MaxCompute`, `Hologres`, ...);
    /// empty when the document does not say.
    #[serde(rename = "type")]
    pub type_: String,
}

/// One object read from a package.
#[derive(Clone, Debug, PartialEq)]
pub struct PackageObject {
    pub object_type: ObjectType,
    /// The real name (as the manifest and the document agree on it).
    pub name: String,
    /// The `XxxSpec` fields Ferry interprets, camelCase.
    pub spec: Map<String, Value>,
    /// The whole FlowSpec document, verbatim, kept as compact JSON text
    /// (parse it with [`FlowSpecDoc::to_value`] when it is needed).
    pub flow_spec: FlowSpecDoc,
    /// Path of the spec document in the zip.
    pub spec_path: String,
    /// The object's code and resource files.
    pub files: Vec<FileEntry>,
    /// Where the object was authored.
    pub studio: Studio,
    /// The compute resource the object uses, if the document names one.
    pub compute: Option<ComputeRef>,
    /// The resource group the object runs on, if any.
    pub resource_group: Option<String>,
    /// Compute resources of the inner nodes of a do-while, for-each or
    /// combined task (sorted, each once, without [`Self::compute`]): they
    /// are in the package summary and need a mapping like the task's own.
    pub inner_compute: Vec<ComputeRef>,
    /// Resource groups of those inner nodes (sorted, each once, without
    /// [`Self::resource_group`]).
    pub inner_resource_groups: Vec<String>,
}

/// A whole FlowSpec document kept as compact JSON text.
///
/// A package holds thousands of documents and the reader keeps every one of
/// them; as a parsed [`Value`] a 1 KiB document costs over 10 KiB of map
/// nodes, as text it costs its length. The text is what
/// `serde_json::to_string` makes of the parsed document (keys sorted, no
/// whitespace), so it always parses back to that same [`Value`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct FlowSpecDoc(Box<str>);

impl FlowSpecDoc {
    /// The document of a parsed value.
    pub fn new(doc: &Value) -> Self {
        FlowSpecDoc(doc.to_string().into_boxed_str())
    }

    /// The compact JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Size of the text in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty (never, for a document made by [`Self::new`]).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The parsed document (a fresh [`Value`] each call: parse once and
    /// keep it when several fields are read).
    ///
    /// Cannot fail for a document the reader kept: it is serde_json's own
    /// output, nested at most [`crate::yaml::MAX_DEPTH`] (64) levels, half
    /// of serde_json's recursion limit (security review 1.5).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).expect("FlowSpecDoc holds JSON written by serde_json")
    }
}

impl From<Value> for FlowSpecDoc {
    fn from(doc: Value) -> Self {
        FlowSpecDoc::new(&doc)
    }
}

impl From<&Value> for FlowSpecDoc {
    fn from(doc: &Value) -> Self {
        FlowSpecDoc::new(doc)
    }
}

impl std::fmt::Debug for FlowSpecDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for FlowSpecDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PackageObject {
    /// The object's code file, if its script lives in one.
    pub fn code_file(&self) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.role == FileRole::Code)
    }

    /// A string field of `spec`.
    pub fn spec_str(&self, key: &str) -> Option<&str> {
        self.spec.get(key).and_then(Value::as_str)
    }

    /// A list-of-strings field of `spec` (`inputs`, `outputs`, ...).
    pub fn spec_strings(&self, key: &str) -> Vec<&str> {
        self.spec
            .get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
}

/// A file an export puts beside an object's document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedFile {
    /// File name inside the object's folder (no `/`), e.g. `code.sql`.
    pub name: String,
    pub role: FileRole,
    pub data: Vec<u8>,
}

/// The serialization of the spec document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DocFormat {
    #[default]
    Yaml,
    Json,
}

/// One object as the writer takes it: a FlowSpec document plus files.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportedObject {
    pub object_type: ObjectType,
    pub name: String,
    /// The FlowSpec document describing exactly this object.
    pub document: Value,
    pub format: DocFormat,
    pub files: Vec<ExportedFile>,
}

impl ExportedObject {
    /// An object from a Ferry spec map (the `XxxSpec` shape): the document
    /// is built by [`crate::flowspec::build_document`]. With `code_in_file`,
    /// a script's content goes to `code.<ext>` instead of the document.
    /// `compute_type` is the engine type of `spec.computeResource`.
    pub fn from_spec(
        object_type: ObjectType,
        spec: &Map<String, Value>,
        code_in_file: bool,
        compute_type: Option<&str>,
    ) -> Self {
        let name = spec
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let (document, code) =
            crate::flowspec::build_document(object_type, spec, code_in_file, compute_type);
        let files = code
            .map(|(name, data)| {
                vec![ExportedFile {
                    name,
                    role: FileRole::Code,
                    data,
                }]
            })
            .unwrap_or_default();
        ExportedObject {
            object_type,
            name,
            document,
            format: DocFormat::Yaml,
            files,
        }
    }

    /// Adds a file (a resource binary, typically).
    pub fn with_file(mut self, name: impl Into<String>, role: FileRole, data: Vec<u8>) -> Self {
        self.files.push(ExportedFile {
            name: name.into(),
            role,
            data,
        });
        self
    }

    /// Writes the document as JSON instead of YAML.
    pub fn as_json(mut self) -> Self {
        self.format = DocFormat::Json;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flow_spec_doc_parses_back_to_the_same_document() {
        let doc = json!({
            "version": "1.1.0",
            "kind": "CycleWorkflow",
            "metadata": {"owner": 1234, "ratio": 0.1, "big": 18446744073709551615u64, "neg": -3},
            "spec": {"nodes": [{"name": "加载订单", "script": "{{scripts.s}}", "x": null, "ok": true}]}
        });
        let text = FlowSpecDoc::new(&doc);
        assert_eq!(text.to_value(), doc);
        assert!(!text.as_str().contains('\n'), "compact: {text}");
        assert_eq!(FlowSpecDoc::from(doc.clone()), text);
    }
}
