//! A manager listening on TCP with an authkey, used from a second process that knows only the
//! address and the key; a third process with a wrong key is refused.
//!
//! In Python:
//!
//! ```python
//! from multiprocessing.managers import BaseManager
//! import queue
//!
//! jobs, results = queue.Queue(), queue.Queue()
//! class JobManager(BaseManager): pass
//! JobManager.register('jobs', callable=lambda: jobs)
//! JobManager.register('results', callable=lambda: results)
//!
//! # server
//! manager = JobManager(address=('127.0.0.1', 50000), authkey=b'swordfish')
//! manager.start()
//!
//! # a worker, in another process or on another machine
//! worker = JobManager(address=('127.0.0.1', 50000), authkey=b'swordfish')
//! worker.connect()
//! n = worker.jobs().get(); worker.results().put(n * n)
//!
//! # the wrong key raises multiprocessing.AuthenticationError
//! ```
//!
//! With flotilla the server listens on `127.0.0.1` on a free port; objects are published by
//! name with `register` and found with `get`. Both sides prove the key to each other
//! (HMAC-SHA256 challenge-response) before any request is read.

use std::error::Error;

use flotilla::manager::{Address, Manager, Queue};
use flotilla::process::Process;

const AUTHKEY: &[u8] = b"swordfish";
const JOBS: u64 = 10;

/// A worker that knows only where the manager is and its key.
#[flotilla::task]
fn remote_worker(address: Address, authkey: Vec<u8>) {
    let manager = Manager::connect(address, &authkey).expect("the right key is accepted");
    let jobs: Queue<Option<u64>> = manager.get("jobs").unwrap();
    let results: Queue<(u64, u64)> = manager.get("results").unwrap();
    while let Some(n) = jobs.get().unwrap() {
        results.put((n, n * n)).unwrap();
    }
}

/// A process with the wrong key: reports the error it gets.
#[flotilla::task]
fn intruder(address: Address, report: Queue<String>) {
    let message = match Manager::connect(address, b"password123") {
        Ok(_) => "the wrong key was ACCEPTED".to_owned(),
        Err(err) => err.to_string(),
    };
    report.put(message).unwrap();
}

fn main() -> Result<(), Box<dyn Error>> {
    let manager = Manager::builder()
        .listen("127.0.0.1:0".parse()?)
        .authkey(AUTHKEY.to_vec())
        .start()?;
    println!("manager listening on {}", manager.address());
    let jobs = manager.queue::<Option<u64>>(None)?;
    let results = manager.queue::<(u64, u64)>(None)?;
    manager.register("jobs", &jobs)?;
    manager.register("results", &results)?;

    let worker = Process::new(
        RemoteWorkerTask,
        (manager.address().clone(), AUTHKEY.to_vec()),
    )
    .start()?;
    for n in 1..=JOBS {
        jobs.put(Some(n))?;
    }
    jobs.put(None)?;
    let mut squares: Vec<(u64, u64)> =
        (0..JOBS).map(|_| results.get()).collect::<Result<_, _>>()?;
    squares.sort();
    worker.join();
    println!(
        "squares: {:?}",
        squares.iter().map(|(_, sq)| sq).collect::<Vec<_>>()
    );
    if worker.exitcode() != Some(0) || squares.len() as u64 != JOBS {
        return Err("the remote worker failed".into());
    }
    println!("the remote worker squared {JOBS} numbers over TCP with the right key");

    let report = manager.queue::<String>(None)?;
    let stranger =
        Process::new(IntruderTask, (manager.address().clone(), report.clone())).start()?;
    let refusal = report.get()?;
    stranger.join();
    println!("wrong key: {refusal}");
    if !refusal.contains("refused the authkey") {
        return Err("the wrong key was not refused".into());
    }
    println!("a wrong key is refused before any request is read");
    Ok(())
}
