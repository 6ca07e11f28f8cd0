//! A priority queue built by hand on a mutex and a condition variable.
//!
//! The Python original builds its own `PriorityQueue` from a `heapq` list and a
//! `threading.Condition`: `put` pushes under the condition and calls `notify()`, `get` loops
//! `while not self.items: self.cond.wait()` and pops the smallest item. Producers and consumers
//! share it.
//!
//! The Rust version is the same design with `std::sync::Mutex` + `Condvar` around a
//! `BinaryHeap` (a max-heap, so priorities go in wrapped in `Reverse` to pop the smallest
//! first). Two differences: the condition variable is separate from the mutex (`Condvar::wait`
//! takes the guard and hands it back), and the queue has a `close()` so consumers can stop
//! without a sentinel value. flotilla ships a ready-made one, `flotilla::sync::PriorityQueue`;
//! this example shows how such a queue works inside.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

/// Items waiting, smallest priority first, and whether producers are finished.
struct State<T> {
    heap: BinaryHeap<Reverse<(u32, T)>>,
    closed: bool,
}

/// A blocking priority queue: `get` waits on the condition variable while the queue is empty.
struct PriorityQueue<T> {
    state: Mutex<State<T>>,
    not_empty: Condvar,
}

impl<T: Ord> PriorityQueue<T> {
    fn new() -> Self {
        PriorityQueue {
            state: Mutex::new(State {
                heap: BinaryHeap::new(),
                closed: false,
            }),
            not_empty: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `item`; lower `priority` comes out first.
    fn put(&self, priority: u32, item: T) {
        self.lock().heap.push(Reverse((priority, item)));
        self.not_empty.notify_one();
    }

    /// Takes the most urgent item, waiting while the queue is empty; `None` once the queue is
    /// closed and drained.
    fn get(&self) -> Option<(u32, T)> {
        let mut state = self.lock();
        loop {
            if let Some(Reverse(entry)) = state.heap.pop() {
                return Some(entry);
            }
            if state.closed {
                return None;
            }
            // Releases the lock while asleep; loops because wake-ups can be spurious.
            state = self
                .not_empty
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// No more items will come: wakes every waiting consumer.
    fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_all();
    }
}

fn main() {
    // 1. One thread: items come out by priority, whatever the order they went in.
    let queue = PriorityQueue::new();
    for (priority, job) in [
        (5, "backup"),
        (1, "page on-call"),
        (3, "send mail"),
        (2, "log"),
    ] {
        queue.put(priority, job);
    }
    queue.close();
    let order: Vec<u32> = std::iter::from_fn(|| queue.get()).map(|(p, _)| p).collect();
    println!("drained in priority order: {order:?}");
    assert_eq!(order, [1, 2, 3, 5]);

    // 2. Consumers start first and block on the condition variable until producers put work.
    const PRODUCERS: u32 = 2;
    const PER_PRODUCER: u32 = 10;
    let queue = PriorityQueue::new();
    let consumed = thread::scope(|s| {
        let consumers: Vec<_> = (0..2)
            .map(|c| {
                let queue = &queue;
                s.spawn(move || {
                    let mut got = 0;
                    while let Some((priority, job)) = queue.get() {
                        println!("consumer {c} got priority {priority}: {job}");
                        got += 1;
                    }
                    got
                })
            })
            .collect();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let queue = &queue;
                s.spawn(move || {
                    for i in 0..PER_PRODUCER {
                        // A fixed scramble of priorities, so runs are reproducible.
                        queue.put((i * 7 + p * 3) % 10, format!("job {p}.{i}"));
                    }
                })
            })
            .collect();
        for producer in producers {
            producer.join().expect("producers do not panic");
        }
        queue.close();
        consumers
            .into_iter()
            .map(|c| c.join().expect("consumers do not panic"))
            .sum::<u32>()
    });
    println!("consumed {consumed} of {} items", PRODUCERS * PER_PRODUCER);
    assert_eq!(consumed, PRODUCERS * PER_PRODUCER);
}
