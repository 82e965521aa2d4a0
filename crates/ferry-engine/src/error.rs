//! Why a plan cannot be made. Every problem is collected (a user fixing a
//! task wants the whole list, not one problem per attempt), and each names
//! the object or mapping entry and the rule it breaks.

use std::fmt;

/// The rule a problem breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// A compute resource the package uses has no mapping entry.
    ComputeResourceUnmapped,
    /// A compute-resource mapping names a destination that does not exist
    /// (matched by display name).
    ComputeResourceNotFound,
    /// A compute-resource mapping pairs resources of different types.
    ComputeResourceTypeMismatch,
    /// The package uses compute-resource types the destination lacks.
    ComputeResourceTypesMissing,
    /// Two entries of one mapping list share a source.
    DuplicateMapping,
    /// A resource group has no entry, no same-named destination group, and
    /// the destination has no group to fall back to.
    ResourceGroupUnmapped,
    /// A resource-group mapping names a destination group that does not exist.
    ResourceGroupNotFound,
    /// `spec.dryRun.tasks` names something that is not a scheduled task of
    /// the package.
    DryRunTaskNotFound,
    /// `spec.dryRun.selector` cannot be evaluated.
    InvalidSelector,
    /// The package carries an object authored in the new-version Data Studio.
    NewStudioObject,
    /// Two objects of one type share a real name.
    DuplicateObject,
    /// Scheduled tasks depend on each other in a cycle.
    DependencyCycle,
    /// `changeOwner.mode` is `Specify` without an owner.
    OwnerMissing,
    /// `changeOwner.mode` is `NotModify`, some object has no owner, and the
    /// user who created the import (its owner then) is not known.
    CreatorUnknown,
}

/// One problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub rule: Rule,
    /// A complete sentence naming the object or mapping and the rule.
    pub message: String,
}

impl Problem {
    pub fn new(rule: Rule, message: impl Into<String>) -> Self {
        Problem {
            rule,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Every problem that prevents the plan. Nothing is written when this is
/// returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct PlanError {
    pub problems: Vec<Problem>,
}

impl PlanError {
    /// Whether any problem breaks `rule`.
    pub fn has(&self, rule: Rule) -> bool {
        self.problems.iter().any(|p| p.rule == rule)
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} problems:", many.len())?;
                for (i, p) in many.iter().enumerate() {
                    write!(f, " ({}) {p}", i + 1)?;
                }
                Ok(())
            }
        }
    }
}
