//! Waiting on your own pool: a pool thread that blocks on a task of the same pool still in the
//! queue runs that task itself, instead of waiting for a thread that may never come (with
//! `max_workers(1)` it never does). The waits here would hang for ever otherwise; each test
//! runs under a watchdog, so a regression fails with "hang".

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use flotilla::sync::Event;
use flotilla::{Future, ReturnWhen, ThreadPoolExecutor, as_completed, wait};

#[path = "support/watchdog.rs"]
mod support_watchdog;
use support_watchdog::watchdog;

const GENEROUS: Duration = Duration::from_secs(10);

fn one_thread() -> Arc<ThreadPoolExecutor> {
    Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(1)
            .thread_name_prefix("solo")
            .build()
            .unwrap(),
    )
}

fn thread_name() -> Option<String> {
    thread::current().name().map(String::from)
}

#[test]
fn a_task_waiting_on_a_queued_task_of_its_own_pool_runs_it_inline() {
    watchdog(GENEROUS, || {
        let pool = one_thread();
        let inner_pool = Arc::clone(&pool);
        let outer = pool
            .spawn(move || {
                let inner = inner_pool.spawn(|| (thread_name(), 6 * 7)).unwrap();
                let waiter = thread_name();
                (waiter, inner.result().unwrap())
            })
            .unwrap();
        let (waiter, (runner, value)) = outer.result().unwrap();
        assert_eq!(value, 42);
        assert_eq!(waiter.as_deref(), Some("solo_0"));
        assert_eq!(runner, waiter, "the waiting pool thread ran the task");
        drop(pool);
    });
}

#[test]
fn a_wait_with_a_timeout_and_a_consuming_wait_run_it_inline_too() {
    watchdog(GENEROUS, || {
        let pool = one_thread();
        let inner_pool = Arc::clone(&pool);
        let outer = pool
            .spawn(move || {
                let a = inner_pool.spawn(|| 1).unwrap();
                let b = inner_pool.spawn(|| String::from("two")).unwrap();
                let c = inner_pool.spawn(|| -> u8 { panic!("three") }).unwrap();
                (
                    a.result_timeout(Duration::from_millis(1)).unwrap(),
                    b.into_result().unwrap(),
                    c.exception().unwrap().is_some_and(|e| e.is_panic()),
                )
            })
            .unwrap();
        assert_eq!(outer.result().unwrap(), (1, String::from("two"), true));
    });
}

#[test]
fn tasks_waiting_on_tasks_waiting_on_tasks_all_finish() {
    fn chain(pool: Arc<ThreadPoolExecutor>, depth: u32) -> u32 {
        if depth == 0 {
            return 0;
        }
        let next = Arc::clone(&pool);
        let inner = pool.spawn(move || chain(next, depth - 1)).unwrap();
        inner.result().unwrap() + 1
    }
    watchdog(GENEROUS, || {
        let pool = one_thread();
        let p = Arc::clone(&pool);
        assert_eq!(
            pool.spawn(move || chain(p, 20)).unwrap().result().unwrap(),
            20
        );
    });
}

/// A done-callback runs on the pool thread that completed the future; waiting there on a task
/// queued behind it used to hang the only thread for good.
#[test]
fn a_done_callback_waiting_on_a_queued_task_of_the_same_pool_runs_it_inline() {
    watchdog(GENEROUS, || {
        let pool = one_thread();
        let gate = Arc::new(Event::new());
        let g = Arc::clone(&gate);
        let first = pool
            .spawn(move || assert!(g.wait_timeout(GENEROUS)))
            .unwrap();
        let queued = pool.spawn(|| (thread_name(), "queued")).unwrap();
        let (tx, rx) = mpsc::channel();
        let watched = queued.clone();
        first.add_done_callback(move |_| {
            tx.send((thread_name(), watched.result().unwrap())).unwrap();
        });
        gate.set();
        let (callback, (runner, value)) = rx.recv_timeout(GENEROUS).expect("hang");
        assert_eq!(value, "queued");
        assert_eq!(callback.as_deref(), Some("solo_0"));
        assert_eq!(runner, callback);
        assert_eq!(queued.result().unwrap().1, "queued");
        first.result().unwrap();
    });
}

/// A thread outside the pool never runs a task itself: it waits for a pool thread.
#[test]
fn a_thread_outside_the_pool_waits_for_a_pool_thread() {
    watchdog(GENEROUS, || {
        let pool = one_thread();
        let gate = Arc::new(Event::new());
        let g = Arc::clone(&gate);
        let first = pool
            .spawn(move || assert!(g.wait_timeout(GENEROUS)))
            .unwrap();
        let queued = pool.spawn(thread_name).unwrap();
        // The only pool thread is held: had this thread run the task, it would be done.
        let early = queued.result_timeout(Duration::from_millis(50));
        assert!(early.is_err_and(|e| e.is_timeout()), "ran outside its pool");
        gate.set();
        assert_eq!(queued.result().unwrap().as_deref(), Some("solo_0"));
        first.result().unwrap();
    });
}

/// A task of another pool is not run inline: only the pool's own threads may take its tasks.
#[test]
fn a_thread_of_another_pool_waits_for_the_owning_pool() {
    watchdog(GENEROUS, || {
        let pool = one_thread();
        let other = ThreadPoolExecutor::builder()
            .max_workers(1)
            .thread_name_prefix("other")
            .build()
            .unwrap();
        let p = Arc::clone(&pool);
        let waited = other
            .spawn(move || p.spawn(thread_name).unwrap().result().unwrap())
            .unwrap();
        assert_eq!(waited.result().unwrap().as_deref(), Some("solo_0"));
    });
}

/// `wait` called on a pool thread runs the still-queued tasks of its own pool it waits for.
#[test]
fn wait_on_a_pool_thread_runs_queued_tasks_of_its_own_pool() {
    watchdog(GENEROUS, || {
        let pool = one_thread();
        let p = Arc::clone(&pool);
        let outer = pool
            .spawn(move || {
                let futures: Vec<_> = (0..3).map(|i| p.spawn(move || i * 10).unwrap()).collect();
                let (first, _) = wait(&futures, ReturnWhen::FirstCompleted);
                let (done, not_done) = wait(&futures, ReturnWhen::AllCompleted);
                let mut values: Vec<i32> = done.iter().map(|f| f.result().unwrap()).collect();
                values.sort_unstable();
                (first.len(), values, not_done.len())
            })
            .unwrap();
        let (first, values, not_done) = outer.result().unwrap();
        assert!(first >= 1);
        assert_eq!(values, [0, 10, 20]);
        assert_eq!(not_done, 0);
    });
}

/// `as_completed` on a pool thread likewise yields every queued task of its own pool.
#[test]
fn as_completed_on_a_pool_thread_runs_queued_tasks_of_its_own_pool() {
    watchdog(GENEROUS, || {
        let pool = one_thread();
        let p = Arc::clone(&pool);
        let outer = pool
            .spawn(move || {
                let futures: Vec<_> = (0..4).map(|i| p.spawn(move || i).unwrap()).collect();
                let mut values: Vec<i32> = as_completed(&futures)
                    .map(|f| f.unwrap().result().unwrap())
                    .collect();
                values.sort_unstable();
                values
            })
            .unwrap();
        assert_eq!(outer.result().unwrap(), [0, 1, 2, 3]);
    });
}

/// A task waiting on its own future is not run again: it is already running, on this very
/// thread. The wait is an ordinary wait: with a time limit it times out (documented on
/// `Future`), and the task then finishes normally.
#[test]
fn a_task_waiting_on_its_own_future_times_out_and_does_not_run_twice() {
    watchdog(GENEROUS, || {
        let pool = one_thread();
        let runs = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel::<Future<bool>>();
        let r = Arc::clone(&runs);
        let own = pool
            .spawn(move || {
                r.fetch_add(1, Ordering::SeqCst);
                let me = rx.recv_timeout(GENEROUS).expect("own future");
                me.result_timeout(Duration::from_millis(20))
                    .is_err_and(|e| e.is_timeout())
            })
            .unwrap();
        tx.send(own.clone()).unwrap();
        assert!(own.result().unwrap(), "the wait on itself timed out");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    });
}

/// A wait on a task already running on another thread of the pool just waits for it.
#[test]
fn a_wait_on_a_task_running_on_another_pool_thread_just_waits() {
    watchdog(GENEROUS, || {
        let pool = Arc::new(
            ThreadPoolExecutor::builder()
                .max_workers(2)
                .thread_name_prefix("pair")
                .build()
                .unwrap(),
        );
        let (started, gate) = (Arc::new(Event::new()), Arc::new(Event::new()));
        let runs = Arc::new(AtomicUsize::new(0));
        let (s, g, r) = (Arc::clone(&started), Arc::clone(&gate), Arc::clone(&runs));
        let running = pool
            .spawn(move || {
                r.fetch_add(1, Ordering::SeqCst);
                s.set();
                assert!(g.wait_timeout(GENEROUS));
                thread_name()
            })
            .unwrap();
        assert!(started.wait_timeout(GENEROUS));
        let (tx, rx) = mpsc::channel();
        let watched = running.clone();
        let waiter = pool
            .spawn(move || {
                let early = watched.result_timeout(Duration::from_millis(20));
                tx.send(early.is_err_and(|e| e.is_timeout())).unwrap();
                (thread_name(), watched.result().unwrap())
            })
            .unwrap();
        assert!(rx.recv_timeout(GENEROUS).unwrap(), "waited, did not run it");
        gate.set();
        let (waiter_name, runner_name) = waiter.result().unwrap();
        assert_ne!(waiter_name, runner_name);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    });
}

/// The take-from-queue race: a pool thread waits on a queued task at the moment another pool
/// thread picks it up. Whichever takes it runs it, exactly once, and the wait returns its value.
#[test]
fn a_queued_task_taken_by_a_waiter_and_a_worker_at_once_runs_exactly_once() {
    watchdog(Duration::from_secs(60), || {
        let pool = Arc::new(
            ThreadPoolExecutor::builder()
                .max_workers(3)
                .build()
                .unwrap(),
        );
        let mut seed: u64 = 0x5eed_1234_abcd_0019;
        for round in 0..300u64 {
            // xorshift: how many tasks each round queues before the waiter looks.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let width = 1 + (seed % 6) as usize;
            let p = Arc::clone(&pool);
            let outer = pool
                .spawn(move || {
                    let runs: Vec<_> = (0..width).map(|_| Arc::new(AtomicUsize::new(0))).collect();
                    let futures: Vec<_> = runs
                        .iter()
                        .enumerate()
                        .map(|(i, r)| {
                            let r = Arc::clone(r);
                            p.spawn(move || r.fetch_add(1, Ordering::SeqCst) + i * 100)
                                .unwrap()
                        })
                        .collect();
                    let values: Vec<usize> =
                        futures.iter().rev().map(|f| f.result().unwrap()).collect();
                    let counts: Vec<usize> =
                        runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
                    (values, counts)
                })
                .unwrap();
            let (values, counts) = outer.result().unwrap();
            let expected: Vec<usize> = (0..width).rev().map(|i| i * 100).collect();
            assert_eq!(values, expected, "round {round}");
            assert!(counts.iter().all(|&c| c == 1), "round {round}: {counts:?}");
        }
    });
}
