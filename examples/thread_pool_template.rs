//! The course's thread-pool template, with `ThreadPoolExecutor`.
//!
//! The Python original:
//!
//! ```python
//! with ThreadPoolExecutor(max_workers=4, thread_name_prefix="template",
//!                         initializer=init) as pool:
//!     futures = [pool.submit(work, n) for n in range(8)]
//!     for future in futures:
//!         print(future.result())
//!     print(list(pool.map(work, range(8))))
//! # leaving `with` calls pool.shutdown(wait=True)
//! ```
//!
//! flotilla's pool is configured by a builder whose `build()` checks the settings. Closures go
//! in with `spawn` (Python's `submit(fn, *args)` becomes a `move` closure); functions marked
//! `#[flotilla::task]` go through the portable [`Executor`] trait, the same call that would run
//! them on a process pool. `map` is lazy and yields a `Result` per item. Shutdown is explicit
//! here to show it; dropping the pool does the same, as leaving `with` does.

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use flotilla::{Executor, Shutdown, ThreadPoolExecutor};
use flotilla_examples::thread_name;

/// Some work: the sum of the first `n` squares.
#[flotilla::task]
fn sum_of_squares(n: u64) -> u64 {
    (1..=n).map(|i| i * i).sum()
}

fn main() -> Result<(), Box<dyn Error>> {
    let initialised = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&initialised);
    let pool = ThreadPoolExecutor::builder()
        .max_workers(4)
        .thread_name_prefix("template")
        .initializer(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            Ok::<(), String>(())
        })
        .build()?;

    // submit + result, in submission order.
    let futures = (1..=8u64)
        .map(|n| pool.spawn(move || (n, sum_of_squares::call(n), thread_name())))
        .collect::<Result<Vec<_>, _>>()?;
    for future in &futures {
        let (n, sum, thread) = future.result()?;
        println!("work({n}) = {sum:>3} on {thread}");
    }

    // The portable route: a registered task through the Executor trait.
    let one = pool.submit(sum_of_squares, 10)?.result()?;
    let mapped = pool
        .map(sum_of_squares, 1..=8)
        .collect::<Result<Vec<_>, _>>()?;
    println!("submit(sum_of_squares, 10) = {one}");
    println!("map(sum_of_squares, 1..=8) = {mapped:?}");
    assert_eq!(one, 385);
    assert_eq!(mapped, [1, 5, 14, 30, 55, 91, 140, 204]);

    pool.shutdown(Shutdown::new().wait(true));
    let refused = pool.spawn(|| ()).unwrap_err();
    println!("after shutdown: {refused}");
    assert!(refused.is_shutdown());
    println!(
        "initializer ran on {} of at most 4 threads",
        initialised.load(Ordering::Relaxed)
    );
    Ok(())
}
