//! A 10,000-object generated package imports to Completed (Professional:
//! every object applied, committed and deployed), with the real operator
//! binary. Time is printed, not asserted.

use std::time::{Duration, Instant};

use ferry::api::*;
use ferry::conditions::{self, READY};
use ferry_package::fixtures::FixtureSpec;
use kube::Api;
use kube::api::PostParams;

use crate::env::{self, Operator};

const NS: &str = "large-ws";

fn fixture() -> FixtureSpec {
    FixtureSpec::new()
        .seed(3)
        .tasks(8_000)
        .layers(8)
        .tables(1_000)
        .quality_rules(500)
        .file_resources(250)
        .functions(200)
        .service_apis(50)
        .resource_bytes(256)
}

pub async fn run() {
    let cp = env::control_plane();
    let operator = Operator::start(
        &cp.dir().join("large-artifacts"),
        &cp.dir().join("large-operator.log"),
    );
    let c = env::admin().await;
    env::destination(&c, "t-large", Edition::Professional, NS).await;
    let fixture = fixture();
    let planned = env::planned(&fixture);
    let objects: usize = planned.values().map(Vec::len).sum();
    let bytes = fixture.to_bytes();
    assert!(
        bytes.len() as u64 <= ferry::edition::LOCAL_UPLOAD_LIMIT_BYTES,
        "keep the package under the 30 MB upload limit: {} bytes",
        bytes.len()
    );
    eprintln!(
        "10k import: package of {objects} objects, {} bytes",
        bytes.len()
    );
    let url = env::serve(bytes).await;
    let verify = Instant::now();
    env::package_from_url(&c, NS, "large", &url).await;
    let verified_in = verify.elapsed();

    let api: Api<ImportTask> = Api::namespaced(c.clone(), NS);
    let started = Instant::now();
    api.create(&PostParams::default(), &env::task("large", "large"))
        .await
        .unwrap();
    let t = tokio::time::timeout(
        Duration::from_secs(1800),
        env::wait_for(&api, "large", Duration::from_secs(1800), env::finished),
    )
    .await
    .unwrap_or_else(|_| panic!("no end; operator log:\n{}", operator.tail(40)));
    let elapsed = started.elapsed();
    let status = t.status.clone().unwrap();
    assert_eq!(
        status.phase,
        ImportPhase::Completed,
        "{:?}\noperator log:\n{}",
        status.message,
        operator.tail(40)
    );
    assert!(conditions::is_true(&status.conditions, READY));
    let imported: u64 = status.results.iter().map(|r| r.created).sum();
    eprintln!(
        "10k import: {imported} objects imported in {:.1}s = {:.0} objects/s (fetch and verification before: {:.1}s)",
        elapsed.as_secs_f64(),
        env::rate(imported as usize, elapsed),
        verified_in.as_secs_f64()
    );
    eprintln!("10k import: phases {}", env::phase_durations(&status));
    if let Some(p) = status.progress.as_ref().filter(|p| p.done != p.total) {
        // Not asserted here (it is not what this test is about), but shown:
        // the progress ticker's merge patch outlives the phase it counted.
        eprintln!(
            "10k import: NOTE the Completed task still shows progress {}/{}",
            p.done, p.total
        );
    }
    assert_eq!(imported as usize, objects, "results: {:#?}", status.results);
    let problems = env::duplicates_and_missing(&planned, &env::landed(&c, NS).await);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let report = status.report.expect("a report");
    assert_eq!(report.records as usize, objects);
    eprintln!(
        "10k import: report in {} ConfigMap(s)",
        report.config_maps.len()
    );
    drop(operator);
}
