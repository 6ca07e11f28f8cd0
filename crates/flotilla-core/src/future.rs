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

use std::fmt;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::panic;
use crate::primitives::{
    Arc, AtomicBool, Condvar, Mutex, MutexGuard, deadline_in, lock, spin_until, wait_until,
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
/// assert_eq!(fut.result(None)?, 42);
/// assert!(fut.done() && !fut.cancelled());
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Future<T> {
    inner: Arc<Inner<T>>,
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
/// assert_eq!(fut.result(None)?, "hello");
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
}

type Callback<T> = Box<dyn FnOnce(&Future<T>) + Send>;
type Canceller = Box<dyn FnOnce() + Send>;
/// Asked by `cancel()` whether the task could be cancelled; see [`Promise::on_cancel_request`].
type CancelRequest = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

struct State<T> {
    phase: Phase<T>,
    /// Threads blocked on `settled`; completion only pays for a wake-up when this is non-zero.
    sleepers: usize,
    callbacks: Vec<Callback<T>>,
    wakers: Vec<Waker>,
    /// Set by executors that can stop a running task (a process pool kills the worker).
    canceller: Option<Canceller>,
    /// Set by executors that must ask elsewhere (a server) whether a task can be cancelled.
    request: Option<CancelRequest>,
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
                wakers: Vec::new(),
                canceller: None,
                request: None,
            }),
            settled: Condvar::new(),
            done: AtomicBool::new(false),
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
    /// let busy = pool.spawn(move || { g.wait(None); })?;
    /// let queued = pool.spawn(|| 1)?;
    /// assert!(queued.cancel());
    /// assert!(queued.result(None).unwrap_err().is_cancelled());
    /// gate.set();
    /// busy.result(None)?;
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn cancel(&self) -> bool {
        let mut state = lock(&self.inner.state);
        if let (Some(request), false) = (state.request.clone(), state.phase.is_done()) {
            // The executor decides, outside the lock (it may talk to a server); a result that
            // lands meanwhile wins.
            drop(state);
            if !request() {
                return false;
            }
            let state = lock(&self.inner.state);
            return match state.phase {
                Phase::Pending | Phase::Running => {
                    self.settle(state, Phase::Cancelled);
                    true
                }
                Phase::Cancelled => true,
                Phase::Finished(_) | Phase::Taken => false,
            };
        }
        match state.phase {
            Phase::Pending => {
                self.settle(state, Phase::Cancelled);
                true
            }
            Phase::Running => match state.canceller.take() {
                Some(stop) => {
                    self.settle(state, Phase::Cancelled);
                    stop();
                    true
                }
                None => false,
            },
            Phase::Cancelled => true,
            Phase::Finished(_) | Phase::Taken => false,
        }
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

    /// Waits for the task and returns a clone of its value.
    ///
    /// `timeout` of `None` waits as long as it takes.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if `timeout` passes first (the task goes on), [`Error::Cancelled`],
    /// the task's own failure ([`Error::Panicked`], ...), or [`Error::ResultTaken`] if another
    /// handle moved the value out.
    ///
    /// # Blocking
    ///
    /// Blocks the calling thread; in async code, `.await` the future instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::ThreadPoolExecutor;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let fut = pool.spawn(|| String::from("done"))?;
    /// assert_eq!(fut.result(Some(Duration::from_secs(5)))?, "done");
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn result(&self, timeout: Option<Duration>) -> Result<T, Error>
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
    /// As [`result`](Future::result).
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::ThreadPoolExecutor;
    ///
    /// struct NotClone(u8);
    /// let pool = ThreadPoolExecutor::new();
    /// let value = pool.spawn(|| NotClone(7))?.into_result(None)?;
    /// assert_eq!(value.0, 7);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn into_result(self, timeout: Option<Duration>) -> Result<T, Error> {
        let mut state = self.wait_settled(timeout)?;
        take_outcome(&mut state.phase)
    }

    /// Waits for the task and returns its error, or `None` if it produced a value.
    ///
    /// This is Python's `Future.exception()`: a cancelled future or a timeout is reported as
    /// the outer error, the task's own failure as the inner value.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] or [`Error::Cancelled`].
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::ThreadPoolExecutor;
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let ok = pool.spawn(|| 1)?;
    /// let bad = pool.spawn(|| -> i32 { panic!("boom") })?;
    /// assert!(ok.exception(None)?.is_none());
    /// assert!(bad.exception(None)?.unwrap().is_panic());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn exception(&self, timeout: Option<Duration>) -> Result<Option<Error>, Error> {
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
    /// fut.add_done_callback(move |f| tx.send(f.result(None).unwrap()).unwrap());
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

    /// Arranges for `waker` to be woken when the future is done.
    ///
    /// Returns `false` (registering nothing) if it is already done.
    pub(crate) fn register(&self, waker: &Waker) -> bool {
        let mut state = lock(&self.inner.state);
        if state.phase.is_done() {
            return false;
        }
        if !state.wakers.iter().any(|w| w.will_wake(waker)) {
            state.wakers.push(waker.clone());
        }
        true
    }

    /// Forgets a waker registered with [`register`](Future::register).
    pub(crate) fn deregister(&self, waker: &Waker) {
        lock(&self.inner.state)
            .wakers
            .retain(|w| !w.will_wake(waker));
    }

    /// Stores the final phase and wakes everyone waiting, then runs the done-callbacks outside
    /// the lock.
    fn settle(&self, mut state: MutexGuard<'_, State<T>>, phase: Phase<T>) {
        state.phase = phase;
        self.inner.done.store(true, Ordering::Release);
        let callbacks = std::mem::take(&mut state.callbacks);
        let wakers = std::mem::take(&mut state.wakers);
        let canceller = state.canceller.take();
        let request = state.request.take();
        if state.sleepers > 0 {
            self.inner.settled.notify_all();
        }
        drop(state);
        drop(canceller);
        drop(request);
        for waker in wakers {
            waker.wake();
        }
        for callback in callbacks {
            run_callback(self, callback);
        }
    }

    fn from_inner(inner: &Arc<Inner<T>>) -> Future<T> {
        Future {
            inner: Arc::clone(inner),
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
        let state = match &lock(&self.inner.state).phase {
            Phase::Pending => "pending",
            Phase::Running => "running",
            Phase::Cancelled => "cancelled",
            Phase::Finished(Ok(_)) | Phase::Taken => "finished",
            Phase::Finished(Err(_)) => "failed",
        };
        f.debug_struct("Future").field("state", &state).finish()
    }
}

/// Awaiting a future moves its value out, like [`Future::into_result`]; clone the handle first
/// to keep one.
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
        let mut state = lock(&self.inner.state);
        if state.phase.is_done() {
            return Poll::Ready(take_outcome(&mut state.phase));
        }
        if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            state.wakers.push(cx.waker().clone());
        }
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
    /// assert_eq!(fut.result(None)?, 7);
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
            let future = Future::from_inner(&inner);
            let state = lock(&inner.state);
            if !state.phase.is_done() {
                future.settle(state, Phase::Cancelled);
            }
        }
    }

    fn finish(inner: &Arc<Inner<T>>, outcome: Result<T, Error>) {
        let state = lock(&inner.state);
        if !state.phase.is_done() {
            Future::from_inner(inner).settle(state, Phase::Finished(outcome));
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
                .field("future", &Future::from_inner(inner))
                .finish(),
            None => f.write_str("Promise { completed }"),
        }
    }
}
