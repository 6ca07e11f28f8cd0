//! Waiting on your own pool: a pool thread that blocks on a task of the same pool still in the
//! queue runs that task itself, instead of waiting for a thread that may never come (with
//! `max_workers(1)` it never does). The waits here would hang for ever otherwise; each test
//! runs under a watchdog, so a regression fails with "hang".

use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use flotilla::ThreadPoolExecutor;
use flotilla::sync::Event;

#[path = "support/watchdog.rs"]
mod support_watchdog;
use support_watchdog::watchdog;

const GENEROUS: Duration = Duration::from_secs(30);

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
                (waiter, inner.result(None).unwrap())
            })
            .unwrap();
        let (waiter, (runner, value)) = outer.result(None).unwrap();
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
                    a.result(Some(Duration::from_millis(1))).unwrap(),
                    b.into_result(None).unwrap(),
                    c.exception(None).unwrap().is_some_and(|e| e.is_panic()),
                )
            })
            .unwrap();
        assert_eq!(outer.result(None).unwrap(), (1, String::from("two"), true));
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
        inner.result(None).unwrap() + 1
    }
    watchdog(GENEROUS, || {
        let pool = one_thread();
        let p = Arc::clone(&pool);
        assert_eq!(pool.spawn(move || chain(p, 20)).unwrap().result(None), Ok(20));
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
        let first = pool.spawn(move || assert!(g.wait(Some(GENEROUS)))).unwrap();
        let queued = pool.spawn(|| (thread_name(), "queued")).unwrap();
        let (tx, rx) = mpsc::channel();
        let watched = queued.clone();
        first.add_done_callback(move |_| {
            tx.send((thread_name(), watched.result(None).unwrap()))
                .unwrap();
        });
        gate.set();
        let (callback, (runner, value)) = rx.recv_timeout(GENEROUS).expect("hang");
        assert_eq!(value, "queued");
        assert_eq!(callback.as_deref(), Some("solo_0"));
        assert_eq!(runner, callback);
        assert_eq!(queued.result(None).unwrap().1, "queued");
        first.result(None).unwrap();
    });
}

/// A thread outside the pool never runs a task itself: it waits for a pool thread.
#[test]
fn a_thread_outside_the_pool_waits_for_a_pool_thread() {
    watchdog(GENEROUS, || {
        let pool = one_thread();
        let gate = Arc::new(Event::new());
        let g = Arc::clone(&gate);
        let first = pool.spawn(move || assert!(g.wait(Some(GENEROUS)))).unwrap();
        let queued = pool.spawn(thread_name).unwrap();
        // The only pool thread is held: had this thread run the task, it would be done.
        let early = queued.result(Some(Duration::from_millis(50)));
        assert!(early.is_err_and(|e| e.is_timeout()), "ran outside its pool");
        gate.set();
        assert_eq!(queued.result(None).unwrap().as_deref(), Some("solo_0"));
        first.result(None).unwrap();
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
            .spawn(move || p.spawn(thread_name).unwrap().result(None).unwrap())
            .unwrap();
        assert_eq!(waited.result(None).unwrap().as_deref(), Some("solo_0"));
    });
}
