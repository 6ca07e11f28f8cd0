//! `flotilla::shared::Lock` and the locks of `Value`/`Array`: a holder killed while holding
//! the lock is reported (never a hang) and can be recovered from; timeouts; try-lock; and
//! self-deadlock detection.

use std::time::{Duration, Instant};

use flotilla::process::{Process, Queue};
use flotilla::shared::{Array, Lock, LockError, Value};

/// Upper bound for anything that must not hang.
const PATIENCE: Duration = Duration::from_secs(30);

/// Takes the lock, says so, and waits to be killed.
#[flotilla::task]
fn hold_lock(lock: Lock, holding: Queue<()>) {
    let _guard = lock.lock().unwrap();
    holding.put(()).unwrap();
    loop {
        std::thread::park();
    }
}

/// Half-updates the value under its lock, says so, and waits to be killed.
#[flotilla::task]
fn die_mid_update(value: Value<u64>, holding: Queue<()>) {
    let mut guard = value.get_lock().unwrap();
    *guard = 41;
    holding.put(()).unwrap();
    loop {
        std::thread::park();
    }
}

/// Reports how a timed attempt on a held lock ends, and how long it took.
#[flotilla::task]
fn try_for(lock: Lock, millis: u64, out: Queue<(bool, bool, u128)>) {
    let start = Instant::now();
    let result = lock.lock_timeout(Duration::from_millis(millis));
    let timed_out = matches!(result, Err(LockError::TimedOut));
    let would_block = lock.try_lock().unwrap_err().is_busy();
    out.put((timed_out, would_block, start.elapsed().as_millis()))
        .unwrap();
}

/// Starts a child that holds `lock` (through `task`) and waits until it does.
fn killed_while_holding(child: Process, holding: &Queue<()>) {
    let child = child.start().unwrap();
    holding.get_timeout(PATIENCE).unwrap();
    child.kill();
    assert!(child.join_timeout(PATIENCE));
    assert_eq!(child.exitcode(), Some(-9));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "spawns processes and uses process-shared pthread mutexes"
)]
fn a_dead_holder_is_reported_and_recoverable() {
    let lock = Lock::new().unwrap();
    let holding = Queue::new();
    killed_while_holding(
        Process::new(HoldLockTask, (lock.clone(), holding.clone())),
        &holding,
    );

    let start = Instant::now();
    let result = lock.lock_timeout(PATIENCE);
    assert!(start.elapsed() < PATIENCE);
    let Err(LockError::OwnerDied(guard)) = result else {
        panic!("expected OwnerDied, got {:?}", result.map(drop));
    };
    // Dropping the guard unrepaired keeps the report for the next holder...
    drop(guard);
    let mut guard = lock.lock().unwrap_err().into_guard().unwrap();
    // ...until one marks the data consistent.
    guard.mark_consistent();
    drop(guard);
    assert!(lock.lock().is_ok());
    assert!(lock.try_lock().is_ok());
}

#[test]
#[cfg_attr(
    miri,
    ignore = "spawns processes and uses process-shared pthread mutexes"
)]
fn a_value_whose_holder_died_can_be_repaired() {
    let value = Value::new(0u64).unwrap();
    let holding = Queue::new();
    killed_while_holding(
        Process::new(DieMidUpdateTask, (value.clone(), holding.clone())),
        &holding,
    );

    assert!(value.load().unwrap_err().is_owner_died());
    assert!(value.store(1).unwrap_err().is_owner_died());
    match value.get_lock() {
        Err(LockError::OwnerDied(mut guard)) => {
            assert_eq!(*guard, 41, "the dead holder's half-done work is visible");
            *guard = 42;
            guard.mark_consistent();
        }
        other => panic!("expected OwnerDied, got {:?}", other.map(drop)),
    }
    assert_eq!(value.load().unwrap(), 42);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "spawns processes and uses process-shared pthread mutexes"
)]
fn a_held_lock_times_out_in_another_process() {
    let lock = Lock::new().unwrap();
    let out = Queue::new();
    let guard = lock.lock().unwrap();
    let child = Process::new(TryForTask, (lock.clone(), 100, out.clone()))
        .start()
        .unwrap();
    let (timed_out, would_block, millis) = out.get_timeout(PATIENCE).unwrap();
    assert!(timed_out);
    assert!(would_block);
    assert!(millis >= 100, "gave up after {millis} ms");
    assert!(child.join_timeout(PATIENCE));
    drop(guard);
}

#[test]
#[cfg_attr(miri, ignore = "uses process-shared pthread mutexes")]
fn timeouts_between_threads() {
    let array = Array::<u8>::new(4).unwrap();
    let held = array.get_lock().unwrap();
    let other = array.clone();
    let (elapsed, timed_out, busy) = std::thread::spawn(move || {
        let start = Instant::now();
        let timed_out = matches!(
            other.get_lock_timeout(Duration::from_millis(50)),
            Err(LockError::TimedOut)
        );
        let busy = other.try_get_lock().unwrap_err().is_busy();
        (start.elapsed(), timed_out, busy)
    })
    .join()
    .unwrap();
    assert!(timed_out && busy);
    assert!(elapsed >= Duration::from_millis(50));
    drop(held);
    assert!(array.get_lock_timeout(Duration::ZERO).is_ok());
}

#[test]
#[cfg_attr(miri, ignore = "uses process-shared pthread mutexes")]
fn locking_twice_from_one_thread_is_an_error_not_a_hang() {
    let lock = Lock::new().unwrap();
    let guard = lock.lock().unwrap();
    assert!(matches!(lock.lock(), Err(LockError::WouldDeadlock)));
    drop(guard);
    let value = Value::new(0u8).unwrap();
    let guard = value.get_lock().unwrap();
    assert!(matches!(value.load(), Err(LockError::WouldDeadlock)));
    drop(guard);
}

#[test]
fn lock_errors_explain_themselves() {
    let err: LockError = LockError::OwnerDied(());
    assert!(err.to_string().contains("died"));
    assert!(LockError::<()>::TimedOut.to_string().contains("timed out"));
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(err);
    assert!(!boxed.to_string().is_empty());
}
