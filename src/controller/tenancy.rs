//! Tenancy enforced by the operator itself, whatever admission policies the
//! cluster has.
//!
//! Every namespace acts through one identity of its own, its *workspace
//! identity*: the ServiceAccount `<namespace>/<name>` (name from
//! `--workspace-service-account`, `ferry-workspace` by default). Whoever can
//! create a MigrationPackage or an ImportTask in a namespace acts, through
//! Ferry, with that identity's rights and no more (Flux's tenancy model):
//!
//! - a Secret a package names is read *as* the identity (impersonation), so
//!   the operator itself holds no right on Secrets at all;
//! - a MigrationPackage of another namespace is read as the identity of the
//!   importing task's namespace;
//! - exporting a workspace whose namespace is not the package's own needs the
//!   identity to administer that namespace (`create importtasks` there,
//!   checked with a SubjectAccessReview).
//!
//! Within its own namespace the identity needs nothing: a namespace trusts
//! itself. Why not a SubjectAccessReview for the user who created the
//! object: that user is known only when an admission policy records it
//! (Kubernetes 1.36+, and only with the chart's policies installed), and a
//! record the user could write is no evidence. The namespace is known from
//! the object itself. See docs/tenancy.md.

use http::HeaderValue;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client};

use super::{Context, Error};

/// The default name of the ServiceAccount each namespace acts through.
pub const DEFAULT_WORKSPACE_SERVICE_ACCOUNT: &str = "ferry-workspace";

/// The user name of `namespace`'s workspace identity.
pub fn identity(ctx: &Context, namespace: &str) -> String {
    format!(
        "system:serviceaccount:{namespace}:{}",
        ctx.workspace_service_account
    )
}

/// The groups the API server gives a ServiceAccount of `namespace`.
fn identity_groups(namespace: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{namespace}"),
        "system:authenticated".into(),
    ]
}

/// A client that acts as `namespace`'s workspace identity: every request it
/// sends carries `Impersonate-User`, so the API server authorizes it with the
/// identity's rights, not the operator's. The API server adds the
/// ServiceAccount's groups itself.
pub fn client_as(ctx: &Context, namespace: &str) -> Client {
    let base = ctx.client.clone();
    let user = HeaderValue::from_str(&identity(ctx, namespace))
        .expect("a DNS-1123 namespace and ServiceAccount name make a valid header");
    let service = tower::service_fn(move |mut request: http::Request<kube::client::Body>| {
        let base = base.clone();
        request
            .headers_mut()
            .insert("impersonate-user", user.clone());
        async move { base.send(request).await }
    });
    Client::new(service, namespace.to_string())
}

/// Whether `namespace`'s workspace identity may `verb` `resource` (of
/// `group`) in `target` namespace.
pub async fn identity_may(
    ctx: &Context,
    namespace: &str,
    verb: &str,
    group: &str,
    resource: &str,
    target: &str,
) -> Result<bool, kube::Error> {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(identity(ctx, namespace)),
            groups: Some(identity_groups(namespace)),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(target.into()),
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SubjectAccessReview>::all(ctx.client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// Whether an API error is the API server refusing the identity.
pub fn is_forbidden(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403)
}

/// How long a task refused its package waits before reading it again: the
/// fix is a RoleBinding, which no watch of the operator's sees.
pub const FORBIDDEN_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// Turns the API server refusing `namespace`'s identity a `get` of `kind`
/// `name` into a condition that says who was refused what and how to grant
/// it; other errors pass through. Final, like a missing Secret: the source
/// of a package never changes, so after the grant the package is created
/// again.
pub fn forbidden_or(
    ctx: &Context,
    namespace: &str,
    field: &str,
    kind: &str,
    name: &str,
    e: kube::Error,
) -> Error {
    if !is_forbidden(&e) {
        return Error::Kube(e);
    }
    Error::Stalled {
        reason: "SourceForbidden",
        message: format!(
            "{field}: the workspace identity of namespace {namespace} may not get {kind} {namespace}/{name}. {}",
            grant_hint(ctx, namespace, namespace, &format!("get on {kind} {name}"))
        ),
    }
}

/// The advice in a refusal: how an administrator grants the identity a right.
pub fn grant_hint(ctx: &Context, namespace: &str, target: &str, what: &str) -> String {
    format!(
        "Ferry acts for namespace {namespace} with the rights of its workspace identity {}; an administrator of namespace {target} can grant it {what} with a RoleBinding to that ServiceAccount (see docs/tenancy.md)",
        identity(ctx, namespace)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_those_the_api_server_gives_a_service_account() {
        assert_eq!(
            identity_groups("sales"),
            vec![
                "system:serviceaccounts",
                "system:serviceaccounts:sales",
                "system:authenticated"
            ]
        );
    }
}
