//! `flotilla::process::pipe`: connections between processes, closed peers, one-way ends,
//! and connections refused outside `Process::start`.

use std::time::{Duration, Instant};

use flotilla::process::{Connection, Process, Queue, Receiver, Sender, pipe, pipe_oneway};
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
fn say(conn: Sender<String>, word: String) {
    conn.send(&word).unwrap();
}

/// Passes each value on, one higher, until its input hangs up.
#[flotilla::task]
fn relay(input: Receiver<u8>, output: Sender<u8>) {
    while let Ok(n) = input.recv() {
        output.send(&(n + 1)).unwrap();
    }
}

#[flotilla::task]
fn takes_a_connection(conn: Connection<u8>) -> u8 {
    conn.recv().unwrap_or(0)
}

#[test]
fn ping_pong_between_two_children() {
    let (a, b) = pipe::<u32>().unwrap();
    let result = Queue::new();
    let pinger = Process::new(PingTask, (a, 50, result.clone()))
        .start()
        .unwrap();
    let ponger = Process::new(PongTask, b).start().unwrap();
    assert_eq!(result.get().unwrap(), 100);
    pinger.join();
    // The ponger only returns (with 0) when it sees its peer close: the pinger's exit, since
    // this process gave up its copies at start.
    assert!(ponger.join_timeout(Duration::from_secs(30)));
    assert_eq!(pinger.exitcode(), Some(0));
    assert_eq!(ponger.exitcode(), Some(0));
}

#[test]
fn closed_peer_is_an_error_not_a_hang() {
    let (a, b) = pipe::<String>().unwrap();
    b.send(&"last words".to_owned()).unwrap();
    drop(b);
    assert_eq!(a.recv().unwrap(), "last words");
    let err = a.recv().unwrap_err();
    assert!(err.is_disconnected(), "{err}");
    assert!(a.send(&"anyone?".to_owned()).unwrap_err().is_disconnected());
    assert!(a.poll(), "end of stream counts as readable");

    // Across processes: the child holds the only other copy.
    let (here, there) = pipe::<String>().unwrap();
    let p = Process::new(HangUpTask, there).start().unwrap();
    assert!(here.recv().unwrap_err().is_disconnected());
    p.join();

    let (here, there) = pipe_oneway::<String>().unwrap();
    let p = Process::new(SayTask, (there, "bye".to_owned()))
        .start()
        .unwrap();
    assert_eq!(here.recv().unwrap(), "bye");
    assert!(here.recv().unwrap_err().is_disconnected());
    p.join();
}

/// The direction of a one-way end is in its type (sending on a `Receiver` does not compile:
/// see `pipe_oneway`'s docs); it travels to a child with the end.
#[test]
fn one_way_ends_travel_with_their_direction() {
    let (rx, tx) = pipe_oneway::<u8>().unwrap();
    let (back_rx, back_tx) = pipe_oneway::<u8>().unwrap();
    let p = Process::new(RelayTask, (rx, back_tx)).start().unwrap();
    tx.send(&7).unwrap();
    assert_eq!(back_rx.recv().unwrap(), 8);
    drop(tx);
    assert!(back_rx.recv().unwrap_err().is_disconnected());
    p.join();
    assert_eq!(p.exitcode(), Some(0));
}

#[test]
fn recv_timeout_and_poll() {
    let (a, b) = pipe::<u8>().unwrap();
    assert!(!a.poll());
    let started = Instant::now();
    let err = a.recv_timeout(Duration::from_millis(50)).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(50));
    b.send(&9).unwrap();
    assert!(a.poll_timeout(Duration::from_secs(30)));
    assert_eq!(a.recv_timeout(Duration::from_secs(5)).unwrap(), 9);
}

#[test]
fn connections_only_travel_through_process_start() {
    let (a, b) = pipe::<u8>().unwrap();
    // To a process-pool task: the future fails with a clear error.
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let err = pool
        .submit(TakesAConnectionTask, b)
        .unwrap()
        .result()
        .unwrap_err();
    assert!(matches!(err, Error::Codec { .. }), "{err}");
    assert!(err.to_string().contains("Process::start"), "{err}");
    // Through a queue or another connection: the same.
    let q = Queue::<Connection<u8>>::new();
    let (a2, b2) = pipe::<u8>().unwrap();
    let err = q.put(a2).unwrap_err();
    assert!(err.to_string().contains("Process::start"), "{err}");
    let (c, _d) = pipe::<Connection<u8>>().unwrap();
    let err = c.send(&b2).unwrap_err();
    assert!(err.to_string().contains("Process::start"), "{err}");
    // Forged bytes cannot conjure a connection out of a descriptor this process owns.
    let forged = postcard::to_allocvec(&(0u32, true, true)).unwrap();
    assert!(postcard::from_bytes::<Connection<u8>>(&forged).is_err());
    // The original end still works.
    drop(a);
}
