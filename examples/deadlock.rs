//! A deadlock from two locks taken in opposite order, detected, then avoided.
//!
//! The Python original has thread 1 take lock A then lock B while thread 2 takes B then A.
//! Each ends up holding one lock and waiting forever for the other; the program hangs. The
//! fix is a global order: every thread takes A before B.
//!
//! This example must not hang, so the first half uses `parking_lot::Mutex::try_lock_for`
//! (Python's `lock.acquire(timeout=...)`): each thread gives up after a short wait and reports
//! the deadlock it would have been in. Barriers make the bad interleaving certain instead of
//! likely. The second half takes the locks in one global order (by rank) and runs thousands of
//! transfers both ways without ever getting stuck. Rust prevents data races at compile time,
//! but not deadlocks: lock ordering is still the programmer's job.

use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};

/// A lock with a rank: locks are always taken in increasing rank.
struct Account {
    rank: u32,
    name: &'static str,
    balance: Mutex<i64>,
}

impl Account {
    fn new(rank: u32, name: &'static str, balance: i64) -> Self {
        Account {
            rank,
            name,
            balance: Mutex::new(balance),
        }
    }
}

/// Locks both accounts lowest rank first, whatever order the caller names them in.
fn lock_both<'a>(from: &'a Account, to: &'a Account) -> (MutexGuard<'a, i64>, MutexGuard<'a, i64>) {
    if from.rank < to.rank {
        let f = from.balance.lock();
        let t = to.balance.lock();
        (f, t)
    } else {
        let t = to.balance.lock();
        let f = from.balance.lock();
        (f, t)
    }
}

fn transfer(from: &Account, to: &Account, amount: i64) {
    let (mut f, mut t) = lock_both(from, to);
    *f -= amount;
    *t += amount;
}

fn main() {
    let a = Account::new(1, "A", 1_000);
    let b = Account::new(2, "B", 1_000);

    // 1. Opposite order: each thread holds its first lock when it asks for the second.
    let both_hold_one = Barrier::new(2);
    let both_tried = Barrier::new(2);
    let attempt = |first: &Account, second: &Account| {
        let _held = first.balance.lock();
        both_hold_one.wait();
        let got = second.balance.try_lock_for(Duration::from_millis(100));
        let stuck = got.is_none();
        if stuck {
            println!(
                "{}: holds {} and timed out waiting for {}: deadlock detected",
                flotilla_examples::thread_name(),
                first.name,
                second.name
            );
        }
        drop(got);
        // Keep the first lock until the other thread has tried too, so the outcome is
        // certain rather than a race.
        both_tried.wait();
        stuck
    };
    let detected = thread::scope(|s| {
        let t1 = thread::Builder::new()
            .name("thread-1".into())
            .spawn_scoped(s, || attempt(&a, &b))
            .expect("can start a thread");
        let t2 = thread::Builder::new()
            .name("thread-2".into())
            .spawn_scoped(s, || attempt(&b, &a))
            .expect("can start a thread");
        [t1, t2]
            .into_iter()
            .map(|t| t.join().expect("no panic"))
            .filter(|&stuck| stuck)
            .count()
    });
    println!("opposite lock order: {detected} of 2 threads would have deadlocked");
    assert_eq!(detected, 2);

    // 2. The fix: both threads lock in rank order, so a cycle cannot form.
    const TRANSFERS: usize = 5_000;
    thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..TRANSFERS {
                transfer(&a, &b, 1);
            }
        });
        s.spawn(|| {
            for _ in 0..TRANSFERS {
                transfer(&b, &a, 1);
            }
        });
    });
    let total = *a.balance.lock() + *b.balance.lock();
    println!(
        "global lock order: {} transfers completed, no deadlock; total balance {total}",
        2 * TRANSFERS
    );
    assert_eq!(total, 2_000);
}
