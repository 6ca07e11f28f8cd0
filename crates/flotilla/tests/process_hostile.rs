//! Hostile peers on a queue broker's socket: garbage, huge lengths, truncated frames, wrong
//! tokens and garbled requests after a valid attach. Each ends only its own connection; the
//! broker keeps serving everyone else.

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::time::Duration;

use flotilla::process::{Process, Queue};
use flotilla::{Executor, ProcessPoolExecutor};
use serde::{Deserialize, Serialize};

#[path = "support/stranger.rs"]
mod stranger;

/// How a queue handle is encoded (mirrors the library's private format).
#[derive(Serialize, Deserialize)]
struct Ticket {
    #[serde(with = "serde_bytes")]
    name: Vec<u8>,
    token: [u8; 16],
    owner: u32,
    maxsize: Option<u64>,
}

/// The first requests of the broker protocol (mirrors the library's private format).
#[derive(Serialize)]
enum Request {
    Attach { version: u32, token: [u8; 16] },
    Put { wait: Wait },
}

#[derive(Serialize)]
enum Wait {
    #[allow(dead_code)]
    Forever,
    For(Duration),
}

/// The broker's abstract socket and the queue's token.
fn ticket<T>(q: &Queue<T>) -> (SocketAddr, [u8; 16]) {
    let ticket: Ticket = postcard::from_bytes(&postcard::to_allocvec(q).unwrap()).unwrap();
    let addr = SocketAddr::from_abstract_name(&ticket.name).unwrap();
    (addr, ticket.token)
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut frame = u32::try_from(body.len()).unwrap().to_le_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

fn attach_frame(token: [u8; 16]) -> Vec<u8> {
    frame(&postcard::to_allocvec(&Request::Attach { version: 2, token }).unwrap())
}

/// Writes `bytes`, optionally half-closes, and waits for the broker to close the connection.
fn expect_hang_up(path: &SocketAddr, bytes: &[u8], half_close: bool) {
    let mut stream = UnixStream::connect_addr(path).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The broker may hang up before reading everything; a failed write is fine.
    let _ = stream.write_all(bytes);
    if half_close {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    let mut sink = Vec::new();
    match stream.read_to_end(&mut sink) {
        Ok(_) => {}
        Err(err) => assert!(
            err.kind() == std::io::ErrorKind::ConnectionReset,
            "the broker kept a hostile connection open: {err}"
        ),
    }
}

#[flotilla::task]
fn echo_through(q: Queue<String>, word: String) -> String {
    q.put(word).unwrap();
    q.get().unwrap()
}

/// The queue still works through the broker, from another process.
fn still_serves(pool: &ProcessPoolExecutor, q: &Queue<String>) {
    let got = pool
        .submit(EchoThroughTask, (q.clone(), "still here".to_owned()))
        .unwrap()
        .result()
        .unwrap();
    assert_eq!(got, "still here");
}

#[test]
fn hostile_bytes_end_only_their_own_connection() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let q = Queue::<String>::new();
    let (path, token) = ticket(&q);
    still_serves(&pool, &q);

    // Before attaching: garbage, a huge length, truncated frames, an oversized first frame,
    // a wrong token, a request that is not an attach.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    expect_hang_up(&path, &garbage, false);
    expect_hang_up(&path, &u32::MAX.to_le_bytes(), false);
    expect_hang_up(&path, &[7, 0], true);
    expect_hang_up(&path, &[200, 0, 0, 0, 1, 2, 3], true);
    expect_hang_up(&path, &frame(&[0; 4000]), false);
    expect_hang_up(&path, &attach_frame([0; 16]), false);
    let put = frame(
        &postcard::to_allocvec(&Request::Put {
            wait: Wait::For(Duration::ZERO),
        })
        .unwrap(),
    );
    expect_hang_up(&path, &put, false);
    still_serves(&pool, &q);

    // After a valid attach: garbage, a huge length, a truncated frame, a second attach.
    for after in [
        frame(&garbage[..64]),
        u32::MAX.to_le_bytes().to_vec(),
        vec![100, 0, 0, 0, 1, 2],
        attach_frame(token),
    ] {
        let mut bytes = attach_frame(token);
        bytes.extend_from_slice(&after);
        expect_hang_up(&path, &bytes, true);
    }
    still_serves(&pool, &q);

    // A well-formed put of bytes that are no `String`: stored, and the reader gets a codec
    // error rather than a crash.
    let mut stream = UnixStream::connect_addr(&path).unwrap();
    let mut bytes = attach_frame(token);
    let mut put = postcard::to_allocvec(&Request::Put {
        wait: Wait::For(Duration::ZERO),
    })
    .unwrap();
    put.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff]); // an impossible length
    bytes.extend_from_slice(&frame(&put));
    stream.write_all(&bytes).unwrap();
    // Two replies: attached, done.
    let mut reply = [0u8; 5];
    stream.read_exact(&mut reply).unwrap();
    stream.read_exact(&mut reply).unwrap();
    drop(stream);
    let err = q.get().unwrap_err();
    assert!(matches!(err, flotilla::Error::Codec { .. }), "{err}");
    still_serves(&pool, &q);

    // And locally, of course.
    q.put("local".to_owned()).unwrap();
    assert_eq!(q.get().unwrap(), "local");
}

/// Connects, attaches, asks for an item that never comes, and dies mid-wait.
#[flotilla::task]
fn wait_forever(q: Queue<String>, ready: Queue<()>) {
    ready.put(()).unwrap();
    let _ = q.get();
}

#[test]
fn a_reader_killed_mid_get_loses_nothing() {
    let (q, ready) = (Queue::<String>::new(), Queue::new());
    let p = Process::new(WaitForeverTask, (q.clone(), ready.clone()))
        .start()
        .unwrap();
    ready.get().unwrap();
    p.kill();
    p.join();
    // The broker notices the dead reader (within its check interval) and does not hand it
    // the next item.
    q.put("kept".to_owned()).unwrap();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let got = pool
        .submit(EchoThroughTask, (q.clone(), "second".to_owned()))
        .unwrap()
        .result()
        .unwrap();
    // FIFO: the pool task puts "second" behind "kept" and gets "kept".
    assert_eq!(got, "kept");
    assert_eq!(q.get().unwrap(), "second");
}

#[test]
fn a_stranger_is_hung_up_on_before_anything_is_read() {
    let q = Queue::<String>::new();
    let ticket: Ticket = postcard::from_bytes(&postcard::to_allocvec(&q).unwrap()).unwrap();
    let name = String::from_utf8(ticket.name).unwrap();
    let Some((mut nobody, mut out)) = stranger::run_as_nobody(stranger::CONNECT_AND_READ, &[&name])
    else {
        return;
    };
    // Hung up on at once: no reply, and no wait for the first frame's time limit.
    assert_eq!(stranger::line(&mut out), "0");
    assert!(nobody.wait().unwrap().success());
    q.put("still mine".to_owned()).unwrap();
    assert_eq!(q.get().unwrap(), "still mine");
}

#[test]
fn a_handle_does_not_talk_to_a_broker_run_by_another_user() {
    // A stranger listens on a name; a forged handle points there. Decoding it must fail
    // before the queue's token is sent.
    let name = format!("flotilla-test-stranger-{}", std::process::id());
    let Some((mut nobody, mut out)) = stranger::run_as_nobody(stranger::FAKE_MANAGER, &[&name])
    else {
        return;
    };
    assert_eq!(stranger::line(&mut out), "ready");
    let forged = postcard::to_allocvec(&Ticket {
        name: name.into_bytes(),
        token: [7; 16],
        owner: 1,
        maxsize: None,
    })
    .unwrap();
    assert!(postcard::from_bytes::<Queue<u32>>(&forged).is_err());
    // The stranger got nothing: not the token, not a byte.
    assert_eq!(stranger::line(&mut out), "0");
    assert!(nobody.wait().unwrap().success());
}
