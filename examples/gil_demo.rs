//! The GIL demo: the same CPU-bound work serially, on a thread pool and on a process pool.
//!
//! The Python original times `fib(30)` a few times in a row, then the same calls on a
//! `ThreadPoolExecutor` and on a `ProcessPoolExecutor`:
//!
//! ```python
//! def fib(n):
//!     return n if n < 2 else fib(n - 1) + fib(n - 2)
//!
//! def timed(executor):
//!     start = time.perf_counter()
//!     with executor:
//!         list(executor.map(fib, [30] * 8))
//!     return time.perf_counter() - start
//!
//! if __name__ == "__main__":
//!     print("threads:  ", timed(ThreadPoolExecutor(4)))    # no faster than serial: the GIL
//!     print("processes:", timed(ProcessPoolExecutor(4)))   # about cpu_count() times faster
//! ```
//!
//! Its lesson is that CPython's global interpreter lock lets one thread run Python code at a
//! time, so threads do not speed up CPU-bound work and only processes do. Rust has no GIL:
//! here the thread pool scales with the cores just as the process pool does (and skips the
//! cost of sending arguments and results between processes). What carries over is the API:
//! `run_on` below is one generic function over the [`Executor`] trait, and the same call runs
//! `fib` on threads or in worker processes. No `if __name__ == "__main__"` guard is needed:
//! the worker processes are this program re-executed and caught before `main`.
//!
//! The times are printed, not checked: they depend on the machine and on what else runs.

use std::error::Error;
use std::iter;
use std::time::{Duration, Instant};

use flotilla::{Executor, ProcessPoolExecutor, ThreadPoolExecutor, cpu_count};

/// Which Fibonacci number each call computes (small enough for a debug build to stay quick).
const N: u64 = 30;
/// How many times it is computed.
const CALLS: usize = 8;
/// `fib(30)`.
const EXPECTED: u64 = 832_040;

/// CPU-bound work: the naive doubly recursive Fibonacci.
#[flotilla::task]
fn fib(n: u64) -> u64 {
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

/// Computes `fib(N)` `CALLS` times on any executor and returns how long that took.
fn run_on(executor: &impl Executor) -> Result<Duration, flotilla::Error> {
    let start = Instant::now();
    let results = executor
        .map(FibTask, iter::repeat_n(N, CALLS))
        .collect::<Result<Vec<_>, _>>()?;
    let elapsed = start.elapsed();
    assert!(results.iter().all(|&r| r == EXPECTED), "{results:?}");
    Ok(elapsed)
}

/// Runs a trivial task per worker first, so that starting the workers (threads or processes)
/// stays mostly off the clock and the times compare the work.
fn warm_up(executor: &impl Executor) -> Result<(), flotilla::Error> {
    executor
        .map(FibTask, iter::repeat_n(1, executor.max_workers()))
        .try_for_each(|r| r.map(drop))
}

fn main() -> Result<(), Box<dyn Error>> {
    let workers = cpu_count();
    println!("fib({N}) x {CALLS}, {workers} workers per pool");

    let start = Instant::now();
    let serial: Vec<u64> = iter::repeat_n(N, CALLS).map(fib).collect();
    let serial_time = start.elapsed();
    assert!(serial.iter().all(|&r| r == EXPECTED));
    println!("serial:              {:>7.1} ms", ms(serial_time));

    let threads = ThreadPoolExecutor::builder().max_workers(workers).build()?;
    warm_up(&threads)?;
    let thread_time = run_on(&threads)?;
    println!("ThreadPoolExecutor:  {:>7.1} ms", ms(thread_time));

    let processes = ProcessPoolExecutor::builder()
        .max_workers(workers)
        .build()?;
    warm_up(&processes)?;
    let process_time = run_on(&processes)?;
    println!("ProcessPoolExecutor: {:>7.1} ms", ms(process_time));

    println!(
        "speed-up over serial: threads {:.1}x, processes {:.1}x",
        ratio(serial_time, thread_time),
        ratio(serial_time, process_time)
    );
    println!(
        "Rust has no GIL: threads run CPU-bound work in parallel too; \
         the same run_on() ran on both pools"
    );
    println!("all three runs agree: fib({N}) = {EXPECTED}, {CALLS} times each");
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn ratio(base: Duration, other: Duration) -> f64 {
    base.as_secs_f64() / other.as_secs_f64().max(f64::EPSILON)
}
