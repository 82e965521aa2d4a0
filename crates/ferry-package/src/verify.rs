//! The verification rules, their limits and the problems they report.
//!
//! Verification runs in full before anything in a package is used and
//! collects every problem it can find (like a restore validator listing all
//! issues at once) instead of stopping at the first, so one round of fixes
//! suffices. Only problems that make further checking meaningless stop it
//! early: a package over the size limit, an archive that cannot be read, or
//! a missing or unreadable manifest.
//!
//! Each [`Problem`] names the entry or object it concerns and carries a
//! stable [`Problem::rule`] code that status, reports and tests match on.

use std::collections::{BTreeMap, HashMap};

/// Bounds a package must stay within. Every bound applies to what is
/// actually read, not only to what headers declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Size of the zip file itself (the seed: 30 MB for a local upload).
    pub max_package_bytes: u64,
    /// Entries in the archive, directories included.
    pub max_entries: u64,
    /// Uncompressed/compressed ratio of an entry, checked once the entry
    /// has produced more than [`RATIO_GRACE_BYTES`] (tiny, highly
    /// compressible files are normal; only large expansions are bombs).
    pub max_ratio: u64,
    /// Total bytes all entries may decompress to.
    pub max_uncompressed_bytes: u64,
    /// What the reader may keep in memory for all objects together (see
    /// [`MAX_RETAINED_BYTES`], the default).
    pub max_retained_bytes: u64,
}

/// Output an entry may produce before its compression ratio is judged.
pub const RATIO_GRACE_BYTES: u64 = 1 << 20;

/// The largest spec document read into memory. Documents are parsed into
/// trees that cost about ten times their text, inside a pod with a memory
/// limit; a FlowSpec document for one object is a few KiB (large code lives
/// in the object's code file).
pub const MAX_DOCUMENT_BYTES: u64 = 1 << 20;

/// The largest `manifest.json` read into memory: it indexes every object
/// (about 300 bytes each), so it is allowed more than one document.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// The largest code file (a task's or API's script). The import puts the
/// script into one Kubernetes object, which etcd limits to 1.5 MiB in all;
/// a larger script could never be written.
pub const MAX_CODE_FILE_BYTES: u64 = 1 << 20;

/// Longest real name of an object, in characters: what the workspace
/// objects' `spec.name` accepts. A longer name could never be imported, and
/// names travel into status, reports and events.
pub const MAX_NAME_CHARS: usize = 256;

/// What the reader may keep in memory for all objects together: each
/// object's document as compact text plus its spec fields (counted as the
/// document's size). The default fits the chart's 512 MiB memory limit with
/// room for the import that follows.
pub const MAX_RETAINED_BYTES: u64 = 128 << 20;

impl Default for Limits {
    /// The seed's 30 MB upload limit, 100 000 entries, a ratio of 100,
    /// 1 GiB uncompressed and [`MAX_RETAINED_BYTES`] kept: generous for real
    /// packages, far below what a zip bomb needs.
    fn default() -> Self {
        Limits {
            max_package_bytes: 30 * 1024 * 1024,
            max_entries: 100_000,
            max_ratio: 100,
            max_uncompressed_bytes: 1 << 30,
            max_retained_bytes: MAX_RETAINED_BYTES,
        }
    }
}

/// One verification problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The package file is larger than allowed.
    Oversize {
        size: u64,
        limit: u64,
    },
    /// The archive (or one entry's data) cannot be read.
    CorruptArchive {
        entry: Option<String>,
        detail: String,
    },
    /// A name with `..` segments or backslashes that could leave the package.
    PathEscape {
        entry: String,
    },
    /// An absolute name (`/x`, `C:\x`, `\\host\x`).
    AbsolutePath {
        entry: String,
    },
    /// An empty name, control characters, or bytes that are not UTF-8.
    InvalidEntryName {
        entry: String,
        detail: String,
    },
    /// A symbolic link.
    Symlink {
        entry: String,
    },
    /// A device, FIFO or socket.
    SpecialFile {
        entry: String,
    },
    /// The same name twice in the archive.
    DuplicateEntry {
        entry: String,
    },
    TooManyEntries {
        count: u64,
        limit: u64,
    },
    /// An entry expands more than the allowed ratio (a zip bomb).
    DecompressionRatio {
        entry: String,
        ratio: u64,
        limit: u64,
    },
    /// The entries read so far expand more than the allowed ratio times the
    /// whole package (many small entries, each under the per-entry grace).
    PackageRatio {
        entry: String,
        inflated: u64,
        package: u64,
        limit: u64,
    },
    /// Entries expand to more than the allowed total.
    UncompressedSize {
        entry: Option<String>,
        total: u64,
        limit: u64,
    },
    MissingManifest,
    /// No manifest, but DataWorks' migration layout (a `SPEC.FORMAT`
    /// marker): a package of DataWorks' own tooling, which `kubectl migrate
    /// pack` converts.
    MigrationLayout {
        entry: String,
    },
    InvalidManifest {
        detail: String,
    },
    UnknownFormatVersion {
        found: String,
    },
    DigestMismatch {
        entry: String,
        expected: String,
        actual: String,
    },
    SizeMismatch {
        entry: String,
        expected: u64,
        actual: u64,
    },
    /// An object's document or file is listed in the index but absent.
    MissingObject {
        object: String,
        entry: String,
    },
    /// An archive entry nothing in the index lists.
    UnindexedEntry {
        entry: String,
    },
    /// The index lists the same path twice.
    DuplicateIndexPath {
        entry: String,
    },
    /// An object with an empty name.
    EmptyName {
        object_type: String,
        entry: String,
    },
    /// An object whose name is longer than [`MAX_NAME_CHARS`].
    NameTooLong {
        object_type: String,
        entry: String,
        chars: usize,
    },
    /// A package (import) name outside the allowed characters.
    InvalidPackageName {
        name: String,
        detail: String,
    },
    DuplicateName {
        object_type: String,
        name: String,
    },
    /// Two tasks declare the same output name.
    DuplicateOutput {
        output: String,
        tasks: Vec<String>,
    },
    /// Tasks that depend on each other in a loop (names in order, first repeated).
    DependencyCycle {
        cycle: Vec<String>,
    },
    UnknownType {
        name: String,
        found: String,
    },
    /// An object authored in the new-version Data Studio.
    NewStudioObject {
        object_type: String,
        name: String,
    },
    /// A spec document that is not valid YAML/JSON.
    InvalidSpec {
        entry: String,
        line: Option<usize>,
        column: Option<usize>,
        detail: String,
    },
    /// A document that does not describe the object the index says it does.
    SpecMismatch {
        entry: String,
        detail: String,
    },
    /// A FlowSpec document Ferry cannot read faithfully: a layout it does
    /// not read, a reference or dependency that resolves to nothing, an
    /// unknown dependency type (`rule` is the FlowSpec issue's code).
    FlowSpec {
        entry: String,
        rule: &'static str,
        detail: String,
    },
    /// A YAML document with an anchor or alias.
    YamlAlias {
        entry: String,
        line: Option<usize>,
        column: Option<usize>,
    },
    /// A document nested deeper than [`crate::yaml::MAX_DEPTH`].
    NestingDepth {
        entry: String,
        limit: usize,
    },
    /// An entry larger than what may be read into memory for its kind.
    EntrySize {
        entry: String,
        detail: String,
    },
    /// Documents and spec fields kept for all objects exceed
    /// [`Limits::max_retained_bytes`].
    RetainedSize {
        entry: String,
        total: u64,
        limit: u64,
    },
}

impl Problem {
    /// The rule's stable code.
    pub fn rule(&self) -> &'static str {
        match self {
            Problem::Oversize { .. } => "oversize",
            Problem::CorruptArchive { .. } => "corrupt-archive",
            Problem::PathEscape { .. } => "path-escape",
            Problem::AbsolutePath { .. } => "absolute-path",
            Problem::InvalidEntryName { .. } => "invalid-entry-name",
            Problem::Symlink { .. } => "symlink",
            Problem::SpecialFile { .. } => "special-file",
            Problem::DuplicateEntry { .. } => "duplicate-entry",
            Problem::TooManyEntries { .. } => "too-many-entries",
            Problem::DecompressionRatio { .. } | Problem::PackageRatio { .. } => {
                "decompression-ratio"
            }
            Problem::UncompressedSize { .. } => "uncompressed-size",
            Problem::MissingManifest => "missing-manifest",
            Problem::MigrationLayout { .. } => "dataworks-migration-layout",
            Problem::InvalidManifest { .. } => "invalid-manifest",
            Problem::UnknownFormatVersion { .. } => "unknown-format-version",
            Problem::DigestMismatch { .. } => "digest-mismatch",
            Problem::SizeMismatch { .. } => "size-mismatch",
            Problem::MissingObject { .. } => "missing-object",
            Problem::UnindexedEntry { .. } => "unindexed-entry",
            Problem::DuplicateIndexPath { .. } => "duplicate-index-path",
            Problem::EmptyName { .. } => "empty-name",
            Problem::NameTooLong { .. } => "name-too-long",
            Problem::InvalidPackageName { .. } => "invalid-package-name",
            Problem::DuplicateName { .. } => "duplicate-name",
            Problem::DuplicateOutput { .. } => "duplicate-output",
            Problem::DependencyCycle { .. } => "dependency-cycle",
            Problem::UnknownType { .. } => "unknown-type",
            Problem::NewStudioObject { .. } => "new-studio-object",
            Problem::InvalidSpec { .. } => "invalid-spec",
            Problem::SpecMismatch { .. } => "spec-mismatch",
            Problem::FlowSpec { rule, .. } => rule,
            Problem::YamlAlias { .. } => "yaml-alias",
            Problem::NestingDepth { .. } => "nesting-depth",
            Problem::EntrySize { .. } => "entry-size",
            Problem::RetainedSize { .. } => "retained-size",
        }
    }

    /// Every rule code, for documentation and exhaustive tests.
    pub const RULES: [&'static str; 34] = [
        "oversize",
        "corrupt-archive",
        "path-escape",
        "absolute-path",
        "invalid-entry-name",
        "symlink",
        "special-file",
        "duplicate-entry",
        "too-many-entries",
        "decompression-ratio",
        "uncompressed-size",
        "missing-manifest",
        "dataworks-migration-layout",
        "invalid-manifest",
        "unknown-format-version",
        "digest-mismatch",
        "size-mismatch",
        "missing-object",
        "unindexed-entry",
        "duplicate-index-path",
        "empty-name",
        "invalid-package-name",
        "duplicate-name",
        "duplicate-output",
        "dependency-cycle",
        "unknown-type",
        "new-studio-object",
        "invalid-spec",
        "spec-mismatch",
        "yaml-alias",
        "nesting-depth",
        "entry-size",
        "retained-size",
        "name-too-long",
    ];
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Oversize { size, limit } => write!(
                f,
                "package: {size} bytes is larger than the limit of {limit} bytes"
            ),
            Problem::CorruptArchive {
                entry: Some(e),
                detail,
            } => {
                write!(f, "entry {e:?}: cannot be read: {detail}")
            }
            Problem::CorruptArchive {
                entry: None,
                detail,
            } => {
                write!(f, "package: not a readable zip archive: {detail}")
            }
            Problem::PathEscape { entry } => write!(f, "entry {entry:?}: path escapes the package"),
            Problem::AbsolutePath { entry } => write!(f, "entry {entry:?}: path is absolute"),
            Problem::InvalidEntryName { entry, detail } => {
                write!(f, "entry {entry:?}: invalid name: {detail}")
            }
            Problem::Symlink { entry } => write!(f, "entry {entry:?}: is a symbolic link"),
            Problem::SpecialFile { entry } => {
                write!(f, "entry {entry:?}: is not a regular file or directory")
            }
            Problem::DuplicateEntry { entry } => {
                write!(f, "entry {entry:?}: appears more than once in the archive")
            }
            Problem::TooManyEntries { count, limit } => write!(
                f,
                "package: {count} entries is more than the limit of {limit}"
            ),
            Problem::DecompressionRatio {
                entry,
                ratio,
                limit,
            } => write!(
                f,
                "entry {entry:?}: expands {ratio} times its compressed size, more than the limit of {limit} (a zip bomb?)"
            ),
            Problem::PackageRatio {
                entry,
                inflated,
                package,
                limit,
            } => write!(
                f,
                "entry {entry:?}: the entries read up to here expand to {inflated} bytes, more than {limit} times the {package}-byte package (a zip bomb of many small entries?)"
            ),
            Problem::UncompressedSize {
                entry,
                total,
                limit,
            } => {
                match entry {
                    Some(e) => write!(f, "entry {e:?}: ")?,
                    None => write!(f, "package: ")?,
                }
                write!(
                    f,
                    "entries expand to at least {total} bytes, more than the limit of {limit}"
                )
            }
            Problem::MissingManifest => write!(
                f,
                "entry \"{}\": missing: a package must have its index at the root",
                crate::manifest::MANIFEST_PATH
            ),
            Problem::MigrationLayout { entry } => write!(
                f,
                "entry {entry:?}: this is a package in the layout DataWorks' migration tooling writes (SPEC.FORMAT, *.schedule.json), not a Ferry package (no \"{}\"): convert it with `kubectl migrate pack FILE.zip -o package.zip` and upload the result",
                crate::manifest::MANIFEST_PATH
            ),
            Problem::InvalidManifest { detail } => write!(
                f,
                "entry \"{}\": invalid: {detail}",
                crate::manifest::MANIFEST_PATH
            ),
            Problem::UnknownFormatVersion { found } => write!(
                f,
                "entry \"{}\": formatVersion {found} is not supported (this reader knows {})",
                crate::manifest::MANIFEST_PATH,
                crate::manifest::FORMAT_VERSION
            ),
            Problem::DigestMismatch {
                entry,
                expected,
                actual,
            } => write!(
                f,
                "entry {entry:?}: SHA-256 is {actual}, the index says {expected}"
            ),
            Problem::SizeMismatch {
                entry,
                expected,
                actual,
            } => write!(
                f,
                "entry {entry:?}: size is {actual} bytes, the index says {expected}"
            ),
            Problem::MissingObject { object, entry } => write!(
                f,
                "{object}: entry {entry:?} is listed in the index but not in the archive"
            ),
            Problem::UnindexedEntry { entry } => {
                write!(
                    f,
                    "entry {entry:?}: present in the archive but not in the index"
                )
            }
            Problem::DuplicateIndexPath { entry } => {
                write!(f, "entry {entry:?}: listed more than once in the index")
            }
            Problem::EmptyName { object_type, entry } => {
                write!(f, "{object_type} at entry {entry:?}: the name is empty")
            }
            Problem::NameTooLong {
                object_type,
                entry,
                chars,
            } => write!(
                f,
                "{object_type} at entry {entry:?}: the name has {chars} characters, more than the limit of {MAX_NAME_CHARS}"
            ),
            Problem::InvalidPackageName { name, detail } => {
                write!(f, "package name {name:?}: {detail}")
            }
            Problem::DuplicateName { object_type, name } => write!(
                f,
                "{object_type} {name:?}: more than one object of this type has this name"
            ),
            Problem::DuplicateOutput { output, tasks } => write!(
                f,
                "output {output:?}: produced by more than one task ({})",
                quoted(tasks)
            ),
            Problem::DependencyCycle { cycle } => write!(
                f,
                "ScheduledTask {:?}: dependency cycle {}",
                cycle.first().map(String::as_str).unwrap_or(""),
                cycle
                    .iter()
                    .map(|c| format!("{c:?}"))
                    .collect::<Vec<_>>()
                    .join(" -> ")
            ),
            Problem::UnknownType { name, found } => {
                write!(f, "object {name:?}: unknown type {found:?}")
            }
            Problem::NewStudioObject { object_type, name } => write!(
                f,
                "{object_type} {name:?}: authored in the new-version Data Studio, which cannot be imported"
            ),
            Problem::InvalidSpec {
                entry,
                line,
                column,
                detail,
            } => {
                write!(f, "entry {entry:?}: ")?;
                if let (Some(l), Some(c)) = (line, column) {
                    write!(f, "line {l}, column {c}: ")?;
                }
                write!(f, "{detail}")
            }
            Problem::SpecMismatch { entry, detail } => write!(f, "entry {entry:?}: {detail}"),
            Problem::FlowSpec { entry, detail, .. } => write!(f, "entry {entry:?}: {detail}"),
            Problem::YamlAlias {
                entry,
                line,
                column,
            } => {
                write!(f, "entry {entry:?}: ")?;
                if let (Some(l), Some(c)) = (line, column) {
                    write!(f, "line {l}, column {c}: ")?;
                }
                write!(
                    f,
                    "YAML anchors (&name), aliases (*name) and merge keys (<<) are not allowed in a package document: write the values out"
                )
            }
            Problem::NestingDepth { entry, limit } => {
                write!(f, "entry {entry:?}: nested more than {limit} levels deep")
            }
            Problem::EntrySize { entry, detail } => {
                write!(f, "entry {entry:?}: too large: {detail}")
            }
            Problem::RetainedSize {
                entry,
                total,
                limit,
            } => write!(
                f,
                "entry {entry:?}: the package's documents add up to at least {total} bytes kept in memory, more than the limit of {limit}"
            ),
        }?;
        write!(f, " (rule: {})", self.rule())
    }
}

fn quoted(v: &[String]) -> String {
    v.iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every problem verification found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("package refused: {}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct VerifyError {
    pub problems: Vec<Problem>,
}

impl VerifyError {
    /// The distinct rule codes, in order of first appearance.
    pub fn rules(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for p in &self.problems {
            if !out.contains(&p.rule()) {
                out.push(p.rule());
            }
        }
        out
    }
}

/// The seed's rule for an import package name: letters, digits, `_` and `.`
/// only (and not empty; at most 128 characters).
pub fn validate_package_name(name: &str) -> Result<(), Problem> {
    let bad = |detail: &str| {
        Err(Problem::InvalidPackageName {
            name: name.to_string(),
            detail: detail.to_string(),
        })
    };
    if name.is_empty() {
        return bad("must not be empty");
    }
    if name.chars().count() > 128 {
        return bad("must be at most 128 characters");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.'))
    {
        return bad(&format!(
            "{c:?} is not allowed: use letters, digits, underscores (_) and periods (.)"
        ));
    }
    Ok(())
}

/// Checks an archive entry name (or an index path): relative, forward
/// slashes only, no `..` segments, no control characters.
pub fn check_entry_path(entry: &str) -> Option<Problem> {
    let e = || entry.to_string();
    if entry.is_empty() {
        return Some(Problem::InvalidEntryName {
            entry: e(),
            detail: "empty name".into(),
        });
    }
    let b = entry.as_bytes();
    let drive = b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':';
    if entry.starts_with('/') || entry.starts_with('\\') || drive {
        return Some(Problem::AbsolutePath { entry: e() });
    }
    if entry.contains('\\') || entry.split('/').any(|seg| seg == "..") {
        return Some(Problem::PathEscape { entry: e() });
    }
    if entry.chars().any(char::is_control) {
        return Some(Problem::InvalidEntryName {
            entry: e(),
            detail: "control characters".into(),
        });
    }
    None
}

/// The dependency view of one scheduled task.
#[derive(Clone, Debug)]
pub struct TaskDeps<'a> {
    pub name: &'a str,
    pub inputs: Vec<&'a str>,
    pub outputs: Vec<&'a str>,
}

/// Dependency rules among the package's tasks: an output produced by more
/// than one task (`duplicate-output`), and cycles among in-package tasks,
/// reported once per strongly connected component naming one loop through
/// it (`dependency-cycle`).
///
/// An input that no task of the package produces is not a problem here:
/// Custom and Incremental exports leave upstream tasks out, and the seed's
/// dependency mapping exists for exactly those references. The import's
/// plan maps them and warns about one that resolves to nothing in the
/// destination.
pub fn check_dependencies(tasks: &[TaskDeps<'_>]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut producers: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, t) in tasks.iter().enumerate() {
        for o in &t.outputs {
            let p = producers.entry(o).or_default();
            // Tasks are visited in order, so a repeat of this task is last.
            if p.last() != Some(&i) {
                p.push(i);
            }
        }
    }
    for (output, p) in &producers {
        if p.len() > 1 {
            problems.push(Problem::DuplicateOutput {
                output: output.to_string(),
                tasks: p.iter().map(|&i| tasks[i].name.to_string()).collect(),
            });
        }
    }
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
    for (i, t) in tasks.iter().enumerate() {
        // Each distinct input once: a task may repeat one a million times.
        let mut seen = std::collections::HashSet::with_capacity(t.inputs.len());
        for input in t.inputs.iter().filter(|x| seen.insert(**x)) {
            // Only the first producer: an output with several is refused
            // above already, and an edge to each would make the graph
            // quadratic (every reader times every producer). An input no
            // task of the package produces is a dependency outside the
            // package: mapped at import and warned about there, never
            // refused here (Custom and Incremental exports have them).
            if let Some(p) = producers.get(input) {
                edges[i].push(p[0]);
            }
        }
    }
    // Several inputs may come from one task: deduplicated by sorting, not by
    // `contains` per edge (untrusted input must not cost quadratic time).
    for e in &mut edges {
        e.sort_unstable();
        e.dedup();
    }
    for scc in strongly_connected(&edges) {
        let cyclic = scc.len() > 1 || edges[scc[0]].binary_search(&scc[0]).is_ok();
        if cyclic {
            let cycle = cycle_through(&edges, &scc);
            problems.push(Problem::DependencyCycle {
                cycle: cycle.iter().map(|&i| tasks[i].name.to_string()).collect(),
            });
        }
    }
    problems
}

/// Tarjan's algorithm, iterative (packages may hold many thousand tasks).
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    let mut next = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut call: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut ei)) = call.last_mut() {
            if let Some(&w) = edges[v].get(*ei) {
                *ei += 1;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                call.pop();
                if let Some(&(u, _)) = call.last() {
                    low[u] = low[u].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut comp = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    comp.sort_unstable();
                    out.push(comp);
                }
            }
        }
    }
    out.sort();
    out
}

/// A loop through the component's first node, by breadth-first search
/// inside the component; the first node is repeated at the end.
fn cycle_through(edges: &[Vec<usize>], scc: &[usize]) -> Vec<usize> {
    let start = scc[0];
    if edges[start].binary_search(&start).is_ok() {
        return vec![start, start];
    }
    let in_scc: std::collections::HashSet<usize> = scc.iter().copied().collect();
    let mut parent: HashMap<usize, usize> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in &edges[v] {
            if w == start {
                let mut path = vec![start];
                let mut cur = v;
                while cur != start {
                    path.push(cur);
                    cur = parent[&cur];
                }
                path.push(start);
                let n = path.len();
                path[1..n - 1].reverse();
                return path;
            }
            if in_scc.contains(&w) && !parent.contains_key(&w) && w != start {
                parent.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    let mut all = scc.to_vec();
    all.push(start);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task<'a>(name: &'a str, inputs: &[&'a str], outputs: &[&'a str]) -> TaskDeps<'a> {
        TaskDeps {
            name,
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
        }
    }

    #[test]
    fn package_names_follow_the_seed_rule() {
        assert!(validate_package_name("sales.q4_import2").is_ok());
        for bad in ["", "sales-q4", "销售", "a b", "x/y"] {
            let p = validate_package_name(bad).unwrap_err();
            assert_eq!(p.rule(), "invalid-package-name", "{bad}");
        }
        assert!(validate_package_name(&"a".repeat(129)).is_err());
    }

    #[test]
    fn entry_paths_are_classified() {
        let rule = |p: &str| check_entry_path(p).map(|p| p.rule());
        assert_eq!(rule("tasks/a/spec.yaml"), None);
        assert_eq!(rule("任务/加载/spec.yaml"), None);
        assert_eq!(rule("../evil"), Some("path-escape"));
        assert_eq!(rule("a/../../evil"), Some("path-escape"));
        assert_eq!(rule("a\\b"), Some("path-escape"));
        assert_eq!(rule("/etc/passwd"), Some("absolute-path"));
        assert_eq!(rule("C:/x"), Some("absolute-path"));
        assert_eq!(rule("\\\\host\\x"), Some("absolute-path"));
        assert_eq!(rule("a\u{0}b"), Some("invalid-entry-name"));
        assert_eq!(rule(""), Some("invalid-entry-name"));
        // A name merely containing dots is fine.
        assert_eq!(rule("a/..b/c..d"), None);
    }

    #[test]
    fn display_names_entry_and_rule() {
        let p = Problem::PathEscape {
            entry: "../evil".into(),
        };
        assert_eq!(
            p.to_string(),
            "entry \"../evil\": path escapes the package (rule: path-escape)"
        );
    }

    #[test]
    fn inputs_produced_outside_the_package_are_not_refused() {
        // Custom and Incremental exports: the upstream was not selected.
        let tasks = [
            task("a", &["sales_dev_root"], &["sales_dev.a"]),
            task(
                "b",
                &["sales_dev.a", "other.x", "sales_dev.not_exported"],
                &["sales_dev.b"],
            ),
        ];
        assert!(check_dependencies(&tasks).is_empty());
    }

    #[test]
    fn cycles_are_named() {
        let tasks = [
            task("a", &["p.c"], &["p.a"]),
            task("b", &["p.a"], &["p.b"]),
            task("c", &["p.b"], &["p.c"]),
            task("d", &["p.c"], &["p.d"]),
            task("self", &["p.self"], &["p.self"]),
        ];
        let p = check_dependencies(&tasks);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(
            p[0],
            Problem::DependencyCycle {
                cycle: vec!["a".into(), "c".into(), "b".into(), "a".into()]
            }
        );
        assert_eq!(
            p[1],
            Problem::DependencyCycle {
                cycle: vec!["self".into(), "self".into()]
            }
        );
        assert!(
            p[0].to_string()
                .contains("\"a\" -> \"c\" -> \"b\" -> \"a\"")
        );
    }

    #[test]
    fn duplicate_outputs_are_reported() {
        let tasks = [task("a", &[], &["p.x"]), task("b", &[], &["p.x"])];
        let p = check_dependencies(&tasks);
        assert_eq!(p[0].rule(), "duplicate-output");
    }

    #[test]
    fn long_chains_do_not_overflow_the_stack() {
        let names: Vec<String> = (0..50_000).map(|i| format!("t{i}")).collect();
        let outs: Vec<String> = (0..50_000).map(|i| format!("p.t{i}")).collect();
        let tasks: Vec<TaskDeps<'_>> = (0..50_000)
            .map(|i| TaskDeps {
                name: &names[i],
                inputs: if i > 0 {
                    vec![outs[i - 1].as_str()]
                } else {
                    vec![]
                },
                outputs: vec![outs[i].as_str()],
            })
            .collect();
        assert!(check_dependencies(&tasks).is_empty());
    }
}
