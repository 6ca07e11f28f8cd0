//! `flotilla::sync::Event`: set, clear, waits with and without timeouts, many waiters.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use flotilla::sync::Event;

const N: usize = if cfg!(miri) { 50 } else { 20_000 };
const SHORT: Duration = Duration::from_millis(20);
const LONG: Duration = Duration::from_secs(60);

#[test]
fn starts_clear_and_follows_set_and_clear() {
    let event = Event::new();
    assert!(!event.is_set());
    event.set();
    assert!(event.is_set());
    event.set(); // setting twice is harmless
    assert!(event.is_set());
    event.clear();
    assert!(!event.is_set());
    event.clear();
    assert!(!event.is_set());
    assert!(!Event::default().is_set());
}

#[test]
fn wait_returns_at_once_when_set() {
    let event = Event::new();
    event.set();
    event.wait();
    assert!(event.wait_timeout(Duration::ZERO));
    assert!(event.wait_timeout(LONG));
}

#[test]
fn wait_times_out_when_never_set() {
    let event = Event::new();
    assert!(!event.wait_timeout(SHORT));
    assert!(!event.wait_timeout(Duration::ZERO));
    event.set();
    event.clear();
    assert!(!event.wait_timeout(SHORT), "a cleared event blocks again");
}

#[test]
fn a_huge_timeout_does_not_overflow() {
    let event = Arc::new(Event::new());
    let setter = {
        let event = Arc::clone(&event);
        thread::spawn(move || event.set())
    };
    assert!(event.wait_timeout(Duration::MAX));
    setter.join().unwrap();
}

#[test]
fn set_releases_every_waiter() {
    const WAITERS: usize = 8;
    let event = Arc::new(Event::new());
    let started = Arc::new(Barrier::new(WAITERS + 1));
    let (tx, rx) = mpsc::channel();
    let waiters: Vec<_> = (0..WAITERS)
        .map(|i| {
            let (event, started, tx) = (Arc::clone(&event), Arc::clone(&started), tx.clone());
            thread::spawn(move || {
                started.wait();
                let woke = if i % 2 == 0 {
                    event.wait();
                    event.is_set()
                } else {
                    event.wait_timeout(LONG)
                };
                tx.send(woke).unwrap();
            })
        })
        .collect();
    started.wait();
    assert!(rx.recv_timeout(SHORT).is_err(), "nobody passes before set");
    event.set();
    for _ in 0..WAITERS {
        assert!(rx.recv_timeout(LONG).unwrap());
    }
    for waiter in waiters {
        waiter.join().unwrap();
    }
}

#[test]
fn ping_pong_stress() {
    // Two threads hand a turn back and forth N times through two events, each clearing its own
    // event before setting the other's: any lost wake-up hangs, any spurious pass is caught by
    // the turn counter.
    let ping = Arc::new(Event::new());
    let pong = Arc::new(Event::new());
    let turn = Arc::new(AtomicUsize::new(0));
    let other = {
        let (ping, pong, turn) = (Arc::clone(&ping), Arc::clone(&pong), Arc::clone(&turn));
        thread::spawn(move || {
            for i in 0..N {
                ping.wait();
                ping.clear();
                assert_eq!(turn.swap(2 * i + 1, Ordering::SeqCst), 2 * i);
                pong.set();
            }
        })
    };
    for i in 0..N {
        ping.set();
        assert!(pong.wait_timeout(LONG));
        pong.clear();
        assert_eq!(turn.load(Ordering::SeqCst), 2 * i + 1);
        turn.store(2 * i + 2, Ordering::SeqCst);
    }
    other.join().unwrap();
}

#[test]
fn debug_output() {
    let event = Event::new();
    assert_eq!(format!("{event:?}"), "Event { is_set: false }");
    event.set();
    assert_eq!(format!("{event:?}"), "Event { is_set: true }");
}
