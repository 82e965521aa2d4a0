//! The Argo CD health checks in `charts/ferry/health/*.lua`, run by a real Lua
//! interpreter against every case in `charts/ferry/health/testdata/*.yaml`.
//!
//! A case file holds the script it is for, the expected result and the
//! object:
//!
//! ```yaml
//! script: importtask.lua
//! expect:
//!   status: Degraded             # Healthy | Progressing | Degraded | Suspended
//!   messageContains: "Import failed"
//! object: {apiVersion: ferry.dev/v1alpha1, kind: ImportTask, ...}
//! ```
//!
//! The interpreter is set up the way Argo CD runs health scripts: only the
//! base, table, string and math libraries, the object in the global `obj`,
//! JSON `null` as Lua `nil`, and the script's return value read as `hs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mlua::serde::SerializeOptions;
use mlua::{Lua, LuaOptions, LuaSerdeExt, StdLib, Table};
use serde::Deserialize;

const STATUSES: [&str; 4] = ["Healthy", "Progressing", "Degraded", "Suspended"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    script: String,
    expect: Expect,
    object: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Expect {
    status: String,
    #[serde(default)]
    message_contains: Option<String>,
}

/// What a health script returned.
#[derive(Debug)]
struct Health {
    status: String,
    message: String,
}

fn health_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/ferry/health")
}

fn scripts() -> Vec<PathBuf> {
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(health_dir())
        .expect("charts/ferry/health")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "lua"))
        .collect();
    scripts.sort();
    scripts
}

fn cases() -> Vec<(PathBuf, Case)> {
    let dir = health_dir().join("testdata");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("charts/ferry/health/testdata")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let case: Case =
                serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, case)
        })
        .collect()
}

/// Runs `script` with `obj` set to `object`, as Argo CD does.
fn run(script: &Path, object: &serde_json::Value) -> Result<Health, String> {
    let source = std::fs::read_to_string(script).map_err(|e| e.to_string())?;
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    // Argo CD's interpreter turns JSON null into nil and knows no array
    // metatable; do the same so a script cannot depend on either.
    let options = SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false)
        .set_array_metatable(false);
    let obj = lua
        .to_value_with(object, options)
        .map_err(|e| e.to_string())?;
    lua.globals().set("obj", obj).map_err(|e| e.to_string())?;
    let hs: Table = lua
        .load(source)
        .set_name(script.display().to_string())
        .eval()
        .map_err(|e| e.to_string())?;
    let status: Option<String> = hs.get("status").map_err(|e| e.to_string())?;
    let message: Option<String> = hs.get("message").map_err(|e| e.to_string())?;
    Ok(Health {
        status: status.ok_or("hs.status is not set")?,
        message: message.ok_or("hs.message is not set")?,
    })
}

#[test]
fn every_case_gets_the_expected_health() {
    let cases = cases();
    assert!(
        !cases.is_empty(),
        "no test cases in charts/ferry/health/testdata"
    );
    let mut failures = Vec::new();
    for (path, case) in &cases {
        let name = path.file_name().unwrap().to_string_lossy();
        let script = health_dir().join(&case.script);
        match run(&script, &case.object) {
            Err(e) => failures.push(format!("{name}: {} failed: {e}", case.script)),
            Ok(health) => {
                if health.status != case.expect.status {
                    failures.push(format!(
                        "{name}: expected {}, got {} ({:?})",
                        case.expect.status, health.status, health.message
                    ));
                }
                if let Some(want) = &case.expect.message_contains
                    && !health.message.contains(want.as_str())
                {
                    failures.push(format!(
                        "{name}: message {:?} does not contain {want:?}",
                        health.message
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "health checks disagree with their test cases:\n  {}",
        failures.join("\n  ")
    );
}

#[test]
fn cases_use_known_scripts_and_statuses() {
    let known: BTreeSet<String> = scripts()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for (path, case) in cases() {
        assert!(
            known.contains(&case.script),
            "{}: no script {:?} in charts/ferry/health (have {known:?})",
            path.display(),
            case.script
        );
        assert!(
            STATUSES.contains(&case.expect.status.as_str()),
            "{}: status {:?} is not one of {STATUSES:?}",
            path.display(),
            case.expect.status
        );
    }
}

/// Each script is tested for every status it can return.
#[test]
fn every_script_is_tested_for_every_status_it_returns() {
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, case) in cases() {
        seen.entry(case.script)
            .or_default()
            .insert(case.expect.status);
    }
    for script in scripts() {
        let name = script.file_name().unwrap().to_string_lossy().into_owned();
        let source = std::fs::read_to_string(&script).unwrap();
        let tested = seen.get(&name).cloned().unwrap_or_default();
        for status in STATUSES {
            let returned = source.contains(&format!("hs.status = \"{status}\""));
            assert_eq!(
                returned,
                tested.contains(status),
                "{name}: returns {status}: {returned}, has a test case for it: {}",
                tested.contains(status)
            );
        }
    }
}

/// The objects in the test cases are real ImportTasks and MigrationPackages:
/// they deserialize into the API types, so a renamed phase or a changed
/// status shape shows up here.
#[test]
fn case_objects_match_the_api_types() {
    for (path, case) in cases() {
        let kind = case.object["kind"].as_str().unwrap_or_default().to_string();
        let result = match kind.as_str() {
            "ImportTask" => serde_json::from_value::<ferry::api::ImportTask>(case.object)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            "MigrationPackage" => {
                serde_json::from_value::<ferry::api::MigrationPackage>(case.object)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            other => Err(format!("unexpected kind {other:?}")),
        };
        if let Err(e) = result {
            panic!("{}: {e}", path.display());
        }
    }
}

/// docs/gitops.md embeds each script in the argocd-cm snippet (indented by
/// four spaces under its `resource.customizations.health.*` key); the copy
/// must be the script itself.
#[test]
fn gitops_doc_embeds_the_current_scripts() {
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/gitops.md");
    let doc = std::fs::read_to_string(&doc_path).expect("docs/gitops.md");
    for (script, key) in [
        (
            "importtask.lua",
            "resource.customizations.health.ferry.dev_ImportTask: |",
        ),
        (
            "migrationpackage.lua",
            "resource.customizations.health.ferry.dev_MigrationPackage: |",
        ),
    ] {
        let source = std::fs::read_to_string(health_dir().join(script)).unwrap();
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
            "docs/gitops.md does not embed the current charts/ferry/health/{script} under `{key}`; \
             paste the script there, indented by four spaces"
        );
    }
}
