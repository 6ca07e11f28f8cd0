//! Waiting on your own pool, on a process pool: a done-callback runs on one of the pool's
//! slot threads, and when it blocks on a future of the same pool that is still queued (with
//! `max_workers(1)` no other slot will ever take it), that slot thread runs the task itself,
//! on its own worker process, as a thread pool's threads do (`thread_pool_reentry.rs`). The
//! waits here would hang for ever otherwise; each test runs under a watchdog, so a regression
//! fails with "hang".
//!
//! The one wait that cannot be served that way (from inside a result's `Deserialize`, while
//! the slot's worker is still busy with that call) fails the awaited task at once with an
//! error naming the deadlock.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use flotilla::process::Queue;
use flotilla::{
    Error, Executor, Future, ProcessPoolExecutor, ReturnWhen, as_completed_timeout, wait_timeout,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Deserializer, Serialize};

#[path = "support/watchdog.rs"]
mod support_watchdog;
use support_watchdog::watchdog;

#[path = "support/strength.rs"]
mod strength;

const GENEROUS: Duration = Duration::from_secs(30);

fn pool(workers: usize) -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(workers)
        .build()
        .unwrap()
}

/// Blocks until the test opens `gate`, so that what comes after it stays queued; returns its
/// worker's pid.
#[flotilla::task]
fn held(gate: Queue<()>) -> u32 {
    gate.get_timeout(GENEROUS)
        .expect("the test never opened the gate");
    std::process::id()
}

/// Its worker's pid.
#[flotilla::task]
fn queued() -> u32 {
    std::process::id()
}

#[flotilla::task]
fn panics() -> u32 {
    panic!("queued, then run inline, then panicked")
}

#[flotilla::task]
fn aborts() -> u32 {
    std::process::abort()
}

/// Says (with its worker's pid) that it started, then blocks until `gate` opens or its
/// worker is killed.
#[flotilla::task]
fn started_then_held(started: Queue<u32>, gate: Queue<()>) -> u32 {
    started.put(std::process::id()).expect("the test listens");
    gate.get_timeout(GENEROUS)
        .expect("the test never opened the gate");
    std::process::id()
}

/// Submits one task per gate, each held until its gate opens, and returns once all have
/// started: with as many gates as workers, every slot is busy and what is submitted next stays
/// queued (waiting for them to start matters: a slot thread slow to start would otherwise
/// leave its task to a slot freed meanwhile).
fn hold(pool: &ProcessPoolExecutor, gates: &[Queue<()>]) -> Vec<Future<u32>> {
    let started = Queue::new();
    let holders = gates
        .iter()
        .map(|gate| {
            pool.submit(started_then_held, (started.clone(), gate.clone()))
                .unwrap()
        })
        .collect();
    for _ in gates {
        started
            .get_timeout(GENEROUS)
            .expect("hang: a holder never started");
    }
    holders
}

#[test]
fn a_done_callback_waiting_on_a_queued_task_of_the_same_process_pool_runs_it() {
    watchdog(GENEROUS * 2, || {
        let pool = pool(1);
        let gate = Queue::new();
        let first = pool.submit(held, gate.clone()).unwrap();
        let second = pool.submit(queued, ()).unwrap();
        let watched = second.clone();
        let (tx, rx) = mpsc::channel();
        first.add_done_callback(move |_| {
            tx.send(watched.result()).unwrap();
        });
        gate.put(()).unwrap();
        let from_callback = rx.recv_timeout(GENEROUS).expect("hang").unwrap();
        // It ran once, in the waiting slot's own worker (not in this process), and the
        // callback saw its value.
        assert_eq!(second.result().unwrap(), from_callback);
        assert_eq!(first.result().unwrap(), from_callback);
        assert_ne!(from_callback, std::process::id());
    });
}

/// Each callback waits on the next queued task, whose own callback waits on the next: the
/// one slot runs them all, nested, on its one worker.
#[test]
fn a_chain_of_callbacks_each_waiting_on_the_next_queued_task_runs_them_all() {
    const DEPTH: usize = 6;
    watchdog(GENEROUS * 2, || {
        let pool = pool(1);
        let gate = Queue::new();
        let first = pool.submit(held, gate.clone()).unwrap();
        let chain: Vec<Future<u32>> = (0..DEPTH)
            .map(|_| pool.submit(queued, ()).unwrap())
            .collect();
        let (tx, rx) = mpsc::channel();
        let links = std::iter::once(&first).chain(&chain).zip(&chain);
        for (link, (waiter, next)) in links.enumerate() {
            let (next, tx) = (next.clone(), tx.clone());
            waiter.add_done_callback(move |_| tx.send((link, next.result())).unwrap());
        }
        drop(tx);
        gate.put(()).unwrap();
        let mut seen: Vec<(usize, u32)> = (0..DEPTH)
            .map(|_| {
                let (link, value) = rx.recv_timeout(GENEROUS).expect("hang");
                (link, value.unwrap())
            })
            .collect();
        // The innermost wait returns first.
        let order: Vec<usize> = seen.iter().map(|(link, _)| *link).collect();
        assert_eq!(order, (0..DEPTH).rev().collect::<Vec<_>>());
        let worker = first.result().unwrap();
        seen.sort_unstable();
        for (link, pid) in seen {
            assert_eq!(pid, worker, "link {link} ran on the slot's one worker");
            assert_eq!(chain[link].result().unwrap(), worker);
        }
    });
}

/// With two slots, both busy: the callback of the first to finish runs the task it waits
/// for, although another is queued ahead of it, and the slot then goes on with the queue.
#[test]
fn with_two_workers_a_callback_runs_the_task_it_waits_for_on_its_own_worker() {
    watchdog(GENEROUS * 3, || {
        let pool = pool(2);
        let gates = [Queue::new(), Queue::new()];
        let holders = hold(&pool, &gates);
        let ahead = pool.submit(queued, ()).unwrap();
        let behind = pool.submit(queued, ()).unwrap();
        let (tx, rx) = mpsc::channel();
        let watched = behind.clone();
        holders[0].add_done_callback(move |_| tx.send(watched.result()).unwrap());
        gates[0].put(()).unwrap();
        let from_callback = rx.recv_timeout(GENEROUS).expect("hang").unwrap();
        let first_worker = holders[0].result().unwrap();
        assert_eq!(
            from_callback, first_worker,
            "run on the waiting slot's worker"
        );
        // The other slot is still held: the freed slot takes the task queued ahead too.
        assert_eq!(ahead.result_timeout(GENEROUS).unwrap(), first_worker);
        assert!(!holders[1].done());
        gates[1].put(()).unwrap();
        assert_ne!(holders[1].result().unwrap(), first_worker);
        assert_eq!(behind.result().unwrap(), first_worker);
        strength::assert_full_strength(&pool);
    });
}

/// Every kind of wait runs the queued task inline: with a time limit (which only bounds the
/// sleep after), consuming, `exception`, `wait` and `as_completed`.
#[test]
fn waits_with_and_without_time_limits_run_queued_tasks_inline() {
    watchdog(GENEROUS * 2, || {
        let pool = pool(1);
        let gate = Queue::new();
        let first = pool.submit(held, gate.clone()).unwrap();
        let timed = pool.submit(queued, ()).unwrap();
        let consumed = pool.submit(queued, ()).unwrap();
        let failing = pool.submit(panics, ()).unwrap();
        let waited: Vec<_> = (0..2).map(|_| pool.submit(queued, ()).unwrap()).collect();
        let streamed: Vec<_> = (0..2).map(|_| pool.submit(queued, ()).unwrap()).collect();
        let (tx, rx) = mpsc::channel();
        let watched = (
            timed.clone(),
            consumed.clone(),
            failing.clone(),
            waited.clone(),
            streamed.clone(),
        );
        first.add_done_callback(move |_| {
            let (timed, consumed, failing, waited, streamed) = watched;
            let timed = timed.result_timeout(Duration::from_millis(1));
            let consumed = consumed.into_result();
            let failing = failing.exception_timeout(Duration::from_millis(1));
            let (done, not_done) =
                wait_timeout(waited, ReturnWhen::AllCompleted, Duration::from_millis(1));
            let streamed: Vec<_> = as_completed_timeout(streamed, Duration::from_millis(1))
                .map(|f| f.and_then(|f| f.result()))
                .collect();
            tx.send((
                timed,
                consumed,
                failing,
                done.len(),
                not_done.len(),
                streamed,
            ))
            .unwrap();
        });
        gate.put(()).unwrap();
        let (timed, consumed, failing, done, not_done, streamed) =
            rx.recv_timeout(GENEROUS).expect("hang");
        let worker = first.result().unwrap();
        assert_eq!(timed.unwrap(), worker);
        assert_eq!(consumed.unwrap(), worker);
        let panic = failing.unwrap().expect("the task panicked");
        assert!(panic.is_panic(), "{panic:?}");
        assert!(
            panic.to_string().contains("run inline, then panicked"),
            "{panic}"
        );
        assert_eq!((done, not_done), (2, 0));
        assert_eq!(streamed.len(), 2);
        for pid in streamed {
            assert_eq!(pid.unwrap(), worker);
        }
        for fut in waited {
            assert_eq!(fut.result().unwrap(), worker);
        }
    });
}

#[flotilla::task]
fn square_in(x: u32) -> (u32, u32) {
    (x * x, std::process::id())
}

/// A [`Map`](flotilla::Map) iterated in a callback waits on its own chunks, queued behind
/// nothing but the callback's slot: the slot runs them all.
#[test]
fn a_map_iterated_in_a_callback_runs_its_chunks_inline() {
    watchdog(GENEROUS * 2, || {
        let pool = Arc::new(pool(1));
        let gate = Queue::new();
        let first = pool.submit(held, gate.clone()).unwrap();
        let (tx, rx) = mpsc::channel();
        let inner = Arc::clone(&pool);
        first.add_done_callback(move |_| {
            let squares: Result<Vec<_>, _> = inner.map(square_in, 0..10).chunksize(3).collect();
            tx.send(squares).unwrap();
        });
        gate.put(()).unwrap();
        let squares = rx.recv_timeout(GENEROUS).expect("hang").unwrap();
        let worker = first.result().unwrap();
        let values: Vec<u32> = squares.iter().map(|(square, _)| *square).collect();
        assert_eq!(values, (0..10).map(|x| x * x).collect::<Vec<_>>());
        assert!(squares.iter().all(|(_, pid)| *pid == worker));
    });
}

/// A queued task that panics, or kills its worker, while run inline fails alone; the slot
/// starts a fresh worker for what it runs next, and the pool keeps its full strength.
#[test]
fn a_task_that_panics_or_crashes_its_worker_while_run_inline_costs_no_capacity() {
    for workers in [1, 2] {
        watchdog(GENEROUS * 4, move || {
            let pool = pool(workers);
            let gates: Vec<Queue<()>> = (0..workers).map(|_| Queue::new()).collect();
            let holders = hold(&pool, &gates);
            let panicking = pool.submit(panics, ()).unwrap();
            let crashing = pool.submit(aborts, ()).unwrap();
            let after = pool.submit(queued, ()).unwrap();
            let (tx, rx) = mpsc::channel();
            let watched = (panicking.clone(), crashing.clone(), after.clone());
            holders[0].add_done_callback(move |_| {
                let (panicking, crashing, after) = watched;
                let outcomes = (panicking.result(), crashing.result(), after.result());
                tx.send(outcomes).unwrap();
            });
            gates[0].put(()).unwrap();
            let (panicked, crashed, after) = rx.recv_timeout(GENEROUS).expect("hang");
            let first_worker = holders[0].result().unwrap();
            assert!(panicked.is_err_and(|e| e.is_panic()));
            let crashed = crashed.unwrap_err();
            assert!(matches!(crashed, Error::WorkerDied(_)), "{crashed:?}");
            let after = after.unwrap();
            assert_ne!(
                after, first_worker,
                "a fresh worker replaced the crashed one"
            );
            assert_ne!(after, std::process::id());
            for gate in &gates[1..] {
                gate.put(()).unwrap();
            }
            for fut in &holders {
                fut.result_timeout(GENEROUS).unwrap();
            }
            strength::assert_full_strength(&pool);
        });
    }
}

/// `cancel()` of a queued task that a callback is running inline kills its worker, as for
/// any running task: the wait ends cancelled, and the pool keeps its full strength.
#[test]
fn cancelling_a_task_while_a_callback_runs_it_inline_kills_it_and_costs_no_capacity() {
    watchdog(GENEROUS * 3, || {
        let pool = pool(1);
        let gate = Queue::new();
        let victim_gate = Queue::new();
        let started = Queue::new();
        let first = pool.submit(held, gate.clone()).unwrap();
        let victim = pool
            .submit(started_then_held, (started.clone(), victim_gate.clone()))
            .unwrap();
        let after = pool.submit(queued, ()).unwrap();
        let (tx, rx) = mpsc::channel();
        let watched = victim.clone();
        first.add_done_callback(move |_| tx.send(watched.result()).unwrap());
        gate.put(()).unwrap();
        let running_in = started.get_timeout(GENEROUS).expect("hang");
        assert_eq!(running_in, first.result().unwrap(), "run inline");
        assert!(
            victim.cancel(),
            "a running task is cancelled by killing its worker"
        );
        let seen = rx.recv_timeout(GENEROUS).expect("hang");
        assert!(seen.is_err_and(|e| e.is_cancelled()));
        assert!(victim.cancelled());
        let fresh = after.result_timeout(GENEROUS).unwrap();
        assert_ne!(fresh, running_in, "the killed worker was replaced");
        strength::assert_full_strength(&pool);
    });
}

/// `cancel()` from another thread at a seeded moment around the inline run: whichever wins,
/// the outcome is consistent (cancelled if and only if `cancel()` said so) and nothing hangs.
#[test]
fn cancel_racing_an_inline_run_leaves_a_consistent_outcome() {
    const ROUNDS: usize = 8;
    watchdog(GENEROUS * 4, || {
        let mut rng = StdRng::seed_from_u64(19);
        let pool = pool(1);
        for round in 0..ROUNDS {
            let gate = Queue::new();
            let first = pool.submit(held, gate.clone()).unwrap();
            let victim = pool.submit(queued, ()).unwrap();
            let (tx, rx) = mpsc::channel();
            let watched = victim.clone();
            first.add_done_callback(move |_| tx.send(watched.result()).unwrap());
            gate.put(()).unwrap();
            let spins = rng.random_range(0..200_000u32);
            for _ in 0..spins {
                std::hint::spin_loop();
            }
            let cancelled = victim.cancel();
            let seen = rx.recv_timeout(GENEROUS).expect("hang");
            match seen {
                Err(e) if e.is_cancelled() => {
                    assert!(
                        cancelled,
                        "round {round}: cancelled without cancel() saying so"
                    );
                }
                Ok(pid) => {
                    assert!(
                        !cancelled,
                        "round {round}: cancel() said yes, yet it finished"
                    );
                    assert_eq!(pid, first.result().unwrap(), "round {round}: run inline");
                }
                Err(other) => panic!("round {round}: {other:?}"),
            }
            assert_eq!(victim.cancelled(), cancelled, "round {round}");
        }
        strength::assert_full_strength(&pool);
    });
}

/// A thread outside the pool never runs a queued task itself: it waits for a slot.
#[test]
fn a_thread_outside_the_pool_waits_for_a_slot() {
    watchdog(GENEROUS * 2, || {
        let pool = pool(1);
        let gate = Queue::new();
        let first = pool.submit(held, gate.clone()).unwrap();
        let second = pool.submit(queued, ()).unwrap();
        // The only slot is held: had this thread run the task, it would be done.
        let early = second.result_timeout(Duration::from_millis(50));
        assert!(early.is_err_and(|e| e.is_timeout()), "ran outside its pool");
        gate.put(()).unwrap();
        assert_eq!(second.result().unwrap(), first.result().unwrap());
    });
}

/// A slot of one pool does not run another pool's queued task: it waits for that pool.
#[test]
fn a_callback_of_another_pool_waits_for_the_owning_pool() {
    watchdog(GENEROUS * 2, || {
        let owner = pool(1);
        let other = pool(1);
        let gate = Queue::new();
        let holder = owner.submit(held, gate.clone()).unwrap();
        let owned = owner.submit(queued, ()).unwrap();
        let (waiting_tx, waiting) = mpsc::channel();
        let (tx, rx) = mpsc::channel();
        let watched = owned.clone();
        let elsewhere = other.submit(queued, ()).unwrap();
        elsewhere.add_done_callback(move |_| {
            waiting_tx.send(()).unwrap();
            tx.send(watched.result()).unwrap();
        });
        waiting.recv_timeout(GENEROUS).expect("hang");
        gate.put(()).unwrap();
        let seen = rx.recv_timeout(GENEROUS).expect("hang").unwrap();
        assert_eq!(seen, holder.result().unwrap(), "run by the owning pool");
        assert_ne!(seen, elsewhere.result().unwrap());
    });
}

/// The future a [`Reentrant`] result's decoding waits for, and what that wait returned.
static AWAITED: Mutex<Option<Future<u32>>> = Mutex::new(None);
static AWAITED_GAVE: Mutex<Option<Result<u32, Error>>> = Mutex::new(None);

/// A result whose `Deserialize` (run here, on the slot thread, while the call still holds
/// the slot's worker) waits on the future in [`AWAITED`].
#[derive(Clone, Debug, Serialize)]
struct Reentrant(u32);

impl<'de> Deserialize<'de> for Reentrant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Reentrant, D::Error> {
        let value = u32::deserialize(deserializer)?;
        let awaited = AWAITED.lock().unwrap().take();
        if let Some(fut) = awaited {
            let gave = fut.result_timeout(GENEROUS);
            *AWAITED_GAVE.lock().unwrap() = Some(gave);
        }
        Ok(Reentrant(value))
    }
}

#[flotilla::task]
fn reentrant(gate: Queue<()>) -> Reentrant {
    gate.get_timeout(GENEROUS)
        .expect("the test never opened the gate");
    Reentrant(std::process::id())
}

/// The one wait a slot cannot serve: from inside the decoding of another call's result, whose
/// worker it still holds. The awaited task fails at once, naming the deadlock.
#[test]
fn a_wait_from_inside_a_result_decode_fails_fast_naming_the_deadlock() {
    watchdog(GENEROUS * 3, || {
        let pool = pool(1);
        let gate = Queue::new();
        let first = pool.submit(reentrant, gate.clone()).unwrap();
        let second = pool.submit(queued, ()).unwrap();
        *AWAITED.lock().unwrap() = Some(second.clone());
        gate.put(()).unwrap();
        let worker = first.result().unwrap().0;
        let gave = AWAITED_GAVE
            .lock()
            .unwrap()
            .take()
            .expect("the decode waited");
        let err = gave.unwrap_err();
        assert!(matches!(err, Error::InvalidOperation { .. }), "{err:?}");
        assert!(err.to_string().contains("deadlock"), "{err}");
        assert_eq!(second.result().unwrap_err().to_string(), err.to_string());
        // The slot and its worker carry on.
        assert_eq!(pool.submit(queued, ()).unwrap().result().unwrap(), worker);
        strength::assert_full_strength(&pool);
    });
}
