//! `flotilla::shared::{RLock, Condition}` across processes: re-entry, exclusion, waits woken
//! by another process, notify counts, timeouts, and a process killed holding (or waiting on)
//! each of them never hangs the others.

use std::time::{Duration, Instant};

use flotilla::process::{Process, Queue, StartedProcess};
use flotilla::shared::{Condition, ConditionGuard, LockError, RLock, RawValue};

#[path = "support/children.rs"]
mod children;

use children::{PATIENCE, finish, kill, start};

/// Adds 1 to `total` `rounds` times, taking the re-entrant lock twice for each (an outer
/// "transaction" and the inner "increment"), with an unlocked read-modify-write inside.
#[flotilla::task]
fn add_reentrantly(lock: RLock, total: RawValue<u64>, rounds: u32) {
    for _ in 0..rounds {
        let _outer = lock.lock().unwrap();
        let _inner = lock.lock().unwrap();
        let seen = total.load();
        std::thread::yield_now();
        total.store(seen + 1);
    }
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn an_rlock_is_reentrant_and_excludes_other_processes() {
    let lock = RLock::new().unwrap();
    let total = RawValue::new(0u64).unwrap();
    let children: Vec<StartedProcess> = (0..3)
        .map(|_| {
            start(Process::new(
                AddReentrantlyTask,
                (lock.clone(), total.clone(), 2_000),
            ))
        })
        .collect();
    children.iter().for_each(finish);
    assert_eq!(total.load(), 6_000);
}

/// Takes the re-entrant lock three times, says so, and waits to be killed.
#[flotilla::task]
fn hold_rlock_thrice(lock: RLock, holding: Queue<()>) {
    let _guards = [
        lock.lock().unwrap(),
        lock.lock().unwrap(),
        lock.lock().unwrap(),
    ];
    holding.put(()).unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn an_rlock_held_several_times_by_a_killed_process_is_reported_once_free() {
    let lock = RLock::new().unwrap();
    let holding = Queue::new();
    let holder = start(Process::new(
        HoldRlockThriceTask,
        (lock.clone(), holding.clone()),
    ));
    holding.get_timeout(PATIENCE).unwrap();
    assert!(lock.try_lock().unwrap_err().is_busy());
    kill(&holder);

    // However deep the dead holder's count was, the lock is free (with the report) at once.
    let result = lock.lock_timeout(PATIENCE);
    let Err(LockError::OwnerDied(mut guard)) = result else {
        panic!("expected OwnerDied, got {:?}", result.map(drop));
    };
    guard.mark_consistent();
    let again = lock.lock().unwrap();
    drop(again);
    drop(guard);
    let other = lock.clone();
    std::thread::spawn(move || assert!(other.try_lock().is_ok()))
        .join()
        .unwrap();
}

/// Produces `count` items one at a time, notifying one waiter for each.
#[flotilla::task]
fn produce(ready: Condition, items: RawValue<u64>, count: u64) {
    for _ in 0..count {
        let mut guard = ready.lock().unwrap();
        items.store(items.load() + 1);
        guard.notify(1);
    }
}

/// Consumes items until `total` have been taken by all consumers together; reports its
/// own share.
#[flotilla::task]
fn consume(
    ready: Condition,
    items: RawValue<u64>,
    taken: RawValue<u64>,
    total: u64,
    out: Queue<u64>,
) {
    let mut mine = 0;
    let mut guard = ready.lock().unwrap();
    loop {
        let done = guard
            .wait_for_timeout(|| items.load() > 0 || taken.load() == total, PATIENCE)
            .unwrap();
        assert!(done, "no item within the patience bound");
        if taken.load() == total {
            break;
        }
        items.store(items.load() - 1);
        taken.store(taken.load() + 1);
        mine += 1;
        if taken.load() == total {
            // Let the other consumers see the end.
            guard.notify_all();
        }
    }
    drop(guard);
    out.put(mine).unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn a_condition_hands_every_item_to_exactly_one_consumer_across_processes() {
    const TOTAL: u64 = 3_000;
    let ready = Condition::new().unwrap();
    let items = RawValue::new(0u64).unwrap();
    let taken = RawValue::new(0u64).unwrap();
    let out = Queue::new();
    let consumers: Vec<StartedProcess> = (0..3)
        .map(|_| {
            start(Process::new(
                ConsumeTask,
                (
                    ready.clone(),
                    items.clone(),
                    taken.clone(),
                    TOTAL,
                    out.clone(),
                ),
            ))
        })
        .collect();
    let producers: Vec<StartedProcess> = (0..2)
        .map(|_| {
            start(Process::new(
                ProduceTask,
                (ready.clone(), items.clone(), TOTAL / 2),
            ))
        })
        .collect();
    producers.iter().for_each(finish);
    let shares: u64 = (0..3).map(|_| out.get_timeout(PATIENCE).unwrap()).sum();
    consumers.iter().for_each(finish);
    assert_eq!(shares, TOTAL);
    assert_eq!(items.load(), 0);
    assert_eq!(taken.load(), TOTAL);
}

/// Waits once on the condition and reports whether it was notified. Says it is about to
/// wait while holding the lock, so whoever takes the lock after hearing it knows it waits.
#[flotilla::task]
fn wait_once(ready: Condition, waiting: Queue<()>, out: Queue<bool>) {
    let mut guard = ready.lock().unwrap();
    waiting.put(()).unwrap();
    let notified = guard.wait_timeout(PATIENCE).unwrap();
    out.put(notified).unwrap();
}

/// Returns once `n` waiters have said they wait, holding the condition's lock: by then all of
/// them are inside `wait` (each released the lock only there).
fn all_waiting<'a>(ready: &'a Condition, waiting: &Queue<()>, n: usize) -> ConditionGuard<'a> {
    for _ in 0..n {
        waiting.get_timeout(PATIENCE).unwrap();
    }
    ready.lock().unwrap()
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn notify_wakes_as_many_waiters_as_asked() {
    let ready = Condition::new().unwrap();
    let waiting = Queue::new();
    let out = Queue::new();
    let waiters: Vec<StartedProcess> = (0..3)
        .map(|_| {
            start(Process::new(
                WaitOnceTask,
                (ready.clone(), waiting.clone(), out.clone()),
            ))
        })
        .collect();
    let mut guard = all_waiting(&ready, &waiting, 3);
    guard.notify(2);
    drop(guard);
    assert!(out.get_timeout(PATIENCE).unwrap());
    assert!(out.get_timeout(PATIENCE).unwrap());
    // The third is still waiting: nothing arrives until it is notified too.
    assert!(out.get_timeout(Duration::from_millis(50)).is_err());
    ready.lock().unwrap().notify_all();
    assert!(out.get_timeout(PATIENCE).unwrap());
    waiters.iter().for_each(finish);
}

#[test]
fn wait_times_out_and_releases_the_lock_while_waiting() {
    let ready = Condition::new().unwrap();
    let mut guard = ready.lock().unwrap();
    let started = Instant::now();
    assert!(!guard.wait_timeout(Duration::from_millis(30)).unwrap());
    assert!(started.elapsed() >= Duration::from_millis(30));
    drop(guard);

    // While one thread waits, another can take the lock (and notify it).
    let guard_taken = Queue::new();
    let waiter = {
        let ready = ready.clone();
        let guard_taken = guard_taken.clone();
        std::thread::spawn(move || {
            let mut guard = ready.lock().unwrap();
            guard_taken.put(()).unwrap();
            guard.wait_timeout(PATIENCE).unwrap()
        })
    };
    guard_taken.get_timeout(PATIENCE).unwrap();
    // This lock succeeds only once the waiter has released it inside `wait`.
    ready.lock().unwrap().notify(1);
    assert!(waiter.join().unwrap());
}

/// Takes the condition's lock, notifies one waiter, says so, and waits to be killed, still
/// holding the lock.
#[flotilla::task]
fn notify_and_die_holding(ready: Condition, holding: Queue<()>) {
    let mut guard = ready.lock().unwrap();
    guard.notify(1);
    holding.put(()).unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn a_waiter_learns_when_the_conditions_holder_was_killed() {
    let ready = Condition::new().unwrap();
    let in_lock = Queue::new();
    let waiter = {
        let ready = ready.clone();
        let in_lock = in_lock.clone();
        std::thread::spawn(move || {
            let mut guard = ready.lock().unwrap();
            in_lock.put(()).unwrap();
            guard.wait_timeout(PATIENCE)
        })
    };
    in_lock.get_timeout(PATIENCE).unwrap();
    // The child gets the lock only once the waiter has released it by waiting; it notifies
    // the waiter and dies before letting go, so the waiter's wake-up finds the lock abandoned.
    let holding = Queue::new();
    let holder = start(Process::new(
        NotifyAndDieHoldingTask,
        (ready.clone(), holding.clone()),
    ));
    holding.get_timeout(PATIENCE).unwrap();
    kill(&holder);

    let waited = waiter.join().unwrap();
    assert!(
        matches!(waited, Err(LockError::OwnerDied(true))),
        "{waited:?}"
    );
    let mut guard = ready.lock().unwrap_err().into_guard().unwrap();
    guard.mark_consistent();
    drop(guard);
    assert!(ready.lock().is_ok());
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn a_killed_waiter_does_not_swallow_a_notify() {
    let ready = Condition::new().unwrap();
    let waiting = Queue::new();
    let out = Queue::new();
    let doomed = start(Process::new(
        WaitOnceTask,
        (ready.clone(), waiting.clone(), out.clone()),
    ));
    let survivor = start(Process::new(
        WaitOnceTask,
        (ready.clone(), waiting.clone(), out.clone()),
    ));
    drop(all_waiting(&ready, &waiting, 2));
    kill(&doomed);

    // One notify, two registered waiters of which one is dead: the live one wakes.
    ready.lock().unwrap().notify(1);
    assert!(out.get_timeout(PATIENCE).unwrap());
    finish(&survivor);
}

/// Takes the condition's lock, changes the state, says so, and waits to be killed without
/// notifying anyone, still holding the lock.
#[flotilla::task]
fn change_and_die_before_notifying(ready: Condition, items: RawValue<u64>, holding: Queue<()>) {
    let _guard = ready.lock().unwrap();
    items.store(1);
    holding.put(()).unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn whoever_takes_over_a_dead_holders_lock_wakes_the_waiters() {
    let ready = Condition::new().unwrap();
    let items = RawValue::new(0u64).unwrap();
    let in_lock = Queue::new();
    let waiter = {
        let (ready, items, in_lock) = (ready.clone(), items.clone(), in_lock.clone());
        std::thread::spawn(move || {
            let mut guard = ready.lock().unwrap();
            in_lock.put(()).unwrap();
            let started = Instant::now();
            let outcome = guard.wait_for_timeout(|| items.load() == 1, PATIENCE);
            (outcome, started.elapsed())
        })
    };
    in_lock.get_timeout(PATIENCE).unwrap();
    // The child gets the lock once the waiter sleeps; it changes the state and dies before it
    // can notify.
    let holding = Queue::new();
    let holder = start(Process::new(
        ChangeAndDieBeforeNotifyingTask,
        (ready.clone(), items.clone(), holding.clone()),
    ));
    holding.get_timeout(PATIENCE).unwrap();
    kill(&holder);

    // Taking the lock over from the dead holder wakes the waiter, which finds the change.
    drop(ready.lock().unwrap_err().into_guard().unwrap());
    let (outcome, waited) = waiter.join().unwrap();
    assert!(
        matches!(outcome, Err(LockError::OwnerDied(true))),
        "{outcome:?}"
    );
    assert!(
        waited < PATIENCE / 2,
        "the waiter slept {waited:?}, until its timeout: nobody woke it"
    );
}
