//! The published FlowSpec examples (tests/flowspec, Apache-2.0, see LICENSE
//! there) and Ferry's own examples of the other shapes DataWorks writes
//! (tests/flowspec/ferry-*.yaml, see the README there) read as Ferry reads
//! package documents.

use std::collections::BTreeMap;

use ferry_package::flowspec::{
    EdgeOutcome, Extracted, ISSUE_RULES, Layout, ReadOptions, Reading, Severity, extract_objects,
    parse_document, read_document,
};
use ferry_package::{ComputeRef, ObjectType, Studio};
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
    // The table it writes, after the default output every node has.
    assert_eq!(
        business["outputs"],
        json!([
            "cn_shanghai_api_access_detail",
            "odps.dataworks_analyze.dw_open_api_invoke_log_details_business"
        ])
    );
    // Its flow dependency on the analysing node, which declares only a
    // table: by that node's default output.
    assert!(
        inputs.contains(&json!("dw_open_api_invoke_log_details_analyse")),
        "{inputs:?}"
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
    // node_2's dependency is cross-cycle: kept with its type, not an input.
    assert!(objs[1].spec.get("inputs").is_none());
    // node_2's self dependency is on its own (default) output.
    assert_eq!(
        objs[1].spec["crossCycleDependencies"],
        json!([
            {"type": "CrossCycleDependsOnOtherNode", "output": "autotest.table_1"},
            {"type": "CrossCycleDependsOnSelf", "output": "node_2"},
            {"type": "CrossCycleDependsOnChildren"}
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
    // No node declares outputs: each depends on its upstream's default
    // output, `<project>.<name>` (the bare name without a project).
    assert_eq!(
        deps("simple.yaml", None),
        table(&[("start", &[]), ("datax", &["start"]), ("sql", &["datax"])])
    );
    // The chain the issue found arriving with no edges at all.
    let m = read("manual_flow.yaml", Some("sales_dev"));
    assert_eq!(m.objects.len(), 4);
    assert_eq!(
        task_inputs(&m),
        table(&[
            ("start", &[]),
            ("datax", &["sales_dev.start"]),
            ("sql", &["sales_dev.datax"]),
            ("end", &["sales_dev.sql"]),
        ])
    );
    for t in &m.objects {
        assert_eq!(t.spec["outputs"], json!([format!("sales_dev.{}", t.name)]));
    }
    assert_eq!(m.edge_counts(), (3, 0, 0));
    assert!(m.issues.is_empty(), "{:?}", m.issues);
}

fn read(name: &str, project: Option<&str>) -> Reading {
    read_document(
        &load(name),
        &ReadOptions {
            project: project.map(str::to_string),
        },
    )
}

type Table = BTreeMap<String, Vec<String>>;

fn table(rows: &[(&str, &[&str])]) -> Table {
    rows.iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// Each task's `spec.inputs`.
fn task_inputs(r: &Reading) -> Table {
    r.objects
        .iter()
        .filter(|o| o.object_type == ObjectType::ScheduledTask)
        .map(|o| (o.name.clone(), strings(o.spec.get("inputs"))))
        .collect()
}

fn deps(name: &str, project: Option<&str>) -> Table {
    task_inputs(&read(name, project))
}

/// Each task's cross-cycle dependencies as `type output` text.
fn cross(r: &Reading) -> Table {
    r.objects
        .iter()
        .filter(|o| o.object_type == ObjectType::ScheduledTask)
        .map(|o| {
            let v = o
                .spec
                .get("crossCycleDependencies")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|d| {
                            format!(
                                "{} {}",
                                d["type"].as_str().unwrap(),
                                d.get("output").and_then(Value::as_str).unwrap_or("-")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            (o.name.clone(), v)
        })
        .collect()
}

#[test]
fn plain_node_ids_every_dependency_type_and_outputs_outputs() {
    let r = read("ferry-plain-ids.yaml", None);
    assert_eq!(r.layout, Some(Layout::SpecNodes));
    assert!(r.issues.is_empty(), "{:?}", r.issues);
    assert_eq!(
        task_inputs(&r),
        table(&[
            ("extract_orders", &[]),
            // Plain ids, one unquoted (a YAML number); the upstream's output
            // is the one it marks isDefault.
            ("clean_orders", &["8745734768222459575", "sales_dev_root"]),
            // A node declaring outputs.outputs[] (artifactType Output).
            ("load_orders", &["7357222347128571852"]),
            // An `output` that is a node's id means that node's output: here
            // its default one, as does its plain nodeId: one input.
            ("report_orders", &["load_orders"]),
        ])
    );
    assert_eq!(
        cross(&r),
        table(&[
            ("extract_orders", &[]),
            ("clean_orders", &[]),
            ("load_orders", &["CrossCycleDependsOnSelf load_orders"]),
            (
                "report_orders",
                &[
                    "CrossCycleDependsOnOtherNode other_project.daily_fx_rates",
                    "CrossCycleDependsOnChildren -",
                ]
            ),
        ])
    );
    let outputs: Table = r
        .objects
        .iter()
        .map(|o| (o.name.clone(), strings(o.spec.get("outputs"))))
        .collect();
    assert_eq!(
        outputs,
        table(&[
            (
                "extract_orders",
                &["8745734768222459575", "sales_dev.extract_orders"]
            ),
            ("clean_orders", &["7357222347128571852"]),
            ("load_orders", &["load_orders"]),
            ("report_orders", &["report_orders"]),
        ])
    );
    assert_eq!(r.edge_counts(), (8, 0, 0));
    // Owner from the document's metadata; compute and group as mapped.
    assert_eq!(r.objects[0].spec["owner"], "1107550004");
    assert_eq!(r.objects[0].spec["computeResource"], "sales_mc_dev");
    assert_eq!(r.objects[0].spec["resourceGroup"], "dev_serverless");
}

#[test]
fn workflows_layout_reads_nodes_and_dependencies() {
    let r = read("ferry-workflows.yaml", None);
    assert_eq!(r.layout, Some(Layout::SpecWorkflows));
    assert!(r.issues.is_empty(), "{:?}", r.issues);
    // The project comes from the document's metadata.projectIdentifier.
    assert_eq!(
        task_inputs(&r),
        table(&[
            ("sync_sales", &[]),
            ("agg_sales", &["sales_dev.sync_sales"]),
            (
                "publish_sales",
                &["sales_dev.agg_sales", "sales_dev.sync_sales"]
            ),
        ])
    );
    assert_eq!(r.edge_counts(), (3, 0, 0));
    let by_name: BTreeMap<&str, &Extracted> =
        r.objects.iter().map(|o| (o.name.as_str(), o)).collect();
    // The workflow's trigger and owner, unless the node has its own.
    assert_eq!(
        by_name["sync_sales"].spec["trigger"]["cron"],
        "00 05 * * * ?"
    );
    assert_eq!(
        by_name["publish_sales"].spec["trigger"]["cron"],
        "00 10 * * * ?"
    );
    assert_eq!(by_name["agg_sales"].spec["owner"], "200527038829996354");
    assert_eq!(by_name["agg_sales"].spec["computeResource"], "sales_mc_dev");
    assert_eq!(
        by_name["sync_sales"].resource_group.as_deref(),
        Some("di_group")
    );
    assert_eq!(
        by_name["publish_sales"].spec["outputs"],
        json!(["sales_dev.publish_sales"])
    );
}

#[test]
fn flowspec_1_0_0_top_level_sections() {
    let r = read("ferry-v100.yaml", Some("users_dev"));
    assert_eq!(r.layout, Some(Layout::TopLevel));
    assert!(r.issues.is_empty(), "{:?}", r.issues);
    assert_eq!(
        task_inputs(&r),
        table(&[
            ("extract_users", &[]),
            ("dim_users", &["users_dev.extract_users"])
        ])
    );
    assert_eq!(
        r.objects[0].spec["script"]["content"],
        "SELECT * FROM ods_users;"
    );
    assert_eq!(r.objects[1].spec["trigger"]["cron"], "00 30 01 * * ?");
    assert_eq!(r.edge_counts(), (1, 0, 0));
}

#[test]
fn references_into_every_section_resolve() {
    let r = read("ferry-references.yaml", None);
    assert_eq!(
        task_inputs(&r),
        table(&[
            ("task_a", &[]),
            ("task_b", &[]),
            ("task_c", &["refs_dev.task_a", "odps.refs_dev.orders"]),
            (
                "task_d",
                &[
                    "refs_dev.task_b",
                    "refs_dev.task_c",
                    "other_dev.upstream_out",
                    "refs_dev.task_a"
                ]
            ),
        ])
    );
    assert!(r.errors().next().is_none(), "{:?}", r.issues);
    assert_eq!(r.edge_counts(), (6, 0, 0));
    let outputs: Vec<Vec<String>> = r
        .objects
        .iter()
        .map(|o| strings(o.spec.get("outputs")))
        .collect();
    assert_eq!(outputs[0], ["refs_dev.task_a"]);
    assert_eq!(outputs[1], ["refs_dev.task_b"]);
    assert_eq!(outputs[2], ["refs_dev.task_c"]);
}

#[test]
fn every_unresolved_dependency_is_an_issue_with_a_rule_never_a_name() {
    let r = read("ferry-unresolved.yaml", Some("p"));
    let got: Vec<(&str, &str, &str)> = r
        .issues
        .iter()
        .map(|i| (i.rule, i.subject.as_str(), i.at.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "unresolved-reference",
                "ScheduledTask \"task_a\"",
                "node \"a\".inputs.nodeOutputs[0]"
            ),
            (
                "unresolved-reference",
                "ScheduledTask \"task_b\"",
                "node \"b\".script"
            ),
            (
                "unresolved-reference",
                "ScheduledTask \"task_b\"",
                "spec.flow[0].depends[1].output"
            ),
            (
                "unresolved-dependency",
                "ScheduledTask \"task_b\"",
                "spec.flow[0].depends[2].nodeId"
            ),
            (
                "unknown-dependency-type",
                "ScheduledTask \"task_b\"",
                "spec.flow[0].depends[3].type"
            ),
            (
                "unresolved-dependency",
                "ScheduledTask \"task_b\"",
                "spec.flow[0].depends[4]"
            ),
            (
                "unresolved-dependency",
                "document",
                "spec.flow[1].depends[0]"
            ),
        ]
    );
    assert!(r.issues.iter().all(|i| i.severity == Severity::Error));
    assert!(r.issues.iter().all(|i| ISSUE_RULES.contains(&i.rule)));
    // Only what resolved became a dependency; no `{{...}}` text anywhere.
    assert_eq!(
        task_inputs(&r),
        table(&[("task_a", &[]), ("task_b", &["p.task_a"])])
    );
    assert_eq!(r.edge_counts(), (1, 0, 6));
    let text = r.issues[3].to_string();
    assert_eq!(
        text,
        "ScheduledTask \"task_b\": spec.flow[0].depends[2].nodeId: node \"424242\" is not defined in the document and the entry names no output (rule: unresolved-dependency)"
    );
}

#[test]
fn an_unsupported_layout_is_refused_by_name() {
    let r = read("ferry-unsupported.yaml", None);
    assert!(r.objects.is_empty());
    assert_eq!(r.issues.len(), 1);
    let i = &r.issues[0];
    assert_eq!(i.rule, "unsupported-layout");
    let text = i.to_string();
    assert!(text.contains("kind \"Component\""), "{text}");
    assert!(text.contains("sections components"), "{text}");
    // `spec` that is not a mapping, and no sections at all.
    for (doc, want) in [
        (
            json!({"version": "1.1.0", "kind": "CycleWorkflow", "spec": [1]}),
            "`spec` is a list",
        ),
        (
            json!({"version": "1.1.0", "kind": "X", "whatever": {}}),
            "neither `spec` nor top-level",
        ),
    ] {
        let r = read_document(&doc, &ReadOptions::default());
        assert_eq!(r.layout, None);
        assert_eq!(r.issues[0].rule, "unsupported-layout");
        assert!(r.issues[0].detail.contains(want), "{}", r.issues[0]);
        assert!(
            r.issues[0].detail.contains("spec.workflows[]"),
            "{}",
            r.issues[0]
        );
    }
}

#[test]
fn container_nodes_report_their_inner_resources_and_keep_inner_edges() {
    let r = read("ferry-containers.yaml", Some("sales_dev"));
    assert!(r.issues.is_empty(), "{:?}", r.issues);
    // The containers are the tasks; inner nodes are not objects.
    assert_eq!(
        task_inputs(&r),
        table(&[
            ("loop_partitions", &[]),
            ("for_each_region", &["sales_dev.loop_partitions"]),
            ("combined_steps", &["sales_dev.for_each_region"]),
        ])
    );
    let c = |n: &str, t: &str| ComputeRef {
        name: n.into(),
        type_: t.into(),
    };
    let inner: Vec<(Vec<ComputeRef>, Vec<String>)> = r
        .objects
        .iter()
        .map(|o| (o.inner_compute.clone(), o.inner_resource_groups.clone()))
        .collect();
    assert_eq!(
        inner,
        [
            (
                vec![c("loop_holo", "Hologres"), c("loop_mc", "MaxCompute")],
                vec!["group_loop".to_string()]
            ),
            (vec![], vec!["group_each".to_string()]),
            (vec![c("combined_emr", "EMR")], vec![]),
        ]
    );
    // 2 task edges; inner: do-while 2 flow + 1 input, for-each 2, combined 1.
    assert_eq!(r.edge_counts(), (2, 6, 0));
}

/// The inner nodes' compute resources and resource groups travel into the
/// package: the reader keeps them on the object and the summary (what a
/// MigrationPackage's status and `kubectl migrate preview` show) lists them
/// beside the tasks' own.
#[test]
fn the_package_summary_lists_inner_nodes_resources() {
    use ferry_package::{
        ExportMode, ExportedObject, Limits, PackageReader, PackageWriter, SourceInfo,
    };
    let opts = ReadOptions {
        project: Some("sales_dev".into()),
    };
    let (split, _) = ferry_package::flowspec::split_document(&load("ferry-containers.yaml"), &opts)
        .unwrap_or_else(|r| panic!("{:?}", r.issues));
    let mut w = PackageWriter::new(
        std::io::Cursor::new(Vec::new()),
        SourceInfo::default(),
        "2026-10-01T00:00:00Z",
        ExportMode::Full,
    );
    for s in &split {
        w.add(&ExportedObject {
            object_type: s.object.object_type,
            name: s.object.name.clone(),
            document: s.document.clone(),
            format: ferry_package::DocFormat::Yaml,
            files: Vec::new(),
        })
        .unwrap();
    }
    let (cursor, _) = w.finish().unwrap();
    let r = PackageReader::open(
        std::io::Cursor::new(cursor.into_inner()),
        &Limits::default(),
    )
    .unwrap();
    let loop_task = r
        .objects()
        .iter()
        .find(|o| o.name == "loop_partitions")
        .unwrap();
    let c = |n: &str, t: &str| ComputeRef {
        name: n.into(),
        type_: t.into(),
    };
    assert_eq!(
        loop_task.inner_compute,
        [c("loop_holo", "Hologres"), c("loop_mc", "MaxCompute")]
    );
    assert_eq!(loop_task.inner_resource_groups, ["group_loop"]);
    let summary = r.summary();
    assert_eq!(
        summary.compute_resources,
        [
            c("combined_emr", "EMR"),
            c("loop_holo", "Hologres"),
            c("loop_mc", "MaxCompute"),
        ]
    );
    assert_eq!(
        summary.resource_groups,
        ["group_each", "group_loop", "group_outer"]
    );
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

/// Every example Ferry reads (all but the published dataservice.yaml, which
/// is not valid YAML, and the unsupported one).
const READABLE: [&str; 14] = [
    "dqc.yaml",
    "example.yaml",
    "file_resource.yaml",
    "function.yaml",
    "manual_flow.yaml",
    "real_case.yaml",
    "simple.yaml",
    "table.yaml",
    "ferry-plain-ids.yaml",
    "ferry-workflows.yaml",
    "ferry-v100.yaml",
    "ferry-containers.yaml",
    "ferry-references.yaml",
    "ferry-unresolved.yaml",
];

/// Dependency edges as the document writes them, counted without Ferry's
/// reader: every `depends[]` entry, and every entry of a node's
/// `inputs.nodeOutputs[]`, `inputs.outputs[]` and `inputs.tables[]`.
fn edges_in_document(v: &Value) -> usize {
    let mut n = 0;
    match v {
        Value::Object(m) => {
            if let Some(Value::Array(d)) = m.get("depends") {
                n += d.len();
            }
            if let Some(Value::Object(inputs)) = m.get("inputs") {
                for key in ["nodeOutputs", "outputs", "tables"] {
                    if let Some(Value::Array(a)) = inputs.get(key) {
                        n += a.len();
                    }
                }
            }
            n += m.values().map(edges_in_document).sum::<usize>();
        }
        Value::Array(a) => n += a.iter().map(edges_in_document).sum::<usize>(),
        _ => {}
    }
    n
}

#[test]
fn edge_count_invariant_over_every_example() {
    let mut total = (0, 0, 0, 0);
    for name in READABLE {
        let doc = load(name);
        let r = read_document(&doc, &ReadOptions::default());
        let (imported, internal, unresolved) = r.edge_counts();
        let written = edges_in_document(&doc);
        assert_eq!(
            written,
            imported + internal + unresolved,
            "{name}: {written} edges written, {imported} imported + {internal} internal + {unresolved} unresolved: {:#?}",
            r.edges
        );
        // Every unresolved edge has an issue at its place.
        for e in r
            .edges
            .iter()
            .filter(|e| e.outcome == EdgeOutcome::Unresolved)
        {
            assert!(
                r.issues.iter().any(|i| i.at.starts_with(&e.at)),
                "{name}: no issue for {e:?}"
            );
        }
        // Every imported edge is on its task.
        for e in &r.edges {
            let EdgeOutcome::Imported {
                output,
                dependency_type,
            } = &e.outcome
            else {
                continue;
            };
            let task = r
                .objects
                .iter()
                .find(|o| o.object_type == ObjectType::ScheduledTask && o.name == e.task)
                .unwrap_or_else(|| panic!("{name}: no task for {e:?}"));
            if dependency_type == "Normal" {
                let inputs = strings(task.spec.get("inputs"));
                assert!(inputs.contains(output.as_ref().unwrap()), "{name}: {e:?}");
            } else {
                let mut want = serde_json::Map::new();
                want.insert("type".into(), dependency_type.clone().into());
                if let Some(o) = output {
                    want.insert("output".into(), o.clone().into());
                }
                let c = task.spec["crossCycleDependencies"].as_array().unwrap();
                assert!(c.contains(&Value::Object(want)), "{name}: {e:?}");
            }
        }
        total.0 += written;
        total.1 += imported;
        total.2 += internal;
        total.3 += unresolved;
    }
    eprintln!(
        "edges written {}, imported {}, internal {}, unresolved {}",
        total.0, total.1, total.2, total.3
    );
    assert!(total.0 > 40, "the examples hold edges: {total:?}");
}

/// Leaf paths where two documents differ.
fn diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let p = format!("{path}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => diff(u, v, &p, out),
                    _ => out.push(p),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                diff(u, v, &format!("{path}[{i}]"), out);
            }
        }
        _ if a == b => {}
        _ => out.push(path.to_string()),
    }
}

fn has_alert_key(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, x)| k.to_ascii_lowercase().starts_with("alert") || has_alert_key(x)),
        Value::Array(a) => a.iter().any(has_alert_key),
        _ => false,
    }
}

#[test]
fn export_keeps_every_field_ferry_does_not_interpret_except_alerts() {
    use ferry_package::flowspec::{build_document, split_document, strip_alerts};
    let mut checked = 0;
    for name in READABLE.iter().filter(|n| **n != "ferry-unresolved.yaml") {
        let (split, _) = split_document(&load(name), &ReadOptions::default())
            .unwrap_or_else(|r| panic!("{name}: {:?}", r.issues));
        for s in split {
            let t = s.object.object_type;
            // The package document as imported, with alert settings on it.
            let mut imported = s.document.clone();
            if t == ObjectType::QualityRule {
                imported["spec"]["dqcRules"][0]["alertReceivers"] = json!(["ops@example.com"]);
                imported["spec"]["dqcRules"][0]["alertMethods"] = json!(["Mail", "Sms"]);
            }
            // What the import made of it: the mapped fields changed.
            let mut spec = s.object.spec.clone();
            spec.insert("flowSpec".into(), imported.clone());
            let mapped_compute = spec.contains_key("computeResource");
            if mapped_compute {
                spec.insert("computeResource".into(), "prod_compute".into());
            }
            if t == ObjectType::ScheduledTask {
                spec.insert("resourceGroup".into(), "prod_group".into());
                spec.insert("recurrence".into(), "Skip".into());
            }
            spec.insert("owner".into(), "7654321".into());
            let (exported, code) = build_document(t, &spec, true, Some("MaxCompute"));
            // It reads back as the imported object says.
            let back = read_document(&exported, &ReadOptions::default());
            assert!(
                back.errors().next().is_none(),
                "{name} {}: {:?}",
                s.object.name,
                back.issues
            );
            let x = back.objects.iter().find(|o| o.object_type == t).unwrap();
            for key in [
                "name",
                "owner",
                "computeResource",
                "resourceGroup",
                "recurrence",
                "inputs",
                "outputs",
                "crossCycleDependencies",
                "trigger",
                "parameters",
                "table",
                "ruleConfig",
                "scheduledTaskOutput",
            ] {
                assert_eq!(
                    x.spec.get(key),
                    spec.get(key),
                    "{name} {} {key}",
                    s.object.name
                );
            }
            // Field by field: equal but for the mapped fields, the script
            // (its code moved to the code file), and the alerts, gone.
            assert!(!has_alert_key(&exported), "{name}: alerts exported");
            let mut base = imported.clone();
            strip_alerts(&mut base);
            let mut d = Vec::new();
            diff(&base, &exported, "", &mut d);
            let allowed = [
                "datasource",
                "runtimeResource",
                "owner",
                "recurrence",
                "script",
            ];
            for p in &d {
                assert!(
                    allowed.iter().any(|a| p.contains(a)),
                    "{name} {} {t}: {p} changed on export\n{base:#}\n{exported:#}",
                    s.object.name
                );
            }
            if t == ObjectType::ScheduledTask {
                assert!(code.is_some(), "{name}: the code goes to a file");
            }
            checked += 1;
        }
    }
    assert!(checked >= 25, "{checked}");
}

#[test]
fn split_documents_keep_every_object_and_edge() {
    use ferry_package::flowspec::split_document;
    for name in READABLE.iter().filter(|n| **n != "ferry-unresolved.yaml") {
        for project in [None, Some("proj")] {
            let opts = ReadOptions {
                project: project.map(str::to_string),
            };
            let (split, whole) = split_document(&load(name), &opts)
                .unwrap_or_else(|r| panic!("{name}: {:?}", r.issues));
            assert_eq!(split.len(), whole.objects.len(), "{name}");
            let (imported, internal, _) = whole.edge_counts();
            let mut sum = (0, 0, 0);
            for s in &split {
                // Read without the project: the split document says it all.
                let r = read_document(&s.document, &ReadOptions::default());
                assert!(
                    r.issues.is_empty(),
                    "{name} {}: {:?}",
                    s.object.name,
                    r.issues
                );
                let same: Vec<&Extracted> = r
                    .objects
                    .iter()
                    .filter(|o| o.object_type == s.object.object_type)
                    .collect();
                assert_eq!(same.len(), 1, "{name} {}", s.object.name);
                assert_eq!(same[0].spec, s.object.spec, "{name} {}", s.object.name);
                assert_eq!(same[0].inner_compute, s.object.inner_compute);
                assert_eq!(
                    same[0].inner_resource_groups,
                    s.object.inner_resource_groups
                );
                let c = r.edge_counts();
                sum = (sum.0 + c.0, sum.1 + c.1, sum.2 + c.2);
            }
            assert_eq!(sum, (imported, internal, 0), "{name} {project:?}");
        }
    }
}
