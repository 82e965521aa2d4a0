//! The commands, through the Kubernetes API only.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use ferry::api::{
    ExportMode, ExportSelection, ExportSource, FileResource, Function, ImportPhase, ImportTask,
    ImportTaskSpec, MigrationPackage, MigrationPackageSpec, ObjectType, PackageSource, QualityRule,
    ScheduledTask, ServiceApi, Table,
};
use ferry::controller::import::REQUESTED_AT;
use ferry::controller::import::report::{RECORDS_KEY, read_shard};
use ferry::controller::objects::{COMMIT_REQUESTED, DEPLOY_REQUESTED};
use ferry_engine::Record;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde_json::json;

use crate::cluster::Cluster;
use crate::failure::{Failure, Subject, code};
use crate::render::{self, PackageState, PackageView, PlanView};

/// How results are printed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// Human-readable text and tables.
    #[default]
    Table,
    Json,
    Yaml,
}

/// How often `--wait` looks.
const POLL: Duration = Duration::from_millis(500);

/// Writes to stdout, ignoring a closed pipe (`| head`).
pub fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Prints `value` as JSON or YAML, or `text()` in table mode.
fn emit<T: Serialize>(format: Format, value: &T, text: impl FnOnce() -> String) {
    match format {
        Format::Table => say(&text()),
        Format::Json => say(&format!(
            "{}\n",
            serde_json::to_string_pretty(value).unwrap_or_default()
        )),
        Format::Yaml => say(&serde_yaml::to_string(value).unwrap_or_default()),
    }
}

/// Progress goes to stdout for people, to stderr when stdout is for scripts.
fn note(format: Format, text: &str) {
    if format == Format::Table {
        say(text);
    } else {
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
}

fn now() -> String {
    Timestamp::now().to_string()
}

/// A MigrationPackage of the namespace, for error messages.
pub(crate) fn package_subject<'a>(c: &'a Cluster, name: &'a str) -> Subject<'a> {
    Subject {
        kind: "migrationpackage",
        plural: "migrationpackages",
        name,
        namespace: Some(&c.namespace),
    }
}

fn task_subject<'a>(c: &'a Cluster, name: &'a str) -> Subject<'a> {
    Subject {
        kind: "importtask",
        plural: "importtasks",
        name,
        namespace: Some(&c.namespace),
    }
}

fn deadline(timeout: Duration) -> Option<Instant> {
    (!timeout.is_zero()).then(|| Instant::now() + timeout)
}

fn past(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// Parses `90s`, `10m`, `2h`, `1h30m` or `0` (no limit).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0u64;
    let mut digits = String::new();
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("{s:?} is not a duration such as 90s, 10m or 1h"))?;
        digits.clear();
        total += match ch {
            's' => n,
            'm' => n * 60,
            'h' => n * 3600,
            _ => return Err(format!("{s:?} is not a duration such as 90s, 10m or 1h")),
        };
    }
    if !digits.is_empty() {
        return Err(format!(
            "{s:?} needs a unit: s, m or h (for example {digits}s)"
        ));
    }
    Ok(Duration::from_secs(total))
}

/// Parses an object type the way people write it: `ScheduledTask`,
/// `scheduledtasks`, `task`, `stask`, `table`, ...
pub fn parse_type(s: &str) -> Result<ObjectType, String> {
    let key: String = s
        .trim()
        .trim_end_matches(".ferry.dev")
        .chars()
        .filter(|c| !matches!(c, '-' | '_'))
        .collect::<String>()
        .to_lowercase();
    let t = match key.as_str() {
        "scheduledtask" | "scheduledtasks" | "task" | "tasks" | "stask" => {
            ObjectType::ScheduledTask
        }
        "table" | "tables" | "ftbl" => ObjectType::Table,
        "fileresource" | "fileresources" | "resource" | "resources" | "fres" => {
            ObjectType::FileResource
        }
        "function" | "functions" | "ffn" => ObjectType::Function,
        "qualityrule" | "qualityrules" | "rule" | "rules" | "qrule" => ObjectType::QualityRule,
        "serviceapi" | "serviceapis" | "api" | "apis" | "fapi" => ObjectType::ServiceApi,
        _ => {
            return Err(format!(
                "unknown object type {s:?}; use one of ScheduledTask, Table, FileResource, Function, QualityRule, ServiceApi"
            ));
        }
    };
    Ok(t)
}

/// Parses an RFC 3339 time (`2026-10-01T00:00:00Z`) or a date (`2026-10-01`, midnight UTC).
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    s.parse::<k8s_openapi::jiff::civil::Date>()
        .ok()
        .and_then(|d| d.to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| format!("{s:?} is not a time; write 2026-10-01T00:00:00Z or 2026-10-01"))
}

// ----------------------------------------------------------------- preview

fn package_code(view: &PackageView) -> i32 {
    match view.state {
        PackageState::Refused => code::FAILED,
        _ => code::OK,
    }
}

async fn wait_package(
    c: &Cluster,
    name: &str,
    wait: bool,
    timeout: Duration,
) -> Result<PackageView, Failure> {
    let api: Api<MigrationPackage> = Api::namespaced(c.client.clone(), &c.namespace);
    let subject = package_subject(c, name);
    let until = deadline(timeout);
    loop {
        let pkg = api.get(name).await.map_err(|e| subject.error("get", e))?;
        let view = PackageView::of(&pkg);
        if !wait || view.state != PackageState::Pending {
            return Ok(view);
        }
        if past(until) {
            return Err(Failure::failed(format!(
                "migrationpackage {name} in namespace {} is still not verified after {}s ({}); look at kubectl describe migrationpackage {name} -n {}",
                c.namespace,
                timeout.as_secs(),
                view.message
                    .as_deref()
                    .unwrap_or("no message yet: is the operator running?"),
                c.namespace
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

pub async fn preview(
    c: &Cluster,
    format: Format,
    name: &str,
    wait: bool,
    timeout: Duration,
) -> Result<i32, Failure> {
    let view = wait_package(c, name, wait, timeout).await?;
    emit(format, &view, || render::preview(&view));
    Ok(package_code(&view))
}

// ------------------------------------------------------------------ export

pub struct ExportArgs {
    pub workspace: String,
    pub name: String,
    pub mode: ExportMode,
    pub since: Option<Timestamp>,
    pub types: Vec<ObjectType>,
    pub names: Vec<String>,
    pub wait: bool,
    pub timeout: Duration,
}

/// The package an export creates; refuses flag combinations the CRD would.
pub fn export_package(a: &ExportArgs) -> Result<MigrationPackage, Failure> {
    match a.mode {
        ExportMode::Incremental if a.since.is_none() => {
            return Err(Failure::usage(
                "--mode incremental needs --since (for example --since 2026-10-01T00:00:00Z)",
            ));
        }
        ExportMode::Full | ExportMode::Custom if a.since.is_some() => {
            return Err(Failure::usage("--since only applies to --mode incremental"));
        }
        ExportMode::Full | ExportMode::Incremental
            if !a.types.is_empty() || !a.names.is_empty() =>
        {
            return Err(Failure::usage(
                "--type and --name-filter select objects with --mode custom",
            ));
        }
        _ => {}
    }
    let include = (a.mode == ExportMode::Custom).then(|| ExportSelection {
        types: a.types.clone(),
        names: a.names.clone(),
        selector: None,
    });
    let source = PackageSource {
        export: Some(ExportSource {
            workspace: a.workspace.clone(),
            mode: a.mode,
            since: a.since.map(Time),
            include,
            object_status: Vec::new(),
        }),
        ..Default::default()
    };
    Ok(MigrationPackage::new(
        &a.name,
        MigrationPackageSpec { source },
    ))
}

pub async fn export(c: &Cluster, format: Format, a: ExportArgs) -> Result<i32, Failure> {
    let pkg = export_package(&a)?;
    // Say early when the workspace does not exist; a user who may not read
    // workspaces (cluster-scoped) still gets the operator's verdict.
    let workspaces: Api<ferry::api::Workspace> = Api::all(c.client.clone());
    match workspaces.get_opt(&a.workspace).await {
        Ok(None) => {
            return Err(Subject {
                kind: "workspace",
                plural: "workspaces",
                name: &a.workspace,
                namespace: None,
            }
            .not_found());
        }
        Ok(Some(_)) => {}
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        Err(e) => return Err(crate::failure::unreachable_server(e)),
    }
    let api: Api<MigrationPackage> = Api::namespaced(c.client.clone(), &c.namespace);
    api.create(&PostParams::default(), &pkg)
        .await
        .map_err(|e| package_subject(c, &a.name).error("create", e))?;
    if !a.wait {
        let view = wait_package(c, &a.name, false, a.timeout).await?;
        emit(format, &view, || {
            format!(
                "migrationpackage {} created in namespace {}: exporting workspace {} ({:?}).\nFollow it with `kubectl migrate preview {} -n {} --wait`.\n",
                a.name, c.namespace, a.workspace, a.mode, a.name, c.namespace
            )
        });
        return Ok(code::OK);
    }
    note(
        format,
        &format!(
            "migrationpackage {} created in namespace {}; waiting for the export...\n",
            a.name, c.namespace
        ),
    );
    let view = wait_package(c, &a.name, true, a.timeout).await?;
    emit(format, &view, || render::preview(&view));
    Ok(package_code(&view))
}

// -------------------------------------------------------------------- plan

pub async fn plan(c: &Cluster, format: Format, name: &str, details: bool) -> Result<i32, Failure> {
    let api: Api<ImportTask> = Api::namespaced(c.client.clone(), &c.namespace);
    let task = api
        .get(name)
        .await
        .map_err(|e| task_subject(c, name).error("get", e))?;
    let mut view = PlanView::of(&task);
    if details {
        let maps = report_maps(&task);
        let mut objects = Vec::new();
        for cm_name in &maps {
            let (_, records) = report_shard(c, name, cm_name, true).await?;
            objects.extend(records);
        }
        view.objects = Some(objects);
    }
    emit(format, &view, || render::plan(&view));
    Ok(code::OK)
}

/// The task's report ConfigMaps, as its status lists them.
fn report_maps(task: &ImportTask) -> Vec<String> {
    task.status
        .as_ref()
        .and_then(|s| s.report.as_ref())
        .map(|r| r.config_maps.clone())
        .unwrap_or_default()
}

/// One report ConfigMap of task `name`: its string data and, with
/// `records`, its records. A missing or damaged shard is an error naming it.
async fn report_shard(
    c: &Cluster,
    name: &str,
    cm_name: &str,
    records: bool,
) -> Result<(BTreeMap<String, String>, Vec<Record>), Failure> {
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), &c.namespace);
    let subject = Subject {
        kind: "configmap",
        plural: "configmaps",
        name: cm_name,
        namespace: Some(&c.namespace),
    };
    let cm = cms.get(cm_name).await.map_err(|e| {
        let f = subject.error("get", e);
        Failure::new(
            f.code,
            format!("reading the report of importtask {name}: {}", f.message),
        )
    })?;
    let data = cm.data.clone().unwrap_or_default();
    if !records {
        return Ok((data, Vec::new()));
    }
    let Some(shard) = cm.binary_data.as_ref().and_then(|b| b.get(RECORDS_KEY)) else {
        return Err(Failure::api(format!(
            "configmap {cm_name} in namespace {} has no {RECORDS_KEY}: the report is damaged; Import Again or re-create the task",
            c.namespace
        )));
    };
    let shard = read_shard(&shard.0).map_err(|e| {
        Failure::api(format!(
            "configmap {cm_name} in namespace {}: {RECORDS_KEY} is not a readable report shard: {e}",
            c.namespace
        ))
    })?;
    Ok((data, shard))
}

// ------------------------------------------------------ start, import again

/// Which status belongs to our request.
enum Since {
    /// `start`: the status has seen this generation of the spec.
    Generation(Option<i64>),
    /// `import-again`: the operator acted on this `requested-at` value.
    Request(String),
}

pub async fn start(
    c: &Cluster,
    format: Format,
    name: &str,
    wait: bool,
    timeout: Duration,
) -> Result<i32, Failure> {
    let api: Api<ImportTask> = Api::namespaced(c.client.clone(), &c.namespace);
    let subject = task_subject(c, name);
    let current = api.get(name).await.map_err(|e| subject.error("get", e))?;
    let ns = &c.namespace;
    // Starting a finished task would change nothing: say so and fail, so
    // a script does not take it for a new import.
    match current.status.as_ref().map(|s| s.phase) {
        Some(ImportPhase::Completed) => {
            return Err(Failure::usage(format!(
                "importtask {name} in namespace {ns} is already Completed: there is nothing to start; read its report with `kubectl migrate report {name} -n {ns}`, or create a new import task to import again"
            )));
        }
        Some(ImportPhase::ImportFailed) => {
            return Err(Failure::usage(format!(
                "importtask {name} in namespace {ns} failed (ImportFailed): start does not rerun it; fix the cause, then run `kubectl migrate import-again {name} -n {ns} --wait`"
            )));
        }
        _ => {}
    }
    let task = api
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": false}})),
        )
        .await
        .map_err(|e| subject.error("patch", e))?;
    let phase = task.status.as_ref().map(|s| s.phase);
    if !wait {
        let view = PlanView::of(&task);
        emit(format, &view, || {
            format!(
                "importtask {name} started in namespace {} (spec.suspend is false; phase {}).\nFollow it with `kubectl migrate start {name} -n {} --wait` or kubectl get importtask {name} -n {} -w.\n",
                c.namespace,
                phase
                    .map(|p| format!("{p:?}"))
                    .unwrap_or_else(|| "not started".into()),
                c.namespace,
                c.namespace
            )
        });
        return Ok(code::OK);
    }
    let since = Since::Generation(task.metadata.generation);
    follow(c, format, &api, name, &task, since, timeout).await
}

pub async fn import_again(
    c: &Cluster,
    format: Format,
    name: &str,
    wait: bool,
    timeout: Duration,
) -> Result<i32, Failure> {
    let api: Api<ImportTask> = Api::namespaced(c.client.clone(), &c.namespace);
    let subject = task_subject(c, name);
    let task = api.get(name).await.map_err(|e| subject.error("get", e))?;
    let phase = task.status.as_ref().map(|s| s.phase);
    if phase != Some(ImportPhase::ImportFailed) {
        let phase = phase
            .map(|p| format!("{p:?}"))
            .unwrap_or_else(|| "not started".into());
        return Err(Failure::usage(format!(
            "importtask {name} in namespace {} is {phase}: Import Again only applies to a failed import (ImportFailed){}",
            c.namespace,
            if task.spec.suspend {
                format!(
                    "; to start a suspended task run kubectl migrate start {name} -n {}",
                    c.namespace
                )
            } else {
                String::new()
            }
        )));
    }
    let request = now();
    let task = api
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {REQUESTED_AT: request}}})),
        )
        .await
        .map_err(|e| subject.error("patch", e))?;
    if !wait {
        let view = PlanView::of(&task);
        emit(format, &view, || {
            format!(
                "Import Again requested for importtask {name} in namespace {} ({REQUESTED_AT}={request}).\nFollow it with kubectl get importtask {name} -n {} -w.\n",
                c.namespace, c.namespace
            )
        });
        return Ok(code::OK);
    }
    follow(
        c,
        format,
        &api,
        name,
        &task,
        Since::Request(request),
        timeout,
    )
    .await
}

/// Follows a task until it completes or fails, printing each phase it
/// enters and its progress; polls every 500 ms.
async fn follow(
    c: &Cluster,
    format: Format,
    api: &Api<ImportTask>,
    name: &str,
    start: &ImportTask,
    since: Since,
    timeout: Duration,
) -> Result<i32, Failure> {
    let subject = task_subject(c, name);
    let until = deadline(timeout);
    let tty = format == Format::Table && std::io::stdout().is_terminal();
    // Phases already recorded before our request are not news.
    let mut seen = start
        .status
        .as_ref()
        .map(|s| s.phase_timings.len())
        .unwrap_or(0);
    let mut last_phase: Option<ImportPhase> = None;
    let mut last_line = String::new();
    let mut open_line = false;
    let mut line = |text: String, same_phase: bool| {
        if tty && same_phase && open_line {
            say(&format!("\r\x1b[2K{text}"));
        } else {
            if open_line {
                say("\n");
            }
            if tty {
                say(&text);
                open_line = true;
            } else {
                note(format, &format!("{text}\n"));
            }
        }
    };
    note(
        format,
        &format!(
            "Following importtask {name} in namespace {} (Ctrl-C stops following, not the import)\n",
            c.namespace
        ),
    );
    let task = loop {
        let task = api.get(name).await.map_err(|e| subject.error("get", e))?;
        let status = task.status.clone().unwrap_or_default();
        let ours = match &since {
            Since::Generation(g) => status.observed_generation >= *g,
            Since::Request(r) => status.last_handled_request.as_deref() == Some(r.as_str()),
        };
        if ours {
            if status.phase_timings.len() < seen {
                seen = 0;
            }
            let new = &status.phase_timings[seen..];
            for (i, t) in new.iter().enumerate() {
                let current = i + 1 == new.len() && t.phase == status.phase;
                // Editing is the phase `start` leaves, not news.
                if !current && t.phase != ImportPhase::Editing && last_phase != Some(t.phase) {
                    line(format!("{:?}", t.phase), false);
                    last_phase = Some(t.phase);
                }
            }
            seen = status.phase_timings.len();
            let same = last_phase == Some(status.phase);
            let text = match (&status.progress, tty) {
                (Some(p), true) if p.total > 0 => {
                    format!("{:?} {}", status.phase, render::progress_bar(p, 20))
                }
                _ => render::progress_line(status.phase, status.progress.as_ref()),
            };
            if text != last_line {
                line(text.clone(), same);
                last_line = text;
                last_phase = Some(status.phase);
            }
            if status.phase.is_terminal() {
                break task;
            }
        }
        if past(until) {
            if open_line {
                say("\n");
            }
            return Err(Failure::failed(format!(
                "importtask {name} is still in phase {:?} after {}s; keep following with kubectl get importtask {name} -n {} -w",
                status.phase,
                timeout.as_secs(),
                c.namespace
            )));
        }
        tokio::time::sleep(POLL).await;
    };
    if open_line {
        say("\n");
    }
    let status = task.status.clone().unwrap_or_default();
    let failed = status.phase == ImportPhase::ImportFailed;
    match format {
        Format::Table => say(&render::outcome(&task)),
        _ => {
            emit(format, &status, String::new);
            if failed {
                let _ = std::io::stderr().write_all(render::outcome(&task).as_bytes());
            }
        }
    }
    Ok(if failed { code::FAILED } else { code::OK })
}

// ------------------------------------------------------------------ report

pub async fn report(
    c: &Cluster,
    format: Format,
    name: &str,
    details: bool,
) -> Result<i32, Failure> {
    let api: Api<ImportTask> = Api::namespaced(c.client.clone(), &c.namespace);
    let task = api
        .get(name)
        .await
        .map_err(|e| task_subject(c, name).error("get", e))?;
    let maps = report_maps(&task);
    let mut basic = None;
    let mut settings: Option<ImportTaskSpec> = None;
    let mut records = details.then(Vec::new);
    for (i, cm_name) in maps.iter().enumerate() {
        if i > 0 && !details {
            break;
        }
        let (data, shard) = match report_shard(c, name, cm_name, details).await {
            Ok(read) => read,
            // The summary in status is enough without --details.
            Err(_) if !details => break,
            Err(f) => return Err(f),
        };
        if i == 0 {
            basic = data
                .get("basic.json")
                .and_then(|s| serde_json::from_str(s).ok());
            settings = data
                .get("settings.json")
                .and_then(|s| serde_json::from_str(s).ok());
        }
        if let Some(records) = records.as_mut() {
            records.extend(shard);
        }
    }
    let view = render::report_view(&task, basic.as_ref(), settings.as_ref(), records);
    emit(format, &view, || render::report(&view));
    Ok(code::OK)
}

// ------------------------------------------------------------------ commit

fn api_resource(t: ObjectType) -> ApiResource {
    match t {
        ObjectType::ScheduledTask => ApiResource::erase::<ScheduledTask>(&()),
        ObjectType::Table => ApiResource::erase::<Table>(&()),
        ObjectType::FileResource => ApiResource::erase::<FileResource>(&()),
        ObjectType::Function => ApiResource::erase::<Function>(&()),
        ObjectType::QualityRule => ApiResource::erase::<QualityRule>(&()),
        ObjectType::ServiceApi => ApiResource::erase::<ServiceApi>(&()),
    }
}

fn revision(obj: &DynamicObject, field: &str) -> Option<i64> {
    obj.data
        .get("status")
        .and_then(|s| s.get(field))
        .and_then(serde_json::Value::as_i64)
}

pub async fn commit(
    c: &Cluster,
    format: Format,
    object: &str,
    deploy: bool,
    wait: bool,
    timeout: Duration,
) -> Result<i32, Failure> {
    let Some((kind, name)) = object.split_once('/') else {
        return Err(Failure::usage(format!(
            "{object:?} is not KIND/NAME; write for example scheduledtask/load-orders-3f9a1c or scheduledtask/load_orders"
        )));
    };
    let t = parse_type(kind).map_err(Failure::usage)?;
    let ar = api_resource(t);
    let kind_lower = t.kind().to_lowercase();
    let plural = ar.plural.clone();
    let api: Api<DynamicObject> = Api::namespaced_with(c.client.clone(), &c.namespace, &ar);
    let subject = Subject {
        kind: &kind_lower,
        plural: &plural,
        name,
        namespace: Some(&c.namespace),
    };
    // The Kubernetes name, or the real name (`spec.name`) it was derived from.
    let target = match api.get_opt(name).await {
        Ok(Some(o)) => o,
        Ok(None) => {
            let all = api
                .list(&ListParams::default())
                .await
                .map_err(|e| subject.error("list", e))?;
            let mut matches: Vec<DynamicObject> = all
                .items
                .into_iter()
                .filter(|o| {
                    o.data
                        .get("spec")
                        .and_then(|s| s.get("name"))
                        .and_then(serde_json::Value::as_str)
                        == Some(name)
                })
                .collect();
            match matches.len() {
                0 => return Err(subject.not_found()),
                1 => matches.remove(0),
                _ => {
                    return Err(Failure::usage(format!(
                        "{} objects of kind {} are named {name}; give the Kubernetes name instead: {}",
                        matches.len(),
                        t.kind(),
                        matches
                            .iter()
                            .map(|o| o.name_any())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        Err(e) => return Err(subject.error("get", e)),
    };
    let kube_name = target.name_any();
    let key = if deploy {
        DEPLOY_REQUESTED
    } else {
        COMMIT_REQUESTED
    };
    let obj = api
        .patch(
            &kube_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {key: now()}}})),
        )
        .await
        .map_err(|e| subject.error("patch", e))?;
    let what = if deploy { "deploy" } else { "commit" };
    let field = if deploy {
        "deployedRevision"
    } else {
        "committedRevision"
    };
    let generation = obj.meta().generation;
    if !wait {
        emit(format, &obj, || {
            format!(
                "{what} requested for {kind_lower}/{kube_name} in namespace {} (revision {}).\n",
                c.namespace,
                generation.unwrap_or(1)
            )
        });
        return Ok(code::OK);
    }
    let until = deadline(timeout);
    loop {
        let current = api
            .get(&kube_name)
            .await
            .map_err(|e| subject.error("get", e))?;
        let want = current.meta().generation.or(Some(1));
        if revision(&current, field) == want {
            emit(format, &current, || {
                format!(
                    "{kind_lower}/{kube_name} in namespace {}: {what} done (revision {}).\n",
                    c.namespace,
                    want.unwrap_or(1)
                )
            });
            return Ok(code::OK);
        }
        if past(until) {
            return Err(Failure::failed(format!(
                "{kind_lower}/{kube_name} was not {what}ed within {}s; is the operator running? Look at kubectl describe {kind_lower} {kube_name} -n {}",
                timeout.as_secs(),
                c.namespace
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn types_as_people_write_them() {
        assert_eq!(parse_type("ScheduledTask"), Ok(ObjectType::ScheduledTask));
        assert_eq!(parse_type("scheduledtasks"), Ok(ObjectType::ScheduledTask));
        assert_eq!(parse_type("quality_rule"), Ok(ObjectType::QualityRule));
        assert_eq!(parse_type("fapi"), Ok(ObjectType::ServiceApi));
        assert!(parse_type("job").unwrap_err().contains("ScheduledTask"));
    }

    #[test]
    fn times() {
        assert_eq!(
            parse_time("2026-10-01").unwrap().to_string(),
            "2026-10-01T00:00:00Z"
        );
        assert_eq!(
            parse_time("2026-10-01T08:00:00+08:00").unwrap().to_string(),
            "2026-10-01T00:00:00Z"
        );
        assert!(parse_time("yesterday").is_err());
    }

    fn args(mode: ExportMode) -> ExportArgs {
        ExportArgs {
            workspace: "sales-dev".into(),
            name: "q4".into(),
            mode,
            since: None,
            types: vec![],
            names: vec![],
            wait: false,
            timeout: Duration::ZERO,
        }
    }

    #[test]
    fn export_flags_are_checked_before_anything_is_sent() {
        let e = export_package(&args(ExportMode::Incremental)).unwrap_err();
        assert_eq!(e.code, code::USAGE);
        assert!(e.message.contains("--since"));
        let mut a = args(ExportMode::Full);
        a.types = vec![ObjectType::Table];
        assert_eq!(export_package(&a).unwrap_err().code, code::USAGE);
        let mut a = args(ExportMode::Custom);
        a.types = vec![ObjectType::Table];
        a.names = vec!["orders".into()];
        let pkg = export_package(&a).unwrap();
        let v = serde_json::to_value(&pkg).unwrap();
        assert_eq!(
            v["spec"]["source"]["export"],
            json!({"workspace": "sales-dev", "mode": "Custom", "include": {"types": ["Table"], "names": ["orders"]}})
        );
    }
}
