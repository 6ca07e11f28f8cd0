//! An event releasing three waiting threads at once.
//!
//! The Python original starts three threads that each call `event.wait()`; the main thread
//! does some set-up, then `event.set()`, and all three go on together. `wait(timeout)`
//! returns `False` when the time runs out first.
//!
//! `flotilla::sync::Event` is Python's `threading.Event` (std has none): `set`, `clear`,
//! `is_set`, and `wait(timeout) -> bool`. A `Barrier` lets `main` know the three threads have
//! started before it sets the event; it is not needed for correctness (a thread that calls
//! `wait` after `set` returns at once), only to make the output show the waiting.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use flotilla::sync::Event;

fn main() {
    let event = Arc::new(Event::new());
    let started = Arc::new(Barrier::new(4));

    // Nobody has set it: a wait with a timeout gives up and says so.
    assert!(!event.is_set());
    let got = event.wait_timeout(Duration::from_millis(20));
    println!("main: wait(20ms) before set returned {got}");
    assert!(!got);

    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let event = Arc::clone(&event);
            let started = Arc::clone(&started);
            thread::Builder::new()
                .name(format!("waiter-{i}"))
                .spawn(move || {
                    started.wait();
                    event.wait();
                    println!("waiter-{i}: released");
                    event.is_set()
                })
                .expect("can start a thread")
        })
        .collect();

    started.wait();
    println!("main: 3 threads waiting, setting the event");
    event.set();

    let released = waiters
        .into_iter()
        .map(|w| w.join().expect("waiters do not panic"))
        .filter(|&r| r)
        .count();
    println!("released {released} of 3 threads");
    assert_eq!(released, 3);

    // Set stays set until cleared.
    assert!(event.is_set() && event.wait_timeout(Duration::ZERO));
    event.clear();
    assert!(!event.is_set());
    println!("event cleared: is_set() = {}", event.is_set());
}
