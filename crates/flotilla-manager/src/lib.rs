//! Python's `multiprocessing.Manager`: a server process holding shared dictionaries, lists,
//! namespaces, queues and synchronisation objects, used through proxies from any process,
//! locally or over TCP, always authenticated.
//!
//! Use a manager when several processes need shared *structured* state (a dict of results, a
//! work queue that outlives its creator, a lock that a process on another machine can take).
//! For plain numbers and arrays on one machine, [`shared`](flotilla_shared) memory is far
//! faster (no round trip per access); for a queue between a parent and its children,
//! [`process::Queue`](flotilla_process::process::Queue) is enough.
//!
//! # A guide for Python users
//!
//! | Python | `flotilla::manager` |
//! |---|---|
//! | `with Manager() as m:` | [`let m = Manager::new()?;`](Manager::new) — the server stops when `m` is dropped |
//! | `m.dict()`, `d[k] = v`, `d[k]`, `d.get(k)`, `del d[k]`, `k in d`, `len(d)` | [`m.dict::<K, V>()?`](Manager::dict), [`insert(&k, &v)`](Dict::insert), [`get(&k)`](Dict::get), [`remove(&k)`](Dict::remove), [`contains_key(&k)`](Dict::contains_key), [`len()`](Dict::len) |
//! | `m.list()`, `l.append(x)`, `l[i]`, `l[i] = x`, `l[:]` | [`m.list::<T>()?`](Manager::list), [`push(&x)`](List::push), [`get(i)`](List::get), [`set(i, &x)`](List::set), [`to_vec()`](List::to_vec) |
//! | `ns = m.Namespace()`, `ns.x = 1`, `ns.x` | [`m.namespace()?`](Manager::namespace), [`ns.set("x", &1)`](Namespace::set), [`ns.get::<i32>("x")`](Namespace::get) |
//! | `m.Queue(maxsize)`, `put`, `get(timeout=)`, `get_nowait` | [`m.queue::<T>(maxsize)?`](Manager::queue), [`put`](Queue::put), [`get_timeout`](Queue::get_timeout), [`try_get`](Queue::try_get) |
//! | `m.Lock()`, `with lock:` | [`m.lock()?`](Manager::lock), [`lock.lock()`](Lock::lock) returning a guard |
//! | `m.Event()`, `m.Semaphore(n)`, `m.Barrier(n)` | [`m.event()?`](Manager::event), [`m.semaphore(n)?`](Manager::semaphore), [`m.barrier(n)?`](Manager::barrier) |
//! | `m.RLock()`, `m.Condition()`, `cond.wait()`, `cond.wait_for(pred)`, `cond.notify(n)` | [`m.rlock()?`](Manager::rlock), [`m.condition()?`](Manager::condition), then on its [guard](ConditionGuard): [`wait`](ConditionGuard::wait), [`wait_for`](ConditionGuard::wait_for), [`notify_n`](ConditionGuard::notify_n) |
//! | `m.BoundedSemaphore(n)`, `barrier.reset()` | [`m.bounded_semaphore(n)?`](Manager::bounded_semaphore), [`Barrier::reset`] |
//! | `m.JoinableQueue()`, `task_done`, `join`, `shutdown(immediate)` | [`m.joinable_queue::<T>(maxsize)?`](Manager::joinable_queue), [`task_done`](Queue::task_done), [`join`](Queue::join), [`shutdown`](Queue::shutdown) with [`GetError::ShutDown`](flotilla_process::process::GetError::ShutDown) |
//! | `m.Value(typecode, v)`, `m.Array(typecode, seq)`, `v.value`, `get_lock()` | [`m.value(&v)?`](Manager::value), [`m.array(&seq)?`](Manager::array), [`get`](Value::get)/[`set`](Value::set), [`get_lock`](Value::get_lock) |
//! | `l.extend`, `l.index`, `l.count`, `l.remove`, `l.pop(i)`, `l[a:b]`, `iter(l)` | [`extend`](List::extend), [`index`](List::index), [`count`](List::count), [`remove`](List::remove), [`pop_at`](List::pop_at), [`get_range`](List::get_range), [`iter`](List::iter) (a snapshot) |
//! | `d.pop(k)`, `d.setdefault(k, v)`, `d.update(..)`, `d.items()`, `d.get(k, default)` | [`pop`](Dict::pop), [`setdefault`](Dict::setdefault), [`update`](Dict::update), [`items`](Dict::items), [`get_or`](Dict::get_or), [`iter`](Dict::iter) (a snapshot) |
//! | `MyManager.register('Counter', Counter)`, `m.Counter(args)` | a [`Shared`] type, [`Setup::register`] in the server's task ([`ManagerBuilder::server`]), [`m.create::<Counter>("Counter", &args)?`](Manager::create) returning a [`Remote`] |
//! | `BaseManager(address=('', 50000), authkey=b'abc').start()` | [`Manager::builder().listen(addr).authkey(b"abc".to_vec()).start()?`](ManagerBuilder) |
//! | `BaseManager.register('get_queue', ...)` then `m.get_queue()` | [`m.register("queue", &q)?`](Manager::register), then [`m.get::<Queue<T>>("queue")?`](Manager::get) |
//! | `BaseManager(address, authkey).connect()` | [`Manager::connect(address, authkey)?`](Manager::connect) |
//! | `AuthenticationError` | [`Error::AuthenticationFailed`](flotilla_core::Error::AuthenticationFailed) |
//! | passing a proxy to `Process(args=...)` | the same: proxies are serde values; pass them to [`Process::new`](flotilla_process::process::Process::new) or a pool task |
//!
//! # How it works, and how it differs from Python
//!
//! - **The server is a child process** started like any [`Process`](flotilla_process::process::Process)
//!   (this program re-executed, no `fork`): it stops when its [`Manager`] is dropped or shut
//!   down, and when the owner dies, even by `SIGKILL` (it is a daemon child). A local server
//!   listens on an abstract Unix socket, a name with no file, so nothing is left behind
//!   however either process dies.
//! - **Always authenticated.** Each connection runs a mutual HMAC-SHA256 challenge-response on
//!   the authkey, as Python's `multiprocessing.connection` does, before the server reads a
//!   single request; a peer with the wrong key is refused. A local server also hangs up at
//!   once on processes of other users, and a client does not talk to a local server run by
//!   another user. TCP traffic is authenticated, not encrypted (as in Python).
//! - **Hostile input is survivable.** Requests are length-prefixed and capped at 64 MiB,
//!   checked before allocating; garbage, truncated frames and huge length prefixes end only
//!   the offending connection, never the server.
//! - **Dead holders do not hang anyone.** Locks and semaphore permits belong to a process
//!   (all its proxies for one manager share one session). When a process dies holding the
//!   [`Lock`], the next acquisition gets [`LockError::OwnerDied`](flotilla_shared::LockError)
//!   with the guard; permits it held come back; a [`Barrier`] it was waiting at breaks.
//! - **Silent holders do not hang anyone either.** A process that is stopped (`SIGSTOP`) or
//!   whose host or network goes silent never closes its connections. Clients renew their
//!   session every quarter of the server's lease (10 s unless
//!   [`ManagerBuilder::lease`] says otherwise); a session not heard from for a whole lease
//!   ends as if its process had died, within the lease and an eighth of it. TCP connections
//!   also use keepalive, so a connection to a host that went silent fails within about 8 s,
//!   on both sides. A client expects every reply within the operation's own wait plus one
//!   lease, so a stopped server fails its operations with
//!   [`Error::Disconnected`](flotilla_core::Error::Disconnected) instead of hanging them (a wait
//!   without a time limit is the exception: it waits as long as the server is alive).
//! - **Strangers cannot crowd it out.** At most 16 connections from one peer (an IP address
//!   or a local process), and 128 in all, may be proving the authkey at once; a new one over
//!   a limit pushes out the oldest waiting, so silent connections cannot use up the
//!   server's descriptors while an honest client gets in.
//! - **Typed proxies, type-agnostic server.** The server stores the bytes the proxies encode;
//!   proxies encode and decode with serde (postcard) on the client. Dict keys are compared by
//!   their encoding (so are list items, for `index`, `count` and `remove`). Objects live as
//!   long as the server (Python reference-counts them). The one exception to "type-agnostic"
//!   is the program's own [`Shared`] types, registered on a server started from the
//!   program's task ([`ManagerBuilder::server`]): that server decodes their requests and runs
//!   their code, catching a panic as a failed call.
//! - **One request, one reply, one connection at a time.** Each concurrent call from a
//!   process uses its own pooled connection, and each connection has its own thread in the
//!   server, so a blocking `get` never delays anyone else.
//!
//! # Example: four processes fill one dict
//!
//! ```
//! use flotilla::manager::{Dict, Manager};
//! use flotilla::process::Process;
//!
//! #[flotilla::task]
//! fn square(results: Dict<u32, u32>, n: u32) {
//!     results.insert(&n, &(n * n)).unwrap();
//! }
//!
//! let manager = Manager::new()?;
//! let results = manager.dict()?;
//! let workers = (1..=4)
//!     .map(|n| Process::new(SquareTask, (results.clone(), n)).start())
//!     .collect::<Result<Vec<_>, _>>()?;
//! for w in &workers {
//!     w.join();
//! }
//! let mut squares = results.values()?;
//! squares.sort();
//! assert_eq!(squares, [1, 4, 9, 16]);
//! # Ok::<(), flotilla::Error>(())
//! ```

mod auth;
mod client;
mod gate;
mod handle;
mod owner;
mod protocol;
mod proxies;
mod server;
mod sessions;
mod shared;
mod transport;

pub use self::handle::Proxy;
pub use self::owner::{Manager, ManagerBuilder};
pub use self::protocol::Address;
pub use self::proxies::{
    Array, Barrier, BoundedSemaphore, Condition, ConditionGuard, Dict, Event, JoinableQueue, List,
    Lock, LockGuard, Namespace, Queue, RLock, RLockGuard, Remote, Semaphore, Value,
};
pub use self::server::Setup;
pub use self::shared::Shared;
