//! [`parent_process`]: the process that started this one, as Python's
//! `multiprocessing.parent_process()`.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use super::{current, sys};

/// The process that started this one with [`Process::start`](super::Process::start):
/// Python's `multiprocessing.parent_process()`. `None` in the program's own process, in a
/// process-pool worker, and on kernels older than Linux 5.3 (no `pidfd_open`).
///
/// Each call returns a new handle, watching the parent through a pidfd: it can tell when
/// the parent has ended however it ended (even by `SIGKILL`), and never mistakes a process
/// that later reuses the parent's pid for it.
///
/// # Examples
///
/// ```
/// use flotilla::process::{parent_process, pipe_oneway, Process, Sender};
///
/// #[flotilla::task]
/// fn who_started_me(out: Sender<(u32, String, bool)>) {
///     let parent = parent_process().expect("started by Process::start");
///     out.send(&(parent.pid(), parent.name().to_owned(), parent.is_alive())).unwrap();
/// }
///
/// assert!(parent_process().is_none()); // the main process has no parent of ours
/// let (rx, tx) = pipe_oneway()?;
/// let p = Process::new(WhoStartedMeTask, tx).start()?;
/// assert_eq!(rx.recv()?, (std::process::id(), "MainProcess".to_owned(), true));
/// p.join();
/// # Ok::<(), flotilla::Error>(())
/// ```
pub fn parent_process() -> Option<ParentProcess> {
    let (pid, name) = current::parent()?;
    let opened = sys::pidfd_open(pid);
    // The pidfd names our parent only if it still is our parent now: a parent that died
    // earlier has been replaced by an adopter, and its pid may have been reused.
    let sentinel = if sys::parent_pid() == pid {
        opened.ok()?
    } else {
        drop(opened);
        // It has ended: a descriptor that is always ready says so.
        let (ready, writer) = sys::pipe().ok()?;
        drop(writer);
        ready
    };
    Some(ParentProcess {
        pid,
        name,
        sentinel,
    })
}

/// What [`parent_process`] returns: the pid and name of the process that started this one,
/// and a way to wait for it to end.
///
/// Dropping it closes its descriptor; the parent is not affected.
///
/// # Examples
///
/// ```
/// use flotilla::process::{parent_process, Process};
///
/// #[flotilla::task]
/// fn outlive_nobody() {
///     if let Some(parent) = parent_process() {
///         // Stop when the parent does, whatever happens to it.
///         parent.join();
///     }
/// }
/// # let p = Process::new(OutliveNobodyTask, ()).start()?;
/// # p.kill();
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct ParentProcess {
    pid: u32,
    name: String,
    sentinel: OwnedFd,
}

impl ParentProcess {
    /// The parent's process id.
    ///
    /// # Examples
    ///
    /// See [`parent_process`].
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The parent's name, as it was in its own
    /// [`current_process`](super::current_process) when it started this process.
    ///
    /// # Examples
    ///
    /// See [`parent_process`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the parent is still running.
    ///
    /// # Examples
    ///
    /// See [`parent_process`].
    pub fn is_alive(&self) -> bool {
        !sys::wait_readable(self.sentinel.as_fd(), Some(Duration::ZERO)).unwrap_or(true)
    }

    /// Waits for the parent to end, as long as it takes: Python's `join()`.
    ///
    /// # Blocking
    ///
    /// Until the parent has ended.
    ///
    /// # Examples
    ///
    /// See [`ParentProcess`].
    pub fn join(&self) {
        let _ = sys::wait_readable(self.sentinel.as_fd(), None);
    }

    /// Waits at most `timeout` for the parent to end; returns whether it has.
    ///
    /// # Blocking
    ///
    /// Up to `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flotilla::process::{parent_process, pipe_oneway, Process, Sender};
    ///
    /// #[flotilla::task]
    /// fn check(out: Sender<bool>) {
    ///     let parent = parent_process().unwrap();
    ///     out.send(&parent.join_timeout(Duration::from_millis(10))).unwrap();
    /// }
    ///
    /// let (rx, tx) = pipe_oneway()?;
    /// let p = Process::new(CheckTask, tx).start()?;
    /// assert!(!rx.recv()?); // this process is still here
    /// p.join();
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        sys::wait_readable(self.sentinel.as_fd(), Some(timeout)).unwrap_or(true)
    }

    /// A descriptor that becomes ready (readable) once the parent has ended: Python's
    /// `sentinel`, for [`wait`](super::wait). Do not read from it or close it.
    ///
    /// # Examples
    ///
    /// See [`wait`](super::wait) for waiting on it together with connections.
    pub fn sentinel(&self) -> BorrowedFd<'_> {
        self.sentinel.as_fd()
    }
}

impl AsFd for ParentProcess {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sentinel()
    }
}

impl fmt::Debug for ParentProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParentProcess")
            .field("pid", &self.pid)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
