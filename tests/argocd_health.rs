//! The Argo CD health checks' test objects and the GitOps page, checked
//! against the API types.
//!
//! The scripts themselves run under gopher-lua, the interpreter Argo CD
//! embeds, in `hack/gitops-check.sh` (tests/gitops), against
//! `resource_customizations/ferry.dev/<Kind>/health_test.yaml` in Argo CD's
//! own layout; kstatus and Flux's CEL evaluator judge the same objects there.
//! This test keeps what only the Rust side can check:
//!
//! - every test object is a real ImportTask or MigrationPackage: it
//!   deserializes into the API types, so a renamed phase or a changed status
//!   shape shows up here;
//! - every Ferry object docs/gitops.md shows deserializes too;
//! - docs/gitops.md embeds the current scripts in its argocd-cm snippet.

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `resource_customizations/ferry.dev/<Kind>`, each with its `health.lua`.
fn customizations() -> Vec<PathBuf> {
    let dir = root().join("resource_customizations/ferry.dev");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("health.lua").exists())
        .collect();
    dirs.sort();
    dirs
}

/// Deserializes a Ferry object into its API type, naming what failed.
fn check_object(origin: &str, object: serde_json::Value) {
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let result = match kind.as_str() {
        "ImportTask" => serde_json::from_value::<ferry::api::ImportTask>(object)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        "MigrationPackage" => serde_json::from_value::<ferry::api::MigrationPackage>(object)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        other => Err(format!("unexpected kind {other:?}")),
    };
    if let Err(e) = result {
        panic!("{origin}: not a valid {kind}: {e}");
    }
}

#[test]
fn test_objects_match_the_api_types() {
    let dirs = customizations();
    let kinds: Vec<String> = dirs
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(kinds, ["ImportTask", "MigrationPackage"]);
    for dir in dirs {
        let kind = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut n = 0;
        for entry in std::fs::read_dir(dir.join("testdata")).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let object: serde_json::Value =
                serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(object["kind"], kind.as_str(), "{}", path.display());
            check_object(&path.display().to_string(), object);
            n += 1;
        }
        assert!(n > 0, "no test objects for {kind}");
    }
}

/// Every `ferry.dev` object in the page's YAML blocks is one the API accepts
/// in shape (field names, enums, types).
#[test]
fn gitops_doc_objects_match_the_api_types() {
    let doc = std::fs::read_to_string(root().join("docs/gitops.md")).expect("docs/gitops.md");
    let mut found = 0;
    for block in doc.split("```yaml\n").skip(1) {
        let block = block.split("\n```").next().unwrap();
        for document in serde_yaml::Deserializer::from_str(block) {
            let value: serde_json::Value = serde::Deserialize::deserialize(document)
                .unwrap_or_else(|e| panic!("docs/gitops.md: a YAML block does not parse: {e}"));
            if value["apiVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("ferry.dev/"))
            {
                let name = format!(
                    "docs/gitops.md {} {}",
                    value["kind"].as_str().unwrap_or_default(),
                    value["metadata"]["name"].as_str().unwrap_or_default()
                );
                check_object(&name, value);
                found += 1;
            }
        }
    }
    assert!(found >= 2, "docs/gitops.md shows no package and import");
}

/// docs/gitops.md embeds each script in the argocd-cm snippet (indented by
/// four spaces under its `resource.customizations.health.*` key); the copy
/// must be the script itself.
#[test]
fn gitops_doc_embeds_the_current_scripts() {
    let doc = std::fs::read_to_string(root().join("docs/gitops.md")).expect("docs/gitops.md");
    for dir in customizations() {
        let kind = dir.file_name().unwrap().to_string_lossy().into_owned();
        let key = format!("resource.customizations.health.ferry.dev_{kind}: |");
        let source = std::fs::read_to_string(dir.join("health.lua")).unwrap();
        let indented: String = source
            .lines()
            .map(|l| {
                if l.is_empty() {
                    "\n".to_string()
                } else {
                    format!("    {l}\n")
                }
            })
            .collect();
        let embedded = format!("  {key}\n{indented}");
        assert!(
            doc.contains(&embedded),
            "docs/gitops.md does not embed the current {}/health.lua under `{key}`; \
             paste the script there, indented by four spaces",
            dir.display()
        );
    }
}
