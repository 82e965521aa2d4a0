//! Small builders for the engine's tests.

use std::collections::{BTreeMap, BTreeSet};

use ferry_api::{Edition, ImportTaskSpec, WorkspaceSpec};
use ferry_package::{ComputeRef, ObjectType, PackageObject, SourceInfo, Studio};
use serde_json::{Map, Value, json};

use crate::{Destination, Inputs, Plan, PlanError, TaskIdentity, plan};

/// A package object under construction.
pub struct Obj(pub PackageObject);

/// An object of type `t` named `name`, authored in the legacy studio.
pub fn obj(t: ObjectType, name: &str) -> Obj {
    let mut spec = Map::new();
    spec.insert("name".into(), name.into());
    Obj(PackageObject {
        object_type: t,
        name: name.into(),
        spec,
        flow_spec: json!({"version": "1.1.0", "kind": "CycleWorkflow"}).into(),
        spec_path: format!("{}/{name}/spec.yaml", t.folder()),
        files: vec![],
        studio: Studio::Legacy,
        compute: None,
        resource_group: None,
        inner_compute: vec![],
        inner_resource_groups: vec![],
    })
}

/// The engine type fixtures' compute resource names imply.
fn type_of(name: &str) -> &'static str {
    if name.contains("holo") {
        "Hologres"
    } else if name.contains("emr") {
        "EMR"
    } else {
        "MaxCompute"
    }
}

impl Obj {
    pub fn compute(self, name: &str) -> Self {
        self.compute_typed(name, type_of(name))
    }
    pub fn compute_typed(mut self, name: &str, type_: &str) -> Self {
        self.0.compute = Some(ComputeRef {
            name: name.into(),
            type_: type_.into(),
        });
        self.set("computeResource", name)
    }
    pub fn group(mut self, g: &str) -> Self {
        self.0.resource_group = Some(g.into());
        self.set("resourceGroup", g)
    }
    pub fn inputs(self, v: &[&str]) -> Self {
        self.set("inputs", json!(v))
    }
    pub fn outputs(self, v: &[&str]) -> Self {
        self.set("outputs", json!(v))
    }
    pub fn script(self, code: &str) -> Self {
        self.set("script", json!({"language": "odps-sql", "content": code}))
    }
    pub fn owner(self, o: &str) -> Self {
        self.set("owner", o)
    }
    pub fn new_studio(mut self) -> Self {
        self.0.studio = Studio::New;
        self
    }
    pub fn labels(mut self, labels: Value) -> Self {
        let mut doc = self.0.flow_spec.to_value();
        doc["metadata"] = json!({ "labels": labels });
        self.0.flow_spec = doc.into();
        self
    }
    pub fn set(mut self, key: &str, v: impl Into<Value>) -> Self {
        self.0.spec.insert(key.into(), v.into());
        self
    }
    /// A scheduled task with an output named after it, on the MaxCompute
    /// resource and the default group.
    pub fn task(name: &str) -> Self {
        obj(ObjectType::ScheduledTask, name)
            .compute("sales_mc_dev")
            .group("serverless_default")
            .outputs(&[&format!("sales_dev.{name}")])
            .script(&format!("INSERT INTO sales_dev.{name} SELECT 1;"))
            .owner("1001")
    }
}

/// Everything a plan needs, with defaults that plan cleanly: a Professional
/// tenant, a destination with one MaxCompute and one Hologres resource and
/// a `serverless_default` group, and a mapping for both dev resources.
pub struct Setup {
    pub objects: Vec<PackageObject>,
    pub source: SourceInfo,
    pub ws: WorkspaceSpec,
    pub tenant: String,
    pub edition: Edition,
    pub existing: crate::plan::Existing,
    pub existing_tables: BTreeSet<String>,
    pub existing_outputs: BTreeSet<String>,
    pub task: ImportTaskSpec,
    pub creator: String,
}

pub fn task_spec(v: Value) -> ImportTaskSpec {
    let mut base = json!({
        "importName": "q4_import",
        "packageRef": {"name": "sales-q4"},
        "computeResourceMapping": [
            {"source": "sales_mc_dev", "destination": "sales_mc_prod"},
            {"source": "sales_holo_dev", "destination": "sales_holo_prod"}
        ]
    });
    for (k, v) in v.as_object().cloned().unwrap_or_default() {
        base[k] = v;
    }
    serde_json::from_value(base).expect("a valid ImportTaskSpec")
}

pub fn workspace(v: Value) -> WorkspaceSpec {
    let mut base = json!({
        "tenant": "acme",
        "namespace": "sales-prod",
        "projectName": "sales_prod",
        "region": "cn-shanghai",
        "computeResources": [
            {"name": "sales_mc_prod", "type": "MaxCompute", "project": "sales_prod_mc"},
            {"name": "sales_holo_prod", "type": "Hologres", "project": "sales_holo_inst"}
        ],
        "resourceGroups": [{"name": "serverless_default", "type": "Serverless"}]
    });
    for (k, v) in v.as_object().cloned().unwrap_or_default() {
        base[k] = v;
    }
    serde_json::from_value(base).expect("a valid WorkspaceSpec")
}

impl Setup {
    pub fn new(objects: Vec<Obj>) -> Self {
        Setup {
            objects: objects.into_iter().map(|o| o.0).collect(),
            source: SourceInfo {
                tenant: Some("acme".into()),
                workspace: Some("sales-dev".into()),
                project_name: Some("sales_dev".into()),
                region: Some("cn-shanghai".into()),
            },
            ws: workspace(json!({})),
            tenant: "acme".into(),
            edition: Edition::Professional,
            existing: BTreeMap::new(),
            existing_tables: BTreeSet::new(),
            existing_outputs: BTreeSet::new(),
            task: task_spec(json!({})),
            creator: "creator-42".into(),
        }
    }
    pub fn task(mut self, v: Value) -> Self {
        self.task = task_spec(v);
        self
    }
    pub fn ws(mut self, v: Value) -> Self {
        self.ws = workspace(v);
        self
    }
    pub fn edition(mut self, e: Edition) -> Self {
        self.edition = e;
        self
    }
    /// An object of the destination named `name`, under the name Ferry
    /// would derive for it.
    pub fn existing(self, t: ObjectType, name: &str) -> Self {
        let kube = crate::kube_name(t, name);
        self.existing_as(t, name, &kube)
    }

    /// An object of the destination named `name`, stored as `kube_name`
    /// (made by hand, under a name of its user's choosing).
    pub fn existing_as(mut self, t: ObjectType, name: &str, kube_name: &str) -> Self {
        self.existing
            .entry(t)
            .or_default()
            .insert(name.into(), kube_name.into());
        self
    }
    /// A scheduled task of the destination named `name` that declares
    /// `outputs` (whatever they are called).
    pub fn existing_task_with_outputs(mut self, name: &str, outputs: &[&str]) -> Self {
        self.existing_outputs
            .extend(outputs.iter().map(|o| o.to_string()));
        self.existing(ObjectType::ScheduledTask, name)
    }
    pub fn run(&self) -> Result<Plan, PlanError> {
        plan(&Inputs {
            objects: &self.objects,
            source: &self.source,
            destination: Destination {
                name: "sales-prod",
                workspace: &self.ws,
                tenant: &self.tenant,
                edition: self.edition,
            },
            existing: &self.existing,
            existing_tables: &self.existing_tables,
            existing_outputs: &self.existing_outputs,
            task: &self.task,
            creator: &self.creator,
            identity: TaskIdentity {
                name: "q4-import",
                uid: "0b9f7c1e-7d3a-4a8e-9d55-1b2c3d4e5f60",
                package_digest: "sha256:abc",
            },
        })
    }
    pub fn ok(&self) -> Plan {
        self.run().unwrap_or_else(|e| panic!("plan failed: {e}"))
    }
    pub fn err(&self) -> PlanError {
        match self.run() {
            Ok(_) => panic!("plan succeeded"),
            Err(e) => e,
        }
    }
}
