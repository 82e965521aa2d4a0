//! Verification benchmark: builds a package of about `--size` bytes (30 MB
//! by default, the seed's upload limit) in a child process, then opens and
//! verifies it `--runs` times here, and reports median/min/max wall time and
//! this process's peak RSS (VmHWM). Generating in a child keeps the
//! generator's memory out of the peak.
//!
//! `verify-bench [--size BYTES] [--runs N] [--seed N] [--package PATH]
//! [--write FILE.md]`
//!
//! `--write` replaces (or appends) the section between the
//! `<!-- verify-bench:start -->` and `<!-- verify-bench:end -->` markers.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

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
    let mut times = Vec::new();
    let mut objects = 0;
    for _ in 0..runs.max(1) {
        let f = File::open(&path).map_err(|e| e.to_string())?;
        let t = Instant::now();
        let r = PackageReader::open(BufReader::new(f), &limits).map_err(|e| e.to_string())?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        objects = r.objects().len();
    }
    if temp {
        let _ = std::fs::remove_file(&path);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let (min, max) = (times[0], times[times.len() - 1]);
    let hwm = peak_rss_kib().unwrap_or(0);
    let report = format!(
        "{START}\n### Verification benchmark (`verify-bench`, release build)\n\n\
         | package | objects | runs | median | min | max | peak RSS |\n\
         |---|---|---|---|---|---|---|\n\
         | {:.1} MB | {objects} | {} | {median:.0} ms | {min:.0} ms | {max:.0} ms | {:.1} MiB |\n\n\
         Full verification (archive safety, every digest, every document parsed, dependency graph), \
         streaming from a file; peak RSS is the whole benchmark process (VmHWM).\n{END}\n",
        bytes as f64 / 1e6,
        times.len(),
        hwm as f64 / 1024.0
    );
    print!("{report}");
    if let Some(file) = write {
        let old = std::fs::read_to_string(&file).unwrap_or_default();
        let new = match (old.find(START), old.find(END)) {
            (Some(s), Some(e)) if e > s => {
                format!(
                    "{}{}{}",
                    &old[..s],
                    report.trim_end(),
                    &old[e + END.len()..]
                )
            }
            _ if old.is_empty() => report.clone(),
            _ => format!("{}\n\n{report}", old.trim_end()),
        };
        std::fs::write(&file, new).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(())
}

/// Peak resident set size of this process, in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
