//! The connection, chosen the way kubectl chooses it: `--kubeconfig` (else
//! `KUBECONFIG`, else `~/.kube/config`, else the in-cluster service
//! account), `--context` (else the current context), `-n` (else the
//! context's namespace, else `default`).

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::failure::Failure;

/// The flags every command takes.
#[derive(clap::Args, Debug, Clone)]
pub struct Connection {
    /// Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: the current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The namespace (default: the context's namespace).
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

/// A client and the namespace commands act in.
pub struct Cluster {
    pub client: Client,
    pub namespace: String,
    /// The user's bearer token, for the artifact endpoint.
    pub token: Option<secrecy::SecretString>,
}

impl Connection {
    pub async fn connect(&self) -> Result<Cluster, Failure> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let config = match &self.kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(path).map_err(|e| {
                    Failure::api(format!(
                        "cannot read kubeconfig {}: {e}; pass a readable file with --kubeconfig",
                        path.display()
                    ))
                })?;
                Config::from_custom_kubeconfig(kc, &options)
                    .await
                    .map_err(|e| config_error(&e.to_string(), self.context.as_deref()))?
            }
            None if self.context.is_some() => Config::from_kubeconfig(&options)
                .await
                .map_err(|e| config_error(&e.to_string(), self.context.as_deref()))?,
            None => Config::infer()
                .await
                .map_err(|e| config_error(&e.to_string(), None))?,
        };
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let token = config.auth_info.token.clone();
        let client = Client::try_from(config).map_err(|e| {
            Failure::api(format!(
                "cannot build a client from the kubeconfig: {e}; check --kubeconfig and --context"
            ))
        })?;
        Ok(Cluster {
            client,
            namespace,
            token,
        })
    }
}

fn config_error(e: &str, context: Option<&str>) -> Failure {
    let hint = match context {
        Some(c) => {
            format!("check that context {c} exists (kubectl config get-contexts) in the kubeconfig")
        }
        None => "pass --kubeconfig or set KUBECONFIG".to_string(),
    };
    Failure::api(format!("cannot load a kubeconfig: {e}; {hint}"))
}
