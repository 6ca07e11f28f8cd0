//! `flotilla::sync::{Semaphore, BoundedSemaphore}`: permits, timeouts, over-release, and a
//! measured cap on concurrency.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use flotilla::sync::{
    BoundedSemaphore, BoundedSemaphoreGuard, OverRelease, Semaphore, SemaphoreGuard,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const N: usize = if cfg!(miri) { 50 } else { 20_000 };
const SHORT: Duration = Duration::from_millis(20);
const LONG: Duration = Duration::from_secs(60);

#[test]
fn guards_give_permits_back() {
    let sem = Semaphore::new(2);
    let a = sem.acquire();
    let b = sem.try_acquire().expect("a second permit");
    assert_eq!(sem.available_permits(), 0);
    assert!(sem.try_acquire().is_none());
    drop(a);
    assert_eq!(sem.available_permits(), 1);
    drop(b);
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn failed_acquires_do_not_add_permits() {
    let sem = Semaphore::new(0);
    for _ in 0..3 {
        assert!(sem.try_acquire().is_none());
    }
    assert!(sem.acquire_timeout(SHORT).is_none());
    assert_eq!(sem.available_permits(), 0);

    let bounded = BoundedSemaphore::new(1);
    let _held = bounded.acquire();
    assert!(bounded.try_acquire().is_none());
    assert!(bounded.acquire_timeout(SHORT).is_none());
    assert_eq!(bounded.available_permits(), 0);
}

#[test]
fn acquire_timeout_gets_a_permit_released_in_time() {
    let sem = Arc::new(Semaphore::new(1));
    let held = sem.acquire();
    let start = Arc::new(Barrier::new(2));
    let waiter = {
        let (sem, start) = (Arc::clone(&sem), Arc::clone(&start));
        thread::spawn(move || {
            start.wait();
            sem.acquire_timeout(LONG)
                .map(|guard| guard.forget())
                .is_some()
        })
    };
    start.wait();
    drop(held);
    assert!(waiter.join().unwrap());
    assert_eq!(sem.available_permits(), 0, "the waiter kept its permit");
}

#[test]
fn zero_and_huge_timeouts() {
    let sem = Semaphore::new(1);
    let first = sem.acquire_timeout(Duration::ZERO);
    assert!(first.is_some());
    assert!(sem.acquire_timeout(Duration::ZERO).is_none());
    drop(first);
    // A timeout too large for `Instant` waits forever instead of panicking.
    assert!(sem.acquire_timeout(Duration::MAX).is_some());
}

#[test]
fn release_wakes_a_blocked_acquire() {
    let sem = Arc::new(Semaphore::new(0));
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let sem = Arc::clone(&sem);
        thread::spawn(move || {
            sem.acquire().forget();
            tx.send(()).unwrap();
        })
    };
    assert!(rx.recv_timeout(SHORT).is_err(), "no permit yet");
    sem.release();
    rx.recv_timeout(LONG).unwrap();
    waiter.join().unwrap();
    assert_eq!(sem.available_permits(), 0);
}

#[test]
fn plain_semaphore_can_be_released_above_its_initial_count() {
    let sem = Semaphore::new(1);
    sem.release();
    sem.release();
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn manual_acquire_and_release_from_another_thread() {
    let sem = Arc::new(BoundedSemaphore::new(1));
    sem.acquire().forget();
    let other = Arc::clone(&sem);
    thread::spawn(move || other.release())
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn bounded_semaphore_refuses_over_release() {
    let sem = BoundedSemaphore::new(2);
    assert_eq!(sem.release(), Err(OverRelease));
    assert_eq!(
        sem.available_permits(),
        2,
        "a failed release changes nothing"
    );
    sem.acquire().forget();
    sem.acquire().forget();
    assert_eq!(sem.release(), Ok(()));
    assert_eq!(sem.release(), Ok(()));
    assert_eq!(sem.release(), Err(OverRelease));
    assert_eq!(sem.available_permits(), 2);
    assert_eq!(
        OverRelease.to_string(),
        "the semaphore was released more times than it was acquired"
    );
    let _: Box<dyn std::error::Error + Send + Sync> = Box::new(OverRelease);
}

#[test]
fn a_guard_dropped_after_a_manual_release_does_not_exceed_the_bound() {
    let sem = BoundedSemaphore::new(1);
    let guard: BoundedSemaphoreGuard<'_> = sem.acquire();
    sem.release().unwrap(); // the bug a bounded semaphore exists to catch
    drop(guard);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn zero_permit_semaphores() {
    let sem = Semaphore::new(0);
    assert!(sem.try_acquire().is_none());
    let bounded = BoundedSemaphore::new(0);
    assert!(bounded.try_acquire().is_none());
    assert_eq!(bounded.release(), Err(OverRelease));
}

#[test]
fn debug_output() {
    let sem = Semaphore::new(3);
    let guard = sem.acquire();
    assert_eq!(format!("{sem:?}"), "Semaphore { available_permits: 2 }");
    assert_eq!(format!("{guard:?}"), "SemaphoreGuard { .. }");
    let bounded = BoundedSemaphore::new(2);
    assert_eq!(
        format!("{bounded:?}"),
        "BoundedSemaphore { available_permits: 2, max_permits: 2 }"
    );
}

/// Counts threads inside a guarded section and remembers the most seen at once.
#[derive(Default)]
struct Occupancy {
    inside: AtomicUsize,
    most: AtomicUsize,
}

impl Occupancy {
    fn enter(&self) {
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
    }
    fn leave(&self) {
        self.inside.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn caps_concurrency_at_exactly_n() {
    const PERMITS: usize = 3;
    const THREADS: usize = 4 * PERMITS;
    let sem = Arc::new(Semaphore::new(PERMITS));
    let occupancy = Arc::new(Occupancy::default());
    // Holders meet in groups of `PERMITS` inside the section: this only completes if `PERMITS`
    // threads really can hold a permit at once.
    let meet = Arc::new(Barrier::new(PERMITS));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (sem, occupancy, meet) =
                (Arc::clone(&sem), Arc::clone(&occupancy), Arc::clone(&meet));
            thread::spawn(move || {
                let _permit = sem.acquire();
                occupancy.enter();
                meet.wait();
                occupancy.leave();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(occupancy.most.load(Ordering::SeqCst), PERMITS);
    assert_eq!(sem.available_permits(), PERMITS);
}

/// The calls the stress test drives, so one body runs on both semaphore types.
trait AnySemaphore: Send + Sync + 'static {
    fn new(permits: usize) -> Self;
    fn acquire(&self) -> SemaphoreGuard<'_>;
    fn try_acquire(&self) -> Option<SemaphoreGuard<'_>>;
    fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>>;
    fn give_back(&self);
    fn available_permits(&self) -> usize;
}

macro_rules! any_semaphore {
    ($name:ident, |$sem:ident| $give_back:expr) => {
        impl AnySemaphore for $name {
            fn new(permits: usize) -> Self {
                $name::new(permits)
            }
            fn acquire(&self) -> SemaphoreGuard<'_> {
                $name::acquire(self)
            }
            fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
                $name::try_acquire(self)
            }
            fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
                $name::acquire_timeout(self, timeout)
            }
            fn give_back(&self) {
                let $sem = self;
                $give_back
            }
            fn available_permits(&self) -> usize {
                $name::available_permits(self)
            }
        }
    };
}
any_semaphore!(Semaphore, |sem| sem.release());
any_semaphore!(BoundedSemaphore, |sem| sem.release().unwrap());

/// Threads take permits at random (seeded) by every method; the section never holds more
/// than `permits` threads, and no permit is lost or duplicated.
fn stress_cap<S: AnySemaphore>(seed: u64, permits: usize) {
    const THREADS: usize = 8;
    let sem = Arc::new(S::new(permits));
    let occupancy = Arc::new(Occupancy::default());
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (sem, occupancy, start) =
                (Arc::clone(&sem), Arc::clone(&occupancy), Arc::clone(&start));
            let mut rng = StdRng::seed_from_u64(seed + t as u64);
            thread::spawn(move || {
                start.wait();
                for _ in 0..N / THREADS {
                    let guard = match rng.random_range(0..4) {
                        0 => sem.try_acquire(),
                        1 => sem.acquire_timeout(Duration::from_micros(rng.random_range(0..100))),
                        2 => {
                            // Python style: acquire, work, release by hand.
                            sem.acquire().forget();
                            occupancy.enter();
                            occupancy.leave();
                            sem.give_back();
                            continue;
                        }
                        _ => Some(sem.acquire()),
                    };
                    if guard.is_some() {
                        occupancy.enter();
                        occupancy.leave();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(occupancy.most.load(Ordering::SeqCst) <= permits);
    assert_eq!(occupancy.inside.load(Ordering::SeqCst), 0);
    assert_eq!(
        sem.available_permits(),
        permits,
        "a permit was lost or duplicated"
    );
}

#[test]
fn stress_bounded_semaphore_never_exceeds_its_permits() {
    stress_cap::<BoundedSemaphore>(11, 1);
    stress_cap::<BoundedSemaphore>(12, 3);
}

#[test]
fn stress_semaphore_never_exceeds_its_permits() {
    stress_cap::<Semaphore>(13, 1);
    stress_cap::<Semaphore>(14, 3);
}
