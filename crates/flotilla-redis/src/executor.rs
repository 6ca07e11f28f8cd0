//! [`RedisExecutor`]: the client side, which queues tasks and resolves their futures.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flotilla::backend::{self, Chunk};
use flotilla::{Error, Executor, Future, Map, Promise, Shutdown, Task};
use redis::streams::StreamReadReply;

use crate::conn::Conn;
use crate::protocol::{self, TaskMsg, WireError};
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
/// [`Error::WorkerLost`]. [`Future::cancel`] is exact: a queued task is cancelled by an atomic
/// change on the server (`true`), a running one is stopped on its worker (`true`), a finished
/// one is not (`false`).
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
/// assert_eq!(cluster.submit(square, 7)?.result(None)?, 49);
/// let squares: Vec<u64> = cluster.map(square, 0..100).chunksize(10).collect::<Result<_, _>>()?;
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
///     .build()?;
/// # drop(cluster);
/// # Ok::<(), flotilla::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct RedisBuilder {
    url: String,
    prefix: String,
    max_retries: u32,
    ttl: Duration,
    task_timeout: Option<Duration>,
    max_workers: usize,
    patience: Duration,
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
    /// picked up within this time: the first worker to see a task whose state has expired
    /// drops it unrun and its future fails with [`Error::Expired`].
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
    pub fn max_workers(mut self, workers: usize) -> RedisBuilder {
        self.max_workers = workers.max(1);
        self
    }

    /// How long a task keeps being retried while the server is unreachable before its future
    /// fails with [`Error::Disconnected`] (default 30 s). `submit` itself never waits for the
    /// server: tasks are sent in batches by a background thread.
    pub fn reconnect_timeout(mut self, patience: Duration) -> RedisBuilder {
        self.patience = patience;
        self
    }

    /// Connects and starts the thread that reads results.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a malformed URL or a TTL under a millisecond,
    /// [`Error::Io`] or [`Error::Disconnected`] (with the server's words) when the server cannot
    /// be reached, refuses the password, or is not Redis.
    pub fn build(self) -> Result<RedisExecutor, Error> {
        if self.ttl < Duration::from_millis(1) {
            return Err(Error::InvalidConfig {
                reason: "ttl must be at least a millisecond".into(),
            });
        }
        let mut conn = Conn::open(&self.url)?;
        ensure_group(&mut conn, &self.prefix)?;
        let reader_conn = conn.another()?;
        let sender_conn = conn.another()?;
        let (outbox, outgoing) = crossbeam_channel::unbounded();
        let client = Arc::new(Client {
            id: client_id(),
            conn: Mutex::new(conn),
            submit: redis::Script::new(protocol::SUBMIT),
            cancel: redis::Script::new(protocol::CANCEL),
            pending: Mutex::new(HashMap::new()),
            drained: Condvar::new(),
            order: Mutex::new(1),
            outbox,
            sent: Mutex::new(1),
            sent_cv: Condvar::new(),
            shut: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            unmatched: AtomicU64::new(0),
            version: protocol::version(),
            options: self,
        });
        let spawn = |name: &str, body: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(body)
                .map_err(|err| Error::Io {
                    reason: format!("could not start the thread {name}: {err}"),
                })
        };
        let reader = spawn("flotilla-redis-results", {
            let client = Arc::clone(&client);
            Box::new(move || read_results(&client, reader_conn))
        })?;
        let sender = spawn("flotilla-redis-submit", {
            let client = Arc::clone(&client);
            Box::new(move || send_tasks(&client, sender_conn, &outgoing))
        });
        let sender = match sender {
            Ok(sender) => sender,
            Err(err) => {
                client.stop.store(true, Ordering::Release);
                let _ = reader.join();
                return Err(err);
            }
        };
        Ok(RedisExecutor {
            client,
            threads: Mutex::new(vec![reader, sender]),
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

struct Client {
    id: String,
    conn: Mutex<Conn>,
    submit: redis::Script,
    cancel: redis::Script,
    /// Futures waiting for a result, by task number.
    pending: Mutex<HashMap<u64, Box<dyn Pending>>>,
    /// Signalled when `pending` becomes empty.
    drained: Condvar,
    /// The next task number; held while a task goes into `outbox`, so numbers leave in order.
    order: Mutex<u64>,
    /// Tasks on their way to the server, sent in batches by the sender thread.
    outbox: Sender<Outgoing>,
    /// Every task numbered below this has reached the server (or failed to).
    sent: Mutex<u64>,
    /// Signalled when `sent` grows.
    sent_cv: Condvar,
    shut: AtomicBool,
    /// Stops the result reader.
    stop: AtomicBool,
    unmatched: AtomicU64,
    version: String,
    options: RedisBuilder,
}

/// A task on its way to the server.
struct Outgoing {
    seq: u64,
    id: String,
    msg: Vec<u8>,
    ttl_ms: u64,
}

/// A future waiting for its result, with its result type erased.
trait Pending: Send {
    /// A worker has started the task.
    fn started(&self);
    fn complete(self: Box<Self>, outcome: Result<Vec<u8>, Error>);
    fn cancel(self: Box<Self>);
}

struct Typed<R> {
    promise: Promise<R>,
    decode: fn(&[u8]) -> Result<R, Error>,
}

impl<R: Send> Pending for Typed<R> {
    fn started(&self) {
        // `false` only if the future was cancelled meanwhile: its result will say so.
        let _ = self.promise.set_running();
    }

    fn complete(self: Box<Self>, outcome: Result<Vec<u8>, Error>) {
        let decode = self.decode;
        self.promise
            .complete(outcome.and_then(|bytes| decode(&bytes)));
    }

    fn cancel(self: Box<Self>) {
        self.promise.cancel();
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
    /// let fut = cluster.submit_with_timeout(slow, (), std::time::Duration::from_secs(5))?;
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
        let args = backend::encode(&args);
        self.client.submit_encoded(
            T::NAME,
            backend::signature::<T>(),
            false,
            args,
            limit,
            backend::decode::<T::Output>,
        )
    }
}

impl Client {
    fn submit_encoded<R: Send + 'static>(
        self: &Arc<Self>,
        name: &str,
        signature: u64,
        chunk: bool,
        args: Result<Vec<u8>, Error>,
        timeout: Option<Duration>,
        decode: fn(&[u8]) -> Result<R, Error>,
    ) -> Result<Future<R>, Error> {
        if self.shut.load(Ordering::Acquire) {
            return Err(Error::Shutdown);
        }
        let promise = Promise::new();
        let future = promise.future();
        let args = match args {
            Ok(args) => args,
            Err(err) => {
                promise.complete(Err(err));
                return Ok(future);
            }
        };
        let options = &self.options;
        let timeout = timeout.or(options.task_timeout);
        let ttl_ms = millis(options.ttl);
        let msg = TaskMsg {
            name: name.to_owned(),
            signature,
            chunk,
            timeout_ms: timeout.map(millis),
            max_attempts: options.max_retries.saturating_add(1),
            ttl_ms,
            args,
        };
        let msg = match postcard::to_allocvec(&msg) {
            Ok(msg) => msg,
            Err(err) => {
                promise.complete(Err(Error::Codec {
                    message: format!("could not encode task `{name}`: {err}"),
                }));
                return Ok(future);
            }
        };
        let mut order = lock(&self.order);
        let seq = *order;
        let id = format!("{}-{seq}", self.id);
        let weak = Arc::downgrade(self);
        let cancel_id = id.clone();
        promise.on_cancel_request(move || cancel_request(&weak, seq, &cancel_id));
        lock(&self.pending).insert(seq, Box::new(Typed { promise, decode }));
        let outgoing = Outgoing {
            seq,
            id,
            msg,
            ttl_ms,
        };
        if self.outbox.send(outgoing).is_err() {
            drop(order);
            self.settle(seq, |pending| pending.complete(Err(Error::Shutdown)));
            return Err(Error::Shutdown);
        }
        *order += 1;
        Ok(future)
    }

    /// Waits until task `seq` has reached the server (or failed to).
    fn wait_sent(&self, seq: u64) {
        let mut sent = lock(&self.sent);
        while *sent <= seq {
            sent = match self.sent_cv.wait(sent) {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
    }

    /// Runs the cancel script: 1 cancelled while queued, 2 stopping on its worker, 3 already
    /// cancelled, 4 running and left alone, 0 finished.
    fn cancel_on_server(&self, seq: u64, id: &str, running_too: bool) -> Result<i64, Error> {
        self.wait_sent(seq);
        let mut invocation = self.cancel.prepare_invoke();
        invocation
            .arg(&self.options.prefix)
            .arg(id)
            .arg(if running_too { "1" } else { "0" });
        let never = AtomicBool::new(false);
        lock(&self.conn).retry(&never, Some(self.options.patience), |c| {
            invocation.invoke::<i64>(c)
        })
    }

    /// Marks task `seq` as running, if its future still waits.
    fn started(&self, seq: u64) {
        if let Some(pending) = lock(&self.pending).get(&seq) {
            pending.started();
        }
    }

    fn settle(&self, seq: u64, how: impl FnOnce(Box<dyn Pending>)) -> bool {
        let (pending, empty) = {
            let mut map = lock(&self.pending);
            let pending = map.remove(&seq);
            (pending, map.is_empty())
        };
        if empty {
            self.drained.notify_all();
        }
        match pending {
            Some(pending) => {
                how(pending);
                true
            }
            None => false,
        }
    }
}

/// What `Future::cancel` does for a Redis task: ask the server, atomically.
fn cancel_request(client: &Weak<Client>, seq: u64, id: &str) -> bool {
    let Some(client) = client.upgrade() else {
        return false;
    };
    match client.cancel_on_server(seq, id, true) {
        Ok(1) => {
            client.settle(seq, |pending| pending.cancel());
            true
        }
        Ok(2 | 3) => true,
        Ok(_) => false,
        Err(err) => {
            tracing::warn!(%err, task = id, "could not cancel the task on the server");
            false
        }
    }
}

/// The sender: sends queued tasks to the server in batches, one script call per batch.
fn send_tasks(client: &Arc<Client>, mut conn: Conn, outgoing: &Receiver<Outgoing>) {
    let never = AtomicBool::new(false);
    loop {
        let first = match outgoing.recv_timeout(Duration::from_millis(100)) {
            Ok(first) => first,
            Err(_) if client.stop.load(Ordering::Acquire) => return,
            Err(_) => continue,
        };
        let batch: Vec<Outgoing> = std::iter::once(first)
            .chain(outgoing.try_iter().take(511))
            .collect();
        let mut invocation = client.submit.prepare_invoke();
        invocation
            .arg(&client.options.prefix)
            .arg(&client.version)
            .arg(&client.id);
        for task in &batch {
            invocation.arg(&task.id).arg(&task.msg).arg(task.ttl_ms);
        }
        let sent = conn.retry(&never, Some(client.options.patience), |c| {
            invocation.invoke::<i64>(c)
        });
        if let Err(err) = sent {
            tracing::error!(%err, tasks = batch.len(), "could not queue tasks");
            for task in &batch {
                client.settle(task.seq, |pending| pending.complete(Err(err.clone())));
            }
        }
        if let Some(last) = batch.last() {
            *lock(&client.sent) = last.seq + 1;
            client.sent_cv.notify_all();
        }
    }
}

/// The result reader: completes futures as results arrive on this client's stream.
fn read_results(client: &Arc<Client>, mut conn: Conn) {
    let key = protocol::results_key(&client.options.prefix, &client.id);
    let prefix = format!("{}-", client.id);
    let mut last = String::from("0-0");
    while !client.stop.load(Ordering::Acquire) {
        let read = conn.retry(&client.stop, None, |c| {
            redis::cmd("XREAD")
                .arg("COUNT")
                .arg(1024)
                .arg("BLOCK")
                .arg(200)
                .arg("STREAMS")
                .arg(&key)
                .arg(&last)
                .query::<Option<StreamReadReply>>(c)
        });
        let reply = match read {
            Ok(Some(reply)) => reply,
            Ok(None) => continue,
            Err(err) => {
                if !client.stop.load(Ordering::Acquire) {
                    tracing::error!(%err, "reading results failed");
                    // Not a synchronisation: a pause before asking a failing server again.
                    std::thread::sleep(Duration::from_millis(100));
                }
                continue;
            }
        };
        for entry in reply.keys.into_iter().flat_map(|k| k.ids) {
            last.clone_from(&entry.id);
            deliver(client, &prefix, &entry);
        }
        // The results read so far are not needed again.
        let _ = conn.once(&mut |c| {
            redis::cmd("XTRIM")
                .arg(&key)
                .arg("MINID")
                .arg(&last)
                .query::<i64>(c)
        });
    }
    let _ = conn.once(&mut |c| redis::cmd("DEL").arg(&key).query::<i64>(c));
}

fn deliver(client: &Client, prefix: &str, entry: &redis::streams::StreamId) {
    let field = |name: &str| entry.get::<Vec<u8>>(name).unwrap_or_default();
    let id = String::from_utf8_lossy(&field("id")).into_owned();
    let Some(seq) = id
        .strip_prefix(prefix)
        .and_then(|seq| seq.parse::<u64>().ok())
    else {
        client.unmatched.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(entry = %entry.id, "a result names no task of this client");
        return;
    };
    let kind = String::from_utf8_lossy(&field("k")).into_owned();
    if kind == "started" {
        client.started(seq);
        return;
    }
    let attempts: u32 = String::from_utf8_lossy(&field("a")).parse().unwrap_or(0);
    let version = String::from_utf8_lossy(&field("v")).into_owned();
    let payload = field("r");
    let outcome = if version != client.version && kind != "refused" {
        Err(Error::Codec {
            message: format!(
                "the result of task {id} comes from a worker speaking version {version}; this \
                 client speaks {}: the worker runs another build",
                client.version
            ),
        })
    } else {
        match kind.as_str() {
            "ok" => Ok(payload),
            "err" => Err(match postcard::from_bytes::<WireError>(&payload) {
                Ok(err) => err.into_error(),
                Err(err) => Error::Codec {
                    message: format!("could not decode the failure of task {id}: {err}"),
                },
            }),
            "lost" => Err(Error::WorkerLost { attempts }),
            "expired" => Err(Error::Expired {
                ttl: client.options.ttl,
            }),
            "refused" => Err(Error::Codec {
                message: String::from_utf8_lossy(&payload).into_owned(),
            }),
            "cancelled" => {
                client.settle(seq, |pending| pending.cancel());
                return;
            }
            other => Err(Error::Codec {
                message: format!("unknown result kind {other:?} for task {id}"),
            }),
        }
    };
    if !client.settle(seq, |pending| pending.complete(outcome)) {
        client.unmatched.fetch_add(1, Ordering::Relaxed);
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
            client.submit_encoded(
                T::NAME,
                backend::signature::<T>(),
                true,
                backend::encode(&chunk),
                None,
                backend::decode_chunk::<T::Output>,
            )
        };
        backend::map(inputs.into_iter(), self.max_workers(), submit)
    }

    fn shutdown(&self, how: Shutdown) {
        let client = &self.client;
        client.shut.store(true, Ordering::Release);
        if how.cancels_futures() || how.kills_workers() {
            let seqs: Vec<u64> = lock(&client.pending).keys().copied().collect();
            for seq in seqs {
                let id = format!("{}-{seq}", client.id);
                match client.cancel_on_server(seq, &id, how.kills_workers()) {
                    Ok(1) => {
                        client.settle(seq, |pending| pending.cancel());
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(%err, task = id, "could not cancel at shutdown"),
                }
            }
        }
        if how.waits() {
            let mut pending = lock(&client.pending);
            while !pending.is_empty() {
                pending = match client.drained.wait(pending) {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                };
            }
        }
    }

    fn max_workers(&self) -> usize {
        self.client.options.max_workers
    }
}

impl Drop for RedisExecutor {
    fn drop(&mut self) {
        self.client.stop.store(true, Ordering::Release);
        for thread in lock(&self.threads).drain(..) {
            let _ = thread.join();
        }
    }
}

impl fmt::Debug for RedisExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisExecutor")
            .field("client", &self.client.id)
            .field("prefix", &self.client.options.prefix)
            .field("pending", &lock(&self.client.pending).len())
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

/// A name for this client, unique among the clients of a server.
fn client_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!(
        "c{:x}{:x}{:x}",
        nanos,
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
