//! The import's ledger: one record per planned object, moved on by the
//! events the controller feeds it (written, refused, conflict found at write
//! time, committed, deployed), and the phase logic that reads it: what each
//! phase still has to do, and where the import goes when the phase ends.
//!
//! The controller performs the writes and reports each one's result here;
//! it decides nothing itself. Records are kept in plan order, so a record
//! and its planned object share an index (no search by name on the hot
//! path); a (type, real name) index serves restoring a persisted ledger.
//!
//! The ledger is what the report is built from, never the package: a
//! failed import's report shows exactly which objects were written, which
//! were refused and why.

use std::collections::HashMap;

use ferry_api::TypeResult;
use ferry_package::ObjectType;

use crate::phase::Phase;
use crate::plan::{Plan, PlannedObject};
use crate::report::{ExistingObject, Outcome, Record, type_results};

/// What a phase does to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Write the spec (create only if absent, or replace an existing quality
    /// rule); record `Saved` when the object will not be committed.
    Write,
    /// Record the commit.
    Commit,
    /// Record the commit and the deployment in one status write.
    Deploy,
    /// Quality rules: write the spec, then their final state in one status
    /// write.
    WriteRule,
}

/// What one write did, as the controller saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteResult {
    /// The step is done. For an updated quality rule, `previous_spec` holds
    /// the rule's spec before it was replaced.
    Done { previous_spec: Option<String> },
    /// The object's name is taken by an object this import did not write
    /// (found when writing: a late hand-made object, another import's, or a
    /// different object whose derived name collides). Not overwritten.
    Conflict(ExistingObject),
    /// The apiserver refused the object itself; retrying will not help
    /// until a person changes something.
    Refused(String),
}

/// Where the import goes when a phase's work is reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PhaseEnd {
    /// Every object of the phase is done (or a conflict): go on.
    Next(Phase),
    /// Objects were refused: the import fails in this phase, and Import
    /// Again resumes it, redoing only what is not done.
    Failed {
        reason: &'static str,
        message: String,
    },
}

/// The per-object ledger of one import.
#[derive(Clone, Debug, PartialEq)]
pub struct Ledger {
    records: Vec<Record>,
    by_name: HashMap<(ObjectType, String), usize>,
}

/// Failures listed by name in a failed phase's message.
const LISTED_FAILURES: usize = 5;

impl Ledger {
    /// Every object as planned: conflicts and skips final, the rest pending.
    pub fn new(plan: &Plan) -> Ledger {
        let records: Vec<Record> = plan.objects.iter().map(Record::planned).collect();
        let by_name = records
            .iter()
            .enumerate()
            .map(|(i, r)| ((r.object_type, r.name.clone()), i))
            .collect();
        Ledger { records, by_name }
    }

    /// The records, in plan order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The record of this type and real name.
    pub fn get(&self, t: ObjectType, name: &str) -> Option<&Record> {
        self.by_name
            .get(&(t, name.to_string()))
            .map(|&i| &self.records[i])
    }

    /// Takes over what a persisted ledger of the same plan knew (outcomes,
    /// write-time conflicts, failures, what was committed and deployed), so a
    /// restarted operator goes on exactly where the last one was. Records
    /// are matched by (type, real name) and action; a record the plan does
    /// not hold is ignored. Returns how many records were taken over.
    pub fn restore(&mut self, persisted: impl IntoIterator<Item = Record>) -> usize {
        let mut taken = 0;
        for p in persisted {
            let Some(&i) = self.by_name.get(&(p.object_type, p.name.clone())) else {
                continue;
            };
            let r = &mut self.records[i];
            if r.action != p.action || r.kube_name != p.kube_name {
                continue;
            }
            r.outcome = p.outcome;
            r.message = p.message;
            r.written = p.written;
            r.committed = p.committed;
            r.deployed = p.deployed;
            r.failure = p.failure;
            r.existing = p.existing.or(r.existing.take());
            r.previous_spec = p.previous_spec;
            if let Some(a) = p.attached {
                r.attached = Some(a);
            }
            taken += 1;
        }
        taken
    }

    /// What `phase` still has to do, as (step, indices into the plan's
    /// objects): everything the plan asks of the phase that the ledger does
    /// not show done. A rerun (restart, Import Again) therefore redoes only
    /// what is not done; conflicts and skips are never touched.
    pub fn work(&self, plan: &Plan, phase: Phase) -> Vec<(Step, Vec<usize>)> {
        let todo = |step: Step| -> Vec<usize> {
            plan.objects
                .iter()
                .zip(&self.records)
                .enumerate()
                .filter(|(_, (o, r))| needs(step, o, r))
                .map(|(i, _)| i)
                .collect()
        };
        match phase {
            Phase::Importing => vec![(Step::Write, todo(Step::Write))],
            Phase::Committing => vec![(Step::Commit, todo(Step::Commit))],
            Phase::Deploying => vec![(Step::Deploy, todo(Step::Deploy))],
            Phase::ImportingRules => vec![(Step::WriteRule, todo(Step::WriteRule))],
            _ => Vec::new(),
        }
    }

    /// Records what `step` did to object `index` (an index into the plan's
    /// objects) during `phase`.
    pub fn record(
        &mut self,
        plan: &Plan,
        phase: Phase,
        step: Step,
        index: usize,
        result: WriteResult,
    ) {
        let o = &plan.objects[index];
        let r = &mut self.records[index];
        match result {
            WriteResult::Done { previous_spec } => {
                match step {
                    Step::Write => r.written(),
                    Step::Commit => {
                        r.written = true;
                        r.committed = true;
                    }
                    Step::Deploy => {
                        r.written = true;
                        r.committed = true;
                        r.deployed = true;
                    }
                    Step::WriteRule => {
                        r.written = true;
                        r.committed = o.delivery.commit;
                        r.deployed = o.delivery.commit && o.delivery.deploy;
                    }
                }
                r.clear_failure();
                if previous_spec.is_some() {
                    r.previous_spec = previous_spec;
                }
            }
            WriteResult::Conflict(existing) => {
                r.outcome = Outcome::Conflict;
                r.written = false;
                r.failure = None;
                r.message = Some(conflict_message(o, &existing));
                r.existing = Some(existing);
            }
            WriteResult::Refused(reason) => r.failed(&format!("{phase:?}"), reason),
        }
    }

    /// Where the import goes once `phase`'s work has been reported: on to
    /// the next phase, or failed when the phase refused objects.
    pub fn end_phase(&self, phase: Phase, suspend: bool) -> PhaseEnd {
        let name = format!("{phase:?}");
        let refused: Vec<&Record> = self
            .records
            .iter()
            .filter(|r| r.failure.as_ref().is_some_and(|f| f.phase == name))
            .collect();
        if refused.is_empty() {
            return PhaseEnd::Next(phase.next(suspend));
        }
        let listed: Vec<String> = refused
            .iter()
            .take(LISTED_FAILURES)
            .map(|r| {
                format!(
                    "{} {:?} ({}): {}",
                    r.object_type.as_str(),
                    r.name,
                    r.kube_name,
                    r.failure.as_ref().map(|f| f.reason.as_str()).unwrap_or("")
                )
            })
            .collect();
        let more = refused.len().saturating_sub(LISTED_FAILURES);
        PhaseEnd::Failed {
            reason: "ObjectsRefused",
            message: format!(
                "{} refused by the destination in {name}: {}{}; the report lists each with its reason, and Import Again retries only these",
                plural(refused.len(), "object was", "objects were"),
                listed.join("; "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ),
        }
    }

    /// Counts per type and outcome, for `status.results`.
    pub fn results(&self) -> Vec<TypeResult> {
        type_results(&self.records)
    }

    /// How many records have this outcome.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.records.iter().filter(|r| r.outcome == outcome).count()
    }

    /// The conflicts, as `Type/name` (the first `max`).
    pub fn first_conflicts(&self, max: usize) -> Vec<String> {
        self.records
            .iter()
            .filter(|r| r.outcome == Outcome::Conflict)
            .take(max)
            .map(|r| format!("{}/{}", r.object_type, r.name))
            .collect()
    }

    /// One line for a finished import: "12 created, 1 updated, 2 conflicts".
    pub fn summary_line(&self) -> String {
        let mut parts = vec![format!("{} created", self.count(Outcome::Created))];
        let updated = self.count(Outcome::Updated);
        if updated > 0 {
            parts.push(format!("{updated} updated"));
        }
        parts.push(plural(
            self.count(Outcome::Conflict),
            "conflict",
            "conflicts",
        ));
        let skipped = self.count(Outcome::Skipped);
        if skipped > 0 {
            parts.push(format!("{skipped} skipped"));
        }
        let failed = self.count(Outcome::Failed);
        if failed > 0 {
            parts.push(format!("{failed} failed"));
        }
        parts.join(", ")
    }
}

/// Whether `step` still has to be done for this object.
fn needs(step: Step, o: &PlannedObject, r: &Record) -> bool {
    if !o.action.writes() || r.outcome == Outcome::Conflict || r.outcome == Outcome::Skipped {
        return false;
    }
    let rule = o.object_type == ObjectType::QualityRule;
    let d = &o.delivery;
    match step {
        Step::Write => !rule && !r.written,
        Step::Commit => !rule && r.written && d.commit && !d.deploy && !r.committed,
        Step::Deploy => !rule && r.written && d.commit && d.deploy && !r.deployed,
        Step::WriteRule => {
            rule && (!r.written
                || (d.commit && !r.committed)
                || (d.commit && d.deploy && !r.deployed))
        }
    }
}

fn conflict_message(o: &PlannedObject, e: &ExistingObject) -> String {
    let by = e
        .import_task
        .as_ref()
        .map(|t| format!(", written by ImportTask {t:?}"))
        .unwrap_or_default();
    if e.name == o.name {
        format!(
            "{} {:?} appeared in the destination after planning as {}{by}: not overwritten, not committed",
            o.object_type, o.name, e.kube_name
        )
    } else {
        format!(
            "the name {} is taken by {} {:?}{by}, a different object: {:?} was not written, and the existing object was not overwritten",
            e.kube_name,
            o.object_type,
            if e.name.is_empty() {
                "(no real name)"
            } else {
                e.name.as_str()
            },
            o.name
        )
    }
}

/// "1 conflict", "2 conflicts".
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Action;
    use crate::testutil::{Obj, Setup, obj};
    use ObjectType::{QualityRule, ScheduledTask, Table};
    use ferry_api::Edition;

    fn plan_of(setup: Setup) -> Plan {
        setup.ok()
    }

    fn four_tasks_and_a_rule() -> Plan {
        plan_of(Setup::new(vec![
            Obj::task("a"),
            Obj::task("b"),
            Obj::task("c"),
            Obj::task("d"),
            obj(Table, "a").set("table", "a"),
            obj(QualityRule, "r").set("table", "a"),
        ]))
    }

    fn index(plan: &Plan, t: ObjectType, name: &str) -> usize {
        plan.objects
            .iter()
            .position(|o| o.object_type == t && o.name == name)
            .unwrap()
    }

    fn done() -> WriteResult {
        WriteResult::Done {
            previous_spec: None,
        }
    }

    /// Runs `phase` with every write succeeding except those `refuse` names.
    fn run(ledger: &mut Ledger, plan: &Plan, phase: Phase, refuse: &[&str]) -> PhaseEnd {
        for (step, indices) in ledger.work(plan, phase) {
            for i in indices {
                let result = if refuse.contains(&plan.objects[i].name.as_str()) {
                    WriteResult::Refused("denied by policy ferry-test-deny".into())
                } else {
                    done()
                };
                ledger.record(plan, phase, step, i, result);
            }
        }
        ledger.end_phase(phase, false)
    }

    #[test]
    fn a_phase_that_refuses_objects_fails_and_the_ledger_keeps_each_refusal() {
        let plan = four_tasks_and_a_rule();
        let mut ledger = Ledger::new(&plan);
        let end = run(&mut ledger, &plan, Phase::Importing, &["b", "d"]);
        let PhaseEnd::Failed { reason, message } = end else {
            panic!("expected a failure, got {end:?}");
        };
        assert_eq!(reason, "ObjectsRefused");
        assert!(message.starts_with("2 objects were refused"), "{message}");
        assert!(message.contains("\"b\"") && message.contains("\"d\""));
        let tasks = ledger
            .results()
            .into_iter()
            .find(|r| r.type_ == "ScheduledTask")
            .unwrap();
        assert_eq!((tasks.created, tasks.failed), (2, 2));
        let b = ledger.get(ScheduledTask, "b").unwrap();
        assert_eq!(b.outcome, Outcome::Failed);
        assert!(!b.written);
        assert_eq!(b.failure.as_ref().unwrap().phase, "Importing");
        assert!(
            b.reason()
                .unwrap()
                .contains("denied by policy ferry-test-deny")
        );
        let a = ledger.get(ScheduledTask, "a").unwrap();
        assert_eq!((a.outcome, a.written), (Outcome::Created, true));
    }

    #[test]
    fn import_again_redoes_only_what_is_not_done_and_ends_with_the_truth() {
        let plan = four_tasks_and_a_rule();
        let mut ledger = Ledger::new(&plan);
        run(&mut ledger, &plan, Phase::Importing, &[]);
        // Committing is empty when everything is deployed: go to Deploying.
        assert_eq!(
            run(&mut ledger, &plan, Phase::Committing, &[]),
            PhaseEnd::Next(Phase::Deploying)
        );
        assert!(matches!(
            run(&mut ledger, &plan, Phase::Deploying, &["c"]),
            PhaseEnd::Failed { .. }
        ));
        let c = ledger.get(ScheduledTask, "c").unwrap();
        assert_eq!(
            (c.outcome, c.written, c.deployed),
            (Outcome::Failed, true, false)
        );
        // Import Again resumes Deploying: only c is left to do.
        let work = ledger.work(&plan, Phase::Deploying);
        assert_eq!(work.len(), 1);
        assert_eq!(work[0].1, vec![index(&plan, ScheduledTask, "c")]);
        assert_eq!(
            run(&mut ledger, &plan, Phase::Deploying, &[]),
            PhaseEnd::Next(Phase::ImportingRules)
        );
        assert_eq!(
            run(&mut ledger, &plan, Phase::ImportingRules, &[]),
            PhaseEnd::Next(Phase::Completed)
        );
        assert_eq!(ledger.count(Outcome::Failed), 0);
        for (o, r) in plan.objects.iter().zip(ledger.records()) {
            assert!(r.written, "{r:?}");
            assert_eq!(r.committed, o.delivery.commit, "{r:?}");
            assert_eq!(r.deployed, o.delivery.commit && o.delivery.deploy, "{r:?}");
        }
        assert_eq!(ledger.summary_line(), "6 created, 0 conflicts");
    }

    #[test]
    fn a_conflict_found_at_write_time_is_final_and_names_the_object_in_the_way() {
        let plan = four_tasks_and_a_rule();
        let mut ledger = Ledger::new(&plan);
        let a = index(&plan, ScheduledTask, "a");
        let kube = plan.objects[a].kube_name.clone();
        ledger.record(
            &plan,
            Phase::Importing,
            Step::Write,
            a,
            WriteResult::Conflict(ExistingObject {
                kube_name: kube.clone(),
                name: "a".into(),
                import_task: Some("other-import".into()),
            }),
        );
        let r = ledger.get(ScheduledTask, "a").unwrap();
        assert_eq!(r.outcome, Outcome::Conflict);
        let m = r.message.as_deref().unwrap();
        assert!(m.contains(&kube) && m.contains("other-import"), "{m}");
        // Never written, committed or deployed afterwards.
        for phase in [Phase::Importing, Phase::Committing, Phase::Deploying] {
            assert!(
                ledger
                    .work(&plan, phase)
                    .iter()
                    .all(|(_, is)| !is.contains(&a)),
                "{phase:?}"
            );
        }
        assert_eq!(ledger.first_conflicts(5), ["ScheduledTask/a"]);
    }

    #[test]
    fn a_collision_of_derived_names_is_a_conflict_naming_both_objects() {
        let plan = four_tasks_and_a_rule();
        let mut ledger = Ledger::new(&plan);
        let b = index(&plan, ScheduledTask, "b");
        let kube = plan.objects[b].kube_name.clone();
        ledger.record(
            &plan,
            Phase::Importing,
            Step::Write,
            b,
            WriteResult::Conflict(ExistingObject {
                kube_name: kube.clone(),
                name: "someone_elses_task".into(),
                import_task: None,
            }),
        );
        let m = ledger
            .get(ScheduledTask, "b")
            .unwrap()
            .message
            .clone()
            .unwrap();
        assert!(
            m.contains(&kube) && m.contains("someone_elses_task") && m.contains("\"b\""),
            "{m}"
        );
    }

    #[test]
    fn a_persisted_ledger_restores_exactly() {
        let plan = four_tasks_and_a_rule();
        let mut ledger = Ledger::new(&plan);
        run(&mut ledger, &plan, Phase::Importing, &["d"]);
        let a = index(&plan, ScheduledTask, "a");
        ledger.record(
            &plan,
            Phase::Importing,
            Step::Write,
            a,
            WriteResult::Conflict(ExistingObject {
                kube_name: "x".into(),
                name: "a".into(),
                import_task: None,
            }),
        );
        let json: Vec<String> = ledger
            .records()
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        let mut fresh = Ledger::new(&plan);
        let taken = fresh.restore(json.iter().map(|j| serde_json::from_str(j).unwrap()));
        assert_eq!(taken, plan.objects.len());
        assert_eq!(fresh, ledger);
    }

    #[test]
    fn a_record_of_another_plan_is_not_restored() {
        let plan = four_tasks_and_a_rule();
        let mut other = Record::planned(&plan.objects[0]);
        other.kube_name = "renamed-elsewhere".into();
        other.written = true;
        let mut ledger = Ledger::new(&plan);
        assert_eq!(ledger.restore([other]), 0);
        assert!(!ledger.records()[0].written);
    }

    #[test]
    fn an_updated_rule_counts_as_updated_keeps_its_name_and_its_previous_content() {
        let plan = plan_of(
            Setup::new(vec![
                Obj::task("a"),
                obj(QualityRule, "orders_not_null").set("table", "a"),
            ])
            .existing_as(QualityRule, "orders_not_null", "orders-not-null"),
        );
        let r = index(&plan, QualityRule, "orders_not_null");
        assert_eq!(plan.objects[r].action, Action::Update);
        assert_eq!(plan.objects[r].kube_name, "orders-not-null");
        let mut ledger = Ledger::new(&plan);
        run(&mut ledger, &plan, Phase::Importing, &[]);
        run(&mut ledger, &plan, Phase::Deploying, &[]);
        let (step, work) = ledger.work(&plan, Phase::ImportingRules).remove(0);
        assert_eq!((step, work.clone()), (Step::WriteRule, vec![r]));
        ledger.record(
            &plan,
            Phase::ImportingRules,
            step,
            r,
            WriteResult::Done {
                previous_spec: Some(r#"{"name":"orders_not_null","table":"a"}"#.into()),
            },
        );
        let rec = ledger.get(QualityRule, "orders_not_null").unwrap();
        assert_eq!(rec.outcome, Outcome::Updated);
        assert!(rec.previous_spec.is_some());
        let rules = ledger
            .results()
            .into_iter()
            .find(|t| t.type_ == "QualityRule")
            .unwrap();
        assert_eq!((rules.created, rules.updated), (0, 1));
        assert_eq!(ledger.summary_line(), "1 created, 1 updated, 0 conflicts");
    }

    #[test]
    fn on_standard_nothing_is_committed_and_phases_have_no_commit_work() {
        let plan = plan_of(Setup::new(vec![Obj::task("a")]).edition(Edition::Standard));
        let mut ledger = Ledger::new(&plan);
        run(&mut ledger, &plan, Phase::Importing, &[]);
        for phase in [Phase::Committing, Phase::Deploying] {
            assert!(
                ledger
                    .work(&plan, phase)
                    .iter()
                    .all(|(_, is)| is.is_empty())
            );
        }
        assert!(!ledger.records()[0].committed);
    }

    #[test]
    fn the_work_of_a_large_plan_is_linear() {
        // 30,000 objects: building the ledger and selecting every phase's
        // work touches each record a constant number of times (a quadratic
        // selection would take minutes here, not milliseconds).
        let objs: Vec<Obj> = (0..30_000).map(|i| Obj::task(&format!("t{i}"))).collect();
        let plan = plan_of(Setup::new(objs));
        let mut ledger = Ledger::new(&plan);
        for phase in [Phase::Importing, Phase::Committing, Phase::Deploying] {
            run(&mut ledger, &plan, phase, &[]);
        }
        assert_eq!(ledger.count(Outcome::Created), 30_000);
        assert!(ledger.get(ScheduledTask, "t29999").unwrap().deployed);
    }
}
