//! [`Process`]: Python's `multiprocessing.Process`, running one registered task.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::Mutex;

use super::child::{CHILD_ENV, Start};
use super::reaper::Watch;
use super::started::StartedProcess;
use super::{current, current_process, fds, spawner, sys};
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
/// | `start()` | [`start`](Process::start), which returns a [`StartedProcess`] |
/// | `join`, `is_alive`, `exitcode`, `pid`, `terminate`, `kill`, `sentinel`, `close` | on the [`StartedProcess`] |
///
/// The split is Rust's answer to two of Python's run-time errors: a process cannot be
/// started twice (`start` consumes it), and nothing that needs a running child (joining,
/// signalling, its pid or sentinel) can be asked of one that was never started.
///
/// The child inherits the standard streams and the connections in its arguments, and no other
/// descriptor of this process, even one opened without close-on-exec (Python's
/// `close_fds=True`).
///
/// Dropping a `Process` that was never started drops its arguments. A `Process` does nothing
/// until started, so one made and never used is a warning:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// #[flotilla::task]
/// fn work() {}
///
/// flotilla::process::Process::new(WorkTask, ()); // never started
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
/// let p = Process::new(GreetTask, ("bob".to_owned(), out.clone())).start()?;
/// assert_eq!(out.get()?, "hello, bob");
/// p.join();
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
    /// let p = Process::new(WorkTask, 21);
    /// assert!(p.name().starts_with("Process-"));
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
    /// let p = Process::new(IdleTask, ()).with_name("indexer");
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
    /// let p = Process::new(WatchdogTask, ()).with_daemon(true);
    /// assert!(p.daemon());
    /// ```
    pub fn with_daemon(mut self, daemon: bool) -> Process {
        self.daemon = daemon;
        self
    }

    /// Starts the child process, and returns the handle to it: Python's `start()`. It
    /// consumes the `Process`, so a second start does not compile (Python raises
    /// `AssertionError`).
    ///
    /// The arguments are encoded here and then dropped in this process: a
    /// [`Connection`](super::Connection) passed in them moves to the child, and this process
    /// no longer holds that end. Returns once the child exists; it may still be starting up.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateTask`] if another task of this program is registered under the same
    /// name (the child could not tell which to run), [`Error::Codec`] if the arguments cannot
    /// be encoded, [`Error::Spawn`] or [`Error::Io`] if the operating system refuses to start
    /// it. The arguments are dropped either way.
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
    /// assert_eq!(p.exitcode(), Some(0));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn start(mut self) -> Result<StartedProcess, Error> {
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
        Ok(StartedProcess::new(
            self.name,
            self.task,
            self.daemon,
            pid,
            watch,
        ))
    }

    /// The start message: what the child needs to know, then the encoded arguments.
    fn start_message(&self, args: &[u8], passed: &[OwnedFd]) -> Result<Vec<u8>, Error> {
        let me = current_process();
        let start = Start {
            task: self.task,
            name: &self.name,
            path: &self.path,
            daemon: self.daemon,
            parent: (me.pid(), me.name()),
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
    /// assert_eq!(Process::new(QuickTask, ()).with_name("w1").name(), "w1");
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
    /// assert!(!Process::new(QuickTask, ()).daemon());
    /// ```
    pub fn daemon(&self) -> bool {
        self.daemon
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("task", &self.task)
            .field("daemon", &self.daemon)
            .finish_non_exhaustive()
    }
}
