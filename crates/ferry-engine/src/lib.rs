//! Ferry's import engine: given a verified package, the destination
//! workspace and an ImportTask's settings, compute what the import does to
//! every object and in which order. Pure: no Kubernetes I/O, no async, no
//! network, so every rule of the seed is unit-tested here directly.
//!
//! - [`plan()`]: the entry point, [`Inputs`] to [`Plan`] or [`PlanError`].
//! - [`mapping`]: compute resources, resource groups, business processes.
//! - [`rename`]: dependency mapping (project rename, every occurrence, each
//!   replacement recorded).
//! - [`alerts`]: quality rules' alert settings, removed on import.
//! - [`dryrun`]: dry-run by name and by label selector.
//! - [`naming`]: Kubernetes names, labels, content digests.
//! - [`order`]: the order of the steps.
//! - [`phase`]: which objects each import phase writes, commits, deploys.
//! - [`report`]: per-object records and counts for status.
//! - [`ledger`]: the import's per-object ledger, fed by the controller's
//!   write results, and what each phase still has to do.

pub mod alerts;
pub mod dryrun;
pub mod error;
pub mod ledger;
pub mod mapping;
pub mod naming;
pub mod order;
pub mod phase;
pub mod plan;
pub mod rename;
pub mod report;
pub mod spec_doc;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod testutil;

pub use error::{PlanError, Problem, Rule};
pub use ferry_package::ObjectType;
pub use ledger::{Ledger, PhaseEnd, Step, WriteResult};
pub use naming::{content_digest, kube_name};
pub use phase::{Phase, PhaseWork, work};
pub use plan::{
    Action, ActionCounts, Delivery, Destination, Existing, Inputs, ObjectReplacement,
    OwnerIdentity, Plan, PlannedObject, RuleLink, TaskIdentity, plan,
};
pub use rename::{Renamer, Replacement};
pub use report::{ExistingObject, Failure, Outcome, Record, records, type_results};
pub use spec_doc::SpecDoc;

/// The API's name for a package object type.
pub fn api_type(t: ObjectType) -> ferry_api::ObjectType {
    match t {
        ObjectType::FileResource => ferry_api::ObjectType::FileResource,
        ObjectType::Function => ferry_api::ObjectType::Function,
        ObjectType::Table => ferry_api::ObjectType::Table,
        ObjectType::ScheduledTask => ferry_api::ObjectType::ScheduledTask,
        ObjectType::ServiceApi => ferry_api::ObjectType::ServiceApi,
        ObjectType::QualityRule => ferry_api::ObjectType::QualityRule,
    }
}

/// The package's name for an API object type.
pub fn package_type(t: ferry_api::ObjectType) -> ObjectType {
    match t {
        ferry_api::ObjectType::FileResource => ObjectType::FileResource,
        ferry_api::ObjectType::Function => ObjectType::Function,
        ferry_api::ObjectType::Table => ObjectType::Table,
        ferry_api::ObjectType::ScheduledTask => ObjectType::ScheduledTask,
        ferry_api::ObjectType::ServiceApi => ObjectType::ServiceApi,
        ferry_api::ObjectType::QualityRule => ObjectType::QualityRule,
    }
}
