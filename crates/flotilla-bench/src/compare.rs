//! `compare`: every chosen scenario, for every system, side by side, in one run.
//!
//! Scenarios run one after another; within a scenario the systems run one after another on the
//! same machine, so their ratios are comparable even when absolute times drift. Each table is
//! printed as soon as its scenario is done; progress goes to stderr.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::PathBuf;

use crate::report::{self, Row};
use crate::scenarios::{Plan, Scenario};
use crate::systems::{self, Failure};

/// A validated `compare` command line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    /// The scenarios to run, in order.
    pub(crate) scenarios: Vec<Scenario>,
    /// Timed repetitions per system (after one warm-up).
    pub(crate) reps: usize,
    /// Multiplies item counts; 1 for real runs.
    pub(crate) scale: f64,
    /// Where to write the JSON rows, if anywhere.
    pub(crate) json: Option<PathBuf>,
}

/// How a `compare` run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Rows that failed (not skipped): nonzero makes the exit status nonzero.
    pub(crate) failures: usize,
}

/// The legend printed before the tables.
const LEGEND: &str = "\
systems: flotilla   = flotilla::ThreadPoolExecutor (the baseline of every ratio)
         python     = CPython's concurrent.futures.ThreadPoolExecutor (python/bench.py)
         rayon      = a rayon::ThreadPool of the same size
         threadpool = the threadpool crate
         floor      = N threads on one crossbeam channel of Box<dyn FnOnce>, a bounded(1)
                      crossbeam channel per task for its result (rayon and threadpool too)
         serial     = the calling thread, no pool (cpu-scaling only)
";

/// Runs `config`, writing the tables to `out`.
///
/// # Errors
///
/// Writing to `out` or the JSON file failed.
pub(crate) fn run(config: &Config, out: &mut dyn Write) -> io::Result<Outcome> {
    let systems = systems::all();
    let mut all_rows = Vec::new();
    let mut failures = 0;
    writeln!(out, "{LEGEND}")?;
    for &scenario in &config.scenarios {
        let plan = Plan::new(scenario, config.scale, config.reps);
        let mut rows = Vec::new();
        let mut notes = Vec::new();
        let mut own_serial = HashMap::new();
        for system in systems.iter().filter(|system| system.takes_part(scenario)) {
            eprintln!("{}: {} ...", scenario.name(), system.name());
            match system.measure(&plan) {
                Ok(measurement) => {
                    if let Some(serial) = measurement.own_serial {
                        own_serial.insert(system.name(), serial / measurement.value);
                    }
                    rows.push(Row::new(scenario, system.name(), &measurement));
                }
                Err(Failure::Unavailable(why)) => {
                    notes.push(format!("{}: skipped: {why}", system.name()));
                }
                Err(Failure::Failed(why)) => {
                    failures += 1;
                    notes.push(format!("{}: FAILED: {why}", system.name()));
                }
            }
        }
        notes.extend(scenario_notes(&plan, &rows, &own_serial));
        writeln!(
            out,
            "{}",
            report::table(&plan.title(), scenario.unit(), &rows, &notes)
        )?;
        out.flush()?;
        all_rows.extend(rows);
    }
    if let Some(path) = &config.json {
        report::write_json(path, &all_rows).map_err(io::Error::other)?;
        eprintln!("wrote {} rows to {}", all_rows.len(), path.display());
    }
    Ok(Outcome { failures })
}

/// The notes under a scenario's table. `own_serial` holds, per system that reported one, its
/// speed-up over its own serial run.
fn scenario_notes(plan: &Plan, rows: &[Row], own_serial: &HashMap<&str, f64>) -> Vec<String> {
    let mut notes = Vec::new();
    let python_ran = rows.iter().any(|row| row.system == "python");
    if python_ran && plan.python_items != plan.items {
        notes.push(format!(
            "python runs {} items, not {} (it is slower): compare per item",
            plan.python_items, plan.items
        ));
    }
    match plan.scenario {
        Scenario::ThreadMap => {
            let c = plan.chunksize;
            notes.push(format!(
                "flotilla: map_fn(work, 0..n).chunksize({c}); threadpool, floor: {c}-item \
                 chunks all submitted, then awaited in order; rayon: into_par_iter() (adaptive \
                 splitting); python: executor.map(chunksize={c}), which threads ignore: one \
                 task per item"
            ));
            if python_ran {
                notes.push(
                    "python pays the GIL for CPU work: its workers run the pure-Python loop one \
                     at a time (same work: its checksum matches work.rs)"
                        .to_owned(),
                );
            }
        }
        Scenario::CpuScaling => {
            let serial = rows
                .iter()
                .find(|row| row.system == "serial")
                .map(|row| row.per_item_us);
            let speedups: Vec<String> = rows
                .iter()
                .filter(|row| row.system != "serial")
                .filter_map(|row| {
                    if let Some(own) = own_serial.get(row.system.as_str()) {
                        Some(format!(
                            "{} {own:.2}× (over its own serial run)",
                            row.system
                        ))
                    } else {
                        serial.map(|s| format!("{} {:.2}×", row.system, s / row.per_item_us))
                    }
                })
                .collect();
            if !speedups.is_empty() {
                notes.push(format!(
                    "speed-up over serial on {} workers: {}",
                    plan.workers,
                    speedups.join(", ")
                ));
            }
            if python_ran {
                notes.push(
                    "python pays the GIL for CPU work: its threads cannot run fib in parallel"
                        .to_owned(),
                );
            }
        }
        Scenario::IdleMemory => notes.push(
            "KiB of VmRSS growth, one fresh process per sample, no warm-up; in the JSON, \
             seconds = 0 and per_item_us = KiB"
                .to_owned(),
        ),
        Scenario::ThreadOverhead | Scenario::ThreadRoundtrip => {}
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systems::Measurement;

    #[test]
    fn cpu_scaling_notes_report_speed_ups() {
        let plan = Plan::new(Scenario::CpuScaling, 1.0, 1);
        let row = |system: &str, items: usize, value: f64| {
            let m = Measurement {
                items,
                value,
                own_serial: None,
            };
            Row::new(Scenario::CpuScaling, system, &m)
        };
        let rows = [
            row("flotilla", 16, 1.0),
            row("python", 2, 10.0),
            row("serial", 16, 2.0),
        ];
        let own = HashMap::from([("python", 0.98)]);
        let notes = scenario_notes(&plan, &rows, &own);
        let speedups = notes
            .iter()
            .find(|note| note.starts_with("speed-up"))
            .unwrap();
        assert!(speedups.contains("flotilla 2.00×"), "{speedups}");
        assert!(speedups.contains("python 0.98× (over its own serial run)"));
        assert!(notes.iter().any(|note| note.contains("GIL")));
    }
}
