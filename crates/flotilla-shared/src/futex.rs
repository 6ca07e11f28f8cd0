//! Sleeping on a word of shared memory until another process changes it: Linux `futex(2)`.
//!
//! This is what the waits of [`Condition`](super::Condition), [`Event`](super::Event),
//! [`Semaphore`](super::Semaphore) and [`Barrier`](super::Barrier) sleep on, instead of a
//! process-shared `pthread_cond_t`. glibc's condition variable (since 2.25) keeps per-group
//! counts of waiters in the shared memory, and a broadcast waits until every waiter of the
//! old group has confirmed it woke up: a waiter killed inside its wait never confirms, so the
//! next-but-one broadcast blocks for ever, holding the mutex, and every later user blocks
//! behind it. POSIX promises nothing about a process that dies inside `pthread_cond_wait`.
//!
//! A futex has no such bookkeeping in user memory: the queue of sleepers is the kernel's, a
//! sleeper that dies simply leaves it, and a wake-up never waits for anyone. The protocol on
//! top ([`Synced`](super::sync)) is a sequence word: a waiter reads it with the mutex held,
//! releases the mutex and sleeps only while the word still holds what it read; a waker bumps
//! it with the mutex held and wakes every sleeper. The kernel compares the word and queues the
//! sleeper atomically, so a wake-up between the release and the sleep is never missed. (The
//! word is 32 bits and wraps: a waiter would sleep through only if exactly 2^32 wake-ups, each
//! taking the mutex, came between its read and its sleep.)
//!
//! A waker wakes the sleepers *before* it changes the state they wait for, so that a waker
//! killed at any point leaves nobody asleep through its change: killed before the wake-up,
//! it changed nothing; killed after, every sleeper is awake and queued on the robust mutex
//! the dead waker holds, which the kernel hands on as abandoned (see
//! [`sync`](super::sync)).

use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

/// Sleeps while `word` holds `seen`, until woken, until `until` (if given), or spuriously
/// (a signal); the caller re-checks whatever it waits for in every case.
pub(super) fn wait(word: &AtomicU32, seen: u32, until: Option<Instant>) {
    let timeout = match until {
        None => None,
        Some(until) => match until.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Some(timespec(left)),
            _ => return,
        },
    };
    let timeout_ptr = timeout
        .as_ref()
        .map_or(std::ptr::null(), |ts| ts as *const libc::timespec);
    // SAFETY: `word` is a live, aligned 32-bit atomic for the duration of the call (the
    // caller's segment stays mapped while it borrows it); FUTEX_WAIT only reads it, and
    // `timeout_ptr` is null or points to a valid relative timespec that outlives the call.
    // Not FUTEX_PRIVATE_FLAG: the word is in a MAP_SHARED mapping that other processes wait
    // on too. Every result (0, EAGAIN: the word changed, EINTR, ETIMEDOUT) means "re-check".
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            seen,
            timeout_ptr,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
}

/// Wakes every process and thread sleeping on `word`.
pub(super) fn wake_all(word: &AtomicU32) {
    // SAFETY: as in `wait`; FUTEX_WAKE does not touch the word's memory at all, it only
    // names the queue of sleepers keyed by its address (its page and offset, for a shared
    // mapping). The count is the largest the call accepts.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        )
    };
}

/// `left` as a relative timespec, saturating far in the future.
// `c_long` is narrower than `u32` on 32-bit targets (the nanoseconds, below one billion,
// still fit).
#[allow(clippy::unnecessary_fallible_conversions)]
fn timespec(left: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: libc::time_t::try_from(left.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::try_from(left.subsec_nanos()).unwrap_or(999_999_999),
    }
}
