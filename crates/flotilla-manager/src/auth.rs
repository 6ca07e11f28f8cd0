//! Mutual challenge-response authentication, before anything else is read from a peer.
//!
//! Like Python's `multiprocessing.connection` (`deliver_challenge` / `answer_challenge`, both
//! ways), each side proves that it knows the authkey without sending it: it answers a fresh
//! random nonce with HMAC-SHA256(authkey, label ‖ nonce). The label differs by direction, so a
//! server's answer can never be replayed as a client's. Every message has a fixed size, so the
//! server reads at most [`CLIENT_HELLO`] bytes from a stranger, within [`HANDSHAKE_TIMEOUT`]
//! in total; answers are compared in constant time.
//!
//! ```text
//! server -> client   MAGIC (8) | server nonce (32)
//! client -> server   HMAC(key, "client" | server nonce) (32) | client nonce (32)
//! server -> client   0 and close (refused), or 1 | HMAC(key, "server" | client nonce) (32)
//! ```

use std::io::{self, Read};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::transport::Stream;
use flotilla_core::Error;
use flotilla_process::process::sys;

/// The whole handshake must finish within this time, on both sides.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Identifies the protocol (and its version) before anything else.
const MAGIC: &[u8; 8] = b"FLOTMGR1";
const NONCE: usize = 32;
const MAC: usize = 32;
/// What a client sends: its answer and its own challenge.
const CLIENT_HELLO: usize = MAC + NONCE;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], label: &[u8], nonce: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(label);
    mac.update(nonce);
    mac
}

fn answer(key: &[u8], label: &[u8], nonce: &[u8]) -> [u8; MAC] {
    mac(key, label, nonce).finalize().into_bytes().into()
}

/// Whether `got` is the right answer, compared in constant time.
fn verify(key: &[u8], label: &[u8], nonce: &[u8], got: &[u8]) -> bool {
    mac(key, label, nonce).verify_slice(got).is_ok()
}

/// Reads exactly `buf.len()` bytes, giving up at `deadline`.
fn read_by(stream: &Stream, buf: &mut [u8], deadline: Instant) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match (&mut &*stream).read(&mut buf[got..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

fn nonce() -> io::Result<[u8; NONCE]> {
    sys::random_bytes()
}

/// The server's side: challenges the peer, then answers its challenge. On success the
/// stream's read timeout is cleared.
///
/// # Errors
///
/// Why the peer was not let in (for the server's log).
pub(crate) fn accept(stream: &Stream, key: &[u8]) -> Result<(), String> {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let ours = nonce().map_err(|err| format!("no random nonce: {err}"))?;
    let mut hello = [0u8; MAGIC.len() + NONCE];
    hello[..MAGIC.len()].copy_from_slice(MAGIC);
    hello[MAGIC.len()..].copy_from_slice(&ours);
    stream
        .send_all(&hello)
        .map_err(|err| format!("sending the challenge: {err}"))?;
    let mut reply = [0u8; CLIENT_HELLO];
    read_by(stream, &mut reply, deadline)
        .map_err(|err| format!("reading the answer to the challenge: {err}"))?;
    let (their_answer, their_nonce) = reply.split_at(MAC);
    if !verify(key, b"client", &ours, their_answer) {
        let _ = stream.send_all(&[0]);
        return Err("the peer does not know the authkey".to_owned());
    }
    let mut welcome = [0u8; 1 + MAC];
    welcome[0] = 1;
    welcome[1..].copy_from_slice(&answer(key, b"server", their_nonce));
    stream
        .send_all(&welcome)
        .map_err(|err| format!("sending the welcome: {err}"))?;
    stream
        .set_read_timeout(None)
        .map_err(|err| format!("clearing the handshake's timeout: {err}"))
}

/// The client's side: answers the server's challenge, then checks the server's answer to
/// its own, all within `limit`. On success the stream's read timeout is cleared.
///
/// # Errors
///
/// [`Error::AuthenticationFailed`] if either side's key is wrong, [`Error::Disconnected`] if
/// the server does not speak this protocol or the connection fails.
pub(crate) fn connect(
    stream: &Stream,
    key: &[u8],
    server: &str,
    limit: Duration,
) -> Result<(), Error> {
    let deadline = Instant::now() + limit;
    let lost = |what: &str, err: io::Error| Error::Disconnected {
        reason: format!("manager at {server}: {what}: {err}"),
    };
    let mut hello = [0u8; MAGIC.len() + NONCE];
    read_by(stream, &mut hello, deadline).map_err(|err| lost("reading its challenge", err))?;
    if &hello[..MAGIC.len()] != MAGIC {
        return Err(Error::Disconnected {
            reason: format!("{server} is not a flotilla manager (or a different version of one)"),
        });
    }
    let ours = nonce().map_err(|err| lost("drawing a random nonce", err))?;
    let mut reply = [0u8; CLIENT_HELLO];
    reply[..MAC].copy_from_slice(&answer(key, b"client", &hello[MAGIC.len()..]));
    reply[MAC..].copy_from_slice(&ours);
    stream
        .send_all(&reply)
        .map_err(|err| lost("answering its challenge", err))?;
    let mut verdict = [0u8; 1];
    match read_by(stream, &mut verdict, deadline) {
        Ok(()) if verdict[0] == 1 => {}
        Ok(()) | Err(_) => {
            return Err(Error::AuthenticationFailed {
                reason: format!("the manager at {server} refused the authkey"),
            });
        }
    }
    let mut theirs = [0u8; MAC];
    read_by(stream, &mut theirs, deadline).map_err(|err| lost("reading its answer", err))?;
    if !verify(key, b"server", &ours, &theirs) {
        return Err(Error::AuthenticationFailed {
            reason: format!("the manager at {server} could not prove it knows the authkey"),
        });
    }
    stream
        .set_read_timeout(None)
        .map_err(|err| lost("clearing the handshake's timeout", err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_depend_on_key_label_and_nonce() {
        let a = answer(b"key", b"client", &[1; NONCE]);
        assert!(verify(b"key", b"client", &[1; NONCE], &a));
        assert!(!verify(b"other", b"client", &[1; NONCE], &a));
        assert!(!verify(b"key", b"server", &[1; NONCE], &a));
        assert!(!verify(b"key", b"client", &[2; NONCE], &a));
        assert!(!verify(b"key", b"client", &[1; NONCE], &a[..MAC - 1]));
    }
}
