//! CPython's `Lib/test/test_concurrent_futures/` on `ProcessPoolExecutor`: the shared bodies
//! of `executor.py`, `test_wait.py`, `test_as_completed.py` and `test_shutdown.py` (in
//! `support/cpython_futures.rs`, as CPython's `create_executor_tests` runs them on every
//! executor), `test_process_pool.py` (`ProcessPoolExecutorTest`), `test_shutdown.py`
//! (`ProcessPoolShutdownTest`) and `test_deadlock.py` (`ExecutorDeadlockTest`). Each test is
//! named after its origin without the `test_` prefix. Workers are this test binary,
//! re-executed; there are no start methods (fork, forkserver, spawn), so each test runs once.
//!
//! Where flotilla differs on purpose, the test checks flotilla's documented promise instead
//! and says so:
//!
//! - **No `BrokenProcessPool`.** A worker that dies (killed, `exit`, a segfault, at any stage:
//!   decoding the arguments, running, encoding the result) fails only its own task with
//!   `Error::WorkerDied` naming the signal or exit code, and the pool goes on with a fresh
//!   worker. Python's `SystemExit` from a task is that too (exit code 1). Pickling errors are
//!   `Error::Codec`, a task's exception is `Error::Panicked` with its message and location.
//! - **Lazy map, one `Result` per item** (see the thread-pool file).
//! - **Dropping the pool waits** for the work still wanted: Python's "garbage collected"
//!   executor that fails its queued futures (gh-119592, gh-152967) runs them here.
//! - **`terminate_workers()` / `kill_workers()` cancel the queue**: a worker that exits at its
//!   `max_tasks_per_child` limit meanwhile is not replaced, and the queued futures are
//!   cancelled (Python fails them with `BrokenProcessPool`).
//! - `chunksize(0)` is taken as 1 (Python raises `ValueError` for -1).
//!
//! Not ported: `test_max_workers_too_large` (Windows), `test_sysconf_permission_error`,
//! `test_max_tasks_per_child_defaults_to_spawn_context`, `test_python_finalization_error`,
//! `test_ressources_gced_in_workers` and `test_free_reference` (Python object lifetimes),
//! `test_terminate_workers` / `test_kill_workers` / `test_force_shutdown_workers_invalid_op`
//! (mocks of a private method; `force_shutdown_workers` checks the real thing),
//! `test_failed_worker_replacement_breaks_pool` (mocks spawning), `test_saturation` and
//! `test_processes_terminate` (count a private process table),
//! `test_exit_during_result_unpickle_in_result_handler` (the result is decoded in the pool's
//! own process, so that `exit` would end the test), `test_gh105829...` (mocks a private
//! wake-up pipe; its promise, 100 items through `map`, is kept as `gh105829_map_of_100`),
//! and the `assert_python_ok` subprocess tests.

use std::path::PathBuf;

use flotilla::{Error, Executor, ProcessPoolExecutor, Shutdown};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[path = "support/cpython_futures.rs"]
mod cpython_futures;
use cpython_futures::{Gate, MulTask, PidTask, executor_tests, report};

#[path = "support/watchdog.rs"]
mod watchdog;

/// `ProcessPoolMixin`: a pool of 5 workers (`worker_count` in CPython's `util.py`).
fn pool() -> ProcessPoolExecutor {
    sized(5)
}

fn sized(workers: usize) -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(workers)
        .build()
        .unwrap()
}

fn recycled(workers: usize, tasks: usize) -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(workers)
        .max_tasks_per_child(tasks)
        .build()
        .unwrap()
}

executor_tests!(pool());

/// `ExecutorTest.test_max_workers_negative`.
#[test]
fn max_workers_negative() {
    cpython_futures::max_workers_zero_is_refused(|| {
        ProcessPoolExecutor::builder().max_workers(0).build()
    });
}

/// `ProcessPoolShutdownTest.test_context_manager_shutdown`.
#[test]
fn context_manager_shutdown() {
    cpython_futures::context_manager_shutdown(pool());
}

/// Reports to `started`, waits at `gate`, then (if it ever gets there) creates `finished`
/// and returns `value` (`_put_wait_put`, `_report_wait_return`).
#[flotilla::task]
fn report_wait_return(
    started: PathBuf,
    gate: PathBuf,
    finished: Option<PathBuf>,
    value: u32,
) -> u32 {
    report(&started);
    let mut byte = [0u8; 1];
    let _ = std::fs::File::open(&gate)
        .and_then(|mut fifo| std::io::Read::read_exact(&mut fifo, &mut byte));
    if let Some(finished) = finished {
        let _ = std::fs::write(finished, b"finished");
    }
    value
}

/// Submits `n` tasks that each report to the first gate, wait at the second, and return their
/// index.
fn held(pool: &ProcessPoolExecutor, n: u32) -> (Gate, Gate, Vec<flotilla::Future<u32>>) {
    let (started, gate) = (Gate::new(), Gate::new());
    let futures = (0..n)
        .map(|i| {
            pool.submit(ReportWaitReturnTask, (started.path(), gate.path(), None, i))
                .unwrap()
        })
        .collect();
    (started, gate, futures)
}

#[flotilla::task]
fn exit_with(code: i32) -> u32 {
    std::process::exit(code)
}

#[flotilla::task]
fn segfault() -> u32 {
    crash()
}

/// `faulthandler._sigsegv()`.
fn crash() -> ! {
    // SAFETY: raising a signal has no memory-safety preconditions; SIGSEGV's default action
    // ends this (worker) process, which is what the test wants.
    unsafe { libc::raise(libc::SIGSEGV) };
    unreachable!("SIGSEGV ends the process")
}

/// `ProcessPoolExecutorTest._test_traceback`.
#[flotilla::task]
fn raise_runtime_error() -> u32 {
    panic!("RuntimeError(123)") // some comment
}

/// `ProcessPoolExecutorTest.test_killed_child` and `test_broken_process_pool_traceback`:
/// Python breaks the whole pool when a worker is terminated. Here only the task on that worker
/// fails, with an error naming the signal; the tasks queued behind it and later submits run.
#[test]
fn killed_child() {
    let pool = sized(1);
    let worker = pool.submit(PidTask, ()).unwrap().result().unwrap();
    let (started, gate, futures) = held(&pool, 3);
    started.arrived(1);
    // SAFETY: kill has no memory-safety preconditions; `worker` is this pool's live worker,
    // busy in the task that just reported.
    let sent = unsafe { libc::kill(worker as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0);
    let err = futures[0].result().unwrap_err();
    let Error::WorkerDied(exit) = &err else {
        panic!("expected WorkerDied, got {err:?}");
    };
    assert_eq!(exit.exitcode(), Some(-libc::SIGTERM), "{err}");
    assert!(err.to_string().contains("SIGTERM"), "{err}");
    gate.release(2);
    assert_eq!(futures[1].result().unwrap(), 1);
    assert_eq!(futures[2].result().unwrap(), 2);
    assert_eq!(
        pool.submit(cpython_futures::PowTask, (2, 8))
            .unwrap()
            .result()
            .unwrap(),
        256
    );
}

/// `ProcessPoolExecutorTest.test_map_chunksize`.
#[test]
fn map_chunksize() {
    let pool = pool();
    let inputs = || (0..40u64).map(|i| (i, (i % 12) as u32));
    let reference: Vec<u64> = inputs().map(|(b, e)| b.pow(e)).collect();
    for chunksize in [6, 50, 40] {
        let got: Vec<u64> = pool
            .map(cpython_futures::PowTask, inputs())
            .chunksize(chunksize)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got, reference, "chunksize {chunksize}");
    }
    // CPython raises ValueError for a chunksize below 1; here zero yields one InvalidConfig
    // and submits nothing.
    let bad: Vec<_> = pool
        .map(cpython_futures::PowTask, inputs())
        .chunksize(0)
        .collect();
    assert_eq!(bad.len(), 1);
    assert!(matches!(bad[0], Err(flotilla::Error::InvalidConfig { .. })));
}

/// `ProcessPoolExecutorTest.test_traceback`: the task's panic comes back with its message and
/// the place it was raised.
#[test]
fn traceback() {
    let pool = sized(1);
    let err = pool
        .submit(RaiseRuntimeErrorTask, ())
        .unwrap()
        .result()
        .unwrap_err();
    let panic = err.panic().expect("a panic");
    assert_eq!(panic.message(), "RuntimeError(123)");
    let location = panic.location().unwrap_or_default();
    assert!(
        location.contains("cpython_concurrent_futures_process_pool.rs"),
        "{location}"
    );
}

/// `ProcessPoolExecutorTest.test_traceback_when_child_process_terminates_abruptly` (gh-139462):
/// the error says which exit code the worker ended with.
#[test]
fn traceback_when_child_process_terminates_abruptly() {
    let pool = sized(1);
    let err = pool.submit(ExitWithTask, 99).unwrap().result().unwrap_err();
    let Error::WorkerDied(exit) = &err else {
        panic!("expected WorkerDied, got {err:?}");
    };
    assert_eq!(exit.code(), Some(99));
    assert!(err.to_string().contains("99"), "{err}");
}

/// `ProcessPoolExecutorTest.test_idle_process_reuse_one`.
#[test]
fn idle_process_reuse_one() {
    let pool = pool();
    let pids: Vec<u32> = (0..3)
        .map(|_| pool.submit(PidTask, ()).unwrap().result().unwrap())
        .collect();
    assert!(pids.iter().all(|p| *p == pids[0]), "{pids:?}");
}

/// `ProcessPoolExecutorTest.test_idle_process_reuse_multiple`: waited and unwaited tasks in
/// turn start at most 3 workers.
#[test]
fn idle_process_reuse_multiple() {
    let pool = pool();
    let mut futures = Vec::new();
    for wait in [true, false, true, false, true, false] {
        let f = pool.submit(PidTask, ()).unwrap();
        if wait {
            f.result().unwrap();
        }
        futures.push(f);
    }
    let mut pids: Vec<u32> = futures.iter().map(|f| f.result().unwrap()).collect();
    pids.sort_unstable();
    pids.dedup();
    assert!(pids.len() <= 3, "{pids:?}");
    pool.shutdown(Shutdown::new());
}

/// `ProcessPoolExecutorTest.test_max_tasks_per_child`.
#[test]
fn max_tasks_per_child() {
    let pool = recycled(1, 3);
    let pids: Vec<u32> = (0..4)
        .map(|_| pool.submit(PidTask, ()).unwrap().result().unwrap())
        .collect();
    assert_eq!(pids[0], pids[1]);
    assert_eq!(pids[0], pids[2]);
    assert_ne!(pids[0], pids[3]);
    pool.shutdown(Shutdown::new());
}

/// `ProcessPoolExecutorTest.test_max_tasks_per_child_pending_tasks_gh115634`.
#[test]
fn max_tasks_per_child_pending_tasks_gh115634() {
    for (workers, max_tasks, tasks) in [(1, 2, 6u32), (2, 2, 8)] {
        let pool = recycled(workers, max_tasks);
        let futures: Vec<_> = (0..tasks)
            .map(|i| pool.submit(MulTask, (i, 2)).unwrap())
            .collect();
        let results: Vec<u32> = futures
            .iter()
            .map(|f| f.result_timeout(cpython_futures::GENEROUS).unwrap())
            .collect();
        assert_eq!(results, (0..tasks).map(|i| i * 2).collect::<Vec<_>>());
        pool.shutdown(Shutdown::new().cancel_futures(true));
    }
}

/// `_run_stranded_worker_exit_test`: one worker that retires after each task, three tasks,
/// the first held at a gate while the pool is shut down (`shutdown`) and/or dropped
/// (`drop_pool`, on a thread of its own: dropping waits). Every task still runs.
fn stranded_worker_exit(shutdown: bool, drop_pool: bool) {
    let pool = recycled(1, 1);
    let (started, gate, futures) = held(&pool, 3);
    started.arrived(1);
    if shutdown {
        pool.shutdown(Shutdown::new().wait(false));
    }
    let dropper = drop_pool.then(|| std::thread::spawn(move || drop(pool)));
    gate.release(3);
    let results: Vec<u32> = futures.iter().map(|f| f.result().unwrap()).collect();
    assert_eq!(results, [0, 1, 2]);
    if let Some(dropper) = dropper {
        dropper.join().unwrap();
    }
}

/// `ProcessPoolExecutorTest.test_shutdown_no_wait_max_tasks_gh119592`, both subtests.
#[test]
fn shutdown_no_wait_max_tasks_gh119592() {
    watchdog::watchdog(cpython_futures::GENEROUS, || {
        stranded_worker_exit(true, false);
        stranded_worker_exit(true, true);
    });
}

/// `ProcessPoolExecutorTest.test_gc_during_max_tasks_worker_exit_gh152967`.
#[test]
fn gc_during_max_tasks_worker_exit_gh152967() {
    watchdog::watchdog(cpython_futures::GENEROUS, || {
        stranded_worker_exit(false, true)
    });
}

/// `ProcessPoolExecutorTest.test_force_shutdown_during_max_tasks_worker_exit`: a worker at its
/// task limit during `terminate_workers()` is not replaced; the queued futures are cancelled.
#[test]
fn force_shutdown_during_max_tasks_worker_exit() {
    watchdog::watchdog(cpython_futures::GENEROUS, || {
        let pool = recycled(1, 1);
        let (started, gate, futures) = held(&pool, 3);
        started.arrived(1);
        pool.terminate_workers();
        assert!(futures[0].result().unwrap_err().is_worker_died());
        for f in &futures[1..] {
            assert!(f.result().unwrap_err().is_cancelled());
        }
        gate.release(3);
    });
}

/// `ProcessPoolExecutorTest.test_max_tasks_early_shutdown`.
#[test]
fn max_tasks_early_shutdown() {
    let pool = recycled(3, 1);
    let futures: Vec<_> = (0..6)
        .map(|i| pool.submit(MulTask, (i, i)).unwrap())
        .collect();
    pool.shutdown(Shutdown::new());
    for (i, f) in futures.iter().enumerate() {
        assert_eq!(f.result().unwrap(), (i * i) as u32);
    }
}

/// Python 3.14's `terminate_workers` and `kill_workers`.
#[derive(Clone, Copy, Debug)]
enum Force {
    Terminate,
    Kill,
}

impl Force {
    fn apply(self, pool: &ProcessPoolExecutor) {
        match self {
            Force::Terminate => pool.terminate_workers(),
            Force::Kill => pool.kill_workers(),
        }
    }
}

/// `ProcessPoolExecutorTest.test_force_shutdown_workers` (both operations): the running task
/// is stopped before it gets to "finished", by the right signal.
#[test]
fn force_shutdown_workers() {
    for (force, signal) in [
        (Force::Terminate, libc::SIGTERM),
        (Force::Kill, libc::SIGKILL),
    ] {
        let pool = sized(1);
        let (started, gate) = (Gate::new(), Gate::new());
        let finished = std::env::temp_dir().join(format!(
            "flotilla-cpython-finished-{}-{force:?}",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&finished);
        let future = pool
            .submit(
                ReportWaitReturnTask,
                (started.path(), gate.path(), Some(finished.clone()), 0),
            )
            .unwrap();
        started.arrived(1);
        force.apply(&pool);
        let err = future.result().unwrap_err();
        let Error::WorkerDied(exit) = &err else {
            panic!("{force:?}: expected WorkerDied, got {err:?}");
        };
        assert_eq!(exit.exitcode(), Some(-signal), "{force:?}: {err}");
        gate.release(1);
        drop(pool);
        assert!(!finished.exists(), "{force:?}: the task went on");
    }
}

/// `ProcessPoolExecutorTest.test_force_shutdown_workers_dead_workers`.
#[test]
fn force_shutdown_workers_dead_workers() {
    for force in [Force::Terminate, Force::Kill] {
        let pool = sized(1);
        let err = pool.submit(ExitWithTask, 1).unwrap().result().unwrap_err();
        assert!(err.is_worker_died(), "{err:?}");
        force.apply(&pool);
    }
}

/// `ProcessPoolExecutorTest.test_force_shutdown_workers_not_started_yet`: no worker was ever
/// started; the call only shuts the pool down.
#[test]
fn force_shutdown_workers_not_started_yet() {
    for force in [Force::Terminate, Force::Kill] {
        let pool = sized(1);
        force.apply(&pool);
        assert!(pool.submit(MulTask, (1, 1)).unwrap_err().is_shutdown());
    }
}

/// `ProcessPoolExecutorTest.test_force_shutdown_workers_stops_pool`.
#[test]
fn force_shutdown_workers_stops_pool() {
    for force in [Force::Terminate, Force::Kill] {
        let pool = sized(1);
        assert_eq!(pool.submit(MulTask, (0, 0)).unwrap().result().unwrap(), 0);
        force.apply(&pool);
        assert!(pool.submit(MulTask, (0, 0)).unwrap_err().is_shutdown());
        drop(pool);
    }
}

#[flotilla::task]
fn good_task_gh_132969(n: u32) -> u32 {
    n
}

#[flotilla::task]
fn failing_task_gh_132969(_n: u32) -> u32 {
    panic!("failing task")
}

/// `ProcessPoolShutdownTest._run_test_issue_gh_132969`: retiring workers, a failing task, then
/// `shutdown(wait=False)`; nothing fails or hangs after.
fn issue_gh_132969(workers: usize) -> u32 {
    let pool = recycled(workers, 1);
    let f1 = pool.submit(GoodTaskGh132969Task, 1).unwrap();
    let f2 = pool.submit(FailingTaskGh132969Task, 2).unwrap();
    let f3 = pool.submit(GoodTaskGh132969Task, 3).unwrap();
    let mut result = 0;
    for f in [f1, f2, f3] {
        match f.result() {
            Ok(n) => result += n,
            Err(err) => {
                assert!(err.is_panic(), "{err:?}");
                break;
            }
        }
    }
    pool.shutdown(Shutdown::new().wait(false));
    drop(pool);
    result
}

#[test]
fn shutdown_gh_132969_case_1() {
    assert_eq!(
        watchdog::watchdog(cpython_futures::GENEROUS, || issue_gh_132969(2)),
        1
    );
}

#[test]
fn shutdown_gh_132969_case_2() {
    assert_eq!(
        watchdog::watchdog(cpython_futures::GENEROUS, || issue_gh_132969(4)),
        1
    );
}

// --- test_deadlock.py: ExecutorDeadlockTest -----------------------------------------------

/// How a [`Bomb`] misbehaves, and where: `...AtPickle` when it is encoded, `...AtUnpickle`
/// when it is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum How {
    Harmless,
    CrashAtPickle,
    CrashAtUnpickle,
    ExitAtPickle,
    ExitAtUnpickle,
    ErrorAtPickle,
    ErrorAtUnpickle,
}

/// CPython's `CrashAtPickle`, `ExitAtUnpickle`, ... in one type: an argument or result whose
/// `Serialize` or `Deserialize` crashes, exits or fails.
#[derive(Debug)]
struct Bomb(How);

impl Serialize for Bomb {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            How::CrashAtPickle => crash(),
            How::ExitAtPickle => std::process::exit(1),
            How::ErrorAtPickle => Err(serde::ser::Error::custom("Error in pickle")),
            how => how.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Bomb {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match How::deserialize(deserializer)? {
            How::CrashAtUnpickle => crash(),
            How::ExitAtUnpickle => std::process::exit(1),
            How::ErrorAtUnpickle => Err(serde::de::Error::custom("Error in unpickle")),
            how => Ok(Bomb(how)),
        }
    }
}

/// `id(obj)`: takes a bomb as its argument.
#[flotilla::task]
fn id(bomb: Bomb) -> u32 {
    assert_eq!(bomb.0, How::Harmless, "only harmless bombs get this far");
    0
}

/// `_return_instance(cls)`.
#[flotilla::task]
fn return_instance(how: How) -> Bomb {
    Bomb(how)
}

#[flotilla::task]
fn raise_error() -> u32 {
    panic!("RuntimeError")
}

/// `_check_error`: a fresh pool of 2 runs one call; it fails with what `check` expects, within
/// the watchdog's time (a deadlock fails the test), and the pool shuts down.
fn check_error<R: Send + 'static>(
    submit: impl FnOnce(&ProcessPoolExecutor) -> flotilla::Future<R> + Send + 'static,
    check: impl FnOnce(&Error) -> bool + Send + 'static,
) {
    watchdog::watchdog(cpython_futures::GENEROUS, move || {
        let pool = sized(2);
        let err = match submit(&pool).into_result() {
            Ok(_) => panic!("the call succeeded"),
            Err(err) => err,
        };
        assert!(check(&err), "unexpected error: {err:?}");
        pool.shutdown(Shutdown::new());
    });
}

fn codec(err: &Error) -> bool {
    matches!(err, Error::Codec { .. })
}

fn signal(signal: i32) -> impl FnOnce(&Error) -> bool {
    move |err| matches!(err, Error::WorkerDied(exit) if exit.signal() == Some(signal))
}

fn exit_code(code: i32) -> impl FnOnce(&Error) -> bool {
    move |err| matches!(err, Error::WorkerDied(exit) if exit.code() == Some(code))
}

#[test]
fn error_at_task_pickle() {
    check_error(
        |p| p.submit(IdTask, Bomb(How::ErrorAtPickle)).unwrap(),
        codec,
    );
}

#[test]
fn exit_at_task_unpickle() {
    check_error(
        |p| p.submit(IdTask, Bomb(How::ExitAtUnpickle)).unwrap(),
        exit_code(1),
    );
}

#[test]
fn error_at_task_unpickle() {
    check_error(
        |p| p.submit(IdTask, Bomb(How::ErrorAtUnpickle)).unwrap(),
        codec,
    );
}

#[test]
fn crash_at_task_unpickle() {
    check_error(
        |p| p.submit(IdTask, Bomb(How::CrashAtUnpickle)).unwrap(),
        signal(libc::SIGSEGV),
    );
}

#[test]
fn crash_during_func_exec_on_worker() {
    check_error(
        |p| p.submit(SegfaultTask, ()).unwrap(),
        signal(libc::SIGSEGV),
    );
}

#[test]
fn exit_during_func_exec_on_worker() {
    check_error(|p| p.submit(ExitWithTask, 1).unwrap(), exit_code(1));
}

#[test]
fn error_during_func_exec_on_worker() {
    check_error(|p| p.submit(RaiseErrorTask, ()).unwrap(), Error::is_panic);
}

#[test]
fn crash_during_result_pickle_on_worker() {
    check_error(
        |p| p.submit(ReturnInstanceTask, How::CrashAtPickle).unwrap(),
        signal(libc::SIGSEGV),
    );
}

#[test]
fn exit_during_result_pickle_on_worker() {
    check_error(
        |p| p.submit(ReturnInstanceTask, How::ExitAtPickle).unwrap(),
        exit_code(1),
    );
}

#[test]
fn error_during_result_pickle_on_worker() {
    check_error(
        |p| p.submit(ReturnInstanceTask, How::ErrorAtPickle).unwrap(),
        codec,
    );
}

#[test]
fn error_during_result_unpickle_in_result_handler() {
    check_error(
        |p| p.submit(ReturnInstanceTask, How::ErrorAtUnpickle).unwrap(),
        codec,
    );
}

/// `test_shutdown_deadlock`: a worker that crashes after the shutdown call does not make the
/// waiting shutdown hang, and the task's future says why.
#[test]
fn shutdown_deadlock() {
    watchdog::watchdog(cpython_futures::GENEROUS, || {
        let pool = sized(2);
        let f = pool.submit(SegfaultTask, ()).unwrap();
        pool.shutdown(Shutdown::new());
        assert!(signal(libc::SIGSEGV)(&f.result().unwrap_err()));
    });
}

/// `test_shutdown_deadlock_pickle` (bpo-39104).
#[test]
fn shutdown_deadlock_pickle() {
    watchdog::watchdog(cpython_futures::GENEROUS, || {
        let pool = sized(2);
        assert_eq!(pool.submit(MulTask, (6, 7)).unwrap().result().unwrap(), 42);
        let f = pool.submit(IdTask, Bomb(How::ErrorAtPickle)).unwrap();
        pool.shutdown(Shutdown::new().wait(false));
        assert!(codec(&f.result().unwrap_err()));
    });
}

#[flotilla::task]
fn crash_with_data(_data: String) -> u32 {
    crash()
}

/// `test_crash_big_data` (gh-94777): workers crash while large arguments are being written to
/// them; every item fails with the crash, and nothing hangs.
#[test]
fn crash_big_data() {
    watchdog::watchdog(cpython_futures::GENEROUS, || {
        let pool = sized(2);
        let data = "a".repeat((4 << 20) + 1);
        let results: Vec<_> = pool.map(CrashWithDataTask, vec![data; 10]).collect();
        assert_eq!(results.len(), 10);
        for r in results {
            assert!(signal(libc::SIGSEGV)(&r.unwrap_err()));
        }
        pool.shutdown(Shutdown::new());
    });
}

/// `test_gh105829_should_not_deadlock_if_wakeup_pipe_full`, its promise only: 100 items through
/// `map` come back.
#[test]
fn gh105829_map_of_100() {
    watchdog::watchdog(cpython_futures::GENEROUS, || {
        let pool = sized(2);
        let got: Vec<i64> = pool
            .map(cpython_futures::AbsTask, 0..100)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got.len(), 100);
    });
}
