//! Every public type of `flotilla::shared` crosses threads as intended: the shared objects
//! and errors are `Send + Sync` (for `Send + Sync` element types); guards are not `Send`,
//! since a pthread mutex must be released by the thread that took it.
//!
//! These are compile-time checks: the test fails by not compiling.

use flotilla::shared::{
    Array, ArrayGuard, Barrier, BoundedSemaphore, Condition, ConditionGuard, Event, Lock,
    LockError, LockGuard, RLock, RLockGuard, RawArray, RawValue, Semaphore, SyncError, Value,
    ValueGuard,
};

fn is_send_sync<T: Send + Sync>() {}
fn is_sync<T: Sync>() {}

#[test]
fn shared_objects_are_send_and_sync() {
    is_send_sync::<Value<u64>>();
    is_send_sync::<Array<[f32; 3]>>();
    is_send_sync::<RawValue<i8>>();
    is_send_sync::<RawArray<u128>>();
    is_send_sync::<Lock>();
    is_send_sync::<RLock>();
    is_send_sync::<Condition>();
    is_send_sync::<Semaphore>();
    is_send_sync::<BoundedSemaphore>();
    is_send_sync::<Event>();
    is_send_sync::<Barrier>();
    is_send_sync::<LockError>();
    is_send_sync::<SyncError>();
    is_send_sync::<flotilla::Error>();
}

#[test]
fn guards_are_sync_but_stay_on_their_thread() {
    is_sync::<LockGuard<'static>>();
    is_sync::<RLockGuard<'static>>();
    is_sync::<ConditionGuard<'static>>();
    is_sync::<ValueGuard<'static, u64>>();
    is_sync::<ArrayGuard<'static, u64>>();
}
