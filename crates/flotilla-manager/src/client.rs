//! A process's connections to one manager: authenticated on open, pooled, shared by every
//! proxy of that manager in the process.
//!
//! All of a process's proxies for one manager (same address and authkey) share one
//! [`Client`], found through a process-wide table, and so one session: locks and semaphore
//! permits are held by the process, as in Python, and given back by the server when the
//! client's last connection closes. A client keeps at least one connection open once it has
//! made one, so that its session lasts as long as it does. Each concurrent operation takes
//! its own connection, so a blocking `get` on one thread never delays another thread's call.

use std::fmt;
use std::io::BufReader;
use std::sync::Weak;

use super::auth;
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
    session: Session,
    idle: Mutex<Vec<Conn>>,
}

/// An authenticated connection, read through a buffer (so a small reply is one system call),
/// and the buffer its replies are decoded from.
struct Conn {
    input: BufReader<Stream>,
    body: Vec<u8>,
}

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
        let session = sys::random_bytes().map_err(|err| Error::Io {
            reason: format!("could not draw a session id: {err}"),
        })?;
        let client = Arc::new(Client {
            address,
            authkey,
            session,
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
        let conn = self.take()?;
        self.put_back(conn);
        Ok(())
    }

    /// Sends `request` and returns the reply. `Invalid` replies become
    /// [`Error::InvalidOperation`].
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone, [`Error::AuthenticationFailed`] for a
    /// wrong key, [`Error::Codec`] for a message that cannot be encoded or is over
    /// [`MAX_MESSAGE`], or a reply that makes no sense.
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
        let mut conn = self.take()?;
        let reply = conn.call(&frame, &self.address)?;
        self.put_back(conn);
        match reply {
            Reply::Invalid(reason) => Err(Error::InvalidOperation { reason }),
            reply => Ok(reply),
        }
    }

    fn take(&self) -> Result<Conn, Error> {
        if let Some(conn) = lock(&self.idle).pop() {
            return Ok(conn);
        }
        let stream = Stream::connect(&self.address).map_err(|err| Error::Disconnected {
            reason: format!(
                "could not connect to the manager at {}: {err}",
                self.address
            ),
        })?;
        auth::connect(&stream, &self.authkey, &self.address.to_string())?;
        let mut conn = Conn {
            input: BufReader::with_capacity(READ_BUFFER, stream),
            body: Vec::new(),
        };
        let hello = Request::Hello {
            version: VERSION,
            session: self.session,
        };
        let frame = wire::encode(&hello).map_err(|message| Error::Codec { message })?;
        match conn.call(&frame, &self.address)? {
            Reply::Ready => Ok(conn),
            other => Err(unexpected(&other)),
        }
    }

    fn put_back(&self, conn: Conn) {
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }
}

impl Conn {
    fn call(&mut self, frame: &[u8], address: &Address) -> Result<Reply, Error> {
        let gone = |what: String| Error::Disconnected {
            reason: format!("the manager at {address} is gone ({what})"),
        };
        let stream = self.input.get_ref();
        stream
            .send_all(frame)
            .map_err(|err| gone(err.to_string()))?;
        stream.await_readable();
        match wire::read_frame_limited(&mut self.input, &mut self.body, MAX_MESSAGE) {
            Ok(()) => {}
            Err(ReadError::Closed) => return Err(gone("connection closed".to_owned())),
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
