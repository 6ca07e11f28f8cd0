//! What the ports of CPython's `Lib/test/test_concurrent_futures/` share: the tasks of
//! `executor.py`, `test_wait.py`, `test_as_completed.py` and `test_shutdown.py`, a gate that
//! holds tasks on threads and in worker processes alike, and the test bodies that run
//! unchanged on every `Executor` (`create_executor_tests` in CPython's `util.py`).
//!
//! The gate is a FIFO: a task blocks reading one byte from it, the test releases tasks by
//! writing bytes. The test keeps a read-write descriptor open, so a task's open never blocks
//! and a byte written before the task reads it waits in the pipe: no sleeps, no races.

#![allow(dead_code)]
// each test file uses its own subset
// Futures hash and compare by identity (the task they stand for); the state behind them may
// change, but not what they are keyed by.
#![allow(clippy::mutable_key_type)]

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use flotilla::{
    Error, Executor, Future, ReturnWhen, Shutdown, as_completed, as_completed_timeout, wait,
    wait_timeout,
};

#[path = "futures.rs"]
mod premade;
#[path = "scratch.rs"]
mod scratch;
#[allow(unused_imports)] // each test file uses its own subset
pub(crate) use premade::{cancelled, failed, finished, pending, running};

/// Long enough for anything that is not a hang, on a loaded machine.
pub(crate) const GENEROUS: Duration = Duration::from_secs(60);

/// A FIFO that holds the tasks that read from it until bytes are written.
pub(crate) struct Gate {
    path: PathBuf,
    keep: File,
}

impl Gate {
    pub(crate) fn new() -> Gate {
        let path = scratch::scratch_dir("cpython-gate").join("gate");
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: the path is a valid NUL-terminated string that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        // Read-write: opening never blocks, and the FIFO keeps what is written until read.
        let keep = File::options().read(true).write(true).open(&path).unwrap();
        Gate { path, keep }
    }

    /// What a task is given to wait on.
    pub(crate) fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Blocks until tasks have reported `n` times through [`report`] on this gate's path.
    pub(crate) fn arrived(&self, n: usize) {
        let mut bytes = vec![0u8; n];
        (&self.keep).read_exact(&mut bytes).unwrap();
    }

    /// Lets `n` waiting (or future) tasks through.
    pub(crate) fn release(&self, n: usize) {
        (&self.keep).write_all(&vec![b'g'; n]).unwrap();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Blocks until the gate at `path` lets one through.
fn pass(path: &std::path::Path) {
    let mut byte = [0u8; 1];
    let _ = File::open(path).and_then(|mut fifo| fifo.read_exact(&mut byte));
}

/// Tells the test holding the gate at `path` that a task got here (see [`Gate::arrived`]).
pub(crate) fn report(path: &std::path::Path) {
    if let Ok(mut fifo) = File::options().write(true).open(path) {
        let _ = fifo.write_all(b"r");
    }
}

#[flotilla::task]
pub(crate) fn mul(x: u32, y: u32) -> u32 {
    x * y
}

#[flotilla::task]
pub(crate) fn pow(base: u64, exp: u32) -> u64 {
    base.pow(exp)
}

/// `divmod(a, b)[0]`: panics (Python's `ZeroDivisionError`) when `b` is 0.
#[flotilla::task]
pub(crate) fn div(a: u32, b: u32) -> u32 {
    a / b
}

/// `event.wait`: blocks on the gate, returns 0.
#[flotilla::task]
pub(crate) fn wait_gate(gate: PathBuf) -> u32 {
    pass(&gate);
    0
}

/// `wait_and_raise(e)`: blocks on the gate, then fails.
#[flotilla::task]
pub(crate) fn wait_and_raise(gate: PathBuf) -> u32 {
    pass(&gate);
    panic!("this is an exception")
}

/// `abs`.
#[flotilla::task]
pub(crate) fn abs(x: i64) -> i64 {
    x.abs()
}

/// The worker's process id (its thread's process on a thread pool).
#[flotilla::task]
pub(crate) fn pid() -> u32 {
    std::process::id()
}

/// `time.sleep(0) if gate is None else event.wait()`.
#[flotilla::task]
pub(crate) fn maybe_wait(gate: Option<PathBuf>) -> u32 {
    if let Some(gate) = gate {
        pass(&gate);
    }
    0
}

fn set<T>(futures: impl IntoIterator<Item = Future<T>>) -> HashSet<Future<T>> {
    futures.into_iter().collect()
}

// --- executor.py: ExecutorTest ------------------------------------------------------------

/// `ExecutorTest.test_submit`.
pub(crate) fn submit(executor: &impl Executor) {
    let future = executor.submit(pow, (2, 8)).unwrap();
    assert_eq!(future.result().unwrap(), 256);
}

/// `ExecutorTest.test_map`, with and without a chunksize.
pub(crate) fn map(executor: &impl Executor) {
    let expected: Vec<u64> = (0..10u64).map(|i| i.pow(i as u32)).collect();
    let inputs = || (0..10u64).map(|i| (i, i as u32));
    let plain: Vec<u64> = executor
        .map(pow, inputs())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(plain, expected);
    let chunked: Vec<u64> = executor
        .map(pow, inputs())
        .chunksize(3)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(chunked, expected);
}

/// `ExecutorTest.test_map_exception`. Python's iterator raises at the failing item and stops;
/// flotilla's map yields each item its own `Result`, so the item after the failure still
/// comes (the documented promise of `Executor::map`).
pub(crate) fn map_exception(executor: &impl Executor) {
    let mut results = executor.map(div, [(1, 2), (1, 3), (1, 0), (1, 5)]);
    assert_eq!(results.next().unwrap().unwrap(), 0);
    assert_eq!(results.next().unwrap().unwrap(), 0);
    let err = results.next().unwrap().unwrap_err();
    assert!(err.is_panic(), "{err:?}");
    assert!(err.to_string().contains("divide by zero"), "{err}");
    assert_eq!(results.next().unwrap().unwrap(), 0);
    assert!(results.next().is_none());
}

/// `ExecutorTest.test_map_timeout`: the third item blocks until after the map's time limit.
pub(crate) fn map_timeout(executor: &impl Executor) {
    let gate = Gate::new();
    let mut got = Vec::new();
    let mut timed_out = false;
    for item in executor
        .map(maybe_wait, [None, None, Some(gate.path())])
        .timeout(Duration::from_secs(5))
    {
        match item {
            Ok(value) => got.push(value),
            Err(err) => {
                assert!(err.is_timeout(), "{err:?}");
                timed_out = true;
            }
        }
    }
    assert!(timed_out, "expected a timeout");
    assert_eq!(got, [0, 0]);
    gate.release(1);
}

/// `ExecutorTest.test_shutdown_race_issue12456`: a map made (flotilla's is lazy: nothing is
/// submitted) and then a shutdown; nothing hangs.
pub(crate) fn shutdown_race_issue12456(executor: &impl Executor) {
    let workers = executor.max_workers() as i64;
    let pending = executor.map(abs, vec![2; workers as usize + 1]);
    executor.shutdown(Shutdown::new());
    drop(pending);
}

// --- test_wait.py: WaitTests --------------------------------------------------------------
//
// Python has a CANCELLED state that is not yet "notified" (CANCELLED_FUTURE), which `wait`
// counts as not done. flotilla's `cancel()` notifies at once, so both CANCELLED_FUTURE and
// CANCELLED_AND_NOTIFIED_FUTURE are a cancelled future here, and done; the tests below put
// Python's CANCELLED_FUTURE in `done` for that reason.

/// `WaitTests.test_20369`: one future given twice is one future.
pub(crate) fn wait_20369(executor: &impl Executor) {
    let future = executor.submit(mul, (1, 2)).unwrap();
    let (done, not_done) = wait([future.clone(), future.clone()], ReturnWhen::AllCompleted);
    assert_eq!(set(done), set([future]));
    assert!(not_done.is_empty());
}

/// `WaitTests.test_first_completed`.
pub(crate) fn wait_first_completed(executor: &impl Executor) {
    let gate = Gate::new();
    let future1 = executor.submit(mul, (21, 2)).unwrap();
    let future2 = executor.submit(wait_gate, gate.path()).unwrap();
    // Python's CANCELLED_FUTURE would be in not_done; here it is done (see above), so the
    // test waits for future1 first to keep `FirstCompleted` meaningful.
    assert_eq!(future1.result().unwrap(), 42);
    let (done, not_done) = wait(
        [future1.clone(), future2.clone()],
        ReturnWhen::FirstCompleted,
    );
    assert_eq!(set(done), set([future1]));
    assert_eq!(set(not_done), set([future2.clone()]));
    gate.release(1);
    assert_eq!(future2.result().unwrap(), 0);
}

/// `WaitTests.test_first_completed_some_already_completed`.
pub(crate) fn wait_first_completed_some_already_completed(executor: &impl Executor) {
    let gate = Gate::new();
    let future1 = executor.submit(wait_gate, gate.path()).unwrap();
    let (c, s) = (cancelled(), finished(42));
    let (done, not_done) = wait(
        [c.clone(), s.clone(), future1.clone()],
        ReturnWhen::FirstCompleted,
    );
    assert_eq!(set(done), set([c, s]));
    assert_eq!(set(not_done), set([future1.clone()]));
    gate.release(1);
    future1.result().unwrap();
}

/// `WaitTests.test_first_exception`.
pub(crate) fn wait_first_exception(executor: &impl Executor) {
    let (gate1, gate2) = (Gate::new(), Gate::new());
    let future1 = executor.submit(mul, (2, 21)).unwrap();
    let future2 = executor.submit(wait_and_raise, gate1.path()).unwrap();
    let future3 = executor.submit(wait_gate, gate2.path()).unwrap();
    // Ensure that future1 is completed before future2 finishes.
    let first = future1.clone();
    let helper = std::thread::scope(|s| {
        s.spawn(|| {
            first.result().unwrap();
            gate1.release(1);
        });
        wait(
            [future1.clone(), future2.clone(), future3.clone()],
            ReturnWhen::FirstException,
        )
    });
    let (done, not_done) = helper;
    assert_eq!(set(done), set([future1, future2]));
    assert_eq!(set(not_done), set([future3.clone()]));
    gate2.release(1);
    future3.result().unwrap();
}

/// `WaitTests.test_first_exception_some_already_complete`.
pub(crate) fn wait_first_exception_some_already_complete(executor: &impl Executor) {
    let gate = Gate::new();
    let future1 = executor.submit(div, (21, 0)).unwrap();
    let future2 = executor.submit(wait_gate, gate.path()).unwrap();
    let (s, c, cn) = (finished(42), cancelled(), cancelled());
    let (done, not_done) = wait(
        [
            s.clone(),
            c.clone(),
            cn.clone(),
            future1.clone(),
            future2.clone(),
        ],
        ReturnWhen::FirstException,
    );
    assert_eq!(set(done), set([s, c, cn, future1]));
    assert_eq!(set(not_done), set([future2.clone()]));
    gate.release(1);
    future2.result().unwrap();
}

/// `WaitTests.test_first_exception_one_already_failed`.
pub(crate) fn wait_first_exception_one_already_failed(executor: &impl Executor) {
    let gate = Gate::new();
    let future1 = executor.submit(wait_gate, gate.path()).unwrap();
    let e = failed();
    let (done, not_done) = wait([e.clone(), future1.clone()], ReturnWhen::FirstException);
    assert_eq!(set(done), set([e]));
    assert_eq!(set(not_done), set([future1.clone()]));
    gate.release(1);
    future1.result().unwrap();
}

/// `WaitTests.test_all_completed`.
pub(crate) fn wait_all_completed(executor: &impl Executor) {
    let future1 = executor.submit(div, (2, 0)).unwrap();
    let future2 = executor.submit(mul, (2, 21)).unwrap();
    let all = [finished(42), cancelled(), failed(), future1, future2];
    let (done, not_done) = wait(all.clone(), ReturnWhen::AllCompleted);
    assert_eq!(set(done), set(all));
    assert!(not_done.is_empty());
}

/// `WaitTests.test_timeout`.
pub(crate) fn wait_test_timeout(executor: &impl Executor) {
    let gate = Gate::new();
    let future = executor.submit(wait_gate, gate.path()).unwrap();
    let already = [cancelled(), failed(), finished(42)];
    let mut all = already.to_vec();
    all.push(future.clone());
    let (done, not_done) = wait_timeout(all, ReturnWhen::AllCompleted, Duration::from_millis(50));
    assert_eq!(set(done), set(already));
    assert_eq!(set(not_done), set([future.clone()]));
    gate.release(1);
    future.result().unwrap();
}

// --- test_as_completed.py: AsCompletedTests -----------------------------------------------

/// `AsCompletedTests.test_no_timeout`.
pub(crate) fn as_completed_no_timeout(executor: &impl Executor) {
    let future1 = executor.submit(mul, (2, 21)).unwrap();
    let future2 = executor.submit(mul, (7, 6)).unwrap();
    let all = [cancelled(), failed(), finished(42), future1, future2];
    let completed: HashSet<_> = as_completed(all.clone()).collect::<Result<_, _>>().unwrap();
    assert_eq!(completed, set(all));
}

/// `AsCompletedTests.test_future_times_out`, with timeouts 0 and 100 ms.
pub(crate) fn as_completed_future_times_out(executor: &impl Executor) {
    for timeout in [Duration::ZERO, Duration::from_millis(100)] {
        let gate = Gate::new();
        let already = [cancelled(), failed(), finished(42)];
        let future = executor.submit(wait_gate, gate.path()).unwrap();
        let mut all = already.to_vec();
        all.push(future.clone());
        let mut completed = HashSet::new();
        let mut timed_out = false;
        for item in as_completed_timeout(all, timeout) {
            match item {
                Ok(f) => {
                    completed.insert(f);
                }
                Err(err) => {
                    assert!(err.is_timeout(), "{err:?}");
                    timed_out = true;
                }
            }
        }
        assert!(timed_out, "{timeout:?}");
        assert_eq!(completed, set(already), "{timeout:?}");
        gate.release(1);
        future.result().unwrap();
    }
}

/// `AsCompletedTests.test_duplicate_futures`: a future given three times is yielded once.
pub(crate) fn as_completed_duplicate_futures(executor: &impl Executor) {
    let future1 = executor.submit(mul, (3, 3)).unwrap();
    let completed: Vec<_> = as_completed(std::iter::repeat_n(future1, 3))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(completed.len(), 1);
}

// --- test_shutdown.py: ExecutorShutdownTest -----------------------------------------------

/// `ExecutorShutdownTest.test_run_after_shutdown`: Python's `RuntimeError` is
/// `Error::Shutdown`.
pub(crate) fn run_after_shutdown(executor: &impl Executor) {
    executor.shutdown(Shutdown::new());
    assert!(executor.submit(pow, (2, 5)).unwrap_err().is_shutdown());
}

/// `ExecutorShutdownTest.test_hang_issue12364`: 50 tasks, a waiting shutdown, every result.
pub(crate) fn hang_issue12364(executor: &impl Executor) {
    let futures: Vec<_> = (0..50)
        .map(|i| executor.submit(mul, (i, 2)).unwrap())
        .collect();
    executor.shutdown(Shutdown::new());
    for (i, f) in futures.into_iter().enumerate() {
        assert_eq!(f.result().unwrap(), i as u32 * 2);
    }
}

/// `ExecutorShutdownTest.test_cancel_futures`: 50 tasks held at a gate, a shutdown that
/// cancels. Python can only say "more than 20" were cancelled; here the tasks cannot finish
/// before the gate opens, so all but those already running (at most `max_workers`) are.
pub(crate) fn cancel_futures(executor: &impl Executor) {
    let gate = Gate::new();
    let futures: Vec<_> = (0..50)
        .map(|_| executor.submit(wait_gate, gate.path()).unwrap())
        .collect();
    executor.shutdown(Shutdown::new().wait(false).cancel_futures(true));
    gate.release(50);
    let cancelled = futures.iter().filter(|f| f.cancelled()).count();
    assert!(
        cancelled >= 50 - executor.max_workers(),
        "{cancelled} cancelled"
    );
    let others: Vec<_> = futures.iter().filter(|f| !f.cancelled()).collect();
    for f in &others {
        assert_eq!(f.result().unwrap(), 0);
    }
}

/// `ExecutorShutdownTest.test_hang_gh83386`: `shutdown(wait=False)` with a running task does
/// not hang, and the task still completes its future.
pub(crate) fn hang_gh83386(executor: &impl Executor) {
    let gate = Gate::new();
    let future = executor.submit(wait_gate, gate.path()).unwrap();
    while !future.running() {
        std::thread::yield_now();
    }
    executor.shutdown(Shutdown::new().wait(false));
    gate.release(1);
    assert_eq!(future.result().unwrap(), 0);
}

/// `ExecutorShutdownTest.test_hang_gh94440`: a task submitted and cancelled right before a
/// waiting shutdown does not make it hang.
pub(crate) fn hang_gh94440(executor: &impl Executor) {
    executor.submit(mul, (1, 1)).unwrap().result().unwrap();
    executor.submit(mul, (1, 1)).unwrap().cancel();
    executor.shutdown(Shutdown::new());
}

/// Python's `with executor: ... map(abs, range(-5, 5))`: the pool is dropped at the end of
/// the block (`test_context_manager_shutdown`).
pub(crate) fn context_manager_shutdown(executor: impl Executor) {
    let got: Vec<i64> = executor.map(abs, -5..5).collect::<Result<_, _>>().unwrap();
    assert_eq!(got, [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]);
    drop(executor);
}

/// `test_del_shutdown` / `test_shutdown_no_wait`. Python's map submits every item at once,
/// so its results are there after `del executor` or `shutdown(wait=False)`. flotilla's map
/// is lazy and borrows the executor (the pool cannot be dropped while a map of it lives: the
/// compiler says so): what was submitted before a `shutdown(wait=false)` completes, and what
/// the map would submit afterwards fails with `Error::Shutdown`.
pub(crate) fn shutdown_no_wait(executor: &impl Executor) {
    let mut results = executor.map(abs, -5..5).buffer(2);
    assert_eq!(results.next().unwrap().unwrap(), 5); // two items submitted, one read
    executor.shutdown(Shutdown::new().wait(false));
    let rest: Vec<_> = results.collect();
    assert_eq!(rest[0].as_ref().unwrap(), &4, "{rest:?}");
    assert!(
        rest[1..]
            .iter()
            .all(|r| r.as_ref().is_err_and(Error::is_shutdown)),
        "{rest:?}"
    );
}

/// `test_max_workers_negative`: Python's `ValueError` for 0 is `Error::InvalidConfig` from
/// `build()` (there are no negative counts).
pub(crate) fn max_workers_zero_is_refused<E: std::fmt::Debug>(
    build: impl FnOnce() -> Result<E, Error>,
) {
    let err = build().unwrap_err();
    assert!(
        err.to_string()
            .contains("max_workers must be greater than 0"),
        "{err}"
    );
}

/// Instantiates every shared body above as a `#[test]` on an executor made by `$make`.
macro_rules! executor_tests {
    ($make:expr) => {
        executor_tests!($make;
    submit,
    map,
    map_exception,
    map_timeout,
    shutdown_race_issue12456,
    wait_20369,
    wait_first_completed,
    wait_first_completed_some_already_completed,
    wait_first_exception,
    wait_first_exception_some_already_complete,
    wait_first_exception_one_already_failed,
    wait_all_completed,
    wait_test_timeout,
    as_completed_no_timeout,
    as_completed_future_times_out,
    as_completed_duplicate_futures,
    run_after_shutdown,
    hang_issue12364,
    cancel_futures,
    hang_gh83386,
    hang_gh94440,
    shutdown_no_wait,
        );
    };
    ($make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let executor = $make;
                cpython_futures::$name(&executor);
            }
        )*
    };
}
pub(crate) use executor_tests;
