//! [`RedisExecutor`]: the client side, which queues tasks and resolves their futures.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use flotilla::backend::{self, Chunk};
use flotilla::{Error, Executor, Future, Map, Shutdown, Task};

use crate::client::{Client, Submission, panic_message};
use crate::conn::Conn;
use crate::protocol;
use crate::status::Status;

/// Python's `concurrent.futures.Executor` on a cluster: tasks go into a Redis stream and run on
/// [`Worker`](crate::Worker)s, on this machine or any other.
///
/// The same [`Executor`] calls as on a thread or process pool: [`submit`](Executor::submit),
/// a lazy [`map`](Executor::map) with a chunksize, [`shutdown`](Executor::shutdown); the futures
/// work with [`flotilla::wait`], [`flotilla::as_completed`] and `.await`. Tasks are
/// `#[flotilla::task]` functions, run by workers built from the same code.
///
/// Delivery is at least once, and each task's future completes exactly once: a worker that
/// dies or hangs loses its lease and the task runs again elsewhere, at most
/// [`max_retries`](RedisBuilder::max_retries) more times, after which the future fails with
/// [`Error::WorkerLost`]. [`Future::cancel`] is exact while the server answers: a queued task
/// is cancelled by an atomic change on the server (`true`), a running one is stopped on its
/// worker (`true`), a finished one is not (`false`). It never blocks for long: when the
/// server does not answer within two seconds (at once, while the path to it is known to be
/// down), the future is cancelled at once (`true`) and the request reaches the server when it
/// can — a task still queued then never runs, a running one is stopped, and a result that
/// arrives meanwhile is dropped.
///
/// # What can go wrong, and what the futures say
///
/// A future waits for as long as its task can still finish: through a stall, a partition or
/// a restart of the server with its data, it keeps waiting, and the result comes once the
/// path heals. It fails, saying exactly what is known, when the task can no longer finish:
/// [`RedisError::ServerStateLost`](crate::RedisError::ServerStateLost) if the server lost the
/// task (restarted without persistence, flushed), [`Error::Expired`] once its state expired
/// unrun, [`RedisError::LostContact`](crate::RedisError::LostContact) if the server was silent
/// for longer than the [`ttl`](RedisBuilder::ttl) (after which nothing about the task can be
/// learnt), [`RedisError::ArgumentsTooLarge`](crate::RedisError::ArgumentsTooLarge) /
/// [`ResultTooLarge`](crate::RedisError::ResultTooLarge) for a value over the server's limit
/// (only that task), [`RedisError::WorkerMismatch`](crate::RedisError::WorkerMismatch) when a
/// worker runs other code. Every Redis-specific cause travels in [`Error::Backend`]; get it
/// with [`RedisError::of`](crate::RedisError::of).
///
/// # Dropping
///
/// Dropping the executor is Python's leaving a `with` block: no more submits, and it blocks
/// until every submitted task still waited for has settled (so no task is left running with
/// nobody to collect its result), then stops its threads and removes its result stream. If
/// the server stays silent for the [`reconnect_timeout`](RedisBuilder::reconnect_timeout)
/// meanwhile, the futures still waiting fail with `LostContact` and the drop returns. After
/// [`shutdown`](Executor::shutdown) with `wait(false)`, dropping does not block: the
/// executor's threads go on completing the futures in the background and then exit.
///
/// # Examples
///
/// ```no_run
/// use flotilla::Executor;
/// use flotilla_redis::RedisExecutor;
///
/// #[flotilla::task]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let cluster = RedisExecutor::connect("redis://127.0.0.1:6379")?;
/// assert_eq!(cluster.submit(SquareTask, 7)?.result()?, 49);
/// let squares: Vec<u64> = cluster.map(SquareTask, 0..100).chunksize(10).collect::<Result<_, _>>()?;
/// assert_eq!(squares[9], 81);
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct RedisExecutor {
    client: Arc<Client>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Configures a [`RedisExecutor`].
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
///
/// let cluster = flotilla_redis::RedisExecutor::builder("redis+unix:///run/redis.sock")
///     .prefix("thumbs")
///     .max_retries(5)
///     .ttl(Duration::from_secs(3600))
///     .task_timeout(Duration::from_secs(60))
///     .result_decode_timeout(Duration::from_secs(5))
///     .build()?;
/// # drop(cluster);
/// # Ok::<(), flotilla::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct RedisBuilder {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) max_retries: u32,
    pub(crate) ttl: Duration,
    pub(crate) task_timeout: Option<Duration>,
    pub(crate) max_workers: usize,
    pub(crate) patience: Duration,
    pub(crate) decode_limit: Duration,
}

impl RedisBuilder {
    /// The namespace of every key (default `"flotilla"`); workers must use the same.
    pub fn prefix(mut self, prefix: impl Into<String>) -> RedisBuilder {
        self.prefix = prefix.into();
        self
    }

    /// How many times a task whose worker was lost is delivered again before its future fails
    /// with [`Error::WorkerLost`] (default 3).
    pub fn max_retries(mut self, retries: u32) -> RedisBuilder {
        self.max_retries = retries;
        self
    }

    /// How long a task's state and result are kept in Redis (default one day). A task must be
    /// picked up within this time: a task whose state expired in the queue is dropped unrun
    /// and its future fails with [`Error::Expired`] (the client notices by itself, with or
    /// without workers). A running task's state is kept as long as it runs. It is also the
    /// longest a future waits for a server that does not answer: after that, nothing more can
    /// be learnt and it fails with [`RedisError::LostContact`](crate::RedisError::LostContact).
    pub fn ttl(mut self, ttl: Duration) -> RedisBuilder {
        self.ttl = ttl;
        self
    }

    /// Kills a task's worker process when the task runs longer than `limit`; its future fails
    /// with [`Error::TaskTimedOut`] (default: no limit).
    pub fn task_timeout(mut self, limit: Duration) -> RedisBuilder {
        self.task_timeout = Some(limit);
        self
    }

    /// What [`Executor::max_workers`] reports, which sizes `map`'s buffer (default 8).
    /// 0 is refused by [`build`](RedisBuilder::build), before any connection is made:
    ///
    /// ```
    /// let err = flotilla_redis::RedisExecutor::builder("redis://127.0.0.1:1")
    ///     .max_workers(0)
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(err, flotilla::Error::InvalidConfig { .. }), "{err}");
    /// ```
    pub fn max_workers(mut self, workers: usize) -> RedisBuilder {
        self.max_workers = workers;
        self
    }

    /// How long blocking calls wait for a server that does not answer: [`status`](RedisExecutor::status),
    /// and dropping or shutting down the executor with tasks still waiting (default 30 s);
    /// those futures then fail with [`RedisError::LostContact`](crate::RedisError::LostContact).
    /// While the executor lives, futures wait through any outage shorter than the
    /// [`ttl`](RedisBuilder::ttl), and `submit` never waits for the server (tasks are sent in
    /// batches by a background thread).
    pub fn reconnect_timeout(mut self, patience: Duration) -> RedisBuilder {
        self.patience = patience;
        self
    }

    /// How long decoding one result on the client may take (default 30 s). A result whose
    /// `Deserialize` runs longer fails its own future with [`Error::Codec`], saying so; the
    /// other futures are not held up meanwhile (results are decoded off the thread that reads
    /// them), and the thread stuck in that `Deserialize` is left to end on its own.
    pub fn result_decode_timeout(mut self, limit: Duration) -> RedisBuilder {
        self.decode_limit = limit;
        self
    }

    /// Connects and starts the threads that send tasks, read results and send cancels.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a malformed URL, a TTL under a millisecond or
    /// `max_workers(0)`,
    /// [`Error::Io`] or [`Error::Disconnected`] (with the server's words) when the server cannot
    /// be reached, refuses the password, or is not Redis.
    pub fn build(self) -> Result<RedisExecutor, Error> {
        if self.max_workers == 0 {
            return Err(Error::InvalidConfig {
                reason: "max_workers must be greater than 0".into(),
            });
        }
        if self.ttl < Duration::from_millis(1) {
            return Err(Error::InvalidConfig {
                reason: "ttl must be at least a millisecond".into(),
            });
        }
        let (client, threads) = Client::start(self)?;
        Ok(RedisExecutor {
            client,
            threads: Mutex::new(threads),
        })
    }
}

/// Creates the task stream and its consumer group if they do not exist yet.
pub(crate) fn ensure_group(conn: &mut Conn, prefix: &str) -> Result<(), Error> {
    let key = protocol::tasks_key(prefix);
    let never = AtomicBool::new(false);
    let created = conn.retry(&never, Some(Duration::from_secs(30)), |c| {
        redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&key)
            .arg(protocol::GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query::<()>(c)
    });
    match created {
        Err(Error::Io { reason }) if reason.contains("BUSYGROUP") => Ok(()),
        other => other,
    }
}

impl RedisExecutor {
    /// Connects to the Redis server at `url` with the default settings.
    ///
    /// URLs: `redis://[user:password@]host[:port][/db]`, `rediss://...` (TLS, with the `tls`
    /// feature), `redis+unix:///path/to/socket[?db=N&pass=...]`.
    ///
    /// # Errors
    ///
    /// As [`RedisBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```
    /// // Nothing listens on port 1: a clear error, not a hang or a panic.
    /// let err = flotilla_redis::RedisExecutor::connect("redis://127.0.0.1:1").unwrap_err();
    /// assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    /// ```
    pub fn connect(url: &str) -> Result<RedisExecutor, Error> {
        RedisExecutor::builder(url).build()
    }

    /// Starts configuring an executor for the server at `url`.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = flotilla_redis::RedisExecutor::builder("redis://127.0.0.1").max_retries(1);
    /// # drop(builder);
    /// ```
    pub fn builder(url: &str) -> RedisBuilder {
        RedisBuilder {
            url: url.to_owned(),
            prefix: "flotilla".into(),
            max_retries: 3,
            ttl: Duration::from_secs(24 * 3600),
            task_timeout: None,
            max_workers: 8,
            patience: Duration::from_secs(30),
            decode_limit: Duration::from_secs(30),
        }
    }

    /// The counters and live workers of this executor's namespace; see [`Status`].
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] or [`Error::Io`] if the server cannot be asked.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let cluster = flotilla_redis::RedisExecutor::connect("redis://127.0.0.1")?;
    /// println!("{}", cluster.status()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn status(&self) -> Result<Status, Error> {
        let mut conn = lock(&self.client.conn);
        Status::fetch_with(&mut conn, &self.client.options.prefix)
    }

    /// How many results arrived for no waiting future: a task reported twice would count
    /// here. Stays 0 unless something is wrong.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let cluster = flotilla_redis::RedisExecutor::connect("redis://127.0.0.1")?;
    /// assert_eq!(cluster.unmatched_results(), 0);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn unmatched_results(&self) -> u64 {
        self.client.unmatched.load(Ordering::Relaxed)
    }

    /// Like [`Executor::submit`] with a time limit for this task only: its worker process is
    /// killed when it runs longer and the future fails with [`Error::TaskTimedOut`].
    ///
    /// # Errors
    ///
    /// As [`Executor::submit`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[flotilla::task] fn slow() {}
    /// let cluster = flotilla_redis::RedisExecutor::connect("redis://127.0.0.1")?;
    /// let fut = cluster.submit_with_timeout(SlowTask, (), std::time::Duration::from_secs(5))?;
    /// # drop(fut);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn submit_with_timeout<T: Task>(
        &self,
        task: T,
        args: T::Args,
        limit: Duration,
    ) -> Result<Future<T::Output>, Error> {
        self.submit_one(task, args, Some(limit))
    }

    /// Encodes one call of `task` and queues it, with its own time limit if given.
    fn submit_one<T: Task>(
        &self,
        task: T,
        args: T::Args,
        limit: Option<Duration>,
    ) -> Result<Future<T::Output>, Error> {
        let _ = task;
        let submission = Submission {
            name: T::NAME,
            signature: backend::signature::<T>(),
            chunk: false,
            timeout: limit,
            decode: backend::decode::<T::Output>,
        };
        self.client
            .submit_encoded(submission, encode::<T>(|| backend::encode(&args)))
    }
}

impl Executor for RedisExecutor {
    fn submit<T: Task>(&self, task: T, args: T::Args) -> Result<Future<T::Output>, Error> {
        self.submit_one(task, args, None)
    }

    fn map<T, I>(&self, task: T, inputs: I) -> Map<'_, I::IntoIter, T::Output>
    where
        T: Task,
        I: IntoIterator<Item = T::Args>,
        I::IntoIter: Send,
    {
        let _ = task;
        let client = &self.client;
        let submit = move |chunk: Vec<T::Args>| -> Result<Future<Chunk<T::Output>>, Error> {
            let submission = Submission {
                name: T::NAME,
                signature: backend::signature::<T>(),
                chunk: true,
                timeout: None,
                decode: backend::decode_chunk::<T::Output>,
            };
            client.submit_encoded(submission, encode::<T>(|| backend::encode_chunk(&chunk)))
        };
        backend::map(inputs.into_iter(), self.max_workers(), submit)
    }

    fn shutdown(&self, how: Shutdown) {
        let client = &self.client;
        client.shut.store(true, Ordering::Release);
        if !how.waits() {
            client.no_wait.store(true, Ordering::Release);
        }
        if how.cancels_futures() || how.kills_workers() {
            client.cancel_all(how.kills_workers());
        }
        // A done-callback runs on this executor's own thread: waiting there could never end.
        if how.waits() && !self.on_own_thread() {
            client.wait_drained();
        }
    }

    fn max_workers(&self) -> usize {
        self.client.options.max_workers
    }
}

impl Drop for RedisExecutor {
    fn drop(&mut self) {
        let client = &self.client;
        client.shut.store(true, Ordering::Release);
        // Dropped by a done-callback on one of its own threads, waiting could never end.
        let own_thread = self.on_own_thread();
        let threads = std::mem::take(&mut *lock(&self.threads));
        if client.no_wait.load(Ordering::Acquire) || own_thread {
            client.detached.store(true, Ordering::Release);
            return;
        }
        client.wait_drained();
        client.stop.store(true, Ordering::Release);
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl RedisExecutor {
    /// True on one of the executor's own threads (in a done-callback).
    fn on_own_thread(&self) -> bool {
        let here = std::thread::current().id();
        lock(&self.threads)
            .iter()
            .any(|thread| thread.thread().id() == here)
    }
}

impl fmt::Debug for RedisExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisExecutor")
            .field("client", &self.client.id)
            .field("prefix", &self.client.options.prefix)
            .field("pending", &self.client.waiting_count())
            .finish_non_exhaustive()
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Encodes a task's arguments, or a chunk of them, with `encoding`; a `Serialize` that panics
/// fails the task's future instead of the caller.
fn encode<T: Task>(encoding: impl FnOnce() -> Result<Vec<u8>, Error>) -> Result<Vec<u8>, Error> {
    let encoded = std::panic::catch_unwind(AssertUnwindSafe(encoding));
    let encoded = encoded.map(|bytes| {
        bytes.map_err(|err| {
            let why = match err {
                Error::Codec { message } => message,
                other => other.to_string(),
            };
            Error::Codec {
                message: format!(
                    "could not encode the arguments of task `{}` on the client: {why}",
                    T::NAME
                ),
            }
        })
    });
    encoded.unwrap_or_else(|panic| {
        Err(Error::Codec {
            message: format!(
                "encoding the arguments of task `{}` on the client panicked: {}",
                T::NAME,
                panic_message(&*panic)
            ),
        })
    })
}
