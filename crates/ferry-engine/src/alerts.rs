//! The seed: "Alert configurations attached to monitoring rules are not
//! exported with the package." Ferry also removes them on import, from the
//! rule's interpreted spec and from its FlowSpec document, so a package
//! written by other tools cannot carry them into the destination.
//!
//! FlowSpec has no fixed field for alert settings (the real rule shape,
//! `spec.dqcRules[]` in `dqc.yaml`, has `calcEngine`, `table`,
//! `partitionExpression`, `schedulerNode`, `ruleConfig`; DataWorks' own APIs
//! keep alerts apart as "alert rules" with notifications, receivers and
//! channels). So removal goes by what a key means, at any depth: a key whose
//! name contains `alert`, `alarm`, `notif`, `receiver`, `subscri` or
//! `webhook` (any case) goes, with everything under it. `ruleConfig` and
//! other strings that hold a JSON document are searched the same way and
//! written back (compactly) only when something was removed; a string that
//! is not valid JSON (the real `ruleConfig` is not) stays as it came.

use serde_json::{Map, Value};

const MARKERS: [&str; 6] = ["alert", "alarm", "notif", "receiver", "subscri", "webhook"];

/// Whether a key names alert settings.
pub fn is_alert_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    MARKERS.iter().any(|m| k.contains(m))
}

/// Removes alert settings from a map (a rule's interpreted spec). Returns
/// whether anything was removed.
pub fn strip_map(m: &mut Map<String, Value>) -> bool {
    let before = m.len();
    m.retain(|k, _| !is_alert_key(k));
    let mut removed = m.len() != before;
    for v in m.values_mut() {
        removed |= strip_value(v);
    }
    removed
}

/// Removes alert settings from a whole FlowSpec document.
pub fn strip_document(doc: &mut Value) -> bool {
    strip_value(doc)
}

fn strip_value(v: &mut Value) -> bool {
    match v {
        Value::Object(m) => strip_map(m),
        Value::Array(items) => items.iter_mut().fold(false, |r, i| strip_value(i) | r),
        Value::String(s) => {
            let t = s.trim_start();
            if !(t.starts_with('{') || t.starts_with('[')) {
                return false;
            }
            let Ok(mut inner) = serde_json::from_str::<Value>(s) else {
                return false;
            };
            if strip_value(&mut inner) {
                *s = inner.to_string();
                true
            } else {
                false
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The real rule document (`dqc.yaml` of the FlowSpec examples), as the
    /// package tests keep it.
    fn real_rule() -> Value {
        let bytes = include_bytes!("../../ferry-package/tests/flowspec/dqc.yaml");
        ferry_package::flowspec::parse_document("dqc.yaml", bytes).expect("dqc.yaml parses")
    }

    #[test]
    fn the_real_rule_shape_carries_no_alert_key_and_is_left_as_it_is() {
        let mut doc = real_rule();
        let before = doc.clone();
        assert!(!strip_document(&mut doc));
        assert_eq!(doc, before);
    }

    #[test]
    fn alert_settings_are_removed_from_the_real_rule_shape_wherever_they_sit() {
        let mut doc = real_rule();
        let before = real_rule();
        let rule = &mut doc["spec"]["dqcRules"][0];
        // Beside the rule's own fields, in the places a tool writing this
        // shape would put them: on the rule, under its scheduler binding,
        // and on the document.
        rule["alertConfig"] = json!({"level": "critical"});
        rule["notifications"] = json!([{"channels": ["Mail"], "receivers": ["ops"]}]);
        rule["schedulerNode"]["alarmReceivers"] = json!("1001");
        rule["table"]["Subscription"] = json!({"webhook": "https://hooks.example/x"});
        doc["spec"]["dqcAlertRules"] = json!([{"id": "a1"}]);
        assert!(strip_document(&mut doc));
        assert_eq!(doc, before, "only the alert settings were removed");
        // The real ruleConfig is not valid JSON: carried through untouched.
        assert_eq!(
            doc["spec"]["dqcRules"][0]["ruleConfig"],
            before["spec"]["dqcRules"][0]["ruleConfig"]
        );
    }

    #[test]
    fn a_rule_config_holding_json_loses_its_alert_settings_and_keeps_the_rest() {
        let mut spec = json!({
            "name": "rule1",
            "ruleConfig": r#"{"rules":[{"ruleType":"check_null","ruleConfig":{"column":"id"}}],"alertReceivers":["ops"]}"#,
            "AlertLevel": "high"
        })
        .as_object()
        .cloned()
        .unwrap();
        assert!(strip_map(&mut spec));
        assert!(!spec.contains_key("AlertLevel"));
        let config: Value = serde_json::from_str(spec["ruleConfig"].as_str().unwrap()).unwrap();
        assert_eq!(
            config,
            json!({"rules":[{"ruleType":"check_null","ruleConfig":{"column":"id"}}]})
        );
    }

    #[test]
    fn keys_that_only_resemble_alert_words_are_kept() {
        for k in [
            "table",
            "partitionExpression",
            "schedulerNode",
            "calcEngine",
            "alerts",
        ] {
            assert_eq!(is_alert_key(k), k == "alerts", "{k}");
        }
    }
}
