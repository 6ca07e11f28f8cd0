//! Every public type of `flotilla::sync` can be shared between threads.

use flotilla::sync::{
    BoundedSemaphore, BoundedSemaphoreGuard, Empty, Event, Full, LifoQueue, OverRelease,
    PriorityQueue, Queue, Semaphore, SemaphoreGuard, TaskDoneError, Timer,
};

fn is_send_sync<T: Send + Sync>() {}

/// Only `Send`, not `Sync`: a queue of it must still be `Send + Sync`.
#[allow(dead_code)] // never built, only named
struct OnlySend(std::cell::Cell<u8>);

#[test]
fn every_public_type_is_send_and_sync() {
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
