//! Done-callbacks on a future that succeeds and on one that fails.
//!
//! The Python original calls `future.add_done_callback(report)` where `report(f)` prints
//! `f.result()`, or `f.exception()` when the task raised. The callback runs in the worker
//! thread that finished the task, or at once in the caller's thread if the future is already
//! done.
//!
//! flotilla's `Future::add_done_callback` behaves the same way. A task "raises" by panicking:
//! the panic is caught, does not take the pool down, and reaches the callback as
//! `Error::Panicked` with the message and the source location. The callbacks here send their
//! reports over a channel, so `main` prints them in a fixed order once both have run. The
//! tasks wait on an `Event` until both callbacks are registered, so those run on the workers;
//! the last one is added to a finished future and runs on `main`.

use std::error::Error;
use std::sync::{Arc, mpsc};

use flotilla::sync::Event;
use flotilla::{Future, ThreadPoolExecutor};
use flotilla_examples::thread_name;

/// What a callback reports about the future it was given.
fn report(label: &'static str, future: &Future<u32>) -> String {
    let outcome = match future.exception() {
        Ok(None) => match future.result() {
            Ok(value) => format!("result = {value}"),
            Err(err) => format!("error = {err}"),
        },
        Ok(Some(err)) => format!("failed: {err}"),
        Err(err) => format!("not finished: {err}"),
    };
    format!("{label}: {outcome} (callback ran on {})", thread_name())
}

fn main() -> Result<(), Box<dyn Error>> {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .thread_name_prefix("callbacks")
        .build()?;
    let (tx, rx) = mpsc::channel();

    let go = Arc::new(Event::new());

    let gate = Arc::clone(&go);
    let answer = pool.spawn(move || {
        gate.wait();
        6 * 7
    })?;
    let tx1 = tx.clone();
    answer.add_done_callback(move |f| {
        let _ = tx1.send(report("answer", f));
    });

    let gate = Arc::clone(&go);
    let sensor = pool.spawn(move || -> u32 {
        gate.wait();
        panic!("sensor offline")
    })?;
    let tx2 = tx.clone();
    sensor.add_done_callback(move |f| {
        let _ = tx2.send(report("sensor", f));
    });
    drop(tx);
    go.set();

    let mut reports: Vec<String> = rx.iter().collect();
    reports.sort();
    for line in &reports {
        println!("{line}");
    }

    // The pool survived the panic; a callback added to a finished future runs right here.
    let late = pool.spawn(|| 1)?;
    late.result()?;
    late.add_done_callback(|f| println!("{}", report("late", f)));

    let err = sensor.result().unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic().map(|p| p.message()), Some("sensor offline"));
    assert_eq!(answer.result()?, 42);
    Ok(())
}
