//! Ferry: a Kubernetes operator that migrates the objects of data-development
//! workspaces between workspaces.

pub use ferry_api as api;
pub use ferry_api::edition;
pub mod artifact;
pub mod artifact_server;
pub mod conditions;
pub mod controller;
pub mod metrics;
pub mod operator;
pub mod server;
pub mod telemetry;
pub mod testenv;
