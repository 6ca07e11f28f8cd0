//! Five workers, at most three at a time: a semaphore capping concurrency.
//!
//! The Python original starts five threads that each do `with sem:` on a
//! `threading.Semaphore(3)` around some simulated work, counting how many are inside at once;
//! the count never goes above three.
//!
//! `flotilla::sync::Semaphore` is the same object (std has none). `acquire()` returns a guard
//! that gives the permit back when dropped, so the permit cannot be leaked on an early return
//! or a panic, which is what Python's `with` block is for. The workers run on a flotilla pool
//! of five threads; the high-water mark is kept with `AtomicUsize::fetch_max`.

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use flotilla::ThreadPoolExecutor;
use flotilla::sync::Semaphore;
use flotilla_examples::thread_name;

const WORKERS: usize = 5;
const PERMITS: usize = 3;
const ROUNDS: usize = 3;

/// How many workers are inside the guarded section now, and the most there ever were.
#[derive(Default)]
struct Occupancy {
    now: AtomicUsize,
    max: AtomicUsize,
}

fn main() -> Result<(), Box<dyn Error>> {
    let semaphore = Arc::new(Semaphore::new(PERMITS));
    let occupancy = Arc::new(Occupancy::default());
    let pool = ThreadPoolExecutor::builder()
        .max_workers(WORKERS)
        .thread_name_prefix("worker")
        .build()?;

    let futures = (0..WORKERS)
        .map(|_| {
            let semaphore = Arc::clone(&semaphore);
            let occupancy = Arc::clone(&occupancy);
            pool.spawn(move || {
                for _ in 0..ROUNDS {
                    let _permit = semaphore.acquire();
                    let inside = occupancy.now.fetch_add(1, Ordering::SeqCst) + 1;
                    occupancy.max.fetch_max(inside, Ordering::SeqCst);
                    println!("{} working ({inside} inside)", thread_name());
                    std::thread::sleep(Duration::from_millis(20)); // simulated work
                    occupancy.now.fetch_sub(1, Ordering::SeqCst);
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for future in &futures {
        future.result()?;
    }

    let max = occupancy.max.load(Ordering::SeqCst);
    println!("max concurrent: {max} (semaphore of {PERMITS}, {WORKERS} workers)");
    assert!(max <= PERMITS);
    assert_eq!(semaphore.available_permits(), PERMITS);
    Ok(())
}
