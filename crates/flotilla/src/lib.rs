//! Python's concurrency toolkit for Rust: one [`Executor`]/[`Future`] API over threads,
//! processes and clusters, with the `threading` primitives Python users know.
//!
//! # A guide for Python users
//!
//! | Python | flotilla |
//! |---|---|
//! | `ThreadPoolExecutor(max_workers=4)` | [`ThreadPoolExecutor::builder()`](ThreadPoolExecutor::builder)`.max_workers(4).build()?` |
//! | `ProcessPoolExecutor(max_workers=2, max_tasks_per_child=50)` | `ProcessPoolExecutor::builder().max_workers(2).max_tasks_per_child(50).build()?` (Linux) |
//! | a picklable module-level function | a [`#[flotilla::task]`](task) `fn f` (serde arguments and result); `f` stays a function, its handle `FTask` goes to executors |
//! | `pool.submit(fn, x)` | [`pool.spawn(move \|\| f(x))`](ThreadPoolExecutor::spawn), or [`pool.submit(FTask, x)`](Executor::submit) for a `#[flotilla::task] fn f` |
//! | `pool.map(fn, xs, timeout=, chunksize=, buffersize=)` | [`pool.map_fn(f, xs)`](ThreadPoolExecutor::map_fn)`.timeout(..).chunksize(..).buffer(..)` — lazy |
//! | `pool.shutdown(wait=True, cancel_futures=False)` / `with` | [`Executor::shutdown`] with [`Shutdown`] / `Drop` |
//! | `fut.result()`, `fut.result(timeout)`, `fut.exception(timeout)` | [`Future::result`], [`Future::result_timeout`], [`Future::exception`], [`Future::exception_timeout`] |
//! | `fut.cancel()`, `cancelled()`, `running()`, `done()` | same names on [`Future`] |
//! | `fut.add_done_callback(fn)` | [`Future::add_done_callback`] |
//! | `wait(fs, return_when=FIRST_COMPLETED)`, `wait(fs, timeout, ...)` | [`wait`]`(&fs, `[`ReturnWhen::FirstCompleted`]`)`, [`wait_timeout`]`(&fs, when, timeout)` |
//! | `as_completed(fs)`, `as_completed(fs, timeout)` | [`as_completed`], [`as_completed_timeout`] (an `Iterator`), [`as_completed_stream`] (a `Stream`) |
//! | `await loop.run_in_executor(pool, fn)` | `pool.spawn(f)?.await` — a [`Future`] is a `std::future::Future` |
//! | `asyncio.wait(fs, return_when=...)` | [`wait_async`] |
//! | a program choosing its executor at run time | [`Box<dyn DynExecutor<T>>`](DynExecutor) |
//! | exception raised in a task | a panic, caught: [`Error::Panicked`] with message and location |
//! | `threading.Semaphore`, `BoundedSemaphore`, `Event`, `Timer` | [`sync::Semaphore`], [`sync::BoundedSemaphore`], [`sync::Event`], [`sync::Timer`] |
//! | `queue.Queue`, `LifoQueue`, `PriorityQueue` | [`sync::Queue`], [`sync::LifoQueue`], [`sync::PriorityQueue`] |
//! | `threading.Lock`, `Condition`, `Barrier` | [`sync::Lock`], [`sync::Condition`], [`sync::Barrier`] (or std's `Mutex`, `Condvar`, `Barrier`: see [`sync`]) |
//! | `queue.Queue.shutdown`, `queue.SimpleQueue` | `shutdown(immediate)` on every [`sync`] queue, [`sync::SimpleQueue`] |
//! | `threading.Thread(name=...)` | `std::thread::Builder` |
//! | `multiprocessing.Process(target, args)` | `process::Process::new(task, args)` |
//! | `multiprocessing.Pipe()`, `Pipe(duplex=False)` | `process::pipe()`, `process::pipe_oneway()` |
//! | `multiprocessing.Queue`, `JoinableQueue` | `process::Queue`, `process::JoinableQueue` |
//! | `multiprocessing.current_process()`, `cpu_count()` | `process::current_process()`, `cpu_count()` |
//! | `multiprocessing.Manager()`, `m.dict()`, `m.Lock()`, remote `BaseManager(address, authkey)` | `manager::Manager::new()`, `m.dict()`, `m.lock()`, `Manager::builder().listen(addr).authkey(key)` |
//!
//! # Where flotilla differs from Python, on purpose
//!
//! - **`map` is lazy.** Python's `Executor.map` submits every input before returning; [`Map`]
//!   pulls inputs only as results are consumed, keeps a bounded number of chunks in flight, and
//!   yields a `Result` per item so one failure does not end the iteration.
//! - **Queues can be bounded.** The pool's task queue takes an optional bound
//!   ([`ThreadPoolBuilder::max_queued`]); submit then blocks or fails, as you choose.
//! - **A crashed worker breaks only its own task.** A process-pool task that panics, aborts,
//!   segfaults, exits or is killed fails its own future with an error naming the cause
//!   ([`Error::WorkerDied`]); there is no `BrokenProcessPool`. Running process tasks can be
//!   cancelled, and given a time limit, for real: the worker is killed and replaced.
//! - **Nothing is left hanging.** An executor that drops a task without running it completes the
//!   future with [`Error::Abandoned`]; dropping a pool never deadlocks, even from its own tasks.
//! - **A dropped future is a task nobody wants.** Python keeps running a task whose future was
//!   thrown away; here dropping the last handle cancels it (see below), and
//!   [`Future::detach`] is the explicit fire-and-forget.
//!
//! # Timeouts
//!
//! One convention everywhere, std's and crossbeam's: a blocking operation `op()` waits as long
//! as it takes, `op_timeout(d)` waits at most `d` (a `Duration`; one too large to represent
//! waits as long as it takes), and `try_op()` does not wait. Python's `timeout=None` is the
//! plain method: `fut.result(timeout=5)` is [`Future::result_timeout`], `fut.result()` is
//! [`Future::result`]; `wait(fs, timeout=t)` is [`wait_timeout`]; `event.wait(t)` is
//! `event.wait_timeout(t)`. Builder settings that limit how long a task may run
//! (`task_timeout(d)`, `Map::timeout(d)`) are settings, not waits.
//!
//! # What dropping does
//!
//! | dropping | does |
//! |---|---|
//! | a [`Future`] clone | nothing else |
//! | the last handle of an unfinished [`Future`] | cancels the task: a queued one never runs, a running process task is killed, a running thread task runs on and its result is discarded; not after [`Future::detach`] |
//! | an executor ([`ThreadPoolExecutor`], `ProcessPoolExecutor`) | Python's `with`: stops taking tasks and waits for those still wanted; does not wait after `shutdown(Shutdown::new().wait(false))` |
//! | a [`Map`] before its end | drops its chunks' futures: queued chunks never run, running ones as above |
//! | an [`AsCompleted`] / [`AsCompletedStream`] / [`WaitAsync`] | drops the futures it holds: yours if you gave them by value, clones if by reference |
//! | a lock guard ([`sync::SemaphoreGuard`], `shared::LockGuard`, ...) | releases at once, so each is `#[must_use]` |
//!
//! # Counts and zero
//!
//! A count or size that must be positive is checked once, where the object is built, and zero
//! is an error ([`Error::InvalidConfig`]), never a panic in one type and a silent clamp in
//! another. Where Python gives zero a meaning and it makes sense, flotilla keeps it.
//!
//! | zero passed to | gives |
//! |---|---|
//! | [`ThreadPoolBuilder::max_workers`], [`max_queued`](ThreadPoolBuilder::max_queued), [`stack_size`](ThreadPoolBuilder::stack_size); `ProcessPoolBuilder::max_workers`, `max_tasks_per_child`; `RedisBuilder::max_workers`, `WorkerBuilder::slots` | `InvalidConfig` from `build()` / `start()` |
//! | [`Map::chunksize`], [`Map::buffer`] (Python: `ValueError`) | the map yields one `InvalidConfig` and ends, submitting nothing |
//! | [`sync::Barrier::new`], `shared::Barrier::new`, a manager's `barrier` (Python: `ValueError`) | `InvalidConfig` |
//! | [`sync::Queue::bounded`] (and `LifoQueue`, `PriorityQueue`), `process::Queue::bounded`, `JoinableQueue::bounded`, a manager's `queue(Some(0))` | `InvalidConfig`: Python reads `maxsize=0` as unbounded, and a Rust reader of `bounded(0)` might expect a rendezvous channel, so flotilla refuses to guess; unbounded is `new()` (`queue(None)`) |
//! | [`sync::Semaphore::new`], `BoundedSemaphore::new`, `shared::Semaphore::new`, a manager's `semaphore` | a semaphore with no permit free, as Python's `Semaphore(0)`: `acquire` waits for a `release` |
//! | `shared::Array::new`, `RawArray::new` | an empty array, as Python's `Array('i', 0)` |
//! | `WorkerBuilder::prefetch` (Redis) | no task held beyond the slots (Celery reads 0 as no limit) |
//!
//! # Example
//!
//! ```
//! use flotilla::{as_completed, ThreadPoolExecutor};
//!
//! let pool = ThreadPoolExecutor::builder().max_workers(4).build()?;
//! let futures: Vec<_> = ["a", "bb", "ccc"]
//!     .into_iter()
//!     .map(|word| pool.spawn(move || word.len()))
//!     .collect::<Result<_, _>>()?;
//! let mut lengths: Vec<usize> = as_completed(&futures)
//!     .map(|fut| fut?.result())
//!     .collect::<Result<_, _>>()?;
//! lengths.sort();
//! assert_eq!(lengths, [1, 2, 3]);
//! # Ok::<(), flotilla::Error>(())
//! ```

//!
//! # Crates and features
//!
//! `flotilla` is a facade: it re-exports one crate per layer, each built only on the layers
//! below it, and the features choose which layers you compile.
//!
//! | feature | adds | crate |
//! |---|---|---|
//! | (always) | [`Future`], [`Executor`], [`Map`], [`wait`], [`Error`], [`ThreadPoolExecutor`] | `flotilla-core` (portable) |
//! | (always) | [`sync`]: `Semaphore`, `Event`, `Timer`, `Queue`… | `flotilla-sync` (portable) |
//! | `process` | `ProcessPoolExecutor`, `process::{Process, pipe, Queue}`, `backend` | `flotilla-process` (Linux) |
//! | `shared` | `shared::{Value, Array, Lock, …}` (implies `process`) | `flotilla-shared` (Linux) |
//! | `manager` | `manager::Manager` (implies `shared`) | `flotilla-manager` (Linux) |
//! | `full` | all of the above | |
//!
//! The default is the portable layers: a thread-pool user compiles no process, shared-memory
//! or authentication code. `#[flotilla::task]` works with every feature set; its tasks run on
//! a thread pool always and, with `process`, in worker processes too.
pub use flotilla_core::{
    AsCompleted, AsCompletedStream, DynExecutor, DynInputs, Error, Executor, Future, Map, Panic,
    Promise, ReturnWhen, Scope, Shutdown, Stage, Task, ThreadPoolBuilder, ThreadPoolExecutor,
    WaitAsync, WorkerExit, as_completed, as_completed_stream, as_completed_timeout, wait,
    wait_async, wait_timeout,
};
/// # Examples
///
/// ```
/// use flotilla::{Executor, Task, ThreadPoolExecutor};
///
/// #[flotilla::task]
/// fn fib(n: u64) -> u64 {
///     if n < 2 { n } else { fib(n - 1) + fib(n - 2) } // plain recursive calls
/// }
///
/// assert_eq!(fib(10), 55); // the function, called as itself
/// let pool = ThreadPoolExecutor::new(); // or a ProcessPoolExecutor, a RedisExecutor
/// assert_eq!(pool.submit(FibTask, 10)?.result()?, 55); // its handle, on an executor
/// let fibs: Vec<u64> = pool.map(FibTask, 0..6).collect::<Result<_, _>>()?;
/// assert_eq!(fibs, [0, 1, 1, 2, 3, 5]);
/// assert!(FibTask::NAME.ends_with("::fib")); // the name workers know it by
/// # Ok::<(), flotilla::Error>(())
/// ```
#[doc(inline)]
pub use flotilla_macros::task;

// compile_fail examples of misuse the compiler refuses.
#[cfg(doctest)]
mod misuse;
#[doc(inline)]
pub use flotilla_sync as sync;

#[cfg(feature = "process")]
#[doc(inline)]
pub use flotilla_process::{ProcessPoolBuilder, ProcessPoolExecutor, backend, cpu_count, process};

#[cfg(feature = "shared")]
#[doc(inline)]
pub use flotilla_shared as shared;

#[cfg(feature = "manager")]
#[doc(inline)]
pub use flotilla_manager as manager;

/// What `#[flotilla::task]` expands to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use flotilla_core::Task;
    #[cfg(feature = "process")]
    pub use flotilla_process::__private::{TASKS, TaskEntry, linkme, register_task};

    /// Without the process layer a task runs on thread pools only: nothing to register.
    #[cfg(not(feature = "process"))]
    #[doc(hidden)]
    #[macro_export]
    macro_rules! __flotilla_register_nothing {
        ($name:ident, $entry:ident) => {};
    }
    #[cfg(not(feature = "process"))]
    pub use crate::__flotilla_register_nothing as register_task;
    #[cfg(feature = "process")]
    pub use flotilla_process::__private::{Fault, FaultAction, FaultPoint};
}
