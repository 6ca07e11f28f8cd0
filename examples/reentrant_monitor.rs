//! A monitor object whose methods call each other under one reentrant lock.
//!
//! The Python original is a class guarded by a `threading.RLock`: every public method starts
//! with `with self._lock:`, and some methods call others (`transfer` calls `remove` and `add`),
//! which takes the lock again on the same thread. A plain `Lock` would deadlock there; an
//! `RLock` counts the re-entries.
//!
//! std has no reentrant mutex; `parking_lot::ReentrantMutex` is the well-kept one. It only
//! hands out shared references (two guards on one thread could otherwise alias a `&mut`), so
//! the state sits in a `RefCell` and each method borrows it briefly, never across a call to
//! another method. The outer guard in `transfer` makes the remove-then-add atomic: no other
//! thread ever sees the item missing from both shelves.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::thread;

use parking_lot::ReentrantMutex;

/// A stock of items on named shelves; the total never changes while items move.
struct Warehouse {
    shelves: ReentrantMutex<RefCell<HashMap<&'static str, u32>>>,
}

impl Warehouse {
    fn new(shelves: &[(&'static str, u32)]) -> Self {
        Warehouse {
            shelves: ReentrantMutex::new(RefCell::new(shelves.iter().copied().collect())),
        }
    }

    fn add(&self, shelf: &'static str, n: u32) {
        let guard = self.shelves.lock();
        *guard.borrow_mut().entry(shelf).or_insert(0) += n;
    }

    /// Removes up to `n` items; returns how many were there to remove.
    fn remove(&self, shelf: &'static str, n: u32) -> u32 {
        let guard = self.shelves.lock();
        let mut shelves = guard.borrow_mut();
        let count = shelves.entry(shelf).or_insert(0);
        let taken = n.min(*count);
        *count -= taken;
        taken
    }

    /// Moves up to `n` items: calls `remove` and `add`, which lock again on this thread.
    fn transfer(&self, from: &'static str, to: &'static str, n: u32) {
        let _whole_move = self.shelves.lock();
        let moved = self.remove(from, n);
        self.add(to, moved);
    }

    fn total(&self) -> u32 {
        let guard = self.shelves.lock();
        guard.borrow().values().sum()
    }

    /// Takes a consistent snapshot while holding the lock, then calls `total` under it too.
    fn report(&self) -> String {
        let guard = self.shelves.lock();
        let mut shelves: Vec<_> = guard.borrow().iter().map(|(k, v)| (*k, *v)).collect();
        shelves.sort();
        format!("{shelves:?}, total {}", self.total())
    }
}

fn main() {
    let warehouse = Arc::new(Warehouse::new(&[("north", 50), ("south", 50)]));
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let warehouse = Arc::clone(&warehouse);
            thread::spawn(move || {
                let (from, to) = if i % 2 == 0 {
                    ("north", "south")
                } else {
                    ("south", "north")
                };
                for round in 0..1_000 {
                    warehouse.transfer(from, to, round % 7);
                    // Every transfer is atomic, so the total is right at every moment.
                    assert_eq!(warehouse.total(), 100);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("no worker panics");
    }
    println!("after 4000 nested transfers: {}", warehouse.report());
    assert_eq!(warehouse.total(), 100);
    println!("total stock conserved: {}", warehouse.total());
}
