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
    /// Consecutive failures per object, for exponential backoff; reset on success.
    failures: Arc<Mutex<HashMap<String, u32>>>,
    /// Object writes in flight across every import at once (see
    /// [`WRITE_SLOTS`]).
    pub write_slots: Arc<tokio::sync::Semaphore>,
}

/// Object writes in flight across all imports. One import keeps 32 in
/// flight; fifty imports at once without a shared bound would keep 1,600,
/// each on a connection of its own, and the apiserver would spend its CPU on
/// connections and queueing. The semaphore is fair (first come, first
/// served), so no import starves while others write.
pub const WRITE_SLOTS: usize = 64;

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
        }
    }

    /// Counts a failure for `key` and returns how many in a row.
    pub fn failed(&self, key: &str) -> u32 {
        let mut failures = self.failures.lock().expect("failure map poisoned");
        let n = failures.entry(key.to_string()).or_insert(0);
        *n += 1;
        *n
    }

    /// Forgets the failures of `key`.
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .expect("failure map poisoned")
            .remove(key);
    }
}
