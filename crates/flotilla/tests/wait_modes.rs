//! `wait` and `wait_async` in each `ReturnWhen` mode (CPython's `test_wait.py`).
//!
//! Futures are driven by hand through `Promise`s, so each test fixes exactly which futures are
//! done when `wait` is called.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::mpsc;
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use flotilla::{Error, Future, ReturnWhen, ThreadPoolExecutor, wait, wait_async, wait_timeout};

#[path = "support/futures.rs"]
mod futures;
use futures::{cancelled, failed, finished, pending};

const SHORT: Duration = Duration::from_millis(20);
const GENEROUS: Duration = Duration::from_secs(30);
const MODES: [ReturnWhen; 3] = [
    ReturnWhen::FirstCompleted,
    ReturnWhen::FirstException,
    ReturnWhen::AllCompleted,
];

/// Runs `complete` on another thread once the caller is about to block.
fn later<F: FnOnce() + Send + 'static>(complete: F) -> (mpsc::Sender<()>, thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        rx.recv().unwrap();
        complete();
    });
    (tx, handle)
}

#[test]
fn an_empty_list_returns_at_once_in_every_mode() {
    for mode in MODES {
        let (done, not_done) = wait(Vec::<Future<u32>>::new(), mode);
        assert!(done.is_empty() && not_done.is_empty());
    }
}

#[test]
fn all_completed_with_finished_failed_and_cancelled_futures() {
    let (ok, bad, gone) = (finished(1), failed(), cancelled());
    let (promise, pend) = pending();
    let futures = vec![ok.clone(), bad.clone(), pend.clone(), gone.clone()];
    let (tx, completer) = later(move || promise.complete(Ok(2)));
    tx.send(()).unwrap();
    let (done, not_done) = wait_timeout(&futures, ReturnWhen::AllCompleted, GENEROUS);
    completer.join().unwrap();
    assert_eq!(done, futures, "input order is kept");
    assert!(not_done.is_empty());
    assert_eq!(pend.result().unwrap(), 2);
}

#[test]
fn all_completed_times_out_with_the_pending_ones_left() {
    let (ok, bad, gone) = (finished(1), failed(), cancelled());
    let (_p1, a) = pending();
    let (_p2, b) = pending();
    let futures = [a.clone(), ok.clone(), b.clone(), bad.clone(), gone.clone()];
    for timeout in [Duration::ZERO, SHORT] {
        let start = Instant::now();
        let (done, not_done) = wait_timeout(&futures, ReturnWhen::AllCompleted, timeout);
        assert!(start.elapsed() >= timeout);
        assert_eq!(done, [ok.clone(), bad.clone(), gone.clone()]);
        assert_eq!(not_done, [a.clone(), b.clone()]);
    }
}

#[test]
fn first_completed_returns_at_once_with_every_done_future() {
    let (_p, pend) = pending();
    let (ok, gone) = (finished(1), cancelled());
    let futures = [pend.clone(), ok.clone(), gone.clone()];
    let (done, not_done) = wait(&futures, ReturnWhen::FirstCompleted);
    assert_eq!(done, [ok, gone]);
    assert_eq!(not_done, [pend]);
}

#[test]
fn first_completed_counts_a_cancellation() {
    let (_p1, a) = pending();
    let (_p2, b) = pending();
    let (tx, canceller) = later({
        let b = b.clone();
        move || assert!(b.cancel())
    });
    tx.send(()).unwrap();
    let (done, not_done) = wait_timeout([&a, &b], ReturnWhen::FirstCompleted, GENEROUS);
    canceller.join().unwrap();
    assert_eq!(done, [b]);
    assert_eq!(not_done, [a]);
}

#[test]
fn first_completed_waits_for_a_completion_on_another_thread() {
    let (p1, a) = pending();
    let (_p2, b) = pending();
    let (tx, completer) = later(move || p1.complete(Ok(7)));
    tx.send(()).unwrap();
    let (done, not_done) =
        wait_timeout([a.clone(), b.clone()], ReturnWhen::FirstCompleted, GENEROUS);
    completer.join().unwrap();
    assert_eq!(done, std::slice::from_ref(&a));
    assert_eq!(not_done, [b]);
    assert_eq!(a.result().unwrap(), 7);
}

#[test]
fn first_completed_times_out_when_nothing_completes() {
    let (_p1, a) = pending();
    let (_p2, b) = pending();
    for timeout in [Duration::ZERO, SHORT] {
        let (done, not_done) = wait_timeout([&a, &b], ReturnWhen::FirstCompleted, timeout);
        assert!(done.is_empty());
        assert_eq!(not_done, [a.clone(), b.clone()]);
    }
}

#[test]
fn first_exception_returns_at_once_for_an_already_failed_future() {
    let (_p, pend) = pending();
    let (ok, bad) = (finished(1), failed());
    let futures = [ok.clone(), pend.clone(), bad.clone()];
    let (done, not_done) = wait(&futures, ReturnWhen::FirstException);
    assert_eq!(done, [ok, bad]);
    assert_eq!(not_done, [pend]);
}

#[test]
fn first_exception_returns_when_a_pending_future_fails() {
    let (p1, a) = pending();
    let (_p2, b) = pending();
    let ok = finished(3);
    let (tx, completer) = later(move || drop(p1)); // abandoned: an error
    tx.send(()).unwrap();
    let (done, not_done) = wait_timeout(
        [ok.clone(), a.clone(), b.clone()],
        ReturnWhen::FirstException,
        GENEROUS,
    );
    completer.join().unwrap();
    assert_eq!(done, [ok, a.clone()]);
    assert_eq!(not_done, [b]);
    assert!(matches!(a.result(), Err(Error::Abandoned)));
}

#[test]
fn first_exception_ignores_values_and_cancellations() {
    let (ok, gone) = (finished(1), cancelled());
    let (_p, pend) = pending();
    let futures = [ok.clone(), gone.clone(), pend.clone()];
    let start = Instant::now();
    let (done, not_done) = wait_timeout(&futures, ReturnWhen::FirstException, SHORT);
    assert!(start.elapsed() >= SHORT, "it returned before the timeout");
    assert_eq!(done, [ok, gone]);
    assert_eq!(not_done, [pend]);
}

#[test]
fn first_exception_without_failures_waits_for_all() {
    let (p1, a) = pending();
    let (p2, b) = pending();
    let (tx, completer) = later(move || {
        p1.complete(Ok(1));
        p2.complete(Ok(2));
    });
    tx.send(()).unwrap();
    let (done, not_done) = wait_timeout([&a, &b], ReturnWhen::FirstException, GENEROUS);
    completer.join().unwrap();
    assert_eq!(done, [a, b]);
    assert!(not_done.is_empty());
}

#[test]
fn duplicates_appear_once() {
    let ok = finished(1);
    let (_p, pend) = pending();
    for mode in MODES {
        let futures = [ok.clone(), pend.clone(), ok.clone(), pend.clone()];
        let (done, not_done) = wait_timeout(&futures, mode, Duration::ZERO);
        assert_eq!(done, std::slice::from_ref(&ok), "{mode:?}");
        assert_eq!(not_done, std::slice::from_ref(&pend), "{mode:?}");
    }
    let (done, not_done) = wait([&ok, &ok, &ok], ReturnWhen::AllCompleted);
    assert_eq!(done, [ok]);
    assert!(not_done.is_empty());
}

#[test]
fn wait_on_pool_tasks() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(4)
        .build()
        .unwrap();
    let futures: Vec<_> = (0..20u32)
        .map(|i| pool.spawn(move || i * i))
        .collect::<Result<_, _>>()
        .unwrap();
    let (done, not_done) = wait_timeout(futures.clone(), ReturnWhen::AllCompleted, GENEROUS);
    assert_eq!(done.len(), 20);
    assert!(not_done.is_empty());
    let total: u32 = done.iter().map(|f| f.result().unwrap()).sum();
    assert_eq!(total, (0..20).map(|i| i * i).sum());
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

#[test]
fn wait_async_in_each_mode_with_done_futures() {
    let rt = runtime();
    let (_p, pend) = pending();
    let (ok, bad, gone) = (finished(1), failed(), cancelled());

    let (done, not_done) = rt.block_on(wait_async(
        [pend.clone(), ok.clone(), gone.clone()],
        ReturnWhen::FirstCompleted,
    ));
    assert_eq!(done, [ok.clone(), gone.clone()]);
    assert_eq!(not_done, std::slice::from_ref(&pend));

    let (done, not_done) = rt.block_on(wait_async(
        [ok.clone(), pend.clone(), bad.clone()],
        ReturnWhen::FirstException,
    ));
    assert_eq!(done, [ok.clone(), bad.clone()]);
    assert_eq!(not_done, std::slice::from_ref(&pend));

    let (done, not_done) = rt.block_on(wait_async(
        [ok.clone(), bad.clone(), gone.clone(), ok.clone()],
        ReturnWhen::AllCompleted,
    ));
    assert_eq!(done, [ok, bad, gone]);
    assert!(not_done.is_empty());

    let (done, not_done) = rt.block_on(wait_async(
        Vec::<Future<u32>>::new(),
        ReturnWhen::AllCompleted,
    ));
    assert!(done.is_empty() && not_done.is_empty());
}

#[test]
fn wait_async_is_woken_by_completions_on_other_threads() {
    let rt = runtime();
    for mode in MODES {
        let (p1, a) = pending();
        let (p2, b) = pending();
        let (tx, completer) = later(move || {
            p1.complete(Err(Error::Abandoned));
            p2.complete(Ok(2));
        });
        let futures = [a.clone(), b.clone()];
        let (done, _) = rt.block_on(async {
            let mut waiting = wait_async(&futures, mode);
            let first =
                std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut waiting).poll(cx))).await;
            assert!(first.is_pending());
            tx.send(()).unwrap();
            tokio::time::timeout(GENEROUS, waiting).await.expect("hang")
        });
        completer.join().unwrap();
        assert!(done.contains(&a), "{mode:?}");
        if mode == ReturnWhen::AllCompleted {
            assert_eq!(done, [a, b]);
        }
    }
}

#[test]
fn wait_async_under_a_runtime_timeout_leaves_futures_alone() {
    let rt = runtime();
    let (promise, pend) = pending();
    let timed_out = rt.block_on(async {
        tokio::time::timeout(SHORT, wait_async([&pend], ReturnWhen::AllCompleted)).await
    });
    assert!(timed_out.is_err());
    assert!(!pend.done());
    promise.complete(Ok(1));
    assert_eq!(pend.result().unwrap(), 1);
}
