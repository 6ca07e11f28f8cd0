//! Resident memory, for `idle-memory`, `process-idle-memory` and the peak RSS of the
//! `thumbnails` runs.
//!
//! Each sample runs in a fresh process (this executable, re-run with the hidden
//! `probe-idle-memory SYSTEM` command), because a process that has already started and joined
//! threads keeps their stacks and malloc arenas cached, and a second pool in it would look
//! cheaper than a first. The probe prints one number: the KiB of VmRSS growth. There is no
//! warm-up for this scenario: a warm-up is exactly what it must not have.
//!
//! A `thumbnails` run is a child process run under GNU time (`/usr/bin/time -f %M`), whose
//! `%M` is the child's `ru_maxrss` as `wait4` reports it: the peak RSS of the largest single
//! process among the child and the descendants it waited for (a process pool's workers count
//! one by one, a thread pool's threads together).

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

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

/// GNU time, which reports a child's peak RSS.
const GNU_TIME: &str = "/usr/bin/time";

/// What [`run_with_peak_rss`] saw.
#[derive(Debug)]
pub(crate) struct Run {
    /// The program's exit status and output.
    pub(crate) output: Output,
    /// Wall-clock time from spawning to exit.
    pub(crate) wall: Duration,
    /// The peak RSS of the largest process of the run in KiB, if GNU time is installed.
    pub(crate) peak_rss_kib: Option<u64>,
}

/// Runs `program` with `args` to completion, under GNU time when `/usr/bin/time` exists (its
/// report goes to `rss_file`, not to the program's stderr).
///
/// # Errors
///
/// The program (or GNU time) could not be started, as [`Command::output`] reports it.
pub(crate) fn run_with_peak_rss<I, S>(
    program: impl AsRef<OsStr>,
    args: I,
    rss_file: &Path,
) -> std::io::Result<Run>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let timed = Path::new(GNU_TIME).is_file();
    let mut command = if timed {
        let mut command = Command::new(GNU_TIME);
        command.args(["-f", "%M", "-o"]).arg(rss_file).arg(program);
        command
    } else {
        Command::new(program)
    };
    command.args(args);
    let start = Instant::now();
    let output = command.output()?;
    let wall = start.elapsed();
    let peak_rss_kib = if timed {
        std::fs::read_to_string(rss_file)
            .ok()
            .and_then(|report| parse_time_report(&report))
    } else {
        None
    };
    Ok(Run {
        output,
        wall,
        peak_rss_kib,
    })
}

/// The KiB in GNU time's `-f %M` report: its last line (a line before it says so when the
/// command failed).
fn parse_time_report(report: &str) -> Option<u64> {
    report
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())?
        .trim()
        .parse()
        .ok()
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
    fn parses_gnu_time_reports() {
        assert_eq!(parse_time_report("66280\n"), Some(66280));
        let failed = "Command exited with non-zero status 1\n131072\n";
        assert_eq!(parse_time_report(failed), Some(131_072));
        assert_eq!(parse_time_report(""), None);
    }

    #[test]
    fn runs_a_child_and_reads_its_peak_rss() {
        let file = std::env::temp_dir().join(format!("flotilla-bench-rss-{}", std::process::id()));
        let run = run_with_peak_rss("sh", ["-c", "echo hi"], &file).unwrap();
        assert!(run.output.status.success());
        assert_eq!(String::from_utf8_lossy(&run.output.stdout), "hi\n");
        if Path::new(GNU_TIME).is_file() {
            assert!(run.peak_rss_kib.is_some_and(|kib| kib > 0), "{run:?}");
        }
        let _ = std::fs::remove_file(&file);
    }

    #[test]
    fn reads_this_process() {
        assert!(vm_rss_kib().unwrap() > 0);
        assert!(vm_rss_kib_of(std::process::id()).unwrap() > 0);
    }
}
