//! Python's `threading.Timer`: a call on its own thread after a delay, unless cancelled.

use std::fmt;
use std::io;
use std::panic;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::primitives::{Arc, Condvar, Mutex, lock, wait_until};

/// Runs a function on its own thread after a delay, unless cancelled first: Python's
/// `threading.Timer`.
///
/// [`Timer::start`] starts the countdown at once (Python needs a separate `start()`).
/// [`cancel`](Timer::cancel) wakes the timer thread immediately, so a cancelled timer does not
/// keep a thread around for the rest of its delay.
///
/// Dropping a `Timer` does **not** cancel it, as in Python: the function still runs when the
/// delay is over, on a detached thread. Keep the `Timer` and call `cancel` to stop it.
///
/// Each timer is a thread. For many timers, or timers in async code, use a scheduler such as
/// `tokio::time` instead.
///
/// # Examples
///
/// ```
/// use flotilla::sync::Timer;
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// let (tx, rx) = mpsc::channel();
/// let timer = Timer::start(Duration::from_millis(10), move || tx.send("ring").unwrap());
/// assert_eq!(rx.recv().unwrap(), "ring");
/// timer.join();
///
/// let never = Timer::start(Duration::from_secs(3600), || unreachable!());
/// assert!(never.cancel());
/// never.join(); // returns at once: the thread was woken by `cancel`
/// ```
pub struct Timer {
    shared: Arc<Shared>,
    thread: JoinHandle<()>,
}

struct Shared {
    phase: Mutex<Phase>,
    cancelled: Condvar,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Counting down; `cancel` can still stop the call.
    Waiting,
    /// `cancel` won: the function will never run.
    Cancelled,
    /// The delay is over: the function is running or has run.
    Fired,
}

impl Timer {
    /// Starts a thread that calls `f` once `delay` has passed, unless the timer is
    /// [`cancel`](Timer::cancel)led first.
    ///
    /// # Panics
    ///
    /// If the operating system cannot create a thread, as [`std::thread::spawn`] does; use
    /// [`try_start`](Timer::try_start) to handle that case.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::{Event, Timer};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let rang = Arc::new(Event::new());
    /// let flag = Arc::clone(&rang);
    /// let timer = Timer::start(Duration::from_millis(5), move || flag.set());
    /// assert!(rang.wait_timeout(Duration::from_secs(60)));
    /// timer.join();
    /// ```
    pub fn start<F>(delay: Duration, f: F) -> Timer
    where
        F: FnOnce() + Send + 'static,
    {
        match Timer::try_start(delay, f) {
            Ok(timer) => timer,
            Err(err) => panic!("failed to spawn a timer thread: {err}"),
        }
    }

    /// Like [`start`](Timer::start), but reports a failure to create the thread.
    ///
    /// # Errors
    ///
    /// The operating system's error if the thread could not be created.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Timer;
    /// use std::time::Duration;
    ///
    /// let timer = Timer::try_start(Duration::from_secs(3600), || println!("late"))?;
    /// assert!(timer.cancel());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_start<F>(delay: Duration, f: F) -> io::Result<Timer>
    where
        F: FnOnce() + Send + 'static,
    {
        // A delay too large to represent never expires; only `cancel` ends it.
        let deadline = Instant::now().checked_add(delay);
        let shared = Arc::new(Shared {
            phase: Mutex::new(Phase::Waiting),
            cancelled: Condvar::new(),
        });
        let thread = thread::Builder::new()
            .name("flotilla-timer".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || {
                    if shared.wait_out(deadline) {
                        f();
                    }
                }
            })?;
        Ok(Timer { shared, thread })
    }

    /// Stops the timer if its function has not started yet.
    ///
    /// Returns `true` if this call (or an earlier `cancel`) stopped the function from running,
    /// `false` if the delay was already over, so the function is running or has run.
    /// The timer thread wakes at once and exits.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Timer;
    /// use std::time::Duration;
    ///
    /// let timer = Timer::start(Duration::from_secs(3600), || println!("never printed"));
    /// assert!(timer.cancel());
    /// assert!(timer.cancel()); // still cancelled
    /// timer.join();
    ///
    /// let fired = Timer::start(Duration::ZERO, || {});
    /// # while !fired.is_finished() { std::thread::yield_now(); }
    /// // once the function has run, it is too late
    /// assert!(!fired.cancel());
    /// ```
    pub fn cancel(&self) -> bool {
        let mut phase = lock(&self.shared.phase);
        match *phase {
            Phase::Waiting => {
                *phase = Phase::Cancelled;
                self.shared.cancelled.notify_one();
                true
            }
            Phase::Cancelled => true,
            Phase::Fired => false,
        }
    }

    /// Waits for the timer thread to end: after the function returned, or at once after a
    /// successful [`cancel`](Timer::cancel).
    ///
    /// # Blocking
    ///
    /// Blocks until the delay is over and the function has returned, unless the timer was
    /// cancelled.
    ///
    /// # Panics
    ///
    /// If the function panicked, `join` resumes that panic on the calling thread (like a scoped
    /// thread), so it is not lost.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Timer;
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::time::Duration;
    ///
    /// let ran = Arc::new(AtomicBool::new(false));
    /// let flag = Arc::clone(&ran);
    /// let timer = Timer::start(Duration::from_millis(1), move || flag.store(true, Ordering::SeqCst));
    /// timer.join();
    /// assert!(ran.load(Ordering::SeqCst));
    /// ```
    pub fn join(self) {
        if let Err(payload) = self.thread.join() {
            panic::resume_unwind(payload);
        }
    }

    /// True once the timer thread has ended: the function has returned (or panicked), or the
    /// timer was cancelled and its thread has exited. Python's `not timer.is_alive()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Timer;
    /// use std::time::Duration;
    ///
    /// let timer = Timer::start(Duration::from_secs(3600), || {});
    /// assert!(!timer.is_finished());
    /// timer.cancel();
    /// # while !timer.is_finished() { std::thread::yield_now(); }
    /// assert!(timer.is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

impl Shared {
    /// Sleeps until `deadline` or a cancel; returns `true` if the function should run.
    fn wait_out(&self, deadline: Option<Instant>) -> bool {
        let mut phase = lock(&self.phase);
        loop {
            match *phase {
                Phase::Cancelled => return false,
                Phase::Fired => return true,
                Phase::Waiting => {}
            }
            let (guard, expired) = wait_until(&self.cancelled, phase, deadline);
            phase = guard;
            if expired && *phase == Phase::Waiting {
                *phase = Phase::Fired;
            }
        }
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = *lock(&self.shared.phase);
        f.debug_struct("Timer")
            .field("cancelled", &(phase == Phase::Cancelled))
            .field("fired", &(phase == Phase::Fired))
            .field("finished", &self.is_finished())
            .finish()
    }
}
