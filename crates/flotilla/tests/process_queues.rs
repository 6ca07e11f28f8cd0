//! `flotilla::process::{Queue, JoinableQueue}` across processes: producers and consumers,
//! bounds and timeouts on both sides of the broker, process-pool tasks, and a vanished owner.

use std::time::{Duration, Instant};

use flotilla::process::{GetError, JoinableQueue, Process, PutError, Queue};
use flotilla::{Error, Executor, ProcessPoolExecutor};

#[path = "support/children.rs"]
mod children;

use children::assert_nothing_left_by;

#[flotilla::task]
fn produce(jobs: JoinableQueue<Option<u64>>, count: u64, consumers: usize) {
    for n in 0..count {
        jobs.put(Some(n)).unwrap();
    }
    for _ in 0..consumers {
        jobs.put(None).unwrap();
    }
}

#[flotilla::task]
fn consume(jobs: JoinableQueue<Option<u64>>, results: Queue<u64>) {
    while let Some(n) = jobs.get().unwrap() {
        results.put(n * n).unwrap();
        jobs.task_done().unwrap();
    }
    jobs.task_done().unwrap();
}

#[test]
fn producer_and_consumers_with_poison_pills() {
    const COUNT: u64 = 200;
    const CONSUMERS: usize = 3;
    let jobs = JoinableQueue::bounded(8).unwrap();
    let results = Queue::new();
    let consumers: Vec<Process> = (0..CONSUMERS)
        .map(|_| Process::new(ConsumeTask, (jobs.clone(), results.clone())))
        .collect();
    let consumers = consumers
        .into_iter()
        .map(Process::start)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let producer = Process::new(ProduceTask, (jobs.clone(), COUNT, CONSUMERS))
        .start()
        .unwrap();
    producer.join();
    assert_eq!(producer.exitcode(), Some(0));
    // Everything was put; join returns once every item, pills included, is done.
    jobs.join().unwrap();
    assert_eq!(jobs.qsize().unwrap(), 0);
    let mut squares: Vec<u64> = (0..COUNT).map(|_| results.get().unwrap()).collect();
    squares.sort_unstable();
    assert_eq!(squares, (0..COUNT).map(|n| n * n).collect::<Vec<_>>());
    for c in &consumers {
        c.join();
        assert_eq!(c.exitcode(), Some(0));
    }
    assert!(results.try_get().unwrap_err().is_empty());
    let err = jobs.task_done().unwrap_err();
    assert!(matches!(err, Error::InvalidOperation { .. }), "{err}");
}

#[test]
fn bounded_queue_full_and_empty_with_timeouts_locally() {
    let q = Queue::bounded(2).unwrap();
    q.try_put(1).unwrap();
    q.put_timeout(2, Duration::from_millis(10)).unwrap();
    assert_eq!(q.qsize().unwrap(), 2);
    assert!(matches!(q.try_put(3), Err(PutError::Full(3))));
    let started = Instant::now();
    match q.put_timeout(4, Duration::from_millis(50)) {
        Err(PutError::Full(item)) => assert_eq!(item, 4),
        other => panic!("expected Full, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(q.get().unwrap(), 1);
    assert_eq!(q.try_get().unwrap(), 2);
    assert!(matches!(q.try_get(), Err(GetError::Empty)));
    let started = Instant::now();
    assert!(
        q.get_timeout(Duration::from_millis(50))
            .unwrap_err()
            .is_empty()
    );
    assert!(started.elapsed() >= Duration::from_millis(50));
}

/// The same checks through the broker, from a child; any failure panics (exit code 1).
#[flotilla::task]
fn probe_bounds(q: Queue<u32>) {
    assert_eq!(q.qsize().unwrap(), 1, "the parent put one item");
    assert!(matches!(q.try_put(2), Err(PutError::Full(2))));
    let started = Instant::now();
    assert!(
        q.put_timeout(3, Duration::from_millis(50))
            .unwrap_err()
            .is_full()
    );
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(q.get_timeout(Duration::from_secs(5)).unwrap(), 1);
    assert!(q.try_get().unwrap_err().is_empty());
    let started = Instant::now();
    assert!(
        q.get_timeout(Duration::from_millis(50))
            .unwrap_err()
            .is_empty()
    );
    assert!(started.elapsed() >= Duration::from_millis(50));
    q.put(4).unwrap();
}

#[test]
fn bounded_queue_full_and_empty_with_timeouts_remotely() {
    let q = Queue::bounded(1).unwrap();
    q.put(1).unwrap();
    let p = Process::new(ProbeBoundsTask, q.clone()).start().unwrap();
    p.join();
    assert_eq!(p.exitcode(), Some(0));
    assert_eq!(q.try_get().unwrap(), 4);
}

/// Blocks on a full queue until the parent makes room, then on an empty one until it fills.
#[flotilla::task]
fn block_both_ways(q: Queue<u32>, signals: Queue<()>, go: Queue<()>) {
    q.put(2).unwrap(); // blocks: the queue holds 1 already
    signals.put(()).unwrap();
    go.get().unwrap(); // the parent has taken 2
    assert_eq!(q.get().unwrap(), 3); // blocks until the parent puts 3
}

#[test]
fn blocking_put_and_get_across_processes() {
    let limit = Duration::from_secs(30);
    let (q, signals, go) = (Queue::bounded(1).unwrap(), Queue::new(), Queue::new());
    q.put(1).unwrap();
    let p = Process::new(BlockBothWaysTask, (q.clone(), signals.clone(), go.clone()))
        .start()
        .unwrap();
    assert_eq!(q.get_timeout(limit).unwrap(), 1); // makes room for the child's put
    signals.get_timeout(limit).unwrap();
    assert_eq!(q.get_timeout(limit).unwrap(), 2);
    go.put(()).unwrap();
    q.put(3).unwrap();
    assert!(p.join_timeout(limit));
    assert_eq!(p.exitcode(), Some(0));
}

#[flotilla::task]
fn put_square(q: Queue<u64>, n: u64) -> usize {
    q.put(n * n).unwrap();
    q.qsize().unwrap()
}

#[test]
fn a_queue_passed_to_process_pool_tasks() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let q = Queue::new();
    let futures: Vec<_> = (0..8u64)
        .map(|n| pool.submit(PutSquareTask, (q.clone(), n)).unwrap())
        .collect();
    for fut in &futures {
        assert!(fut.result().unwrap() >= 1);
    }
    let mut squares: Vec<u64> = (0..8).map(|_| q.get().unwrap()).collect();
    squares.sort_unstable();
    assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49]);
}

/// Creates a queue of its own, hands it to the parent through `outbox`, then waits to die.
#[flotilla::task]
fn own_a_queue(outbox: Queue<Queue<u32>>) {
    let mine = Queue::new();
    mine.put(7).unwrap();
    outbox.put(mine.clone()).unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn a_queue_whose_owner_was_killed_reports_disconnected_and_leaves_nothing() {
    let started = std::time::SystemTime::now();
    let outbox = Queue::new();
    let owner = Process::new(OwnAQueueTask, outbox.clone()).start().unwrap();
    let theirs: Queue<u32> = outbox.get().unwrap();
    assert_eq!(theirs.get().unwrap(), 7);
    theirs.put(8).unwrap();
    let pid = owner.pid();
    owner.kill();
    owner.join();
    assert_nothing_left_by(pid, started);
    let err = theirs.get().unwrap_err();
    assert!(err.is_disconnected(), "{err}");
    match theirs.try_put(9) {
        Err(PutError::Failed(9, err)) => assert!(err.is_disconnected(), "{err}"),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn a_handle_decoded_in_its_own_process_is_local() {
    let q = Queue::<u8>::new();
    let bytes = postcard::to_allocvec(&q).unwrap();
    let again: Queue<u8> = postcard::from_bytes(&bytes).unwrap();
    again.put(1).unwrap();
    assert_eq!(q.get().unwrap(), 1);
    drop(q);
    again.put(2).unwrap();
    assert_eq!(again.get().unwrap(), 2);
}
