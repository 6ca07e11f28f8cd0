//! Knowing that a thread, here or in a child process, is asleep inside a wait: polls its
//! `/proc/<pid>/task/<tid>/syscall` (a deadline-bounded poll of something outside the test's
//! own threads) until it shows the thread blocked in `futex(2)`, the system call every
//! `flotilla::shared` wait sleeps in.

#![allow(dead_code)] // each test file uses its own subset

use std::time::{Duration, Instant};

/// Returns once thread `tid` of process `pid` is blocked in `futex(2)`; panics after
/// `patience`. Call it only once the thread has signalled that it is about to wait, so that
/// the futex it is found in is the wait's.
pub(crate) fn asleep_in_futex(pid: u32, tid: u32, patience: Duration) {
    let path = format!("/proc/{pid}/task/{tid}/syscall");
    let deadline = Instant::now() + patience;
    loop {
        let now = std::fs::read_to_string(&path).unwrap_or_default();
        let number = now
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<i64>().ok());
        if number == Some(libc::SYS_futex) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "thread {tid} of process {pid} did not go to sleep within {patience:?} ({now:?})"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The calling thread's kernel id, for [`asleep_in_futex`].
pub(crate) fn this_thread() -> u32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() };
    u32::try_from(tid).expect("thread ids are positive")
}

/// Runs `wait` on a new thread of this process and returns once that thread is asleep in it
/// (panics after `patience`); join the handle for `wait`'s answer.
pub(crate) fn waiting_thread<R: Send + 'static>(
    patience: Duration,
    wait: impl FnOnce() -> R + Send + 'static,
) -> std::thread::JoinHandle<R> {
    let (tid_tx, tid) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        tid_tx.send(this_thread()).unwrap();
        wait()
    });
    asleep_in_futex(std::process::id(), tid.recv().unwrap(), patience);
    waiter
}
