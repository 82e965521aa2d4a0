//! The per-object report and the counts kept in status.
//!
//! A record starts from the plan (conflicts and skips are final at once,
//! created objects are `Pending`) and the controller moves it on as phases
//! finish. Records serialise as camelCase JSON for the report ConfigMaps.

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
    /// Why: the conflict, the skip, the failure, or what was not committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub committed: bool,
    pub deployed: bool,
    /// Scheduled tasks only: imported as dry-run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Quality rules only: whether the rule is attached to its table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attached: Option<bool>,
    /// Quality rules only: associated scheduled tasks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub associated_tasks: Vec<String>,
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
        Record {
            object_type: p.object_type,
            name: p.name.clone(),
            kube_name: p.kube_name.clone(),
            action: p.action,
            outcome,
            message: (!parts.is_empty()).then(|| parts.join("; ")),
            committed: false,
            deployed: false,
            dry_run: p.dry_run,
            attached: p.rule.as_ref().map(|l| l.attached),
            associated_tasks: p
                .rule
                .as_ref()
                .map(|l| l.associated_tasks.clone())
                .unwrap_or_default(),
        }
    }

    /// The object was written.
    pub fn written(&mut self) {
        self.outcome = if self.action == Action::Update {
            Outcome::Updated
        } else {
            Outcome::Created
        };
    }

    /// The object failed; `why` is kept ahead of any earlier message.
    pub fn failed(&mut self, why: impl Into<String>) {
        self.outcome = Outcome::Failed;
        let why = why.into();
        self.message = Some(match self.message.take() {
            Some(m) => format!("{why}; {m}"),
            None => why,
        });
    }
}

/// Every object's record as planned, in plan order.
pub fn records(plan: &Plan) -> Vec<Record> {
    plan.objects.iter().map(Record::planned).collect()
}

/// Counts per type (in import order, types with no record left out) for
/// `status.results`. `created` counts updated rules too.
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
                    Outcome::Created | Outcome::Updated => r.created += 1,
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
            committed,
            deployed: committed,
            dry_run: false,
            attached: None,
            associated_tasks: vec![],
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
        assert_eq!(r[2].created, 1);
    }

    #[test]
    fn records_round_trip_as_camel_case_json() {
        let mut r = rec(ObjectType::QualityRule, Outcome::Pending, false);
        r.attached = Some(false);
        r.failed("apply refused");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["type"], "QualityRule");
        assert_eq!(json["kubeName"], "n-0");
        assert_eq!(json["outcome"], "Failed");
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
