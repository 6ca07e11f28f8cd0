//! Pipes and `wait`, ported from CPython's `Lib/test/_test_multiprocessing.py`
//! (`_TestConnection`, `_TestPoll`, `TestWait`, `TestCloseFds`, and
//! `_TestListenerClient::test_issue16955`), each test named after its origin, followed by
//! attacks on the byte API and on `wait`.
//!
//! Where flotilla differs on purpose:
//! - `Pipe(duplex=False)` is `pipe_oneway()`, whose ends are a `Receiver` and a `Sender`:
//!   `test_duplex_false`'s `OSError`s for the wrong end do not compile (see `pipe_oneway`'s
//!   `compile_fail` example), so only its round trip is ported.
//! - `send_bytes(buf, offset, size)` takes a slice; `test_sendbytes`'s out-of-range
//!   `ValueError`s are the slice's own bounds (`get` returns `None`).
//! - A message too long for `recv_bytes_into`'s buffer (`BufferTooShort`) or for
//!   `recv_bytes_max` is refused without being read and stays in the pipe, which stays usable;
//!   Python hands it over inside the exception, or makes the connection unusable.
//! - `poll()` never waits and `poll_timeout(d)` waits; there are no negative timeouts
//!   (`test_neg_timeout` uses `Duration::ZERO`). `wait` returns the positions of the ready
//!   objects, not the objects.
//! - CPython sleeps to let data arrive (`time.sleep(DELTA)`); these tests wait for it with
//!   `poll_timeout` or `wait`, bounded by `PATIENCE`.
//! - Not ported: `test_boundaries` (one end polled in two processes at once: a flotilla end
//!   moves to the child it is passed to, so only one process ever holds it),
//!   `test_wait_socket*` (plain sockets are `AsFd` too; nothing flotilla-specific),
//!   `test_wait_slow` (random sleeps in the children), the `fd_transfer` tests
//!   (`multiprocessing.reduction` has no counterpart) and `_TestListenerClient`'s listener
//!   tests (flotilla has no `Listener`/`Client`; only `test_issue16955`'s point, that `poll`
//!   sees a message just sent, applies to a pipe).

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use flotilla::Error;
use flotilla::process::{
    Connection, Process, Queue, Receiver, RecvBytesError, Sender, pipe, pipe_oneway, wait,
    wait_timeout,
};

/// Upper bound for anything that must not hang.
const PATIENCE: Duration = Duration::from_secs(30);

/// CPython's `SENTINEL`: the empty message that tells `_echo` to stop.
const SENTINEL: &[u8] = b"";

/// `_TestConnection._echo`: sends every message back, raw, until the empty one.
#[flotilla::task]
fn echo(conn: Connection<Vec<Option<f64>>>) {
    loop {
        let msg = conn.recv_bytes().unwrap();
        if msg == SENTINEL {
            return;
        }
        conn.send_bytes(&msg).unwrap();
    }
}

/// `_TestConnection::test_connection`.
#[test]
fn connection() {
    let (conn, child_conn) = pipe::<Vec<Option<f64>>>().unwrap();
    let p = Process::new(EchoTask, child_conn)
        .with_daemon(true)
        .start()
        .unwrap();
    let seq = vec![Some(1.0), Some(2.25), None];
    let msg = b"hello world";
    let longmsg = msg.repeat(10);

    assert!(conn.as_raw_fd() > 2);
    conn.send(&seq).unwrap();
    assert_eq!(conn.recv().unwrap(), seq);

    conn.send_bytes(msg).unwrap();
    assert_eq!(conn.recv_bytes().unwrap(), msg);

    // `recv_bytes_into(buffer)` and `recv_bytes_into(buffer, offset)`.
    let arr: Vec<u8> = [0i32, 1, 2, 3]
        .iter()
        .flat_map(|n| n.to_ne_bytes())
        .collect();
    let mut buffer = [0u8; 40];
    conn.send_bytes(&arr).unwrap();
    assert_eq!(conn.recv_bytes_into(&mut buffer).unwrap(), arr.len());
    assert_eq!(&buffer[..16], &arr[..]);
    assert!(buffer[16..].iter().all(|&b| b == 0));
    let mut buffer = [0u8; 40];
    conn.send_bytes(&arr).unwrap();
    assert_eq!(conn.recv_bytes_into(&mut buffer[12..]).unwrap(), arr.len());
    assert!(buffer[..12].iter().all(|&b| b == 0));
    assert_eq!(&buffer[12..28], &arr[..]);

    // `BufferTooShort`: refused, and the message is still there.
    let mut buffer = [b' '; 40];
    conn.send_bytes(&longmsg).unwrap();
    match conn.recv_bytes_into(&mut buffer) {
        Err(RecvBytesError::TooLong { len, limit }) => assert_eq!((len, limit), (110, 40)),
        other => panic!("expected TooLong, got {other:?}"),
    }
    assert_eq!(buffer, [b' '; 40], "a refused message writes nothing");
    assert_eq!(conn.recv_bytes().unwrap(), longmsg);

    assert!(!conn.poll());
    assert!(!conn.poll_timeout(Duration::ZERO));
    let started = Instant::now();
    assert!(!conn.poll_timeout(Duration::from_millis(100)));
    assert!(started.elapsed() >= Duration::from_millis(100));

    conn.send(&Vec::new()).unwrap_or_else(|err| panic!("{err}"));
    // An empty `Vec` encodes to one byte, not to the sentinel.
    assert!(conn.poll_timeout(PATIENCE));
    assert_eq!(conn.recv().unwrap(), Vec::new());

    let really_big_msg = vec![b'X'; 16 << 20];
    conn.send_bytes(&really_big_msg).unwrap();
    assert_eq!(conn.recv_bytes().unwrap(), really_big_msg);

    conn.send_bytes(SENTINEL).unwrap(); // tell the child to quit
    assert!(conn.recv().unwrap_err().is_disconnected());
    assert!(conn.recv_bytes().unwrap_err().is_disconnected());
    p.join();
    assert_eq!(p.exitcode(), Some(0));
}

/// `_TestConnection::test_duplex_false`: the round trip (the wrong-end checks do not
/// compile).
#[test]
fn duplex_false() {
    let (reader, writer) = pipe_oneway::<u32>().unwrap();
    writer.send(&1).unwrap();
    assert_eq!(reader.recv().unwrap(), 1);
}

/// `_TestConnection::test_spawn_close`: the parent's copy of the child's end is gone as soon
/// as the child starts (there is nothing to close), and the child still gets it.
#[test]
fn spawn_close() {
    let (conn, child_conn) = pipe::<Vec<Option<f64>>>().unwrap();
    let p = Process::new(EchoTask, child_conn)
        .with_daemon(true)
        .start()
        .unwrap();
    conn.send_bytes(b"hello").unwrap();
    assert_eq!(conn.recv_bytes().unwrap(), b"hello");
    conn.send_bytes(SENTINEL).unwrap();
    drop(conn);
    p.join();
    assert_eq!(p.exitcode(), Some(0));
}

/// `_TestConnection::test_sendbytes`: `send_bytes(msg, offset, size)` as a slice.
#[test]
fn sendbytes() {
    let msg = b"abcdefghijklmnopqrstuvwxyz";
    let (a, b) = pipe::<()>().unwrap();

    a.send_bytes(msg).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), msg);
    a.send_bytes(&msg[5..]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), &msg[5..]);
    a.send_bytes(&msg[7..7 + 8]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), &msg[7..15]);
    a.send_bytes(&msg[26..]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"");
    a.send_bytes(&msg[26..26]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"");

    // Python's ValueErrors: ranges outside the buffer, which a slice refuses.
    assert!(msg.get(27..).is_none());
    assert!(msg.get(22..22 + 5).is_none());
    assert!(msg.get(26..26 + 1).is_none());
    assert!(!b.poll(), "nothing else was sent");
}

/// `_TestPoll::test_empty_string`.
#[test]
fn empty_string() {
    let (a, b) = pipe::<()>().unwrap();
    assert!(!a.poll());
    b.send_bytes(b"").unwrap();
    assert!(a.poll_timeout(PATIENCE));
    assert!(a.poll(), "polling takes nothing");
    assert_eq!(a.recv_bytes().unwrap(), b"");
}

/// `_TestPoll._child_strings`: sends each string, raw.
#[flotilla::task]
fn child_strings(conn: Sender<()>, strings: Vec<Vec<u8>>) {
    for s in strings {
        conn.send_bytes(&s).unwrap();
    }
}

/// `_TestPoll::test_strings`.
#[test]
fn strings() {
    let strings: Vec<Vec<u8>> = [&b"hello"[..], b"", b"a", b"b", b"", b"bye", b"", b"lop"]
        .iter()
        .map(|s| s.to_vec())
        .collect();
    let (a, b) = pipe_oneway::<()>().unwrap();
    let p = Process::new(ChildStringsTask, (b, strings.clone()))
        .start()
        .unwrap();
    for s in &strings {
        assert!(a.poll_timeout(PATIENCE));
        assert_eq!(&a.recv_bytes().unwrap(), s);
    }
    p.join();
    assert!(a.recv_bytes().unwrap_err().is_disconnected());
}

/// `_TestPoll._child_dont_merge`.
#[flotilla::task]
fn child_dont_merge(b: Sender<()>) {
    b.send_bytes(b"a").unwrap();
    b.send_bytes(b"b").unwrap();
    b.send_bytes(b"cd").unwrap();
}

/// `_TestPoll::test_dont_merge`: messages stay apart, however fast they come.
#[test]
fn dont_merge() {
    let (a, b) = pipe_oneway::<()>().unwrap();
    assert!(!a.poll_timeout(Duration::ZERO));
    assert!(!a.poll_timeout(Duration::from_millis(100)));
    let p = Process::new(ChildDontMergeTask, b).start().unwrap();
    assert_eq!(a.recv_bytes().unwrap(), b"a");
    assert!(a.poll_timeout(PATIENCE));
    assert!(a.poll_timeout(PATIENCE));
    assert_eq!(a.recv_bytes().unwrap(), b"b");
    assert!(a.poll_timeout(PATIENCE));
    assert!(a.poll());
    assert_eq!(a.recv_bytes().unwrap(), b"cd");
    p.join();
}

/// `_TestListenerClient::test_issue16955`, on a pipe: a message just sent is seen by `poll`.
#[test]
fn issue16955() {
    let (a, c) = pipe::<()>().unwrap();
    a.send_bytes(b"hello").unwrap();
    assert!(c.poll_timeout(Duration::from_secs(1)));
}

/// `TestWait._child_test_wait`: sends ten `(i, pid)` and hangs up.
#[flotilla::task]
fn child_test_wait(w: Sender<(u32, u32)>) {
    for i in 0..10 {
        w.send(&(i, std::process::id())).unwrap();
    }
}

/// `TestWait::test_wait`: four children, read as they become ready, until each hangs up.
#[test]
fn test_wait() {
    let mut readers: Vec<Receiver<(u32, u32)>> = Vec::new();
    let mut procs = Vec::new();
    for _ in 0..4 {
        let (r, w) = pipe_oneway().unwrap();
        procs.push(
            Process::new(ChildTestWaitTask, w)
                .with_daemon(true)
                .start()
                .unwrap(),
        );
        readers.push(r);
    }
    let mut messages = Vec::new();
    let mut rounds = 0;
    while !readers.is_empty() {
        rounds += 1;
        assert!(rounds < 10_000, "wait keeps returning without progress");
        // Highest first, so that removing one does not move the others.
        for at in wait(&readers).unwrap().into_iter().rev() {
            match readers[at].recv() {
                Ok(msg) => messages.push(msg),
                Err(err) => {
                    assert!(err.is_disconnected(), "{err}");
                    readers.remove(at);
                }
            }
        }
    }
    messages.sort();
    let mut expected: Vec<(u32, u32)> = procs
        .iter()
        .flat_map(|p| (0..10).map(move |i| (i, p.pid())))
        .collect();
    expected.sort();
    assert_eq!(messages, expected);
    for p in &procs {
        p.join();
    }
}

/// `TestWait::test_wait_timeout`.
#[test]
fn wait_timeout_() {
    let (a, b) = pipe::<()>().unwrap();
    let started = Instant::now();
    let res = wait_timeout(&[&a, &b], Duration::from_millis(200)).unwrap();
    assert!(res.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(200));
    b.send(&()).unwrap();
    assert_eq!(wait_timeout(&[&a, &b], PATIENCE).unwrap(), [0]);
}

/// Waits for one message on `go`, then returns (`TestWait.signal_and_sleep`, with a message
/// instead of a sleep).
#[flotilla::task]
fn signal_and_wait(ready: Queue<()>, go: Receiver<()>) {
    ready.put(()).unwrap();
    let _ = go.recv();
}

/// `TestWait::test_wait_integer`: a process sentinel among connections.
#[test]
fn wait_integer() {
    let (a, b) = pipe::<()>().unwrap();
    let (go_rx, go) = pipe_oneway::<()>().unwrap();
    let ready = Queue::new();
    let p = Process::new(SignalAndWaitTask, (ready.clone(), go_rx))
        .start()
        .unwrap();
    ready.get_timeout(PATIENCE).unwrap();
    let objects = [a.as_fd(), p.sentinel(), b.as_fd()];
    assert!(wait_timeout(&objects, Duration::ZERO).unwrap().is_empty());
    go.send(&()).unwrap();
    assert_eq!(wait_timeout(&objects, PATIENCE).unwrap(), [1]);
    assert_eq!(
        p.exitcode(),
        Some(0),
        "a ready sentinel means a known exit code"
    );

    a.send(&()).unwrap(); // makes `b` ready
    assert_eq!(wait_timeout(&objects, PATIENCE).unwrap(), [1, 2]);
    b.send(&()).unwrap(); // makes `a` ready
    assert_eq!(wait_timeout(&objects, PATIENCE).unwrap(), [0, 1, 2]);
}

/// `TestWait::test_neg_timeout`: there are no negative durations; zero only looks.
#[test]
fn neg_timeout() {
    let (a, _b) = pipe::<()>().unwrap();
    let started = Instant::now();
    assert!(wait_timeout(&[&a], Duration::ZERO).unwrap().is_empty());
    assert!(started.elapsed() < PATIENCE);
}

/// `TestCloseFds._test_closefds`: reports whether descriptor `fd` is open here.
#[flotilla::task]
fn test_closefds(conn: Sender<bool>, fd: i32) {
    // SAFETY: F_GETFD only reads the descriptor's flags; a closed number fails with EBADF.
    let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1;
    conn.send(&open).unwrap();
}

/// `TestCloseFds::test_closefd`: a child does not inherit this process's sockets; it sees only
/// what it was passed (`process_spawn` checks the same for a descriptor made inheritable).
#[test]
fn closefd() {
    let (reader, writer) = pipe_oneway::<bool>().unwrap();
    let (socket, _peer) = UnixStream::pair().unwrap();
    // SAFETY: F_DUPFD_CLOEXEC on an open descriptor has no memory-safety preconditions; the
    // copy is closed below.
    let high = unsafe { libc::fcntl(socket.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 50) };
    assert!(high >= 50);
    let p = Process::new(TestClosefdsTask, (writer, high))
        .start()
        .unwrap();
    let open_in_child = reader.recv().unwrap();
    p.join();
    // SAFETY: `high` is the copy made above, owned by nothing else.
    unsafe { libc::close(high) };
    assert!(!open_in_child, "the child inherited descriptor {high}");
}

/// A raw handle on the socket of `end`, to write what a hostile or broken peer would.
fn raw(end: &impl AsFd) -> UnixStream {
    UnixStream::from(end.as_fd().try_clone_to_owned().unwrap())
}

/// The other end closes part-way through a message: the receiver is told, is never handed
/// part of it, and the end stays failed (where the next message starts is unknown).
#[test]
fn peer_closes_mid_message() {
    let (a, b) = pipe::<()>().unwrap();
    let mut w = raw(&b);
    w.write_all(&100u32.to_le_bytes()).unwrap();
    w.write_all(&[7; 10]).unwrap();
    drop((w, b));
    let mut buf = [0u8; 200];
    match a.recv_bytes_into(&mut buf) {
        Err(RecvBytesError::Failed(err)) => {
            assert!(err.is_disconnected(), "{err}");
            assert!(err.to_string().contains("10 of 100"), "{err}");
        }
        other => panic!("expected a disconnection, got {other:?}"),
    }
    assert!(buf.iter().all(|&b| b == 0), "nothing of it was handed over");
    assert!(a.poll(), "a failed end does not block");
    assert!(a.recv_bytes().unwrap_err().is_disconnected());
    assert!(a.recv().unwrap_err().is_disconnected());
}

/// A peer that announces an impossible length, or one far larger than the buffer:
/// nothing is allocated for it; the impossible one fails the end, the large one is refused
/// and stays first in the pipe, again and again, until a large enough buffer takes it.
#[test]
fn hostile_length_prefix_in_recv_bytes_into() {
    // Over the 1 GiB limit: a malformed stream.
    let (a, b) = pipe::<()>().unwrap();
    raw(&b).write_all(&u32::MAX.to_le_bytes()).unwrap();
    let mut buf = [0u8; 16];
    match a.recv_bytes_into(&mut buf) {
        Err(RecvBytesError::Failed(Error::Codec { message })) => {
            assert!(message.contains("exceeds the limit"), "{message}");
        }
        other => panic!("expected a codec error, got {other:?}"),
    }
    b.send_bytes(b"too late").unwrap();
    let err = a.recv_bytes().unwrap_err();
    assert!(err.to_string().contains("malformed"), "{err}");

    // A million bytes announced, none sent: refused each time, nothing read.
    let (a, b) = pipe::<()>().unwrap();
    let mut w = raw(&b);
    w.write_all(&1_000_000u32.to_le_bytes()).unwrap();
    for _ in 0..3 {
        match a.recv_bytes_into(&mut buf) {
            Err(RecvBytesError::TooLong { len, limit }) => {
                assert_eq!((len, limit), (1_000_000, 16));
            }
            other => panic!("expected TooLong, got {other:?}"),
        }
        assert!(a.recv_bytes_max(999_999).unwrap_err().is_too_long());
        assert!(a.poll(), "the refused message is still waiting");
    }
    // The peer gives up: the message ends part-way.
    drop((w, b));
    let err = a.recv_bytes().unwrap_err();
    assert!(err.to_string().contains("0 of 1000000"), "{err}");

    // A message that fits the next buffer is not lost.
    let (a, b) = pipe::<String>().unwrap();
    b.send(&"twenty characters!!!".to_owned()).unwrap();
    assert!(a.recv_bytes_into(&mut buf).unwrap_err().is_too_long());
    assert_eq!(a.recv().unwrap(), "twenty characters!!!");
    b.send_bytes(&[1; 20]).unwrap();
    assert!(a.recv_bytes_into(&mut buf).unwrap_err().is_too_long());
    let mut big = [0u8; 32];
    assert_eq!(a.recv_bytes_into(&mut big).unwrap(), 20);
    assert_eq!(&big[..20], &[1; 20]);
}

/// Blocks until killed, holding its end of a pipe.
#[flotilla::task]
fn hold(_conn: Connection<()>, ready: Queue<()>) {
    ready.put(()).unwrap();
    loop {
        std::thread::park();
    }
}

/// The child is killed while this process waits on it and its pipe: the wait ends with both
/// ready (the pipe at end of file, the sentinel once the child is reaped), and the exit code
/// is known once the sentinel is.
#[test]
fn child_killed_while_the_parent_waits() {
    let (conn, theirs) = pipe::<()>().unwrap();
    let ready = Queue::new();
    let p = Process::new(HoldTask, (theirs, ready.clone()))
        .start()
        .unwrap();
    ready.get_timeout(PATIENCE).unwrap();
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            barrier.wait();
            let mut seen = Vec::new();
            let deadline = Instant::now() + PATIENCE;
            while !seen.contains(&1) {
                assert!(Instant::now() < deadline, "the sentinel never became ready");
                let ready = wait(&[conn.as_fd(), p.sentinel()]).unwrap();
                assert!(!ready.is_empty());
                seen.extend(ready);
            }
            seen
        });
        barrier.wait();
        p.kill();
        let seen = waiter.join().unwrap();
        assert!(seen.contains(&1));
    });
    assert_eq!(p.exitcode(), Some(-libc::SIGKILL));
    assert!(conn.poll());
    assert!(conn.recv().unwrap_err().is_disconnected());
}

/// Nothing to wait for: both forms return at once, empty (waiting would never end).
#[test]
fn wait_on_an_empty_list() {
    let none: [BorrowedFd<'_>; 0] = [];
    assert!(wait(&none).unwrap().is_empty());
    assert!(wait_timeout(&none, PATIENCE).unwrap().is_empty());
    let no_connections: Vec<Connection<u8>> = Vec::new();
    assert!(wait(&no_connections).unwrap().is_empty());
}
