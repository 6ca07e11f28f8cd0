//! A worker of "another build" for this crate's tests (`tests/redis_pass_on.rs`): the same
//! flotilla-redis, but none of the tests' tasks, so every task they submit is one this worker
//! does not have. Built only with the `other-build` feature, which the crate's own tests
//! enable; it is not meant for users.
//!
//! Usage: `flotilla-redis-other-build URL SLOTS VISIBILITY_MS`; logs as the tests' workers do
//! (`FLOTILLA_REDIS_LOG`).

#[path = "../support/log.rs"]
#[allow(unreachable_pub)]
mod log;

use std::process::ExitCode;
use std::time::Duration;

/// A task only this build has.
#[flotilla::task]
fn only_in_the_other_build(x: u64) -> u64 {
    x + 1
}

fn main() -> ExitCode {
    log::log_to_stderr();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, slots, visibility_ms] = args.as_slice() else {
        eprintln!("usage: flotilla-redis-other-build URL SLOTS VISIBILITY_MS");
        return ExitCode::from(2);
    };
    let (Ok(slots), Ok(visibility_ms)) = (slots.parse(), visibility_ms.parse()) else {
        eprintln!("flotilla-redis-other-build: SLOTS and VISIBILITY_MS are numbers");
        return ExitCode::from(2);
    };
    let _ = OnlyInTheOtherBuildTask;
    let run = flotilla_redis::Worker::builder(url)
        .slots(slots)
        .visibility_timeout(Duration::from_millis(visibility_ms))
        .run();
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("flotilla-redis-other-build: {err}");
            ExitCode::from(3)
        }
    }
}
