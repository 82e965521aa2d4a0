//! Security review 1.1, for real: the operator (the real binary) is killed
//! with SIGKILL while it verifies a package, as the OOM killer would kill it
//! on a hostile one. The restarted operator must refuse the package with a
//! reason that says what happened, and must not verify it again (a package
//! that killed the operator once would kill it after every restart: a crash
//! loop for every tenant). Fetching is streamed to disk with bounded memory
//! and is simply done again; the attempt is recorded when verification
//! starts.
//!
//! The kill lands when the marker of the attempt appears (seen through a
//! watch). A package verified before the kill landed is no failure of the
//! operator, only of timing: the scenario then tries again with a package
//! three times as large.

use std::time::{Duration, Instant};

use ferry::api::*;
use ferry::conditions::{self, READY};
use ferry_package::fixtures::FixtureSpec;
use futures::TryStreamExt;
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};

use crate::env::{self, Operator};

const NS: &str = "verify-kill";
const VERIFYING: &str = "ferry.dev/verification-started";

fn marker(p: &MigrationPackage) -> Option<String> {
    p.annotations().get(VERIFYING).cloned()
}

pub async fn run() {
    let cp = env::control_plane();
    let storage = cp.dir().join("verify-kill-artifacts");
    let c = env::admin().await;
    let api: Api<MigrationPackage> = Api::namespaced(c.clone(), NS);
    let mut tasks = 5_000;
    for attempt in 1..=3 {
        let first = Operator::start(
            &storage,
            &cp.dir().join(format!("verify-kill-{attempt}-1.log")),
        );
        if attempt == 1 {
            env::destination(&c, "t-verify-kill", Edition::Enterprise, NS).await;
        }
        let bytes = FixtureSpec::new().seed(attempt).tasks(tasks).to_bytes();
        let url = env::serve(bytes).await;
        let name = format!("heavy-{attempt}");
        let pkg: MigrationPackage = serde_json::from_value(serde_json::json!({
            "apiVersion": "ferry.dev/v1alpha1", "kind": "MigrationPackage", "metadata": {"name": name},
            "spec": {"source": {"url": {"url": url}}}
        }))
        .unwrap();
        let watch = watcher(
            api.clone(),
            watcher::Config::default().fields(&format!("metadata.name={name}")),
        )
        .applied_objects();
        let mut watch = std::pin::pin!(watch);
        api.create(&PostParams::default(), &pkg).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(300);
        let seen = loop {
            let next = tokio::time::timeout_at(deadline.into(), watch.try_next()).await;
            let Ok(Ok(Some(p))) = next else {
                panic!(
                    "verification never started: {next:?}\noperator log:\n{}",
                    first.tail(30)
                );
            };
            if let Some(m) = marker(&p) {
                break m;
            }
        };
        first.kill();
        let p = api.get(&name).await.unwrap();
        let verified = p
            .status
            .as_ref()
            .is_some_and(|s| conditions::is_true(&s.conditions, READY));
        if verified {
            eprintln!(
                "attempt {attempt}: {tasks} tasks were verified before the kill landed; trying a larger package"
            );
            tasks *= 3;
            continue;
        }
        assert_eq!(marker(&p).as_deref(), Some(seen.as_str()));

        let second = Operator::start(
            &storage,
            &cp.dir().join(format!("verify-kill-{attempt}-2.log")),
        );
        let deadline = Instant::now() + Duration::from_secs(120);
        let p = loop {
            let p = api.get(&name).await.unwrap();
            let settled = p.status.as_ref().is_some_and(|s| {
                s.observed_generation == p.metadata.generation
                    && (conditions::is_true(&s.conditions, READY)
                        || conditions::is_true(&s.conditions, conditions::STALLED))
            });
            if settled {
                break p;
            }
            assert!(
                Instant::now() < deadline,
                "the restarted operator left the package unsettled: {:?}\noperator log:\n{}",
                p.status,
                second.tail(30)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let status = p.status.clone().unwrap();
        let ready = conditions::find(&status.conditions, READY).unwrap();
        assert_eq!(ready.status, "False", "{ready:?}");
        assert_eq!(ready.reason, "VerificationInterrupted", "{ready:?}");
        assert!(
            ready.message.contains("never recorded a result") && ready.message.contains(&seen),
            "the refusal names the interrupted attempt: {}",
            ready.message
        );
        assert!(status.artifact.is_none(), "nothing stored: {status:?}");
        assert!(
            conditions::is_true(&status.conditions, conditions::STALLED),
            "stalled, so kubectl wait and Argo CD stop waiting: {:?}",
            status.conditions
        );
        // Not verified again: the record of the interrupted attempt stays
        // (an attempt of the restarted operator would have replaced it with
        // its own).
        assert_eq!(marker(&p).as_deref(), Some(seen.as_str()));
        second.kill();
        eprintln!(
            "attempt {attempt}: killed while verifying {tasks} tasks; refused after the restart"
        );
        return;
    }
    panic!("three packages were each verified before the kill landed");
}
