//! Runs a test case that could hang under a time limit, so that a regression fails with
//! "hang" instead of stalling the suite.

#![allow(dead_code)] // each test file uses its own subset

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Runs `body` on its own thread and returns what it returns; panics with "hang" if it has not
/// finished within `limit`, and passes a panic of `body` on.
pub(crate) fn watchdog<R: Send + 'static>(
    limit: Duration,
    body: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (tx, rx) = mpsc::channel();
    let runner = thread::spawn(move || {
        let outcome = body();
        // The receiver is gone only if the watchdog already fired.
        let _ = tx.send(());
        outcome
    });
    match rx.recv_timeout(limit) {
        Ok(()) => runner.join().unwrap(),
        // The body panicked: its sender was dropped without a message.
        Err(mpsc::RecvTimeoutError::Disconnected) => match runner.join() {
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(_) => unreachable!("the body returned without reporting"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hang (not finished within {limit:?})"),
    }
}
