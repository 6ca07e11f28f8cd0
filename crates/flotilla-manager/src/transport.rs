//! Sockets, Unix or TCP, behind one type; and the private directory of a local server's socket.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use super::protocol::Address;
use flotilla_core::primitives::spin_until;
use flotilla_process::__private::broker;
use flotilla_process::process::sys;

/// One connected socket.
#[derive(Debug)]
pub(crate) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    /// Connects to `address`; for TCP, with Nagle's algorithm off (every message is one
    /// small request or reply, answered before the next).
    pub(crate) fn connect(address: &Address) -> io::Result<Stream> {
        match address {
            Address::Unix(path) => UnixStream::connect(path).map(Stream::Unix),
            Address::Tcp(addr) => {
                let stream = TcpStream::connect(addr)?;
                stream.set_nodelay(true)?;
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
            Listener::Unix(listener) => listener.accept().map(|(s, _)| Stream::Unix(s)),
            Listener::Tcp(listener) => {
                let (stream, _) = listener.accept()?;
                stream.set_nodelay(true)?;
                Ok(Stream::Tcp(stream))
            }
        }
    }
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

/// Binds a Unix socket in a new private (`0700`) directory; returns the listener, its address
/// and the directory (to remove at exit).
pub(crate) fn bind_unix() -> Result<(Listener, Address, PathBuf), String> {
    let (dir, path, listener) = broker::bind_private("flotilla-manager", "manager.sock")
        .map_err(|complaint| format!("could not start the manager's server: {complaint}"))?;
    Ok((Listener::Unix(listener), Address::Unix(path), dir))
}
