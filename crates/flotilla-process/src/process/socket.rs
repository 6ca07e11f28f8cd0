//! Abstract Unix sockets: a name the kernel holds while the socket is open, with no file.
//!
//! The queue broker and a local manager's server listen on one. Nothing is left behind when
//! their process dies, however it dies (a socket file in a directory would outlive a
//! `SIGKILL`). The name is `{prefix}-{pid}-{32 random hex digits}`, so nobody can take it
//! before us; but any process in the same network namespace may connect, so each side checks
//! the other's credentials first: only this user (or root) is let in or trusted, as a private
//! `0700` directory would have ensured. Abstract names are per network namespace.

use std::io;
use std::os::fd::AsFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};

use super::sys;

/// Binds a listener under a new, unguessable name starting with `prefix`; returns the name
/// and the listener.
///
/// # Errors
///
/// Why the name could not be drawn or bound.
pub fn bind(prefix: &str) -> Result<(String, UnixListener), String> {
    let suffix: [u8; 16] =
        sys::random_bytes().map_err(|err| format!("could not name a socket: {err}"))?;
    let hex: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("{prefix}-{}-{hex}", std::process::id());
    let listener = SocketAddr::from_abstract_name(name.as_bytes())
        .and_then(|addr| UnixListener::bind_addr(&addr))
        .map_err(|err| format!("could not listen on the socket @{name}: {err}"))?;
    Ok((name, listener))
}

/// Connects to the socket `name` and checks that its owner is this user (or root).
///
/// # Errors
///
/// The connection's error, or `PermissionDenied` if another user owns the socket (its own
/// went away and someone else took the name).
pub fn connect(name: &[u8]) -> io::Result<UnixStream> {
    let stream = UnixStream::connect_addr(&SocketAddr::from_abstract_name(name)?)?;
    trusted(&stream)?;
    Ok(stream)
}

/// Whether the peer of `stream` runs as this user or as root.
///
/// # Errors
///
/// `PermissionDenied` naming the peer's user, or the error reading its credentials.
pub fn trusted(stream: &UnixStream) -> io::Result<()> {
    let (_, peer) = sys::peer_credentials(stream.as_fd())?;
    let me = sys::effective_uid();
    if peer == me || peer == 0 {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("the peer runs as user {peer}, not {me}"),
        ))
    }
}
