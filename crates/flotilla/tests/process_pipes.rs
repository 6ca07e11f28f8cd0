//! `flotilla::process::pipe`: connections between processes, closed peers, one-way misuse,
//! and connections refused outside `Process::start`.

use std::time::{Duration, Instant};

use flotilla::process::{Connection, Process, Queue, pipe};
use flotilla::{Error, Executor, ProcessPoolExecutor};

/// Serves the ball back, one higher, until the other side hangs up.
#[flotilla::task]
fn pong(conn: Connection<u32>) {
    loop {
        match conn.recv() {
            Ok(n) => conn.send(&(n + 1)).unwrap(),
            Err(err) if err.is_disconnected() => return,
            Err(err) => panic!("pong: {err}"),
        }
    }
}

/// Plays `rounds` rounds and reports the final count.
#[flotilla::task]
fn ping(conn: Connection<u32>, rounds: u32, result: Queue<u32>) {
    let mut n = 0;
    for _ in 0..rounds {
        conn.send(&n).unwrap();
        n = conn.recv().unwrap() + 1;
    }
    result.put(n).unwrap();
}

/// Exits without a word, closing its end.
#[flotilla::task]
fn hang_up(conn: Connection<String>) {
    drop(conn);
}

/// Sends one message and exits.
#[flotilla::task]
fn say(conn: Connection<String>, word: String) {
    conn.send(&word).unwrap();
}

/// Reports what happens when this one-way end is misused in a child.
#[flotilla::task]
fn misuse(rx: Connection<u8>, tx: Connection<u8>, out: Queue<(bool, bool)>) {
    let send_on_rx = matches!(rx.send(&1), Err(Error::InvalidOperation { .. }));
    let recv_on_tx = matches!(tx.recv(), Err(Error::InvalidOperation { .. }));
    out.put((send_on_rx, recv_on_tx)).unwrap();
}

#[flotilla::task]
fn takes_a_connection(conn: Connection<u8>) -> u8 {
    conn.recv().unwrap_or(0)
}

#[test]
fn ping_pong_between_two_children() {
    let (a, b) = pipe::<u32>(true).unwrap();
    let result = Queue::new();
    let mut pinger = Process::new(ping, (a, 50, result.clone()));
    let mut ponger = Process::new(pong, b);
    pinger.start().unwrap();
    ponger.start().unwrap();
    assert_eq!(result.get().unwrap(), 100);
    assert!(pinger.join());
    // The ponger only returns (with 0) when it sees its peer close: the pinger's exit, since
    // this process gave up its copies at start.
    assert!(ponger.join_timeout(Duration::from_secs(30)));
    assert_eq!(pinger.exitcode(), Some(0));
    assert_eq!(ponger.exitcode(), Some(0));
}

#[test]
fn closed_peer_is_an_error_not_a_hang() {
    let (a, b) = pipe::<String>(true).unwrap();
    b.send(&"last words".to_owned()).unwrap();
    drop(b);
    assert_eq!(a.recv().unwrap(), "last words");
    let err = a.recv().unwrap_err();
    assert!(err.is_disconnected(), "{err}");
    assert!(a.send(&"anyone?".to_owned()).unwrap_err().is_disconnected());
    assert!(
        a.poll_timeout(Duration::ZERO),
        "end of stream counts as readable"
    );

    // Across processes: the child holds the only other copy.
    let (here, there) = pipe::<String>(true).unwrap();
    let mut p = Process::new(hang_up, there);
    p.start().unwrap();
    assert!(here.recv().unwrap_err().is_disconnected());
    assert!(p.join());

    let (here, there) = pipe::<String>(false).unwrap();
    let mut p = Process::new(say, (there, "bye".to_owned()));
    p.start().unwrap();
    assert_eq!(here.recv().unwrap(), "bye");
    assert!(here.recv().unwrap_err().is_disconnected());
    assert!(p.join());
}

#[test]
fn one_way_pipes_refuse_the_wrong_direction() {
    let (rx, tx) = pipe::<u8>(false).unwrap();
    assert!((rx.readable(), rx.writable()) == (true, false));
    assert!((tx.readable(), tx.writable()) == (false, true));
    let err = rx.send(&1).unwrap_err();
    assert!(matches!(err, Error::InvalidOperation { .. }), "{err}");
    let err = tx.recv().unwrap_err();
    assert!(matches!(err, Error::InvalidOperation { .. }), "{err}");
    assert!(
        !tx.poll_timeout(Duration::MAX),
        "a send-only end never has anything to receive"
    );
    tx.send(&7).unwrap();
    assert_eq!(rx.recv().unwrap(), 7);

    // The direction travels with the end.
    let (rx, tx) = pipe::<u8>(false).unwrap();
    let out = Queue::new();
    let mut p = Process::new(misuse, (rx, tx, out.clone()));
    p.start().unwrap();
    assert_eq!(out.get().unwrap(), (true, true));
    assert!(p.join());
}

#[test]
fn recv_timeout_and_poll() {
    let (a, b) = pipe::<u8>(true).unwrap();
    assert!(!a.poll_timeout(Duration::ZERO));
    let started = Instant::now();
    let err = a.recv_timeout(Duration::from_millis(50)).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(50));
    b.send(&9).unwrap();
    assert!(a.poll_timeout(Duration::MAX));
    assert_eq!(a.recv_timeout(Duration::from_secs(5)).unwrap(), 9);
}

#[test]
fn connections_only_travel_through_process_start() {
    let (a, b) = pipe::<u8>(true).unwrap();
    // To a process-pool task: the future fails with a clear error.
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let err = pool
        .submit(takes_a_connection, b)
        .unwrap()
        .result()
        .unwrap_err();
    assert!(matches!(err, Error::Codec { .. }), "{err}");
    assert!(err.to_string().contains("Process::start"), "{err}");
    // Through a queue or another connection: the same.
    let q = Queue::<Connection<u8>>::new();
    let (a2, b2) = pipe::<u8>(true).unwrap();
    let err = q.put(a2).unwrap_err();
    assert!(err.to_string().contains("Process::start"), "{err}");
    let (c, _d) = pipe::<Connection<u8>>(true).unwrap();
    let err = c.send(&b2).unwrap_err();
    assert!(err.to_string().contains("Process::start"), "{err}");
    // Forged bytes cannot conjure a connection out of a descriptor this process owns.
    let forged = postcard::to_allocvec(&(0u32, true, true)).unwrap();
    assert!(postcard::from_bytes::<Connection<u8>>(&forged).is_err());
    // The original end still works.
    drop(a);
}
