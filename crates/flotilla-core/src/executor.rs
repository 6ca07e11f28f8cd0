//! The portable surface every backend implements: [`Executor`], [`Task`] and [`Shutdown`].
//!
//! # From `multiprocessing.Pool`
//!
//! `multiprocessing.Pool`'s methods are shapes of what an [`Executor`] already does, so
//! flotilla has no `Pool` type: each is one call (the same on threads, processes and Redis).
//!
//! | `multiprocessing.Pool` | flotilla |
//! |---|---|
//! | `Pool(processes, initializer, initargs, maxtasksperchild)` | `ProcessPoolExecutor::builder().max_workers(n).initializer(task, args).max_tasks_per_child(m).build()?` |
//! | `apply(f, args)` | `pool.submit(f, args)?.result()` |
//! | `apply_async(f, args, callback, error_callback)` | `pool.submit(f, args)?.on_result(\|outcome\| ..)` ([`Future::on_result`]: the value, owned, or the error; the task runs without a handle) — or keep the [`Future`] as the `AsyncResult` (`get(timeout)` = [`result`](Future::result), `ready()` = [`done`](Future::done), `wait()`, `successful()` = [`exception`](Future::exception)`.is_none()`) |
//! | `map(f, iterable, chunksize)` (a list) | `pool.map(f, inputs).chunksize(c).collect::<Result<Vec<_>, _>>()` |
//! | `imap(f, iterable, chunksize)` | `pool.map(f, inputs).chunksize(c)`: [`map`](Executor::map) is already lazy and ordered, and bounded where `imap` is not (it pulls input only as results are consumed) |
//! | `imap_unordered(f, iterable, chunksize)` | `pool.map(f, inputs).chunksize(c).unordered()` ([`Map::unordered`]) |
//! | `starmap(f, iterable_of_tuples)` | `pool.map(f, tuples)`: a task of several parameters takes them as one tuple, so `map` is already `starmap` |
//! | `map_async(f, iterable, callback)`, `starmap_async` | submit each item and keep the futures (`let futures: Vec<_> = items.map(\|x\| pool.submit(f, x)).collect::<Result<_, _>>()?`), or run `map` from a thread of its own |
//! | `close()` then `join()` | [`shutdown`](Executor::shutdown)`(Shutdown::new())`, or drop the pool |
//! | `terminate()` | `ProcessPoolExecutor::terminate_workers()` (`SIGTERM`), `kill_workers()` (`SIGKILL`) |
//! | `with Pool() as p:` | a pool in a variable: dropping it waits for the work still wanted (see [`Executor`](Executor#dropping)) |
//!
//! Only `apply_async`'s callbacks needed a method of their own: with
//! [`add_done_callback`](Future::add_done_callback) alone, the callback gets the future, not the
//! value, and a handle dropped right after submitting cancels the task.
//!
//! ```
//! use flotilla::{Executor, ThreadPoolExecutor};
//! use std::sync::mpsc;
//!
//! #[flotilla::task]
//! fn add(a: u64, b: u64) -> u64 {
//!     a + b
//! }
//!
//! #[flotilla::task]
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! let pool = ThreadPoolExecutor::builder().max_workers(2).build()?;
//!
//! // pool.apply(add, (2, 3))
//! assert_eq!(pool.submit(AddTask, (2, 3))?.result()?, 5);
//!
//! // pool.apply_async(add, (2, 3), callback=..., error_callback=...)
//! let (tx, rx) = mpsc::channel();
//! pool.submit(AddTask, (2, 3))?.on_result(move |outcome| tx.send(outcome).unwrap());
//! assert_eq!(rx.recv().unwrap()?, 5);
//!
//! // pool.map(square, range(5), chunksize=2)
//! let squares: Vec<u64> = pool.map(SquareTask, 0..5).chunksize(2).collect::<Result<_, _>>()?;
//! assert_eq!(squares, [0, 1, 4, 9, 16]);
//!
//! // pool.imap(square, itertools.count()): lazy, so an endless input is fine
//! let first: Vec<u64> = pool.map(SquareTask, 0..).take(3).collect::<Result<_, _>>()?;
//! assert_eq!(first, [0, 1, 4]);
//!
//! // pool.imap_unordered(square, range(5))
//! let mut any_order: Vec<u64> = pool.map(SquareTask, 0..5).unordered().collect::<Result<_, _>>()?;
//! any_order.sort_unstable();
//! assert_eq!(any_order, [0, 1, 4, 9, 16]);
//!
//! // pool.starmap(add, [(1, 2), (3, 4)])
//! let sums: Vec<u64> = pool.map(AddTask, [(1, 2), (3, 4)]).collect::<Result<_, _>>()?;
//! assert_eq!(sums, [3, 7]);
//!
//! // pool.map_async(square, range(4)).get()
//! let futures = (0..4)
//!     .map(|x| pool.submit(SquareTask, x))
//!     .collect::<Result<Vec<_>, _>>()?;
//! let results = futures
//!     .into_iter()
//!     .map(|f| f.into_result())
//!     .collect::<Result<Vec<u64>, _>>()?;
//! assert_eq!(results, [0, 1, 4, 9]);
//! # Ok::<(), flotilla::Error>(())
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::future::Future;
use crate::map::Map;

/// A function that can run on any executor: on a thread, in a worker process or on another
/// machine.
///
/// Implement it with the `#[flotilla::task]` attribute rather than by hand: the attribute
/// leaves the function as it was and declares beside it a unit struct, its *task handle*,
/// named after the function in UpperCamelCase with `Task` appended (`fib` → `FibTask`), which
/// implements `Task` with a stable [`NAME`](Task::NAME) under which worker processes find it.
/// Executors take the handle; the function stays callable as itself. Arguments travel as one
/// value (a tuple for several parameters), so they and the result must be serde types.
///
/// # Examples
///
/// ```
/// use flotilla::{Executor, ThreadPoolExecutor};
///
/// #[flotilla::task]
/// fn add(a: u64, b: u64) -> u64 {
///     a + b
/// }
///
/// let pool = ThreadPoolExecutor::new();
/// assert_eq!(pool.submit(AddTask, (2, 3))?.result()?, 5); // the handle, on a pool
/// assert_eq!(add(2, 3), 5); // the function, called as itself
/// # Ok::<(), flotilla::Error>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a flotilla task",
    note = "executors take a task's handle: for `#[flotilla::task] fn resize_image`, pass \
            `ResizeImageTask`; the function itself is for calling directly"
)]
pub trait Task: Send + Sync + 'static {
    /// The name workers use to find this task; unique within a program.
    const NAME: &'static str;
    /// The arguments, as one value.
    type Args: Serialize + DeserializeOwned + Send + 'static;
    /// What the task returns.
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// Runs the task on the calling thread.
    fn run(&self, args: Self::Args) -> Self::Output;
}

/// Python's `concurrent.futures.Executor`: the one API over thread pools, process pools and
/// clusters.
///
/// Code written against `Executor` runs on any backend; switching is a change to the line that
/// builds the executor. Backends add their own extras as inherent methods (the thread pool
/// also runs plain closures with [`spawn`](crate::ThreadPoolExecutor::spawn)).
///
/// # Dropping
///
/// Dropping an executor means the same on every backend: it is leaving Python's `with`
/// block. The executor stops accepting tasks and waits until every task already submitted
/// that is still wanted has finished: tasks whose [`Future`] is held somewhere, or was
/// [detached](Future::detach). A task whose last handle was dropped was cancelled then (see
/// [Dropping a future](Future#dropping)); only a thread task that was already running is
/// waited for anyway, since a thread cannot be stopped. After an explicit
/// [`shutdown`](Executor::shutdown) that said not to wait ([`Shutdown::wait`]`(false)`),
/// dropping does not wait either: the tasks go on and complete their futures.
///
/// # Examples
///
/// ```
/// use flotilla::{Executor, ThreadPoolExecutor};
///
/// #[flotilla::task]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// fn sum_of_squares(executor: &impl Executor, n: u64) -> Result<u64, flotilla::Error> {
///     executor.map(SquareTask, 0..n).chunksize(16).sum()
/// }
///
/// let pool = ThreadPoolExecutor::new();
/// assert_eq!(sum_of_squares(&pool, 10)?, 285);
/// # Ok::<(), flotilla::Error>(())
/// ```
pub trait Executor {
    /// Schedules `task(args)` and returns its future at once.
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] after [`shutdown`](Executor::shutdown), [`Error::Broken`] if the
    /// executor broke, [`Error::QueueFull`] if its queue is bounded, full and set not to block.
    fn submit<T: Task>(&self, task: T, args: T::Args) -> Result<Future<T::Output>, Error>;

    /// Lazily applies `task` to every item of `inputs`, yielding results in input order.
    ///
    /// Nothing is submitted until the first call to `next`; inputs are pulled only as results
    /// are consumed (see [`Map`] for `chunksize`, `buffer`, `timeout` and `unordered`). Each
    /// item yields its own `Result`, so one failure does not hide the others.
    fn map<T, I>(&self, task: T, inputs: I) -> Map<'_, I::IntoIter, T::Output>
    where
        T: Task,
        I: IntoIterator<Item = T::Args>,
        I::IntoIter: Send;

    /// Stops accepting tasks and releases the workers; see [`Shutdown`] for the options.
    ///
    /// Called from inside one of the executor's own tasks, a waiting shutdown does not wait
    /// (that wait could never end); the workers finish the queue and exit by themselves. A
    /// submit that was already blocked on a full bounded queue when the shutdown began may
    /// still get its task in and run; submits that start afterwards get [`Error::Shutdown`].
    fn shutdown(&self, how: Shutdown);

    /// How many tasks can run at once.
    fn max_workers(&self) -> usize;
}

/// How [`Executor::shutdown`] proceeds: Python's `shutdown(wait=True, cancel_futures=False)`.
///
/// `Shutdown` is a small `Copy` value: each method returns new options and leaves the one it
/// was called on as it was, so `how.cancel_futures(true);` alone changes nothing (and is
/// warned about); write `let how = how.cancel_futures(true);`.
///
/// # Examples
///
/// ```
/// use flotilla::{Executor, Shutdown, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::new();
/// let fut = pool.spawn(|| 1)?;
/// pool.shutdown(Shutdown::new().wait(true).cancel_futures(true));
/// assert!(fut.done());
/// assert!(pool.spawn(|| 2).unwrap_err().is_shutdown());
/// # Ok::<(), flotilla::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shutdown {
    pub(crate) wait: bool,
    pub(crate) cancel_futures: bool,
    pub(crate) kill_workers: bool,
}

impl Shutdown {
    /// Wait for running and queued tasks; cancel nothing (Python's defaults).
    #[must_use = "options do nothing until passed to `shutdown`"]
    pub fn new() -> Shutdown {
        Shutdown {
            wait: true,
            cancel_futures: false,
            kill_workers: false,
        }
    }

    /// Whether `shutdown` blocks until every worker has exited.
    #[must_use = "`Shutdown` is a value: this returns new options and leaves the receiver unchanged"]
    pub fn wait(self, wait: bool) -> Shutdown {
        Shutdown { wait, ..self }
    }

    /// Whether tasks still queued are cancelled instead of run.
    #[must_use = "`Shutdown` is a value: this returns new options and leaves the receiver unchanged"]
    pub fn cancel_futures(self, cancel_futures: bool) -> Shutdown {
        Shutdown {
            cancel_futures,
            ..self
        }
    }
}

impl Shutdown {
    /// Process pools: kill the worker processes, stopping running tasks (their futures fail
    /// with [`Error::WorkerDied`]); Python 3.14's `kill_workers()`. Threads cannot be killed,
    /// so thread pools ignore this.
    #[must_use = "`Shutdown` is a value: this returns new options and leaves the receiver unchanged"]
    pub fn kill_workers(self, kill_workers: bool) -> Shutdown {
        Shutdown {
            kill_workers,
            ..self
        }
    }
}

impl Shutdown {
    /// Whether `shutdown` is to block until the work is done; for backends outside this crate.
    ///
    /// # Examples
    ///
    /// ```
    /// let how = flotilla::Shutdown::new().wait(false);
    /// assert!(!how.waits() && !how.cancels_futures() && !how.kills_workers());
    /// ```
    pub fn waits(&self) -> bool {
        self.wait
    }

    /// Whether queued tasks are to be cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(flotilla::Shutdown::new().cancel_futures(true).cancels_futures());
    /// ```
    pub fn cancels_futures(&self) -> bool {
        self.cancel_futures
    }

    /// Whether running tasks are to be stopped.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(flotilla::Shutdown::new().kill_workers(true).kills_workers());
    /// ```
    pub fn kills_workers(&self) -> bool {
        self.kill_workers
    }
}

impl Default for Shutdown {
    fn default() -> Shutdown {
        Shutdown::new()
    }
}
