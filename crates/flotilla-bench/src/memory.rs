//! Resident memory, for `idle-memory` and `process-idle-memory`.
//!
//! Each sample runs in a fresh process (this executable, re-run with the hidden
//! `probe-idle-memory SYSTEM` command), because a process that has already started and joined
//! threads keeps their stacks and malloc arenas cached, and a second pool in it would look
//! cheaper than a first. The probe prints one number: the KiB of VmRSS growth. There is no
//! warm-up for this scenario: a warm-up is exactly what it must not have.

use std::process::Command;

use crate::scenarios::Plan;

/// This process's resident set size in KiB, from the `VmRSS:` line of `/proc/self/status`.
pub(crate) fn vm_rss_kib() -> Result<i64, String> {
    read_vm_rss("/proc/self/status")
}

/// The resident set size in KiB of process `pid` (a pool's worker), from
/// `/proc/<pid>/status`.
pub(crate) fn vm_rss_kib_of(pid: u32) -> Result<i64, String> {
    read_vm_rss(&format!("/proc/{pid}/status"))
}

fn read_vm_rss(path: &str) -> Result<i64, String> {
    let status =
        std::fs::read_to_string(path).map_err(|err| format!("cannot read {path}: {err}"))?;
    parse_vm_rss(&status).ok_or_else(|| format!("no VmRSS line in {path}"))
}

fn parse_vm_rss(status: &str) -> Option<i64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `plan.reps` fresh probes of `system` and returns their KiB.
pub(crate) fn sample_in_fresh_processes(system: &str, plan: &Plan) -> Result<Vec<f64>, String> {
    let exe = std::env::current_exe().map_err(|err| format!("cannot find this program: {err}"))?;
    (0..plan.reps)
        .map(|_| {
            let output = Command::new(&exe)
                .args(["probe-idle-memory", system, "--workers"])
                .arg(plan.workers.to_string())
                .output()
                .map_err(|err| format!("cannot run the memory probe: {err}"))?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr);
                return Err(format!(
                    "memory probe failed ({}): {}",
                    output.status,
                    stderr.trim()
                ));
            }
            stdout
                .trim()
                .parse::<i64>()
                .map(|kib| kib as f64)
                .map_err(|_| format!("memory probe printed {:?}", stdout.trim()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_vm_rss_line() {
        let status = "Name:\tbench\nVmPeak:\t   9000 kB\nVmRSS:\t    4242 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(4242));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn reads_this_process() {
        assert!(vm_rss_kib().unwrap() > 0);
        assert!(vm_rss_kib_of(std::process::id()).unwrap() > 0);
    }
}
