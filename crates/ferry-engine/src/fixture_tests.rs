//! A generated package of about a thousand objects, planned end to end.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;

use ferry_api::{
    FileResourceSpec, FunctionSpec, QualityRuleSpec, ScheduledTaskSpec, ServiceApiSpec, TableSpec,
};
use ferry_package::fixtures::FixtureSpec;
use ferry_package::{Limits, ObjectType, PackageObject, PackageReader};
use serde_json::{Value, json};

use crate::testutil::{Setup, task_spec, workspace};
use crate::{Action, Phase, Plan, work};

/// Every planned spec deserializes into its `XxxSpec`, with the real name.
pub fn assert_typed(p: &Plan) {
    for o in &p.objects {
        let v = Value::Object(o.spec.value());
        let name = match o.object_type {
            ObjectType::FileResource => {
                serde_json::from_value::<FileResourceSpec>(v).map(|s| s.common.name)
            }
            ObjectType::Function => {
                serde_json::from_value::<FunctionSpec>(v).map(|s| s.common.name)
            }
            ObjectType::Table => serde_json::from_value::<TableSpec>(v).map(|s| s.common.name),
            ObjectType::ScheduledTask => {
                serde_json::from_value::<ScheduledTaskSpec>(v).map(|s| s.common.name)
            }
            ObjectType::ServiceApi => {
                serde_json::from_value::<ServiceApiSpec>(v).map(|s| s.common.name)
            }
            ObjectType::QualityRule => {
                serde_json::from_value::<QualityRuleSpec>(v).map(|s| s.common.name)
            }
        };
        match name {
            Ok(n) => assert_eq!(n, o.name),
            Err(e) => panic!("{}/{}: {e}", o.object_type, o.name),
        }
    }
}

fn read(spec: &FixtureSpec) -> Vec<PackageObject> {
    let bytes = spec.to_bytes();
    let mut r = PackageReader::open(Cursor::new(bytes), &Limits::default()).expect("valid");
    let objects = r.objects().to_vec();
    objects
        .iter()
        .map(|o| r.with_code(o).expect("code"))
        .collect()
}

#[test]
fn a_generated_package_of_a_thousand_objects_plans_completely() {
    let fixture = FixtureSpec::new()
        .tasks(800)
        .layers(8)
        .tables(80)
        .file_resources(30)
        .functions(20)
        .quality_rules(50)
        .service_apis(20)
        .code_bytes(300);
    let objects = read(&fixture);
    assert_eq!(objects.len(), 1000);
    let mut s = Setup::new(vec![]);
    s.objects = objects;
    s.source = fixture.source();
    s.ws = workspace(json!({
        "computeResources": [
            {"name": "sales_mc_prod", "type": "MaxCompute"},
            {"name": "sales_holo_prod", "type": "Hologres"},
            {"name": "sales_emr_prod", "type": "EMR"}
        ],
        "resourceGroups": [{"name": "serverless_default"}, {"name": "dev_exclusive_01", "type": "Scheduling"}]
    }));
    s.task = task_spec(json!({
        "computeResourceMapping": [
            {"source": "sales_mc_dev", "destination": "sales_mc_prod"},
            {"source": "sales_holo_dev", "destination": "sales_holo_prod"},
            {"source": "sales_emr_dev", "destination": "sales_emr_prod"}
        ],
        "resourceGroupMapping": [{"source": "dev_serverless", "destination": "serverless_default"}],
        "dependencyMapping": [{"sourceProject": "sales_dev", "newProject": "sales_prod"}],
        "dryRun": {"tasks": ["load_orders_0"]},
        "dataServiceMapping": [{"source": "sales_api", "destination": "sales_api_prod"}]
    }));
    let existing_task = fixture.task_name(5);
    s = s.existing(ObjectType::ScheduledTask, &existing_task);
    let p = s.ok();
    assert_eq!(p.objects.len(), 1000);
    assert_typed(&p);

    let c = p.counts();
    assert_eq!((c.create, c.conflict, c.skip, c.update), (999, 1, 0, 0));
    assert_eq!(
        p.get(ObjectType::ScheduledTask, &existing_task)
            .unwrap()
            .action,
        Action::Conflict
    );

    // Kubernetes names are unique per type.
    let mut seen = BTreeSet::new();
    for o in &p.objects {
        assert!(
            seen.insert((o.object_type, o.kube_name.clone())),
            "{}",
            o.kube_name
        );
    }

    // Upstream tasks come first; rules come last.
    let mut position: BTreeMap<String, usize> = BTreeMap::new();
    for (i, o) in p.objects.iter().enumerate() {
        if o.object_type == ObjectType::ScheduledTask {
            for inp in o.spec.value()["inputs"].as_array().unwrap() {
                if let Some(&up) = position.get(inp.as_str().unwrap()) {
                    assert!(up < i);
                }
            }
            for out in o.spec.value()["outputs"].as_array().unwrap() {
                position.insert(out.as_str().unwrap().to_string(), i);
            }
        }
    }
    let types: Vec<ObjectType> = p.objects.iter().map(|o| o.object_type).collect();
    assert!(types.is_sorted(), "types follow the import order");

    // The rename reached code, outputs and parameters, and nothing else.
    for o in p
        .objects
        .iter()
        .filter(|o| o.object_type == ObjectType::ScheduledTask)
    {
        let spec = o.spec.value();
        let code = spec["script"]["content"].as_str().unwrap();
        assert!(!code.contains("sales_dev."), "{}", o.name);
        assert!(code.contains("sales_prod."), "{}", o.name);
        assert!(
            o.spec.value()["outputs"][0]
                .as_str()
                .unwrap()
                .starts_with("sales_prod.")
        );
        let inputs = o.spec.value()["inputs"].to_string();
        assert!(!inputs.contains("\"sales_dev."), "{inputs}");
        assert_ne!(o.spec.value()["resourceGroup"], "dev_serverless");
    }
    assert!(
        p.get(ObjectType::ScheduledTask, "load_orders_0")
            .unwrap()
            .dry_run
    );

    // Phases cover everything that is written, rules last.
    let importing = work(&p, Phase::Importing).write.len();
    let rules = work(&p, Phase::ImportingRules).write.len();
    assert_eq!((importing, rules), (949, 50));
    let rule_links = p
        .objects
        .iter()
        .filter_map(|o| o.rule.as_ref())
        .filter(|l| !l.associated_tasks.is_empty())
        .count();
    assert_eq!(rule_links, 25, "every even rule names a task output");
    let summary = p.summary(3);
    assert_eq!(summary.first_conflicts.len(), 1);
    let results = crate::type_results(&crate::records(&p));
    assert_eq!(results.len(), 6);
}
