//! Hello from four threads.
//!
//! The Python original starts four `threading.Thread(target=hello, name=f"worker-{i}")`,
//! calls `start()` on each, then `join()`s them; each prints `threading.current_thread().name`.
//! A second version submits the same function to a `ThreadPoolExecutor(max_workers=4,
//! thread_name_prefix="hello")`.
//!
//! In Rust the named thread is `std::thread::Builder::new().name(..)`, and `join()` hands back
//! the closure's return value (Python needs a shared list or a queue for that). The pool is
//! [`flotilla::ThreadPoolExecutor`]; its threads are named `PREFIX_0`, `PREFIX_1`, ... like
//! Python's. A `Barrier` makes the four pool tasks run at the same time, so the pool really
//! starts four threads instead of reusing one that finished early.

use std::error::Error;
use std::sync::{Arc, Barrier};
use std::thread;

use flotilla::ThreadPoolExecutor;
use flotilla_examples::thread_name;

fn main() -> Result<(), Box<dyn Error>> {
    println!("== std::thread::Builder ==");
    let handles = (0..4)
        .map(|i| {
            thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(|| format!("hello from {}", thread_name()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for handle in handles {
        let greeting = handle.join().map_err(|_| "a thread panicked")?;
        println!("{greeting}");
    }

    println!("== ThreadPoolExecutor ==");
    let pool = ThreadPoolExecutor::builder()
        .max_workers(4)
        .thread_name_prefix("hello")
        .build()?;
    let all_here = Arc::new(Barrier::new(4));
    let futures = (0..4)
        .map(|i| {
            let all_here = Arc::clone(&all_here);
            pool.spawn(move || {
                all_here.wait();
                format!("hello from task {i} on {}", thread_name())
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for future in &futures {
        println!("{}", future.result()?);
    }
    println!("pool threads started: {}", pool.num_threads());
    Ok(())
}
