//! Four processes write into one dictionary held by a manager, and count under its lock.
//!
//! In Python:
//!
//! ```python
//! from multiprocessing import Manager, Process
//!
//! def work(shared, lock, worker):
//!     for n in range(6):
//!         shared[f"w{worker}-{n}"] = worker * n
//!     for _ in range(250):
//!         with lock:                       # a read and a write: lock across both
//!             shared["total"] = shared.get("total", 0) + 1
//!
//! if __name__ == '__main__':
//!     with Manager() as manager:
//!         shared, lock = manager.dict(), manager.Lock()
//!         workers = [Process(target=work, args=(shared, lock, w)) for w in range(4)]
//!         for w in workers: w.start()
//!         for w in workers: w.join()
//!         print(len(shared) - 1, shared["total"])
//! ```
//!
//! With flotilla the manager's server is a child process that stops when `manager` is dropped;
//! the proxies `Dict` and `Lock` are plain serde values, passed to each `Process` as its
//! arguments. Each `insert` or `get` is one round trip to the server, and atomic there; the
//! read-modify-write of `total` takes the manager's lock, as in Python.

use std::error::Error;

use flotilla::manager::{Dict, Lock, Manager};
use flotilla::process::Process;

const WORKERS: u64 = 4;
const ENTRIES: u64 = 6;
const INCREMENTS: u64 = 250;

/// Writes this worker's entries, then adds to the shared total under the lock.
#[flotilla::task]
fn work(shared: Dict<String, u64>, lock: Lock, worker: u64) {
    for n in 0..ENTRIES {
        shared
            .insert(&format!("w{worker}-{n}"), &(worker * n))
            .unwrap();
    }
    let total = "total".to_owned();
    for _ in 0..INCREMENTS {
        let _held = lock.lock().unwrap();
        let now = shared.get(&total).unwrap().unwrap_or(0);
        shared.insert(&total, &(now + 1)).unwrap();
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let manager = Manager::new()?;
    println!(
        "manager server: pid {:?} at {}",
        manager.pid().unwrap_or(0),
        manager.address()
    );
    let shared = manager.dict::<String, u64>()?;
    let lock = manager.lock()?;
    let workers: Vec<Process> = (0..WORKERS)
        .map(|w| {
            Process::new(WorkTask, (shared.clone(), lock.clone(), w))
                .with_name(format!("writer-{w}"))
        })
        .collect();
    let workers = workers
        .into_iter()
        .map(Process::start)
        .collect::<Result<Vec<_>, _>>()?;
    for worker in &workers {
        worker.join();
        if worker.exitcode() != Some(0) {
            return Err(format!(
                "{} failed: exit code {:?}",
                worker.name(),
                worker.exitcode()
            )
            .into());
        }
    }

    let entries = shared.len()? as u64 - 1; // all but "total"
    let total = shared.get(&"total".to_owned())?.unwrap_or(0);
    println!("w3-5 = {:?}", shared.get(&"w3-5".to_owned())?);
    let expected = WORKERS * ENTRIES;
    if entries != expected {
        return Err(format!("expected {expected} entries, found {entries}").into());
    }
    println!("manager dict: {WORKERS} processes wrote {entries} entries, none lost");
    println!(
        "counter under the manager lock: {total} (expected {})",
        WORKERS * INCREMENTS
    );
    if total != WORKERS * INCREMENTS {
        return Err("updates were lost".into());
    }
    Ok(())
}
