//! [`RedisError`]: the failures only a cluster can have, carried in
//! [`flotilla::Error::Backend`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Why a task on a Redis cluster failed when the cause is the cluster itself, not the task.
///
/// Futures of a [`RedisExecutor`](crate::RedisExecutor) fail with
/// [`flotilla::Error::Backend`] carrying one of these; [`RedisError::of`] gets it back.
///
/// # Examples
///
/// ```
/// use flotilla_redis::RedisError;
///
/// let err: flotilla::Error = RedisError::ResultTooLarge { size: 3 << 20, limit: 1 << 20 }.into();
/// let cause = RedisError::of(&err).unwrap();
/// assert!(cause.is_too_large());
/// assert!(err.to_string().contains("1048576"), "{err}");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// The client heard nothing from the server for longer than the task's state is kept
    /// there, so nothing more can be learnt about the task.
    #[error(
        "lost contact with the Redis server for {silent_for:?}, longer than a task's state is kept; {}",
        fate(*reached_server, *started)
    )]
    LostContact {
        /// How long the client heard nothing.
        silent_for: Duration,
        /// Whether the task had reached the server (if so it may have run, or may still).
        reached_server: bool,
        /// Whether a worker was known to have started it.
        started: bool,
    },
    /// The server no longer knows the task: it restarted without persistence, was flushed, or
    /// evicted the task's state.
    #[error(
        "the Redis server lost this task's state (it restarted without its data, was flushed or evicted keys); {}",
        if *started { "the task had started on a worker and may have run, but its result is gone" } else { "the task had not started and will not run" }
    )]
    ServerStateLost {
        /// Whether a worker was known to have started it.
        started: bool,
    },
    /// The task's encoded arguments are larger than the server accepts in one value
    /// (`proto-max-bulk-len`); the task was not sent.
    #[error(
        "the task's encoded arguments ({size} bytes) exceed the Redis server's limit for one value ({limit} bytes, proto-max-bulk-len); it was not sent"
    )]
    ArgumentsTooLarge {
        /// The size of the encoded task.
        size: u64,
        /// The server's limit.
        limit: u64,
    },
    /// The task ran, but its encoded result is larger than the server accepts in one value
    /// (`proto-max-bulk-len`), so it could not be posted.
    #[error(
        "the task ran, but its encoded result ({size} bytes) exceeds the Redis server's limit for one value ({limit} bytes, proto-max-bulk-len)"
    )]
    ResultTooLarge {
        /// The size of the encoded result.
        size: u64,
        /// The server's limit.
        limit: u64,
    },
    /// The task ran, but the server refused its result for another reason.
    #[error("the task ran, but the Redis server refused its result: {reason}")]
    ResultRefused {
        /// What the server said.
        reason: String,
    },
    /// A worker's build has a task of this name with another argument or result schema: the
    /// client and the worker run different code. The task was not run: that worker passed it
    /// on, and no live worker ran it.
    #[error(
        "worker {worker} refused task `{task}`: its fingerprint there is {worker_fingerprint:016x}, this client's is {client_fingerprint:016x} (other argument or result types: the client and the worker run different code); the task was not run"
    )]
    WorkerMismatch {
        /// The task's name.
        task: String,
        /// The worker that refused it.
        worker: String,
        /// The task's fingerprint in the client's build.
        client_fingerprint: u64,
        /// The task's fingerprint in the worker's build.
        worker_fingerprint: u64,
    },
    /// Every live worker was offered the task and none has a task of that name (each passed
    /// it on).
    #[error(
        "none of the {workers} live workers has a task named `{task}` (they run other builds); it was not run"
    )]
    NoWorkerHasTask {
        /// The task's name.
        task: String,
        /// How many workers refused it.
        workers: u32,
    },
}

fn fate(reached_server: bool, started: bool) -> &'static str {
    match (reached_server, started) {
        (_, true) => "the task had started on a worker and may have finished",
        (true, false) => "the task had reached the server and may have run",
        (false, false) => "the task never reached the server and did not run",
    }
}

impl RedisError {
    /// The Redis cause of `err`, if it has one.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(flotilla_redis::RedisError::of(&flotilla::Error::Cancelled).is_none());
    /// ```
    pub fn of(err: &flotilla::Error) -> Option<&RedisError> {
        err.backend::<RedisError>()
    }

    /// True for [`RedisError::LostContact`].
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla_redis::RedisError;
    /// let err = RedisError::LostContact { silent_for: std::time::Duration::from_secs(9), reached_server: true, started: false };
    /// assert!(err.is_lost_contact() && err.may_have_run());
    /// ```
    pub fn is_lost_contact(&self) -> bool {
        matches!(self, RedisError::LostContact { .. })
    }

    /// True for [`RedisError::ServerStateLost`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(flotilla_redis::RedisError::ServerStateLost { started: false }.is_server_state_lost());
    /// ```
    pub fn is_server_state_lost(&self) -> bool {
        matches!(self, RedisError::ServerStateLost { .. })
    }

    /// True for [`RedisError::ArgumentsTooLarge`] and [`RedisError::ResultTooLarge`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(flotilla_redis::RedisError::ArgumentsTooLarge { size: 2, limit: 1 }.is_too_large());
    /// ```
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            RedisError::ArgumentsTooLarge { .. } | RedisError::ResultTooLarge { .. }
        )
    }

    /// True for [`RedisError::WorkerMismatch`] and [`RedisError::NoWorkerHasTask`]: the
    /// workers run other code.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = flotilla_redis::RedisError::NoWorkerHasTask { task: "t".into(), workers: 2 };
    /// assert!(err.is_worker_mismatch());
    /// ```
    pub fn is_worker_mismatch(&self) -> bool {
        matches!(
            self,
            RedisError::WorkerMismatch { .. } | RedisError::NoWorkerHasTask { .. }
        )
    }

    /// Whether the task may have run despite this failure (its side effects may have
    /// happened): lost contact or state after it reached the server, or a result that could
    /// not be posted.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!flotilla_redis::RedisError::ArgumentsTooLarge { size: 2, limit: 1 }.may_have_run());
    /// ```
    pub fn may_have_run(&self) -> bool {
        match self {
            RedisError::LostContact {
                reached_server,
                started,
                ..
            } => *reached_server || *started,
            RedisError::ServerStateLost { started } => *started,
            RedisError::ResultTooLarge { .. } | RedisError::ResultRefused { .. } => true,
            RedisError::ArgumentsTooLarge { .. }
            | RedisError::WorkerMismatch { .. }
            | RedisError::NoWorkerHasTask { .. } => false,
        }
    }
}

impl From<RedisError> for flotilla::Error {
    fn from(err: RedisError) -> flotilla::Error {
        flotilla::Error::from_backend(err)
    }
}
