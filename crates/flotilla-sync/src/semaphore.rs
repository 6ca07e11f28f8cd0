//! Python's `threading.Semaphore` and `threading.BoundedSemaphore`.
//!
//! Both wrap one counter, [`Permits`]; the bounded one gives it a ceiling. Locks come only from
//! `crate::primitives` so that a model-checking test can compile this file against shuttle.

use std::fmt;
use std::time::{Duration, Instant};

use crate::primitives::{Condvar, Mutex, lock, wait_until};

/// The error of [`BoundedSemaphore::release`]: it was released more times than it was
/// acquired, which would raise its count above its initial value. Python raises
/// `ValueError('Semaphore released too many times')` here.
///
/// # Examples
///
/// ```
/// use flotilla::sync::{BoundedSemaphore, OverRelease};
///
/// let sem = BoundedSemaphore::new(1);
/// assert_eq!(sem.release(), Err(OverRelease));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("the semaphore was released more times than it was acquired")]
pub struct OverRelease;

/// The permit counter shared by both semaphore types.
struct Permits {
    state: Mutex<State>,
    available: Condvar,
    /// The ceiling of a bounded semaphore; `usize::MAX` for a plain one.
    limit: usize,
}

struct State {
    permits: usize,
    /// Threads blocked in `acquire`; `release` only pays for a wake-up when this is non-zero.
    waiters: usize,
}

impl Permits {
    fn new(permits: usize, limit: usize) -> Permits {
        Permits {
            state: Mutex::new(State {
                permits,
                waiters: 0,
            }),
            available: Condvar::new(),
            limit,
        }
    }

    /// Takes a permit, waiting until `deadline` (`Some(None)`: forever; `None`: not at all).
    fn acquire(&self, deadline: Option<Option<Instant>>) -> bool {
        let mut state = lock(&self.state);
        while state.permits == 0 {
            let Some(deadline) = deadline else {
                return false;
            };
            state.waiters += 1;
            let (guard, expired) = wait_until(&self.available, state, deadline);
            state = guard;
            state.waiters -= 1;
            // A woken thread takes a free permit even if its deadline has just passed, so the
            // wake-up `release` paid for is never wasted.
            if expired && state.permits == 0 {
                return false;
            }
        }
        state.permits -= 1;
        true
    }

    /// Adds `n` permits and wakes up to `n` waiters; adds nothing if that would pass the limit.
    fn release(&self, n: usize) -> Result<(), OverRelease> {
        let mut state = lock(&self.state);
        match state.permits.checked_add(n) {
            Some(permits) if permits <= self.limit => state.permits = permits,
            _ => return Err(OverRelease),
        }
        // Each `notify_one` wakes a different thread: none can re-wait while we hold the lock.
        for _ in 0..n.min(state.waiters) {
            self.available.notify_one();
        }
        Ok(())
    }

    fn available(&self) -> usize {
        lock(&self.state).permits
    }
}

fn deadline_after(timeout: Duration) -> Option<Option<Instant>> {
    // A timeout too large to represent waits forever.
    Some(Instant::now().checked_add(timeout))
}

/// A counter of permits that threads take and give back: Python's `threading.Semaphore`.
///
/// Use it to cap how many threads do something at once (open connections, jobs in memory...).
/// [`acquire`](Semaphore::acquire) takes a permit, waiting while there is none, and returns a
/// [`SemaphoreGuard`] that gives the permit back when dropped, as Python's `with sem:` does.
/// For Python-style manual use, [`forget`](SemaphoreGuard::forget) the guard and call
/// [`release`](Semaphore::release) later, from any thread.
///
/// A plain semaphore can be released any number of times, raising its count above the initial
/// value; [`BoundedSemaphore`] refuses that, and is what you usually want for a resource cap.
/// Waiters are not served in a guaranteed order (as in Python). For async code, use
/// `tokio::sync::Semaphore` instead: this one blocks the thread.
///
/// # Examples
///
/// ```
/// use flotilla::sync::Semaphore;
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::thread;
///
/// let sem = Arc::new(Semaphore::new(2));
/// let inside = Arc::new(AtomicUsize::new(0));
/// let threads: Vec<_> = (0..8)
///     .map(|_| {
///         let (sem, inside) = (Arc::clone(&sem), Arc::clone(&inside));
///         thread::spawn(move || {
///             let _permit = sem.acquire();
///             let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
///             assert!(now <= 2, "at most two threads hold a permit");
///             inside.fetch_sub(1, Ordering::SeqCst);
///         })
///     })
///     .collect();
/// for t in threads {
///     t.join().unwrap();
/// }
/// assert_eq!(sem.available_permits(), 2);
/// ```
pub struct Semaphore {
    permits: Permits,
}

impl Semaphore {
    /// Creates a semaphore holding `permits` permits. Zero is allowed: then every
    /// [`acquire`](Semaphore::acquire) waits for a [`release`](Semaphore::release).
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Semaphore;
    ///
    /// let sem = Semaphore::new(3);
    /// assert_eq!(sem.available_permits(), 3);
    /// ```
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            permits: Permits::new(permits, usize::MAX),
        }
    }

    /// Takes a permit, waiting as long as it takes for one.
    ///
    /// # Blocking
    ///
    /// Blocks while no permit is available, until a guard is dropped or
    /// [`release`](Semaphore::release) is called.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Semaphore;
    ///
    /// let sem = Semaphore::new(1);
    /// {
    ///     let _permit = sem.acquire();
    ///     assert_eq!(sem.available_permits(), 0);
    /// } // the guard gives the permit back here
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn acquire(&self) -> SemaphoreGuard<'_> {
        self.permits.acquire(Some(None));
        SemaphoreGuard {
            permits: &self.permits,
        }
    }

    /// Takes a permit if one is available right now (Python's `acquire(blocking=False)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Semaphore;
    ///
    /// let sem = Semaphore::new(1);
    /// let first = sem.try_acquire();
    /// assert!(first.is_some());
    /// assert!(sem.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        self.permits.acquire(None).then(|| SemaphoreGuard {
            permits: &self.permits,
        })
    }

    /// Takes a permit, waiting at most `timeout` for one (Python's `acquire(timeout=...)`).
    ///
    /// Returns `None` if no permit became available in time.
    ///
    /// # Blocking
    ///
    /// Blocks for at most `timeout` while no permit is available.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Semaphore;
    /// use std::time::Duration;
    ///
    /// let sem = Semaphore::new(1);
    /// let _held = sem.acquire();
    /// assert!(sem.acquire_timeout(Duration::from_millis(10)).is_none());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
        self.permits
            .acquire(deadline_after(timeout))
            .then(|| SemaphoreGuard {
                permits: &self.permits,
            })
    }

    /// Adds a permit, waking one waiting thread if there is one.
    ///
    /// This is Python's `release()`, for permits taken with a guard that was
    /// [`forget`](SemaphoreGuard::forget)-ten, or to raise the count: a plain semaphore does not
    /// check that the permit was ever taken.
    ///
    /// # Panics
    ///
    /// If the count would exceed `usize::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Semaphore;
    ///
    /// let sem = Semaphore::new(0);
    /// sem.release();
    /// sem.release();
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn release(&self) {
        self.release_n(1);
    }

    /// Adds `n` permits at once, waking up to `n` waiting threads: Python's `release(n)`.
    ///
    /// `release_n(0)` does nothing (Python raises `ValueError` for `n < 1`; a `usize` cannot be
    /// negative, and releasing nothing is harmless).
    ///
    /// # Panics
    ///
    /// If the count would exceed `usize::MAX`; then nothing is added.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Semaphore;
    /// use std::sync::Arc;
    /// use std::thread;
    ///
    /// let sem = Arc::new(Semaphore::new(0));
    /// let waiters: Vec<_> = (0..3)
    ///     .map(|_| {
    ///         let sem = Arc::clone(&sem);
    ///         thread::spawn(move || sem.acquire().forget())
    ///     })
    ///     .collect();
    /// sem.release_n(3); // lets all three through
    /// for w in waiters {
    ///     w.join().unwrap();
    /// }
    /// assert_eq!(sem.available_permits(), 0);
    /// ```
    pub fn release_n(&self, n: usize) {
        if self.permits.release(n).is_err() {
            panic!("Semaphore::release: the permit count overflowed usize");
        }
    }

    /// The number of permits available right now.
    ///
    /// Other threads may change it at any moment, so treat it as a hint.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Semaphore;
    ///
    /// let sem = Semaphore::new(2);
    /// let _a = sem.acquire();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.permits.available()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available_permits", &self.available_permits())
            .finish()
    }
}

/// A semaphore that cannot be released above its initial count: Python's
/// `threading.BoundedSemaphore`.
///
/// The same API as [`Semaphore`], except that [`release`](BoundedSemaphore::release) fails
/// with [`OverRelease`] when every permit is already in. That turns a release without a
/// matching acquire, a classic bug, into an error instead of a silently larger cap. The guards
/// are the same [`SemaphoreGuard`] type.
///
/// # Examples
///
/// ```
/// use flotilla::sync::{BoundedSemaphore, OverRelease};
///
/// let sem = BoundedSemaphore::new(2);
/// sem.acquire().forget(); // Python style: keep the permit, give it back by hand
/// assert_eq!(sem.available_permits(), 1);
/// assert_eq!(sem.release(), Ok(()));
/// assert_eq!(sem.release(), Err(OverRelease));
/// assert_eq!(sem.available_permits(), 2);
/// ```
pub struct BoundedSemaphore {
    permits: Permits,
}

impl BoundedSemaphore {
    /// Creates a semaphore holding `permits` permits, which is also the most it can ever hold.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::BoundedSemaphore;
    ///
    /// let sem = BoundedSemaphore::new(4);
    /// assert_eq!(sem.available_permits(), 4);
    /// ```
    pub fn new(permits: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            permits: Permits::new(permits, permits),
        }
    }

    /// Takes a permit, waiting as long as it takes for one.
    ///
    /// # Blocking
    ///
    /// Blocks while no permit is available, until a guard is dropped or
    /// [`release`](BoundedSemaphore::release) is called.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::BoundedSemaphore;
    ///
    /// let sem = BoundedSemaphore::new(1);
    /// let permit = sem.acquire();
    /// assert_eq!(sem.available_permits(), 0);
    /// drop(permit);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn acquire(&self) -> BoundedSemaphoreGuard<'_> {
        self.permits.acquire(Some(None));
        SemaphoreGuard {
            permits: &self.permits,
        }
    }

    /// Takes a permit if one is available right now (Python's `acquire(blocking=False)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::BoundedSemaphore;
    ///
    /// let sem = BoundedSemaphore::new(1);
    /// let _first = sem.try_acquire().expect("one permit is free");
    /// assert!(sem.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<BoundedSemaphoreGuard<'_>> {
        self.permits.acquire(None).then(|| SemaphoreGuard {
            permits: &self.permits,
        })
    }

    /// Takes a permit, waiting at most `timeout` for one (Python's `acquire(timeout=...)`).
    ///
    /// Returns `None` if no permit became available in time.
    ///
    /// # Blocking
    ///
    /// Blocks for at most `timeout` while no permit is available.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::BoundedSemaphore;
    /// use std::time::Duration;
    ///
    /// let sem = BoundedSemaphore::new(1);
    /// let held = sem.acquire_timeout(Duration::from_millis(10));
    /// assert!(held.is_some());
    /// assert!(sem.acquire_timeout(Duration::from_millis(10)).is_none());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<BoundedSemaphoreGuard<'_>> {
        self.permits
            .acquire(deadline_after(timeout))
            .then(|| SemaphoreGuard {
                permits: &self.permits,
            })
    }

    /// Gives a permit back, waking one waiting thread if there is one.
    ///
    /// # Errors
    ///
    /// [`OverRelease`] if every permit is already in (the count equals its initial value);
    /// the count is left unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::BoundedSemaphore;
    ///
    /// let sem = BoundedSemaphore::new(1);
    /// sem.acquire().forget();
    /// sem.release()?;
    /// assert!(sem.release().is_err());
    /// # Ok::<(), flotilla::sync::OverRelease>(())
    /// ```
    pub fn release(&self) -> Result<(), OverRelease> {
        self.permits.release(1)
    }

    /// Gives `n` permits back at once, waking up to `n` waiting threads: Python's
    /// `release(n)`.
    ///
    /// All or nothing, as in Python: if adding `n` would raise the count above the initial
    /// value, nothing is added. `release_n(0)` does nothing.
    ///
    /// # Errors
    ///
    /// [`OverRelease`] if the count plus `n` would exceed the initial count; the count is left
    /// unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::{BoundedSemaphore, OverRelease};
    ///
    /// let sem = BoundedSemaphore::new(3);
    /// sem.acquire().forget();
    /// sem.acquire().forget();
    /// assert_eq!(sem.release_n(3), Err(OverRelease)); // only two are out
    /// assert_eq!(sem.available_permits(), 1);
    /// assert_eq!(sem.release_n(2), Ok(()));
    /// assert_eq!(sem.available_permits(), 3);
    /// ```
    pub fn release_n(&self, n: usize) -> Result<(), OverRelease> {
        self.permits.release(n)
    }

    /// The number of permits available right now.
    ///
    /// Other threads may change it at any moment, so treat it as a hint.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::BoundedSemaphore;
    ///
    /// let sem = BoundedSemaphore::new(3);
    /// let _a = sem.acquire();
    /// let _b = sem.acquire();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.permits.available()
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("available_permits", &self.available_permits())
            .field("max_permits", &self.permits.limit)
            .finish()
    }
}

/// A permit taken from a [`Semaphore`] or a [`BoundedSemaphore`]; dropping it gives the
/// permit back.
///
/// This is the `with sem:` block of Python. To keep the permit and release it by hand later
/// (Python's bare `acquire()`/`release()` pairs, possibly on different threads), call
/// [`forget`](SemaphoreGuard::forget).
///
/// If a [`BoundedSemaphore`] was already released by hand up to its initial count while this
/// guard was alive, dropping the guard adds nothing (a drop cannot report [`OverRelease`]).
///
/// # Examples
///
/// ```
/// use flotilla::sync::Semaphore;
///
/// let sem = Semaphore::new(1);
/// let guard = sem.acquire();
/// assert_eq!(sem.available_permits(), 0);
/// drop(guard);
/// assert_eq!(sem.available_permits(), 1);
/// ```
#[must_use = "dropping the guard gives the permit back at once"]
pub struct SemaphoreGuard<'a> {
    permits: &'a Permits,
}

/// The guard of a [`BoundedSemaphore`]: the same type as [`SemaphoreGuard`].
///
/// # Examples
///
/// ```
/// use flotilla::sync::{BoundedSemaphore, BoundedSemaphoreGuard};
///
/// let sem = BoundedSemaphore::new(1);
/// let guard: BoundedSemaphoreGuard<'_> = sem.acquire();
/// drop(guard);
/// assert_eq!(sem.available_permits(), 1);
/// ```
pub type BoundedSemaphoreGuard<'a> = SemaphoreGuard<'a>;

impl SemaphoreGuard<'_> {
    /// Keeps the permit taken: the semaphore's count stays one lower until someone calls
    /// `release`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::sync::Semaphore;
    ///
    /// let sem = Semaphore::new(1);
    /// sem.acquire().forget();
    /// assert_eq!(sem.available_permits(), 0);
    /// sem.release();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        // Only fails at the ceiling, where giving the permit back has nothing left to do.
        let _ = self.permits.release(1);
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard").finish_non_exhaustive()
    }
}
