//! `multiprocessing.Pool`'s shapes in `Executor` terms (the table in the `executor` module
//! docs): `Future::on_result` as `apply_async`'s callbacks, and `imap`, `imap_unordered` and
//! `starmap` as `map`. Each promise of `on_result` is tried against the moment it could break:
//! the handle dropped at once, the task still queued, already done, panicking, cancelled.

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use flotilla::sync::Event;
use flotilla::{Error, Executor, Promise, Shutdown, ThreadPoolExecutor};

const GENEROUS: Duration = Duration::from_secs(30);

#[flotilla::task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[flotilla::task]
fn square(x: u64) -> u64 {
    x * x
}

/// Not `Clone`: `result()` could not read it, `on_result` moves it.
#[derive(Debug, PartialEq)]
struct Owned(Vec<u8>);

fn one_worker() -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap()
}

/// Blocks the pool's only worker until the returned event is set.
fn block(pool: &ThreadPoolExecutor) -> Arc<Event> {
    let gate = Arc::new(Event::new());
    let started = Arc::new(Barrier::new(2));
    let (g, s) = (Arc::clone(&gate), Arc::clone(&started));
    pool.spawn(move || {
        s.wait();
        g.wait();
    })
    .unwrap()
    .detach();
    started.wait();
    gate
}

#[test]
fn on_result_hands_over_a_value_that_is_not_clone() {
    let pool = one_worker();
    let (tx, rx) = mpsc::channel();
    pool.spawn(|| Owned(vec![1, 2, 3]))
        .unwrap()
        .on_result(move |outcome| tx.send(outcome).unwrap());
    assert_eq!(
        rx.recv_timeout(GENEROUS).unwrap().unwrap(),
        Owned(vec![1, 2, 3])
    );
}

#[test]
fn on_result_keeps_a_queued_task_wanted_though_no_handle_is_left() {
    // The trap it removes: a future dropped right after submit cancels its task.
    let pool = one_worker();
    let gate = block(&pool);
    let (tx, rx) = mpsc::channel();
    let dropped = pool.submit(add, (1, 1)).unwrap();
    pool.submit(add, (2, 3))
        .unwrap()
        .on_result(move |outcome| tx.send(outcome).unwrap());
    assert!(dropped.cancel() || dropped.cancelled());
    drop(dropped);
    gate.set();
    assert_eq!(rx.recv_timeout(GENEROUS).unwrap().unwrap(), 5);
}

#[test]
fn on_result_runs_at_once_on_the_calling_thread_when_already_done() {
    let pool = one_worker();
    let fut = pool.submit(add, (4, 4)).unwrap();
    assert_eq!(fut.result().unwrap(), 8);
    let here = thread::current().id();
    let (tx, rx) = mpsc::channel();
    fut.on_result(move |outcome| tx.send((thread::current().id(), outcome)).unwrap());
    let (ran_on, outcome) = rx.try_recv().expect("the callback already ran");
    assert_eq!(ran_on, here);
    assert_eq!(outcome.unwrap(), 8);
}

#[test]
fn on_result_reports_a_panic_as_the_error_callback_would() {
    let pool = one_worker();
    let (tx, rx) = mpsc::channel();
    pool.spawn(|| -> u64 { panic!("deliberate") })
        .unwrap()
        .on_result(move |outcome| tx.send(outcome).unwrap());
    let err = rx.recv_timeout(GENEROUS).unwrap().unwrap_err();
    assert!(err.is_panic(), "{err:?}");
    assert!(err.to_string().contains("deliberate"), "{err}");
}

#[test]
fn on_result_reports_cancellation_by_shutdown() {
    let pool = one_worker();
    let gate = block(&pool);
    let (tx, rx) = mpsc::channel();
    pool.submit(square, 3)
        .unwrap()
        .on_result(move |outcome| tx.send(outcome).unwrap());
    pool.shutdown(Shutdown::new().wait(false).cancel_futures(true));
    assert!(
        rx.recv_timeout(GENEROUS)
            .unwrap()
            .unwrap_err()
            .is_cancelled()
    );
    gate.set();
}

#[test]
fn on_result_after_another_handle_took_the_value_gets_result_taken() {
    let promise = Promise::new();
    let first = promise.future();
    let second = first.clone();
    promise.complete(Ok(Owned(vec![9])));
    assert_eq!(first.into_result().unwrap(), Owned(vec![9]));
    let (tx, rx) = mpsc::channel();
    second.on_result(move |outcome| tx.send(outcome).unwrap());
    assert!(matches!(rx.try_recv().unwrap(), Err(Error::ResultTaken)));
}

#[test]
fn on_result_callback_runs_exactly_once_and_a_panicking_one_is_contained() {
    let pool = one_worker();
    let (tx, rx) = mpsc::channel();
    for i in 0..100u64 {
        let tx = tx.clone();
        pool.submit(square, i).unwrap().on_result(move |outcome| {
            tx.send(outcome.unwrap()).unwrap();
            if i == 50 {
                panic!("a callback that panics");
            }
        });
    }
    drop(tx);
    let mut got: Vec<u64> = rx.iter().collect();
    got.sort_unstable();
    assert_eq!(got, (0..100).map(|i| i * i).collect::<Vec<_>>());
    // The pool survived the callback's panic.
    assert_eq!(pool.submit(add, (1, 2)).unwrap().result().unwrap(), 3);
}

#[test]
fn imap_is_map_lazy_and_ordered() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    // An endless input: only what is consumed (plus the bounded buffer) is submitted.
    let first: Vec<u64> = pool
        .map(square, 0..)
        .chunksize(3)
        .take(10)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(first, (0..10).map(|i| i * i).collect::<Vec<_>>());
}

#[test]
fn imap_unordered_is_map_unordered_and_yields_each_result_once() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let mut got: Vec<u64> = pool
        .map(square, 0..200)
        .chunksize(7)
        .unordered()
        .collect::<Result<_, _>>()
        .unwrap();
    got.sort_unstable();
    assert_eq!(got, (0..200).map(|i| i * i).collect::<Vec<_>>());
}

#[test]
fn starmap_is_map_over_tuples() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let pairs: Vec<(u64, u64)> = (0..50).map(|i| (i, 2 * i)).collect();
    let sums: Vec<u64> = pool
        .map(add, pairs.clone())
        .chunksize(4)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(sums, pairs.iter().map(|(a, b)| a + b).collect::<Vec<_>>());
}
