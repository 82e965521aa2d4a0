//! The artifact endpoint: download a package's verified zip, upload a local
//! package. Both authenticate the caller's Kubernetes bearer token with a
//! TokenReview and authorize with a SubjectAccessReview against
//! `migrationpackages` in the namespace (`get` to download, `create` to
//! upload), so the operator never acts for someone who could not act alone.
//!
//! - `GET /packages/{namespace}/{name}`: the package's artifact.
//! - `PUT /packages/{namespace}/{name}`: store a zip (within the tenant
//!   edition's local-upload limit), verify it, and answer its digest; the
//!   caller then creates the MigrationPackage with `spec.source.upload`.
//!   Uploads are recorded per namespace, so a digest uploaded in one
//!   namespace cannot be claimed from another.
//!
//! The port is reachable from every pod, so nothing is read from a request
//! body before the caller is authenticated and authorized from the headers
//! alone, a declared `Content-Length` over the limit is refused before the
//! first byte, and the body is then streamed to disk under the edition's
//! limit with a deadline and an idle timeout. Uploads verify in the
//! operator, so only [`ServerSettings::max_uploads`] run at once; the
//! serving loop ([`crate::server::serve_guarded`]) bounds connections and
//! header time and can terminate TLS.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client};

use crate::api::MigrationPackage;
use crate::artifact::{ArtifactStore, ReceiveError};
use crate::controller::Context;

/// How the endpoint serves (flags of `ferry run`, values of the chart).
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// Connections served at once.
    pub max_connections: usize,
    /// Uploads received and verified at once; more are answered 503 with
    /// `Retry-After`.
    pub max_uploads: usize,
    /// Request line and headers must arrive within this long.
    pub header_timeout: Duration,
    /// An upload body with no byte for this long is abandoned.
    pub body_idle_timeout: Duration,
    /// A whole upload body must arrive within this long.
    pub body_timeout: Duration,
    /// TokenReview audiences the caller's token must be valid for. Empty:
    /// the apiserver's own audiences (any token the cluster accepts).
    pub audiences: Vec<String>,
    /// PEM certificate and key files: serve HTTPS instead of HTTP.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            max_connections: 64,
            max_uploads: 4,
            header_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(300),
            audiences: Vec::new(),
            tls: None,
        }
    }
}

impl ServerSettings {
    /// The serving loop's guard; reads the TLS files when set.
    pub fn guard(&self) -> anyhow::Result<crate::server::Guard> {
        let tls = match &self.tls {
            Some((cert, key)) => Some(crate::server::tls_config(cert, key)?),
            None => None,
        };
        Ok(crate::server::Guard {
            max_connections: self.max_connections,
            header_timeout: self.header_timeout,
            tls,
        })
    }
}

#[derive(Clone)]
struct Shared {
    ctx: Arc<Context>,
    settings: Arc<ServerSettings>,
    uploads: Arc<tokio::sync::Semaphore>,
}

/// The endpoint's routes.
pub fn routes(ctx: Arc<Context>, settings: ServerSettings) -> Router {
    let uploads = Arc::new(tokio::sync::Semaphore::new(settings.max_uploads.max(1)));
    Router::new()
        .route("/packages/{namespace}/{name}", get(download).put(upload))
        // The upload handler takes the raw body and bounds it itself, with
        // the edition's limit it learns only after authorizing.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(Shared {
            ctx,
            settings: Arc::new(settings),
            uploads,
        })
}

/// A DNS-1123 label (a namespace) or subdomain (a package name): anything
/// else is refused before it reaches a review, an API path or the disk.
fn valid_name(s: &str, label: bool) -> bool {
    let max = if label { 63 } else { 253 };
    !s.is_empty()
        && s.len() <= max
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (!label && b == b'.')
        })
        && s.split('.')
            .all(|part| !part.is_empty() && !part.starts_with('-') && !part.ends_with('-'))
}

/// The refusal of a path whose namespace or name is not a Kubernetes name.
fn bad_path(namespace: &str, name: &str) -> Option<Response> {
    if !valid_name(namespace, true) {
        return Some(refuse(
            StatusCode::BAD_REQUEST,
            "the namespace in the path is not a valid namespace name (DNS-1123 label)",
        ));
    }
    if !valid_name(name, false) {
        return Some(refuse(
            StatusCode::BAD_REQUEST,
            "the package name in the path is not a valid object name (DNS-1123 subdomain)",
        ));
    }
    None
}

fn refuse(code: StatusCode, message: impl Into<String>) -> Response {
    (code, format!("{}\n", message.into())).into_response()
}

/// Who the bearer token belongs to, and whether they may `verb` packages in
/// `namespace` (optionally a named one).
async fn authorize(
    client: &Client,
    audiences: &[String],
    headers: &HeaderMap,
    verb: &str,
    namespace: &str,
    name: Option<&str>,
) -> Result<(), Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            refuse(
                StatusCode::UNAUTHORIZED,
                "send your Kubernetes bearer token: Authorization: Bearer <token>",
            )
        })?;
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: token.to_string(),
            audiences: (!audiences.is_empty()).then(|| audiences.to_vec()),
        },
        ..Default::default()
    };
    // Review failures are the operator's business: the caller (maybe
    // unauthenticated) learns only that it failed; the log has the detail.
    let reviewed = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "TokenReview failed");
            refuse(
                StatusCode::BAD_GATEWAY,
                "the cluster could not review the token; try again",
            )
        })?;
    let status = reviewed.status.unwrap_or_default();
    // With audiences asked for, the apiserver answers which of them the
    // token is valid for: none means it is not a token for this endpoint.
    let audience_ok = audiences.is_empty()
        || status
            .audiences
            .as_ref()
            .is_some_and(|got| got.iter().any(|a| audiences.contains(a)));
    let Some(user) = status
        .user
        .filter(|_| status.authenticated == Some(true) && audience_ok)
    else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            if audiences.is_empty() {
                "the token was not accepted by the cluster".to_string()
            } else {
                format!(
                    "the token was not accepted by the cluster for audience {}",
                    audiences.join(", ")
                )
            },
        ));
    };
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: user.username.clone(),
            groups: user.groups.clone(),
            uid: user.uid.clone(),
            extra: user.extra.clone(),
            resource_attributes: Some(ResourceAttributes {
                group: Some(crate::api::GROUP.into()),
                resource: Some("migrationpackages".into()),
                verb: Some(verb.into()),
                namespace: Some(namespace.into()),
                name: name.map(String::from),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let decided = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &sar)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "SubjectAccessReview failed");
            refuse(
                StatusCode::BAD_GATEWAY,
                "the cluster could not review the permission; try again",
            )
        })?;
    if decided.status.is_some_and(|s| s.allowed) {
        Ok(())
    } else {
        let who = user.username.unwrap_or_default();
        Err(refuse(
            StatusCode::FORBIDDEN,
            format!("{who} may not {verb} migrationpackages in namespace {namespace}"),
        ))
    }
}

async fn download(
    State(s): State<Shared>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let client = &s.ctx.client;
    if let Some(r) = bad_path(&namespace, &name) {
        return r;
    }
    if let Err(r) = authorize(
        client,
        &s.settings.audiences,
        &headers,
        "get",
        &namespace,
        Some(&name),
    )
    .await
    {
        return r;
    }
    let pkg = match Api::<MigrationPackage>::namespaced(client.clone(), &namespace)
        .get_opt(&name)
        .await
    {
        Ok(Some(p)) => p,
        Ok(None) => {
            return refuse(
                StatusCode::NOT_FOUND,
                format!("MigrationPackage {namespace}/{name} does not exist"),
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "reading a MigrationPackage for download failed");
            return refuse(
                StatusCode::BAD_GATEWAY,
                "reading the MigrationPackage failed; try again",
            );
        }
    };
    let Some(artifact) = pkg.status.and_then(|s| s.artifact) else {
        return refuse(
            StatusCode::CONFLICT,
            format!("MigrationPackage {namespace}/{name} has no verified artifact yet"),
        );
    };
    let file = match s.ctx.store.open_artifact(&artifact.digest) {
        Ok(f) => tokio::fs::File::from_std(f),
        Err(e) => {
            return refuse(
                StatusCode::GONE,
                format!("artifact {} is not in the store: {e}", artifact.digest),
            );
        }
    };
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Response::builder()
        .header(header::CONTENT_TYPE, "application/zip")
        .header(header::CONTENT_LENGTH, artifact.size)
        .header("X-Ferry-Digest", artifact.digest)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}.zip\""),
        )
        .body(body)
        .unwrap_or_else(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn upload(
    State(s): State<Shared>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ctx = &s.ctx;
    // Everything up to the edition's limit is decided from the path and the
    // headers; the body is untouched until then.
    if let Some(r) = bad_path(&namespace, &name) {
        return r;
    }
    if let Err(r) = authorize(
        &ctx.client,
        &s.settings.audiences,
        &headers,
        "create",
        &namespace,
        None,
    )
    .await
    {
        return r;
    }
    let (_ws, tenant) = match crate::controller::package::tenant_of_namespace(ctx, &namespace).await
    {
        Ok(t) => t,
        Err(e) => return refuse(StatusCode::CONFLICT, e.to_string()),
    };
    let limits = crate::edition::limits(tenant.spec.edition);
    let max = match crate::controller::package::source_allowance(
        "ConfigMap",
        &limits,
        tenant.spec.edition,
    ) {
        Ok(max) => max,
        Err(m) => return refuse(StatusCode::FORBIDDEN, m),
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared
        && len > max
    {
        return too_large(max);
    }
    let Ok(_slot) = s.uploads.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "10")],
            format!(
                "{} uploads are being received and verified; try again shortly\n",
                s.settings.max_uploads
            ),
        )
            .into_response();
    };
    let received = match receive(&ctx.store, body, max, &s.settings).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let store = ctx.store.clone();
    let ns = namespace.clone();
    let stored =
        tokio::task::spawn_blocking(move || verify_and_commit(&store, &ns, received, max)).await;
    match stored {
        Ok(Ok(stored)) => {
            tracing::info!(%namespace, package = %name, digest = %stored.digest, size = stored.size, "package uploaded");
            let reply = serde_json::json!({"digest": stored.digest, "size": stored.size,
                "source": {"upload": {"digest": stored.digest}}});
            (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, "application/json")],
                reply.to_string(),
            )
                .into_response()
        }
        Ok(Err((code, message))) => refuse(code, message),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn too_large(limit: u64) -> Response {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the package is larger than the edition's local-upload limit of {limit} bytes"),
    )
}

/// Streams `body` into the store's incoming area: at most `max` bytes, each
/// piece within the idle timeout, the whole within the body timeout.
async fn receive(
    store: &ArtifactStore,
    body: Body,
    max: u64,
    settings: &ServerSettings,
) -> Result<(tempfile::NamedTempFile, crate::artifact::Stored), Response> {
    use futures::StreamExt;
    let storage = |e: ReceiveError| match e {
        ReceiveError::TooLarge { limit } => too_large(limit),
        ReceiveError::Io(e) => {
            tracing::error!(error = %e, "writing an upload failed");
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the artifact store could not take the upload",
            )
        }
    };
    let mut receiver = store.receiver(max).map_err(storage)?;
    let mut stream = body.into_data_stream();
    let deadline = tokio::time::Instant::now() + settings.body_timeout;
    loop {
        let idle = tokio::time::Instant::now() + settings.body_idle_timeout;
        let next = tokio::time::timeout_at(deadline.min(idle), stream.next()).await;
        match next {
            Err(_) => {
                return Err(refuse(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the upload body did not arrive in time (at most {} s without a byte, {} s in all)",
                        settings.body_idle_timeout.as_secs(),
                        settings.body_timeout.as_secs()
                    ),
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    format!("reading the upload body failed: {e}"),
                ));
            }
            Ok(Some(Ok(bytes))) => receiver.write(&bytes).map_err(storage)?,
        }
    }
    receiver.finish().map_err(storage)
}

fn verify_and_commit(
    store: &ArtifactStore,
    namespace: &str,
    (file, stored): (tempfile::NamedTempFile, crate::artifact::Stored),
    max: u64,
) -> Result<crate::artifact::Stored, (StatusCode, String)> {
    let limits = ferry_package::Limits {
        max_package_bytes: max,
        ..Default::default()
    };
    let reader = std::fs::File::open(file.path())
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if let Err(e) = ferry_package::PackageReader::open(std::io::BufReader::new(reader), &limits) {
        let problems: Vec<String> = e.problems.iter().map(ToString::to_string).collect();
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("package refused:\n{}", problems.join("\n")),
        ));
    }
    store
        .commit(file, &stored)
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    store
        .record_upload(namespace, &stored.digest)
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn only_dns_names_reach_reviews_paths_and_the_disk() {
        assert!(valid_name("sales-prod", true));
        assert!(valid_name("q4.v2", false));
        for bad in ["", "..", "a/b", "../x", "A", "-a", "a-", "a..b", "a%2fb"] {
            assert!(!valid_name(bad, false), "{bad}");
        }
        assert!(!valid_name("a.b", true));
        assert!(!valid_name(&"a".repeat(64), true));
    }
}
