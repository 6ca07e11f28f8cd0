//! `map` with a chunksize on a process pool: each item of a chunk keeps its own outcome. A time
//! limit applies to each item, an item that cannot be encoded fails alone, and when one item
//! hangs or kills its worker, the items after it still run, on a fresh worker.

use std::time::Duration;

use flotilla::{Error, Executor, ProcessPoolExecutor};
use serde::{Deserialize, Serialize, Serializer};

#[path = "support/strength.rs"]
mod strength;

/// What an item does in its worker.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum Act {
    /// Sleeps this many milliseconds (the work), then answers.
    Work(u64),
    /// Never returns.
    Hang,
    /// Kills its worker with SIGKILL.
    Die,
}

/// Runs `act`; returns the input's number and the worker's pid.
#[flotilla::task]
fn act(n: u32, what: Act) -> (u32, u32) {
    match what {
        Act::Work(ms) => std::thread::sleep(Duration::from_millis(ms)),
        Act::Hang => loop {
            std::thread::park();
        },
        Act::Die => {
            // SAFETY: kill(2) on our own pid has no memory-safety preconditions; SIGKILL
            // stands in for the OOM killer.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
    }
    (n, std::process::id())
}

fn pool(limit: Option<Duration>) -> ProcessPoolExecutor {
    let builder = ProcessPoolExecutor::builder().max_workers(1);
    match limit {
        Some(limit) => builder.task_timeout(limit),
        None => builder,
    }
    .build()
    .unwrap()
}

#[test]
fn task_timeout_applies_to_each_item_not_to_the_chunk() {
    // 100 items of 20 ms in one chunk take 2 s; each is far inside its 1 s limit.
    let pool = pool(Some(Duration::from_secs(1)));
    let results: Vec<_> = pool
        .map(ActTask, (0..100).map(|n| (n, Act::Work(20))))
        .chunksize(100)
        .collect();
    for (n, result) in results.iter().enumerate() {
        assert_eq!(
            result.as_ref().map(|(got, _)| *got).ok(),
            Some(n as u32),
            "item {n}: {result:?}"
        );
    }
}

/// Runs a chunk of ten where item 5 does `bad`; returns the outcomes.
fn chunk_with(pool: &ProcessPoolExecutor, bad: Act) -> Vec<Result<(u32, u32), Error>> {
    let inputs = (0..10).map(move |n| (n, if n == 5 { bad } else { Act::Work(1) }));
    pool.map(ActTask, inputs).chunksize(10).collect()
}

#[test]
fn a_timed_out_item_fails_alone_and_the_rest_run_on_a_fresh_worker() {
    let pool = pool(Some(Duration::from_millis(500)));
    // Twice in a row: the fresh worker is no worse off than the first.
    for round in 0..2 {
        let results = chunk_with(&pool, Act::Hang);
        let err = results[5].as_ref().unwrap_err();
        assert!(err.is_task_timeout(), "round {round}: {err:?}");
        let pid_of = |n: usize| results[n].as_ref().map(|(_, pid)| *pid).unwrap();
        for n in (0..10).filter(|n| *n != 5) {
            assert_eq!(results[n].as_ref().unwrap().0, n as u32, "round {round}");
        }
        assert!((1..5).all(|n| pid_of(n) == pid_of(0)), "{results:?}");
        assert!((7..10).all(|n| pid_of(n) == pid_of(6)), "{results:?}");
        assert_ne!(
            pid_of(0),
            pid_of(6),
            "the items after the hang ran on a fresh worker"
        );
    }
    strength::assert_full_strength(&pool);
}

#[test]
fn an_item_that_kills_its_worker_fails_alone_and_the_rest_still_run() {
    // With a time limit every item's result leaves the worker as soon as it is ready, so the
    // items before the death keep their results.
    let pool = pool(Some(Duration::from_secs(30)));
    for round in 0..2 {
        let results = chunk_with(&pool, Act::Die);
        let err = results[5].as_ref().unwrap_err();
        assert!(err.is_worker_died(), "round {round}: {err:?}");
        for n in (0..10).filter(|n| *n != 5) {
            assert_eq!(results[n].as_ref().unwrap().0, n as u32, "round {round}");
        }
    }
    strength::assert_full_strength(&pool);
}

#[test]
fn without_a_limit_the_items_after_a_death_still_run() {
    let pool = pool(None);
    let results = chunk_with(&pool, Act::Die);
    assert!(
        results[5].as_ref().unwrap_err().is_worker_died(),
        "{results:?}"
    );
    for n in 6..10 {
        assert_eq!(results[n].as_ref().unwrap().0, n as u32, "{results:?}");
    }
    // Items before the death either kept their result or say it was lost with the worker.
    for result in &results[..5] {
        match result {
            Ok(_) => {}
            Err(err) => assert!(err.is_worker_died(), "{err:?}"),
        }
    }
    strength::assert_full_strength(&pool);
}

/// An argument that refuses to be encoded (3) or panics while being encoded (4).
#[derive(Debug, Deserialize)]
struct Picky(u32);

impl Serialize for Picky {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            3 => Err(serde::ser::Error::custom("three refuses to travel")),
            4 => panic!("four panics on the way"),
            n => serializer.serialize_u32(n),
        }
    }
}

#[flotilla::task]
fn unwrap_picky(p: Picky) -> u32 {
    p.0
}

#[test]
fn an_unencodable_item_fails_alone_with_an_error_naming_it() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let results: Vec<_> = pool
        .map(UnwrapPickyTask, (0..10).map(Picky))
        .chunksize(10)
        .collect();
    for (n, result) in results.iter().enumerate() {
        match n {
            3 | 4 => {
                let err = result.as_ref().unwrap_err();
                let text = err.to_string();
                assert!(matches!(err, Error::Codec { .. }), "{err:?}");
                assert!(
                    text.contains("could not encode the arguments")
                        && text.contains(&format!("item {n} of its chunk")),
                    "item {n}: {text}"
                );
                // postcard keeps no message of a `Serialize` error, but a panic's is kept.
                if n == 4 {
                    assert!(text.contains("four panics on the way"), "{text}");
                }
            }
            _ => assert_eq!(result.as_ref().ok(), Some(&(n as u32)), "item {n}"),
        }
    }
    strength::assert_full_strength(&pool);
}
