//! `Future` and `Promise`: the states, cancellation, reads with timeouts, done-callbacks,
//! consuming reads, abandonment, awaiting from tokio and identity (CPython's `test_future.py`).
//!
//! A `Promise` drives every state by hand, so nothing here depends on thread timing.

use std::collections::HashSet;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use flotilla::{Error, Future, Promise};

#[path = "support/futures.rs"]
mod futures;
use futures::{cancelled, failed, finished, pending, running};

const SHORT: Duration = Duration::from_millis(20);
const GENEROUS: Duration = Duration::from_secs(30);

/// `(cancelled, running, done)`.
fn flags<T>(future: &Future<T>) -> (bool, bool, bool) {
    (future.cancelled(), future.running(), future.done())
}

#[test]
fn state_flags_follow_the_lifecycle() {
    let (promise, future) = pending();
    assert_eq!(flags(&future), (false, false, false));
    assert!(format!("{future:?}").contains("pending"));
    assert!(promise.set_running());
    assert_eq!(flags(&future), (false, true, false));
    assert!(format!("{future:?}").contains("running"));
    assert!(!promise.set_running(), "a running future is not pending");
    promise.complete(Ok(1));
    assert_eq!(flags(&future), (false, false, true));
    assert!(format!("{future:?}").contains("finished"));

    assert_eq!(flags(&cancelled()), (true, false, true));
    assert!(format!("{:?}", cancelled()).contains("cancelled"));
    assert_eq!(flags(&failed()), (false, false, true));
    assert!(format!("{:?}", failed()).contains("failed"));
}

#[test]
fn cancel_succeeds_while_pending_and_again_once_cancelled() {
    let (promise, future) = pending();
    assert!(future.cancel());
    assert!(future.cancelled() && future.done() && !future.running());
    assert!(future.cancel(), "cancelling twice still reports cancelled");
    assert!(future.clone().cancel(), "any handle sees the cancellation");
    assert!(promise.is_cancelled());
    assert!(
        !promise.set_running(),
        "the executor must skip a cancelled task"
    );
    promise.complete(Ok(5)); // too late: ignored
    assert!(matches!(future.result(), Err(Error::Cancelled)));
}

#[test]
fn cancel_fails_while_running_on_threads_and_once_finished() {
    let (promise, future) = running();
    assert!(!future.cancel(), "a thread cannot be stopped from outside");
    assert!(future.running() && !future.cancelled());
    assert!(!promise.is_cancelled());
    promise.complete(Ok(3));
    assert!(!future.cancel());
    assert!(!failed().cancel());
    assert_eq!(future.result().unwrap(), 3);
}

#[test]
fn cancel_of_a_running_task_uses_the_executors_hook() {
    let (promise, future) = running();
    let stopped = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&stopped);
    promise.on_cancel(move || {
        s.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(stopped.load(Ordering::SeqCst), 0);
    assert!(future.cancel());
    assert_eq!(stopped.load(Ordering::SeqCst), 1);
    assert!(future.cancel());
    assert_eq!(stopped.load(Ordering::SeqCst), 1, "the hook runs once");
    assert!(future.cancelled());
    promise.complete(Ok(9)); // the killed task's late result is ignored
    assert!(future.result().unwrap_err().is_cancelled());

    // A hook given to an already-cancelled future runs at once.
    let (promise, future) = pending();
    assert!(future.cancel());
    let s = Arc::clone(&stopped);
    promise.on_cancel(move || {
        s.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(stopped.load(Ordering::SeqCst), 2);

    // A hook is not called when the task finishes normally.
    let (promise, future) = running();
    let s = Arc::clone(&stopped);
    promise.on_cancel(move || {
        s.fetch_add(1, Ordering::SeqCst);
    });
    promise.complete(Ok(1));
    assert!(!future.cancel());
    assert_eq!(stopped.load(Ordering::SeqCst), 2);
}

#[test]
fn result_and_exception_with_zero_timeout() {
    let (promise, future) = pending();
    for timeout in [Duration::ZERO, SHORT] {
        let err = future.result_timeout(timeout).unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert!(matches!(err, Error::Timeout { waited, unfinished: None } if waited == timeout));
        assert!(future.exception_timeout(timeout).unwrap_err().is_timeout());
    }
    assert!(promise.set_running());
    assert!(
        future
            .result_timeout(Duration::ZERO)
            .unwrap_err()
            .is_timeout()
    );
    promise.complete(Ok(8));
    assert_eq!(future.result_timeout(Duration::ZERO).unwrap(), 8);
    assert!(future.exception_timeout(Duration::ZERO).unwrap().is_none());

    let failed = failed();
    let err = failed.result_timeout(Duration::ZERO).unwrap_err();
    assert_eq!(err.panic().unwrap().message(), "boom");
    let inner = failed.exception_timeout(Duration::ZERO).unwrap().unwrap();
    assert_eq!(inner.panic().unwrap().message(), "boom");
}

#[test]
fn a_short_timeout_waits_at_least_that_long() {
    let (_promise, future) = pending();
    let start = Instant::now();
    assert!(future.result_timeout(SHORT).unwrap_err().is_timeout());
    assert!(start.elapsed() >= SHORT);
    let start = Instant::now();
    assert!(future.exception_timeout(SHORT).unwrap_err().is_timeout());
    assert!(start.elapsed() >= SHORT);
    let err = future.clone().into_result_timeout(SHORT).unwrap_err();
    assert!(err.is_timeout());
    assert!(!future.done(), "a timed-out wait leaves the future alone");
}

#[test]
fn result_waits_for_completion_on_another_thread() {
    let (promise, future) = pending();
    let (tx, rx) = mpsc::channel::<()>();
    let completer = thread::spawn(move || {
        rx.recv().unwrap();
        assert!(promise.set_running());
        promise.complete(Ok(77));
    });
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let future = future.clone();
            thread::spawn(move || future.result_timeout(GENEROUS))
        })
        .collect();
    tx.send(()).unwrap();
    for waiter in waiters {
        assert_eq!(waiter.join().unwrap().unwrap(), 77);
    }
    completer.join().unwrap();
}

#[test]
fn result_and_exception_of_a_cancelled_future() {
    let future = cancelled();
    assert!(matches!(future.result(), Err(Error::Cancelled)));
    assert!(matches!(
        future.result_timeout(Duration::ZERO),
        Err(Error::Cancelled)
    ));
    assert!(matches!(future.exception(), Err(Error::Cancelled)));
    assert!(matches!(
        future.clone().into_result(),
        Err(Error::Cancelled)
    ));
    assert!(future.result().unwrap_err().is_cancelled());
}

#[test]
fn exception_reports_the_tasks_error_and_none_for_a_value() {
    assert!(finished(1).exception().unwrap().is_none());
    let err = failed().exception().unwrap().expect("an error");
    assert!(err.is_panic());
    assert_eq!(err.to_string(), "task panicked: boom");
}

#[test]
fn a_cancelling_waiter_is_woken() {
    let (promise, future) = pending();
    let (tx, rx) = mpsc::channel();
    let f = future.clone();
    let waiter = thread::spawn(move || {
        tx.send(()).unwrap();
        f.result_timeout(GENEROUS)
    });
    rx.recv().unwrap();
    assert!(future.cancel());
    assert!(waiter.join().unwrap().unwrap_err().is_cancelled());
    drop(promise);
}

#[test]
fn callbacks_run_once_in_order_with_the_future() {
    let (promise, future) = running();
    let log = Arc::new(Mutex::new(Vec::new()));
    for i in 0..5 {
        let log = Arc::clone(&log);
        future.add_done_callback(move |f| {
            assert!(f.done());
            log.lock().unwrap().push((i, f.result().unwrap()));
        });
    }
    assert!(
        log.lock().unwrap().is_empty(),
        "callbacks wait for completion"
    );
    promise.complete(Ok(4));
    let expected: Vec<_> = (0..5).map(|i| (i, 4)).collect();
    assert_eq!(*log.lock().unwrap(), expected);
    // Completing or cancelling again runs nothing twice.
    assert!(!future.cancel());
    assert_eq!(log.lock().unwrap().len(), 5);
}

#[test]
fn a_callback_added_to_a_done_future_runs_at_once_on_this_thread() {
    for future in [finished(1), failed(), cancelled()] {
        let me = thread::current().id();
        let ran = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&ran);
        future.add_done_callback(move |f| {
            assert!(f.done());
            assert_eq!(thread::current().id(), me);
            r.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn callbacks_run_on_the_completing_thread() {
    let (promise, future) = running();
    let (tx, rx) = mpsc::channel();
    future.add_done_callback(move |_| tx.send(thread::current().id()).unwrap());
    let completer = thread::spawn(move || {
        promise.complete(Ok(1));
        thread::current().id()
    });
    let completer_id = completer.join().unwrap();
    assert_eq!(rx.recv().unwrap(), completer_id);
}

#[test]
fn a_panicking_callback_does_not_stop_the_others() {
    let (promise, future) = running();
    let ran = Arc::new(Mutex::new(Vec::new()));
    for i in 0..4 {
        let ran = Arc::clone(&ran);
        future.add_done_callback(move |_| {
            ran.lock().unwrap().push(i);
            assert!(i % 2 != 0, "callback {i} fails");
        });
    }
    promise.complete(Ok(1));
    assert_eq!(*ran.lock().unwrap(), [0, 1, 2, 3]);
    assert_eq!(future.result().unwrap(), 1);

    // Also when the future is already done.
    future.add_done_callback(|_| panic!("late callback fails"));
    let r = Arc::clone(&ran);
    future.add_done_callback(move |_| r.lock().unwrap().push(4));
    assert_eq!(ran.lock().unwrap().len(), 5);
}

#[test]
fn callbacks_run_on_cancel() {
    let (promise, future) = pending();
    let (tx, rx) = mpsc::channel();
    future.add_done_callback(move |f| tx.send(f.cancelled()).unwrap());
    assert!(rx.try_recv().is_err());
    assert!(future.cancel());
    assert!(
        rx.try_recv().unwrap(),
        "the callback sees a cancelled future"
    );
    assert!(future.cancel());
    assert!(rx.try_recv().is_err(), "a second cancel runs nothing");
    drop(promise);
    assert!(rx.try_recv().is_err(), "dropping the promise runs nothing");

    // `Promise::cancel` (an executor skipping a task) runs them too.
    let (promise, future) = pending();
    let (tx, rx) = mpsc::channel();
    future.add_done_callback(move |f| tx.send(f.cancelled()).unwrap());
    promise.cancel();
    assert!(rx.try_recv().unwrap());
    assert!(future.cancelled());
}

#[test]
fn into_result_moves_the_value_out() {
    struct NotClone(u32);
    let promise = Promise::new();
    let future: Future<NotClone> = promise.future();
    let other = future.clone();
    promise.complete(Ok(NotClone(5)));
    assert_eq!(future.into_result().unwrap().0, 5);
    assert!(matches!(
        other.clone().into_result(),
        Err(Error::ResultTaken)
    ));
    assert!(other.done() && !other.cancelled());
    assert!(other.exception().unwrap().is_none(), "it did not fail");
    assert!(!other.cancel());

    let future = finished(6);
    let other = future.clone();
    assert_eq!(future.into_result().unwrap(), 6);
    let err = other.result().unwrap_err();
    assert!(matches!(err, Error::ResultTaken));
    assert!(err.to_string().contains("already taken"));
}

#[test]
fn into_result_clones_errors_instead_of_taking_them() {
    let future = failed();
    let other = future.clone();
    assert!(future.into_result().unwrap_err().is_panic());
    assert!(other.result().unwrap_err().is_panic());
    assert!(other.clone().into_result().unwrap_err().is_panic());
}

#[test]
fn a_dropped_promise_abandons_its_future() {
    let (promise, future) = pending();
    drop(promise);
    assert!(future.done() && !future.cancelled());
    assert!(matches!(future.result(), Err(Error::Abandoned)));
    assert!(matches!(future.exception(), Ok(Some(Error::Abandoned))));

    // Also once running, and a blocked waiter is woken.
    let (promise, future) = running();
    let (tx, rx) = mpsc::channel();
    let f = future.clone();
    let waiter = thread::spawn(move || {
        tx.send(()).unwrap();
        f.result_timeout(GENEROUS)
    });
    rx.recv().unwrap();
    thread::spawn(move || drop(promise)).join().unwrap();
    assert!(matches!(waiter.join().unwrap(), Err(Error::Abandoned)));
}

#[test]
fn a_completed_or_cancelled_promise_is_not_abandoned() {
    let (promise, future) = pending();
    assert!(future.cancel());
    drop(promise);
    assert!(future.cancelled());
    assert!(format!("{:?}", Promise::<u8>::default()).contains("pending"));
}

/// Polls `future` once, then has another thread complete it, then awaits it: proves that a
/// pending `.await` is woken.
async fn await_after_pending(mut future: Future<u32>, promise: Promise<u32>) -> u32 {
    let first = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut future).poll(cx))).await;
    assert!(first.is_pending());
    let (tx, rx) = mpsc::channel::<()>();
    let completer = thread::spawn(move || {
        rx.recv().unwrap();
        assert!(promise.set_running());
        promise.complete(Ok(41));
    });
    tx.send(()).unwrap();
    let value = tokio::time::timeout(GENEROUS, future)
        .await
        .expect("the await was never woken: hang")
        .unwrap();
    completer.join().unwrap();
    value + 1
}

#[test]
fn await_on_a_current_thread_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (promise, future) = pending();
    assert_eq!(rt.block_on(await_after_pending(future, promise)), 42);
    assert_eq!(rt.block_on(finished(3)).unwrap(), 3);
    assert!(rt.block_on(cancelled()).unwrap_err().is_cancelled());
    assert!(rt.block_on(failed()).unwrap_err().is_panic());
}

#[test]
fn await_on_a_multi_thread_runtime() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let (promise, future) = pending();
    assert_eq!(rt.block_on(await_after_pending(future, promise)), 42);

    // Many tasks await many futures completed from plain threads.
    let promises: Vec<Promise<u32>> = (0..16).map(|_| Promise::new()).collect();
    let tasks: Vec<_> = promises
        .iter()
        .map(|p| {
            let future = p.future();
            rt.spawn(async move { tokio::time::timeout(GENEROUS, future).await })
        })
        .collect();
    let completer = thread::spawn(move || {
        for (i, promise) in promises.into_iter().enumerate() {
            promise.complete(Ok(u32::try_from(i).unwrap()));
        }
    });
    let values: Vec<u32> = rt.block_on(async {
        let mut values = Vec::new();
        for task in tasks {
            values.push(task.await.unwrap().expect("hang").unwrap());
        }
        values
    });
    completer.join().unwrap();
    assert_eq!(values, (0..16).collect::<Vec<_>>());
}

#[test]
fn awaiting_moves_the_value_out() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let future = finished(10);
    let other = future.clone();
    assert_eq!(rt.block_on(future).unwrap(), 10);
    assert!(matches!(other.result(), Err(Error::ResultTaken)));
    assert!(matches!(rt.block_on(other), Err(Error::ResultTaken)));
}

#[test]
// Hashing uses only the identity of the shared state, never the mutable state itself.
#[allow(clippy::mutable_key_type)]
fn futures_compare_and_hash_by_identity() {
    let (_p1, a) = pending();
    let (_p2, b) = pending();
    assert_eq!(a, a.clone());
    assert_ne!(a, b);
    let mut set = HashSet::new();
    assert!(set.insert(a.clone()));
    assert!(set.insert(b.clone()));
    assert!(!set.insert(a.clone()), "a clone is the same future");
    assert_eq!(set.len(), 2);
    assert!(set.contains(&Future::from(&b)));
    // Identity does not depend on the value.
    assert_ne!(finished(1), finished(1));
}

#[test]
fn huge_timeouts_mean_wait_forever_not_overflow() {
    let pool = flotilla::ThreadPoolExecutor::new();
    let fut = pool.spawn(|| 3).unwrap();
    assert_eq!(fut.result_timeout(Duration::MAX).unwrap(), 3);
    assert!(fut.exception_timeout(Duration::MAX).unwrap().is_none());
    let (done, _) =
        flotilla::wait_timeout([&fut], flotilla::ReturnWhen::AllCompleted, Duration::MAX);
    assert_eq!(done.len(), 1);
    assert_eq!(
        flotilla::as_completed_timeout([&fut], Duration::MAX).count(),
        1
    );
    let doubled: Vec<u32> = pool
        .map_fn(|x: u32| x * 2, 0..3)
        .timeout(Duration::MAX)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(doubled, [0, 2, 4]);
}
