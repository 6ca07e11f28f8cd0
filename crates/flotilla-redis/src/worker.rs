//! [`Worker`]: takes tasks from the stream and runs them in a local process pool.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use flotilla::backend::{self, Shape};
use flotilla::{Error, Executor, Future, ProcessPoolExecutor, Shutdown};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};

use crate::conn::{Conn, transient};
use crate::error::RedisError;
use crate::executor::{ensure_group, lock, millis};
use crate::protocol::{self, TaskMsg, WireError};

/// How often a worker says it is alive, and how long that lasts without renewal.
const HEARTBEAT: Duration = Duration::from_secs(1);
const HEARTBEAT_TTL: Duration = Duration::from_secs(5);
/// How often running tasks are checked for cancellation and takeover.
const TICK: Duration = Duration::from_millis(100);
/// Results posted in one script call, at most (a larger result goes alone).
const BATCH_RESULTS: usize = 256;
const BATCH_BYTES: usize = 16 << 20;
/// Tries to post one result before it is failed instead.
const POST_TRIES: u32 = 3;

/// A worker: the user's own program started in worker mode, on any machine that reaches the
/// Redis server. It takes tasks queued by [`RedisExecutor`](crate::RedisExecutor)s and runs
/// each in a worker process of a local [`ProcessPoolExecutor`] with
/// [`slots`](WorkerBuilder::slots) processes, so a task that crashes, times out or is cancelled
/// takes down only its own process, exactly as on one machine.
///
/// Start workers from the program's `main`, when given a flag of your choosing:
///
/// ```no_run
/// #[flotilla::task]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// fn main() -> Result<(), flotilla::Error> {
///     let url = std::env::var("REDIS_URL").unwrap_or("redis://127.0.0.1".into());
///     if std::env::args().nth(1).as_deref() == Some("worker") {
///         // Runs until the process is stopped; tasks it held are then reclaimed by others.
///         return flotilla_redis::Worker::builder(&url).slots(4).run();
///     }
///     // ... the client side: RedisExecutor::connect(&url)?, submit, map ...
///     Ok(())
/// }
/// ```
///
/// A worker holds a lease on each task it runs, renewed while the task runs. If the worker
/// dies or hangs, the lease runs out after the [`visibility_timeout`](WorkerBuilder::visibility_timeout)
/// and another worker takes the task over (Redis `XAUTOCLAIM`).
///
/// Workers of different builds can share a cluster (a rolling upgrade): a worker that does
/// not have a task, or has it with other argument or result types, never runs it; it passes
/// it on, and another worker's next takeover picks it up. Only once every live worker has
/// passed it does its future fail ([`RedisError::NoWorkerHasTask`],
/// [`RedisError::WorkerMismatch`]).
///
/// Dropping a started `Worker` without calling [`stop`](Worker::stop) leaves it serving in
/// the background until the process ends.
pub struct Worker {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// Configures a [`Worker`].
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
///
/// let worker = flotilla_redis::Worker::builder("redis://10.0.0.5")
///     .slots(8)
///     .visibility_timeout(Duration::from_secs(60))
///     .start()?;
/// worker.stop();
/// # Ok::<(), flotilla::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .start() or .run() is called"]
pub struct WorkerBuilder {
    url: String,
    prefix: String,
    slots: usize,
    prefetch: Option<usize>,
    visibility: Duration,
}

impl WorkerBuilder {
    /// The key namespace, as given to [`RedisBuilder::prefix`](crate::RedisBuilder::prefix)
    /// (default `"flotilla"`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> WorkerBuilder {
        self.prefix = prefix.into();
        self
    }

    /// How many tasks run at once, each in its own process (default: the number of CPUs).
    pub fn slots(mut self, slots: usize) -> WorkerBuilder {
        self.slots = slots;
        self
    }

    /// How many tasks the worker holds beyond its slots, so a slot that frees up starts the
    /// next task without a round trip (default: four times the slots, like Celery).
    pub fn prefetch(mut self, tasks: usize) -> WorkerBuilder {
        self.prefetch = Some(tasks);
        self
    }

    /// How long a task's lease lasts without renewal: after this, a task held by a dead or
    /// hung worker is taken over by another (default 30 s). Leases are renewed every third of
    /// this while tasks run.
    pub fn visibility_timeout(mut self, timeout: Duration) -> WorkerBuilder {
        self.visibility = timeout;
        self
    }

    /// Connects and starts taking tasks in background threads.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for zero slots, a visibility timeout under 100 ms or a bad
    /// URL; [`Error::Io`] or [`Error::Disconnected`] if the server cannot be reached.
    pub fn start(self) -> Result<Worker, Error> {
        if self.slots == 0 {
            return Err(Error::InvalidConfig {
                reason: "a worker needs at least one slot".into(),
            });
        }
        if self.visibility < Duration::from_millis(100) {
            return Err(Error::InvalidConfig {
                reason: "the visibility timeout must be at least 100 ms".into(),
            });
        }
        let mut conn = Conn::open(&self.url)?;
        ensure_group(&mut conn, &self.prefix)?;
        let bulk_limit = conn.bulk_limit();
        let finisher_conn = conn.another()?;
        let ticker_conn = conn.another()?;
        let pool = ProcessPoolExecutor::builder()
            .max_workers(self.slots)
            .build()?;
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let (freed_tx, freed_rx) = crossbeam_channel::bounded(1);
        let shared = Arc::new(Shared {
            id: worker_id(),
            limit: self.slots + self.prefetch.unwrap_or(4 * self.slots),
            pool,
            running: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            done_tx,
            freed_tx,
            stop: AtomicBool::new(false),
            version: protocol::version(),
            claims: AtomicU64::new(0),
            bulk_limit,
            claim: redis::Script::new(&protocol::claim_script()),
            finish: redis::Script::new(&protocol::finish_script()),
            refuse: redis::Script::new(&protocol::refuse_script()),
            pass: redis::Script::new(&protocol::pass_script()),
            options: self,
        });
        let spawn = |name: &str, body: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(body)
                .map_err(|err| Error::Io {
                    reason: format!("could not start a worker thread: {err}"),
                })
        };
        let threads = vec![
            spawn("flotilla-redis-take", {
                let shared = Arc::clone(&shared);
                Box::new(move || take_tasks(&shared, conn, &freed_rx))
            })?,
            spawn("flotilla-redis-finish", {
                let shared = Arc::clone(&shared);
                Box::new(move || finish_tasks(&shared, finisher_conn, &done_rx))
            })?,
            spawn("flotilla-redis-lease", {
                let shared = Arc::clone(&shared);
                Box::new(move || keep_leases(&shared, ticker_conn))
            })?,
        ];
        Ok(Worker { shared, threads })
    }

    /// Starts the worker and serves tasks until the process ends.
    ///
    /// # Errors
    ///
    /// As [`start`](WorkerBuilder::start); once started it does not return.
    pub fn run(self) -> Result<(), Error> {
        let worker = self.start()?;
        for thread in worker.threads {
            let _ = thread.join();
        }
        Ok(())
    }
}

impl Worker {
    /// Starts configuring a worker for the Redis server at `url` (the URL forms of
    /// [`RedisExecutor::connect`](crate::RedisExecutor::connect)).
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = flotilla_redis::Worker::builder("redis://127.0.0.1").slots(2);
    /// # drop(builder);
    /// ```
    pub fn builder(url: &str) -> WorkerBuilder {
        WorkerBuilder {
            url: url.to_owned(),
            prefix: "flotilla".into(),
            slots: flotilla::cpu_count(),
            prefetch: None,
            visibility: Duration::from_secs(30),
        }
    }

    /// This worker's name, as [`Status`](crate::Status) lists it.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let worker = flotilla_redis::Worker::builder("redis://127.0.0.1").start()?;
    /// println!("{}", worker.id());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Stops taking tasks, finishes and reports the ones it holds, and returns.
    ///
    /// # Blocking
    ///
    /// Until the tasks this worker holds have finished.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let worker = flotilla_redis::Worker::builder("redis://127.0.0.1").start()?;
    /// worker.stop();
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn stop(self) {
        self.shared.stop.store(true, Ordering::Release);
        for thread in self.threads {
            let _ = thread.join();
        }
        self.shared.pool.shutdown(Shutdown::new());
    }
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.shared.id)
            .field("slots", &self.shared.options.slots)
            .field("in_flight", &self.shared.in_flight.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

struct Shared {
    id: String,
    /// Tasks held at most: running plus prefetched.
    limit: usize,
    pool: ProcessPoolExecutor,
    /// Tasks held, by task id.
    running: Mutex<HashMap<String, Held>>,
    in_flight: AtomicUsize,
    done_tx: Sender<Done>,
    /// Wakes the taker when a task finishes and it was full.
    freed_tx: Sender<()>,
    stop: AtomicBool,
    version: String,
    /// Numbers this worker's claims, so that a claim retried after a lost reply is known.
    claims: AtomicU64,
    /// The server's limit for one value: a larger result fails its task.
    bulk_limit: u64,
    claim: redis::Script,
    finish: redis::Script,
    refuse: redis::Script,
    pass: redis::Script,
    options: WorkerBuilder,
}

/// A task this worker holds.
struct Held {
    entry: String,
    attempt: u32,
    /// How long its state is kept on the server, renewed while it runs.
    keep_ms: u64,
    future: Option<Future<Vec<u8>>>,
}

impl Shared {
    /// An invocation of `script` with the arguments every claim and finish starts with:
    /// prefix, this worker, version.
    /// How long a task's state is kept on the server while this worker may hold it: its
    /// TTL, but at least three leases, so that a task whose worker died is taken over before
    /// its state expires.
    fn keep_ms(&self, ttl_ms: u64) -> u64 {
        ttl_ms.max(3 * millis(self.options.visibility))
    }

    fn invoke<'a>(&'a self, script: &'a redis::Script) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation
            .arg(&self.options.prefix)
            .arg(&self.id)
            .arg(&self.version);
        invocation
    }
}

/// A held task as the lease keeper sees it: id, entry, attempt, how long to keep its state,
/// and its local future.
type Snapshot = (String, String, u32, u64, Option<Future<Vec<u8>>>);

/// A finished task on its way to the finisher.
struct Done {
    id: String,
    entry: String,
    attempt: u32,
    ttl_ms: u64,
    outcome: Result<Vec<u8>, Error>,
}

/// An entry read from the stream and decoded.
struct Delivered {
    id: String,
    entry: String,
    msg: TaskMsg,
}

/// The taker: reads new entries (and, now and then, abandoned ones) and starts them.
fn take_tasks(shared: &Arc<Shared>, mut conn: Conn, freed: &Receiver<()>) {
    let key = protocol::tasks_key(&shared.options.prefix);
    let reclaim_every = shared.options.visibility / 2;
    let mut last_reclaim: Option<Instant> = None;
    let mut cursor = String::from("0-0");
    while !shared.stop.load(Ordering::Acquire) {
        let free = shared
            .limit
            .saturating_sub(shared.in_flight.load(Ordering::Acquire));
        if free == 0 {
            let _ = freed.recv_timeout(TICK);
            continue;
        }
        let mut entries = Vec::new();
        if last_reclaim.is_none_or(|at| at.elapsed() >= reclaim_every) {
            last_reclaim = Some(Instant::now());
            let claimed = conn.retry(&shared.stop, None, |c| {
                redis::cmd("XAUTOCLAIM")
                    .arg(&key)
                    .arg(protocol::GROUP)
                    .arg(&shared.id)
                    .arg(crate::executor::millis(shared.options.visibility))
                    .arg(&cursor)
                    .arg("COUNT")
                    .arg(free)
                    .query::<StreamAutoClaimReply>(c)
            });
            match claimed {
                Ok(reply) => {
                    if !reply.claimed.is_empty() {
                        tracing::debug!(worker = %shared.id, entries = reply.claimed.len(), "taking over entries");
                    }
                    cursor = reply.next_stream_id;
                    if cursor != "0-0" {
                        // More to look at: come back at once.
                        last_reclaim = None;
                    }
                    entries = reply.claimed;
                }
                Err(err) => report(shared, &mut conn, &err),
            }
        }
        if entries.is_empty() {
            let read = conn.retry(&shared.stop, None, |c| {
                redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(protocol::GROUP)
                    .arg(&shared.id)
                    .arg("COUNT")
                    .arg(free)
                    .arg("BLOCK")
                    .arg(TICK.as_millis() as u64 * 2)
                    .arg("STREAMS")
                    .arg(&key)
                    .arg(">")
                    .query::<Option<StreamReadReply>>(c)
            });
            match read {
                Ok(Some(reply)) => entries = reply.keys.into_iter().flat_map(|k| k.ids).collect(),
                Ok(None) => {}
                Err(err) => report(shared, &mut conn, &err),
            }
        }
        // A task passed on: the next takeover is left to the others (who look every half
        // lease) before this worker looks again.
        if !entries.is_empty() && start_entries(shared, &mut conn, entries) {
            last_reclaim = Some(Instant::now() + reclaim_every);
        }
    }
}

/// Logs a failed read; recreates the consumer group if the server lost it.
fn report(shared: &Shared, conn: &mut Conn, err: &Error) {
    if shared.stop.load(Ordering::Acquire) {
        return;
    }
    if err.to_string().contains("NOGROUP") {
        tracing::warn!(
            "the task stream's consumer group is gone (server restarted without its data?); recreating it"
        );
        if let Err(err) = ensure_group(conn, &shared.options.prefix) {
            tracing::error!(%err, "could not recreate the consumer group");
        }
        return;
    }
    tracing::error!(%err, "reading tasks failed");
    // A pause before asking a failing server again; not a synchronisation.
    std::thread::sleep(TICK);
}

/// What to do with an entry read from the stream.
enum Decision {
    Run(Delivered),
    /// Retire it, telling its client (if `id` names a task) with a result of `kind`.
    Refuse {
        id: String,
        kind: &'static str,
        payload: Vec<u8>,
        why: String,
    },
    /// This worker does not have the task (or has another build of it): leave it to the
    /// workers that do; `failure` is what its client hears if none has it.
    Pass {
        id: String,
        failure: RedisError,
        ttl_ms: u64,
    },
}

/// Decodes, claims and starts a batch of entries; `true` if it passed one on.
fn start_entries(shared: &Arc<Shared>, conn: &mut Conn, entries: Vec<StreamId>) -> bool {
    let mut good = Vec::with_capacity(entries.len());
    let mut passed = false;
    // Read once per batch, when the first entry is passed on.
    let mut live: Option<Option<Vec<String>>> = None;
    for entry in entries {
        match decide(shared, &entry) {
            Decision::Run(delivered) => good.push(delivered),
            Decision::Refuse {
                id,
                kind,
                payload,
                why,
            } => {
                tracing::warn!(entry = %entry.id, %why, "refusing a task entry");
                let mut invocation = shared.refuse.prepare_invoke();
                invocation
                    .arg(&shared.options.prefix)
                    .arg(&shared.version)
                    .arg(&entry.id)
                    .arg(id)
                    .arg(kind)
                    .arg(payload)
                    .arg(millis(Duration::from_secs(24 * 3600)));
                if let Err(err) = conn.retry(&shared.stop, None, |c| invocation.invoke::<i64>(c)) {
                    tracing::error!(%err, "could not retire a malformed entry");
                }
            }
            Decision::Pass {
                id,
                failure,
                ttl_ms,
            } => {
                let prefix = &shared.options.prefix;
                let live = live.get_or_insert_with(|| {
                    conn.once(&mut |c| protocol::live_workers(c, prefix)).ok()
                });
                pass(
                    shared,
                    conn,
                    &entry.id,
                    &id,
                    failure,
                    ttl_ms,
                    live.as_deref(),
                );
                passed = true;
            }
        }
    }
    if good.is_empty() {
        return passed;
    }
    let token = format!(
        "{}:{}",
        shared.id,
        shared.claims.fetch_add(1, Ordering::Relaxed)
    );
    let mut invocation = shared.invoke(&shared.claim);
    invocation.arg(&token);
    for task in &good {
        invocation
            .arg(&task.id)
            .arg(&task.entry)
            .arg(task.msg.max_attempts)
            .arg(shared.keep_ms(task.msg.ttl_ms));
    }
    // Retried with the same token: a claim whose reply was lost is answered again, not
    // counted twice.
    let attempts = match conn.retry(&shared.stop, None, |c| invocation.invoke::<Vec<i64>>(c)) {
        Ok(attempts) => attempts,
        Err(err) => {
            // Left in this worker's pending list: its lease runs out and it is reclaimed.
            tracing::error!(%err, "could not claim tasks");
            return passed;
        }
    };
    for (task, attempt) in good.into_iter().zip(attempts) {
        if attempt > 0 {
            start(shared, task, attempt as u32);
        }
    }
    passed
}

/// Leaves an entry this worker cannot run to the others (see [`protocol::pass_script`]):
/// any other worker's next takeover picks it up; once every live worker (of `live`, or never
/// if the heartbeats could not be read) has passed it, its client is told.
fn pass(
    shared: &Shared,
    conn: &mut Conn,
    entry: &str,
    id: &str,
    failure: RedisError,
    ttl_ms: u64,
    live: Option<&[String]>,
) {
    let failure = match failure {
        RedisError::NoWorkerHasTask { task, .. } => RedisError::NoWorkerHasTask {
            task,
            workers: live.map_or(0, |live| live.len() as u32),
        },
        other => other,
    };
    let mismatch = matches!(failure, RedisError::WorkerMismatch { .. });
    let mut reason = vec![if mismatch { b'm' } else { b'n' }];
    reason.extend(postcard::to_allocvec(&WireError::Redis(failure.clone())).unwrap_or_default());
    let mut invocation = shared.pass.prepare_invoke();
    invocation
        .arg(&shared.options.prefix)
        .arg(&shared.version)
        .arg(&shared.id)
        .arg(entry)
        .arg(id)
        .arg(shared.keep_ms(ttl_ms))
        .arg(reason)
        .arg(if live.is_some() { "1" } else { "0" });
    for worker in live.unwrap_or_default() {
        invocation.arg(worker);
    }
    let passed = conn.retry(&shared.stop, None, |c| invocation.invoke::<i64>(c));
    tracing::debug!(worker = %shared.id, task = id, ?passed, "passing a task on");
    match passed {
        Ok(1) => tracing::warn!(task = id, %failure, "no live worker has this task; given up"),
        Ok(_) => {}
        Err(err) => tracing::error!(%err, task = id, "could not pass a task on"),
    }
}

fn decide(shared: &Shared, entry: &StreamId) -> Decision {
    let text = |name: &str| {
        entry
            .get::<Vec<u8>>(name)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    };
    let id = text("id").unwrap_or_default();
    let refuse = |id: String, why: String| Decision::Refuse {
        id,
        kind: "refused",
        payload: why.clone().into_bytes(),
        why,
    };
    let Some(version) = text("v") else {
        return refuse(
            id,
            format!("task entry {} has no version field `v`", entry.id),
        );
    };
    if version != shared.version {
        let why = format!(
            "task {id} was sent with payload version {version}, but worker {} understands \
             version {}: the client and the worker run different builds",
            shared.id, shared.version
        );
        return refuse(id, why);
    }
    if id.is_empty() {
        return refuse(id, format!("task entry {} has no task id", entry.id));
    }
    let Some(bytes) = entry.get::<Vec<u8>>("m") else {
        return refuse(
            id,
            format!("task entry {} has no message field `m`", entry.id),
        );
    };
    let msg: TaskMsg = match postcard::from_bytes(&bytes) {
        Ok(msg) => msg,
        Err(err) => {
            let why = format!(
                "task entry {} could not be decoded by worker {}: {err}",
                entry.id, shared.id
            );
            return refuse(id, why);
        }
    };
    match backend::registered_signature(&msg.name) {
        None => Decision::Pass {
            id,
            ttl_ms: msg.ttl_ms,
            failure: RedisError::NoWorkerHasTask {
                task: msg.name,
                workers: 0,
            },
        },
        Some(mine) if mine != msg.signature => Decision::Pass {
            id,
            ttl_ms: msg.ttl_ms,
            failure: RedisError::WorkerMismatch {
                task: msg.name,
                worker: shared.id.clone(),
                client_fingerprint: msg.signature,
                worker_fingerprint: mine,
            },
        },
        Some(_) => Decision::Run(Delivered {
            id,
            entry: entry.id.clone(),
            msg,
        }),
    }
}

/// Starts a claimed task in the local pool.
fn start(shared: &Arc<Shared>, task: Delivered, attempt: u32) {
    let Delivered { id, entry, msg } = task;
    let shape = if msg.chunk { Shape::Chunk } else { Shape::One };
    let timeout = msg.timeout_ms.map(Duration::from_millis);
    let keep_ms = shared.keep_ms(msg.ttl_ms);
    shared.in_flight.fetch_add(1, Ordering::AcqRel);
    let submitted = shared
        .pool
        .submit_encoded(&msg.name, shape, msg.args, timeout);
    let future = match submitted {
        Ok(future) => future,
        Err(err) => {
            lock(&shared.running).insert(
                id.clone(),
                Held {
                    entry: entry.clone(),
                    attempt,
                    keep_ms,
                    future: None,
                },
            );
            let _ = shared.done_tx.send(Done {
                id,
                entry,
                attempt,
                ttl_ms: msg.ttl_ms,
                outcome: Err(err),
            });
            return;
        }
    };
    lock(&shared.running).insert(
        id.clone(),
        Held {
            entry: entry.clone(),
            attempt,
            keep_ms,
            future: Some(future.clone()),
        },
    );
    let done_tx = shared.done_tx.clone();
    let ttl_ms = msg.ttl_ms;
    future.add_done_callback(move |fut| {
        let outcome = fut.result();
        let _ = done_tx.send(Done {
            id,
            entry,
            attempt,
            ttl_ms,
            outcome,
        });
    });
}

/// The finisher: posts results in batches.
fn finish_tasks(shared: &Arc<Shared>, mut conn: Conn, done: &Receiver<Done>) {
    loop {
        let first = match done.recv_timeout(TICK) {
            Ok(first) => first,
            Err(_) => {
                if shared.stop.load(Ordering::Acquire)
                    && shared.in_flight.load(Ordering::Acquire) == 0
                {
                    return;
                }
                continue;
            }
        };
        let mut bytes = first.size();
        let mut batch = vec![first];
        while batch.len() < BATCH_RESULTS && bytes < BATCH_BYTES {
            match done.try_recv() {
                Ok(task) => {
                    bytes += task.size();
                    batch.push(task);
                }
                Err(_) => break,
            }
        }
        for task in &mut batch {
            let size = task.size() as u64;
            if task.outcome.is_ok() && size > shared.bulk_limit {
                tracing::warn!(task = %task.id, size, "a result too large for the server");
                task.outcome = Err(RedisError::ResultTooLarge {
                    size,
                    limit: shared.bulk_limit,
                }
                .into());
            }
        }
        post(shared, &mut conn, &batch);
        {
            let mut running = lock(&shared.running);
            for task in &batch {
                running.remove(&task.id);
            }
        }
        shared.in_flight.fetch_sub(batch.len(), Ordering::AcqRel);
        let _ = shared.freed_tx.try_send(());
    }
}

impl Done {
    fn size(&self) -> usize {
        self.outcome.as_ref().map_or(64, Vec::len)
    }
}

/// Posts results, retrying through outages for as long as this process lives (if it dies,
/// the lease runs out and the task runs again elsewhere). A request the server keeps refusing
/// while it answers everything else is never retried for ever: the batch is posted result by
/// result, and a result that still cannot be posted fails its own task.
fn post(shared: &Shared, conn: &mut Conn, batch: &[Done]) {
    let mut refused = 0;
    let mut pause = Duration::from_millis(5);
    loop {
        let mut invocation = shared.invoke(&shared.finish);
        for task in batch {
            // The result is borrowed, not copied: the invocation encodes its arguments at once.
            let failure;
            let (kind, payload): (&str, &[u8]) = match &task.outcome {
                Ok(bytes) => ("ok", bytes),
                Err(Error::Cancelled) => ("cancelled", &[]),
                Err(err) => {
                    failure =
                        postcard::to_allocvec(&WireError::from_error(err)).unwrap_or_default();
                    ("err", &failure)
                }
            };
            invocation
                .arg(&task.id)
                .arg(&task.entry)
                .arg(task.attempt)
                .arg(kind)
                .arg(payload)
                .arg(task.ttl_ms);
        }
        let err = match conn.once(&mut |c| invocation.invoke::<Vec<i64>>(c)) {
            Ok(_) => return,
            Err(err) => err,
        };
        // Refused: the server answered with an error, or dropped the connection while a new
        // one works at once (what it does with a value over its limit). A timeout or a server
        // out of reach is an outage: wait for it to end.
        let outage = transient(&err) && (err.is_timeout() || conn.ensure().is_err());
        if outage || (transient(&err) && refused + 1 < POST_TRIES) {
            refused += u32::from(!outage);
            tracing::warn!(%err, outage, "posting results failed; retrying");
            // Backing off between reconnects to a server that does not answer.
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(500));
            continue;
        }
        if batch.len() > 1 {
            for task in batch {
                post(shared, conn, std::slice::from_ref(task));
            }
            return;
        }
        let Some(task) = batch.first() else {
            return;
        };
        if task
            .outcome
            .as_ref()
            .is_err_and(|err| RedisError::of(err).is_some())
        {
            tracing::error!(%err, task = %task.id, "the server refuses even the failure of a task");
            return;
        }
        tracing::error!(%err, task = %task.id, "the server refuses a result; failing its task");
        let failed = Done {
            id: task.id.clone(),
            entry: task.entry.clone(),
            attempt: task.attempt,
            ttl_ms: task.ttl_ms,
            outcome: Err(RedisError::ResultRefused {
                reason: err.to_string(),
            }
            .into()),
        };
        return post(shared, conn, std::slice::from_ref(&failed));
    }
}

/// The lease keeper: heartbeats, renews leases, and stops tasks that were cancelled or taken
/// over.
fn keep_leases(shared: &Arc<Shared>, mut conn: Conn) {
    let prefix = &shared.options.prefix;
    let heartbeat_key = protocol::worker_key(prefix, &shared.id);
    let tasks_key = protocol::tasks_key(prefix);
    let renew_every = shared.options.visibility / 3;
    let mut last_beat: Option<Instant> = None;
    let mut last_renew = Instant::now();
    let (_never_tx, ticks) = crossbeam_channel::bounded::<()>(0);
    loop {
        let stopping = shared.stop.load(Ordering::Acquire);
        if stopping && shared.in_flight.load(Ordering::Acquire) == 0 {
            break;
        }
        if last_beat.is_none_or(|at| at.elapsed() >= HEARTBEAT) {
            last_beat = Some(Instant::now());
            let info = format!(
                "slots={} held={} pid={} host={}",
                shared.options.slots,
                shared.in_flight.load(Ordering::Relaxed),
                std::process::id(),
                hostname()
            );
            let _ = conn.once(&mut |c| {
                redis::cmd("SET")
                    .arg(&heartbeat_key)
                    .arg(&info)
                    .arg("PX")
                    .arg(crate::executor::millis(HEARTBEAT_TTL))
                    .query::<()>(c)
            });
        }
        let held: Vec<Snapshot> = lock(&shared.running)
            .iter()
            .map(|(id, held)| {
                (
                    id.clone(),
                    held.entry.clone(),
                    held.attempt,
                    held.keep_ms,
                    held.future.clone(),
                )
            })
            .collect();
        if !held.is_empty() {
            // Only the leases still this worker's are renewed: after a freeze or a partition,
            // the tasks taken over meanwhile are left to their new holders.
            let mine = check_held(shared, &mut conn, held);
            if !mine.is_empty() && last_renew.elapsed() >= renew_every {
                last_renew = Instant::now();
                let _ = conn.once(&mut |c| {
                    let mut cmd = redis::cmd("XCLAIM");
                    cmd.arg(&tasks_key)
                        .arg(protocol::GROUP)
                        .arg(&shared.id)
                        .arg(0);
                    for (_, entry, _, _, _) in &mine {
                        cmd.arg(entry);
                    }
                    cmd.arg("JUSTID").query::<redis::Value>(c)
                });
                // A task's state is kept while it runs, however long that is.
                let _ = conn.once(&mut |c| {
                    let mut pipe = redis::pipe();
                    for (id, _, _, keep_ms, _) in &mine {
                        pipe.cmd("PEXPIRE")
                            .arg(protocol::task_key(prefix, id))
                            .arg(*keep_ms)
                            .ignore();
                    }
                    pipe.query::<()>(c)
                });
            }
        }
        // The tick: nothing is ever sent on this channel.
        let _ = ticks.recv_timeout(TICK);
    }
    let _ = conn.once(&mut |c| redis::cmd("DEL").arg(&heartbeat_key).query::<i64>(c));
}

/// Stops held tasks whose future was cancelled or that another worker took over; returns
/// the others (all of them if their state could not be read).
fn check_held(shared: &Shared, conn: &mut Conn, held: Vec<Snapshot>) -> Vec<Snapshot> {
    let states = conn.once(&mut |c| {
        let mut pipe = redis::pipe();
        for (id, _, _, _, _) in &held {
            pipe.cmd("HMGET")
                .arg(protocol::task_key(&shared.options.prefix, id))
                .arg("status")
                .arg("worker")
                .arg("attempts");
        }
        pipe.query::<Vec<(Option<String>, Option<String>, Option<u32>)>>(c)
    });
    let Ok(states) = states else {
        return held;
    };
    let mut mine = Vec::with_capacity(held.len());
    for (task, (status, worker, attempts)) in held.into_iter().zip(states) {
        let (id, _, attempt, _, future) = &task;
        let cancelled = status.as_deref() == Some("cancelling");
        let ours = worker.as_deref() == Some(shared.id.as_str()) && attempts == Some(*attempt);
        if cancelled || !ours {
            if let Some(future) = future {
                tracing::info!(task = %id, cancelled, "stopping a task");
                future.cancel();
            }
        } else {
            mine.push(task);
        }
    }
    mine
}

fn worker_id() -> String {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{}-{}-{:x}{}",
        hostname(),
        std::process::id(),
        nanos,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "host".into())
}
