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

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
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

#[derive(Clone)]
struct Shared {
    ctx: Arc<Context>,
}

/// The endpoint's routes.
pub fn routes(ctx: Arc<Context>) -> Router {
    Router::new()
        .route("/packages/{namespace}/{name}", get(download).put(upload))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(Shared { ctx })
}

fn refuse(code: StatusCode, message: impl Into<String>) -> Response {
    (code, format!("{}\n", message.into())).into_response()
}

/// Who the bearer token belongs to, and whether they may `verb` packages in
/// `namespace` (optionally a named one).
async fn authorize(
    client: &Client,
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
            ..Default::default()
        },
        ..Default::default()
    };
    let reviewed = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| refuse(StatusCode::BAD_GATEWAY, format!("TokenReview failed: {e}")))?;
    let status = reviewed.status.unwrap_or_default();
    let Some(user) = status.user.filter(|_| status.authenticated == Some(true)) else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "the token was not accepted by the cluster",
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
            refuse(
                StatusCode::BAD_GATEWAY,
                format!("SubjectAccessReview failed: {e}"),
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
    if let Err(r) = authorize(client, &headers, "get", &namespace, Some(&name)).await {
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
        Err(e) => return refuse(StatusCode::BAD_GATEWAY, e.to_string()),
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
    body: Bytes,
) -> Response {
    let ctx = &s.ctx;
    if let Err(r) = authorize(&ctx.client, &headers, "create", &namespace, None).await {
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
    let store = ctx.store.clone();
    let ns = namespace.clone();
    let stored =
        tokio::task::spawn_blocking(move || receive_verified(&store, &ns, &body, max)).await;
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

fn receive_verified(
    store: &ArtifactStore,
    namespace: &str,
    body: &[u8],
    max: u64,
) -> Result<crate::artifact::Stored, (StatusCode, String)> {
    let (file, stored) = store.receive(body, max).map_err(|e| match e {
        ReceiveError::TooLarge { limit } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the package is larger than the edition's local-upload limit of {limit} bytes"),
        ),
        ReceiveError::Io(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    })?;
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
