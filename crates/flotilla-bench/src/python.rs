//! The `python` rows: CPython's `concurrent.futures.ThreadPoolExecutor` (thread scenarios),
//! `concurrent.futures.ProcessPoolExecutor` (process scenarios), in `process-map-chunked`
//! `multiprocessing.Pool`, and in `manager-dict` `multiprocessing.Manager().dict()`, run by
//! `python/bench.py`.
//!
//! The script is embedded in this program (`include_str!`) and run as `python3 -c SCRIPT
//! SCENARIO ITEMS WORKERS --reps N ...`, so the binary needs nothing but `python3` on `PATH`.
//! It does its own warm-up and timing (`time.perf_counter`) and prints one JSON object; this
//! module parses it. If `python3` is missing, the rows are skipped with a note.
//!
//! Python runs fewer items than the Rust systems in some scenarios (see
//! [`Plan::python_items`]); the tables compare per item. For `thread-map` and
//! `process-map-chunked` the script also returns a checksum of its results, checked here
//! against [`work::checksum`] and [`work::double_checksum`], which shows that both sides
//! computed the same thing.

use std::io::ErrorKind;
use std::process::Command;

use serde::Deserialize;

use crate::scenarios::{self, Plan, Scenario, Unit};
use crate::systems::{Failure, Measurement, System};
use crate::work::{self, WORK_ROUNDS};

/// The script, as shipped at `crates/flotilla-bench/python/bench.py`.
const SCRIPT: &str = include_str!("../python/bench.py");

/// The interpreter the rows run.
const PYTHON: &str = "python3";

/// A Python row.
#[derive(Debug)]
pub(crate) struct Python {
    /// The row's name.
    pub(crate) name: &'static str,
    /// Which of Python's pools it runs.
    pub(crate) pool: PythonPool,
}

/// Which of Python's pools a row runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PythonPool {
    /// `concurrent.futures`: threads for the thread scenarios, processes for the process
    /// scenarios; every scenario.
    Executor,
    /// `multiprocessing.Pool`: `process-map-chunked` only.
    MultiprocessingPool,
}

impl PythonPool {
    /// The script's `--pool` argument.
    fn arg(self) -> &'static str {
        match self {
            PythonPool::Executor => "executor",
            PythonPool::MultiprocessingPool => "mp",
        }
    }
}

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
        self.name
    }

    fn takes_part(&self, scenario: Scenario) -> bool {
        match self.pool {
            PythonPool::Executor => {
                scenario != Scenario::Thumbnails && !Scenario::SCOPED.contains(&scenario)
            }
            PythonPool::MultiprocessingPool => scenario == Scenario::ProcessMapChunked,
        }
    }

    fn measure(&self, plan: &Plan) -> Result<Measurement, Failure> {
        if plan.scenario == Scenario::IdleMemory {
            // One fresh interpreter per sample, like the Rust probes.
            let mut kib = Vec::with_capacity(plan.reps);
            for _ in 0..plan.reps {
                kib.extend(run(plan, self.pool, 0)?.kib);
            }
            return Ok(Measurement::from_samples(plan.items, &kib));
        }
        let answer = run(plan, self.pool, plan.reps)?;
        if plan.scenario.unit() == Unit::Memory {
            // process-idle-memory: one fresh pool per sample, in one interpreter.
            if answer.kib.len() != plan.reps {
                return Err(Failure::Failed(format!(
                    "bench.py returned {} samples, not {}",
                    answer.kib.len(),
                    plan.reps
                )));
            }
            return Ok(Measurement::from_samples(answer.items, &answer.kib));
        }
        if answer.seconds.len() != plan.reps {
            return Err(Failure::Failed(format!(
                "bench.py returned {} timings, not {}",
                answer.seconds.len(),
                plan.reps
            )));
        }
        let expected = match plan.scenario {
            Scenario::ThreadMap => Some(work::checksum(answer.items as u64)),
            Scenario::ProcessMapChunked => Some(work::double_checksum(answer.items as u64)),
            _ => None,
        };
        if let Some(expected) = expected
            && answer.checksum != Some(expected)
        {
            return Err(Failure::Failed(format!(
                "bench.py's work differs from work.rs: checksum {:?}, expected {expected}",
                answer.checksum
            )));
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

/// Runs the script on `plan` with `pool` and `reps` timed repetitions and parses its answer.
fn run(plan: &Plan, pool: PythonPool, reps: usize) -> Result<Answer, Failure> {
    let output = Command::new(PYTHON)
        .arg("-c")
        .arg(SCRIPT)
        .arg(match plan.scenario {
            // Python's reference for the cluster row: the same no-op tasks on its process pool.
            Scenario::RedisOverhead => Scenario::ProcessOverhead.name(),
            other => other.name(),
        })
        .arg(plan.python_items.to_string())
        .arg(plan.workers.to_string())
        .arg(format!("--reps={reps}"))
        .arg(format!("--rounds={WORK_ROUNDS}"))
        .arg(format!("--chunksize={}", plan.chunksize))
        .arg(format!("--fib={}", plan.fib_n))
        .arg(format!("--bytes={}", plan.bytes))
        .arg(format!("--pool={}", pool.arg()))
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
