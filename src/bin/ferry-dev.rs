//! `ferry-dev up`: a local control plane with Ferry running against it, for
//! trying Ferry on a laptop. Starts etcd and kube-apiserver on loopback,
//! installs the CRDs, applies `examples/`, and runs the operator in the
//! foreground until Ctrl-C, then stops everything.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use ferry::telemetry::{self, LogFormat};
use ferry::testenv::{ControlPlane, Options, User, tools_bin};

#[derive(Parser)]
#[command(
    name = "ferry-dev",
    about = "A local control plane with Ferry running against it"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the control plane, apply the examples and run the operator.
    Up {
        /// Work directory: logs, certificates and kubeconfigs (`admin.kubeconfig`, ...).
        #[arg(long, default_value = "/tmp/ferry-dev")]
        dir: PathBuf,
        /// The API server's port on 127.0.0.1.
        #[arg(long, default_value_t = 6443)]
        port: u16,
        /// Manifests to apply once the CRDs are installed.
        #[arg(long, default_value = "examples")]
        examples: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cmd::Up {
        dir,
        port,
        examples,
    } = Cli::parse().command;
    // A fresh cluster each time: stale etcd data and certificates from an
    // earlier run would only confuse.
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    let cp = ControlPlane::start(Options {
        dir: Some(dir.clone()),
        port: Some(port),
    })
    .await?;
    cp.install_crds(&ferry::api::all_crds()).await?;
    let kubeconfig = cp.kubeconfig(User::Admin);
    if examples.exists() {
        let kubectl = tools_bin()?.join("kubectl");
        let status = Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args([
                "apply",
                "--server-side",
                "--field-manager=ferry-dev",
                "-R",
                "-f",
            ])
            .arg(&examples)
            .status()
            .context("running kubectl apply")?;
        if !status.success() {
            bail!("kubectl apply -f {} failed", examples.display());
        }
    }
    println!();
    println!(
        "Ferry is running against a local control plane at {}.",
        cp.server
    );
    println!("In another terminal:");
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  kubectl get ferry");
    println!("Ctrl-C stops the operator and the control plane.");
    println!();
    // Logging starts once the control plane is up: its readiness probes
    // fail by design while it starts, and those failures are not news.
    telemetry::init(LogFormat::Text);
    let client = cp.client(User::Admin).await?;
    let settings = ferry::operator::Settings {
        storage_dir: dir.join("artifacts"),
        artifact_base_url: None,
        // A development cluster on loopback: packages served from this
        // machine (`python3 -m http.server`, a local S3) are fine here.
        source_network: ferry::operator::SourceNetwork {
            allow_private: true,
            ..Default::default()
        },
        ..Default::default()
    };
    ferry::operator::run(client, settings, ferry::operator::shutdown_signal()).await?;
    drop(cp);
    Ok(())
}
