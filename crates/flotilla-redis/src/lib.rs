//! flotilla's [`Executor`](flotilla::Executor) on a cluster: tasks travel through a Redis
//! stream to [`Worker`]s on any machine, and their results come back to the [`Future`]s of
//! the program that submitted them.
//!
//! The program is the same on both sides: its `#[flotilla::task]` functions are the tasks; run
//! with a flag of your choosing it becomes a worker ([`Worker::builder`]`(url).slots(n).run()`),
//! otherwise it submits through a [`RedisExecutor`] exactly as it would to a process pool.
//!
//! # A guide for Python users
//!
//! | Python (dask, Celery, RQ) | flotilla-redis |
//! |---|---|
//! | `Client("tcp://scheduler:8786")`, `Celery(broker="redis://")` | [`RedisExecutor::connect`]`("redis://host")` |
//! | `dask-worker`, `celery worker -c 4`, `rq worker` | your program calling [`Worker::builder`]`(url).slots(4).run()` |
//! | `client.submit(f, x)`, `f.delay(x)` | `cluster.submit(task, x)?` (an [`Executor`](flotilla::Executor) call) |
//! | `client.map(f, xs)` | `cluster.map(task, xs).chunksize(n)` — lazy |
//! | `future.result()`, `AsyncResult.get()` | [`Future::result`](flotilla::Future::result), `.await` |
//! | `future.cancel()`, `revoke(terminate=True)` | [`Future::cancel`](flotilla::Future::cancel): exact while queued, kills the process if running |
//! | `acks_late` + `visibility_timeout`, `max_retries` | leases with [`visibility_timeout`](WorkerBuilder::visibility_timeout), [`max_retries`](RedisBuilder::max_retries) then [`Error::WorkerLost`](flotilla::Error::WorkerLost) |
//! | `celery inspect`, `rq info` | [`Status`], or `flotilla-redis status --url ...` |
//! | `result_expires` | [`ttl`](RedisBuilder::ttl) |
//!
//! # How a task travels
//!
//! `submit` returns at once; a sender thread hands tasks to the server in batches, one Lua
//! script call per batch, which records each task (status `queued`) and appends it to the
//! stream `{prefix}:tasks`. A worker reads it through the consumer group, and a claim script
//! moves it to `running` only if it is still queued — the same atomic step a cancel takes, so
//! a queued task is either cancelled or run, never both. The worker runs it in a local
//! [`ProcessPoolExecutor`](flotilla::ProcessPoolExecutor) (so a crash, a timeout or a cancel
//! kills one process, as on one machine), renews its lease while it runs, and posts the result
//! to the client's own stream; one reader thread per client completes the futures. A worker
//! that dies or hangs stops renewing; after the visibility timeout another worker takes the
//! entry over (`XAUTOCLAIM`) and runs it again, up to `max_retries` times. A result from a
//! worker that lost its lease is dropped, so each future completes exactly once. A claim
//! carries a token, so a claim retried after its reply was lost is not counted as another
//! delivery. Every message carries a version and each task its fingerprint
//! ([`flotilla::backend::signature`]), so a worker that lacks a task, or has it from other
//! code (another fingerprint), never runs or misreads it: it passes it on, and the next
//! takeover by any other worker picks it up at once. Only once every live worker has passed
//! it does its future fail, with [`RedisError::WorkerMismatch`] (naming both fingerprints) or
//! [`RedisError::NoWorkerHasTask`].
//! Task state and results expire after the [`ttl`](RedisBuilder::ttl) (a running task's state
//! is kept while it runs); a task still queued then is dropped unrun and its future fails
//! with [`Error::Expired`](flotilla::Error::Expired).
//!
//! # When the cluster fails
//!
//! A future waits for as long as its task can still finish — through a stall, a partition, a
//! frozen worker or a server restarted with its data — and fails only when it cannot, with an
//! error that says what is known: [`RedisError::ServerStateLost`] when the server lost its
//! data, [`RedisError::LostContact`] when the server stayed silent longer than the TTL,
//! [`RedisError::ArgumentsTooLarge`] / [`RedisError::ResultTooLarge`] for a value over the
//! server's limit (that task only). These travel in [`flotilla::Error::Backend`];
//! [`RedisError::of`] gets them back. The crate's README has the whole table, each row with
//! the test that makes it happen.
//!
//! # Example
//!
//! ```no_run
//! use flotilla::Executor;
//! use flotilla_redis::RedisExecutor;
//!
//! #[flotilla::task]
//! fn is_prime(n: u64) -> bool {
//!     n > 1 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
//! }
//!
//! // With workers running somewhere: `my-program worker` on each machine.
//! let cluster = RedisExecutor::connect("redis://127.0.0.1")?;
//! let primes = cluster.map(IsPrimeTask, 0..1000u64).chunksize(50).filter(|p| matches!(p, Ok(true))).count();
//! assert_eq!(primes, 168);
//! # Ok::<(), flotilla::Error>(())
//! ```

// Workers run tasks on flotilla's process pool, which is Linux-only: say so in one message
// rather than with an error for each missing item.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "flotilla-redis needs Linux: its workers run tasks on flotilla's process pool, which is built \
     on Linux-only system calls; the Redis backend is not available on this target"
);

/// Puts `#[cfg(target_os = "linux")]` on each item it is given.
macro_rules! linux_only {
    ($($item:item)*) => { $(#[cfg(target_os = "linux")] $item)* };
}

linux_only! {
    mod client;
    mod conn;
    mod decode;
    mod error;
    mod executor;
    mod protocol;
    mod status;
    mod worker;

    pub use crate::error::RedisError;
    pub use crate::executor::{RedisBuilder, RedisExecutor};
    pub use crate::status::Status;
    pub use crate::worker::{Worker, WorkerBuilder};
}
