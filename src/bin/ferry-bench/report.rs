//! The figures of one benchmark run, as the Markdown section of
//! BENCHMARKS.md.

use std::fmt::Write as _;
use std::path::Path;

use ferry::api::ImportPhase;
use ferry_package::benchmark::{command_line, cpu_model, kernel, load_average, mem_total, today};

use crate::stats::Samples;

pub const START: &str = "<!-- ferry-bench:start -->";
pub const END: &str = "<!-- ferry-bench:end -->";

/// Everything measured at one package size.
#[derive(Default)]
pub struct SizeResult {
    /// Objects the import created.
    pub objects: usize,
    pub package_bytes: usize,
    /// Concurrency of the direct creates.
    pub concurrency: usize,
    /// Objects per second.
    pub ferry: Samples,
    pub raw: Samples,
    pub raw_status: Samples,
    pub kubectl: Samples,
    pub requests_per_object: Samples,
    pub operator_rss_mib: Samples,
    /// The operator's CPU time per imported object, in milliseconds.
    pub operator_cpu_ms_per_object: Samples,
    /// Seconds per phase, per Ferry run.
    pub phases: Vec<Vec<(ImportPhase, f64)>>,
}

/// Direct creates at each concurrency tried.
#[derive(Default)]
pub struct Sweep {
    pub sample: usize,
    /// (concurrency, objects per second)
    pub points: Vec<(usize, f64)>,
    pub best: usize,
}

/// Many imports at once.
#[derive(Default)]
pub struct Many {
    pub tasks: usize,
    pub size: usize,
    /// Seconds until every task was Completed.
    pub all_ready: Samples,
    /// All objects over that time.
    pub throughput: Samples,
    /// Slowest task's time over the fastest's.
    pub spread: Samples,
    pub slowest: Samples,
    pub fastest: Samples,
    pub operator_rss_mib: Samples,
}

pub struct Report {
    quick: bool,
    operator: String,
    runs: usize,
    runs_large: usize,
    load_at_start: String,
    pub sweep: Option<Sweep>,
    pub sizes: Vec<SizeResult>,
    pub many: Option<Many>,
}

impl Report {
    pub fn new(quick: &bool, operator: &Path, runs: usize, runs_large: usize) -> Report {
        Report {
            quick: *quick,
            operator: operator.display().to_string(),
            runs,
            runs_large,
            load_at_start: load_average(),
            sweep: None,
            sizes: Vec::new(),
            many: None,
        }
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let profile = if self.operator.contains("/release/") {
            "release"
        } else {
            "debug"
        };
        let _ = writeln!(s, "{START}");
        let _ = writeln!(s, "## Import throughput\n");
        let _ = writeln!(
            s,
            "Measured with `bash hack/bench.sh` (src/bin/ferry-bench){} on {}.\n",
            if self.quick { ", `--quick`" } else { "" },
            today()
        );
        let _ = writeln!(
            s,
            "- Machine: {}, {} CPUs, {} memory, {}; load average {} when the runs started. \
             kube-apiserver, etcd, the operator and this benchmark share these CPUs.",
            cpu_model(),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            mem_total(),
            kernel(),
            self.load_at_start
        );
        let _ = writeln!(
            s,
            "- Versions: ferry {} at commit {}, {} ({profile} build of `ferry run`, a child process); \
             kube-apiserver and kubectl {}, etcd {}.",
            env!("CARGO_PKG_VERSION"),
            command_line("git", &["rev-parse", "--short", "HEAD"]),
            command_line("rustc", &["-V"]),
            tool_version("kube-apiserver", &["--version"]),
            tool_version("etcd", &["--version"]),
        );
        let _ = writeln!(
            s,
            "- Packages: the fixture generator, 80% scheduled tasks in an 8-layer DAG, 10% tables, \
             5% quality rules, 5% file resources and functions. The Ferry import maps every compute \
             resource, resource group and project and runs on an Enterprise tenant, so every object \
             is applied, committed and deployed (spec, then status: two writes).\n\
             - Each figure: median (min–max, runs), objects per second; {} run(s) per writer up to 10,000 objects, \
             {} above. Runs of the four writers are interleaved. Every run writes into a fresh \
             namespace; the objects are deleted after each run.\n\
             - **Ferry**: from the ImportTask's create to Completed (Verifying, Mapping, Importing, \
             Committing, Deploying, ImportingRules). **Direct create**: the same objects (as Ferry \
             left them) POSTed by kube-rs, at the best concurrency of the sweep below. **Direct \
             create + status**: POST then PUT of the status Ferry writes: Ferry's end state by hand. \
             **kubectl**: `kubectl apply --server-side -f` of one YAML file of the objects (spec \
             only), kubectl's default client-side rate limits.\n",
            self.runs, self.runs_large
        );
        let _ = writeln!(
            s,
            "| objects | package | Ferry import | direct create | direct create + status | kubectl apply --server-side | Ferry ÷ create | Ferry ÷ create + status | Ferry ÷ kubectl |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
        for r in &self.sizes {
            let ratio =
                |other: &Samples| format!("{:.0}%", 100.0 * r.ferry.median() / other.median());
            let _ = writeln!(
                s,
                "| {} | {:.1} MB | {} | {} | {} | {} | {} | {} | {} |",
                r.objects,
                r.package_bytes as f64 / 1e6,
                r.ferry.show(0),
                r.raw.show(0),
                r.raw_status.show(0),
                r.kubectl.show(0),
                ratio(&r.raw),
                ratio(&r.raw_status),
                ratio(&r.kubectl),
            );
        }
        let _ = writeln!(
            s,
            "\n| objects | apiserver requests per imported object | operator peak RSS (MiB) | operator CPU per object (ms) | Ferry phases, median run (s) |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|");
        for r in &self.sizes {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                r.objects,
                r.requests_per_object.show(2),
                r.operator_rss_mib.show(0),
                r.operator_cpu_ms_per_object.show(2),
                median_phases(r)
            );
        }
        let _ = writeln!(
            s,
            "\nRequests are every request the apiserver served from the ImportTask's create to its \
             end (`apiserver_request_total`): the operator's applies, status writes, lists, \
             events, report ConfigMaps and progress patches, and the benchmark's one watch. Peak \
             RSS is the operator process's VmHWM over the run, package fetch and verification \
             included."
        );
        if let Some(sweep) = &self.sweep {
            let _ = writeln!(
                s,
                "\n**Direct-create concurrency sweep** ({} objects spread over the types, one run each; \
                 Ferry writes with 32 requests in flight):\n",
                sweep.sample
            );
            let _ = writeln!(s, "| concurrency | objects/s |");
            let _ = writeln!(s, "|---|---|");
            for (c, r) in &sweep.points {
                let best = if *c == sweep.best { " (best)" } else { "" };
                let _ = writeln!(s, "| {c}{best} | {r:.0} |");
            }
        }
        if let Some(m) = &self.many {
            let _ = writeln!(
                s,
                "\n**{} ImportTasks of {} objects each, created at once** (each into its own \
                 workspace; one operator):\n",
                m.tasks, m.size
            );
            let _ = writeln!(s, "| figure | median (min–max, runs) |");
            let _ = writeln!(s, "|---|---|");
            let _ = writeln!(s, "| all Completed after (s) | {} |", m.all_ready.show(1));
            let _ = writeln!(s, "| objects/s over all tasks | {} |", m.throughput.show(0));
            let _ = writeln!(s, "| fastest task (s) | {} |", m.fastest.show(1));
            let _ = writeln!(s, "| slowest task (s) | {} |", m.slowest.show(1));
            let _ = writeln!(s, "| slowest ÷ fastest | {} |", m.spread.show(2));
            let _ = writeln!(
                s,
                "| operator peak RSS (MiB) | {} |",
                m.operator_rss_mib.show(0)
            );
        }
        let _ = write!(s, "{END}");
        s
    }
}

/// The phases of the run whose Ferry rate was the median.
fn median_phases(r: &SizeResult) -> String {
    let median = r.ferry.median();
    let Some(i) = r
        .ferry
        .0
        .iter()
        .enumerate()
        .min_by(|a, b| (a.1 - median).abs().total_cmp(&(b.1 - median).abs()))
        .map(|(i, _)| i)
    else {
        return "–".into();
    };
    r.phases
        .get(i)
        .map(|p| {
            p.iter()
                .filter(|(_, secs)| *secs >= 0.05)
                .map(|(phase, secs)| format!("{phase:?} {secs:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `kube-apiserver --version` and the like, from the test control plane's
/// tools.
fn tool_version(tool: &str, args: &[&str]) -> String {
    let Ok(bin) = ferry::testenv::tools_bin() else {
        return "unknown".into();
    };
    let line = command_line(&bin.join(tool).to_string_lossy(), args);
    line.split_whitespace()
        .find(|w| w.starts_with('v') || w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(|v| v.trim_start_matches('v').to_string())
        .map_or(line.clone(), |v| format!("v{v}"))
}
