//! Python's `threading.Lock`: a lock that holds no data, can be released by any thread and
//! can say whether it is held. It is a bounded semaphore of one.

use std::fmt;
use std::time::Duration;

use super::semaphore::{BoundedSemaphore, OverRelease, SemaphoreGuard};

/// A lock without data, released by any thread: Python's `threading.Lock`.
///
/// Rust's [`std::sync::Mutex`] is the lock to use for protecting data: it owns what it protects
/// and only the thread holding its guard can unlock it. `Lock` is for what a mutex cannot do:
/// it can be taken by one thread and released by another (Python's "weak" lock, a binary
/// semaphore), and [`locked`](Lock::locked) tells whether someone holds it.
///
/// [`acquire`](Lock::acquire) returns a [`LockGuard`] that releases the lock when dropped, as
/// Python's `with lock:` does; [`forget`](SemaphoreGuard::forget) it to keep the lock taken and
/// call [`release`](Lock::release) later, from any thread. The lock is not reentrant: a thread
/// that acquires it twice waits for itself forever, as in Python.
///
/// # Examples
///
/// ```
/// use flotilla::sync::Lock;
/// use std::sync::Arc;
/// use std::thread;
///
/// let lock = Arc::new(Lock::new());
/// lock.acquire().forget(); // taken here...
/// assert!(lock.locked());
/// let other = Arc::clone(&lock);
/// thread::spawn(move || other.release().unwrap()) // ...released by another thread
///     .join()
///     .unwrap();
/// assert!(!lock.locked());
/// ```
pub struct Lock {
    sem: BoundedSemaphore,
}

/// The guard of a [`Lock`]: the same type as [`SemaphoreGuard`]; dropping it releases the
/// lock.
///
/// # Examples
///
/// ```
/// use flotilla::sync::{Lock, LockGuard};
///
/// let lock = Lock::new();
/// let guard: LockGuard<'_> = lock.acquire();
/// assert!(lock.locked());
/// drop(guard);
/// assert!(!lock.locked());
/// ```
pub type LockGuard<'a> = SemaphoreGuard<'a>;

impl Lock {
    /// Creates an unlocked lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Lock;
    ///
    /// assert!(!Lock::new().locked());
    /// ```
    pub fn new() -> Lock {
        Lock {
            sem: BoundedSemaphore::new(1),
        }
    }

    /// Takes the lock, waiting as long as it takes.
    ///
    /// # Blocking
    ///
    /// Blocks while another holder has it, until its guard is dropped or
    /// [`release`](Lock::release) is called.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Lock;
    ///
    /// let lock = Lock::new();
    /// {
    ///     let _held = lock.acquire();
    ///     assert!(lock.try_acquire().is_none());
    /// }
    /// assert!(lock.try_acquire().is_some());
    /// ```
    pub fn acquire(&self) -> LockGuard<'_> {
        self.sem.acquire()
    }

    /// Takes the lock if it is free right now (Python's `acquire(blocking=False)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Lock;
    ///
    /// let lock = Lock::new();
    /// let first = lock.try_acquire();
    /// assert!(first.is_some());
    /// assert!(lock.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<LockGuard<'_>> {
        self.sem.try_acquire()
    }

    /// Takes the lock, waiting at most `timeout` (Python's `acquire(timeout=...)`); `None` if
    /// it was still held when `timeout` passed. A timeout too large to represent waits forever.
    ///
    /// # Blocking
    ///
    /// Blocks for at most `timeout` while the lock is held.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Lock;
    /// use std::time::Duration;
    ///
    /// let lock = Lock::new();
    /// let _held = lock.acquire();
    /// assert!(lock.acquire_timeout(Duration::from_millis(10)).is_none());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<LockGuard<'_>> {
        self.sem.acquire_timeout(timeout)
    }

    /// Releases a lock taken with a guard that was [`forget`](SemaphoreGuard::forget)-ten;
    /// any thread may call it. Wakes one waiting thread, if there is one.
    ///
    /// # Errors
    ///
    /// [`OverRelease`] if the lock is not held (Python raises `RuntimeError('release unlocked
    /// lock')`); nothing changes.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::{Lock, OverRelease};
    ///
    /// let lock = Lock::new();
    /// lock.acquire().forget();
    /// assert_eq!(lock.release(), Ok(()));
    /// assert_eq!(lock.release(), Err(OverRelease));
    /// ```
    pub fn release(&self) -> Result<(), OverRelease> {
        self.sem.release()
    }

    /// True if some thread holds the lock right now: Python's `locked()`.
    ///
    /// Another thread may take or release it at any moment, so treat it as a hint.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Lock;
    ///
    /// let lock = Lock::new();
    /// assert!(!lock.locked());
    /// let guard = lock.acquire();
    /// assert!(lock.locked());
    /// drop(guard);
    /// assert!(!lock.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.sem.available_permits() == 0
    }
}

impl Default for Lock {
    /// An unlocked lock, as [`Lock::new`].
    fn default() -> Lock {
        Lock::new()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .finish()
    }
}
