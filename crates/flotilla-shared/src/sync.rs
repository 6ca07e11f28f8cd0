//! [`Semaphore`], [`BoundedSemaphore`], [`Event`] and [`Barrier`]: process-shared
//! synchronisation built on the same sealed segment and robust mutex as [`Lock`](super::Lock),
//! plus a process-shared condition variable on `CLOCK_MONOTONIC` in the same mapping.
//!
//! # Dead processes
//!
//! The state of each primitive (a counter or a flag) is only changed under the segment's
//! robust mutex, and every change is a single store, so it is never half-updated. If a process
//! dies holding that internal mutex, the next process to take it gets `EOWNERDEAD`: it marks
//! the mutex consistent and carries on, silently (there is nothing to repair). Nobody hangs.
//!
//! What a dead process *cannot* give back is what it owned at the level of the primitive: a
//! permit it had acquired from a semaphore stays taken, and a party that died inside
//! [`Barrier::wait`] never arrives. That is why every wait has a timed form.
//!
//! Waking uses `pthread_cond_broadcast` only, never `pthread_cond_signal`, so a waiter killed
//! while waiting cannot swallow a wake-up meant for a live one; every waiter re-checks the state.

use std::cell::UnsafeCell;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::layout::deadline;
use super::lock::{Header, LockError, Locked, RawGuard, Wait};
use super::segment::{self, Kind, Segment};
use flotilla_core::Error;

/// Number of state words after the condition variable.
pub(super) const WORDS: usize = 6;

/// The start of every synchronisation segment.
#[repr(C)]
struct SyncHeader {
    /// Must come first: [`Locked`] finds it at the segment's base.
    lock: Header,
    cond: UnsafeCell<libc::pthread_cond_t>,
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
    /// The barrier is broken: a waiter timed out or it was [`reset`](Barrier::reset) while
    /// this caller waited.
    #[error("the barrier is broken")]
    BrokenBarrier,
    /// [`Barrier::wait`] ran out of time; the barrier is now broken.
    #[error("timed out waiting at the barrier; the barrier is now broken")]
    TimedOut,
}

/// A segment starting with a [`SyncHeader`].
#[derive(Debug)]
pub(super) struct Synced(Locked);

/// How a wait on the condition variable ended.
pub(super) enum Waited {
    /// Woken by a broadcast (or spuriously).
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

/// Panics on a pthread failure that is not part of the protocol: it means the memory is not
/// what it should be, a bug rather than a condition to handle.
fn unexpected(what: &str, rc: libc::c_int) -> ! {
    panic!(
        "flotilla::shared: {what} failed: {}",
        io::Error::from_raw_os_error(rc)
    )
}

impl Synced {
    /// A fresh segment with an initialised mutex, condition variable and state `init`.
    pub(super) fn create(what: &str, init: [u64; WORDS]) -> Result<Synced, Error> {
        let segment = Segment::create(LEN).map_err(|err| segment::io_error(what, err))?;
        let base = segment.base().as_ptr().cast::<SyncHeader>();
        let locked = Locked::init(segment).map_err(|err| segment::io_error(what, err))?;
        // SAFETY: the segment is fresh and not yet shared, page-aligned and `LEN` bytes long,
        // so `base` is valid and aligned for a `SyncHeader` and nobody else can see the
        // condition variable or the state while they are initialised.
        unsafe { init_cond(base, init) }.map_err(|err| segment::io_error(what, err))?;
        Ok(Synced(locked))
    }

    fn header(&self) -> &SyncHeader {
        // SAFETY: the segment is `LEN` bytes, page-aligned, and begins with a `SyncHeader`
        // initialised (by `create`, in the creating process) before it was shared; it stays
        // mapped as long as `self`. Every field is interior-mutable (the mutex and condition
        // variable in `UnsafeCell`s used only through pthread calls, the state atomic), so a
        // shared reference stays valid while other processes use them.
        unsafe { self.0.segment().base().cast::<SyncHeader>().as_ref() }
    }

    pub(super) fn word(&self, i: usize) -> u64 {
        self.header().state[i].load(Ordering::Relaxed)
    }

    pub(super) fn set_word(&self, i: usize, value: u64) {
        self.header().state[i].store(value, Ordering::Relaxed);
    }

    /// Takes the internal mutex, by `until` if given; `None` if that passed first. A dead
    /// previous holder is recovered from silently (see the module docs).
    fn lock(&self, until: Option<Instant>) -> Option<RawGuard<'_>> {
        let wait = match until {
            None => Wait::Block,
            Some(until) => Wait::For(until.saturating_duration_since(Instant::now())),
        };
        match self.0.header().acquire(wait) {
            Ok((guard, died)) => {
                if died {
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
        }
    }

    /// Waits for a broadcast, until `until` if given, with the mutex held by `guard`.
    /// `false` if the deadline has passed (the mutex is held again either way). A holder found
    /// dead on the way back is recovered from silently (see the module docs).
    fn wait(&self, held: &RawGuard<'_>, until: Option<Instant>) -> bool {
        match self.wait_reporting(held, until) {
            Waited::Woken => true,
            Waited::TimedOut => false,
            Waited::OwnerDied => {
                held.mark_consistent();
                true
            }
        }
    }

    /// Waits for a broadcast, until `until` if given, with the mutex held by `_held`, and
    /// says how the wait ended; the mutex is held again in every case. `_held` is the proof
    /// that this thread holds the mutex.
    pub(super) fn wait_reporting(&self, _held: &RawGuard<'_>, until: Option<Instant>) -> Waited {
        let cond = self.header().cond.get();
        let mutex = self.0.header().mutex();
        let rc = match until {
            // SAFETY: `cond` and `mutex` were initialised as process-shared before the segment
            // was shared and live as long as `self`; this thread holds `mutex` (`_held`).
            None => unsafe { libc::pthread_cond_wait(cond, mutex) },
            Some(until) => {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Waited::TimedOut;
                }
                let ts = monotonic_after(left);
                // SAFETY: as above; `ts` is a valid timespec on `CLOCK_MONOTONIC`, the clock
                // the condition variable was created with.
                unsafe { libc::pthread_cond_timedwait(cond, mutex, &ts) }
            }
        };
        match rc {
            0 => Waited::Woken,
            libc::ETIMEDOUT => Waited::TimedOut,
            libc::EOWNERDEAD => {
                // SAFETY: EOWNERDEAD means this thread now holds the mutex.
                unsafe { self.0.header().recover() };
                Waited::OwnerDied
            }
            rc => unexpected("pthread_cond_wait", rc),
        }
    }

    /// The mutex, for callers that report a dead holder instead of recovering silently.
    pub(super) fn locked(&self) -> &Locked {
        &self.0
    }

    /// Wakes every waiter; they re-check the state.
    pub(super) fn notify_all(&self) {
        // SAFETY: the condition variable was initialised as process-shared before the segment
        // was shared and lives as long as `self`.
        let rc = unsafe { libc::pthread_cond_broadcast(self.header().cond.get()) };
        if rc != 0 {
            unexpected("pthread_cond_broadcast", rc);
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
        let guard = self.lock(until)?;
        loop {
            if let Some(done) = ready(self) {
                return Some(done);
            }
            if !self.wait(&guard, until) {
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

/// `CLOCK_MONOTONIC` now plus `left`, as a timespec.
fn monotonic_after(left: Duration) -> libc::timespec {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    // `time_t` and `c_long` are narrower than `i64` on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    let now = (i64::from(now.tv_sec), i64::from(now.tv_nsec));
    let (secs, nanos) = deadline(now, left);
    libc::timespec {
        tv_sec: libc::time_t::try_from(secs).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::try_from(nanos).unwrap_or(999_999_999),
    }
}

/// Initialises the condition variable (process-shared, on `CLOCK_MONOTONIC`) and the state.
///
/// # Safety
///
/// `header` must be valid for writes of a `SyncHeader`, aligned, and not yet visible to any
/// other thread or process.
unsafe fn init_cond(header: *mut SyncHeader, init: [u64; WORDS]) -> io::Result<()> {
    /// Destroys the attribute object on every path.
    struct Attr(libc::pthread_condattr_t);
    impl Drop for Attr {
        fn drop(&mut self) {
            // SAFETY: the attribute was initialised by pthread_condattr_init before this
            // guard was built.
            unsafe { libc::pthread_condattr_destroy(&mut self.0) };
        }
    }
    let check = |rc: libc::c_int| match rc {
        0 => Ok(()),
        rc => Err(io::Error::from_raw_os_error(rc)),
    };
    // SAFETY: an all-zero pthread_condattr_t is a valid placeholder for init to fill.
    let mut attr: libc::pthread_condattr_t = unsafe { std::mem::zeroed() };
    // SAFETY: `attr` is valid for writes; init does not read it.
    check(unsafe { libc::pthread_condattr_init(&mut attr) })?;
    let mut attr = Attr(attr);
    // SAFETY: `attr.0` was initialised just above.
    check(unsafe { libc::pthread_condattr_setpshared(&mut attr.0, libc::PTHREAD_PROCESS_SHARED) })?;
    // SAFETY: as above.
    check(unsafe { libc::pthread_condattr_setclock(&mut attr.0, libc::CLOCK_MONOTONIC) })?;
    // SAFETY: the caller guarantees `header` is valid, aligned and unshared, so initialising
    // the condition variable and writing the state in place race with nobody.
    unsafe {
        std::ptr::addr_of_mut!((*header).state).write(init.map(AtomicU64::new));
        check(libc::pthread_cond_init(
            UnsafeCell::raw_get(std::ptr::addr_of!((*header).cond)),
            &attr.0,
        ))
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
    inner.set_word(COUNT, count + 1);
    inner.notify_all();
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
#[derive(Clone)]
pub struct Semaphore {
    inner: Arc<Synced>,
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
        Ok(Semaphore {
            inner: Arc::new(inner),
        })
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
    /// can kill a process at exactly that point. Not part of the API.
    #[doc(hidden)]
    pub fn __with_internal_mutex_held<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.inner.lock(None);
        f()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore").finish_non_exhaustive()
    }
}

/// Encodes the semaphore for a child process; only valid inside
/// [`Process::start`](flotilla_process::process::Process::start).
impl Serialize for Semaphore {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.inner.encode(serializer, Kind::Semaphore)
    }
}

/// Takes over a semaphore passed to this child process; fails anywhere else.
impl<'de> Deserialize<'de> for Semaphore {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let inner = Synced::decode(deserializer, Kind::Semaphore)?;
        Ok(Semaphore {
            inner: Arc::new(inner),
        })
    }
}

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
#[derive(Clone)]
pub struct BoundedSemaphore {
    inner: Arc<Synced>,
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
        Ok(BoundedSemaphore {
            inner: Arc::new(inner),
        })
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
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore").finish_non_exhaustive()
    }
}

/// Encodes the semaphore for a child process; only valid inside
/// [`Process::start`](flotilla_process::process::Process::start).
impl Serialize for BoundedSemaphore {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.inner.encode(serializer, Kind::BoundedSemaphore)
    }
}

/// Takes over a semaphore passed to this child process; fails anywhere else.
impl<'de> Deserialize<'de> for BoundedSemaphore {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let inner = Synced::decode(deserializer, Kind::BoundedSemaphore)?;
        Ok(BoundedSemaphore {
            inner: Arc::new(inner),
        })
    }
}

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
/// assert!(event.wait(None));
/// event.clear();
/// assert!(!event.wait(Some(Duration::from_millis(5))));
/// # Ok::<(), flotilla::Error>(())
/// ```
#[derive(Clone)]
pub struct Event {
    inner: Arc<Synced>,
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
        Ok(Event {
            inner: Arc::new(inner),
        })
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
        self.inner.set_word(FLAG, 1);
        self.inner.notify_all();
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

    /// Waits until the flag is set, at most `timeout` if given (measured on the monotonic
    /// clock); whether it is set on return (`false` only on a timeout).
    ///
    /// # Blocking
    ///
    /// With `None`, until some process sets the event; forever if none does.
    ///
    /// ```
    /// use std::time::Duration;
    /// let event = flotilla::shared::Event::new()?;
    /// assert!(!event.wait(Some(Duration::ZERO)));
    /// event.set();
    /// assert!(event.wait(Some(Duration::ZERO)));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        self.inner
            .until(timeout, |s| (s.word(FLAG) != 0).then_some(()))
            .is_some()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event").finish_non_exhaustive()
    }
}

/// Encodes the event for a child process; only valid inside
/// [`Process::start`](flotilla_process::process::Process::start).
impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.inner.encode(serializer, Kind::Event)
    }
}

/// Takes over an event passed to this child process; fails anywhere else.
impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let inner = Synced::decode(deserializer, Kind::Event)?;
        Ok(Event {
            inner: Arc::new(inner),
        })
    }
}

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
/// [`SyncError::BrokenBarrier`] until [`reset`](Barrier::reset). A party that dies while
/// waiting never arrives, so pass timeouts when parties may die.
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
#[derive(Clone)]
pub struct Barrier {
    inner: Arc<Synced>,
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
        Ok(Barrier {
            inner: Arc::new(inner),
        })
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
        let inner = &*self.inner;
        let until = timeout.and_then(deadline_after);
        let Some(guard) = inner.lock(until) else {
            return Err(SyncError::TimedOut);
        };
        if inner.word(BROKEN) != 0 {
            return Err(SyncError::BrokenBarrier);
        }
        let generation = inner.word(GENERATION);
        let index = inner.word(ARRIVED);
        if index + 1 >= inner.word(PARTIES) {
            inner.set_word(ARRIVED, 0);
            inner.set_word(GENERATION, generation.wrapping_add(1));
            inner.notify_all();
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
            if !inner.wait(&guard, until) && inner.word(GENERATION) == generation {
                inner.set_word(BROKEN, 1);
                inner.set_word(ARRIVED, inner.word(ARRIVED).saturating_sub(1));
                inner.notify_all();
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
        self.inner.set_word(BROKEN, 1);
        self.inner.notify_all();
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
        let inner = &*self.inner;
        let _guard = inner.lock(None);
        let generation = inner.word(GENERATION);
        inner.set_word(RESET_OF, generation.wrapping_add(1));
        inner.set_word(GENERATION, generation.wrapping_add(1));
        inner.set_word(ARRIVED, 0);
        inner.set_word(BROKEN, 0);
        inner.notify_all();
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
/// [`Process::start`](flotilla_process::process::Process::start).
impl Serialize for Barrier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.inner.encode(serializer, Kind::Barrier)
    }
}

/// Takes over a barrier passed to this child process; fails anywhere else.
impl<'de> Deserialize<'de> for Barrier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let inner = Synced::decode(deserializer, Kind::Barrier)?;
        Ok(Barrier {
            inner: Arc::new(inner),
        })
    }
}
