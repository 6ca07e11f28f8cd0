//! Awaiting executor futures from tokio: asyncio's `run_in_executor`, `gather`, `wait_for`,
//! `wait` and `as_completed`.
//!
//! The Python original runs blocking functions from a coroutine with
//! `await loop.run_in_executor(pool, blocking)`, awaits several with `asyncio.gather(...)`,
//! bounds one with `asyncio.wait_for(fut, timeout)`, and uses `asyncio.wait(fs,
//! return_when=FIRST_COMPLETED)` and `asyncio.as_completed(fs)`.
//!
//! flotilla brings no event loop of its own: a [`flotilla::Future`] implements
//! `std::future::Future`, so any runtime can await it, and the blocking work stays on the
//! flotilla pool, off the runtime's threads.
//!
//! | asyncio | here |
//! |---|---|
//! | `await loop.run_in_executor(pool, f)` | `pool.spawn(f)?.await?` |
//! | `await asyncio.gather(a, b, c)` | `tokio::join!(a, b, c)` |
//! | `await asyncio.wait_for(fut, 0.05)` | `tokio::time::timeout(Duration::from_millis(50), fut).await` |
//! | `await asyncio.wait(fs, return_when=FIRST_COMPLETED)` | `flotilla::wait_async(&fs, ReturnWhen::FirstCompleted).await` |
//! | `for f in asyncio.as_completed(fs): await f` | `flotilla::as_completed_stream(&fs)` (a `Stream`) |
//!
//! One difference: `wait_for` cancels the task on timeout; a task already running on a thread
//! cannot be stopped, so here the timeout only stops the waiting (the task is released below so
//! the pool can shut down). The runtime is tokio's current-thread one: everything blocking
//! happens on the pool.

use std::error::Error;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::mpsc;
use std::time::Duration;

use flotilla::{ReturnWhen, ThreadPoolExecutor, as_completed_stream, wait_async};
use futures_core::Stream;

/// Some blocking work: the sum of `1..=n`, with a little simulated I/O.
fn blocking_sum(n: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(10));
    (1..=n).sum()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(4)
        .thread_name_prefix("blocking")
        .build()?;

    // run_in_executor
    let total = pool.spawn(|| blocking_sum(100))?.await?;
    println!("run_in_executor: blocking_sum(100) = {total}");
    assert_eq!(total, 5050);

    // gather
    let (a, b, c) = tokio::join!(
        pool.spawn(|| blocking_sum(10))?,
        pool.spawn(|| blocking_sum(20))?,
        pool.spawn(|| blocking_sum(30))?,
    );
    let gathered = [a?, b?, c?];
    println!("gather: {gathered:?}");
    assert_eq!(gathered, [55, 210, 465]);

    // wait_for: the task waits for a message that only comes after the timeout.
    let (release, gate) = mpsc::channel::<()>();
    let stuck = pool.spawn(move || gate.recv().is_ok())?;
    let timed = tokio::time::timeout(Duration::from_millis(50), stuck.clone()).await;
    println!(
        "wait_for: {}",
        match &timed {
            Ok(_) => "finished in time".to_owned(),
            Err(elapsed) => format!("timed out ({elapsed}); the task is still running"),
        }
    );
    assert!(timed.is_err());
    release.send(())?;
    assert!(stuck.await?);

    // asyncio.wait(FIRST_COMPLETED): one quick task, two held back until it is reported.
    let mut futures = vec![pool.spawn(|| blocking_sum(1))?];
    let mut releases = Vec::new();
    for n in [2, 3] {
        let (release, gate) = mpsc::channel::<()>();
        releases.push(release);
        futures.push(pool.spawn(move || {
            let _ = gate.recv(); // returns once `releases` is dropped
            blocking_sum(n)
        })?);
    }
    let (done, pending) = wait_async(&futures, ReturnWhen::FirstCompleted).await;
    println!(
        "wait(FIRST_COMPLETED): {} done, {} pending",
        done.len(),
        pending.len()
    );
    assert_eq!((done.len(), pending.len()), (1, 2));
    drop(releases);
    let (done, pending) = wait_async(&futures, ReturnWhen::AllCompleted).await;
    println!(
        "wait(ALL_COMPLETED): {} done, {} pending",
        done.len(),
        pending.len()
    );
    assert!(pending.is_empty());

    // as_completed, as a Stream.
    let futures = [40u64, 5, 20]
        .into_iter()
        .map(|n| {
            pool.spawn(move || {
                std::thread::sleep(Duration::from_millis(n));
                n
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut stream = as_completed_stream(&futures);
    let mut arrived = Vec::new();
    while let Some(future) = poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await {
        arrived.push(future.await?);
    }
    println!("as_completed (stream): {arrived:?}");
    arrived.sort();
    assert_eq!(arrived, [5, 20, 40]);
    Ok(())
}
