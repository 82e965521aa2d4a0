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

/// DataWorks' migration package as its tooling zips it: every file of
/// `crates/ferry-package/tests/flowspec/migrationx/sales_export` (see the
/// README there for the aliyun/dataworks-spec sources of its shape) under
/// `sales_export/`.
fn migration_zip(dir: &Path) -> PathBuf {
    let root = examples().join("migrationx/sales_export");
    let mut entries = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(&root).unwrap().to_str().unwrap().to_string();
                entries.push(ferry_package::rawzip::RawZipEntry::file(
                    format!("sales_export/{rel}"),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    let zip = dir.join("sales_export.zip");
    std::fs::write(&zip, ferry_package::rawzip::build(&entries)).unwrap();
    zip
}

/// Issue 13: "Packages in the layout DataWorks' migration tooling writes (a
/// `SPEC.FORMAT` marker, `*.schedule.json` and friends): ... convert them
/// with `kubectl migrate pack`." The zip is packed (its data source and a
/// stray file named in warnings with their rules), uploaded and imported;
/// every task has exactly the dependencies its `*.schedule.json` wrote, its
/// code, and the file resource its binary.
#[tokio::test]
async fn a_dataworks_migration_package_is_packed_uploaded_and_imported_with_every_dependency() {
    let cp = control_plane();
    let c = cp.client(User::Admin).await.unwrap();
    let ns = "cli-pack-mx";
    destination(&c, "t-cli-pack-mx", Edition::Professional, ns).await;
    let source = migration_zip(cp.dir());
    let zip = cp.dir().join("packed-mx.zip");
    let zip_s = zip.to_str().unwrap();
    let r = migrate_with(
        Path::new("/nonexistent/kubeconfig"),
        &[
            "pack",
            source.to_str().unwrap(),
            "--project",
            "sales_dev",
            "-o",
            zip_s,
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    for line in [
        "1 FileResource, 3 ScheduledTask; 3 code files",
        "DataWorks migration layout (SPEC.FORMAT): 4 *.schedule.json documents, 1 resource file, 1 data source not imported",
        // load_orders 1 input + 2 flow, clean_orders 1 + 1, report_orders 2 + 3.
        "dependencies: 10 in the documents = 10 on tasks + 0 inside container nodes + 0 not imported",
        "sales_export/DataSource/odps/odps/PRD/sales_mc_dev/sales_mc_dev.json: data source \"sales_mc_dev\" (odps) not imported",
        "(rule: data-source-not-imported)",
        "sales_export/DataStudio/Business Flow/orders_flow/notes.txt: in DataWorks' migration layout, but neither a *.schedule.json document nor the code or resource file beside one: left out (rule: unknown-file)",
    ] {
        assert!(r.stdout.contains(line), "{line}\n{}", r.stdout);
    }
    assert_eq!(r.stdout.matches("warning:").count(), 2, "{}", r.stdout);

    let r = migrate(&["upload", zip_s, "--name", "packed-mx", "-n", ns]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = migrate(&[
        "preview",
        "packed-mx",
        "-n",
        ns,
        "--wait",
        "--timeout",
        "2m",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Ready"), "{}", r.stdout);
    // The layout names data sources without their type.
    let pkg: Api<MigrationPackage> = Api::namespaced(c.clone(), ns);
    let summary = pkg
        .get("packed-mx")
        .await
        .unwrap()
        .status
        .unwrap()
        .summary
        .unwrap();
    let listed: Vec<(String, String)> = summary
        .compute_resources
        .into_iter()
        .map(|r| (r.name, r.type_))
        .collect();
    assert_eq!(
        listed,
        [("sales_mc_dev".to_string(), "Unknown".to_string())]
    );
    assert_eq!(summary.resource_groups, ["group_dev"]);
    suspended_task(&c, ns, "packed-mx-import", "packed-mx").await;
    let r = migrate(&[
        "start",
        "packed-mx-import",
        "-n",
        ns,
        "--wait",
        "--timeout",
        "3m",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Completed"), "{}", r.stdout);

    let tasks: Api<ScheduledTask> = Api::namespaced(c.clone(), ns);
    let listed = tasks.list(&ListParams::default()).await.unwrap().items;
    let got: Edges = listed
        .iter()
        .map(|t| {
            let s = &t.spec;
            let cross = s
                .cross_cycle_dependencies
                .iter()
                .map(|d| format!("{:?} {}", d.type_, d.output.as_deref().unwrap_or("-")))
                .collect();
            (
                s.common.name.clone(),
                (s.inputs.clone(), s.outputs.clone(), cross),
            )
        })
        .collect();
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let want: Edges = [
        (
            "load_orders",
            (
                v(&["sales_prod_root"]),
                v(&["sales_prod.load_orders"]),
                v(&["CrossCycleDependsOnSelf sales_prod.load_orders"]),
            ),
        ),
        (
            "clean_orders",
            (
                v(&["sales_prod.load_orders"]),
                v(&["sales_prod.clean_orders"]),
                v(&[]),
            ),
        ),
        (
            "report_orders",
            (
                v(&["sales_prod.clean_orders", "sales_prod_root"]),
                v(&["sales_prod.report_orders"]),
                v(&["CrossCycleDependsOnOtherNode sales_prod.load_orders"]),
            ),
        ),
    ]
    .into_iter()
    .map(|(k, x)| (k.to_string(), x))
    .collect();
    assert_eq!(got, want);
    let by_name = |n: &str| listed.iter().find(|t| t.spec.common.name == n).unwrap();
    assert_eq!(
        by_name("load_orders").spec.script.content,
        "INSERT OVERWRITE TABLE sales_prod.orders SELECT * FROM sales_prod.ods_orders;\n"
    );
    assert_eq!(
        by_name("report_orders").spec.script.content,
        "#!/bin/bash\necho \"orders reported for ${bizdate}\"\n"
    );
    assert_eq!(
        by_name("load_orders").spec.compute_resource.as_deref(),
        Some("sales_mc_prod")
    );
    let resources: Api<FileResource> = Api::namespaced(c.clone(), ns);
    let jars = resources.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(jars.len(), 1);
    assert_eq!(jars[0].spec.common.name, "udf_orders.jar");
    let want_digest = sha256_of(
        &std::fs::read(examples().join(
            "migrationx/sales_export/DataStudio/Business Flow/orders_flow/MaxCompute/Resource/udf_orders.jar",
        ))
        .unwrap(),
    );
    assert_eq!(
        jars[0].spec.content_digest.as_deref(),
        Some(want_digest.as_str())
    );
}

/// A zip that is neither DataWorks' migration package nor anything `pack`
/// reads is refused, saying what it is not.
#[test]
fn pack_refuses_a_zip_that_is_not_a_dataworks_migration_package() {
    let dir = tempfile::tempdir().unwrap();
    let not_layout = dir.path().join("other.zip");
    std::fs::write(
        &not_layout,
        ferry_package::rawzip::build(&[ferry_package::rawzip::RawZipEntry::file(
            "a/b.schedule.json",
            b"{}".to_vec(),
        )]),
    )
    .unwrap();
    let out = dir.path().join("out.zip");
    let r = migrate_with(
        Path::new("/nonexistent/kubeconfig"),
        &[
            "pack",
            not_layout.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(
            "not a DataWorks migration package (no SPEC.FORMAT at its top or one folder down)"
        ),
        "{}",
        r.stderr
    );
    assert!(!out.exists());
}

/// The migration layout's folder as a source, with a task's code file and a
/// resource's binary missing: packed, each gap named with its rule.
#[test]
fn a_migration_layout_folder_with_missing_files_is_packed_naming_each_gap() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("sales_export");
    let from = examples().join("migrationx/sales_export");
    let mut stack = vec![from.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let to = src.join(p.strip_prefix(&from).unwrap());
            if p.is_dir() {
                stack.push(p);
            } else if !p.ends_with("clean_orders/clean_orders.sql")
                && !p.ends_with("Resource/udf_orders.jar")
            {
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(&p, &to).unwrap();
            }
        }
    }
    let out = dir.path().join("out.zip");
    let r = migrate_with(
        Path::new("/nonexistent/kubeconfig"),
        &["pack", src.to_str().unwrap(), "-o", out.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{r:?}");
    for line in [
        "clean_orders.schedule.json: ScheduledTask \"clean_orders\": no code file beside the document (rule: missing-code)",
        "udf_orders.jar.schedule.json: FileResource \"udf_orders.jar\": no resource file beside the document (rule: missing-resource-file)",
        "2 code files",
        "0 resource files",
    ] {
        assert!(r.stdout.contains(line), "{line}\n{}", r.stdout);
    }
    assert!(out.exists());
}
