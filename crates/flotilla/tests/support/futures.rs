//! Futures in each state, made with a `Promise` so that tests control every transition.

#![allow(dead_code)] // each test file uses its own subset

use flotilla::{Error, Future, Panic, Promise};

/// A future still pending, and the promise that completes it.
pub(crate) fn pending() -> (Promise<u32>, Future<u32>) {
    let promise = Promise::new();
    let future = promise.future();
    (promise, future)
}

/// A future whose task is running.
pub(crate) fn running() -> (Promise<u32>, Future<u32>) {
    let (promise, future) = pending();
    assert!(promise.set_running());
    (promise, future)
}

/// A future finished with `value`.
pub(crate) fn finished(value: u32) -> Future<u32> {
    let (promise, future) = running();
    promise.complete(Ok(value));
    future
}

/// A future whose task panicked.
pub(crate) fn failed() -> Future<u32> {
    let (promise, future) = running();
    promise.complete(Err(Error::Panicked(Panic::new("boom", None))));
    future
}

/// A future cancelled while pending.
pub(crate) fn cancelled() -> Future<u32> {
    let (promise, future) = pending();
    assert!(future.cancel());
    drop(promise);
    future
}
