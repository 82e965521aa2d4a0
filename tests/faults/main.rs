//! The apiserver failing a share of Ferry's writes for a while: the
//! operator talks to the real apiserver through a fault-injecting proxy
//! (`ferry::testenv::faults`) that answers 429 with `Retry-After`, 500
//! before forwarding, and 500 after forwarding (the write happened, its
//! answer was lost) to three in ten writes until a budget of faults is
//! spent. The same import runs once clean and once under faults; both reach
//! Completed with every object of the package exactly once and nothing
//! else, and the request counts of both runs are printed side by side.
//!
//! Also: upload chunks stay until the status that records the artifact is
//! written, so a failed status write costs a retry, not the upload.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ferry::api::*;
use ferry::testenv::faults::{Counts, FaultProxy};
use ferry::testenv::{ControlPlane, Options, User, fixtures};
use ferry_package::ObjectType;
use ferry_package::fixtures::FixtureSpec;
use kube::api::{DynamicObject, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};

static CONTROL_PLANE: OnceLock<ControlPlane> = OnceLock::new();
static PROXY: OnceLock<FaultProxy> = OnceLock::new();
/// The tests count and fail the one operator's requests: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn control_plane() -> &'static ControlPlane {
    CONTROL_PLANE.get_or_init(|| {
        std::thread::spawn(|| {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let cp = ControlPlane::start(Options::default())
                    .await
                    .expect("starting the control plane");
                cp.install_crds(&ferry::api::all_crds())
                    .await
                    .expect("installing CRDs");
                cp
            })
        })
        .join()
        .expect("control plane start panicked")
    })
}

/// The proxy, and the operator behind it (both on a runtime of their own,
/// started once): the operator's every request goes through the proxy.
fn proxy() -> &'static FaultProxy {
    PROXY.get_or_init(|| {
        let cp = control_plane();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let proxy = FaultProxy::start(cp).await.unwrap();
                let through_proxy = proxy.client(cp, User::Admin).await.unwrap();
                tx.send(proxy).unwrap();
                let settings = ferry::operator::Settings {
                    storage_dir: cp.dir().join("artifacts"),
                    ..Default::default()
                };
                ferry::operator::run(through_proxy, settings, std::future::pending())
                    .await
                    .expect("operator");
            })
        });
        rx.recv().expect("the proxy started")
    })
}

/// Every object of the six kinds in `ns`: real name -> kube names.
async fn landed(c: &Client, ns: &str) -> BTreeMap<ObjectType, HashMap<String, Vec<String>>> {
    let mut out = BTreeMap::new();
    for t in ObjectType::IMPORT_ORDER {
        let api: Api<DynamicObject> =
            Api::namespaced_with(c.clone(), ns, &ferry::controller::import::api_resource(t));
        let mut by_name: HashMap<String, Vec<String>> = HashMap::new();
        for o in api.list(&ListParams::default()).await.expect("list").items {
            let real = o
                .data
                .get("spec")
                .and_then(|s| s.get("name"))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            by_name.entry(real).or_default().push(o.name_any());
        }
        out.insert(t, by_name);
    }
    out
}

/// Zero duplicates, zero missing, nothing extra.
fn problems(
    fixture: &FixtureSpec,
    landed: &BTreeMap<ObjectType, HashMap<String, Vec<String>>>,
) -> Vec<String> {
    let mut want: BTreeMap<ObjectType, Vec<String>> = BTreeMap::new();
    for o in fixture.objects() {
        want.entry(o.object_type).or_default().push(o.name);
    }
    let mut problems = Vec::new();
    for t in ObjectType::IMPORT_ORDER {
        let want = want.remove(&t).unwrap_or_default();
        let have = &landed[&t];
        for (name, kube_names) in have {
            if kube_names.len() > 1 {
                problems.push(format!("{t:?} {name} duplicated as {kube_names:?}"));
            }
            if !want.contains(name) {
                problems.push(format!("{t:?} {name} is not in the package"));
            }
        }
        for name in &want {
            if !have.contains_key(name) {
                problems.push(format!("{t:?} {name} missing"));
            }
        }
    }
    problems
}

/// Imports `fixture` into a new workspace `ns` of `tenant` and waits for the
/// task to finish; returns the finished task.
async fn import(c: &Client, tenant: &str, ns: &str, fixture: &FixtureSpec) -> ImportTask {
    fixtures::ready_workspace(c, ns, fixtures::production_workspace(tenant, ns)).await;
    fixtures::config_map_package(c, ns, "pkg", fixture.to_bytes()).await;
    let tasks: Api<ImportTask> = Api::namespaced(c.clone(), ns);
    tasks
        .create(
            &PostParams::default(),
            &fixtures::full_import_task("storm", "pkg"),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let t = tasks.get("storm").await.unwrap();
        if t.status.as_ref().is_some_and(|s| {
            s.phase.is_terminal() && s.observed_generation == t.metadata.generation
        }) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "{ns}: the import did not finish: {:#?}",
            t.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn an_import_completes_exactly_once_while_the_apiserver_fails_writes() {
    let _serial = SERIAL.lock().await;
    let cp = control_plane();
    let proxy = proxy();
    // The test's own requests go straight to the apiserver: only the
    // operator's pass through the proxy.
    let c = cp.client(User::Admin).await.unwrap();
    fixtures::ensure_tenant(&c, "t-faults", Edition::Professional).await;
    let fixture = FixtureSpec::new()
        .tasks(30)
        .tables(10)
        .file_resources(5)
        .functions(5)
        .quality_rules(5)
        .service_apis(5);

    let mut runs: Vec<(&str, Counts, Duration)> = Vec::new();
    for (ns, faults) in [("faults-clean", 0u64), ("faults-storm", 90)] {
        // The operator settles the previous run's last events first.
        proxy.disarm();
        proxy.reset();
        if faults > 0 {
            proxy.arm(faults);
        }
        let started = Instant::now();
        let task = import(&c, "t-faults", ns, &fixture).await;
        let elapsed = started.elapsed();
        let counts = proxy.counts();
        proxy.disarm();
        let status = task.status.unwrap();
        assert_eq!(
            status.phase,
            ImportPhase::Completed,
            "{ns}: {:?}: {:?}",
            status.failed_phase,
            status.message
        );
        let found = problems(&fixture, &landed(&c, ns).await);
        assert!(found.is_empty(), "{ns}: {found:#?}");
        runs.push((ns, counts, elapsed));
    }

    eprintln!("run           requests  writes  429  500-before  500-after  seconds");
    for (ns, k, t) in &runs {
        eprintln!(
            "{ns:<13} {:>8}  {:>6}  {:>3}  {:>10}  {:>9}  {:>7.1}",
            k.requests,
            k.writes,
            k.throttled,
            k.failed_before,
            k.failed_after,
            t.as_secs_f64()
        );
    }
    let (_, clean, _) = runs[0];
    let (_, storm, _) = runs[1];
    assert_eq!(clean.faults(), 0);
    // The storm really happened, of every kind.
    assert!(
        storm.throttled > 0 && storm.failed_before > 0 && storm.failed_after > 0,
        "{storm:?}"
    );
    // A retried phase redoes only what its ledger does not show done, so
    // the import may finish before the budget of 90 is spent; it must have
    // met a real storm all the same.
    assert!(
        storm.faults() >= 30,
        "the import met at least a third of the fault budget: {storm:?}"
    );
}

#[tokio::test]
async fn upload_chunks_stay_until_the_status_recording_the_artifact_is_written() {
    use ferry::controller::chunks;
    use k8s_openapi::api::core::v1::ConfigMap;

    let _serial = SERIAL.lock().await;
    let cp = control_plane();
    let proxy = proxy();
    let c = cp.client(User::Admin).await.unwrap();
    let ns = "faults-chunks";
    fixtures::ensure_tenant(&c, "t-faults", Edition::Professional).await;
    fixtures::ready_workspace(&c, ns, fixtures::production_workspace("t-faults", ns)).await;
    let bytes = FixtureSpec::new().tasks(3).to_bytes();
    let digest = chunks::sha256(&bytes);
    let count = chunks::chunk_count(bytes.len() as u64);

    // The first two status writes that would record the artifact fail.
    proxy.reset();
    proxy.fail_matching("/migrationpackages/up/status", "\"artifact\"", 2);
    let packages: Api<MigrationPackage> = Api::namespaced(c.clone(), ns);
    let pkg: MigrationPackage = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "MigrationPackage",
        "metadata": {"name": "up"},
        "spec": {"source": {"upload": {"digest": digest,
            "chunks": {"count": count, "size": bytes.len()}}}}
    }))
    .unwrap();
    let pkg = packages.create(&PostParams::default(), &pkg).await.unwrap();
    let uid = pkg.metadata.uid.clone().unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), ns);
    for (index, piece) in (0u32..).zip(bytes.chunks(chunks::CHUNK_BYTES)) {
        let cm = chunks::chunk(
            chunks::upload_chunk_name("up", &uid, index),
            chunks::upload_labels("up"),
            chunks::owner(&pkg),
            index,
            piece,
        );
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }

    let deadline = Instant::now() + Duration::from_secs(120);
    let ready = loop {
        let p = packages.get("up").await.unwrap();
        let status = p.status.clone().unwrap_or_default();
        if ferry::conditions::is_true(&status.conditions, ferry::conditions::READY) {
            break status;
        }
        assert!(
            !ferry::conditions::is_true(&status.conditions, ferry::conditions::STALLED),
            "the package was refused: {status:#?}"
        );
        assert!(Instant::now() < deadline, "not Ready: {status:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ready.artifact.unwrap().digest, digest);
    assert_eq!(
        proxy.counts().targeted,
        2,
        "both chosen status writes were failed"
    );
    // With the artifact recorded, the chunks go.
    let selector = ListParams::default().labels(&format!("{}=up", chunks::UPLOAD_LABEL));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = cms.list_metadata(&selector).await.unwrap().items.len();
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} upload chunks left");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
