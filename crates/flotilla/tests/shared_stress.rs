//! Seeded stress across processes: children churn through random operations on one shared
//! `Condition`, `Event` and `Semaphore` (waits, notifies, sets, permits) while the test
//! SIGKILLs some of them at random points — inside a wait, a notify, holding a lock or an
//! internal mutex. The survivors always finish, and afterwards every primitive still wakes its
//! waiters. Reproduce a failure with `FLOTILLA_STRESS_SEED=<seed>`.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use flotilla::process::{Process, StartedProcess};
use flotilla::shared::{Condition, ConditionGuard, Event, RawArray, RawValue, Semaphore};

#[path = "support/children.rs"]
mod children;
#[path = "support/watchdog.rs"]
mod watchdog;

use children::{PATIENCE, finish, kill, start};
use watchdog::watchdog;

const CHILDREN: usize = 4;
const KILLED: usize = 2;
const OPS: u64 = 3_000;
const ROUNDS: u64 = 5;
const SEEDS: [u64; 2] = [0x5eed, 0xdead_beef];

/// The shared objects every child churns on.
type Shared = (Condition, RawValue<u64>, Event, Semaphore);

/// Takes the condition's lock, taking it over (and repairing nothing: the state is a counter
/// changed by single stores) from a holder that was killed.
fn lock(cond: &Condition) -> ConditionGuard<'_> {
    match cond.lock() {
        Ok(guard) => guard,
        Err(err) => {
            let mut guard = err.into_guard().expect("only a dead holder is expected");
            guard.mark_consistent();
            guard
        }
    }
}

/// `ops` random operations; `progress[slot]` counts those done.
#[flotilla::task]
fn churn(shared: Shared, progress: RawArray<u64>, slot: usize, seed: u64, ops: u64) {
    let (cond, count, event, sem) = shared;
    let mut rng = StdRng::seed_from_u64(seed);
    for done in 1..=ops {
        match rng.random_range(0..8) {
            0 => {
                let mut guard = lock(&cond);
                count.store(count.load() + 1);
                guard.notify(1);
            }
            1 => lock(&cond).notify_all(),
            2 | 3 => {
                let mut guard = lock(&cond);
                let wait = Duration::from_micros(rng.random_range(0..2_000));
                if guard.wait_timeout(wait).is_err() {
                    guard.mark_consistent();
                }
            }
            4 => event.set(),
            5 => event.clear(),
            6 => {
                event.wait_timeout(Duration::from_micros(rng.random_range(0..1_000)));
            }
            _ => {
                let wait = Duration::from_micros(rng.random_range(0..1_000));
                if sem.acquire_timeout(wait) {
                    sem.release();
                }
            }
        }
        progress.set(slot, done);
    }
}

/// Waits (deadline-bounded) until child `slot` has done `ops` operations, or has ended.
fn reached(progress: &RawArray<u64>, slot: usize, ops: u64, child: &StartedProcess) {
    let deadline = Instant::now() + PATIENCE;
    while progress.get(slot) < ops && child.is_alive() {
        assert!(Instant::now() < deadline, "child {slot} made no progress");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Every primitive still wakes a waiter on another thread, a few times over.
fn still_wakes((cond, _, event, sem): &Shared) {
    for round in 0..3 {
        let theirs = cond.clone();
        let (locked_tx, locked) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let mut guard = lock(&theirs);
            locked_tx.send(()).unwrap();
            guard.wait_timeout(PATIENCE).unwrap_or_else(|err| {
                guard.mark_consistent();
                err.into_guard().unwrap_or(false)
            })
        });
        locked.recv().unwrap();
        lock(cond).notify(1);
        assert!(waiter.join().unwrap(), "round {round}: condition");

        event.clear();
        let theirs = event.clone();
        let waiter = std::thread::spawn(move || theirs.wait_timeout(PATIENCE));
        event.set();
        assert!(waiter.join().unwrap(), "round {round}: event");

        let theirs = sem.clone();
        let waiter = std::thread::spawn(move || theirs.acquire_timeout(PATIENCE));
        sem.release();
        assert!(waiter.join().unwrap(), "round {round}: semaphore");
    }
}

fn stress(seed: u64) {
    eprintln!("shared stress: seed {seed:#x}");
    let mut rng = StdRng::seed_from_u64(seed);
    let shared: Shared = (
        Condition::new().unwrap(),
        RawValue::new(0).unwrap(),
        Event::new().unwrap(),
        Semaphore::new(2).unwrap(),
    );
    let mut killed = 0;
    for round in 0..ROUNDS {
        let progress = RawArray::<u64>::new(CHILDREN).unwrap();
        let children: Vec<StartedProcess> = (0..CHILDREN)
            .map(|slot| {
                let child_seed = rng.random();
                start(Process::new(
                    ChurnTask,
                    (shared.clone(), progress.clone(), slot, child_seed, OPS),
                ))
            })
            .collect();
        for (slot, victim) in children.iter().enumerate().take(KILLED) {
            let at = rng.random_range(1..OPS);
            reached(&progress, slot, at, victim);
            if victim.is_alive() {
                kill(victim);
                killed += 1;
            }
        }
        for (slot, child) in children.iter().enumerate().skip(KILLED) {
            assert!(
                child.join_timeout(PATIENCE),
                "seed {seed:#x} round {round}: survivor {slot} hung"
            );
            finish(child);
        }
        still_wakes(&shared);
    }
    assert!(
        killed > 0,
        "seed {seed:#x}: every victim finished before it was killed"
    );
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn churning_processes_killed_at_random_points_hang_nobody() {
    let seeds = match std::env::var("FLOTILLA_STRESS_SEED") {
        Ok(seed) => vec![seed.parse().expect("FLOTILLA_STRESS_SEED is a number")],
        Err(_) => SEEDS.to_vec(),
    };
    watchdog(Duration::from_secs(180), move || {
        for seed in seeds {
            stress(seed);
        }
    });
}
