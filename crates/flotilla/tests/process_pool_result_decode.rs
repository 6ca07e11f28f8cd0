//! A result is decoded in the pool's own process, by the result type's `Deserialize`: a panic
//! there fails only that future, with an error naming the stage and the panic, and costs the
//! pool nothing, however often it happens and from however many threads.

use std::time::Duration;

use flotilla::{Error, Executor, ProcessPoolExecutor};
use serde::{Deserialize, Deserializer, Serialize};

#[path = "support/strength.rs"]
mod strength;

const PATIENCE: Duration = Duration::from_secs(60);
const WORKERS: usize = 2;

/// A result whose decoding panics on 13.
#[derive(Clone, Debug, Serialize)]
struct Fragile(u32);

impl<'de> Deserialize<'de> for Fragile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Fragile, D::Error> {
        let value = u32::deserialize(deserializer)?;
        assert!(value != 13, "unlucky result {value}");
        Ok(Fragile(value))
    }
}

#[flotilla::task]
fn fragile(x: u32) -> Fragile {
    Fragile(x)
}

fn pool() -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(WORKERS)
        .build()
        .unwrap()
}

fn assert_decode_panic(err: &Error) {
    assert!(matches!(err, Error::Codec { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("could not decode the result") && text.contains("unlucky result 13"),
        "the error must name the stage and the panic: {text}"
    );
}

#[test]
fn a_panicking_result_decode_fails_only_its_future() {
    let pool = pool();
    // More such results than the pool has slots, twice over: each used to cost a slot.
    for round in 0..(2 * WORKERS + 1) as u32 {
        let bad = pool.submit(fragile, 13).unwrap();
        let good = pool.submit(fragile, round).unwrap();
        assert_decode_panic(&bad.result_timeout(PATIENCE).unwrap_err());
        assert_eq!(good.result_timeout(PATIENCE).unwrap().0, round);
    }
    strength::assert_full_strength(&pool);
}

#[test]
fn panicking_result_decodes_from_several_threads_cost_no_capacity() {
    let pool = pool();
    std::thread::scope(|scope| {
        for thread in 0..4u32 {
            let pool = &pool;
            scope.spawn(move || {
                for i in 0..5u32 {
                    let bad = pool.submit(fragile, 13).unwrap();
                    let good = pool.submit(fragile, thread * 100 + i).unwrap();
                    assert_decode_panic(&bad.result_timeout(PATIENCE).unwrap_err());
                    assert_eq!(good.result_timeout(PATIENCE).unwrap().0, thread * 100 + i);
                }
            });
        }
    });
    strength::assert_full_strength(&pool);
}
