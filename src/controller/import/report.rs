//! The full per-object report, in ConfigMaps owned by the task: JSON lines,
//! gzip-compressed, split into shards so that any package size stays under
//! the ConfigMap size limit (1 MiB). Shard 0 also holds the report's basic
//! information and the import settings, the seed's other two sections.

use std::collections::BTreeMap;
use std::io::Write;

use ferry_engine::Record;
use flate2::Compression;
use flate2::write::GzEncoder;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};

use crate::api::ImportTask;
use crate::controller::FIELD_MANAGER;

/// Compressed bytes per shard; base64 in the stored object makes it ~1 MiB.
pub const SHARD_BYTES: usize = 700 * 1024;
/// The key of each shard's records.
pub const RECORDS_KEY: &str = "records.jsonl.gz";

/// Splits records into gzip shards of at most about `SHARD_BYTES` each.
pub fn shards(records: &[Record], shard_bytes: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    let mut pending = 0usize;
    for r in records {
        let mut line = serde_json::to_vec(r).expect("records serialise");
        line.push(b'\n');
        enc.write_all(&line).expect("writing to memory");
        pending += line.len();
        // The encoder buffers; judge by what it has emitted plus a bound on
        // what it holds (deflate never expands by more than a little).
        if enc.get_ref().len() + pending / 4 >= shard_bytes {
            out.push(
                std::mem::replace(&mut enc, GzEncoder::new(Vec::new(), Compression::default()))
                    .finish()
                    .expect("gzip"),
            );
            pending = 0;
        } else if pending > 256 * 1024 {
            enc.flush().expect("gzip");
            pending = 0;
        }
    }
    out.push(enc.finish().expect("gzip"));
    out
}

/// Reads a shard back (for `kubectl migrate report` and tests).
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

/// Writes the report ConfigMaps (`<task>-report-<n>`), owned by the task so
/// that deleting the task deletes its report and nothing else. Returns their names.
pub async fn write(
    client: &kube::Client,
    task: &ImportTask,
    records: &[Record],
    basic: &serde_json::Value,
) -> Result<Vec<String>, kube::Error> {
    let ns = task.namespace().unwrap_or_default();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let owner = task
        .controller_owner_ref(&())
        .expect("a stored task has a name and uid");
    let mut names = Vec::new();
    for (i, shard) in shards(records, SHARD_BYTES).into_iter().enumerate() {
        let name = format!("{}-report-{i}", task.name_any());
        let mut data = BTreeMap::new();
        if i == 0 {
            data.insert(
                "basic.json".to_string(),
                serde_json::to_string_pretty(basic).unwrap_or_default(),
            );
            data.insert(
                "settings.json".to_string(),
                serde_json::to_string_pretty(&task.spec).unwrap_or_default(),
            );
        }
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                labels: Some(BTreeMap::from([(
                    "ferry.dev/import-task".to_string(),
                    task.name_any(),
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
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&cm),
        )
        .await?;
        names.push(name);
    }
    Ok(names)
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
            committed: true,
            deployed: i.is_multiple_of(3),
            dry_run: false,
            attached: None,
            associated_tasks: vec![],
        }
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
