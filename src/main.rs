//! `ferry`: the operator.

use clap::{Parser, Subcommand};
use ferry::telemetry::{self, LogFormat};

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
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run {
            log_format,
            storage_dir,
            artifact_base_url,
        } => {
            telemetry::init(log_format);
            let client = kube::Client::try_default().await.map_err(|e| {
                anyhow::anyhow!("cannot reach a cluster ({e}); set KUBECONFIG or run inside a pod")
            })?;
            let settings = ferry::operator::Settings {
                storage_dir,
                artifact_base_url,
            };
            ferry::operator::run(client, settings, ferry::operator::shutdown_signal()).await
        }
    }
}
