//! The import's phases as pure functions: which phase follows which, and
//! which objects each phase writes, commits and deploys. The controller
//! persists the phase before and after its work; these answers depend only
//! on the plan, so a restarted operator recomputes exactly the same work.

use ferry_api::ImportPhase;
use ferry_package::ObjectType;

use crate::plan::{Plan, PlannedObject};

/// Mirrors [`ferry_api::ImportPhase`] (converting both ways), so the engine
/// can answer phase questions without the controller's status types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    Pending,
    Verifying,
    Editing,
    Mapping,
    Importing,
    Committing,
    Deploying,
    ImportingRules,
    Completed,
    ImportFailed,
}

impl From<ImportPhase> for Phase {
    fn from(p: ImportPhase) -> Self {
        match p {
            ImportPhase::Pending => Phase::Pending,
            ImportPhase::Verifying => Phase::Verifying,
            ImportPhase::Editing => Phase::Editing,
            ImportPhase::Mapping => Phase::Mapping,
            ImportPhase::Importing => Phase::Importing,
            ImportPhase::Committing => Phase::Committing,
            ImportPhase::Deploying => Phase::Deploying,
            ImportPhase::ImportingRules => Phase::ImportingRules,
            ImportPhase::Completed => Phase::Completed,
            ImportPhase::ImportFailed => Phase::ImportFailed,
        }
    }
}

impl From<Phase> for ImportPhase {
    fn from(p: Phase) -> Self {
        match p {
            Phase::Pending => ImportPhase::Pending,
            Phase::Verifying => ImportPhase::Verifying,
            Phase::Editing => ImportPhase::Editing,
            Phase::Mapping => ImportPhase::Mapping,
            Phase::Importing => ImportPhase::Importing,
            Phase::Committing => ImportPhase::Committing,
            Phase::Deploying => ImportPhase::Deploying,
            Phase::ImportingRules => ImportPhase::ImportingRules,
            Phase::Completed => ImportPhase::Completed,
            Phase::ImportFailed => ImportPhase::ImportFailed,
        }
    }
}

impl Phase {
    /// The phase that follows this one when it succeeds. `suspend` holds the
    /// task in `Editing` (the plan is shown, nothing is written) after
    /// verification. Terminal phases stay where they are: leaving them takes
    /// a spec change or Import Again, which the controller decides.
    pub fn next(self, suspend: bool) -> Phase {
        match self {
            Phase::Pending => Phase::Verifying,
            Phase::Verifying | Phase::Editing if suspend => Phase::Editing,
            Phase::Verifying | Phase::Editing => Phase::Mapping,
            Phase::Mapping => Phase::Importing,
            Phase::Importing => Phase::Committing,
            Phase::Committing => Phase::Deploying,
            Phase::Deploying => Phase::ImportingRules,
            Phase::ImportingRules => Phase::Completed,
            Phase::Completed => Phase::Completed,
            Phase::ImportFailed => Phase::ImportFailed,
        }
    }

    /// Whether objects are written, committed or deployed in this phase (so
    /// the plan must be final before it starts).
    pub fn touches_destination(self) -> bool {
        matches!(
            self,
            Phase::Importing | Phase::Committing | Phase::Deploying | Phase::ImportingRules
        )
    }
}

/// The objects a phase acts on, in plan order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PhaseWork<'p> {
    /// Objects to write (server-side apply).
    pub write: Vec<&'p PlannedObject>,
    /// Objects to commit.
    pub commit: Vec<&'p PlannedObject>,
    /// Objects to deploy to production.
    pub deploy: Vec<&'p PlannedObject>,
}

impl PhaseWork<'_> {
    /// Steps in the phase, for `status.progress.total`.
    pub fn len(&self) -> usize {
        self.write.len() + self.commit.len() + self.deploy.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn is_rule(o: &PlannedObject) -> bool {
    o.object_type == ObjectType::QualityRule
}

fn committed<'p>(set: &[&'p PlannedObject]) -> Vec<&'p PlannedObject> {
    set.iter().copied().filter(|o| o.delivery.commit).collect()
}

fn deployed<'p>(set: &[&'p PlannedObject]) -> Vec<&'p PlannedObject> {
    set.iter()
        .copied()
        .filter(|o| o.delivery.commit && o.delivery.deploy)
        .collect()
}

/// What `phase` does with `plan`'s objects.
///
/// - Importing: writes everything that is created (or updated), except
///   quality rules.
/// - Committing: commits what was written and whose delivery says commit.
///   Empty on Basic and Standard editions: the plan never commits there.
/// - Deploying: deploys what was committed and whose delivery says deploy
///   (scheduled tasks, APIs, resources and functions; tables only with
///   `committingRules.tables.production`).
/// - ImportingRules: quality rules, after the tasks were imported,
///   committed and deployed (the seed), written and then committed and
///   deployed like the rest. Rules whose table is missing are written too
///   (unattached, see [`crate::RuleLink`]); the controller attaches them
///   when the table appears.
/// - Other phases touch no object.
pub fn work(plan: &Plan, phase: Phase) -> PhaseWork<'_> {
    let written = plan.objects.iter().filter(|o| o.action.writes());
    let (rules, others): (Vec<_>, Vec<_>) = written.partition(|o| is_rule(o));
    let mut w = PhaseWork::default();
    match phase {
        Phase::Importing => w.write = others,
        Phase::Committing => w.commit = committed(&others),
        Phase::Deploying => w.deploy = deployed(&others),
        Phase::ImportingRules => {
            w.commit = committed(&rules);
            w.deploy = deployed(&rules);
            w.write = rules;
        }
        _ => {}
    }
    w
}

/// The scheduled tasks a rule is associated with once rules import: their
/// names, or nothing when the package holds no tasks.
pub fn associations(rule: &PlannedObject) -> &[String] {
    rule.rule
        .as_ref()
        .map(|l| l.associated_tasks.as_slice())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_convert_both_ways() {
        for p in [
            ImportPhase::Pending,
            ImportPhase::Verifying,
            ImportPhase::Editing,
            ImportPhase::Mapping,
            ImportPhase::Importing,
            ImportPhase::Committing,
            ImportPhase::Deploying,
            ImportPhase::ImportingRules,
            ImportPhase::Completed,
            ImportPhase::ImportFailed,
        ] {
            assert_eq!(ImportPhase::from(Phase::from(p)), p);
        }
    }

    #[test]
    fn phases_follow_the_design_order() {
        let mut p = Phase::Pending;
        let mut seen = vec![p];
        while p != Phase::Completed {
            p = p.next(false);
            seen.push(p);
        }
        assert_eq!(
            seen,
            [
                Phase::Pending,
                Phase::Verifying,
                Phase::Mapping,
                Phase::Importing,
                Phase::Committing,
                Phase::Deploying,
                Phase::ImportingRules,
                Phase::Completed
            ]
        );
        assert_eq!(Phase::Verifying.next(true), Phase::Editing);
        assert_eq!(Phase::Editing.next(true), Phase::Editing);
        assert_eq!(Phase::Editing.next(false), Phase::Mapping);
        assert_eq!(Phase::ImportFailed.next(false), Phase::ImportFailed);
        assert!(Phase::Importing.touches_destination());
        assert!(!Phase::Editing.touches_destination());
    }
}
