//! The locks every state machine in this crate is built on, gathered in one module.
//!
//! Model-checking tests (`tests/shuttle_*.rs`) compile the state-machine files a second time
//! with their own `primitives` module that re-exports `shuttle::sync` instead of `std::sync`, so
//! code in those files must take its `Arc`, `Mutex`, `Condvar` and atomics from here, never from
//! `std::sync` directly.

pub use std::sync::atomic::{AtomicBool, AtomicUsize};
pub use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Spins briefly, then yields for up to [`SPIN_BUDGET`], until `ready()` holds; returns whether
/// it did.
///
/// Sleeping on a condition variable and being woken costs microseconds, more on virtual
/// machines; a result that arrives within this window is picked up without that cost, which is
/// what makes a submit-then-wait round trip fast (measured here: a process-pool round trip
/// 17–19 µs with the window, 22–35 µs without). Yielding, not spinning, lets the thread that
/// produces the result run on the same core, and the window is bounded, so a long wait costs
/// at most this much extra CPU.
pub fn spin_until(ready: impl Fn() -> bool) -> bool {
    let backoff = crossbeam_utils::Backoff::new();
    while !backoff.is_completed() {
        if ready() {
            return true;
        }
        backoff.snooze();
    }
    let started = std::time::Instant::now();
    while started.elapsed() < SPIN_BUDGET {
        if ready() {
            return true;
        }
        std::thread::yield_now();
    }
    ready()
}

/// How long a waiter keeps yielding before it sleeps.
pub const SPIN_BUDGET: std::time::Duration = std::time::Duration::from_micros(50);

/// The instant `timeout` from now, or `None` ("wait forever") when it is too far ahead to
/// represent, like `Duration::MAX`.
pub fn deadline_in(timeout: std::time::Duration) -> Option<std::time::Instant> {
    std::time::Instant::now().checked_add(timeout)
}

/// Locks `mutex`, ignoring poisoning.
///
/// Every critical section in this crate leaves its data consistent before it can panic (user
/// code never runs under these locks), so a poisoned lock holds valid data.
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits on `cond` until notified or until `deadline` (forever when `None`).
///
/// Returns the guard and whether the deadline has passed.
pub fn wait_until<'a, T>(
    cond: &Condvar,
    guard: MutexGuard<'a, T>,
    deadline: Option<std::time::Instant>,
) -> (MutexGuard<'a, T>, bool) {
    match deadline {
        None => (
            cond.wait(guard)
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            false,
        ),
        Some(deadline) => {
            let now = std::time::Instant::now();
            if now >= deadline {
                return (guard, true);
            }
            let (guard, _) = cond
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (guard, std::time::Instant::now() >= deadline)
        }
    }
}
