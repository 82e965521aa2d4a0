//! The control plane, the operator as a child process, and what a Ferry
//! import needs: a destination workspace, a package, the ImportTask.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use ferry::api::*;
use ferry::conditions::{self, READY, STALLED};
use ferry::testenv::operator_process::OperatorProcess;
use ferry::testenv::{ControlPlane, Options, User, fixtures};
use ferry_package::ObjectType;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client, ResourceExt};
use serde_json::Value;

/// Every workspace of the benchmark belongs to this tenant. Enterprise: no
/// edition limit gets in the way, and every object is committed and
/// deployed (the most work per object).
const TENANT: &str = "bench";

pub struct Bench {
    pub cp: ControlPlane,
    pub client: Client,
    operator_bin: PathBuf,
    operator: Option<OperatorProcess>,
    started_operators: usize,
}

/// One finished import.
pub struct Imported {
    pub elapsed: Duration,
    pub objects: usize,
    pub status: ImportTaskStatus,
}

impl Bench {
    pub async fn start(operator_bin: PathBuf) -> anyhow::Result<Bench> {
        let cp = ControlPlane::start(Options::default()).await?;
        cp.install_crds(&ferry::api::all_crds()).await?;
        let client = cp.client(User::Admin).await?;
        Ok(Bench {
            cp,
            client,
            operator_bin,
            operator: None,
            started_operators: 0,
        })
    }

    /// A fresh operator process (the previous one, if any, is stopped), so
    /// that its peak RSS covers one scenario only.
    pub fn start_operator(&mut self) -> anyhow::Result<()> {
        self.stop_operator();
        self.started_operators += 1;
        let n = self.started_operators;
        let dir = self.cp.dir().to_path_buf();
        self.operator = Some(OperatorProcess::start(
            &self.operator_bin,
            &self.cp.kubeconfig(User::Admin),
            &dir.join("artifacts"),
            &dir.join(format!("operator-{n}.log")),
        )?);
        Ok(())
    }

    /// Stops the operator; returns its peak RSS in KiB.
    pub fn stop_operator(&mut self) -> Option<u64> {
        let op = self.operator.take()?;
        let peak = op.peak_rss_kib();
        drop(op);
        peak
    }

    /// The running operator's CPU time so far, in seconds.
    pub fn operator_cpu_seconds(&self) -> Option<f64> {
        self.operator.as_ref().and_then(|o| o.cpu_seconds())
    }

    fn operator_tail(&self) -> String {
        self.operator
            .as_ref()
            .map(|o| o.tail(30))
            .unwrap_or_default()
    }

    pub fn kubectl(&self) -> anyhow::Result<PathBuf> {
        Ok(ferry::testenv::tools_bin()?.join("kubectl"))
    }

    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.cp.kubeconfig(User::Admin)
    }

    pub fn dir(&self) -> &Path {
        self.cp.dir()
    }

    /// A Ready destination workspace whose namespace is `ns` (needs the
    /// operator).
    pub async fn workspace(&self, ns: &str) -> anyhow::Result<()> {
        fixtures::ensure_tenant(&self.client, TENANT, Edition::Enterprise).await;
        fixtures::ready_workspace(&self.client, ns, fixtures::production_workspace(TENANT, ns))
            .await;
        Ok(())
    }

    /// A MigrationPackage fetched from `url`, verified (Ready).
    pub async fn package(&self, ns: &str, name: &str, url: &str) -> anyhow::Result<()> {
        let pkg: MigrationPackage = serde_json::from_value(serde_json::json!({
            "apiVersion": "ferry.dev/v1alpha1", "kind": "MigrationPackage", "metadata": {"name": name},
            "spec": {"source": {"url": {"url": url}}}
        }))?;
        let api = Api::<MigrationPackage>::namespaced(self.client.clone(), ns);
        api.create(&PostParams::default(), &pkg).await?;
        let settled = |p: Option<&MigrationPackage>| {
            p.and_then(|p| p.status.as_ref()).is_some_and(|s| {
                conditions::is_true(&s.conditions, READY)
                    || conditions::is_true(&s.conditions, STALLED)
            })
        };
        let p = tokio::time::timeout(
            Duration::from_secs(600),
            await_condition(api, name, settled),
        )
        .await
        .map_err(|_| anyhow!("package {ns}/{name} not verified within 600 s"))??
        .ok_or_else(|| anyhow!("package {ns}/{name} was deleted"))?;
        let status = p.status.unwrap_or_default();
        if !conditions::is_true(&status.conditions, READY) {
            bail!(
                "package {ns}/{name} was refused: {:?}",
                status
                    .conditions
                    .iter()
                    .map(|c| &c.message)
                    .collect::<Vec<_>>()
            );
        }
        Ok(())
    }

    /// Creates the ImportTask `name` and waits for it to end; the time is
    /// from the create to the end. Fails unless it Completed.
    pub async fn import(&self, ns: &str, name: &str, package: &str) -> anyhow::Result<Imported> {
        let api: Api<ImportTask> = Api::namespaced(self.client.clone(), ns);
        let task = fixtures::full_import_task(name, package);
        let started = Instant::now();
        api.create(&PostParams::default(), &task).await?;
        let finished = |t: Option<&ImportTask>| {
            t.is_some_and(|t| {
                t.status.as_ref().is_some_and(|s| {
                    s.phase.is_terminal() && s.observed_generation == t.metadata.generation
                })
            })
        };
        let t = tokio::time::timeout(
            Duration::from_secs(3600),
            await_condition(api, name, finished),
        )
        .await
        .map_err(|_| anyhow!("import {ns}/{name} did not end within an hour"))??
        .ok_or_else(|| anyhow!("import {ns}/{name} was deleted"))?;
        let elapsed = started.elapsed();
        let status = t.status.unwrap_or_default();
        if status.phase != ImportPhase::Completed {
            bail!(
                "import {ns}/{name} ended {:?}: {:?}\noperator log:\n{}",
                status.phase,
                status.message,
                self.operator_tail()
            );
        }
        let objects = status.results.iter().map(|r| r.created as usize).sum();
        Ok(Imported {
            elapsed,
            objects,
            status,
        })
    }

    /// Requests the apiserver has served since it started, all verbs and
    /// resources (`apiserver_request_total`).
    pub async fn apiserver_requests(&self) -> anyhow::Result<f64> {
        let req = http::Request::get("/metrics").body(Vec::new())?;
        let text = self.client.request_text(req).await?;
        Ok(sum_counter(&text, "apiserver_request_total"))
    }

    /// The objects in `ns`, as bodies to create (name, labels, annotations,
    /// spec) and the status each carries.
    pub async fn capture(&self, ns: &str) -> anyhow::Result<Vec<Captured>> {
        let mut out = Vec::new();
        for t in ObjectType::IMPORT_ORDER {
            let ar = api_resource(t);
            let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
            for obj in api.list(&ListParams::default()).await?.items {
                let mut body = DynamicObject::new(&obj.name_any(), &ar);
                body.metadata.labels = obj.metadata.labels.clone();
                body.metadata.annotations = obj.metadata.annotations.clone();
                body.data = serde_json::json!({"spec": obj.data.get("spec").cloned().unwrap_or(Value::Null)});
                let status = obj.data.get("status").cloned().unwrap_or(Value::Null);
                out.push(Captured {
                    ar: ar.clone(),
                    body,
                    status,
                });
            }
        }
        Ok(out)
    }

    /// Deletes every workspace object in `ns`, so later runs do not pay for
    /// earlier ones in the apiserver's caches and etcd.
    ///
    /// A collection of tens of thousands can outlast the apiserver's request
    /// timeout, which closes the connection while deletion goes on; so each
    /// type is deleted again until a list finds nothing.
    pub async fn clear(&self, ns: &str) -> anyhow::Result<()> {
        for t in ObjectType::IMPORT_ORDER {
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), ns, &api_resource(t));
            let mut attempts = 0;
            loop {
                let deleted = api
                    .delete_collection(&DeleteParams::default(), &ListParams::default())
                    .await;
                let left = api.list_metadata(&ListParams::default().limit(1)).await;
                if matches!(&left, Ok(l) if l.items.is_empty()) {
                    break;
                }
                attempts += 1;
                if attempts >= 20 {
                    deleted.with_context(|| format!("clearing {} in {ns}", t.as_str()))?;
                    bail!("{} objects are left in {ns} after 20 deletions", t.as_str());
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
        Ok(())
    }
}

/// An object as the destination holds it after a Ferry import.
#[derive(Clone)]
pub struct Captured {
    pub ar: ApiResource,
    pub body: DynamicObject,
    pub status: Value,
}

pub use ferry::controller::import::api_resource;

/// The sum of every series of the Prometheus counter `name` in `text`.
pub fn sum_counter(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `Phase 1.2s, ...` from the task's phase timings.
pub fn phase_seconds(status: &ImportTaskStatus) -> Vec<(ImportPhase, f64)> {
    status
        .phase_timings
        .iter()
        .filter_map(|t| {
            let end = t.completed_at.as_ref()?;
            let ms = end.0.as_millisecond() - t.started_at.0.as_millisecond();
            Some((t.phase, ms as f64 / 1000.0))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_series_of_a_counter_and_nothing_else() {
        let text = "# HELP apiserver_request_total x\n\
            apiserver_request_total{code=\"200\",verb=\"GET\"} 10\n\
            apiserver_request_total{code=\"201\",verb=\"POST\"} 5\n\
            apiserver_request_total_other{a=\"b\"} 100\n\
            apiserver_request_duration_seconds_count{verb=\"GET\"} 7\n";
        assert_eq!(sum_counter(text, "apiserver_request_total"), 15.0);
    }
}
