//! apiserver requests per imported object: the operator runs in this
//! process, its client's requests counted (see `counting.rs`), while a
//! 1,000-object package imports on a Professional tenant (apply, commit,
//! deploy: the most work per object). Everything the operator sends from
//! the moment the ImportTask is created until it is Completed counts:
//! lists, status writes, progress patches, events, report ConfigMaps, and
//! any watch it (re)opens.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry::api::*;
use ferry::testenv::User;
use ferry_package::fixtures::FixtureSpec;
use kube::Api;
use kube::api::PostParams;

use crate::counting::{self, COUNTED_THREADS, Counter};
use crate::env;

const NS: &str = "count-ws";
/// The ceiling of issue 4.
const MAX_PER_OBJECT: f64 = 3.0;

fn fixture() -> FixtureSpec {
    FixtureSpec::new()
        .seed(11)
        .tasks(800)
        .tables(100)
        .quality_rules(50)
        .file_resources(25)
        .functions(15)
        .service_apis(10)
        .resource_bytes(256)
}

/// The operator, in process, on a runtime whose threads are counted.
struct InProcess {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcess {
    fn start(storage: std::path::PathBuf) -> InProcess {
        let kubeconfig = env::control_plane().kubeconfig(User::Admin);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("{COUNTED_THREADS}-main"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name(format!("{COUNTED_THREADS}-worker"))
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    // Built here: the client's request worker lives on
                    // this runtime, so its requests are counted.
                    let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
                    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                        .await
                        .unwrap();
                    let client = kube::Client::try_from(config).unwrap();
                    let settings = ferry::operator::Settings {
                        storage_dir: storage,
                        artifact_base_url: None,
                        // The package is served from 127.0.0.1.
                        source_network: ferry::operator::SourceNetwork {
                            allow_private: true,
                            ..Default::default()
                        },
                        ..Default::default()
                    };
                    ferry::operator::run(client, settings, async move {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("operator");
                })
            })
            .unwrap();
        InProcess {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn diff(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

pub async fn run() {
    let counter: &Counter = counting::counter();
    let cp = env::control_plane();
    let operator = InProcess::start(cp.dir().join("count-artifacts"));
    let c = env::admin().await;
    env::destination(&c, "t-count", Edition::Professional, NS).await;
    let fixture = fixture();
    let planned = env::planned(&fixture);
    let objects: usize = planned.values().map(Vec::len).sum();
    let url = env::serve(fixture.to_bytes()).await;
    env::package_from_url(&c, NS, "counted", &url).await;
    // Let the controllers settle after the package became Ready.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        counter.total() > 0,
        "the counting layer saw none of the operator's requests"
    );

    let api: Api<ImportTask> = Api::namespaced(c.clone(), NS);
    let (start, start_kinds) = (counter.total(), counter.by_kind());
    let started = Instant::now();
    api.create(&PostParams::default(), &env::task("counted", "counted"))
        .await
        .unwrap();
    let t = env::wait_for(&api, "counted", Duration::from_secs(600), env::finished).await;
    let (end, end_kinds) = (counter.total(), counter.by_kind());
    let elapsed = started.elapsed();
    let status = t.status.clone().unwrap();
    assert_eq!(status.phase, ImportPhase::Completed, "{:?}", status.message);
    let imported: u64 = status.results.iter().map(|r| r.created).sum();
    assert_eq!(imported as usize, objects, "results: {:#?}", status.results);
    let problems = env::duplicates_and_missing(&planned, &env::landed(&c, NS).await);
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Whatever the operator still sends once Completed is visible.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let trailing = counter.total() - end;

    let requests = end - start;
    let ratio = requests as f64 / imported as f64;
    eprintln!(
        "requests per object: {requests} requests for {imported} imported objects = {ratio:.3} per object \
         (Professional: apply + commit + deploy; import took {:.1}s; {trailing} more in the 2s after Completed)",
        elapsed.as_secs_f64()
    );
    for (kind, n) in diff(&end_kinds, &start_kinds) {
        eprintln!("  {n:>6}  {kind}");
    }
    eprintln!("  phases: {}", env::phase_durations(&status));
    drop(operator);
    assert!(
        ratio <= MAX_PER_OBJECT,
        "BUG (issue 4: at most {MAX_PER_OBJECT} requests per imported object): the operator made \
         {requests} requests for {imported} objects = {ratio:.3} per object; breakdown above"
    );
}
