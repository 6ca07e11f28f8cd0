//! The fault matrix of `flotilla::process`: a `Process` with pipes and queues. Each stage a
//! value or a child passes through, crossed with each way it can fail; each cell makes the
//! failure happen (a `Trap` whose serde impls panic, abort, exit or hang, a real SIGKILL,
//! garbage written into a real socket) and checks that the failure is reported to the one
//! operation it belongs to, naming the stage and the cause; that nothing else is touched
//! (the same pipe or queue, other users of it, other processes); and that nothing hangs
//! (every wait under test has a deadline).
//!
//! | stage \ failure | panic | abort | SIGKILL | exit | garbage bytes | hang |
//! |---|---|---|---|---|---|---|
//! | encode, in the sender | `encode_panic` | `encode_abort` | `encode_sigkill` | `encode_exit` | `encode_garbage` | `encode_hang` |
//! | send: bytes in transit | n/a (1) | `send_abort` | `send_sigkill` | `send_exit` | `send_garbage` | `send_hang` |
//! | decode, in the receiver | `decode_panic` | `decode_abort` | `decode_sigkill` | `decode_exit` | `decode_garbage` | `decode_hang` |
//! | the child's run | `run_panic` | `run_abort` | `run_sigkill` | `run_exit` | `run_garbage` | `run_hang` |
//! | the child's result and exit | `result_panic` | `result_abort` | `result_sigkill` | `result_exit` | n/a (2) | `result_hang` |
//!
//! (1) Bytes in transit run no user code: a send or a receive is a loop of system calls in
//! flotilla, nothing in which panics. A panic elsewhere in the sending thread happens before
//! or after the send, which is the encode row or no fault at all.
//! (2) A process's result is encoded in the child (the result row's other cells) and then
//! discarded there, as Python discards a target's return value: no bytes travel back to be
//! garbage.
//!
//! The send row's abort, exit and SIGKILL cells end the sender in the middle of a message; the
//! decode row's garbage cell feeds a child garbage instead of its start message. A queue's
//! items live in its creating process, so the queue's "send" is a connection to its broker,
//! which a test drives byte by byte where a real sender cannot be stopped at the right byte.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::time::{Duration, Instant};

use flotilla::Error;
use flotilla::process::{Connection, GetError, Process, Queue, StartedProcess, pipe};

#[path = "support/children.rs"]
mod children;
#[path = "support/trap.rs"]
#[macro_use]
mod trap;

use children::{PATIENCE, finish, kill, start};
use trap::{Fault, Trap};

// ---------------------------------------------------------------------------------------
// Helpers.

/// Checks that `err` is an encoding error that names what was being done and why.
fn codec_naming(err: &Error, stage: &str, cause: &str) {
    assert!(matches!(err, Error::Codec { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(stage), "{text} does not name {stage:?}");
    assert!(text.contains(cause), "{text} does not name {cause:?}");
}

/// Checks that what a child said names each of `parts`.
fn says(said: &str, parts: &[&str]) {
    for part in parts {
        assert!(said.contains(part), "{said:?} does not say {part:?}");
    }
}

/// Waits for `child` to end and checks how.
fn ended_with(child: &StartedProcess, exitcode: i32) {
    assert!(child.join_timeout(PATIENCE), "the child did not end");
    assert_eq!(child.exitcode(), Some(exitcode));
}

/// A child that hangs: `join` returns without it, and it is ended from outside, by
/// `SIGTERM` if `exitcode` says so, else by `SIGKILL`.
fn stuck(child: &StartedProcess, exitcode: i32) {
    assert!(!child.join_timeout(Duration::from_millis(50)));
    assert!(child.is_alive());
    if exitcode == by_signal(libc::SIGTERM) {
        child.terminate();
    } else {
        child.kill();
    }
}

/// The exit code of a process killed by `signal`, as Python's `exitcode` says it.
fn by_signal(signal: libc::c_int) -> i32 {
    -signal
}

/// Puts one value on `q` through the broker (from another process) and takes it back there.
#[flotilla::task]
fn round_trip(q: Queue<Trap>, n: u32) -> u32 {
    q.put(Trap::fine(n)).unwrap();
    q.get_timeout(Duration::from_secs(30)).unwrap().n
}

/// Checks that `q` still works for other processes and for this one, and holds nothing.
fn queue_unharmed(q: &Queue<Trap>) {
    finish(&start(Process::new(RoundTripTask, (q.clone(), 77))));
    q.put(Trap::fine(78)).unwrap();
    assert_eq!(q.get_timeout(PATIENCE).unwrap().n, 78);
    assert!(q.try_get().unwrap_err().is_empty());
}

/// Checks that `conn` still carries values both ways to `peer`.
fn pipe_unharmed(conn: &Connection<Trap>, peer: &Connection<Trap>) {
    conn.send(&Trap::fine(5)).unwrap();
    assert_eq!(peer.recv_timeout(PATIENCE).unwrap().n, 5);
    peer.send(&Trap::fine(6)).unwrap();
    assert_eq!(conn.recv_timeout(PATIENCE).unwrap().n, 6);
}

/// Another process still starts, runs and ends normally.
#[flotilla::task]
fn nothing() {}

fn processes_unharmed() {
    finish(&start(Process::new(NothingTask, ())));
}

/// The broker's socket and the token of `q` (mirrors the handle's private encoding).
fn broker_of(q: &Queue<Trap>) -> (SocketAddr, [u8; 16]) {
    #[derive(serde::Deserialize)]
    struct Ticket {
        #[serde(with = "serde_bytes")]
        name: Vec<u8>,
        token: [u8; 16],
    }
    let ticket: Ticket = postcard::from_bytes(&postcard::to_allocvec(q).unwrap()).unwrap();
    (
        SocketAddr::from_abstract_name(&ticket.name).unwrap(),
        ticket.token,
    )
}

/// A raw connection attached to `q`'s broker (mirrors the broker's private protocol).
fn attached(q: &Queue<Trap>) -> UnixStream {
    #[derive(serde::Serialize)]
    enum Request {
        Attach { version: u32, token: [u8; 16] },
    }
    let (addr, token) = broker_of(q);
    let mut stream = UnixStream::connect_addr(&addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let attach = postcard::to_allocvec(&Request::Attach { version: 2, token }).unwrap();
    stream.write_all(&frame(&attach)).unwrap();
    let mut reply = [0u8; 5]; // a length and `Attached`
    stream.read_exact(&mut reply).unwrap();
    stream
}

/// The start of a put request whose item is `len` bytes long (mirrors the private protocol).
fn put_header(len: usize) -> Vec<u8> {
    #[derive(serde::Serialize)]
    enum Wait {
        #[allow(dead_code)]
        Forever,
        For(Duration),
    }
    #[derive(serde::Serialize)]
    enum Request {
        #[allow(dead_code)]
        Attach,
        Put {
            wait: Wait,
        },
    }
    let header = postcard::to_allocvec(&Request::Put {
        wait: Wait::For(Duration::ZERO),
    })
    .unwrap();
    let mut frame = u32::try_from(header.len() + len)
        .unwrap()
        .to_le_bytes()
        .to_vec();
    frame.extend_from_slice(&header);
    frame
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut frame = u32::try_from(body.len()).unwrap().to_le_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

/// Waits, with a deadline, for the broker to hang up on `stream`.
fn hung_up_on(stream: &mut UnixStream) {
    let mut sink = Vec::new();
    match stream.read_to_end(&mut sink) {
        Ok(_) => {}
        Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}"),
    }
}

/// A raw writer on the socket of `conn`'s peer, to put bytes on the wire that no
/// `Connection` would send.
fn raw_writer(conn: &Connection<Trap>) -> UnixStream {
    UnixStream::from(conn.as_fd().try_clone_to_owned().unwrap())
}

// ---------------------------------------------------------------------------------------
// Children that meet a trap.

/// Sends a trap that strikes `fault` as it is encoded, here (it is made here: passed as an
/// argument, it would strike in the parent, which encodes the arguments).
#[flotilla::task]
fn send_trap(conn: Connection<Trap>, hangs: Connection<()>, fault: Fault) {
    trap::report_hangs_to(hangs);
    let _ = conn.send(&Trap::encoding(fault));
}

/// Puts a trap that strikes `fault` as it is encoded, here.
#[flotilla::task]
fn put_trap(q: Queue<Trap>, hangs: Connection<()>, fault: Fault) {
    trap::report_hangs_to(hangs);
    let _ = q.put(Trap::encoding(fault));
}

/// Receives one value on `conn` (in its `Deserialize`, a trap strikes).
#[flotilla::task]
fn recv_trap(conn: Connection<Trap>, hangs: Connection<()>) {
    trap::report_hangs_to(hangs);
    let _ = conn.recv();
}

/// Takes one value from `q`, saying first that it is about to.
#[flotilla::task]
fn get_trap(q: Queue<Trap>, hangs: Connection<()>, getting: Connection<()>) {
    trap::report_hangs_to(hangs);
    getting.send(&()).unwrap();
    let _ = q.get();
}

/// The parent's end of a child's hang reports.
fn hang_reports() -> (Connection<()>, Connection<()>) {
    pipe::<()>().unwrap()
}

/// A sender of a trap that strikes `fault` on a pipe, and one putting it on a queue, both
/// children: returns them with the parent's ends (the pipe's, the queue, the hang reports).
struct Senders {
    on_pipe: StartedProcess,
    on_queue: StartedProcess,
    pipe_end: Connection<Trap>,
    queue: Queue<Trap>,
    hangs: Connection<()>,
}

fn senders(fault: Fault) -> Senders {
    let (pipe_end, theirs) = pipe::<Trap>().unwrap();
    let (hangs, reporter) = hang_reports();
    let (hangs_too, reporter_too) = hang_reports();
    let queue = Queue::new();
    let on_pipe = start(Process::new(SendTrapTask, (theirs, reporter, fault)));
    let on_queue = start(Process::new(
        PutTrapTask,
        (queue.clone(), reporter_too, fault),
    ));
    if fault == Fault::Hang {
        hangs_too.recv_timeout(PATIENCE).unwrap();
    }
    Senders {
        on_pipe,
        on_queue,
        pipe_end,
        queue,
        hangs,
    }
}

/// The checks of a sender that died encoding: only it ended, the way `exitcode` says; its pipe
/// reports the end; the queue holds nothing and serves everyone.
fn sender_died(s: &Senders, exitcode: i32) {
    ended_with(&s.on_pipe, exitcode);
    ended_with(&s.on_queue, exitcode);
    assert!(
        s.pipe_end
            .recv_timeout(PATIENCE)
            .unwrap_err()
            .is_disconnected()
    );
    queue_unharmed(&s.queue);
    processes_unharmed();
}

// ---------------------------------------------------------------------------------------
// Encode, in the sender.

fn encode_panic_cell() {
    let (a, b) = pipe::<Trap>().unwrap();
    let err = a.send(&Trap::encoding(Fault::Panic)).unwrap_err();
    codec_naming(
        &err,
        "encoding a value for a pipe panicked",
        "planted panic",
    );
    pipe_unharmed(&a, &b);

    let q = Queue::new();
    let failed = q.put(Trap::encoding(Fault::Panic)).unwrap_err();
    codec_naming(
        &failed.error,
        "encoding an item for a queue panicked",
        "planted panic",
    );
    assert_eq!(failed.item, Trap::encoding(Fault::Panic)); // handed back
    queue_unharmed(&q);

    let err = Process::new(NothingWithTask, Trap::encoding(Fault::Panic))
        .start()
        .unwrap_err();
    codec_naming(&err, "encoding the arguments of task", "planted panic");
    processes_unharmed();
}

/// Takes a trap as its argument, so that the child decodes it.
#[flotilla::task]
fn nothing_with(_trap: Trap) {}

fn encode_sigkill_cell() {
    let s = senders(Fault::Hang);
    s.hangs.recv_timeout(PATIENCE).unwrap(); // the pipe's sender is in its `Serialize`
    kill(&s.on_pipe);
    kill(&s.on_queue);
    sender_died(&s, by_signal(libc::SIGKILL));
}

fn encode_garbage_cell() {
    // Bytes of the wrong shape reach the receiver, which says so; the next value is fine.
    let (a, b) = pipe::<Trap>().unwrap();
    a.send(&Trap::encoding(Fault::Garbage)).unwrap();
    let err = b.recv_timeout(PATIENCE).unwrap_err();
    codec_naming(&err, "could not decode a value received on a pipe", "");
    pipe_unharmed(&a, &b);

    let q = Queue::new();
    q.put(Trap::encoding(Fault::Garbage)).unwrap();
    match q.get_timeout(PATIENCE) {
        Err(GetError::Failed(err)) => {
            codec_naming(&err, "could not decode an item from a queue", "")
        }
        other => panic!("expected a decoding failure, got {other:?}"),
    }
    queue_unharmed(&q);
}

fn encode_hang_cell() {
    let _one = trap::hang_here();
    let (a, b) = pipe::<Trap>().unwrap();
    let q = Queue::new();
    std::thread::scope(|scope| {
        let sending = scope.spawn(|| a.send(&Trap::encoding(Fault::Hang)));
        let putting = scope.spawn(|| q.put(Trap::encoding(Fault::Hang)));
        trap::await_hanging(2, PATIENCE);
        // Two threads are stuck in their values' `Serialize`; the pipe and the queue serve
        // everyone else meanwhile.
        pipe_unharmed(&a, &b);
        queue_unharmed(&q);
        trap::release();
        sending.join().unwrap().unwrap();
        putting.join().unwrap().unwrap();
    });
    assert_eq!(b.recv_timeout(PATIENCE).unwrap().n, 0);
    assert_eq!(q.get_timeout(PATIENCE).unwrap().n, 0);
}

// ---------------------------------------------------------------------------------------
// Send: the bytes in transit.

/// Starts sending 16 MiB on `conn` from another thread (more than a socket holds, so the send
/// is under way until the peer reads), then ends the way `how` says: 0 aborts, 1 exits with
/// code 9, anything else waits to be killed.
#[flotilla::task]
fn die_mid_send(conn: Connection<Vec<u8>>, how: Queue<u8>) {
    std::thread::spawn(move || conn.send(&vec![7u8; 16 << 20]));
    match how.get().unwrap() {
        0 => std::process::abort(),
        1 => std::process::exit(9),
        _ => loop {
            std::thread::park();
        },
    }
}

/// A sender that dies part-way through a message: the receiver is told the pipe closed (and
/// how much of the message came), never handed half a value.
fn sender_dies_mid_message(how: u8, exitcode: i32) {
    let (ours, theirs) = pipe::<Vec<u8>>().unwrap();
    let orders = Queue::new();
    let sender = start(Process::new(DieMidSendTask, (theirs, orders.clone())));
    assert!(ours.poll_timeout(PATIENCE), "nothing arrived");
    if how < 2 {
        orders.put(how).unwrap();
    } else {
        kill(&sender);
    }
    ended_with(&sender, exitcode);
    let err = ours.recv_timeout(PATIENCE).unwrap_err();
    assert!(err.is_disconnected(), "{err}");
    assert!(err.to_string().contains("closed after"), "{err}");
    processes_unharmed();
}

fn send_sigkill_cell() {
    sender_dies_mid_message(2, by_signal(libc::SIGKILL));
    // What a killed sender leaves on a queue's broker connection: part of a put, then the
    // end of the stream. The broker drops it; the queue does not change.
    let q = Queue::new();
    let mut raw = attached(&q);
    let mut half = put_header(100);
    half.extend_from_slice(&[1; 50]);
    raw.write_all(&half).unwrap();
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    hung_up_on(&mut raw);
    queue_unharmed(&q);
}

fn send_garbage_cell() {
    // A well-framed message that decodes as no value: reported, and the pipe stays in step.
    let (a, b) = pipe::<Trap>().unwrap();
    raw_writer(&a).write_all(&frame(&[0xff; 12])).unwrap();
    codec_naming(
        &b.recv_timeout(PATIENCE).unwrap_err(),
        "could not decode a value received on a pipe",
        "",
    );
    pipe_unharmed(&a, &b);
    // An impossible length: reported, and from then on the pipe says it cannot be read
    // (where the next message starts is unknown) instead of decoding noise.
    raw_writer(&a).write_all(&u32::MAX.to_le_bytes()).unwrap();
    codec_naming(
        &b.recv_timeout(PATIENCE).unwrap_err(),
        "malformed",
        "exceeds the limit",
    );
    let err = b.recv_timeout(PATIENCE).unwrap_err();
    assert!(
        err.is_disconnected() && err.to_string().contains("malformed"),
        "{err}"
    );
    // The other direction is a different stream, and unharmed.
    b.send(&Trap::fine(8)).unwrap();
    assert_eq!(a.recv_timeout(PATIENCE).unwrap().n, 8);

    // Garbage to a queue's broker ends that connection only.
    let q = Queue::new();
    let mut raw = attached(&q);
    raw.write_all(&frame(&[0xff; 40])).unwrap();
    hung_up_on(&mut raw);
    queue_unharmed(&q);
}

fn send_hang_cell() {
    // A sender that stops part-way through a message: the timed receive ends, says so, and
    // the pipe reports it can no longer be read.
    let (a, b) = pipe::<Trap>().unwrap();
    let mut half = 100u32.to_le_bytes().to_vec();
    half.extend_from_slice(&[0; 10]);
    raw_writer(&a).write_all(&half).unwrap();
    let err = b.recv_timeout(Duration::from_millis(200)).unwrap_err();
    assert!(err.is_disconnected(), "{err}");
    assert!(
        err.to_string().contains("stopped arriving part-way"),
        "{err}"
    );
    assert!(b.recv_timeout(PATIENCE).unwrap_err().is_disconnected());

    // On a queue's broker connection: the broker hangs up within its limit for a request to
    // go on arriving (5 s), and serves everyone meanwhile.
    let q = Queue::new();
    let mut raw = attached(&q);
    raw.write_all(&put_header(100)).unwrap();
    queue_unharmed(&q);
    let started = Instant::now();
    hung_up_on(&mut raw);
    assert!(started.elapsed() < PATIENCE);
    queue_unharmed(&q);
}

// ---------------------------------------------------------------------------------------
// Decode, in the receiver.

fn decode_panic_cell() {
    let (a, b) = pipe::<Trap>().unwrap();
    a.send(&Trap::decoding(Fault::Panic)).unwrap();
    codec_naming(
        &b.recv_timeout(PATIENCE).unwrap_err(),
        "decoding a value received on a pipe panicked",
        "planted panic",
    );
    pipe_unharmed(&a, &b);

    let q = Queue::new();
    q.put(Trap::decoding(Fault::Panic)).unwrap();
    match q.get_timeout(PATIENCE) {
        Err(GetError::Failed(err)) => codec_naming(
            &err,
            "decoding an item from a queue panicked",
            "planted panic",
        ),
        other => panic!("expected a decoding failure, got {other:?}"),
    }
    queue_unharmed(&q);

    // A child whose arguments panic as they are decoded: it fails alone, saying why.
    let (child, stderr) =
        trap::capture_stderr(Process::new(NothingWithTask, Trap::decoding(Fault::Panic)));
    ended_with(&child, 1);
    says(
        &trap::captured(&stderr),
        &["could not decode the arguments", "planted panic"],
    );
    processes_unharmed();
}

/// A receiver of a trap on a pipe, one taking it from a queue, and one decoding it as its
/// arguments, all children, each meeting `fault` in its `Deserialize`.
fn receivers(fault: Fault, exitcode: i32) {
    let (ours, theirs) = pipe::<Trap>().unwrap();
    let (hangs, reporter) = hang_reports();
    let on_pipe = start(Process::new(RecvTrapTask, (theirs, reporter)));
    ours.send(&Trap::decoding(fault)).unwrap();

    let q = Queue::new();
    let (hangs_too, reporter_too) = hang_reports();
    let (getting, getter) = pipe::<()>().unwrap();
    let on_queue = start(Process::new(GetTrapTask, (q.clone(), reporter_too, getter)));
    getting.recv_timeout(PATIENCE).unwrap();
    q.put(Trap::decoding(fault)).unwrap();

    let as_args = start(Process::new(NothingWithTask, Trap::decoding(fault)));
    if fault == Fault::Hang {
        hangs.recv_timeout(PATIENCE).unwrap();
        hangs_too.recv_timeout(PATIENCE).unwrap();
        for child in [&on_pipe, &on_queue, &as_args] {
            child.kill();
        }
    }
    for child in [&on_pipe, &on_queue, &as_args] {
        ended_with(child, exitcode);
    }
    // The receiver's end is gone: sending to it says so.
    assert!(ours.send(&Trap::fine(1)).unwrap_err().is_disconnected());
    // The trap was handed over (a value taken is the taker's, as in Python); the queue
    // goes on serving everyone else.
    queue_unharmed(&q);
    processes_unharmed();
}

fn decode_sigkill_cell() {
    receivers(Fault::Hang, by_signal(libc::SIGKILL));
    // A consumer killed while it waits in `get` (nothing handed over yet) costs nothing: the
    // next item goes to the next consumer.
    let q = Queue::new();
    let (getting, getter) = pipe::<()>().unwrap();
    let (_hangs, reporter) = hang_reports();
    let consumer = start(Process::new(GetTrapTask, (q.clone(), reporter, getter)));
    getting.recv_timeout(PATIENCE).unwrap();
    kill(&consumer);
    q.put(Trap::fine(3)).unwrap();
    let survivor = start(Process::new(RoundTripTask, (q.clone(), 4)));
    ended_with(&survivor, 0);
    // FIFO: the survivor put 4 behind 3, took 3, and left 4.
    assert_eq!(q.get_timeout(PATIENCE).unwrap().n, 4);
}

fn decode_garbage_cell() {
    // A child given garbage instead of its start message exits with code 2, saying why.
    use std::os::unix::process::CommandExt;
    let (ours, theirs) = UnixStream::pair().unwrap();
    let fd = theirs.as_fd().try_clone_to_owned().unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child
        .env("FLOTILLA_PROCESS_FD", raw.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    // SAFETY: between fork and exec the closure only calls fcntl, which is
    // async-signal-safe, on a descriptor it owns a copy of; it allocates nothing.
    unsafe {
        child.pre_exec(move || {
            if libc::fcntl(raw, libc::F_SETFD, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = child.spawn().unwrap();
    drop((theirs, fd));
    (&ours).write_all(&frame(&[0xee; 64])).unwrap();
    drop(ours);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    says(
        &String::from_utf8_lossy(&out.stderr),
        &["could not read its task"],
    );
    processes_unharmed();
}

fn decode_hang_cell() {
    let _one = trap::hang_here();
    let (a, b) = pipe::<Trap>().unwrap();
    let q = Queue::new();
    a.send(&Trap::decoding(Fault::Hang)).unwrap();
    a.send(&Trap::fine(2)).unwrap();
    q.put(Trap::decoding(Fault::Hang)).unwrap();
    q.put(Trap::fine(3)).unwrap();
    std::thread::scope(|scope| {
        let receiving = scope.spawn(|| b.recv_timeout(PATIENCE));
        let getting = scope.spawn(|| q.get_timeout(PATIENCE));
        trap::await_hanging(2, PATIENCE);
        // Two readers are stuck in their values' `Deserialize`; others read on.
        assert_eq!(b.recv_timeout(PATIENCE).unwrap().n, 2);
        assert_eq!(q.get_timeout(PATIENCE).unwrap().n, 3);
        pipe_unharmed(&a, &b);
        queue_unharmed(&q);
        trap::release();
        assert_eq!(receiving.join().unwrap().unwrap().n, 0);
        assert_eq!(getting.join().unwrap().unwrap().n, 0);
    });
}

// ---------------------------------------------------------------------------------------
// The child's run.

/// Strikes `fault` in its own body, holding a pipe end and a queue handle.
#[flotilla::task]
fn run_into(fault: Fault, conn: Connection<Trap>, q: Queue<Trap>) {
    q.put(Trap::fine(1)).unwrap();
    conn.send(&Trap::fine(1)).unwrap();
    match fault {
        Fault::Panic => panic!("planted panic"),
        Fault::Abort => std::process::abort(),
        Fault::Exit(code) => std::process::exit(code),
        Fault::Hang => loop {
            std::thread::park();
        },
        Fault::Garbage => {
            raw_writer(&conn).write_all(&frame(&[0xff; 9])).unwrap();
        }
        Fault::None => {}
    }
}

/// A child that strikes `fault` while running: it ends alone, the way `exitcode` says; its
/// peer learns of it; its queue works on.
fn child_runs_into(fault: Fault, exitcode: i32) -> String {
    let (ours, theirs) = pipe::<Trap>().unwrap();
    let q = Queue::new();
    let (child, stderr) =
        trap::capture_stderr(Process::new(RunIntoTask, (fault, theirs, q.clone())));
    assert_eq!(ours.recv_timeout(PATIENCE).unwrap().n, 1);
    if fault == Fault::Hang {
        stuck(&child, exitcode);
    }
    ended_with(&child, exitcode);
    if fault == Fault::Garbage {
        codec_naming(
            &ours.recv_timeout(PATIENCE).unwrap_err(),
            "could not decode a value received on a pipe",
            "",
        );
    }
    assert!(ours.recv_timeout(PATIENCE).unwrap_err().is_disconnected());
    assert_eq!(q.get_timeout(PATIENCE).unwrap().n, 1);
    queue_unharmed(&q);
    processes_unharmed();
    trap::captured(&stderr)
}

/// Puts `n` on the full queue `q` (waiting in its broker), after saying it is about to.
#[flotilla::task]
fn put_into_full(q: Queue<u32>, putting: Connection<()>) {
    putting.send(&()).unwrap();
    let _ = q.put(2);
}

fn run_sigkill_cell() {
    child_runs_into(Fault::Hang, by_signal(libc::SIGKILL));
    // A producer killed while it waits for room adds nothing: the bound holds.
    let q = Queue::bounded(1).unwrap();
    q.put(1).unwrap();
    let (putting, putter) = pipe::<()>().unwrap();
    let producer = start(Process::new(PutIntoFullTask, (q.clone(), putter)));
    putting.recv_timeout(PATIENCE).unwrap();
    kill(&producer);
    assert_eq!(q.get_timeout(PATIENCE).unwrap(), 1);
    assert!(
        q.get_timeout(Duration::from_millis(300))
            .unwrap_err()
            .is_empty()
    );
    assert_eq!(q.qsize().unwrap(), 0);
}

// ---------------------------------------------------------------------------------------
// The child's result and exit.

/// Returns a trap that strikes `fault` as the child encodes its result.
#[flotilla::task]
fn returning(fault: Fault, hangs: Connection<()>) -> Trap {
    trap::report_hangs_to(hangs);
    Trap::encoding(fault)
}

/// A child whose result strikes `fault` as it is encoded: it ends alone, as `exitcode` says.
fn result_strikes(fault: Fault, exitcode: i32) -> String {
    let (hangs, reporter) = hang_reports();
    let (child, stderr) = trap::capture_stderr(Process::new(ReturningTask, (fault, reporter)));
    if fault == Fault::Hang {
        hangs.recv_timeout(PATIENCE).unwrap();
        stuck(&child, exitcode);
    }
    ended_with(&child, exitcode);
    processes_unharmed();
    trap::captured(&stderr)
}

// ---------------------------------------------------------------------------------------
// The matrix: one test per cell, row by row as in the table above.

cells! {
    encode_panic: encode_panic_cell();
    encode_abort: sender_died(&senders(Fault::Abort), by_signal(libc::SIGABRT));
    encode_sigkill: encode_sigkill_cell();
    encode_exit: sender_died(&senders(Fault::Exit(7)), 7);
    encode_garbage: encode_garbage_cell();
    encode_hang: encode_hang_cell();
    // send_panic: n/a (1).
    send_abort: sender_dies_mid_message(0, by_signal(libc::SIGABRT));
    send_sigkill: send_sigkill_cell();
    send_exit: sender_dies_mid_message(1, 9);
    send_garbage: send_garbage_cell();
    send_hang: send_hang_cell();
    decode_panic: decode_panic_cell();
    decode_abort: receivers(Fault::Abort, by_signal(libc::SIGABRT));
    decode_sigkill: decode_sigkill_cell();
    decode_exit: receivers(Fault::Exit(3), 3);
    decode_garbage: decode_garbage_cell();
    decode_hang: decode_hang_cell();
    run_panic: says(&child_runs_into(Fault::Panic, 1), &["panicked", "planted panic"]);
    run_abort: child_runs_into(Fault::Abort, by_signal(libc::SIGABRT));
    run_sigkill: run_sigkill_cell();
    run_exit: child_runs_into(Fault::Exit(4), 4);
    run_garbage: child_runs_into(Fault::Garbage, 0);
    run_hang: child_runs_into(Fault::Hang, by_signal(libc::SIGTERM));
    result_panic: says(&result_strikes(Fault::Panic, 1), &["could not encode the result", "planted panic"]);
    result_abort: result_strikes(Fault::Abort, by_signal(libc::SIGABRT));
    result_sigkill: result_strikes(Fault::Hang, by_signal(libc::SIGKILL));
    result_exit: result_strikes(Fault::Exit(5), 5);
    // result_garbage: n/a (2).
    result_hang: result_strikes(Fault::Hang, by_signal(libc::SIGTERM));
}
