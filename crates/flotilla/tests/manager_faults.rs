//! The fault matrix of `flotilla::manager`: each stage a request passes through, crossed with
//! each way it can fail. Each cell makes the failure happen (a [`Trap`] whose serde impls
//! panic, abort, exit or hang in a client; a real SIGKILL or SIGSTOP of a client or of the
//! server; garbage on a real socket; a fake server) and checks that the failure is reported
//! to the one operation it belongs to, naming the stage and the cause; that nothing else is
//! touched (other clients, other threads of the same client, the server); and that nothing
//! hangs (every wait under test has a deadline).
//!
//! | stage \ failure | panic | abort | SIGKILL | exit | garbage bytes | hang |
//! |---|---|---|---|---|---|---|
//! | encode, in the client | `encode_panic` | `encode_abort` | `encode_sigkill` | `encode_exit` | `encode_garbage` | `encode_hang` |
//! | the request in transit | n/a (1) | n/a (2) | `request_sigkill` | n/a (2) | `request_garbage` | `request_hang` |
//! | the server: decode and run | n/a (3) | n/a (3) | `server_sigkill` | n/a (3) | `server_garbage` | `server_hang` |
//! | the reply in transit | n/a (1) | n/a (2) | `reply_sigkill` | n/a (2) | `reply_garbage` | `reply_hang` |
//! | decode, in the client | `decode_panic` | `decode_abort` | `decode_sigkill` | `decode_exit` | `decode_garbage` | `decode_hang` |
//!
//! (1) Bytes in transit run no user code: sending and receiving are loops of system calls in
//! flotilla, nothing in which panics.
//! (2) What the other side sees of a process that dies in the middle of a message is its
//! socket closing part-way, whatever killed it: the kernel closes a dead process's sockets
//! the same way after an abort, an exit or SIGKILL. The SIGKILL cell makes that happen.
//! (3) The server runs no user code: it stores the bytes proxies encoded and never decodes a
//! user's type, so nothing a client sends can make it panic, abort or exit on purpose. What
//! can, a malformed request, is its garbage cell (seeded random requests); its death by a
//! signal is its SIGKILL cell.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use flotilla::Error;
use flotilla::manager::{Address, Dict, Event, Lock, Manager, Queue, Semaphore};
use flotilla::process::{Connection, Process, pipe};
use flotilla::shared::LockError;
use rand::{Rng, SeedableRng};
use serde::Serialize;

#[path = "support/children.rs"]
mod children;
#[path = "support/trap.rs"]
#[macro_use]
mod trap;

#[path = "support/raw_manager.rs"]
mod raw_manager;

use children::{PATIENCE, finish, kill, start};
use raw_manager::{answer, frame, read_frame};
use trap::{Fault, Trap};

const KEY: &[u8] = b"matrix";

/// The lease of the managers here: short, so that the cells that wait for one are quick.
const LEASE: Duration = Duration::from_millis(1500);

/// Room for a loaded machine on top of each documented bound.
const SLACK: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------------------
// Helpers.

fn tcp_manager() -> Manager {
    Manager::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .authkey(KEY.to_vec())
        .lease(LEASE)
        .start()
        .unwrap()
}

fn tcp(manager: &Manager) -> SocketAddr {
    match manager.address() {
        Address::Tcp(addr) => *addr,
        other => panic!("not a TCP manager: {other}"),
    }
}

/// Checks that `err` is an encoding error that names what was being done and why.
fn codec_naming(err: &Error, stage: &str, cause: &str) {
    assert!(matches!(err, Error::Codec { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(stage), "{text} does not name {stage:?}");
    assert!(text.contains(cause), "{text} does not name {cause:?}");
}

/// Checks that `err` says the manager is gone or silent, naming `why`.
fn disconnected_naming(err: &Error, why: &str) {
    assert!(err.is_disconnected(), "{err}");
    assert!(err.to_string().contains(why), "{err} does not say {why:?}");
}

/// One insert and one get on `dict` from another process.
#[flotilla::task]
fn touch(dict: Dict<u32, Trap>, n: u32) {
    dict.insert(&n, &Trap::fine(n)).unwrap();
    assert_eq!(dict.get(&n).unwrap(), Some(Trap::fine(n)));
}

/// The server and other clients are unharmed: another process, and this one, use `dict`.
fn others_unharmed(dict: &Dict<u32, Trap>) {
    finish(&start(Process::new(TouchTask, (dict.clone(), 900))));
    dict.insert(&901, &Trap::fine(901)).unwrap();
    assert_eq!(dict.get(&901).unwrap(), Some(Trap::fine(901)));
}

/// What a client that dies in the middle of things held: a lock and a permit.
struct Held {
    lock: Lock,
    permits: Semaphore,
    holding: Event,
    dict: Dict<u32, Trap>,
}

impl Held {
    fn new(manager: &Manager) -> Held {
        Held {
            lock: manager.lock().unwrap(),
            permits: manager.semaphore(1).unwrap(),
            holding: manager.event().unwrap(),
            dict: manager.dict().unwrap(),
        }
    }

    /// The dead client's lock comes to the next holder as `OwnerDied`, its permit comes
    /// back, and everyone else carries on.
    fn given_back(&self) {
        match self.lock.lock_timeout(PATIENCE) {
            Err(LockError::OwnerDied(guard)) => guard.mark_consistent().unwrap(),
            Ok(_) => panic!("the holder's death was not reported"),
            Err(err) => panic!("the lock was not given back: {err}"),
        }
        assert!(self.permits.acquire_timeout(PATIENCE).unwrap());
        self.permits.release().unwrap();
        others_unharmed(&self.dict);
    }
}

/// Which way a holder meets its trap: encoding one into the dict, or decoding the one at
/// key 2.
#[derive(Clone, Copy, serde::Serialize, serde::Deserialize)]
enum Meets {
    Encoding,
    Decoding,
}

/// Takes the lock and a permit, says so, then meets a trap that strikes `fault`.
#[flotilla::task]
fn hold_then_meet(
    lock: Lock,
    permits: Semaphore,
    holding: Event,
    dict: Dict<u32, Trap>,
    meets: Meets,
    fault: Fault,
    hangs: Connection<()>,
) {
    trap::report_hangs_to(hangs);
    let _held = lock.lock().unwrap();
    permits.acquire().unwrap();
    holding.set().unwrap();
    let _ = match meets {
        Meets::Encoding => dict.insert(&1, &Trap::encoding(fault)).map(drop),
        Meets::Decoding => dict.get(&2).map(drop),
    };
}

/// A client holding a lock and a permit dies meeting a trap that strikes `fault` (or is
/// killed in it, when it hangs): it ends alone, and what it held is given back.
fn holder_dies(meets: Meets, fault: Fault, exitcode: i32) {
    let manager = Manager::builder().lease(LEASE).start().unwrap();
    let held = Held::new(&manager);
    held.dict.insert(&2, &Trap::decoding(fault)).unwrap();
    let (hangs, reporter) = pipe::<()>().unwrap();
    let holder = start(Process::new(
        HoldThenMeetTask,
        (
            held.lock.clone(),
            held.permits.clone(),
            held.holding.clone(),
            held.dict.clone(),
            meets,
            fault,
            reporter,
        ),
    ));
    assert!(held.holding.wait_timeout(PATIENCE).unwrap());
    if fault == Fault::Hang {
        hangs.recv_timeout(PATIENCE).unwrap();
        kill(&holder);
    }
    assert!(holder.join_timeout(PATIENCE));
    assert_eq!(holder.exitcode(), Some(exitcode));
    held.given_back();
}

fn by_signal(signal: libc::c_int) -> i32 {
    -signal
}

/// A raw connection that has proven the key and opened session `session`.
fn raw_session(addr: SocketAddr, session: [u8; 16]) -> TcpStream {
    raw_manager::raw_session(addr, KEY, session)
}

/// Waits, with a deadline, for the server to hang up on `stream`.
fn hung_up_on(stream: &mut TcpStream) {
    let mut sink = Vec::new();
    if let Err(err) = stream.read_to_end(&mut sink) {
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    }
}

fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our live child's.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
}

// ---------------------------------------------------------------------------------------
// Encode, in the client.

fn encode_panic_cell() {
    let manager = Manager::new().unwrap();
    let dict = manager.dict::<u32, Trap>().unwrap();
    let err = dict.insert(&1, &Trap::encoding(Fault::Panic)).unwrap_err();
    codec_naming(
        &err,
        "encoding a value for a manager panicked",
        "planted panic",
    );
    let q = manager.queue::<Trap>(None).unwrap();
    let failed = q.put(Trap::encoding(Fault::Panic)).unwrap_err();
    codec_naming(&failed.error, "panicked", "planted panic");
    assert_eq!(failed.item, Trap::encoding(Fault::Panic)); // handed back
    assert_eq!(q.qsize().unwrap(), 0);
    others_unharmed(&dict);
}

fn encode_garbage_cell() {
    // Bytes that are no `Trap` are stored as they are (the server never decodes values);
    // whoever reads them is told, and the rest of the dict is fine.
    let manager = Manager::new().unwrap();
    let dict = manager.dict::<u32, Trap>().unwrap();
    dict.insert(&1, &Trap::encoding(Fault::Garbage)).unwrap();
    codec_naming(
        &dict.get(&1).unwrap_err(),
        "could not decode a value from a manager",
        "",
    );
    others_unharmed(&dict);
}

/// Tries the lock for `wait` from another process and reports whether it got it.
#[flotilla::task]
fn try_lock_for(lock: Lock, wait: Duration, got: flotilla::process::Queue<bool>) {
    got.put(lock.lock_timeout(wait).is_ok()).unwrap();
}

fn encode_hang_cell() {
    let _one = trap::hang_here();
    let manager = Manager::builder().lease(LEASE).start().unwrap();
    let dict = manager.dict::<u32, Trap>().unwrap();
    let lock = manager.lock().unwrap();
    let _held = lock.lock().unwrap();
    std::thread::scope(|scope| {
        let stuck = scope.spawn(|| dict.insert(&1, &Trap::encoding(Fault::Hang)));
        trap::await_hanging(1, PATIENCE);
        // One thread is stuck in a value's `Serialize`; the process's other threads carry
        // on, and its session (renewed by its own thread) outlives several leases: another
        // process cannot take the lock meanwhile.
        others_unharmed(&dict);
        let got = flotilla::process::Queue::new();
        finish(&start(Process::new(
            TryLockForTask,
            (lock.clone(), LEASE * 3, got.clone()),
        )));
        assert!(!got.get_timeout(PATIENCE).unwrap());
        assert!(lock.try_lock().unwrap_err().is_busy()); // still ours: held above
        trap::release();
        stuck.join().unwrap().unwrap();
    });
    assert!(dict.get(&1).unwrap().is_some());
}

// ---------------------------------------------------------------------------------------
// The request in transit.

fn request_sigkill_cell() {
    // What a client killed in the middle of a request leaves: part of a frame, then the
    // end of the stream. The server drops that connection and its session, nothing else.
    let manager = tcp_manager();
    let dict = manager.dict::<u32, Trap>().unwrap();
    let mut raw = raw_session(tcp(&manager), [3; 16]);
    let mut half = 1000u32.to_le_bytes().to_vec();
    half.extend_from_slice(&[4, 0]);
    raw.write_all(&half).unwrap();
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    hung_up_on(&mut raw);
    others_unharmed(&dict);
}

fn request_garbage_cell() {
    let manager = tcp_manager();
    let dict = manager.dict::<u32, Trap>().unwrap();
    for garbage in [
        u32::MAX.to_le_bytes().to_vec(),
        frame(&[0xff; 32]),
        frame(&[]),
    ] {
        let mut raw = raw_session(tcp(&manager), [4; 16]);
        raw.write_all(&garbage).unwrap();
        hung_up_on(&mut raw);
        others_unharmed(&dict);
    }
}

fn request_hang_cell() {
    // A client that stops in the middle of a request and then says nothing more: its
    // session expires with its lease, which closes the connection; nobody waits meanwhile.
    let manager = tcp_manager();
    let dict = manager.dict::<u32, Trap>().unwrap();
    let mut raw = raw_session(tcp(&manager), [5; 16]);
    let mut half = 1000u32.to_le_bytes().to_vec();
    half.extend_from_slice(&[4, 0]);
    raw.write_all(&half).unwrap();
    others_unharmed(&dict);
    let started = Instant::now();
    hung_up_on(&mut raw);
    assert!(
        started.elapsed() < LEASE + LEASE / 8 + SLACK,
        "{:?}",
        started.elapsed()
    );
    others_unharmed(&dict);
}

// ---------------------------------------------------------------------------------------
// The server.

/// Waits on `q` with no time limit and reports how it ended.
#[flotilla::task]
fn wait_forever(q: Queue<u32>, waiting: Event) -> String {
    // The server may be killed before this call returns (the flag is seen set first); the
    // `get` after it fails either way.
    let _ = waiting.set();
    q.get().unwrap_err().to_string()
}

fn server_sigkill_cell() {
    // Clients blocked in the server, in this process and in another, are told at once;
    // nothing waits for ever.
    let manager = Manager::new().unwrap();
    let q = manager.queue::<u32>(None).unwrap();
    let (waiting, lock) = (manager.event().unwrap(), manager.lock().unwrap());
    let _held = lock.lock().unwrap();
    let elsewhere = Process::new(WaitForeverTask, (q.clone(), waiting.clone()))
        .start()
        .unwrap();
    assert!(waiting.wait_timeout(PATIENCE).unwrap());
    std::thread::scope(|scope| {
        let getting = scope.spawn(|| q.get());
        // Held by this process already: this waits in the server.
        let locking = scope.spawn(|| lock.lock_timeout(PATIENCE).map(drop));
        signal(manager.pid().unwrap(), libc::SIGKILL);
        assert!(getting.join().unwrap().unwrap_err().is_disconnected());
        assert!(locking.join().unwrap().is_err());
    });
    assert!(elsewhere.join_timeout(PATIENCE));
    assert_eq!(elsewhere.exitcode(), Some(0)); // its `get` failed instead of waiting
    assert!(manager.dict::<u8, u8>().unwrap_err().is_disconnected());
}

fn server_garbage_cell() {
    // Seeded random requests, well framed or not, from an authenticated session: each ends
    // its own connection at most; the server serves on.
    let manager = tcp_manager();
    let dict = manager.dict::<u32, Trap>().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xfa17);
    for round in 0..200u32 {
        let mut raw = raw_session(tcp(&manager), [6; 16]);
        let len = rng.random_range(0..64);
        let body: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let bytes = if round % 2 == 0 { frame(&body) } else { body };
        let _ = raw.write_all(&bytes);
        let _ = raw.shutdown(std::net::Shutdown::Write);
        hung_up_on(&mut raw);
    }
    others_unharmed(&dict);
}

fn server_hang_cell() {
    // A stopped server: operations with a time limit fail, saying so, within their wait
    // plus a lease; once it runs again, the same proxies work.
    let manager = Manager::builder().lease(LEASE).start().unwrap();
    let dict = manager.dict::<u32, Trap>().unwrap();
    let q = manager.queue::<u32>(None).unwrap();
    let server = manager.pid().unwrap();
    signal(server, libc::SIGSTOP);
    let started = Instant::now();
    let err = q.get_timeout(Duration::from_millis(100)).unwrap_err();
    let flotilla::process::GetError::Failed(err) = err else {
        panic!("expected a failure, got {err:?}")
    };
    disconnected_naming(&err, "(it is stopped, or its host or network went silent)");
    // On an idle connection it does not answer either; on a new one, not the handshake.
    assert!(dict.len().unwrap_err().is_disconnected());
    assert!(started.elapsed() < (Duration::from_millis(100) + LEASE) * 2 + SLACK);
    signal(server, libc::SIGCONT);
    others_unharmed(&dict);
}

// ---------------------------------------------------------------------------------------
// The reply in transit.

/// Waits in `get` on `q`, after saying so.
#[flotilla::task]
fn blocked_get(q: Queue<u32>, waiting: Event) {
    waiting.set().unwrap();
    let _ = q.get();
}

fn reply_sigkill_cell() {
    // A reader killed while its reply is pending: the item is not sent into its dead
    // socket but left for the next reader.
    let manager = Manager::new().unwrap();
    let q = manager.queue::<u32>(None).unwrap();
    let waiting = manager.event().unwrap();
    let reader = start(Process::new(BlockedGetTask, (q.clone(), waiting.clone())));
    assert!(waiting.wait_timeout(PATIENCE).unwrap());
    kill(&reader);
    q.put(7).unwrap();
    assert_eq!(q.get_timeout(PATIENCE).unwrap(), 7);
}

/// What a fake server sends after the first request past the hello.
#[derive(Clone, Copy)]
enum Fake {
    /// A frame that decodes as no reply.
    Garbage,
    /// An impossible length.
    Huge,
    /// Half a frame, then silence.
    Silence,
}

/// The reply `Ready { lease }` and the reply `Done` (mirroring the private format).
#[derive(Serialize)]
enum Reply {
    Ready {
        lease: Duration,
    },
    #[allow(dead_code)]
    Expired,
    #[allow(dead_code)]
    Created,
    Done,
}

/// A server that knows the key and speaks the protocol up to the first request, then
/// answers it as `fake` says. Renewals are answered properly.
fn fake_server(fake: Fake) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut hello = b"FLOTMGR1".to_vec();
                hello.extend_from_slice(&[9u8; 32]);
                stream.write_all(&hello).unwrap();
                let mut theirs = [0u8; 64];
                stream.read_exact(&mut theirs).unwrap();
                let mut welcome = vec![1u8];
                welcome.extend_from_slice(&answer(KEY, b"server", &theirs[32..]));
                stream.write_all(&welcome).unwrap();
                read_frame(&mut stream); // the hello
                let ready = Reply::Ready { lease: LEASE };
                stream
                    .write_all(&frame(&postcard::to_allocvec(&ready).unwrap()))
                    .unwrap();
                loop {
                    let request = read_frame(&mut stream);
                    if request.first() == Some(&5) {
                        // Renew.
                        let done = postcard::to_allocvec(&Reply::Done).unwrap();
                        stream.write_all(&frame(&done)).unwrap();
                        continue;
                    }
                    let _ = match fake {
                        Fake::Garbage => stream.write_all(&frame(&[0xff; 16])),
                        Fake::Huge => stream.write_all(&u32::MAX.to_le_bytes()),
                        Fake::Silence => stream.write_all(&[9, 0]),
                    };
                    // Stay connected, silent, until the client hangs up.
                    let _ = stream.read_to_end(&mut Vec::new());
                    return;
                }
            });
        }
    });
    addr
}

fn reply_garbage_cell() {
    for (fake, says) in [
        (Fake::Garbage, "could not decode the manager's reply"),
        (Fake::Huge, "exceeds the limit"),
    ] {
        let client = Manager::connect(fake_server(fake), KEY).unwrap();
        codec_naming(&client.dict::<u8, u8>().unwrap_err(), says, "");
    }
}

fn reply_hang_cell() {
    // A server that starts a reply and stops: the client gives up within a lease, saying so.
    let client = Manager::connect(fake_server(Fake::Silence), KEY).unwrap();
    let started = Instant::now();
    disconnected_naming(
        &client.dict::<u8, u8>().unwrap_err(),
        "did not answer within",
    );
    assert!(started.elapsed() < LEASE + SLACK, "{:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------
// Decode, in the client.

fn decode_panic_cell() {
    let manager = Manager::new().unwrap();
    let dict = manager.dict::<u32, Trap>().unwrap();
    dict.insert(&1, &Trap::decoding(Fault::Panic)).unwrap();
    codec_naming(
        &dict.get(&1).unwrap_err(),
        "decoding a value from a manager",
        "planted panic",
    );
    // The reply was read whole before decoding: the connection is in step.
    others_unharmed(&dict);
}

/// A dict of `u32`s registered under `name`, read back as a dict of strings.
fn decode_garbage_cell() {
    let manager = Manager::new().unwrap();
    let numbers = manager.dict::<u32, u32>().unwrap();
    numbers.insert(&1, &u32::MAX).unwrap();
    manager.register("numbers", &numbers).unwrap();
    let words: Dict<u32, String> = manager.get("numbers").unwrap();
    codec_naming(
        &words.get(&1).unwrap_err(),
        "could not decode a value from a manager as alloc::string::String",
        "",
    );
    assert_eq!(numbers.get(&1).unwrap(), Some(u32::MAX));
}

fn decode_hang_cell() {
    let _one = trap::hang_here();
    let manager = Manager::builder().lease(LEASE).start().unwrap();
    let dict = manager.dict::<u32, Trap>().unwrap();
    dict.insert(&1, &Trap::decoding(Fault::Hang)).unwrap();
    std::thread::scope(|scope| {
        let stuck = scope.spawn(|| dict.get(&1));
        trap::await_hanging(1, PATIENCE);
        others_unharmed(&dict);
        trap::release();
        assert!(stuck.join().unwrap().unwrap().is_some());
    });
}

// ---------------------------------------------------------------------------------------
// The matrix: one test per cell, row by row as in the table above.

cells! {
    encode_panic: encode_panic_cell();
    encode_abort: holder_dies(Meets::Encoding, Fault::Abort, by_signal(libc::SIGABRT));
    encode_sigkill: holder_dies(Meets::Encoding, Fault::Hang, by_signal(libc::SIGKILL));
    encode_exit: holder_dies(Meets::Encoding, Fault::Exit(6), 6);
    encode_garbage: encode_garbage_cell();
    encode_hang: encode_hang_cell();
    // request_panic, request_abort, request_exit: n/a (1), (2).
    request_sigkill: request_sigkill_cell();
    request_garbage: request_garbage_cell();
    request_hang: request_hang_cell();
    // server_panic, server_abort, server_exit: n/a (3).
    server_sigkill: server_sigkill_cell();
    server_garbage: server_garbage_cell();
    server_hang: server_hang_cell();
    // reply_panic, reply_abort, reply_exit: n/a (1), (2).
    reply_sigkill: reply_sigkill_cell();
    reply_garbage: reply_garbage_cell();
    reply_hang: reply_hang_cell();
    decode_panic: decode_panic_cell();
    decode_abort: holder_dies(Meets::Decoding, Fault::Abort, by_signal(libc::SIGABRT));
    decode_sigkill: holder_dies(Meets::Decoding, Fault::Hang, by_signal(libc::SIGKILL));
    decode_exit: holder_dies(Meets::Decoding, Fault::Exit(8), 8);
    decode_garbage: decode_garbage_cell();
    decode_hang: decode_hang_cell();
}
