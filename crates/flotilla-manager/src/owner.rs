//! [`Manager`]: starts (or connects to) a server and creates shared objects in it.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::client::{Client, unexpected};
use super::handle::encode;
use super::handle::{Handle, Proxy, sealed::Sealed};
use super::protocol::{Address, Kind, Reply, Request};
use super::proxies::{
    Array, Barrier, BoundedSemaphore, Condition, Dict, Event, JoinableQueue, List, Lock, Namespace,
    Queue, RLock, Remote, Semaphore, Value,
};
use super::server::{Config, ServeManagerTask, Setup, Started};
use super::shared::{Shared, type_name};
use flotilla_core::primitives::Arc;
use flotilla_core::{Error, Task};
use flotilla_process::process::{Connection, Process, StartedProcess, pipe, sys};
use serde::Serialize;
use serde_bytes::ByteBuf;

/// How long a new server may take to report its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long `shutdown` (or `Drop`) waits for the server to exit before killing it.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may stay silent before the server ends its session, unless
/// [`ManagerBuilder::lease`] says otherwise.
const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// The shortest lease a builder accepts.
const MIN_LEASE: Duration = Duration::from_millis(100);

/// A server process holding shared objects, and this process's way to it: Python's
/// `multiprocessing.Manager()` (and `BaseManager` for remote use).
///
/// [`Manager::new`] starts the server as a child process on a private abstract Unix socket;
/// [`Manager::builder`] can make it listen on TCP with a chosen authkey instead, and
/// [`Manager::connect`] reaches a server started elsewhere. The methods [`dict`](Manager::dict),
/// [`list`](Manager::list), [`namespace`](Manager::namespace), [`queue`](Manager::queue),
/// [`lock`](Manager::lock), [`rlock`](Manager::rlock), [`condition`](Manager::condition),
/// [`event`](Manager::event), [`semaphore`](Manager::semaphore),
/// [`bounded_semaphore`](Manager::bounded_semaphore), [`barrier`](Manager::barrier),
/// [`joinable_queue`](Manager::joinable_queue), [`value`](Manager::value) and
/// [`array`](Manager::array) create objects in the server and return proxies to them;
/// [`create`](Manager::create) makes an object of a type the server registered.
///
/// The server stops when the `Manager` that started it is dropped or
/// [`shut down`](Manager::shutdown), and when the process that started it dies, however it
/// dies (even by `SIGKILL`: the server is a daemon child, which the kernel kills with its
/// parent). Proxies then fail with [`Error::Disconnected`]. So a `Manager` that is not kept
/// stops its server at once, which is a warning:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// fn start() -> Result<(), flotilla::Error> {
///     flotilla::manager::Manager::new()?; // started and stopped
///     Ok(())
/// }
/// ```
///
/// # Examples
///
/// ```
/// use flotilla::manager::Manager;
///
/// let manager = Manager::new()?;
/// let scores = manager.dict::<String, u32>()?;
/// scores.insert(&"ada".to_owned(), &3)?;
/// assert_eq!(scores.get(&"ada".to_owned())?, Some(3));
/// # Ok::<(), flotilla::Error>(())
/// ```
#[must_use = "dropping a Manager stops the server it started"]
pub struct Manager {
    client: Arc<Client>,
    /// The server, if this manager started it and has not shut it down.
    server: Option<Server>,
    /// Whether this manager started its server.
    owner: bool,
}

/// A server this process started.
struct Server {
    process: StartedProcess,
    /// Closing this tells the server to stop.
    control: Connection<Started>,
}

/// Configures a [`Manager`] before starting its server: Python's `BaseManager(address,
/// authkey)`.
///
/// # Examples
///
/// ```
/// use flotilla::manager::Manager;
///
/// let manager = Manager::builder()
///     .listen("127.0.0.1:0".parse().unwrap())
///     .authkey(b"secret".to_vec())
///     .start()?;
/// assert!(manager.address().to_string().starts_with("127.0.0.1:"));
/// # Ok::<(), flotilla::Error>(())
/// ```
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct ManagerBuilder {
    authkey: Option<Vec<u8>>,
    listen: Option<SocketAddr>,
    lease: Option<Duration>,
    /// Starts the server from the user's task, if one was named.
    server: Option<fn(Setup) -> Process>,
}

/// The server process, started from task `T`.
fn server_from<T: Task<Args = Setup> + Default>(setup: Setup) -> Process {
    Process::new(T::default(), setup)
}

impl ManagerBuilder {
    /// Starts the server from `task`, a `#[flotilla::task]` of this program that takes the
    /// [`Setup`], registers the program's [`Shared`] types and
    /// [serves](Setup::serve): Python's `BaseManager.register(typeid, callable)` on a
    /// manager class. Without it the server knows only the built-in objects.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::manager::{Manager, Setup};
    ///
    /// #[flotilla::task]
    /// fn plain_server(setup: Setup) {
    ///     setup.serve(); // no types of its own
    /// }
    ///
    /// let manager = Manager::builder().server(PlainServerTask).start()?;
    /// assert!(manager.dict::<u8, u8>()?.is_empty()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn server<T: Task<Args = Setup> + Default>(mut self, task: T) -> ManagerBuilder {
        let _ = task;
        self.server = Some(server_from::<T>);
        self
    }

    /// The secret every client must prove it knows. Without one, a random 32-byte key is
    /// drawn; read it back with [`Manager::authkey`] to hand it to clients.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::builder().authkey(b"k3y".to_vec()).start()?;
    /// assert_eq!(manager.authkey(), b"k3y");
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn authkey(mut self, authkey: impl Into<Vec<u8>>) -> ManagerBuilder {
        self.authkey = Some(authkey.into());
        self
    }

    /// Listens on this TCP address (port 0 picks a free one) instead of a private Unix socket,
    /// so that processes on other machines can connect. Every connection must still prove
    /// the authkey; traffic is not encrypted, as in Python.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::builder()
    ///     .listen("127.0.0.1:0".parse().unwrap())
    ///     .start()?;
    /// assert!(matches!(manager.address(), flotilla::manager::Address::Tcp(_)));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn listen(mut self, address: SocketAddr) -> ManagerBuilder {
        self.listen = Some(address);
        self
    }

    /// How long a client process may stay silent before the server ends its session (default
    /// 10 s). Clients renew their session on their own, every quarter lease, from a thread
    /// of their own, so only a process that is stopped (`SIGSTOP`, a debugger) or cut off
    /// (its host down, its network gone: a TCP connection that will never close) goes
    /// silent. Its session then ends as if the process had died: the [`Lock`] it held is
    /// given to the next acquirer with [`LockError::OwnerDied`](flotilla_shared::LockError),
    /// its semaphore permits come back, a [`Barrier`] it waited at breaks, within the lease
    /// and an eighth of it after the process was last heard from. If it comes back, its next
    /// operation fails with [`Error::Disconnected`] saying so (a guard it holds no longer
    /// holds the lock), and later ones run in a new session.
    ///
    /// A shorter lease notices a silent holder sooner, at the price of a renewal message
    /// every quarter lease from every client process; the shortest accepted is 100 ms
    /// ([`start`](ManagerBuilder::start) fails with [`Error::InvalidConfig`] below that).
    /// On a [`listen`](ManagerBuilder::listen)ing manager, a holder whose TCP connection went
    /// half-open (its host or network gone) is noticed by keepalive within about 8 s, even
    /// under a longer lease.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flotilla::manager::Manager;
    ///
    /// let manager = Manager::builder().lease(Duration::from_secs(3)).start()?;
    /// assert!(manager.event()?.set().is_ok());
    /// let err = Manager::builder().lease(Duration::from_millis(10)).start().unwrap_err();
    /// assert!(matches!(err, flotilla::Error::InvalidConfig { .. }));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn lease(mut self, lease: Duration) -> ManagerBuilder {
        self.lease = Some(lease);
        self
    }

    /// Starts the server process and returns its owner.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for an empty authkey or a lease under 100 ms, [`Error::Spawn`]
    /// if the server could not be started or could not listen (the address is taken, say).
    ///
    /// # Examples
    ///
    /// ```
    /// let err = flotilla::manager::Manager::builder().authkey(Vec::new()).start().unwrap_err();
    /// assert!(matches!(err, flotilla::Error::InvalidConfig { .. }));
    /// ```
    pub fn start(self) -> Result<Manager, Error> {
        let authkey = match self.authkey {
            Some(key) if key.is_empty() => {
                return Err(Error::InvalidConfig {
                    reason: "a manager's authkey cannot be empty".to_owned(),
                });
            }
            Some(key) => key,
            None => sys::random_bytes::<32>()
                .map_err(|err| Error::Io {
                    reason: format!("could not draw a random authkey: {err}"),
                })?
                .to_vec(),
        };
        let lease = self.lease.unwrap_or(DEFAULT_LEASE);
        if lease < MIN_LEASE {
            return Err(Error::InvalidConfig {
                reason: format!("a manager's lease must be at least {MIN_LEASE:?}, not {lease:?}"),
            });
        }
        let (control, theirs) = pipe::<Started>()?;
        let config = Config {
            authkey: authkey.clone(),
            listen: self.listen,
            lease,
        };
        // A daemon: it dies with this process, however this process dies, and leaves nothing
        // behind (its socket is abstract).
        let setup = Setup::new(config, theirs);
        let process = match self.server {
            Some(start) => start(setup),
            None => Process::new(ServeManagerTask, setup),
        }
        .with_name("ManagerServer")
        .with_daemon(true)
        .start()?;
        let failed = |reason: String| {
            process.kill();
            process.join_timeout(STOP_TIMEOUT);
            Err(Error::Spawn {
                reason: format!("the manager's server did not start: {reason}"),
            })
        };
        let address = match control.recv_timeout(START_TIMEOUT) {
            Ok(Started::Listening(address)) => address,
            Ok(Started::Failed(reason)) => return failed(reason),
            Err(err) => return failed(err.to_string()),
        };
        Ok(Manager {
            client: Client::shared(address, authkey)?,
            server: Some(Server { process, control }),
            owner: true,
        })
    }
}

impl Manager {
    /// Starts a manager's server on a private Unix socket with a random authkey: Python's
    /// `multiprocessing.Manager()`.
    ///
    /// # Errors
    ///
    /// [`Error::Spawn`] if the server could not be started.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert!(manager.pid().is_some());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn new() -> Result<Manager, Error> {
        Manager::builder().start()
    }

    /// A builder, to choose the authkey or a TCP address.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::builder().start()?;
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder::default()
    }

    /// Connects to a server started by another process (Python's `BaseManager(address,
    /// authkey).connect()`), proving `authkey`. Dropping this manager does not stop that
    /// server.
    ///
    /// # Errors
    ///
    /// [`Error::AuthenticationFailed`] if the key is wrong, [`Error::Disconnected`] if
    /// nothing (or something else) listens at `address`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::manager::Manager;
    ///
    /// let owner = Manager::builder().listen("127.0.0.1:0".parse().unwrap()).authkey(b"pw".to_vec()).start()?;
    /// let client = Manager::connect(owner.address().clone(), b"pw")?;
    /// let err = Manager::connect(owner.address().clone(), b"wrong").unwrap_err();
    /// assert!(err.is_authentication_failed());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn connect(address: impl Into<Address>, authkey: &[u8]) -> Result<Manager, Error> {
        let client = Client::shared(address.into(), authkey.to_vec())?;
        client.check()?;
        Ok(Manager {
            client,
            server: None,
            owner: false,
        })
    }

    /// Where the server listens.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert!(manager.address().to_string().starts_with("unix:"));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn address(&self) -> &Address {
        self.client.address()
    }

    /// The key clients must prove.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert_eq!(manager.authkey().len(), 32); // random by default
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn authkey(&self) -> &[u8] {
        self.client.authkey()
    }

    /// The server's process id, if this manager started it.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert_ne!(manager.pid(), Some(std::process::id()));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(|server| server.process.pid())
    }

    /// Stops the server and waits for it to exit (killing it if it does not within a few
    /// seconds): Python's `manager.shutdown()`. Dropping the manager does the same. Doing it
    /// twice is harmless.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] on a manager made by [`connect`](Manager::connect): only the
    /// owner stops a server.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut manager = flotilla::manager::Manager::new()?;
    /// let d = manager.dict::<u8, u8>()?;
    /// manager.shutdown()?;
    /// assert!(d.len().unwrap_err().is_disconnected());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn shutdown(&mut self) -> Result<(), Error> {
        if !self.owner {
            return Err(Error::InvalidOperation {
                reason: format!(
                    "this process connected to the manager at {}; only the process that \
                     started it can shut it down",
                    self.address()
                ),
            });
        }
        if let Some(server) = self.server.take() {
            server.stop();
        }
        Ok(())
    }

    fn create_kind(&self, kind: Kind, arg: u64) -> Result<Handle, Error> {
        self.create_with(kind, arg, Vec::new())
    }

    fn create_with(&self, kind: Kind, arg: u64, init: Vec<ByteBuf>) -> Result<Handle, Error> {
        self.made(&Request::Create { kind, arg, init })
    }

    fn made(&self, request: &Request<'_>) -> Result<Handle, Error> {
        match self.client.call(request)? {
            Reply::Created(id) => Ok(Handle {
                client: Arc::clone(&self.client),
                id,
            }),
            other => Err(unexpected(&other)),
        }
    }

    /// A new, empty dictionary: Python's `manager.dict()`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let d = manager.dict::<u32, String>()?;
    /// assert!(d.is_empty()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn dict<K, V>(&self) -> Result<Dict<K, V>, Error> {
        self.create_kind(Kind::Dict, 0).map(Dict::from_handle)
    }

    /// A new, empty list: Python's `manager.list()`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert!(manager.list::<u8>()?.is_empty()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn list<T>(&self) -> Result<List<T>, Error> {
        self.create_kind(Kind::List, 0).map(List::from_handle)
    }

    /// A new, empty namespace: Python's `manager.Namespace()`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert!(manager.namespace()?.names()?.is_empty());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn namespace(&self) -> Result<Namespace, Error> {
        self.create_kind(Kind::Namespace, 0)
            .map(Namespace::from_handle)
    }

    /// A new queue holding at most `maxsize` items (`None`: unbounded): Python's
    /// `manager.Queue(maxsize)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for `Some(0)`, [`Error::Disconnected`] if the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let q = manager.queue::<String>(Some(100))?;
    /// assert_eq!(q.qsize()?, 0);
    /// assert!(manager.queue::<u8>(Some(0)).is_err());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn queue<T>(&self, maxsize: Option<usize>) -> Result<Queue<T>, Error> {
        if maxsize == Some(0) {
            return Err(Error::InvalidConfig {
                reason: "a bounded queue needs room for at least one item (use None for \
                         unbounded)"
                    .to_owned(),
            });
        }
        let bound = maxsize.map_or(0, |n| n as u64);
        self.create_kind(Kind::Queue, bound).map(Queue::from_handle)
    }

    /// A new, free lock: Python's `manager.Lock()`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let lock = manager.lock()?;
    /// drop(lock.lock().unwrap());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn lock(&self) -> Result<Lock, Error> {
        self.create_kind(Kind::Lock, 0).map(Lock::from_handle)
    }

    /// A new event, not set: Python's `manager.Event()`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert!(!manager.event()?.is_set()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn event(&self) -> Result<Event, Error> {
        self.create_kind(Kind::Event, 0).map(Event::from_handle)
    }

    /// A new semaphore with `value` permits: Python's `manager.Semaphore(value)`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert_eq!(manager.semaphore(2)?.value()?, 2);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn semaphore(&self, value: u64) -> Result<Semaphore, Error> {
        self.create_kind(Kind::Semaphore, value)
            .map(Semaphore::from_handle)
    }

    /// A new barrier for `parties` parties: Python's `manager.Barrier(parties)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] for zero parties, [`Error::Disconnected`] if the server is
    /// gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert_eq!(manager.barrier(3)?.parties()?, 3);
    /// assert!(manager.barrier(0).is_err());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn barrier(&self, parties: u64) -> Result<Barrier, Error> {
        self.create_kind(Kind::Barrier, parties)
            .map(Barrier::from_handle)
    }

    /// A new, free re-entrant lock: Python's `manager.RLock()`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let rlock = manager.rlock()?;
    /// let outer = rlock.lock().unwrap();
    /// let inner = rlock.lock().unwrap(); // the same thread may take it again
    /// drop((inner, outer));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn rlock(&self) -> Result<RLock, Error> {
        self.create_kind(Kind::RLock, 0).map(RLock::from_handle)
    }

    /// A new condition variable with its own re-entrant lock: Python's
    /// `manager.Condition()`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let cond = manager.condition()?;
    /// let guard = cond.lock().unwrap();
    /// guard.notify_all()?; // nobody waits: nothing happens
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn condition(&self) -> Result<Condition, Error> {
        self.create_kind(Kind::Condition, 0)
            .map(Condition::from_handle)
    }

    /// A new bounded semaphore with `value` permits, which may not be released above
    /// `value`: Python's `manager.BoundedSemaphore(value)`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let s = manager.bounded_semaphore(1)?;
    /// assert!(s.release().is_err()); // over-release
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn bounded_semaphore(&self, value: u64) -> Result<BoundedSemaphore, Error> {
        self.create_kind(Kind::BoundedSemaphore, value)
            .map(BoundedSemaphore::from_handle)
    }

    /// A new queue whose consumers mark items done: Python's `manager.JoinableQueue(maxsize)`.
    /// As in Python it is the same queue as [`queue`](Manager::queue)'s (every manager queue
    /// has [`task_done`](Queue::task_done) and [`join`](Queue::join)).
    ///
    /// # Errors
    ///
    /// As [`queue`](Manager::queue).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let q = manager.joinable_queue::<u8>(None)?;
    /// q.put(1)?;
    /// q.get()?;
    /// q.task_done()?;
    /// q.join()?;
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn joinable_queue<T>(&self, maxsize: Option<usize>) -> Result<JoinableQueue<T>, Error> {
        self.queue(maxsize)
    }

    /// A new value held by the server, with a lock of its own: Python's
    /// `manager.Value(typecode, value)`.
    ///
    /// # Errors
    ///
    /// [`Error::Codec`] if `value` cannot be encoded, [`Error::Disconnected`] if the server is
    /// gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let v = manager.value(&1.5f64)?;
    /// assert_eq!(v.get()?, 1.5);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn value<T: Serialize>(&self, value: &T) -> Result<Value<T>, Error> {
        let init = vec![ByteBuf::from(encode(value)?)];
        self.create_with(Kind::Value, 0, init)
            .map(Value::from_handle)
    }

    /// A new fixed-length array held by the server, with a lock of its own: Python's
    /// `manager.Array(typecode, sequence)`.
    ///
    /// # Errors
    ///
    /// [`Error::Codec`] if an item cannot be encoded, [`Error::Disconnected`] if the server is
    /// gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let a = manager.array(&[1u32, 2, 3])?;
    /// assert_eq!(a.len()?, 3);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn array<T: Serialize>(&self, items: &[T]) -> Result<Array<T>, Error> {
        let init = items
            .iter()
            .map(|item| encode(item).map(ByteBuf::from))
            .collect::<Result<_, _>>()?;
        self.create_with(Kind::Array, 0, init)
            .map(Array::from_handle)
    }

    /// A new object of the type registered as `typeid` in the server's [`Setup`], made by
    /// [`S::new(args)`](Shared::new): Python's `manager.Typeid(*args)` after
    /// `BaseManager.register(typeid, callable)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] if the server has no type registered as `typeid`, or has
    /// another Rust type than `S` under it; [`Error::Codec`] if `args` cannot be encoded;
    /// [`Error::Disconnected`] if the server is gone.
    ///
    /// # Examples
    ///
    /// See [`Shared`].
    pub fn create<S: Shared>(&self, typeid: &str, args: &S::Args) -> Result<Remote<S>, Error> {
        let args = encode(args)?;
        self.made(&Request::CreateShared {
            typeid,
            type_name: type_name::<S>(),
            args: &args,
        })
        .map(Remote::from_handle)
    }

    /// Publishes `proxy`'s object under `name`, so that a process that only knows the
    /// manager's address and key can [`get`](Manager::get) it (Python registers typeids on a
    /// `BaseManager` for this). A name registered again points to the new object.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] if the proxy belongs to another manager,
    /// [`Error::Disconnected`] if the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let jobs = manager.queue::<u32>(None)?;
    /// manager.register("jobs", &jobs)?;
    /// let same: flotilla::manager::Queue<u32> = manager.get("jobs")?;
    /// jobs.put(7)?;
    /// assert_eq!(same.get()?, 7);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn register<P: Proxy>(&self, name: &str, proxy: &P) -> Result<(), Error> {
        let handle = proxy.handle();
        if handle.client.address() != self.address() {
            return Err(Error::InvalidOperation {
                reason: format!(
                    "the proxy belongs to the manager at {}, not this one at {}",
                    handle.client.address(),
                    self.address()
                ),
            });
        }
        match self.client.call(&Request::Register {
            name,
            id: handle.id,
        })? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// A proxy for the object published under `name` by [`register`](Manager::register).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] if nothing is registered under `name` or it is another kind
    /// of object; [`Error::Disconnected`] if the server is gone. The item types of a
    /// [`Dict`], [`List`] or [`Queue`] are not checked: a mismatch shows up as
    /// [`Error::Codec`] when values are decoded.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert!(manager.get::<flotilla::manager::Event>("nothing").is_err());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn get<P: Proxy>(&self, name: &str) -> Result<P, Error> {
        match self.client.call(&Request::Lookup {
            name,
            kind: P::kind(),
        })? {
            Reply::Created(id) => Ok(P::from_handle(Handle {
                client: Arc::clone(&self.client),
                id,
            })),
            other => Err(unexpected(&other)),
        }
    }
}

impl Server {
    /// Closes the control pipe (the server's signal to stop) and waits for it to exit,
    /// killing it if it takes too long.
    fn stop(self) {
        let Server { process, control } = self;
        drop(control);
        if !process.join_timeout(STOP_TIMEOUT) {
            tracing::warn!("manager: the server did not stop in time; killing it");
            process.kill();
            process.join_timeout(STOP_TIMEOUT);
        }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("address", self.address())
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}
