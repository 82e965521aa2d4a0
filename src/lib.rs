//! Ferry: a Kubernetes operator that migrates the objects of data-development
//! workspaces between workspaces.

pub mod api;
