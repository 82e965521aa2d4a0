//! `manifest.json`: the package's index. It is the only entry the reader
//! trusts to say what the package holds, and everything it says is checked
//! against the archive (paths, sizes, SHA-256 digests) before any object is
//! used.

use serde::{Deserialize, Serialize};

/// The path of the manifest inside the zip.
pub const MANIFEST_PATH: &str = "manifest.json";

/// The only `formatVersion` this crate reads and writes. A reader refuses
/// any other value rather than guessing what a newer writer meant.
pub const FORMAT_VERSION: u32 = 1;

/// The whole manifest.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Where the package was exported from.
    pub source: SourceInfo,
    /// When the export ran, RFC 3339 (kept as text: Ferry only displays it).
    pub exported_at: String,
    /// How much of the workspace the export took.
    pub export_mode: ExportMode,
    /// Every object in the package, in the order the writer added them.
    pub objects: Vec<ManifestObject>,
}

/// The workspace a package was exported from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SourceInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// The source project name: the prefix of its tasks' output names
    /// (`sales_dev.load_orders`), which the dependency rule and the
    /// project-rename mapping rely on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// The export mode, the same three values as the `MigrationPackage` CRD.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExportMode {
    #[default]
    Full,
    Incremental,
    Custom,
}

/// One object's entry in the index.
///
/// `type` is kept as a string here so that an unknown type is reported as a
/// verification problem naming the object, instead of failing the whole
/// manifest parse at the first one.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManifestObject {
    #[serde(rename = "type")]
    pub type_: String,
    /// The real name (any Unicode).
    pub name: String,
    /// Path of the object's FlowSpec document (`<folder>/spec.yaml|json`).
    pub path: String,
    /// SHA-256 of the document, lower-case hex.
    pub sha256: String,
    /// Size of the document in bytes.
    pub size: u64,
    /// Code files and resource binaries belonging to the object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ManifestFile>,
}

/// A file belonging to an object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFile {
    pub path: String,
    pub sha256: String,
    pub size: u64,
    /// What the file is for. Absent: inferred from the name (`code.*` is
    /// code, anything else a resource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<crate::model::FileRole>,
}

impl ManifestFile {
    /// The role, inferred from the file name when the manifest omits it.
    pub fn effective_role(&self) -> crate::model::FileRole {
        self.role
            .unwrap_or_else(|| crate::model::FileRole::infer(&self.path))
    }
}
