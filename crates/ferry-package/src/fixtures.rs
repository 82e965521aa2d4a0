//! Deterministic, realistic packages of any size, for tests and benchmarks.
//!
//! The same [`FixtureSpec`] always yields the same bytes. Packages look like
//! a real export of one project: scheduled tasks in a layered dependency DAG
//! whose output names carry the project prefix (`sales_dev.load_orders_17`)
//! and whose code reads and writes `sales_dev.` tables (so a project-rename
//! mapping has something to replace), tables, file resources, functions
//! built from them, quality rules (some tied to task outputs, with opaque
//! rule configurations), DataService APIs in business processes, several
//! compute-resource types and resource groups, and names in Chinese and
//! with capitals.

use std::io::{Cursor, Seek, Write};

use serde_json::{Map, Value, json};

use crate::manifest::{ExportMode, Manifest, SourceInfo};
use crate::model::{ExportedObject, FileRole, ObjectType};
use crate::writer::{PackageWriter, WriteError};

/// How many objects of each type, and how the package is shaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixtureSpec {
    pub seed: u64,
    /// The source project name (output-name and code prefix).
    pub project: String,
    pub tasks: usize,
    /// Depth of the task DAG.
    pub layers: usize,
    pub tables: usize,
    pub file_resources: usize,
    pub functions: usize,
    pub quality_rules: usize,
    pub service_apis: usize,
    /// Approximate size of each task's code, in bytes (padded with
    /// realistic SQL comments and statements).
    pub code_bytes: usize,
    /// Size of each file resource's binary.
    pub resource_bytes: usize,
    /// Put scripts in code files (as exports do) rather than in the documents.
    pub code_in_file: bool,
}

impl Default for FixtureSpec {
    fn default() -> Self {
        FixtureSpec {
            seed: 1,
            project: "sales_dev".into(),
            tasks: 20,
            layers: 4,
            tables: 6,
            file_resources: 3,
            functions: 2,
            quality_rules: 4,
            service_apis: 3,
            code_bytes: 400,
            resource_bytes: 2048,
            code_in_file: true,
        }
    }
}

/// The compute resources fixtures use: (display name, type, FlowSpec
/// datasource type, script language, command).
pub const COMPUTE: [(&str, &str, &str, &str, &str); 3] = [
    ("sales_mc_dev", "MaxCompute", "odps", "odps-sql", "ODPS_SQL"),
    (
        "sales_holo_dev",
        "Hologres",
        "hologres",
        "hologres-sql",
        "HOLOGRES_SQL",
    ),
    ("sales_emr_dev", "EMR", "emr", "emr-hive", "EMR_HIVE"),
];

/// The DataService business processes fixtures use.
pub const BUSINESS_PROCESSES: [&str; 3] = ["sales_api", "finance_api", "ops_api"];

/// The resource groups fixtures use.
pub const RESOURCE_GROUPS: [&str; 2] = ["dev_serverless", "dev_exclusive_01"];

/// splitmix64: tiny, deterministic, good enough for fixtures.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const WORDS: [&str; 24] = [
    "order", "customer", "amount", "region", "channel", "sku", "price", "discount", "refund",
    "status", "payment", "invoice", "shop", "city", "province", "category", "brand", "coupon",
    "member", "visit", "session", "device", "campaign", "margin",
];

impl FixtureSpec {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn project(mut self, p: impl Into<String>) -> Self {
        self.project = p.into();
        self
    }
    pub fn tasks(mut self, n: usize) -> Self {
        self.tasks = n;
        self
    }
    pub fn layers(mut self, n: usize) -> Self {
        self.layers = n.max(1);
        self
    }
    pub fn tables(mut self, n: usize) -> Self {
        self.tables = n;
        self
    }
    pub fn file_resources(mut self, n: usize) -> Self {
        self.file_resources = n;
        self
    }
    pub fn functions(mut self, n: usize) -> Self {
        self.functions = n;
        self
    }
    pub fn quality_rules(mut self, n: usize) -> Self {
        self.quality_rules = n;
        self
    }
    pub fn service_apis(mut self, n: usize) -> Self {
        self.service_apis = n;
        self
    }
    pub fn code_bytes(mut self, n: usize) -> Self {
        self.code_bytes = n;
        self
    }
    pub fn resource_bytes(mut self, n: usize) -> Self {
        self.resource_bytes = n;
        self
    }
    pub fn code_in_file(mut self, yes: bool) -> Self {
        self.code_in_file = yes;
        self
    }

    /// A spec whose package is about `target` bytes: the object mix of the
    /// default, with as many tasks (of about 12 KiB of code each) as it takes,
    /// calibrated on a small sample.
    pub fn sized(target: u64, seed: u64) -> Self {
        // One "unit" is 50 tasks with the default mix of other objects;
        // measure an empty package and one unit, then scale.
        let unit = |n: usize| {
            FixtureSpec::new()
                .seed(seed)
                .layers(8)
                .code_bytes(12 * 1024)
                .tasks(50 * n)
                .tables(6 * n)
                .quality_rules(4 * n)
                .service_apis(3 * n)
                .file_resources(3 * n)
                .functions(2 * n)
        };
        let fixed = unit(0).to_bytes().len() as u64;
        let one = (unit(1).to_bytes().len() as u64)
            .saturating_sub(fixed)
            .max(1);
        let units = (target.saturating_sub(fixed) / one).max(1) as usize;
        unit(units)
    }

    pub fn source(&self) -> SourceInfo {
        SourceInfo {
            tenant: Some("acme".into()),
            workspace: Some(self.project.replace('_', "-")),
            project_name: Some(self.project.clone()),
            region: Some("cn-shanghai".into()),
        }
    }

    /// The real name of task `i`: mostly snake case, some Chinese, some
    /// with capitals.
    pub fn task_name(&self, i: usize) -> String {
        match i % 11 {
            3 => format!("加载订单_{i}"),
            7 => format!("Load_Orders_{i}"),
            _ => format!("load_orders_{i}"),
        }
    }

    fn table_name(&self, i: usize) -> String {
        if i % 5 == 2 {
            format!("订单明细_{i}")
        } else {
            format!("ods_orders_{i}")
        }
    }

    fn layer_of(&self, i: usize) -> usize {
        i * self.layers.max(1) / self.tasks.max(1)
    }

    /// Every object, in a realistic (not import) order.
    pub fn objects(&self) -> Vec<ExportedObject> {
        let mut rng = Rng(self.seed);
        let p = &self.project;
        let mut out = Vec::new();
        let first_of_layer = |l: usize| {
            (0..self.tasks)
                .find(|&i| self.layer_of(i) >= l)
                .unwrap_or(self.tasks)
        };
        for i in 0..self.tasks {
            let name = self.task_name(i);
            let layer = self.layer_of(i);
            let mut inputs = Vec::new();
            if layer == 0 {
                inputs.push(format!("{p}_root"));
            } else {
                let upstream_end = first_of_layer(layer);
                for _ in 0..1 + rng.below(3) {
                    let up = rng.below(upstream_end);
                    let o = format!("{p}.{}", self.task_name(up));
                    if !inputs.contains(&o) {
                        inputs.push(o);
                    }
                }
            }
            if i % 9 == 4 {
                inputs.push(format!("shared_dim.dim_region_{}", i % 4));
            }
            let (cname, ctype, _, language, command) = COMPUTE[i % COMPUTE.len()];
            let mut code = format!(
                "-- {name}: layer {layer}\nINSERT OVERWRITE TABLE {p}.tbl_{i} PARTITION (dt='${{bizdate}}')\nSELECT * FROM {p}.ods_orders_{} WHERE dt = '${{bizdate}}';\n",
                i % self.tables.max(1)
            );
            while code.len() < self.code_bytes {
                let w1 = WORDS[rng.below(WORDS.len())];
                let w2 = WORDS[rng.below(WORDS.len())];
                let n = rng.next() % 100_000;
                code.push_str(&format!(
                    "SELECT {w1}_id, SUM({w2}_amount) AS {w2}_{n} FROM {p}.{w1}_detail WHERE {w2} > {} GROUP BY {w1}_id; -- {w1} {w2} {n}\n",
                    rng.next() % 1000
                ));
            }
            let mut spec = Map::new();
            spec.insert("name".into(), name.clone().into());
            if i % 5 != 4 {
                spec.insert("owner".into(), format!("{}", 1_234_560 + i % 7).into());
            }
            spec.insert("studio".into(), "Legacy".into());
            spec.insert("computeResource".into(), cname.into());
            spec.insert("resourceGroup".into(), RESOURCE_GROUPS[i % 2].into());
            spec.insert(
                "script".into(),
                json!({"language": language, "command": command, "content": code, "path": format!("/{p}/layer_{layer}")}),
            );
            spec.insert(
                "trigger".into(),
                json!({"cron": format!("00 {:02} {:02} * * ?", i % 60, layer % 24), "startTime": "2024-01-01 00:00:00"}),
            );
            let recurrence = match i % 17 {
                13 => "Skip",
                16 => "Pause",
                _ => "Normal",
            };
            spec.insert("recurrence".into(), recurrence.into());
            spec.insert(
                "rerun".into(),
                json!({"mode": "Allowed", "times": 3, "intervalSeconds": 120}),
            );
            spec.insert("inputs".into(), inputs.into());
            spec.insert("outputs".into(), json!([format!("{p}.{name}")]));
            spec.insert(
                "parameters".into(),
                json!(["bizdate=$bizdate", format!("project={p}")]),
            );
            out.push(ExportedObject::from_spec(
                ObjectType::ScheduledTask,
                &spec,
                self.code_in_file,
                Some(ctype),
            ));
        }
        for i in 0..self.tables {
            let name = self.table_name(i);
            let (cname, ctype, ..) = COMPUTE[i % 2];
            let spec = obj(json!({
                "name": name, "owner": "1234567", "studio": "Legacy", "computeResource": cname,
                "guid": format!("odps.{p}.{name}"),
                "ddl": format!("CREATE TABLE IF NOT EXISTS {p}.{name} (\n  order_id STRING,\n  amount DECIMAL(18,2)\n) PARTITIONED BY (dt STRING);\n"),
            }));
            out.push(ExportedObject::from_spec(
                ObjectType::Table,
                &spec,
                false,
                Some(ctype),
            ));
        }
        for i in 0..self.file_resources {
            let (name, type_) = if i % 2 == 0 {
                (format!("udf_lib_{i}.jar"), "jar")
            } else {
                (format!("helper_{i}.py"), "python")
            };
            let spec = obj(
                json!({"name": name, "owner": "1234567", "studio": "Legacy", "type": type_, "computeResource": COMPUTE[0].0}),
            );
            let data: Vec<u8> = (0..self.resource_bytes).map(|_| rng.next() as u8).collect();
            out.push(
                ExportedObject::from_spec(
                    ObjectType::FileResource,
                    &spec,
                    false,
                    Some(COMPUTE[0].1),
                )
                .with_file(name.clone(), FileRole::Resource, data),
            );
        }
        for i in 0..self.functions {
            // Jars are the even-numbered resources.
            let jars = self.file_resources.div_ceil(2);
            let mut resources = Vec::new();
            if jars > 0 {
                resources.push(Value::String(format!("udf_lib_{}.jar", (i % jars) * 2)));
            }
            let name = if i % 3 == 1 {
                format!("ToUpper_{i}")
            } else {
                format!("fn_parse_{i}")
            };
            let spec = obj(json!({
                "name": name, "owner": "1234567", "studio": "Legacy", "computeResource": COMPUTE[0].0,
                "className": format!("com.example.udf.Parse{i}"), "resources": resources,
            }));
            let mut spec = spec;
            if resources_empty(&spec) {
                spec.remove("resources");
            }
            out.push(ExportedObject::from_spec(
                ObjectType::Function,
                &spec,
                false,
                Some(COMPUTE[0].1),
            ));
        }
        for i in 0..self.quality_rules {
            let table = self.table_name(i % self.tables.max(1));
            let mut spec = obj(json!({
                "name": format!("rule_{i}_{table}"), "owner": "1234567", "studio": "Legacy", "table": table,
                "partitionExpression": "dt=$[yyyyMMdd]",
                // Opaque on purpose: some real configurations are not JSON.
                "ruleConfig": if i % 2 == 0 {
                    format!("{{\"rules\": [{{\"ruleType\": \"check_null\", \"column\": \"order_id\", \"threshold\": 0.{i}}}]}}")
                } else {
                    format!("{{\n  \"rules\": [\n    {{\"ruleType\": \"row_count\", \"min\": {i}\n  ]\n")
                },
            }));
            if i % 2 == 0 && self.tasks > 0 {
                spec.insert(
                    "scheduledTaskOutput".into(),
                    format!("{p}.{}", self.task_name(i % self.tasks)).into(),
                );
            }
            out.push(ExportedObject::from_spec(
                ObjectType::QualityRule,
                &spec,
                false,
                None,
            ));
        }
        for i in 0..self.service_apis {
            let (cname, ctype, ..) = COMPUTE[1];
            let spec = obj(json!({
                "name": if i % 4 == 1 { format!("查询订单_{i}") } else { format!("get_orders_{i}") },
                "owner": "1234567", "studio": "Legacy",
                "businessProcess": BUSINESS_PROCESSES[i % 3],
                "path": format!("/api/v1/orders/{i}"), "method": if i % 2 == 0 { "GET" } else { "POST" },
                "computeResource": cname,
                "script": {"language": "sql", "content": format!("SELECT * FROM {p}.ods_orders_0 WHERE order_id = ${{order_id}} LIMIT {i}")},
            }));
            out.push(ExportedObject::from_spec(
                ObjectType::ServiceApi,
                &spec,
                false,
                Some(ctype),
            ));
        }
        out
    }

    /// Writes the package.
    pub fn write_to<W: Write + Seek>(&self, out: W) -> Result<(W, Manifest), WriteError> {
        let mut w =
            PackageWriter::new(out, self.source(), "2026-10-01T00:00:00Z", ExportMode::Full);
        for o in self.objects() {
            w.add(&o)?;
        }
        w.finish()
    }

    /// The package as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.write_to(Cursor::new(Vec::new()))
            .expect("writing to memory cannot fail")
            .0
            .into_inner()
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn resources_empty(spec: &Map<String, Value>) -> bool {
    spec.get("resources")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
}
