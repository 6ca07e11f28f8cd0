//! [`Barrier`]: parties in several processes (or threads) that wait for each other, built on
//! [`Synced`](super::sync) like the semaphores and the event.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::segment::Kind;
use super::sync::{SyncError, Synced, deadline_after};
use crate::Error;

// Barrier state words.
const PARTIES: usize = 0;
const ARRIVED: usize = 1;
const GENERATION: usize = 2;
const BROKEN: usize = 3;
/// The generation most recently ended by `reset` (plus one; 0 for none).
const RESET_OF: usize = 4;

/// Python's `multiprocessing.Barrier`: `parties` processes (or threads) wait until all of them
/// have arrived, then all go on.
///
/// If a waiter times out, the barrier breaks: every current and later waiter gets
/// [`SyncError::BrokenBarrier`] until [`reset`](Barrier::reset). A party that dies before it
/// calls `wait` never arrives, so pass timeouts when parties may die; one that dies waiting
/// stays counted, and the barrier trips once the others have arrived.
///
/// ```
/// use std::time::Duration;
/// use flotilla::shared::Barrier;
///
/// let barrier = Barrier::new(2)?;
/// let other = barrier.clone();
/// let t = std::thread::spawn(move || other.wait(Some(Duration::from_secs(10))).unwrap());
/// let mine = barrier.wait(Some(Duration::from_secs(10)))?;
/// let theirs = t.join().unwrap();
/// assert_eq!(mine + theirs, 1); // indexes 0 and 1, in arrival order
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Dropping a `Barrier` drops this handle only: the object lives on in its clones and in other
/// processes (see [what dropping does](super#what-dropping-or-forgetting-handles-and-guards-does)).
#[derive(Clone)]
pub struct Barrier {
    inner: Synced,
}

impl Barrier {
    /// A barrier for `parties` waiters (at least 1), in its own shared segment.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `parties` is 0; [`Error::Io`] if the segment cannot be
    /// created or initialised.
    ///
    /// ```
    /// let barrier = flotilla::shared::Barrier::new(3)?;
    /// assert_eq!(barrier.parties(), 3);
    /// assert!(flotilla::shared::Barrier::new(0).is_err());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn new(parties: u64) -> Result<Barrier, Error> {
        if parties == 0 {
            return Err(Error::InvalidConfig {
                reason: "a barrier needs at least one party".to_owned(),
            });
        }
        let inner = Synced::create("barrier", [parties, 0, 0, 0, 0, 0])?;
        Ok(Barrier { inner })
    }

    /// The number of parties the barrier waits for.
    ///
    /// ```
    /// assert_eq!(flotilla::shared::Barrier::new(4)?.parties(), 4);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn parties(&self) -> u64 {
        self.inner.word(PARTIES)
    }

    /// How many parties are waiting now.
    ///
    /// ```
    /// assert_eq!(flotilla::shared::Barrier::new(2)?.n_waiting(), 0);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn n_waiting(&self) -> u64 {
        let _guard = self.inner.lock(None);
        self.inner.word(ARRIVED)
    }

    /// Whether the barrier is broken.
    ///
    /// ```
    /// let barrier = flotilla::shared::Barrier::new(2)?;
    /// assert!(!barrier.is_broken());
    /// barrier.abort();
    /// assert!(barrier.is_broken());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_broken(&self) -> bool {
        let _guard = self.inner.lock(None);
        self.inner.word(BROKEN) != 0
    }

    /// Waits until all parties have called `wait`, at most `timeout` if given; returns this
    /// caller's arrival index, `0..parties`.
    ///
    /// # Errors
    ///
    /// [`SyncError::TimedOut`] if the time ran out (the barrier is then broken);
    /// [`SyncError::BrokenBarrier`] if it is or becomes broken, or is reset, while waiting.
    ///
    /// # Blocking
    ///
    /// With `None`, until every party arrives; forever if one never does.
    ///
    /// ```
    /// use std::time::Duration;
    /// let barrier = flotilla::shared::Barrier::new(1)?;
    /// assert_eq!(barrier.wait(None)?, 0);
    /// let pair = flotilla::shared::Barrier::new(2)?;
    /// assert!(pair.wait(Some(Duration::from_millis(5))).is_err());
    /// assert!(pair.is_broken());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> Result<u64, SyncError> {
        let inner = &self.inner;
        let until = timeout.and_then(deadline_after);
        let Some(mut guard) = inner.lock(until) else {
            return Err(SyncError::TimedOut);
        };
        if inner.word(BROKEN) != 0 {
            return Err(SyncError::BrokenBarrier);
        }
        let generation = inner.word(GENERATION);
        let index = inner.word(ARRIVED);
        if index + 1 >= inner.word(PARTIES) {
            inner.wake_all_then(|| {
                inner.set_word(ARRIVED, 0);
                inner.set_word(GENERATION, generation.wrapping_add(1));
            });
            return Ok(index);
        }
        inner.set_word(ARRIVED, index + 1);
        loop {
            if inner.word(GENERATION) != generation {
                return if inner.word(RESET_OF) == generation.wrapping_add(1) {
                    Err(SyncError::BrokenBarrier)
                } else {
                    Ok(index)
                };
            }
            if inner.word(BROKEN) != 0 {
                return Err(SyncError::BrokenBarrier);
            }
            if !inner.wait(&mut guard, until) && inner.word(GENERATION) == generation {
                inner.wake_all_then(|| {
                    inner.set_word(BROKEN, 1);
                    inner.set_word(ARRIVED, inner.word(ARRIVED).saturating_sub(1));
                });
                return Err(SyncError::TimedOut);
            }
        }
    }

    /// Breaks the barrier: current and later waiters get [`SyncError::BrokenBarrier`] until
    /// [`reset`](Barrier::reset).
    ///
    /// ```
    /// let barrier = flotilla::shared::Barrier::new(2)?;
    /// barrier.abort();
    /// assert!(barrier.wait(None).is_err());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn abort(&self) {
        let _guard = self.inner.lock(None);
        self.inner.wake_all_then(|| self.inner.set_word(BROKEN, 1));
    }

    /// Returns the barrier to its empty, unbroken state; parties waiting now get
    /// [`SyncError::BrokenBarrier`].
    ///
    /// ```
    /// let barrier = flotilla::shared::Barrier::new(1)?;
    /// barrier.abort();
    /// barrier.reset();
    /// assert_eq!(barrier.wait(None)?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reset(&self) {
        let inner = &self.inner;
        let _guard = inner.lock(None);
        let generation = inner.word(GENERATION);
        inner.wake_all_then(|| {
            inner.set_word(RESET_OF, generation.wrapping_add(1));
            inner.set_word(GENERATION, generation.wrapping_add(1));
            inner.set_word(ARRIVED, 0);
            inner.set_word(BROKEN, 0);
        });
    }

    /// Test support: runs `f` while holding the barrier's *internal* mutex, so that a test
    /// can make a process die at exactly that point. Not part of the API.
    #[doc(hidden)]
    pub fn __with_internal_mutex_held<R>(&self, f: impl FnOnce() -> R) -> R {
        self.inner.holding(f)
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .finish_non_exhaustive()
    }
}

/// Encodes the barrier for a child process; only valid inside
/// [`Process::start`](crate::process::Process::start).
impl Serialize for Barrier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.inner.encode(serializer, Kind::Barrier)
    }
}

/// Takes over a barrier passed to this child process; fails anywhere else.
impl<'de> Deserialize<'de> for Barrier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let inner = Synced::decode(deserializer, Kind::Barrier)?;
        Ok(Barrier { inner })
    }
}
