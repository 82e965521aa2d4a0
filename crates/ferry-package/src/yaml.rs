//! Parsing untrusted YAML and JSON documents into [`serde_json::Value`],
//! within bounds a hostile package cannot get around.
//!
//! Every document of a package comes from whoever uploaded it, and the
//! operator parses it inside a pod with a memory limit. A YAML document of a
//! few KiB can describe billions of values through anchors and aliases (a
//! "billion laughs" or its wide-anchor form: `a: &a [0, 0, ...]`,
//! `b: [*a, *a, ...]`), so this module **refuses anchors and aliases
//! outright**: FlowSpec documents written by DataWorks and by Ferry never
//! use them, and refusing is simpler to reason about than any expansion
//! budget. Nesting depth and node count are bounded too.
//!
//! YAML is read with `serde-saphyr` (a maintained, pure-Rust YAML 1.2
//! deserializer that kube itself uses; `serde_yaml` is deprecated), whose
//! parser-level [`serde_saphyr::Budget`] stops at the first anchor or alias
//! *event*, before anything is materialised. JSON is read with `serde_json`
//! (no aliases in JSON) and its depth checked against the same limit.

use serde_json::Value;

/// Deepest nesting of mappings and sequences a document may have. Real
/// FlowSpec documents stay under 15; 64 leaves room and keeps recursive
/// consumers (serde_json's own limit is 128) far from their limits.
pub const MAX_DEPTH: usize = 64;

/// Most nodes (scalars, mappings, sequences) one YAML document may have.
/// A 1 MiB document of real FlowSpec has well under 100 000.
pub const MAX_NODES: usize = 250_000;

/// What kind of refusal, so callers can report a rule per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not valid YAML/JSON, or not a mapping at the top.
    Syntax,
    /// A YAML anchor (`&x`) or alias (`*x`).
    Alias,
    /// Nested deeper than [`MAX_DEPTH`].
    Depth,
    /// More nodes or scalar bytes than allowed.
    Size,
}

/// A document that was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    /// 1-based, when known.
    pub line: Option<usize>,
    /// 1-based, when known.
    pub column: Option<usize>,
    /// What is wrong, without the location (callers print it their way).
    pub message: String,
}

fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    // Zero anchors and zero aliases: the first `&x` or `*x` event stops the
    // parse before any node is built from it.
    budget.max_anchors = 0;
    budget.max_aliases = 0;
    budget.max_merge_keys = 0;
    budget.max_depth = MAX_DEPTH;
    // One more than the depth budget, so that deep flow collections are
    // reported as too deep rather than as a syntax error.
    budget.flow_nesting_limit = MAX_DEPTH + 1;
    budget.max_nodes = MAX_NODES;
    budget.max_documents = 1;
    budget.max_inclusion_depth = 0;
    let mut o = serde_saphyr::Options::default();
    o.budget = Some(budget);
    // Plain one-line messages: status and events show them, not a terminal.
    o.with_snippet = false;
    // Read scalars as serde_yaml 0.9 (YAML 1.2 core) did, which packages
    // already written rely on: `064152` (an account ID) and `1_000` stay
    // text, `yes`/`no`/`on`/`off` are not booleans.
    o.leading_zero_numbers_as_strings = true;
    o.underscored_numbers_as_strings = true;
    o.strict_booleans = true;
    o
}

/// Parses one YAML document (anchors and aliases refused, depth and size
/// bounded).
pub fn from_slice(bytes: &[u8]) -> Result<Value, Error> {
    serde_saphyr::from_slice_with_options::<Value>(bytes, options()).map_err(|e| {
        let loc = e.location();
        let line = loc.map(|l| l.line() as usize).filter(|&l| l > 0);
        let column = loc.map(|l| l.column() as usize).filter(|&c| c > 0);
        let (kind, message) = match &e {
            serde_saphyr::Error::Budget { breach, .. } => classify(breach),
            // The parser's own nesting guard (flow collections) can fire
            // before the budget sees the depth.
            _ if e.to_string().contains("recursion limit exceeded") => (
                ErrorKind::Depth,
                format!("nested more than {MAX_DEPTH} levels deep"),
            ),
            _ => {
                let msg = strip_location(&e.to_string());
                let msg = if msg.contains("expected a string")
                    || msg.contains("expected string scalar")
                    || msg.contains("invalid type: map")
                    || msg.contains("key must be")
                {
                    format!(
                        "{msg} (an unquoted `{{{{...}}}}` reference is a YAML mapping, not text: quote it)"
                    )
                } else {
                    msg
                };
                (ErrorKind::Syntax, msg)
            }
        };
        Error {
            kind,
            line,
            column,
            message,
        }
    })
}

fn classify(breach: &serde_saphyr::budget::BudgetBreach) -> (ErrorKind, String) {
    use serde_saphyr::budget::BudgetBreach as B;
    match breach {
        B::Aliases { .. }
        | B::Anchors { .. }
        | B::MergeKeys { .. }
        | B::AliasAnchorRatio { .. } => (
            ErrorKind::Alias,
            "YAML anchors (&name), aliases (*name) and merge keys (<<) are not allowed in a package document: write the values out"
                .into(),
        ),
        B::Depth { .. } => (
            ErrorKind::Depth,
            format!("nested more than {MAX_DEPTH} levels deep"),
        ),
        B::Documents { .. } => (
            ErrorKind::Syntax,
            "more than one YAML document (`---`) in one file".into(),
        ),
        other => (
            ErrorKind::Size,
            format!("the document is too large to read ({other:?})"),
        ),
    }
}

/// Parses a JSON document and bounds its depth like a YAML one.
pub fn from_json_slice(bytes: &[u8]) -> Result<Value, Error> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| Error {
        kind: ErrorKind::Syntax,
        line: Some(e.line()),
        column: Some(e.column()),
        message: strip_location(&e.to_string()),
    })?;
    if depth(&value) > MAX_DEPTH {
        return Err(Error {
            kind: ErrorKind::Depth,
            line: None,
            column: None,
            message: format!("nested more than {MAX_DEPTH} levels deep"),
        });
    }
    Ok(value)
}

/// A package document: JSON when `file` ends in `.json`, YAML otherwise;
/// it must be a mapping.
pub fn parse_document(file: &str, bytes: &[u8]) -> Result<Value, Error> {
    let value = if file.to_ascii_lowercase().ends_with(".json") {
        from_json_slice(bytes)?
    } else {
        from_slice(bytes)?
    };
    if !value.is_object() {
        return Err(Error {
            kind: ErrorKind::Syntax,
            line: None,
            column: None,
            message: "a FlowSpec document must be a mapping".into(),
        });
    }
    Ok(value)
}

/// Nesting depth of a value (a scalar is 0), without recursion: the value
/// may come straight from a hostile document.
pub fn depth(value: &Value) -> usize {
    let mut max = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, d)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(o) => Box::new(o.values()),
            _ => continue,
        };
        max = max.max(d + 1);
        stack.extend(children.map(|c| (c, d + 1)));
    }
    max
}

/// Parsers append " at line X column Y"; callers print the location their way.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_documents_parse() {
        let v =
            from_slice(b"version: 1.1.0\nspec:\n  nodes:\n    - id: a\n      name: x\n").unwrap();
        assert_eq!(v["spec"]["nodes"][0]["name"], "x");
        assert_eq!(v["version"], "1.1.0");
    }

    #[test]
    fn anchors_and_aliases_are_refused_with_their_line() {
        for (doc, line) in [
            ("a: &x [1, 2]\nb: *x\n", 1),
            ("a: &x 1\n", 1),
            ("base: &b {k: 1}\nother:\n  <<: *b\n", 1),
            ("other:\n  <<: {k: 1}\n", 2),
        ] {
            let e = from_slice(doc.as_bytes()).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Alias, "{doc}: {e:?}");
            assert_eq!(e.line, Some(line), "{doc}: {e:?}");
            assert!(e.message.contains("anchors"), "{e:?}");
        }
    }

    #[test]
    fn the_wide_anchor_bomb_is_refused_before_expanding() {
        // 3 000 zeros under one anchor, 1 500 aliases: ~12 KiB of text that
        // serde_yaml expanded into 4.5 million values.
        let mut doc = String::from("a: &a [");
        doc.push_str(&vec!["0"; 3000].join(","));
        doc.push_str("]\nb: [");
        doc.push_str(&vec!["*a"; 1500].join(","));
        doc.push_str("]\n");
        let e = from_slice(doc.as_bytes()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Alias);
    }

    #[test]
    fn depth_is_bounded_at_the_limit() {
        let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(
            depth(&from_slice(nested(MAX_DEPTH).as_bytes()).unwrap()),
            MAX_DEPTH
        );
        let e = from_slice(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Depth, "{e:?}");
        assert!(from_json_slice(nested(MAX_DEPTH).as_bytes()).is_ok());
        let e = from_json_slice(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Depth);
        // Far past serde_json's own recursion limit: an error, not a crash.
        let e = from_json_slice(nested(100_000).as_bytes()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Syntax);
        let e = from_slice(nested(100_000).as_bytes()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Depth, "{e:?}");
    }

    #[test]
    fn scalars_read_as_serde_yaml_read_them() {
        let v =
            from_slice(b"owner: 064152\nn: 1_000\nb: yes\nt: true\ni: 42\nf: 0.5\nz: ~\n").unwrap();
        assert_eq!(v["owner"], "064152");
        assert_eq!(v["n"], "1_000");
        assert_eq!(v["b"], "yes");
        assert_eq!(v["t"], true);
        assert_eq!(v["i"], 42);
        assert_eq!(v["f"], 0.5);
        assert!(v["z"].is_null());
    }

    #[test]
    fn node_count_is_bounded() {
        let doc = format!("a: [{}]\n", vec!["0"; MAX_NODES + 1].join(","));
        let e = from_slice(doc.as_bytes()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Size, "{e:?}");
    }

    #[test]
    fn syntax_errors_carry_line_and_column_and_the_quoting_hint() {
        let e = from_slice(b"a:\n  b: {{x}}\n").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Syntax);
        assert_eq!(e.line, Some(2), "{e:?}");
        assert!(e.column.is_some(), "{e:?}");
        assert!(e.message.contains("quote it"), "{e:?}");
        assert!(!e.message.contains(" at line "), "{e:?}");
    }

    #[test]
    fn documents_must_be_mappings() {
        let e = parse_document("x.yaml", b"- 1\n").unwrap_err();
        assert!(e.message.contains("mapping"));
        let e = parse_document("x.json", b"[1]").unwrap_err();
        assert!(e.message.contains("mapping"));
        assert!(parse_document("x.JSON", b"{\"a\": 1}").is_ok());
    }
}
