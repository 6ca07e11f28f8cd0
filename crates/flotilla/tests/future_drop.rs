//! What dropping a `Future` does: the last handle of an unfinished future cancels its task,
//! `detach` lets it run with no handle, and a handle that polled the future leaves no waker
//! behind when it is dropped.
//!
//! A `Promise` drives every state by hand, so nothing here depends on thread timing; the
//! executors' side (a queued task never runs, a process task is killed) is in
//! `executor_drop.rs`.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use flotilla::{Future, Promise};

#[path = "support/futures.rs"]
mod futures;
use futures::{finished, pending, running};

#[test]
fn dropping_a_clone_keeps_the_task_and_the_last_handle_cancels_it() {
    let (promise, future) = pending();
    let clone = future.clone();
    drop(future);
    assert!(!promise.is_cancelled(), "a handle is left");
    drop(clone);
    assert!(promise.is_cancelled());
    assert!(!promise.set_running(), "a cancelled task must not run");
}

#[test]
fn the_last_handle_of_a_running_task_stops_it_where_the_executor_can() {
    let (promise, future) = running();
    let stops = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&stops);
    promise.on_cancel(move || {
        s.fetch_add(1, Ordering::SeqCst);
    });
    drop(future);
    assert_eq!(
        stops.load(Ordering::SeqCst),
        1,
        "the process pool's kill hook"
    );
    assert!(promise.is_cancelled());
}

/// Counts its drops: a task's value whose release can be observed.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_running_thread_task_runs_on_and_its_result_is_thrown_away() {
    let promise = Promise::new();
    let future = promise.future();
    assert!(promise.set_running());
    drop(future);
    assert!(
        !promise.is_cancelled(),
        "a thread cannot be stopped: the task runs on"
    );
    let dropped = Arc::new(AtomicUsize::new(0));
    promise.complete(Ok(Tracked(Arc::clone(&dropped))));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "nobody can read the value"
    );
}

#[test]
fn dropping_a_done_future_changes_nothing() {
    let future = finished(3);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    future.add_done_callback(move |f| {
        assert_eq!(f.result().unwrap(), 3);
        c.fetch_add(1, Ordering::SeqCst);
    });
    drop(future);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn cancelling_by_drop_runs_the_done_callbacks() {
    let (promise, future) = pending();
    let (tx, rx) = mpsc::channel();
    future.add_done_callback(move |f| tx.send(f.cancelled()).unwrap());
    drop(future);
    assert!(
        rx.try_recv().unwrap(),
        "the callback saw a cancelled future"
    );
    drop(promise);
}

#[test]
fn a_detached_task_is_not_cancelled_by_any_drop() {
    let (promise, future) = pending();
    let other = future.clone();
    future.detach();
    drop(other);
    assert!(!promise.is_cancelled());
    assert!(promise.set_running());
    promise.complete(Ok(1));

    // Detaching after a cancel changes nothing.
    let (promise, future) = pending();
    assert!(future.cancel());
    future.detach();
    assert!(promise.is_cancelled());
}

#[test]
fn an_explicit_cancel_still_stops_a_detached_task() {
    let (promise, future) = pending();
    let watcher = future.clone();
    future.detach();
    assert!(watcher.cancel());
    assert!(promise.is_cancelled());
}

/// A handle kept by a done-callback keeps the task wanted; the callback may drop it (the last
/// handle) from inside itself.
#[test]
fn a_callback_may_hold_and_drop_the_last_handle_of_its_own_future() {
    let (promise, future) = pending();
    let held = future.clone();
    let (tx, rx) = mpsc::channel();
    future.add_done_callback(move |f| {
        let value = f.result().unwrap();
        drop(held);
        tx.send(value).unwrap();
    });
    drop(future);
    assert!(!promise.is_cancelled(), "the callback's handle is left");
    assert!(promise.set_running());
    promise.complete(Ok(11));
    assert_eq!(rx.try_recv().unwrap(), 11);
}

/// The case users meet: an awaited future given up by a timeout is a dropped future.
#[test]
fn an_awaited_future_dropped_by_a_runtime_timeout_cancels_its_task() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (promise, future) = pending();
    let elapsed =
        rt.block_on(async { tokio::time::timeout(Duration::from_millis(5), future).await });
    assert!(elapsed.is_err());
    assert!(promise.is_cancelled());
}

/// A waker that counts its wake-ups; `Weak`s to it show whether the future still holds it.
struct Counting(AtomicUsize);

impl Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting() -> (Arc<Counting>, Waker) {
    let counter = Arc::new(Counting(AtomicUsize::new(0)));
    (Arc::clone(&counter), Waker::from(counter))
}

fn poll_once(future: &mut Future<u32>, waker: &Waker) -> Poll<Result<u32, flotilla::Error>> {
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

/// 200,000 pollers that each gave up on one pending future leave none of their wakers behind.
#[test]
fn pollers_that_gave_up_leave_no_waker_behind() {
    const POLLERS: usize = 200_000;
    let (promise, future) = pending();
    let mut held: Vec<Weak<Counting>> = Vec::with_capacity(POLLERS);
    for _ in 0..POLLERS {
        let (counter, waker) = counting();
        let mut poller = future.clone();
        assert!(poll_once(&mut poller, &waker).is_pending());
        drop((poller, waker));
        held.push(Arc::downgrade(&counter));
    }
    let alive = held.iter().filter(|w| w.strong_count() > 0).count();
    assert_eq!(alive, 0, "wakers kept by the pending future");
    promise.complete(Ok(1));
    assert_eq!(future.result().unwrap(), 1);
}

/// One handle polled by one task after another keeps only the latest waker, and that one is
/// woken.
#[test]
fn a_handle_keeps_only_its_latest_waker() {
    let (promise, mut future) = pending();
    let mut earlier = Vec::new();
    for _ in 0..1000 {
        let (counter, waker) = counting();
        assert!(poll_once(&mut future, &waker).is_pending());
        earlier.push(Arc::downgrade(&counter));
    }
    let (last, waker) = counting();
    assert!(poll_once(&mut future, &waker).is_pending());
    drop(waker);
    assert_eq!(earlier.iter().filter(|w| w.strong_count() > 0).count(), 0);
    promise.complete(Ok(2));
    assert_eq!(
        last.0.load(Ordering::SeqCst),
        1,
        "the latest waker was woken"
    );
    assert!(matches!(
        poll_once(&mut future, Waker::noop()),
        Poll::Ready(Ok(2))
    ));
}

/// Every still-waiting poller is woken once, and a handle dropped after completion is fine.
#[test]
fn every_poller_still_waiting_is_woken() {
    let (promise, future) = pending();
    let pollers: Vec<_> = (0..3)
        .map(|_| {
            let (counter, waker) = counting();
            let mut poller = future.clone();
            assert!(poll_once(&mut poller, &waker).is_pending());
            (counter, poller)
        })
        .collect();
    let completer = std::thread::spawn(move || promise.complete(Ok(4)));
    completer.join().unwrap();
    for (counter, mut poller) in pollers {
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(matches!(
            poll_once(&mut poller, Waker::noop()),
            Poll::Ready(Ok(4)) | Poll::Ready(Err(flotilla::Error::ResultTaken))
        ));
    }
}
