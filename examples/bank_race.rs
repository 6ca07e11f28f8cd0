//! The bank-account race, and its fix with a lock.
//!
//! The Python original has several threads call `deposit(1)` on a shared account whose
//! `balance = self.balance + amount` is a read-modify-write: a thread switch between the read
//! and the write loses the other thread's deposit, so the final balance comes out short. The
//! fix wraps the update in `with self.lock:`.
//!
//! Rust will not compile a plain data race, so the racy version here is made of operations
//! that are each safe but not atomic together: an `AtomicU64` is read with `load`, a little
//! time passes (a spin loop; another thread runs meanwhile on another core, or after a
//! preemption, as after Python's thread switch), and the sum is written back with `store`.
//! Updates are lost exactly as in Python, without undefined behaviour. How many are lost
//! varies from run to run (on one core, very few), so only the fixed total is checked. The fix puts the
//! balance inside a `Mutex<u64>`: the data can only be reached through the lock, so the
//! unlocked update cannot even be written. (For a counter, `fetch_add` would do too.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex, PoisonError};
use std::thread;

const THREADS: u64 = 4;
const DEPOSITS: u64 = 10_000;
/// How long the racy deposit dawdles between its read and its write, in spin-loop hints.
const SLOW_LEDGER: u32 = 100;

/// An account whose deposit is a non-atomic read-modify-write.
struct RacyAccount {
    balance: AtomicU64,
}

impl RacyAccount {
    fn deposit(&self, amount: u64) {
        let balance = self.balance.load(Ordering::Relaxed);
        // Some bookkeeping between the read and the write: another thread that deposits
        // meanwhile has its update overwritten.
        for _ in 0..SLOW_LEDGER {
            std::hint::spin_loop();
        }
        self.balance.store(balance + amount, Ordering::Relaxed);
    }
}

/// The fix: the balance lives inside the lock.
struct LockedAccount {
    balance: Mutex<u64>,
}

impl LockedAccount {
    fn deposit(&self, amount: u64) {
        *self.balance.lock().unwrap_or_else(PoisonError::into_inner) += amount;
    }
}

/// Runs `deposit` `DEPOSITS` times on each of `THREADS` threads, all starting together.
fn run_deposits(deposit: impl Fn() + Sync) {
    let start = Barrier::new(THREADS as usize);
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                start.wait();
                for _ in 0..DEPOSITS {
                    deposit();
                }
            });
        }
    });
}

fn main() {
    let expected = THREADS * DEPOSITS;

    let racy = RacyAccount {
        balance: AtomicU64::new(0),
    };
    run_deposits(|| racy.deposit(1));
    let racy_total = racy.balance.load(Ordering::Relaxed);
    println!(
        "unsynchronised total: {racy_total} (expected {expected}, {} deposits lost)",
        expected - racy_total
    );

    let locked = LockedAccount {
        balance: Mutex::new(0),
    };
    run_deposits(|| locked.deposit(1));
    let locked_total = locked
        .balance
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    println!("with a Mutex total: {locked_total} (expected {expected})");
    assert_eq!(locked_total, expected);
}
