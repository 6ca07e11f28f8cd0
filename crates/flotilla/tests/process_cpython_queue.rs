//! `flotilla::process::{Queue, JoinableQueue}`, ported from CPython's
//! `Lib/test/_test_multiprocessing.py` (`_TestQueue`), each test named after its origin,
//! followed by attacks on `shutdown` across processes.
//!
//! Where flotilla differs on purpose:
//! - Python's `empty()`/`full()` are `is_empty()`/`is_full()` (as in `flotilla::sync`), and,
//!   like `qsize()`, exact: a `put` returns once its item is in the queue, so CPython's
//!   "the values may be in buffer but not yet in pipe so sleep a bit" has no counterpart and
//!   nothing here sleeps.
//! - `close()` consumes the handle; using it afterwards (`test_closed_queue_put_get_exceptions`'
//!   `ValueError`) does not compile, and `join_thread()`/`cancel_join_thread()` do not exist:
//!   there is no feeder thread. `test_closed_queue_empty_exceptions` becomes "closing a handle
//!   leaves the queue to the others".
//! - `put(block=False)` is `try_put`, `put(timeout=t)` is `put_timeout`; their `queue.Full` is
//!   `PutError::Full` with the item. `queue.ShutDown` is `PutError::ShutDown`,
//!   `GetError::ShutDown` or `Error::QueueShutDown`.
//! - `ProcessFuture.run(q.put, ..)` (an operation in another process) is a child that does it
//!   and reports how it ended. CPython's `_wait()` (a sleep) before checking that a joiner
//!   ended is a bounded join here; "still blocked" is checked with a short bounded join.
//! - Not ported: `test_no_import_lock_contention`, the feeder-thread tests
//!   (`test_queue_feeder_*`: an item that cannot be encoded fails its own `put` and is handed
//!   back, see `process_queue_put`).

use std::time::{Duration, Instant};

use flotilla::Error;
use flotilla::process::{
    GetError, JoinableQueue, Process, PutError, Queue, Sender, StartedProcess, pipe_oneway,
};

/// Upper bound for anything that must not hang.
const PATIENCE: Duration = Duration::from_secs(30);

/// A short wait, for checking that something stays blocked (never for synchronising).
const BRIEF: Duration = Duration::from_millis(100);

/// `_TestQueue._test_put`: waits to be told, then takes six items.
#[flotilla::task]
fn take_six(queue: Queue<u32>, child_can_start: Queue<()>, parent_can_continue: Queue<()>) {
    child_can_start.get().unwrap();
    for _ in 0..6 {
        queue.get().unwrap();
    }
    parent_can_continue.put(()).unwrap();
}

/// `_TestQueue::test_put`.
#[test]
fn put() {
    const MAXSIZE: usize = 6;
    let queue = Queue::bounded(MAXSIZE).unwrap();
    let (child_can_start, parent_can_continue) = (Queue::new(), Queue::new());
    let proc = Process::new(
        TakeSixTask,
        (
            queue.clone(),
            child_can_start.clone(),
            parent_can_continue.clone(),
        ),
    )
    .with_daemon(true)
    .start()
    .unwrap();

    assert!(queue.is_empty().unwrap());
    assert!(!queue.is_full().unwrap());

    queue.put(1).unwrap();
    queue.put(2).unwrap();
    queue.put_timeout(3, PATIENCE).unwrap();
    queue.try_put(4).unwrap();
    queue.try_put(5).unwrap();
    queue.try_put(6).unwrap();

    assert!(!queue.is_empty().unwrap());
    assert!(queue.is_full().unwrap());
    assert_eq!(queue.qsize().unwrap(), MAXSIZE);

    assert!(matches!(queue.try_put(7), Err(PutError::Full(7))));
    assert!(matches!(
        queue.put_timeout(7, Duration::ZERO),
        Err(PutError::Full(7))
    ));
    let started = Instant::now();
    assert!(matches!(
        queue.put_timeout(7, BRIEF),
        Err(PutError::Full(7))
    ));
    assert!(started.elapsed() >= BRIEF);

    child_can_start.put(()).unwrap();
    parent_can_continue.get_timeout(PATIENCE).unwrap();

    assert!(queue.is_empty().unwrap());
    assert!(!queue.is_full().unwrap());
    proc.join();
    assert_eq!(proc.exitcode(), Some(0));
}

/// `_TestQueue._test_get`: waits to be told, then puts four items.
#[flotilla::task]
fn put_four(queue: Queue<u32>, child_can_start: Queue<()>, parent_can_continue: Queue<()>) {
    child_can_start.get().unwrap();
    for n in 2..=5 {
        queue.put(n).unwrap();
    }
    parent_can_continue.put(()).unwrap();
}

/// `_TestQueue::test_get`.
#[test]
fn get() {
    let queue = Queue::new();
    let (child_can_start, parent_can_continue) = (Queue::new(), Queue::new());
    let proc = Process::new(
        PutFourTask,
        (
            queue.clone(),
            child_can_start.clone(),
            parent_can_continue.clone(),
        ),
    )
    .with_daemon(true)
    .start()
    .unwrap();

    assert!(queue.is_empty().unwrap());
    child_can_start.put(()).unwrap();
    parent_can_continue.get_timeout(PATIENCE).unwrap();
    assert!(!queue.is_empty().unwrap());

    assert_eq!(queue.get().unwrap(), 2);
    assert_eq!(queue.get_timeout(PATIENCE).unwrap(), 3);
    assert_eq!(queue.get_timeout(Duration::from_secs(1)).unwrap(), 4);
    assert_eq!(queue.try_get().unwrap(), 5);
    assert!(queue.is_empty().unwrap());

    assert!(matches!(queue.try_get(), Err(GetError::Empty)));
    assert!(matches!(
        queue.get_timeout(Duration::ZERO),
        Err(GetError::Empty)
    ));
    let started = Instant::now();
    assert!(matches!(queue.get_timeout(BRIEF), Err(GetError::Empty)));
    assert!(started.elapsed() >= BRIEF);
    proc.join();
}

/// `_TestQueue._test_fork`: puts 10 to 19.
#[flotilla::task]
fn put_ten_more(queue: Queue<u32>) {
    for n in 10..20 {
        queue.put(n).unwrap();
    }
}

/// `_TestQueue::test_fork`: items put before a child started, and by the child, all come
/// out, in order.
#[test]
fn fork() {
    let queue = Queue::new();
    for n in 0..10 {
        queue.put(n).unwrap();
    }
    let p = Process::new(PutTenMoreTask, queue.clone())
        .with_daemon(true)
        .start()
        .unwrap();
    for n in 0..20 {
        assert_eq!(queue.get_timeout(PATIENCE).unwrap(), n);
    }
    assert!(matches!(queue.try_get(), Err(GetError::Empty)));
    p.join();
}

/// `_TestQueue::test_qsize`, in this process and through a handle in another.
#[test]
fn qsize() {
    let q = Queue::new();
    assert_eq!(q.qsize().unwrap(), 0);
    q.put(1).unwrap();
    assert_eq!(q.qsize().unwrap(), 1);
    q.put(5).unwrap();
    assert_eq!(q.qsize().unwrap(), 2);
    let (sizes, report) = pipe_oneway().unwrap();
    let p = Process::new(ReportStatusTask, (q.clone(), report))
        .start()
        .unwrap();
    assert_eq!(sizes.recv().unwrap(), (2, false, false, None));
    p.join();
    q.get().unwrap();
    assert_eq!(q.qsize().unwrap(), 1);
    q.get().unwrap();
    assert_eq!(q.qsize().unwrap(), 0);
}

/// Reports what a handle in another process sees: size, empty, full, bound.
#[flotilla::task]
fn report_status(q: Queue<u32>, out: Sender<(usize, bool, bool, Option<usize>)>) {
    out.send(&(
        q.qsize().unwrap(),
        q.is_empty().unwrap(),
        q.is_full().unwrap(),
        q.maxsize(),
    ))
    .unwrap();
}

/// `_TestQueue._test_task_done`: processes items until the `None`.
#[flotilla::task]
fn do_tasks(q: JoinableQueue<Option<u32>>) {
    while let Some(_item) = q.get().unwrap() {
        q.task_done().unwrap();
    }
}

/// `_TestQueue::test_task_done`.
#[test]
fn task_done() {
    let queue = JoinableQueue::new();
    let workers: Vec<StartedProcess> = (0..4)
        .map(|_| {
            Process::new(DoTasksTask, queue.clone())
                .with_daemon(true)
                .start()
                .unwrap()
        })
        .collect();
    for i in 0..10 {
        queue.put(Some(i)).unwrap();
    }
    queue.join().unwrap();
    for _ in &workers {
        queue.put(None).unwrap();
    }
    for p in &workers {
        assert!(p.join_timeout(PATIENCE));
        assert_eq!(p.exitcode(), Some(0));
    }
}

/// `_TestQueue::test_timeout`.
#[test]
fn timeout() {
    let q = Queue::<u8>::new();
    let started = Instant::now();
    assert!(
        q.get_timeout(Duration::from_millis(200))
            .unwrap_err()
            .is_empty()
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
}

/// `_TestQueue::test_closed_queue_empty_exceptions`: closing an unused handle is fine, and
/// closing one leaves the queue, and what was put through it, to the other handles.
#[test]
fn closed_queue_empty_exceptions() {
    let q = Queue::<String>::new();
    let other = q.clone();
    q.close();
    assert!(other.is_empty().unwrap());

    let q = JoinableQueue::<String>::new();
    let other = q.clone();
    q.put("foo".to_owned()).unwrap();
    q.close();
    assert_eq!(other.qsize().unwrap(), 1);
    assert_eq!(other.get().unwrap(), "foo");
}

/// What an operation in another process came to, for `ProcessFuture.run(q.op)`.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Outcome {
    Ok(Option<String>),
    ShutDown,
    Other(String),
}

/// One operation, in a child.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
enum Op {
    Put,
    Get,
    Join,
}

/// Runs `op` on `q` in this (child) process and reports how it ended.
#[flotilla::task]
fn run_op(q: JoinableQueue<String>, op: Op, out: Sender<Outcome>) {
    let outcome = match op {
        Op::Put => match q.put("data".to_owned()) {
            Ok(()) => Outcome::Ok(None),
            Err(err) if matches!(err.error, Error::QueueShutDown) => {
                assert_eq!(err.item, "data", "the item is handed back");
                Outcome::ShutDown
            }
            Err(err) => Outcome::Other(err.to_string()),
        },
        Op::Get => match q.get() {
            Ok(item) => Outcome::Ok(Some(item)),
            Err(Error::QueueShutDown) => Outcome::ShutDown,
            Err(err) => Outcome::Other(err.to_string()),
        },
        Op::Join => match q.join() {
            Ok(()) => Outcome::Ok(None),
            Err(err) => Outcome::Other(err.to_string()),
        },
    };
    out.send(&outcome).unwrap();
}

/// `ProcessFuture.start(op)`: the child and where its outcome arrives.
fn start_op(
    q: &JoinableQueue<String>,
    op: Op,
) -> (StartedProcess, flotilla::process::Receiver<Outcome>) {
    let (outcome, out) = pipe_oneway().unwrap();
    let p = Process::new(RunOpTask, (q.clone(), op, out))
        .start()
        .unwrap();
    (p, outcome)
}

/// `ProcessFuture.run(op)`: the outcome of `op` run in another process.
fn run_in_child(q: &JoinableQueue<String>, op: Op) -> Outcome {
    let (p, outcome) = start_op(q, op);
    let got = outcome.recv().unwrap();
    p.join();
    got
}

/// Every put and get, here and in another process, fails as shut down.
fn everything_shut_down(q: &JoinableQueue<String>) {
    assert_eq!(run_in_child(q, Op::Put), Outcome::ShutDown);
    assert!(matches!(
        q.try_put("data".to_owned()),
        Err(PutError::ShutDown(_))
    ));
    assert_eq!(run_in_child(q, Op::Get), Outcome::ShutDown);
    assert!(matches!(q.try_get(), Err(GetError::ShutDown)));
}

/// `_TestQueue::test_shutdown_empty` (for `Queue` and `JoinableQueue`: the same type here).
#[test]
fn shutdown_empty() {
    let q = JoinableQueue::new();
    let (joiner, joined) = start_op(&q, Op::Join);
    q.shutdown(false).unwrap(); // unfinished tasks: 0 -> 0
    assert_eq!(q.qsize().unwrap(), 0);
    assert_eq!(joined.recv().unwrap(), Outcome::Ok(None));
    assert!(joiner.join_timeout(PATIENCE));
    everything_shut_down(&q);
}

/// `_TestQueue::test_shutdown_nonempty`.
#[test]
fn shutdown_nonempty() {
    let q = JoinableQueue::bounded(1).unwrap();
    q.put("data".to_owned()).unwrap();
    let (joiner, joined) = start_op(&q, Op::Join);
    q.shutdown(false).unwrap(); // unfinished tasks: 1 -> 1
    assert_eq!(q.qsize().unwrap(), 1);
    assert_eq!(
        run_in_child(&q, Op::Get),
        Outcome::Ok(Some("data".to_owned()))
    );
    assert!(
        !joiner.join_timeout(BRIEF),
        "join returned with a task unfinished"
    );
    everything_shut_down(&q);
    q.task_done().unwrap();
    assert_eq!(joined.recv_timeout(PATIENCE).unwrap(), Outcome::Ok(None));
    assert!(joiner.join_timeout(PATIENCE));
}

/// `_TestQueue::test_shutdown_immediate`.
#[test]
fn shutdown_immediate() {
    let q = JoinableQueue::new();
    q.put("data".to_owned()).unwrap();
    let (joiner, joined) = start_op(&q, Op::Join);
    q.shutdown(true).unwrap();
    assert_eq!(q.qsize().unwrap(), 0);
    assert_eq!(joined.recv_timeout(PATIENCE).unwrap(), Outcome::Ok(None));
    assert!(joiner.join_timeout(PATIENCE));
    everything_shut_down(&q);
    let err = q.task_done().unwrap_err();
    assert!(matches!(err, Error::InvalidOperation { .. }), "{err}");
}

/// `_TestQueue::test_shutdown_immediate_with_unfinished`.
#[test]
fn shutdown_immediate_with_unfinished() {
    let q = JoinableQueue::new();
    q.put("data".to_owned()).unwrap();
    q.put("data".to_owned()).unwrap();
    let (joiner, joined) = start_op(&q, Op::Join);
    assert_eq!(
        run_in_child(&q, Op::Get),
        Outcome::Ok(Some("data".to_owned()))
    );
    q.shutdown(true).unwrap();
    assert_eq!(q.qsize().unwrap(), 0);
    assert!(
        !joiner.join_timeout(BRIEF),
        "join returned with a task unfinished"
    );
    everything_shut_down(&q);
    q.task_done().unwrap();
    assert!(q.task_done().is_err(), "all tasks are done");
    assert_eq!(joined.recv_timeout(PATIENCE).unwrap(), Outcome::Ok(None));
    assert!(joiner.join_timeout(PATIENCE));
}

/// A get blocked in another process, on an empty queue, and a put blocked there on a full
/// one: a shutdown here wakes both, each with its own error (the put's item handed back).
#[test]
fn shutdown_wakes_operations_blocked_in_other_processes() {
    let empty = JoinableQueue::new();
    let (getter, got) = start_op(&empty, Op::Get);
    let full = JoinableQueue::bounded(1).unwrap();
    full.put("first".to_owned()).unwrap();
    let (putter, put) = start_op(&full, Op::Put);
    assert!(!got.poll_timeout(BRIEF), "a get on an empty queue returned");
    assert!(!put.poll(), "a put on a full queue returned");
    empty.shutdown(false).unwrap();
    full.shutdown(false).unwrap();
    assert_eq!(got.recv_timeout(PATIENCE).unwrap(), Outcome::ShutDown);
    assert_eq!(put.recv_timeout(PATIENCE).unwrap(), Outcome::ShutDown);
    getter.join();
    putter.join();
    // A plain shutdown keeps what was queued for the consumers.
    assert_eq!(full.get().unwrap(), "first");
    assert!(full.get().unwrap_err().is_shutdown());
}

/// Shuts `q` down from this (child) process.
#[flotilla::task]
fn shut_down(q: Queue<u8>, immediate: bool) {
    q.shutdown(immediate).unwrap();
    assert!(q.is_shut_down().unwrap());
}

/// A shutdown from another process reaches the owner, and shutting down twice is allowed.
#[test]
fn shutdown_from_another_process_twice() {
    let q = Queue::new();
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert!(!q.is_shut_down().unwrap());
    let p = Process::new(ShutDownTask, (q.clone(), false))
        .start()
        .unwrap();
    p.join();
    assert_eq!(p.exitcode(), Some(0));
    assert!(q.is_shut_down().unwrap());
    assert_eq!(q.qsize().unwrap(), 2);
    let p = Process::new(ShutDownTask, (q.clone(), true))
        .start()
        .unwrap();
    p.join();
    assert_eq!(p.exitcode(), Some(0));
    assert_eq!(
        q.qsize().unwrap(),
        0,
        "the second, immediate, shutdown emptied it"
    );
    assert!(matches!(q.try_get(), Err(GetError::ShutDown)));
}
