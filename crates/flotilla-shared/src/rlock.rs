//! [`RLock`]: the re-entrant flavour of [`Lock`](super::Lock), on a recursive robust mutex.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::lock::{Flavor, Holder, LockError, Locked, RawGuard, Wait, header_len, report};
use super::segment::{self, Kind, Segment};
use flotilla_core::Error;

/// Python's `multiprocessing.RLock`: a lock shared between processes that the thread holding
/// it may take again.
///
/// Each [`lock`](RLock::lock) by the holding thread returns another guard; the lock is free
/// for other threads and processes once every guard is dropped. Use it where a function that
/// takes the lock calls another that takes it too; where that never happens, the plain
/// [`Lock`](super::Lock) is stricter (a second acquisition is an error, not a count).
///
/// Like [`Lock`](super::Lock) it is robust: if the holder dies, however many times it had
/// taken the lock, the next acquisition succeeds with [`LockError::OwnerDied`] and the guard.
///
/// # Example
///
/// ```
/// use flotilla::shared::RLock;
///
/// let lock = RLock::new()?;
/// let outer = lock.lock().unwrap();
/// let inner = lock.lock().unwrap(); // the same thread: counted, not a deadlock
/// std::thread::scope(|s| {
///     s.spawn(|| assert!(lock.try_lock().unwrap_err().is_busy()));
/// });
/// drop(inner);
/// drop(outer);
/// assert!(lock.try_lock().is_ok());
/// # Ok::<(), flotilla::Error>(())
/// ```
///
/// Dropping a `RLock` drops this handle only: the object lives on in its clones and in other
/// processes (see [what dropping does](super#what-dropping-or-forgetting-handles-and-guards-does)).
#[derive(Clone)]
pub struct RLock {
    inner: Locked,
}

impl RLock {
    /// A new, unlocked re-entrant lock in its own shared segment.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the segment cannot be created or mapped.
    ///
    /// ```
    /// let lock = flotilla::shared::RLock::new()?;
    /// drop(lock.lock().unwrap());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn new() -> Result<RLock, Error> {
        let segment =
            Segment::create(header_len()).map_err(|err| segment::io_error("rlock", err))?;
        let locked = Locked::init_as(segment, Flavor::Recursive)
            .map_err(|err| segment::io_error("rlock", err))?;
        Ok(RLock { inner: locked })
    }

    /// Takes the lock, waiting as long as it takes; at once if this thread holds it already
    /// (Python's `acquire()`).
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] (holding the guard) if a holder died and nobody has called
    /// [`mark_consistent`](RLockGuard::mark_consistent) since.
    ///
    /// # Blocking
    ///
    /// Until every guard of another holder is dropped, or that holder dies.
    ///
    /// ```
    /// let lock = flotilla::shared::RLock::new()?;
    /// let a = lock.lock().unwrap();
    /// let b = lock.lock().unwrap();
    /// # drop((a, b));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn lock(&self) -> Result<RLockGuard<'_>, LockError<RLockGuard<'_>>> {
        report(self.inner.acquire(Wait::Block, Holder::User), RLockGuard)
    }

    /// Takes the lock if it is free or held by this thread (Python's `acquire(block=False)`).
    ///
    /// # Errors
    ///
    /// [`LockError::WouldBlock`] if another thread or process holds it; otherwise as
    /// [`lock`](RLock::lock).
    ///
    /// ```
    /// let lock = flotilla::shared::RLock::new()?;
    /// let held = lock.try_lock().unwrap();
    /// assert!(lock.try_lock().is_ok()); // re-entry
    /// # drop(held);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn try_lock(&self) -> Result<RLockGuard<'_>, LockError<RLockGuard<'_>>> {
        report(self.inner.acquire(Wait::Try, Holder::User), RLockGuard)
    }

    /// Takes the lock, waiting at most `timeout` (Python's `acquire(timeout=t)`); the
    /// wait is measured as for [`Lock::lock_timeout`](super::Lock::lock_timeout).
    ///
    /// # Errors
    ///
    /// [`LockError::TimedOut`] if another holder kept it; otherwise as [`lock`](RLock::lock).
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = flotilla::shared::RLock::new()?;
    /// let held = lock.lock().unwrap();
    /// let other = lock.clone();
    /// let waited = std::thread::spawn(move || {
    ///     other.lock_timeout(Duration::from_millis(20)).map(drop).map_err(|e| e.without_guard())
    /// });
    /// assert!(waited.join().unwrap().unwrap_err().is_busy());
    /// # drop(held);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<RLockGuard<'_>, LockError<RLockGuard<'_>>> {
        report(
            self.inner.acquire(Wait::For(timeout), Holder::User),
            RLockGuard,
        )
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock").finish_non_exhaustive()
    }
}

/// Encodes the lock for a child process; only valid inside
/// [`Process::start`](flotilla_process::process::Process::start).
impl Serialize for RLock {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        segment::encode(serializer, self.inner.segment(), Kind::RLock, 0, (0, 1))
    }
}

/// Takes over a re-entrant lock passed to this child process; fails anywhere else.
impl<'de> Deserialize<'de> for RLock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let adopted = segment::decode(deserializer, Kind::RLock, (0, 1))?;
        let segment = Segment::open(adopted.fd, header_len())
            .map_err(flotilla_process::wire::refusal::decoding)?;
        Ok(RLock {
            inner: Locked::adopt(segment),
        })
    }
}

/// One level of an [`RLock`] held; the lock is released when the last guard is dropped.
///
/// Dropped by a panic's unwinding, it marks the lock inconsistent (the next holder gets
/// [`LockError::OwnerDied`]); forgotten, it keeps the lock held until this thread ends and the
/// memory mapped, as a [`LockGuard`](super::LockGuard) does.
///
/// Not `Send`: it must be released by the thread that took it.
///
/// ```compile_fail
/// fn is_send<T: Send>() {}
/// is_send::<flotilla::shared::RLockGuard<'static>>();
/// ```
///
/// Dropping it straight away releases the lock straight away, so it is `#[must_use]`: a
/// statement that takes the lock and keeps nothing is warned about.
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let lock = flotilla::shared::RLock::new().unwrap();
/// lock.lock().unwrap(); // held for no time at all
/// ```
#[must_use = "dropping the guard releases the lock at once; bind it (`let guard = ...`) to hold the lock"]
pub struct RLockGuard<'a>(RawGuard<'a>);

impl RLockGuard<'_> {
    /// Declares the protected data repaired after [`LockError::OwnerDied`]; later
    /// acquisitions succeed normally again. Harmless when no holder died.
    ///
    /// ```
    /// let lock = flotilla::shared::RLock::new()?;
    /// let mut guard = lock.lock().unwrap();
    /// guard.mark_consistent();
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn mark_consistent(&mut self) {
        self.0.mark_consistent();
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard").finish_non_exhaustive()
    }
}
