//! MigrationPackage sources, verification, the artifact store and the
//! export limit, on the real apiserver.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry::api::*;
use ferry::conditions::{self, READY, STALLED};
use ferry::testenv::User;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use crate::support::{client, tenant_and_workspace, wait_for};

const WAIT: Duration = Duration::from_secs(60);

async fn zip_config_map(c: &Client, ns: &str, name: &str, bytes: Vec<u8>) {
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        binary_data: Some(BTreeMap::from([(
            "package.zip".to_string(),
            ByteString(bytes),
        )])),
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(c.clone(), ns)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
}

fn package(name: &str, source: serde_json::Value) -> MigrationPackage {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "MigrationPackage",
        "metadata": {"name": name}, "spec": {"source": source}
    }))
    .unwrap()
}

fn settled(p: &MigrationPackage) -> bool {
    p.status.as_ref().is_some_and(|s| {
        s.observed_generation == p.metadata.generation
            && (conditions::is_true(&s.conditions, READY)
                || conditions::is_true(&s.conditions, STALLED))
    })
}

#[tokio::test]
async fn a_config_map_package_is_verified_stored_and_summarised() {
    let c = client(User::Admin).await;
    tenant_and_workspace(&c, "t-pkg", Edition::Standard, "pkg-dest", "pkg-dest").await;
    let fixture = ferry_package::fixtures::FixtureSpec::new()
        .tasks(12)
        .tables(4)
        .quality_rules(2);
    let bytes = fixture.to_bytes();
    zip_config_map(&c, "pkg-dest", "q4-zip", bytes.clone()).await;
    let api: Api<MigrationPackage> = Api::namespaced(c.clone(), "pkg-dest");
    api.create(
        &PostParams::default(),
        &package(
            "q4",
            serde_json::json!({"configMap": {"name": "q4-zip", "key": "package.zip"}}),
        ),
    )
    .await
    .unwrap();
    let p = wait_for(&api, "q4", WAIT, settled).await;
    let status = p.status.unwrap();
    assert!(
        conditions::is_true(&status.conditions, READY),
        "{:?}",
        status.conditions
    );
    let artifact = status.artifact.unwrap();
    let expected = format!("sha256:{}", ferry_package::writer::sha256_hex(&bytes));
    assert_eq!(
        (artifact.digest.as_str(), artifact.size),
        (expected.as_str(), bytes.len() as u64)
    );
    let summary = status.summary.unwrap();
    assert_eq!(summary.objects.get("ScheduledTask"), Some(&12));
    assert_eq!(summary.objects.get("QualityRule"), Some(&2));
    assert_eq!(summary.source_project.as_deref(), Some("sales_dev"));
    assert!(
        summary
            .compute_resources
            .iter()
            .any(|r| r.name == "sales_mc_dev" && r.type_ == "MaxCompute"),
        "{:?}",
        summary.compute_resources
    );
}

#[tokio::test]
async fn a_bad_package_is_refused_naming_the_entry_and_the_rule() {
    let c = client(User::Admin).await;
    tenant_and_workspace(&c, "t-bad", Edition::Professional, "pkg-bad", "pkg-bad").await;
    let bad = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/ferry-package/tests/bad/path-escape.zip"
    ))
    .unwrap();
    zip_config_map(&c, "pkg-bad", "evil-zip", bad).await;
    let api: Api<MigrationPackage> = Api::namespaced(c.clone(), "pkg-bad");
    api.create(
        &PostParams::default(),
        &package(
            "evil",
            serde_json::json!({"configMap": {"name": "evil-zip", "key": "package.zip"}}),
        ),
    )
    .await
    .unwrap();
    let p = wait_for(&api, "evil", WAIT, settled).await;
    let status = p.status.unwrap();
    let ready = conditions::find(&status.conditions, READY).unwrap();
    assert_eq!(ready.reason, "VerificationFailed");
    assert!(
        status
            .problems
            .iter()
            .any(|p| p.contains("path-escape") && p.contains("..")),
        "{:?}",
        status.problems
    );
    assert!(
        status.artifact.is_none(),
        "nothing is stored for a refused package"
    );
}

#[tokio::test]
async fn basic_tenants_cannot_upload_locally() {
    let c = client(User::Admin).await;
    tenant_and_workspace(
        &c,
        "t-basic-upload",
        Edition::Basic,
        "pkg-basic",
        "pkg-basic",
    )
    .await;
    zip_config_map(
        &c,
        "pkg-basic",
        "local-zip",
        ferry_package::fixtures::FixtureSpec::new()
            .tasks(2)
            .to_bytes(),
    )
    .await;
    let api: Api<MigrationPackage> = Api::namespaced(c.clone(), "pkg-basic");
    api.create(
        &PostParams::default(),
        &package(
            "local",
            serde_json::json!({"configMap": {"name": "local-zip", "key": "package.zip"}}),
        ),
    )
    .await
    .unwrap();
    let p = wait_for(&api, "local", WAIT, settled).await;
    let ready = conditions::find(&p.status.unwrap().conditions, READY)
        .unwrap()
        .clone();
    assert_eq!(ready.reason, "EditionLimit");
    assert!(
        ready.message.contains("does not offer local upload"),
        "{}",
        ready.message
    );
}

/// Fifty exports at once on a Basic tenant: exactly ten succeed, forty are
/// refused with a message saying to upgrade, and the tenant counts ten.
fn scheduled_task(kube_name: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> ScheduledTask {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ScheduledTask", "metadata": {"name": kube_name},
        "spec": {"name": name, "owner": "1234567", "computeResource": "sales_mc_dev",
                  "script": {"language": "odps-sql", "content": "SELECT 1;"}, "trigger": {"cron": "00 00 02 * * ?"},
                  "inputs": inputs, "outputs": outputs}
    }))
    .unwrap()
}

/// The seed: "Each successful export task generates one package", and the
/// Basic edition allows 10. Fifty exports at once, 13 of them made to fail
/// verification (their workspace's tasks depend on each other in a cycle):
/// exactly 10 succeed, none of them a failing one, every other export says
/// why (verification, or the limit), and the tenant counts exactly the 10
/// successes.
#[tokio::test]
async fn concurrent_exports_on_basic_count_exactly_to_the_limit() {
    let c = client(User::Admin).await;
    tenant_and_workspace(&c, "t-export", Edition::Basic, "exp-src", "exp-src").await;
    tenant_and_workspace(&c, "t-export", Edition::Basic, "exp-cyc", "exp-cyc").await;
    Api::<ScheduledTask>::namespaced(c.clone(), "exp-src")
        .create(
            &PostParams::default(),
            &scheduled_task("load-orders", "load_orders", &[], &["exp_src.load_orders"]),
        )
        .await
        .unwrap();
    let cyclic: Api<ScheduledTask> = Api::namespaced(c.clone(), "exp-cyc");
    for (k, n, i, o) in [
        ("a", "a", "exp_cyc.b", "exp_cyc.a"),
        ("b", "b", "exp_cyc.a", "exp_cyc.b"),
    ] {
        cyclic
            .create(&PostParams::default(), &scheduled_task(k, n, &[i], &[o]))
            .await
            .unwrap();
    }

    // Packages in exp-src export exp-cyc too: its administrators allow it.
    crate::support::grant_export(&c, "exp-cyc", "exp-src").await;
    let failing = |i: usize| i.is_multiple_of(4);
    let api: Api<MigrationPackage> = Api::namespaced(c.clone(), "exp-src");
    let creates = (0..50).map(|i| {
        let api = api.clone();
        let workspace = if failing(i) { "exp-cyc" } else { "exp-src" };
        async move {
            api.create(
                &PostParams::default(),
                &package(
                    &format!("exp-{i}"),
                    serde_json::json!({"export": {"workspace": workspace}}),
                ),
            )
            .await
            .unwrap()
        }
    });
    futures::future::join_all(creates).await;
    let mut ready = Vec::new();
    let mut at_limit = 0;
    let mut failed = 0;
    for i in 0..50 {
        let p = wait_for(&api, &format!("exp-{i}"), WAIT, settled).await;
        let cond = conditions::find(&p.status.as_ref().unwrap().conditions, READY)
            .unwrap()
            .clone();
        if cond.status == "True" {
            assert!(!failing(i), "exp-{i} should have failed verification");
            ready.push(p.metadata.uid.clone().unwrap());
        } else if cond.reason == "EditionLimitReached" {
            assert!(
                cond.message.contains("upgrade the edition"),
                "{}",
                cond.message
            );
            at_limit += 1;
        } else {
            assert!(failing(i), "exp-{i}: {cond:?}");
            assert_eq!(cond.reason, "VerificationFailed", "exp-{i}: {cond:?}");
            assert!(
                cond.message.contains("dependency-cycle"),
                "{}",
                cond.message
            );
            failed += 1;
        }
    }
    // A failing export that starts once the ten slots are taken is refused
    // at the limit before it is even written: either refusal is right.
    assert_eq!(ready.len(), 10);
    assert_eq!(at_limit + failed, 40);
    assert!(failed > 0, "some failing exports were verified and refused");
    let status = Api::<Tenant>::all(c)
        .get("t-export")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.exported_packages, 10);
    let mut counted = status.counted_exports.clone();
    counted.sort();
    ready.sort();
    assert_eq!(
        counted, ready,
        "the tenant counts exactly the successful exports"
    );
}

/// The measurement: three exports refused by verification on a Basic
/// tenant used to take three of its ten slots.
#[tokio::test]
async fn an_export_that_fails_verification_is_not_counted_against_the_limit() {
    let c = client(User::Admin).await;
    tenant_and_workspace(&c, "t-export-fail", Edition::Basic, "expf-src", "expf-src").await;
    let tasks: Api<ScheduledTask> = Api::namespaced(c.clone(), "expf-src");
    for (k, n, i, o) in [
        ("a", "a", "expf_src.b", "expf_src.a"),
        ("b", "b", "expf_src.a", "expf_src.b"),
    ] {
        tasks
            .create(&PostParams::default(), &scheduled_task(k, n, &[i], &[o]))
            .await
            .unwrap();
    }
    let api: Api<MigrationPackage> = Api::namespaced(c.clone(), "expf-src");
    for i in 0..3 {
        api.create(
            &PostParams::default(),
            &package(
                &format!("bad-{i}"),
                serde_json::json!({"export": {"workspace": "expf-src"}}),
            ),
        )
        .await
        .unwrap();
    }
    for i in 0..3 {
        let p = wait_for(&api, &format!("bad-{i}"), WAIT, settled).await;
        let cond = conditions::find(&p.status.as_ref().unwrap().conditions, READY).unwrap();
        assert_eq!(cond.reason, "VerificationFailed", "{cond:?}");
    }
    let status = Api::<Tenant>::all(c)
        .get("t-export-fail")
        .await
        .unwrap()
        .status
        .unwrap_or_default();
    assert_eq!(status.exported_packages, 0);
    assert!(status.counted_exports.is_empty());
}

/// A counted export that fails when it is made again (its stored artifact was
/// lost, and the workspace's tasks now form a cycle) gives its slot back:
/// the tenant counts only packages that exist.
#[tokio::test]
async fn a_counted_export_that_fails_when_made_again_gives_its_slot_back() {
    let c = client(User::Admin).await;
    tenant_and_workspace(&c, "t-export-again", Edition::Basic, "expa-src", "expa-src").await;
    let tasks: Api<ScheduledTask> = Api::namespaced(c.clone(), "expa-src");
    tasks
        .create(
            &PostParams::default(),
            &scheduled_task("load", "load", &[], &["expa_src.load"]),
        )
        .await
        .unwrap();
    let api: Api<MigrationPackage> = Api::namespaced(c.clone(), "expa-src");
    api.create(
        &PostParams::default(),
        &package(
            "once",
            serde_json::json!({"export": {"workspace": "expa-src"}}),
        ),
    )
    .await
    .unwrap();
    let p = wait_for(&api, "once", WAIT, settled).await;
    let status = p.status.unwrap();
    assert!(
        conditions::is_true(&status.conditions, READY),
        "{:?}",
        status.conditions
    );
    let tenants: Api<Tenant> = Api::all(c.clone());
    let counted = |t: Tenant| {
        let s = t.status.unwrap_or_default();
        (s.exported_packages, s.counted_exports.len())
    };
    assert_eq!(
        counted(tenants.get("t-export-again").await.unwrap()),
        (1, 1)
    );

    for (k, n, i, o) in [
        ("a", "a", "expa_src.b", "expa_src.a"),
        ("b", "b", "expa_src.a", "expa_src.b"),
    ] {
        tasks
            .create(&PostParams::default(), &scheduled_task(k, n, &[i], &[o]))
            .await
            .unwrap();
    }
    let hex = status.artifact.unwrap().digest.replace("sha256:", "");
    let stored = crate::support::control_plane()
        .dir()
        .join("artifacts/sha256")
        .join(format!("{hex}.zip"));
    std::fs::remove_file(&stored).unwrap();
    // A download request makes the operator look again (it reconciles a
    // package on its spec, identity and download requests only); it finds
    // no artifact.
    api.patch(
        "once",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(serde_json::json!({"metadata": {"annotations": {"ferry.dev/download-requested-at": "look-again"}}})),
    )
    .await
    .unwrap();
    let p = wait_for(&api, "once", WAIT, |p| {
        p.status.as_ref().is_some_and(|s| {
            conditions::find(&s.conditions, READY).is_some_and(|c| c.reason == "VerificationFailed")
        })
    })
    .await;
    assert!(!p.status.unwrap().problems.is_empty());
    assert_eq!(
        counted(tenants.get("t-export-again").await.unwrap()),
        (0, 0)
    );
}

/// The seed: "Import and export of tasks created in new-version Data Studio
/// are not supported." Such objects are left out of an export, and the
/// package's status says so, object by object.
#[tokio::test]
async fn objects_of_the_new_version_data_studio_are_skipped_at_export_and_listed_in_the_summary() {
    let c = client(User::Admin).await;
    tenant_and_workspace(
        &c,
        "t-export-new",
        Edition::Professional,
        "expn-src",
        "expn-src",
    )
    .await;
    let tasks: Api<ScheduledTask> = Api::namespaced(c.clone(), "expn-src");
    tasks
        .create(
            &PostParams::default(),
            &scheduled_task("legacy", "legacy_job", &[], &["expn_src.legacy_job"]),
        )
        .await
        .unwrap();
    let new: ScheduledTask = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ScheduledTask", "metadata": {"name": "new-one"},
        "spec": {"name": "new_job", "studio": "New", "computeResource": "sales_mc_dev",
                  "script": {"content": "SELECT 1;"}, "outputs": ["expn_src.new_job"]}
    }))
    .unwrap();
    tasks.create(&PostParams::default(), &new).await.unwrap();
    let api: Api<MigrationPackage> = Api::namespaced(c.clone(), "expn-src");
    api.create(
        &PostParams::default(),
        &package(
            "with-new",
            serde_json::json!({"export": {"workspace": "expn-src"}}),
        ),
    )
    .await
    .unwrap();
    let p = wait_for(&api, "with-new", WAIT, settled).await;
    let status = p.status.unwrap();
    assert!(
        conditions::is_true(&status.conditions, READY),
        "{:?}",
        status.conditions
    );
    let summary = status.summary.unwrap();
    assert_eq!(summary.total_objects, 1);
    assert_eq!(summary.skipped_objects, 1);
    assert_eq!(
        summary.skipped,
        ["ScheduledTask/new_job: created in the new-version Data Studio, which cannot be exported"]
    );
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

/// Export → download → upload into another workspace → the same digest; a
/// viewer's upload is refused; an upload cannot be claimed from elsewhere.
#[tokio::test]
async fn an_exported_package_downloads_and_uploads_elsewhere_with_the_same_digest() {
    use crate::support::{artifact_port, token};
    let c = client(User::Admin).await;
    tenant_and_workspace(&c, "t-roundtrip", Edition::Professional, "rt-src", "rt-src").await;
    tenant_and_workspace(&c, "t-roundtrip", Edition::Professional, "rt-dst", "rt-dst").await;
    let task: ScheduledTask = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "ScheduledTask", "metadata": {"name": "t1"},
        "spec": {"name": "nightly_job", "computeResource": "sales_mc_dev", "script": {"content": "SELECT 1;"}}
    }))
    .unwrap();
    Api::<ScheduledTask>::namespaced(c.clone(), "rt-src")
        .create(&PostParams::default(), &task)
        .await
        .unwrap();
    let src: Api<MigrationPackage> = Api::namespaced(c.clone(), "rt-src");
    src.create(
        &PostParams::default(),
        &package(
            "exported",
            serde_json::json!({"export": {"workspace": "rt-src"}}),
        ),
    )
    .await
    .unwrap();
    let exported = wait_for(&src, "exported", WAIT, settled).await;
    let digest = exported
        .status
        .unwrap()
        .artifact
        .expect("exported and stored")
        .digest;

    let base = format!("http://127.0.0.1:{}/packages", artifact_port());
    let admin = token(User::Admin);
    let got = http()
        .get(format!("{base}/rt-src/exported"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["x-ferry-digest"].to_str().unwrap(), digest);
    let bytes = got.bytes().await.unwrap().to_vec();
    assert_eq!(
        format!("sha256:{}", ferry_package::writer::sha256_hex(&bytes)),
        digest,
        "the download is the artifact"
    );

    // Without a token, and as a viewer with no rights there: refused.
    let anonymous = http()
        .put(format!("{base}/rt-dst/copy"))
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let viewer = http()
        .put(format!("{base}/rt-dst/copy"))
        .bearer_auth(token(User::Viewer))
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(viewer.status(), 403);
    assert!(
        viewer
            .text()
            .await
            .unwrap()
            .contains("victor may not create migrationpackages")
    );

    let up = http()
        .put(format!("{base}/rt-dst/copy"))
        .bearer_auth(&admin)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 201);
    let answer: serde_json::Value = serde_json::from_str(&up.text().await.unwrap()).unwrap();
    assert_eq!(answer["digest"], digest.as_str());
    let dst: Api<MigrationPackage> = Api::namespaced(c.clone(), "rt-dst");
    dst.create(
        &PostParams::default(),
        &package("copy", serde_json::json!({"upload": {"digest": digest}})),
    )
    .await
    .unwrap();
    let copy = wait_for(&dst, "copy", WAIT, settled).await;
    assert_eq!(
        copy.status.unwrap().artifact.unwrap().digest,
        digest,
        "identical digest in the other workspace"
    );

    // The upload belongs to rt-dst: a package elsewhere cannot claim it.
    src.create(
        &PostParams::default(),
        &package("claim", serde_json::json!({"upload": {"digest": digest}})),
    )
    .await
    .unwrap();
    let claim = wait_for(&src, "claim", WAIT, settled).await;
    let ready = conditions::find(&claim.status.unwrap().conditions, READY)
        .unwrap()
        .clone();
    assert_eq!(ready.reason, "SourceNotFound", "{}", ready.message);
}

#[tokio::test]
async fn a_secret_package_is_verified_like_a_config_map() {
    use k8s_openapi::api::core::v1::Secret;
    let c = client(User::Admin).await;
    tenant_and_workspace(
        &c,
        "t-secret",
        Edition::Enterprise,
        "pkg-secret",
        "pkg-secret",
    )
    .await;
    let bytes = ferry_package::fixtures::FixtureSpec::new()
        .tasks(3)
        .to_bytes();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("zip".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "package.zip".to_string(),
            ByteString(bytes.clone()),
        )])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(c.clone(), "pkg-secret")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    crate::support::grant_secret(&c, "pkg-secret", "zip").await;
    let api: Api<MigrationPackage> = Api::namespaced(c.clone(), "pkg-secret");
    api.create(
        &PostParams::default(),
        &package(
            "s",
            serde_json::json!({"secret": {"name": "zip", "key": "package.zip"}}),
        ),
    )
    .await
    .unwrap();
    api.create(
        &PostParams::default(),
        &package(
            "missing-key",
            serde_json::json!({"secret": {"name": "zip", "key": "nope.zip"}}),
        ),
    )
    .await
    .unwrap();
    let p = wait_for(&api, "s", WAIT, settled).await;
    assert_eq!(
        p.status.unwrap().artifact.unwrap().digest,
        format!("sha256:{}", ferry_package::writer::sha256_hex(&bytes))
    );
    let p = wait_for(&api, "missing-key", WAIT, settled).await;
    let ready = conditions::find(&p.status.unwrap().conditions, READY)
        .unwrap()
        .clone();
    assert_eq!(ready.reason, "SourceNotFound");
    assert!(
        ready.message.contains("has no key \"nope.zip\""),
        "{}",
        ready.message
    );
}

/// The marker a verification leaves while it runs (see
/// `ferry::controller::package::VERIFYING`).
const VERIFYING: &str = "ferry.dev/verification-started";

fn annotation<'a>(p: &'a MigrationPackage, key: &str) -> Option<&'a String> {
    p.metadata.annotations.as_ref().and_then(|a| a.get(key))
}

/// Security review 1.1: a package that killed the operator while it was
/// being verified was verified again after every restart (a crash loop for
/// every tenant). A package carrying the marker of another operator process
/// for its current generation is what such a crash leaves behind: it is
/// refused, not verified again; a re-created package is verified, and a
/// finished verification removes its marker.
/// The seed counts only successful exports, and an operator restart (a
/// rolling upgrade) must not fail the exports it interrupts: an export whose
/// first attempt never recorded a result is tried once more; one whose
/// second attempt was interrupted too is refused, holding no slot, and told
/// to export again (not to "fix the package": it wrote none).
#[tokio::test]
async fn an_export_interrupted_by_an_operator_restart_is_tried_once_more() {
    let c = client(User::Admin).await;
    tenant_and_workspace(&c, "t-export-crash", Edition::Basic, "expc-src", "expc-src").await;
    Api::<ScheduledTask>::namespaced(c.clone(), "expc-src")
        .create(
            &PostParams::default(),
            &scheduled_task("load", "load", &[], &["expc_src.load"]),
        )
        .await
        .unwrap();
    let api: Api<MigrationPackage> = Api::namespaced(c.clone(), "expc-src");
    for (name, marker) in [
        ("once", "1/4242-1700000000000000000"),
        ("twice", "1/4242-1700000000000000000/again"),
    ] {
        let mut p = package(
            name,
            serde_json::json!({"export": {"workspace": "expc-src"}}),
        );
        // As an operator process that died mid-export leaves it.
        p.metadata.annotations = Some(BTreeMap::from([(
            VERIFYING.to_string(),
            marker.to_string(),
        )]));
        api.create(&PostParams::default(), &p).await.unwrap();
    }
    let once = wait_for(&api, "once", WAIT, settled).await;
    let status = once.status.clone().unwrap();
    assert!(
        conditions::is_true(&status.conditions, READY),
        "{:?}",
        status.conditions
    );
    let twice = wait_for(&api, "twice", WAIT, settled).await;
    let status = twice.status.clone().unwrap();
    let ready = conditions::find(&status.conditions, READY).unwrap();
    assert_eq!(ready.reason, "VerificationInterrupted", "{ready:?}");
    assert!(
        ready.message.contains("started twice")
            && ready.message.contains("export again")
            && !ready.message.contains("fix the package"),
        "{}",
        ready.message
    );
    let tenant = Api::<Tenant>::all(c)
        .get("t-export-crash")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(
        tenant.counted_exports,
        vec![once.metadata.uid.unwrap()],
        "only the export that succeeded is counted"
    );
}

#[tokio::test]
async fn an_interrupted_verification_is_refused_not_retried() {
    let c = client(User::Admin).await;
    tenant_and_workspace(&c, "t-crash", Edition::Standard, "pkg-crash", "pkg-crash").await;
    let bytes = ferry_package::fixtures::FixtureSpec::new()
        .tasks(2)
        .to_bytes();
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("zips".into()),
            ..Default::default()
        },
        binary_data: Some(BTreeMap::from([
            ("a.zip".to_string(), ByteString(bytes.clone())),
            ("b.zip".to_string(), ByteString(bytes.clone())),
        ])),
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(c.clone(), "pkg-crash")
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let api: Api<MigrationPackage> = Api::namespaced(c.clone(), "pkg-crash");
    let mut crashed = package(
        "crashed",
        serde_json::json!({"configMap": {"name": "zips", "key": "a.zip"}}),
    );
    // As an operator process that died mid-verification leaves it.
    crashed.metadata.annotations = Some(BTreeMap::from([(
        VERIFYING.to_string(),
        "1/4242-1700000000000000000".to_string(),
    )]));
    api.create(&PostParams::default(), &crashed).await.unwrap();
    let p = wait_for(&api, "crashed", WAIT, settled).await;
    let status = p.status.clone().unwrap();
    let ready = conditions::find(&status.conditions, READY).unwrap();
    assert_eq!(ready.reason, "VerificationInterrupted", "{ready:?}");
    assert!(
        ready.message.contains("never recorded a result") && ready.message.contains(VERIFYING),
        "{}",
        ready.message
    );
    assert!(status.artifact.is_none(), "not verified, not stored");
    assert_eq!(
        annotation(&p, VERIFYING).map(String::as_str),
        Some("1/4242-1700000000000000000"),
        "the record of the interrupted attempt stays"
    );

    // The source is immutable: a new attempt is a new object, verified,
    // with its marker removed once the result is in status.
    api.delete("crashed", &Default::default()).await.unwrap();
    api.create(
        &PostParams::default(),
        &package(
            "crashed",
            serde_json::json!({"configMap": {"name": "zips", "key": "b.zip"}}),
        ),
    )
    .await
    .unwrap();
    let p = wait_for(&api, "crashed", WAIT, |p| {
        settled(p) && annotation(p, VERIFYING).is_none()
    })
    .await;
    let status = p.status.unwrap();
    assert!(
        conditions::is_true(&status.conditions, READY),
        "{:?}",
        status.conditions
    );

    // A package verified in one go keeps no marker either.
    api.create(
        &PostParams::default(),
        &package(
            "plain",
            serde_json::json!({"configMap": {"name": "zips", "key": "a.zip"}}),
        ),
    )
    .await
    .unwrap();
    let p = wait_for(&api, "plain", WAIT, |p| {
        settled(p) && annotation(p, VERIFYING).is_none()
    })
    .await;
    assert!(conditions::is_true(&p.status.unwrap().conditions, READY));
}

/// Security review 1.3: every problem went into status and into one
/// condition message; 100 000 of them made the status write fail and the
/// package was verified again and again. Status keeps the first 100 and a
/// count, the message stays under 4 KiB, and the event is published (a
/// note over 1 KiB was refused by the apiserver).
#[tokio::test]
async fn thousands_of_problems_keep_the_status_bounded() {
    use ferry_package::{ExportMode, ExportedObject, ObjectType, PackageWriter, SourceInfo};
    let c = client(User::Admin).await;
    tenant_and_workspace(&c, "t-many", Edition::Standard, "pkg-many", "pkg-many").await;
    // One task whose flow depends on 5 000 nodes its document does not
    // define: 5 000 unresolved-dependency problems.
    let depends: Vec<serde_json::Value> = (0..5000)
        .map(|i| serde_json::json!({"nodeId": format!("{{{{missing_{i:05}}}}}"), "type": "Normal"}))
        .collect();
    let task = ExportedObject {
        object_type: ObjectType::ScheduledTask,
        name: "reads_everything".into(),
        document: serde_json::json!({"version": "1.1.0", "kind": "CycleWorkflow", "spec": {
            "nodes": [{"id": "n1", "name": "reads_everything", "script": {"content": "SELECT 1;"}}],
            "flow": [{"nodeId": "{{n1}}", "depends": depends}]
        }}),
        format: Default::default(),
        files: vec![],
    };
    let mut w = PackageWriter::new(
        std::io::Cursor::new(Vec::new()),
        SourceInfo {
            tenant: Some("acme".into()),
            workspace: Some("sales-dev".into()),
            project_name: Some("sales_dev".into()),
            region: Some("cn-shanghai".into()),
        },
        "2026-10-01T00:00:00Z",
        ExportMode::Full,
    );
    w.add(&task).unwrap();
    let bytes = w.finish().unwrap().0.into_inner();
    zip_config_map(&c, "pkg-many", "many-zip", bytes).await;
    let api: Api<MigrationPackage> = Api::namespaced(c.clone(), "pkg-many");
    api.create(
        &PostParams::default(),
        &package(
            "many",
            serde_json::json!({"configMap": {"name": "many-zip", "key": "package.zip"}}),
        ),
    )
    .await
    .unwrap();
    let p = wait_for(&api, "many", WAIT, settled).await;
    let status = p.status.unwrap();
    let ready = conditions::find(&status.conditions, READY).unwrap();
    assert_eq!(ready.reason, "VerificationFailed");
    assert_eq!(status.problems.len(), 101, "first 100 and a count");
    assert!(
        status.problems[0].contains("missing_00000"),
        "{}",
        status.problems[0]
    );
    assert_eq!(
        status.problems[100],
        "... and 4900 more problems, not listed"
    );
    assert!(
        ready.message.starts_with("5000 problems: "),
        "{}",
        ready.message
    );
    assert!(ready.message.len() <= 4096, "{}", ready.message.len());
    // The Warning event made it (its note cut to the apiserver's 1 KiB).
    use k8s_openapi::api::events::v1::Event;
    let events: Api<Event> = Api::namespaced(c.clone(), "pkg-many");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let list = events.list(&Default::default()).await.unwrap();
        let ours = list.items.iter().find(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("many")
                && e.reason.as_deref() == Some("VerificationFailed")
        });
        if let Some(e) = ours {
            let note = e.note.as_deref().unwrap_or_default();
            assert!(note.starts_with("5000 problems: "), "{note}");
            assert!(note.len() <= 1024, "{}", note.len());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no VerificationFailed event for the package"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Security review 2.4: a source name that is not an object name (here a
/// path into another namespace) is refused before any request is built
/// from it.
#[tokio::test]
async fn a_source_name_that_is_a_path_is_refused() {
    let c = client(User::Admin).await;
    tenant_and_workspace(&c, "t-path", Edition::Standard, "pkg-path", "pkg-path").await;
    let api: Api<MigrationPackage> = Api::namespaced(c.clone(), "pkg-path");
    api.create(
        &PostParams::default(),
        &package(
            "sneaky",
            serde_json::json!({"secret": {"name": "../../kube-system/secrets/x", "key": "k"}}),
        ),
    )
    .await
    .unwrap();
    let p = wait_for(&api, "sneaky", WAIT, settled).await;
    let status = p.status.unwrap();
    let ready = conditions::find(&status.conditions, READY).unwrap();
    assert_eq!(ready.reason, "InvalidName", "{ready:?}");
    assert!(
        ready.message.contains("spec.source.secret.name") && ready.message.contains("DNS-1123"),
        "{}",
        ready.message
    );
}

/// Security review 1.3: the summary had one entry per distinct compute
/// resource in the package. It lists the first 100, and the Ready message
/// says how many there are.
#[tokio::test]
async fn a_summary_of_many_compute_resources_stays_bounded() {
    use ferry_package::{ExportMode, ExportedObject, ObjectType, PackageWriter, SourceInfo};
    let c = client(User::Admin).await;
    tenant_and_workspace(&c, "t-wide", Edition::Standard, "pkg-wide", "pkg-wide").await;
    let mut w = PackageWriter::new(
        std::io::Cursor::new(Vec::new()),
        SourceInfo {
            tenant: Some("acme".into()),
            workspace: Some("sales-dev".into()),
            project_name: Some("sales_dev".into()),
            region: Some("cn-shanghai".into()),
        },
        "2026-10-01T00:00:00Z",
        ExportMode::Full,
    );
    for i in 0..150 {
        let spec = serde_json::json!({
            "name": format!("t{i}"), "studio": "Legacy", "computeResource": format!("mc_{i:03}"),
            "script": {"language": "odps-sql", "content": "SELECT 1;"},
            "recurrence": "Normal", "inputs": [], "outputs": [format!("sales_dev.t{i}")],
        });
        w.add(&ExportedObject::from_spec(
            ObjectType::ScheduledTask,
            spec.as_object().unwrap(),
            true,
            Some("MaxCompute"),
        ))
        .unwrap();
    }
    let bytes = w.finish().unwrap().0.into_inner();
    zip_config_map(&c, "pkg-wide", "wide-zip", bytes).await;
    let api: Api<MigrationPackage> = Api::namespaced(c.clone(), "pkg-wide");
    api.create(
        &PostParams::default(),
        &package(
            "wide",
            serde_json::json!({"configMap": {"name": "wide-zip", "key": "package.zip"}}),
        ),
    )
    .await
    .unwrap();
    let p = wait_for(&api, "wide", WAIT, settled).await;
    let status = p.status.unwrap();
    let ready = conditions::find(&status.conditions, READY).unwrap();
    assert_eq!(ready.status, "True", "{ready:?}");
    assert_eq!(status.summary.unwrap().compute_resources.len(), 100);
    assert!(
        ready
            .message
            .contains("the summary lists the first 100 of 150 compute resources"),
        "{}",
        ready.message
    );
}

/// Security review finding 25: the operator took a namespace's tenant from
/// its `ferry.dev/workspace` label alone. A namespace labelled with another
/// namespace's workspace borrowed that tenant's edition (here Enterprise,
/// whose object-store sources Basic does not offer). The Workspace's own
/// `spec.namespace` decides.
#[tokio::test]
async fn a_namespace_labelled_with_another_namespaces_workspace_borrows_nothing() {
    use k8s_openapi::api::core::v1::Namespace;
    let c = client(User::Admin).await;
    tenant_and_workspace(
        &c,
        "t-borrowed",
        Edition::Enterprise,
        "borrowed-ws",
        "borrowed-ws",
    )
    .await;
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "borrower", "labels": {"ferry.dev/workspace": "borrowed-ws"}}
    }))
    .unwrap();
    Api::<Namespace>::all(c.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let api: Api<MigrationPackage> = Api::namespaced(c.clone(), "borrower");
    api.create(
        &PostParams::default(),
        &package(
            "p",
            serde_json::json!({"objectStore": {"endpoint": "https://oss.example.com", "bucket": "b", "key": "p.zip"}}),
        ),
    )
    .await
    .unwrap();
    let p = wait_for(&api, "p", Duration::from_secs(60), settled).await;
    let status = p.status.unwrap();
    let ready = conditions::find(&status.conditions, READY).unwrap();
    assert_eq!(ready.reason, "NoWorkspace", "{ready:?}");
    assert!(
        ready
            .message
            .contains("Workspace borrowed-ws holds namespace borrowed-ws"),
        "{}",
        ready.message
    );
    assert!(conditions::is_true(&status.conditions, STALLED));
}
