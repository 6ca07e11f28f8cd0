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
//! | `thread-map` | bulk throughput on small work: 1,000,000 items of ~0.2 µs of CPU ([`work()`]) mapped in chunks of 1,000, results collected in order | 1,000,000 (10,000) | 2 |
//! | `cpu-scaling` | parallel speed-up on CPU-bound tasks: 16 × `fib(32)` on 2 workers, against the same tasks run serially on the calling thread (the `serial` row) | 16 (2) | 2 |
//! | `idle-memory` | what an idle pool costs: VmRSS growth in KiB from before building a pool of 2 threads to after each thread ran one task and went idle, in a fresh process per sample | 1 pool | 2 |
//! | `process-overhead` | a process task's life: 10,000 no-op tasks submitted one by one (chunksize 1), then every result read in order | 10,000 (5,000) | 2 |
//! | `process-roundtrip` | latency: submit one no-op task to a worker process and wait for its result before the next | 2,000 (2,000) | 2 |
//! | `process-map-chunked` | bulk throughput: `x * 2` mapped over 100,000 items in chunks of 1,000 | 100,000 (100,000) | 2 |
//! | `process-startup` | build a pool, get the first result, shut it down (the workers exit); milliseconds, median of 3 × `--reps` runs | 1 start | 2 |
//! | `process-large-arg` | a 64 MiB byte string sent to a worker and returned, twice per run; GiB/s of bytes moved both ways | 2 round trips | 2 |
//! | `process-idle-memory` | VmRSS in KiB of one idle worker process that has run one task (its pid comes from a task), one fresh pool per sample | 1 worker | 2 |
//! | `shared-counter` | shared state: 2 processes each add 1 to one shared counter 100,000 times, each addition under the counter's lock (flotilla's `shared::Value` with `get_lock()`, Python's `multiprocessing.Value` with `get_lock()`); from starting the processes to joining them | 100,000 per process (100,000) | 2 |
//! | `manager-dict` | a `multiprocessing.Manager` dict: 10,000 set+get round trips through a proxy (`insert` then `get` of the same key) to the manager's server process; flotilla's `manager::Dict` on its Unix socket against Python's `Manager().dict()` | 10,000 (10,000) | 1 server |
//! | `scope-cpu` | scoped work on borrowed data, CPU-bound: 16 × `fib(32)`, one per input of a borrowed `&[u64]`, on 2 workers: flotilla's `scope` (a task per input) and `map_borrowed` against `rayon::scope` (a spawn per input), `par_iter` and a hand-written `std::thread::scope` (one thread per worker) | 16 (-) | 2 |
//! | `scope-small` | the same, where overhead shows: 100,000 inputs of ~0.2 µs of CPU ([`work()`]), a scoped task (or rayon spawn) per input | 100,000 (-) | 2 |
//! | `thumbnails` | a real job: the 39-photo corpus served over HTTP on 127.0.0.1 made into JPEG thumbnails 200, 64 and 32 px wide by the `thumbnails` crate, the Python course's design (Pillow), Pillow with `draft()` and `vipsthumbnail`, next to libjpeg-turbo's decoding alone at the same scales (`djpeg`, the decode floor); per-image time, images/s and peak RSS, one fresh process per run | 39 photos (39) | one per CPU |
//!
//! Every timed row is the median of `--reps` repetitions run after one warm-up, on a pool built
//! before the warm-up (building the pool is not timed, except in `process-startup`). Python
//! runs fewer items where it is slower; compare the per-item column. `thumbnails` is slow, so
//! it runs 3 repetitions unless `--reps` is given.
//!
//! The photos of `thumbnails` are read from `/work/shared/corpus/photos` (the workspace's
//! `../shared/corpus/photos`), or from `--photos DIR` or `FLOTILLA_BENCH_PHOTOS`; without
//! them the scenario is skipped with a note (see [`Plan::select_photos`]).
//!
//! The thread scenarios' bodies are generic over [`Pool`], which takes closures. Closures cannot
//! cross into another process, so the process scenarios' bodies are generic over flotilla's own
//! [`Executor`] trait instead, and run `#[flotilla::task]` functions from the [`work`](mod@crate::work) module;
//! the unit tests run them on a `ThreadPoolExecutor` as well.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use flotilla::{Executor, Shutdown, Task};
use serde_bytes::ByteBuf;

use crate::memory;
use crate::systems::{Pool, ScopedPool};
use crate::work::{
    self, CountUpTask, DoubleTask, EchoBytesTask, EchoVecTask, FibTask, NoopTask, WorkerPidTask,
    fib, work,
};

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
    /// 10,000 no-op tasks on 2 worker processes, submitted, then every result read.
    ProcessOverhead,
    /// Submit one task to a worker process, wait for its result, repeat.
    ProcessRoundtrip,
    /// `x * 2` over 100,000 items on 2 worker processes, in chunks of 1,000.
    ProcessMapChunked,
    /// Build a process pool, get the first result, shut it down.
    ProcessStartup,
    /// A 64 MiB argument sent to a worker process and returned.
    ProcessLargeArg,
    /// RSS of one idle worker process.
    ProcessIdleMemory,
    /// 2 processes × 100,000 locked increments of one shared counter.
    SharedCounter,
    /// 10,000 set+get round trips through a manager's dict proxy.
    ManagerDict,
    /// The 39-photo corpus made into thumbnails over HTTP: flotilla, Python, vipsthumbnail.
    Thumbnails,
    /// 10,000 no-op tasks through Redis Streams to 2 local workers, then every result read.
    RedisOverhead,
    /// 16 × fib(32) over a borrowed slice: flotilla's scope and map_borrowed against rayon and
    /// std::thread::scope.
    ScopeCpu,
    /// 100,000 × ~0.2 µs over a borrowed slice, a scoped task per input: scope overhead.
    ScopeSmall,
}

/// What a scenario's number is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Seconds, and microseconds per item.
    Time,
    /// KiB of resident memory.
    Memory,
    /// Seconds for a batch of images: milliseconds per image, images per second, and the
    /// run's peak RSS.
    Images,
}

impl Scenario {
    /// Every scenario, in the order `compare` runs them.
    pub(crate) const ALL: [Scenario; 17] = [
        Scenario::ThreadOverhead,
        Scenario::ThreadRoundtrip,
        Scenario::ThreadMap,
        Scenario::CpuScaling,
        Scenario::IdleMemory,
        Scenario::ProcessOverhead,
        Scenario::ProcessRoundtrip,
        Scenario::ProcessMapChunked,
        Scenario::ProcessStartup,
        Scenario::ProcessLargeArg,
        Scenario::ProcessIdleMemory,
        Scenario::SharedCounter,
        Scenario::ManagerDict,
        Scenario::Thumbnails,
        Scenario::RedisOverhead,
        Scenario::ScopeCpu,
        Scenario::ScopeSmall,
    ];

    /// The scenarios of scoped work on borrowed data.
    pub(crate) const SCOPED: [Scenario; 2] = [Scenario::ScopeCpu, Scenario::ScopeSmall];

    /// The scenarios run on process pools.
    pub(crate) const PROCESS: [Scenario; 7] = [
        Scenario::ProcessOverhead,
        Scenario::ProcessRoundtrip,
        Scenario::ProcessMapChunked,
        Scenario::ProcessStartup,
        Scenario::ProcessLargeArg,
        Scenario::ProcessIdleMemory,
        Scenario::SharedCounter,
    ];

    /// The command-line name, also used in the JSON rows and by the Python script.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::ThreadOverhead => "thread-overhead",
            Scenario::ThreadRoundtrip => "thread-roundtrip",
            Scenario::ThreadMap => "thread-map",
            Scenario::CpuScaling => "cpu-scaling",
            Scenario::IdleMemory => "idle-memory",
            Scenario::ProcessOverhead => "process-overhead",
            Scenario::ProcessRoundtrip => "process-roundtrip",
            Scenario::ProcessMapChunked => "process-map-chunked",
            Scenario::ProcessStartup => "process-startup",
            Scenario::ProcessLargeArg => "process-large-arg",
            Scenario::ProcessIdleMemory => "process-idle-memory",
            Scenario::SharedCounter => "shared-counter",
            Scenario::ManagerDict => "manager-dict",
            Scenario::Thumbnails => "thumbnails",
            Scenario::RedisOverhead => "redis-overhead",
            Scenario::ScopeCpu => "scope-cpu",
            Scenario::ScopeSmall => "scope-small",
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
            Scenario::ProcessOverhead => {
                "no-op tasks on worker processes, all submitted, then every result read"
            }
            Scenario::ProcessRoundtrip => {
                "one no-op task sent to a worker process and awaited, one at a time: latency"
            }
            Scenario::ProcessMapChunked => {
                "x * 2 mapped on worker processes in chunks: bulk throughput"
            }
            Scenario::ProcessStartup => {
                "build a pool of 2 processes, get the first result, shut down: milliseconds"
            }
            Scenario::ProcessLargeArg => {
                "a 64 MiB argument sent to a worker process and returned: GiB/s"
            }
            Scenario::ProcessIdleMemory => {
                "VmRSS of one idle worker process that ran one task: idle cost"
            }
            Scenario::SharedCounter => {
                "processes adding to one shared counter under its lock: locked increments"
            }
            Scenario::ManagerDict => {
                "set+get round trips through a manager's dict proxy: shared-state latency"
            }
            Scenario::Thumbnails => {
                "photos over local HTTP made into 3 thumbnail sizes: flotilla, Python (Pillow, \
                 Pillow draft()), vipsthumbnail, and the djpeg decode floor"
            }
            Scenario::RedisOverhead => {
                "no-op tasks through a Redis server on loopback to 2 local workers, all \
                 submitted, then every result read"
            }
            Scenario::ScopeCpu => {
                "fib(32) per input of a borrowed slice: flotilla scope and map_borrowed against \
                 rayon scope, par_iter and std::thread::scope"
            }
            Scenario::ScopeSmall => {
                "~0.2 µs per input of a borrowed slice, a scoped task per input: scope overhead"
            }
        }
    }

    /// Whether the scenario reports time or memory.
    pub(crate) fn unit(self) -> Unit {
        match self {
            Scenario::IdleMemory | Scenario::ProcessIdleMemory => Unit::Memory,
            Scenario::Thumbnails => Unit::Images,
            _ => Unit::Time,
        }
    }

    /// The row every ratio of the scenario's table is measured against.
    pub(crate) fn baseline(self) -> &'static str {
        match self {
            Scenario::Thumbnails => THUMBNAILS_BASELINE,
            Scenario::ScopeCpu | Scenario::ScopeSmall => SCOPED_BASELINE,
            _ => "flotilla",
        }
    }

    /// Timed repetitions when `--reps` is not given: 5, or 3 for the slow `thumbnails`.
    pub(crate) fn default_reps(self) -> usize {
        match self {
            Scenario::Thumbnails => 3,
            _ => 5,
        }
    }
}

/// The baseline row of `scope-cpu` and `scope-small`.
pub(crate) const SCOPED_BASELINE: &str = "flotilla scope";

/// The baseline row of `thumbnails`.
pub(crate) const THUMBNAILS_BASELINE: &str = "flotilla fast (processes)";

/// The photos in the corpus that `thumbnails` is sized for.
const CORPUS_PHOTOS: usize = 39;

/// The file extensions `thumbnails` takes from the photo directory.
const PHOTO_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "webp", "gif"];

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
    /// The size of `process-large-arg`'s argument, in bytes; in `thumbnails`, the photos'
    /// total size.
    pub(crate) bytes: usize,
    /// The photos of `thumbnails`, by name (empty until [`select_photos`](Plan::select_photos)).
    pub(crate) photos: Vec<PathBuf>,
    /// Timed repetitions (after one warm-up), fresh processes for `idle-memory`, fresh pools
    /// for `process-idle-memory`, and 3 × `--reps` starts for `process-startup`.
    pub(crate) reps: usize,
}

/// `fib`'s argument at scale 1.
const FIB_N: u32 = 32;

/// The size of `process-large-arg`'s argument at scale 1: 64 MiB.
const LARGE_ARG_BYTES: usize = 64 << 20;

impl Plan {
    /// The plan of `scenario`, with item counts multiplied by `scale` (at least 1 each). In
    /// `cpu-scaling` the number of tasks stays 16 and `scale` shrinks each task instead
    /// (`fib(n)` costs about φⁿ); in `process-large-arg` the number of round trips stays 2 and
    /// `scale` shrinks the argument. Scenarios of one pool or one start are not scaled.
    pub(crate) fn new(scenario: Scenario, scale: f64, reps: usize) -> Plan {
        let (items, python_items) = match scenario {
            Scenario::ThreadOverhead => (100_000, 20_000),
            Scenario::ThreadRoundtrip => (20_000, 5_000),
            Scenario::ThreadMap => (1_000_000, 10_000),
            Scenario::CpuScaling => (16, 2),
            Scenario::IdleMemory | Scenario::ProcessStartup | Scenario::ProcessIdleMemory => (1, 1),
            Scenario::ProcessOverhead => (10_000, 5_000),
            Scenario::ProcessRoundtrip => (2_000, 2_000),
            Scenario::ProcessMapChunked => (100_000, 100_000),
            Scenario::ProcessLargeArg => (2, 2),
            Scenario::SharedCounter => (100_000, 100_000),
            Scenario::ManagerDict => (10_000, 10_000),
            Scenario::Thumbnails => (CORPUS_PHOTOS, CORPUS_PHOTOS),
            Scenario::RedisOverhead => (10_000, 2_000),
            Scenario::ScopeCpu => (16, 16),
            Scenario::ScopeSmall => (100_000, 100_000),
        };
        let by_scale = |n: usize| ((n as f64 * scale).round() as usize).max(1);
        let scaled = |n: usize| -> usize {
            match scenario {
                Scenario::CpuScaling
                | Scenario::ScopeCpu
                | Scenario::IdleMemory
                | Scenario::ProcessStartup
                | Scenario::ProcessLargeArg
                | Scenario::ProcessIdleMemory => n,
                _ => by_scale(n),
            }
        };
        let golden = (1.0 + 5f64.sqrt()) / 2.0;
        let fib_shift = (scale.ln() / golden.ln()).round();
        let fib_n = (f64::from(FIB_N) + fib_shift).clamp(5.0, 40.0) as u32;
        Plan {
            scenario,
            items: scaled(items),
            python_items: scaled(python_items),
            workers: match scenario {
                Scenario::Thumbnails => flotilla::cpu_count(),
                Scenario::ManagerDict => 1,
                _ => 2,
            },
            chunksize: 1_000,
            fib_n,
            bytes: by_scale(LARGE_ARG_BYTES),
            photos: Vec::new(),
            reps: match scenario {
                Scenario::ProcessStartup => reps * 3,
                _ => reps,
            },
        }
    }

    /// Picks the photos of `thumbnails` from `dir`: its JPEG, PNG, WebP and GIF files,
    /// all of them at `scale` 1; for a smaller `scale`, the `round(n × scale)` smallest (at
    /// least one), so that quick runs stay quick. Sets [`photos`](Plan::photos) (by name),
    /// [`bytes`](Plan::bytes) and the item counts.
    ///
    /// # Errors
    ///
    /// `dir` cannot be read or holds no photos: the message says why and how to point at
    /// another directory.
    pub(crate) fn select_photos(&mut self, dir: &Path, scale: f64) -> Result<(), String> {
        let hint = "point --photos or FLOTILLA_BENCH_PHOTOS at a directory of JPEGs";
        let entries = std::fs::read_dir(dir)
            .map_err(|err| format!("no photos at {}: {err}; {hint}", dir.display()))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|err| format!("cannot list {}: {err}", dir.display()))?;
            let path = entry.path();
            let is_photo = path
                .extension()
                .and_then(|ext| ext.to_str())
                .is_some_and(|ext| PHOTO_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()));
            let len = entry.metadata().map_err(|err| err.to_string())?.len();
            if is_photo && path.is_file() {
                found.push((len, path));
            }
        }
        if found.is_empty() {
            return Err(format!(
                "no JPEG, PNG, WebP or GIF files in {}; {hint}",
                dir.display()
            ));
        }
        let keep = ((found.len() as f64 * scale).round() as usize).clamp(1, found.len());
        found.sort();
        found.truncate(keep);
        found.sort_by(|a, b| a.1.cmp(&b.1));
        self.bytes = found.iter().map(|(len, _)| *len as usize).sum();
        self.photos = found.into_iter().map(|(_, path)| path).collect();
        self.items = self.photos.len();
        self.python_items = self.photos.len();
        Ok(())
    }

    /// Whether the scenario runs on worker processes.
    pub(crate) fn on_processes(&self) -> bool {
        Scenario::PROCESS.contains(&self.scenario)
    }

    /// `process-large-arg`'s argument size (`thumbnails`' photos) for humans: "64 MiB",
    /// "0.64 MiB".
    pub(crate) fn mib(&self) -> String {
        let mib = self.bytes as f64 / f64::from(1u32 << 20);
        if self.bytes.is_multiple_of(1 << 20) {
            format!("{mib:.0} MiB")
        } else {
            format!("{mib:.2} MiB")
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
            Scenario::ScopeCpu => format!(
                "{} × fib({}) over a borrowed slice, a scoped task per input",
                self.items, self.fib_n
            ),
            Scenario::ScopeSmall => format!(
                "{} inputs of ~0.2 µs of CPU work over a borrowed slice, a scoped task per input",
                self.items
            ),
            Scenario::IdleMemory => {
                "VmRSS growth of a pool whose threads each ran one task, now idle".to_owned()
            }
            Scenario::ProcessOverhead => format!(
                "{} no-op tasks submitted one by one (chunksize 1), then every result read",
                self.items
            ),
            Scenario::ProcessRoundtrip => {
                format!("{} no-op tasks, each awaited before the next", self.items)
            }
            Scenario::ProcessMapChunked => format!(
                "x * 2 over {} items, chunks of {}",
                self.items, self.chunksize
            ),
            Scenario::ProcessStartup => {
                "build a pool, get the first result, shut down (workers exit)".to_owned()
            }
            Scenario::ProcessLargeArg => format!(
                "a {} byte string sent to a worker and returned, {} round trips",
                self.mib(),
                self.items
            ),
            Scenario::ProcessIdleMemory => {
                "VmRSS of one idle worker process that ran one task".to_owned()
            }
            Scenario::SharedCounter => format!(
                "{} locked increments of one shared counter in each process, from start to join",
                self.items
            ),
            Scenario::ManagerDict => format!(
                "{} set+get round trips through a dict proxy, one client",
                self.items
            ),
            Scenario::RedisOverhead => format!(
                "{} no-op tasks through redis-server on 127.0.0.1, submitted one by one, then \
                 every result read",
                self.items
            ),
            Scenario::Thumbnails => format!(
                "{} photo{} ({}) served on 127.0.0.1, made into JPEG thumbnails 200, 64 and 32 \
                 px wide",
                self.items,
                if self.items == 1 { "" } else { "s" },
                self.mib()
            ),
        };
        let repeats = match self.scenario {
            Scenario::IdleMemory => format!("median of {} fresh processes", self.reps),
            Scenario::ProcessIdleMemory => format!("median of {} fresh pools", self.reps),
            _ => format!("median of {} after a warm-up", self.reps),
        };
        let workers = if self.scenario == Scenario::RedisOverhead {
            "workers of 1 slot each, on this machine"
        } else if self.on_processes() {
            "worker processes"
        } else if self.scenario == Scenario::Thumbnails {
            "resize workers (one per CPU)"
        } else if self.scenario == Scenario::ManagerDict {
            "manager server process"
        } else {
            "workers"
        };
        format!(
            "{} - {what}; {} {workers}; {repeats}",
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
        Scenario::Thumbnails => Err("thumbnails runs whole programs, not a pool".to_owned()),
        Scenario::ScopeCpu | Scenario::ScopeSmall => {
            Err(format!("{} runs on a scoped pool", plan.scenario.name()))
        }
        process => Err(format!("{} runs on a process pool", process.name())),
    }
}

/// Runs a scoped scenario of `plan` (`scope-cpu`, `scope-small`) on `pool`: warm-up, then
/// `plan.reps` timed runs (seconds) of [`scoped_apply`].
pub(crate) fn time_scoped<P: ScopedPool>(pool: &P, plan: &Plan) -> Result<Vec<f64>, String> {
    match plan.scenario {
        Scenario::ScopeCpu => {
            let inputs = vec![u64::from(plan.fib_n); plan.items];
            repeat(plan.reps, || scoped_apply(pool, fib_u64, &inputs))
        }
        Scenario::ScopeSmall => {
            let inputs: Vec<u64> = (0..plan.items as u64).collect();
            repeat(plan.reps, || scoped_apply(pool, work, &inputs))
        }
        other => Err(format!("{} is not a scoped scenario", other.name())),
    }
}

/// [`fib`] on a `u64` input, as the scoped bodies take them.
fn fib_u64(n: u64) -> u64 {
    fib(u32::try_from(n).unwrap_or(u32::MAX))
}

/// `scope-cpu`, `scope-small`: `f` over the borrowed `inputs` through the pool's scoped API,
/// outputs in order. The first and last outputs and the count are checked (untimed).
pub(crate) fn scoped_apply<P: ScopedPool>(
    pool: &P,
    f: fn(u64) -> u64,
    inputs: &[u64],
) -> Result<Duration, String> {
    let start = Instant::now();
    let out = pool.apply(f, inputs)?;
    let elapsed = start.elapsed();
    let ends = |v: &[u64]| (v.len(), v.first().copied(), v.last().copied());
    let expected = (
        inputs.len(),
        inputs.first().map(|&x| f(x)),
        inputs.last().map(|&x| f(x)),
    );
    if ends(&out) != expected {
        return Err(format!(
            "the scoped map returned {} outputs, not the {} expected in order",
            out.len(),
            inputs.len()
        ));
    }
    Ok(elapsed)
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

/// `thread-map`: [`work()`] over `0..n` through the pool's map, results in input order. The
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

/// How `process-large-arg` carries its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Payload {
    /// `serde_bytes::ByteBuf`: one byte string, copied as a whole.
    ByteBuf,
    /// A plain `Vec<u8>`: serde's sequence path, one `u8` at a time.
    Vec,
}

/// Runs a scenario of `plan` on executors made by `build` (given the number of workers) and
/// returns its samples: seconds, or KiB for `process-idle-memory`.
///
/// Most scenarios build one pool, warm it up (which starts its workers) and time `plan.reps`
/// runs on it; `process-startup` times building the pool itself, and `process-idle-memory`
/// builds a fresh pool for each sample. `payload` matters only to `process-large-arg`.
pub(crate) fn measure_executor<E: Executor>(
    build: impl Fn(usize) -> Result<E, String>,
    plan: &Plan,
    payload: Payload,
) -> Result<Vec<f64>, String> {
    let (items, reps) = (plan.items, plan.reps);
    match plan.scenario {
        Scenario::ProcessStartup => repeat(reps, || startup(|| build(plan.workers))),
        // Processes of their own, no pool.
        Scenario::SharedCounter => repeat(reps, || shared_counter(plan.workers, items)),
        Scenario::ProcessIdleMemory => (0..reps)
            .map(|_| worker_rss_kib(&build(plan.workers)?).map(|kib| kib as f64))
            .collect(),
        scenario => {
            let pool = build(plan.workers)?;
            match scenario {
                Scenario::ProcessOverhead => repeat(reps, || task_overhead(&pool, items)),
                Scenario::ProcessRoundtrip => repeat(reps, || task_roundtrip(&pool, items)),
                Scenario::ProcessMapChunked => {
                    repeat(reps, || map_double(&pool, items, plan.chunksize))
                }
                Scenario::ProcessLargeArg => {
                    repeat(reps, || large_arg(&pool, payload, plan.bytes, items))
                }
                Scenario::CpuScaling => repeat(reps, || fib_tasks(&pool, items, plan.fib_n)),
                other => Err(format!("{} does not run on an executor", other.name())),
            }
        }
    }
}

/// Turns an executor's error into the harness's.
fn text(err: flotilla::Error) -> String {
    err.to_string()
}

/// `process-overhead`: submit `n` no-op tasks, then read every result in submission order.
pub(crate) fn task_overhead<E: Executor>(pool: &E, n: usize) -> Result<Duration, String> {
    let start = Instant::now();
    let futures = (0..n as u64)
        .map(|i| pool.submit(NoopTask, i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(text)?;
    for future in futures {
        black_box(future.into_result().map_err(text)?);
    }
    Ok(start.elapsed())
}

/// `process-roundtrip`: `n` times, submit a no-op task and wait for its result.
pub(crate) fn task_roundtrip<E: Executor>(pool: &E, n: usize) -> Result<Duration, String> {
    let start = Instant::now();
    for i in 0..n as u64 {
        let future = pool.submit(NoopTask, i).map_err(text)?;
        black_box(future.into_result().map_err(text)?);
    }
    Ok(start.elapsed())
}

/// `process-map-chunked`: `map(double, 0..n).chunksize(c)`, results collected in order and
/// checked (untimed).
pub(crate) fn map_double<E: Executor>(
    pool: &E,
    n: usize,
    chunksize: usize,
) -> Result<Duration, String> {
    let start = Instant::now();
    let results = pool
        .map(DoubleTask, 0..n as u64)
        .chunksize(chunksize)
        .collect::<Result<Vec<u64>, _>>()
        .map_err(text)?;
    let elapsed = start.elapsed();
    let sum = results.iter().fold(0, |acc: u64, x| acc.wrapping_add(*x));
    if results.len() != n || sum != work::double_checksum(n as u64) {
        return Err(format!(
            "map returned {} results, not the {n} doubles in order",
            results.len()
        ));
    }
    Ok(elapsed)
}

/// `process-startup`: build a pool, get the result of one task, shut down and wait for the
/// workers to exit.
pub(crate) fn startup<E: Executor>(
    build: impl FnOnce() -> Result<E, String>,
) -> Result<Duration, String> {
    let start = Instant::now();
    let pool = build()?;
    black_box(
        pool.submit(NoopTask, 1)
            .map_err(text)?
            .into_result()
            .map_err(text)?,
    );
    pool.shutdown(Shutdown::new().wait(true));
    drop(pool);
    Ok(start.elapsed())
}

/// `process-large-arg`: `n` round trips of a `bytes`-long argument that the worker sends
/// back; each round trip sends what the last one returned. The buffer is made before the
/// clock starts, and its length and contents are checked after it stops.
pub(crate) fn large_arg<E: Executor>(
    pool: &E,
    payload: Payload,
    bytes: usize,
    n: usize,
) -> Result<Duration, String> {
    let check = |got: &[u8]| {
        if got.len() == bytes && got.first() == Some(&7) && got.last() == Some(&7) {
            Ok(())
        } else {
            Err(format!(
                "the worker sent back {} bytes, not {bytes}",
                got.len()
            ))
        }
    };
    match payload {
        Payload::ByteBuf => {
            let (elapsed, buf) =
                echo_rounds(pool, EchoBytesTask, ByteBuf::from(vec![7u8; bytes]), n)?;
            check(&buf)?;
            Ok(elapsed)
        }
        Payload::Vec => {
            let (elapsed, buf) = echo_rounds(pool, EchoVecTask, vec![7u8; bytes], n)?;
            check(&buf)?;
            Ok(elapsed)
        }
    }
}

/// `n` round trips of `buf` through `task`, which sends its argument back; each round trip
/// sends what the last one returned. Returns the time taken and the last value.
fn echo_rounds<E: Executor, T: Task<Output = <T as Task>::Args> + Copy>(
    pool: &E,
    task: T,
    mut buf: T::Args,
    n: usize,
) -> Result<(Duration, T::Args), String> {
    let start = Instant::now();
    for _ in 0..n {
        buf = pool
            .submit(task, buf)
            .map_err(text)?
            .into_result()
            .map_err(text)?;
    }
    Ok((start.elapsed(), buf))
}

/// `cpu-scaling` on an executor: submit `tasks` × `fib(fib_n)`, then wait for all of them.
pub(crate) fn fib_tasks<E: Executor>(
    pool: &E,
    tasks: usize,
    fib_n: u32,
) -> Result<Duration, String> {
    let start = Instant::now();
    let futures = (0..tasks)
        .map(|_| pool.submit(FibTask, fib_n))
        .collect::<Result<Vec<_>, _>>()
        .map_err(text)?;
    for future in futures {
        black_box(future.into_result().map_err(text)?);
    }
    Ok(start.elapsed())
}

/// `shared-counter`: starts `processes` processes that each add 1 to one shared
/// [`Value`](flotilla::shared::Value) `n` times under its lock, and joins them; the total is
/// checked (untimed).
pub(crate) fn shared_counter(processes: usize, n: usize) -> Result<Duration, String> {
    let counter = flotilla::shared::Value::new(0u64).map_err(text)?;
    let start = Instant::now();
    let children: Vec<flotilla::process::StartedProcess> = (0..processes)
        .map(|_| flotilla::process::Process::new(CountUpTask, (counter.clone(), n as u64)).start())
        .collect::<Result<_, _>>()
        .map_err(text)?;
    for child in &children {
        child.join();
    }
    let elapsed = start.elapsed();
    if let Some(child) = children.iter().find(|c| c.exitcode() != Some(0)) {
        return Err(format!(
            "a counting process ended with exit code {:?}",
            child.exitcode()
        ));
    }
    let total = counter.load().map_err(|err| err.to_string())?;
    let expected = (processes * n) as u64;
    if total != expected {
        return Err(format!("the counter reached {total}, not {expected}"));
    }
    Ok(elapsed)
}

/// `manager-dict`: `n` times, set key `i` to `i` through the proxy, then read it back. The
/// dict is emptied before the clock starts, and the values read are checked.
pub(crate) fn manager_dict(
    dict: &flotilla::manager::Dict<u64, u64>,
    n: usize,
) -> Result<Duration, String> {
    dict.clear().map_err(text)?;
    let start = Instant::now();
    for i in 0..n as u64 {
        dict.insert(&i, &i).map_err(text)?;
        let got = dict.get(black_box(&i)).map_err(text)?;
        if got != Some(i) {
            return Err(format!("the manager dict returned {got:?} for key {i}"));
        }
    }
    Ok(start.elapsed())
}

/// `process-idle-memory`: runs one task that reports its process id, then reads that
/// process's VmRSS in KiB while it waits idle for the next task.
pub(crate) fn worker_rss_kib<E: Executor>(pool: &E) -> Result<i64, String> {
    let pid = pool
        .submit(WorkerPidTask, ())
        .map_err(text)?
        .into_result()
        .map_err(text)?;
    memory::vm_rss_kib_of(pid)
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
        assert_eq!(Plan::new(Scenario::Thumbnails, 1.0, 3).items, 39);
    }

    #[test]
    fn select_photos_keeps_the_smallest_when_scaled_and_sorts_by_name() {
        let dir =
            std::env::temp_dir().join(format!("flotilla-bench-photos-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, len) in [
            ("c.jpg", 30),
            ("a.JPG", 20),
            ("b.png", 10),
            ("notes.txt", 1),
        ] {
            std::fs::write(dir.join(name), vec![0u8; len]).unwrap();
        }
        let mut plan = Plan::new(Scenario::Thumbnails, 1.0, 3);
        plan.select_photos(&dir, 1.0).unwrap();
        let names: Vec<_> = plan
            .photos
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["a.JPG", "b.png", "c.jpg"]);
        assert_eq!((plan.items, plan.python_items, plan.bytes), (3, 3, 60));
        assert!(
            plan.title().starts_with("thumbnails - 3 photos"),
            "{}",
            plan.title()
        );
        plan.select_photos(&dir, 0.5).unwrap();
        let names: Vec<_> = plan
            .photos
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["a.JPG", "b.png"]);
        plan.select_photos(&dir, 0.01).unwrap();
        assert_eq!(plan.items, 1);
        std::fs::remove_dir_all(&dir).unwrap();
        let err = plan.select_photos(&dir, 1.0).unwrap_err();
        assert!(err.contains("FLOTILLA_BENCH_PHOTOS"), "{err}");
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
