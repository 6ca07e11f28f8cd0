//! [`Map`]: the lazy, bounded iterator behind every executor's `map`.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::error::Error;
use crate::future::Future;

/// The results of one chunk of inputs, one per input, in order: what a backend's chunk future
/// yields to [`Map`]. See `flotilla::backend`.
#[derive(Debug)]
pub enum Chunk<R> {
    /// Every input produced a value (the common case, stored without per-item errors).
    Values(Vec<R>),
    /// Some inputs failed.
    Mixed(Vec<Result<R, Error>>),
}

impl<R> Chunk<R> {
    /// Runs `f` on each input, catching panics per input so one failure spares the rest.
    pub(crate) fn run<A>(inputs: Vec<A>, f: impl Fn(A) -> R) -> Chunk<R> {
        let mut values = Vec::with_capacity(inputs.len());
        let mut inputs = inputs.into_iter();
        while let Some(input) = inputs.next() {
            match crate::panic::catch(|| f(input)) {
                Ok(value) => values.push(value),
                Err(panic) => {
                    let mut mixed: Vec<Result<R, Error>> = values.into_iter().map(Ok).collect();
                    mixed.push(Err(Error::Panicked(panic)));
                    mixed
                        .extend(inputs.map(|input| {
                            crate::panic::catch(|| f(input)).map_err(Error::Panicked)
                        }));
                    return Chunk::Mixed(mixed);
                }
            }
        }
        Chunk::Values(values)
    }
}

/// What is left to yield of a finished chunk.
enum Ready<R> {
    Values(std::vec::IntoIter<R>),
    Mixed(std::vec::IntoIter<Result<R, Error>>),
    /// The whole chunk failed: one error per input (or one, for a refused submit).
    Failed(Error, usize),
}

impl<R> Ready<R> {
    fn next(&mut self) -> Option<Result<R, Error>> {
        match self {
            Ready::Values(values) => values.next().map(Ok),
            Ready::Mixed(results) => results.next(),
            Ready::Failed(_, 0) => None,
            Ready::Failed(error, left) => {
                *left -= 1;
                Some(Err(error.clone()))
            }
        }
    }
}

/// Submits one chunk of inputs to a backend.
pub type SubmitChunk<'a, A, R> =
    Box<dyn FnMut(Vec<A>) -> Result<Future<Chunk<R>>, Error> + Send + 'a>;

/// The results of [`Executor::map`](crate::Executor::map), computed on the executor as the
/// iterator is consumed.
///
/// Unlike Python's `Executor.map`, which submits every input at once, `Map` is lazy: nothing is
/// submitted before the first `next()`, and at most [`buffer`](Map::buffer) chunks are in flight
/// at a time, so an endless input iterator is fine. Each item yields its own `Result`: a task
/// that fails (panics) gives an `Err` for that item and the others still come.
///
/// Dropping the iterator cancels every chunk it has in flight, as [`Future::cancel`] does:
/// queued chunks never run, and no more input is pulled. A chunk already running on a process
/// pool is killed with its worker (the pool starts a fresh worker in its place); one running on
/// threads, which cannot be stopped from outside, runs to its end and its results are dropped.
///
/// Configure it with these methods, usually straight after the call to `map`. Set after some
/// results were taken, a setting applies to the rest (chunks already submitted keep their
/// size):
///
/// - [`chunksize`](Map::chunksize): inputs sent to a worker at a time (default 1); larger
///   chunks amortise the per-task cost for small tasks.
/// - [`buffer`](Map::buffer): chunks in flight at most (default twice the workers).
/// - [`timeout`](Map::timeout): a deadline measured from the call to `map`; when it passes, the
///   iterator yields one [`Error::Timeout`], cancels what is left and ends.
/// - [`unordered`](Map::unordered): yield results as they complete, not in input order.
///
/// # Dropping
///
/// A `Map` holds the only handles to the futures of its chunks in flight, so dropping it
/// before the end is dropping those (see [Dropping](Future#dropping)): chunks still queued
/// never run, running chunks are stopped where the executor can (a process pool kills their
/// workers) and otherwise run on with their results thrown away. No more input is pulled.
///
/// # Examples
///
/// ```
/// use flotilla::ThreadPoolExecutor;
///
/// let pool = ThreadPoolExecutor::builder().max_workers(4).build()?;
/// // An endless input: only what is consumed is computed.
/// let evens: Vec<u64> = pool
///     .map_fn(|n: u64| n * 2, 0..)
///     .chunksize(8)
///     .take(5)
///     .collect::<Result<_, _>>()?;
/// assert_eq!(evens, [0, 2, 4, 6, 8]);
/// # Ok::<(), flotilla::Error>(())
/// ```
#[must_use = "iterators are lazy and do nothing unless consumed: nothing is submitted"]
pub struct Map<'a, I: Iterator, R> {
    inputs: I,
    submit: SubmitChunk<'a, I::Item, R>,
    chunksize: usize,
    buffer: usize,
    started: Instant,
    timeout: Option<Duration>,
    /// Chunks in flight, oldest first, each with its length and an id for unordered mode.
    in_flight: VecDeque<InFlight<R>>,
    ready: Option<Ready<R>>,
    /// Set in unordered mode: chunk ids arrive here as their futures complete.
    completions: Option<(Sender<u64>, Receiver<u64>)>,
    next_id: u64,
    /// Why the executor refused a chunk; yielded once the chunks before it are.
    refused: Option<Error>,
    /// A setting that cannot work (`chunksize(0)`, `buffer(0)`): yielded next, alone.
    invalid: Option<Error>,
    inputs_done: bool,
    ended: bool,
}

struct InFlight<R> {
    id: u64,
    len: usize,
    future: Future<Chunk<R>>,
}

impl<'a, I: Iterator, R: Send + 'static> Map<'a, I, R> {
    #[doc(hidden)]
    pub fn new(inputs: I, workers: usize, submit: SubmitChunk<'a, I::Item, R>) -> Self {
        Map {
            inputs,
            submit,
            chunksize: 1,
            buffer: workers.max(1) * 2,
            started: Instant::now(),
            timeout: None,
            in_flight: VecDeque::new(),
            ready: None,
            completions: None,
            next_id: 0,
            refused: None,
            invalid: None,
            inputs_done: false,
            ended: false,
        }
    }

    /// Sends `size` inputs to a worker at a time (default 1).
    ///
    /// # Errors
    ///
    /// `size` 0 is refused, as Python's `map(chunksize=0)` is: the iterator then submits
    /// nothing (and cancels what it had submitted), yields one [`Error::InvalidConfig`] and
    /// ends.
    ///
    /// ```
    /// let pool = flotilla::ThreadPoolExecutor::new();
    /// let results: Vec<_> = pool.map_fn(|x: u32| x, 0..4).chunksize(0).collect();
    /// assert!(matches!(results[..], [Err(flotilla::Error::InvalidConfig { .. })]));
    /// ```
    #[must_use = "`Map` is lazy: this returns the configured iterator, which does nothing unless consumed"]
    pub fn chunksize(mut self, size: usize) -> Self {
        match size {
            0 => self.refuse("chunksize must be at least 1"),
            size => self.chunksize = size,
        }
        self
    }

    /// Keeps at most `chunks` chunks submitted and unconsumed (default twice the workers).
    ///
    /// # Errors
    ///
    /// `chunks` 0 is refused, as Python's `map(buffersize=0)` is, in the same way as
    /// [`chunksize(0)`](Map::chunksize).
    ///
    /// ```
    /// let pool = flotilla::ThreadPoolExecutor::new();
    /// let results: Vec<_> = pool.map_fn(|x: u32| x, 0..4).buffer(0).collect();
    /// assert!(matches!(results[..], [Err(flotilla::Error::InvalidConfig { .. })]));
    /// ```
    #[must_use = "`Map` is lazy: this returns the configured iterator, which does nothing unless consumed"]
    pub fn buffer(mut self, chunks: usize) -> Self {
        match chunks {
            0 => self.refuse("buffer must be at least 1 chunk"),
            chunks => self.buffer = chunks,
        }
        self
    }

    /// Records a setting that cannot work; `next` yields it instead of results.
    fn refuse(&mut self, reason: &str) {
        self.invalid = Some(Error::InvalidConfig {
            reason: reason.into(),
        });
    }

    /// Gives up `timeout` after the call to `map`, yielding one [`Error::Timeout`].
    #[must_use = "`Map` is lazy: this returns the configured iterator, which does nothing unless consumed"]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Yields results as chunks complete instead of in input order.
    #[must_use = "`Map` is lazy: this returns the configured iterator, which does nothing unless consumed"]
    pub fn unordered(mut self) -> Self {
        if self.completions.is_none() {
            self.completions = Some(crossbeam_channel::unbounded());
            // Chunks submitted before this call report their completion from now on.
            for chunk in &self.in_flight {
                self.report_completion(chunk.id, &chunk.future);
            }
        }
        self
    }

    /// In unordered mode, has chunk `id` send its id to `completions` once it is done.
    fn report_completion(&self, id: u64, future: &Future<Chunk<R>>) {
        if let Some((tx, _)) = &self.completions {
            let tx = tx.clone();
            // The receiver may be gone when the chunk finishes; that is fine.
            future.add_done_callback(move |_| {
                let _ = tx.send(id);
            });
        }
    }

    /// Submits chunks until the buffer is full or the inputs run out.
    fn fill(&mut self) {
        while !self.inputs_done && self.in_flight.len() < self.buffer {
            let chunk: Vec<I::Item> = self.inputs.by_ref().take(self.chunksize).collect();
            if chunk.len() < self.chunksize {
                self.inputs_done = true;
            }
            if chunk.is_empty() {
                break;
            }
            let len = chunk.len();
            match (self.submit)(chunk) {
                Ok(future) => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.report_completion(id, &future);
                    self.in_flight.push_back(InFlight { id, len, future });
                }
                Err(err) => {
                    // The executor refuses work (shut down, broken): report it once, stop.
                    self.refused = Some(err);
                    self.inputs_done = true;
                }
            }
        }
    }

    /// Picks the next chunk to wait for: the oldest, or in unordered mode the first to finish.
    fn next_chunk(&mut self, deadline: Option<Instant>) -> Option<InFlight<R>> {
        let Some((_, done)) = &self.completions else {
            return self.in_flight.pop_front();
        };
        loop {
            let id = match deadline {
                None => done.recv().ok()?,
                Some(deadline) => done.recv_deadline(deadline).ok()?,
            };
            if let Some(at) = self.in_flight.iter().position(|c| c.id == id) {
                return self.in_flight.remove(at);
            }
        }
    }

    fn time_out(&mut self) -> Option<Result<R, Error>> {
        self.ended = true;
        self.cancel_all();
        self.ready = None;
        Some(Err(Error::Timeout {
            waited: self.timeout.unwrap_or_default(),
            unfinished: None,
        }))
    }
}

impl<I: Iterator, R: Send + 'static> Iterator for Map<'_, I, R> {
    type Item = Result<R, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(invalid) = self.invalid.take() {
            // Dropping the futures in flight cancels their chunks (see `Map`'s docs).
            self.in_flight.clear();
            self.ready = None;
            self.ended = true;
            return Some(Err(invalid));
        }
        loop {
            if let Some(item) = self.ready.as_mut().and_then(Ready::next) {
                return Some(item);
            }
            if self.ended {
                return None;
            }
            self.fill();
            if self.in_flight.is_empty() {
                self.ended = true;
                return self.refused.take().map(Err);
            }
            let deadline = self.timeout.and_then(|t| self.started.checked_add(t));
            let Some(chunk) = self.next_chunk(deadline) else {
                return self.time_out();
            };
            match chunk.future.take_by(deadline) {
                None => {
                    self.in_flight.push_front(chunk);
                    return self.time_out();
                }
                Some(Ok(Chunk::Values(values))) => {
                    self.ready = Some(Ready::Values(values.into_iter()))
                }
                Some(Ok(Chunk::Mixed(results))) => {
                    self.ready = Some(Ready::Mixed(results.into_iter()))
                }
                Some(Err(err)) => self.ready = Some(Ready::Failed(err, chunk.len)),
            }
        }
    }
}

impl<I: Iterator, R> Map<'_, I, R> {
    fn cancel_all(&mut self) {
        // Newest first, as CPython does: workers take chunks oldest first, so cancelling in
        // the same order would race them down the queue and let later chunks start.
        for chunk in self.in_flight.drain(..).rev() {
            chunk.future.cancel();
        }
    }
}

impl<I: Iterator, R> Drop for Map<'_, I, R> {
    fn drop(&mut self) {
        self.cancel_all();
    }
}

impl<I: Iterator, R> fmt::Debug for Map<'_, I, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("chunksize", &self.chunksize)
            .field("buffer", &self.buffer)
            .field("timeout", &self.timeout)
            .field("unordered", &self.completions.is_some())
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}
