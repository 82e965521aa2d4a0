//! `ferry`: the operator.

use clap::{Parser, Subcommand};
use ferry::telemetry::{self, LogFormat};

/// mimalloc rather than the system allocator: with the async runtime's
/// worker threads and the blocking pool, glibc's per-thread arenas keep
/// freed memory resident; mimalloc hands it back, so after a large
/// package's verification and planning the operator's RSS falls back (its
/// peak is in BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ferry",
    version,
    about = "Migrates data-development workspace objects between workspaces"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator against the cluster of the current kubeconfig
    /// (`KUBECONFIG`, `~/.kube/config`) or, inside a pod, the in-cluster config.
    Run {
        /// Log format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "FERRY_LOG_FORMAT")]
        log_format: LogFormat,
        /// Directory of the artifact store (verified packages, by digest).
        #[arg(
            long,
            default_value = "/var/lib/ferry/artifacts",
            env = "FERRY_STORAGE_DIR"
        )]
        storage_dir: std::path::PathBuf,
        /// Base URL artifacts are downloadable under, shown in package status.
        #[arg(long, env = "FERRY_ARTIFACT_BASE_URL")]
        artifact_base_url: Option<String>,
        /// Where `/metrics` is served.
        #[arg(
            long,
            default_value = "0.0.0.0:8080",
            env = "FERRY_METRICS_BIND_ADDRESS"
        )]
        metrics_bind_address: std::net::SocketAddr,
        /// Where `/healthz` and `/readyz` are served.
        #[arg(
            long,
            default_value = "0.0.0.0:8081",
            env = "FERRY_HEALTH_BIND_ADDRESS"
        )]
        health_bind_address: std::net::SocketAddr,
        /// Act only while holding the Lease `ferry-leader` in POD_NAMESPACE,
        /// so that of several replicas exactly one reconciles.
        #[arg(long)]
        leader_elect: bool,
        /// Where artifacts are served for download and upload.
        #[arg(
            long,
            default_value = "0.0.0.0:9090",
            env = "FERRY_ARTIFACT_BIND_ADDRESS"
        )]
        artifact_bind_address: std::net::SocketAddr,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run {
            log_format,
            storage_dir,
            artifact_base_url,
            metrics_bind_address,
            health_bind_address,
            leader_elect,
            artifact_bind_address,
        } => {
            telemetry::init(log_format);
            let client = kube::Client::try_default().await.map_err(|e| {
                anyhow::anyhow!("cannot reach a cluster ({e}); set KUBECONFIG or run inside a pod")
            })?;
            let leader_election = leader_elect.then(|| ferry::operator::LeaderElection {
                namespace: std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "default".into()),
                lease_name: "ferry-leader".into(),
                identity: std::env::var("POD_NAME")
                    .unwrap_or_else(|_| format!("ferry-{}", std::process::id())),
            });
            let settings = ferry::operator::Settings {
                storage_dir,
                artifact_base_url,
                metrics_addr: Some(metrics_bind_address),
                artifact_addr: Some(artifact_bind_address),
                health_addr: Some(health_bind_address),
                leader_election,
            };
            ferry::operator::run(client, settings, ferry::operator::shutdown_signal()).await
        }
    }
}
