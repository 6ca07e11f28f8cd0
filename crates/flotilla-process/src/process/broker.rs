//! The server that lets other processes use the queues this process created.
//!
//! Started the first time a queue handle is encoded for another process, it listens on an
//! abstract Unix socket (see [`socket`](super::socket): no file, so nothing outlives the
//! process, and a peer that is not this user or root is hung up on before anything is read)
//! and serves each connection on its own thread. A connection must first name its queue by a
//! random 128-bit token, which only the holders of an encoded handle know; the first frame is
//! read with a small size limit and a time limit, so a stranger can neither make the broker
//! allocate nor hold a thread for long. After that, requests map one to one onto
//! [`QueueState`] operations; a blocking `get`, `put` or `join` blocks that connection's
//! thread, never the others. Anything malformed ends that one connection (after a
//! [`Reply::Refused`] where possible), never the broker, and so does a request that stops
//! arriving part-way for [`FRAME_PROGRESS`].

use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::OnceLock;
use std::time::Duration;

use super::protocol::{MAX_ATTACH_FRAME, Reply, Request, Token, VERSION};
use super::state::{QueueState, Stop};
use super::{socket, sys};
use crate::wire::{self, ReadError};
use flotilla_core::primitives::{Arc, Mutex, lock};

/// How long a new connection may take to name its queue.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(10);

/// Once a request has started to arrive, how long the broker waits for each further part of
/// it: a peer that stops part-way (stopped, hung, or hostile) loses its connection instead
/// of holding a thread for ever. An idle connection, between requests, may wait as long as
/// it likes.
const FRAME_PROGRESS: Duration = Duration::from_secs(5);

/// This process's broker.
#[derive(Debug)]
pub(crate) struct Broker {
    /// The abstract socket's name.
    name: String,
    queues: Mutex<HashMap<Token, Arc<QueueState>>>,
}

static BROKER: OnceLock<Broker> = OnceLock::new();
static STARTING: Mutex<()> = Mutex::new(());

/// This process's broker, started on first use.
///
/// # Errors
///
/// Why the socket or thread could not be created.
pub(crate) fn get() -> Result<&'static Broker, String> {
    if let Some(broker) = BROKER.get() {
        return Ok(broker);
    }
    let _starting = lock(&STARTING);
    if let Some(broker) = BROKER.get() {
        return Ok(broker);
    }
    let (name, listener) = socket::bind("flotilla-queues")
        .map_err(|complaint| format!("could not start the queue broker: {complaint}"))?;
    let broker = BROKER.get_or_init(|| Broker {
        name,
        queues: Mutex::new(HashMap::new()),
    });
    std::thread::Builder::new()
        .name("flotilla-queue-broker".to_owned())
        .spawn(move || accept(broker, &listener))
        .map_err(|err| format!("could not start the queue broker's thread: {err}"))?;
    Ok(broker)
}

/// This process's broker, if it was started.
pub(crate) fn running() -> Option<&'static Broker> {
    BROKER.get()
}

/// Makes `state` reachable from other processes (starting the broker on first use): the
/// broker to connect to, and the queue's token.
///
/// # Errors
///
/// Why the broker could not start or the queue could not be registered.
pub(crate) fn export(state: &Arc<QueueState>) -> Result<(&'static Broker, Token), String> {
    let broker = get()?;
    let token = state.export(|token, state| broker.register(token, state))?;
    Ok((broker, token))
}

/// Forgets a queue nobody can reach any more.
pub(crate) fn forget(token: &Token) {
    if let Some(broker) = BROKER.get() {
        lock(&broker.queues).remove(token);
    }
}

impl Broker {
    /// The name of the socket to connect to.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Makes `state` reachable under `token`.
    pub(crate) fn register(&self, token: Token, state: Arc<QueueState>) {
        lock(&self.queues).insert(token, state);
    }

    /// The queue registered under `token`. The registry's lock is released before the
    /// caller touches the queue, so the two locks are never taken in that order.
    pub(crate) fn find(&self, token: &Token) -> Option<Arc<QueueState>> {
        lock(&self.queues).get(token).cloned()
    }
}

/// Accepts connections for the life of the process.
fn accept(broker: &'static Broker, listener: &UnixListener) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let spawned = std::thread::Builder::new()
                    .name("flotilla-queue-conn".to_owned())
                    .stack_size(256 * 1024)
                    .spawn(move || serve(broker, &stream));
                if let Err(err) = spawned {
                    tracing::warn!(%err, "queue broker: could not start a connection thread");
                }
            }
            Err(err) => {
                // Out of descriptors, typically: back off rather than spin.
                tracing::warn!(%err, "queue broker: accept failed");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Serves one connection until it closes or misbehaves.
fn serve(broker: &Broker, stream: &UnixStream) {
    if let Err(err) = socket::trusted(stream) {
        tracing::warn!(%err, "queue broker: hung up on a stranger");
        return;
    }
    let state = match attach(broker, stream) {
        Ok(state) => state,
        Err(why) => {
            let _ = reply(stream, &Reply::Refused(why), &[]);
            return;
        }
    };
    /// Counts the connection out when it ends, however it ends.
    struct Attached(Arc<QueueState>);
    impl Drop for Attached {
        fn drop(&mut self) {
            if let Some(token) = self.0.detach_remote() {
                forget(&token);
            }
        }
    }
    let attached = Attached(state);
    let state = &attached.0;
    if stream.set_read_timeout(Some(FRAME_PROGRESS)).is_err()
        || reply(stream, &Reply::Attached, &[]).is_err()
    {
        return;
    }
    let peer = stream.as_fd();
    let mut body = Vec::new();
    loop {
        // Idle for as long as the peer likes; then the read timeout bounds each part.
        if sys::wait_readable(peer, None).is_err() {
            return;
        }
        match wire::read_frame(&mut &*stream, &mut body) {
            Ok(()) => {}
            Err(ReadError::Closed | ReadError::Io(_)) => return,
            Err(ReadError::Malformed(why)) => {
                let _ = reply(stream, &Reply::Refused(why), &[]);
                return;
            }
        }
        let (request, payload) = match wire::decode_head::<Request>(&body) {
            Ok(decoded) => decoded,
            Err(err) => {
                let _ = reply(stream, &Reply::Refused(err.to_string()), &[]);
                return;
            }
        };
        let sent = match request {
            Request::Put { wait } => match state.put(payload.to_vec(), wait, Some(peer)) {
                Ok(()) => reply(stream, &Reply::Done, &[]),
                Err((_, Stop::TimedOut)) => reply(stream, &Reply::Full, &[]),
                Err((_, Stop::ShutDown)) => reply(stream, &Reply::ShutDown, &[]),
                Err((_, Stop::PeerGone)) => return,
            },
            Request::Get { wait } => match state.get(wait, Some(peer)) {
                Ok(item) => {
                    let sent = reply(stream, &Reply::Item, &item);
                    if sent.is_err() {
                        // Not delivered: the next reader gets it.
                        state.unget(item);
                    }
                    sent
                }
                Err(Stop::TimedOut) => reply(stream, &Reply::Empty, &[]),
                Err(Stop::ShutDown) => reply(stream, &Reply::ShutDown, &[]),
                Err(Stop::PeerGone) => return,
            },
            Request::TaskDone => match state.task_done() {
                Ok(()) => reply(stream, &Reply::Done, &[]),
                Err(why) => reply(stream, &Reply::Invalid(why), &[]),
            },
            Request::Join => match state.wait_all_done(Some(peer)) {
                Ok(()) => reply(stream, &Reply::Done, &[]),
                Err(_) => return,
            },
            Request::Status => {
                let (size, shut_down) = state.status();
                reply(
                    stream,
                    &Reply::Status {
                        size: size as u64,
                        shut_down,
                    },
                    &[],
                )
            }
            Request::Shutdown { immediate } => {
                drop(state.shutdown(immediate));
                reply(stream, &Reply::Done, &[])
            }
            Request::Export => {
                if state.add_in_transit() {
                    reply(stream, &Reply::Done, &[])
                } else {
                    reply(
                        stream,
                        &Reply::Invalid("the queue no longer exists".into()),
                        &[],
                    )
                }
            }
            Request::Attach { .. } => {
                let _ = reply(stream, &Reply::Refused("already attached".into()), &[]);
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Reads the first frame, which must name a live queue by its token, and attaches to it.
fn attach(broker: &Broker, stream: &UnixStream) -> Result<Arc<QueueState>, String> {
    stream
        .set_read_timeout(Some(ATTACH_TIMEOUT))
        .map_err(|err| err.to_string())?;
    let mut body = Vec::new();
    wire::read_frame_limited(&mut &*stream, &mut body, MAX_ATTACH_FRAME)
        .map_err(|err| format!("reading the first frame: {err}"))?;
    let token = match postcard::from_bytes::<Request>(&body) {
        Ok(Request::Attach { version, token }) if version == VERSION => token,
        Ok(Request::Attach { version, .. }) => {
            return Err(format!(
                "this broker speaks protocol version {VERSION}, the handle {version}"
            ));
        }
        Ok(_) => return Err("the first request must name a queue".to_owned()),
        Err(err) => return Err(format!("decoding the first frame: {err}")),
    };
    let state = broker
        .find(&token)
        .ok_or_else(|| "no such queue (it may have been dropped)".to_owned())?;
    if state.attach_remote() {
        Ok(state)
    } else {
        Err("no such queue (it was dropped)".to_owned())
    }
}

/// Writes one reply, with `payload` after the header.
fn reply(stream: &UnixStream, reply: &Reply, payload: &[u8]) -> io::Result<()> {
    let frame = wire::with_payload(reply, payload).map_err(io::Error::other)?;
    sys::send_all(stream.as_fd(), &frame)
}
