//! Shutting a thread pool down, explicitly and by `Drop`, and the cases that hang in naive
//! pools (CPython's `test_shutdown.py` and `test_deadlock.py`).
//!
//! Every case that could hang runs under [`watchdog`], so a regression fails with "hang"
//! instead of stalling the suite.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use flotilla::sync::{Event, Queue};
use flotilla::{Error, Executor, Future, Shutdown, ThreadPoolExecutor};

const GENEROUS: Duration = Duration::from_secs(30);

#[path = "support/watchdog.rs"]
mod support_watchdog;

/// Runs `body` on its own thread and fails with "hang" if it does not finish within 30 s.
fn watchdog<R: Send + 'static>(body: impl FnOnce() -> R + Send + 'static) -> R {
    support_watchdog::watchdog(GENEROUS, body)
}

/// Releases `gate` when dropped, so that a failing assertion does not leave pool threads
/// blocked (and the pool's `Drop` waiting for them).
struct OpenOnDrop(Arc<Event>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

fn pool(workers: usize) -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(workers)
        .build()
        .unwrap()
}

/// Submits a task that reports on `started` once it runs, then waits for `gate`.
fn blocked_task(
    pool: &ThreadPoolExecutor,
    gate: &Arc<Event>,
    started: &mpsc::Sender<()>,
) -> Future<u32> {
    let (gate, started) = (Arc::clone(gate), started.clone());
    pool.spawn(move || {
        started.send(()).unwrap();
        assert!(gate.wait_timeout(GENEROUS));
        1
    })
    .unwrap()
}

#[flotilla::task]
fn double(x: u32) -> u32 {
    x * 2
}

#[test]
fn submit_after_shutdown_is_refused() {
    for wait in [true, false] {
        let pool = pool(2);
        let before = pool.spawn(|| 1).unwrap();
        pool.shutdown(Shutdown::new().wait(wait));
        let err = pool.spawn(|| 2).unwrap_err();
        assert!(matches!(err, Error::Shutdown), "{err:?}");
        assert!(err.is_shutdown());
        assert_eq!(
            err.to_string(),
            "cannot submit: the executor has been shut down"
        );
        assert!(matches!(pool.submit(double, 1), Err(Error::Shutdown)));
        let mapped: Vec<_> = pool.map(double, 0..5).collect();
        assert_eq!(mapped.len(), 1, "map reports the refusal once");
        assert!(matches!(mapped[0], Err(Error::Shutdown)));
        assert_eq!(
            before.result().unwrap(),
            1,
            "work already queued still runs"
        );
        // Shutting down again is harmless.
        pool.shutdown(Shutdown::new());
    }
}

#[test]
fn shutdown_with_wait_waits_for_queued_and_running_tasks() {
    watchdog(|| {
        let pool = pool(2);
        let count = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Event::new());
        let (started_tx, started) = mpsc::channel();
        let _running = blocked_task(&pool, &gate, &started_tx);
        started.recv().unwrap();
        for _ in 0..20 {
            let (count, gate) = (Arc::clone(&count), Arc::clone(&gate));
            pool.spawn(move || {
                assert!(gate.wait_timeout(GENEROUS));
                count.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap()
            .detach();
        }
        let opener = {
            let gate = Arc::clone(&gate);
            thread::spawn(move || gate.set())
        };
        pool.shutdown(Shutdown::new());
        assert_eq!(count.load(Ordering::SeqCst), 20);
        opener.join().unwrap();
    });
}

#[test]
fn shutdown_without_wait_returns_while_a_task_runs() {
    watchdog(|| {
        let pool = pool(1);
        let gate = Arc::new(Event::new());
        let _open = OpenOnDrop(Arc::clone(&gate));
        let (started_tx, started) = mpsc::channel();
        let running = blocked_task(&pool, &gate, &started_tx);
        let queued = pool.spawn(|| 2).unwrap();
        started.recv().unwrap();
        pool.shutdown(Shutdown::new().wait(false)); // would hang here if it waited
        assert!(running.running());
        assert!(!queued.done(), "without cancel_futures queued work stays");
        gate.set();
        assert_eq!(running.result().unwrap(), 1, "the task still finishes");
        assert_eq!(queued.result().unwrap(), 2, "and so does the queue");
    });
}

#[test]
fn cancel_futures_cancels_the_queued_and_leaves_the_running() {
    for wait in [false, true] {
        watchdog(move || {
            let pool = Arc::new(pool(1));
            let gate = Arc::new(Event::new());
            let _open = OpenOnDrop(Arc::clone(&gate));
            let (started_tx, started) = mpsc::channel();
            let running = blocked_task(&pool, &gate, &started_tx);
            let ran = Arc::new(AtomicUsize::new(0));
            let queued: Vec<_> = (0..5)
                .map(|_| {
                    let ran = Arc::clone(&ran);
                    pool.spawn(move || ran.fetch_add(1, Ordering::SeqCst))
                        .unwrap()
                })
                .collect();
            started.recv().unwrap();
            let how = Shutdown::new().wait(wait).cancel_futures(true);
            if wait {
                // Shut down from another thread, which waits for the running task.
                let shutter = {
                    let pool = Arc::clone(&pool);
                    thread::spawn(move || pool.shutdown(how))
                };
                for future in &queued {
                    assert!(future.result_timeout(GENEROUS).unwrap_err().is_cancelled());
                }
                assert!(!running.done());
                gate.set();
                shutter.join().unwrap();
                assert!(
                    running.done(),
                    "shutdown(wait) returned before the task ended"
                );
            } else {
                pool.shutdown(how);
                assert!(queued.iter().all(Future::cancelled));
                assert!(running.running() && !running.cancelled());
                gate.set();
            }
            assert_eq!(running.result().unwrap(), 1);
            drop(pool);
            assert_eq!(ran.load(Ordering::SeqCst), 0, "a cancelled task ran");
        });
    }
}

/// A pool that sets `dropping` as its `Drop` begins, before the pool inside it is dropped.
struct Announced {
    pool: ThreadPoolExecutor,
    dropping: Arc<Event>,
}

impl Drop for Announced {
    fn drop(&mut self) {
        self.dropping.set();
    }
}

#[test]
fn drop_waits_for_running_and_queued_tasks() {
    watchdog(|| {
        let dropping = Arc::new(Event::new());
        let holder = Announced {
            pool: pool(2),
            dropping: Arc::clone(&dropping),
        };
        let count = Arc::new(AtomicUsize::new(0));
        let futures: Vec<_> = (0..10)
            .map(|_| {
                let (count, dropping) = (Arc::clone(&count), Arc::clone(&dropping));
                holder
                    .pool
                    .spawn(move || {
                        // Nothing can finish before the pool's drop has begun.
                        assert!(dropping.wait_timeout(GENEROUS));
                        count.fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap()
            })
            .collect();
        drop(holder);
        assert_eq!(count.load(Ordering::SeqCst), 10);
        assert!(futures.iter().all(|f| f.result().is_ok()));
    });
}

#[test]
fn concurrent_shutdowns_with_wait_all_wait() {
    watchdog(|| {
        let pool = Arc::new(pool(2));
        let gate = Arc::new(Event::new());
        let _open = OpenOnDrop(Arc::clone(&gate));
        let finished = Arc::new(AtomicUsize::new(0));
        for _ in 0..4 {
            let (gate, finished) = (Arc::clone(&gate), Arc::clone(&finished));
            pool.spawn(move || {
                assert!(gate.wait_timeout(GENEROUS));
                finished.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap()
            .detach();
        }
        let (calling_tx, calling) = mpsc::channel();
        let (returned_tx, returned) = mpsc::channel();
        let shutters: Vec<_> = (0..3)
            .map(|_| {
                let (pool, finished) = (Arc::clone(&pool), Arc::clone(&finished));
                let (calling_tx, returned_tx) = (calling_tx.clone(), returned_tx.clone());
                thread::spawn(move || {
                    calling_tx.send(()).unwrap();
                    pool.shutdown(Shutdown::new());
                    returned_tx.send(()).unwrap();
                    finished.load(Ordering::SeqCst)
                })
            })
            .collect();
        for _ in 0..3 {
            calling.recv().unwrap();
        }
        assert!(
            returned.recv_timeout(Duration::from_millis(50)).is_err(),
            "a shutdown(wait) returned while tasks were still blocked"
        );
        gate.set();
        for shutter in shutters {
            assert_eq!(shutter.join().unwrap(), 4, "shutdown(wait) returned early");
        }
    });
}

#[test]
fn dropping_the_last_handle_inside_one_of_its_own_tasks_does_not_hang() {
    watchdog(|| {
        let pool = Arc::new(pool(2));
        let (release_tx, release) = mpsc::channel::<()>();
        let inner = Arc::clone(&pool);
        let future = pool
            .spawn(move || {
                release.recv().unwrap();
                // Now the only handle: dropping it runs the pool's Drop on its own worker.
                assert_eq!(Arc::strong_count(&inner), 1);
                drop(inner);
                7
            })
            .unwrap();
        drop(pool);
        release_tx.send(()).unwrap();
        assert_eq!(future.result().unwrap(), 7);
    });
}

#[test]
fn dropping_the_last_handle_in_a_done_callback_does_not_hang() {
    watchdog(|| {
        let pool = Arc::new(pool(1));
        let (release_tx, release) = mpsc::channel::<()>();
        let future = pool
            .spawn(move || {
                release.recv().unwrap();
            })
            .unwrap();
        let (dropped_tx, dropped) = mpsc::channel();
        let last = Arc::clone(&pool);
        future.add_done_callback(move |_| {
            drop(last);
            dropped_tx.send(()).unwrap();
        });
        drop(pool);
        release_tx.send(()).unwrap();
        dropped.recv().unwrap();
    });
}

#[test]
fn shutdown_with_wait_inside_a_task_does_not_hang() {
    watchdog(|| {
        let pool = Arc::new(pool(2));
        let inner = Arc::clone(&pool);
        let inside = pool
            .spawn(move || {
                inner.shutdown(Shutdown::new());
                inner.spawn(|| ()).unwrap_err()
            })
            .unwrap();
        assert!(matches!(inside.result().unwrap(), Error::Shutdown));
        assert!(matches!(pool.spawn(|| ()), Err(Error::Shutdown)));
        drop(pool);
    });
}

#[test]
fn dropping_a_pool_whose_tasks_wait_on_a_queue_finishes_once_released() {
    watchdog(|| {
        let queue = Arc::new(Queue::new());
        let pool = pool(3);
        let (started_tx, started) = mpsc::channel();
        let got = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..3 {
            let (queue, started_tx, got) =
                (Arc::clone(&queue), started_tx.clone(), Arc::clone(&got));
            pool.spawn(move || {
                started_tx.send(()).unwrap();
                let item: u32 = queue.get();
                got.lock().unwrap().push(item);
            })
            .unwrap()
            .detach();
        }
        for _ in 0..3 {
            started.recv().unwrap();
        }
        let dropper = thread::spawn(move || drop(pool));
        for item in 0..3 {
            queue.put(item);
        }
        dropper.join().unwrap();
        let mut got = got.lock().unwrap().clone();
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2]);
    });
}

#[test]
fn tasks_that_submit_to_their_own_pool() {
    watchdog(|| {
        let pool = Arc::new(pool(2));
        let inner = Arc::clone(&pool);
        let outer = pool
            .spawn(move || {
                let child = inner.spawn(|| 20).unwrap();
                child.result().unwrap() + 1
            })
            .unwrap();
        assert_eq!(outer.result().unwrap(), 21);
    });
}

#[test]
fn a_blocked_submitter_does_not_hang_shutdown() {
    watchdog(|| {
        let pool = Arc::new(
            ThreadPoolExecutor::builder()
                .max_workers(1)
                .max_queued(1)
                .build()
                .unwrap(),
        );
        let gate = Arc::new(Event::new());
        let _open = OpenOnDrop(Arc::clone(&gate));
        let (started_tx, started) = mpsc::channel();
        let running = blocked_task(&pool, &gate, &started_tx);
        started.recv().unwrap();
        let queued = pool.spawn(|| 2).unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let submitter = {
            let (pool, barrier) = (Arc::clone(&pool), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                pool.spawn(|| 3)
            })
        };
        barrier.wait();
        let shutter = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || pool.shutdown(Shutdown::new()))
        };
        gate.set();
        shutter.join().unwrap();
        assert_eq!(running.result().unwrap(), 1);
        assert_eq!(queued.result().unwrap(), 2);
        // Either the submit got in before the shutdown (and ran) or it was refused.
        match submitter.join().unwrap() {
            Ok(late) => assert_eq!(late.result_timeout(GENEROUS).unwrap(), 3),
            Err(err) => assert!(matches!(err, Error::Shutdown), "{err:?}"),
        }
    });
}
