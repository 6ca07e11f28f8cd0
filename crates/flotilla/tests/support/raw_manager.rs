//! A manager client by hand, for tests that send what the library never would: the
//! authkey handshake, frames, and a session opened with the protocol's hello.

#![allow(dead_code)] // each test file uses its own subset

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The manager protocol version these tests speak.
pub(crate) const VERSION: u8 = 3;

/// The HMAC-SHA256 of `label` and `nonce` under `key`: a handshake answer.
pub(crate) fn answer(key: &[u8], label: &[u8], nonce: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(label);
    mac.update(nonce);
    mac.finalize().into_bytes().to_vec()
}

/// `body` with its little-endian `u32` length in front.
pub(crate) fn frame(body: &[u8]) -> Vec<u8> {
    let mut frame = u32::try_from(body.len()).unwrap().to_le_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

/// The body of the next frame.
pub(crate) fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).unwrap();
    let mut body = vec![0u8; u32::from_le_bytes(prefix) as usize];
    stream.read_exact(&mut body).unwrap();
    body
}

/// A raw connection that has proven `key` and opened session `session` (its hello,
/// `Request::Hello { version, session }`, is postcard's `[0, version, session...]`).
pub(crate) fn raw_session(addr: SocketAddr, key: &[u8], session: [u8; 16]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut hello = [0u8; 40];
    stream.read_exact(&mut hello).unwrap();
    let mut reply = answer(key, b"client", &hello[8..]);
    reply.extend_from_slice(&[7u8; 32]);
    stream.write_all(&reply).unwrap();
    let mut welcome = [0u8; 33];
    stream.read_exact(&mut welcome).unwrap();
    assert_eq!(welcome[0], 1);
    let mut hello = vec![0u8, VERSION];
    hello.extend_from_slice(&session);
    stream.write_all(&frame(&hello)).unwrap();
    read_frame(&mut stream); // Ready
    stream
}

/// Sends one request and returns the reply's body.
pub(crate) fn call(stream: &mut TcpStream, body: &[u8]) -> Vec<u8> {
    stream.write_all(&frame(body)).unwrap();
    read_frame(stream)
}
