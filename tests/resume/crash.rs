//! The operator (the real binary) is killed with SIGKILL in the middle of
//! Importing a 2,000-object package and restarted on the same artifact
//! store; the import must finish with every object once, none missing, the
//! objects written before the kill untouched (same UID), all Deployed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry::api::*;
use ferry::conditions::{self, READY};
use ferry_package::fixtures::FixtureSpec;
use kube::Api;
use kube::api::PostParams;

use crate::env::{self, Operator};

const NS: &str = "resume-ws";

pub fn fixture() -> FixtureSpec {
    // 2,000 objects; small file resources keep the zip about 2 MB.
    FixtureSpec::new()
        .seed(7)
        .tasks(1_600)
        .layers(6)
        .tables(200)
        .quality_rules(100)
        .file_resources(50)
        .functions(30)
        .service_apis(20)
        .resource_bytes(256)
}

pub async fn run() {
    let cp = env::control_plane();
    let storage = cp.dir().join("resume-artifacts");
    let first = Operator::start(&storage, &cp.dir().join("resume-operator-1.log"));
    let c = env::admin().await;
    env::destination(&c, "t-resume", Edition::Professional, NS).await;

    let fixture = fixture();
    let bytes = fixture.to_bytes();
    let planned = env::planned(&fixture);
    let objects: usize = planned.values().map(Vec::len).sum();
    eprintln!(
        "crash-safe resume: package of {objects} objects, {} bytes",
        bytes.len()
    );
    let url = env::serve(bytes).await;
    env::package_from_url(&c, NS, "big", &url).await;

    let api: Api<ImportTask> = Api::namespaced(c.clone(), NS);
    api.create(&PostParams::default(), &env::task("resume", "big"))
        .await
        .unwrap();

    // Wait until Importing has written some objects (status.progress is
    // patched about once a second), then kill at once.
    let deadline = Instant::now() + Duration::from_secs(300);
    let (phase_at_kill, progress_at_kill) = loop {
        let t = api.get("resume").await.unwrap();
        let s = t.status.clone().unwrap_or_default();
        let done = s.progress.as_ref().map_or(0, |p| p.done);
        let importing = s.phase == ImportPhase::Importing && done > 0;
        let past = s.phase > ImportPhase::Importing && !s.phase.is_terminal();
        if importing || past {
            break (s.phase, s.progress.clone());
        }
        assert!(
            !s.phase.is_terminal(),
            "the import ended ({:?}: {:?}) before the operator could be killed; make the package bigger",
            s.phase,
            s.message
        );
        assert!(
            Instant::now() < deadline,
            "the import never reached Importing with progress: {s:#?}\noperator log:\n{}",
            first.tail(30)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    first.kill();
    eprintln!(
        "crash-safe resume: killed the operator in {phase_at_kill:?} at progress {:?}",
        progress_at_kill.as_ref().map(|p| (p.done, p.total))
    );

    // What existed when the operator died (nothing writes now).
    let at_kill = env::landed(&c, NS).await;
    let before: BTreeMap<(ferry_package::ObjectType, String), (String, Option<i64>)> = at_kill
        .iter()
        .flat_map(|(t, objs)| {
            objs.iter()
                .map(move |o| ((*t, o.kube_name.clone()), (o.uid.clone(), o.generation)))
        })
        .collect();
    eprintln!(
        "crash-safe resume: {} of {objects} objects existed at the kill",
        before.len()
    );

    let second = Operator::start(&storage, &cp.dir().join("resume-operator-2.log"));
    let started = Instant::now();
    let t = tokio::time::timeout(
        Duration::from_secs(900),
        env::wait_for(&api, "resume", Duration::from_secs(900), env::finished),
    )
    .await
    .unwrap_or_else(|_| panic!("no end after restart; log:\n{}", second.tail(40)));
    eprintln!(
        "crash-safe resume: finished {:.1}s after the restart",
        started.elapsed().as_secs_f64()
    );
    let status = t.status.clone().unwrap();
    assert_eq!(
        status.phase,
        ImportPhase::Completed,
        "after the restart the import must complete: {:?}\noperator log:\n{}",
        status.message,
        second.tail(40)
    );
    assert!(conditions::is_true(&status.conditions, READY));
    assert!(
        !conditions::is_true(&status.conditions, "PartiallyImported"),
        "a resumed import must not see its own objects as conflicts: {:#?}",
        status.conditions
    );
    eprintln!(
        "crash-safe resume: phases {}",
        env::phase_durations(&status)
    );

    // Zero duplicates, zero missing.
    let after = env::landed(&c, NS).await;
    let problems = env::duplicates_and_missing(&planned, &after);
    assert!(
        problems.is_empty(),
        "BUG: the resumed import duplicated or lost objects:\n{}",
        problems.join("\n")
    );

    // Objects written before the kill were not recreated.
    let now: BTreeMap<_, _> = after
        .iter()
        .flat_map(|(t, objs)| {
            objs.iter()
                .map(move |o| ((*t, o.kube_name.clone()), (o.uid.clone(), o.generation)))
        })
        .collect();
    let recreated: Vec<String> = before
        .iter()
        .filter(|(k, (uid, _))| now.get(*k).map(|(u, _)| u) != Some(uid))
        .map(|((t, n), _)| format!("{}/{n}", t.as_str()))
        .collect();
    assert!(
        recreated.is_empty(),
        "BUG: {} objects present at the kill were deleted and created again (new UID), first: {:?}",
        recreated.len(),
        &recreated[..recreated.len().min(5)]
    );
    // Content is deterministic: re-applying it changes nothing, so no
    // object's spec was ever written twice with different content.
    let rewritten: Vec<String> = after
        .iter()
        .flat_map(|(t, objs)| {
            objs.iter()
                .filter(|o| o.generation != Some(1))
                .map(move |o| {
                    format!(
                        "{}/{} (generation {:?})",
                        t.as_str(),
                        o.kube_name,
                        o.generation
                    )
                })
        })
        .collect();
    assert!(
        rewritten.is_empty(),
        "BUG: {} objects had their spec changed after creation, first: {:?}",
        rewritten.len(),
        &rewritten[..rewritten.len().min(5)]
    );

    // Every object went all the way.
    let not_deployed: Vec<String> = after
        .iter()
        .flat_map(|(t, objs)| {
            objs.iter()
                .filter(|o| o.state.as_deref() != Some("Deployed"))
                .map(move |o| format!("{}/{} ({:?})", t.as_str(), o.kube_name, o.state))
        })
        .collect();
    assert!(
        not_deployed.is_empty(),
        "BUG: {} objects are not Deployed after the resumed import, first: {:?}",
        not_deployed.len(),
        &not_deployed[..not_deployed.len().min(5)]
    );
    for r in &status.results {
        let want = planned
            .iter()
            .find(|(t, _)| t.as_str() == r.type_)
            .map_or(0, |(_, n)| n.len()) as u64;
        assert_eq!(
            (r.created, r.conflict, r.failed, r.committed, r.deployed),
            (want, 0, 0, want, want),
            "status.results for {}",
            r.type_
        );
    }
    drop(second);
}
