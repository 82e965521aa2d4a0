//! The apiserver failing a share of Ferry's writes for a while: the
//! operator talks to the real apiserver through a fault-injecting proxy
//! (`ferry::testenv::faults`) that answers 429 with `Retry-After`, 500
//! before forwarding, and 500 after forwarding (the write happened, its
//! answer was lost) to three in ten writes until a budget of faults is
//! spent. The same import runs once clean and once under faults; both reach
//! Completed with every object of the package exactly once and nothing
//! else, and the request counts of both runs are printed side by side.

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
    let cp = control_plane();
    let proxy = FaultProxy::start(cp).await.unwrap();
    let through_proxy = proxy.client(cp, User::Admin).await.unwrap();
    let settings = ferry::operator::Settings {
        storage_dir: cp.dir().join("artifacts"),
        ..Default::default()
    };
    tokio::spawn(async move {
        ferry::operator::run(through_proxy, settings, std::future::pending())
            .await
            .expect("operator");
    });
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
    assert_eq!(
        storm.faults(),
        90,
        "the whole fault budget was spent: {storm:?}"
    );
}
