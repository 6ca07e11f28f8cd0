//! [`Queue`] and [`JoinableQueue`]: Python's `multiprocessing.Queue` and `JoinableQueue`.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::protocol::{Reply, Request, Token, VERSION, Wait};
use super::queue_error::{GetError, PutError, SendError};
use super::state::{QueueState, Stop};
use super::{broker, socket, sys};
use crate::wire::codec;
use crate::wire::refusal;
use crate::wire::{self, ReadError};
use flotilla_core::Error;
use flotilla_core::primitives::{Arc, Mutex, lock};

/// A first-in, first-out queue shared by processes: Python's `multiprocessing.Queue`.
///
/// Create it in one process, then hand clones to others as task arguments, to a
/// [`Process`](super::Process) or to a [`ProcessPoolExecutor`](crate::ProcessPoolExecutor)
/// task alike. Items are any serde type; each `put` encodes one, each `get` decodes one.
/// Blocking, timed and non-blocking forms mirror Python's `put(block, timeout)` and
/// `get(block, timeout)`; the timed and non-blocking ones hand the item back in
/// [`PutError::Full`] or report [`GetError::Empty`].
///
/// # How it works, and the trade-off
///
/// The items live in the process that created the queue. Handles there use them directly;
/// a handle decoded in another process connects to a small broker in the creating process
/// (a thread per connection, on an abstract Unix socket that only this user can use and that
/// leaves no file behind, guarded by a random token carried in the handle) and each
/// operation is one request and one reply. Abstract sockets belong to a network namespace:
/// a process in another one cannot reach the queue.
/// Python instead gives every process a pipe and a semaphore and feeds items through a
/// background thread. The broker design is simpler and makes bounds, timeouts, `qsize` and
/// `JoinableQueue::join` exact, but **the creating process must outlive every user of the
/// queue**: once it exits, other handles fail with [`Error::Disconnected`] (never a hang).
/// The queue itself lives as long as some handle to it does, anywhere, plus handles that
/// were encoded and not yet decoded.
///
/// An item removed by a `get` whose process dies before receiving it is put back at the
/// front; one that was already on its way is lost, as in Python.
///
/// # Examples
///
/// ```
/// use flotilla::process::{Process, Queue};
///
/// #[flotilla::task]
/// fn square_all(inbox: Queue<Option<u64>>, outbox: Queue<u64>) {
///     while let Some(n) = inbox.get().unwrap() {
///         outbox.put(n * n).unwrap();
///     }
/// }
///
/// let (inbox, outbox) = (Queue::new(), Queue::new());
/// let worker = Process::new(SquareAllTask, (inbox.clone(), outbox.clone())).start()?;
/// for n in 1..=3 {
///     inbox.put(Some(n))?;
/// }
/// inbox.put(None)?; // the poison pill
/// let squares: Vec<u64> = (0..3).map(|_| outbox.get()).collect::<Result<_, _>>()?;
/// assert_eq!(squares, [1, 4, 9]);
/// worker.join();
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Queue<T> {
    flavor: Flavor,
    _items: PhantomData<fn(T) -> T>,
}

#[derive(Clone)]
enum Flavor {
    /// In the creating process: the state itself.
    Local(Arc<Local>),
    /// Elsewhere: connections to the creating process's broker.
    Remote(Arc<Remote>),
}

/// One handle's hold on a queue in its own process.
struct Local(Arc<QueueState>);

impl Drop for Local {
    fn drop(&mut self) {
        if let Some(token) = self.0.release_local() {
            broker::forget(&token);
        }
    }
}

/// A queue in another process, reached through its broker.
struct Remote {
    /// The broker's abstract socket.
    name: Vec<u8>,
    token: Token,
    /// The creating process's id, for messages.
    owner: u32,
    /// The queue's bound, which never changes.
    maxsize: Option<usize>,
    /// Attached connections not in use; one per concurrent operation, at least one always,
    /// which keeps the queue alive.
    idle: Mutex<Vec<Conn>>,
}

/// A connection to a broker, and the read timeout it has.
struct Conn {
    stream: UnixStream,
    timeout: Option<Duration>,
}

/// How long past an operation's own wait a broker may take to answer: a healthy one answers
/// in microseconds, so one that takes this long is stopped or hung, and the operation fails
/// instead of hanging with it. (A wait without a time limit waits as long as it takes.)
const REPLY_GRACE: Duration = Duration::from_secs(5);

/// What a put or get that reached the queue came to.
enum Outcome<T> {
    /// It happened.
    Done(T),
    /// The queue stayed full (a put) or empty (a get) for the whole wait.
    Waited,
    /// The queue was shut down (and, for a get, is empty).
    ShutDown,
}

/// How a handle is encoded: where the broker listens and the queue's secret token.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Queue")]
struct Ticket {
    /// The name of the broker's abstract socket.
    #[serde(with = "serde_bytes")]
    name: Vec<u8>,
    token: Token,
    owner: u32,
    /// The queue's bound.
    maxsize: Option<u64>,
}

impl<T> Queue<T> {
    /// An unbounded queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::Queue::new();
    /// q.put("job".to_owned())?;
    /// assert_eq!(q.get()?, "job");
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn new() -> Queue<T> {
        Queue::with_maxsize(None)
    }

    /// A queue that holds at most `maxsize` items; `put` waits for room.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `maxsize` is 0 (Python would read that as unbounded;
    /// flotilla refuses it rather than guess: use [`new`](Queue::new)).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::Queue::bounded(2)?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// assert!(q.try_put(3).unwrap_err().is_full());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn bounded(maxsize: usize) -> Result<Queue<T>, Error> {
        if maxsize == 0 {
            return Err(Error::InvalidConfig {
                reason: "a bounded queue needs room for at least one item; use new() for an \
                         unbounded one"
                    .into(),
            });
        }
        Ok(Queue::with_maxsize(Some(maxsize)))
    }

    fn with_maxsize(maxsize: Option<usize>) -> Queue<T> {
        Queue {
            flavor: Flavor::Local(Arc::new(Local(QueueState::new(maxsize)))),
            _items: PhantomData,
        }
    }

    /// The number of items in the queue right now: Python's `qsize()`.
    ///
    /// Exact: the count is read from the queue itself, in the process that owns it, so it
    /// includes every `put` that has returned (nothing is buffered on the way, as in
    /// Python's feeder thread) and no `get` that has returned. It is stale as soon as
    /// another process acts. From another process it costs one round trip to the owner.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the creating process is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::Queue::new();
    /// q.put('a')?;
    /// q.put('b')?;
    /// assert_eq!(q.qsize()?, 2);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn qsize(&self) -> Result<usize, Error> {
        self.status().map(|(size, _)| size)
    }

    /// Whether the queue holds no items right now: Python's `empty()` (as exact as
    /// [`qsize`](Queue::qsize)).
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the creating process is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::Queue::new();
    /// assert!(q.is_empty()?);
    /// q.put(1)?;
    /// assert!(!q.is_empty()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool, Error> {
        self.qsize().map(|size| size == 0)
    }

    /// Whether the queue is bounded and holds [`maxsize`](Queue::maxsize) items right now:
    /// Python's `full()` (as exact as [`qsize`](Queue::qsize)). An unbounded queue is never
    /// full.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the creating process is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::Queue::bounded(1)?;
    /// assert!(!q.is_full()?);
    /// q.put(1)?;
    /// assert!(q.is_full()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_full(&self) -> Result<bool, Error> {
        match self.maxsize() {
            None => Ok(false),
            Some(max) => self.qsize().map(|size| size >= max),
        }
    }

    /// The bound given to [`bounded`](Queue::bounded), or `None` for an unbounded queue
    /// (Python's `maxsize`, with `None` for its `0`). Known to every handle; no round trip.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::Queue;
    ///
    /// assert_eq!(Queue::<u8>::bounded(8)?.maxsize(), Some(8));
    /// assert_eq!(Queue::<u8>::new().maxsize(), None);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn maxsize(&self) -> Option<usize> {
        match &self.flavor {
            Flavor::Local(local) => local.0.maxsize(),
            Flavor::Remote(remote) => remote.maxsize,
        }
    }

    /// Shuts the queue down, for every process that uses it: Python 3.13's
    /// `shutdown(immediate)`.
    ///
    /// From now on every put fails ([`try_put`](Queue::try_put) and
    /// [`put_timeout`](Queue::put_timeout) with [`PutError::ShutDown`], [`put`](Queue::put)
    /// with [`Error::QueueShutDown`]), and gets fail the same way once the queue is empty;
    /// puts and gets blocked in any process are woken to see it. Without `immediate`,
    /// consumers can drain what is queued. With it, the queued items are dropped at once,
    /// each counting as done for [`JoinableQueue::join`], which returns once the items
    /// already taken are marked done. Shutting down a shut-down queue again is allowed (an
    /// immediate one still empties it).
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the creating process is gone (then so is the queue).
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::{GetError, Queue};
    ///
    /// let q = Queue::new();
    /// q.put(1)?;
    /// q.shutdown(false)?;
    /// assert!(q.try_put(2).unwrap_err().is_shut_down());
    /// assert_eq!(q.get()?, 1); // what was queued still comes out
    /// assert!(matches!(q.try_get(), Err(GetError::ShutDown)));
    /// assert!(q.get().unwrap_err().is_shutdown());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn shutdown(&self, immediate: bool) -> Result<(), Error> {
        match &self.flavor {
            Flavor::Local(local) => {
                drop(local.0.shutdown(immediate));
                Ok(())
            }
            Flavor::Remote(remote) => match remote.call(&Request::Shutdown { immediate }, &[])?.0 {
                Reply::Done => Ok(()),
                other => Err(unexpected(&other)),
            },
        }
    }

    /// Whether [`shutdown`](Queue::shutdown) was called, by any process: Python's
    /// `is_shutdown`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the creating process is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::Queue::<u8>::new();
    /// assert!(!q.is_shut_down()?);
    /// q.shutdown(true)?;
    /// assert!(q.is_shut_down()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_shut_down(&self) -> Result<bool, Error> {
        self.status().map(|(_, shut_down)| shut_down)
    }

    /// Closes this handle: Python's `close()`. It is the same as dropping it, spelled out.
    ///
    /// Python's `close()` stops the handle's feeder thread once it has flushed the items put
    /// through it, `join_thread()` waits for that flush, and `cancel_join_thread()` lets the
    /// process exit without it (losing the items). flotilla has no feeder thread and
    /// buffers nothing: a `put` returns only once its item is in the queue, in the owning
    /// process. So there is nothing to flush, wait for or cancel, and flotilla has no
    /// `join_thread` or `cancel_join_thread`. What `close` releases is this handle's
    /// connections to the owner (in another process) or its hold on the queue (in the
    /// owner); the queue lives on while any handle, anywhere, does. Using a handle after
    /// `close` (Python's `ValueError: Queue is closed`) does not compile.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::Queue::new();
    /// let other = q.clone();
    /// q.put(1)?;
    /// q.close(); // the item is already in the queue: nothing was buffered
    /// assert_eq!(other.get()?, 1);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn close(self) {
        drop(self);
    }

    /// The number of items and whether the queue was shut down, read together.
    fn status(&self) -> Result<(usize, bool), Error> {
        match &self.flavor {
            Flavor::Local(local) => Ok(local.0.status()),
            Flavor::Remote(remote) => match remote.call(&Request::Status, &[])?.0 {
                Reply::Status { size, shut_down } => {
                    Ok((usize::try_from(size).unwrap_or(usize::MAX), shut_down))
                }
                other => Err(unexpected(&other)),
            },
        }
    }

    /// Sends encoded `item`, waiting as `wait` allows.
    fn put_bytes(&self, item: Vec<u8>, wait: Wait) -> Result<Outcome<()>, Error> {
        match &self.flavor {
            Flavor::Local(local) => match local.0.put(item, wait, None) {
                Ok(()) => Ok(Outcome::Done(())),
                Err((_, Stop::ShutDown)) => Ok(Outcome::ShutDown),
                Err((_, Stop::TimedOut | Stop::PeerGone)) => Ok(Outcome::Waited),
            },
            Flavor::Remote(remote) => match remote.call(&Request::Put { wait }, &item)?.0 {
                Reply::Done => Ok(Outcome::Done(())),
                Reply::Full => Ok(Outcome::Waited),
                Reply::ShutDown => Ok(Outcome::ShutDown),
                other => Err(unexpected(&other)),
            },
        }
    }

    /// Takes an encoded item, waiting as `wait` allows.
    fn get_bytes(&self, wait: Wait) -> Result<Outcome<Vec<u8>>, Error> {
        match &self.flavor {
            Flavor::Local(local) => match local.0.get(wait, None) {
                Ok(item) => Ok(Outcome::Done(item)),
                Err(Stop::ShutDown) => Ok(Outcome::ShutDown),
                Err(Stop::TimedOut | Stop::PeerGone) => Ok(Outcome::Waited),
            },
            Flavor::Remote(remote) => match remote.call(&Request::Get { wait }, &[])? {
                (Reply::Item, mut body, at) => {
                    body.drain(..at);
                    Ok(Outcome::Done(body))
                }
                (Reply::Empty, ..) => Ok(Outcome::Waited),
                (Reply::ShutDown, ..) => Ok(Outcome::ShutDown),
                (other, ..) => Err(unexpected(&other)),
            },
        }
    }

    fn task_done(&self) -> Result<(), Error> {
        match &self.flavor {
            Flavor::Local(local) => local
                .0
                .task_done()
                .map_err(|reason| Error::InvalidOperation { reason }),
            Flavor::Remote(remote) => match remote.call(&Request::TaskDone, &[])?.0 {
                Reply::Done => Ok(()),
                other => Err(unexpected(&other)),
            },
        }
    }

    fn join(&self) -> Result<(), Error> {
        match &self.flavor {
            Flavor::Local(local) => {
                // Without a peer the wait has no limit, so it only ends when all is done.
                let _ = local.0.wait_all_done(None);
                Ok(())
            }
            Flavor::Remote(remote) => match remote.call(&Request::Join, &[])?.0 {
                Reply::Done => Ok(()),
                other => Err(unexpected(&other)),
            },
        }
    }
}

impl<T: Serialize> Queue<T> {
    /// Adds `item`, waiting for room in a bounded queue as long as it takes.
    ///
    /// # Errors
    ///
    /// A [`SendError`] handing the item back, with [`Error::Codec`] if the item cannot be
    /// encoded (a [`Connection`](super::Connection) cannot travel through a queue) or
    /// [`Error::Disconnected`] if the creating process is gone (also when it goes while
    /// this put waits for room). `?` turns it into the [`Error`].
    ///
    /// # Blocking
    ///
    /// While a bounded queue is full.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::Queue::new();
    /// q.put(vec![1, 2])?;
    /// assert_eq!(q.get()?, [1, 2]);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn put(&self, item: T) -> Result<(), SendError<T>> {
        self.put_waiting(item, Wait::Forever)
            .map_err(|err| match err {
                PutError::Failed(item, error) => SendError { item, error },
                PutError::ShutDown(item) => SendError {
                    item,
                    error: Error::QueueShutDown,
                },
                PutError::Full(item) => SendError {
                    item,
                    error: Error::Codec {
                        message: "the queue reported full to a put without a time limit".to_owned(),
                    },
                },
            })
    }

    /// Adds `item`, waiting at most `timeout` for room: Python's `put(item, timeout=...)`.
    ///
    /// # Errors
    ///
    /// [`PutError::Full`] with the item if there was no room in time; [`PutError::Failed`]
    /// with the item and the reason (see [`put`](Queue::put)).
    ///
    /// # Blocking
    ///
    /// Up to `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = flotilla::process::Queue::bounded(1).unwrap();
    /// q.put_timeout(1, Duration::from_millis(10))?;
    /// let err = q.put_timeout(2, Duration::from_millis(10)).unwrap_err();
    /// assert_eq!(err.into_inner(), 2);
    /// # Ok::<(), flotilla::process::PutError<i32>>(())
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_waiting(item, Wait::For(timeout))
    }

    /// Adds `item` only if there is room now: Python's `put_nowait`.
    ///
    /// # Errors
    ///
    /// As [`put_timeout`](Queue::put_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::{PutError, Queue};
    ///
    /// let q = Queue::bounded(1).unwrap();
    /// assert!(q.try_put('x').is_ok());
    /// assert!(matches!(q.try_put('y'), Err(PutError::Full('y'))));
    /// ```
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_waiting(item, Wait::For(Duration::ZERO))
    }

    fn put_waiting(&self, item: T, wait: Wait) -> Result<(), PutError<T>> {
        let bytes = match codec::encode(&item, Vec::new(), &"an item for a queue") {
            Ok(bytes) => bytes,
            Err(message) => return Err(PutError::Failed(item, Error::Codec { message })),
        };
        match self.put_bytes(bytes, wait) {
            Ok(Outcome::Done(())) => Ok(()),
            Ok(Outcome::Waited) => Err(PutError::Full(item)),
            Ok(Outcome::ShutDown) => Err(PutError::ShutDown(item)),
            Err(err) => Err(PutError::Failed(item, err)),
        }
    }
}

impl<T: DeserializeOwned> Queue<T> {
    /// Removes and returns the oldest item, waiting for one as long as it takes.
    ///
    /// # Errors
    ///
    /// [`Error::Codec`] if the item cannot be decoded as a `T`, [`Error::Disconnected`] if
    /// the creating process is gone.
    ///
    /// # Blocking
    ///
    /// Until an item arrives.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::Queue::new();
    /// q.put(("a".to_owned(), 1))?;
    /// assert_eq!(q.get()?, ("a".to_owned(), 1));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn get(&self) -> Result<T, Error> {
        self.get_waiting(Wait::Forever).map_err(|err| match err {
            GetError::Failed(err) => err,
            GetError::ShutDown => Error::QueueShutDown,
            GetError::Empty => Error::Codec {
                message: "the queue reported empty to a get without a time limit".to_owned(),
            },
        })
    }

    /// Removes and returns the oldest item, waiting at most `timeout` for one: Python's
    /// `get(timeout=...)`.
    ///
    /// # Errors
    ///
    /// [`GetError::Empty`] if none arrived in time; [`GetError::Failed`] as for
    /// [`get`](Queue::get).
    ///
    /// # Blocking
    ///
    /// Up to `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = flotilla::process::Queue::<u8>::new();
    /// assert!(q.get_timeout(Duration::from_millis(10)).unwrap_err().is_empty());
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_waiting(Wait::For(timeout))
    }

    /// Removes and returns the oldest item if there is one now: Python's `get_nowait`.
    ///
    /// # Errors
    ///
    /// As [`get_timeout`](Queue::get_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::Queue::new();
    /// assert!(q.try_get().is_err());
    /// q.put(5u8)?;
    /// assert_eq!(q.try_get().unwrap(), 5);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn try_get(&self) -> Result<T, GetError> {
        self.get_waiting(Wait::For(Duration::ZERO))
    }

    fn get_waiting(&self, wait: Wait) -> Result<T, GetError> {
        match self.get_bytes(wait) {
            Ok(Outcome::Done(bytes)) => codec::decode(&bytes, &"an item from a queue")
                .map_err(|message| GetError::Failed(Error::Codec { message })),
            Ok(Outcome::Waited) => Err(GetError::Empty),
            Ok(Outcome::ShutDown) => Err(GetError::ShutDown),
            Err(err) => Err(GetError::Failed(err)),
        }
    }
}

impl<T> Default for Queue<T> {
    fn default() -> Queue<T> {
        Queue::new()
    }
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Queue<T> {
        Queue {
            flavor: self.flavor.clone(),
            _items: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let owner = match &self.flavor {
            Flavor::Local(_) => std::process::id(),
            Flavor::Remote(remote) => remote.owner,
        };
        f.debug_struct("Queue")
            .field("owner", &owner)
            .finish_non_exhaustive()
    }
}

/// Encodes a handle for another process: the broker's socket and the queue's token.
impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let ticket = match &self.flavor {
            Flavor::Local(local) => {
                let (broker, token) = broker::export(&local.0).map_err(refusal::encoding)?;
                Ticket {
                    name: broker.name().as_bytes().to_vec(),
                    token,
                    owner: std::process::id(),
                    maxsize: local.0.maxsize().map(|max| max as u64),
                }
            }
            Flavor::Remote(remote) => {
                match remote.call(&Request::Export, &[]).map(|(reply, ..)| reply) {
                    Ok(Reply::Done) => {}
                    Ok(other) => return Err(refusal::encoding(unexpected(&other))),
                    Err(err) => return Err(refusal::encoding(err)),
                }
                Ticket {
                    name: remote.name.clone(),
                    token: remote.token,
                    owner: remote.owner,
                    maxsize: remote.maxsize.map(|max| max as u64),
                }
            }
        };
        ticket.serialize(serializer)
    }
}

/// Decodes a handle: the queue itself in its creating process, a connection to its broker
/// anywhere else.
impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let ticket = Ticket::deserialize(deserializer)?;
        let flavor = if let Some(state) = (ticket.owner == std::process::id())
            .then(|| broker::running()?.find(&ticket.token))
            .flatten()
            .filter(|state| state.arrive_local())
        {
            Flavor::Local(Arc::new(Local(state)))
        } else {
            let first =
                connect(&ticket.name, &ticket.token, ticket.owner).map_err(refusal::decoding)?;
            Flavor::Remote(Arc::new(Remote {
                name: ticket.name,
                token: ticket.token,
                owner: ticket.owner,
                maxsize: ticket
                    .maxsize
                    .map(|max| usize::try_from(max).unwrap_or(usize::MAX)),
                idle: Mutex::new(vec![first]),
            }))
        };
        Ok(Queue {
            flavor,
            _items: PhantomData,
        })
    }
}

impl Remote {
    /// Sends one request on an idle connection (or a new one) and returns the reply, the
    /// reply's frame and where its payload starts in it.
    fn call(&self, request: &Request, payload: &[u8]) -> Result<(Reply, Vec<u8>, usize), Error> {
        let frame =
            wire::with_payload(request, payload).map_err(|message| Error::Codec { message })?;
        let taken = lock(&self.idle).pop();
        let mut conn = match taken {
            Some(conn) => conn,
            None => connect(&self.name, &self.token, self.owner)?,
        };
        let within = match request {
            Request::Put {
                wait: Wait::Forever,
            }
            | Request::Get {
                wait: Wait::Forever,
            } => None,
            Request::Join => None,
            Request::Put {
                wait: Wait::For(wait),
            }
            | Request::Get {
                wait: Wait::For(wait),
            } => Some(wait.saturating_add(REPLY_GRACE)),
            _ => Some(REPLY_GRACE),
        };
        if conn.timeout != within {
            conn.stream
                .set_read_timeout(within)
                .map_err(|err| gone(self.owner, &err))?;
            conn.timeout = within;
        }
        sys::send_all(conn.stream.as_fd(), &frame).map_err(|err| gone(self.owner, &err))?;
        let mut body = Vec::new();
        match wire::read_frame(&mut &conn.stream, &mut body) {
            Ok(()) => {}
            Err(ReadError::Io(err))
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Error::Disconnected {
                    reason: format!(
                        "the queue's owning process {} did not answer within {:?} (it is \
                         stopped or hung)",
                        self.owner,
                        within.unwrap_or_default()
                    ),
                });
            }
            Err(err) => return Err(gone(self.owner, &err)),
        }
        let (reply, rest) = wire::decode_head::<Reply>(&body).map_err(|err| Error::Codec {
            message: format!("a queue broker's reply: {err}"),
        })?;
        let at = body.len() - rest.len();
        match reply {
            Reply::Refused(reason) => Err(Error::Codec {
                message: format!("the queue broker refused a request: {reason}"),
            }),
            Reply::Invalid(reason) => {
                lock(&self.idle).push(conn);
                Err(Error::InvalidOperation { reason })
            }
            reply => {
                lock(&self.idle).push(conn);
                Ok((reply, body, at))
            }
        }
    }
}

/// Opens and attaches a connection to the queue `token` at the broker's socket `name`.
fn connect(name: &[u8], token: &Token, owner: u32) -> Result<Conn, Error> {
    let stream = socket::connect(name).map_err(|err| gone(owner, &err))?;
    // The broker answers an attach at once; one that does not is stopped or hung.
    stream
        .set_read_timeout(Some(REPLY_GRACE))
        .map_err(|err| gone(owner, &err))?;
    let hello = wire::encode(&Request::Attach {
        version: VERSION,
        token: *token,
    })
    .map_err(|message| Error::Codec { message })?;
    sys::send_all(stream.as_fd(), &hello).map_err(|err| gone(owner, &err))?;
    let mut body = Vec::new();
    wire::read_frame(&mut &stream, &mut body).map_err(|err| gone(owner, &err))?;
    match wire::decode_head::<Reply>(&body) {
        Ok((Reply::Attached, _)) => Ok(Conn {
            stream,
            timeout: Some(REPLY_GRACE),
        }),
        Ok((Reply::Refused(why), _)) => Err(Error::Disconnected {
            reason: format!("the queue's broker in process {owner} refused: {why}"),
        }),
        Ok((other, _)) => Err(unexpected(&other)),
        Err(err) => Err(Error::Codec {
            message: format!("a queue broker's reply: {err}"),
        }),
    }
}

fn gone(owner: u32, err: &dyn fmt::Display) -> Error {
    Error::Disconnected {
        reason: format!("the queue's owning process {owner} cannot be reached ({err})"),
    }
}

fn unexpected(reply: &Reply) -> Error {
    Error::Codec {
        message: format!("unexpected reply from a queue broker: {reply:?}"),
    }
}

/// A [`Queue`] whose consumers say when they have processed each item, so that producers
/// can wait for all the work to be done: Python's `multiprocessing.JoinableQueue`.
///
/// It dereferences to [`Queue`] for `put`, `get` and the rest, and adds
/// [`task_done`](JoinableQueue::task_done) and [`join`](JoinableQueue::join). Every `put`
/// counts one unfinished item; every `task_done` finishes one.
///
/// # Examples
///
/// ```
/// use flotilla::process::{JoinableQueue, Process};
///
/// #[flotilla::task]
/// fn consume(jobs: JoinableQueue<Option<u32>>) {
///     while let Some(job) = jobs.get().unwrap() {
///         let _ = job * 2; // the work
///         jobs.task_done().unwrap();
///     }
///     jobs.task_done().unwrap(); // for the poison pill
/// }
///
/// let jobs = JoinableQueue::new();
/// let consumer = Process::new(ConsumeTask, jobs.clone()).start()?;
/// for job in 0..10 {
///     jobs.put(Some(job))?;
/// }
/// jobs.put(None)?;
/// jobs.join()?; // returns once every item was marked done
/// consumer.join();
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct JoinableQueue<T> {
    queue: Queue<T>,
}

impl<T> JoinableQueue<T> {
    /// An unbounded joinable queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::JoinableQueue::new();
    /// q.put(1)?;
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn new() -> JoinableQueue<T> {
        JoinableQueue {
            queue: Queue::new(),
        }
    }

    /// A joinable queue holding at most `maxsize` items.
    ///
    /// # Errors
    ///
    /// As [`Queue::bounded`]: [`Error::InvalidConfig`] if `maxsize` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::JoinableQueue::bounded(1)?;
    /// q.put(1)?;
    /// assert!(q.try_put(2).is_err());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn bounded(maxsize: usize) -> Result<JoinableQueue<T>, Error> {
        Ok(JoinableQueue {
            queue: Queue::bounded(maxsize)?,
        })
    }

    /// Marks one item taken with `get` as processed.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] if called more times than items were put (Python raises
    /// `ValueError`), [`Error::Disconnected`] if the creating process is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::JoinableQueue::new();
    /// q.put("job".to_owned())?;
    /// q.get()?;
    /// q.task_done()?;
    /// assert!(q.task_done().is_err()); // one too many
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn task_done(&self) -> Result<(), Error> {
        self.queue.task_done()
    }

    /// Waits until every item ever put has been marked done with
    /// [`task_done`](JoinableQueue::task_done).
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the creating process is gone.
    ///
    /// # Blocking
    ///
    /// Until the count of unfinished items is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::JoinableQueue::new();
    /// q.join()?; // nothing put, nothing to wait for
    /// q.put(1)?;
    /// q.get()?;
    /// q.task_done()?;
    /// q.join()?;
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn join(&self) -> Result<(), Error> {
        self.queue.join()
    }

    /// Closes this handle: Python's `close()`, the same as dropping it (see
    /// [`Queue::close`], which this handle cannot reach through `Deref` because closing
    /// consumes it).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::JoinableQueue::new();
    /// let other = q.clone();
    /// q.put(1)?;
    /// q.close();
    /// assert_eq!(other.get()?, 1);
    /// other.task_done()?;
    /// other.join()?;
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn close(self) {
        self.queue.close();
    }
}

impl<T> Deref for JoinableQueue<T> {
    type Target = Queue<T>;

    fn deref(&self) -> &Queue<T> {
        &self.queue
    }
}

impl<T> Default for JoinableQueue<T> {
    fn default() -> JoinableQueue<T> {
        JoinableQueue::new()
    }
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> JoinableQueue<T> {
        JoinableQueue {
            queue: self.queue.clone(),
        }
    }
}

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JoinableQueue").field(&self.queue).finish()
    }
}

/// Encoded like a [`Queue`].
impl<T> Serialize for JoinableQueue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.queue.serialize(serializer)
    }
}

/// Decoded like a [`Queue`].
impl<'de, T> Deserialize<'de> for JoinableQueue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Queue::deserialize(deserializer).map(|queue| JoinableQueue { queue })
    }
}
