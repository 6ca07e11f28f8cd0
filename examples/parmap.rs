//! `parmap(f, inputs)`: a parallel map built by hand from processes and pipes.
//!
//! The Python original, the course's recipe:
//!
//! ```python
//! from multiprocessing import Process, Pipe
//!
//! def spawn(f):
//!     def fun(pipe, x):
//!         pipe.send(f(x))
//!         pipe.close()
//!     return fun
//!
//! def parmap(f, X):
//!     pipe = [Pipe() for x in X]
//!     proc = [Process(target=spawn(f), args=(c, x)) for x, (p, c) in zip(X, pipe)]
//!     [p.start() for p in proc]
//!     [p.join() for p in proc]
//!     return [p.recv() for (p, c) in pipe]
//!
//! print(parmap(lambda x: x ** x, range(1, 9)))
//! ```
//!
//! One process per input, each sending its one result back through its own pipe. The
//! recipe only works with the `fork` start method: `spawn(f)` and the lambda are closures,
//! which cannot be pickled for `spawn` or `forkserver` (the defaults on macOS and Windows,
//! and on Linux from Python 3.14).
//!
//! A flotilla child is this program started again, so its target must be a
//! `#[flotilla::task]`, found by name; a closure made at run time cannot be. `spawn(f)`
//! therefore becomes the `spawnable!` macro, which writes `f`'s piped twin at compile time
//! and links the two with the `Spawn` trait, so that `parmap(self_power, 1..=8)` reads as in
//! Python. Three more differences:
//!
//! - The pipes are one-way ([`pipe_oneway`]), and the sending end moves to the child
//!   at [`start`](Process::start): this process keeps no copy, so a child that dies
//!   before sending makes `recv` fail with [`Error::Disconnected`](flotilla::Error) instead
//!   of hanging (Python needs `c.close()` in the parent for that).
//! - `parmap` receives before it joins. Python's join-then-recv order deadlocks once a
//!   result outgrows the pipe's buffer: the child blocks in `send` and never exits.
//! - A failure names the process and its exit code instead of an `EOFError`.
//!
//! One process per input is the expensive way to map. A variant sends a chunk of inputs to
//! each process, and [`ProcessPoolExecutor::map`] does the same job with worker processes
//! that are started once and reused, takes a `chunksize`, keeps going when a worker crashes,
//! and yields the results in order as they come; the example runs all three and checks that
//! they agree.

use std::error::Error;

use flotilla::process::{Process, Sender, pipe_oneway};
use flotilla::{Executor, ProcessPoolExecutor, Task};

/// A task with a twin that sends the result down a pipe: Python's `spawn(f)`.
trait Spawn: Task {
    /// Runs `Self` on its input and sends the result down its pipe.
    type Piped: Task<Args = (Sender<Self::Output>, Self::Args)> + Default;
}

/// Writes the piped twin of the task `$f`, the function `$piped` with the handle `$handle`,
/// and implements [`Spawn`] for `$f`.
macro_rules! spawnable {
    ($f:ident => $piped:ident as $handle:ident) => {
        /// The piped twin of a task, written by `spawnable!`.
        #[flotilla::task]
        fn $piped(pipe: Sender<<$f as Task>::Output>, x: <$f as Task>::Args) {
            pipe.send(&Task::run(&$f, x))
                .expect("the parent keeps the other end until it has the result");
        }

        impl Spawn for $f {
            type Piped = $handle;
        }
    };
}

/// Python's `x ** x`.
#[flotilla::task]
fn self_power(x: u64) -> u64 {
    x.pow(u32::try_from(x).expect("a small exponent"))
}
spawnable!(SelfPowerTask => self_power_piped as SelfPowerPipedTask);

/// `self_power` over a whole chunk of inputs, for one process per chunk.
#[flotilla::task]
fn self_power_all(xs: Vec<u64>) -> Vec<u64> {
    xs.into_iter().map(self_power).collect()
}
spawnable!(SelfPowerAllTask => self_power_all_piped as SelfPowerAllPipedTask);

/// Runs `f` on every input, each in a process of its own, and returns the results in input
/// order.
fn parmap<F: Spawn>(
    _f: F,
    inputs: impl IntoIterator<Item = F::Args>,
) -> Result<Vec<F::Output>, Box<dyn Error>> {
    let mut running = Vec::new();
    for x in inputs {
        let (result, send_end) = pipe_oneway::<F::Output>()?;
        let process = Process::new(F::Piped::default(), (send_end, x)).start()?;
        running.push((process, result));
    }
    running
        .into_iter()
        .map(|(process, result)| {
            let received = result.recv();
            process.join();
            received.map_err(|err| {
                format!(
                    "{} (exit code {:?}) sent no result: {err}",
                    process.name(),
                    process.exitcode()
                )
                .into()
            })
        })
        .collect()
}

fn main() -> Result<(), Box<dyn Error>> {
    let per_input = parmap(SelfPowerTask, 1..=8)?;
    println!("parmap(self_power, 1..=8) = {per_input:?}  (8 processes)");
    assert_eq!(per_input, [1, 4, 27, 256, 3125, 46656, 823_543, 16_777_216]);

    let inputs: Vec<u64> = (1..=8).collect();
    let per_chunk = parmap(SelfPowerAllTask, inputs.chunks(3).map(<[u64]>::to_vec))?.concat();
    println!("parmap(self_power_all, chunks of 3) = {per_chunk:?}  (3 processes)");
    assert_eq!(per_chunk, per_input);

    let pool = ProcessPoolExecutor::builder().max_workers(2).build()?;
    let pooled = pool
        .map(SelfPowerTask, 1..=8)
        .chunksize(3)
        .collect::<Result<Vec<_>, _>>()?;
    println!("ProcessPoolExecutor::map(self_power, 1..=8) = {pooled:?}  (2 reused workers)");
    assert_eq!(pooled, per_input);
    println!("all three agree");
    Ok(())
}
