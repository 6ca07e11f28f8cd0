//! The client's machinery behind a [`RedisExecutor`](crate::RedisExecutor): the futures that
//! wait, and the three threads that serve them — the sender (tasks to the server, in
//! batches), the reader (results back, and a watch on the server's health) and the canceller
//! (cancel requests, so that `cancel()` never waits on a stalled network).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use flotilla::{Error, Future, Promise};
use redis::streams::StreamReadReply;

use crate::conn::{Conn, Contact, transient};
use crate::decode::{Decoder, Job};
use crate::error::RedisError;
use crate::executor::{RedisBuilder, lock, millis};
use crate::protocol::{self, TaskMsg, WireError};

/// How often the reader checks the server's health and the age of waiting tasks.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// Word from the server this recent means the path to it works.
const FRESH: Duration = Duration::from_secs(1);
/// How long `cancel()` waits for the server's answer when the path to it works.
const CANCEL_WAIT: Duration = Duration::from_secs(2);
/// The client's mark on the server lives at least this long without renewal.
const MARK_AT_LEAST: Duration = Duration::from_secs(60);
/// Tasks sent in one script call, at most (a larger task goes alone).
const BATCH_TASKS: usize = 512;
const BATCH_BYTES: usize = 16 << 20;

pub(crate) struct Client {
    pub(crate) id: String,
    pub(crate) options: RedisBuilder,
    pub(crate) version: String,
    pub(crate) contact: Arc<Contact>,
    /// For `status()`.
    pub(crate) conn: Mutex<Conn>,
    submit: redis::Script,
    cancel: redis::Script,
    /// Futures waiting for a result, by task number.
    waiting: Mutex<HashMap<u64, Waiting>>,
    /// Futures taken out of `waiting` and being settled right now.
    settling: std::sync::atomic::AtomicUsize,
    /// Signalled when `waiting` becomes empty.
    drained: Condvar,
    /// The next task number; held while a task goes into `outbox`, so numbers leave in order.
    order: Mutex<u64>,
    outbox: Sender<Outgoing>,
    /// Every task numbered below this has been through the sender.
    sent: Mutex<u64>,
    sent_cv: Condvar,
    cancels: Sender<CancelRequest>,
    /// No more submits.
    pub(crate) shut: AtomicBool,
    /// `shutdown` said not to wait: `Drop` does not wait either.
    pub(crate) no_wait: AtomicBool,
    /// The executor is gone; the threads finish what is waiting and then exit by themselves.
    pub(crate) detached: AtomicBool,
    /// Stops the threads now.
    pub(crate) stop: AtomicBool,
    pub(crate) unmatched: AtomicU64,
    /// The server's limit for one value.
    limit: u64,
    /// Decodes results off the reader's thread.
    decoder: Decoder,
}

/// What one of the client's threads runs.
type ThreadBody = Box<dyn FnOnce() + Send>;

/// A future waiting for its result, and what is known of its task.
struct Waiting {
    pending: Box<dyn Pending>,
    /// The sender has tried to hand it to the server: it may have run.
    attempted: bool,
    /// When the server confirmed it queued the task.
    sent_at: Option<Instant>,
    /// A worker said it started.
    started: bool,
}

/// A task on its way to the server.
struct Outgoing {
    seq: u64,
    id: String,
    msg: Vec<u8>,
    ttl_ms: u64,
    at_most_once: bool,
}

struct CancelRequest {
    seq: u64,
    running_too: bool,
    answer: Option<Sender<Result<i64, Error>>>,
}

/// A future waiting for its result, with its result type erased. Settled once: the first
/// `complete` or `cancel` wins, later ones do nothing.
trait Pending: Send + Sync {
    fn started(&self);
    /// Decodes the result and settles the future with it; `false` if it was settled already.
    fn complete(&self, outcome: Result<Vec<u8>, Error>) -> bool;
    fn cancel(&self);
}

struct Typed<R> {
    promise: Mutex<Option<Promise<R>>>,
    decode: fn(&[u8]) -> Result<R, Error>,
}

impl<R: Send> Pending for Typed<R> {
    fn started(&self) {
        if let Some(promise) = lock(&self.promise).as_ref() {
            // `false` only if the future was cancelled meanwhile: its result will say so.
            let _ = promise.set_running();
        }
    }

    fn complete(&self, outcome: Result<Vec<u8>, Error>) -> bool {
        let decode = self.decode;
        // A result type whose `Deserialize` panics fails its own future, not the reader.
        let outcome = outcome.and_then(|bytes| {
            std::panic::catch_unwind(AssertUnwindSafe(|| decode(&bytes))).unwrap_or_else(|panic| {
                Err(Error::Codec {
                    message: format!(
                        "decoding the task's result on the client panicked: {}",
                        panic_message(&*panic)
                    ),
                })
            })
        });
        let promise = lock(&self.promise).take();
        promise.map(|promise| promise.complete(outcome)).is_some()
    }

    fn cancel(&self) {
        if let Some(promise) = lock(&self.promise).take() {
            promise.cancel();
        }
    }
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(message), _) => (*message).to_owned(),
        (None, Some(message)) => message.clone(),
        (None, None) => "<non-string panic payload>".to_owned(),
    }
}

/// What a task is submitted with, besides its arguments.
pub(crate) struct Submission<'a, R> {
    pub(crate) name: &'a str,
    pub(crate) signature: u64,
    pub(crate) chunk: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) decode: fn(&[u8]) -> Result<R, Error>,
}

impl Client {
    /// Connects and starts the three threads.
    pub(crate) fn start(
        options: RedisBuilder,
    ) -> Result<(Arc<Client>, Vec<JoinHandle<()>>), Error> {
        let contact = Contact::new();
        let mut conn = Conn::open(&options.url)?;
        conn.tell(&contact);
        crate::executor::ensure_group(&mut conn, &options.prefix)?;
        let limit = conn.bulk_limit();
        let id = client_id();
        mark(&mut conn, &options, &id)?;
        let reader_conn = conn.another()?;
        let sender_conn = conn.another()?;
        let canceller_conn = conn.another()?;
        let (outbox, outgoing) = crossbeam_channel::unbounded();
        let (cancels, requests) = crossbeam_channel::unbounded();
        let decoder = Decoder::start(options.decode_limit).map_err(|err| Error::Io {
            reason: format!("could not start the thread flotilla-redis-decode: {err}"),
        })?;
        let client = Arc::new(Client {
            id,
            version: protocol::version(),
            contact,
            conn: Mutex::new(conn),
            submit: redis::Script::new(protocol::SUBMIT),
            cancel: redis::Script::new(protocol::CANCEL),
            waiting: Mutex::new(HashMap::new()),
            settling: std::sync::atomic::AtomicUsize::new(0),
            drained: Condvar::new(),
            order: Mutex::new(1),
            outbox,
            sent: Mutex::new(1),
            sent_cv: Condvar::new(),
            cancels,
            shut: AtomicBool::new(false),
            no_wait: AtomicBool::new(false),
            detached: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            unmatched: AtomicU64::new(0),
            limit,
            decoder,
            options,
        });
        let mut threads = Vec::new();
        let bodies: [(&str, ThreadBody); 3] = [
            ("flotilla-redis-results", {
                let client = Arc::clone(&client);
                Box::new(move || read_results(&client, reader_conn))
            }),
            ("flotilla-redis-submit", {
                let client = Arc::clone(&client);
                Box::new(move || send_tasks(&client, sender_conn, &outgoing))
            }),
            ("flotilla-redis-cancel", {
                let client = Arc::clone(&client);
                Box::new(move || send_cancels(&client, canceller_conn, &requests))
            }),
        ];
        for (name, body) in bodies {
            let spawned = std::thread::Builder::new().name(name.into()).spawn(body);
            match spawned {
                Ok(thread) => threads.push(thread),
                Err(err) => {
                    client.stop.store(true, Ordering::Release);
                    for thread in threads {
                        let _ = thread.join();
                    }
                    return Err(Error::Io {
                        reason: format!("could not start the thread {name}: {err}"),
                    });
                }
            }
        }
        Ok((client, threads))
    }

    /// Queues one encoded task and returns its future.
    pub(crate) fn submit_encoded<R: Send + 'static>(
        self: &Arc<Self>,
        task: Submission<'_, R>,
        args: Result<Vec<u8>, Error>,
    ) -> Result<Future<R>, Error> {
        if self.shut.load(Ordering::Acquire) {
            return Err(Error::Shutdown);
        }
        let promise = Promise::new();
        let future = promise.future();
        let options = &self.options;
        let ttl_ms = millis(options.ttl);
        let encoded = args.and_then(|args| {
            let msg = TaskMsg {
                name: task.name.to_owned(),
                signature: task.signature,
                chunk: task.chunk,
                timeout_ms: task.timeout.or(options.task_timeout).map(millis),
                max_attempts: options.max_retries.saturating_add(1),
                ttl_ms,
                args,
            };
            postcard::to_allocvec(&msg).map_err(|err| Error::Codec {
                message: format!("could not encode task `{}`: {err}", task.name),
            })
        });
        let msg = match encoded {
            Ok(msg) if msg.len() as u64 > self.limit => {
                promise.complete(Err(RedisError::ArgumentsTooLarge {
                    size: msg.len() as u64,
                    limit: self.limit,
                }
                .into()));
                return Ok(future);
            }
            Ok(msg) => msg,
            Err(err) => {
                promise.complete(Err(err));
                return Ok(future);
            }
        };
        let mut order = lock(&self.order);
        let seq = *order;
        let id = self.task_id(seq);
        let weak = Arc::downgrade(self);
        promise.on_cancel_request(move || cancel_request(&weak, seq));
        let decode = task.decode;
        lock(&self.waiting).insert(
            seq,
            Waiting {
                pending: Box::new(Typed {
                    promise: Mutex::new(Some(promise)),
                    decode,
                }),
                attempted: false,
                sent_at: None,
                started: false,
            },
        );
        let outgoing = Outgoing {
            seq,
            id,
            msg,
            ttl_ms,
            at_most_once: options.max_retries == 0,
        };
        if self.outbox.send(outgoing).is_err() {
            drop(order);
            self.settle(seq, |pending| {
                pending.complete(Err(Error::Shutdown));
            });
            return Err(Error::Shutdown);
        }
        *order += 1;
        Ok(future)
    }

    fn task_id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.id)
    }

    /// Removes task `seq` from the waiting futures and settles it with `how`; `false` if it
    /// was not waiting.
    fn settle(&self, seq: u64, how: impl FnOnce(Box<dyn Pending>)) -> bool {
        match self.take(seq) {
            Some(pending) => {
                how(pending);
                self.settled(1);
                true
            }
            None => false,
        }
    }

    /// Removes task `seq` from the waiting futures, counted as settling until
    /// [`settled`](Self::settled) is called for it.
    fn take(&self, seq: u64) -> Option<Box<dyn Pending>> {
        let mut map = lock(&self.waiting);
        let waiting = map.remove(&seq)?;
        self.settling.fetch_add(1, Ordering::AcqRel);
        Some(waiting.pending)
    }

    /// `n` futures taken out of `waiting` are settled: wakes `wait_drained` if that was all.
    fn settled(&self, n: usize) {
        let map = lock(&self.waiting);
        if self.settling.fetch_sub(n, Ordering::AcqRel) == n && map.is_empty() {
            self.drained.notify_all();
        }
    }

    /// Fails every waiting future for which `why` gives an error.
    fn fail_where(&self, why: impl Fn(u64, &Waiting) -> Option<Error>) {
        let failed: Vec<(Box<dyn Pending>, Error)> = {
            let mut map = lock(&self.waiting);
            let seqs: Vec<(u64, Error)> = map
                .iter()
                .filter_map(|(seq, waiting)| why(*seq, waiting).map(|err| (*seq, err)))
                .collect();
            let failed: Vec<_> = seqs
                .into_iter()
                .filter_map(|(seq, err)| map.remove(&seq).map(|w| (w.pending, err)))
                .collect();
            self.settling.fetch_add(failed.len(), Ordering::AcqRel);
            failed
        };
        let n = failed.len();
        for (pending, err) in failed {
            let _ = pending.complete(Err(err));
        }
        if n > 0 {
            self.settled(n);
        }
    }

    /// Fails every waiting future: the server has not answered for `silent_for`.
    fn fail_all_lost(&self, silent_for: Duration) {
        self.fail_where(|_, waiting| {
            Some(
                RedisError::LostContact {
                    silent_for,
                    reached_server: waiting.attempted,
                    started: waiting.started,
                }
                .into(),
            )
        });
    }

    pub(crate) fn waiting_count(&self) -> usize {
        lock(&self.waiting).len()
    }

    fn is_waiting(&self, seq: u64) -> bool {
        lock(&self.waiting).contains_key(&seq)
    }

    /// True when the threads may end: told to stop, or left alone with nothing to do.
    fn finished(&self) -> bool {
        self.stop.load(Ordering::Acquire)
            || (self.detached.load(Ordering::Acquire)
                && lock(&self.waiting).is_empty()
                && self.settling.load(Ordering::Acquire) == 0)
    }

    /// Blocks until every waiting future has settled, or the server has been silent for the
    /// reconnect timeout (the rest then fail with [`RedisError::LostContact`]).
    pub(crate) fn wait_drained(&self) {
        let mut waiting = lock(&self.waiting);
        while !waiting.is_empty() || self.settling.load(Ordering::Acquire) > 0 {
            let silent_for = self.contact.silent_for();
            if silent_for >= self.options.patience {
                drop(waiting);
                self.fail_all_lost(silent_for);
                return;
            }
            waiting = match self
                .drained
                .wait_timeout(waiting, Duration::from_millis(100))
            {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Asks the canceller to cancel every waiting task; `running_too` stops running ones.
    pub(crate) fn cancel_all(&self, running_too: bool) {
        let seqs: Vec<u64> = lock(&self.waiting).keys().copied().collect();
        for seq in seqs {
            let _ = self.cancels.send(CancelRequest {
                seq,
                running_too,
                answer: None,
            });
        }
    }

    /// Waits until task `seq` has been through the sender, or nobody waits for it any more.
    fn wait_sent(&self, seq: u64) {
        let mut sent = lock(&self.sent);
        while *sent <= seq && !self.stop.load(Ordering::Acquire) {
            if !self.is_waiting(seq) {
                return;
            }
            sent = match self.sent_cv.wait_timeout(sent, Duration::from_millis(100)) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    fn mark_sent_through(&self, seq: u64) {
        let mut sent = lock(&self.sent);
        *sent = (*sent).max(seq + 1);
        self.sent_cv.notify_all();
    }
}

/// Writes (or renews) this client's mark on the server; `true` if it was still there.
fn mark(conn: &mut Conn, options: &RedisBuilder, id: &str) -> Result<bool, Error> {
    let key = protocol::client_key(&options.prefix, id);
    // Kept through short silences even with a tiny TTL: only a server that lost its data
    // loses it while the client watches.
    let ttl = millis(options.ttl.max(MARK_AT_LEAST));
    conn.once(&mut |c| {
        redis::cmd("SET")
            .arg(&key)
            .arg(1)
            .arg("PX")
            .arg(ttl)
            .arg("GET")
            .query::<Option<String>>(c)
    })
    .map(|old| old.is_some())
    .map_err(|err| conn.error(&err))
}

/// What `Future::cancel` does for a Redis task: asks the server, but waits for its answer only
/// briefly, and not at all while the path to it is known to be down.
fn cancel_request(client: &Weak<Client>, seq: u64) -> bool {
    let Some(client) = client.upgrade() else {
        return false;
    };
    let (tx, rx) = crossbeam_channel::bounded(1);
    let request = CancelRequest {
        seq,
        running_too: true,
        answer: Some(tx),
    };
    if client.cancels.send(request).is_err() {
        return false;
    }
    let patience = if client.contact.silent_for() < FRESH {
        CANCEL_WAIT
    } else {
        Duration::ZERO
    };
    match rx.recv_timeout(patience) {
        Ok(Ok(1)) => {
            client.settle(seq, |pending| pending.cancel());
            true
        }
        Ok(Ok(2 | 3)) => true,
        Ok(Ok(_)) => false,
        Ok(Err(err)) => {
            tracing::warn!(%err, seq, "the server refused to cancel the task");
            false
        }
        // No answer yet: the future is cancelled here and now; the request reaches the server
        // when it can, and stops the task there (whatever result comes is dropped).
        Err(_) => true,
    }
}

/// The canceller: runs cancel requests on the server, one after another, retrying through
/// outages while the task's future still waits.
fn send_cancels(client: &Arc<Client>, mut conn: Conn, requests: &Receiver<CancelRequest>) {
    loop {
        let request = match requests.recv_timeout(Duration::from_millis(100)) {
            Ok(request) => request,
            Err(_) if client.finished() => return,
            Err(_) => continue,
        };
        client.wait_sent(request.seq);
        let id = client.task_id(request.seq);
        let mut invocation = client.cancel.prepare_invoke();
        invocation
            .arg(&client.options.prefix)
            .arg(&id)
            .arg(if request.running_too { "1" } else { "0" });
        let mut pause = Duration::from_millis(5);
        let answer = loop {
            if !client.is_waiting(request.seq) {
                break Ok(0);
            }
            match conn.once(&mut |c| invocation.invoke::<i64>(c)) {
                Ok(answer) => break Ok(answer),
                Err(err) if transient(&err) && !client.stop.load(Ordering::Acquire) => {
                    // Backing off between reconnects to a server that does not answer.
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(err) => break Err(conn.error(&err)),
            }
        };
        if let Ok(1) = answer {
            client.settle(request.seq, |pending| pending.cancel());
        }
        if let Some(tx) = request.answer {
            let _ = tx.send(answer);
        }
    }
}

/// The sender: sends queued tasks to the server in batches, one script call per batch.
fn send_tasks(client: &Arc<Client>, mut conn: Conn, outgoing: &Receiver<Outgoing>) {
    loop {
        let first = match outgoing.recv_timeout(Duration::from_millis(100)) {
            Ok(first) => first,
            Err(_) if client.finished() => return,
            Err(_) => continue,
        };
        let mut bytes = first.msg.len();
        let mut batch = vec![first];
        while batch.len() < BATCH_TASKS && bytes < BATCH_BYTES {
            match outgoing.try_recv() {
                Ok(task) => {
                    bytes += task.msg.len();
                    batch.push(task);
                }
                Err(_) => break,
            }
        }
        let last = batch.last().map_or(0, |task| task.seq);
        {
            let mut waiting = lock(&client.waiting);
            for task in &batch {
                if let Some(entry) = waiting.get_mut(&task.seq) {
                    entry.attempted = true;
                }
            }
        }
        send_batch(client, &mut conn, batch);
        client.mark_sent_through(last);
    }
}

/// Sends one batch, retrying through outages for as long as its futures wait. The submit
/// script is idempotent, so a retry after a lost reply queues nothing twice, unless the
/// server restarted in between: at-most-once tasks are then failed instead of sent again.
fn send_batch(client: &Client, conn: &mut Conn, mut batch: Vec<Outgoing>) {
    let mut server = conn.run_id().map(str::to_owned);
    let mut pause = Duration::from_millis(5);
    loop {
        batch.retain(|task| client.is_waiting(task.seq));
        if batch.is_empty() {
            return;
        }
        let mut invocation = client.submit.prepare_invoke();
        invocation
            .arg(&client.options.prefix)
            .arg(&client.version)
            .arg(&client.id);
        for task in &batch {
            invocation.arg(&task.id).arg(&task.msg).arg(task.ttl_ms);
        }
        match conn.once(&mut |c| invocation.invoke::<i64>(c)) {
            Ok(_) => {
                let now = Instant::now();
                let mut waiting = lock(&client.waiting);
                for task in &batch {
                    if let Some(entry) = waiting.get_mut(&task.seq) {
                        entry.sent_at = Some(now);
                    }
                }
                return;
            }
            Err(err) if transient(&err) && !client.stop.load(Ordering::Acquire) => {
                tracing::warn!(%err, tasks = batch.len(), "queueing tasks failed; retrying");
                // Backing off between reconnects to a server that does not answer.
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(500));
                if conn.ensure().is_ok() && conn.run_id() != server.as_deref() {
                    // Another server (or the same one restarted): what the lost attempt
                    // queued is gone, and may have run there.
                    server = conn.run_id().map(str::to_owned);
                    batch.retain(|task| {
                        if task.at_most_once {
                            client.settle(task.seq, |pending| {
                                pending
                                    .complete(Err(
                                        RedisError::ServerStateLost { started: false }.into()
                                    ));
                            });
                        }
                        !task.at_most_once
                    });
                }
            }
            Err(err) => {
                let err = if transient(&err) {
                    Error::from(RedisError::LostContact {
                        silent_for: client.contact.silent_for(),
                        reached_server: true,
                        started: false,
                    })
                } else {
                    conn.error(&err)
                };
                tracing::error!(%err, tasks = batch.len(), "could not queue tasks");
                for task in &batch {
                    client.settle(task.seq, |pending| {
                        pending.complete(Err(err.clone()));
                    });
                }
                return;
            }
        }
    }
}

/// What the reader remembers between two watches of the server.
struct Watch {
    at: Instant,
    server: Option<String>,
}

/// The reader: completes futures as results arrive on this client's stream, and watches the
/// server's health.
fn read_results(client: &Arc<Client>, mut conn: Conn) {
    let key = protocol::results_key(&client.options.prefix, &client.id);
    let prefix = format!("{}-", client.id);
    let mut last = String::from("0-0");
    let mut watch = Watch {
        at: Instant::now(),
        server: conn.run_id().map(str::to_owned),
    };
    while !client.finished() {
        let read = conn.once(&mut |c| {
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
        match read {
            Ok(Some(reply)) => {
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
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(%err, "reading results failed; retrying");
                // Not a synchronisation: a pause before asking a failing server again.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        watch_server(client, &mut conn, &mut watch);
    }
    let mark = protocol::client_key(&client.options.prefix, &client.id);
    let _ = conn.once(&mut |c| redis::cmd("DEL").arg(&key).arg(&mark).query::<i64>(c));
}

/// Once a second: fails the futures that can no longer finish — the server lost their
/// state (it restarted without its data, or was flushed), their state expired, or the
/// server has been silent longer than a task's state is kept.
fn watch_server(client: &Client, conn: &mut Conn, watch: &mut Watch) {
    if watch.at.elapsed() < WATCH_EVERY {
        return;
    }
    watch.at = Instant::now();
    let silent_for = client.contact.silent_for();
    let gone = client.detached.load(Ordering::Acquire) && silent_for >= client.options.patience;
    if silent_for >= client.options.ttl || gone {
        client.fail_all_lost(silent_for);
        return;
    }
    let Ok(marked) = mark(conn, &client.options, &client.id) else {
        return;
    };
    let restarted = conn.run_id() != watch.server.as_deref();
    watch.server = conn.run_id().map(str::to_owned);
    let lost = !marked || restarted;
    let ttl = client.options.ttl;
    let suspects: Vec<u64> = lock(&client.waiting)
        .iter()
        .filter(|(_, w)| w.sent_at.is_some_and(|at| lost || at.elapsed() >= ttl))
        .map(|(seq, _)| *seq)
        .collect();
    let old = |waiting: &Waiting| waiting.sent_at.is_some_and(|at| at.elapsed() >= ttl);
    if suspects.is_empty() {
        return;
    }
    let exists = conn.once(&mut |c| {
        let mut pipe = redis::pipe();
        for seq in &suspects {
            pipe.cmd("EXISTS").arg(protocol::task_key(
                &client.options.prefix,
                &client.task_id(*seq),
            ));
        }
        pipe.query::<Vec<bool>>(c)
    });
    let Ok(exists) = exists else {
        return;
    };
    let missing: std::collections::HashSet<u64> = suspects
        .into_iter()
        .zip(exists)
        .filter(|(_, exists)| !exists)
        .map(|(seq, _)| seq)
        .collect();
    if !missing.is_empty() {
        tracing::warn!(
            tasks = missing.len(),
            lost,
            "tasks unknown to the server: failing their futures"
        );
    }
    client.fail_where(|seq, waiting| {
        missing.contains(&seq).then(|| {
            if lost && !old(waiting) {
                RedisError::ServerStateLost {
                    started: waiting.started,
                }
                .into()
            } else {
                Error::Expired { ttl }
            }
        })
    });
}

fn deliver(client: &Arc<Client>, prefix: &str, entry: &redis::streams::StreamId) {
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
        if let Some(waiting) = lock(&client.waiting).get_mut(&seq) {
            waiting.started = true;
            waiting.pending.started();
        }
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
    let Some(pending) = client.take(seq) else {
        client.unmatched.fetch_add(1, Ordering::Relaxed);
        return;
    };
    // Decoded on a thread of its own: a `Deserialize` that never returns costs only its own
    // future (failed after the decode limit), not the reader.
    let pending: Arc<dyn Pending> = Arc::from(pending);
    let (decoded, late) = (Arc::clone(&pending), Arc::clone(client));
    // Weak: a thread stuck in a `Deserialize` must not keep the client alive.
    let done = Arc::downgrade(client);
    client.decoder.decode(Job {
        run: Box::new(move || {
            if pending.complete(outcome)
                && let Some(client) = done.upgrade()
            {
                client.settled(1);
            }
        }),
        give_up: Box::new(move |why| {
            if decoded.complete(Err(Error::Codec { message: why })) {
                late.settled(1);
            }
        }),
    });
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
