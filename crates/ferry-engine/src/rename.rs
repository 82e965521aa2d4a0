//! Dependency mapping: replacing a source project name with a new one.
//!
//! The seed: "the system replaces all occurrences of the source workspace
//! name in the imported tasks" (code, input parameters, output names). So
//! every occurrence is replaced, also inside longer identifiers: with
//! `sales_dev → sales_prod`, the source's root node `sales_dev_root` becomes
//! `sales_prod_root` and `bak=sales_dev_backup` becomes
//! `bak=sales_prod_backup`. Matching is case-sensitive: `SALES_DEV` is left
//! alone (a replacement must not change text the user did not write in the
//! mapping's spelling).
//!
//! Because a literal replacement can also reach text the user did not mean,
//! every replacement is recorded (field, the word it sat in before and after,
//! how many times), and the plan lists them, so the change is reviewable
//! before the import starts.
//!
//! All mappings apply in one pass, so `a→b, b→c` never chains `a` into `c`;
//! where sources overlap (`sales` and `sales_dev`), the longest one wins. The
//! matching is the `aho-corasick` crate's leftmost-longest search (the crate
//! `regex` is built on): one scan per text whatever the number of mappings.

use std::collections::BTreeMap;

use aho_corasick::{AhoCorasick, MatchKind};
use serde_json::{Map, Value};

/// One recorded replacement: in `field`, the word `before` became `after`,
/// `count` times. A "word" is the run of letters, digits, `_` and `.` around
/// the occurrence (`sales_dev.orders`, `sales_dev_root`), so a replacement
/// inside a 2,000-line script is shown as what changed, not the whole script.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Replacement {
    /// The field of the object's spec, as a path: `script.content`,
    /// `inputs[0]`, `flowSpec.spec.nodes[0].outputs.nodeOutputs[0].data`.
    pub field: String,
    pub before: String,
    pub after: String,
    pub count: u64,
}

/// Longest word recorded on each side of an occurrence; longer runs are cut
/// (with `…`) so one minified line cannot make a record of megabytes.
const MAX_WORD_SIDE: usize = 60;

/// Project renames, applied to every occurrence.
#[derive(Clone, Debug, Default)]
pub struct Renamer {
    map: BTreeMap<String, String>,
    /// The automaton over `map`'s keys, in key order; `None` when empty.
    finder: Option<AhoCorasick>,
    targets: Vec<String>,
}

impl PartialEq for Renamer {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl Eq for Renamer {}

fn is_word(c: char) -> bool {
    c == '_' || c == '.' || c.is_alphanumeric()
}

impl Renamer {
    /// A renamer for `(source, new)` pairs. Identity pairs are dropped.
    pub fn new<I, S, T>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (S, T)>,
        S: Into<String>,
        T: Into<String>,
    {
        let map: BTreeMap<String, String> = pairs
            .into_iter()
            .map(|(s, t)| (s.into(), t.into()))
            .filter(|(s, t)| !s.is_empty() && s != t)
            .collect();
        let finder = (!map.is_empty()).then(|| {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(map.keys())
                .expect("a few project names always build an automaton")
        });
        let targets = map.values().cloned().collect();
        Renamer {
            map,
            finder,
            targets,
        }
    }

    /// Whether there is nothing to rename.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The renames, source to new.
    pub fn pairs(&self) -> &BTreeMap<String, String> {
        &self.map
    }

    /// `text` with every occurrence of a source project replaced.
    pub fn apply(&self, text: &str) -> String {
        match &self.finder {
            Some(f) => f.replace_all(text, &self.targets),
            None => text.to_string(),
        }
    }

    /// Replaces every occurrence in `text` and records what changed under
    /// `field`. Returns `None` (and records nothing) when nothing matched.
    pub fn apply_recorded(
        &self,
        text: &str,
        field: &str,
        out: &mut Vec<Replacement>,
    ) -> Option<String> {
        let f = self.finder.as_ref()?;
        let mut words: BTreeMap<&str, u64> = BTreeMap::new();
        let mut last_word_end = 0;
        for m in f.find_iter(text) {
            if m.start() < last_word_end {
                // Another occurrence inside the word already recorded.
                continue;
            }
            let start = text[..m.start()]
                .char_indices()
                .rev()
                .take_while(|(_, c)| is_word(*c))
                .last()
                .map_or(m.start(), |(i, _)| i);
            let end = text[m.end()..]
                .char_indices()
                .find(|(_, c)| !is_word(*c))
                .map_or(text.len(), |(i, _)| m.end() + i);
            last_word_end = end;
            *words.entry(&text[start..end]).or_default() += 1;
        }
        if words.is_empty() {
            return None;
        }
        for (word, count) in words {
            out.push(Replacement {
                field: field.to_string(),
                before: shorten(word),
                after: shorten(&self.apply(word)),
                count,
            });
        }
        Some(self.apply(text))
    }

    /// Applies the rename to a string field of `spec`, if present.
    pub fn apply_field(
        &self,
        spec: &mut Map<String, Value>,
        key: &str,
        out: &mut Vec<Replacement>,
    ) {
        self.apply_at(spec, key, key, out);
    }

    /// Applies the rename to every string of a list field of `spec`.
    pub fn apply_list(&self, spec: &mut Map<String, Value>, key: &str, out: &mut Vec<Replacement>) {
        if let Some(Value::Array(items)) = spec.get_mut(key) {
            for (i, item) in items.iter_mut().enumerate() {
                if let Value::String(s) = item
                    && let Some(new) = self.apply_recorded(s, &format!("{key}[{i}]"), out)
                {
                    *s = new;
                }
            }
        }
    }

    /// Applies the rename to `spec.script.content` and `spec.script.path`.
    pub fn apply_script(&self, spec: &mut Map<String, Value>, out: &mut Vec<Replacement>) {
        if let Some(Value::Object(script)) = spec.get_mut("script") {
            self.apply_at(script, "content", "script.content", out);
            self.apply_at(script, "path", "script.path", out);
        }
    }

    pub(crate) fn apply_at(
        &self,
        m: &mut Map<String, Value>,
        key: &str,
        field: &str,
        out: &mut Vec<Replacement>,
    ) {
        if let Some(Value::String(s)) = m.get_mut(key)
            && let Some(new) = self.apply_recorded(s, field, out)
        {
            *s = new;
        }
    }

    /// Applies the rename to every string of a FlowSpec document except
    /// names, ids and owners: the values of `name`, `id`, `nodeId` and
    /// `owner` keys and whole `{{reference}}` strings. Names are the
    /// objects' real names, which a rename never changes (so the document
    /// keeps naming the same objects as the interpreted fields); ids and
    /// references tie the document together and must keep matching each
    /// other. Fields are recorded as `flowSpec.<path>`.
    pub fn apply_document(&self, doc: &mut Value, out: &mut Vec<Replacement>) {
        if self.is_empty() {
            return;
        }
        let mut path = String::from("flowSpec");
        self.walk(doc, &mut path, out);
    }

    fn walk(&self, v: &mut Value, path: &mut String, out: &mut Vec<Replacement>) {
        let len = path.len();
        match v {
            Value::String(s) => {
                if ferry_package::flowspec::reference(s).is_some() {
                    return;
                }
                if let Some(new) = self.apply_recorded(s, path, out) {
                    *s = new;
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push_str(&format!("[{i}]"));
                    self.walk(item, path, out);
                    path.truncate(len);
                }
            }
            Value::Object(m) => {
                for (k, item) in m.iter_mut() {
                    if matches!(k.as_str(), "name" | "id" | "nodeId" | "owner") && item.is_string()
                    {
                        continue;
                    }
                    path.push('.');
                    path.push_str(k);
                    self.walk(item, path, out);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
}

/// `word`, cut to [`MAX_WORD_SIDE`] characters at each end.
fn shorten(word: &str) -> String {
    let n = word.chars().count();
    if n <= 2 * MAX_WORD_SIDE {
        return word.to_string();
    }
    let head: String = word.chars().take(MAX_WORD_SIDE).collect();
    let tail: String = word.chars().skip(n - MAX_WORD_SIDE).collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r() -> Renamer {
        Renamer::new([("sales_dev", "sales_prod")])
    }

    #[test]
    fn replaces_every_occurrence_as_the_seed_says() {
        let r = r();
        assert_eq!(r.apply("sales_dev.orders"), "sales_prod.orders");
        assert_eq!(r.apply("odps.sales_dev.orders"), "odps.sales_prod.orders");
        assert_eq!(r.apply("project=sales_dev"), "project=sales_prod");
        assert_eq!(r.apply("${sales_dev}"), "${sales_prod}");
        assert_eq!(r.apply("`sales_dev`.`t`"), "`sales_prod`.`t`");
        assert_eq!(r.apply("sales_dev_root"), "sales_prod_root");
        assert_eq!(r.apply("bak=sales_dev_backup"), "bak=sales_prod_backup");
        assert_eq!(r.apply("xsales_dev2"), "xsales_prod2");
        assert_eq!(
            r.apply("INSERT INTO sales_dev.a SELECT * FROM sales_dev_backup.b;\n-- sales_dev"),
            "INSERT INTO sales_prod.a SELECT * FROM sales_prod_backup.b;\n-- sales_prod"
        );
    }

    #[test]
    fn matching_is_case_sensitive() {
        assert_eq!(
            r().apply("SALES_DEV.t Sales_Dev.t"),
            "SALES_DEV.t Sales_Dev.t"
        );
    }

    #[test]
    fn several_mappings_apply_in_one_pass_without_chaining_longest_first() {
        let r = Renamer::new([("a", "b"), ("b", "c")]);
        assert_eq!(r.apply("a.x b.y"), "b.x c.y");
        let r = Renamer::new([("sales", "shop"), ("sales_dev", "sales_prod")]);
        assert_eq!(r.apply("sales_dev.t sales.u"), "sales_prod.t shop.u");
    }

    #[test]
    fn empty_and_identity_mappings_change_nothing() {
        let r = Renamer::new([("sales_dev", "sales_dev")]);
        assert!(r.is_empty());
        assert_eq!(r.apply("sales_dev.t"), "sales_dev.t");
        assert_eq!(r.apply(""), "");
        assert_eq!(Renamer::default().apply("x"), "x");
        let mut out = vec![];
        assert_eq!(r.apply_recorded("sales_dev", "f", &mut out), None);
        assert!(out.is_empty());
    }

    #[test]
    fn unicode_around_matches_is_preserved() {
        assert_eq!(
            r().apply("-- 读取 sales_dev.订单 表"),
            "-- 读取 sales_prod.订单 表"
        );
    }

    #[test]
    fn replacements_are_recorded_per_word_with_counts() {
        let mut out = vec![];
        let text = "INSERT INTO sales_dev.a SELECT * FROM sales_dev.a JOIN sales_dev_root;";
        let new = r()
            .apply_recorded(text, "script.content", &mut out)
            .unwrap();
        assert_eq!(
            new,
            "INSERT INTO sales_prod.a SELECT * FROM sales_prod.a JOIN sales_prod_root;"
        );
        let rec = |b: &str, a: &str, n| Replacement {
            field: "script.content".into(),
            before: b.into(),
            after: a.into(),
            count: n,
        };
        assert_eq!(
            out,
            [
                rec("sales_dev.a", "sales_prod.a", 2),
                rec("sales_dev_root", "sales_prod_root", 1)
            ]
        );
        // Two occurrences in one word are one record of that word.
        let mut out = vec![];
        r().apply_recorded("sales_dev.sales_dev_t", "f", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].after, "sales_prod.sales_prod_t");
        assert_eq!(out[0].count, 1);
    }

    #[test]
    fn long_words_are_cut_in_records() {
        let word = format!("{}sales_dev{}", "a".repeat(200), "b".repeat(200));
        let mut out = vec![];
        r().apply_recorded(&word, "f", &mut out);
        assert_eq!(out[0].before.chars().count(), 2 * MAX_WORD_SIDE + 1);
        assert!(out[0].before.contains('…'));
    }

    #[test]
    fn spec_helpers_touch_only_their_fields_and_record_them() {
        let mut spec = json!({
            "name": "sales_dev",
            "inputs": ["sales_dev.a", "sales_dev_root", 3],
            "script": {"content": "select * from sales_dev.t", "path": "/sales_dev/t.sql"},
            "guid": "odps.sales_dev.t"
        })
        .as_object()
        .cloned()
        .unwrap();
        let r = r();
        let mut out = vec![];
        r.apply_list(&mut spec, "inputs", &mut out);
        r.apply_script(&mut spec, &mut out);
        r.apply_field(&mut spec, "guid", &mut out);
        r.apply_field(&mut spec, "missing", &mut out);
        assert_eq!(
            Value::Object(spec),
            json!({
                "name": "sales_dev",
                "inputs": ["sales_prod.a", "sales_prod_root", 3],
                "script": {"content": "select * from sales_prod.t", "path": "/sales_prod/t.sql"},
                "guid": "odps.sales_prod.t"
            })
        );
        let fields: Vec<&str> = out.iter().map(|r| r.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "inputs[0]",
                "inputs[1]",
                "script.content",
                "script.path",
                "guid"
            ]
        );
    }

    #[test]
    fn documents_are_renamed_except_names_ids_and_owners() {
        let mut doc = json!({
            "kind": "CycleWorkflow",
            "spec": {
                "nodes": [{
                    "id": "sales_dev_n1",
                    "name": "sales_dev_load",
                    "owner": "sales_dev_admin",
                    "script": {"content": "select * from sales_dev.t"},
                    "outputs": {"nodeOutputs": [{"data": "sales_dev.load"}]}
                }],
                "flow": [{"nodeId": "sales_dev_n1", "depends": [{"output": "sales_dev_root"}]}],
                "triggers": [{"id": "t", "cron": "{{sales_dev_n1}}"}]
            }
        });
        let mut out = vec![];
        r().apply_document(&mut doc, &mut out);
        assert_eq!(doc["spec"]["nodes"][0]["id"], "sales_dev_n1");
        assert_eq!(doc["spec"]["nodes"][0]["name"], "sales_dev_load");
        assert_eq!(doc["spec"]["nodes"][0]["owner"], "sales_dev_admin");
        assert_eq!(
            doc["spec"]["nodes"][0]["script"]["content"],
            "select * from sales_prod.t"
        );
        assert_eq!(
            doc["spec"]["nodes"][0]["outputs"]["nodeOutputs"][0]["data"],
            "sales_prod.load"
        );
        // References keep matching the ids they point at.
        assert_eq!(doc["spec"]["flow"][0]["nodeId"], "sales_dev_n1");
        assert_eq!(doc["spec"]["triggers"][0]["cron"], "{{sales_dev_n1}}");
        // An upstream output is a dependency: renamed like the rest.
        assert_eq!(
            doc["spec"]["flow"][0]["depends"][0]["output"],
            "sales_prod_root"
        );
        let fields: Vec<&str> = out.iter().map(|r| r.field.as_str()).collect();
        assert!(
            fields.contains(&"flowSpec.spec.nodes[0].script.content"),
            "{fields:?}"
        );
        assert!(
            fields.contains(&"flowSpec.spec.flow[0].depends[0].output"),
            "{fields:?}"
        );
    }
}
