//! The scenarios: what each one measures, its sizes, and its one bench body.
//!
//! Every scenario is a single generic function over [`Pool`], run unchanged against each Rust
//! system (flume's `benches/basic.rs` shape); only `thread-map` lets a system use its own
//! idiomatic map. The Python row runs the same scenario in `python/bench.py`.
//!
//! | scenario | what it measures | items (python) | workers |
//! |---|---|---|---|
//! | `thread-overhead` | the cost of a task's life: 100,000 no-op tasks submitted, then every result read in order, so submit, queue, wake-up and result hand-back are all paid and overlap | 100,000 (20,000) | 2 |
//! | `thread-roundtrip` | latency: submit one no-op task and wait for its result before the next, so every task wakes an idle worker and the worker wakes the caller | 20,000 (5,000) | 2 |
//! | `thread-map` | bulk throughput on small work: 1,000,000 items of ~0.2 µs of CPU ([`work`]) mapped in chunks of 1,000, results collected in order | 1,000,000 (10,000) | 2 |
//! | `cpu-scaling` | parallel speed-up on CPU-bound tasks: 16 × `fib(32)` on 2 workers, against the same tasks run serially on the calling thread (the `serial` row) | 16 (2) | 2 |
//! | `idle-memory` | what an idle pool costs: VmRSS growth in KiB from before building a pool of 2 threads to after each thread ran one task and went idle, in a fresh process per sample | 1 pool | 2 |
//!
//! Every timed row is the median of `--reps` repetitions run after one warm-up, on a pool built
//! before the warm-up (building the pool is not timed). Python runs fewer items because it is
//! slower; compare the per-item column.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use clap::ValueEnum;

use crate::memory;
use crate::systems::Pool;
use crate::work::{fib, work};

/// A scenario, as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum)]
pub(crate) enum Scenario {
    /// 100,000 no-op tasks submitted, then every result read.
    ThreadOverhead,
    /// Submit one task, wait for its result, repeat.
    ThreadRoundtrip,
    /// 1,000,000 items of ~0.2 µs of CPU work, mapped in chunks.
    ThreadMap,
    /// 16 × fib(32) on 2 workers, against serial.
    CpuScaling,
    /// RSS growth of an idle pool of 2 threads.
    IdleMemory,
}

/// What a scenario's number is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Seconds, and microseconds per item.
    Time,
    /// KiB of resident memory.
    Memory,
}

impl Scenario {
    /// Every scenario, in the order `compare` runs them.
    pub(crate) const ALL: [Scenario; 5] = [
        Scenario::ThreadOverhead,
        Scenario::ThreadRoundtrip,
        Scenario::ThreadMap,
        Scenario::CpuScaling,
        Scenario::IdleMemory,
    ];

    /// The command-line name, also used in the JSON rows and by the Python script.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::ThreadOverhead => "thread-overhead",
            Scenario::ThreadRoundtrip => "thread-roundtrip",
            Scenario::ThreadMap => "thread-map",
            Scenario::CpuScaling => "cpu-scaling",
            Scenario::IdleMemory => "idle-memory",
        }
    }

    /// What the scenario measures, in one line.
    pub(crate) fn summary(self) -> &'static str {
        match self {
            Scenario::ThreadOverhead => {
                "no-op tasks all submitted, then every result read in order: per-task overhead"
            }
            Scenario::ThreadRoundtrip => {
                "one no-op task submitted and its result awaited, one at a time: round-trip latency"
            }
            Scenario::ThreadMap => {
                "items of ~0.2 µs of CPU work mapped in chunks, results in order: bulk throughput"
            }
            Scenario::CpuScaling => "fib(32) tasks on 2 workers against serial: parallel speed-up",
            Scenario::IdleMemory => {
                "VmRSS growth of a 2-thread pool whose threads each ran one task: idle cost"
            }
        }
    }

    /// Whether the scenario reports time or memory.
    pub(crate) fn unit(self) -> Unit {
        match self {
            Scenario::IdleMemory => Unit::Memory,
            _ => Unit::Time,
        }
    }
}

/// The sizes of one scenario's run, after `--scale`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plan {
    /// The scenario.
    pub(crate) scenario: Scenario,
    /// Items (tasks, map inputs, pools) for the Rust systems.
    pub(crate) items: usize,
    /// Items for the Python row, which is slower.
    pub(crate) python_items: usize,
    /// Worker threads in every pool.
    pub(crate) workers: usize,
    /// Inputs per task in `thread-map`.
    pub(crate) chunksize: usize,
    /// The argument of `fib` in `cpu-scaling`.
    pub(crate) fib_n: u32,
    /// Timed repetitions (after one warm-up), or fresh processes for `idle-memory`.
    pub(crate) reps: usize,
}

/// `fib`'s argument at scale 1.
const FIB_N: u32 = 32;

impl Plan {
    /// The plan of `scenario`, with item counts multiplied by `scale` (at least 1 each). In
    /// `cpu-scaling` the number of tasks stays 16 and `scale` shrinks each task instead
    /// (`fib(n)` costs about φⁿ).
    pub(crate) fn new(scenario: Scenario, scale: f64, reps: usize) -> Plan {
        let (items, python_items) = match scenario {
            Scenario::ThreadOverhead => (100_000, 20_000),
            Scenario::ThreadRoundtrip => (20_000, 5_000),
            Scenario::ThreadMap => (1_000_000, 10_000),
            Scenario::CpuScaling => (16, 2),
            Scenario::IdleMemory => (1, 1),
        };
        let scaled = |n: usize| -> usize {
            match scenario {
                Scenario::CpuScaling | Scenario::IdleMemory => n,
                _ => ((n as f64 * scale).round() as usize).max(1),
            }
        };
        let golden = (1.0 + 5f64.sqrt()) / 2.0;
        let fib_shift = (scale.ln() / golden.ln()).round();
        let fib_n = (f64::from(FIB_N) + fib_shift).clamp(5.0, 40.0) as u32;
        Plan {
            scenario,
            items: scaled(items),
            python_items: scaled(python_items),
            workers: 2,
            chunksize: 1_000,
            fib_n,
            reps,
        }
    }

    /// The heading of the scenario's table.
    pub(crate) fn title(&self) -> String {
        let what = match self.scenario {
            Scenario::ThreadOverhead => format!(
                "{} no-op tasks submitted, then every result read",
                self.items
            ),
            Scenario::ThreadRoundtrip => {
                format!("{} no-op tasks, each awaited before the next", self.items)
            }
            Scenario::ThreadMap => format!(
                "{} items of ~0.2 µs of CPU work, chunks of {}",
                self.items, self.chunksize
            ),
            Scenario::CpuScaling => format!("{} × fib({})", self.items, self.fib_n),
            Scenario::IdleMemory => {
                "VmRSS growth of a pool whose threads each ran one task, now idle".to_owned()
            }
        };
        let repeats = match self.scenario {
            Scenario::IdleMemory => format!("median of {} fresh processes", self.reps),
            _ => format!("median of {} after a warm-up", self.reps),
        };
        format!(
            "{} - {what}; {} workers; {repeats}",
            self.scenario.name(),
            self.workers
        )
    }
}

/// Runs `once` one time to warm up, then `reps` times, and returns the timed runs in seconds.
pub(crate) fn repeat(
    reps: usize,
    mut once: impl FnMut() -> Result<Duration, String>,
) -> Result<Vec<f64>, String> {
    once()?;
    (0..reps)
        .map(|_| once().map(|elapsed| elapsed.as_secs_f64()))
        .collect()
}

/// The median of `samples` (the mean of the middle two for an even count); `NaN` if empty.
pub(crate) fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Runs a timed scenario of `plan` on `pool`: warm-up, then `plan.reps` timed runs (seconds).
///
/// `idle-memory` is not timed and is refused here; see [`idle_memory`].
pub(crate) fn time_on<P: Pool>(pool: &P, plan: &Plan) -> Result<Vec<f64>, String> {
    let items = plan.items;
    match plan.scenario {
        Scenario::ThreadOverhead => repeat(plan.reps, || overhead(pool, items)),
        Scenario::ThreadRoundtrip => repeat(plan.reps, || roundtrip(pool, items)),
        Scenario::ThreadMap => repeat(plan.reps, || map(pool, items, plan.chunksize)),
        Scenario::CpuScaling => repeat(plan.reps, || cpu_scaling(pool, items, plan.fib_n)),
        Scenario::IdleMemory => Err("idle-memory is measured in a fresh process".to_owned()),
    }
}

/// `thread-overhead`: submit `n` no-op tasks, then read every result in submission order.
pub(crate) fn overhead<P: Pool>(pool: &P, n: usize) -> Result<Duration, String> {
    let start = Instant::now();
    let handles = (0..n)
        .map(|i| pool.submit(move || i))
        .collect::<Result<Vec<_>, _>>()?;
    for handle in handles {
        black_box(pool.wait(handle)?);
    }
    Ok(start.elapsed())
}

/// `thread-roundtrip`: `n` times, submit a no-op task and wait for its result.
pub(crate) fn roundtrip<P: Pool>(pool: &P, n: usize) -> Result<Duration, String> {
    let start = Instant::now();
    for i in 0..n {
        let handle = pool.submit(move || i)?;
        black_box(pool.wait(handle)?);
    }
    Ok(start.elapsed())
}

/// `thread-map`: [`work`] over `0..n` through the pool's map, results in input order. The
/// results are checked (untimed) so that no system can skip the work.
pub(crate) fn map<P: Pool>(pool: &P, n: usize, chunksize: usize) -> Result<Duration, String> {
    let start = Instant::now();
    let results = pool.map_work(n as u64, chunksize)?;
    let elapsed = start.elapsed();
    let last = n as u64 - 1;
    if results.len() != n
        || results.first() != Some(&work(0))
        || results.last() != Some(&work(last))
    {
        return Err(format!(
            "map returned {} results, not {n} in order",
            results.len()
        ));
    }
    Ok(elapsed)
}

/// `cpu-scaling`: submit `tasks` × `fib(fib_n)`, then wait for all of them.
pub(crate) fn cpu_scaling<P: Pool>(pool: &P, tasks: usize, fib_n: u32) -> Result<Duration, String> {
    let start = Instant::now();
    let handles = (0..tasks)
        .map(|_| pool.submit(move || fib(black_box(fib_n))))
        .collect::<Result<Vec<_>, _>>()?;
    for handle in handles {
        black_box(pool.wait(handle)?);
    }
    Ok(start.elapsed())
}

/// `idle-memory`, in this process: VmRSS growth in KiB from before `build` to after each of
/// the pool's `workers` threads has run one task. The tasks meet at a barrier, so each runs on
/// its own thread even in a pool that starts threads on demand.
pub(crate) fn idle_memory<P: Pool>(
    build: impl FnOnce() -> Result<P, String>,
    workers: usize,
) -> Result<i64, String> {
    let barrier = Arc::new(Barrier::new(workers));
    let before = memory::vm_rss_kib()?;
    let pool = build()?;
    let handles = (0..workers)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            pool.submit(move || {
                barrier.wait();
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for handle in handles {
        pool.wait(handle)?;
    }
    let after = memory::vm_rss_kib()?;
    drop(pool);
    Ok(after - before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn scale_shrinks_items_and_fib() {
        let full = Plan::new(Scenario::CpuScaling, 1.0, 5);
        assert_eq!((full.items, full.fib_n), (16, 32));
        let tiny = Plan::new(Scenario::CpuScaling, 0.01, 1);
        assert_eq!(tiny.items, 16);
        assert!(tiny.fib_n < 25);
        assert_eq!(Plan::new(Scenario::ThreadMap, 0.01, 1).items, 10_000);
        assert_eq!(Plan::new(Scenario::ThreadOverhead, 1e-9, 1).items, 1);
    }

    #[test]
    fn names_match_the_command_line() {
        for scenario in Scenario::ALL {
            let value = scenario
                .to_possible_value()
                .map(|v| v.get_name().to_owned());
            assert_eq!(value.as_deref(), Some(scenario.name()));
        }
    }
}
