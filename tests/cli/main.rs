//! `kubectl migrate` end to end: the real binary, run as a user runs it with
//! `--kubeconfig`, against a real kube-apiserver and etcd with the operator
//! running in-process. One control plane for this test binary, started on
//! first use; tests isolate themselves by namespace.
//!
//! The renderings themselves are checked by golden files
//! (`cargo test --bin kubectl-migrate golden`, files in `tests/cli/golden/`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ferry::api::*;
use ferry::testenv::{ControlPlane, Options, User};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};

mod pack;

const WAIT: Duration = Duration::from_secs(120);

static CONTROL_PLANE: OnceLock<ControlPlane> = OnceLock::new();
static OPERATOR: OnceLock<()> = OnceLock::new();
static ARTIFACT_PORT: OnceLock<u16> = OnceLock::new();

/// The control plane with Ferry's CRDs, and the operator on a thread and
/// runtime of its own, exactly as it runs in a cluster.
fn control_plane() -> &'static ControlPlane {
    let cp = CONTROL_PLANE.get_or_init(|| {
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
    });
    OPERATOR.get_or_init(|| {
        let kubeconfig = cp.kubeconfig(User::Admin);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        ARTIFACT_PORT.set(port).unwrap();
        let settings = ferry::operator::Settings {
            storage_dir: cp.dir().join("artifacts"),
            artifact_addr: Some(([127, 0, 0, 1], port).into()),
            ..Default::default()
        };
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
                let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                    .await
                    .unwrap();
                let client = Client::try_from(config).unwrap();
                ferry::operator::run(client, settings, std::future::pending())
                    .await
                    .expect("operator");
            })
        });
    });
    cp
}

/// What a run of the binary printed and returned.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `kubectl-migrate --kubeconfig <kubeconfig> ARGS...`.
fn migrate_with(kubeconfig: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-migrate"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("running kubectl-migrate");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!(
        "$ kubectl migrate {}\n{}{}(exit {})",
        args.join(" "),
        run.stdout,
        run.stderr,
        run.code
    );
    run
}

fn migrate(args: &[&str]) -> Run {
    migrate_with(&control_plane().kubeconfig(User::Admin), args)
}

/// Polls until `ready` holds.
async fn wait_for<K, F>(api: &Api<K>, name: &str, ready: F) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    F: Fn(&K) -> bool,
{
    let deadline = Instant::now() + WAIT;
    loop {
        let current = api.get_opt(name).await.expect("get");
        if let Some(obj) = current.as_ref().filter(|o| ready(o)) {
            return obj.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{name} not as expected within {WAIT:?}; last seen: {current:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A tenant and a Ready destination workspace whose objects live in
/// namespace `ws`, with production names for compute resources and groups so
/// every mapping has work to do.
async fn destination(c: &Client, tenant: &str, edition: Edition, ws: &str) {
    use ferry::testenv::fixtures;
    fixtures::ensure_tenant(c, tenant, edition).await;
    fixtures::ready_workspace(c, ws, fixtures::production_workspace(tenant, ws)).await;
}

/// A MigrationPackage from a ConfigMap holding the zip (a local upload).
async fn package_from(c: &Client, ns: &str, name: &str, bytes: Vec<u8>) {
    ferry::testenv::fixtures::config_map_package(c, ns, name, bytes).await;
}

/// An import task held in Editing, with every mapping the fixture needs.
async fn suspended_task(c: &Client, ns: &str, name: &str, package: &str) {
    let task: ImportTask = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ImportTask",
        "metadata": {"name": name, "annotations": {"ferry.dev/created-by": "7654321"}},
        "spec": {
            "importName": "sales.q4_import",
            "packageRef": {"name": package},
            "suspend": true,
            "computeResourceMapping": [
                {"source": "sales_mc_dev", "destination": "sales_mc_prod"},
                {"source": "sales_holo_dev", "destination": "sales_holo"},
                {"source": "sales_emr_dev", "destination": "sales_emr"}
            ],
            "resourceGroupMapping": [
                {"source": "dev_serverless", "destination": "serverless_default"},
                {"source": "dev_exclusive_01", "destination": "serverless_default"}
            ],
            "dependencyMapping": [{"sourceProject": "sales_dev", "newProject": "sales_prod"}]
        }
    }))
    .unwrap();
    Api::<ImportTask>::namespaced(c.clone(), ns)
        .create(&PostParams::default(), &task)
        .await
        .unwrap();
}

fn section_order(text: &str, sections: &[&str]) {
    let mut at = 0;
    for s in sections {
        let i = text[at..]
            .find(s)
            .unwrap_or_else(|| panic!("section {s:?} missing or out of order in:\n{text}"));
        at += i + s.len();
    }
}

#[tokio::test]
async fn preview_plan_start_wait_report_and_errors_on_a_real_control_plane() {
    let cp = control_plane();
    let c = cp.client(User::Admin).await.unwrap();
    let ns = "cli-flow";
    destination(&c, "t-cli-flow", Edition::Professional, ns).await;
    let fixture = ferry_package::fixtures::FixtureSpec::new().tasks(5);
    let zip = fixture.to_bytes();
    let digest = {
        use sha2::Digest;
        format!("sha256:{:x}", sha2::Sha256::digest(&zip))
    };
    package_from(&c, ns, "q4", zip).await;
    suspended_task(&c, ns, "q4-import", "q4").await;

    // preview --wait: objects per type, compute resources, source, digest.
    let r = migrate(&["preview", "q4", "-n", ns, "--wait", "--timeout", "2m"]);
    assert_eq!(r.code, 0, "{r:?}");
    section_order(
        &r.stdout,
        &[
            "Package q4 in namespace cli-flow: Ready",
            "Source workspace",
            "Digest",
            "Objects per type",
            "ScheduledTask",
            "Compute resources",
            "sales_mc_dev",
            "MaxCompute",
            "Resource groups",
            "dev_serverless",
        ],
    );
    assert!(r.stdout.contains(&digest), "digest {digest} shown");
    let r = migrate(&["preview", "q4", "-n", ns, "-o", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["state"], "Ready");
    assert_eq!(v["summary"]["objects"]["ScheduledTask"], 5);
    assert_eq!(v["artifact"]["digest"], digest.as_str());

    // plan, while Editing: the counts and how to start.
    let tasks: Api<ImportTask> = Api::namespaced(c.clone(), ns);
    wait_for(&tasks, "q4-import", |t| {
        t.status
            .as_ref()
            .is_some_and(|s| s.phase == ImportPhase::Editing && s.plan.is_some())
    })
    .await;
    let r = migrate(&["plan", "q4-import", "-n", ns]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains(": Editing"), "{}", r.stdout);
    assert!(r.stdout.contains("kubectl migrate start q4-import"));
    let r = migrate(&["plan", "q4-import", "-n", ns, "-o", "yaml"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_yaml::from_str(&r.stdout).unwrap();
    let create = v["plan"]["create"].as_u64().unwrap();
    assert!(create >= 5, "{v}");
    assert_eq!(v["phase"], "Editing");
    assert!(
        Api::<ScheduledTask>::namespaced(c.clone(), ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "plan writes nothing"
    );

    // import-again does not apply to a task that has not failed.
    let r = migrate(&["import-again", "q4-import", "-n", ns]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("only applies to a failed import")
            && r.stderr.contains("kubectl migrate start q4-import"),
        "{}",
        r.stderr
    );

    // start --wait follows the phases to Completed.
    let r = migrate(&["start", "q4-import", "-n", ns, "--wait", "--timeout", "3m"]);
    assert_eq!(r.code, 0, "{r:?}");
    section_order(
        &r.stdout,
        &["Importing", "Committing", "Deploying", "Completed"],
    );
    assert!(
        r.stdout.contains(&format!("Completed: {create} created")),
        "{}",
        r.stdout
    );
    let task = tasks.get("q4-import").await.unwrap();
    let status = task.status.unwrap();
    assert_eq!(status.phase, ImportPhase::Completed);

    // report: the seed's four sections.
    let r = migrate(&["report", "q4-import", "-n", ns]);
    assert_eq!(r.code, 0, "{r:?}");
    section_order(
        &r.stdout,
        &[
            "Basic Information",
            "sales.q4_import",
            "7654321",
            "Completed",
            "Import Results",
            "ScheduledTask",
            "Details",
            "--details",
            "Import Settings",
            "sales_mc_dev",
            "sales_mc_prod",
            "Change owner",
        ],
    );
    assert!(r.stdout.contains(&digest), "package digest from basic.json");

    // report --details -o json: every record of the report ConfigMaps.
    let r = migrate(&["report", "q4-import", "-n", ns, "--details", "-o", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let details = v["details"].as_array().unwrap();
    assert_eq!(
        details.len() as u64,
        status.report.as_ref().unwrap().records,
        "every record"
    );
    let task_records: Vec<&serde_json::Value> = details
        .iter()
        .filter(|d| d["type"] == "ScheduledTask")
        .collect();
    assert_eq!(task_records.len(), 5);
    for d in &task_records {
        assert_eq!(d["outcome"], "Created", "{d}");
        assert_eq!(d["committed"], true, "Professional commits: {d}");
        assert_eq!(d["deployed"], true, "Professional deploys: {d}");
    }
    assert_eq!(v["basicInformation"]["phase"], "Completed");
    assert_eq!(v["basicInformation"]["creator"], "7654321");
    assert_eq!(
        v["importSettings"]["computeResourceMapping"][0]["destination"],
        "sales_mc_prod"
    );
    let results = v["importResults"].as_array().unwrap();
    let st = results
        .iter()
        .find(|r| r["type"] == "ScheduledTask")
        .unwrap();
    assert_eq!(st["created"], 5);
    // The text form lists each object.
    let r = migrate(&["report", "q4-import", "-n", ns, "--details"]);
    assert_eq!(r.code, 0, "{r:?}");
    for d in &task_records {
        assert!(r.stdout.contains(d["name"].as_str().unwrap()), "{d}");
    }

    // A missing task: exit 3 with the way to find the right name.
    let r = migrate(&["plan", "nope", "-n", ns]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr.contains(
            "importtask nope not found in namespace cli-flow; list them with kubectl get importtasks -n cli-flow"
        ),
        "{}",
        r.stderr
    );
    let r = migrate(&["report", "nope", "-n", ns]);
    assert_eq!(r.code, 3, "{r:?}");

    // The namespace defaults to the context's, and --context picks one.
    let text = std::fs::read_to_string(cp.kubeconfig(User::Admin)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scoped: PathBuf = dir.path().join("scoped.kubeconfig");
    std::fs::write(
        &scoped,
        text.replace("namespace: default", &format!("namespace: {ns}")),
    )
    .unwrap();
    let r = migrate_with(
        &scoped,
        &["plan", "q4-import", "--context", "admin@ferry-test"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("in namespace cli-flow"), "{}", r.stdout);
    let r = migrate_with(&scoped, &["plan", "q4-import", "--context", "nosuch"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("nosuch"), "{}", r.stderr);
}

/// The seed audit: "In Editing, the plan shows every object (type, real
/// name, action: create / conflict / update rule / skip, dry-run, owner
/// after import, replacements) — in status for the first N and in full in a
/// ConfigMap or via `kubectl migrate plan --details`, so a user can review a
/// 10,000-object import before confirming." Here 650 objects, one of them a
/// conflict and one dry-run: `plan --details` lists every one, in table and
/// JSON form, and writes nothing.
#[tokio::test]
async fn in_editing_the_plan_shows_every_object_via_plan_details() {
    let cp = control_plane();
    let c = cp.client(User::Admin).await.unwrap();
    let ns = "cli-plan-details";
    destination(&c, "t-cli-details", Edition::Professional, ns).await;
    let fixture = ferry_package::fixtures::FixtureSpec::new()
        .tasks(500)
        .layers(4)
        .tables(150);
    package_from(&c, ns, "big", fixture.to_bytes()).await;
    // A hand-made task holding the real name of one of the package's.
    let taken = fixture.task_name(3);
    let by_hand: ScheduledTask = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ScheduledTask", "metadata": {"name": "by-hand"},
        "spec": {"name": taken, "owner": "1234567", "computeResource": "sales_mc_prod",
                  "script": {"language": "odps-sql", "content": "SELECT 1;"}, "trigger": {"cron": "00 00 02 * * ?"}}
    }))
    .unwrap();
    Api::<ScheduledTask>::namespaced(c.clone(), ns)
        .create(&PostParams::default(), &by_hand)
        .await
        .unwrap();
    let dry = fixture.task_name(7);
    suspended_task(&c, ns, "review", "big").await;
    let tasks: Api<ImportTask> = Api::namespaced(c.clone(), ns);
    tasks
        .patch(
            "review",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"dryRun": {"tasks": [dry]}}})),
        )
        .await
        .unwrap();
    let t = wait_for(&tasks, "review", |t| {
        t.status.as_ref().is_some_and(|s| {
            s.phase == ImportPhase::Editing
                && s.plan.is_some()
                && s.report.is_some()
                && s.observed_generation == t.metadata.generation
        })
    })
    .await;
    let summary = t.status.unwrap().plan.unwrap();
    let planned = summary.create + summary.conflict + summary.skip;
    assert_eq!(summary.conflict, 1, "{summary:?}");
    // Status: the first 20 objects, each with its action and owner.
    assert_eq!(summary.first_objects.len(), 20, "{summary:?}");
    assert!(
        summary
            .first_objects
            .iter()
            .all(|o| !o.name.is_empty() && (o.action != "Create" || o.owner.is_some())),
        "{:?}",
        summary.first_objects
    );

    let r = migrate(&["plan", "review", "-n", ns, "--details", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let objects = v["objects"].as_array().unwrap();
    assert_eq!(objects.len() as u64, planned, "every object of the plan");
    assert!(objects.len() >= 650, "{}", objects.len());
    let find = |name: &str| {
        objects
            .iter()
            .find(|o| o["type"] == "ScheduledTask" && o["name"] == name)
            .unwrap_or_else(|| panic!("no ScheduledTask {name}"))
    };
    assert_eq!(find(&taken)["action"], "Conflict");
    assert_eq!(find(&dry)["dryRun"], true);
    for o in objects.iter().filter(|o| o["action"] == "Create") {
        assert!(o["owner"].as_str().is_some_and(|s| !s.is_empty()), "{o}");
    }
    let replaced = objects
        .iter()
        .filter(|o| o["replacements"].as_array().is_some_and(|r| !r.is_empty()))
        .count();
    assert!(
        replaced > 0,
        "the dependency mapping's replacements are listed"
    );
    assert!(
        objects
            .iter()
            .flat_map(|o| o["replacements"].as_array().into_iter().flatten())
            .all(|x| x["before"].as_str().unwrap().contains("sales_dev")
                && x["after"].as_str().unwrap().contains("sales_prod")),
    );

    // The table: one row per object, the seed's words for the action.
    let r = migrate(&["plan", "review", "-n", ns, "--details"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    section_order(
        &r.stdout,
        &[
            ": Editing",
            &format!("Objects ({planned}):"),
            "TYPE",
            "NAME",
            "ACTION",
            "DRY-RUN",
            "OWNER",
            "REPLACEMENTS",
            "Replacements:",
            "kubectl migrate start review",
        ],
    );
    let table = r.stdout.split("Objects (").nth(1).unwrap();
    let table = table.split("\nReplacements:").next().unwrap();
    // The title line and the header are not objects.
    let rows = table.lines().filter(|l| !l.trim().is_empty()).count() - 2;
    assert_eq!(rows as u64, planned, "a row per object");
    let row = |name: &str| {
        r.stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}"))
            .to_string()
    };
    assert!(row(&taken).contains(" conflict "), "{}", row(&taken));
    assert!(row(&dry).contains(" yes "), "{}", row(&dry));
    // Without --details: where to find the full list.
    let r = migrate(&["plan", "review", "-n", ns]);
    assert!(
        r.stdout
            .contains("kubectl migrate plan review -n cli-plan-details --details"),
        "{}",
        r.stdout
    );
    let written = Api::<ScheduledTask>::namespaced(c.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(written.len(), 1, "Editing writes nothing");

    // The seed audit: "plan does not suggest start under a mapping error".
    tasks
        .patch(
            "review",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"computeResourceMapping": [
                {"source": "sales_mc_dev", "destination": "sales_mc_prod"}
            ]}})),
        )
        .await
        .unwrap();
    wait_for(&tasks, "review", |t| {
        t.status.as_ref().is_some_and(|s| {
            s.observed_generation == t.metadata.generation
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.reason == "InvalidSettings")
        })
    })
    .await;
    let r = migrate(&["plan", "review", "-n", ns]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("computeResourceMapping")
            && r.stdout.contains("Fix what the message says")
            && !r.stdout.contains("kubectl migrate start"),
        "{}",
        r.stdout
    );
}

#[tokio::test]
async fn commit_by_real_name_and_export_of_a_workspace() {
    let cp = control_plane();
    let c = cp.client(User::Admin).await.unwrap();
    let ns = "cli-commit";
    destination(&c, "t-cli-commit", Edition::Standard, ns).await;
    let task: ScheduledTask = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ScheduledTask", "metadata": {"name": "load-orders-x1"},
        "spec": {"name": "load_orders", "owner": "1", "script": {"content": "SELECT 1;"}}
    }))
    .unwrap();
    let objects: Api<ScheduledTask> = Api::namespaced(c.clone(), ns);
    objects.create(&PostParams::default(), &task).await.unwrap();

    // By its real name, which is no Kubernetes name.
    let r = migrate(&[
        "commit",
        "scheduledtask/load_orders",
        "-n",
        ns,
        "--wait",
        "--timeout",
        "1m",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("commit done"), "{}", r.stdout);
    let t = objects.get("load-orders-x1").await.unwrap();
    assert_eq!(t.status.unwrap().state, Some(ObjectState::Committed));
    let r = migrate(&[
        "commit",
        "stask/load-orders-x1",
        "-n",
        ns,
        "--deploy",
        "--wait",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let t = objects.get("load-orders-x1").await.unwrap();
    assert_eq!(t.status.unwrap().state, Some(ObjectState::Deployed));
    let r = migrate(&["commit", "scheduledtask/nothing", "-n", ns]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr
            .contains("kubectl get scheduledtasks -n cli-commit"),
        "{}",
        r.stderr
    );
    let r = migrate(&["commit", "jobs/x", "-n", ns]);
    assert_eq!(r.code, 2, "{r:?}");

    // Export the workspace (custom: scheduled tasks only), then preview it.
    let r = migrate(&[
        "export",
        ns,
        "--name",
        "cli-export",
        "-n",
        ns,
        "--mode",
        "custom",
        "--type",
        "ScheduledTask",
        "--wait",
        "--timeout",
        "2m",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Ready"), "{}", r.stdout);
    let r = migrate(&["preview", "cli-export", "-n", ns, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["summary"]["objects"]["ScheduledTask"], 1, "{v}");
    assert_eq!(v["summary"]["sourceWorkspace"], ns);
    let r = migrate(&["export", "nosuch-ws", "--name", "x", "-n", ns]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr.contains("workspace nosuch-ws not found"),
        "{}",
        r.stderr
    );
    let r = migrate(&[
        "export",
        ns,
        "--name",
        "y",
        "-n",
        ns,
        "--mode",
        "incremental",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--since"), "{}", r.stderr);
}

/// No control plane needed: refused before any request.
#[test]
fn usage_errors_and_unavailable_commands_exit_2() {
    let nowhere = Path::new("/nonexistent/kubeconfig");
    let r = migrate_with(nowhere, &["upload", "/nonexistent/pkg.zip", "--name", "q4"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("cannot read /nonexistent/pkg.zip"),
        "{}",
        r.stderr
    );
    // Over the 30 MB limit: refused before any connection (the endpoint and
    // kubeconfig point nowhere).
    let big = std::env::temp_dir().join(format!("ferry-cli-big-{}.zip", std::process::id()));
    std::fs::File::create(&big)
        .unwrap()
        .set_len(31 * 1024 * 1024)
        .unwrap();
    let r = migrate_with(
        nowhere,
        &[
            "upload",
            big.to_str().unwrap(),
            "--name",
            "q4",
            "--endpoint",
            "http://127.0.0.1:1",
        ],
    );
    std::fs::remove_file(&big).unwrap();
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("nothing was sent"), "{}", r.stderr);
    let r = migrate_with(nowhere, &["download"]);
    assert_eq!(r.code, 2, "no package: {r:?}");
    let r = migrate_with(nowhere, &["export", "ws"]);
    assert_eq!(r.code, 2, "missing --name: {r:?}");
    let r = migrate_with(nowhere, &["frobnicate"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = migrate_with(nowhere, &["plan", "q4"]);
    assert_eq!(r.code, 3, "unreadable kubeconfig: {r:?}");
    assert!(r.stderr.contains("--kubeconfig"), "{}", r.stderr);
    let r = migrate_with(nowhere, &["--help"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("import-again"));
}

#[tokio::test]
async fn a_failed_import_exits_1_and_import_again_finishes_it() {
    let cp = control_plane();
    let c = cp.client(User::Admin).await.unwrap();
    let ns = "cli-again";
    destination(&c, "t-cli-again", Edition::Professional, ns).await;
    package_from(
        &c,
        ns,
        "p",
        ferry_package::fixtures::FixtureSpec::new()
            .tasks(3)
            .to_bytes(),
    )
    .await;
    suspended_task(&c, ns, "again", "p").await;
    let tasks: Api<ImportTask> = Api::namespaced(c.clone(), ns);
    let full_mapping = tasks
        .get("again")
        .await
        .unwrap()
        .spec
        .compute_resource_mapping;
    // Only one of the three compute resources mapped: Mapping fails.
    tasks
        .patch(
            "again",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"computeResourceMapping": [
                {"source": "sales_mc_dev", "destination": "sales_mc_prod"}
            ]}})),
        )
        .await
        .unwrap();
    let r = migrate(&["start", "again", "-n", ns, "--wait", "--timeout", "3m"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("ImportFailed in phase Mapping:")
            && r.stdout.contains("computeResourceMapping")
            && r.stdout
                .contains("kubectl migrate import-again again -n cli-again --wait"),
        "{}",
        r.stdout
    );

    // Fix the settings, then Import Again, following it to the end.
    tasks
        .patch(
            "again",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"computeResourceMapping": full_mapping}})),
        )
        .await
        .unwrap();
    let r = migrate(&[
        "import-again",
        "again",
        "-n",
        ns,
        "--wait",
        "--timeout",
        "3m",
        "-o",
        "json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let status: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(status["phase"], "Completed", "{status}");
    assert!(
        r.stderr.contains("Completed"),
        "progress on stderr: {}",
        r.stderr
    );

    // A refused package: exit 1 with every problem.
    package_from(&c, ns, "broken", b"this is not a zip".to_vec()).await;
    let r = migrate(&["preview", "broken", "-n", ns, "--wait", "--timeout", "2m"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("Refused"), "{}", r.stdout);

    // start on a Completed task changes nothing: it says so and fails.
    let r = migrate(&["start", "again", "-n", ns]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("importtask again in namespace cli-again is already Completed"),
        "{}",
        r.stderr
    );

    // A user without rights is told which role to ask for.
    suspended_task(&c, ns, "not-mine", "p").await;
    let r = migrate_with(
        &cp.kubeconfig(User::Viewer),
        &["start", "not-mine", "-n", ns],
    );
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr
            .contains("importtask not-mine in namespace cli-again")
            && r.stderr.contains("forbidden to")
            && r.stderr.contains("ferry-workspace-admin"),
        "{}",
        r.stderr
    );
}

/// Upload a local zip, preview it, download it again: the same digest; a
/// viewer's upload is refused by the endpoint's authorization.
#[tokio::test]
async fn upload_preview_download_round_trip_with_identical_digests() {
    let cp = control_plane();
    let c = cp.client(User::Admin).await.unwrap();
    destination(&c, "t-cli-up", Edition::Professional, "cli-up").await;
    let endpoint = format!("http://127.0.0.1:{}", ARTIFACT_PORT.get().unwrap());
    let bytes = ferry_package::fixtures::FixtureSpec::new()
        .tasks(4)
        .to_bytes();
    let file = cp.dir().join("upload.zip");
    std::fs::write(&file, &bytes).unwrap();
    let digest = format!("sha256:{}", ferry_package::writer::sha256_hex(&bytes));

    let r = migrate(&[
        "upload",
        file.to_str().unwrap(),
        "--name",
        "local",
        "-n",
        "cli-up",
        "--endpoint",
        &endpoint,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains(&digest), "{}", r.stdout);
    let r = migrate(&["preview", "local", "-n", "cli-up", "--wait"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("ScheduledTask"), "{}", r.stdout);

    let out = cp.dir().join("download.zip");
    let r = migrate(&[
        "download",
        "local",
        out.to_str().unwrap(),
        "-n",
        "cli-up",
        "--endpoint",
        &endpoint,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        bytes,
        "the download is the upload"
    );

    let r = migrate_with(
        &cp.kubeconfig(User::Viewer),
        &[
            "upload",
            file.to_str().unwrap(),
            "--name",
            "v",
            "-n",
            "cli-up",
            "--endpoint",
            &endpoint,
        ],
    );
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr.contains("victor may not create migrationpackages"),
        "{}",
        r.stderr
    );
}

// ------------------------------------------------- through the API server alone

/// The chart's access ClusterRoles (`helm template`), applied to the control
/// plane, so the CLI runs as people bound to them are.
async fn access_roles(c: &Client) {
    use k8s_openapi::api::rbac::v1::ClusterRole;
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/ferry");
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(ferry::testenv::tools_bin().unwrap().join("helm"))
        .args(["template", "ferry"])
        .arg(&chart)
        .args(["--show-only", "templates/rbac-access.yaml"])
        .env("HOME", home.path())
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .output()
        .expect("running helm template");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let api: Api<ClusterRole> = Api::all(c.clone());
    let mut n = 0;
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value = <serde_yaml::Value as serde::Deserialize>::deserialize(doc).unwrap();
        if value.is_null() {
            continue;
        }
        let role: ClusterRole = serde_yaml::from_value(value).unwrap();
        let name = role.metadata.name.clone().unwrap();
        api.patch(
            &name,
            &PatchParams::apply("ferry-cli-test").force(),
            &Patch::Apply(&role),
        )
        .await
        .unwrap();
        n += 1;
    }
    assert_eq!(n, 3, "ferry-workspace-admin, -viewer, ferry-tenant-owner");
}

/// Binds `user` to `role` in `ns`, as the chart's README shows.
async fn bind(c: &Client, ns: &str, role_kind: &str, role: &str, user: User) {
    use k8s_openapi::api::rbac::v1::RoleBinding;
    let rb: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("{role}-{}", user.name()), "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user.name()}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(c.clone(), ns)
        .patch(
            &format!("{role}-{}", user.name()),
            &PatchParams::apply("ferry-cli-test").force(),
            &Patch::Apply(&rb),
        )
        .await
        .unwrap();
}

/// The names of the ConfigMaps in `ns` carrying `label`.
async fn labelled(c: &Client, ns: &str, label: &str) -> Vec<String> {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::ResourceExt;
    Api::<ConfigMap>::namespaced(c.clone(), ns)
        .list(&ListParams::default().labels(label))
        .await
        .unwrap()
        .items
        .iter()
        .map(|cm| cm.name_any())
        .collect()
}

fn sha256_of(bytes: &[u8]) -> String {
    ferry::controller::chunks::sha256(bytes)
}

/// A package bigger than one chunk (file resources are random bytes, so the
/// zip does not shrink): about 1.9 MB, 3 chunks.
fn multi_chunk_package() -> Vec<u8> {
    let bytes = ferry_package::fixtures::FixtureSpec::new()
        .tasks(5)
        .resource_bytes(600 * 1024)
        .to_bytes();
    assert!(bytes.len() > 2 * ferry::controller::chunks::CHUNK_BYTES);
    bytes
}

/// The round trip for a user who has only a kubeconfig and the
/// ferry-workspace-admin role in the namespace, with no path to the
/// operator: upload (chunks through the API server) -> preview -> import
/// with --wait -> report -> export -> download, with identical digests, and
/// no chunk left behind.
#[tokio::test]
async fn chunked_upload_import_report_export_and_download_through_the_api_server_alone() {
    use ferry::controller::chunks;
    let cp = control_plane();
    let c = cp.client(User::Admin).await.unwrap();
    let ns = "cli-chunks";
    destination(&c, "t-cli-chunks", Edition::Professional, ns).await;
    access_roles(&c).await;
    bind(
        &c,
        ns,
        "ClusterRole",
        "ferry-workspace-admin",
        User::WorkspaceAdmin,
    )
    .await;
    let alice = cp.kubeconfig(User::WorkspaceAdmin);
    let bytes = multi_chunk_package();
    let count = chunks::chunk_count(bytes.len() as u64);
    assert_eq!(count, 3);
    let file = cp.dir().join("chunked.zip");
    std::fs::write(&file, &bytes).unwrap();
    let digest = sha256_of(&bytes);

    let started = Instant::now();
    let r = migrate_with(
        &alice,
        &[
            "upload",
            file.to_str().unwrap(),
            "--name",
            "chunked",
            "-n",
            ns,
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(&digest) && r.stdout.contains("3 chunks)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("as 3 chunks"),
        "progress on stderr: {}",
        r.stderr
    );
    let pkgs: Api<MigrationPackage> = Api::namespaced(c.clone(), ns);
    let upload = pkgs
        .get("chunked")
        .await
        .unwrap()
        .spec
        .source
        .upload
        .unwrap();
    assert_eq!(upload.digest, digest);
    assert_eq!(
        upload.chunks,
        Some(UploadChunks {
            count,
            size: bytes.len() as u64
        })
    );

    let r = migrate_with(
        &alice,
        &["preview", "chunked", "-n", ns, "--wait", "--timeout", "2m"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("Ready") && r.stdout.contains(&digest),
        "{}",
        r.stdout
    );
    eprintln!(
        "chunked upload of {} bytes in {count} chunks verified after {:?}",
        bytes.len(),
        started.elapsed()
    );
    let status = pkgs.get("chunked").await.unwrap().status.unwrap();
    assert_eq!(status.source_kind.as_deref(), Some("Upload"));
    assert_eq!(status.artifact.unwrap().digest, digest);
    // The chunks go right after the status recording the artifact is
    // written (never before: a crash in between would lose the upload), so
    // a client that saw Ready may still see them for a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !labelled(&c, ns, "ferry.dev/upload=chunked")
        .await
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the operator deletes the upload chunks once the package is stored"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Import it, following the phases, and read the report.
    suspended_task(&c, ns, "chunked-import", "chunked").await;
    let r = migrate_with(
        &alice,
        &[
            "start",
            "chunked-import",
            "-n",
            ns,
            "--wait",
            "--timeout",
            "3m",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Completed"), "{}", r.stdout);
    let r = migrate_with(&alice, &["report", "chunked-import", "-n", ns]);
    assert_eq!(r.code, 0, "{r:?}");
    section_order(
        &r.stdout,
        &["Basic Information", "Import Results", "Import Settings"],
    );
    assert!(r.stdout.contains(&digest), "{}", r.stdout);

    // Download the uploaded package again: the same bytes.
    let back = cp.dir().join("chunked-back.zip");
    let r = migrate_with(
        &alice,
        &["download", "chunked", back.to_str().unwrap(), "-n", ns],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains(&digest), "{}", r.stdout);
    assert_eq!(
        std::fs::read(&back).unwrap(),
        bytes,
        "the download is the upload"
    );

    // Export the workspace it was imported into, and download the export.
    let r = migrate_with(
        &alice,
        &[
            "export",
            ns,
            "--name",
            "chunked-export",
            "-n",
            ns,
            "--mode",
            "full",
            "--wait",
            "--timeout",
            "2m",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let exported = pkgs.get("chunked-export").await.unwrap().status.unwrap();
    let artifact = exported.artifact.unwrap();
    let out = cp.dir().join("chunked-export.zip");
    let r = migrate_with(
        &alice,
        &[
            "download",
            "chunked-export",
            out.to_str().unwrap(),
            "-n",
            ns,
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let got = std::fs::read(&out).unwrap();
    assert_eq!(sha256_of(&got), artifact.digest, "identical digests");
    assert_eq!(got.len() as u64, artifact.size);
    let answered = pkgs.get("chunked-export").await.unwrap();
    let download = answered.status.unwrap().download.unwrap();
    assert_eq!(download.digest.as_deref(), Some(artifact.digest.as_str()));
    assert_eq!(
        answered.metadata.annotations.unwrap()[chunks::DOWNLOAD_REQUESTED],
        download.request
    );
    assert!(
        labelled(&c, ns, chunks::DOWNLOAD_LABEL).await.is_empty(),
        "the CLI deleted the download chunks it read"
    );
    assert!(!out.with_extension("zip.part").exists());

    // Unclaimed download chunks are collected by the operator's sweep.
    pkgs.patch(
        "chunked-export",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"annotations": {chunks::DOWNLOAD_REQUESTED: "unclaimed"}}})),
    )
    .await
    .unwrap();
    wait_for(&pkgs, "chunked-export", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.download.as_ref())
            .is_some_and(|d| d.request == "unclaimed")
    })
    .await;
    let left = labelled(
        &c,
        ns,
        &format!("{}=chunked-export", chunks::DOWNLOAD_LABEL),
    )
    .await;
    assert!(
        !left.is_empty(),
        "the operator wrote chunks for the request"
    );
    let kept = chunks::remove_stale_downloads(&c, Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(kept, 0, "fresh chunks are kept for a client to claim");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let removed = chunks::remove_stale_downloads(&c, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(removed >= left.len(), "{removed} < {}", left.len());
    assert!(labelled(&c, ns, chunks::DOWNLOAD_LABEL).await.is_empty());
}

/// Refusals that leave nothing behind: the edition's limit, checked by the
/// CLI before any chunk is written; a viewer, refused by the API server
/// (403); a user who may create packages but not ConfigMaps, whose package
/// is deleted again.
#[tokio::test]
async fn chunked_uploads_over_the_limit_or_without_rights_store_nothing() {
    let cp = control_plane();
    let c = cp.client(User::Admin).await.unwrap();
    access_roles(&c).await;
    let bytes = ferry_package::fixtures::FixtureSpec::new()
        .tasks(2)
        .to_bytes();
    let file = cp.dir().join("small.zip");
    std::fs::write(&file, &bytes).unwrap();
    let file = file.to_str().unwrap();
    let nothing_stored = |ns: &'static str, name: &'static str| {
        let c = c.clone();
        async move {
            assert!(
                labelled(&c, ns, &format!("ferry.dev/upload={name}"))
                    .await
                    .is_empty(),
                "no chunk of {name} in {ns}"
            );
            assert!(
                Api::<MigrationPackage>::namespaced(c.clone(), ns)
                    .get_opt(name)
                    .await
                    .unwrap()
                    .is_none(),
                "no package {name} in {ns}"
            );
        }
    };

    // Basic offers no local upload: refused from the Workspace's edition.
    let basic = "cli-chunks-basic";
    destination(&c, "t-cli-chunks-basic", Edition::Basic, basic).await;
    let r = migrate(&["upload", file, "--name", "b", "-n", basic]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("Basic edition") && r.stderr.contains("nothing was sent"),
        "{}",
        r.stderr
    );
    nothing_stored(basic, "b").await;

    // Over 30 MB: refused before connecting.
    let pro = "cli-chunks-pro";
    destination(&c, "t-cli-chunks-pro", Edition::Professional, pro).await;
    let big = cp.dir().join("big.zip");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(31 * 1024 * 1024)
        .unwrap();
    let r = migrate(&["upload", big.to_str().unwrap(), "--name", "big", "-n", pro]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("nothing was sent"), "{}", r.stderr);
    nothing_stored(pro, "big").await;

    // A viewer: the API server refuses the package, before any chunk.
    bind(
        &c,
        pro,
        "ClusterRole",
        "ferry-workspace-viewer",
        User::Viewer,
    )
    .await;
    let victor = cp.kubeconfig(User::Viewer);
    let r = migrate_with(&victor, &["upload", file, "--name", "v", "-n", pro]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr
            .contains("forbidden to create migrationpackage v in namespace cli-chunks-pro")
            && r.stderr.contains("ferry-workspace-admin"),
        "{}",
        r.stderr
    );
    nothing_stored(pro, "v").await;

    // Packages but not ConfigMaps: the first chunk is refused (403) and the
    // package is deleted again.
    let partial = "cli-chunks-partial";
    destination(&c, "t-cli-chunks-partial", Edition::Professional, partial).await;
    let role: k8s_openapi::api::rbac::v1::Role = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "packages-only", "namespace": partial},
        "rules": [{"apiGroups": ["ferry.dev"], "resources": ["migrationpackages"],
                   "verbs": ["get", "create", "delete"]}]
    }))
    .unwrap();
    Api::<k8s_openapi::api::rbac::v1::Role>::namespaced(c.clone(), partial)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    bind(&c, partial, "Role", "packages-only", User::Viewer).await;
    let r = migrate_with(&victor, &["upload", file, "--name", "p", "-n", partial]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr.contains("uploading chunk 0 of 1")
            && r.stderr.contains("forbidden to create configmap")
            && r.stderr.contains("deleted again"),
        "{}",
        r.stderr
    );
    nothing_stored(partial, "p").await;
}

/// The operator's side on its own: chunks still missing are a wait
/// (Reconciling), a chunk changed after it was written is a refusal naming
/// it, and a declared size over the edition's limit is refused before any
/// chunk is read.
#[tokio::test]
async fn the_operator_waits_for_missing_chunks_and_refuses_a_tampered_one() {
    use ferry::conditions::{RECONCILING, STALLED, find};
    use ferry::controller::chunks;
    use k8s_openapi::api::core::v1::ConfigMap;
    let cp = control_plane();
    let c = cp.client(User::Admin).await.unwrap();
    let ns = "cli-chunks-tamper";
    destination(&c, "t-cli-chunks-tamper", Edition::Professional, ns).await;
    let bytes = ferry_package::fixtures::FixtureSpec::new()
        .tasks(2)
        .resource_bytes(300 * 1024)
        .to_bytes();
    let count = chunks::chunk_count(bytes.len() as u64);
    assert_eq!(count, 2);
    let pkgs: Api<MigrationPackage> = Api::namespaced(c.clone(), ns);
    let package = |name: &str, digest: &str, count: u32, size: u64| -> MigrationPackage {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "ferry.dev/v1alpha1", "kind": "MigrationPackage",
            "metadata": {"name": name},
            "spec": {"source": {"upload": {"digest": digest, "chunks": {"count": count, "size": size}}}}
        }))
        .unwrap()
    };
    let created = pkgs
        .create(
            &PostParams::default(),
            &package("tampered", &sha256_of(&bytes), count, bytes.len() as u64),
        )
        .await
        .unwrap();
    let uid = kube::ResourceExt::uid(&created).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), ns);
    let piece = |i: usize| {
        &bytes[i * chunks::CHUNK_BYTES..((i + 1) * chunks::CHUNK_BYTES).min(bytes.len())]
    };
    let name = |i: u32| chunks::upload_chunk_name("tampered", &uid, i);
    cms.create(
        &PostParams::default(),
        &chunks::chunk(
            name(0),
            chunks::upload_labels("tampered"),
            chunks::owner(&created),
            0,
            piece(0),
        ),
    )
    .await
    .unwrap();
    // The operator may have looked before chunk 0 too ("received 0 of 2"):
    // wait for the look that saw it.
    let waiting = wait_for(&pkgs, "tampered", |p| {
        p.status
            .as_ref()
            .and_then(|s| find(&s.conditions, RECONCILING))
            .is_some_and(|r| {
                r.status == "True"
                    && r.reason == "WaitingForChunks"
                    && r.message.contains("received 1 of 2")
            })
    })
    .await;
    let status = waiting.status.unwrap();
    let reconciling = find(&status.conditions, RECONCILING).unwrap();
    assert_eq!(
        reconciling.message,
        "received 1 of 2 upload chunks; waiting for chunk 1"
    );
    assert!(status.artifact.is_none() && status.problems.is_empty());

    // Chunk 1 arrives with bytes other than its digest annotation names.
    let mut bad = chunks::chunk(
        name(1),
        chunks::upload_labels("tampered"),
        chunks::owner(&created),
        1,
        piece(1),
    );
    let mut changed = piece(1).to_vec();
    changed[0] ^= 0xff;
    bad.binary_data
        .as_mut()
        .unwrap()
        .insert(chunks::CHUNK_KEY.into(), k8s_openapi::ByteString(changed));
    cms.create(&PostParams::default(), &bad).await.unwrap();
    let refused = wait_for(&pkgs, "tampered", |p| {
        p.status
            .as_ref()
            .and_then(|s| find(&s.conditions, STALLED))
            .is_some_and(|s| s.status == "True")
    })
    .await;
    let status = refused.status.unwrap();
    let stalled = find(&status.conditions, STALLED).unwrap();
    assert_eq!(stalled.reason, "ChunkDigestMismatch", "{stalled:?}");
    let chunk_name = name(1);
    assert!(
        stalled
            .message
            .contains(&format!("chunk 1 (ConfigMap {ns}/{chunk_name})"))
            && stalled.message.contains("changed after it was written"),
        "{}",
        stalled.message
    );
    assert!(status.artifact.is_none(), "nothing stored");
    let r = migrate(&["preview", "tampered", "-n", ns]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains(&chunk_name), "{}", r.stdout);

    // A declared size over 30 MB: refused without reading a chunk.
    let size = 31 * 1024 * 1024;
    pkgs.create(
        &PostParams::default(),
        &package("too-big", &sha256_of(b"x"), chunks::chunk_count(size), size),
    )
    .await
    .unwrap();
    let refused = wait_for(&pkgs, "too-big", |p| {
        p.status
            .as_ref()
            .and_then(|s| find(&s.conditions, STALLED))
            .is_some_and(|s| s.status == "True")
    })
    .await;
    let stalled = find(&refused.status.as_ref().unwrap().conditions, STALLED)
        .unwrap()
        .clone();
    assert_eq!(stalled.reason, "PackageTooLarge", "{stalled:?}");
    assert!(stalled.message.contains("31457280"), "{}", stalled.message);
}

/// A 30 MB package through the API server, timed (run with --ignored; the
/// numbers are in docs/cli.md).
#[tokio::test]
#[ignore]
async fn a_30_mb_chunked_upload_and_download_timed() {
    let cp = control_plane();
    let c = cp.client(User::Admin).await.unwrap();
    let ns = "cli-chunks-30mb";
    destination(&c, "t-cli-chunks-30mb", Edition::Professional, ns).await;
    let bytes = ferry_package::fixtures::FixtureSpec::new()
        .tasks(5)
        .resource_bytes(9_900 * 1024)
        .to_bytes();
    let file = cp.dir().join("30mb.zip");
    std::fs::write(&file, &bytes).unwrap();
    let t = Instant::now();
    let r = migrate(&["upload", file.to_str().unwrap(), "--name", "big", "-n", ns]);
    assert_eq!(r.code, 0, "{r:?}");
    let uploaded = t.elapsed();
    let r = migrate(&["preview", "big", "-n", ns, "--wait", "--timeout", "5m"]);
    assert_eq!(r.code, 0, "{r:?}");
    let verified = t.elapsed();
    let out = cp.dir().join("30mb-back.zip");
    let t = Instant::now();
    let r = migrate(&["download", "big", out.to_str().unwrap(), "-n", ns]);
    assert_eq!(r.code, 0, "{r:?}");
    let downloaded = t.elapsed();
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    eprintln!(
        "30 MB chunked: {} bytes, {} chunks; upload {uploaded:?}, Ready after {verified:?}, download {downloaded:?}",
        bytes.len(),
        ferry::controller::chunks::chunk_count(bytes.len() as u64)
    );
}
