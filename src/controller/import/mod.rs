//! The ImportTask controller: drives the pure engine (`ferry-engine`)
//! through the import phases and persists every transition.
//!
//! The engine decides; this module performs I/O. The plan says what to do
//! with every object, the engine's [`Ledger`] says what each phase still has
//! to do and where the import goes next, and this controller writes the
//! objects, feeds each write's result back into the ledger, and persists the
//! ledger (in the report ConfigMaps) and the phase (in status).
//!
//! Each phase is written to status before its work starts and after it
//! ends. The work of a phase is idempotent (deterministic names, create only
//! if absent, labels with the task UID and content digest), so an operator
//! killed mid-phase runs the phase again on restart and neither duplicates,
//! overwrites nor loses an object.

mod apply;
mod load;
pub mod report;

/// The API resource holding workspace objects of a type.
pub use load::api_resource;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_engine::{Ledger, Phase, Plan, PlanError};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use sha2::Digest;
use tokio_util::sync::CancellationToken;

use self::apply::{Origin, StepResult, Target};
use super::package::tenant_of_namespace;
use super::{Context, Error, apply_status, tenancy};
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
/// computed once per settings and package, not on every status update.
struct Prepared {
    /// The settings (all of the spec but `suspend`) and the package digest
    /// the plan was made from.
    key: String,
    plan: Result<Plan, PlanError>,
    namespace: String,
    origin: Origin,
    tables: (bool, bool),
    keep_owner: bool,
    /// The ledger, taken out while a phase works on it.
    ledger: Mutex<Option<Ledger>>,
    /// Cancelled when the task is deleted: its writes stop.
    cancel: CancellationToken,
}

/// The import controller's state beside the shared context.
pub struct ImportContext {
    base: Arc<Context>,
    prepared: Mutex<HashMap<String, Arc<Prepared>>>,
}

impl ImportContext {
    /// Drops the task's cached plan and ledger.
    fn forget(&self, task: &ImportTask) {
        self.forget_uid(&task.uid().unwrap_or_default());
    }

    /// Drops a task's cached plan and stops its work (a deleted task).
    fn forget_uid(&self, uid: &str) {
        let removed = self.prepared.lock().unwrap().remove(uid);
        if let Some(p) = removed {
            p.cancel.cancel();
        }
        self.base
            .metrics
            .set_cached_plans(self.prepared.lock().unwrap().len());
    }
}

/// A phase's end: the next phase, or a failure.
enum PhaseEnd {
    Next(ImportPhase),
    Failed {
        reason: &'static str,
        message: String,
        /// Where Import Again starts: the failed phase, unless the failure
        /// means planning again.
        resume: Option<ImportPhase>,
    },
    /// Stay in this phase and come back (the package is not ready yet).
    Wait {
        message: String,
        after: Option<Duration>,
    },
    /// The task was deleted while the phase worked: stop, write nothing.
    Deleted,
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
            // Mapping problems are fixed in the spec or the workspace, and an
            // edited spec is a new plan: verify and plan again. Otherwise the
            // failed phase resumes, and the ledger (in memory, or restored
            // from the report) leaves out what is done.
            let edited = status.observed_generation != generation;
            status.phase = if resume > ImportPhase::Mapping && !edited {
                resume
            } else {
                ictx.forget(&task);
                status.package_digest = None;
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
            let prepared = prepare(&ictx, &task, None).await?;
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
                // Never cleared: the progress ticker's merge patches share
                // ownership of these fields, and a status apply that left
                // them out would remove only the fields this manager owns,
                // leaving a progress without `done` or `total`, which the
                // schema refuses (every later status write then fails).
                status.progress = Some(Progress { done: 0, total: 0 });
                if next == ImportPhase::Editing && task.spec.suspend {
                    // Written once, with the plan and the Suspended
                    // condition, by the Editing pass that follows.
                    continue;
                }
            }
            PhaseEnd::Failed {
                reason,
                message,
                resume,
            } => {
                end_phase(&mut status, phase);
                status.failed_phase = Some(resume.unwrap_or(phase));
                status.phase = ImportPhase::ImportFailed;
                status.message = Some(message.clone());
                status.completed_at = Some(Time(Timestamp::now()));
                let outcome = Outcome::stalled(reason, format!("{phase:?} failed: {message}"));
                status.conditions =
                    summarise(&status.conditions, &outcome, generation, Timestamp::now());
                finish_report(&ictx, &task, &mut status, ImportPhase::ImportFailed).await?;
                write(ctx, &api, &task, &mut status, &mut last).await?;
                // The plan and ledger stay cached: Import Again resumes with
                // them (the report holds the ledger if the operator restarts).
                return Ok(Action::await_change());
            }
            PhaseEnd::Deleted => return Ok(Action::await_change()),
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
            let written: u64 = status.results.iter().map(|r| r.created + r.updated).sum();
            status.progress = Some(Progress {
                done: written,
                total: written,
            });
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

/// A finished task whose spec changed. A Completed task's settings cannot
/// change (the schema allows only `suspend`, which means nothing once it
/// ran): the new generation is recorded. An ImportFailed task's edits take
/// effect on Import Again, so until then `observedGeneration` stays at the
/// generation that ran and failed: status never claims to describe settings
/// that were not run.
async fn settle(
    ctx: &Context,
    api: &Api<ImportTask>,
    task: &ImportTask,
    mut status: ImportTaskStatus,
    generation: Option<i64>,
) -> Result<Action, Error> {
    if status.phase == ImportPhase::Completed && status.observed_generation != generation {
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

/// The Editing condition's message: the plan in a line.
fn plan_line(c: &crate::api::PlanSummary) -> String {
    use ferry_engine::ledger::plural;
    format!(
        "plan: {} to create, {}, {} skipped; set spec.suspend to false to import",
        c.create,
        plural(c.conflict as usize, "conflict", "conflicts"),
        c.skip
    )
}

fn show_plan(status: &mut ImportTaskStatus, prepared: &Prepared) {
    match &prepared.plan {
        Ok(plan) => {
            status.plan = Some(plan.summary(FIRST_CONFLICTS));
            status.message = None;
            let c = plan.summary(FIRST_CONFLICTS);
            let outcome = Outcome::suspended("Suspended", plan_line(&c));
            status.conditions = summarise(
                &status.conditions,
                &outcome,
                status.observed_generation,
                Timestamp::now(),
            );
        }
        Err(e) => {
            // A plan of earlier settings would be read as this one's.
            status.plan = None;
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
            let prepared = match prepare(ictx, task, None).await {
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
                    return Ok(PhaseEnd::Failed {
                        reason,
                        message,
                        resume: None,
                    });
                }
                // Not allowed to read the package (yet): say so, look again.
                Err(Error::Waiting {
                    reason: "PackageForbidden",
                    message,
                    retry_after,
                }) => {
                    return Ok(PhaseEnd::Wait {
                        message,
                        after: Some(retry_after),
                    });
                }
                Err(e) => return Err(e),
            };
            // Pinned: later phases import exactly this package.
            status.package_digest = Some(prepared.origin.package_digest.clone());
            if let Ok(plan) = &prepared.plan {
                status.plan = Some(plan.summary(FIRST_CONFLICTS));
                if task.spec.suspend {
                    // The preview's Details: every object's planned record.
                    let ledger = take_ledger(ictx, task, &prepared, plan).await?;
                    status.results = ledger.results();
                    persist(ictx, task, status, &prepared, &ledger, "Editing").await;
                    put_ledger(&prepared, ledger);
                }
            }
            Ok(PhaseEnd::Next(if task.spec.suspend {
                ImportPhase::Editing
            } else {
                ImportPhase::Mapping
            }))
        }
        ImportPhase::Editing => {
            // The preview may be days old: the import plans again against
            // the destination as it is now.
            ictx.forget(task);
            Ok(PhaseEnd::Next(ImportPhase::Mapping))
        }
        ImportPhase::Mapping => {
            let prepared = match pinned(ictx, task, status).await? {
                Ok(p) => p,
                Err(end) => return Ok(end),
            };
            match &prepared.plan {
                Ok(plan) => {
                    status.plan = Some(plan.summary(FIRST_CONFLICTS));
                    let ledger = take_ledger(ictx, task, &prepared, plan).await?;
                    status.results = ledger.results();
                    put_ledger(&prepared, ledger);
                    Ok(PhaseEnd::Next(ImportPhase::Importing))
                }
                Err(e) => Ok(PhaseEnd::Failed {
                    reason: "MappingFailed",
                    message: e.to_string(),
                    resume: None,
                }),
            }
        }
        ImportPhase::Importing
        | ImportPhase::Committing
        | ImportPhase::Deploying
        | ImportPhase::ImportingRules => {
            let prepared = match pinned(ictx, task, status).await? {
                Ok(p) => p,
                Err(end) => return Ok(end),
            };
            let Ok(plan) = &prepared.plan else {
                return Ok(PhaseEnd::Failed {
                    reason: "MappingFailed",
                    message: "the plan no longer holds; Import Again re-plans".into(),
                    resume: Some(ImportPhase::Verifying),
                });
            };
            let mut ledger = take_ledger(ictx, task, &prepared, plan).await?;
            let work = ledger.work(plan, Phase::from(phase));
            let total: u64 = work.iter().map(|(_, o)| o.len() as u64).sum();
            let dest = load::Destination {
                ours: load::read_ours(&ictx.base, &prepared.namespace, &prepared.origin.task_uid)
                    .await?,
                ..Default::default()
            };
            let done = Arc::new(AtomicU64::new(0));
            let ticker = spawn_progress(api.clone(), task.name_any(), done.clone(), total);
            let target = Target {
                ns: &prepared.namespace,
                dest: &dest,
                origin: &prepared.origin,
                tables: prepared.tables,
                keep_owner: prepared.keep_owner,
                cancel: &prepared.cancel,
            };
            let mut transient = Vec::new();
            let mut cancelled = false;
            let mut settled = 0usize;
            for (step, indices) in &work {
                let results =
                    apply::run_step(&ictx.base, &target, *step, plan, indices, done.clone()).await;
                for (i, r) in results {
                    match r {
                        StepResult::Settled(result) => {
                            settled += 1;
                            ledger.record(plan, Phase::from(phase), *step, i, result)
                        }
                        StepResult::Transient(m, server) => transient.push((m, server)),
                        StepResult::Cancelled => cancelled = true,
                    }
                }
            }
            ticker.abort();
            if cancelled {
                // Deleted mid-phase: nothing more is written, nothing kept.
                return Ok(PhaseEnd::Deleted);
            }
            status.progress = Some(Progress {
                done: done.load(Ordering::Relaxed),
                total,
            });
            status.results = ledger.results();
            if let Some((first, _)) = transient.first().cloned() {
                // The longest wait any answer asked for.
                let server = transient.iter().filter_map(|(_, s)| *s).max();
                // A pass that got objects through is progress: the backoff
                // starts over, so a storm that lets most writes through
                // does not grow it to minutes. Only passes that write
                // nothing back off further.
                if settled > 0 {
                    ictx.base.succeeded(task);
                }
                // What got through is kept (in memory and in the report);
                // the phase is retried for the rest.
                persist(
                    ictx,
                    task,
                    status,
                    &prepared,
                    &ledger,
                    &format!("{phase:?}"),
                )
                .await;
                put_ledger(&prepared, ledger);
                return Err(Error::Retrying {
                    reason: "ApiUnavailable",
                    message: format!(
                        "{} could not be written for now and will be retried: {first}",
                        ferry_engine::ledger::plural(transient.len(), "object", "objects")
                    ),
                    server,
                });
            }
            let end = ledger.end_phase(Phase::from(phase), false);
            persist(
                ictx,
                task,
                status,
                &prepared,
                &ledger,
                &format!("{phase:?}"),
            )
            .await;
            put_ledger(&prepared, ledger);
            Ok(match end {
                ferry_engine::PhaseEnd::Next(next) => PhaseEnd::Next(next.into()),
                ferry_engine::PhaseEnd::Failed { reason, message } => PhaseEnd::Failed {
                    reason,
                    message,
                    resume: None,
                },
            })
        }
        ImportPhase::Completed | ImportPhase::ImportFailed => Ok(PhaseEnd::Next(phase)),
    }
}

/// The prepared plan of a running import, for the package pinned when it
/// was verified: a package replaced or refused since then ends the import
/// (Import Again verifies and plans the new content).
async fn pinned(
    ictx: &ImportContext,
    task: &ImportTask,
    status: &ImportTaskStatus,
) -> Result<Result<Arc<Prepared>, PhaseEnd>, Error> {
    match prepare(ictx, task, status.package_digest.as_deref()).await {
        Ok(p) => Ok(Ok(p)),
        Err(Error::Stalled { reason, message }) => Ok(Err(PhaseEnd::Failed {
            reason,
            message,
            resume: Some(ImportPhase::Verifying),
        })),
        Err(e) => Err(e),
    }
}

/// The task's ledger: the cached one, else the one persisted in its report
/// for this same plan, else a new one from the plan.
async fn take_ledger(
    ictx: &ImportContext,
    task: &ImportTask,
    prepared: &Prepared,
    plan: &Plan,
) -> Result<Ledger, Error> {
    if let Some(l) = prepared.ledger.lock().unwrap().take() {
        return Ok(l);
    }
    let mut ledger = Ledger::new(plan);
    let names = task
        .status
        .as_ref()
        .and_then(|s| s.report.as_ref())
        .map(|r| r.config_maps.clone())
        .unwrap_or_default();
    if !names.is_empty()
        && let Some((basic, records)) = report::read(&ictx.base.client, task, &names).await?
        && basic.get("planKey").and_then(|k| k.as_str()) == Some(prepared.key.as_str())
    {
        let taken = ledger.restore(records);
        tracing::info!(
            records = taken,
            "ledger restored from the report ConfigMaps"
        );
    }
    Ok(ledger)
}

fn put_ledger(prepared: &Prepared, ledger: Ledger) {
    *prepared.ledger.lock().unwrap() = Some(ledger);
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

/// What a plan depends on besides the package: every setting but
/// `suspend` (which only holds the task in Editing).
fn settings_key(task: &ImportTask) -> String {
    let mut spec = serde_json::to_value(&task.spec).unwrap_or_default();
    if let Some(m) = spec.as_object_mut() {
        m.remove("suspend");
    }
    let digest = sha2::Sha256::digest(spec.to_string().as_bytes());
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the task's package. One of another namespace is read as the task
/// namespace's workspace identity, so a task imports only what its
/// namespace was allowed to read (see `tenancy`), whatever admission
/// policies the cluster has.
async fn read_package(
    ctx: &Context,
    ns: &str,
    pkg_ns: &str,
    name: &str,
) -> Result<Option<MigrationPackage>, Error> {
    // Checked before they go into a request path (security review 2.4).
    for (field, value) in [
        ("spec.packageRef.namespace", pkg_ns),
        ("spec.packageRef.name", name),
    ] {
        if let Err(super::package::Refusal::Refused { problems, .. }) =
            super::package::check_object_name(field, value)
        {
            return Err(Error::Stalled {
                reason: "InvalidName",
                message: problems.join("; "),
            });
        }
    }
    if pkg_ns == ns {
        return Ok(
            Api::<MigrationPackage>::namespaced(ctx.client.clone(), pkg_ns)
                .get_opt(name)
                .await?,
        );
    }
    let api = Api::<MigrationPackage>::namespaced(tenancy::client_as(ctx, ns), pkg_ns);
    match api.get_opt(name).await {
        Ok(pkg) => Ok(pkg),
        Err(e) if tenancy::is_forbidden(&e) => Err(Error::Waiting {
            reason: "PackageForbidden",
            message: format!(
                "spec.packageRef: namespace {ns} may not read MigrationPackage {pkg_ns}/{name}, so this task may not import it. {}",
                tenancy::grant_hint(
                    ctx,
                    ns,
                    pkg_ns,
                    "get on migrationpackages (ferry-workspace-viewer)"
                )
            ),
            retry_after: tenancy::FORBIDDEN_RETRY,
        }),
        Err(e) => Err(e.into()),
    }
}

/// Why an import waits for its package: the package's own reason when it
/// gave one (no Workspace in its namespace, upload chunks still arriving, a
/// source that does not answer), else that it is not verified yet.
fn waiting_for_package(pkg_ns: &str, pkg: &MigrationPackage) -> String {
    let name = pkg.name_any();
    let status = pkg.status.as_ref();
    let current = status.is_some_and(|s| s.observed_generation == pkg.metadata.generation);
    match status
        .and_then(|s| conditions::find(&s.conditions, READY))
        .filter(|c| current && c.status == "False")
    {
        Some(c) if c.message.is_empty() => {
            format!("waiting for MigrationPackage {pkg_ns}/{name}: {}", c.reason)
        }
        Some(c) => format!(
            "waiting for MigrationPackage {pkg_ns}/{name}: {}: {}",
            c.reason, c.message
        ),
        None => format!("waiting for MigrationPackage {pkg_ns}/{name} to be verified"),
    }
}

/// Loads the package and plans the import, once per settings and package.
/// With `pinned`, the package must still be the one verified then.
async fn prepare(
    ictx: &ImportContext,
    task: &ImportTask,
    pinned: Option<&str>,
) -> Result<Arc<Prepared>, Error> {
    let ctx = &ictx.base;
    let ns = task.namespace().unwrap_or_default();
    let uid = task.uid().unwrap_or_default();
    let pkg_ns = task
        .spec
        .package_ref
        .namespace
        .clone()
        // "" is the task's own namespace, as the admission policy reads it.
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| ns.clone());
    let pkg = read_package(ctx, &ns, &pkg_ns, &task.spec.package_ref.name).await?;
    let Some(pkg) = pkg else {
        return Err(Error::Stalled {
            reason: if pinned.is_some() {
                "PackageGone"
            } else {
                "PackageNotReady"
            },
            message: format!(
                "spec.packageRef: MigrationPackage {pkg_ns}/{} does not exist{}",
                task.spec.package_ref.name,
                if pinned.is_some() { "" } else { " (yet)" }
            ),
        });
    };
    let pstatus = pkg.status.clone().unwrap_or_default();
    if conditions::is_true(&pstatus.conditions, STALLED) {
        let why = conditions::find(&pstatus.conditions, READY)
            .map(|c| format!("{}: {}", c.reason, c.message))
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
            message: waiting_for_package(&pkg_ns, &pkg),
        });
    };
    // Verified, but not in this operator's store (a replica with a volume
    // of its own, a lost volume): the package controller verifies it again,
    // and the task comes back when the package's status changes. Planning
    // now would fail on a missing file.
    if !ctx.store.path(&artifact.digest).is_some_and(|p| p.exists()) {
        return Err(Error::Stalled {
            reason: "PackageNotReady",
            message: format!(
                "waiting for MigrationPackage {pkg_ns}/{}: its artifact {} is not in this operator's artifact store (a new replica, or a lost volume). An operator verifies again, when it starts, every package whose artifact it lacks, and this task goes on once that is done; if it does not, delete and re-create the package",
                pkg.name_any(),
                artifact.digest
            ),
        });
    }
    if let Some(pin) = pinned.filter(|p| *p != artifact.digest) {
        return Err(Error::Stalled {
            reason: "PackageChanged",
            message: format!(
                "MigrationPackage {pkg_ns}/{} changed under the running import (verified as {pin}, now {}): nothing more is imported from it; Import Again verifies and plans the new content",
                pkg.name_any(),
                artifact.digest
            ),
        });
    }
    let key = format!("{}/{}", settings_key(task), artifact.digest);
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
    // The destination tenant's edition decides which packages it may import,
    // wherever the package object lives (a package in another tenant's
    // namespace does not lend that tenant's edition).
    let source_tenant;
    let origin = {
        use ferry_api::edition::PackageOrigin;
        let source = &pkg.spec.source;
        if let Some(export) = &source.export {
            source_tenant = Api::<crate::api::Workspace>::all(ctx.client.clone())
                .get_opt(&export.workspace)
                .await?
                .map(|w| w.spec.tenant)
                .unwrap_or_default();
            PackageOrigin::Export {
                tenant: &source_tenant,
            }
        } else if source.url.is_some() {
            PackageOrigin::Url
        } else if source.object_store.is_some() {
            PackageOrigin::ObjectStore
        } else {
            PackageOrigin::LocalUpload
        }
    };
    if let Err(why) =
        ferry_api::edition::may_import(tenant.spec.edition, &tenant.name_any(), origin)
    {
        return Err(Error::Stalled {
            reason: "EditionLimit",
            message: format!(
                "spec.packageRef: MigrationPackage {pkg_ns}/{} cannot be imported here: {why}",
                pkg.name_any()
            ),
        });
    }
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
    let spec = task.spec.clone();
    let package_digest = artifact.digest.clone();
    let uid_for_plan = uid.clone();
    // Planning is CPU work over the whole package: off the async workers,
    // so the lease and other tasks' reconciles keep running.
    let plan = tokio::task::spawn_blocking(move || {
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
            existing_outputs: &dest.outputs,
            task: &spec,
            creator: &creator,
            identity: ferry_engine::TaskIdentity {
                name: &task_name,
                uid: &uid_for_plan,
                package_digest: &package_digest,
            },
        };
        // The package's objects are freed when this closure returns: the
        // plan holds each spec as text.
        ferry_engine::plan(&inputs)
    })
    .await
    .map_err(|e| Error::Stalled {
        reason: "InternalError",
        message: e.to_string(),
    })?;
    let prepared = Arc::new(Prepared {
        key,
        plan,
        namespace: ns,
        origin: Origin {
            task: task.name_any(),
            task_uid: uid.clone(),
            package_digest: artifact.digest,
        },
        tables: (
            task.spec.committing_rules.tables.development,
            task.spec.committing_rules.tables.production,
        ),
        keep_owner: task.spec.change_owner.mode == crate::api::ChangeOwnerMode::NotModify,
        ledger: Mutex::new(None),
        cancel: CancellationToken::new(),
    });
    let cached = {
        let mut map = ictx.prepared.lock().unwrap();
        if let Some(old) = map.insert(uid, prepared.clone()) {
            // Superseded by a new plan (new settings or package): the old
            // plan's ledger is not this plan's.
            drop(old);
        }
        map.len()
    };
    ictx.base.metrics.set_cached_plans(cached);
    Ok(prepared)
}

/// The report's basic information, with the plan key the ledger belongs to.
fn basic_info(
    task: &ImportTask,
    status: &ImportTaskStatus,
    prepared: &Prepared,
    ledger_phase: &str,
) -> serde_json::Value {
    let plan = prepared.plan.as_ref().ok();
    serde_json::json!({
        "importName": task.spec.import_name,
        "description": task.spec.description,
        "package": task.spec.package_ref.name,
        "packageDigest": prepared.origin.package_digest,
        "destinationNamespace": prepared.namespace,
        "creator": status.creator,
        "startedAt": status.started_at,
        "completedAt": status.completed_at,
        "phase": status.phase,
        "failedPhase": status.failed_phase,
        "message": status.message,
        "edition": plan.map(|p| p.edition),
        "autoCommitAndDeploy": plan.map(|p| p.auto_commit_and_deploy),
        "warnings": plan.map(|p| p.warnings.clone()).unwrap_or_default(),
        "planKey": prepared.key,
        "ledgerPhase": ledger_phase,
    })
}

/// Persists the ledger in the report ConfigMaps. A report that cannot be
/// written does not stop the import: status says why (the ledger is then
/// rebuilt by rerunning the phase after a restart).
async fn persist(
    ictx: &ImportContext,
    task: &ImportTask,
    status: &mut ImportTaskStatus,
    prepared: &Prepared,
    ledger: &Ledger,
    ledger_phase: &str,
) {
    let basic = basic_info(task, status, prepared, ledger_phase);
    match report::write(&ictx.base.client, task, ledger.records(), &basic).await {
        Ok(names) => {
            status.report = Some(ReportRef {
                config_maps: names,
                records: ledger.records().len() as u64,
            });
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not write the report");
            status.report = None;
            status.message = Some(format!("the report could not be written: {e}"));
        }
    }
}

/// The final report (from the ledger: never from the package again), the
/// summary in status, conditions and metrics.
async fn finish_report(
    ictx: &ImportContext,
    task: &ImportTask,
    status: &mut ImportTaskStatus,
    end: ImportPhase,
) -> Result<(), Error> {
    let uid = task.uid().unwrap_or_default();
    let prepared = ictx.prepared.lock().unwrap().get(&uid).cloned();
    let metrics = &ictx.base.metrics;
    let Some(prepared) = prepared else {
        // Failed before a plan existed (package refused, ...): no records.
        if end == ImportPhase::ImportFailed {
            metrics.import_finished("failed");
        }
        return Ok(());
    };
    let ledger = match &prepared.plan {
        Ok(plan) => Some(take_ledger(ictx, task, &prepared, plan).await?),
        Err(_) => None,
    };
    let Some(ledger) = ledger else {
        metrics.import_finished("failed");
        return Ok(());
    };
    status.results = ledger.results();
    persist(ictx, task, status, &prepared, &ledger, &format!("{end:?}")).await;
    let conflicts = ledger.count(ferry_engine::Outcome::Conflict);
    if end == ImportPhase::Completed {
        metrics.import_finished(if conflicts > 0 {
            "partial"
        } else {
            "completed"
        });
        for t in ferry_package::ObjectType::IMPORT_ORDER {
            if let Some(r) = status.results.iter().find(|r| r.type_ == t.as_str()) {
                metrics.objects_imported(t.as_str(), r.created + r.updated);
            }
        }
        let generation = status.observed_generation;
        let now = Timestamp::now();
        status.conditions = summarise(
            &status.conditions,
            &Outcome::ready("Completed", ledger.summary_line()),
            generation,
            now,
        );
        let partial = if conflicts > 0 {
            let first = ledger.first_conflicts(FIRST_CONFLICTS).join(", ");
            conditions::set(
                &status.conditions,
                "PartiallyImported",
                "True",
                "Conflicts",
                &format!(
                    "{} in the destination and not imported: {first}",
                    ferry_engine::ledger::plural(
                        conflicts,
                        "object already exists",
                        "objects already exist"
                    )
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
                "no object of the package was already in the destination",
                generation,
                now,
            )
        };
        status
            .conditions
            .retain(|c: &Condition| c.type_ != "PartiallyImported");
        status.conditions.push(partial);
    } else {
        metrics.import_finished("failed");
    }
    put_ledger(&prepared, ledger);
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
    // A deleted task's work stops and its plan is dropped at once (no
    // finalizer needed: nothing has to happen before the object goes).
    let deletions = {
        let ictx = ictx.clone();
        let tasks = Api::<kube::core::PartialObjectMeta<ImportTask>>::all(client.clone());
        tokio::spawn(async move {
            watcher::watcher(tasks, watcher::Config::default())
                .default_backoff()
                .for_each(|event| {
                    if let Ok(watcher::Event::Delete(meta)) = event {
                        ictx.forget_uid(&meta.uid().unwrap_or_default());
                    }
                    futures::future::ready(())
                })
                .await;
        })
    };
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
                let base = ictx.base.clone();
                let task = obj.clone();
                let timed = crate::controller::timed(&base, "import", reconcile(obj, ictx));
                crate::controller::counted(&base, task.as_ref(), timed).await
            },
            error_policy,
            ictx,
        )
        .for_each(|_| async {})
        .await;
    deletions.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed audit's wording: "plurals ('1 conflict')".
    #[test]
    fn the_plan_line_says_1_conflict() {
        let mut c = crate::api::PlanSummary {
            create: 661,
            conflict: 1,
            ..Default::default()
        };
        assert_eq!(
            plan_line(&c),
            "plan: 661 to create, 1 conflict, 0 skipped; set spec.suspend to false to import"
        );
        c.conflict = 12;
        assert!(plan_line(&c).contains(", 12 conflicts, "));
    }
}
