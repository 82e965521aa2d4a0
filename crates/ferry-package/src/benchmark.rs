//! What Ferry's benchmark binaries (`verify-bench` here, `ferry-bench` in
//! the operator crate) record about the machine they ran on, and how they
//! update their own section of BENCHMARKS.md. Here because this is the
//! lowest crate both depend on.

use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

/// Replaces the text between `start` and `end` in `file` with `section`
/// (which carries the markers itself), or appends it; creates the file with
/// a title when it does not exist.
pub fn write_section(file: &Path, start: &str, end: &str, section: &str) -> std::io::Result<()> {
    let old = std::fs::read_to_string(file).unwrap_or_default();
    let new = match (old.find(start), old.find(end)) {
        (Some(s), Some(e)) if e > s => {
            format!(
                "{}{}{}",
                &old[..s],
                section.trim_end(),
                &old[e + end.len()..]
            )
        }
        _ if old.is_empty() => format!("# Benchmarks\n\n{section}"),
        _ => format!("{}\n\n{section}", old.trim_end()),
    };
    std::fs::write(file, new)
}

/// Load average over the last minute.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// The first line of a command's output, or `unknown`.
pub fn command_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into())
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

pub fn mem_total() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kib| format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "unknown".into())
}

pub fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| format!("Linux {}", r.trim()))
        .unwrap_or_else(|_| std::env::consts::OS.to_string())
}

/// Today's date (UTC), `YYYY-MM-DD`.
pub fn today() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Days to civil date (Howard Hinnant's algorithm).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Peak resident set size (VmHWM) of this process, in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    peak_rss_kib_of("self")
}

/// Peak resident set size (VmHWM) of process `pid` (`self` for this one), in KiB.
pub fn peak_rss_kib_of(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
