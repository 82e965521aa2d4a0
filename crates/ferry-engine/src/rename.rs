//! Dependency mapping: replacing a source project name with a new one.
//!
//! The seed: "the system replaces all occurrences of the source workspace
//! name" in code, parameters and output names. Taken literally that would
//! also rewrite `sales_dev_backup` or `xsales_dev`, which are other
//! identifiers that merely contain the name, and break them. So a project
//! name is replaced only where it is a whole identifier: a maximal run of
//! identifier characters (letters of any script, digits, `_`) equal to the
//! source project. `sales_dev.orders`, `odps.sales_dev.orders`,
//! `${sales_dev}`, `project=sales_dev` are replaced; `sales_dev_backup`,
//! `xsales_dev`, `Sales_Dev` (project names are case-sensitive here) are not.
//!
//! All mappings apply in one pass, so `a→b, b→c` never chains `a` into `c`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Project renames, applied as whole identifiers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Renamer {
    map: BTreeMap<String, String>,
}

fn is_ident(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

impl Renamer {
    /// A renamer for `(source, new)` pairs. Identity pairs are dropped.
    pub fn new<I, S, T>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (S, T)>,
        S: Into<String>,
        T: Into<String>,
    {
        let map = pairs
            .into_iter()
            .map(|(s, t)| (s.into(), t.into()))
            .filter(|(s, t)| !s.is_empty() && s != t)
            .collect();
        Renamer { map }
    }

    /// Whether there is nothing to rename.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The renames, source to new.
    pub fn pairs(&self) -> &BTreeMap<String, String> {
        &self.map
    }

    /// `text` with every whole-identifier occurrence of a source project
    /// replaced. Borrow-free when nothing matches would be nicer, but the
    /// callers rebuild the spec anyway.
    pub fn apply(&self, text: &str) -> String {
        if self.map.is_empty() {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while !rest.is_empty() {
            // Copy the non-identifier prefix.
            let start = rest.find(is_ident).unwrap_or(rest.len());
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            if rest.is_empty() {
                break;
            }
            let end = rest.find(|c| !is_ident(c)).unwrap_or(rest.len());
            let word = &rest[..end];
            out.push_str(self.map.get(word).map(String::as_str).unwrap_or(word));
            rest = &rest[end..];
        }
        out
    }

    /// Applies [`Self::apply`] to a string field of `spec`, if present.
    pub fn apply_field(&self, spec: &mut Map<String, Value>, key: &str) {
        if let Some(Value::String(s)) = spec.get_mut(key) {
            *s = self.apply(s);
        }
    }

    /// Applies [`Self::apply`] to every string of a list field of `spec`.
    pub fn apply_list(&self, spec: &mut Map<String, Value>, key: &str) {
        if let Some(Value::Array(items)) = spec.get_mut(key) {
            for item in items {
                if let Value::String(s) = item {
                    *s = self.apply(s);
                }
            }
        }
    }

    /// Applies [`Self::apply`] to `spec.script.content`.
    pub fn apply_script(&self, spec: &mut Map<String, Value>) {
        if let Some(Value::Object(script)) = spec.get_mut("script") {
            self.apply_field(script, "content");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r() -> Renamer {
        Renamer::new([("sales_dev", "sales_prod")])
    }

    #[test]
    fn replaces_qualified_and_bounded_occurrences() {
        let r = r();
        assert_eq!(r.apply("sales_dev.orders"), "sales_prod.orders");
        assert_eq!(r.apply("odps.sales_dev.orders"), "odps.sales_prod.orders");
        assert_eq!(r.apply("project=sales_dev"), "project=sales_prod");
        assert_eq!(r.apply("${sales_dev}"), "${sales_prod}");
        assert_eq!(r.apply("sales_dev"), "sales_prod");
        assert_eq!(r.apply("`sales_dev`.`t`"), "`sales_prod`.`t`");
        assert_eq!(
            r.apply("INSERT INTO sales_dev.a SELECT * FROM sales_dev.b;\n-- sales_dev"),
            "INSERT INTO sales_prod.a SELECT * FROM sales_prod.b;\n-- sales_prod"
        );
    }

    #[test]
    fn leaves_longer_identifiers_alone() {
        let r = r();
        for s in [
            "sales_dev_backup.orders",
            "xsales_dev.orders",
            "_sales_dev",
            "sales_dev2",
            "2sales_dev",
            "Sales_Dev.orders",
            "订单sales_dev",
            "sales_dev订单",
            "sales_devs",
        ] {
            assert_eq!(r.apply(s), s, "{s}");
        }
    }

    #[test]
    fn table_named_like_the_project_is_a_whole_identifier_too() {
        // `other.sales_dev` is bounded by '.', so it is replaced: a name that
        // equals the project name is indistinguishable from the project.
        assert_eq!(r().apply("other.sales_dev"), "other.sales_prod");
    }

    #[test]
    fn several_mappings_apply_in_one_pass_without_chaining() {
        let r = Renamer::new([("a", "b"), ("b", "c")]);
        assert_eq!(r.apply("a.x b.y"), "b.x c.y");
    }

    #[test]
    fn empty_and_identity_mappings_change_nothing() {
        let r = Renamer::new([("sales_dev", "sales_dev")]);
        assert!(r.is_empty());
        assert_eq!(r.apply("sales_dev.t"), "sales_dev.t");
        assert_eq!(r.apply(""), "");
        assert_eq!(Renamer::default().apply("x"), "x");
    }

    #[test]
    fn unicode_around_matches_is_preserved() {
        assert_eq!(
            r().apply("-- 读取 sales_dev.订单 表"),
            "-- 读取 sales_prod.订单 表"
        );
    }

    #[test]
    fn spec_helpers_touch_only_their_fields() {
        let mut spec = json!({
            "name": "sales_dev",
            "inputs": ["sales_dev.a", "sales_dev_backup.b", 3],
            "script": {"content": "select * from sales_dev.t", "path": "/sales_dev"},
            "guid": "odps.sales_dev.t"
        })
        .as_object()
        .cloned()
        .unwrap();
        let r = r();
        r.apply_list(&mut spec, "inputs");
        r.apply_script(&mut spec);
        r.apply_field(&mut spec, "guid");
        r.apply_field(&mut spec, "missing");
        assert_eq!(
            Value::Object(spec),
            json!({
                "name": "sales_dev",
                "inputs": ["sales_prod.a", "sales_dev_backup.b", 3],
                "script": {"content": "select * from sales_prod.t", "path": "/sales_dev"},
                "guid": "odps.sales_prod.t"
            })
        );
    }
}
