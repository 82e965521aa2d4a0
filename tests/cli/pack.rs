//! `kubectl migrate pack` end to end: DataWorks' own FlowSpec files (a
//! published example and one of Ferry's examples of DataWorks' export shape)
//! and their code files packed, uploaded, previewed and imported through the
//! real binary on the real control plane; every task arrives with exactly
//! the dependency edges its documents wrote.

use std::collections::BTreeMap;

use super::*;

/// Per task: inputs, outputs, cross-cycle dependencies.
type Edges = BTreeMap<String, (Vec<String>, Vec<String>, Vec<String>)>;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crates/ferry-package/tests/flowspec")
}

/// A source folder as a user has it: two FlowSpec documents and the code
/// files their scripts' paths name.
fn sources(dir: &Path) -> PathBuf {
    let src = dir.join("pack-sources");
    let _ = std::fs::remove_dir_all(&src);
    for (path, text) in [
        ("path/to/datax_1.json", "{\"job\": {}}"),
        ("path/to/file2.sql", "INSERT INTO sales_dev.t SELECT 1;"),
        ("orders_daily/clean_orders.sql", "SELECT 2;"),
        ("orders_daily/load_orders.sql", "SELECT 3;"),
        ("orders_daily/report_orders.py", "print('report')"),
    ] {
        let p = src.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    for doc in ["manual_flow.yaml", "ferry-plain-ids.yaml"] {
        std::fs::copy(examples().join(doc), src.join(doc)).unwrap();
    }
    src
}

#[tokio::test]
async fn pack_upload_and_import_keep_every_dependency() {
    let cp = control_plane();
    let c = cp.client(User::Admin).await.unwrap();
    let ns = "cli-pack";
    destination(&c, "t-cli-pack", Edition::Professional, ns).await;
    let src = sources(cp.dir());
    let zip = cp.dir().join("packed.zip");
    let zip_s = zip.to_str().unwrap();

    // Offline: no cluster is needed to pack.
    let r = migrate_with(
        Path::new("/nonexistent/kubeconfig"),
        &[
            "pack",
            src.to_str().unwrap(),
            "--project",
            "sales_dev",
            "--tenant",
            "acme",
            "-o",
            zip_s,
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("8 ScheduledTask") && r.stdout.contains("5 code files"),
        "{}",
        r.stdout
    );
    // manual_flow.yaml 3 + ferry-plain-ids.yaml 8, all on tasks.
    assert!(
        r.stdout
            .contains("dependencies: 11 in the documents = 11 on tasks + 0 inside container nodes + 0 not imported"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("warning"), "{}", r.stdout);
    // -o with a format is refused for pack, and a .zip for anything else.
    let r = migrate(&["pack", src.to_str().unwrap(), "-o", "json"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("pack needs -o FILE.zip"), "{}", r.stderr);

    let r = migrate(&["upload", zip_s, "--name", "packed", "-n", ns]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = migrate(&["preview", "packed", "-n", ns, "--wait", "--timeout", "2m"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Ready"), "{}", r.stdout);
    suspended_task(&c, ns, "packed-import", "packed").await;
    let r = migrate(&[
        "start",
        "packed-import",
        "-n",
        ns,
        "--wait",
        "--timeout",
        "3m",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Completed"), "{}", r.stdout);

    let tasks: Api<ScheduledTask> = Api::namespaced(c.clone(), ns);
    let got: Edges = tasks
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .map(|t| {
            let s = t.spec;
            let cross = s
                .cross_cycle_dependencies
                .iter()
                .map(|d| format!("{:?} {}", d.type_, d.output.as_deref().unwrap_or("-")))
                .collect();
            (s.common.name, (s.inputs, s.outputs, cross))
        })
        .collect();
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // The dependency mapping renamed sales_dev to sales_prod everywhere.
    let want: Edges = [
        ("start", (v(&[]), v(&["sales_prod.start"]), v(&[]))),
        (
            "datax",
            (v(&["sales_prod.start"]), v(&["sales_prod.datax"]), v(&[])),
        ),
        (
            "sql",
            (v(&["sales_prod.datax"]), v(&["sales_prod.sql"]), v(&[])),
        ),
        (
            "end",
            (v(&["sales_prod.sql"]), v(&["sales_prod.end"]), v(&[])),
        ),
        (
            "extract_orders",
            (
                v(&[]),
                v(&["8745734768222459575", "sales_prod.extract_orders"]),
                v(&[]),
            ),
        ),
        (
            "clean_orders",
            (
                v(&["8745734768222459575", "sales_prod_root"]),
                v(&["7357222347128571852"]),
                v(&[]),
            ),
        ),
        (
            "load_orders",
            (
                v(&["7357222347128571852"]),
                v(&["sales_prod.load_orders"]),
                v(&["CrossCycleDependsOnSelf sales_prod.load_orders"]),
            ),
        ),
        (
            "report_orders",
            (
                v(&["sales_prod.load_orders"]),
                v(&["sales_prod.report_orders"]),
                v(&[
                    "CrossCycleDependsOnOtherNode other_project.daily_fx_rates",
                    "CrossCycleDependsOnChildren -",
                ]),
            ),
        ),
    ]
    .into_iter()
    .map(|(k, x)| (k.to_string(), x))
    .collect();
    assert_eq!(got, want);
    // Code came from the code files.
    let sql = tasks
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.spec.common.name == "sql")
        .unwrap();
    assert_eq!(
        sql.spec.script.content,
        "INSERT INTO sales_prod.t SELECT 1;"
    );
}

#[test]
fn pack_refuses_unresolved_dependencies_and_unsupported_layouts_writing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("bad.zip");
    let r = migrate_with(
        Path::new("/nonexistent/kubeconfig"),
        &[
            "pack",
            examples().join("ferry-unresolved.yaml").to_str().unwrap(),
            examples().join("ferry-unsupported.yaml").to_str().unwrap(),
            "-o",
            zip.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!zip.exists());
    for rule in [
        "unresolved-reference",
        "unresolved-dependency",
        "unknown-dependency-type",
        "unsupported-layout",
    ] {
        assert!(
            r.stderr.contains(&format!("(rule: {rule})")),
            "{rule}: {}",
            r.stderr
        );
    }
    assert!(r.stderr.contains("kind \"Component\""), "{}", r.stderr);
}
