//! Waiting for a child process to end without ever blocking a caller for good, reaping it
//! twice, or signalling a process id that may have been recycled.
//!
//! Each started child gets a small reaper thread. It waits for the child to end with
//! `waitid(WNOWAIT)`, which leaves the child a zombie (its pid still reserved), then, under the
//! [`Watch`]'s lock, forgets the pid, reaps the child and records its exit code. Signals are
//! sent under the same lock and only while the pid is remembered, so they can only ever reach
//! our own child, alive or a zombie: the same guarantee as the process pool's `KillSwitch`.

use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;

use super::sys;

use flotilla_core::Error;
use flotilla_core::primitives::{Condvar, Mutex, lock, wait_until};

/// The state of one started child process, shared by its `Process` and its reaper thread.
#[derive(Debug)]
pub(crate) struct Watch {
    state: Mutex<State>,
    ended: Condvar,
    /// The read end of a pipe whose only write end the reaper thread holds and closes once
    /// the child is reaped: readable (at end of file) from then on, for `poll(2)` and
    /// [`wait`](super::wait).
    sentinel: OwnedFd,
}

#[derive(Debug)]
struct State {
    /// The pid, while the child has not been reaped; signals may be sent to it.
    pid: Option<libc::pid_t>,
    /// Set once the child has been reaped.
    ended: bool,
    /// Python's `exitcode`: the exit code, or minus the signal that killed the child.
    exitcode: Option<i32>,
}

impl Watch {
    /// Starts watching `child` from a new reaper thread.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the thread or the sentinel pipe cannot be created; the child has
    /// then been killed and reaped.
    pub(crate) fn start(mut child: Child) -> Result<Arc<Watch>, Error> {
        let (sentinel, reaped) = match sys::pipe() {
            Ok(ends) => ends,
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Io {
                    reason: format!("could not create a pipe to watch a process: {err}"),
                });
            }
        };
        let watch = Arc::new(Watch {
            state: Mutex::new(State {
                pid: libc::pid_t::try_from(child.id()).ok(),
                ended: false,
                exitcode: None,
            }),
            ended: Condvar::new(),
            sentinel,
        });
        let theirs = Arc::clone(&watch);
        let (child_tx, child_rx) = crossbeam_channel::bounded::<Child>(1);
        let spawned = std::thread::Builder::new()
            .name("flotilla-reaper".to_owned())
            .stack_size(64 * 1024)
            .spawn(move || {
                if let Ok(child) = child_rx.recv() {
                    theirs.reap(child);
                }
                // Only now: whoever sees the sentinel ready also sees the exit code.
                drop(reaped);
            });
        match spawned {
            Ok(_) => {
                // The receiver is alive (the thread holds it), so this cannot fail.
                let _ = child_tx.send(child);
                Ok(watch)
            }
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(Error::Io {
                    reason: format!("could not start a thread to wait for a process: {err}"),
                })
            }
        }
    }

    /// Waits for the child to end, then reaps it and records how it ended.
    fn reap(&self, mut child: Child) {
        let pid = lock(&self.state).pid;
        if let Some(pid) = pid {
            wait_without_reaping(pid);
        }
        let mut state = lock(&self.state);
        // From here no signal can be sent (the pid is forgotten under the lock), so reaping
        // cannot let one reach a recycled pid.
        state.pid = None;
        state.exitcode = child
            .wait()
            .ok()
            .and_then(|status| status.code().or(status.signal().map(|s| -s)));
        state.ended = true;
        drop(state);
        self.ended.notify_all();
    }

    /// Sends `signal` to the child if it has not been reaped yet.
    pub(crate) fn signal(&self, signal: libc::c_int) {
        let state = lock(&self.state);
        if let Some(pid) = state.pid {
            // SAFETY: kill(2) has no memory-safety preconditions. The pid is our own child's,
            // not yet reaped (it is forgotten under this lock before reaping), so it cannot
            // name a recycled process.
            unsafe { libc::kill(pid, signal) };
        }
    }

    /// Waits up to `timeout` (forever if `None`) for the child to end; returns whether it has.
    pub(crate) fn join_within(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = lock(&self.state);
        while !state.ended {
            let (next, expired) = wait_until(&self.ended, state, deadline);
            state = next;
            if expired {
                break;
            }
        }
        state.ended
    }

    /// A descriptor that becomes readable once the child has ended and been reaped.
    pub(crate) fn sentinel(&self) -> BorrowedFd<'_> {
        self.sentinel.as_fd()
    }

    /// Whether the child has ended (and been reaped).
    pub(crate) fn ended(&self) -> bool {
        lock(&self.state).ended
    }

    /// The exit code once the child has ended.
    pub(crate) fn exitcode(&self) -> Option<i32> {
        lock(&self.state).exitcode
    }
}

/// Blocks until child `pid` has ended, leaving it a zombie so that its pid stays reserved.
fn wait_without_reaping(pid: libc::pid_t) {
    let Ok(id) = libc::id_t::try_from(pid) else {
        return;
    };
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value of this plain C struct.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable siginfo_t for the duration of the call.
        let done =
            unsafe { libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if done == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return;
        }
    }
}
