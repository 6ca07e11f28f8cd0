//! The one error type every flotilla operation returns.

use std::fmt;
use std::time::Duration;

/// Why a task, a wait or a submission did not produce a value.
///
/// Each failure cause is its own variant so that code can react precisely (`match`, or the
/// `is_*` helpers). The type is `Clone` because a future's error is handed to every reader of
/// that future, like an exception object in Python.
///
/// # Examples
///
/// ```
/// use flotilla::{Error, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::new();
/// let fut = pool.spawn(|| -> u32 { panic!("bad input") })?;
/// let err = fut.result().unwrap_err();
/// assert!(err.is_panic());
/// assert!(err.to_string().contains("bad input"));
/// # Ok::<(), flotilla::Error>(())
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The future was cancelled before it produced a value.
    #[error("the task was cancelled")]
    Cancelled,
    /// A wait ran out of time; the task itself goes on and can still be waited for.
    #[error("{}", timeout_message(.waited, .unfinished))]
    Timeout {
        /// How long the caller waited.
        waited: Duration,
        /// For `as_completed`: how many of how many futures were still unfinished.
        unfinished: Option<(usize, usize)>,
    },
    /// The task panicked. This is flotilla's equivalent of a Python exception raised by a task.
    #[error("{0}")]
    Panicked(Panic),
    /// The task ran longer than its time limit, so its worker process was killed.
    #[error("the task exceeded its time limit of {limit:?}; its worker process was killed")]
    TaskTimedOut {
        /// The limit that was exceeded.
        limit: Duration,
    },
    /// The worker process running the task died: a crash (signal), `exit`, or a kill from
    /// outside. Only this task fails; the pool starts a new worker.
    #[error("{0}")]
    WorkerDied(WorkerExit),
    /// A cluster executor delivered the task `attempts` times and each time lost the worker
    /// running it (the worker died, hung or was cut off before its lease ran out); the task was
    /// given up after its last allowed retry.
    #[error("the task was given up after {attempts} attempts: each time its worker was lost")]
    WorkerLost {
        /// How many times the task was handed to a worker.
        attempts: u32,
    },
    /// A cluster executor dropped the task without running it: it waited in the queue longer
    /// than its time to live, `ttl`, and its state expired.
    #[error(
        "the task was dropped unrun: it waited in the queue longer than its time to live ({ttl:?})"
    )]
    Expired {
        /// How long a task may wait.
        ttl: std::time::Duration,
    },
    /// A worker process could not be started.
    #[error("could not start a worker process: {reason}")]
    Spawn {
        /// The operating system's or the worker's complaint.
        reason: String,
    },
    /// The task's arguments or result could not be encoded or decoded, or a message from a
    /// worker was malformed.
    #[error("encoding failed: {message}")]
    Codec {
        /// What could not be encoded or decoded, and why.
        message: String,
    },
    /// The worker does not know a task of this name: the task was not declared with
    /// `#[flotilla::task]`, or the worker runs a different build of the program.
    #[error("no task named `{name}` is registered in the worker")]
    UnknownTask {
        /// The task's name.
        name: String,
    },
    /// Two tasks of this program are registered under one name (two `#[flotilla::task]`
    /// functions of the same name in function bodies of one module, or two versions of one
    /// crate), so no worker could tell which to run: pools refuse to start.
    #[error(
        "two tasks are registered under the name `{name}`: task names must be unique in a program"
    )]
    DuplicateTask {
        /// The name registered more than once.
        name: String,
    },
    /// The executor was shut down before the task could be submitted.
    #[error("cannot submit: the executor has been shut down")]
    Shutdown,
    /// A process queue was shut down (Python 3.13's `queue.ShutDown`): it takes no more
    /// items, and hands out none once it is empty.
    #[error("the queue has been shut down")]
    QueueShutDown,
    /// The executor is broken (for example its initializer failed) and runs no more tasks.
    #[error("the executor is broken: {reason}")]
    Broken {
        /// What broke it.
        reason: String,
    },
    /// The executor's task queue is bounded, full, and the executor was built not to block.
    #[error("cannot submit: the executor's task queue is full")]
    QueueFull,
    /// A builder was given an unusable setting.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// The executor dropped the task without running it or saying why.
    #[error("the task was dropped by its executor before it finished")]
    Abandoned,
    /// Another handle already moved the value out of this future (`into_result` or `.await`).
    #[error("the result was already taken out of this future by another handle")]
    ResultTaken,
    /// The other end of a connection is gone: a pipe whose peer was closed, or a process queue
    /// whose owning process has exited. Nothing more will arrive on it.
    #[error("disconnected: {reason}")]
    Disconnected {
        /// Which connection, and what the operating system said.
        reason: String,
    },
    /// The operation is not allowed on this object in its current state, like sending on the
    /// receiving end of a one-way pipe or starting a process twice (Python raises
    /// `ValueError`, `OSError` or `AssertionError` for these).
    #[error("invalid operation: {reason}")]
    InvalidOperation {
        /// What was attempted, and why it cannot be done.
        reason: String,
    },
    /// A peer could not prove that it knows the shared secret key (a manager's `authkey`), or
    /// the server could not: Python's `AuthenticationError`. Nothing else was exchanged.
    #[error("authentication failed: {reason}")]
    AuthenticationFailed {
        /// Who failed to prove what.
        reason: String,
    },
    /// A barrier was broken (aborted, or a party timed out or died while waiting) before or
    /// while this caller waited: Python's `BrokenBarrierError`.
    #[error("the barrier is broken")]
    BrokenBarrier,
    /// An operating-system resource (a socket, a thread, a temporary directory) could not be
    /// created.
    #[error("{reason}")]
    Io {
        /// What could not be created, and the operating system's complaint.
        reason: String,
    },
    /// A failure only one backend can have (a cluster executor that lost contact with its
    /// server, say), carried as that backend's own error type: get it back with
    /// [`Error::backend`].
    #[error("{0}")]
    Backend(std::sync::Arc<dyn std::error::Error + Send + Sync>),
}

fn timeout_message(waited: &Duration, unfinished: &Option<(usize, usize)>) -> String {
    match unfinished {
        Some((left, total)) => {
            format!("timed out after {waited:?}: {left} (of {total}) futures unfinished")
        }
        None => format!("timed out after {waited:?} waiting for the result"),
    }
}

impl Error {
    /// True if the future was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Cancelled)
    }

    /// True if a wait timed out (the task may still finish later).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// True if the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, Error::Panicked(_))
    }

    /// True if the task's worker process died (crashed, exited or was killed from outside).
    pub fn is_worker_died(&self) -> bool {
        matches!(self, Error::WorkerDied(_))
    }

    /// True if a cluster executor gave the task up after losing its worker on every attempt.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = flotilla::Error::WorkerLost { attempts: 4 };
    /// assert!(err.is_worker_lost() && !err.is_worker_died());
    /// ```
    pub fn is_worker_lost(&self) -> bool {
        matches!(self, Error::WorkerLost { .. })
    }

    /// True if a cluster executor dropped the task unrun because it outlived its time to live
    /// in the queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = flotilla::Error::Expired { ttl: std::time::Duration::from_secs(1) };
    /// assert!(err.is_expired() && !err.is_worker_lost());
    /// ```
    pub fn is_expired(&self) -> bool {
        matches!(self, Error::Expired { .. })
    }

    /// True if two tasks of this program share a name.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = flotilla::Error::DuplicateTask { name: "app::resize".into() };
    /// assert!(err.is_duplicate_task());
    /// assert!(err.to_string().contains("`app::resize`"));
    /// ```
    pub fn is_duplicate_task(&self) -> bool {
        matches!(self, Error::DuplicateTask { .. })
    }

    /// True if the task exceeded its time limit and was killed.
    pub fn is_task_timeout(&self) -> bool {
        matches!(self, Error::TaskTimedOut { .. })
    }

    /// True if the executor was shut down or is broken, so nothing more can be submitted, or
    /// a queue was shut down, so nothing more can be put.
    pub fn is_shutdown(&self) -> bool {
        matches!(
            self,
            Error::Shutdown | Error::Broken { .. } | Error::QueueShutDown
        )
    }

    /// True if the other end of a pipe or queue is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// // What a pipe's `recv` returns once its other end is dropped (`flotilla::process`).
    /// let err = flotilla::Error::Disconnected { reason: "the other end of the pipe was closed".into() };
    /// assert!(err.is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Error::Disconnected { .. })
    }

    /// True if a peer failed to authenticate (a wrong manager `authkey`).
    ///
    /// # Examples
    ///
    /// ```
    /// let err = flotilla::Error::AuthenticationFailed { reason: "wrong key".into() };
    /// assert!(err.is_authentication_failed());
    /// ```
    pub fn is_authentication_failed(&self) -> bool {
        matches!(self, Error::AuthenticationFailed { .. })
    }

    /// True if the failure is one of a backend's own ([`Error::Backend`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let err = flotilla::Error::from_backend(std::fmt::Error);
    /// assert!(err.is_backend());
    /// ```
    pub fn is_backend(&self) -> bool {
        matches!(self, Error::Backend(_))
    }

    /// Wraps a backend's own error type in [`Error::Backend`].
    ///
    /// # Examples
    ///
    /// ```
    /// let err = flotilla::Error::from_backend(std::fmt::Error);
    /// assert_eq!(err.to_string(), std::fmt::Error.to_string());
    /// ```
    pub fn from_backend<E: std::error::Error + Send + Sync + 'static>(err: E) -> Error {
        Error::Backend(std::sync::Arc::new(err))
    }

    /// The backend's own error, if this is an [`Error::Backend`] carrying an `E`.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = flotilla::Error::from_backend(std::fmt::Error);
    /// assert!(err.backend::<std::fmt::Error>().is_some());
    /// assert!(flotilla::Error::Cancelled.backend::<std::fmt::Error>().is_none());
    /// ```
    pub fn backend<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            Error::Backend(err) => err.downcast_ref::<E>(),
            _ => None,
        }
    }

    /// The panic, if the task panicked.
    pub fn panic(&self) -> Option<&Panic> {
        match self {
            Error::Panicked(panic) => Some(panic),
            _ => None,
        }
    }
}

/// A panic caught in a task: its message and where it happened.
///
/// # Examples
///
/// ```
/// use flotilla::ThreadPoolExecutor;
///
/// let pool = ThreadPoolExecutor::new();
/// let err = pool.spawn(|| -> () { panic!("out of range") })?.result().unwrap_err();
/// let panic = err.panic().unwrap();
/// assert_eq!(panic.message(), "out of range");
/// assert!(panic.location().unwrap().contains(".rs:"));
/// # Ok::<(), flotilla::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Panic {
    message: String,
    location: Option<String>,
}

impl Panic {
    /// Builds a panic report; executors that catch panics elsewhere (in another process, say)
    /// use this to hand them on.
    pub fn new(message: impl Into<String>, location: Option<String>) -> Panic {
        Panic {
            message: message.into(),
            location,
        }
    }

    /// The panic message (`"<non-string panic payload>"` when the payload was not a string).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// `file:line:column` of the panic, when it could be captured.
    ///
    /// Capture needs flotilla's panic hook, which chains to any hook installed before it; if the
    /// program replaces the hook later, locations are no longer recorded.
    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }
}

impl fmt::Display for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task panicked: {}", self.message)?;
        if let Some(location) = &self.location {
            write!(f, " (at {location})")?;
        }
        Ok(())
    }
}

/// How a worker process ended, as reported by [`Error::WorkerDied`].
///
/// # Examples
///
/// ```
/// use flotilla::WorkerExit;
///
/// let exit = WorkerExit::new(1234, None, Some(11));
/// assert_eq!(exit.exitcode(), Some(-11)); // Python's convention for signals
/// assert!(exit.to_string().contains("SIGSEGV"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerExit {
    pid: u32,
    code: Option<i32>,
    signal: Option<i32>,
    stage: Option<Stage>,
    cause: Option<String>,
}

impl WorkerExit {
    /// Describes a worker that exited with `code` or was killed by `signal`.
    pub fn new(pid: u32, code: Option<i32>, signal: Option<i32>) -> WorkerExit {
        WorkerExit {
            pid,
            code,
            signal,
            stage: None,
            cause: None,
        }
    }

    /// The same exit, recorded as happening while the task was at `stage`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::{Stage, WorkerExit};
    ///
    /// let exit = WorkerExit::new(1234, None, Some(9)).at(Stage::Run);
    /// assert_eq!(exit.stage(), Some(Stage::Run));
    /// assert!(exit.to_string().ends_with("while the task was running"));
    /// ```
    #[must_use]
    pub fn at(mut self, stage: Stage) -> WorkerExit {
        self.stage = Some(stage);
        self
    }

    /// Where the task was when its worker ended, if the executor knows.
    pub fn stage(&self) -> Option<Stage> {
        self.stage
    }

    /// The same exit, with what the worker said about why it was dying.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::WorkerExit;
    ///
    /// let exit = WorkerExit::new(1234, None, Some(6)).with_cause("the task overflowed its stack");
    /// assert_eq!(exit.cause(), Some("the task overflowed its stack"));
    /// assert!(exit.to_string().ends_with("SIGABRT): the task overflowed its stack"));
    /// ```
    #[must_use]
    pub fn with_cause(mut self, cause: impl Into<String>) -> WorkerExit {
        self.cause = Some(cause.into());
        self
    }

    /// Why the worker died, when it could still say so before it did (a stack overflow).
    pub fn cause(&self) -> Option<&str> {
        self.cause.as_deref()
    }

    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit code, if the worker exited by itself.
    pub fn code(&self) -> Option<i32> {
        self.code
    }

    /// The signal that killed the worker, if one did.
    pub fn signal(&self) -> Option<i32> {
        self.signal
    }

    /// Python's `Process.exitcode`: the exit code, or minus the signal number.
    pub fn exitcode(&self) -> Option<i32> {
        self.code.or(self.signal.map(|s| -s))
    }
}

impl fmt::Display for WorkerExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "worker process {} ", self.pid)?;
        match (self.signal, self.code) {
            (Some(signal), _) => {
                write!(f, "was killed by signal {signal} ({})", signal_name(signal))
            }
            (None, Some(code)) => write!(f, "exited with code {code}"),
            (None, None) => write!(f, "ended for an unknown reason"),
        }?;
        if let Some(stage) = self.stage {
            write!(f, " while the task was {stage}")?;
        }
        match &self.cause {
            Some(cause) => write!(f, ": {cause}"),
            None => Ok(()),
        }
    }
}

/// The stages a process-pool task passes through, in order: where it was when it failed.
///
/// A worker's death names the stage in [`WorkerExit::stage`]; an encoding failure or a
/// malformed message names it in its text ([`Error::Codec`]).
///
/// # Examples
///
/// ```
/// assert_eq!(flotilla::Stage::DecodeResult.to_string(), "decoding its result");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// The arguments are encoded in the submitting process, on the caller's thread.
    EncodeArgs,
    /// The encoded arguments travel to the worker.
    SendArgs,
    /// The worker decodes the arguments.
    DecodeArgs,
    /// The task runs.
    Run,
    /// The worker encodes the result.
    EncodeResult,
    /// The encoded result travels back.
    SendResult,
    /// The pool decodes the result, in the submitting process.
    DecodeResult,
}

impl Stage {
    /// Every stage, in the order a task passes through them.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::Stage;
    ///
    /// assert_eq!(Stage::ALL.first(), Some(&Stage::EncodeArgs));
    /// assert_eq!(Stage::ALL.last(), Some(&Stage::DecodeResult));
    /// ```
    pub const ALL: [Stage; 7] = [
        Stage::EncodeArgs,
        Stage::SendArgs,
        Stage::DecodeArgs,
        Stage::Run,
        Stage::EncodeResult,
        Stage::SendResult,
        Stage::DecodeResult,
    ];
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::EncodeArgs => "encoding its arguments",
            Stage::SendArgs => "sending its arguments to the worker",
            Stage::DecodeArgs => "decoding its arguments in the worker",
            Stage::Run => "running",
            Stage::EncodeResult => "encoding its result in the worker",
            Stage::SendResult => "sending its result back",
            Stage::DecodeResult => "decoding its result",
        })
    }
}

/// The conventional name of a POSIX signal number.
pub(crate) fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => "unknown signal",
    }
}
