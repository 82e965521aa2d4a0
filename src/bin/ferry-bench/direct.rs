//! The same objects written without Ferry: created with kube-rs at a given
//! concurrency (the apiserver's own limit), and applied by `kubectl apply
//! --server-side` (what a person would do by hand).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DynamicObject, PostParams};
use kube::{Api, Client, ResourceExt};

use crate::cluster::Captured;

/// Creates namespace `ns`.
pub async fn namespace(client: &Client, ns: &str) -> anyhow::Result<()> {
    let body: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &body)
        .await
        .with_context(|| format!("creating namespace {ns}"))?;
    Ok(())
}

/// What a direct write does per object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// One POST: the object as it stands, no status.
    Create,
    /// POST, then PUT of the status subresource with the status Ferry
    /// writes: the same end state as a Ferry import, in two requests.
    CreateWithStatus,
}

/// Writes every object into `ns`, `concurrency` requests in flight.
pub async fn create_all(
    client: &Client,
    ns: &str,
    objects: &[Captured],
    concurrency: usize,
    write: Write,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    futures::stream::iter(objects)
        .map(|o| async move {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &o.ar);
            let mut created = api
                .create(&PostParams::default(), &o.body)
                .await
                .with_context(|| format!("creating {} {}", o.ar.kind, o.body.name_any()))?;
            if write == Write::CreateWithStatus {
                created.data["status"] = o.status.clone();
                api.replace_status(&created.name_any(), &PostParams::default(), &created)
                    .await
                    .with_context(|| format!("status of {} {}", o.ar.kind, o.body.name_any()))?;
            }
            anyhow::Ok(())
        })
        .buffer_unordered(concurrency)
        .try_collect::<()>()
        .await?;
    Ok(started.elapsed())
}

/// Writes the objects (without status) as one multi-document YAML file.
pub fn write_yaml(objects: &[Captured], path: &Path) -> anyhow::Result<()> {
    let mut text = String::new();
    for o in objects {
        text.push_str("---\n");
        text.push_str(&serde_yaml::to_string(&o.body)?);
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// `kubectl apply --server-side -f <yaml>` into `ns`, as a person would,
/// with kubectl's own defaults for client-side rate limiting.
pub async fn kubectl_apply(
    kubectl: &Path,
    kubeconfig: &Path,
    ns: &str,
    yaml: &Path,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let out = tokio::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "apply",
            "--server-side",
            "--field-manager=bench",
            "-n",
            ns,
            "-f",
        ])
        .arg(yaml)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .with_context(|| format!("running {}", kubectl.display()))?;
    let elapsed = started.elapsed();
    if !out.status.success() {
        bail!(
            "kubectl apply --server-side failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(elapsed)
}
