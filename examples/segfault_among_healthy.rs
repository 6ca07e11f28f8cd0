//! A task that segfaults, submitted among healthy ones: only that task fails.
//!
//! In Python a worker that dies takes the whole pool with it:
//!
//! ```python
//! def crash():
//!     ctypes.string_at(0)            # segfaults the worker process
//!
//! with ProcessPoolExecutor(2) as pool:
//!     futures = [pool.submit(square, i) for i in range(4)]
//!     futures.append(pool.submit(crash))
//!     futures += [pool.submit(square, i) for i in range(4, 8)]
//!     for f in futures:
//!         f.result()   # BrokenProcessPool: "A process in the process pool was terminated
//!                      # abruptly while the future was running or pending."
//!     pool.submit(square, 9)         # BrokenProcessPool again: the pool is dead for good
//! ```
//!
//! Every future still pending when the worker died fails with `BrokenProcessPool`, healthy
//! tasks included, the error does not say which task crashed or how, and the executor refuses
//! all further work.
//!
//! flotilla's [`ProcessPoolExecutor`] fails only the task whose worker died, with
//! [`flotilla::Error::WorkerDied`] naming the signal (`SIGSEGV`; `exitcode()` is -11 as in
//! Python's `Process.exitcode`). The healthy tasks all return, a fresh worker takes the dead
//! one's place, and the same pool runs the next batch.

use std::error::Error;

use flotilla::{Executor, ProcessPoolExecutor};

/// A healthy task.
#[flotilla::task]
fn square(x: u64) -> u64 {
    x * x
}

/// A task that crashes its worker process with a segmentation fault.
#[flotilla::task]
fn segfault() -> u64 {
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `setrlimit` reads the `rlimit` passed by reference, which lives across the
    // call. Lowering this worker's core-file limit only keeps the demo from leaving a core
    // file behind; if it fails, the crash below happens all the same.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
    // SAFETY: raising a signal has no memory-safety preconditions. SIGSEGV's default action
    // ends this process, a pool worker, which is the point of the task.
    unsafe { libc::raise(libc::SIGSEGV) };
    unreachable!("SIGSEGV ends the worker process")
}

fn main() -> Result<(), Box<dyn Error>> {
    let pool = ProcessPoolExecutor::builder().max_workers(2).build()?;

    let before = (0..4)
        .map(|i| pool.submit(square, i))
        .collect::<Result<Vec<_>, _>>()?;
    let crashing = pool.submit(segfault, ())?;
    let after = (4..8)
        .map(|i| pool.submit(square, i))
        .collect::<Result<Vec<_>, _>>()?;
    println!("submitted 8 healthy tasks with a segfaulting one in the middle");

    let mut returned = 0;
    for (i, future) in (0u64..).zip(before.iter().chain(&after)) {
        let value = future.result()?;
        assert_eq!(value, i * i);
        println!("square({i}) = {value}");
        returned += 1;
    }
    println!("healthy tasks: {returned} of 8 returned");
    assert_eq!(returned, 8);

    let err = match crashing.result() {
        Ok(value) => return Err(format!("the segfaulting task returned {value}").into()),
        Err(err) => err,
    };
    println!("segfault(): {err}");
    assert!(err.is_worker_died(), "{err:?}");
    assert!(err.to_string().contains("SIGSEGV"), "{err}");
    if let flotilla::Error::WorkerDied(exit) = &err {
        println!("  exitcode (Python's convention): {:?}", exit.exitcode());
        assert_eq!(exit.exitcode(), Some(-libc::SIGSEGV));
    }

    let squares = pool
        .map(square, 10..20)
        .chunksize(3)
        .collect::<Result<Vec<_>, _>>()?;
    assert_eq!(squares, (10..20u64).map(|x| x * x).collect::<Vec<_>>());
    println!("the same pool then ran another batch: {squares:?}");
    println!("no BrokenProcessPool: one task failed with SIGSEGV, the pool kept going");
    Ok(())
}
