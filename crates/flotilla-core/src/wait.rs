//! Waiting on many futures at once: [`wait`], [`as_completed`] and their async forms.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::future::Future;
use crate::primitives::{Condvar, Mutex, deadline_in, lock, wait_until};

/// When [`wait`] returns: Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION` and `ALL_COMPLETED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any future is done (finished or cancelled).
    FirstCompleted,
    /// As soon as any future fails with an error (cancellation does not count), or when all
    /// are done.
    FirstException,
    /// When every future is done.
    AllCompleted,
}

/// Waits as long as it takes for `futures` until `return_when` holds; returns `(done, not_done)`.
///
/// Both lists keep the input order; a future given twice appears once. Accepts owned futures
/// or references (`&futures` works for a `Vec<Future<T>>`). [`wait_timeout`] also stops when a
/// time limit passes.
///
/// # Blocking
///
/// Blocks the calling thread; async code uses [`wait_async`].
///
/// # Dropping
///
/// `wait` holds the futures it was given for as long as it runs and hands them all back, so
/// it never cancels anything. Given references, it holds clones.
///
/// # Examples
///
/// ```
/// use flotilla::{wait, ReturnWhen, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::new();
/// let futures: Vec<_> = (0..4).map(|i| pool.spawn(move || i * 10)).collect::<Result<_, _>>()?;
/// let (done, not_done) = wait(&futures, ReturnWhen::AllCompleted);
/// assert_eq!(done.len(), 4);
/// assert!(not_done.is_empty());
/// # Ok::<(), flotilla::Error>(())
/// ```
pub fn wait<T, I>(futures: I, return_when: ReturnWhen) -> (Vec<Future<T>>, Vec<Future<T>>)
where
    I: IntoIterator,
    I::Item: Into<Future<T>>,
{
    wait_until_deadline(futures, None, return_when)
}

/// [`wait`], stopping when `timeout` passes: Python's `wait(fs, timeout, return_when)`.
///
/// A timeout is not an error here: it just leaves futures in `not_done`.
///
/// # Blocking
///
/// Blocks the calling thread for at most `timeout`.
///
/// # Examples
///
/// ```
/// use flotilla::{wait_timeout, ReturnWhen, ThreadPoolExecutor};
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// let pool = ThreadPoolExecutor::new();
/// let (release, gate) = mpsc::channel::<()>();
/// let quick = pool.spawn(|| Some(()))?;
/// let stuck = pool.spawn(move || gate.recv().ok())?;
/// let (done, not_done) =
///     wait_timeout([&quick, &stuck], ReturnWhen::AllCompleted, Duration::from_millis(50));
/// assert_eq!((done.len(), not_done.len()), (1, 1));
/// drop(release);
/// # Ok::<(), flotilla::Error>(())
/// ```
pub fn wait_timeout<T, I>(
    futures: I,
    return_when: ReturnWhen,
    timeout: Duration,
) -> (Vec<Future<T>>, Vec<Future<T>>)
where
    I: IntoIterator,
    I::Item: Into<Future<T>>,
{
    wait_until_deadline(futures, deadline_in(timeout), return_when)
}

fn wait_until_deadline<T, I>(
    futures: I,
    deadline: Option<Instant>,
    return_when: ReturnWhen,
) -> (Vec<Future<T>>, Vec<Future<T>>)
where
    I: IntoIterator,
    I::Item: Into<Future<T>>,
{
    let mut watch = Watch::new(futures);
    loop {
        watch.collect();
        if watch.satisfies(return_when) {
            break;
        }
        if watch.block(deadline) {
            watch.collect();
            break;
        }
    }
    watch.split()
}

/// The async form of [`wait`]: resolves to `(done, not_done)` once `return_when` holds.
///
/// For a time limit, wrap it in your runtime's timeout (`tokio::time::timeout`).
///
/// # Examples
///
/// ```
/// use flotilla::{wait_async, ReturnWhen, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::new();
/// let futures = vec![pool.spawn(|| 1)?, pool.spawn(|| 2)?];
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let (done, _) = rt.block_on(wait_async(&futures, ReturnWhen::FirstCompleted));
/// assert!(!done.is_empty());
/// # Ok::<(), flotilla::Error>(())
/// ```
pub fn wait_async<T, I>(futures: I, return_when: ReturnWhen) -> WaitAsync<T>
where
    I: IntoIterator,
    I::Item: Into<Future<T>>,
{
    WaitAsync {
        watch: Some(Watch::new(futures)),
        return_when,
    }
}

/// The future returned by [`wait_async`].
///
/// Dropping it before it resolves (say, under a runtime's timeout) drops the futures it holds:
/// given owned futures, their tasks are cancelled; given references, nothing changes.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct WaitAsync<T> {
    watch: Option<Watch<T>>,
    return_when: ReturnWhen,
}

impl<T> std::future::Future for WaitAsync<T> {
    type Output = (Vec<Future<T>>, Vec<Future<T>>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let return_when = self.return_when;
        let Some(watch) = self.watch.as_mut() else {
            panic!("WaitAsync polled after it completed");
        };
        watch.signal.set_waker(cx.waker());
        watch.collect();
        if watch.satisfies(return_when) {
            let watch = self.watch.take().unwrap_or_else(|| unreachable!());
            return Poll::Ready(watch.split());
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for WaitAsync<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitAsync")
            .field("return_when", &self.return_when)
            .finish_non_exhaustive()
    }
}

/// Yields `futures` as they complete: Python's `as_completed`.
///
/// Futures already done come first (in input order), then each as it finishes; duplicates are
/// yielded once. Without a time limit every item is `Ok`; [`as_completed_timeout`] yields an
/// [`Error::Timeout`] when its limit passes.
///
/// The iterator keeps no handle to a future it has yielded: given owned futures
/// (`as_completed(futures)`), each one and its value are freed as soon as the caller drops
/// what was yielded, however long the iteration goes on.
///
/// # Blocking
///
/// `next()` blocks; async code uses [`as_completed_stream`].
///
/// # Dropping
///
/// The iterator holds the futures not yet yielded. Dropping it drops them: given owned
/// futures, those were the last handles, so their tasks are cancelled (see
/// [Dropping](Future#dropping)); given references (`as_completed(&futures)`), it holds
/// clones and dropping it changes nothing.
///
/// # Examples
///
/// ```
/// use flotilla::{as_completed, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::new();
/// let futures: Vec<_> = (1..=3).map(|i| pool.spawn(move || i)).collect::<Result<_, _>>()?;
/// let mut total = 0;
/// for fut in as_completed(&futures) {
///     total += fut?.result()?;
/// }
/// assert_eq!(total, 6);
/// # Ok::<(), flotilla::Error>(())
/// ```
pub fn as_completed<T, I>(futures: I) -> AsCompleted<T>
where
    I: IntoIterator,
    I::Item: Into<Future<T>>,
{
    AsCompleted {
        deadline: None,
        watch: Watch::new(futures),
        ended: false,
    }
}

/// [`as_completed`] with a time limit measured from this call.
///
/// If `timeout` passes before every future is yielded, the iterator yields one
/// [`Error::Timeout`] saying how many futures are unfinished, then ends.
///
/// # Examples
///
/// ```
/// use flotilla::{as_completed_timeout, ThreadPoolExecutor};
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// let pool = ThreadPoolExecutor::new();
/// let (release, gate) = mpsc::channel::<()>();
/// let futures = vec![pool.spawn(|| None)?, pool.spawn(move || gate.recv().ok())?];
/// let items: Vec<_> = as_completed_timeout(&futures, Duration::from_millis(50)).collect();
/// assert!(items[0].is_ok());
/// assert!(items[1].as_ref().unwrap_err().is_timeout());
/// drop(release);
/// # Ok::<(), flotilla::Error>(())
/// ```
pub fn as_completed_timeout<T, I>(futures: I, timeout: Duration) -> AsCompleted<T>
where
    I: IntoIterator,
    I::Item: Into<Future<T>>,
{
    AsCompleted {
        deadline: deadline_in(timeout).map(|d| (d, timeout)),
        watch: Watch::new(futures),
        ended: false,
    }
}

/// The iterator returned by [`as_completed`]; see there for what dropping it does.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct AsCompleted<T> {
    watch: Watch<T>,
    deadline: Option<(Instant, Duration)>,
    ended: bool,
}

impl<T> Iterator for AsCompleted<T> {
    type Item = Result<Future<T>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        loop {
            if let Some(future) = self.watch.next_done() {
                return Some(Ok(future));
            }
            if self.watch.all_yielded() {
                self.ended = true;
                return None;
            }
            if self.watch.block(self.deadline.map(|(at, _)| at)) && !self.watch.has_ready() {
                self.ended = true;
                let (total, left) = (self.watch.futures.len(), self.watch.unyielded());
                let waited = self.deadline.map(|(_, t)| t).unwrap_or_default();
                return Some(Err(Error::Timeout {
                    waited,
                    unfinished: Some((left, total)),
                }));
            }
        }
    }
}

impl<T> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("futures", &self.watch.futures.len())
            .field("unfinished", &self.watch.unyielded())
            .finish_non_exhaustive()
    }
}

/// Yields `futures` as they complete, as an async [`Stream`](futures_core::Stream).
///
/// The async form of [`as_completed`], which also keeps no handle to a future it has yielded;
/// for a time limit use your runtime's timeout. Consume
/// it with [`next`](AsCompletedStream::next), or as a `Stream` with any stream combinators.
///
/// # Examples
///
/// ```
/// use flotilla::{as_completed_stream, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::new();
/// let futures = vec![pool.spawn(|| 1)?, pool.spawn(|| 2)?];
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let mut stream = as_completed_stream(&futures);
/// let sum = rt.block_on(async {
///     let mut sum = 0;
///     while let Some(fut) = stream.next().await {
///         sum += fut.await.unwrap();
///     }
///     sum
/// });
/// assert_eq!(sum, 3);
/// # Ok::<(), flotilla::Error>(())
/// ```
pub fn as_completed_stream<T, I>(futures: I) -> AsCompletedStream<T>
where
    I: IntoIterator,
    I::Item: Into<Future<T>>,
{
    AsCompletedStream {
        watch: Watch::new(futures),
    }
}

/// The stream returned by [`as_completed_stream`]; dropping it drops the futures not yet
/// yielded, as dropping [`AsCompleted`] does.
#[must_use = "streams do nothing unless polled"]
pub struct AsCompletedStream<T> {
    watch: Watch<T>,
}

impl<T> AsCompletedStream<T> {
    /// The next future to complete, or `None` when all have been yielded.
    pub async fn next(&mut self) -> Option<Future<T>> {
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut *self), cx)).await
    }
}

impl<T> futures_core::Stream for AsCompletedStream<T> {
    type Item = Future<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Future<T>>> {
        self.watch.signal.set_waker(cx.waker());
        if let Some(future) = self.watch.next_done() {
            return Poll::Ready(Some(future));
        }
        if self.watch.all_yielded() {
            return Poll::Ready(None);
        }
        Poll::Pending
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.watch.unyielded();
        (left, Some(left))
    }
}

impl<T> fmt::Debug for AsCompletedStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompletedStream")
            .field("futures", &self.watch.futures.len())
            .field("unfinished", &self.watch.unyielded())
            .finish_non_exhaustive()
    }
}

/// Futures being watched: each not-yet-done future holds a waker that pushes its index onto a
/// shared queue when it completes, so waiting costs O(1) per completion, not a rescan.
struct Watch<T> {
    /// The futures, each taken out (`None`) once `next_done` hands it out, so that what the
    /// caller drops is released at once.
    futures: Vec<Option<Future<T>>>,
    /// The key of the waker registered with each future still being watched.
    wakers: Vec<Option<usize>>,
    done: Vec<bool>,
    done_count: usize,
    /// Indexes collected as done but not yet handed out by `next_done`.
    ready: VecDeque<usize>,
    yielded: usize,
    signal: Arc<Signal>,
}

#[derive(Default)]
struct Signal {
    state: Mutex<SignalState>,
    woken: Condvar,
}

#[derive(Default)]
struct SignalState {
    completed: VecDeque<usize>,
    sleeping: bool,
    waker: Option<Waker>,
}

struct Slot {
    signal: Arc<Signal>,
    index: usize,
}

impl Wake for Slot {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut state = lock(&self.signal.state);
        state.completed.push_back(self.index);
        let waker = state.waker.take();
        if state.sleeping {
            self.signal.woken.notify_one();
        }
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Signal {
    fn set_waker(&self, waker: &Waker) {
        let mut state = lock(&self.state);
        if !state.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            state.waker = Some(waker.clone());
        }
    }
}

impl<T> Watch<T> {
    fn new<I>(futures: I) -> Watch<T>
    where
        I: IntoIterator,
        I::Item: Into<Future<T>>,
    {
        let mut seen = HashSet::new();
        let futures: Vec<Future<T>> = futures
            .into_iter()
            .map(Into::into)
            .filter(|f| seen.insert(f.identity()))
            .collect();
        let signal = Arc::new(Signal::default());
        let n = futures.len();
        // Already-done futures first, in input order; then register a waker with the rest.
        let ready: VecDeque<usize> = (0..n).filter(|&i| futures[i].done()).collect();
        let mut done = vec![false; n];
        for &i in &ready {
            done[i] = true;
        }
        let wakers = (0..n)
            .map(|index| {
                if done[index] {
                    return None;
                }
                let waker = Waker::from(Arc::new(Slot {
                    signal: Arc::clone(&signal),
                    index,
                }));
                let key = futures[index].register(waker);
                if key.is_none() {
                    lock(&signal.state).completed.push_back(index);
                }
                key
            })
            .collect();
        Watch {
            done_count: ready.len(),
            futures: futures.into_iter().map(Some).collect(),
            wakers,
            done,
            ready,
            yielded: 0,
            signal,
        }
    }

    /// Moves completions reported by the wakers into `ready`.
    fn collect(&mut self) {
        let completed = std::mem::take(&mut lock(&self.signal.state).completed);
        for index in completed {
            if !self.done[index] {
                self.done[index] = true;
                self.done_count += 1;
                self.wakers[index] = None;
                self.ready.push_back(index);
            }
        }
    }

    fn satisfies(&self, return_when: ReturnWhen) -> bool {
        let all = self.done_count == self.futures.len();
        match return_when {
            ReturnWhen::AllCompleted => all,
            ReturnWhen::FirstCompleted => all || self.done_count > 0,
            ReturnWhen::FirstException => {
                all || self
                    .ready
                    .iter()
                    .any(|&i| self.futures[i].as_ref().is_some_and(Future::failed))
            }
        }
    }

    /// Sleeps until a completion arrives or `deadline` passes; returns true on expiry. A pool
    /// thread watching a still-queued task of its own pool runs that task instead of sleeping.
    fn block(&self, deadline: Option<Instant>) -> bool {
        let mut watched = self.futures.iter().flatten();
        if watched.any(Future::run_inline_if_queued) {
            return false;
        }
        let mut state = lock(&self.signal.state);
        while state.completed.is_empty() {
            state.sleeping = true;
            let (next, expired) = wait_until(&self.signal.woken, state, deadline);
            state = next;
            state.sleeping = false;
            if expired {
                return state.completed.is_empty();
            }
        }
        false
    }

    fn has_ready(&self) -> bool {
        !self.ready.is_empty() || !lock(&self.signal.state).completed.is_empty()
    }

    fn next_done(&mut self) -> Option<Future<T>> {
        self.collect();
        let index = self.ready.pop_front()?;
        self.yielded += 1;
        self.futures[index].take()
    }

    fn all_yielded(&self) -> bool {
        self.yielded == self.futures.len()
    }

    fn unyielded(&self) -> usize {
        self.futures.len() - self.yielded
    }

    /// `(done, not_done)` by each future's state now, in input order.
    fn split(mut self) -> (Vec<Future<T>>, Vec<Future<T>>) {
        self.forget_wakers();
        std::mem::take(&mut self.futures)
            .into_iter()
            .flatten()
            .partition(Future::done)
    }

    fn forget_wakers(&mut self) {
        for (future, waker) in self.futures.iter().zip(self.wakers.iter_mut()) {
            if let (Some(future), Some(key)) = (future, waker.take()) {
                future.deregister(key);
            }
        }
    }
}

impl<T> Drop for Watch<T> {
    fn drop(&mut self) {
        self.forget_wakers();
    }
}
