//! [`Semaphore`], [`BoundedSemaphore`] and [`Event`], and the core they share with
//! [`Barrier`](super::Barrier): process-shared synchronisation built on the same sealed
//! segment and robust mutex as [`Lock`](super::Lock), plus a futex word in the same mapping
//! that waiters sleep on (see [`futex`](super::futex) for why not a `pthread_cond_t`).
//!
//! # Dead processes
//!
//! The state of each primitive (a counter, a flag, a barrier's round) is only changed under
//! the segment's robust mutex, and every change is a single store (a barrier's `reset` makes
//! three, in an order where any prefix leaves the barrier broken), so it is never half-updated
//! by a process killed in the middle. If a process dies holding that internal mutex, the next
//! process to take it gets `EOWNERDEAD`: it marks the mutex consistent, wakes every waiter
//! (the dead holder may have changed the state and died before waking anyone) and carries
//! on, silently (there is nothing to repair). Nobody hangs.
//!
//! A process that dies *waiting* leaves nothing behind: it was asleep in the kernel's futex
//! queue, which forgets it, and no later wake-up waits for it to leave.
//!
//! A process that dies *waking* others leaves nobody asleep through its change: it wakes
//! every waiter before it changes the state (`wake_all_then`), so that either it died before
//! changing anything, or every waiter is already awake and waiting for the mutex, which the
//! kernel hands on as abandoned.
//!
//! What a dead process *cannot* give back is what it owned at the level of the primitive: a
//! permit it had acquired from a semaphore stays taken, and a party that died before it
//! called [`Barrier::wait`](super::Barrier::wait) never arrives (one that died waiting stays
//! counted). That is why every wait has a timed form.
//!
//! Every wake-up wakes every waiter, never just one, so a waiter killed after being woken
//! cannot swallow a wake-up meant for a live one; every waiter re-checks the state.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::futex;
use super::lock::{Acquired, Header, Holder, LockError, Locked, RawGuard, Wait};
use super::segment::{self, Kind, Segment};
use flotilla_core::Error;

/// `Serialize` and `Deserialize` for a handle whose only field is `inner: Synced`: it is
/// encoded for a child process (only valid inside
/// [`Process::start`](flotilla_process::process::Process::start)) and taken over there (failing
/// anywhere else), under the segment kind of its own name.
macro_rules! passed_to_children {
    ($ty:ident, $noun:literal) => {
        #[doc = concat!("Encodes the ", $noun, " for a child process; only valid inside")]
        /// [`Process::start`](flotilla_process::process::Process::start).
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.inner.encode(serializer, Kind::$ty)
            }
        }

        #[doc = concat!("Takes over the ", $noun, " passed to this child process; fails anywhere else.")]
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let inner = Synced::decode(deserializer, Kind::$ty)?;
                Ok($ty { inner })
            }
        }
    };
}
pub(crate) use passed_to_children;

/// Number of state words after the futex words.
pub(super) const WORDS: usize = 6;

/// The start of every synchronisation segment.
#[repr(C)]
struct SyncHeader {
    /// Must come first: [`Locked`] finds it at the segment's base.
    lock: Header,
    /// The futex word waiters sleep on: bumped (with the mutex held) by every wake-up.
    wakeups: AtomicU32,
    /// How many threads may be asleep on `wakeups`, so that a wake-up with nobody to wake
    /// makes no system call. Changed with the mutex held. A waiter that died asleep stays
    /// counted, which costs later wake-ups a system call each, nothing more.
    sleepers: AtomicU32,
    /// The primitive's state; read and written only with the mutex held (so `Relaxed` is
    /// enough: the mutex orders them).
    state: [AtomicU64; WORDS],
}

/// Why a shared synchronisation operation failed.
///
/// ```
/// use flotilla::shared::{BoundedSemaphore, SyncError};
/// let err = BoundedSemaphore::new(0)?.release().unwrap_err();
/// assert!(matches!(err, SyncError::OverReleased { limit: 0 }));
/// assert!(err.to_string().contains("released too many times"));
/// # Ok::<(), flotilla::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// [`BoundedSemaphore::release`] would raise the count above its initial value.
    #[error("the bounded semaphore was released too many times (its limit is {limit})")]
    OverReleased {
        /// The initial (and largest) count.
        limit: u64,
    },
    /// The barrier is broken: a waiter timed out or it was
    /// [`reset`](super::Barrier::reset) while this caller waited.
    #[error("the barrier is broken")]
    BrokenBarrier,
    /// [`Barrier::wait`](super::Barrier::wait) ran out of time; the barrier is now broken.
    #[error("timed out waiting at the barrier; the barrier is now broken")]
    TimedOut,
}

/// A segment starting with a [`SyncHeader`]; clones share the mapping.
#[derive(Debug, Clone)]
pub(super) struct Synced(Locked);

/// How a wait ended.
pub(super) enum Waited {
    /// Woken by a wake-up (or spuriously).
    Woken,
    /// The deadline passed.
    TimedOut,
    /// Woken, and the mutex was found abandoned by a dead holder (now recorded and usable).
    OwnerDied,
}

/// The length of a synchronisation segment.
const LEN: usize = size_of::<SyncHeader>();

/// A deadline `timeout` from now; `None` (wait forever) if it is too far to represent.
pub(super) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

impl Synced {
    /// A fresh segment with an initialised mutex, no sleepers, and state `init`.
    pub(super) fn create(what: &str, init: [u64; WORDS]) -> Result<Synced, Error> {
        let segment = Segment::create(LEN).map_err(|err| segment::io_error(what, err))?;
        let base = segment.base().as_ptr().cast::<SyncHeader>();
        // SAFETY: the segment is fresh and not yet shared, page-aligned and `LEN` bytes long,
        // so `base` is valid and aligned for a `SyncHeader` and nobody else can see the state
        // while it is written. (The futex words are already zero, as memfd pages start.)
        unsafe { std::ptr::addr_of_mut!((*base).state).write(init.map(AtomicU64::new)) };
        let locked = Locked::init(segment).map_err(|err| segment::io_error(what, err))?;
        Ok(Synced(locked))
    }

    fn header(&self) -> &SyncHeader {
        // SAFETY: the segment is `LEN` bytes, page-aligned, and begins with a `SyncHeader`
        // initialised (by `create`, in the creating process) before it was shared; it stays
        // mapped as long as `self`. Every field is interior-mutable (the mutex in an
        // `UnsafeCell` used only through pthread calls, the rest atomic), so a shared
        // reference stays valid while other processes use them.
        unsafe { self.0.segment().base().cast::<SyncHeader>().as_ref() }
    }

    pub(super) fn word(&self, i: usize) -> u64 {
        self.header().state[i].load(Ordering::Relaxed)
    }

    pub(super) fn set_word(&self, i: usize, value: u64) {
        self.header().state[i].store(value, Ordering::Relaxed);
    }

    /// Takes the mutex as `wait` says. Whoever takes it over from a dead holder wakes every
    /// waiter, since that holder may have changed the state and died before waking them.
    pub(super) fn acquire(&self, wait: Wait, holder: Holder) -> Result<Acquired<'_>, LockError> {
        let acquired = self.0.acquire(wait, holder)?;
        if acquired.took_over {
            self.wake_all();
        }
        Ok(acquired)
    }

    /// Takes the internal mutex, by `until` if given; `None` if that passed first. A dead
    /// previous holder is recovered from silently (see the module docs).
    pub(super) fn lock(&self, until: Option<Instant>) -> Option<RawGuard<'_>> {
        let wait = match until {
            None => Wait::Block,
            Some(until) => Wait::For(until.saturating_duration_since(Instant::now())),
        };
        match self.acquire(wait, Holder::Internal) {
            Ok(Acquired {
                guard,
                inconsistent,
                ..
            }) => {
                if inconsistent {
                    guard.mark_consistent();
                }
                Some(guard)
            }
            Err(LockError::TimedOut | LockError::WouldBlock) => None,
            Err(LockError::WouldDeadlock) => {
                panic!("flotilla::shared: internal mutex taken twice by one thread")
            }
            Err(LockError::Os(err)) => panic!("flotilla::shared: internal mutex failed: {err}"),
            Err(LockError::OwnerDied(())) => unreachable!("acquire reports deaths in Ok"),
            Err(LockError::TooManyHeld) => unreachable!("internal acquisitions are not counted"),
        }
    }

    /// Runs `f` with the internal mutex held (the test hooks' body).
    pub(super) fn holding<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.lock(None);
        f()
    }

    /// Waits for a wake-up, until `until` if given, with the mutex held by `held`.
    /// `false` if the deadline has passed (the mutex is held again either way). A holder found
    /// dead on the way back is recovered from silently (see the module docs).
    pub(super) fn wait(&self, held: &mut RawGuard<'_>, until: Option<Instant>) -> bool {
        match self.wait_reporting(held, until) {
            Waited::Woken => true,
            Waited::TimedOut => false,
            Waited::OwnerDied => {
                held.mark_consistent();
                true
            }
        }
    }

    /// Waits for a wake-up, until `until` if given, with the mutex held by `held`, and says
    /// how the wait ended; the mutex is held again in every case.
    pub(super) fn wait_reporting(&self, held: &mut RawGuard<'_>, until: Option<Instant>) -> Waited {
        if until.is_some_and(|until| until <= Instant::now()) {
            return Waited::TimedOut;
        }
        let header = self.header();
        // Read with the mutex held: a wake-up after the mutex is released below bumps the
        // word first, so the futex sees the change and does not sleep.
        let seen = header.wakeups.load(Ordering::Relaxed);
        header.sleepers.fetch_add(1, Ordering::Relaxed);
        let took_over = held.unlocked(|| futex::wait(&header.wakeups, seen, until));
        header.sleepers.fetch_sub(1, Ordering::Relaxed);
        if took_over {
            self.wake_all();
            Waited::OwnerDied
        } else if until.is_some_and(|until| until <= Instant::now()) {
            Waited::TimedOut
        } else {
            Waited::Woken
        }
    }

    /// The mutex, for callers that report a dead holder instead of recovering silently.
    pub(super) fn locked(&self) -> &Locked {
        &self.0
    }

    /// Wakes every waiter, then runs `change`, which changes the state they wait on; they
    /// re-check it once they have the mutex again. Call it with the mutex held.
    ///
    /// The wake-up comes first so that a waker killed at any point leaves no waiter asleep
    /// through its change: killed before the wake-up, it has changed nothing, and the waiters
    /// rightly sleep on; killed after, every waiter is awake and queued on the robust mutex
    /// the dead waker holds (or about to queue: its futex word moved), and the kernel hands
    /// that mutex to one of them as abandoned, so they all re-check the state. (Woken after
    /// the change, a waker killed between the two left them asleep with the change made,
    /// until some other process happened to take the mutex.)
    pub(super) fn wake_all_then(&self, change: impl FnOnce()) {
        self.wake_all();
        change();
    }

    /// Wakes every waiter; they re-check the state. Call it with the mutex held.
    fn wake_all(&self) {
        let header = self.header();
        header.wakeups.fetch_add(1, Ordering::Relaxed);
        if header.sleepers.load(Ordering::Relaxed) > 0 {
            futex::wake_all(&header.wakeups);
        }
    }

    /// Waits until `ready` returns `Some` (checked with the mutex held) or `timeout` passes;
    /// then `ready`'s answer, or `None`.
    fn until<R>(
        &self,
        timeout: Option<Duration>,
        mut ready: impl FnMut(&Synced) -> Option<R>,
    ) -> Option<R> {
        let until = timeout.and_then(deadline_after);
        let mut guard = self.lock(until)?;
        loop {
            if let Some(done) = ready(self) {
                return Some(done);
            }
            if !self.wait(&mut guard, until) {
                return ready(self);
            }
        }
    }

    pub(super) fn encode<S: Serializer>(
        &self,
        serializer: S,
        kind: Kind,
    ) -> Result<S::Ok, S::Error> {
        segment::encode(serializer, self.0.segment(), kind, 0, (0, 1))
    }

    pub(super) fn decode<'de, D: Deserializer<'de>>(
        deserializer: D,
        kind: Kind,
    ) -> Result<Synced, D::Error> {
        let adopted = segment::decode(deserializer, kind, (0, 1))?;
        let segment =
            Segment::open(adopted.fd, LEN).map_err(flotilla_process::wire::refusal::decoding)?;
        Ok(Synced(Locked::adopt(segment)))
    }
}

// Semaphore state words.
const COUNT: usize = 0;
const LIMIT: usize = 1;

/// The shared core of both semaphores.
fn sem_acquire(inner: &Synced, timeout: Option<Duration>) -> bool {
    inner
        .until(timeout, |s| {
            let count = s.word(COUNT);
            if count == 0 {
                return None;
            }
            s.set_word(COUNT, count - 1);
            Some(())
        })
        .is_some()
}

fn sem_try_acquire(inner: &Synced) -> bool {
    let Some(_guard) = inner.lock(None) else {
        return false;
    };
    let count = inner.word(COUNT);
    if count == 0 {
        return false;
    }
    inner.set_word(COUNT, count - 1);
    true
}

fn sem_release(inner: &Synced) -> Result<(), SyncError> {
    let guard = inner.lock(None);
    let count = inner.word(COUNT);
    let limit = inner.word(LIMIT);
    if count >= limit {
        return Err(SyncError::OverReleased { limit });
    }
    inner.wake_all_then(|| inner.set_word(COUNT, count + 1));
    drop(guard);
    Ok(())
}

fn sem_value(inner: &Synced) -> u64 {
    let _guard = inner.lock(None);
    inner.word(COUNT)
}

/// Python's `multiprocessing.Semaphore`: a counter of permits shared between processes.
///
/// [`acquire`](Semaphore::acquire) takes a permit, waiting while there are none;
/// [`release`](Semaphore::release) gives one back (or adds one: an unbounded semaphore may be
/// released more often than it was acquired). Clone it for other threads; pass it to a child
/// as an argument of [`Process::start`](flotilla_process::process::Process::start).
///
/// A permit held by a process that dies is lost (as in Python). A process that dies *inside*
/// a semaphore operation, holding the internal mutex, never blocks the others: the next
/// process to take that mutex finds its owner dead, marks it consistent and goes on (the
/// state is a single counter, changed by single stores, so there is nothing to repair).
///
/// # Panics
///
/// The operations panic only if a pthread call fails in a way that means the shared memory is
/// corrupt.
///
/// ```
/// use flotilla::shared::Semaphore;
///
/// let sem = Semaphore::new(2)?;
/// sem.acquire();
/// assert!(sem.try_acquire());
/// assert!(!sem.try_acquire());
/// sem.release();
/// assert_eq!(sem.get_value(), 1);
/// # Ok::<(), flotilla::Error>(())
/// ```
///
/// Dropping a `Semaphore` drops this handle only: the object lives on in its clones and in other
/// processes (see [what dropping does](super#what-dropping-or-forgetting-handles-and-guards-does)).
#[derive(Clone)]
pub struct Semaphore {
    inner: Synced,
}

impl Semaphore {
    /// A semaphore with `permits` permits, in its own shared segment.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the segment cannot be created or initialised.
    ///
    /// ```
    /// let sem = flotilla::shared::Semaphore::new(3)?;
    /// assert_eq!(sem.get_value(), 3);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn new(permits: u64) -> Result<Semaphore, Error> {
        let inner = Synced::create("semaphore", [permits, u64::MAX, 0, 0, 0, 0])?;
        Ok(Semaphore { inner })
    }

    /// Takes a permit, waiting as long as it takes (Python's `acquire()`).
    ///
    /// # Blocking
    ///
    /// Until a permit is released; forever if none ever is.
    ///
    /// ```
    /// let sem = flotilla::shared::Semaphore::new(1)?;
    /// sem.acquire();
    /// assert_eq!(sem.get_value(), 0);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn acquire(&self) {
        sem_acquire(&self.inner, None);
    }

    /// Takes a permit if one is free, without waiting for one (Python's
    /// `acquire(block=False)`).
    ///
    /// ```
    /// let sem = flotilla::shared::Semaphore::new(0)?;
    /// assert!(!sem.try_acquire());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn try_acquire(&self) -> bool {
        sem_try_acquire(&self.inner)
    }

    /// Takes a permit, waiting at most `timeout` (Python's `acquire(timeout=t)`); whether it
    /// got one. The wait is measured on the monotonic clock.
    ///
    /// ```
    /// use std::time::Duration;
    /// let sem = flotilla::shared::Semaphore::new(1)?;
    /// assert!(sem.acquire_timeout(Duration::from_millis(10)));
    /// assert!(!sem.acquire_timeout(Duration::from_millis(10)));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        sem_acquire(&self.inner, Some(timeout))
    }

    /// Gives a permit back, waking waiters (Python's `release()`).
    ///
    /// ```
    /// let sem = flotilla::shared::Semaphore::new(0)?;
    /// sem.release();
    /// assert!(sem.try_acquire());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    ///
    /// # Panics
    ///
    /// If the count would overflow `u64`.
    pub fn release(&self) {
        if let Err(err) = sem_release(&self.inner) {
            panic!("flotilla::shared::Semaphore: {err}");
        }
    }

    /// The number of free permits right now (Python's `get_value()`).
    ///
    /// ```
    /// let sem = flotilla::shared::Semaphore::new(4)?;
    /// assert_eq!(sem.get_value(), 4);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn get_value(&self) -> u64 {
        sem_value(&self.inner)
    }

    /// Test support: runs `f` while holding the semaphore's *internal* mutex, so that a test
    /// can make a process die at exactly that point. Not part of the API.
    #[doc(hidden)]
    pub fn __with_internal_mutex_held<R>(&self, f: impl FnOnce() -> R) -> R {
        self.inner.holding(f)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore").finish_non_exhaustive()
    }
}

passed_to_children!(Semaphore, "semaphore");

/// Python's `multiprocessing.BoundedSemaphore`: a [`Semaphore`] that refuses to be released
/// above its initial count, which catches a release without a matching acquire.
///
/// ```
/// use flotilla::shared::{BoundedSemaphore, SyncError};
///
/// let sem = BoundedSemaphore::new(1)?;
/// assert!(matches!(sem.release(), Err(SyncError::OverReleased { limit: 1 })));
/// sem.acquire();
/// sem.release()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Dropping a `BoundedSemaphore` drops this handle only: the object lives on in its clones and in other
/// processes (see [what dropping does](super#what-dropping-or-forgetting-handles-and-guards-does)).
#[derive(Clone)]
pub struct BoundedSemaphore {
    inner: Synced,
}

impl BoundedSemaphore {
    /// A bounded semaphore with `permits` permits, which is also its limit.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the segment cannot be created or initialised.
    ///
    /// ```
    /// let sem = flotilla::shared::BoundedSemaphore::new(2)?;
    /// assert_eq!(sem.get_value(), 2);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn new(permits: u64) -> Result<BoundedSemaphore, Error> {
        let inner = Synced::create("bounded semaphore", [permits, permits, 0, 0, 0, 0])?;
        Ok(BoundedSemaphore { inner })
    }

    /// Takes a permit, waiting as long as it takes.
    ///
    /// # Blocking
    ///
    /// Until a permit is released; forever if none ever is.
    ///
    /// ```
    /// let sem = flotilla::shared::BoundedSemaphore::new(1)?;
    /// sem.acquire();
    /// assert_eq!(sem.get_value(), 0);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn acquire(&self) {
        sem_acquire(&self.inner, None);
    }

    /// Takes a permit if one is free, without waiting for one.
    ///
    /// ```
    /// let sem = flotilla::shared::BoundedSemaphore::new(1)?;
    /// assert!(sem.try_acquire());
    /// assert!(!sem.try_acquire());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn try_acquire(&self) -> bool {
        sem_try_acquire(&self.inner)
    }

    /// Takes a permit, waiting at most `timeout`; whether it got one.
    ///
    /// ```
    /// use std::time::Duration;
    /// let sem = flotilla::shared::BoundedSemaphore::new(0)?;
    /// assert!(!sem.acquire_timeout(Duration::from_millis(5)));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        sem_acquire(&self.inner, Some(timeout))
    }

    /// Gives a permit back, waking waiters.
    ///
    /// # Errors
    ///
    /// [`SyncError::OverReleased`] (and nothing changes) if every permit is already free.
    ///
    /// ```
    /// let sem = flotilla::shared::BoundedSemaphore::new(1)?;
    /// sem.acquire();
    /// assert!(sem.release().is_ok());
    /// assert!(sem.release().is_err());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn release(&self) -> Result<(), SyncError> {
        sem_release(&self.inner)
    }

    /// The number of free permits right now.
    ///
    /// ```
    /// let sem = flotilla::shared::BoundedSemaphore::new(3)?;
    /// sem.acquire();
    /// assert_eq!(sem.get_value(), 2);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn get_value(&self) -> u64 {
        sem_value(&self.inner)
    }

    /// Test support: runs `f` while holding the semaphore's *internal* mutex, so that a test
    /// can make a process die at exactly that point. Not part of the API.
    #[doc(hidden)]
    pub fn __with_internal_mutex_held<R>(&self, f: impl FnOnce() -> R) -> R {
        self.inner.holding(f)
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore").finish_non_exhaustive()
    }
}

passed_to_children!(BoundedSemaphore, "semaphore");

// Event state word.
const FLAG: usize = 0;

/// Python's `multiprocessing.Event`: a flag shared between processes that can be waited for.
///
/// ```
/// use std::time::Duration;
/// use flotilla::shared::Event;
///
/// let event = Event::new()?;
/// let setter = event.clone();
/// std::thread::spawn(move || setter.set());
/// event.wait();
/// event.clear();
/// assert!(!event.wait_timeout(Duration::from_millis(5)));
/// # Ok::<(), flotilla::Error>(())
/// ```
///
/// Dropping an `Event` drops this handle only: the object lives on in its clones and in other
/// processes (see [what dropping does](super#what-dropping-or-forgetting-handles-and-guards-does)).
#[derive(Clone)]
pub struct Event {
    inner: Synced,
}

impl Event {
    /// A new, unset event in its own shared segment.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the segment cannot be created or initialised.
    ///
    /// ```
    /// let event = flotilla::shared::Event::new()?;
    /// assert!(!event.is_set());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn new() -> Result<Event, Error> {
        let inner = Synced::create("event", [0; WORDS])?;
        Ok(Event { inner })
    }

    /// Sets the flag and wakes every waiter.
    ///
    /// ```
    /// let event = flotilla::shared::Event::new()?;
    /// event.set();
    /// assert!(event.is_set());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn set(&self) {
        let _guard = self.inner.lock(None);
        self.inner.wake_all_then(|| self.inner.set_word(FLAG, 1));
    }

    /// Clears the flag: later waiters wait again.
    ///
    /// ```
    /// let event = flotilla::shared::Event::new()?;
    /// event.set();
    /// event.clear();
    /// assert!(!event.is_set());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn clear(&self) {
        let _guard = self.inner.lock(None);
        self.inner.set_word(FLAG, 0);
    }

    /// Whether the flag is set.
    ///
    /// ```
    /// assert!(!flotilla::shared::Event::new()?.is_set());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_set(&self) -> bool {
        let _guard = self.inner.lock(None);
        self.inner.word(FLAG) != 0
    }

    /// Waits until the flag is set, as long as it takes (in this or any process).
    /// [`wait_timeout`](Event::wait_timeout) waits at most a given time.
    ///
    /// # Blocking
    ///
    /// Until some process sets the event; forever if none does.
    ///
    /// ```
    /// let event = flotilla::shared::Event::new()?;
    /// event.set();
    /// event.wait(); // set already: returns at once
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn wait(&self) {
        self.wait_within(None);
    }

    /// Waits until the flag is set, at most `timeout` (measured on the monotonic clock);
    /// whether it is set on return (`false` only on a timeout).
    ///
    /// # Blocking
    ///
    /// Until some process sets the event, for at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let event = flotilla::shared::Event::new()?;
    /// assert!(!event.wait_timeout(Duration::ZERO));
    /// event.set();
    /// assert!(event.wait_timeout(Duration::ZERO));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_within(Some(timeout))
    }

    fn wait_within(&self, timeout: Option<Duration>) -> bool {
        self.inner
            .until(timeout, |s| (s.word(FLAG) != 0).then_some(()))
            .is_some()
    }

    /// Test support: runs `f` while holding the event's *internal* mutex, so that a test
    /// can make a process die at exactly that point. Not part of the API.
    #[doc(hidden)]
    pub fn __with_internal_mutex_held<R>(&self, f: impl FnOnce() -> R) -> R {
        self.inner.holding(f)
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event").finish_non_exhaustive()
    }
}

passed_to_children!(Event, "event");
