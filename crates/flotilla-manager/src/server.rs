//! The manager's server: a process holding the shared objects, serving each connection on its
//! own thread.
//!
//! [`Manager::start`](super::Manager) runs [`serve_manager`] as a daemon child process (the
//! kernel kills it when its owner dies, however the owner dies) and keeps the other end of a
//! pipe; the server serves until that pipe closes or says stop, which happens when the owner
//! drops the [`Manager`](super::Manager) or shuts it down. A local server listens on an
//! abstract socket, so nothing is left behind however it ends.
//!
//! Each connection is authenticated first ([`auth::accept`]); nothing else is read before,
//! and the [`Gate`] bounds how many such handshakes run at once. The hello that follows
//! must also arrive within [`auth::HANDSHAKE_TIMEOUT`].
//! After that a frame longer than [`MAX_MESSAGE`] or one that does not decode ends that one
//! connection with a [`Reply::Refused`], and is logged; the server and every other connection
//! go on. Values are stored as the bytes the proxies encoded: the server is type-agnostic.
//!
//! Blocking operations (a queue's `get`, a lock's `acquire`, ...) block only their own
//! connection's thread, and check every [`PEER_CHECK`] that the client is still there, so a
//! client that dies while waiting leaves nothing behind. Locks and semaphore permits belong
//! to the client's session; when its last connection closes, or when it is silent for longer
//! than its lease ([`Sessions`]), they are given back (a lock is marked so that its next
//! holder learns that a holder died).

use std::collections::{HashMap, VecDeque};
use std::io::BufReader;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::auth;
use super::gate::Gate;
use super::protocol::{Address, Kind, MAX_MESSAGE, Op, Reply, Request, Session, VERSION};
use super::sessions::{Expired, Member, Sessions};
use super::shared::{Erased, Factory, Shared};
use super::transport::{self, Listener, Stream};
use flotilla_core::primitives::{Arc, Condvar, Mutex, MutexGuard, lock};
use flotilla_process::process::Connection;
use flotilla_process::wire::{self, ReadError};

/// Each connection reads through a buffer this large, so that a small request is one system
/// call.
const READ_BUFFER: usize = 8 << 10;

/// How often a thread waiting for a client checks that the client is still connected.
const PEER_CHECK: Duration = Duration::from_millis(200);

/// What the owner tells the server to do.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Config {
    /// The shared secret every connection must prove.
    pub(crate) authkey: Vec<u8>,
    /// A TCP address to listen on; a private Unix socket when `None`.
    pub(crate) listen: Option<SocketAddr>,
    /// How long a client may stay silent before its session ends.
    pub(crate) lease: Duration,
}

/// The server's first and only message to its owner.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Started {
    /// Serving at this address.
    Listening(Address),
    /// Could not start, and why.
    Failed(String),
}

/// The manager's server process: binds, reports its address, and serves until the owner's end
/// of `owner` closes.
#[flotilla_process::task(internal, crate = flotilla_process)]
pub(crate) fn serve_manager(setup: Setup) {
    setup.serve();
}

/// A manager's server process before it serves: the [`Shared`] types it can make, Python's
/// `BaseManager.register(typeid, callable)`.
///
/// A server with types of its own is started from a task of the program's that receives the
/// `Setup`, registers the types and serves; [`ManagerBuilder::server`](super::ManagerBuilder::server)
/// names that task. The task runs in the server process (this program re-executed), so the
/// types need not be serde, only their requests and replies. Every typeid a client asks for
/// that was not registered is refused with
/// [`Error::InvalidOperation`](flotilla_core::Error::InvalidOperation); so is a typeid
/// registered for another Rust type than the client's.
///
/// # Examples
///
/// ```
/// use flotilla::manager::{Manager, Setup, Shared};
///
/// struct Log(Vec<String>);
///
/// impl Shared for Log {
///     type Args = ();
///     type Request = Option<String>; // Some: append; None: read
///     type Reply = Vec<String>;
///     fn new((): ()) -> Log {
///         Log(Vec::new())
///     }
///     fn call(&mut self, line: Option<String>) -> Vec<String> {
///         match line {
///             Some(line) => {
///                 self.0.push(line);
///                 Vec::new()
///             }
///             None => self.0.clone(),
///         }
///     }
/// }
///
/// #[flotilla::task]
/// fn log_server(setup: Setup) {
///     setup.register::<Log>("Log").serve();
/// }
///
/// let manager = Manager::builder().server(LogServerTask).start()?;
/// let log = manager.create::<Log>("Log", &())?;
/// log.call(&Some("hello".to_owned()))?;
/// assert_eq!(log.call(&None)?, ["hello"]);
/// assert!(manager.create::<Log>("Nothing", &()).is_err());
/// # Ok::<(), flotilla::Error>(())
/// ```
#[derive(Debug, Serialize, Deserialize)]
pub struct Setup {
    config: Config,
    owner: Connection<Started>,
    #[serde(skip)]
    types: HashMap<String, Factory>,
    /// A typeid registered twice, which stops the server from starting.
    #[serde(skip)]
    duplicate: Option<String>,
}

impl Setup {
    pub(crate) fn new(config: Config, owner: Connection<Started>) -> Setup {
        Setup {
            config,
            owner,
            types: HashMap::new(),
            duplicate: None,
        }
    }

    /// Lets clients make objects of type `S` under `typeid` with
    /// [`Manager::create`](super::Manager::create). A typeid registered twice makes
    /// [`ManagerBuilder::start`](super::ManagerBuilder::start) fail with
    /// [`Error::Spawn`](flotilla_core::Error::Spawn) naming it.
    ///
    /// # Examples
    ///
    /// See [`Setup`].
    pub fn register<S: Shared>(mut self, typeid: &str) -> Setup {
        if self
            .types
            .insert(typeid.to_owned(), Factory::of::<S>())
            .is_some()
        {
            self.duplicate.get_or_insert_with(|| typeid.to_owned());
        }
        self
    }

    /// Binds, tells the manager's owner where, and serves until the owner drops its
    /// [`Manager`](super::Manager) (or dies). Call it last in the server's task.
    ///
    /// # Blocking
    ///
    /// For the life of the server.
    ///
    /// # Examples
    ///
    /// See [`Setup`].
    pub fn serve(self) {
        let Setup {
            config,
            owner,
            types,
            duplicate,
        } = self;
        if let Some(typeid) = duplicate {
            let _ = owner.send(&Started::Failed(format!(
                "the typeid {typeid:?} was registered twice"
            )));
            return;
        }
        serve_with(config, &owner, types);
    }
}

fn serve_with(config: Config, owner: &Connection<Started>, types: HashMap<String, Factory>) {
    let bound = match config.listen {
        Some(addr) => transport::bind_tcp(addr),
        None => transport::bind_local(),
    };
    let (listener, address) = match bound {
        Ok(bound) => bound,
        Err(why) => {
            let _ = owner.send(&Started::Failed(why));
            return;
        }
    };
    let server = Arc::new(Server::new(config.authkey, config.lease, types));
    let expiring = Arc::clone(&server);
    let accepting = std::thread::Builder::new()
        .name("flotilla-manager-lease".to_owned())
        .spawn(move || expire(&expiring))
        .and_then(|_| {
            std::thread::Builder::new()
                .name("flotilla-manager-accept".to_owned())
                .spawn(move || accept(&server, &listener))
        });
    let report = match accepting {
        Ok(_) => Started::Listening(address),
        Err(err) => Started::Failed(format!("could not start the accepting thread: {err}")),
    };
    if owner.send(&report).is_ok() && matches!(report, Started::Listening(_)) {
        // Any message, or the pipe closing, means stop.
        let _ = flotilla_process::process::wait(&[&owner]);
    }
    // Returning ends the process, and with it every connection.
}

/// Ends silent sessions, for the life of the server.
fn expire(server: &Server) {
    loop {
        std::thread::sleep(server.sessions.check_every());
        for session in server.sessions.expire_silent() {
            tracing::warn!("manager: a client was silent for longer than its lease");
            server.release(session);
        }
    }
}

/// Accepts connections for the life of the server.
fn accept(server: &Arc<Server>, listener: &Listener) {
    loop {
        match listener.accept() {
            Ok(stream) => {
                let stream = Arc::new(stream);
                let server = Arc::clone(server);
                let spawned = std::thread::Builder::new()
                    .name("flotilla-manager-conn".to_owned())
                    .stack_size(256 * 1024)
                    .spawn(move || serve(&server, &stream));
                if let Err(err) = spawned {
                    tracing::warn!(%err, "manager: could not start a connection thread");
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
                tracing::warn!(%err, "manager: hung up on a stranger");
            }
            Err(err) => {
                // Out of descriptors, typically: back off rather than spin.
                tracing::warn!(%err, "manager: accept failed");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// The shared objects and who is connected.
#[derive(Debug)]
struct Server {
    authkey: Vec<u8>,
    /// Objects by id (their index); they live as long as the server.
    objects: Mutex<Vec<Arc<Object>>>,
    /// Published objects by name.
    names: Mutex<HashMap<String, u64>>,
    /// Who is connected, and their leases.
    sessions: Sessions,
    /// Connections not yet authenticated.
    gate: Gate,
    /// The user's types, by typeid.
    types: HashMap<String, Factory>,
}

/// One shared object: its state and a condition variable signalled on every change.
#[derive(Debug)]
struct Object {
    kind: Kind,
    body: Mutex<Body>,
    changed: Condvar,
}

#[derive(Debug)]
enum Body {
    Dict(HashMap<Vec<u8>, Vec<u8>>),
    List(Vec<Vec<u8>>),
    Namespace(HashMap<String, Vec<u8>>),
    Queue {
        items: VecDeque<Vec<u8>>,
        bound: Option<usize>,
        /// Items put and not yet marked done.
        unfinished: u64,
        shut_down: bool,
    },
    Lock {
        owner: Option<Session>,
        /// A holder died and nobody has marked the lock consistent since.
        inconsistent: bool,
    },
    Event(bool),
    Semaphore {
        value: u64,
        /// Permits taken and not released, by session.
        held: HashMap<Session, u64>,
        /// A bounded semaphore's initial value, which a release may not exceed.
        bound: Option<u64>,
    },
    Barrier {
        parties: u64,
        count: u64,
        generation: u64,
        broken: bool,
        /// Bumped by each reset, which breaks the waits in progress.
        resets: u64,
    },
    RLock(Reentrant),
    Condition {
        lock: Reentrant,
        /// Waiting for a notification, by ticket, oldest first.
        waiters: VecDeque<u64>,
        /// Notified and not yet woken.
        notified: Vec<u64>,
        next_ticket: u64,
    },
    Value {
        value: Vec<u8>,
        /// The lock that comes with it (an object of its own).
        lock: u64,
    },
    Array {
        items: Vec<Vec<u8>>,
        lock: u64,
    },
    Shared {
        /// The Rust type, which every call must name.
        type_name: &'static str,
        object: Box<dyn Erased>,
    },
}

/// Who holds a re-entrant lock: one thread (the client's number for it) of one session.
type Holder = (Session, u64);

/// A re-entrant lock's state.
#[derive(Debug, Default)]
struct Reentrant {
    owner: Option<Holder>,
    /// How many times the owner took it.
    depth: u64,
    /// A holder died and nobody has marked the lock consistent since.
    inconsistent: bool,
}

impl Body {
    fn is_reentrant(&self) -> bool {
        matches!(self, Body::RLock(_) | Body::Condition { .. })
    }

    /// The re-entrant lock of an `RLock` or a `Condition`.
    fn reentrant(&mut self) -> Option<&mut Reentrant> {
        match self {
            Body::RLock(lock) | Body::Condition { lock, .. } => Some(lock),
            _ => None,
        }
    }
}

/// Why a wait ended without its condition.
enum Stop {
    TimedOut,
    PeerGone,
}

impl Object {
    fn new(kind: Kind, body: Body) -> Object {
        Object {
            kind,
            body: Mutex::new(body),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Body> {
        lock(&self.body)
    }

    /// Waits until `ready` returns a value, for at most `wait` (forever when `None`), giving
    /// up early if `peer` disconnects.
    fn wait_for<R>(
        &self,
        wait: Option<Duration>,
        peer: &Stream,
        mut ready: impl FnMut(&mut Body) -> Option<R>,
    ) -> Result<R, Stop> {
        let deadline = wait.and_then(|wait| Instant::now().checked_add(wait));
        let mut checked = Instant::now();
        let mut body = self.lock();
        let mut waited = false;
        loop {
            // A client that died while it waited must not have its operation done for it
            // now (a put would add an item nobody will know was added).
            if waited && peer.peer_gone() {
                return Err(Stop::PeerGone);
            }
            if let Some(value) = ready(&mut body) {
                return Ok(value);
            }
            waited = true;
            let now = Instant::now();
            let slice = match deadline {
                Some(deadline) if deadline <= now => return Err(Stop::TimedOut),
                Some(deadline) => (deadline - now).min(PEER_CHECK),
                None => PEER_CHECK,
            };
            body = self
                .changed
                .wait_timeout(body, slice)
                .map(|(body, _)| body)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
            if checked.elapsed() >= PEER_CHECK {
                checked = Instant::now();
                if peer.peer_gone() {
                    return Err(Stop::PeerGone);
                }
            }
        }
    }
}

impl Server {
    fn new(authkey: Vec<u8>, lease: Duration, types: HashMap<String, Factory>) -> Server {
        Server {
            authkey,
            objects: Mutex::new(Vec::new()),
            names: Mutex::new(HashMap::new()),
            sessions: Sessions::new(lease),
            gate: Gate::default(),
            types,
        }
    }

    /// Adds an object; returns its id.
    fn add(&self, kind: Kind, body: Body) -> u64 {
        let mut objects = lock(&self.objects);
        objects.push(Arc::new(Object::new(kind, body)));
        objects.len() as u64 - 1
    }

    /// A new object of the user's type registered as `typeid`.
    fn create_shared(&self, typeid: &str, client_type: &str, args: &[u8]) -> Reply {
        let Some(factory) = self.types.get(typeid) else {
            return Reply::Invalid(format!(
                "no type is registered as {typeid:?} in this manager's server"
            ));
        };
        if factory.type_name != client_type {
            return Reply::Invalid(format!(
                "{typeid:?} is registered as {}, not {client_type}",
                factory.type_name
            ));
        }
        match (factory.make)(args) {
            Ok(object) => Reply::Created(self.add(
                Kind::Shared,
                Body::Shared {
                    type_name: factory.type_name,
                    object,
                },
            )),
            Err(why) => Reply::Invalid(format!("could not make a {typeid:?}: {why}")),
        }
    }

    fn object(&self, id: u64) -> Option<Arc<Object>> {
        let index = usize::try_from(id).ok()?;
        lock(&self.objects).get(index).cloned()
    }

    fn create(&self, kind: Kind, arg: u64, init: Vec<ByteBuf>) -> Reply {
        if !init.is_empty() && !matches!(kind, Kind::Value | Kind::Array) {
            return Reply::Invalid(format!("a {kind:?} has no initial contents"));
        }
        let body = match kind {
            Kind::Dict => Body::Dict(HashMap::new()),
            Kind::List => Body::List(Vec::new()),
            Kind::Namespace => Body::Namespace(HashMap::new()),
            Kind::Queue => Body::Queue {
                items: VecDeque::new(),
                bound: (arg > 0).then(|| usize::try_from(arg).unwrap_or(usize::MAX)),
                unfinished: 0,
                shut_down: false,
            },
            Kind::Lock => Body::Lock {
                owner: None,
                inconsistent: false,
            },
            Kind::Event => Body::Event(false),
            Kind::Semaphore | Kind::BoundedSemaphore => Body::Semaphore {
                value: arg,
                held: HashMap::new(),
                bound: (kind == Kind::BoundedSemaphore).then_some(arg),
            },
            Kind::RLock => Body::RLock(Reentrant::default()),
            Kind::Condition => Body::Condition {
                lock: Reentrant::default(),
                waiters: VecDeque::new(),
                notified: Vec::new(),
                next_ticket: 0,
            },
            Kind::Value if init.len() != 1 => {
                return Reply::Invalid("a value starts with exactly one value".to_owned());
            }
            Kind::Value | Kind::Array => {
                let lock = self.add(
                    Kind::Lock,
                    Body::Lock {
                        owner: None,
                        inconsistent: false,
                    },
                );
                let mut items: Vec<Vec<u8>> = init.into_iter().map(ByteBuf::into_vec).collect();
                match (kind, items.pop()) {
                    (Kind::Value, Some(value)) => Body::Value { value, lock },
                    (_, last) => {
                        items.extend(last);
                        Body::Array { items, lock }
                    }
                }
            }
            Kind::Shared => {
                return Reply::Invalid(
                    "objects of registered types are made with CreateShared".to_owned(),
                );
            }
            Kind::Barrier if arg == 0 => {
                return Reply::Invalid("a barrier needs at least one party".to_owned());
            }
            Kind::Barrier => Body::Barrier {
                parties: arg,
                count: 0,
                generation: 0,
                broken: false,
                resets: 0,
            },
        };
        Reply::Created(self.add(kind, body))
    }

    fn register(&self, name: &str, id: u64) -> Reply {
        if self.object(id).is_none() {
            return Reply::Invalid(format!("no object {id} in this manager"));
        }
        lock(&self.names).insert(name.to_owned(), id);
        Reply::Done
    }

    fn lookup(&self, name: &str, kind: Kind) -> Reply {
        let Some(id) = lock(&self.names).get(name).copied() else {
            return Reply::Invalid(format!("no object is registered as {name:?}"));
        };
        match self.object(id) {
            Some(object) if object.kind == kind => Reply::Created(id),
            Some(object) => {
                Reply::Invalid(format!("{name:?} is a {:?}, not a {kind:?}", object.kind))
            }
            None => Reply::Invalid(format!("no object {id} in this manager")),
        }
    }

    /// Gives back what `session` held: its locks (marked so that the next holder learns that
    /// a holder died) and its semaphore permits.
    fn release(&self, session: Session) {
        let objects: Vec<Arc<Object>> = lock(&self.objects).clone();
        for object in objects {
            if object.kind == Kind::Shared {
                // Holds nothing for a session, and may be busy in a user's slow call.
                continue;
            }
            let mut body = object.lock();
            match &mut *body {
                Body::Lock {
                    owner,
                    inconsistent,
                } if *owner == Some(session) => {
                    *owner = None;
                    *inconsistent = true;
                    tracing::warn!("manager: a client ended while holding a lock");
                }
                Body::Semaphore { value, held, .. } => match held.remove(&session) {
                    Some(permits) => *value += permits,
                    None => continue,
                },
                Body::RLock(lock) | Body::Condition { lock, .. }
                    if lock.owner.is_some_and(|(owner, _)| owner == session) =>
                {
                    *lock = Reentrant {
                        inconsistent: true,
                        ..Reentrant::default()
                    };
                    tracing::warn!("manager: a client ended while holding a re-entrant lock");
                }
                _ => continue,
            }
            drop(body);
            object.changed.notify_all();
        }
    }
}

/// Serves one connection until it closes or misbehaves.
fn serve(server: &Server, stream: &Arc<Stream>) {
    let pass = server.gate.enter(stream);
    if let Err(why) = auth::accept(stream, &server.authkey) {
        tracing::warn!(%why, "manager: connection refused");
        return;
    }
    let mut input = BufReader::with_capacity(READ_BUFFER, &**stream);
    let mut body = Vec::new();
    if stream
        .set_read_timeout(Some(auth::HANDSHAKE_TIMEOUT))
        .is_err()
    {
        return;
    }
    let session = match read_request(stream, &mut input, &mut body) {
        Some(Request::Hello { version, session }) if version == VERSION => session,
        Some(Request::Hello { version, .. }) => {
            refuse(
                stream,
                format!("this manager speaks protocol version {VERSION}, the client {version}"),
            );
            return;
        }
        Some(_) => {
            refuse(stream, "the first request must be Hello".to_owned());
            return;
        }
        None => return,
    };
    if stream.set_read_timeout(None).is_err() {
        return;
    }
    drop(pass);
    let lease = server.sessions.lease();
    /// Counts the connection out of its session when it ends, however it ends.
    struct Leaving<'a>(&'a Server, Member);
    impl Drop for Leaving<'_> {
        fn drop(&mut self) {
            if self.0.sessions.leave(&self.1) {
                self.0.release(self.1.session());
            }
        }
    }
    let member = match server.sessions.join(session, Arc::clone(stream)) {
        Ok(member) => Leaving(server, member),
        Err(Expired) => {
            let _ = send(stream, &Reply::Expired { lease });
            return;
        }
    };
    if send(stream, &Reply::Ready { lease }).is_err() {
        return;
    }
    loop {
        let Some(request) = read_request(stream, &mut input, &mut body) else {
            return;
        };
        server.sessions.renew(&member.1);
        let reply = match request {
            Request::Renew => Reply::Done,
            Request::Hello { .. } => {
                refuse(stream, "already said hello".to_owned());
                return;
            }
            Request::Create { kind, arg, init } => server.create(kind, arg, init),
            Request::CreateShared {
                typeid,
                type_name,
                args,
            } => server.create_shared(typeid, type_name, args),
            Request::Register { name, id } => server.register(name, id),
            Request::Lookup { name, kind } => server.lookup(name, kind),
            Request::Op { id, op } => match server.object(id) {
                None => Reply::Invalid(format!("no object {id} in this manager")),
                Some(object) => match apply(&object, op, stream, session) {
                    Ok(reply) => {
                        if send(stream, &reply).is_err() {
                            if let (Body::Queue { items, .. }, Reply::Value(Some(item))) =
                                (&mut *object.lock(), reply)
                            {
                                // Not delivered: the next reader gets it.
                                items.push_front(item);
                                object.changed.notify_all();
                            }
                            return;
                        }
                        continue;
                    }
                    Err(Stop::PeerGone) => return,
                    Err(Stop::TimedOut) => Reply::TimedOut,
                },
            },
        };
        if send(stream, &reply).is_err() {
            return;
        }
    }
}

/// Reads and decodes the next request; on a malformed one, refuses it and returns `None`, as
/// when the connection closed.
fn read_request<'a>(
    stream: &Stream,
    input: &mut BufReader<&Stream>,
    body: &'a mut Vec<u8>,
) -> Option<Request<'a>> {
    if input.buffer().is_empty() {
        stream.await_readable();
    }
    match wire::read_frame_limited(input, body, MAX_MESSAGE) {
        Ok(()) => {}
        Err(ReadError::Closed) => return None,
        Err(ReadError::Io(err)) => {
            tracing::debug!(%err, "manager: connection lost");
            return None;
        }
        Err(ReadError::Malformed(why)) => {
            refuse(stream, why);
            return None;
        }
    }
    match postcard::from_bytes::<Request<'_>>(body) {
        Ok(request) => Some(request),
        Err(err) => {
            refuse(stream, format!("could not decode the request: {err}"));
            None
        }
    }
}

/// Logs why a connection is being closed and tells the peer.
fn refuse(stream: &Stream, why: String) {
    tracing::warn!(%why, "manager: closing a connection");
    let _ = send(stream, &Reply::Refused(why));
}

fn send(stream: &Stream, reply: &Reply) -> std::io::Result<()> {
    let frame = wire::encode(reply).map_err(std::io::Error::other)?;
    stream.send_all(&frame)
}

/// Applies `op` to `object` on behalf of `session`.
fn apply(object: &Object, op: Op<'_>, peer: &Stream, session: Session) -> Result<Reply, Stop> {
    let wrong = || {
        Reply::Invalid(format!(
            "that operation does not apply to a {:?}",
            object.kind
        ))
    };
    let mut body = object.lock();
    let reply = match (op, &mut *body) {
        (Op::DictGet { key }, Body::Dict(map)) => Reply::Value(map.get(key).cloned()),
        (Op::DictInsert { key, value }, Body::Dict(map)) => {
            Reply::Value(map.insert(key.to_vec(), value.to_vec()))
        }
        (Op::DictRemove { key }, Body::Dict(map)) => Reply::Value(map.remove(key)),
        (Op::DictContains { key }, Body::Dict(map)) => Reply::Flag(map.contains_key(key)),
        (Op::DictLen, Body::Dict(map)) => Reply::Size(map.len() as u64),
        (Op::DictKeys, Body::Dict(map)) => Reply::Values(map.keys().map(bytes).collect()),
        (Op::DictValues, Body::Dict(map)) => Reply::Values(map.values().map(bytes).collect()),
        (Op::DictItems, Body::Dict(map)) => Reply::Pairs(
            map.iter()
                .map(|(key, value)| (bytes(key), bytes(value)))
                .collect(),
        ),
        (Op::DictClear, Body::Dict(map)) => {
            map.clear();
            Reply::Done
        }
        (Op::ListPush { value }, Body::List(list)) => {
            list.push(value.to_vec());
            Reply::Done
        }
        (Op::ListGet { index }, Body::List(list)) => {
            Reply::Value(position(index).and_then(|i| list.get(i)).cloned())
        }
        (Op::ListSet { index, value }, Body::List(list)) => {
            match position(index).and_then(|i| list.get_mut(i)) {
                Some(slot) => {
                    *slot = value.to_vec();
                    Reply::Done
                }
                None => Reply::Invalid(format!(
                    "list index {index} out of range (length {})",
                    list.len()
                )),
            }
        }
        (Op::ListInsert { index, value }, Body::List(list)) => {
            let at = position(index).unwrap_or(usize::MAX).min(list.len());
            list.insert(at, value.to_vec());
            Reply::Done
        }
        (Op::ListPop, Body::List(list)) => Reply::Value(list.pop()),
        (Op::ListLen, Body::List(list)) => Reply::Size(list.len() as u64),
        (Op::ListAll, Body::List(list)) => Reply::Values(list.iter().map(bytes).collect()),
        (Op::ListClear, Body::List(list)) => {
            list.clear();
            Reply::Done
        }
        (Op::NsGet { name }, Body::Namespace(map)) => Reply::Value(map.get(name).cloned()),
        (Op::NsSet { name, value }, Body::Namespace(map)) => {
            map.insert(name.to_owned(), value.to_vec());
            Reply::Done
        }
        (Op::NsRemove { name }, Body::Namespace(map)) => Reply::Flag(map.remove(name).is_some()),
        (Op::NsNames, Body::Namespace(map)) => {
            Reply::Values(map.keys().map(|name| bytes(name.as_bytes())).collect())
        }
        (Op::QueueSize, Body::Queue { items, .. }) => Reply::Size(items.len() as u64),
        (Op::QueuePut { item, wait }, Body::Queue { .. }) => {
            drop(body);
            let mut item = Some(item.to_vec());
            let put = object.wait_for(wait, peer, |body| match body {
                Body::Queue {
                    shut_down: true, ..
                } => Some(Reply::ShutDown),
                Body::Queue {
                    items,
                    bound,
                    unfinished,
                    ..
                } if bound.is_none_or(|n| items.len() < n) => {
                    items.extend(item.take());
                    *unfinished += 1;
                    Some(Reply::Done)
                }
                _ => None,
            });
            return finish(object, put);
        }
        (Op::QueueGet { wait }, Body::Queue { .. }) => {
            drop(body);
            let got = object.wait_for(wait, peer, |body| match body {
                Body::Queue {
                    items, shut_down, ..
                } => match items.pop_front() {
                    Some(item) => Some(Some(item)),
                    None => shut_down.then_some(None),
                },
                _ => None,
            });
            let got = match got {
                Ok(None) => return Ok(Reply::ShutDown),
                Ok(Some(item)) => Ok(item),
                Err(stop) => Err(stop),
            };
            if let Ok(item) = &got
                && wait.is_none_or(|wait| !wait.is_zero())
                && peer.peer_gone()
            {
                // The client died while it waited: leave the item for the next reader rather
                // than send it into a closed socket (TCP may accept that write).
                if let Body::Queue { items, .. } = &mut *object.lock() {
                    items.push_front(item.clone());
                }
                object.changed.notify_all();
                return Err(Stop::PeerGone);
            }
            return finish(object, got.map(|item| Reply::Value(Some(item))));
        }
        (Op::LockAcquire { wait }, Body::Lock { .. }) => {
            drop(body);
            let got = object.wait_for(wait, peer, |body| match body {
                Body::Lock {
                    owner: owner @ None,
                    inconsistent,
                } => {
                    *owner = Some(session);
                    Some(*inconsistent)
                }
                _ => None,
            });
            return got.map(|owner_died| Reply::Acquired { owner_died });
        }
        (Op::LockRelease, Body::Lock { owner, .. }) if *owner == Some(session) => {
            *owner = None;
            return wake(object, body);
        }
        (
            Op::LockMarkConsistent,
            Body::Lock {
                owner,
                inconsistent,
            },
        ) if *owner == Some(session) => {
            *inconsistent = false;
            Reply::Done
        }
        (Op::LockRelease | Op::LockMarkConsistent, Body::Lock { .. }) => {
            Reply::Invalid("the lock is not held by this process".to_owned())
        }
        (Op::EventSet, Body::Event(flag)) => {
            *flag = true;
            return wake(object, body);
        }
        (Op::EventClear, Body::Event(flag)) => {
            *flag = false;
            Reply::Done
        }
        (Op::EventIsSet, Body::Event(flag)) => Reply::Flag(*flag),
        (Op::EventWait { wait }, Body::Event(_)) => {
            drop(body);
            let set = object.wait_for(wait, peer, |body| match body {
                Body::Event(true) => Some(()),
                _ => None,
            });
            return flag(set);
        }
        (Op::SemAcquire { wait }, Body::Semaphore { .. }) => {
            drop(body);
            let got = object.wait_for(wait, peer, |body| match body {
                Body::Semaphore { value, held, .. } if *value > 0 => {
                    *value -= 1;
                    *held.entry(session).or_default() += 1;
                    Some(())
                }
                _ => None,
            });
            return flag(got);
        }
        (Op::SemRelease, Body::Semaphore { value, bound, .. })
            if bound.is_some_and(|bound| *value >= bound) =>
        {
            Reply::Invalid(format!(
                "a bounded semaphore released more times than it was acquired (its value \
                 would exceed {})",
                bound.unwrap_or_default()
            ))
        }
        (Op::SemRelease, Body::Semaphore { value, held, .. }) => {
            *value += 1;
            if let Some(mine) = held.get_mut(&session) {
                *mine -= 1;
                if *mine == 0 {
                    held.remove(&session);
                }
            }
            return wake(object, body);
        }
        (Op::SemValue, Body::Semaphore { value, .. }) => Reply::Size(*value),
        (Op::BarrierWait { wait }, Body::Barrier { .. }) => {
            return barrier_wait(object, body, wait, peer);
        }
        (Op::BarrierAbort, Body::Barrier { broken, .. }) => {
            *broken = true;
            return wake(object, body);
        }
        (
            Op::BarrierState,
            Body::Barrier {
                parties,
                count,
                broken,
                ..
            },
        ) => Reply::BarrierState {
            parties: *parties,
            waiting: if *broken { 0 } else { *count },
            broken: *broken,
        },
        (
            Op::BarrierReset,
            Body::Barrier {
                count,
                broken,
                resets,
                ..
            },
        ) => {
            *count = 0;
            *broken = false;
            *resets += 1;
            return wake(object, body);
        }
        (Op::DictSetDefault { key, value }, Body::Dict(map)) => Reply::Value(Some(
            map.entry(key.to_vec())
                .or_insert_with(|| value.to_vec())
                .clone(),
        )),
        (Op::DictUpdate { pairs }, Body::Dict(map)) => {
            map.extend(
                pairs
                    .into_iter()
                    .map(|(key, value)| (key.into_vec(), value.into_vec())),
            );
            Reply::Done
        }
        (Op::ListExtend { values }, Body::List(list)) => {
            list.extend(values.into_iter().map(ByteBuf::into_vec));
            Reply::Done
        }
        (
            Op::ListIndex { value, start, stop },
            Body::List(list) | Body::Array { items: list, .. },
        ) => {
            let range = clamp(list.len(), start, stop);
            let offset = range.start;
            match list[range].iter().position(|item| item == value) {
                Some(at) => Reply::Size((offset + at) as u64),
                None => Reply::Invalid("the value is not in the list".to_owned()),
            }
        }
        (Op::ListCount { value }, Body::List(list) | Body::Array { items: list, .. }) => {
            Reply::Size(list.iter().filter(|item| *item == value).count() as u64)
        }
        (Op::ListRemove { value }, Body::List(list)) => {
            match list.iter().position(|item| item == value) {
                Some(at) => {
                    list.remove(at);
                    Reply::Done
                }
                None => Reply::Invalid("the value is not in the list".to_owned()),
            }
        }
        (Op::ListPopAt { index }, Body::List(list)) => Reply::Value(
            position(index)
                .filter(|&at| at < list.len())
                .map(|at| list.remove(at)),
        ),
        (Op::ListRange { start, end }, Body::List(list) | Body::Array { items: list, .. }) => {
            Reply::Values(
                list[clamp(list.len(), start, end)]
                    .iter()
                    .map(bytes)
                    .collect(),
            )
        }
        (Op::ListGet { index }, Body::Array { items, .. }) => {
            Reply::Value(position(index).and_then(|i| items.get(i)).cloned())
        }
        (Op::ListSet { index, value }, Body::Array { items, .. }) => {
            match position(index).and_then(|i| items.get_mut(i)) {
                Some(slot) => {
                    *slot = value.to_vec();
                    Reply::Done
                }
                None => Reply::Invalid(format!(
                    "array index {index} out of range (length {})",
                    items.len()
                )),
            }
        }
        (Op::ListLen, Body::Array { items, .. }) => Reply::Size(items.len() as u64),
        (Op::ListAll, Body::Array { items, .. }) => {
            Reply::Values(items.iter().map(bytes).collect())
        }
        (Op::QueueTaskDone, Body::Queue { unfinished, .. }) => {
            if *unfinished == 0 {
                Reply::Invalid("task_done() called more times than items were put".to_owned())
            } else {
                *unfinished -= 1;
                return wake(object, body);
            }
        }
        (Op::QueueJoin { wait }, Body::Queue { .. }) => {
            drop(body);
            let joined = object.wait_for(wait, peer, |body| match body {
                Body::Queue { unfinished: 0, .. } => Some(()),
                _ => None,
            });
            return flag(joined);
        }
        (
            Op::QueueShutdown { immediate },
            Body::Queue {
                items,
                unfinished,
                shut_down,
                ..
            },
        ) => {
            *shut_down = true;
            if immediate {
                // Each item dropped counts as done, as in Python.
                *unfinished = unfinished.saturating_sub(items.len() as u64);
                items.clear();
            }
            return wake(object, body);
        }
        (Op::QueueIsShutDown, Body::Queue { shut_down, .. }) => Reply::Flag(*shut_down),
        (Op::RLockAcquire { wait, thread }, state) if state.is_reentrant() => {
            drop(body);
            let me = (session, thread);
            let got = object.wait_for(wait, peer, |body| take_reentrant(body, me));
            return got.map(|owner_died| Reply::Acquired { owner_died });
        }
        (Op::RLockRelease { thread }, state) if state.is_reentrant() => match state.reentrant() {
            Some(lock) if lock.owner == Some((session, thread)) => {
                lock.depth -= 1;
                if lock.depth == 0 {
                    lock.owner = None;
                }
                return wake(object, body);
            }
            _ => not_held(),
        },
        (Op::RLockMarkConsistent { thread }, state) if state.is_reentrant() => {
            match state.reentrant() {
                Some(lock) if lock.owner == Some((session, thread)) => {
                    lock.inconsistent = false;
                    Reply::Done
                }
                _ => not_held(),
            }
        }
        (
            Op::CondNotify { n, thread },
            Body::Condition {
                lock,
                waiters,
                notified,
                ..
            },
        ) => {
            if lock.owner != Some((session, thread)) {
                not_held()
            } else {
                let n = usize::try_from(n).unwrap_or(usize::MAX).min(waiters.len());
                notified.extend(waiters.drain(..n));
                return wake(object, body);
            }
        }
        (Op::CondWait { wait, thread }, Body::Condition { .. }) => {
            return condition_wait(object, body, wait, peer, (session, thread));
        }
        (Op::ValueGet, Body::Value { value, .. }) => Reply::Value(Some(value.clone())),
        (Op::ValueSet { value: new }, Body::Value { value, .. }) => {
            *value = new.to_vec();
            Reply::Done
        }
        (Op::GetLock, Body::Value { lock, .. } | Body::Array { lock, .. }) => Reply::Created(*lock),
        (
            Op::Call {
                type_name: client_type,
                request,
            },
            Body::Shared { type_name, object },
        ) => {
            if *type_name != client_type {
                Reply::Invalid(format!("the object is a {type_name}, not a {client_type}"))
            } else {
                match object.call(request) {
                    Ok(reply) => Reply::Value(Some(reply)),
                    Err(why) => Reply::Invalid(why),
                }
            }
        }
        _ => wrong(),
    };
    Ok(reply)
}

fn not_held() -> Reply {
    Reply::Invalid("the lock is not held by this thread".to_owned())
}

/// `start..end` within a list of `len` items.
fn clamp(len: usize, start: u64, end: u64) -> std::ops::Range<usize> {
    let end = position(end).unwrap_or(usize::MAX).min(len);
    position(start).unwrap_or(usize::MAX).min(end)..end
}

/// Takes the re-entrant lock for `me` if it is free or already `me`'s; whether a holder died.
fn take_reentrant(body: &mut Body, me: Holder) -> Option<bool> {
    let lock = body.reentrant()?;
    match lock.owner {
        None => {
            lock.owner = Some(me);
            lock.depth = 1;
            Some(lock.inconsistent)
        }
        Some(owner) if owner == me => {
            lock.depth += 1;
            Some(false)
        }
        Some(_) => None,
    }
}

/// Python's `Condition.wait`: releases the lock (however many times `me` took it), waits
/// for a notification for at most `wait`, then takes the lock back as many times, waiting
/// as long as that takes. A notified waiter whose client is gone hands its notification on
/// to the next waiter, so that `notify()` is never lost to a dead process.
fn condition_wait(
    object: &Object,
    mut body: MutexGuard<'_, Body>,
    wait: Option<Duration>,
    peer: &Stream,
    me: Holder,
) -> Result<Reply, Stop> {
    let Body::Condition {
        lock,
        waiters,
        next_ticket,
        ..
    } = &mut *body
    else {
        return Ok(Reply::Invalid("not a condition".to_owned()));
    };
    if lock.owner != Some(me) {
        return Ok(not_held());
    }
    let depth = std::mem::take(&mut lock.depth);
    lock.owner = None;
    let ticket = *next_ticket;
    *next_ticket += 1;
    waiters.push_back(ticket);
    drop(body);
    object.changed.notify_all();
    let woken = object.wait_for(wait, peer, |body| match body {
        Body::Condition { notified, .. } => {
            let at = notified.iter().position(|&t| t == ticket)?;
            notified.swap_remove(at);
            Some(())
        }
        _ => None,
    });
    let notified = match woken {
        Ok(()) => true,
        Err(stop) => {
            let mut body = object.lock();
            let Body::Condition {
                waiters, notified, ..
            } = &mut *body
            else {
                return Err(stop);
            };
            let was_notified = match notified.iter().position(|&t| t == ticket) {
                Some(at) => {
                    notified.swap_remove(at);
                    true
                }
                None => {
                    waiters.retain(|&t| t != ticket);
                    false
                }
            };
            if let Stop::PeerGone = stop {
                if was_notified {
                    // Nobody will act on this notification: the next waiter gets it.
                    notified.extend(waiters.pop_front());
                    drop(body);
                    object.changed.notify_all();
                }
                return Err(Stop::PeerGone);
            }
            was_notified
        }
    };
    let owner_died = object.wait_for(None, peer, |body| {
        let lock = body.reentrant()?;
        if lock.owner.is_some() {
            return None;
        }
        lock.owner = Some(me);
        lock.depth = depth;
        Some(lock.inconsistent)
    })?;
    Ok(Reply::Waited {
        notified,
        owner_died,
    })
}

/// Ends an operation that changed the object: releases it, wakes its waiters, and replies
/// [`Reply::Done`].
fn wake(object: &Object, body: MutexGuard<'_, Body>) -> Result<Reply, Stop> {
    drop(body);
    object.changed.notify_all();
    Ok(Reply::Done)
}

/// A wait's outcome as a yes-or-no reply: `false` if it timed out.
fn flag(outcome: Result<(), Stop>) -> Result<Reply, Stop> {
    match outcome {
        Ok(()) => Ok(Reply::Flag(true)),
        Err(Stop::TimedOut) => Ok(Reply::Flag(false)),
        Err(Stop::PeerGone) => Err(Stop::PeerGone),
    }
}

/// After an operation that changed the object: wakes its other waiters.
fn finish(object: &Object, outcome: Result<Reply, Stop>) -> Result<Reply, Stop> {
    if outcome.is_ok() {
        object.changed.notify_all();
    }
    outcome
}

/// A stored value, copied for a reply.
fn bytes(value: impl AsRef<[u8]>) -> ByteBuf {
    ByteBuf::from(value.as_ref())
}

/// A list index as a `usize`, if it can be one.
fn position(index: u64) -> Option<usize> {
    usize::try_from(index).ok()
}

/// Python's `Barrier.wait`: the last of `parties` arrivals releases everyone; a timeout, an
/// abort, or a waiting party's disconnection breaks the barrier for all.
fn barrier_wait(
    object: &Object,
    mut body: MutexGuard<'_, Body>,
    wait: Option<Duration>,
    peer: &Stream,
) -> Result<Reply, Stop> {
    let Body::Barrier {
        parties,
        count,
        generation,
        broken,
        resets,
    } = &mut *body
    else {
        return Ok(Reply::Invalid("not a barrier".to_owned()));
    };
    if *broken {
        return Ok(Reply::Broken);
    }
    let index = *count;
    *count += 1;
    if *count == *parties {
        *count = 0;
        *generation += 1;
        drop(body);
        object.changed.notify_all();
        return Ok(Reply::Index(index));
    }
    let mine = *generation;
    let reset = *resets;
    drop(body);
    let passed = object.wait_for(wait, peer, |body| match body {
        // Reset while this waited: Python's waiters get BrokenBarrierError.
        Body::Barrier { resets, .. } if *resets != reset => Some(false),
        Body::Barrier { generation, .. } if *generation != mine => Some(true),
        Body::Barrier { broken: true, .. } => Some(false),
        _ => None,
    });
    match passed {
        Ok(true) => Ok(Reply::Index(index)),
        Ok(false) => Ok(Reply::Broken),
        Err(stop) => {
            let mut body = object.lock();
            if let Body::Barrier {
                generation,
                broken,
                resets,
                ..
            } = &mut *body
            {
                if *generation != mine {
                    // Released just as the wait ended.
                    return Ok(Reply::Index(index));
                }
                if *resets == reset {
                    *broken = true;
                }
            }
            drop(body);
            object.changed.notify_all();
            Err(stop)
        }
    }
}
