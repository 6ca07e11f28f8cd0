//! A process's connections to one manager: authenticated on open, pooled, shared by every
//! proxy of that manager in the process.
//!
//! All of a process's proxies for one manager (same address and authkey) share one
//! [`Client`], found through a process-wide table, and so one session: locks and semaphore
//! permits are held by the process, as in Python, and given back by the server when the
//! client's last connection closes. A client keeps at least one connection open once it has
//! made one, so that its session lasts as long as it does. Each concurrent operation takes
//! its own connection, so a blocking `get` on one thread never delays another thread's call.
//!
//! Once connected, a client renews its session every quarter of the lease the server names,
//! from a thread of its own, so that the server can tell a silent process (stopped, or cut
//! off) from a quiet one. It also expects every reply within the operation's own wait plus
//! one lease: a server that is stopped, or whose host went silent, fails the operation with
//! [`Error::Disconnected`] instead of hanging it (only a wait without a time limit waits as
//! long as it takes, and TCP keepalive still ends it if the server's host goes silent).

use std::fmt;
use std::io::{self, BufReader};
use std::sync::Weak;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::auth::{self, HANDSHAKE_TIMEOUT};
use super::protocol::{Address, MAX_MESSAGE, Reply, Request, Session, VERSION};
use super::transport::Stream;
use flotilla_core::Error;
use flotilla_core::primitives::{Arc, Mutex, lock};
use flotilla_process::process::sys;
use flotilla_process::wire::{self, ReadError};

/// The size of each connection's read buffer.
const READ_BUFFER: usize = 8 << 10;

/// Idle connections kept beyond this many are closed.
const MAX_IDLE: usize = 16;

/// One process's way to a manager.
pub(crate) struct Client {
    address: Address,
    authkey: Vec<u8>,
    /// This client itself, for the renewing thread.
    me: Weak<Client>,
    state: Mutex<State>,
    idle: Mutex<Vec<Conn>>,
}

#[derive(Debug)]
struct State {
    session: Session,
    /// The server's lease, once a connection has been made.
    lease: Option<Duration>,
    /// Dropped with the client, which stops its renewing thread.
    renewing: Option<Sender<()>>,
    /// The server ended this client's session; the next operation reports it.
    expired: Option<Error>,
}

/// An authenticated connection, read through a buffer (so a small reply is one system call),
/// the buffer its replies are decoded from, and its read timeout.
struct Conn {
    input: BufReader<Stream>,
    body: Vec<u8>,
    timeout: Option<Duration>,
    /// When it was last put back, idle.
    idle_since: Instant,
    /// Whether the last `call` failed before the request was written out whole: the server
    /// cannot have seen it.
    unsent: bool,
}

/// A connection idle for less than this is taken as still open without asking the kernel: the
/// server only closes a connection it is not serving when it ends a session, which takes a
/// whole lease of silence.
const FRESH: Duration = Duration::from_millis(100);

/// Every client in this process, to share one per manager.
static CLIENTS: Mutex<Vec<Weak<Client>>> = Mutex::new(Vec::new());

impl Client {
    /// The client of this process for the manager at `address` with `authkey`, made if
    /// needed. Connects lazily, on the first call.
    pub(crate) fn shared(address: Address, authkey: Vec<u8>) -> Result<Arc<Client>, Error> {
        let mut clients = lock(&CLIENTS);
        clients.retain(|client| client.strong_count() > 0);
        let existing = clients
            .iter()
            .filter_map(Weak::upgrade)
            .find(|client| client.address == address && client.authkey == authkey);
        if let Some(client) = existing {
            return Ok(client);
        }
        let session = new_session()?;
        let client = Arc::new_cyclic(|me| Client {
            address,
            authkey,
            me: me.clone(),
            state: Mutex::new(State {
                session,
                lease: None,
                renewing: None,
                expired: None,
            }),
            idle: Mutex::new(Vec::new()),
        });
        clients.push(Arc::downgrade(&client));
        Ok(client)
    }

    pub(crate) fn address(&self) -> &Address {
        &self.address
    }

    pub(crate) fn authkey(&self) -> &[u8] {
        &self.authkey
    }

    /// Opens one connection now, to find out whether the manager is reachable and accepts the
    /// key, and keeps it.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let (conn, _) = self.take()?;
        self.put_back(conn);
        Ok(())
    }

    /// Sends `request` and returns the reply. `Invalid` replies become
    /// [`Error::InvalidOperation`].
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone, does not answer in time, or ended this
    /// process's session; [`Error::AuthenticationFailed`] for a wrong key; [`Error::Codec`]
    /// for a message that cannot be encoded or is over [`MAX_MESSAGE`], or a reply that makes
    /// no sense.
    pub(crate) fn call(&self, request: &Request<'_>) -> Result<Reply, Error> {
        let frame = wire::encode(request).map_err(|message| Error::Codec { message })?;
        if frame.len() - 4 > MAX_MESSAGE {
            // The server would refuse it and hang up; say why without sending it.
            return Err(Error::Codec {
                message: format!(
                    "a request of {} bytes exceeds a manager's limit of {MAX_MESSAGE} bytes",
                    frame.len() - 4
                ),
            });
        }
        let (mut conn, reused) = self.take()?;
        if let Some(expired) = lock(&self.state).expired.take() {
            self.put_back(conn);
            return Err(expired);
        }
        let within = self.reply_within(request);
        let reply = match conn.call(&frame, within, &self.address) {
            // An idle connection the server closed an instant ago (it ended this session
            // while the process was stopped, say) fails the write: the server never saw the
            // request, so it goes out once more on a new connection, which also brings the
            // notice of an ended session.
            Err(_) if reused && conn.unsent => {
                conn = self.open_afresh()?;
                if let Some(expired) = lock(&self.state).expired.take() {
                    self.put_back(conn);
                    return Err(expired);
                }
                conn.call(&frame, within, &self.address)?
            }
            reply => reply?,
        };
        self.put_back(conn);
        match reply {
            Reply::Invalid(reason) => Err(Error::InvalidOperation { reason }),
            reply => Ok(reply),
        }
    }

    /// How long to wait for the reply to `request`: its own wait plus a lease (`None`: as
    /// long as it takes).
    fn reply_within(&self, request: &Request<'_>) -> Option<Duration> {
        let lease = lock(&self.state).lease.unwrap_or(HANDSHAKE_TIMEOUT);
        match request.waits() {
            None => Some(lease),
            Some(None) => None,
            Some(Some(wait)) => Some(wait.saturating_add(lease)),
        }
    }

    /// An idle connection that is still open (`true`), or a new one (`false`).
    fn take(&self) -> Result<(Conn, bool), Error> {
        loop {
            let Some(conn) = lock(&self.idle).pop() else {
                break;
            };
            // An idle connection has nothing to read: if it has, the server closed it (it
            // ended our session, say) or broke the protocol. Either way it is no use.
            if conn.input.buffer().is_empty()
                && (conn.idle_since.elapsed() < FRESH || !conn.input.get_ref().peer_gone())
            {
                return Ok((conn, true));
            }
        }
        Ok((self.open_afresh()?, false))
    }

    /// A new connection, in a new session if the server ended this one.
    fn open_afresh(&self) -> Result<Conn, Error> {
        match self.open() {
            Err(Opened::Expired { lease, session }) => {
                self.start_afresh(lease, session)?;
                self.open().map_err(Opened::into_error)
            }
            opened => opened.map_err(Opened::into_error),
        }
    }

    /// Connects, authenticates and says hello.
    fn open(&self) -> Result<Conn, Opened> {
        let stream = Stream::connect(&self.address).map_err(|err| {
            Opened::Failed(Error::Disconnected {
                reason: format!(
                    "could not connect to the manager at {}: {err}",
                    self.address
                ),
            })
        })?;
        // A server that has answered before named its lease: it answers within that.
        let limit = lock(&self.state)
            .lease
            .map_or(HANDSHAKE_TIMEOUT, |lease| lease.min(HANDSHAKE_TIMEOUT));
        auth::connect(&stream, &self.authkey, &self.address.to_string(), limit)
            .map_err(Opened::Failed)?;
        let mut conn = Conn {
            input: BufReader::with_capacity(READ_BUFFER, stream),
            body: Vec::new(),
            timeout: None,
            idle_since: Instant::now(),
            unsent: false,
        };
        let session = lock(&self.state).session;
        let hello = Request::Hello {
            version: VERSION,
            session,
        };
        let frame =
            wire::encode(&hello).map_err(|message| Opened::Failed(Error::Codec { message }))?;
        match conn.call(&frame, Some(HANDSHAKE_TIMEOUT), &self.address) {
            Ok(Reply::Ready { lease }) => {
                let lost = |err: io::Error| {
                    Opened::Failed(Error::Disconnected {
                        reason: format!("manager at {}: {err}", self.address),
                    })
                };
                conn.input
                    .get_ref()
                    .set_write_timeout(Some(lease))
                    .map_err(lost)?;
                self.renew_from_now_on(lease);
                Ok(conn)
            }
            Ok(Reply::Expired { lease }) => Err(Opened::Expired { lease, session }),
            Ok(other) => Err(Opened::Failed(unexpected(&other))),
            Err(err) => Err(Opened::Failed(err)),
        }
    }

    /// The server ended this client's session `ended`: draws a new one and leaves a notice
    /// for the next operation, unless another thread did already.
    fn start_afresh(&self, lease: Duration, ended: Session) -> Result<(), Error> {
        let session = new_session()?;
        let mut state = lock(&self.state);
        if state.session != ended {
            return Ok(());
        }
        state.session = session;
        state.expired = Some(Error::Disconnected {
            reason: format!(
                "the manager at {} ended this process's session: it heard nothing from it \
                 for longer than its lease of {lease:?} (the process was stopped or cut off), \
                 and gave back the locks and permits it held",
                self.address
            ),
        });
        Ok(())
    }

    /// Records the server's lease and starts renewing the session, once.
    fn renew_from_now_on(&self, lease: Duration) {
        let mut state = lock(&self.state);
        state.lease = Some(lease);
        if state.renewing.is_some() {
            return;
        }
        let (stop, stopped) = crossbeam_channel::bounded(0);
        let me = self.me.clone();
        let spawned = std::thread::Builder::new()
            .name("flotilla-manager-renew".to_owned())
            .stack_size(256 * 1024)
            .spawn(move || renew(&me, &stopped, lease / 4));
        match spawned {
            Ok(_) => state.renewing = Some(stop),
            // Without the thread, only this process's own calls renew its session.
            Err(err) => tracing::warn!(%err, "manager: could not start the renewing thread"),
        }
    }

    fn put_back(&self, mut conn: Conn) {
        conn.idle_since = Instant::now();
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }
}

/// Why a connection could not be opened.
enum Opened {
    /// The server ended the session named in the hello.
    Expired {
        lease: Duration,
        session: Session,
    },
    Failed(Error),
}

impl Opened {
    fn into_error(self) -> Error {
        match self {
            Opened::Expired { lease, .. } => Error::Disconnected {
                reason: format!("the manager ended a new session at once (lease {lease:?})"),
            },
            Opened::Failed(err) => err,
        }
    }
}

/// A new random session id.
fn new_session() -> Result<Session, Error> {
    sys::random_bytes().map_err(|err| Error::Io {
        reason: format!("could not draw a session id: {err}"),
    })
}

/// The renewing thread: renews the session every `every` until the client is dropped.
fn renew(client: &Weak<Client>, stopped: &Receiver<()>, every: Duration) {
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
        let Some(client) = client.upgrade() else {
            return;
        };
        // A failure is the next operation's to report (an ended session leaves a notice).
        if let Ok(frame) = wire::encode(&Request::Renew)
            && let Ok((mut conn, _)) = client.take()
            && conn
                .call(
                    &frame,
                    client.reply_within(&Request::Renew),
                    &client.address,
                )
                .is_ok()
        {
            client.put_back(conn);
        }
    }
}

impl Conn {
    /// Sends `frame` and reads the reply, waiting at most `within` (as long as it takes if
    /// `None`) for each part of it.
    fn call(
        &mut self,
        frame: &[u8],
        within: Option<Duration>,
        address: &Address,
    ) -> Result<Reply, Error> {
        let gone = |what: String| Error::Disconnected {
            reason: format!("the manager at {address} is gone ({what})"),
        };
        self.unsent = true;
        let stream = self.input.get_ref();
        if self.timeout != within {
            stream
                .set_read_timeout(within)
                .map_err(|err| gone(err.to_string()))?;
            self.timeout = within;
        }
        stream
            .send_all(frame)
            .map_err(|err| gone(err.to_string()))?;
        self.unsent = false;
        stream.await_readable();
        match wire::read_frame_limited(&mut self.input, &mut self.body, MAX_MESSAGE) {
            Ok(()) => {}
            Err(ReadError::Closed) => return Err(gone("connection closed".to_owned())),
            Err(ReadError::Io(err))
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Error::Disconnected {
                    reason: format!(
                        "the manager at {address} did not answer within {:?} (it is stopped, \
                         or its host or network went silent)",
                        within.unwrap_or_default()
                    ),
                });
            }
            Err(ReadError::Io(err)) => return Err(gone(err.to_string())),
            Err(ReadError::Malformed(why)) => return Err(Error::Codec { message: why }),
        }
        match postcard::from_bytes::<Reply>(&self.body) {
            Ok(Reply::Refused(why)) => Err(Error::Codec {
                message: format!("the manager refused a request: {why}"),
            }),
            Ok(reply) => Ok(reply),
            Err(err) => Err(Error::Codec {
                message: format!("could not decode the manager's reply: {err}"),
            }),
        }
    }
}

/// The error for a reply that does not answer the request.
pub(crate) fn unexpected(reply: &Reply) -> Error {
    Error::Codec {
        message: format!("unexpected reply from the manager: {reply:?}"),
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}
