//! Sockets, Unix or TCP, behind one type.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use super::protocol::Address;
use flotilla_core::primitives::spin_until;
use flotilla_process::process::{socket, sys};

/// After this long without traffic, a TCP connection is probed...
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
/// ...every this long...
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// ...and given up after this many unanswered probes: a peer whose host or network went
/// silent is noticed within 8 s, on an idle connection as on one with data waiting to be
/// acknowledged.
const KEEPALIVE_PROBES: u32 = 3;

/// Who is at the other end of a connection, for limits per peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    /// A TCP peer, by address.
    Ip(IpAddr),
    /// A local process, by pid.
    Process(u32),
    /// Unknown (its credentials could not be read).
    Unknown,
}

/// One connected socket.
#[derive(Debug)]
pub(crate) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    /// Connects to `address`; for TCP, set up as [`tune`] says.
    pub(crate) fn connect(address: &Address) -> io::Result<Stream> {
        match address {
            Address::Unix(path) => UnixStream::connect(path).map(Stream::Unix),
            Address::Abstract(name) => socket::connect(name.as_bytes()).map(Stream::Unix),
            Address::Tcp(addr) => {
                let stream = TcpStream::connect(addr)?;
                tune(&stream)?;
                Ok(Stream::Tcp(stream))
            }
        }
    }

    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(stream) => stream.set_read_timeout(timeout),
            Stream::Tcp(stream) => stream.set_read_timeout(timeout),
        }
    }

    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(stream) => stream.set_write_timeout(timeout),
            Stream::Tcp(stream) => stream.set_write_timeout(timeout),
        }
    }

    /// Shuts the connection down both ways: the peer sees it closed, and a thread of ours
    /// reading from it or waiting on it wakes to find it closed.
    pub(crate) fn shut_down(&self) {
        let _ = match self {
            Stream::Unix(stream) => stream.shutdown(Shutdown::Both),
            Stream::Tcp(stream) => stream.shutdown(Shutdown::Both),
        };
    }

    /// Who is at the other end.
    pub(crate) fn peer(&self) -> Peer {
        match self {
            Stream::Unix(stream) => sys::peer_credentials(stream.as_fd())
                .map_or(Peer::Unknown, |(pid, _)| Peer::Process(pid)),
            Stream::Tcp(stream) => stream
                .peer_addr()
                .map_or(Peer::Unknown, |addr| Peer::Ip(addr.ip())),
        }
    }

    /// Writes all of `bytes`, never raising `SIGPIPE`.
    pub(crate) fn send_all(&self, bytes: &[u8]) -> io::Result<()> {
        sys::send_all(self.as_fd(), bytes)
    }

    /// Whether the peer has closed its end or sent something unasked: checked by a server
    /// thread waiting on the peer's behalf, when the peer should be silently awaiting a reply.
    pub(crate) fn peer_gone(&self) -> bool {
        self.readable_now()
    }

    /// Whether a read would not block (data, end of file or an error is waiting).
    fn readable_now(&self) -> bool {
        sys::wait_readable(self.as_fd(), Some(Duration::ZERO)).unwrap_or(true)
    }

    /// Waits briefly for the peer's next message before a blocking read would put the thread
    /// to sleep. A request and its reply usually follow each other within microseconds; on a
    /// small machine, being woken from sleep costs more than that, so polling for up to
    /// [`spin_until`]'s budget halves a round trip (measured by `flotilla-bench compare
    /// manager-dict`). A peer that stays silent costs that budget of CPU once.
    pub(crate) fn await_readable(&self) {
        spin_until(|| self.readable_now());
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Unix(stream) => stream.as_fd(),
            Stream::Tcp(stream) => stream.as_fd(),
        }
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(stream) => (&*stream).read(buf),
            Stream::Tcp(stream) => (&*stream).read(buf),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(stream) => (&*stream).write(buf),
            Stream::Tcp(stream) => (&*stream).write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A listening socket.
#[derive(Debug)]
pub(crate) enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Listener {
    /// Waits for the next connection.
    pub(crate) fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Unix(listener) => {
                let (stream, _) = listener.accept()?;
                // Anyone in the network namespace can reach an abstract socket: hang up on
                // other users before reading a byte.
                socket::trusted(&stream)?;
                Ok(Stream::Unix(stream))
            }
            Listener::Tcp(listener) => {
                let (stream, _) = listener.accept()?;
                tune(&stream)?;
                Ok(Stream::Tcp(stream))
            }
        }
    }
}

/// Sets a TCP connection up: Nagle's algorithm off (every message is one small request or
/// reply, answered before the next) and keepalive on, so that a silent peer is noticed.
fn tune(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    sys::keep_alive(
        stream.as_fd(),
        KEEPALIVE_IDLE,
        KEEPALIVE_INTERVAL,
        KEEPALIVE_PROBES,
    )
}

/// Binds a TCP listener on `addr` (port 0 picks a free port); returns it with the address it
/// actually got.
pub(crate) fn bind_tcp(addr: std::net::SocketAddr) -> Result<(Listener, Address), String> {
    let listener =
        TcpListener::bind(addr).map_err(|err| format!("could not listen on {addr}: {err}"))?;
    let local = listener
        .local_addr()
        .map_err(|err| format!("could not read the address of {addr}: {err}"))?;
    Ok((Listener::Tcp(listener), Address::Tcp(local)))
}

/// Binds an abstract Unix socket under a new name; returns the listener and its address.
pub(crate) fn bind_local() -> Result<(Listener, Address), String> {
    let (name, listener) = socket::bind("flotilla-manager")
        .map_err(|complaint| format!("could not start the manager's server: {complaint}"))?;
    Ok((Listener::Unix(listener), Address::Abstract(name)))
}
