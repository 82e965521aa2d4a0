//! Verification benchmark: builds a package of about `--size` bytes (30 MB
//! by default, the seed's upload limit) in a child process, then opens and
//! verifies it `--runs` times here, and reports median/min/max wall time and
//! this process's peak RSS (VmHWM). Generating in a child keeps the
//! generator's memory out of the peak.
//!
//! `verify-bench [--size BYTES] [--runs N] [--seed N] [--package PATH]
//! [--baseline OLD_VERIFY_BENCH [--baseline-label TEXT]] [--write FILE.md]`
//!
//! `--write` replaces (or appends) the section between the
//! `<!-- verify-bench:start -->` and `<!-- verify-bench:end -->` markers
//! (BENCHMARKS.md at the repository root), with the machine, the date, the
//! versions and the figures.
//!
//! `--baseline` runs another `verify-bench` binary (one built from an
//! earlier commit) on the same package, in the same session, and reports its
//! figures beside this build's: before/after numbers of a change.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use ferry_package::benchmark::{
    command_line, cpu_model, kernel, load_average, mem_total, peak_rss_kib, today, write_section,
};
use ferry_package::fixtures::FixtureSpec;
use ferry_package::{Limits, PackageReader};

const START: &str = "<!-- verify-bench:start -->";
const END: &str = "<!-- verify-bench:end -->";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("verify-bench: {e}");
            ExitCode::from(1)
        }
    }
}

fn run() -> Result<(), String> {
    let mut size: u64 = 30_000_000;
    let mut runs = 5usize;
    let mut seed = 7u64;
    let mut package: Option<PathBuf> = None;
    let mut write: Option<PathBuf> = None;
    let mut generate: Option<PathBuf> = None;
    let mut baseline: Option<PathBuf> = None;
    let mut baseline_label = String::from("baseline");
    let mut row_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--size" => size = v()?.parse().map_err(|_| "--size: not a number")?,
            "--runs" => runs = v()?.parse().map_err(|_| "--runs: not a number")?,
            "--seed" => seed = v()?.parse().map_err(|_| "--seed: not a number")?,
            "--package" => package = Some(v()?.into()),
            "--write" => write = Some(v()?.into()),
            "--generate" => generate = Some(v()?.into()),
            "--baseline" => baseline = Some(v()?.into()),
            "--baseline-label" => baseline_label = v()?,
            "--row-only" => row_only = true,
            _ => return Err(format!("unknown option {a}")),
        }
    }
    if let Some(out) = generate {
        let f = File::create(&out).map_err(|e| e.to_string())?;
        FixtureSpec::sized(size, seed)
            .write_to(f)
            .map_err(|e| e.to_string())?;
        return Ok(());
    }
    let origin = match &package {
        Some(p) => format!("`{}`", p.display()),
        None => format!("the generated fixture (`FixtureSpec::sized({size}, {seed})`)"),
    };
    let (path, temp) = match package {
        Some(p) => (p, false),
        None => {
            let p = std::env::temp_dir().join(format!("ferry-bench-{}.zip", std::process::id()));
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let t = Instant::now();
            let status = Command::new(exe)
                .args([
                    "--generate",
                    &p.to_string_lossy(),
                    "--size",
                    &size.to_string(),
                    "--seed",
                    &seed.to_string(),
                ])
                .status()
                .map_err(|e| e.to_string())?;
            if !status.success() {
                return Err("generating the package failed".into());
            }
            eprintln!("generated {} in {:.1?}", p.display(), t.elapsed());
            (p, true)
        }
    };
    let bytes = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
    let limits = Limits {
        max_package_bytes: bytes.max(Limits::default().max_package_bytes),
        ..Limits::default()
    };
    let load = load_average();
    let mut times = Vec::new();
    let mut objects = 0;
    let mut first_hwm = 0;
    for i in 0..runs.max(1) {
        let f = File::open(&path).map_err(|e| e.to_string())?;
        let t = Instant::now();
        let r = PackageReader::open(BufReader::new(f), &limits).map_err(|e| e.to_string())?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        objects = r.objects().len();
        drop(r);
        if i == 0 {
            first_hwm = peak_rss_kib().unwrap_or(0);
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let (min, max) = (times[0], times[times.len() - 1]);
    let hwm = peak_rss_kib().unwrap_or(0);
    let mib = |k: u64| k as f64 / 1024.0;
    // `| median | min | max | peak RSS, first run | peak RSS, all runs |`
    let row = format!(
        "| {median:.0} ms | {min:.0} ms | {max:.0} ms | {:.1} MiB | {:.1} MiB |",
        mib(first_hwm),
        mib(hwm)
    );
    if row_only {
        // For another build's `--baseline`: the figures only.
        println!("{row}");
        if temp {
            let _ = std::fs::remove_file(&path);
        }
        return Ok(());
    }
    let base_row = match &baseline {
        Some(exe) => Some(run_baseline(exe, &path, runs)?),
        None => None,
    };
    if temp {
        let _ = std::fs::remove_file(&path);
    }
    let mut rows = format!("| this build | {} {row}\n", times.len());
    if let Some(b) = &base_row {
        rows.push_str(&format!("| {baseline_label} | {} {b}\n", times.len()));
    }
    let report = format!(
        "{START}\n## Package verification\n\n\
         Measured with `cargo run --release -p ferry-package --bin verify-bench -- --write BENCHMARKS.md` \
         (crates/ferry-package/src/bin/verify-bench.rs) on {date}.\n\n\
         - Machine: {cpu}, {cpus} CPUs, {mem} memory, {kernel}; load average {load} when the runs started \
         (a shared build machine: wall times vary with its load).\n\
         - Versions: ferry-package {pkg} at commit {commit}, {rustc}, release profile.\n\
         - Package: {origin}, {mb:.1} MB, {objects} objects; \
         every entry inflated and hashed, every document parsed, the dependency graph checked, \
         streaming from a file.\n\
         - Peak RSS is the benchmark process's VmHWM: after the first run, and after all runs \
         (the allocator does not hand every freed page back between runs).\n\n\
         | build | runs | median | min | max | peak RSS, first run | peak RSS, all runs |\n\
         |---|---|---|---|---|---|---|\n\
         {rows}{END}\n",
        date = today(),
        cpu = cpu_model(),
        cpus = std::thread::available_parallelism().map_or(0, |n| n.get()),
        mem = mem_total(),
        kernel = kernel(),
        pkg = env!("CARGO_PKG_VERSION"),
        commit = command_line("git", &["rev-parse", "--short", "HEAD"]),
        rustc = command_line("rustc", &["-V"]),
        mb = bytes as f64 / 1e6,
    );
    print!("{report}");
    if let Some(file) = write {
        write_section(&file, START, END, &report)
            .map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(())
}

/// Runs another build of this benchmark on the same package and returns
/// its figures row. A build older than `--row-only` prints its own table;
/// its one data row is taken and laid out like ours (no first-run figure).
fn run_baseline(exe: &Path, package: &Path, runs: usize) -> Result<String, String> {
    let run = |runs: usize, extra: &[&str]| -> Result<String, String> {
        let out = Command::new(exe)
            .args([
                "--package",
                &package.to_string_lossy(),
                "--runs",
                &runs.to_string(),
            ])
            .args(extra)
            .output()
            .map_err(|e| format!("{}: {e}", exe.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{}: {}",
                exe.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    match run(runs, &["--row-only"]) {
        Ok(row) => Ok(row.trim().to_string()),
        Err(_) => {
            // `| 30.1 MB | objects | runs | median | min | max | peak RSS |`
            let cells = |out: String| -> Result<Vec<String>, String> {
                let line = out
                    .lines()
                    .find(|l| l.starts_with("| ") && l.contains(" MB |"))
                    .ok_or("the baseline printed no figures")?;
                Ok(line.split('|').map(|c| c.trim().to_string()).collect())
            };
            let all = cells(run(runs, &[])?)?;
            let first = cells(run(1, &[])?)?;
            let cell = |c: &[String], i: usize| c.get(i).cloned().unwrap_or_else(|| "?".into());
            Ok(format!(
                "| {} | {} | {} | {} | {} |",
                cell(&all, 4),
                cell(&all, 5),
                cell(&all, 6),
                cell(&first, 7),
                cell(&all, 7)
            ))
        }
    }
}
