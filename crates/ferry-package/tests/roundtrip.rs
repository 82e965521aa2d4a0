//! Writing then reading gives back what was written.

use std::io::Cursor;

use ferry_package::fixtures::FixtureSpec;
use ferry_package::{
    ExportMode, ExportedObject, FileRole, Limits, ObjectType, PackageReader, PackageWriter,
    SourceInfo,
};
use serde_json::{Map, Value, json};

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn source() -> SourceInfo {
    SourceInfo {
        tenant: Some("acme".into()),
        workspace: Some("sales-dev".into()),
        project_name: Some("sales_dev".into()),
        region: Some("cn-shanghai".into()),
    }
}

fn write(objects: &[ExportedObject]) -> Vec<u8> {
    let mut w = PackageWriter::new(
        Cursor::new(Vec::new()),
        source(),
        "2026-10-01T00:00:00Z",
        ExportMode::Custom,
    );
    for o in objects {
        w.add(o).unwrap();
    }
    w.finish().unwrap().0.into_inner()
}

fn open(bytes: Vec<u8>) -> PackageReader<Cursor<Vec<u8>>> {
    PackageReader::open(Cursor::new(bytes), &Limits::default()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_type_round_trips_through_yaml_and_json() {
    let task = obj(json!({
        "name": "加载订单_Daily", "owner": "1234567", "studio": "Legacy",
        "computeResource": "sales_mc_dev", "resourceGroup": "dev_serverless",
        "script": {"language": "odps-sql", "command": "ODPS_SQL", "content": "INSERT INTO sales_dev.orders SELECT 1;", "path": "/sales"},
        "trigger": {"cron": "00 00 02 * * ?", "startTime": "2024-01-01 00:00:00", "endTime": "2099-01-01 00:00:00"},
        "recurrence": "Skip", "rerun": {"mode": "FailureAllowed", "times": 2, "intervalSeconds": 60},
        "inputs": ["sales_dev_root", "other.x"], "outputs": ["sales_dev.加载订单_Daily"],
        "parameters": ["bizdate=$bizdate", "flag"],
    }));
    let table = obj(
        json!({"name": "Orders", "studio": "Legacy", "computeResource": "sales_mc_dev",
        "ddl": "CREATE TABLE orders (id STRING);", "guid": "odps.sales_dev.orders"}),
    );
    let resource = obj(
        json!({"name": "udf.jar", "studio": "Legacy", "type": "jar", "computeResource": "sales_mc_dev"}),
    );
    let function = obj(
        json!({"name": "my_udf", "owner": "1", "studio": "Legacy", "computeResource": "sales_mc_dev",
        "className": "com.example.Udf", "resources": ["udf.jar"]}),
    );
    let rule = obj(
        json!({"name": "rule_1", "studio": "Legacy", "table": "Orders", "partitionExpression": "dt=$[yyyyMMdd]",
        "scheduledTaskOutput": "sales_dev.加载订单_Daily", "ruleConfig": "{ \"rules\": [ not json"}),
    );
    let api = obj(
        json!({"name": "get_orders", "studio": "Legacy", "businessProcess": "sales_api", "path": "/api/orders",
        "method": "GET", "computeResource": "sales_holo_dev", "script": {"language": "sql", "content": "SELECT 1"}}),
    );
    let jar = b"PK\x03\x04 not really a jar".to_vec();
    let exported = vec![
        ExportedObject::from_spec(ObjectType::ScheduledTask, &task, false, Some("MaxCompute")),
        ExportedObject::from_spec(ObjectType::Table, &table, false, Some("MaxCompute")).as_json(),
        ExportedObject::from_spec(
            ObjectType::FileResource,
            &resource,
            false,
            Some("MaxCompute"),
        )
        .with_file("udf.jar", FileRole::Resource, jar.clone()),
        ExportedObject::from_spec(ObjectType::Function, &function, false, Some("MaxCompute")),
        ExportedObject::from_spec(ObjectType::QualityRule, &rule, false, None).as_json(),
        ExportedObject::from_spec(ObjectType::ServiceApi, &api, true, Some("Hologres")),
    ];
    let mut reader = open(write(&exported));
    let objects = reader.objects().to_vec();
    assert_eq!(objects.len(), 6);
    assert_eq!(objects[0].spec, task);
    assert_eq!(objects[0].name, "加载订单_Daily");
    assert_eq!(objects[1].spec, table);
    assert!(objects[1].spec_path.ends_with("/spec.json"));
    // The reader adds where the resource's bytes are and their digest.
    let res = &objects[2];
    let file = &res.files[0];
    let mut expected = resource.clone();
    expected.insert("path".into(), file.path.clone().into());
    expected.insert("contentDigest".into(), file.digest().into());
    assert_eq!(res.spec, expected);
    assert_eq!(reader.read_file(file).unwrap(), jar);
    assert_eq!(objects[3].spec, function);
    assert_eq!(objects[4].spec, rule);
    // Code in a file: empty in the spec until loaded.
    assert_eq!(objects[5].spec["script"]["content"], "");
    assert_eq!(objects[5].code_file().unwrap().role, FileRole::Code);
    assert_eq!(reader.with_code(&objects[5]).unwrap().spec, api);
    assert_eq!(objects[5].compute.as_ref().unwrap().type_, "Hologres");
}

#[test]
fn fixtures_read_back_and_rewrite_identically() {
    let spec = FixtureSpec::new().tasks(60).layers(5);
    let bytes = spec.to_bytes();
    assert_eq!(bytes, spec.to_bytes(), "fixtures are deterministic");
    let mut reader = open(bytes.clone());
    let summary = reader.summary();
    assert_eq!(summary.count(ObjectType::ScheduledTask), 60);
    assert_eq!(summary.count(ObjectType::Table), 6);
    assert_eq!(summary.total_objects, 60 + 6 + 3 + 2 + 4 + 3);
    assert_eq!(summary.source.project_name.as_deref(), Some("sales_dev"));
    let types: Vec<&str> = summary
        .compute_resources
        .iter()
        .map(|c| c.type_.as_str())
        .collect();
    assert_eq!(types, ["EMR", "Hologres", "MaxCompute"]);
    assert_eq!(
        summary.resource_groups,
        ["dev_exclusive_01", "dev_serverless"]
    );
    // Chinese and capitalised names survive.
    let index = reader.index();
    assert!(index.get(ObjectType::ScheduledTask, "加载订单_3").is_some());
    assert!(
        index
            .get(ObjectType::ScheduledTask, "Load_Orders_7")
            .is_some()
    );
    assert!(index.producer_of("sales_dev.load_orders_0").is_some());
    // Import order puts resources first and rules last.
    let order = index.import_order();
    let objects = reader.objects().to_vec();
    assert_eq!(objects[order[0]].object_type, ObjectType::FileResource);
    assert_eq!(
        objects[*order.last().unwrap()].object_type,
        ObjectType::QualityRule
    );

    // Re-export what was read: the same specs come back.
    let mut again = Vec::new();
    let mut full = Vec::new();
    for o in &objects {
        let o = reader.with_code(o).unwrap();
        let mut s = o.spec.clone();
        if o.object_type == ObjectType::FileResource {
            // Filled in by the reader, not written.
            s.remove("path");
            s.remove("contentDigest");
        }
        let mut e = ExportedObject::from_spec(
            o.object_type,
            &s,
            true,
            o.compute.as_ref().map(|c| c.type_.as_str()),
        );
        for f in &o.files {
            if f.role == FileRole::Resource {
                let name = f.path.rsplit('/').next().unwrap().to_string();
                e = e.with_file(name, f.role, reader.read_file(f).unwrap());
            }
        }
        again.push(e);
        full.push(o);
    }
    let mut reader2 = open(write(&again));
    for (a, b) in full.iter().zip(reader2.objects().to_vec()) {
        let b = reader2.with_code(&b).unwrap();
        assert_eq!(a.spec, b.spec, "{}", a.name);
        assert!(a.spec["name"].is_string());
    }
    let task = full.iter().find(|o| o.name == "load_orders_20").unwrap();
    let code = task.spec["script"]["content"].as_str().unwrap();
    assert!(code.contains("sales_dev."), "code references the project");
    assert!(code.len() >= 400);
}

#[test]
fn copy_file_detects_a_changed_archive() {
    let bytes = FixtureSpec::new().tasks(3).to_bytes();
    let mut reader = open(bytes);
    let task = reader.objects()[0].clone();
    let mut f = task.code_file().unwrap().clone();
    f.sha256 = "00".repeat(32);
    let mut out = Vec::new();
    assert!(reader.copy_file(&f, &mut out).is_err());
}
