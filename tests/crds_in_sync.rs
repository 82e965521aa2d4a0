//! The CRD YAML under `crds/` is what the Rust types generate. Regenerate
//! with `cargo run --bin crdgen -- --write crds` after changing a type.

use std::collections::BTreeSet;
use std::path::Path;

use ferry::api::{all_crds, crd_file_name, crd_yaml};

#[test]
fn committed_crds_match_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let mut stale = Vec::new();
    for crd in all_crds() {
        let path = dir.join(crd_file_name(&crd));
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != crd_yaml(&crd) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "these CRD files differ from what the types generate: {stale:?}\nrun `cargo run --bin crdgen -- --write crds` and commit the result"
    );
}

#[test]
fn crds_directory_holds_no_stray_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let expected: BTreeSet<String> = all_crds().iter().map(crd_file_name).collect();
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    assert_eq!(
        present, expected,
        "crds/ should hold exactly the generated CRDs"
    );
}

#[test]
fn every_crd_has_status_printer_columns_short_names_and_the_ferry_category() {
    for crd in all_crds() {
        let name = crd.metadata.name.clone().unwrap();
        let names = &crd.spec.names;
        assert!(
            names
                .categories
                .as_ref()
                .is_some_and(|c| c.contains(&"ferry".to_string())),
            "{name}: category"
        );
        assert!(
            names.short_names.as_ref().is_some_and(|s| !s.is_empty()),
            "{name}: short name"
        );
        let version = &crd.spec.versions[0];
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{name}: status subresource"
        );
        let columns = version
            .additional_printer_columns
            .as_ref()
            .expect("printer columns");
        assert!(
            columns.iter().any(|c| c.name == "Age"),
            "{name}: Age column"
        );
    }
}

/// Every `format` in the CRDs is one OpenAPI and the API server know:
/// `kubectl apply` warned "unrecognized format uint64" for each unsigned
/// field schemars described.
#[test]
fn every_schema_format_is_one_the_api_server_knows() {
    fn walk(v: &serde_json::Value, path: &str, bad: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(f)) = map.get("format")
                    && !matches!(
                        f.as_str(),
                        "int32"
                            | "int64"
                            | "float"
                            | "double"
                            | "byte"
                            | "date"
                            | "date-time"
                            | "password"
                    )
                {
                    bad.push(format!("{path}: format {f}"));
                }
                for (k, v) in map {
                    walk(v, &format!("{path}.{k}"), bad);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &format!("{path}[{i}]"), bad);
                }
            }
            _ => {}
        }
    }
    let mut bad = Vec::new();
    for crd in ferry::api::all_crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        walk(&serde_json::to_value(&crd).unwrap(), &name, &mut bad);
    }
    assert!(bad.is_empty(), "{bad:#?}");
}
