//! The shuttle version of `src/primitives.rs`: the same names, backed by `shuttle::sync`, so a
//! state-machine file compiled with `#[path]` inside a shuttle test runs under shuttle's
//! scheduler. Keep the API in step with `src/primitives.rs`.

#![allow(dead_code, unreachable_pub, unused_imports)]

pub(crate) use shuttle::sync::atomic::{AtomicBool, AtomicUsize};
pub(crate) use shuttle::sync::{Arc, Condvar, Mutex, MutexGuard};

/// No spinning under shuttle: it would only burn the scheduler's steps; report the state as is.
pub(crate) fn spin_until(ready: impl Fn() -> bool) -> bool {
    ready()
}

pub(crate) fn deadline_in(timeout: std::time::Duration) -> Option<std::time::Instant> {
    std::time::Instant::now().checked_add(timeout)
}

pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Shuttle does not model time, and its `wait_timeout` never times out: a timed wait returns
/// only when notified and then reports the deadline as passed, so a timed wait that nobody
/// wakes shows up as a deadlock in the model rather than as an expiry.
pub(crate) fn wait_until<'a, T>(
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
        Some(_) => {
            let (guard, _) = cond
                .wait_timeout(guard, std::time::Duration::from_millis(1))
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (guard, true)
        }
    }
}
