//! [`ProcessPoolExecutor`]: Python's `ProcessPoolExecutor`, without `BrokenProcessPool`.
//!
//! Each of the pool's slots is a thread of an internal [`ThreadPoolExecutor`] that owns one
//! worker process and talks to it over a socket; slots, and their processes, start on demand
//! and are reused. A worker that crashes takes down only the task it was running: the slot
//! reports why (signal, exit code), reaps it, and starts a fresh worker for its next task.

pub(crate) mod child;
mod supervisor;
pub(crate) mod worker;

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;

use self::child::{CallError, KillSwitch, WorkerProcess};
use crate::registry::Shape;
use crate::wire::{self, Item, Outcome, Reply, Request};
use flotilla_core::__layer::Chunk;
use flotilla_core::__layer::{Runnable, Worker};
use flotilla_core::Map;
use flotilla_core::ThreadPoolExecutor;
use flotilla_core::primitives::lock;
use flotilla_core::{Error, Panic};
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
/// - [`Shutdown::kill_workers`] stops running tasks at shutdown.
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
/// # Examples
///
/// ```
/// use flotilla::{Executor, ProcessPoolExecutor};
///
/// #[flotilla::task]
/// fn fib(n: u64) -> u64 {
///     if n < 2 { n } else { fib::call(n - 1) + fib::call(n - 2) }
/// }
///
/// let pool = ProcessPoolExecutor::builder().max_workers(2).build()?;
/// assert_eq!(pool.submit(fib, 20)?.result(None)?, 6765);
/// let fibs: Vec<u64> = pool.map(fib, 0..10).collect::<Result<_, _>>()?;
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
    shared: Arc<Shared>,
}

impl Slot {
    fn process(&mut self) -> &mut WorkerProcess {
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
    /// let fut = pool.submit_with_timeout(spin, (), Duration::from_millis(100))?;
    /// assert!(fut.result(None).unwrap_err().is_task_timeout());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn submit_with_timeout<T: Task>(
        &self,
        task: T,
        args: T::Args,
        limit: Duration,
    ) -> Result<Future<T::Output>, Error> {
        self.submit_inner(task, args, Some(limit))
    }

    fn submit_inner<T: Task>(
        &self,
        task: T,
        args: T::Args,
        timeout: Option<Duration>,
    ) -> Result<Future<T::Output>, Error> {
        let _ = task;
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = wire::start(&Request::Run { id, task: T::NAME })
            .and_then(|frame| wire::append(frame, &args))
            .and_then(|mut frame| wire::finish(&mut frame).map(|()| frame))
            .map_err(|err| {
                format!(
                    "could not encode the arguments of task `{}`: {err}",
                    T::NAME
                )
            });
        self.queue(id, frame, timeout, decode_one::<T::Output>)
    }

    /// Runs the registered task `name` on encoded arguments in a worker process and returns its
    /// encoded result: the entry point of backends that receive tasks from elsewhere (see
    /// [`backend`](crate::backend)). With [`Shape::Chunk`](Shape::Chunk) the
    /// arguments are an encoded `Vec` of arguments and the result is decoded with
    /// [`backend::decode_chunk`](crate::backend::decode_chunk).
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
    /// let out = pool.submit_encoded(double::NAME, Shape::One, args, None)?.result(None)?;
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
        let header = match shape {
            Shape::One => Request::Run { id, task: name },
            Shape::Chunk => Request::RunChunk { id, task: name },
        };
        let frame = wire::with_payload(&header, &args);
        self.queue(id, frame, timeout.or(self.shared.task_timeout), decode_raw)
    }

    fn submit_chunk<T: Task>(
        &self,
        items: Vec<T::Args>,
    ) -> Result<Future<Chunk<T::Output>>, Error> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = wire::start(&Request::RunChunk { id, task: T::NAME })
            .and_then(|frame| wire::append(frame, &items))
            .and_then(|mut frame| wire::finish(&mut frame).map(|()| frame))
            .map_err(|err| {
                format!(
                    "could not encode the arguments of task `{}`: {err}",
                    T::NAME
                )
            });
        self.queue(
            id,
            frame,
            self.shared.task_timeout,
            decode_chunk::<T::Output>,
        )
    }

    /// Queues an encoded request; a request that could not be encoded fails its own future.
    fn queue<R: Send + 'static>(
        &self,
        id: u64,
        frame: Result<Vec<u8>, String>,
        timeout: Option<Duration>,
        decode: Decode<R>,
    ) -> Result<Future<R>, Error> {
        let promise = Promise::new();
        let future = promise.future();
        match frame {
            Ok(frame) => self.slots.submit_runnable(Box::new(RemoteCall {
                promise,
                id,
                frame,
                timeout,
                decode,
                shared: Arc::clone(&self.shared),
            }))?,
            Err(message) => promise.complete(Err(Error::Codec { message })),
        }
        Ok(future)
    }
}

impl Default for ProcessPoolExecutor {
    fn default() -> ProcessPoolExecutor {
        ProcessPoolExecutor::new()
    }
}

impl Executor for ProcessPoolExecutor {
    fn submit<T: Task>(&self, task: T, args: T::Args) -> Result<Future<T::Output>, Error> {
        self.submit_inner(task, args, self.shared.task_timeout)
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

    fn shutdown(&self, how: Shutdown) {
        if how.kills_workers() {
            let mut live = lock(&self.shared.live);
            live.killing = true;
            for (_, switch) in &live.workers {
                switch.kill();
            }
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

/// A task on its way to a worker process.
struct RemoteCall<R> {
    promise: Promise<R>,
    id: u64,
    frame: Vec<u8>,
    timeout: Option<Duration>,
    decode: Decode<R>,
    shared: Arc<Shared>,
}

/// Turns a worker's reply to task `id` (header, then payload) into the task's value.
type Decode<R> = fn(Reply, &[u8], u64) -> Result<R, Error>;

impl<R: Send> Runnable for RemoteCall<R> {
    fn run(self: Box<Self>, worker: &Worker<'_>) {
        if self.promise.is_cancelled() {
            worker.idle();
            return;
        }
        let outcome = SLOT.with(|slot| self.execute(&mut slot.borrow_mut(), worker));
        worker.idle();
        if let Some(outcome) = outcome {
            self.promise.complete(outcome);
        }
    }

    fn discard(self: Box<Self>, error: Option<Error>) {
        match error {
            None => self.promise.cancel(),
            Some(error) => self.promise.complete(Err(error)),
        }
    }
}

impl<R> RemoteCall<R> {
    /// Runs the task on this slot's worker, starting one if needed. `None` if the task was
    /// cancelled before it started.
    fn execute(&self, slot: &mut Option<Slot>, worker: &Worker<'_>) -> Option<Result<R, Error>> {
        if slot.is_none() {
            match self.shared.start_worker() {
                Ok(started) => *slot = Some(started),
                Err(err) => {
                    if let Error::Broken { reason } = &err {
                        worker.break_pool(reason.clone());
                    }
                    return self.promise.set_running().then_some(Err(err));
                }
            }
        }
        let current = slot.as_mut()?;
        let process = current.process();
        // Arm the kill switch before the task counts as running, so that a cancel() that sees
        // it running always stops it, even before the request is sent.
        let id = self.id;
        process.arm(Some(id));
        let switch = Arc::clone(process.switch());
        self.promise.on_cancel(move || {
            switch.kill_task(id);
        });
        if !self.promise.set_running() {
            process.arm(None);
            return None;
        }
        Some(match process.call(&self.frame, self.timeout) {
            Ok(reply) => {
                let worn_out = self
                    .shared
                    .max_tasks_per_child
                    .is_some_and(|limit| process.tasks_run() >= limit);
                let value = (self.decode)(reply, process.payload(), id);
                if worn_out {
                    *slot = None; // retires the worker
                }
                value
            }
            Err(CallError::TimedOut) => {
                process.kill_and_reap();
                *slot = None;
                Err(Error::TaskTimedOut {
                    limit: self.timeout.unwrap_or_default(),
                })
            }
            Err(CallError::Died(exit)) => {
                *slot = None;
                if self.promise.is_cancelled() {
                    Err(Error::Cancelled)
                } else {
                    Err(Error::WorkerDied(exit))
                }
            }
            Err(CallError::Garbled(message)) => {
                process.kill_and_reap();
                *slot = None;
                Err(Error::Codec { message })
            }
        })
    }
}

impl Shared {
    /// Starts a worker for the calling slot and runs the initializer in it.
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
        if let Some((name, args)) = &self.initializer {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let frame = wire::with_payload(&Request::Run { id, task: name }, args)
                .map_err(|message| Error::Codec { message })?;
            process.arm(Some(id));
            let failure = match process.call(&frame, None) {
                Ok(reply) => decode_one::<()>(reply, &[], id)
                    .or_else(|err| match err {
                        // Initializers may return anything; only failures matter.
                        Error::Codec { .. } => Ok(()),
                        other => Err(other),
                    })
                    .err()
                    .map(|err| err.to_string()),
                Err(CallError::Died(exit)) => Some(exit.to_string()),
                Err(other) => Some(format!("{other:?}")),
            };
            if let Some(why) = failure {
                process.kill_and_reap();
                lock(&self.live)
                    .workers
                    .retain(|(p, _)| *p != process.pid());
                return Err(Error::Broken {
                    reason: format!("the initializer `{name}` failed: {why}"),
                });
            }
        }
        Ok(Slot {
            process: Some(process),
            shared: Arc::clone(self),
        })
    }
}

fn decode_value<T: DeserializeOwned>(outcome: Outcome, payload: &[u8]) -> Result<T, Error> {
    match outcome {
        Outcome::Value => postcard::from_bytes(payload).map_err(|err| Error::Codec {
            message: format!("could not decode a task's result: {err}"),
        }),
        Outcome::Panicked { message, location } => {
            Err(Error::Panicked(Panic::new(message, location)))
        }
        Outcome::UnknownTask(name) => Err(Error::UnknownTask { name }),
        Outcome::Failed(message) => Err(Error::Codec { message }),
    }
}

fn unexpected(reply: &Reply, id: u64) -> Error {
    Error::Codec {
        message: format!("the worker answered task {id} with {reply:?}"),
    }
}

fn decode_one<T: DeserializeOwned>(reply: Reply, payload: &[u8], id: u64) -> Result<T, Error> {
    match reply {
        Reply::Done { id: got, outcome } if got == id => decode_value(outcome, payload),
        other => Err(unexpected(&other, id)),
    }
}

fn decode_raw(reply: Reply, payload: &[u8], id: u64) -> Result<Vec<u8>, Error> {
    match reply {
        Reply::Done {
            id: got,
            outcome: Outcome::Value,
        } if got == id => Ok(payload.to_vec()),
        Reply::Done { id: got, outcome } if got == id => {
            decode_value::<()>(outcome, &[]).map(|()| Vec::new())
        }
        other => Err(unexpected(&other, id)),
    }
}

fn decode_chunk<T: DeserializeOwned>(
    reply: Reply,
    payload: &[u8],
    id: u64,
) -> Result<Chunk<T>, Error> {
    let items: Vec<Item<T>> = decode_one(reply, payload, id)?;
    Ok(wire::items_to_chunk(items))
}
