//! Python's `threading.Event`. Locks come only from `crate::primitives`.

use std::fmt;
use std::time::{Duration, Instant};

use crate::primitives::{Condvar, Mutex, lock, wait_until};

/// A flag that threads can wait for: Python's `threading.Event`.
///
/// [`set`](Event::set) raises the flag and wakes every waiting thread;
/// [`clear`](Event::clear) lowers it; [`wait`](Event::wait) blocks until it is raised. Share it
/// with `Arc<Event>`.
///
/// As in Python, a thread that was waiting when `set` was called returns `true` even if the
/// flag was cleared again before the thread got to run, so `set(); clear();` releases every
/// current waiter and no later one.
///
/// Compared with its neighbours: a [`std::sync::Barrier`] waits for a number of threads, not for
/// a signal; a one-shot channel carries a value but can be received only once, while an `Event`
/// can be waited for by any number of threads, and reset.
///
/// # Examples
///
/// ```
/// use flotilla::sync::Event;
/// use std::sync::Arc;
/// use std::thread;
///
/// let ready = Arc::new(Event::new());
/// let waiters: Vec<_> = (0..3)
///     .map(|_| {
///         let ready = Arc::clone(&ready);
///         thread::spawn(move || ready.wait())
///     })
///     .collect();
/// ready.set();
/// for w in waiters {
///     w.join().unwrap(); // each returned from `wait`
/// }
/// ```
pub struct Event {
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    flag: bool,
    /// Bumped by every `set` that raises the flag, so a waiter can tell it was set while it
    /// slept even if the flag has been cleared since.
    generation: u64,
    /// Threads blocked in `wait`; `set` only pays for a wake-up when this is non-zero.
    waiters: usize,
}

impl Event {
    /// Creates an event whose flag is clear.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Event;
    ///
    /// let event = Event::new();
    /// assert!(!event.is_set());
    /// ```
    pub fn new() -> Event {
        Event {
            state: Mutex::new(State {
                flag: false,
                generation: 0,
                waiters: 0,
            }),
            changed: Condvar::new(),
        }
    }

    /// Raises the flag and wakes every thread waiting for it. Setting a set event does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Event;
    ///
    /// let event = Event::new();
    /// event.set();
    /// assert!(event.is_set());
    /// event.wait(); // returns at once
    /// ```
    pub fn set(&self) {
        let mut state = lock(&self.state);
        if !state.flag {
            state.flag = true;
            state.generation = state.generation.wrapping_add(1);
            if state.waiters > 0 {
                self.changed.notify_all();
            }
        }
    }

    /// Lowers the flag: later calls to [`wait`](Event::wait) block until the next
    /// [`set`](Event::set).
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Event;
    /// use std::time::Duration;
    ///
    /// let event = Event::new();
    /// event.set();
    /// event.clear();
    /// assert!(!event.is_set());
    /// assert!(!event.wait_timeout(Duration::from_millis(10)));
    /// ```
    pub fn clear(&self) {
        lock(&self.state).flag = false;
    }

    /// True if the flag is raised right now.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Event;
    ///
    /// let event = Event::default();
    /// assert!(!event.is_set());
    /// event.set();
    /// assert!(event.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        lock(&self.state).flag
    }

    /// Waits as long as it takes for the flag to be raised; returns at once if it is set.
    ///
    /// [`wait_timeout`](Event::wait_timeout) waits at most a given time.
    ///
    /// # Blocking
    ///
    /// Blocks while the flag is clear.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Event;
    /// use std::sync::Arc;
    /// use std::thread;
    ///
    /// let ready = Arc::new(Event::new());
    /// let setter = {
    ///     let ready = Arc::clone(&ready);
    ///     thread::spawn(move || ready.set())
    /// };
    /// ready.wait();
    /// assert!(ready.is_set());
    /// setter.join().unwrap();
    /// ```
    pub fn wait(&self) {
        self.wait_within(None);
    }

    /// Waits until the flag is raised, or until `timeout` passes.
    ///
    /// Returns `true` if the flag was raised (now, or by a [`set`](Event::set) that happened
    /// while this thread waited), `false` if the timeout passed first. Like Python's
    /// `Event.wait`, it never fails.
    ///
    /// # Blocking
    ///
    /// Blocks while the flag is clear, for at most `timeout`; returns at once if it is set.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Event;
    /// use std::sync::Arc;
    /// use std::thread;
    /// use std::time::Duration;
    ///
    /// let done = Arc::new(Event::new());
    /// assert!(!done.wait_timeout(Duration::from_millis(10)));
    ///
    /// let worker = {
    ///     let done = Arc::clone(&done);
    ///     thread::spawn(move || done.set())
    /// };
    /// assert!(done.wait_timeout(Duration::from_secs(60)));
    /// worker.join().unwrap();
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_within(Some(timeout))
    }

    fn wait_within(&self, timeout: Option<Duration>) -> bool {
        // A timeout too large to represent waits forever.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut state = lock(&self.state);
        if state.flag {
            return true;
        }
        let generation = state.generation;
        loop {
            state.waiters += 1;
            let (guard, expired) = wait_until(&self.changed, state, deadline);
            state = guard;
            state.waiters -= 1;
            if state.flag || state.generation != generation {
                return true;
            }
            if expired {
                return false;
            }
        }
    }
}

impl Default for Event {
    /// An event whose flag is clear, as [`Event::new`].
    fn default() -> Event {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("is_set", &self.is_set())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    /// Spins (yielding, never sleeping) until `n` threads are blocked in `wait`.
    fn until_waiting(event: &Event, n: usize) {
        while lock(&event.state).waiters < n {
            thread::yield_now();
        }
    }

    #[test]
    fn set_then_clear_releases_current_waiters() {
        let event = Arc::new(Event::new());
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let event = Arc::clone(&event);
                thread::spawn(move || event.wait())
            })
            .collect();
        until_waiting(&event, 4);
        event.set();
        event.clear();
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert!(!event.is_set());
        assert!(!event.wait_timeout(Duration::from_millis(20)));
    }

    #[test]
    fn timed_waiter_sees_a_set_that_was_cleared() {
        let event = Arc::new(Event::new());
        let waiter = {
            let event = Arc::clone(&event);
            thread::spawn(move || event.wait_timeout(Duration::from_secs(300)))
        };
        until_waiting(&event, 1);
        event.set();
        event.clear();
        assert!(waiter.join().unwrap());
    }

    #[test]
    fn no_wakeup_paid_without_waiters() {
        let event = Event::new();
        event.set();
        assert_eq!(lock(&event.state).waiters, 0);
        event.set();
        assert_eq!(
            lock(&event.state).generation,
            1,
            "setting a set event is a no-op"
        );
    }
}
