//! The package layout DataWorks' migration tooling (MigrationX) writes, as
//! `DataWorksSpecPackageFileService.write` in the public repository
//! aliyun/dataworks-spec
//! (`client/migrationx/migrationx-domain/migrationx-domain-dataworks/src/main/java/com/aliyun/dataworks/migrationx/domain/dataworks/service/impl/DataWorksSpecPackageFileService.java`)
//! lays it out, zipped or as a folder:
//!
//! ```text
//! <package>/SPEC.FORMAT                                   empty marker
//! <package>/DataStudio/<root>/<workflow>/<engine>/<label>/<node>/<node>.schedule.json
//! <package>/DataStudio/<root>/<workflow>/<engine>/<label>/<node>/<node>.<ext>   its code
//! <package>/DataStudio/<root>/<workflow>/<folder>/<resource>.schedule.json
//! <package>/DataStudio/<root>/<workflow>/<folder>/<resource>                   its binary
//! <package>/DataSource/<type>/<subType>/<env>/<name>/<name>.json               a data source
//! ```
//!
//! `<root>` is the model-tree root (`Business Flow` / `业务流程`, ...). Each
//! `*.schedule.json` is a FlowSpec 1.1.0 document of one node (`spec.nodes[]`
//! and `spec.flow[]`, dependencies as output names) or one file resource
//! (`spec.fileResources[]`); a data source file is a document of kind
//! `DataSource` (`spec.datasources[]`, with its connection settings).
//!
//! Ferry does not read such a package as an upload (it has no index and no
//! digests; see docs/package-format.md): `kubectl migrate pack` converts it,
//! and the package reader names the layout when it is uploaded as it is.
//! This module holds what both need to know about the layout.

use std::io::{Read, Seek};

use crate::archive::{self, EntryKind};
use crate::verify::Limits;

/// The marker file at the package's root.
pub const MARKER: &str = "SPEC.FORMAT";

/// The suffix of every node and file-resource document.
pub const SPEC_SUFFIX: &str = ".schedule.json";

/// The folder of data source definitions, under the package's root.
pub const DATA_SOURCE_DIR: &str = "DataSource/";

/// The layout's root: the folder holding the marker (`""` for the top,
/// else a prefix ending in `/`), when one of `paths` (relative, `/`
/// separators) is a marker at the top or one folder down (the tool zips a
/// folder named after the package). The shallowest wins.
pub fn root_of<'a>(paths: impl IntoIterator<Item = &'a str>) -> Option<String> {
    paths
        .into_iter()
        .filter_map(|p| {
            let prefix = p.strip_suffix(MARKER)?;
            (prefix.is_empty() || (prefix.ends_with('/') && prefix.matches('/').count() == 1))
                .then(|| prefix.to_string())
        })
        .min_by_key(String::len)
}

/// What a file of the layout is, by its path relative to the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The `SPEC.FORMAT` marker.
    Marker,
    /// A node's or file resource's FlowSpec document (`*.schedule.json`).
    Document,
    /// A data source definition (`DataSource/**.json`).
    DataSource,
    /// Anything else: a document's code or resource file when it sits beside
    /// one (see [`companion_of`]), else a file Ferry does not read.
    Other,
}

/// The role of a file, by its path relative to the layout's root.
pub fn classify(relative: &str) -> Role {
    if relative == MARKER {
        Role::Marker
    } else if relative.ends_with(SPEC_SUFFIX) {
        Role::Document
    } else if relative.starts_with(DATA_SOURCE_DIR) && relative.ends_with(".json") {
        Role::DataSource
    } else {
        Role::Other
    }
}

/// The stem a document is named after: `<node>` of `<node>.schedule.json`.
pub fn document_stem(document: &str) -> Option<&str> {
    let name = document.rsplit('/').next()?;
    name.strip_suffix(SPEC_SUFFIX).filter(|s| !s.is_empty())
}

/// The code or resource file of a document: in the same folder, named
/// `<stem>` (a resource, whose name carries its extension) or
/// `<stem>.<ext>` (a node's code: `.sql`, `.sh`, `.py`, `.json`, ...),
/// never another document. `<stem>` itself wins over `<stem>.<ext>`.
pub fn companion_of<'a>(document: &str, files: &[&'a str]) -> Option<&'a str> {
    let stem = document_stem(document)?;
    let folder = &document[..document.len() - stem.len() - SPEC_SUFFIX.len()];
    let in_folder = |f: &str| {
        f.strip_prefix(folder)
            .filter(|rest| !rest.contains('/') && !rest.ends_with(SPEC_SUFFIX))
            .map(str::to_string)
    };
    let exact = files
        .iter()
        .copied()
        .find(|f| in_folder(f).as_deref() == Some(stem));
    exact.or_else(|| {
        files.iter().copied().find(|f| {
            in_folder(f).is_some_and(|rest| {
                rest.strip_prefix(stem)
                    .and_then(|r| r.strip_prefix('.'))
                    .is_some_and(|ext| !ext.is_empty() && !ext.contains('.'))
            })
        })
    })
}

/// Why a zip's files could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipError(pub String);

impl std::fmt::Display for ZipError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every regular file of a zip (name, bytes), in archive order, read with
/// the bounds a package has (`limits`: entry count, total size, ratio), and
/// refusing what a package refuses: names that escape (`..`, absolute,
/// backslashes), symbolic links, special files. Directories are skipped.
pub fn read_zip<R: Read + Seek>(
    mut r: R,
    limits: &Limits,
) -> Result<Vec<(String, Vec<u8>)>, ZipError> {
    let err = |m: String| ZipError(m);
    let entries = archive::scan(&mut r, limits.max_entries)
        .map_err(|e| err(format!("not a readable zip archive: {e:?}")))?;
    let mut zip =
        zip::ZipArchive::new(r).map_err(|e| err(format!("not a readable zip archive: {e}")))?;
    let mut out = Vec::new();
    let mut total: u64 = 0;
    for (i, e) in entries.iter().enumerate() {
        let name = &e.name;
        if !e.utf8 || name.contains('\\') || name.starts_with('/') || name.contains(':') {
            return Err(err(format!(
                "entry {name:?}: not a safe relative name (UTF-8, `/` separators, no drive or root)"
            )));
        }
        if name.split('/').any(|s| s == "..") {
            return Err(err(format!("entry {name:?}: path escapes the archive")));
        }
        match e.kind() {
            EntryKind::Directory => continue,
            EntryKind::Symlink => {
                return Err(err(format!("entry {name:?}: is a symbolic link")));
            }
            EntryKind::Special => {
                return Err(err(format!(
                    "entry {name:?}: is not a regular file or directory"
                )));
            }
            EntryKind::File => {}
        }
        let budget = limits.max_uncompressed_bytes.saturating_sub(total);
        let mut f = zip
            .by_index(i)
            .map_err(|x| err(format!("entry {name:?}: cannot be read: {x}")))?;
        let mut bytes = Vec::new();
        (&mut f)
            .take(budget.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|x| err(format!("entry {name:?}: cannot be read: {x}")))?;
        total = total.saturating_add(bytes.len() as u64);
        if total > limits.max_uncompressed_bytes {
            return Err(err(format!(
                "entry {name:?}: the files expand to more than {} bytes",
                limits.max_uncompressed_bytes
            )));
        }
        let compressed = e.compressed_size.max(1);
        if bytes.len() as u64 > 1 << 20 && bytes.len() as u64 / compressed > limits.max_ratio {
            return Err(err(format!(
                "entry {name:?}: expands more than {} times its compressed size (a zip bomb?)",
                limits.max_ratio
            )));
        }
        out.push((name.clone(), bytes));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rawzip::{self, RawZipEntry};

    #[test]
    fn the_root_is_where_the_marker_is_at_the_top_or_one_folder_down() {
        assert_eq!(root_of(["SPEC.FORMAT", "a/b"]), Some(String::new()));
        assert_eq!(
            root_of(["pkg/DataStudio/x.schedule.json", "pkg/SPEC.FORMAT"]),
            Some("pkg/".into())
        );
        assert_eq!(root_of(["a/b/SPEC.FORMAT"]), None, "too deep");
        assert_eq!(root_of(["NOTSPEC.FORMAT", "x.schedule.json"]), None);
    }

    #[test]
    fn files_are_classified_by_their_place() {
        assert_eq!(classify("SPEC.FORMAT"), Role::Marker);
        assert_eq!(
            classify("DataStudio/Business Flow/wf/MaxCompute/Data Analytics/a/a.schedule.json"),
            Role::Document
        );
        assert_eq!(
            classify("DataSource/odps/odps/PRD/mc/mc.json"),
            Role::DataSource
        );
        assert_eq!(classify("DataStudio/wf/a/a.sql"), Role::Other);
        assert_eq!(classify("DataStudio/wf/a/a.json"), Role::Other);
    }

    #[test]
    fn a_documents_companion_sits_beside_it_under_its_stem() {
        let files = [
            "wf/n/n.sql",
            "wf/n/n.schedule.json",
            "wf/n/other.sql",
            "wf/r/lib.jar",
            "wf/r/lib.jar.schedule.json",
            "wf/m/m.tar.gz",
        ];
        assert_eq!(
            companion_of("wf/n/n.schedule.json", &files),
            Some("wf/n/n.sql")
        );
        assert_eq!(
            companion_of("wf/r/lib.jar.schedule.json", &files),
            Some("wf/r/lib.jar")
        );
        assert_eq!(companion_of("wf/x/x.schedule.json", &files), None);
        assert_eq!(
            companion_of("wf/m/m.schedule.json", &files),
            None,
            "one extension only"
        );
    }

    #[test]
    fn zips_are_read_with_the_packages_rules() {
        let ok = rawzip::build(&[
            RawZipEntry::file("p/SPEC.FORMAT", b"".to_vec()),
            RawZipEntry::file("p/a.sql", b"select 1".to_vec()),
        ]);
        let files = read_zip(std::io::Cursor::new(ok), &Limits::default()).unwrap();
        assert_eq!(
            files,
            [
                ("p/SPEC.FORMAT".to_string(), vec![]),
                ("p/a.sql".to_string(), b"select 1".to_vec())
            ]
        );
        let bad = rawzip::build(&[RawZipEntry::file("../evil", b"x".to_vec())]);
        let e = read_zip(std::io::Cursor::new(bad), &Limits::default()).unwrap_err();
        assert!(e.0.contains("escapes"), "{e}");
        let link = rawzip::build(&[RawZipEntry::symlink("p/l", "/etc/passwd")]);
        let e = read_zip(std::io::Cursor::new(link), &Limits::default()).unwrap_err();
        assert!(e.0.contains("symbolic link"), "{e}");
    }
}
