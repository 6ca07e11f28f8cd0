//! Two processes bounce a counter over a duplex pipe.
//!
//! The Python original:
//!
//! ```python
//! from multiprocessing import Process, Pipe, Queue
//!
//! def ping(conn, rounds, report):
//!     n = 0
//!     for _ in range(rounds):
//!         conn.send(n)
//!         n = conn.recv() + 1
//!     conn.close()
//!     report.put(("ping", rounds, n))
//!
//! def pong(conn, report):
//!     returned = 0
//!     while True:
//!         try:
//!             n = conn.recv()
//!         except EOFError:              # ping closed its end
//!             break
//!         conn.send(n + 1)
//!         returned += 1
//!     report.put(("pong", returned, None))
//!
//! if __name__ == '__main__':
//!     a, b = Pipe()                     # duplex
//!     report = Queue()
//!     players = [Process(target=ping, args=(a, 1000, report)),
//!                Process(target=pong, args=(b, report))]
//!     for p in players:
//!         p.start()
//!     a.close(); b.close()              # or pong never sees EOF
//!     for p in players:
//!         p.join()
//!     print(report.get(), report.get())
//! ```
//!
//! Each [`Connection`] passed to [`Process::new`] moves to the child at
//! [`start`](Process::start), so this process holds no copy and needs no `close()` calls:
//! when `ping` returns, its end closes and `pong`'s `recv` returns
//! [`Error::Disconnected`](flotilla::Error) (Python's `EOFError`). Forgetting the parent's
//! `close()` in Python leaves `pong` waiting for ever; here that mistake cannot be made. The
//! pipe is typed (`Connection<u64>`): values are encoded with serde, not pickled. The reports
//! come back through a [`Queue`], which, unlike a connection, any process can hold a copy of.

use std::error::Error;
use std::time::Duration;

use flotilla::process::{Connection, Process, Queue, current_process, pipe};

const ROUNDS: u64 = 1000;

/// What a player says when it is done: its name, how many balls it hit, the final count.
type Report = (String, u64, u64);

/// Serves first: sends the counter, gets it back one higher, adds one, `rounds` times.
#[flotilla::task]
fn ping(conn: Connection<u64>, rounds: u64, report: Queue<Report>) {
    let mut n = 0;
    for _ in 0..rounds {
        conn.send(&n).expect("pong is still playing");
        n = conn.recv().expect("pong answers every ball") + 1;
    }
    drop(conn); // hang up: pong sees the pipe close
    let me = current_process().name().to_owned();
    report
        .put((me, rounds, n))
        .expect("the parent owns the queue");
}

/// Returns every ball one higher until the other side hangs up.
#[flotilla::task]
fn pong(conn: Connection<u64>, report: Queue<Report>) {
    let mut returned = 0;
    let mut last = 0;
    loop {
        match conn.recv() {
            Ok(n) => {
                last = n + 1;
                conn.send(&last).expect("ping waits for the ball");
                returned += 1;
            }
            Err(err) if err.is_disconnected() => break,
            Err(err) => panic!("pong: {err}"),
        }
    }
    let me = current_process().name().to_owned();
    report
        .put((me, returned, last))
        .expect("the parent owns the queue");
}

fn main() -> Result<(), Box<dyn Error>> {
    let (a, b) = pipe::<u64>()?;
    let report = Queue::new();
    let players = [
        Process::new(PingTask, (a, ROUNDS, report.clone())).with_name("ping"),
        Process::new(PongTask, (b, report.clone())).with_name("pong"),
    ];
    let players = players
        .into_iter()
        .map(Process::start)
        .collect::<Result<Vec<_>, _>>()?;
    for p in &players {
        // pong only ends once it sees ping hang up: no close() needed in this process.
        assert!(
            p.join_timeout(Duration::from_secs(30)),
            "{} is stuck",
            p.name()
        );
        assert_eq!(p.exitcode(), Some(0), "{} failed", p.name());
    }

    let mut reports = [report.get()?, report.get()?];
    reports.sort();
    for (name, balls, last) in &reports {
        println!("{name}: hit {balls} balls, last value {last}");
    }
    let [(_, pinged, total), (_, ponged, _)] = &reports;
    assert_eq!((*pinged, *ponged, *total), (ROUNDS, ROUNDS, 2 * ROUNDS));
    println!("ping-pong: {ROUNDS} rounds, counter = {total}");
    Ok(())
}
