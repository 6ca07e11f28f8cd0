//! [`ThreadPoolExecutor`]: Python's `ThreadPoolExecutor`, for closures and registered tasks.

mod builder;
mod scope;

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use self::builder::Config;
pub use self::builder::ThreadPoolBuilder;
pub use self::scope::Scope;
use crate::error::Error;
use crate::executor::{Executor, Shutdown, Task};
use crate::future::{Future, Promise, RunInline};
use crate::map::{Chunk, Map};
use crate::panic;
use crate::primitives::lock;

/// A pool of threads that runs closures and [`Task`]s: Python's
/// `concurrent.futures.ThreadPoolExecutor`.
///
/// Threads start on demand, up to [`max_workers`](ThreadPoolBuilder::max_workers), and a
/// thread that finished a task is reused before a new one is started. Each task returns a
/// [`Future`]; a task that panics completes its future with [`Error::Panicked`] and the worker
/// thread carries on.
///
/// Besides the portable [`Executor`] methods, which take registered tasks, the pool runs any
/// `FnOnce() -> R + Send + 'static` closure with [`spawn`](ThreadPoolExecutor::spawn) and maps
/// any `Fn(A) -> R` over an iterator with [`map_fn`](ThreadPoolExecutor::map_fn).
///
/// # Dropping
///
/// Dropping the pool shuts it down and waits for the queued and running tasks still wanted,
/// like leaving Python's `with` block (see [`Executor`](Executor#dropping)); after
/// [`shutdown`](Executor::shutdown) with [`Shutdown::wait`]`(false)` it does not wait. When
/// the last handle is dropped by one of the pool's own tasks or done-callbacks, it does not
/// wait either (waiting there could never finish). Dropping a task's [`Future`] cancels the
/// task if it is still queued; a running task runs to its end.
///
/// # Examples
///
/// ```
/// use flotilla::ThreadPoolExecutor;
///
/// let pool = ThreadPoolExecutor::builder()
///     .max_workers(4)
///     .thread_name_prefix("fetch")
///     .build()?;
/// let name = pool.spawn(|| std::thread::current().name().map(String::from))?;
/// assert_eq!(name.result()?.as_deref(), Some("fetch_0"));
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct ThreadPoolExecutor {
    shared: Arc<Shared>,
}

struct Shared {
    id: u64,
    config: Config,
    /// Present while the pool accepts work; `shutdown` and breakage take it away, which lets
    /// the workers drain the queue and exit.
    gate: RwLock<Gate>,
    jobs: Receiver<Job>,
    /// Tokens for idle workers: a worker adds one when it finishes a task, a submit that finds
    /// one takes it instead of starting a thread (CPython's `_idle_semaphore`).
    idle: AtomicUsize,
    /// `workers.started`, readable without the lock: once every thread is started, submits
    /// skip the idle-token and spawn bookkeeping altogether.
    started: AtomicUsize,
    workers: Mutex<Workers>,
    /// Signalled each time a worker thread ends (`Workers::live` dropped).
    exited: Condvar,
    /// Set by an explicit `shutdown` that said not to wait: `Drop` does not wait either.
    released: AtomicBool,
}

struct Gate {
    sender: Option<Sender<Job>>,
    broken: Option<String>,
}

#[derive(Default)]
struct Workers {
    started: usize,
    /// Worker threads that have not finished yet. A `shutdown` that waits waits for this to
    /// reach 0, not only for the handles it joined: concurrent `shutdown`s share the handles.
    live: usize,
    handles: Vec<JoinHandle<()>>,
}

type Job = Box<dyn Runnable>;

/// A queued task, type-erased. Other executors built on this pool (the process pool's slots)
/// queue their own kinds of task.
pub trait Runnable: Send {
    /// Runs the task (unless it was cancelled), calls [`Worker::idle`] just before completing
    /// the future so that a caller woken by the result finds this worker free, then completes
    /// it.
    fn run(self: Box<Self>, worker: &Worker<'_>);
    /// Drops the task unrun: cancels its future, or fails it with `error`.
    fn discard(self: Box<Self>, error: Option<Error>);
}

struct Closure<F, R> {
    f: F,
    promise: Promise<R>,
}

/// What a [`Slot`] holds: a queued task that either the queue or a thread of the same pool
/// waiting for its future runs, whichever takes it out first.
trait Held: Send {
    /// Runs the task; `worker` says whose thread this is (and whether it was already busy).
    fn run(self, worker: &Worker<'_>);
    /// Drops the task unrun: cancels its future, or fails it with `error`.
    fn discard(self, error: Option<Error>);
}

impl<F, R> Held for Closure<F, R>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    /// Runs `f` unless the task was cancelled; tells `worker` it is idle just before the
    /// future completes (or instead, if it was cancelled).
    fn run(self, worker: &Worker<'_>) {
        let Closure { f, promise } = self;
        if promise.set_running() {
            let outcome = panic::catch(f).map_err(Error::Panicked);
            worker.idle();
            promise.complete(outcome);
        } else {
            worker.idle();
        }
    }

    fn discard(self, error: Option<Error>) {
        match error {
            None => self.promise.cancel(),
            Some(error) => self.promise.complete(Err(error)),
        }
    }
}

/// Another executor's task (the process pool's calls).
impl Held for Job {
    fn run(self, worker: &Worker<'_>) {
        Runnable::run(self, worker);
    }

    fn discard(self, error: Option<Error>) {
        Runnable::discard(self, error);
    }
}

/// A task shared by the queue and the threads waiting for its future: whichever takes it out
/// first runs it. A thread of the same pool that waits for the task while it is still queued
/// runs it itself (the queue might otherwise wait on that very thread).
struct Slot<J> {
    pool: u64,
    /// The pool, for the [`Worker`] an inline run is given; a pool thread keeps it alive.
    shared: Weak<Shared>,
    job: Mutex<Option<J>>,
}

impl<J: Held + 'static> Slot<J> {
    /// A queued slot for `job`, offered to the threads that will wait for `future`.
    fn queue<T>(shared: &Arc<Shared>, job: J, future: &Future<T>) -> Queued<J> {
        let slot = Arc::new(Slot {
            pool: shared.id,
            shared: Arc::downgrade(shared),
            job: Mutex::new(Some(job)),
        });
        let inline: Weak<Slot<J>> = Arc::downgrade(&slot);
        future.run_inline_with(inline);
        Queued(slot)
    }

    fn take(&self) -> Option<J> {
        lock(&self.job).take()
    }
}

impl<J: Held> RunInline for Slot<J> {
    fn run_inline(&self) -> bool {
        if CURRENT_POOL.with(Cell::get) != self.pool {
            return false;
        }
        // A pool thread holds its pool: this fails only if the ids ever wrapped round.
        let Some(shared) = self.shared.upgrade() else {
            return false;
        };
        let job = lock(&self.job).take();
        match job {
            Some(job) => {
                // This thread was busy before and stays busy after: no idle token to give.
                job.run(&Worker {
                    shared: &shared,
                    inline: true,
                });
                true
            }
            None => false,
        }
    }
}

/// The queue's entry for a [`Slot`].
struct Queued<J>(Arc<Slot<J>>);

impl<J: Held + 'static> Runnable for Queued<J> {
    fn run(self: Box<Self>, worker: &Worker<'_>) {
        match self.0.take() {
            Some(job) => job.run(worker),
            // Run already by a thread that waited for it.
            None => worker.idle(),
        }
    }

    fn discard(self: Box<Self>, error: Option<Error>) {
        if let Some(job) = self.0.take() {
            job.discard(error);
        }
    }
}

/// What a running [`Runnable`] may tell the pool about the thread running it.
pub struct Worker<'a> {
    shared: &'a Arc<Shared>,
    /// Running a queued task inline, on a thread that was busy already (waiting for it).
    inline: bool,
}

impl fmt::Debug for Worker<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("inline", &self.inline)
            .finish_non_exhaustive()
    }
}

impl Worker<'_> {
    /// This thread is about to be free for another task. Does nothing while the task runs
    /// inline: the thread goes back to the wait that ran it, not to the queue.
    pub fn idle(&self) {
        if !self.inline {
            self.shared.idle.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The pool cannot work any more: fail what is queued and refuse what comes.
    pub fn break_pool(&self, reason: String) {
        self.shared.break_pool(reason);
    }

    /// Queues another task on this thread's pool, unless the queue is bounded and full
    /// ([`Error::QueueFull`]): it never blocks.
    pub(crate) fn try_submit(&self, job: Job) -> Result<(), Error> {
        self.shared.submit_with(job, false)
    }
}

static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The id of the pool whose worker this thread is (0: none).
    static CURRENT_POOL: Cell<u64> = const { Cell::new(0) };
}

impl ThreadPoolExecutor {
    /// A pool with the default configuration: up to `min(32, cpus + 4)` threads, as in Python.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = flotilla::ThreadPoolExecutor::new();
    /// assert!(pool.spawn(|| ()).is_ok());
    /// ```
    pub fn new() -> ThreadPoolExecutor {
        ThreadPoolExecutor::from_config(Config::default())
    }

    /// Starts configuring a pool.
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::new()
    }

    fn from_config(config: Config) -> ThreadPoolExecutor {
        panic::install_hook();
        let (sender, jobs) = match config.max_queued {
            Some(bound) => crossbeam_channel::bounded(bound),
            None => crossbeam_channel::unbounded(),
        };
        let id = NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed);
        ThreadPoolExecutor {
            shared: Arc::new(Shared {
                id,
                config,
                gate: RwLock::new(Gate {
                    sender: Some(sender),
                    broken: None,
                }),
                jobs,
                idle: AtomicUsize::new(0),
                started: AtomicUsize::new(0),
                workers: Mutex::new(Workers::default()),
                exited: Condvar::new(),
                released: AtomicBool::new(false),
            }),
        }
    }

    /// Runs `f` on a pool thread and returns its future at once.
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] after shutdown, [`Error::Broken`] if an initializer failed,
    /// [`Error::QueueFull`] if the queue is bounded, full and the pool was built with
    /// [`block_when_full(false)`](ThreadPoolBuilder::block_when_full).
    ///
    /// # Blocking
    ///
    /// Never blocks, unless the pool has a bounded queue that is full and was built to block.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = flotilla::ThreadPoolExecutor::new();
    /// let fut = pool.spawn(|| "hello from a pool thread")?;
    /// assert_eq!(fut.result()?, "hello from a pool thread");
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn spawn<F, R>(&self, f: F) -> Result<Future<R>, Error>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let promise = Promise::new();
        let future = promise.future();
        let job = Slot::queue(&self.shared, Closure { f, promise }, &future);
        self.shared.submit(Box::new(job))?;
        Ok(future)
    }

    /// Lazily applies the closure `f` to each input on the pool: [`Executor::map`] for
    /// closures.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = flotilla::ThreadPoolExecutor::new();
    /// let lengths: Vec<usize> = pool
    ///     .map_fn(|word: &str| word.len(), ["thread", "pool"])
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(lengths, [6, 4]);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn map_fn<F, A, R, I>(&self, f: F, inputs: I) -> Map<'_, I::IntoIter, R>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        R: Send + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send,
    {
        let f = Arc::new(f);
        let submit = move |chunk: Vec<A>| {
            let f = Arc::clone(&f);
            self.spawn(move || Chunk::run(chunk, |input| f(input)))
        };
        Map::new(inputs.into_iter(), self.max_workers(), Box::new(submit))
    }

    /// Queues a task of another executor's own kind.
    #[doc(hidden)]
    pub fn submit_runnable(&self, job: Box<dyn Runnable>) -> Result<(), Error> {
        self.shared.submit(job)
    }

    /// Queues a task of another executor's own kind that completes `future`: a thread of this
    /// pool that blocks on `future` while `job` is still queued takes it out of the queue and
    /// runs it itself, as the pool's own closures are run; [`Worker::idle`] does nothing then.
    #[doc(hidden)]
    pub fn submit_runnable_for<T>(
        &self,
        job: Box<dyn Runnable>,
        future: &Future<T>,
    ) -> Result<(), Error> {
        let job = Slot::queue(&self.shared, job, future);
        self.shared.submit(Box::new(job))
    }

    /// How many threads are running now (they start on demand).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = flotilla::ThreadPoolExecutor::new();
    /// assert_eq!(pool.num_threads(), 0);
    /// pool.spawn(|| ())?.result()?;
    /// assert_eq!(pool.num_threads(), 1);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn num_threads(&self) -> usize {
        lock(&self.shared.workers).started
    }
}

impl Default for ThreadPoolExecutor {
    fn default() -> ThreadPoolExecutor {
        ThreadPoolExecutor::new()
    }
}

impl Shared {
    /// `Ok` while the pool takes work; otherwise the error a submit would get.
    fn accepting(&self) -> Result<(), Error> {
        let gate = self
            .gate
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match gate.sender {
            Some(_) => Ok(()),
            None => Err(gate.refusal()),
        }
    }

    fn submit(self: &Arc<Self>, job: Job) -> Result<(), Error> {
        self.submit_with(job, self.config.block_when_full)
    }

    /// Queues `job`; on a full bounded queue waits for room if `block`, else fails.
    fn submit_with(self: &Arc<Self>, job: Job, block: bool) -> Result<(), Error> {
        let gate = self
            .gate
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(sender) = &gate.sender else {
            return Err(gate.refusal());
        };
        match sender.try_send(job) {
            Ok(()) => self.adjust_thread_count(gate),
            Err(TrySendError::Full(job)) if block => {
                // Block outside the lock so that a concurrent shutdown is not held up; the
                // cloned sender keeps the queue open until this job is in it.
                let sender = sender.clone();
                self.adjust_thread_count(gate)?;
                sender.send(job).map_err(|_| Error::Shutdown)
            }
            Err(TrySendError::Full(_)) => Err(Error::QueueFull),
            Err(TrySendError::Disconnected(_)) => Err(Error::Shutdown),
        }
    }

    /// Starts a worker unless an idle one can take the job just queued.
    fn adjust_thread_count(
        self: &Arc<Self>,
        gate: std::sync::RwLockReadGuard<'_, Gate>,
    ) -> Result<(), Error> {
        if self.started.load(Ordering::Acquire) >= self.config.max_workers {
            return Ok(());
        }
        let claimed = self
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if claimed {
            return Ok(());
        }
        let mut workers = lock(&self.workers);
        if workers.started >= self.config.max_workers {
            return Ok(());
        }
        let index = workers.started;
        let shared = Arc::clone(self);
        let mut thread = thread::Builder::new().name(format!("{}_{index}", self.config.prefix));
        if let Some(size) = self.config.stack_size {
            thread = thread.stack_size(size);
        }
        match thread.spawn(move || shared.work()) {
            Ok(handle) => {
                workers.started += 1;
                self.started.store(workers.started, Ordering::Release);
                workers.live += 1;
                workers.handles.push(handle);
                Ok(())
            }
            Err(err) if workers.started == 0 => {
                drop((workers, gate));
                let reason = format!("could not start a worker thread: {err}");
                self.break_pool(reason.clone());
                Err(Error::Broken { reason })
            }
            Err(err) => {
                // The running workers will get to the job.
                tracing::warn!(%err, "could not start another worker thread");
                Ok(())
            }
        }
    }

    /// A worker thread's life: run the initializer, then jobs until the queue closes.
    fn work(self: Arc<Self>) {
        CURRENT_POOL.with(|pool| pool.set(self.id));
        let _exit = ExitGuard(&self);
        if let Some(init) = &self.config.initializer {
            let failure = match panic::catch(|| init()) {
                Ok(Ok(())) => None,
                Ok(Err(message)) => Some(message),
                Err(panic) => Some(panic.to_string()),
            };
            if let Some(message) = failure {
                self.break_pool(format!("the initializer failed: {message}"));
                return;
            }
        }
        let worker = Worker {
            shared: &self,
            inline: false,
        };
        while let Ok(job) = self.jobs.recv() {
            job.run(&worker);
        }
    }

    /// Marks the pool broken: later submits fail and every queued task fails with the reason.
    fn break_pool(&self, reason: String) {
        let mut gate = self
            .gate
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        gate.sender = None;
        gate.broken.get_or_insert(reason);
        let reason = gate.broken.clone().unwrap_or_default();
        drop(gate);
        tracing::error!(%reason, "thread pool broken");
        while let Ok(job) = self.jobs.try_recv() {
            job.discard(Some(Error::Broken {
                reason: reason.clone(),
            }));
        }
    }

    fn shutdown(&self, how: Shutdown) {
        self.gate
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .sender = None;
        if !how.wait {
            self.released.store(true, Ordering::Release);
        }
        if how.cancel_futures {
            while let Ok(job) = self.jobs.try_recv() {
                job.discard(None);
            }
        }
        // Waiting from inside one of our own tasks could never finish: the waiting thread is
        // one of those waited for, and other tasks may depend on it.
        if how.wait && CURRENT_POOL.with(Cell::get) != self.id {
            let handles = std::mem::take(&mut lock(&self.workers).handles);
            for handle in handles {
                // Worker machinery does not panic; tasks' panics are caught.
                let _ = handle.join();
            }
            // Another `shutdown` may have taken the handles: wait for its workers too.
            let mut workers = lock(&self.workers);
            while workers.live > 0 {
                workers = self
                    .exited
                    .wait(workers)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        }
    }
}

/// Counts a worker thread out when it ends, however it ends.
struct ExitGuard<'a>(&'a Shared);

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        lock(&self.0.workers).live -= 1;
        self.0.exited.notify_all();
    }
}

impl Gate {
    fn refusal(&self) -> Error {
        match &self.broken {
            Some(reason) => Error::Broken {
                reason: reason.clone(),
            },
            None => Error::Shutdown,
        }
    }
}

impl Executor for ThreadPoolExecutor {
    fn submit<T: Task>(&self, task: T, args: T::Args) -> Result<Future<T::Output>, Error> {
        self.spawn(move || task.run(args))
    }

    fn map<T, I>(&self, task: T, inputs: I) -> Map<'_, I::IntoIter, T::Output>
    where
        T: Task,
        I: IntoIterator<Item = T::Args>,
        I::IntoIter: Send,
    {
        self.map_fn(move |args| task.run(args), inputs)
    }

    fn shutdown(&self, how: Shutdown) {
        self.shared.shutdown(how);
    }

    fn max_workers(&self) -> usize {
        self.shared.config.max_workers
    }
}

impl Drop for ThreadPoolExecutor {
    fn drop(&mut self) {
        let wait = !self.shared.released.load(Ordering::Acquire);
        self.shared.shutdown(Shutdown::new().wait(wait));
    }
}

impl fmt::Debug for ThreadPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolExecutor")
            .field("max_workers", &self.shared.config.max_workers)
            .field("thread_name_prefix", &self.shared.config.prefix)
            .field("threads", &self.num_threads())
            .field("queued", &self.shared.jobs.len())
            .finish_non_exhaustive()
    }
}
