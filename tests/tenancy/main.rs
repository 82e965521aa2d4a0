//! Tenancy without admission policies: the chart installed with
//! `admissionPolicy.enabled=false` (as on Kubernetes before 1.30, or with the
//! policies in Warn or Audit mode), the operator running as the chart's
//! ServiceAccount, and the cross-tenant attempts of `tests/access` made
//! again. Each is refused by the operator alone.
//!
//! Its own control plane: the policies of `tests/access` apply to a whole
//! cluster.

pub const POLICIES: bool = false;

#[path = "../access/cross_tenant.rs"]
mod cross_tenant;
#[path = "../access/support.rs"]
#[allow(dead_code)]
mod support;
