//! Python's `Manager().Lock()`, `RLock()` and `Condition()`.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::super::client::unexpected;
use super::super::handle::{Handle, Proxy, sealed};
use super::super::protocol::{Kind, Op, Reply};
use super::{Marker, proxy};
use flotilla_core::Error;
use flotilla_shared::LockError;

/// A lock held by a manager: Python's `Manager().Lock()`, with a guard that releases it.
///
/// The lock belongs to the process that took it (all of a process's proxies share one
/// session with the manager), not to a thread. If that process dies, or drops every proxy
/// of the manager, while holding it, the server releases it and the next acquisition
/// succeeds but reports [`LockError::OwnerDied`] with the guard, like the
/// [shared-memory lock](flotilla_shared::Lock): repair the data, then
/// [`mark_consistent`](LockGuard::mark_consistent). Nobody hangs. The same happens when the
/// holder goes silent (stopped, or cut off from the server) for longer than the manager's
/// [lease](crate::ManagerBuilder::lease): a guard can outlive its hold, and a holder that
/// comes back is told so by its next operation's [`Error::Disconnected`]. Connection
/// failures are [`LockError::Os`], wrapping the [`Error`].
///
/// # Examples
///
/// ```
/// let manager = flotilla::manager::Manager::new()?;
/// let lock = manager.lock()?;
/// {
///     let _guard = lock.lock().unwrap();
///     assert!(lock.try_lock().unwrap_err().is_busy());
/// }
/// assert!(lock.try_lock().is_ok());
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Lock {
    handle: Handle,
    _types: Marker<()>,
}

proxy!(Lock, Lock);

/// Holds a manager [`Lock`]; dropping it releases the lock. So a guard that is not kept
/// releases the lock at once, which is a warning:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// fn take(lock: &flotilla::manager::Lock) {
///     lock.lock().unwrap(); // taken and released
/// }
/// ```
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl Lock {
    fn acquire(&self, wait: Option<Duration>) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        match self.handle.op(Op::LockAcquire { wait }) {
            Ok(Reply::Acquired { owner_died: false }) => Ok(LockGuard { lock: self }),
            Ok(Reply::Acquired { owner_died: true }) => {
                Err(LockError::OwnerDied(LockGuard { lock: self }))
            }
            Ok(Reply::TimedOut) if wait == Some(Duration::ZERO) => Err(LockError::WouldBlock),
            Ok(Reply::TimedOut) => Err(LockError::TimedOut),
            Ok(other) => Err(LockError::Os(std::io::Error::other(unexpected(&other)))),
            Err(err) => Err(LockError::Os(std::io::Error::other(err))),
        }
    }

    /// Takes the lock, waiting as long as it takes: Python's `with lock:`.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] with the guard if a holder died (the lock *is* taken);
    /// [`LockError::Os`] if the manager cannot be reached.
    ///
    /// # Blocking
    ///
    /// While another process holds the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let lock = manager.lock()?;
    /// let guard = lock.lock().unwrap();
    /// drop(guard); // released
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn lock(&self) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        self.acquire(None)
    }

    /// Takes the lock only if it is free now: Python's `acquire(blocking=False)`.
    ///
    /// # Errors
    ///
    /// [`LockError::WouldBlock`] if it is held; otherwise as [`lock`](Lock::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let lock = manager.lock()?;
    /// let _held = lock.try_lock().unwrap();
    /// assert!(lock.try_lock().is_err());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn try_lock(&self) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        self.acquire(Some(Duration::ZERO))
    }

    /// Takes the lock, waiting at most `timeout`: Python's `acquire(timeout=t)`.
    ///
    /// # Errors
    ///
    /// [`LockError::TimedOut`] if it stayed held; otherwise as [`lock`](Lock::lock).
    ///
    /// # Blocking
    ///
    /// Up to `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let manager = flotilla::manager::Manager::new()?;
    /// let lock = manager.lock()?;
    /// let _held = lock.lock().unwrap();
    /// let err = lock.lock_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert!(err.is_busy());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        self.acquire(Some(timeout))
    }
}

impl LockGuard<'_> {
    /// Declares the data the lock protects repaired after [`LockError::OwnerDied`]; later
    /// acquisitions no longer report the death.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let lock = manager.lock()?;
    /// let guard = lock.lock().unwrap();
    /// guard.mark_consistent()?; // harmless when nobody died
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn mark_consistent(&self) -> Result<(), Error> {
        self.lock.handle.done(Op::LockMarkConsistent)
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        if let Err(err) = self.lock.handle.done(Op::LockRelease) {
            // The manager is gone (and the lock with it), or it released the lock already.
            tracing::debug!(%err, "manager lock: release failed");
        }
    }
}

/// This thread's number, which names it to a manager as the holder of a re-entrant lock:
/// unique within the process, never reused.
fn thread_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static MINE: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    MINE.with(|n| *n)
}

/// Takes a re-entrant lock (an [`RLock`]'s or a [`Condition`]'s) for `thread`.
fn acquire_reentrant(
    handle: &Handle,
    wait: Option<Duration>,
    thread: u64,
) -> Result<(), LockError<()>> {
    match handle.op(Op::RLockAcquire { wait, thread }) {
        Ok(Reply::Acquired { owner_died: false }) => Ok(()),
        Ok(Reply::Acquired { owner_died: true }) => Err(LockError::OwnerDied(())),
        Ok(Reply::TimedOut) if wait == Some(Duration::ZERO) => Err(LockError::WouldBlock),
        Ok(Reply::TimedOut) => Err(LockError::TimedOut),
        Ok(other) => Err(LockError::Os(std::io::Error::other(unexpected(&other)))),
        Err(err) => Err(LockError::Os(std::io::Error::other(err))),
    }
}

/// The guard of a re-entrant lock, from its holder's acquisition: the same error with the
/// guard made by `guard`.
fn with_guard<G>(
    taken: Result<(), LockError<()>>,
    guard: impl FnOnce() -> G,
) -> Result<G, LockError<G>> {
    match taken {
        Ok(()) => Ok(guard()),
        Err(LockError::OwnerDied(())) => Err(LockError::OwnerDied(guard())),
        Err(LockError::WouldBlock) => Err(LockError::WouldBlock),
        Err(LockError::TimedOut) => Err(LockError::TimedOut),
        Err(LockError::Os(err)) => Err(LockError::Os(err)),
        Err(other) => Err(LockError::Os(std::io::Error::other(other.to_string()))),
    }
}

/// Releases one hold of a re-entrant lock, from a guard's `drop`.
fn release_reentrant(handle: &Handle, thread: u64) {
    if let Err(err) = handle.done(Op::RLockRelease { thread }) {
        // The manager is gone (and the lock with it), or it released the lock already.
        tracing::debug!(%err, "manager re-entrant lock: release failed");
    }
}

/// A re-entrant lock held by a manager: Python's `Manager().RLock()`.
///
/// # Who holds it
///
/// The holder is **one thread of one process**: the thread that took it may take it again
/// (each [`RLockGuard`] counts one hold; the lock is free when every guard is dropped), and
/// every other thread waits for it, in this process or any other. A process's calls to a
/// manager travel over several pooled connections, so a connection cannot name the holder
/// (as Python's one-connection-per-thread proxies do); instead every request names its
/// thread by a number drawn once per thread, within the process's session. A guard
/// remembers the thread that took it, so a guard moved to another thread and dropped there
/// releases the right hold.
///
/// As with [`Lock`], when the holding process dies (or goes silent past the manager's
/// lease), the server releases every hold and the next acquisition reports
/// [`LockError::OwnerDied`] with the guard, until [`mark_consistent`](RLockGuard::mark_consistent).
///
/// # Examples
///
/// ```
/// let manager = flotilla::manager::Manager::new()?;
/// let rlock = manager.rlock()?;
/// let outer = rlock.lock().unwrap();
/// let inner = rlock.try_lock().unwrap(); // re-entered
/// let other = std::thread::scope(|s| s.spawn(|| rlock.try_lock().is_err()).join().unwrap());
/// assert!(other); // another thread cannot take it
/// drop(inner);
/// drop(outer);
/// assert!(rlock.try_lock().is_ok());
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct RLock {
    handle: Handle,
    _types: Marker<()>,
}

proxy!(RLock, RLock);

/// One hold of a manager [`RLock`]; dropping it releases that hold (the lock is free when
/// its holder dropped every guard).
#[derive(Debug)]
#[must_use = "the hold is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    thread: u64,
}

impl RLock {
    fn acquire(&self, wait: Option<Duration>) -> Result<RLockGuard<'_>, LockError<RLockGuard<'_>>> {
        let thread = thread_number();
        with_guard(acquire_reentrant(&self.handle, wait, thread), || {
            RLockGuard { lock: self, thread }
        })
    }

    /// Takes the lock (again, if this thread holds it), waiting as long as it takes:
    /// Python's `with rlock:`.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] with the guard if a holder died (the lock *is* taken);
    /// [`LockError::Os`] if the manager cannot be reached.
    ///
    /// # Blocking
    ///
    /// While another thread (of any process) holds the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let rlock = manager.rlock()?;
    /// let a = rlock.lock().unwrap();
    /// let b = rlock.lock().unwrap();
    /// drop((a, b));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn lock(&self) -> Result<RLockGuard<'_>, LockError<RLockGuard<'_>>> {
        self.acquire(None)
    }

    /// Takes the lock only if it is free or this thread's now: Python's
    /// `acquire(blocking=False)`.
    ///
    /// # Errors
    ///
    /// [`LockError::WouldBlock`] if another thread holds it; otherwise as
    /// [`lock`](RLock::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let rlock = manager.rlock()?;
    /// assert!(rlock.try_lock().is_ok());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn try_lock(&self) -> Result<RLockGuard<'_>, LockError<RLockGuard<'_>>> {
        self.acquire(Some(Duration::ZERO))
    }

    /// Takes the lock, waiting at most `timeout`: Python's `acquire(timeout=t)`.
    ///
    /// # Errors
    ///
    /// [`LockError::TimedOut`] if another thread kept it; otherwise as [`lock`](RLock::lock).
    ///
    /// # Blocking
    ///
    /// Up to `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let manager = flotilla::manager::Manager::new()?;
    /// let rlock = manager.rlock()?;
    /// assert!(rlock.lock_timeout(Duration::from_millis(10)).is_ok());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<RLockGuard<'_>, LockError<RLockGuard<'_>>> {
        self.acquire(Some(timeout))
    }
}

impl RLockGuard<'_> {
    /// Declares the data the lock protects repaired after [`LockError::OwnerDied`].
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let rlock = manager.rlock()?;
    /// rlock.lock().unwrap().mark_consistent()?;
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn mark_consistent(&self) -> Result<(), Error> {
        self.lock.handle.done(Op::RLockMarkConsistent {
            thread: self.thread,
        })
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        release_reentrant(&self.lock.handle, self.thread);
    }
}

/// A condition variable held by a manager, with its own re-entrant lock: Python's
/// `Manager().Condition()`.
///
/// Take the lock with [`lock`](Condition::lock); the [`ConditionGuard`] then
/// [`wait`](ConditionGuard::wait)s (releasing the lock while it waits, taking it back after),
/// [`wait_for`](ConditionGuard::wait_for)s a predicate, and
/// [`notify`](ConditionGuard::notify)s. The lock is held as an [`RLock`] is: by one thread of
/// one process, re-entrantly.
///
/// # Failures
///
/// - A process that dies holding the lock: the server frees it, and the next
///   acquisition (or the wait that takes it back) reports the death, as for [`Lock`].
/// - A process that dies while it waits: its wait ends in the server; if it had been
///   notified, its notification passes to the next waiter, so a `notify()` is not lost.
/// - The manager gone while waiting: the wait fails with [`Error::Disconnected`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let manager = flotilla::manager::Manager::new()?;
/// let cond = manager.condition()?;
/// let ready = manager.value(&false)?;
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         let guard = cond.lock().unwrap();
///         ready.set(&true).unwrap();
///         guard.notify_all().unwrap();
///     });
///     let mut guard = cond.lock().unwrap();
///     guard.wait_for(|| ready.get().unwrap()).unwrap();
/// });
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Condition {
    handle: Handle,
    _types: Marker<()>,
}

proxy!(Condition, Condition);

/// A hold of a [`Condition`]'s lock; dropping it releases that hold.
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a> {
    cond: &'a Condition,
    thread: u64,
    owner_died: bool,
}

impl Condition {
    fn acquire(
        &self,
        wait: Option<Duration>,
    ) -> Result<ConditionGuard<'_>, LockError<ConditionGuard<'_>>> {
        let thread = thread_number();
        let taken = acquire_reentrant(&self.handle, wait, thread);
        let owner_died = matches!(taken, Err(LockError::OwnerDied(())));
        with_guard(taken, || ConditionGuard {
            cond: self,
            thread,
            owner_died,
        })
    }

    /// Takes the condition's lock, waiting as long as it takes: Python's `with cond:`.
    ///
    /// # Errors
    ///
    /// As [`RLock::lock`].
    ///
    /// # Blocking
    ///
    /// While another thread holds the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let cond = manager.condition()?;
    /// drop(cond.lock().unwrap());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn lock(&self) -> Result<ConditionGuard<'_>, LockError<ConditionGuard<'_>>> {
        self.acquire(None)
    }

    /// Takes the lock only if it is free or this thread's now.
    ///
    /// # Errors
    ///
    /// As [`RLock::try_lock`].
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let cond = manager.condition()?;
    /// assert!(cond.try_lock().is_ok());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn try_lock(&self) -> Result<ConditionGuard<'_>, LockError<ConditionGuard<'_>>> {
        self.acquire(Some(Duration::ZERO))
    }

    /// Takes the lock, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`RLock::lock_timeout`].
    ///
    /// # Blocking
    ///
    /// Up to `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let manager = flotilla::manager::Manager::new()?;
    /// let cond = manager.condition()?;
    /// assert!(cond.lock_timeout(Duration::from_millis(10)).is_ok());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ConditionGuard<'_>, LockError<ConditionGuard<'_>>> {
        self.acquire(Some(timeout))
    }
}

impl ConditionGuard<'_> {
    fn wait_waiting(&mut self, wait: Option<Duration>) -> Result<bool, Error> {
        match self.cond.handle.op(Op::CondWait {
            wait,
            thread: self.thread,
        })? {
            Reply::Waited {
                notified,
                owner_died,
            } => {
                self.owner_died |= owner_died;
                Ok(notified)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Releases the lock, waits until notified, and takes the lock back: Python's
    /// `cond.wait()`. Wake-ups are notifications only (no spurious ones), but the state may
    /// have changed again by the time the lock is back: check it, or use
    /// [`wait_for`](ConditionGuard::wait_for).
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone (before or during the wait; the lock
    /// is gone with it).
    ///
    /// # Blocking
    ///
    /// Until another thread notifies, then while another thread holds the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let cond = manager.condition()?;
    /// std::thread::scope(|s| {
    ///     let mut guard = cond.lock().unwrap();
    ///     s.spawn(|| cond.lock().unwrap().notify().unwrap());
    ///     guard.wait().unwrap(); // the lock is free while this waits
    /// });
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn wait(&mut self) -> Result<(), Error> {
        self.wait_waiting(None).map(drop)
    }

    /// As [`wait`](ConditionGuard::wait), waiting at most `timeout` for a notification (and
    /// then as long as it takes for the lock); returns whether it was notified: Python's
    /// `cond.wait(timeout)`.
    ///
    /// # Errors
    ///
    /// As [`wait`](ConditionGuard::wait).
    ///
    /// # Blocking
    ///
    /// Up to `timeout`, then while another thread holds the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let manager = flotilla::manager::Manager::new()?;
    /// let cond = manager.condition()?;
    /// let mut guard = cond.lock().unwrap();
    /// assert!(!guard.wait_timeout(Duration::from_millis(10))?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<bool, Error> {
        self.wait_waiting(Some(timeout))
    }

    /// Waits until `ready()` is true, checking it with the lock held, first before any wait
    /// and then after each notification: Python's `cond.wait_for(predicate)`.
    ///
    /// # Errors
    ///
    /// As [`wait`](ConditionGuard::wait).
    ///
    /// # Blocking
    ///
    /// Until `ready()` is true.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let cond = manager.condition()?;
    /// let mut guard = cond.lock().unwrap();
    /// guard.wait_for(|| true)?; // already true: no wait
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn wait_for(&mut self, mut ready: impl FnMut() -> bool) -> Result<(), Error> {
        while !ready() {
            self.wait()?;
        }
        Ok(())
    }

    /// As [`wait_for`](ConditionGuard::wait_for), for at most `timeout` in all; returns the
    /// predicate's last value, as Python's `cond.wait_for(predicate, timeout)` does.
    ///
    /// # Errors
    ///
    /// As [`wait`](ConditionGuard::wait).
    ///
    /// # Blocking
    ///
    /// Up to `timeout` (plus the time to take the lock back after each notification).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let manager = flotilla::manager::Manager::new()?;
    /// let cond = manager.condition()?;
    /// let mut guard = cond.lock().unwrap();
    /// assert!(!guard.wait_for_timeout(|| false, Duration::from_millis(10))?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn wait_for_timeout(
        &mut self,
        mut ready: impl FnMut() -> bool,
        timeout: Duration,
    ) -> Result<bool, Error> {
        let deadline = std::time::Instant::now().checked_add(timeout);
        loop {
            if ready() {
                return Ok(true);
            }
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(std::time::Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return Ok(false);
            }
            self.wait_waiting(Some(left))?;
        }
    }

    /// Wakes up to `n` of the threads waiting on the condition (in any process), oldest
    /// first: Python's `cond.notify(n)`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let cond = manager.condition()?;
    /// cond.lock().unwrap().notify_n(3)?;
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn notify_n(&self, n: u64) -> Result<(), Error> {
        self.cond.handle.done(Op::CondNotify {
            n,
            thread: self.thread,
        })
    }

    /// Wakes the oldest waiter: Python's `cond.notify()`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let cond = manager.condition()?;
    /// cond.lock().unwrap().notify()?;
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn notify(&self) -> Result<(), Error> {
        self.notify_n(1)
    }

    /// Wakes every waiter: Python's `cond.notify_all()`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let cond = manager.condition()?;
    /// cond.lock().unwrap().notify_all()?;
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn notify_all(&self) -> Result<(), Error> {
        self.notify_n(u64::MAX)
    }

    /// Whether a holder of the lock died (and nobody marked it consistent) before this
    /// guard took it or took it back after a wait.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let cond = manager.condition()?;
    /// assert!(!cond.lock().unwrap().owner_died());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn owner_died(&self) -> bool {
        self.owner_died
    }

    /// Declares the data the lock protects repaired after a holder died.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let cond = manager.condition()?;
    /// cond.lock().unwrap().mark_consistent()?;
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn mark_consistent(&mut self) -> Result<(), Error> {
        self.cond.handle.done(Op::RLockMarkConsistent {
            thread: self.thread,
        })?;
        self.owner_died = false;
        Ok(())
    }
}

impl Drop for ConditionGuard<'_> {
    fn drop(&mut self) {
        release_reentrant(&self.cond.handle, self.thread);
    }
}
