//! A holder of a `flotilla::shared` lock that goes away without unlocking it is reported to
//! the next holder as `LockError::OwnerDied`, however it goes — a process that returns with
//! its guard forgotten, exits or execs while another of its threads holds the lock, panics,
//! execs or is killed, or a thread that ends holding it — for every type with a lock: `Lock`,
//! `RLock`, `Value`, `Array` and `Condition`. And a process that goes away the same ways in
//! the middle of an operation on a `Semaphore`, `BoundedSemaphore`, `Event` or `Barrier`,
//! holding its internal lock, leaves it working at once for everyone else.
//!
//! And a forgotten guard never leaves this thread's robust-mutex list pointing into unmapped
//! memory (which glibc writes through on the next lock, and the kernel reads at exit): the
//! guard keeps its segment mapped.

use std::os::unix::process::CommandExt;
use std::sync::mpsc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use flotilla::Task;
use flotilla::process::{Process, Queue};
use flotilla::shared::{
    Array, ArrayGuard, Barrier, BoundedSemaphore, Condition, ConditionGuard, Event, Lock,
    LockError, LockGuard, RLock, RLockGuard, RawArray, Semaphore, Value, ValueGuard,
};

#[path = "support/children.rs"]
mod children;
#[path = "support/watchdog.rs"]
mod watchdog;

use children::PATIENCE;
use watchdog::watchdog;

/// The kernel marks a dead holder's lock before the holder can be reaped, so the report is
/// there at once; this only bounds a regression.
const REPORTED_WITHIN: Duration = Duration::from_secs(10);

/// How a holder goes away without unlocking.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum Exit {
    /// Forgets the guard and returns from the task (exit code 0).
    Forget,
    /// Leaves the lock held by another of its threads and returns (exit code 0).
    ThreadHolds,
    /// Leaves the lock held by another of its threads and replaces itself with `/bin/true`,
    /// which ends that thread (exit code 0).
    ThreadHoldsExec,
    /// Panics with the guard alive, so unwinding drops it (exit code 1).
    Panic,
    /// Replaces itself with `/bin/true`, guard alive (exit code 0).
    Exec,
    /// Waits to be killed with SIGKILL.
    Killed,
}

/// A shared type with a lock, seen the same way by every test here.
trait Held: Clone + Send + 'static {
    type Guard<'a>;
    fn take(&self) -> Self::Guard<'_>;
    fn take_within(&self, limit: Duration) -> Result<Self::Guard<'_>, LockError<Self::Guard<'_>>>;
    fn repair(guard: &mut Self::Guard<'_>);
}

macro_rules! held {
    ($ty:ty, $guard:ident, $take:ident, $take_within:ident) => {
        impl Held for $ty {
            type Guard<'a> = $guard<'a>;
            fn take(&self) -> $guard<'_> {
                self.$take().expect("a fresh lock")
            }
            fn take_within(&self, limit: Duration) -> Result<$guard<'_>, LockError<$guard<'_>>> {
                self.$take_within(limit)
            }
            fn repair(guard: &mut $guard<'_>) {
                guard.mark_consistent();
            }
        }
    };
}

type U64Value<'a> = ValueGuard<'a, u64>;
type U64Array<'a> = ArrayGuard<'a, u64>;
held!(Lock, LockGuard, lock, lock_timeout);
held!(RLock, RLockGuard, lock, lock_timeout);
held!(Condition, ConditionGuard, lock, lock_timeout);
held!(Value<u64>, U64Value, get_lock, get_lock_timeout);
held!(Array<u64>, U64Array, get_lock, get_lock_timeout);

/// Replaces this process with `/bin/true`.
fn become_true() -> ! {
    let err = std::process::Command::new("/bin/true").exec();
    panic!("exec failed: {err}");
}

/// The body of every holder task: takes the lock and goes away as `exit` says.
fn hold_and_go<H: Held>(shared: H, exit: Exit, holding: Queue<()>) {
    if let Exit::ThreadHolds | Exit::ThreadHoldsExec = exit {
        let (held, taken) = mpsc::channel();
        std::thread::spawn(move || {
            let _guard = shared.take();
            held.send(()).unwrap();
            loop {
                std::thread::park();
            }
        });
        taken.recv().unwrap();
        if let Exit::ThreadHoldsExec = exit {
            become_true();
        }
        return; // the process exits; the thread still holds the lock
    }
    let guard = shared.take();
    match exit {
        Exit::Forget => std::mem::forget(guard),
        Exit::Panic => panic!("dying with the lock held"),
        Exit::Exec => become_true(),
        Exit::Killed => {
            holding.put(()).unwrap();
            loop {
                std::thread::park();
            }
        }
        Exit::ThreadHolds | Exit::ThreadHoldsExec => unreachable!(),
    }
}

#[flotilla::task]
fn hold_lock(lock: Lock, exit: Exit, holding: Queue<()>) {
    hold_and_go(lock, exit, holding);
}

#[flotilla::task]
fn hold_rlock(lock: RLock, exit: Exit, holding: Queue<()>) {
    hold_and_go(lock, exit, holding);
}

#[flotilla::task]
fn hold_condition(cond: Condition, exit: Exit, holding: Queue<()>) {
    hold_and_go(cond, exit, holding);
}

#[flotilla::task]
fn hold_value(value: Value<u64>, exit: Exit, holding: Queue<()>) {
    hold_and_go(value, exit, holding);
}

#[flotilla::task]
fn hold_array(array: Array<u64>, exit: Exit, holding: Queue<()>) {
    hold_and_go(array, exit, holding);
}

/// The next acquisition reports the dead holder, with the lock; once repaired, the lock is
/// normal again.
fn reports_the_dead_holder<H: Held>(shared: &H, how: &str) {
    match shared.take_within(REPORTED_WITHIN) {
        Err(LockError::OwnerDied(mut guard)) => H::repair(&mut guard),
        Ok(_) => panic!("{how}: the lock was free, the dead holder was not reported"),
        Err(other) => panic!("{how}: expected OwnerDied, got {:?}", other.without_guard()),
    }
    assert!(
        shared.take_within(REPORTED_WITHIN).is_ok(),
        "{how}: repaired"
    );
}

/// Runs `task` in a child that holds `shared` and goes away as `exit` says, then checks the
/// report.
fn a_process_that<H, T>(shared: H, task: T, exit: Exit)
where
    H: Held,
    T: Task<Args = (H, Exit, Queue<()>)>,
{
    goes_away(shared.clone(), task, exit);
    reports_the_dead_holder(&shared, &format!("{} after {exit:?}", T::NAME));
}

/// Runs `task` in a child that takes a lock of `shared` and goes away as `exit` says; returns
/// once it has.
fn goes_away<S, T>(shared: S, task: T, exit: Exit)
where
    T: Task<Args = (S, Exit, Queue<()>)>,
{
    let holding = Queue::new();
    let child = Process::new(task, (shared, exit, holding.clone()))
        .start()
        .unwrap();
    if let Exit::Killed = exit {
        holding.get_timeout(PATIENCE).unwrap();
        child.kill();
    }
    assert!(
        child.join_timeout(PATIENCE),
        "{exit:?}: the child did not end"
    );
    let expected = match exit {
        Exit::Panic => 1,
        Exit::Killed => -9,
        _ => 0,
    };
    assert_eq!(child.exitcode(), Some(expected), "{exit:?}");
}

/// A thread of this process takes the lock, forgets the guard, drops its handle and ends.
fn a_thread_that_forgets<H: Held>(shared: H) {
    let theirs = shared.clone();
    std::thread::spawn(move || std::mem::forget(theirs.take()))
        .join()
        .unwrap();
    reports_the_dead_holder(&shared, "a thread that ended holding it");
}

macro_rules! every_exit {
    ($name:ident, $new:expr, $task:ident) => {
        mod $name {
            use super::*;

            #[test]
            #[cfg_attr(miri, ignore = "spawns processes")]
            fn returns_with_the_guard_forgotten() {
                a_process_that($new, $task, Exit::Forget);
            }

            #[test]
            #[cfg_attr(miri, ignore = "spawns processes")]
            fn exits_while_another_thread_holds_it() {
                a_process_that($new, $task, Exit::ThreadHolds);
            }

            #[test]
            #[cfg_attr(miri, ignore = "spawns processes")]
            fn panics_holding_it() {
                a_process_that($new, $task, Exit::Panic);
            }

            #[test]
            #[cfg_attr(miri, ignore = "spawns processes")]
            fn execs_while_another_thread_holds_it() {
                a_process_that($new, $task, Exit::ThreadHoldsExec);
            }

            #[test]
            #[cfg_attr(miri, ignore = "spawns processes")]
            fn execs_holding_it() {
                a_process_that($new, $task, Exit::Exec);
            }

            #[test]
            #[cfg_attr(miri, ignore = "spawns processes")]
            fn is_killed_holding_it() {
                a_process_that($new, $task, Exit::Killed);
            }

            #[test]
            #[cfg_attr(miri, ignore = "uses process-shared pthread mutexes")]
            fn a_thread_ends_holding_it() {
                a_thread_that_forgets($new);
            }
        }
    };
}

every_exit!(lock, Lock::new().unwrap(), HoldLockTask);
every_exit!(rlock, RLock::new().unwrap(), HoldRlockTask);
every_exit!(condition, Condition::new().unwrap(), HoldConditionTask);
every_exit!(value, Value::new(0u64).unwrap(), HoldValueTask);
every_exit!(array, Array::<u64>::new(3).unwrap(), HoldArrayTask);

/// A type whose only lock is internal, held for the length of one operation: a holder can
/// only go away in the middle of one, and the next user must neither hang nor see anything
/// but the state the dead one left (the operations change it with single stores).
trait Inside: Clone + Send + 'static {
    fn inside(&self, f: impl FnOnce());
    /// Operations that must end at once, with their usual answers, after the holder died.
    fn still_works(&self);
}

macro_rules! inside {
    ($ty:ty, |$it:ident| $still_works:block) => {
        impl Inside for $ty {
            fn inside(&self, f: impl FnOnce()) {
                self.__with_internal_mutex_held(f);
            }
            fn still_works(&self) {
                let $it = self;
                $still_works
            }
        }
    };
}

inside!(Semaphore, |sem| {
    assert!(sem.acquire_timeout(REPORTED_WITHIN));
    sem.release();
    assert_eq!(sem.get_value(), 1);
});
inside!(BoundedSemaphore, |sem| {
    assert!(sem.acquire_timeout(REPORTED_WITHIN));
    sem.release().unwrap();
    assert!(sem.release().is_err());
});
inside!(Event, |event| {
    assert!(!event.is_set());
    event.set();
    assert!(event.wait_timeout(REPORTED_WITHIN));
});
inside!(Barrier, |barrier| {
    assert_eq!(barrier.wait_timeout(REPORTED_WITHIN).unwrap(), 0);
    assert!(!barrier.is_broken());
});

/// The body of every task that dies inside an operation.
fn inside_and_go<S: Inside>(shared: S, exit: Exit, holding: Queue<()>) {
    let park = || loop {
        std::thread::park();
    };
    match exit {
        Exit::ThreadHolds | Exit::ThreadHoldsExec => {
            let (inside, entered) = mpsc::channel();
            std::thread::spawn(move || {
                shared.inside(|| {
                    inside.send(()).unwrap();
                    park()
                })
            });
            entered.recv().unwrap();
            if let Exit::ThreadHoldsExec = exit {
                become_true();
            }
            // The process exits; the thread is still inside.
        }
        Exit::Panic => shared.inside(|| panic!("dying inside the operation")),
        Exit::Exec => shared.inside(|| become_true()),
        Exit::Killed => shared.inside(|| {
            holding.put(()).unwrap();
            park()
        }),
        Exit::Forget => unreachable!("there is no guard to forget"),
    }
}

#[flotilla::task]
fn inside_semaphore(sem: Semaphore, exit: Exit, holding: Queue<()>) {
    inside_and_go(sem, exit, holding);
}

#[flotilla::task]
fn inside_bounded(sem: BoundedSemaphore, exit: Exit, holding: Queue<()>) {
    inside_and_go(sem, exit, holding);
}

#[flotilla::task]
fn inside_event(event: Event, exit: Exit, holding: Queue<()>) {
    inside_and_go(event, exit, holding);
}

#[flotilla::task]
fn inside_barrier(barrier: Barrier, exit: Exit, holding: Queue<()>) {
    inside_and_go(barrier, exit, holding);
}

/// Runs `task` in a child that goes away inside an operation on `shared` as `exit` says; then
/// `shared` must work at once (a hang fails the watchdog).
fn a_process_inside<S, T>(shared: S, task: T, exit: Exit)
where
    S: Inside,
    T: Task<Args = (S, Exit, Queue<()>)>,
{
    goes_away(shared.clone(), task, exit);
    watchdog(REPORTED_WITHIN * 2, move || shared.still_works());
}

macro_rules! every_exit_inside {
    ($name:ident, $new:expr, $task:ident) => {
        mod $name {
            use super::*;

            #[test]
            #[cfg_attr(miri, ignore = "spawns processes")]
            fn exits_while_another_thread_is_inside() {
                a_process_inside($new, $task, Exit::ThreadHolds);
            }

            #[test]
            #[cfg_attr(miri, ignore = "spawns processes")]
            fn panics_inside() {
                a_process_inside($new, $task, Exit::Panic);
            }

            #[test]
            #[cfg_attr(miri, ignore = "spawns processes")]
            fn execs_while_another_thread_is_inside() {
                a_process_inside($new, $task, Exit::ThreadHoldsExec);
            }

            #[test]
            #[cfg_attr(miri, ignore = "spawns processes")]
            fn execs_inside() {
                a_process_inside($new, $task, Exit::Exec);
            }

            #[test]
            #[cfg_attr(miri, ignore = "spawns processes")]
            fn is_killed_inside() {
                a_process_inside($new, $task, Exit::Killed);
            }
        }
    };
}

every_exit_inside!(semaphore, Semaphore::new(1).unwrap(), InsideSemaphoreTask);
every_exit_inside!(
    bounded,
    BoundedSemaphore::new(1).unwrap(),
    InsideBoundedTask
);
every_exit_inside!(event, Event::new().unwrap(), InsideEventTask);
every_exit_inside!(barrier, Barrier::new(1).unwrap(), InsideBarrierTask);

/// Forgets a guard of each type, drops the last handle of each (here or on another thread),
/// maps fresh segments (which land where the dropped ones were, if those were unmapped) and
/// takes other locks (which links them into this thread's robust list next to the forgotten
/// ones). Reports every fresh segment found written.
#[flotilla::task]
fn forget_drop_and_go_on(rounds: u32, out: Queue<Vec<String>>) {
    let other = Lock::new().unwrap();
    let mut written = Vec::new();
    for round in 0..rounds {
        let handles = (
            Lock::new().unwrap(),
            RLock::new().unwrap(),
            Condition::new().unwrap(),
            Value::new(0u64).unwrap(),
            Array::<u64>::new(2).unwrap(),
        );
        std::mem::forget(handles.0.take());
        std::mem::forget(handles.1.take());
        std::mem::forget(handles.2.take());
        std::mem::forget(handles.3.take());
        std::mem::forget(handles.4.take());
        // Every other round, the last handles are dropped by another thread.
        if round % 2 == 0 {
            drop(handles);
        } else {
            std::thread::spawn(move || drop(handles)).join().unwrap();
        }
        // One page each, like the dropped segments.
        let fresh: Vec<RawArray<u64>> = (0..8).map(|_| RawArray::new(512).unwrap()).collect();
        for _ in 0..3 {
            drop(other.take());
            let nested = RLock::new().unwrap();
            let (a, b) = (nested.take(), nested.take());
            drop((b, a));
        }
        for (i, array) in fresh.iter().enumerate() {
            if let Some((at, word)) = array
                .to_vec()
                .into_iter()
                .enumerate()
                .find(|&(_, w)| w != 0)
            {
                written.push(format!(
                    "round {round}: fresh segment {i} written at byte {}: {word:#x}",
                    at * 8
                ));
            }
        }
    }
    out.put(written).unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn a_forgotten_guard_keeps_its_memory_mapped() {
    let out = Queue::new();
    let child = Process::new(ForgetDropAndGoOnTask, (50, out.clone()))
        .start()
        .unwrap();
    assert!(child.join_timeout(PATIENCE), "the child did not end");
    assert_eq!(
        child.exitcode(),
        Some(0),
        "the child crashed (-11 is SIGSEGV)"
    );
    let written = out.get_timeout(PATIENCE).unwrap();
    assert!(written.is_empty(), "{written:#?}");
}

#[test]
#[cfg_attr(miri, ignore = "uses process-shared pthread mutexes")]
fn dropping_every_other_handle_while_a_guard_lives_on_another_thread() {
    let value = Value::new(7u64).unwrap();
    let others: Vec<Value<u64>> = (0..4).map(|_| value.clone()).collect();
    let (held_tx, held) = mpsc::channel();
    let (dropped_tx, dropped) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let mut guard = value.take();
        held_tx.send(()).unwrap();
        dropped.recv().unwrap();
        *guard += 1;
        drop(guard);
        value.load().unwrap()
    });
    held.recv().unwrap();
    drop(others);
    dropped_tx.send(()).unwrap();
    assert_eq!(holder.join().unwrap(), 8);
}
