//! The promises flotilla's Python-parity sync types make beyond what CPython's own tests
//! check (those are in `cpython_lock_tests.rs` and `cpython_test_queue.rs`): panicking barrier
//! actions, all-or-nothing `release_n`, what the older queue methods do after `shutdown`, that
//! removed items are dropped outside the queue's lock, unpoisoned conditions, and `Send`/`Sync`.

#[path = "support/blocked.rs"]
mod blocked;
#[path = "support/watchdog.rs"]
mod watchdog;

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use blocked::{tid, until, until_blocked};
use flotilla::sync::{
    Barrier, BoundedSemaphore, BrokenBarrier, Condition, ConditionGuard, Empty, Full, GetError,
    LifoQueue, Lock, LockGuard, OverRelease, PutError, Queue, Semaphore, SimpleQueue,
};
use watchdog::watchdog;

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn a_panicking_barrier_action_breaks_the_barrier_and_panics_in_its_thread() {
    let barrier = Arc::new(Barrier::new(3).with_action(|| panic!("action failed")));
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || barrier.wait())
        })
        .collect();
    until("both waiters", || barrier.n_waiting() == 2);
    let last = panic::catch_unwind(AssertUnwindSafe(|| barrier.wait()));
    let payload = last.expect_err("the thread that ran the action panics");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"action failed"));
    for w in waiters {
        assert_eq!(w.join().unwrap(), Err(BrokenBarrier));
    }
    assert!(barrier.is_broken());
    barrier.reset();
    assert!(!barrier.is_broken());
}

#[test]
fn a_barrier_action_may_look_at_its_barrier() {
    let seen = Arc::new(AtomicUsize::new(usize::MAX));
    let barrier = Arc::new_cyclic(|me: &std::sync::Weak<Barrier>| {
        let (me, seen) = (me.clone(), Arc::clone(&seen));
        Barrier::new(2).with_action(move || {
            let barrier = me.upgrade().expect("the barrier is alive while it runs");
            assert!(!barrier.is_broken());
            seen.store(barrier.n_waiting(), Ordering::SeqCst);
        })
    });
    let other = {
        let barrier = Arc::clone(&barrier);
        thread::spawn(move || barrier.wait())
    };
    watchdog(LIMIT, {
        let barrier = Arc::clone(&barrier);
        move || barrier.wait().unwrap()
    });
    other.join().unwrap().unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

#[test]
fn bounded_release_n_is_all_or_nothing() {
    let sem = BoundedSemaphore::new(4);
    for _ in 0..3 {
        sem.acquire().forget();
    }
    assert_eq!(sem.release_n(4), Err(OverRelease));
    assert_eq!(sem.release_n(usize::MAX), Err(OverRelease));
    assert_eq!(sem.available_permits(), 1);
    assert_eq!(sem.release_n(0), Ok(()));
    assert_eq!(sem.release_n(3), Ok(()));
    assert_eq!(sem.available_permits(), 4);
}

#[test]
fn semaphore_release_n_wakes_that_many_waiters() {
    let sem = Arc::new(Semaphore::new(0));
    let through = Arc::new(AtomicUsize::new(0));
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let (sem, through) = (Arc::clone(&sem), Arc::clone(&through));
            thread::spawn(move || {
                sem.acquire().forget();
                through.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    sem.release_n(3);
    until("three waiters through", || {
        through.load(Ordering::SeqCst) == 3
    });
    assert_eq!(sem.available_permits(), 0);
    sem.release_n(2);
    for w in waiters {
        w.join().unwrap();
    }
    assert_eq!(through.load(Ordering::SeqCst), 5);
}

#[test]
fn a_lock_released_twice_reports_over_release() {
    let lock = Lock::new();
    assert_eq!(lock.release(), Err(OverRelease));
    let guard = lock.acquire();
    assert!(lock.locked());
    drop(guard);
    assert!(!lock.locked());
    assert_eq!(lock.release(), Err(OverRelease));
}

#[test]
fn after_shutdown_the_older_queue_methods_fail_without_losing_items() {
    let queue = Queue::bounded(4);
    queue.put(1);
    queue.shutdown(false);
    assert_eq!(queue.try_put(2), Err(Full(2)));
    assert_eq!(queue.put_timeout(3, Duration::from_millis(1)), Err(Full(3)));
    assert_eq!(
        queue.try_get(),
        Ok(1),
        "a plain shutdown leaves items to drain"
    );
    assert_eq!(queue.try_get(), Err(Empty));
    assert_eq!(queue.get_timeout(Duration::from_millis(1)), Err(Empty));
}

#[test]
fn put_and_get_panic_on_a_shut_down_queue() {
    let queue: Queue<u8> = Queue::new();
    queue.shutdown(false);
    let put = panic::catch_unwind(AssertUnwindSafe(|| queue.put(1)));
    assert!(put.is_err());
    let get = panic::catch_unwind(AssertUnwindSafe(|| queue.get()));
    assert!(get.is_err());
}

#[test]
fn a_blocked_put_is_woken_by_shutdown_and_gets_its_item_back() {
    let queue = Arc::new(LifoQueue::bounded(1));
    queue.put(String::from("first"));
    let (tx, rx) = std::sync::mpsc::channel();
    let putter = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            tx.send(tid()).unwrap();
            queue.send(String::from("second"))
        })
    };
    until_blocked(&[rx.recv().unwrap()]);
    queue.shutdown(false);
    let err = watchdog(LIMIT, move || putter.join().unwrap()).unwrap_err();
    assert!(err.is_shut_down());
    assert_eq!(err.into_inner(), "second");
    assert_eq!(queue.recv().as_deref(), Ok("first"));
    assert_eq!(queue.recv(), Err(GetError::ShutDown));
}

type Looking = Queue<Box<dyn Send>>;

/// An item whose `Drop` uses the queue it was in.
struct LooksBack(std::sync::Weak<Looking>);

impl Drop for LooksBack {
    fn drop(&mut self) {
        // Would deadlock if the queue dropped this while holding its own lock.
        if let Some(queue) = self.0.upgrade() {
            let _ = queue.qsize();
        }
    }
}

#[test]
fn an_immediate_shutdown_drops_the_removed_items_outside_the_queue_lock() {
    let queue: Arc<Looking> = Arc::new(Queue::new());
    for _ in 0..3 {
        queue.put(Box::new(LooksBack(Arc::downgrade(&queue))));
    }
    watchdog(LIMIT, {
        let queue = Arc::clone(&queue);
        move || queue.shutdown(true)
    });
    assert!(queue.is_empty());
    assert_eq!(queue.recv().err(), Some(GetError::ShutDown));
}

#[test]
fn an_immediate_shutdown_counts_removed_items_as_done() {
    let queue = Queue::new();
    for i in 0..5 {
        queue.put(i);
    }
    let _taken = queue.get();
    queue.shutdown(true);
    assert!(
        !queue.join_timeout(Duration::from_millis(10)),
        "the item taken is not done yet"
    );
    queue.task_done().unwrap();
    assert!(queue.join_timeout(Duration::ZERO));
    assert_eq!(
        queue.send_timeout(9, Duration::ZERO),
        Err(PutError::ShutDown(9))
    );
}

#[test]
fn a_panic_while_holding_a_condition_does_not_poison_it() {
    let cond = Arc::new(Condition::new(0));
    let panicker = {
        let cond = Arc::clone(&cond);
        thread::spawn(move || {
            let mut n = cond.lock();
            *n = 7;
            panic!("while holding the condition");
        })
    };
    assert!(panicker.join().is_err());
    assert_eq!(*cond.lock(), 7);
    assert!(cond.try_lock().is_some());
}

#[test]
fn a_condition_wait_is_not_woken_by_a_notify_for_nobody() {
    let cond = Condition::new(());
    let mut guard = cond.lock();
    guard.notify_all(); // nobody waits: this must not be kept for a later waiter
    assert!(!guard.wait_timeout(Duration::from_millis(10)));
}

#[test]
fn condition_notify_wakes_the_longest_waiting_threads_first() {
    // (waiting, woken in order). Thread i is started once i threads wait, so the arrival order
    // is known; `wait` releases the lock atomically, so "counted" means "waiting".
    let cond = Arc::new(Condition::new((0_usize, Vec::new())));
    let mut threads = Vec::new();
    for i in 0..4 {
        let shared = Arc::clone(&cond);
        threads.push(thread::spawn(move || {
            let mut state = shared.lock();
            state.0 += 1;
            assert!(state.wait_timeout(LIMIT), "notified, not timed out");
            state.1.push(i);
        }));
        until("one more waiter", || cond.lock().0 == i + 1);
    }
    for woken in 1..=4 {
        cond.lock().notify(1);
        until("one more wake-up", || cond.lock().1.len() == woken);
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(cond.lock().1, [0, 1, 2, 3]);
}

#[test]
fn simple_queue_hands_items_out_in_order() {
    let queue = SimpleQueue::new();
    for i in 0..100 {
        queue.put(i);
    }
    let out: Vec<i32> = (0..100).map(|_| queue.get()).collect();
    assert_eq!(out, (0..100).collect::<Vec<_>>());
    assert_eq!(queue.try_get(), Err(Empty));
}

fn is_send_sync<T: Send + Sync>() {}
fn is_sync<T: Sync>() {}

#[test]
fn the_new_types_are_send_and_sync() {
    is_send_sync::<Lock>();
    is_send_sync::<LockGuard<'_>>();
    is_send_sync::<Barrier>();
    is_send_sync::<BrokenBarrier>();
    is_send_sync::<Condition<Vec<u8>>>();
    is_sync::<ConditionGuard<'_, Vec<u8>>>(); // like a MutexGuard, it stays on its thread
    is_send_sync::<SimpleQueue<String>>();
    is_send_sync::<PutError<String>>();
    is_send_sync::<GetError>();
}
