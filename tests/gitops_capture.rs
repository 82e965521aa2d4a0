//! Real ImportTasks and MigrationPackages, captured from a control plane
//! with the operator running, at every state a GitOps tool can meet: the
//! objects `hack/gitops-check.sh` judges with Argo CD's, kstatus' and Flux's
//! own code (`resource_customizations/ferry.dev/<Kind>/testdata/`).
//!
//! Every status write is seen through a watch, so no phase is missed however
//! briefly it lasts. Without `FERRY_CAPTURE_WRITE` the test checks that the
//! stored objects still describe what the operator does (phase, failed
//! phase, conditions and their reasons, plan, generations); with
//! `FERRY_CAPTURE_WRITE=1` (`hack/gitops-check.sh --capture`) it rewrites
//! them. `health_test.yaml` and `tests/gitops/expect.yaml` then say what
//! each tool makes of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry::api::*;
use ferry::testenv::{ControlPlane, Options, User, fixtures};
use futures::{StreamExt, TryStreamExt};
use kube::api::{
    ApiResource, DynamicObject, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::sync::Notify;

const NS: &str = "gitops";
const PARTIAL_NS: &str = "gitops-partial";
const WAIT: Duration = Duration::from_secs(120);

/// The captured states: file name (without `.yaml`), the object it is taken
/// from, and which of that object's states.
const TASK_STATES: &[(&str, &str, &str)] = &[
    ("phase-pending", "full", "Pending"),
    ("phase-verifying", "full", "Verifying"),
    ("phase-mapping", "full", "Mapping"),
    ("phase-importing", "full", "Importing"),
    ("phase-committing", "full", "Committing"),
    ("phase-deploying", "full", "Deploying"),
    ("phase-importingrules", "full", "ImportingRules"),
    ("phase-completed", "full", "Completed"),
    ("phase-spec-changed", "full", "generation-lag"),
    ("phase-editing", "held", "Editing"),
    ("phase-partiallyimported", "partial", "PartiallyImported"),
    ("phase-importfailed", "unmapped", "ImportFailed"),
];
// A package from a ConfigMap is verified in one status write: there is no
// Reconciling state to capture (testdata/verifying.yaml is hand-written).
const PACKAGE_STATES: &[(&str, &str, &str)] = &[
    ("phase-ready", "pkg", "Ready"),
    ("phase-stalled", "broken", "Stalled"),
];

/// Every object version the watches delivered, by (kind, name, state).
#[derive(Default)]
struct Seen {
    objects: Mutex<BTreeMap<(String, String, String), Value>>,
    changed: Notify,
}

fn condition_true(obj: &Value, type_: &str) -> bool {
    obj["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == type_ && c["status"] == "True")
    })
}

/// The state a GitOps tool would tell apart in this object version.
fn state_of(kind: &str, obj: &Value) -> Option<String> {
    let status = obj.get("status")?;
    if status["observedGeneration"] != obj["metadata"]["generation"] {
        return Some("generation-lag".into());
    }
    if kind == "ImportTask" {
        let phase = status["phase"].as_str()?;
        if phase == "Completed" && condition_true(obj, "PartiallyImported") {
            return Some("PartiallyImported".into());
        }
        return Some(phase.into());
    }
    ["Stalled", "Ready", "Reconciling"]
        .into_iter()
        .find(|c| condition_true(obj, c))
        .map(String::from)
}

/// Records every version of `kind` objects in `ns` into `seen`.
fn watch(c: Client, ns: &str, ar: ApiResource, seen: Arc<Seen>) {
    let api: Api<DynamicObject> = Api::namespaced_with(c, ns, &ar);
    tokio::spawn(async move {
        let mut version = "0".to_string();
        loop {
            let stream = api
                .watch(&WatchParams::default(), &version)
                .await
                .expect("watch");
            let mut stream = stream.boxed();
            while let Some(event) = stream.try_next().await.expect("watch event") {
                let obj = match event {
                    WatchEvent::Added(o) | WatchEvent::Modified(o) => o,
                    WatchEvent::Bookmark(b) => {
                        version = b.metadata.resource_version;
                        continue;
                    }
                    WatchEvent::Deleted(_) => continue,
                    WatchEvent::Error(e) => panic!("watching {}: {e:?}", ar.kind),
                };
                version = obj.metadata.resource_version.clone().unwrap_or(version);
                let name = obj.metadata.name.clone().unwrap_or_default();
                let value = serde_json::to_value(&obj).expect("object as JSON");
                if let Some(state) = state_of(&ar.kind, &value) {
                    seen.objects
                        .lock()
                        .unwrap()
                        .insert((ar.kind.clone(), name, state), value);
                    seen.changed.notify_waiters();
                }
            }
        }
    });
}

/// Waits until the watches delivered `name` (of `kind`) in `state`.
async fn until(seen: &Seen, kind: &str, name: &str, state: &str) {
    let key = (kind.to_string(), name.to_string(), state.to_string());
    let waiting = async {
        loop {
            let changed = seen.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if seen.objects.lock().unwrap().contains_key(&key) {
                return;
            }
            changed.await;
        }
    };
    if tokio::time::timeout(WAIT, waiting).await.is_err() {
        let states: Vec<String> = seen
            .objects
            .lock()
            .unwrap()
            .keys()
            .filter(|(k, n, _)| k == kind && n == name)
            .map(|(_, _, s)| s.clone())
            .collect();
        panic!("{kind} {name} did not reach {state} within {WAIT:?}; states seen: {states:?}");
    }
}

fn task_body(name: &str, suspend: bool) -> ImportTask {
    let mut task = fixtures::full_import_task(name, "pkg");
    task.spec.suspend = suspend;
    task
}

/// The object as stored: without the server's bookkeeping of field owners.
fn tidy(mut obj: Value) -> Value {
    if let Some(meta) = obj["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    obj
}

/// What a stored object must keep saying for the test data to stay true.
fn signature(obj: &Value) -> Value {
    let status = &obj["status"];
    let conditions: Vec<Value> = status["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| json!([c["type"], c["status"], c["reason"]]))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "kind": obj["kind"],
        "suspend": obj["spec"]["suspend"],
        "generationCurrent": status["observedGeneration"] == obj["metadata"]["generation"],
        "phase": status["phase"],
        "failedPhase": status["failedPhase"],
        "hasPlan": !status["plan"].is_null(),
        "hasProgress": !status["progress"].is_null(),
        "problems": status["problems"].as_array().map(|p| p.len()),
        "conditions": conditions,
    })
}

fn testdata(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("resource_customizations/ferry.dev")
        .join(kind)
        .join("testdata")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_phase_is_captured_from_a_real_control_plane() {
    let cp = ControlPlane::start(Options::default())
        .await
        .expect("starting the control plane");
    cp.install_crds(&ferry::api::all_crds())
        .await
        .expect("installing CRDs");
    let c = cp.client(User::Admin).await.expect("client");

    // The operator on its own thread and runtime, as in a cluster.
    let operator_client = c.clone();
    let storage = cp.dir().join("artifacts");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let settings = ferry::operator::Settings {
                storage_dir: storage,
                artifact_addr: Some(([127, 0, 0, 1], 0).into()),
                artifact_base_url: None,
                ..Default::default()
            };
            ferry::operator::run(operator_client, settings, std::future::pending())
                .await
                .expect("operator");
        })
    });

    let seen = Arc::new(Seen::default());
    for ns in [NS, PARTIAL_NS] {
        watch(
            c.clone(),
            ns,
            ApiResource::erase::<ImportTask>(&()),
            seen.clone(),
        );
        watch(
            c.clone(),
            ns,
            ApiResource::erase::<MigrationPackage>(&()),
            seen.clone(),
        );
    }

    fixtures::ensure_tenant(&c, "t-gitops", Edition::Professional).await;
    fixtures::ready_workspace(&c, NS, fixtures::production_workspace("t-gitops", NS)).await;
    fixtures::ready_workspace(
        &c,
        PARTIAL_NS,
        fixtures::production_workspace("t-gitops", PARTIAL_NS),
    )
    .await;
    let fixture = ferry_package::fixtures::FixtureSpec::new().tasks(6);
    for ns in [NS, PARTIAL_NS] {
        fixtures::config_map_package(&c, ns, "pkg", fixture.to_bytes()).await;
    }
    // A package whose upload is not a zip: verification fails.
    fixtures::config_map_package(&c, NS, "broken", b"not a zip archive".to_vec()).await;
    until(&seen, "MigrationPackage", "pkg", "Ready").await;
    until(&seen, "MigrationPackage", "broken", "Stalled").await;

    let tasks: Api<ImportTask> = Api::namespaced(c.clone(), NS);
    // The object as created: no status yet.
    let created = tasks
        .create(&PostParams::default(), &task_body("full", false))
        .await
        .expect("create full");
    tasks
        .create(&PostParams::default(), &task_body("held", true))
        .await
        .expect("create held");
    let mut unmapped = task_body("unmapped", false);
    unmapped.spec.compute_resource_mapping.truncate(1);
    tasks
        .create(&PostParams::default(), &unmapped)
        .await
        .expect("create unmapped");
    // A same-named object already in the destination: a conflict.
    let existing: ScheduledTask = serde_json::from_value(json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ScheduledTask", "metadata": {"name": "already-here"},
        "spec": {"name": fixture.task_name(0), "owner": "1", "script": {"content": "SELECT 'mine';"}}
    }))
    .unwrap();
    Api::<ScheduledTask>::namespaced(c.clone(), PARTIAL_NS)
        .create(&PostParams::default(), &existing)
        .await
        .expect("create the conflicting object");
    Api::<ImportTask>::namespaced(c.clone(), PARTIAL_NS)
        .create(&PostParams::default(), &task_body("partial", false))
        .await
        .expect("create partial");

    until(&seen, "ImportTask", "full", "Completed").await;
    until(&seen, "ImportTask", "held", "Editing").await;
    until(&seen, "ImportTask", "unmapped", "ImportFailed").await;
    until(&seen, "ImportTask", "partial", "PartiallyImported").await;
    // A spec change the operator has not judged yet (once an import has
    // started, `suspend` is the one setting the schema lets change).
    tasks
        .patch(
            "full",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": true}})),
        )
        .await
        .expect("patch full");
    until(&seen, "ImportTask", "full", "generation-lag").await;

    let mut captured: Vec<(&str, String, Value)> = vec![(
        "ImportTask",
        "created".into(),
        serde_json::to_value(&created).unwrap(),
    )];
    let objects = seen.objects.lock().unwrap().clone();
    for (kind, states) in [
        ("ImportTask", TASK_STATES),
        ("MigrationPackage", PACKAGE_STATES),
    ] {
        for (file, name, state) in states {
            let key = (kind.to_string(), name.to_string(), state.to_string());
            let obj = objects.get(&key).unwrap_or_else(|| {
                let states: Vec<_> = objects
                    .keys()
                    .filter(|(k, n, _)| k == kind && n == name)
                    .map(|(_, _, s)| s.as_str())
                    .collect();
                panic!("no {kind} {name} was seen in {state}; states seen: {states:?}")
            });
            captured.push((kind, file.to_string(), obj.clone()));
        }
    }

    let write = std::env::var_os("FERRY_CAPTURE_WRITE").is_some();
    let mut stale = Vec::new();
    for (kind, file, obj) in captured {
        let obj = tidy(obj);
        let path = testdata(kind).join(format!("{file}.yaml"));
        if write {
            std::fs::write(&path, serde_yaml::to_string(&obj).unwrap())
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            continue;
        }
        let stored: Value = match std::fs::read_to_string(&path) {
            Ok(text) => {
                serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            }
            Err(e) => {
                stale.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        if signature(&stored) != signature(&obj) {
            stale.push(format!(
                "{}:\n    stored:   {}\n    operator: {}",
                path.display(),
                signature(&stored),
                signature(&obj)
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "the captured GitOps test objects no longer describe what the operator does; \
         run `hack/gitops-check.sh --capture` and review health_test.yaml and \
         tests/gitops/expect.yaml:\n  {}",
        stale.join("\n  ")
    );
}
