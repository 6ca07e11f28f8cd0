//! [`Process`]: Python's `multiprocessing.Process`, running one registered task.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::child::{CHILD_ENV, Start};
use super::reaper::Watch;
use super::{current, fds, spawner, sys};
use crate::spawn;
use crate::wire;
use crate::wire::codec;
use flotilla_core::Error;
use flotilla_core::Task;

/// Encodes a task's arguments; run by `start` with descriptor collection on.
type Encoder = Box<dyn FnOnce() -> Result<Vec<u8>, String> + Send>;

/// A child process running one task: Python's `multiprocessing.Process`.
///
/// The child is this same program, re-executed and caught by flotilla before `main` runs
/// (nothing is forked from the running, threaded program, and no `if __name__ ==
/// '__main__'` guard is needed). The target is a function marked `#[flotilla::task]`, and its
/// arguments travel as serde values; they may contain [`Connection`](super::Connection)s,
/// [`Queue`](super::Queue)s and [`JoinableQueue`](super::JoinableQueue)s, which the child can
/// use to talk back. The task's return value is discarded, as in Python.
///
/// | Python | flotilla |
/// |---|---|
/// | `Process(target=f, args=(a, b))` | [`Process::new(f, (a, b))`](Process::new) |
/// | `name=`, `daemon=` | [`with_name`](Process::with_name), [`with_daemon`](Process::with_daemon) |
/// | `start()`, `join(timeout)` | [`start`](Process::start), [`join`](Process::join) (returns whether it ended) |
/// | `is_alive()`, `exitcode`, `pid` | [`is_alive`](Process::is_alive), [`exitcode`](Process::exitcode), [`pid`](Process::pid) |
/// | `terminate()`, `kill()` | [`terminate`](Process::terminate) (`SIGTERM`), [`kill`](Process::kill) (`SIGKILL`) |
///
/// The child inherits the standard streams and the connections in its arguments, and no other
/// descriptor of this process, even one opened without close-on-exec (Python's
/// `close_fds=True`).
///
/// Dropping a `Process` neither waits for nor kills the child; it is still reaped when it
/// ends, so it never lingers as a zombie. A `Process` does nothing until started, so one made
/// and never used is a warning:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// #[flotilla::task]
/// fn work() {}
///
/// flotilla::process::Process::new(work, ()); // never started
/// ```
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
/// let mut p = Process::new(greet, ("bob".to_owned(), out.clone()));
/// p.start()?;
/// assert_eq!(out.get()?, "hello, bob");
/// assert!(p.join());
/// assert_eq!(p.exitcode(), Some(0));
/// # Ok::<(), flotilla::Error>(())
/// ```
#[must_use = "a Process does nothing until `start` is called"]
pub struct Process {
    task: &'static str,
    name: String,
    path: String,
    daemon: bool,
    /// Taken by `start`; behind a lock only so that `Process` is `Sync`.
    args: Mutex<Option<Encoder>>,
    started: Option<Started>,
}

struct Started {
    pid: u32,
    watch: Arc<Watch>,
}

impl Process {
    /// A process that will run `task(args)` once [`start`](Process::start)ed.
    ///
    /// Its default name is `"Process-N"` (`"Process-N:M"` in a child), as in Python.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::Process;
    ///
    /// #[flotilla::task]
    /// fn work(n: u32) -> u32 {
    ///     n * 2
    /// }
    ///
    /// let p = Process::new(work, 21);
    /// assert!(p.name().starts_with("Process-"));
    /// assert_eq!(p.pid(), None); // not started yet
    /// ```
    pub fn new<T: Task>(task: T, args: T::Args) -> Process {
        let _ = task;
        let (name, path) = current::next_child();
        Process {
            task: T::NAME,
            name,
            path,
            daemon: false,
            args: Mutex::new(Some(Box::new(move || {
                codec::encode(
                    &args,
                    Vec::new(),
                    &format_args!("the arguments of task `{}`", T::NAME),
                )
            }))),
            started: None,
        }
    }

    /// Names the process (Python's `name=`); the child sees it in
    /// [`current_process`](super::current_process).
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::Process;
    ///
    /// #[flotilla::task]
    /// fn idle() {}
    ///
    /// let p = Process::new(idle, ()).with_name("indexer");
    /// assert_eq!(p.name(), "indexer");
    /// ```
    pub fn with_name(mut self, name: impl Into<String>) -> Process {
        self.name = name.into();
        self
    }

    /// Makes the process a daemon (Python's `daemon=`): it is killed when this process dies,
    /// however this process dies, even by `SIGKILL`. Non-daemon children outlive their
    /// parent.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::Process;
    ///
    /// #[flotilla::task]
    /// fn watchdog() {}
    ///
    /// let p = Process::new(watchdog, ()).with_daemon(true);
    /// assert!(p.daemon());
    /// ```
    pub fn with_daemon(mut self, daemon: bool) -> Process {
        self.daemon = daemon;
        self
    }

    /// Starts the child process.
    ///
    /// The arguments are encoded here and then dropped in this process: a
    /// [`Connection`](super::Connection) passed in them moves to the child, and this process
    /// no longer holds that end. Returns once the child exists; it may still be starting up.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] if the process was already started (Python allows one
    /// start per `Process`), [`Error::DuplicateTask`] if another task of this program is
    /// registered under the same name (the child could not tell which to run; nothing is
    /// consumed, but no later start can succeed either), [`Error::Codec`] if the arguments
    /// cannot be encoded, [`Error::Spawn`] or [`Error::Io`] if the operating system refuses to
    /// start it.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::Process;
    ///
    /// #[flotilla::task]
    /// fn quick() {}
    ///
    /// let mut p = Process::new(quick, ());
    /// p.start()?;
    /// assert!(p.start().is_err()); // only once
    /// p.join();
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn start(&mut self) -> Result<(), Error> {
        if self.started.is_some() {
            return Err(Error::InvalidOperation {
                reason: format!("process {:?} was already started", self.name),
            });
        }
        crate::registry::check_name(self.task)?;
        let Some(encode) = self.args.get_mut().ok().and_then(Option::take) else {
            return Err(Error::InvalidOperation {
                reason: format!(
                    "process {:?} cannot be started: a failed start consumed its arguments",
                    self.name
                ),
            });
        };
        // Connections met while encoding are duplicated into `passed`; the originals close
        // when the arguments are dropped at the end of `encode`.
        let (args, passed) = fds::collecting(encode);
        let args = args.map_err(|message| Error::Codec { message })?;
        let frame = self.start_message(&args, &passed)?;
        drop(args);
        let socket_error = |err: io::Error| Error::Io {
            reason: format!("could not create a socket for a child process: {err}"),
        };
        let (ours, theirs) = UnixStream::pair().map_err(socket_error)?;
        let theirs = sys::dup_above_stdio(theirs.as_fd()).map_err(socket_error)?;
        let command = self.command(theirs.as_raw_fd(), &passed);
        let child = spawner::spawn(command)?;
        let pid = child.id();
        // The child has its copies now.
        drop(theirs);
        drop(passed);
        let watch = Watch::start(child)?;
        // If the child died before reading this, its exit code tells why.
        let _ = sys::send_all(ours.as_fd(), &frame);
        drop(ours);
        self.started = Some(Started { pid, watch });
        Ok(())
    }

    /// The start message: what the child needs to know, then the encoded arguments.
    fn start_message(&self, args: &[u8], passed: &[OwnedFd]) -> Result<Vec<u8>, Error> {
        let start = Start {
            task: self.task,
            name: &self.name,
            path: &self.path,
            daemon: self.daemon,
            fds: fds::raw(passed),
        };
        let frame = wire::start(&start)
            .map(|mut frame| {
                frame.extend_from_slice(args);
                frame
            })
            .and_then(|mut frame| wire::finish(&mut frame).map(|()| frame))
            .map_err(|message| Error::Codec { message })?;
        Ok(frame)
    }

    /// The command that re-executes this program as the child, keeping `control` and the
    /// `passed` connections open in it.
    fn command(&self, control: i32, passed: &[OwnedFd]) -> Command {
        // A daemon dies with the spawner thread, which lives as long as the parent process.
        let death_signal = self.daemon.then_some(libc::SIGKILL);
        spawn::re_exec(
            "--flotilla-process",
            CHILD_ENV,
            control,
            &fds::raw(passed),
            death_signal,
        )
    }

    /// Waits as long as it takes for the process to end: Python's `join()`; whether it has ended,
    /// `false` at once for a process never started. [`join_timeout`](Process::join_timeout) waits
    /// at most a given time.
    ///
    /// # Blocking
    ///
    /// Until the process ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::Process;
    ///
    /// #[flotilla::task]
    /// fn answer() -> u32 {
    ///     42
    /// }
    ///
    /// let mut p = Process::new(answer, ());
    /// assert!(!p.join()); // not started
    /// p.start()?;
    /// assert!(p.join());
    /// assert_eq!(p.exitcode(), Some(0));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn join(&self) -> bool {
        self.join_within(None)
    }

    /// Waits for the process to end, for at most `timeout`, and returns
    /// whether it has ended. Python's `join` returns nothing; check
    /// [`is_alive`](Process::is_alive) there, or this value here.
    ///
    /// A process that was never started has not ended: this returns `false` at once.
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
    /// let mut p = Process::new(nap, ());
    /// p.start()?;
    /// assert!(!p.join_timeout(Duration::from_millis(50))); // still running
    /// p.kill();
    /// assert!(p.join());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join_within(Some(timeout))
    }

    fn join_within(&self, timeout: Option<Duration>) -> bool {
        self.started
            .as_ref()
            .is_some_and(|started| started.watch.join(timeout))
    }

    /// Whether the process has started and not yet ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::Process;
    ///
    /// #[flotilla::task]
    /// fn quick() {}
    ///
    /// let mut p = Process::new(quick, ());
    /// assert!(!p.is_alive());
    /// p.start()?;
    /// p.join();
    /// assert!(!p.is_alive());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        self.started
            .as_ref()
            .is_some_and(|started| !started.watch.ended())
    }

    /// Asks the process to stop with `SIGTERM`. Does nothing if it is not running.
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
    /// let mut p = Process::new(forever, ());
    /// p.start()?;
    /// p.terminate();
    /// p.join();
    /// assert_eq!(p.exitcode(), Some(-libc::SIGTERM));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Kills the process with `SIGKILL`. Does nothing if it is not running.
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
    /// let mut p = Process::new(forever, ());
    /// p.start()?;
    /// p.kill();
    /// p.join();
    /// assert_eq!(p.exitcode(), Some(-9));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn kill(&self) {
        self.signal(libc::SIGKILL);
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(started) = &self.started {
            started.watch.signal(signal);
        }
    }

    /// How the process ended, as Python's `exitcode`: `None` while it runs (or before it
    /// starts), 0 if the task returned, 1 if it panicked, the code it passed to
    /// `std::process::exit`, or minus the number of the signal that killed it.
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
    /// let mut p = Process::new(fail, ());
    /// assert_eq!(p.exitcode(), None);
    /// p.start()?;
    /// p.join();
    /// assert_eq!(p.exitcode(), Some(1)); // Python's code for an uncaught exception
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn exitcode(&self) -> Option<i32> {
        self.started
            .as_ref()
            .and_then(|started| started.watch.exitcode())
    }

    /// The child's process id, once started (it stays available after the child ends).
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::Process;
    ///
    /// #[flotilla::task]
    /// fn quick() {}
    ///
    /// let mut p = Process::new(quick, ());
    /// p.start()?;
    /// assert!(p.pid().is_some_and(|pid| pid != std::process::id()));
    /// p.join();
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn pid(&self) -> Option<u32> {
        self.started.as_ref().map(|started| started.pid)
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
    /// assert_eq!(Process::new(quick, ()).with_name("w1").name(), "w1");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the process is a daemon (see [`with_daemon`](Process::with_daemon)).
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::Process;
    ///
    /// #[flotilla::task]
    /// fn quick() {}
    ///
    /// assert!(!Process::new(quick, ()).daemon());
    /// ```
    pub fn daemon(&self) -> bool {
        self.daemon
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Process");
        out.field("name", &self.name)
            .field("task", &self.task)
            .field("daemon", &self.daemon)
            .field("pid", &self.pid());
        if self.started.is_some() {
            out.field("exitcode", &self.exitcode());
        }
        out.finish_non_exhaustive()
    }
}

impl fmt::Debug for Started {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Started").field("pid", &self.pid).finish()
    }
}
