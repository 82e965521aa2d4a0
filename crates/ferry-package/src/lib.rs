//! Ferry's migration package format. No Kubernetes here: this crate reads,
//! writes and verifies packages; the operator decides what to do with them.
//!
//! - [`manifest`]: `manifest.json`, the package's index.
//! - [`model`]: objects as read ([`PackageObject`]) and as written
//!   ([`ExportedObject`]).
//! - [`flowspec`]: FlowSpec documents to Ferry's spec fields and back.
//! - [`reader`]: opens and verifies a package in one pass
//!   ([`PackageReader::open`]); nothing is handed out unless every check passed.
//! - [`verify`]: the rules, [`Limits`] and the typed [`Problem`]s.
//! - [`writer`]: writes packages.
//! - [`migration_layout`]: the layout DataWorks' migration tooling writes
//!   (`SPEC.FORMAT`, `*.schedule.json`), which `kubectl migrate pack` converts.
//! - [`summary`]: what a package holds, for status and previews.
//! - [`yaml`]: bounded parsing of untrusted YAML/JSON documents (no
//!   anchors or aliases, limited depth).
//! - [`fixtures`]: deterministic packages of any size for tests and benchmarks.

pub mod archive;
pub mod benchmark;
pub mod fixtures;
pub mod flowspec;
pub mod manifest;
pub mod migration_layout;
pub mod model;
pub mod rawzip;
pub mod reader;
pub mod summary;
pub mod verify;
pub mod writer;
pub mod yaml;

pub use manifest::{ExportMode, Manifest, ManifestFile, ManifestObject, SourceInfo};
pub use model::{
    ComputeRef, DocFormat, ExportedFile, ExportedObject, FileEntry, FileRole, FlowSpecDoc,
    ObjectType, PackageObject, Studio,
};
pub use reader::PackageReader;
pub use summary::{PackageIndex, PackageSummary};
pub use verify::{Limits, Problem, VerifyError, validate_package_name};
pub use writer::PackageWriter;
