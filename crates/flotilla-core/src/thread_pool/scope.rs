//! Scoped work on borrowed data: [`ThreadPoolExecutor::scope`], [`Scope`] and
//! [`ThreadPoolExecutor::map_borrowed`].

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use super::{Runnable, ThreadPoolExecutor, Worker};
use crate::error::Error;
use crate::executor::Executor;
use crate::future::{Future, Promise};
use crate::panic;
use crate::primitives::lock;

/// A task of a scope with its lifetime erased; `true` runs it, `false` drops it unrun
/// (cancelling its future).
type Job = Box<dyn FnOnce(bool) + Send>;

/// The handle tasks are spawned through inside [`ThreadPoolExecutor::scope`].
///
/// `'scope` is the scope's own lifetime: tasks may borrow anything that outlives it (`'env`).
/// A `&Scope` may be captured by tasks, which can then spawn further tasks into the same scope.
///
/// [`ThreadPoolExecutor::map_borrowed`].
///
/// [`spawn`](ThreadPoolExecutor::spawn) takes `'static` closures, so a task cannot borrow the
/// caller's data. Inside [`scope`](ThreadPoolExecutor::scope), in the spirit of
/// `std::thread::scope` and `rayon::scope`, it can: the scope does not return before every task
/// spawned in it has finished or been dropped unrun, so whatever the tasks borrow outlives them.
/// Each task still returns a [`Future`] with all of its API: `result` with a timeout, `cancel`,
/// done-callbacks, [`wait`](crate::wait) and [`as_completed`](crate::as_completed).
///
/// ```
/// use flotilla::{as_completed, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::new();
/// let words = vec![String::from("scoped"), String::from("threads")];
/// let mut counts = [0usize; 2];
/// let total = pool.scope(|s| {
///     let [a, b] = &mut counts;
///     let first = s.spawn(|| *a = words[0].len())?;
///     let second = s.spawn(|| *b = words[1].len())?;
///     let lens = s.spawn(|| words.iter().map(String::len).sum::<usize>())?;
///     for done in as_completed([first, second]) {
///         done?.result()?;
///     }
///     lens.result()
/// })?;
/// assert_eq!(counts, [6, 7]);
/// assert_eq!(total, 13);
/// # Ok::<(), flotilla::Error>(())
/// ```
///
/// # How the scope waits
///
/// A scope keeps its tasks in a queue of its own and up to one ticket per worker on the pool's
/// queue; a worker that picks a ticket runs the scope's tasks not yet started, oldest first,
/// until none is left, and queues a fresh ticket first whenever it leaves tasks behind with none
/// queued, so every free worker finds the scope's work even while its tasks block. When
/// the scope's closure returns, the calling thread runs the scope's tasks that no worker has
/// taken yet, then waits for those running. So a scope opened inside a task of a pool with one
/// worker, or on a pool that was shut down meanwhile, still finishes: its own thread does the
/// work.
///
/// # Dropping
///
/// - Dropping a task's last [`Future`] handle cancels the task if it has not started (it is then
///   dropped unrun); a running task runs to its end and its result is thrown away, as everywhere
///   on the thread pool. [`Future::detach`] lets it run with no handle.
/// - Forgetting a handle (`std::mem::forget`) changes nothing for the scope: it waits for
///   tasks, not for handles.
/// - A panic in a task completes its future with [`Error::Panicked`] and is not raised again by
///   the scope (unlike `std::thread::scope`): read it from the future.
/// - A panic in the scope's closure cancels the tasks not started yet, waits for the running
///   ones, and then goes on unwinding out of `scope`.
/// - A future may be kept after the scope returned: its task is done by then, and a result that
///   borrows from the scope carries that borrow in its type.
///
/// # Examples
///
/// ```
/// let pool = flotilla::ThreadPoolExecutor::new();
/// let data = [1, 2, 3, 4];
/// let sum = pool.scope(|s| {
///     let (left, right) = data.split_at(2);
///     let l = s.spawn(|| left.iter().sum::<i32>())?;
///     let r = s.spawn(|| right.iter().sum::<i32>())?;
///     Ok::<_, flotilla::Error>(l.result()? + r.result()?)
/// })?;
/// assert_eq!(sum, 10);
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    pool: &'scope ThreadPoolExecutor,
    state: Arc<State>,
    /// Invariant in both lifetimes, as `std::thread::Scope` is: a scope cannot be shortened or
    /// lengthened to let a task borrow something that dies before the scope ends.
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

struct State {
    tasks: Mutex<Tasks>,
    /// Tasks spawned and not yet finished or dropped (queued ones included). Counted in under
    /// the lock with the push, counted out without it once the task is consumed, so finishing
    /// a task costs no lock; only the last one takes it, to wake the owner.
    pending: AtomicUsize,
    /// Signalled when a task is queued or the last one finishes, if the owner is waiting.
    changed: Condvar,
    /// How many tickets the scope keeps queued on the pool at most: the pool's worker count.
    max_tickets: usize,
}

#[derive(Default)]
struct Tasks {
    queue: VecDeque<Job>,
    /// Tickets queued on the pool and not yet picked by a worker.
    tickets: usize,
    /// The scope's closure panicked: queued tasks are dropped unrun.
    aborting: bool,
    /// The owning thread sleeps on `changed`.
    waiting: bool,
}

impl State {
    /// Takes the oldest queued task, with whether to run it.
    fn next(&self) -> Option<(Job, bool)> {
        let mut tasks = lock(&self.tasks);
        let run = !tasks.aborting;
        tasks.queue.pop_front().map(|job| (job, run))
    }

    /// Runs (or drops) a task taken from the queue, then counts it out. The job catches its own
    /// panics, and its closure, result and promise are all dropped inside it; only then is the
    /// count lowered, so nothing the task borrows is touched after the owner sees zero.
    fn execute(&self, job: Job, run: bool) {
        // A panic here could only come from a destructor of the task's captures when it is
        // dropped unrun; it must not skip the count.
        let _ = panic::catch(move || job(run));
        // Release: everything the job did happens before the owner's Acquire load sees the
        // count drop.
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last task: the owner may be asleep or about to be. It checks the count under
            // the lock before it sleeps, so taking the lock here before notifying cannot miss it.
            let tasks = lock(&self.tasks);
            if tasks.waiting {
                self.changed.notify_all();
            }
        }
    }

    /// Runs or drops queued tasks on this thread and waits until none is pending.
    fn finish(&self) {
        loop {
            if let Some((job, run)) = self.next() {
                self.execute(job, run);
                continue;
            }
            if self.pending.load(Ordering::Acquire) == 0 {
                return;
            }
            let mut tasks = lock(&self.tasks);
            while self.pending.load(Ordering::Acquire) > 0 && tasks.queue.is_empty() {
                tasks.waiting = true;
                tasks = self
                    .changed
                    .wait(tasks)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            tasks.waiting = false;
        }
    }
}

/// A scope's ticket on the pool's queue: the worker that picks it runs the scope's queued tasks,
/// oldest first, until none is left (the owner may have run them all already). It holds the
/// scope's state, never a task, so it may outlive the scope harmlessly.
///
/// A scope keeps at most one ticket per worker queued, so spawning a task mostly costs a push on
/// the scope's queue and no trip through the pool's. A worker that takes a task and leaves
/// others queued with no ticket waiting for them queues another ticket first, so every free
/// worker still finds the scope's work even while the tasks it runs block.
struct Ticket(Arc<State>);

impl Runnable for Ticket {
    fn run(self: Box<Self>, worker: &Worker<'_>) {
        let state = &self.0;
        let mut picked = true;
        loop {
            let (job, run, relay) = {
                let mut tasks = lock(&state.tasks);
                if picked {
                    tasks.tickets -= 1;
                    picked = false;
                }
                let run = !tasks.aborting;
                let Some(job) = tasks.queue.pop_front() else {
                    break;
                };
                let relay = !tasks.queue.is_empty() && tasks.tickets == 0;
                if relay {
                    tasks.tickets += 1;
                }
                (job, run, relay)
            };
            if relay {
                // Refused (full, shut down, broken): this thread and the owner run what is left.
                // Never blocks on a full bounded queue: a worker waiting there could wait for
                // itself.
                if worker
                    .try_submit(Box::new(Ticket(Arc::clone(state))))
                    .is_err()
                {
                    lock(&state.tasks).tickets -= 1;
                }
            }
            state.execute(job, run);
        }
        worker.idle();
    }

    fn discard(self: Box<Self>, _error: Option<Error>) {
        // The tasks stay in the scope's queue; the scope's own thread runs them.
        lock(&self.0.tasks).tickets -= 1;
    }
}

/// Waits for the scope's tasks when the scope ends, by return or by unwinding.
struct Join<'a>(&'a State);

impl Drop for Join<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            lock(&self.0.tasks).aborting = true;
        }
        self.0.finish();
    }
}

impl ThreadPoolExecutor {
    /// Runs `f` with a [`Scope`] whose tasks may borrow from the caller, and returns what `f`
    /// returns once every task spawned in the scope has finished or been dropped unrun.
    ///
    /// See [`Scope`] for how the scope waits and what
    /// dropping each handle does.
    ///
    /// # Blocking
    ///
    /// Blocks until the scope's tasks are done; meanwhile the calling thread runs those of them
    /// no worker has started.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = flotilla::ThreadPoolExecutor::new();
    /// let mut squares = vec![0u64; 8];
    /// pool.scope(|s| {
    ///     for (i, slot) in squares.iter_mut().enumerate() {
    ///         s.spawn(move || *slot = (i * i) as u64)?.detach();
    ///     }
    ///     Ok::<(), flotilla::Error>(())
    /// })?;
    /// assert_eq!(squares[7], 49);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn scope<'env, F, R>(&self, f: F) -> R
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
    {
        let scope = Scope {
            pool: self,
            state: Arc::new(State {
                tasks: Mutex::new(Tasks::default()),
                pending: AtomicUsize::new(0),
                changed: Condvar::new(),
                max_tickets: self.max_workers().max(1),
            }),
            _scope: PhantomData,
            _env: PhantomData,
        };
        let join = Join(&scope.state);
        let out = f(&scope);
        drop(join);
        out
    }

    /// Applies `f` to every input on the pool and returns the outputs in input order; the
    /// inputs may be borrowed (`&slice`, `slice.iter()`, `iter_mut()`) and `f` may borrow too.
    ///
    /// The inputs are split into a few chunks per worker, each run as one scoped task.
    ///
    /// # Errors
    ///
    /// The first failure in input order: [`Error::Panicked`] if `f` panicked, or the pool's
    /// refusal ([`Error::Shutdown`], ...) if no task could be queued. A chunk that could not
    /// be queued is run on the calling thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = flotilla::ThreadPoolExecutor::new();
    /// let words = vec![String::from("borrowed"), String::from("slice")];
    /// let lengths = pool.map_borrowed(|w: &String| w.len(), &words)?;
    /// assert_eq!(lengths, [8, 5]);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn map_borrowed<I, F, R>(&self, f: F, inputs: I) -> Result<Vec<R>, Error>
    where
        I: IntoIterator,
        I::Item: Send,
        F: Fn(I::Item) -> R + Sync,
        R: Send,
    {
        let mut inputs: Vec<I::Item> = inputs.into_iter().collect();
        let chunks = (self.max_workers() * 4).max(1);
        let size = inputs.len().div_ceil(chunks).max(1);
        let f = &f;
        self.scope(|s| {
            let mut futures = Vec::with_capacity(chunks);
            while !inputs.is_empty() {
                let rest = inputs.split_off(size.min(inputs.len()));
                let chunk = std::mem::replace(&mut inputs, rest);
                futures.push(s.spawn(move || chunk.into_iter().map(f).collect::<Vec<R>>())?);
            }
            let mut out = Vec::new();
            for future in futures {
                out.extend(future.into_result()?);
            }
            Ok(out)
        })
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Runs `f` on the pool as a task of this scope and returns its future at once; `f` may
    /// borrow anything that outlives the scope.
    ///
    /// # Errors
    ///
    /// The pool's refusal: [`Error::Shutdown`] after shutdown, [`Error::Broken`],
    /// [`Error::QueueFull`]. `f` is then not run; it is dropped before the scope returns.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = flotilla::ThreadPoolExecutor::new();
    /// let text = String::from("borrowed");
    /// let len = pool.scope(|s| s.spawn(|| text.len())?.result())?;
    /// assert_eq!(len, 8);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn spawn<F, T>(&'scope self, f: F) -> Result<Future<T>, Error>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let promise = Promise::new();
        let future = promise.future();
        let job: Box<dyn FnOnce(bool) + Send + 'scope> = Box::new(move |run: bool| {
            if !run {
                promise.cancel();
            } else if promise.set_running() {
                let outcome = panic::catch(f).map_err(Error::Panicked);
                promise.complete(outcome);
            }
        });
        // SAFETY: only the lifetime changes (same layout, same vtable). The job borrows data
        // that lives for `'scope`, and it is run or dropped before `'scope` ends:
        // - every job is counted in `pending` from its push until `State::execute` has consumed it
        //   (closure, result and promise are dropped inside the job), and `scope` cannot return
        //   before `pending` is zero: `Join` waits in its `Drop`, so on return and on unwinding
        //   from a panic of the scope's closure alike (then queued jobs are dropped unrun).
        // - the count concerns jobs, not futures: a forgotten or leaked `Future` handle does not
        //   keep a job alive, and a future kept after the scope holds only the result, whose
        //   type `T: 'scope` carries any borrow.
        // - a panic in a task is caught in the job and in `execute`, so the count is lowered.
        // - jobs live in the scope's own queue, never in the pool's: if the pool is shut down or
        //   broken and drops its tickets, the owner still finds the jobs there and runs them on
        //   its own thread, as it does when the only worker is the owner itself (a scope inside
        //   a task of a one-worker pool), so waiting cannot deadlock on the pool.
        // - `Scope` is invariant in `'scope` and only lent out as `&'scope Scope`, so a job
        //   cannot be spawned with a lifetime longer than the scope it is counted in.
        let job: Job =
            unsafe { std::mem::transmute::<Box<dyn FnOnce(bool) + Send + 'scope>, Job>(job) };
        let ticket = {
            let mut tasks = lock(&self.state.tasks);
            // Counted in before it is visible in the queue, so no taker can count it out first.
            self.state.pending.fetch_add(1, Ordering::Relaxed);
            tasks.queue.push_back(job);
            if tasks.waiting {
                self.state.changed.notify_all();
            }
            let ticket = tasks.tickets < self.state.max_tickets;
            if ticket {
                tasks.tickets += 1;
            }
            ticket
        };
        let queued = if ticket {
            let queued = self
                .pool
                .submit_runnable(Box::new(Ticket(Arc::clone(&self.state))));
            if queued.is_err() {
                lock(&self.state.tasks).tickets -= 1;
            }
            queued
        } else {
            // Enough tickets are queued to reach this task; still refuse it as the pool would.
            self.pool.shared.accepting()
        };
        if let Err(error) = queued {
            // The job stays queued and is dropped unrun: cancelled, it will not run.
            future.cancel();
            return Err(error);
        }
        Ok(future)
    }
}

impl std::fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tasks = lock(&self.state.tasks);
        f.debug_struct("Scope")
            .field("pending", &self.state.pending.load(Ordering::Relaxed))
            .field("queued", &tasks.queue.len())
            .finish_non_exhaustive()
    }
}
