//! Integration tests against a real kube-apiserver and etcd, with real RBAC,
//! CRD schema validation and status subresources. See `support.rs`.

mod foundation;
mod imports;
mod ledger;
mod mappings;
mod packages;
mod sources;
mod support;
