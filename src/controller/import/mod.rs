//! The ImportTask controller: drives the pure engine (`ferry-engine`)
//! through the import phases and persists every transition.
//!
//! Each phase is written to status before its work starts and after it
//! ends. The work of a phase is idempotent (deterministic names, server-side
//! apply with one field manager, labels with the task UID and content
//! digest), so an operator killed mid-phase runs the phase again on restart
//! and neither duplicates nor loses an object.

mod apply;
mod load;
pub mod report;

/// The API resource holding workspace objects of a type.
pub use load::api_resource;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_engine::{Phase, Plan, PlanError, Record};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};

use self::apply::{Origin, Step, Target};
use super::package::tenant_of_namespace;
use super::{Context, Error, apply_status};
use crate::api::{
    ImportPhase, ImportTask, ImportTaskStatus, MigrationPackage, PhaseTiming, Progress, ReportRef,
};
use crate::conditions::{self, Outcome, READY, STALLED, summarise};

/// Annotation that asks for Import Again (any new value).
pub const REQUESTED_AT: &str = "ferry.dev/requested-at";
/// Annotation naming the user who created the task (set by `kubectl migrate`
/// or an admission policy); owners default to it.
pub const CREATED_BY: &str = "ferry.dev/created-by";
/// Conflicts listed in `status.plan.firstConflicts`.
const FIRST_CONFLICTS: usize = 10;

/// The package and plan of one task, kept between passes: a plan is
/// computed once per generation, not on every status update.
struct Prepared {
    key: String,
    plan: Result<Plan, PlanError>,
    namespace: String,
    origin: Origin,
    tables: (bool, bool),
}

/// The import controller's state beside the shared context.
pub struct ImportContext {
    base: Arc<Context>,
    prepared: Mutex<HashMap<String, Arc<Prepared>>>,
}

impl ImportContext {
    /// Drops the task's cached plan.
    fn forget(&self, task: &ImportTask) {
        self.prepared
            .lock()
            .unwrap()
            .remove(&task.uid().unwrap_or_default());
    }
}

/// A phase's end: the next phase, or a failure.
enum PhaseEnd {
    Next(ImportPhase),
    Failed {
        reason: &'static str,
        message: String,
    },
    /// Stay in this phase and come back (the package is not ready yet).
    Wait {
        message: String,
        after: Option<Duration>,
    },
}

#[tracing::instrument(skip_all, fields(task = %task.name_any(), namespace = task.namespace().unwrap_or_default()))]
async fn reconcile(task: Arc<ImportTask>, ictx: Arc<ImportContext>) -> Result<Action, Error> {
    let ctx = &ictx.base;
    let ns = task.namespace().unwrap_or_default();
    let api: Api<ImportTask> = Api::namespaced(ctx.client.clone(), &ns);
    let generation = task.metadata.generation;
    let mut status = task.status.clone().unwrap_or_default();
    let before = status.clone();
    // The phase last persisted: events name each transition once.
    let mut last = before.phase;

    // Import Again: a new requested-at on a failed task resumes the failed phase.
    let requested = task.annotations().get(REQUESTED_AT).cloned();
    if status.phase == ImportPhase::ImportFailed {
        if requested.is_some() && requested != status.last_handled_request {
            let resume = status.failed_phase.take().unwrap_or(ImportPhase::Verifying);
            // Mapping problems are fixed in the spec or the workspace: plan again.
            ictx.forget(&task);
            status.phase = if resume > ImportPhase::Mapping {
                resume
            } else {
                ImportPhase::Verifying
            };
            status.last_handled_request = requested.clone();
            status.message = None;
            status.completed_at = None;
        } else {
            return settle(ctx, &api, &task, status, generation).await;
        }
    } else if status.phase == ImportPhase::Completed {
        return settle(ctx, &api, &task, status, generation).await;
    }
    if status.phase == ImportPhase::Pending {
        status.started_at = Some(Time(Timestamp::now()));
        status.creator = task
            .annotations()
            .get(CREATED_BY)
            .cloned()
            .or(status.creator);
        status.last_handled_request = requested;
    }
    status.observed_generation = generation;

    loop {
        let phase = status.phase;
        if phase == ImportPhase::Editing && task.spec.suspend {
            // Editing shows the plan and waits; a changed spec re-plans.
            let prepared = prepare(&ictx, &task).await?;
            show_plan(&mut status, &prepared);
            write(ctx, &api, &task, &mut status, &mut last).await?;
            return Ok(Action::await_change());
        }
        start_phase(&mut status, phase);
        if phase.is_terminal() {
            break;
        }
        if phase != before.phase || status.phase_timings.len() != before.phase_timings.len() {
            write(ctx, &api, &task, &mut status, &mut last).await?;
        }
        let end = run_phase(&ictx, &task, &api, &mut status, phase).await?;
        match end {
            PhaseEnd::Next(next) => {
                end_phase(&mut status, phase);
                status.phase = next;
                status.progress = None;
            }
            PhaseEnd::Failed { reason, message } => {
                end_phase(&mut status, phase);
                status.failed_phase = Some(phase);
                status.phase = ImportPhase::ImportFailed;
                status.message = Some(message.clone());
                status.completed_at = Some(Time(Timestamp::now()));
                let outcome = Outcome::stalled(reason, format!("{phase:?} failed: {message}"));
                status.conditions =
                    summarise(&status.conditions, &outcome, generation, Timestamp::now());
                finish_report(&ictx, &task, &mut status, phase).await?;
                write(ctx, &api, &task, &mut status, &mut last).await?;
                ictx.forget(&task);
                return Ok(Action::await_change());
            }
            PhaseEnd::Wait { message, after } => {
                status.message = Some(message.clone());
                let outcome = Outcome::progressing("Waiting", message);
                status.conditions =
                    summarise(&status.conditions, &outcome, generation, Timestamp::now());
                write(ctx, &api, &task, &mut status, &mut last).await?;
                return Ok(after
                    .map(Action::requeue)
                    .unwrap_or_else(Action::await_change));
            }
        }
        if status.phase == ImportPhase::Completed {
            // The whole import's progress, set with our field manager so it
            // replaces the last in-phase progress update.
            if let Some(plan) = status.plan.as_ref() {
                status.progress = Some(Progress {
                    done: plan.create,
                    total: plan.create,
                });
            }
            status.completed_at = Some(Time(Timestamp::now()));
            status.message = None;
            finish_report(&ictx, &task, &mut status, ImportPhase::Completed).await?;
        }
        write(ctx, &api, &task, &mut status, &mut last).await?;
    }
    // Ended and reported: the plan (every object's spec) is not needed again.
    ictx.forget(&task);
    Ok(Action::await_change())
}

/// A finished task whose spec changed: record that this generation was seen,
/// nothing else (the report of a finished task never changes).
async fn settle(
    ctx: &Context,
    api: &Api<ImportTask>,
    task: &ImportTask,
    mut status: ImportTaskStatus,
    generation: Option<i64>,
) -> Result<Action, Error> {
    if status.observed_generation != generation {
        let mut last = status.phase;
        status.observed_generation = generation;
        for c in &mut status.conditions {
            c.observed_generation = generation;
        }
        write(ctx, api, task, &mut status, &mut last).await?;
    }
    Ok(Action::await_change())
}

fn start_phase(status: &mut ImportTaskStatus, phase: ImportPhase) {
    // Terminal phases have no duration: completedAt says when they began.
    if !phase.is_terminal()
        && (status.phase_timings.last().map(|t| t.phase) != Some(phase)
            || status
                .phase_timings
                .last()
                .is_some_and(|t| t.completed_at.is_some()))
    {
        status.phase_timings.push(PhaseTiming {
            phase,
            started_at: Time(Timestamp::now()),
            completed_at: None,
        });
    }
    if !phase.is_terminal() && phase != ImportPhase::Editing {
        let outcome = Outcome::progressing(&format!("{phase:?}"), format!("{phase:?}"));
        status.conditions = summarise(
            &status.conditions,
            &outcome,
            status.observed_generation,
            Timestamp::now(),
        );
    }
}

fn end_phase(status: &mut ImportTaskStatus, phase: ImportPhase) {
    if let Some(t) = status
        .phase_timings
        .iter_mut()
        .rev()
        .find(|t| t.phase == phase)
    {
        t.completed_at.get_or_insert(Time(Timestamp::now()));
    }
}

/// Writes status (server-side apply) and publishes an event when the phase changed.
async fn write(
    ctx: &Context,
    api: &Api<ImportTask>,
    task: &ImportTask,
    status: &mut ImportTaskStatus,
    last: &mut ImportPhase,
) -> Result<(), Error> {
    apply_status(api, task, &*status).await?;
    if status.phase != *last {
        let failed = status.phase == ImportPhase::ImportFailed;
        let event = Event {
            type_: if failed {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: format!("{:?}", status.phase),
            note: Some(match (&status.message, failed) {
                (Some(m), true) => truncate(m, 1000),
                _ => format!("{:?} → {:?}", *last, status.phase),
            }),
            action: "Import".into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &task.object_ref(&())).await {
            tracing::warn!(error = %e, "could not publish event");
        }
        *last = status.phase;
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn show_plan(status: &mut ImportTaskStatus, prepared: &Prepared) {
    match &prepared.plan {
        Ok(plan) => {
            status.plan = Some(plan.summary(FIRST_CONFLICTS));
            status.message = None;
            let c = plan.summary(FIRST_CONFLICTS);
            let outcome = Outcome::suspended(
                "Suspended",
                format!(
                    "plan: {} to create, {} conflicts, {} skipped; set spec.suspend to false to import",
                    c.create, c.conflict, c.skip
                ),
            );
            status.conditions = summarise(
                &status.conditions,
                &outcome,
                status.observed_generation,
                Timestamp::now(),
            );
        }
        Err(e) => {
            status.message = Some(e.to_string());
            let outcome = Outcome::suspended(
                "InvalidSettings",
                format!("the import cannot start as set: {e}"),
            );
            status.conditions = summarise(
                &status.conditions,
                &outcome,
                status.observed_generation,
                Timestamp::now(),
            );
        }
    }
}

async fn run_phase(
    ictx: &ImportContext,
    task: &ImportTask,
    api: &Api<ImportTask>,
    status: &mut ImportTaskStatus,
    phase: ImportPhase,
) -> Result<PhaseEnd, Error> {
    match phase {
        ImportPhase::Pending => Ok(PhaseEnd::Next(ImportPhase::Verifying)),
        ImportPhase::Verifying => {
            let prepared = match prepare(ictx, task).await {
                Ok(p) => p,
                Err(Error::Stalled {
                    reason: "PackageNotReady",
                    message,
                }) => {
                    return Ok(PhaseEnd::Wait {
                        message,
                        after: None,
                    });
                }
                Err(Error::Stalled { reason, message }) => {
                    return Ok(PhaseEnd::Failed { reason, message });
                }
                Err(e) => return Err(e),
            };
            if let Ok(plan) = &prepared.plan {
                status.plan = Some(plan.summary(FIRST_CONFLICTS));
            }
            Ok(PhaseEnd::Next(if task.spec.suspend {
                ImportPhase::Editing
            } else {
                ImportPhase::Mapping
            }))
        }
        ImportPhase::Editing => Ok(PhaseEnd::Next(ImportPhase::Mapping)),
        ImportPhase::Mapping => {
            let prepared = prepare(ictx, task).await?;
            match &prepared.plan {
                Ok(plan) => {
                    status.plan = Some(plan.summary(FIRST_CONFLICTS));
                    status.results =
                        ferry_engine::type_results(&records_through(plan, ImportPhase::Mapping));
                    Ok(PhaseEnd::Next(ImportPhase::Importing))
                }
                Err(e) => Ok(PhaseEnd::Failed {
                    reason: "MappingFailed",
                    message: e.to_string(),
                }),
            }
        }
        ImportPhase::Importing
        | ImportPhase::Committing
        | ImportPhase::Deploying
        | ImportPhase::ImportingRules => {
            let prepared = prepare(ictx, task).await?;
            let Ok(plan) = &prepared.plan else {
                return Ok(PhaseEnd::Failed {
                    reason: "MappingFailed",
                    message: "the plan no longer holds; Import Again re-plans".into(),
                });
            };
            let work = ferry_engine::work(plan, Phase::from(phase));
            let steps: Vec<(Step, Vec<&ferry_engine::PlannedObject>)> = match phase {
                ImportPhase::Importing => vec![(Step::Write, work.write)],
                // Objects that will also be deployed get their commit and
                // deploy in one status write in Deploying: two requests per
                // object instead of three.
                ImportPhase::Committing => vec![(
                    Step::Commit,
                    work.commit
                        .into_iter()
                        .filter(|o| !o.delivery.deploy)
                        .collect(),
                )],
                ImportPhase::Deploying => vec![(Step::Deploy, work.deploy)],
                _ => vec![(Step::WriteRule, work.write)],
            };
            let total: u64 = steps.iter().map(|(_, o)| o.len() as u64).sum();
            let dest = load::Destination {
                ours: load::read_ours(&ictx.base, &prepared.namespace, &prepared.origin.task_uid)
                    .await?,
                ..Default::default()
            };
            let done = Arc::new(AtomicU64::new(0));
            let ticker = spawn_progress(api.clone(), task.name_any(), done.clone(), total);
            let mut failures = Vec::new();
            let target = Target {
                ns: &prepared.namespace,
                dest: &dest,
                origin: &prepared.origin,
                tables: prepared.tables,
            };
            for (step, objects) in &steps {
                let failed =
                    apply::run_step(&ictx.base, &target, *step, objects, done.clone()).await;
                failures.extend(
                    failed
                        .into_iter()
                        .map(|f| (objects[f.index].name.clone(), f)),
                );
            }
            ticker.abort();
            status.progress = Some(Progress {
                done: done.load(Ordering::Relaxed),
                total,
            });
            if failures.iter().any(|(_, f)| f.transient) {
                let first = failures
                    .iter()
                    .find(|(_, f)| f.transient)
                    .map(|(_, f)| f.message.clone())
                    .unwrap_or_default();
                return Err(Error::Waiting {
                    reason: "ApiUnavailable",
                    message: first,
                    retry_after: Duration::from_secs(5),
                });
            }
            let next = Phase::from(phase).next(false).into();
            let mut records = records_through(
                plan,
                if failures.is_empty() {
                    phase
                } else {
                    previous(phase)
                },
            );
            for (name, f) in &failures {
                if let Some(r) = records.iter_mut().find(|r| &r.name == name) {
                    r.failed(f.message.clone());
                }
            }
            status.results = ferry_engine::type_results(&records);
            if failures.is_empty() {
                Ok(PhaseEnd::Next(next))
            } else {
                let listed: Vec<String> = failures
                    .iter()
                    .take(5)
                    .map(|(_, f)| f.message.clone())
                    .collect();
                Ok(PhaseEnd::Failed {
                    reason: "ObjectsRefused",
                    message: format!(
                        "{} object(s) could not be written: {}",
                        failures.len(),
                        listed.join("; ")
                    ),
                })
            }
        }
        ImportPhase::Completed | ImportPhase::ImportFailed => Ok(PhaseEnd::Next(phase)),
    }
}

fn previous(phase: ImportPhase) -> ImportPhase {
    match phase {
        ImportPhase::Committing => ImportPhase::Importing,
        ImportPhase::Deploying => ImportPhase::Committing,
        ImportPhase::ImportingRules => ImportPhase::Deploying,
        _ => ImportPhase::Mapping,
    }
}

/// The records as they stand once `through` has finished: derived from the
/// plan and the phases done, so a restarted operator rebuilds them exactly.
fn records_through(plan: &Plan, through: ImportPhase) -> Vec<Record> {
    let mut records = ferry_engine::records(plan);
    let done = |p: ImportPhase| through >= p && through != ImportPhase::ImportFailed;
    for phase in [
        ImportPhase::Importing,
        ImportPhase::Committing,
        ImportPhase::Deploying,
        ImportPhase::ImportingRules,
    ] {
        if !done(phase) {
            continue;
        }
        let work = ferry_engine::work(plan, Phase::from(phase));
        for o in &work.write {
            if let Some(r) = records
                .iter_mut()
                .find(|r| r.object_type == o.object_type && r.name == o.name)
            {
                r.written();
            }
        }
        for o in &work.commit {
            if let Some(r) = records
                .iter_mut()
                .find(|r| r.object_type == o.object_type && r.name == o.name)
            {
                r.committed = true;
            }
        }
        for o in &work.deploy {
            if let Some(r) = records
                .iter_mut()
                .find(|r| r.object_type == o.object_type && r.name == o.name)
            {
                r.deployed = true;
            }
        }
    }
    records
}

/// Patches `status.progress` about once a second while a phase works (a
/// merge patch of that one field, so it never disturbs the rest of status).
fn spawn_progress(
    api: Api<ImportTask>,
    name: String,
    done: Arc<AtomicU64>,
    total: u64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = u64::MAX;
        loop {
            let now = done.load(Ordering::Relaxed);
            if now != last {
                let patch =
                    serde_json::json!({"status": {"progress": {"done": now, "total": total}}});
                let _ = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
                last = now;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// Loads the package and plans the import, once per task generation.
async fn prepare(ictx: &ImportContext, task: &ImportTask) -> Result<Arc<Prepared>, Error> {
    let ctx = &ictx.base;
    let ns = task.namespace().unwrap_or_default();
    let uid = task.uid().unwrap_or_default();
    let pkg_ns = task
        .spec
        .package_ref
        .namespace
        .clone()
        .unwrap_or_else(|| ns.clone());
    let pkg = Api::<MigrationPackage>::namespaced(ctx.client.clone(), &pkg_ns)
        .get_opt(&task.spec.package_ref.name)
        .await?;
    let Some(pkg) = pkg else {
        return Err(Error::Stalled {
            reason: "PackageNotReady",
            message: format!(
                "spec.packageRef: MigrationPackage {pkg_ns}/{} does not exist (yet)",
                task.spec.package_ref.name
            ),
        });
    };
    let pstatus = pkg.status.clone().unwrap_or_default();
    if conditions::is_true(&pstatus.conditions, STALLED) {
        let why = conditions::find(&pstatus.conditions, READY)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        return Err(Error::Stalled {
            reason: "PackageRefused",
            message: format!(
                "MigrationPackage {pkg_ns}/{} was refused: {why}",
                pkg.name_any()
            ),
        });
    }
    let Some(artifact) = pstatus
        .artifact
        .filter(|_| conditions::is_true(&pstatus.conditions, READY))
    else {
        return Err(Error::Stalled {
            reason: "PackageNotReady",
            message: format!(
                "waiting for MigrationPackage {pkg_ns}/{} to be verified",
                pkg.name_any()
            ),
        });
    };
    let key = format!("{uid}/{:?}/{}", task.metadata.generation, artifact.digest);
    if let Some(p) = ictx
        .prepared
        .lock()
        .unwrap()
        .get(&uid)
        .filter(|p| p.key == key)
    {
        return Ok(p.clone());
    }
    let (workspace, tenant) = tenant_of_namespace(ctx, &ns).await?;
    let store = ctx.store.clone();
    let digest = artifact.digest.clone();
    let package = tokio::task::spawn_blocking(move || load::read_package(&store, &digest))
        .await
        .map_err(|e| Error::Stalled {
            reason: "InternalError",
            message: e.to_string(),
        })?
        .map_err(|message| Error::Stalled {
            reason: "PackageUnreadable",
            message,
        })?;
    let dest = load::read_destination(ctx, &ns, &uid).await?;
    let creator = task
        .status
        .as_ref()
        .and_then(|s| s.creator.clone())
        .or_else(|| task.annotations().get(CREATED_BY).cloned())
        .unwrap_or_default();
    let task_name = task.name_any();
    let ws_name = workspace.name_any();
    let tenant_name = tenant.name_any();
    let inputs = ferry_engine::Inputs {
        objects: &package.objects,
        source: &package.manifest.source,
        destination: ferry_engine::Destination {
            name: &ws_name,
            workspace: &workspace.spec,
            tenant: &tenant_name,
            edition: tenant.spec.edition,
        },
        existing: &dest.existing,
        existing_tables: &dest.tables,
        task: &task.spec,
        creator: &creator,
        identity: ferry_engine::TaskIdentity {
            name: &task_name,
            uid: &uid,
            package_digest: &artifact.digest,
        },
    };
    let plan = ferry_engine::plan(&inputs);
    // The package's objects are not needed once planned (the plan holds
    // each spec as text): freed before the phases run.
    drop(package);
    let prepared = Arc::new(Prepared {
        key,
        plan,
        namespace: ns,
        origin: Origin {
            task: task_name,
            task_uid: uid.clone(),
            package_digest: artifact.digest,
        },
        tables: (
            task.spec.committing_rules.tables.development,
            task.spec.committing_rules.tables.production,
        ),
    });
    ictx.prepared.lock().unwrap().insert(uid, prepared.clone());
    Ok(prepared)
}

/// Writes the report ConfigMaps and the summary in status.
async fn finish_report(
    ictx: &ImportContext,
    task: &ImportTask,
    status: &mut ImportTaskStatus,
    through: ImportPhase,
) -> Result<(), Error> {
    let Ok(prepared) = prepare(ictx, task).await else {
        return Ok(());
    };
    let Ok(plan) = &prepared.plan else {
        return Ok(());
    };
    let reached = if through == ImportPhase::Completed {
        ImportPhase::ImportingRules
    } else {
        previous(through)
    };
    let records = records_through(plan, reached);
    status.results = ferry_engine::type_results(&records);
    let conflicts = records
        .iter()
        .filter(|r| r.outcome == ferry_engine::Outcome::Conflict)
        .count();
    let basic = serde_json::json!({
        "importName": task.spec.import_name,
        "package": task.spec.package_ref.name,
        "packageDigest": prepared.origin.package_digest,
        "destinationNamespace": prepared.namespace,
        "creator": status.creator,
        "startedAt": status.started_at,
        "completedAt": status.completed_at,
        "phase": status.phase,
        "edition": plan.edition,
        "autoCommitAndDeploy": plan.auto_commit_and_deploy,
        "warnings": plan.warnings,
    });
    let names = report::write(&ictx.base.client, task, &records, &basic).await?;
    let metrics = &ictx.base.metrics;
    if through == ImportPhase::Completed {
        metrics.import_finished(if conflicts > 0 {
            "partial"
        } else {
            "completed"
        });
        for t in ferry_package::ObjectType::IMPORT_ORDER {
            let written = records
                .iter()
                .filter(|r| {
                    r.object_type == t
                        && matches!(
                            r.outcome,
                            ferry_engine::Outcome::Created | ferry_engine::Outcome::Updated
                        )
                })
                .count();
            metrics.objects_imported(t.as_str(), written as u64);
        }
    } else {
        metrics.import_finished("failed");
    }
    status.report = Some(ReportRef {
        config_maps: names,
        records: records.len() as u64,
    });
    if through == ImportPhase::Completed {
        let generation = status.observed_generation;
        let now = Timestamp::now();
        let message = format!(
            "{} objects imported, {} conflicts",
            records.len() - conflicts,
            conflicts
        );
        status.conditions = summarise(
            &status.conditions,
            &Outcome::ready("Completed", message),
            generation,
            now,
        );
        let partial = if conflicts > 0 {
            let first = plan.summary(FIRST_CONFLICTS).first_conflicts.join(", ");
            conditions::set(
                &status.conditions,
                "PartiallyImported",
                "True",
                "Conflicts",
                &format!(
                    "{conflicts} objects already exist in the destination and were not imported: {first}"
                ),
                generation,
                now,
            )
        } else {
            conditions::set(
                &status.conditions,
                "PartiallyImported",
                "False",
                "NoConflicts",
                "",
                generation,
                now,
            )
        };
        status
            .conditions
            .retain(|c: &Condition| c.type_ != "PartiallyImported");
        status.conditions.push(partial);
    }
    Ok(())
}

fn error_policy(task: Arc<ImportTask>, error: &Error, ictx: Arc<ImportContext>) -> Action {
    super::error_policy(task, error, ictx.base.clone())
}

/// Runs the ImportTask controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let ictx = Arc::new(ImportContext {
        base: ctx,
        prepared: Mutex::default(),
    });
    let controller = Controller::new(
        Api::<ImportTask>::all(client.clone()),
        watcher::Config::default(),
    );
    let store = controller.store();
    controller
        // A package becoming Ready (or refused) moves the tasks waiting on it.
        .watches(
            Api::<MigrationPackage>::all(client),
            watcher::Config::default(),
            move |pkg| {
                let (name, ns) = (pkg.name_any(), pkg.namespace().unwrap_or_default());
                store
                    .state()
                    .into_iter()
                    .filter(|t| {
                        t.spec.package_ref.name == name
                            && t.spec
                                .package_ref
                                .namespace
                                .clone()
                                .unwrap_or_else(|| t.namespace().unwrap_or_default())
                                == ns
                    })
                    .map(|t| ObjectRef::from_obj(t.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(
            |obj, ictx| async move {
                crate::controller::timed(&ictx.base.clone(), "import", reconcile(obj, ictx)).await
            },
            error_policy,
            ictx,
        )
        .for_each(|_| async {})
        .await;
}
