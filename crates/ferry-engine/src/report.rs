//! The per-object report and the counts kept in status.
//!
//! A record starts from the plan (conflicts and skips are final at once,
//! created objects are `Pending`) and the [`crate::Ledger`] moves it on as
//! the controller reports what each write did. Records serialise as
//! camelCase JSON for the report ConfigMaps, which are also where the
//! ledger is persisted: a restarted operator reads them back.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use ferry_api::TypeResult;
use ferry_package::ObjectType;

use crate::plan::{Action, Plan, PlannedObject};

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// Planned, not written yet.
    Pending,
    Created,
    /// An existing quality rule was updated.
    Updated,
    Conflict,
    Skipped,
    Failed,
}

/// One object's line in the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    #[serde(rename = "type")]
    pub object_type: ObjectType,
    /// The real name.
    pub name: String,
    pub kube_name: String,
    pub action: Action,
    pub outcome: Outcome,
    /// Why: the conflict, the skip, or what was not committed (the plan's
    /// notes; a failure's reason is in `failure`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The object is in the destination, written by this import (created, or
    /// an existing quality rule updated). Stays true when a later phase
    /// refused the object.
    #[serde(default)]
    pub written: bool,
    pub committed: bool,
    pub deployed: bool,
    /// Scheduled tasks only: imported as dry-run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// The object's owner after import (Change Owner applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Quality rules only: whether the rule is attached to its table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attached: Option<bool>,
    /// Quality rules only: associated scheduled tasks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub associated_tasks: Vec<String>,
    /// With outcome `Failed`: the phase that refused the object and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// With outcome `Conflict` (and for updated rules): the destination's
    /// object that is in the way, as it actually is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing: Option<ExistingObject>,
    /// Updated quality rules only: the rule's spec before the update, as
    /// JSON text (what a rollback restores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_spec: Option<String>,
    /// Every project-name replacement made in the object (dependency
    /// mapping), field by field, before → after.
    /// Shared with the planned object's list (see
    /// [`PlannedObject::replacements`]).
    #[serde(default, skip_serializing_if = "no_replacements")]
    pub replacements: Arc<[crate::rename::Replacement]>,
    /// What the user should know although the object imports: a dependency
    /// that resolves to nothing, a resource group that fell back to the
    /// destination's default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

fn no_replacements(r: &Arc<[crate::rename::Replacement]>) -> bool {
    r.is_empty()
}

/// Why an object failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// The phase whose write was refused (`Importing`, `Committing`,
    /// `Deploying`, `ImportingRules`).
    pub phase: String,
    /// The apiserver's (or Ferry's) reason.
    pub reason: String,
}

/// An object of the destination, named as it is there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExistingObject {
    /// Its `metadata.name`.
    pub kube_name: String,
    /// Its real name (`spec.name`), empty when it has none.
    pub name: String,
    /// The ImportTask that wrote it, when another import did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_task: Option<String>,
}

impl Record {
    /// The record as planned.
    pub fn planned(p: &PlannedObject) -> Record {
        let outcome = match p.action {
            Action::Create | Action::Update => Outcome::Pending,
            Action::Conflict => Outcome::Conflict,
            Action::Skip => Outcome::Skipped,
        };
        let mut parts: Vec<String> = p.message.iter().cloned().collect();
        if p.action.writes() {
            parts.extend(p.delivery.note.iter().cloned());
        }
        if let Some(l) = &p.rule {
            parts.extend(l.notes.iter().cloned());
        }
        parts.extend(p.warnings.iter().cloned());
        if !p.replacements.is_empty() {
            parts.push(format!(
                "{} of the source project name (listed in replacements)",
                crate::ledger::plural(p.replacements.len(), "replacement", "replacements")
            ));
        }
        Record {
            object_type: p.object_type,
            name: p.name.clone(),
            kube_name: p.kube_name.clone(),
            action: p.action,
            outcome,
            message: (!parts.is_empty()).then(|| parts.join("; ")),
            written: false,
            committed: false,
            deployed: false,
            dry_run: p.dry_run,
            owner: p.owner.clone(),
            attached: p.rule.as_ref().map(|l| l.attached),
            associated_tasks: p
                .rule
                .as_ref()
                .map(|l| l.associated_tasks.clone())
                .unwrap_or_default(),
            failure: None,
            existing: p.existing.clone(),
            previous_spec: None,
            replacements: p.replacements.clone(),
            warnings: p.warnings.clone(),
        }
    }

    /// The outcome of a written object that no phase refused.
    fn settled_outcome(&self) -> Outcome {
        if self.action == Action::Update {
            Outcome::Updated
        } else {
            Outcome::Created
        }
    }

    /// The object was written.
    pub fn written(&mut self) {
        self.written = true;
        self.clear_failure();
    }

    /// A refusal seen earlier no longer holds (Import Again got through).
    pub fn clear_failure(&mut self) {
        self.failure = None;
        if self.outcome == Outcome::Failed || self.outcome == Outcome::Pending {
            self.outcome = if self.written {
                self.settled_outcome()
            } else {
                Outcome::Pending
            };
        }
    }

    /// `phase` refused the object for `why`.
    pub fn failed(&mut self, phase: &str, why: impl Into<String>) {
        self.outcome = Outcome::Failed;
        self.failure = Some(Failure {
            phase: phase.to_string(),
            reason: why.into(),
        });
    }

    /// The reason shown first: the failure's, else the plan's note.
    pub fn reason(&self) -> Option<String> {
        match (&self.failure, &self.message) {
            (Some(f), Some(m)) => Some(format!("{} refused it: {}; {m}", f.phase, f.reason)),
            (Some(f), None) => Some(format!("{} refused it: {}", f.phase, f.reason)),
            (None, m) => m.clone(),
        }
    }
}

/// Every object's record as planned, in plan order.
pub fn records(plan: &Plan) -> Vec<Record> {
    plan.objects.iter().map(Record::planned).collect()
}

/// Counts per type (in import order, types with no record left out) for
/// `status.results`. Updated quality rules count as `updated`, not created.
pub fn type_results(records: &[Record]) -> Vec<TypeResult> {
    ObjectType::IMPORT_ORDER
        .into_iter()
        .filter_map(|t| {
            let mut r = TypeResult {
                type_: t.as_str().to_string(),
                ..TypeResult::default()
            };
            let mut any = false;
            for rec in records.iter().filter(|r| r.object_type == t) {
                any = true;
                match rec.outcome {
                    Outcome::Created => r.created += 1,
                    Outcome::Updated => r.updated += 1,
                    Outcome::Conflict => r.conflict += 1,
                    Outcome::Skipped => r.skipped += 1,
                    Outcome::Failed => r.failed += 1,
                    Outcome::Pending => {}
                }
                r.committed += u64::from(rec.committed);
                r.deployed += u64::from(rec.deployed);
            }
            any.then_some(r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t: ObjectType, outcome: Outcome, committed: bool) -> Record {
        Record {
            object_type: t,
            name: "n".into(),
            kube_name: "n-0".into(),
            action: Action::Create,
            outcome,
            message: None,
            written: committed,
            committed,
            deployed: committed,
            dry_run: false,
            owner: None,
            attached: None,
            associated_tasks: vec![],
            failure: None,
            existing: None,
            previous_spec: None,
            replacements: Arc::default(),
            warnings: vec![],
        }
    }

    #[test]
    fn counts_per_type_and_outcome() {
        let rs = vec![
            rec(ObjectType::ScheduledTask, Outcome::Created, true),
            rec(ObjectType::ScheduledTask, Outcome::Conflict, false),
            rec(ObjectType::ScheduledTask, Outcome::Failed, false),
            rec(ObjectType::Table, Outcome::Skipped, false),
            rec(ObjectType::QualityRule, Outcome::Updated, true),
        ];
        let r = type_results(&rs);
        assert_eq!(
            r.iter().map(|r| r.type_.as_str()).collect::<Vec<_>>(),
            ["Table", "ScheduledTask", "QualityRule"]
        );
        assert_eq!(
            (
                r[1].created,
                r[1].conflict,
                r[1].failed,
                r[1].committed,
                r[1].deployed
            ),
            (1, 1, 1, 1, 1)
        );
        assert_eq!(r[0].skipped, 1);
        assert_eq!((r[2].created, r[2].updated), (0, 1));
    }

    #[test]
    fn records_round_trip_as_camel_case_json() {
        let mut r = rec(ObjectType::QualityRule, Outcome::Pending, false);
        r.attached = Some(false);
        r.failed("ImportingRules", "apply refused");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["type"], "QualityRule");
        assert_eq!(json["kubeName"], "n-0");
        assert_eq!(json["outcome"], "Failed");
        assert_eq!(json["failure"]["phase"], "ImportingRules");
        assert_eq!(json["attached"], false);
        assert!(json.get("dryRun").is_none());
        let back: Record = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn written_distinguishes_updates() {
        let mut r = rec(ObjectType::QualityRule, Outcome::Pending, false);
        r.action = Action::Update;
        r.written();
        assert_eq!(r.outcome, Outcome::Updated);
    }
}
