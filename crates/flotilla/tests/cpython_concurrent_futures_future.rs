//! CPython's `Lib/test/test_concurrent_futures/test_future.py` (`FutureTests`), on futures
//! driven by hand through a `Promise` (Python's `create_future` and the `*_FUTURE` constants of
//! `util.py`). Each test is named after its origin without the `test_` prefix.
//!
//! Where flotilla differs on purpose:
//!
//! - a cancelled future is done at once: there is no CANCELLED-but-not-notified state, so
//!   Python's `CANCELLED_FUTURE` and `CANCELLED_AND_NOTIFIED_FUTURE` are one state here;
//! - a task's exception is an `Error` (a panic is `Error::Panicked`), and a callback that
//!   panics is logged through `tracing`, not printed to stderr: the tests check that the other
//!   callbacks still run and that the panic does not escape;
//! - `Debug` names the state (`pending`, `running`, `cancelled`, `finished`, `failed`) rather
//!   than Python's `repr`.
//!
//! Not ported: `test_class_str` (Python class names), `test_multiple_set_result` and
//! `test_multiple_set_exception` (`Promise::complete` takes the promise by value, so a second
//! completion does not compile), `test_get_snapshot` (a private method). `future_states.rs`
//! tests the same states further.

use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use flotilla::{Error, Future, Panic};

#[path = "support/futures.rs"]
mod futures;
use futures::{cancelled, failed, finished, pending, running};

const GENEROUS: Duration = Duration::from_secs(60);

/// Records what a callback saw.
fn recorder<T: Send + 'static, R: Send + 'static>(
    read: impl FnOnce(&Future<T>) -> R + Send + 'static,
) -> (impl FnOnce(&Future<T>) + Send + 'static, mpsc::Receiver<R>) {
    let (tx, rx) = mpsc::channel();
    (move |f: &Future<T>| tx.send(read(f)).unwrap(), rx)
}

fn panicked(message: &str) -> Error {
    Error::Panicked(Panic::new(message, None))
}

#[test]
fn done_callback_with_result() {
    let (promise, f) = pending();
    let (callback, seen) = recorder(|f: &Future<u32>| f.result().unwrap());
    f.add_done_callback(callback);
    promise.complete(Ok(5));
    assert_eq!(seen.try_recv().unwrap(), 5);
}

#[test]
fn done_callback_with_exception() {
    let (promise, f) = pending();
    let (callback, seen) = recorder(|f: &Future<u32>| f.exception().unwrap());
    f.add_done_callback(callback);
    promise.complete(Err(panicked("test")));
    assert_eq!(
        seen.try_recv().unwrap().unwrap().panic().unwrap().message(),
        "test"
    );
}

#[test]
fn done_callback_with_cancel() {
    let (_promise, f) = pending();
    let (callback, seen) = recorder(|f: &Future<u32>| f.cancelled());
    f.add_done_callback(callback);
    assert!(f.cancel());
    assert!(seen.try_recv().unwrap());
}

#[test]
fn done_callback_raises() {
    let (promise, f) = pending();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let c = Arc::clone(&calls);
    f.add_done_callback(move |_| {
        c.lock().unwrap().push("raising");
        panic!("doh!");
    });
    let c = Arc::clone(&calls);
    f.add_done_callback(move |_| c.lock().unwrap().push("fn"));
    promise.complete(Ok(5));
    assert_eq!(*calls.lock().unwrap(), ["raising", "fn"]);
}

#[test]
fn done_callback_already_successful() {
    let f = finished(5);
    let (callback, seen) = recorder(|f: &Future<u32>| f.result().unwrap());
    f.add_done_callback(callback);
    assert_eq!(seen.try_recv().unwrap(), 5);
}

#[test]
fn done_callback_already_failed() {
    let (promise, f) = pending();
    promise.complete(Err(panicked("test")));
    let (callback, seen) = recorder(|f: &Future<u32>| f.exception().unwrap());
    f.add_done_callback(callback);
    assert_eq!(
        seen.try_recv().unwrap().unwrap().panic().unwrap().message(),
        "test"
    );
}

#[test]
fn done_callback_already_cancelled() {
    let f = cancelled();
    let (callback, seen) = recorder(|f: &Future<u32>| f.cancelled());
    f.add_done_callback(callback);
    assert!(seen.try_recv().unwrap());
}

#[test]
fn done_callback_raises_already_succeeded() {
    // The callback runs at once on this thread; its panic is caught and logged.
    let f = finished(5);
    f.add_done_callback(|_| panic!("doh!"));
    assert_eq!(f.result().unwrap(), 5);
}

#[test]
fn repr() {
    let debug = |f: &Future<u32>| format!("{f:?}");
    assert!(debug(&pending().1).contains("pending"));
    assert!(debug(&running().1).contains("running"));
    assert!(debug(&cancelled()).contains("cancelled"));
    assert!(debug(&failed()).contains("failed"));
    assert!(debug(&finished(42)).contains("finished"));
}

#[test]
fn cancel() {
    let (_p1, f1) = pending();
    let (_p2, f2) = running();
    let f3 = cancelled();
    let f5 = failed();
    let f6 = finished(5);

    assert!(f1.cancel());
    assert!(f1.cancelled());

    // A running task that cannot be stopped (no executor asked to stop it) stays running.
    assert!(!f2.cancel());
    assert!(f2.running());

    assert!(f3.cancel());
    assert!(f3.cancelled());

    assert!(!f5.cancel());
    assert!(f5.done() && !f5.cancelled());

    assert!(!f6.cancel());
    assert_eq!(f6.result().unwrap(), 5);
}

#[test]
fn cancelled_() {
    assert!(!pending().1.cancelled());
    assert!(!running().1.cancelled());
    assert!(cancelled().cancelled());
    assert!(!failed().cancelled());
    assert!(!finished(42).cancelled());
}

#[test]
fn done() {
    assert!(!pending().1.done());
    assert!(!running().1.done());
    assert!(cancelled().done());
    assert!(failed().done());
    assert!(finished(42).done());
}

#[test]
fn running_() {
    assert!(!pending().1.running());
    assert!(running().1.running());
    assert!(!cancelled().running());
    assert!(!failed().running());
    assert!(!finished(42).running());
}

#[test]
fn result_with_timeout() {
    let zero = Duration::ZERO;
    assert!(pending().1.result_timeout(zero).unwrap_err().is_timeout());
    assert!(running().1.result_timeout(zero).unwrap_err().is_timeout());
    assert!(cancelled().result_timeout(zero).unwrap_err().is_cancelled());
    assert!(failed().result_timeout(zero).unwrap_err().is_panic());
    assert_eq!(finished(42).result_timeout(zero).unwrap(), 42);
}

/// `test_result_with_success`: completed from another thread while this one waits (Python
/// sleeps a second first; the wait here is real either way).
#[test]
fn result_with_success() {
    let (promise, f1) = pending();
    let t = thread::spawn(move || promise.complete(Ok(42)));
    assert_eq!(f1.result_timeout(GENEROUS).unwrap(), 42);
    t.join().unwrap();
}

#[test]
fn result_with_cancel() {
    let (promise, f1) = pending();
    let other = f1.clone();
    let t = thread::spawn(move || {
        other.cancel();
        drop(promise);
    });
    assert!(f1.result_timeout(GENEROUS).unwrap_err().is_cancelled());
    t.join().unwrap();
}

#[test]
fn exception_with_timeout() {
    let zero = Duration::ZERO;
    assert!(
        pending()
            .1
            .exception_timeout(zero)
            .unwrap_err()
            .is_timeout()
    );
    assert!(
        running()
            .1
            .exception_timeout(zero)
            .unwrap_err()
            .is_timeout()
    );
    assert!(
        cancelled()
            .exception_timeout(zero)
            .unwrap_err()
            .is_cancelled()
    );
    assert!(
        failed()
            .exception_timeout(zero)
            .unwrap()
            .unwrap()
            .is_panic()
    );
    assert!(finished(42).exception_timeout(zero).unwrap().is_none());
}

#[test]
fn exception_with_success() {
    let (promise, f1) = pending();
    let t = thread::spawn(move || promise.complete(Err(panicked("OSError"))));
    let err = f1.exception_timeout(GENEROUS).unwrap().unwrap();
    assert_eq!(err.panic().unwrap().message(), "OSError");
    t.join().unwrap();
}
