//! `ThreadPoolExecutor::scope` and `map_borrowed`: tasks borrow the caller's data, and the scope
//! never returns while a task that borrows could still run — whatever happens to the handles,
//! the scope's closure, the tasks or the pool. Reproduce a stress failure with
//! `FLOTILLA_STRESS_SEED=<seed>`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flotilla::sync::Event;
use flotilla::{
    Executor, ReturnWhen, Shutdown, ThreadPoolExecutor, as_completed_timeout, wait_timeout,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const LONG: Duration = Duration::from_secs(30);

/// Counts its own drops into a borrowed counter: proof that a task's closure was consumed.
struct Dropped<'a>(&'a AtomicUsize);

impl Drop for Dropped<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn pool(workers: usize) -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(workers)
        .build()
        .expect("pool")
}

#[test]
fn tasks_borrow_and_mutate_the_callers_data() {
    let pool = pool(4);
    let input: Vec<u64> = (1..=100).collect();
    let mut halves = [0u64; 2];
    pool.scope(|s| {
        let (a, b) = input.split_at(50);
        let [left, right] = &mut halves;
        let l = s.spawn(move || *left = a.iter().sum()).unwrap();
        let r = s.spawn(move || *right = b.iter().sum()).unwrap();
        let (done, not_done) = wait_timeout([l, r], ReturnWhen::AllCompleted, LONG);
        assert_eq!((done.len(), not_done.len()), (2, 0));
    });
    assert_eq!(halves, [1275, 3775]);
}

#[test]
fn scoped_futures_have_the_whole_future_api() {
    let pool = pool(2);
    let gate = Event::new();
    let called = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel();
    pool.scope(|s| {
        let busy = s.spawn(|| gate.wait_timeout(LONG)).unwrap();
        let busy2 = s.spawn(|| gate.wait_timeout(LONG)).unwrap();
        let queued = s.spawn(|| 1).unwrap();
        assert!(queued.cancel());
        assert!(queued.result().unwrap_err().is_cancelled());
        let timed = s.spawn(|| gate.wait_timeout(LONG)).unwrap();
        assert!(
            timed
                .result_timeout(Duration::from_millis(1))
                .unwrap_err()
                .is_timeout()
        );
        timed.add_done_callback(move |f| tx.send(f.done()).unwrap());
        let panics = s.spawn(|| -> u8 { panic!("scoped boom") }).unwrap();
        gate.set();
        for f in as_completed_timeout([busy, busy2, timed], LONG) {
            assert!(f.unwrap().result().unwrap());
        }
        assert!(panics.exception().unwrap().unwrap().is_panic());
        called.store(true, Ordering::SeqCst);
    });
    assert!(rx.recv_timeout(Duration::from_secs(30)).unwrap());
    assert!(called.load(Ordering::SeqCst));
}

#[test]
fn a_forgotten_handle_does_not_let_the_scope_return_early() {
    let pool = pool(2);
    let gate = Arc::new(Event::new());
    let (started_tx, started_rx) = mpsc::channel();
    let opener = {
        let gate = Arc::clone(&gate);
        std::thread::spawn(move || {
            started_rx.recv().unwrap();
            gate.set();
        })
    };
    let mut written = false;
    pool.scope(|s| {
        let written = &mut written;
        let gate = &gate;
        let f = s
            .spawn(move || {
                started_tx.send(()).unwrap();
                gate.wait_timeout(LONG);
                *written = true;
            })
            .unwrap();
        std::mem::forget(f);
    });
    // Had the scope returned before the task, this read would race the task's write.
    assert!(written);
    opener.join().unwrap();
}

#[test]
fn a_panic_in_the_scope_waits_for_running_tasks_and_drops_queued_ones_unrun() {
    let pool = pool(1);
    let dropped = AtomicUsize::new(0);
    let ran = AtomicUsize::new(0);
    let finished = AtomicBool::new(false);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            let guard = Dropped(&dropped);
            s.spawn(|| {
                let _guard = guard;
                // Busy until the scope dropped the queued tasks (bounded by a deadline).
                let deadline = Instant::now() + Duration::from_secs(30);
                while dropped.load(Ordering::SeqCst) < 100 && Instant::now() < deadline {
                    std::thread::yield_now();
                }
                finished.store(true, Ordering::SeqCst);
            })
            .unwrap()
            .detach();
            for _ in 0..100 {
                let guard = Dropped(&dropped);
                let ran = &ran;
                s.spawn(move || {
                    let _guard = guard;
                    ran.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap()
                .detach();
            }
            panic!("the scope's closure fails");
        })
    }));
    assert!(outcome.is_err());
    assert!(finished.load(Ordering::SeqCst), "the running task finished");
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        101,
        "every closure consumed"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0, "queued tasks dropped unrun");
}

#[test]
fn a_scope_inside_a_task_of_a_one_worker_pool_does_not_deadlock() {
    let pool = pool(1);
    let data = [3u32, 4, 5];
    let total = pool.scope(|outer| {
        let f = outer
            .spawn(|| {
                // The only worker runs this task: the inner scope's own thread runs its tasks
                // when the scope ends.
                let futures = pool.scope(|inner| {
                    data.iter()
                        .map(|x| inner.spawn(move || x * x).unwrap())
                        .collect::<Vec<_>>()
                });
                futures
                    .iter()
                    .map(|f| f.result_timeout(Duration::ZERO).unwrap())
                    .sum::<u32>()
            })
            .unwrap();
        f.result_timeout(LONG).unwrap()
    });
    assert_eq!(total, 50);
}

#[test]
fn tasks_spawn_more_tasks_into_their_scope() {
    let pool = pool(2);
    let count = AtomicUsize::new(0);
    pool.scope(|s| {
        for _ in 0..10 {
            let count = &count;
            s.spawn(move || {
                for _ in 0..10 {
                    s.spawn(move || count.fetch_add(1, Ordering::SeqCst))
                        .unwrap()
                        .detach();
                }
            })
            .unwrap()
            .detach();
        }
    });
    assert_eq!(count.load(Ordering::SeqCst), 100);
}

#[test]
fn ten_thousand_tiny_tasks_all_run_before_the_scope_returns() {
    let pool = pool(4);
    let count = AtomicUsize::new(0);
    let futures = pool.scope(|s| {
        (0..10_000)
            .map(|_| s.spawn(|| count.fetch_add(1, Ordering::Relaxed)).unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(count.load(Ordering::SeqCst), 10_000);
    assert!(futures.iter().all(|f| f.done()));
}

#[test]
fn shutting_the_pool_down_inside_the_scope_still_finishes_every_task() {
    let pool = pool(1);
    let gate = Arc::new(Event::new());
    let (started_tx, started_rx) = mpsc::channel();
    let ran = AtomicUsize::new(0);
    pool.scope(|s| {
        let g = Arc::clone(&gate);
        let busy = s
            .spawn(move || {
                started_tx.send(()).unwrap();
                g.wait_timeout(LONG);
            })
            .unwrap();
        let queued: Vec<_> = (0..20)
            .map(|_| s.spawn(|| ran.fetch_add(1, Ordering::SeqCst)).unwrap())
            .collect();
        started_rx.recv().unwrap();
        // The pool drops its queued tickets; the scope's own thread runs the tasks instead.
        pool.shutdown(Shutdown::new().wait(false).cancel_futures(true));
        assert!(s.spawn(|| ()).unwrap_err().is_shutdown());
        gate.set();
        busy.result_timeout(LONG).unwrap();
        drop(queued);
    });
    // Dropping the queued handles cancelled any task not yet run; none is left running.
    assert!(ran.load(Ordering::SeqCst) <= 20);
}

#[test]
fn map_borrowed_keeps_input_order_over_slices_and_iterators() {
    let pool = pool(3);
    let words: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let lens = pool.map_borrowed(|w: &String| w.len(), &words).unwrap();
    assert_eq!(lens, words.iter().map(String::len).collect::<Vec<_>>());
    let mut values: Vec<u32> = (0..100).collect();
    pool.map_borrowed(|v: &mut u32| *v *= 2, values.iter_mut())
        .unwrap();
    assert_eq!(values[99], 198);
    assert!(pool.map_borrowed(|x: &u8| *x, &[]).unwrap().is_empty());
    let err = pool
        .map_borrowed(|x: &i32| assert!(*x != 7, "seven"), &[1, 7, 9])
        .unwrap_err();
    assert!(err.is_panic());
}

const SEEDS: [u64; 4] = [1, 2, 3, 0x5c09e];

#[test]
fn seeded_stress_of_cancels_drops_forgets_panics_and_nesting() {
    let seeds = match std::env::var("FLOTILLA_STRESS_SEED") {
        Ok(seed) => vec![seed.parse().expect("FLOTILLA_STRESS_SEED is a number")],
        Err(_) => SEEDS.to_vec(),
    };
    for seed in seeds {
        let mut rng = StdRng::seed_from_u64(seed);
        let pool = &pool(rng.random_range(1..=4));
        for _ in 0..20 {
            let dropped = AtomicUsize::new(0);
            let mut cells = vec![0u64; rng.random_range(1..64)];
            let plan: Vec<u8> = (0..cells.len()).map(|_| rng.random_range(0..6)).collect();
            let body_panics = rng.random_bool(0.1);
            let spawned = cells.len();
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                pool.scope(|s| {
                    let mut kept = Vec::new();
                    for (cell, action) in cells.iter_mut().zip(&plan) {
                        let guard = Dropped(&dropped);
                        let action = *action;
                        let f = s
                            .spawn(move || {
                                let _guard = guard;
                                match action {
                                    0 => panic!("task panics"),
                                    1 => pool.scope(|inner| {
                                        inner.spawn(|| *cell += 1).unwrap().detach();
                                    }),
                                    _ => *cell += 1,
                                }
                            })
                            .unwrap();
                        match action {
                            2 => std::mem::forget(f),
                            3 => drop(f),
                            4 => {
                                f.cancel();
                            }
                            _ => kept.push(f),
                        }
                    }
                    assert!(!body_panics, "the body panics");
                    kept
                })
            }));
            assert_eq!(outcome.is_err(), body_panics, "seed {seed}");
            assert_eq!(dropped.load(Ordering::SeqCst), spawned, "seed {seed}");
            if let Ok(kept) = outcome {
                assert!(kept.iter().all(|f| f.done()), "seed {seed}");
            }
            assert!(cells.iter().all(|&c| c <= 1), "seed {seed}");
        }
    }
}

/// A scope keeps at most one ticket per worker queued: a task that blocks on a later task of
/// its scope must still see that task run by a worker freed meanwhile, not only by the owner
/// once the closure returns (here the closure itself waits on the blocked task).
#[test]
fn a_worker_freed_later_runs_the_tasks_a_blocked_task_waits_for() {
    let pool = pool(2);
    let gate = Arc::new(Event::new());
    let (busy_tx, busy_rx) = mpsc::channel();
    let g = Arc::clone(&gate);
    let outside = pool
        .spawn(move || {
            busy_tx.send(()).unwrap();
            g.wait_timeout(LONG)
        })
        .unwrap();
    busy_rx.recv().unwrap();
    let last = Event::new();
    let ran = AtomicUsize::new(0);
    let waited = pool.scope(|s| {
        let first = s.spawn(|| last.wait_timeout(LONG)).unwrap();
        for _ in 0..50 {
            s.spawn(|| ran.fetch_add(1, Ordering::SeqCst))
                .unwrap()
                .detach();
        }
        s.spawn(|| last.set()).unwrap().detach();
        gate.set();
        first.result_timeout(LONG).unwrap()
    });
    assert!(
        waited,
        "the last task ran while the first one waited for it"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 50);
    assert!(outside.result_timeout(LONG).unwrap());
}
