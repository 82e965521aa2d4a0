//! The full per-object report, in ConfigMaps owned by the task: JSON lines,
//! gzip-compressed, split into shards so that any package size stays under
//! the ConfigMap size limit (1 MiB). Shard 0 also holds the report's basic
//! information and the import settings, the seed's other two sections.
//!
//! The report is also where the import's ledger is persisted: it is written
//! at the end of every phase (and when a phase is retried), with the plan's
//! key in `basic.json`, so a restarted operator restores the ledger of the
//! same plan exactly (see `ferry_engine::Ledger::restore`). Status would not
//! do: a 30,000-object ledger is far larger than an object may be.
//!
//! A report ConfigMap is created only if absent or already owned by this
//! task; shards an earlier, longer report left behind are deleted.

use std::collections::BTreeMap;
use std::io::Write;

use ferry_engine::Record;
use flate2::Compression;
use flate2::write::GzEncoder;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::{Api, Resource, ResourceExt};
use sha2::Digest;

use crate::api::ImportTask;
use crate::controller::FIELD_MANAGER;

/// Compressed bytes per shard, at most. With shard 0's two JSON documents
/// (each capped at `MAX_DOC_BYTES`) a ConfigMap stays well under 1 MiB.
pub const SHARD_BYTES: usize = 700 * 1024;
/// The key of each shard's records.
pub const RECORDS_KEY: &str = "records.jsonl.gz";
/// The key of shard 0's basic information.
pub const BASIC_KEY: &str = "basic.json";
/// The key of shard 0's import settings.
pub const SETTINGS_KEY: &str = "settings.json";
/// The label naming the task on its report ConfigMaps.
pub const TASK_LABEL: &str = "ferry.dev/import-task";
/// The longest text field of a record kept whole; longer ones are cut (and
/// say so), so that one record can never outgrow a shard.
pub const MAX_FIELD_BYTES: usize = 8 * 1024;
/// The longest `basic.json` or `settings.json` kept whole.
pub const MAX_DOC_BYTES: usize = 96 * 1024;
/// Replacements and warnings kept per record.
pub const MAX_LISTED: usize = 50;
/// Raw bytes the encoder may hold before a flush: the bound on what a shard
/// can grow by between two measurements.
const FLUSH_EVERY: usize = 64 * 1024;

/// Cuts `s` to at most `max` bytes on a character boundary, saying so.
pub fn cap(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str(" … [cut: longer than the report keeps]");
}

/// A record whose every text field fits the report.
fn capped(r: &Record) -> std::borrow::Cow<'_, Record> {
    let long = |s: &str| s.len() > MAX_FIELD_BYTES;
    let too_long = long(&r.name)
        || long(&r.kube_name)
        || r.message.as_deref().is_some_and(long)
        || r.failure.as_ref().is_some_and(|f| long(&f.reason))
        || r.previous_spec
            .as_deref()
            .is_some_and(|p| p.len() > 4 * MAX_FIELD_BYTES)
        || r.associated_tasks.iter().map(String::len).sum::<usize>() > MAX_FIELD_BYTES
        || r.replacements.len() > MAX_LISTED
        || r.warnings.len() > MAX_LISTED;
    if !too_long {
        return std::borrow::Cow::Borrowed(r);
    }
    let mut r = r.clone();
    cap(&mut r.name, MAX_FIELD_BYTES);
    if let Some(m) = r.message.as_mut() {
        cap(m, MAX_FIELD_BYTES);
    }
    if let Some(f) = r.failure.as_mut() {
        cap(&mut f.reason, MAX_FIELD_BYTES);
    }
    if let Some(p) = r.previous_spec.as_mut() {
        cap(p, 4 * MAX_FIELD_BYTES);
    }
    let more = r.replacements.len().saturating_sub(MAX_LISTED);
    if more > 0 {
        r.warnings.push(format!(
            "{more} more replacements not listed (the report keeps {MAX_LISTED} per object)"
        ));
    }
    r.replacements = r
        .replacements
        .iter()
        .take(MAX_LISTED)
        .cloned()
        .map(|mut rep| {
            cap(&mut rep.before, MAX_FIELD_BYTES / 8);
            cap(&mut rep.after, MAX_FIELD_BYTES / 8);
            rep
        })
        .collect();
    if r.warnings.len() > MAX_LISTED {
        let more = r.warnings.len() - MAX_LISTED;
        r.warnings.truncate(MAX_LISTED);
        r.warnings.push(format!("and {more} more warnings"));
    }
    for w in &mut r.warnings {
        cap(w, MAX_FIELD_BYTES / 8);
    }
    let mut kept = 0;
    r.associated_tasks.retain(|t| {
        kept += t.len();
        kept <= MAX_FIELD_BYTES
    });
    std::borrow::Cow::Owned(r)
}

/// Splits records into gzip shards of at most `shard_bytes` each, whatever
/// the records hold: every record is capped (`MAX_FIELD_BYTES` per field),
/// the encoder is flushed every `FLUSH_EVERY` raw bytes, and a shard is cut
/// while what it emitted plus everything it may still emit (the unflushed
/// input, which deflate never expands by more than a few bytes per block)
/// fits.
pub fn shards(records: &[Record], shard_bytes: usize) -> Vec<Vec<u8>> {
    let new = || GzEncoder::new(Vec::new(), Compression::default());
    let mut out = Vec::new();
    let mut enc = new();
    let mut pending = 0usize;
    let mut any = false;
    for r in records {
        let mut line = serde_json::to_vec(&*capped(r)).expect("records serialise");
        line.push(b'\n');
        // Worst case after this line: emitted + pending + line, plus the
        // deflate and gzip framing.
        let bound = enc.get_ref().len() + pending + line.len() + 1024;
        if any && bound >= shard_bytes {
            out.push(std::mem::replace(&mut enc, new()).finish().expect("gzip"));
            pending = 0;
        }
        enc.write_all(&line).expect("writing to memory");
        any = true;
        pending += line.len();
        if pending >= FLUSH_EVERY {
            enc.flush().expect("gzip");
            pending = 0;
        }
    }
    out.push(enc.finish().expect("gzip"));
    out
}

/// Reads a shard back (for `kubectl migrate report`, restoring the ledger,
/// and tests).
pub fn read_shard(bytes: &[u8]) -> std::io::Result<Vec<Record>> {
    use std::io::BufRead;
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(bytes));
    let mut out = Vec::new();
    for line in reader.lines() {
        let line = line?;
        if !line.is_empty() {
            out.push(serde_json::from_str(&line).map_err(std::io::Error::other)?);
        }
    }
    Ok(out)
}

/// The name of shard `i`: `<task>-report-<i>`, or, when the task's name is
/// too long for that to be a valid name, its first characters and a hash.
pub fn shard_name(task: &str, i: usize) -> String {
    let suffix = format!("-report-{i}");
    if task.len() + suffix.len() <= 253 {
        return format!("{task}{suffix}");
    }
    let hash = short_hash(task);
    let keep = 253 - suffix.len() - hash.len() - 1;
    let mut end = keep.min(task.len());
    while !task.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}-{hash}{suffix}",
        task[..end].trim_end_matches(['-', '.'])
    )
}

/// Why the report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A ConfigMap of a shard's name exists and is not this task's: it is
    /// left alone.
    #[error(
        "ConfigMap {0} exists and does not belong to this ImportTask: the report was not written over it (rename or delete that ConfigMap)"
    )]
    NameTaken(String),
    #[error(transparent)]
    Api(#[from] kube::Error),
}

/// Writes the report ConfigMaps, owned by the task so that deleting the task
/// deletes its report and nothing else, and deletes shards beyond the new
/// count. Returns their names.
pub async fn write(
    client: &kube::Client,
    task: &ImportTask,
    records: &[Record],
    basic: &serde_json::Value,
) -> Result<Vec<String>, ReportError> {
    let ns = task.namespace().unwrap_or_default();
    let uid = task.uid().unwrap_or_default();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let owner = task
        .controller_owner_ref(&())
        .expect("a stored task has a name and uid");
    let encoded = shards(records, SHARD_BYTES);
    let mut names = Vec::new();
    for (i, shard) in encoded.into_iter().enumerate() {
        let name = shard_name(&task.name_any(), i);
        let mut data = BTreeMap::new();
        if i == 0 {
            let mut b = serde_json::to_string_pretty(basic).unwrap_or_default();
            cap(&mut b, MAX_DOC_BYTES);
            let mut settings = serde_json::to_string_pretty(&task.spec).unwrap_or_default();
            cap(&mut settings, MAX_DOC_BYTES);
            data.insert(BASIC_KEY.to_string(), b);
            data.insert(SETTINGS_KEY.to_string(), settings);
        }
        let mut cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                labels: Some(BTreeMap::from([(
                    TASK_LABEL.to_string(),
                    label_value(&task.name_any()),
                )])),
                owner_references: Some(vec![owner.clone()]),
                ..Default::default()
            },
            data: Some(data),
            binary_data: Some(BTreeMap::from([(
                RECORDS_KEY.to_string(),
                ByteString(shard),
            )])),
            ..Default::default()
        };
        let pp = PostParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..Default::default()
        };
        match api.get_opt(&name).await? {
            None => {
                api.create(&pp, &cm).await?;
            }
            Some(existing) if owned_by(&existing, &uid) => {
                cm.metadata.resource_version = existing.resource_version();
                api.replace(&name, &pp, &cm).await?;
            }
            Some(_) => return Err(ReportError::NameTaken(name)),
        }
        names.push(name);
    }
    // Shards of an earlier, longer report of this task.
    let selector = format!("{TASK_LABEL}={}", label_value(&task.name_any()));
    for cm in api.list(&ListParams::default().labels(&selector)).await? {
        let name = cm.name_any();
        if owned_by(&cm, &uid) && !names.contains(&name) {
            api.delete(&name, &DeleteParams::default()).await?;
        }
    }
    Ok(names)
}

/// Reads the task's report back: `basic.json` and every record, from the
/// ConfigMaps `names` (those status lists). `None` when a shard is missing,
/// not the task's, or unreadable: the ledger is then rebuilt from the plan.
pub async fn read(
    client: &kube::Client,
    task: &ImportTask,
    names: &[String],
) -> Result<Option<(serde_json::Value, Vec<Record>)>, kube::Error> {
    let ns = task.namespace().unwrap_or_default();
    let uid = task.uid().unwrap_or_default();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let mut basic = serde_json::Value::Null;
    let mut records = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let Some(cm) = api.get_opt(name).await? else {
            return Ok(None);
        };
        if !owned_by(&cm, &uid) {
            return Ok(None);
        }
        if i == 0 {
            basic = cm
                .data
                .as_ref()
                .and_then(|d| d.get(BASIC_KEY))
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or_default();
        }
        let Some(bytes) = cm.binary_data.as_ref().and_then(|b| b.get(RECORDS_KEY)) else {
            return Ok(None);
        };
        match read_shard(&bytes.0) {
            Ok(mut r) => records.append(&mut r),
            Err(_) => return Ok(None),
        }
    }
    Ok(Some((basic, records)))
}

/// Ten hex digits of the SHA-256 of `s`.
fn short_hash(s: &str) -> String {
    sha2::Sha256::digest(s.as_bytes())[..5]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn owned_by(cm: &ConfigMap, uid: &str) -> bool {
    cm.owner_references().iter().any(|o| o.uid == uid)
}

/// A label value standing for the task's name (names longer than a label
/// value may be are shortened with a hash).
fn label_value(task: &str) -> String {
    if task.len() <= 63 {
        return task.to_string();
    }
    let hash = short_hash(task);
    format!("{}-{hash}", task[..52].trim_end_matches(['-', '.']))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_engine::{Action, Outcome};
    use ferry_package::ObjectType;

    fn record(i: usize) -> Record {
        Record {
            object_type: ObjectType::ScheduledTask,
            name: format!("task_{i}_{}", "x".repeat(i % 50)),
            kube_name: format!("task-{i}-{:08x}", i * 2654435761 % (1 << 32)),
            action: Action::Create,
            outcome: Outcome::Created,
            message: Some(format!("written as task-{i}; committed revision {}", i % 7)),
            written: true,
            committed: true,
            deployed: i.is_multiple_of(3),
            dry_run: false,
            owner: None,
            attached: None,
            associated_tasks: vec![],
            failure: None,
            existing: None,
            previous_spec: None,
            replacements: Default::default(),
            warnings: vec![],
        }
    }

    /// Text that gzip cannot compress: every shard's bound must hold on it.
    fn noise(n: usize, seed: u64) -> String {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from_u32(0x4e00 + (x % 20_000) as u32).unwrap()
            })
            .collect()
    }

    #[test]
    fn no_shard_outgrows_its_bound_whatever_the_records_hold() {
        // Incompressible names and messages, and one record far larger than
        // a ConfigMap: every shard stays within the bound, and the huge
        // record is cut and says so.
        let mut records: Vec<Record> = (0..400)
            .map(|i| {
                let mut r = record(i);
                r.name = noise(300, i as u64);
                r.message = Some(noise(2_000, i as u64 + 7));
                r
            })
            .collect();
        records[17].message = Some(noise(2_000_000, 99));
        let shards = shards(&records, 256 * 1024);
        assert!(shards.len() > 1);
        let mut back = Vec::new();
        for s in &shards {
            assert!(s.len() <= 256 * 1024, "shard of {} bytes", s.len());
            back.extend(read_shard(s).unwrap());
        }
        assert_eq!(back.len(), records.len());
        let cut = back[17].message.as_deref().unwrap();
        assert!(
            cut.len() < MAX_FIELD_BYTES + 100 && cut.ends_with("longer than the report keeps]")
        );
        assert_eq!(back[18], records[18]);
    }

    #[test]
    fn shard_names_stay_valid_for_long_task_names() {
        assert_eq!(shard_name("q4-import", 3), "q4-import-report-3");
        let long = "a".repeat(253);
        let n = shard_name(&long, 12);
        assert!(n.len() <= 253 && n.ends_with("-report-12"), "{n}");
        assert_ne!(shard_name(&long, 1), shard_name(&"a".repeat(252), 1));
        assert!(label_value(&long).len() <= 63);
    }

    #[test]
    fn shards_round_trip_and_stay_under_the_bound() {
        let records: Vec<Record> = (0..30_000).map(record).collect();
        let shards = shards(&records, 64 * 1024);
        assert!(
            shards.len() > 1,
            "30,000 records in 64 KiB shards need several shards"
        );
        let mut back = Vec::new();
        for s in &shards {
            assert!(
                s.len() <= 64 * 1024 + 64 * 1024 / 2,
                "shard of {} bytes",
                s.len()
            );
            back.extend(read_shard(s).unwrap());
        }
        assert_eq!(back, records);
    }

    #[test]
    fn a_small_report_is_one_shard() {
        let records: Vec<Record> = (0..10).map(record).collect();
        assert_eq!(shards(&records, SHARD_BYTES).len(), 1);
    }
}
