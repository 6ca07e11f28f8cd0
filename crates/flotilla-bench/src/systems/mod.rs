//! The systems under test, and the two small traits the scenarios run them through.
//!
//! - [`Pool`] is what a thread scenario's bench body needs from a Rust thread pool: submit a
//!   closure and get a handle, wait on a handle, and map [`work`] in chunks. Each
//!   Rust system implements it once, in its own module; the bodies in
//!   [`scenarios`] are written once, generically. The process scenarios' bodies are generic
//!   over flotilla's own `Executor` trait instead (closures cannot cross into a process).
//! - [`System`] is one row of a table: a name, which scenarios it takes part in, and how it
//!   measures one. [`Native`] turns any [`Pool`] into a `System`; [`FlotillaProcesses`] runs
//!   the process bodies on a `ProcessPoolExecutor`; the Python rows ([`Python`]) run a
//!   script instead; the `thumbnails` rows ([`ThumbnailMaker`]) run whole programs. A name is
//!   unique within each scenario's table, and every table starts with its baseline row
//!   (`flotilla`, or `flotilla fast (processes)` in `thumbnails`).
//!
//! | system | what it is |
//! |---|---|
//! | `flotilla` | thread scenarios: `flotilla::ThreadPoolExecutor`: `spawn` returns a `Future`, `map_fn(..).chunksize(c)` for `thread-map`; process scenarios: `flotilla::ProcessPoolExecutor` running `#[flotilla::task]`s, `map(..).chunksize(c)` for `process-map-chunked`, a `serde_bytes::ByteBuf` for `process-large-arg` |
//! | `flotilla (Vec<u8>)` | `process-large-arg` only: the same pool with a plain `Vec<u8>`, which serde encodes byte by byte |
//! | `flotilla (processes)` | `cpu-scaling` only: the same `fib` tasks on a `ProcessPoolExecutor` |
//! | `flotilla` (`manager-dict`) | `flotilla::manager::Manager::new()` and a `Dict<u64, u64>` proxy |
//! | `python` | CPython's `concurrent.futures.ThreadPoolExecutor` (thread scenarios) or `ProcessPoolExecutor` (process scenarios), via `python/bench.py` |
//! | `python (mp.Pool)` | `process-map-chunked` only: CPython's `multiprocessing.Pool.map` |
//! | `rayon` | a `rayon::ThreadPool` of the same size: `spawn` plus a bounded(1) channel per task, `par_iter().map().collect()` for `thread-map` |
//! | `threadpool` | the `threadpool` crate: `execute` plus a crossbeam bounded(1) channel per task for the result |
//! | `floor` | hand-written: N threads reading `Box<dyn FnOnce() + Send>` jobs from one crossbeam channel, each job sending its result back through its own crossbeam bounded(1) channel — about the least a pool that hands back one result per task can do |
//! | `flotilla` (`redis-overhead`) | `flotilla_redis::RedisExecutor` with 2 `flotilla_redis::Worker` processes of 1 slot, on a `redis-server` this harness starts on 127.0.0.1 |
//! | `python rq` | `redis-overhead` only: RQ (`pip install rq`) with 2 default `rq worker`s (a forked work horse per job) on a server of its own, `python/rq_bench.py`; skipped with a note when RQ is missing |
//! | `flotilla scope`, `flotilla map_borrowed`, `rayon scope`, `rayon par_iter`, `std::thread::scope` | `scope-cpu` and `scope-small` only: a function over a borrowed slice through each one's scoped API (see `scoped.rs`); `flotilla scope` is the baseline |
//! | `serial` | `cpu-scaling` only: the same tasks run one after another on the calling thread |
//! | `flotilla fast (processes)`, `flotilla faithful (processes)`, `flotilla fast (threads)` | `thumbnails` only: `thumbnails::bench_run` in its fast or faithful mode, resizing on a flotilla process or thread pool, in a fresh child process (this program) per run |
//! | `python course` | `thumbnails` only: the Python course's design, `crates/thumbnails/bench/course.py` (Pillow) |
//! | `vipsthumbnail` | `thumbnails` only: libvips' `vipsthumbnail`, one pass per width over local copies of the photos |
//! | `python pillow draft()` | `thumbnails` only: Pillow with `Image.draft('RGB', (2w, 2w))` then LANCZOS to each width, one process per CPU, local files (`crates/thumbnails/bench/pillow_draft.py`) |
//! | `decode floor (djpeg)` | `thumbnails` only: libjpeg-turbo's `djpeg -scale 1/N` of each photo at the scale fast mode picks, as many at once as CPUs, output discarded: decoding alone |
//!
//! `rayon`, `threadpool` and `floor` all return results through a per-task bounded(1) channel,
//! the closest thing to a future each has; so differences among them and with flotilla come
//! from queueing and waking, not from how results travel. A shared result channel would be
//! cheaper still, but it does not give each task its own result.

mod floor;
mod flotilla_manager;
mod flotilla_pool;
mod flotilla_process;
mod flotilla_redis;
mod rayon_pool;
mod scoped;
mod serial;
mod threadpool_crate;
mod thumbnail_makers;

use std::fmt;

use thumbnails::{Mode, ResizeOn};

use self::flotilla_manager::FlotillaManager;
use self::flotilla_process::FlotillaProcesses;
use self::flotilla_redis::{FlotillaRedis, PythonRq};
use self::scoped::Scoped;
pub(crate) use self::scoped::ScopedPool;
pub(crate) use self::thumbnail_makers::{ThumbnailMaker, default_photos_dir, run_here};
use crate::memory;
use crate::python::{Python, PythonPool};
use crate::scenarios::{self, Payload, Plan, Scenario};
use crate::work::work;

/// What the scenario bodies need from a Rust thread pool.
pub(crate) trait Pool {
    /// What `submit` hands back: a future, or the receiving end of a result channel.
    type Handle<T: Send + 'static>;

    /// Queues `job`; its result comes back through the handle.
    fn submit<T, F>(&self, job: F) -> Result<Self::Handle<T>, String>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static;

    /// Blocks until the job behind `handle` has finished and returns its result.
    fn wait<T: Send + 'static>(&self, handle: Self::Handle<T>) -> Result<T, String>;

    /// [`work`] over `0..n`, results in input order, `chunksize` inputs per task.
    ///
    /// The default submits every chunk, then waits for each in order: what a user of a pool
    /// without a map of its own would write.
    fn map_work(&self, n: u64, chunksize: usize) -> Result<Vec<u64>, String> {
        let chunksize = chunksize.max(1) as u64;
        let handles = (0..n)
            .step_by(chunksize as usize)
            .map(|start| {
                let end = (start + chunksize).min(n);
                self.submit(move || (start..end).map(work).collect::<Vec<u64>>())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut results = Vec::with_capacity(n as usize);
        for handle in handles {
            results.extend(self.wait(handle)?);
        }
        Ok(results)
    }
}

/// Why a system has no row in a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The system cannot run here (`python3` is missing): a note, not an error.
    Unavailable(String),
    /// The system ran and failed: the run exits with an error status.
    Failed(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::Failed(message)
    }
}

/// One system's result for one scenario.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Measurement {
    /// How many items the system ran (the Python row runs fewer).
    pub(crate) items: usize,
    /// The median: seconds for all `items`, or KiB for `idle-memory`.
    pub(crate) value: f64,
    /// The median seconds of the same items run serially by the same system, when it reports
    /// it (Python's `cpu-scaling`, which has its own serial baseline).
    pub(crate) own_serial: Option<f64>,
    /// `thumbnails`: the largest peak RSS of one process over the timed runs, in KiB, when
    /// it could be measured.
    pub(crate) peak_rss_kib: Option<f64>,
}

impl Measurement {
    /// A measurement of `items` from its samples.
    pub(crate) fn from_samples(items: usize, samples: &[f64]) -> Measurement {
        Measurement {
            items,
            value: scenarios::median(samples),
            own_serial: None,
            peak_rss_kib: None,
        }
    }
}

/// One row of every table.
pub(crate) trait System {
    /// The row's name: `flotilla`, `python`, ...
    fn name(&self) -> &'static str;

    /// Whether this system has a row in `scenario`'s table.
    fn takes_part(&self, scenario: Scenario) -> bool;

    /// Runs `plan` and reports the median.
    fn measure(&self, plan: &Plan) -> Result<Measurement, Failure>;

    /// `idle-memory` in the calling process, which must be fresh: KiB of VmRSS growth. Run by
    /// the hidden `probe-idle-memory` command that [`measure`](System::measure) starts.
    fn idle_memory_here(&self, workers: usize) -> Result<i64, String>;
}

/// A Rust [`Pool`] as a [`System`].
pub(crate) struct Native<P> {
    name: &'static str,
    build: fn(usize) -> Result<P, String>,
    scenarios: &'static [Scenario],
}

impl<P> fmt::Debug for Native<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Native").field("name", &self.name).finish()
    }
}

impl<P: Pool> System for Native<P> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn takes_part(&self, scenario: Scenario) -> bool {
        self.scenarios.contains(&scenario)
    }

    fn measure(&self, plan: &Plan) -> Result<Measurement, Failure> {
        let samples = match plan.scenario {
            Scenario::IdleMemory => memory::sample_in_fresh_processes(self.name, plan)?,
            _ => {
                let pool = (self.build)(plan.workers)?;
                scenarios::time_on(&pool, plan)?
            }
        };
        Ok(Measurement::from_samples(plan.items, &samples))
    }

    fn idle_memory_here(&self, workers: usize) -> Result<i64, String> {
        scenarios::idle_memory(|| (self.build)(workers), workers)
    }
}

/// The scenarios of the Rust thread pools.
const THREAD_SCENARIOS: &[Scenario] = &[
    Scenario::ThreadOverhead,
    Scenario::ThreadRoundtrip,
    Scenario::ThreadMap,
    Scenario::CpuScaling,
    Scenario::IdleMemory,
];
const SERIAL_SCENARIOS: &[Scenario] = &[Scenario::CpuScaling];

/// Every system, the `flotilla` rows (the baselines of the ratios) first.
pub(crate) fn all() -> Vec<Box<dyn System>> {
    let mut systems: Vec<Box<dyn System>> = vec![
        Box::new(Native {
            name: "flotilla",
            build: flotilla_pool::build,
            scenarios: THREAD_SCENARIOS,
        }),
        Box::new(FlotillaProcesses {
            name: "flotilla",
            payload: Payload::ByteBuf,
            scenarios: &Scenario::PROCESS,
        }),
        Box::new(FlotillaProcesses {
            name: "flotilla (Vec<u8>)",
            payload: Payload::Vec,
            scenarios: &[Scenario::ProcessLargeArg],
        }),
        Box::new(FlotillaProcesses {
            name: "flotilla (processes)",
            payload: Payload::ByteBuf,
            scenarios: &[Scenario::CpuScaling],
        }),
        Box::new(FlotillaManager),
        Box::new(FlotillaRedis),
        Box::new(Python {
            name: "python",
            pool: PythonPool::Executor,
        }),
        Box::new(Python {
            name: "python (mp.Pool)",
            pool: PythonPool::MultiprocessingPool,
        }),
        Box::new(PythonRq),
        Box::new(Native {
            name: "rayon",
            build: rayon_pool::build,
            scenarios: THREAD_SCENARIOS,
        }),
        Box::new(Native {
            name: "threadpool",
            build: threadpool_crate::build,
            scenarios: THREAD_SCENARIOS,
        }),
        Box::new(Native {
            name: "floor",
            build: floor::build,
            scenarios: THREAD_SCENARIOS,
        }),
        Box::new(Native {
            name: "serial",
            build: serial::build,
            scenarios: SERIAL_SCENARIOS,
        }),
        Box::new(ThumbnailMaker::flotilla(Mode::Fast, ResizeOn::Processes)),
        Box::new(ThumbnailMaker::flotilla(
            Mode::Faithful,
            ResizeOn::Processes,
        )),
        Box::new(ThumbnailMaker::flotilla(Mode::Fast, ResizeOn::Threads)),
        Box::new(ThumbnailMaker::python_course()),
        Box::new(ThumbnailMaker::pillow_draft()),
        Box::new(ThumbnailMaker::vips()),
        Box::new(ThumbnailMaker::decode_floor()),
    ];
    systems.extend(
        scoped::Kind::ALL
            .into_iter()
            .map(|kind| Box::new(Scoped(kind)) as Box<dyn System>),
    );
    systems
}

/// The system called `name` in the `idle-memory` table, for its probe.
pub(crate) fn idle_memory_system(name: &str) -> Option<Box<dyn System>> {
    all()
        .into_iter()
        .find(|system| system.name() == name && system.takes_part(Scenario::IdleMemory))
}

/// Waits on a per-task result channel (the handle of `rayon`, `threadpool` and `floor`).
fn recv<T>(handle: crossbeam_channel::Receiver<T>) -> Result<T, String> {
    handle
        .recv()
        .map_err(|_| "the task was dropped without a result (did it panic?)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every Rust pool runs every body and returns the right results.
    #[test]
    fn every_pool_runs_the_bodies() {
        fn check<P: Pool>(pool: &P) {
            assert_eq!(pool.wait(pool.submit(|| 7).unwrap()).unwrap(), 7);
            let mapped = pool.map_work(2_500, 1_000).unwrap();
            assert_eq!(mapped, (0..2_500).map(work).collect::<Vec<_>>());
            scenarios::overhead(pool, 100).unwrap();
            scenarios::roundtrip(pool, 10).unwrap();
            scenarios::cpu_scaling(pool, 3, 10).unwrap();
        }
        for kind in scoped::Kind::ALL {
            let runner = scoped::build(kind, 2).unwrap();
            let inputs: Vec<u64> = (0..2_500).collect();
            assert_eq!(
                runner.apply(work, &inputs).unwrap(),
                inputs.iter().map(|&x| work(x)).collect::<Vec<_>>(),
                "{kind:?}"
            );
            assert_eq!(runner.apply(work, &[]).unwrap(), Vec::<u64>::new());
            scenarios::scoped_apply(&runner, work, &inputs[..3]).unwrap();
        }
        check(&flotilla_pool::build(2).unwrap());
        check(&rayon_pool::build(2).unwrap());
        check(&threadpool_crate::build(2).unwrap());
        check(&floor::build(2).unwrap());
        check(&serial::build(2).unwrap());
    }

    /// Every process body runs on a flotilla process pool (whose workers are this test
    /// binary, re-executed) and on a thread pool, through the same `Executor` trait.
    #[test]
    fn process_bodies_run_on_both_executors() {
        fn check<E: flotilla::Executor>(pool: &E) {
            scenarios::task_overhead(pool, 50).unwrap();
            scenarios::task_roundtrip(pool, 10).unwrap();
            scenarios::map_double(pool, 2_500, 1_000).unwrap();
            scenarios::large_arg(pool, Payload::ByteBuf, 100_000, 2).unwrap();
            scenarios::large_arg(pool, Payload::Vec, 100_000, 2).unwrap();
            scenarios::fib_tasks(pool, 3, 10).unwrap();
            assert!(scenarios::worker_rss_kib(pool).unwrap() > 0);
        }
        check(&flotilla_process::build(2).unwrap());
        let threads = flotilla::ThreadPoolExecutor::builder()
            .max_workers(2)
            .build()
            .unwrap();
        check(&threads);
        scenarios::startup(|| flotilla_process::build(2)).unwrap();
    }

    /// The manager body runs against a real manager and leaves what it wrote.
    #[test]
    fn the_manager_body_runs() {
        let manager = flotilla::manager::Manager::new().unwrap();
        let dict = manager.dict().unwrap();
        scenarios::manager_dict(&dict, 100).unwrap();
        scenarios::manager_dict(&dict, 50).unwrap();
        assert_eq!(dict.len().unwrap(), 50);
    }

    #[test]
    fn names_are_unique_per_table_and_the_baseline_comes_first() {
        let systems = all();
        for scenario in Scenario::ALL {
            let names: Vec<_> = systems
                .iter()
                .filter(|s| s.takes_part(scenario))
                .map(|s| s.name())
                .collect();
            assert_eq!(names[0], scenario.baseline(), "{scenario:?}");
            let mut unique = names.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), names.len(), "{scenario:?}: {names:?}");
        }
        assert!(idle_memory_system("floor").is_some());
        assert!(idle_memory_system("flotilla").is_some());
        assert!(idle_memory_system("flotilla (Vec<u8>)").is_none());
    }
}
