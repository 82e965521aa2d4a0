//! Kubernetes names and labels for imported objects.
//!
//! Workspace objects carry names Kubernetes refuses (underscores, capitals,
//! Chinese characters, names differing only in case). The real name stays in
//! `spec.name`; `metadata.name` is derived from it here, deterministically,
//! so a resumed import server-side-applies the same object instead of
//! creating a second one.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::ObjectType;

/// Label: the UID of the ImportTask that wrote the object.
pub const LABEL_IMPORT_TASK_UID: &str = "ferry.dev/import-task-uid";
/// Label: the first [`DIGEST_LABEL_LEN`] hex digits of the SHA-256 of the
/// object's final spec, so a resumed import can tell "already written with
/// this content" from "needs writing" without comparing specs.
pub const LABEL_CONTENT_DIGEST: &str = "ferry.dev/content-digest";
/// Annotation: the ImportTask's name (a label value could exceed 63 chars).
pub const ANNOTATION_IMPORT_TASK: &str = "ferry.dev/import-task";
/// Annotation: the package digest the object came from.
pub const ANNOTATION_PACKAGE_DIGEST: &str = "ferry.dev/package-digest";
/// Annotation: the object's real name, for humans reading `kubectl get -o yaml`.
pub const ANNOTATION_REAL_NAME: &str = "ferry.dev/real-name";

/// Hex digits of the content digest kept in the label (128 bits: label
/// values are limited to 63 characters, a full SHA-256 has 64).
pub const DIGEST_LABEL_LEN: usize = 32;

/// Hex digits of the name hash suffix (40 bits).
const HASH_LEN: usize = 10;
/// DNS-1123 label limit.
const MAX_LEN: usize = 63;

/// The `metadata.name` of an object of `object_type` whose real name is
/// `real_name`: the name lower-cased, every character outside `[a-z0-9]`
/// replaced by `-` (runs collapsed, ends trimmed), cut so that the whole fits
/// 63 characters, then `-` and a 10-hex-digit hash of the *exact* real name.
///
/// The hash is what makes it injective in practice: `Load_Orders` and
/// `load_orders`, or two names made only of Chinese characters, share the
/// readable part but not the hash. A name with no usable character uses the
/// type (`scheduledtask-<hash>`). The result is a valid DNS-1123 label, hence
/// also a valid object name for every kind.
pub fn kube_name(object_type: ObjectType, real_name: &str) -> String {
    let mut base = String::with_capacity(real_name.len());
    for c in real_name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            base.push(c);
        } else if !base.ends_with('-') {
            base.push('-');
        }
    }
    let mut base = base.trim_matches('-').to_string();
    if base.is_empty() {
        base = object_type.as_str().to_ascii_lowercase();
    }
    base.truncate(MAX_LEN - HASH_LEN - 1);
    let base = base.trim_end_matches('-');
    let hash = hex::encode(Sha256::digest(real_name.as_bytes()));
    format!("{base}-{}", &hash[..HASH_LEN])
}

/// SHA-256 (lower-case hex) of a spec serialised as JSON. `serde_json::Map`
/// is ordered by key, so equal specs always give equal digests.
pub fn content_digest(spec: &Map<String, Value>) -> String {
    let bytes = serde_json::to_vec(spec).expect("a JSON map always serialises");
    hex::encode(Sha256::digest(&bytes))
}

/// Whether `s` is a valid DNS-1123 label (what `kube_name` promises).
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Whether `s` is a valid label value (at most 63 characters of
/// `[A-Za-z0-9._-]`, alphanumeric at both ends, or empty).
pub fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn readable_part_is_lower_cased_and_sanitised() {
        let n = kube_name(ObjectType::ScheduledTask, "Load_Orders__2024");
        assert!(n.starts_with("load-orders-2024-"), "{n}");
        assert!(is_dns1123_label(&n));
    }

    #[test]
    fn names_differing_only_in_case_do_not_collide() {
        let a = kube_name(ObjectType::ScheduledTask, "load_orders");
        let b = kube_name(ObjectType::ScheduledTask, "Load_Orders");
        let c = kube_name(ObjectType::ScheduledTask, "LOAD-ORDERS");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(b, c);
    }

    #[test]
    fn chinese_names_do_not_collide_and_fall_back_to_the_type() {
        let a = kube_name(ObjectType::Table, "订单明细");
        let b = kube_name(ObjectType::Table, "订单汇总");
        assert_ne!(a, b);
        assert!(a.starts_with("table-"), "{a}");
        assert!(is_dns1123_label(&a) && is_dns1123_label(&b));
        let c = kube_name(ObjectType::ScheduledTask, "加载订单_3");
        assert!(c.starts_with("3-"), "{c}");
    }

    #[test]
    fn deterministic() {
        assert_eq!(
            kube_name(ObjectType::Function, "ToUpper_1"),
            kube_name(ObjectType::Function, "ToUpper_1")
        );
    }

    #[test]
    fn long_names_fit_63_and_stay_distinct() {
        let long_a = format!("{}_a", "x".repeat(300));
        let long_b = format!("{}_b", "x".repeat(300));
        let a = kube_name(ObjectType::ScheduledTask, &long_a);
        let b = kube_name(ObjectType::ScheduledTask, &long_b);
        assert_eq!(a.len(), 63);
        assert!(is_dns1123_label(&a) && is_dns1123_label(&b));
        assert_ne!(a, b);
        // A cut that lands on a '-' must not leave "--" before the hash.
        let dashy = format!("{}_{}", "y".repeat(51), "z".repeat(20));
        let d = kube_name(ObjectType::ScheduledTask, &dashy);
        assert!(is_dns1123_label(&d) && !d.contains("--"), "{d}");
    }

    #[test]
    fn degenerate_names_are_still_valid() {
        for name in ["", "_", "---", "...", "-a-", "9lives", "Ä", "a.b.c", " "] {
            let n = kube_name(ObjectType::QualityRule, name);
            assert!(is_dns1123_label(&n), "{name:?} -> {n}");
        }
    }

    #[test]
    fn no_collisions_over_many_similar_names() {
        let mut seen = BTreeSet::new();
        for i in 0..2000 {
            for name in [
                format!("load_orders_{i}"),
                format!("Load_Orders_{i}"),
                format!("load-orders-{i}"),
                format!("加载订单_{i}"),
                format!("载入订单_{i}"),
            ] {
                assert!(
                    seen.insert(kube_name(ObjectType::ScheduledTask, &name)),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn digest_is_a_label_value_when_cut() {
        let mut m = Map::new();
        m.insert("name".into(), "x".into());
        let d = content_digest(&m);
        assert_eq!(d.len(), 64);
        assert!(is_label_value(&d[..DIGEST_LABEL_LEN]));
        assert!(!is_label_value(&d));
    }
}
