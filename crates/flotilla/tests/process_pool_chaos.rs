//! Chaos: 10,000 tasks of which a seeded 2% crash their worker in assorted ways, while another
//! thread cancels a few running ones. Every other task must return the right value and nothing
//! may hang. Time bound: the whole run must finish within 300 s (it takes a few seconds).

use std::sync::mpsc;
use std::time::Duration;

use flotilla::{Error, Executor, ProcessPoolExecutor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
enum Step {
    Square(u64),
    Panic,
    Abort,
    Exit,
    Kill,
}

#[flotilla::task]
fn step(what: Step) -> u64 {
    match what {
        Step::Square(x) => x * x,
        Step::Panic => panic!("chaos"),
        Step::Abort => std::process::abort(),
        Step::Exit => std::process::exit(7),
        Step::Kill => {
            // SAFETY: kill(2) on our own pid has no memory-safety preconditions; SIGKILL
            // stands in for the OOM killer.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            unreachable!("SIGKILL ends the process")
        }
    }
}

const TASKS: u64 = if cfg!(miri) { 100 } else { 10_000 };
const TIME_BOUND: Duration = Duration::from_secs(300);

fn chaos(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let steps: Vec<Step> = (0..TASKS)
        .map(|i| {
            if rng.random_bool(0.02) {
                match rng.random_range(0..4) {
                    0 => Step::Panic,
                    1 => Step::Abort,
                    2 => Step::Exit,
                    _ => Step::Kill,
                }
            } else {
                Step::Square(i)
            }
        })
        .collect();
    let crashes = steps
        .iter()
        .filter(|s| !matches!(s, Step::Square(_)))
        .count();
    assert!(
        crashes as u64 >= TASKS / 100,
        "the seed must inject about 2% crashes, got {crashes}"
    );
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let futures: Vec<_> = steps
        .iter()
        .map(|s| pool.submit(step, *s).unwrap())
        .collect();
    // Cancel a few tasks while the pool works: queued ones or running ones, whichever they are.
    let mut cancelled = vec![false; futures.len()];
    for _ in 0..20 {
        let i = rng.random_range(0..futures.len());
        cancelled[i] = futures[i].cancel();
    }
    for (i, (s, fut)) in steps.iter().zip(&futures).enumerate() {
        let outcome = fut.result();
        match (s, outcome) {
            (_, Err(Error::Cancelled)) => assert!(cancelled[i], "task {i} cancelled by nobody"),
            (Step::Square(x), Ok(v)) => assert_eq!(v, x * x, "task {i}"),
            (Step::Panic, Err(e)) => assert!(e.is_panic(), "task {i}: {e:?}"),
            (Step::Abort | Step::Exit | Step::Kill, Err(e)) => {
                assert!(e.is_worker_died(), "task {i}: {e:?}")
            }
            (s, other) => panic!("task {i} ({s:?}) gave {other:?}"),
        }
    }
}

#[test]
fn ten_thousand_tasks_with_two_percent_crashing() {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        chaos(0x5eed);
        let _ = done.send(());
    });
    match finished.recv_timeout(TIME_BOUND) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("chaos run hung past {TIME_BOUND:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("chaos run failed (see above)"),
    }
}
