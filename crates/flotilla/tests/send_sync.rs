//! Every public type of the core can cross threads as intended: handles, executors, errors and
//! options are `Send + Sync`; `Map` owns a boxed `FnMut` and an input iterator, so it is `Send`
//! (it can be moved to a consumer thread) but is not shared.
//!
//! These are compile-time checks: the test fails by not compiling.

#![allow(dead_code)] // the marker types below are only named, never built

use std::cell::Cell;

use flotilla::sync::{
    BoundedSemaphore, BoundedSemaphoreGuard, Empty, Event, Full, LifoQueue, OverRelease,
    PriorityQueue, Queue, Semaphore, SemaphoreGuard, TaskDoneError, Timer,
};
use flotilla::{
    AsCompleted, AsCompletedStream, Error, Future, Map, Panic, Promise, ReturnWhen, Shutdown,
    ThreadPoolBuilder, ThreadPoolExecutor, WaitAsync, WorkerExit,
};

fn is_send<T: Send>() {}
fn is_send_sync<T: Send + Sync>() {}

/// `Send` but not `Sync`: what a task may return.
struct OnlySend(Cell<u8>);

#[flotilla::task]
fn double(x: u32) -> u32 {
    x * 2
}

#[test]
fn futures_and_promises_are_send_and_sync() {
    is_send_sync::<Future<u32>>();
    is_send_sync::<Promise<u32>>();
    // A value that is only `Send` is handed over under a lock, so handles can still be shared.
    is_send_sync::<Future<OnlySend>>();
    is_send_sync::<Promise<OnlySend>>();
    is_send_sync::<Future<Vec<String>>>();
}

#[test]
fn waiting_helpers_are_send_and_sync() {
    is_send_sync::<AsCompleted<u32>>();
    is_send_sync::<AsCompletedStream<u32>>();
    is_send_sync::<WaitAsync<u32>>();
    is_send_sync::<AsCompleted<OnlySend>>();
    is_send_sync::<WaitAsync<OnlySend>>();
    is_send_sync::<ReturnWhen>();
}

#[test]
fn map_is_send() {
    is_send::<Map<'static, std::vec::IntoIter<u32>, u32>>();
    is_send::<Map<'static, std::ops::RangeFrom<u64>, OnlySend>>();
}

#[test]
fn executors_and_their_options_are_send_and_sync() {
    is_send_sync::<ThreadPoolExecutor>();
    is_send_sync::<ThreadPoolBuilder>();
    is_send_sync::<Shutdown>();
    is_send_sync::<DoubleTask>();
    #[cfg(target_os = "linux")]
    {
        is_send_sync::<flotilla::ProcessPoolExecutor>();
        is_send_sync::<flotilla::ProcessPoolBuilder>();
    }
}

#[test]
fn errors_are_send_sync_and_static() {
    fn is_error<E: std::error::Error + Send + Sync + 'static>() {}
    is_error::<Error>();
    is_send_sync::<Panic>();
    is_send_sync::<WorkerExit>();
    // So they fit in `Box<dyn Error + Send + Sync>` and `anyhow::Error`.
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(Error::Cancelled);
    assert_eq!(boxed.to_string(), "the task was cancelled");
}

#[test]
fn sync_primitives_are_send_and_sync() {
    is_send_sync::<Semaphore>();
    is_send_sync::<BoundedSemaphore>();
    is_send_sync::<SemaphoreGuard<'static>>();
    is_send_sync::<BoundedSemaphoreGuard<'static>>();
    is_send_sync::<OverRelease>();
    is_send_sync::<Event>();
    is_send_sync::<Timer>();
    is_send_sync::<Queue<OnlySend>>();
    is_send_sync::<LifoQueue<OnlySend>>();
    is_send_sync::<PriorityQueue<u32>>();
    is_send_sync::<Full<u32>>();
    is_send_sync::<Empty>();
    is_send_sync::<TaskDoneError>();
}

#[test]
fn process_handles_are_send_and_sync() {
    use flotilla::process::{
        CloseError, Connection, JoinableQueue, ParentProcess, Process, Receiver, RecvBytesError,
        Sender, StartedProcess,
    };
    fn is_error<E: std::error::Error + Send + Sync + 'static>() {}
    is_send_sync::<Process>();
    is_send_sync::<StartedProcess>();
    is_send_sync::<ParentProcess>();
    // The item type does not matter: it only travels encoded.
    is_send_sync::<Connection<Cell<u8>>>();
    is_send_sync::<Receiver<Cell<u8>>>();
    is_send_sync::<Sender<Cell<u8>>>();
    is_send_sync::<flotilla::process::Queue<Cell<u8>>>();
    is_send_sync::<JoinableQueue<Cell<u8>>>();
    is_error::<CloseError>();
    is_error::<RecvBytesError>();
}
