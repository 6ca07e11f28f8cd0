//! Knowing, without sleeping, that threads are blocked: the kernel's view of each thread's
//! state (`/proc/self/task/<tid>/stat`), polled under a deadline.

#![allow(dead_code)] // each test file uses its own subset

use std::time::{Duration, Instant};

/// How long a poll may take before the test fails instead of hanging.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

/// The calling thread's kernel id, for [`until_blocked`].
pub(crate) fn tid() -> i32 {
    // SAFETY: gettid has no preconditions and only returns the caller's id.
    unsafe { libc::gettid() }
}

/// The one-letter scheduler state of thread `tid` of this process (`R`, `S`, `D`...).
fn state(tid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Polls until `ready()` holds; panics after [`DEADLINE`].
pub(crate) fn until(what: &str, ready: impl Fn() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

/// Waits until every thread in `tids` is asleep in the kernel (state `S`), seen so twice in a
/// row with a yield between, which for a thread that has nothing left to do but wait means it
/// is parked in that wait. Panics after [`DEADLINE`].
pub(crate) fn until_blocked(tids: &[i32]) {
    let asleep = || tids.iter().all(|&tid| state(tid) == Some('S'));
    until("threads to block", || {
        asleep() && {
            std::thread::yield_now();
            asleep()
        }
    });
}
