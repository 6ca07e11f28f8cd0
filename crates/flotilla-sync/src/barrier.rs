//! Python's `threading.Barrier`: `action`, a default timeout, `reset()` and `abort()`, which
//! `std::sync::Barrier` lacks.
//!
//! The state machine is CPython's: the barrier fills until `parties` threads wait, the last
//! one runs the action, then all drain out; threads arriving while it drains (or resets) wait
//! for the next round. Unlike CPython, the action runs with the internal lock released (the
//! `Acting` phase holds newcomers, `reset` and `abort` back meanwhile), so an action may look
//! at the barrier without deadlocking.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use crate::primitives::{Condvar, Mutex, MutexGuard, deadline_in, lock, wait_until};

/// The error of [`Barrier::wait`]: the barrier is broken, or was reset while this thread
/// waited. Python's `threading.BrokenBarrierError`.
///
/// # Examples
///
/// ```
/// use flotilla::sync::{Barrier, BrokenBarrier};
///
/// let barrier = Barrier::new(2).unwrap();
/// barrier.abort();
/// assert_eq!(barrier.wait(), Err(BrokenBarrier));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("the barrier is broken")]
pub struct BrokenBarrier;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Threads are arriving.
    Filling,
    /// The last thread is running the action; nobody may enter, reset or abort.
    Acting,
    /// The round is complete; its threads are leaving.
    Draining,
    /// `reset` was called while threads waited; they are leaving with `BrokenBarrier`.
    Resetting,
    /// Broken by `abort`, a timeout or a panicking action, until `reset`.
    Broken,
}

struct State {
    phase: Phase,
    /// Threads inside `wait` in this round (arrived and not yet left).
    count: usize,
}

type Action = Box<dyn Fn() + Send + Sync>;

/// A meeting point for a fixed number of threads: Python's `threading.Barrier`.
///
/// Each of `parties` threads calls [`wait`](Barrier::wait); all are released together when the
/// last one arrives, which first runs the barrier's [`action`](Barrier::with_action), if any.
/// Then the barrier is ready for the next round. `wait` returns each thread's arrival index,
/// `0..parties` (the last to arrive, which ran the action, gets `parties - 1`).
///
/// The barrier *breaks* when a waiting thread's timeout passes, when [`abort`](Barrier::abort)
/// is called, or when the action panics: every thread waiting then, and every later `wait`,
/// gets [`BrokenBarrier`] until [`reset`](Barrier::reset). `reset` also sends
/// [`BrokenBarrier`] to the threads waiting at that moment, and leaves the barrier ready.
///
/// Compared with [`std::sync::Barrier`]: the same lockstep, plus Python's action, timeouts,
/// `abort` and `reset`, so a thread that fails can release the others instead of leaving them
/// waiting forever.
///
/// # Examples
///
/// ```
/// use flotilla::sync::Barrier;
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::thread;
///
/// let rounds = Arc::new(AtomicUsize::new(0));
/// let barrier = Arc::new(Barrier::new(3).unwrap().with_action({
///     let rounds = Arc::clone(&rounds);
///     move || {
///         rounds.fetch_add(1, Ordering::SeqCst);
///     }
/// }));
/// let threads: Vec<_> = (0..3)
///     .map(|_| {
///         let barrier = Arc::clone(&barrier);
///         thread::spawn(move || barrier.wait().unwrap())
///     })
///     .collect();
/// let mut indices: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
/// indices.sort();
/// assert_eq!(indices, [0, 1, 2]);
/// assert_eq!(rounds.load(Ordering::SeqCst), 1);
/// ```
pub struct Barrier {
    parties: usize,
    action: Option<Action>,
    timeout: Option<Duration>,
    state: Mutex<State>,
    changed: Condvar,
}

impl Barrier {
    /// Creates a barrier for `parties` threads, without action or default timeout.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](flotilla_core::Error::InvalidConfig) if `parties` is 0
    /// (Python raises `ValueError`), as `flotilla::shared::Barrier::new` and a manager's
    /// `barrier` do.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Barrier;
    ///
    /// let barrier = Barrier::new(4)?;
    /// assert_eq!(barrier.parties(), 4);
    /// assert!(Barrier::new(0).unwrap_err().to_string().contains("at least one party"));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn new(parties: usize) -> Result<Barrier, flotilla_core::Error> {
        if parties == 0 {
            return Err(flotilla_core::Error::InvalidConfig {
                reason: "a barrier needs at least one party".into(),
            });
        }
        Ok(Barrier {
            parties,
            action: None,
            timeout: None,
            state: Mutex::new(State {
                phase: Phase::Filling,
                count: 0,
            }),
            changed: Condvar::new(),
        })
    }

    /// Sets the action that the last thread to arrive runs before the round's threads are
    /// released (Python's `action=`).
    ///
    /// If the action panics, the barrier breaks: the other threads of the round get
    /// [`BrokenBarrier`], and the panic goes on in the thread that ran it.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Barrier;
    ///
    /// let barrier = Barrier::new(1).unwrap().with_action(|| println!("everyone is here"));
    /// assert_eq!(barrier.wait(), Ok(0));
    /// ```
    #[must_use = "`with_*` returns the barrier with the setting; the one it was called on is moved into it"]
    pub fn with_action(mut self, action: impl Fn() + Send + Sync + 'static) -> Barrier {
        self.action = Some(Box::new(action));
        self
    }

    /// Sets the timeout [`wait`](Barrier::wait) uses (Python's `timeout=`);
    /// [`wait_timeout`](Barrier::wait_timeout) uses its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::{Barrier, BrokenBarrier};
    /// use std::time::Duration;
    ///
    /// let barrier = Barrier::new(2).unwrap().with_timeout(Duration::from_millis(10));
    /// assert_eq!(barrier.wait(), Err(BrokenBarrier)); // the other party never came
    /// assert!(barrier.is_broken());
    /// ```
    #[must_use = "`with_*` returns the barrier with the setting; the one it was called on is moved into it"]
    pub fn with_timeout(mut self, timeout: Duration) -> Barrier {
        self.timeout = Some(timeout);
        self
    }

    /// Waits for the other parties: Python's `barrier.wait()`, with the barrier's own
    /// timeout if it was built with one ([`with_timeout`](Barrier::with_timeout)), else as long as it
    /// takes. [`wait_timeout`](Barrier::wait_timeout) sets a limit for this call.
    ///
    /// Returns this thread's arrival index, `0` to `parties - 1` (the last to arrive gets
    /// `parties - 1`).
    ///
    /// # Errors
    ///
    /// [`BrokenBarrier`] if the barrier is or becomes broken while this thread waits (see
    /// [`wait_timeout`](Barrier::wait_timeout)).
    ///
    /// # Blocking
    ///
    /// Blocks until the round is complete.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Barrier;
    /// use std::sync::Arc;
    /// use std::thread;
    ///
    /// let barrier = Arc::new(Barrier::new(2).unwrap());
    /// let other = {
    ///     let barrier = Arc::clone(&barrier);
    ///     thread::spawn(move || barrier.wait())
    /// };
    /// let mine = barrier.wait().unwrap();
    /// let theirs = other.join().unwrap().unwrap();
    /// assert_eq!(mine + theirs, 1);
    /// ```
    pub fn wait(&self) -> Result<usize, BrokenBarrier> {
        self.wait_within(None)
    }

    /// Waits until `parties` threads are waiting, then releases them all; returns this
    /// thread's arrival index in `0..parties`.
    ///
    /// `timeout` bounds the wait; `None` means the barrier's default
    /// ([`with_timeout`](Barrier::with_timeout)), or forever if it has none. A thread arriving
    /// while the previous round is still leaving waits for it first.
    ///
    /// # Errors
    ///
    /// [`BrokenBarrier`] if the barrier is broken when the thread arrives, breaks while it
    /// waits (another thread's timeout, [`abort`](Barrier::abort), a panicking action), is
    /// [`reset`](Barrier::reset) while it waits, or if this thread's timeout passes, which
    /// breaks the barrier for everyone.
    ///
    /// # Panics
    ///
    /// If this thread runs the action and the action panics (after breaking the barrier).
    ///
    /// # Blocking
    ///
    /// Blocks until the round is complete, for at most the timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Barrier;
    /// use std::sync::Arc;
    /// use std::thread;
    /// use std::time::Duration;
    ///
    /// let barrier = Arc::new(Barrier::new(2).unwrap());
    /// let other = {
    ///     let barrier = Arc::clone(&barrier);
    ///     thread::spawn(move || barrier.wait())
    /// };
    /// let mine = barrier.wait_timeout(Duration::from_secs(60)).unwrap();
    /// let theirs = other.join().unwrap().unwrap();
    /// assert_eq!(mine + theirs, 1); // indices 0 and 1
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BrokenBarrier> {
        self.wait_within(Some(timeout))
    }

    fn wait_within(&self, timeout: Option<Duration>) -> Result<usize, BrokenBarrier> {
        let deadline = timeout.or(self.timeout).and_then(deadline_in);
        let mut state = lock(&self.state);
        while matches!(
            state.phase,
            Phase::Acting | Phase::Draining | Phase::Resetting
        ) {
            state = wait_until(&self.changed, state, None).0;
        }
        if state.phase == Phase::Broken {
            return Err(BrokenBarrier);
        }
        let index = state.count;
        state.count += 1;
        let mut panicked = None;
        let result = if index + 1 == self.parties {
            if let Some(action) = &self.action {
                state.phase = Phase::Acting;
                drop(state);
                let outcome = panic::catch_unwind(AssertUnwindSafe(action));
                state = lock(&self.state);
                panicked = outcome.err();
            }
            state.phase = if panicked.is_some() {
                Phase::Broken
            } else {
                Phase::Draining
            };
            self.changed.notify_all();
            if panicked.is_some() {
                Err(BrokenBarrier)
            } else {
                Ok(index)
            }
        } else {
            state = self.wait_for_round(state, deadline);
            match state.phase {
                Phase::Broken | Phase::Resetting => Err(BrokenBarrier),
                _ => Ok(index),
            }
        };
        state.count -= 1;
        if state.count == 0 && matches!(state.phase, Phase::Draining | Phase::Resetting) {
            state.phase = Phase::Filling;
            self.changed.notify_all();
        }
        drop(state);
        if let Some(payload) = panicked {
            panic::resume_unwind(payload);
        }
        result
    }

    /// Waits while the round is filling (or its action runs); breaks the barrier if
    /// `deadline` passes first.
    fn wait_for_round<'a>(
        &self,
        mut state: MutexGuard<'a, State>,
        deadline: Option<std::time::Instant>,
    ) -> MutexGuard<'a, State> {
        loop {
            // While the action runs, the round is as good as complete: wait for it untimed, as
            // a CPython waiter does for the lock the action holds.
            let deadline = match state.phase {
                Phase::Filling => deadline,
                Phase::Acting => None,
                _ => return state,
            };
            let (guard, expired) = wait_until(&self.changed, state, deadline);
            state = guard;
            if expired && state.phase == Phase::Filling {
                state.phase = Phase::Broken;
                self.changed.notify_all();
                return state;
            }
        }
    }

    /// Waits while the action runs, so `reset` and `abort` see a settled phase.
    fn settled(&self) -> MutexGuard<'_, State> {
        let mut state = lock(&self.state);
        while state.phase == Phase::Acting {
            state = wait_until(&self.changed, state, None).0;
        }
        state
    }

    /// Returns the barrier to its initial, empty state: Python's `reset()`.
    ///
    /// Threads waiting at that moment get [`BrokenBarrier`]; the barrier is usable again once
    /// they have left (threads arriving meanwhile wait for that). A broken barrier is mended.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Barrier;
    ///
    /// let barrier = Barrier::new(1).unwrap();
    /// barrier.abort();
    /// assert!(barrier.is_broken());
    /// barrier.reset();
    /// assert!(!barrier.is_broken());
    /// assert_eq!(barrier.wait(), Ok(0));
    /// ```
    pub fn reset(&self) {
        let mut state = self.settled();
        if state.count > 0 {
            if matches!(state.phase, Phase::Filling | Phase::Broken) {
                state.phase = Phase::Resetting;
            }
        } else {
            state.phase = Phase::Filling;
        }
        self.changed.notify_all();
    }

    /// Breaks the barrier: every waiting thread, and every later [`wait`](Barrier::wait), gets
    /// [`BrokenBarrier`] until [`reset`](Barrier::reset). Python's `abort()`, for a thread that
    /// fails and must not leave the others waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::{Barrier, BrokenBarrier};
    /// use std::sync::Arc;
    /// use std::thread;
    ///
    /// let barrier = Arc::new(Barrier::new(2).unwrap());
    /// let waiter = {
    ///     let barrier = Arc::clone(&barrier);
    ///     thread::spawn(move || barrier.wait())
    /// };
    /// barrier.abort(); // this thread will never arrive
    /// assert_eq!(waiter.join().unwrap(), Err(BrokenBarrier));
    /// ```
    pub fn abort(&self) {
        let mut state = self.settled();
        state.phase = Phase::Broken;
        self.changed.notify_all();
    }

    /// The number of threads needed to pass the barrier.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Barrier;
    ///
    /// assert_eq!(Barrier::new(3).unwrap().parties(), 3);
    /// ```
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// The number of threads waiting in the current round (0 while a round drains, resets or
    /// is broken): Python's `n_waiting`. A hint: it may change at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Barrier;
    /// use std::sync::Arc;
    /// use std::thread;
    ///
    /// let barrier = Arc::new(Barrier::new(2).unwrap());
    /// let waiter = {
    ///     let barrier = Arc::clone(&barrier);
    ///     thread::spawn(move || barrier.wait())
    /// };
    /// while barrier.n_waiting() < 1 {
    ///     thread::yield_now();
    /// }
    /// barrier.wait().unwrap();
    /// waiter.join().unwrap().unwrap();
    /// assert_eq!(barrier.n_waiting(), 0);
    /// ```
    pub fn n_waiting(&self) -> usize {
        let state = lock(&self.state);
        match state.phase {
            Phase::Filling | Phase::Acting => state.count,
            _ => 0,
        }
    }

    /// True if the barrier is broken: Python's `broken`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Barrier;
    ///
    /// let barrier = Barrier::new(2).unwrap();
    /// assert!(!barrier.is_broken());
    /// barrier.abort();
    /// assert!(barrier.is_broken());
    /// ```
    pub fn is_broken(&self) -> bool {
        lock(&self.state).phase == Phase::Broken
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.is_broken())
            .finish_non_exhaustive()
    }
}
