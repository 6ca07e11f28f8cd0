//! [`Barrier`]: parties in several processes (or threads) that wait for each other, built on
//! [`Synced`](super::sync) like the semaphores and the event.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::segment::Kind;
use super::sync::{SyncError, Synced, deadline_after, passed_to_children};
use flotilla_core::Error;

// Barrier state words.
const PARTIES: usize = 0;
/// The current [`Round`], packed.
const ROUND: usize = 1;
/// The generation most recently ended by `reset`, plus one (0: none yet).
const RESET_OF: usize = 2;

/// The most parties a barrier may have: arrivals are counted in 32 bits.
const MAX_PARTIES: u64 = u32::MAX as u64;

/// Where a barrier stands: which generation is gathering, how many of it have arrived, and
/// whether the barrier is broken.
///
/// All three live in one state word, so that every change to them is a single store: a
/// process killed in the middle of a change leaves the round as it was or as it was to become,
/// never half of each. (Kept in separate words, a tripping party killed between emptying the
/// count and starting the next generation left everyone who had arrived waiting on for
/// parties that had already come.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Round {
    /// Kept to 31 bits, and wraps: a waiter only compares it with its own, so a wrap could
    /// fool only a waiter that slept through 2^31 generations.
    generation: u32,
    arrived: u32,
    broken: bool,
}

impl Round {
    /// The bits of `generation` that are kept.
    const GENERATIONS: u32 = u32::MAX >> 1;

    fn unpack(word: u64) -> Round {
        Round {
            // The low 32 bits: truncation is the point.
            arrived: word as u32,
            generation: (word >> 32) as u32 & Round::GENERATIONS,
            broken: word >> 63 != 0,
        }
    }

    fn pack(self) -> u64 {
        u64::from(self.arrived)
            | u64::from(self.generation & Round::GENERATIONS) << 32
            | u64::from(self.broken) << 63
    }

    /// The next generation, with nobody arrived, unbroken.
    fn next(self) -> Round {
        Round {
            generation: self.generation.wrapping_add(1) & Round::GENERATIONS,
            arrived: 0,
            broken: false,
        }
    }
}

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
/// let t = std::thread::spawn(move || other.wait_timeout(Duration::from_secs(10)).unwrap());
/// let mine = barrier.wait_timeout(Duration::from_secs(10))?;
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
    /// A barrier for `parties` waiters (from 1 to `u32::MAX`), in its own shared segment.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `parties` is 0 or above `u32::MAX`; [`Error::Io`] if the
    /// segment cannot be created or initialised.
    ///
    /// ```
    /// use flotilla::{Error, shared::Barrier};
    ///
    /// let barrier = Barrier::new(3)?;
    /// assert_eq!(barrier.parties(), 3);
    /// assert!(matches!(Barrier::new(0), Err(Error::InvalidConfig { .. })));
    /// assert!(matches!(Barrier::new(1 << 32), Err(Error::InvalidConfig { .. })));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn new(parties: u64) -> Result<Barrier, Error> {
        if parties == 0 || parties > MAX_PARTIES {
            return Err(Error::InvalidConfig {
                reason: format!("a barrier needs from 1 to {MAX_PARTIES} parties, not {parties}"),
            });
        }
        let inner = Synced::create("barrier", [parties, 0, 0, 0, 0, 0])?;
        Ok(Barrier { inner })
    }

    /// The round now; read it with the internal mutex held.
    fn round(&self) -> Round {
        Round::unpack(self.inner.word(ROUND))
    }

    /// Replaces the round, in one store; with the internal mutex held.
    fn set_round(&self, round: Round) {
        self.inner.set_word(ROUND, round.pack());
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
        u64::from(self.round().arrived)
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
        self.round().broken
    }

    /// Waits as long as it takes until all parties have called `wait`; returns this caller's
    /// arrival index, `0..parties`. [`wait_timeout`](Barrier::wait_timeout) waits at most a given
    /// time.
    ///
    /// # Errors
    ///
    /// [`SyncError::BrokenBarrier`] if it is or becomes broken, or is reset, while waiting.
    ///
    /// # Blocking
    ///
    /// Until every party arrives; forever if one never does.
    ///
    /// ```
    /// let barrier = flotilla::shared::Barrier::new(1)?;
    /// assert_eq!(barrier.wait()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait(&self) -> Result<u64, SyncError> {
        self.wait_within(None)
    }

    /// Waits until all parties have called `wait`, at most `timeout`; returns this
    /// caller's arrival index, `0..parties`.
    ///
    /// # Errors
    ///
    /// [`SyncError::TimedOut`] if the time ran out (the barrier is then broken);
    /// [`SyncError::BrokenBarrier`] if it is or becomes broken, or is reset, while waiting.
    ///
    /// # Blocking
    ///
    /// Until every party arrives, for at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let barrier = flotilla::shared::Barrier::new(1)?;
    /// assert_eq!(barrier.wait()?, 0);
    /// let pair = flotilla::shared::Barrier::new(2)?;
    /// assert!(pair.wait_timeout(Duration::from_millis(5)).is_err());
    /// assert!(pair.is_broken());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u64, SyncError> {
        self.wait_within(Some(timeout))
    }

    fn wait_within(&self, timeout: Option<Duration>) -> Result<u64, SyncError> {
        let inner = &self.inner;
        let until = timeout.and_then(deadline_after);
        let Some(mut guard) = inner.lock(until) else {
            return Err(SyncError::TimedOut);
        };
        let round = self.round();
        if round.broken {
            return Err(SyncError::BrokenBarrier);
        }
        let index = u64::from(round.arrived);
        if index + 1 >= self.parties() {
            inner.wake_all_then(|| self.set_round(round.next()));
            return Ok(index);
        }
        self.set_round(Round {
            arrived: round.arrived + 1,
            ..round
        });
        let mine = round.generation;
        loop {
            let now = self.round();
            if now.generation != mine {
                return if inner.word(RESET_OF) == u64::from(mine) + 1 {
                    Err(SyncError::BrokenBarrier)
                } else {
                    Ok(index)
                };
            }
            if now.broken {
                return Err(SyncError::BrokenBarrier);
            }
            if !inner.wait(&mut guard, until) {
                let now = self.round();
                if now.generation == mine {
                    inner.wake_all_then(|| {
                        self.set_round(Round {
                            arrived: now.arrived.saturating_sub(1),
                            broken: true,
                            ..now
                        })
                    });
                    return Err(SyncError::TimedOut);
                }
            }
        }
    }

    /// Breaks the barrier: current and later waiters get [`SyncError::BrokenBarrier`] until
    /// [`reset`](Barrier::reset).
    ///
    /// ```
    /// let barrier = flotilla::shared::Barrier::new(2)?;
    /// barrier.abort();
    /// assert!(barrier.wait().is_err());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn abort(&self) {
        let _guard = self.inner.lock(None);
        let round = self.round();
        self.inner.wake_all_then(|| {
            self.set_round(Round {
                broken: true,
                ..round
            })
        });
    }

    /// Returns the barrier to its empty, unbroken state; parties waiting now get
    /// [`SyncError::BrokenBarrier`].
    ///
    /// ```
    /// let barrier = flotilla::shared::Barrier::new(1)?;
    /// barrier.abort();
    /// barrier.reset();
    /// assert_eq!(barrier.wait()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reset(&self) {
        let inner = &self.inner;
        let _guard = inner.lock(None);
        let round = self.round();
        inner.wake_all_then(|| {
            // In this order, so that a process killed between two stores leaves the barrier
            // broken (as `abort` does, and as a reset appears to the parties waiting), never
            // with the reset recorded against a generation that then trips normally.
            self.set_round(Round {
                broken: true,
                ..round
            });
            inner.set_word(RESET_OF, u64::from(round.generation) + 1);
            self.set_round(round.next());
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

passed_to_children!(Barrier, "barrier");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_round_trip_through_their_word() {
        for round in [
            Round {
                generation: 0,
                arrived: 0,
                broken: false,
            },
            Round {
                generation: Round::GENERATIONS,
                arrived: u32::MAX,
                broken: true,
            },
            Round {
                generation: 12345,
                arrived: 7,
                broken: false,
            },
        ] {
            assert_eq!(Round::unpack(round.pack()), round);
        }
        // A fresh segment's zero word: generation 0, nobody arrived, unbroken.
        assert_eq!(
            Round::unpack(0),
            Round {
                generation: 0,
                arrived: 0,
                broken: false
            }
        );
    }

    #[test]
    fn the_next_round_is_empty_unbroken_and_wraps_its_generation() {
        let last = Round {
            generation: Round::GENERATIONS,
            arrived: 3,
            broken: true,
        };
        assert_eq!(
            last.next(),
            Round {
                generation: 0,
                arrived: 0,
                broken: false
            }
        );
        assert_eq!(Round::unpack(last.next().pack()), last.next());
    }
}
