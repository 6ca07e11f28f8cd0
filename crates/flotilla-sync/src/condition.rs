//! Python's `threading.Condition`, Rust-shaped: the condition owns the data its lock protects.
//!
//! Waiters queue up in arrival order; `notify(n)` marks the `n` oldest as notified, so a waiter
//! only returns `true` when it was notified, never because of a spurious wake-up of the
//! underlying condvar, and `notify(n)` wakes exactly `min(n, waiting)` threads, as in CPython.

use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use crate::primitives::{Condvar, Mutex, MutexGuard, deadline_in, lock, wait_until};

/// A lock that owns data plus a way to wait for that data to change: Python's
/// `threading.Condition`.
///
/// [`lock`](Condition::lock) returns a [`ConditionGuard`] that derefs to the data; on it,
/// [`wait`](ConditionGuard::wait) releases the lock until another thread calls
/// [`notify`](ConditionGuard::notify) or [`notify_all`](ConditionGuard::notify_all), and
/// [`wait_for`](ConditionGuard::wait_for) waits until a predicate over the data holds. Waiting
/// and notifying both need the guard, so Python's "cannot wait on un-acquired lock"
/// `RuntimeError` is a compile error here.
///
/// Compared with [`std::sync::Mutex`] + [`std::sync::Condvar`]: the same thing in one object,
/// with Python's promises that std's condvar does not make: `wait` returns `true` only when
/// notified (no spurious wake-ups), `notify(n)` wakes the `n` longest-waiting threads, and
/// [`wait_for`](ConditionGuard::wait_for) takes a timeout. A panic while the guard is held does
/// not poison the condition: the next `lock` gets the data as the panicking thread left it.
///
/// # Examples
///
/// ```
/// use flotilla::sync::Condition;
/// use std::sync::Arc;
/// use std::thread;
///
/// let items = Arc::new(Condition::new(Vec::new()));
/// let consumer = {
///     let items = Arc::clone(&items);
///     thread::spawn(move || {
///         let mut items = items.lock();
///         items.wait_for(|items| !items.is_empty());
///         items.pop()
///     })
/// };
/// let mut guard = items.lock();
/// guard.push(42);
/// guard.notify(1);
/// drop(guard);
/// assert_eq!(consumer.join().unwrap(), Some(42));
/// ```
pub struct Condition<T> {
    state: Mutex<Inner<T>>,
    changed: Condvar,
}

struct Inner<T> {
    data: T,
    /// Threads in `wait`, oldest first.
    waiters: VecDeque<Waiter>,
    next_ticket: u64,
}

struct Waiter {
    ticket: u64,
    notified: bool,
}

impl<T> Condition<T> {
    /// Creates a condition whose lock protects `data`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Condition;
    ///
    /// let cond = Condition::new(0_u32);
    /// assert_eq!(*cond.lock(), 0);
    /// ```
    pub fn new(data: T) -> Condition<T> {
        Condition {
            state: Mutex::new(Inner {
                data,
                waiters: VecDeque::new(),
                next_ticket: 0,
            }),
            changed: Condvar::new(),
        }
    }

    /// Takes the lock, waiting as long as it takes (Python's `with cond:`); dropping the guard
    /// releases it.
    ///
    /// # Blocking
    ///
    /// Blocks while another thread holds the guard (a thread inside
    /// [`wait`](ConditionGuard::wait) does not).
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Condition;
    ///
    /// let cond = Condition::new(String::new());
    /// cond.lock().push_str("hello");
    /// assert_eq!(*cond.lock(), "hello");
    /// ```
    pub fn lock(&self) -> ConditionGuard<'_, T> {
        ConditionGuard {
            cond: self,
            inner: Some(lock(&self.state)),
        }
    }

    /// Takes the lock if it is free right now (Python's `acquire(blocking=False)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Condition;
    ///
    /// let cond = Condition::new(());
    /// let held = cond.lock();
    /// assert!(cond.try_lock().is_none());
    /// drop(held);
    /// assert!(cond.try_lock().is_some());
    /// ```
    pub fn try_lock(&self) -> Option<ConditionGuard<'_, T>> {
        let inner = match self.state.try_lock() {
            Ok(inner) => inner,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(ConditionGuard {
            cond: self,
            inner: Some(inner),
        })
    }

    /// Consumes the condition and returns its data.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Condition;
    ///
    /// let cond = Condition::new(vec![1, 2]);
    /// cond.lock().push(3);
    /// assert_eq!(cond.into_inner(), [1, 2, 3]);
    /// ```
    pub fn into_inner(self) -> T {
        self.state
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .data
    }
}

impl<T: Default> Default for Condition<T> {
    /// A condition over `T::default()`.
    fn default() -> Condition<T> {
        Condition::new(T::default())
    }
}

impl<T> fmt::Debug for Condition<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition").finish_non_exhaustive()
    }
}

/// The lock of a [`Condition`], held: derefs to the data, and waits and notifies.
///
/// Dropping it releases the lock.
///
/// # Examples
///
/// ```
/// use flotilla::sync::Condition;
///
/// let cond = Condition::new(1);
/// let mut guard = cond.lock();
/// *guard += 1;
/// assert_eq!(*guard, 2);
/// ```
#[must_use = "dropping the guard releases the lock at once"]
pub struct ConditionGuard<'a, T> {
    cond: &'a Condition<T>,
    /// Always `Some` outside `wait`, which hands the guard to the condvar and takes it back.
    inner: Option<MutexGuard<'a, Inner<T>>>,
}

impl<T> ConditionGuard<'_, T> {
    fn inner(&self) -> &Inner<T> {
        self.inner
            .as_ref()
            .expect("the guard is only vacant inside wait")
    }

    fn inner_mut(&mut self) -> &mut Inner<T> {
        self.inner
            .as_mut()
            .expect("the guard is only vacant inside wait")
    }

    /// Releases the lock, waits as long as it takes to be notified, then takes the lock back:
    /// Python's `cond.wait()`. [`wait_timeout`](Self::wait_timeout) waits at most a given time.
    ///
    /// # Blocking
    ///
    /// Blocks until [`notify`](Self::notify) or [`notify_all`](Self::notify_all) picks this
    /// thread, and then until the lock is free.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Condition;
    /// use std::sync::Arc;
    /// use std::thread;
    ///
    /// let ready = Arc::new(Condition::new(false));
    /// let setter = {
    ///     let ready = Arc::clone(&ready);
    ///     thread::spawn(move || {
    ///         let mut flag = ready.lock();
    ///         *flag = true;
    ///         flag.notify_all();
    ///     })
    /// };
    /// let mut flag = ready.lock();
    /// while !*flag {
    ///     flag.wait();
    /// }
    /// drop(flag);
    /// setter.join().unwrap();
    /// ```
    pub fn wait(&mut self) {
        self.wait_within(None);
    }

    /// Releases the lock and waits until notified or until `timeout` passes, then takes the
    /// lock back. Python's `cond.wait(timeout)`.
    ///
    /// Returns `true` if this thread was notified, `false` if the timeout passed first.
    ///
    /// # Blocking
    ///
    /// Blocks until [`notify`](Self::notify) or [`notify_all`](Self::notify_all) picks this
    /// thread, for at most `timeout`, and then until the lock is free.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Condition;
    /// use std::time::Duration;
    ///
    /// let cond = Condition::new(());
    /// let mut guard = cond.lock();
    /// assert!(!guard.wait_timeout(Duration::from_millis(10))); // nobody notifies
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        self.wait_within(Some(timeout))
    }

    fn wait_within(&mut self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.and_then(deadline_in);
        let mut inner = self
            .inner
            .take()
            .expect("the guard is only vacant inside wait");
        let ticket = inner.next_ticket;
        inner.next_ticket = inner.next_ticket.wrapping_add(1);
        inner.waiters.push_back(Waiter {
            ticket,
            notified: false,
        });
        let notified = loop {
            let (guard, expired) = wait_until(&self.cond.changed, inner, deadline);
            inner = guard;
            let at = inner
                .waiters
                .iter()
                .position(|w| w.ticket == ticket)
                .expect("only its own thread removes a waiter");
            let notified = inner.waiters[at].notified;
            if notified || expired {
                inner.waiters.remove(at);
                break notified;
            }
        };
        self.inner = Some(inner);
        notified
    }

    /// Waits as long as it takes until `predicate` holds for the data: Python's
    /// `cond.wait_for(predicate)`.
    ///
    /// The predicate is checked first, then after every notification, always with the lock
    /// held. [`wait_for_timeout`](Self::wait_for_timeout) waits at most a given time.
    ///
    /// # Blocking
    ///
    /// Blocks until the predicate holds after a notification.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Condition;
    /// use std::sync::Arc;
    /// use std::thread;
    ///
    /// let count = Arc::new(Condition::new(0));
    /// let counter = {
    ///     let count = Arc::clone(&count);
    ///     thread::spawn(move || {
    ///         for _ in 0..3 {
    ///             let mut n = count.lock();
    ///             *n += 1;
    ///             n.notify_all();
    ///         }
    ///     })
    /// };
    /// let mut n = count.lock();
    /// n.wait_for(|n| *n == 3);
    /// assert_eq!(*n, 3);
    /// drop(n);
    /// counter.join().unwrap();
    /// ```
    pub fn wait_for(&mut self, predicate: impl FnMut(&mut T) -> bool) {
        self.wait_for_within(predicate, None);
    }

    /// Waits until `predicate` holds for the data, or until `timeout` passes: Python's
    /// `cond.wait_for(predicate, timeout)`.
    ///
    /// The predicate is checked first, then after every notification, always with the lock
    /// held. Returns its last result: `true` if it holds, `false` if the timeout passed first.
    /// The timeout bounds the whole call, not each wait.
    ///
    /// # Blocking
    ///
    /// Blocks until the predicate holds after a notification, for at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Condition;
    /// use std::sync::Arc;
    /// use std::thread;
    /// use std::time::Duration;
    ///
    /// let count = Arc::new(Condition::new(0));
    /// let counter = {
    ///     let count = Arc::clone(&count);
    ///     thread::spawn(move || {
    ///         for _ in 0..4 {
    ///             let mut n = count.lock();
    ///             *n += 1;
    ///             n.notify_all();
    ///         }
    ///     })
    /// };
    /// let mut n = count.lock();
    /// assert!(n.wait_for_timeout(|n| *n == 4, Duration::from_secs(60)));
    /// assert!(!n.wait_for_timeout(|n| *n == 5, Duration::from_millis(10)));
    /// drop(n);
    /// counter.join().unwrap();
    /// ```
    pub fn wait_for_timeout(
        &mut self,
        predicate: impl FnMut(&mut T) -> bool,
        timeout: Duration,
    ) -> bool {
        self.wait_for_within(predicate, Some(timeout))
    }

    fn wait_for_within(
        &mut self,
        mut predicate: impl FnMut(&mut T) -> bool,
        timeout: Option<Duration>,
    ) -> bool {
        let deadline = timeout.and_then(deadline_in);
        loop {
            if predicate(&mut self.inner_mut().data) {
                return true;
            }
            // No deadline: no timeout, or one too far ahead to represent; both wait forever.
            let left = match deadline {
                None => None,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    Some(left)
                }
            };
            self.wait_within(left);
        }
    }

    /// Wakes up to `n` of the threads waiting on this condition, longest-waiting first:
    /// Python's `cond.notify(n)`. They run once this guard is dropped (or waits).
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Condition;
    /// use std::sync::Arc;
    /// use std::thread;
    ///
    /// let ready = Arc::new(Condition::new(false));
    /// let waiter = {
    ///     let ready = Arc::clone(&ready);
    ///     thread::spawn(move || {
    ///         let mut flag = ready.lock();
    ///         flag.wait_for(|r| *r);
    ///         *flag
    ///     })
    /// };
    /// let mut guard = ready.lock();
    /// *guard = true;
    /// guard.notify(1);
    /// drop(guard);
    /// assert!(waiter.join().unwrap());
    /// ```
    pub fn notify(&mut self, n: usize) {
        let inner = self.inner_mut();
        let mut picked = 0;
        for waiter in inner.waiters.iter_mut().filter(|w| !w.notified).take(n) {
            waiter.notified = true;
            picked += 1;
        }
        if picked > 0 {
            // std cannot wake a chosen thread: wake all, and the ones not picked wait again.
            self.cond.changed.notify_all();
        }
    }

    /// Wakes every thread waiting on this condition: Python's `cond.notify_all()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Condition;
    ///
    /// let cond = Condition::new(0);
    /// let mut guard = cond.lock();
    /// guard.notify_all(); // nobody waits: nothing happens
    /// assert_eq!(*guard, 0);
    /// ```
    pub fn notify_all(&mut self) {
        self.notify(usize::MAX);
    }
}

impl<T> Deref for ConditionGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner().data
    }
}

impl<T> DerefMut for ConditionGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner_mut().data
    }
}

impl<T: fmt::Debug> fmt::Debug for ConditionGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionGuard")
            .field("data", &self.inner().data)
            .finish()
    }
}
