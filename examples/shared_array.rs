//! An array in shared memory, filled in parallel by four processes.
//!
//! In Python:
//!
//! ```python
//! def fill(squares, start):
//!     for i in range(start, len(squares), 4):
//!         squares[i] = i * i               # each a[i] = x takes the array's lock
//!
//! squares = Array('Q', 20)
//! workers = [Process(target=fill, args=(squares, s)) for s in range(4)]
//! ...
//! print(squares[:])
//! ```
//!
//! [`flotilla::shared::Array`] is the same: `set(i, x)` takes the lock for one element,
//! `get_lock()` holds it across many (here, to sum the result in one consistent view).

use std::error::Error;

use flotilla::process::Process;
use flotilla::shared::Array;

const WORKERS: usize = 4;
const LEN: usize = 20;

/// Writes `i * i` into every `WORKERS`-th slot, starting at `start`.
#[flotilla::task]
fn fill(squares: Array<u64>, start: usize) {
    for i in (start..squares.len()).step_by(WORKERS) {
        if let Err(err) = squares.set(i, (i * i) as u64) {
            panic!("the shared array's lock failed: {err}");
        }
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let squares = Array::<u64>::new(LEN)?;
    let workers: Vec<Process> = (0..WORKERS)
        .map(|start| Process::new(FillTask, (squares.clone(), start)))
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

    let values = squares.to_vec()?;
    println!("{values:?}");
    let expected: Vec<u64> = (0..LEN as u64).map(|i| i * i).collect();
    if values != expected {
        return Err("the array is not the squares".into());
    }
    let sum: u64 = squares
        .get_lock()
        .map_err(|err| err.without_guard())?
        .iter()
        .sum();
    println!("{WORKERS} processes filled {LEN} squares; their sum is {sum}");
    Ok(())
}
