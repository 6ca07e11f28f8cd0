//! Hostile peers on a TCP manager: a wrong key, garbage, truncated handshakes and frames, huge
//! length prefixes and undecodable requests, before and after authentication. Each is refused
//! or cut off; the server keeps serving an honest client throughout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use flotilla::manager::{Address, Dict, Manager};
use hmac::{Hmac, Mac};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use sha2::Sha256;

#[path = "support/stranger.rs"]
mod stranger;

const KEY: &[u8] = b"correct horse battery staple";
const PATIENCE: Duration = Duration::from_secs(60);

/// The first request after authentication (mirrors the library's private format).
#[derive(Serialize)]
enum Request {
    Hello { version: u32, session: [u8; 16] },
}

fn tcp(manager: &Manager) -> SocketAddr {
    match manager.address() {
        Address::Tcp(addr) => *addr,
        other => panic!("not a TCP manager: {other}"),
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

fn answer(key: &[u8], label: &[u8], nonce: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(label);
    mac.update(nonce);
    mac.finalize().into_bytes().to_vec()
}

/// Reads the server's 40-byte challenge and returns its nonce.
fn challenge(stream: &mut TcpStream) -> [u8; 32] {
    let mut hello = [0u8; 40];
    stream.read_exact(&mut hello).unwrap();
    assert_eq!(&hello[..8], b"FLOTMGR1");
    hello[8..].try_into().unwrap()
}

/// Runs the whole handshake with `key`; returns the verdict byte.
fn handshake(stream: &mut TcpStream, key: &[u8]) -> u8 {
    let nonce = challenge(stream);
    let mut reply = answer(key, b"client", &nonce);
    reply.extend_from_slice(&[7u8; 32]);
    stream.write_all(&reply).unwrap();
    let mut verdict = [0u8; 1];
    stream.read_exact(&mut verdict).unwrap();
    if verdict[0] == 1 {
        let mut proof = [0u8; 32];
        stream.read_exact(&mut proof).unwrap();
        assert_eq!(proof.to_vec(), answer(key, b"server", &[7u8; 32]));
    }
    verdict[0]
}

/// Waits for the server to close the connection (end of file or a reset), discarding what
/// it sends first (a refusal).
fn expect_hang_up(stream: &mut TcpStream) {
    let mut sink = Vec::new();
    if let Err(err) = stream.read_to_end(&mut sink) {
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::ConnectionReset,
            "the server kept a hostile connection open: {err}"
        );
    }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut frame = u32::try_from(body.len()).unwrap().to_le_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

/// An authenticated connection that has said hello.
fn authenticated(addr: SocketAddr) -> TcpStream {
    let mut stream = connect(addr);
    assert_eq!(handshake(&mut stream, KEY), 1);
    let hello = Request::Hello {
        version: 3,
        session: [9; 16],
    };
    stream
        .write_all(&frame(&postcard::to_allocvec(&hello).unwrap()))
        .unwrap();
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).unwrap();
    let mut ready = vec![0u8; u32::from_le_bytes(prefix) as usize];
    stream.read_exact(&mut ready).unwrap();
    stream
}

fn still_serving(honest: &Dict<u32, u32>, round: u32) {
    honest.insert(&round, &round).unwrap();
    assert_eq!(honest.get(&round).unwrap(), Some(round));
}

#[test]
fn hostile_peers_are_refused_and_honest_clients_keep_working() -> Result<(), flotilla::Error> {
    let manager = Manager::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .authkey(KEY.to_vec())
        .start()?;
    let addr = tcp(&manager);
    let honest = manager.dict::<u32, u32>()?;
    // A silent peer holds a connection open all along; nobody waits for it.
    let _silent = connect(addr);
    still_serving(&honest, 0);

    // A wrong key: refused with a 0 verdict, then hung up on.
    let mut stream = connect(addr);
    assert_eq!(handshake(&mut stream, b"wrong key"), 0);
    expect_hang_up(&mut stream);
    still_serving(&honest, 1);

    // Through the API, the same is a clear error.
    let err = Manager::connect(addr, b"wrong key").unwrap_err();
    assert!(err.is_authentication_failed(), "{err}");
    assert!(err.to_string().contains("refused the authkey"), "{err}");
    still_serving(&honest, 2);

    // Garbage instead of an answer, with and without reading the challenge first.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    for round in 0..8 {
        let mut stream = connect(addr);
        if round % 2 == 0 {
            challenge(&mut stream);
        }
        let len = rng.random_range(1..200);
        let garbage: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let _ = stream.write_all(&garbage);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        expect_hang_up(&mut stream);
    }
    still_serving(&honest, 3);

    // A huge length prefix where the answer should be: read as 4 bytes of a wrong answer.
    let mut stream = connect(addr);
    challenge(&mut stream);
    let _ = stream.write_all(&u32::MAX.to_le_bytes());
    let _ = stream.shutdown(std::net::Shutdown::Write);
    expect_hang_up(&mut stream);
    still_serving(&honest, 4);

    // After authenticating: a huge length prefix, an undecodable frame, a truncated frame,
    // a second hello.
    let hostile_frames: Vec<Vec<u8>> = vec![
        u32::MAX.to_le_bytes().to_vec(),
        ((64u32 << 20) + 1).to_le_bytes().to_vec(),
        frame(&[0xff; 16]),
        frame(&[]),
        frame(&[4, 200, 1]), // an operation on an object id that is cut short
        {
            let mut cut = frame(&[4, 0, 0, 1, 2, 3]);
            cut.truncate(6);
            cut
        },
        frame(
            &postcard::to_allocvec(&Request::Hello {
                version: 3,
                session: [1; 16],
            })
            .unwrap(),
        ),
    ];
    for (round, bytes) in hostile_frames.iter().enumerate() {
        let mut stream = authenticated(addr);
        let _ = stream.write_all(bytes);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        expect_hang_up(&mut stream);
        still_serving(&honest, 10 + round as u32);
    }

    // A wrong protocol version in the hello.
    let mut stream = connect(addr);
    assert_eq!(handshake(&mut stream, KEY), 1);
    let hello = Request::Hello {
        version: 999,
        session: [0; 16],
    };
    stream
        .write_all(&frame(&postcard::to_allocvec(&hello).unwrap()))
        .unwrap();
    expect_hang_up(&mut stream);
    still_serving(&honest, 100);
    assert_eq!(honest.len()?, 5 + hostile_frames.len() + 1);
    Ok(())
}

#[test]
fn a_client_refuses_a_server_that_cannot_prove_the_key() {
    // A fake server that sends a well-formed challenge, accepts any answer, and then proves
    // nothing: the client must not trust it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut hello = b"FLOTMGR1".to_vec();
        hello.extend_from_slice(&[1u8; 32]);
        stream.write_all(&hello).unwrap();
        let mut answer = [0u8; 64];
        stream.read_exact(&mut answer).unwrap();
        let mut welcome = vec![1u8];
        welcome.extend_from_slice(&[0u8; 32]);
        stream.write_all(&welcome).unwrap();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        rest
    });
    let err = Manager::connect(addr, KEY).unwrap_err();
    assert!(err.is_authentication_failed(), "{err}");
    assert!(err.to_string().contains("could not prove"), "{err}");
    // The client sent nothing after the failed proof.
    assert!(fake.join().unwrap().is_empty());
}

#[test]
fn something_that_is_not_a_manager_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n\0\0\0\0\0\0\0\0\0\0\0\0")
            .unwrap();
    });
    let err = Manager::connect(addr, KEY).unwrap_err();
    assert!(err.is_disconnected(), "{err}");
    assert!(err.to_string().contains("not a flotilla manager"), "{err}");
    fake.join().unwrap();
}

#[test]
fn a_local_server_hangs_up_on_other_users() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let Address::Abstract(name) = manager.address().clone() else {
        panic!(
            "a local manager listens on an abstract socket, not {}",
            manager.address()
        );
    };
    let Some((mut nobody, mut out)) = stranger::run_as_nobody(stranger::CONNECT_AND_READ, &[&name])
    else {
        return Ok(());
    };
    // Not even the challenge: hung up on before anything is sent or read.
    assert_eq!(stranger::line(&mut out), "0");
    assert!(nobody.wait().unwrap().success());
    still_serving(&manager.dict()?, 0);
    Ok(())
}

#[test]
fn a_client_does_not_trust_a_local_server_of_another_user() {
    let name = format!("flotilla-test-fake-manager-{}", std::process::id());
    let Some((mut nobody, mut out)) = stranger::run_as_nobody(stranger::FAKE_MANAGER, &[&name])
    else {
        return;
    };
    assert_eq!(stranger::line(&mut out), "ready");
    let err = Manager::connect(Address::Abstract(name), KEY).unwrap_err();
    assert!(err.is_disconnected(), "{err}");
    assert!(err.to_string().contains("user 65534"), "{err}");
    // The client sent nothing, not even an answer to the challenge.
    assert_eq!(stranger::line(&mut out), "0");
    assert!(nobody.wait().unwrap().success());
}

#[test]
fn a_second_server_on_the_same_address_is_refused_and_the_first_serves_on()
-> Result<(), flotilla::Error> {
    let first = Manager::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .authkey(KEY.to_vec())
        .start()?;
    let addr = tcp(&first);
    let honest = first.dict::<u32, u32>()?;
    let err = Manager::builder()
        .listen(addr)
        .authkey(b"another key".to_vec())
        .start()
        .unwrap_err();
    assert!(matches!(err, flotilla::Error::Spawn { .. }), "{err}");
    assert!(err.to_string().contains("could not listen"), "{err}");
    still_serving(&honest, 1);
    // Clients of the address still reach the first server, and only it.
    let client = Manager::connect(addr, KEY)?;
    assert_eq!(client.address(), first.address());
    assert!(
        Manager::connect(addr, b"another key")
            .unwrap_err()
            .is_authentication_failed()
    );
    Ok(())
}
