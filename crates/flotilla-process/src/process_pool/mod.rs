//! [`ProcessPoolExecutor`]: Python's `ProcessPoolExecutor`, without `BrokenProcessPool`.
//!
//! Each of the pool's slots is a thread of an internal [`ThreadPoolExecutor`] that owns one
//! worker process and talks to it over a socket; slots, and their processes, start on demand
//! and are reused. A worker that crashes takes down only the task it was running: the slot
//! reports why (signal, exit code, and where the task was), reaps it, and starts a fresh
//! worker for its next task.
//!
//! The pieces: `child` starts, kills and reaps a worker, which runs under a `supervisor` and
//! with what `main` would have set up (`runtime`); `worker` is the worker's side;
//! `wire` frames the messages between them; `progress` is the page in which a worker records
//! how far it has got, so that the pool knows after a death whether a task had started;
//! `remote` carries one task (or chunk) there and back; `run` runs it, stage by stage, in the
//! worker; `results` decodes what came back.

pub(crate) mod child;
mod progress;
mod remote;
mod results;
pub(crate) mod run;
mod supervisor;
pub(crate) mod worker;

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use self::child::{CallError, KillSwitch, WorkerProcess};
use self::progress::Page;
pub use self::progress::{Fault, FaultAction, FaultPoint};
use self::remote::{ChunkCall, RemoteCall, Shaped};
pub(crate) use self::results::decode_items;
use crate::registry::Shape;
use crate::wire::{self, Outcome, Reply, Request};
use flotilla_core::__layer::Chunk;
use flotilla_core::Error;
use flotilla_core::Map;
use flotilla_core::ThreadPoolExecutor;
use flotilla_core::primitives::lock;
use flotilla_core::{Executor, Shutdown, Task};
use flotilla_core::{Future, Promise};

/// A pool of worker processes that runs [`Task`]s: Python's
/// `concurrent.futures.ProcessPoolExecutor`, made robust.
///
/// Workers are this same program, started again and caught by flotilla before `main` runs, so
/// no user code runs twice and `main` needs no guard; it works the same from a binary, an
/// example or a `cargo test` integration test. Tasks are functions marked
/// `#[flotilla::task]`; their arguments and results travel between processes as serde values.
///
/// Where Python's pool gives up, this one carries on:
///
/// - A task that panics, aborts, segfaults, calls `exit` or whose worker is killed fails only
///   its own future ([`Error::Panicked`], [`Error::WorkerDied`] naming the signal or exit
///   code); a fresh worker takes the dead one's place.
/// - [`Future::cancel`] on a *running* task kills its worker and returns `true`.
/// - A per-task time limit ([`submit_with_timeout`](ProcessPoolExecutor::submit_with_timeout),
///   [`task_timeout`](ProcessPoolBuilder::task_timeout)) kills the worker when it passes and
///   fails the task with [`Error::TaskTimedOut`].
/// - [`Shutdown::kill_workers`] stops running tasks at shutdown (queued ones are cancelled
///   first);
///   [`kill_workers`](ProcessPoolExecutor::kill_workers) and
///   [`terminate_workers`](ProcessPoolExecutor::terminate_workers) are Python 3.14's methods of
///   those names.
///
/// Worker processes die with the pool's process, even when it is killed with `SIGKILL`, and
/// so does every process a task starts: each worker runs under a small supervisor process that,
/// when the worker ends (it crashed, was killed for a timeout or a `cancel()`, retired, or the
/// pool's process died), kills the worker's process group and every process reparented to it,
/// even one that moved to a session of its own. A task's children inherit no descriptor of the
/// pool, so a worker's death is seen at once even while they run.
///
/// A task runs as it would in `main`: on a thread named `main` with `main`'s stack size, with
/// `SIGPIPE` ignored (a write to a closed pipe is an `Err`, as on a thread pool) and the
/// standard streams open (on `/dev/null` where the program closed them, as daemons do). A stack
/// overflow fails the task with [`Error::WorkerDied`], whose [`cause`](flotilla_core::WorkerExit::cause)
/// says so, and the pool starts a fresh worker (on a thread pool it aborts the whole program).
///
/// # When something fails
///
/// A task passes through seven [`Stage`](flotilla_core::Stage)s: its arguments are encoded here, sent,
/// decoded in the worker, the task runs, its result is encoded there, sent back and decoded
/// here. Whatever fails at whichever stage fails only that task's future, with an error that
/// names the stage and the cause: [`Error::WorkerDied`] (whose
/// [`WorkerExit::stage`](flotilla_core::WorkerExit::stage) says where the task was), [`Error::Codec`]
/// (a `Serialize` or `Deserialize` that failed or panicked, or a malformed message),
/// [`Error::Panicked`], [`Error::TaskTimedOut`]. Nothing in the pool's own machinery costs it a
/// slot: after any such failure it still runs `max_workers` tasks at once.
///
/// - **A task that never started runs on a fresh worker.** A worker that died while idle (the
///   OOM killer, say), or dies before it has read the whole request, costs nobody: the task is
///   sent again, to a fresh worker, and fails only if three workers in a row die first.
/// - **Chunks fail item by item.** In a [`map`](Executor::map) with a chunksize, each item
///   has its own outcome: an item whose arguments cannot be encoded here, or decoded in the
///   worker, or whose result cannot be encoded there, fails alone (its error says which item
///   of its chunk it was), and the others keep their values; an item that panics, hangs past its time limit or
///   kills its worker fails alone, and the items after it run on a fresh worker. The time limit
///   applies to each item, not to the chunk, and each item's result leaves the worker as soon
///   as it is ready. Without a time limit, results travel in batches (those finished within a
///   couple of milliseconds of each other), so a worker that dies mid-chunk may take the last
///   few finished results with it: those items fail with [`Error::WorkerDied`] too.
/// - **Memory comes back.** Buffers grown by a message of more than about 129 MiB (an argument
///   or result) are given back once it is handled, in the worker and here, so one large
///   message does not leave its size resident.
/// - **One thing the pool cannot stop:** a result's `Deserialize` runs here, on one of the
///   pool's threads. If it never returns, it holds that slot for good, as a hung task holds a
///   thread of a [`ThreadPoolExecutor`]: no thread can be stopped from outside.
///
/// # Waiting on the pool from its own threads
///
/// A done-callback runs on the slot thread that completed the future. When it blocks on
/// another future of the same pool that is still queued (with `max_workers(1)` no other slot
/// would ever take it), that slot takes the task out of the queue and runs it itself, on its
/// own worker process, instead of deadlocking, as a [`ThreadPoolExecutor`]'s threads do. Every
/// wait does so ([`Future::result`], [`Future::exception`], [`wait`](flotilla_core::wait),
/// [`as_completed`](flotilla_core::as_completed), a [`Map`]), with or without a time limit (the
/// limit bounds only the sleep after the run), and callbacks of tasks run that way may wait in
/// turn. A task that panics, crashes its worker or is cancelled while run so fails as it would
/// have in the queue, and the slot starts a fresh worker for its next task: the pool keeps its
/// strength. Threads outside the pool, and slots of other pools, never run its tasks: they
/// wait for a slot.
///
/// One wait cannot be served that way: from inside a result's `Deserialize`, which runs on the
/// slot thread while the call still holds the slot's worker. The awaited task then fails at
/// once with [`Error::InvalidOperation`], whose message names the deadlock, instead of hanging.
///
/// ```
/// use flotilla::{Executor, ProcessPoolExecutor};
/// use std::sync::mpsc;
///
/// #[flotilla::task]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let pool = ProcessPoolExecutor::builder().max_workers(1).build()?;
/// let first = pool.submit(SquareTask, 3)?;
/// let second = pool.submit(SquareTask, 4)?;
/// let (tx, rx) = mpsc::channel();
/// // Runs on the pool's only slot (or here, if `first` is done already): either way `second`
/// // runs, on the one worker.
/// first.add_done_callback(move |_| tx.send(second.result()).unwrap());
/// assert_eq!(rx.recv().unwrap()?, 16);
/// # Ok::<(), flotilla::Error>(())
/// ```
///
/// # Dropping
///
/// Dropping the pool waits for the tasks still wanted, as every [`Executor`] does (see
/// [`Executor`](Executor#dropping)). Dropping the last handle of a task's [`Future`] cancels
/// the task: a queued one never runs, a running one has its worker killed and replaced.
/// Dropping a [`Map`] cancels the chunks it has in flight the same way; the pool starts a fresh
/// worker in each killed one's place when it next needs one.
///
/// # Examples
///
/// ```
/// use flotilla::{Executor, ProcessPoolExecutor};
///
/// #[flotilla::task]
/// fn fib(n: u64) -> u64 {
///     if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
/// }
///
/// let pool = ProcessPoolExecutor::builder().max_workers(2).build()?;
/// assert_eq!(pool.submit(FibTask, 20)?.result()?, 6765);
/// let fibs: Vec<u64> = pool.map(FibTask, 0..10).collect::<Result<_, _>>()?;
/// assert_eq!(fibs, [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]);
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct ProcessPoolExecutor {
    slots: ThreadPoolExecutor,
    shared: Arc<Shared>,
}

struct Shared {
    max_workers: usize,
    max_tasks_per_child: Option<usize>,
    task_timeout: Option<Duration>,
    /// A task name and its encoded arguments, run in each new worker before its first task.
    initializer: Option<(&'static str, Vec<u8>)>,
    next_id: AtomicU64,
    /// Every live worker, for shutdowns that kill.
    live: Mutex<Live>,
}

#[derive(Default)]
struct Live {
    /// Set by a shutdown that kills: workers started from then on are killed at once.
    killing: bool,
    workers: Vec<(u32, Arc<KillSwitch>)>,
}

thread_local! {
    /// The worker process owned by the slot thread this runs on.
    static SLOT: RefCell<Option<Slot>> = const { RefCell::new(None) };
}

/// A slot's worker; retired (asked to exit, then reaped) when the slot thread ends or the
/// worker has run `max_tasks_per_child` tasks.
struct Slot {
    process: Option<WorkerProcess>,
    /// The page the worker records its progress in.
    page: Page,
    /// False once the worker sent a reply out of step with the pool: it is retired after the
    /// task.
    healthy: bool,
    shared: Arc<Shared>,
}

impl Slot {
    fn process(&self) -> &WorkerProcess {
        match &self.process {
            Some(process) => process,
            None => unreachable!("a slot's process is only taken when the slot is dropped"),
        }
    }

    fn process_mut(&mut self) -> &mut WorkerProcess {
        match &mut self.process {
            Some(process) => process,
            None => unreachable!("a slot's process is only taken when the slot is dropped"),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            let pid = process.pid();
            lock(&self.shared.live).workers.retain(|(p, _)| *p != pid);
            process.retire();
        }
    }
}

/// Configures a [`ProcessPoolExecutor`].
///
/// | Python `ProcessPoolExecutor(...)` | builder method |
/// |---|---|
/// | `max_workers` (default `os.process_cpu_count()`) | [`max_workers`](ProcessPoolBuilder::max_workers) |
/// | `initializer`, `initargs` | [`initializer`](ProcessPoolBuilder::initializer) (a task and its arguments) |
/// | `max_tasks_per_child` | [`max_tasks_per_child`](ProcessPoolBuilder::max_tasks_per_child) |
/// | — | [`task_timeout`](ProcessPoolBuilder::task_timeout) |
///
/// # Examples
///
/// ```
/// use flotilla::ProcessPoolExecutor;
///
/// let pool = ProcessPoolExecutor::builder()
///     .max_workers(2)
///     .max_tasks_per_child(100) // recycle workers, returning their memory
///     .task_timeout(std::time::Duration::from_secs(60))
///     .build()?;
/// # drop(pool);
/// # Ok::<(), flotilla::Error>(())
/// ```
#[must_use = "a builder does nothing until .build() is called"]
#[derive(Debug, Default)]
pub struct ProcessPoolBuilder {
    max_workers: Option<usize>,
    max_tasks_per_child: Option<usize>,
    task_timeout: Option<Duration>,
    initializer: Option<Result<(&'static str, Vec<u8>), String>>,
}

impl ProcessPoolBuilder {
    /// How many worker processes run at once (default: the number of CPUs).
    pub fn max_workers(mut self, max_workers: usize) -> ProcessPoolBuilder {
        self.max_workers = Some(max_workers);
        self
    }

    /// Replaces a worker with a fresh process after it has run this many tasks.
    pub fn max_tasks_per_child(mut self, tasks: usize) -> ProcessPoolBuilder {
        self.max_tasks_per_child = Some(tasks);
        self
    }

    /// Kills a task's worker when the task runs longer than `limit` (default: no limit).
    pub fn task_timeout(mut self, limit: Duration) -> ProcessPoolBuilder {
        self.task_timeout = Some(limit);
        self
    }

    /// Runs `task(args)` in each new worker before its first task. If it panics or fails, the
    /// pool is broken: queued and later tasks fail with [`Error::Broken`].
    pub fn initializer<T: Task>(mut self, task: T, args: T::Args) -> ProcessPoolBuilder {
        let _ = task;
        self.initializer = Some(
            postcard::to_allocvec(&args)
                .map(|bytes| (T::NAME, bytes))
                .map_err(|err| format!("could not encode the initializer's arguments: {err}")),
        );
        self
    }

    /// Builds the pool. No process starts until the first task is submitted.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `max_workers` or `max_tasks_per_child` is 0 or the
    /// initializer's arguments cannot be encoded; [`Error::DuplicateTask`] if two tasks of
    /// the program share a name.
    pub fn build(self) -> Result<ProcessPoolExecutor, Error> {
        let invalid = |reason: &str| {
            Err(Error::InvalidConfig {
                reason: reason.to_owned(),
            })
        };
        if self.max_workers == Some(0) {
            return invalid("max_workers must be greater than 0");
        }
        if self.max_tasks_per_child == Some(0) {
            return invalid("max_tasks_per_child must be greater than 0");
        }
        let initializer = match self.initializer {
            Some(Err(reason)) => return invalid(&reason),
            Some(Ok(init)) => Some(init),
            None => None,
        };
        crate::registry::check()?;
        let max_workers = self.max_workers.unwrap_or_else(cpu_count);
        let slots = ThreadPoolExecutor::builder()
            .max_workers(max_workers)
            .thread_name_prefix("flotilla-process-slot")
            .build()?;
        Ok(ProcessPoolExecutor {
            slots,
            shared: Arc::new(Shared {
                max_workers,
                max_tasks_per_child: self.max_tasks_per_child,
                task_timeout: self.task_timeout,
                initializer,
                next_id: AtomicU64::new(1),
                live: Mutex::new(Live::default()),
            }),
        })
    }
}

/// The number of CPUs this process may use: Python's `os.process_cpu_count()`.
///
/// # Examples
///
/// ```
/// assert!(flotilla::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

impl ProcessPoolExecutor {
    /// A pool of [`cpu_count`] workers.
    ///
    /// # Panics
    ///
    /// If two tasks of the program share a name ([`Error::DuplicateTask`]; `builder().build()`
    /// returns that error instead).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = flotilla::ProcessPoolExecutor::new();
    /// # drop(pool);
    /// ```
    pub fn new() -> ProcessPoolExecutor {
        match ProcessPoolBuilder::default().build() {
            Ok(pool) => pool,
            Err(err) => panic!("cannot start a process pool: {err}"),
        }
    }

    /// Starts configuring a pool.
    pub fn builder() -> ProcessPoolBuilder {
        ProcessPoolBuilder::default()
    }

    /// Like [`Executor::submit`], but kills the worker and fails the task with
    /// [`Error::TaskTimedOut`] if it runs longer than `limit`.
    ///
    /// # Errors
    ///
    /// As [`Executor::submit`].
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::ProcessPoolExecutor;
    /// use std::time::Duration;
    ///
    /// #[flotilla::task]
    /// fn spin() {
    ///     loop {
    ///         std::hint::spin_loop();
    ///     }
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(1).build()?;
    /// let fut = pool.submit_with_timeout(SpinTask, (), Duration::from_millis(100))?;
    /// assert!(fut.result().unwrap_err().is_task_timeout());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn submit_with_timeout<T: Task>(
        &self,
        task: T,
        args: T::Args,
        limit: Duration,
    ) -> Result<Future<T::Output>, Error> {
        self.submit_inner(task, args, Some(limit), None)
    }

    /// Sends `SIGTERM` to every worker process and shuts the pool down without waiting:
    /// Python 3.14's `terminate_workers()`.
    ///
    /// Queued tasks are cancelled (`shutdown(wait=False, cancel_futures=True)`), the pool
    /// refuses new work with [`Error::Shutdown`], and each running task's worker gets
    /// `SIGTERM`, which ends it unless the task handles or ignores the signal. The future of a
    /// task whose worker ended fails with [`Error::WorkerDied`] whose
    /// [`cause`](flotilla_core::WorkerExit::cause) says it was terminated by this call (with
    /// the signal, or the exit code of a task that handled it by exiting); a task that handles
    /// `SIGTERM` and returns completes its future normally. Unlike Python's pool, the pool is
    /// not broken: a dead worker fails only its own task, as always.
    ///
    /// Whatever the workers had started dies with them (see [`ProcessPoolExecutor`]).
    /// [`kill_workers`](ProcessPoolExecutor::kill_workers) is the same with `SIGKILL`, which no
    /// task can stop.
    ///
    /// # Blocking
    ///
    /// Does not wait for the workers to end, and neither does dropping the pool afterwards (as
    /// after any `shutdown` that does not wait): the pool's threads reap the workers in the
    /// background. A task that ignores `SIGTERM` runs on, and completes its future, until it
    /// ends or [`kill_workers`](ProcessPoolExecutor::kill_workers) stops it; its worker dies
    /// with this process in any case.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::{Executor, ProcessPoolExecutor};
    ///
    /// #[flotilla::task]
    /// fn forever() {
    ///     loop {
    ///         std::thread::park();
    ///     }
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(1).build()?;
    /// let running = pool.submit(ForeverTask, ())?;
    /// let queued = pool.submit(ForeverTask, ())?;
    /// while !running.running() {
    ///     std::thread::yield_now();
    /// }
    /// pool.terminate_workers();
    /// let err = running.result().unwrap_err();
    /// assert!(err.to_string().contains("SIGTERM"), "{err}");
    /// assert!(err.to_string().contains("terminate_workers"), "{err}");
    /// assert!(queued.cancelled());
    /// assert!(pool.submit(ForeverTask, ()).unwrap_err().is_shutdown());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn terminate_workers(&self) {
        self.force_shutdown(KillSwitch::terminate);
    }

    /// Sends `SIGKILL` to every worker process (and whatever it started) and shuts the pool
    /// down without waiting: Python 3.14's `kill_workers()`, the same as
    /// `shutdown(Shutdown::new().wait(false).cancel_futures(true).kill_workers(true))`.
    ///
    /// Queued tasks are cancelled, the pool refuses new work with [`Error::Shutdown`], and the
    /// future of each running task fails with [`Error::WorkerDied`] naming `SIGKILL`.
    ///
    /// # Blocking
    ///
    /// Does not wait for the workers to end, and neither does dropping the pool afterwards:
    /// the pool's threads reap the killed workers in the background.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::{Executor, ProcessPoolExecutor};
    ///
    /// #[flotilla::task]
    /// fn forever() {
    ///     loop {
    ///         std::thread::park();
    ///     }
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(1).build()?;
    /// let running = pool.submit(ForeverTask, ())?;
    /// while !running.running() {
    ///     std::thread::yield_now();
    /// }
    /// pool.kill_workers();
    /// assert!(running.result().unwrap_err().to_string().contains("SIGKILL"));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn kill_workers(&self) {
        self.force_shutdown(KillSwitch::kill);
    }

    /// Python's `_force_shutdown`: no more tasks start (workers started from now on are
    /// killed at once, and a task whose worker dies is not sent again), queued ones are
    /// cancelled, then `signal` goes to every live worker.
    fn force_shutdown(&self, signal: fn(&KillSwitch) -> bool) {
        lock(&self.shared.live).killing = true;
        self.slots
            .shutdown(Shutdown::new().wait(false).cancel_futures(true));
        for (_, switch) in &lock(&self.shared.live).workers {
            signal(switch);
        }
    }

    fn submit_inner<T: Task>(
        &self,
        task: T,
        args: T::Args,
        timeout: Option<Duration>,
        fault: Option<Fault>,
    ) -> Result<Future<T::Output>, Error> {
        let _ = task;
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = wire::start(&Request::Run { id, task: T::NAME })
            .and_then(|mut frame| wire::encode_onto(&mut frame, &args).map(|()| frame))
            .and_then(|mut frame| wire::finish(&mut frame).map(|()| frame))
            .map_err(|why| Error::Codec {
                message: format!(
                    "could not encode the arguments of task `{}`: {why}",
                    T::NAME
                ),
            });
        drop(args);
        let shape = Shaped::One(results::decode_one::<T::Output>);
        self.queue(id, Cow::Borrowed(T::NAME), frame, timeout, fault, shape)
    }

    /// [`Executor::submit`], with `fault` acted out by the worker's own machinery: how tests
    /// make each stage of a task's journey fail for real. Not part of the API.
    #[doc(hidden)]
    pub fn submit_with_fault<T: Task>(
        &self,
        task: T,
        args: T::Args,
        fault: Fault,
    ) -> Result<Future<T::Output>, Error> {
        self.submit_inner(task, args, self.shared.task_timeout, Some(fault))
    }

    /// Runs the registered task `name` on encoded arguments in a worker process and returns its
    /// encoded result: the entry point of backends that receive tasks from elsewhere (see
    /// [`backend`](crate::backend)). With [`Shape::Chunk`](Shape::Chunk) the
    /// arguments are the items' encoded arguments, as
    /// [`backend::encode_chunk`](crate::backend::encode_chunk) makes them, and the result is
    /// decoded with [`backend::decode_chunk`](crate::backend::decode_chunk): an item whose
    /// arguments the worker cannot decode fails alone.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownTask`] at once if no task of that name is registered in this program
    /// (internal tasks, such as the manager's server, are not reachable by name), otherwise as
    /// [`Executor::submit`]. The future fails as a normal task's does.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::backend::{self, Shape};
    /// use flotilla::{ProcessPoolExecutor, Task};
    ///
    /// #[flotilla::task]
    /// fn double(x: u32) -> u32 {
    ///     x * 2
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(1).build()?;
    /// let args = backend::encode(&21u32)?;
    /// let out = pool.submit_encoded(DoubleTask::NAME, Shape::One, args, None)?.result()?;
    /// assert_eq!(backend::decode::<u32>(&out)?, 42);
    /// assert!(pool.submit_encoded("nope", Shape::One, vec![], None).unwrap_err().to_string().contains("nope"));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn submit_encoded(
        &self,
        name: &str,
        shape: Shape,
        args: Vec<u8>,
        timeout: Option<Duration>,
    ) -> Result<Future<Vec<u8>>, Error> {
        if crate::registry::lookup_public(name, shape).is_none() {
            return Err(Error::UnknownTask {
                name: name.to_owned(),
            });
        }
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let timeout = timeout.or(self.shared.task_timeout);
        let name = Cow::Owned(name.to_owned());
        match shape {
            Shape::One => {
                let frame = wire::with_payload(&Request::Run { id, task: &name }, &args)
                    .map_err(|message| Error::Codec { message });
                self.queue(
                    id,
                    name,
                    frame,
                    timeout,
                    None,
                    Shaped::One(results::raw_one),
                )
            }
            Shape::Chunk => {
                // One record per item; the worker reads them the same way, so a record cut
                // short is the last item on both sides, and fails in the worker.
                let sent = wire::records(&args).count();
                let header = Request::RunChunk {
                    id,
                    task: &name,
                    skip: 0,
                    each: timeout.is_some(),
                };
                let frame = wire::start(&header).and_then(|mut frame| {
                    frame.extend_from_slice(&args);
                    wire::finish(&mut frame).map(|()| frame)
                });
                let payload_at = frame.as_ref().map_or(0, |frame| frame.len() - args.len());
                let shape = Shaped::Chunk(ChunkCall {
                    payload_at,
                    sent,
                    unsent: Vec::new(),
                    finish: results::raw_chunk,
                });
                let frame = frame.map_err(|message| Error::Codec { message });
                self.queue(id, name, frame, timeout, None, shape)
            }
        }
    }

    fn submit_chunk<T: Task>(
        &self,
        items: Vec<T::Args>,
    ) -> Result<Future<Chunk<T::Output>>, Error> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let timeout = self.shared.task_timeout;
        let header = Request::RunChunk {
            id,
            task: T::NAME,
            skip: 0,
            each: timeout.is_some(),
        };
        let (frame, payload_at, unsent) = match encode_chunk::<T>(&header, &items) {
            Ok(encoded) => encoded,
            Err(message) => (Err(message), 0, Vec::new()),
        };
        let sent = items.len() - unsent.len();
        drop(items);
        if sent == 0 && !unsent.is_empty() {
            // Nothing to send: every item failed to encode.
            let promise = Promise::new();
            let future = promise.future();
            let errors = unsent.into_iter().map(|(_, error)| Err(error)).collect();
            promise.complete(Ok(Chunk::Mixed(errors)));
            return Ok(future);
        }
        let shape = Shaped::Chunk(ChunkCall {
            payload_at,
            sent,
            unsent,
            finish: results::decode_chunk::<T::Output>,
        });
        let frame = frame.map_err(|message| Error::Codec { message });
        self.queue(id, Cow::Borrowed(T::NAME), frame, timeout, None, shape)
    }

    /// Queues an encoded request; a request that could not be encoded fails its own future.
    fn queue<R: Send + 'static>(
        &self,
        id: u64,
        task: Cow<'static, str>,
        frame: Result<Vec<u8>, Error>,
        timeout: Option<Duration>,
        fault: Option<Fault>,
        shape: Shaped<R>,
    ) -> Result<Future<R>, Error> {
        let promise = Promise::new();
        let future = promise.future();
        match frame {
            // A slot thread that waits for this future while the call is queued (a
            // done-callback) runs it itself, on its own worker: see `RemoteCall::run`.
            Ok(frame) => self.slots.submit_runnable_for(
                Box::new(RemoteCall {
                    promise,
                    id,
                    task,
                    frame,
                    timeout,
                    fault,
                    shape: Some(shape),
                    shared: Arc::clone(&self.shared),
                }),
                &future,
            )?,
            Err(error) => promise.complete(Err(error)),
        }
        Ok(future)
    }
}

/// Encodes a chunk's request: the header, then a record (see [`wire::push_record`]) for each
/// item that can be encoded, so that the worker decodes each item on its own. Returns the
/// frame (or why it could not be built), where its payload starts, and the items that could
/// not be encoded, each with its error.
#[allow(clippy::type_complexity)]
fn encode_chunk<T: Task>(
    header: &Request<'_>,
    items: &[T::Args],
) -> Result<(Result<Vec<u8>, String>, usize, Vec<(usize, Error)>), String> {
    let mut frame = wire::start(header)?;
    let payload_at = frame.len();
    let mut unsent = Vec::new();
    for (position, item) in items.iter().enumerate() {
        if let Err(why) = wire::push_record(&mut frame, item) {
            unsent.push((
                position,
                Error::Codec {
                    message: format!(
                        "could not encode the arguments of task `{}` (item {position} of its \
                         chunk): {why}",
                        T::NAME
                    ),
                },
            ));
        }
    }
    let frame = wire::finish(&mut frame).map(|()| frame);
    Ok((frame, payload_at, unsent))
}

impl Default for ProcessPoolExecutor {
    fn default() -> ProcessPoolExecutor {
        ProcessPoolExecutor::new()
    }
}

impl Executor for ProcessPoolExecutor {
    fn submit<T: Task>(&self, task: T, args: T::Args) -> Result<Future<T::Output>, Error> {
        self.submit_inner(task, args, self.shared.task_timeout, None)
    }

    fn map<T, I>(&self, task: T, inputs: I) -> Map<'_, I::IntoIter, T::Output>
    where
        T: Task,
        I: IntoIterator<Item = T::Args>,
        I::IntoIter: Send,
    {
        let _ = task;
        let submit = move |chunk: Vec<T::Args>| self.submit_chunk::<T>(chunk);
        Map::new(inputs.into_iter(), self.max_workers(), Box::new(submit))
    }

    /// With [`Shutdown::kill_workers`], queued tasks are cancelled first, as
    /// [`kill_workers`](ProcessPoolExecutor::kill_workers) does: a queued future fails with
    /// [`Error::Cancelled`], never with [`Error::WorkerDied`] for a worker it never reached;
    /// a running one fails with [`Error::WorkerDied`].
    fn shutdown(&self, how: Shutdown) {
        if how.kills_workers() {
            // Killing first would let a slot whose worker just died take a queued task before
            // the queue is cancelled, and lose it to the kill.
            self.force_shutdown(KillSwitch::kill);
        }
        self.slots.shutdown(how);
    }

    fn max_workers(&self) -> usize {
        self.shared.max_workers
    }
}

impl fmt::Debug for ProcessPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPoolExecutor")
            .field("max_workers", &self.shared.max_workers)
            .field("max_tasks_per_child", &self.shared.max_tasks_per_child)
            .field("task_timeout", &self.shared.task_timeout)
            .field("live_workers", &lock(&self.shared.live).workers.len())
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Starts a worker for the calling slot, shares a progress page with it and runs the
    /// initializer in it.
    fn start_worker(self: &Arc<Self>) -> Result<Slot, Error> {
        let mut process = WorkerProcess::spawn()?;
        {
            let mut live = lock(&self.live);
            if live.killing {
                process.switch().kill();
            }
            live.workers
                .push((process.pid(), Arc::clone(process.switch())));
        }
        let page = Page::create().and_then(|page| page.send(process.socket()).map(|()| page));
        let page = match page {
            Ok(page) => page,
            Err(err) => {
                self.discard(&mut process);
                return Err(Error::Spawn {
                    reason: format!("could not share a progress page with the worker: {err}"),
                });
            }
        };
        if let Some((name, args)) = &self.initializer {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let frame = wire::with_payload(&Request::Run { id, task: name }, args)
                .map_err(|message| Error::Codec { message })?;
            process.arm(Some(id));
            let failure = match process.call(&frame, None) {
                // Initializers may return anything; only failures matter.
                Ok(Reply::Done {
                    outcome: Outcome::Value,
                    ..
                }) => None,
                Ok(Reply::Done {
                    outcome: Outcome::Panicked { message, location },
                    ..
                }) => Some(flotilla_core::Panic::new(message, location).to_string()),
                Ok(Reply::Done {
                    outcome: Outcome::UnknownTask(name),
                    ..
                }) => Some(Error::UnknownTask { name }.to_string()),
                Ok(Reply::Done {
                    outcome: Outcome::Failed(why),
                    ..
                }) => Some(why),
                Ok(other) => Some(format!("the worker answered with {other:?}")),
                Err(CallError::Died(exit)) => Some(exit.to_string()),
                Err(other) => Some(format!("{other:?}")),
            };
            if let Some(why) = failure {
                self.discard(&mut process);
                return Err(Error::Broken {
                    reason: format!("the initializer `{name}` failed: {why}"),
                });
            }
        }
        Ok(Slot {
            process: Some(process),
            page,
            healthy: true,
            shared: Arc::clone(self),
        })
    }

    /// Kills and reaps a worker that will not serve, and forgets it.
    fn discard(&self, process: &mut WorkerProcess) {
        process.kill_and_reap();
        lock(&self.live)
            .workers
            .retain(|(pid, _)| *pid != process.pid());
    }
}
