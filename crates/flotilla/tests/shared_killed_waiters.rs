//! A process killed while *waiting* on a shared `Condition`, `Event`, `Semaphore`,
//! `BoundedSemaphore` or `Barrier` costs nothing: wake-up after wake-up still wakes the live
//! waiters and returns, round after round, and the primitive stays usable.
//!
//! (With a process-shared `pthread_cond_t`, glibc 2.36's broadcast waits until every waiter of
//! the previous group has left; a killed waiter never leaves, so the second wake-up after the
//! kill blocked for ever, holding the primitive's mutex.)

use std::sync::mpsc;
use std::time::Duration;

use flotilla::process::Process;
use flotilla::shared::{Barrier, BoundedSemaphore, Condition, Event, RawValue, Semaphore};

#[path = "support/asleep.rs"]
mod asleep;
#[path = "support/children.rs"]
mod children;
#[path = "support/watchdog.rs"]
mod watchdog;

use asleep::{asleep_in_futex, waiting_thread};
use children::{PATIENCE, kill, start};
use watchdog::watchdog;

/// Wake-ups after the kill; the old bug hung the second.
const ROUNDS: usize = 6;

/// The whole of a test, rounds included, ends within this or fails with "hang".
const LIMIT: Duration = Duration::from_secs(60);

/// Sets `about_to_wait`, then waits on `event` until killed.
#[flotilla::task]
fn sleep_on_event(event: Event, about_to_wait: RawValue<u32>) {
    about_to_wait.store(1);
    event.wait();
}

/// Sets `about_to_wait`, then waits for a permit until killed.
#[flotilla::task]
fn sleep_on_semaphore(sem: Semaphore, about_to_wait: RawValue<u32>) {
    about_to_wait.store(1);
    sem.acquire();
}

/// Sets `about_to_wait`, then waits for a permit until killed.
#[flotilla::task]
fn sleep_on_bounded(sem: BoundedSemaphore, about_to_wait: RawValue<u32>) {
    about_to_wait.store(1);
    sem.acquire();
}

/// Sets `about_to_wait`, then waits at the barrier until killed.
#[flotilla::task]
fn sleep_at_barrier(barrier: Barrier, about_to_wait: RawValue<u32>) {
    about_to_wait.store(1);
    let _ = barrier.wait();
}

/// Sets `about_to_wait` with the lock held, then waits on the condition until killed.
#[flotilla::task]
fn sleep_on_condition(cond: Condition, about_to_wait: RawValue<u32>) {
    let mut guard = cond.lock().unwrap();
    about_to_wait.store(1);
    let _ = guard.wait();
}

/// Starts `child`, which sets `about_to_wait` and goes to sleep in a wait; kills it there.
fn killed_asleep(child: Process, about_to_wait: &RawValue<u32>) {
    let child = start(child);
    let pid = child.pid();
    // The flag is set just before the wait, and the first futex sleep after it is the wait's.
    let deadline = std::time::Instant::now() + PATIENCE;
    while about_to_wait.load() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the child never waited"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    asleep_in_futex(pid, pid, PATIENCE);
    kill(&child);
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn event_wake_ups_go_on_after_a_waiter_is_killed() {
    watchdog(LIMIT, || {
        let event = Event::new().unwrap();
        let flag = RawValue::new(0u32).unwrap();
        killed_asleep(
            Process::new(SleepOnEventTask, (event.clone(), flag.clone())),
            &flag,
        );
        for round in 0..ROUNDS {
            let theirs = event.clone();
            let waiter = waiting_thread(PATIENCE, move || theirs.wait_timeout(PATIENCE));
            event.set();
            assert!(
                waiter.join().unwrap(),
                "round {round}: the waiter was not woken"
            );
            event.clear();
        }
        assert!(!event.is_set());
    });
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn semaphore_wake_ups_go_on_after_a_waiter_is_killed() {
    watchdog(LIMIT, || {
        let sem = Semaphore::new(0).unwrap();
        let flag = RawValue::new(0u32).unwrap();
        killed_asleep(
            Process::new(SleepOnSemaphoreTask, (sem.clone(), flag.clone())),
            &flag,
        );
        for round in 0..ROUNDS {
            let theirs = sem.clone();
            let waiter = waiting_thread(PATIENCE, move || theirs.acquire_timeout(PATIENCE));
            sem.release();
            assert!(waiter.join().unwrap(), "round {round}: no permit");
        }
        assert_eq!(sem.get_value(), 0);
    });
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn bounded_semaphore_wake_ups_go_on_after_a_waiter_is_killed() {
    watchdog(LIMIT, || {
        let sem = BoundedSemaphore::new(1).unwrap();
        assert!(sem.try_acquire());
        let flag = RawValue::new(0u32).unwrap();
        killed_asleep(
            Process::new(SleepOnBoundedTask, (sem.clone(), flag.clone())),
            &flag,
        );
        for round in 0..ROUNDS {
            let theirs = sem.clone();
            let waiter = waiting_thread(PATIENCE, move || theirs.acquire_timeout(PATIENCE));
            sem.release().unwrap();
            assert!(waiter.join().unwrap(), "round {round}: no permit");
        }
        sem.release().unwrap();
        assert!(sem.release().is_err());
    });
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn barrier_wake_ups_go_on_after_a_party_is_killed_waiting() {
    watchdog(LIMIT, || {
        let barrier = Barrier::new(2).unwrap();
        let flag = RawValue::new(0u32).unwrap();
        killed_asleep(
            Process::new(SleepAtBarrierTask, (barrier.clone(), flag.clone())),
            &flag,
        );
        // The dead party had arrived: the next one trips the barrier with it.
        assert_eq!(barrier.wait_timeout(PATIENCE).unwrap(), 1);
        for round in 0..ROUNDS {
            let theirs = barrier.clone();
            let waiter = waiting_thread(PATIENCE, move || theirs.wait_timeout(PATIENCE));
            let mine = barrier.wait_timeout(PATIENCE).unwrap();
            let theirs = waiter.join().unwrap().unwrap();
            assert_eq!((theirs, mine), (0, 1), "round {round}");
        }
        assert!(!barrier.is_broken());
    });
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn condition_wake_ups_go_on_after_a_waiter_is_killed() {
    watchdog(LIMIT, || {
        let cond = Condition::new().unwrap();
        let flag = RawValue::new(0u32).unwrap();
        killed_asleep(
            Process::new(SleepOnConditionTask, (cond.clone(), flag.clone())),
            &flag,
        );
        for round in 0..ROUNDS {
            let theirs = cond.clone();
            let (locked_tx, locked) = mpsc::channel();
            let waiter = std::thread::spawn(move || {
                let mut guard = theirs.lock().unwrap();
                locked_tx.send(()).unwrap();
                guard.wait_timeout(PATIENCE).unwrap()
            });
            locked.recv().unwrap();
            // Taken only once the waiter has released it by waiting.
            let mut guard = cond.lock().unwrap();
            if round % 2 == 0 {
                guard.notify(1);
            } else {
                guard.notify_all();
            }
            drop(guard);
            assert!(
                waiter.join().unwrap(),
                "round {round}: the waiter was not woken"
            );
        }
        assert!(cond.try_lock().is_ok());
    });
}
