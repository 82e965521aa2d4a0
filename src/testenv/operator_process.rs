//! The real `ferry run` binary as a child process, for the tests that kill
//! it and the benchmark that measures its memory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Runs "$@" and writes its pid to `FERRY_PID_FILE`; kills it when stdin
/// reaches end of file (the parent ended, however it ended), so no operator
/// outlives the run.
const GUARD: &str = r#"
exec 3<&0
"$@" </dev/null &
child=$!
echo "$child" > "$FERRY_PID_FILE"
( read -r _ <&3; kill -KILL "$child" 2>/dev/null ) &
watcher=$!
wait "$child"; status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

/// A running `ferry run`.
pub struct OperatorProcess {
    guard: Child,
    pid: u32,
    log: PathBuf,
}

impl OperatorProcess {
    /// Starts `binary run --storage-dir <storage>` with `kubeconfig`,
    /// logging (RUST_LOG=info) to `log`, every listener on a free loopback
    /// port (other runs on the machine may hold the defaults).
    pub fn start(
        binary: &Path,
        kubeconfig: &Path,
        storage: &Path,
        log: &Path,
    ) -> anyhow::Result<OperatorProcess> {
        let pid_file = log.with_extension("pid");
        let _ = std::fs::remove_file(&pid_file);
        let out = std::fs::File::create(log)
            .with_context(|| format!("creating the operator log {}", log.display()))?;
        let guard = Command::new("bash")
            .arg("-c")
            .arg(GUARD)
            .arg("ferry-operator-guard")
            .arg(binary)
            .arg("run")
            .arg("--storage-dir")
            .arg(storage)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .env("FERRY_METRICS_BIND_ADDRESS", "127.0.0.1:0")
            .env("FERRY_HEALTH_BIND_ADDRESS", "127.0.0.1:0")
            .env("FERRY_ARTIFACT_BIND_ADDRESS", "127.0.0.1:0")
            // Test packages are served from 127.0.0.1.
            .env("FERRY_ALLOW_PRIVATE_SOURCES", "true")
            .env("FERRY_PID_FILE", &pid_file)
            .stdin(Stdio::piped())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
            {
                break pid;
            }
            if Instant::now() > deadline {
                bail!("the operator guard wrote no pid to {}", pid_file.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(OperatorProcess {
            guard,
            pid,
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The process's peak resident set (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        ferry_package::benchmark::peak_rss_kib_of(&self.pid.to_string())
    }

    /// CPU time the process has used (user + system), in seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        // Fields after the command name, which is in parentheses and may
        // hold spaces: utime and stime are the 12th and 13th of them.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        // USER_HZ is 100 on every Linux architecture Ferry runs on.
        Some(ticks / 100.0)
    }

    /// SIGKILL: no shutdown, no last status write.
    pub fn kill(mut self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -KILL {} failed", self.pid);
        }
        // The guard exits once its child is gone.
        let _ = self.guard.wait();
        Ok(())
    }

    /// The last `n` lines of the operator's log, for failure messages.
    pub fn tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        // Closing the guard's stdin kills the operator (no-op after `kill`).
        drop(self.guard.stdin.take());
        let _ = self.guard.wait();
    }
}
