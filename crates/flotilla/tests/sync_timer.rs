//! `flotilla::sync::Timer`: firing, cancelling (which must wake the timer thread at once),
//! joining, and panics in the timed function.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use flotilla::sync::{Event, Timer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TIMERS: usize = if cfg!(miri) { 10 } else { 200 };
const LONG: Duration = Duration::from_secs(60);
/// Longer than any test may take: a timer with this delay must be cancelled to finish.
const HOUR: Duration = Duration::from_secs(3600);

/// Waits (yielding, never sleeping) until the timer thread has exited, for at most `LONG`.
fn until_finished(timer: &Timer) {
    let deadline = Instant::now() + LONG;
    while !timer.is_finished() {
        assert!(Instant::now() < deadline, "the timer thread did not exit");
        thread::yield_now();
    }
}

#[test]
fn runs_the_function_after_the_delay() {
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    let timer = Timer::start(Duration::from_millis(20), move || {
        tx.send(started.elapsed()).unwrap();
    });
    let waited = rx.recv_timeout(LONG).unwrap();
    assert!(
        waited >= Duration::from_millis(20),
        "fired early: {waited:?}"
    );
    timer.join();
}

#[test]
fn zero_delay_fires() {
    let (tx, rx) = mpsc::channel();
    let timer = Timer::start(Duration::ZERO, move || tx.send(()).unwrap());
    rx.recv_timeout(LONG).unwrap();
    assert!(!timer.cancel(), "too late to cancel");
    timer.join();
}

#[test]
fn cancel_wakes_the_timer_thread_at_once() {
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let timer = Timer::start(HOUR, move || flag.store(true, Ordering::SeqCst));
    assert!(!timer.is_finished());
    let started = Instant::now();
    assert!(timer.cancel());
    assert!(
        timer.cancel(),
        "cancelling twice still reports the call stopped"
    );
    // Would take an hour if `cancel` did not wake the thread.
    timer.join();
    assert!(started.elapsed() < LONG);
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn cancel_after_the_call_reports_false() {
    let (tx, rx) = mpsc::channel();
    let timer = Timer::start(Duration::from_millis(1), move || tx.send(()).unwrap());
    rx.recv_timeout(LONG).unwrap();
    assert!(!timer.cancel());
    until_finished(&timer);
    assert!(!timer.cancel());
    timer.join();
}

#[test]
fn cancel_while_the_function_runs_reports_false() {
    let (tx, rx) = mpsc::channel();
    let release = Arc::new(Event::new());
    let gate = Arc::clone(&release);
    let timer = Timer::start(Duration::ZERO, move || {
        tx.send(()).unwrap();
        gate.wait();
    });
    rx.recv_timeout(LONG).unwrap();
    assert!(!timer.cancel(), "the function is already running");
    assert!(!timer.is_finished());
    release.set();
    timer.join();
}

#[test]
fn a_huge_delay_does_not_overflow() {
    let timer = Timer::start(Duration::MAX, || unreachable!("cancelled"));
    assert!(timer.cancel());
    timer.join();
}

#[test]
fn dropping_a_timer_does_not_cancel_it() {
    let (tx, rx) = mpsc::channel();
    drop(Timer::start(Duration::from_millis(5), move || {
        tx.send("still ran").unwrap()
    }));
    assert_eq!(rx.recv_timeout(LONG).unwrap(), "still ran");
}

#[test]
fn try_start_starts_a_timer() {
    let timer = Timer::try_start(HOUR, || {}).unwrap();
    assert!(timer.cancel());
    until_finished(&timer);
    assert!(timer.is_finished());
    timer.join();
}

#[test]
#[should_panic(expected = "boom in timer")]
fn join_resumes_a_panic_of_the_function() {
    let timer = Timer::start(Duration::ZERO, || panic!("boom in timer"));
    timer.join();
}

#[test]
fn debug_output() {
    let timer = Timer::start(HOUR, || {});
    let shown = format!("{timer:?}");
    assert!(
        shown.contains("cancelled: false") && shown.contains("fired: false"),
        "{shown}"
    );
    timer.cancel();
    assert!(format!("{timer:?}").contains("cancelled: true"));
    timer.join();
}

#[test]
fn many_timers_each_run_exactly_when_not_cancelled() {
    let mut rng = StdRng::seed_from_u64(21);
    let timers: Vec<_> = (0..TIMERS)
        .map(|_| {
            let ran = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&ran);
            let delay = Duration::from_micros(rng.random_range(0..3_000));
            let timer = Timer::start(delay, move || {
                assert!(!flag.swap(true, Ordering::SeqCst), "ran twice");
            });
            (timer, ran, rng.random_bool(0.5))
        })
        .collect();
    let mut outcomes = [0; 2];
    for (timer, ran, cancel) in timers {
        let stopped = cancel && timer.cancel();
        timer.join();
        assert_eq!(
            ran.load(Ordering::SeqCst),
            !stopped,
            "cancel reported {stopped}"
        );
        outcomes[usize::from(stopped)] += 1;
    }
    assert_eq!(outcomes.iter().sum::<usize>(), TIMERS);
}
