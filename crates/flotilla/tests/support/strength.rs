//! Proves that a process pool is at full strength: `max_workers` tasks run at the same time,
//! each in its own worker, met at a barrier that opens only once all of them have arrived.
//!
//! The barrier is a listening socket in the abstract namespace: each task connects, says it
//! has arrived and waits for one byte; the test sends that byte only when every party is
//! connected. A pool that lost a slot never gets there, and the check fails at its deadline.

#![allow(dead_code)] // each test file uses its own subset

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flotilla::{Executor, ProcessPoolExecutor, Shutdown};

/// How long the parties may take to gather: starting fresh workers on a loaded machine is slow,
/// but a lost slot never arrives at all.
pub(crate) const GATHER: Duration = Duration::from_secs(30);

/// Waits at the barrier `name` until the test releases every party; returns the worker's pid.
#[flotilla::task]
pub(crate) fn meet(name: String) -> u32 {
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("an abstract socket name");
    let mut stream = UnixStream::connect_addr(&addr).expect("the barrier listens");
    stream
        .set_read_timeout(Some(GATHER * 2))
        .expect("a read timeout");
    stream
        .write_all(&[1])
        .expect("the barrier hears the arrival");
    let mut go = [0u8];
    stream.read_exact(&mut go).expect("the barrier opens");
    std::process::id()
}

/// A fresh barrier name, unique in this machine's network namespace.
fn barrier_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "flotilla-test-barrier-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Asserts that `pool` runs `max_workers` tasks at once, in as many distinct workers, within
/// [`GATHER`], and returns the pids of those workers (every worker the pool has). On failure
/// the pool is shut down killing its workers, so the test ends instead of waiting for tasks
/// that can never run.
pub(crate) fn assert_full_strength(pool: &ProcessPoolExecutor) -> Vec<u32> {
    let parties = pool.max_workers();
    let name = barrier_name();
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = UnixListener::bind_addr(&addr).unwrap();
    let futures: Vec<_> = (0..parties)
        .map(|_| pool.submit(meet, name.clone()).unwrap())
        .collect();
    let (arrivals, arrived_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for _ in 0..parties {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut hello = [0u8];
            if stream.read_exact(&mut hello).is_err() || arrivals.send(stream).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + GATHER;
    let mut arrived = Vec::with_capacity(parties);
    while arrived.len() < parties {
        match arrived_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(stream) => arrived.push(stream),
            Err(_) => {
                let got = arrived.len();
                pool.shutdown(
                    Shutdown::new()
                        .wait(false)
                        .cancel_futures(true)
                        .kill_workers(true),
                );
                panic!(
                    "only {got} of {parties} tasks ran at once within {GATHER:?}: the pool lost \
                     capacity"
                );
            }
        }
    }
    for stream in &mut arrived {
        stream.write_all(&[1]).unwrap();
    }
    let mut pids: Vec<u32> = futures
        .into_iter()
        .map(|fut| fut.result_timeout(GATHER).unwrap())
        .collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), parties, "each party ran in a worker of its own");
    pids
}
