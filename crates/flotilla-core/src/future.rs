//! [`Future`]: the handle to a task's eventual result, and [`Promise`], the side that fills it.
//!
//! A future moves through the states Python's `concurrent.futures.Future` has:
//!
//! ```text
//! pending ──set_running──▶ running ──complete──▶ finished (value or error)
//!    │                        │
//!    └──cancel()──▶ cancelled ◀┘ (only where the executor can stop a running task)
//! ```
//!
//! Handles are cheap to clone; every clone sees the same state. Reading the value with
//! [`Future::result`] clones it (so any number of readers can), while [`Future::into_result`]
//! and `.await` move it out, after which other handles get [`Error::ResultTaken`].
//!
//! A task is wanted while someone holds a handle to it: dropping the last handle of an
//! unfinished future cancels the task (see [`Future`] for what that does on each kind of
//! executor), and [`Future::detach`] keeps it running with no handle at all.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::panic;
use crate::primitives::{
    Arc, AtomicBool, AtomicUsize, Condvar, Mutex, MutexGuard, deadline_in, lock, spin_until,
    wait_until,
};
use std::sync::atomic::Ordering;

/// The eventual result of a task: Python's `concurrent.futures.Future`.
///
/// Executors return one from every `submit`. Wait for it with [`result`](Future::result),
/// [`exception`](Future::exception) or `.await` (it implements [`std::future::Future`], so
/// any async runtime can await it), react to it with
/// [`add_done_callback`](Future::add_done_callback), or stop it with
/// [`cancel`](Future::cancel). Many futures at once are handled by [`wait`](crate::wait) and
/// [`as_completed`](crate::as_completed).
///
/// # Examples
///
/// ```
/// use flotilla::ThreadPoolExecutor;
///
/// let pool = ThreadPoolExecutor::new();
/// let fut = pool.spawn(|| 6 * 7)?;
/// assert_eq!(fut.result()?, 42);
/// assert!(fut.done() && !fut.cancelled());
/// # Ok::<(), flotilla::Error>(())
/// ```
///
/// # Dropping
///
/// A task is wanted while a handle to its future exists. Dropping a clone does nothing else,
/// but dropping the **last** handle of a future that is not done yet cancels its task, as
/// [`cancel`](Future::cancel) would, and with the same reach on each executor:
///
/// - a task still queued never runs (its done-callbacks run, seeing it cancelled);
/// - a task running on a process pool is stopped: its worker process is killed and replaced;
/// - a task running on a thread pool runs to its end (threads cannot be stopped from outside)
///   and its result is thrown away.
///
/// So `tokio::time::timeout(Duration::from_secs(1), fut)` that gives up also gives up the task.
/// To start a task and not wait for it (Python's fire-and-forget `submit`), call
/// [`detach`](Future::detach). Handles held inside flotilla do not keep a task wanted:
/// [`wait`](crate::wait) and [`as_completed`](crate::as_completed) hold the handles you gave
/// them (clones, if you passed references) and hand them back, and a done-callback receives a
/// borrowed handle.
///
/// ```
/// use flotilla::{sync::Event, ThreadPoolExecutor};
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let pool = ThreadPoolExecutor::builder().max_workers(1).build()?;
/// let gate = Arc::new(Event::new());
/// let g = Arc::clone(&gate);
/// let busy = pool.spawn(move || { g.wait(); })?;
/// let ran = Arc::new(AtomicBool::new(false));
/// let r = Arc::clone(&ran);
/// let queued = pool.spawn(move || r.store(true, Ordering::SeqCst))?;
/// let watcher = queued.clone();
/// drop(queued); // a clone is left: still wanted
/// assert!(!watcher.done());
/// drop(watcher); // the last handle: the task is cancelled and never runs
/// gate.set();
/// busy.result()?;
/// drop(pool); // waits for everything still wanted
/// assert!(!ran.load(Ordering::SeqCst));
/// # Ok::<(), flotilla::Error>(())
/// ```
///
/// # Waiting inside a thread pool
///
/// A thread of a [`ThreadPoolExecutor`](crate::ThreadPoolExecutor) (a task, or a done-callback
/// run there) that waits, with any of the blocking reads, [`wait`](crate::wait) or
/// [`as_completed`](crate::as_completed), on a task of its *own* pool still in the queue takes
/// that task out of the queue and runs it itself, so a `max_workers(1)` pool waiting on itself
/// does not deadlock. A task already running, on another thread or as the waiter itself, is
/// waited for as usual: a task waiting on its own future waits until its time limit (for ever
/// without one). Threads outside the pool, and threads of other pools, never run its tasks.
/// A process pool's slot threads do the same with its queued tasks, each on its own worker
/// process (see `ProcessPoolExecutor`).
///
/// ```
/// use flotilla::ThreadPoolExecutor;
/// use std::sync::Arc;
///
/// let pool = Arc::new(ThreadPoolExecutor::builder().max_workers(1).build()?);
/// let p = Arc::clone(&pool);
/// let outer = pool.spawn(move || p.spawn(|| 6 * 7).unwrap().result().unwrap())?;
/// assert_eq!(outer.result()?, 42);
/// # Ok::<(), flotilla::Error>(())
/// ```
#[must_use = "dropping the last handle of a future cancels its task; call .detach() to let it run"]
pub struct Future<T> {
    inner: Arc<Inner<T>>,
    /// This handle's entry in the future's wakers, once `poll` registered one.
    waker: Option<usize>,
}

/// The producing side of a [`Future`], for executor implementations.
///
/// An executor creates a promise per task, hands [`future`](Promise::future) to the caller,
/// calls [`set_running`](Promise::set_running) when a worker picks the task up, and
/// [`complete`](Promise::complete)s it. A promise dropped without completing finishes its future
/// with [`Error::Abandoned`], so no future can be left waiting forever by an executor bug or a
/// lost task.
///
/// # Examples
///
/// ```
/// use flotilla::Promise;
///
/// let promise = Promise::new();
/// let fut = promise.future();
/// std::thread::spawn(move || {
///     if promise.set_running() {
///         promise.complete(Ok("hello"));
///     }
/// });
/// assert_eq!(fut.result()?, "hello");
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Promise<T> {
    inner: Option<Arc<Inner<T>>>,
}

struct Inner<T> {
    state: Mutex<State<T>>,
    settled: Condvar,
    /// Set (under the lock) once the phase is final, so waiters can spin on it without locking.
    done: AtomicBool,
    /// How many [`Future`] handles exist; the one whose drop takes it to zero cancels the task,
    /// unless it is done or detached.
    handles: AtomicUsize,
}

type Callback<T> = Box<dyn FnOnce(&Future<T>) + Send>;
type Canceller = Box<dyn FnOnce() + Send>;
/// Asked by `cancel()` whether the task could be cancelled; see [`Promise::on_cancel_request`].
type CancelRequest = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;
/// A queued task that a thread blocked on its future may run itself; see [`RunInline`].
type Inline = std::sync::Weak<dyn RunInline>;

/// A task still in an executor's queue that the thread waiting for it may take out and run,
/// for an executor whose queue could otherwise wait on that very thread (a pool thread waiting
/// on a task of its own pool).
pub(crate) trait RunInline: Send + Sync {
    /// Runs the task on this thread, if it is still queued and this thread may run it; true
    /// if it ran.
    fn run_inline(&self) -> bool;
}

struct State<T> {
    phase: Phase<T>,
    /// Threads blocked on `settled`; completion only pays for a wake-up when this is non-zero.
    sleepers: usize,
    callbacks: Vec<Callback<T>>,
    /// One entry per handle that polled the future (`Future::waker`) and per `wait` or
    /// `as_completed` watching it, so giving up a poll frees its waker.
    wakers: Wakers,
    /// Set by executors that can stop a running task (a process pool kills the worker).
    canceller: Option<Canceller>,
    /// Set by executors that must ask elsewhere (a server) whether a task can be cancelled.
    request: Option<CancelRequest>,
    /// Set by [`Future::detach`]: the task runs on when the last handle is dropped.
    detached: bool,
    /// Set by executors whose waiting threads may run a still-queued task themselves.
    inline: Option<Inline>,
}

/// The wakers registered with a pending future, each under a key its registrant keeps so
/// that it can replace or remove its own entry; completion takes them all.
#[derive(Default)]
struct Wakers {
    slots: Vec<Option<Waker>>,
    /// Keys of empty slots, reused before the vector grows.
    free: Vec<usize>,
}

impl Wakers {
    fn insert(&mut self, waker: Waker) -> usize {
        match self.free.pop() {
            Some(key) => {
                self.slots[key] = Some(waker);
                key
            }
            None => {
                self.slots.push(Some(waker));
                self.slots.len() - 1
            }
        }
    }

    /// Stores `waker` under `key` unless the one there already wakes the same task; returns
    /// the waker replaced.
    ///
    /// Replaced and removed wakers are handed back so that the caller drops them after
    /// unlocking: dropping a waker can free the task that polled, and with it a handle to this
    /// very future, whose own drop locks the state.
    #[must_use = "drop the waker after unlocking"]
    fn update(&mut self, key: usize, waker: &Waker) -> Option<Waker> {
        let slot = self.slots.get_mut(key)?;
        if slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            return None;
        }
        slot.replace(waker.clone())
    }

    /// Frees `key`'s entry, returning its waker. Keys handed out before completion took every
    /// waker are ignored.
    #[must_use = "drop the waker after unlocking"]
    fn remove(&mut self, key: usize) -> Option<Waker> {
        let waker = self.slots.get_mut(key)?.take();
        if waker.is_some() {
            self.free.push(key);
        }
        waker
    }
}

enum Phase<T> {
    Pending,
    Running,
    Cancelled,
    Finished(Result<T, Error>),
    /// Finished with a value that a consuming read moved out.
    Taken,
}

impl<T> Phase<T> {
    fn is_done(&self) -> bool {
        matches!(self, Phase::Cancelled | Phase::Finished(_) | Phase::Taken)
    }
}

impl<T> Inner<T> {
    fn new() -> Arc<Inner<T>> {
        Arc::new(Inner {
            state: Mutex::new(State {
                phase: Phase::Pending,
                sleepers: 0,
                callbacks: Vec::new(),
                wakers: Wakers::default(),
                canceller: None,
                request: None,
                detached: false,
                inline: None,
            }),
            settled: Condvar::new(),
            done: AtomicBool::new(false),
            handles: AtomicUsize::new(0),
        })
    }
}

impl<T> Future<T> {
    /// Attempts to cancel the task.
    ///
    /// Returns `true` if the future is now cancelled: it was still pending, it was already
    /// cancelled, or it was running on an executor that can stop running tasks (a process pool
    /// kills the worker). Returns `false` if it already finished or is running on threads, which
    /// cannot be stopped from outside. Done-callbacks run when a cancel succeeds.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::{sync::Event, ThreadPoolExecutor};
    /// use std::sync::Arc;
    ///
    /// let pool = ThreadPoolExecutor::builder().max_workers(1).build()?;
    /// let gate = Arc::new(Event::new());
    /// let g = gate.clone();
    /// let busy = pool.spawn(move || { g.wait(); })?;
    /// let queued = pool.spawn(|| 1)?;
    /// assert!(queued.cancel());
    /// assert!(queued.result().unwrap_err().is_cancelled());
    /// gate.set();
    /// busy.result()?;
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn cancel(&self) -> bool {
        cancel(&self.inner, lock(&self.inner.state))
    }

    /// Lets the task run on with no handle left: dropping every handle no longer cancels it.
    ///
    /// This is Python's fire-and-forget `submit`. Detaching is for good and concerns the task,
    /// not this handle: once any handle was detached, dropping the others does not cancel the
    /// task either (an explicit [`cancel`](Future::cancel) still does). Done-callbacks still run;
    /// a panic of the task is reported nowhere but through them.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::ThreadPoolExecutor;
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let (tx, rx) = mpsc::channel();
    /// pool.spawn(move || tx.send("ran anyway").unwrap())?.detach();
    /// assert_eq!(rx.recv().unwrap(), "ran anyway");
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn detach(self) {
        lock(&self.inner.state).detached = true;
    }

    /// True if the future was cancelled.
    pub fn cancelled(&self) -> bool {
        matches!(lock(&self.inner.state).phase, Phase::Cancelled)
    }

    /// True while a worker is running the task.
    pub fn running(&self) -> bool {
        matches!(lock(&self.inner.state).phase, Phase::Running)
    }

    /// True once the future is cancelled or finished.
    pub fn done(&self) -> bool {
        lock(&self.inner.state).phase.is_done()
    }

    /// Waits as long as it takes for the task and returns a clone of its value.
    ///
    /// [`result_timeout`](Future::result_timeout) waits at most a given time.
    ///
    /// # Errors
    ///
    /// [`Error::Cancelled`], the task's own failure ([`Error::Panicked`], ...), or
    /// [`Error::ResultTaken`] if another handle moved the value out.
    ///
    /// # Blocking
    ///
    /// Blocks the calling thread; in async code, `.await` the future instead. Called from a
    /// task of the thread pool on a future still queued in the same pool, it runs that task
    /// inline rather than wait for a free worker.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::ThreadPoolExecutor;
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let fut = pool.spawn(|| String::from("done"))?;
    /// assert_eq!(fut.result()?, "done");
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn result(&self) -> Result<T, Error>
    where
        T: Clone,
    {
        self.result_within(None)
    }

    /// Waits at most `timeout` for the task and returns a clone of its value.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if `timeout` passes first (the task goes on), or any error of
    /// [`result`](Future::result).
    ///
    /// # Blocking
    ///
    /// Blocks the calling thread for at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::ThreadPoolExecutor;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let fut = pool.spawn(|| String::from("done"))?;
    /// assert_eq!(fut.result_timeout(Duration::from_secs(5))?, "done");
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn result_timeout(&self, timeout: Duration) -> Result<T, Error>
    where
        T: Clone,
    {
        self.result_within(Some(timeout))
    }

    fn result_within(&self, timeout: Option<Duration>) -> Result<T, Error>
    where
        T: Clone,
    {
        let state = self.wait_settled(timeout)?;
        match &state.phase {
            Phase::Finished(result) => result.clone(),
            Phase::Cancelled => Err(Error::Cancelled),
            Phase::Taken => Err(Error::ResultTaken),
            Phase::Pending | Phase::Running => unreachable!("wait_settled returns settled states"),
        }
    }

    /// Waits for the task and moves its value out, for values that are not `Clone`.
    ///
    /// Other handles to the same future then get [`Error::ResultTaken`] from `result`; errors
    /// are cloned, not taken.
    ///
    /// # Errors
    ///
    /// As [`result`](Future::result). This consumes the handle, so on [`Error::Timeout`]
    /// it is gone: if it was the last, the task is cancelled (see [Dropping](Future#dropping)).
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::ThreadPoolExecutor;
    ///
    /// struct NotClone(u8);
    /// let pool = ThreadPoolExecutor::new();
    /// let value = pool.spawn(|| NotClone(7))?.into_result()?;
    /// assert_eq!(value.0, 7);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn into_result(self) -> Result<T, Error> {
        let mut state = self.wait_settled(None)?;
        take_outcome(&mut state.phase)
    }

    /// [`into_result`](Future::into_result), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if `timeout` passes first; then the handle is gone: if it was the
    /// last, the task is cancelled (see [Dropping](Future#dropping)). Otherwise as
    /// [`result`](Future::result).
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::ThreadPoolExecutor;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let value = pool.spawn(|| vec![1, 2])?.into_result_timeout(Duration::from_secs(5))?;
    /// assert_eq!(value, [1, 2]);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn into_result_timeout(self, timeout: Duration) -> Result<T, Error> {
        let mut state = self.wait_settled(Some(timeout))?;
        take_outcome(&mut state.phase)
    }

    /// Waits as long as it takes for the task and returns its error, or `None` if it produced a
    /// value.
    ///
    /// This is Python's `Future.exception()`: a cancelled future or a timeout is reported as
    /// the outer error, the task's own failure as the inner value.
    ///
    /// # Errors
    ///
    /// [`Error::Cancelled`].
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::ThreadPoolExecutor;
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let ok = pool.spawn(|| 1)?;
    /// let bad = pool.spawn(|| -> i32 { panic!("boom") })?;
    /// assert!(ok.exception()?.is_none());
    /// assert!(bad.exception()?.unwrap().is_panic());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn exception(&self) -> Result<Option<Error>, Error> {
        self.exception_within(None)
    }

    /// [`exception`](Future::exception), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if `timeout` passes first, or [`Error::Cancelled`].
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::ThreadPoolExecutor;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let ok = pool.spawn(|| 1)?;
    /// assert!(ok.exception_timeout(Duration::from_secs(5))?.is_none());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn exception_timeout(&self, timeout: Duration) -> Result<Option<Error>, Error> {
        self.exception_within(Some(timeout))
    }

    fn exception_within(&self, timeout: Option<Duration>) -> Result<Option<Error>, Error> {
        let state = self.wait_settled(timeout)?;
        match &state.phase {
            Phase::Finished(Err(err)) => Ok(Some(err.clone())),
            Phase::Finished(Ok(_)) | Phase::Taken => Ok(None),
            Phase::Cancelled => Err(Error::Cancelled),
            Phase::Pending | Phase::Running => unreachable!("wait_settled returns settled states"),
        }
    }

    /// Calls `callback` with this future once it is done (finished or cancelled).
    ///
    /// Callbacks added before completion run in the order they were added, on the thread that
    /// completes the future; a callback added once the future is done runs at once on the
    /// calling thread (so, as in Python, it may run before earlier callbacks still being run by
    /// the completing thread). Each runs exactly once. A callback that panics is logged
    /// (`tracing` at error level) and the others still run.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::ThreadPoolExecutor;
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let (tx, rx) = mpsc::channel();
    /// let fut = pool.spawn(|| 2 + 2)?;
    /// fut.add_done_callback(move |f| tx.send(f.result().unwrap()).unwrap());
    /// assert_eq!(rx.recv().unwrap(), 4);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn add_done_callback<F>(&self, callback: F)
    where
        F: FnOnce(&Future<T>) + Send + 'static,
    {
        let mut state = lock(&self.inner.state);
        if state.phase.is_done() {
            drop(state);
            run_callback(self, Box::new(callback));
        } else {
            state.callbacks.push(Box::new(callback));
        }
    }

    /// Consumes this handle and calls `callback` with the task's outcome, owned, once it is
    /// done: `multiprocessing.Pool.apply_async`'s `callback` and `error_callback` in one.
    ///
    /// Unlike [`add_done_callback`](Future::add_done_callback), the callback gets the value
    /// itself (moved out, so `T` need not be `Clone`), and the task is
    /// [detached](Future::detach): it runs even though no handle is left, as Python's
    /// `apply_async` does when its result object is thrown away. The callback runs on the
    /// thread that completes the future, or at once on the calling thread if it is done
    /// already. A cancelled task calls it with [`Error::Cancelled`]; if another handle moved
    /// the value out first, it gets [`Error::ResultTaken`]. A callback that panics is logged,
    /// as done-callbacks are.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::{Executor, ThreadPoolExecutor};
    /// use std::sync::mpsc;
    ///
    /// #[flotilla::task]
    /// fn shout(word: String) -> String {
    ///     word.to_uppercase()
    /// }
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let (tx, rx) = mpsc::channel();
    /// // Pool.apply_async(shout, ("hi",), callback=..., error_callback=...)
    /// pool.submit(ShoutTask, "hi".into())?.on_result(move |outcome| match outcome {
    ///     Ok(loud) => tx.send(loud).unwrap(),
    ///     Err(err) => eprintln!("failed: {err}"),
    /// });
    /// assert_eq!(rx.recv().unwrap(), "HI");
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn on_result<F>(self, callback: F)
    where
        F: FnOnce(Result<T, Error>) + Send + 'static,
    {
        self.add_done_callback(move |done| {
            let outcome = take_outcome(&mut lock(&done.inner.state).phase);
            callback(outcome);
        });
        self.detach();
    }

    /// Blocks until the future is settled or `timeout` passes, returning the locked state.
    fn wait_settled(&self, timeout: Option<Duration>) -> Result<MutexGuard<'_, State<T>>, Error> {
        let deadline = timeout.and_then(deadline_in);
        match self.settled_by(deadline) {
            Some(state) => Ok(state),
            None => Err(Error::Timeout {
                waited: timeout.unwrap_or_default(),
                unfinished: None,
            }),
        }
    }

    /// Blocks until the future is settled (`Some(state)`) or `deadline` passes (`None`).
    fn settled_by(&self, deadline: Option<Instant>) -> Option<MutexGuard<'_, State<T>>> {
        self.run_inline_if_queued();
        if deadline.is_none_or(|d| d > Instant::now()) {
            spin_until(|| self.inner.done.load(Ordering::Acquire));
        }
        let mut state = lock(&self.inner.state);
        while !state.phase.is_done() {
            state.sleepers += 1;
            let (next, expired) = wait_until(&self.inner.settled, state, deadline);
            state = next;
            state.sleepers -= 1;
            if expired && !state.phase.is_done() {
                return None;
            }
        }
        Some(state)
    }

    /// Offers `task` to the threads that block waiting for this future while it is pending:
    /// each such wait calls [`RunInline::run_inline`] before it sleeps.
    pub(crate) fn run_inline_with(&self, task: Inline) {
        let mut state = lock(&self.inner.state);
        if !state.phase.is_done() {
            state.inline = Some(task);
        }
    }

    /// Lets the executor run the task on this thread if it is still queued and the executor
    /// allows it: a pool thread waiting on a queued task of its own pool would otherwise wait
    /// for a thread that may never be free. True if the task ran here.
    pub(crate) fn run_inline_if_queued(&self) -> bool {
        let hook = {
            let state = lock(&self.inner.state);
            match (&state.phase, &state.inline) {
                (Phase::Pending, Some(hook)) => hook.clone(),
                _ => return false,
            }
        };
        hook.upgrade().is_some_and(|task| task.run_inline())
    }

    /// Waits until `deadline` (forever if `None`) and, if the future is done by then, moves its
    /// outcome out. `None` means the deadline passed first.
    pub(crate) fn take_by(&self, deadline: Option<Instant>) -> Option<Result<T, Error>> {
        self.settled_by(deadline)
            .map(|mut state| take_outcome(&mut state.phase))
    }

    /// What makes this future itself: equal for all handles to one task.
    pub(crate) fn identity(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// True if the future finished with an error (not a cancellation): `FIRST_EXCEPTION`.
    pub(crate) fn failed(&self) -> bool {
        matches!(lock(&self.inner.state).phase, Phase::Finished(Err(_)))
    }

    /// Arranges for `waker` to be woken when the future is done, returning the key that
    /// [`deregister`](Future::deregister) takes, or `None` (registering nothing) if it is done.
    pub(crate) fn register(&self, waker: Waker) -> Option<usize> {
        let mut state = lock(&self.inner.state);
        if state.phase.is_done() {
            return None;
        }
        Some(state.wakers.insert(waker))
    }

    /// Forgets a waker registered with [`register`](Future::register).
    pub(crate) fn deregister(&self, key: usize) {
        let waker = lock(&self.inner.state).wakers.remove(key);
        drop(waker);
    }

    /// A new handle: the task is wanted until it, and every other handle, is dropped.
    fn from_inner(inner: &Arc<Inner<T>>) -> Future<T> {
        inner.handles.fetch_add(1, Ordering::Relaxed);
        Future {
            inner: Arc::clone(inner),
            waker: None,
        }
    }
}

/// What [`Future::cancel`] does, from the locked state.
fn cancel<T>(inner: &Arc<Inner<T>>, state: MutexGuard<'_, State<T>>) -> bool {
    if let (Some(request), false) = (state.request.clone(), state.phase.is_done()) {
        // The executor decides, outside the lock (it may talk to a server); a result that
        // lands meanwhile wins.
        drop(state);
        if !request() {
            return false;
        }
        let state = lock(&inner.state);
        return match state.phase {
            Phase::Pending | Phase::Running => {
                settle(inner, state, Phase::Cancelled);
                true
            }
            Phase::Cancelled => true,
            Phase::Finished(_) | Phase::Taken => false,
        };
    }
    let mut state = state;
    match state.phase {
        Phase::Pending => {
            settle(inner, state, Phase::Cancelled);
            true
        }
        Phase::Running => match state.canceller.take() {
            Some(stop) => {
                settle(inner, state, Phase::Cancelled);
                stop();
                true
            }
            None => false,
        },
        Phase::Cancelled => true,
        Phase::Finished(_) | Phase::Taken => false,
    }
}

/// Stores the final phase and wakes everyone waiting, then runs the done-callbacks outside
/// the lock, each given a handle of its own.
fn settle<T>(inner: &Arc<Inner<T>>, mut state: MutexGuard<'_, State<T>>, phase: Phase<T>) {
    state.phase = phase;
    inner.done.store(true, Ordering::Release);
    let callbacks = std::mem::take(&mut state.callbacks);
    // Most futures have no waker, canceller or request: the common completion takes and drops
    // nothing it does not have.
    let wakers = (!state.wakers.slots.is_empty()).then(|| std::mem::take(&mut state.wakers));
    let extras = if state.canceller.is_some() || state.request.is_some() {
        Some((state.canceller.take(), state.request.take()))
    } else {
        None
    };
    state.inline = None;
    if state.sleepers > 0 {
        inner.settled.notify_all();
    }
    drop(state);
    drop(extras);
    if let Some(wakers) = wakers {
        for waker in wakers.slots.into_iter().flatten() {
            waker.wake();
        }
    }
    if !callbacks.is_empty() {
        // A handle made now cannot cancel anything: the future is done.
        let future = Future::from_inner(inner);
        for callback in callbacks {
            run_callback(&future, callback);
        }
    }
}

fn take_outcome<T>(phase: &mut Phase<T>) -> Result<T, Error> {
    match std::mem::replace(phase, Phase::Taken) {
        Phase::Finished(Ok(value)) => Ok(value),
        other => {
            let outcome = match &other {
                Phase::Finished(Err(err)) => Err(err.clone()),
                Phase::Cancelled => Err(Error::Cancelled),
                Phase::Taken => Err(Error::ResultTaken),
                Phase::Finished(Ok(_)) | Phase::Pending | Phase::Running => {
                    unreachable!("only settled futures are taken")
                }
            };
            *phase = other;
            outcome
        }
    }
}

fn run_callback<T>(future: &Future<T>, callback: Callback<T>) {
    if let Err(panic) = panic::catch(move || callback(future)) {
        tracing::error!(%panic, "a done-callback panicked; the other callbacks still run");
    }
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Future<T> {
        Future::from_inner(&self.inner)
    }
}

/// Dropping the last handle of an unfinished future cancels its task unless it was detached;
/// see [Dropping](Future#dropping).
impl<T> Drop for Future<T> {
    fn drop(&mut self) {
        let key = self.waker.take();
        // AcqRel: the drop that reaches zero sees what every other handle did before its own
        // drop, `detach` included.
        let last = self.inner.handles.fetch_sub(1, Ordering::AcqRel) == 1;
        let unfinished = !self.inner.done.load(Ordering::Acquire);
        if !(unfinished && (last || key.is_some())) {
            return;
        }
        let mut state = lock(&self.inner.state);
        let waker = key.and_then(|key| state.wakers.remove(key));
        if last && !state.detached && !state.phase.is_done() {
            cancel(&self.inner, state);
        } else {
            drop(state);
        }
        drop(waker);
    }
}

impl<'a, T> From<&'a Future<T>> for Future<T> {
    fn from(future: &'a Future<T>) -> Future<T> {
        future.clone()
    }
}

/// Futures compare equal when they are handles to the same task, as Python futures do.
impl<T> PartialEq for Future<T> {
    fn eq(&self, other: &Future<T>) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl<T> Eq for Future<T> {}

impl<T> Hash for Future<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = phase_name(&lock(&self.inner.state).phase);
        f.debug_struct("Future").field("state", &state).finish()
    }
}

fn phase_name<T>(phase: &Phase<T>) -> &'static str {
    match phase {
        Phase::Pending => "pending",
        Phase::Running => "running",
        Phase::Cancelled => "cancelled",
        Phase::Finished(Ok(_)) | Phase::Taken => "finished",
        Phase::Finished(Err(_)) => "failed",
    }
}

/// Awaiting a future moves its value out, like [`Future::into_result`]; clone the handle first
/// to keep one.
///
/// A handle keeps one waker, the one of its latest poll, and dropping the handle releases it:
/// any number of pollers may give up on a pending future without it holding on to their wakers.
///
/// ```
/// # use flotilla::ThreadPoolExecutor;
/// # let pool = ThreadPoolExecutor::new();
/// let fut = pool.spawn(|| 5)?;
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// assert_eq!(rt.block_on(fut)?, 5);
/// # Ok::<(), flotilla::Error>(())
/// ```
impl<T> std::future::Future for Future<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut state = lock(&this.inner.state);
        if state.phase.is_done() {
            // Completion took every waker: this handle's key means nothing any more.
            this.waker = None;
            return Poll::Ready(take_outcome(&mut state.phase));
        }
        // One waker per handle: a poll by another task replaces the one before.
        let replaced = match this.waker {
            Some(key) => state.wakers.update(key, cx.waker()),
            None => {
                this.waker = Some(state.wakers.insert(cx.waker().clone()));
                None
            }
        };
        drop(state);
        drop(replaced);
        Poll::Pending
    }
}

impl<T> Promise<T> {
    /// Creates a pending task's promise; [`future`](Promise::future) gives out handles to it.
    pub fn new() -> Promise<T> {
        Promise {
            inner: Some(Inner::new()),
        }
    }

    /// A handle to the future this promise completes.
    pub fn future(&self) -> Future<T> {
        Future::from_inner(self.inner())
    }

    /// Marks the task as running, unless it was cancelled: Python's
    /// `set_running_or_notify_cancel`.
    ///
    /// Returns `false` if the future was cancelled (the executor must then skip the task) or
    /// is not pending any more.
    pub fn set_running(&self) -> bool {
        let mut state = lock(&self.inner().state);
        match state.phase {
            Phase::Pending => {
                state.phase = Phase::Running;
                true
            }
            _ => false,
        }
    }

    /// True if the future has been cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(lock(&self.inner().state).phase, Phase::Cancelled)
    }

    /// Lets [`Future::cancel`] stop the task while it runs: `stop` is called (once, outside
    /// any lock) when a running future is cancelled. If the future is already cancelled, `stop`
    /// is called at once.
    pub fn on_cancel<F>(&self, stop: F)
    where
        F: FnOnce() + Send + 'static,
    {
        let mut state = lock(&self.inner().state);
        match state.phase {
            Phase::Cancelled => {
                drop(state);
                stop();
            }
            Phase::Pending | Phase::Running => state.canceller = Some(Box::new(stop)),
            Phase::Finished(_) | Phase::Taken => {}
        }
    }

    /// Lets the executor decide what [`Future::cancel`] does, pending or running: `request` is
    /// called (outside any lock, perhaps several times, from any thread) and returns whether the
    /// task is now cancelled for good, for an executor whose queue lives elsewhere (a server)
    /// and can only be cancelled there, atomically. On `true` the future becomes cancelled,
    /// unless a result landed first; on `false` `cancel()` returns `false` and the task goes on.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::Promise;
    ///
    /// let promise = Promise::<u32>::new();
    /// let fut = promise.future();
    /// promise.on_cancel_request(|| false); // say, the server had already started it
    /// assert!(!fut.cancel());
    /// promise.complete(Ok(7));
    /// assert_eq!(fut.result()?, 7);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn on_cancel_request<F>(&self, request: F)
    where
        F: Fn() -> bool + Send + Sync + 'static,
    {
        let mut state = lock(&self.inner().state);
        if !state.phase.is_done() {
            state.request = Some(std::sync::Arc::new(request));
        }
    }

    /// Finishes the future with `outcome`, waking every waiter and running the done-callbacks
    /// on this thread. Does nothing if the future was cancelled meanwhile.
    pub fn complete(mut self, outcome: Result<T, Error>) {
        if let Some(inner) = self.inner.take() {
            Self::finish(&inner, outcome);
        }
    }

    /// Cancels a task the executor decided not to run (for example at shutdown), as
    /// [`Future::cancel`] would.
    pub fn cancel(mut self) {
        if let Some(inner) = self.inner.take() {
            let state = lock(&inner.state);
            if !state.phase.is_done() {
                settle(&inner, state, Phase::Cancelled);
            }
        }
    }

    fn finish(inner: &Arc<Inner<T>>, outcome: Result<T, Error>) {
        let state = lock(&inner.state);
        if !state.phase.is_done() {
            settle(inner, state, Phase::Finished(outcome));
        }
    }

    fn inner(&self) -> &Arc<Inner<T>> {
        match &self.inner {
            Some(inner) => inner,
            None => unreachable!("a promise is only emptied by a method that consumes it"),
        }
    }
}

impl<T> Default for Promise<T> {
    fn default() -> Promise<T> {
        Promise::new()
    }
}

impl<T> Drop for Promise<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            Self::finish(&inner, Err(Error::Abandoned));
        }
    }
}

impl<T> fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Some(inner) => f
                .debug_struct("Promise")
                .field("state", &phase_name(&lock(&inner.state).phase))
                .finish(),
            None => f.write_str("Promise { completed }"),
        }
    }
}
