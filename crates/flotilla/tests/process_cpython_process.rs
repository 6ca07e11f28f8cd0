//! `flotilla::process::{Process, StartedProcess}`, `active_children` and `parent_process`,
//! ported from CPython's `Lib/test/_test_multiprocessing.py` (`_TestProcess`), each test named
//! after its origin.
//!
//! Where flotilla differs on purpose:
//! - `start` consumes the `Process` and returns a `StartedProcess`: starting twice,
//!   `sentinel` before `start` (`test_sentinel`'s `ValueError`) and every use after `close`
//!   (`test_close`'s `ValueError`s, closing twice) do not compile; see the `compile_fail`
//!   examples on `StartedProcess`. `close` while running fails and hands the handle back.
//! - The sentinel is a descriptor (`BorrowedFd`), not an `int`, and is ready once the child
//!   is reaped, so `exitcode` is known when `wait` reports it.
//! - `join()` waits for ever and `join_timeout(d)` returns whether the child ended; `join(0)`
//!   and `join(-1)` are `join_timeout(Duration::ZERO)`.
//! - Targets are `#[flotilla::task]` functions; `kwargs` are part of the argument tuple.
//!   Children report through queues and pipes instead of CPython's `Event`s and sleeps.
//! - `authkey` has no counterpart: nothing in `flotilla::process` authenticates with it
//!   (`test_current`'s and `test_process`'s authkey checks are not ported).
//! - Not ported: start-method and forkserver tests, `test_set_executable`, the stdio-flush
//!   tests, `test_interrupt*` (`SIGINT` is a signal like `SIGTERM` here: no
//!   `KeyboardInterrupt`), `test_lose_target_ref`, `test_child_fd_inflation`,
//!   `test_wait_for_threads` (a task's other threads end with its process, as when `main`
//!   returns).

use std::time::Duration;

use flotilla::process::{
    Process, Queue, Sender, StartedProcess, active_children, current_process, parent_process,
    pipe_oneway, wait_timeout,
};

/// Upper bound for anything that must not hang.
const PATIENCE: Duration = Duration::from_secs(30);

/// `_TestProcess._test`: reports its arguments, its name and its pid.
#[flotilla::task]
fn report(q: Queue<String>, a: u32, b: u32, hello: u32, bye: f64) {
    let me = current_process();
    q.put(format!("{a} {b} {hello} {bye}")).unwrap();
    q.put(me.name().to_owned()).unwrap();
    q.put(me.pid().to_string()).unwrap();
}

fn listed(p: &StartedProcess) -> bool {
    active_children().iter().any(|child| child.pid() == p.pid())
}

/// `_TestProcess::test_process`.
#[test]
fn process() {
    let q = Queue::bounded(1).unwrap();
    let p = Process::new(ReportTask, (q.clone(), 1, 2, 23, 2.54))
        .with_name("SomeProcess")
        .with_daemon(true);
    assert!(p.daemon());
    assert_eq!(p.name(), "SomeProcess");
    let p = p.start().unwrap();
    assert_eq!(p.exitcode(), None);
    assert!(p.is_alive());
    assert!(listed(&p));
    assert_eq!(q.get().unwrap(), "1 2 23 2.54");
    assert_eq!(q.get().unwrap(), p.name());
    assert_eq!(q.get().unwrap(), p.pid().to_string());
    p.join();
    assert_eq!(p.exitcode(), Some(0));
    assert!(!p.is_alive());
    assert!(!listed(&p));
}

/// `_TestProcess._sleep_some_event`: says it runs, then sleeps until stopped.
#[flotilla::task]
fn sleep_some_event(event: Queue<()>) {
    event.put(()).unwrap();
    loop {
        std::thread::park();
    }
}

/// `_TestProcess._kill_process`: stops a running child with `stop`, returns its exit code.
fn kill_process(stop: fn(&StartedProcess)) -> Option<i32> {
    let event = Queue::new();
    let p = Process::new(SleepSomeEventTask, event.clone())
        .with_daemon(true)
        .start()
        .unwrap();
    assert!(p.is_alive());
    assert!(listed(&p));
    assert_eq!(p.exitcode(), None);
    assert!(!p.join_timeout(Duration::ZERO));
    assert!(p.is_alive());
    event.get_timeout(PATIENCE).unwrap();
    stop(&p);
    assert!(p.join_timeout(PATIENCE));
    assert!(!p.is_alive());
    assert!(!listed(&p));
    p.join();
    p.exitcode()
}

/// `_TestProcess::test_terminate`.
#[test]
fn terminate() {
    assert_eq!(
        kill_process(StartedProcess::terminate),
        Some(-libc::SIGTERM)
    );
}

/// `_TestProcess::test_kill`.
#[test]
fn kill() {
    assert_eq!(kill_process(StartedProcess::kill), Some(-libc::SIGKILL));
}

/// `event.wait` as a target: waits for one item.
#[flotilla::task]
fn wait_for_event(event: Queue<()>) {
    event.get().unwrap();
}

/// `_TestProcess::test_active_children`, and a child whose handle was dropped is still
/// listed (Python keeps it in `_children` too).
#[test]
fn test_active_children() {
    let event = Queue::new();
    let p = Process::new(WaitForEventTask, event.clone())
        .with_daemon(true)
        .start()
        .unwrap();
    assert!(listed(&p));
    let pid = p.pid();
    drop(p);
    let again = active_children()
        .into_iter()
        .find(|child| child.pid() == pid)
        .expect("a running child stays listed after its handle is dropped");
    event.put(()).unwrap();
    again.join();
    assert_eq!(again.exitcode(), Some(0));
    assert!(active_children().iter().all(|child| child.pid() != pid));
}

/// `_TestProcess._test_recursion`: reports its place in the tree, then starts two children
/// one after the other, to depth 2.
#[flotilla::task]
fn recursion(wconn: Queue<Vec<u32>>, id: Vec<u32>) {
    wconn.put(id.clone()).unwrap();
    if id.len() < 2 {
        for i in 0..2 {
            let mut child_id = id.clone();
            child_id.push(i);
            let p = Process::new(RecursionTask, (wconn.clone(), child_id))
                .start()
                .unwrap();
            p.join();
        }
    }
}

/// `_TestProcess::test_recursion`.
#[test]
fn test_recursion() {
    let q = Queue::new();
    recursion(q.clone(), Vec::new());
    let result: Vec<Vec<u32>> = (0..7).map(|_| q.get_timeout(PATIENCE).unwrap()).collect();
    let expected: Vec<Vec<u32>> = vec![
        vec![],
        vec![0],
        vec![0, 0],
        vec![0, 1],
        vec![1],
        vec![1, 0],
        vec![1, 1],
    ];
    assert_eq!(result, expected);
    assert!(q.is_empty().unwrap());
}

/// `_TestProcess::test_sentinel`.
#[test]
fn sentinel() {
    let event = Queue::new();
    let p = Process::new(WaitForEventTask, event.clone())
        .start()
        .unwrap();
    assert!(
        wait_timeout(&[p.sentinel()], Duration::ZERO)
            .unwrap()
            .is_empty()
    );
    event.put(()).unwrap();
    p.join();
    assert_eq!(
        wait_timeout(&[p.sentinel()], Duration::from_secs(1)).unwrap(),
        [0]
    );
}

/// `_TestProcess._test_close`: waits for an item, then exits with `rc`.
#[flotilla::task]
fn test_close_target(rc: i32, q: Queue<()>) {
    q.get().unwrap();
    std::process::exit(rc);
}

/// `_TestProcess::test_close`: closing a running child fails and hands the handle back;
/// once it has ended, `close` succeeds (and nothing can be done with it after: that, and a
/// second `close`, do not compile).
#[test]
fn close() {
    let q = Queue::new();
    let p = Process::new(TestCloseTargetTask, (0, q.clone()))
        .with_daemon(true)
        .start()
        .unwrap();
    assert!(p.is_alive());
    let err = p.close().unwrap_err();
    assert!(err.to_string().contains("still running"), "{err}");
    let p = err.into_inner();
    assert!(p.is_alive(), "a failed close leaves the child alone");
    q.put(()).unwrap();
    p.join();
    assert!(!p.is_alive());
    assert_eq!(p.exitcode(), Some(0));
    let pid = p.pid();
    p.close().unwrap();
    assert!(active_children().iter().all(|child| child.pid() != pid));
}

/// `_TestProcess._test_send_parent_process`.
#[flotilla::task]
fn send_parent_process(wconn: Sender<(u32, String)>) {
    let parent = parent_process().expect("started by Process::start");
    wconn
        .send(&(parent.pid(), parent.name().to_owned()))
        .unwrap();
}

/// `_TestProcess::test_parent_process_attributes`.
#[test]
fn parent_process_attributes() {
    assert!(parent_process().is_none());
    let (rconn, wconn) = pipe_oneway().unwrap();
    let p = Process::new(SendParentProcessTask, wconn).start().unwrap();
    p.join();
    let (parent_pid, parent_name) = rconn.recv().unwrap();
    assert_eq!(parent_pid, current_process().pid());
    assert_eq!(parent_pid, std::process::id());
    assert_eq!(parent_name, current_process().name());
}

/// `_TestProcess._test_create_grandchild_process`: starts a grandchild, then sleeps.
#[flotilla::task]
fn create_grandchild_process(wconn: Sender<String>) {
    let _grandchild = Process::new(ReportParentStatusTask, wconn).start().unwrap();
    loop {
        std::thread::park();
    }
}

/// `_TestProcess._test_report_parent_status`: reports whether its parent lives, waits for
/// it to end, and reports again.
#[flotilla::task]
fn report_parent_status(wconn: Sender<String>) {
    let status = |alive: bool| if alive { "alive" } else { "not alive" }.to_owned();
    let parent = parent_process().unwrap();
    wconn.send(&status(parent.is_alive())).unwrap();
    parent.join_timeout(PATIENCE);
    wconn.send(&status(parent.is_alive())).unwrap();
}

/// `_TestProcess::test_parent_process`: a grandchild notices its parent's death.
#[test]
fn test_parent_process() {
    let (rconn, wconn) = pipe_oneway().unwrap();
    let p = Process::new(CreateGrandchildProcessTask, wconn)
        .start()
        .unwrap();
    assert!(
        rconn.poll_timeout(PATIENCE),
        "could not communicate with the child"
    );
    assert_eq!(rconn.recv().unwrap(), "alive");
    p.terminate();
    p.join();
    assert!(
        rconn.poll_timeout(PATIENCE),
        "could not communicate with the child"
    );
    assert_eq!(rconn.recv().unwrap(), "not alive");
}

/// What a task sees as its parent process.
#[flotilla::task]
fn has_a_parent_process() -> bool {
    parent_process().is_some()
}

/// A process-pool worker has no `parent_process` (Python's pool workers have one; flotilla's
/// do not record who started them), and says so instead of guessing.
#[test]
fn pool_workers_report_no_parent_process() {
    use flotilla::{Executor, ProcessPoolExecutor};
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let fut = pool.submit(HasAParentProcessTask, ()).unwrap();
    assert!(!fut.result_timeout(PATIENCE).unwrap());
}

/// Sleeps a moment (`_TestProcess._test_sleep`).
#[flotilla::task]
fn test_sleep(millis: u64) {
    std::thread::sleep(Duration::from_millis(millis));
}

/// `_TestProcess::test_many_processes`.
#[test]
fn many_processes() {
    const N: usize = 5;
    let procs: Vec<StartedProcess> = (0..N)
        .map(|_| Process::new(TestSleepTask, 10).start().unwrap())
        .collect();
    for p in &procs {
        assert!(p.join_timeout(PATIENCE));
        assert_eq!(p.exitcode(), Some(0));
    }
    let procs: Vec<StartedProcess> = (0..N)
        .map(|_| Process::new(TestSleepTask, 100_000).start().unwrap())
        .collect();
    for p in &procs {
        p.terminate();
    }
    for p in &procs {
        assert!(p.join_timeout(PATIENCE));
        assert_eq!(p.exitcode(), Some(-libc::SIGTERM));
    }
}

/// Terminating a child that is still starting up (before it could install anything) also
/// ends it, with `-SIGTERM`: `test_many_processes` without the "let the children start".
#[test]
fn terminate_right_after_start() {
    let p = Process::new(TestSleepTask, 100_000).start().unwrap();
    p.terminate();
    assert!(p.join_timeout(PATIENCE));
    assert_eq!(p.exitcode(), Some(-libc::SIGTERM));
}
