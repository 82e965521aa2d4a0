//! `kubectl migrate pack`: ordinary FlowSpec files and code files into a
//! valid Ferry package, so nobody writes a packager. Local only: no cluster.
//!
//! Each document is read as the operator reads package documents
//! (`ferry_package::flowspec`), split into one self-contained document per
//! object (a workflow's tasks each get their own, with their dependencies
//! written as the output names they resolved to), the scripts' code files
//! found by the script's `path`, and the package written and then verified
//! exactly as an upload would be.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::path::{Path, PathBuf};

use ferry_package::flowspec::{self, EdgeOutcome, ReadOptions, Severity};
use ferry_package::migration_layout::{self, Role};
use ferry_package::{
    ExportMode, ExportedObject, FileRole, Limits, ObjectType, PackageReader, PackageWriter,
    SourceInfo,
};
use serde_json::Value;

use crate::failure::Failure;

/// What `pack` needs besides its sources.
#[derive(Debug, Clone, Default)]
pub struct PackArgs {
    pub sources: Vec<PathBuf>,
    pub out: PathBuf,
    /// The source project: default outputs are `<project>.<task name>`, and
    /// the package's `source.projectName`.
    pub project: Option<String>,
    pub tenant: Option<String>,
    pub workspace: Option<String>,
    pub region: Option<String>,
}

/// What was packed, for the summary line and tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Packed {
    pub objects: BTreeMap<String, usize>,
    pub edges_written: usize,
    pub edges_imported: usize,
    pub edges_internal: usize,
    pub edges_unresolved: usize,
    pub code_files: usize,
    /// Resource binaries packed with file resources (migration layout).
    pub resource_files: usize,
    /// `*.schedule.json` documents read in DataWorks' migration layout.
    pub layout_documents: usize,
    /// Data sources the migration layout defines (never packed).
    pub data_sources: usize,
    pub warnings: Vec<String>,
}

/// Whether a file is a FlowSpec document (by extension).
fn is_document(p: &Path) -> bool {
    matches!(
        p.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("yaml" | "yml" | "json")
    )
}

/// A source file: its path and its path relative to the source it was
/// found in (`/` separators), for matching scripts' paths.
struct SourceFile {
    /// Where it is, for messages (a zip's entry: `<zip>!/<entry>`).
    path: PathBuf,
    relative: String,
    /// Which source (argument) it came from.
    source: usize,
    /// Its bytes, when they are not on disk (a zip's entries).
    data: Option<Vec<u8>>,
    /// Its path relative to the root of DataWorks' migration layout
    /// (`migration_layout`), when it is under one.
    layout: Option<String>,
}

impl SourceFile {
    fn read(&self) -> Result<Vec<u8>, Failure> {
        match &self.data {
            Some(d) => Ok(d.clone()),
            None => std::fs::read(&self.path)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", self.path.display()))),
        }
    }

    /// The file's name (last path segment).
    fn file_name(&self) -> &str {
        self.relative.rsplit('/').next().unwrap_or(&self.relative)
    }
}

/// A zip source: DataWorks' migration package, read into memory with a
/// package's bounds.
fn collect_zip(path: &Path, source: usize) -> Result<Vec<SourceFile>, Failure> {
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    let entries = migration_layout::read_zip(std::io::BufReader::new(file), &Limits::default())
        .map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    if migration_layout::root_of(names.iter().copied()).is_none() {
        let what = if names.contains(&ferry_package::manifest::MANIFEST_PATH) {
            "it is a Ferry package already: upload it as it is"
        } else {
            "pack reads FlowSpec files, folders of them, and DataWorks' migration packages"
        };
        return Err(Failure::usage(format!(
            "{}: not a DataWorks migration package (no {} at its top or one folder down); {what}",
            path.display(),
            migration_layout::MARKER
        )));
    }
    Ok(entries
        .into_iter()
        .map(|(name, data)| SourceFile {
            path: PathBuf::from(format!("{}!/{name}", path.display())),
            relative: name,
            source,
            data: Some(data),
            layout: None,
        })
        .collect())
}

/// Marks the files of one source that lie under a `SPEC.FORMAT` marker.
fn mark_layout(files: &mut [SourceFile]) {
    let Some(root) = migration_layout::root_of(files.iter().map(|f| f.relative.as_str())) else {
        return;
    };
    for f in files {
        if let Some(rest) = f.relative.strip_prefix(&root) {
            f.layout = Some(rest.to_string());
        }
    }
}

/// Every regular file under the sources, sorted, symbolic links not
/// followed (a package never carries what a link points to). Plain std:
/// the walk is a dozen lines, not worth a new dependency in the shared
/// manifest.
fn collect(sources: &[PathBuf]) -> Result<Vec<SourceFile>, Failure> {
    let mut all = Vec::new();
    for (source, s) in sources.iter().enumerate() {
        let mut out = Vec::new();
        let meta = std::fs::symlink_metadata(s)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", s.display())))?;
        if meta.is_file() && s.extension().and_then(|e| e.to_str()) == Some("zip") {
            out = collect_zip(s, source)?;
        } else if meta.is_file() {
            let name = s
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            out.push(SourceFile {
                path: s.clone(),
                relative: name,
                source,
                data: None,
                layout: None,
            });
        } else if meta.is_dir() {
            let mut stack = vec![s.clone()];
            while let Some(dir) = stack.pop() {
                let entries = std::fs::read_dir(&dir)
                    .map_err(|e| Failure::usage(format!("cannot read {}: {e}", dir.display())))?;
                for e in entries {
                    let e = e.map_err(|e| {
                        Failure::usage(format!("cannot read {}: {e}", dir.display()))
                    })?;
                    let t = e.file_type().map_err(|err| {
                        Failure::usage(format!("cannot read {}: {err}", e.path().display()))
                    })?;
                    let p = e.path();
                    if t.is_dir() {
                        stack.push(p);
                    } else if t.is_file() {
                        let relative = p
                            .strip_prefix(s)
                            .unwrap_or(&p)
                            .components()
                            .map(|c| c.as_os_str().to_string_lossy().into_owned())
                            .collect::<Vec<_>>()
                            .join("/");
                        out.push(SourceFile {
                            path: p,
                            relative,
                            source,
                            data: None,
                            layout: None,
                        });
                    }
                }
            }
        } else if meta.file_type().is_symlink() {
            return Err(Failure::usage(format!(
                "{}: a symbolic link; pack does not follow links, name what it points to",
                s.display()
            )));
        } else {
            return Err(Failure::usage(format!(
                "{}: neither a file nor a directory",
                s.display()
            )));
        }
        mark_layout(&mut out);
        all.append(&mut out);
    }
    all.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(all)
}

/// The code file of a script path: a source file whose relative path is the
/// script's path, with or without an extension, or ends with it.
fn code_for<'f>(files: &'f [&'f SourceFile], script_path: &str) -> Option<&'f SourceFile> {
    let want = script_path.trim_start_matches('/');
    if want.is_empty() {
        return None;
    }
    let strip_ext = |s: &str| match s.rsplit_once('.') {
        Some((stem, ext)) if !ext.contains('/') => stem.to_string(),
        _ => s.to_string(),
    };
    let matches = |rel: &str| {
        rel == want
            || strip_ext(rel) == want
            || rel.ends_with(&format!("/{want}"))
            || strip_ext(rel).ends_with(&format!("/{want}"))
    };
    files.iter().copied().find(|f| matches(&f.relative))
}

/// The `path` of every script a document defines or names inline.
fn script_paths(v: &Value, out: &mut Vec<String>, depth: usize) {
    if depth > 48 {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let scripts: Vec<&Value> = match (k.as_str(), x) {
                    ("script", Value::Object(_)) => vec![x],
                    ("scripts", Value::Array(a)) => a.iter().collect(),
                    _ => Vec::new(),
                };
                for s in scripts {
                    if let Some(p) = s.get("path").and_then(Value::as_str) {
                        out.push(p.to_string());
                    }
                }
                script_paths(x, out, depth + 1);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| script_paths(x, out, depth + 1)),
        _ => {}
    }
}

/// Packs the sources into `args.out`.
pub fn pack(args: &PackArgs) -> Result<Packed, Failure> {
    if args.out.extension().and_then(|e| e.to_str()) != Some("zip") {
        return Err(Failure::usage(format!(
            "-o {}: the package must be a .zip file",
            args.out.display()
        )));
    }
    let files = collect(&args.sources)?;
    let mut packed = Packed::default();
    let mut errors = Vec::new();
    let mut candidates = Vec::new();
    let mut others: Vec<&SourceFile> = Vec::new();
    let mut layout_docs = Vec::new();
    for f in &files {
        match f.layout.as_deref().map(migration_layout::classify) {
            None if is_document(&f.path) => candidates.push(f),
            None => others.push(f),
            Some(Role::Marker) => {}
            Some(Role::Document) => layout_docs.push(f),
            Some(Role::DataSource) => data_source(f, &mut packed, &mut errors)?,
            Some(Role::Other) => others.push(f),
        }
    }
    // A JSON or YAML file a script's path names is that script's code (a
    // Data Integration job is JSON), not a document.
    let mut parsed = Vec::new();
    let mut paths = Vec::new();
    for f in candidates {
        let label = f.path.display().to_string();
        let bytes = f.read()?;
        let doc = flowspec::parse_document(&label, &bytes);
        if let Ok(d) = &doc {
            script_paths(d, &mut paths, 0);
        }
        parsed.push((f, doc));
    }
    let (mut docs, code): (Vec<_>, Vec<_>) = parsed.into_iter().partition(|(f, _)| {
        !paths
            .iter()
            .any(|p| code_for(std::slice::from_ref(f), p).is_some())
    });
    others.extend(code.into_iter().map(|(f, _)| f));
    // In DataWorks' migration layout every *.schedule.json is a document.
    for f in layout_docs {
        let bytes = f.read()?;
        docs.push((
            f,
            flowspec::parse_document(&f.path.display().to_string(), &bytes),
        ));
        packed.layout_documents += 1;
    }
    if docs.is_empty() {
        return Err(Failure::usage(
            "no FlowSpec documents (.yaml, .yml, .json, or *.schedule.json in DataWorks' migration layout) among the sources".to_string(),
        ));
    }
    let opts = ReadOptions {
        project: args.project.clone(),
    };
    let mut objects: Vec<ExportedObject> = Vec::new();
    let mut seen: BTreeMap<(ObjectType, String), String> = BTreeMap::new();
    let mut used_code = BTreeSet::new();
    for (f, doc) in docs {
        let label = f.path.display().to_string();
        let doc = match doc {
            Ok(d) => d,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        let (split, reading) = match flowspec::split_document(&doc, &opts) {
            Ok(x) => x,
            Err(reading) => {
                for i in reading.errors() {
                    errors.push(format!("{label}: {i}"));
                }
                continue;
            }
        };
        // In the migration layout a document's code or resource file sits
        // beside it, named after it.
        let companion = (f.layout.is_some() && split.len() == 1)
            .then(|| companion(f, &others))
            .flatten();
        for i in reading
            .issues
            .iter()
            .filter(|i| i.severity == Severity::Warning)
        {
            packed.warnings.push(format!("{label}: {i}"));
        }
        for e in &reading.edges {
            packed.edges_written += 1;
            match e.outcome {
                EdgeOutcome::Imported { .. } => packed.edges_imported += 1,
                EdgeOutcome::Internal => packed.edges_internal += 1,
                EdgeOutcome::Unresolved => packed.edges_unresolved += 1,
            }
        }
        for s in split {
            let t = s.object.object_type;
            let name = s.object.name.clone();
            if let Some(first) = seen.insert((t, name.clone()), label.clone()) {
                errors.push(format!(
                    "{t} {name:?} is defined in {first} and in {label}: names are unique per type"
                ));
                continue;
            }
            let mut document = s.document;
            let mut code = None;
            let script_path = s
                .object
                .spec
                .get("script")
                .and_then(|x| x.get("path"))
                .and_then(Value::as_str);
            if matches!(t, ObjectType::ScheduledTask | ObjectType::ServiceApi)
                && !s.object.inline_code
            {
                let found = companion.or_else(|| script_path.and_then(|p| code_for(&others, p)));
                match (found, script_path) {
                    (Some(file), _) => {
                        let data = file.read()?;
                        let language = s
                            .object
                            .spec
                            .get("script")
                            .and_then(|x| x.get("language"))
                            .and_then(Value::as_str);
                        let ext = match flowspec::code_extension(language) {
                            "txt" => Path::new(file.file_name())
                                .extension()
                                .and_then(|e| e.to_str())
                                .filter(|e| e.chars().all(|c| c.is_ascii_alphanumeric()))
                                .unwrap_or("txt")
                                .to_string(),
                            e => e.to_string(),
                        };
                        used_code.insert(file.path.clone());
                        code = Some((format!("code.{ext}"), data));
                    }
                    (None, _) if f.layout.is_some() => packed.warnings.push(format!(
                        "{label}: {t} {name:?}: no code file beside the document (rule: missing-code): the task is packed with an empty script"
                    )),
                    (None, Some(path)) => packed.warnings.push(format!(
                        "{label}: {t} {name:?}: no code file for script path {path:?} among the sources: the task is packed with an empty script"
                    )),
                    (None, None) => {}
                }
            }
            let mut resource = None;
            if t == ObjectType::FileResource && f.layout.is_some() {
                match companion {
                    Some(file) => {
                        used_code.insert(file.path.clone());
                        resource = Some((file.file_name().to_string(), file.read()?));
                    }
                    None => packed.warnings.push(format!(
                        "{label}: {t} {name:?}: no resource file beside the document (rule: missing-resource-file): packed without its binary"
                    )),
                }
            }
            strip_content_if_coded(&mut document, code.is_some());
            let mut o = ExportedObject {
                object_type: t,
                name: name.clone(),
                document,
                format: ferry_package::DocFormat::Yaml,
                files: Vec::new(),
            };
            if let Some((file, data)) = code {
                o = o.with_file(file, FileRole::Code, data);
                packed.code_files += 1;
            }
            if let Some((file, data)) = resource {
                o = o.with_file(file, FileRole::Resource, data);
                packed.resource_files += 1;
            }
            *packed.objects.entry(t.to_string()).or_default() += 1;
            objects.push(o);
        }
    }
    if !errors.is_empty() {
        return Err(Failure::failed(format!(
            "nothing was packed; {}:\n  {}",
            ferry_engine::ledger::plural(errors.len(), "problem", "problems"),
            errors.join("\n  ")
        )));
    }
    for f in &others {
        if used_code.contains(&f.path) {
            continue;
        }
        packed.warnings.push(if f.layout.is_some() {
            format!(
                "{}: in DataWorks' migration layout, but neither a *.schedule.json document nor the code or resource file beside one: left out (rule: unknown-file)",
                f.path.display()
            )
        } else {
            format!(
                "{}: not a FlowSpec document and no script's code: left out",
                f.path.display()
            )
        });
    }
    let source = SourceInfo {
        tenant: args.tenant.clone(),
        workspace: args.workspace.clone(),
        project_name: args.project.clone(),
        region: args.region.clone(),
    };
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let mut writer = PackageWriter::new(Cursor::new(Vec::new()), source, now, ExportMode::Full);
    for o in &objects {
        writer
            .add(o)
            .map_err(|e| Failure::failed(format!("writing the package: {e}")))?;
    }
    let (cursor, _) = writer
        .finish()
        .map_err(|e| Failure::failed(format!("writing the package: {e}")))?;
    let bytes = cursor.into_inner();
    // The package is checked as the operator will check it.
    if let Err(e) = PackageReader::open(Cursor::new(bytes.as_slice()), &Limits::default()) {
        return Err(Failure::failed(format!(
            "the packed result does not verify, nothing was written: {e}"
        )));
    }
    std::fs::write(&args.out, &bytes)
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", args.out.display())))?;
    Ok(packed)
}

/// The code or resource file beside a document of the migration layout.
fn companion<'f>(doc: &SourceFile, others: &[&'f SourceFile]) -> Option<&'f SourceFile> {
    let same: Vec<&SourceFile> = others
        .iter()
        .copied()
        .filter(|o| o.source == doc.source && o.layout.is_some())
        .collect();
    let names: Vec<&str> = same.iter().map(|o| o.relative.as_str()).collect();
    let hit = migration_layout::companion_of(&doc.relative, &names)?;
    same.into_iter().find(|o| o.relative == hit)
}

/// A data source definition of the migration layout: named in a warning,
/// never packed (a package carries no connection settings).
fn data_source(
    f: &SourceFile,
    packed: &mut Packed,
    errors: &mut Vec<String>,
) -> Result<(), Failure> {
    let label = f.path.display().to_string();
    let bytes = f.read()?;
    let doc = match flowspec::parse_document(&label, &bytes) {
        Ok(d) => d,
        Err(e) => {
            errors.push(e.to_string());
            return Ok(());
        }
    };
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    let listed: Vec<String> = doc
        .pointer("/spec/datasources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|d| {
            let field = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
            format!("{:?} ({})", field("name"), field("type"))
        })
        .collect();
    if kind != "DataSource" || listed.is_empty() {
        packed.warnings.push(format!(
            "{label}: in DataWorks' migration layout's DataSource folder, but not a data source definition (kind {kind:?}, {}): left out (rule: unknown-file)",
            ferry_engine::ledger::plural(listed.len(), "data source", "data sources")
        ));
        return Ok(());
    }
    packed.data_sources += listed.len();
    packed.warnings.push(format!(
        "{label}: data source {} not imported: a package carries no data sources or connection settings; the destination's compute resources are chosen by spec.computeResourceMapping (rule: data-source-not-imported)",
        listed.join(", ")
    ));
    Ok(())
}

/// A script whose code travels in a code file keeps no inline copy.
fn strip_content_if_coded(doc: &mut Value, coded: bool) {
    if !coded {
        return;
    }
    let spec = if doc.get("spec").is_some() {
        doc.get_mut("spec").expect("checked")
    } else {
        doc
    };
    let mut items: Vec<&mut Value> = Vec::new();
    if let Some(Value::Array(nodes)) = spec.get_mut("nodes") {
        items.extend(nodes.iter_mut());
    }
    for item in items {
        if let Some(Value::Object(s)) = item.get_mut("script") {
            s.remove("content");
        }
    }
    if let Some(Value::Array(ws)) = spec.get_mut("workflows") {
        for w in ws {
            if let Some(Value::Array(nodes)) = w.get_mut("nodes") {
                for n in nodes {
                    if let Some(Value::Object(s)) = n.get_mut("script") {
                        s.remove("content");
                    }
                }
            }
        }
    }
    if let Some(Value::Array(apis)) = spec.get_mut("apis") {
        for a in apis {
            if let Some(Value::Object(s)) = a.get_mut("script") {
                s.remove("content");
            }
        }
    }
}

/// The summary `pack` prints.
pub fn summary(args: &PackArgs, p: &Packed) -> String {
    let mut s = String::new();
    let objects: Vec<String> = p.objects.iter().map(|(t, n)| format!("{n} {t}")).collect();
    s.push_str(&format!(
        "{} written: {}; {}\n",
        args.out.display(),
        if objects.is_empty() {
            "no objects".to_string()
        } else {
            objects.join(", ")
        },
        ferry_engine::ledger::plural(p.code_files, "code file", "code files")
    ));
    if p.layout_documents > 0 {
        s.push_str(&format!(
            "DataWorks migration layout ({}): {}, {}, {} not imported\n",
            migration_layout::MARKER,
            ferry_engine::ledger::plural(
                p.layout_documents,
                "*.schedule.json document",
                "*.schedule.json documents"
            ),
            ferry_engine::ledger::plural(p.resource_files, "resource file", "resource files"),
            ferry_engine::ledger::plural(p.data_sources, "data source", "data sources")
        ));
    }
    s.push_str(&format!(
        "dependencies: {} in the documents = {} on tasks + {} inside container nodes + {} not imported\n",
        p.edges_written, p.edges_imported, p.edges_internal, p.edges_unresolved
    ));
    for w in &p.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    s
}
