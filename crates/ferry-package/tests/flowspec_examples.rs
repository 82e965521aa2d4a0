//! The published FlowSpec examples (tests/flowspec, Apache-2.0, see LICENSE
//! there) read as Ferry reads package documents.

use ferry_package::flowspec::{Extracted, extract_objects, parse_document};
use ferry_package::{ObjectType, Studio};
use serde_json::{Value, json};

fn load(name: &str) -> Value {
    let path = format!("{}/tests/flowspec/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap();
    parse_document(name, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn objects(name: &str) -> Vec<Extracted> {
    extract_objects(&load(name))
}

#[test]
fn every_example_but_dataservice_parses() {
    for name in [
        "dqc.yaml",
        "example.yaml",
        "file_resource.yaml",
        "function.yaml",
        "manual_flow.yaml",
        "real_case.yaml",
        "simple.yaml",
        "table.yaml",
    ] {
        let doc = load(name);
        assert!(doc.get("spec").is_some(), "{name}");
        assert!(!extract_objects(&doc).is_empty(), "{name} yields objects");
    }
}

#[test]
fn dataservice_reports_file_line_and_column() {
    let path = format!(
        "{}/tests/flowspec/dataservice.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let err = parse_document("dataservice.yaml", &std::fs::read(path).unwrap()).unwrap_err();
    assert_eq!(err.file, "dataservice.yaml");
    let line = err.line.expect("a line");
    assert!(err.column.is_some());
    // The published file's flaw: unquoted `{{...}}` references, which YAML
    // reads as mappings used as keys.
    assert!((10..=62).contains(&line), "line {line}: {err}");
    let text = err.to_string();
    assert!(text.starts_with("dataservice.yaml:"), "{text}");
    assert!(text.contains(&format!("line {line}")), "{text}");
    assert!(text.contains("quote it"), "{text}");
    eprintln!("{text}");
}

#[test]
fn real_case_tasks_resolve_references_both_ways() {
    let objs = objects("real_case.yaml");
    let tasks: Vec<_> = objs
        .iter()
        .filter(|o| o.object_type == ObjectType::ScheduledTask)
        .collect();
    // The reference node (a task elsewhere) is not an object.
    assert_eq!(tasks.len(), 3);
    let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    // An empty (null) name falls back to the id.
    assert_eq!(
        names,
        [
            "sls_full_access_log",
            "dw_open_api_invoke_log_details_analyse",
            "cn_shanghai_api_access_detail"
        ]
    );
    let business = &tasks[2].spec;
    assert_eq!(business["script"]["content"], "show tables;");
    assert_eq!(business["script"]["command"], "ODPS_SQL");
    assert_eq!(business["script"]["language"], "sql");
    assert_eq!(business["trigger"]["cron"], "00 */30 00-23 * * ?");
    assert_eq!(business["trigger"]["startTime"], "2023-01-01 00:00:00");
    // Inputs: the table, plus the flow dependencies, including the
    // reference node's output.
    let inputs = business["inputs"].as_array().unwrap();
    assert!(inputs.contains(&json!(
        "odps.dataworks_analyze.dw_open_api_invoke_log_details_analyse"
    )));
    assert!(
        inputs.contains(&json!("dataworks_analyze.8674738_out")),
        "{inputs:?}"
    );
    assert_eq!(
        business["outputs"],
        json!(["odps.dataworks_analyze.dw_open_api_invoke_log_details_business"])
    );
    assert_eq!(
        business["parameters"],
        json!(["bizdate=$bizdate", "ds=$[yyyymmddhh24mi-30/24/60]"])
    );
    // The null resource group is absent, not "null".
    assert!(business.get("resourceGroup").is_none());
    // A leading-zero account ID stays text, as written.
    assert_eq!(business["owner"], "064152");
    assert_eq!(tasks[0].spec["rerun"], json!({"mode": "Allowed"}));
    assert_eq!(tasks[0].spec["recurrence"], "Normal");
}

#[test]
fn example_resolves_unqualified_and_qualified_script_references() {
    let objs = objects("example.yaml");
    assert_eq!(objs.len(), 2);
    let node1 = &objs[0].spec;
    assert_eq!(node1["script"]["path"], "/path/to/file1.sql");
    assert_eq!(node1["resourceGroup"], "S_xxx_yyy");
    assert_eq!(
        node1["inputs"],
        json!([
            "odps.autotest.table_1",
            "odps.autotest.table_2",
            "autotest.table_1"
        ])
    );
    assert_eq!(node1["parameters"][0], "bizdate=${yyyymmdd}");
    let node2 = &objs[1].spec;
    assert_eq!(node2["script"]["language"], "python");
    assert_eq!(node2["script"]["command"], "PY_ODPS");
    assert_eq!(objs[0].resource_group.as_deref(), Some("S_xxx_yyy"));
}

#[test]
fn dqc_rule_config_travels_untouched() {
    let objs = objects("dqc.yaml");
    assert_eq!(objs.len(), 1);
    let r = &objs[0];
    assert_eq!(r.object_type, ObjectType::QualityRule);
    assert_eq!(r.spec["table"], "test_table");
    assert_eq!(r.spec["partitionExpression"], "dt=$[yyyyMMdd]");
    assert_eq!(r.spec["scheduledTaskOutput"], "autotest.1234_out");
    let raw = r.spec["ruleConfig"].as_str().unwrap();
    assert!(
        serde_json::from_str::<Value>(raw).is_err(),
        "the published config is not valid JSON"
    );
    let source = std::fs::read_to_string(format!(
        "{}/tests/flowspec/dqc.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    // Every line of the block scalar, de-indented, is in the string.
    assert!(raw.starts_with("{\n  \"rules\": ["), "{raw}");
    assert!(source.contains("\"thresholdType\": \"percentage\""));
    assert_eq!(raw.matches("check_null").count(), 2);
}

#[test]
fn table_function_and_resources() {
    let t = &objects("table.yaml")[0];
    assert_eq!(t.object_type, ObjectType::Table);
    assert_eq!(t.name, "table1");
    assert_eq!(t.spec["guid"], "odps.test_project.default.test_table1");
    assert!(
        t.spec["ddl"]
            .as_str()
            .unwrap()
            .starts_with("CREATE TABLE IF NOT EXISTS table1")
    );
    assert_eq!(t.spec["owner"], "123124124");

    let f = objects("function.yaml");
    let func = f
        .iter()
        .find(|o| o.object_type == ObjectType::Function)
        .unwrap();
    assert_eq!(
        func.spec["className"],
        "com.aliyun.odps.udf.example.GeoLocation"
    );
    assert_eq!(func.spec["resources"], json!(["file2.jar"]));
    assert_eq!(func.spec["computeResource"], "autotest");
    let c = func.compute.as_ref().unwrap();
    assert_eq!(
        (c.name.as_str(), c.type_.as_str()),
        ("autotest", "MaxCompute")
    );
    assert_eq!(func.resource_group.as_deref(), Some("group1"));

    let r = objects("file_resource.yaml");
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].name, "res_1.py");
    assert_eq!(r[0].spec["type"], "python");
    assert_eq!(r[1].spec["computeResource"], "emr_0");
    assert_eq!(r[1].compute.as_ref().unwrap().type_, "EMR");
    assert_eq!(r[1].resource_group.as_deref(), Some("S_resgroup_xx"));
    assert!(r.iter().all(|o| o.studio == Studio::Legacy));
}

#[test]
fn simple_and_manual_flows_read_flow_dependencies() {
    let s = objects("simple.yaml");
    assert_eq!(
        s.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
        ["start", "datax", "sql"]
    );
    assert_eq!(s[1].spec["script"]["command"], "DI");
    let m = objects("manual_flow.yaml");
    assert_eq!(m.len(), 4);
}

#[test]
fn new_studio_marker_is_read() {
    let doc = parse_document(
        "x.yaml",
        b"version: 1.1.0\nkind: CycleWorkflow\nmetadata: {dataStudioVersion: V2}\nspec:\n  nodes:\n    - id: a\n      name: a\n",
    )
    .unwrap();
    assert_eq!(extract_objects(&doc)[0].studio, Studio::New);
}

#[test]
fn json_documents_report_line_and_column_too() {
    let e = parse_document("o/spec.json", b"{\n  \"spec\": [1,,]\n}").unwrap_err();
    assert_eq!((e.line, e.column), (Some(2), Some(14)));
    assert!(parse_document("o/spec.json", b"[1]").is_err());
}
