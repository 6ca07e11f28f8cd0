//! [`StartedProcess`]: a running (or ended) child, what [`Process::start`] returns; and
//! [`active_children`].

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::reaper::Watch;
use flotilla_core::Error;
use flotilla_core::primitives::{Mutex, lock};

#[cfg(doc)]
use super::Process;

/// A child process that was started: what [`Process::start`] returns. Python's
/// `multiprocessing.Process` after `start()`.
///
/// Only a started process can be joined, signalled or asked for its exit code, and a
/// [`Process`] can be started only once because `start` consumes it: Python's run-time
/// errors for those misuses (`AssertionError: cannot start a process twice`, `ValueError`
/// for `sentinel` before `start`) cannot happen.
///
/// ```compile_fail,E0382
/// #[flotilla::task]
/// fn quick() {}
///
/// let p = flotilla::process::Process::new(QuickTask, ());
/// let _first = p.start()?;
/// let _second = p.start()?; // `p` was moved by the first start
/// # Ok::<(), flotilla::Error>(())
/// ```
///
/// | Python | flotilla |
/// |---|---|
/// | `join()`, `join(timeout)` then `is_alive()` | [`join`](StartedProcess::join), [`join_timeout`](StartedProcess::join_timeout) (returns whether it ended) |
/// | `is_alive()`, `exitcode`, `pid` | [`is_alive`](StartedProcess::is_alive), [`exitcode`](StartedProcess::exitcode), [`pid`](StartedProcess::pid) |
/// | `terminate()`, `kill()` | [`terminate`](StartedProcess::terminate) (`SIGTERM`), [`kill`](StartedProcess::kill) (`SIGKILL`) |
/// | `sentinel` | [`sentinel`](StartedProcess::sentinel), for [`wait`](super::wait) |
/// | `close()` | [`close`](StartedProcess::close) |
///
/// Dropping a `StartedProcess` neither waits for nor kills the child; it is still reaped
/// when it ends, so it never lingers as a zombie, and it stays in [`active_children`] while
/// it runs.
///
/// # Examples
///
/// ```
/// use flotilla::process::{Process, Queue};
///
/// #[flotilla::task]
/// fn greet(who: String, out: Queue<String>) {
///     out.put(format!("hello, {who}")).unwrap();
/// }
///
/// let out = Queue::new();
/// let p = Process::new(GreetTask, ("bob".to_owned(), out.clone())).start()?;
/// assert_eq!(out.get()?, "hello, bob");
/// p.join();
/// assert_eq!(p.exitcode(), Some(0));
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct StartedProcess {
    name: String,
    task: &'static str,
    daemon: bool,
    pid: u32,
    watch: Arc<Watch>,
}

/// The children this process started, for [`active_children`]; entries are pruned once
/// their child has ended or nothing holds it any more.
static CHILDREN: Mutex<Vec<Child>> = Mutex::new(Vec::new());

struct Child {
    name: String,
    task: &'static str,
    daemon: bool,
    pid: u32,
    watch: Weak<Watch>,
}

impl StartedProcess {
    /// A handle on the child `pid` just started, which `watch` reaps; listed in
    /// [`active_children`] until it ends.
    pub(crate) fn new(
        name: String,
        task: &'static str,
        daemon: bool,
        pid: u32,
        watch: Arc<Watch>,
    ) -> StartedProcess {
        let mut children = lock(&CHILDREN);
        children.retain(|child| child.running().is_some());
        children.push(Child {
            name: name.clone(),
            task,
            daemon,
            pid,
            watch: Arc::downgrade(&watch),
        });
        drop(children);
        StartedProcess {
            name,
            task,
            daemon,
            pid,
            watch,
        }
    }

    /// Waits for the process to end, as long as it takes: Python's `join()`.
    ///
    /// # Blocking
    ///
    /// Until the process has ended and been reaped (so that [`exitcode`](Self::exitcode) is
    /// known).
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::Process;
    ///
    /// #[flotilla::task]
    /// fn quick() {}
    ///
    /// let p = Process::new(QuickTask, ()).start()?;
    /// p.join();
    /// assert!(!p.is_alive());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn join(&self) {
        self.watch.join_within(None);
    }

    /// Waits for the process to end for at most `timeout`, and returns whether it has ended.
    /// Python's `join(timeout)` returns nothing; check `is_alive()` there, or this value
    /// here.
    ///
    /// # Blocking
    ///
    /// Up to `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::Process;
    /// use std::time::Duration;
    ///
    /// #[flotilla::task]
    /// fn nap() {
    ///     std::thread::sleep(Duration::from_secs(60));
    /// }
    ///
    /// let p = Process::new(NapTask, ()).start()?;
    /// assert!(!p.join_timeout(Duration::from_millis(50))); // still running
    /// p.kill();
    /// assert!(p.join_timeout(Duration::from_secs(30)));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.watch.join_within(Some(timeout))
    }

    /// Whether the process has not yet ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::Process;
    ///
    /// #[flotilla::task]
    /// fn quick() {}
    ///
    /// let p = Process::new(QuickTask, ()).start()?;
    /// p.join();
    /// assert!(!p.is_alive());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        !self.watch.ended()
    }

    /// Asks the process to stop with `SIGTERM`. Does nothing if it has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::Process;
    ///
    /// #[flotilla::task]
    /// fn forever() {
    ///     loop {
    ///         std::thread::park();
    ///     }
    /// }
    ///
    /// let p = Process::new(ForeverTask, ()).start()?;
    /// p.terminate();
    /// p.join();
    /// assert_eq!(p.exitcode(), Some(-libc::SIGTERM));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn terminate(&self) {
        self.watch.signal(libc::SIGTERM);
    }

    /// Kills the process with `SIGKILL`. Does nothing if it has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::Process;
    ///
    /// #[flotilla::task]
    /// fn forever() {
    ///     loop {
    ///         std::thread::park();
    ///     }
    /// }
    ///
    /// let p = Process::new(ForeverTask, ()).start()?;
    /// p.kill();
    /// p.join();
    /// assert_eq!(p.exitcode(), Some(-9));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn kill(&self) {
        self.watch.signal(libc::SIGKILL);
    }

    /// How the process ended, as Python's `exitcode`: `None` while it runs, 0 if the task
    /// returned, 1 if it panicked, the code it passed to `std::process::exit`, or minus the
    /// number of the signal that killed it.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::Process;
    ///
    /// #[flotilla::task]
    /// fn fail() {
    ///     panic!("no luck");
    /// }
    ///
    /// let p = Process::new(FailTask, ()).start()?;
    /// p.join();
    /// assert_eq!(p.exitcode(), Some(1)); // Python's code for an uncaught exception
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn exitcode(&self) -> Option<i32> {
        self.watch.exitcode()
    }

    /// The child's process id (it stays available after the child ends).
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::Process;
    ///
    /// #[flotilla::task]
    /// fn quick() {}
    ///
    /// let p = Process::new(QuickTask, ()).start()?;
    /// assert_ne!(p.pid(), std::process::id());
    /// p.join();
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The process's name.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::Process;
    ///
    /// #[flotilla::task]
    /// fn quick() {}
    ///
    /// let p = Process::new(QuickTask, ()).with_name("w1").start()?;
    /// assert_eq!(p.name(), "w1");
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the process is a daemon (see [`Process::with_daemon`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::Process;
    ///
    /// #[flotilla::task]
    /// fn quick() {}
    ///
    /// let p = Process::new(QuickTask, ()).with_daemon(true).start()?;
    /// assert!(p.daemon());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn daemon(&self) -> bool {
        self.daemon
    }

    /// A descriptor that becomes ready (readable, at end of file) once the process has ended
    /// and been reaped: Python's `sentinel`. Wait on it together with connections with
    /// [`wait`](super::wait), or register it with an event loop. When it is ready,
    /// [`exitcode`](Self::exitcode) is known.
    ///
    /// It stays valid as long as this handle (it is not the child's pid, so it never names
    /// a recycled process). Do not read from it or close it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flotilla::process::{wait_timeout, Process};
    ///
    /// #[flotilla::task]
    /// fn forever() {
    ///     loop {
    ///         std::thread::park();
    ///     }
    /// }
    ///
    /// let p = Process::new(ForeverTask, ()).start()?;
    /// assert!(wait_timeout(&[p.sentinel()], Duration::ZERO)?.is_empty());
    /// p.kill();
    /// assert_eq!(wait_timeout(&[p.sentinel()], Duration::from_secs(30))?, [0]);
    /// assert_eq!(p.exitcode(), Some(-9));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sentinel(&self) -> BorrowedFd<'_> {
        self.watch.sentinel()
    }

    /// Releases this handle's resources (the sentinel descriptor and the record of the
    /// child) once the process has ended: Python's `close()`. Dropping the handle releases
    /// the same; `close` adds Python's check that the process is no longer running.
    ///
    /// Using the handle after `close`, and closing it twice, do not compile: `close` takes
    /// the handle.
    ///
    /// # Errors
    ///
    /// [`CloseError`], which hands the handle back, if the process is still running (Python
    /// raises `ValueError`).
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::Process;
    ///
    /// #[flotilla::task]
    /// fn forever() {
    ///     loop {
    ///         std::thread::park();
    ///     }
    /// }
    ///
    /// let p = Process::new(ForeverTask, ()).start()?;
    /// let p = p.close().unwrap_err().into_inner(); // still running
    /// p.kill();
    /// p.join();
    /// p.close()?;
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    ///
    /// ```compile_fail,E0382
    /// # #[flotilla::task]
    /// # fn quick() {}
    /// let p = flotilla::process::Process::new(QuickTask, ()).start()?;
    /// p.join();
    /// p.close()?;
    /// p.close()?; // `p` was moved by the first close
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn close(self) -> Result<(), CloseError> {
        if self.watch.ended() {
            Ok(())
        } else {
            Err(CloseError { process: self })
        }
    }
}

impl Child {
    /// The child's watch, if it is still running and someone can still see it.
    fn running(&self) -> Option<Arc<Watch>> {
        self.watch.upgrade().filter(|watch| !watch.ended())
    }
}

/// The children this process started that have not yet ended: Python's
/// `multiprocessing.active_children()`.
///
/// Each is a new handle on the child, as good as the one [`Process::start`] returned (the
/// child is listed even if that one was dropped). Python's `active_children` also reaps the
/// children that ended; here they are always reaped as soon as they end.
///
/// # Examples
///
/// ```
/// use flotilla::process::{active_children, Process};
///
/// #[flotilla::task]
/// fn forever() {
///     loop {
///         std::thread::park();
///     }
/// }
///
/// let p = Process::new(ForeverTask, ()).with_name("lingerer").start()?;
/// let pid = p.pid();
/// drop(p); // the child runs on
/// let listed = active_children();
/// let child = listed.iter().find(|c| c.pid() == pid).expect("listed");
/// assert_eq!(child.name(), "lingerer");
/// child.kill();
/// child.join();
/// assert!(active_children().iter().all(|c| c.pid() != pid));
/// # Ok::<(), flotilla::Error>(())
/// ```
pub fn active_children() -> Vec<StartedProcess> {
    let mut children = lock(&CHILDREN);
    let mut active = Vec::new();
    children.retain(|child| match child.running() {
        Some(watch) => {
            active.push(StartedProcess {
                name: child.name.clone(),
                task: child.task,
                daemon: child.daemon,
                pid: child.pid,
                watch,
            });
            true
        }
        None => false,
    });
    active
}

/// The sentinel: ready once the process has ended (see
/// [`StartedProcess::sentinel`]).
///
/// # Examples
///
/// ```
/// use std::os::fd::AsFd;
/// use flotilla::process::{wait, Process};
///
/// #[flotilla::task]
/// fn quick() {}
///
/// let p = Process::new(QuickTask, ()).start()?;
/// assert_eq!(wait(&[&p])?, [0]);
/// assert_eq!(p.exitcode(), Some(0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl AsFd for StartedProcess {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sentinel()
    }
}

impl fmt::Debug for StartedProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartedProcess")
            .field("name", &self.name)
            .field("task", &self.task)
            .field("daemon", &self.daemon)
            .field("pid", &self.pid)
            .field("exitcode", &self.exitcode())
            .finish()
    }
}

/// Why [`StartedProcess::close`] did not close: the process is still running. It hands the
/// handle back; `?` turns it into [`Error::InvalidOperation`], dropping the handle (which
/// does not stop the child).
///
/// # Examples
///
/// ```
/// use flotilla::process::Process;
///
/// #[flotilla::task]
/// fn forever() {
///     loop {
///         std::thread::park();
///     }
/// }
///
/// let err = Process::new(ForeverTask, ()).start()?.close().unwrap_err();
/// assert!(err.to_string().contains("still running"));
/// let p = err.into_inner();
/// p.kill();
/// p.join();
/// # Ok::<(), flotilla::Error>(())
/// ```
#[derive(Debug)]
pub struct CloseError {
    process: StartedProcess,
}

impl CloseError {
    /// The handle that was not closed.
    ///
    /// # Examples
    ///
    /// See [`CloseError`].
    pub fn into_inner(self) -> StartedProcess {
        self.process
    }
}

impl fmt::Display for CloseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot close process {:?} (pid {}): it is still running",
            self.process.name, self.process.pid
        )
    }
}

impl std::error::Error for CloseError {}

/// The reason, without the handle.
impl From<CloseError> for Error {
    fn from(err: CloseError) -> Error {
        Error::InvalidOperation {
            reason: err.to_string(),
        }
    }
}
