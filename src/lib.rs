//! Ferry: a Kubernetes operator that migrates the objects of data-development
//! workspaces between workspaces.

pub mod api;
pub mod conditions;
pub mod controller;
pub mod edition;
pub mod operator;
pub mod telemetry;
pub mod testenv;
