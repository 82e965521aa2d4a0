//! The order of the import's steps: file resources, functions, tables,
//! scheduled tasks upstream first, DataService APIs, quality rules last.
//! Within a type, objects are ordered by real name, so the same package
//! always gives the same steps (progress and resume depend on it).

use std::collections::{BTreeMap, BTreeSet};

use crate::ObjectType;

/// What ordering needs to know about an object.
#[derive(Clone, Debug)]
pub struct Node<'a> {
    pub object_type: ObjectType,
    pub name: &'a str,
    pub inputs: Vec<&'a str>,
    pub outputs: Vec<&'a str>,
}

/// Positions of `nodes` in import order. Scheduled tasks are sorted
/// topologically: a task whose input is another task's output comes after
/// it; among tasks whose upstreams are all placed, the smallest name goes
/// first. Inputs no task of the package produces (the root node, other
/// projects' outputs) impose no order.
///
/// `Err` holds the names of the tasks caught in a cycle (verification
/// refuses such packages; this keeps the engine safe on its own).
pub fn import_order(nodes: &[Node<'_>]) -> Result<Vec<usize>, Vec<String>> {
    let mut out = Vec::with_capacity(nodes.len());
    for t in ObjectType::IMPORT_ORDER {
        let mut of_type: Vec<usize> = (0..nodes.len())
            .filter(|&i| nodes[i].object_type == t)
            .collect();
        of_type.sort_by(|&a, &b| nodes[a].name.cmp(nodes[b].name).then(a.cmp(&b)));
        if t == ObjectType::ScheduledTask {
            out.extend(topological(nodes, &of_type)?);
        } else {
            out.extend(of_type);
        }
    }
    Ok(out)
}

fn topological(nodes: &[Node<'_>], tasks: &[usize]) -> Result<Vec<usize>, Vec<String>> {
    let mut producers: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in tasks {
        for o in &nodes[i].outputs {
            producers.entry(o).or_default().push(i);
        }
    }
    let mut downstream: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    let mut pending: BTreeMap<usize, usize> = tasks.iter().map(|&i| (i, 0)).collect();
    for &i in tasks {
        let ups: BTreeSet<usize> = nodes[i]
            .inputs
            .iter()
            .flat_map(|inp| producers.get(inp).into_iter().flatten().copied())
            .filter(|&u| u != i)
            .collect();
        *pending.get_mut(&i).expect("every task is pending") = ups.len();
        for u in ups {
            downstream.entry(u).or_default().insert(i);
        }
    }
    let key = |i: usize| (nodes[i].name, i);
    let mut ready: BTreeSet<(&str, usize)> = pending
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(&i, _)| key(i))
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    while let Some(first) = ready.pop_first() {
        let i = first.1;
        out.push(i);
        for &d in downstream.get(&i).into_iter().flatten() {
            let n = pending.get_mut(&d).expect("downstream is a task");
            *n -= 1;
            if *n == 0 {
                ready.insert(key(d));
            }
        }
    }
    if out.len() < tasks.len() {
        let placed: BTreeSet<usize> = out.iter().copied().collect();
        let mut stuck: Vec<String> = tasks
            .iter()
            .filter(|i| !placed.contains(i))
            .map(|&i| nodes[i].name.to_string())
            .collect();
        stuck.sort();
        return Err(stuck);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task<'a>(name: &'a str, inputs: &[&'a str], outputs: &[&'a str]) -> Node<'a> {
        Node {
            object_type: ObjectType::ScheduledTask,
            name,
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
        }
    }

    fn other(t: ObjectType, name: &str) -> Node<'_> {
        Node {
            object_type: t,
            name,
            inputs: vec![],
            outputs: vec![],
        }
    }

    fn names(nodes: &[Node<'_>]) -> Vec<String> {
        import_order(nodes)
            .unwrap()
            .into_iter()
            .map(|i| nodes[i].name.to_string())
            .collect()
    }

    #[test]
    fn types_follow_the_import_order_and_names_break_ties() {
        let nodes = vec![
            other(ObjectType::QualityRule, "r"),
            other(ObjectType::ServiceApi, "api"),
            task("t", &[], &[]),
            other(ObjectType::Table, "tb"),
            other(ObjectType::Function, "fb"),
            other(ObjectType::Function, "fa"),
            other(ObjectType::FileResource, "res"),
        ];
        assert_eq!(names(&nodes), ["res", "fa", "fb", "tb", "t", "api", "r"]);
    }

    #[test]
    fn upstream_tasks_come_first_even_when_their_names_sort_later() {
        let nodes = vec![
            task("a_report", &["p.z_load"], &["p.a_report"]),
            task("z_load", &["p_root"], &["p.z_load"]),
            task("m_mid", &["p.z_load", "other.x"], &["p.m_mid"]),
            task("b_final", &["p.m_mid", "p.a_report"], &["p.b_final"]),
        ];
        assert_eq!(names(&nodes), ["z_load", "a_report", "m_mid", "b_final"]);
    }

    #[test]
    fn order_does_not_depend_on_input_order() {
        let mut nodes = vec![
            task("c", &["p.a"], &["p.c"]),
            task("b", &["p.a"], &["p.b"]),
            task("a", &[], &["p.a"]),
            task("d", &[], &["p.d"]),
        ];
        let first = names(&nodes);
        nodes.reverse();
        assert_eq!(names(&nodes), first);
        assert_eq!(first, ["a", "b", "c", "d"]);
    }

    #[test]
    fn a_task_reading_its_own_output_is_not_a_cycle() {
        let nodes = vec![task("a", &["p.a"], &["p.a"])];
        assert_eq!(names(&nodes), ["a"]);
    }

    #[test]
    fn cycles_are_reported_by_name() {
        let nodes = vec![
            task("a", &["p.b"], &["p.a"]),
            task("b", &["p.a"], &["p.b"]),
            task("c", &[], &["p.c"]),
        ];
        assert_eq!(import_order(&nodes).unwrap_err(), ["a", "b"]);
    }
}
