//! [`Condition`]: a process-shared condition variable with its own robust lock.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::lock::{Holder, LockError, RawGuard, Wait, report};
use super::segment::Kind;
use super::sync::{Synced, WORDS, Waited, deadline_after};
use flotilla_core::Error;

// State words, read and written with the condition's lock held.
/// Threads waiting now (including any that died waiting; see [`Condition`]).
const WAITING: usize = 0;
/// Notifications not yet taken by a waiter; never more than `WAITING`.
const SIGNALS: usize = 1;

/// Python's `multiprocessing.Condition`: waiting for a change that another process makes,
/// under a lock shared by both.
///
/// The condition owns its lock: [`lock`](Condition::lock) takes it and returns a
/// [`ConditionGuard`], on which [`wait`](ConditionGuard::wait) releases the lock while
/// waiting and takes it again before returning, and [`notify`](ConditionGuard::notify) /
/// [`notify_all`](ConditionGuard::notify_all) wake waiters. The data the condition is about
/// lives elsewhere — typically a [`RawValue`](super::RawValue) or
/// [`RawArray`](super::RawArray), read and written only while the guard is held.
///
/// # How it differs from Python
///
/// - The lock is a plain robust [`Lock`](super::Lock)-like mutex, not Python's default
///   `RLock`: a condition wait must release the lock completely.
/// - A holder that dies makes the next acquisition — and a `wait` that takes the lock back
///   after it — report [`LockError::OwnerDied`], still holding the lock.
/// - A process killed while waiting costs nothing later: waiters sleep on a futex word in
///   the shared memory, not a process-shared `pthread_cond_t` (whose wake-ups, on glibc,
///   wait for every earlier waiter to leave, which a killed one never does), so no
///   notify ever waits for anyone.
/// - Like any condition variable (and `std::sync::Condvar`), `wait` may return `true`
///   without a matching notify, in particular when a waiting process was killed (its share of
///   a notify is passed on, never lost): check the condition in a loop, or use
///   [`wait_for`](ConditionGuard::wait_for), which does.
///
/// # Example
///
/// ```
/// use flotilla::process::Process;
/// use flotilla::shared::{Condition, RawValue};
///
/// #[flotilla::task]
/// fn produce(ready: Condition, items: RawValue<u64>) {
///     for _ in 0..3 {
///         let mut guard = ready.lock().unwrap();
///         items.store(items.load() + 1);
///         guard.notify(1);
///     }
/// }
///
/// let ready = Condition::new()?;
/// let items = RawValue::new(0u64)?;
/// let producer = Process::new(ProduceTask, (ready.clone(), items.clone())).start()?;
/// let mut guard = ready.lock().unwrap();
/// assert!(guard.wait_for(|| items.load() == 3).unwrap());
/// drop(guard);
/// producer.join();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Dropping a `Condition` drops this handle only: the object lives on in its clones and in other
/// processes (see [what dropping does](super#what-dropping-or-forgetting-handles-and-guards-does)).
#[derive(Clone)]
pub struct Condition {
    inner: Synced,
}

impl Condition {
    /// A new condition, with its lock free, in its own shared segment.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the segment cannot be created or initialised.
    ///
    /// ```
    /// let cond = flotilla::shared::Condition::new()?;
    /// cond.lock().unwrap().notify_all(); // nobody waits: nothing happens
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn new() -> Result<Condition, Error> {
        let inner = Synced::create("condition", [0; WORDS])?;
        Ok(Condition { inner })
    }

    /// Takes the condition's lock, waiting as long as it takes (Python's `with cond:`).
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] (with the guard) if a holder died;
    /// [`LockError::WouldDeadlock`] if this thread holds the lock already.
    ///
    /// # Blocking
    ///
    /// Until the holder releases the lock (or waits) or dies.
    ///
    /// ```
    /// let cond = flotilla::shared::Condition::new()?;
    /// let guard = cond.lock().unwrap();
    /// assert!(cond.lock().is_err()); // held by this thread: an error, not a hang
    /// # drop(guard);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn lock(&self) -> Result<ConditionGuard<'_>, LockError<ConditionGuard<'_>>> {
        self.acquire(Wait::Block)
    }

    /// Takes the lock if it is free (Python's `cond.acquire(block=False)`).
    ///
    /// # Errors
    ///
    /// [`LockError::WouldBlock`] if it is held; otherwise as [`lock`](Condition::lock).
    ///
    /// ```
    /// let cond = flotilla::shared::Condition::new()?;
    /// let guard = cond.try_lock().unwrap();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| assert!(cond.try_lock().unwrap_err().is_busy()));
    /// });
    /// # drop(guard);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn try_lock(&self) -> Result<ConditionGuard<'_>, LockError<ConditionGuard<'_>>> {
        self.acquire(Wait::Try)
    }

    /// Takes the lock, waiting at most `timeout` (measured as for
    /// [`Lock::lock_timeout`](super::Lock::lock_timeout)).
    ///
    /// # Errors
    ///
    /// [`LockError::TimedOut`] if it stayed held; otherwise as [`lock`](Condition::lock).
    ///
    /// ```
    /// use std::time::Duration;
    /// let cond = flotilla::shared::Condition::new()?;
    /// assert!(cond.lock_timeout(Duration::from_millis(10)).is_ok());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ConditionGuard<'_>, LockError<ConditionGuard<'_>>> {
        self.acquire(Wait::For(timeout))
    }

    fn acquire(&self, wait: Wait) -> Result<ConditionGuard<'_>, LockError<ConditionGuard<'_>>> {
        let cond = &self.inner;
        report(cond.acquire(wait, Holder::User), |raw| ConditionGuard {
            cond,
            raw,
        })
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition").finish_non_exhaustive()
    }
}

/// Encodes the condition for a child process; only valid inside
/// [`Process::start`](flotilla_process::process::Process::start).
impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.inner.encode(serializer, Kind::Condition)
    }
}

/// Takes over a condition passed to this child process; fails anywhere else.
impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let inner = Synced::decode(deserializer, Kind::Condition)?;
        Ok(Condition { inner })
    }
}

/// A [`Condition`]'s lock, held; released when dropped. Waiting and notifying happen
/// through it, so they can only be done with the lock held, as Python requires.
///
/// Dropped by a panic's unwinding, it marks the lock inconsistent (the next holder gets
/// [`LockError::OwnerDied`]); forgotten, it keeps the lock held until this thread ends and the
/// memory mapped, as a [`LockGuard`](super::LockGuard) does.
///
/// Not `Send`: it must be released by the thread that took it.
///
/// ```compile_fail
/// fn is_send<T: Send>() {}
/// is_send::<flotilla::shared::ConditionGuard<'static>>();
/// ```
///
/// Dropping it straight away releases the lock straight away, so it is `#[must_use]`: a
/// statement that takes the lock and keeps nothing is warned about.
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let cond = flotilla::shared::Condition::new().unwrap();
/// cond.lock().unwrap(); // held for no time at all
/// ```
#[must_use = "dropping the guard releases the lock at once; bind it (`let guard = ...`) to hold the lock"]
pub struct ConditionGuard<'a> {
    cond: &'a Synced,
    raw: RawGuard<'a>,
}

impl ConditionGuard<'_> {
    /// Releases the lock, waits as long as it takes for a notify, and takes the lock back
    /// (Python's `cond.wait()`); `true`, or `false` inside [`LockError::OwnerDied`] when the wait
    /// ended because a holder died. [`wait_timeout`](ConditionGuard::wait_timeout) waits at most a
    /// given time.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] as for [`wait_timeout`](ConditionGuard::wait_timeout).
    ///
    /// # Blocking
    ///
    /// Until notified or a holder is found dead.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let cond = Arc::new(flotilla::shared::Condition::new()?);
    /// let mut guard = cond.lock().unwrap();
    /// let notifier = {
    ///     let cond = Arc::clone(&cond);
    ///     std::thread::spawn(move || cond.lock().unwrap().notify(1))
    /// };
    /// assert!(guard.wait().unwrap()); // the lock is free while this waits
    /// drop(guard);
    /// notifier.join().unwrap();
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn wait(&mut self) -> Result<bool, LockError<bool>> {
        self.wait_within(None)
    }

    /// Releases the lock, waits for a notify for at most `timeout`, and takes the
    /// lock back (Python's `cond.wait(timeout)`); whether it was notified (`false`: the time
    /// ran out). The timeout is measured on the monotonic clock.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] with that same answer if a holder of the lock has died and
    /// nobody has called [`mark_consistent`](ConditionGuard::mark_consistent) since; the lock
    /// is held again either way. A holder that dies *while* this thread waits ends the wait
    /// early as soon as the lock is taken over from it (by another thread or process, since
    /// whoever takes it over wakes every waiter), with `OwnerDied(false)` unless a notify came
    /// too: the dead holder may have changed the data without notifying, so look at it. A
    /// holder killed inside [`notify`](ConditionGuard::notify) has either woken this thread
    /// already or notified nobody.
    ///
    /// # Blocking
    ///
    /// Until notified, a holder found dead, or `timeout`; forever if none of these happens
    /// and `timeout` is `None`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cond = flotilla::shared::Condition::new()?;
    /// let mut guard = cond.lock().unwrap();
    /// assert!(!guard.wait_timeout(Duration::from_millis(10)).unwrap());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<bool, LockError<bool>> {
        self.wait_within(Some(timeout))
    }

    fn wait_within(&mut self, timeout: Option<Duration>) -> Result<bool, LockError<bool>> {
        let until = timeout.and_then(deadline_after);
        let cond = self.cond;
        let header = cond.locked().header();
        let inconsistent_before = header.died();
        cond.set_word(WAITING, cond.word(WAITING) + 1);
        let notified = loop {
            let timed_out = match cond.wait_reporting(&mut self.raw, until) {
                Waited::Woken | Waited::OwnerDied => false,
                Waited::TimedOut => true,
            };
            let waiting = cond.word(WAITING) - 1;
            let signals = cond.word(SIGNALS);
            if signals > 0 {
                cond.set_word(SIGNALS, signals - 1);
                cond.set_word(WAITING, waiting);
                break true;
            }
            // Whoever took the lock over from a dead holder woke every waiter (and marked the
            // lock inconsistent) so that they look at the data now.
            if timed_out || (header.died() && !inconsistent_before) {
                cond.set_word(WAITING, waiting);
                break false;
            }
        };
        if header.died() {
            Err(LockError::OwnerDied(notified))
        } else {
            Ok(notified)
        }
    }

    /// Waits as long as it takes until `ready()` is true, checking it with the lock held before
    /// each wait and after each wake-up (Python's `cond.wait_for(predicate)`); `true`, or
    /// `ready()`'s answer inside [`LockError::OwnerDied`].
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] if a wait reported a dead holder (see
    /// [`wait_timeout`](ConditionGuard::wait_timeout)); the lock is held again either way.
    ///
    /// # Blocking
    ///
    /// Until `ready()` holds after a notify.
    ///
    /// ```
    /// let cond = flotilla::shared::Condition::new()?;
    /// let mut guard = cond.lock().unwrap();
    /// assert!(guard.wait_for(|| true).unwrap()); // already true: no wait
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn wait_for(&mut self, ready: impl FnMut() -> bool) -> Result<bool, LockError<bool>> {
        self.wait_for_within(ready, None)
    }

    /// Waits until `ready()` is true, checking it with the lock held before each wait and
    /// after each wake-up, at most `timeout` in all (Python's `cond.wait_for(predicate,
    /// timeout)`); `ready()`'s last answer.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] with that answer if a wait reported a dead holder (see
    /// [`wait`](ConditionGuard::wait)); the lock is held again either way.
    ///
    /// # Blocking
    ///
    /// Until `ready()` holds after a notify, or `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cond = flotilla::shared::Condition::new()?;
    /// let mut guard = cond.lock().unwrap();
    /// assert!(guard.wait_for(|| true).unwrap()); // already true: no wait
    /// assert!(!guard.wait_for_timeout(|| false, Duration::from_millis(10)).unwrap());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn wait_for_timeout(
        &mut self,
        ready: impl FnMut() -> bool,
        timeout: Duration,
    ) -> Result<bool, LockError<bool>> {
        self.wait_for_within(ready, Some(timeout))
    }

    fn wait_for_within(
        &mut self,
        mut ready: impl FnMut() -> bool,
        timeout: Option<Duration>,
    ) -> Result<bool, LockError<bool>> {
        let until = timeout.and_then(deadline_after);
        let mut died = false;
        loop {
            if ready() {
                break;
            }
            let left = match until {
                None => None,
                Some(until) => match until.checked_duration_since(std::time::Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => break,
                },
            };
            if let Err(err) = self.wait_within(left) {
                died |= err.is_owner_died();
            }
        }
        let answer = ready();
        if died {
            Err(LockError::OwnerDied(answer))
        } else {
            Ok(answer)
        }
    }

    /// Wakes up to `n` of the threads waiting on this condition, in any process (Python's
    /// `cond.notify(n)`). Nothing happens if nobody waits; a notify is not remembered for
    /// later waiters.
    ///
    /// ```
    /// let cond = flotilla::shared::Condition::new()?;
    /// cond.lock().unwrap().notify(1);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn notify(&mut self, n: u64) {
        let cond = self.cond;
        let signals = cond.word(SIGNALS);
        let wanted = signals.saturating_add(n).min(cond.word(WAITING));
        if wanted > signals {
            cond.wake_all_then(|| cond.set_word(SIGNALS, wanted));
        }
    }

    /// Wakes every thread waiting on this condition (Python's `cond.notify_all()`).
    ///
    /// ```
    /// let cond = flotilla::shared::Condition::new()?;
    /// cond.lock().unwrap().notify_all();
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn notify_all(&mut self) {
        self.notify(u64::MAX);
    }

    /// Declares the protected data repaired after [`LockError::OwnerDied`]; later
    /// acquisitions and waits succeed normally again. Harmless when no holder died.
    ///
    /// ```
    /// let cond = flotilla::shared::Condition::new()?;
    /// cond.lock().unwrap().mark_consistent();
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn mark_consistent(&mut self) {
        self.raw.mark_consistent();
    }
}

impl fmt::Debug for ConditionGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionGuard").finish_non_exhaustive()
    }
}
