//! A planned object's final spec, kept as compact JSON text.

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The spec exactly as it is written to the destination (compact JSON).
///
/// Why text and not a `serde_json::Value`: an import keeps its plan for all
/// its phases, and a tree of values costs several times the size of its
/// text (a 10,000-object package: hundreds of MiB of trees, tens of MiB of
/// text). Each spec is made text as soon as it is final, so only one tree
/// exists at a time while planning. Reading a field parses the text again:
/// only tests and rule linking do that, on few objects.
#[derive(Clone, Debug)]
pub struct SpecDoc(Box<RawValue>);

impl SpecDoc {
    pub fn new(spec: &Map<String, Value>) -> SpecDoc {
        SpecDoc(serde_json::value::to_raw_value(spec).expect("a JSON map always serialises"))
    }

    /// The text, to write as-is (serialising a `RawValue` copies it verbatim).
    pub fn raw(&self) -> &RawValue {
        &self.0
    }

    /// The spec parsed again.
    pub fn value(&self) -> Map<String, Value> {
        serde_json::from_str(self.0.get()).expect("a SpecDoc holds a JSON object")
    }

    /// One top-level field, parsed.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.value().remove(key)
    }

    /// SHA-256 (hex) of the text: the same bytes `serde_json::to_vec` of the
    /// map gives, so digests match [`crate::naming::content_digest`].
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.0.get().as_bytes()))
    }
}

impl Default for SpecDoc {
    fn default() -> Self {
        SpecDoc::new(&Map::new())
    }
}

impl PartialEq for SpecDoc {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keeps_the_spec_and_digests_it_like_the_map() {
        let map =
            json!({"name": "load", "outputs": ["sales.load"], "script": {"content": "select 1"}})
                .as_object()
                .cloned()
                .unwrap();
        let doc = SpecDoc::new(&map);
        assert_eq!(doc.value(), map);
        assert_eq!(doc.get("outputs"), Some(json!(["sales.load"])));
        assert_eq!(doc.get("missing"), None);
        assert_eq!(doc.digest(), crate::naming::content_digest(&map));
        assert_eq!(
            serde_json::to_string(doc.raw()).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
    }
}
