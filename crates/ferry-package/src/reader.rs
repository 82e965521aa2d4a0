//! Opening a package: one streaming pass that verifies everything and
//! yields the manifest and the objects.
//!
//! The archive is read from any `Read + Seek` (a file, normally) entry by
//! entry: spec documents (small) are kept in memory long enough to parse,
//! code files and resource binaries are only hashed while streaming. Their
//! bytes stay in the archive until the caller asks for them with
//! [`PackageReader::read_file`] or [`PackageReader::copy_file`], which
//! check the digest again.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{self, Read, Seek, SeekFrom, Write};

use sha2::{Digest, Sha256};

use crate::archive::{self, EntryKind, RawEntry, ScanError};
use crate::flowspec;
use crate::manifest::{FORMAT_VERSION, MANIFEST_PATH, Manifest};
use crate::model::{FileEntry, FileRole, FlowSpecDoc, ObjectType, PackageObject, Studio};
use crate::summary::{PackageIndex, PackageSummary};
use crate::verify::{
    Limits, MAX_CODE_FILE_BYTES, MAX_DOCUMENT_BYTES, MAX_MANIFEST_BYTES, MAX_NAME_CHARS, Problem,
    RATIO_GRACE_BYTES, TaskDeps, VerifyError, check_dependencies, check_entry_path,
};
use crate::yaml;

/// A verified package, open for reading files.
pub struct PackageReader<R> {
    archive: zip::ZipArchive<R>,
    manifest: Manifest,
    objects: Vec<PackageObject>,
    limits: Limits,
}

impl<R: Read + Seek> std::fmt::Debug for PackageReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackageReader")
            .field("manifest", &self.manifest)
            .field("objects", &self.objects.len())
            .finish()
    }
}

/// Verifies a package without keeping it open.
pub fn verify_package<R: Read + Seek>(reader: R, limits: &Limits) -> Result<Manifest, VerifyError> {
    PackageReader::open(reader, limits).map(|r| r.manifest)
}

/// `sha256:<hex>` and size of a whole stream (the package artifact digest).
pub fn digest_stream<R: Read>(mut r: R) -> io::Result<(String, u64)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
    Ok((format!("sha256:{}", hex::encode(h.finalize())), total))
}

impl<R: Read + Seek> PackageReader<R> {
    /// Verifies the package in full and opens it. Every problem found is in
    /// the error; nothing is returned unless there are none.
    pub fn open(mut reader: R, limits: &Limits) -> Result<Self, VerifyError> {
        let fail = |problems: Vec<Problem>| Err(VerifyError { problems });
        let len = match reader.seek(SeekFrom::End(0)) {
            Ok(l) => l,
            Err(e) => {
                return fail(vec![Problem::CorruptArchive {
                    entry: None,
                    detail: e.to_string(),
                }]);
            }
        };
        if len > limits.max_package_bytes {
            return fail(vec![Problem::Oversize {
                size: len,
                limit: limits.max_package_bytes,
            }]);
        }
        let entries = match archive::scan(&mut reader, limits.max_entries) {
            Ok(e) => e,
            Err(ScanError::TooManyEntries { count }) => {
                return fail(vec![Problem::TooManyEntries {
                    count,
                    limit: limits.max_entries,
                }]);
            }
            Err(ScanError::Corrupt(detail)) => {
                return fail(vec![Problem::CorruptArchive {
                    entry: None,
                    detail,
                }]);
            }
        };
        let mut v = Verifier {
            problems: Vec::new(),
            limits: *limits,
            budget: limits.max_uncompressed_bytes,
            entries: HashMap::new(),
            bad: HashSet::new(),
            exhausted: false,
            buf: vec![0u8; READ_BUFFER_BYTES],
            package_bytes: len,
            inflated: 0,
            retained: 0,
            project: None,
        };
        v.check_entries(&entries);
        let _ = reader.seek(SeekFrom::Start(0));
        let mut archive = match zip::ZipArchive::new(reader) {
            Ok(a) => a,
            Err(e) => {
                v.problems.push(Problem::CorruptArchive {
                    entry: None,
                    detail: e.to_string(),
                });
                return fail(v.problems);
            }
        };
        // Security review 1.4: the zip library must read the directory the
        // scan above vetted (no prepended data it would skip, the same set
        // of names), or the checks describe another archive than the one read.
        if archive.offset() != 0 || !same_names(&entries, &archive) {
            v.problems.push(Problem::CorruptArchive {
                entry: None,
                detail: "the central directory reads differently to the zip library (prepended data, or an ambiguous directory)".into(),
            });
            return fail(v.problems);
        }
        let Some(manifest) = v.read_manifest(&mut archive) else {
            return fail(v.problems);
        };
        v.project = manifest.source.project_name.clone();
        let objects = v.check_objects(&mut archive, &manifest);
        // Entries nothing indexes: a package carries exactly what it declares.
        let indexed: HashSet<&str> = manifest
            .objects
            .iter()
            .flat_map(|o| {
                std::iter::once(o.path.as_str()).chain(o.files.iter().map(|f| f.path.as_str()))
            })
            .collect();
        let mut unindexed: Vec<&RawEntry> = entries
            .iter()
            .filter(|e| {
                e.kind() == EntryKind::File
                    && e.name != MANIFEST_PATH
                    && !indexed.contains(e.name.as_str())
                    && !v.bad.contains(&e.name)
            })
            .collect();
        unindexed.dedup_by(|a, b| a.name == b.name);
        for e in unindexed {
            v.problems.push(Problem::UnindexedEntry {
                entry: e.name.clone(),
            });
        }
        let tasks: Vec<TaskDeps<'_>> = objects
            .iter()
            .filter(|o| o.object_type == ObjectType::ScheduledTask)
            .map(|o| TaskDeps {
                name: &o.name,
                inputs: o.spec_strings("inputs"),
                outputs: o.spec_strings("outputs"),
            })
            .collect();
        let dep_problems = check_dependencies(&tasks);
        v.problems.extend(dep_problems);
        if !v.problems.is_empty() {
            return fail(v.problems);
        }
        Ok(PackageReader {
            archive,
            manifest,
            objects,
            limits: *limits,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The objects, in the package's order.
    pub fn objects(&self) -> &[PackageObject] {
        &self.objects
    }

    pub fn into_parts(self) -> (Manifest, Vec<PackageObject>) {
        (self.manifest, self.objects)
    }

    pub fn summary(&self) -> PackageSummary {
        PackageSummary::new(&self.manifest, &self.objects)
    }

    pub fn index(&self) -> PackageIndex {
        PackageIndex::new(&self.objects)
    }

    /// Streams a verified file into `out`, checking its digest again (the
    /// underlying file could have changed since verification). On a
    /// mismatch, what was written must be discarded by the caller.
    pub fn copy_file<W: Write>(&mut self, file: &FileEntry, out: &mut W) -> io::Result<u64> {
        let mut entry = self
            .archive
            .by_name(&file.path)
            .map_err(|e| io::Error::new(io::ErrorKind::NotFound, e))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = entry.read(&mut buf)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > file.size {
                break;
            }
            h.update(&buf[..n]);
            out.write_all(&buf[..n])?;
        }
        let actual = hex::encode(h.finalize());
        if total != file.size || actual != file.sha256 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("entry {:?} changed since verification", file.path),
            ));
        }
        Ok(total)
    }

    /// A verified file's bytes (see [`Self::copy_file`]).
    pub fn read_file(&mut self, file: &FileEntry) -> io::Result<Vec<u8>> {
        // Only a hint: `copy_file` stops at the verified size anyway.
        let hint = file.size.min(self.limits.max_uncompressed_bytes);
        let mut out = Vec::with_capacity(hint.min(MAX_CODE_FILE_BYTES) as usize);
        self.copy_file(file, &mut out)?;
        Ok(out)
    }

    /// The object with its script content filled in from its code file,
    /// when the content lives in one (`spec.script.content`).
    pub fn with_code(&mut self, object: &PackageObject) -> io::Result<PackageObject> {
        let mut o = object.clone();
        self.fill_code(&mut o)?;
        Ok(o)
    }

    /// The objects, taken out of the reader (which keeps reading files):
    /// callers that fill in code with [`Self::fill_code`] then hold one copy
    /// of the package's objects, not two.
    pub fn take_objects(&mut self) -> Vec<PackageObject> {
        std::mem::take(&mut self.objects)
    }

    /// Fills in the object's script content from its code file, in place
    /// (see [`Self::with_code`]).
    pub fn fill_code(&mut self, o: &mut PackageObject) -> io::Result<()> {
        if let Some(code) = o.code_file().cloned() {
            let bytes = self.read_file(&code)?;
            let text = String::from_utf8(bytes).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("code file {:?} is not UTF-8", code.path),
                )
            })?;
            if let Some(script) = o.spec.get_mut("script").and_then(|s| s.as_object_mut()) {
                let empty = script
                    .get("content")
                    .and_then(|c| c.as_str())
                    .is_none_or(str::is_empty);
                if empty {
                    script.insert("content".into(), text.into());
                }
            }
        }
        Ok(())
    }
}

/// Whether the raw scan and the zip library list the same entry names
/// (duplicates, which the library folds, are refused elsewhere).
fn same_names<R: Read + Seek>(entries: &[RawEntry], archive: &zip::ZipArchive<R>) -> bool {
    let mut ours: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    ours.sort_unstable();
    ours.dedup();
    let mut theirs: Vec<String> = archive
        .file_names_raw()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    theirs.sort_unstable();
    theirs.dedup();
    ours.len() == theirs.len() && ours.iter().zip(&theirs).all(|(a, b)| *a == b.as_str())
}

/// The buffer entries are streamed through (one for the whole pass).
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// State of one verification pass.
struct Verifier {
    problems: Vec<Problem>,
    limits: Limits,
    /// Uncompressed bytes still allowed.
    budget: u64,
    /// Readable file entries by name: their declared compressed size.
    entries: HashMap<String, u64>,
    /// Entries with a problem of their own; not read, not reported again.
    bad: HashSet<String>,
    /// The uncompressed budget is spent (or declared sizes already exceed
    /// it): nothing more is read, and that is reported once.
    exhausted: bool,
    /// The read buffer, reused for every entry (a fresh 64 KiB buffer per
    /// entry costs a zeroed allocation each time and fragments the heap).
    buf: Vec<u8>,
    /// Size of the package file: the whole pass may inflate at most
    /// `max_ratio` times this (plus the grace), however small each entry.
    package_bytes: u64,
    /// Bytes inflated so far, all entries together.
    inflated: u64,
    /// Bytes kept in memory for the objects read so far (see
    /// [`Limits::max_retained_bytes`]).
    retained: u64,
    /// The source project (from the manifest): a node that declares no
    /// output has DataWorks' default output `<project>.<name>`.
    project: Option<String>,
}

impl Verifier {
    fn check_entries(&mut self, entries: &[RawEntry]) {
        let mut seen = HashSet::new();
        let mut dup_reported = HashSet::new();
        let mut declared_total: u64 = 0;
        for e in entries {
            let mut bad = false;
            if !seen.insert(e.name.clone()) {
                if dup_reported.insert(e.name.clone()) {
                    self.problems.push(Problem::DuplicateEntry {
                        entry: e.name.clone(),
                    });
                }
                bad = true;
            }
            if !e.utf8 {
                self.problems.push(Problem::InvalidEntryName {
                    entry: e.name.clone(),
                    detail: "not UTF-8".into(),
                });
                bad = true;
            } else if let Some(p) = check_entry_path(&e.name) {
                self.problems.push(p);
                bad = true;
            }
            match e.kind() {
                EntryKind::Symlink => {
                    self.problems.push(Problem::Symlink {
                        entry: e.name.clone(),
                    });
                    bad = true;
                }
                EntryKind::Special => {
                    self.problems.push(Problem::SpecialFile {
                        entry: e.name.clone(),
                    });
                    bad = true;
                }
                EntryKind::Directory | EntryKind::File => {}
            }
            if e.size > RATIO_GRACE_BYTES
                && e.size / e.compressed_size.max(1) > self.limits.max_ratio
            {
                self.problems.push(Problem::DecompressionRatio {
                    entry: e.name.clone(),
                    ratio: e.size / e.compressed_size.max(1),
                    limit: self.limits.max_ratio,
                });
                bad = true;
            }
            declared_total = declared_total.saturating_add(e.size);
            if bad {
                self.bad.insert(e.name.clone());
            } else if e.kind() == EntryKind::File {
                self.entries.insert(e.name.clone(), e.compressed_size);
            }
        }
        if declared_total > self.limits.max_uncompressed_bytes {
            self.exhausted = true;
            self.problems.push(Problem::UncompressedSize {
                entry: None,
                total: declared_total,
                limit: self.limits.max_uncompressed_bytes,
            });
        }
    }

    /// Streams one entry through `sink`, enforcing the budget and the ratio
    /// on the bytes actually produced, and returns (size, sha256 hex).
    fn stream<R: Read + Seek>(
        &mut self,
        archive: &mut zip::ZipArchive<R>,
        name: &str,
        max_bytes: (u64, &str),
        mut sink: impl FnMut(&[u8]),
    ) -> Result<(u64, String), Problem> {
        let (max_bytes, what) = max_bytes;
        // The ratio of the whole package, judged on the bytes actually
        // inflated: 1 000 entries of 1 MiB of zeros each stay under the
        // per-entry grace but not under this.
        let package_bound = self
            .limits
            .max_ratio
            .saturating_mul(self.package_bytes)
            .saturating_add(RATIO_GRACE_BYTES);
        let compressed = self.entries.get(name).copied().unwrap_or(0).max(1);
        let corrupt = |detail: String| Problem::CorruptArchive {
            entry: Some(name.to_string()),
            detail,
        };
        let mut entry = archive.by_name(name).map_err(|e| corrupt(e.to_string()))?;
        let mut h = Sha256::new();
        let buf = &mut self.buf;
        let mut total = 0u64;
        let outcome = loop {
            let n = match entry.read(buf) {
                Ok(n) => n,
                Err(e) => break Err(corrupt(e.to_string())),
            };
            if n == 0 {
                break Ok(());
            }
            total += n as u64;
            if total > self.budget {
                let used = self.limits.max_uncompressed_bytes - self.budget;
                self.exhausted = true;
                break Err(Problem::UncompressedSize {
                    entry: Some(name.to_string()),
                    total: used.saturating_add(total),
                    limit: self.limits.max_uncompressed_bytes,
                });
            }
            if total > RATIO_GRACE_BYTES && total / compressed > self.limits.max_ratio {
                break Err(Problem::DecompressionRatio {
                    entry: name.to_string(),
                    ratio: total / compressed,
                    limit: self.limits.max_ratio,
                });
            }
            if self.inflated.saturating_add(total) > package_bound {
                // Nothing more is worth reading: report this once.
                self.exhausted = true;
                break Err(Problem::PackageRatio {
                    entry: name.to_string(),
                    inflated: self.inflated.saturating_add(total),
                    package: self.package_bytes,
                    limit: self.limits.max_ratio,
                });
            }
            if total > max_bytes {
                break Err(Problem::EntrySize {
                    entry: name.to_string(),
                    detail: format!("more than {max_bytes} bytes, the limit for {what}"),
                });
            }
            h.update(&buf[..n]);
            sink(&buf[..n]);
        };
        // What was inflated counts against the budgets even when the entry
        // is refused half-way: otherwise many entries that each fail late
        // would inflate without bound.
        self.budget = self.budget.saturating_sub(total);
        self.inflated = self.inflated.saturating_add(total);
        outcome.map(|()| (total, hex::encode(h.finalize())))
    }

    fn read_manifest<R: Read + Seek>(
        &mut self,
        archive: &mut zip::ZipArchive<R>,
    ) -> Option<Manifest> {
        if self.bad.contains(MANIFEST_PATH) || self.exhausted {
            return None;
        }
        if !self.entries.contains_key(MANIFEST_PATH) {
            // DataWorks' own packages are named as such, with the way on.
            let layout = crate::migration_layout::root_of(self.entries.keys().map(String::as_str));
            self.problems.push(match layout {
                Some(root) => Problem::MigrationLayout {
                    entry: format!("{root}{}", crate::migration_layout::MARKER),
                },
                None => Problem::MissingManifest,
            });
            return None;
        }
        let mut bytes = Vec::new();
        if let Err(p) = self.stream(
            archive,
            MANIFEST_PATH,
            (MAX_MANIFEST_BYTES, "the manifest"),
            |b| bytes.extend_from_slice(b),
        ) {
            self.problems.push(p);
            return None;
        }
        // The usual case in one pass, straight into the struct; anything
        // else goes through a `Value` to say precisely what is wrong.
        if let Ok(m) = serde_json::from_slice::<Manifest>(&bytes)
            && m.format_version == FORMAT_VERSION
        {
            return Some(m);
        }
        let invalid = |detail: String| Problem::InvalidManifest { detail };
        let value: serde_json::Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                self.problems.push(invalid(e.to_string()));
                return None;
            }
        };
        match value.get("formatVersion") {
            Some(v) if v.as_u64() == Some(u64::from(FORMAT_VERSION)) => {}
            Some(v) => {
                self.problems.push(Problem::UnknownFormatVersion {
                    found: v.to_string(),
                });
                return None;
            }
            None => {
                self.problems
                    .push(invalid("formatVersion is missing".into()));
                return None;
            }
        }
        match serde_json::from_value::<Manifest>(value) {
            Ok(m) => Some(m),
            Err(e) => {
                self.problems.push(invalid(e.to_string()));
                None
            }
        }
    }

    /// Checks one indexed path and streams it; `keep` collects the bytes.
    /// `max_bytes` (and what it is the limit for) bounds entries whose
    /// content is held in memory whole: documents, code files.
    #[allow(clippy::too_many_arguments)]
    fn check_indexed<R: Read + Seek>(
        &mut self,
        archive: &mut zip::ZipArchive<R>,
        object: &str,
        path: &str,
        sha256: &str,
        size: u64,
        max_bytes: (u64, &str),
        keep: Option<&mut Vec<u8>>,
    ) -> bool {
        if self.bad.contains(path) || self.exhausted {
            return false;
        }
        if let Some(p) = check_entry_path(path) {
            self.problems.push(p);
            return false;
        }
        if !self.entries.contains_key(path) {
            self.problems.push(Problem::MissingObject {
                object: object.to_string(),
                entry: path.to_string(),
            });
            return false;
        }
        let result = match keep {
            Some(buf) => self.stream(archive, path, max_bytes, |b| buf.extend_from_slice(b)),
            None => self.stream(archive, path, max_bytes, |_| {}),
        };
        match result {
            Err(p) => {
                self.problems.push(p);
                false
            }
            Ok((actual_size, actual_sha)) => {
                let mut ok = true;
                if actual_size != size {
                    self.problems.push(Problem::SizeMismatch {
                        entry: path.to_string(),
                        expected: size,
                        actual: actual_size,
                    });
                    ok = false;
                }
                if !actual_sha.eq_ignore_ascii_case(sha256) {
                    self.problems.push(Problem::DigestMismatch {
                        entry: path.to_string(),
                        expected: sha256.to_string(),
                        actual: actual_sha,
                    });
                    ok = false;
                }
                ok
            }
        }
    }

    fn check_objects<R: Read + Seek>(
        &mut self,
        archive: &mut zip::ZipArchive<R>,
        manifest: &Manifest,
    ) -> Vec<PackageObject> {
        let mut objects = Vec::with_capacity(manifest.objects.len());
        let mut names = HashSet::new();
        let mut dup_names = BTreeSet::new();
        let mut paths = HashSet::new();
        let mut doc_bytes = Vec::new();
        for m in &manifest.objects {
            let object_type = ObjectType::parse(&m.type_);
            let label = format!("{} {:?}", m.type_, m.name);
            match object_type {
                None => self.problems.push(Problem::UnknownType {
                    name: m.name.clone(),
                    found: m.type_.clone(),
                }),
                Some(t) => {
                    let chars = m.name.chars().count();
                    if m.name.trim().is_empty() {
                        self.problems.push(Problem::EmptyName {
                            object_type: m.type_.clone(),
                            entry: m.path.clone(),
                        });
                    } else if chars > MAX_NAME_CHARS {
                        // Named by its entry: the name itself may be megabytes.
                        self.problems.push(Problem::NameTooLong {
                            object_type: m.type_.clone(),
                            entry: m.path.clone(),
                            chars,
                        });
                    } else if !names.insert((t, m.name.clone()))
                        && dup_names.insert((t, m.name.clone()))
                    {
                        self.problems.push(Problem::DuplicateName {
                            object_type: m.type_.clone(),
                            name: m.name.clone(),
                        });
                    }
                }
            }
            for p in std::iter::once(&m.path).chain(m.files.iter().map(|f| &f.path)) {
                if !paths.insert(p.clone()) {
                    self.problems
                        .push(Problem::DuplicateIndexPath { entry: p.clone() });
                }
            }
            doc_bytes.clear();
            let doc_ok = self.check_indexed(
                archive,
                &label,
                &m.path,
                &m.sha256,
                m.size,
                (MAX_DOCUMENT_BYTES, "a spec document"),
                Some(&mut doc_bytes),
            );
            let mut files = Vec::new();
            let mut files_ok = true;
            for f in &m.files {
                // Code is later read whole into the object; resources are
                // only ever streamed.
                let max = match f.effective_role() {
                    FileRole::Code => (MAX_CODE_FILE_BYTES, "a code file"),
                    FileRole::Resource => (u64::MAX, "a resource file"),
                };
                files_ok &=
                    self.check_indexed(archive, &label, &f.path, &f.sha256, f.size, max, None);
                files.push(FileEntry {
                    path: f.path.clone(),
                    sha256: f.sha256.to_ascii_lowercase(),
                    size: f.size,
                    role: f.effective_role(),
                });
            }
            let (Some(t), true) = (object_type, doc_ok) else {
                continue;
            };
            if let Some(o) = self.interpret(t, m, &doc_bytes, files)
                && files_ok
            {
                objects.push(o);
            }
        }
        objects
    }

    /// Parses an object's document and checks it describes the indexed object.
    fn interpret(
        &mut self,
        t: ObjectType,
        m: &crate::manifest::ManifestObject,
        bytes: &[u8],
        files: Vec<FileEntry>,
    ) -> Option<PackageObject> {
        let doc = match yaml::parse_document(&m.path, bytes) {
            Ok(d) => d,
            Err(e) => {
                let entry = m.path.clone();
                self.problems.push(match e.kind {
                    yaml::ErrorKind::Alias => Problem::YamlAlias {
                        entry,
                        line: e.line,
                        column: e.column,
                    },
                    yaml::ErrorKind::Depth => Problem::NestingDepth {
                        entry,
                        limit: yaml::MAX_DEPTH,
                    },
                    yaml::ErrorKind::Size => Problem::EntrySize {
                        entry,
                        detail: e.message,
                    },
                    yaml::ErrorKind::Syntax => Problem::InvalidSpec {
                        entry,
                        line: e.line,
                        column: e.column,
                        detail: e.message,
                    },
                });
                return None;
            }
        };
        let reading = flowspec::read_document(
            &doc,
            &flowspec::ReadOptions {
                project: self.project.clone(),
            },
        );
        // What the document says that Ferry cannot read faithfully is a
        // problem naming the entry and the rule: never a dependency that
        // silently vanishes, never "describes 0 objects".
        let mut refused = false;
        for issue in reading.errors() {
            refused = true;
            self.problems.push(Problem::FlowSpec {
                entry: m.path.clone(),
                rule: issue.rule,
                detail: format!("{}: {}: {}", issue.subject, issue.at, issue.detail),
            });
        }
        if refused {
            return None;
        }
        let mut found: Vec<_> = reading
            .objects
            .into_iter()
            .filter(|x| x.object_type == t)
            .collect();
        if found.len() != 1 {
            self.problems.push(Problem::SpecMismatch {
                entry: m.path.clone(),
                detail: format!(
                    "the document describes {} {t} objects; a package document describes exactly one",
                    found.len()
                ),
            });
            return None;
        }
        let x = found.remove(0);
        if x.name != m.name && !m.name.trim().is_empty() {
            self.problems.push(Problem::SpecMismatch {
                entry: m.path.clone(),
                detail: format!(
                    "the document names the {t} {:?}, the index {:?}",
                    x.name, m.name
                ),
            });
            return None;
        }
        if x.studio == Studio::New {
            self.problems.push(Problem::NewStudioObject {
                object_type: t.as_str().to_string(),
                name: m.name.clone(),
            });
        }
        // Kept as compact text; the parsed tree is dropped here.
        let flow_spec = FlowSpecDoc::new(&doc);
        drop(doc);
        // The spec fields are counted as the document's size: they are a
        // part of it, parsed.
        self.retained = self
            .retained
            .saturating_add(flow_spec.len() as u64)
            .saturating_add(bytes.len() as u64);
        if self.retained > self.limits.max_retained_bytes {
            // Reading on would only keep more: stop here, report once.
            self.exhausted = true;
            self.problems.push(Problem::RetainedSize {
                entry: m.path.clone(),
                total: self.retained,
                limit: self.limits.max_retained_bytes,
            });
            return None;
        }
        let mut spec = x.spec;
        if t == ObjectType::FileResource
            && let Some(f) = files.iter().find(|f| f.role == FileRole::Resource)
        {
            spec.insert("path".into(), f.path.clone().into());
            spec.insert("contentDigest".into(), f.digest().into());
        }
        Some(PackageObject {
            object_type: t,
            name: m.name.clone(),
            spec,
            flow_spec,
            spec_path: m.path.clone(),
            files,
            studio: x.studio,
            compute: x.compute,
            resource_group: x.resource_group,
            inner_compute: x.inner_compute,
            inner_resource_groups: x.inner_resource_groups,
        })
    }
}
