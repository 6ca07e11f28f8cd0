//! What dropping does on each executor, the same on the thread pool and the process pool:
//!
//! - dropping the executor is Python's `with`: it waits for every task submitted whose future
//!   is still held, unless an explicit `shutdown` said not to wait;
//! - dropping the last handle of a future cancels its task: a queued task never runs, a
//!   running process task is killed, a running thread task runs on unwatched.
//!
//! A blocked task blocks on a FIFO the test writes to, so "the task cannot have finished yet"
//! holds by construction, not by timing.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use flotilla::sync::Event;
use flotilla::{Executor, ProcessPoolExecutor, Shutdown, ThreadPoolExecutor};

#[path = "support/scratch.rs"]
mod support_scratch;
use support_scratch::scratch_dir;

#[path = "support/watchdog.rs"]
mod support_watchdog;
use support_watchdog::watchdog;

const GENEROUS: Duration = Duration::from_secs(30);
/// How long a drop that should block is given to return wrongly.
const MISBEHAVE: Duration = Duration::from_millis(300);

/// Writes this task's process id to `pid_file`, then blocks until someone writes to the FIFO
/// `gate` and returns what was written.
#[flotilla::task]
fn report_then_block(pid_file: String, gate: String) -> String {
    std::fs::write(&pid_file, std::process::id().to_string()).unwrap();
    std::fs::read_to_string(gate).unwrap()
}

#[flotilla::task]
fn echo(x: u32) -> u32 {
    x
}

/// Creates the file `path`: a task whose running leaves a trace.
#[flotilla::task]
fn touch(path: String) {
    std::fs::write(path, "ran").unwrap();
}

/// A scratch directory with a FIFO named `gate` in it.
struct Gate {
    dir: PathBuf,
    fifo: PathBuf,
}

impl Gate {
    fn new(tag: &str) -> Gate {
        let dir = scratch_dir(tag);
        let fifo = dir.join("gate");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        Gate { dir, fifo }
    }

    fn args(&self) -> (String, String) {
        let pid = self.dir.join("pid").to_str().unwrap().to_owned();
        (pid, self.fifo.to_str().unwrap().to_owned())
    }

    /// Opens the gate: blocks until the blocked task opened the FIFO to read.
    fn open(&self, text: &str) {
        std::fs::write(&self.fifo, text).unwrap();
    }

    /// The process id the blocked task reported, once it has (deadline-bounded).
    fn started_pid(&self) -> u32 {
        let path = self.dir.join("pid");
        let deadline = Instant::now() + GENEROUS;
        loop {
            if let Ok(text) = std::fs::read_to_string(&path)
                && let Ok(pid) = text.parse()
            {
                return pid;
            }
            assert!(Instant::now() < deadline, "the task never started");
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn threads() -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap()
}

fn processes() -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap()
}

/// Drops `pool` on another thread; the receiver gets a message once the drop returned.
fn drop_elsewhere<E: Send + 'static>(pool: E) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        drop(pool);
        tx.send(()).unwrap();
    });
    rx
}

/// Decision for every backend: `Drop` waits for the running task and the queued one.
fn drop_waits_for_what_was_submitted<E: Executor + Send + 'static>(pool: E) {
    let gate = Gate::new("drop-waits");
    let (pid, fifo) = gate.args();
    let running = pool.submit(report_then_block, (pid, fifo)).unwrap();
    let queued = pool.submit(echo, 7).unwrap();
    let dropped = drop_elsewhere(pool);
    assert!(
        dropped.recv_timeout(MISBEHAVE).is_err(),
        "Drop returned while a task it must wait for was blocked"
    );
    gate.open("go");
    dropped.recv_timeout(GENEROUS).expect("Drop never returned");
    // Both were finished when Drop returned: no wait needed.
    assert_eq!(running.result_timeout(Duration::ZERO).unwrap(), "go");
    assert_eq!(queued.result_timeout(Duration::ZERO).unwrap(), 7);
}

#[test]
fn dropping_a_thread_pool_waits_for_what_was_submitted() {
    watchdog(
        GENEROUS * 2,
        || drop_waits_for_what_was_submitted(threads()),
    );
}

#[test]
fn dropping_a_process_pool_waits_for_what_was_submitted() {
    watchdog(GENEROUS * 2, || {
        drop_waits_for_what_was_submitted(processes())
    });
}

/// After `shutdown(wait(false))`, `Drop` does not wait either; the tasks still finish.
fn drop_after_a_non_waiting_shutdown_returns_at_once<E: Executor + Send + 'static>(pool: E) {
    let gate = Gate::new("drop-nowait");
    let (pid, fifo) = gate.args();
    let running = pool.submit(report_then_block, (pid, fifo)).unwrap();
    let queued = pool.submit(echo, 8).unwrap();
    gate.started_pid();
    pool.shutdown(Shutdown::new().wait(false));
    drop_elsewhere(pool)
        .recv_timeout(GENEROUS)
        .expect("Drop waited after shutdown(wait(false))");
    gate.open("late");
    assert_eq!(running.result_timeout(GENEROUS).unwrap(), "late");
    assert_eq!(queued.result_timeout(GENEROUS).unwrap(), 8);
}

#[test]
fn dropping_a_thread_pool_after_a_non_waiting_shutdown_returns_at_once() {
    watchdog(GENEROUS * 2, || {
        drop_after_a_non_waiting_shutdown_returns_at_once(threads())
    });
}

#[test]
fn dropping_a_process_pool_after_a_non_waiting_shutdown_returns_at_once() {
    watchdog(GENEROUS * 2, || {
        drop_after_a_non_waiting_shutdown_returns_at_once(processes())
    });
}

/// A queued task whose last handle is dropped never runs, on either pool; the one blocking the
/// only worker finishes normally.
fn a_dropped_queued_task_never_runs<E: Executor>(pool: &E) {
    let gate = Gate::new("drop-queued");
    let (pid, fifo) = gate.args();
    let running = pool.submit(report_then_block, (pid, fifo)).unwrap();
    let marker = gate.dir.join("ran");
    let dropped = pool
        .submit(touch, marker.to_str().unwrap().to_owned())
        .unwrap();
    drop(dropped);
    gate.open("go");
    assert_eq!(running.result_timeout(GENEROUS).unwrap(), "go");
    // The pool has one worker: a task submitted now runs after the dropped one's turn.
    assert_eq!(
        pool.submit(echo, 1)
            .unwrap()
            .result_timeout(GENEROUS)
            .unwrap(),
        1
    );
    assert!(!marker.exists(), "the dropped task ran");
}

#[test]
fn a_dropped_queued_task_never_runs_on_a_thread_pool() {
    watchdog(
        GENEROUS * 2,
        || a_dropped_queued_task_never_runs(&threads()),
    );
}

#[test]
fn a_dropped_queued_task_never_runs_on_a_process_pool() {
    watchdog(GENEROUS * 2, || {
        a_dropped_queued_task_never_runs(&processes())
    });
}

/// True once `/proc/<pid>` is gone or a zombie (deadline-bounded).
fn dies(pid: u32) -> bool {
    let deadline = Instant::now() + GENEROUS;
    while Instant::now() < deadline {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat)
                if stat
                    .rsplit(')')
                    .next()
                    .is_some_and(|s| s.trim_start().starts_with('Z')) =>
            {
                return true;
            }
            Ok(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
    false
}

/// An awaited process-pool future given up by `tokio::time::timeout` kills its running task,
/// and the pool runs the next task on a fresh worker.
#[test]
fn a_running_process_task_whose_awaited_future_times_out_is_killed() {
    watchdog(GENEROUS * 2, || {
        let pool = processes();
        let gate = Gate::new("drop-running");
        let (pid, fifo) = gate.args();
        let future = pool.submit(report_then_block, (pid, fifo)).unwrap();
        let worker = gate.started_pid();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let outcome =
            rt.block_on(async { tokio::time::timeout(Duration::from_millis(20), future).await });
        assert!(outcome.is_err(), "the task cannot finish: its gate is shut");
        assert!(
            dies(worker),
            "the worker of the dropped task is still alive"
        );
        assert_eq!(
            pool.submit(echo, 5)
                .unwrap()
                .result_timeout(GENEROUS)
                .unwrap(),
            5
        );
    });
}

/// A running thread task whose future is dropped runs to its end (threads cannot be stopped);
/// dropping the pool waits for it, as it does for every running task.
#[test]
fn a_running_thread_task_whose_future_is_dropped_runs_to_its_end() {
    watchdog(GENEROUS, || {
        let pool = threads();
        let (started_tx, started) = mpsc::channel();
        let gate = Arc::new(Event::new());
        let finished = Arc::new(AtomicBool::new(false));
        let (g, f) = (Arc::clone(&gate), Arc::clone(&finished));
        let future = pool
            .spawn(move || {
                started_tx.send(()).unwrap();
                assert!(g.wait_timeout(GENEROUS));
                f.store(true, Ordering::SeqCst);
            })
            .unwrap();
        started.recv().unwrap();
        drop(future);
        gate.set();
        drop(pool);
        assert!(finished.load(Ordering::SeqCst));
    });
}
