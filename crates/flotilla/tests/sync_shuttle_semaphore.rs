//! Model-checks the semaphore state machine (`src/sync/semaphore.rs`) under shuttle's
//! randomized schedules, as `shuttle_queue.rs` does for the queues.
//!
//! Shuttle has no clock: a timed wait ends only when the thread is woken, and then counts as
//! expired, so every timed scenario below makes sure a wake-up eventually comes.
//!
//! (`event.rs` is not compiled here: its unit tests need real threads and would run against
//! shuttle's locks outside a shuttle execution.)

#[path = "support/shuttle_primitives.rs"]
mod primitives;

#[allow(dead_code, unreachable_pub)]
#[path = "../../flotilla-sync/src/semaphore.rs"]
mod semaphore;

use std::time::Duration;

use semaphore::{BoundedSemaphore, OverRelease, Semaphore};
use shuttle::sync::Arc;
use shuttle::sync::atomic::{AtomicUsize, Ordering};
use shuttle::thread;

const ITERATIONS: usize = 500;
const PCT_DEPTH: usize = 3;

fn check(scenario: fn()) {
    shuttle::check_random(scenario, ITERATIONS);
    shuttle::check_pct(scenario, ITERATIONS, PCT_DEPTH);
}

fn semaphore_cap() {
    let sem = Arc::new(BoundedSemaphore::new(2));
    let inside = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let (sem, inside) = (Arc::clone(&sem), Arc::clone(&inside));
            thread::spawn(move || {
                let enter = || {
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(now <= 2, "{now} threads hold a permit of 2");
                    inside.fetch_sub(1, Ordering::SeqCst);
                };
                if i == 0 {
                    sem.acquire().forget();
                    enter();
                    sem.release().unwrap();
                } else {
                    let _permit = sem.acquire();
                    enter();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(sem.available_permits(), 2);
    assert_eq!(sem.release(), Err(OverRelease));
}

#[test]
fn semaphore_caps_concurrency_and_loses_no_permit() {
    check(semaphore_cap);
}

fn timed_acquirer_passes_on_its_wakeup() {
    // A timed and a blocking acquirer wait on an empty semaphore; one release wakes one. A
    // timed acquirer that gave up while the permit was free would strand the other one.
    // Each acquirer releases after acquiring, so the other always gets a permit eventually.
    let sem = Arc::new(Semaphore::new(0));
    let timed = {
        let sem = Arc::clone(&sem);
        thread::spawn(move || sem.acquire_timeout(Duration::from_secs(1)).is_some())
    };
    let blocking = {
        let sem = Arc::clone(&sem);
        thread::spawn(move || drop(sem.acquire()))
    };
    sem.release();
    let timed_got_one = timed.join().unwrap();
    blocking.join().unwrap();
    // The timed acquirer's guard was dropped at once, so the one permit is back either way.
    assert_eq!(
        sem.available_permits(),
        1,
        "timed acquirer got one: {timed_got_one}"
    );
}

#[test]
fn a_timed_out_acquirer_never_swallows_a_wakeup() {
    check(timed_acquirer_passes_on_its_wakeup);
}
