//! What travels between a proxy and its manager's server once the connection is authenticated.
//!
//! Frames are the process pool's ([`wire`](flotilla_process::wire)): a little-endian `u32`
//! length and a postcard-encoded [`Request`] or [`Reply`], with a lower size limit
//! ([`MAX_MESSAGE`]) checked before anything is allocated. The server stores values as the
//! bytes a proxy encoded; it never decodes a user's type. The first frame on a connection is a
//! [`Request::Hello`] naming the client's session; each later request gets exactly one reply.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// Bumped whenever the messages change.
pub(crate) const VERSION: u32 = 3;

/// The largest frame either side accepts: a value (or a whole dict's items) of 64 MiB.
pub(crate) const MAX_MESSAGE: usize = 64 << 20;

/// A client's name for itself, shared by all its connections. Locks and semaphore permits
/// are held by a session, and given back when its last connection closes.
pub(crate) type Session = [u8; 16];

/// Where a manager's server listens.
///
/// Local managers listen on an abstract Unix socket (a name, no file: nothing is left behind
/// when the server dies, however it dies), which only processes of the same user and network
/// namespace can use; a manager built with [`listen`](super::ManagerBuilder::listen) listens
/// on TCP. Both require the authkey.
///
/// # Examples
///
/// ```
/// use flotilla::manager::Address;
///
/// let addr: Address = "127.0.0.1:5000".parse::<std::net::SocketAddr>()?.into();
/// assert_eq!(addr.to_string(), "127.0.0.1:5000");
/// assert_eq!(Address::Abstract("mine".to_owned()).to_string(), "unix:@mine");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Address {
    /// A Unix socket file on this machine.
    Unix(PathBuf),
    /// A TCP address.
    Tcp(SocketAddr),
    /// An abstract Unix socket on this machine (Linux), by name.
    Abstract(String),
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Address {
        Address::Tcp(addr)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(path) => write!(f, "unix:{}", path.display()),
            Address::Tcp(addr) => write!(f, "{addr}"),
            Address::Abstract(name) => write!(f, "unix:@{name}"),
        }
    }
}

/// The kinds of shared object a server holds (not part of the API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[doc(hidden)]
pub enum Kind {
    Dict,
    List,
    Namespace,
    Queue,
    Lock,
    Event,
    Semaphore,
    Barrier,
    RLock,
    Condition,
    BoundedSemaphore,
    Value,
    Array,
    /// An object of a type registered with [`Setup::register`](super::Setup::register).
    Shared,
}

/// From a client to the server.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request<'a> {
    /// The first frame after authentication.
    Hello { version: u32, session: Session },
    /// A new object. `arg` is a queue's bound (0: none), a semaphore's value or a barrier's
    /// number of parties; `init` a value's or an array's first contents.
    Create {
        kind: Kind,
        arg: u64,
        init: Vec<ByteBuf>,
    },
    /// Publishes object `id` under `name` for other clients.
    Register { name: &'a str, id: u64 },
    /// The object published under `name`, which must be of `kind`.
    Lookup { name: &'a str, kind: Kind },
    /// An operation on object `id`.
    Op { id: u64, op: Op<'a> },
    /// Nothing but "this process is still here": renews the session's lease.
    Renew,
    /// A new object of the type registered as `typeid`, which must be the Rust type
    /// `type_name`, made from the encoded `args`.
    CreateShared {
        typeid: &'a str,
        type_name: &'a str,
        #[serde(with = "serde_bytes")]
        args: &'a [u8],
    },
}

impl Request<'_> {
    /// How long the server may wait before it replies: `None` for a request it answers at
    /// once, `Some(None)` for a wait without a time limit.
    pub(crate) fn waits(&self) -> Option<Option<Duration>> {
        let Request::Op { op, .. } = self else {
            return None;
        };
        match op {
            Op::QueuePut { wait, .. }
            | Op::QueueGet { wait }
            | Op::LockAcquire { wait }
            | Op::EventWait { wait }
            | Op::SemAcquire { wait }
            | Op::BarrierWait { wait }
            | Op::QueueJoin { wait }
            | Op::RLockAcquire { wait, .. } => Some(*wait),
            // Waits for a notification, then for the lock as long as it takes.
            Op::CondWait { .. } => Some(None),
            _ => None,
        }
    }
}

/// An operation on one object. Keys, values and items are the proxies' encodings, carried as
/// byte strings (one copy, not a sequence of `u8`s; the bytes on the wire are the same).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Op<'a> {
    DictGet {
        #[serde(with = "serde_bytes")]
        key: &'a [u8],
    },
    DictInsert {
        #[serde(with = "serde_bytes")]
        key: &'a [u8],
        #[serde(with = "serde_bytes")]
        value: &'a [u8],
    },
    DictRemove {
        #[serde(with = "serde_bytes")]
        key: &'a [u8],
    },
    DictContains {
        #[serde(with = "serde_bytes")]
        key: &'a [u8],
    },
    DictLen,
    DictKeys,
    DictValues,
    DictItems,
    DictClear,
    ListPush {
        #[serde(with = "serde_bytes")]
        value: &'a [u8],
    },
    ListGet {
        index: u64,
    },
    ListSet {
        index: u64,
        #[serde(with = "serde_bytes")]
        value: &'a [u8],
    },
    ListInsert {
        index: u64,
        #[serde(with = "serde_bytes")]
        value: &'a [u8],
    },
    ListPop,
    ListLen,
    ListAll,
    ListClear,
    NsGet {
        name: &'a str,
    },
    NsSet {
        name: &'a str,
        #[serde(with = "serde_bytes")]
        value: &'a [u8],
    },
    NsRemove {
        name: &'a str,
    },
    NsNames,
    QueuePut {
        #[serde(with = "serde_bytes")]
        item: &'a [u8],
        wait: Option<Duration>,
    },
    QueueGet {
        wait: Option<Duration>,
    },
    QueueSize,
    LockAcquire {
        wait: Option<Duration>,
    },
    LockRelease,
    LockMarkConsistent,
    EventSet,
    EventClear,
    EventIsSet,
    EventWait {
        wait: Option<Duration>,
    },
    SemAcquire {
        wait: Option<Duration>,
    },
    SemRelease,
    SemValue,
    BarrierWait {
        wait: Option<Duration>,
    },
    BarrierAbort,
    BarrierState,
    BarrierReset,
    /// Python's `d.setdefault(key, default)`: the value, inserting `value` if there was none.
    DictSetDefault {
        #[serde(with = "serde_bytes")]
        key: &'a [u8],
        #[serde(with = "serde_bytes")]
        value: &'a [u8],
    },
    DictUpdate {
        pairs: Vec<(ByteBuf, ByteBuf)>,
    },
    ListExtend {
        values: Vec<ByteBuf>,
    },
    /// The first position of `value` in `start..stop` (clamped), or `Invalid`.
    ListIndex {
        #[serde(with = "serde_bytes")]
        value: &'a [u8],
        start: u64,
        stop: u64,
    },
    ListCount {
        #[serde(with = "serde_bytes")]
        value: &'a [u8],
    },
    /// Removes the first item equal to `value`, or replies `Invalid`.
    ListRemove {
        #[serde(with = "serde_bytes")]
        value: &'a [u8],
    },
    ListPopAt {
        index: u64,
    },
    /// The items in `start..end`, clamped to the list.
    ListRange {
        start: u64,
        end: u64,
    },
    QueueTaskDone,
    QueueJoin {
        wait: Option<Duration>,
    },
    QueueShutdown {
        immediate: bool,
    },
    QueueIsShutDown,
    /// Re-entrant locks (an `RLock`'s, a `Condition`'s) are held by one thread of one
    /// session: `thread` is the client's number for the thread.
    RLockAcquire {
        wait: Option<Duration>,
        thread: u64,
    },
    RLockRelease {
        thread: u64,
    },
    RLockMarkConsistent {
        thread: u64,
    },
    /// Releases the condition's lock, waits at most `wait` for a notification, then takes
    /// the lock back (as long as that takes).
    CondWait {
        wait: Option<Duration>,
        thread: u64,
    },
    /// Wakes `n` waiters (`u64::MAX`: all).
    CondNotify {
        n: u64,
        thread: u64,
    },
    ValueGet,
    ValueSet {
        #[serde(with = "serde_bytes")]
        value: &'a [u8],
    },
    /// The id of the lock that comes with a value or an array.
    GetLock,
    /// A request for an object of a registered type, which must be the Rust type
    /// `type_name`.
    Call {
        type_name: &'a str,
        #[serde(with = "serde_bytes")]
        request: &'a [u8],
    },
}

/// From the server to a client.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The session is open; the client must be heard from at least once per `lease`.
    Ready { lease: Duration },
    /// The session named in the hello expired (it was silent for longer than its `lease`);
    /// what it held was given back. The client starts a new session.
    Expired { lease: Duration },
    /// A new object's id.
    Created(u64),
    /// The request succeeded and has nothing to return.
    Done,
    /// One value, if there was one.
    Value(#[serde(with = "serde_bytes")] Option<Vec<u8>>),
    /// Several values.
    Values(Vec<ByteBuf>),
    /// Key and value pairs.
    Pairs(Vec<(ByteBuf, ByteBuf)>),
    /// A count.
    Size(u64),
    /// A yes or no.
    Flag(bool),
    /// The wait ran out.
    TimedOut,
    /// The lock is the caller's; `owner_died` if a holder died and nobody marked it consistent.
    Acquired { owner_died: bool },
    /// The caller's arrival index at a barrier.
    Index(u64),
    /// The barrier is broken.
    Broken,
    /// A barrier's parties, parties waiting, and whether it is broken.
    BarrierState {
        parties: u64,
        waiting: u64,
        broken: bool,
    },
    /// The request is not allowed (an index out of range, releasing a lock not held); the
    /// connection goes on.
    Invalid(String),
    /// The request could not be understood; the server closes the connection.
    Refused(String),
    /// The queue is shut down: Python's `queue.ShutDown`.
    ShutDown,
    /// A condition's wait ended with its lock taken back: `notified` if it was notified
    /// rather than timed out; `owner_died` if a holder died and nobody marked it consistent.
    Waited { notified: bool, owner_died: bool },
}
