//! Import benchmark: starts the test control plane (real kube-apiserver and
//! etcd), runs the real `ferry run` binary as a child process, and measures
//! side by side, in one run:
//!
//! 1. a Ferry import, from the ImportTask's creation to its end (Completed,
//!    every object applied, committed and deployed), in objects per second;
//! 2. the same objects created directly with kube-rs at the best
//!    concurrency of a sweep, both spec only (one request per object) and
//!    with the status Ferry writes (two requests, Ferry's end state);
//! 3. the same objects by `kubectl apply --server-side`;
//! 4. that at several package sizes;
//! 5. apiserver requests per imported object and the operator's peak RSS;
//! 6. many small imports at once: time to all Ready, and the spread.
//!
//! Runs of the different writers are interleaved, so a change in the
//! machine's load touches all of them alike. `--write BENCHMARKS.md`
//! replaces the section between the `ferry-bench` markers. Package
//! verification has its own benchmark (`verify-bench`, same file).

mod cluster;
mod direct;
mod report;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::Parser;
use ferry_package::fixtures::FixtureSpec;

use crate::cluster::{Bench, Captured, phase_seconds};
use crate::direct::Write;
use crate::report::{Many, Report, SizeResult, Sweep};
use crate::stats::{Samples, rate};

#[derive(Parser, Debug)]
#[command(about = "Ferry import benchmark against a real kube-apiserver")]
struct Args {
    /// A smoke run for CI: small sizes, one run each, under two minutes.
    #[arg(long)]
    quick: bool,
    /// Package sizes in objects (default 1000,10000,30000; quick: 300).
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Runs per size up to 10,000 objects (default 3; quick: 1).
    #[arg(long)]
    runs: Option<usize>,
    /// Runs for sizes above 10,000 objects (default 1).
    #[arg(long, default_value_t = 1)]
    runs_large: usize,
    /// Concurrencies tried for direct creates (default 8,16,32,64,128;
    /// quick: 32).
    #[arg(long, value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Imports started at once in the concurrency scenario (quick: 5).
    #[arg(long)]
    many_tasks: Option<usize>,
    /// Objects in each of those imports (quick: 60).
    #[arg(long)]
    many_size: Option<usize>,
    /// Measure Ferry's imports only (no direct creates, no kubectl): for
    /// profiling the operator.
    #[arg(long)]
    ferry_only: bool,
    /// The `ferry` binary to run (default: the one beside this binary).
    #[arg(long)]
    operator: Option<PathBuf>,
    /// Replace the ferry-bench section of this Markdown file.
    #[arg(long)]
    write: Option<PathBuf>,
}

/// The objects of an N-object package in the proportions: 80%
/// scheduled tasks in an 8-layer dependency DAG, 10% tables, 5% quality
/// rules, 5% file resources and functions.
fn fixture(objects: usize) -> FixtureSpec {
    FixtureSpec::new()
        .seed(7)
        .tasks(objects * 8 / 10)
        .layers(8)
        .tables(objects / 10)
        .quality_rules(objects / 20)
        .file_resources(objects / 40)
        .functions(objects - objects * 8 / 10 - objects / 10 - objects / 20 - objects / 40)
        .service_apis(0)
        .resource_bytes(256)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(mut args: Args) -> anyhow::Result<()> {
    if args.sizes.is_empty() {
        args.sizes = if args.quick {
            vec![300]
        } else {
            vec![1_000, 10_000, 30_000]
        };
    }
    if args.concurrency.is_empty() {
        args.concurrency = if args.quick {
            vec![32]
        } else {
            vec![8, 16, 32, 64, 128]
        };
    }
    let runs = args.runs.unwrap_or(if args.quick { 1 } else { 3 });
    let many_tasks = args.many_tasks.unwrap_or(if args.quick { 5 } else { 50 });
    let many_size = args.many_size.unwrap_or(if args.quick { 60 } else { 200 });
    let operator = match args.operator.clone() {
        Some(p) => p,
        None => std::env::current_exe()?
            .parent()
            .context("this binary's directory")?
            .join("ferry"),
    };
    if !operator.exists() {
        bail!(
            "no operator binary at {} (build it with `cargo build --release --bin ferry`, or pass --operator)",
            operator.display()
        );
    }
    let begun = Instant::now();
    let mut bench = Bench::start(operator.clone()).await?;
    eprintln!(
        "ferry-bench: control plane up in {:.1}s ({})",
        begun.elapsed().as_secs_f64(),
        bench.dir().display()
    );
    let mut report = Report::new(&args.quick, &operator, runs, args.runs_large);

    // The sweep runs on the size nearest 10,000 objects; do it first, so
    // every size's direct creates use its best concurrency. Sizes above
    // 10,000 objects come last, after the many-imports scenario: they take
    // longest, and every figure before them is already written.
    let mut sizes = args.sizes.clone();
    sizes.sort_by_key(|s| (*s > 10_000, s.abs_diff(10_000)));
    let many_runs = if args.quick || args.ferry_only {
        1
    } else {
        runs
    };
    let mut many_done = false;
    for (i, &size) in sizes.iter().enumerate() {
        if size > 10_000 && !many_done {
            report.many = Some(measure_many(&mut bench, many_tasks, many_size, many_runs).await?);
            many_done = true;
            publish(&report, args.write.as_deref())?;
        }
        let runs = if size > 10_000 { args.runs_large } else { runs };
        let result = measure_size(
            &mut bench,
            size,
            runs,
            (i == 0).then_some(args.concurrency.as_slice()),
            args.ferry_only,
            &mut report,
        )
        .await?;
        report.sizes.push(result);
        report.sizes.sort_by_key(|s| s.objects);
        publish(&report, args.write.as_deref())?;
    }
    if !many_done {
        report.many = Some(measure_many(&mut bench, many_tasks, many_size, many_runs).await?);
    }
    bench.stop_operator();
    println!("{}", report.markdown());
    publish(&report, args.write.as_deref())?;
    eprintln!("ferry-bench: done in {:.0}s", begun.elapsed().as_secs_f64());
    Ok(())
}

/// Writes what has been measured so far into the file's ferry-bench
/// section, so a run that fails later loses nothing finished.
fn publish(report: &Report, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    if let Some(file) = file {
        ferry_package::benchmark::write_section(
            file,
            report::START,
            report::END,
            &report.markdown(),
        )
        .with_context(|| format!("writing {}", file.display()))?;
        eprintln!("ferry-bench: wrote {}", file.display());
    }
    Ok(())
}

/// Every writer at one size, runs interleaved.
async fn measure_size(
    bench: &mut Bench,
    size: usize,
    runs: usize,
    sweep: Option<&[usize]>,
    ferry_only: bool,
    report: &mut Report,
) -> anyhow::Result<SizeResult> {
    let bytes = fixture(size).to_bytes();
    let package_bytes = bytes.len();
    let url = ferry::testenv::serve::serve(bytes).await?;
    let mut r = SizeResult {
        package_bytes,
        ..Default::default()
    };
    let mut objects: Vec<Captured> = Vec::new();
    let yaml = bench.dir().join(format!("objects-{size}.yaml"));
    for run in 0..runs {
        // Ferry.
        let ns = format!("ferry-{size}-{run}");
        bench.start_operator()?;
        bench.workspace(&ns).await?;
        bench.package(&ns, "bench", &url).await?;
        let before = bench.apiserver_requests().await?;
        let cpu_before = bench.operator_cpu_seconds();
        let imported = bench.import(&ns, "bench", "bench").await?;
        let requests = bench.apiserver_requests().await? - before;
        if let (Some(a), Some(b)) = (cpu_before, bench.operator_cpu_seconds()) {
            r.operator_cpu_ms_per_object
                .push(1000.0 * (b - a) / imported.objects.max(1) as f64);
        }
        let rss = bench.stop_operator();
        r.objects = imported.objects;
        r.ferry.push(rate(imported.objects, imported.elapsed));
        r.requests_per_object
            .push(requests / imported.objects.max(1) as f64);
        if let Some(kib) = rss {
            r.operator_rss_mib.push(kib as f64 / 1024.0);
        }
        r.phases.push(phase_seconds(&imported.status));
        eprintln!(
            "ferry-bench: {size}: Ferry run {run}: {} objects in {:.1}s = {:.0}/s, {:.2} requests/object, operator peak RSS {} MiB",
            imported.objects,
            imported.elapsed.as_secs_f64(),
            rate(imported.objects, imported.elapsed),
            requests / imported.objects.max(1) as f64,
            rss.map_or("?".into(), |k| (k / 1024).to_string())
        );
        if ferry_only {
            bench.clear(&ns).await?;
            continue;
        }
        if objects.is_empty() {
            objects = bench.capture(&ns).await?;
            direct::write_yaml(&objects, &yaml)?;
            if let Some(concurrencies) = sweep {
                report.sweep = Some(sweep_concurrency(bench, &objects, concurrencies).await?);
            }
        }
        bench.clear(&ns).await?;
        let best = report.sweep.as_ref().map_or(32, |s| s.best);
        r.concurrency = best;

        // Direct creates, spec only and with status.
        for (write, samples, tag) in [
            (Write::Create, &mut r.raw, "create"),
            (Write::CreateWithStatus, &mut r.raw_status, "status"),
        ] {
            let ns = format!("{tag}-{size}-{run}");
            direct::namespace(&bench.client, &ns).await?;
            let elapsed = direct::create_all(&bench.client, &ns, &objects, best, write).await?;
            samples.push(rate(objects.len(), elapsed));
            eprintln!(
                "ferry-bench: {size}: {write:?} run {run} at concurrency {best}: {:.1}s = {:.0}/s",
                elapsed.as_secs_f64(),
                rate(objects.len(), elapsed)
            );
            bench.clear(&ns).await?;
        }

        // kubectl apply --server-side.
        let ns = format!("kubectl-{size}-{run}");
        direct::namespace(&bench.client, &ns).await?;
        let elapsed =
            direct::kubectl_apply(&bench.kubectl()?, &bench.admin_kubeconfig(), &ns, &yaml).await?;
        r.kubectl.push(rate(objects.len(), elapsed));
        eprintln!(
            "ferry-bench: {size}: kubectl apply --server-side run {run}: {:.1}s = {:.0}/s",
            elapsed.as_secs_f64(),
            rate(objects.len(), elapsed)
        );
        bench.clear(&ns).await?;
    }
    let _ = std::fs::remove_file(&yaml);
    Ok(r)
}

/// Direct creates of an evenly spread sample of the objects at each
/// concurrency; the best one is used for every direct create after it.
async fn sweep_concurrency(
    bench: &Bench,
    objects: &[Captured],
    concurrencies: &[usize],
) -> anyhow::Result<Sweep> {
    let step = (objects.len() / 2_000).max(1);
    let sample: Vec<Captured> = objects.iter().step_by(step).cloned().collect();
    let mut sweep = Sweep {
        sample: sample.len(),
        ..Default::default()
    };
    for &c in concurrencies {
        let ns = format!("sweep-{c}");
        direct::namespace(&bench.client, &ns).await?;
        let elapsed = direct::create_all(&bench.client, &ns, &sample, c, Write::Create).await?;
        let r = rate(sample.len(), elapsed);
        eprintln!("ferry-bench: sweep: concurrency {c}: {r:.0}/s");
        sweep.points.push((c, r));
        bench.clear(&ns).await?;
    }
    sweep.best = sweep
        .points
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(32, |p| p.0);
    Ok(sweep)
}

/// `tasks` imports of `size` objects each, created at once, each into its
/// own workspace.
async fn measure_many(
    bench: &mut Bench,
    tasks: usize,
    size: usize,
    runs: usize,
) -> anyhow::Result<Many> {
    let url = ferry::testenv::serve::serve(fixture(size).to_bytes()).await?;
    let mut many = Many {
        tasks,
        size,
        ..Default::default()
    };
    for run in 0..runs {
        bench.start_operator()?;
        let names: Vec<String> = (0..tasks).map(|i| format!("many-{run}-{i}")).collect();
        let b = &*bench;
        futures::future::try_join_all(names.iter().map(|ns| async {
            b.workspace(ns).await?;
            b.package(ns, "bench", &url).await
        }))
        .await?;
        let started = Instant::now();
        let done =
            futures::future::try_join_all(names.iter().map(|ns| b.import(ns, "bench", "bench")))
                .await?;
        let all = started.elapsed();
        let mut each = Samples::default();
        for d in &done {
            each.push(d.elapsed.as_secs_f64());
        }
        let objects: usize = done.iter().map(|d| d.objects).sum();
        eprintln!(
            "ferry-bench: {tasks} imports of {size}: all Ready in {:.1}s ({:.0} objects/s), each {}",
            all.as_secs_f64(),
            rate(objects, all),
            each.show(1)
        );
        many.all_ready.push(all.as_secs_f64());
        many.throughput.push(rate(objects, all));
        many.spread.push(each.max() / each.min().max(1e-9));
        many.slowest.push(each.max());
        many.fastest.push(each.min());
        if let Some(kib) = bench.stop_operator() {
            many.operator_rss_mib.push(kib as f64 / 1024.0);
        }
        for ns in &names {
            bench.clear(ns).await?;
        }
    }
    Ok(many)
}
