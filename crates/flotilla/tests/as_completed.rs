//! `as_completed` and `as_completed_stream` (CPython's `test_as_completed.py`).

use std::collections::HashSet;
use std::future::Future as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use flotilla::{
    Error, Future, Promise, ThreadPoolExecutor, as_completed, as_completed_stream,
    as_completed_timeout,
};

#[path = "support/futures.rs"]
mod futures;
use futures::{cancelled, finished, pending};

const SHORT: Duration = Duration::from_millis(20);
const GENEROUS: Duration = Duration::from_secs(30);

#[test]
fn an_empty_list_ends_at_once() {
    let mut it = as_completed_timeout(Vec::<Future<u32>>::new(), Duration::ZERO);
    assert!(it.next().is_none());
    assert!(it.next().is_none());
}

#[test]
fn finished_futures_come_first_in_input_order_then_by_completion() {
    let (pa, a) = pending();
    let (pb, b) = pending();
    let (c, d, gone) = (finished(3), finished(4), cancelled());
    let mut it = as_completed_timeout([&a, &c, &b, &gone, &d], GENEROUS);
    assert_eq!(it.next().unwrap().unwrap(), c);
    assert_eq!(it.next().unwrap().unwrap(), gone);
    assert_eq!(it.next().unwrap().unwrap(), d);

    // Completed between two calls: yielded next, although it comes after `a` in the input.
    pb.complete(Ok(2));
    assert_eq!(it.next().unwrap().unwrap(), b);

    // Completed while `next` blocks.
    let (tx, rx) = mpsc::channel::<()>();
    let completer = thread::spawn(move || {
        rx.recv().unwrap();
        pa.complete(Ok(1));
    });
    tx.send(()).unwrap();
    assert_eq!(it.next().unwrap().unwrap(), a);
    assert!(it.next().is_none());
    assert!(it.next().is_none());
    completer.join().unwrap();
}

#[test]
fn duplicates_are_yielded_once() {
    let (pa, a) = pending();
    let b = finished(2);
    pa.complete(Ok(1));
    let yielded: Vec<_> = as_completed([&a, &b, &a, &b, &a])
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(yielded, [a, b]);
}

fn assert_unfinished(err: &Error, left: usize, total: usize, timeout: Duration) {
    match err {
        Error::Timeout { waited, unfinished } => {
            assert_eq!(*unfinished, Some((left, total)));
            assert_eq!(*waited, timeout);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("{left} (of {total}) futures unfinished")),
        "{message}"
    );
}

#[test]
fn zero_timeout_yields_the_done_ones_then_one_timeout_then_ends() {
    let (_pa, a) = pending();
    let (_pb, b) = pending();
    let c = finished(3);
    let mut it = as_completed_timeout([&a, &c, &b, &a], Duration::ZERO);
    assert_eq!(it.next().unwrap().unwrap(), c);
    let err = it.next().unwrap().unwrap_err();
    assert!(err.is_timeout());
    assert_unfinished(&err, 2, 3, Duration::ZERO);
    assert!(it.next().is_none());
    assert!(it.next().is_none());
}

#[test]
fn short_timeout_yields_one_timeout_then_ends() {
    let (_pa, a) = pending();
    let (pb, b) = pending();
    let start = Instant::now();
    let mut it = as_completed_timeout([&a, &b], SHORT);
    pb.complete(Ok(2));
    assert_eq!(it.next().unwrap().unwrap(), b);
    let err = it.next().unwrap().unwrap_err();
    assert!(start.elapsed() >= SHORT);
    assert_unfinished(&err, 1, 2, SHORT);
    assert!(it.next().is_none());
    assert!(!a.done(), "the unfinished future is left alone");
}

#[test]
fn the_timeout_is_measured_from_the_call() {
    const TIMEOUT: Duration = Duration::from_millis(200);
    let (_pa, a) = pending();
    let mut it = as_completed_timeout([&a], TIMEOUT);
    // Let the whole timeout pass before the first `next`: it must not wait again.
    let (_tx, rx) = mpsc::channel::<()>();
    assert!(rx.recv_timeout(TIMEOUT).is_err());
    let start = Instant::now();
    assert_unfinished(&it.next().unwrap().unwrap_err(), 1, 1, TIMEOUT);
    assert!(
        start.elapsed() < TIMEOUT,
        "next() waited a second full timeout"
    );
}

#[test]
fn as_completed_over_pool_tasks() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(4)
        .build()
        .unwrap();
    let futures: Vec<_> = (0..50u32)
        .map(|i| pool.spawn(move || i))
        .collect::<Result<_, _>>()
        .unwrap();
    let mut seen = HashSet::new();
    for future in as_completed_timeout(&futures, GENEROUS) {
        let future = future.unwrap();
        assert!(future.done());
        assert!(seen.insert(future.result().unwrap()));
    }
    assert_eq!(seen, (0..50).collect());
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

#[test]
fn the_stream_yields_done_futures_first_then_completions() {
    let rt = runtime();
    let (pa, a) = pending();
    let (pb, b) = pending();
    let c = finished(3);
    let mut stream = as_completed_stream([&a, &c, &b, &c]);
    assert_eq!(futures_core::Stream::size_hint(&stream), (3, Some(3)));
    let order = rt.block_on(async {
        let mut order = vec![stream.next().await.unwrap()];
        // Poll once so that the stream is registered, then complete from another thread.
        let mut next = Box::pin(stream.next());
        let first = std::future::poll_fn(|cx| Poll::Ready(next.as_mut().poll(cx))).await;
        assert!(first.is_pending());
        let (tx, rx) = mpsc::channel::<()>();
        let completer = thread::spawn(move || {
            rx.recv().unwrap();
            pb.complete(Ok(2));
            rx.recv().unwrap();
            pa.complete(Ok(1));
        });
        tx.send(()).unwrap();
        order.push(
            tokio::time::timeout(GENEROUS, next)
                .await
                .expect("hang")
                .unwrap(),
        );
        tx.send(()).unwrap();
        order.push(
            tokio::time::timeout(GENEROUS, stream.next())
                .await
                .expect("hang")
                .unwrap(),
        );
        assert!(stream.next().await.is_none());
        completer.join().unwrap();
        order
    });
    assert_eq!(order, [c, b, a]);
}

#[test]
fn the_stream_over_pool_tasks() {
    let rt = runtime();
    let pool = ThreadPoolExecutor::builder()
        .max_workers(3)
        .build()
        .unwrap();
    let futures: Vec<_> = (1..=30u32)
        .map(|i| pool.spawn(move || i))
        .collect::<Result<_, _>>()
        .unwrap();
    let total = rt.block_on(async {
        let mut stream = as_completed_stream(&futures);
        let mut total = 0;
        while let Some(future) = tokio::time::timeout(GENEROUS, stream.next())
            .await
            .expect("hang")
        {
            total += future.await.unwrap();
        }
        total
    });
    assert_eq!(total, (1..=30).sum());
}

/// Counts its drops: a task's value whose release can be observed.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Three futures finished with `Tracked` values, and the count of those values dropped.
fn tracked_futures() -> (Vec<Future<Tracked>>, Arc<AtomicUsize>) {
    let dropped = Arc::new(AtomicUsize::new(0));
    let futures = (0..3)
        .map(|_| {
            let promise = Promise::new();
            let future = promise.future();
            promise.complete(Ok(Tracked(Arc::clone(&dropped))));
            future
        })
        .collect();
    (futures, dropped)
}

/// A yielded future, and its value, are released as soon as the caller drops it, not when the
/// iterator ends (the memory growth CPython fixed in its own `as_completed`, bpo-27144).
#[test]
fn a_yielded_future_is_released_by_the_iterator() {
    let (futures, dropped) = tracked_futures();
    let mut it = as_completed(futures);
    for released in 1..=3 {
        drop(it.next().unwrap().unwrap());
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            released,
            "kept by as_completed"
        );
    }
    assert!(it.next().is_none());
}

#[test]
fn a_future_yielded_by_the_stream_is_released_by_it() {
    let (futures, dropped) = tracked_futures();
    let mut stream = as_completed_stream(futures);
    runtime().block_on(async {
        for released in 1..=3 {
            drop(stream.next().await.unwrap());
            assert_eq!(
                dropped.load(Ordering::SeqCst),
                released,
                "kept by the stream"
            );
        }
        assert!(stream.next().await.is_none());
    });
}
