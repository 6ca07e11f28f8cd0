//! CPython 3.13's `Lib/test/test_queue.py`, ported to `flotilla::sync`: `BaseQueueTestMixin`
//! (with the 3.13 `shutdown` tests) run against [`Queue`], [`LifoQueue`] and
//! [`PriorityQueue`], as CPython's `QueueTest`, `LifoQueueTest` and `PriorityQueueTest` do, and
//! `BaseSimpleQueueTest` against [`SimpleQueue`]. Each test is `<class>::<method>` after the
//! CPython test it translates.
//!
//! How the port differs on purpose:
//! - No sleeps. CPython's `_TriggerThread` sleeps 0.1 s so the blocking call has "a chance" to
//!   block; here the trigger waits until the kernel shows the blocked thread asleep
//!   (`support/blocked.rs`). The feeders' random sleeps are seeded random yields; the
//!   non-blocking consumers yield instead of sleeping, under a deadline.
//! - Python's `put(block, timeout)`/`get(block, timeout)` are separate methods here; the calls
//!   that must tell `ShutDown` apart use [`send`](Queue::send)/[`recv`](Queue::recv), whose
//!   `PutError`/`GetError` are Python's `Full`/`Empty`/`ShutDown`.
//! - `unfinished_tasks` is not public; the two tests that read it read the queue's `Debug`
//!   output, which shows it.

#![allow(non_snake_case)]

#[path = "support/blocked.rs"]
mod blocked;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use blocked::{DEADLINE, tid, until, until_blocked};
use flotilla::sync::{
    Event, GetError, LifoQueue, PriorityQueue, PutError, Queue, SimpleQueue, TaskDoneError,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const QUEUE_SIZE: usize = 5;
const SHORT: Duration = Duration::from_millis(10);
const LONG: Duration = Duration::from_secs(10);

/// The queue API the shared tests use, so each body runs against all three queue types
/// (CPython's `self.type2test`).
trait Q: Send + Sync + 'static {
    /// The order `basic_queue_test` expects 111, 333, 222 back in.
    const ORDER: [i32; 3];
    fn unbounded() -> Self;
    fn bounded(n: usize) -> Self;
    fn put(&self, item: i32);
    fn get(&self) -> i32;
    fn put_timeout(&self, item: i32, timeout: Duration) -> bool;
    fn get_timeout(&self, timeout: Duration) -> Option<i32>;
    fn try_put(&self, item: i32) -> bool;
    fn try_get(&self) -> Option<i32>;
    fn send(&self, item: i32) -> Result<(), PutError<i32>>;
    fn send_timeout(&self, item: i32, timeout: Duration) -> Result<(), PutError<i32>>;
    fn recv(&self) -> Result<i32, GetError>;
    fn recv_timeout(&self, timeout: Duration) -> Result<i32, GetError>;
    fn task_done(&self) -> Result<(), TaskDoneError>;
    fn join(&self);
    fn qsize(&self) -> usize;
    fn is_empty(&self) -> bool;
    fn is_full(&self) -> bool;
    fn shutdown(&self, immediate: bool);
    fn is_shut_down(&self) -> bool;
    fn debug(&self) -> String;
}

macro_rules! impl_q {
    ($t:ident, $order:expr) => {
        impl Q for $t<i32> {
            const ORDER: [i32; 3] = $order;
            fn unbounded() -> Self {
                $t::new()
            }
            fn bounded(n: usize) -> Self {
                $t::bounded(n)
            }
            fn put(&self, item: i32) {
                $t::put(self, item)
            }
            fn get(&self) -> i32 {
                $t::get(self)
            }
            fn put_timeout(&self, item: i32, timeout: Duration) -> bool {
                $t::put_timeout(self, item, timeout).is_ok()
            }
            fn get_timeout(&self, timeout: Duration) -> Option<i32> {
                $t::get_timeout(self, timeout).ok()
            }
            fn try_put(&self, item: i32) -> bool {
                $t::try_put(self, item).is_ok()
            }
            fn try_get(&self) -> Option<i32> {
                $t::try_get(self).ok()
            }
            fn send(&self, item: i32) -> Result<(), PutError<i32>> {
                $t::send(self, item)
            }
            fn send_timeout(&self, item: i32, timeout: Duration) -> Result<(), PutError<i32>> {
                $t::send_timeout(self, item, timeout)
            }
            fn recv(&self) -> Result<i32, GetError> {
                $t::recv(self)
            }
            fn recv_timeout(&self, timeout: Duration) -> Result<i32, GetError> {
                $t::recv_timeout(self, timeout)
            }
            fn task_done(&self) -> Result<(), TaskDoneError> {
                $t::task_done(self)
            }
            fn join(&self) {
                $t::join(self)
            }
            fn qsize(&self) -> usize {
                $t::qsize(self)
            }
            fn is_empty(&self) -> bool {
                $t::is_empty(self)
            }
            fn is_full(&self) -> bool {
                $t::is_full(self)
            }
            fn shutdown(&self, immediate: bool) {
                $t::shutdown(self, immediate)
            }
            fn is_shut_down(&self) -> bool {
                $t::is_shut_down(self)
            }
            fn debug(&self) -> String {
                format!("{self:?}")
            }
        }
    };
}

impl_q!(Queue, [111, 333, 222]);
impl_q!(LifoQueue, [222, 333, 111]);
impl_q!(PriorityQueue, [111, 222, 333]);

/// CPython's `qfull`.
fn qfull<T: Q>(q: &T) -> bool {
    q.qsize() == QUEUE_SIZE
}

/// CPython's `do_blocking_test`: `block` must block until `trigger` (run on another thread,
/// once this thread is seen blocked) lets it go on.
fn do_blocking_test<T: Q, R>(
    q: &Arc<T>,
    block: impl FnOnce(&T) -> R,
    trigger: impl FnOnce(&T) + Send + 'static,
) -> R {
    let started = Arc::new(AtomicBool::new(false));
    let me = tid();
    let thread = {
        let (q, started) = (Arc::clone(q), Arc::clone(&started));
        thread::spawn(move || {
            until_blocked(&[me]);
            started.store(true, Ordering::SeqCst);
            trigger(&q);
        })
    };
    let result = block(q);
    // If block returned before the trigger ran, it did not block.
    assert!(
        started.load(Ordering::SeqCst),
        "the blocking call appeared not to block"
    );
    thread.join().unwrap();
    result
}

fn basic_queue_test<T: Q>(q: &Arc<T>) {
    assert_eq!(q.qsize(), 0, "call this with an empty queue");
    assert!(q.is_empty());
    assert!(!q.is_full());
    // I guess we better check things actually queue correctly a little :)
    q.put(111);
    q.put(333);
    q.put(222);
    let actual_order = [q.get(), q.get(), q.get()];
    assert_eq!(
        actual_order,
        T::ORDER,
        "didn't seem to queue the correct data"
    );
    for i in 0..QUEUE_SIZE as i32 - 1 {
        q.put(i);
        assert!(q.qsize() > 0, "queue should not be empty");
    }
    assert!(!qfull(&**q), "queue should not be full");
    let last = 2 * QUEUE_SIZE as i32;
    let full = 3 * 2 * QUEUE_SIZE as i32;
    q.put(last);
    assert!(qfull(&**q), "queue should be full");
    assert!(!q.is_empty());
    assert!(q.is_full());
    assert!(!q.try_put(full), "didn't appear to block with a full queue");
    assert!(
        !q.put_timeout(full, SHORT),
        "didn't appear to time out with a full queue"
    );
    // Test a blocking put.
    do_blocking_test(
        q,
        |q| q.put(full),
        |q| {
            q.get();
        },
    );
    do_blocking_test(
        q,
        |q| assert!(q.put_timeout(full, LONG)),
        |q| {
            q.get();
        },
    );
    // Empty it.
    for _ in 0..QUEUE_SIZE {
        q.get();
    }
    assert_eq!(q.qsize(), 0, "queue should be empty");
    assert!(
        q.try_get().is_none(),
        "didn't appear to block with an empty queue"
    );
    assert!(
        q.get_timeout(SHORT).is_none(),
        "didn't appear to time out with an empty queue"
    );
    // Test a blocking get.
    const EMPTY: i32 = -7;
    assert_eq!(do_blocking_test(q, |q| q.get(), |q| q.put(EMPTY)), EMPTY);
    let got = do_blocking_test(q, |q| q.get_timeout(LONG), |q| q.put(EMPTY));
    assert_eq!(got, Some(EMPTY));
}

/// CPython's `worker`: adds up items until it gets a negative one.
fn worker<T: Q>(q: &T, cum: &AtomicI64, bound: usize) {
    for _ in 0..bound {
        let x = q.get();
        if x < 0 {
            q.task_done().unwrap();
            return;
        }
        cum.fetch_add(i64::from(x), Ordering::SeqCst);
        q.task_done().unwrap();
    }
    panic!("the worker never got its stop signal");
}

fn queue_join_test<T: Q>(q: &Arc<T>) {
    let cum = Arc::new(AtomicI64::new(0));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (q, cum) = (Arc::clone(q), Arc::clone(&cum));
            thread::spawn(move || worker(&*q, &cum, 102))
        })
        .collect();
    for i in 0..100 {
        q.put(i);
    }
    q.join();
    assert_eq!(
        cum.load(Ordering::SeqCst),
        (0..100).sum::<i64>(),
        "q.join() did not block until all tasks were done"
    );
    for _ in 0..2 {
        q.put(-1); // instruct the threads to close
    }
    q.join(); // verify that you can join twice
    for thread in threads {
        thread.join().unwrap();
    }
}

fn test_queue_task_done<T: Q>() {
    // The task count must not go negative.
    let q = T::unbounded();
    assert_eq!(q.task_done(), Err(TaskDoneError));
}

fn test_queue_join<T: Q>() {
    // A queue join()s successfully, and before anything else (done twice for insurance).
    let q = Arc::new(T::unbounded());
    queue_join_test(&q);
    queue_join_test(&q);
    assert_eq!(q.task_done(), Err(TaskDoneError));
}

fn test_basic<T: Q>() {
    // Done twice to make sure it works with the same instance reused.
    let q = Arc::new(T::bounded(QUEUE_SIZE));
    basic_queue_test(&q);
    basic_queue_test(&q);
}

fn test_nowait<T: Q>() {
    let q = T::bounded(QUEUE_SIZE);
    for _ in 0..QUEUE_SIZE {
        assert!(q.try_put(1));
    }
    assert!(!q.try_put(1));
    for _ in 0..QUEUE_SIZE {
        assert!(q.try_get().is_some());
    }
    assert!(q.try_get().is_none());
}

const ZERO: Duration = Duration::ZERO;

fn test_shutdown_empty<T: Q>() {
    let q = T::unbounded();
    q.shutdown(false);
    assert_eq!(q.send(1), Err(PutError::ShutDown(1)));
    assert_eq!(q.recv(), Err(GetError::ShutDown));
}

fn test_shutdown_nonempty<T: Q>() {
    let q = T::unbounded();
    q.put(1);
    q.shutdown(false);
    assert_eq!(q.recv(), Ok(1));
    assert_eq!(q.recv(), Err(GetError::ShutDown));
}

fn test_shutdown_immediate<T: Q>() {
    let q = T::unbounded();
    q.put(1);
    q.shutdown(true);
    assert_eq!(q.recv(), Err(GetError::ShutDown));
}

fn test_shutdown_allowed_transitions<T: Q>() {
    // Allowed transitions would be from alive via shutdown to immediate.
    let q = T::unbounded();
    assert!(!q.is_shut_down());
    q.shutdown(false);
    assert!(q.is_shut_down());
    q.shutdown(true);
    assert!(q.is_shut_down());
    q.shutdown(false);
}

fn shutdown_all_methods_in_one_thread<T: Q>(immediate: bool) {
    const L: i32 = 1;
    const O: i32 = 2;
    let q = T::bounded(2);
    q.put(L);
    assert!(q.try_put(O));
    q.shutdown(immediate);
    assert_eq!(q.send(3), Err(PutError::ShutDown(3)));
    assert_eq!(q.send_timeout(4, ZERO), Err(PutError::ShutDown(4)));
    if immediate {
        assert_eq!(q.recv(), Err(GetError::ShutDown));
        assert_eq!(q.recv_timeout(ZERO), Err(GetError::ShutDown));
        assert_eq!(q.task_done(), Err(TaskDoneError));
        q.join();
    } else {
        let first = q.recv().unwrap();
        q.task_done().unwrap();
        let second = q.recv().unwrap();
        q.task_done().unwrap();
        assert_eq!(HashSet::from([first, second]), HashSet::from([L, O]));
        q.join();
        // On shutdown(immediate=False), when the queue is empty, gets fail with ShutDown.
        assert_eq!(q.recv(), Err(GetError::ShutDown));
        assert_eq!(q.recv_timeout(ZERO), Err(GetError::ShutDown));
        assert_eq!(
            q.recv_timeout(Duration::from_secs(1)),
            Err(GetError::ShutDown)
        );
    }
}

fn test_shutdown_all_methods_in_one_thread<T: Q>() {
    shutdown_all_methods_in_one_thread::<T>(false);
}

fn test_shutdown_immediate_all_methods_in_one_thread<T: Q>() {
    shutdown_all_methods_in_one_thread::<T>(true);
}

type Results = Arc<Mutex<Vec<bool>>>;

fn push(results: &Results, value: bool) {
    results.lock().unwrap().push(value);
}

fn spawn(f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    thread::spawn(f)
}

fn join_all(threads: Vec<JoinHandle<()>>) {
    for t in threads {
        t.join().unwrap();
    }
}

/// A multi-producer, multi-consumer run with enough items; the queue is shut down half way,
/// and every thread must end.
fn shutdown_all_methods_in_many_threads<T: Q>(immediate: bool) {
    let q = Arc::new(T::unbounded());
    let (res_puts, res_gets, res_shutdown) =
        (Results::default(), Results::default(), Results::default());
    const WRITE_THREADS: usize = 4;
    const READ_THREADS: usize = 6;
    const JOIN_THREADS: usize = 2;
    const NB_MSGS: i32 = 1024 * 64;
    const NB_MSGS_W: i32 = NB_MSGS / WRITE_THREADS as i32;
    const WHEN_EXEC_SHUTDOWN: i32 = NB_MSGS_W / 2;
    // The barrier makes sure that every writer has put its first items and every reader got at
    // least one item before the shutdown; the join threads run only for an immediate one.
    let nparties = WRITE_THREADS + READ_THREADS + if immediate { JOIN_THREADS } else { 0 };
    let barrier_start = Arc::new(std::sync::Barrier::new(nparties));
    let ev_exec_shutdown = Arc::new(Event::new());
    let mut threads = Vec::new();
    for _ in 0..WRITE_THREADS {
        let (q, results, ev, barrier) = (
            q.clone(),
            res_puts.clone(),
            ev_exec_shutdown.clone(),
            barrier_start.clone(),
        );
        threads.push(spawn(move || {
            for _ in 0..WHEN_EXEC_SHUTDOWN / 2 {
                q.put(0);
            }
            barrier.wait();
            for i in WHEN_EXEC_SHUTDOWN / 2..NB_MSGS_W {
                if q.send(i).is_err() {
                    push(&results, false);
                    break;
                }
                // Trigger the shutdown; only one thread should.
                if i == WHEN_EXEC_SHUTDOWN && !ev.is_set() {
                    ev.set();
                    push(&results, true);
                }
            }
        }));
    }
    for _ in 0..READ_THREADS {
        let (q, results, barrier) = (q.clone(), res_gets.clone(), barrier_start.clone());
        threads.push(spawn(move || {
            // Get at least one item.
            q.recv().unwrap();
            q.task_done().unwrap();
            barrier.wait();
            let started = Instant::now();
            loop {
                match q.recv_timeout(ZERO) {
                    Ok(_) => q.task_done().unwrap(),
                    Err(GetError::ShutDown) => break push(&results, true),
                    Err(GetError::Empty) => thread::yield_now(),
                }
                assert!(
                    started.elapsed() < DEADLINE,
                    "the reader never saw ShutDown"
                );
            }
        }));
    }
    {
        let (q, results, ev) = (q.clone(), res_shutdown.clone(), ev_exec_shutdown.clone());
        threads.push(spawn(move || {
            ev.wait();
            q.shutdown(immediate);
            push(&results, q.qsize() == 0);
        }));
    }
    if immediate {
        for _ in 0..JOIN_THREADS {
            let (q, barrier) = (q.clone(), barrier_start.clone());
            threads.push(spawn(move || {
                barrier.wait();
                q.join();
            }));
        }
    }
    join_all(threads);
    assert!(res_puts.lock().unwrap().contains(&true));
    let gets = res_gets.lock().unwrap();
    assert_eq!(gets.iter().filter(|&&r| r).count(), READ_THREADS);
    if immediate {
        assert_eq!(*res_shutdown.lock().unwrap(), [true]);
        assert!(q.is_empty());
    }
}

fn test_shutdown_all_methods_in_many_threads<T: Q>() {
    shutdown_all_methods_in_many_threads::<T>(false);
}

fn test_shutdown_immediate_all_methods_in_many_threads<T: Q>() {
    shutdown_all_methods_in_many_threads::<T>(true);
}

/// CPython's `_get` (and `_get_shutdown`): records whether the get's outcome was the expected
/// one.
fn get_thread<T: Q>(
    q: &Arc<T>,
    go: &Arc<Event>,
    results: &Results,
    shutdown: bool,
) -> JoinHandle<()> {
    let (q, go, results) = (q.clone(), go.clone(), results.clone());
    spawn(move || {
        go.wait();
        match q.recv() {
            Ok(_) => push(&results, !shutdown),
            Err(_) => push(&results, shutdown),
        }
    })
}

/// CPython's `_get_task_done`.
fn get_task_done_thread<T: Q>(q: &Arc<T>, go: &Arc<Event>, results: &Results) -> JoinHandle<()> {
    let (q, go, results) = (q.clone(), go.clone(), results.clone());
    spawn(move || {
        go.wait();
        match q.recv() {
            Ok(_) => {
                q.task_done().unwrap();
                push(&results, true);
            }
            Err(_) => push(&results, false),
        }
    })
}

/// CPython's `_put_shutdown`: the put must fail with ShutDown.
fn put_shutdown_thread<T: Q>(
    q: &Arc<T>,
    item: i32,
    go: &Arc<Event>,
    results: &Results,
) -> JoinHandle<()> {
    let (q, go, results) = (q.clone(), go.clone(), results.clone());
    spawn(move || {
        go.wait();
        push(&results, q.send(item) == Err(PutError::ShutDown(item)));
    })
}

/// CPython's `_join`: join() returns (it never raises ShutDown).
fn join_thread<T: Q>(q: &Arc<T>, results: &Results) -> JoinHandle<()> {
    let (q, results) = (q.clone(), results.clone());
    spawn(move || {
        q.join();
        push(&results, true);
    })
}

fn shutdown_get<T: Q>(immediate: bool) {
    let q = Arc::new(T::bounded(2));
    let results = Results::default();
    let go = Arc::new(Event::new());
    q.put(1);
    q.put(2); // queue full
    // On shutdown(immediate=False), one of three getters gets ShutDown; on an immediate one,
    // both getters do.
    let threads: Vec<_> = if immediate {
        (0..2)
            .map(|_| get_thread(&q, &go, &results, true))
            .collect()
    } else {
        (0..3)
            .map(|_| get_thread(&q, &go, &results, false))
            .collect()
    };
    let n = threads.len();
    q.shutdown(immediate);
    go.set();
    join_all(threads);
    let mut results = results.lock().unwrap().clone();
    results.sort();
    if immediate {
        assert_eq!(results, [true, true]);
    } else {
        let mut expected = vec![true; n - 1];
        expected.insert(0, false);
        assert_eq!(results, expected);
    }
}

fn test_shutdown_get<T: Q>() {
    shutdown_get::<T>(false);
}

fn test_shutdown_immediate_get<T: Q>() {
    shutdown_get::<T>(true);
}

/// Both variants call a plain `shutdown()`, as CPython's `_shutdown_put` does.
fn shutdown_put<T: Q>(_immediate: bool) {
    let q = Arc::new(T::bounded(2));
    let results = Results::default();
    let go = Arc::new(Event::new());
    q.put(1);
    q.put(2); // queue full
    let threads = vec![
        put_shutdown_thread(&q, 3, &go, &results),
        put_shutdown_thread(&q, 4, &go, &results),
    ];
    q.shutdown(false);
    go.set();
    join_all(threads);
    assert_eq!(*results.lock().unwrap(), [true, true]);
}

fn test_shutdown_put<T: Q>() {
    shutdown_put::<T>(false);
}

fn test_shutdown_immediate_put<T: Q>() {
    shutdown_put::<T>(true);
}

fn shutdown_join<T: Q>(immediate: bool) {
    let q = Arc::new(T::unbounded());
    let results = Results::default();
    q.put(1);
    let go = Arc::new(Event::new());
    let nb = q.qsize();
    let mut threads = vec![join_thread(&q, &results), join_thread(&q, &results)];
    if !immediate {
        let res = Results::default();
        threads.extend((0..nb).map(|_| get_task_done_thread(&q, &go, &res)));
    }
    q.shutdown(immediate);
    go.set();
    join_all(threads);
    assert_eq!(*results.lock().unwrap(), [true, true]);
}

fn test_shutdown_immediate_join<T: Q>() {
    shutdown_join::<T>(true);
}

fn test_shutdown_join<T: Q>() {
    shutdown_join::<T>(false);
}

fn shutdown_put_join<T: Q>(immediate: bool) {
    let q = Arc::new(T::bounded(2));
    let results = Results::default();
    let go = Arc::new(Event::new());
    q.put(1); // queue not full
    let threads = vec![
        put_shutdown_thread(&q, 3, &go, &results),
        join_thread(&q, &results),
    ];
    assert!(q.debug().contains("unfinished_tasks: 1"), "{}", q.debug());
    q.shutdown(immediate);
    go.set();
    if immediate {
        assert_eq!(q.recv_timeout(ZERO), Err(GetError::ShutDown));
    } else {
        assert_eq!(q.recv(), Ok(1));
        q.task_done().unwrap();
    }
    join_all(threads);
    assert_eq!(*results.lock().unwrap(), [true, true]);
}

fn test_shutdown_immediate_put_join<T: Q>() {
    shutdown_put_join::<T>(true);
}

fn test_shutdown_put_join<T: Q>() {
    shutdown_put_join::<T>(false);
}

fn test_shutdown_get_task_done_join<T: Q>() {
    let q = Arc::new(T::bounded(2));
    let results = Results::default();
    let go = Arc::new(Event::new());
    q.put(1);
    q.put(2);
    assert!(q.debug().contains("qsize: 2"));
    assert!(q.debug().contains("unfinished_tasks: 2"));
    let threads = vec![
        get_task_done_thread(&q, &go, &results),
        get_task_done_thread(&q, &go, &results),
        join_thread(&q, &results),
        join_thread(&q, &results),
    ];
    go.set();
    q.shutdown(false);
    join_all(threads);
    assert_eq!(*results.lock().unwrap(), [true; 4]);
}

/// CPython starts the getter and shuts down at once; here the getter is first seen blocked,
/// so the test is about a get that is really pending.
fn test_shutdown_pending_get<T: Q>() {
    let q = Arc::new(T::unbounded());
    let getter_tid = Arc::new(Mutex::new(None));
    let get_thread = {
        let (q, getter_tid) = (q.clone(), getter_tid.clone());
        thread::spawn(move || {
            *getter_tid.lock().unwrap() = Some(tid());
            q.recv()
        })
    };
    until("the getter to start", || {
        getter_tid.lock().unwrap().is_some()
    });
    let getter = getter_tid.lock().unwrap().unwrap();
    until_blocked(&[getter]);
    q.shutdown(false);
    assert_eq!(get_thread.join().unwrap(), Err(GetError::ShutDown));
}

/// The `BaseQueueTestMixin` tests, run for one queue type as the module `$class`.
macro_rules! base_queue_tests {
    ($class:ident, $t:ty) => {
        base_queue_tests!(@ $class, $t,
            test_queue_task_done, test_queue_join, test_basic, test_nowait,
            test_shutdown_empty, test_shutdown_nonempty, test_shutdown_immediate,
            test_shutdown_allowed_transitions, test_shutdown_all_methods_in_one_thread,
            test_shutdown_immediate_all_methods_in_one_thread,
            test_shutdown_all_methods_in_many_threads,
            test_shutdown_immediate_all_methods_in_many_threads, test_shutdown_get,
            test_shutdown_immediate_get, test_shutdown_put, test_shutdown_immediate_put,
            test_shutdown_immediate_join, test_shutdown_join, test_shutdown_immediate_put_join,
            test_shutdown_put_join, test_shutdown_get_task_done_join, test_shutdown_pending_get
        );
    };
    (@ $class:ident, $t:ty, $($name:ident),*) => {
        mod $class {
            $(
                #[test]
                fn $name() {
                    super::$name::<$t>();
                }
            )*
        }
    };
}

base_queue_tests!(queue_test, flotilla::sync::Queue<i32>);
base_queue_tests!(lifo_queue_test, flotilla::sync::LifoQueue<i32>);
base_queue_tests!(priority_queue_test, flotilla::sync::PriorityQueue<i32>);

// ---- BaseSimpleQueueTest, against flotilla::sync::SimpleQueue ----

mod simple_queue_test {
    use super::*;

    type Item = Option<usize>;
    const SENTINEL: Item = None;

    /// CPython's `feed`: puts items from the shared `seq`, then the sentinel; yields at
    /// random instead of sleeping at random.
    fn feed(q: &SimpleQueue<Item>, seq: &Mutex<Vec<usize>>, rnd: &Mutex<StdRng>) {
        loop {
            let Some(val) = seq.lock().unwrap().pop() else {
                q.put(SENTINEL);
                return;
            };
            q.put(Some(val));
            if rnd.lock().unwrap().random::<f64>() > 0.5 {
                thread::yield_now();
            }
        }
    }

    #[derive(Clone, Copy)]
    enum Consume {
        /// `consume`: blocking gets.
        Blocking,
        /// `consume_nonblock`: `get(block=False)`, yielding while empty.
        Nonblock,
        /// `consume_timeout`: `get(timeout=1e-5)`.
        Timeout,
    }

    fn consume(q: &SimpleQueue<Item>, results: &Mutex<Vec<usize>>, how: Consume) {
        let started = Instant::now();
        loop {
            let val = match how {
                Consume::Blocking => Some(q.get()),
                Consume::Nonblock => q.try_get().ok(),
                Consume::Timeout => q.get_timeout(Duration::from_micros(10)).ok(),
            };
            match val {
                Some(SENTINEL) => return,
                Some(Some(val)) => results.lock().unwrap().push(val),
                None => thread::yield_now(),
            }
            assert!(
                started.elapsed() < DEADLINE,
                "the consumer never got its sentinel"
            );
        }
    }

    /// CPython's `run_threads`: `n_threads` feeders and as many consumers.
    fn run_threads(n_threads: usize, inputs: &[usize], how: Consume) -> Vec<usize> {
        let q = Arc::new(SimpleQueue::new());
        let results = Arc::new(Mutex::new(Vec::new()));
        let seq = Arc::new(Mutex::new(inputs.iter().rev().copied().collect::<Vec<_>>()));
        let rnd = Arc::new(Mutex::new(StdRng::seed_from_u64(42)));
        let mut threads = Vec::new();
        for _ in 0..n_threads {
            let (q, seq, rnd) = (q.clone(), seq.clone(), rnd.clone());
            threads.push(spawn(move || feed(&q, &seq, &rnd)));
        }
        for _ in 0..n_threads {
            let (q, results) = (q.clone(), results.clone());
            threads.push(spawn(move || consume(&q, &results, how)));
        }
        join_all(threads);
        assert!(q.is_empty());
        assert_eq!(q.qsize(), 0);
        Arc::try_unwrap(results).unwrap().into_inner().unwrap()
    }

    #[test]
    fn test_basic() {
        // Basic tests for get(), put() etc.
        let q = SimpleQueue::new();
        assert!(q.is_empty());
        assert_eq!(q.qsize(), 0);
        q.put(1);
        assert!(!q.is_empty());
        assert_eq!(q.qsize(), 1);
        q.put(2);
        q.put(3);
        q.put(4);
        assert!(!q.is_empty());
        assert_eq!(q.qsize(), 4);
        assert_eq!(q.get(), 1);
        assert_eq!(q.qsize(), 3);
        assert_eq!(q.try_get(), Ok(2));
        assert_eq!(q.qsize(), 2);
        assert_eq!(q.try_get(), Ok(3));
        assert!(!q.is_empty());
        assert_eq!(q.qsize(), 1);
        assert_eq!(q.get_timeout(Duration::from_millis(100)), Ok(4));
        assert!(q.is_empty());
        assert_eq!(q.qsize(), 0);
        assert!(q.try_get().is_err());
        assert!(q.get_timeout(Duration::from_millis(1)).is_err());
        assert!(q.try_get().is_err());
        assert!(q.is_empty());
        assert_eq!(q.qsize(), 0);
    }

    #[test]
    fn test_order() {
        // One producer, one consumer => results appended in well-defined order.
        let inputs: Vec<usize> = (0..100).collect();
        assert_eq!(run_threads(1, &inputs, Consume::Blocking), inputs);
    }

    fn many_threads(n_inputs: usize, how: Consume) {
        // Multiple consumers without synchronization append the results in random order.
        let inputs: Vec<usize> = (0..n_inputs).collect();
        let mut results = run_threads(50, &inputs, how);
        results.sort_unstable();
        assert_eq!(results, inputs);
    }

    #[test]
    fn test_many_threads() {
        many_threads(10_000, Consume::Blocking);
    }

    #[test]
    fn test_many_threads_nonblock() {
        many_threads(10_000, Consume::Nonblock);
    }

    #[test]
    fn test_many_threads_timeout() {
        many_threads(1_000, Consume::Timeout);
    }

    #[test]
    fn test_references() {
        // The queue loses its reference to each item as soon as it leaves the queue.
        const N: usize = 20;
        let q = SimpleQueue::new();
        for _ in 0..N {
            q.put(Arc::new(()));
        }
        for _ in 0..N {
            let wr = Arc::downgrade(&q.get());
            assert!(wr.upgrade().is_none());
        }
    }
}
