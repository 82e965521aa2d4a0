//! `ferry`: the operator.

use clap::{Parser, Subcommand};
use ferry::telemetry::{self, LogFormat};

/// mimalloc rather than the system allocator: with the async runtime's
/// worker threads and the blocking pool, glibc's per-thread arenas keep
/// freed memory resident; mimalloc hands it back, so after a large
/// package's verification and planning the operator's RSS falls back (its
/// peak is in BENCHMARKS.md). The `system-alloc` feature keeps the system
/// allocator, for heap profilers that hook malloc (heaptrack, massif).
#[cfg(not(feature = "system-alloc"))]
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
        /// Let URL and object-store sources reach loopback, link-local,
        /// private and other non-public addresses. Off in production: a
        /// tenant's URL would reach the apiserver, the cloud metadata
        /// service and cluster Services with the operator's network identity.
        #[arg(long, env = "FERRY_ALLOW_PRIVATE_SOURCES")]
        allow_private_sources: bool,
        /// Address ranges (CIDR, comma-separated) sources may never reach,
        /// even when public: the cluster's Service and Pod ranges.
        #[arg(long, env = "FERRY_DENIED_SOURCE_CIDRS", value_delimiter = ',')]
        denied_source_cidrs: Vec<ipnet::IpNet>,
        /// The most bytes a URL or object-store package may bring into the
        /// artifact store (the chart derives it from the volume size).
        #[arg(long, env = "FERRY_MAX_REMOTE_PACKAGE_BYTES")]
        max_remote_package_bytes: Option<u64>,
        /// Connections the artifact endpoint serves at once.
        #[arg(long, default_value_t = 64, env = "FERRY_ARTIFACT_MAX_CONNECTIONS")]
        artifact_max_connections: usize,
        /// Uploads the artifact endpoint receives and verifies at once.
        #[arg(long, default_value_t = 4, env = "FERRY_ARTIFACT_MAX_UPLOADS")]
        artifact_max_uploads: usize,
        /// Seconds a whole upload body may take.
        #[arg(
            long,
            default_value_t = 300,
            env = "FERRY_ARTIFACT_BODY_TIMEOUT_SECONDS"
        )]
        artifact_body_timeout_seconds: u64,
        /// Audiences (comma-separated) a caller's token must be valid for,
        /// checked by TokenReview. Empty: any token the cluster accepts.
        #[arg(long, env = "FERRY_ARTIFACT_TOKEN_AUDIENCES", value_delimiter = ',')]
        artifact_token_audiences: Vec<String>,
        /// PEM certificate for HTTPS on the artifact endpoint (with
        /// --artifact-tls-key-file).
        #[arg(
            long,
            env = "FERRY_ARTIFACT_TLS_CERT_FILE",
            requires = "artifact_tls_key_file"
        )]
        artifact_tls_cert_file: Option<std::path::PathBuf>,
        /// PEM private key for HTTPS on the artifact endpoint.
        #[arg(
            long,
            env = "FERRY_ARTIFACT_TLS_KEY_FILE",
            requires = "artifact_tls_cert_file"
        )]
        artifact_tls_key_file: Option<std::path::PathBuf>,
        /// The ServiceAccount (same name in every namespace) whose rights
        /// Ferry acts with for a namespace: reading the Secrets its packages
        /// name, packages of other namespaces, exporting other workspaces.
        /// The operator impersonates it (docs/tenancy.md).
        #[arg(
            long,
            default_value = ferry::controller::tenancy::DEFAULT_WORKSPACE_SERVICE_ACCOUNT,
            env = "FERRY_WORKSPACE_SERVICE_ACCOUNT"
        )]
        workspace_service_account: String,
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
            allow_private_sources,
            denied_source_cidrs,
            max_remote_package_bytes,
            artifact_max_connections,
            artifact_max_uploads,
            artifact_body_timeout_seconds,
            artifact_token_audiences,
            artifact_tls_cert_file,
            workspace_service_account,
            artifact_tls_key_file,
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
                artifact_server: ferry::artifact_server::ServerSettings {
                    max_connections: artifact_max_connections,
                    max_uploads: artifact_max_uploads,
                    body_timeout: std::time::Duration::from_secs(artifact_body_timeout_seconds),
                    audiences: artifact_token_audiences,
                    tls: artifact_tls_cert_file.zip(artifact_tls_key_file),
                    ..Default::default()
                },
                health_addr: Some(health_bind_address),
                leader_election,
                source_network: ferry::operator::SourceNetwork {
                    allow_private: allow_private_sources,
                    denied: denied_source_cidrs,
                },
                max_remote_bytes: max_remote_package_bytes,
                download_interval: None,
                workspace_service_account: Some(workspace_service_account),
            };
            ferry::operator::run(client, settings, ferry::operator::shutdown_signal()).await
        }
    }
}
