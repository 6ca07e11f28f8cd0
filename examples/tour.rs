//! A tour of flotilla in one run: the same `Executor` API on threads and on processes, lazy
//! `map`, `as_completed`, a crashing task that breaks nothing else, a running task cancelled
//! for real, and awaiting a pool's futures from async code.
//!
//! Python users: this is `concurrent.futures` with `ThreadPoolExecutor` and
//! `ProcessPoolExecutor`, minus `BrokenProcessPool` and un-cancellable running tasks.

use std::time::{Duration, Instant};

use flotilla::{
    Error, Executor, ProcessPoolExecutor, ReturnWhen, ThreadPoolExecutor, as_completed_timeout,
    wait,
};

/// A CPU-bound task; `#[flotilla::task]` lets any executor run it, in this process or another.
#[flotilla::task]
fn fib(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        fib::call(n - 1) + fib::call(n - 2)
    }
}

/// A task that takes its worker process down with it.
#[flotilla::task]
fn crash(code: i32) -> u64 {
    std::process::exit(code)
}

#[flotilla::task]
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Written once against the `Executor` trait: runs on threads and on processes alike.
fn fibs(executor: &impl Executor) -> Result<Vec<u64>, Error> {
    executor.map(fib, 20..28).chunksize(2).collect()
}

fn main() -> Result<(), Error> {
    println!("flotilla tour: Python's concurrent.futures, for Rust\n");

    let threads = ThreadPoolExecutor::builder()
        .max_workers(4)
        .thread_name_prefix("tour")
        .build()?;
    let processes = ProcessPoolExecutor::builder().max_workers(2).build()?;

    // 1. One API, two backends.
    for (name, result) in [("threads", fibs(&threads)), ("processes", fibs(&processes))] {
        println!("1. fib(20..28) on {name:<9}: {:?}", result?);
    }

    // 2. Closures on the thread pool, results as they complete.
    let futures: Vec<_> = ["alpha", "beta", "gamma"]
        .into_iter()
        .map(|word| threads.spawn(move || (word, word.len())))
        .collect::<Result<_, _>>()?;
    for fut in as_completed_timeout(&futures, Duration::from_secs(10)) {
        let (word, len) = fut?.result()?;
        println!("2. as_completed: {word} has {len} letters");
    }

    // 3. Lazy map over an endless input: only what is consumed is computed.
    let squares: Vec<u64> = threads
        .map_fn(|n: u64| n * n, 0..)
        .take(5)
        .collect::<Result<_, _>>()?;
    println!("3. lazy map over 0..: first squares {squares:?}");

    // 4. A worker that dies fails only its own task; the pool goes on.
    let doomed = processes.submit(crash, 3)?;
    let healthy = processes.submit(fib, 25)?;
    println!("4. crashed task: {}", doomed.result().unwrap_err());
    println!(
        "   healthy task alongside it: fib(25) = {}",
        healthy.result()?
    );

    // 5. A running process task can be cancelled: its worker is killed.
    let slow = processes.submit(nap, 60_000)?;
    while !slow.running() {
        std::thread::yield_now();
    }
    let started = Instant::now();
    println!(
        "5. cancel() on a running task: {} ({:?})",
        slow.cancel(),
        started.elapsed()
    );
    let limited = processes.submit_with_timeout(nap, 60_000, Duration::from_millis(100))?;
    println!("   with a 100 ms limit: {}", limited.result().unwrap_err());

    // 6. wait() for the first of several.
    let race = vec![processes.submit(nap, 300)?, processes.submit(nap, 10)?];
    let (done, not_done) = wait(&race, ReturnWhen::FirstCompleted);
    println!(
        "6. wait(FIRST_COMPLETED): {} done, {} not yet",
        done.len(),
        not_done.len()
    );

    // 7. Futures are std futures: await them from any async runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|err| Error::InvalidConfig {
            reason: err.to_string(),
        })?;
    let sum = runtime.block_on(async {
        let a = processes.submit(fib, 20)?;
        let b = threads.spawn(|| fib::call(21))?;
        Ok::<_, Error>(a.await? + b.await?)
    })?;
    println!("7. awaited from tokio: fib(20) + fib(21) = {sum}");

    println!("\ntour complete");
    Ok(())
}
