//! `flotilla::sync::{Queue, LifoQueue, PriorityQueue}`: Python's `queue` semantics, timeouts,
//! errors that hand the item back, `task_done`/`join`, and seeded stress runs.

use std::cmp::Reverse;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use flotilla::sync::{Empty, Full, LifoQueue, PriorityQueue, Queue, TaskDoneError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const N: usize = if cfg!(miri) { 50 } else { 20_000 };
/// A timeout we expect to run out: short, so the tests stay fast.
const SHORT: Duration = Duration::from_millis(20);
/// A timeout we expect never to run out: long, so a slow machine cannot fail the test.
const LONG: Duration = Duration::from_secs(60);

/// Neither `Debug`, `Clone` nor `PartialEq`: the errors must not need any of them.
struct Opaque(u32);

#[test]
fn fifo_lifo_and_priority_orders() {
    let fifo = Queue::new();
    let lifo = LifoQueue::new();
    let prio = PriorityQueue::new();
    for x in [3, 1, 4, 1, 5, 9, 2, 6] {
        fifo.put(x);
        lifo.put(x);
        prio.put(x);
    }
    let drain = |get: &dyn Fn() -> Result<i32, Empty>| std::iter::from_fn(|| get().ok()).collect();
    let fifo_out: Vec<i32> = drain(&|| fifo.try_get());
    let lifo_out: Vec<i32> = drain(&|| lifo.try_get());
    let prio_out: Vec<i32> = drain(&|| prio.try_get());
    assert_eq!(fifo_out, [3, 1, 4, 1, 5, 9, 2, 6]);
    assert_eq!(lifo_out, [6, 2, 9, 5, 1, 4, 1, 3]);
    assert_eq!(prio_out, [1, 1, 2, 3, 4, 5, 6, 9]);
}

#[test]
fn priority_queue_takes_tuples_and_reverse() {
    let jobs = PriorityQueue::new();
    jobs.put((2, "low"));
    jobs.put((0, "urgent"));
    jobs.put((1, "normal"));
    assert_eq!(jobs.get(), (0, "urgent"));

    let largest_first = PriorityQueue::new();
    for x in [1, 3, 2] {
        largest_first.put(Reverse(x));
    }
    assert_eq!(largest_first.get(), Reverse(3));
}

#[test]
fn try_put_hands_the_item_back_when_full() {
    let queue = Queue::bounded(1).unwrap();
    assert!(queue.try_put(Opaque(1)).is_ok());
    let err = queue.try_put(Opaque(2)).unwrap_err();
    assert_eq!(format!("{err:?}"), "Full(..)");
    assert_eq!(err.to_string(), "the queue is full");
    assert_eq!(err.into_inner().0, 2);
    let Full(item) = queue.try_put(Opaque(3)).unwrap_err();
    assert_eq!(item.0, 3);
    assert_eq!(queue.get().0, 1, "the queued item is untouched");
}

#[test]
fn put_timeout_hands_the_item_back_after_the_timeout() {
    let queue = Queue::bounded(2).unwrap();
    queue.put(0);
    queue.put(1);
    assert_eq!(queue.put_timeout(2, SHORT), Err(Full(2)));
    assert_eq!(queue.qsize(), 2);
    let lifo = LifoQueue::bounded(1).unwrap();
    lifo.put('a');
    assert_eq!(lifo.put_timeout('b', SHORT), Err(Full('b')));
    let prio = PriorityQueue::bounded(1).unwrap();
    prio.put(5);
    assert_eq!(prio.put_timeout(1, SHORT), Err(Full(1)));
    assert_eq!(prio.get(), 5);
}

#[test]
fn get_timeout_and_try_get_report_empty() {
    let queue: Queue<u8> = Queue::new();
    assert_eq!(queue.try_get(), Err(Empty));
    assert_eq!(queue.get_timeout(SHORT), Err(Empty));
    assert_eq!(Empty.to_string(), "the queue is empty");
    let lifo: LifoQueue<u8> = LifoQueue::new();
    assert_eq!(lifo.get_timeout(SHORT), Err(Empty));
    let prio: PriorityQueue<u8> = PriorityQueue::new();
    assert_eq!(prio.get_timeout(SHORT), Err(Empty));
}

#[test]
fn zero_and_huge_timeouts() {
    let queue = Queue::bounded(1).unwrap();
    assert_eq!(queue.get_timeout(Duration::ZERO), Err(Empty));
    assert_eq!(queue.put_timeout(1, Duration::ZERO), Ok(()));
    assert_eq!(queue.put_timeout(2, Duration::ZERO), Err(Full(2)));
    // A timeout too large for `Instant` waits forever instead of panicking.
    assert_eq!(queue.get_timeout(Duration::MAX), Ok(1));
    assert_eq!(queue.put_timeout(3, Duration::MAX), Ok(()));
}

#[test]
fn errors_are_std_errors_for_any_item_type() {
    let full: Box<dyn std::error::Error + Send + Sync> = Box::new(Full(Opaque(0)));
    assert_eq!(full.to_string(), "the queue is full");
    let empty: Box<dyn std::error::Error> = Box::new(Empty);
    assert_eq!(empty.to_string(), "the queue is empty");
    let done: Box<dyn std::error::Error> = Box::new(TaskDoneError);
    assert!(done.to_string().contains("task_done"));
}

#[test]
fn put_blocks_while_full_and_resumes_after_a_get() {
    let queue = Arc::new(Queue::bounded(1).unwrap());
    let (tx, rx) = mpsc::channel();
    let producer = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            queue.put(1);
            tx.send("first put").unwrap();
            queue.put(2);
            tx.send("second put").unwrap();
        })
    };
    assert_eq!(rx.recv().unwrap(), "first put");
    // The queue is full: the second put cannot return until we take an item.
    assert!(rx.recv_timeout(SHORT).is_err());
    assert!(queue.is_full());
    assert_eq!(queue.get(), 1);
    assert_eq!(rx.recv_timeout(LONG).unwrap(), "second put");
    assert_eq!(queue.get(), 2);
    producer.join().unwrap();
}

#[test]
fn get_blocks_while_empty_and_resumes_after_a_put() {
    let queue = Arc::new(LifoQueue::new());
    let (tx, rx) = mpsc::channel();
    let consumer = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || tx.send(queue.get()).unwrap())
    };
    assert!(rx.recv_timeout(SHORT).is_err());
    queue.put("wake up");
    assert_eq!(rx.recv_timeout(LONG).unwrap(), "wake up");
    consumer.join().unwrap();
}

#[test]
fn put_timeout_succeeds_when_a_slot_frees_in_time() {
    let queue = Arc::new(Queue::bounded(1).unwrap());
    queue.put(0);
    let start = Arc::new(Barrier::new(2));
    let consumer = {
        let (queue, start) = (Arc::clone(&queue), Arc::clone(&start));
        thread::spawn(move || {
            start.wait();
            queue.get()
        })
    };
    start.wait();
    assert_eq!(queue.put_timeout(1, LONG), Ok(()));
    assert_eq!(consumer.join().unwrap(), 0);
    assert_eq!(queue.get_timeout(LONG), Ok(1));
}

#[test]
fn task_done_called_too_often_is_an_error() {
    let queue = Queue::new();
    assert_eq!(queue.task_done(), Err(TaskDoneError));
    queue.put('x');
    queue.put('y');
    assert_eq!(queue.task_done(), Ok(()));
    assert_eq!(queue.task_done(), Ok(()));
    assert_eq!(queue.task_done(), Err(TaskDoneError));
    // The count stays at zero: the next put is counted normally.
    queue.put('z');
    assert!(!queue.join_timeout(SHORT));
    assert_eq!(queue.task_done(), Ok(()));
    assert!(queue.join_timeout(LONG));
}

#[test]
fn join_returns_at_once_when_nothing_is_pending() {
    let queue: PriorityQueue<u8> = PriorityQueue::new();
    queue.join();
    assert!(queue.join_timeout(Duration::ZERO));
}

#[test]
fn join_waits_for_every_task_done_not_just_every_get() {
    let queue = Arc::new(Queue::new());
    let processed = Arc::new(AtomicUsize::new(0));
    let (took_all, all_taken) = mpsc::channel();
    let (finish_tx, finish_rx) = mpsc::channel::<()>();
    for i in 0..10 {
        queue.put(i);
    }
    let worker = {
        let (queue, processed) = (Arc::clone(&queue), Arc::clone(&processed));
        thread::spawn(move || {
            let items: Vec<i32> = (0..10).map(|_| queue.get()).collect();
            took_all.send(()).unwrap();
            finish_rx.recv().unwrap();
            for _ in items {
                processed.fetch_add(1, Ordering::SeqCst);
                queue.task_done().unwrap();
            }
        })
    };
    all_taken.recv().unwrap();
    assert!(queue.is_empty());
    assert!(!queue.join_timeout(SHORT), "items taken but not done");
    finish_tx.send(()).unwrap();
    queue.join();
    assert_eq!(processed.load(Ordering::SeqCst), 10);
    worker.join().unwrap();
}

#[test]
fn join_wakes_every_joiner() {
    let queue = Arc::new(Queue::new());
    queue.put(());
    let joiners: Vec<_> = (0..4)
        .map(|_| {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.join())
        })
        .collect();
    queue.get();
    queue.task_done().unwrap();
    for joiner in joiners {
        joiner.join().unwrap();
    }
}

#[test]
fn sizes_and_bounds() {
    let queue = Queue::bounded(3).unwrap();
    assert_eq!(queue.maxsize(), Some(3));
    assert!(queue.is_empty() && !queue.is_full());
    queue.put(1);
    queue.put(2);
    assert_eq!(queue.qsize(), 2);
    queue.put(3);
    assert!(queue.is_full());
    let unbounded: LifoQueue<i32> = LifoQueue::default();
    assert_eq!(unbounded.maxsize(), None);
    assert!(!unbounded.is_full());
}

#[test]
#[should_panic(expected = "at least one item")]
fn a_zero_bound_is_refused() {
    let _ = Queue::<u8>::bounded(0).unwrap();
}

#[test]
fn debug_shows_sizes_without_needing_item_debug() {
    let queue = Queue::bounded(4).unwrap();
    queue.put(Opaque(1));
    let shown = format!("{queue:?}");
    assert!(shown.starts_with("Queue {"), "{shown}");
    assert!(
        shown.contains("qsize: 1") && shown.contains("maxsize: Some(4)"),
        "{shown}"
    );
    assert!(format!("{:?}", LifoQueue::<Opaque>::new()).starts_with("LifoQueue {"));
    assert!(format!("{:?}", PriorityQueue::<u8>::new()).starts_with("PriorityQueue {"));
    assert!(format!("{:?}", Full(Opaque(0))).contains(".."));
}

/// The operations the stress test drives, so one body runs on all three queue types.
trait AnyQueue: Send + Sync + 'static {
    fn bounded(maxsize: usize) -> Self;
    fn put(&self, item: u64);
    fn try_put(&self, item: u64) -> Result<(), Full<u64>>;
    fn put_timeout(&self, item: u64, timeout: Duration) -> Result<(), Full<u64>>;
    fn get(&self) -> u64;
    fn try_get(&self) -> Result<u64, Empty>;
    fn get_timeout(&self, timeout: Duration) -> Result<u64, Empty>;
    fn task_done(&self) -> Result<(), TaskDoneError>;
    fn join(&self);
    fn is_empty(&self) -> bool;
}

macro_rules! any_queue {
    ($($name:ident),*) => {$(
        impl AnyQueue for $name<u64> {
            fn bounded(maxsize: usize) -> Self { $name::bounded(maxsize).unwrap() }
            fn put(&self, item: u64) { $name::put(self, item) }
            fn try_put(&self, item: u64) -> Result<(), Full<u64>> { $name::try_put(self, item) }
            fn put_timeout(&self, item: u64, timeout: Duration) -> Result<(), Full<u64>> {
                $name::put_timeout(self, item, timeout)
            }
            fn get(&self) -> u64 { $name::get(self) }
            fn try_get(&self) -> Result<u64, Empty> { $name::try_get(self) }
            fn get_timeout(&self, timeout: Duration) -> Result<u64, Empty> {
                $name::get_timeout(self, timeout)
            }
            fn task_done(&self) -> Result<(), TaskDoneError> { $name::task_done(self) }
            fn join(&self) { $name::join(self) }
            fn is_empty(&self) -> bool { $name::is_empty(self) }
        }
    )*};
}
any_queue!(Queue, LifoQueue, PriorityQueue);

const PRODUCERS: usize = 4;
const CONSUMERS: usize = 3;

/// Producers and consumers pick blocking, timed and non-blocking calls at random (seeded);
/// every item must come out exactly once, and `join` must return only after all are done.
/// Returns what each consumer received, in order.
fn stress<Q: AnyQueue>(seed: u64, maxsize: usize) -> Vec<Vec<u64>> {
    let per_producer = N / PRODUCERS;
    let total = per_producer * PRODUCERS;
    let queue = Arc::new(Q::bounded(maxsize));
    let done = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(PRODUCERS + CONSUMERS));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (queue, start) = (Arc::clone(&queue), Arc::clone(&start));
            let mut rng = StdRng::seed_from_u64(seed + p as u64);
            thread::spawn(move || {
                start.wait();
                for i in 0..per_producer {
                    let item = (p * per_producer + i) as u64;
                    let rejected = match rng.random_range(0..3) {
                        0 => queue.try_put(item),
                        1 => {
                            queue.put_timeout(item, Duration::from_micros(rng.random_range(0..200)))
                        }
                        _ => {
                            queue.put(item);
                            Ok(())
                        }
                    };
                    if let Err(Full(item)) = rejected {
                        queue.put(item);
                    }
                }
            })
        })
        .collect();
    // Consumers take fixed shares that add up to `total`, so each knows when to stop.
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|c| {
            let share = total / CONSUMERS + usize::from(c < total % CONSUMERS);
            let (queue, start, done) = (Arc::clone(&queue), Arc::clone(&start), Arc::clone(&done));
            let mut rng = StdRng::seed_from_u64(seed + 1000 + c as u64);
            thread::spawn(move || {
                start.wait();
                let mut got = Vec::with_capacity(share);
                for _ in 0..share {
                    let item = match rng.random_range(0..3) {
                        0 => queue.try_get(),
                        1 => queue.get_timeout(Duration::from_micros(rng.random_range(0..200))),
                        _ => Ok(queue.get()),
                    };
                    got.push(item.unwrap_or_else(|Empty| queue.get()));
                    done.fetch_add(1, Ordering::SeqCst);
                    queue.task_done().unwrap();
                }
                got
            })
        })
        .collect();
    for producer in producers {
        producer.join().unwrap();
    }
    queue.join();
    assert_eq!(
        done.load(Ordering::SeqCst),
        total,
        "join returned before every task_done"
    );
    let received: Vec<Vec<u64>> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
    assert!(queue.is_empty());
    assert_eq!(queue.task_done(), Err(TaskDoneError));
    let mut all: Vec<u64> = received.iter().flatten().copied().collect();
    all.sort_unstable();
    assert!(
        all.iter().copied().eq(0..total as u64),
        "items were lost or duplicated"
    );
    received
}

#[test]
fn stress_fifo_keeps_each_producers_order() {
    let per_producer = (N / PRODUCERS) as u64;
    for (seed, maxsize) in [(1, 1), (2, 16)] {
        for got in stress::<Queue<u64>>(seed, maxsize) {
            // A FIFO queue hands out each producer's items in the order they were put.
            for p in 0..PRODUCERS as u64 {
                let mine = got.iter().filter(|&&x| x / per_producer == p);
                assert!(mine.clone().zip(mine.skip(1)).all(|(a, b)| a < b));
            }
        }
    }
}

#[test]
fn stress_lifo() {
    stress::<LifoQueue<u64>>(3, 1);
    stress::<LifoQueue<u64>>(4, 16);
}

#[test]
fn stress_priority() {
    stress::<PriorityQueue<u64>>(5, 1);
    stress::<PriorityQueue<u64>>(6, 16);
}

#[test]
fn priority_queue_filled_by_many_threads_drains_sorted() {
    let queue = Arc::new(PriorityQueue::new());
    let mut rng = StdRng::seed_from_u64(7);
    let mut items: Vec<u32> = (0..N).map(|_| rng.random()).collect();
    let chunks: Vec<Vec<u32>> = items.chunks(N / 4 + 1).map(<[u32]>::to_vec).collect();
    let producers: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let queue = Arc::clone(&queue);
            thread::spawn(move || chunk.into_iter().for_each(|x| queue.put(x)))
        })
        .collect();
    for producer in producers {
        producer.join().unwrap();
    }
    let drained: Vec<u32> = std::iter::from_fn(|| queue.try_get().ok()).collect();
    items.sort_unstable();
    assert_eq!(drained, items);
}
