//! Python's `Manager().Event()`, `Semaphore()`, `BoundedSemaphore()` and `Barrier()`.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::super::client::unexpected;
use super::super::handle::{Handle, Proxy, sealed};
use super::super::protocol::{Kind, Op, Reply};
use super::{Marker, proxy};
use flotilla_core::Error;

/// An event flag held by a manager: Python's `Manager().Event()`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let manager = flotilla::manager::Manager::new()?;
/// let ready = manager.event()?;
/// assert!(!ready.wait_timeout(Duration::from_millis(10))?);
/// ready.set()?;
/// ready.wait()?;
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Event {
    handle: Handle,
    _types: Marker<()>,
}

proxy!(Event, Event);

impl Event {
    /// Sets the flag, waking every waiter.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let e = manager.event()?;
    /// e.set()?;
    /// assert!(e.is_set()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn set(&self) -> Result<(), Error> {
        self.handle.done(Op::EventSet)
    }

    /// Clears the flag.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let e = manager.event()?;
    /// e.set()?;
    /// e.clear()?;
    /// assert!(!e.is_set()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn clear(&self) -> Result<(), Error> {
        self.handle.done(Op::EventClear)
    }

    /// Whether the flag is set.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert!(!manager.event()?.is_set()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_set(&self) -> Result<bool, Error> {
        self.handle.flag(Op::EventIsSet)
    }

    /// Waits as long as it takes for the event to be set.
    /// [`wait_timeout`](Event::wait_timeout) waits at most a given time.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Blocking
    ///
    /// Until some client sets the event.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let e = manager.event()?;
    /// e.set()?;
    /// e.wait()?; // set already: returns at once
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn wait(&self) -> Result<(), Error> {
        self.wait_within(None).map(drop)
    }

    /// Waits until the flag is set, for at most `timeout` (forever when `None`); returns
    /// whether it is set.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
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
    /// let e = manager.event()?;
    /// assert!(!e.wait_timeout(Duration::ZERO)?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        self.wait_within(Some(timeout))
    }

    fn wait_within(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        self.handle.flag(Op::EventWait { wait: timeout })
    }
}

/// A counting semaphore held by a manager: Python's `Manager().Semaphore(value)`.
///
/// Permits are counted per process: if a process dies (or drops every proxy of the manager)
/// holding permits it took, the server gives them back, so the others do not wait forever.
/// A release from a process that took nothing still adds a permit, as in Python.
///
/// # Examples
///
/// ```
/// let manager = flotilla::manager::Manager::new()?;
/// let slots = manager.semaphore(2)?;
/// slots.acquire()?;
/// assert_eq!(slots.value()?, 1);
/// slots.release()?;
/// assert_eq!(slots.value()?, 2);
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Semaphore {
    handle: Handle,
    _types: Marker<()>,
}

proxy!(Semaphore, Semaphore);

impl Semaphore {
    /// Takes a permit, waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Blocking
    ///
    /// While no permit is free.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let s = manager.semaphore(1)?;
    /// s.acquire()?;
    /// assert!(!s.try_acquire()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn acquire(&self) -> Result<(), Error> {
        self.handle.flag(Op::SemAcquire { wait: None }).map(drop)
    }

    /// Takes a permit if one is free now; returns whether it did.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let s = manager.semaphore(0)?;
    /// assert!(!s.try_acquire()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn try_acquire(&self) -> Result<bool, Error> {
        self.acquire_timeout(Duration::ZERO)
    }

    /// Takes a permit, waiting at most `timeout`; returns whether it did.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
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
    /// let s = manager.semaphore(0)?;
    /// assert!(!s.acquire_timeout(Duration::from_millis(10))?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        self.handle.flag(Op::SemAcquire {
            wait: Some(timeout),
        })
    }

    /// Gives a permit back, waking one waiter.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone; on a [`BoundedSemaphore`],
    /// [`Error::InvalidOperation`] if the value would exceed its initial value (Python's
    /// `ValueError`), and nothing is added.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let s = manager.semaphore(0)?;
    /// s.release()?;
    /// assert!(s.try_acquire()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn release(&self) -> Result<(), Error> {
        self.handle.done(Op::SemRelease)
    }

    /// The number of free permits now.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert_eq!(manager.semaphore(3)?.value()?, 3);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn value(&self) -> Result<u64, Error> {
        self.handle.size(Op::SemValue).map(|n| n as u64)
    }
}

/// A barrier for a fixed number of parties, held by a manager: Python's
/// `Manager().Barrier(parties)`.
///
/// The barrier breaks, for everyone waiting and everyone who comes later, when a waiter's
/// timeout expires, when [`abort`](Barrier::abort) is called, or when a waiting process dies;
/// waiters then get [`Error::BrokenBarrier`] instead of hanging.
///
/// # Examples
///
/// ```
/// let manager = flotilla::manager::Manager::new()?;
/// let alone = manager.barrier(1)?;
/// assert_eq!(alone.wait()?, 0);
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Barrier {
    handle: Handle,
    _types: Marker<()>,
}

proxy!(Barrier, Barrier);

impl Barrier {
    /// Waits as long as it takes until all parties have called `wait`; returns this caller's
    /// arrival index. [`wait_timeout`](Barrier::wait_timeout) waits at most a given time.
    ///
    /// # Errors
    ///
    /// [`Error::BrokenBarrier`] if the barrier is or becomes broken while waiting;
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Blocking
    ///
    /// Until every party arrives.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let b = manager.barrier(1)?;
    /// assert_eq!(b.wait()?, 0);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn wait(&self) -> Result<u64, Error> {
        self.wait_within(None)
    }

    /// Waits until all parties have called `wait`, for at most `timeout` (forever when
    /// `None`); returns this caller's arrival index (`0..parties`), as Python does.
    ///
    /// # Errors
    ///
    /// [`Error::BrokenBarrier`] if the barrier is or becomes broken; [`Error::Timeout`] if this
    /// caller's wait ran out (which breaks the barrier for the others);
    /// [`Error::Disconnected`] if the manager is gone.
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
    /// let b = manager.barrier(2)?;
    /// assert!(b.wait_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// assert!(b.is_broken()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u64, Error> {
        self.wait_within(Some(timeout))
    }

    fn wait_within(&self, timeout: Option<Duration>) -> Result<u64, Error> {
        match self.handle.op(Op::BarrierWait { wait: timeout })? {
            Reply::Index(index) => Ok(index),
            Reply::Broken => Err(Error::BrokenBarrier),
            Reply::TimedOut => Err(Error::Timeout {
                waited: timeout.unwrap_or_default(),
                unfinished: None,
            }),
            other => Err(unexpected(&other)),
        }
    }

    /// Breaks the barrier: current and future waiters get [`Error::BrokenBarrier`].
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let b = manager.barrier(3)?;
    /// b.abort()?;
    /// assert!(matches!(b.wait(), Err(flotilla::Error::BrokenBarrier)));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn abort(&self) -> Result<(), Error> {
        self.handle.done(Op::BarrierAbort)
    }

    /// Puts the barrier back in its initial state, unbroken, with nobody waiting: Python's
    /// `reset()`. Parties waiting now get [`Error::BrokenBarrier`]; later ones use it afresh.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let b = manager.barrier(1)?;
    /// b.abort()?;
    /// b.reset()?;
    /// assert!(!b.is_broken()?);
    /// assert_eq!(b.wait()?, 0);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn reset(&self) -> Result<(), Error> {
        self.handle.done(Op::BarrierReset)
    }

    fn state(&self) -> Result<(u64, u64, bool), Error> {
        match self.handle.op(Op::BarrierState)? {
            Reply::BarrierState {
                parties,
                waiting,
                broken,
            } => Ok((parties, waiting, broken)),
            other => Err(unexpected(&other)),
        }
    }

    /// The number of parties.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert_eq!(manager.barrier(4)?.parties()?, 4);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn parties(&self) -> Result<u64, Error> {
        Ok(self.state()?.0)
    }

    /// The number of parties waiting now: Python's `n_waiting`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert_eq!(manager.barrier(4)?.n_waiting()?, 0);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn n_waiting(&self) -> Result<u64, Error> {
        Ok(self.state()?.1)
    }

    /// Whether the barrier is broken.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert!(!manager.barrier(4)?.is_broken()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_broken(&self) -> Result<bool, Error> {
        Ok(self.state()?.2)
    }
}

/// A semaphore that refuses to be released above its initial value, held by a manager:
/// Python's `Manager().BoundedSemaphore(value)`.
///
/// It is a [`Semaphore`] (every method is the semaphore's, through `Deref`) whose server
/// refuses a [`release`](Semaphore::release) that would raise the value over the initial one,
/// with [`Error::InvalidOperation`] (Python's `ValueError`), counting nothing: a release
/// without a matching acquire is a bug this catches. Permits a dead process held come
/// back, and never push the value over the bound.
///
/// # Examples
///
/// ```
/// let manager = flotilla::manager::Manager::new()?;
/// let s = manager.bounded_semaphore(1)?;
/// s.acquire()?;
/// s.release()?;
/// assert!(matches!(s.release(), Err(flotilla::Error::InvalidOperation { .. })));
/// assert_eq!(s.value()?, 1);
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct BoundedSemaphore {
    semaphore: Semaphore,
}

impl std::ops::Deref for BoundedSemaphore {
    type Target = Semaphore;

    fn deref(&self) -> &Semaphore {
        &self.semaphore
    }
}

impl Clone for BoundedSemaphore {
    fn clone(&self) -> Self {
        BoundedSemaphore {
            semaphore: self.semaphore.clone(),
        }
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("address", self.semaphore.handle.client.address())
            .field("id", &self.semaphore.handle.id)
            .finish()
    }
}

impl Serialize for BoundedSemaphore {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.semaphore.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for BoundedSemaphore {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Semaphore::deserialize(deserializer).map(|semaphore| BoundedSemaphore { semaphore })
    }
}

impl sealed::Sealed for BoundedSemaphore {
    fn kind() -> Kind {
        Kind::BoundedSemaphore
    }
    fn handle(&self) -> &Handle {
        &self.semaphore.handle
    }
    fn from_handle(handle: Handle) -> Self {
        BoundedSemaphore {
            semaphore: <Semaphore as sealed::Sealed>::from_handle(handle),
        }
    }
}

impl Proxy for BoundedSemaphore {}
