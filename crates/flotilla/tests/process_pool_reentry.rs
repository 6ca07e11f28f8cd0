//! Waiting on your own pool, on a process pool: a done-callback runs on one of the pool's
//! slot threads, and when it blocks on a future of the same pool that is still queued (with
//! `max_workers(1)` no other slot will ever take it), that slot thread should run the task
//! itself, on its own worker process, as a thread pool's threads do
//! (`thread_pool_reentry.rs`). Not yet: today the wait hangs (the watchdog reports it), so
//! the test is ignored until the process pool's queued calls can be run inline.

use std::sync::mpsc;
use std::time::Duration;

use flotilla::process::Queue;
use flotilla::{Executor, ProcessPoolExecutor};

#[path = "support/watchdog.rs"]
mod support_watchdog;
use support_watchdog::watchdog;

const GENEROUS: Duration = Duration::from_secs(30);

/// Blocks until the test lets it go, so that the callback below is added while it runs.
#[flotilla::task]
fn held(gate: Queue<()>) -> u32 {
    gate.get_timeout(GENEROUS)
        .expect("the test never opened the gate");
    1
}

#[flotilla::task]
fn queued() -> u32 {
    std::process::id()
}

#[test]
#[ignore = "known hang: a process pool's slot thread does not yet run a queued call of its own pool inline"]
fn a_done_callback_waiting_on_a_queued_task_of_the_same_process_pool_runs_it() {
    watchdog(GENEROUS * 2, || {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap();
        let gate = Queue::new();
        let first = pool.submit(HeldTask, gate.clone()).unwrap();
        let second = pool.submit(QueuedTask, ()).unwrap();
        let watched = second.clone();
        let (tx, rx) = mpsc::channel();
        first.add_done_callback(move |_| {
            tx.send(watched.result(None)).unwrap();
        });
        gate.put(()).unwrap();
        let from_callback = rx.recv_timeout(GENEROUS).expect("hang").unwrap();
        assert_eq!(first.result(None).unwrap(), 1);
        // It ran once, in a worker process (not in this one), and the callback saw its value.
        assert_eq!(second.result(None).unwrap(), from_callback);
        assert_ne!(from_callback, std::process::id());
    });
}
