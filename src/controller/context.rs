use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::Client;

use crate::artifact::ArtifactStore;
use crate::metrics::Metrics;
use kube::runtime::events::{Recorder, Reporter};

/// What every reconciler shares.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    /// Verified packages, by digest.
    pub store: ArtifactStore,
    /// Base URL under which the artifact server serves `/<namespace>/<package>`.
    pub artifact_base_url: Option<String>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Consecutive failures per object, for exponential backoff; reset on
    /// success, and after [`FAILURES_FORGOTTEN`] without a failure.
    failures: Arc<Mutex<HashMap<String, (u32, std::time::Instant)>>>,
    /// Object writes in flight across every import at once (see
    /// [`WRITE_SLOTS`]).
    pub write_slots: Arc<tokio::sync::Semaphore>,
    /// Which addresses URL and object-store sources may reach.
    pub source_network: Arc<crate::operator::SourceNetwork>,
    /// The most bytes a URL or object-store source may bring into the store.
    pub max_remote_bytes: u64,
    /// A package answers at most one new download request per this long.
    pub download_interval: std::time::Duration,
    /// When each package (by UID) last answered a download request.
    download_answers: Arc<Mutex<HashMap<String, std::time::Instant>>>,
    /// The ServiceAccount name each namespace acts through (see
    /// [`super::tenancy`]).
    pub workspace_service_account: String,
}

/// Object writes in flight across all imports. One import keeps 32 in
/// flight; fifty imports at once without a shared bound would keep 1,600,
/// each on a connection of its own, and the apiserver would spend its CPU on
/// connections and queueing. The semaphore is fair (first come, first
/// served), so no import starves while others write.
pub const WRITE_SLOTS: usize = 64;

/// A failure this long after the previous one of the same object counts as
/// the first again (longer than the longest backoff, so a series that is
/// still going is never cut short).
pub const FAILURES_FORGOTTEN: std::time::Duration = std::time::Duration::from_secs(900);

impl Context {
    pub fn new(
        client: Client,
        store: ArtifactStore,
        artifact_base_url: Option<String>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let reporter = Reporter {
            controller: "ferry".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            store,
            artifact_base_url,
            metrics,
            failures: Arc::default(),
            write_slots: Arc::new(tokio::sync::Semaphore::new(WRITE_SLOTS)),
            source_network: Arc::default(),
            max_remote_bytes: ferry_package::Limits::default().max_uncompressed_bytes,
            download_interval: super::chunks::DOWNLOAD_INTERVAL,
            download_answers: Arc::default(),
            workspace_service_account: super::tenancy::DEFAULT_WORKSPACE_SERVICE_ACCOUNT.into(),
        }
    }

    /// Counts a failure for `key` and returns how many in a row. A failure
    /// long after the last one starts a new series: a controller that does
    /// not report success (or an object that succeeded in between without
    /// saying so) must not keep the longest backoff for good.
    pub fn failed<K: kube::Resource<DynamicType = ()>>(&self, obj: &K) -> u32 {
        let key = &failure_key(obj);
        let mut failures = self.failures.lock().expect("failure map poisoned");
        count_failure(&mut failures, key, std::time::Instant::now())
    }

    /// How long package `uid` must wait before answering another download
    /// request; `None` when it may answer now, which counts as its answer.
    pub fn download_wait(&self, uid: &str) -> Option<std::time::Duration> {
        let now = std::time::Instant::now();
        let mut answers = self.download_answers.lock().expect("download map poisoned");
        if answers.len() > 1024 {
            let interval = self.download_interval;
            answers.retain(|_, at| now.duration_since(*at) < interval);
        }
        if let Some(at) = answers.get(uid) {
            let since = now.duration_since(*at);
            if since < self.download_interval {
                return Some(self.download_interval - since);
            }
        }
        answers.insert(uid.to_string(), now);
        None
    }

    /// Forgets the failures of `obj`: a pass that got through resets its
    /// backoff.
    pub fn succeeded<K: kube::Resource<DynamicType = ()>>(&self, obj: &K) {
        self.failures
            .lock()
            .expect("failure map poisoned")
            .remove(&failure_key(obj));
    }
}

/// Failures are counted per object *of a kind*: an ImportTask and a
/// MigrationPackage of one name in one namespace (a common pairing) must not
/// share a backoff, nor reset each other's.
pub fn failure_key<K: kube::Resource<DynamicType = ()>>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default()
    )
}

type Failures = HashMap<String, (u32, std::time::Instant)>;

/// Counts a failure of `key` at `now`; see [`Context::failed`]. Entries
/// forgotten anyway are dropped once the map grows, so objects that came
/// and went do not accumulate.
fn count_failure(failures: &mut Failures, key: &str, now: std::time::Instant) -> u32 {
    if failures.len() > 4096 {
        failures.retain(|_, (_, at)| now.duration_since(*at) < FAILURES_FORGOTTEN);
    }
    let entry = failures.entry(key.to_string()).or_insert((0, now));
    if now.duration_since(entry.1) >= FAILURES_FORGOTTEN {
        entry.0 = 0;
    }
    entry.0 += 1;
    entry.1 = now;
    entry.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn failures_are_counted_per_kind_not_only_per_name() {
        use crate::api::{ImportTask, MigrationPackage};
        let task: ImportTask = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "q4", "namespace": "sales"},
            "spec": {"importName": "q4", "packageRef": {"name": "q4"}}
        }))
        .unwrap();
        let pkg: MigrationPackage = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "q4", "namespace": "sales"},
            "spec": {"source": {"upload": {"digest": "sha256:00"}}}
        }))
        .unwrap();
        assert_eq!(failure_key(&task), "ImportTask/sales/q4");
        assert_eq!(failure_key(&pkg), "MigrationPackage/sales/q4");
        let mut map = Failures::new();
        let t0 = Instant::now();
        count_failure(&mut map, &failure_key(&task), t0);
        count_failure(&mut map, &failure_key(&task), t0);
        // The package's first failure is its first, whatever the task's.
        assert_eq!(count_failure(&mut map, &failure_key(&pkg), t0), 1);
        assert_eq!(count_failure(&mut map, &failure_key(&task), t0), 3);
    }

    #[test]
    fn failures_count_in_a_row_and_start_over_after_a_quiet_spell() {
        let mut map = Failures::new();
        let t0 = Instant::now();
        assert_eq!(count_failure(&mut map, "ns/a", t0), 1);
        assert_eq!(
            count_failure(&mut map, "ns/a", t0 + Duration::from_secs(5)),
            2
        );
        assert_eq!(count_failure(&mut map, "ns/b", t0), 1);
        let later = t0 + Duration::from_secs(5) + FAILURES_FORGOTTEN;
        assert_eq!(count_failure(&mut map, "ns/a", later), 1);
        // Many objects that came and went are pruned.
        for i in 0..5000 {
            count_failure(&mut map, &format!("ns/{i}"), t0);
        }
        count_failure(&mut map, "ns/new", t0 + 2 * FAILURES_FORGOTTEN);
        assert!(map.len() < 10, "{}", map.len());
    }
}
