//! The process-shared robust mutex behind [`Lock`], [`Value`](super::Value) and
//! [`Array`](super::Array).

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::layout::{deadline, layout};
use super::segment::{self, Kind, Segment};
use flotilla_core::Error;

/// The start of every locked segment: the mutex, and whether a holder died holding it.
#[repr(C)]
pub(crate) struct Header {
    mutex: UnsafeCell<libc::pthread_mutex_t>,
    /// 1 while the data may be inconsistent: set when a holder is found dead, cleared by
    /// `mark_consistent`. Only changed with the mutex held.
    owner_died: AtomicU32,
}

// SAFETY: the mutex is made for concurrent use by many threads (and processes): every access
// to it goes through pthread calls, and the flag is atomic.
unsafe impl Sync for Header {}
// SAFETY: a `Header` is plain bytes with no thread affinity; only a *held* mutex is tied to a
// thread, and that is `RawGuard`'s business (it is not `Send`).
unsafe impl Send for Header {}

impl Header {
    /// Initialises a robust, process-shared mutex of the given flavour in fresh memory.
    ///
    /// # Safety
    ///
    /// `header` must be valid for writes of a `Header`, aligned, and not yet visible to any
    /// other thread or process.
    pub(crate) unsafe fn init(header: *mut Header, flavor: Flavor) -> io::Result<()> {
        /// Destroys the attribute object on every path.
        struct Attr(libc::pthread_mutexattr_t);
        impl Drop for Attr {
            fn drop(&mut self) {
                // SAFETY: the attribute was initialised by pthread_mutexattr_init below
                // before this guard was built.
                unsafe { libc::pthread_mutexattr_destroy(&mut self.0) };
            }
        }
        let check = |rc: libc::c_int| match rc {
            0 => Ok(()),
            rc => Err(io::Error::from_raw_os_error(rc)),
        };
        // SAFETY: an all-zero pthread_mutexattr_t is a valid placeholder for init to fill.
        let mut attr = Attr(unsafe { std::mem::zeroed() });
        // SAFETY: `attr.0` is valid for writes; init does not read it.
        check(unsafe { libc::pthread_mutexattr_init(&mut attr.0) })?;
        // SAFETY: `attr.0` was initialised just above.
        check(unsafe {
            libc::pthread_mutexattr_setpshared(&mut attr.0, libc::PTHREAD_PROCESS_SHARED)
        })?;
        // SAFETY: as above.
        check(unsafe {
            libc::pthread_mutexattr_setrobust(&mut attr.0, libc::PTHREAD_MUTEX_ROBUST)
        })?;
        // SAFETY: as above.
        check(unsafe {
            libc::pthread_mutexattr_settype(
                &mut attr.0,
                match flavor {
                    Flavor::ErrorChecking => libc::PTHREAD_MUTEX_ERRORCHECK,
                    Flavor::Recursive => libc::PTHREAD_MUTEX_RECURSIVE,
                },
            )
        })?;
        // SAFETY: the caller guarantees `header` is valid, aligned and unshared, so writing
        // the flag and initialising the mutex in place race with nobody.
        unsafe {
            std::ptr::addr_of_mut!((*header).owner_died).write(AtomicU32::new(0));
            check(libc::pthread_mutex_init(
                UnsafeCell::raw_get(std::ptr::addr_of!((*header).mutex)),
                &attr.0,
            ))
        }
    }

    /// Records that a holder died, then makes the mutex usable again. The order matters: if
    /// this process dies in between, the next holder sees `EOWNERDEAD` again.
    ///
    /// # Safety
    ///
    /// The calling thread must hold the mutex, just acquired with `EOWNERDEAD`.
    pub(crate) unsafe fn recover(&self) {
        self.owner_died.store(1, Ordering::Relaxed);
        // SAFETY: the caller holds the mutex, acquired with EOWNERDEAD.
        unsafe { libc::pthread_mutex_consistent(self.mutex()) };
    }

    /// Whether a holder died and nobody has called `mark_consistent` since. Read it with the
    /// mutex held.
    pub(crate) fn died(&self) -> bool {
        self.owner_died.load(Ordering::Relaxed) != 0
    }

    pub(crate) fn mutex(&self) -> *mut libc::pthread_mutex_t {
        self.mutex.get()
    }
}

/// The most shared locks one thread may hold at once: every live or forgotten guard counts,
/// each re-entrant [`RLock`](super::RLock) guard included.
///
/// When a thread ends (or its process execs), the kernel walks the thread's robust list,
/// newest entry first, and marks each mutex on it abandoned, but it stops after 2048 entries
/// (`ROBUST_LIST_LIMIT`): a thread holding more would leave its oldest locks held for ever.
/// One entry is kept back for the internal mutex that a semaphore, event or barrier operation
/// holds for a moment (a thread holds at most one of those at a time). Robust mutexes that
/// other libraries take on the same thread share the kernel's limit and are not counted here.
///
/// ```
/// use flotilla::shared::{Lock, MAX_HELD};
///
/// let lock = Lock::new()?;
/// let guard = lock.lock().unwrap(); // one of the MAX_HELD this thread may hold
/// # drop(guard);
/// assert!(MAX_HELD > 2000);
/// # Ok::<(), flotilla::Error>(())
/// ```
pub const MAX_HELD: usize = 2047;

thread_local! {
    /// How many flotilla mutexes this thread holds now: each is on its robust list.
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// Who takes a mutex, which decides whether [`MAX_HELD`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    /// A guard handed to the user, who may keep it (or forget it).
    User,
    /// A semaphore, event or barrier operation, which releases it before it returns.
    Internal,
}

/// What a thread that already holds the mutex gets when it locks it again.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Flavor {
    /// [`LockError::WouldDeadlock`]: [`Lock`] and the locks of `Value`/`Array`.
    ErrorChecking,
    /// The lock again, counted: [`RLock`](super::RLock).
    Recursive,
}

/// The clock of timed acquisitions: `CLOCK_MONOTONIC` where glibc can wait on it
/// (`pthread_mutex_clocklock`, glibc 2.30), so that setting the wall clock neither shortens
/// nor stretches a wait; `CLOCK_REALTIME` elsewhere (`pthread_mutex_timedlock`).
#[cfg(target_env = "gnu")]
const LOCK_CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;
#[cfg(not(target_env = "gnu"))]
const LOCK_CLOCK: libc::clockid_t = libc::CLOCK_REALTIME;

#[cfg(target_env = "gnu")]
unsafe extern "C" {
    /// glibc 2.30+; not (yet) declared by the `libc` crate.
    fn pthread_mutex_clocklock(
        mutex: *mut libc::pthread_mutex_t,
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
}

/// Locks `mutex`, waiting at most `wait` on [`LOCK_CLOCK`]; the pthread return code.
///
/// # Safety
///
/// `mutex` must point to an initialised pthread mutex that stays alive during the call.
unsafe fn timed_lock(mutex: *mut libc::pthread_mutex_t, wait: Duration) -> libc::c_int {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the duration of the call.
    unsafe { libc::clock_gettime(LOCK_CLOCK, &mut now) };
    // `time_t` and `c_long` are narrower than `i64` on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    let now = (i64::from(now.tv_sec), i64::from(now.tv_nsec));
    let (secs, nanos) = deadline(now, wait);
    let until = libc::timespec {
        tv_sec: libc::time_t::try_from(secs).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::try_from(nanos).unwrap_or(999_999_999),
    };
    #[cfg(target_env = "gnu")]
    // SAFETY: the caller guarantees `mutex` is initialised and alive; `until` is a valid
    // timespec on `LOCK_CLOCK`, which the call supports.
    return unsafe { pthread_mutex_clocklock(mutex, LOCK_CLOCK, &until) };
    #[cfg(not(target_env = "gnu"))]
    // SAFETY: as above, on the realtime clock that pthread_mutex_timedlock uses.
    return unsafe { libc::pthread_mutex_timedlock(mutex, &until) };
}

/// How long an acquisition may wait.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    Block,
    Try,
    For(Duration),
}

/// Holds the mutex; releases it on drop. Not `Send`: a pthread mutex must be unlocked by the
/// thread that locked it.
///
/// It owns a reference to the segment, not only a borrow. While a thread holds a robust mutex,
/// glibc keeps the mutex on that thread's robust list, a linked list threaded *through the
/// mutexes themselves*: glibc writes into the list's head on every later lock, and the kernel
/// walks the list when the thread ends (or the process execs) to mark each mutex as abandoned.
/// So a held mutex must stay mapped until it is unlocked or its thread ends. A guard that is
/// dropped unlocks first and lets go of the segment after; a guard that is forgotten
/// (`mem::forget`) leaks its reference, so the segment is never unmapped in this process, and
/// the kernel still finds the mutex (and reports the holder dead) when the thread ends.
pub(crate) struct RawGuard<'a> {
    header: &'a Header,
    /// Keeps the mapping alive for as long as the mutex is held; see above.
    _mapping: Arc<Segment>,
    /// Whether the thread was already panicking when it took the mutex: a guard dropped by
    /// a *new* panic marks the data inconsistent, as `std::sync::Mutex` poisons itself.
    panicking: bool,
    _not_send: PhantomData<std::sync::MutexGuard<'static, ()>>,
}

impl RawGuard<'_> {
    /// Clears the owner-died mark.
    pub(crate) fn mark_consistent(&self) {
        // Written with the mutex held, like every write of the flag.
        self.header.owner_died.store(0, Ordering::Relaxed);
    }

    /// Unlocks the mutex, runs `f`, and locks it again, waiting as long as it takes; whether
    /// the lock was taken over from a holder that died meanwhile (it is recorded as
    /// inconsistent, and held again, either way). `f` must not panic, since the guard does
    /// not hold the mutex while it runs; it is a futex wait, which does not. If locking again
    /// fails (only a corrupted mutex can), this panics without the mutex, and the guard's
    /// unlock is refused by glibc (a robust mutex checks its owner): nothing else happens.
    pub(crate) fn unlocked(&mut self, f: impl FnOnce()) -> bool {
        let mutex = self.header.mutex();
        // SAFETY: this guard holds the mutex (it exists only while this thread does, and is
        // not Send); it is locked again below before the guard can be used or dropped.
        unsafe { libc::pthread_mutex_unlock(mutex) };
        f();
        // SAFETY: the mutex is initialised and mapped (`_mapping`); this thread released it
        // just above, so locking it cannot deadlock on itself.
        match unsafe { libc::pthread_mutex_lock(mutex) } {
            0 => false,
            libc::EOWNERDEAD => {
                // SAFETY: EOWNERDEAD means this thread now holds the mutex.
                unsafe { self.header.recover() };
                true
            }
            rc => panic!(
                "flotilla::shared: a shared mutex could not be locked again: {}",
                io::Error::from_raw_os_error(rc)
            ),
        }
    }
}

impl Drop for RawGuard<'_> {
    fn drop(&mut self) {
        HELD.with(|held| held.set(held.get().saturating_sub(1)));
        if std::thread::panicking() && !self.panicking {
            // A panic unwound through the critical section: the data may be half-updated.
            self.header.owner_died.store(1, Ordering::Relaxed);
        }
        // SAFETY: this guard exists only while this thread holds the mutex (it is not Send),
        // and it is dropped once; the segment is mapped (`_mapping` is dropped after this).
        unsafe { libc::pthread_mutex_unlock(self.header.mutex()) };
    }
}

/// The outcome of a successful acquisition.
pub(crate) struct Acquired<'a> {
    pub(crate) guard: RawGuard<'a>,
    /// A holder died (or panicked) holding the lock and nobody has marked it consistent.
    pub(crate) inconsistent: bool,
    /// This acquisition took the mutex over from a holder that died holding it.
    pub(crate) took_over: bool,
}

/// Why a lock could not be taken cleanly.
///
/// `G` is the guard type of the operation; [`OwnerDied`](LockError::OwnerDied) hands the
/// guard back, since the lock *was* acquired. The convenience accessors of
/// [`Value`](super::Value) and [`Array`](super::Array) use `LockError<()>`.
#[non_exhaustive]
pub enum LockError<G = ()> {
    /// A holder went away without unlocking — its process was killed, crashed, exited or
    /// exec'd, or its thread ended, with the lock held — or a panic unwound through its
    /// guard (as `std::sync::Mutex` is poisoned): the lock is now held by the caller through
    /// the guard inside, but the data it protects may be half-updated. Repair it, then call
    /// the guard's `mark_consistent()`; until then every acquisition reports this again
    /// (dropping the guard is allowed and keeps the mark).
    OwnerDied(G),
    /// `try_lock` found the lock held.
    WouldBlock,
    /// `lock_timeout` waited its whole time.
    TimedOut,
    /// The calling thread already holds this lock; waiting would never end.
    WouldDeadlock,
    /// The calling thread already holds [`MAX_HELD`] shared locks (forgotten guards
    /// included). When a thread ends, the kernel marks as abandoned only the 2048 robust
    /// mutexes it took most recently; a lock taken beyond them would push the oldest out, and
    /// the death of this thread would leave that one held for ever, unreported. Nothing was
    /// acquired.
    TooManyHeld,
    /// The operating system refused for another reason.
    Os(io::Error),
}

impl<G> LockError<G> {
    /// Whether a holder died and the data may be inconsistent.
    ///
    /// ```
    /// use flotilla::shared::LockError;
    /// assert!(LockError::OwnerDied(()).is_owner_died());
    /// assert!(!LockError::<()>::TimedOut.is_owner_died());
    /// ```
    pub fn is_owner_died(&self) -> bool {
        matches!(self, LockError::OwnerDied(_))
    }

    /// Whether the lock was busy ([`WouldBlock`](LockError::WouldBlock)) or stayed busy
    /// for the whole timeout ([`TimedOut`](LockError::TimedOut)).
    ///
    /// ```
    /// use flotilla::shared::LockError;
    /// assert!(LockError::<()>::TimedOut.is_busy());
    /// assert!(LockError::<()>::WouldBlock.is_busy());
    /// ```
    pub fn is_busy(&self) -> bool {
        matches!(self, LockError::WouldBlock | LockError::TimedOut)
    }

    /// Whether the calling thread holds too many shared locks to take another
    /// ([`TooManyHeld`](LockError::TooManyHeld)).
    ///
    /// ```
    /// use flotilla::shared::LockError;
    /// assert!(LockError::<()>::TooManyHeld.is_too_many_held());
    /// assert!(!LockError::<()>::WouldBlock.is_too_many_held());
    /// ```
    pub fn is_too_many_held(&self) -> bool {
        matches!(self, LockError::TooManyHeld)
    }

    /// The guard of an [`OwnerDied`](LockError::OwnerDied) error, if that is what this is.
    ///
    /// ```
    /// use flotilla::shared::LockError;
    /// assert_eq!(LockError::OwnerDied(7).into_guard(), Some(7));
    /// assert_eq!(LockError::<i32>::WouldBlock.into_guard(), None);
    /// ```
    pub fn into_guard(self) -> Option<G> {
        match self {
            LockError::OwnerDied(guard) => Some(guard),
            _ => None,
        }
    }

    /// The same error without its guard (which is dropped, releasing the lock but keeping the
    /// owner-died mark): a `'static` error that `?` can carry.
    ///
    /// ```
    /// use flotilla::shared::LockError;
    /// let err: LockError = LockError::OwnerDied("guard").without_guard();
    /// assert!(err.is_owner_died());
    /// ```
    pub fn without_guard(self) -> LockError {
        match self {
            LockError::OwnerDied(_) => LockError::OwnerDied(()),
            LockError::WouldBlock => LockError::WouldBlock,
            LockError::TimedOut => LockError::TimedOut,
            LockError::WouldDeadlock => LockError::WouldDeadlock,
            LockError::TooManyHeld => LockError::TooManyHeld,
            LockError::Os(err) => LockError::Os(err),
        }
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            LockError::WouldBlock => f.write_str("WouldBlock"),
            LockError::TimedOut => f.write_str("TimedOut"),
            LockError::WouldDeadlock => f.write_str("WouldDeadlock"),
            LockError::TooManyHeld => f.write_str("TooManyHeld"),
            LockError::Os(err) => f.debug_tuple("Os").field(err).finish(),
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str(
                "a previous holder of the shared lock died while holding it; the data it guards \
                 may be inconsistent until marked consistent",
            ),
            LockError::WouldBlock => f.write_str("the shared lock is held by someone else"),
            LockError::TimedOut => f.write_str("timed out waiting for the shared lock"),
            LockError::WouldDeadlock => {
                f.write_str("this thread already holds the shared lock; waiting would deadlock")
            }
            LockError::TooManyHeld => write!(
                f,
                "this thread already holds {MAX_HELD} shared locks; the kernel could not report \
                 the oldest of them if it died holding one more"
            ),
            LockError::Os(err) => write!(f, "the shared lock failed: {err}"),
        }
    }
}

impl<G> std::error::Error for LockError<G> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Os(err) => Some(err),
            _ => None,
        }
    }
}

/// Turns an acquisition into the public shape: the guard, or `OwnerDied` with the guard.
pub(crate) fn report<'a, G>(
    acquired: Result<Acquired<'a>, LockError>,
    wrap: impl FnOnce(RawGuard<'a>) -> G,
) -> Result<G, LockError<G>> {
    match acquired {
        Ok(Acquired {
            guard,
            inconsistent: false,
            ..
        }) => Ok(wrap(guard)),
        Ok(Acquired { guard, .. }) => Err(LockError::OwnerDied(wrap(guard))),
        Err(err) => Err(match err {
            LockError::OwnerDied(()) => unreachable!("acquire reports deaths in its Ok value"),
            LockError::WouldBlock => LockError::WouldBlock,
            LockError::TimedOut => LockError::TimedOut,
            LockError::WouldDeadlock => LockError::WouldDeadlock,
            LockError::TooManyHeld => LockError::TooManyHeld,
            LockError::Os(err) => LockError::Os(err),
        }),
    }
}

/// A segment starting with a [`Header`], checked and initialised; clones share the mapping.
#[derive(Debug, Clone)]
pub(crate) struct Locked(Arc<Segment>);

impl Locked {
    /// Wraps a fresh segment, initialising its header with an error-checking mutex.
    pub(crate) fn init(segment: Segment) -> io::Result<Locked> {
        Locked::init_as(segment, Flavor::ErrorChecking)
    }

    /// Wraps a fresh segment, initialising its header with a mutex of the given flavour.
    pub(crate) fn init_as(segment: Segment, flavor: Flavor) -> io::Result<Locked> {
        // SAFETY: the segment is freshly created, so nobody else sees it yet; its base is
        // page-aligned and it is at least a `Header` long (every layout with a lock starts
        // with one).
        unsafe { Header::init(segment.base().as_ptr().cast::<Header>(), flavor) }?;
        Ok(Locked(Arc::new(segment)))
    }

    /// Wraps a segment adopted from a parent, whose header the parent initialised.
    pub(crate) fn adopt(segment: Segment) -> Locked {
        Locked(Arc::new(segment))
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the segment begins with a `Header`, initialised (by `init`, in the creating
        // process) before the segment was shared, page-aligned, and mapped as long as `self`
        // lives. Both fields are interior-mutable (UnsafeCell, atomic), so a shared reference
        // stays valid while other processes lock and unlock the mutex.
        unsafe { self.0.base().cast::<Header>().as_ref() }
    }

    pub(crate) fn segment(&self) -> &Segment {
        &self.0
    }

    /// Takes the mutex, waiting as `wait` says. The guard keeps the segment mapped.
    pub(crate) fn acquire(&self, wait: Wait, holder: Holder) -> Result<Acquired<'_>, LockError> {
        if holder == Holder::User && HELD.with(Cell::get) >= MAX_HELD {
            return Err(LockError::TooManyHeld);
        }
        let header = self.header();
        let mutex = header.mutex();
        let rc = match wait {
            // SAFETY: the mutex was initialised by `init` before the segment was shared and
            // stays mapped while `self` lives.
            Wait::Block => unsafe { libc::pthread_mutex_lock(mutex) },
            // SAFETY: as above.
            Wait::Try => unsafe { libc::pthread_mutex_trylock(mutex) },
            // SAFETY: as above.
            Wait::For(wait) => unsafe { timed_lock(mutex, wait) },
        };
        let took_over = match rc {
            0 => false,
            libc::EOWNERDEAD => {
                // SAFETY: this thread holds the mutex (EOWNERDEAD acquires it).
                unsafe { header.recover() };
                true
            }
            libc::EBUSY => return Err(LockError::WouldBlock),
            libc::ETIMEDOUT => return Err(LockError::TimedOut),
            libc::EDEADLK => return Err(LockError::WouldDeadlock),
            rc => return Err(LockError::Os(io::Error::from_raw_os_error(rc))),
        };
        // Built straight after the lock succeeded: nothing between can panic or return.
        HELD.with(|held| held.set(held.get() + 1));
        let guard = RawGuard {
            header,
            _mapping: Arc::clone(&self.0),
            panicking: std::thread::panicking(),
            _not_send: PhantomData,
        };
        Ok(Acquired {
            inconsistent: took_over || header.died(),
            took_over,
            guard,
        })
    }
}

/// Python's `multiprocessing.Lock`: a mutex shared between processes, in shared memory.
///
/// Clone it to use it from several threads; pass it (or a clone) to a child as an argument of
/// [`Process::start`](flotilla_process::process::Process::start) to share it with that child.
///
/// Unlike Python's, it is *robust*: if a holder goes away holding it (killed, crashed,
/// exited, a thread that ended) or panics holding it, the next acquisition does not hang but
/// returns [`LockError::OwnerDied`] with the guard, so the caller can repair the data and call
/// [`LockGuard::mark_consistent`]. It is also error-checking: locking it twice from one thread
/// is [`LockError::WouldDeadlock`], not a hang.
///
/// Dropping a `Lock` drops this handle only: the lock lives on in the other clones and the
/// other processes that hold one, and its shared memory is unmapped from this process when
/// the last handle *and* the last guard of this process are gone.
///
/// # Example
///
/// ```
/// use flotilla::shared::Lock;
///
/// let lock = Lock::new()?;
/// {
///     let _held = lock.lock().expect("no holder has died");
///     std::thread::scope(|s| {
///         s.spawn(|| assert!(lock.try_lock().unwrap_err().is_busy()));
///     });
/// }
/// assert!(lock.try_lock().is_ok());
/// # Ok::<(), flotilla::Error>(())
/// ```
#[derive(Clone)]
pub struct Lock {
    inner: Locked,
}

impl Lock {
    /// A new, unlocked lock in its own shared segment.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the segment cannot be created or mapped.
    ///
    /// ```
    /// let lock = flotilla::shared::Lock::new()?;
    /// drop(lock.lock().unwrap());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn new() -> Result<Lock, Error> {
        let total = header_len();
        let segment = Segment::create(total).map_err(|err| segment::io_error("lock", err))?;
        let locked = Locked::init(segment).map_err(|err| segment::io_error("lock", err))?;
        Ok(Lock { inner: locked })
    }

    /// Takes the lock, waiting as long as it takes (Python's `acquire()`).
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] (holding the guard) if a holder died;
    /// [`LockError::WouldDeadlock`] if this thread holds it already.
    ///
    /// # Blocking
    ///
    /// Until the holder releases it or dies.
    ///
    /// ```
    /// let lock = flotilla::shared::Lock::new()?;
    /// let guard = lock.lock().unwrap();
    /// assert!(lock.lock().is_err()); // this thread holds it: WouldDeadlock, not a hang
    /// drop(guard);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn lock(&self) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        report(self.inner.acquire(Wait::Block, Holder::User), LockGuard)
    }

    /// Takes the lock if it is free (Python's `acquire(block=False)`).
    ///
    /// # Errors
    ///
    /// [`LockError::WouldBlock`] if another thread or process holds it;
    /// [`LockError::WouldDeadlock`] if this thread does; otherwise as [`lock`](Lock::lock).
    ///
    /// ```
    /// let lock = flotilla::shared::Lock::new()?;
    /// let guard = lock.try_lock().unwrap();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| assert!(lock.try_lock().unwrap_err().is_busy()));
    /// });
    /// # drop(guard);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn try_lock(&self) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        report(self.inner.acquire(Wait::Try, Holder::User), LockGuard)
    }

    /// Takes the lock, waiting at most `timeout` (Python's `acquire(timeout=t)`). The wait is
    /// measured on the monotonic clock with glibc (on other C libraries, on the wall clock,
    /// which `pthread_mutex_timedlock` requires, so that a clock step shortens or lengthens it).
    ///
    /// # Errors
    ///
    /// [`LockError::TimedOut`] if it stayed held; otherwise as [`lock`](Lock::lock).
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = flotilla::shared::Lock::new()?;
    /// let guard = lock.lock().unwrap();
    /// let other = lock.clone();
    /// let waited = std::thread::spawn(move || {
    ///     other.lock_timeout(Duration::from_millis(20)).map(drop).map_err(|e| e.without_guard())
    /// });
    /// assert!(waited.join().unwrap().unwrap_err().is_busy());
    /// # drop(guard);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        report(
            self.inner.acquire(Wait::For(timeout), Holder::User),
            LockGuard,
        )
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock").finish_non_exhaustive()
    }
}

/// Encodes the lock for a child process; only valid inside
/// [`Process::start`](flotilla_process::process::Process::start).
impl Serialize for Lock {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        segment::encode(serializer, self.inner.segment(), Kind::Lock, 0, (0, 1))
    }
}

/// Takes over a lock passed to this child process; fails anywhere else.
impl<'de> Deserialize<'de> for Lock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let adopted = segment::decode(deserializer, Kind::Lock, (0, 1))?;
        let segment = Segment::open(adopted.fd, header_len())
            .map_err(flotilla_process::wire::refusal::decoding)?;
        Ok(Lock {
            inner: Locked::adopt(segment),
        })
    }
}

/// The length of a segment holding only a [`Header`].
pub(crate) fn header_len() -> usize {
    layout(size_of::<Header>(), 0, 1, 0).map_or(size_of::<Header>(), |l| l.total)
}

/// Holds a [`Lock`]; releases it when dropped (the end of Python's `with lock:`).
///
/// Dropped by a panic's unwinding, it marks the lock inconsistent before releasing it, so the
/// next holder gets [`LockError::OwnerDied`]. Forgotten (`std::mem::forget`), it keeps the
/// lock held by this thread until the thread ends, and the lock's shared memory mapped in this
/// process for good: when the thread ends, the next holder gets `OwnerDied`.
///
/// Not `Send`: it must be released by the thread that took it.
///
/// ```compile_fail
/// fn is_send<T: Send>() {}
/// is_send::<flotilla::shared::LockGuard<'static>>();
/// ```
///
/// Dropping it straight away releases the lock straight away, so it is `#[must_use]`: a
/// statement that takes the lock and keeps nothing is warned about.
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let lock = flotilla::shared::Lock::new().unwrap();
/// lock.lock().unwrap(); // held for no time at all
/// ```
#[must_use = "dropping the guard releases the lock at once; bind it (`let guard = ...`) to hold the lock"]
pub struct LockGuard<'a>(RawGuard<'a>);

impl LockGuard<'_> {
    /// Declares the data protected by the lock repaired after [`LockError::OwnerDied`]: later
    /// acquisitions succeed normally again. Harmless when no holder died.
    ///
    /// ```
    /// let lock = flotilla::shared::Lock::new()?;
    /// let mut guard = lock.lock().unwrap();
    /// guard.mark_consistent();
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn mark_consistent(&mut self) {
        self.0.mark_consistent();
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}
