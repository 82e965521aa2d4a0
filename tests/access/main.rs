//! Install and access, against a real kube-apiserver with real RBAC and the
//! chart's real admission policies: `helm install` of `charts/ferry`, the
//! operator's ServiceAccount limited to the documented permissions, what
//! viewers, workspace administrators and tenant owners may do, and
//! `kubectl wait --for=condition=Ready` on an import the operator (running
//! as the chart's ServiceAccount) carries out, and the creator of an import
//! task recorded by the API server, not claimed by the request. See
//! `support.rs`.
//!
//! This binary starts its own control plane (not the one of
//! `tests/integration`): the chart's admission policies and roles apply to
//! the whole cluster.

/// The chart is installed with its admission policies (tests/tenancy
/// installs it without them and runs `cross_tenant` again).
pub const POLICIES: bool = true;

mod creator;
mod cross_tenant;
mod install;
mod operator_permissions;
mod people;
mod ready;
mod support;
