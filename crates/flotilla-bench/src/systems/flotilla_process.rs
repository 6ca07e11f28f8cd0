//! `flotilla` on processes: `flotilla::ProcessPoolExecutor`, the baseline of the process
//! scenarios, and its row in `cpu-scaling`.
//!
//! Worker processes are this benchmark program itself, re-executed and caught by flotilla
//! before `main`; they run the `#[flotilla::task]` functions of [`work`](crate::work). The bench
//! bodies are the generic ones in [`scenarios`] (over flotilla's `Executor` trait).

use flotilla::ProcessPoolExecutor;

use super::{Failure, Measurement, System};
use crate::scenarios::{self, Payload, Plan, Scenario};

/// A flotilla process pool as a row of the tables.
#[derive(Debug)]
pub(crate) struct FlotillaProcesses {
    /// The row's name.
    pub(crate) name: &'static str,
    /// How `process-large-arg` carries its bytes.
    pub(crate) payload: Payload,
    /// The scenarios the row takes part in.
    pub(crate) scenarios: &'static [Scenario],
}

/// A pool of `workers` processes (flotilla starts them on demand, at the first tasks).
pub(crate) fn build(workers: usize) -> Result<ProcessPoolExecutor, String> {
    ProcessPoolExecutor::builder()
        .max_workers(workers)
        .build()
        .map_err(|err| err.to_string())
}

impl System for FlotillaProcesses {
    fn name(&self) -> &'static str {
        self.name
    }

    fn takes_part(&self, scenario: Scenario) -> bool {
        self.scenarios.contains(&scenario)
    }

    fn measure(&self, plan: &Plan) -> Result<Measurement, Failure> {
        let samples = scenarios::measure_executor(build, plan, self.payload)?;
        Ok(Measurement::from_samples(plan.items, &samples))
    }

    fn idle_memory_here(&self, _workers: usize) -> Result<i64, String> {
        Err("a process pool's idle memory is its worker's, read from /proc".to_owned())
    }
}
