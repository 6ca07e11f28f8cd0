//! The `python` row: CPython's `concurrent.futures.ThreadPoolExecutor`, run by
//! `python/bench.py`.
//!
//! The script is embedded in this program (`include_str!`) and run as `python3 -c SCRIPT
//! SCENARIO ITEMS WORKERS --reps N ...`, so the binary needs nothing but `python3` on `PATH`.
//! It does its own warm-up and timing (`time.perf_counter`) and prints one JSON object; this
//! module parses it. If `python3` is missing, the row is skipped with a note.
//!
//! Python runs fewer items than the Rust systems (see [`Plan::python_items`]); the tables
//! compare per item. For `thread-map` the script also returns a checksum of its results,
//! checked here against [`work::checksum`], which shows that both sides
//! computed the same thing.

use std::io::ErrorKind;
use std::process::Command;

use serde::Deserialize;

use crate::scenarios::{self, Plan, Scenario};
use crate::systems::{Failure, Measurement, System};
use crate::work::{self, WORK_ROUNDS};

/// The script, as shipped at `crates/flotilla-bench/python/bench.py`.
const SCRIPT: &str = include_str!("../python/bench.py");

/// The interpreter the row runs.
const PYTHON: &str = "python3";

/// Python's `ThreadPoolExecutor`.
#[derive(Debug)]
pub(crate) struct Python;

/// What the script prints.
#[derive(Debug, Deserialize)]
struct Answer {
    items: usize,
    #[serde(default)]
    seconds: Vec<f64>,
    #[serde(default)]
    serial_seconds: Vec<f64>,
    #[serde(default)]
    checksum: Option<u64>,
    #[serde(default)]
    kib: Vec<f64>,
}

impl System for Python {
    fn name(&self) -> &'static str {
        "python"
    }

    fn takes_part(&self, _scenario: Scenario) -> bool {
        true
    }

    fn measure(&self, plan: &Plan) -> Result<Measurement, Failure> {
        if plan.scenario == Scenario::IdleMemory {
            // One fresh interpreter per sample, like the Rust probes.
            let mut kib = Vec::with_capacity(plan.reps);
            for _ in 0..plan.reps {
                kib.extend(run(plan, 0)?.kib);
            }
            return Ok(Measurement::from_samples(plan.items, &kib));
        }
        let answer = run(plan, plan.reps)?;
        if answer.seconds.len() != plan.reps {
            return Err(Failure::Failed(format!(
                "bench.py returned {} timings, not {}",
                answer.seconds.len(),
                plan.reps
            )));
        }
        if plan.scenario == Scenario::ThreadMap {
            let expected = work::checksum(answer.items as u64);
            if answer.checksum != Some(expected) {
                return Err(Failure::Failed(format!(
                    "bench.py's work differs from work.rs: checksum {:?}, expected {expected}",
                    answer.checksum
                )));
            }
        }
        let mut measurement = Measurement::from_samples(answer.items, &answer.seconds);
        if !answer.serial_seconds.is_empty() {
            measurement.own_serial = Some(scenarios::median(&answer.serial_seconds));
        }
        Ok(measurement)
    }

    fn idle_memory_here(&self, _workers: usize) -> Result<i64, String> {
        Err("python measures its own memory in bench.py".to_owned())
    }
}

/// Runs the script on `plan` with `reps` timed repetitions and parses its answer.
fn run(plan: &Plan, reps: usize) -> Result<Answer, Failure> {
    let output = Command::new(PYTHON)
        .arg("-c")
        .arg(SCRIPT)
        .arg(plan.scenario.name())
        .arg(plan.python_items.to_string())
        .arg(plan.workers.to_string())
        .arg(format!("--reps={reps}"))
        .arg(format!("--rounds={WORK_ROUNDS}"))
        .arg(format!("--chunksize={}", plan.chunksize))
        .arg(format!("--fib={}", plan.fib_n))
        .output()
        .map_err(|err| match err.kind() {
            ErrorKind::NotFound => Failure::Unavailable(format!("{PYTHON} not found on PATH")),
            _ => Failure::Failed(format!("cannot run {PYTHON}: {err}")),
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.trim().lines().last().unwrap_or("no message");
        return Err(Failure::Failed(format!(
            "bench.py failed ({}): {last}",
            output.status
        )));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|err| Failure::Failed(format!("bench.py printed something else: {err}")))
}
